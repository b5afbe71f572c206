/* mailingest.c: inbound mail becomes tickets and replies (one pipeline)
 *
 * mail-ingest (an MTA pipe, one message or a directory of them) and any
 * other way in call mail_ingest(): parse, dedupe, refuse machines and
 * loops, thread, route, write. Everything of one message happens in one
 * transaction, so a failure leaves nothing behind and the retry is clean.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "arena.h"
#include "audit.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "mailauth.h"
#include "maildns.h"
#include "mailingest.h"
#include "mailparse.h"
#include "notify.h"
#include "mailtemplates.h"
#include "req.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "banned.h"

#define MAIL_MAX_BYTES (50u * 1024 * 1024) /* larger: refused by the MTA */
#define SUBJECT_MAX    300		   /* tickets.subject CHECK */
#define BODY_MAX       100000		   /* tickets.description CHECK */
#define COMMENT_MAX    200000		   /* ticket_comments.body CHECK */
#define FILENAME_MAX_  255

static const char sql_lock[] =
	"SELECT pg_advisory_xact_lock(hashtext('mail:' || $1))";
/* Two statements, so each keeps its index under a generic plan. */
static const char sql_seen_id[] =
	"SELECT id, outcome, ticket_id FROM mail_messages"
	" WHERE tenant_id = app_tenant() AND direction = 'in'"
	" AND message_id IS NOT NULL AND message_id = $1";
static const char sql_seen_raw[] =
	"SELECT id, outcome, ticket_id FROM mail_messages"
	" WHERE tenant_id = app_tenant() AND direction = 'in'"
	" AND message_id IS NULL AND raw_sha256 = $1::bytea";
static const char sql_settings[] =
	"SELECT support_address, create_contacts, closed_reply, rate_limit,"
	" triage_client_id, acknowledge, trusted_authserv_id, verify_sender"
	" FROM mail_settings"
	" WHERE tenant_id = app_tenant()";
static const char sql_our_id[] =
	"SELECT 1 FROM outbox WHERE tenant_id = app_tenant() AND message_id = $1"
	" UNION ALL SELECT 1 FROM mail_messages WHERE tenant_id = app_tenant()"
	" AND direction = 'out' AND message_id = $1";
static const char sql_rate[] =
	"SELECT count(*) FROM mail_messages WHERE tenant_id = app_tenant()"
	" AND direction = 'in' AND mail_lower(from_addr) = mail_lower($1)"
	" AND received_at > now() - interval '1 hour'"
	" AND outcome IN ('ticket', 'reply')";
/* The newest ticket any of the named ids belongs to (ours or theirs). */
static const char sql_thread[] =
	"SELECT ticket_id FROM ("
	" SELECT ticket_id, id FROM mail_messages WHERE tenant_id = app_tenant()"
	"  AND message_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
	"  AND ticket_id IS NOT NULL"
	" UNION ALL SELECT ticket_id, id FROM outbox WHERE tenant_id = app_tenant()"
	"  AND message_id = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
	"  AND ticket_id IS NOT NULL) t ORDER BY id DESC LIMIT 1";
static const char sql_ticket_more[] =
	"SELECT merged_into FROM tickets WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_contact_at[] =
	"SELECT id, client_id, is_vip FROM contacts WHERE tenant_id = app_tenant()"
	" AND mail_lower(email) = mail_lower($1) AND email <> ''"
	" ORDER BY (client_id = $2::bigint) DESC, id"
	" LIMIT 1";
static const char sql_domain_client[] =
	"SELECT d.client_id FROM client_domains d JOIN clients c"
	" ON c.tenant_id = d.tenant_id AND c.id = d.client_id"
	" WHERE d.tenant_id = app_tenant() AND c.archived_at IS NULL"
	" AND d.domain = ANY (ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))"
	" ORDER BY length(d.domain) DESC LIMIT 1";
static const char sql_contact_new[] =
	"INSERT INTO contacts (tenant_id, client_id, name, email)"
	" VALUES (app_tenant(), $1, $2, $3)"
	" ON CONFLICT (tenant_id, client_id, lower(email)) WHERE email <> ''"
	" DO UPDATE SET email = EXCLUDED.email RETURNING id, is_vip";
static const char sql_triage_find[] =
	"SELECT id FROM clients WHERE tenant_id = app_tenant()"
	" AND lower(name) = lower($1) AND archived_at IS NULL"
	" AND merged_into IS NULL";
static const char sql_triage_new[] =
	"INSERT INTO clients (tenant_id, name, notes) VALUES (app_tenant(), $1,"
	" 'Tickets from senders of unknown domains wait here: move each to its"
	" client.') RETURNING id";
static const char sql_triage_set[] =
	"INSERT INTO mail_settings (tenant_id, triage_client_id)"
	" VALUES (app_tenant(), $1) ON CONFLICT (tenant_id)"
	" DO UPDATE SET triage_client_id = EXCLUDED.triage_client_id";
static const char sql_comment_new[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_contact_id,"
	" author_label, public, body) VALUES (app_tenant(), $1, $2, $3, true, $4)"
	" RETURNING id";
static const char sql_blob_new[] =
	"INSERT INTO blobs (tenant_id, sha256, size, data)"
	" VALUES (app_tenant(), $1::bytea, $2, $3::bytea)"
	" ON CONFLICT (tenant_id, sha256) DO NOTHING";
static const char sql_attachment_new[] =
	"INSERT INTO ticket_attachments (tenant_id, ticket_id, comment_id,"
	" sha256, filename, content_type, size)"
	" VALUES (app_tenant(), $1, $2, $3::bytea, $4, $5, $6)";
static const char sql_message_new[] =
	"INSERT INTO mail_messages (tenant_id, direction, message_id, raw_sha256,"
	" from_addr, from_name, subject, kind, outcome, detail, ticket_id,"
	" comment_id, in_reply_to, refs, attachments, body_text, broken, raw,"
	" auth_verdict, auth_failed)"
	" VALUES (app_tenant(), 'in', $1, $2::bytea, $3, $4, $5, $6, $7, $8, $9,"
	" $10, ARRAY(SELECT jsonb_array_elements_text($11::jsonb)),"
	" ARRAY(SELECT jsonb_array_elements_text($12::jsonb)),"
	" ARRAY(SELECT jsonb_array_elements_text($13::jsonb)), $14, $15, $16::bytea,"
	" $17, $18)"
	" RETURNING id";

/* One tenant's settings, with the defaults when it has no row. */
struct mail_conf {
	const char *support_address;
	bool create_contacts;
	bool reopen; /* else a new linked ticket */
	int64_t rate_limit;
	int64_t triage_client_id;
	bool acknowledge;
	const char *trusted_authserv_id;
	bool verify_sender; /* our own DKIM/SPF/DMARC when no trusted MTA's */
};

/* What the pipeline decided about one message. */
struct decision {
	const char *outcome;
	const char *detail;
	const char *sender;	 /* the real sender (after "via" rewrites) */
	const char *sender_name; /* or NULL */
	int64_t ticket_id;
	int64_t ticket_number;
	int64_t comment_id;
};

static void json_release_cb(void *v)
{
	json_decref(v);
}

/*
 * The command-line modes build JSON on the heap (not in a worker's
 * arena), so it is released with json_decref when the arena goes.
 */
static void own_json(struct req *r, json_t *v)
{
	if (v != NULL)
		arena_defer(r->arena, json_release_cb, v);
}

static void clear_cb(void *p)
{
	PQclear(p);
}

/*
 * A look-up planned for its values each time (an unnamed statement): a
 * generic plan cached while the mail tables were small would scan a
 * tenant's rows for the rest of a long batch connection. TD_EUNAVAIL when
 * the connection is gone, else TD_EDB.
 */
static enum td_err query_planned(struct req *r, const char *sql, int n,
				 const char *const *params, PGresult **out)
{
	PGresult *res;

	if (db_ensure(r->db) != TD_OK)
		return TD_EUNAVAIL;
	res = PQexecParams(r->db->conn, sql, n, NULL, params, NULL, NULL, 0);
	arena_defer(r->arena, clear_cb, res);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(r->db->errmsg, sizeof(r->db->errmsg), "%s",
			 PQerrorMessage(r->db->conn));
		return req_fail(r,
				PQstatus(r->db->conn) == CONNECTION_OK ?
					TD_EDB :
					TD_EUNAVAIL,
				"mail look-up failed: %s", r->db->errmsg);
	}
	*out = res;
	return TD_OK;
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

static const char *sha256_hex(struct req *r, const unsigned char *p, size_t n)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL))
		return NULL;
	return hex(r->arena, md, mdlen);
}

/* s cut to at most max characters (UTF-8), in the arena. */
static const char *cut_chars(struct arena *a, const char *s, long max)
{
	const char *end;

	if (g_utf8_strlen(s, -1) <= max)
		return s;
	end = g_utf8_offset_to_pointer(s, max);
	return arena_strndup(a, s, (size_t)(end - s));
}

static const char *json_list(struct req *r, const char *const *v)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		json_array_append_new(arr, json_string(v[i]));
	own_json(r, arr);
	return req_json_text(r, arr, NULL);
}

static bool plausible_email(const char *s)
{
	const char *at;

	if (s == NULL || strlen(s) > 254)
		return false;
	at = strchr(s, '@');
	return at != NULL && at != s && at[1] != '\0' &&
	       strchr(at + 1, '@') == NULL && strpbrk(s, " \t\r\n") == NULL;
}

static enum td_err load_conf(struct req *r, struct mail_conf *c)
{
	PGresult *res;
	enum td_err err;

	c->support_address = "";
	c->create_contacts = true;
	c->reopen = true;
	c->rate_limit = 30;
	c->triage_client_id = 0;
	c->acknowledge = false;
	c->trusted_authserv_id = "";
	c->verify_sender = true;
	err = req_query(r, sql_settings, 0, NULL, &res);
	if (err != TD_OK || PQntuples(res) == 0)
		return err;
	c->support_address = db_text(res, 0, 0);
	c->create_contacts = db_bool(res, 0, 1);
	c->reopen = strcmp(db_text(res, 0, 2), "new_ticket") != 0;
	c->rate_limit = db_int(res, 0, 3);
	c->triage_client_id = db_isnull(res, 0, 4) ? 0 : db_int(res, 0, 4);
	c->acknowledge = db_bool(res, 0, 5);
	c->trusted_authserv_id = db_text(res, 0, 6);
	c->verify_sender = db_bool(res, 0, 7);
	return TD_OK;
}

/*
 * The real sender: X-Original-From, or for a list's "Jane via List"
 * rewrite its Reply-To; else From.
 */
static void real_sender(struct arena *a, const struct mail_msg *m,
			struct decision *d)
{
	const char *via;

	d->sender = m->from_addr;
	d->sender_name = m->from_name;
	if (plausible_email(m->original_from)) {
		d->sender = m->original_from;
		d->sender_name = m->original_name;
		return;
	}
	via = m->from_name != NULL ? strstr(m->from_name, " via ") : NULL;
	if (via != NULL && plausible_email(m->reply_to) &&
	    g_ascii_strcasecmp(m->reply_to, m->from_addr) != 0) {
		d->sender = m->reply_to;
		d->sender_name =
			via > m->from_name ?
				arena_strndup(a, m->from_name,
					      (size_t)(via - m->from_name)) :
				NULL;
	}
}

/* A "[T-1042]" token in the subject: the ticket's id, or 0. */
static enum td_err token_ticket(struct req *r, const char *subject, int64_t *id)
{
	const char *p = subject;
	size_t n;

	*id = 0;
	while (p != NULL && (p = strstr(p, "[T-")) != NULL) {
		n = strspn(p + 3, "0123456789");
		if (n > 0 && n < 19 && p[3 + n] == ']')
			return ticketctx_find(
				r, arena_strndup(r->arena, p + 1, n + 2), id);
		p += 3;
	}
	return TD_OK;
}

/* The ticket a reply belongs to: token first, then the ids it names. */
static enum td_err find_thread(struct req *r, const struct mail_msg *m,
			       int64_t *id)
{
	const char **ids;
	size_t n = 0, i;
	PGresult *res;
	enum td_err err;
	int hops;

	err = token_ticket(r, m->subject, id);
	if (err != TD_OK || *id != 0)
		goto follow;
	ids = arena_alloc(r->arena, 130 * sizeof(*ids));
	for (i = 0; m->in_reply_to != NULL && m->in_reply_to[i] && n < 64; i++)
		ids[n++] = m->in_reply_to[i];
	for (i = 0; m->references != NULL && m->references[i] && n < 128; i++)
		ids[n++] = m->references[i];
	ids[n] = NULL;
	if (n == 0)
		return TD_OK;
	{
		const char *params[1] = { json_list(r, ids) };

		err = req_query(r, sql_thread, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			*id = db_int(res, 0, 0);
	}
follow:
	/* A merged ticket lives on in the ticket it was merged into. */
	for (hops = 0; *id != 0 && hops < 10; hops++) {
		const char *params[1] = { req_id(r, *id) };

		err = req_query(r, sql_ticket_more, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) == 0 || db_isnull(res, 0, 0))
			break;
		*id = db_int(res, 0, 0);
	}
	return TD_OK;
}

/* The tenant's triage client, created on first use. */
static enum td_err triage_client(struct req *r, struct mail_conf *c,
				 int64_t *client)
{
	static const char name[] = "Unassigned (email)";
	const char *params[1] = { name };
	PGresult *res;
	enum td_err err;

	if (c->triage_client_id != 0) {
		*client = c->triage_client_id;
		return TD_OK;
	}
	err = req_query(r, sql_triage_find, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0) {
		*client = db_int(res, 0, 0);
	} else {
		err = req_query(r, sql_triage_new, 1, params, &res);
		if (err != TD_OK)
			return err;
		*client = db_int(res, 0, 0);
		err = audit_write(r, "client.create", "client", *client, NULL,
				  NULL);
		if (err != TD_OK)
			return err;
	}
	params[0] = req_id(r, *client);
	err = req_query(r, sql_triage_set, 1, params, NULL);
	c->triage_client_id = *client;
	return err;
}

/*
 * The sender's contact: theirs at client (or any client when client is
 * 0), else created at client when the tenant says so. *contact is 0 when
 * there is none; *client becomes the contact's client when it was 0.
 */
static enum td_err find_contact(struct req *r, const struct mail_conf *c,
				const struct decision *d, int64_t *client,
				int64_t *contact, bool *vip, bool create)
{
	const char *params[3];
	const char *name;
	PGresult *res;
	enum td_err err;

	*contact = 0;
	*vip = false;
	if (!plausible_email(d->sender))
		return TD_OK;
	params[0] = d->sender;
	params[1] = *client != 0 ? req_id(r, *client) : NULL;
	err = req_query(r, sql_contact_at, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0 &&
	    (*client == 0 || db_int(res, 0, 1) == *client)) {
		*contact = db_int(res, 0, 0);
		*client = db_int(res, 0, 1);
		*vip = db_bool(res, 0, 2);
		return TD_OK;
	}
	if (*client == 0 || !create || !c->create_contacts)
		return TD_OK;
	name = d->sender_name != NULL && *d->sender_name ?
		       d->sender_name :
		       arena_strndup(r->arena, d->sender,
				     strcspn(d->sender, "@"));
	params[0] = req_id(r, *client);
	params[1] = cut_chars(r->arena, name, 200);
	params[2] = d->sender;
	err = req_query(r, sql_contact_new, 3, params, &res);
	if (err != TD_OK)
		return err;
	*contact = db_int(res, 0, 0);
	*vip = db_bool(res, 0, 1);
	return audit_write(r, "contact.create", "contact", *contact, NULL,
			   NULL);
}

/* The client for a new ticket: by the sender's domain (or a parent). */
static enum td_err domain_client(struct req *r, const char *addr,
				 int64_t *client)
{
	const char *dom = strrchr(addr, '@'), *p;
	const char *list[16];
	const char *params[1];
	PGresult *res;
	enum td_err err;
	size_t n = 0;

	*client = 0;
	if (dom == NULL)
		return TD_OK;
	dom = g_ascii_strdown(dom + 1, -1);
	list[n++] = arena_strdup(r->arena, dom);
	g_free((char *)dom);
	for (p = list[0]; (p = strchr(p, '.')) != NULL && n < 15;) {
		p++;
		if (strchr(p, '.') != NULL)
			list[n++] = p;
	}
	list[n] = NULL;
	params[0] = json_list(r, list);
	err = req_query(r, sql_domain_client, 1, params, &res);
	if (err == TD_OK && PQntuples(res) > 0)
		*client = db_int(res, 0, 0);
	return err;
}

static const char *author_label(struct req *r, const struct decision *d)
{
	if (d->sender_name != NULL && *d->sender_name)
		return cut_chars(r->arena,
				 arena_printf(r->arena, "%s <%s>",
					      d->sender_name, d->sender),
				 300);
	return d->sender;
}

static bool magic(const struct mail_attachment *at, const char *m, size_t n)
{
	return at->len >= n && !memcmp(at->data, m, n);
}

/*
 * The type an attachment is served with: what its bytes are for images
 * and PDF, text/plain and message/rfc822 as declared, else
 * application/octet-stream. The sender's word is not trusted (an HTML or
 * SVG "image" must never be shown inline).
 */
static const char *safe_type(const struct mail_attachment *at)
{
	const char *t = at->content_type;

	if (magic(at, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (magic(at, "\xff\xd8\xff", 3))
		return "image/jpeg";
	if (magic(at, "GIF87a", 6) || magic(at, "GIF89a", 6))
		return "image/gif";
	if (magic(at, "%PDF-", 5))
		return "application/pdf";
	if (!g_ascii_strcasecmp(t, "text/plain"))
		return "text/plain";
	if (!g_ascii_strcasecmp(t, "message/rfc822"))
		return "message/rfc822";
	return "application/octet-stream";
}

static enum td_err store_attachments(struct req *r, const struct mail_msg *m,
				     int64_t ticket, int64_t comment)
{
	const char *params[6], *sha;
	enum td_err err;
	size_t i;

	for (i = 0; i < m->natt; i++) {
		const struct mail_attachment *at = &m->att[i];

		sha = sha256_hex(r, at->data, at->len);
		if (sha == NULL)
			return req_fail(r, TD_ESYS,
					"cannot hash an attachment");
		params[0] = sha;
		params[1] = arena_printf(r->arena, "%zu", at->len);
		params[2] = hex(r->arena, at->data, at->len);
		err = req_query(r, sql_blob_new, 3, params, NULL);
		if (err != TD_OK)
			return err;
		params[0] = req_id(r, ticket);
		params[1] = comment != 0 ? req_id(r, comment) : NULL;
		params[2] = sha;
		params[3] = cut_chars(r->arena, at->filename, FILENAME_MAX_);
		params[4] = safe_type(at);
		params[5] = arena_printf(r->arena, "%zu", at->len);
		err = req_query(r, sql_attachment_new, 6, params, NULL);
		if (err != TD_OK)
			return err;
	}
	return TD_OK;
}

static const char *ticket_subject(struct req *r, const struct mail_msg *m)
{
	const char *s =
		m->subject != NULL && *m->subject ? m->subject : "(no subject)";

	return cut_chars(r->arena, s, SUBJECT_MAX);
}

/* A new ticket from this message (for client, or routed when 0). */
static enum td_err open_ticket(struct req *r, struct mail_conf *c,
			       const struct mail_msg *m, struct decision *d,
			       int64_t client, const char *preface)
{
	struct ticket_new n;
	int64_t contact = 0;
	bool vip = false;
	enum td_err err;
	const char *body;

	if (client == 0) {
		err = find_contact(r, c, d, &client, &contact, &vip, false);
		if (err == TD_OK && client == 0)
			err = domain_client(r, d->sender, &client);
		if (err == TD_OK && client == 0) {
			err = triage_client(r, c, &client);
			d->detail = "unknown sender: triage";
		}
		if (err != TD_OK)
			return err;
	}
	if (contact == 0) {
		err = find_contact(r, c, d, &client, &contact, &vip, true);
		if (err != TD_OK)
			return err;
	}
	body = *m->text ? m->text : m->natt > 0 ? "(attachments only)" : "";
	if (preface != NULL)
		body = arena_printf(r->arena, "%s\n\n%s", preface, body);
	memset(&n, 0, sizeof(n));
	n.subject = ticket_subject(r, m);
	n.description = cut_chars(r->arena, body, BODY_MAX);
	n.client_id = client;
	n.contact_id = contact;
	n.source = "email";
	n.priority = vip ? 2 : 3;
	n.tags_json = vip ? "[\"vip\"]" : NULL;
	err = ticketctx_create(r, &n, &d->ticket_id, &d->ticket_number);
	if (err != TD_OK)
		return err;
	d->outcome = "ticket";
	return store_attachments(r, m, d->ticket_id, 0);
}

/* A reply to ticket id: a public comment by the sender, as themselves. */
static enum td_err add_reply(struct req *r, struct mail_conf *c,
			     const struct mail_msg *m, struct decision *d,
			     int64_t id)
{
	struct ticket_ref t;
	const char *params[4], *body;
	int64_t client, contact;
	PGresult *res;
	enum td_err err;
	bool vip;

	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	if (t.status == TICKET_CLOSED && !c->reopen) {
		const char *pre = arena_printf(
			r->arena,
			"Follow-up by email to T-%" PRId64 " (closed).",
			t.number);

		err = open_ticket(r, c, m, d, t.client_id, pre);
		if (err == TD_OK)
			err = ticketctx_note(
				r, t.id,
				arena_printf(
					r->arena,
					"A reply after closing opened T-%" PRId64,
					d->ticket_number));
		d->detail = arena_printf(r->arena, "follow-up of T-%" PRId64,
					 t.number);
		return err;
	}
	client = t.client_id;
	err = find_contact(r, c, d, &client, &contact, &vip, true);
	if (err != TD_OK)
		return err;
	body = mail_trim_quoted(r->arena, m->text);
	if (*body == '\0')
		body = m->natt > 0 ? "(attachments only)" : "(empty message)";
	params[0] = req_id(r, t.id);
	params[1] = contact != 0 ? req_id(r, contact) : NULL;
	params[2] = author_label(r, d);
	params[3] = cut_chars(r->arena, body, COMMENT_MAX);
	err = req_query(r, sql_comment_new, 4, params, &res);
	if (err != TD_OK)
		return err;
	d->comment_id = db_int(res, 0, 0);
	d->ticket_id = t.id;
	d->ticket_number = t.number;
	d->outcome = "reply";
	if (t.status == TICKET_CLOSED) {
		err = ticketctx_reopen(
			r, t.id,
			arena_printf(r->arena, "an email from %s", d->sender));
		if (err == TD_OK)
			err = ticketctx_note(
				r, t.id,
				arena_printf(r->arena,
					     "Reopened by an email from %s",
					     d->sender));
		if (err != TD_OK)
			return err;
		d->detail = "reopened";
	} else {
		/* A reply to a ticket waiting on the client resumes it. */
		err = ticketctx_client_activity(r, t.id);
		if (err != TD_OK)
			return err;
	}
	err = store_attachments(r, m, t.id, d->comment_id);
	if (err == TD_OK)
		err = ticketctx_touch(r, t.id, false);
	if (err == TD_OK)
		err = notify_assignee(
			r, t.id, "client_reply",
			arena_printf(r->arena, "%s replied", d->sender), body);
	return err;
}

/* Our own address, or an id we sent: mail that came back to us. */
static enum td_err is_own(struct req *r, const struct mail_conf *c,
			  const struct mail_msg *m, bool *own)
{
	const char *params[1];
	PGresult *res;
	enum td_err err;

	*own = *c->support_address != '\0' && m->from_addr != NULL &&
	       !g_ascii_strcasecmp(m->from_addr, c->support_address);
	if (*own || m->message_id == NULL)
		return TD_OK;
	params[0] = m->message_id;
	err = req_query(r, sql_our_id, 1, params, &res);
	if (err == TD_OK)
		*own = PQntuples(res) > 0;
	return err;
}

static enum td_err decide(struct req *r, struct mail_conf *c,
			  const struct mail_msg *m, struct decision *d)
{
	const char *params[1];
	PGresult *res;
	enum td_err err;
	int64_t id = 0;
	bool own;

	real_sender(r->arena, m, d);
	if (m->kind != MAIL_NORMAL) {
		d->outcome = "ignored-auto";
		d->detail = mail_kind_key(m->kind);
		return TD_OK;
	}
	if (m->from_addr == NULL || !plausible_email(d->sender)) {
		d->outcome = "rejected";
		d->detail = m->from_addr == NULL ?
				    "no From address" :
				    "the From address is not usable";
		return TD_OK;
	}
	if (m->bulk) {
		d->outcome = "ignored-bulk";
		d->detail = "Precedence: bulk, junk or list";
		return TD_OK;
	}
	err = is_own(r, c, m, &own);
	if (err != TD_OK)
		return err;
	if (own) {
		d->outcome = "ignored-own";
		d->detail = "our own mail came back";
		return TD_OK;
	}
	params[0] = d->sender;
	err = query_planned(r, sql_rate, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (db_int(res, 0, 0) >= c->rate_limit) {
		d->outcome = "rate-limited";
		d->detail = arena_printf(
			r->arena, "more than %" PRId64 " messages an hour",
			c->rate_limit);
		return TD_OK;
	}
	err = find_thread(r, m, &id);
	if (err != TD_OK)
		return err;
	if (id != 0)
		return add_reply(r, c, m, d, id);
	return open_ticket(r, c, m, d, 0, NULL);
}

static const char sql_ack[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text,"
	" message_id, from_addr, ticket_id, in_reply_to, refs, auto_submitted,"
	" template, template_data) VALUES (app_tenant(), 'ack', $1, $2, $3, $4,"
	" $5, $6, $7, $8, 'auto-replied', 'ack', $9::jsonb)";
/* The client's verified sending domain's address, else the tenant's. */
static const char sql_ack_from[] = "SELECT mail_sender($1)";

/*
 * The acknowledgement of a new ticket, queued in the same transaction:
 * Auto-Submitted, our Message-ID and References so replies thread. Only
 * to people (never machines or lists) and only when the tenant has a
 * support address to send from.
 */
static enum td_err acknowledge(struct req *r, const struct mail_conf *c,
			       const struct mail_msg *m,
			       const struct decision *d)
{
	const char *params[9], *ref, *refs = "", *from;
	PGresult *res;
	enum td_err err;
	unsigned char rnd[8];
	json_t *data;
	size_t i;

	if (!c->acknowledge || *c->support_address == '\0' ||
	    strcmp(d->outcome, "ticket") || !plausible_email(d->sender))
		return TD_OK;
	ref = arena_printf(r->arena, "T-%" PRId64, d->ticket_number);
	data = json_pack("{s:s, s:s, s:s?}", "ticket_ref", ref, "subject",
			 ticket_subject(r, m), "name", d->sender_name);
	own_json(r, data);
	if (data == NULL)
		return TD_OK; /* out of memory; the ticket stands */
	for (i = 0; m->references != NULL && m->references[i]; i++)
		refs = arena_printf(r->arena, "%s%s%s", refs, *refs ? " " : "",
				    m->references[i]);
	if (m->message_id != NULL && m->message_id[0] == '<')
		refs = arena_printf(r->arena, "%s%s%s", refs, *refs ? " " : "",
				    m->message_id);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	params[0] = req_id(r, d->ticket_id);
	err = req_query(r, sql_ack_from, 1, params, &res);
	if (err != TD_OK)
		return err;
	from = !db_isnull(res, 0, 0) && strchr(db_text(res, 0, 0), '@') ?
		       arena_strdup(r->arena, db_text(res, 0, 0)) :
		       c->support_address;
	params[0] = d->sender;
	params[1] = cut_chars(
		r->arena,
		arena_printf(r->arena, "[%s] %s", ref, ticket_subject(r, m)),
		SUBJECT_MAX + 12);
	/* Sent as is only if the template (mail/ack_*) cannot render. */
	params[2] = arena_printf(r->arena,
				 "We have received your message and opened"
				 " ticket %s.\n",
				 ref);
	params[3] = arena_printf(r->arena, "<td.ack.%" PRId64 ".%s@%s>",
				 d->ticket_id, hex(r->arena, rnd, 8) + 2,
				 strrchr(from, '@') + 1);
	params[4] = from;
	params[5] = req_id(r, d->ticket_id);
	params[6] = m->message_id != NULL && m->message_id[0] == '<' ?
			    m->message_id :
			    NULL;
	params[7] = refs;
	params[8] = req_json_text(r, data, NULL);
	err = req_query(r, sql_ack, 9, params, NULL);
	if (err == TD_OK)
		err = mailtpl_render_queued_req(r);
	return err;
}

/* The result of method ("dkim") in an Authentication-Results value. */
static const char *method_result(struct arena *a, const char *ar,
				 const char *method)
{
	size_t n = strlen(method);
	const char *p = ar;

	while ((p = strstr(p, method)) != NULL) {
		if ((p == ar || p[-1] == ' ' || p[-1] == ';') && p[n] == '=')
			return arena_strndup(a, p + n + 1,
					     strcspn(p + n + 1, " ;()"));
		p += n;
	}
	return NULL;
}

/*
 * What our own MTA (its authserv-id in the settings) said about DKIM, SPF
 * and DMARC; anyone else's Authentication-Results are the sender's word
 * and ignored. *failed when one of them is "fail".
 */
static const char *auth_verdict(struct req *r, const struct mail_conf *c,
				const struct mail_msg *m, bool *failed)
{
	static const char *const methods[] = { "dkim", "spf", "dmarc" };
	const char *ar = NULL, *v;
	size_t i, n;
	struct sbuf out;

	*failed = false;
	n = strlen(c->trusted_authserv_id);
	for (i = 0; n > 0 && m->auth_results != NULL && m->auth_results[i];
	     i++) {
		const char *h = m->auth_results[i];

		if (!g_ascii_strncasecmp(h, c->trusted_authserv_id, n) &&
		    (h[n] == ';' || h[n] == ' ')) {
			ar = h + n;
			break;
		}
	}
	if (ar == NULL)
		return "";
	sbuf_init(&out, r->arena, 64);
	for (i = 0; i < 3; i++) {
		v = method_result(r->arena, ar, methods[i]);
		if (v == NULL)
			continue;
		sbuf_addf(&out, "%s%s=%s", out.len ? " " : "", methods[i], v);
		*failed = *failed || !g_ascii_strcasecmp(v, "fail");
	}
	return sbuf_cstr(&out);
}

/*
 * Our own DKIM, SPF and DMARC verdict, when no trusted MTA gave one and
 * the tenant has not turned it off: only for mail that opens or updates
 * a ticket (what is ignored is not worth the look-ups).
 */
static const char *own_verdict(struct req *r, const struct mail_conf *c,
			       const unsigned char *raw, size_t len,
			       const struct mail_msg *m,
			       const struct mailauth_env *env, bool *failed)
{
	const char *server = r->ctx != NULL && r->ctx->conf != NULL ?
				     r->ctx->conf->dns_server :
				     "";
	const char *why, *at;
	struct mailauth_result res;
	struct maildns *dns;

	*failed = false;
	if (!c->verify_sender)
		return "";
	dns = env != NULL && env->dns != NULL ?
		      env->dns :
		      maildns_open(r->arena, server, &why);
	if (dns == NULL) {
		fprintf(stderr, "tallydesk: sender not verified: %s\n", why);
		return "";
	}
	at = m->from_addr != NULL ? strrchr(m->from_addr, '@') : NULL;
	mailauth_check(r->arena, dns, raw, len, at != NULL ? at + 1 : NULL,
		       env, &res);
	*failed = res.failed;
	/* Nothing published and nothing signed: nothing to say. */
	if (!strcmp(res.dkim, "none") && !strcmp(res.spf, "none") &&
	    !strcmp(res.dmarc, "none"))
		return "";
	return res.verdict;
}

static const char *attachment_names(struct req *r, const struct mail_msg *m)
{
	const char **names =
		arena_alloc(r->arena, (m->natt + 1) * sizeof(*names));
	size_t i;

	for (i = 0; i < m->natt; i++)
		names[i] = m->att[i].filename;
	names[m->natt] = NULL;
	return json_list(r, names);
}

enum td_err mail_ingest(struct req *r, const unsigned char *raw, size_t len,
			struct mail_result *res)
{
	return mail_ingest_env(r, raw, len, NULL, res);
}

enum td_err mail_ingest_env(struct req *r, const unsigned char *raw,
			    size_t len, const struct mailauth_env *env,
			    struct mail_result *res)
{
	const char *params[18], *sha;
	bool auth_failed = false;
	struct mail_conf c;
	struct decision d;
	struct mail_msg m;
	PGresult *pr;
	enum td_err err;
	json_t *after;

	memset(res, 0, sizeof(*res));
	memset(&d, 0, sizeof(d));
	mail_parse(r->arena, raw, len, &m);
	sha = sha256_hex(r, raw, len);
	if (sha == NULL)
		return req_fail(r, TD_ESYS, "cannot hash the message");

	/* One delivery of a message at a time; a redelivery is a no-op. */
	params[0] = m.message_id != NULL ? m.message_id : sha;
	err = req_query(r, sql_lock, 1, params, NULL);
	if (err != TD_OK)
		return err;
	params[0] = m.message_id != NULL ? m.message_id : sha;
	err = query_planned(r,
			    m.message_id != NULL ? sql_seen_id : sql_seen_raw,
			    1, params, &pr);
	if (err != TD_OK)
		return err;
	if (PQntuples(pr) > 0) {
		res->outcome = "duplicate";
		res->message_row = db_int(pr, 0, 0);
		res->ticket_id = db_isnull(pr, 0, 2) ? 0 : db_int(pr, 0, 2);
		return TD_OK;
	}
	err = load_conf(r, &c);
	if (err == TD_OK)
		err = decide(r, &c, &m, &d);
	if (err != TD_OK)
		return err;

	params[0] = m.message_id != NULL ?
			    cut_chars(r->arena, m.message_id, 1000) :
			    NULL;
	params[1] = sha;
	params[2] = m.from_addr != NULL ?
			    cut_chars(r->arena, m.from_addr, 1000) :
			    NULL;
	params[3] = m.from_name;
	params[4] = m.subject;
	params[5] = mail_kind_key(m.kind);
	params[6] = d.outcome;
	params[7] = d.detail != NULL ? d.detail : "";
	params[8] = d.ticket_id != 0 ? req_id(r, d.ticket_id) : NULL;
	params[9] = d.comment_id != 0 ? req_id(r, d.comment_id) : NULL;
	params[10] = json_list(r, m.in_reply_to);
	params[11] = json_list(r, m.references);
	params[12] = attachment_names(r, &m);
	params[13] = m.text;
	params[14] = m.broken ? "true" : "false";
	params[15] = hex(r->arena, raw, len);
	params[16] = auth_verdict(r, &c, &m, &auth_failed);
	if (*params[16] == '\0' && d.ticket_id != 0)
		params[16] = own_verdict(r, &c, raw, len, &m, env,
					 &auth_failed);
	params[17] = auth_failed ? "true" : "false";
	if (auth_failed && d.ticket_id != 0) {
		err = ticketctx_note(
			r, d.ticket_id,
			arena_printf(
				r->arena,
				"Sender authentication failed for the email"
				" from %s (%s): check before acting on it.",
				d.sender, params[16]));
		if (err != TD_OK)
			return err;
	}
	err = req_query(r, sql_message_new, 18, params, &pr);
	if (err == TD_OK && d.ticket_id != 0)
		err = acknowledge(r, &c, &m, &d);
	if (err != TD_OK)
		return err;
	res->message_row = db_int(pr, 0, 0);
	res->outcome = d.outcome;
	res->ticket_id = d.ticket_id;
	res->ticket_number = d.ticket_number;
	res->rejected = !strcmp(d.outcome, "rejected");
	after = json_pack("{s:s, s:s?, s:s?}", "outcome", d.outcome, "from",
			  m.from_addr, "message_id", m.message_id);
	if (after != NULL && d.ticket_id != 0)
		json_object_set_new(after, "ticket_id",
				    json_integer((json_int_t)d.ticket_id));
	own_json(r, after);
	return audit_write(r, "mail.receive", "mail_message", res->message_row,
			   NULL, after);
}

/* ---- the command-line mode ---------------------------------------------- */

static unsigned char *read_all(FILE *f, size_t *len, bool *too_big)
{
	size_t cap = 65536, n = 0, got;
	unsigned char *buf = xmalloc(cap);

	*too_big = false;
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n > MAIL_MAX_BYTES) {
			*too_big = true;
			break;
		}
		if (n == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	*len = n;
	return buf;
}

static json_t *strv_json(const char *const *v)
{
	json_t *arr;
	size_t i;

	if (v == NULL)
		return json_null();
	arr = json_array();
	for (i = 0; v[i] != NULL; i++)
		json_array_append_new(arr, json_string(v[i]));
	return arr;
}

/* --dry-run: how the message reads, as JSON, without a database. */
static int dry_run(const unsigned char *raw, size_t len)
{
	struct arena *a = arena_new();
	struct mail_msg m;
	json_t *o, *att;
	size_t i;

	mail_parse(a, raw, len, &m);
	att = json_array();
	for (i = 0; i < m.natt; i++)
		json_array_append_new(
			att, json_pack("{s:s, s:s, s:I, s:b}", "filename",
				       m.att[i].filename, "content_type",
				       m.att[i].content_type, "size",
				       (json_int_t)m.att[i].len, "inline",
				       m.att[i].inline_part));
	o = json_pack("{s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:s, s:b, s:s, "
		      "s:s?, s:s?, s:o, s:b, s:s}",
		      "from_address", m.from_addr, "from_name", m.from_name,
		      "subject", m.subject, "message_id", m.message_id,
		      "in_reply_to", strv_json(m.in_reply_to), "references",
		      strv_json(m.references), "kind", mail_kind_key(m.kind),
		      "bulk", m.bulk, "text", m.text, "reply_to", m.reply_to,
		      "original_from", m.original_from, "attachments", att,
		      "broken", m.broken, "reply_text",
		      mail_trim_quoted(a, m.text));
	if (o == NULL) {
		arena_free(a);
		fprintf(stderr, "tallydesk: cannot show the message\n");
		return 1;
	}
	json_dumpf(o, stdout, JSON_INDENT(1) | JSON_ENSURE_ASCII * 0);
	fputc('\n', stdout);
	json_decref(o);
	arena_free(a);
	return 0;
}

static int exit_for(enum td_err err)
{
	/* The database failed us, not the message: the MTA tries again. */
	return err == TD_OK ? MAIL_EX_OK : MAIL_EX_TEMPFAIL;
}

/* One message in its own transaction; returns the exit status. */
static int ingest_one(struct req *r, int64_t tenant, const unsigned char *raw,
		      size_t len, const struct mailauth_env *env,
		      const char *name, bool quiet)
{
	struct mail_result res;
	enum td_err err;
	int rc;

	err = db_tx_begin(r->db, r->arena, tenant);
	if (err == TD_OK)
		err = mail_ingest_env(r, raw, len, env, &res);
	if (err == TD_OK)
		err = db_tx_commit(r->db, r->arena);
	if (err != TD_OK) {
		db_tx_rollback(r->db);
		fprintf(stderr,
			"tallydesk: %s%s%s not delivered, try again: %s\n",
			name ? "'" : "", name ? name : "the message",
			name ? "'" : "", r->db->errmsg);
		return exit_for(err);
	}
	rc = res.rejected ? MAIL_EX_DATAERR : MAIL_EX_OK;
	if (res.rejected)
		fprintf(stderr,
			"tallydesk: %s kept for review but not accepted (no usable From)\n",
			name ? name : "the message");
	if (!quiet) {
		if (res.ticket_number != 0)
			printf("%s T-%" PRId64 "\n", res.outcome,
			       res.ticket_number);
		else
			printf("%s\n", res.outcome);
	}
	return rc;
}

static int by_name(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Every regular file of dir (a Maildir's new/ for instance), in name order. */
/* A utility statement (SAVEPOINT cannot be prepared); false on failure. */
static bool utility(struct db *db, const char *sql)
{
	PGresult *res = PQexec(db->conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		snprintf(db->errmsg, sizeof(db->errmsg), "%s",
			 PQerrorMessage(db->conn));
	PQclear(res);
	return ok;
}

/*
 * Every regular file of dir (a Maildir's new/ for instance), in name
 * order. Messages are committed in groups of MAIL_GROUP, each message
 * inside its own savepoint: one fsync per group instead of per message,
 * and a message that fails rolls back alone. A lost connection loses the
 * open group only, and a rerun is safe (Message-ID dedupe).
 */
#define MAIL_GROUP	 100
#define MAIL_STATS_AFTER 1000 /* delivered in a batch before 0024's ANALYZE */

/* mail_refresh_stats() (0024); whether it ran. */
static bool refresh_stats(struct db *db)
{
	PGresult *res = PQexec(db->conn, "SELECT mail_refresh_stats()");
	bool ran = PQresultStatus(res) == PGRES_TUPLES_OK;

	PQclear(res);
	return ran;
}
static int ingest_dir(struct req *r, int64_t tenant, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, *path;
	size_t n = 0, cap = 0, i, len, in_group = 0;
	bool analyzed = false;
	long ok = 0, rejected = 0, failed = 0, pending_ok = 0, pending_rej = 0;
	unsigned char *raw;
	struct arena *keep = r->arena, *group = NULL;
	struct mail_result res;
	struct mailauth_env env = { NULL, NULL, NULL, NULL };
	enum td_err err = TD_OK;
	const char *why;
	bool too_big;
	FILE *f;

	if (d == NULL) {
		fprintf(stderr, "tallydesk: cannot read '%s': %s\n", dir,
			strerror(errno));
		return 66; /* EX_NOINPUT */
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), by_name);
	/* One resolver for the batch: each domain is looked up once. */
	env.dns = maildns_open(keep,
			       r->ctx != NULL && r->ctx->conf != NULL ?
				       r->ctx->conf->dns_server :
				       "",
			       &why);
	for (i = 0; i < n && err != TD_EUNAVAIL; i++) {
		if (group == NULL) {
			group = arena_new();
			err = db_tx_begin(r->db, group, tenant);
			if (err != TD_OK)
				break;
		}
		r->arena = arena_new();
		path = arena_printf(r->arena, "%s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (f == NULL) {
			fprintf(stderr, "tallydesk: cannot read '%s': %s\n",
				path, strerror(errno));
			failed++;
		} else {
			raw = read_all(f, &len, &too_big);
			fclose(f);
			if (too_big) {
				rejected++;
			} else if (!utility(r->db, "SAVEPOINT mail")) {
				err = TD_EUNAVAIL;
			} else {
				err = mail_ingest_env(r, raw, len, &env,
						      &res);
				if (err == TD_OK &&
				    utility(r->db, "RELEASE SAVEPOINT mail")) {
					pending_ok += !res.rejected;
					pending_rej += res.rejected;
				} else if (
					err != TD_EUNAVAIL &&
					utility(r->db,
						"ROLLBACK TO SAVEPOINT mail")) {
					fprintf(stderr,
						"tallydesk: '%s' not delivered: %s\n",
						path, r->db->errmsg);
					failed++;
					err = TD_OK;
				} else {
					err = TD_EUNAVAIL;
				}
			}
			free(raw);
		}
		arena_free(r->arena);
		r->arena = keep;
		if (err == TD_OK && (++in_group == MAIL_GROUP || i + 1 == n)) {
			err = db_tx_commit(r->db, group) == TD_OK ? TD_OK :
								    TD_EUNAVAIL;
			if (err == TD_OK) {
				ok += pending_ok;
				rejected += pending_rej;
				/*
				 * Plans made while the tables were small (a
				 * new tenant's are empty) would go on scanning
				 * them whole as they grow: plan again, and
				 * once a thousand messages in, on statistics
				 * that know what is there (0024).
				 */
				if (ok >= MAIL_STATS_AFTER && !analyzed)
					analyzed = refresh_stats(r->db);
				(void)utility(r->db, "DISCARD PLANS");
			}
			pending_ok = pending_rej = 0;
			in_group = 0;
			arena_free(group);
			group = NULL;
		}
	}
	if (group != NULL) {
		db_tx_rollback(r->db);
		arena_free(group);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	printf("%ld delivered, %ld rejected, %ld failed\n", ok, rejected,
	       failed + (long)(err != TD_OK ? (long)(pending_ok + pending_rej) :
					      0));
	if (err != TD_OK) {
		fprintf(stderr,
			"tallydesk: the database went away: run the batch again"
			" (delivered messages are skipped): %s\n",
			r->db->errmsg);
		return MAIL_EX_TEMPFAIL;
	}
	return failed > 0 ? MAIL_EX_TEMPFAIL : MAIL_EX_OK;
}

int mail_ingest_main(const struct config *conf, int argc, char **argv)
{
	const char *slug = NULL, *batch = NULL;
	struct mailauth_env env = { NULL, NULL, NULL, NULL };
	struct maildns_addr ip;
	bool dry = false, too_big;
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	unsigned char *raw = NULL;
	size_t len = 0;
	int64_t tenant;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run")) {
			dry = true;
		} else if ((!strcmp(argv[i], "--tenant") ||
			    !strcmp(argv[i], "--batch")) &&
			   i + 1 < argc) {
			*(argv[i][2] == 't' ? &slug : &batch) = argv[i + 1];
			i++;
		} else if (!strcmp(argv[i], "--client-ip") && i + 1 < argc &&
			   maildns_parse_ip(argv[i + 1], &ip)) {
			env.client_ip = argv[++i];
		} else if (!strcmp(argv[i], "--sender") && i + 1 < argc) {
			/* the MTA's envelope sender; "" or "<>" for none */
			env.mail_from = strcmp(argv[i + 1], "<>") ? argv[i + 1] :
								  "";
			i++;
		} else if (!strcmp(argv[i], "--helo") && i + 1 < argc) {
			env.helo = argv[++i];
		} else {
			fprintf(stderr,
				"usage: tallydesk mail-ingest --tenant SLUG"
				" [--batch DIR] [--dry-run] [--client-ip IP]"
				" [--sender ADDRESS] [--helo NAME] < message\n");
			return 64; /* EX_USAGE */
		}
	}
	if (batch == NULL) {
		raw = read_all(stdin, &len, &too_big);
		if (too_big) {
			free(raw);
			fprintf(stderr,
				"tallydesk: the message is larger than %u bytes\n",
				MAIL_MAX_BYTES);
			return MAIL_EX_DATAERR;
		}
	}
	if (dry) {
		rc = raw != NULL ? dry_run(raw, len) : 64;
		free(raw);
		return rc;
	}
	if (slug == NULL) {
		free(raw);
		fprintf(stderr, "tallydesk: mail-ingest needs --tenant SLUG\n");
		return 64;
	}
	cli_req_init(&r, &ctx, &db, conf, "mail-ingest");
	if (db_ensure(&db) != TD_OK) {
		fprintf(stderr,
			"tallydesk: cannot connect to the database, try again: %s\n",
			db.errmsg);
		free(raw);
		cli_req_release(&r);
		return MAIL_EX_TEMPFAIL;
	}
	tenant = cli_use_tenant(&r, slug);
	db_tx_rollback(&db);
	if (tenant == 0) {
		rc = db_ensure(&db) != TD_OK ? MAIL_EX_TEMPFAIL :
					       MAIL_EX_NOUSER;
		free(raw);
		cli_req_release(&r);
		return rc;
	}
	r.auth.tenant_id = tenant;
	if (batch != NULL)
		rc = ingest_dir(&r, tenant, batch);
	else
		rc = ingest_one(&r, tenant, raw, len, &env, NULL, false);
	free(raw);
	cli_req_release(&r);
	return rc;
}
