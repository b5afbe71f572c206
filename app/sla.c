/* sla.c: SLA tiers (settings), the SLA box of a ticket, the SLA report */
#include "config.h"

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "csv.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "sla.h"
#include "ticketctx.h"
#include "view.h"
#include "banned.h"

/* ------------------------------------------------------------------ */
/* SQL                                                                  */

#define TIER_COLS                                                               \
	"t.id, t.name, t.is_fallback, t.response_minutes[1],"                   \
	" t.response_minutes[2], t.response_minutes[3], t.response_minutes[4]," \
	" t.resolution_minutes[1], t.resolution_minutes[2],"                    \
	" t.resolution_minutes[3], t.resolution_minutes[4], t.calendar,"        \
	" t.time_zone, t.pause_on_waiting, t.vip_mode,"                         \
	" t.vip_response_minutes, t.vip_resolution_minutes, t.warn_percent,"    \
	" (SELECT count(*) FROM tickets k WHERE k.tenant_id = t.tenant_id"      \
	" AND k.sla_tier_id = t.id)," HOURS("t.opens") "," HOURS("t.closes")
/* A time[] of the 7 weekdays as "09:00,,17:30,..." ("" when closed). */
#define HOURS(col)                                                             \
	" (SELECT string_agg(coalesce(CASE WHEN h = '24:00' THEN '24:00'"      \
	" ELSE to_char(h, 'HH24:MI') END, ''), ',' ORDER BY k)"                \
	" FROM unnest(" col ") WITH ORDINALITY AS u (h, k))"

static const char sql_tiers[] =
	"SELECT " TIER_COLS " FROM sla_tiers t WHERE t.tenant_id = app_tenant()"
	" ORDER BY t.is_fallback, t.position, lower(t.name), t.id";
static const char sql_tier[] =
	"SELECT " TIER_COLS " FROM sla_tiers t WHERE t.tenant_id = app_tenant()"
	" AND t.id = $1 FOR UPDATE";
static const char sql_holidays[] =
	"SELECT id, day::text, name, to_char(day, 'Dy DD Mon YYYY') FROM sla_holidays"
	" WHERE tenant_id = app_tenant() AND tier_id = $1 ORDER BY day";
static const char sql_name_taken[] =
	"SELECT 1 FROM sla_tiers WHERE tenant_id = app_tenant()"
	" AND lower(name) = lower($1) AND id IS DISTINCT FROM $2::bigint";
static const char sql_tz_known[] =
	"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)";
/* A new tier copies another one: targets, calendar, hours and holidays. */
static const char sql_tier_copy[] =
	"WITH n AS (INSERT INTO sla_tiers (tenant_id, name, position,"
	" response_minutes, resolution_minutes, calendar, time_zone,"
	" pause_on_waiting, vip_mode, vip_response_minutes,"
	" vip_resolution_minutes, warn_percent, opens, closes)"
	" SELECT tenant_id, $2, (SELECT coalesce(max(position), 0) + 1"
	" FROM sla_tiers WHERE tenant_id = app_tenant()), response_minutes,"
	" resolution_minutes, calendar, time_zone, pause_on_waiting, vip_mode,"
	" vip_response_minutes, vip_resolution_minutes, warn_percent, opens,"
	" closes FROM sla_tiers WHERE tenant_id = app_tenant() AND id = $1"
	" RETURNING id),"
	" d AS (INSERT INTO sla_holidays (tenant_id, tier_id, day, name)"
	" SELECT app_tenant(), n.id, d.day, d.name FROM n, sla_holidays d"
	" WHERE d.tenant_id = app_tenant() AND d.tier_id = $1)"
	" SELECT id FROM n";
static const char sql_fallback_id[] =
	"SELECT id FROM sla_tiers WHERE tenant_id = app_tenant() AND is_fallback";
static const char sql_fallback_clear[] =
	"UPDATE sla_tiers SET is_fallback = false WHERE tenant_id = app_tenant()"
	" AND is_fallback AND id <> $1";
static const char sql_tier_update[] =
	"UPDATE sla_tiers SET name = $2, is_fallback = $3,"
	" response_minutes = ARRAY[$4, $5, $6, $7]::int[],"
	" resolution_minutes = ARRAY[$8, $9, $10, $11]::int[], calendar = $12,"
	" time_zone = $13, pause_on_waiting = $14, vip_mode = $15,"
	" vip_response_minutes = $16, vip_resolution_minutes = $17,"
	" warn_percent = $18, opens = $19::time[], closes = $20::time[],"
	" updated_at = now() WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_savepoint[] = "SAVEPOINT sla_tier_delete";
static const char sql_rollback_to[] = "ROLLBACK TO SAVEPOINT sla_tier_delete";
static const char sql_tier_delete[] =
	"DELETE FROM sla_tiers WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_holiday_new[] =
	"INSERT INTO sla_holidays (tenant_id, tier_id, day, name)"
	" VALUES (app_tenant(), $1, $2::date, $3) RETURNING id";
static const char sql_holiday_delete[] =
	"DELETE FROM sla_holidays WHERE tenant_id = app_tenant() AND id = $1"
	" RETURNING tier_id, day::text, name";

/*
 * The report: tickets created in [$1, $2] (local dates in the tenant's
 * time zone), grouped by $3 (client, tier or priority). A clock is met or
 * breached once it stopped or its due time passed; a clock still running
 * in time counts as neither. Rates are per mille (integers).
 */
static const char sql_report[] =
	"WITH z AS (SELECT time_zone FROM tenants WHERE id = app_tenant()),"
	" k AS (SELECT CASE $3 WHEN 'client' THEN c.id WHEN 'tier' THEN r.id"
	" ELSE t.priority END AS key,"
	" CASE $3 WHEN 'client' THEN c.name WHEN 'tier' THEN r.name"
	" ELSE 'P' || t.priority END AS label,"
	" CASE $3 WHEN 'client' THEN lower(c.name) WHEN 'tier' THEN lower(r.name)"
	" ELSE t.priority::text END AS sort,"
	" coalesce(t.first_response_at, t.closed_at) <= t.response_due_at AS rm,"
	" coalesce(t.first_response_at, t.closed_at, t.sla_paused_at, now())"
	" > t.response_due_at AS rb,"
	" t.closed_at <= t.resolution_due_at AS sm,"
	" coalesce(t.closed_at, t.sla_paused_at, now()) > t.resolution_due_at AS sb"
	" FROM tickets t CROSS JOIN z"
	" JOIN clients c ON c.tenant_id = t.tenant_id AND c.id = t.client_id"
	" JOIN sla_tiers r ON r.tenant_id = t.tenant_id AND r.id = t.sla_tier_id"
	" WHERE t.tenant_id = app_tenant() AND t.merged_into IS NULL"
	" AND t.created_at >= $1::date::timestamp AT TIME ZONE z.time_zone"
	" AND t.created_at < ($2::date + 1)::timestamp AT TIME ZONE z.time_zone)"
	" SELECT label, count(*), count(*) FILTER (WHERE rm),"
	" count(*) FILTER (WHERE rb), count(*) FILTER (WHERE sm),"
	" count(*) FILTER (WHERE sb) FROM k GROUP BY key, label, sort"
	" ORDER BY sort, label, key";
static const char sql_report_default[] =
	"SELECT (now() AT TIME ZONE time_zone)::date - 29,"
	" (now() AT TIME ZONE time_zone)::date FROM tenants WHERE id = app_tenant()";
static const char sql_period_ok[] =
	"SELECT $1::date <= $2::date, $2::date - $1::date <= 366";

/* ------------------------------------------------------------------ */
/* Tiers                                                                */

#define MINUTES_MAX  5256000 /* ten years */
#define NAME_MAX_LEN 60

enum tcol {
	TC_ID,
	TC_NAME,
	TC_FALLBACK,
	TC_RESPONSE,			 /* 4 columns */
	TC_RESOLUTION = TC_RESPONSE + 4, /* 4 columns */
	TC_CALENDAR = TC_RESOLUTION + 4,
	TC_TZ,
	TC_PAUSE,
	TC_VIP_MODE,
	TC_VIP_RESPONSE,
	TC_VIP_RESOLUTION,
	TC_WARN,
	TC_TICKETS,
	TC_OPENS,
	TC_CLOSES,
};

/* A tier as stored or as submitted (times "HH:MM", "" when closed). */
struct tier {
	int64_t id;
	const char *name;
	bool is_fallback;
	long response[4];
	long resolution[4];
	const char *calendar;
	const char *time_zone;
	bool pause_on_waiting;
	const char *vip_mode;
	long vip_response; /* 0: none */
	long vip_resolution;
	long warn_percent;
	const char *opens[7];
	const char *closes[7];
	int64_t tickets;
};

static const char *const day_names[7] = { "Monday",   "Tuesday", "Wednesday",
					  "Thursday", "Friday",	 "Saturday",
					  "Sunday" };
static const char *const vip_modes[3] = { "none", "bump", "targets" };
static const char *const vip_labels[3] = { "No special handling",
					   "Raise the priority by one",
					   "Use the VIP targets below" };

/* "09:00,,17:30,..." into 7 strings ("" when closed). */
static void split_days(struct arena *a, const char *s, const char **out)
{
	const char *e;
	int k;

	for (k = 0; k < 7; k++) {
		e = strchr(s, ',');
		if (e == NULL)
			e = s + strlen(s);
		out[k] = arena_strndup(a, s, (size_t)(e - s));
		s = *e ? e + 1 : e;
	}
}

static void tier_from_row(struct arena *arena, const PGresult *res, int i,
			  struct tier *t)
{
	int k;

	memset(t, 0, sizeof(*t));
	t->id = db_int(res, i, TC_ID);
	t->name = db_text(res, i, TC_NAME);
	t->is_fallback = db_bool(res, i, TC_FALLBACK);
	for (k = 0; k < 4; k++) {
		t->response[k] = (long)db_int(res, i, TC_RESPONSE + k);
		t->resolution[k] = (long)db_int(res, i, TC_RESOLUTION + k);
	}
	t->calendar = db_text(res, i, TC_CALENDAR);
	t->time_zone = db_text(res, i, TC_TZ);
	t->pause_on_waiting = db_bool(res, i, TC_PAUSE);
	t->vip_mode = db_text(res, i, TC_VIP_MODE);
	t->vip_response = (long)db_int(res, i, TC_VIP_RESPONSE);
	t->vip_resolution = (long)db_int(res, i, TC_VIP_RESOLUTION);
	t->warn_percent = (long)db_int(res, i, TC_WARN);
	t->tickets = db_int(res, i, TC_TICKETS);
	split_days(arena, db_text(res, i, TC_OPENS), t->opens);
	split_days(arena, db_text(res, i, TC_CLOSES), t->closes);
}

/* A locked tier of the tenant with its hours; 404 if none. */
static enum td_err load_tier(struct req *r, int64_t id, struct tier *t)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_tier, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no SLA tier %" PRId64, id);
	tier_from_row(r->arena, res, 0, t);
	return TD_OK;
}

static json_t *minutes_array(const long *v)
{
	return json_pack("[I, I, I, I]", (json_int_t)v[0], (json_int_t)v[1],
			 (json_int_t)v[2], (json_int_t)v[3]);
}

static json_t *opt_minutes(long v)
{
	return v > 0 ? json_integer(v) : json_null();
}

/* The tier as the API shows it (and as the audit log records it). */
static json_t *tier_json(const struct tier *t)
{
	json_t *hours = json_array();
	int d;

	for (d = 0; d < 7; d++)
		json_array_append_new(
			hours, json_pack("{s:i, s:s, s:s, s:s}", "day", d + 1,
					 "day_name", day_names[d], "opens",
					 t->opens[d], "closes", t->closes[d]));
	return json_pack(
		"{s:I, s:s, s:b, s:o, s:o, s:s, s:s, s:b, s:s, s:o, s:o, s:I,"
		" s:o}",
		"id", (json_int_t)t->id, "name", t->name, "is_fallback",
		t->is_fallback, "response_minutes", minutes_array(t->response),
		"resolution_minutes", minutes_array(t->resolution), "calendar",
		t->calendar, "time_zone", t->time_zone, "pause_on_waiting",
		t->pause_on_waiting, "vip_mode", t->vip_mode,
		"vip_response_minutes", opt_minutes(t->vip_response),
		"vip_resolution_minutes", opt_minutes(t->vip_resolution),
		"warn_percent", (json_int_t)t->warn_percent, "hours", hours);
}

/* "90 min", "4 h", "2 d 4 h" for a target in minutes. */
static const char *target_text(struct req *r, long m)
{
	if (m < 60)
		return arena_printf(r->arena, "%ld min", m);
	if (m < 48 * 60)
		return m % 60 ? arena_printf(r->arena, "%ld h %ld min", m / 60,
					     m % 60) :
				arena_printf(r->arena, "%ld h", m / 60);
	return m / 60 % 24 ? arena_printf(r->arena, "%ld d %ld h", m / 1440,
					  m / 60 % 24) :
			     arena_printf(r->arena, "%ld d", m / 1440);
}

static const char *calendar_text(struct req *r, const struct tier *t)
{
	if (!strcmp(t->calendar, "24x7"))
		return "24×7";
	return arena_printf(r->arena, "Business hours, %s", t->time_zone);
}

/* GET /settings/sla — every tier, and the form that adds one. */
static enum td_err list_page(struct req *r)
{
	json_t *v = req_view(r), *list = json_array(), *item, *targets;
	struct tier t;
	PGresult *res;
	enum td_err err;
	int i, k;

	json_object_set_new(v, "tiers", list);
	err = req_query(r, sql_tiers, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(res); i++) {
		tier_from_row(r->arena, res, i, &t);
		item = tier_json(&t);
		json_object_del(item, "hours");
		targets = json_array();
		for (k = 0; k < 4; k++)
			json_array_append_new(
				targets,
				json_pack("{s:s, s:s, s:s, s:s}", "sep",
					  k > 0 ? " · " : "", "priority",
					  ticketctx_priority_label(k + 1),
					  "response",
					  target_text(r, t.response[k]),
					  "resolution",
					  target_text(r, t.resolution[k])));
		json_object_set_new(item, "targets", targets);
		json_object_set_new(item, "calendar_text",
				    json_string(calendar_text(r, &t)));
		json_object_set_new(item, "tickets", json_integer(t.tickets));
		json_object_set_new(
			item, "href",
			json_string(arena_printf(
				r->arena, "/settings/sla/%" PRId64, t.id)));
		json_array_append_new(list, item);
	}
	view_settings_page(r, "SLA tiers", "settings/sla", "/settings/sla");
	return TD_OK;
}

enum td_err sla_settings(struct req *r)
{
	return list_page(r);
}

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/* A whole decimal number in [lo, hi]; false for anything else. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (*s == '\0' || *s == '+' || *s == '-' || *s == ' ')
		return false;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* "HH:MM" (00:00 to 24:00); false for anything else. */
static bool time_ok(const char *s)
{
	int h, m;

	if (strlen(s) != 5 || s[2] != ':')
		return false;
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[3] < '0' || s[3] > '9' || s[4] < '0' || s[4] > '9')
		return false;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	return (h < 24 && m < 60) || (h == 24 && m == 0);
}

/* The 7 times as a time[] literal: {09:00,NULL,...}. */
static const char *time_array(struct req *r, const char *const *v)
{
	struct sbuf sb;
	int k;

	sbuf_init(&sb, r->arena, 96);
	sbuf_addch(&sb, '{');
	for (k = 0; k < 7; k++) {
		if (k > 0)
			sbuf_addch(&sb, ',');
		sbuf_adds(&sb, *v[k] ? v[k] : "NULL");
	}
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

/* A real calendar date written YYYY-MM-DD (years 1900 to 9999). */
static bool date_ok(const char *s)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };
	int y, m, d, i, max;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1900 || m < 1 || m > 12 || d < 1)
		return false;
	max = days[m - 1];
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		max = 29;
	return d <= max;
}

/*
 * A submitted field. An API caller may leave fields out (they keep
 * their value, old); a browser form sends them all.
 */
static const char *input(struct req *r, const char *name, const char *old)
{
	if (r->json_body != NULL && json_object_get(r->json_body, name) == NULL)
		return old;
	return form_text(r, name);
}

static bool input_flag(struct req *r, const char *name, bool old)
{
	if (r->json_body != NULL && json_object_get(r->json_body, name) == NULL)
		return old;
	return form_flag(r, name);
}

/*
 * Target k (0..3) of kind ("response" or "resolution"): the field
 * "response_1" .. "response_4", or for the API also element k of the
 * array "response_minutes".
 */
static const char *target_input(struct req *r, const char *kind, int k,
				long old)
{
	const char *name = arena_printf(r->arena, "%s_%d", kind, k + 1);
	json_t *arr, *e;

	if (r->json_body != NULL) {
		arr = json_object_get(
			r->json_body,
			arena_printf(r->arena, "%s_minutes", kind));
		if (json_is_array(arr)) {
			e = json_array_get(arr, (size_t)k);
			if (json_is_integer(e))
				return arena_printf(r->arena,
						    "%" JSON_INTEGER_FORMAT,
						    json_integer_value(e));
			return e == NULL ? "" : "?";
		}
	}
	return input(r, name, arena_printf(r->arena, "%ld", old));
}

/* Reads and checks the edit form into t (which holds the stored tier). */
static enum td_err read_tier(struct req *r, struct tier *t)
{
	const char *s, *params[2], *name;
	bool any_open = false;
	PGresult *res;
	enum td_err err;
	int k, d;

	t->name = input(r, "name", t->name);
	if (!len_between(t->name, 1, NAME_MAX_LEN)) {
		form_error(r, "name", "enter a name of 1 to 60 characters");
	} else {
		params[0] = t->name;
		params[1] = req_id(r, t->id);
		err = req_query(r, sql_name_taken, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(r, "name", "another tier has this name");
	}
	for (k = 0; k < 4; k++) {
		name = arena_printf(r->arena, "response_%d", k + 1);
		s = target_input(r, "response", k, t->response[k]);
		if (!parse_long(s, 1, MINUTES_MAX, &t->response[k]))
			form_error(
				r, name,
				"enter minutes, a whole number from 1 to 5256000");
		name = arena_printf(r->arena, "resolution_%d", k + 1);
		s = target_input(r, "resolution", k, t->resolution[k]);
		if (!parse_long(s, 1, MINUTES_MAX, &t->resolution[k]))
			form_error(
				r, name,
				"enter minutes, a whole number from 1 to 5256000");
		else if (t->resolution[k] < t->response[k])
			form_error(
				r, name,
				"the resolution target cannot be shorter than the response target");
	}
	t->calendar = input(r, "calendar", t->calendar);
	if (strcmp(t->calendar, "24x7") && strcmp(t->calendar, "business"))
		form_error(r, "calendar", "choose 24x7 or business");
	t->time_zone = input(r, "time_zone", t->time_zone);
	params[0] = t->time_zone;
	err = req_query(r, sql_tz_known, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (*t->time_zone == '\0' || !db_bool(res, 0, 0))
		form_error(r, "time_zone",
			   "enter an IANA time zone such as Europe/London");
	t->pause_on_waiting =
		input_flag(r, "pause_on_waiting", t->pause_on_waiting);
	t->vip_mode = input(r, "vip_mode", t->vip_mode);
	for (k = 0; k < 3; k++)
		if (!strcmp(t->vip_mode, vip_modes[k]))
			break;
	if (k == 3)
		form_error(r, "vip_mode", "choose none, bump or targets");
	s = input(r, "vip_response_minutes",
		  t->vip_response > 0 ?
			  arena_printf(r->arena, "%ld", t->vip_response) :
			  "");
	t->vip_response = 0;
	if (*s != '\0' && !parse_long(s, 1, MINUTES_MAX, &t->vip_response))
		form_error(r, "vip_response_minutes",
			   "enter minutes, a whole number from 1 to 5256000");
	s = input(r, "vip_resolution_minutes",
		  t->vip_resolution > 0 ?
			  arena_printf(r->arena, "%ld", t->vip_resolution) :
			  "");
	t->vip_resolution = 0;
	if (*s != '\0' && !parse_long(s, 1, MINUTES_MAX, &t->vip_resolution))
		form_error(r, "vip_resolution_minutes",
			   "enter minutes, a whole number from 1 to 5256000");
	if (!strcmp(t->vip_mode, "targets")) {
		if (t->vip_response == 0)
			form_error(r, "vip_response_minutes",
				   "give the VIP response target");
		if (t->vip_resolution == 0)
			form_error(r, "vip_resolution_minutes",
				   "give the VIP resolution target");
	}
	s = input(r, "warn_percent",
		  arena_printf(r->arena, "%ld", t->warn_percent));
	if (!parse_long(s, 1, 99, &t->warn_percent))
		form_error(r, "warn_percent",
			   "enter a percentage from 1 to 99");
	for (d = 0; d < 7; d++) {
		t->opens[d] =
			input(r, arena_printf(r->arena, "opens_%d", d + 1),
			      t->opens[d]);
		t->closes[d] =
			input(r, arena_printf(r->arena, "closes_%d", d + 1),
			      t->closes[d]);
		if (*t->opens[d] == '\0' && *t->closes[d] == '\0')
			continue;
		name = arena_printf(r->arena, "opens_%d", d + 1);
		if (!time_ok(t->opens[d]) || !strcmp(t->opens[d], "24:00") ||
		    !time_ok(t->closes[d]))
			form_error(
				r, name,
				"enter opening and closing times as HH:MM, or leave both empty for closed");
		else if (strcmp(t->opens[d], t->closes[d]) >= 0)
			form_error(
				r, name,
				"the closing time must be after the opening time");
		else
			any_open = true;
	}
	if (!strcmp(t->calendar, "business") && !any_open)
		form_error(
			r, "calendar",
			"a business-hours calendar needs opening hours on at least one day");
	if (t->is_fallback && r->json_body != NULL &&
	    json_object_get(r->json_body, "is_fallback") != NULL &&
	    !form_flag(r, "is_fallback"))
		form_error(r, "is_fallback",
			   "make another tier the fallback instead");
	else if (!t->is_fallback)
		t->is_fallback = input_flag(r, "is_fallback", false);
	return TD_OK;
}

static const char *const tier_fields[] = { "name",
					   "calendar",
					   "time_zone",
					   "vip_mode",
					   "warn_percent",
					   "response_1",
					   "response_2",
					   "response_3",
					   "response_4",
					   "resolution_1",
					   "resolution_2",
					   "resolution_3",
					   "resolution_4",
					   "opens_1",
					   "opens_2",
					   "opens_3",
					   "opens_4",
					   "opens_5",
					   "opens_6",
					   "opens_7",
					   "closes_1",
					   "closes_2",
					   "closes_3",
					   "closes_4",
					   "closes_5",
					   "closes_6",
					   "closes_7",
					   "vip_response_minutes",
					   "vip_resolution_minutes",
					   NULL };

/*
 * The edit page of tier t: its form (from t, which may hold what was
 * typed), the hours per day, the holidays.
 */
static enum td_err edit_page(struct req *r, const struct tier *t, bool typed)
{
	const char *params[1] = { req_id(r, t->id) };
	json_t *v = req_view(r), *form = json_object(), *days, *list, *opts;
	const char *s;
	PGresult *res;
	enum td_err err;
	int k;

	json_object_set_new(v, "tier", tier_json(t));
	json_object_set_new(form, "name", json_string(t->name));
	for (k = 0; k < 4; k++) {
		json_object_set_new(
			form, arena_printf(r->arena, "response_%d", k + 1),
			json_string(
				arena_printf(r->arena, "%ld", t->response[k])));
		json_object_set_new(
			form, arena_printf(r->arena, "resolution_%d", k + 1),
			json_string(arena_printf(r->arena, "%ld",
						 t->resolution[k])));
	}
	json_object_set_new(form, "time_zone", json_string(t->time_zone));
	json_object_set_new(
		form, "warn_percent",
		json_string(arena_printf(r->arena, "%ld", t->warn_percent)));
	json_object_set_new(form, "vip_response_minutes",
			    json_string(t->vip_response > 0 ?
						arena_printf(r->arena, "%ld",
							     t->vip_response) :
						""));
	json_object_set_new(
		form, "vip_resolution_minutes",
		json_string(t->vip_resolution > 0 ?
				    arena_printf(r->arena, "%ld",
						 t->vip_resolution) :
				    ""));
	/* After a refused save, show what was typed, garbage included. */
	if (typed)
		for (k = 0; tier_fields[k] != NULL; k++)
			if (strncmp(tier_fields[k], "opens_", 6) &&
			    strncmp(tier_fields[k], "closes_", 7))
				json_object_set_new(
					form, tier_fields[k],
					json_string(
						form_text(r, tier_fields[k])));
	json_object_set_new(v, "form", form);
	json_object_set_new(v, "errors",
			    typed ? json_incref(r->error_fields) :
				    json_object());
	list = json_array();
	for (k = 0; k < 4; k++) {
		s = arena_printf(r->arena, "%d", k + 1);
		json_array_append_new(
			list,
			json_pack(
				"{s:s, s:s, s:o, s:o, s:o?, s:o?}", "n", s,
				"label", ticketctx_priority_label(k + 1),
				"response",
				json_deep_copy(json_object_get(
					form, arena_printf(r->arena,
							   "response_%s", s))),
				"resolution",
				json_deep_copy(json_object_get(
					form,
					arena_printf(r->arena, "resolution_%s",
						     s))),
				"response_error",
				json_deep_copy(json_object_get(
					r->error_fields,
					arena_printf(r->arena, "response_%s",
						     s))),
				"resolution_error",
				json_deep_copy(json_object_get(
					r->error_fields,
					arena_printf(r->arena, "resolution_%s",
						     s)))));
	}
	json_object_set_new(v, "priorities", list);
	days = json_array();
	for (k = 0; k < 7; k++)
		json_array_append_new(
			days,
			json_pack("{s:i, s:s, s:s, s:s, s:o?}", "n", k + 1,
				  "name", day_names[k], "opens", t->opens[k],
				  "closes", t->closes[k], "error",
				  json_deep_copy(json_object_get(
					  r->error_fields,
					  arena_printf(r->arena, "opens_%d",
						       k + 1)))));
	json_object_set_new(v, "days", days);
	opts = json_array();
	for (k = 0; k < 3; k++)
		json_array_append_new(
			opts,
			json_pack("{s:s, s:s, s:b}", "value", vip_modes[k],
				  "label", vip_labels[k], "selected",
				  !strcmp(t->vip_mode, vip_modes[k])));
	json_object_set_new(v, "vip_modes", opts);
	json_object_set_new(v, "is_24x7",
			    json_boolean(!strcmp(t->calendar, "24x7")));
	json_object_set_new(v, "is_business",
			    json_boolean(!strcmp(t->calendar, "business")));
	json_object_set_new(v, "can_delete",
			    json_boolean(!t->is_fallback && t->tickets == 0));
	json_object_set_new(v, "tickets", json_integer(t->tickets));
	err = req_query(r, sql_holidays, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (k = 0; k < PQntuples(res); k++)
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:s, s:s}", "id",
					(json_int_t)db_int(res, k, 0), "day",
					db_text(res, k, 1), "name",
					db_text(res, k, 2), "day_text",
					db_text(res, k, 3)));
	json_object_set_new(v, "holidays", list);
	view_settings_page(r, arena_printf(r->arena, "SLA tier %s", t->name),
			   "settings/sla_tier", "/settings/sla");
	return TD_OK;
}

/* GET /settings/sla/:id — 404 for another tenant's tier. */
enum td_err sla_tier_edit(struct req *r)
{
	struct tier t;
	enum td_err err;

	err = load_tier(r, route_arg_int(&r->args, "id"), &t);
	if (err != TD_OK)
		return err;
	return edit_page(r, &t, false);
}

static const char *tier_url(struct req *r, int64_t id)
{
	return arena_printf(r->arena, "/settings/sla/%" PRId64, id);
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/*
 * POST /settings/sla — adds a tier named `name`, a copy of tier
 * `based_on` (default: the fallback tier). 303 to its edit page (the API
 * gets 201 {tier}); 422 for a bad or taken name or an unknown based_on.
 */
enum td_err sla_tier_create(struct req *r)
{
	const char *name = form_text(r, "name"),
		   *based = form_text(r, "based_on");
	const char *params[2];
	struct tier t;
	json_t *after;
	PGresult *res = NULL;
	enum td_err err;
	long src = 0;
	int64_t id;

	if (!len_between(name, 1, NAME_MAX_LEN)) {
		form_error(r, "name", "enter a name of 1 to 60 characters");
	} else {
		params[0] = name;
		params[1] = NULL;
		err = req_query(r, sql_name_taken, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(r, "name", "another tier has this name");
	}
	if (*based == '\0') {
		err = req_query(r, sql_fallback_id, 0, NULL, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) == 1)
			src = (long)db_int(res, 0, 0);
	} else if (!parse_long(based, 1, LONG_MAX, &src)) {
		form_error(r, "based_on", "choose a tier to start from");
	}
	if (!form_has_errors(r)) {
		params[0] = arena_printf(r->arena, "%ld", src);
		params[1] = name;
		err = req_query(r, sql_tier_copy, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			form_error(r, "based_on",
				   "choose a tier to start from");
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = list_page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "settings/sla",
				   (const char *const[]){ "name", NULL });
	}
	id = db_int(res, 0, 0);
	err = load_tier(r, id, &t);
	if (err != TD_OK)
		return err;
	after = tier_json(&t);
	req_own_json(r, after);
	err = audit_write(r, "sla_tier.create", "sla_tier", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "tier", after);
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "SLA tier %s added.", name),
	     tier_url(r, id));
	return TD_OK;
}

/*
 * POST /settings/sla/:id — saves a tier (an API caller may send a
 * subset of the fields). 303 back to the tier (the API gets {tier}); 422
 * for bad fields; 404 for another tenant's tier. Tickets keep the due
 * times they have; new tickets and recomputations use the new targets.
 */
enum td_err sla_tier_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[20];
	struct tier old, t;
	json_t *before, *after;
	enum td_err err;
	int k;

	err = load_tier(r, id, &old);
	if (err != TD_OK)
		return err;
	t = old;
	err = read_tier(r, &t);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "settings/sla_tier", NULL);
		err = edit_page(r, &t, true);
		if (err != TD_OK)
			return err;
		r->status = 422;
		return TD_OK;
	}
	if (t.is_fallback && !old.is_fallback) {
		params[0] = req_id(r, id);
		err = req_query(r, sql_fallback_clear, 1, params, NULL);
		if (err != TD_OK)
			return err;
	}
	params[0] = req_id(r, id);
	params[1] = t.name;
	params[2] = t.is_fallback ? "true" : "false";
	for (k = 0; k < 4; k++) {
		params[3 + k] = arena_printf(r->arena, "%ld", t.response[k]);
		params[7 + k] = arena_printf(r->arena, "%ld", t.resolution[k]);
	}
	params[11] = t.calendar;
	params[12] = t.time_zone;
	params[13] = t.pause_on_waiting ? "true" : "false";
	params[14] = t.vip_mode;
	params[15] = t.vip_response > 0 ?
			     arena_printf(r->arena, "%ld", t.vip_response) :
			     NULL;
	params[16] = t.vip_resolution > 0 ?
			     arena_printf(r->arena, "%ld", t.vip_resolution) :
			     NULL;
	params[17] = arena_printf(r->arena, "%ld", t.warn_percent);
	params[18] = time_array(r, t.opens);
	params[19] = time_array(r, t.closes);
	err = req_query(r, sql_tier_update, 20, params, NULL);
	if (err != TD_OK)
		return err;
	before = tier_json(&old);
	req_own_json(r, before);
	after = tier_json(&t);
	req_own_json(r, after);
	err = audit_write(r, "sla_tier.update", "sla_tier", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "tier", after);
	done(r, arena_printf(r->arena, "SLA tier %s saved.", t.name),
	     tier_url(r, id));
	return TD_OK;
}

/* A write the state forbids: 409, on the tier page with the reason. */
static enum td_err refuse(struct req *r, const struct tier *t, const char *why)
{
	enum td_err err;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = edit_page(r, t, false);
	if (err != TD_OK)
		return err;
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(why));
	r->status = 409;
	return TD_OK;
}

/*
 * POST /settings/sla/:id/delete — 303 to the tier list (the API gets
 * {deleted}); 409 for the fallback tier or a tier tickets or contracts
 * use; 404 for another tenant's tier.
 */
enum td_err sla_tier_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	struct tier t;
	json_t *before;
	enum td_err err;

	err = load_tier(r, id, &t);
	if (err != TD_OK)
		return err;
	if (t.is_fallback)
		return refuse(
			r, &t,
			"This is the fallback tier: make another tier the fallback first.");
	if (t.tickets > 0)
		return refuse(
			r, &t,
			arena_printf(
				r->arena,
				"%" PRId64
				" ticket%s use%s this tier: it cannot be deleted.",
				t.tickets, t.tickets == 1 ? "" : "s",
				t.tickets == 1 ? "s" : ""));
	/* Whatever else points at the tier (contracts) refuses by foreign key.
	 */
	err = req_query(r, sql_savepoint, 0, NULL, NULL);
	if (err != TD_OK)
		return err;
	err = db_exec(r->db, r->arena, sql_tier_delete, 1, params, NULL);
	if (err != TD_OK) {
		if (strstr(r->db->errmsg, "foreign key") == NULL)
			return req_fail(r, err,
					"cannot delete SLA tier %" PRId64
					": %s",
					id, r->db->errmsg);
		if (req_query(r, sql_rollback_to, 0, NULL, NULL) != TD_OK)
			return TD_EDB;
		return refuse(r, &t,
			      "Contracts use this tier: it cannot be deleted.");
	}
	before = tier_json(&t);
	req_own_json(r, before);
	err = audit_write(r, "sla_tier.delete", "sla_tier", id, before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		req_view(r), "deleted",
		json_pack("{s:I, s:s}", "id", (json_int_t)id, "name", t.name));
	done(r, arena_printf(r->arena, "SLA tier %s deleted.", t.name),
	     "/settings/sla");
	return TD_OK;
}

/*
 * POST /settings/sla/:id/holidays — adds a closed day (day YYYY-MM-DD,
 * name). 303 to the tier (the API gets 201 {holiday}); 422 for a bad or
 * repeated day; 404 for another tenant's tier.
 */
enum td_err sla_holiday_add(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), hid;
	const char *day = form_text(r, "day"), *name = form_text(r, "name");
	const char *params[3];
	struct tier t;
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = load_tier(r, id, &t);
	if (err != TD_OK)
		return err;
	if (!date_ok(day))
		form_error(r, "day", "enter a date as YYYY-MM-DD");
	if (!len_between(name, 0, 100))
		form_error(r, "name", "use at most 100 characters");
	if (!form_has_errors(r)) {
		params[0] = req_id(r, id);
		params[1] = day;
		params[2] = name;
		err = req_query(r, sql_holiday_new, 3, params, &res);
		if (err == TD_ECONFLICT)
			form_error(r, "day", "this day is a holiday already");
		else if (err != TD_OK)
			return err;
	}
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "settings/sla_tier", NULL);
		err = edit_page(r, &t, false);
		if (err != TD_OK)
			return err;
		json_object_set_new(
			req_view(r), "holiday_form",
			json_pack("{s:s, s:s}", "day", day, "name", name));
		json_object_set(req_view(r), "holiday_errors", r->error_fields);
		r->status = 422;
		return TD_OK;
	}
	hid = db_int(res, 0, 0);
	after = json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)hid,
			  "tier_id", (json_int_t)id, "day", day, "name", name);
	req_own_json(r, after);
	err = audit_write(r, "sla_holiday.create", "sla_tier", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "holiday", after);
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Holiday %s added.", day),
	     tier_url(r, id));
	return TD_OK;
}

/*
 * POST /settings/sla/:id/holidays/:holiday_id/delete — 303 to the tier
 * (the API gets {deleted}); 404 for another tenant's tier or holiday.
 */
enum td_err sla_holiday_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t hid = route_arg_int(&r->args, "holiday_id");
	const char *params[1] = { req_id(r, hid) };
	struct tier t;
	json_t *before;
	PGresult *res;
	enum td_err err;

	err = load_tier(r, id, &t);
	if (err != TD_OK)
		return err;
	err = req_query(r, sql_holiday_delete, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 || db_int(res, 0, 0) != id)
		return req_fail(r, TD_ENOENT, "no holiday %" PRId64, hid);
	before = json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)hid,
			   "tier_id", (json_int_t)id, "day", db_text(res, 0, 1),
			   "name", db_text(res, 0, 2));
	req_own_json(r, before);
	err = audit_write(r, "sla_holiday.delete", "sla_tier", id, before,
			  NULL);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "deleted", before);
	done(r,
	     arena_printf(r->arena, "Holiday %s removed.", db_text(res, 0, 1)),
	     tier_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* The SLA box of a ticket                                              */

/* "less than 1 min", "35 min", "2 h 10 min", "3 d 4 h" for seconds. */
static const char *span_text(struct req *r, int64_t secs)
{
	int64_t m = secs / 60;

	if (m < 1)
		return "less than 1 min";
	if (m < 60)
		return arena_printf(r->arena, "%" PRId64 " min", m);
	if (m < 48 * 60)
		return m % 60 ? arena_printf(r->arena,
					     "%" PRId64 " h %" PRId64 " min",
					     m / 60, m % 60) :
				arena_printf(r->arena, "%" PRId64 " h", m / 60);
	return m / 60 % 24 ?
		       arena_printf(r->arena, "%" PRId64 " d %" PRId64 " h",
				    m / 1440, m / 60 % 24) :
		       arena_printf(r->arena, "%" PRId64 " d", m / 1440);
}

/*
 * One clock of sla_box()'s array: [due_at, due_at_iso, state, seconds], or
 * null when it has no due time.
 */
static json_t *clock_json(struct req *r, const json_t *c)
{
	const char *state = json_string_value(json_array_get(c, 2)), *label,
		   *css;
	int64_t secs = json_integer_value(json_array_get(c, 3));
	int64_t over = secs < 0 ? -secs : 0;

	if (state == NULL)
		return json_null();
	if (!strcmp(state, "met")) {
		label = "Met";
		css = "badge badge-on sla-met";
	} else if (!strcmp(state, "breached")) {
		label = arena_printf(r->arena, "Overdue by %s",
				     span_text(r, over));
		css = "badge badge-p1 sla-breached";
	} else if (!strcmp(state, "paused")) {
		label = arena_printf(r->arena, "Paused, %s left",
				     span_text(r, secs));
		css = "badge badge-off sla-paused";
	} else if (!strcmp(state, "at_risk")) {
		label = arena_printf(r->arena, "%s left", span_text(r, secs));
		css = "badge badge-p2 sla-risk";
	} else {
		label = arena_printf(r->arena, "%s left", span_text(r, secs));
		css = "badge badge-on sla-ok";
	}
	return json_pack("{s:O, s:O, s:s, s:s, s:s, s:I}", "due_at",
			 json_array_get(c, 0), "due_at_iso",
			 json_array_get(c, 1), "state", state, "label", label,
			 "css", css, "seconds", (json_int_t)secs);
}

void sla_box_json(struct req *r, const PGresult *res, int col, json_t *ticket)
{
	json_t *box = db_isnull(res, 0, col) ?
			      NULL :
			      json_loads(db_text(res, 0, col), 0, NULL);
	const char *calendar = json_string_value(json_array_get(box, 1));

	if (box == NULL || calendar == NULL) {
		json_object_set_new(ticket, "sla", json_null());
		json_decref(box);
		return;
	}
	json_object_set_new(
		ticket, "sla",
		json_pack("{s:O, s:s, s:b, s:o, s:o}", "tier",
			  json_array_get(box, 0), "calendar", calendar,
			  "business_hours", !strcmp(calendar, "business"),
			  "response", clock_json(r, json_array_get(box, 2)),
			  "resolution",
			  clock_json(r, json_array_get(box, 3))));
	json_decref(box);
}

/* ------------------------------------------------------------------ */
/* The report                                                           */

#define CHART_W	   640 /* the SVG's width; bars get CHART_W - CHART_L */
#define CHART_L	   200
#define CHART_ROW  28
#define CHART_TEXT 130 /* room right of a bar for "Resolution 100.0%" */

enum group_by { BY_CLIENT, BY_TIER, BY_PRIORITY, BY__MAX };

static const char *const by_keys[BY__MAX] = { "client", "tier", "priority" };
static const char *const by_labels[BY__MAX] = { "Client", "Tier", "Priority" };

struct period {
	const char *from; /* YYYY-MM-DD */
	const char *to;
	enum group_by by;
};

/* Reads from, to and by (defaults: the last 30 days, by client). */
static enum td_err read_period(struct req *r, struct period *p)
{
	const char *from = http_params_get(&r->query_params, "from");
	const char *to = http_params_get(&r->query_params, "to");
	const char *by = http_params_get(&r->query_params, "by");
	const char *params[2];
	PGresult *res, *ok;
	enum td_err err;
	int i;

	err = req_query(r, sql_report_default, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	p->from = from != NULL && *from ? from : db_text(res, 0, 0);
	p->to = to != NULL && *to ? to : db_text(res, 0, 1);
	p->by = BY_CLIENT;
	if (by != NULL && *by) {
		for (i = 0; i < BY__MAX; i++)
			if (!strcmp(by, by_keys[i]))
				break;
		if (i == BY__MAX)
			form_error(r, "by", "choose client, tier or priority");
		else
			p->by = (enum group_by)i;
	}
	if (!date_ok(p->from))
		form_error(r, "from", "enter a date as YYYY-MM-DD");
	if (!date_ok(p->to))
		form_error(r, "to", "enter a date as YYYY-MM-DD");
	if (form_has_errors(r))
		return TD_OK;
	params[0] = p->from;
	params[1] = p->to;
	err = req_query(r, sql_period_ok, 2, params, &ok);
	if (err != TD_OK)
		return err;
	if (!db_bool(ok, 0, 0))
		form_error(r, "to", "the end must not be before the start");
	else if (!db_bool(ok, 0, 1))
		form_error(r, "to", "choose a period of at most 366 days");
	return TD_OK;
}

/* met of met + breached in per mille, or -1 when there is nothing yet. */
static int64_t permille(int64_t met, int64_t breached)
{
	if (met + breached == 0)
		return -1;
	return (met * 1000 + (met + breached) / 2) / (met + breached);
}

static const char *rate_text(struct req *r, int64_t pm)
{
	if (pm < 0)
		return "";
	return arena_printf(r->arena, "%" PRId64 ".%" PRId64, pm / 10, pm % 10);
}

static json_t *rate_json(struct req *r, int64_t pm)
{
	return pm < 0 ? json_null() : json_string(rate_text(r, pm));
}

static enum td_err run_report(struct req *r, const struct period *p,
			      PGresult **res)
{
	const char *params[3] = { p->from, p->to, by_keys[p->by] };

	return req_query(r, sql_report, 3, params, res);
}

/* A bar of the chart: width in pixels for a rate. */
static int64_t bar_width(int64_t pm)
{
	return pm < 0 ? 0 : pm * (CHART_W - CHART_L - CHART_TEXT) / 1000;
}

/*
 * GET /reports/sla?from=YYYY-MM-DD&to=YYYY-MM-DD&by=client|tier|priority
 * — hit rates of tickets created in the period; 422 for a bad period.
 */
enum td_err sla_report(struct req *r)
{
	json_t *v = req_view(r), *rows = json_array(), *bars = json_array();
	int64_t n, rm, rb, sm, sb, tot[5] = { 0 }, pr, ps;
	struct period p;
	PGresult *res;
	enum td_err err;
	int i, k;

	err = read_period(r, &p);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "title", json_string("SLA report"));
	json_object_set_new(v, "rows", rows);
	json_object_set_new(v, "bars", bars);
	json_object_set_new(v, "period",
			    json_pack("{s:s, s:s, s:s}", "from", p.from, "to",
				      p.to, "by", by_keys[p.by]));
	json_object_set_new(v, "group_label", json_string(by_labels[p.by]));
	json_object_set_new(v, "group_noun", json_string(by_keys[p.by]));
	json_object_set_new(v, "by_options", json_array());
	for (k = 0; k < BY__MAX; k++)
		json_array_append_new(json_object_get(v, "by_options"),
				      json_pack("{s:s, s:s, s:b}", "value",
						by_keys[k], "label",
						by_labels[k], "selected",
						k == (int)p.by));
	r->view_name = "reports/sla";
	if (form_has_errors(r)) {
		json_object_set_new(
			v, "form",
			json_pack("{s:s, s:s}", "from", p.from, "to", p.to));
		if (r->want_json)
			return form_reject(r, "reports/sla", NULL);
		json_object_set(v, "errors", r->error_fields);
		r->status = 422;
		return TD_OK;
	}
	json_object_set_new(
		v, "form", json_pack("{s:s, s:s}", "from", p.from, "to", p.to));
	json_object_set_new(
		v, "csv_href",
		json_string(arena_printf(r->arena,
					 "/reports/sla.csv?from=%s&to=%s&by=%s",
					 p.from, p.to, by_keys[p.by])));
	err = run_report(r, &p, &res);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(res); i++) {
		n = db_int(res, i, 1);
		rm = db_int(res, i, 2);
		rb = db_int(res, i, 3);
		sm = db_int(res, i, 4);
		sb = db_int(res, i, 5);
		tot[0] += n;
		tot[1] += rm;
		tot[2] += rb;
		tot[3] += sm;
		tot[4] += sb;
		pr = permille(rm, rb);
		ps = permille(sm, sb);
		json_array_append_new(
			rows,
			json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:o}",
				  "group", db_text(res, i, 0), "tickets",
				  (json_int_t)n, "response_met", (json_int_t)rm,
				  "response_breached", (json_int_t)rb,
				  "response_rate", rate_json(r, pr),
				  "resolution_met", (json_int_t)sm,
				  "resolution_breached", (json_int_t)sb,
				  "resolution_rate", rate_json(r, ps)));
		json_array_append_new(
			bars,
			json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s}",
				  "label", db_text(res, i, 0), "y",
				  (json_int_t)(i * CHART_ROW * 2 + 10), "y2",
				  (json_int_t)(i * CHART_ROW * 2 + 10 +
					       CHART_ROW - 6),
				  "text_y",
				  (json_int_t)(i * CHART_ROW * 2 + 28),
				  "response_w", (json_int_t)bar_width(pr),
				  "resolution_w", (json_int_t)bar_width(ps),
				  "response_text",
				  pr < 0 ? "no data" :
					   arena_printf(r->arena, "%s%%",
							rate_text(r, pr)),
				  "resolution_text",
				  ps < 0 ? "no data" :
					   arena_printf(r->arena, "%s%%",
							rate_text(r, ps))));
	}
	json_object_set_new(v, "totals",
			    json_pack("{s:I, s:I, s:I, s:o, s:I, s:I, s:o}",
				      "tickets", (json_int_t)tot[0],
				      "response_met", (json_int_t)tot[1],
				      "response_breached", (json_int_t)tot[2],
				      "response_rate",
				      rate_json(r, permille(tot[1], tot[2])),
				      "resolution_met", (json_int_t)tot[3],
				      "resolution_breached", (json_int_t)tot[4],
				      "resolution_rate",
				      rate_json(r, permille(tot[3], tot[4]))));
	if (PQntuples(res) > 0)
		json_object_set_new(
			v, "chart",
			json_pack("{s:i, s:I, s:i}", "width", CHART_W, "height",
				  (json_int_t)(PQntuples(res) * CHART_ROW * 2 +
					       20),
				  "bar_x", CHART_L));
	return TD_OK;
}

/*
 * GET /reports/sla.csv — the report's rows as CSV; 422 (the report page
 * with the messages) for a bad period.
 */
enum td_err sla_report_csv(struct req *r)
{
	static const char *const head[8] = { "group",
					     "tickets",
					     "response_met",
					     "response_breached",
					     "response_hit_rate",
					     "resolution_met",
					     "resolution_breached",
					     "resolution_hit_rate" };
	const char *f[8];
	struct period p;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i, c;

	err = read_period(r, &p);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return sla_report(r); /* the page (or JSON) with the messages */
	err = run_report(r, &p, &res);
	if (err != TD_OK)
		return err;
	sbuf_init(&sb, r->arena, 256 + (size_t)PQntuples(res) * 96);
	sbuf_adds(&sb, "\xef\xbb\xbf");
	csv_add_row(&sb, head, 8);
	for (i = 0; i < PQntuples(res); i++) {
		f[0] = db_text(res, i, 0);
		for (c = 1; c < 6; c++)
			f[c < 4 ? c : c + 1] = db_text(res, i, c);
		f[4] = rate_text(
			r, permille(db_int(res, i, 2), db_int(res, i, 3)));
		f[7] = rate_text(
			r, permille(db_int(res, i, 4), db_int(res, i, 5)));
		csv_add_row(&sb, f, 8);
	}
	r->body_out = sb.buf;
	r->body_out_len = sb.len;
	r->body_type = "text/csv; charset=utf-8";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena,
				"attachment; filename=\"sla-%s-%s.csv\"",
				p.from, p.to));
	return TD_OK;
}
