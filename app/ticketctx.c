/* ticketctx.c: what every ticket module shares — load, create, touch */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "mustache.h"
#include "req.h"
#include "ticketctx.h"
#include "timers.h"
#include "view.h"
#include "banned.h"

static const char sql_load[] =
	"SELECT id, number, client_id, status, subject, version FROM tickets"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_load_locked[] =
	"SELECT id, number, client_id, status, subject, version FROM tickets"
	" WHERE tenant_id = app_tenant() AND id = $1 FOR UPDATE";
static const char sql_next_number[] =
	"INSERT INTO ticket_numbers (tenant_id, last) VALUES (app_tenant(), 1001)"
	" ON CONFLICT (tenant_id) DO UPDATE SET last = ticket_numbers.last + 1"
	" RETURNING last";
static const char sql_insert[] =
	"INSERT INTO tickets (tenant_id, number, subject, description, client_id,"
	" contact_id, site_id, asset_id, source, priority, type, assignee_id,"
	" alert_key, tags, created_by, touched_by_human, queue)"
	" VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
	" $12, coalesce(ARRAY(SELECT jsonb_array_elements_text($13::jsonb)), '{}'),"
	" $14, $15, coalesce($16, '')) RETURNING id";
static const char sql_touch[] =
	"UPDATE tickets SET updated_at = now(), version = version + 1,"
	" touched_by_human = touched_by_human OR $2::boolean,"
	" first_response_at = CASE WHEN $3::boolean AND first_response_at IS NULL"
	"  THEN now() ELSE first_response_at END"
	" WHERE tenant_id = app_tenant() AND id = $1";

static const char sql_labels[] =
	"SELECT status, label FROM ticket_status_labels"
	" WHERE tenant_id = app_tenant()";
/* Kinds in order: people, queues, saved views, status names. */
static const char sql_choices[] =
	"SELECT kind, a, b, c FROM ("
	" SELECT 1 AS o, 'u' AS kind, id::text AS a, name AS b, '' AS c,"
	"  lower(name) AS k, id FROM users WHERE tenant_id = app_tenant()"
	"  AND active"
	" UNION ALL SELECT 2, 'q', '', name, '', lower(name), id"
	"  FROM ticket_queues WHERE tenant_id = app_tenant()"
	" UNION ALL SELECT 3, 'v', id::text, name, query, lower(name), id"
	"  FROM saved_views WHERE tenant_id = app_tenant() AND user_id = $1"
	" UNION ALL SELECT 4, 'l', status, label, '', '', 0"
	"  FROM ticket_status_labels WHERE tenant_id = app_tenant()"
	") x ORDER BY o, k, id";
static const char sql_reopen[] =
	"UPDATE tickets SET status = 'in_progress', closed_at = NULL,"
	" closed_without_time = false"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_client_back[] =
	"UPDATE tickets SET status = 'in_progress', updated_at = now(),"
	" version = version + 1 WHERE tenant_id = app_tenant() AND id = $1"
	" AND status = 'waiting' RETURNING id";
static const char sql_queue_known[] =
	"SELECT 1 FROM ticket_queues WHERE tenant_id = app_tenant()"
	" AND name = $1";

/* Merge: $1 number or NULL, $2 id or NULL. */
static const char sql_merge_target[] =
	"SELECT id FROM tickets WHERE tenant_id = app_tenant()"
	" AND (number = $1::bigint OR id = $2::bigint)";
/* Both rows locked in id order, so two opposite merges cannot deadlock. */
static const char sql_merge_lock[] =
	"SELECT id, number, status FROM tickets WHERE tenant_id = app_tenant()"
	" AND id IN ($1, $2) ORDER BY id FOR UPDATE";
static const char sql_merge_comments[] =
	"UPDATE ticket_comments SET ticket_id = $2"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1";
static const char sql_merge_attachments[] =
	"UPDATE ticket_attachments SET ticket_id = $2"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1";
static const char sql_merge_alerts[] =
	"UPDATE alert_occurrences SET ticket_id = $2"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1";
static const char sql_merge_alert_count[] =
	"UPDATE tickets SET alert_occurrences = alert_occurrences +"
	" (SELECT alert_occurrences FROM tickets WHERE tenant_id = app_tenant()"
	" AND id = $1) WHERE tenant_id = app_tenant() AND id = $2";
/* Time already on an issued invoice stays where it was billed. */
static const char sql_merge_time[] =
	"UPDATE time_entries SET ticket_id = $2"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1"
	" AND invoice_line_id IS NULL";
static const char sql_merge_close[] =
	"UPDATE tickets SET status = 'closed', closed_at = now(),"
	" merged_into = $2 WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_note[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_user_id,"
	" author_label, public, body) VALUES (app_tenant(), $1, $2, 'System',"
	" false, $3)";

static const char *const status_keys[TICKET_STATUS__MAX] = {
	"new", "in_progress", "waiting", "closed"
};
static const char *const status_labels[TICKET_STATUS__MAX] = {
	"New", "In progress", "Waiting on client", "Closed"
};
static const char *const priority_labels[] = { "P1 Critical", "P2 High",
					       "P3 Normal", "P4 Low" };

enum ticket_status ticketctx_status_parse(const char *s)
{
	int i;

	for (i = 0; s != NULL && i < TICKET_STATUS__MAX; i++)
		if (!strcmp(s, status_keys[i]))
			return (enum ticket_status)i;
	return TICKET_STATUS__MAX;
}

const char *ticketctx_status_key(enum ticket_status s)
{
	if ((unsigned)s >= TICKET_STATUS__MAX)
		abort();
	return status_keys[s];
}

const char *ticketctx_status_default(enum ticket_status s)
{
	if ((unsigned)s >= TICKET_STATUS__MAX)
		abort();
	return status_labels[s];
}

/*
 * The tenant's labels, cached for one request (keyed by its id and
 * tenant): pages ask for them once per row.
 */
static struct {
	char request_id[sizeof(((struct req *)0)->request_id)];
	int64_t tenant_id;
	const char *labels[TICKET_STATUS__MAX];
} label_cache;

/* Makes this request's cache the defaults (the tenant's names follow). */
static void labels_begin(struct req *r)
{
	int i;

	for (i = 0; i < TICKET_STATUS__MAX; i++)
		label_cache.labels[i] = status_labels[i];
	memcpy(label_cache.request_id, r->request_id,
	       sizeof(label_cache.request_id));
	label_cache.tenant_id = r->auth.tenant_id;
}

static void labels_set(struct req *r, const char *key, const char *label)
{
	enum ticket_status k = ticketctx_status_parse(key);

	if (k != TICKET_STATUS__MAX)
		label_cache.labels[k] = arena_strdup(r->arena, label);
}

const char *ticketctx_status_label(struct req *r, enum ticket_status s)
{
	PGresult *res;
	int i, n;

	if ((unsigned)s >= TICKET_STATUS__MAX)
		abort();
	if (strcmp(label_cache.request_id, r->request_id) != 0 ||
	    label_cache.tenant_id != r->auth.tenant_id) {
		if (req_query(r, sql_labels, 0, NULL, &res) != TD_OK)
			return status_labels[s]; /* logged; defaults will do */
		labels_begin(r);
		n = PQntuples(res);
		for (i = 0; i < n; i++)
			labels_set(r, db_text(res, i, 0), db_text(res, i, 1));
	}
	return label_cache.labels[s];
}

/*
 * The lists this worker read last, kept while the tenant's directory version
 * (sql/0022, read by the session lookup) stays where it was: a queue or
 * ticket page then needs no statement for them.
 */
static struct {
	int64_t tenant_id, user_id, version;
	PGresult *res;
} kept_choices;

static enum td_err choices_rows(struct req *r, PGresult **out)
{
	const struct auth *a = &r->auth;
	const char *params[1] = { a->user_id > 0 ? req_id(r, a->user_id) :
						   NULL };
	bool keep = a->kind == AUTH_USER && a->directory_version >= 0;
	PGresult *res;
	enum td_err err;

	if (keep && kept_choices.res != NULL &&
	    kept_choices.tenant_id == a->tenant_id &&
	    kept_choices.user_id == a->user_id &&
	    kept_choices.version == a->directory_version) {
		*out = kept_choices.res;
		return TD_OK;
	}
	err = req_query(r, sql_choices, 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = res;
	if (!keep)
		return TD_OK;
	PQclear(kept_choices.res);
	kept_choices.res =
		PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES);
	kept_choices.tenant_id = a->tenant_id;
	kept_choices.user_id = a->user_id;
	kept_choices.version = a->directory_version;
	return TD_OK;
}

/*
 * One entry of a choice list: {key: value, label_key: label, selected}.
 * Built directly: json_pack's format parsing and UTF-8 checks cost more
 * than the rest for the fifty people of a queue page, and the texts come
 * from PostgreSQL (UTF-8 already).
 */
static json_t *choice(const char *key, json_t *value, const char *label_key,
		      const char *label, bool selected)
{
	json_t *o = json_object();

	json_object_set_new_nocheck(o, key, value);
	json_object_set_new_nocheck(o, label_key, json_string_nocheck(label));
	json_object_set_new_nocheck(o, "selected", json_boolean(selected));
	return o;
}

static json_t *saved_view(struct req *r, const PGresult *res, int i)
{
	json_t *o = json_object();

	json_object_set_new_nocheck(o, "id", json_integer(db_int(res, i, 1)));
	json_object_set_new_nocheck(o, "name",
				    json_string_nocheck(db_text(res, i, 2)));
	json_object_set_new_nocheck(o, "query",
				    json_string_nocheck(db_text(res, i, 3)));
	json_object_set_new_nocheck(
		o, "href",
		json_string_nocheck(
			arena_join(r->arena, "/tickets?", db_text(res, i, 3))));
	return o;
}

/* The people of the choices (their first rows), for the renderer. */
struct people {
	const PGresult *res;
	int64_t selected;
};

static const char *const people_keys[] = { "id", "name", "selected" };

static void person(void *ctx, size_t row, size_t key,
		   struct mustache_value *out)
{
	const struct people *p = ctx;
	int i = (int)row;

	switch (key) {
	case 0:
		out->kind = MV_INT;
		out->i = db_int(p->res, i, 1);
		break;
	case 1:
		out->kind = MV_TEXT;
		out->s = PQgetvalue(p->res, i, 2);
		out->n = (size_t)PQgetlength(p->res, i, 2);
		break;
	default:
		out->kind = db_int(p->res, i, 1) == p->selected ? MV_TRUE :
								  MV_FALSE;
	}
}

/* The people as the row source name of an HTML page. */
static void add_people(struct req *r, const char *name, const PGresult *res,
		       int n, int64_t selected)
{
	struct people *p = arena_alloc(r->arena, sizeof(*p));
	struct mustache_rows rows;

	p->res = res;
	p->selected = selected;
	rows.name = name;
	rows.n = (size_t)n;
	rows.keys = people_keys;
	rows.nkeys = sizeof(people_keys) / sizeof(people_keys[0]);
	rows.ctx = p;
	rows.get = person;
	view_rows(r, &rows);
}

enum td_err ticketctx_choices(struct req *r, const char *users_key,
			      int64_t user_sel, const char *queue_sel,
			      bool views, struct ticket_choices *out)
{
	json_t *users = r->want_json ? json_array() : NULL;
	const char *kind;
	PGresult *res;
	enum td_err err;
	int i, n, people = 0;

	out->queues = json_array();
	out->views = json_array();
	if (users != NULL)
		json_object_set_new(req_view(r), users_key, users);
	err = choices_rows(r, &res);
	if (err != TD_OK)
		return err;
	labels_begin(r);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		kind = db_text(res, i, 0);
		if (*kind == 'u' && users == NULL)
			people++; /* they come first */
		else if (*kind == 'u')
			json_array_append_new(
				users,
				choice("id", json_integer(db_int(res, i, 1)),
				       "name", db_text(res, i, 2),
				       db_int(res, i, 1) == user_sel));
		else if (*kind == 'q')
			json_array_append_new(
				out->queues,
				choice("value",
				       json_string_nocheck(db_text(res, i, 2)),
				       "label", db_text(res, i, 2),
				       queue_sel != NULL &&
					       !strcmp(queue_sel,
						       db_text(res, i, 2))));
		else if (*kind == 'v' && views)
			json_array_append_new(out->views,
					      saved_view(r, res, i));
		else if (*kind == 'l')
			labels_set(r, db_text(res, i, 1), db_text(res, i, 2));
	}
	if (users == NULL)
		add_people(r, users_key, res, people, user_sel);
	return TD_OK;
}

enum td_err ticketctx_check_queue(struct req *r, const char *name)
{
	const char *params[1] = { name };
	PGresult *res;
	enum td_err err;

	if (name == NULL || *name == '\0')
		return TD_OK;
	err = req_query(r, sql_queue_known, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0)
		form_error(r, "queue",
			   "choose one of the queues in Settings → Tickets");
	return TD_OK;
}

const char *ticketctx_status_badge(enum ticket_status s)
{
	static const char *const badges[TICKET_STATUS__MAX] = {
		"badge-new", "badge-in-progress", "badge-waiting",
		"badge-closed"
	};

	return (unsigned)s < TICKET_STATUS__MAX ? badges[s] : "badge-closed";
}

const char *ticketctx_priority_label(int priority)
{
	if (priority < 1 || priority > 4)
		return "P3 Normal";
	return priority_labels[priority - 1];
}

static const char *opt_id(struct req *r, int64_t v)
{
	return v > 0 ? req_id(r, v) : NULL;
}

enum td_err ticketctx_load(struct req *r, int64_t id, bool for_update,
			   struct ticket_ref *out)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err;

	err = req_query(r, for_update ? sql_load_locked : sql_load, 1, params,
			&res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, id);
	out->id = db_int(res, 0, 0);
	out->number = db_int(res, 0, 1);
	out->client_id = db_int(res, 0, 2);
	out->status = ticketctx_status_parse(db_text(res, 0, 3));
	out->subject = arena_strdup(r->arena, db_text(res, 0, 4));
	out->version = (int)db_int(res, 0, 5);
	if (out->status == TICKET_STATUS__MAX)
		return req_fail(r, TD_EDB,
				"ticket %" PRId64 " has an unknown status", id);
	if (r->auth.kind == AUTH_AGENT && r->auth.client_id != out->client_id)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, id);
	return TD_OK;
}

enum td_err ticketctx_require_open(struct req *r, const struct ticket_ref *t)
{
	if (t->status != TICKET_CLOSED)
		return TD_OK;
	return req_fail(r, TD_ECONFLICT,
			"T-%" PRId64 " is closed: reopen it to change it",
			t->number);
}

enum td_err ticketctx_create(struct req *r, const struct ticket_new *n,
			     int64_t *id, int64_t *number)
{
	const char *params[16];
	bool person = r->auth.kind == AUTH_USER;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_next_number, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	*number = db_int(res, 0, 0);
	params[0] = req_id(r, *number);
	params[1] = n->subject;
	params[2] = n->description ? n->description : "";
	params[3] = req_id(r, n->client_id);
	params[4] = opt_id(r, n->contact_id);
	params[5] = opt_id(r, n->site_id);
	params[6] = opt_id(r, n->asset_id);
	params[7] = n->source ? n->source : "manual";
	params[8] = arena_printf(r->arena, "%d", n->priority ? n->priority : 3);
	params[9] = n->type ? n->type : "incident";
	params[10] = opt_id(r, n->assignee_id);
	params[11] = n->alert_key;
	params[12] = n->tags_json ? n->tags_json : "[]";
	params[13] = person ? req_id(r, r->auth.user_id) : NULL;
	/* An alert's ticket is untouched until a person works it. */
	params[14] = person ? "true" : "false";
	params[15] = n->queue != NULL && *n->queue != '\0' ? n->queue : NULL;
	err = req_query(r, sql_insert, 16, params, &res);
	if (err != TD_OK)
		return err;
	*id = db_int(res, 0, 0);
	return audit_write(r, "ticket.create", "ticket", *id, NULL, NULL);
}

enum td_err ticketctx_touch(struct req *r, int64_t id, bool public_reply)
{
	bool person = r->auth.kind == AUTH_USER;
	const char *params[3] = { req_id(r, id), person ? "true" : "false",
				  person && public_reply ? "true" : "false" };

	return req_query(r, sql_touch, 3, params, NULL);
}

enum td_err ticketctx_find(struct req *r, const char *text, int64_t *id)
{
	const char *params[2] = { NULL, NULL };
	int64_t v;
	PGresult *res;
	enum td_err err;
	bool ref = (text[0] == 'T' || text[0] == 't') && text[1] == '-';

	*id = 0;
	if (!http_parse_id(ref ? text + 2 : text, &v))
		return TD_OK;
	params[ref ? 0 : 1] = req_id(r, v);
	err = req_query(r, sql_merge_target, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1)
		*id = db_int(res, 0, 0);
	return TD_OK;
}

enum td_err ticketctx_note(struct req *r, int64_t ticket, const char *body)
{
	const char *params[3] = { req_id(r, ticket),
				  r->auth.kind == AUTH_USER ?
					  req_id(r, r->auth.user_id) :
					  NULL,
				  body };

	return req_query(r, sql_note, 3, params, NULL);
}

enum td_err ticketctx_merge(struct req *r, int64_t id, int64_t target,
			    int64_t nums[2])
{
	const char *params[2];
	json_t *a_src, *a_dst;
	PGresult *res;
	enum td_err err;
	int i, discarded;

	if (target == id)
		return req_fail(r, TD_ECONFLICT,
				"a ticket cannot be merged into itself");
	params[0] = req_id(r, id);
	params[1] = req_id(r, target);
	err = req_query(r, sql_merge_lock, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 2)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, target);
	for (i = 0; i < 2; i++) {
		nums[db_int(res, i, 0) == id ? 0 : 1] = db_int(res, i, 1);
		if (!strcmp(db_text(res, i, 2), "closed"))
			return req_fail(
				r, TD_ECONFLICT,
				"T-%s is closed: reopen it to change it",
				db_text(res, i, 1));
	}
	err = req_query(r, sql_merge_comments, 2, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_attachments, 2, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_alerts, 2, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_alert_count, 2, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_merge_time, 2, params, NULL);
	if (err == TD_OK)
		err = ticketctx_note(r, target,
				     arena_printf(r->arena,
						  "Merged from T-%" PRId64,
						  nums[0]));
	if (err == TD_OK)
		err = ticketctx_note(r, id,
				     arena_printf(r->arena,
						  "Merged into T-%" PRId64,
						  nums[1]));
	if (err == TD_OK)
		err = req_query(r, sql_merge_close, 2, params, NULL);
	/* The duplicate is closed: a timer still running on it is discarded. */
	if (err == TD_OK)
		err = timers_discard_for_ticket(r, id, &discarded);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err == TD_OK)
		err = ticketctx_touch(r, target, false);
	if (err != TD_OK)
		return err;
	a_src = json_pack("{s:I, s:s}", "merged_into", (json_int_t)target,
			  "ref", arena_printf(r->arena, "T-%" PRId64, nums[1]));
	req_own_json(r, a_src);
	a_dst = json_pack("{s:I, s:s}", "merged_from", (json_int_t)id, "ref",
			  arena_printf(r->arena, "T-%" PRId64, nums[0]));
	req_own_json(r, a_dst);
	err = audit_write(r, "ticket.merge", "ticket", id, NULL, a_src);
	if (err == TD_OK)
		err = audit_write(r, "ticket.merge", "ticket", target, NULL,
				  a_dst);
	return err;
}

enum td_err ticketctx_client_activity(struct req *r, int64_t id)
{
	const char *params[1] = { req_id(r, id) };
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_client_back, 1, params, &res);
	if (err != TD_OK || PQntuples(res) == 0)
		return err;
	before = json_pack("{s:s}", "status", "waiting");
	after = json_pack("{s:s, s:s}", "status", "in_progress", "reason",
			  "the client replied");
	req_own_json(r, before);
	req_own_json(r, after);
	return audit_write(r, "ticket.update", "ticket", id, before, after);
}

enum td_err ticketctx_reopen(struct req *r, int64_t id, const char *why)
{
	const char *params[1] = { req_id(r, id) };
	json_t *after;
	enum td_err err;

	err = req_query(r, sql_reopen, 1, params, NULL);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:s?}", "status", "in_progress", "reason",
			  why);
	req_own_json(r, after);
	return audit_write(r, "ticket.reopen", "ticket", id, NULL, after);
}
