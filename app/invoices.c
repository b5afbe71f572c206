/* invoices.c: invoice list, page, issue, payments, credit notes, exports */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "csv.h"
#include "db.h"
#include "form.h"
#include "invoices.h"
#include "invoices_pdf.h"
#include "money.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

/*
 * Every invoice of the tenant with its derived figures. status_shown
 * reads the balance and the due date (tenant's today): paid, partly_paid,
 * overdue are never stored. Filters: $1 shown status, $2 client, $3 a
 * month (first day) the billed days touch, $4 overdue only.
 */
#define INVOICE_ROWS                                                           \
	"SELECT * FROM (SELECT i.id, coalesce(i.number, ''), i.status,"        \
	" i.client_id, c.name, coalesce(i.issued_on::text, ''),"               \
	" coalesce(i.due_on::text, ''), coalesce(i.period_from::text, ''),"    \
	" coalesce(i.period_to::text, ''), t.subtotal::text, t.tax::text,"     \
	" t.total::text, t.credited::text, t.paid::text, t.balance::text,"     \
	" " INVOICE_SHOWN_STATUS " AS shown,"                                  \
	" i.status IN ('issued', 'sent') AND t.balance > 0"                    \
	"  AND i.due_on < d.today AS overdue,"                                 \
	" i.currency, i.contract_id, greatest(d.today - i.due_on, 0) AS late"  \
	" FROM invoices i"                                                     \
	" JOIN clients c ON c.tenant_id = i.tenant_id AND c.id = i.client_id"  \
	" JOIN invoice_totals t ON t.tenant_id = i.tenant_id"                  \
	"  AND t.invoice_id = i.id,"                                           \
	" (SELECT (now() AT TIME ZONE time_zone)::date AS today FROM tenants"  \
	"  WHERE id = app_tenant()) d"                                         \
	" WHERE i.tenant_id = app_tenant()"

enum {
	I_ID,
	I_NUMBER,
	I_STATUS,
	I_CLIENT_ID,
	I_CLIENT,
	I_ISSUED,
	I_DUE,
	I_FROM,
	I_TO,
	I_SUBTOTAL,
	I_TAX,
	I_TOTAL,
	I_CREDITED,
	I_PAID,
	I_BALANCE,
	I_SHOWN,
	I_OVERDUE,
	I_CURRENCY,
	I_CONTRACT,
	I_LATE
};

static const char sql_list[] = INVOICE_ROWS
	" AND ($2::bigint IS NULL OR i.client_id = $2::bigint)"
	" AND ($3::date IS NULL OR (i.period_from < ($3::date + interval '1 month')"
	"  AND i.period_to >= $3::date))) x"
	" WHERE ($1::text IS NULL OR x.shown = $1::text)"
	" AND (NOT $4::boolean OR x.overdue)"
	" ORDER BY x.id DESC LIMIT 1000";
static const char sql_one[] = INVOICE_ROWS " AND i.id = $1) x";
static const char sql_lock[] =
	"SELECT status FROM invoices WHERE tenant_id = app_tenant() AND id = $1"
	" FOR UPDATE";
static const char sql_lines[] =
	"SELECT l.id, l.position, l.kind, l.description, l.breakdown,"
	" trim_scale(l.quantity)::text, l.unit_price::text, l.amount::text,"
	" trim_scale(l.tax_rate)::text, coalesce(r.name, 'No tax'),"
	" coalesce(l.raw_minutes, -1), coalesce(l.rounded_minutes, -1),"
	" (SELECT count(*) FROM invoice_line_entries e"
	"  WHERE e.tenant_id = l.tenant_id AND e.line_id = l.id),"
	" (SELECT count(*) FROM invoice_line_days d"
	"  WHERE d.tenant_id = l.tenant_id AND d.line_id = l.id),"
	" l.edited, coalesce(l.tax_rate_id, 0)"
	" FROM invoice_lines l LEFT JOIN tax_rates r"
	" ON r.tenant_id = l.tenant_id AND r.id = l.tax_rate_id"
	" WHERE l.tenant_id = app_tenant() AND l.invoice_id = $1"
	" ORDER BY l.position";
static const char sql_taxes[] =
	"SELECT trim_scale(l.tax_rate)::text, sum(l.amount)::text,"
	" round(sum(l.amount) * l.tax_rate / 100, 2)::text"
	" FROM invoice_lines l WHERE l.tenant_id = app_tenant()"
	" AND l.invoice_id = $1 GROUP BY l.tax_rate ORDER BY l.tax_rate DESC";
static const char sql_entries[] =
	"SELECT e.line_id, e.entry_id, to_char(t.started_at AT TIME ZONE"
	" (SELECT time_zone FROM tenants WHERE id = app_tenant()),"
	" 'YYYY-MM-DD HH24:MI'), u.name, e.raw_minutes, e.billed_minutes"
	" FROM invoice_line_entries e JOIN invoice_lines l"
	" ON l.tenant_id = e.tenant_id AND l.id = e.line_id"
	" JOIN time_entries t ON t.tenant_id = e.tenant_id AND t.id = e.entry_id"
	" JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id"
	" WHERE e.tenant_id = app_tenant() AND l.invoice_id = $1"
	" ORDER BY e.line_id, t.started_at, e.entry_id";
static const char sql_credits[] =
	"SELECT id, number, amount::text, reason, issued_on::text FROM credit_notes"
	" WHERE tenant_id = app_tenant() AND invoice_id = $1 ORDER BY id";
/* Each credit note's split by tax rate. */
static const char sql_credit_lines[] =
	"SELECT cl.credit_note_id, trim_scale(cl.tax_rate)::text, cl.net::text,"
	" cl.tax::text, cl.description FROM credit_note_lines cl"
	" JOIN credit_notes n ON n.tenant_id = cl.tenant_id"
	" AND n.id = cl.credit_note_id WHERE cl.tenant_id = app_tenant()"
	" AND n.invoice_id = $1 ORDER BY cl.credit_note_id, cl.tax_rate DESC";
/* What is left to credit per tax rate. */
static const char sql_credit_left[] =
	"SELECT trim_scale(rate)::text, net::text, tax::text, rate::text"
	" FROM billing_credit_left($1)";
static const char sql_payments[] =
	"SELECT id, amount::text, paid_on::text, method, reference FROM payments"
	" WHERE tenant_id = app_tenant() AND invoice_id = $1 ORDER BY paid_on, id";
static const char sql_tax_rates[] =
	"SELECT id, name, trim_scale(rate)::text FROM tax_rates"
	" WHERE tenant_id = app_tenant() AND NOT archived"
	" ORDER BY rate DESC, lower(name), id";
static const char sql_clients[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND merged_into IS NULL ORDER BY lower(name), id LIMIT 2000";
static const char sql_today[] =
	"SELECT (now() AT TIME ZONE time_zone)::date::text FROM tenants"
	" WHERE id = app_tenant()";
/* Who bills whom: the tenant's details (invoice settings) and logo. */
static const char sql_parties[] =
	"SELECT t.name, c.name, c.address, c.tax_number, c.payment_terms_days,"
	" coalesce(s.business_address, ''), coalesce(s.tax_number, ''),"
	" coalesce(s.company_number, ''), coalesce(s.payment_details, ''),"
	" coalesce(s.footer, ''), t.support_email, t.support_phone,"
	" t.brand_colour, CASE WHEN t.logo_type = 'image/png' THEN t.logo END"
	" FROM invoices i JOIN tenants t ON t.id = i.tenant_id"
	" JOIN clients c ON c.tenant_id = i.tenant_id AND c.id = i.client_id"
	" LEFT JOIN invoice_settings s ON s.tenant_id = t.id"
	" WHERE i.tenant_id = app_tenant() AND i.id = $1";
static const char sql_credit_one[] =
	"SELECT number, reason FROM credit_notes WHERE tenant_id = app_tenant()"
	" AND invoice_id = $1 AND id = $2";
/* The PDF as issued, when it was stored. */
static const char sql_pdf_stored[] =
	"SELECT f.bytes FROM invoices i JOIN stored_files f"
	" ON f.tenant_id = i.tenant_id AND f.id = i.pdf_file_id"
	" WHERE i.tenant_id = app_tenant() AND i.id = $1";
static const char sql_pdf_file[] =
	"SELECT pdf_file_id, number FROM invoices WHERE tenant_id = app_tenant()"
	" AND id = $1 AND pdf_file_id IS NOT NULL";
static const char sql_pdf_store[] =
	"WITH f AS (INSERT INTO stored_files (tenant_id, content_type, bytes)"
	" VALUES (app_tenant(), 'application/pdf', $2::bytea) RETURNING id)"
	" UPDATE invoices SET pdf_file_id = (SELECT id FROM f)"
	" WHERE tenant_id = app_tenant() AND id = $1 AND status <> 'draft'"
	" RETURNING pdf_file_id";
static const char sql_attach[] =
	"INSERT INTO outbox_attachments (tenant_id, outbox_id, position,"
	" filename, file_id) VALUES (app_tenant(), $1, $2::int, $3, $4)";
static const char sql_settings[] =
	"SELECT business_address, tax_number, company_number, payment_details,"
	" footer FROM invoice_settings WHERE tenant_id = app_tenant()";
static const char sql_settings_save[] =
	"INSERT INTO invoice_settings (tenant_id, business_address, tax_number,"
	" company_number, payment_details, footer) VALUES (app_tenant(), $1,"
	" $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET"
	" business_address = $1, tax_number = $2, company_number = $3,"
	" payment_details = $4, footer = $5, updated_at = now()";
static const char sql_has_logo[] =
	"SELECT logo_type FROM tenants WHERE id = app_tenant()"
	" AND logo IS NOT NULL";
static const char sql_preview[] =
	"SELECT contract_id, contract, usage, pos, description, breakdown,"
	" quantity, unit_price, amount FROM billing_preview($1)";
/* The client's billing contact's address, else the client's own. */
static const char sql_send_to[] =
	"SELECT coalesce(nullif(ct.email, ''), c.contact_email), t.name"
	" FROM invoices i JOIN clients c ON c.tenant_id = i.tenant_id"
	" AND c.id = i.client_id JOIN tenants t ON t.id = i.tenant_id"
	" LEFT JOIN contacts ct ON ct.tenant_id = c.tenant_id"
	" AND ct.id = c.billing_contact_id"
	" WHERE i.tenant_id = app_tenant() AND i.id = $1";
static const char sql_send[] =
	"WITH q AS (INSERT INTO outbox (tenant_id, kind, to_addr, subject,"
	" body_text) VALUES (app_tenant(), 'invoice', $2, $3, $4) RETURNING id)"
	" UPDATE invoices SET status = 'sent', sent_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1 RETURNING (SELECT id FROM q)";
static const char sql_new_invoice[] =
	"INSERT INTO invoices (tenant_id, client_id, currency, created_by)"
	" SELECT app_tenant(), c.id, coalesce(c.currency, t.currency), $2"
	" FROM clients c JOIN tenants t ON t.id = c.tenant_id"
	" WHERE c.tenant_id = app_tenant() AND c.id = $1"
	" AND c.merged_into IS NULL AND c.archived_at IS NULL RETURNING id";
/* A tax rate of the tenant, not archived ($1 NULL: the default, or none). */
static const char sql_tax_rate[] =
	"SELECT id, rate FROM tax_rates WHERE tenant_id = app_tenant()"
	" AND NOT archived AND (id = $1::bigint OR ($1 IS NULL AND is_default))";
static const char sql_add_line[] =
	"INSERT INTO invoice_lines (tenant_id, invoice_id, position, kind,"
	" description, quantity, unit_price, amount, tax_rate_id, tax_rate)"
	" SELECT app_tenant(), $1, coalesce(max(position), 0) + 1, 'manual', $2,"
	" $3::numeric, $4::numeric, $5::numeric, $6::bigint,"
	" coalesce($7::numeric, 0) FROM invoice_lines"
	" WHERE tenant_id = app_tenant() AND invoice_id = $1 RETURNING id";
static const char sql_del_line[] = "SELECT billing_delete_line($1, $2)";
/* One line of the invoice as it is, for the audit's "before". */
static const char sql_line_one[] =
	"SELECT description, trim_scale(quantity)::text, unit_price::text,"
	" amount::text, tax_rate_id, trim_scale(tax_rate)::text, kind"
	" FROM invoice_lines WHERE tenant_id = app_tenant() AND invoice_id = $1"
	" AND id = $2";
/* The amount is quantity × unit price to the penny; none if too large. */
static const char sql_line_update[] =
	"UPDATE invoice_lines SET description = $3, quantity = $4::numeric,"
	" unit_price = $5::numeric, amount = x.amount, tax_rate_id = $6::bigint,"
	" tax_rate = $7::numeric, edited = true"
	" FROM (SELECT round($4::numeric * $5::numeric, 2) AS amount) x"
	" WHERE tenant_id = app_tenant() AND invoice_id = $1 AND id = $2"
	" AND abs(x.amount) < 1e12 RETURNING x.amount::text";
static const char sql_del_draft[] = "SELECT billing_delete_draft($1)";
static const char sql_issue[] = "SELECT billing_issue($1, $2::date, $3)";
static const char sql_credit[] =
	"SELECT billing_credit($1, $2::numeric, $3, $4::date, $5)";
static const char sql_credit_nets[] =
	"SELECT billing_credit_nets($1, $2::jsonb, $3, $4::date, $5)";
/* The net per rate of chosen lines ($2: their ids), as jsonb text. */
static const char sql_lines_nets[] =
	"SELECT coalesce(jsonb_agg(jsonb_build_object('rate', rate, 'net', net,"
	" 'description', descr)), '[]')::text"
	" FROM (SELECT tax_rate AS rate, sum(amount) AS net,"
	" left(string_agg(description, '; ' ORDER BY position), 2000) AS descr"
	" FROM invoice_lines WHERE tenant_id = app_tenant() AND invoice_id = $1"
	" AND id = ANY ($2::bigint[]) GROUP BY tax_rate) x";
static const char sql_payment[] =
	"INSERT INTO payments (tenant_id, invoice_id, amount, paid_on, method,"
	" reference, created_by) VALUES (app_tenant(), $1, $2::numeric,"
	" $3::date, $4, $5, $6) RETURNING id";
static const char sql_csv_lines[] =
	"SELECT coalesce(i.number, ''), i.id, c.name, l.position, l.kind,"
	" l.description, l.breakdown, trim_scale(l.quantity)::text,"
	" l.unit_price::text, l.amount::text, trim_scale(l.tax_rate)::text"
	" FROM invoice_lines l JOIN invoices i ON i.tenant_id = l.tenant_id"
	" AND i.id = l.invoice_id JOIN clients c ON c.tenant_id = i.tenant_id"
	" AND c.id = i.client_id WHERE l.tenant_id = app_tenant()"
	" AND i.id = ANY ($1::bigint[]) ORDER BY i.id DESC, l.position";
/* Open balances of issued invoices by days past due, per client. */
static const char sql_ageing[] = INVOICE_ROWS
	") x WHERE x.status IN ('issued', 'sent')"
	" AND x.balance::numeric > 0 ORDER BY lower(x.name), x.client_id";

static const char *const statuses[] = { "draft",       "issued", "sent",
					"partly_paid", "paid",	 "overdue",
					"void",	       NULL };
static const char *const status_labels[] = { "Draft",	    "Issued", "Sent",
					     "Partly paid", "Paid",   "Overdue",
					     "Void",	    NULL };
static const char *const methods[] = {
	"bank_transfer", "card", "cash", "cheque", "direct_debit", "other", NULL
};
static const char *const payment_fields[] = { "amount", "paid_on", "method",
					      "reference", NULL };
static const char *const credit_fields[] = { "amount", "reason", NULL };

#define AGE_BUCKETS 5
static const char *const age_labels[AGE_BUCKETS] = { "Not yet due", "1–30 days",
						     "31–60 days", "61–90 days",
						     "Over 90 days" };

static enum td_err stored_pdf(struct req *r, int64_t id, int64_t *file_id,
			      const char **number);
static const char *pdf_filename(struct req *r, const char *number, int64_t id);

struct filters {
	const char *status;
	const char *client_id;
	const char *period; /* first day of the month, or NULL */
	bool overdue;
};

static int index_of(const char *const *list, const char *s)
{
	int i;

	for (i = 0; list[i] != NULL; i++)
		if (!strcmp(list[i], s))
			return i;
	return -1;
}

const char *invoices_status_label(const char *status)
{
	int i = index_of(statuses, status);

	return i < 0 ? status : status_labels[i];
}

/* Sets key ("1625.00") and key_display ("1,625.00") from numeric text. */
static void set_money(json_t *o, const char *key, const char *text,
		      struct req *r)
{
	char buf[32];
	int64_t v;

	json_object_set_new(o, key, json_string(text));
	if (money_parse(text, true, &v) != TD_OK) {
		/* numeric(14,2) always parses; keep the figure if not. */
		json_object_set_new(o,
				    arena_printf(r->arena, "%s_display", key),
				    json_string(text));
		return;
	}
	money_display(v, buf, sizeof(buf));
	json_object_set_new(o, arena_printf(r->arena, "%s_display", key),
			    json_string(buf));
}

/* A real calendar day written YYYY-MM-DD, years 2000 to 2199. */
static bool valid_date(const char *s)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int y, m, d, i, n;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return false;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 2000 || y > 2199 || m < 1 || m > 12 || d < 1)
		return false;
	n = mdays[m - 1];
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		n = 29;
	return d <= n;
}

/* A positive decimal id, or NULL. */
static const char *id_param(struct req *r, const char *s)
{
	int64_t v = 0;
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > 15)
		return NULL;
	for (i = 0; s[i]; i++) {
		if (!isdigit((unsigned char)s[i]))
			return NULL;
		v = v * 10 + (s[i] - '0');
	}
	return v > 0 ? req_id(r, v) : NULL;
}

/* The list filters from the query string; TD_EINPUT (400) if bad. */
static enum td_err read_filters(struct req *r, struct filters *f)
{
	const char *s;

	memset(f, 0, sizeof(*f));
	s = http_params_get(&r->query_params, "status");
	if (s != NULL && *s != '\0') {
		if (index_of(statuses, s) < 0)
			return req_fail(r, TD_EINPUT,
					"cannot filter by status '%s'", s);
		f->status = s;
	}
	s = http_params_get(&r->query_params, "client_id");
	if (s != NULL && *s != '\0') {
		f->client_id = id_param(r, s);
		if (f->client_id == NULL)
			return req_fail(r, TD_EINPUT,
					"'client_id' is not a client id");
	}
	s = http_params_get(&r->query_params, "period");
	if (s != NULL && *s != '\0') {
		f->period = arena_printf(r->arena, "%s-01", s);
		if (strlen(s) != 7 || !valid_date(f->period))
			return req_fail(r, TD_EINPUT,
					"'period' must be a month: YYYY-MM");
	}
	s = http_params_get(&r->query_params, "overdue");
	f->overdue = s != NULL && (!strcmp(s, "1") || !strcmp(s, "true") ||
				   !strcmp(s, "on"));
	return TD_OK;
}

static enum td_err query_list(struct req *r, const struct filters *f,
			      PGresult **res)
{
	const char *params[4] = { f->status, f->client_id, f->period,
				  f->overdue ? "true" : "false" };

	return req_query(r, sql_list, 4, params, res);
}

static json_t *invoice_json(struct req *r, const PGresult *res, int i)
{
	json_t *o;
	const char *shown = db_text(res, i, I_SHOWN);

	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:I, s:s, s:s, s:s,"
		      " s:s, s:s, s:b, s:I}",
		      "id", (json_int_t)db_int(res, i, I_ID), "number",
		      db_text(res, i, I_NUMBER), "status",
		      db_text(res, i, I_STATUS), "status_shown", shown,
		      "status_label", invoices_status_label(shown), "overdue",
		      db_bool(res, i, I_OVERDUE), "client_id",
		      (json_int_t)db_int(res, i, I_CLIENT_ID), "client_name",
		      db_text(res, i, I_CLIENT), "issued_on",
		      db_text(res, i, I_ISSUED), "due_on",
		      db_text(res, i, I_DUE), "period_from",
		      db_text(res, i, I_FROM), "period_to",
		      db_text(res, i, I_TO), "is_draft",
		      !strcmp(db_text(res, i, I_STATUS), "draft"), "days_late",
		      (json_int_t)db_int(res, i, I_LATE));
	json_object_set_new(o, "currency",
			    json_string(db_text(res, i, I_CURRENCY)));
	json_object_set_new(
		o, "sent",
		json_boolean(!strcmp(db_text(res, i, I_STATUS), "sent")));
	json_object_set_new(o, "contract_id",
			    db_isnull(res, i, I_CONTRACT) ?
				    json_null() :
				    json_integer(db_int(res, i, I_CONTRACT)));
	set_money(o, "subtotal", db_text(res, i, I_SUBTOTAL), r);
	set_money(o, "tax", db_text(res, i, I_TAX), r);
	set_money(o, "total", db_text(res, i, I_TOTAL), r);
	set_money(o, "credited", db_text(res, i, I_CREDITED), r);
	set_money(o, "paid", db_text(res, i, I_PAID), r);
	set_money(o, "balance", db_text(res, i, I_BALANCE), r);
	json_object_set_new(
		o, "url",
		json_string(arena_printf(r->arena, "/invoices/%" PRId64,
					 db_int(res, i, I_ID))));
	return o;
}

/* The query string of the filters, for the CSV links ("" or "?a=b"). */
static const char *filter_query(struct req *r, const struct filters *f)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, 128);
	if (f->status)
		sbuf_addf(&sb, "&status=%s", f->status);
	if (f->client_id)
		sbuf_addf(&sb, "&client_id=%s", f->client_id);
	if (f->period)
		sbuf_addf(&sb, "&period=%.7s", f->period);
	if (f->overdue)
		sbuf_adds(&sb, "&overdue=1");
	if (sb.len == 0)
		return "";
	sb.buf[0] = '?';
	return sb.buf;
}

enum td_err invoices_list(struct req *r)
{
	struct filters f;
	json_t *v, *list, *opts;
	PGresult *res, *clients;
	enum td_err err;
	int i;

	err = read_filters(r, &f);
	if (err == TD_OK)
		err = query_list(r, &f, &res);
	if (err == TD_OK)
		err = req_query(r, sql_clients, 0, NULL, &clients);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, invoice_json(r, res, i));
	json_object_set_new(v, "invoices", list);
	json_object_set_new(v, "count", json_integer(PQntuples(res)));
	opts = json_array();
	for (i = 0; statuses[i] != NULL; i++)
		json_array_append_new(
			opts,
			json_pack("{s:s, s:s, s:b}", "key", statuses[i],
				  "label", status_labels[i], "selected",
				  f.status && !strcmp(f.status, statuses[i])));
	json_object_set_new(v, "statuses", opts);
	opts = json_array();
	for (i = 0; i < PQntuples(clients); i++)
		json_array_append_new(
			opts,
			json_pack("{s:I, s:s, s:b}", "id",
				  (json_int_t)db_int(clients, i, 0), "name",
				  db_text(clients, i, 1), "selected",
				  f.client_id &&
					  !strcmp(f.client_id,
						  db_text(clients, i, 0))));
	json_object_set_new(v, "clients", opts);
	json_object_set_new(
		v, "period",
		json_string(f.period ? arena_strndup(r->arena, f.period, 7) :
				       ""));
	json_object_set_new(v, "overdue_only", json_boolean(f.overdue));
	json_object_set_new(
		v, "filtered",
		json_boolean(f.status || f.client_id || f.period || f.overdue));
	json_object_set_new(
		v, "csv_url",
		json_string(arena_printf(r->arena, "/invoices.csv%s",
					 filter_query(r, &f))));
	json_object_set_new(
		v, "lines_csv_url",
		json_string(arena_printf(r->arena, "/invoices/lines.csv%s",
					 filter_query(r, &f))));
	json_object_set_new(v, "can_settings",
			    json_boolean(r->auth.role == ROLE_ADMIN));
	json_object_set_new(v, "title", json_string("Invoices"));
	r->view_name = "invoices/list";
	return TD_OK;
}

static void send_csv(struct req *r, struct sbuf *sb, const char *name)
{
	r->body_out = sb->buf;
	r->body_out_len = sb->len;
	r->body_type = "text/csv; charset=utf-8";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena, "attachment; filename=\"%s\"", name));
}

enum td_err invoices_csv(struct req *r)
{
	static const char *const head[] = {
		"number", "id",		 "client",    "status",	  "issued_on",
		"due_on", "period_from", "period_to", "subtotal", "tax",
		"total",  "credited",	 "paid",      "balance",  "currency"
	};
	static const int cols[] = { I_NUMBER, I_ID,	 I_CLIENT,
				    I_SHOWN,  I_ISSUED,	 I_DUE,
				    I_FROM,   I_TO,	 I_SUBTOTAL,
				    I_TAX,    I_TOTAL,	 I_CREDITED,
				    I_PAID,   I_BALANCE, I_CURRENCY };
	const char *f[15];
	struct filters fl;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i, j;

	err = read_filters(r, &fl);
	if (err == TD_OK)
		err = query_list(r, &fl, &res);
	if (err != TD_OK)
		return err;
	sbuf_init(&sb, r->arena, 4096);
	sbuf_adds(&sb, "\xef\xbb\xbf");
	csv_add_row(&sb, head, 15);
	for (i = 0; i < PQntuples(res); i++) {
		for (j = 0; j < 15; j++)
			f[j] = db_text(res, i, cols[j]);
		csv_add_row(&sb, f, 15);
	}
	send_csv(r, &sb, "invoices.csv");
	return TD_OK;
}

enum td_err invoices_lines_csv(struct req *r)
{
	static const char *const head[] = {
		"number",     "invoice_id",  "client",	  "position",
		"kind",	      "description", "breakdown", "quantity",
		"unit_price", "amount",	     "tax_rate"
	};
	const char *f[11], *params[1];
	struct filters fl;
	struct sbuf sb, ids;
	PGresult *res, *lines;
	enum td_err err;
	int i, j;

	err = read_filters(r, &fl);
	if (err == TD_OK)
		err = query_list(r, &fl, &res);
	if (err != TD_OK)
		return err;
	sbuf_init(&ids, r->arena, 256);
	sbuf_addch(&ids, '{');
	for (i = 0; i < PQntuples(res); i++)
		sbuf_addf(&ids, "%s%s", i ? "," : "", db_text(res, i, I_ID));
	sbuf_addch(&ids, '}');
	params[0] = ids.buf;
	err = req_query(r, sql_csv_lines, 1, params, &lines);
	if (err != TD_OK)
		return err;
	sbuf_init(&sb, r->arena, 4096);
	sbuf_adds(&sb, "\xef\xbb\xbf");
	csv_add_row(&sb, head, 11);
	for (i = 0; i < PQntuples(lines); i++) {
		for (j = 0; j < 11; j++)
			f[j] = db_text(lines, i, j);
		csv_add_row(&sb, f, 11);
	}
	send_csv(r, &sb, "invoice-lines.csv");
	return TD_OK;
}

static int bucket_of(int64_t late)
{
	if (late <= 0)
		return 0;
	if (late <= 30)
		return 1;
	if (late <= 60)
		return 2;
	if (late <= 90)
		return 3;
	return 4;
}

/*
 * GET /invoices/ageing — per client, the open balances of issued
 * invoices by days past due, and the tenant's totals.
 */
enum td_err invoices_ageing(struct req *r)
{
	int64_t sums[AGE_BUCKETS], totals[AGE_BUCKETS + 1] = { 0 }, v, all;
	json_t *view, *rows, *row, *cells, *head;
	int64_t client;
	char buf[32];
	PGresult *res;
	enum td_err err;
	int i, k, b, n;

	err = req_query(r, sql_ageing, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	view = req_view(r);
	rows = json_array();
	n = PQntuples(res);
	/* Rows come by client (names sorted): one row per run of a client. */
	for (i = 0; i < n; i = k) {
		client = db_int(res, i, I_CLIENT_ID);
		memset(sums, 0, sizeof(sums));
		for (k = i; k < n && db_int(res, k, I_CLIENT_ID) == client;
		     k++) {
			if (money_parse(db_text(res, k, I_BALANCE), true, &v) !=
			    TD_OK)
				return req_fail(r, TD_EDB, "bad balance '%s'",
						db_text(res, k, I_BALANCE));
			sums[bucket_of(db_int(res, k, I_LATE))] += v;
		}
		row = json_pack("{s:I, s:s}", "client_id", (json_int_t)client,
				"client_name", db_text(res, i, I_CLIENT));
		cells = json_array();
		all = 0;
		for (b = 0; b < AGE_BUCKETS; b++) {
			money_display(sums[b], buf, sizeof(buf));
			json_array_append_new(
				cells, json_pack("{s:s}", "amount", buf));
			totals[b] += sums[b];
			all += sums[b];
		}
		totals[AGE_BUCKETS] += all;
		json_object_set_new(row, "buckets", cells);
		money_display(all, buf, sizeof(buf));
		json_object_set_new(row, "total", json_string(buf));
		json_array_append_new(rows, row);
	}
	json_object_set_new(view, "clients", rows);
	cells = json_array();
	head = json_array();
	for (b = 0; b < AGE_BUCKETS; b++) {
		money_display(totals[b], buf, sizeof(buf));
		json_array_append_new(cells, json_pack("{s:s}", "amount", buf));
		json_array_append_new(
			head, json_pack("{s:s}", "label", age_labels[b]));
	}
	json_object_set_new(view, "totals", cells);
	json_object_set_new(view, "buckets", head);
	money_display(totals[AGE_BUCKETS], buf, sizeof(buf));
	json_object_set_new(view, "total", json_string(buf));
	json_object_set_new(view, "title", json_string("Accounts receivable"));
	r->view_name = "invoices/ageing";
	return TD_OK;
}

/* The tenant's tax rates for a select, selected: the line's (-1: none). */
static json_t *rate_options(const PGresult *rates, int64_t selected)
{
	json_t *list = json_array();
	int i;

	for (i = 0; i < PQntuples(rates); i++)
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:s, s:b}", "id",
					(json_int_t)db_int(rates, i, 0), "name",
					db_text(rates, i, 1), "rate",
					db_text(rates, i, 2), "selected",
					db_int(rates, i, 0) == selected));
	return list;
}

/* The invoice page of id into the view; TD_ENOENT for another tenant's. */
static enum td_err show_page(struct req *r, int64_t id)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *inv, *lines, *taxes, *ents, *credits, *pays, *today;
	PGresult *clines, *left, *rates;
	json_t *v, *o, *list, *line, *srcs, *parts;
	enum td_err err;
	int i, j, n;
	bool open, draft;

	err = req_query(r, sql_one, 1, params, &inv);
	if (err != TD_OK)
		return err;
	if (PQntuples(inv) != 1)
		return req_fail(r, TD_ENOENT, "no invoice %" PRId64, id);
	if ((err = req_query(r, sql_lines, 1, params, &lines)) != TD_OK ||
	    (err = req_query(r, sql_taxes, 1, params, &taxes)) != TD_OK ||
	    (err = req_query(r, sql_entries, 1, params, &ents)) != TD_OK ||
	    (err = req_query(r, sql_credits, 1, params, &credits)) != TD_OK ||
	    (err = req_query(r, sql_payments, 1, params, &pays)) != TD_OK ||
	    (err = req_query(r, sql_credit_lines, 1, params, &clines)) !=
		    TD_OK ||
	    (err = req_query(r, sql_credit_left, 1, params, &left)) != TD_OK ||
	    (err = req_query(r, sql_tax_rates, 0, NULL, &rates)) != TD_OK ||
	    (err = req_query(r, sql_today, 0, NULL, &today)) != TD_OK)
		return err;
	draft = !strcmp(db_text(inv, 0, I_STATUS), "draft");
	v = req_view(r);
	o = invoice_json(r, inv, 0);
	list = json_array();
	n = PQntuples(ents);
	for (i = 0; i < PQntuples(lines); i++) {
		line = json_pack(
			"{s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I,"
			" s:I}",
			"id", (json_int_t)db_int(lines, i, 0), "position",
			(json_int_t)db_int(lines, i, 1), "kind",
			db_text(lines, i, 2), "description",
			db_text(lines, i, 3), "breakdown", db_text(lines, i, 4),
			"quantity", db_text(lines, i, 5), "tax_rate",
			db_text(lines, i, 8), "tax_name", db_text(lines, i, 9),
			"entries_count", (json_int_t)db_int(lines, i, 12),
			"days_count", (json_int_t)db_int(lines, i, 13));
		set_money(line, "unit_price", db_text(lines, i, 6), r);
		set_money(line, "amount", db_text(lines, i, 7), r);
		if (db_int(lines, i, 10) >= 0) {
			json_object_set_new(line, "raw_minutes",
					    json_integer(db_int(lines, i, 10)));
			json_object_set_new(line, "rounded_minutes",
					    json_integer(db_int(lines, i, 11)));
		}
		srcs = json_array();
		for (j = 0; j < n; j++) {
			if (db_int(ents, j, 0) != db_int(lines, i, 0))
				continue;
			json_array_append_new(
				srcs,
				json_pack("{s:I, s:s, s:s, s:I, s:I}", "id",
					  (json_int_t)db_int(ents, j, 1),
					  "started", db_text(ents, j, 2),
					  "user", db_text(ents, j, 3),
					  "raw_minutes",
					  (json_int_t)db_int(ents, j, 4),
					  "billed_minutes",
					  (json_int_t)db_int(ents, j, 5)));
		}
		json_object_set_new(line, "entries", srcs);
		json_object_set_new(
			line, "is_manual",
			json_boolean(!strcmp(db_text(lines, i, 2), "manual")));
		json_object_set_new(line, "has_entries",
				    json_boolean(json_array_size(srcs) > 0));
		json_object_set_new(line, "edited",
				    json_boolean(db_bool(lines, i, 14)));
		json_object_set_new(line, "tax_rate_id",
				    json_integer(db_int(lines, i, 15)));
		json_object_set_new(line, "rate_options",
				    rate_options(rates, db_int(lines, i, 15)));
		json_array_append_new(list, line);
	}
	json_object_set_new(o, "lines", list);
	list = json_array();
	for (i = 0; i < PQntuples(taxes); i++) {
		line = json_pack("{s:s}", "rate", db_text(taxes, i, 0));
		set_money(line, "net", db_text(taxes, i, 1), r);
		set_money(line, "tax", db_text(taxes, i, 2), r);
		json_array_append_new(list, line);
	}
	json_object_set_new(o, "taxes", list);
	list = json_array();
	for (i = 0; i < PQntuples(credits); i++) {
		line = json_pack("{s:I, s:s, s:s, s:s}", "id",
				 (json_int_t)db_int(credits, i, 0), "number",
				 db_text(credits, i, 1), "reason",
				 db_text(credits, i, 3), "issued_on",
				 db_text(credits, i, 4));
		set_money(line, "amount", db_text(credits, i, 2), r);
		parts = json_array();
		for (j = 0; j < PQntuples(clines); j++) {
			if (db_int(clines, j, 0) != db_int(credits, i, 0))
				continue;
			srcs = json_pack("{s:s, s:s}", "rate",
					 db_text(clines, j, 1), "description",
					 db_text(clines, j, 4));
			set_money(srcs, "net", db_text(clines, j, 2), r);
			set_money(srcs, "tax", db_text(clines, j, 3), r);
			json_array_append_new(parts, srcs);
		}
		json_object_set_new(line, "taxes", parts);
		json_object_set_new(line, "pdf_url",
				    json_string(arena_printf(
					    r->arena,
					    "/invoices/%" PRId64
					    "/credit-notes/%" PRId64 "/pdf",
					    id, db_int(credits, i, 0))));
		json_array_append_new(list, line);
	}
	json_object_set_new(o, "credit_notes", list);
	list = json_array();
	for (i = 0; i < PQntuples(left); i++) {
		line = json_pack(
			"{s:s, s:s}", "rate", db_text(left, i, 0), "field",
			arena_printf(r->arena, "net_%s", db_text(left, i, 0)));
		set_money(line, "net", db_text(left, i, 1), r);
		set_money(line, "tax", db_text(left, i, 2), r);
		json_array_append_new(list, line);
	}
	json_object_set_new(o, "credit_left", list);
	json_object_set_new(o, "rate_options", rate_options(rates, -1));
	list = json_array();
	for (i = 0; i < PQntuples(pays); i++) {
		line = json_pack("{s:I, s:s, s:s, s:s}", "id",
				 (json_int_t)db_int(pays, i, 0), "paid_on",
				 db_text(pays, i, 2), "method",
				 db_text(pays, i, 3), "reference",
				 db_text(pays, i, 4));
		set_money(line, "amount", db_text(pays, i, 1), r);
		json_array_append_new(list, line);
	}
	json_object_set_new(o, "payments", list);
	open = !strcmp(db_text(inv, 0, I_STATUS), "issued") ||
	       !strcmp(db_text(inv, 0, I_STATUS), "sent");
	json_object_set_new(o, "can_issue",
			    json_boolean(draft && PQntuples(lines) > 0));
	json_object_set_new(o, "can_edit", json_boolean(draft));
	json_object_set_new(o, "can_pay", json_boolean(open));
	json_object_set_new(o, "can_credit", json_boolean(open));
	json_object_set_new(v, "invoice", o);
	json_object_set_new(v, "today", json_string(db_text(today, 0, 0)));
	json_object_set_new(v, "form", json_object());
	json_object_set_new(
		v, "title",
		json_string(arena_printf(
			r->arena, "Invoice %s · %s",
			*db_text(inv, 0, I_NUMBER) ?
				db_text(inv, 0, I_NUMBER) :
				arena_printf(r->arena, "draft #%" PRId64, id),
			db_text(inv, 0, I_CLIENT))));
	r->view_name = "invoices/show";
	return TD_OK;
}

/* GET /invoices/:id — 404 for another tenant's invoice. */
enum td_err invoices_show(struct req *r)
{
	return show_page(r, route_arg_int(&r->args, "id"));
}

/* A write the invoice's state forbids: 409 with why, on its page. */
static enum td_err refuse(struct req *r, int64_t id, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = show_page(r, id);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = 409;
	return TD_OK;
}

/* Bad input: 422 for the API; the page again with the messages. */
static enum td_err reject(struct req *r, int64_t id, const char *const *keep)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "invoices/show", keep);
	err = show_page(r, id);
	if (err != TD_OK)
		return err;
	return form_reject(r, "invoices/show", keep);
}

/* After a write: the page again (API: the invoice) or 303 with a flash. */
static enum td_err done(struct req *r, int64_t id, const char *flash)
{
	enum td_err err;

	if (!r->want_json) {
		form_flash(r, "ok", flash);
		r->redirect = arena_printf(r->arena, "/invoices/%" PRId64, id);
		return TD_OK;
	}
	err = show_page(r, id);
	r->view_name = "invoices/show";
	return err;
}

/* The invoice's status, locked for this transaction; 404 if none. */
static enum td_err lock_invoice(struct req *r, int64_t id, const char **st)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err = req_query(r, sql_lock, 1, params, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no invoice %" PRId64, id);
	*st = arena_strdup(r->arena, db_text(res, 0, 0));
	return TD_OK;
}

/*
 * Locks invoice id for a change only a draft takes. Not a draft: *draft is
 * false and the answer is refuse(why)'s (the invoice page with a 409 for
 * browsers), so callers stop on `err != TD_OK || !draft`.
 */
static enum td_err lock_draft(struct req *r, int64_t id, const char *why,
			      bool *draft)
{
	const char *st;
	enum td_err err = lock_invoice(r, id, &st);

	*draft = false;
	if (err != TD_OK)
		return err;
	if (strcmp(st, "draft") != 0)
		return refuse(r, id, why);
	*draft = true;
	return TD_OK;
}

/* j, owned by the request (audit_write does not take it). */
static json_t *owned(struct req *r, json_t *j)
{
	req_own_json(r, j);
	return j;
}

static const char *user_param(struct req *r)
{
	return r->auth.user_id > 0 ? req_id(r, r->auth.user_id) : NULL;
}

/*
 * POST /invoices/:id/issue — assigns the tenant's next number (gapless:
 * taken in this transaction), today as the issue date and the due date
 * from the client's payment terms. 409 unless a draft with lines; 404.
 */
enum td_err invoices_issue(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), file_id;
	const char *params[3], *number, *pdf_number;
	PGresult *res, *today;
	enum td_err err;
	bool draft;

	err = lock_draft(r, id, "this invoice is already issued", &draft);
	if (err != TD_OK || !draft)
		return err;
	err = req_query(r, sql_today, 0, NULL, &today);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, id);
	params[1] = db_text(today, 0, 0);
	params[2] = user_param(r);
	err = req_query(r, sql_issue, 3, params, &res);
	if (err != TD_OK)
		return err;
	if (db_isnull(res, 0, 0))
		return refuse(r, id,
			      "an invoice without lines cannot be issued");
	number = arena_strdup(r->arena, db_text(res, 0, 0));
	err = stored_pdf(r, id, &file_id, &pdf_number);
	if (err != TD_OK)
		return err;
	err = audit_write(
		r, "invoice.issue", "invoice", id, NULL,
		owned(r, json_pack("{s:s, s:s, s:I}", "number", number,
				   "issued_on", params[1], "pdf_file_id",
				   (json_int_t)file_id)));
	if (err != TD_OK)
		return err;
	return done(r, id,
		    arena_printf(r->arena, "Invoice %s issued.", number));
}

/* The open balance of a locked invoice in minor units. */
static enum td_err balance_of(struct req *r, int64_t id, int64_t *out)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err = req_query(r, sql_one, 1, params, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 ||
	    money_parse(db_text(res, 0, I_BALANCE), true, out) != TD_OK)
		return req_fail(r, TD_ENOENT, "no invoice %" PRId64, id);
	return TD_OK;
}

/*
 * POST /invoices/:id/payments — amount (at most the balance), paid_on
 * (default today), method, reference. 422 for bad input; 409 unless the
 * invoice is issued; 404.
 */
enum td_err invoices_payment(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), amount = 0, balance;
	const char *st, *paid_on = form_text(r, "paid_on");
	const char *method = form_text(r, "method");
	const char *reference = form_text(r, "reference"), *params[6];
	char text[32];
	PGresult *res, *today;
	enum td_err err;

	err = lock_invoice(r, id, &st);
	if (err != TD_OK)
		return err;
	if (strcmp(st, "issued") != 0 && strcmp(st, "sent") != 0)
		return refuse(
			r, id,
			!strcmp(st, "draft") ?
				"issue the invoice before recording a payment" :
				"this invoice is void");
	err = balance_of(r, id, &balance);
	if (err != TD_OK)
		return err;
	if (money_parse(form_text(r, "amount"), false, &amount) != TD_OK ||
	    amount <= 0)
		form_error(r, "amount", "enter an amount such as 120.50");
	else if (amount > balance)
		form_error(r, "amount",
			   "more than the balance: record at most the balance");
	if (*paid_on == '\0') {
		err = req_query(r, sql_today, 0, NULL, &today);
		if (err != TD_OK)
			return err;
		paid_on = arena_strdup(r->arena, db_text(today, 0, 0));
	} else if (!valid_date(paid_on)) {
		form_error(r, "paid_on", "enter a date as YYYY-MM-DD");
	}
	if (*method == '\0')
		method = "bank_transfer";
	if (index_of(methods, method) < 0)
		form_error(r, "method",
			   "choose a payment method from the list");
	if (strlen(reference) > 200)
		form_error(r, "reference", "use at most 200 characters");
	if (form_has_errors(r))
		return reject(r, id, payment_fields);
	money_text(amount, text, sizeof(text));
	params[0] = req_id(r, id);
	params[1] = text;
	params[2] = paid_on;
	params[3] = method;
	params[4] = reference;
	params[5] = user_param(r);
	err = req_query(r, sql_payment, 6, params, &res);
	if (err != TD_OK)
		return err;
	err = audit_write(r, "invoice.payment", "invoice", id, NULL,
			  owned(r, json_pack("{s:s, s:s, s:s, s:s}", "amount",
					     text, "paid_on", paid_on, "method",
					     method, "reference", reference)));
	if (err != TD_OK)
		return err;
	return done(r, id,
		    arena_printf(r->arena, "Payment of %s recorded.", text));
}

/*
 * What to credit besides everything: the nets per rate asked for
 * (net_<rate> fields) as a jsonb array in *nets, and the chosen lines
 * (line_<id> ticked) as a bigint[] in *ids; NULL when none. Problems go
 * to form_error().
 */
static enum td_err credit_choice(struct req *r, int64_t id, const char **nets,
				 const char **ids)
{
	const char *params[1] = { req_id(r, id) }, *field, *v;
	PGresult *left, *lines;
	struct sbuf sb, li;
	enum td_err err;
	char text[32];
	int64_t n;
	int i;

	*nets = *ids = NULL;
	err = req_query(r, sql_credit_left, 1, params, &left);
	if (err == TD_OK)
		err = req_query(r, sql_lines, 1, params, &lines);
	if (err != TD_OK)
		return err;
	sbuf_init(&sb, r->arena, 128);
	for (i = 0; i < PQntuples(left); i++) {
		field = arena_printf(r->arena, "net_%s", db_text(left, i, 0));
		v = form_text(r, field);
		if (*v == '\0')
			continue;
		if (money_parse(v, false, &n) != TD_OK || n < 0) {
			form_error(r, field,
				   "enter the net amount to credit at this"
				   " rate, such as 100.00");
			continue;
		}
		if (n == 0)
			continue;
		money_text(n, text, sizeof(text));
		sbuf_addf(&sb, "%s{\"rate\": \"%s\", \"net\": \"%s\"}",
			  sb.len ? ", " : "", db_text(left, i, 3), text);
	}
	if (sb.len > 0)
		*nets = arena_printf(r->arena, "[%s]", sb.buf);
	sbuf_init(&li, r->arena, 64);
	for (i = 0; i < PQntuples(lines); i++)
		if (form_flag(r, arena_printf(r->arena, "line_%s",
					      db_text(lines, i, 0))))
			sbuf_addf(&li, "%s%s", li.len ? "," : "",
				  db_text(lines, i, 0));
	if (li.len > 0)
		*ids = arena_printf(r->arena, "{%s}", li.buf);
	return TD_OK;
}

/*
 * POST /invoices/:id/credit — a credit note with a reason, split by tax
 * rate like the invoice: everything not credited yet (nothing else
 * sent); or net_<rate> (the net to credit at that rate: its tax follows,
 * rounded, or all that is left at the rate when the net is); or
 * line_<id> ticked (those lines' nets by rate); or amount (tax included,
 * spread over the rates by what is left at each). Fully credited, the
 * invoice is void. 422 for bad input or more than is left; 409 unless
 * issued; 404.
 */
enum td_err invoices_credit(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), amount = 0;
	const char *st, *reason = form_text(r, "reason");
	const char *amount_in = form_text(r, "amount"), *params[5];
	const char *nets, *ids, *field = "amount", *how = "all";
	char text[32];
	PGresult *res, *today;
	enum td_err err;

	err = lock_invoice(r, id, &st);
	if (err != TD_OK)
		return err;
	if (strcmp(st, "issued") != 0 && strcmp(st, "sent") != 0)
		return refuse(
			r, id,
			!strcmp(st, "draft") ?
				"a draft needs no credit note: change it instead" :
				"this invoice is already fully credited");
	err = credit_choice(r, id, &nets, &ids);
	if (err != TD_OK)
		return err;
	if (*amount_in != '\0' &&
	    (money_parse(amount_in, false, &amount) != TD_OK || amount <= 0))
		form_error(r, "amount",
			   "enter an amount such as 120.50, or leave it empty"
			   " to credit the whole invoice");
	if ((*amount_in != '\0') + (nets != NULL) + (ids != NULL) > 1)
		form_error(r, "amount",
			   "credit an amount, nets per tax rate or chosen"
			   " lines: one of them");
	if (http_utf8_len(reason) < 1 || http_utf8_len(reason) > 1000)
		form_error(r, "reason", "say why, in at most 1000 characters");
	if (form_has_errors(r))
		return reject(r, id, credit_fields);
	err = req_query(r, sql_today, 0, NULL, &today);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, id);
	if (ids != NULL) {
		params[1] = ids;
		err = req_query(r, sql_lines_nets, 2, params, &res);
		if (err != TD_OK)
			return err;
		nets = arena_strdup(r->arena, db_text(res, 0, 0));
		field = "lines";
		how = "lines";
	} else if (nets != NULL) {
		field = "net";
		how = "nets";
	} else if (*amount_in != '\0') {
		money_text(amount, text, sizeof(text));
		how = text;
	}
	params[1] = nets != NULL ? nets : *amount_in != '\0' ? text : NULL;
	params[2] = reason;
	params[3] = db_text(today, 0, 0);
	params[4] = user_param(r);
	err = req_query(r, nets != NULL ? sql_credit_nets : sql_credit, 5,
			params, &res);
	if (err != TD_OK)
		return err;
	if (db_isnull(res, 0, 0)) {
		form_error(r, field,
			   "more than is left to credit on this invoice");
		return reject(r, id, credit_fields);
	}
	err = audit_write(
		r, "invoice.credit", "invoice", id, NULL,
		owned(r, json_pack("{s:I, s:s, s:s, s:s}", "credit_note_id",
				   (json_int_t)db_int(res, 0, 0), "amount", how,
				   "reason", reason, "parts",
				   nets != NULL ? nets : "")));
	if (err != TD_OK)
		return err;
	return done(r, id, "Credit note issued.");
}

/* Appends "label value" as a line of sb when value is not empty. */
static void add_detail(struct sbuf *sb, const char *label, const char *value)
{
	if (*value == '\0')
		return;
	if (sb->len > 0)
		sbuf_addch(sb, '\n');
	sbuf_addf(sb, "%s%s", label, value);
}

/*
 * The words of the PDF that the page does not show: the seller's details
 * (invoice settings), the buyer's, dates and how to pay; *logo the
 * tenant's PNG logo (NULL when none).
 */
static enum td_err add_pdf_words(struct req *r, int64_t id, json_t *v,
				 struct pdf_logo *logo)
{
	const char *params[1] = { req_id(r, id) };
	json_t *inv = json_object_get(v, "invoice"), *x;
	const char *number, *due;
	struct sbuf seller, pay;
	unsigned char *raw, *copy;
	PGresult *res;
	enum td_err err;
	size_t i, len;

	err = req_query(r, sql_parties, 1, params, &res);
	if (err != TD_OK)
		return err;
	logo->data = NULL;
	logo->len = 0;
	if (!db_isnull(res, 0, 13)) {
		raw = PQunescapeBytea(
			(const unsigned char *)db_text(res, 0, 13), &len);
		if (raw == NULL)
			return req_fail(r, TD_ESYS, "cannot decode the logo");
		copy = arena_alloc_raw(r->arena, len + 1);
		memcpy(copy, raw, len);
		logo->data = copy;
		logo->len = len;
		PQfreemem(raw);
	}
	sbuf_init(&seller, r->arena, 256);
	add_detail(&seller, "", db_text(res, 0, 5));
	add_detail(&seller, "VAT / tax number ", db_text(res, 0, 6));
	add_detail(&seller, "Company number ", db_text(res, 0, 7));
	add_detail(&seller, "", db_text(res, 0, 10));
	add_detail(&seller, "", db_text(res, 0, 11));
	json_object_set_new(
		v, "seller",
		json_pack("{s:s, s:s, s:s, s:s}", "name", db_text(res, 0, 0),
			  "details", sbuf_cstr(&seller), "colour",
			  db_text(res, 0, 12), "footer", db_text(res, 0, 9)));
	json_object_set_new(v, "buyer",
			    json_pack("{s:s, s:s, s:s}", "name",
				      db_text(res, 0, 1), "address",
				      db_text(res, 0, 2), "tax_number",
				      db_text(res, 0, 3)));
	json_object_set_new(v, "pdf_buyer_tax",
			    json_string(arena_printf(r->arena, "Tax number %s",
						     db_text(res, 0, 3))));
	number = json_string_value(json_object_get(inv, "number"));
	due = json_string_value(json_object_get(inv, "due_on"));
	json_object_set_new(
		v, "pdf_dates",
		json_string(arena_printf(
			r->arena, "Issued %s\nDue %s\nPeriod %s to %s",
			*number ? json_string_value(
					  json_object_get(inv, "issued_on")) :
				  "not yet",
			*due ? due :
			       arena_printf(r->arena, "%s days after issue",
					    db_text(res, 0, 4)),
			json_string_value(json_object_get(inv, "period_from")),
			json_string_value(json_object_get(inv, "period_to")))));
	sbuf_init(&pay, r->arena, 512);
	sbuf_addf(&pay,
		  "Payment terms: %s days. Please pay %s %s by bank transfer"
		  " quoting %s%s%s. Thank you for your business.",
		  db_text(res, 0, 4),
		  json_string_value(json_object_get(inv, "currency")),
		  json_string_value(json_object_get(inv, "balance_display")),
		  *number ? number : "the invoice number", *due ? " by " : "",
		  due);
	if (*db_text(res, 0, 8))
		sbuf_addf(&pay, "\n\nPayment details\n%s", db_text(res, 0, 8));
	json_object_set_new(v, "pdf_payment", json_string(sbuf_cstr(&pay)));
	json_object_set_new(
		inv, "pdf_total_label",
		json_string(arena_printf(
			r->arena, "Total %s",
			json_string_value(json_object_get(inv, "currency")))));
	json_array_foreach(json_object_get(inv, "lines"), i, x)
		json_object_set_new(x, "tax_label",
				    json_string(arena_printf(
					    r->arena, "%s%%",
					    json_string_value(json_object_get(
						    x, "tax_rate")))));
	json_array_foreach(json_object_get(inv, "taxes"), i, x)
		json_object_set_new(
			x, "label",
			json_string(arena_printf(
				r->arena, "Tax at %s%% on %s",
				json_string_value(json_object_get(x, "rate")),
				json_string_value(
					json_object_get(x, "net_display")))));
	return TD_OK;
}

/*
 * Draws invoice id as a PDF into out, from a view of its own (the
 * request's view is left as it was); *number its number ("" for a draft).
 */
static enum td_err draw_pdf(struct req *r, int64_t id, struct sbuf *out,
			    const char **number)
{
	json_t *saved = r->view, *v;
	const char *saved_name = r->view_name;
	struct pdf_logo logo;
	enum td_err err;

	r->view = NULL;
	v = req_view(r);
	err = show_page(r, id);
	if (err == TD_OK)
		err = add_pdf_words(r, id, v, &logo);
	r->view = saved;
	r->view_name = saved_name;
	if (err != TD_OK)
		return err;
	*number = json_string_value(
		json_object_get(json_object_get(v, "invoice"), "number"));
	sbuf_init(out, r->arena, 32768);
	if (invoices_pdf_render(v, &logo, out) != TD_OK)
		return req_fail(r, TD_ESYS,
				"cannot draw invoice %" PRId64 " as PDF", id);
	return TD_OK;
}

/* bytes as a bytea parameter ("\x0a1b..."). */
static const char *bytea_param(struct req *r, const char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *out = arena_alloc_raw(r->arena, 2 * n + 3), *w = out;
	size_t i;

	*w++ = '\\';
	*w++ = 'x';
	for (i = 0; i < n; i++) {
		*w++ = digits[(unsigned char)p[i] >> 4];
		*w++ = digits[(unsigned char)p[i] & 15];
	}
	*w = '\0';
	return out;
}

/*
 * The stored PDF of issued invoice id (drawn and stored now if it was
 * not yet): *file_id the stored file, *number the invoice's number.
 */
static enum td_err stored_pdf(struct req *r, int64_t id, int64_t *file_id,
			      const char **number)
{
	const char *params[2];
	struct sbuf sb;
	PGresult *res;
	enum td_err err;

	err = draw_pdf(r, id, &sb, number);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, id);
	params[1] = bytea_param(r, sb.buf, sb.len);
	err = req_query(r, sql_pdf_store, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ECONFLICT,
				"invoice %" PRId64 " is a draft", id);
	*file_id = db_int(res, 0, 0);
	return TD_OK;
}

/* "INV-0042.pdf": the number with anything unsafe in a file name as '-'. */
static const char *pdf_filename(struct req *r, const char *number, int64_t id)
{
	char *name;
	size_t i;

	if (*number == '\0')
		return arena_printf(r->arena, "draft-%" PRId64 ".pdf", id);
	name = arena_printf(r->arena, "%.100s.pdf", number);
	for (i = 0; name[i] != '\0'; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			name[i] = '-';
	if (!isalnum((unsigned char)name[0]))
		name[0] = 'I';
	return name;
}

/*
 * GET /invoices/:id/pdf — the invoice as a PDF: an issued invoice's is
 * the file stored when it was issued; a draft's is drawn now. 404.
 */
enum td_err invoices_pdf(struct req *r)
{
	return invoices_pdf_of(r, route_arg_int(&r->args, "id"));
}

enum td_err invoices_pdf_of(struct req *r, int64_t id)
{
	const char *number, *params[1] = { req_id(r, id) };
	unsigned char *raw;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	size_t len;

	err = req_query(r, sql_pdf_stored, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1) {
		raw = PQunescapeBytea((const unsigned char *)db_text(res, 0, 0),
				      &len);
		if (raw == NULL)
			return req_fail(r, TD_ESYS, "cannot decode the PDF");
		sbuf_init(&sb, r->arena, len + 1);
		sbuf_add(&sb, (const char *)raw, len);
		PQfreemem(raw);
		err = req_query(r, sql_one, 1, params, &res);
		if (err != TD_OK)
			return err;
		number = db_text(res, 0, I_NUMBER);
	} else {
		err = draw_pdf(r, id, &sb, &number);
		if (err != TD_OK)
			return err;
	}
	r->body_out = sb.buf;
	r->body_out_len = sb.len;
	r->body_type = "application/pdf";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena, "inline; filename=\"%s\"",
				pdf_filename(r, number, id)));
	return TD_OK;
}

/*
 * GET /clients/:id/billing — what each contract in force would bill for
 * its cycle so far (month-to-date, before tax), from the engine's own
 * computation; nothing is written. 404 for another tenant's client.
 */
enum td_err invoices_preview(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), sum = 0, all = 0, v;
	const char *params[1];
	struct clientctx c;
	json_t *view, *list, *cur = NULL, *lines = NULL, *line;
	char buf[32];
	PGresult *res;
	enum td_err err;
	int i;

	err = clientctx_load(r, id, "contracts", &c);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, id);
	err = req_query(r, sql_preview, 1, params, &res);
	if (err != TD_OK)
		return err;
	view = req_view(r);
	list = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		if (cur == NULL || i == 0 ||
		    db_int(res, i, 0) != db_int(res, i - 1, 0)) {
			if (cur != NULL) {
				money_display(sum, buf, sizeof(buf));
				json_object_set_new(cur, "total",
						    json_string(buf));
			}
			sum = 0;
			lines = json_array();
			cur = json_pack("{s:I, s:s, s:s, s:o}", "contract_id",
					(json_int_t)db_int(res, i, 0),
					"contract", db_text(res, i, 1), "usage",
					db_text(res, i, 2), "lines", lines);
			json_array_append_new(list, cur);
		}
		if (money_parse(db_text(res, i, 8), true, &v) != TD_OK)
			return req_fail(r, TD_EDB, "bad amount '%s'",
					db_text(res, i, 8));
		sum += v;
		all += v;
		line = json_pack("{s:s, s:s, s:s}", "description",
				 db_text(res, i, 4), "breakdown",
				 db_text(res, i, 5), "quantity",
				 db_text(res, i, 6));
		set_money(line, "unit_price", db_text(res, i, 7), r);
		set_money(line, "amount", db_text(res, i, 8), r);
		json_array_append_new(lines, line);
	}
	if (cur != NULL) {
		money_display(sum, buf, sizeof(buf));
		json_object_set_new(cur, "total", json_string(buf));
	}
	json_object_set_new(view, "contracts", list);
	money_display(all, buf, sizeof(buf));
	json_object_set_new(view, "total", json_string(buf));
	json_object_set_new(view, "title",
			    json_string(arena_printf(
				    r->arena, "Billing so far · %s", c.name)));
	r->view_name = "invoices/preview";
	return TD_OK;
}

/* The mail's text: who, what, how much, by when, and the lines. */
static const char *send_body(struct req *r, json_t *inv, const char *seller)
{
	struct sbuf sb;
	json_t *line;
	size_t i;

	sbuf_init(&sb, r->arena, 1024);
	sbuf_addf(&sb, "Invoice %s from %s\n\n",
		  json_string_value(json_object_get(inv, "number")), seller);
	json_array_foreach(json_object_get(inv, "lines"), i, line) sbuf_addf(
		&sb, "%s: %s\n",
		json_string_value(json_object_get(line, "description")),
		json_string_value(json_object_get(line, "amount_display")));
	sbuf_addf(&sb,
		  "\nTotal %s %s, balance %s, due %s.\n"
		  "The invoice is attached as a PDF.\n",
		  json_string_value(json_object_get(inv, "currency")),
		  json_string_value(json_object_get(inv, "total_display")),
		  json_string_value(json_object_get(inv, "balance_display")),
		  json_string_value(json_object_get(inv, "due_on")));
	return sb.buf;
}

/*
 * POST /invoices/:id/send — queues the invoice to the client's billing
 * contact (else the client's address) in the outbox, which outbox-send
 * delivers; the invoice becomes sent. Again later: sent again. 409 for a
 * draft or a void invoice; 422 when the client has no address; 404.
 */
enum td_err invoices_send(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), file_id;
	const char *st, *params[4], *attach[4], *number, *filename;
	PGresult *to, *res, *pdf;
	json_t *inv;
	enum td_err err;

	err = lock_invoice(r, id, &st);
	if (err != TD_OK)
		return err;
	if (strcmp(st, "issued") != 0 && strcmp(st, "sent") != 0)
		return refuse(r, id,
			      !strcmp(st, "draft") ?
				      "issue the invoice before sending it" :
				      "this invoice is void");
	params[0] = req_id(r, id);
	err = req_query(r, sql_send_to, 1, params, &to);
	if (err == TD_OK)
		err = show_page(r, id);
	if (err != TD_OK)
		return err;
	if (*db_text(to, 0, 0) == '\0') {
		form_error(
			r, "to",
			"the client has no billing contact or email address");
		return form_reject(r, "invoices/show", NULL);
	}
	inv = json_object_get(req_view(r), "invoice");
	params[1] = db_text(to, 0, 0);
	params[2] =
		arena_printf(r->arena, "Invoice %s from %s",
			     json_string_value(json_object_get(inv, "number")),
			     db_text(to, 0, 1));
	params[3] = send_body(r, inv, db_text(to, 0, 1));
	err = req_query(r, sql_send, 4, params, &res);
	if (err == TD_OK)
		err = req_query(r, sql_pdf_file, 1, params, &pdf);
	if (err != TD_OK)
		return err;
	if (PQntuples(pdf) == 1) {
		file_id = db_int(pdf, 0, 0);
		number = db_text(pdf, 0, 1);
	} else {
		/* issued before PDFs were stored: stored now, as it is */
		err = stored_pdf(r, id, &file_id, &number);
		if (err != TD_OK)
			return err;
	}
	filename = pdf_filename(r, number, id);
	attach[0] = db_text(res, 0, 0);
	attach[1] = "1";
	attach[2] = filename;
	attach[3] = req_id(r, file_id);
	err = req_query(r, sql_attach, 4, attach, NULL);
	if (err != TD_OK)
		return err;
	err = audit_write(
		r, "invoice.send", "invoice", id, NULL,
		owned(r, json_pack("{s:s, s:I, s:s}", "to", params[1],
				   "outbox_id", (json_int_t)db_int(res, 0, 0),
				   "attachment", filename)));
	if (err != TD_OK)
		return err;
	return done(r, id,
		    arena_printf(r->arena, "Invoice queued to %s.", params[1]));
}

static const char *const line_fields[] = { "description", "quantity",
					   "unit_price", "tax_rate_id", NULL };

/*
 * POST /invoices — a manual draft for client_id (no contract): 201 (API)
 * or 303 to it; 422 for a missing, archived or merged client.
 */
enum td_err invoices_create(struct req *r)
{
	const char *client = id_param(r, form_text(r, "client_id"));
	const char *params[2];
	PGresult *res;
	enum td_err err;
	int64_t id;

	if (client == NULL)
		return req_fail(r, TD_EINPUT, "'client_id' is not a client id");
	params[0] = client;
	params[1] = user_param(r);
	err = req_query(r, sql_new_invoice, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		form_error(r, "client_id",
			   "choose an active client of this workspace");
		return form_reject(r, "invoices/list", NULL);
	}
	id = db_int(res, 0, 0);
	err = audit_write(r, "invoice.create", "invoice", id, NULL,
			  owned(r, json_pack("{s:s, s:b}", "client_id", client,
					     "manual", 1)));
	if (err != TD_OK)
		return err;
	if (r->want_json)
		r->status = 201;
	return done(r, id, "Draft invoice created.");
}

/*
 * POST /invoices/:id/lines — an ad-hoc line on a draft: description,
 * quantity (two decimals), unit price (may be negative: a discount), tax
 * rate (default: the tenant's). 422 for bad input; 409 unless a draft.
 */
enum td_err invoices_line_add(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), qty = 0, price = 0, amt = 0;
	const char *desc = form_text(r, "description"), *params[7];
	const char *tax = form_text(r, "tax_rate_id");
	char tq[32], tp[32], ta[32];
	PGresult *rate, *res;
	enum td_err err;
	bool draft;

	err = lock_draft(r, id,
			 "an issued invoice never changes: use a credit note",
			 &draft);
	if (err != TD_OK || !draft)
		return err;
	if (http_utf8_len(desc) < 1 || http_utf8_len(desc) > 500)
		form_error(r, "description",
			   "enter a description of at most 500 characters");
	if (money_parse(form_text(r, "quantity"), false, &qty) != TD_OK ||
	    qty <= 0)
		form_error(r, "quantity", "enter a quantity such as 1 or 2.5");
	if (money_parse(form_text(r, "unit_price"), true, &price) != TD_OK)
		form_error(r, "unit_price", "enter a price such as 95.00");
	else if (qty > 0 && money_mul(qty, price, &amt) != TD_OK)
		form_error(r, "unit_price", "the amount is too large");
	params[0] = *tax ? id_param(r, tax) : NULL;
	if (*tax && params[0] == NULL)
		form_error(r, "tax_rate_id", "choose a tax rate from the list");
	if (form_has_errors(r))
		return reject(r, id, line_fields);
	err = req_query(r, sql_tax_rate, 1, params, &rate);
	if (err != TD_OK)
		return err;
	if (*tax && PQntuples(rate) != 1) {
		form_error(r, "tax_rate_id", "choose a tax rate from the list");
		return reject(r, id, line_fields);
	}
	money_text(qty, tq, sizeof(tq));
	money_text(price, tp, sizeof(tp));
	money_text(amt, ta, sizeof(ta));
	params[0] = req_id(r, id);
	params[1] = desc;
	params[2] = tq;
	params[3] = tp;
	params[4] = ta;
	params[5] = PQntuples(rate) == 1 ? db_text(rate, 0, 0) : NULL;
	params[6] = PQntuples(rate) == 1 ? db_text(rate, 0, 1) : NULL;
	err = req_query(r, sql_add_line, 7, params, &res);
	if (err != TD_OK)
		return err;
	err = audit_write(
		r, "invoice.line_add", "invoice", id, NULL,
		owned(r, json_pack("{s:s, s:s, s:s, s:s}", "description", desc,
				   "quantity", tq, "unit_price", tp, "amount",
				   ta)));
	if (err != TD_OK)
		return err;
	return done(r, id, "Line added.");
}

/*
 * A quantity: up to 10 digits, and up to 10 decimals; more than zero.
 * (Billed lines carry quantities such as 108.3333333333.)
 */
static bool quantity_ok(const char *s)
{
	size_t i = 0, whole = 0, dec = 0;
	bool nonzero = false;

	for (; isdigit((unsigned char)s[i]); i++, whole++)
		nonzero |= s[i] != '0';
	if (s[i] == '.')
		for (i++; isdigit((unsigned char)s[i]); i++, dec++)
			nonzero |= s[i] != '0';
	return s[i] == '\0' && whole >= 1 && whole <= 10 && dec <= 10 &&
	       (s[whole] != '.' || dec > 0) && nonzero;
}

static const char *const edit_fields[] = { "description", "quantity",
					   "unit_price", "tax_rate_id", NULL };

/*
 * Locks invoice id, which must be a draft, and reads its line (404 when it
 * has no such line). params get the two ids. Not a draft: *old stays NULL
 * and the answer is refuse()'s (the invoice page with a 409 for browsers).
 */
static enum td_err draft_line(struct req *r, int64_t id, int64_t line,
			      const char *params[2], PGresult **old)
{
	bool draft;
	enum td_err err = lock_draft(
		r, id, "an issued invoice never changes: use a credit note",
		&draft);

	*old = NULL;
	if (err != TD_OK || !draft)
		return err;
	params[0] = req_id(r, id);
	params[1] = req_id(r, line);
	err = req_query(r, sql_line_one, 2, params, old);
	if (err == TD_OK && PQntuples(*old) != 1)
		return req_fail(r, TD_ENOENT,
				"no line %" PRId64 " on invoice %" PRId64, line,
				id);
	return err;
}

/*
 * POST /invoices/:id/lines/:line_id — changes a line of a draft, billed
 * or ad hoc: description, quantity (up to 10 decimals), unit price, tax
 * rate; a field not sent keeps its value. The amount is quantity × unit
 * price to the penny; the totals follow. The time entries a line billed
 * stay with it. 422 for bad input; 409 unless a draft; 404.
 */
enum td_err invoices_line_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), price;
	int64_t line = route_arg_int(&r->args, "line_id");
	const char *params[7], *desc, *qty, *price_in, *tax;
	char tp[32];
	PGresult *old, *rate, *res;
	json_t *before, *after;
	enum td_err err;

	err = draft_line(r, id, line, params, &old);
	if (err != TD_OK || old == NULL)
		return err;
	desc = form_sent(r, "description") ? form_text(r, "description") :
					     db_text(old, 0, 0);
	qty = form_sent(r, "quantity") ? form_text(r, "quantity") :
					 db_text(old, 0, 1);
	price_in = form_sent(r, "unit_price") ? form_text(r, "unit_price") :
						db_text(old, 0, 2);
	tax = form_text(r, "tax_rate_id");
	if (http_utf8_len(desc) < 1 || http_utf8_len(desc) > 500)
		form_error(r, "description",
			   "enter a description of at most 500 characters");
	if (!quantity_ok(qty))
		form_error(r, "quantity",
			   "enter a quantity such as 1, 2.5 or 108.3333");
	if (money_parse(price_in, true, &price) != TD_OK)
		form_error(r, "unit_price", "enter a price such as 95.00");
	params[0] = *tax ? id_param(r, tax) : NULL;
	if (*tax && params[0] == NULL)
		form_error(r, "tax_rate_id", "choose a tax rate from the list");
	if (form_has_errors(r))
		return reject(r, id, edit_fields);
	rate = NULL;
	if (*tax) {
		err = req_query(r, sql_tax_rate, 1, params, &rate);
		if (err != TD_OK)
			return err;
		if (PQntuples(rate) != 1) {
			form_error(r, "tax_rate_id",
				   "choose a tax rate from the list");
			return reject(r, id, edit_fields);
		}
	}
	money_text(price, tp, sizeof(tp));
	params[0] = req_id(r, id);
	params[1] = req_id(r, line);
	params[2] = desc;
	params[3] = qty;
	params[4] = tp;
	if (rate != NULL) {
		params[5] = db_text(rate, 0, 0);
		params[6] = db_text(rate, 0, 1);
	} else {
		params[5] = db_isnull(old, 0, 4) ? NULL : db_text(old, 0, 4);
		params[6] = db_text(old, 0, 5);
	}
	err = req_query(r, sql_line_update, 7, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		form_error(r, "unit_price", "the amount is too large");
		return reject(r, id, edit_fields);
	}
	before = owned(
		r, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "line_id",
			     (json_int_t)line, "kind", db_text(old, 0, 6),
			     "description", db_text(old, 0, 0), "quantity",
			     db_text(old, 0, 1), "unit_price",
			     db_text(old, 0, 2), "amount", db_text(old, 0, 3),
			     "tax_rate", db_text(old, 0, 5)));
	after = owned(r, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "line_id",
				   (json_int_t)line, "description", desc,
				   "quantity", qty, "unit_price", tp, "amount",
				   db_text(res, 0, 0), "tax_rate", params[6]));
	err = audit_write(r, "invoice.line_update", "invoice", id, before,
			  after);
	if (err != TD_OK)
		return err;
	return done(r, id, "Line changed.");
}

/*
 * POST /invoices/:id/lines/:line_id/delete — removes a line of a draft,
 * billed or ad hoc; the time entries it billed are released, and the
 * next billing run bills them again (once). 409 unless a draft; 404.
 */
enum td_err invoices_line_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t line = route_arg_int(&r->args, "line_id");
	const char *params[2];
	PGresult *old, *res;
	enum td_err err;

	err = draft_line(r, id, line, params, &old);
	if (err != TD_OK || old == NULL)
		return err;
	err = req_query(r, sql_del_line, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (db_isnull(res, 0, 0))
		return req_fail(r, TD_ENOENT,
				"no line %" PRId64 " on invoice %" PRId64, line,
				id);
	err = audit_write(
		r, "invoice.line_delete", "invoice", id,
		owned(r, json_pack("{s:I, s:s, s:s, s:s, s:s}", "line_id",
				   (json_int_t)line, "kind", db_text(old, 0, 6),
				   "description", db_text(old, 0, 0),
				   "quantity", db_text(old, 0, 1), "amount",
				   db_text(old, 0, 3))),
		NULL);
	if (err != TD_OK)
		return err;
	return done(r, id, "Line removed.");
}

/*
 * POST /invoices/:id/delete — deletes a draft: its time is released and
 * its billing period billed again by the next run. 303 to /invoices (the
 * API gets {deleted}); 409 unless a draft; 404.
 */
enum td_err invoices_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1];
	PGresult *res;
	enum td_err err;
	bool draft;

	err = lock_draft(
		r, id, "an issued invoice is never deleted: use a credit note",
		&draft);
	if (err != TD_OK || !draft)
		return err;
	params[0] = req_id(r, id);
	err = req_query(r, sql_del_draft, 1, params, &res);
	if (err != TD_OK)
		return err;
	err = audit_write(r, "invoice.delete", "invoice", id, NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted", json_integer(id));
	if (!r->want_json) {
		form_flash(r, "ok", "Draft deleted.");
		r->redirect = "/invoices";
	}
	return TD_OK;
}

static const char *const settings_fields[] = {
	"business_address", "tax_number", "company_number",
	"payment_details",  "footer",	  NULL
};
static const int settings_max[] = { 500, 50, 50, 1000, 500 };

/* The invoice settings into the view's "form" (empty when never saved). */
static enum td_err settings_page(struct req *r)
{
	json_t *v = req_view(r), *form;
	PGresult *res, *logo;
	enum td_err err;
	int i;

	err = req_query(r, sql_settings, 0, NULL, &res);
	if (err == TD_OK)
		err = req_query(r, sql_has_logo, 0, NULL, &logo);
	if (err != TD_OK)
		return err;
	form = json_object();
	for (i = 0; settings_fields[i] != NULL; i++)
		json_object_set_new(form, settings_fields[i],
				    json_string(PQntuples(res) == 1 ?
							db_text(res, 0, i) :
							""));
	json_object_set_new(v, "form", form);
	json_object_set_new(v, "settings", json_deep_copy(form));
	json_object_set_new(
		v, "logo",
		PQntuples(logo) == 1 ?
			json_pack("{s:s, s:s, s:b}", "url", "/settings/logo",
				  "type", db_text(logo, 0, 0), "on_pdf",
				  !strcmp(db_text(logo, 0, 0), "image/png")) :
			json_null());
	json_object_set_new(v, "title", json_string("Invoice settings"));
	r->view_name = "invoices/settings";
	return TD_OK;
}

/*
 * GET /invoices/settings — what invoices say about the workspace: its
 * address, tax and company numbers, payment details and a footer (the
 * logo is the workspace's, uploaded under Settings).
 */
enum td_err invoices_settings(struct req *r)
{
	return settings_page(r);
}

/* POST /invoices/settings — 422 when a field is too long. */
enum td_err invoices_settings_save(struct req *r)
{
	const char *params[5];
	json_t *before, *after;
	PGresult *res;
	enum td_err err;
	int i;

	for (i = 0; settings_fields[i] != NULL; i++) {
		params[i] = form_text(r, settings_fields[i]);
		if (http_utf8_len(params[i]) > (size_t)settings_max[i])
			form_error(r, settings_fields[i],
				   arena_printf(r->arena,
						"use at most %d characters",
						settings_max[i]));
	}
	if (form_has_errors(r)) {
		err = settings_page(r);
		if (err != TD_OK)
			return err;
		return form_reject(r, "invoices/settings", settings_fields);
	}
	err = req_query(r, sql_settings, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	before = json_object();
	after = json_object();
	req_own_json(r, before);
	req_own_json(r, after);
	for (i = 0; settings_fields[i] != NULL; i++) {
		if (PQntuples(res) == 1)
			json_object_set_new(before, settings_fields[i],
					    json_string(db_text(res, 0, i)));
		json_object_set_new(after, settings_fields[i],
				    json_string(params[i]));
	}
	err = req_query(r, sql_settings_save, 5, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "invoice_settings.update", "tenant",
				  r->auth.tenant_id,
				  PQntuples(res) == 1 ? before : NULL, after);
	if (err != TD_OK)
		return err;
	if (!r->want_json) {
		form_flash(r, "ok", "Invoice settings saved.");
		r->redirect = "/invoices/settings";
		return TD_OK;
	}
	return settings_page(r);
}

/* The credit note cn of the invoice's view v, or NULL. */
static json_t *credit_note_of(json_t *v, int64_t cn)
{
	json_t *x;
	size_t i;

	json_array_foreach(
		json_object_get(json_object_get(v, "invoice"), "credit_notes"),
		i, x) if (json_integer_value(json_object_get(x, "id")) ==
			  cn) return x;
	return NULL;
}

/* The invoice view v reshaped as credit note note: its parts as lines. */
static void as_credit_note(struct req *r, json_t *v, json_t *note,
			   const char *reason)
{
	json_t *inv = json_object_get(v, "invoice"), *lines, *taxes, *x;
	const char *rate,
		*cur = json_string_value(json_object_get(inv, "currency"));
	const char *number = json_string_value(json_object_get(inv, "number"));
	int64_t sum = 0, n;
	char buf[32];
	size_t i;

	lines = json_array();
	taxes = json_array();
	json_array_foreach(json_object_get(note, "taxes"), i, x)
	{
		rate = json_string_value(json_object_get(x, "rate"));
		json_array_append_new(
			lines,
			json_pack(
				"{s:s, s:s, s:s, s:s, s:s, s:s}", "description",
				arena_printf(r->arena, "Credit at %s%%", rate),
				"breakdown",
				*json_string_value(
					json_object_get(x, "description")) ?
					json_string_value(json_object_get(
						x, "description")) :
					reason,
				"quantity", "1", "unit_price_display",
				json_string_value(
					json_object_get(x, "net_display")),
				"tax_label",
				arena_printf(r->arena, "%s%%", rate),
				"amount_display",
				json_string_value(
					json_object_get(x, "net_display"))));
		json_array_append_new(
			taxes,
			json_pack("{s:s, s:s}", "label",
				  arena_printf(
					  r->arena, "Tax at %s%% on %s", rate,
					  json_string_value(json_object_get(
						  x, "net_display"))),
				  "tax_display",
				  json_string_value(
					  json_object_get(x, "tax_display"))));
		if (money_parse(json_string_value(json_object_get(x, "net")),
				true, &n) == TD_OK)
			sum += n;
	}
	money_display(sum, buf, sizeof(buf));
	json_object_set_new(v, "pdf_title", json_string("CREDIT NOTE"));
	json_object_set_new(v, "pdf_credit_note", json_true());
	json_object_set_new(
		v, "pdf_dates",
		json_string(arena_printf(
			r->arena, "Issued %s\nCredits invoice %s\nissued %s",
			json_string_value(json_object_get(note, "issued_on")),
			number,
			json_string_value(json_object_get(inv, "issued_on")))));
	json_object_set_new(
		v, "pdf_payment",
		json_string(arena_printf(
			r->arena,
			"Reason: %s\nThis credit note reduces what is owed on"
			" invoice %s by %s %s.",
			reason, number, cur,
			json_string_value(
				json_object_get(note, "amount_display")))));
	json_object_set_new(inv, "lines", lines);
	json_object_set_new(inv, "taxes", taxes);
	json_object_set_new(inv, "subtotal_display", json_string(buf));
	json_object_set_new(
		inv, "total_display",
		json_deep_copy(json_object_get(note, "amount_display")));
	json_object_set_new(
		inv, "pdf_total_label",
		json_string(arena_printf(r->arena, "Total credited %s", cur)));
	json_object_set_new(inv, "number",
			    json_deep_copy(json_object_get(note, "number")));
}

/*
 * GET /invoices/:id/credit-notes/:credit_note_id/pdf — the credit note
 * as a PDF, drawn like the invoice it credits: what it gives back at
 * each tax rate, net and tax, and its total. 404.
 */
enum td_err invoices_credit_note_pdf(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t cn = route_arg_int(&r->args, "credit_note_id");
	const char *params[2], *saved_name = r->view_name, *number;
	json_t *saved = r->view, *v, *note;
	struct pdf_logo logo;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;

	params[0] = req_id(r, id);
	params[1] = req_id(r, cn);
	err = req_query(r, sql_credit_one, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT,
				"no credit note %" PRId64
				" on invoice %" PRId64,
				cn, id);
	r->view = NULL;
	v = req_view(r);
	err = show_page(r, id);
	if (err == TD_OK)
		err = add_pdf_words(r, id, v, &logo);
	r->view = saved;
	r->view_name = saved_name;
	if (err != TD_OK)
		return err;
	note = credit_note_of(v, cn);
	if (note == NULL)
		return req_fail(r, TD_ENOENT, "no credit note %" PRId64, cn);
	as_credit_note(r, v, note, db_text(res, 0, 1));
	sbuf_init(&sb, r->arena, 32768);
	if (invoices_pdf_render(v, &logo, &sb) != TD_OK)
		return req_fail(r, TD_ESYS,
				"cannot draw credit note %" PRId64 " as PDF",
				cn);
	number = db_text(res, 0, 0);
	r->body_out = sb.buf;
	r->body_out_len = sb.len;
	r->body_type = "application/pdf";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena, "inline; filename=\"%s\"",
				pdf_filename(r, number, cn)));
	return TD_OK;
}
