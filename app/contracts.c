/* contracts.c: contracts, their lifecycle (end, void) and block status */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "billingpanels.h"
#include "clientctx.h"
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

/* The tenant's today, for "active now" and the current cycle. */
#define TODAY "(now() AT TIME ZONE t.time_zone)::date"

/* What the list shows and filters on: stored state plus the dates. */
#define STATUS_EXPR                                                            \
	"CASE WHEN c.state = 'voided' THEN 'voided'"                           \
	" WHEN c.ends_on < " TODAY " THEN 'ended'"                             \
	" WHEN c.starts_on > " TODAY " THEN 'upcoming' ELSE 'active' END"

/* A timestamp as the tenant's local "YYYY-MM-DD HH24:MI", "" for NULL. */
#define LOCAL_TEXT "AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'), '')"

#define CONTRACT_COLS                                                          \
	"c.id, c.client_id, cl.name, c.name, c.type, c.starts_on::text,"       \
	" coalesce(c.ends_on::text, ''), c.sla_tier_id,"                       \
	" coalesce(st.name, ''), c.billing_frequency, c.billing_day,"          \
	" coalesce(c.hourly_rate::text, ''),"                                  \
	" coalesce(c.project_rate::text, ''),"                                 \
	" coalesce(c.overage_rate::text, ''), c.flat_fee::text,"               \
	" c.block_minutes, coalesce(c.block_fee::text, ''),"                   \
	" c.block_rollover, c.rollover_cap_minutes, c.notes, c.state,"         \
	" coalesce(to_char(c.ended_at " LOCAL_TEXT ","                         \
	" coalesce(c.void_reason, ''),"                                        \
	" coalesce(to_char(c.voided_at " LOCAL_TEXT ","                        \
	" coalesce(vu.name, ''), " STATUS_EXPR ","                             \
	" coalesce(to_char(c.created_at " LOCAL_TEXT ","                       \
	" coalesce(cl.currency, t.currency)"

#define CONTRACT_FROM                                                          \
	" FROM contracts c JOIN clients cl ON cl.tenant_id = c.tenant_id"      \
	" AND cl.id = c.client_id JOIN tenants t ON t.id = c.tenant_id"        \
	" LEFT JOIN sla_tiers st ON st.tenant_id = c.tenant_id"                \
	" AND st.id = c.sla_tier_id LEFT JOIN users vu"                        \
	" ON vu.tenant_id = c.tenant_id AND vu.id = c.voided_by"

/* Columns of CONTRACT_COLS. */
enum {
	K_ID,
	K_CLIENT_ID,
	K_CLIENT,
	K_NAME,
	K_TYPE,
	K_STARTS,
	K_ENDS,
	K_TIER_ID,
	K_TIER,
	K_FREQ,
	K_DAY,
	K_HOURLY,
	K_PROJECT,
	K_OVERAGE,
	K_FLAT,
	K_BLOCK_MIN,
	K_BLOCK_FEE,
	K_ROLLOVER,
	K_CAP,
	K_NOTES,
	K_STATE,
	K_ENDED_AT,
	K_VOID_REASON,
	K_VOIDED_AT,
	K_VOIDED_BY,
	K_STATUS,
	K_CREATED,
	K_CURRENCY,
};

static const char sql_contract[] = "SELECT " CONTRACT_COLS CONTRACT_FROM
				   " WHERE c.tenant_id = app_tenant()"
				   " AND c.id = $1";
static const char sql_contract_lock[] = "SELECT " CONTRACT_COLS CONTRACT_FROM
					" WHERE c.tenant_id = app_tenant()"
					" AND c.id = $1 FOR UPDATE OF c";
/*
 * $1 client (NULL: any), $2 type, $3 status ("" any). Newest first.
 * XXX(#6): no paging yet; 500 rows is more contracts than a desk has.
 */
static const char sql_list[] =
	"SELECT " CONTRACT_COLS CONTRACT_FROM
	" WHERE c.tenant_id = app_tenant()"
	" AND ($1::bigint IS NULL OR c.client_id = $1)"
	" AND ($2 = '' OR c.type = $2)"
	" AND ($3 = '' OR " STATUS_EXPR " = $3)"
	" ORDER BY c.starts_on DESC, c.id DESC LIMIT 500";
static const char sql_client_contracts[] =
	"SELECT " CONTRACT_COLS CONTRACT_FROM
	" WHERE c.tenant_id = app_tenant() AND c.client_id = $1"
	" ORDER BY c.starts_on DESC, c.id DESC LIMIT 50";
/*
 * The contracts in force today for a client (dates, not voided), one with
 * a block of hours first; CLIENT is the client's id as SQL, $1 or the
 * client of a ticket. For a block, column 6 is contract_block_cycles()
 * (sql/0029), computed for blocks only: its current cycle as [from, to)
 * dates and last day, and the instants that cycle and (for rollover) the
 * one before start and end in the tenant's zone — instants, so the time
 * query compares plain parameters and stays on its index. One statement
 * answers both "is there a contract" (the default kind of time) and "what
 * is left of the block", which pages ask together.
 */
#define SQL_IN_FORCE(CLIENT)                                                   \
	"SELECT c.id, c.name, c.block_minutes, c.block_rollover,"              \
	" c.rollover_cap_minutes, c.billing_frequency,"                        \
	" CASE WHEN c.block_minutes IS NOT NULL THEN contract_block_cycles("   \
	" c.starts_on, c.ends_on, c.billing_frequency, c.billing_day,"         \
	" t.time_zone) END, c.type"                                            \
	" FROM contracts c JOIN tenants t ON t.id = c.tenant_id"               \
	" WHERE c.tenant_id = app_tenant() AND c.client_id = " CLIENT          \
	" AND c.state <> 'voided' AND c.starts_on <= " TODAY                   \
	" AND (c.ends_on IS NULL OR c.ends_on >= " TODAY ")"                   \
	" ORDER BY c.block_minutes IS NULL, c.id"
#define TICKET_CLIENT                                                          \
	"(SELECT k.client_id FROM tickets k WHERE k.tenant_id = app_tenant()"  \
	" AND k.id = $1)"
static const char sql_in_force[] = SQL_IN_FORCE("$1");
static const char sql_in_force_ticket[] = SQL_IN_FORCE(TICKET_CLIENT);
static const char sql_client_ok[] =
	"SELECT name, archived_at IS NOT NULL OR merged_into IS NOT NULL"
	" FROM clients WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_clients[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND archived_at IS NULL AND merged_into IS NULL"
	" ORDER BY lower(name), id LIMIT 1000";
static const char sql_tiers[] =
	"SELECT id, name FROM sla_tiers WHERE tenant_id = app_tenant()"
	" AND NOT is_fallback ORDER BY position, id";
static const char sql_tier_ok[] =
	"SELECT name FROM sla_tiers WHERE tenant_id = app_tenant() AND id = $1";
/* $1 client, $2 from, $3 to ('' rolling), $4 self (NULL: a new one). */
static const char sql_overlap[] =
	"SELECT id, name, starts_on::text, coalesce(ends_on::text, '')"
	" FROM contracts WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND state <> 'voided' AND id IS DISTINCT FROM $4::bigint"
	" AND daterange(starts_on, ends_on, '[]')"
	" && daterange($2::date, nullif($3, '')::date, '[]')"
	" ORDER BY starts_on LIMIT 1";
static const char sql_insert[] =
	"INSERT INTO contracts (tenant_id, client_id, name, type, starts_on,"
	" ends_on, sla_tier_id, billing_frequency, billing_day, hourly_rate,"
	" project_rate, overage_rate, flat_fee, block_minutes, block_fee,"
	" block_rollover, rollover_cap_minutes, notes, created_by)"
	" VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
	" $12, $13, $14, $15, $16, $17, $18) RETURNING id";
static const char sql_update[] =
	"UPDATE contracts SET name = $2, type = $3, starts_on = $4,"
	" ends_on = $5, sla_tier_id = $6, billing_frequency = $7,"
	" billing_day = $8, hourly_rate = $9, project_rate = $10,"
	" overage_rate = $11, flat_fee = $12, block_minutes = $13,"
	" block_fee = $14, block_rollover = $15, rollover_cap_minutes = $16,"
	" notes = $17, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_end[] =
	"UPDATE contracts SET ends_on = $2, state = 'ended', ended_by = $3,"
	" ended_at = now(), updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_void[] =
	"UPDATE contracts SET state = 'voided', void_reason = $2,"
	" voided_by = $3, voided_at = now(), updated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_terms_from[] =
	"SELECT coalesce(terms_from::text, '') FROM contracts"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_terms_edit[] =
	"SELECT contract_terms_edit($1, nullif($2, '')::date, $3)";
static const char sql_today[] =
	"SELECT (now() AT TIME ZONE time_zone)::date::text FROM tenants"
	" WHERE id = app_tenant()";

#define NOTES_MAX	  10000
#define VOID_REASON_MAX	  1000
#define BLOCK_MINUTES_MAX (10000 * 60)

/* A fixed set of values: key as stored, label for people. */
struct choice {
	const char *key, *label, *cycle;
};

static const struct choice types[] = {
	{ "per_asset", "Per asset", NULL },
	{ "block_hours", "Block hours", NULL },
	{ "all_you_can_eat", "All you can eat", NULL },
	{ "pay_as_you_go", "Pay as you go", NULL },
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

/* cycle: the word the block status uses ("left this month"). */
static const struct choice freqs[] = {
	{ "monthly", "Monthly", "month" },
	{ "quarterly", "Quarterly", "quarter" },
	{ "annual", "Annual", "year" },
};
#define NFREQS (sizeof(freqs) / sizeof(freqs[0]))

static const struct choice statuses[] = {
	{ "active", "Active", NULL },
	{ "upcoming", "Upcoming", NULL },
	{ "ended", "Ended", NULL },
	{ "voided", "Voided", NULL },
};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* Fields a contract form keeps after a refusal. */
static const char *const contract_fields[] = { "client_id",
					       "name",
					       "type",
					       "starts_on",
					       "ends_on",
					       "sla_tier_id",
					       "billing_frequency",
					       "billing_day",
					       "hourly_rate",
					       "project_rate",
					       "overage_rate",
					       "flat_fee",
					       "block_hours",
					       "block_fee",
					       "rollover_cap_hours",
					       "notes",
					       "effective_from",
					       NULL };

/* The entry of key in c[0..n), or NULL. */
static const struct choice *find(const struct choice *c, size_t n,
				 const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(c[i].key, key))
			return &c[i];
	return NULL;
}

/* The label of key, or key itself for a value the table lacks. */
static const char *label(const struct choice *c, size_t n, const char *key)
{
	const struct choice *x = find(c, n, key);

	return x != NULL ? x->label : key;
}

static bool is_manager(const struct req *r)
{
	return (r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)) != 0;
}

static int64_t caller_user(const struct req *r)
{
	return r->auth.kind == AUTH_USER ? r->auth.user_id : 0;
}

static const char *contract_url(struct req *r, int64_t id)
{
	return arena_printf(r->arena, "/contracts/%" PRId64, id);
}

/* ------------------------------------------------------------------ */
/* Defaults and block status, for other modules                         */

enum td_err contracts_time_default(struct req *r, int64_t client_id,
				   const char **kind)
{
	const char *params[1] = { req_id(r, client_id) };
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_in_force, 1, params, &res);
	if (err != TD_OK)
		return err;
	/* Every contract type bills time; no contract means internal work. */
	*kind = PQntuples(res) > 0 ? "billable" : "internal";
	return TD_OK;
}

/*
 * Committed billable minutes of the client from instant from until to,
 * time on project tickets left out.
 */
static enum td_err used_minutes(struct req *r, int64_t client_id,
				const char *from, const char *to, int64_t *out)
{
	const char *params[3] = { req_id(r, client_id), from, to };
	PGresult *res;
	enum td_err err;

	err = req_query(r, contractutil_sql_used, 3, params, &res);
	if (err != TD_OK)
		return err;
	*out = db_int(res, 0, 0);
	return TD_OK;
}

void contracts_ticket_want(struct req *r, int64_t ticket_id)
{
	const char *params[1] = { req_id(r, ticket_id) };

	req_want(r, sql_in_force_ticket, 1, params);
}

void contracts_ticket_known(struct req *r, int64_t ticket_id, int64_t client_id)
{
	const char *ticket[1] = { req_id(r, ticket_id) },
		   *client[1] = { req_id(r, client_id) };

	/*
	 * Twice: the page has two readers, contracts_block_json and
	 * contracts_time_default, and a wanted read is taken once.
	 */
	req_wanted_alias(r, sql_in_force_ticket, ticket, sql_in_force, 1,
			 client);
	req_wanted_alias(r, sql_in_force_ticket, ticket, sql_in_force, 1,
			 client);
}

enum td_err contracts_block_json(struct req *r, int64_t client_id, json_t *into)
{
	const char *params[1] = { req_id(r, client_id) }, *cycle, *c[7];
	int64_t size, used, prev_used, carry, left;
	char hsize[32], hused[32], hleft[32], hover[32];
	PGresult *res;
	enum td_err err;
	json_t *b, *cycles;
	int i;

	err = req_query(r, sql_in_force, 1, params, &res);
	if (err != TD_OK || PQntuples(res) == 0 || db_isnull(res, 0, 2) ||
	    db_isnull(res, 0, 6))
		return err;
	cycles = json_loads(db_text(res, 0, 6), 0, NULL);
	req_own_json(r, cycles);
	for (i = 0; i < 7; i++)
		c[i] = json_string_value(json_array_get(cycles, (size_t)i));
	if (c[0] == NULL || c[3] == NULL || c[4] == NULL)
		return req_fail(r, TD_EDB, "contract %s: no block cycle",
				db_text(res, 0, 0));
	size = db_int(res, 0, 2);
	err = used_minutes(r, client_id, c[3], c[4], &used);
	if (err != TD_OK)
		return err;
	carry = 0;
	/* XXX(#6): carries over from the previous cycle only, not a chain. */
	if (db_bool(res, 0, 3) && c[5] != NULL) {
		err = used_minutes(r, client_id, c[5], c[6], &prev_used);
		if (err != TD_OK)
			return err;
		carry = size - prev_used > 0 ? size - prev_used : 0;
		if (!db_isnull(res, 0, 4) && carry > db_int(res, 0, 4))
			carry = db_int(res, 0, 4);
	}
	size += carry;
	left = size - used;
	cycle = find(freqs, NFREQS, db_text(res, 0, 5))->cycle;
	contractutil_hours1(size, hsize, sizeof(hsize));
	contractutil_hours1(used, hused, sizeof(hused));
	contractutil_hours1(left > 0 ? left : 0, hleft, sizeof(hleft));
	contractutil_hours1(left < 0 ? -left : 0, hover, sizeof(hover));
	b = json_object();
	json_object_set_new(b, "contract_id", json_integer(db_int(res, 0, 0)));
	json_object_set_new(b, "contract_name",
			    json_string(db_text(res, 0, 1)));
	json_object_set_new(b, "url",
			    json_string(contract_url(r, db_int(res, 0, 0))));
	json_object_set_new(b, "size", json_string(hsize));
	json_object_set_new(b, "used", json_string(hused));
	json_object_set_new(b, "left", json_string(hleft));
	json_object_set_new(b, "size_minutes", json_integer(size));
	json_object_set_new(b, "used_minutes", json_integer(used));
	json_object_set_new(b, "carried_minutes", json_integer(carry));
	json_object_set_new(b, "cycle", json_string(cycle));
	json_object_set_new(b, "cycle_from", json_string(c[0]));
	json_object_set_new(b, "cycle_to", json_string(c[1]));
	json_object_set_new(b, "cycle_last", json_string(c[2]));
	json_object_set_new(b, "over", json_boolean(left < 0));
	json_object_set_new(
		b, "text",
		json_string(
			left < 0 ? arena_printf(
					   r->arena,
					   "%s of %s h left this %s, %s h over",
					   hleft, hsize, cycle, hover) :
				   arena_printf(r->arena,
						"%s of %s h left this %s",
						hleft, hsize, cycle)));
	json_object_set_new(into, "block", b);
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* A contract as JSON                                                   */

/* Sets key to the amount ("1625.00") or null, and key_display grouped. */
static void set_money(struct req *r, json_t *o, const char *key,
		      const char *text)
{
	char buf[32];
	int64_t v;

	if (*text == '\0') {
		json_object_set_new(o, key, json_null());
		return;
	}
	json_object_set_new(o, key, json_string(text));
	if (money_parse(text, true, &v) == TD_OK) {
		money_display(v, buf, sizeof(buf));
		json_object_set_new(o,
				    arena_printf(r->arena, "%s_display", key),
				    json_string(buf));
	}
}

/* Sets key to hours ("7.50") from minutes, or null. */
static void set_hours(json_t *o, const char *key, const PGresult *res, int row,
		      int col)
{
	char buf[32];

	if (db_isnull(res, row, col)) {
		json_object_set_new(o, key, json_null());
		return;
	}
	contractutil_hours2(db_int(res, row, col), buf, sizeof(buf));
	json_object_set_new(o, key, json_string(buf));
}

static json_t *nullable_int(const PGresult *res, int row, int col)
{
	return db_isnull(res, row, col) ? json_null() :
					  json_integer(db_int(res, row, col));
}

static json_t *nullable_text(const PGresult *res, int row, int col)
{
	const char *s = db_text(res, row, col);

	return *s == '\0' ? json_null() : json_string(s);
}

static json_t *contract_json(struct req *r, const PGresult *res, int i)
{
	json_t *o = json_object();
	const char *type = db_text(res, i, K_TYPE);
	const char *status = db_text(res, i, K_STATUS);
	bool block = !db_isnull(res, i, K_BLOCK_MIN);
	int64_t id = db_int(res, i, K_ID);
	size_t k;

	json_object_set_new(o, "id", json_integer(id));
	json_object_set_new(o, "url", json_string(contract_url(r, id)));
	json_object_set_new(o, "client_id",
			    json_integer(db_int(res, i, K_CLIENT_ID)));
	json_object_set_new(o, "client_name",
			    json_string(db_text(res, i, K_CLIENT)));
	json_object_set_new(o, "name", json_string(db_text(res, i, K_NAME)));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "type_label",
			    json_string(label(types, NTYPES, type)));
	json_object_set_new(o, "starts_on",
			    json_string(db_text(res, i, K_STARTS)));
	json_object_set_new(o, "ends_on", nullable_text(res, i, K_ENDS));
	json_object_set_new(o, "rolling",
			    json_boolean(db_isnull(res, i, K_ENDS) ||
					 !*db_text(res, i, K_ENDS)));
	json_object_set_new(o, "sla_tier_id", nullable_int(res, i, K_TIER_ID));
	json_object_set_new(o, "sla_tier_name", nullable_text(res, i, K_TIER));
	json_object_set_new(o, "billing_frequency",
			    json_string(db_text(res, i, K_FREQ)));
	json_object_set_new(o, "billing_day",
			    json_integer(db_int(res, i, K_DAY)));
	set_money(r, o, "hourly_rate", db_text(res, i, K_HOURLY));
	set_money(r, o, "project_rate", db_text(res, i, K_PROJECT));
	set_money(r, o, "overage_rate", db_text(res, i, K_OVERAGE));
	set_money(r, o, "flat_fee", db_text(res, i, K_FLAT));
	json_object_set_new(o, "has_block", json_boolean(block));
	json_object_set_new(o, "block_minutes",
			    nullable_int(res, i, K_BLOCK_MIN));
	set_hours(o, "block_hours", res, i, K_BLOCK_MIN);
	set_money(r, o, "block_fee", db_text(res, i, K_BLOCK_FEE));
	json_object_set_new(o, "block_rollover",
			    json_boolean(db_bool(res, i, K_ROLLOVER)));
	json_object_set_new(o, "rollover_cap_minutes",
			    nullable_int(res, i, K_CAP));
	set_hours(o, "rollover_cap_hours", res, i, K_CAP);
	json_object_set_new(o, "notes", json_string(db_text(res, i, K_NOTES)));
	/* Mustache treats "" as true: the page asks this instead. */
	json_object_set_new(o, "has_notes",
			    json_boolean(*db_text(res, i, K_NOTES) != '\0'));
	json_object_set_new(o, "state", json_string(db_text(res, i, K_STATE)));
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "status_label",
			    json_string(label(statuses, NSTATUSES, status)));
	json_object_set_new(o, arena_printf(r->arena, "is_%s", status),
			    json_true());
	json_object_set_new(o, "voided",
			    json_boolean(!strcmp(status, "voided")));
	json_object_set_new(o, "ended_at", nullable_text(res, i, K_ENDED_AT));
	json_object_set_new(o, "void_reason",
			    nullable_text(res, i, K_VOID_REASON));
	json_object_set_new(o, "voided_at", nullable_text(res, i, K_VOIDED_AT));
	json_object_set_new(o, "voided_by", nullable_text(res, i, K_VOIDED_BY));
	json_object_set_new(o, "created_at",
			    json_string(db_text(res, i, K_CREATED)));
	json_object_set_new(o, "currency",
			    json_string(db_text(res, i, K_CURRENCY)));
	/* What a new time entry of the client defaults to under it. */
	json_object_set_new(o, "time_default", json_string("billable"));
	for (k = 0; k < NTYPES; k++)
		json_object_set_new(
			o, arena_printf(r->arena, "type_%s", types[k].key),
			json_boolean(!strcmp(type, types[k].key)));
	return o;
}

enum td_err contracts_client_json(struct req *r, int64_t client_id,
				  json_t *into)
{
	const char *params[1] = { req_id(r, client_id) };
	json_t *list;
	PGresult *res;
	enum td_err err;
	int i;

	err = req_query(r, sql_client_contracts, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, contract_json(r, res, i));
	json_object_set_new(into, "contracts", list);
	return contracts_block_json(r, client_id, into);
}

/* ------------------------------------------------------------------ */
/* Choices for forms and filters                                        */

/* c[0..n) as [{key, label, selected}] for a <select>. */
static json_t *choices(const struct choice *c, size_t n, const char *selected)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:b}", "key", c[i].key,
					"label", c[i].label, "selected",
					selected != NULL &&
						!strcmp(selected, c[i].key)));
	return list;
}

/* id/name rows of sql as [{id, name, selected}] with selected's id. */
static enum td_err id_choices(struct req *r, const char *sql,
			      const char *selected, json_t **out)
{
	PGresult *res;
	enum td_err err;
	int i;

	err = req_query(r, sql, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	*out = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(
			*out, json_pack("{s:I, s:s, s:b}", "id",
					(json_int_t)db_int(res, i, 0), "name",
					db_text(res, i, 1), "selected",
					selected != NULL &&
						!strcmp(selected,
							db_text(res, i, 0))));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* List                                                                 */

/* An optional positive id from the query string; false if malformed. */
static bool query_id(struct req *r, const char *name, int64_t *out)
{
	const char *s = http_params_get(&r->query_params, name);
	char *end;
	long long v;

	*out = 0;
	if (s == NULL || *s == '\0')
		return true;
	if (!isdigit((unsigned char)*s))
		return false;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v <= 0 || v == LLONG_MAX)
		return false;
	*out = v;
	return true;
}

static const char *query_text(struct req *r, const char *name)
{
	const char *s = http_params_get(&r->query_params, name);

	return s == NULL ? "" : s;
}

static enum td_err list_page(struct req *r, int64_t client_id, bool in_client)
{
	const char *type = query_text(r, "type"),
		   *status = query_text(r, "state");
	const char *params[3];
	json_t *v = req_view(r), *list, *clients;
	PGresult *res;
	enum td_err err;
	int i;

	if (*type != '\0' && find(types, NTYPES, type) == NULL)
		return req_fail(r, TD_EINPUT, "unknown contract type '%s'",
				type);
	if (*status != '\0' && find(statuses, NSTATUSES, status) == NULL)
		return req_fail(r, TD_EINPUT, "unknown contract state '%s'",
				status);
	params[0] = client_id > 0 ? req_id(r, client_id) : NULL;
	params[1] = type;
	params[2] = status;
	err = req_query(r, sql_list, 3, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, contract_json(r, res, i));
	json_object_set_new(v, "contracts", list);
	/* The client picker is for the page only. */
	if (!in_client && !r->want_json) {
		err = id_choices(r, sql_clients,
				 client_id > 0 ? req_id(r, client_id) : NULL,
				 &clients);
		if (err != TD_OK)
			return err;
		json_object_set_new(v, "clients", clients);
	}
	json_object_set_new(v, "types", choices(types, NTYPES, type));
	json_object_set_new(v, "states", choices(statuses, NSTATUSES, status));
	json_object_set_new(v, "filtered",
			    json_boolean(client_id > 0 || *type || *status));
	json_object_set_new(v, "can_write", json_boolean(is_manager(r)));
	json_object_set_new(
		v, "new_url",
		json_string(client_id > 0 ?
				    arena_printf(
					    r->arena,
					    "/contracts/new?client_id=%" PRId64,
					    client_id) :
				    "/contracts/new"));
	json_object_set_new(v, "in_client", json_boolean(in_client));
	if (!in_client)
		json_object_set_new(v, "title", json_string("Contracts"));
	r->view_name = "contracts/list";
	return TD_OK;
}

/*
 * GET /contracts?client_id=&type=&state= — every contract, newest first;
 * 400 for an unknown filter value.
 */
enum td_err contracts_list(struct req *r)
{
	int64_t client_id;

	if (!query_id(r, "client_id", &client_id))
		return req_fail(r, TD_EINPUT, "cannot parse 'client_id'");
	return list_page(r, client_id, false);
}

/* GET /clients/:id/contracts — the client's contracts tab; 404. */
enum td_err contracts_client_list(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	struct clientctx c;
	enum td_err err;

	err = clientctx_load(r, id, "contracts", &c);
	if (err != TD_OK)
		return err;
	err = list_page(r, id, true);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		req_view(r), "title",
		json_string(arena_printf(r->arena, "Contracts · %s", c.name)));
	return contracts_block_json(r, id, req_view(r));
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

/* A contract of the tenant (locked for a write); 404 if none. */
static enum td_err load(struct req *r, int64_t id, bool lock, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err;

	err = req_query(r, lock ? sql_contract_lock : sql_contract, 1, params,
			res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no contract %" PRId64, id);
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* Reading and checking a contract form                                 */

struct contract_in {
	int64_t client_id;
	const char *name, *type, *starts_on, *ends_on, *tier_id, *freq;
	const char *day, *hourly, *project, *overage, *flat, *block_fee;
	const char *notes;
	const char *block_min, *cap_min; /* minutes as text, or NULL */
	bool rollover;
};

const char *contractutil_text(struct req *r, const char *name)
{
	json_t *j;

	if (r->json_body != NULL) {
		j = json_object_get(r->json_body, name);
		if (j != NULL && !json_is_string(j) && !json_is_integer(j) &&
		    !json_is_null(j)) {
			form_error(r, name,
				   "send this as a string, e.g. \"1625.00\"");
			return "";
		}
	}
	return form_text(r, name);
}

/*
 * A field: for an API update, an absent key keeps the stored value
 * (old_text); otherwise what was sent.
 */
static const char *field(struct req *r, const PGresult *old, int col,
			 const char *name)
{
	if (old != NULL && r->json_body != NULL &&
	    json_object_get(r->json_body, name) == NULL)
		return db_text(old, 0, col);
	if (r->json_body != NULL &&
	    json_is_null(json_object_get(r->json_body, name)))
		return "";
	return contractutil_text(r, name);
}

/* Hours as minutes text, from a sent "7.5" or stored minutes. */
static const char *hours_field(struct req *r, const PGresult *old, int col,
			       const char *name, int64_t max)
{
	const char *s;
	int64_t h;

	if (old != NULL && r->json_body != NULL &&
	    json_object_get(r->json_body, name) == NULL)
		return db_isnull(old, 0, col) ? NULL : db_text(old, 0, col);
	s = contractutil_text(r, name);
	if (*s == '\0')
		return NULL;
	if (money_parse(s, false, &h) != TD_OK || (h * 60) % 100 != 0 ||
	    h * 60 / 100 > max) {
		form_error(r, name,
			   arena_printf(r->arena,
					"enter hours such as 10 or 7.5 (whole "
					"minutes, at most %" PRId64 ")",
					max / 60));
		return NULL;
	}
	if (h == 0 && !strcmp(name, "block_hours")) {
		form_error(r, name, "a block needs more than 0 hours");
		return NULL;
	}
	return arena_printf(r->arena, "%" PRId64, h * 60 / 100);
}

/* A money field as canonical text, NULL when empty (or wrong: an error). */
static const char *money_field(struct req *r, const char *name, const char *s)
{
	char buf[32];
	int64_t v;

	if (*s == '\0')
		return NULL;
	if (money_parse(s, false, &v) != TD_OK) {
		form_error(r, name,
			   "enter an amount such as 1625, 1625.50 or 1,625.00");
		return NULL;
	}
	money_text(v, buf, sizeof(buf));
	return arena_strdup(r->arena, buf);
}

enum td_err contractutil_terms_effective(struct req *r, int64_t id)
{
	const char *p[3], *eff = contractutil_text(r, "effective_from");
	const char *since;
	PGresult *res;
	enum td_err err;

	if (*eff != '\0' && !contractutil_valid_date(eff)) {
		form_error(r, "effective_from",
			   "enter the day the change takes effect as "
			   "YYYY-MM-DD");
		return TD_OK;
	}
	p[0] = req_id(r, id);
	p[1] = eff;
	err = req_query(r, sql_terms_from, 1, p, &res);
	if (err != TD_OK)
		return err;
	since = PQntuples(res) == 1 ? db_text(res, 0, 0) : "";
	if (*eff != '\0' && *since != '\0' && strcmp(eff, since) < 0) {
		form_error(r, "effective_from",
			   arena_printf(r->arena,
					"the terms changed on %s already: "
					"choose that day or later",
					since));
		return TD_OK;
	}
	if (form_has_errors(r))
		return TD_OK;
	p[2] = caller_user(r) > 0 ? req_id(r, caller_user(r)) : NULL;
	return req_query(r, sql_terms_edit, 3, p, NULL);
}

bool contractutil_valid_date(const char *s)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int y, m, d, i, max;

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
	max = mdays[m - 1];
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		max = 29;
	return d <= max;
}

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/*
 * Reads and checks a contract from the request; old is the stored row
 * for an update (NULL for a new one). Problems go to form_error().
 */
static enum td_err read_contract(struct req *r, const PGresult *old,
				 struct contract_in *in)
{
	const char *params[1], *s, *hourly_text;
	PGresult *res;
	enum td_err err;
	char *end;
	long v;

	memset(in, 0, sizeof(*in));
	if (old != NULL) {
		in->client_id = db_int(old, 0, K_CLIENT_ID);
	} else {
		s = form_text(r, "client_id");
		v = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || v <= 0) {
			form_error(r, "client_id", "choose a client");
		} else {
			params[0] = s;
			err = req_query(r, sql_client_ok, 1, params, &res);
			if (err != TD_OK)
				return err;
			if (PQntuples(res) != 1)
				form_error(r, "client_id", "choose a client");
			else if (db_bool(res, 0, 1))
				form_error(r, "client_id",
					   "this client is archived: restore "
					   "it before giving it a contract");
			else
				in->client_id = v;
		}
	}
	in->name = field(r, old, K_NAME, "name");
	if (!len_between(in->name, 1, 200))
		form_error(r, "name", "enter a name of at most 200 characters");
	in->type = field(r, old, K_TYPE, "type");
	if (find(types, NTYPES, in->type) == NULL)
		form_error(r, "type",
			   "choose per asset, block hours, all you can eat or "
			   "pay as you go");
	in->starts_on = field(r, old, K_STARTS, "starts_on");
	if (!contractutil_valid_date(in->starts_on))
		form_error(r, "starts_on", "enter a start date as YYYY-MM-DD");
	in->ends_on = field(r, old, K_ENDS, "ends_on");
	if (*in->ends_on != '\0' && !contractutil_valid_date(in->ends_on))
		form_error(r, "ends_on",
			   "enter an end date as YYYY-MM-DD, or leave it empty "
			   "for a rolling contract");
	else if (*in->ends_on != '\0' &&
		 contractutil_valid_date(in->starts_on) &&
		 strcmp(in->ends_on, in->starts_on) < 0)
		form_error(r, "ends_on",
			   "the end date is before the start date");
	in->tier_id = field(r, old, K_TIER_ID, "sla_tier_id");
	if (*in->tier_id != '\0') {
		v = strtol(in->tier_id, &end, 10);
		if (*end != '\0' || v <= 0) {
			form_error(r, "sla_tier_id", "choose an SLA tier");
		} else {
			params[0] = in->tier_id;
			err = req_query(r, sql_tier_ok, 1, params, &res);
			if (err != TD_OK)
				return err;
			if (PQntuples(res) != 1)
				form_error(r, "sla_tier_id",
					   "choose an SLA tier");
		}
	}
	in->freq = field(r, old, K_FREQ, "billing_frequency");
	if (*in->freq == '\0')
		in->freq = "monthly";
	if (find(freqs, NFREQS, in->freq) == NULL)
		form_error(r, "billing_frequency",
			   "choose monthly, quarterly or annual");
	in->day = field(r, old, K_DAY, "billing_day");
	if (*in->day == '\0')
		in->day = "1";
	v = strtol(in->day, &end, 10);
	if (!isdigit((unsigned char)*in->day) || *end != '\0' || v < 1 ||
	    v > 28)
		form_error(r, "billing_day",
			   "enter a day of the month, 1 to 28");
	hourly_text = field(r, old, K_HOURLY, "hourly_rate");
	in->hourly = money_field(r, "hourly_rate", hourly_text);
	in->project = money_field(r, "project_rate",
				  field(r, old, K_PROJECT, "project_rate"));
	in->overage = money_field(r, "overage_rate",
				  field(r, old, K_OVERAGE, "overage_rate"));
	s = field(r, old, K_FLAT, "flat_fee");
	in->flat = *s == '\0' ? "0.00" : money_field(r, "flat_fee", s);
	in->block_min = hours_field(r, old, K_BLOCK_MIN, "block_hours",
				    BLOCK_MINUTES_MAX);
	in->block_fee = money_field(r, "block_fee",
				    field(r, old, K_BLOCK_FEE, "block_fee"));
	if (old != NULL && r->json_body != NULL &&
	    json_object_get(r->json_body, "block_rollover") == NULL)
		in->rollover = db_bool(old, 0, K_ROLLOVER);
	else
		in->rollover = form_flag(r, "block_rollover");
	in->cap_min = hours_field(r, old, K_CAP, "rollover_cap_hours",
				  BLOCK_MINUTES_MAX);
	in->notes = field(r, old, K_NOTES, "notes");
	if (!len_between(in->notes, 0, NOTES_MAX))
		form_error(r, "notes", "use at most 10000 characters");

	/* What each shape needs. */
	if (!strcmp(in->type, "pay_as_you_go")) {
		if (*hourly_text == '\0')
			form_error(r, "hourly_rate",
				   "pay as you go needs an hourly rate");
		if (in->block_min != NULL)
			form_error(r, "block_hours",
				   "pay as you go has no block: choose block "
				   "hours or leave the block empty");
	}
	if (!strcmp(in->type, "block_hours") && in->block_min == NULL &&
	    *form_text(r, "block_hours") == '\0')
		form_error(r, "block_hours",
			   "a block-hours contract needs a block size");
	if (in->block_min != NULL) {
		if (in->block_fee == NULL &&
		    *field(r, old, K_BLOCK_FEE, "block_fee") == '\0')
			form_error(r, "block_fee",
				   "enter the block fee (0 when the hours are "
				   "free)");
		if (in->overage == NULL && in->hourly == NULL &&
		    *hourly_text == '\0')
			form_error(r, "overage_rate",
				   "enter an overage rate (or an hourly rate) "
				   "for time past the block");
	} else if (*form_text(r, "block_fee") != '\0' && old == NULL) {
		form_error(r, "block_fee", "a block fee needs a block size");
	}
	if (in->block_min == NULL) {
		in->block_fee = NULL;
		in->rollover = false;
		in->cap_min = NULL;
	}
	if (in->cap_min != NULL && !in->rollover)
		form_error(r, "rollover_cap_hours",
			   "tick rollover to cap the hours carried over");
	return TD_OK;
}

/*
 * Why these dates clash with another contract of the client, or NULL.
 * self is the contract being changed (0: a new one).
 */
static enum td_err overlap_why(struct req *r, int64_t client_id,
			       const char *from, const char *to, int64_t self,
			       const char **why)
{
	const char *params[4];
	PGresult *res;
	enum td_err err;

	*why = NULL;
	params[0] = req_id(r, client_id);
	params[1] = from;
	params[2] = to;
	params[3] = self > 0 ? req_id(r, self) : NULL;
	err = req_query(r, sql_overlap, 4, params, &res);
	if (err != TD_OK || PQntuples(res) == 0)
		return err;
	*why = arena_printf(
		r->arena,
		"these dates overlap contract %s (#%s, %s to %s): a client's "
		"contracts may not overlap, so end or void that one first or "
		"choose other dates",
		db_text(res, 0, 1), db_text(res, 0, 0), db_text(res, 0, 2),
		*db_text(res, 0, 3) ? db_text(res, 0, 3) : "rolling");
	return TD_OK;
}

static const char *flag_text(bool b)
{
	return b ? "t" : "f";
}

/* The $2..$17 of sql_insert/sql_update, in that order, into p[0..15]. */
static void bind_contract(struct req *r, const struct contract_in *in,
			  const char **p)
{
	p[0] = in->name;
	p[1] = in->type;
	p[2] = in->starts_on;
	p[3] = *in->ends_on ? in->ends_on : NULL;
	p[4] = *in->tier_id ? in->tier_id : NULL;
	p[5] = in->freq;
	p[6] = in->day;
	p[7] = in->hourly;
	p[8] = in->project;
	p[9] = in->overage;
	p[10] = in->flat;
	p[11] = in->block_min;
	p[12] = in->block_fee;
	p[13] = flag_text(in->rollover);
	p[14] = in->cap_min;
	p[15] = in->notes;
	(void)r;
}

/* ------------------------------------------------------------------ */
/* New, edit, create, update                                            */

/*
 * The contract form, new (old NULL) or for old; refill: show what was
 * typed (after a refusal) rather than defaults or the stored row.
 */
static enum td_err form_page(struct req *r, const PGresult *old, bool refill,
			     int64_t client_id)
{
	json_t *v = req_view(r), *f, *clients, *tiers;
	const char *sel_type, *sel_freq, *sel_tier, *sel_client;
	enum td_err err;
	size_t i;

	f = json_object();
	if (refill) {
		for (i = 0; contract_fields[i] != NULL; i++)
			json_object_set_new(
				f, contract_fields[i],
				json_string(form_text(r, contract_fields[i])));
		json_object_set_new(
			f, "block_rollover",
			json_boolean(form_flag(r, "block_rollover")));
	} else if (old != NULL) {
		json_t *c = contract_json(r, old, 0);
		static const char *const copy[] = { "name",
						    "type",
						    "starts_on",
						    "billing_frequency",
						    "hourly_rate",
						    "project_rate",
						    "overage_rate",
						    "flat_fee",
						    "block_hours",
						    "block_fee",
						    "rollover_cap_hours",
						    "notes",
						    NULL };

		for (i = 0; copy[i] != NULL; i++) {
			json_t *x = json_object_get(c, copy[i]);

			json_object_set_new(
				f, copy[i],
				json_string(json_is_string(x) ?
						    json_string_value(x) :
						    ""));
		}
		json_object_set_new(f, "ends_on",
				    json_string(db_text(old, 0, K_ENDS)));
		json_object_set_new(f, "sla_tier_id",
				    json_string(db_text(old, 0, K_TIER_ID)));
		json_object_set_new(f, "billing_day",
				    json_string(db_text(old, 0, K_DAY)));
		json_object_set_new(f, "block_rollover",
				    json_boolean(db_bool(old, 0, K_ROLLOVER)));
		json_decref(c);
	} else {
		json_object_set_new(f, "type", json_string("per_asset"));
		json_object_set_new(f, "billing_frequency",
				    json_string("monthly"));
		json_object_set_new(f, "billing_day", json_string("1"));
		json_object_set_new(f, "flat_fee", json_string("0.00"));
		json_object_set_new(
			f, "client_id",
			json_string(client_id > 0 ? req_id(r, client_id) : ""));
	}
	sel_type = json_string_value(json_object_get(f, "type"));
	sel_freq = json_string_value(json_object_get(f, "billing_frequency"));
	sel_tier = json_string_value(json_object_get(f, "sla_tier_id"));
	sel_client = json_string_value(json_object_get(f, "client_id"));
	json_object_set_new(v, "types", choices(types, NTYPES, sel_type));
	json_object_set_new(v, "freqs", choices(freqs, NFREQS, sel_freq));
	err = id_choices(r, sql_tiers, sel_tier, &tiers);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "tiers", tiers);
	if (old == NULL) {
		err = id_choices(r, sql_clients, sel_client, &clients);
		if (err != TD_OK)
			return err;
		json_object_set_new(v, "clients", clients);
	}
	json_object_set_new(v, "form", f);
	if (r->error_fields != NULL)
		json_object_set(v, "errors", r->error_fields);
	if (old != NULL) {
		json_object_set_new(v, "contract", contract_json(r, old, 0));
		json_object_set_new(v, "editing", json_true());
		json_object_set_new(
			v, "action",
			json_string(contract_url(r, db_int(old, 0, K_ID))));
		json_object_set_new(
			v, "title",
			json_string(arena_printf(r->arena, "Edit %s",
						 db_text(old, 0, K_NAME))));
	} else {
		json_object_set_new(v, "action", json_string("/contracts"));
		json_object_set_new(v, "title", json_string("New contract"));
	}
	r->view_name = "contracts/form";
	return TD_OK;
}

/* GET /contracts/new?client_id= — the form; 400 for a bad client_id. */
enum td_err contracts_new(struct req *r)
{
	int64_t client_id;

	if (!query_id(r, "client_id", &client_id))
		return req_fail(r, TD_EINPUT, "cannot parse 'client_id'");
	return form_page(r, NULL, false, client_id);
}

/* GET /contracts/:id/edit — 404; 409 once voided. */
enum td_err contracts_edit(struct req *r)
{
	PGresult *old;
	enum td_err err;

	err = load(r, route_arg_int(&r->args, "id"), false, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(old, 0, K_STATE), "voided"))
		return req_fail(r, TD_ECONFLICT,
				"this contract is voided and can't be changed");
	return form_page(r, old, false, 0);
}

/*
 * A form with errors: 422 with the fields (API), or the form again with
 * what was typed and status (422, or 409 for an overlap).
 */
static enum td_err reject(struct req *r, const PGresult *old, int status)
{
	enum td_err err;

	/* The API's 409 never gets here: refuse_overlap answers it. */
	if (r->want_json)
		return form_reject(r, "contracts/form", contract_fields);
	err = form_page(r, old, true, 0);
	if (err != TD_OK)
		return err;
	r->status = status;
	return TD_OK;
}

/* An overlap: 409 with the contract it clashes with, on the form. */
static enum td_err refuse_overlap(struct req *r, const PGresult *old,
				  const char *why)
{
	char *msg;

	form_error(r, "starts_on", why);
	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	return reject(r, old, 409);
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
 * A write the exclusion constraint guards: another request may have saved
 * an overlapping contract between our check and this statement.
 */
static enum td_err write_dated(struct req *r, const char *sql, int n,
			       const char *const *p, PGresult **res)
{
	enum td_err err = db_exec(r->db, r->arena, sql, n, p, res);

	if (err == TD_ECONFLICT)
		return req_fail(r, TD_ECONFLICT,
				"these dates overlap another contract of this "
				"client saved a moment ago: reload and check");
	if (err != TD_OK)
		return req_fail(r, err, "query failed: %s", r->db->errmsg);
	return TD_OK;
}

/* The contract as stored now, for the audit log and the API answer. */
static enum td_err snapshot(struct req *r, int64_t id, json_t **out)
{
	PGresult *res;
	enum td_err err;

	err = load(r, id, false, &res);
	if (err != TD_OK)
		return err;
	*out = contract_json(r, res, 0);
	req_own_json(r, *out);
	return TD_OK;
}

/*
 * The rest of End and Void: run the change (sql with p), audit it with the
 * contract before and after, answer with the contract and flash.
 */
static enum td_err change_state(struct req *r, int64_t id, PGresult *old,
				const char *sql, const char *const *p,
				const char *action, const char *flash)
{
	json_t *before = contract_json(r, old, 0), *after;
	enum td_err err;

	req_own_json(r, before);
	err = write_dated(r, sql, 3, p, NULL);
	if (err == TD_OK)
		err = snapshot(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, action, "contract", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "contract", after);
	done(r, flash, contract_url(r, id));
	return TD_OK;
}

/*
 * POST /contracts — 201 (API) or 303 to the contract; 422 with field
 * messages; 409 naming the contract whose dates overlap.
 */
enum td_err contracts_create(struct req *r)
{
	struct contract_in in;
	const char *p[18], *why;
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t id, uid = caller_user(r);

	err = read_contract(r, NULL, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, NULL, 422);
	err = overlap_why(r, in.client_id, in.starts_on, in.ends_on, 0, &why);
	if (err != TD_OK)
		return err;
	if (why != NULL)
		return refuse_overlap(r, NULL, why);
	p[0] = req_id(r, in.client_id);
	bind_contract(r, &in, p + 1);
	p[17] = uid > 0 ? req_id(r, uid) : NULL;
	err = write_dated(r, sql_insert, 18, p, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	err = snapshot(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, "contract.create", "contract", id, NULL,
				  after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "contract", after);
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Contract %s created.", in.name),
	     contract_url(r, id));
	return TD_OK;
}

/*
 * POST /contracts/:id — saves the contract (the API may send only what
 * changes); 303 to it; 422; 409 on overlap or once voided; 404.
 */
enum td_err contracts_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	struct contract_in in;
	const char *p[17], *why;
	json_t *before, *after;
	PGresult *old;
	enum td_err err;

	err = load(r, id, true, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(old, 0, K_STATE), "voided"))
		return req_fail(r, TD_ECONFLICT,
				"this contract is voided and can't be changed");
	err = read_contract(r, old, &in);
	if (err == TD_OK)
		err = contractutil_terms_effective(r, id);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, old, 422);
	err = overlap_why(r, in.client_id, in.starts_on, in.ends_on, id, &why);
	if (err != TD_OK)
		return err;
	if (why != NULL)
		return refuse_overlap(r, old, why);
	p[0] = req_id(r, id);
	bind_contract(r, &in, p + 1);
	before = contract_json(r, old, 0);
	req_own_json(r, before);
	err = write_dated(r, sql_update, 17, p, NULL);
	if (err == TD_OK)
		err = snapshot(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, "contract.update", "contract", id, before,
				  after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "contract", after);
	done(r, arena_printf(r->arena, "Contract %s saved.", in.name),
	     contract_url(r, id));
	return TD_OK;
}

/* ------------------------------------------------------------------ */
/* End and void                                                         */

/* A lifecycle action the contract's state forbids: 409 on its page. */
static enum td_err refuse_state(struct req *r, int64_t id, const char *why)
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

/* A lifecycle form with errors: 422, on the contract page. */
static enum td_err reject_action(struct req *r, int64_t id)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "contracts/show", NULL);
	err = contractutil_show_page(r, id);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "errors", r->error_fields);
	json_object_set_new(req_view(r), "action_form",
			    json_pack("{s:s, s:s}", "ends_on",
				      form_text(r, "ends_on"), "reason",
				      form_text(r, "reason")));
	r->status = 422;
	return TD_OK;
}

/*
 * POST /contracts/:id/end {ends_on (default today)} — managers. No
 * recurring billing after that day. 303 to the contract; 422 for a bad
 * date or one before the start; 409 once voided or on an overlap; 404.
 */
enum td_err contracts_end(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), uid = caller_user(r);
	const char *ends_on = form_text(r, "ends_on"), *p[3], *why;
	PGresult *old, *res;
	enum td_err err;

	err = load(r, id, true, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(old, 0, K_STATE), "voided"))
		return refuse_state(r, id,
				    "this contract is voided: there is "
				    "nothing to end");
	if (*ends_on == '\0') {
		err = req_query(r, sql_today, 0, NULL, &res);
		if (err != TD_OK)
			return err;
		ends_on = arena_strdup(r->arena, db_text(res, 0, 0));
	}
	if (!contractutil_valid_date(ends_on))
		form_error(r, "ends_on", "enter the last day as YYYY-MM-DD");
	else if (strcmp(ends_on, db_text(old, 0, K_STARTS)) < 0)
		form_error(r, "ends_on",
			   arena_printf(r->arena,
					"the contract starts on %s: end it on "
					"that day or later, or void it",
					db_text(old, 0, K_STARTS)));
	if (form_has_errors(r))
		return reject_action(r, id);
	err = overlap_why(r, db_int(old, 0, K_CLIENT_ID),
			  db_text(old, 0, K_STARTS), ends_on, id, &why);
	if (err != TD_OK)
		return err;
	if (why != NULL)
		return refuse_state(r, id, why);
	p[0] = req_id(r, id);
	p[1] = ends_on;
	p[2] = uid > 0 ? req_id(r, uid) : NULL;
	return change_state(r, id, old, sql_end, p, "contract.end",
			    arena_printf(r->arena, "Contract %s ends on %s.",
					 db_text(old, 0, K_NAME), ends_on));
}

/*
 * POST /contracts/:id/void {reason} — admins. The contract counts as
 * never having existed: it leaves the overlap rule and the SLA tier
 * lookup. 303; 422 without a reason; 409 when voided already; 404.
 */
enum td_err contracts_void(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), uid = caller_user(r);
	const char *reason = form_text(r, "reason"), *p[3];
	PGresult *old;
	enum td_err err;

	err = load(r, id, true, &old);
	if (err != TD_OK)
		return err;
	if (!strcmp(db_text(old, 0, K_STATE), "voided"))
		return refuse_state(r, id, "this contract is voided already");
	if (!len_between(reason, 1, VOID_REASON_MAX))
		form_error(r, "reason",
			   "say why the contract is voided (at most 1000 "
			   "characters)");
	if (form_has_errors(r))
		return reject_action(r, id);
	p[0] = req_id(r, id);
	p[1] = reason;
	p[2] = uid > 0 ? req_id(r, uid) : NULL;
	return change_state(r, id, old, sql_void, p, "contract.void",
			    arena_printf(r->arena, "Contract %s is voided.",
					 db_text(old, 0, K_NAME)));
}

/* ------------------------------------------------------------------ */
/* Show                                                                 */

/* Fills the view with contract id, its lines and block status. */
enum td_err contractutil_show_page(struct req *r, int64_t id)
{
	json_t *v = req_view(r), *c;
	PGresult *res;
	enum td_err err;
	bool writable;

	err = load(r, id, false, &res);
	if (err != TD_OK)
		return err;
	c = contract_json(r, res, 0);
	json_object_set_new(v, "contract", c);
	err = contractutil_lines_json(r, id, db_int(res, 0, K_CLIENT_ID), c);
	if (err == TD_OK)
		err = billingpanels_terms(r, id, c);
	if (err != TD_OK)
		return err;
	/* The block as it stands today, when this is the contract in force. */
	if (!db_isnull(res, 0, K_BLOCK_MIN) &&
	    !strcmp(db_text(res, 0, K_STATUS), "active")) {
		err = contracts_block_json(r, db_int(res, 0, K_CLIENT_ID), v);
		if (err != TD_OK)
			return err;
	}
	writable = is_manager(r) && strcmp(db_text(res, 0, K_STATE), "voided");
	json_object_set_new(v, "can_write", json_boolean(writable));
	json_object_set_new(v, "can_end", json_boolean(writable));
	json_object_set_new(
		v, "can_void",
		json_boolean(r->auth.role == ROLE_ADMIN &&
			     strcmp(db_text(res, 0, K_STATE), "voided")));
	json_object_set_new(v, "title", json_string(db_text(res, 0, K_NAME)));
	if (json_object_get(v, "action_form") == NULL)
		json_object_set_new(v, "action_form", json_object());
	r->view_name = "contracts/show";
	return TD_OK;
}

/* GET /contracts/:id — the contract with its lines and block; 404. */
enum td_err contracts_show(struct req *r)
{
	return contractutil_show_page(r, route_arg_int(&r->args, "id"));
}
