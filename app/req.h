/* req.h: one request's state, its arena, and the response helpers */
#ifndef TD_REQ_H
#define TD_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "auth.h"
#include "db.h"
#include "err.h"
#include "http.h"
#include "router.h"

#define REQ_WANT_PARAMS 4

struct arena;
struct config;
struct db;
struct mustache_rows;
struct mustache_set;

/* What a worker keeps between requests: read-only config, db, templates. */
struct worker_ctx {
	const struct config *conf;
	struct db *db;
	const struct mustache_set *views;
	struct arena
		*arena; /* reset after each request; NULL: one per request */
	int worker_no;
	unsigned long served;
};

struct req_header {
	const char *name;
	const char *value;
};

struct req {
	struct arena *arena;
	struct worker_ctx *ctx;
	struct db *db;
	char request_id[17];

	/* Parsed input. */
	enum http_method method;
	const char *method_name;
	const char *path;     /* decoded path, without the query */
	const char *raw_path; /* as sent (the router decodes parameters) */
	const char *query;    /* raw query string ("" when none) */
	const char *host;
	const char *remote_addr;
	const char *content_type;
	const char *accept;
	const char *authorization; /* the Authorization header, or "" */
	const char *csrf_header;   /* X-CSRF-Token, or NULL */
	const char *user_agent;
	bool https; /* nginx says the client used TLS */
	struct http_params query_params;
	struct http_params form; /* urlencoded or multipart text fields */
	struct http_files files;
	struct http_params cookies;
	json_t *json_body; /* parsed JSON body, or NULL */
	const unsigned char *body;
	size_t body_len;
	struct route_args args;
	const struct route *route;
	bool want_json;	  /* /api/v1/... or Accept: application/json */
	struct auth auth; /* who is calling (kind AUTH_NONE: nobody) */

	/* Response. */
	int status;
	struct req_header headers[16];
	size_t nheaders;
	json_t *view;	       /* the view model; rendered as HTML or JSON */
	const char *view_name; /* template for HTML */
	const struct mustache_rows *view_rows; /* see view_rows(), or NULL */
	size_t nview_rows;
	const char *redirect;  /* Location for a 303 after a write */
	const char *body_out;  /* a raw body (set with body_type) */
	size_t body_out_len;
	const char *body_type;
	const char *error_detail; /* a message for the error page / JSON */
	json_t *error_fields;	  /* per-field messages for 400/422, or NULL */

	/* Reads asked for ahead (req_want), and their results once fetched. */
	struct req_wanted {
		const char *sql; /* NULL once taken */
		int n;
		const char *params[REQ_WANT_PARAMS];
		PGresult *res;
	} wanted[DB_BATCH_MAX];
	int nwanted;
};

/*
 * Records a failure once, at its source, and returns err so callers
 * write `return req_fail(r, TD_EDB, "cannot load ticket %lld", id);`.
 * The message goes to the log; for TD_EINPUT/TD_ETOOBIG/TD_ECONFLICT/
 * TD_ENOENT it is also shown to the user.
 */
enum td_err req_fail(struct req *r, enum td_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Adds a response header (name and value must outlive the request). */
void req_header(struct req *r, const char *name, const char *value);

/* Shortcut: runs sql with params on the request's db, cleared with the arena.
 */
enum td_err req_query(struct req *r, const char *sql, int n,
		      const char *const *params, PGresult **res);

/*
 * A read a page will make, asked for ahead: the reads asked for go to
 * PostgreSQL together at req_fetch_wanted, in one round trip, and the
 * req_query that later makes the same read (same statement, same
 * parameters) takes that result instead of asking again. For pages whose
 * modules each read their part, independently of each other. At most
 * REQ_WANT_PARAMS parameters; more wanted than a batch holds are simply
 * read when asked.
 */
void req_want(struct req *r, const char *sql, int n, const char *const *params);
enum td_err req_fetch_wanted(struct req *r);
/*
 * The same, and the request's transaction commits in that round trip: for
 * a GET page's last reads. Whatever the page does after them runs in a
 * new transaction (db_exec_batch_end).
 */
enum td_err req_fetch_wanted_last(struct req *r);
/*
 * The read wanted and fetched as (sql, params) answers (as_sql,
 * as_params) too: a read asked for ahead by a key known early (a ticket's
 * id) for what its module later asks by the value that key stood for (the
 * ticket's client). Nothing happens if that read was not fetched.
 */
void req_wanted_alias(struct req *r, const char *sql,
		      const char *const *params, const char *as_sql, int n,
		      const char *const *as_params);
/* Drops the results not taken yet: after a write they may be out of date. */
void req_forget_wanted(struct req *r);

/* Hands a json_t reference to the request: decref'd when it ends. */
void req_own_json(struct req *r, json_t *v);

/* An id as decimal text in the arena, for a query parameter. */
const char *req_id(struct req *r, int64_t id);

/* v as compact JSON text in the arena (len may be NULL); NULL on failure. */
const char *req_json_text(struct req *r, json_t *v, size_t *len);

/* The view model root, created on first use; lives with the request. */
json_t *req_view(struct req *r);

/*
 * Makes jansson allocate from the arena of the request being served (and
 * from the heap between requests), so building a view model costs no
 * malloc/free pairs. For worker processes only: a json_t made during a
 * request must not outlive it.
 */
void req_json_in_arena(void);

/* For a process just forked: its request ids draw new random bits. */
void req_new_process(void);

struct FCGX_Request;

/*
 * Serves one accepted FastCGI request from start to finish: parse, route,
 * run the handler, render, write. Never fails: every error becomes a
 * response. All memory is released before it returns.
 */
void req_run(struct worker_ctx *ctx, struct FCGX_Request *fr);
#endif
