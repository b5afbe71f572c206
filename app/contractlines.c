/* contractlines.c: a contract's recurring lines and their live quantities */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "contracts.h"
#include "contractutil.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "money.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "banned.h"

#define LINE_COLS                                                                 \
	"l.id, l.description, l.quantity_source, coalesce(l.quantity::text, '')," \
	" array_to_json(l.asset_kinds)::text,"                                    \
	" array_to_json(l.asset_categories)::text, l.unit_price::text,"           \
	" l.tax_rate_id, coalesce(tr.name, ''), l.service_code,"                  \
	" l.billing_category"

enum {
	L_ID,
	L_DESCRIPTION,
	L_SOURCE,
	L_QUANTITY,
	L_KINDS,
	L_CATEGORIES,
	L_PRICE,
	L_TAX_ID,
	L_TAX,
	L_SERVICE,
	L_CATEGORY,
	L_LIVE,
};

/*
 * The lines of contract $1 (client $2), each with its quantity today:
 * the fixed one, or the client's billable assets matching the filter as
 * billing counts them (asset_daily_counts for today).
 */
static const char sql_lines[] =
	"SELECT " LINE_COLS ", CASE WHEN l.quantity_source = 'fixed'"
	" THEN l.quantity::text ELSE (SELECT x.count::numeric(12, 2)::text"
	" FROM asset_daily_counts($2::bigint, d.today, d.today, t.time_zone,"
	" l.asset_kinds, l.asset_categories) x) END"
	" FROM contract_lines l JOIN tenants t ON t.id = l.tenant_id"
	" CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE t.time_zone)::date"
	" AS today) d LEFT JOIN tax_rates tr ON tr.tenant_id = l.tenant_id"
	" AND tr.id = l.tax_rate_id"
	" WHERE l.tenant_id = app_tenant() AND l.contract_id = $1"
	" ORDER BY l.id";
static const char sql_line_lock[] =
	"SELECT " LINE_COLS " FROM contract_lines l LEFT JOIN tax_rates tr"
	" ON tr.tenant_id = l.tenant_id AND tr.id = l.tax_rate_id"
	" WHERE l.tenant_id = app_tenant() AND l.id = $1 AND l.contract_id = $2"
	" FOR UPDATE OF l";
static const char sql_contract_state[] =
	"SELECT state, client_id, name FROM contracts"
	" WHERE tenant_id = app_tenant() AND id = $1 FOR UPDATE";
/* Built-in asset kinds (as in assets.c) and the tenant's own. */
static const char sql_kinds[] =
	"SELECT key, label FROM (VALUES ('workstation', 'Workstation', 1),"
	" ('server', 'Server', 2), ('network', 'Network device', 3),"
	" ('m365_user', 'Microsoft 365 user', 4), ('domain', 'Domain', 5),"
	" ('other', 'Other', 6)) b(key, label, pos)"
	" UNION ALL SELECT key, name FROM (SELECT key, name FROM asset_kinds"
	" WHERE tenant_id = app_tenant() ORDER BY lower(name)) k";
static const char sql_taxes[] =
	"SELECT id, name, archived FROM tax_rates WHERE tenant_id = app_tenant()"
	" ORDER BY archived, lower(name)";
static const char sql_tax_ok[] =
	"SELECT archived FROM tax_rates WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_line_insert[] =
	"INSERT INTO contract_lines (tenant_id, contract_id, description,"
	" quantity_source, quantity, asset_kinds, asset_categories, unit_price,"
	" tax_rate_id, service_code, billing_category)"
	" VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
	" RETURNING id";
static const char sql_line_update[] =
	"UPDATE contract_lines SET description = $3, quantity_source = $4,"
	" quantity = $5, asset_kinds = $6, asset_categories = $7,"
	" unit_price = $8, tax_rate_id = $9, service_code = $10,"
	" billing_category = $11 WHERE tenant_id = app_tenant() AND id = $1"
	" AND contract_id = $2";
static const char sql_line_delete[] =
	"DELETE FROM contract_lines WHERE tenant_id = app_tenant() AND id = $1"
	" AND contract_id = $2";

#define QUANTITY_MAX INT64_C(9999999999) /* numeric(10,2) in hundredths */
#define FILTER_MAX   20
#define CATEGORY_MAX 100

static const char *const line_fields[] = { "description",    "quantity_source",
					   "quantity",	     "asset_categories",
					   "unit_price",     "tax_rate_id",
					   "service_code",   "billing_category",
					   "effective_from", NULL };

/* A quantity in hundredths as "12" or "1.50". */
static const char *quantity_text(struct req *r, int64_t q)
{
	if (q % 100 == 0)
		return arena_printf(r->arena, "%" PRId64, q / 100);
	return arena_printf(r->arena, "%" PRId64 ".%02" PRId64, q / 100,
			    q % 100);
}

static json_t *parse_array(const char *text)
{
	json_t *a = json_loads(text, 0, NULL);

	return a != NULL ? a : json_array();
}

/* [{key, label, checked}] of every asset kind, those in chosen ticked. */
static json_t *kind_choices(const PGresult *kinds, json_t *chosen)
{
	json_t *list = json_array(), *x;
	size_t j;
	int i;
	bool on;

	for (i = 0; i < PQntuples(kinds); i++) {
		on = false;
		json_array_foreach(chosen, j, x)
		{
			if (json_is_string(x) &&
			    !strcmp(json_string_value(x), db_text(kinds, i, 0)))
				on = true;
		}
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:b}", "key",
					db_text(kinds, i, 0), "label",
					db_text(kinds, i, 1), "checked", on));
	}
	return list;
}

static const char *kind_label(const PGresult *kinds, const char *key)
{
	int i;

	for (i = 0; i < PQntuples(kinds); i++)
		if (!strcmp(db_text(kinds, i, 0), key))
			return db_text(kinds, i, 1);
	return key;
}

/* [{id, name, selected}] of the tax rates, archived ones only if chosen. */
static json_t *tax_choices(const PGresult *taxes, const char *chosen)
{
	json_t *list = json_array();
	bool on;
	int i;

	for (i = 0; i < PQntuples(taxes); i++) {
		on = chosen != NULL && !strcmp(chosen, db_text(taxes, i, 0));
		if (db_bool(taxes, i, 2) && !on)
			continue;
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:b}", "id",
					(json_int_t)db_int(taxes, i, 0), "name",
					db_text(taxes, i, 1), "selected", on));
	}
	return list;
}

/* "Workstation, Server · Laptop" for an asset filter; "All assets" if none. */
static const char *filter_text(struct req *r, const PGresult *kinds, json_t *ks,
			       json_t *cs)
{
	struct sbuf sb;
	json_t *x;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	json_array_foreach(ks, i, x)
	{
		if (i > 0)
			sbuf_adds(&sb, ", ");
		sbuf_adds(&sb, kind_label(kinds, json_string_value(x)));
	}
	if (json_array_size(ks) == 0)
		sbuf_adds(&sb, "All kinds");
	if (json_array_size(cs) > 0) {
		sbuf_adds(&sb, " · ");
		json_array_foreach(cs, i, x)
		{
			if (i > 0)
				sbuf_adds(&sb, ", ");
			sbuf_adds(&sb, json_string_value(x));
		}
	}
	return sbuf_cstr(&sb);
}

enum td_err contractutil_lines_json(struct req *r, int64_t id,
				    int64_t client_id, json_t *contract)
{
	const char *params[2] = { req_id(r, id), req_id(r, client_id) };
	PGresult *res, *kinds, *taxes;
	json_t *lines = json_array(), *l, *ks, *cs;
	int64_t qty, price, total, sum = 0;
	bool sum_ok = true;
	char buf[32];
	enum td_err err;
	int i;

	json_object_set_new(contract, "lines", lines);
	err = req_query(r, sql_lines, 2, params, &res);
	if (err == TD_OK)
		err = req_query(r, sql_kinds, 0, NULL, &kinds);
	if (err == TD_OK)
		err = req_query(r, sql_taxes, 0, NULL, &taxes);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(res); i++) {
		ks = parse_array(db_text(res, i, L_KINDS));
		cs = parse_array(db_text(res, i, L_CATEGORIES));
		l = json_object();
		json_object_set_new(l, "id",
				    json_integer(db_int(res, i, L_ID)));
		json_object_set_new(
			l, "description",
			json_string(db_text(res, i, L_DESCRIPTION)));
		json_object_set_new(l, "quantity_source",
				    json_string(db_text(res, i, L_SOURCE)));
		json_object_set_new(
			l, "is_assets",
			json_boolean(
				!strcmp(db_text(res, i, L_SOURCE), "assets")));
		json_object_set_new(
			l, "quantity",
			*db_text(res, i, L_QUANTITY) ?
				json_string(db_text(res, i, L_QUANTITY)) :
				json_null());
		json_object_set_new(l, "filter",
				    json_string(filter_text(r, kinds, ks, cs)));
		json_object_set_new(l, "kind_choices", kind_choices(kinds, ks));
		json_object_set_new(l, "asset_kinds", ks);
		json_object_set_new(l, "asset_categories", cs);
		{
			struct sbuf sb;
			json_t *x;
			size_t j;

			sbuf_init(&sb, r->arena, 32);
			json_array_foreach(cs, j, x)
			{
				if (j > 0)
					sbuf_adds(&sb, ", ");
				sbuf_adds(&sb, json_string_value(x));
			}
			json_object_set_new(l, "categories_text",
					    json_string(sbuf_cstr(&sb)));
		}
		json_object_set_new(l, "unit_price",
				    json_string(db_text(res, i, L_PRICE)));
		json_object_set_new(
			l, "tax_rate_id",
			db_isnull(res, i, L_TAX_ID) ?
				json_null() :
				json_integer(db_int(res, i, L_TAX_ID)));
		json_object_set_new(
			l, "tax_rate_name",
			*db_text(res, i, L_TAX) ?
				json_string(db_text(res, i, L_TAX)) :
				json_null());
		json_object_set_new(
			l, "tax_choices",
			tax_choices(taxes, db_text(res, i, L_TAX_ID)));
		json_object_set_new(l, "service_code",
				    json_string(db_text(res, i, L_SERVICE)));
		json_object_set_new(l, "billing_category",
				    json_string(db_text(res, i, L_CATEGORY)));
		/* Mustache treats "" as true: the page asks these instead. */
		json_object_set_new(l, "has_service",
				    json_boolean(*db_text(res, i, L_SERVICE)));
		json_object_set_new(l, "has_category",
				    json_boolean(*db_text(res, i, L_CATEGORY)));
		if (money_parse(db_text(res, i, L_PRICE), true, &price) !=
			    TD_OK ||
		    money_parse(db_text(res, i, L_LIVE), false, &qty) != TD_OK)
			return req_fail(r, TD_EDB,
					"cannot read line %" PRId64 " amounts",
					db_int(res, i, L_ID));
		money_display(price, buf, sizeof(buf));
		json_object_set_new(l, "unit_price_display", json_string(buf));
		json_object_set_new(l, "live_quantity",
				    json_string(quantity_text(r, qty)));
		if (money_mul(qty, price, &total) == TD_OK) {
			money_text(total, buf, sizeof(buf));
			json_object_set_new(l, "total", json_string(buf));
			money_display(total, buf, sizeof(buf));
			json_object_set_new(l, "total_display",
					    json_string(buf));
			if (__builtin_add_overflow(sum, total, &sum))
				sum_ok = false;
		} else {
			json_object_set_new(l, "total", json_null());
			json_object_set_new(l, "total_display",
					    json_string("too large"));
			sum_ok = false;
		}
		json_array_append_new(lines, l);
	}
	json_object_set_new(contract, "has_lines",
			    json_boolean(PQntuples(res) > 0));
	if (sum_ok) {
		money_text(sum, buf, sizeof(buf));
		json_object_set_new(contract, "lines_total", json_string(buf));
		money_display(sum, buf, sizeof(buf));
		json_object_set_new(contract, "lines_total_display",
				    json_string(buf));
	} else {
		json_object_set_new(contract, "lines_total", json_null());
	}
	/* Choices for the add-a-line form. */
	ks = json_array();
	json_object_set_new(contract, "kind_choices", kind_choices(kinds, ks));
	json_decref(ks);
	json_object_set_new(contract, "tax_choices", tax_choices(taxes, NULL));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Reading a line                                                       */

struct line_in {
	const char *description, *source, *quantity, *kinds, *categories;
	const char *price, *tax_id, *service, *category;
};

/* A text[] literal {"a","b"} with quotes and backslashes escaped. */
static void add_array_item(struct sbuf *sb, const char *s, bool first)
{
	if (!first)
		sbuf_addch(sb, ',');
	sbuf_addch(sb, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			sbuf_addch(sb, '\\');
		sbuf_addch(sb, *s);
	}
	sbuf_addch(sb, '"');
}

static bool kind_known(const PGresult *kinds, const char *key)
{
	int i;

	for (i = 0; i < PQntuples(kinds); i++)
		if (!strcmp(db_text(kinds, i, 0), key))
			return true;
	return false;
}

/* The chosen asset kinds as a text[] literal; unknown ones are an error. */
static const char *read_kinds(struct req *r, const PGresult *kinds)
{
	struct sbuf sb;
	json_t *j, *x;
	size_t i, n = 0;
	const char *k;

	sbuf_init(&sb, r->arena, 64);
	sbuf_addch(&sb, '{');
	if (r->json_body != NULL) {
		j = json_object_get(r->json_body, "asset_kinds");
		if (j != NULL && !json_is_array(j)) {
			form_error(r, "asset_kinds",
				   "send the asset kinds as a list");
			return NULL;
		}
		json_array_foreach(j, i, x)
		{
			k = json_is_string(x) ? json_string_value(x) : "";
			if (!kind_known(kinds, k)) {
				form_error(r, "asset_kinds",
					   "choose asset kinds from the list");
				return NULL;
			}
			add_array_item(&sb, k, n++ == 0);
		}
	} else {
		for (i = 0; i < r->form.n; i++) {
			if (strcmp(r->form.v[i].name, "asset_kinds"))
				continue;
			k = r->form.v[i].value;
			if (!kind_known(kinds, k)) {
				form_error(r, "asset_kinds",
					   "choose asset kinds from the list");
				return NULL;
			}
			add_array_item(&sb, k, n++ == 0);
		}
	}
	if (n > FILTER_MAX) {
		form_error(r, "asset_kinds", "choose at most 20 asset kinds");
		return NULL;
	}
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

/* Adds one trimmed category; false (with an error) when it can't be. */
static bool add_category(struct req *r, struct sbuf *sb, const char *s,
			 size_t len, size_t *n)
{
	char *c;

	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0)
		return true;
	c = arena_strndup(r->arena, s, len);
	if (!http_utf8_valid(c, len) || http_utf8_len(c) > CATEGORY_MAX ||
	    ++*n > FILTER_MAX) {
		form_error(r, "asset_categories",
			   "list at most 20 categories of at most 100 "
			   "characters");
		return false;
	}
	add_array_item(sb, c, *n == 1);
	return true;
}

/* The categories (comma-separated, or a JSON list) as a text[] literal. */
static const char *read_categories(struct req *r)
{
	struct sbuf sb;
	const char *s, *comma;
	json_t *j, *x;
	size_t i, n = 0;

	sbuf_init(&sb, r->arena, 64);
	sbuf_addch(&sb, '{');
	j = r->json_body != NULL ?
		    json_object_get(r->json_body, "asset_categories") :
		    NULL;
	if (j != NULL && !json_is_string(j)) {
		if (!json_is_array(j)) {
			form_error(r, "asset_categories",
				   "send the categories as a list");
			return NULL;
		}
		json_array_foreach(j, i, x)
		{
			s = json_is_string(x) ? json_string_value(x) : "";
			if (!add_category(r, &sb, s, strlen(s), &n))
				return NULL;
		}
	} else {
		s = form_text(r, "asset_categories");
		while (*s != '\0') {
			comma = strchr(s, ',');
			if (comma == NULL)
				comma = s + strlen(s);
			if (!add_category(r, &sb, s, (size_t)(comma - s), &n))
				return NULL;
			s = *comma ? comma + 1 : comma;
		}
	}
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/* For an API update, an absent key keeps what is stored. */
static bool keep(struct req *r, const PGresult *old, const char *name)
{
	return old != NULL && r->json_body != NULL &&
	       json_object_get(r->json_body, name) == NULL;
}

static const char *pg_array(struct req *r, const char *json_text)
{
	json_t *a = parse_array(json_text), *x;
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	sbuf_addch(&sb, '{');
	json_array_foreach(a, i, x)
	{
		add_array_item(&sb, json_string_value(x), i == 0);
	}
	sbuf_addch(&sb, '}');
	json_decref(a);
	return sbuf_cstr(&sb);
}

static enum td_err read_line(struct req *r, const PGresult *old,
			     struct line_in *in)
{
	const char *params[1], *s;
	PGresult *kinds, *res;
	enum td_err err;
	char buf[32];
	int64_t v;

	err = req_query(r, sql_kinds, 0, NULL, &kinds);
	if (err != TD_OK)
		return err;
	memset(in, 0, sizeof(*in));
	in->description = keep(r, old, "description") ?
				  db_text(old, 0, L_DESCRIPTION) :
				  contractutil_text(r, "description");
	if (!len_between(in->description, 1, 300))
		form_error(r, "description",
			   "describe the line in at most 300 characters");
	in->source = keep(r, old, "quantity_source") ?
			     db_text(old, 0, L_SOURCE) :
			     contractutil_text(r, "quantity_source");
	if (*in->source == '\0')
		in->source = "fixed";
	if (strcmp(in->source, "fixed") && strcmp(in->source, "assets"))
		form_error(r, "quantity_source",
			   "choose a fixed quantity or a count of assets");
	if (!strcmp(in->source, "fixed")) {
		s = keep(r, old, "quantity") ? db_text(old, 0, L_QUANTITY) :
					       contractutil_text(r, "quantity");
		if (money_parse(s, false, &v) != TD_OK || v > QUANTITY_MAX) {
			form_error(r, "quantity",
				   "enter a quantity such as 1, 12 or 2.5");
		} else {
			money_text(v, buf, sizeof(buf));
			in->quantity = arena_strdup(r->arena, buf);
		}
		in->kinds = "{}";
		in->categories = "{}";
	} else {
		in->kinds = keep(r, old, "asset_kinds") ?
				    pg_array(r, db_text(old, 0, L_KINDS)) :
				    read_kinds(r, kinds);
		in->categories =
			keep(r, old, "asset_categories") ?
				pg_array(r, db_text(old, 0, L_CATEGORIES)) :
				read_categories(r);
	}
	s = keep(r, old, "unit_price") ? db_text(old, 0, L_PRICE) :
					 contractutil_text(r, "unit_price");
	if (money_parse(s, true, &v) != TD_OK) {
		form_error(r, "unit_price",
			   "enter a unit price such as 12, 12.50 or 1,200.00 "
			   "(negative for a discount)");
	} else {
		money_text(v, buf, sizeof(buf));
		in->price = arena_strdup(r->arena, buf);
	}
	s = keep(r, old, "tax_rate_id") ? db_text(old, 0, L_TAX_ID) :
					  contractutil_text(r, "tax_rate_id");
	if (*s != '\0') {
		params[0] = s;
		if (!isdigit((unsigned char)*s) || strlen(s) > 18) {
			form_error(r, "tax_rate_id", "choose a tax rate");
		} else {
			err = req_query(r, sql_tax_ok, 1, params, &res);
			if (err != TD_OK)
				return err;
			if (PQntuples(res) != 1)
				form_error(r, "tax_rate_id",
					   "choose a tax rate");
			else if (db_bool(res, 0, 0) &&
				 (old == NULL ||
				  strcmp(s, db_text(old, 0, L_TAX_ID))))
				form_error(r, "tax_rate_id",
					   "this tax rate is archived");
			else
				in->tax_id = s;
		}
	}
	in->service = keep(r, old, "service_code") ?
			      db_text(old, 0, L_SERVICE) :
			      contractutil_text(r, "service_code");
	if (!len_between(in->service, 0, 60))
		form_error(r, "service_code", "use at most 60 characters");
	in->category = keep(r, old, "billing_category") ?
			       db_text(old, 0, L_CATEGORY) :
			       contractutil_text(r, "billing_category");
	if (!len_between(in->category, 0, 100))
		form_error(r, "billing_category", "use at most 100 characters");
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Handlers                                                             */

/* The contract of a line request (state, client, name), locked; 404. */
static enum td_err writable_contract(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err;

	err = req_query(r, sql_contract_state, 1, params, res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no contract %" PRId64, id);
	return TD_OK;
}

static enum td_err refuse(struct req *r, int64_t id, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = contractutil_show_page(r, id);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = 409;
	return TD_OK;
}

/* A line form with errors: 422, on the contract page (line_id 0: add). */
static enum td_err reject(struct req *r, int64_t id, int64_t line_id)
{
	json_t *v, *f;
	enum td_err err;
	size_t i;

	if (r->want_json)
		return form_reject(r, "contracts/show", line_fields);
	err = contractutil_show_page(r, id);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	f = json_object();
	for (i = 0; line_fields[i] != NULL; i++)
		json_object_set_new(f, line_fields[i],
				    json_string(form_text(r, line_fields[i])));
	json_object_set_new(f, "line_id", json_integer(line_id));
	json_object_set_new(v, "line_form", f);
	json_object_set(v, line_id > 0 ? "line_errors" : "errors",
			r->error_fields);
	if (line_id > 0) {
		/* Open the refused line's editor with its messages. */
		json_t *lines = json_object_get(json_object_get(v, "contract"),
						"lines"),
		       *l;

		json_array_foreach(lines, i, l)
		{
			if (json_integer_value(json_object_get(l, "id")) ==
			    line_id)
				json_object_set(l, "edit_errors",
						r->error_fields);
		}
	}
	r->status = 422;
	return TD_OK;
}

static void done(struct req *r, const char *flash, int64_t id)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = arena_printf(r->arena, "/contracts/%" PRId64, id);
}

static json_t *line_after(struct req *r, int64_t line_id,
			  const struct line_in *in)
{
	json_t *o = json_pack(
		"{s:I, s:s, s:s, s:s?, s:s, s:s, s:s, s:s?, s:s, s:s}", "id",
		(json_int_t)line_id, "description", in->description,
		"quantity_source", in->source, "quantity", in->quantity,
		"asset_kinds", in->kinds, "asset_categories", in->categories,
		"unit_price", in->price, "tax_rate_id", in->tax_id,
		"service_code", in->service, "billing_category", in->category);

	req_own_json(r, o);
	return o;
}

/*
 * POST /contracts/:id/lines — adds a recurring line. 201 (API) or 303 to
 * the contract; 422 with field messages; 409 when voided; 404.
 */
enum td_err contracts_line_add(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), line_id;
	struct line_in in;
	const char *p[10];
	json_t *after;
	PGresult *c, *res;
	enum td_err err;

	err = writable_contract(r, id, &c);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(c, 0, 0), "voided"))
		return refuse(r, id,
			      "this contract is voided and can't be "
			      "changed");
	err = read_line(r, NULL, &in);
	if (err == TD_OK)
		err = contractutil_terms_effective(r, id);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, id, 0);
	p[0] = req_id(r, id);
	p[1] = in.description;
	p[2] = in.source;
	p[3] = in.quantity;
	p[4] = in.kinds;
	p[5] = in.categories;
	p[6] = in.price;
	p[7] = in.tax_id;
	p[8] = in.service;
	p[9] = in.category;
	err = req_query(r, sql_line_insert, 10, p, &res);
	if (err != TD_OK)
		return err;
	line_id = db_int(res, 0, 0);
	after = line_after(r, line_id, &in);
	err = audit_write(r, "contract.line_add", "contract", id, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_t *c2 = json_object();

		err = contractutil_lines_json(r, id, db_int(c, 0, 1), c2);
		if (err != TD_OK) {
			json_decref(c2);
			return err;
		}
		json_object_set_new(req_view(r), "contract", c2);
		json_object_set_new(req_view(r), "line_id",
				    json_integer(line_id));
		r->status = 201;
	}
	done(r, arena_printf(r->arena, "Line %s added.", in.description), id);
	return TD_OK;
}

/* A line of the contract, locked; 404 if none. */
static enum td_err load_line(struct req *r, int64_t id, int64_t line_id,
			     PGresult **res)
{
	const char *params[2] = { req_id(r, line_id), req_id(r, id) };
	enum td_err err;

	err = req_query(r, sql_line_lock, 2, params, res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no line %" PRId64, line_id);
	return TD_OK;
}

static json_t *line_before(struct req *r, const PGresult *old)
{
	json_t *o =
		json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
			  "id", (json_int_t)db_int(old, 0, L_ID), "description",
			  db_text(old, 0, L_DESCRIPTION), "quantity_source",
			  db_text(old, 0, L_SOURCE), "quantity",
			  db_text(old, 0, L_QUANTITY), "asset_kinds",
			  db_text(old, 0, L_KINDS), "asset_categories",
			  db_text(old, 0, L_CATEGORIES), "unit_price",
			  db_text(old, 0, L_PRICE), "tax_rate_id",
			  db_text(old, 0, L_TAX_ID), "service_code",
			  db_text(old, 0, L_SERVICE), "billing_category",
			  db_text(old, 0, L_CATEGORY));

	req_own_json(r, o);
	return o;
}

/*
 * POST /contracts/:id/lines/:line_id — changes a line (the API may send
 * only what changes). 303; 422; 409 when voided; 404.
 */
enum td_err contracts_line_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t line_id = route_arg_int(&r->args, "line_id");
	struct line_in in;
	const char *p[11];
	json_t *before, *after;
	PGresult *c, *old;
	enum td_err err;

	err = writable_contract(r, id, &c);
	if (err == TD_OK)
		err = load_line(r, id, line_id, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(c, 0, 0), "voided"))
		return refuse(r, id,
			      "this contract is voided and can't be "
			      "changed");
	err = read_line(r, old, &in);
	if (err == TD_OK)
		err = contractutil_terms_effective(r, id);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, id, line_id);
	p[0] = req_id(r, line_id);
	p[1] = req_id(r, id);
	p[2] = in.description;
	p[3] = in.source;
	p[4] = in.quantity;
	p[5] = in.kinds;
	p[6] = in.categories;
	p[7] = in.price;
	p[8] = in.tax_id;
	p[9] = in.service;
	p[10] = in.category;
	before = line_before(r, old);
	err = req_query(r, sql_line_update, 11, p, NULL);
	if (err != TD_OK)
		return err;
	after = line_after(r, line_id, &in);
	err = audit_write(r, "contract.line_update", "contract", id, before,
			  after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_t *c2 = json_object();

		err = contractutil_lines_json(r, id, db_int(c, 0, 1), c2);
		if (err != TD_OK) {
			json_decref(c2);
			return err;
		}
		json_object_set_new(req_view(r), "contract", c2);
	}
	done(r, arena_printf(r->arena, "Line %s saved.", in.description), id);
	return TD_OK;
}

/* POST /contracts/:id/lines/:line_id/delete — 303; 409 when voided; 404. */
enum td_err contracts_line_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	int64_t line_id = route_arg_int(&r->args, "line_id");
	const char *p[2];
	json_t *before;
	PGresult *c, *old;
	enum td_err err;

	err = writable_contract(r, id, &c);
	if (err == TD_OK)
		err = load_line(r, id, line_id, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(c, 0, 0), "voided"))
		return refuse(r, id,
			      "this contract is voided and can't be "
			      "changed");
	err = contractutil_terms_effective(r, id);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, id, line_id);
	p[0] = req_id(r, line_id);
	p[1] = req_id(r, id);
	before = line_before(r, old);
	err = req_query(r, sql_line_delete, 2, p, NULL);
	if (err == TD_OK)
		err = audit_write(r, "contract.line_delete", "contract", id,
				  before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_pack("{s:I, s:s}", "id", (json_int_t)line_id,
				      "description",
				      db_text(old, 0, L_DESCRIPTION)));
	done(r,
	     arena_printf(r->arena, "Line %s deleted.",
			  db_text(old, 0, L_DESCRIPTION)),
	     id);
	return TD_OK;
}
