/* portal.c: the client portal — magic-link sign-in and a contact's tickets */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "conf.h"
#include "contracts.h"
#include "credential.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "invoices.h"
#include "notify.h"
#include "portal.h"
#include "req.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "timers.h"
#include "view.h"
#include "banned.h"

#define LINK_MINUTES	 15 /* a mailed link works this long, once */
#define IDLE_MINUTES	 60 /* a portal session ends after this idle time */
#define SESSION_HOURS	 12 /* and this long after sign-in, whatever */
#define THROTTLE_MINUTES 15
#define MAX_PER_ADDRESS	 5  /* link requests per address per window */
#define MAX_PER_IP	 30 /* link requests per IP address per window */
#define SUBJECT_MAX	 300
#define BODY_MAX	 100000

static const char sql_host_slug[] = "SELECT portal_host_slug($1)";
/* Tenants are visible by the slug in app.tenant_slug (0002), then by id. */
static const char sql_tenant_slug[] =
	"SELECT set_config('app.tenant_slug', $1, true),"
	" (SELECT id FROM tenants WHERE slug = $1)";
static const char sql_tenant[] =
	"SELECT set_config('app.tenant_id', $1, true), id, name, slug,"
	" brand_colour, support_email, support_phone, logo IS NOT NULL"
	" FROM tenants WHERE id = $1::bigint";
static const char sql_welcome[] =
	"SELECT welcome_text FROM portal_settings WHERE tenant_id = app_tenant()";
static const char sql_session[] =
	"SELECT s.id, s.csrf_token, c.id, c.name, c.email, c.client_id,"
	" c.portal_admin, cl.name, s.last_seen_at < now() - interval '1 minute'"
	" FROM portal_sessions s"
	" JOIN contacts c ON c.tenant_id = s.tenant_id AND c.id = s.contact_id"
	" JOIN clients cl ON cl.tenant_id = c.tenant_id AND cl.id = c.client_id"
	" WHERE s.tenant_id = app_tenant() AND s.token_hash = $1::bytea"
	" AND s.expires_at > now()"
	" AND s.last_seen_at > now() - make_interval(mins => $2::int)"
	" AND c.is_portal AND c.email <> '' AND cl.archived_at IS NULL";
static const char sql_session_touch[] =
	"UPDATE portal_sessions SET last_seen_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_session_new[] =
	"INSERT INTO portal_sessions (tenant_id, contact_id, token_hash,"
	" csrf_token, expires_at, ip, user_agent) VALUES (app_tenant(), $1,"
	" $2::bytea, $3, now() + make_interval(hours => $4::int), $5,"
	" left($6, 300)) RETURNING id";
static const char sql_session_drop[] =
	"DELETE FROM portal_sessions WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_throttle[] =
	"SELECT count(*) FILTER (WHERE scope = 'account' AND key = $1),"
	" count(*) FILTER (WHERE scope = 'ip' AND key = $2)"
	" FROM auth_failures"
	" WHERE at > now() - make_interval(mins => $3::int)"
	" AND ((scope = 'account' AND key = $1) OR (scope = 'ip' AND key = $2))";
static const char sql_attempt[] =
	"INSERT INTO auth_failures (scope, key) VALUES ('account', $1),"
	" ('ip', $2)";
static const char sql_contact_by_email[] =
	"SELECT c.id FROM contacts c JOIN clients cl ON cl.tenant_id ="
	" c.tenant_id AND cl.id = c.client_id WHERE c.tenant_id = app_tenant()"
	" AND lower(c.email) = lower($1) AND c.is_portal AND c.email <> ''"
	" AND cl.archived_at IS NULL ORDER BY c.id LIMIT 1";
static const char sql_host_of[] =
	"SELECT host FROM tenant_hosts WHERE tenant_id = app_tenant()"
	" ORDER BY id LIMIT 1";
/* Both run for a known and an unknown address alike (then on no row). */
static const char sql_link_new[] =
	"INSERT INTO portal_links (tenant_id, contact_id, token_hash,"
	" requested_by, expires_at) SELECT app_tenant(), c.id, $2::bytea, $3,"
	" now() + make_interval(mins => $4::int) FROM contacts c"
	" WHERE c.tenant_id = app_tenant() AND c.id = $1 AND c.is_portal";
static const char sql_link_mail[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text)"
	" SELECT app_tenant(), 'portal_link', c.email, $2, $3 FROM contacts c"
	" WHERE c.tenant_id = app_tenant() AND c.id = $1 AND c.is_portal";
static const char sql_link_state[] =
	"SELECT l.id, l.contact_id, l.used_at IS NOT NULL,"
	" l.expires_at <= now(), c.is_portal FROM portal_links l"
	" JOIN contacts c ON c.tenant_id = l.tenant_id AND c.id = l.contact_id"
	" WHERE l.tenant_id = app_tenant() AND l.token_hash = $1::bytea";
static const char sql_link_use[] =
	"UPDATE portal_links SET used_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1 AND used_at IS NULL AND expires_at > now()"
	" RETURNING contact_id";
static const char sql_contact_login[] =
	"UPDATE contacts SET portal_last_login_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1 RETURNING email";
static const char sql_tickets[] =
	"SELECT t.id, t.number, t.subject, t.status, t.priority,"
	" to_char(t.updated_at AT TIME ZONE tn.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" coalesce(c.name, '')"
	" FROM tickets t JOIN tenants tn ON tn.id = t.tenant_id"
	" LEFT JOIN contacts c ON c.tenant_id = t.tenant_id AND c.id = t.contact_id"
	" WHERE t.tenant_id = app_tenant() AND t.client_id = $1"
	" AND ($2::boolean OR t.contact_id = $3) AND t.merged_into IS NULL"
	" ORDER BY t.status = 'closed', t.updated_at DESC, t.id DESC LIMIT 200";
#define TICKET_COLS                                                               \
	"SELECT t.id, t.number, t.subject, t.description, t.status,"              \
	" t.priority, t.contact_id,"                                              \
	" to_char(t.created_at AT TIME ZONE tn.time_zone, 'YYYY-MM-DD HH24:MI')," \
	" coalesce(c.name, '')"                                                   \
	" FROM tickets t JOIN tenants tn ON tn.id = t.tenant_id"                  \
	" LEFT JOIN contacts c ON c.tenant_id = t.tenant_id"                      \
	" AND c.id = t.contact_id"                                                \
	" WHERE t.tenant_id = app_tenant() AND t.id = $1 AND t.client_id = $2"    \
	" AND ($3::boolean OR t.contact_id = $4)"
static const char sql_ticket[] = TICKET_COLS;
static const char sql_ticket_lock[] = TICKET_COLS " FOR UPDATE OF t";
static const char sql_comments[] =
	"SELECT cm.id, cm.body,"
	" to_char(cm.created_at AT TIME ZONE tn.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" CASE WHEN cm.author_contact_id IS NOT NULL THEN coalesce(ct.name,"
	" nullif(cm.author_label, ''), 'Contact')"
	" WHEN u.id IS NOT NULL THEN u.name"
	" ELSE coalesce(nullif(cm.author_label, ''), tn.name) END,"
	" cm.author_contact_id IS NOT NULL"
	" FROM ticket_comments cm JOIN tenants tn ON tn.id = cm.tenant_id"
	" LEFT JOIN users u ON u.tenant_id = cm.tenant_id"
	" AND u.id = cm.author_user_id"
	" LEFT JOIN contacts ct ON ct.tenant_id = cm.tenant_id"
	" AND ct.id = cm.author_contact_id"
	" WHERE cm.tenant_id = app_tenant() AND cm.ticket_id = $1 AND cm.public"
	" ORDER BY cm.created_at, cm.id";
static const char sql_attachments[] =
	"SELECT a.id, a.filename, a.size, a.comment_id"
	" FROM ticket_attachments a LEFT JOIN ticket_comments cm"
	" ON cm.tenant_id = a.tenant_id AND cm.id = a.comment_id"
	" WHERE a.tenant_id = app_tenant() AND a.ticket_id = $1"
	" AND (a.comment_id IS NULL OR cm.public) ORDER BY a.id";
static const char sql_download[] =
	"SELECT a.filename, a.content_type, b.data FROM ticket_attachments a"
	" JOIN blobs b ON b.tenant_id = a.tenant_id AND b.sha256 = a.sha256"
	" JOIN tickets t ON t.tenant_id = a.tenant_id AND t.id = a.ticket_id"
	" LEFT JOIN ticket_comments cm ON cm.tenant_id = a.tenant_id"
	" AND cm.id = a.comment_id"
	" WHERE a.tenant_id = app_tenant() AND a.id = $1 AND t.client_id = $2"
	" AND ($3::boolean OR t.contact_id = $4)"
	" AND (a.comment_id IS NULL OR cm.public)";
static const char sql_blob_new[] =
	"INSERT INTO blobs (tenant_id, sha256, size, data)"
	" VALUES (app_tenant(), $1::bytea, $2, $3::bytea)"
	" ON CONFLICT (tenant_id, sha256) DO NOTHING";
static const char sql_attachment_new[] =
	"INSERT INTO ticket_attachments (tenant_id, ticket_id, comment_id,"
	" sha256, filename, content_type, size)"
	" VALUES (app_tenant(), $1, $2, $3::bytea, $4, $5, $6) RETURNING id";
static const char sql_comment_new[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_contact_id,"
	" author_label, public, body) VALUES (app_tenant(), $1, $2, $3, true,"
	" $4) RETURNING id";
/* The client's invoices once issued, newest first, with what is left to pay. */
static const char sql_invoices[] =
	"SELECT i.id, i.number, i.issued_on::text, i.due_on::text,"
	" t.total::text, t.balance::text, i.currency,"
	" t.balance > 0 AND i.due_on < (now() AT TIME ZONE"
	"  (SELECT time_zone FROM tenants WHERE id = app_tenant()))::date"
	" FROM invoices i JOIN invoice_totals t ON t.tenant_id = i.tenant_id"
	" AND t.invoice_id = i.id WHERE i.tenant_id = app_tenant()"
	" AND i.client_id = $1 AND i.status IN ('issued', 'sent')"
	" ORDER BY i.issued_on DESC, i.id DESC LIMIT 50";
static const char sql_invoice_of[] =
	"SELECT 1 FROM invoices WHERE tenant_id = app_tenant() AND id = $1"
	" AND client_id = $2 AND status IN ('issued', 'sent')";
static const char sql_close[] =
	"UPDATE tickets SET status = 'closed', closed_at = now(),"
	" closed_without_time = NOT EXISTS (SELECT 1 FROM time_entries e"
	" WHERE e.tenant_id = app_tenant() AND e.ticket_id = $1)"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_logo[] =
	"SELECT logo, logo_type FROM tenants WHERE id = app_tenant()"
	" AND logo IS NOT NULL";
static const char sql_staff_contacts[] =
	"SELECT c.id, c.name, c.email, c.is_portal, c.portal_admin,"
	" to_char(c.portal_last_login_at AT TIME ZONE tn.time_zone,"
	" 'YYYY-MM-DD HH24:MI'),"
	" (SELECT count(*) FROM portal_sessions s WHERE s.tenant_id ="
	" c.tenant_id AND s.contact_id = c.id AND s.expires_at > now())"
	" FROM contacts c JOIN tenants tn ON tn.id = c.tenant_id"
	" WHERE c.tenant_id = app_tenant() AND c.client_id = $1"
	" ORDER BY lower(c.name), c.id";
static const char sql_staff_contact[] =
	"SELECT id, email, is_portal, portal_admin FROM contacts"
	" WHERE tenant_id = app_tenant() AND id = $1 AND client_id = $2"
	" FOR UPDATE";
static const char sql_staff_grant[] =
	"UPDATE contacts SET is_portal = true, portal_admin = $2::boolean,"
	" portal_granted_at = coalesce(portal_granted_at, now())"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_staff_revoke[] =
	"UPDATE contacts SET is_portal = false, portal_admin = false,"
	" portal_granted_at = NULL WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_sessions_drop_contact[] =
	"DELETE FROM portal_sessions WHERE tenant_id = app_tenant()"
	" AND contact_id = $1";
static const char sql_links_void[] =
	"UPDATE portal_links SET used_at = now() WHERE tenant_id = app_tenant()"
	" AND contact_id = $1 AND used_at IS NULL";

static const char sql_settings[] =
	"SELECT t.slug, coalesce(ps.welcome_text, ''), t.brand_colour,"
	" t.support_email, t.support_phone FROM tenants t"
	" LEFT JOIN portal_settings ps ON ps.tenant_id = t.id"
	" WHERE t.id = app_tenant()";
static const char sql_settings_save[] =
	"INSERT INTO portal_settings (tenant_id, welcome_text)"
	" VALUES (app_tenant(), $1) ON CONFLICT (tenant_id) DO UPDATE"
	" SET welcome_text = EXCLUDED.welcome_text, updated_at = now()";
static const char sql_hosts[] =
	"SELECT id, host FROM tenant_hosts WHERE tenant_id = app_tenant()"
	" ORDER BY host";
static const char sql_host_new[] =
	"INSERT INTO tenant_hosts (tenant_id, host) VALUES (app_tenant(), $1)"
	" ON CONFLICT (host) DO NOTHING RETURNING id";
static const char sql_host_drop[] =
	"DELETE FROM tenant_hosts WHERE tenant_id = app_tenant() AND id = $1"
	" RETURNING host";

/* The portal a request is for, and who is signed in to it. */
struct portal {
	int64_t tenant_id;
	const char *slug;
	const char *name;
	const char *base; /* "/portal/<slug>" */
	bool signed_in;
	bool admin; /* the contact sees all of the client's tickets */
	json_t *view;
};

static const char *nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Whether host is base_url's host name. Ports are left out on both sides:
 * nginx passes $host, which has none.
 */
static bool is_own_host(struct req *r, const char *host)
{
	const char *b = r->ctx->conf->base_url;
	size_t n, hn = strcspn(host, ":");

	if (b == NULL)
		return false;
	if (has_prefix(b, "https://"))
		b += 8;
	else if (has_prefix(b, "http://"))
		b += 7;
	n = strcspn(b, ":/");
	return hn == n && strncasecmp(host, b, n) == 0;
}

const char *portal_host_path(struct req *r, const char *path)
{
	const char *params[1];
	const char *colon;
	PGresult *res;

	if (r->host == NULL || *r->host == '\0' || is_own_host(r, r->host) ||
	    has_prefix(path, "/portal/") || has_prefix(path, "/static/") ||
	    has_prefix(path, "/bench/") || !strcmp(path, "/healthz") ||
	    !strcmp(path, "/echo"))
		return path;
	colon = strchr(r->host, ':');
	params[0] = colon ? arena_strndup(r->arena, r->host,
					  (size_t)(colon - r->host)) :
			    r->host;
	if (db_exec(r->db, r->arena, sql_host_slug, 1, params, &res) != TD_OK ||
	    PQntuples(res) != 1 || db_isnull(res, 0, 0))
		return path;
	return arena_printf(r->arena, "/portal/%s%s", db_text(res, 0, 0),
			    strcmp(path, "/") ? path : "");
}

static const char *cookie_attrs(struct req *r, long max_age)
{
	return arena_printf(
		r->arena, "; Path=/; HttpOnly; SameSite=Lax%s; Max-Age=%ld",
		r->ctx->conf->secure_cookies || r->https ? "; Secure" : "",
		max_age);
}

static void clear_cookie(struct req *r)
{
	req_header(r, "Set-Cookie",
		   arena_printf(r->arena, "%s=%s", PORTAL_COOKIE,
				cookie_attrs(r, 0)));
}

/* The contact's portal session, when the cookie names one of this tenant. */
static enum td_err find_session(struct req *r, struct portal *p)
{
	struct auth *a = &r->auth;
	const char *cookie = http_params_get(&r->cookies, PORTAL_COOKIE);
	const char *token, *params[2];
	int64_t tenant;
	PGresult *res;
	enum td_err err;

	if (cookie == NULL || *cookie == '\0' ||
	    !credential_parse(cookie, '.', &tenant, &token) ||
	    tenant != p->tenant_id)
		return TD_OK;
	params[0] = auth_token_hash(r, token);
	params[1] = arena_printf(r->arena, "%d", IDLE_MINUTES);
	err = req_query(r, sql_session, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		clear_cookie(r);
		return TD_OK;
	}
	a->kind = AUTH_PORTAL;
	a->session_id = db_int(res, 0, 0);
	a->csrf = arena_strdup(r->arena, db_text(res, 0, 1));
	a->contact_id = db_int(res, 0, 2);
	a->name = arena_strdup(r->arena, db_text(res, 0, 3));
	a->email = arena_strdup(r->arena, db_text(res, 0, 4));
	a->client_id = db_int(res, 0, 5);
	p->admin = db_bool(res, 0, 6);
	p->signed_in = true;
	json_object_set_new(req_view(r), "contact",
			    json_pack("{s:I, s:s, s:s, s:b, s:s}", "id",
				      (json_int_t)a->contact_id, "name",
				      a->name, "email", a->email,
				      "client_admin", p->admin, "client",
				      db_text(res, 0, 7)));
	if (db_bool(res, 0, 8)) {
		params[0] = req_id(r, a->session_id);
		return req_query(r, sql_session_touch, 1, params, NULL);
	}
	return TD_OK;
}

/*
 * Every portal handler starts here: binds the transaction to the tenant
 * of the slug (forgetting any staff caller: a staff cookie opens nothing
 * here), finds the contact's session, sends a caller without one to the
 * sign-in page when need_session, and checks the CSRF token of a write.
 * *done is true when the answer is already set (a redirect).
 */
static enum td_err enter(struct req *r, struct portal *p, bool need_session,
			 bool *done)
{
	const char *params[1] = { route_arg_str(&r->args, "slug") };
	PGresult *res, *w;
	enum td_err err;
	json_t *v;

	*done = false;
	memset(p, 0, sizeof(*p));
	memset(&r->auth, 0, sizeof(r->auth));
	if (params[0] == NULL || strlen(params[0]) > 63)
		return req_fail(r, TD_ENOENT, "no portal here");
	err = req_query(r, sql_tenant_slug, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (db_isnull(res, 0, 1))
		return req_fail(r, TD_ENOENT, "no portal at %s", r->path);
	params[0] = arena_strdup(r->arena, db_text(res, 0, 1));
	err = req_query(r, sql_tenant, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no portal at %s", r->path);
	p->tenant_id = db_int(res, 0, 1);
	p->name = arena_strdup(r->arena, db_text(res, 0, 2));
	p->slug = arena_strdup(r->arena, db_text(res, 0, 3));
	p->base = arena_printf(r->arena, "/portal/%s", p->slug);
	r->auth.tenant_id = p->tenant_id;
	r->auth.tenant_name = p->name;
	r->auth.tenant_slug = p->slug;
	err = req_query(r, sql_welcome, 0, NULL, &w);
	if (err != TD_OK)
		return err;
	/* Empty texts are left out: templates test for presence. */
	v = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?}", "base", p->base,
		      "name", p->name, "colour", db_text(res, 0, 4),
		      "support_email", nonempty(db_text(res, 0, 5)),
		      "support_phone", nonempty(db_text(res, 0, 6)), "welcome",
		      PQntuples(w) == 1 ? nonempty(db_text(w, 0, 0)) : NULL);
	if (db_bool(res, 0, 7))
		json_object_set_new(v, "logo_url",
				    json_string(arena_printf(
					    r->arena, "%s/logo", p->base)));
	json_object_set_new(req_view(r), "portal", v);
	p->view = v;
	err = find_session(r, p);
	if (err != TD_OK)
		return err;
	if (need_session && !p->signed_in) {
		if (r->want_json)
			return req_fail(r, TD_EAUTH,
					"sign in to the portal first");
		r->redirect = arena_printf(r->arena, "%s/login", p->base);
		*done = true;
		return TD_OK;
	}
	if (r->method != HTTP_GET && r->method != HTTP_HEAD)
		return auth_check_csrf(r);
	return TD_OK;
}

static void set_page(struct req *r, const char *title, const char *view)
{
	json_object_set_new(req_view(r), "title", json_string(title));
	r->view_name = view;
}

/* Parameters shared by every scoped look-up: client, admin, contact. */
static void scope_params(struct req *r, const struct portal *p,
			 const char **params)
{
	params[0] = req_id(r, r->auth.client_id);
	params[1] = p->admin ? "true" : "false";
	params[2] = req_id(r, r->auth.contact_id);
}

static enum td_err throttled(struct req *r, const struct portal *p,
			     const char *email, bool *out)
{
	const char *params[3];
	PGresult *res;
	enum td_err err;
	char *lower = arena_strdup(r->arena, email), *c;

	for (c = lower; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	params[0] = arena_printf(r->arena, "portal:%" PRId64 ":%s",
				 p->tenant_id, lower);
	params[1] = arena_printf(r->arena, "portal:%s", r->remote_addr);
	params[2] = arena_printf(r->arena, "%d", THROTTLE_MINUTES);
	err = req_query(r, sql_throttle, 3, params, &res);
	if (err != TD_OK)
		return err;
	*out = db_int(res, 0, 0) >= MAX_PER_ADDRESS ||
	       db_int(res, 0, 1) >= MAX_PER_IP;
	if (*out)
		return TD_OK;
	/* Every request counts, known address or not. */
	return req_query(r, sql_attempt, 2, params, NULL);
}

/*
 * Makes a link for contact_id ("0": nobody — the same statements run and
 * write nothing) and queues the mail with it. by_user: the staff member
 * who sent it, or NULL.
 */
static enum td_err issue_link(struct req *r, const struct portal *p,
			      const char *contact_id, const char *by_user)
{
	char token[AUTH_TOKEN_LEN + 1];
	const char *params[4], *link, *base;
	PGresult *res;
	enum td_err err;

	if (!auth_new_token(token))
		return req_fail(r, TD_ESYS, "cannot make a token");
	err = req_query(r, sql_host_of, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	base = PQntuples(res) == 1 ?
		       arena_printf(r->arena, "https://%s",
				    db_text(res, 0, 0)) :
		       arena_printf(r->arena, "%s%s", r->ctx->conf->base_url,
				    p->base);
	link = arena_printf(r->arena, "%s/link/%s", base, token);
	params[0] = contact_id;
	params[1] = auth_token_hash(r, token);
	params[2] = by_user;
	params[3] = arena_printf(r->arena, "%d", LINK_MINUTES);
	err = req_query(r, sql_link_new, 4, params, NULL);
	if (err != TD_OK)
		return err;
	params[1] = arena_printf(r->arena, "Your sign-in link for %s support",
				 p->name);
	params[2] = arena_printf(
		r->arena,
		"Hello,\n\nOpen this link within %d minutes to sign in to the "
		"%s support portal:\n%s\n\nThe link works once. If you did not "
		"ask for it, you can ignore this message.\n",
		LINK_MINUTES, p->name, link);
	return req_query(r, sql_link_mail, 3, params, NULL);
}

/* GET /portal/:slug/login */
enum td_err portal_login_form(struct req *r)
{
	struct portal p;
	bool done;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	if (p.signed_in) {
		r->redirect = p.base;
		return TD_OK;
	}
	set_page(r, "Sign in", "portal/login");
	return TD_OK;
}

/*
 * POST /portal/:slug/login — the same words, and the same statements,
 * whether or not the address belongs to a portal user.
 */
enum td_err portal_login(struct req *r)
{
	struct portal p;
	bool done, limited;
	const char *email, *params[1], *contact = "0";
	PGresult *res;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	set_page(r, "Sign in", "portal/login");
	email = form_text(r, "email");
	if (*email == '\0' || strlen(email) > 254 || !strchr(email, '@'))
		form_error(r, "email",
			   "enter the email address you use with us");
	if (form_has_errors(r)) {
		static const char *const keep[] = { "email", NULL };

		return form_reject(r, "portal/login", keep);
	}
	err = throttled(r, &p, email, &limited);
	if (err != TD_OK)
		return err;
	if (limited) {
		r->status = 429;
		json_object_set_new(req_view(r), "throttled", json_true());
		json_object_set_new(
			req_view(r), "message",
			json_string("Too many sign-in links were asked for. "
				    "Wait 15 minutes and try again."));
		return TD_OK;
	}
	params[0] = email;
	err = req_query(r, sql_contact_by_email, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 1)
		contact = arena_strdup(r->arena, db_text(res, 0, 0));
	err = issue_link(r, &p, contact, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "sent", json_true());
	json_object_set_new(
		req_view(r), "message",
		json_string("If that address may use this portal, a sign-in "
			    "link is on its way to it. The link works once, "
			    "for 15 minutes."));
	return TD_OK;
}

/* Why a link cannot be used, or NULL; fills *link_id and *contact_id. */
static enum td_err link_problem(struct req *r, const char **why,
				int64_t *link_id)
{
	const char *token = route_arg_str(&r->args, "token"), *params[1];
	PGresult *res;
	enum td_err err;

	*why = "This sign-in link is not valid. Ask for a new one below.";
	*link_id = 0;
	if (token == NULL || strlen(token) != AUTH_TOKEN_LEN ||
	    !credential_is_token(token))
		return TD_OK;
	params[0] = auth_token_hash(r, token);
	err = req_query(r, sql_link_state, 1, params, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	if (db_bool(res, 0, 2))
		*why = "This sign-in link has been used already: each link "
		       "works once. Ask for a new one below.";
	else if (db_bool(res, 0, 3))
		*why = "This sign-in link has expired: links work for 15 "
		       "minutes. Ask for a new one below.";
	else if (!db_bool(res, 0, 4))
		*why = "This address may no longer use the portal. Contact "
		       "support if you think it should.";
	else {
		*why = NULL;
		*link_id = db_int(res, 0, 0);
	}
	return TD_OK;
}

static enum td_err link_refused(struct req *r, const char *why)
{
	r->status = 410;
	json_object_set_new(req_view(r), "link_problem", json_string(why));
	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	set_page(r, "Sign in", "portal/login");
	return TD_OK;
}

/*
 * GET /portal/:slug/link/:token — a page with one button: mail scanners
 * fetch links, and must not use one up.
 */
enum td_err portal_link_form(struct req *r)
{
	struct portal p;
	bool done;
	const char *why;
	int64_t link_id;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	err = link_problem(r, &why, &link_id);
	if (err != TD_OK)
		return err;
	if (why != NULL)
		return link_refused(r, why);
	json_object_set_new(
		req_view(r), "action",
		json_string(arena_printf(r->arena, "%s/link/%s", p.base,
					 route_arg_str(&r->args, "token"))));
	set_page(r, "Sign in", "portal/link");
	return TD_OK;
}

/* POST /portal/:slug/link/:token — uses the link, starts a session. */
enum td_err portal_link_use(struct req *r)
{
	struct portal p;
	bool done;
	const char *why, *params[6];
	char token[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	int64_t link_id, contact;
	PGresult *res;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	err = link_problem(r, &why, &link_id);
	if (err != TD_OK)
		return err;
	if (why != NULL)
		return link_refused(r, why);
	params[0] = req_id(r, link_id);
	err = req_query(r, sql_link_use, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) /* a twin request was first */
		return link_refused(r, "This sign-in link has been used "
				       "already. Ask for a new one below.");
	contact = db_int(res, 0, 0);
	if (r->auth.session_id > 0) {
		params[0] = req_id(r, r->auth.session_id);
		err = req_query(r, sql_session_drop, 1, params, NULL);
		if (err != TD_OK)
			return err;
	}
	if (!auth_new_token(token) || !auth_new_token(csrf))
		return req_fail(r, TD_ESYS, "cannot make a session token");
	params[0] = req_id(r, contact);
	params[1] = auth_token_hash(r, token);
	params[2] = csrf;
	params[3] = arena_printf(r->arena, "%d", SESSION_HOURS);
	params[4] = r->remote_addr;
	params[5] = r->user_agent;
	err = req_query(r, sql_session_new, 6, params, &res);
	if (err != TD_OK)
		return err;
	r->auth.kind = AUTH_PORTAL;
	r->auth.session_id = db_int(res, 0, 0);
	r->auth.contact_id = contact;
	r->auth.csrf = arena_strdup(r->arena, csrf);
	params[0] = req_id(r, contact);
	err = req_query(r, sql_contact_login, 1, params, &res);
	if (err != TD_OK)
		return err;
	r->auth.email = arena_strdup(r->arena, db_text(res, 0, 0));
	req_header(r, "Set-Cookie",
		   arena_printf(r->arena, "%s=%" PRId64 ".%s%s", PORTAL_COOKIE,
				p.tenant_id, token,
				cookie_attrs(r, 3600L * SESSION_HOURS)));
	err = audit_write(r, "portal.login", "contact", contact, NULL, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set_new(req_view(r), "csrf",
				    json_string(r->auth.csrf));
		return TD_OK;
	}
	r->redirect = p.base;
	return TD_OK;
}

/* POST /portal/:slug/logout */
enum td_err portal_logout(struct req *r)
{
	struct portal p;
	bool done;
	const char *params[1];
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	clear_cookie(r);
	r->redirect = arena_printf(r->arena, "%s/login", p.base);
	if (!p.signed_in)
		return TD_OK;
	params[0] = req_id(r, r->auth.session_id);
	err = req_query(r, sql_session_drop, 1, params, NULL);
	if (err != TD_OK)
		return err;
	err = audit_write(r, "portal.logout", "contact", r->auth.contact_id,
			  NULL, NULL);
	if (err == TD_OK && r->want_json) {
		r->redirect = NULL;
		r->status = 204;
	}
	return err;
}

static const char *status_label(struct req *r, const char *key)
{
	return ticketctx_status_label(r, ticketctx_status_parse(key));
}

static json_t *ticket_row(struct req *r, const struct portal *p, PGresult *res,
			  int i)
{
	int64_t id = db_int(res, i, 0);

	return json_pack(
		"{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id",
		(json_int_t)id, "ref",
		arena_printf(r->arena, "T-%" PRId64, db_int(res, i, 1)),
		"subject", db_text(res, i, 2), "status", db_text(res, i, 3),
		"status_label", status_label(r, db_text(res, i, 3)), "priority",
		(json_int_t)db_int(res, i, 4), "priority_label",
		ticketctx_priority_label((int)db_int(res, i, 4)), "url",
		arena_printf(r->arena, "%s/tickets/%" PRId64, p->base, id));
}

/* GET /portal/:slug — the contact's tickets and contract. */
/* The client's issued invoices for its admins: number, dates, balance. */
static enum td_err add_invoices(struct req *r, const struct portal *p)
{
	const char *params[1] = { req_id(r, r->auth.client_id) };
	json_t *list = json_array();
	PGresult *res;
	enum td_err err;
	int i, n;

	json_object_set_new(req_view(r), "invoices", list);
	err = req_query(r, sql_invoices, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list,
			json_pack(
				"{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}",
				"id", (json_int_t)db_int(res, i, 0), "number",
				db_text(res, i, 1), "issued_on",
				db_text(res, i, 2), "due_on",
				db_text(res, i, 3), "total", db_text(res, i, 4),
				"balance", db_text(res, i, 5), "currency",
				db_text(res, i, 6), "overdue",
				db_bool(res, i, 7), "pdf",
				arena_printf(r->arena,
					     "%s/invoices/%" PRId64 "/pdf",
					     p->base, db_int(res, i, 0))));
	json_object_set_new(req_view(r), "has_invoices", json_boolean(n > 0));
	return TD_OK;
}

enum td_err portal_home(struct req *r)
{
	struct portal p;
	bool done;
	const char *params[3];
	PGresult *res;
	json_t *list, *row, *block;
	int i;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	scope_params(r, &p, params);
	err = req_query(r, sql_tickets, 3, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		row = ticket_row(r, &p, res, i);
		json_object_set_new(row, "updated_at",
				    json_string(db_text(res, i, 5)));
		if (*db_text(res, i, 6) != '\0')
			json_object_set_new(row, "raised_by",
					    json_string(db_text(res, i, 6)));
		json_object_set_new(
			row, "closed",
			json_boolean(!strcmp(db_text(res, i, 3), "closed")));
		json_array_append_new(list, row);
	}
	json_object_set_new(req_view(r), "tickets", list);
	json_object_set_new(req_view(r), "has_tickets",
			    json_boolean(json_array_size(list) > 0));
	err = contracts_block_json(r, r->auth.client_id, req_view(r));
	if (err != TD_OK)
		return err;
	block = json_object_get(req_view(r), "block");
	if (block != NULL)
		json_object_del(block, "url"); /* a staff page */
	if (p.admin) {
		err = add_invoices(r, &p);
		if (err != TD_OK)
			return err;
	}
	set_page(r, "Support requests", "portal/home");
	return TD_OK;
}

/*
 * GET /portal/:slug/invoices/:id/pdf — an issued invoice of the contact's
 * client, for its client admins; 404 for anything else.
 */
enum td_err portal_invoice_pdf(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[2] = { req_id(r, id), NULL };
	struct portal p;
	PGresult *res;
	bool done;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	params[1] = req_id(r, r->auth.client_id);
	if (!p.admin)
		return req_fail(r, TD_ENOENT, "no invoice %" PRId64, id);
	err = req_query(r, sql_invoice_of, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no invoice %" PRId64, id);
	return invoices_pdf_of(r, id);
}

static json_t *priority_choices(int selected)
{
	static const int offered[] = { 2, 3, 4 }; /* P1 is the desk's call */
	json_t *out = json_array();
	size_t i;

	for (i = 0; i < sizeof(offered) / sizeof(offered[0]); i++)
		json_array_append_new(
			out,
			json_pack("{s:i, s:s, s:b}", "value", offered[i],
				  "label", ticketctx_priority_label(offered[i]),
				  "selected", offered[i] == selected));
	return out;
}

/* GET /portal/:slug/tickets/new */
enum td_err portal_ticket_new(struct req *r)
{
	struct portal p;
	bool done;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	json_object_set_new(req_view(r), "priorities", priority_choices(3));
	set_page(r, "New request", "portal/new");
	return TD_OK;
}

/* Bytes as bytea's hex input form, "\x0a1b...". */
static const char *bytea_hex(struct req *r, const unsigned char *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *out = arena_alloc_raw(r->arena, 2 * n + 3), *o = out;
	size_t i;

	*o++ = '\\';
	*o++ = 'x';
	for (i = 0; i < n; i++) {
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return out;
}

/* A stored type for the bytes; anything unknown is only ever downloaded. */
static const char *file_type(const struct http_file *f)
{
	if (f->len >= 8 && !memcmp(f->data, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (f->len >= 3 && !memcmp(f->data, "\xff\xd8\xff", 3))
		return "image/jpeg";
	if (f->len >= 5 && !memcmp(f->data, "%PDF-", 5))
		return "application/pdf";
	return "application/octet-stream";
}

/* A file name fit to store: no control characters, at most 200 bytes. */
static const char *file_name(struct req *r, const char *name)
{
	char *s;
	size_t i, n;

	if (name == NULL || *name == '\0')
		return "file";
	n = strlen(name);
	if (n > 200 || !http_utf8_valid(name, n))
		return "file";
	s = arena_strdup(r->arena, name);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			s[i] = '_';
	return s;
}

/* Stores the request's "file" fields on ticket (and comment when > 0). */
static enum td_err store_files(struct req *r, int64_t ticket, int64_t comment,
			       json_t *names)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const struct http_file *f;
	const char *params[6], *sha, *name;
	enum td_err err;
	size_t i;

	for (i = 0; i < r->files.n; i++) {
		f = &r->files.v[i];
		if (strcmp(f->field, "file") || f->len == 0)
			continue;
		if (f->len > r->ctx->conf->max_upload)
			return req_fail(r, TD_ETOOBIG,
					"'%s' is larger than %zu bytes",
					f->filename, r->ctx->conf->max_upload);
		if (!EVP_Digest(f->data, f->len, md, &mdlen, EVP_sha256(),
				NULL))
			return req_fail(r, TD_ESYS, "cannot hash a file");
		sha = bytea_hex(r, md, mdlen);
		params[0] = sha;
		params[1] = arena_printf(r->arena, "%zu", f->len);
		params[2] = bytea_hex(r, f->data, f->len);
		err = req_query(r, sql_blob_new, 3, params, NULL);
		if (err != TD_OK)
			return err;
		name = file_name(r, f->filename);
		params[0] = req_id(r, ticket);
		params[1] = comment > 0 ? req_id(r, comment) : NULL;
		params[2] = sha;
		params[3] = name;
		params[4] = file_type(f);
		params[5] = arena_printf(r->arena, "%zu", f->len);
		err = req_query(r, sql_attachment_new, 6, params, NULL);
		if (err != TD_OK)
			return err;
		json_array_append_new(names, json_string(name));
	}
	return TD_OK;
}

/* POST /portal/:slug/tickets — a new request from the contact. */
enum td_err portal_ticket_create(struct req *r)
{
	struct portal p;
	bool done;
	struct ticket_new n;
	const char *subject, *description, *prio;
	int priority = 3;
	int64_t id, number;
	json_t *names;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	subject = form_text(r, "subject");
	description = form_text(r, "description");
	prio = form_text(r, "priority");
	if (*subject == '\0')
		form_error(r, "subject", "say in a few words what you need");
	else if (http_utf8_len(subject) > SUBJECT_MAX)
		form_error(r, "subject", "use at most 300 characters");
	if (strlen(description) > BODY_MAX)
		form_error(r, "description", "use at most 100000 characters");
	if (*prio != '\0') {
		if (!strcmp(prio, "2") || !strcmp(prio, "3") ||
		    !strcmp(prio, "4"))
			priority = prio[0] - '0';
		else
			form_error(r, "priority", "choose High, Normal or Low");
	}
	if (form_has_errors(r)) {
		static const char *const keep[] = { "subject", "description",
						    "priority", NULL };

		json_object_set_new(req_view(r), "priorities",
				    priority_choices(priority));
		set_page(r, "New request", "portal/new");
		return form_reject(r, "portal/new", keep);
	}
	memset(&n, 0, sizeof(n));
	n.subject = subject;
	n.description = description;
	n.client_id = r->auth.client_id;
	n.contact_id = r->auth.contact_id;
	n.source = "portal";
	n.priority = priority;
	err = ticketctx_create(r, &n, &id, &number);
	if (err != TD_OK)
		return err;
	names = json_array();
	req_own_json(r, names);
	err = store_files(r, id, 0, names);
	if (err == TD_OK && json_array_size(names) > 0)
		err = audit_write(r, "ticket.attach", "ticket", id, NULL,
				  json_pack("{s:O}", "files", names));
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		json_object_set_new(
			req_view(r), "ticket",
			json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id,
				  "ref",
				  arena_printf(r->arena, "T-%" PRId64, number),
				  "subject", subject, "url",
				  arena_printf(r->arena, "%s/tickets/%" PRId64,
					       p.base, id)));
		return TD_OK;
	}
	form_flash(r, "ok",
		   arena_printf(r->arena,
				"Thank you: your request is T-%" PRId64 ".",
				number));
	r->redirect = arena_printf(r->arena, "%s/tickets/%" PRId64, p.base, id);
	return TD_OK;
}

/* Loads ticket :id when the contact may see it; TD_ENOENT otherwise. */
static enum td_err load_ticket(struct req *r, const struct portal *p, bool lock,
			       PGresult **res)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[4];
	enum td_err err;

	params[0] = req_id(r, id);
	scope_params(r, p, params + 1);
	err = req_query(r, lock ? sql_ticket_lock : sql_ticket, 4, params, res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, id);
	return TD_OK;
}

/* GET /portal/:slug/tickets/:id — public comments and files only. */
enum td_err portal_ticket_show(struct req *r)
{
	struct portal p;
	bool done;
	const char *params[1];
	PGresult *t, *res;
	json_t *ticket, *list;
	int64_t id;
	int i;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	err = load_ticket(r, &p, false, &t);
	if (err != TD_OK)
		return err;
	id = db_int(t, 0, 0);
	ticket = json_pack(
		"{s:I, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id",
		(json_int_t)id, "ref",
		arena_printf(r->arena, "T-%" PRId64, db_int(t, 0, 1)),
		"subject", db_text(t, 0, 2), "status", db_text(t, 0, 4),
		"status_label", status_label(r, db_text(t, 0, 4)), "priority",
		(json_int_t)db_int(t, 0, 5), "priority_label",
		ticketctx_priority_label((int)db_int(t, 0, 5)), "url",
		arena_printf(r->arena, "%s/tickets/%" PRId64, p.base, id));
	json_object_set_new(ticket, "description",
			    json_string(db_text(t, 0, 3)));
	json_object_set_new(ticket, "created_at",
			    json_string(db_text(t, 0, 7)));
	if (*db_text(t, 0, 8) != '\0')
		json_object_set_new(ticket, "raised_by",
				    json_string(db_text(t, 0, 8)));
	json_object_set_new(ticket, "closed",
			    json_boolean(!strcmp(db_text(t, 0, 4), "closed")));
	json_object_set_new(
		ticket, "can_close",
		json_boolean(
			strcmp(db_text(t, 0, 4), "closed") &&
			(p.admin || (!db_isnull(t, 0, 6) &&
				     db_int(t, 0, 6) == r->auth.contact_id))));
	params[0] = req_id(r, id);
	err = req_query(r, sql_comments, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s, s:b}", "id",
				  (json_int_t)db_int(res, i, 0), "body",
				  db_text(res, i, 1), "at", db_text(res, i, 2),
				  "author", db_text(res, i, 3), "from_client",
				  db_bool(res, i, 4)));
	json_object_set_new(ticket, "comments", list);
	err = req_query(r, sql_attachments, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:I, s:s}", "id",
				  (json_int_t)db_int(res, i, 0), "filename",
				  db_text(res, i, 1), "size",
				  (json_int_t)db_int(res, i, 2), "url",
				  arena_printf(r->arena,
					       "%s/attachments/%" PRId64,
					       p.base, db_int(res, i, 0))));
	json_object_set_new(ticket, "attachments", list);
	json_object_set_new(ticket, "has_attachments",
			    json_boolean(json_array_size(list) > 0));
	json_object_set_new(req_view(r), "ticket", ticket);
	set_page(r,
		 arena_printf(r->arena, "T-%" PRId64 " %s", db_int(t, 0, 1),
			      db_text(t, 0, 2)),
		 "portal/ticket");
	return TD_OK;
}

/*
 * POST /portal/:slug/tickets/:id/comments — a public reply from the
 * contact: client activity, so a waiting ticket goes back in progress
 * (and its SLA clock resumes).
 */
enum td_err portal_reply(struct req *r)
{
	struct portal p;
	bool done;
	const char *body, *params[4];
	PGresult *t, *res;
	int64_t id, comment;
	json_t *names;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	err = load_ticket(r, &p, true, &t);
	if (err != TD_OK)
		return err;
	id = db_int(t, 0, 0);
	if (!strcmp(db_text(t, 0, 4), "closed"))
		return req_fail(r, TD_ECONFLICT,
				"T-%" PRId64 " is closed: open a new request "
				"instead",
				db_int(t, 0, 1));
	body = form_text(r, "body");
	if (*body == '\0')
		form_error(r, "body", "write a reply");
	else if (strlen(body) > BODY_MAX)
		form_error(r, "body", "use at most 100000 characters");
	if (form_has_errors(r)) {
		r->redirect = NULL;
		if (r->want_json)
			return form_reject(r, "portal/ticket", NULL);
		form_flash(r, "error", "Write a reply before sending it.");
		r->redirect = arena_printf(r->arena, "%s/tickets/%" PRId64,
					   p.base, id);
		return TD_OK;
	}
	params[0] = req_id(r, id);
	params[1] = req_id(r, r->auth.contact_id);
	params[2] = r->auth.name;
	params[3] = body;
	err = req_query(r, sql_comment_new, 4, params, &res);
	if (err != TD_OK)
		return err;
	comment = db_int(res, 0, 0);
	names = json_array();
	req_own_json(r, names);
	err = store_files(r, id, comment, names);
	if (err == TD_OK)
		err = ticketctx_client_activity(r, id);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err == TD_OK)
		err = notify_assignee(
			r, id, "client_reply",
			arena_printf(r->arena, "%s replied", r->auth.name),
			body);
	if (err == TD_OK)
		err = audit_write(r, "comment.create", "ticket", id, NULL,
				  json_pack("{s:I, s:b, s:O}", "comment_id",
					    (json_int_t)comment, "public", 1,
					    "files", names));
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		json_object_set_new(req_view(r), "comment",
				    json_pack("{s:I, s:s}", "id",
					      (json_int_t)comment, "body",
					      body));
		return TD_OK;
	}
	form_flash(r, "ok", "Your reply was sent.");
	r->redirect = arena_printf(r->arena, "%s/tickets/%" PRId64, p.base, id);
	return TD_OK;
}

/*
 * POST /portal/:slug/tickets/:id/close — the contact's own ticket (any of
 * the client's for a client admin). A running staff timer is discarded.
 */
enum td_err portal_close(struct req *r)
{
	struct portal p;
	bool done;
	const char *params[1];
	PGresult *t;
	int64_t id;
	int discarded = 0;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	err = load_ticket(r, &p, true, &t);
	if (err != TD_OK)
		return err;
	id = db_int(t, 0, 0);
	if (!p.admin &&
	    (db_isnull(t, 0, 6) || db_int(t, 0, 6) != r->auth.contact_id))
		return req_fail(r, TD_EFORBID,
				"only the person who raised it or a client "
				"admin can close T-%" PRId64,
				db_int(t, 0, 1));
	if (!strcmp(db_text(t, 0, 4), "closed"))
		return req_fail(r, TD_ECONFLICT,
				"T-%" PRId64 " is closed already",
				db_int(t, 0, 1));
	params[0] = req_id(r, id);
	err = req_query(r, sql_close, 1, params, NULL);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	if (err == TD_OK)
		err = timers_discard_for_ticket(r, id, &discarded);
	if (err == TD_OK)
		err = ticketctx_note(
			r, id,
			arena_printf(r->arena,
				     "Closed by %s in the client portal.%s",
				     r->auth.name,
				     discarded > 0 ?
					     " A running timer was discarded." :
					     ""));
	if (err == TD_OK)
		err = audit_write(r, "ticket.close", "ticket", id, NULL,
				  json_pack("{s:s, s:s, s:i}", "status",
					    "closed", "via", "portal",
					    "timers_discarded", discarded));
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set_new(req_view(r), "ticket",
				    json_pack("{s:I, s:s}", "id",
					      (json_int_t)id, "status",
					      "closed"));
		return TD_OK;
	}
	form_flash(r, "ok", "The request is closed. Thank you.");
	r->redirect = arena_printf(r->arena, "%s/tickets/%" PRId64, p.base, id);
	return TD_OK;
}

/* RFC 6266 with an ASCII fallback: "attachment; filename=...". */
static const char *disposition(struct req *r, const char *name)
{
	struct sbuf sb;
	const char *c;

	sbuf_init(&sb, r->arena, 3 * strlen(name) + 64);
	sbuf_adds(&sb, "attachment; filename=\"");
	for (c = name; *c != '\0'; c++) {
		if (((unsigned char)*c & 0xc0) == 0x80)
			continue;
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f ||
		    *c == '"' || *c == '\\' || *c == '%')
			sbuf_addch(&sb, '_');
		else
			sbuf_addch(&sb, *c);
	}
	sbuf_adds(&sb, "\"; filename*=UTF-8''");
	http_url_encode(&sb, name);
	return sbuf_cstr(&sb);
}

static void send_bytes(struct req *r, PGresult *res, int col, const char *type)
{
	size_t len;
	unsigned char *raw = PQunescapeBytea(
		(const unsigned char *)db_text(res, 0, col), &len);
	char *copy;

	if (raw == NULL)
		len = 0;
	copy = arena_alloc_raw(r->arena, len + 1);
	if (raw != NULL) {
		memcpy(copy, raw, len);
		PQfreemem(raw);
	}
	r->body_out = copy;
	r->body_out_len = len;
	r->body_type = arena_strdup(r->arena, type);
	req_header(r, "X-Content-Type-Options", "nosniff");
	req_header(r, "Content-Security-Policy", "default-src 'none'; sandbox");
	req_header(r, "Cache-Control", "private");
}

/* GET /portal/:slug/attachments/:id — always as a download. */
enum td_err portal_download(struct req *r)
{
	struct portal p;
	bool done;
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[4];
	PGresult *res;
	enum td_err err = enter(r, &p, true, &done);

	if (err != TD_OK || done)
		return err;
	params[0] = req_id(r, id);
	scope_params(r, &p, params + 1);
	err = req_query(r, sql_download, 4, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no attachment %" PRId64, id);
	send_bytes(r, res, 2, db_text(res, 0, 1));
	req_header(r, "Content-Disposition",
		   disposition(r, db_text(res, 0, 0)));
	return TD_OK;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 0;
}

/*
 * True when white text on "#rrggbb" is readable: its luma (ITU-R BT.601
 * weights, in integers) is at most 140 of 255.
 */
static bool dark_enough(const char *colour)
{
	int rgb[3], i;

	if (colour == NULL || strlen(colour) != 7 || colour[0] != '#')
		return false;
	for (i = 0; i < 3; i++)
		rgb[i] = hex_digit(colour[1 + 2 * i]) * 16 +
			 hex_digit(colour[2 + 2 * i]);
	return 299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2] <= 140 * 1000;
}

/* The portal's own layout; the rest comes from app.css. */
static const char portal_css[] =
	".portal-body{margin:0;min-height:100vh;display:flex;"
	"flex-direction:column}\n"
	".portal-top{display:flex;flex-wrap:wrap;align-items:center;"
	"justify-content:space-between;gap:.5rem 1.5rem;padding:.75rem 1rem;"
	"border-top:.375rem solid var(--portal-brand);"
	"border-bottom:1px solid var(--border)}\n"
	".portal-brand{display:flex;align-items:center;gap:.5rem;"
	"text-decoration:none;color:inherit;font-weight:700}\n"
	".portal-logo{max-height:2.5rem;max-width:12rem}\n"
	".portal-tag{color:var(--muted);font-weight:500}\n"
	".portal-nav{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem}\n"
	".portal-nav a,.portal-nav .linklike{min-height:2.75rem;"
	"display:inline-flex;align-items:center}\n"
	".portal-who{color:var(--muted);font-size:.875rem}\n"
	".portal-logout{margin:0}\n"
	".portal-main{flex:1;width:100%;max-width:52rem;margin:0 auto;"
	"padding:1rem 1rem 2.5rem;box-sizing:border-box}\n"
	".portal-title{font-size:1.5rem;margin:.5rem 0 1rem}\n"
	".portal-card{padding:1rem;margin:0 0 1rem;border:1px solid var(--border);"
	"border-radius:var(--radius);background:var(--surface)}\n"
	".portal-text{white-space:pre-wrap;overflow-wrap:anywhere}\n"
	".portal-tickets{list-style:none;margin:0;padding:0}\n"
	".portal-ticket{display:flex;flex-wrap:wrap;align-items:center;gap:.25rem .75rem;"
	"padding:.75rem 0;border-bottom:1px solid var(--border)}\n"
	".portal-ticket a{font-weight:600;min-height:1.5rem}\n"
	".portal-ticket.is-closed a{font-weight:400}\n"
	".portal-ref{color:var(--muted);font-variant-numeric:tabular-nums}\n"
	".portal-comment{padding:.75rem 1rem;margin:0 0 .75rem;"
	"border-left:.25rem solid var(--border)}\n"
	".portal-comment.is-client{border-left-color:var(--portal-brand)}\n"
	".portal-welcome{font-size:1.05rem}\n"
	".portal-footer{padding:1rem;border-top:1px solid var(--border);"
	"color:var(--muted);font-size:.875rem;text-align:center}\n"
	".portal-main textarea,.portal-main input[type=text],"
	".portal-main input[type=email],.portal-main select{width:100%;"
	"box-sizing:border-box}\n";

/* GET /portal/:slug/brand.css — the tenant's colour (no inline styles). */
enum td_err portal_brand_css(struct req *r)
{
	struct portal p;
	bool done;
	const char *colour;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	colour = json_string_value(json_object_get(p.view, "colour"));
	/*
	 * The brand colour always marks the top bar. It becomes the accent
	 * (links, buttons with white text) only when white text on it keeps
	 * its contrast, and not in dark mode, where app.css's own accent is
	 * made for the dark background.
	 */
	r->body_out = arena_printf(
		r->arena,
		":root{--portal-brand:%s}\n"
		"%s%s%s%s%s"
		"%s",
		colour,
		dark_enough(colour) ?
			"@media not all and (prefers-color-scheme: dark){"
			":root{--accent:" :
			"",
		dark_enough(colour) ? colour : "",
		dark_enough(colour) ? ";--accent-hover:" : "",
		dark_enough(colour) ? colour : "",
		dark_enough(colour) ? ";--accent-text:#ffffff}}\n" : "",
		portal_css);
	r->body_out_len = strlen(r->body_out);
	r->body_type = "text/css; charset=utf-8";
	return TD_OK;
}

/* GET /portal/:slug/logo */
enum td_err portal_logo(struct req *r)
{
	struct portal p;
	bool done;
	PGresult *res;
	enum td_err err = enter(r, &p, false, &done);

	if (err != TD_OK || done)
		return err;
	err = req_query(r, sql_logo, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no logo");
	send_bytes(r, res, 0, db_text(res, 0, 1));
	return TD_OK;
}

/* ---- The staff side ---- */

/* GET /clients/:id/portal — who may use the portal, and since when. */
enum td_err portal_staff_page(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1];
	struct clientctx c;
	PGresult *res;
	json_t *list;
	int i;
	enum td_err err = clientctx_load(r, id, "portal", &c);

	if (err != TD_OK)
		return err;
	params[0] = req_id(r, id);
	err = req_query(r, sql_staff_contacts, 1, params, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++) {
		int64_t cid = db_int(res, i, 0);

		json_array_append_new(
			list,
			json_pack(
				"{s:I, s:s, s:s, s:b, s:b, s:b, s:s?, s:I, s:b, s:s}",
				"id", (json_int_t)cid, "name",
				db_text(res, i, 1), "email", db_text(res, i, 2),
				"has_email", *db_text(res, i, 2) != '\0',
				"portal", db_bool(res, i, 3), "client_admin",
				db_bool(res, i, 4), "last_login",
				db_isnull(res, i, 5) ? NULL :
						       db_text(res, i, 5),
				"sessions", (json_int_t)db_int(res, i, 6),
				"signed_in", db_int(res, i, 6) > 0, "action",
				arena_printf(r->arena,
					     "/clients/%" PRId64
					     "/portal/%" PRId64,
					     id, cid)));
	}
	json_object_set_new(req_view(r), "contacts", list);
	json_object_set_new(
		req_view(r), "can_manage",
		json_boolean(r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)));
	json_object_set_new(req_view(r), "portal_url",
			    json_string(arena_printf(r->arena, "%s/portal/%s",
						     r->ctx->conf->base_url,
						     r->auth.tenant_slug)));
	json_object_set_new(
		req_view(r), "title",
		json_string(arena_printf(r->arena, "%s · portal", c.name)));
	r->view_name = "portal/staff";
	return TD_OK;
}

/* The contact :contact_id of client :id, locked; TD_ENOENT otherwise. */
static enum td_err staff_contact(struct req *r, PGresult **res)
{
	const char *params[2] = { req_id(r,
					 route_arg_int(&r->args, "contact_id")),
				  req_id(r, route_arg_int(&r->args, "id")) };
	enum td_err err = req_query(r, sql_staff_contact, 2, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no such contact at this client");
	return TD_OK;
}

static enum td_err staff_done(struct req *r, const char *flash)
{
	if (r->want_json) {
		json_object_set_new(req_view(r), "ok", json_true());
		json_object_set_new(req_view(r), "message", json_string(flash));
		return TD_OK;
	}
	form_flash(r, "ok", flash);
	r->redirect = arena_printf(r->arena, "/clients/%" PRId64 "/portal",
				   route_arg_int(&r->args, "id"));
	return TD_OK;
}

/* POST /clients/:id/portal/:contact_id/link — mails a sign-in link. */
enum td_err portal_staff_link(struct req *r)
{
	struct portal p;
	PGresult *res;
	int64_t cid;
	enum td_err err = staff_contact(r, &res);

	if (err != TD_OK)
		return err;
	cid = db_int(res, 0, 0);
	if (!db_bool(res, 0, 2))
		return req_fail(r, TD_ECONFLICT,
				"give this contact portal access first");
	memset(&p, 0, sizeof(p));
	p.tenant_id = r->auth.tenant_id;
	p.name = r->auth.tenant_name;
	p.slug = r->auth.tenant_slug;
	p.base = arena_printf(r->arena, "/portal/%s", p.slug);
	err = issue_link(
		r, &p, req_id(r, cid),
		r->auth.kind == AUTH_USER ? req_id(r, r->auth.user_id) : NULL);
	if (err == TD_OK)
		err = audit_write(r, "portal.link_sent", "contact", cid, NULL,
				  NULL);
	if (err != TD_OK)
		return err;
	return staff_done(r, arena_printf(r->arena,
					  "A sign-in link is on its way to %s.",
					  db_text(res, 0, 1)));
}

/* POST /clients/:id/portal/:contact_id/grant — access, and the admin role. */
enum td_err portal_staff_grant(struct req *r)
{
	PGresult *res;
	const char *params[2];
	bool admin = form_flag(r, "client_admin");
	int64_t cid;
	enum td_err err = staff_contact(r, &res);

	if (err != TD_OK)
		return err;
	cid = db_int(res, 0, 0);
	if (*db_text(res, 0, 1) == '\0')
		return req_fail(r, TD_EINPUT,
				"a portal user needs an email address to sign "
				"in with");
	params[0] = req_id(r, cid);
	params[1] = admin ? "true" : "false";
	err = req_query(r, sql_staff_grant, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "contact.portal_grant", "contact", cid,
				  json_pack("{s:b, s:b}", "portal",
					    db_bool(res, 0, 2), "client_admin",
					    db_bool(res, 0, 3)),
				  json_pack("{s:b, s:b}", "portal", 1,
					    "client_admin", admin));
	if (err != TD_OK)
		return err;
	return staff_done(r, admin ? "Portal access given, as client admin." :
				     "Portal access given.");
}

/* POST /clients/:id/portal/:contact_id/revoke — sessions end at once. */
enum td_err portal_staff_revoke(struct req *r)
{
	PGresult *res;
	const char *params[1];
	int64_t cid;
	enum td_err err = staff_contact(r, &res);

	if (err != TD_OK)
		return err;
	cid = db_int(res, 0, 0);
	params[0] = req_id(r, cid);
	err = req_query(r, sql_staff_revoke, 1, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_sessions_drop_contact, 1, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_links_void, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(
			r, "contact.portal_revoke", "contact", cid,
			json_pack("{s:b}", "portal", db_bool(res, 0, 2)),
			json_pack("{s:b}", "portal", 0));
	if (err != TD_OK)
		return err;
	return staff_done(r,
			  "Portal access revoked; their sessions have ended.");
}

/* ---- Settings → Portal ---- */

static enum td_err settings_view(struct req *r)
{
	PGresult *res;
	json_t *list;
	int i;
	enum td_err err = req_query(r, sql_settings, 0, NULL, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no workspace");
	json_object_set_new(req_view(r), "portal_settings",
			    json_pack("{s:s, s:s, s:s, s:s, s:s}", "url",
				      arena_printf(r->arena, "%s/portal/%s",
						   r->ctx->conf->base_url,
						   db_text(res, 0, 0)),
				      "welcome_text", db_text(res, 0, 1),
				      "colour", db_text(res, 0, 2),
				      "support_email", db_text(res, 0, 3),
				      "support_phone", db_text(res, 0, 4)));
	err = req_query(r, sql_hosts, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(list,
				      json_pack("{s:I, s:s}", "id",
						(json_int_t)db_int(res, i, 0),
						"host", db_text(res, i, 1)));
	json_object_set_new(req_view(r), "hosts", list);
	view_settings_page(r, "Portal", "portal/settings", "/settings/portal");
	return TD_OK;
}

/* GET /settings/portal */
enum td_err portal_settings(struct req *r)
{
	return settings_view(r);
}

/* POST /settings/portal — the welcome text. */
enum td_err portal_settings_save(struct req *r)
{
	const char *text = form_text(r, "welcome_text"), *params[1];
	enum td_err err;

	if (http_utf8_len(text) > 2000)
		form_error(r, "welcome_text", "use at most 2000 characters");
	if (form_has_errors(r)) {
		static const char *const keep[] = { "welcome_text", NULL };

		err = settings_view(r);
		if (err != TD_OK)
			return err;
		return form_reject(r, "portal/settings", keep);
	}
	params[0] = text;
	err = req_query(r, sql_settings_save, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "portal.settings", "tenant",
				  r->auth.tenant_id, NULL,
				  json_pack("{s:s}", "welcome_text", text));
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return settings_view(r);
	form_flash(r, "ok", "Portal settings saved.");
	r->redirect = "/settings/portal";
	return TD_OK;
}

/* A host name as DNS writes it: lower case labels, at least one dot. */
static bool host_ok(const char *h)
{
	size_t n = strlen(h), label = 0, i;
	bool dot = false;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			dot = true;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return dot && label > 0 && h[n - 1] != '-';
}

/* POST /settings/portal/hosts — serve the portal at a host name. */
enum td_err portal_host_add(struct req *r)
{
	char *host = arena_strdup(r->arena, form_text(r, "host")), *c;
	const char *params[1];
	PGresult *res;
	enum td_err err;

	for (c = host; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (!host_ok(host))
		form_error(r, "host",
			   "enter a host name such as support.example.com");
	else if (is_own_host(r, host))
		form_error(r, "host",
			   "this is the address of tallydesk itself");
	if (!form_has_errors(r)) {
		params[0] = host;
		err = req_query(r, sql_host_new, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			form_error(r, "host",
				   "this host name is in use already");
	}
	if (form_has_errors(r)) {
		static const char *const keep[] = { "host", NULL };

		err = settings_view(r);
		if (err != TD_OK)
			return err;
		return form_reject(r, "portal/settings", keep);
	}
	err = audit_write(r, "portal.host_add", "tenant_host",
			  db_int(res, 0, 0), NULL,
			  json_pack("{s:s}", "host", host));
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return settings_view(r);
	}
	form_flash(r, "ok",
		   arena_printf(r->arena,
				"The portal now answers at %s once DNS points "
				"it here.",
				host));
	r->redirect = "/settings/portal";
	return TD_OK;
}

/* POST /settings/portal/hosts/:id/delete */
enum td_err portal_host_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err = req_query(r, sql_host_drop, 1, params, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no host name %" PRId64, id);
	err = audit_write(r, "portal.host_delete", "tenant_host", id,
			  json_pack("{s:s}", "host", db_text(res, 0, 0)), NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return settings_view(r);
	form_flash(r, "ok", "Host name removed.");
	r->redirect = "/settings/portal";
	return TD_OK;
}
