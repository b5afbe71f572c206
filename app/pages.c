/* pages.c: home, health check and the sections still to come */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "conf.h"
#include "db.h"
#include "pages.h"
#include "req.h"
#include "banned.h"

static const char sql_ping[] = "SELECT 1";
static const char sql_stats[] =
	"SELECT (SELECT count(*) FROM users WHERE tenant_id = app_tenant() AND active),"
	" (SELECT count(*) FROM invites WHERE tenant_id = app_tenant()"
	"  AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()),"
	" (SELECT count(*) FROM schema_migrations),"
	" (SELECT count(*) FROM audit_log WHERE tenant_id = app_tenant()"
	"  AND at > now() - interval '30 days')";
/*
 * Fifty ticket-shaped rows, made by PostgreSQL, for the benchmark page:
 * plain text operators only, so the page measures our stack rather than
 * PostgreSQL's date formatting.
 */
static const char sql_bench[] =
	"SELECT id, name, client, status, priority, assignee, updated, amount"
	" FROM bench_items ORDER BY id LIMIT 50";

static json_t *stat(const char *label, json_int_t value, const char *hint)
{
	return json_pack("{s:s, s:I, s:s}", "label", label, "value", value,
			 "hint", hint);
}

static json_t *step(const char *title, const char *text, const char *href,
		    bool done)
{
	return json_pack("{s:s, s:s, s:s, s:b}", "title", title, "text", text,
			 "href", href, "done", done);
}

/* GET / — 503 when the database is down. */
enum td_err pages_home(struct req *r)
{
	json_t *v = req_view(r), *stats, *steps;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_stats, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	stats = json_array();
	json_array_append_new(stats, stat("Active users", db_int(res, 0, 0),
					  "staff who can sign in"));
	json_array_append_new(stats, stat("Pending invites", db_int(res, 0, 1),
					  "waiting to be accepted"));
	json_array_append_new(stats, stat("Audit events", db_int(res, 0, 3),
					  "changes in the last 30 days"));
	json_array_append_new(stats, stat("Migrations", db_int(res, 0, 2),
					  "schema changes applied"));
	steps = json_array();
	json_array_append_new(
		steps, step("Install tallydesk",
			    "The server, database and workers are running.",
			    "/healthz", true));
	json_array_append_new(steps,
			      step("Add your clients",
				   "Clients, contacts, sites and assets.",
				   "/clients", false));
	json_array_append_new(steps,
			      step("Set up contracts",
				   "What each client pays and the SLA it gets.",
				   "/contracts", false));
	json_array_append_new(steps,
			      step("Work tickets and log time",
				   "Every billable minute reaches an invoice.",
				   "/tickets", false));
	json_object_set_new(v, "title", json_string("Home"));
	json_object_set_new(v, "stats", stats);
	json_object_set_new(v, "steps", steps);
	json_object_set_new(v, "health",
			    json_pack("{s:s, s:I, s:i}", "database", "ok",
				      "migrations",
				      (json_int_t)db_int(res, 0, 2), "workers",
				      r->ctx->conf->workers));
	r->view_name = "home";
	return TD_OK;
}

/* GET /healthz — always JSON; 503 with database "down" when it is. */
enum td_err pages_healthz(struct req *r)
{
	json_t *v = req_view(r);
	enum td_err err = db_exec(r->db, r->arena, sql_ping, 0, NULL, NULL);
	bool up = err == TD_OK;

	if (!up) {
		r->status = 503;
		req_fail(r, TD_EUNAVAIL, "health check: %s", r->db->errmsg);
		r->error_detail = NULL;
	}
	json_object_set_new(v, "status",
			    json_string(up ? "ok" : "unavailable"));
	json_object_set_new(v, "database", json_string(up ? "ok" : "down"));
	json_object_set_new(v, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(v, "worker", json_integer(r->ctx->worker_no));
	r->want_json = true;
	return TD_OK;
}

/* GET /reports (managers): the reports there are, each with its CSV. */
enum td_err pages_reports(struct req *r)
{
	static const struct {
		const char *name, *href, *csv, *about;
	} reports[] = {
		{ "SLA hit rate", "/reports/sla", "/reports/sla.csv",
		  "Responses and resolutions on time, by client, tier and "
		  "priority, for a period." },
		{ "Block hours", "/reports/blocks", "/reports/blocks.csv",
		  "Hours used of each block-hours contract, cycle by cycle, "
		  "and where they ran over." },
		{ "Time", "/reports/time", "/reports/time.csv",
		  "Billable, internal and pre-paid time by technician, client "
		  "and ticket type; logged against billed." },
	};
	json_t *v = req_view(r), *list = json_array();
	size_t i;

	for (i = 0; i < sizeof(reports) / sizeof(reports[0]); i++)
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:s, s:s}", "name",
					reports[i].name, "href",
					reports[i].href, "csv", reports[i].csv,
					"about", reports[i].about));
	json_object_set_new(v, "title", json_string("Reports"));
	json_object_set_new(v, "reports", list);
	r->view_name = "reports/index";
	return TD_OK;
}

/*
 * GET /bench/list — a realistic 50-row page from PostgreSQL, for ./dev bench.
 * The text comes from a UTF-8 database, so it is not checked again.
 */
enum td_err pages_bench_list(struct req *r)
{
	static const char *const keys[] = { "id",      "name",	   "client",
					    "status",  "priority", "assignee",
					    "updated", "amount" };
	json_t *v = req_view(r), *items;
	PGresult *res;
	enum td_err err;
	int i, j;

	err = req_query(r, sql_bench, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	items = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		json_t *it = json_object();

		for (j = 0; j < 8; j++)
			json_object_set_new_nocheck(
				it, keys[j],
				json_stringn_nocheck(
					db_text(res, i, j),
					(size_t)PQgetlength(res, i, j)));
		json_array_append_new(items, it);
	}
	json_object_set_new(v, "title", json_string("Benchmark list"));
	json_object_set_new(v, "items", items);
	r->view_name = "bench/list";
	return TD_OK;
}

static json_t *params_json(const struct http_params *p)
{
	json_t *o = json_object();
	size_t i;

	for (i = 0; i < p->n; i++)
		json_object_set_new(
			o, p->v[i].name,
			json_stringn(p->v[i].value, p->v[i].value_len));
	return o;
}

/*
 * POST /echo (and /api/v1/echo) — answers, as JSON, what the request
 * parser made of the request: the integration tests' window on parsing.
 */
enum td_err pages_echo(struct req *r)
{
	json_t *v = req_view(r), *files = json_array();
	size_t i;

	for (i = 0; i < r->files.n; i++)
		json_array_append_new(
			files, json_pack("{s:s, s:s, s:s, s:I}", "field",
					 r->files.v[i].field, "filename",
					 r->files.v[i].filename, "content_type",
					 r->files.v[i].content_type, "size",
					 (json_int_t)r->files.v[i].len));
	json_object_set_new(v, "method", json_string(r->method_name));
	json_object_set_new(v, "path", json_string(r->path));
	json_object_set_new(v, "query", params_json(&r->query_params));
	json_object_set_new(v, "form", params_json(&r->form));
	json_object_set_new(v, "files", files);
	json_object_set_new(v, "cookies", params_json(&r->cookies));
	json_object_set(v, "json", r->json_body ? r->json_body : json_null());
	return TD_OK;
}
