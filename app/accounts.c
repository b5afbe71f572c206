/* accounts.c: signing in and out, second factor, invites, password resets */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "accounts.h"
#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "req.h"
#include "totp.h"
#include "banned.h"

static const char sql_tenant_by_slug[] =
	"SELECT set_config('app.tenant_slug', $1, true),"
	" (SELECT id FROM tenants WHERE slug = $1)";
static const char sql_set_tenant[] =
	"SELECT set_config('app.tenant_id', $1, true)";
static const char sql_user_by_email[] =
	"SELECT id, password_hash, totp_enabled, name FROM users"
	" WHERE tenant_id = app_tenant() AND lower(email) = lower($1) AND active";
static const char sql_user_login[] =
	"UPDATE users SET last_login_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_user_totp[] =
	"SELECT totp_secret, totp_last_step FROM users"
	" WHERE tenant_id = app_tenant() AND id = $1 AND totp_enabled";
static const char sql_user_totp_step[] =
	"UPDATE users SET totp_last_step = $2 WHERE tenant_id = app_tenant()"
	" AND id = $1 AND totp_last_step < $2";
static const char sql_reset_new[] =
	"INSERT INTO password_resets (tenant_id, user_id, token_hash, link,"
	" expires_at) VALUES (app_tenant(), $1, $2, $3, now() + interval '1 hour')";
static const char sql_outbox[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text)"
	" VALUES (app_tenant(), $1, $2, $3, $4)";
static const char sql_reset_find[] =
	"SELECT r.id, r.user_id, u.email FROM password_resets r"
	" JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.user_id"
	" WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()"
	" AND u.active";
static const char sql_reset_use[] =
	"UPDATE password_resets SET used_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1 AND used_at IS NULL";
static const char sql_password_set[] =
	"UPDATE users SET password_hash = $2, password_changed_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_sessions_drop_user[] =
	"DELETE FROM sessions WHERE tenant_id = app_tenant() AND user_id = $1";
static const char sql_invite_find[] =
	"SELECT i.id, i.email, i.role, t.name FROM invites i"
	" JOIN tenants t ON t.id = i.tenant_id"
	" WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.revoked_at IS NULL"
	" AND i.expires_at > now()";
static const char sql_invite_use[] =
	"UPDATE invites SET used_at = now() WHERE tenant_id = app_tenant()"
	" AND id = $1 AND used_at IS NULL";
static const char sql_user_new[] =
	"INSERT INTO users (tenant_id, email, name, role, password_hash)"
	" VALUES (app_tenant(), $1, $2, $3, $4) RETURNING id";
static const char sql_user_exists[] =
	"SELECT 1 FROM users WHERE tenant_id = app_tenant()"
	" AND lower(email) = lower($1)";

static void set_title(struct req *r, const char *title, const char *view)
{
	json_object_set_new(req_view(r), "title", json_string(title));
	r->view_name = view;
}

/* Binds the transaction to the tenant whose slug was typed; 0 if none. */
static int64_t tenant_by_slug(struct req *r, const char *slug)
{
	const char *params[1] = { slug };
	PGresult *res;

	if (*slug == '\0' || strlen(slug) > 63)
		return 0;
	if (req_query(r, sql_tenant_by_slug, 1, params, &res) != TD_OK ||
	    db_isnull(res, 0, 1))
		return 0;
	r->auth.tenant_id = db_int(res, 0, 1);
	params[0] = req_id(r, r->auth.tenant_id);
	if (req_query(r, sql_set_tenant, 1, params, NULL) != TD_OK)
		return 0;
	return r->auth.tenant_id;
}

/*
 * Splits "<tenant>.<token>" from a link and binds the transaction to the
 * tenant; false for anything malformed.
 */
static bool link_token(struct req *r, const char **token)
{
	const char *s = route_arg_str(&r->args, "token"), *dot, *params[1];
	char *end;
	long long id;

	if (s == NULL || (dot = strchr(s, '.')) == NULL)
		return false;
	id = strtoll(s, &end, 10);
	if (end != dot || id <= 0 || strlen(dot + 1) != AUTH_TOKEN_LEN)
		return false;
	r->auth.tenant_id = id;
	params[0] = req_id(r, id);
	if (req_query(r, sql_set_tenant, 1, params, NULL) != TD_OK)
		return false;
	*token = dot + 1;
	return true;
}

/* GET /login */
enum td_err accounts_login_form(struct req *r)
{
	json_t *v = req_view(r);
	const char *next = http_params_get(&r->query_params, "next");
	const char *ws = http_params_get(&r->cookies, "td_ws");

	if (r->auth.kind == AUTH_USER) {
		r->redirect = form_safe_next(next);
		return TD_OK;
	}
	if (ws == NULL || *ws == '\0')
		ws = r->ctx->conf->default_workspace;
	json_object_set_new(v, "form",
			    json_pack("{s:s, s:s}", "workspace", ws, "next",
				      form_safe_next(next)));
	set_title(r, "Sign in", "auth/login");
	return TD_OK;
}

static enum td_err login_refused(struct req *r, int status, const char *why)
{
	static const char *const keep[] = { "workspace", "email", "next",
					    NULL };

	r->error_detail = why;
	if (r->want_json) {
		r->status = status;
		return status == 429 ? TD_EFORBID : TD_EAUTH;
	}
	json_object_set_new(req_view(r), "error", json_string(why));
	form_reject(r, "auth/login", keep);
	r->status = status;
	json_object_set_new(req_view(r), "title", json_string("Sign in"));
	return TD_OK;
}

/* POST /login — 401 on a wrong password, 429 when throttled; both commit. */
enum td_err accounts_login(struct req *r)
{
	const char *ws = form_text(r, "workspace"),
		   *email = form_text(r, "email");
	const char *pw = form_text(r, "password"), *params[1], *account;
	const char *next = form_safe_next(form_text(r, "next"));
	PGresult *res;
	enum td_err err;
	int64_t user;
	bool totp;

	if (tenant_by_slug(r, ws) == 0) {
		auth_password_dummy(r->ctx->conf, pw);
		return login_refused(
			r, 401,
			"The workspace, email or password is not right.");
	}
	account = arena_printf(r->arena, "%" PRId64 ":%s", r->auth.tenant_id,
			       email);
	if (auth_throttled(r, account))
		return login_refused(
			r, 429,
			"Too many failed sign-ins. Wait 15 minutes, or reset your password.");
	params[0] = email;
	err = req_query(r, sql_user_by_email, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 || db_isnull(res, 0, 1)) {
		auth_password_dummy(r->ctx->conf, pw);
		auth_failure(r, account);
		return login_refused(
			r, 401,
			"The workspace, email or password is not right.");
	}
	if (!auth_password_verify(db_text(res, 0, 1), pw)) {
		auth_failure(r, account);
		return login_refused(
			r, 401,
			"The workspace, email or password is not right.");
	}
	user = db_int(res, 0, 0);
	totp = !strcmp(db_text(res, 0, 2), "t");
	auth_success(r, account);
	err = auth_session_start(r, user, totp);
	if (err != TD_OK)
		return err;
	req_header(
		r, "Set-Cookie",
		arena_printf(r->arena,
			     "td_ws=%s; Path=/; SameSite=Lax; Max-Age=31536000",
			     ws));
	if (totp) {
		r->redirect =
			arena_printf(r->arena, "/login/totp?next=%s", next);
		return TD_OK;
	}
	r->auth.email = email;
	params[0] = req_id(r, user);
	err = req_query(r, sql_user_login, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.login", "user", user, NULL, NULL);
	r->redirect = next;
	return err;
}

/* GET /login/totp */
enum td_err accounts_totp_form(struct req *r)
{
	if (r->auth.kind != AUTH_MFA_PENDING) {
		r->redirect = "/login";
		return TD_OK;
	}
	json_object_set_new(req_view(r), "form",
			    json_pack("{s:s}", "next",
				      form_safe_next(http_params_get(
					      &r->query_params, "next"))));
	set_title(r, "Two-step verification", "auth/totp");
	return TD_OK;
}

/* POST /login/totp — a wrong code counts as a failed sign-in. */
enum td_err accounts_totp(struct req *r)
{
	static const char *const keep[] = { "next", NULL };
	const char *params[2], *account;
	unsigned char *key;
	size_t keylen;
	PGresult *res;
	enum td_err err;
	int64_t step;

	if (r->auth.kind != AUTH_MFA_PENDING) {
		r->redirect = "/login";
		return TD_OK;
	}
	account = arena_printf(r->arena, "%" PRId64 ":%s", r->auth.tenant_id,
			       r->auth.email);
	if (auth_throttled(r, account)) {
		auth_session_end(r);
		form_flash(r, "error",
			   "Too many failed sign-ins. Wait 15 minutes.");
		r->redirect = "/login";
		return TD_OK;
	}
	params[0] = req_id(r, r->auth.user_id);
	err = req_query(r, sql_user_totp, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_EAUTH,
				"two-step verification is not set up");
	key = PQunescapeBytea((const unsigned char *)db_text(res, 0, 0),
			      &keylen);
	step = totp_verify(key, keylen, form_text(r, "code"),
			   (int64_t)time(NULL), db_int(res, 0, 1));
	PQfreemem(key);
	if (step < 0) {
		auth_failure(r, account);
		form_error(
			r, "code",
			"That code is not right. Use the current code from your app.");
		form_reject(r, "auth/totp", keep);
		r->status = 401;
		json_object_set_new(req_view(r), "title",
				    json_string("Two-step verification"));
		return TD_OK;
	}
	params[1] = arena_printf(r->arena, "%" PRId64, step);
	err = req_query(r, sql_user_totp_step, 2, params, NULL);
	if (err != TD_OK)
		return err;
	auth_success(r, account);
	/* A new session: the pending one never becomes a full one. */
	err = auth_session_start(r, r->auth.user_id, false);
	if (err == TD_OK)
		err = req_query(r, sql_user_login, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.login", "user", r->auth.user_id,
				  NULL, NULL);
	r->redirect = form_safe_next(form_text(r, "next"));
	return err;
}

/* POST /logout */
enum td_err accounts_logout(struct req *r)
{
	enum td_err err;

	if (r->auth.kind == AUTH_USER) {
		err = audit_write(r, "user.logout", "user", r->auth.user_id,
				  NULL, NULL);
		if (err != TD_OK)
			return err;
	}
	err = auth_session_end(r);
	if (err != TD_OK)
		return err;
	form_flash(r, "ok", "You have signed out.");
	r->redirect = "/login";
	return TD_OK;
}

/* GET /login/forgot */
enum td_err accounts_forgot_form(struct req *r)
{
	const char *ws = http_params_get(&r->cookies, "td_ws");

	json_object_set_new(
		req_view(r), "form",
		json_pack("{s:s}", "workspace",
			  ws ? ws : r->ctx->conf->default_workspace));
	set_title(r, "Reset your password", "auth/forgot");
	return TD_OK;
}

/*
 * POST /login/forgot — answers the same whether or not the account
 * exists; when it does, the link goes to the outbox (and the admins'
 * user list until mail is sent).
 */
enum td_err accounts_forgot(struct req *r)
{
	const char *email = form_text(r, "email"), *params[4], *account;
	char token[AUTH_TOKEN_LEN + 1];
	PGresult *res;
	enum td_err err;
	const char *link;

	set_title(r, "Reset your password", "auth/forgot");
	json_object_set_new(req_view(r), "sent", json_true());
	if (tenant_by_slug(r, form_text(r, "workspace")) == 0)
		return TD_OK;
	account = arena_printf(r->arena, "%" PRId64 ":%s", r->auth.tenant_id,
			       email);
	if (auth_throttled(r, account))
		return TD_OK;
	params[0] = email;
	err = req_query(r, sql_user_by_email, 1, params, &res);
	if (err != TD_OK || PQntuples(res) != 1)
		return err;
	if (!auth_new_token(token))
		return req_fail(r, TD_ESYS, "cannot make a token");
	link = arena_printf(r->arena, "%s/reset/%" PRId64 ".%s",
			    r->ctx->conf->base_url, r->auth.tenant_id, token);
	params[0] = db_text(res, 0, 0);
	params[1] = auth_token_hash(r, token);
	params[2] = link;
	err = req_query(r, sql_reset_new, 3, params, NULL);
	if (err != TD_OK)
		return err;
	params[0] = "password_reset";
	params[1] = email;
	params[2] = "Reset your tallydesk password";
	params[3] = arena_printf(
		r->arena,
		"Someone (hopefully you) asked to reset the password of %s.\n\n"
		"Open this link within an hour to choose a new one:\n%s\n\n"
		"If it was not you, ignore this message.\n",
		email, link);
	err = req_query(r, sql_outbox, 4, params, NULL);
	if (err != TD_OK)
		return err;
	return audit_write(r, "user.password_reset_requested", "user",
			   db_int(res, 0, 0), NULL, NULL);
}

static enum td_err find_reset(struct req *r, PGresult **res)
{
	const char *token, *params[1];

	if (!link_token(r, &token)) {
		*res = NULL;
		return TD_OK;
	}
	params[0] = auth_token_hash(r, token);
	return req_query(r, sql_reset_find, 1, params, res);
}

/* GET /reset/:token */
enum td_err accounts_reset_form(struct req *r)
{
	PGresult *res;
	enum td_err err = find_reset(r, &res);

	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "valid",
			    json_boolean(res != NULL && PQntuples(res) == 1));
	json_object_set_new(req_view(r), "action", json_string(r->path));
	set_title(r, "Choose a new password", "auth/reset");
	return TD_OK;
}

/* The password and its confirmation, checked; NULL (errors noted) if bad. */
static const char *new_password(struct req *r, const char *email)
{
	const char *pw = form_text(r, "password"), *why;

	why = auth_password_problem(pw, email);
	if (why != NULL) {
		form_error(r, "password", why);
		return NULL;
	}
	if (r->json_body == NULL &&
	    strcmp(pw, form_text(r, "password2")) != 0) {
		form_error(r, "password2",
			   "the two passwords are not the same");
		return NULL;
	}
	return pw;
}

/* POST /reset/:token */
enum td_err accounts_reset(struct req *r)
{
	const char *pw, *params[2];
	char hash[256];
	PGresult *res;
	enum td_err err = find_reset(r, &res);
	int64_t user;

	if (err != TD_OK)
		return err;
	if (res == NULL || PQntuples(res) != 1)
		return accounts_reset_form(r);
	user = db_int(res, 0, 1);
	pw = new_password(r, db_text(res, 0, 2));
	if (pw == NULL) {
		json_object_set_new(req_view(r), "valid", json_true());
		json_object_set_new(req_view(r), "action",
				    json_string(r->path));
		json_object_set_new(req_view(r), "title",
				    json_string("Choose a new password"));
		return form_reject(r, "auth/reset", NULL);
	}
	if (!auth_password_hash(r->ctx->conf, pw, hash, sizeof(hash)))
		return req_fail(r, TD_ESYS, "cannot hash the password");
	params[0] = db_text(res, 0, 0);
	err = req_query(r, sql_reset_use, 1, params, NULL);
	params[0] = req_id(r, user);
	params[1] = hash;
	if (err == TD_OK)
		err = req_query(r, sql_password_set, 2, params, NULL);
	/* Whoever knew the old password is signed out everywhere. */
	if (err == TD_OK)
		err = req_query(r, sql_sessions_drop_user, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "user.password_reset", "user", user, NULL,
				  NULL);
	if (err != TD_OK)
		return err;
	form_flash(r, "ok",
		   "Your password is changed. Sign in with the new one.");
	r->redirect = "/login";
	return TD_OK;
}

static enum td_err find_invite(struct req *r, PGresult **res)
{
	const char *token, *params[1];

	if (!link_token(r, &token)) {
		*res = NULL;
		return TD_OK;
	}
	params[0] = auth_token_hash(r, token);
	return req_query(r, sql_invite_find, 1, params, res);
}

static void invite_view(struct req *r, PGresult *res)
{
	json_t *v = req_view(r);
	bool valid = res != NULL && PQntuples(res) == 1;

	json_object_set_new(v, "valid", json_boolean(valid));
	json_object_set_new(v, "action", json_string(r->path));
	if (valid)
		json_object_set_new(v, "invite",
				    json_pack("{s:s, s:s, s:s}", "email",
					      db_text(res, 0, 1), "role",
					      db_text(res, 0, 2), "tenant_name",
					      db_text(res, 0, 3)));
	set_title(r, "Join tallydesk", "auth/invite");
}

/* GET /invite/:token */
enum td_err accounts_invite_form(struct req *r)
{
	PGresult *res;
	enum td_err err = find_invite(r, &res);

	if (err != TD_OK)
		return err;
	invite_view(r, res);
	return TD_OK;
}

/* POST /invite/:token — creates the user and signs them in. */
enum td_err accounts_invite_accept(struct req *r)
{
	static const char *const keep[] = { "name", NULL };
	const char *name = form_text(r, "name"), *pw, *email, *params[4];
	char hash[256];
	PGresult *res, *created;
	enum td_err err = find_invite(r, &res);
	json_t *after;
	int64_t user;

	if (err != TD_OK)
		return err;
	if (res == NULL || PQntuples(res) != 1) {
		invite_view(r, res);
		return TD_OK;
	}
	email = db_text(res, 0, 1);
	if (*name == '\0' || strlen(name) > 200)
		form_error(r, "name",
			   "enter your name (at most 200 characters)");
	pw = new_password(r, email);
	params[0] = email;
	err = req_query(r, sql_user_exists, 1, params, &created);
	if (err != TD_OK)
		return err;
	if (PQntuples(created) > 0)
		form_error(r, "email",
			   "a user with this email already exists here");
	if (form_has_errors(r) || pw == NULL) {
		invite_view(r, res);
		return form_reject(r, "auth/invite", keep);
	}
	if (!auth_password_hash(r->ctx->conf, pw, hash, sizeof(hash)))
		return req_fail(r, TD_ESYS, "cannot hash the password");
	params[0] = db_text(res, 0, 0);
	err = req_query(r, sql_invite_use, 1, params, NULL);
	if (err != TD_OK)
		return err;
	params[0] = email;
	params[1] = name;
	params[2] = db_text(res, 0, 2);
	params[3] = hash;
	err = req_query(r, sql_user_new, 4, params, &created);
	if (err != TD_OK)
		return err;
	user = db_int(created, 0, 0);
	err = auth_session_start(r, user, false);
	if (err != TD_OK)
		return err;
	r->auth.email = email;
	after = json_pack("{s:s, s:s, s:s}", "email", email, "name", name,
			  "role", params[2]);
	req_own_json(r, after);
	err = audit_write(r, "user.create", "user", user, NULL, after);
	form_flash(r, "ok", "Welcome to tallydesk.");
	r->redirect = "/";
	return err;
}

/* GET /me (JSON) — who is calling. */
enum td_err accounts_me(struct req *r)
{
	const struct auth *a = &r->auth;
	json_t *v = req_view(r);

	json_object_set_new(v, "tenant",
			    json_pack("{s:I, s:s, s:s}", "id",
				      (json_int_t)a->tenant_id, "slug",
				      a->tenant_slug, "name", a->tenant_name));
	json_object_set_new(v, "role", json_string(a->role_name));
	if (a->kind == AUTH_APIKEY)
		json_object_set_new(v, "api_key",
				    json_pack("{s:I, s:s}", "id",
					      (json_int_t)a->apikey_id, "name",
					      a->name));
	else
		json_object_set_new(v, "user",
				    json_pack("{s:I, s:s, s:s}", "id",
					      (json_int_t)a->user_id, "name",
					      a->name, "email", a->email));
	return TD_OK;
}
