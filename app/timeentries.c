/* timeentries.c: time entries — the Time page, manual and bulk entry,
 * edits, approval, the missing-time view, time reports, time settings */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "csv.h"
#include "db.h"
#include "duration.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "timectx.h"
#include "timeentries.h"
#include "view.h"
#include "banned.h"

#define BULK_ROWS    10
#define APPROVE_MAX  500
#define DESC_MAX     10000
#define SERVICE_MAX  60
#define RATE_MAX_LEN 10 /* digits before the point: numeric(14,2) */

/* Local date-time in the technician's zone to an instant: $1 local
 * "YYYY-MM-DD HH:MM", $2 user. A local time the clocks skipped does not
 * survive the round trip, so the second column says whether it exists. */
static const char sql_local[] =
	"SELECT ($1::timestamp AT TIME ZONE z)::text,"
	" (($1::timestamp AT TIME ZONE z) AT TIME ZONE z) = $1::timestamp,"
	" ($1::timestamp AT TIME ZONE z) > now() + interval '10 minutes', z,"
	" to_char(($1::timestamp AT TIME ZONE z) AT TIME ZONE z, 'HH24:MI')"
	" FROM app_user_zone($2::bigint) z";
/* Shared lock: a close in flight finishes first, so "closed" is current. */
static const char sql_ticket_by_number[] =
	"SELECT t.id, t.number, t.status = 'closed', t.client_id"
	" FROM tickets t WHERE t.tenant_id = app_tenant()"
	" AND (t.number = $1::bigint OR t.id = $2::bigint)"
	" ORDER BY t.number = $1::bigint DESC LIMIT 1 FOR SHARE";
static const char sql_user_active[] =
	"SELECT 1 FROM users WHERE tenant_id = app_tenant() AND id = $1"
	" AND active";
static const char sql_approval[] =
	"SELECT time_approval, timer_alert_hours FROM tenants"
	" WHERE id = app_tenant()";
/* A week of one person's time from local date $3. */
static const char sql_entries_user[] = TIMECTX_ENTRY_SELECT
	" WHERE e.tenant_id = app_tenant() AND e.user_id = $2"
	" AND e.started_at >= $3::date::timestamp AT TIME ZONE app_user_zone($1)"
	" AND e.started_at < ($3::date + 7)::timestamp AT TIME ZONE"
	" app_user_zone($1)"
	" ORDER BY e.started_at DESC, e.id DESC LIMIT 1000";
static const char sql_entry[] =
	TIMECTX_ENTRY_SELECT " WHERE e.tenant_id = app_tenant() AND e.id = $2";
static const char sql_pending[] = TIMECTX_ENTRY_SELECT
	" WHERE e.tenant_id = app_tenant() AND e.status = 'pending'"
	" ORDER BY e.started_at, e.id LIMIT 500";
static const char sql_rejected_mine[] = TIMECTX_ENTRY_SELECT
	" WHERE e.tenant_id = app_tenant() AND e.status = 'rejected'"
	" AND e.user_id = $2 ORDER BY e.started_at DESC, e.id LIMIT 100";
/* The entry locked for a change, with its ticket's state. */
static const char sql_entry_lock[] =
	"SELECT e.id, e.user_id, e.ticket_id, e.minutes, e.kind, e.status,"
	" e.description, e.service, e.started_at::text,"
	" e.invoice_line_id IS NOT NULL, e.sealed_at IS NOT NULL,"
	" t.status = 'closed', t.number,"
	" to_char(e.started_at AT TIME ZONE app_user_zone(e.user_id),"
	" 'YYYY-MM-DD HH24:MI')"
	" FROM time_entries e JOIN tickets t ON t.tenant_id = e.tenant_id"
	" AND t.id = e.ticket_id"
	" WHERE e.tenant_id = app_tenant() AND e.id = $1 FOR UPDATE OF e";
static const char sql_entry_update[] =
	"UPDATE time_entries SET started_at = $2::timestamptz,"
	" minutes = $3::int, kind = $4, description = $5, service = $6,"
	" status = $7, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_entry_delete[] =
	"DELETE FROM time_entries WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_review[] =
	"UPDATE time_entries SET status = $2, reviewed_by = $3,"
	" reviewed_at = now(), review_note = $4, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = ANY ($1::bigint[])"
	" AND status = 'pending' AND invoice_line_id IS NULL"
	" RETURNING id, user_id, minutes";
static const char sql_my_tickets[] =
	"SELECT t.number, t.subject FROM tickets t"
	" WHERE t.tenant_id = app_tenant() AND t.status <> 'closed'"
	" ORDER BY t.assignee_id IS NOT DISTINCT FROM $1::bigint DESC,"
	" t.updated_at DESC LIMIT 200";
static const char sql_today[] =
	"SELECT to_char(now() AT TIME ZONE app_user_zone($1::bigint),"
	" 'YYYY-MM-DD'),"
	" to_char(date_trunc('week', now() AT TIME ZONE"
	" app_user_zone($1::bigint)), 'YYYY-MM-DD'),"
	" to_char(date_trunc('month', now() AT TIME ZONE"
	" app_user_zone($1::bigint)), 'YYYY-MM-DD'),"
	" to_char(now() AT TIME ZONE app_user_zone($1::bigint),"
	" 'YYYY-MM-DD\"T\"HH24:MI')";

/* Missing time: closed tickets of the last $1 days without time. */
static const char sql_missing_closed[] =
	"SELECT t.id, t.number, t.subject, c.name,"
	" to_char(t.closed_at AT TIME ZONE app_user_zone(NULL), 'YYYY-MM-DD HH24:MI'),"
	" t.closed_without_time, u.name"
	" FROM tickets t JOIN clients c ON c.tenant_id = t.tenant_id"
	" AND c.id = t.client_id"
	" LEFT JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.assignee_id"
	" WHERE t.tenant_id = app_tenant() AND t.status = 'closed'"
	" AND t.merged_into IS NULL"
	" AND t.closed_at > now() - make_interval(days => $1::int)"
	" AND NOT EXISTS (SELECT 1 FROM time_entries e"
	" WHERE e.tenant_id = t.tenant_id AND e.ticket_id = t.id"
	" AND e.status <> 'rejected')"
	" ORDER BY t.closed_at DESC, t.id DESC LIMIT 200";
static const char sql_missing_timers[] =
	"SELECT tm.ticket_id, t.number, t.subject, u.name,"
	" to_char(tm.started_at AT TIME ZONE app_user_zone(NULL), 'YYYY-MM-DD HH24:MI'),"
	" ceil(extract(epoch FROM now() - tm.started_at) / 60)::bigint"
	" FROM timers tm JOIN tenants n ON n.id = tm.tenant_id"
	" JOIN tickets t ON t.tenant_id = tm.tenant_id AND t.id = tm.ticket_id"
	" JOIN users u ON u.tenant_id = tm.tenant_id AND u.id = tm.user_id"
	" WHERE tm.tenant_id = app_tenant()"
	" AND tm.started_at < now() - make_interval(hours => n.timer_alert_hours)"
	" ORDER BY tm.started_at";
/* Clients with billable time in the window: $1 days. */
static const char sql_missing_clients[] =
	"SELECT c.id, c.name, sum(e.minutes)::bigint, count(*)"
	" FROM time_entries e JOIN clients c ON c.tenant_id = e.tenant_id"
	" AND c.id = e.client_id"
	" WHERE e.tenant_id = app_tenant() AND e.status <> 'rejected'"
	" AND e.kind = 'billable'"
	" AND e.started_at > now() - make_interval(days => $1::int)"
	" GROUP BY c.id, c.name ORDER BY lower(c.name), c.id LIMIT 200";

/* Reports: $1 viewer, $2..$3 local dates; committed time by kind. */
#define REPORT_SUMS                                                            \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'committed'"        \
	" AND e.kind = 'billable'), 0)::bigint,"                               \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'committed'"        \
	" AND e.kind = 'internal'), 0)::bigint,"                               \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'committed'"        \
	" AND e.kind = 'prepaid'), 0)::bigint,"                                \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'committed'),"      \
	" 0)::bigint,"                                                         \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'pending'),"        \
	" 0)::bigint,"                                                         \
	" count(*) FILTER (WHERE e.status = 'committed'),"                     \
	" coalesce(sum(e.minutes) FILTER (WHERE e.status = 'committed'"        \
	" AND e.invoice_line_id IS NOT NULL), 0)::bigint,"                     \
	" coalesce(round(sum(e.minutes * w.cost_rate) FILTER (WHERE"           \
	" e.status = 'committed') * 100 / 60), 0)::bigint"
/* Cost: committed minutes at each technician's cost rate, in cents. */
#define REPORT_COSTS                                                           \
	" JOIN users w ON w.tenant_id = e.tenant_id AND w.id = e.user_id"
#define REPORT_WHERE                                                           \
	" WHERE e.tenant_id = app_tenant()"                                    \
	" AND e.started_at >= $2::date::timestamp AT TIME ZONE"                \
	" app_user_zone($1::bigint)"                                           \
	" AND e.started_at < ($3::date + 1)::timestamp AT TIME ZONE"           \
	" app_user_zone($1::bigint)"
static const char sql_report_user[] =
	"SELECT u.id, u.name," REPORT_SUMS
	" FROM time_entries e JOIN users u ON u.tenant_id = e.tenant_id"
	" AND u.id = e.user_id" REPORT_COSTS REPORT_WHERE
	" GROUP BY u.id, u.name ORDER BY lower(u.name), u.id";
static const char sql_report_client[] =
	"SELECT c.id, c.name," REPORT_SUMS
	" FROM time_entries e JOIN clients c ON c.tenant_id = e.tenant_id"
	" AND c.id = e.client_id" REPORT_COSTS REPORT_WHERE
	" GROUP BY c.id, c.name ORDER BY lower(c.name), c.id";

static const char sql_report_type[] =
	"SELECT 0::bigint, t.type," REPORT_SUMS
	" FROM time_entries e JOIN tickets t ON t.tenant_id = e.tenant_id"
	" AND t.id = e.ticket_id" REPORT_COSTS REPORT_WHERE
	" GROUP BY t.type ORDER BY t.type";

/* A client's time this month (tenant's zone): see timeentries_client_json. */
static const char sql_client_month[] =
	"SELECT 0::bigint, ''::text," REPORT_SUMS
	" FROM time_entries e" REPORT_COSTS
	" WHERE e.tenant_id = app_tenant() AND e.client_id = $1"
	" AND e.started_at >= date_trunc('month', now() AT TIME ZONE"
	" app_user_zone(NULL)) AT TIME ZONE app_user_zone(NULL)";

static const char sql_settings_users[] =
	"SELECT id, name, role, hourly_rate::text, cost_rate::text,"
	" coalesce(time_zone, ''), active FROM users"
	" WHERE tenant_id = app_tenant() ORDER BY active DESC, lower(name), id";
static const char sql_settings_save[] =
	"UPDATE tenants SET time_approval = $1::boolean,"
	" timer_alert_hours = $2::int WHERE id = app_tenant()";
static const char sql_rates_old[] =
	"SELECT name, hourly_rate::text, cost_rate::text, time_zone FROM users"
	" WHERE tenant_id = app_tenant() AND id = $1 FOR UPDATE";
static const char sql_rates_save[] =
	"UPDATE users SET hourly_rate = $2::numeric, cost_rate = $3::numeric,"
	" time_zone = $4 WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_passive_get[] =
	"SELECT passive_timer FROM users WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_passive_set[] =
	"UPDATE users SET passive_timer = $2::boolean"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_zone_known[] =
	"SELECT 1 FROM pg_timezone_names WHERE name = $1";

static const char *const entry_fields[] = {
	"ticket",  "started_at", "duration", "description", "kind",
	"service", "user_id",	 "reason",   NULL
};

/* ------------------------------------------------------------------ */
/* Reading input                                                        */

static bool is_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool date_valid(int y, int m, int d)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (y < 2000 || y > 2100 || m < 1 || m > 12 || d < 1)
		return false;
	return d <= days[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DD", a real day between 2000 and 2100. */
static bool parse_date(const char *s)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !is_digits(s, 4) ||
	    !is_digits(s + 5, 2) || !is_digits(s + 8, 2))
		return false;
	return date_valid(num(s, 4), num(s + 5, 2), num(s + 8, 2));
}

/* "YYYY-MM-DDTHH:MM" or with a space; *out "YYYY-MM-DD HH:MM". */
static bool parse_local(struct req *r, const char *s, const char **out)
{
	char *n;

	if (strlen(s) != 16 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
	    !is_digits(s + 11, 2) || !is_digits(s + 14, 2))
		return false;
	n = arena_strndup(r->arena, s, 10);
	if (!parse_date(n) || num(s + 11, 2) > 23 || num(s + 14, 2) > 59)
		return false;
	*out = arena_printf(r->arena, "%.10s %.5s", s, s + 11);
	return true;
}

/* "85", "85.5", "85.50": cents; false for anything else. */
static bool parse_money(const char *s, int64_t *cents)
{
	const char *dot = strchr(s, '.');
	size_t whole = dot ? (size_t)(dot - s) : strlen(s), frac = 0;
	int64_t v = 0;
	size_t i;

	if (whole < 1 || whole > RATE_MAX_LEN || !is_digits(s, whole))
		return false;
	if (dot != NULL) {
		frac = strlen(dot + 1);
		if (frac < 1 || frac > 2 || !is_digits(dot + 1, frac))
			return false;
	}
	for (i = 0; i < whole; i++)
		v = v * 10 + (s[i] - '0');
	v *= 100;
	if (frac >= 1)
		v += (dot[1] - '0') * 10;
	if (frac == 2)
		v += dot[2] - '0';
	*cents = v;
	return true;
}

static const char *money_text(struct req *r, int64_t cents)
{
	return arena_printf(r->arena, "%" PRId64 ".%02" PRId64, cents / 100,
			    cents % 100);
}

static bool is_manager(const struct req *r)
{
	return (r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)) != 0;
}

/* The field name of bulk row i ("ticket_3"), or name itself for row 0. */
static const char *field(struct req *r, const char *name, int row)
{
	return row == 0 ? name : arena_printf(r->arena, "%s_%d", name, row);
}

/* What a manual entry says, checked. */
struct entry_in {
	int64_t ticket_id, client_id, number, user_id;
	bool closed;
	const char *local;   /* as typed, normalised */
	const char *instant; /* timestamptz text */
	int minutes;
	const char *kind, *description, *service;
};

/*
 * The ticket named by "T-1001", "1001" or (API) "ticket_id"; problems go
 * to form_error(fname). Sets in->ticket_id to 0 when there is none.
 */
static enum td_err read_ticket(struct req *r, const char *fname,
			       const char *text, struct entry_in *in)
{
	const char *params[2];
	int64_t n;
	PGresult *res;
	enum td_err err;

	in->ticket_id = 0;
	if (text[0] == 'T' || text[0] == 't')
		text += text[1] == '-' ? 2 : 1;
	if (!timectx_parse_id(text, &n)) {
		form_error(r, fname, "enter a ticket number such as T-1001");
		return TD_OK;
	}
	params[0] = req_id(r, n);
	params[1] = params[0];
	err = req_query(r, sql_ticket_by_number, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		form_error(r, fname, "no such ticket");
		return TD_OK;
	}
	in->ticket_id = db_int(res, 0, 0);
	in->number = db_int(res, 0, 1);
	in->closed = db_bool(res, 0, 2);
	in->client_id = db_int(res, 0, 3);
	return TD_OK;
}

/*
 * Local started-at of the technician to an instant. A time the clocks
 * skipped (01:30 on the day they go forward) is refused with the time it
 * would mean, so nobody logs an hour that never happened by mistake.
 */
static enum td_err read_started(struct req *r, const char *fname,
				struct entry_in *in)
{
	const char *params[2];
	PGresult *res;
	enum td_err err;

	params[0] = in->local;
	params[1] = req_id(r, in->user_id);
	err = req_query(r, sql_local, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (!db_bool(res, 0, 1)) {
		form_error(
			r, fname,
			arena_printf(
				r->arena,
				"%s does not exist in %s: the clocks went "
				"forward then; enter %s (the same moment) or "
				"another time",
				in->local, db_text(res, 0, 3),
				db_text(res, 0, 4)));
		return TD_OK;
	}
	if (db_bool(res, 0, 2)) {
		form_error(r, fname, "this is in the future");
		return TD_OK;
	}
	in->instant = arena_strdup(r->arena, db_text(res, 0, 0));
	return TD_OK;
}

/* Whose time: user_id when given (managers and API keys), else the
 * caller. */
static enum td_err read_user(struct req *r, const char *fname,
			     struct entry_in *in)
{
	const char *text = form_text(r, fname), *params[1];
	PGresult *res;
	enum td_err err;
	int64_t id;

	in->user_id = timectx_user(r);
	if (*text == '\0') {
		if (in->user_id == 0)
			form_error(r, fname, "say whose time this is");
		return TD_OK;
	}
	if (!timectx_parse_id(text, &id)) {
		form_error(r, fname, "not a person");
		return TD_OK;
	}
	if (id != in->user_id && !is_manager(r)) {
		form_error(r, fname, "only managers log time for others");
		return TD_OK;
	}
	params[0] = req_id(r, id);
	err = req_query(r, sql_user_active, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0)
		form_error(r, fname, "no such person");
	in->user_id = id;
	return TD_OK;
}

static void read_text(struct req *r, const char *fname, size_t max,
		      const char **out)
{
	*out = form_text(r, fname);
	if (http_utf8_len(*out) > max)
		form_error(r, fname,
			   arena_printf(r->arena, "use at most %zu characters",
					max));
}

static void read_duration(struct req *r, const char *fname, int *minutes)
{
	const char *s = form_text(r, fname), *why;

	if (*s == '\0' && !strcmp(fname, "duration"))
		s = form_text(r, "minutes");
	if (!duration_parse(s, strlen(s), minutes, &why))
		form_error(r, fname, why);
}

/*
 * Reads entry row (0: the single form) into in. ticket_id > 0 names the
 * ticket (a ticket's own form). Problems go to form_error().
 */
static enum td_err read_entry(struct req *r, int row, int64_t ticket_id,
			      struct entry_in *in)
{
	const char *t = form_text(r, field(r, "ticket", row));
	const char *local = form_text(r, field(r, "started_at", row));
	enum td_err err;

	memset(in, 0, sizeof(*in));
	if (ticket_id > 0)
		t = req_id(r, ticket_id);
	else if (*t == '\0' && row == 0)
		t = form_text(r, "ticket_id");
	if (*t == '\0')
		form_error(r, field(r, "ticket", row), "choose a ticket");
	else if ((err = read_ticket(r, field(r, "ticket", row), t, in)) !=
		 TD_OK)
		return err;
	err = read_user(r, "user_id", in);
	if (err != TD_OK)
		return err;
	read_duration(r, field(r, "duration", row), &in->minutes);
	if (!parse_local(r, local, &in->local))
		form_error(r, field(r, "started_at", row),
			   "enter a date and time such as 2026-03-02 09:30");
	else if (in->user_id > 0) {
		err = read_started(r, field(r, "started_at", row), in);
		if (err != TD_OK)
			return err;
	}
	in->kind = form_text(r, field(r, "kind", row));
	if (*in->kind != '\0' && !timectx_kind_valid(in->kind))
		form_error(r, field(r, "kind", row),
			   "choose billable, internal or pre-paid");
	read_text(r, field(r, "description", row), DESC_MAX, &in->description);
	read_text(r, field(r, "service", row), SERVICE_MAX, &in->service);
	if (in->ticket_id > 0 && in->closed)
		form_error(r, field(r, "ticket", row),
			   arena_printf(r->arena,
					"T-%" PRId64
					" is closed: reopen it to log time",
					in->number));
	return TD_OK;
}

static enum td_err save_entry(struct req *r, struct entry_in *in,
			      const char *source, int64_t *id,
			      const char **status)
{
	struct time_entry_new e;
	enum td_err err;

	if (*in->kind == '\0') {
		err = timectx_default_kind(r, in->client_id, &in->kind);
		if (err != TD_OK)
			return err;
	}
	memset(&e, 0, sizeof(e));
	e.ticket_id = in->ticket_id;
	e.user_id = in->user_id;
	e.started_at = in->instant;
	e.minutes = in->minutes;
	e.kind = in->kind;
	e.description = in->description;
	e.service = in->service;
	e.source = source;
	return timectx_insert(r, &e, id, status);
}

/* One entry as JSON (API answers). */
static enum td_err entry_view(struct req *r, int64_t id, json_t **out)
{
	const char *params[2];
	PGresult *res;
	enum td_err err;

	params[0] = timectx_user(r) ? req_id(r, timectx_user(r)) : NULL;
	params[1] = req_id(r, id);
	err = req_query(r, sql_entry, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no time entry %" PRId64, id);
	*out = timectx_entry_json(r, res, 0);
	return TD_OK;
}

/* Today, this week's Monday, this month's first day, now: local. */
static enum td_err today(struct req *r, PGresult **res)
{
	const char *params[1] = { timectx_user(r) ? req_id(r, timectx_user(r)) :
						    NULL };

	return req_query(r, sql_today, 1, params, res);
}

/* ------------------------------------------------------------------ */
/* The Time page                                                        */

static json_t *minutes_json(struct req *r, int64_t m)
{
	return json_pack("{s:I, s:s}", "minutes", (json_int_t)m, "text",
			 timectx_hmm(r, m));
}

/* Ticket choices for the entry forms (a datalist). */
static enum td_err ticket_choices(struct req *r, json_t *v)
{
	const char *params[1] = { timectx_user(r) ? req_id(r, timectx_user(r)) :
						    NULL };
	json_t *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(v, "ticket_choices", list);
	err = req_query(r, sql_my_tickets, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list, json_pack("{s:s, s:s}", "ref",
					arena_printf(r->arena, "T-%s",
						     db_text(res, i, 0)),
					"subject", db_text(res, i, 1)));
	return TD_OK;
}

static enum td_err time_page(struct req *r)
{
	json_t *v = req_view(r), *list = json_array(), *e, *rej;
	const char *from, *params[3];
	int64_t total = 0, user = timectx_user(r), m;
	PGresult *now, *res;
	enum td_err err;
	int i, n;

	from = http_params_get(&r->query_params, "from");
	err = today(r, &now);
	if (err != TD_OK)
		return err;
	if (from == NULL || !parse_date(from))
		from = db_text(now, 0, 1);
	json_object_set_new(v, "entries", list);
	json_object_set_new(v, "from", json_string(from));
	json_object_set_new(v, "title", json_string("Time"));
	json_object_set_new(v, "is_manager", json_boolean(is_manager(r)));
	r->view_name = "time/page";
	if (json_object_get(v, "form") == NULL)
		json_object_set_new(v, "form",
				    json_pack("{s:s, s:s}", "started_at",
					      db_text(now, 0, 3), "kind", ""));
	json_object_set_new(
		v, "kinds",
		timectx_kind_choices(json_string_value(
			json_object_get(json_object_get(v, "form"), "kind"))));
	if (user == 0)
		return TD_OK;
	params[0] = req_id(r, user);
	params[1] = params[0];
	params[2] = from;
	err = req_query(r, sql_entries_user, 3, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		e = timectx_entry_json(r, res, i);
		m = json_integer_value(json_object_get(e, "minutes"));
		if (!json_is_true(json_object_get(e, "rejected")))
			total += m;
		json_array_append_new(list, e);
	}
	json_object_set_new(v, "total", minutes_json(r, total));
	rej = json_array();
	json_object_set_new(v, "rejected", rej);
	err = req_query(r, sql_rejected_mine, 2, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(rej, timectx_entry_json(r, res, i));
	json_object_set_new(v, "has_rejected", json_boolean(n > 0));
	err = req_query(r, sql_passive_get, 1, params, &res);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		v, "passive_timer",
		json_boolean(PQntuples(res) == 1 && db_bool(res, 0, 0)));
	return ticket_choices(r, v);
}

/*
 * GET /time [from=YYYY-MM-DD] — the caller's time for the week from that
 * day (default: this week), their rejected entries, and the manual entry
 * form.
 */
enum td_err timeentries_page(struct req *r)
{
	return time_page(r);
}

/*
 * POST /time/entries and POST /tickets/:id/time — a manual entry:
 * ticket (T-1001; or ticket_id), started_at (local date-time of the
 * technician), duration (h:mm or minutes), description, kind, service,
 * user_id (managers). 201 {entry} or 303 back (next, else the ticket);
 * 422 with field messages (a time the clocks skipped, a closed ticket,
 * a bad duration); 404 for another tenant's ticket on its own route.
 */
enum td_err timeentries_create(struct req *r)
{
	int64_t ticket = 0, id;
	const char *status, *next = form_text(r, "next");
	struct entry_in in;
	json_t *e;
	enum td_err err;

	if (r->args.n > 0) {
		ticket = route_arg_int(&r->args, "id");
		err = read_ticket(r, "ticket", req_id(r, ticket), &in);
		if (err != TD_OK)
			return err;
		if (in.ticket_id == 0)
			return req_fail(r, TD_ENOENT, "no ticket %" PRId64,
					ticket);
	}
	err = read_entry(r, 0, ticket, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = time_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/page", entry_fields);
	}
	err = save_entry(r, &in, r->want_json ? "api" : "manual", &id, &status);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		err = entry_view(r, id, &e);
		if (err != TD_OK)
			return err;
		json_object_set_new(req_view(r), "entry", e);
		r->status = 201;
		return TD_OK;
	}
	form_flash(r, "ok",
		   arena_printf(r->arena, "Logged %s on T-%" PRId64 "%s.",
				timectx_hmm(r, in.minutes), in.number,
				!strcmp(status, "pending") ?
					" (pending approval)" :
					""));
	r->redirect = *next != '\0' ?
			      form_safe_next(next) :
			      arena_printf(r->arena, "/tickets/%" PRId64,
					   in.ticket_id);
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Bulk entry                                                           */

static enum td_err bulk_page(struct req *r)
{
	json_t *v = req_view(r), *rows = json_array(), *row, *errors;
	const char *date;
	PGresult *now;
	enum td_err err;
	int i;

	err = today(r, &now);
	if (err != TD_OK)
		return err;
	date = form_text(r, "date");
	if (*date == '\0')
		date = db_text(now, 0, 0);
	errors = r->error_fields;
	for (i = 1; i <= BULK_ROWS; i++) {
		row = json_pack(
			"{s:i, s:s, s:s, s:s, s:s, s:s}", "n", i, "ticket",
			form_text(r, field(r, "ticket", i)), "duration",
			form_text(r, field(r, "duration", i)), "time",
			form_text(r, field(r, "time", i)), "description",
			form_text(r, field(r, "description", i)), "service",
			form_text(r, field(r, "service", i)));
		json_object_set_new(row, "kinds",
				    timectx_kind_choices(
					    form_text(r, field(r, "kind", i))));
		if (errors != NULL) {
			json_object_set(
				row, "error_ticket",
				json_object_get(errors, field(r, "ticket", i)));
			json_object_set(
				row, "error_duration",
				json_object_get(errors,
						field(r, "duration", i)));
			json_object_set(
				row, "error_time",
				json_object_get(errors,
						field(r, "started_at", i)));
			json_object_set(
				row, "error_other",
				json_object_get(errors,
						field(r, "description", i)));
		}
		json_array_append_new(rows, row);
	}
	json_object_set_new(v, "rows", rows);
	json_object_set_new(v, "date", json_string(date));
	json_object_set_new(v, "title", json_string("End-of-day time"));
	r->view_name = "time/bulk";
	return ticket_choices(r, v);
}

/* GET /time/bulk — ten rows for logging a day's work at once. */
enum td_err timeentries_bulk_form(struct req *r)
{
	return bulk_page(r);
}

/* A JSON bulk body {date, entries: [{ticket, time, duration, ...}]} as
 * the form fields of rows 1..n, so one reader serves both. */
static void bulk_json_to_form(struct req *r)
{
	json_t *list = json_object_get(r->json_body, "entries"), *row, *x;
	const char *key;
	size_t i;

	if (!json_is_array(list))
		return;
	json_array_foreach(list, i, row)
	{
		if (i >= BULK_ROWS || !json_is_object(row))
			break;
		json_object_foreach(row, key, x)
		{
			if (json_is_string(x) || json_is_integer(x))
				json_object_set(r->json_body,
						field(r, key, (int)i + 1), x);
		}
	}
}

/*
 * POST /time/bulk — date and rows ticket_N, time_N (HH:MM, optional:
 * rows without one follow each other from 09:00), duration_N,
 * description_N, kind_N, service_N for N = 1..10; empty rows are
 * skipped. All or nothing: 422 with messages per row and nothing saved.
 * 201 {entries} or 303 to /time.
 */
enum td_err timeentries_bulk(struct req *r)
{
	const char *date = form_text(r, "date"), *t, *d, *status;
	struct entry_in in[BULK_ROWS];
	int used[BULK_ROWS], nused = 0, i, clock = 9 * 60;
	json_t *list, *e;
	int64_t id, total = 0;
	enum td_err err;

	if (r->json_body != NULL)
		bulk_json_to_form(r);
	if (!parse_date(date))
		form_error(r, "date", "enter a date such as 2026-03-02");
	for (i = 1; i <= BULK_ROWS; i++) {
		t = form_text(r, field(r, "ticket", i));
		d = form_text(r, field(r, "duration", i));
		if (*t == '\0' && *d == '\0' &&
		    *form_text(r, field(r, "description", i)) == '\0')
			continue;
		t = form_text(r, field(r, "time", i));
		if (*t == '\0')
			t = arena_printf(r->arena, "%02d:%02d",
					 (clock / 60) % 24, clock % 60);
		/* The row's started_at from the day and its time. */
		if (r->json_body != NULL)
			json_object_set_new(
				r->json_body, field(r, "started_at", i),
				json_string(arena_printf(r->arena, "%s %s",
							 date, t)));
		else {
			t = arena_printf(r->arena, "%s %s", date, t);
			http_params_add(r->arena, &r->form,
					field(r, "started_at", i), t,
					strlen(t));
		}
		err = read_entry(r, i, 0, &in[nused]);
		if (err != TD_OK)
			return err;
		clock += in[nused].minutes;
		used[nused++] = i;
	}
	if (nused == 0 && !form_has_errors(r))
		form_error(r, "ticket_1", "fill in at least one row");
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = bulk_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/bulk", NULL);
	}
	list = json_array();
	json_object_set_new(req_view(r), "entries", list);
	for (i = 0; i < nused; i++) {
		err = save_entry(r, &in[i], "bulk", &id, &status);
		if (err != TD_OK)
			return err;
		total += in[i].minutes;
		if (r->want_json) {
			err = entry_view(r, id, &e);
			if (err != TD_OK)
				return err;
			json_object_set_new(e, "row", json_integer(used[i]));
			json_array_append_new(list, e);
		}
	}
	if (r->want_json) {
		r->status = 201;
		return TD_OK;
	}
	form_flash(r, "ok",
		   arena_printf(r->arena, "Logged %s in %d entr%s for %s.",
				timectx_hmm(r, total), nused,
				nused == 1 ? "y" : "ies", date));
	r->redirect = arena_printf(r->arena, "/time?from=%s", date);
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* One entry: show, change, delete                                      */

/* Columns of sql_entry_lock. */
enum {
	L_ID,
	L_USER,
	L_TICKET,
	L_MINUTES,
	L_KIND,
	L_STATUS,
	L_DESCRIPTION,
	L_SERVICE,
	L_STARTED,
	L_INVOICED,
	L_SEALED,
	L_CLOSED,
	L_NUMBER,
	L_LOCAL,
};

static enum td_err entry_page(struct req *r, int64_t id)
{
	json_t *v = req_view(r), *e;
	enum td_err err = entry_view(r, id, &e);

	if (err != TD_OK)
		return err;
	json_object_set_new(v, "entry", e);
	if (json_object_get(v, "form") == NULL)
		json_object_set_new(
			v, "form",
			json_pack("{s:O, s:O, s:O, s:O, s:O}", "started_at",
				  json_object_get(e, "started_at_input"),
				  "duration", json_object_get(e, "duration"),
				  "description",
				  json_object_get(e, "description"), "service",
				  json_object_get(e, "service"), "kind",
				  json_object_get(e, "kind")));
	json_object_set_new(
		v, "kinds",
		timectx_kind_choices(json_string_value(
			json_object_get(json_object_get(v, "form"), "kind"))));
	json_object_set_new(
		v, "title",
		json_string(arena_printf(
			r->arena, "Time entry on %s",
			json_string_value(json_object_get(
				json_object_get(e, "ticket"), "ref")))));
	r->view_name = "time/entry";
	return TD_OK;
}

/* GET /time/entries/:id — the entry and its edit form; 404. */
enum td_err timeentries_show(struct req *r)
{
	return entry_page(r, route_arg_int(&r->args, "id"));
}

/* A change the entry's state forbids: 409 (403 for someone else's),
 * browsers get the entry page with the reason. */
static enum td_err refuse(struct req *r, int64_t id, enum td_err why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return why;
	err = entry_page(r, id);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", r->error_detail);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = td_status(why);
	return TD_OK;
}

/*
 * Loads and locks entry id and checks the caller may change it: 409 when
 * invoiced (locked outright) or its ticket is closed (reopen first), 403
 * for someone else's entry unless a manager; 404.
 */
static enum td_err load_for_change(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err = req_query(r, sql_entry_lock, 1, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no time entry %" PRId64, id);
	if (db_bool(*res, 0, L_INVOICED))
		return refuse(r, id,
			      req_fail(r, TD_ECONFLICT,
				       "this time is on an invoice and "
				       "locked: issue a credit note instead"));
	if (db_bool(*res, 0, L_CLOSED))
		return refuse(r, id,
			      req_fail(r, TD_ECONFLICT,
				       "T-%s is closed: reopen it to change "
				       "its time",
				       db_text(*res, 0, L_NUMBER)));
	if (db_int(*res, 0, L_USER) != timectx_user(r) && !is_manager(r))
		return refuse(r, id,
			      req_fail(r, TD_EFORBID,
				       "only its technician or a manager may "
				       "change this entry"));
	return TD_OK;
}

static json_t *locked_json(const PGresult *res)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "started_at",
			 db_text(res, 0, L_STARTED), "minutes",
			 (json_int_t)db_int(res, 0, L_MINUTES), "kind",
			 db_text(res, 0, L_KIND), "status",
			 db_text(res, 0, L_STATUS), "description",
			 db_text(res, 0, L_DESCRIPTION), "service",
			 db_text(res, 0, L_SERVICE));
}

/* After a close the entry is sealed: a change says why (audited). */
static const char *read_reason(struct req *r, const PGresult *res)
{
	const char *reason = form_text(r, "reason");

	if (db_bool(res, 0, L_SEALED) && *reason == '\0')
		form_error(r, "reason",
			   "this time was committed when the ticket closed: "
			   "say why it changes");
	else if (http_utf8_len(reason) > 500)
		form_error(r, "reason", "use at most 500 characters");
	return reason;
}

/* A form field, or the entry's own value when an API call leaves it out. */
static const char *field_or(struct req *r, const char *name,
			    const char *current)
{
	if (r->json_body != NULL && json_object_get(r->json_body, name) == NULL)
		return current;
	return form_text(r, name);
}

/*
 * POST /time/entries/:id — started_at, duration, kind, description,
 * service, and reason (required once the ticket has been closed: the
 * change is audited with who and why). A rejected entry changed by its
 * technician goes back for approval. 303 to /time (API: {entry}); 409
 * when invoiced or the ticket is closed; 403 for someone else's entry
 * unless a manager; 422; 404.
 */
enum td_err timeentries_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[7], *reason, *status, *local;
	struct entry_in in;
	json_t *before, *after, *e;
	PGresult *old, *res;
	enum td_err err;
	bool approval;

	err = load_for_change(r, id, &old);
	if (err != TD_OK || r->status != 200)
		return err;
	memset(&in, 0, sizeof(in));
	in.user_id = db_int(old, 0, L_USER);
	local = field_or(r, "started_at", db_text(old, 0, L_LOCAL));
	if (!parse_local(r, local, &in.local))
		form_error(r, "started_at",
			   "enter a date and time such as 2026-03-02 09:30");
	else if ((err = read_started(r, "started_at", &in)) != TD_OK)
		return err;
	if (r->json_body != NULL &&
	    json_object_get(r->json_body, "duration") == NULL &&
	    json_object_get(r->json_body, "minutes") == NULL)
		in.minutes = (int)db_int(old, 0, L_MINUTES);
	else
		read_duration(r, "duration", &in.minutes);
	in.kind = field_or(r, "kind", db_text(old, 0, L_KIND));
	if (!timectx_kind_valid(in.kind))
		form_error(r, "kind", "choose billable, internal or pre-paid");
	in.description =
		field_or(r, "description", db_text(old, 0, L_DESCRIPTION));
	if (http_utf8_len(in.description) > DESC_MAX)
		form_error(r, "description", "use at most 10000 characters");
	in.service = field_or(r, "service", db_text(old, 0, L_SERVICE));
	if (http_utf8_len(in.service) > SERVICE_MAX)
		form_error(r, "service", "use at most 60 characters");
	reason = read_reason(r, old);
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = entry_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/entry", entry_fields);
	}
	err = req_query(r, sql_approval, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	approval = db_bool(res, 0, 0);
	status = db_text(old, 0, L_STATUS);
	if (approval && !is_manager(r))
		status = "pending";
	else if (!strcmp(status, "rejected"))
		status = approval ? "pending" : "committed";
	params[0] = req_id(r, id);
	params[1] = in.instant;
	params[2] = arena_printf(r->arena, "%d", in.minutes);
	params[3] = in.kind;
	params[4] = in.description;
	params[5] = in.service;
	params[6] = status;
	err = req_query(r, sql_entry_update, 7, params, NULL);
	if (err != TD_OK)
		return err;
	before = locked_json(old);
	req_own_json(r, before);
	after = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s}", "started_at",
			  in.instant, "minutes", in.minutes, "kind", in.kind,
			  "status", status, "description", in.description,
			  "service", in.service);
	req_own_json(r, after);
	if (*reason != '\0')
		json_object_set_new(after, "reason", json_string(reason));
	json_object_set_new(after, "ticket_closed_before",
			    json_boolean(db_bool(old, 0, L_SEALED)));
	err = audit_write(r, "time.update", "time_entry", id, before, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		err = entry_view(r, id, &e);
		if (err == TD_OK)
			json_object_set_new(req_view(r), "entry", e);
		return err;
	}
	form_flash(r, "ok", "Time entry saved.");
	r->redirect = arena_printf(r->arena, "/tickets/%" PRId64,
				   db_int(old, 0, L_TICKET));
	return TD_OK;
}

/*
 * POST /time/entries/:id/delete [reason] — 303 to the ticket (API:
 * {deleted}); the same refusals as a change.
 */
enum td_err timeentries_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) }, *reason;
	json_t *before;
	PGresult *old;
	enum td_err err;

	err = load_for_change(r, id, &old);
	if (err != TD_OK || r->status != 200)
		return err;
	reason = read_reason(r, old);
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = entry_page(r, id);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/entry", entry_fields);
	}
	err = req_query(r, sql_entry_delete, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = locked_json(old);
	req_own_json(r, before);
	json_object_set_new(before, "ticket_id",
			    json_integer(db_int(old, 0, L_TICKET)));
	if (*reason != '\0')
		json_object_set_new(before, "reason", json_string(reason));
	err = audit_write(r, "time.delete", "time_entry", id, before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_pack("{s:I}", "id", (json_int_t)id));
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok", "Time entry deleted.");
	r->redirect = arena_printf(r->arena, "/tickets/%" PRId64,
				   db_int(old, 0, L_TICKET));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Approval                                                             */

static enum td_err approvals_page(struct req *r)
{
	const char *params[2] = { req_id(r, timectx_user(r)), NULL };
	json_t *v = req_view(r), *list = json_array();
	int64_t total = 0;
	PGresult *res, *set;
	enum td_err err;
	int i, n;

	if (timectx_user(r) == 0)
		params[0] = NULL;
	json_object_set_new(v, "entries", list);
	json_object_set_new(v, "title", json_string("Time approvals"));
	r->view_name = "time/approvals";
	err = req_query(r, sql_approval, 0, NULL, &set);
	if (err == TD_OK)
		err = req_query(r, sql_pending, 1, params, &res);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "approval_on", json_boolean(db_bool(set, 0, 0)));
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		json_array_append_new(list, timectx_entry_json(r, res, i));
		total += db_int(res, i, 10);
	}
	json_object_set_new(v, "total", minutes_json(r, total));
	return TD_OK;
}

/* GET /time/approvals — pending entries, oldest first (managers). */
enum td_err timeentries_approvals(struct req *r)
{
	return approvals_page(r);
}

/* The ids of a review: repeated "id" fields or a JSON "ids" array. */
static const char *review_ids(struct req *r, size_t *n)
{
	json_t *ids = json_array(), *a, *x;
	int64_t v;
	size_t i;

	req_own_json(r, ids);
	if (r->json_body != NULL) {
		a = json_object_get(r->json_body, "ids");
		json_array_foreach(a, i, x)
		{
			if (json_is_integer(x) && json_integer_value(x) > 0)
				json_array_append_new(
					ids,
					json_integer(json_integer_value(x)));
			else
				form_error(r, "ids", "not a time entry");
		}
	} else {
		for (i = 0; i < r->form.n; i++) {
			if (strcmp(r->form.v[i].name, "id"))
				continue;
			if (timectx_parse_id(r->form.v[i].value, &v))
				json_array_append_new(ids, json_integer(v));
			else
				form_error(r, "ids", "not a time entry");
		}
	}
	*n = json_array_size(ids);
	return req_json_text(r, ids, NULL);
}

/*
 * POST /time/approvals — action approve|reject, id (repeated; API: ids),
 * note (required to reject: the technician sees it). Entries no longer
 * pending are skipped. 303 back (API: {approved|rejected: n, ids}); 422.
 */
enum td_err timeentries_review(struct req *r)
{
	const char *action = form_text(r, "action"),
		   *note = form_text(r, "note");
	const char *params[4], *ids;
	bool approve = !strcmp(action, "approve");
	json_t *after, *done;
	PGresult *res;
	enum td_err err;
	size_t n;
	int i, m;

	ids = review_ids(r, &n);
	if (!approve && strcmp(action, "reject"))
		form_error(r, "action", "choose approve or reject");
	if (n == 0)
		form_error(r, "ids", "tick at least one entry");
	else if (n > APPROVE_MAX)
		form_error(r, "ids", "at most 500 entries at a time");
	if (!approve && *note == '\0')
		form_error(r, "note", "say why, for the technician");
	if (http_utf8_len(note) > 2000)
		form_error(r, "note", "use at most 2000 characters");
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = approvals_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/approvals", NULL);
	}
	params[0] = arena_printf(r->arena, "{%.*s}", (int)(strlen(ids) - 2),
				 ids + 1);
	params[1] = approve ? "committed" : "rejected";
	params[2] = timectx_user(r) ? req_id(r, timectx_user(r)) : NULL;
	params[3] = note;
	err = req_query(r, sql_review, 4, params, &res);
	if (err != TD_OK)
		return err;
	m = PQntuples(res);
	done = json_array();
	json_object_set_new(req_view(r), "ids", done);
	for (i = 0; i < m; i++) {
		json_array_append_new(done, json_integer(db_int(res, i, 0)));
		after = json_pack("{s:s, s:s}", "status", params[1], "note",
				  note);
		req_own_json(r, after);
		err = audit_write(r, approve ? "time.approve" : "time.reject",
				  "time_entry", db_int(res, i, 0), NULL, after);
		if (err != TD_OK)
			return err;
	}
	json_object_set_new(req_view(r), approve ? "approved" : "rejected",
			    json_integer(m));
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok",
		   arena_printf(r->arena, "%d entr%s %s.", m,
				m == 1 ? "y" : "ies",
				approve ? "approved" : "sent back"));
	r->redirect = "/time/approvals";
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Missing time                                                         */

#define MISSING_DAYS 30

/*
 * GET /time/missing — where money leaks: tickets closed in the last 30
 * days with no time, timers running longer than the tenant's limit, and
 * billable time on clients whose default kind is not billable (no
 * contract).
 */
enum td_err timeentries_missing(struct req *r)
{
	const char *params[1] = { "30" }, *kind;
	json_t *v = req_view(r), *closed = json_array(), *timers = json_array(),
	       *clients = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(v, "closed_without_time", closed);
	json_object_set_new(v, "long_timers", timers);
	json_object_set_new(v, "no_contract", clients);
	json_object_set_new(v, "days", json_integer(MISSING_DAYS));
	json_object_set_new(v, "title", json_string("Missing time"));
	r->view_name = "time/missing";
	err = req_query(r, sql_missing_closed, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			closed,
			json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:b, s:s}",
				  "id", (json_int_t)db_int(res, i, 0), "ref",
				  arena_printf(r->arena, "T-%s",
					       db_text(res, i, 1)),
				  "url",
				  arena_printf(r->arena, "/tickets/%s",
					       db_text(res, i, 0)),
				  "subject", db_text(res, i, 2), "client",
				  db_text(res, i, 3), "closed_at",
				  db_text(res, i, 4), "confirmed",
				  db_bool(res, i, 5), "assignee",
				  db_text(res, i, 6)));
	err = req_query(r, sql_missing_timers, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			timers,
			json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ref",
				  arena_printf(r->arena, "T-%s",
					       db_text(res, i, 1)),
				  "url",
				  arena_printf(r->arena, "/tickets/%s",
					       db_text(res, i, 0)),
				  "subject", db_text(res, i, 2), "technician",
				  db_text(res, i, 3), "since",
				  db_text(res, i, 4), "elapsed",
				  timectx_hmm(r, db_int(res, i, 5))));
	err = req_query(r, sql_missing_clients, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		err = timectx_default_kind(r, db_int(res, i, 0), &kind);
		if (err != TD_OK)
			return err;
		if (!strcmp(kind, "billable"))
			continue;
		json_array_append_new(
			clients,
			json_pack("{s:I, s:s, s:s, s:s, s:I}", "id",
				  (json_int_t)db_int(res, i, 0), "name",
				  db_text(res, i, 1), "url",
				  arena_printf(r->arena, "/clients/%s",
					       db_text(res, i, 0)),
				  "time", timectx_hmm(r, db_int(res, i, 2)),
				  "entries", (json_int_t)db_int(res, i, 3)));
	}
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Reports                                                              */

enum {
	R_ID,
	R_NAME,
	R_BILLABLE,
	R_INTERNAL,
	R_PREPAID,
	R_COMMITTED,
	R_PENDING,
	R_ENTRIES,
	R_BILLED,
	R_COST,
	R__MAX
};

struct report {
	const char *from, *to, *by;
	PGresult *res;
	int64_t sum[R__MAX];
};

/* Reads from/to/by and runs the query; 422 for bad input. */
static enum td_err run_report(struct req *r, struct report *rep)
{
	const char *params[3];
	PGresult *now;
	enum td_err err;
	int i, n, c;

	err = today(r, &now);
	if (err != TD_OK)
		return err;
	rep->from = http_params_get(&r->query_params, "from");
	rep->to = http_params_get(&r->query_params, "to");
	rep->by = http_params_get(&r->query_params, "by");
	if (rep->from == NULL || *rep->from == '\0')
		rep->from = db_text(now, 0, 2);
	if (rep->to == NULL || *rep->to == '\0')
		rep->to = db_text(now, 0, 0);
	if (rep->by == NULL || *rep->by == '\0')
		rep->by = "technician";
	if (!parse_date(rep->from))
		form_error(r, "from", "enter a date such as 2026-03-01");
	if (!parse_date(rep->to))
		form_error(r, "to", "enter a date such as 2026-03-31");
	else if (parse_date(rep->from) && strcmp(rep->from, rep->to) > 0)
		form_error(r, "to", "the end is before the start");
	if (strcmp(rep->by, "technician") && strcmp(rep->by, "client") &&
	    strcmp(rep->by, "type"))
		form_error(r, "by", "choose technician, client or type");
	if (form_has_errors(r))
		return TD_EINPUT;
	params[0] = timectx_user(r) ? req_id(r, timectx_user(r)) : NULL;
	params[1] = rep->from;
	params[2] = rep->to;
	err = req_query(r,
			!strcmp(rep->by, "client") ? sql_report_client :
			!strcmp(rep->by, "type")   ? sql_report_type :
						     sql_report_user,
			3, params, &rep->res);
	if (err != TD_OK)
		return err;
	memset(rep->sum, 0, sizeof(rep->sum));
	n = PQntuples(rep->res);
	for (i = 0; i < n; i++)
		for (c = R_BILLABLE; c < R__MAX; c++)
			rep->sum[c] += db_int(rep->res, i, c);
	return TD_OK;
}

static json_t *report_row(struct req *r, const int64_t *v)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:s}",
			 "billable", minutes_json(r, v[R_BILLABLE]), "internal",
			 minutes_json(r, v[R_INTERNAL]), "prepaid",
			 minutes_json(r, v[R_PREPAID]), "total",
			 minutes_json(r, v[R_COMMITTED]), "pending",
			 minutes_json(r, v[R_PENDING]), "entries",
			 (json_int_t)v[R_ENTRIES], "billed",
			 minutes_json(r, v[R_BILLED]), "unbilled",
			 minutes_json(r, v[R_BILLABLE] - v[R_BILLED]), "cost",
			 money_text(r, v[R_COST]));
}

/*
 * GET /reports/time [from, to (local dates; default this month), by=
 * technician|client|type] — committed time by kind per technician,
 * client or ticket type (incident, project), pending beside it, billable
 * time already on invoices against the rest (logged vs billed), and
 * totals that are the sum of the rows (managers).
 */
enum td_err timeentries_report(struct req *r)
{
	json_t *v = req_view(r), *rows = json_array(), *row;
	struct report rep;
	int64_t vals[R__MAX];
	enum td_err err;
	int i, n, c;

	json_object_set_new(v, "rows", rows);
	json_object_set_new(v, "title", json_string("Time report"));
	r->view_name = "time/report";
	err = run_report(r, &rep);
	if (err == TD_EINPUT) {
		json_object_set_new(v, "form",
				    json_pack("{s:s, s:s}", "from",
					      rep.from ? rep.from : "", "to",
					      rep.to ? rep.to : ""));
		return form_reject(r, "time/report", NULL);
	}
	if (err != TD_OK)
		return err;
	n = PQntuples(rep.res);
	for (i = 0; i < n; i++) {
		for (c = 0; c < R__MAX; c++)
			vals[c] = c >= R_BILLABLE ? db_int(rep.res, i, c) : 0;
		row = report_row(r, vals);
		json_object_set_new(row, "id",
				    json_integer(db_int(rep.res, i, R_ID)));
		json_object_set_new(row, "name",
				    json_string(db_text(rep.res, i, R_NAME)));
		json_array_append_new(rows, row);
	}
	json_object_set_new(v, "totals", report_row(r, rep.sum));
	json_object_set_new(v, "form",
			    json_pack("{s:s, s:s, s:s}", "from", rep.from, "to",
				      rep.to, "by", rep.by));
	json_object_set_new(v, "by_client",
			    json_boolean(!strcmp(rep.by, "client")));
	json_object_set_new(v, "by_type",
			    json_boolean(!strcmp(rep.by, "type")));
	json_object_set_new(v, "by_technician",
			    json_boolean(!strcmp(rep.by, "technician")));
	json_object_set_new(
		v, "csv_url",
		json_string(arena_printf(
			r->arena, "/reports/time.csv?from=%s&to=%s&by=%s",
			rep.from, rep.to, rep.by)));
	return TD_OK;
}

/* minutes as decimal hours "1.50" (exact: minutes are whole). */
static const char *hours_text(struct req *r, int64_t m)
{
	return arena_printf(r->arena, "%" PRId64 ".%02" PRId64, m / 60,
			    (m % 60) * 100 / 60);
}

/* GET /reports/time.csv — the same report as CSV, minutes and hours. */
enum td_err timeentries_report_csv(struct req *r)
{
	static const char *const head[] = { "name",
					    "billable_minutes",
					    "internal_minutes",
					    "prepaid_minutes",
					    "total_minutes",
					    "pending_minutes",
					    "entries",
					    "billed_minutes",
					    "cost",
					    "total_hours" };
	const char *f[10];
	struct report rep;
	struct sbuf sb;
	enum td_err err;
	int i, n, c;

	err = run_report(r, &rep);
	if (err != TD_OK)
		return err;
	n = PQntuples(rep.res);
	sbuf_init(&sb, r->arena, 256 + (size_t)n * 96);
	sbuf_adds(&sb, "\xef\xbb\xbf");
	csv_add_row(&sb, head, 10);
	for (i = 0; i <= n; i++) {
		f[0] = i < n ? db_text(rep.res, i, R_NAME) : "Total";
		for (c = R_BILLABLE; c < R_COST; c++)
			f[c - 1] = arena_printf(r->arena, "%" PRId64,
						i < n ? db_int(rep.res, i, c) :
							rep.sum[c]);
		f[R_COST - 1] =
			money_text(r, i < n ? db_int(rep.res, i, R_COST) :
					      rep.sum[R_COST]);
		f[9] = hours_text(r, i < n ? db_int(rep.res, i, R_COMMITTED) :
					     rep.sum[R_COMMITTED]);
		csv_add_row(&sb, f, 10);
	}
	r->body_out = sb.buf;
	r->body_out_len = sb.len;
	r->body_type = "text/csv; charset=utf-8";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena,
				"attachment; filename=\"time-by-%s-%s-%s.csv\"",
				rep.by, rep.from, rep.to));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Settings: approval, the long-timer limit, rates                     */

static enum td_err settings_page(struct req *r)
{
	json_t *v = req_view(r), *users = json_array(), *u;
	PGresult *set, *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_approval, 0, NULL, &set);
	if (err == TD_OK)
		err = req_query(r, sql_settings_users, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	view_settings_page(r, "Time", "time/settings", "/settings/time");
	if (json_object_get(v, "form") == NULL)
		json_object_set_new(v, "form",
				    json_pack("{s:b, s:s}", "approval",
					      db_bool(set, 0, 0), "hours",
					      db_text(set, 0, 1)));
	json_object_set_new(v, "users", users);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		u = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:b}", "id",
			      (json_int_t)db_int(res, i, 0), "name",
			      db_text(res, i, 1), "role", db_text(res, i, 2),
			      "hourly_rate", db_text(res, i, 3), "cost_rate",
			      db_text(res, i, 4), "time_zone",
			      db_text(res, i, 5), "active", db_bool(res, i, 6));
		json_object_set_new(
			u, "action",
			json_string(arena_printf(r->arena,
						 "/settings/users/%s/rates",
						 db_text(res, i, 0))));
		json_array_append_new(users, u);
	}
	return TD_OK;
}

/* GET /settings/time — approval, the long-timer limit, rates (admins). */
enum td_err timeentries_settings(struct req *r)
{
	return settings_page(r);
}

/*
 * POST /settings/time — approval (checkbox), hours (1-168: a timer
 * running longer shows on the missing-time page). 303 (API: {settings});
 * 422.
 */
enum td_err timeentries_settings_save(struct req *r)
{
	const char *hours = form_text(r, "hours"), *params[2];
	bool approval = form_flag(r, "approval");
	json_t *before, *after;
	PGresult *old;
	enum td_err err;
	int64_t h;

	if (!timectx_parse_id(hours, &h) || h > 168)
		form_error(r, "hours", "enter 1 to 168 hours");
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = settings_page(r);
			if (err != TD_OK)
				return err;
			json_object_set_new(req_view(r), "form",
					    json_pack("{s:b, s:s}", "approval",
						      approval, "hours",
						      hours));
		}
		return form_reject(r, "time/settings", NULL);
	}
	err = req_query(r, sql_approval, 0, NULL, &old);
	if (err != TD_OK)
		return err;
	params[0] = approval ? "true" : "false";
	params[1] = req_id(r, h);
	err = req_query(r, sql_settings_save, 2, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:b, s:I}", "time_approval", db_bool(old, 0, 0),
			   "timer_alert_hours", (json_int_t)db_int(old, 0, 1));
	req_own_json(r, before);
	after = json_pack("{s:b, s:I}", "time_approval", approval,
			  "timer_alert_hours", (json_int_t)h);
	req_own_json(r, after);
	err = audit_write(r, "settings.time", "tenant", r->auth.tenant_id,
			  before, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "settings", after);
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok", "Time settings saved.");
	r->redirect = "/settings/time";
	return TD_OK;
}

/* A rate field: "" is NULL (the contract's rate), else money. */
static const char *read_rate(struct req *r, const char *name)
{
	const char *s = form_text(r, name);
	int64_t cents;

	if (*s == '\0')
		return NULL;
	if (!parse_money(s, &cents)) {
		form_error(r, name,
			   "enter an amount such as 85.00, or leave "
			   "it empty for the contract's rate");
		return NULL;
	}
	return money_text(r, cents);
}

/*
 * POST /settings/users/:id/rates — hourly_rate and cost_rate (per hour;
 * empty: the contract's rate) and time_zone (empty: the workspace's).
 * 303 (API: {user}); 422; 404 for another tenant's user.
 */
enum td_err timeentries_rates_save(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *hourly = read_rate(r, "hourly_rate");
	const char *cost = read_rate(r, "cost_rate");
	const char *zone = form_text(r, "time_zone"), *params[4];
	json_t *before, *after;
	PGresult *old, *res;
	enum td_err err;

	params[0] = req_id(r, id);
	err = req_query(r, sql_rates_old, 1, params, &old);
	if (err != TD_OK)
		return err;
	if (PQntuples(old) != 1)
		return req_fail(r, TD_ENOENT, "no user %" PRId64, id);
	if (*zone != '\0') {
		params[1] = zone;
		err = req_query(r, sql_zone_known, 1, params + 1, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) == 0 || strlen(zone) > 64)
			form_error(r, "time_zone",
				   "use a zone name such as Europe/London");
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = settings_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "time/settings", NULL);
	}
	params[1] = hourly;
	params[2] = cost;
	params[3] = *zone != '\0' ? zone : NULL;
	err = req_query(r, sql_rates_save, 4, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack(
		"{s:o, s:o, s:o}", "hourly_rate",
		db_isnull(old, 0, 1) ? json_null() :
				       json_string(db_text(old, 0, 1)),
		"cost_rate",
		db_isnull(old, 0, 2) ? json_null() :
				       json_string(db_text(old, 0, 2)),
		"time_zone",
		db_isnull(old, 0, 3) ? json_null() :
				       json_string(db_text(old, 0, 3)));
	req_own_json(r, before);
	after = json_pack("{s:o, s:o, s:o}", "hourly_rate",
			  hourly ? json_string(hourly) : json_null(),
			  "cost_rate", cost ? json_string(cost) : json_null(),
			  "time_zone", *zone ? json_string(zone) : json_null());
	req_own_json(r, after);
	err = audit_write(r, "user.rates", "user", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		req_view(r), "user",
		json_pack("{s:I, s:s, s:O, s:O, s:O}", "id", (json_int_t)id,
			  "name", db_text(old, 0, 0), "hourly_rate",
			  json_object_get(after, "hourly_rate"), "cost_rate",
			  json_object_get(after, "cost_rate"), "time_zone",
			  json_object_get(after, "time_zone")));
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok",
		   arena_printf(r->arena, "Rates of %s saved.",
				db_text(old, 0, 0)));
	r->redirect = "/settings/time";
	return TD_OK;
}

/*
 * POST /time/passive [passive_timer] — the caller's beta setting: opening
 * a ticket assigned to them starts (or resumes) a timer, leaving the page
 * pauses it. 303 to /time (API: {passive_timer}); 403 for API keys.
 */
enum td_err timeentries_passive_save(struct req *r)
{
	bool on = form_flag(r, "passive_timer");
	const char *params[2];
	json_t *after;
	enum td_err err;

	if (timectx_user(r) == 0)
		return req_fail(r, TD_EFORBID,
				"passive timers belong to people: sign in");
	params[0] = req_id(r, timectx_user(r));
	params[1] = on ? "true" : "false";
	err = req_query(r, sql_passive_set, 2, params, NULL);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:b}", "passive_timer", on);
	req_own_json(r, after);
	err = audit_write(r, "user.passive_timer", "user", timectx_user(r),
			  NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "settings", after);
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok",
		   on ? "Passive timer on: opening a ticket assigned to you "
			"starts its timer." :
			"Passive timer off.");
	r->redirect = "/time";
	return TD_OK;
}

enum td_err timeentries_client_json(struct req *r, int64_t client_id,
				    json_t *into)
{
	const char *params[1] = { req_id(r, client_id) };
	int64_t v[R__MAX];
	PGresult *res;
	enum td_err err;
	int c;

	err = req_query(r, sql_client_month, 1, params, &res);
	if (err != TD_OK)
		return err;
	for (c = 0; c < R__MAX; c++)
		v[c] = c >= R_BILLABLE ? db_int(res, 0, c) : 0;
	json_object_set_new(into, "time_month", report_row(r, v));
	return TD_OK;
}
