/* timers.c: the running timer of a technician — start, stop and commit,
 * discard — and a ticket's time for its page */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "names.h"
#include "req.h"
#include "ticketctx.h"
#include "timectx.h"
#include "timers.h"
#include "banned.h"

/* clang-format off */
#define ISO_UTC(col) \
	" to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* Seconds worked on timer p: banked stretches, plus the running one. */
#define WORKED(p) \
	"(" p "banked_seconds + CASE WHEN " p "paused_at IS NULL" \
	" THEN extract(epoch FROM now() - " p "started_at) ELSE 0 END)"
/* Whole minutes begun, at least one: a started minute is worked time. */
#define ELAPSED(p) \
	" least(527040, greatest(1, ceil(" WORKED(p) " / 60)))::int"

static const char sql_ticket_minutes[] =
	"SELECT coalesce(sum(minutes), 0) FROM time_entries"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1"
	" AND status <> 'rejected'";
static const char sql_discard_ticket[] =
	"DELETE FROM timers tm USING users u WHERE tm.tenant_id = app_tenant()"
	" AND tm.ticket_id = $1 AND u.tenant_id = tm.tenant_id"
	" AND u.id = tm.user_id RETURNING tm.id, tm.user_id, u.name,"
	ELAPSED("tm.");
static const char sql_seal[] =
	"UPDATE time_entries SET sealed_at = now()"
	" WHERE tenant_id = app_tenant() AND ticket_id = $1"
	" AND sealed_at IS NULL";
/* The caller's timer: $1 user; see enum mcol. */
static const char sql_mine[] =
	"SELECT tm.id, tm.ticket_id, t.number, t.subject, t.client_id,"
	ISO_UTC("tm.started_at") ","
	" to_char(least(tm.began_at, tm.started_at) AT TIME ZONE"
	" app_user_zone($1), 'YYYY-MM-DD HH24:MI'),"
	ELAPSED("tm.") ", t.status = 'closed', tm.paused_at IS NOT NULL,"
	" tm.passive, floor(" WORKED("tm.") ")::bigint, tm.started_at::text"
	" FROM timers tm JOIN tickets t ON t.tenant_id = tm.tenant_id"
	" AND t.id = tm.ticket_id"
	" WHERE tm.tenant_id = app_tenant() AND tm.user_id = $1";
static const char sql_start[] =
	"INSERT INTO timers (tenant_id, user_id, ticket_id)"
	" VALUES (app_tenant(), $1, $2)"
	" ON CONFLICT (tenant_id, user_id) DO NOTHING RETURNING id";
/* Passive timers: only for users who turned them on. */
static const char sql_start_passive[] =
	"INSERT INTO timers (tenant_id, user_id, ticket_id, passive)"
	" SELECT app_tenant(), u.id, $2, true FROM users u"
	" WHERE u.tenant_id = app_tenant() AND u.id = $1 AND u.passive_timer"
	" ON CONFLICT (tenant_id, user_id) DO NOTHING RETURNING id";
static const char sql_passive_on[] =
	"SELECT passive_timer FROM users WHERE tenant_id = app_tenant()"
	" AND id = $1";
/*
 * Pausing names the stretch the page saw ($2, started_at as text): a
 * pause sent while leaving a page cannot pause the stretch the next page
 * load resumed, whichever request arrives first.
 */
static const char sql_pause[] =
	"UPDATE timers SET banked_seconds = banked_seconds"
	" + floor(extract(epoch FROM now() - started_at))::int,"
	" paused_at = now() WHERE tenant_id = app_tenant() AND user_id = $1"
	" AND passive AND paused_at IS NULL AND started_at = $2::timestamptz"
	" RETURNING id";
/*
 * Opening the page starts a new stretch (banking the running one), so a
 * pause the previous page sends while being left, naming the old
 * stretch, cannot pause this page's time.
 */
static const char sql_resume[] =
	"UPDATE timers SET banked_seconds = banked_seconds + CASE WHEN"
	" paused_at IS NULL THEN floor(extract(epoch FROM now() - started_at))"
	"::int ELSE 0 END, started_at = now(), paused_at = NULL"
	" WHERE tenant_id = app_tenant() AND user_id = $1 AND ticket_id = $2"
	" AND passive RETURNING id";
/*
 * A stop shares the ticket's row lock before it deletes the timer: a close
 * (which locks the ticket, then discards its timers) and a stop take their
 * locks in the same order, so they queue instead of deadlocking.
 */
static const char sql_ticket_share[] =
	"SELECT status = 'closed' FROM tickets WHERE tenant_id = app_tenant()"
	" AND id = $1 FOR SHARE";
/* Only the timer the caller saw: a stop racing another stops once. */
static const char sql_stop[] =
	"DELETE FROM timers WHERE tenant_id = app_tenant() AND user_id = $1"
	" AND id = $2 RETURNING ticket_id, least(began_at, started_at)::text,"
	ELAPSED("");
static const char sql_entries_ticket[] = TIMECTX_ENTRY_SELECT_NAMELESS
	" WHERE e.tenant_id = app_tenant() AND e.ticket_id = $2"
	" ORDER BY e.started_at, e.id";
static const char sql_entry[] = TIMECTX_ENTRY_SELECT
	" WHERE e.tenant_id = app_tenant() AND e.id = $2";
/* clang-format on */

/* Columns of sql_mine. */
enum mcol {
	M_ID,
	M_TICKET,
	M_NUMBER,
	M_SUBJECT,
	M_CLIENT,
	M_STARTED_ISO,
	M_SINCE,
	M_ELAPSED,
	M_CLOSED,
	M_PAUSED,
	M_PASSIVE,
	M_WORKED,
	M_STRETCH,
};

static const char *const stop_fields[] = { "kind", "description", "service",
					   NULL };

enum td_err timers_ticket_minutes(struct req *r, int64_t ticket_id,
				  int64_t *minutes)
{
	const char *params[1] = { req_id(r, ticket_id) };
	PGresult *res;
	enum td_err err;

	*minutes = 0;
	err = req_query(r, sql_ticket_minutes, 1, params, &res);
	if (err != TD_OK)
		return err;
	*minutes = db_int(res, 0, 0);
	return TD_OK;
}

enum td_err timers_discard_for_ticket(struct req *r, int64_t ticket_id,
				      int *discarded)
{
	const char *params[1] = { req_id(r, ticket_id) };
	json_t *after;
	PGresult *res;
	enum td_err err;
	int i, n;

	*discarded = 0;
	err = req_query(r, sql_discard_ticket, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		after = json_pack("{s:I, s:s, s:I, s:s, s:s}", "timer_id",
				  (json_int_t)db_int(res, i, 0), "technician",
				  db_text(res, i, 2), "minutes",
				  (json_int_t)db_int(res, i, 3), "duration",
				  timectx_hmm(r, db_int(res, i, 3)), "reason",
				  "the ticket was closed");
		req_own_json(r, after);
		err = audit_write(r, "time.timer_discard", "ticket", ticket_id,
				  NULL, after);
		if (err != TD_OK)
			return err;
	}
	*discarded = n;
	return req_query(r, sql_seal, 1, params, NULL);
}

/* The caller's running timer (*res has 0 or 1 rows). */
static enum td_err load_mine(struct req *r, PGresult **res)
{
	const char *params[1] = { req_id(r, timectx_user(r)) };

	return req_query(r, sql_mine, 1, params, res);
}

static json_t *timer_json(struct req *r, const PGresult *res)
{
	int64_t ticket = db_int(res, 0, M_TICKET);
	json_t *t;

	t = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:b}",
		      "id", (json_int_t)db_int(res, 0, M_ID), "ticket_id",
		      (json_int_t)ticket, "ref",
		      arena_printf(r->arena, "T-%s", db_text(res, 0, M_NUMBER)),
		      "subject", db_text(res, 0, M_SUBJECT), "url",
		      arena_printf(r->arena, "/tickets/%" PRId64, ticket),
		      "started_at_iso", db_text(res, 0, M_STARTED_ISO), "since",
		      db_text(res, 0, M_SINCE), "elapsed_minutes",
		      (int)db_int(res, 0, M_ELAPSED), "elapsed",
		      timectx_hmm(r, db_int(res, 0, M_ELAPSED)),
		      "ticket_closed", db_bool(res, 0, M_CLOSED));
	json_object_set_new(t, "paused",
			    json_boolean(db_bool(res, 0, M_PAUSED)));
	json_object_set_new(t, "passive",
			    json_boolean(db_bool(res, 0, M_PASSIVE)));
	json_object_set_new(t, "worked_seconds",
			    json_integer(db_int(res, 0, M_WORKED)));
	json_object_set_new(t, "stretch",
			    json_string(db_text(res, 0, M_STRETCH)));
	return t;
}

/* Inserts item into the sorted timeline before the first later item. */
static void insert_sorted(json_t *timeline, json_t *item)
{
	const char *at = json_string_value(json_object_get(item, "at_iso"));
	const char *other;
	size_t i, n = json_array_size(timeline);

	for (i = 0; i < n; i++) {
		other = json_string_value(
			json_object_get(json_array_get(timeline, i), "at_iso"));
		if (at != NULL && other != NULL && strcmp(other, at) > 0)
			break;
	}
	json_array_insert_new(timeline, i, item);
}

/* The ticket's entries (rows of sql_entries_ticket) as timeline events. */
static void add_to_timeline(struct req *r, const PGresult *res,
			    json_t *timeline)
{
	const char *label, *desc;
	json_t *item;
	int i, n;

	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		/* Columns as in TIMECTX_ENTRY_SELECT. */
		label = arena_printf(r->arena, "logged %s %s time%s",
				     timectx_hmm(r, db_int(res, i, 10)),
				     timectx_kind_label(db_text(res, i, 11)),
				     !strcmp(db_text(res, i, 12), "pending") ?
					     " (pending approval)" :
				     !strcmp(db_text(res, i, 12), "rejected") ?
					     " (rejected)" :
					     "");
		desc = db_text(res, i, 13);
		item = json_pack(
			"{s:s, s:I, s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:s, s:o}",
			"kind", "time", "id", (json_int_t)db_int(res, i, 0),
			"at", db_text(res, i, 8), "at_iso", db_text(res, i, 9),
			"who", timectx_entry_who(res, i), "is_comment", false,
			"is_attachment", false, "is_event", true, "action",
			"time.create", "label", label, "changes",
			*desc != '\0' ? json_string(desc) : json_null());
		insert_sorted(timeline, item);
	}
}

/*
 * Passive timers (a per-user beta): a person who turned them on and opens
 * the page of an open ticket assigned to them gets a timer started there,
 * or their paused one resumed; a timer running elsewhere is left alone.
 */
static enum td_err passive_open(struct req *r, int64_t ticket_id,
				json_t *ticket, bool *started)
{
	int64_t user = timectx_user(r);
	const char *params[2] = { req_id(r, user), req_id(r, ticket_id) };
	json_t *assignee = json_object_get(ticket, "assignee"), *after;
	PGresult *res;
	enum td_err err;

	if (r->want_json || r->method != HTTP_GET ||
	    json_is_true(json_object_get(ticket, "closed")) ||
	    json_integer_value(json_object_get(assignee, "id")) != user)
		return TD_OK;
	err = req_query(r, sql_passive_on, 1, params, &res);
	if (err != TD_OK || PQntuples(res) != 1 || !db_bool(res, 0, 0))
		return err;
	err = req_query(r, sql_resume, 2, params, &res);
	if (err != TD_OK || PQntuples(res) == 1) {
		req_forget_wanted(r); /* the running timer changed */
		*started = true;
		return err;
	}
	err = req_query(r, sql_start_passive, 2, params, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	req_forget_wanted(r);
	*started = true;
	after = json_pack("{s:I, s:I, s:b}", "ticket_id", (json_int_t)ticket_id,
			  "user_id", (json_int_t)user, "passive", true);
	req_own_json(r, after);
	return audit_write(r, "time.timer_start", "timer", db_int(res, 0, 0),
			   NULL, after);
}

/*
 * Whether the caller's running timer must be read: the session's lookup,
 * earlier in this request, said whether there is one, and a GET changes
 * timers only by passive_open.
 */
static bool may_run(const struct req *r)
{
	return r->method != HTTP_GET || r->auth.timer_ticket_id != 0;
}

void timers_ticket_want(struct req *r, int64_t ticket_id)
{
	int64_t user = timectx_user(r);
	const char *params[2] = { user ? req_id(r, user) : NULL,
				  req_id(r, ticket_id) };

	req_want(r, sql_entries_ticket, 2, params);
	if (user != 0 && may_run(r)) {
		params[0] = req_id(r, user);
		req_want(r, sql_mine, 1, params);
	}
}

enum td_err timers_ticket_json(struct req *r, int64_t ticket_id, json_t *ticket,
			       json_t *timeline)
{
	const char *params[2], *kind;
	int64_t total = 0, billable = 0, client_id, user = timectx_user(r);
	json_t *list = json_array(), *e, *timer;
	PGresult *res, *mine = NULL;
	bool started = false;
	enum td_err err;
	int i, n;

	json_object_set_new(ticket, "time_entries", list);
	params[0] = user ? req_id(r, user) : NULL;
	params[1] = req_id(r, ticket_id);
	err = req_query(r, sql_entries_ticket, 2, params, &res);
	if (err == TD_OK)
		err = names_load(r, res, TIMECTX_ENTRY_CLIENT,
				 TIMECTX_ENTRY_USER);
	if (err != TD_OK)
		return err;
	if (timeline != NULL)
		add_to_timeline(r, res, timeline);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		e = timectx_entry_json(r, res, i);
		if (!json_is_true(json_object_get(e, "rejected"))) {
			total += json_integer_value(
				json_object_get(e, "minutes"));
			if (!strcmp(json_string_value(
					    json_object_get(e, "kind")),
				    "billable"))
				billable += json_integer_value(
					json_object_get(e, "minutes"));
		}
		json_array_append_new(list, e);
	}
	json_object_set_new(ticket, "has_time", json_boolean(n > 0));
	json_object_set_new(ticket, "time_total_minutes", json_integer(total));
	json_object_set_new(ticket, "time_total",
			    json_string(timectx_hmm(r, total)));
	json_object_set_new(ticket, "time_billable",
			    json_string(timectx_hmm(r, billable)));
	client_id = json_integer_value(
		json_object_get(json_object_get(ticket, "client"), "id"));
	err = timectx_default_kind(r, client_id, &kind);
	if (err != TD_OK)
		return err;
	json_object_set_new(ticket, "time_default_kind", json_string(kind));
	json_object_set_new(ticket, "time_kinds", timectx_kind_choices(kind));
	if (user == 0) {
		json_object_set_new(ticket, "timer", json_null());
		return TD_OK;
	}
	err = passive_open(r, ticket_id, ticket, &started);
	if (err == TD_OK && (started || may_run(r)))
		err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (mine == NULL || PQntuples(mine) == 0) {
		timer = json_pack("{s:b, s:b}", "running", false, "here",
				  false);
	} else {
		timer = timer_json(r, mine);
		json_object_set_new(timer, "running", json_true());
		json_object_set_new(
			timer, "here",
			json_boolean(db_int(mine, 0, M_TICKET) == ticket_id));
		json_object_set_new(
			timer, "elsewhere",
			json_boolean(db_int(mine, 0, M_TICKET) != ticket_id));
	}
	json_object_set_new(ticket, "timer", timer);
	return TD_OK;
}

/* Where a timer form sends the browser back to: next, else the ticket. */
static const char *back_to(struct req *r, int64_t ticket_id)
{
	const char *next = form_text(r, "next");

	if (*next != '\0')
		return form_safe_next(next);
	return arena_printf(r->arena, "/tickets/%" PRId64, ticket_id);
}

/* The timer page: the caller's timer with its stop form. */
static enum td_err timer_page(struct req *r)
{
	json_t *v = req_view(r), *timer = json_null();
	const char *kind = NULL;
	PGresult *mine;
	enum td_err err;

	err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (PQntuples(mine) == 1) {
		timer = timer_json(r, mine);
		err = timectx_default_kind(r, db_int(mine, 0, M_CLIENT), &kind);
		if (err != TD_OK)
			return err;
	}
	if (json_object_get(v, "form") == NULL)
		json_object_set_new(
			v, "form",
			json_pack("{s:s}", "kind", kind ? kind : "billable"));
	json_object_set_new(
		v, "kinds",
		timectx_kind_choices(json_string_value(
			json_object_get(json_object_get(v, "form"), "kind"))));
	json_object_set_new(v, "timer", timer);
	json_object_set_new(v, "title", json_string("Timer"));
	r->view_name = "time/timer";
	return TD_OK;
}

static enum td_err need_person(struct req *r)
{
	if (timectx_user(r) == 0)
		return req_fail(r, TD_EFORBID,
				"timers belong to people: sign in to use one");
	return TD_OK;
}

/* GET /timer — the caller's running timer (null when none) and the
 * stop form. 403 for API keys. */
enum td_err timers_show(struct req *r)
{
	enum td_err err = need_person(r);

	if (err != TD_OK)
		return err;
	return timer_page(r);
}

/*
 * Starts the caller's timer on ticket id. 409 when the ticket is closed
 * or another timer runs (named in the message; browsers get the timer
 * page offering to stop and commit it first, then start this one).
 */
static enum td_err start_on(struct req *r, int64_t id, bool *started)
{
	const char *params[2];
	struct ticket_ref t;
	json_t *after, *v;
	PGresult *res, *mine;
	enum td_err err;

	*started = false;
	/* The ticket's row lock orders this after a concurrent close. */
	err = ticketctx_load(r, id, true, &t);
	if (err != TD_OK)
		return err;
	if (t.status == TICKET_CLOSED)
		return req_fail(r, TD_ECONFLICT,
				"T-%" PRId64
				" is closed: reopen it to start a timer",
				t.number);
	params[0] = req_id(r, timectx_user(r));
	params[1] = req_id(r, id);
	err = req_query(r, sql_start, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1) {
		after = json_pack("{s:I, s:I}", "ticket_id", (json_int_t)id,
				  "user_id", (json_int_t)timectx_user(r));
		req_own_json(r, after);
		err = audit_write(r, "time.timer_start", "timer",
				  db_int(res, 0, 0), NULL, after);
		if (err != TD_OK)
			return err;
		*started = true;
		return TD_OK;
	}
	err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (PQntuples(mine) == 0)
		return req_fail(r, TD_ECONFLICT,
				"your timer changed meanwhile: try again");
	v = req_view(r);
	json_object_set_new(v, "running", timer_json(r, mine));
	json_object_set_new(
		v, "then_start",
		json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id, "ref",
			  arena_printf(r->arena, "T-%" PRId64, t.number),
			  "subject", t.subject));
	return req_fail(r, TD_ECONFLICT,
			"your timer is running on T-%s (%s) since %s: stop and "
			"commit it first",
			db_text(mine, 0, M_NUMBER), db_text(mine, 0, M_SUBJECT),
			db_text(mine, 0, M_SINCE));
}

/* A refused start or stop: the API gets the error, browsers the timer
 * page with the reason and the stop form. */
static enum td_err refuse(struct req *r, enum td_err why)
{
	enum td_err err;
	char *msg;

	if (r->want_json || why != TD_ECONFLICT)
		return why;
	err = timer_page(r);
	if (err != TD_OK)
		return err;
	r->status = 409;
	/* The page explains a start refused for a running timer itself. */
	if (json_object_get(req_view(r), "then_start") != NULL)
		return TD_OK;
	msg = arena_printf(r->arena, "%s.", r->error_detail);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	json_object_set_new(req_view(r), "error", json_string(msg));
	return TD_OK;
}

/*
 * POST /tickets/:id/timer [next] — 201 {timer} (API) or 303 back; 409
 * when the ticket is closed or the caller's timer runs (the message names
 * it); 403 for API keys; 404 for another tenant's ticket.
 */
enum td_err timers_start(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	PGresult *mine;
	enum td_err err;
	bool started;

	err = need_person(r);
	if (err != TD_OK)
		return err;
	err = start_on(r, id, &started);
	if (err != TD_OK)
		return refuse(r, err);
	err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		json_object_set_new(req_view(r), "timer", timer_json(r, mine));
		return TD_OK;
	}
	form_flash(r, "ok",
		   arena_printf(r->arena, "Timer started on T-%s.",
				db_text(mine, 0, M_NUMBER)));
	r->redirect = back_to(r, id);
	return TD_OK;
}

/* The stop form's fields; problems go to form_error(). */
static void read_stop(struct req *r, const char **kind, const char **desc,
		      const char **service)
{
	*kind = form_text(r, "kind");
	*desc = form_text(r, "description");
	*service = form_text(r, "service");
	if (**kind != '\0' && !timectx_kind_valid(*kind))
		form_error(r, "kind", "choose billable, internal or pre-paid");
	if (http_utf8_len(*desc) > 10000)
		form_error(r, "description", "use at most 10000 characters");
	if (http_utf8_len(*service) > 60)
		form_error(r, "service", "use at most 60 characters");
}

/*
 * POST /timer/stop [kind, description, service, next, then_start] —
 * stops the caller's timer and logs its time (whole minutes begun, at
 * least one) as one entry: 200 {entry} (API) or 303 back with the time
 * logged. With then_start, starts a timer on that ticket afterwards. 409
 * when no timer runs; 422 for bad fields (the timer keeps running).
 */
enum td_err timers_stop(struct req *r)
{
	const char *kind, *desc, *service, *params[2], *status;
	const char *then = form_text(r, "then_start");
	struct time_entry_new e;
	int64_t ticket, entry, next_ticket = 0;
	json_t *v;
	PGresult *mine, *res;
	enum td_err err;
	bool started;

	err = need_person(r);
	if (err != TD_OK)
		return err;
	err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (PQntuples(mine) == 0)
		return refuse(r,
			      req_fail(r, TD_ECONFLICT, "no timer is running"));
	read_stop(r, &kind, &desc, &service);
	if (*then != '\0' && !timectx_parse_id(then, &next_ticket))
		form_error(r, "then_start", "not a ticket");
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "time/timer", stop_fields);
		err = timer_page(r);
		if (err != TD_OK)
			return err;
		return form_reject(r, "time/timer", stop_fields);
	}
	if (*kind == '\0') {
		err = timectx_default_kind(r, db_int(mine, 0, M_CLIENT), &kind);
		if (err != TD_OK)
			return err;
	}
	params[0] = db_text(mine, 0, M_TICKET);
	err = req_query(r, sql_ticket_share, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1 && db_bool(res, 0, 0))
		return refuse(r,
			      req_fail(r, TD_ECONFLICT,
				       "T-%s is closed: reopen it to log "
				       "this time there, or discard the timer",
				       db_text(mine, 0, M_NUMBER)));
	params[0] = req_id(r, timectx_user(r));
	params[1] = db_text(mine, 0, M_ID);
	err = req_query(r, sql_stop, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return refuse(r, req_fail(r, TD_ECONFLICT,
					  "the timer was stopped meanwhile"));
	ticket = db_int(res, 0, 0);
	memset(&e, 0, sizeof(e));
	e.ticket_id = ticket;
	e.user_id = timectx_user(r);
	e.started_at = db_text(res, 0, 1);
	e.minutes = (int)db_int(res, 0, 2);
	e.kind = kind;
	e.description = desc;
	e.service = service;
	e.source = "timer";
	e.timer_id = params[1];
	err = timectx_insert(r, &e, &entry, &status);
	if (err != TD_OK)
		return err;
	if (next_ticket > 0) {
		err = start_on(r, next_ticket, &started);
		if (err != TD_OK)
			return refuse(r, err);
	}
	if (r->want_json) {
		v = req_view(r);
		params[1] = req_id(r, entry);
		err = req_query(r, sql_entry, 2, params, &res);
		if (err != TD_OK)
			return err;
		json_object_set_new(v, "entry", timectx_entry_json(r, res, 0));
		return TD_OK;
	}
	form_flash(r, "ok",
		   arena_printf(
			   r->arena, "Logged %s of %s time on T-%s%s.",
			   timectx_hmm(r, e.minutes), timectx_kind_label(kind),
			   db_text(mine, 0, M_NUMBER),
			   !strcmp(status, "pending") ? " (pending approval)" :
							""));
	r->redirect = next_ticket > 0 ?
			      arena_printf(r->arena, "/tickets/%" PRId64,
					   next_ticket) :
			      back_to(r, ticket);
	return TD_OK;
}

/*
 * POST /timer/discard [next] — drops the caller's timer without logging
 * it: 200 {discarded} or 303 back; 409 when none runs.
 */
enum td_err timers_discard(struct req *r)
{
	const char *params[2];
	json_t *after;
	PGresult *mine, *res;
	enum td_err err;

	err = need_person(r);
	if (err != TD_OK)
		return err;
	err = load_mine(r, &mine);
	if (err != TD_OK)
		return err;
	if (PQntuples(mine) == 0)
		return refuse(r,
			      req_fail(r, TD_ECONFLICT, "no timer is running"));
	params[0] = req_id(r, timectx_user(r));
	params[1] = db_text(mine, 0, M_ID);
	err = req_query(r, sql_stop, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return refuse(r, req_fail(r, TD_ECONFLICT,
					  "the timer was stopped meanwhile"));
	after = json_pack("{s:I, s:I, s:s}", "ticket_id",
			  (json_int_t)db_int(res, 0, 0), "minutes",
			  (json_int_t)db_int(res, 0, 2), "reason",
			  "discarded by its technician");
	req_own_json(r, after);
	err = audit_write(r, "time.timer_discard", "timer",
			  db_int(mine, 0, M_ID), NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "discarded", after);
	if (r->want_json)
		return TD_OK;
	form_flash(r, "info",
		   arena_printf(r->arena,
				"Timer on T-%s discarded; no time was logged.",
				db_text(mine, 0, M_NUMBER)));
	r->redirect = back_to(r, db_int(res, 0, 0));
	return TD_OK;
}

/*
 * POST /timer/pause [stretch] — pauses the caller's passive timer (sent
 * by the ticket page as it is left): 200 {paused} or 303 back. stretch is
 * the running stretch the page saw, so a late pause cannot stop the time
 * the next page resumed. Manual timers never pause.
 */
enum td_err timers_pause(struct req *r)
{
	const char *params[2];
	PGresult *res;
	enum td_err err;

	err = need_person(r);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, timectx_user(r));
	params[1] = form_text(r, "stretch");
	if (*params[1] == '\0' || strlen(params[1]) > 40) {
		form_error(r, "stretch", "say which stretch to pause");
		return form_reject(r, "time/timer", NULL);
	}
	/* A malformed stretch would abort the transaction: check its shape. */
	if (strspn(params[1], "0123456789-:. +") != strlen(params[1])) {
		form_error(r, "stretch", "not a timestamp");
		return form_reject(r, "time/timer", NULL);
	}
	err = req_query(r, sql_pause, 2, params, &res);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "paused",
			    json_boolean(PQntuples(res) == 1));
	if (!r->want_json)
		r->redirect = "/timer";
	return TD_OK;
}
