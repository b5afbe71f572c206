/* mailpoll.c: mail-poll drains IMAP mailboxes into the mail pipeline
 *
 * At least once, never twice: a message is deleted from the mailbox only
 * after its transaction committed; a crash in between fetches it again
 * on the next run and mail_ingest() answers "duplicate" (Message-ID).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "arena.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "mailingest.h"
#include "mailpoll.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define POLL_LOCK     "7342015" /* pg_advisory_lock key of mail-poll */
#define POLL_MAX_MSGS 500	/* messages per mailbox and run */
#define POLL_MAX_SIZE (50u * 1024 * 1024)

static const char sql_lock[] = "SELECT pg_try_advisory_lock(" POLL_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" POLL_LOCK ")";
static const char sql_tenants[] = "SELECT t FROM mail_poll_tenants() t";
static const char sql_boxes[] =
	"SELECT id, url, username, password FROM mail_mailboxes"
	" WHERE tenant_id = app_tenant() AND enabled ORDER BY id";
static const char sql_polled[] =
	"UPDATE mail_mailboxes SET last_polled_at = now(), last_error = $2"
	" WHERE tenant_id = app_tenant() AND id = $1";

struct box {
	int64_t id;
	const char *url, *user, *password;
};

struct totals {
	long fetched, delivered, failed;
};

static size_t collect(char *p, size_t size, size_t n, void *out)
{
	struct sbuf *sb = out;

	if (sb->len + size * n > POLL_MAX_SIZE)
		return 0; /* curl stops: too big */
	sbuf_add(sb, p, size * n);
	return size * n;
}

/* One IMAP command or fetch on url; the response body in *out. */
static bool imap(CURL *c, const struct box *b, const char *url,
		 const char *command, struct sbuf *out, const char **why,
		 struct arena *a)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	sbuf_reset(out);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERNAME, b->user);
	curl_easy_setopt(c, CURLOPT_PASSWORD, b->password);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, command);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		return true;
	*why = arena_printf(a, "%s%s%s", curl_easy_strerror(rc),
			    *errbuf ? ": " : "", errbuf);
	return false;
}

/* The UIDs of "* SEARCH 3 7 9" lines; at most max. */
static size_t parse_search(const char *s, unsigned long *uids, size_t max)
{
	const char *p = strstr(s, "SEARCH");
	size_t n = 0;
	char *end;
	unsigned long v;

	if (p == NULL)
		return 0;
	p += 6;
	while (*p && *p != '\r' && *p != '\n' && n < max) {
		while (*p == ' ')
			p++;
		v = strtoul(p, &end, 10);
		if (end == p)
			break;
		uids[n++] = v;
		p = end;
	}
	return n;
}

/* Drains one mailbox; false when the database failed (stop the run). */
static bool poll_box(struct req *r, int64_t tenant, const struct box *b,
		     struct totals *tot, const char **why)
{
	unsigned long *uids;
	struct sbuf out;
	struct mail_result res;
	enum td_err err;
	size_t n, i;
	bool db_ok = true, any_deleted = false;
	CURL *c = curl_easy_init();
	struct arena *outer = r->arena;

	*why = NULL;
	if (c == NULL) {
		*why = "cannot start libcurl";
		return true;
	}
	sbuf_init(&out, outer, 4096);
	uids = arena_alloc(outer, POLL_MAX_MSGS * sizeof(*uids));
	if (!imap(c, b, b->url, "UID SEARCH ALL", &out, why, outer)) {
		curl_easy_cleanup(c);
		return true;
	}
	n = parse_search(sbuf_cstr(&out), uids, POLL_MAX_MSGS);
	for (i = 0; i < n && db_ok; i++) {
		const char *url =
			arena_printf(outer, "%s/;UID=%lu", b->url, uids[i]);

		if (!imap(c, b, url, NULL, &out, why, outer))
			break;
		tot->fetched++;
		r->arena = arena_new();
		err = db_tx_begin(r->db, r->arena, tenant);
		if (err == TD_OK)
			err = mail_ingest(r, (const unsigned char *)out.buf,
					  out.len, &res);
		if (err == TD_OK)
			err = db_tx_commit(r->db, r->arena);
		if (err != TD_OK)
			db_tx_rollback(r->db);
		arena_free(r->arena);
		r->arena = outer;
		if (err != TD_OK) {
			/* Left in the mailbox: the next run tries again. */
			tot->failed++;
			db_ok = err != TD_EUNAVAIL;
			*why = arena_printf(outer, "UID %lu not delivered: %s",
					    uids[i], r->db->errmsg);
			continue;
		}
		tot->delivered++;
		/* Committed: now it may go from the mailbox. */
		if (!imap(c, b, b->url,
			  arena_printf(outer,
				       "UID STORE %lu +FLAGS (\\Deleted)",
				       uids[i]),
			  &out, why, outer))
			break;
		any_deleted = true;
	}
	if (any_deleted)
		imap(c, b, b->url, "EXPUNGE", &out, why, outer);
	curl_easy_cleanup(c);
	return db_ok;
}

static bool poll_tenant(struct req *r, int64_t tenant, struct totals *tot)
{
	struct box *boxes;
	const char *params[2], *why;
	PGresult *res;
	int i, n;
	bool ok = true;

	r->auth.tenant_id = tenant;
	if (db_tx_begin(r->db, r->arena, tenant) != TD_OK ||
	    req_query(r, sql_boxes, 0, NULL, &res) != TD_OK)
		return false;
	n = PQntuples(res);
	boxes = arena_alloc(r->arena, (size_t)(n + 1) * sizeof(*boxes));
	for (i = 0; i < n; i++) {
		boxes[i].id = db_int(res, i, 0);
		boxes[i].url = arena_strdup(r->arena, db_text(res, i, 1));
		boxes[i].user = arena_strdup(r->arena, db_text(res, i, 2));
		boxes[i].password = arena_strdup(r->arena, db_text(res, i, 3));
	}
	if (db_tx_commit(r->db, r->arena) != TD_OK)
		return false;
	for (i = 0; i < n && ok; i++) {
		ok = poll_box(r, tenant, &boxes[i], tot, &why);
		if (why != NULL)
			fprintf(stderr, "tallydesk: mailbox %" PRId64 ": %s\n",
				boxes[i].id, why);
		params[0] = req_id(r, boxes[i].id);
		params[1] = why;
		if (ok && (db_tx_begin(r->db, r->arena, tenant) != TD_OK ||
			   req_query(r, sql_polled, 2, params, NULL) != TD_OK ||
			   db_tx_commit(r->db, r->arena) != TD_OK))
			ok = false;
	}
	return ok;
}

int mail_poll_main(const struct config *conf, int argc, char **argv)
{
	struct totals tot = { 0, 0, 0 };
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	PGresult *res;
	int64_t *tenants;
	int i, n, rc = 0;

	(void)argv;
	if (argc != 0) {
		fprintf(stderr, "usage: tallydesk mail-poll\n");
		return 64;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cli_req_init(&r, &ctx, &db, conf, "mail-poll");
	if (db_ensure(&db) != TD_OK ||
	    req_query(&r, sql_lock, 0, NULL, &res) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot reach the database: %s\n",
			db.errmsg);
		rc = 75;
		goto done;
	}
	if (!db_bool(res, 0, 0)) {
		printf("another mail-poll is running\n");
		goto done;
	}
	if (db_tx_begin(&db, r.arena, 0) != TD_OK ||
	    req_query(&r, sql_tenants, 0, NULL, &res) != TD_OK) {
		rc = 75;
		goto done;
	}
	n = PQntuples(res);
	tenants = arena_alloc(r.arena, (size_t)(n + 1) * sizeof(*tenants));
	for (i = 0; i < n; i++)
		tenants[i] = db_int(res, i, 0);
	db_tx_commit(&db, r.arena);
	for (i = 0; i < n; i++) {
		if (!poll_tenant(&r, tenants[i], &tot)) {
			fprintf(stderr, "tallydesk: mail-poll: %s\n",
				db.errmsg);
			db_tx_rollback(&db);
			rc = 75;
			break;
		}
	}
	req_query(&r, sql_unlock, 0, NULL, NULL);
	printf("%ld fetched, %ld delivered, %ld left for the next run\n",
	       tot.fetched, tot.delivered, tot.failed);
done:
	cli_req_release(&r);
	curl_global_cleanup();
	return rc;
}
