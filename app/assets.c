/* assets.c: a client's assets, their history, kinds and billable counts */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "assets.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "view.h"
#include "sbuf.h"
#include "banned.h"

#define NOTES_MAX     10000
#define MOVE_MAX      1000 /* assets in one bulk move */
#define FILTER_MAX    50   /* ?kind= or ?category= values on the counts page */
#define SERIES_DAYS   400  /* the longest per-day series */
#define ISO_UTC	      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"
#define LOCAL_MINUTES "'YYYY-MM-DD HH24:MI'"

/* The columns asset_json() reads, in its order. */
#define ASSET_COLS                                                             \
	"a.id, a.client_id, a.name, a.kind, a.category, a.site_id,"            \
	" coalesce(s.name, ''), a.serial, a.os, a.notes, a.billable,"          \
	" to_char(a.archived_at AT TIME ZONE t.time_zone, " LOCAL_MINUTES ")," \
	" to_char(a.last_seen_at AT TIME ZONE t.time_zone, " LOCAL_MINUTES     \
	"), to_char(a.last_seen_at AT TIME ZONE 'UTC', " ISO_UTC "),"          \
	" a.external_id,"                                                      \
	" to_char(a.created_at AT TIME ZONE t.time_zone, " LOCAL_MINUTES "),"  \
	" lower(a.name)"
#define ASSET_FROM                                                             \
	" FROM assets a JOIN tenants t ON t.id = a.tenant_id"                  \
	" LEFT JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id"

/*
 * Every filter is a parameter that may be NULL: one plan, no SQL built.
 * Pages continue after the (lower(name), id) of the last row shown.
 */
static const char sql_assets[] =
	"SELECT " ASSET_COLS ASSET_FROM
	" WHERE a.tenant_id = app_tenant() AND a.client_id = $1"
	" AND CASE $2::text WHEN 'archived' THEN a.archived_at IS NOT NULL"
	" WHEN 'all' THEN true ELSE a.archived_at IS NULL END"
	" AND ($3::text IS NULL OR a.kind = $3)"
	" AND ($4::text IS NULL OR a.category = $4)"
	" AND ($5::bigint IS NULL OR a.site_id = $5)"
	" AND (NOT $6::boolean OR a.site_id IS NULL)"
	" AND ($7::text IS NULL OR a.name ILIKE ('%' || $7 || '%') ESCAPE '\\'"
	" OR a.serial ILIKE ('%' || $7 || '%') ESCAPE '\\')"
	" AND ($8::bigint IS NULL OR (lower(a.name), a.id) > ($9::text, $8))"
	" ORDER BY lower(a.name), a.id LIMIT $10::int";
static const char sql_asset_get[] =
	"SELECT " ASSET_COLS ASSET_FROM
	" WHERE a.tenant_id = app_tenant() AND a.id = $1";
/* Locked until the transaction ends: two edits cannot interleave. */
static const char sql_asset_lock[] =
	"SELECT " ASSET_COLS ASSET_FROM
	" WHERE a.tenant_id = app_tenant() AND a.id = $1 FOR UPDATE OF a";
static const char sql_asset_new[] =
	"INSERT INTO assets (tenant_id, client_id, site_id, name, kind,"
	" category, serial, os, notes, billable) VALUES (app_tenant(), $1, $2,"
	" $3, $4, $5, $6, $7, $8, $9) RETURNING id";
/* The history trigger records client, kind, category and counting changes. */
static const char sql_asset_update[] =
	"UPDATE assets SET client_id = $2, site_id = $3, name = $4, kind = $5,"
	" category = $6, serial = $7, os = $8, notes = $9, billable = $10,"
	" archived_at = CASE WHEN $11::boolean THEN coalesce(archived_at, now())"
	" END, updated_at = now() WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_history[] =
	"SELECT to_char(lower(h.valid) AT TIME ZONE t.time_zone, " LOCAL_MINUTES
	"), to_char(upper(h.valid) AT TIME ZONE t.time_zone, " LOCAL_MINUTES
	"), to_char(lower(h.valid) AT TIME ZONE 'UTC', " ISO_UTC "),"
	" to_char(upper(h.valid) AT TIME ZONE 'UTC', " ISO_UTC "),"
	" h.client_id, c.name, h.kind, h.category, h.counts"
	" FROM asset_history h JOIN tenants t ON t.id = h.tenant_id"
	" JOIN clients c ON c.tenant_id = h.tenant_id AND c.id = h.client_id"
	" WHERE h.tenant_id = app_tenant() AND h.asset_id = $1"
	" ORDER BY lower(h.valid) DESC, h.id DESC";
static const char sql_sites[] =
	"SELECT id, name FROM sites WHERE tenant_id = app_tenant()"
	" AND client_id = $1 ORDER BY lower(name), id";
static const char sql_site_of_client[] =
	"SELECT name FROM sites WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND id = $2";
static const char sql_categories[] =
	"SELECT DISTINCT category FROM assets WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND category <> '' ORDER BY 1";
/*
 * Where an asset may go: clients that are not merged, archived ones only
 * if it is there already.
 * XXX: a <select> of every client; a search box once there are many.
 */
static const char sql_client_choices[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND merged_into IS NULL AND (archived_at IS NULL OR id = $1)"
	" ORDER BY lower(name), id";
static const char sql_client_target[] =
	"SELECT name, archived_at IS NOT NULL, merged_into IS NOT NULL"
	" FROM clients WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_external_taken[] =
	"SELECT 1 FROM assets WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND external_id = $2 AND id <> $3";
static const char sql_move_lock[] =
	"SELECT id, site_id FROM assets WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND id = ANY ($2::bigint[]) ORDER BY id FOR UPDATE";
/* site_id is not part of the history: billing does not count by site. */
static const char sql_move[] =
	"UPDATE assets SET site_id = $3, updated_at = now()"
	" WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND id = ANY ($2::bigint[])";
/* Per kind (grouping 1), per category (2) and in all (3). */
static const char sql_today[] =
	"SELECT kind, category, grouping(kind, category),"
	" count(*) FILTER (WHERE billable), count(*) FROM assets"
	" WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND archived_at IS NULL"
	" GROUP BY GROUPING SETS ((kind), (category), ())"
	" ORDER BY 3, 1, 2";
static const char sql_this_month[] =
	"SELECT to_char(date_trunc('month', now() AT TIME ZONE time_zone),"
	" 'YYYY-MM-DD'), to_char(now() AT TIME ZONE time_zone, 'YYYY-MM-DD')"
	" FROM tenants WHERE id = app_tenant()";
/* The filters arrive as JSON arrays of strings (or NULL: any). */
static const char sql_series[] =
	"SELECT to_char(day, 'YYYY-MM-DD'), count FROM asset_daily_counts($1,"
	" $2::date, $3::date, (SELECT time_zone FROM tenants"
	" WHERE id = app_tenant()),"
	" (SELECT array_agg(x) FROM json_array_elements_text($4::json) x),"
	" (SELECT array_agg(x) FROM json_array_elements_text($5::json) x))";
static const char sql_history_categories[] =
	"SELECT DISTINCT category FROM asset_history"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND category <> ''"
	" ORDER BY 1";
static const char sql_kinds[] =
	"SELECT key, name FROM asset_kinds WHERE tenant_id = app_tenant()"
	" ORDER BY lower(name), key";
static const char sql_kind_use[] =
	"SELECT kind, count(*) FROM assets WHERE tenant_id = app_tenant()"
	" AND archived_at IS NULL GROUP BY kind";
static const char sql_kind_new[] =
	"INSERT INTO asset_kinds (tenant_id, key, name)"
	" VALUES (app_tenant(), $1, $2)";

/* Asset columns, in ASSET_COLS order. */
enum {
	COL_ID,
	COL_CLIENT,
	COL_NAME,
	COL_KIND,
	COL_CATEGORY,
	COL_SITE,
	COL_SITE_NAME,
	COL_SERIAL,
	COL_OS,
	COL_NOTES,
	COL_BILLABLE,
	COL_ARCHIVED,
	COL_LAST_SEEN,
	COL_LAST_SEEN_ISO,
	COL_EXTERNAL,
	COL_CREATED,
	COL_SORT_NAME,
};

static const struct {
	const char *key, *label;
} builtin_kinds[] = {
	{ "workstation", "Workstation" }, { "server", "Server" },
	{ "network", "Network device" },  { "m365_user", "Microsoft 365 user" },
	{ "domain", "Domain" },		  { "other", "Other" },
};

#define NBUILTIN (sizeof(builtin_kinds) / sizeof(builtin_kinds[0]))

static const char *const month_abbr[] = { "Jan", "Feb", "Mar", "Apr",
					  "May", "Jun", "Jul", "Aug",
					  "Sep", "Oct", "Nov", "Dec" };

/* The text fields of the asset forms, kept when a form is refused. */
static const char *const asset_fields[] = { "name",    "kind",	    "category",
					    "site_id", "serial",    "os",
					    "notes",   "client_id", NULL };

/* The built-in kinds and the tenant's own (a result of sql_kinds). */
struct kinds {
	PGresult *res;
};

/* An asset form, read and checked. */
struct asset_in {
	int64_t client_id;
	int64_t site_id; /* 0: no site */
	const char *name, *kind, *category, *serial, *os, *notes;
	bool billable, archived;
};

/* The list filters of ?kind=&category=&site_id=&status=&q=. */
struct asset_filter {
	const char *status; /* active, archived or all */
	const char *kind, *category, *site, *q;
	int64_t site_id;
	bool no_site;
};

struct day_count {
	int y, m, d;
	int64_t count;
};

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/* A text column as a string, or null when NULL or empty (templates test it). */
static json_t *text_or_none(const PGresult *res, int row, int col)
{
	const char *s = db_text(res, row, col);

	return *s == '\0' ? json_null() : json_string(s);
}

static json_t *id_or_null(const PGresult *res, int row, int col)
{
	return db_isnull(res, row, col) ?
		       json_null() :
		       json_integer((json_int_t)db_int(res, row, col));
}

/* A positive id as typed ("12"); 0 for anything else. */
static int64_t parse_id(const char *s)
{
	long long v;
	char *end;

	if (*s < '1' || *s > '9')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || errno != 0 || v <= 0)
		return 0;
	return (int64_t)v;
}

/* A query parameter, NULL when absent or empty. */
static const char *query_param(struct req *r, const char *name)
{
	const char *v = http_params_get(&r->query_params, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* s with LIKE's wildcards and escape character made literal. */
static const char *like_escape(struct req *r, const char *s)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, strlen(s) + 8);
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '%' || *s == '_')
			sbuf_addch(&sb, '\\');
		sbuf_addch(&sb, *s);
	}
	return sbuf_cstr(&sb);
}

/* What asset_kinds.key's CHECK accepts: ^[a-z0-9_]{1,40}$. */
static bool kind_key_ok(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++, n++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') &&
		    *s != '_')
			return false;
	return n >= 1 && n <= 40;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* YYYY-MM-DD naming a real day, split into its parts. */
static bool date_parse(const char *s, int *y, int *m, int *d)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	bool leap;
	int i;

	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return false;
		} else if (!is_digit(s[i])) {
			return false;
		}
	}
	if (s[10] != '\0')
		return false;
	*y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	     (s[3] - '0');
	*m = (s[5] - '0') * 10 + (s[6] - '0');
	*d = (s[8] - '0') * 10 + (s[9] - '0');
	if (*y < 1 || *m < 1 || *m > 12 || *d < 1)
		return false;
	leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
	return *d <= mdays[*m - 1] + (*m == 2 && leap);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* --- kinds ------------------------------------------------------------ */

static enum td_err load_kinds(struct req *r, struct kinds *k)
{
	return req_query(r, sql_kinds, 0, NULL, &k->res);
}

/* The label of a kind key: built-in, the tenant's, or the key itself. */
static const char *kind_label(const struct kinds *k, const char *key)
{
	size_t i;
	int j, n = PQntuples(k->res);

	for (i = 0; i < NBUILTIN; i++)
		if (!strcmp(builtin_kinds[i].key, key))
			return builtin_kinds[i].label;
	for (j = 0; j < n; j++)
		if (!strcmp(db_text(k->res, j, 0), key))
			return db_text(k->res, j, 1);
	return key;
}

static bool kind_builtin(const char *key)
{
	size_t i;

	for (i = 0; i < NBUILTIN; i++)
		if (!strcmp(builtin_kinds[i].key, key))
			return true;
	return false;
}

static bool kind_known(const struct kinds *k, const char *key)
{
	int j, n = PQntuples(k->res);

	if (kind_builtin(key))
		return true;
	for (j = 0; j < n; j++)
		if (!strcmp(db_text(k->res, j, 0), key))
			return true;
	return false;
}

static json_t *kind_json(const char *key, const char *name, bool builtin,
			 const char *selected, const char *chosen)
{
	return json_pack("{s:s, s:s, s:b, s:b, s:b}", "key", key, "name", name,
			 "builtin", builtin, "selected",
			 selected != NULL && !strcmp(selected, key), "chosen",
			 chosen != NULL && !strcmp(chosen, key));
}

/*
 * Every kind for a <select>: `selected` marks the list filter's choice,
 * `chosen` the form's. A kind no longer known (chosen but not listed)
 * is added so the form can keep it.
 */
static json_t *kinds_json(const struct kinds *k, const char *selected,
			  const char *chosen)
{
	json_t *list = json_array();
	size_t i;
	int j, n = PQntuples(k->res);

	for (i = 0; i < NBUILTIN; i++)
		json_array_append_new(list, kind_json(builtin_kinds[i].key,
						      builtin_kinds[i].label,
						      true, selected, chosen));
	for (j = 0; j < n; j++)
		if (!kind_builtin(db_text(k->res, j, 0)))
			json_array_append_new(
				list, kind_json(db_text(k->res, j, 0),
						db_text(k->res, j, 1), false,
						selected, chosen));
	if (chosen != NULL && *chosen != '\0' && !kind_known(k, chosen))
		json_array_append_new(list, kind_json(chosen, chosen, false,
						      selected, chosen));
	return list;
}

/* Sets `chosen` on the items of the view's array whose field is value. */
static void mark_chosen(struct req *r, const char *array, const char *field,
			const char *value)
{
	json_t *list = json_object_get(req_view(r), array), *item, *f;
	const char *text;
	size_t i;

	json_array_foreach(list, i, item)
	{
		f = json_object_get(item, field);
		if (json_is_integer(f))
			text = arena_printf(r->arena, "%" JSON_INTEGER_FORMAT,
					    json_integer_value(f));
		else
			text = json_is_string(f) ? json_string_value(f) : "";
		json_object_set_new(item, "chosen",
				    json_boolean(!strcmp(text, value)));
	}
}

/* Sets `selected` on the items whose field is one of the strings wanted. */
static void mark_selected(json_t *list, const char *field, json_t *wanted)
{
	json_t *item, *want;
	const char *value;
	size_t i, j;
	bool on;

	json_array_foreach(list, i, item)
	{
		value = json_string_value(json_object_get(item, field));
		on = false;
		json_array_foreach(wanted, j, want)
		{
			if (value != NULL &&
			    !strcmp(json_string_value(want), value))
				on = true;
		}
		json_object_set_new(item, "selected", json_boolean(on));
	}
}

/* --- assets ------------------------------------------------------------ */

static json_t *asset_json(struct req *r, const struct kinds *k,
			  const PGresult *res, int i)
{
	int64_t id = db_int(res, i, COL_ID);

	return json_pack(
		"{s:I, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:b,"
		" s:b, s:o, s:o, s:o, s:o, s:s, s:s}",
		"id", (json_int_t)id, "client_id",
		(json_int_t)db_int(res, i, COL_CLIENT), "name",
		db_text(res, i, COL_NAME), "kind", db_text(res, i, COL_KIND),
		"kind_label", kind_label(k, db_text(res, i, COL_KIND)),
		"category", text_or_none(res, i, COL_CATEGORY), "site_id",
		id_or_null(res, i, COL_SITE), "site_name",
		text_or_none(res, i, COL_SITE_NAME), "serial",
		text_or_none(res, i, COL_SERIAL), "os",
		text_or_none(res, i, COL_OS), "notes",
		text_or_none(res, i, COL_NOTES), "billable",
		db_bool(res, i, COL_BILLABLE), "archived",
		!db_isnull(res, i, COL_ARCHIVED), "archived_at",
		text_or_none(res, i, COL_ARCHIVED), "last_seen",
		text_or_none(res, i, COL_LAST_SEEN), "last_seen_iso",
		text_or_none(res, i, COL_LAST_SEEN_ISO), "external_id",
		text_or_none(res, i, COL_EXTERNAL), "created_at",
		db_text(res, i, COL_CREATED), "url",
		arena_printf(r->arena, "/assets/%" PRId64, id));
}

/* The fields the audit log keeps, from a row. */
static json_t *asset_audit(const PGresult *res)
{
	return json_pack(
		"{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}",
		"client_id", (json_int_t)db_int(res, 0, COL_CLIENT), "site_id",
		id_or_null(res, 0, COL_SITE), "name", db_text(res, 0, COL_NAME),
		"kind", db_text(res, 0, COL_KIND), "category",
		db_text(res, 0, COL_CATEGORY), "serial",
		db_text(res, 0, COL_SERIAL), "os", db_text(res, 0, COL_OS),
		"notes", db_text(res, 0, COL_NOTES), "billable",
		db_bool(res, 0, COL_BILLABLE), "archived",
		!db_isnull(res, 0, COL_ARCHIVED));
}

/* One asset of the tenant (locked when lock is set); 404 if none. */
static enum td_err load_asset(struct req *r, int64_t id, bool lock,
			      PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err;

	err = req_query(r, lock ? sql_asset_lock : sql_asset_get, 1, params,
			res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no asset %" PRId64, id);
	return TD_OK;
}

/* A client's sites for a <select>; `selected` is the list filter's. */
static enum td_err sites_json(struct req *r, int64_t client_id,
			      int64_t selected, int64_t chosen, json_t **out)
{
	const char *params[1] = { req_id(r, client_id) };
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_sites, 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			*out, json_pack("{s:I, s:s, s:b, s:b}", "id",
					(json_int_t)db_int(res, i, 0), "name",
					db_text(res, i, 1), "selected",
					db_int(res, i, 0) == selected, "chosen",
					db_int(res, i, 0) == chosen));
	return TD_OK;
}

/* Why new assets cannot be added to a client, or NULL if they can. */
static const char *closed_why(struct req *r, const struct clientctx *c)
{
	if (c->merged)
		return arena_printf(
			r->arena,
			"%s was merged into another client: add assets there",
			c->name);
	if (c->archived)
		return arena_printf(
			r->arena,
			"%s is archived: restore the client before adding assets",
			c->name);
	return NULL;
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/* The page already built: a general message on it and a status. */
static enum td_err page_error(struct req *r, int status, const char *why)
{
	char *msg = arena_printf(r->arena, "%s.", why);

	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = status;
	return TD_OK;
}

/* Reads the list filters; bad values are noted with form_error(). */
static void read_filter(struct req *r, struct asset_filter *f)
{
	f->status = query_param(r, "status");
	f->kind = query_param(r, "kind");
	f->category = query_param(r, "category");
	f->site = query_param(r, "site_id");
	f->q = query_param(r, "q");
	f->site_id = 0;
	f->no_site = false;
	if (f->status == NULL)
		f->status = "active";
	if (strcmp(f->status, "active") != 0 &&
	    strcmp(f->status, "archived") != 0 &&
	    strcmp(f->status, "all") != 0) {
		form_error(r, "status", "choose active, archived or all");
		f->status = "active";
	}
	if (f->kind != NULL && !kind_key_ok(f->kind)) {
		form_error(r, "kind", "not a kind of asset");
		f->kind = NULL;
	}
	if (f->category != NULL && !len_between(f->category, 1, 100)) {
		form_error(r, "category", "use at most 100 characters");
		f->category = NULL;
	}
	if (f->q != NULL && !len_between(f->q, 1, 200)) {
		form_error(r, "q", "use at most 200 characters");
		f->q = NULL;
	}
	if (f->site != NULL && !strcmp(f->site, "none")) {
		f->no_site = true;
	} else if (f->site != NULL) {
		f->site_id = parse_id(f->site);
		if (f->site_id == 0) {
			form_error(r, "site_id", "not a site");
			f->site = NULL;
		}
	}
}

/* Appends "?name=value" (the first) or "&name=value"; NULL adds nothing. */
static void add_query(struct sbuf *sb, bool *first, const char *name,
		      const char *value)
{
	if (value == NULL)
		return;
	sbuf_addch(sb, *first ? '?' : '&');
	*first = false;
	sbuf_adds(sb, name);
	sbuf_addch(sb, '=');
	http_url_encode(sb, value);
}

/* The list's URL with the filters of f, status replaced. */
static const char *filter_url(struct req *r, const char *base,
			      const struct asset_filter *f, const char *status)
{
	struct sbuf sb;
	bool first = true;

	sbuf_init(&sb, r->arena, 128);
	sbuf_adds(&sb, base);
	add_query(&sb, &first, "status", status);
	add_query(&sb, &first, "kind", f->kind);
	add_query(&sb, &first, "category", f->category);
	add_query(&sb, &first, "site_id", f->site);
	add_query(&sb, &first, "q", f->q);
	return sbuf_cstr(&sb);
}

static json_t *status_chips(struct req *r, const char *base,
			    const struct asset_filter *f)
{
	static const struct {
		const char *value, *label;
	} chips[] = { { "active", "Active" },
		      { "archived", "Archived" },
		      { "all", "All" } };
	json_t *list = json_array();
	size_t i;

	for (i = 0; i < sizeof(chips) / sizeof(chips[0]); i++)
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:b}", "label", chips[i].label,
				  "href",
				  filter_url(r, base, f,
					     i == 0 ? NULL : chips[i].value),
				  "on", !strcmp(f->status, chips[i].value)));
	return list;
}

/*
 * A page cursor: "<id>:<lower(name)>" of the last row shown. False (and
 * a form error) if malformed.
 */
static bool parse_cursor(struct req *r, const char *after, int64_t *id,
			 const char **name)
{
	const char *colon = strchr(after, ':');

	*id = 0;
	if (colon != NULL)
		*id = parse_id(arena_strndup(r->arena, after,
					     (size_t)(colon - after)));
	if (*id == 0) {
		form_error(r, "after", "not a valid position in the list");
		return false;
	}
	*name = colon + 1;
	return true;
}

/* The categories a client's assets have, for a <datalist>. */
static enum td_err categories_json(struct req *r, const char *sql,
				   int64_t client_id, json_t *selected,
				   json_t **out)
{
	const char *params[1] = { req_id(r, client_id) }, *cat;
	PGresult *res;
	enum td_err err;
	json_t *item;
	size_t k;
	bool on;
	int i, n;

	err = req_query(r, sql, 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		cat = db_text(res, i, 0);
		on = false;
		json_array_foreach(selected, k, item)
		{
			if (!strcmp(json_string_value(item), cat))
				on = true;
		}
		json_array_append_new(*out, json_pack("{s:s, s:b}", "value",
						      cat, "selected", on));
	}
	return TD_OK;
}

/*
 * The assets page of a client: the filtered list, a page at a time, the
 * bulk move and the add form.
 */
static enum td_err list_page(struct req *r, int64_t client_id)
{
	const char *params[10], *after = clientctx_after(r), *base;
	const char *after_name = NULL;
	struct asset_filter f;
	struct clientctx c;
	struct kinds k;
	json_t *v, *list, *sites, *cats, *sel;
	PGresult *res;
	enum td_err err;
	int64_t after_id = 0;
	int i, n, limit = clientctx_limit(r);

	err = clientctx_load(r, client_id, "assets", &c);
	if (err == TD_OK)
		err = load_kinds(r, &k);
	if (err != TD_OK)
		return err;
	read_filter(r, &f);
	if (after != NULL)
		parse_cursor(r, after, &after_id, &after_name);
	v = req_view(r);
	/* Not r->path: a refused move or add shows this page too. */
	base = arena_printf(r->arena, "%s/clients/%" PRId64 "/assets",
			    strncmp(r->path, "/api/v1/", 8) ? "" : "/api/v1",
			    client_id);
	err = sites_json(r, client_id, f.site_id, 0, &sites);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "sites", sites);
	sel = json_array();
	if (f.category != NULL)
		json_array_append_new(sel, json_string(f.category));
	err = categories_json(r, sql_categories, client_id, sel, &cats);
	json_decref(sel);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "categories", cats);
	json_object_set_new(v, "kinds", kinds_json(&k, f.kind, "workstation"));
	json_object_set_new(v, "filter",
			    json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:b}",
				      "status", f.status, "kind", f.kind,
				      "category", f.category, "site_id", f.site,
				      "q", f.q, "no_site", f.no_site, "any",
				      f.kind || f.category || f.site || f.q ||
					      strcmp(f.status, "active") != 0));
	json_object_set_new(v, "status_chips", status_chips(r, base, &f));
	json_object_set_new(v, "form", json_pack("{s:b}", "billable", true));
	json_object_set_new(v, "read_only",
			    json_boolean(closed_why(r, &c) != NULL));
	json_object_set_new(v, "movable", json_boolean(!c.merged));
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "Assets · %s", c.name)));
	r->view_name = "assets/list";
	if (form_has_errors(r)) {
		json_object_set_new(v, "assets", json_array());
		err = form_reject(r, "assets/list", NULL);
		json_object_set_new(json_object_get(v, "form"), "billable",
				    json_true());
		return err;
	}
	params[0] = req_id(r, client_id);
	params[1] = f.status;
	params[2] = f.kind;
	params[3] = f.category;
	params[4] = f.site_id > 0 ? req_id(r, f.site_id) : NULL;
	params[5] = f.no_site ? "true" : "false";
	params[6] = f.q ? like_escape(r, f.q) : NULL;
	params[7] = after_id > 0 ? req_id(r, after_id) : NULL;
	params[8] = after_name;
	/* One more than a page, to know whether there is a next one. */
	params[9] = arena_printf(r->arena, "%d", limit + 1);
	err = req_query(r, sql_assets, 10, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < limit; i++)
		json_array_append_new(list, asset_json(r, &k, res, i));
	json_object_set_new(v, "assets", list);
	if (n > limit)
		json_object_set_new(
			v, "next_url",
			json_string(clientctx_next_url(
				r, base,
				arena_printf(r->arena, "%" PRId64 ":%s",
					     db_int(res, limit - 1, COL_ID),
					     db_text(res, limit - 1,
						     COL_SORT_NAME)))));
	if (after != NULL)
		json_object_set_new(
			v, "first_url",
			json_string(filter_url(
				r, base, &f,
				strcmp(f.status, "active") ? f.status : NULL)));
	return TD_OK;
}

/* GET /clients/:id/assets — 422 for a malformed filter or cursor. */
enum td_err assets_list(struct req *r)
{
	return list_page(r, route_arg_int(&r->args, "id"));
}

/* A field as typed; for an API caller that left it out, current. */
static const char *field_or(struct req *r, const char *name,
			    const char *current)
{
	if (r->json_body != NULL && json_object_get(r->json_body, name) == NULL)
		return current;
	return form_text(r, name);
}

static bool flag_or(struct req *r, const char *name, bool current)
{
	if (r->json_body != NULL && json_object_get(r->json_body, name) == NULL)
		return current;
	return form_flag(r, name);
}

/*
 * Checks an asset form for in->client_id (set by the caller); keep_kind
 * is a kind the asset has already, allowed even if no longer known. The
 * site is checked only when site_text is not NULL.
 */
static enum td_err check_asset(struct req *r, const struct kinds *k,
			       const char *keep_kind, const char *site_text,
			       struct asset_in *in)
{
	const char *params[2];
	PGresult *res;
	enum td_err err;

	if (!len_between(in->name, 1, 200))
		form_error(r, "name", "enter a name of at most 200 characters");
	if (!kind_known(k, in->kind) &&
	    (keep_kind == NULL || strcmp(keep_kind, in->kind) != 0))
		form_error(r, "kind", "choose a kind from the list");
	if (!len_between(in->category, 0, 100))
		form_error(r, "category", "use at most 100 characters");
	if (!len_between(in->serial, 0, 200))
		form_error(r, "serial", "use at most 200 characters");
	if (!len_between(in->os, 0, 200))
		form_error(r, "os", "use at most 200 characters");
	if (!len_between(in->notes, 0, NOTES_MAX))
		form_error(r, "notes", "use at most 10000 characters");
	in->site_id = 0;
	if (site_text == NULL || *site_text == '\0')
		return TD_OK;
	in->site_id = parse_id(site_text);
	if (in->site_id > 0) {
		params[0] = req_id(r, in->client_id);
		params[1] = req_id(r, in->site_id);
		err = req_query(r, sql_site_of_client, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) == 1)
			return TD_OK;
	}
	form_error(r, "site_id", "choose one of this client's sites");
	return TD_OK;
}

/*
 * The 10 parameters $2..$11 of sql_asset_update; sql_asset_new takes the
 * first 9 as $1..$9.
 */
static void asset_params(struct req *r, const struct asset_in *in,
			 const char **params)
{
	params[0] = req_id(r, in->client_id);
	params[1] = in->site_id > 0 ? req_id(r, in->site_id) : NULL;
	params[2] = in->name;
	params[3] = in->kind;
	params[4] = in->category;
	params[5] = in->serial;
	params[6] = in->os;
	params[7] = in->notes;
	params[8] = in->billable ? "true" : "false";
	params[9] = in->archived ? "true" : "false";
}

/* The select and checkbox choices of a refused form, as typed. */
static void keep_choices(struct req *r, const struct asset_in *in)
{
	json_t *form = json_object_get(req_view(r), "form");

	json_object_set_new(form, "billable", json_boolean(in->billable));
	json_object_set_new(form, "archived", json_boolean(in->archived));
	mark_chosen(r, "kinds", "key", in->kind);
	mark_chosen(r, "sites", "id",
		    in->site_id > 0 ? req_id(r, in->site_id) : "");
	mark_chosen(r, "clients", "id", req_id(r, in->client_id));
}

/*
 * POST /clients/:id/assets — 201 (API) or 303 to the assets page; 422 for
 * bad fields or another client's site; 409 if the client is archived or
 * merged; 404 for another tenant's client.
 */
enum td_err assets_create(struct req *r)
{
	int64_t client_id = route_arg_int(&r->args, "id"), id;
	const char *params[10], *why; /* the insert takes the first 9 */
	struct asset_in in;
	struct clientctx c;
	struct kinds k;
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, client_id, "assets", &c);
	if (err == TD_OK)
		err = load_kinds(r, &k);
	if (err != TD_OK)
		return err;
	why = closed_why(r, &c);
	if (why != NULL) {
		if (r->want_json)
			return req_fail(r, TD_ECONFLICT, "%s", why);
		err = list_page(r, client_id);
		return err != TD_OK ? err : page_error(r, 409, why);
	}
	in.client_id = client_id;
	in.name = form_text(r, "name");
	in.kind = form_text(r, "kind");
	in.category = form_text(r, "category");
	in.serial = form_text(r, "serial");
	in.os = form_text(r, "os");
	in.notes = form_text(r, "notes");
	in.billable = flag_or(r, "billable", true);
	in.archived = false;
	err = check_asset(r, &k, NULL, form_text(r, "site_id"), &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "assets/list", asset_fields);
		err = list_page(r, client_id);
		if (err != TD_OK)
			return err;
		err = form_reject(r, "assets/list", asset_fields);
		keep_choices(r, &in);
		return err;
	}
	asset_params(r, &in, params);
	err = req_query(r, sql_asset_new, 9, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	err = load_asset(r, id, false, &res);
	if (err != TD_OK)
		return err;
	after = asset_audit(res);
	req_own_json(r, after);
	err = audit_write(r, "asset.create", "asset", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "asset", asset_json(r, &k, res, 0));
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Asset %s added.", in.name),
	     arena_printf(r->arena, "/clients/%" PRId64 "/assets", client_id));
	return TD_OK;
}

/* An asset's history, newest first. */
static enum td_err history_json(struct req *r, const struct kinds *k,
				int64_t id, json_t **out)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_history, 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			*out,
			json_pack(
				"{s:s, s:o, s:s, s:o, s:b, s:I, s:s, s:s, s:s,"
				" s:o, s:b}",
				"from", db_text(res, i, 0), "to",
				text_or_none(res, i, 1), "from_iso",
				db_text(res, i, 2), "to_iso",
				text_or_none(res, i, 3), "current",
				db_isnull(res, i, 1), "client_id",
				(json_int_t)db_int(res, i, 4), "client_name",
				db_text(res, i, 5), "kind", db_text(res, i, 6),
				"kind_label", kind_label(k, db_text(res, i, 6)),
				"category", text_or_none(res, i, 7), "counts",
				db_bool(res, i, 8)));
	return TD_OK;
}

/* Clients an asset may move to, for a <select>. */
static enum td_err clients_json(struct req *r, int64_t current, json_t **out)
{
	const char *params[1] = { req_id(r, current) };
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_client_choices, 1, params, &res);
	if (err != TD_OK)
		return err;
	*out = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			*out, json_pack("{s:I, s:s, s:b}", "id",
					(json_int_t)db_int(res, i, 0), "name",
					db_text(res, i, 1), "chosen",
					db_int(res, i, 0) == current));
	return TD_OK;
}

/* The asset page: the asset, its history and the edit form. */
static enum td_err show_page(struct req *r, int64_t id)
{
	struct clientctx c;
	struct kinds k;
	json_t *v, *history, *sites, *clients, *cats, *none;
	PGresult *res;
	enum td_err err;
	int64_t client_id;

	err = load_asset(r, id, false, &res);
	if (err == TD_OK)
		err = load_kinds(r, &k);
	if (err != TD_OK)
		return err;
	client_id = db_int(res, 0, COL_CLIENT);
	err = clientctx_load(r, client_id, "assets", &c);
	if (err == TD_OK)
		err = history_json(r, &k, id, &history);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "history", history);
	err = sites_json(r, client_id, 0,
			 db_isnull(res, 0, COL_SITE) ? 0 :
						       db_int(res, 0, COL_SITE),
			 &sites);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "sites", sites);
	err = clients_json(r, client_id, &clients);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "clients", clients);
	none = json_array();
	err = categories_json(r, sql_categories, client_id, none, &cats);
	json_decref(none);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "categories", cats);
	json_object_set_new(v, "asset", asset_json(r, &k, res, 0));
	json_object_set_new(v, "kinds",
			    kinds_json(&k, NULL, db_text(res, 0, COL_KIND)));
	json_object_set_new(
		v, "form",
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:b}",
			  "name", db_text(res, 0, COL_NAME), "kind",
			  db_text(res, 0, COL_KIND), "category",
			  db_text(res, 0, COL_CATEGORY), "site_id",
			  db_text(res, 0, COL_SITE), "serial",
			  db_text(res, 0, COL_SERIAL), "os",
			  db_text(res, 0, COL_OS), "notes",
			  db_text(res, 0, COL_NOTES), "client_id",
			  req_id(r, client_id), "billable",
			  db_bool(res, 0, COL_BILLABLE), "archived",
			  !db_isnull(res, 0, COL_ARCHIVED)));
	json_object_set_new(v, "read_only", json_boolean(c.merged));
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "%s · %s",
					 db_text(res, 0, COL_NAME), c.name)));
	r->view_name = "assets/show";
	return TD_OK;
}

/* GET /assets/:id — 404 for another tenant's asset. */
enum td_err assets_show(struct req *r)
{
	return show_page(r, route_arg_int(&r->args, "id"));
}

/*
 * The client an asset is to belong to: current, or another of the
 * tenant's that is neither archived nor merged (else a form error). An
 * RMM id must stay unique within the client.
 */
static enum td_err check_client(struct req *r, const PGresult *old,
				struct asset_in *in)
{
	int64_t current = db_int(old, 0, COL_CLIENT);
	const char *text = field_or(r, "client_id", req_id(r, current));
	const char *params[3];
	PGresult *res;
	enum td_err err;

	in->client_id = parse_id(text);
	if (in->client_id == current)
		return TD_OK;
	if (in->client_id == 0) {
		in->client_id = current;
		form_error(r, "client_id", "choose a client from the list");
		return TD_OK;
	}
	params[0] = req_id(r, in->client_id);
	err = req_query(r, sql_client_target, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		form_error(r, "client_id", "choose a client from the list");
	else if (db_bool(res, 0, 2))
		form_error(
			r, "client_id",
			"that client was merged into another: choose that one");
	else if (db_bool(res, 0, 1))
		form_error(r, "client_id",
			   "that client is archived: restore it first");
	if (form_has_errors(r) || db_isnull(old, 0, COL_EXTERNAL))
		return TD_OK;
	params[1] = db_text(old, 0, COL_EXTERNAL);
	params[2] = db_text(old, 0, COL_ID);
	err = req_query(r, sql_external_taken, 3, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0)
		form_error(
			r, "client_id",
			"that client has an asset with the same RMM id already");
	return TD_OK;
}

/*
 * POST /assets/:id — 303 to the asset (the API gets it; fields it leaves
 * out keep their values); 422 for bad fields, another client's site or a
 * client it cannot move to; 409 if its client was merged and it stays
 * there; 404 for another tenant's asset. Moving to another client
 * clears the site.
 */
enum td_err assets_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[11], *site_text;
	struct asset_in in;
	struct clientctx c;
	struct kinds k;
	json_t *before, *after;
	PGresult *old, *res;
	enum td_err err;

	err = load_asset(r, id, true, &old);
	if (err == TD_OK)
		err = load_kinds(r, &k);
	if (err == TD_OK)
		err = clientctx_load(r, db_int(old, 0, COL_CLIENT), "assets",
				     &c);
	if (err == TD_OK)
		err = check_client(r, old, &in);
	if (err != TD_OK)
		return err;
	if (c.merged && in.client_id == c.id) {
		if (r->want_json)
			return req_fail(r, TD_ECONFLICT,
					"%s was merged into another client:"
					" move the asset there",
					c.name);
		err = show_page(r, id);
		return err != TD_OK ?
			       err :
			       page_error(r, 409,
					  "the client was merged into another:"
					  " move the asset there");
	}
	in.name = field_or(r, "name", db_text(old, 0, COL_NAME));
	in.kind = field_or(r, "kind", db_text(old, 0, COL_KIND));
	in.category = field_or(r, "category", db_text(old, 0, COL_CATEGORY));
	in.serial = field_or(r, "serial", db_text(old, 0, COL_SERIAL));
	in.os = field_or(r, "os", db_text(old, 0, COL_OS));
	in.notes = field_or(r, "notes", db_text(old, 0, COL_NOTES));
	in.billable = flag_or(r, "billable", db_bool(old, 0, COL_BILLABLE));
	in.archived = flag_or(r, "archived", !db_isnull(old, 0, COL_ARCHIVED));
	/* Another client's sites are not this one's: the asset has none. */
	site_text = in.client_id == c.id ?
			    field_or(r, "site_id", db_text(old, 0, COL_SITE)) :
			    NULL;
	err = check_asset(r, &k, db_text(old, 0, COL_KIND), site_text, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "assets/show", asset_fields);
		err = show_page(r, id);
		if (err != TD_OK)
			return err;
		err = form_reject(r, "assets/show", asset_fields);
		keep_choices(r, &in);
		return err;
	}
	params[0] = req_id(r, id);
	asset_params(r, &in, params + 1);
	err = req_query(r, sql_asset_update, 11, params, NULL);
	if (err == TD_OK)
		err = load_asset(r, id, false, &res);
	if (err != TD_OK)
		return err;
	before = asset_audit(old);
	req_own_json(r, before);
	after = asset_audit(res);
	req_own_json(r, after);
	err = audit_write(r, "asset.update", "asset", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "asset", asset_json(r, &k, res, 0));
	done(r, arena_printf(r->arena, "Asset %s saved.", in.name),
	     arena_printf(r->arena, "/assets/%" PRId64, id));
	return TD_OK;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The ids to move: every form field "id", or the JSON array "ids" (of
 * numbers or numeric strings); sorted, without repeats. False (with a
 * form error) if one is not an id or there are none or too many.
 */
static bool read_ids(struct req *r, int64_t **ids, size_t *n)
{
	json_t *arr = NULL, *item;
	size_t i, cap, got = 0, out;
	int64_t id;

	if (r->json_body != NULL) {
		arr = json_object_get(r->json_body, "ids");
		cap = json_array_size(arr);
	} else {
		cap = r->form.n;
	}
	*ids = arena_alloc(r->arena, (cap + 1) * sizeof(**ids));
	for (i = 0; i < cap; i++) {
		if (arr != NULL) {
			item = json_array_get(arr, i);
			if (json_is_integer(item))
				id = json_integer_value(item) > 0 ?
					     (int64_t)json_integer_value(item) :
					     0;
			else
				id = json_is_string(item) ?
					     parse_id(json_string_value(item)) :
					     0;
		} else if (!strcmp(r->form.v[i].name, "id")) {
			id = parse_id(r->form.v[i].value);
		} else {
			continue;
		}
		if (id == 0) {
			form_error(r, "id", "not an asset");
			return false;
		}
		if (got == MOVE_MAX) {
			form_error(r, "id",
				   "move at most 1000 assets at a time");
			return false;
		}
		(*ids)[got++] = id;
	}
	if (got == 0) {
		form_error(r, "id", "choose at least one asset to move");
		return false;
	}
	qsort(*ids, got, sizeof(**ids), cmp_id);
	for (i = 1, out = 1; i < got; i++)
		if ((*ids)[i] != (*ids)[out - 1])
			(*ids)[out++] = (*ids)[i];
	*n = out;
	return true;
}

/* "{1,2,3}": a bigint[] literal of numbers we formatted ourselves. */
static const char *id_array(struct req *r, const int64_t *ids, size_t n)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, r->arena, n * 8 + 2);
	sbuf_addch(&sb, '{');
	for (i = 0; i < n; i++)
		sbuf_addf(&sb, "%s%" PRId64, i ? "," : "", ids[i]);
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

/* A refused move: the API gets 422; a browser the assets page with why. */
static enum td_err reject_move(struct req *r, int64_t client_id)
{
	const char *key, *why = "the assets could not be moved";
	json_t *val;
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "assets/list", NULL);
	json_object_foreach(r->error_fields, key, val)
	{
		why = json_string_value(val);
		break;
	}
	err = list_page(r, client_id);
	return err != TD_OK ? err : page_error(r, 422, why);
}

/*
 * POST /assets/move — client_id, site_id ("" or absent: no site) and the
 * assets (form fields "id", or JSON "ids"). All or nothing: 404 if one of
 * the assets is not the client's (or the client is not the tenant's), 422
 * for a site of another client or no assets, 409 for a merged client.
 * 303 to the client's assets page; the API gets {client_id, site, moved}.
 */
enum td_err assets_move(struct req *r)
{
	int64_t client_id = parse_id(form_text(r, "client_id")), site_id = 0;
	const char *site_text = form_text(r, "site_id"), *params[3];
	const char *site_name = NULL;
	struct clientctx c;
	json_t *before, *after, *moved;
	PGresult *res;
	enum td_err err;
	int64_t *ids;
	size_t n = 0;
	int i, rows;

	if (client_id == 0)
		return req_fail(r, TD_EINPUT, "'client_id' is not a client");
	err = clientctx_load(r, client_id, "assets", &c);
	if (err != TD_OK)
		return err;
	if (c.merged) {
		if (r->want_json)
			return req_fail(r, TD_ECONFLICT,
					"%s was merged into another client",
					c.name);
		err = list_page(r, client_id);
		return err != TD_OK ?
			       err :
			       page_error(r, 409,
					  "the client was merged into another");
	}
	params[0] = req_id(r, client_id);
	if (*site_text != '\0') {
		site_id = parse_id(site_text);
		params[1] = req_id(r, site_id);
		err = site_id > 0 ? req_query(r, sql_site_of_client, 2, params,
					      &res) :
				    TD_OK;
		if (err != TD_OK)
			return err;
		if (site_id == 0 || PQntuples(res) != 1)
			form_error(r, "site_id",
				   "choose one of this client's sites");
		else
			site_name = arena_strdup(r->arena, db_text(res, 0, 0));
	}
	read_ids(r, &ids, &n);
	if (form_has_errors(r))
		return reject_move(r, client_id);
	params[1] = id_array(r, ids, n);
	params[2] = site_id > 0 ? req_id(r, site_id) : NULL;
	err = req_query(r, sql_move_lock, 2, params, &res);
	if (err != TD_OK)
		return err;
	rows = PQntuples(res);
	if ((size_t)rows != n)
		return req_fail(r, TD_ENOENT,
				"%zu of the chosen assets are not %s's",
				n - (size_t)rows, c.name);
	err = req_query(r, sql_move, 3, params, NULL);
	if (err != TD_OK)
		return err;
	moved = json_array();
	json_object_set_new(req_view(r), "moved", moved);
	for (i = 0; i < rows && err == TD_OK; i++) {
		json_array_append_new(
			moved, json_integer((json_int_t)db_int(res, i, 0)));
		if (db_int(res, i, 1) == site_id)
			continue;
		before = json_pack("{s:o}", "site_id", id_or_null(res, i, 1));
		req_own_json(r, before);
		after = json_pack("{s:o}", "site_id",
				  site_id > 0 ? json_integer(site_id) :
						json_null());
		req_own_json(r, after);
		err = audit_write(r, "asset.move", "asset", db_int(res, i, 0),
				  before, after);
	}
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "client_id", json_integer(client_id));
	json_object_set_new(req_view(r), "site",
			    site_id > 0 ? json_pack("{s:I, s:s}", "id",
						    (json_int_t)site_id, "name",
						    site_name) :
					  json_null());
	done(r,
	     arena_printf(r->arena, "Moved %zu asset%s to %s.", n,
			  n == 1 ? "" : "s", site_name ? site_name : "no site"),
	     arena_printf(r->arena, "/clients/%" PRId64 "/assets", client_id));
	return TD_OK;
}

/* --- counts ------------------------------------------------------------ */

/* "3 May 2024" for a day we parsed ourselves. */
static const char *day_label(struct req *r, const struct day_count *d,
			     bool year)
{
	if (year)
		return arena_printf(r->arena, "%d %s %04d", d->d,
				    month_abbr[d->m - 1], d->y);
	return arena_printf(r->arena, "%d %s", d->d, month_abbr[d->m - 1]);
}

/* The step of the y axis: 1, 2 or 5 times a power of ten, about 5 lines. */
static int64_t axis_step(int64_t max)
{
	int64_t step = 1;

	for (;;) {
		if (max <= step * 5)
			return step;
		if (max <= step * 10)
			return step * 2;
		if (max <= step * 25)
			return step * 5;
		step *= 10;
	}
}

/*
 * An inline SVG bar chart of the series. Only numbers and dates we
 * formatted ourselves go into it (no user text), so it is safe to emit
 * unescaped; CSS classes give it the theme's colours.
 */
static const char *chart_svg(struct req *r, const struct day_count *days,
			     size_t n)
{
	const double w = 720, h = 240, left = 44, right = 8, top = 12,
		     bottom = 30;
	const double pw = w - left - right, ph = h - top - bottom;
	double slot = pw / (double)n, bw, x, y, bh;
	int64_t max = 0, step, ymax, v, total = 0;
	const char *title;
	size_t i, every;
	struct sbuf sb;

	for (i = 0; i < n; i++) {
		if (days[i].count > max)
			max = days[i].count;
		total += days[i].count;
	}
	step = axis_step(max);
	ymax = (max + step - 1) / step * step;
	if (ymax < step)
		ymax = step;
	bw = slot * 0.7 < 1 ? 1 : slot * 0.7;
	every = (n + 7) / 8;
	sbuf_init(&sb, r->arena, 256 + n * 160);
	title = arena_printf(
		r->arena,
		"Billable assets per day, %s to %s: highest %" PRId64
		", %" PRId64 " asset-days in all",
		day_label(r, &days[0], true), day_label(r, &days[n - 1], true),
		max, total);
	sbuf_addf(&sb,
		  "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\""
		  " aria-label=\"%s\" preserveAspectRatio=\"xMidYMid meet\">"
		  "<title>%s</title>",
		  w, h, title, title);
	for (v = 0; v <= ymax; v += step) {
		y = top + ph - (double)v / (double)ymax * ph;
		sbuf_addf(&sb,
			  "<line class=\"chart-grid\" x1=\"%.1f\" y1=\"%.1f\""
			  " x2=\"%.1f\" y2=\"%.1f\"/>"
			  "<text class=\"chart-label\" x=\"%.1f\" y=\"%.1f\""
			  " text-anchor=\"end\">%" PRId64 "</text>",
			  left, y, w - right, y, left - 6, y + 4, v);
	}
	for (i = 0; i < n; i++) {
		x = left + (double)i * slot + (slot - bw) / 2;
		bh = (double)days[i].count / (double)ymax * ph;
		y = top + ph - bh;
		sbuf_addf(&sb,
			  "<rect class=\"chart-bar\" x=\"%.2f\" y=\"%.2f\""
			  " width=\"%.2f\" height=\"%.2f\"><title>%s: %" PRId64
			  "</title></rect>",
			  x, y, bw, bh, day_label(r, &days[i], true),
			  days[i].count);
		if (i % every == 0)
			sbuf_addf(
				&sb,
				"<text class=\"chart-label\" x=\"%.1f\""
				" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
				left + ((double)i + 0.5) * slot, h - 10,
				day_label(r, &days[i], false));
	}
	sbuf_addf(&sb,
		  "<line class=\"chart-axis\" x1=\"%.1f\" y1=\"%.1f\""
		  " x2=\"%.1f\" y2=\"%.1f\"/></svg>",
		  left, top + ph, w - right, top + ph);
	return sbuf_cstr(&sb);
}

/*
 * Today's active assets by kind and by category: how many count
 * (billable) and how many there are.
 */
static enum td_err today_json(struct req *r, const struct kinds *k,
			      int64_t client_id, json_t **out)
{
	const char *params[1] = { req_id(r, client_id) }, *cat;
	json_t *by_kind = json_array(), *by_cat = json_array();
	int64_t billable = 0, active = 0;
	PGresult *res;
	enum td_err err;
	int i, n;

	*out = json_pack("{s:o, s:o}", "by_kind", by_kind, "by_category",
			 by_cat);
	err = req_query(r, sql_today, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		switch (db_int(res, i, 2)) {
		case 1:
			json_array_append_new(
				by_kind,
				json_pack("{s:s, s:s, s:I, s:I}", "kind",
					  db_text(res, i, 0), "label",
					  kind_label(k, db_text(res, i, 0)),
					  "billable",
					  (json_int_t)db_int(res, i, 3),
					  "active",
					  (json_int_t)db_int(res, i, 4)));
			break;
		case 2:
			cat = db_text(res, i, 1);
			json_array_append_new(
				by_cat,
				json_pack(
					"{s:s, s:s, s:I, s:I}", "category", cat,
					"label", *cat ? cat : "No category",
					"billable",
					(json_int_t)db_int(res, i, 3), "active",
					(json_int_t)db_int(res, i, 4)));
			break;
		default:
			billable = db_int(res, i, 3);
			active = db_int(res, i, 4);
			break;
		}
	}
	json_object_set_new(*out, "billable", json_integer(billable));
	json_object_set_new(*out, "active", json_integer(active));
	return TD_OK;
}

/*
 * The values of a repeatable query parameter, checked, as a JSON array
 * (NULL param text when there are none).
 */
static json_t *query_list(struct req *r, const char *name, bool is_kind)
{
	json_t *list = json_array();
	const char *s;
	size_t i;

	req_own_json(r, list);
	for (i = 0; i < r->query_params.n; i++) {
		if (strcmp(r->query_params.v[i].name, name) != 0)
			continue;
		s = r->query_params.v[i].value;
		if (*s == '\0')
			continue;
		if (is_kind ? !kind_key_ok(s) : !len_between(s, 1, 100))
			form_error(r, name,
				   is_kind ? "not a kind of asset" :
					     "use at most 100 characters");
		else if (json_array_size(list) == FILTER_MAX)
			form_error(r, name, "choose at most 50");
		else
			json_array_append_new(list, json_string(s));
	}
	return list;
}

/* Checks ?from= and ?to= (defaults: this month so far); span in days. */
static enum td_err read_range(struct req *r, const char **from, const char **to,
			      int64_t *span)
{
	int fy, fm, fd, ty, tm, td;
	PGresult *res;
	enum td_err err;

	*from = query_param(r, "from");
	*to = query_param(r, "to");
	*span = 0;
	if (*from == NULL || *to == NULL) {
		err = req_query(r, sql_this_month, 0, NULL, &res);
		if (err != TD_OK)
			return err;
		if (*from == NULL)
			*from = arena_strdup(r->arena, db_text(res, 0, 0));
		if (*to == NULL)
			*to = arena_strdup(r->arena, db_text(res, 0, 1));
	}
	if (!date_parse(*from, &fy, &fm, &fd))
		form_error(r, "from", "use a date such as 2024-01-31");
	if (!date_parse(*to, &ty, &tm, &td))
		form_error(r, "to", "use a date such as 2024-01-31");
	if (form_has_errors(r))
		return TD_OK;
	*span = days_from_civil(ty, tm, td) - days_from_civil(fy, fm, fd) + 1;
	if (*span < 1)
		form_error(r, "to", "the end is before the start");
	else if (*span > SERIES_DAYS)
		form_error(r, "to", "show at most 400 days at a time");
	return TD_OK;
}

/* The series as CSV: day,count. */
static void counts_csv(struct req *r, int64_t client_id, const char *from,
		       const char *to, const struct day_count *days, size_t n)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, r->arena, 16 + n * 20);
	sbuf_adds(&sb, "day,count\r\n");
	for (i = 0; i < n; i++)
		sbuf_addf(&sb, "%04d-%02d-%02d,%" PRId64 "\r\n", days[i].y,
			  days[i].m, days[i].d, days[i].count);
	r->body_out = sbuf_cstr(&sb);
	r->body_out_len = sb.len;
	r->body_type = "text/csv; charset=utf-8";
	/* from and to passed date_parse: digits and '-' only. */
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena,
				"attachment; filename=\"asset-counts-%" PRId64
				"-%s-%s.csv\"",
				client_id, from, to));
}

/*
 * GET /clients/:id/asset-counts — today's counts by kind and category,
 * and billable assets per day from ?from= to ?to= (this month so far by
 * default; at most 400 days), optionally only of ?kind= and ?category=
 * (each repeatable). ?format=csv gives the series as CSV. 422 for bad
 * dates or filters; 404 for another tenant's client.
 */
enum td_err assets_counts(struct req *r)
{
	int64_t client_id = route_arg_int(&r->args, "id"), span, total = 0;
	const char *from, *to, *params[5];
	struct day_count *days;
	struct clientctx c;
	struct kinds k;
	json_t *v, *today, *series, *kinds_f, *cats_f, *cats;
	PGresult *res;
	enum td_err err;
	size_t i, n;

	err = clientctx_load(r, client_id, "assets", &c);
	if (err == TD_OK)
		err = load_kinds(r, &k);
	if (err == TD_OK)
		err = read_range(r, &from, &to, &span);
	if (err != TD_OK)
		return err;
	kinds_f = query_list(r, "kind", true);
	cats_f = query_list(r, "category", false);
	v = req_view(r);
	err = today_json(r, &k, client_id, &today);
	json_object_set_new(v, "today", today);
	if (err == TD_OK)
		err = categories_json(r, sql_history_categories, client_id,
				      cats_f, &cats);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "categories", cats);
	json_object_set_new(v, "kinds", kinds_json(&k, NULL, NULL));
	mark_selected(json_object_get(v, "kinds"), "key", kinds_f);
	json_object_set_new(v, "filter",
			    json_pack("{s:s, s:s, s:O, s:O}", "from", from,
				      "to", to, "kind", kinds_f, "category",
				      cats_f));
	json_object_set_new(v, "title",
			    json_string(arena_printf(
				    r->arena, "Asset counts · %s", c.name)));
	r->view_name = "assets/counts";
	if (form_has_errors(r)) {
		json_object_set_new(v, "series", json_array());
		return form_reject(r, "assets/counts", NULL);
	}
	params[0] = req_id(r, client_id);
	params[1] = from;
	params[2] = to;
	params[3] = json_array_size(kinds_f) ? req_json_text(r, kinds_f, NULL) :
					       NULL;
	params[4] =
		json_array_size(cats_f) ? req_json_text(r, cats_f, NULL) : NULL;
	err = req_query(r, sql_series, 5, params, &res);
	if (err != TD_OK)
		return err;
	n = (size_t)PQntuples(res);
	if (n == 0)
		return req_fail(r, TD_EDB, "no days from %s to %s", from, to);
	days = arena_alloc(r->arena, n * sizeof(*days));
	series = json_array();
	json_object_set_new(v, "series", series);
	for (i = 0; i < n; i++) {
		if (!date_parse(db_text(res, (int)i, 0), &days[i].y, &days[i].m,
				&days[i].d))
			return req_fail(r, TD_EDB, "bad day '%s'",
					db_text(res, (int)i, 0));
		days[i].count = db_int(res, (int)i, 1);
		total += days[i].count;
		json_array_append_new(
			series,
			json_pack("{s:s, s:s, s:I}", "day",
				  arena_printf(r->arena, "%04d-%02d-%02d",
					       days[i].y, days[i].m, days[i].d),
				  "label", day_label(r, &days[i], false),
				  "count", (json_int_t)days[i].count));
	}
	if (!strcmp(http_params_get(&r->query_params, "format") ?
			    http_params_get(&r->query_params, "format") :
			    "",
		    "csv")) {
		counts_csv(r, client_id, from, to, days, n);
		return TD_OK;
	}
	json_object_set_new(v, "totals",
			    json_pack("{s:I, s:I}", "days", (json_int_t)n,
				      "asset_days", (json_int_t)total));
	json_object_set_new(
		v, "csv_url",
		json_string(arena_printf(r->arena, "%s?%s%sformat=csv", r->path,
					 r->query, *r->query ? "&" : "")));
	/* Markup for the page only; chart_svg puts no user text in it. */
	if (!r->want_json)
		json_object_set_new(v, "chart_svg",
				    json_string(chart_svg(r, days, n)));
	return TD_OK;
}

/* --- kinds settings ---------------------------------------------------- */

/* The settings tabs the caller may see, and the page's title and view. */
static void settings_page(struct req *r)
{
	view_settings_page(r, "Asset kinds", "settings/asset_kinds",
			   "/settings/asset-kinds");
}

/* The kinds page: every kind with how many active assets have it. */
static enum td_err kinds_page(struct req *r)
{
	struct kinds k;
	json_t *v, *list, *item;
	PGresult *use;
	enum td_err err;
	size_t i;
	int j, n;

	err = load_kinds(r, &k);
	if (err == TD_OK)
		err = req_query(r, sql_kind_use, 0, NULL, &use);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	list = kinds_json(&k, NULL, NULL);
	n = PQntuples(use);
	json_array_foreach(list, i, item)
	{
		json_object_del(item, "selected");
		json_object_del(item, "chosen");
		json_object_set_new(item, "assets", json_integer(0));
		for (j = 0; j < n; j++)
			if (!strcmp(db_text(use, j, 0),
				    json_string_value(
					    json_object_get(item, "key"))))
				json_object_set_new(
					item, "assets",
					json_integer(db_int(use, j, 1)));
	}
	json_object_set_new(v, "kinds", list);
	json_object_set_new(v, "form", json_object());
	settings_page(r);
	return TD_OK;
}

/* GET /settings/asset-kinds (admins) */
enum td_err assets_kinds(struct req *r)
{
	return kinds_page(r);
}

/*
 * POST /settings/asset-kinds (admins) — key ^[a-z0-9_]{1,40}$, neither
 * built-in nor taken, and a name no other kind has. 201 (API) or 303 to
 * the page; 422 for bad fields.
 */
enum td_err assets_kind_add(struct req *r)
{
	static const char *const keep[] = { "key", "name", NULL };
	const char *key = form_text(r, "key"), *name = form_text(r, "name");
	const char *params[2], *other;
	struct kinds k;
	json_t *after;
	enum td_err err;
	size_t i;
	int j, n;

	err = load_kinds(r, &k);
	if (err != TD_OK)
		return err;
	if (!kind_key_ok(key))
		form_error(
			r, "key",
			"use 1 to 40 lowercase letters, digits or underscores");
	else if (kind_known(&k, key))
		form_error(r, "key", "there is a kind with this key already");
	if (!len_between(name, 1, 100)) {
		form_error(r, "name", "enter a name of at most 100 characters");
	} else {
		n = PQntuples(k.res);
		for (i = 0; i < NBUILTIN + (size_t)n; i++) {
			j = (int)(i - NBUILTIN);
			other = i < NBUILTIN ? builtin_kinds[i].label :
					       db_text(k.res, j, 1);
			if (!strcasecmp(other, name))
				form_error(
					r, "name",
					"there is a kind with this name already");
		}
	}
	if (form_has_errors(r)) {
		if (r->want_json)
			return form_reject(r, "settings/asset_kinds", keep);
		err = kinds_page(r);
		if (err != TD_OK)
			return err;
		return form_reject(r, "settings/asset_kinds", keep);
	}
	params[0] = key;
	params[1] = name;
	err = req_query(r, sql_kind_new, 2, params, NULL);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:s}", "key", key, "name", name);
	req_own_json(r, after);
	err = audit_write(r, "asset_kind.create", "asset_kind", 0, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "kind", after);
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Asset kind %s added.", name),
	     "/settings/asset-kinds");
	return TD_OK;
}
