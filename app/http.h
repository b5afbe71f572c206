/* http.h: percent-encoding, query strings, forms, cookies and multipart */
#ifndef TD_HTTP_H
#define TD_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "err.h"

struct arena;

/* Hard limits; a request over any of them is refused (400 or 413). */
struct http_limits {
	size_t max_params;  /* name=value pairs in a query or form */
	size_t max_name;    /* bytes in one parameter name */
	size_t max_value;   /* bytes in one (non-file) value */
	size_t max_cookies; /* cookies in the Cookie header */
	size_t max_parts;   /* parts in a multipart body */
	size_t max_file;    /* bytes in one uploaded file */
};

/* The defaults the server uses unless the config says otherwise. */
extern const struct http_limits HTTP_LIMITS_DEFAULT;

/* One name=value pair, both decoded, NUL-terminated, valid UTF-8. */
struct http_param {
	const char *name;
	const char *value;
	size_t value_len;
};

/* One uploaded file from a multipart body. */
struct http_file {
	const char *field;	  /* the form field name */
	const char *filename;	  /* as the client sent it, path stripped */
	const char *content_type; /* as the client sent it, or "" */
	const unsigned char *data;
	size_t len;
};

/* An ordered list; names may repeat (checkboxes, multi-selects). */
struct http_params {
	struct http_param *v;
	size_t n;
	size_t cap;
};

struct http_files {
	struct http_file *v;
	size_t n;
	size_t cap;
};

/* True if s[0..len) is strict UTF-8: no overlong, surrogate, >U+10FFFF. */
bool http_utf8_valid(const char *s, size_t len);

/* Characters, not bytes, of a valid UTF-8 string (as PostgreSQL's length()). */
size_t http_utf8_len(const char *s);

/*
 * A record id as typed in a form or query: a positive decimal int64
 * without sign, spaces or leading zeros. False for anything else.
 */
bool http_parse_id(const char *s, int64_t *out);

/*
 * Percent-decodes s[0..len) into the arena (NUL-terminated; hex digits in
 * either case); plus_is_space turns '+' into ' ' (forms and query
 * strings). A bad escape ("%4", "%zz") or a decoded NUL or invalid UTF-8
 * is TD_EINPUT with *why set to a message. In every parser here, *why is
 * a lowercase message (static or in the arena) and may be NULL.
 */
enum td_err http_percent_decode(struct arena *a, const char *s, size_t len,
				bool plus_is_space, char **out, size_t *outlen,
				const char **why);

/*
 * Parses a query string or an application/x-www-form-urlencoded body and
 * appends to *params. Empty pairs ("a=1&&b=2") and pairs with an empty
 * name ("=x") are skipped; a pair without '=' has value "". Over a limit
 * (max_params counts the pairs of this call; max_name and max_value
 * count decoded bytes): TD_ETOOBIG; malformed: TD_EINPUT; *why names the
 * parameter when it can ("parameter 'name' is not valid utf-8").
 */
enum td_err http_parse_urlencoded(struct arena *a, const char *s, size_t len,
				  const struct http_limits *lim,
				  struct http_params *params, const char **why);

/*
 * Parses a Cookie header ("a=1; b=2") into *cookies (values not decoded,
 * surrounding quotes removed). Pairs without '=' or a name, and pairs
 * that are not valid UTF-8, are skipped (other sites on the domain may
 * set junk). More than max_cookies: TD_ETOOBIG. header may be NULL.
 */
enum td_err http_parse_cookies(struct arena *a, const char *header,
			       const struct http_limits *lim,
			       struct http_params *cookies, const char **why);

/*
 * Parses a multipart/form-data body (RFC 7578). content_type is the full
 * header value (the boundary is taken from it, quoted or not). Lines may
 * end in CRLF or a bare LF. Text fields go to *params (copied; valid
 * UTF-8 without NUL; max_value), file parts (those with a filename) to
 * *files (data points into body, which must outlive *files; max_file). A
 * part with filename "" and no data (an empty file input) is skipped.
 * Malformed or missing boundary, headers or final boundary: TD_EINPUT;
 * over a limit: TD_ETOOBIG. Runs in time linear in len.
 */
enum td_err http_parse_multipart(struct arena *a, const char *content_type,
				 const unsigned char *body, size_t len,
				 const struct http_limits *lim,
				 struct http_params *params,
				 struct http_files *files, const char **why);

/* The first value named name, or NULL. */
const char *http_params_get(const struct http_params *p, const char *name);

/* Appends a pair (copies nothing: the strings must outlive the list). */
void http_params_add(struct arena *a, struct http_params *p, const char *name,
		     const char *value, size_t value_len);

struct sbuf;

/*
 * Appends s percent-encoded for use in a URL path or query component:
 * A-Z a-z 0-9 - . _ ~ pass, every other byte becomes %XX.
 */
void http_url_encode(struct sbuf *sb, const char *s);

#endif
