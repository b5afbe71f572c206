/* comments.c: a ticket's conversation and its attachments */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "comments.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "mailtemplates.h"
#include "req.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "banned.h"

#define BODY_MAX	   200000 /* the CHECK on ticket_comments.body */
#define FILENAME_MAX_CHARS 255	  /* the CHECK on ticket_attachments.filename */
#define EXT_MAX_CHARS	   16

static const char sql_comment_new[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_user_id,"
	" author_label, public, body) VALUES (app_tenant(), $1, $2, $3, $4, $5)"
	" RETURNING id, to_char(created_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
static const char sql_blob_has[] =
	"SELECT 1 FROM blobs WHERE tenant_id = app_tenant() AND sha256 = $1::bytea";
static const char sql_blob_new[] =
	"INSERT INTO blobs (tenant_id, sha256, size, data)"
	" VALUES (app_tenant(), $1::bytea, $2, $3::bytea)"
	" ON CONFLICT (tenant_id, sha256) DO NOTHING";
static const char sql_attachment_new[] =
	"INSERT INTO ticket_attachments (tenant_id, ticket_id, comment_id,"
	" sha256, filename, content_type, size, uploaded_by)"
	" VALUES (app_tenant(), $1, $2, $3::bytea, $4, $5, $6, $7) RETURNING id";
static const char sql_comment_ticket[] =
	"SELECT ticket_id FROM ticket_comments WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_comment_lock[] =
	"SELECT ticket_id, author_user_id, body, public FROM ticket_comments"
	" WHERE tenant_id = app_tenant() AND id = $1 FOR UPDATE";
static const char sql_edit_new[] =
	"INSERT INTO ticket_comment_edits (tenant_id, comment_id, old_body,"
	" edited_by) VALUES (app_tenant(), $1, $2, $3)";
static const char sql_comment_set[] =
	"UPDATE ticket_comments SET body = $2, edited_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1"
	" RETURNING to_char(edited_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
static const char sql_attachment_get[] =
	"SELECT a.filename, a.content_type, b.data FROM ticket_attachments a"
	" JOIN blobs b ON b.tenant_id = a.tenant_id AND b.sha256 = a.sha256"
	" WHERE a.tenant_id = app_tenant() AND a.id = $1";

/* One stored attachment, for the view and the audit row. */
struct stored {
	int64_t id;
	const char *filename;
	const char *type;
	size_t size;
};

/* The byte offset after the first n characters of s. */
static size_t utf8_prefix(const char *s, size_t n)
{
	size_t i = 0, chars = 0;

	while (s[i] != '\0') {
		if (((unsigned char)s[i] & 0xc0) != 0x80) {
			if (chars == n)
				break;
			chars++;
		}
		i++;
	}
	return i;
}

static bool starts_with(const unsigned char *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	return n >= k && !memcmp(p, s, k);
}

static bool ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix), i;

	if (n < k)
		return false;
	for (i = 0; i < k; i++)
		if (tolower((unsigned char)s[n - k + i]) != suffix[i])
			return false;
	return true;
}

static bool has_bytes(const unsigned char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; k <= n && i <= n - k; i++)
		if (!memcmp(p + i, needle, k))
			return true;
	return false;
}

static bool is_text(const unsigned char *p, size_t n)
{
	return memchr(p, '\0', n) == NULL &&
	       http_utf8_valid((const char *)p, n);
}

/* SVG text: after a BOM and spaces, "<svg", or an XML prolog and <svg. */
static bool is_svg(const unsigned char *p, size_t n)
{
	if (starts_with(p, n, "\xef\xbb\xbf")) {
		p += 3;
		n -= 3;
	}
	while (n > 0 && isspace(*p)) {
		p++;
		n--;
	}
	return (starts_with(p, n, "<svg") || starts_with(p, n, "<?xml")) &&
	       has_bytes(p, n, "<svg");
}

/* The type from the bytes themselves; the client's claim is ignored. */
static const char *sniff_type(const unsigned char *p, size_t n,
			      const char *filename)
{
	if (starts_with(p, n, "\x89PNG\r\n\x1a\n"))
		return "image/png";
	if (starts_with(p, n, "\xff\xd8\xff"))
		return "image/jpeg";
	if (starts_with(p, n, "GIF87a") || starts_with(p, n, "GIF89a"))
		return "image/gif";
	if (n >= 12 && starts_with(p, n, "RIFF") && !memcmp(p + 8, "WEBP", 4))
		return "image/webp";
	if (starts_with(p, n, "%PDF-"))
		return "application/pdf";
	if (starts_with(p, n, "PK\x03\x04")) {
		if (ends_with_ci(filename, ".docx"))
			return "application/vnd.openxmlformats-officedocument"
			       ".wordprocessingml.document";
		if (ends_with_ci(filename, ".xlsx"))
			return "application/vnd.openxmlformats-officedocument"
			       ".spreadsheetml.sheet";
		if (ends_with_ci(filename, ".pptx"))
			return "application/vnd.openxmlformats-officedocument"
			       ".presentationml.presentation";
		return "application/zip";
	}
	if (is_text(p, n))
		return is_svg(p, n) ? "image/svg+xml" :
				      "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/*
 * The name to store: control characters and invalid UTF-8 become '_',
 * and a name over 255 characters is cut in the middle so that its
 * extension survives.
 */
static const char *clean_filename(struct req *r, const char *name)
{
	char *s = arena_strdup(r->arena, name), *dot;
	size_t i, n = strlen(s), ext_chars, keep;
	struct sbuf sb;

	if (!http_utf8_valid(s, n)) {
		for (i = 0; i < n; i++)
			if ((unsigned char)s[i] >= 0x80)
				s[i] = '_';
	}
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '_';
	if (n == 0)
		return "file";
	if (http_utf8_len(s) <= FILENAME_MAX_CHARS)
		return s;
	dot = strrchr(s, '.');
	ext_chars = dot != NULL ? http_utf8_len(dot) : 0;
	if (ext_chars > EXT_MAX_CHARS)
		ext_chars = 0;
	keep = utf8_prefix(s, FILENAME_MAX_CHARS - ext_chars);
	sbuf_init(&sb, r->arena, keep + 64);
	sbuf_add(&sb, s, keep);
	if (ext_chars > 0)
		sbuf_adds(&sb, dot);
	return sbuf_cstr(&sb);
}

/* Bytes as bytea's hex input form, "\x0a1b...", for a text parameter. */
static const char *bytea_hex(struct req *r, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *out = arena_alloc_raw(r->arena, 2 * n + 3), *o = out;
	size_t i;

	*o++ = '\\';
	*o++ = 'x';
	for (i = 0; i < n; i++) {
		*o++ = hex[p[i] >> 4];
		*o++ = hex[p[i] & 15];
	}
	*o = '\0';
	return out;
}

static size_t count_files(const struct req *r)
{
	size_t i, n = 0;

	for (i = 0; i < r->files.n; i++)
		if (!strcmp(r->files.v[i].field, "file"))
			n++;
	return n;
}

/* The caller's user id as a parameter, or NULL for an API key. */
static const char *user_param(struct req *r)
{
	if (r->auth.kind != AUTH_USER || r->auth.user_id == 0)
		return NULL;
	return req_id(r, r->auth.user_id);
}

/*
 * Stores every file of field "file" for ticket_id (and comment_id when
 * not 0): the bytes once per tenant and SHA-256, then one attachment row
 * each. Fills out[0..count_files()). A file over max_upload: TD_ETOOBIG
 * (the request's transaction then keeps nothing).
 */
static enum td_err store_files(struct req *r, int64_t ticket_id,
			       int64_t comment_id, struct stored *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const struct http_file *f;
	const char *params[7], *sha;
	PGresult *res;
	enum td_err err;
	size_t i, k = 0;

	for (i = 0; i < r->files.n; i++) {
		f = &r->files.v[i];
		if (strcmp(f->field, "file"))
			continue;
		if (f->len > r->ctx->conf->max_upload)
			return req_fail(r, TD_ETOOBIG,
					"'%s' is larger than %zu bytes",
					f->filename, r->ctx->conf->max_upload);
		if (!EVP_Digest(f->data, f->len, md, &mdlen, EVP_sha256(),
				NULL))
			return req_fail(r, TD_ESYS, "cannot hash '%s'",
					f->filename);
		sha = bytea_hex(r, md, mdlen);
		params[0] = sha;
		err = req_query(r, sql_blob_has, 1, params, &res);
		if (err != TD_OK)
			return err;
		/* Known bytes are not sent again; a racing twin is a no-op. */
		if (PQntuples(res) == 0) {
			params[1] = arena_printf(r->arena, "%zu", f->len);
			params[2] = bytea_hex(r, f->data, f->len);
			err = req_query(r, sql_blob_new, 3, params, NULL);
			if (err != TD_OK)
				return err;
		}
		out[k].filename = clean_filename(r, f->filename);
		out[k].type = sniff_type(f->data, f->len, out[k].filename);
		out[k].size = f->len;
		params[0] = req_id(r, ticket_id);
		params[1] = comment_id != 0 ? req_id(r, comment_id) : NULL;
		params[2] = sha;
		params[3] = out[k].filename;
		params[4] = out[k].type;
		params[5] = arena_printf(r->arena, "%zu", f->len);
		params[6] = user_param(r);
		err = req_query(r, sql_attachment_new, 7, params, &res);
		if (err != TD_OK)
			return err;
		out[k].id = db_int(res, 0, 0);
		k++;
	}
	return TD_OK;
}

static json_t *stored_json(struct req *r, const struct stored *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(
			a, json_pack("{s:I, s:s, s:s, s:I, s:s}", "id",
				     (json_int_t)s[i].id, "filename",
				     s[i].filename, "content_type", s[i].type,
				     "size", (json_int_t)s[i].size, "url",
				     arena_printf(r->arena,
						  "/attachments/%" PRId64,
						  s[i].id)));
	return a;
}

static json_t *names_json(const struct stored *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(s[i].filename));
	return a;
}

/* A bad body: the API gets 422; a browser goes back to the ticket. */
static enum td_err bad_body(struct req *r, int64_t ticket_id, const char *why)
{
	form_error(r, "body", why);
	if (r->want_json)
		return form_reject(r, "tickets/show", NULL);
	form_flash(r, "error", why);
	r->redirect = arena_printf(r->arena, "/tickets/%" PRId64, ticket_id);
	return TD_OK;
}

/* public from JSON {"public": true} or the form's visibility=public. */
static bool read_public(struct req *r)
{
	if (r->json_body != NULL &&
	    json_object_get(r->json_body, "public") != NULL)
		return json_is_true(json_object_get(r->json_body, "public"));
	return !strcmp(form_text(r, "visibility"), "public");
}

/* "Attached: a.pdf, b.png" for a reply that is only files. */
static const char *attached_body(struct req *r)
{
	struct sbuf sb;
	size_t i, k = 0;

	sbuf_init(&sb, r->arena, 128);
	sbuf_adds(&sb, "Attached: ");
	for (i = 0; i < r->files.n; i++) {
		if (strcmp(r->files.v[i].field, "file"))
			continue;
		if (k++ > 0)
			sbuf_adds(&sb, ", ");
		sbuf_adds(&sb, clean_filename(r, r->files.v[i].filename));
	}
	return sbuf_cstr(&sb);
}

/*
 * A staff member's public reply is mailed to the ticket's contact through
 * the outbox, in this transaction: from the client's verified sending
 * domain, else the tenant's support address (mail_sender(); no mail
 * without a support address, or to a contact without an address), threaded on the
 * last message the contact sent, with an id of ours that their answer will
 * carry back (mail-ingest threads on it).
 */
static const char sql_notify[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text,"
	" message_id, from_addr, ticket_id, in_reply_to, refs, template,"
	" template_data) SELECT app_tenant(), 'reply', k.email,"
	" '[T-' || t.number || '] ' || t.subject, $3,"
	" '<td.reply.' || $2 || '.' || app_tenant() || '@'"
	"  || split_part(mail_sender(t.id), '@', 2) || '>',"
	" mail_sender(t.id), t.id, last.message_id, last.message_id,"
	" 'reply', $4::jsonb FROM tickets t"
	" JOIN contacts k ON k.tenant_id = t.tenant_id AND k.id = t.contact_id"
	" JOIN mail_settings ms ON ms.tenant_id = t.tenant_id"
	" LEFT JOIN LATERAL (SELECT m.message_id FROM mail_messages m"
	"  WHERE m.tenant_id = t.tenant_id AND m.ticket_id = t.id"
	"  AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1) last ON true"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1 AND k.email <> ''"
	" AND ms.support_address <> '' RETURNING id";
static const char sql_notify_who[] =
	"SELECT t.number, t.subject, n.name FROM tickets t"
	" JOIN tenants n ON n.id = t.tenant_id"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1";

static enum td_err notify_contact(struct req *r, int64_t ticket_id,
				  int64_t comment_id, const char *body)
{
	const char *params[4] = { req_id(r, ticket_id), req_id(r, comment_id),
				  body, NULL };
	PGresult *res;
	json_t *data;
	enum td_err err;

	err = req_query(r, sql_notify_who, 1, params, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	data = json_pack("{s:s, s:s, s:s, s:s, s:s}", "body", body, "author",
			 r->auth.name != NULL ? r->auth.name : "", "tenant",
			 db_text(res, 0, 2), "subject", db_text(res, 0, 1),
			 "ticket_ref",
			 arena_join(r->arena, "T-", db_text(res, 0, 0)));
	req_own_json(r, data);
	/* views/mail/reply_* or the tenant's own, in this transaction. */
	params[3] = req_json_text(r, data, NULL);
	err = req_query(r, sql_notify, 4, params, &res);
	if (err == TD_OK && PQntuples(res) > 0)
		err = mailtpl_render_queued_req(r);
	return err;
}

/*
 * POST /tickets/:id/comments (body, visibility=public|internal or JSON
 * {body, public}, files "file") — 201 (API) or 303 to the comment; 404
 * for another tenant's ticket; 409 when closed; 413 for a file over
 * max_upload; 422 for an empty or overlong body.
 */
enum td_err comments_create(struct req *r)
{
	int64_t ticket_id = route_arg_int(&r->args, "id"), cid;
	const char *body, *params[5];
	struct ticket_ref t;
	struct stored *st;
	size_t nfiles = count_files(r), len;
	json_t *after, *c;
	PGresult *res;
	bool public;
	enum td_err err;

	err = ticketctx_load(r, ticket_id, true, &t);
	if (err != TD_OK)
		return err;
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return err;
	body = form_text(r, "body");
	if (*body == '\0' && nfiles > 0)
		body = attached_body(r);
	len = http_utf8_len(body);
	if (len == 0)
		return bad_body(r, ticket_id, "write a reply or attach a file");
	if (len > BODY_MAX)
		return bad_body(r, ticket_id, "use at most 200000 characters");
	public = read_public(r);
	params[0] = req_id(r, ticket_id);
	params[1] = user_param(r);
	params[2] =
		params[1] == NULL && r->auth.name != NULL ? r->auth.name : "";
	params[3] = public ? "true" : "false";
	params[4] = body;
	err = req_query(r, sql_comment_new, 5, params, &res);
	if (err != TD_OK)
		return err;
	cid = db_int(res, 0, 0);
	st = arena_alloc(r->arena, (nfiles + 1) * sizeof(*st));
	c = json_pack("{s:I, s:I, s:b, s:s, s:s, s:s}", "id", (json_int_t)cid,
		      "ticket_id", (json_int_t)ticket_id, "public", public,
		      "body", body, "author", r->auth.name ? r->auth.name : "",
		      "created_at", db_text(res, 0, 1));
	json_object_set_new(req_view(r), "comment", c);
	if (params[1] != NULL)
		json_object_set_new(c, "author_user_id",
				    json_integer(r->auth.user_id));
	else
		json_object_set_new(c, "author_user_id", json_null());
	err = store_files(r, ticket_id, cid, st);
	if (err != TD_OK)
		return err;
	json_object_set_new(c, "attachments", stored_json(r, st, nfiles));
	err = ticketctx_touch(r, ticket_id, public);
	/* Staff (a person or an API key) answering: tell the contact. */
	if (err == TD_OK && public &&
	    (r->auth.kind == AUTH_USER || r->auth.kind == AUTH_APIKEY))
		err = notify_contact(r, ticket_id, cid, body);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:I, s:b, s:o}", "ticket_id", (json_int_t)ticket_id,
			  "public", public, "attachments",
			  names_json(st, nfiles));
	req_own_json(r, after);
	err = audit_write(r, "comment.create", "comment", cid, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return TD_OK;
	}
	form_flash(r, "ok", public ? "Reply sent." : "Internal note added.");
	r->redirect =
		arena_printf(r->arena, "/tickets/%" PRId64 "#comment-%" PRId64,
			     ticket_id, cid);
	return TD_OK;
}

/*
 * POST /tickets/:id/attachments (files "file") — 201 (API) or 303 to the
 * ticket; 404, 409 (closed), 413 as for comments; 422 without a file.
 */
enum td_err comments_attach(struct req *r)
{
	int64_t ticket_id = route_arg_int(&r->args, "id");
	struct ticket_ref t;
	struct stored *st;
	size_t nfiles = count_files(r), i;
	json_t *after;
	enum td_err err;

	err = ticketctx_load(r, ticket_id, true, &t);
	if (err != TD_OK)
		return err;
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return err;
	if (nfiles == 0) {
		form_error(r, "file", "choose a file to attach");
		if (r->want_json)
			return form_reject(r, "tickets/show", NULL);
		form_flash(r, "error", "Choose a file to attach.");
		r->redirect =
			arena_printf(r->arena, "/tickets/%" PRId64, ticket_id);
		return TD_OK;
	}
	st = arena_alloc(r->arena, nfiles * sizeof(*st));
	err = store_files(r, ticket_id, 0, st);
	if (err != TD_OK)
		return err;
	err = ticketctx_touch(r, ticket_id, false);
	if (err != TD_OK)
		return err;
	for (i = 0; i < nfiles; i++) {
		after = json_pack("{s:I, s:s, s:s, s:I}", "ticket_id",
				  (json_int_t)ticket_id, "filename",
				  st[i].filename, "content_type", st[i].type,
				  "size", (json_int_t)st[i].size);
		req_own_json(r, after);
		err = audit_write(r, "attachment.create", "attachment",
				  st[i].id, NULL, after);
		if (err != TD_OK)
			return err;
	}
	json_object_set_new(req_view(r), "attachments",
			    stored_json(r, st, nfiles));
	if (r->want_json) {
		r->status = 201;
		return TD_OK;
	}
	form_flash(r, "ok", nfiles == 1 ? "File attached." : "Files attached.");
	r->redirect = arena_printf(r->arena, "/tickets/%" PRId64, ticket_id);
	return TD_OK;
}

/*
 * POST /comments/:id (body) — 200 (API) or 303 to the ticket; 403 unless
 * the author or an admin; 404 for another tenant's comment; 409 when the
 * ticket is closed; 422 for an empty or overlong body.
 */
enum td_err comments_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), ticket_id;
	const char *body = form_text(r, "body"), *params[3];
	struct ticket_ref t;
	PGresult *res;
	json_t *after;
	size_t len;
	bool mine;
	enum td_err err;

	params[0] = req_id(r, id);
	err = req_query(r, sql_comment_ticket, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no comment %" PRId64, id);
	ticket_id = db_int(res, 0, 0);
	/* The ticket's lock first, as every comment write takes it. */
	err = ticketctx_load(r, ticket_id, true, &t);
	if (err != TD_OK)
		return err;
	err = req_query(r, sql_comment_lock, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no comment %" PRId64, id);
	mine = r->auth.kind == AUTH_USER && !db_isnull(res, 0, 1) &&
	       db_int(res, 0, 1) == r->auth.user_id;
	if (!mine && r->auth.role != ROLE_ADMIN)
		return req_fail(
			r, TD_EFORBID,
			"only its author or an admin may edit a comment");
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return err;
	len = http_utf8_len(body);
	if (len == 0)
		return bad_body(r, ticket_id, "write the comment's text");
	if (len > BODY_MAX)
		return bad_body(r, ticket_id, "use at most 200000 characters");
	params[1] = db_text(res, 0, 2);
	params[2] = user_param(r);
	err = req_query(r, sql_edit_new, 3, params, NULL);
	if (err != TD_OK)
		return err;
	params[1] = body;
	err = req_query(r, sql_comment_set, 2, params, &res);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "comment",
			    json_pack("{s:I, s:I, s:s, s:s}", "id",
				      (json_int_t)id, "ticket_id",
				      (json_int_t)ticket_id, "body", body,
				      "edited_at", db_text(res, 0, 0)));
	err = ticketctx_touch(r, ticket_id, false);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:I}", "ticket_id", (json_int_t)ticket_id);
	req_own_json(r, after);
	err = audit_write(r, "comment.edit", "comment", id, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok", "Comment updated.");
	r->redirect =
		arena_printf(r->arena, "/tickets/%" PRId64 "#comment-%" PRId64,
			     ticket_id, id);
	return TD_OK;
}

/* RFC 6266: an ASCII fallback and the exact name in UTF-8. */
static const char *disposition(struct req *r, const char *kind,
			       const char *name)
{
	struct sbuf sb;
	const char *p;

	sbuf_init(&sb, r->arena, 3 * strlen(name) + 64);
	sbuf_adds(&sb, kind);
	sbuf_adds(&sb, "; filename=\"");
	for (p = name; *p != '\0'; p++) {
		/* One '_' per character, not per byte. */
		if (((unsigned char)*p & 0xc0) == 0x80)
			continue;
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '"' || *p == '\\' || *p == '%')
			sbuf_addch(&sb, '_');
		else
			sbuf_addch(&sb, *p);
	}
	sbuf_adds(&sb, "\"; filename*=UTF-8''");
	http_url_encode(&sb, name);
	return sbuf_cstr(&sb);
}

static bool shown_inline(const char *type)
{
	return !strncmp(type, "text/plain", 10) ||
	       (!strncmp(type, "image/", 6) && strcmp(type, "image/svg+xml"));
}

/* GET /attachments/:id — the bytes; 404 for unknown or others' ids. */
enum td_err comments_download(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1];
	PGresult *res;
	unsigned char *raw;
	char *copy;
	size_t len;
	enum td_err err;

	params[0] = req_id(r, id);
	err = req_query(r, sql_attachment_get, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no attachment %" PRId64, id);
	raw = PQunescapeBytea((const unsigned char *)db_text(res, 0, 2), &len);
	if (raw == NULL)
		return req_fail(r, TD_ESYS, "cannot decode attachment %" PRId64,
				id);
	copy = arena_alloc_raw(r->arena, len + 1);
	memcpy(copy, raw, len);
	PQfreemem(raw);
	r->body_out = copy;
	r->body_out_len = len;
	r->body_type = arena_strdup(r->arena, db_text(res, 0, 1));
	req_header(r, "Content-Disposition",
		   disposition(r,
			       shown_inline(r->body_type) ? "inline" :
							    "attachment",
			       db_text(res, 0, 0)));
	req_header(r, "X-Content-Type-Options", "nosniff");
	req_header(r, "Content-Security-Policy", "default-src 'none'; sandbox");
	req_header(r, "Cache-Control", "private");
	return TD_OK;
}
