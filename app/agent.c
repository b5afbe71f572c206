/* agent.c: enrollment tokens and the RMM-facing asset API */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "agent.h"
#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define BULK_MAX    20000
#define TOKEN_SHOWN 14 /* characters of a token kept to tell tokens apart */

static const char sql_tokens[] =
	"SELECT e.id, e.name, e.prefix,"
	" to_char(e.created_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" coalesce(to_char(e.last_used_at AT TIME ZONE t.time_zone,"
	" 'YYYY-MM-DD HH24:MI'), ''), e.revoked_at IS NOT NULL,"
	" coalesce(u.name, '')"
	" FROM enrollment_tokens e JOIN tenants t ON t.id = e.tenant_id"
	" LEFT JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.created_by"
	" WHERE e.tenant_id = app_tenant() AND e.client_id = $1"
	" ORDER BY e.revoked_at IS NOT NULL, e.created_at DESC, e.id DESC";
static const char sql_token_new[] =
	"INSERT INTO enrollment_tokens (tenant_id, client_id, name, prefix,"
	" token_hash, created_by) VALUES (app_tenant(), $1, $2, $3, $4, $5)"
	" RETURNING id";
static const char sql_token_revoke[] =
	"UPDATE enrollment_tokens SET revoked_at = now()"
	" WHERE tenant_id = app_tenant() AND client_id = $1 AND id = $2"
	" AND revoked_at IS NULL RETURNING name, prefix";
static const char sql_token_get[] =
	"SELECT name FROM enrollment_tokens WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND id = $2";
static const char sql_kinds[] =
	"SELECT key FROM asset_kinds WHERE tenant_id = app_tenant()";
/* One statement for every new site name of a call (case-insensitive). */
static const char sql_sites_add[] =
	"INSERT INTO sites (tenant_id, client_id, name)"
	" SELECT DISTINCT ON (lower(s)) app_tenant(), $1::bigint, s"
	" FROM jsonb_array_elements_text($2::jsonb) AS s ORDER BY lower(s), s"
	" ON CONFLICT (tenant_id, client_id, lower(name)) DO NOTHING"
	" RETURNING id";
/*
 * The upsert of $2, a JSON array of checked assets, for client $1, in one
 * statement whatever the count. A member left out keeps the asset's value
 * (or takes the default on create); "site" is a name, "" for none. m is
 * the new state of each asset, `same` when nothing would change. Only new
 * and changed assets go to the INSERT, and unchanged ones last seen over
 * an hour ago (last_seen_at is kept to the hour): a sync of unchanged
 * assets writes nothing, and an existing asset only spends an id of the
 * identity sequence (ON CONFLICT draws one per row) when it is written.
 * The arbiter index, not a join the planner might misjudge on a table
 * that grew since it was analysed, finds each existing row.
 */
#define SQL_UPSERT                                                               \
	"WITH x AS (SELECT x.*, s.id AS sid"                                     \
	" FROM jsonb_to_recordset($2::jsonb) AS x(external_id text, name text,"  \
	" kind text, category text, serial text, os text, notes text,"           \
	" billable boolean, site text)"                                          \
	" LEFT JOIN sites s ON s.tenant_id = app_tenant()"                       \
	" AND s.client_id = $1::bigint AND lower(s.name) = lower(x.site)),"      \
	" m AS (SELECT x.external_id, a.id, x.name,"                             \
	" coalesce(x.kind, a.kind, 'other') AS kind,"                            \
	" coalesce(x.category, a.category, '') AS category,"                     \
	" coalesce(x.serial, a.serial, '') AS serial,"                           \
	" coalesce(x.os, a.os, '') AS os,"                                       \
	" coalesce(x.notes, a.notes, '') AS notes,"                              \
	" coalesce(x.billable, a.billable, true) AS billable,"                   \
	" CASE WHEN x.site IS NULL THEN a.site_id ELSE x.sid END AS site_id,"    \
	" a.last_seen_at, a.id IS NOT NULL AND a.archived_at IS NULL"            \
	" AND (a.name, a.kind, a.category, a.serial, a.os, a.notes,"             \
	" a.billable, a.site_id) IS NOT DISTINCT FROM (x.name,"                  \
	" coalesce(x.kind, a.kind), coalesce(x.category, a.category),"           \
	" coalesce(x.serial, a.serial), coalesce(x.os, a.os),"                   \
	" coalesce(x.notes, a.notes), coalesce(x.billable, a.billable),"         \
	" CASE WHEN x.site IS NULL THEN a.site_id ELSE x.sid END) AS same"       \
	" FROM x LEFT JOIN assets a ON a.tenant_id = app_tenant()"               \
	" AND a.client_id = $1::bigint AND a.external_id = x.external_id),"      \
	" i AS (INSERT INTO assets AS a (tenant_id, client_id, external_id,"     \
	" name, kind, category, serial, os, notes, billable, site_id,"           \
	" last_seen_at) SELECT app_tenant(), $1::bigint, external_id, name,"     \
	" kind, category, serial, os, notes, billable, site_id, now() FROM m"    \
	" WHERE NOT m.same OR m.last_seen_at IS NULL"                            \
	" OR m.last_seen_at < now() - interval '1 hour'"                         \
	" ON CONFLICT (tenant_id, client_id, external_id)"                       \
	" WHERE external_id IS NOT NULL DO UPDATE SET name = EXCLUDED.name,"     \
	" kind = EXCLUDED.kind, category = EXCLUDED.category,"                   \
	" serial = EXCLUDED.serial, os = EXCLUDED.os, notes = EXCLUDED.notes,"   \
	" billable = EXCLUDED.billable, site_id = EXCLUDED.site_id,"             \
	" archived_at = NULL, last_seen_at = now(),"                             \
	" updated_at = CASE WHEN a.archived_at IS NULL AND (a.name, a.kind,"     \
	" a.category, a.serial, a.os, a.notes, a.billable, a.site_id)"           \
	" IS NOT DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind,"                   \
	" EXCLUDED.category, EXCLUDED.serial, EXCLUDED.os, EXCLUDED.notes,"      \
	" EXCLUDED.billable, EXCLUDED.site_id) THEN a.updated_at ELSE now() END" \
	" RETURNING a.id, a.external_id, a.xmax = 0 AS inserted)"
static const char sql_put[] = SQL_UPSERT
	" SELECT coalesce(i.id, m.id), m.name, m.kind, m.category, m.billable,"
	" coalesce(i.inserted, false), m.same, i.id IS NULL AND m.id IS NULL"
	" FROM m LEFT JOIN i ON i.external_id = m.external_id";
/*
 * $3: also archive the client's agent assets the call did not name. The
 * counts add up to the assets sent: an asset another call created a
 * moment before counts as updated.
 */
static const char sql_bulk[] = SQL_UPSERT
	", ar AS (UPDATE assets a SET archived_at = now(), updated_at = now()"
	" WHERE $3::boolean AND a.tenant_id = app_tenant()"
	" AND a.client_id = $1::bigint AND a.external_id IS NOT NULL"
	" AND a.archived_at IS NULL"
	" AND a.external_id NOT IN (SELECT x.external_id FROM x)"
	" RETURNING 1),"
	" c AS (SELECT (SELECT count(*) FROM i WHERE inserted) AS created,"
	" (SELECT count(*) FROM m WHERE same) AS unchanged,"
	" (SELECT count(*) FROM m) AS total)"
	" SELECT created, total - created - unchanged, unchanged,"
	" (SELECT count(*) FROM ar) FROM c";
static const char sql_archive[] =
	"UPDATE assets SET archived_at = now(), updated_at = now()"
	" WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND external_id = $2 AND archived_at IS NULL"
	" RETURNING id, name, kind, category, billable, true";
static const char sql_asset_get[] =
	"SELECT id, name, kind, category, billable, archived_at IS NOT NULL"
	" FROM assets WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND external_id = $2";

static const char *const builtin_kinds[] = {
	"workstation", "server", "network", "m365_user", "domain", "other",
};

/* The kinds an asset may have: the built-in ones and the tenant's. */
struct kinds {
	const PGresult *res;
	int n;
};

/* Checking one asset of a call; errors are noted as fields. */
struct check {
	struct req *r;
	long index; /* assets[index] in a bulk call; -1 for a PUT */
	const struct kinds *kinds;
	bool bad;
};

static void note(struct check *c, const char *field, const char *message)
{
	c->bad = true;
	if (c->index < 0)
		form_error(c->r, field, message);
	else
		form_error(c->r,
			   arena_printf(c->r->arena, "assets[%ld]%s%s",
					c->index, *field ? "." : "", field),
			   message);
}

/* s without leading and trailing white space (s itself if none). */
static const char *trim(struct req *r, const char *s)
{
	const char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	if (e == s || !isspace((unsigned char)e[-1]))
		return s;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return arena_strndup(r->arena, s, (size_t)(e - s));
}

/*
 * A string member, trimmed: *out NULL when it is left out, "" when it is
 * null. False (noted) for another type, a NUL or over max characters.
 */
static bool member_text(struct check *c, json_t *obj, const char *key,
			size_t max, const char **out)
{
	json_t *j = json_object_get(obj, key);
	const char *s;

	*out = NULL;
	if (j == NULL)
		return true;
	if (json_is_null(j)) {
		*out = "";
		return true;
	}
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

static bool kind_known(const struct kinds *k, const char *kind)
{
	size_t i;
	int j;

	for (i = 0; i < sizeof(builtin_kinds) / sizeof(builtin_kinds[0]); i++)
		if (!strcmp(kind, builtin_kinds[i]))
			return true;
	for (j = 0; j < k->n; j++)
		if (!strcmp(kind, db_text(k->res, j, 0)))
			return true;
	return false;
}

static const char *kind_choices(struct req *r, const struct kinds *k)
{
	struct sbuf sb;
	size_t i;
	int j;

	sbuf_init(&sb, r->arena, 128);
	sbuf_adds(&sb, "use one of ");
	for (i = 0; i < sizeof(builtin_kinds) / sizeof(builtin_kinds[0]); i++)
		sbuf_addf(&sb, "%s%s", i ? ", " : "", builtin_kinds[i]);
	for (j = 0; j < k->n; j++)
		sbuf_addf(&sb, ", %s", db_text(k->res, j, 0));
	return sbuf_cstr(&sb);
}

static enum td_err load_kinds(struct req *r, struct kinds *k)
{
	PGresult *res;
	enum td_err err = req_query(r, sql_kinds, 0, NULL, &res);

	if (err != TD_OK)
		return err;
	k->res = res;
	k->n = PQntuples(res);
	return TD_OK;
}

static void set_text(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

/*
 * One asset as sent, checked: the members the upsert takes (external_id
 * from the body, or ext for a PUT), or NULL with the problems noted.
 */
static json_t *check_asset(struct check *c, json_t *in, const char *ext)
{
	const char *name, *kind, *category, *serial, *os, *notes, *site;
	json_t *out, *billable;
	char *lower;
	size_t i;

	c->bad = false;
	if (!json_is_object(in)) {
		note(c, "", "must be an object");
		return NULL;
	}
	if (ext == NULL) {
		member_text(c, in, "external_id", 200, &ext);
		if (!c->bad && (ext == NULL || *ext == '\0'))
			note(c, "external_id",
			     "give the RMM's id for the asset (1 to 200 characters)");
	}
	if (member_text(c, in, "name", 200, &name) &&
	    (name == NULL || *name == '\0'))
		note(c, "name", "enter a name (1 to 200 characters)");
	if (member_text(c, in, "kind", 40, &kind) && kind != NULL) {
		if (json_is_null(json_object_get(in, "kind"))) {
			kind = NULL; /* keep the kind (other on create) */
		} else {
			lower = arena_strdup(c->r->arena, kind);
			for (i = 0; lower[i] != '\0'; i++)
				lower[i] =
					(char)tolower((unsigned char)lower[i]);
			kind = lower;
			if (!kind_known(c->kinds, kind))
				note(c, "kind", kind_choices(c->r, c->kinds));
		}
	}
	member_text(c, in, "category", 100, &category);
	member_text(c, in, "serial", 200, &serial);
	member_text(c, in, "os", 200, &os);
	member_text(c, in, "notes", 10000, &notes);
	member_text(c, in, "site", 200, &site);
	billable = json_object_get(in, "billable");
	if (billable != NULL && !json_is_boolean(billable) &&
	    !json_is_null(billable))
		note(c, "billable", "must be true or false");
	if (c->bad)
		return NULL;
	out = json_object();
	set_text(out, "external_id", ext);
	set_text(out, "name", name);
	set_text(out, "kind", kind);
	set_text(out, "category", category);
	set_text(out, "serial", serial);
	set_text(out, "os", os);
	set_text(out, "notes", notes);
	set_text(out, "site", site);
	if (json_is_boolean(billable))
		json_object_set_new(out, "billable",
				    json_boolean(json_is_true(billable)));
	return out;
}

/* The agent's own client; every other caller is refused. */
static enum td_err need_agent(struct req *r)
{
	if (r->auth.kind != AUTH_AGENT || r->auth.client_id <= 0)
		return req_fail(
			r, TD_EFORBID,
			"only an enrollment token may call the agent API");
	if (!json_is_object(r->json_body) && r->method != HTTP_DELETE)
		return req_fail(
			r, TD_EINPUT,
			"send a JSON object with Content-Type: application/json");
	return TD_OK;
}

/*
 * The external id from the path, checked. The route calls it ":external":
 * the router takes parameters named "*_id" for integers, and an RMM's ids
 * are any text.
 */
static enum td_err path_external_id(struct req *r, const char **ext)
{
	*ext = route_arg_str(&r->args, "external");
	if (*ext == NULL || **ext == '\0' || http_utf8_len(*ext) > 200)
		return req_fail(r, TD_EINPUT,
				"the external id must be 1 to 200 characters");
	return TD_OK;
}

/* Creates the sites named in items that the client does not have yet. */
static enum td_err add_sites(struct req *r, json_t *items, int *created)
{
	json_t *names = json_array(), *item;
	const char *site, *params[2], *text;
	PGresult *res;
	enum td_err err;
	size_t i;

	req_own_json(r, names);
	*created = 0;
	json_array_foreach(items, i, item)
	{
		site = json_string_value(json_object_get(item, "site"));
		if (site != NULL && *site != '\0')
			json_array_append_new(names, json_string(site));
	}
	if (json_array_size(names) == 0)
		return TD_OK;
	text = req_json_text(r, names, NULL);
	if (text == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise site names");
	params[0] = req_id(r, r->auth.client_id);
	params[1] = text;
	err = req_query(r, sql_sites_add, 2, params, &res);
	if (err != TD_OK)
		return err;
	*created = PQntuples(res);
	return TD_OK;
}

static json_t *asset_json(const PGresult *res, const char *ext)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:b}", "id",
			 (json_int_t)db_int(res, 0, 0), "external_id", ext,
			 "name", db_text(res, 0, 1), "kind", db_text(res, 0, 2),
			 "category", db_text(res, 0, 3), "billable",
			 db_bool(res, 0, 4), "archived", db_bool(res, 0, 5));
}

/*
 * PUT /api/v1/agent/assets/:external_id — creates (201) or updates (200)
 * the asset of the token's client with that RMM id, and revives it if it
 * was archived. Members left out keep their values. 422 with the fields
 * that are wrong; 409 if a concurrent call created it first.
 */
enum td_err agent_asset_put(struct req *r)
{
	struct check c = { r, -1, NULL, false };
	const char *ext, *params[2], *text;
	struct kinds kinds;
	json_t *item, *items, *after;
	PGresult *res;
	enum td_err err;
	int sites;
	bool created;

	err = need_agent(r);
	if (err == TD_OK)
		err = path_external_id(r, &ext);
	if (err == TD_OK)
		err = load_kinds(r, &kinds);
	if (err != TD_OK)
		return err;
	c.kinds = &kinds;
	item = check_asset(&c, r->json_body, ext);
	if (item == NULL)
		return form_reject(r, NULL, NULL);
	items = json_pack("[o]", item);
	req_own_json(r, items);
	err = add_sites(r, items, &sites);
	if (err != TD_OK)
		return err;
	text = req_json_text(r, items, NULL);
	if (text == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the asset");
	params[0] = req_id(r, r->auth.client_id);
	params[1] = text;
	err = req_query(r, sql_put, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 || db_bool(res, 0, 7))
		return req_fail(
			r, TD_ECONFLICT,
			"asset '%s' was created by another call at the same time: send it again",
			ext);
	created = db_bool(res, 0, 5);
	json_object_set_new(
		req_view(r), "asset",
		json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:b}", "id",
			  (json_int_t)db_int(res, 0, 0), "external_id", ext,
			  "name", db_text(res, 0, 1), "kind",
			  db_text(res, 0, 2), "category", db_text(res, 0, 3),
			  "billable", db_bool(res, 0, 4), "archived", false));
	r->status = created ? 201 : 200;
	if (!created && db_bool(res, 0, 6))
		return TD_OK;
	after = json_deep_copy(item);
	req_own_json(r, after);
	json_object_set_new(after, "created", json_boolean(created));
	if (sites > 0)
		json_object_set_new(after, "site_created", json_true());
	return audit_write(r, "asset.agent_upsert", "asset", db_int(res, 0, 0),
			   NULL, after);
}

/*
 * DELETE /api/v1/agent/assets/:external_id — archives the asset (its
 * history keeps what was billed); 404 if the client has no such asset.
 * Archiving an archived asset changes nothing.
 */
enum td_err agent_asset_delete(struct req *r)
{
	const char *ext, *params[2];
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = need_agent(r);
	if (err == TD_OK)
		err = path_external_id(r, &ext);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, r->auth.client_id);
	params[1] = ext;
	err = req_query(r, sql_archive, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0) {
		err = req_query(r, sql_asset_get, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			return req_fail(r, TD_ENOENT, "no asset '%s'", ext);
		json_object_set_new(req_view(r), "asset", asset_json(res, ext));
		return TD_OK;
	}
	json_object_set_new(req_view(r), "asset", asset_json(res, ext));
	after = json_pack("{s:s, s:b}", "external_id", ext, "archived", true);
	req_own_json(r, after);
	return audit_write(r, "asset.agent_archive", "asset", db_int(res, 0, 0),
			   NULL, after);
}

static int by_external_id(const void *pa, const void *pb)
{
	json_t *const *a = pa, *const *b = pb;
	int c = strcmp(json_string_value(json_object_get(*a, "external_id")),
		       json_string_value(json_object_get(*b, "external_id")));

	if (c != 0)
		return c;
	/* Equal ids stay in the order they were sent: the later is noted. */
	return json_integer_value(json_object_get(*a, "i")) <
			       json_integer_value(json_object_get(*b, "i")) ?
		       -1 :
		       1;
}

/* Notes every external id that appears twice; true if there was one. */
static bool note_duplicates(struct req *r, json_t *items)
{
	size_t n = json_array_size(items), i;
	json_t **v = arena_alloc_raw(r->arena, (n + 1) * sizeof(*v));
	bool dup = false;

	for (i = 0; i < n; i++) {
		v[i] = json_array_get(items, i);
		json_object_set_new(v[i], "i", json_integer((json_int_t)i));
	}
	qsort(v, n, sizeof(*v), by_external_id);
	for (i = 1; i < n; i++) {
		if (strcmp(json_string_value(
				   json_object_get(v[i - 1], "external_id")),
			   json_string_value(
				   json_object_get(v[i], "external_id"))) != 0)
			continue;
		dup = true;
		form_error(
			r,
			arena_printf(
				r->arena,
				"assets[%" JSON_INTEGER_FORMAT "].external_id",
				json_integer_value(json_object_get(v[i], "i"))),
			arena_printf(
				r->arena,
				"appears twice: also assets[%" JSON_INTEGER_FORMAT
				"]",
				json_integer_value(
					json_object_get(v[i - 1], "i"))));
	}
	for (i = 0; i < n; i++)
		json_object_del(v[i], "i");
	return dup;
}

/*
 * POST /api/v1/agent/assets — {assets: [...], archive_missing?} upserts
 * up to BULK_MAX assets in two statements; with archive_missing the
 * client's other agent-made assets are archived (a full sync). Every
 * asset is checked first: 422 with fields such as "assets[12].kind" and
 * nothing written. Answers {created, updated, unchanged, archived}; one
 * audit row per call that changed anything.
 */
enum td_err agent_assets_bulk(struct req *r)
{
	struct check c = { r, 0, NULL, false };
	json_t *list, *items, *item, *archive, *after;
	const char *params[3], *text;
	struct kinds kinds;
	PGresult *res;
	enum td_err err;
	json_int_t created, updated, unchanged, archived;
	size_t i, n;
	int sites;

	err = need_agent(r);
	if (err == TD_OK)
		err = load_kinds(r, &kinds);
	if (err != TD_OK)
		return err;
	c.kinds = &kinds;
	list = json_object_get(r->json_body, "assets");
	archive = json_object_get(r->json_body, "archive_missing");
	n = json_array_size(list);
	if (!json_is_array(list))
		form_error(r, "assets", "send the assets as an array");
	else if (n > BULK_MAX)
		form_error(r, "assets",
			   arena_printf(r->arena,
					"send at most %d assets in one call",
					BULK_MAX));
	if (archive != NULL && !json_is_boolean(archive) &&
	    !json_is_null(archive))
		form_error(r, "archive_missing", "must be true or false");
	if (form_has_errors(r))
		return form_reject(r, NULL, NULL);
	items = json_array();
	req_own_json(r, items);
	for (i = 0; i < n; i++) {
		c.index = (long)i;
		item = check_asset(&c, json_array_get(list, i), NULL);
		if (item != NULL)
			json_array_append_new(items, item);
	}
	if (form_has_errors(r) || note_duplicates(r, items))
		return form_reject(r, NULL, NULL);
	err = add_sites(r, items, &sites);
	if (err != TD_OK)
		return err;
	text = req_json_text(r, items, NULL);
	if (text == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the assets");
	params[0] = req_id(r, r->auth.client_id);
	params[1] = text;
	params[2] = json_is_true(archive) ? "true" : "false";
	err = req_query(r, sql_bulk, 3, params, &res);
	if (err != TD_OK)
		return err;
	created = db_int(res, 0, 0);
	updated = db_int(res, 0, 1);
	unchanged = db_int(res, 0, 2);
	archived = db_int(res, 0, 3);
	after = json_pack("{s:I, s:I, s:I, s:I}", "created", created, "updated",
			  updated, "unchanged", unchanged, "archived",
			  archived);
	req_own_json(r, after);
	json_object_update(req_view(r), after);
	if (created + updated + archived == 0 && sites == 0)
		return TD_OK;
	json_object_set_new(after, "sites_created", json_integer(sites));
	json_object_set_new(after, "archive_missing",
			    json_boolean(json_is_true(archive)));
	return audit_write(r, "asset.agent_bulk", "client", r->auth.client_id,
			   NULL, after);
}

/* The tokens page of a loaded client: the list, and how to call the API. */
static enum td_err tokens_view(struct req *r, const struct clientctx *c)
{
	const char *params[1] = { req_id(r, c->id) };
	json_t *v = req_view(r), *list;
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_tokens, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	n = PQntuples(res);
	/* created_by null, not "": mustache takes "" as true. */
	for (i = 0; i < n; i++)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s, s:s, s:b, s:o}", "id",
				  (json_int_t)db_int(res, i, 0), "name",
				  db_text(res, i, 1), "prefix",
				  db_text(res, i, 2), "created",
				  db_text(res, i, 3), "last_used",
				  db_text(res, i, 4), "revoked",
				  db_bool(res, i, 5), "created_by",
				  *db_text(res, i, 6) ?
					  json_string(db_text(res, i, 6)) :
					  json_null()));
	json_object_set_new(v, "tokens", list);
	json_object_set_new(
		v, "api",
		json_pack("{s:s, s:s, s:s}", "put_url",
			  arena_printf(r->arena,
				       "%s/api/v1/agent/assets/{external_id}",
				       r->ctx->conf->base_url),
			  "base_url", r->ctx->conf->base_url, "bulk_url",
			  arena_printf(r->arena, "%s/api/v1/agent/assets",
				       r->ctx->conf->base_url)));
	json_object_set_new(v, "title",
			    json_string(arena_printf(
				    r->arena, "RMM agents · %s", c->name)));
	json_object_set_new(v, "can_add",
			    json_boolean(!c->archived && !c->merged));
	r->view_name = "agent/tokens";
	return TD_OK;
}

/* GET /clients/:id/tokens — 404 if no such client. */
enum td_err agent_tokens(struct req *r)
{
	struct clientctx c;
	enum td_err err;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), "assets", &c);
	if (err != TD_OK)
		return err;
	return tokens_view(r, &c);
}

/*
 * POST /clients/:id/tokens — 404 if no such client; 409 if it is
 * archived or merged; 422 for a bad name. 201 with the token, shown this
 * once (the API gets {token: {id, name, key}}).
 */
enum td_err agent_token_create(struct req *r)
{
	static const char *const keep[] = { "name", NULL };
	const char *name = form_text(r, "name"), *params[5], *key;
	char token[AUTH_TOKEN_LEN + 1];
	struct clientctx c;
	json_t *after, *v;
	PGresult *res;
	enum td_err err;
	size_t len;
	int64_t id;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), "assets", &c);
	if (err != TD_OK)
		return err;
	if (c.archived || c.merged) {
		if (r->want_json)
			return req_fail(
				r, TD_ECONFLICT,
				"client %s is archived: restore it first",
				c.name);
		err = tokens_view(r, &c);
		if (err != TD_OK)
			return err;
		r->error_detail = "the client is archived";
		json_object_set_new(
			req_view(r), "error",
			json_string(
				"This client is archived. Restore it before adding an agent."));
		r->status = 409;
		return TD_OK;
	}
	len = http_utf8_len(name);
	if (len < 1 || len > 100) {
		form_error(r, "name", "enter a name of at most 100 characters");
		if (!r->want_json) {
			err = tokens_view(r, &c);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "agent/tokens", keep);
	}
	if (!auth_new_token(token))
		return req_fail(r, TD_ESYS, "cannot make a token");
	/* auth.c hashes everything after "Bearer ": hash all of the key. */
	key = arena_printf(r->arena, "tde_%" PRId64 "_%s", r->auth.tenant_id,
			   token);
	params[0] = req_id(r, c.id);
	params[1] = name;
	params[2] = arena_strndup(r->arena, key, TOKEN_SHOWN);
	params[3] = auth_token_hash(r, key);
	params[4] =
		r->auth.kind == AUTH_USER ? req_id(r, r->auth.user_id) : NULL;
	err = req_query(r, sql_token_new, 5, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	/* Never the key itself. */
	after = json_pack("{s:I, s:s, s:s}", "client_id", (json_int_t)c.id,
			  "name", name, "prefix", params[2]);
	req_own_json(r, after);
	err = audit_write(r, "enrollment_token.create", "enrollment_token", id,
			  NULL, after);
	if (err != TD_OK)
		return err;
	r->status = 201;
	if (r->want_json) {
		json_object_set_new(req_view(r), "token",
				    json_pack("{s:I, s:s, s:s}", "id",
					      (json_int_t)id, "name", name,
					      "key", key));
		return TD_OK;
	}
	/* A page, not a redirect: the key must not travel in a cookie or URL.
	 */
	err = tokens_view(r, &c);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "new_token",
			    json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
				      "name", name, "key", key));
	json_object_set_new(
		v, "flash",
		json_pack(
			"[{s:s, s:s}]", "kind", "ok", "text",
			"Agent added. Copy its token now: it is not shown again."));
	return TD_OK;
}

/*
 * POST /clients/:id/tokens/:token_id/revoke — 404 if the client has no
 * such token; revoking a revoked token changes nothing.
 */
enum td_err agent_token_revoke(struct req *r)
{
	int64_t token_id = route_arg_int(&r->args, "token_id");
	const char *params[2], *back;
	struct clientctx c;
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), NULL, &c);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, c.id);
	params[1] = req_id(r, token_id);
	back = arena_printf(r->arena, "/clients/%" PRId64 "/tokens", c.id);
	err = req_query(r, sql_token_revoke, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0) {
		err = req_query(r, sql_token_get, 2, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			return req_fail(r, TD_ENOENT, "no agent token %" PRId64,
					token_id);
		json_object_set_new(
			req_view(r), "token",
			json_pack("{s:I, s:s, s:b}", "id", (json_int_t)token_id,
				  "name", db_text(res, 0, 0), "revoked", true));
		if (!r->want_json) {
			form_flash(r, "info",
				   "That agent's token was revoked already.");
			r->redirect = back;
		}
		return TD_OK;
	}
	before = json_pack("{s:s, s:s, s:b}", "name", db_text(res, 0, 0),
			   "prefix", db_text(res, 0, 1), "revoked", false);
	req_own_json(r, before);
	after = json_pack("{s:b}", "revoked", true);
	req_own_json(r, after);
	err = audit_write(r, "enrollment_token.revoke", "enrollment_token",
			  token_id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "token",
			    json_pack("{s:I, s:s, s:b}", "id",
				      (json_int_t)token_id, "name",
				      db_text(res, 0, 0), "revoked", true));
	if (!r->want_json) {
		form_flash(
			r, "ok",
			arena_printf(
				r->arena,
				"Agent %s's token is revoked: it can no longer send assets.",
				db_text(res, 0, 0)));
		r->redirect = back;
	}
	return TD_OK;
}
