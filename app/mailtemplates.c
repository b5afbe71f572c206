/* mailtemplates.c: the notification mails, from templates a tenant may
 * override (Settings → Email templates)
 *
 * Every notice is queued in the outbox by the transaction that caused it,
 * carrying its template's name and data; mailtpl_render_queued(), called
 * before that transaction commits, fills in the subject, text and HTML.
 * An override is stored only once it compiles and renders the sample
 * ticket, so a tenant's edit can never turn into a broken mail later.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "log.h"
#include "mailtemplates.h"
#include "mustache.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "view.h"
#include "banned.h"

#define SUBJECT_TMPL_MAX 1000
#define TEXT_TMPL_MAX	 50000
#define HTML_TMPL_MAX	 100000
#define SUBJECT_MAX	 250 /* characters of a rendered subject */
#define SRC_MAX		 (256 * 1024)

struct kind {
	const char *name, *label, *to, *when, *vars;
	bool staff; /* to a staff member: ticket_url links to the ticket */
};

/* The notifications; vars: what template_data brings beyond the ticket. */
static const struct kind kinds[] = {
	{ "ack", "Acknowledgement", "the sender",
	  "A message opened a new ticket.", "name", false },
	{ "reply", "Reply to the client", "the ticket's contact",
	  "A staff member replied publicly.", "body author", false },
	{ "client_reply", "Client replied", "the assignee",
	  "The client answered by email or through the portal.",
	  "what body actor assignee", true },
	{ "assigned", "Assigned to you", "the assignee",
	  "Someone else assigned the ticket to them.",
	  "what body actor assignee", true },
	{ "sla_warning", "SLA warning", "the assignee",
	  "A response or resolution target is close.",
	  "clock due assignee", true },
	{ "sla_breach", "SLA breach", "the assignee",
	  "A response or resolution target was missed.",
	  "clock due assignee", true },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const parts[] = { "subject", "text", "html" };
/* The form and JSON field of each part. */
static const char *const fields[] = { "subject", "body_text", "body_html" };
static const size_t part_max[] = { SUBJECT_TMPL_MAX, TEXT_TMPL_MAX,
				   HTML_TMPL_MAX };

/*
 * Rows waiting for their template, with the ticket they are about. The
 * ticket and the template are looked up per row (LATERAL ... OFFSET 0):
 * joined, the planner would hash every ticket of the tenant to find the
 * one or two a notice names.
 */
static const char sql_queued[] =
	"SELECT o.id, o.template, o.template_data::text, m.subject,"
	" m.body_text, m.body_html, tc.id, tc.number, tc.subject, tc.name,"
	" n.name FROM outbox o JOIN tenants n ON n.id = o.tenant_id"
	" LEFT JOIN LATERAL (SELECT t.id, t.number, t.subject, c.name"
	" FROM tickets t LEFT JOIN clients c ON c.tenant_id = t.tenant_id"
	" AND c.id = t.client_id WHERE t.tenant_id = o.tenant_id"
	" AND t.id = o.ticket_id OFFSET 0) tc ON true"
	" LEFT JOIN LATERAL (SELECT x.subject, x.body_text, x.body_html"
	" FROM mail_templates x WHERE x.tenant_id = o.tenant_id"
	" AND x.name = o.template OFFSET 0) m ON true"
	" WHERE o.tenant_id = app_tenant() AND o.template_data IS NOT NULL"
	" ORDER BY o.id FOR UPDATE OF o SKIP LOCKED";
static const char sql_rendered[] =
	"UPDATE outbox SET subject = $2, body_text = $3, body_html = $4,"
	" template_data = NULL WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_unrendered[] =
	"UPDATE outbox SET template_data = NULL"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_list[] =
	"SELECT name, to_char(updated_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD HH24:MI \"UTC\"') FROM mail_templates"
	" WHERE tenant_id = app_tenant()";
static const char sql_one[] =
	"SELECT id, subject, body_text, body_html, to_char(updated_at AT TIME"
	" ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"') FROM mail_templates"
	" WHERE tenant_id = app_tenant() AND name = $1";
static const char sql_put[] =
	"INSERT INTO mail_templates (tenant_id, name, subject, body_text,"
	" body_html, updated_by) VALUES (app_tenant(), $1, $2, $3, $4, $5)"
	" ON CONFLICT (tenant_id, name) DO UPDATE SET subject = EXCLUDED.subject,"
	" body_text = EXCLUDED.body_text, body_html = EXCLUDED.body_html,"
	" updated_at = now(), updated_by = EXCLUDED.updated_by RETURNING id";
static const char sql_delete[] =
	"DELETE FROM mail_templates WHERE tenant_id = app_tenant()"
	" AND name = $1 RETURNING id";
static const char sql_tenant[] = "SELECT name FROM tenants WHERE id = app_tenant()";

static const struct kind *find_kind(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < NKINDS; i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

/* The whole of a small file, in a; NULL when unreadable. */
static char *read_file(struct arena *a, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = arena_alloc(a, SRC_MAX + 1);
	n = fread(buf, 1, SRC_MAX + 1, f);
	fclose(f);
	if (n > SRC_MAX)
		return NULL;
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * The defaults: the worker's views when it has them, else views/mail/
 * read once per process (the command-line modes). NULL when a file is
 * missing or broken (logged): nothing can be rendered.
 */
static const struct mustache_set *defaults(const struct config *conf,
					   const struct mustache_set *views)
{
	/* Process-lifetime, like the worker's views (kept reachable). */
	static struct mustache_set *set;
	static struct arena *keep;
	static bool tried;
	const char *msg = NULL, *name;
	char *src;
	size_t i, j, len = 0;

	if (views != NULL && mustache_set_has(views, "mail/ack_subject"))
		return views;
	if (tried)
		return set;
	tried = true;
	if (conf == NULL || conf->views_dir == NULL)
		return NULL;
	keep = arena_new();
	set = mustache_set_new(keep);
	for (i = 0; i < NKINDS; i++) {
		for (j = 0; j < 3; j++) {
			name = arena_printf(keep, "mail/%s_%s", kinds[i].name,
					    parts[j]);
			src = read_file(keep,
					arena_printf(keep, "%s/%s.mustache",
						     conf->views_dir, name),
					&len);
			if (src == NULL ||
			    mustache_set_add(set, name, src, len, &msg) !=
				    TD_OK) {
				log_error("mail templates: %s/%s.mustache: %s",
					  conf->views_dir, name,
					  src == NULL ? "cannot read it" : msg);
				set = NULL;
				return NULL;
			}
		}
	}
	return set;
}

/* s with runs of whitespace (newlines too) made one space, trimmed. */
static char *one_line(struct arena *a, const char *s)
{
	char *out = arena_alloc(a, strlen(s) + 1), *p = out;
	bool space = false;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			space = p != out;
			continue;
		}
		if (space)
			*p++ = ' ';
		space = false;
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

/* At most max characters of UTF-8 s. */
static char *cut_utf8(struct arena *a, const char *s, size_t max)
{
	size_t i, n = 0;

	for (i = 0; s[i]; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80 && n++ == max)
			break;
	}
	return arena_strndup(a, s, i);
}

/*
 * The subject as sent: one line, at most SUBJECT_MAX characters, with
 * the ticket's token (the template may have left it out; replies thread
 * by it).
 */
static const char *final_subject(struct arena *a, const char *s, json_t *data)
{
	const char *ref = json_string_value(json_object_get(data, "ticket_ref"));
	const char *token;

	s = one_line(a, s);
	if (ref != NULL) {
		token = arena_printf(a, "[%s]", ref);
		if (strstr(s, token) == NULL)
			s = *s ? arena_printf(a, "%s %s", token, s) : token;
	}
	return cut_utf8(a, s, SUBJECT_MAX);
}

/*
 * Compiles the three parts of an override into a set of their own
 * ("subject", "text", "html"). On a problem returns TD_EINPUT with the
 * part's field and a message naming the line.
 */
static enum td_err compile(struct arena *a, const char *const src[3],
			   struct mustache_set **out, const char **field,
			   const char **msg)
{
	struct mustache_set *set = mustache_set_new(a);
	const char *m = NULL, *colon;
	size_t i;

	for (i = 0; i < 3; i++) {
		if (mustache_set_add(set, parts[i], src[i], strlen(src[i]),
				     &m) != TD_OK) {
			*field = fields[i];
			/* "text: line 3: ..." — the part is the field. */
			colon = m != NULL ? strstr(m, ": ") : NULL;
			*msg = colon != NULL ? colon + 2 :
			       m != NULL     ? m :
					       "does not compile";
			return TD_EINPUT;
		}
	}
	*out = set;
	return TD_OK;
}

/*
 * Renders the three parts: names prefix + "subject" etc. in set. The
 * subject and text escape nothing, the HTML escapes {{x}}. TD_ESYS when a
 * part runs away or is missing.
 */
static enum td_err render_parts(struct arena *a, const struct mustache_set *set,
				const char *prefix, json_t *data,
				const char *out[3])
{
	struct sbuf sb;
	enum td_err err;
	size_t i;

	for (i = 0; i < 3; i++) {
		sbuf_init(&sb, a, i == 0 ? 256 : 4096);
		err = (i == 2 ? mustache_render : mustache_render_raw)(
			set, arena_join(a, prefix, parts[i]), data, &sb);
		if (err != TD_OK)
			return TD_ESYS;
		out[i] = sbuf_cstr(&sb);
	}
	out[0] = final_subject(a, out[0], data);
	return TD_OK;
}

static void set_text(json_t *o, const char *key, const char *v)
{
	/* "" is truthy in mustache: leave empty values out. */
	if (v != NULL && *v != '\0')
		json_object_set_new(o, key, json_string(v));
}

/* The row's template_data over what every notice knows of its ticket. */
static json_t *row_data(struct arena *a, const struct config *conf,
			const struct kind *k, const PGresult *res, int i)
{
	json_t *data = json_object(), *extra;
	const char *base = conf != NULL ? conf->base_url : NULL;

	if (!db_isnull(res, i, 6)) {
		set_text(data, "ticket_ref",
			 arena_join(a, "T-", db_text(res, i, 7)));
		json_object_set_new(data, "ticket_number",
				    json_integer(db_int(res, i, 7)));
		set_text(data, "subject", db_text(res, i, 8));
		set_text(data, "client", db_text(res, i, 9));
		if (k->staff && base != NULL && *base != '\0')
			set_text(data, "ticket_url",
				 arena_printf(a, "%s/tickets/%s", base,
					      db_text(res, i, 6)));
	}
	set_text(data, "tenant", db_text(res, i, 10));
	extra = json_loads(db_text(res, i, 2), 0, NULL);
	if (json_is_object(extra))
		json_object_update(data, extra);
	json_decref(extra);
	return data;
}

enum td_err mailtpl_render_queued(struct db *db, struct arena *a,
				  const struct config *conf,
				  const struct mustache_set *views)
{
	const struct mustache_set *base = defaults(conf, views);
	struct mustache_set *own;
	const char *params[4], *src[3], *out[3], *field, *msg, *prefix;
	const struct kind *k;
	PGresult *res;
	json_t *data;
	enum td_err err;
	int i;

	err = db_exec(db, a, sql_queued, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(res); i++) {
		k = find_kind(db_text(res, i, 1));
		params[0] = db_text(res, i, 0);
		err = TD_ENOENT;
		if (k != NULL && !db_isnull(res, i, 3)) {
			src[0] = db_text(res, i, 3);
			src[1] = db_text(res, i, 4);
			src[2] = db_text(res, i, 5);
			err = compile(a, src, &own, &field, &msg);
			prefix = "";
			if (err != TD_OK)
				log_error("mail template %s: %s: %s", k->name,
					  field, msg);
		} else if (k != NULL && base != NULL) {
			own = NULL;
			prefix = arena_printf(a, "mail/%s_", k->name);
			err = TD_OK;
		}
		if (err == TD_OK) {
			data = row_data(a, conf, k, res, i);
			err = render_parts(a, own != NULL ? own : base, prefix,
					   data, out);
			json_decref(data);
		}
		if (err == TD_OK) {
			params[1] = out[0];
			params[2] = out[1];
			params[3] = out[2];
			err = db_exec(db, a, sql_rendered, 4, params, NULL);
		} else {
			/* Sent as queued, in plain text; said once here. */
			log_error("outbox %s: cannot render template %s: sent"
				  " as plain text",
				  params[0], db_text(res, i, 1));
			err = db_exec(db, a, sql_unrendered, 1, params, NULL);
		}
		if (err != TD_OK)
			return err;
	}
	return TD_OK;
}

enum td_err mailtpl_render_queued_req(struct req *r)
{
	return mailtpl_render_queued(r->db, r->arena,
				     r->ctx != NULL ? r->ctx->conf : NULL,
				     r->ctx != NULL ? r->ctx->views : NULL);
}

/* ---- Settings → Email templates ---- */

/*
 * The sample ticket a preview renders: every variable of every
 * notification, with characters that must be escaped in HTML.
 */
static json_t *sample(struct req *r, const struct kind *k)
{
	const struct config *conf = r->ctx != NULL ? r->ctx->conf : NULL;
	const char *tenant = "Your MSP", *base;
	PGresult *res;
	json_t *d;

	if (req_query(r, sql_tenant, 0, NULL, &res) == TD_OK &&
	    PQntuples(res) == 1)
		tenant = db_text(res, 0, 0);
	d = json_pack(
		"{s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
		" s:s}",
		"ticket_ref", "T-1042", "ticket_number", 1042, "subject",
		"Printer <3rd floor> jams & smudges", "client",
		"Acme & Sons", "tenant", tenant, "name", "Dana Scully", "body",
		"The printer on the 3rd floor jams again.\n<b>Paper</b> is"
		" stuck & the tray is empty.",
		"author", r->auth.name != NULL ? r->auth.name : "Alex Admin",
		"what", "dana@acme.example replied", "actor",
		"Alex Admin", "assignee", "Tess Tech", "clock", "response",
		"due", "2026-11-24 15:00");
	base = conf != NULL ? conf->base_url : NULL;
	if (k->staff && base != NULL && *base != '\0')
		json_object_set_new(d, "ticket_url",
				    json_string(arena_printf(r->arena,
							     "%s/tickets/1",
							     base)));
	req_own_json(r, d);
	return d;
}

/* The defaults' source text of k: {subject, body_text, body_html}. */
static json_t *default_parts(struct req *r, const struct kind *k)
{
	const struct config *conf = r->ctx != NULL ? r->ctx->conf : NULL;
	json_t *o = json_object();
	const char *src;
	size_t i, len = 0;

	for (i = 0; i < 3; i++) {
		src = conf == NULL ? NULL :
				     read_file(r->arena,
					       arena_printf(r->arena,
							    "%s/mail/%s_%s.mustache",
							    conf->views_dir,
							    k->name, parts[i]),
					       &len);
		json_object_set_new(o, fields[i],
				    json_string(src != NULL ? src : ""));
	}
	req_own_json(r, o);
	return o;
}

static const struct kind *route_kind(struct req *r)
{
	const struct kind *k = find_kind(route_arg_str(&r->args, "name"));

	if (k == NULL)
		req_fail(r, TD_ENOENT, "no such notification");
	return k;
}

/* GET /settings/mail-templates */
enum td_err mailtpl_list(struct req *r)
{
	json_t *v = req_view(r), *list = json_array(), *item;
	const char *when;
	PGresult *res;
	enum td_err err;
	size_t i;
	int j;

	err = req_query(r, sql_list, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	for (i = 0; i < NKINDS; i++) {
		when = NULL;
		for (j = 0; j < PQntuples(res); j++)
			if (!strcmp(db_text(res, j, 0), kinds[i].name))
				when = db_text(res, j, 1);
		item = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?}", "name",
				 kinds[i].name, "label", kinds[i].label, "to",
				 kinds[i].to, "when", kinds[i].when,
				 "customised", when != NULL, "updated_at",
				 when);
		json_array_append_new(list, item);
	}
	json_object_set_new(v, "templates", list);
	view_settings_page(r, "Email templates", "settings/mail_templates",
			   "/settings/mail-templates");
	return TD_OK;
}

/* The edit page's model for k with the parts given (override or typed). */
static void edit_page(struct req *r, const struct kind *k, json_t *current,
		      bool customised, const char *updated_at, json_t *preview)
{
	json_t *v = req_view(r), *vars = json_array();
	char *list = arena_strdup(r->arena, k->vars), *save = NULL, *w;
	static const char *const common[] = { "ticket_ref", "ticket_number",
					      "subject", "client", "tenant",
					      "ticket_url" };
	/* The link to the ticket is for staff only. */
	size_t i, n = sizeof(common) / sizeof(common[0]) - (k->staff ? 0 : 1);

	for (i = 0; i < n; i++)
		json_array_append_new(
			vars, json_string(arena_printf(r->arena, "{{%s}}",
						       common[i])));
	for (w = strtok_r(list, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		json_array_append_new(
			vars,
			json_string(arena_printf(r->arena, "{{%s}}", w)));
	json_object_set_new(
		v, "template",
		json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?, s:O, s:O, s:o}",
			  "name", k->name, "label", k->label, "to", k->to,
			  "when", k->when, "customised", customised,
			  "updated_at", updated_at, "parts", current,
			  "default", default_parts(r, k), "variables", vars));
	if (preview != NULL)
		json_object_set(v, "preview", preview);
	view_settings_page(r, k->label, "settings/mail_template",
			   "/settings/mail-templates");
}

/* {subject, text, html} of src rendered with the sample; NULL on error. */
static json_t *preview_of(struct req *r, const struct kind *k,
			  const char *const src[3])
{
	struct mustache_set *set;
	const char *field, *msg, *out[3];
	json_t *p;

	if (compile(r->arena, src, &set, &field, &msg) != TD_OK) {
		form_error(r, field, msg);
		return NULL;
	}
	if (render_parts(r->arena, set, "", sample(r, k), out) != TD_OK) {
		form_error(r, "body_html",
			   "the template runs away (a partial that includes"
			   " itself?)");
		return NULL;
	}
	p = json_pack("{s:s, s:s, s:s}", "subject", out[0], "text", out[1],
		      "html", out[2]);
	req_own_json(r, p);
	return p;
}

/* The parts in force for k: override, else defaults. */
static enum td_err current_parts(struct req *r, const struct kind *k,
				 json_t **parts_out, bool *customised,
				 const char **updated_at, int64_t *id)
{
	const char *params[1] = { k->name };
	PGresult *res;
	enum td_err err = req_query(r, sql_one, 1, params, &res);

	if (err != TD_OK)
		return err;
	*customised = PQntuples(res) == 1;
	*updated_at = NULL;
	*id = 0;
	if (!*customised) {
		*parts_out = default_parts(r, k);
		return TD_OK;
	}
	*id = db_int(res, 0, 0);
	*updated_at = db_text(res, 0, 4);
	*parts_out = json_pack("{s:s, s:s, s:s}", fields[0], db_text(res, 0, 1),
			       fields[1], db_text(res, 0, 2), fields[2],
			       db_text(res, 0, 3));
	req_own_json(r, *parts_out);
	return TD_OK;
}

/* GET /settings/mail-templates/:name */
enum td_err mailtpl_edit(struct req *r)
{
	const struct kind *k = route_kind(r);
	const char *src[3], *updated_at;
	json_t *cur, *preview;
	bool customised;
	int64_t id;
	enum td_err err;
	size_t i;

	if (k == NULL)
		return TD_ENOENT;
	err = current_parts(r, k, &cur, &customised, &updated_at, &id);
	if (err != TD_OK)
		return err;
	for (i = 0; i < 3; i++)
		src[i] = json_string_value(json_object_get(cur, fields[i]));
	/* Defaults and stored overrides compile; a problem shows on the form. */
	preview = preview_of(r, k, src);
	edit_page(r, k, cur, customised, updated_at, preview);
	return TD_OK;
}

/*
 * The parts typed in: present, valid UTF-8 within limits (line endings
 * made \n). Problems go to form_error().
 */
static void typed_parts(struct req *r, const char *src[3])
{
	size_t i, n;
	char *s, *p;

	for (i = 0; i < 3; i++) {
		s = arena_strdup(r->arena, form_text(r, fields[i]));
		for (p = s; (p = strstr(p, "\r\n")) != NULL;)
			memmove(p, p + 1, strlen(p + 1) + 1);
		src[i] = s;
		n = http_utf8_len(s);
		if (n == 0 || *one_line(r->arena, s) == '\0')
			form_error(r, fields[i], "write this part");
		else if (n > part_max[i])
			form_error(r, fields[i],
				   arena_printf(r->arena,
						"use at most %zu characters",
						part_max[i]));
	}
}

/*
 * The edit page with the parts typed on the form (and preview, if any);
 * whether an override is stored is read from the table.
 */
static enum td_err typed_page(struct req *r, const struct kind *k,
			      const char *const src[3], json_t *preview)
{
	const char *params[1] = { k->name };
	PGresult *res;
	json_t *typed;
	enum td_err err = req_query(r, sql_one, 1, params, &res);

	if (err != TD_OK)
		return err;
	typed = json_pack("{s:s, s:s, s:s}", fields[0], src[0], fields[1],
			  src[1], fields[2], src[2]);
	req_own_json(r, typed);
	edit_page(r, k, typed, PQntuples(res) == 1,
		  PQntuples(res) == 1 ? db_text(res, 0, 4) : NULL, preview);
	return TD_OK;
}

/* The typed parts back on the form with the messages: 422. */
static enum td_err reject(struct req *r, const struct kind *k,
			  const char *const src[3])
{
	enum td_err err;

	if (!r->want_json) {
		err = typed_page(r, k, src, NULL);
		if (err != TD_OK)
			return err;
	}
	return form_reject(r, "settings/mail_template", NULL);
}

/* POST /settings/mail-templates/:name/preview */
enum td_err mailtpl_preview(struct req *r)
{
	const struct kind *k = route_kind(r);
	const char *src[3];
	json_t *preview = NULL;

	if (k == NULL)
		return TD_ENOENT;
	typed_parts(r, src);
	if (!form_has_errors(r))
		preview = preview_of(r, k, src);
	if (preview == NULL)
		return reject(r, k, src);
	return typed_page(r, k, src, preview);
}

/* POST /settings/mail-templates/:name */
enum td_err mailtpl_save(struct req *r)
{
	const struct kind *k = route_kind(r);
	const char *src[3], *params[5], *updated_at;
	json_t *before, *after;
	bool customised;
	int64_t id;
	PGresult *res;
	enum td_err err;

	if (k == NULL)
		return TD_ENOENT;
	typed_parts(r, src);
	if (!form_has_errors(r))
		preview_of(r, k, src);
	if (form_has_errors(r))
		return reject(r, k, src);
	err = current_parts(r, k, &before, &customised, &updated_at, &id);
	if (err != TD_OK)
		return err;
	params[0] = k->name;
	params[1] = src[0];
	params[2] = src[1];
	params[3] = src[2];
	params[4] = r->auth.kind == AUTH_USER ? req_id(r, r->auth.user_id) :
						NULL;
	err = req_query(r, sql_put, 5, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:s, s:s, s:s, s:s}", "name", k->name, fields[0],
			  src[0], fields[1], src[1], fields[2], src[2]);
	req_own_json(r, after);
	json_object_set_new(before, "customised", json_boolean(customised));
	err = audit_write(r, "mail_template.update", "mail_template", id,
			  before, after);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return mailtpl_edit(r);
	form_flash(r, "ok", arena_printf(r->arena, "%s template saved.",
					 k->label));
	r->redirect = arena_printf(r->arena, "/settings/mail-templates/%s",
				   k->name);
	return TD_OK;
}

/* POST /settings/mail-templates/:name/reset */
enum td_err mailtpl_reset(struct req *r)
{
	const struct kind *k = route_kind(r);
	const char *params[1], *updated_at;
	json_t *before, *after;
	bool customised;
	int64_t id;
	PGresult *res;
	enum td_err err;

	if (k == NULL)
		return TD_ENOENT;
	err = current_parts(r, k, &before, &customised, &updated_at, &id);
	if (err != TD_OK)
		return err;
	params[0] = k->name;
	err = req_query(r, sql_delete, 1, params, &res);
	if (err == TD_OK && PQntuples(res) == 1) {
		after = json_pack("{s:s, s:b}", "name", k->name, "customised",
				  0);
		req_own_json(r, after);
		err = audit_write(r, "mail_template.reset", "mail_template",
				  db_int(res, 0, 0), before, after);
	}
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return mailtpl_edit(r);
	form_flash(r, "ok",
		   arena_printf(r->arena, "%s template reset to the default.",
				k->label));
	r->redirect = arena_printf(r->arena, "/settings/mail-templates/%s",
				   k->name);
	return TD_OK;
}
