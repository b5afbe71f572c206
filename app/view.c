/* view.c: templates from views/, and rendering a request's view model */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "arena.h"
#include "mustache.h"
#include "auth.h"
#include "http.h"
#include "req.h"
#include "router.h"
#include "sbuf.h"
#include "view.h"
#include "banned.h"

#define VIEW_EXT      ".mustache"
#define VIEW_MAX_FILE (4u << 20)

static enum td_err load_file(struct mustache_set *set, struct arena *a,
			     const char *path, const char *name, char *err,
			     size_t errlen)
{
	FILE *f = fopen(path, "rb");
	struct sbuf sb;
	char chunk[8192];
	size_t n;
	const char *why = NULL;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read template '%s': %s", path,
			 strerror(errno));
		return TD_ESYS;
	}
	sbuf_init(&sb, a, 16384);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		sbuf_add(&sb, chunk, n);
		if (sb.len > VIEW_MAX_FILE)
			break;
	}
	fclose(f);
	if (sb.len > VIEW_MAX_FILE) {
		snprintf(err, errlen, "template '%s' is larger than 4 MiB",
			 path);
		return TD_EINPUT;
	}
	if (mustache_set_add(set, name, sb.buf, sb.len, &why) != TD_OK) {
		snprintf(err, errlen, "%s", why ? why : "template error");
		return TD_EINPUT;
	}
	return TD_OK;
}

static enum td_err load_dir(struct mustache_set *set, struct arena *a,
			    const char *dir, const char *prefix, int depth,
			    char *err, size_t errlen)
{
	DIR *d;
	struct dirent *de;
	enum td_err rc = TD_OK;

	if (depth > 8)
		return TD_OK;
	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "cannot open views directory '%s': %s",
			 dir, strerror(errno));
		return TD_ESYS;
	}
	while (rc == TD_OK && (de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		size_t len = strlen(nm), ext = strlen(VIEW_EXT);
		char *path, *name;
		struct stat st;

		if (nm[0] == '.' || !strcmp(nm, "static"))
			continue;
		path = arena_printf(a, "%s/%s", dir, nm);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			name = arena_printf(a, "%s%s/", prefix, nm);
			rc = load_dir(set, a, path, name, depth + 1, err,
				      errlen);
		} else if (len > ext && !strcmp(nm + len - ext, VIEW_EXT)) {
			name = arena_printf(a, "%s%.*s", prefix,
					    (int)(len - ext), nm);
			rc = load_file(set, a, path, name, err, errlen);
		}
	}
	closedir(d);
	return rc;
}

enum td_err view_load(const char *views_dir, struct arena *a,
		      struct mustache_set **out, char *err, size_t errlen)
{
	struct mustache_set *set = mustache_set_new(a);
	enum td_err rc;

	rc = load_dir(set, a, views_dir, "", 0, err, errlen);
	if (rc != TD_OK)
		return rc;
	if (!mustache_set_has(set, "layout") ||
	    !mustache_set_has(set, "error")) {
		snprintf(
			err, errlen,
			"views directory '%s' has no layout.mustache or error.mustache",
			views_dir);
		return TD_EINPUT;
	}
	*out = set;
	return TD_OK;
}

static const struct nav_item {
	const char *label;
	const char *href;
	const char *icon;
} nav_items[] = {
	{ "Tickets", "/tickets", "tickets" },
	{ "Clients", "/clients", "clients" },
	{ "Contracts", "/contracts", "contracts" },
	{ "Invoices", "/invoices", "invoices" },
	{ "Time", "/time", "time" },
	{ "Reports", "/reports", "reports" },
	{ "Settings", "/settings", "settings" },
};

static char initial(const char *s)
{
	return (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
}

/* Initials for the avatar: first letters of the first and last words. */
static const char *initials(struct req *r, const char *name)
{
	const char *last = strrchr(name, ' ');
	char buf[3] = { 0 };

	buf[0] = initial(name);
	if (last != NULL && last[1] != '\0' && (unsigned char)last[1] < 0x80)
		buf[1] = initial(last + 1);
	if ((unsigned char)buf[0] >= 0x80)
		return "?";
	return arena_strdup(r->arena, buf);
}

/* A message left by the previous request (form_flash), shown once. */
static void take_flash(struct req *r, json_t *list)
{
	const char *c = http_params_get(&r->cookies, "td_flash"), *colon, *why;
	char *kind, *text;
	size_t n;

	if (c == NULL || *c == '\0')
		return;
	req_header(r, "Set-Cookie",
		   "td_flash=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
	colon = strchr(c, ':');
	if (colon == NULL ||
	    http_percent_decode(r->arena, c, (size_t)(colon - c), false, &kind,
				&n, &why) != TD_OK ||
	    http_percent_decode(r->arena, colon + 1, strlen(colon + 1), false,
				&text, &n, &why) != TD_OK)
		return;
	if (strcmp(kind, "ok") && strcmp(kind, "error") && strcmp(kind, "info"))
		return;
	json_array_append_new(
		list, json_pack("{s:s, s:s}", "kind", kind, "text", text));
}

/* The caller's running timer for the top bar (from the session lookup). */
static void add_timer(struct req *r, json_t *v)
{
	const struct auth *a = &r->auth;
	json_t *t;

	if (a->timer_ticket_id <= 0)
		return;
	t = json_pack(
		"{s:s, s:s, s:s, s:s, s:I, s:b}", "url",
		arena_printf(r->arena, "/tickets/%" PRId64, a->timer_ticket_id),
		"ref",
		arena_printf(r->arena, "T-%" PRId64, a->timer_ticket_number),
		"started_at_iso", a->timer_started_iso, "since", a->timer_since,
		"banked", (json_int_t)a->timer_banked, "paused",
		a->timer_paused);
	json_object_set_new(v, "nav_timer", t);
}

/* Who is signed in, their tenant, and the CSRF token for the page's forms. */
static void add_caller(struct req *r, json_t *v)
{
	const struct auth *a = &r->auth;

	if (a->kind == AUTH_USER) {
		json_object_set_new(v, "user",
				    json_pack("{s:s, s:s, s:s, s:s}", "name",
					      a->name, "email", a->email,
					      "initials", initials(r, a->name),
					      "role", a->role_name));
		json_object_set_new(v, "tenant",
				    json_pack("{s:s, s:s}", "name",
					      a->tenant_name, "slug",
					      a->tenant_slug));
		add_timer(r, v);
	}
	if (r->route == NULL || (r->route->flags & ROUTE_NOTX))
		return;
	json_object_set_new(v, "csrf",
			    json_string(a->csrf ? a->csrf : auth_anon_csrf(r)));
}

/* The data every page's layout needs, added beside the handler's own. */
static void add_layout_data(struct req *r, json_t *v)
{
	json_t *nav = json_array(), *item;
	size_t i, len;

	/* Every page has these: built without json_pack's format parsing. */
	for (i = 0; i < sizeof(nav_items) / sizeof(nav_items[0]); i++) {
		len = strlen(nav_items[i].href);
		item = json_object();
		json_object_set_new_nocheck(
			item, "label", json_string_nocheck(nav_items[i].label));
		json_object_set_new_nocheck(
			item, "href", json_string_nocheck(nav_items[i].href));
		json_object_set_new_nocheck(
			item, "icon", json_string_nocheck(nav_items[i].icon));
		json_object_set_new_nocheck(
			item, "active",
			json_boolean(
				!strncmp(r->path, nav_items[i].href, len) &&
				(r->path[len] == '\0' || r->path[len] == '/')));
		json_array_append_new(nav, item);
	}
	json_object_set_new(v, "nav", nav);
	json_object_set_new(v, "app",
			    json_pack("{s:s, s:s}", "name", "tallydesk",
				      "version", PACKAGE_VERSION));
	json_object_set_new(v, "request_id", json_string(r->request_id));
	add_caller(r, v);
	if (json_object_get(v, "flash") == NULL)
		json_object_set_new(v, "flash", json_array());
	take_flash(r, json_object_get(v, "flash"));
}

static void set_body(struct req *r, const struct sbuf *sb, const char *type)
{
	r->body_out = sb->buf;
	r->body_out_len = sb->len;
	r->body_type = type;
}

static enum td_err render_json(struct req *r, json_t *v)
{
	const char *text = req_json_text(r, v, &r->body_out_len);

	if (text == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise view model");
	r->body_out = text;
	r->body_type = "application/json; charset=utf-8";
	return TD_OK;
}

enum td_err view_render(struct req *r)
{
	json_t *v = req_view(r);
	struct sbuf sb;
	enum td_err err;

	if (r->want_json)
		return render_json(r, v);
	if (r->view_name == NULL)
		return req_fail(r, TD_ESYS, "handler for %s set no view",
				r->path);
	add_layout_data(r, v);
	sbuf_init(&sb, r->arena, 65536);
	err = mustache_render_rows(r->ctx->views, r->view_name, v, r->view_rows,
				   r->nview_rows, &sb);
	if (err != TD_OK)
		return req_fail(r, TD_ESYS, "cannot render template '%s'",
				r->view_name);
	set_body(r, &sb, "text/html; charset=utf-8");
	return TD_OK;
}

void view_rows(struct req *r, const struct mustache_rows *rows)
{
	struct mustache_rows *all;

	all = arena_alloc(r->arena, (r->nview_rows + 1) * sizeof(*all));
	if (r->nview_rows > 0)
		memcpy(all, r->view_rows, r->nview_rows * sizeof(*all));
	all[r->nview_rows++] = *rows;
	r->view_rows = all;
}

/* A page that needs neither the database nor any template. */
static void render_bare(struct req *r, int status, const char *message)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, 1024);
	sbuf_addf(&sb,
		  "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">"
		  "<meta name=\"viewport\" content=\"width=device-width\">"
		  "<title>%d · tallydesk</title><body style=\"font-family:"
		  "system-ui,sans-serif;max-width:40rem;margin:4rem auto;"
		  "padding:0 1rem\"><h1>%d</h1><p>",
		  status, status);
	sbuf_add_html(&sb, message, strlen(message));
	sbuf_addf(&sb, "</p><p><small>Request %s</small></p></body></html>\n",
		  r->request_id);
	set_body(r, &sb, "text/html; charset=utf-8");
}

void view_render_error(struct req *r, enum td_err err)
{
	int status =
		err == TD_EINPUT && r->status == 422 ? 422 : td_status(err);
	const char *message = td_strerror(err);
	json_t *v;
	struct sbuf sb;
	const char *tpl;

	r->status = status;
	r->redirect = NULL;
	if (r->want_json) {
		v = json_pack(
			"{s:{s:s, s:s, s:o}}", "error", "code",
			status == 422 ? "invalid" : td_code(err), "message",
			r->error_detail ? r->error_detail : message, "fields",
			r->error_fields ? json_incref(r->error_fields) :
					  json_object());
		req_own_json(r, v);
		if (render_json(r, v) != TD_OK)
			render_bare(r, status, message);
		return;
	}
	if (r->ctx == NULL || r->ctx->views == NULL) {
		render_bare(r, status,
			    r->error_detail ? r->error_detail : message);
		return;
	}
	v = json_pack("{s:i, s:s, s:s}", "status", status, "message", message,
		      "title", arena_printf(r->arena, "%d", status));
	req_own_json(r, v);
	if (r->error_detail != NULL)
		json_object_set_new(v, "detail", json_string(r->error_detail));
	add_layout_data(r, v);
	/* With the database down the full layout may want data it cannot get.
	 */
	tpl = err == TD_EUNAVAIL &&
			      mustache_set_has(r->ctx->views, "error_bare") ?
		      "error_bare" :
		      "error";
	/* A portal page's error stays in the portal's layout (portal.c). */
	if (err != TD_EUNAVAIL && r->view != NULL &&
	    json_object_get(r->view, "portal") != NULL &&
	    mustache_set_has(r->ctx->views, "portal/error")) {
		json_object_set(v, "portal",
				json_object_get(r->view, "portal"));
		if (json_object_get(r->view, "contact") != NULL)
			json_object_set(v, "contact",
					json_object_get(r->view, "contact"));
		tpl = "portal/error";
	}
	sbuf_init(&sb, r->arena, 8192);
	if (mustache_render(r->ctx->views, tpl, v, &sb) != TD_OK) {
		render_bare(r, status, message);
		return;
	}
	set_body(r, &sb, "text/html; charset=utf-8");
}

static const struct settings_tab {
	const char *label;
	const char *href;
	unsigned roles;
} settings_tabs[] = {
	{ "Workspace", "/settings", ROLE_ADMIN },
	{ "Users", "/settings/users", ROLE_ADMIN },
	{ "API keys", "/settings/apikeys", ROLE_ADMIN },
	{ "Asset kinds", "/settings/asset-kinds", ROLE_ADMIN },
	{ "Tickets", "/settings/tickets", ROLE_ADMIN },
	{ "Alerts", "/settings/alerts", ROLE_ADMIN },
	{ "Email", "/settings/mail", ROLE_ADMIN },
	{ "Email domains", "/settings/mail-domains", ROLE_ADMIN },
	{ "Email templates", "/settings/mail-templates", ROLE_ADMIN },
	{ "Mailboxes", "/settings/mailboxes", ROLE_ADMIN },
	{ "SLA tiers", "/settings/sla", ROLE_ADMIN },
	{ "Time", "/settings/time", ROLE_ADMIN },
	{ "Portal", "/settings/portal", ROLE_ADMIN },
	{ "Audit log", "/settings/audit", ROLE_ADMIN | ROLE_MANAGER },
	{ "Security", "/settings/security", ROLE_STAFF },
};

void view_settings_page(struct req *r, const char *title, const char *view,
			const char *href)
{
	json_t *v = req_view(r), *list = json_array();
	size_t i;

	for (i = 0; i < sizeof(settings_tabs) / sizeof(settings_tabs[0]); i++)
		if (settings_tabs[i].roles & (unsigned)r->auth.role)
			json_array_append_new(
				list, json_pack("{s:s, s:s, s:b}", "label",
						settings_tabs[i].label, "href",
						settings_tabs[i].href, "active",
						!strcmp(settings_tabs[i].href,
							href)));
	json_object_set_new(v, "title", json_string(title));
	json_object_set_new(v, "settings_tabs", list);
	r->view_name = view;
}
