/* tickets.c: one ticket — create, page with timeline, change, close, reopen,
 * merge */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "contracts.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "names.h"
#include "notify.h"
#include "req.h"
#include "sbuf.h"
#include "sla.h"
#include "ticketctx.h"
#include "tickets.h"
#include "timers.h"
#include "banned.h"

#define CHOICES 500

/*
 * A time in the tenant's zone ($2, r->auth.time_zone: no join for it) as
 * PostgreSQL writes a timestamp, "2026-11-24 12:47:31.5" (ISO dates: db.c
 * asks for them); minute_text shows it to the minute. Cheaper than to_char
 * on every row.
 */
#define TS(col) " (" col " AT TIME ZONE $2)::text,"
#define ISO(col)                                                               \
	" to_char(" col                                                        \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"

/*
 * One ticket; see enum tcol. The client's and the assignee's names come
 * from names.c and the status label from ticketctx (both kept per worker),
 * so the statement joins only the contact and the ticket merged into; the
 * SLA box comes with the ticket, as one value (sla.h).
 */
/* clang-format off */
static const char sql_ticket[] =
	"SELECT t.id, t.number, t.subject, t.description, t.client_id, NULL,"
	" t.contact_id, k.name, t.status, t.priority, t.type, t.assignee_id,"
	" NULL, " TICKET_TAGS_JSON("t.tags") ","
	" to_char(t.due_at AT TIME ZONE $2, 'YYYY-MM-DD'),"
	TS("t.created_at") TS("t.updated_at") TS("t.first_response_at")
	TS("t.closed_at")
	" t.source, t.merged_into, m.number, t.closed_without_time, t.version,"
	" NULL, to_char(t.created_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), t.queue," SLA_BOX_COLUMN("$2")
	" FROM tickets t"
	" LEFT JOIN contacts k ON k.tenant_id = t.tenant_id AND k.id = t.contact_id"
	" LEFT JOIN tickets m ON m.tenant_id = t.tenant_id AND m.id = t.merged_into"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1";
/* clang-format on */

enum tcol {
	T_ID,
	T_NUMBER,
	T_SUBJECT,
	T_DESCRIPTION,
	T_CLIENT,
	T_CLIENT_NAME, /* NULL: names.c */
	T_CONTACT,
	T_CONTACT_NAME,
	T_STATUS,
	T_PRIORITY,
	T_TYPE,
	T_ASSIGNEE,
	T_ASSIGNEE_NAME, /* NULL: names.c */
	T_TAGS,
	T_DUE,
	T_CREATED,
	T_UPDATED,
	T_FIRST_RESPONSE,
	T_CLOSED,
	T_SOURCE,
	T_MERGED_INTO,
	T_MERGED_NUMBER,
	T_WITHOUT_TIME,
	T_VERSION,
	T_STATUS_LABEL, /* NULL: ticketctx */
	T_CREATED_ISO,
	T_QUEUE,
	T_SLA, /* SLA_BOX_COLUMN: sla.c reads it */
};

/*
 * The timeline: comments, the ticket's audit rows and files attached without
 * a comment in one list, oldest first, so the page needs no merging of its
 * own and no per-row queries. An attachment row carries its filename in the
 * body column and its size in the before column.
 */
static const char sql_timeline[] =
	"SELECT * FROM ("
	"SELECT 'comment' AS kind, cm.id, cm.created_at AS at," TS("cm.created_at") ISO(
		"cm.created_at") " cm.author_user_id,"
				 " coalesce(k.name, nullif(cm.author_label, ''), 'System'),"
				 " cm.public, cm.body, cm.edited_at IS NOT NULL, NULL::text AS action,"
				 " NULL::text AS before, NULL::text AS after FROM ticket_comments cm"
				 " LEFT JOIN contacts k ON k.tenant_id = cm.tenant_id"
				 " AND k.id = cm.author_contact_id"
				 " WHERE cm.tenant_id = app_tenant() AND cm.ticket_id = $1"
				 " UNION ALL "
				 "SELECT 'event', a.id, a.at," TS("a.at") ISO(
					 "a.at") " a.actor_user_id,"
						 " a.actor, false, '', false, a.action, a.before::text, a.after::text"
						 " FROM audit_log a WHERE a.tenant_id = app_tenant()"
						 " AND a.object_type = 'ticket' AND a.object_id = $1"
						 " UNION ALL "
						 "SELECT 'attachment', f.id, f.created_at," TS(
							 "f.created_at")
							 ISO("f.created_at") " f.uploaded_by, 'System', false, f.filename,"
									     " false, NULL::text, f.size::text, f.comment_id::text"
									     " FROM ticket_attachments f"
									     " WHERE f.tenant_id = app_tenant() AND f.ticket_id = $1"
									     ") x ORDER BY x.at, x.kind, x.id";

static const char sql_clients[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND archived_at IS NULL AND merged_into IS NULL"
	" ORDER BY lower(name), id LIMIT 500";
static const char sql_contacts[] =
	"SELECT id, name FROM contacts WHERE tenant_id = app_tenant()"
	" AND client_id = $1 ORDER BY lower(name), id";

static const char sql_client_active[] =
	"SELECT archived_at IS NULL AND merged_into IS NULL FROM clients"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_contact_of[] =
	"SELECT 1 FROM contacts WHERE tenant_id = app_tenant() AND id = $1"
	" AND client_id = $2";
static const char sql_site_of[] =
	"SELECT 1 FROM sites WHERE tenant_id = app_tenant() AND id = $1"
	" AND client_id = $2";
static const char sql_asset_of[] =
	"SELECT 1 FROM assets WHERE tenant_id = app_tenant() AND id = $1"
	" AND client_id = $2";
static const char sql_user_active[] =
	"SELECT 1 FROM users WHERE tenant_id = app_tenant() AND id = $1"
	" AND active";
/* A due date is the start of that day in the tenant's time zone. */
static const char sql_set_due[] =
	"UPDATE tickets SET due_at = ($2::date)::timestamp AT TIME ZONE"
	" (SELECT time_zone FROM tenants WHERE id = app_tenant())"
	" WHERE tenant_id = app_tenant() AND id = $1";
/* NULL parameters keep the column; $4/$8 say whether to set $5/$9. */
static const char sql_update[] =
	"UPDATE tickets SET status = coalesce($2, status),"
	" priority = coalesce($3::smallint, priority),"
	" assignee_id = CASE WHEN $4::boolean THEN $5::bigint"
	" ELSE assignee_id END,"
	" type = coalesce($6, type),"
	" tags = CASE WHEN $7::text IS NULL THEN tags"
	" ELSE ARRAY(SELECT jsonb_array_elements_text($7::jsonb)) END,"
	" due_at = CASE WHEN NOT $8::boolean THEN due_at"
	" WHEN $9::date IS NULL THEN NULL"
	" ELSE ($9::date)::timestamp AT TIME ZONE"
	" (SELECT time_zone FROM tenants WHERE id = app_tenant()) END,"
	" subject = coalesce($10, subject), queue = coalesce($11, queue)"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_close[] =
	"UPDATE tickets SET status = 'closed', closed_at = now(),"
	" closed_without_time = $2::boolean"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_merged_into[] =
	"SELECT m.number FROM tickets t JOIN tickets m"
	" ON m.tenant_id = t.tenant_id AND m.id = t.merged_into"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1";

/* Split: what the new ticket inherits, and the comment it takes. */
static const char sql_split_source[] =
	"SELECT t.client_id, t.contact_id, t.site_id, t.asset_id, t.priority,"
	" t.type, t.queue, to_json(t.tags)::text, t.source, t.subject,"
	" c.id IS NOT NULL FROM tickets t LEFT JOIN ticket_comments c"
	" ON c.tenant_id = t.tenant_id AND c.ticket_id = t.id AND c.id = $2"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1";
static const char sql_split_comment[] =
	"UPDATE ticket_comments SET ticket_id = $3"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1 AND id = $2";
static const char sql_split_attachments[] =
	"UPDATE ticket_attachments SET ticket_id = $3"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1 AND comment_id = $2";

/* The fields kept when a form is refused. */
static const char *const new_fields[] = { "subject", "description", "tags",
					  "due", NULL };
static const char *const edit_fields[] = { "subject", "tags", "due", NULL };

static const char *const types[] = { "incident", "project" };
static const char *const sources[] = { "phone", "manual", "email", "portal",
				       "api" };
#define NTYPES	 (sizeof(types) / sizeof(types[0]))
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

/* What the new-ticket form asks for. */
struct ticket_in {
	int64_t client_id, contact_id, site_id, asset_id, assignee_id;
	int priority;
	const char *subject, *description, *type, *source, *due, *queue;
	json_t *tags;
};

/* Page-building helpers: jansson's checks and json_pack's format parsing
 * cost more than the rest on pages with many small objects. */
static void put(json_t *o, const char *key, json_t *v)
{
	json_object_set_new_nocheck(o, key, v);
}

/* A text column as it came (PostgreSQL sends valid UTF-8). */
static json_t *text_at(const PGresult *res, int row, int col)
{
	return json_stringn_nocheck(PQgetvalue(res, row, col),
				    (size_t)PQgetlength(res, row, col));
}

static json_int_t int_at(const PGresult *res, int row, int col)
{
	return (json_int_t)db_int(res, row, col);
}

/* Text, or null when empty: mustache takes "" for true. */
static json_t *text_or_null(const char *s)
{
	return s == NULL || *s == '\0' ? json_null() : json_string(s);
}

static json_t *col_text(const PGresult *res, int row, int col)
{
	return text_or_null(db_text(res, row, col));
}

/* A TS() column as "2026-11-24 12:47", or null. */
static json_t *minute_text(const PGresult *res, int row, int col)
{
	size_t n = (size_t)PQgetlength(res, row, col);

	if (n == 0)
		return json_null();
	return json_stringn_nocheck(PQgetvalue(res, row, col), n < 16 ? n : 16);
}

/* An optional id field: 0 when empty; false (and an error) when bad. */
static bool read_opt_id(struct req *r, const char *name, int64_t *out)
{
	const char *s = form_text(r, name);

	*out = 0;
	if (*s == '\0')
		return true;
	if (http_parse_id(s, out))
		return true;
	form_error(r, name, "choose one from the list");
	return false;
}

/* A query parameter, NULL when absent or empty. */
static const char *query_param(struct req *r, const char *name)
{
	const char *v = http_params_get(&r->query_params, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, set[i]))
			return true;
	return false;
}

/* YYYY-MM-DD with a plausible month and day (PostgreSQL checks the rest). */
static bool date_ok(const char *s)
{
	int i, m, d;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

static const char *ticket_url(struct req *r, int64_t id)
{
	return arena_printf(r->arena, "/tickets/%" PRId64, id);
}

static const char *ref(struct req *r, int64_t number)
{
	return arena_printf(r->arena, "T-%" PRId64, number);
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/* "a, b" for the tags input. */
static const char *tags_text(struct req *r, json_t *tags)
{
	struct sbuf sb;
	json_t *t;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	json_array_foreach(tags, i, t)
	{
		sbuf_addf(&sb, "%s%s", i ? ", " : "", json_string_value(t));
	}
	return sbuf_cstr(&sb);
}

/* JSON text from PostgreSQL, or an empty array if unreadable. */
static json_t *json_from(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_array();
}

/* [{id, name, selected}] from a query of id, name. */
static enum td_err choices(struct req *r, const char *sql, int n,
			   const char *const *params, int64_t selected,
			   json_t **out)
{
	PGresult *res;
	enum td_err err;
	int i, rows;

	*out = json_array();
	err = req_query(r, sql, n, params, &res);
	if (err != TD_OK)
		return err;
	rows = PQntuples(res);
	for (i = 0; i < rows && i < CHOICES; i++)
		json_array_append_new(*out,
				      json_pack("{s:I, s:s, s:b}", "id",
						int_at(res, i, 0), "name",
						db_text(res, i, 1), "selected",
						db_int(res, i, 0) == selected));
	return TD_OK;
}

/* {value, label, selected}: one option of a select; label is UTF-8. */
static json_t *option(json_t *value, const char *label, bool selected)
{
	json_t *o = json_object();

	put(o, "value", value);
	put(o, "label", json_string_nocheck(label));
	put(o, "selected", json_boolean(selected));
	return o;
}

/* [{value, label, selected}] of fixed keys. */
static json_t *key_choices(const char *const *keys, size_t n,
			   const char *selected)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(
			a,
			option(json_string_nocheck(keys[i]), keys[i],
			       selected != NULL && !strcmp(keys[i], selected)));
	return a;
}

static json_t *priority_choices(int selected)
{
	json_t *a = json_array();
	int p;

	for (p = 1; p <= 4; p++)
		json_array_append_new(a, option(json_integer(p),
						ticketctx_priority_label(p),
						p == selected));
	return a;
}

/* The open statuses (closing has its own button). */
static json_t *status_choices(struct req *r, enum ticket_status selected)
{
	json_t *a = json_array();
	int s;

	for (s = 0; s < TICKET_CLOSED; s++)
		json_array_append_new(
			a,
			option(json_string_nocheck(ticketctx_status_key(
				       (enum ticket_status)s)),
			       ticketctx_status_label(r, (enum ticket_status)s),
			       s == (int)selected));
	return a;
}

/* ------------------------------------------------------------------ */
/* New and create                                                       */

/* The new-ticket page for in (the client picked decides the contacts). */
static enum td_err new_page(struct req *r, const struct ticket_in *in)
{
	struct ticket_choices c;
	const char *params[1];
	json_t *v = req_view(r), *list;
	enum td_err err;

	json_object_set_new(v, "title", json_string("New ticket"));
	r->view_name = "tickets/new";
	err = choices(r, sql_clients, 0, NULL, in->client_id, &list);
	json_object_set_new(v, "clients", list);
	if (err != TD_OK)
		return err;
	if (in->client_id > 0) {
		params[0] = req_id(r, in->client_id);
		err = choices(r, sql_contacts, 1, params, in->contact_id,
			      &list);
		json_object_set_new(v, "contacts", list);
		if (err != TD_OK)
			return err;
	} else {
		json_object_set_new(v, "contacts", json_array());
	}
	json_object_set_new(v, "client_id",
			    in->client_id > 0 ? json_integer(in->client_id) :
						json_null());
	err = ticketctx_choices(r, "users", in->assignee_id, in->queue, false,
				&c);
	json_object_set_new(v, "queues", c.queues);
	json_decref(c.views);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "priorities", priority_choices(in->priority));
	json_object_set_new(v, "types", key_choices(types, NTYPES, in->type));
	json_object_set_new(v, "sources",
			    key_choices(sources, NSOURCES, in->source));
	json_object_set_new(v, "form",
			    json_pack("{s:s, s:s, s:s, s:s}", "subject",
				      in->subject, "description",
				      in->description, "tags",
				      in->tags ? tags_text(r, in->tags) : "",
				      "due", in->due));
	return TD_OK;
}

/* GET /tickets/new[?client_id=] — the form; contacts once a client is picked.
 */
enum td_err tickets_new(struct req *r)
{
	struct ticket_in in;
	const char *c = query_param(r, "client_id");

	memset(&in, 0, sizeof(in));
	in.priority = 3;
	in.type = "incident";
	in.source = "manual";
	in.subject = "";
	in.description = "";
	in.due = "";
	if (c != NULL && !http_parse_id(c, &in.client_id))
		in.client_id = 0;
	return new_page(r, &in);
}

/* Is there a row for sql($1 = id, $2 = client)? */
static enum td_err exists(struct req *r, const char *sql, int64_t id,
			  int64_t client_id, bool *out)
{
	const char *params[2] = { req_id(r, id), req_id(r, client_id) };
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql, client_id > 0 ? 2 : 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = PQntuples(res) > 0;
	return TD_OK;
}

/* One optional id that must belong to the client, when given. */
static enum td_err check_of_client(struct req *r, const char *field,
				   const char *sql, int64_t id,
				   int64_t client_id, const char *what)
{
	enum td_err err;
	bool ok;

	if (id == 0 || client_id == 0)
		return TD_OK;
	err = exists(r, sql, id, client_id, &ok);
	if (err != TD_OK)
		return err;
	if (!ok)
		form_error(r, field,
			   arena_printf(r->arena, "choose a %s of this client",
					what));
	return TD_OK;
}

static enum td_err check_assignee(struct req *r, int64_t id)
{
	enum td_err err;
	bool ok;

	if (id == 0)
		return TD_OK;
	err = exists(r, sql_user_active, id, 0, &ok);
	if (err != TD_OK)
		return err;
	if (!ok)
		form_error(r, "assignee_id", "choose an active user");
	return TD_OK;
}

static int read_priority(struct req *r, int dflt)
{
	const char *s = form_text(r, "priority");

	if (*s == '\0')
		return dflt;
	if ((s[0] == 'P' || s[0] == 'p') && s[1] != '\0')
		s++;
	if (strlen(s) == 1 && s[0] >= '1' && s[0] <= '4')
		return s[0] - '0';
	form_error(r, "priority", "choose a priority from P1 to P4");
	return dflt;
}

/* Reads and checks the new-ticket form (problems via form_error). */
static enum td_err read_new(struct req *r, struct ticket_in *in)
{
	const char *params[1];
	PGresult *res;
	enum td_err err;

	memset(in, 0, sizeof(*in));
	in->subject = form_text(r, "subject");
	in->description = form_text(r, "description");
	in->type = form_text(r, "type");
	in->source = form_text(r, "source");
	in->due = form_text(r, "due");
	in->queue = form_text(r, "queue");
	if (*in->type == '\0')
		in->type = "incident";
	if (*in->source == '\0')
		in->source = "manual";
	in->priority = read_priority(r, 3);
	in->tags = form_tags(r);
	if (http_utf8_len(in->subject) < 1 || http_utf8_len(in->subject) > 300)
		form_error(r, "subject",
			   "enter a subject of at most 300 characters");
	if (http_utf8_len(in->description) > 100000)
		form_error(r, "description", "use at most 100000 characters");
	if (!one_of(in->type, types, NTYPES))
		form_error(r, "type", "choose incident or project");
	if (!one_of(in->source, sources, NSOURCES))
		form_error(r, "source", "choose where the ticket came from");
	if (*in->due != '\0' && !date_ok(in->due))
		form_error(r, "due", "enter a date such as 2026-12-31");
	read_opt_id(r, "contact_id", &in->contact_id);
	read_opt_id(r, "site_id", &in->site_id);
	read_opt_id(r, "asset_id", &in->asset_id);
	read_opt_id(r, "assignee_id", &in->assignee_id);
	if (!read_opt_id(r, "client_id", &in->client_id)) {
		in->client_id = 0;
	} else if (in->client_id == 0) {
		form_error(r, "client_id", "choose a client");
	} else {
		params[0] = req_id(r, in->client_id);
		err = req_query(r, sql_client_active, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1 || !db_bool(res, 0, 0)) {
			form_error(r, "client_id", "choose an active client");
			in->client_id = 0;
		}
	}
	err = check_of_client(r, "contact_id", sql_contact_of, in->contact_id,
			      in->client_id, "contact");
	if (err == TD_OK)
		err = check_of_client(r, "site_id", sql_site_of, in->site_id,
				      in->client_id, "site");
	if (err == TD_OK)
		err = check_of_client(r, "asset_id", sql_asset_of, in->asset_id,
				      in->client_id, "asset");
	if (err == TD_OK)
		err = check_assignee(r, in->assignee_id);
	if (err == TD_OK)
		err = ticketctx_check_queue(r, in->queue);
	return err;
}

static enum td_err show_page(struct req *r, int64_t id);

/*
 * POST /tickets — 303 to the new ticket (the API gets 201 {ticket});
 * 422 for bad fields.
 */
enum td_err tickets_create(struct req *r)
{
	struct ticket_in in;
	struct ticket_new n;
	const char *params[2];
	int64_t id, number;
	enum td_err err;

	err = read_new(r, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = new_page(r, &in);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "tickets/new", new_fields);
	}
	memset(&n, 0, sizeof(n));
	n.subject = in.subject;
	n.description = in.description;
	n.client_id = in.client_id;
	n.contact_id = in.contact_id;
	n.site_id = in.site_id;
	n.asset_id = in.asset_id;
	n.source = in.source;
	n.priority = in.priority;
	n.type = in.type;
	n.queue = in.queue;
	n.assignee_id = in.assignee_id;
	n.tags_json = req_json_text(r, in.tags, NULL);
	err = ticketctx_create(r, &n, &id, &number);
	if (err != TD_OK)
		return err;
	if (*in.due != '\0') {
		params[0] = req_id(r, id);
		params[1] = in.due;
		err = req_query(r, sql_set_due, 2, params, NULL);
		if (err != TD_OK)
			return err;
	}
	if (r->want_json) {
		err = show_page(r, id);
		if (err != TD_OK)
			return err;
		r->status = 201;
		return TD_OK;
	}
	done(r, arena_printf(r->arena, "%s created.", ref(r, number)),
	     ticket_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* The ticket page                                                      */

static json_t *named(const PGresult *res, int id_col, const char *name)
{
	json_t *o;

	if (db_isnull(res, 0, id_col))
		return json_null();
	o = json_object();
	put(o, "id", json_integer(int_at(res, 0, id_col)));
	put(o, "name", json_string_nocheck(name != NULL ? name : ""));
	return o;
}

/* The ticket as the API and the page see it; see sql_ticket. */
static json_t *ticket_json(struct req *r, const PGresult *res)
{
	int64_t id = db_int(res, 0, T_ID), mid;
	const char *client = names_client(db_int(res, 0, T_CLIENT));
	enum ticket_status st =
		ticketctx_status_parse(db_text(res, 0, T_STATUS));
	int prio = (int)db_int(res, 0, T_PRIORITY);
	const char *label;
	json_t *t, *c, *merged = json_null(), *tags;

	if (st == TICKET_STATUS__MAX)
		st = TICKET_NEW;
	label = ticketctx_status_label(r, st);
	if (!db_isnull(res, 0, T_MERGED_INTO)) {
		mid = db_int(res, 0, T_MERGED_INTO);
		merged = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)mid,
				   "ref",
				   ref(r, db_int(res, 0, T_MERGED_NUMBER)),
				   "url", ticket_url(r, mid));
	}
	tags = json_from(db_text(res, 0, T_TAGS));
	t = json_object();
	put(t, "id", json_integer(id));
	put(t, "number", json_integer(int_at(res, 0, T_NUMBER)));
	put(t, "ref", json_string_nocheck(ref(r, db_int(res, 0, T_NUMBER))));
	put(t, "subject", text_at(res, 0, T_SUBJECT));
	put(t, "description", col_text(res, 0, T_DESCRIPTION));
	put(t, "url", json_string_nocheck(ticket_url(r, id)));
	c = named(res, T_CLIENT, client);
	put(c, "url",
	    json_string_nocheck(arena_join(r->arena, "/clients/",
					   db_text(res, 0, T_CLIENT))));
	put(t, "client", c);
	json_object_set_new(
		t, "contact",
		named(res, T_CONTACT, db_text(res, 0, T_CONTACT_NAME)));
	json_object_set_new(
		t, "assignee",
		named(res, T_ASSIGNEE, names_user(db_int(res, 0, T_ASSIGNEE))));
	json_object_set_new(t, "status", json_string(ticketctx_status_key(st)));
	json_object_set_new(t, "status_label", json_string(label));
	json_object_set_new(t, "status_badge",
			    json_string(ticketctx_status_badge(st)));
	json_object_set_new(t, "priority", json_integer(prio));
	json_object_set_new(t, "priority_label",
			    json_string(ticketctx_priority_label(prio)));
	json_object_set_new(
		t, "priority_badge",
		json_string(arena_printf(r->arena, "badge-p%d", prio)));
	json_object_set_new(t, "type", json_string(db_text(res, 0, T_TYPE)));
	json_object_set_new(t, "queue", text_or_null(db_text(res, 0, T_QUEUE)));
	json_object_set_new(t, "source",
			    json_string(db_text(res, 0, T_SOURCE)));
	json_object_set_new(t, "tags", tags);
	json_object_set_new(t, "tags_text", json_string(tags_text(r, tags)));
	json_object_set_new(t, "due", col_text(res, 0, T_DUE));
	json_object_set_new(t, "created_at", minute_text(res, 0, T_CREATED));
	json_object_set_new(t, "created_at_iso",
			    col_text(res, 0, T_CREATED_ISO));
	json_object_set_new(t, "updated_at", minute_text(res, 0, T_UPDATED));
	json_object_set_new(t, "first_response_at",
			    minute_text(res, 0, T_FIRST_RESPONSE));
	json_object_set_new(t, "closed_at", minute_text(res, 0, T_CLOSED));
	json_object_set_new(t, "closed", json_boolean(st == TICKET_CLOSED));
	json_object_set_new(t, "closed_without_time",
			    json_boolean(db_bool(res, 0, T_WITHOUT_TIME)));
	json_object_set_new(t, "merged_into", merged);
	json_object_set_new(t, "version",
			    json_integer(db_int(res, 0, T_VERSION)));
	return t;
}

/* "status: "new" → "waiting"; priority: 1 → 4" from an audit row. */
static const char *change_text(struct req *r, const char *before,
			       const char *after)
{
	json_t *b = json_loads(before, JSON_DECODE_ANY, NULL);
	json_t *a = json_loads(after, JSON_DECODE_ANY, NULL), *v, *old;
	struct sbuf sb;
	const char *key, *at, *bt;
	bool first = true;

	if (a != NULL)
		req_own_json(r, a);
	if (b != NULL)
		req_own_json(r, b);
	sbuf_init(&sb, r->arena, 128);
	if (!json_is_object(a))
		return sbuf_cstr(&sb);
	json_object_foreach(a, key, v)
	{
		at = req_json_text(r, v, NULL);
		old = json_is_object(b) ? json_object_get(b, key) : NULL;
		bt = old != NULL ? req_json_text(r, old, NULL) : NULL;
		sbuf_addf(&sb, "%s%s: ", first ? "" : "; ", key);
		if (bt != NULL)
			sbuf_addf(&sb, "%s → ", bt);
		sbuf_addf(&sb, "%s", at != NULL ? at : "null");
		first = false;
	}
	return sbuf_cstr(&sb);
}

static const char *event_label(const char *action)
{
	static const struct {
		const char *action, *label;
	} labels[] = {
		{ "ticket.create", "created the ticket" },
		{ "ticket.update", "changed" },
		{ "ticket.close", "closed the ticket" },
		{ "ticket.reopen", "reopened the ticket" },
		{ "ticket.merge", "merged" },
		{ "ticket.split", "split a comment off" },
		{ "time.timer_discard", "had a running timer discarded" },
	};
	size_t i;

	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (!strcmp(action, labels[i].action))
			return labels[i].label;
	return action;
}

/* Columns of sql_timeline. */
enum {
	TL_KIND,
	TL_ID,
	TL_AT_RAW,
	TL_AT,
	TL_AT_ISO,
	TL_WHO_USER, /* the person's name comes from names.c */
	TL_WHO,	     /* who, when not a person (or one no longer there) */
	TL_PUBLIC,
	TL_BODY,
	TL_EDITED,
	TL_ACTION,
	TL_BEFORE,
	TL_AFTER,
};

/* A file of the ticket: {id, filename, size, url}. */
static json_t *file_json(struct req *r, const PGresult *res, int i)
{
	json_t *f = json_object();

	put(f, "id", json_integer(int_at(res, i, TL_ID)));
	put(f, "filename", text_at(res, i, TL_BODY));
	put(f, "size", json_integer(int_at(res, i, TL_BEFORE)));
	put(f, "url",
	    json_string_nocheck(arena_join(r->arena, "/attachments/",
					   db_text(res, i, TL_ID))));
	return f;
}

/* A comment's own fields, and its (so far empty) list of files. */
static void comment_item(const PGresult *res, int i, json_t *item,
			 json_t *files)
{
	bool pub = db_bool(res, i, TL_PUBLIC);

	put(item, "attachments", files);
	put(item, "public", json_boolean(pub));
	put(item, "internal", json_boolean(!pub));
	put(item, "body", text_at(res, i, TL_BODY));
	put(item, "edited", json_boolean(db_bool(res, i, TL_EDITED)));
}

/*
 * The timeline, one query: comments, events and files in time order. A
 * file uploaded with a comment goes in that comment's list; one uploaded
 * alone is an item of its own and in loose, the ticket's own list.
 */
static enum td_err timeline(struct req *r, int64_t id, json_t **out,
			    json_t *loose)
{
	const char *params[2] = { req_id(r, id), r->auth.time_zone };
	json_t *by_comment = json_object(), *item, *files;
	const char *who, *kind;
	PGresult *res;
	enum td_err err;
	int i, n;
	bool comment, file;

	*out = json_array();
	req_own_json(r, by_comment);
	err = req_query(r, sql_timeline, 2, params, &res);
	if (err == TD_OK)
		err = names_load(r, res, -1, TL_WHO_USER);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		kind = db_text(res, i, TL_KIND);
		comment = !strcmp(kind, "comment");
		file = !strcmp(kind, "attachment");
		if (file && !db_isnull(res, i, TL_AFTER))
			continue; /* a comment's: after the loop */
		who = db_isnull(res, i, TL_WHO_USER) ?
			      NULL :
			      names_user(db_int(res, i, TL_WHO_USER));
		item = json_object();
		put(item, "kind", json_string_nocheck(kind));
		put(item, "id", json_integer(int_at(res, i, TL_ID)));
		put(item, "at", minute_text(res, i, TL_AT));
		put(item, "at_iso", text_at(res, i, TL_AT_ISO));
		put(item, "who",
		    who != NULL ? json_string_nocheck(who) :
				  text_at(res, i, TL_WHO));
		put(item, "is_comment", json_boolean(comment));
		put(item, "is_attachment", json_boolean(file));
		put(item, "is_event", json_boolean(!comment && !file));
		if (file) {
			files = file_json(r, res, i); /* the same id */
			json_object_update(item, files);
			json_array_append_new(loose, files);
		} else if (comment) {
			files = json_array();
			json_object_set(by_comment, db_text(res, i, TL_ID),
					files);
			comment_item(res, i, item, files);
		} else {
			put(item, "action", text_at(res, i, TL_ACTION));
			put(item, "label",
			    json_string(
				    event_label(db_text(res, i, TL_ACTION))));
			put(item, "changes",
			    text_or_null(
				    change_text(r, db_text(res, i, TL_BEFORE),
						db_text(res, i, TL_AFTER))));
		}
		json_array_append_new(*out, item);
	}
	for (i = 0; i < n; i++) {
		if (strcmp(db_text(res, i, TL_KIND), "attachment") != 0 ||
		    db_isnull(res, i, TL_AFTER))
			continue;
		files = json_object_get(by_comment, db_text(res, i, TL_AFTER));
		/* A comment gone (merged away) leaves its files loose. */
		json_array_append_new(files != NULL ? files : loose,
				      file_json(r, res, i));
	}
	for (i = 0; i < (int)json_array_size(*out); i++) {
		item = json_array_get(*out, (size_t)i);
		files = json_object_get(item, "attachments");
		if (files != NULL)
			put(item, "has_attachments",
			    json_boolean(json_array_size(files) > 0));
	}
	return TD_OK;
}

/* The ticket's row (TD_ENOENT if none). */
static enum td_err load_row(struct req *r, int64_t id, PGresult **res)
{
	const char *params[2] = { req_id(r, id), r->auth.time_zone };
	enum td_err err = req_query(r, sql_ticket, 2, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, id);
	return names_load(r, *res, T_CLIENT, T_ASSIGNEE);
}

/*
 * The whole ticket page: header, timeline, reply and edit forms. When
 * last, its reads end the request's transaction (a GET, which writes
 * nothing); a page shown after a write leaves the commit to the request.
 */
static enum td_err page(struct req *r, int64_t id, bool last)
{
	const char *params[2];
	struct ticket_choices c;
	enum ticket_status status;
	int64_t number;
	json_t *v = req_view(r), *t, *list, *files;
	PGresult *res;
	enum td_err err;
	int prio;

	/*
	 * Every read of the page that needs only the ticket's id goes to
	 * PostgreSQL at once; the client's follow once the row names it.
	 */
	params[0] = req_id(r, id);
	params[1] = r->auth.time_zone;
	req_want(r, sql_ticket, 2, params);
	req_want(r, sql_timeline, 2, params);
	timers_ticket_want(r, id);
	contracts_ticket_want(r, id);
	err = last ? req_fetch_wanted_last(r) : req_fetch_wanted(r);
	/* The row says all ticketctx_load would (one query fewer). */
	if (err == TD_OK)
		err = load_row(r, id, &res);
	if (err != TD_OK)
		return err;
	contracts_ticket_known(r, id, db_int(res, 0, T_CLIENT));
	number = db_int(res, 0, T_NUMBER);
	status = ticketctx_status_parse(db_text(res, 0, T_STATUS));
	prio = (int)db_int(res, 0, T_PRIORITY);
	/* The page's choices first: they bring the status names along. */
	if (!r->want_json) {
		err = ticketctx_choices(r, "users",
					db_isnull(res, 0, T_ASSIGNEE) ?
						0 :
						db_int(res, 0, T_ASSIGNEE),
					db_text(res, 0, T_QUEUE), false, &c);
		json_object_set_new(v, "queues", c.queues);
		json_decref(c.views);
		if (err != TD_OK)
			return err;
	}
	t = ticket_json(r, res);
	json_object_set_new(v, "ticket", t);
	sla_box_json(r, res, T_SLA, t);
	err = contracts_block_json(r, db_int(res, 0, T_CLIENT), v);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "%s %s", ref(r, number),
					 db_text(res, 0, T_SUBJECT))));
	r->view_name = "tickets/show";
	files = json_array();
	json_object_set_new(v, "attachments", files);
	err = timeline(r, id, &list, files);
	json_object_set_new(v, "timeline", list);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "has_loose_files",
			    json_boolean(json_array_size(files) > 0));
	err = timers_ticket_json(r, id, t, list);
	if (err != TD_OK)
		return err;
	json_object_set(v, "time_entries", json_object_get(t, "time_entries"));
	if (r->want_json)
		return TD_OK;
	json_object_set_new(v, "statuses", status_choices(r, status));
	json_object_set_new(v, "priorities", priority_choices(prio));
	json_object_set_new(
		v, "types",
		key_choices(types, NTYPES, db_text(res, 0, T_TYPE)));
	json_object_set_new(
		v, "form",
		json_pack("{s:s, s:s, s:s}", "subject",
			  db_text(res, 0, T_SUBJECT), "tags",
			  json_string_value(json_object_get(t, "tags_text")),
			  "due", db_text(res, 0, T_DUE)));
	return TD_OK;
}

static enum td_err show_page(struct req *r, int64_t id)
{
	return page(r, id, false);
}

/* GET /tickets/:id — 404 for another tenant's ticket. */
enum td_err tickets_show(struct req *r)
{
	return page(r, route_arg_int(&r->args, "id"), true);
}

/* A state conflict: 409, on the ticket page for browsers. */
static enum td_err refuse(struct req *r, int64_t id, enum td_err why)
{
	const char *msg = r->error_detail;
	enum td_err err;

	if (r->want_json || why != TD_ECONFLICT)
		return why;
	err = show_page(r, id);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "error", text_or_null(msg));
	r->status = 409;
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Update                                                               */

/* Notes old → new of one field in the audit snapshots. */
static void change(json_t *before, json_t *after, const char *key, json_t *old,
		   json_t *new_)
{
	json_object_set_new(before, key, old);
	json_object_set_new(after, key, new_);
}

static json_t *opt_int(int64_t v)
{
	return v > 0 ? json_integer(v) : json_null();
}

/*
 * POST /tickets/:id — changes the fields sent (an API caller may send a
 * subset); 303 to the ticket (the API gets {ticket}); 422 for bad fields
 * or status closed; 409 when the ticket is closed; 404.
 */
/* The new assignee hears of it (unless they took it themselves). */
static enum td_err notify_assigned(struct req *r, int64_t id, int64_t number,
				   const char *subject)
{
	return notify_assignee(
		r, id, "assigned", "assigned to you",
		arena_printf(r->arena, "%s assigned T-%" PRId64 " to you: %s",
			     r->auth.name != NULL ? r->auth.name : "Someone",
			     number, subject));
}

enum td_err tickets_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), assignee = 0;
	const char *params[11] = { NULL }, *s, *old_text;
	struct ticket_ref t;
	json_t *before, *after, *tags, *old_tags;
	PGresult *res;
	enum td_err err;
	int prio;

	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return refuse(r, id, err);
	err = load_row(r, id, &res);
	if (err != TD_OK)
		return err;
	before = json_object();
	req_own_json(r, before);
	after = json_object();
	req_own_json(r, after);
	params[0] = req_id(r, id);
	params[3] = "false";
	params[7] = "false";
	if (form_sent(r, "status")) {
		s = form_text(r, "status");
		if (!strcmp(s, "closed"))
			form_error(r, "status", "use Close to close a ticket");
		else if (ticketctx_status_parse(s) == TICKET_STATUS__MAX)
			form_error(r, "status", "choose a status");
		else if (strcmp(s, db_text(res, 0, T_STATUS)) != 0) {
			params[1] = s;
			change(before, after, "status",
			       json_string(db_text(res, 0, T_STATUS)),
			       json_string(s));
		}
	}
	if (form_sent(r, "priority")) {
		prio = read_priority(r, (int)db_int(res, 0, T_PRIORITY));
		if (prio != (int)db_int(res, 0, T_PRIORITY)) {
			params[2] = arena_printf(r->arena, "%d", prio);
			change(before, after, "priority",
			       json_integer(db_int(res, 0, T_PRIORITY)),
			       json_integer(prio));
		}
	}
	if (form_sent(r, "assignee_id") &&
	    read_opt_id(r, "assignee_id", &assignee)) {
		err = check_assignee(r, assignee);
		if (err != TD_OK)
			return err;
		if (assignee != (db_isnull(res, 0, T_ASSIGNEE) ?
					 0 :
					 db_int(res, 0, T_ASSIGNEE))) {
			params[3] = "true";
			params[4] = assignee > 0 ? req_id(r, assignee) : NULL;
			change(before, after, "assignee_id",
			       db_isnull(res, 0, T_ASSIGNEE) ?
				       json_null() :
				       json_integer(db_int(res, 0, T_ASSIGNEE)),
			       opt_int(assignee));
		}
	}
	if (form_sent(r, "type")) {
		s = form_text(r, "type");
		if (!one_of(s, types, NTYPES))
			form_error(r, "type", "choose incident or project");
		else if (strcmp(s, db_text(res, 0, T_TYPE)) != 0) {
			params[5] = s;
			change(before, after, "type",
			       json_string(db_text(res, 0, T_TYPE)),
			       json_string(s));
		}
	}
	if (form_sent(r, "tags")) {
		tags = form_tags(r);
		old_tags = json_from(db_text(res, 0, T_TAGS));
		if (!json_equal(tags, old_tags)) {
			params[6] = req_json_text(r, tags, NULL);
			change(before, after, "tags", old_tags,
			       json_deep_copy(tags));
		} else {
			json_decref(old_tags);
		}
	}
	if (form_sent(r, "due")) {
		s = form_text(r, "due");
		old_text = db_text(res, 0, T_DUE);
		if (*s != '\0' && !date_ok(s))
			form_error(r, "due", "enter a date such as 2026-12-31");
		else if (strcmp(s, old_text) != 0) {
			params[7] = "true";
			params[8] = *s ? s : NULL;
			change(before, after, "due", text_or_null(old_text),
			       text_or_null(s));
		}
	}
	if (form_sent(r, "subject")) {
		s = form_text(r, "subject");
		if (http_utf8_len(s) < 1 || http_utf8_len(s) > 300)
			form_error(r, "subject",
				   "enter a subject of at most 300 characters");
		else if (strcmp(s, db_text(res, 0, T_SUBJECT)) != 0) {
			params[9] = s;
			change(before, after, "subject",
			       json_string(db_text(res, 0, T_SUBJECT)),
			       json_string(s));
		}
	}
	if (form_sent(r, "queue")) {
		s = form_text(r, "queue");
		err = ticketctx_check_queue(r, s);
		if (err != TD_OK)
			return err;
		if (strcmp(s, db_text(res, 0, T_QUEUE)) != 0) {
			params[10] = s;
			change(before, after, "queue",
			       json_string(db_text(res, 0, T_QUEUE)),
			       json_string(s));
		}
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = show_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "tickets/show", edit_fields);
	}
	if (json_object_size(after) > 0) {
		err = req_query(r, sql_update, 11, params, NULL);
		if (err == TD_OK)
			err = audit_write(r, "ticket.update", "ticket", id,
					  before, after);
		if (err == TD_OK)
			err = ticketctx_touch(r, id, false);
		if (err == TD_OK && params[4] != NULL)
			err = notify_assigned(r, id, t.number, t.subject);
		if (err != TD_OK)
			return err;
	}
	if (r->want_json)
		return show_page(r, id);
	done(r,
	     json_object_size(after) > 0 ?
		     arena_printf(r->arena, "%s saved.", ref(r, t.number)) :
		     "Nothing changed.",
	     ticket_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Close, reopen, merge                                                 */

/* Minutes of time logged on the ticket (committed and pending). */
static enum td_err time_logged_minutes(struct req *r, int64_t id,
				       int64_t *minutes)
{
	return timers_ticket_minutes(r, id, minutes);
}

/*
 * POST /tickets/:id/close [confirm_no_time] — 303 to the ticket (API:
 * {ticket}); 409 when already closed, or when no time is logged and
 * confirm_no_time is not set (browsers get the page with a prompt).
 * Running timers on it are discarded, and the flash (API:
 * timers_discarded) says so.
 */
enum td_err tickets_close(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), minutes;
	int discarded;
	const char *params[2];
	struct ticket_ref t;
	json_t *after;
	enum td_err err;

	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	if (t.status == TICKET_CLOSED) {
		err = req_fail(r, TD_ECONFLICT, "%s is closed already",
			       ref(r, t.number));
		return refuse(r, id, err);
	}
	err = time_logged_minutes(r, id, &minutes);
	if (err != TD_OK)
		return err;
	if (minutes == 0 && !form_flag(r, "confirm_no_time")) {
		if (r->want_json)
			return req_fail(r, TD_ECONFLICT,
					"no time is logged on %s; send "
					"confirm_no_time: true to close anyway",
					ref(r, t.number));
		err = show_page(r, id);
		if (err != TD_OK)
			return err;
		json_object_set_new(req_view(r), "close_prompt", json_true());
		r->status = 409;
		return TD_OK;
	}
	params[0] = req_id(r, id);
	params[1] = minutes == 0 ? "true" : "false";
	err = req_query(r, sql_close, 2, params, NULL);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err == TD_OK)
		err = timers_discard_for_ticket(r, id, &discarded);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:b}", "status", "closed",
			  "closed_without_time", minutes == 0);
	req_own_json(r, after);
	err = audit_write(r, "ticket.close", "ticket", id, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set_new(req_view(r), "timers_discarded",
				    json_integer(discarded));
		return show_page(r, id);
	}
	done(r,
	     discarded == 0 ?
		     arena_printf(r->arena, "%s closed.", ref(r, t.number)) :
		     arena_printf(r->arena,
				  "%s closed. %d running timer%s on it %s "
				  "discarded; that time was not logged.",
				  ref(r, t.number), discarded,
				  discarded == 1 ? "" : "s",
				  discarded == 1 ? "was" : "were"),
	     ticket_url(r, id));
	return TD_OK;
}

/*
 * POST /tickets/:id/reopen — back to in progress; 303 (API: {ticket});
 * 409 when open or merged into another ticket.
 */
enum td_err tickets_reopen(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	struct ticket_ref t;
	PGresult *res;
	enum td_err err;

	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	if (t.status != TICKET_CLOSED)
		return refuse(r, id,
			      req_fail(r, TD_ECONFLICT, "%s is open already",
				       ref(r, t.number)));
	err = req_query(r, sql_merged_into, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0)
		return refuse(r, id,
			      req_fail(r, TD_ECONFLICT,
				       "%s was merged into T-%s: work on that "
				       "ticket instead",
				       ref(r, t.number), db_text(res, 0, 0)));
	err = ticketctx_reopen(r, id, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return show_page(r, id);
	done(r, arena_printf(r->arena, "%s reopened.", ref(r, t.number)),
	     ticket_url(r, id));
	return TD_OK;
}

/* The merge target: "T-1002" (a number) or a bare id; 0 when unknown. */
/*
 * POST /tickets/:id/merge (target) — moves the conversation, attachments,
 * alert occurrences and time to target and closes this ticket; 303 to
 * target (API: {ticket} of target); 422 for an unknown target; 409 for the
 * same ticket or a closed one; 404.
 */
enum td_err tickets_merge(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), target, nums[2];
	struct ticket_ref t;
	enum td_err err;

	err = ticketctx_load(r, id, false, &t);
	if (err == TD_OK)
		err = ticketctx_find(r, form_text(r, "target"), &target);
	if (err != TD_OK)
		return err;
	if (target == 0) {
		form_error(r, "target",
			   "enter the number of a ticket, such as T-1002");
		if (!r->want_json) {
			err = show_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "tickets/show", NULL);
	}
	err = ticketctx_merge(r, id, target, nums);
	if (err != TD_OK)
		return refuse(r, id, err);
	if (r->want_json)
		return show_page(r, target);
	done(r,
	     arena_printf(r->arena, "%s merged into %s.", ref(r, nums[0]),
			  ref(r, nums[1])),
	     ticket_url(r, target));
	return TD_OK;
}

/*
 * POST /tickets/:id/split (comment_id, subject) — a comment that is really
 * another problem becomes a ticket of its own: the new ticket takes the
 * comment and its files, and the client, contact, site, asset, priority,
 * type, queue and tags; both tickets get a note pointing at the other.
 * 303 to the new ticket (API: 201 {ticket}); 422 for a comment not on
 * this ticket or a bad subject; 409 when closed; 404.
 */
enum td_err tickets_split(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), cid = 0, nid, nnum;
	const char *subject = form_text(r, "subject"), *params[3];
	struct ticket_new n;
	struct ticket_ref t;
	json_t *a;
	PGresult *res;
	enum td_err err;

	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return refuse(r, id, err);
	if (!read_opt_id(r, "comment_id", &cid) || cid == 0)
		form_error(r, "comment_id", "choose the comment to split off");
	params[0] = req_id(r, id);
	params[1] = req_id(r, cid);
	err = req_query(r, sql_split_source, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (cid != 0 && !db_bool(res, 0, 10))
		form_error(r, "comment_id",
			   "that comment is not on this ticket");
	if (http_utf8_len(subject) > 300)
		form_error(r, "subject",
			   "enter a subject of at most 300 characters");
	if (*subject == '\0')
		subject = arena_printf(r->arena, "Split from %s: %s",
				       ref(r, t.number), t.subject);
	if (http_utf8_len(subject) > 300) /* a long subject, inherited */
		subject = arena_printf(r->arena, "Split from %s",
				       ref(r, t.number));
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = show_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "tickets/show", NULL);
	}
	memset(&n, 0, sizeof(n));
	n.subject = subject;
	n.client_id = db_int(res, 0, 0);
	n.contact_id = db_isnull(res, 0, 1) ? 0 : db_int(res, 0, 1);
	n.site_id = db_isnull(res, 0, 2) ? 0 : db_int(res, 0, 2);
	n.asset_id = db_isnull(res, 0, 3) ? 0 : db_int(res, 0, 3);
	n.priority = (int)db_int(res, 0, 4);
	n.type = db_text(res, 0, 5);
	n.queue = db_text(res, 0, 6);
	n.tags_json = db_text(res, 0, 7);
	n.source = db_text(res, 0, 8);
	err = ticketctx_create(r, &n, &nid, &nnum);
	if (err != TD_OK)
		return err;
	params[2] = req_id(r, nid);
	err = req_query(r, sql_split_comment, 3, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_split_attachments, 3, params, NULL);
	if (err == TD_OK)
		err = ticketctx_note(r, id,
				     arena_printf(r->arena, "Split off into %s",
						  ref(r, nnum)));
	if (err == TD_OK)
		err = ticketctx_note(r, nid,
				     arena_printf(r->arena, "Split from %s",
						  ref(r, t.number)));
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err != TD_OK)
		return err;
	a = json_pack("{s:I, s:I, s:s}", "comment_id", (json_int_t)cid,
		      "split_into", (json_int_t)nid, "ref", ref(r, nnum));
	req_own_json(r, a);
	err = audit_write(r, "ticket.split", "ticket", id, NULL, a);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return show_page(r, nid);
	}
	done(r,
	     arena_printf(r->arena, "%s split off into %s.", ref(r, t.number),
			  ref(r, nnum)),
	     ticket_url(r, nid));
	return TD_OK;
}
