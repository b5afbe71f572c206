/* billingpanels.c: billing figures on the client and contract pages */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "auth.h"
#include "billingpanels.h"
#include "db.h"
#include "invoices.h"
#include "money.h"
#include "req.h"
#include "banned.h"

/* The key lines of the preview shown on the client page (as in the SQL). */
#define PANEL_LINES 5

/*
 * Client $1's month-to-date preview (the engine's billing_preview(), so
 * the same figures as /clients/:id/billing) and its last 5 invoices with
 * their derived total, balance and shown status (as the invoices list
 * reads them), in one statement: total, number of lines, period, the
 * 5 largest lines (JSON), the last invoices (JSON), all its invoices.
 */
static const char sql_client_panel[] =
	"WITH p AS MATERIALIZED (SELECT x.contract_id, x.contract, x.usage,"
	" x.description, x.breakdown, x.amount::numeric AS amount,"
	" row_number() OVER (ORDER BY x.amount::numeric DESC, x.contract_id,"
	" x.pos) AS n FROM billing_preview($1::bigint) x),"
	" d AS (SELECT (now() AT TIME ZONE time_zone)::date AS today,"
	" time_zone AS tz FROM tenants WHERE id = app_tenant()),"
	" v AS (SELECT i.id, i.number,"
	" coalesce(i.issued_on, (i.created_at AT TIME ZONE d.tz)::date) AS day,"
	" i.currency, t.total, t.balance,"
	" " INVOICE_SHOWN_STATUS " AS shown"
	" FROM invoices i JOIN invoice_totals t ON t.tenant_id = i.tenant_id"
	" AND t.invoice_id = i.id CROSS JOIN d"
	" WHERE i.tenant_id = app_tenant() AND i.client_id = $1::bigint"
	" ORDER BY i.id DESC LIMIT 5)"
	" SELECT coalesce((SELECT sum(p.amount) FROM p), 0)::numeric(14, 2)::text,"
	" (SELECT count(*) FROM p),"
	" (SELECT p.usage FROM p ORDER BY p.contract_id LIMIT 1),"
	" coalesce((SELECT json_agg(json_build_object('contract_id',"
	" p.contract_id, 'contract', p.contract, 'description', p.description,"
	" 'breakdown', nullif(p.breakdown, ''),"
	" 'amount', p.amount::numeric(14, 2)::text)"
	" ORDER BY p.n) FROM p WHERE p.n <= 5), '[]'),"
	" coalesce((SELECT json_agg(json_build_object('id', v.id, 'number',"
	" v.number, 'date', v.day::text, 'currency', v.currency, 'total',"
	" v.total::text, 'balance', v.balance::text, 'status', v.shown)"
	" ORDER BY v.id DESC) FROM v), '[]'),"
	" (SELECT count(*) FROM invoices i WHERE i.tenant_id = app_tenant()"
	" AND i.client_id = $1::bigint)";

/* The versions of contract $1's terms, newest first (sql/0027). */
static const char sql_terms[] =
	"SELECT coalesce(valid_from::text, ''), coalesce(valid_to::text, ''),"
	" coalesce(to_char(valid_from, 'FMDD Mon YYYY'), ''),"
	" coalesce(to_char(valid_to - 1, 'FMDD Mon YYYY'), ''), in_force,"
	" coalesce(to_char(changed_at AT TIME ZONE (SELECT time_zone FROM"
	" tenants WHERE id = app_tenant()), 'FMDD Mon YYYY HH24:MI'), ''),"
	" changed_by, changes::text"
	" FROM contract_terms_changes($1::bigint)";

static bool is_manager(const struct req *r)
{
	return (r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)) != 0;
}

/* JSON text from PostgreSQL, or an empty array if unreadable. */
static json_t *json_from(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	return v != NULL ? v : json_array();
}

/* Sets key_display ("1,625.00") beside o's key ("1625.00"). */
static void add_display(struct req *r, json_t *o, const char *key)
{
	const char *text = json_string_value(json_object_get(o, key));
	char buf[32];
	int64_t v;

	if (text == NULL || money_parse(text, true, &v) != TD_OK)
		return; /* numeric(14,2) always parses */
	money_display(v, buf, sizeof(buf));
	json_object_set_new(o, arena_printf(r->arena, "%s_display", key),
			    json_string(buf));
}

enum td_err billingpanels_client(struct req *r, int64_t client_id, json_t *into)
{
	const char *params[1] = { req_id(r, client_id) };
	json_t *panel, *lines, *invoices, *o;
	int64_t nlines, ninvoices;
	PGresult *res;
	enum td_err err;
	size_t i;

	if (!is_manager(r))
		return TD_OK;
	err = req_query(r, sql_client_panel, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_EDB,
				"no billing panel for client %" PRId64,
				client_id);
	lines = json_from(db_text(res, 0, 3));
	json_array_foreach(lines, i, o) add_display(r, o, "amount");
	invoices = json_from(db_text(res, 0, 4));
	json_array_foreach(invoices, i, o)
	{
		json_object_set_new(
			o, "url",
			json_string(arena_printf(
				r->arena, "/invoices/%" JSON_INTEGER_FORMAT,
				json_integer_value(json_object_get(o, "id")))));
		json_object_set_new(
			o, "status_label",
			json_string(invoices_status_label(json_string_value(
				json_object_get(o, "status")))));
		add_display(r, o, "total");
		add_display(r, o, "balance");
	}
	nlines = db_int(res, 0, 1);
	ninvoices = db_int(res, 0, 5);
	panel = json_pack(
		"{s:s, s:s?, s:b, s:I, s:o, s:o, s:b, s:b, s:I, s:I, s:s, s:s}",
		"total", db_text(res, 0, 0), "period",
		db_isnull(res, 0, 2) ? NULL : db_text(res, 0, 2), "has_lines",
		nlines > 0, "line_count", (json_int_t)nlines, "lines", lines,
		"invoices", invoices, "has_invoices",
		json_array_size(invoices) > 0, "has_more_lines",
		nlines > PANEL_LINES, "more_lines",
		(json_int_t)(nlines > PANEL_LINES ? nlines - PANEL_LINES : 0),
		"invoice_count", (json_int_t)ninvoices, "preview_url",
		arena_printf(r->arena, "/clients/%" PRId64 "/billing",
			     client_id),
		"invoices_url",
		arena_printf(r->arena, "/invoices?client_id=%" PRId64,
			     client_id));
	if (panel == NULL)
		return req_fail(r, TD_EDB, "cannot build the billing panel");
	add_display(r, panel, "total");
	json_object_set_new(into, "billing_panel", panel);
	return TD_OK;
}

enum td_err billingpanels_terms(struct req *r, int64_t contract_id,
				json_t *into)
{
	const char *params[1] = { req_id(r, contract_id) };
	json_t *list = json_array(), *changes;
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(into, "terms_history", list);
	err = req_query(r, sql_terms, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		changes = json_from(db_text(res, i, 7));
		json_array_append_new(
			list,
			json_pack(
				"{s:s?, s:s?, s:s, s:s, s:b, s:s, s:s?, s:b, "
				"s:o, s:b}",
				"from",
				*db_text(res, i, 0) ? db_text(res, i, 0) : NULL,
				"to",
				*db_text(res, i, 1) ? db_text(res, i, 1) : NULL,
				"from_text", db_text(res, i, 2), "to_text",
				db_text(res, i, 3), "in_force",
				db_bool(res, i, 4), "changed_at",
				db_text(res, i, 5), "changed_by",
				*db_text(res, i, 6) ? db_text(res, i, 6) : NULL,
				"first", i == n - 1, "changes", changes,
				"has_changes", json_array_size(changes) > 0));
	}
	json_object_set_new(into, "has_terms_history", json_boolean(n > 1));
	return TD_OK;
}
