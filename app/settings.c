/* settings.c: workspace, users, API keys, security and audit pages */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "qr.h"
#include "req.h"
#include "view.h"
#include "sbuf.h"
#include "settings.h"
#include "totp.h"
#include "banned.h"

#define LOGO_MAX   (512 * 1024) /* the CHECK on tenants.logo */
#define AUDIT_PAGE 50
#define QR_PX	   200

static const char sql_tenant[] =
	"SELECT name, currency, time_zone, locale, invoice_prefix,"
	" brand_colour, support_email, support_phone, logo IS NOT NULL"
	" FROM tenants WHERE id = app_tenant()";
static const char sql_tax_rates[] =
	"SELECT id, name, trim_scale(rate)::text, is_default FROM tax_rates"
	" WHERE tenant_id = app_tenant() AND NOT archived"
	" ORDER BY lower(name), id";
static const char sql_tz_exists[] =
	"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)";
static const char sql_tenant_update[] =
	"UPDATE tenants SET name = $1, currency = $2, time_zone = $3,"
	" locale = $4, invoice_prefix = $5, brand_colour = $6,"
	" support_email = $7, support_phone = $8, updated_at = now()"
	" WHERE id = app_tenant()";
static const char sql_logo[] =
	"SELECT logo, logo_type FROM tenants WHERE id = app_tenant()"
	" AND logo IS NOT NULL";
static const char sql_logo_meta[] =
	"SELECT logo_type, octet_length(logo) FROM tenants"
	" WHERE id = app_tenant()";
static const char sql_logo_set[] =
	"UPDATE tenants SET logo = $1::bytea, logo_type = $2, updated_at = now()"
	" WHERE id = app_tenant()";
static const char sql_tax_by_name[] =
	"SELECT archived FROM tax_rates WHERE tenant_id = app_tenant()"
	" AND lower(name) = lower($1)";
static const char sql_tax_undefault[] =
	"UPDATE tax_rates SET is_default = false WHERE tenant_id = app_tenant()"
	" AND is_default";
static const char sql_tax_new[] =
	"INSERT INTO tax_rates (tenant_id, name, rate, is_default)"
	" VALUES (app_tenant(), $1, $2, $3) RETURNING id, trim_scale(rate)::text";
static const char sql_tax_get[] =
	"SELECT name, trim_scale(rate)::text, is_default, archived FROM tax_rates"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_tax_archive[] =
	"UPDATE tax_rates SET archived = true, is_default = false"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_users[] =
	"SELECT u.id, u.name, u.email, u.role, u.active,"
	" coalesce(to_char(u.last_login_at AT TIME ZONE t.time_zone,"
	" 'YYYY-MM-DD HH24:MI'), '')"
	" FROM users u JOIN tenants t ON t.id = u.tenant_id"
	" WHERE u.tenant_id = app_tenant() ORDER BY lower(u.name), u.id";
static const char sql_invites[] =
	"SELECT i.id, i.email, i.role, i.link,"
	" to_char(i.expires_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" CASE WHEN i.revoked_at IS NOT NULL THEN 'revoked'"
	" WHEN i.used_at IS NOT NULL THEN 'used'"
	" WHEN i.expires_at <= now() THEN 'expired' ELSE 'pending' END"
	" FROM invites i JOIN tenants t ON t.id = i.tenant_id"
	" WHERE i.tenant_id = app_tenant()"
	" ORDER BY i.created_at DESC, i.id DESC LIMIT 50";
static const char sql_resets[] =
	"SELECT u.email, p.link,"
	" to_char(p.expires_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI')"
	" FROM password_resets p"
	" JOIN users u ON u.tenant_id = p.tenant_id AND u.id = p.user_id"
	" JOIN tenants t ON t.id = p.tenant_id"
	" WHERE p.tenant_id = app_tenant() AND p.used_at IS NULL"
	" AND p.expires_at > now() AND u.active"
	" ORDER BY p.created_at DESC, p.id DESC";
static const char sql_user_by_email[] =
	"SELECT active FROM users WHERE tenant_id = app_tenant()"
	" AND lower(email) = lower($1)";
static const char sql_invite_pending[] =
	"SELECT 1 FROM invites WHERE tenant_id = app_tenant()"
	" AND lower(email) = lower($1) AND used_at IS NULL"
	" AND revoked_at IS NULL AND expires_at > now()";
static const char sql_invite_new[] =
	"INSERT INTO invites (tenant_id, email, role, token_hash, link,"
	" created_by, expires_at) VALUES (app_tenant(), $1, $2, $3, $4, $5,"
	" now() + interval '7 days') RETURNING id,"
	" to_char(expires_at AT TIME ZONE"
	" (SELECT time_zone FROM tenants WHERE id = app_tenant()),"
	" 'YYYY-MM-DD HH24:MI')";
static const char sql_outbox[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text)"
	" VALUES (app_tenant(), $1, $2, $3, $4)";
static const char sql_invite_revoke[] =
	"UPDATE invites SET revoked_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1 AND used_at IS NULL AND revoked_at IS NULL"
	" AND expires_at > now() RETURNING email";
static const char sql_invite_get[] =
	"SELECT email FROM invites WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_user_get[] =
	"SELECT name, email, role, active FROM users"
	" WHERE tenant_id = app_tenant() AND id = $1";
/*
 * Locks the active admins (in id order, so two requests cannot deadlock)
 * until the transaction ends: two admins demoting each other at once
 * cannot both see "there is another admin".
 */
static const char sql_admins_active[] =
	"SELECT count(*) FROM (SELECT id FROM users WHERE tenant_id = app_tenant()"
	" AND role = 'admin' AND active ORDER BY id FOR UPDATE) a";
static const char sql_user_role_set[] =
	"UPDATE users SET role = $2 WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_user_deactivate[] =
	"UPDATE users SET active = false, deactivated_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_user_reactivate[] =
	"UPDATE users SET active = true, deactivated_at = NULL"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_sessions_drop_user[] =
	"DELETE FROM sessions WHERE tenant_id = app_tenant() AND user_id = $1";
static const char sql_sessions_drop_others[] =
	"DELETE FROM sessions WHERE tenant_id = app_tenant() AND user_id = $1"
	" AND id <> $2";
static const char sql_apikeys[] =
	"SELECT k.id, k.name, k.role, k.prefix,"
	" to_char(k.created_at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" coalesce(to_char(k.last_used_at AT TIME ZONE t.time_zone,"
	" 'YYYY-MM-DD HH24:MI'), ''), k.revoked_at IS NOT NULL"
	" FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
	" WHERE k.tenant_id = app_tenant() ORDER BY k.created_at DESC, k.id DESC";
static const char sql_apikey_new[] =
	"INSERT INTO api_keys (tenant_id, name, role, prefix, key_hash,"
	" created_by) VALUES (app_tenant(), $1, $2, $3, $4, $5) RETURNING id";
static const char sql_apikey_revoke[] =
	"UPDATE api_keys SET revoked_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1 AND revoked_at IS NULL RETURNING name";
static const char sql_apikey_get[] =
	"SELECT name FROM api_keys WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_me[] =
	"SELECT email, password_hash, totp_enabled, totp_secret, totp_last_step"
	" FROM users WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_my_sessions[] =
	"SELECT s.id, to_char(s.created_at AT TIME ZONE t.time_zone,"
	" 'YYYY-MM-DD HH24:MI'), to_char(s.last_seen_at AT TIME ZONE"
	" t.time_zone, 'YYYY-MM-DD HH24:MI'), s.ip, s.user_agent"
	" FROM sessions s JOIN tenants t ON t.id = s.tenant_id"
	" WHERE s.tenant_id = app_tenant() AND s.user_id = $1"
	" AND s.expires_at > now()"
	" AND s.last_seen_at > now() - make_interval(mins => $2::int)"
	" ORDER BY s.last_seen_at DESC, s.id DESC";
static const char sql_password_set[] =
	"UPDATE users SET password_hash = $2, password_changed_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_totp_secret[] =
	"UPDATE users SET totp_secret = $2::bytea, totp_enabled = false"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_totp_on[] =
	"UPDATE users SET totp_enabled = true, totp_last_step = $2"
	" WHERE tenant_id = app_tenant() AND id = $1 AND NOT totp_enabled";
static const char sql_totp_off[] =
	"UPDATE users SET totp_enabled = false, totp_secret = NULL,"
	" totp_last_step = $2 WHERE tenant_id = app_tenant() AND id = $1";
/*
 * Every filter is a parameter that may be NULL: one plan, no SQL built.
 * The actor is shown by name (two tenants may share an email address),
 * and the actor filter matches the name, the email or the key's name.
 */
static const char sql_audit[] =
	"SELECT a.id, to_char(a.at AT TIME ZONE t.time_zone, 'YYYY-MM-DD HH24:MI'),"
	" to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" CASE WHEN u.id IS NOT NULL THEN u.name || ' (' || u.email || ')'"
	" WHEN k.id IS NOT NULL THEN 'API key ' || k.name ELSE a.actor END,"
	" a.action, coalesce(a.object_type, ''), a.object_id, a.ip,"
	" a.request_id, coalesce(a.before::text, ''), coalesce(a.after::text, '')"
	" FROM audit_log a JOIN tenants t ON t.id = a.tenant_id"
	" LEFT JOIN users u ON u.tenant_id = a.tenant_id AND u.id = a.actor_user_id"
	" LEFT JOIN api_keys k ON k.tenant_id = a.tenant_id"
	" AND k.id = a.actor_apikey_id"
	" WHERE a.tenant_id = app_tenant()"
	" AND ($1::text IS NULL OR a.action LIKE ($1 || '%') ESCAPE '\\')"
	" AND ($2::text IS NULL OR concat_ws(' ', a.actor, u.name, k.name)"
	" ILIKE ('%' || $2 || '%') ESCAPE '\\')"
	" AND ($3::text IS NULL OR a.object_type = $3)"
	" AND ($4::date IS NULL"
	" OR a.at >= ($4::date::timestamp AT TIME ZONE t.time_zone))"
	" AND ($5::date IS NULL"
	" OR a.at < (($5::date + 1)::timestamp AT TIME ZONE t.time_zone))"
	" AND ($6::bigint IS NULL OR a.id < $6)"
	" ORDER BY a.id DESC LIMIT $7::int";
/*
 * DISTINCT over the whole log reads every row; this walks the
 * (tenant_id, object_type, ...) index one value at a time instead.
 */
static const char sql_audit_types[] =
	"WITH RECURSIVE o (v) AS ("
	" SELECT min(object_type) FROM audit_log WHERE tenant_id = app_tenant()"
	" UNION ALL SELECT (SELECT min(object_type) FROM audit_log"
	" WHERE tenant_id = app_tenant() AND object_type > o.v)"
	" FROM o WHERE o.v IS NOT NULL)"
	" SELECT v FROM o WHERE v IS NOT NULL";

typedef enum td_err (*page_fn)(struct req *);

static const char *const workspace_fields[] = {
	"name",		 "currency",	   "time_zone",
	"locale",	 "invoice_prefix", "brand_colour",
	"support_email", "support_phone",  NULL
};

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/* What users.email's CHECK accepts: one '@' with something either side. */
static bool email_ok(const char *s)
{
	const char *at = strchr(s, '@'), *p;

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	if (strlen(s) > 254)
		return false;
	for (p = s; *p != '\0'; p++)
		if (isspace((unsigned char)*p))
			return false;
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "en" or "en-GB". */
static bool locale_ok(const char *s)
{
	if (!islower((unsigned char)s[0]) || !islower((unsigned char)s[1]))
		return false;
	if (s[2] == '\0')
		return true;
	return s[2] == '-' && isupper((unsigned char)s[3]) &&
	       isupper((unsigned char)s[4]) && s[5] == '\0';
}

static bool prefix_ok(const char *s)
{
	const char *p;

	if (strlen(s) > 20)
		return false;
	for (p = s; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '/' &&
		    *p != '_')
			return false;
	return true;
}

static bool colour_ok(const char *s)
{
	size_t i;

	if (s[0] != '#')
		return false;
	for (i = 1; i < 7; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[7] == '\0';
}

/*
 * A tax rate as typed: 0 <= rate < 100 with at most 4 decimals, checked as
 * text so it reaches numeric(7,4) exactly, never through a double.
 */
static bool rate_ok(const char *s)
{
	size_t ints = 0, significant = 0, decimals = 0;

	for (; is_digit(*s); s++, ints++)
		if (significant > 0 || *s != '0')
			significant++;
	if (ints == 0 || ints > 10 || significant > 2)
		return false;
	if (*s == '.') {
		for (s++; is_digit(*s); s++)
			decimals++;
		if (decimals == 0 || decimals > 4)
			return false;
	}
	return *s == '\0';
}

/* YYYY-MM-DD naming a real day. */
static bool date_ok(const char *s)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int y, m, d, i;
	bool leap;

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
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
	    (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (y < 1 || m < 1 || m > 12 || d < 1)
		return false;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1] + (m == 2 && leap);
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

/* Bytes as bytea's hex input form, "\x0a1b...", for a text parameter. */
static const char *bytea_hex(struct req *r, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char *out = arena_alloc_raw(r->arena, 2 * n + 3), *o = out;
	size_t i;

	*o++ = '\\';
	*o++ = 'x';
	for (i = 0; i < n; i++) {
		*o++ = hex[p[i] >> 4];
		*o++ = hex[p[i] & 15];
	}
	*o = '\0';
	return out;
}

static bool has_bytes(const unsigned char *p, size_t n, const char *needle)
{
	size_t k = strlen(needle), i;

	for (i = 0; k <= n && i <= n - k; i++)
		if (!memcmp(p + i, needle, k))
			return true;
	return false;
}

static bool starts_with(const unsigned char *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	return n >= k && !memcmp(p, s, k);
}

/* SVG text: after a BOM and spaces, "<svg", or an XML prolog and then <svg. */
static bool is_svg(const unsigned char *p, size_t n)
{
	if (memchr(p, '\0', n) != NULL || !http_utf8_valid((const char *)p, n))
		return false;
	if (starts_with(p, n, "\xef\xbb\xbf")) {
		p += 3;
		n -= 3;
	}
	while (n > 0 && isspace(*p)) {
		p++;
		n--;
	}
	return (starts_with(p, n, "<svg") || starts_with(p, n, "<?xml")) &&
	       has_bytes(p, n, "<svg");
}

/* The image type from the bytes themselves; NULL if not one we take. */
static const char *sniff_image(const unsigned char *p, size_t n)
{
	if (starts_with(p, n, "\x89PNG\r\n\x1a\n"))
		return "image/png";
	if (starts_with(p, n, "\xff\xd8\xff"))
		return "image/jpeg";
	if (n >= 12 && starts_with(p, n, "RIFF") && !memcmp(p + 8, "WEBP", 4))
		return "image/webp";
	if (is_svg(p, n))
		return "image/svg+xml";
	return NULL;
}

/* Sets the page title, template and the settings tabs the caller may see. */
static void page(struct req *r, const char *title, const char *view,
		 const char *href)
{
	view_settings_page(r, title, view, href);
}

/*
 * A form with errors: the API gets 422; a browser gets the page again with
 * what was typed (keep) over what the page shows, and the messages.
 */
static enum td_err reject(struct req *r, page_fn show, const char *view,
			  const char *const *keep)
{
	json_t *was, *typed, *val;
	const char *key;
	enum td_err err;

	if (r->want_json)
		return form_reject(r, view, keep);
	err = show(r);
	if (err != TD_OK)
		return err;
	was = json_incref(json_object_get(req_view(r), "form"));
	err = form_reject(r, view, keep);
	typed = json_object_get(req_view(r), "form");
	if (was != NULL) {
		json_object_foreach(was, key, val)
		{
			if (json_object_get(typed, key) == NULL)
				json_object_set(typed, key, val);
		}
		json_decref(was);
	}
	return err;
}

/* The typed role as the booleans a <select> needs (form.role_admin...). */
static void form_roles(struct req *r)
{
	json_t *form = json_object_get(req_view(r), "form");
	const char *role = form_text(r, "role");

	if (form == NULL)
		return;
	json_object_set_new(form, "role_admin",
			    json_boolean(!strcmp(role, "admin")));
	json_object_set_new(form, "role_manager",
			    json_boolean(!strcmp(role, "manager")));
	json_object_set_new(form, "role_technician",
			    json_boolean(!strcmp(role, "technician")));
}

/* A request that conflicts with the state: 409, on the page for browsers. */
static enum td_err refuse(struct req *r, page_fn show, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = show(r);
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

/* Security pages are about a person: API keys have none of it. */
static enum td_err need_user(struct req *r)
{
	if (r->auth.kind != AUTH_USER)
		return req_fail(
			r, TD_EFORBID,
			"an API key has no password, sessions or two-step verification");
	return TD_OK;
}

/* For login throttling: the same key accounts.c uses. */
static const char *account_key(struct req *r)
{
	return arena_printf(r->arena, "%" PRId64 ":%s", r->auth.tenant_id,
			    r->auth.email ? r->auth.email : "");
}

static json_t *tenant_json(const PGresult *res)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "name",
			 db_text(res, 0, 0), "currency", db_text(res, 0, 1),
			 "time_zone", db_text(res, 0, 2), "locale",
			 db_text(res, 0, 3), "invoice_prefix",
			 db_text(res, 0, 4), "brand_colour", db_text(res, 0, 5),
			 "support_email", db_text(res, 0, 6), "support_phone",
			 db_text(res, 0, 7));
}

static enum td_err load_tenant(struct req *r, PGresult **res)
{
	enum td_err err = req_query(r, sql_tenant, 0, NULL, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no workspace %" PRId64,
				r->auth.tenant_id);
	return TD_OK;
}

/* GET /settings — 404 only if the tenant vanished. */
enum td_err settings_workspace(struct req *r)
{
	json_t *v = req_view(r), *rates;
	PGresult *t, *res;
	enum td_err err;
	int i, n;

	err = load_tenant(r, &t);
	if (err != TD_OK)
		return err;
	err = req_query(r, sql_tax_rates, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	rates = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			rates, json_pack("{s:I, s:s, s:s, s:b}", "id",
					 (json_int_t)db_int(res, i, 0), "name",
					 db_text(res, i, 1), "rate",
					 db_text(res, i, 2), "is_default",
					 db_bool(res, i, 3)));
	json_object_set_new(v, "form", tenant_json(t));
	json_object_set_new(v, "tenant_logo_url",
			    db_bool(t, 0, 8) ? json_string("/settings/logo") :
					       json_null());
	json_object_set_new(v, "tax_rates", rates);
	page(r, "Workspace", "settings/workspace", "/settings");
	return TD_OK;
}

/* True if PostgreSQL knows the time zone name. */
static enum td_err tz_known(struct req *r, const char *tz, bool *known)
{
	const char *params[1] = { tz };
	PGresult *res;
	enum td_err err;

	*known = false;
	if (*tz == '\0' || strlen(tz) > 64)
		return TD_OK;
	err = req_query(r, sql_tz_exists, 1, params, &res);
	if (err == TD_OK)
		*known = db_bool(res, 0, 0);
	return err;
}

/* POST /settings — 422 with the fields that are wrong. */
enum td_err settings_workspace_save(struct req *r)
{
	const char *params[8];
	char *currency = arena_strdup(r->arena, form_text(r, "currency"));
	json_t *before, *after;
	PGresult *res;
	enum td_err err;
	bool known;
	size_t i;

	for (i = 0; currency[i] != '\0'; i++)
		currency[i] = (char)toupper((unsigned char)currency[i]);
	params[0] = form_text(r, "name");
	params[1] = currency;
	params[2] = form_text(r, "time_zone");
	params[3] = form_text(r, "locale");
	params[4] = form_text(r, "invoice_prefix");
	params[5] = form_text(r, "brand_colour");
	params[6] = form_text(r, "support_email");
	params[7] = form_text(r, "support_phone");
	if (!len_between(params[0], 1, 200))
		form_error(r, "name", "enter a name of at most 200 characters");
	if (strlen(currency) != 3 || !isupper((unsigned char)currency[0]) ||
	    !isupper((unsigned char)currency[1]) ||
	    !isupper((unsigned char)currency[2]))
		form_error(r, "currency",
			   "use a three-letter ISO 4217 code such as GBP");
	err = tz_known(r, params[2], &known);
	if (err != TD_OK)
		return err;
	if (!known)
		form_error(r, "time_zone",
			   "choose a time zone such as Europe/London");
	if (!locale_ok(params[3]))
		form_error(r, "locale", "use a locale such as en-GB");
	if (!prefix_ok(params[4]))
		form_error(r, "invoice_prefix",
			   "use at most 20 letters, digits, '-', '/' or '_'");
	if (!colour_ok(params[5]))
		form_error(r, "brand_colour", "use a colour such as #3451c6");
	if (*params[6] != '\0' && !email_ok(params[6]))
		form_error(r, "support_email",
			   "enter an email address, or leave it empty");
	if (!len_between(params[7], 0, 50))
		form_error(r, "support_phone", "use at most 50 characters");
	if (form_has_errors(r))
		return reject(r, settings_workspace, "settings/workspace",
			      workspace_fields);
	err = load_tenant(r, &res);
	if (err != TD_OK)
		return err;
	before = tenant_json(res);
	req_own_json(r, before);
	after = json_object();
	req_own_json(r, after);
	for (i = 0; workspace_fields[i] != NULL; i++)
		json_object_set_new(after, workspace_fields[i],
				    json_string(params[i]));
	err = req_query(r, sql_tenant_update, 8, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "tenant.update", "tenant",
				  r->auth.tenant_id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "tenant", after);
	done(r, "Workspace settings saved.", "/settings");
	return TD_OK;
}

/* GET /settings/logo — the image itself; 404 when there is none. */
enum td_err settings_logo(struct req *r)
{
	PGresult *res;
	unsigned char *raw;
	char *copy;
	size_t len;
	enum td_err err;

	err = req_query(r, sql_logo, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "this workspace has no logo");
	raw = PQunescapeBytea((const unsigned char *)db_text(res, 0, 0), &len);
	if (raw == NULL)
		return req_fail(r, TD_ESYS, "cannot decode the logo");
	copy = arena_alloc_raw(r->arena, len + 1);
	memcpy(copy, raw, len);
	PQfreemem(raw);
	r->body_out = copy;
	r->body_out_len = len;
	r->body_type = arena_strdup(r->arena, db_text(res, 0, 1));
	req_header(r, "Content-Disposition", "inline");
	/* An SVG opened directly must not run scripts or load anything. */
	if (!strcmp(r->body_type, "image/svg+xml"))
		req_header(r, "Content-Security-Policy",
			   "default-src 'none'; style-src 'unsafe-inline'");
	return TD_OK;
}

static const struct http_file *find_file(const struct req *r, const char *field)
{
	size_t i;

	for (i = 0; i < r->files.n; i++)
		if (!strcmp(r->files.v[i].field, field))
			return &r->files.v[i];
	return NULL;
}

/* The current logo's type and size, for the audit log. */
static enum td_err logo_meta(struct req *r, json_t **out)
{
	PGresult *res;
	enum td_err err;

	*out = NULL;
	err = req_query(r, sql_logo_meta, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 || db_isnull(res, 0, 0))
		return TD_OK;
	*out = json_pack("{s:s, s:I}", "logo_type", db_text(res, 0, 0), "size",
			 (json_int_t)db_int(res, 0, 1));
	req_own_json(r, *out);
	return TD_OK;
}

/* POST /settings/logo (multipart, field "logo") — 422 if not an image. */
enum td_err settings_logo_upload(struct req *r)
{
	const struct http_file *f = find_file(r, "logo");
	const char *type = NULL, *params[2];
	json_t *before, *after;
	enum td_err err;

	if (f == NULL || f->len == 0)
		form_error(r, "logo", "choose an image file to upload");
	else if (f->len > LOGO_MAX)
		form_error(r, "logo", "use an image of at most 512 KiB");
	else if ((type = sniff_image(f->data, f->len)) == NULL)
		form_error(r, "logo", "use a PNG, JPEG, WebP or SVG image");
	if (form_has_errors(r))
		return reject(r, settings_workspace, "settings/workspace",
			      NULL);
	err = logo_meta(r, &before);
	if (err != TD_OK)
		return err;
	params[0] = bytea_hex(r, f->data, f->len);
	params[1] = type;
	err = req_query(r, sql_logo_set, 2, params, NULL);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:I}", "logo_type", type, "size",
			  (json_int_t)f->len);
	req_own_json(r, after);
	err = audit_write(r, "tenant.logo", "tenant", r->auth.tenant_id, before,
			  after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "logo",
			    json_pack("{s:s, s:I, s:s}", "type", type, "size",
				      (json_int_t)f->len, "url",
				      "/settings/logo"));
	done(r, "Logo uploaded.", "/settings");
	return TD_OK;
}

/* POST /settings/logo/delete */
enum td_err settings_logo_delete(struct req *r)
{
	const char *params[2] = { NULL, NULL };
	json_t *before;
	enum td_err err;

	err = logo_meta(r, &before);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "logo", json_null());
	if (before == NULL) {
		done(r, "There was no logo to remove.", "/settings");
		return TD_OK;
	}
	err = req_query(r, sql_logo_set, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "tenant.logo_delete", "tenant",
				  r->auth.tenant_id, before, NULL);
	if (err != TD_OK)
		return err;
	done(r, "Logo removed.", "/settings");
	return TD_OK;
}

/*
 * Tax rate errors are shown beside the tax rate form (tax_form,
 * tax_errors), apart from the workspace form's: both have a "name".
 */
static enum td_err reject_tax_rate(struct req *r)
{
	json_t *v;
	enum td_err err;

	if (r->want_json)
		return form_reject(r, "settings/workspace", NULL);
	err = settings_workspace(r);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "tax_form",
			    json_pack("{s:s, s:s, s:b}", "name",
				      form_text(r, "name"), "rate",
				      form_text(r, "rate"), "is_default",
				      form_flag(r, "is_default")));
	json_object_set(v, "tax_errors", r->error_fields);
	r->status = 422;
	return TD_OK;
}

/* POST /settings/tax-rates — 422 for a bad or taken name or a bad rate. */
enum td_err settings_tax_rate_add(struct req *r)
{
	const char *params[3], *name = form_text(r, "name");
	const char *rate = form_text(r, "rate");
	bool is_default = form_flag(r, "is_default");
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t id;

	if (!len_between(name, 1, 100)) {
		form_error(r, "name", "enter a name of at most 100 characters");
	} else {
		params[0] = name;
		err = req_query(r, sql_tax_by_name, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(
				r, "name",
				db_bool(res, 0, 0) ?
					"an archived tax rate has this name" :
					"a tax rate with this name exists already");
	}
	if (!rate_ok(rate))
		form_error(
			r, "rate",
			"enter a percentage from 0 to under 100, with at most 4 decimals");
	if (form_has_errors(r))
		return reject_tax_rate(r);
	if (is_default) {
		err = req_query(r, sql_tax_undefault, 0, NULL, NULL);
		if (err != TD_OK)
			return err;
	}
	params[0] = name;
	params[1] = rate;
	params[2] = is_default ? "true" : "false";
	err = req_query(r, sql_tax_new, 3, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)id, "name",
			  name, "rate", db_text(res, 0, 1), "is_default",
			  is_default);
	req_own_json(r, after);
	err = audit_write(r, "tax_rate.create", "tax_rate", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set(req_view(r), "tax_rate", after);
	if (r->want_json)
		r->status = 201;
	done(r,
	     arena_printf(r->arena, "Tax rate %s (%s%%) added.", name,
			  db_text(res, 0, 1)),
	     "/settings");
	return TD_OK;
}

/* POST /settings/tax-rates/:id/archive — 404 if no such rate. */
enum td_err settings_tax_rate_archive(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_tax_get, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no tax rate %" PRId64, id);
	json_object_set_new(req_view(r), "tax_rate",
			    json_pack("{s:I, s:b}", "id", (json_int_t)id,
				      "archived", true));
	if (db_bool(res, 0, 3)) {
		done(r, "That tax rate was archived already.", "/settings");
		return TD_OK;
	}
	before = json_pack("{s:s, s:s, s:b, s:b}", "name", db_text(res, 0, 0),
			   "rate", db_text(res, 0, 1), "is_default",
			   db_bool(res, 0, 2), "archived", false);
	req_own_json(r, before);
	after = json_pack("{s:b, s:b}", "is_default", false, "archived", true);
	req_own_json(r, after);
	err = req_query(r, sql_tax_archive, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "tax_rate.archive", "tax_rate", id, before,
				  after);
	if (err != TD_OK)
		return err;
	done(r,
	     arena_printf(r->arena, "Tax rate %s archived.",
			  db_text(res, 0, 0)),
	     "/settings");
	return TD_OK;
}

static json_t *users_json(struct req *r, const PGresult *res)
{
	json_t *list = json_array();
	const char *role;
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++) {
		role = db_text(res, i, 3);
		json_array_append_new(
			list,
			json_pack(
				"{s:I, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:s, s:b}",
				"id", (json_int_t)db_int(res, i, 0), "name",
				db_text(res, i, 1), "email", db_text(res, i, 2),
				"role", role, "role_admin",
				!strcmp(role, "admin"), "role_manager",
				!strcmp(role, "manager"), "role_technician",
				!strcmp(role, "technician"), "active",
				db_bool(res, i, 4), "last_login",
				db_text(res, i, 5), "is_me",
				db_int(res, i, 0) == r->auth.user_id));
	}
	return list;
}

/* Links are shown only while they can still be used. */
static json_t *invites_json(const PGresult *res)
{
	json_t *list = json_array();
	const char *status;
	bool pending;
	int i, n = PQntuples(res);

	for (i = 0; i < n; i++) {
		status = db_text(res, i, 5);
		pending = !strcmp(status, "pending");
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:b}",
					"id", (json_int_t)db_int(res, i, 0),
					"email", db_text(res, i, 1), "role",
					db_text(res, i, 2), "link",
					pending ? db_text(res, i, 3) : "",
					"expires", db_text(res, i, 4), "status",
					status, "pending", pending));
	}
	return list;
}

/* GET /settings/users */
enum td_err settings_users(struct req *r)
{
	json_t *v = req_view(r), *resets;
	PGresult *users, *invites, *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_users, 0, NULL, &users);
	if (err == TD_OK)
		err = req_query(r, sql_invites, 0, NULL, &invites);
	if (err == TD_OK)
		err = req_query(r, sql_resets, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	resets = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(resets,
				      json_pack("{s:s, s:s, s:s}", "email",
						db_text(res, i, 0), "link",
						db_text(res, i, 1), "expires",
						db_text(res, i, 2)));
	json_object_set_new(v, "users", users_json(r, users));
	json_object_set_new(v, "invites", invites_json(invites));
	json_object_set_new(v, "resets", resets);
	page(r, "Users", "settings/users", "/settings/users");
	return TD_OK;
}

/* Problems with inviting email as role; notes them as form errors. */
static enum td_err check_invite(struct req *r, const char *email,
				enum auth_role role)
{
	const char *params[1] = { email };
	PGresult *res;
	enum td_err err;

	if (role == 0)
		form_error(r, "role", "choose admin, manager or technician");
	if (!email_ok(email)) {
		form_error(r, "email", "enter an email address");
		return TD_OK;
	}
	err = req_query(r, sql_user_by_email, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0) {
		form_error(
			r, "email",
			db_bool(res, 0, 0) ?
				"this person is a user here already" :
				"this person's account is deactivated: reactivate it instead");
		return TD_OK;
	}
	err = req_query(r, sql_invite_pending, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) > 0)
		form_error(
			r, "email",
			"this person has an invitation already: revoke it to send a new one");
	return TD_OK;
}

/*
 * POST /settings/users/invite — 422 for a bad email or role, or one that
 * is taken. 201 for the API, with the link (until mail is sent).
 */
enum td_err settings_user_invite(struct req *r)
{
	static const char *const keep[] = { "email", "role", NULL };
	const char *email = form_text(r, "email"), *params[5], *link;
	enum auth_role role = auth_role_parse(form_text(r, "role"));
	char token[AUTH_TOKEN_LEN + 1];
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t id;

	err = check_invite(r, email, role);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r)) {
		err = reject(r, settings_users, "settings/users", keep);
		form_roles(r);
		return err;
	}
	if (!auth_new_token(token))
		return req_fail(r, TD_ESYS, "cannot make a token");
	link = arena_printf(r->arena, "%s/invite/%" PRId64 ".%s",
			    r->ctx->conf->base_url, r->auth.tenant_id, token);
	params[0] = email;
	params[1] = auth_role_name(role);
	params[2] = auth_token_hash(r, token);
	params[3] = link;
	params[4] =
		r->auth.kind == AUTH_USER ? req_id(r, r->auth.user_id) : NULL;
	err = req_query(r, sql_invite_new, 5, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	params[0] = "invite";
	params[1] = email;
	params[2] = "You're invited to tallydesk";
	params[3] = arena_printf(
		r->arena,
		"%s invited you to join %s on tallydesk as %s %s.\n\n"
		"Open this link within 7 days to choose your name and password:\n%s\n\n"
		"If you did not expect this, ignore this message.\n",
		r->auth.name ? r->auth.name : "Someone",
		r->auth.tenant_name ? r->auth.tenant_name : "a workspace",
		role == ROLE_ADMIN ? "an" : "a", auth_role_name(role), link);
	err = req_query(r, sql_outbox, 4, params, NULL);
	if (err != TD_OK)
		return err;
	/* Never the link: it holds the token. */
	after = json_pack("{s:s, s:s}", "email", email, "role",
			  auth_role_name(role));
	req_own_json(r, after);
	err = audit_write(r, "user.invite", "invite", id, NULL, after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		json_object_set_new(req_view(r), "invite",
				    json_pack("{s:I, s:s, s:s, s:s, s:s}", "id",
					      (json_int_t)id, "email", email,
					      "role", auth_role_name(role),
					      "link", link, "expires",
					      db_text(res, 0, 1)));
		r->status = 201;
	}
	done(r,
	     arena_printf(
		     r->arena,
		     "Invitation for %s created. Its link is below until it is used.",
		     email),
	     "/settings/users");
	return TD_OK;
}

static enum td_err load_user(struct req *r, int64_t id, PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err = req_query(r, sql_user_get, 1, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no user %" PRId64, id);
	return TD_OK;
}

/* True when the active admins, locked, are only one. */
static enum td_err last_admin(struct req *r, bool *last)
{
	PGresult *res;
	enum td_err err = req_query(r, sql_admins_active, 0, NULL, &res);

	if (err != TD_OK)
		return err;
	*last = db_int(res, 0, 0) <= 1;
	return TD_OK;
}

static void user_result(struct req *r, int64_t id, const char *role,
			bool active)
{
	json_object_set_new(req_view(r), "user",
			    json_pack("{s:I, s:s, s:b}", "id", (json_int_t)id,
				      "role", role, "active", active));
}

/*
 * POST /settings/users/:id/role — 404 if no such user; 422 for a bad
 * role; 409 for your own role or the last active admin.
 */
enum td_err settings_user_role(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	enum auth_role role = auth_role_parse(form_text(r, "role"));
	const char *params[2], *old, *name;
	json_t *before, *after;
	PGresult *res;
	enum td_err err;
	bool active, last;

	err = load_user(r, id, &res);
	if (err != TD_OK)
		return err;
	if (role == 0) {
		form_error(r, "role", "choose admin, manager or technician");
		return reject(r, settings_users, "settings/users", NULL);
	}
	if (id == r->auth.user_id)
		return refuse(r, settings_users,
			      "you cannot change your own role");
	name = db_text(res, 0, 0);
	old = db_text(res, 0, 2);
	active = db_bool(res, 0, 3);
	user_result(r, id, auth_role_name(role), active);
	if (!strcmp(old, auth_role_name(role))) {
		done(r,
		     arena_printf(r->arena, "%s is a %s already.", name, old),
		     "/settings/users");
		return TD_OK;
	}
	if (!strcmp(old, "admin") && active) {
		err = last_admin(r, &last);
		if (err != TD_OK)
			return err;
		if (last)
			return refuse(
				r, settings_users,
				"the workspace needs at least one active admin");
	}
	params[0] = req_id(r, id);
	params[1] = auth_role_name(role);
	err = req_query(r, sql_user_role_set, 2, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:s}", "role", old);
	req_own_json(r, before);
	after = json_pack("{s:s}", "role", params[1]);
	req_own_json(r, after);
	err = audit_write(r, "user.role", "user", id, before, after);
	if (err != TD_OK)
		return err;
	done(r,
	     arena_printf(r->arena, "%s is now %s %s.", name,
			  role == ROLE_ADMIN ? "an" : "a", params[1]),
	     "/settings/users");
	return TD_OK;
}

/*
 * POST /settings/users/:id/deactivate — 404 if no such user; 409 for
 * yourself or the last active admin. Their sessions end at once.
 */
enum td_err settings_user_deactivate(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) }, *name;
	json_t *before, *after;
	PGresult *res;
	enum td_err err;
	bool last;

	err = load_user(r, id, &res);
	if (err != TD_OK)
		return err;
	if (id == r->auth.user_id)
		return refuse(r, settings_users,
			      "you cannot deactivate yourself");
	name = db_text(res, 0, 0);
	user_result(r, id, db_text(res, 0, 2), false);
	if (!db_bool(res, 0, 3)) {
		done(r,
		     arena_printf(r->arena, "%s was deactivated already.",
				  name),
		     "/settings/users");
		return TD_OK;
	}
	if (!strcmp(db_text(res, 0, 2), "admin")) {
		err = last_admin(r, &last);
		if (err != TD_OK)
			return err;
		if (last)
			return refuse(
				r, settings_users,
				"the workspace needs at least one active admin");
	}
	err = req_query(r, sql_user_deactivate, 1, params, NULL);
	if (err == TD_OK)
		err = req_query(r, sql_sessions_drop_user, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:b}", "active", true);
	req_own_json(r, before);
	after = json_pack("{s:b}", "active", false);
	req_own_json(r, after);
	err = audit_write(r, "user.deactivate", "user", id, before, after);
	if (err != TD_OK)
		return err;
	done(r,
	     arena_printf(r->arena, "%s is deactivated and signed out.", name),
	     "/settings/users");
	return TD_OK;
}

/* POST /settings/users/:id/reactivate — 404 if no such user. */
enum td_err settings_user_reactivate(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) }, *name;
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = load_user(r, id, &res);
	if (err != TD_OK)
		return err;
	name = db_text(res, 0, 0);
	user_result(r, id, db_text(res, 0, 2), true);
	if (db_bool(res, 0, 3)) {
		done(r, arena_printf(r->arena, "%s is active already.", name),
		     "/settings/users");
		return TD_OK;
	}
	err = req_query(r, sql_user_reactivate, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = json_pack("{s:b}", "active", false);
	req_own_json(r, before);
	after = json_pack("{s:b}", "active", true);
	req_own_json(r, after);
	err = audit_write(r, "user.reactivate", "user", id, before, after);
	if (err != TD_OK)
		return err;
	done(r, arena_printf(r->arena, "%s is active again.", name),
	     "/settings/users");
	return TD_OK;
}

/*
 * POST /settings/invites/:id/revoke — 404 if no such invite; 409 if it
 * was used, revoked or has expired.
 */
enum td_err settings_invite_revoke(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_invite_revoke, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		err = req_query(r, sql_invite_get, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			return req_fail(r, TD_ENOENT, "no invite %" PRId64, id);
		return refuse(
			r, settings_users,
			"this invitation was used, revoked or has expired already");
	}
	before = json_pack("{s:s}", "status", "pending");
	req_own_json(r, before);
	after = json_pack("{s:s}", "status", "revoked");
	req_own_json(r, after);
	err = audit_write(r, "invite.revoke", "invite", id, before, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "invite",
			    json_pack("{s:I, s:s, s:s}", "id", (json_int_t)id,
				      "email", db_text(res, 0, 0), "status",
				      "revoked"));
	done(r,
	     arena_printf(r->arena, "The invitation for %s is revoked.",
			  db_text(res, 0, 0)),
	     "/settings/users");
	return TD_OK;
}

/* GET /settings/apikeys */
enum td_err settings_apikeys(struct req *r)
{
	json_t *keys;
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_apikeys, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	keys = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			keys, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:b}",
					"id", (json_int_t)db_int(res, i, 0),
					"name", db_text(res, i, 1), "role",
					db_text(res, i, 2), "prefix",
					db_text(res, i, 3), "created",
					db_text(res, i, 4), "last_used",
					db_text(res, i, 5), "revoked",
					db_bool(res, i, 6)));
	json_object_set_new(req_view(r), "keys", keys);
	page(r, "API keys", "settings/apikeys", "/settings/apikeys");
	return TD_OK;
}

/*
 * POST /settings/apikeys — 422 for a bad name or role; 201 with the key,
 * which is shown this once (only its hash is kept).
 */
enum td_err settings_apikey_create(struct req *r)
{
	static const char *const keep[] = { "name", "role", NULL };
	const char *name = form_text(r, "name"), *params[5], *key;
	enum auth_role role = auth_role_parse(form_text(r, "role"));
	char token[AUTH_TOKEN_LEN + 1];
	json_t *after, *v;
	PGresult *res;
	enum td_err err;
	int64_t id;

	if (!len_between(name, 1, 100))
		form_error(r, "name", "enter a name of at most 100 characters");
	if (role == 0)
		form_error(r, "role", "choose admin, manager or technician");
	if (form_has_errors(r)) {
		err = reject(r, settings_apikeys, "settings/apikeys", keep);
		form_roles(r);
		return err;
	}
	if (!auth_new_token(token))
		return req_fail(r, TD_ESYS, "cannot make a token");
	/* auth.c hashes the whole bearer value, so the hash is of all of it. */
	key = arena_printf(r->arena, "td_%" PRId64 "_%s", r->auth.tenant_id,
			   token);
	params[0] = name;
	params[1] = auth_role_name(role);
	params[2] = arena_strndup(r->arena, key, 12);
	params[3] = auth_token_hash(r, key);
	params[4] =
		r->auth.kind == AUTH_USER ? req_id(r, r->auth.user_id) : NULL;
	err = req_query(r, sql_apikey_new, 5, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:s, s:s, s:s}", "name", name, "role", params[1],
			  "prefix", params[2]);
	req_own_json(r, after);
	err = audit_write(r, "apikey.create", "apikey", id, NULL, after);
	if (err != TD_OK)
		return err;
	r->status = 201;
	if (r->want_json) {
		json_object_set_new(req_view(r), "api_key",
				    json_pack("{s:I, s:s, s:s, s:s}", "id",
					      (json_int_t)id, "name", name,
					      "role", params[1], "key", key));
		return TD_OK;
	}
	/* A page, not a redirect: the key must not travel in a cookie or URL.
	 */
	err = settings_apikeys(r);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "new_key", json_string(key));
	json_object_set_new(
		v, "flash",
		json_pack(
			"[{s:s, s:s}]", "kind", "ok", "text",
			"API key created. Copy it now: it is not shown again."));
	return TD_OK;
}

/* POST /settings/apikeys/:id/revoke — 404 if no such key. */
enum td_err settings_apikey_revoke(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	json_t *before, *after;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_apikey_revoke, 1, params, &res);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		req_view(r), "api_key",
		json_pack("{s:I, s:b}", "id", (json_int_t)id, "revoked", true));
	if (PQntuples(res) != 1) {
		err = req_query(r, sql_apikey_get, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) != 1)
			return req_fail(r, TD_ENOENT, "no API key %" PRId64,
					id);
		done(r, "That API key was revoked already.",
		     "/settings/apikeys");
		return TD_OK;
	}
	before = json_pack("{s:s, s:b}", "name", db_text(res, 0, 0), "revoked",
			   false);
	req_own_json(r, before);
	after = json_pack("{s:b}", "revoked", true);
	req_own_json(r, after);
	err = audit_write(r, "apikey.revoke", "apikey", id, before, after);
	if (err != TD_OK)
		return err;
	done(r,
	     arena_printf(r->arena, "API key %s is revoked.",
			  db_text(res, 0, 0)),
	     "/settings/apikeys");
	return TD_OK;
}

/* The caller's row: email, hash, totp_enabled, totp_secret, last step. */
static enum td_err load_me(struct req *r, PGresult **res)
{
	const char *params[1] = { req_id(r, r->auth.user_id) };
	enum td_err err = req_query(r, sql_me, 1, params, res);

	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no user %" PRId64,
				r->auth.user_id);
	return TD_OK;
}

/* "ABCDEFGH..." as "ABCD EFGH ...", easier to type from the screen. */
static const char *grouped(struct req *r, const char *s)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, r->arena, strlen(s) + strlen(s) / 4 + 1);
	for (i = 0; s[i] != '\0'; i++) {
		if (i > 0 && i % 4 == 0)
			sbuf_addch(&sb, ' ');
		sbuf_addch(&sb, s[i]);
	}
	return sbuf_cstr(&sb);
}

/*
 * What the authenticator app needs: the otpauth URI, its QR code and the
 * secret to type by hand. The QR code holds at most QR_MAX_BYTES, so a
 * long workspace name is dropped from the issuer, and a URI that still
 * does not fit is offered as text only.
 */
static enum td_err totp_setup(struct req *r, const char *secret_hex,
			      const char *email, json_t **out)
{
	unsigned char *key;
	size_t keylen;
	char b32[128];
	const char *uri, *svg = "",
			 *label = "QR code for your authenticator app";
	enum td_err err;

	key = PQunescapeBytea((const unsigned char *)secret_hex, &keylen);
	if (key == NULL)
		return req_fail(r, TD_ESYS, "cannot decode the TOTP secret");
	if (keylen > 64) {
		PQfreemem(key);
		return req_fail(r, TD_ESYS, "the TOTP secret is %zu bytes",
				keylen);
	}
	totp_base32_encode(key, keylen, b32);
	PQfreemem(key);
	uri = totp_uri(
		r->arena,
		arena_printf(r->arena, "tallydesk (%s)",
			     r->auth.tenant_name ? r->auth.tenant_name : ""),
		email, b32);
	err = qr_svg(r->arena, uri, label, QR_PX, &svg);
	if (err == TD_ETOOBIG) {
		uri = totp_uri(r->arena, "tallydesk", email, b32);
		err = qr_svg(r->arena, uri, label, QR_PX, &svg);
	}
	if (err != TD_OK)
		svg = "";
	/* qr_svg is our own markup with the label escaped: safe for {{{ }}}. */
	*out = json_pack("{s:s, s:s, s:s}", "qr_svg", svg, "secret",
			 grouped(r, b32), "uri", uri);
	return TD_OK;
}

/* GET /settings/security — 403 for API keys. */
enum td_err settings_security(struct req *r)
{
	json_t *v, *sessions, *setup = NULL;
	const char *params[2];
	PGresult *me, *res;
	enum td_err err;
	int i, n;

	err = need_user(r);
	if (err == TD_OK)
		err = load_me(r, &me);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, r->auth.user_id);
	params[1] = arena_printf(r->arena, "%d", r->ctx->conf->session_idle);
	err = req_query(r, sql_my_sessions, 2, params, &res);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	if (!db_bool(me, 0, 2) && !db_isnull(me, 0, 3)) {
		err = totp_setup(r, db_text(me, 0, 3), db_text(me, 0, 0),
				 &setup);
		if (err != TD_OK)
			return err;
		json_object_set_new(v, "totp_setup", setup);
	}
	sessions = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			sessions,
			json_pack("{s:s, s:s, s:s, s:s, s:b}", "created",
				  db_text(res, i, 1), "last_seen",
				  db_text(res, i, 2), "ip", db_text(res, i, 3),
				  "user_agent", db_text(res, i, 4), "current",
				  db_int(res, i, 0) == r->auth.session_id));
	json_object_set_new(v, "totp_enabled", json_boolean(db_bool(me, 0, 2)));
	json_object_set_new(v, "sessions", sessions);
	page(r, "Security", "settings/security", "/settings/security");
	return TD_OK;
}

/*
 * POST /settings/password — 422 for a wrong current password (which
 * counts as a failed sign-in) or a weak new one. Other sessions end.
 */
enum td_err settings_password(struct req *r)
{
	const char *current = form_text(r, "current");
	const char *pw = form_text(r, "password"), *account, *why, *params[2];
	char hash[256];
	PGresult *me;
	enum td_err err;

	err = need_user(r);
	if (err == TD_OK)
		err = load_me(r, &me);
	if (err != TD_OK)
		return err;
	account = account_key(r);
	if (auth_throttled(r, account)) {
		form_error(
			r, "current",
			"too many wrong passwords: wait 15 minutes and try again");
	} else if (!auth_password_verify(db_text(me, 0, 1), current)) {
		auth_failure(r, account);
		form_error(r, "current", "this is not your current password");
	}
	why = auth_password_problem(pw, db_text(me, 0, 0));
	if (why != NULL)
		form_error(r, "password", why);
	else if (r->json_body == NULL &&
		 strcmp(pw, form_text(r, "password2")) != 0)
		form_error(r, "password2",
			   "the two passwords are not the same");
	if (form_has_errors(r))
		return reject(r, settings_security, "settings/security", NULL);
	if (!auth_password_hash(r->ctx->conf, pw, hash, sizeof(hash)))
		return req_fail(r, TD_ESYS, "cannot hash the password");
	params[0] = req_id(r, r->auth.user_id);
	params[1] = hash;
	err = req_query(r, sql_password_set, 2, params, NULL);
	/* Whoever knew the old password is signed out, except this browser. */
	params[1] = req_id(r, r->auth.session_id);
	if (err == TD_OK)
		err = req_query(r, sql_sessions_drop_others, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.password_change", "user",
				  r->auth.user_id, NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "password_changed", json_true());
	done(r, "Your password is changed. Your other sessions are signed out.",
	     "/settings/security");
	return TD_OK;
}

/*
 * POST /settings/totp/start — a new secret, not yet in force; the
 * security page then shows its QR code. 409 if two-step is on already.
 */
enum td_err settings_totp_start(struct req *r)
{
	unsigned char key[TOTP_SECRET_LEN];
	const char *params[2];
	PGresult *me;
	enum td_err err;

	err = need_user(r);
	if (err == TD_OK)
		err = load_me(r, &me);
	if (err != TD_OK)
		return err;
	if (db_bool(me, 0, 2))
		return refuse(
			r, settings_security,
			"two-step verification is on already: turn it off before setting it up again");
	if (!totp_new_secret(key))
		return req_fail(r, TD_ESYS, "cannot make a TOTP secret");
	params[0] = req_id(r, r->auth.user_id);
	params[1] = bytea_hex(r, key, sizeof(key));
	err = req_query(r, sql_totp_secret, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.totp_start", "user", r->auth.user_id,
				  NULL, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return settings_security(r);
	done(r,
	     "Scan the QR code with your authenticator app, then enter a code to finish.",
	     "/settings/security");
	return TD_OK;
}

/* A code checked against the stored secret: the step, or -1 if wrong. */
static enum td_err check_code(struct req *r, const PGresult *me, int64_t *step)
{
	unsigned char *key;
	size_t keylen;

	key = PQunescapeBytea((const unsigned char *)db_text(me, 0, 3),
			      &keylen);
	if (key == NULL)
		return req_fail(r, TD_ESYS, "cannot decode the TOTP secret");
	*step = totp_verify(key, keylen, form_text(r, "code"),
			    (int64_t)time(NULL), db_int(me, 0, 4));
	PQfreemem(key);
	return TD_OK;
}

/*
 * POST /settings/totp/enable — 422 for a wrong code; 409 if there is no
 * set-up to finish.
 */
enum td_err settings_totp_enable(struct req *r)
{
	const char *params[2];
	PGresult *me;
	enum td_err err;
	int64_t step;

	err = need_user(r);
	if (err == TD_OK)
		err = load_me(r, &me);
	if (err != TD_OK)
		return err;
	if (db_bool(me, 0, 2))
		return refuse(r, settings_security,
			      "two-step verification is on already");
	if (db_isnull(me, 0, 3))
		return refuse(r, settings_security,
			      "start setting up two-step verification first");
	err = check_code(r, me, &step);
	if (err != TD_OK)
		return err;
	if (step < 0) {
		form_error(
			r, "code",
			"that code is not right: use the current code from your app");
		return reject(r, settings_security, "settings/security", NULL);
	}
	params[0] = req_id(r, r->auth.user_id);
	params[1] = arena_printf(r->arena, "%" PRId64, step);
	err = req_query(r, sql_totp_on, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.totp_enable", "user",
				  r->auth.user_id, NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "totp_enabled", json_true());
	done(r, "Two-step verification is on.", "/settings/security");
	return TD_OK;
}

/*
 * POST /settings/totp/disable — needs a current code; a wrong one counts
 * as a failed sign-in (422). 409 if two-step is not on.
 */
enum td_err settings_totp_disable(struct req *r)
{
	const char *params[2], *account;
	PGresult *me;
	enum td_err err;
	int64_t step;

	err = need_user(r);
	if (err == TD_OK)
		err = load_me(r, &me);
	if (err != TD_OK)
		return err;
	if (!db_bool(me, 0, 2))
		return refuse(r, settings_security,
			      "two-step verification is not on");
	account = account_key(r);
	if (auth_throttled(r, account)) {
		form_error(
			r, "code",
			"too many wrong codes: wait 15 minutes and try again");
		return reject(r, settings_security, "settings/security", NULL);
	}
	err = check_code(r, me, &step);
	if (err != TD_OK)
		return err;
	if (step < 0) {
		auth_failure(r, account);
		form_error(
			r, "code",
			"that code is not right: use the current code from your app");
		return reject(r, settings_security, "settings/security", NULL);
	}
	params[0] = req_id(r, r->auth.user_id);
	params[1] = arena_printf(r->arena, "%" PRId64, step);
	err = req_query(r, sql_totp_off, 2, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.totp_disable", "user",
				  r->auth.user_id, NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "totp_enabled", json_false());
	done(r, "Two-step verification is off.", "/settings/security");
	return TD_OK;
}

/* POST /settings/sessions/logout-all — this session too. */
enum td_err settings_logout_all(struct req *r)
{
	const char *params[1];
	enum td_err err;

	err = need_user(r);
	if (err == TD_OK)
		err = audit_write(r, "user.logout_all", "user", r->auth.user_id,
				  NULL, NULL);
	if (err == TD_OK)
		err = auth_session_end(r);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, r->auth.user_id);
	err = req_query(r, sql_sessions_drop_user, 1, params, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "signed_out", json_true());
	done(r, "You are signed out everywhere.", "/login");
	return TD_OK;
}

/* A query parameter, NULL when absent or empty. */
static const char *query_param(struct req *r, const char *name)
{
	const char *v = http_params_get(&r->query_params, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static void add_query(struct sbuf *sb, const char *name, const char *value)
{
	if (value == NULL)
		return;
	sbuf_adds(sb, name);
	sbuf_addch(sb, '=');
	http_url_encode(sb, value);
	sbuf_addch(sb, '&');
}

static json_t *audit_event(const PGresult *res, int i)
{
	return json_pack(
		"{s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:s}", "id",
		(json_int_t)db_int(res, i, 0), "at", db_text(res, i, 1),
		"at_iso", db_text(res, i, 2), "actor", db_text(res, i, 3),
		"action", db_text(res, i, 4), "object_type", db_text(res, i, 5),
		"object_id",
		db_isnull(res, i, 6) ?
			json_null() :
			json_integer((json_int_t)db_int(res, i, 6)),
		"ip", db_text(res, i, 7), "request_id", db_text(res, i, 8),
		"before", db_text(res, i, 9), "after", db_text(res, i, 10));
}

/* The object types there are, for the filter's choices. */
static enum td_err audit_types(struct req *r, const char *selected)
{
	json_t *list;
	PGresult *res;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_audit_types, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(
			list, json_pack("{s:s, s:b}", "value",
					db_text(res, i, 0), "selected",
					selected != NULL &&
						!strcmp(selected,
							db_text(res, i, 0))));
	json_object_set_new(req_view(r), "object_types", list);
	return TD_OK;
}

/*
 * GET /settings/audit — newest first, AUDIT_PAGE at a time, going back
 * with ?before=<id>; 422 for a malformed date or cursor.
 */
enum td_err settings_audit(struct req *r)
{
	const char *action = query_param(r, "action");
	const char *actor = query_param(r, "actor");
	const char *otype = query_param(r, "object_type");
	const char *from = query_param(r, "from"), *to = query_param(r, "to");
	const char *before = query_param(r, "before"), *params[7];
	json_t *v = req_view(r), *events;
	struct sbuf next;
	PGresult *res;
	enum td_err err;
	long long cursor = 0;
	char *end;
	int i, n;

	if (from != NULL && !date_ok(from))
		form_error(r, "from", "use a date such as 2024-01-31");
	if (to != NULL && !date_ok(to))
		form_error(r, "to", "use a date such as 2024-01-31");
	if (before != NULL) {
		errno = 0;
		cursor = strtoll(before, &end, 10);
		if (!is_digit(*before) || *end != '\0' || errno != 0 ||
		    cursor <= 0)
			form_error(r, "before",
				   "not a valid position in the log");
	}
	err = audit_types(r, otype);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "filter",
			    json_pack("{s:s, s:s, s:s, s:s, s:s}", "action",
				      action ? action : "", "actor",
				      actor ? actor : "", "object_type",
				      otype ? otype : "", "from",
				      from ? from : "", "to", to ? to : ""));
	page(r, "Audit log", "settings/audit", "/settings/audit");
	if (form_has_errors(r)) {
		json_object_set_new(v, "events", json_array());
		return form_reject(r, "settings/audit", NULL);
	}
	params[0] = action ? like_escape(r, action) : NULL;
	params[1] = actor ? like_escape(r, actor) : NULL;
	params[2] = otype;
	params[3] = from;
	params[4] = to;
	params[5] = before ? arena_printf(r->arena, "%lld", cursor) : NULL;
	/* One more than a page, to know whether there is a next one. */
	params[6] = arena_printf(r->arena, "%d", AUDIT_PAGE + 1);
	err = req_query(r, sql_audit, 7, params, &res);
	if (err != TD_OK)
		return err;
	events = json_array();
	n = PQntuples(res);
	for (i = 0; i < n && i < AUDIT_PAGE; i++)
		json_array_append_new(events, audit_event(res, i));
	json_object_set_new(v, "events", events);
	if (n > AUDIT_PAGE) {
		sbuf_init(&next, r->arena, 128);
		sbuf_adds(&next, r->path);
		sbuf_addch(&next, '?');
		add_query(&next, "action", action);
		add_query(&next, "actor", actor);
		add_query(&next, "object_type", otype);
		add_query(&next, "from", from);
		add_query(&next, "to", to);
		sbuf_addf(&next, "before=%" PRId64,
			  db_int(res, AUDIT_PAGE - 1, 0));
		json_object_set_new(v, "next_url",
				    json_string(sbuf_cstr(&next)));
	}
	return TD_OK;
}
