/* sites.c: named places a client's assets are grouped by */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "clientctx.h"
#include "db.h"
#include "form.h"
#include "req.h"
#include "sites.h"
#include "banned.h"

static const char sql_sites[] =
	"SELECT s.id, s.client_id, s.name, s.address,"
	" count(a.id) FILTER (WHERE a.archived_at IS NULL), count(a.id)"
	" FROM sites s LEFT JOIN assets a ON a.tenant_id = s.tenant_id"
	" AND a.site_id = s.id"
	" WHERE s.tenant_id = app_tenant() AND s.client_id = $1"
	" GROUP BY s.tenant_id, s.id ORDER BY lower(s.name), s.id";
static const char sql_no_site[] =
	"SELECT count(*) FROM assets WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND site_id IS NULL AND archived_at IS NULL";
/*
 * FOR UPDATE conflicts with the key-share lock an asset's foreign key
 * takes, so no asset can join the site between counting and deleting.
 */
static const char sql_site_lock[] =
	"SELECT id, client_id, name, address FROM sites"
	" WHERE tenant_id = app_tenant() AND id = $1 FOR UPDATE";
static const char sql_site_active_assets[] =
	"SELECT count(*) FROM assets WHERE tenant_id = app_tenant()"
	" AND site_id = $1 AND archived_at IS NULL";
static const char sql_name_taken[] =
	"SELECT 1 FROM sites WHERE tenant_id = app_tenant() AND client_id = $1"
	" AND lower(name) = lower($2) AND id IS DISTINCT FROM $3::bigint";
static const char sql_site_new[] =
	"INSERT INTO sites (tenant_id, client_id, name, address)"
	" VALUES (app_tenant(), $1, $2, $3) RETURNING id";
static const char sql_site_update[] =
	"UPDATE sites SET name = $2, address = $3"
	" WHERE tenant_id = app_tenant() AND id = $1";
/* Archived assets of the site keep no site (the foreign key clears it). */
static const char sql_site_delete[] =
	"DELETE FROM sites WHERE tenant_id = app_tenant() AND id = $1";

#define ADDRESS_MAX 1000

static const char *const site_fields[] = { "name", "address", NULL };

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

static const char *sites_url(struct req *r, int64_t client_id)
{
	return arena_printf(r->arena, "/clients/%" PRId64 "/sites", client_id);
}

static json_t *site_json(const PGresult *res, int i)
{
	return json_pack("{s:I, s:I, s:s, s:s}", "id",
			 (json_int_t)db_int(res, i, 0), "client_id",
			 (json_int_t)db_int(res, i, 1), "name",
			 db_text(res, i, 2), "address", db_text(res, i, 3));
}

/* Why a client's sites cannot change, or NULL if they can. */
static const char *read_only_why(struct req *r, const struct clientctx *c)
{
	if (c->merged)
		return arena_printf(
			r->arena,
			"%s was merged into another client: change the sites there",
			c->name);
	if (c->archived)
		return arena_printf(
			r->arena,
			"%s is archived: restore the client before changing its sites",
			c->name);
	return NULL;
}

/*
 * The sites page of a client. A rename that was refused (failed_id > 0)
 * shows what was typed and its messages on that site's row.
 */
static enum td_err list_page(struct req *r, int64_t client_id,
			     int64_t failed_id)
{
	const char *params[1] = { req_id(r, client_id) };
	struct clientctx c;
	json_t *v, *list, *site;
	PGresult *res, *nosite;
	enum td_err err;
	int i, n;

	err = clientctx_load(r, client_id, "sites", &c);
	if (err == TD_OK)
		err = req_query(r, sql_sites, 1, params, &res);
	if (err == TD_OK)
		err = req_query(r, sql_no_site, 1, params, &nosite);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		site = site_json(res, i);
		json_object_set_new(site, "active_assets",
				    json_integer(db_int(res, i, 4)));
		json_object_set_new(site, "all_assets",
				    json_integer(db_int(res, i, 5)));
		json_object_set_new(
			site, "assets_url",
			json_string(arena_printf(
				r->arena,
				"/clients/%" PRId64 "/assets?site_id=%" PRId64,
				client_id, db_int(res, i, 0))));
		if (db_int(res, i, 0) == failed_id) {
			json_object_set_new(site, "edit",
					    json_pack("{s:s, s:s}", "name",
						      form_text(r, "name"),
						      "address",
						      form_text(r, "address")));
			json_object_set(site, "edit_errors", r->error_fields);
		}
		json_array_append_new(list, site);
	}
	json_object_set_new(v, "sites", list);
	json_object_set_new(v, "no_site_assets",
			    json_integer(db_int(nosite, 0, 0)));
	json_object_set_new(v, "read_only",
			    json_boolean(read_only_why(r, &c) != NULL));
	json_object_set_new(v, "action", json_string(sites_url(r, c.id)));
	json_object_set_new(v, "form", json_object());
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "Sites · %s", c.name)));
	r->view_name = "sites/list";
	return TD_OK;
}

/* GET /clients/:id/sites — 404 for another tenant's client. */
enum td_err sites_list(struct req *r)
{
	return list_page(r, route_arg_int(&r->args, "id"), 0);
}

/*
 * A form with errors: the API gets 422; a browser gets the sites page
 * again, the add form (failed_id 0) or the site's row refilled.
 */
static enum td_err reject(struct req *r, int64_t client_id, int64_t failed_id)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "sites/list", site_fields);
	err = list_page(r, client_id, failed_id);
	if (err != TD_OK)
		return err;
	if (failed_id > 0) {
		r->status = 422;
		return TD_OK;
	}
	return form_reject(r, "sites/list", site_fields);
}

/* A write the state forbids: 409, on the sites page with the reason. */
static enum td_err refuse(struct req *r, int64_t client_id, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = list_page(r, client_id, 0);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = 409;
	return TD_OK;
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/* Checks name and address; self is the site being renamed (0: a new one). */
static enum td_err check_site(struct req *r, int64_t client_id, int64_t self,
			      const char *name, const char *address)
{
	const char *params[3];
	PGresult *res;
	enum td_err err;

	if (!len_between(name, 1, 200)) {
		form_error(r, "name", "enter a name of at most 200 characters");
	} else {
		params[0] = req_id(r, client_id);
		params[1] = name;
		params[2] = self > 0 ? req_id(r, self) : NULL;
		err = req_query(r, sql_name_taken, 3, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(r, "name",
				   "this client has a site with this name");
	}
	if (!len_between(address, 0, ADDRESS_MAX))
		form_error(r, "address", "use at most 1000 characters");
	return TD_OK;
}

/* A locked site of the tenant; 404 if none. */
static enum td_err load_site(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err = req_query(r, sql_site_lock, 1, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no site %" PRId64, id);
	return TD_OK;
}

/*
 * POST /clients/:id/sites — 201 (API) or 303 to the sites page; 422 for
 * a bad or taken name; 409 if the client is archived or merged; 404 for
 * another tenant's client.
 */
enum td_err sites_create(struct req *r)
{
	int64_t client_id = route_arg_int(&r->args, "id"), id;
	const char *name = form_text(r, "name");
	const char *address = form_text(r, "address"), *params[3], *why;
	struct clientctx c;
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, client_id, "sites", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	err = check_site(r, client_id, 0, name, address);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, client_id, 0);
	params[0] = req_id(r, client_id);
	params[1] = name;
	params[2] = address;
	err = req_query(r, sql_site_new, 3, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)id,
			  "client_id", (json_int_t)client_id, "name", name,
			  "address", address);
	req_own_json(r, after);
	err = audit_write(r, "site.create", "site", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "site", after);
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Site %s added.", name),
	     sites_url(r, client_id));
	return TD_OK;
}

/*
 * POST /sites/:id — renames a site or changes its address. 303 to the
 * sites page (the API gets the site); 422 for a bad or taken name (shown
 * on the site's row); 409 if the client is archived or merged; 404 for
 * another tenant's site.
 */
enum td_err sites_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), client_id;
	const char *name = form_text(r, "name");
	const char *address = form_text(r, "address"), *params[3], *why;
	struct clientctx c;
	json_t *before, *after;
	PGresult *old;
	enum td_err err;

	err = load_site(r, id, &old);
	if (err != TD_OK)
		return err;
	client_id = db_int(old, 0, 1);
	err = clientctx_load(r, client_id, "sites", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	/* An API caller may send only the field it changes. */
	if (r->json_body != NULL &&
	    json_object_get(r->json_body, "address") == NULL)
		address = db_text(old, 0, 3);
	if (r->json_body != NULL &&
	    json_object_get(r->json_body, "name") == NULL)
		name = db_text(old, 0, 2);
	err = check_site(r, client_id, id, name, address);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, client_id, id);
	params[0] = req_id(r, id);
	params[1] = name;
	params[2] = address;
	err = req_query(r, sql_site_update, 3, params, NULL);
	if (err != TD_OK)
		return err;
	before = site_json(old, 0);
	req_own_json(r, before);
	after = json_pack("{s:I, s:I, s:s, s:s}", "id", (json_int_t)id,
			  "client_id", (json_int_t)client_id, "name", name,
			  "address", address);
	req_own_json(r, after);
	err = audit_write(r, "site.update", "site", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "site", after);
	done(r, arena_printf(r->arena, "Site %s saved.", name),
	     sites_url(r, client_id));
	return TD_OK;
}

/*
 * POST /sites/:id/delete — 303 to the sites page (the API gets
 * {deleted}); 409 while the site has active assets or the client is
 * archived or merged; 404 for another tenant's site.
 */
enum td_err sites_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), client_id, active;
	const char *params[1] = { req_id(r, id) }, *why;
	struct clientctx c;
	json_t *before;
	PGresult *old, *res;
	enum td_err err;

	err = load_site(r, id, &old);
	if (err != TD_OK)
		return err;
	client_id = db_int(old, 0, 1);
	err = clientctx_load(r, client_id, "sites", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	err = req_query(r, sql_site_active_assets, 1, params, &res);
	if (err != TD_OK)
		return err;
	active = db_int(res, 0, 0);
	if (active > 0)
		return refuse(
			r, client_id,
			arena_printf(
				r->arena,
				"site %s still has %" PRId64
				" active asset%s: move or archive %s first",
				db_text(old, 0, 2), active,
				active == 1 ? "" : "s",
				active == 1 ? "it" : "them"));
	err = req_query(r, sql_site_delete, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = site_json(old, 0);
	req_own_json(r, before);
	err = audit_write(r, "site.delete", "site", id, before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_pack("{s:I, s:I, s:s}", "id", (json_int_t)id,
				      "client_id", (json_int_t)client_id,
				      "name", db_text(old, 0, 2)));
	done(r, arena_printf(r->arena, "Site %s deleted.", db_text(old, 0, 2)),
	     sites_url(r, client_id));
	return TD_OK;
}
