/* contractreport.c: block-hours usage per contract per cycle, and hours */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "contracts.h"
#include "contractutil.h"
#include "csv.h"
#include "db.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

/* The committed billable time that uses up a block (see contractutil.h). */
#define USED_WHERE                                                              \
	" FROM time_entries e LEFT JOIN tickets k ON k.tenant_id = e.tenant_id" \
	" AND k.id = e.ticket_id WHERE e.tenant_id = app_tenant()"              \
	" AND e.status = 'committed' AND e.kind = 'billable'"                   \
	" AND k.type IS DISTINCT FROM 'project'"

const char contractutil_sql_used[] =
	"SELECT coalesce(sum(e.minutes), 0)" USED_WHERE " AND e.client_id = $1"
	" AND e.started_at >= $2::timestamptz AND e.started_at < $3::timestamptz";

/*
 * Every cycle of a non-voided block contract that touches days [$1, $2],
 * with the time used in it: the instants each cycle starts and ends in the
 * tenant's zone bound an index range of the client's time entries.
 */
static const char sql_report[] =
	"WITH cy AS (SELECT c.id, c.client_id, c.name,"
	" cl.name AS client_name, c.block_minutes, x.r FROM contracts c"
	" JOIN clients cl ON cl.tenant_id = c.tenant_id"
	" AND cl.id = c.client_id, contract_cycles(c.starts_on, c.ends_on,"
	" c.billing_frequency, c.billing_day, $1::date, $2::date) AS x(r)"
	" WHERE c.tenant_id = app_tenant() AND c.state <> 'voided'"
	" AND c.block_minutes IS NOT NULL),"
	" b AS MATERIALIZED (SELECT cy.*,"
	" lower(cy.r)::timestamp AT TIME ZONE t.time_zone"
	" AS f, upper(cy.r)::timestamp AT TIME ZONE t.time_zone AS u"
	" FROM cy JOIN tenants t ON t.id = app_tenant())"
	" SELECT b.id, b.client_id, b.name, b.client_name, b.block_minutes,"
	" lower(b.r)::text, (upper(b.r) - 1)::text, x.used FROM b"
	" CROSS JOIN LATERAL (SELECT coalesce(sum(e.minutes), 0) AS used" USED_WHERE
	" AND e.client_id = b.client_id AND e.started_at >= b.f"
	" AND e.started_at < b.u) x"
	" ORDER BY lower(b.client_name), b.client_id, b.id, lower(b.r)";
/* The default period: the first of the month five months ago to today. */
static const char sql_period[] =
	"SELECT coalesce($1::date, f)::text, coalesce($2::date, d)::text,"
	" (coalesce($2::date, d) - coalesce($1::date, f)) BETWEEN 0 AND 731"
	" FROM (SELECT d, (date_trunc('month', d) - interval '5 months')::date"
	" AS f FROM (SELECT (now() AT TIME ZONE time_zone)::date AS d"
	" FROM tenants WHERE id = app_tenant()) x) y";

enum { R_ID, R_CLIENT_ID, R_NAME, R_CLIENT, R_BLOCK, R_FROM, R_TO, R_USED };

/* Chart geometry, in SVG user units. */
#define CHART_W	    720
#define CHART_LABEL 260
#define CHART_ROW   24
#define CHART_BAR   14

/* Half away from zero, in integers: minutes to tenths or hundredths. */
static void hours(int64_t minutes, int scale, char *buf, size_t len)
{
	uint64_t m = minutes < 0 ? (uint64_t)0 - (uint64_t)minutes :
				   (uint64_t)minutes;
	uint64_t units = (m * (uint64_t)scale + 30) / 60;

	if (scale == 10)
		snprintf(buf, len, "%s%" PRIu64 ".%" PRIu64,
			 minutes < 0 ? "-" : "", units / 10, units % 10);
	else
		snprintf(buf, len, "%s%" PRIu64 ".%02" PRIu64,
			 minutes < 0 ? "-" : "", units / 100, units % 100);
}

void contractutil_hours1(int64_t minutes, char *buf, size_t len)
{
	hours(minutes, 10, buf, len);
}

void contractutil_hours2(int64_t minutes, char *buf, size_t len)
{
	hours(minutes, 100, buf, len);
}

/* A YYYY-MM-DD query value, or NULL when absent; false when malformed. */
static bool query_date(struct req *r, const char *name, const char **out)
{
	const char *s = http_params_get(&r->query_params, name);

	*out = NULL;
	if (s == NULL || *s == '\0')
		return true;
	if (!contractutil_valid_date(s))
		return false;
	*out = s;
	return true;
}

/*
 * The report rows for ?from=&to= (default: five months back to today)
 * into *res, with the period chosen in *from and *to. TD_EINPUT for a
 * malformed date or a period over two years or backwards.
 */
static enum td_err report_rows(struct req *r, const char **from,
			       const char **to, PGresult **res)
{
	const char *params[2];
	PGresult *per;
	enum td_err err;

	if (!query_date(r, "from", &params[0]) ||
	    !query_date(r, "to", &params[1]))
		return req_fail(r, TD_EINPUT,
				"enter the period as YYYY-MM-DD dates");
	err = req_query(r, sql_period, 2, params, &per);
	if (err != TD_OK)
		return err;
	if (!db_bool(per, 0, 2))
		return req_fail(r, TD_EINPUT,
				"choose a period of at most two years that "
				"ends after it starts");
	*from = arena_strdup(r->arena, db_text(per, 0, 0));
	*to = arena_strdup(r->arena, db_text(per, 0, 1));
	params[0] = *from;
	params[1] = *to;
	return req_query(r, sql_report, 2, params, res);
}

/*
 * GET /reports/blocks?from=&to= — managers. Block usage per contract
 * per cycle, with a bar chart; 400 for a bad period.
 */
enum td_err contracts_blocks_report(struct req *r)
{
	const char *from, *to;
	json_t *v = req_view(r), *rows, *bars, *row;
	int64_t size, used, left, width, full;
	char hs[32], hu[32], hl[32];
	PGresult *res;
	enum td_err err;
	int i, n;

	err = report_rows(r, &from, &to, &res);
	if (err != TD_OK)
		return err;
	rows = json_array();
	bars = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		size = db_int(res, i, R_BLOCK);
		used = db_int(res, i, R_USED);
		left = size - used;
		contractutil_hours1(size, hs, sizeof(hs));
		contractutil_hours1(used, hu, sizeof(hu));
		contractutil_hours1(left < 0 ? -left : left, hl, sizeof(hl));
		row = json_object();
		json_object_set_new(row, "contract_id",
				    json_integer(db_int(res, i, R_ID)));
		json_object_set_new(row, "contract_url",
				    json_string(arena_printf(
					    r->arena, "/contracts/%" PRId64,
					    db_int(res, i, R_ID))));
		json_object_set_new(row, "contract_name",
				    json_string(db_text(res, i, R_NAME)));
		json_object_set_new(row, "client_id",
				    json_integer(db_int(res, i, R_CLIENT_ID)));
		json_object_set_new(row, "client_name",
				    json_string(db_text(res, i, R_CLIENT)));
		json_object_set_new(row, "cycle_from",
				    json_string(db_text(res, i, R_FROM)));
		json_object_set_new(row, "cycle_to",
				    json_string(db_text(res, i, R_TO)));
		json_object_set_new(row, "block_minutes", json_integer(size));
		json_object_set_new(row, "used_minutes", json_integer(used));
		json_object_set_new(row, "block_hours", json_string(hs));
		json_object_set_new(row, "used_hours", json_string(hu));
		json_object_set_new(row, left < 0 ? "over_hours" : "left_hours",
				    json_string(hl));
		json_object_set_new(row, "over", json_boolean(left < 0));
		json_object_set_new(
			row, "used_percent",
			json_integer(size > 0 ? (used * 100 + size / 2) / size :
						0));
		json_array_append(rows, row);
		/* The bar: the block is the full track, capped at 200% used. */
		full = CHART_W - CHART_LABEL - 60;
		width = size > 0 ? used * full / 2 / size : 0;
		if (width > full)
			width = full;
		json_array_append_new(
			bars,
			json_pack(
				"{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I,"
				" s:I, s:b}",
				"label",
				arena_printf(r->arena, "%s · %s",
					     db_text(res, i, R_CLIENT),
					     db_text(res, i, R_NAME)),
				"cycle",
				arena_printf(r->arena, "%s to %s",
					     db_text(res, i, R_FROM),
					     db_text(res, i, R_TO)),
				"used", hu, "size", hs, "y",
				(json_int_t)(i * CHART_ROW + 4), "ty",
				(json_int_t)(i * CHART_ROW + 16), "x",
				(json_int_t)CHART_LABEL, "w", (json_int_t)width,
				"lx", (json_int_t)(CHART_LABEL + width + 4),
				"block_w", (json_int_t)(full / 2), "over",
				left < 0));
		json_decref(row);
	}
	json_object_set_new(v, "rows", rows);
	json_object_set_new(v, "from", json_string(from));
	json_object_set_new(v, "to", json_string(to));
	json_object_set_new(
		v, "csv_url",
		json_string(arena_printf(r->arena,
					 "/reports/blocks.csv?from=%s&to=%s",
					 from, to)));
	if (!r->want_json && n > 0)
		json_object_set_new(
			v, "chart",
			json_pack(
				"{s:o, s:I, s:I, s:I, s:I}", "bars", bars,
				"height", (json_int_t)(n * CHART_ROW + 8),
				"width", (json_int_t)CHART_W, "block_x",
				(json_int_t)(CHART_LABEL +
					     (CHART_W - CHART_LABEL - 60) / 2),
				"label_w", (json_int_t)(CHART_LABEL - 8)));
	else
		json_decref(bars);
	json_object_set_new(v, "title", json_string("Block hours usage"));
	r->view_name = "reports/blocks";
	return TD_OK;
}

/* GET /reports/blocks.csv?from=&to= — the same rows as CSV; 400. */
enum td_err contracts_blocks_csv(struct req *r)
{
	static const char *const head[] = { "client",	   "contract",
					    "cycle_from",  "cycle_to",
					    "block_hours", "used_hours",
					    "left_hours",  "over_hours" };
	const char *from, *to, *f[8];
	char hs[32], hu[32], hl[32], ho[32];
	int64_t size, used, left;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i;

	err = report_rows(r, &from, &to, &res);
	if (err != TD_OK)
		return err;
	sbuf_init(&sb, r->arena, 4096);
	/* As other exports do: Excel then reads the file as UTF-8. */
	sbuf_adds(&sb, "\xef\xbb\xbf");
	csv_add_row(&sb, head, 8);
	for (i = 0; i < PQntuples(res); i++) {
		size = db_int(res, i, R_BLOCK);
		used = db_int(res, i, R_USED);
		left = size - used;
		contractutil_hours2(size, hs, sizeof(hs));
		contractutil_hours2(used, hu, sizeof(hu));
		contractutil_hours2(left > 0 ? left : 0, hl, sizeof(hl));
		contractutil_hours2(left < 0 ? -left : 0, ho, sizeof(ho));
		f[0] = db_text(res, i, R_CLIENT);
		f[1] = db_text(res, i, R_NAME);
		f[2] = db_text(res, i, R_FROM);
		f[3] = db_text(res, i, R_TO);
		f[4] = hs;
		f[5] = hu;
		f[6] = hl;
		f[7] = ho;
		csv_add_row(&sb, f, 8);
	}
	r->body_out = sb.buf;
	r->body_out_len = sb.len;
	r->body_type = "text/csv; charset=utf-8";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena,
				"attachment; filename=\"blocks-%s-%s.csv\"",
				from, to));
	return TD_OK;
}
