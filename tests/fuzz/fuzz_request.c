/* fuzz_request.c: libFuzzer target for every parser a request goes through */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "sbuf.h"
#include "http.h"
#include "router.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum td_err dummy(struct req *r)
{
	(void)r;
	return TD_OK;
}

static const struct route routes[] = {
	{ HTTP_GET, "/", dummy, ROUTE_PUBLIC, 0 },
	{ HTTP_GET | HTTP_POST, "/tickets", dummy, 0, 0 },
	{ HTTP_GET, "/tickets/new", dummy, 0, 0 },
	{ HTTP_GET | HTTP_PATCH, "/tickets/:id", dummy, 0, 0 },
	{ HTTP_DELETE, "/tickets/:id", dummy, 0, 0 },
	{ HTTP_GET, "/clients/:slug", dummy, 0, 0 },
	{ HTTP_GET, "/clients/:client_id/tickets/:id", dummy, 0, 0 },
	{ HTTP_GET, "/files/*rest", dummy, 0, 0 },
	{ HTTP_PUT, "/api/:a/:b/:c/:d_id", dummy, ROUTE_JSON, 0 },
};

/* Small limits so the fuzzer reaches the limit paths too. */
static const struct http_limits small = {
	.max_params = 8,
	.max_name = 16,
	.max_value = 64,
	.max_cookies = 4,
	.max_parts = 4,
	.max_file = 128,
};

static void check_params(const struct http_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (strlen(p->v[i].value) > p->v[i].value_len ||
		    !http_utf8_valid(p->v[i].name, strlen(p->v[i].name)) ||
		    !http_utf8_valid(p->v[i].value, p->v[i].value_len))
			abort();
	}
}

static void multipart(struct arena *a, const char *ct,
		      const unsigned char *body, size_t len,
		      const struct http_limits *lim)
{
	struct http_params params;
	struct http_files files;
	const char *why = NULL;
	size_t i;

	memset(&params, 0, sizeof(params));
	memset(&files, 0, sizeof(files));
	if (http_parse_multipart(a, ct, body, len, lim, &params, &files,
				 &why) != TD_OK) {
		if (why == NULL)
			abort();
		return;
	}
	check_params(&params);
	for (i = 0; i < files.n; i++) {
		if (files.v[i].len > lim->max_file || files.v[i].data < body ||
		    files.v[i].data + files.v[i].len > body + len ||
		    strchr(files.v[i].filename, '/') != NULL ||
		    strchr(files.v[i].filename, '\\') != NULL)
			abort();
	}
}

static void urlencoded(struct arena *a, const char *s, size_t len,
		       const struct http_limits *lim)
{
	struct http_params params;
	const char *why = NULL;

	memset(&params, 0, sizeof(params));
	if (http_parse_urlencoded(a, s, len, lim, &params, &why) != TD_OK) {
		if (why == NULL)
			abort();
		return;
	}
	check_params(&params);
}

static void route(struct arena *a, const char *path, unsigned char sel)
{
	static const enum http_method ms[] = { HTTP_GET,     HTTP_POST,
					       HTTP_PUT,     HTTP_PATCH,
					       HTTP_DELETE,  HTTP_HEAD,
					       HTTP_OPTIONS, 0 };
	const struct route *rt = NULL;
	struct route_args args;
	unsigned allow = 0;
	enum td_err err;

	memset(&args, 0, sizeof(args));
	err = router_match(routes, sizeof(routes) / sizeof(routes[0]),
			   ms[sel % 8], path, a, &rt, &args, &allow);
	if (err == TD_OK && (rt == NULL || args.n > ROUTE_MAX_ARGS))
		abort();
	if (err == TD_EMETHOD && allow == 0)
		abort();
	(void)router_allow_header(a, allow | sel);
	(void)route_arg_int(&args, "id");
	(void)route_arg_str(&args, "rest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new();
	const char *s = (const char *)data;
	char *str = arena_strndup(a, s, size);
	struct http_params cookies;
	const char *why = NULL;
	char *out;
	size_t outlen;
	const unsigned char *nl;
	struct sbuf sb;
	json_error_t jerr;
	json_t *j;

	(void)http_utf8_valid(s, size);
	if (http_percent_decode(a, s, size, size & 1, &out, &outlen, &why) ==
	    TD_OK) {
		if (out[outlen] != '\0' || !http_utf8_valid(out, outlen))
			abort();
	}

	urlencoded(a, s, size, &HTTP_LIMITS_DEFAULT);
	urlencoded(a, s, size, &small);

	memset(&cookies, 0, sizeof(cookies));
	if (http_parse_cookies(a, str, &small, &cookies, &why) == TD_OK)
		check_params(&cookies);

	multipart(a, "multipart/form-data; boundary=zz", data, size,
		  &HTTP_LIMITS_DEFAULT);
	multipart(a, "multipart/form-data; boundary=\"zz\"", data, size,
		  &small);
	nl = memchr(data, '\n', size);
	if (nl != NULL) {
		size_t ctlen = (size_t)(nl - data);

		multipart(a, arena_strndup(a, s, ctlen), nl + 1,
			  size - ctlen - 1, &HTTP_LIMITS_DEFAULT);
	}

	route(a, str, size > 0 ? data[0] : 0);
	route(a, arena_printf(a, "/%s", str), size > 1 ? data[1] : 0);

	sbuf_init(&sb, a, 0);
	http_url_encode(&sb, str);

	j = json_loadb(s, size, 0, &jerr);
	json_decref(j);

	arena_free(a);
	return 0;
}
