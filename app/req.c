/* req.c: one request from FastCGI parameters to the bytes written back */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "arena.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "portal.h" /* portal_host_path */
#include "req.h"
#include "routes.h"
#include "sbuf.h"
#include "view.h"
#include "banned.h"

#define REQ_MAX_URI	      8192
#define REQ_MAX_COOKIE_HEADER 16384
#define API_PREFIX	      "/api/v1"
#define REQ_ARENA_KEEP                                                         \
	(1u << 20) /* bytes a worker's arena keeps between requests */

enum td_err req_fail(struct req *r, enum td_err err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = arena_vprintf(r->arena, fmt, ap);
	va_end(ap);
	switch (err) {
	case TD_EINPUT:
	case TD_ETOOBIG:
	case TD_ECONFLICT:
	case TD_ENOENT:
	case TD_EMETHOD:
	case TD_EAUTH:
	case TD_EFORBID:
		/* The user's own mistake: say it to them, not to the log. */
		r->error_detail = msg;
		log_debug("%s %s %s: %s", r->request_id, r->method_name,
			  r->path, msg);
		break;
	case TD_EDB:
	case TD_EUNAVAIL:
	case TD_EUPSTREAM:
	case TD_ESYS:
		log_error("%s %s %s: %s", r->request_id, r->method_name,
			  r->path, msg);
		break;
	case TD_OK:
	case TD_ERR__MAX:
	default:
		abort();
	}
	return err;
}

void req_header(struct req *r, const char *name, const char *value)
{
	if (r->nheaders == sizeof(r->headers) / sizeof(r->headers[0]))
		abort();
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
}

static bool same_params(const struct req_wanted *w, int n,
			const char *const *params)
{
	int i;

	if (w->n != n)
		return false;
	for (i = 0; i < n; i++)
		if (w->params[i] == NULL ?
			    params[i] != NULL :
			    params[i] == NULL ||
				    strcmp(w->params[i], params[i]) != 0)
			return false;
	return true;
}

void req_want(struct req *r, const char *sql, int n, const char *const *params)
{
	struct req_wanted *w;
	int i;

	if (r->nwanted == DB_BATCH_MAX || n > REQ_WANT_PARAMS)
		return;
	w = &r->wanted[r->nwanted++];
	w->sql = sql;
	w->n = n;
	for (i = 0; i < n; i++)
		w->params[i] = params[i];
	w->res = NULL;
}

static enum td_err fetch_wanted(struct req *r, bool last)
{
	struct db_stmt st[DB_BATCH_MAX];
	enum td_err err;
	int i, k = 0;

	for (i = 0; i < r->nwanted; i++)
		if (r->wanted[i].sql != NULL && r->wanted[i].res == NULL)
			st[k++] = (struct db_stmt){ r->wanted[i].sql,
						    r->wanted[i].n,
						    r->wanted[i].params,
						    &r->wanted[i].res };
	if (k == 0 && !last)
		return TD_OK;
	err = last ? db_exec_batch_end(r->db, r->arena, st, k) :
		     db_exec_batch(r->db, r->arena, st, k);
	if (err != TD_OK)
		return req_fail(r, err, "query failed: %s", r->db->errmsg);
	return TD_OK;
}

enum td_err req_fetch_wanted(struct req *r)
{
	return fetch_wanted(r, false);
}

enum td_err req_fetch_wanted_last(struct req *r)
{
	return fetch_wanted(r, true);
}

void req_wanted_alias(struct req *r, const char *sql, const char *const *params,
		      const char *as_sql, int n, const char *const *as_params)
{
	struct req_wanted *w;
	int i;

	for (i = 0; i < r->nwanted; i++) {
		w = &r->wanted[i];
		if (w->sql == sql && same_params(w, n, params))
			break;
	}
	if (i == r->nwanted || r->wanted[i].res == NULL ||
	    r->nwanted == DB_BATCH_MAX)
		return;
	w = &r->wanted[r->nwanted++];
	*w = r->wanted[i];
	w->sql = as_sql;
	for (i = 0; i < n; i++)
		w->params[i] = as_params[i];
}

void req_forget_wanted(struct req *r)
{
	int i;

	for (i = 0; i < r->nwanted; i++)
		r->wanted[i].sql = NULL;
}

enum td_err req_query(struct req *r, const char *sql, int n,
		      const char *const *params, PGresult **res)
{
	enum td_err err;
	int i;

	for (i = 0; i < r->nwanted; i++) {
		struct req_wanted *w = &r->wanted[i];

		if (w->sql == sql && w->res != NULL &&
		    same_params(w, n, params)) {
			w->sql = NULL;
			if (res != NULL)
				*res = w->res;
			return TD_OK;
		}
	}
	err = db_exec(r->db, r->arena, sql, n, params, res);

	if (err != TD_OK)
		return req_fail(r, err, "query failed: %s", r->db->errmsg);
	return TD_OK;
}

/*
 * The arena of the request in progress, for jansson's allocator. The one
 * mutable global of a worker: a worker serves one request at a time.
 */
static struct arena *json_arena;

/* Each block starts with a tag saying where it came from. */
#define JSON_HDR	16
#define JSON_FROM_HEAP	0x6865617048454150ULL
#define JSON_FROM_ARENA 0x6172656e61415245ULL

static void *json_alloc(size_t n)
{
	unsigned long long *p;

	if (json_arena != NULL) {
		p = arena_alloc_raw(json_arena, n + JSON_HDR);
		p[0] = JSON_FROM_ARENA;
	} else {
		p = xmalloc(n + JSON_HDR);
		p[0] = JSON_FROM_HEAP;
	}
	return (char *)p + JSON_HDR;
}

static void json_release(void *ptr)
{
	unsigned long long *p;

	if (ptr == NULL)
		return;
	p = (unsigned long long *)((char *)ptr - JSON_HDR);
	if (p[0] == JSON_FROM_HEAP)
		free(p);
	/* Arena blocks go when the request's arena is reset. */
}

/* Whether jansson allocates through json_alloc (serve mode does). */
static bool json_tagged;

void req_json_in_arena(void)
{
	json_set_alloc_funcs(json_alloc, json_release);
	json_tagged = true;
}

/*
 * A value built during the request lives in the arena, and so does all it
 * holds (nothing made outside a request is ever attached to one): the
 * arena's reset frees it, and walking it to "free" each node is wasted.
 * Values from the heap (made outside any request) are released as usual.
 */
static void decref(void *p)
{
	json_t *v = p;
	const unsigned long long *tag;

	if (v == NULL || json_is_null(v) || json_is_boolean(v))
		return;	    /* singletons */
	if (!json_tagged) { /* plain malloc: no tag to read */
		json_decref(v);
		return;
	}
	tag = (const unsigned long long *)((const char *)v - JSON_HDR);
	if (tag[0] != JSON_FROM_ARENA)
		json_decref(v);
}

void req_own_json(struct req *r, json_t *v)
{
	arena_defer(r->arena, decref, v);
}

const char *req_id(struct req *r, int64_t id)
{
	return arena_printf(r->arena, "%" PRId64, id);
}

const char *req_json_text(struct req *r, json_t *v, size_t *len)
{
	size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	char *buf;

	if (n == 0)
		return NULL;
	buf = arena_alloc_raw(r->arena, n + 1);
	if (json_dumpb(v, buf, n, JSON_COMPACT | JSON_ENCODE_ANY) != n)
		return NULL;
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

json_t *req_view(struct req *r)
{
	if (r->view == NULL) {
		r->view = json_object();
		req_own_json(r, r->view);
	}
	return r->view;
}

/* A copy of a FastCGI parameter in the arena ("" when absent). */
static const char *param(struct req *r, FCGX_Request *fr, const char *name)
{
	const char *v = FCGX_GetParam(name, fr->envp);

	return arena_strdup(r->arena, v ? v : "");
}

/*
 * A request id: 32 random bits drawn once per process, then a counter, so
 * ids never repeat within a worker (caches key on them) and stay unlikely
 * to meet across workers and hosts, at no cost per request. A worker calls
 * req_new_process after the fork, so no two share the bits.
 */
static bool id_drawn;

void req_new_process(void)
{
	id_drawn = false;
}

static void new_request_id(struct req *r)
{
	static const char hex[] = "0123456789abcdef";
	static uint32_t prefix, counter;
	uint64_t v;
	int i;

	if (!id_drawn) {
		if (RAND_bytes((unsigned char *)&prefix, sizeof(prefix)) != 1)
			prefix = (uint32_t)getpid();
		counter = 0;
		id_drawn = true;
	}
	v = (uint64_t)prefix << 32 | ++counter;
	for (i = 15; i >= 0; i--, v >>= 4)
		r->request_id[i] = hex[v & 15];
	r->request_id[16] = '\0';
}

static const char *url_component(struct req *r, const char *s)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, strlen(s) * 3 + 1);
	http_url_encode(&sb, s);
	return sb.buf;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Reads exactly CONTENT_LENGTH bytes, refusing bodies over the limit. */
static enum td_err read_body(struct req *r, FCGX_Request *fr)
{
	const char *cl = param(r, fr, "CONTENT_LENGTH");
	char *end;
	long long len;
	unsigned char *buf;
	size_t got = 0;

	if (*cl == '\0')
		return TD_OK;
	errno = 0;
	len = strtoll(cl, &end, 10);
	if (end == cl || *end != '\0' || errno != 0 || len < 0)
		return req_fail(r, TD_EINPUT,
				"Content-Length '%s' is not a number", cl);
	if ((unsigned long long)len > r->ctx->conf->max_body)
		return req_fail(
			r, TD_ETOOBIG,
			"the request body is %lld bytes; the limit is %zu", len,
			r->ctx->conf->max_body);
	buf = arena_alloc(r->arena, (size_t)len + 1);
	while (got < (size_t)len) {
		int want = (size_t)len - got > 65536 ? 65536 :
						       (int)((size_t)len - got);
		int n = FCGX_GetStr((char *)buf + got, want, fr->in);

		if (n <= 0)
			return req_fail(
				r, TD_EINPUT,
				"the request body ended after %zu of %lld bytes",
				got, len);
		got += (size_t)n;
	}
	r->body = buf;
	r->body_len = got;
	return TD_OK;
}

static enum td_err parse_body(struct req *r, struct http_limits *lim)
{
	const char *ct = r->content_type, *why = NULL;
	enum td_err err = TD_OK;
	json_error_t jerr;

	if (r->body_len == 0)
		return TD_OK;
	if (has_prefix(ct, "application/x-www-form-urlencoded")) {
		err = http_parse_urlencoded(r->arena, (const char *)r->body,
					    r->body_len, lim, &r->form, &why);
	} else if (has_prefix(ct, "multipart/form-data")) {
		err = http_parse_multipart(r->arena, ct, r->body, r->body_len,
					   lim, &r->form, &r->files, &why);
	} else if (has_prefix(ct, "application/json")) {
		r->json_body = json_loadb((const char *)r->body, r->body_len,
					  JSON_REJECT_DUPLICATES, &jerr);
		if (r->json_body == NULL)
			return req_fail(
				r, TD_EINPUT,
				"the JSON body is invalid at line %d, column %d: %s",
				jerr.line, jerr.column, jerr.text);
		req_own_json(r, r->json_body);
	}
	if (err != TD_OK)
		return req_fail(r, err, "%s",
				why ? why : "the request body is malformed");
	return TD_OK;
}

/* Fills the request from the FastCGI parameters and body. */
static enum td_err parse(struct req *r, FCGX_Request *fr)
{
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	const char *uri, *q, *why = NULL, *cookie;
	char *path;
	size_t pathlen;
	enum td_err err;

	lim.max_file = r->ctx->conf->max_upload;
	r->method_name = param(r, fr, "REQUEST_METHOD");
	r->method = router_method(r->method_name);
	uri = param(r, fr, "REQUEST_URI");
	r->host = param(r, fr, "HTTP_HOST");
	r->remote_addr = param(r, fr, "REMOTE_ADDR");
	r->content_type = param(r, fr, "CONTENT_TYPE");
	r->accept = param(r, fr, "HTTP_ACCEPT");
	r->authorization = param(r, fr, "HTTP_AUTHORIZATION");
	r->user_agent = param(r, fr, "HTTP_USER_AGENT");
	r->https = !strcmp(param(r, fr, "HTTPS"), "on");
	r->csrf_header = FCGX_GetParam("HTTP_X_CSRF_TOKEN", fr->envp);
	if (r->csrf_header != NULL)
		r->csrf_header = arena_strdup(r->arena, r->csrf_header);
	r->path = "/";
	if (strlen(uri) > REQ_MAX_URI)
		return req_fail(r, TD_EINPUT,
				"the address is longer than %d bytes",
				REQ_MAX_URI);
	q = strchr(uri, '?');
	r->query = q ? q + 1 : "";
	err = http_percent_decode(r->arena, uri,
				  q ? (size_t)(q - uri) : strlen(uri), false,
				  &path, &pathlen, &why);
	if (err != TD_OK)
		return req_fail(r, TD_EINPUT, "the address is malformed: %s",
				why ? why : "bad encoding");
	if (path[0] != '/')
		return req_fail(r, TD_EINPUT,
				"the address must start with '/'");
	r->path = path;
	r->raw_path = arena_strndup(r->arena, uri,
				    q ? (size_t)(q - uri) : strlen(uri));
	if (has_prefix(path, API_PREFIX) && (path[strlen(API_PREFIX)] == '/' ||
					     path[strlen(API_PREFIX)] == '\0'))
		r->want_json = true;
	else if (has_prefix(r->accept, "application/json"))
		r->want_json = true;
	err = http_parse_urlencoded(r->arena, r->query, strlen(r->query), &lim,
				    &r->query_params, &why);
	if (err != TD_OK)
		return req_fail(r, err, "the query string is malformed: %s",
				why ? why : "bad encoding");
	cookie = param(r, fr, "HTTP_COOKIE");
	if (strlen(cookie) > REQ_MAX_COOKIE_HEADER)
		return req_fail(r, TD_ETOOBIG,
				"the Cookie header is too large");
	err = http_parse_cookies(r->arena, cookie, &lim, &r->cookies, &why);
	if (err != TD_OK)
		return req_fail(r, err, "the Cookie header is malformed: %s",
				why ? why : "bad syntax");
	err = read_body(r, fr);
	if (err != TD_OK)
		return err;
	return parse_body(r, &lim);
}

static bool is_unsafe(enum http_method m)
{
	return m != HTTP_GET && m != HTTP_HEAD && m != HTTP_OPTIONS;
}

/*
 * Who may go on: a route that is not public needs a caller whose role the
 * route names. Browsers without a session go to the sign-in page; API
 * callers get 401. Unsafe browser methods need the CSRF token. All of it
 * runs before the handler.
 */
static enum td_err admit(struct req *r)
{
	unsigned flags = r->route->flags;
	const char *next;
	enum td_err err;

	if (flags & ROUTE_NOTX)
		return TD_OK;
	err = auth_authenticate(r);
	if (err != TD_OK)
		return err;
	if (!(flags & ROUTE_PUBLIC)) {
		if (r->auth.kind == AUTH_NONE) {
			if (r->want_json)
				return req_fail(
					r, TD_EAUTH,
					"sign in or send 'Authorization: Bearer <API key>'");
			next = arena_printf(r->arena, "%s%s%s", r->raw_path,
					    *r->query ? "?" : "", r->query);
			r->redirect = arena_printf(r->arena, "/login?next=%s",
						   url_component(r, next));
			return TD_OK;
		}
		if (r->auth.kind == AUTH_MFA_PENDING && !(flags & ROUTE_MFA)) {
			if (r->want_json)
				return req_fail(
					r, TD_EAUTH,
					"two-step verification is not finished");
			r->redirect = "/login/totp";
			return TD_OK;
		}
		if (!(r->route->roles & r->auth.role))
			return req_fail(r, TD_EFORBID, "a %s cannot use %s %s",
					r->auth.role_name, r->method_name,
					r->path);
	}
	if (is_unsafe(r->method) && !(flags & ROUTE_NOCSRF))
		return auth_check_csrf(r);
	return TD_OK;
}

static enum td_err dispatch(struct req *r)
{
	size_t n;
	const struct route *table = routes_table(&n);
	const char *path = r->raw_path;
	unsigned allow = 0;
	enum td_err err;

	if (r->method == 0)
		return req_fail(r, TD_EMETHOD, "method '%s' is not supported",
				r->method_name);
	if (has_prefix(path, API_PREFIX) && r->want_json) {
		path += strlen(API_PREFIX);
		if (*path == '\0')
			path = "/";
	}
	/* portal: a tenant's own host name serves its portal (portal.c). */
	path = portal_host_path(r, path);
	err = router_match(table, n, r->method, path, r->arena, &r->route,
			   &r->args, &allow);
	if (err == TD_EMETHOD) {
		req_header(r, "Allow", router_allow_header(r->arena, allow));
		return req_fail(r, err, "%s is not allowed on %s",
				r->method_name, r->path);
	}
	if (err != TD_OK)
		return req_fail(r, TD_ENOENT, "no page at %s", r->path);
	if (r->route->flags & ROUTE_JSON)
		r->want_json = true;
	err = admit(r);
	if (err != TD_OK || r->redirect != NULL)
		return err;
	err = r->route->fn(r);
	if (err != TD_OK)
		return err;
	if (r->redirect == NULL && r->body_out == NULL) {
		err = view_render(r);
		if (err != TD_OK)
			return err;
	}
	if (r->db->in_tx) {
		err = db_tx_commit(r->db, r->arena);
		if (err != TD_OK)
			return req_fail(r, err, "cannot commit: %s",
					r->db->errmsg);
	}
	return TD_OK;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

/*
 * The response as FastCGI STDOUT records written straight to the
 * connection, as few and as large as the protocol allows: libfcgi's own
 * stream would cut a page into 8 KB writes, each a system call here and a
 * read in nginx. The same write ends the stream and the request (an empty
 * STDOUT record, then FCGI_END_REQUEST), so nginx wakes once for the
 * whole response; libfcgi is told its streams are closed, and
 * FCGX_Finish_r then only frees the request. A client that went away
 * (EPIPE, ECONNRESET) just stops the writing.
 */
#define FCGI_STDOUT_TYPE      6
#define FCGI_END_REQUEST_TYPE 3
#define RECORD_MAX	      65535
#define RECORDS_MAX	      32

static void put_header(unsigned char h[8], int type, int id, size_t len)
{
	h[0] = 1; /* FCGI_VERSION_1 */
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0; /* no padding */
	h[7] = 0;
}

/* Sends iov[0..k) whole; false when the connection is gone. */
static bool send_all(int fd, struct iovec *iov, size_t k)
{
	struct msghdr m;
	size_t n = 0;
	ssize_t w;

	while (n < k) {
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov + n;
		m.msg_iovlen = k - n;
		w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		while (n < k && (size_t)w >= iov[n].iov_len)
			w -= (ssize_t)iov[n++].iov_len;
		if (n < k) {
			iov[n].iov_base = (char *)iov[n].iov_base + w;
			iov[n].iov_len -= (size_t)w;
		}
	}
	return true;
}

/*
 * The head, then the body, as records of at most RECORD_MAX bytes, then
 * the end of the stream and of the request.
 */
static void write_records(FCGX_Request *fr, const char *head, size_t nhead,
			  const char *body, size_t nbody)
{
	/* An empty STDOUT record; FCGI_END_REQUEST, status 0, complete. */
	unsigned char end[24] = { 0 };
	unsigned char hdr[RECORDS_MAX][8];
	struct iovec iov[2 * RECORDS_MAX + 1];
	const char *seg[2] = { head, body };
	size_t len[2] = { nhead, nbody }, off = 0, n, k = 0;
	int s = 0;

	while (s < 2) {
		if (off == len[s]) {
			s++;
			off = 0;
			continue;
		}
		n = len[s] - off < RECORD_MAX ? len[s] - off : RECORD_MAX;
		put_header(hdr[k / 2], FCGI_STDOUT_TYPE, fr->requestId, n);
		iov[k] = (struct iovec){ hdr[k / 2], 8 };
		iov[k + 1] = (struct iovec){ (void *)(seg[s] + off), n };
		k += 2;
		off += n;
		if (k == 2 * RECORDS_MAX) {
			if (!send_all(fr->ipcFd, iov, k))
				return;
			k = 0;
		}
	}
	put_header(end, FCGI_STDOUT_TYPE, fr->requestId, 0);
	put_header(end + 8, FCGI_END_REQUEST_TYPE, fr->requestId, 8);
	iov[k++] = (struct iovec){ end, sizeof(end) };
	if (!send_all(fr->ipcFd, iov, k))
		return;
	/* Both ended; nothing was written to stderr, which needs no end. */
	fr->out->wasFCloseCalled = 1;
	fr->err->wasFCloseCalled = 1;
}

static void write_response(struct req *r, FCGX_Request *fr)
{
	struct sbuf h;
	size_t i;

	sbuf_init(&h, r->arena, 512);
	if (r->redirect != NULL && r->status < 300)
		r->status = 303;
	sbuf_addf(&h, "Status: %d %s\r\n", r->status, reason(r->status));
	if (r->redirect != NULL)
		sbuf_addf(&h, "Location: %s\r\n", r->redirect);
	sbuf_addf(&h, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		  r->body_type ? r->body_type : "text/plain; charset=utf-8",
		  r->body_out_len);
	sbuf_addf(&h, "X-Request-Id: %s\r\nCache-Control: no-store\r\n",
		  r->request_id);
	if (r->https)
		sbuf_adds(
			&h,
			"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n");
	for (i = 0; i < r->nheaders; i++)
		sbuf_addf(&h, "%s: %s\r\n", r->headers[i].name,
			  r->headers[i].value);
	sbuf_adds(&h, "\r\n");
	if (r->method == HTTP_HEAD)
		write_records(fr, h.buf, h.len, NULL, 0);
	else
		write_records(fr, h.buf, h.len, r->body_out, r->body_out_len);
}

void req_run(struct worker_ctx *ctx, FCGX_Request *fr)
{
	struct req r;
	enum td_err err;

	memset(&r, 0, sizeof(r));
	r.auth.directory_version = -1;
	r.arena = ctx->arena ? ctx->arena : arena_new();
	json_arena = r.arena;
	r.ctx = ctx;
	r.db = ctx->db;
	r.status = 200;
	r.method_name = "";
	r.path = "";
	new_request_id(&r);
	err = parse(&r, fr);
	if (err == TD_OK)
		err = dispatch(&r);
	if (err != TD_OK) {
		r.body_out = NULL;
		r.body_out_len = 0;
		view_render_error(&r, err);
	}
	write_response(&r, fr);
	ctx->served++;
	if (ctx->arena != NULL)
		arena_reset(ctx->arena, REQ_ARENA_KEEP);
	else
		arena_free(r.arena);
	json_arena = NULL;
}
