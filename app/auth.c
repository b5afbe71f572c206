/* auth.c: who is calling — sessions, API keys, passwords, CSRF, throttling */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <argon2.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "arena.h"
#include "auth.h"
#include "conf.h"
#include "credential.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "req.h"
#include "banned.h"

/*
 * The session and what every page needs with it. The person, their tenant
 * and the running timer are fenced subqueries (OFFSET 0), each looked up
 * by the session's keys: joined plainly, the planner (seeing small tables)
 * hashed every user of the tenant on every request, which cost as much as
 * the rest of the statement.
 */
static const char sql_session[] =
	"SELECT s.id, s.csrf_token, s.mfa_pending, u.id, u.role, u.name,"
	" u.email, u.tenant_name, u.slug, u.currency,"
	" s.last_seen_at < now() - interval '1 minute',"
	/* The running timer for the nav bar, with no query of its own. */
	" tm.ticket_id, tm.number,"
	" to_char(tm.started_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	" to_char(least(tm.began_at, tm.started_at) AT TIME ZONE"
	" coalesce(u.time_zone, u.tenant_zone), 'HH24:MI'),"
	" tm.banked_seconds, tm.paused_at IS NOT NULL, u.directory,"
	" u.tenant_zone"
	" FROM sessions s"
	" CROSS JOIN LATERAL (SELECT u.id, u.role, u.name, u.email,"
	" u.time_zone, t.name AS tenant_name, t.slug, t.currency,"
	" t.time_zone AS tenant_zone, coalesce(v.directory, 0) AS directory"
	" FROM users u JOIN tenants t ON t.id = u.tenant_id"
	" LEFT JOIN tenant_versions v ON v.tenant_id = u.tenant_id"
	" WHERE u.tenant_id = s.tenant_id AND u.id = s.user_id AND u.active"
	" OFFSET 0) u"
	" LEFT JOIN LATERAL (SELECT tm.ticket_id, tk.number, tm.started_at,"
	" tm.began_at, tm.banked_seconds, tm.paused_at FROM timers tm"
	" LEFT JOIN tickets tk ON tk.tenant_id = tm.tenant_id"
	" AND tk.id = tm.ticket_id"
	" WHERE tm.tenant_id = s.tenant_id AND tm.user_id = s.user_id"
	" OFFSET 0) tm ON true"
	" WHERE s.token_hash = $1 AND s.expires_at > now()"
	" AND s.last_seen_at > now() - make_interval(mins => $2::int)";
static const char sql_session_touch[] =
	"UPDATE sessions SET last_seen_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_apikey[] =
	"SELECT k.id, k.role, k.name, t.name, t.slug, t.currency,"
	" k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute',"
	" t.time_zone FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
	" WHERE k.key_hash = $1 AND k.revoked_at IS NULL";
static const char sql_apikey_touch[] =
	"UPDATE api_keys SET last_used_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_agent[] =
	"SELECT e.id, e.client_id, e.name, t.name, t.slug, t.currency,"
	" e.last_used_at IS NULL OR e.last_used_at < now() - interval '1 minute',"
	" t.time_zone FROM enrollment_tokens e JOIN tenants t ON t.id = e.tenant_id"
	" JOIN clients c ON c.tenant_id = e.tenant_id AND c.id = e.client_id"
	" WHERE e.token_hash = $1 AND e.revoked_at IS NULL"
	" AND c.archived_at IS NULL AND c.merged_into IS NULL";
static const char sql_agent_touch[] =
	"UPDATE enrollment_tokens SET last_used_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_session_new[] =
	"INSERT INTO sessions (tenant_id, user_id, token_hash, csrf_token,"
	" mfa_pending, expires_at, ip, user_agent)"
	" VALUES (app_tenant(), $1, $2, $3, $4, now() + make_interval(hours => $5::int),"
	" $6, left($7, 300)) RETURNING id";
static const char sql_session_drop[] =
	"DELETE FROM sessions WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_throttle[] =
	"SELECT count(*) FILTER (WHERE scope = 'account' AND key = $1),"
	" count(*) FILTER (WHERE scope = 'ip' AND key = $2)"
	" FROM auth_failures"
	" WHERE at > now() - make_interval(mins => $3::int)"
	" AND ((scope = 'account' AND key = $1) OR (scope = 'ip' AND key = $2))";
static const char sql_failure[] =
	"INSERT INTO auth_failures (scope, key) VALUES ('account', $1), ('ip', $2)";
static const char sql_failure_prune[] =
	"DELETE FROM auth_failures WHERE at < now() - interval '1 day'";
static const char sql_success[] =
	"DELETE FROM auth_failures WHERE scope = 'account' AND key = $1";

static const char *const role_names[] = { "technician", "manager", "admin" };

enum auth_role auth_role_parse(const char *s)
{
	if (s == NULL)
		return 0;
	if (!strcmp(s, "admin"))
		return ROLE_ADMIN;
	if (!strcmp(s, "manager"))
		return ROLE_MANAGER;
	if (!strcmp(s, "technician"))
		return ROLE_TECH;
	return 0;
}

const char *auth_role_name(enum auth_role role)
{
	switch (role) {
	case ROLE_TECH:
		return role_names[0];
	case ROLE_MANAGER:
		return role_names[1];
	case ROLE_ADMIN:
		return role_names[2];
	case ROLE_AGENT:
		return "agent";
	case ROLE_STAFF:
	default:
		return "";
	}
}

bool auth_new_token(char out[AUTH_TOKEN_LEN + 1])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[33];
	size_t i, o = 0;

	if (RAND_bytes(raw, 32) != 1)
		return false;
	raw[32] = 0;
	for (i = 0; i < 32; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 |
			     (uint32_t)raw[i + 1] << 8 |
			     (i + 2 < 32 ? raw[i + 2] : 0);

		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < 32)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	return o == AUTH_TOKEN_LEN;
}

/*
 * SHA-256, fetched once: EVP_sha256() looks the algorithm up again on
 * every digest, which cost more than hashing a token.
 */
static const EVP_MD *sha256(void)
{
	static EVP_MD *md;

	if (md == NULL)
		md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return md != NULL ? md : EVP_sha256();
}

char *auth_token_hash_hex(char out[67], const char *token)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!EVP_Digest(token, strlen(token), md, &n, sha256(), NULL) ||
	    n != 32)
		abort();
	out[0] = '\\';
	out[1] = 'x';
	for (i = 0; i < 32; i++) {
		out[2 + 2 * i] = hex[md[i] >> 4];
		out[3 + 2 * i] = hex[md[i] & 15];
	}
	out[66] = '\0';
	return out;
}

const char *auth_token_hash(struct req *r, const char *token)
{
	return auth_token_hash_hex(arena_alloc(r->arena, 67), token);
}

static const char *cookie_attrs(struct req *r, long max_age)
{
	return arena_printf(
		r->arena, "; Path=/; HttpOnly; SameSite=Lax%s; Max-Age=%ld",
		r->ctx->conf->secure_cookies ? "; Secure" : "", max_age);
}

static void clear_session_cookie(struct req *r)
{
	req_header(r, "Set-Cookie",
		   arena_printf(r->arena, "%s=%s", AUTH_SESSION_COOKIE,
				cookie_attrs(r, 0)));
}

/* The tenant's name, slug and currency from col on, its time zone at tz. */
static void fill_tenant(struct auth *a, struct req *r, PGresult *res, int col,
			int tz)
{
	a->tenant_name = arena_strdup(r->arena, db_text(res, 0, col));
	a->tenant_slug = arena_strdup(r->arena, db_text(res, 0, col + 1));
	a->currency = arena_strdup(r->arena, db_text(res, 0, col + 2));
	a->time_zone = arena_strdup(r->arena, db_text(res, 0, tz));
}

/* An enrollment token: Bearer tde_<tenant>_<token>, scoped to one client. */
static enum td_err agent(struct req *r, const char *header)
{
	struct auth *a = &r->auth;
	const char *token, *params[1];
	int64_t tenant;
	PGresult *res;
	enum td_err err;

	if (!credential_parse(header + 11, '_', &tenant, &token))
		return req_fail(r, TD_EAUTH,
				"the enrollment token is malformed");
	err = db_tx_begin(r->db, r->arena, tenant);
	if (err != TD_OK)
		return req_fail(r, err, "cannot begin: %s", r->db->errmsg);
	params[0] = auth_token_hash(r, header + 7);
	err = req_query(r, sql_agent, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_EAUTH,
				"the enrollment token is unknown or revoked");
	a->kind = AUTH_AGENT;
	a->tenant_id = tenant;
	a->apikey_id = db_int(res, 0, 0);
	a->client_id = db_int(res, 0, 1);
	a->role = ROLE_AGENT;
	a->role_name = "agent";
	a->name = arena_strdup(r->arena, db_text(res, 0, 2));
	fill_tenant(a, r, res, 3, 7);
	if (!strcmp(db_text(res, 0, 6), "t")) {
		params[0] = arena_printf(r->arena, "%" PRId64, a->apikey_id);
		return req_query(r, sql_agent_touch, 1, params, NULL);
	}
	return TD_OK;
}

static enum td_err bearer(struct req *r, const char *header)
{
	struct auth *a = &r->auth;
	const char *token, *params[1];
	int64_t tenant;
	PGresult *res;
	enum td_err err;

	if (strncmp(header, "Bearer ", 7) != 0)
		return req_fail(
			r, TD_EAUTH,
			"the Authorization header must be 'Bearer <API key>'");
	if (strncmp(header, "Bearer tde_", 11) == 0)
		return agent(r, header);
	if (!credential_parse_bearer(header, &tenant, &token))
		return req_fail(r, TD_EAUTH, "the API key is malformed");
	header += 7;
	err = db_tx_begin(r->db, r->arena, tenant);
	if (err != TD_OK)
		return req_fail(r, err, "cannot begin: %s", r->db->errmsg);
	params[0] = auth_token_hash(r, header);
	err = req_query(r, sql_apikey, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_EAUTH,
				"the API key is unknown or revoked");
	a->kind = AUTH_APIKEY;
	a->tenant_id = tenant;
	a->apikey_id = db_int(res, 0, 0);
	a->role = auth_role_parse(db_text(res, 0, 1));
	a->role_name = auth_role_name(a->role);
	a->name = arena_strdup(r->arena, db_text(res, 0, 2));
	fill_tenant(a, r, res, 3, 7);
	if (!strcmp(db_text(res, 0, 6), "t")) {
		params[0] = arena_printf(r->arena, "%" PRId64, a->apikey_id);
		return req_query(r, sql_apikey_touch, 1, params, NULL);
	}
	return TD_OK;
}

static enum td_err session(struct req *r, const char *cookie)
{
	struct auth *a = &r->auth;
	const char *token, *params[2];
	int64_t tenant;
	struct db_stmt lookup;
	PGresult *res;
	enum td_err err;

	if (!credential_parse(cookie, '.', &tenant, &token)) {
		clear_session_cookie(r);
		return db_tx_begin(r->db, r->arena, 0);
	}
	params[0] = auth_token_hash(r, token);
	params[1] = arena_printf(r->arena, "%d", r->ctx->conf->session_idle);
	lookup = (struct db_stmt){ sql_session, 2, params, &res };
	err = db_tx_begin_batch(r->db, r->arena, tenant, &lookup, 1);
	if (err != TD_OK)
		return req_fail(r, err, "cannot begin: %s", r->db->errmsg);
	if (PQntuples(res) != 1) {
		/* Expired, logged out or deactivated: continue as nobody. */
		clear_session_cookie(r);
		err = db_tx_unbind(r->db, r->arena);
		if (err != TD_OK)
			return req_fail(r, err, "query failed: %s",
					r->db->errmsg);
		return TD_OK;
	}
	a->kind =
		!strcmp(db_text(res, 0, 2), "t") ? AUTH_MFA_PENDING : AUTH_USER;
	a->tenant_id = tenant;
	a->session_id = db_int(res, 0, 0);
	a->csrf = arena_strdup(r->arena, db_text(res, 0, 1));
	a->user_id = db_int(res, 0, 3);
	a->role = auth_role_parse(db_text(res, 0, 4));
	a->role_name = auth_role_name(a->role);
	a->name = arena_strdup(r->arena, db_text(res, 0, 5));
	a->email = arena_strdup(r->arena, db_text(res, 0, 6));
	fill_tenant(a, r, res, 7, 18);
	if (!db_isnull(res, 0, 11)) {
		a->timer_ticket_id = db_int(res, 0, 11);
		a->timer_ticket_number = db_int(res, 0, 12);
		a->timer_started_iso =
			arena_strdup(r->arena, db_text(res, 0, 13));
		a->timer_since = arena_strdup(r->arena, db_text(res, 0, 14));
		a->timer_banked = db_int(res, 0, 15);
		a->timer_paused = db_bool(res, 0, 16);
	}
	a->directory_version = db_int(res, 0, 17);
	if (!strcmp(db_text(res, 0, 10), "t")) {
		params[0] = arena_printf(r->arena, "%" PRId64, a->session_id);
		return req_query(r, sql_session_touch, 1, params, NULL);
	}
	return TD_OK;
}

enum td_err auth_authenticate(struct req *r)
{
	const char *authz = r->authorization, *cookie;

	memset(&r->auth, 0, sizeof(r->auth));
	if (authz != NULL && *authz != '\0')
		return bearer(r, authz);
	cookie = http_params_get(&r->cookies, AUTH_SESSION_COOKIE);
	if (cookie != NULL && *cookie != '\0')
		return session(r, cookie);
	return db_tx_begin(r->db, r->arena, 0);
}

const char *auth_anon_csrf(struct req *r)
{
	const char *c = http_params_get(&r->cookies, AUTH_CSRF_COOKIE);
	char token[AUTH_TOKEN_LEN + 1];

	if (c != NULL && credential_is_token(c))
		return c;
	if (!auth_new_token(token))
		return "";
	c = arena_strdup(r->arena, token);
	req_header(r, "Set-Cookie",
		   arena_printf(r->arena, "%s=%s%s", AUTH_CSRF_COOKIE, c,
				cookie_attrs(r, 60L * 60 * 24 * 30)));
	return c;
}

enum td_err auth_check_csrf(struct req *r)
{
	const char *want, *got;

	if (r->auth.kind == AUTH_APIKEY || r->auth.kind == AUTH_AGENT)
		return TD_OK;
	want = r->auth.csrf;
	if (want == NULL)
		want = http_params_get(&r->cookies, AUTH_CSRF_COOKIE);
	got = http_params_get(&r->form, "csrf");
	if (got == NULL)
		got = r->csrf_header;
	if (want == NULL || got == NULL || strlen(want) != AUTH_TOKEN_LEN ||
	    strlen(got) != AUTH_TOKEN_LEN ||
	    CRYPTO_memcmp(want, got, AUTH_TOKEN_LEN) != 0)
		return req_fail(
			r, TD_EFORBID,
			"this form has expired or did not come from tallydesk: reload the page and try again");
	return TD_OK;
}

bool auth_password_hash(const struct config *conf, const char *pw, char *out,
			size_t outlen)
{
	unsigned char salt[16];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return false;
	return argon2id_hash_encoded(
		       (uint32_t)conf->argon2_t, (uint32_t)conf->argon2_m,
		       (uint32_t)conf->argon2_p, pw, strlen(pw), salt,
		       sizeof(salt), 32, out, outlen) == ARGON2_OK;
}

bool auth_password_verify(const char *encoded, const char *pw)
{
	if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0)
		return false;
	return argon2id_verify(encoded, pw, strlen(pw)) == ARGON2_OK;
}

void auth_password_dummy(const struct config *conf, const char *pw)
{
	char out[256];

	(void)auth_password_hash(conf, pw, out, sizeof(out));
}

const char *auth_password_problem(const char *pw, const char *email)
{
	size_t n = strlen(pw);

	if (n < 10)
		return "use at least 10 characters";
	if (n > 256)
		return "use at most 256 characters";
	if (email != NULL && strcasecmp(pw, email) == 0)
		return "do not use your email address as your password";
	return NULL;
}

enum td_err auth_session_start(struct req *r, int64_t user_id, bool mfa_pending)
{
	char token[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	const char *params[7];
	PGresult *res;
	enum td_err err;
	int hours = r->ctx->conf->session_max;

	if (!auth_new_token(token) || !auth_new_token(csrf))
		return req_fail(r, TD_ESYS, "cannot make a session token");
	if (r->auth.session_id > 0) {
		/* Rotate: the session the browser came with ends here. */
		params[0] =
			arena_printf(r->arena, "%" PRId64, r->auth.session_id);
		err = req_query(r, sql_session_drop, 1, params, NULL);
		if (err != TD_OK)
			return err;
	}
	params[0] = arena_printf(r->arena, "%" PRId64, user_id);
	params[1] = auth_token_hash(r, token);
	params[2] = csrf;
	params[3] = mfa_pending ? "true" : "false";
	params[4] = arena_printf(r->arena, "%d", mfa_pending ? 1 : hours);
	params[5] = r->remote_addr;
	params[6] = r->user_agent;
	err = req_query(r, sql_session_new, 7, params, &res);
	if (err != TD_OK)
		return err;
	r->auth.session_id = db_int(res, 0, 0);
	r->auth.csrf = arena_strdup(r->arena, csrf);
	r->auth.user_id = user_id;
	r->auth.kind = mfa_pending ? AUTH_MFA_PENDING : AUTH_USER;
	req_header(r, "Set-Cookie",
		   arena_printf(r->arena, "%s=%" PRId64 ".%s%s",
				AUTH_SESSION_COOKIE, r->auth.tenant_id, token,
				cookie_attrs(r, 3600L * hours)));
	return TD_OK;
}

enum td_err auth_session_end(struct req *r)
{
	const char *params[1];
	enum td_err err;

	clear_session_cookie(r);
	if (r->auth.session_id <= 0)
		return TD_OK;
	params[0] = arena_printf(r->arena, "%" PRId64, r->auth.session_id);
	err = req_query(r, sql_session_drop, 1, params, NULL);
	r->auth.session_id = 0;
	return err;
}

bool auth_throttled(struct req *r, const char *account)
{
	const char *params[3] = { account, r->remote_addr,
				  arena_printf(r->arena, "%d",
					       r->ctx->conf->login_window) };
	PGresult *res;

	if (req_query(r, sql_throttle, 3, params, &res) != TD_OK)
		return true; /* fail closed */
	return db_int(res, 0, 0) >= r->ctx->conf->login_max_failures ||
	       db_int(res, 0, 1) >= r->ctx->conf->login_ip_max_failures;
}

void auth_failure(struct req *r, const char *account)
{
	const char *params[2] = { account, r->remote_addr };

	(void)req_query(r, sql_failure, 2, params, NULL);
	(void)req_query(r, sql_failure_prune, 0, NULL, NULL);
	log_warn("%s failed sign-in for '%s' from %s", r->request_id, account,
		 r->remote_addr);
}

void auth_success(struct req *r, const char *account)
{
	const char *params[1] = { account };

	(void)req_query(r, sql_success, 1, params, NULL);
}
