/* router.h: a static route table matched on method and path */
#ifndef TD_ROUTER_H
#define TD_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct arena;
struct req;

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_POST = 1 << 1,
	HTTP_PUT = 1 << 2,
	HTTP_PATCH = 1 << 3,
	HTTP_DELETE = 1 << 4,
	HTTP_HEAD = 1 << 5,
	HTTP_OPTIONS = 1 << 6,
};

/* Parses "GET" etc.; 0 for a method we do not know. */
enum http_method router_method(const char *s);

/* Who may call a route and how; the dispatcher enforces these. */
enum route_flags {
	ROUTE_PUBLIC = 1 << 0, /* anyone, signed in or not */
	ROUTE_JSON = 1 << 1,   /* always answers JSON (API) */
	ROUTE_NOTX = 1 << 2,   /* no caller, no transaction (health, bench) */
	ROUTE_MFA = 1 << 3,    /* reachable before the second factor */
	ROUTE_NOCSRF = 1 << 4, /* a write with no effect (POST /echo) */
};

typedef enum td_err (*route_fn)(struct req *);

/*
 * A path pattern is literal segments and typed parameters:
 * "/tickets/:id" (a positive int64 written canonically: digits only, no
 * sign, no leading zero, no overflow), "/clients/:slug" (a non-empty
 * segment, percent-decoded, valid UTF-8 without NUL or '/'),
 * and "*rest" as the last segment of "/files" + "/" + "*rest" (the
 * non-empty, percent-decoded rest of the path; may hold '/' but no "." or
 * ".." segment). The type comes from the name: "id" and names ending in
 * "_id" are integers, others are strings.
 * Segments are split on '/' and compared exactly, so "/tickets/" does
 * not match "/tickets"; "/" matches only "/". Literal segments are
 * compared with the raw (still percent-encoded) path.
 */
struct route {
	unsigned methods; /* HTTP_GET | HTTP_HEAD ... */
	const char *pattern;
	route_fn fn;
	unsigned flags;
	unsigned roles; /* enum auth_role bits that may call it; 0 with
			   ROUTE_PUBLIC */
};

#define ROUTE_MAX_ARGS 4

struct route_args {
	size_t n;
	const char *names[ROUTE_MAX_ARGS];
	const char *str[ROUTE_MAX_ARGS]; /* decoded segment text */
	int64_t num[ROUTE_MAX_ARGS];	 /* value for integer parameters */
};

/*
 * Finds the route for method + path (the raw path, without the query
 * string); the first matching route in table order wins. TD_OK: *out and
 * *args set (strings in the arena). TD_ENOENT: no pattern matches the path
 * (or a typed parameter does not parse). TD_EMETHOD: a pattern matches but
 * not for this method; *allow gets the methods that would (for the Allow
 * header; GET adds HEAD). HEAD matches GET routes. args and allow may be
 * NULL. More than ROUTE_MAX_ARGS parameters in a pattern aborts.
 */
enum td_err router_match(const struct route *table, size_t n,
			 enum http_method method, const char *path,
			 struct arena *a, const struct route **out,
			 struct route_args *args, unsigned *allow);

/* "GET, HEAD, POST" for an Allow header, in the arena. */
const char *router_allow_header(struct arena *a, unsigned methods);

/* The value of a named integer/string parameter (0 / NULL if absent). */
int64_t route_arg_int(const struct route_args *args, const char *name);
const char *route_arg_str(const struct route_args *args, const char *name);

#endif
