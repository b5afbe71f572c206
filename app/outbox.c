/* outbox.c: mail leaves through the outbox (SMTP with libcurl, DKIM)
 *
 * Every mail is a row written in the transaction of the change that
 * caused it. outbox-send takes the due rows one at a time: it marks the
 * row 'sending' (with its Message-ID fixed) and commits BEFORE talking to
 * the SMTP server, and marks it 'sent' after. A crash in between leaves a
 * 'sending' row that is tried again after ten minutes with the same
 * Message-ID, so the receiving side can recognise it; nothing is ever
 * sent twice by design and no row is ever forgotten.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "arena.h"
#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "maildkim.h"
#include "outbox.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define OUTBOX_LOCK	 "7342014" /* pg_advisory_lock key of outbox-send */
#define OUTBOX_BATCH	 200	   /* rows per tenant and pass */
#define OUTBOX_MAX_TRIES 8	   /* then the row is marked failed */

static const char sql_lock[] = "SELECT pg_try_advisory_lock(" OUTBOX_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" OUTBOX_LOCK ")";
static const char sql_tenants[] = "SELECT t FROM mail_outbox_tenants() t";
static const char sql_due[] =
	"SELECT id FROM outbox WHERE tenant_id = app_tenant()"
	" AND status IN ('queued', 'sending') AND next_attempt_at <= now()"
	" ORDER BY id LIMIT 200";
static const char sql_sender[] =
	"SELECT t.name, t.slug, coalesce(nullif(s.support_address, ''), $1)"
	" FROM tenants t LEFT JOIN mail_settings s ON s.tenant_id = t.id"
	" WHERE t.id = app_tenant()";
/* Status before the SMTP transaction; a crash retries in ten minutes. */
static const char sql_claim[] =
	"UPDATE outbox SET status = 'sending', sending_since = now(),"
	" attempts = attempts + 1, next_attempt_at = now() + interval '10 minutes',"
	" message_id = coalesce(message_id, $2), from_addr = coalesce(from_addr, $3)"
	" WHERE tenant_id = app_tenant() AND id = $1"
	" AND status IN ('queued', 'sending') AND next_attempt_at <= now()"
	" RETURNING to_addr, subject, body_text, body_html, message_id, from_addr,"
	" in_reply_to, refs, auto_submitted, attempts, ticket_id";
/* The row's attachments, in order, with their bytes. */
static const char sql_attachments[] =
	"SELECT a.filename, f.content_type, f.bytes FROM outbox_attachments a"
	" JOIN stored_files f ON f.tenant_id = a.tenant_id AND f.id = a.file_id"
	" WHERE a.tenant_id = app_tenant() AND a.outbox_id = $1"
	" ORDER BY a.position";
static const char sql_key[] =
	"SELECT domain, selector, dkim_private_pem FROM mail_domains"
	" WHERE tenant_id = app_tenant() AND domain = lower($1)";
static const char sql_key_new[] =
	"INSERT INTO mail_domains (tenant_id, domain, client_id,"
	" dkim_private_pem, dkim_public_b64, from_address) VALUES (app_tenant(),"
	" lower($1), $2, $3, $4, coalesce(lower($5), '')) ON CONFLICT (tenant_id,"
	" domain) DO NOTHING RETURNING id";
static const char sql_sent[] =
	"UPDATE outbox SET status = 'sent', sent_at = now(), last_error = NULL,"
	" sending_since = NULL WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_sent_copy[] =
	"INSERT INTO mail_messages (tenant_id, direction, message_id, raw_sha256,"
	" from_addr, subject, outcome, ticket_id, raw) VALUES (app_tenant(),"
	" 'out', $1, $2::bytea, $3, $4, 'sent', $5, $6::bytea)"
	" ON CONFLICT DO NOTHING";
/* Backoff: 1, 2, 4 ... minutes, at most an hour; permanent: failed. */
static const char sql_retry[] =
	"UPDATE outbox SET status = CASE WHEN $3::boolean THEN 'failed'"
	" ELSE 'queued' END, last_error = $2, sending_since = NULL,"
	" next_attempt_at = now() + make_interval(secs =>"
	" least(3600, 60 * power(2, greatest(attempts - 1, 0))))"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_domains[] =
	"SELECT domain, selector, dkim_public_b64, coalesce(c.name, ''),"
	" from_address FROM mail_domains d LEFT JOIN clients c"
	" ON c.tenant_id = d.tenant_id AND c.id = d.client_id"
	" WHERE d.tenant_id = app_tenant() ORDER BY domain";
static const char sql_client_known[] =
	"SELECT 1 FROM clients WHERE tenant_id = app_tenant() AND id = $1";

struct smtp {
	const char *url;
	const char *user;
	const char *password;
	bool starttls;
	const char *fallback_from;
};

struct totals {
	long sent, retried, failed;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v ? v : dflt;
}

static const char *hex(struct arena *a, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *out = arena_alloc_raw(a, 2 * n + 3), *w = out;
	size_t i;

	*w++ = '\\';
	*w++ = 'x';
	for (i = 0; i < n; i++) {
		*w++ = digits[p[i] >> 4];
		*w++ = digits[p[i] & 15];
	}
	*w = '\0';
	return out;
}

static bool ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80 || *s == '\r' || *s == '\n')
			return false;
	return true;
}

/* A header value as is when plain ASCII, else one RFC 2047 B word per
 * 45 bytes (never splitting a UTF-8 character). */
static void add_text_header(struct sbuf *sb, const char *name, const char *v)
{
	size_t len = strlen(v), i = 0, n;
	char buf[80];

	sbuf_addf(sb, "%s: ", name);
	if (ascii_only(v)) {
		sbuf_adds(sb, v);
		sbuf_adds(sb, "\r\n");
		return;
	}
	while (i < len) {
		n = len - i > 45 ? 45 : len - i;
		while (i + n < len && ((unsigned char)v[i + n] & 0xc0) == 0x80)
			n--;
		EVP_EncodeBlock((unsigned char *)buf,
				(const unsigned char *)v + i, (int)n);
		sbuf_addf(sb, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", buf);
		i += n;
	}
	sbuf_adds(sb, "\r\n");
}

/* len bytes of body as base64 lines of 76 characters, CRLF. */
static void add_base64(struct sbuf *sb, const char *body, size_t len)
{
	size_t i, n;
	char buf[80];

	for (i = 0; i < len; i += 57) {
		n = len - i > 57 ? 57 : len - i;
		EVP_EncodeBlock((unsigned char *)buf,
				(const unsigned char *)body + i, (int)n);
		sbuf_adds(sb, buf);
		sbuf_adds(sb, "\r\n");
	}
}

/* A file that goes with the mail (the name is checked by the table). */
struct attachment {
	const char *filename, *type, *data;
	size_t len;
};

struct row {
	int64_t id;
	const char *to, *subject, *text, *html, *message_id, *from;
	const char *in_reply_to, *refs, *auto_submitted;
	int64_t attempts, ticket_id;
	struct attachment *files;
	int nfiles;
};

/* The text (and HTML) of the mail: one part, or multipart/alternative. */
static void add_body(struct sbuf *sb, const struct row *w)
{
	const char *boundary = "=_td_alt_boundary";

	if (*w->html) {
		sbuf_addf(
			sb,
			"Content-Type: multipart/alternative; boundary=\"%s\"\r\n"
			"\r\n--%s\r\n",
			boundary, boundary);
	}
	sbuf_adds(sb, "Content-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: base64\r\n\r\n");
	add_base64(sb, w->text, strlen(w->text));
	if (*w->html) {
		sbuf_addf(
			sb,
			"\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\n",
			boundary);
		add_base64(sb, w->html, strlen(w->html));
		sbuf_addf(sb, "\r\n--%s--\r\n", boundary);
	}
}

/* The whole message, CRLF, without the DKIM-Signature (added in front). */
static const char *build_message(struct arena *a, const struct row *w,
				 const char *from_name, const char *slug)
{
	struct sbuf sb;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	const char *mixed = "=_td_mixed_boundary";
	size_t size = strlen(w->text) * 2 + strlen(w->html) * 2 + 1024;
	int i;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	for (i = 0; i < w->nfiles; i++)
		size += w->files[i].len * 4 / 3 + w->files[i].len / 38 + 512;
	sbuf_init(&sb, a, size);
	sbuf_addf(&sb, "Date: %s\r\n", date);
	if (from_name != NULL && *from_name && ascii_only(from_name) &&
	    strpbrk(from_name, "\"\\") == NULL)
		sbuf_addf(&sb, "From: \"%s\" <%s>\r\n", from_name, w->from);
	else
		sbuf_addf(&sb, "From: %s\r\n", w->from);
	sbuf_addf(&sb, "To: %s\r\n", w->to);
	add_text_header(&sb, "Subject", w->subject);
	sbuf_addf(&sb, "Message-ID: %s\r\n", w->message_id);
	if (*w->in_reply_to)
		sbuf_addf(&sb, "In-Reply-To: %s\r\n", w->in_reply_to);
	if (*w->refs)
		sbuf_addf(&sb, "References: %s\r\n", w->refs);
	if (*w->auto_submitted)
		sbuf_addf(&sb, "Auto-Submitted: %s\r\n", w->auto_submitted);
	sbuf_addf(&sb, "X-Tallydesk-Tenant: %s\r\nMIME-Version: 1.0\r\n", slug);
	if (w->nfiles == 0) {
		add_body(&sb, w);
		return sbuf_cstr(&sb);
	}
	/* With files: multipart/mixed, the text first, then each file. */
	sbuf_addf(&sb,
		  "Content-Type: multipart/mixed; boundary=\"%s\"\r\n"
		  "\r\n--%s\r\n",
		  mixed, mixed);
	add_body(&sb, w);
	for (i = 0; i < w->nfiles; i++) {
		sbuf_addf(&sb,
			  "\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\n"
			  "Content-Disposition: attachment; filename=\"%s\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\n",
			  mixed, w->files[i].type, w->files[i].filename,
			  w->files[i].filename);
		add_base64(&sb, w->files[i].data, w->files[i].len);
	}
	sbuf_addf(&sb, "\r\n--%s--\r\n", mixed);
	return sbuf_cstr(&sb);
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *p)
{
	struct upload *u = p;
	size_t n = size * nitems;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/*
 * One SMTP transaction. 0 sent; 1 try again later; 2 never (5xx).
 * *why says what went wrong.
 */
static int smtp_send(struct arena *a, const struct smtp *s, const char *from,
		     const char *to, const char *msg, const char **why)
{
	struct curl_slist *rcpt = NULL;
	struct upload u = { msg, strlen(msg), 0 };
	char errbuf[CURL_ERROR_SIZE] = "";
	long code = 0;
	CURLcode rc;
	CURL *c;

	c = curl_easy_init();
	if (c == NULL) {
		*why = "cannot start libcurl";
		return 1;
	}
	rcpt = curl_slist_append(rcpt, arena_printf(a, "<%s>", to));
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, arena_printf(a, "<%s>", from));
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_INFILESIZE, (long)u.len);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (s->user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, s->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD,
				 s->password != NULL ? s->password : "");
	}
	if (s->starttls)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	*why = arena_printf(a, "%s%s%s (SMTP %ld)", curl_easy_strerror(rc),
			    *errbuf ? ": " : "", errbuf, code);
	return code >= 500 && code < 600 ? 2 : 1;
}

/* The key of from's domain, made (and kept) on first use. */
static enum td_err domain_key(struct req *r, const char *from,
			      const char **domain, const char **selector,
			      const char **pem)
{
	const char *params[5], *pub;
	PGresult *res;
	enum td_err err;
	const char *at = strrchr(from, '@');

	*domain = NULL;
	if (at == NULL)
		return TD_OK;
	params[0] = at + 1;
	err = req_query(r, sql_key, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0) {
		if (!dkim_keygen(r->arena, &params[2], &pub))
			return req_fail(r, TD_ESYS, "cannot make a DKIM key");
		params[1] = NULL;
		params[3] = pub;
		params[4] = NULL; /* no From address of its own */
		err = req_query(r, sql_key_new, 5, params, NULL);
		if (err != TD_OK)
			return err;
		params[0] = at + 1;
		err = req_query(r, sql_key, 1, params, &res);
		if (err != TD_OK)
			return err;
	}
	if (PQntuples(res) == 0)
		return TD_OK; /* not a domain name we can sign for */
	*domain = arena_strdup(r->arena, db_text(res, 0, 0));
	*selector = arena_strdup(r->arena, db_text(res, 0, 1));
	*pem = arena_strdup(r->arena, db_text(res, 0, 2));
	return TD_OK;
}

static const char *new_message_id(struct req *r, int64_t tenant, int64_t id,
				  const char *from)
{
	unsigned char rnd[8];
	const char *at = from != NULL ? strrchr(from, '@') : NULL;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	return arena_printf(r->arena, "<td.%" PRId64 ".%" PRId64 ".%s@%s>",
			    tenant, id, hex(r->arena, rnd, sizeof(rnd)) + 2,
			    at != NULL ? at + 1 : "tallydesk.invalid");
}

/* The row's files into w->files; false when the database failed. */
static bool load_attachments(struct req *r, struct row *w)
{
	const char *params[1] = { req_id(r, w->id) };
	unsigned char *raw;
	char *copy;
	PGresult *res;
	size_t len;
	int i;

	if (req_query(r, sql_attachments, 1, params, &res) != TD_OK)
		return false;
	w->nfiles = PQntuples(res);
	w->files = arena_alloc(r->arena,
			       (size_t)(w->nfiles + 1) * sizeof(*w->files));
	for (i = 0; i < w->nfiles; i++) {
		raw = PQunescapeBytea((const unsigned char *)db_text(res, i, 2),
				      &len);
		if (raw == NULL)
			return false;
		copy = arena_alloc_raw(r->arena, len + 1);
		memcpy(copy, raw, len);
		PQfreemem(raw);
		w->files[i].filename =
			arena_strdup(r->arena, db_text(res, i, 0));
		w->files[i].type = arena_strdup(r->arena, db_text(res, i, 1));
		w->files[i].data = copy;
		w->files[i].len = len;
	}
	return true;
}

/* Claims, sends and settles one row; false when the database failed. */
static bool send_one(struct req *r, const struct smtp *s, int64_t tenant,
		     int64_t id, struct totals *tot)
{
	const char *params[6], *msg, *why = NULL, *sig, *domain, *sel, *pem;
	const char *from_name, *slug, *fallback;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct row w;
	PGresult *res;
	enum td_err err;
	int rc;

	/* 1. status before: 'sending', with the Message-ID fixed. */
	err = db_tx_begin(r->db, r->arena, tenant);
	params[0] = s->fallback_from;
	if (err == TD_OK)
		err = req_query(r, sql_sender, 1, params, &res);
	if (err != TD_OK)
		return false;
	if (PQntuples(res) == 0)
		return db_tx_commit(r->db, r->arena) == TD_OK;
	from_name = arena_strdup(r->arena, db_text(res, 0, 0));
	slug = arena_strdup(r->arena, db_text(res, 0, 1));
	fallback = db_isnull(res, 0, 2) ?
			   NULL :
			   arena_strdup(r->arena, db_text(res, 0, 2));
	params[0] = req_id(r, id);
	params[1] = new_message_id(r, tenant, id, fallback);
	params[2] = fallback;
	err = req_query(r, sql_claim, 3, params, &res);
	if (err != TD_OK)
		return false;
	if (PQntuples(res) == 0) /* sent meanwhile by someone else */
		return db_tx_commit(r->db, r->arena) == TD_OK;
	memset(&w, 0, sizeof(w));
	w.id = id;
	w.to = arena_strdup(r->arena, db_text(res, 0, 0));
	w.subject = arena_strdup(r->arena, db_text(res, 0, 1));
	w.text = arena_strdup(r->arena, db_text(res, 0, 2));
	w.html = arena_strdup(r->arena, db_text(res, 0, 3));
	w.message_id = arena_strdup(r->arena, db_text(res, 0, 4));
	w.from = db_isnull(res, 0, 5) ?
			 NULL :
			 arena_strdup(r->arena, db_text(res, 0, 5));
	w.in_reply_to = arena_strdup(r->arena, db_text(res, 0, 6));
	w.refs = arena_strdup(r->arena, db_text(res, 0, 7));
	w.auto_submitted = arena_strdup(r->arena, db_text(res, 0, 8));
	w.attempts = db_int(res, 0, 9);
	w.ticket_id = db_isnull(res, 0, 10) ? 0 : db_int(res, 0, 10);
	if (!load_attachments(r, &w))
		return false;
	domain = sel = pem = NULL;
	if (w.from != NULL &&
	    domain_key(r, w.from, &domain, &sel, &pem) != TD_OK)
		return false;
	if (db_tx_commit(r->db, r->arena) != TD_OK)
		return false;

	/* 2. the SMTP transaction. */
	if (w.from == NULL) {
		rc = 2;
		why = "no sender address: set the support address in the mail settings";
	} else if (strchr(w.to, '@') == NULL ||
		   strpbrk(w.to, "\r\n<>") != NULL) {
		rc = 2;
		why = "the recipient is not an email address";
	} else {
		msg = build_message(r->arena, &w, from_name, slug);
		if (domain != NULL) {
			sig = dkim_sign_message(r->arena, msg, strlen(msg),
						domain, sel, pem, &why);
			if (sig == NULL) {
				fprintf(stderr,
					"tallydesk: outbox %" PRId64
					": cannot sign: %s\n",
					id, why);
				return false;
			}
			msg = arena_printf(r->arena, "%s\r\n%s", sig, msg);
		}
		rc = smtp_send(r->arena, s, w.from, w.to, msg, &why);
		if (rc == 0)
			EVP_Digest(msg, strlen(msg), md, &mdlen, EVP_sha256(),
				   NULL);
	}

	/* 3. status after. */
	err = db_tx_begin(r->db, r->arena, tenant);
	params[0] = req_id(r, id);
	if (rc == 0) {
		if (err == TD_OK)
			err = req_query(r, sql_sent, 1, params, NULL);
		params[0] = w.message_id;
		params[1] = hex(r->arena, md, mdlen);
		params[2] = w.from;
		params[3] = w.subject;
		params[4] = w.ticket_id != 0 ? req_id(r, w.ticket_id) : NULL;
		params[5] =
			hex(r->arena, (const unsigned char *)msg, strlen(msg));
		if (err == TD_OK)
			err = req_query(r, sql_sent_copy, 6, params, NULL);
		if (err == TD_OK)
			err = audit_write(r, "outbox.sent", "outbox", id, NULL,
					  NULL);
		tot->sent += err == TD_OK;
	} else {
		bool permanent = rc == 2 || w.attempts >= OUTBOX_MAX_TRIES;

		params[1] = why;
		params[2] = permanent ? "true" : "false";
		if (err == TD_OK)
			err = req_query(r, sql_retry, 3, params, NULL);
		if (err == TD_OK && permanent)
			err = audit_write(r, "outbox.failed", "outbox", id,
					  NULL, NULL);
		fprintf(stderr, "tallydesk: outbox %" PRId64 " to %s: %s%s\n",
			id, w.to, why,
			permanent ? " (gave up)" : " (will retry)");
		if (permanent)
			tot->failed++;
		else
			tot->retried++;
	}
	if (err == TD_OK)
		err = db_tx_commit(r->db, r->arena);
	return err == TD_OK;
}

/* One pass over every tenant with mail due; false when the database failed. */
static bool pass(struct req *r, const struct smtp *s, struct totals *tot)
{
	struct arena *outer = r->arena, *a;
	int64_t *tenants, *ids;
	PGresult *res;
	int nt, ni, i, j;
	bool ok = true;

	if (db_tx_begin(r->db, r->arena, 0) != TD_OK ||
	    req_query(r, sql_tenants, 0, NULL, &res) != TD_OK)
		return false;
	nt = PQntuples(res);
	tenants = arena_alloc(outer, (size_t)(nt + 1) * sizeof(*tenants));
	for (i = 0; i < nt; i++)
		tenants[i] = db_int(res, i, 0);
	if (db_tx_commit(r->db, r->arena) != TD_OK)
		return false;
	for (i = 0; i < nt && ok && !stopping; i++) {
		r->auth.tenant_id = tenants[i];
		if (db_tx_begin(r->db, outer, tenants[i]) != TD_OK ||
		    req_query(r, sql_due, 0, NULL, &res) != TD_OK)
			return false;
		ni = PQntuples(res);
		ids = arena_alloc(outer, (size_t)(ni + 1) * sizeof(*ids));
		for (j = 0; j < ni; j++)
			ids[j] = db_int(res, j, 0);
		if (db_tx_commit(r->db, outer) != TD_OK)
			return false;
		for (j = 0; j < ni && ok && !stopping; j++) {
			a = arena_new();
			r->arena = a;
			ok = send_one(r, s, tenants[i], ids[j], tot);
			if (!ok)
				db_tx_rollback(r->db);
			arena_free(a);
			r->arena = outer;
		}
	}
	return ok;
}

int outbox_send_main(const struct config *conf, int argc, char **argv)
{
	struct smtp s;
	struct totals tot = { 0, 0, 0 };
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	struct timespec nap;
	PGresult *res;
	long loop = 0;
	char *end;
	int i, rc = 0;
	bool ok;

	s.url = env_or("TALLYDESK_SMTP_URL", "smtp://127.0.0.1:25");
	s.user = env_or("TALLYDESK_SMTP_USER", NULL);
	s.password = env_or("TALLYDESK_SMTP_PASSWORD", NULL);
	s.starttls = !strcmp(env_or("TALLYDESK_SMTP_STARTTLS", "no"), "yes");
	s.fallback_from = env_or("TALLYDESK_MAIL_FROM", NULL);
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--once")) {
			loop = 0;
		} else if (!strcmp(argv[i], "--smtp") && i + 1 < argc) {
			s.url = argv[++i];
		} else if (!strcmp(argv[i], "--starttls")) {
			s.starttls = true;
		} else if (!strcmp(argv[i], "--loop") && i + 1 < argc) {
			loop = strtol(argv[++i], &end, 10);
			if (*end != '\0' || loop < 1 || loop > 3600)
				goto usage;
		} else {
			goto usage;
		}
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cli_req_init(&r, &ctx, &db, conf, "outbox-send");
	if (db_ensure(&db) != TD_OK ||
	    req_query(&r, sql_lock, 0, NULL, &res) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot reach the database: %s\n",
			db.errmsg);
		rc = 75;
		goto done;
	}
	if (!db_bool(res, 0, 0)) {
		printf("another outbox-send is running\n");
		goto done;
	}
	do {
		ok = pass(&r, &s, &tot);
		if (!ok) {
			fprintf(stderr, "tallydesk: outbox-send: %s\n",
				db.errmsg);
			rc = 75;
			db_tx_rollback(&db);
		}
		if (loop > 0 && !stopping) {
			nap.tv_sec = loop;
			nap.tv_nsec = 0;
			nanosleep(&nap, NULL);
		}
	} while (loop > 0 && !stopping);
	req_query(&r, sql_unlock, 0, NULL, NULL);
	printf("%ld sent, %ld to retry, %ld failed\n", tot.sent, tot.retried,
	       tot.failed);
done:
	cli_req_release(&r);
	curl_global_cleanup();
	return rc;
usage:
	fprintf(stderr, "usage: tallydesk outbox-send [--once | --loop SECONDS]"
			" [--smtp URL] [--starttls]\n");
	return 64;
}

/* ---- sending domains ---------------------------------------------------- */

static bool domain_ok(const char *d)
{
	size_t i, n = strlen(d);

	if (n < 3 || n > 253 || strchr(d, '.') == NULL || d[0] == '.' ||
	    d[0] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)d[i]) && d[i] != '-' && d[i] != '.')
			return false;
	return true;
}

/* The DNS records to publish for each sending domain. */
static void print_records(struct req *r)
{
	PGresult *res;
	int i, n;

	if (req_query(r, sql_domains, 0, NULL, &res) != TD_OK)
		return;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		const char *d = db_text(res, i, 0);

		printf("%s%s%s%s%s\n", d, *db_text(res, i, 3) ? " for " : "",
		       db_text(res, i, 3), *db_text(res, i, 4) ? ", from " : "",
		       db_text(res, i, 4));
		printf("  %s. TXT \"v=spf1 mx a ~all\"\n", d);
		printf("  %s._domainkey.%s. TXT \"v=DKIM1; k=rsa; p=%s\"\n",
		       db_text(res, i, 1), d, db_text(res, i, 2));
		printf("  _dmarc.%s. TXT \"v=DMARC1; p=quarantine; adkim=r; aspf=r\"\n",
		       d);
	}
	if (n == 0)
		printf("no sending domains yet\n");
}

/*
 * tallydesk mail-domain add --tenant S --domain D [--client-id N]
 *	[--from ADDRESS]
 * tallydesk mail-domain show --tenant S
 * A client's domain sends its mail from ADDRESS once its DKIM record checks
 * out (Settings → Email domains).
 */
int outbox_domain_main(const struct config *conf, int argc, char **argv)
{
	const char *slug = NULL, *domain = NULL, *client = NULL, *from = NULL;
	const char *params[5], *pem, *pub, *at;
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	PGresult *res;
	int i, rc = 0;
	bool add;

	if (argc < 1 || (strcmp(argv[0], "add") && strcmp(argv[0], "show")))
		goto usage;
	add = !strcmp(argv[0], "add");
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--tenant"))
			slug = argv[i + 1];
		else if (!strcmp(argv[i], "--domain") && add)
			domain = argv[i + 1];
		else if (!strcmp(argv[i], "--client-id") && add)
			client = argv[i + 1];
		else if (!strcmp(argv[i], "--from") && add)
			from = argv[i + 1];
		else
			goto usage;
	}
	if (i != argc || slug == NULL || (add && domain == NULL))
		goto usage;
	for (i = 0; domain != NULL && domain[i]; i++)
		((char *)domain)[i] = (char)tolower((unsigned char)domain[i]);
	if (add && !domain_ok(domain)) {
		fprintf(stderr, "tallydesk: '%s' is not a domain name\n",
			domain);
		return 2;
	}
	at = from != NULL ? strrchr(from, '@') : NULL;
	if (from != NULL && (at == NULL || at == from ||
			     strcasecmp(at + 1, domain) != 0 ||
			     strcspn(from, " \t<>\",;") != strlen(from))) {
		fprintf(stderr, "tallydesk: --from must be an address at %s\n",
			domain);
		return 2;
	}
	cli_req_init(&r, &ctx, &db, conf, "mail-domain");
	if (cli_use_tenant(&r, slug) == 0) {
		cli_req_release(&r);
		return 1;
	}
	if (add) {
		if (client != NULL) {
			params[0] = client;
			if (strspn(client, "0123456789") != strlen(client) ||
			    req_query(&r, sql_client_known, 1, params, &res) !=
				    TD_OK ||
			    PQntuples(res) == 0) {
				fprintf(stderr, "tallydesk: no client %s\n",
					client);
				rc = 1;
				goto done;
			}
		}
		if (!dkim_keygen(r.arena, &pem, &pub)) {
			fprintf(stderr, "tallydesk: cannot make a DKIM key\n");
			rc = 1;
			goto done;
		}
		params[0] = domain;
		params[1] = client;
		params[2] = pem;
		params[3] = pub;
		params[4] = from;
		if (req_query(&r, sql_key_new, 5, params, &res) != TD_OK) {
			fprintf(stderr,
				"tallydesk: cannot add the domain: %s\n",
				db.errmsg);
			rc = 1;
			goto done;
		}
		if (PQntuples(res) == 1 &&
		    audit_write(&r, "mail_domain.create", "mail_domain",
				db_int(res, 0, 0), NULL, NULL) != TD_OK) {
			rc = 1;
			goto done;
		}
	}
	print_records(&r);
	if (db_tx_commit(&db, r.arena) != TD_OK)
		rc = 1;
done:
	cli_req_release(&r);
	return rc;
usage:
	fprintf(stderr,
		"usage: tallydesk mail-domain add --tenant SLUG --domain"
		" DOMAIN [--client-id ID] [--from ADDRESS]\n"
		"       tallydesk mail-domain show --tenant SLUG\n");
	return 2;
}

/* tallydesk dkim-verify --key-file FILE < message: exit 0 when it verifies */
int outbox_dkim_verify_main(int argc, char **argv)
{
	size_t cap = 65536, len = 0, got;
	char *buf;
	const char *why;
	bool ok;

	if (argc != 2 || strcmp(argv[0], "--key-file")) {
		fprintf(stderr,
			"usage: tallydesk dkim-verify --key-file FILE < message\n");
		return 2;
	}
	buf = xmalloc(cap);
	while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
		len += got;
		if (len == cap)
			buf = xrealloc(buf, cap *= 2);
	}
	ok = dkim_verify_message(buf, len, argv[1], &why);
	printf("%s: %s\n", ok ? "pass" : "fail", why);
	free(buf);
	return ok ? 0 : 1;
}
