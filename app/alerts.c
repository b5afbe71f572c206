/* alerts.c: alert intake from RMMs and monitoring, its settings, maintenance
 * windows */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "alerts.h"
#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "db.h"
#include "form.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "timers.h"
#include "view.h"
#include "banned.h"

#define ALERTS_MAX     1000
#define WINDOW_MAX_DAY 31

/*
 * Who owns each alert: $1 is [{i, client_id, ext}]. cid is the client
 * when client_id is the tenant's; n counts the assets with that external
 * id (within client_id when given), so n > 1 is ambiguous. quiet: a
 * maintenance window of the client (all assets) or of the asset is on.
 */
static const char sql_resolve[] =
	"WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb)"
	" AS x(i int, client_id bigint, ext text)),"
	" y AS (SELECT x.i, x.client_id,"
	" (SELECT c.id FROM clients c WHERE c.tenant_id = app_tenant()"
	" AND c.id = x.client_id) AS cid, a.id AS aid, a.client_id AS acid,"
	" coalesce(a.n, 0) AS n FROM x LEFT JOIN LATERAL (SELECT min(a.id) AS id,"
	" min(a.client_id) AS client_id, count(*) AS n FROM assets a"
	" WHERE a.tenant_id = app_tenant() AND x.ext IS NOT NULL"
	" AND a.external_id = x.ext"
	" AND (x.client_id IS NULL OR a.client_id = x.client_id)) a ON true)"
	" SELECT y.i, y.cid, y.aid, y.acid, y.n,"
	" EXISTS (SELECT 1 FROM maintenance_windows m"
	" WHERE m.tenant_id = app_tenant()"
	" AND m.client_id = coalesce(y.cid, y.acid)"
	" AND (m.asset_id IS NULL OR m.asset_id = y.aid)"
	" AND m.during @> now())"
	" FROM y ORDER BY y.i";
static const char sql_settings[] =
	"SELECT critical_priority, error_priority, warning_priority,"
	" info_priority, close_on_resolve FROM alert_settings"
	" WHERE tenant_id = app_tenant()";
/*
 * Serialises intake per key: every key of the call is locked in one
 * statement, in sorted order, so two calls with the same keys in another
 * order cannot deadlock. Held to the end of the transaction, so whoever
 * comes second sees the first one's ticket (see sql_open).
 */
static const char sql_lock[] =
	"SELECT count(pg_advisory_xact_lock(hashtextextended("
	" app_tenant()::text || ':alert:' || k, 0)))"
	" FROM (SELECT DISTINCT k FROM jsonb_array_elements_text($1::jsonb) k"
	" ORDER BY k) s";
/* A new statement after the lock: it sees tickets committed meanwhile. */
static const char sql_open[] =
	"SELECT alert_key, id, number, touched_by_human FROM tickets"
	" WHERE tenant_id = app_tenant() AND alert_key IN"
	" (SELECT jsonb_array_elements_text($1::jsonb))"
	" AND status <> 'closed' FOR UPDATE";
/* An alert's ticket is not a person's work, whoever posted the alert. */
static const char sql_created[] =
	"WITH c AS (INSERT INTO ticket_comments (tenant_id, ticket_id,"
	" author_label, public, body) VALUES (app_tenant(), $1, $2, false, $3)"
	" RETURNING 1)"
	" UPDATE tickets SET touched_by_human = false"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_comment[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_label,"
	" public, body) VALUES (app_tenant(), $1, $2, false, $3)";
static const char sql_close[] =
	"UPDATE tickets SET status = 'closed', closed_at = now(),"
	" updated_at = now(), version = version + 1"
	" WHERE tenant_id = app_tenant() AND id = $1 AND status <> 'closed'"
	" RETURNING status";
/* Every occurrence of a call in one statement, and the tickets' counts. */
static const char sql_occurrences[] =
	"WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x("
	" ticket_id bigint, dedupe_key text, severity text, state text,"
	" message text, suppressed boolean)),"
	" i AS (INSERT INTO alert_occurrences (tenant_id, ticket_id, dedupe_key,"
	" severity, state, message, suppressed) SELECT app_tenant(), ticket_id,"
	" dedupe_key, severity, state, coalesce(message, ''), suppressed FROM x"
	" RETURNING 1)"
	" UPDATE tickets t SET alert_occurrences = t.alert_occurrences + c.n,"
	" updated_at = now() FROM (SELECT ticket_id, count(*) AS n FROM x"
	" WHERE ticket_id IS NOT NULL GROUP BY ticket_id) c"
	" WHERE t.tenant_id = app_tenant() AND t.id = c.ticket_id";
static const char sql_settings_save[] =
	"INSERT INTO alert_settings (tenant_id, critical_priority,"
	" error_priority, warning_priority, info_priority, close_on_resolve)"
	" VALUES (app_tenant(), $1, $2, $3, $4, $5)"
	" ON CONFLICT (tenant_id) DO UPDATE SET"
	" critical_priority = EXCLUDED.critical_priority,"
	" error_priority = EXCLUDED.error_priority,"
	" warning_priority = EXCLUDED.warning_priority,"
	" info_priority = EXCLUDED.info_priority,"
	" close_on_resolve = EXCLUDED.close_on_resolve";
static const char sql_windows[] =
	"SELECT m.id, to_char(lower(m.during) AT TIME ZONE t.time_zone,"
	" 'YYYY-MM-DD HH24:MI'), to_char(upper(m.during) AT TIME ZONE"
	" t.time_zone, 'YYYY-MM-DD HH24:MI'), coalesce(a.name, ''), m.reason,"
	" m.during @> now(), upper(m.during) < now()"
	" FROM maintenance_windows m JOIN tenants t ON t.id = m.tenant_id"
	" LEFT JOIN assets a ON a.tenant_id = m.tenant_id AND a.id = m.asset_id"
	" WHERE m.tenant_id = app_tenant() AND m.client_id = $1"
	" AND upper(m.during) > now() - interval '30 days'"
	" ORDER BY upper(m.during) < now(), lower(m.during), m.id";
static const char sql_assets[] =
	"SELECT id, name FROM assets WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND archived_at IS NULL ORDER BY lower(name), id";
/* $2, $3 are datetime-local text in the tenant's time zone. */
static const char sql_span[] =
	"SELECT s < e, e - s <= interval '31 days', s::text, e::text FROM"
	" (SELECT $1::timestamp AT TIME ZONE time_zone AS s,"
	" $2::timestamp AT TIME ZONE time_zone AS e FROM tenants"
	" WHERE id = app_tenant()) z";
static const char sql_window_new[] =
	"INSERT INTO maintenance_windows (tenant_id, client_id, asset_id,"
	" during, reason, created_by) SELECT app_tenant(), $1, $2,"
	" tstzrange($3::timestamptz, $4::timestamptz), $5, $6"
	" WHERE $2::bigint IS NULL OR EXISTS (SELECT 1 FROM assets"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND id = $2)"
	" RETURNING id";
static const char sql_window_delete[] =
	"DELETE FROM maintenance_windows WHERE tenant_id = app_tenant()"
	" AND id = $1 RETURNING client_id, lower(during)::text,"
	" upper(during)::text, asset_id, reason";

enum severity { SEV_CRITICAL, SEV_ERROR, SEV_WARNING, SEV_INFO, SEV__MAX };

static const char *const severity_keys[SEV__MAX] = { "critical", "error",
						     "warning", "info" };
static const char *const severity_labels[SEV__MAX] = { "Critical", "Error",
						       "Warning", "Info" };

struct settings {
	int priority[SEV__MAX];
	bool close_on_resolve;
};

/* One alert of a call, checked. */
struct alert {
	const char *key;
	const char *subject;
	const char *message;
	const char *source;
	const char *ext;
	enum severity severity;
	bool resolved;
	int64_t client_id; /* as sent, then the owner */
	int64_t asset_id;
	bool suppressed;
};

struct check {
	struct req *r;
	long index; /* alerts[index]; -1 for a single alert */
	bool bad;
};

static void note(struct check *c, const char *field, const char *message)
{
	c->bad = true;
	if (c->index < 0)
		form_error(c->r, field, message);
	else
		form_error(c->r,
			   arena_printf(c->r->arena, "alerts[%ld]%s%s",
					c->index, *field ? "." : "", field),
			   message);
}

static const char *trim(struct req *r, const char *s)
{
	const char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return arena_strndup(r->arena, s, (size_t)(e - s));
}

/* A string member, trimmed; "" when absent or null; false (noted) if bad. */
static bool member_text(struct check *c, json_t *obj, const char *key,
			size_t max, const char **out)
{
	json_t *j = json_object_get(obj, key);
	const char *s;

	*out = "";
	if (j == NULL || json_is_null(j))
		return true;
	if (!json_is_string(j)) {
		note(c, key, "must be a string");
		return false;
	}
	s = json_string_value(j);
	if (strlen(s) != json_string_length(j)) {
		note(c, key, "must not contain NUL characters");
		return false;
	}
	s = trim(c->r, s);
	if (http_utf8_len(s) > max) {
		note(c, key,
		     arena_printf(c->r->arena, "use at most %zu characters",
				  max));
		return false;
	}
	*out = s;
	return true;
}

static void check_alert(struct check *c, json_t *in, struct alert *a)
{
	const char *sev, *state;
	json_t *cid;
	int i;

	memset(a, 0, sizeof(*a));
	c->bad = false;
	if (!json_is_object(in)) {
		note(c, "", "must be an object");
		return;
	}
	if (member_text(c, in, "dedupe_key", 200, &a->key) && *a->key == '\0')
		note(c, "dedupe_key",
		     "give a dedupe key (1 to 200 characters)");
	a->severity = SEV__MAX;
	if (member_text(c, in, "severity", 20, &sev)) {
		for (i = 0; i < SEV__MAX; i++)
			if (!strcmp(sev, severity_keys[i]))
				a->severity = (enum severity)i;
		if (a->severity == SEV__MAX)
			note(c, "severity",
			     "use one of critical, error, warning, info");
	}
	if (member_text(c, in, "state", 20, &state)) {
		if (!strcmp(state, "resolved"))
			a->resolved = true;
		else if (*state != '\0' && strcmp(state, "firing") != 0)
			note(c, "state", "use firing or resolved");
	}
	if (member_text(c, in, "subject", 300, &a->subject) && !a->resolved &&
	    *a->subject == '\0')
		note(c, "subject", "give a subject (1 to 300 characters)");
	member_text(c, in, "message", 20000, &a->message);
	member_text(c, in, "source", 100, &a->source);
	member_text(c, in, "asset_external_id", 200, &a->ext);
	cid = json_object_get(in, "client_id");
	if (cid != NULL && !json_is_null(cid)) {
		if (!json_is_integer(cid) || json_integer_value(cid) <= 0)
			note(c, "client_id", "must be a client's id");
		else
			a->client_id = (int64_t)json_integer_value(cid);
	} else if (*a->ext == '\0') {
		note(c, "client_id", "give client_id or asset_external_id");
	}
}

/* Finds each alert's client and asset; notes the ones that have none. */
static enum td_err resolve_owners(struct req *r, struct alert *v, size_t n,
				  bool batch)
{
	struct check c = { r, -1, false };
	json_t *list = json_array();
	const char *params[1];
	PGresult *res;
	enum td_err err;
	size_t i;
	int row;

	req_own_json(r, list);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list, json_pack("{s:I, s:o, s:o}", "i", (json_int_t)i,
					"client_id",
					v[i].client_id ?
						json_integer(v[i].client_id) :
						json_null(),
					"ext",
					*v[i].ext ? json_string(v[i].ext) :
						    json_null()));
	params[0] = req_json_text(r, list, NULL);
	if (params[0] == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the alerts");
	err = req_query(r, sql_resolve, 1, params, &res);
	if (err != TD_OK)
		return err;
	for (row = 0; row < PQntuples(res); row++) {
		i = (size_t)db_int(res, row, 0);
		c.index = batch ? (long)i : -1;
		if (v[i].client_id && db_isnull(res, row, 1)) {
			note(&c, "client_id", "no such client");
			continue;
		}
		if (*v[i].ext != '\0') {
			if (db_int(res, row, 4) == 0) {
				note(&c, "asset_external_id",
				     "no asset has this external id");
				continue;
			}
			if (db_int(res, row, 4) > 1) {
				note(&c, "asset_external_id",
				     "several clients have an asset with this external id: give client_id");
				continue;
			}
			v[i].asset_id = db_int(res, row, 2);
			v[i].client_id = db_int(res, row, 3);
		}
		v[i].suppressed = db_bool(res, row, 5);
	}
	return TD_OK;
}

static enum td_err load_settings(struct req *r, struct settings *s)
{
	PGresult *res;
	enum td_err err;
	int i;

	for (i = 0; i < SEV__MAX; i++)
		s->priority[i] = i + 1;
	s->close_on_resolve = true;
	err = req_query(r, sql_settings, 0, NULL, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	for (i = 0; i < SEV__MAX; i++)
		s->priority[i] = (int)db_int(res, 0, i);
	s->close_on_resolve = db_bool(res, 0, 4);
	return TD_OK;
}

/*
 * Locks every key of the call and fills open with key -> {id, number,
 * touched} for each that has an open ticket.
 */
static enum td_err lock_keys(struct req *r, const struct alert *v, size_t n,
			     json_t *open)
{
	json_t *keys = json_array();
	const char *params[1];
	PGresult *res;
	enum td_err err;
	size_t i;
	int row;

	req_own_json(r, keys);
	for (i = 0; i < n; i++)
		json_array_append_new(keys, json_string(v[i].key));
	params[0] = req_json_text(r, keys, NULL);
	if (params[0] == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the alert keys");
	err = req_query(r, sql_lock, 1, params, &res);
	if (err == TD_OK)
		err = req_query(r, sql_open, 1, params, &res);
	if (err != TD_OK)
		return err;
	for (row = 0; row < PQntuples(res); row++)
		json_object_set_new(open, db_text(res, row, 0),
				    json_pack("{s:I, s:I, s:b}", "id",
					      (json_int_t)db_int(res, row, 1),
					      "number",
					      (json_int_t)db_int(res, row, 2),
					      "touched", db_bool(res, row, 3)));
	return TD_OK;
}

static const char *label_of(const struct alert *a)
{
	return *a->source != '\0' ? a->source : "Alert";
}

static enum td_err open_ticket(struct req *r, const struct alert *a,
			       const struct settings *s, int64_t *id,
			       int64_t *number)
{
	struct ticket_new t;
	const char *params[3];
	PGresult *res;
	enum td_err err;

	memset(&t, 0, sizeof(t));
	t.subject = a->subject;
	t.description = a->message;
	t.client_id = a->client_id;
	t.asset_id = a->asset_id;
	t.source = "alert";
	t.priority = s->priority[a->severity];
	t.alert_key = a->key;
	err = ticketctx_create(r, &t, id, number);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, *id);
	params[1] = label_of(a);
	params[2] = *a->message != '\0' ? a->message : a->subject;
	return req_query(r, sql_created, 3, params, &res);
}

/* A resolved alert for open ticket id: comment, and close if allowed. */
static enum td_err resolve_ticket(struct req *r, const struct alert *a,
				  int64_t id, bool close, bool *closed)
{
	const char *params[3];
	json_t *after;
	PGresult *res;
	enum td_err err;
	int discarded;

	*closed = false;
	params[0] = req_id(r, id);
	params[1] = label_of(a);
	params[2] = "Alert resolved";
	err = req_query(r, sql_comment, 3, params, &res);
	if (err != TD_OK || !close)
		return err;
	err = req_query(r, sql_close, 1, params, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	*closed = true;
	/* Running timers on it are discarded, each audited on the ticket. */
	err = timers_discard_for_ticket(r, id, &discarded);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:s, s:i}", "status", "closed", "reason",
			  "alert resolved", "timers_discarded", discarded);
	req_own_json(r, after);
	return audit_write(r, "ticket.close", "ticket", id, NULL, after);
}

static json_t *result_json(const struct alert *a, const char *action,
			   int64_t id, int64_t number)
{
	return json_pack("{s:s, s:s, s:o, s:o}", "dedupe_key", a->key, "action",
			 action, "ticket_id",
			 id ? json_integer(id) : json_null(), "ticket_number",
			 number ? json_integer(number) : json_null());
}

/* Handles one checked alert; its occurrence goes to occ. */
static enum td_err take_alert(struct req *r, const struct alert *a,
			      const struct settings *s, json_t *open,
			      json_t *occ, json_t *results)
{
	json_t *t = json_object_get(open, a->key);
	int64_t id = 0, number = 0;
	const char *action;
	enum td_err err;
	bool closed;

	if (t != NULL) {
		id = json_integer_value(json_object_get(t, "id"));
		number = json_integer_value(json_object_get(t, "number"));
	}
	if (a->suppressed) {
		action = "suppressed";
		id = number = 0;
	} else if (!a->resolved && id != 0) {
		action = "occurrence";
	} else if (!a->resolved) {
		err = open_ticket(r, a, s, &id, &number);
		if (err != TD_OK)
			return err;
		json_object_set_new(open, a->key,
				    json_pack("{s:I, s:I, s:b}", "id",
					      (json_int_t)id, "number",
					      (json_int_t)number, "touched",
					      false));
		action = "created";
	} else if (id != 0) {
		err = resolve_ticket(
			r, a, id,
			s->close_on_resolve &&
				!json_is_true(json_object_get(t, "touched")),
			&closed);
		if (err != TD_OK)
			return err;
		if (closed)
			json_object_del(open, a->key);
		action = closed ? "closed" : "resolved";
	} else {
		action = "ignored";
	}
	json_array_append_new(
		occ,
		json_pack("{s:o, s:s, s:s, s:s, s:s, s:b}", "ticket_id",
			  id ? json_integer(id) : json_null(), "dedupe_key",
			  a->key, "severity", severity_keys[a->severity],
			  "state", a->resolved ? "resolved" : "firing",
			  "message", a->message, "suppressed", a->suppressed));
	json_array_append_new(results, result_json(a, action, id, number));
	return TD_OK;
}

/*
 * POST /api/v1/alerts — one alert or {alerts: [...]} (up to ALERTS_MAX).
 * All are checked first: 422 with fields such as "alerts[3].severity"
 * and nothing written. Answers {results: [{dedupe_key, action,
 * ticket_id, ticket_number}]}. Concurrent calls with the same key take
 * turns on a transaction-scoped advisory lock (sql_lock), so a key
 * never gets two open tickets. The queries per call are fixed, plus
 * one to three per ticket created, resolved or closed.
 */
enum td_err alerts_intake(struct req *r)
{
	struct check c = { r, -1, false };
	json_t *list, *open, *occ, *results;
	struct settings s;
	struct alert *v;
	const char *params[1];
	PGresult *res;
	enum td_err err;
	bool batch;
	size_t i, n;

	if (!json_is_object(r->json_body))
		return req_fail(
			r, TD_EINPUT,
			"send a JSON object with Content-Type: application/json");
	list = json_object_get(r->json_body, "alerts");
	batch = list != NULL;
	if (batch && !json_is_array(list)) {
		form_error(r, "alerts", "send the alerts as an array");
		return form_reject(r, NULL, NULL);
	}
	n = batch ? json_array_size(list) : 1;
	if (n == 0 || n > ALERTS_MAX) {
		form_error(r, "alerts",
			   arena_printf(r->arena,
					"send 1 to %d alerts in one call",
					ALERTS_MAX));
		return form_reject(r, NULL, NULL);
	}
	v = arena_alloc_raw(r->arena, n * sizeof(*v));
	for (i = 0; i < n; i++) {
		c.index = batch ? (long)i : -1;
		check_alert(&c, batch ? json_array_get(list, i) : r->json_body,
			    &v[i]);
	}
	if (form_has_errors(r))
		return form_reject(r, NULL, NULL);
	err = resolve_owners(r, v, n, batch);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return form_reject(r, NULL, NULL);
	err = load_settings(r, &s);
	if (err != TD_OK)
		return err;
	open = json_object();
	occ = json_array();
	results = json_array();
	req_own_json(r, open);
	req_own_json(r, occ);
	json_object_set_new(req_view(r), "results", results);
	err = lock_keys(r, v, n, open);
	for (i = 0; err == TD_OK && i < n; i++)
		err = take_alert(r, &v[i], &s, open, occ, results);
	if (err != TD_OK)
		return err;
	params[0] = req_json_text(r, occ, NULL);
	if (params[0] == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the occurrences");
	return req_query(r, sql_occurrences, 1, params, &res);
}

/* The settings page's model: a select per severity and the checkbox. */
static void settings_view(struct req *r, const struct settings *s)
{
	json_t *v = req_view(r), *sevs = json_array(), *opts, *api;
	int i, p;

	api = json_object();
	for (i = 0; i < SEV__MAX; i++) {
		opts = json_array();
		for (p = 1; p <= 4; p++)
			json_array_append_new(
				opts,
				json_pack("{s:i, s:s, s:b}", "value", p,
					  "label", ticketctx_priority_label(p),
					  "selected", s->priority[i] == p));
		json_array_append_new(sevs, json_pack("{s:s, s:s, s:o}", "key",
						      severity_keys[i], "label",
						      severity_labels[i],
						      "options", opts));
		json_object_set_new(
			api,
			arena_printf(r->arena, "%s_priority", severity_keys[i]),
			json_integer(s->priority[i]));
	}
	json_object_set_new(api, "close_on_resolve",
			    json_boolean(s->close_on_resolve));
	json_object_set_new(v, "severities", sevs);
	json_object_set_new(v, "alert_settings", api);
	json_object_set_new(v, "close_on_resolve",
			    json_boolean(s->close_on_resolve));
	view_settings_page(r, "Alerts", "alerts/settings", "/settings/alerts");
}

/* GET /settings/alerts — admins. */
enum td_err alerts_settings(struct req *r)
{
	struct settings s;
	enum td_err err;

	err = load_settings(r, &s);
	if (err != TD_OK)
		return err;
	settings_view(r, &s);
	return TD_OK;
}

/*
 * POST /settings/alerts — admins; 422 for a priority outside 1..4.
 * Upserts the tenant's row and audits "alert_settings.update".
 */
enum td_err alerts_settings_save(struct req *r)
{
	struct settings before, s;
	const char *params[5], *text, *field;
	json_t *b, *a, *num;
	enum td_err err;
	PGresult *res;
	char *end;
	long p;
	int i;

	err = load_settings(r, &before);
	if (err != TD_OK)
		return err;
	for (i = 0; i < SEV__MAX; i++) {
		field = arena_printf(r->arena, "%s_priority", severity_keys[i]);
		text = form_text(r, field);
		num = json_object_get(r->json_body, field);
		if (json_is_integer(num))
			text = arena_printf(r->arena, "%" JSON_INTEGER_FORMAT,
					    json_integer_value(num));
		p = strtol(text, &end, 10);
		if (*text == '\0' || *end != '\0' || p < 1 || p > 4) {
			form_error(r, field, "choose P1 to P4");
			s.priority[i] = before.priority[i];
		} else {
			s.priority[i] = (int)p;
		}
		params[i] = arena_printf(r->arena, "%d", s.priority[i]);
	}
	s.close_on_resolve = form_flag(r, "close_on_resolve");
	if (form_has_errors(r)) {
		if (!r->want_json)
			settings_view(r, &s);
		return form_reject(r, "alerts/settings", NULL);
	}
	params[4] = s.close_on_resolve ? "true" : "false";
	err = req_query(r, sql_settings_save, 5, params, &res);
	if (err != TD_OK)
		return err;
	b = json_pack("{s:i, s:i, s:i, s:i, s:b}", "critical_priority",
		      before.priority[0], "error_priority", before.priority[1],
		      "warning_priority", before.priority[2], "info_priority",
		      before.priority[3], "close_on_resolve",
		      before.close_on_resolve);
	a = json_pack("{s:i, s:i, s:i, s:i, s:b}", "critical_priority",
		      s.priority[0], "error_priority", s.priority[1],
		      "warning_priority", s.priority[2], "info_priority",
		      s.priority[3], "close_on_resolve", s.close_on_resolve);
	req_own_json(r, b);
	req_own_json(r, a);
	err = audit_write(r, "alert_settings.update", "tenant",
			  r->auth.tenant_id, b, a);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set(req_view(r), "alert_settings", a);
		return TD_OK;
	}
	form_flash(r, "ok", "Alert settings saved.");
	r->redirect = "/settings/alerts";
	return TD_OK;
}

/* The maintenance page of a loaded client. */
static enum td_err windows_view(struct req *r, const struct clientctx *c)
{
	const char *params[1] = { req_id(r, c->id) };
	json_t *v = req_view(r), *list, *assets;
	PGresult *res;
	enum td_err err;
	int i;

	err = req_query(r, sql_windows, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:o, s:s, s:b, s:b}", "id",
				  (json_int_t)db_int(res, i, 0), "starts",
				  db_text(res, i, 1), "ends",
				  db_text(res, i, 2), "asset",
				  *db_text(res, i, 3) ?
					  json_string(db_text(res, i, 3)) :
					  json_null(),
				  "reason", db_text(res, i, 4), "active",
				  db_bool(res, i, 5), "past",
				  db_bool(res, i, 6)));
	json_object_set_new(v, "windows", list);
	err = req_query(r, sql_assets, 1, params, &res);
	if (err != TD_OK)
		return err;
	assets = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(assets,
				      json_pack("{s:I, s:s}", "id",
						(json_int_t)db_int(res, i, 0),
						"name", db_text(res, i, 1)));
	json_object_set_new(v, "assets", assets);
	json_object_set_new(v, "title",
			    json_string(arena_printf(
				    r->arena, "Maintenance · %s", c->name)));
	json_object_set_new(v, "can_manage",
			    json_boolean((r->auth.role &
					  (ROLE_MANAGER | ROLE_ADMIN)) != 0));
	r->view_name = "alerts/windows";
	return TD_OK;
}

/* GET /clients/:id/maintenance — 404 if no such client. */
enum td_err alerts_windows(struct req *r)
{
	struct clientctx c;
	enum td_err err;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), "overview", &c);
	if (err != TD_OK)
		return err;
	return windows_view(r, &c);
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DDTHH:MM" (seconds allowed) naming a real minute. */
static bool datetime_local_ok(const char *s)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };
	static const char shape[] = "dddd-dd-ddTdd:dd";
	int y, mo, d, h, mi;
	size_t i, len = strlen(s);

	if (len != 16 &&
	    !(len == 19 && s[16] == ':' && isdigit((unsigned char)s[17]) &&
	      isdigit((unsigned char)s[18]) && s[17] < '6'))
		return false;
	for (i = 0; i < 16; i++) {
		if (shape[i] == 'd' ?
			    !isdigit((unsigned char)s[i]) :
			    (s[i] != shape[i] && !(i == 10 && s[i] == ' ')))
			return false;
	}
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	mo = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	h = (s[11] - '0') * 10 + (s[12] - '0');
	mi = (s[14] - '0') * 10 + (s[15] - '0');
	if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h > 23 || mi > 59)
		return false;
	return !(mo == 2 && d == 29 && !leap(y));
}

/*
 * POST /clients/:id/maintenance — managers; 404 if no such client; 422
 * for bad times (ends after starts, at most 31 days), an asset not the
 * client's, or a reason over 200 characters. Audits
 * "maintenance_window.create".
 */
enum td_err alerts_window_create(struct req *r)
{
	static const char *const keep[] = { "starts", "ends", "asset_id",
					    "reason", NULL };
	const char *starts = form_text(r, "starts"),
		   *ends = form_text(r, "ends");
	const char *asset = form_text(r, "asset_id"),
		   *reason = form_text(r, "reason"), *params[6];
	struct clientctx c;
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t asset_id = 0, id;
	char *end;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), "overview", &c);
	if (err != TD_OK)
		return err;
	if (!datetime_local_ok(starts))
		form_error(r, "starts", "enter when it starts");
	if (!datetime_local_ok(ends))
		form_error(r, "ends", "enter when it ends");
	if (*asset != '\0') {
		asset_id = strtoll(asset, &end, 10);
		if (*end != '\0' || asset_id <= 0)
			form_error(r, "asset_id", "choose one of the assets");
	}
	if (http_utf8_len(reason) > 200)
		form_error(r, "reason", "use at most 200 characters");
	if (!form_has_errors(r)) {
		params[0] = starts;
		params[1] = ends;
		err = req_query(r, sql_span, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (!db_bool(res, 0, 0))
			form_error(r, "ends", "must be after it starts");
		else if (!db_bool(res, 0, 1))
			form_error(r, "ends", "a window lasts at most 31 days");
	}
	if (!form_has_errors(r)) {
		params[0] = req_id(r, c.id);
		params[1] = asset_id ? req_id(r, asset_id) : NULL;
		params[2] = arena_strdup(r->arena, db_text(res, 0, 2));
		params[3] = arena_strdup(r->arena, db_text(res, 0, 3));
		params[4] = reason;
		params[5] = r->auth.kind == AUTH_USER ?
				    req_id(r, r->auth.user_id) :
				    NULL;
		err = req_query(r, sql_window_new, 6, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			form_error(r, "asset_id", "choose one of the assets");
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = windows_view(r, &c);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "alerts/windows", keep);
	}
	id = db_int(res, 0, 0);
	after = json_pack("{s:I, s:s, s:s, s:o, s:s}", "client_id",
			  (json_int_t)c.id, "starts", params[2], "ends",
			  params[3], "asset_id",
			  asset_id ? json_integer(asset_id) : json_null(),
			  "reason", reason);
	req_own_json(r, after);
	err = audit_write(r, "maintenance_window.create", "maintenance_window",
			  id, NULL, after);
	if (err != TD_OK)
		return err;
	r->status = 201;
	if (r->want_json) {
		json_object_set_new(req_view(r), "window",
				    json_pack("{s:I, s:O}", "id",
					      (json_int_t)id, "window", after));
		return TD_OK;
	}
	form_flash(r, "ok", "Maintenance window added.");
	r->redirect = arena_printf(r->arena, "/clients/%" PRId64 "/maintenance",
				   c.id);
	return TD_OK;
}

/*
 * POST /maintenance/:id/delete — managers; 404 if no such window.
 * Audits "maintenance_window.delete"; back to the client's page.
 */
enum td_err alerts_window_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	json_t *before;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_window_delete, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no maintenance window %" PRId64,
				id);
	before = json_pack(
		"{s:I, s:s, s:s, s:o, s:s}", "client_id",
		(json_int_t)db_int(res, 0, 0), "starts", db_text(res, 0, 1),
		"ends", db_text(res, 0, 2), "asset_id",
		db_isnull(res, 0, 3) ? json_null() :
				       json_integer(db_int(res, 0, 3)),
		"reason", db_text(res, 0, 4));
	req_own_json(r, before);
	err = audit_write(r, "maintenance_window.delete", "maintenance_window",
			  id, before, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set_new(req_view(r), "deleted", json_true());
		return TD_OK;
	}
	form_flash(r, "ok", "Maintenance window deleted.");
	r->redirect = arena_printf(r->arena, "/clients/%" PRId64 "/maintenance",
				   db_int(res, 0, 0));
	return TD_OK;
}
