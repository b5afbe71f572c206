/* clientctx.c: the client a page is about, and the tabs of a client page */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "auth.h"
#include "clientctx.h"
#include "db.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

static const char sql_client[] =
	"SELECT name, archived_at IS NOT NULL, merged_into IS NOT NULL"
	" FROM clients WHERE tenant_id = app_tenant() AND id = $1";

static const struct {
	const char *key, *label, *suffix;
} tabs[] = {
	{ "overview", "Overview", "" },
	{ "contacts", "Contacts", "/contacts" },
	{ "sites", "Sites", "/sites" },
	{ "assets", "Assets", "/assets" },
	{ "tickets", "Tickets", "/tickets" },
	{ "contracts", "Contracts", "/contracts" },
	{ "invoices", "Invoices", "/invoices" },
	{ "time", "Time", "/time" },
	{ "activity", "Activity", "/activity" },
	{ "portal", "Portal", "/portal" }, /* portal.c */
};

enum td_err clientctx_load(struct req *r, int64_t id, const char *tab,
			   struct clientctx *out)
{
	const char *params[1];
	json_t *v, *list;
	PGresult *res;
	enum td_err err;
	size_t i;

	if (r->auth.kind == AUTH_AGENT && r->auth.client_id != id)
		return req_fail(r, TD_ENOENT, "no client %" PRId64, id);
	params[0] = arena_printf(r->arena, "%" PRId64, id);
	err = req_query(r, sql_client, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no client %" PRId64, id);
	out->id = id;
	out->name = arena_strdup(r->arena, db_text(res, 0, 0));
	out->archived = !strcmp(db_text(res, 0, 1), "t");
	out->merged = !strcmp(db_text(res, 0, 2), "t");
	v = req_view(r);
	json_object_set_new(
		v, "client",
		json_pack("{s:I, s:s, s:b, s:b, s:s}", "id", (json_int_t)id,
			  "name", out->name, "archived", out->archived,
			  "merged", out->merged, "url",
			  arena_printf(r->arena, "/clients/%" PRId64, id)));
	if (tab == NULL)
		return TD_OK;
	list = json_array();
	for (i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++)
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:b}", "label",
					tabs[i].label, "href",
					arena_printf(r->arena,
						     "/clients/%" PRId64 "%s",
						     id, tabs[i].suffix),
					"active", !strcmp(tab, tabs[i].key)));
	json_object_set_new(v, "client_tabs", list);
	return TD_OK;
}

int clientctx_limit(struct req *r)
{
	const char *s = http_params_get(&r->query_params, "limit");
	char *end;
	long n;

	if (s == NULL || *s == '\0')
		return 50;
	errno = 0;
	n = strtol(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < 1)
		return 50;
	return n > 200 ? 200 : (int)n;
}

const char *clientctx_after(struct req *r)
{
	const char *s = http_params_get(&r->query_params, "after");

	return s != NULL && *s != '\0' ? s : NULL;
}

const char *clientctx_next_url(struct req *r, const char *base,
			       const char *after)
{
	struct sbuf sb;
	size_t i;
	bool first = true;

	sbuf_init(&sb, r->arena, 256);
	sbuf_adds(&sb, base);
	for (i = 0; i < r->query_params.n; i++) {
		const struct http_param *p = &r->query_params.v[i];

		if (!strcmp(p->name, "after"))
			continue;
		sbuf_addch(&sb, first ? '?' : '&');
		first = false;
		http_url_encode(&sb, p->name);
		sbuf_addch(&sb, '=');
		http_url_encode(&sb, p->value);
	}
	sbuf_addch(&sb, first ? '?' : '&');
	sbuf_adds(&sb, "after=");
	http_url_encode(&sb, after);
	return sb.buf;
}
