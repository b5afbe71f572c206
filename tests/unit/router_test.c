/* router_test.c: method names, path patterns, typed parameters, 405 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "router.h"
#include "tap.h"
#include "banned.h"

static enum td_err home(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_list(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_create(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_new(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_show(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_update(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err tickets_delete(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err clients_show(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err client_ticket(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err files_get(struct req *r)
{
	(void)r;
	return TD_OK;
}

static enum td_err api_put(struct req *r)
{
	(void)r;
	return TD_OK;
}

static const struct route routes[] = {
	{ HTTP_GET, "/", home, ROUTE_PUBLIC, 0 },
	{ HTTP_GET, "/tickets", tickets_list, 0, 0 },
	{ HTTP_POST, "/tickets", tickets_create, 0, 0 },
	{ HTTP_GET, "/tickets/new", tickets_new, 0, 0 },
	{ HTTP_GET, "/tickets/:id", tickets_show, 0, 0 },
	{ HTTP_POST | HTTP_PATCH, "/tickets/:id", tickets_update, 0, 0 },
	{ HTTP_DELETE, "/tickets/:id", tickets_delete, 0, 0 },
	{ HTTP_GET, "/clients/:slug", clients_show, 0, 0 },
	{ HTTP_GET, "/clients/:client_id/tickets/:id", client_ticket, 0, 0 },
	{ HTTP_GET, "/files/*rest", files_get, 0, 0 },
	{ HTTP_PUT, "/api/thing", api_put, ROUTE_JSON, 0 },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

struct m {
	enum td_err err;
	route_fn fn;
	struct route_args args;
	unsigned allow;
};

static struct m match(struct arena *a, enum http_method method,
		      const char *path)
{
	const struct route *rt = NULL;
	struct m r;

	memset(&r, 0, sizeof(r));
	r.err = router_match(routes, NROUTES, method, path, a, &rt, &r.args,
			     &r.allow);
	if (rt != NULL)
		r.fn = rt->fn;
	return r;
}

static bool str_is(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0;
}

static void test_methods(struct arena *a)
{
	ok(router_method("GET") == HTTP_GET &&
		   router_method("POST") == HTTP_POST &&
		   router_method("PUT") == HTTP_PUT &&
		   router_method("PATCH") == HTTP_PATCH &&
		   router_method("DELETE") == HTTP_DELETE &&
		   router_method("HEAD") == HTTP_HEAD &&
		   router_method("OPTIONS") == HTTP_OPTIONS,
	   "router_method parses the seven method names");
	ok(router_method("get") == 0 && router_method("") == 0 &&
		   router_method("PROPFIND") == 0 &&
		   router_method("GETX") == 0 && router_method(NULL) == 0,
	   "unknown, lowercase, empty and NULL methods are 0");
	ok(str_is(router_allow_header(a, HTTP_POST | HTTP_HEAD | HTTP_GET),
		  "GET, HEAD, POST"),
	   "the Allow header lists GET, HEAD, POST in that order");
	ok(str_is(router_allow_header(a, HTTP_OPTIONS | HTTP_DELETE |
						 HTTP_PATCH | HTTP_PUT |
						 HTTP_POST | HTTP_HEAD |
						 HTTP_GET),
		  "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
	   "all seven methods come in a fixed order");
	ok(str_is(router_allow_header(a, HTTP_DELETE), "DELETE"),
	   "one method has no separator");
	ok(str_is(router_allow_header(a, 0), ""), "no methods give ''");
}

static void test_literals(struct arena *a)
{
	struct m r;

	r = match(a, HTTP_GET, "/");
	ok(r.err == TD_OK && r.fn == home && r.args.n == 0,
	   "'/' matches the root route");
	r = match(a, HTTP_GET, "/tickets");
	ok(r.err == TD_OK && r.fn == tickets_list,
	   "GET /tickets matches the list");
	r = match(a, HTTP_POST, "/tickets");
	ok(r.err == TD_OK && r.fn == tickets_create,
	   "POST /tickets matches create, not the GET route before it");
	r = match(a, HTTP_GET, "/tickets/");
	ok(r.err == TD_ENOENT && r.fn == NULL,
	   "'/tickets/' with a trailing slash does not match '/tickets'");
	r = match(a, HTTP_GET, "/Tickets");
	ok(r.err == TD_ENOENT, "literal segments are case-sensitive");
	r = match(a, HTTP_GET, "/tickets/new");
	ok(r.err == TD_OK && r.fn == tickets_new,
	   "a literal route listed first wins over a parameter");
	r = match(a, HTTP_GET, "/nope");
	ok(r.err == TD_ENOENT && r.allow == 0, "an unknown path is ENOENT");
	r = match(a, HTTP_GET, "");
	ok(r.err == TD_ENOENT, "an empty path is ENOENT");
	r = match(a, HTTP_GET, "tickets");
	ok(r.err == TD_ENOENT, "a path without a leading '/' is ENOENT");
	r = match(a, HTTP_GET, "//");
	ok(r.err == TD_ENOENT, "'//' does not match the root");
	r = match(a, HTTP_GET, "/tickets//42");
	ok(r.err == TD_ENOENT, "an empty segment does not match");
	r = match(a, HTTP_GET, "/tick%65ts");
	ok(r.err == TD_ENOENT, "literal segments are compared undecoded");
}

static void test_ids(struct arena *a)
{
	static const char *const bad[] = {
		"/tickets/0",
		"/tickets/-1",
		"/tickets/+1",
		"/tickets/007",
		"/tickets/1x",
		"/tickets/1.0",
		"/tickets/%31",
		"/tickets/ 1",
		"/tickets/99999999999999999999",
		"/tickets/9223372036854775808",
		"/tickets/18446744073709551617",
		"/tickets/42/",
	};
	struct m r;
	size_t i;

	r = match(a, HTTP_GET, "/tickets/42");
	ok(r.err == TD_OK && r.fn == tickets_show && r.args.n == 1 &&
		   route_arg_int(&r.args, "id") == 42 &&
		   str_is(route_arg_str(&r.args, "id"), "42"),
	   "':id' parses '42' as the integer 42");
	r = match(a, HTTP_GET, "/tickets/1");
	ok(r.err == TD_OK && route_arg_int(&r.args, "id") == 1,
	   "':id' accepts 1, the smallest id");
	r = match(a, HTTP_GET, "/tickets/9223372036854775807");
	ok(r.err == TD_OK && route_arg_int(&r.args, "id") == INT64_MAX,
	   "':id' accepts INT64_MAX");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = match(a, HTTP_GET, bad[i]);
		ok(r.err == TD_ENOENT && r.fn == NULL, "'%s' is no match",
		   bad[i]);
	}
	r = match(a, HTTP_GET, "/clients/7/tickets/9");
	ok(r.err == TD_OK && r.fn == client_ticket && r.args.n == 2 &&
		   route_arg_int(&r.args, "client_id") == 7 &&
		   route_arg_int(&r.args, "id") == 9,
	   "names ending in '_id' are integers too");
	r = match(a, HTTP_GET, "/clients/x/tickets/9");
	ok(r.err == TD_ENOENT, "a bad ':client_id' is no match");
	ok(route_arg_int(&r.args, "nope") == 0 &&
		   route_arg_str(&r.args, "nope") == NULL,
	   "an absent argument is 0 / NULL");
}

static void test_strings(struct arena *a)
{
	static const char *const bad[] = {
		"/clients/a%2Fb",  "/clients/a%2fb", "/clients/%ff",
		"/clients/%c0%af", "/clients/%zz",   "/clients/%00",
		"/clients/",	   "/clients/a/b",
	};
	struct m r;
	size_t i;

	r = match(a, HTTP_GET, "/clients/acme-co");
	ok(r.err == TD_OK && r.fn == clients_show &&
		   str_is(route_arg_str(&r.args, "slug"), "acme-co") &&
		   route_arg_int(&r.args, "slug") == 0,
	   "':slug' captures a string segment");
	r = match(a, HTTP_GET, "/clients/caf%C3%A9%20bar+1");
	ok(r.err == TD_OK &&
		   str_is(route_arg_str(&r.args, "slug"), "caf\xc3\xa9 bar+1"),
	   "string parameters are percent-decoded, '+' kept");
	r = match(a, HTTP_GET, "/clients/42");
	ok(r.err == TD_OK && str_is(route_arg_str(&r.args, "slug"), "42"),
	   "digits are a fine string parameter");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = match(a, HTTP_GET, bad[i]);
		ok(r.err == TD_ENOENT, "'%s' is no match", bad[i]);
	}
}

static void test_rest(struct arena *a)
{
	static const char *const bad[] = {
		"/files",     "/files/",	 "/files/a/../b", "/files/..",
		"/files/./a", "/files/%2e%2e/x", "/files/a/%2E",  "/files/%ff",
	};
	struct m r;
	size_t i;

	r = match(a, HTTP_GET, "/files/a/b/c.txt");
	ok(r.err == TD_OK && r.fn == files_get &&
		   str_is(route_arg_str(&r.args, "rest"), "a/b/c.txt"),
	   "'*rest' captures the rest of the path with its slashes");
	r = match(a, HTTP_GET, "/files/a%20b/");
	ok(r.err == TD_OK && str_is(route_arg_str(&r.args, "rest"), "a b/"),
	   "'*rest' is percent-decoded and keeps a trailing slash");
	r = match(a, HTTP_GET, "/files/..a/.b");
	ok(r.err == TD_OK && str_is(route_arg_str(&r.args, "rest"), "..a/.b"),
	   "'*rest' allows names that only start with dots");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = match(a, HTTP_GET, bad[i]);
		ok(r.err == TD_ENOENT, "'%s' is no match", bad[i]);
	}
}

static void test_405(struct arena *a)
{
	struct m r;

	r = match(a, HTTP_PUT, "/tickets/42");
	ok(r.err == TD_EMETHOD && r.fn == NULL &&
		   r.allow == (HTTP_GET | HTTP_HEAD | HTTP_POST | HTTP_PATCH |
			       HTTP_DELETE),
	   "PUT on '/tickets/:id' is 405 with the methods of every match");
	ok(str_is(router_allow_header(a, r.allow),
		  "GET, HEAD, POST, PATCH, DELETE"),
	   "that 405 gives 'Allow: GET, HEAD, POST, PATCH, DELETE'");
	r = match(a, HTTP_DELETE, "/tickets");
	ok(r.err == TD_EMETHOD && r.allow == (HTTP_GET | HTTP_HEAD | HTTP_POST),
	   "DELETE /tickets is 405 allowing GET, HEAD, POST");
	r = match(a, HTTP_POST, "/tickets/new");
	ok(r.err == TD_EMETHOD && r.allow == (HTTP_GET | HTTP_HEAD),
	   "POST /tickets/new is 405: ':id' does not take 'new'");
	r = match(a, HTTP_HEAD, "/api/thing");
	ok(r.err == TD_EMETHOD && r.allow == HTTP_PUT,
	   "HEAD on a PUT-only route is 405 and Allow has no HEAD");
	r = match(a, 0, "/tickets");
	ok(r.err == TD_EMETHOD && r.allow == (HTTP_GET | HTTP_HEAD | HTTP_POST),
	   "an unknown method on a known path is 405");
	r = match(a, HTTP_PUT, "/tickets/0");
	ok(r.err == TD_ENOENT && r.allow == 0,
	   "a wrong method on a path whose id does not parse is 404");
	r = match(a, HTTP_PATCH, "/tickets/5");
	ok(r.err == TD_OK && r.fn == tickets_update &&
		   route_arg_int(&r.args, "id") == 5,
	   "PATCH finds the route whose method set includes it");
}

static void test_head(struct arena *a)
{
	struct m r;
	const struct route *rt = NULL;

	r = match(a, HTTP_HEAD, "/tickets/42");
	ok(r.err == TD_OK && r.fn == tickets_show &&
		   route_arg_int(&r.args, "id") == 42,
	   "HEAD matches the GET route");
	r = match(a, HTTP_HEAD, "/");
	ok(r.err == TD_OK && r.fn == home, "HEAD / matches the root GET route");
	ok(router_match(routes, NROUTES, HTTP_OPTIONS, "/tickets", a, &rt, NULL,
			NULL) == TD_EMETHOD &&
		   rt == NULL,
	   "args and allow may be NULL");
}

int main(void)
{
	struct arena *a = arena_new();

	test_methods(a);
	test_literals(a);
	test_ids(a);
	test_strings(a);
	test_rest(a);
	test_405(a);
	test_head(a);
	arena_free(a);
	return tap_done();
}
