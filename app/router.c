/* router.c: match a method and path against the static route table */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "sbuf.h"
#include "http.h"
#include "router.h"
#include "banned.h"

/* Names in Allow-header order; router_method() parses the same names. */
static const struct {
	enum http_method method;
	const char *name;
} methods[] = {
	{ HTTP_GET, "GET" },	     { HTTP_HEAD, "HEAD" },
	{ HTTP_POST, "POST" },	     { HTTP_PUT, "PUT" },
	{ HTTP_PATCH, "PATCH" },     { HTTP_DELETE, "DELETE" },
	{ HTTP_OPTIONS, "OPTIONS" },
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

enum http_method router_method(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	/* Method names are case-sensitive (RFC 9110 9.1). */
	for (i = 0; i < NMETHODS; i++)
		if (strcmp(s, methods[i].name) == 0)
			return methods[i].method;
	return 0;
}

const char *router_allow_header(struct arena *a, unsigned m)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, a, 64);
	for (i = 0; i < NMETHODS; i++) {
		if (!(m & methods[i].method))
			continue;
		if (sb.len > 0)
			sbuf_add(&sb, ", ", 2);
		sbuf_adds(&sb, methods[i].name);
	}
	return sbuf_cstr(&sb);
}

/* "id" and "*_id" name integer parameters. */
static bool is_int_param(const char *name, size_t len)
{
	if (len == 2)
		return memcmp(name, "id", 2) == 0;
	return len > 3 && memcmp(name + len - 3, "_id", 3) == 0;
}

/*
 * A positive int64 in canonical form: digits only, no sign, no leading
 * zero (so each id has one URL), no overflow. s[len] is '/' or NUL.
 */
static bool parse_id(const char *s, size_t len, int64_t *out)
{
	char *end;
	long long v;
	size_t i;

	if (len == 0 || len > 19 || s[0] == '0')
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end != s + len || v <= 0)
		return false;
	*out = (int64_t)v;
	return true;
}

/* True if the decoded rest of a path holds a "." or ".." segment. */
static bool has_dot_segment(const char *s, size_t len)
{
	size_t i = 0;

	while (i <= len) {
		size_t n = 0;

		while (i + n < len && s[i + n] != '/')
			n++;
		if ((n == 1 && s[i] == '.') ||
		    (n == 2 && s[i] == '.' && s[i + 1] == '.'))
			return true;
		i += n + 1;
	}
	return false;
}

/*
 * Captures the parameter the pattern segment pat[0..plen) (":name" or
 * "*name") names from the path text s[0..slen). False if it does not
 * parse, which makes the route not match.
 */
static bool capture(struct arena *a, const char *pat, size_t plen,
		    const char *s, size_t slen, struct route_args *args)
{
	const char *name = pat + 1;
	size_t nlen = plen - 1, dlen;
	char *dec;
	const char *why;

	/* A table with too many parameters is a programmer error. */
	if (args->n >= ROUTE_MAX_ARGS)
		abort();
	if (slen == 0)
		return false;
	args->num[args->n] = 0;
	if (pat[0] == ':' && is_int_param(name, nlen)) {
		if (!parse_id(s, slen, &args->num[args->n]))
			return false;
		args->str[args->n] = arena_strndup(a, s, slen);
	} else {
		if (http_percent_decode(a, s, slen, false, &dec, &dlen, &why) !=
		    TD_OK)
			return false;
		if (pat[0] == ':' && memchr(dec, '/', dlen) != NULL)
			return false;
		if (pat[0] == '*' && has_dot_segment(dec, dlen))
			return false;
		args->str[args->n] = dec;
	}
	args->names[args->n] = arena_strndup(a, name, nlen);
	args->n++;
	return true;
}

/* Segment by segment; both strings start with '/'. */
static bool match_path(struct arena *a, const char *pat, const char *path,
		       struct route_args *args)
{
	const char *p, *s;

	if (pat[0] != '/' || path[0] != '/')
		return false;
	p = pat + 1;
	s = path + 1;
	for (;;) {
		size_t plen = strcspn(p, "/");
		size_t slen;

		if (p[0] == '*')
			return capture(a, p, plen, s, strlen(s), args);
		slen = strcspn(s, "/");
		if (p[0] == ':') {
			if (!capture(a, p, plen, s, slen, args))
				return false;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return false;
		}
		p += plen;
		s += slen;
		if (*p == '\0' || *s == '\0')
			return *p == '\0' && *s == '\0';
		p++;
		s++;
	}
}

static bool route_allows(const struct route *r, enum http_method method)
{
	if (r->methods & (unsigned)method)
		return true;
	return method == HTTP_HEAD && (r->methods & HTTP_GET);
}

enum td_err router_match(const struct route *table, size_t n,
			 enum http_method method, const char *path,
			 struct arena *a, const struct route **out,
			 struct route_args *args, unsigned *allow)
{
	unsigned allowed = 0;
	size_t i;

	*out = NULL;
	if (allow != NULL)
		*allow = 0;
	for (i = 0; i < n; i++) {
		struct route_args tmp;

		memset(&tmp, 0, sizeof(tmp));
		if (!match_path(a, table[i].pattern, path, &tmp))
			continue;
		if (route_allows(&table[i], method)) {
			*out = &table[i];
			if (args != NULL)
				*args = tmp;
			return TD_OK;
		}
		allowed |= table[i].methods;
	}
	if (allowed == 0)
		return TD_ENOENT;
	if (allowed & HTTP_GET)
		allowed |= HTTP_HEAD;
	if (allow != NULL)
		*allow = allowed;
	return TD_EMETHOD;
}

int64_t route_arg_int(const struct route_args *args, const char *name)
{
	size_t i;

	for (i = 0; i < args->n; i++)
		if (strcmp(args->names[i], name) == 0)
			return args->num[i];
	return 0;
}

const char *route_arg_str(const struct route_args *args, const char *name)
{
	size_t i;

	for (i = 0; i < args->n; i++)
		if (strcmp(args->names[i], name) == 0)
			return args->str[i];
	return NULL;
}
