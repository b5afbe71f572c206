/* ticketsettings.c: Settings → Tickets — status names and team queues */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "ticketsettings.h"
#include "view.h"
#include "banned.h"

#define LABEL_MAX 40
#define QUEUE_MAX 60

static const char sql_labels[] =
	"SELECT status, label FROM ticket_status_labels"
	" WHERE tenant_id = app_tenant()";
static const char sql_label_set[] =
	"INSERT INTO ticket_status_labels (tenant_id, status, label)"
	" VALUES (app_tenant(), $1, $2) ON CONFLICT (tenant_id, status)"
	" DO UPDATE SET label = EXCLUDED.label";
static const char sql_label_reset[] =
	"DELETE FROM ticket_status_labels WHERE tenant_id = app_tenant()"
	" AND status = $1";
/* Each queue with how many open tickets it holds (the page's only count). */
static const char sql_queues[] =
	"SELECT q.id, q.name, (SELECT count(*) FROM tickets t"
	"  WHERE t.tenant_id = q.tenant_id AND t.queue = q.name"
	"  AND t.status <> 'closed')"
	" FROM ticket_queues q WHERE q.tenant_id = app_tenant()"
	" ORDER BY lower(q.name)";
static const char sql_queue[] =
	"SELECT name, (SELECT count(*) FROM tickets t"
	"  WHERE t.tenant_id = q.tenant_id AND t.queue = q.name"
	"  AND t.status <> 'closed')"
	" FROM ticket_queues q WHERE tenant_id = app_tenant() AND id = $1"
	" FOR UPDATE";
static const char sql_queue_taken[] =
	"SELECT 1 FROM ticket_queues WHERE tenant_id = app_tenant()"
	" AND lower(name) = lower($1) AND id <> coalesce($2::bigint, 0)";
static const char sql_queue_new[] =
	"INSERT INTO ticket_queues (tenant_id, name) VALUES (app_tenant(), $1)"
	" RETURNING id";
static const char sql_queue_rename[] =
	"UPDATE ticket_queues SET name = $2 WHERE tenant_id = app_tenant()"
	" AND id = $1";
/* Its tickets, closed ones too, follow a rename. */
static const char sql_queue_move[] =
	"UPDATE tickets SET queue = $2 WHERE tenant_id = app_tenant()"
	" AND queue = $1";
static const char sql_queue_delete[] =
	"DELETE FROM ticket_queues WHERE tenant_id = app_tenant() AND id = $1";

static void done(struct req *r, const char *flash)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = "/settings/tickets";
}

static const char *label_field(struct req *r, enum ticket_status s)
{
	return arena_printf(r->arena, "label_%s", ticketctx_status_key(s));
}

/* The page: the four statuses with their names, and the queues. */
static enum td_err page(struct req *r)
{
	json_t *v = req_view(r), *list = json_array(), *form = json_object();
	struct sbuf href;
	PGresult *res;
	enum td_err err;
	int s, i, n;

	view_settings_page(r, "Tickets", "settings/tickets", "/settings/tickets");
	json_object_set_new(v, "statuses", list);
	json_object_set_new(v, "form", form);
	for (s = 0; s < TICKET_STATUS__MAX; s++) {
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:s, s:s}", "key",
				  ticketctx_status_key((enum ticket_status)s),
				  "field", label_field(r, (enum ticket_status)s),
				  "default",
				  ticketctx_status_default((enum ticket_status)s),
				  "label",
				  ticketctx_status_label(r, (enum ticket_status)s)));
	}
	err = req_query(r, sql_queues, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		sbuf_init(&href, r->arena, 64);
		sbuf_adds(&href, "/tickets?queue=");
		http_url_encode(&href, db_text(res, i, 1));
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:I, s:s}", "id",
					(json_int_t)db_int(res, i, 0), "name",
					db_text(res, i, 1), "open",
					(json_int_t)db_int(res, i, 2), "href",
					sbuf_cstr(&href)));
	}
	json_object_set_new(v, "queues", list);
	return TD_OK;
}

/* GET /settings/tickets (admins). */
enum td_err ticketsettings_page(struct req *r)
{
	return page(r);
}

/* The page again with the problems, or the API's 422. */
static enum td_err reject(struct req *r, const char *const *keep)
{
	enum td_err err;

	if (!r->want_json) {
		err = page(r);
		if (err != TD_OK)
			return err;
	}
	return form_reject(r, "settings/tickets", keep);
}

/*
 * POST /settings/tickets — label_<status> for each status sent: 1 to 40
 * characters, no two alike; an empty one goes back to the default. The
 * statuses themselves never change, only what they are called.
 */
enum td_err ticketsettings_labels_save(struct req *r)
{
	const char *want[TICKET_STATUS__MAX] = { NULL }, *params[2], *now;
	json_t *before = json_object(), *after = json_object();
	PGresult *res;
	enum td_err err;
	int s, o, i, n;

	req_own_json(r, before);
	req_own_json(r, after);
	err = req_query(r, sql_labels, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (s = 0; s < TICKET_STATUS__MAX; s++) {
		const char *f = label_field(r, (enum ticket_status)s);

		if (!form_sent(r, f))
			continue;
		want[s] = form_text(r, f);
		if (http_utf8_len(want[s]) > LABEL_MAX)
			form_error(r, f, "use at most 40 characters");
		if (*want[s] == '\0')
			want[s] = ticketctx_status_default((enum ticket_status)s);
	}
	for (s = 0; s < TICKET_STATUS__MAX; s++)
		for (o = 0; o < s && want[s] != NULL; o++)
			if (want[o] != NULL && !strcasecmp(want[s], want[o]))
				form_error(r, label_field(r, (enum ticket_status)s),
					   "two statuses cannot share a name");
	if (form_has_errors(r))
		return reject(r, NULL);
	for (s = 0; s < TICKET_STATUS__MAX; s++) {
		const char *key = ticketctx_status_key((enum ticket_status)s);

		if (want[s] == NULL)
			continue;
		now = ticketctx_status_default((enum ticket_status)s);
		for (i = 0; i < n; i++)
			if (!strcmp(db_text(res, i, 0), key))
				now = db_text(res, i, 1);
		if (!strcmp(now, want[s]))
			continue;
		params[0] = key;
		params[1] = want[s];
		err = !strcmp(want[s], ticketctx_status_default(
					       (enum ticket_status)s)) ?
			      req_query(r, sql_label_reset, 1, params, NULL) :
			      req_query(r, sql_label_set, 2, params, NULL);
		if (err != TD_OK)
			return err;
		json_object_set_new(before, key, json_string(now));
		json_object_set_new(after, key, json_string(want[s]));
	}
	if (json_object_size(after) > 0) {
		err = audit_write(r, "ticket_status.rename", "tenant",
				  r->auth.tenant_id, before, after);
		if (err != TD_OK)
			return err;
	}
	if (r->want_json)
		return page(r);
	done(r, json_object_size(after) > 0 ? "Status names saved." :
					      "Nothing changed.");
	return TD_OK;
}

/* A queue name: 1 to 60 characters, not another queue's (any case). */
static enum td_err check_name(struct req *r, const char *name, int64_t self)
{
	const char *params[2] = { name, self > 0 ? req_id(r, self) : NULL };
	PGresult *res;
	enum td_err err;

	if (http_utf8_len(name) < 1 || http_utf8_len(name) > QUEUE_MAX) {
		form_error(r, "name", "enter a name of at most 60 characters");
		return TD_OK;
	}
	err = req_query(r, sql_queue_taken, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0)
		form_error(r, "name", "there is a queue with this name already");
	return TD_OK;
}

/* POST /settings/queues — name. 201 (API) or 303; 422. */
enum td_err ticketsettings_queue_add(struct req *r)
{
	static const char *const keep[] = { "name", NULL };
	const char *name = form_text(r, "name"), *params[1] = { name };
	PGresult *res;
	json_t *after;
	enum td_err err;

	err = check_name(r, name, 0);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, keep);
	err = req_query(r, sql_queue_new, 1, params, &res);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s}", "name", name);
	req_own_json(r, after);
	err = audit_write(r, "ticket_queue.create", "ticket_queue",
			  db_int(res, 0, 0), NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return page(r);
	}
	done(r, arena_printf(r->arena, "Queue %s added.", name));
	return TD_OK;
}

/* The queue :id of this tenant, locked; 404 otherwise. */
static enum td_err load_queue(struct req *r, int64_t id, const char **name,
			      int64_t *open)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err = req_query(r, sql_queue, 1, params, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no queue %" PRId64, id);
	*name = db_text(res, 0, 0);
	*open = db_int(res, 0, 1);
	return TD_OK;
}

/* POST /settings/queues/:id — name; its tickets move with it. */
enum td_err ticketsettings_queue_rename(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), open;
	const char *name = form_text(r, "name"), *old, *params[2];
	json_t *before, *after;
	enum td_err err;

	err = load_queue(r, id, &old, &open);
	if (err == TD_OK)
		err = check_name(r, name, id);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, NULL);
	if (strcmp(old, name) != 0) {
		params[0] = req_id(r, id);
		params[1] = name;
		err = req_query(r, sql_queue_rename, 2, params, NULL);
		params[0] = old;
		if (err == TD_OK)
			err = req_query(r, sql_queue_move, 2, params, NULL);
		before = json_pack("{s:s}", "name", old);
		after = json_pack("{s:s}", "name", name);
		req_own_json(r, before);
		req_own_json(r, after);
		if (err == TD_OK)
			err = audit_write(r, "ticket_queue.rename",
					  "ticket_queue", id, before, after);
		if (err != TD_OK)
			return err;
	}
	if (r->want_json)
		return page(r);
	done(r, arena_printf(r->arena, "Queue %s renamed to %s.", old, name));
	return TD_OK;
}

/*
 * POST /settings/queues/:id/delete — only an empty queue (409 names how
 * many open tickets are still in it); closed tickets keep its name.
 */
enum td_err ticketsettings_queue_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), open;
	const char *name, *params[1] = { req_id(r, id) };
	json_t *before;
	enum td_err err;

	err = load_queue(r, id, &name, &open);
	if (err != TD_OK)
		return err;
	if (open > 0) {
		err = req_fail(r, TD_ECONFLICT,
			       "%" PRId64 " open ticket%s %s in %s: move %s to "
			       "another queue first",
			       open, open == 1 ? "" : "s",
			       open == 1 ? "is" : "are", name,
			       open == 1 ? "it" : "them");
		if (r->want_json)
			return err;
		form_flash(r, "error", r->error_detail);
		r->redirect = "/settings/tickets";
		return TD_OK;
	}
	err = req_query(r, sql_queue_delete, 1, params, NULL);
	before = json_pack("{s:s}", "name", name);
	req_own_json(r, before);
	if (err == TD_OK)
		err = audit_write(r, "ticket_queue.delete", "ticket_queue", id,
				  before, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return page(r);
	done(r, arena_printf(r->arena, "Queue %s deleted.", name));
	return TD_OK;
}
