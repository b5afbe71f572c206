/* http.c: percent-decoding, query strings, forms, cookies and multipart */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "sbuf.h"
#include "http.h"
#include "banned.h"

const struct http_limits HTTP_LIMITS_DEFAULT = {
	.max_params = 1000,
	.max_name = 256,
	.max_value = 1024 * 1024,
	.max_cookies = 64,
	.max_parts = 64,
	.max_file = 25 * 1024 * 1024,
};

/* Longest RFC 2046 boundary, without the leading "--". */
#define BOUNDARY_MAX 70

/* How much of a client-sent name an error message quotes. */
#define SHOW_MAX 64

enum decode_fail {
	DECODE_OK = 0,
	DECODE_ESCAPE,
	DECODE_NUL,
	DECODE_UTF8,
};

/* Where a delimiter line was found, and what kind it is. */
struct delim {
	size_t start; /* first byte of the line break before "--boundary" */
	size_t next;  /* first byte after the delimiter line */
	bool close;   /* "--boundary--": no part follows */
};

struct part {
	const char *name; /* NULL if no Content-Disposition name */
	size_t name_len;
	const char *filename; /* NULL if the part is not a file */
	size_t filename_len;
	const char *ctype;
	size_t ctype_len;
	bool have_cd;
	bool have_ctype;
};

static void set_why(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static unsigned hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* The byte two hex digits at p stand for. */
static unsigned char hex_byte(const char *p)
{
	return (unsigned char)(hex_val((unsigned char)p[0]) * 16 +
			       hex_val((unsigned char)p[1]));
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9110 tchar: what a header field or parameter name is made of. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* RFC 2045 tspecials: the only characters a backslash may escape. */
static bool is_tspecial(unsigned char c)
{
	return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* RFC 2046 bchars, except space (allowed inside but not last). */
static bool is_bchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return true;
	return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}

/* True if s[0..n) equals the lowercase literal lit, ignoring ASCII case. */
static bool ascii_ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (lit[i] == '\0')
			return false;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)lit[i])
			return false;
	}
	return lit[n] == '\0';
}

bool http_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t need, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		/* 0x80..0xc1: stray continuation or overlong 2-byte form */
		if (c < 0xc2)
			return false;
		if (c < 0xe0) {
			need = 1;
		} else if (c < 0xf0) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* U+D800..U+DFFF surrogates */
		} else if (c < 0xf5) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* over U+10FFFF */
		} else {
			return false;
		}
		if (len - i - 1 < need)
			return false;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (k = 2; k <= need; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += need + 1;
	}
	return true;
}

/*
 * A client-sent string made safe to quote in an error message: control
 * bytes, quotes and backslashes (and every byte >= 0x80 unless s is valid
 * UTF-8) become \xNN, and it is cut at SHOW_MAX bytes.
 */
static const char *show(struct arena *a, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool utf8 = http_utf8_valid(s, len);
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, a, SHOW_MAX + 8);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= SHOW_MAX && (!utf8 || (c & 0xc0) != 0x80)) {
			sbuf_adds(&sb, "...");
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '\'' || c == '\\' ||
		    (c >= 0x80 && !utf8)) {
			sbuf_add(&sb, "\\x", 2);
			sbuf_addch(&sb, hex[c >> 4]);
			sbuf_addch(&sb, hex[c & 15]);
		} else {
			sbuf_addch(&sb, (char)c);
		}
	}
	return sbuf_cstr(&sb);
}

/* Decodes into a fresh NUL-terminated arena buffer; see http_percent_decode. */
static enum decode_fail decode(struct arena *a, const char *s, size_t len,
			       bool plus_is_space, char **out, size_t *outlen)
{
	char *buf;
	size_t i, n = 0;

	if (len == SIZE_MAX)
		abort();
	buf = arena_alloc(a, len + 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) ||
			    !is_hex((unsigned char)s[i + 2]))
				return DECODE_ESCAPE;
			c = hex_byte(s + i + 1);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		if (c == '\0')
			return DECODE_NUL;
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	if (!http_utf8_valid(buf, n))
		return DECODE_UTF8;
	*out = buf;
	*outlen = n;
	return DECODE_OK;
}

enum td_err http_percent_decode(struct arena *a, const char *s, size_t len,
				bool plus_is_space, char **out, size_t *outlen,
				const char **why)
{
	switch (decode(a, s, len, plus_is_space, out, outlen)) {
	case DECODE_OK:
		return TD_OK;
	case DECODE_ESCAPE:
		set_why(why, "bad percent escape");
		return TD_EINPUT;
	case DECODE_NUL:
		set_why(why, "decoded text contains a nul byte");
		return TD_EINPUT;
	case DECODE_UTF8:
		set_why(why, "decoded text is not valid utf-8");
		return TD_EINPUT;
	default:
		abort();
	}
}

/* The end of a message about a parameter that failed to decode. */
static const char *decode_problem(enum decode_fail f)
{
	switch (f) {
	case DECODE_ESCAPE:
		return "has a bad percent escape";
	case DECODE_NUL:
		return "contains a nul byte";
	case DECODE_UTF8:
		return "is not valid utf-8";
	case DECODE_OK:
	default:
		abort();
	}
}

static enum td_err parse_pair(struct arena *a, const char *s, size_t len,
			      const struct http_limits *lim,
			      struct http_params *params, const char **why)
{
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq != NULL ? (size_t)(eq - s) : len;
	const char *raw_val = eq != NULL ? eq + 1 : s + len;
	size_t raw_vlen = (size_t)(s + len - raw_val);
	char *name, *value;
	size_t name_len, value_len;
	enum decode_fail f;

	f = decode(a, s, nlen, true, &name, &name_len);
	if (f != DECODE_OK) {
		set_why(why, arena_printf(a, "parameter name '%s' %s",
					  show(a, s, nlen), decode_problem(f)));
		return TD_EINPUT;
	}
	if (name_len > lim->max_name) {
		set_why(why,
			arena_printf(a,
				     "parameter name '%s' is longer than the "
				     "limit of %zu bytes",
				     show(a, name, name_len), lim->max_name));
		return TD_ETOOBIG;
	}
	f = decode(a, raw_val, raw_vlen, true, &value, &value_len);
	if (f != DECODE_OK) {
		set_why(why, arena_printf(a, "parameter '%s' %s",
					  show(a, name, name_len),
					  decode_problem(f)));
		return TD_EINPUT;
	}
	if (value_len > lim->max_value) {
		set_why(why,
			arena_printf(a,
				     "parameter '%s' is longer than the limit "
				     "of %zu bytes",
				     show(a, name, name_len), lim->max_value));
		return TD_ETOOBIG;
	}
	/* Nothing can look up "", so "=x" is as good as an empty pair. */
	if (name_len == 0)
		return TD_OK;
	http_params_add(a, params, name, value, value_len);
	return TD_OK;
}

enum td_err http_parse_urlencoded(struct arena *a, const char *s, size_t len,
				  const struct http_limits *lim,
				  struct http_params *params, const char **why)
{
	size_t pos = 0, count = 0;

	while (pos < len) {
		const char *amp = memchr(s + pos, '&', len - pos);
		size_t end = amp != NULL ? (size_t)(amp - s) : len;
		enum td_err err;

		if (end > pos) {
			if (++count > lim->max_params) {
				set_why(why, arena_printf(a,
							  "more than the limit "
							  "of %zu parameters",
							  lim->max_params));
				return TD_ETOOBIG;
			}
			err = parse_pair(a, s + pos, end - pos, lim, params,
					 why);
			if (err != TD_OK)
				return err;
		}
		pos = end + 1;
	}
	return TD_OK;
}

static void trim_ows(const char **s, size_t *len)
{
	while (*len > 0 && is_ows((unsigned char)(*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_ows((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

enum td_err http_parse_cookies(struct arena *a, const char *header,
			       const struct http_limits *lim,
			       struct http_params *cookies, const char **why)
{
	const char *p = header != NULL ? header : "";
	size_t count = 0;

	while (*p != '\0') {
		size_t plen = strcspn(p, ";");
		const char *eq = memchr(p, '=', plen);
		const char *name = p, *value;
		size_t nlen, vlen;

		p += plen;
		if (*p == ';')
			p++;
		if (eq == NULL)
			continue;
		nlen = (size_t)(eq - name);
		value = eq + 1;
		vlen = (size_t)(name + plen - value);
		trim_ows(&name, &nlen);
		trim_ows(&value, &vlen);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value++;
			vlen -= 2;
		}
		/*
		 * Another application on the same domain may set cookies we
		 * cannot read; refusing the request over them would lock
		 * the user out, so they are skipped.
		 */
		if (nlen == 0 || !http_utf8_valid(name, nlen) ||
		    !http_utf8_valid(value, vlen))
			continue;
		if (count >= lim->max_cookies) {
			set_why(why, arena_printf(a,
						  "more than the limit of %zu "
						  "cookies",
						  lim->max_cookies));
			return TD_ETOOBIG;
		}
		count++;
		http_params_add(a, cookies, arena_strndup(a, name, nlen),
				arena_strndup(a, value, vlen), vlen);
	}
	return TD_OK;
}

/*
 * Reads one header parameter (";" name "=" token-or-quoted-string) at *pos
 * in s[0..len). Sets *done at the end of s. Quoted strings follow RFC 2045
 * but, like browsers and Go's mime package, a backslash only escapes a
 * tspecial: old browsers send Windows paths as filename="C:\dir\a.txt".
 */
static bool next_param(struct arena *a, const char *s, size_t len, size_t *pos,
		       const char **name, size_t *name_len, const char **value,
		       size_t *value_len, bool *done)
{
	size_t i = *pos, start;

	for (;;) {
		while (i < len && is_ows((unsigned char)s[i]))
			i++;
		if (i == len) {
			*done = true;
			return true;
		}
		if (s[i] != ';')
			return false;
		i++;
		while (i < len && is_ows((unsigned char)s[i]))
			i++;
		if (i == len) {
			*done = true;
			return true;
		}
		if (s[i] != ';')
			break;
	}
	start = i;
	while (i < len && is_tchar((unsigned char)s[i]))
		i++;
	if (i == start)
		return false;
	*name = s + start;
	*name_len = i - start;
	while (i < len && is_ows((unsigned char)s[i]))
		i++;
	if (i == len || s[i] != '=')
		return false;
	i++;
	while (i < len && is_ows((unsigned char)s[i]))
		i++;
	if (i < len && s[i] == '"') {
		char *buf = arena_alloc(a, len - i);
		size_t n = 0;

		for (i++;; i++) {
			if (i == len)
				return false;
			if (s[i] == '"')
				break;
			if (s[i] == '\\' && i + 1 < len &&
			    is_tspecial((unsigned char)s[i + 1]))
				i++;
			buf[n++] = s[i];
		}
		i++;
		*value = buf;
		*value_len = n;
	} else {
		start = i;
		while (i < len && s[i] != ';' && s[i] != '"' &&
		       !is_ows((unsigned char)s[i]))
			i++;
		*value = s + start;
		*value_len = i - start;
	}
	*pos = i;
	*done = false;
	return true;
}

static enum td_err get_boundary(struct arena *a, const char *content_type,
				const char **bnd, size_t *blen,
				const char **why)
{
	const char *ct = content_type;
	size_t len = strlen(ct), mlen, pos, nlen, vlen, i;
	const char *pname, *pval;
	bool done = false;

	mlen = strcspn(ct, ";");
	pos = mlen;
	trim_ows(&ct, &mlen);
	if (!ascii_ieq(ct, mlen, "multipart/form-data")) {
		set_why(why, "content type is not multipart/form-data");
		return TD_EINPUT;
	}
	*bnd = NULL;
	for (;;) {
		if (!next_param(a, content_type, len, &pos, &pname, &nlen,
				&pval, &vlen, &done)) {
			set_why(why, "content type is malformed");
			return TD_EINPUT;
		}
		if (done)
			break;
		if (*bnd == NULL && ascii_ieq(pname, nlen, "boundary")) {
			*bnd = pval;
			*blen = vlen;
		}
	}
	if (*bnd == NULL || *blen == 0) {
		set_why(why, "content type has no boundary");
		return TD_EINPUT;
	}
	if (*blen > BOUNDARY_MAX) {
		set_why(why, "multipart boundary is longer than the limit of "
			     "70 characters");
		return TD_EINPUT;
	}
	for (i = 0; i < *blen; i++) {
		unsigned char c = (unsigned char)(*bnd)[i];

		if (!is_bchar(c) && !(c == ' ' && i + 1 < *blen)) {
			set_why(why, "multipart boundary has a character "
				     "rfc 2046 does not allow");
			return TD_EINPUT;
		}
	}
	return TD_OK;
}

/*
 * Is there a delimiter line ("--" boundary, then "--" or optional blanks
 * and a line break) at body[p]? Fills d->next and d->close if so.
 */
static bool delim_at(const unsigned char *body, size_t len, size_t p,
		     const char *bnd, size_t blen, struct delim *d)
{
	size_t q = p + 2 + blen;

	if (len - p < 2 + blen || body[p] != '-' || body[p + 1] != '-' ||
	    memcmp(body + p + 2, bnd, blen) != 0)
		return false;
	if (len - q >= 2 && body[q] == '-' && body[q + 1] == '-') {
		d->close = true;
		d->next = len; /* the rest is the epilogue */
		return true;
	}
	while (q < len && is_ows(body[q]))
		q++;
	if (q < len && body[q] == '\r')
		q++;
	if (q == len || body[q] != '\n')
		return false;
	d->close = false;
	d->next = q + 1;
	return true;
}

/*
 * Finds the first delimiter line starting at or after body[from] at the
 * start of a line (CRLF or bare LF before it, or the very start of the
 * body when from is 0). Linear: a candidate is only tried after a '\n',
 * and since "--" boundary holds no '\n', a failed comparison of k bytes
 * also proves the next k bytes hold no candidate, so memchr skips them.
 */
static bool find_delim(const unsigned char *body, size_t len, size_t from,
		       const char *bnd, size_t blen, struct delim *d)
{
	size_t pos = from;

	if (from == 0 && delim_at(body, len, 0, bnd, blen, d)) {
		d->start = 0;
		return true;
	}
	while (pos < len) {
		const unsigned char *nl = memchr(body + pos, '\n', len - pos);
		size_t at;

		if (nl == NULL)
			return false;
		at = (size_t)(nl - body);
		if (delim_at(body, len, at + 1, bnd, blen, d)) {
			d->start = at;
			if (at > from && body[at - 1] == '\r')
				d->start = at - 1;
			return true;
		}
		pos = at + 1;
	}
	return false;
}

static enum td_err parse_disposition(struct arena *a, const char *v, size_t len,
				     size_t idx, struct part *pt,
				     const char **why)
{
	size_t tlen = 0, pos, nlen, vlen;
	const char *pname, *pval;
	bool done = false;

	while (tlen < len && is_tchar((unsigned char)v[tlen]))
		tlen++;
	if (!ascii_ieq(v, tlen, "form-data")) {
		set_why(why, arena_printf(a,
					  "part %zu is not form-data in its "
					  "content-disposition header",
					  idx));
		return TD_EINPUT;
	}
	pos = tlen;
	for (;;) {
		if (!next_param(a, v, len, &pos, &pname, &nlen, &pval, &vlen,
				&done)) {
			set_why(why, arena_printf(a,
						  "part %zu has a malformed "
						  "content-disposition header",
						  idx));
			return TD_EINPUT;
		}
		if (done)
			return TD_OK;
		if (pt->name == NULL && ascii_ieq(pname, nlen, "name")) {
			pt->name = pval;
			pt->name_len = vlen;
		} else if (pt->filename == NULL &&
			   ascii_ieq(pname, nlen, "filename")) {
			pt->filename = pval;
			pt->filename_len = vlen;
		}
		/* RFC 7578 4.2 forbids filename*; other names are ignored. */
	}
}

/*
 * Parses the header lines of part idx at body[*pos..end) up to the blank
 * line, and leaves *pos at the first byte of its content.
 */
static enum td_err parse_part_headers(struct arena *a,
				      const unsigned char *body, size_t *pos,
				      size_t end, size_t idx, struct part *pt,
				      const char **why)
{
	size_t cur = *pos;

	for (;;) {
		const unsigned char *eol;
		const char *line, *colon, *val;
		size_t llen, vlen, i;
		enum td_err err;

		eol = cur < end ? memchr(body + cur, '\n', end - cur) : NULL;
		if (eol == NULL) {
			set_why(why, arena_printf(a,
						  "part %zu has no blank line "
						  "after its headers",
						  idx));
			return TD_EINPUT;
		}
		line = (const char *)body + cur;
		llen = (size_t)(eol - body) - cur;
		cur = (size_t)(eol - body) + 1;
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;
		for (i = 0; i < llen; i++) {
			unsigned char c = (unsigned char)line[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				set_why(why, arena_printf(a,
							  "part %zu has a "
							  "control character "
							  "in its headers",
							  idx));
				return TD_EINPUT;
			}
		}
		colon = memchr(line, ':', llen);
		for (i = 0; colon != NULL && line + i < colon; i++)
			if (!is_tchar((unsigned char)line[i]))
				break;
		if (colon == NULL || colon == line || line + i != colon) {
			set_why(why, arena_printf(a,
						  "part %zu has a malformed "
						  "header line",
						  idx));
			return TD_EINPUT;
		}
		val = colon + 1;
		vlen = llen - (size_t)(val - line);
		trim_ows(&val, &vlen);
		if (ascii_ieq(line, (size_t)(colon - line),
			      "content-disposition")) {
			if (pt->have_cd) {
				set_why(why, arena_printf(a,
							  "part %zu has two "
							  "content-disposition "
							  "headers",
							  idx));
				return TD_EINPUT;
			}
			pt->have_cd = true;
			err = parse_disposition(a, val, vlen, idx, pt, why);
			if (err != TD_OK)
				return err;
		} else if (ascii_ieq(line, (size_t)(colon - line),
				     "content-type") &&
			   !pt->have_ctype) {
			pt->have_ctype = true;
			pt->ctype = val;
			pt->ctype_len = vlen;
		}
	}
	*pos = cur;
	return TD_OK;
}

/* The last component of a path, Unix or Windows; "." and ".." give "". */
static void strip_path(const char **s, size_t *len)
{
	size_t i;

	for (i = *len; i > 0; i--) {
		if ((*s)[i - 1] == '/' || (*s)[i - 1] == '\\')
			break;
	}
	*s += i;
	*len -= i;
	if ((*len == 1 && (*s)[0] == '.') ||
	    (*len == 2 && (*s)[0] == '.' && (*s)[1] == '.'))
		*len = 0;
}

static void files_add(struct arena *a, struct http_files *f,
		      const struct http_file *file)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct http_file *v;

		if (cap > SIZE_MAX / 2 / sizeof(*v))
			abort();
		v = arena_alloc(a, cap * sizeof(*v));
		if (f->n > 0)
			memcpy(v, f->v, f->n * sizeof(*v));
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = *file;
}

static enum td_err add_part(struct arena *a, const struct part *pt,
			    const unsigned char *data, size_t dlen, size_t idx,
			    const struct http_limits *lim,
			    struct http_params *params,
			    struct http_files *files, const char **why)
{
	const char *name, *fname;
	size_t flen;
	struct http_file file;

	if (!pt->have_cd || pt->name == NULL) {
		set_why(why, arena_printf(a,
					  "part %zu has no content-disposition "
					  "name",
					  idx));
		return TD_EINPUT;
	}
	if (!http_utf8_valid(pt->name, pt->name_len) ||
	    memchr(pt->name, '\0', pt->name_len) != NULL) {
		set_why(why, arena_printf(a,
					  "part %zu has a field name that is "
					  "not valid utf-8",
					  idx));
		return TD_EINPUT;
	}
	name = show(a, pt->name, pt->name_len);
	if (pt->name_len > lim->max_name) {
		set_why(why, arena_printf(a,
					  "field name '%s' is longer than the "
					  "limit of %zu bytes",
					  name, lim->max_name));
		return TD_ETOOBIG;
	}
	if (pt->filename == NULL) {
		if (dlen > lim->max_value) {
			set_why(why, arena_printf(a,
						  "field '%s' is longer than "
						  "the limit of %zu bytes",
						  name, lim->max_value));
			return TD_ETOOBIG;
		}
		if (!http_utf8_valid((const char *)data, dlen) ||
		    memchr(data, '\0', dlen) != NULL) {
			set_why(why, arena_printf(a,
						  "field '%s' is not valid "
						  "utf-8 text",
						  name));
			return TD_EINPUT;
		}
		http_params_add(
			a, params, arena_strndup(a, pt->name, pt->name_len),
			arena_strndup(a, (const char *)data, dlen), dlen);
		return TD_OK;
	}
	if (dlen > lim->max_file) {
		set_why(why, arena_printf(a,
					  "file in field '%s' is larger than "
					  "the limit of %zu bytes",
					  name, lim->max_file));
		return TD_ETOOBIG;
	}
	if (!http_utf8_valid(pt->filename, pt->filename_len) ||
	    memchr(pt->filename, '\0', pt->filename_len) != NULL) {
		set_why(why, arena_printf(a,
					  "file in field '%s' has a name that "
					  "is not valid utf-8",
					  name));
		return TD_EINPUT;
	}
	if (!http_utf8_valid(pt->ctype, pt->ctype_len)) {
		set_why(why, arena_printf(a,
					  "file in field '%s' has a content "
					  "type that is not valid utf-8",
					  name));
		return TD_EINPUT;
	}
	/* What a browser sends for a file input left empty. */
	if (pt->filename_len == 0 && dlen == 0)
		return TD_OK;
	fname = pt->filename;
	flen = pt->filename_len;
	strip_path(&fname, &flen);
	file.field = arena_strndup(a, pt->name, pt->name_len);
	file.filename = arena_strndup(a, fname, flen);
	file.content_type = pt->ctype != NULL ?
				    arena_strndup(a, pt->ctype, pt->ctype_len) :
				    "";
	file.data = data;
	file.len = dlen;
	files_add(a, files, &file);
	return TD_OK;
}

enum td_err http_parse_multipart(struct arena *a, const char *content_type,
				 const unsigned char *body, size_t len,
				 const struct http_limits *lim,
				 struct http_params *params,
				 struct http_files *files, const char **why)
{
	const char *bnd;
	size_t blen = 0, pos, nparts = 0;
	struct delim d;
	enum td_err err;

	err = get_boundary(a, content_type, &bnd, &blen, why);
	if (err != TD_OK)
		return err;
	if (!find_delim(body, len, 0, bnd, blen, &d)) {
		set_why(why, "multipart body does not contain the boundary");
		return TD_EINPUT;
	}
	while (!d.close) {
		struct part pt;
		size_t cstart;

		pos = d.next;
		if (!find_delim(body, len, pos, bnd, blen, &d)) {
			set_why(why, "multipart body has no final boundary");
			return TD_EINPUT;
		}
		if (++nparts > lim->max_parts) {
			set_why(why, arena_printf(a,
						  "multipart body has more "
						  "than the limit of %zu parts",
						  lim->max_parts));
			return TD_ETOOBIG;
		}
		memset(&pt, 0, sizeof(pt));
		cstart = pos;
		err = parse_part_headers(a, body, &cstart, d.start, nparts, &pt,
					 why);
		if (err != TD_OK)
			return err;
		err = add_part(a, &pt, body + cstart, d.start - cstart, nparts,
			       lim, params, files, why);
		if (err != TD_OK)
			return err;
	}
	return TD_OK;
}

const char *http_params_get(const struct http_params *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return p->v[i].value;
	return NULL;
}

void http_params_add(struct arena *a, struct http_params *p, const char *name,
		     const char *value, size_t value_len)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct http_param *v;

		if (cap > SIZE_MAX / 2 / sizeof(*v))
			abort();
		v = arena_alloc(a, cap * sizeof(*v));
		if (p->n > 0)
			memcpy(v, p->v, p->n * sizeof(*v));
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n].name = name;
	p->v[p->n].value = value;
	p->v[p->n].value_len = value_len;
	p->n++;
}

void http_url_encode(struct sbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			sbuf_addch(sb, (char)c);
		} else {
			sbuf_addch(sb, '%');
			sbuf_addch(sb, hex[c >> 4]);
			sbuf_addch(sb, hex[c & 15]);
		}
	}
}

size_t http_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

bool http_parse_id(const char *s, int64_t *out)
{
	const char *p;
	long long v;
	char *end;

	if (s == NULL || *s == '\0' || *s == '0' || strlen(s) > 19)
		return false;
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*out = (int64_t)v;
	return true;
}
