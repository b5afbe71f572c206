/* auth.h: who is calling — sessions, API keys, passwords, CSRF, throttling */
#ifndef TD_AUTH_H
#define TD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct config;
struct req;

/* Roles as bits, so a route can name the set that may call it. */
enum auth_role {
	ROLE_TECH = 1 << 0,
	ROLE_MANAGER = 1 << 1,
	ROLE_ADMIN = 1 << 2,
	ROLE_STAFF = ROLE_TECH | ROLE_MANAGER | ROLE_ADMIN,
	ROLE_AGENT = 1 << 3, /* an RMM agent with a client's enrollment token */
};

enum auth_kind {
	AUTH_NONE = 0,
	AUTH_USER,	  /* a staff session cookie */
	AUTH_MFA_PENDING, /* password accepted, second factor not yet */
	AUTH_APIKEY,	  /* Authorization: Bearer td_... */
	AUTH_AGENT, /* Authorization: Bearer tde_... (one client's assets) */
	/* A client contact's portal session (portal.c). */
	AUTH_PORTAL,
};

/* The caller of a request; strings live in the request arena. */
struct auth {
	enum auth_kind kind;
	int64_t tenant_id;
	int64_t user_id;   /* AUTH_USER, AUTH_MFA_PENDING */
	int64_t apikey_id; /* AUTH_APIKEY; the enrollment token for AUTH_AGENT
			    */
	int64_t client_id; /* AUTH_AGENT, AUTH_PORTAL: the only client */
	/* AUTH_PORTAL: the signed-in contact. */
	int64_t contact_id;
	int64_t session_id;
	enum auth_role role;
	const char *role_name;
	const char *name;  /* user's or key's name */
	const char *email; /* users only */
	const char *tenant_name;
	const char *tenant_slug;
	const char *time_zone; /* the tenant's, for dates on its pages */
	const char *currency;
	const char *csrf; /* the session's CSRF token, or the anonymous one */
	/* A session user's running timer (ticket id 0: none), for the nav. */
	int64_t timer_ticket_id;
	int64_t timer_ticket_number;
	const char *timer_started_iso; /* UTC, "2026-03-02T09:30:00Z" */
	const char *timer_since;       /* local "09:30" */
	int64_t timer_banked;	       /* seconds before the running stretch */
	bool timer_paused;	       /* a passive timer, paused */
	/*
	 * The tenant's directory version (people, queues, saved views, status
	 * names; sql/0022) as the session lookup saw it, for keeping those
	 * lists between requests; -1 when unknown (keys, agents, portal).
	 */
	int64_t directory_version;
};

#define AUTH_SESSION_COOKIE "td_session"
#define AUTH_CSRF_COOKIE    "td_csrf"
#define AUTH_TOKEN_LEN	    43 /* 32 random bytes, base64url without padding */

/* "admin" -> ROLE_ADMIN; 0 for anything else. */
enum auth_role auth_role_parse(const char *s);
const char *auth_role_name(enum auth_role role);

/*
 * Identifies the caller from an Authorization header or the session
 * cookie and opens the request's transaction bound to that tenant (no
 * tenant for anonymous callers). A bad or revoked bearer key is TD_EAUTH;
 * an unknown, expired or deactivated session is simply anonymous (and the
 * stale cookie is cleared).
 */
enum td_err auth_authenticate(struct req *r);

/*
 * For unsafe methods of browser requests: the form field "csrf" or the
 * X-CSRF-Token header must equal the session's token (or, without a
 * session, the td_csrf cookie). TD_EFORBID when it does not.
 */
enum td_err auth_check_csrf(struct req *r);

/* 32 random bytes as base64url (AUTH_TOKEN_LEN chars + NUL). */
bool auth_new_token(char out[AUTH_TOKEN_LEN + 1]);

/* SHA-256 of a token, as stored in the database (32 bytes, "\x..." hex). */
const char *auth_token_hash(struct req *r, const char *token);
char *auth_token_hash_hex(char out[67], const char *token);

/* argon2id with the configured cost; out holds the encoded hash. */
bool auth_password_hash(const struct config *conf, const char *pw, char *out,
			size_t outlen);

/* Constant-time check of pw against an encoded argon2id hash. */
bool auth_password_verify(const char *encoded, const char *pw);

/* Burns the time a real verification takes (unknown account). */
void auth_password_dummy(const struct config *conf, const char *pw);

/* Password rules for new passwords: NULL if acceptable, else why. */
const char *auth_password_problem(const char *pw, const char *email);

/*
 * Starts a session for user_id in the request's tenant (rotating any
 * session the request came with) and sets the cookie.
 */
enum td_err auth_session_start(struct req *r, int64_t user_id,
			       bool mfa_pending);

/* Ends the request's session and clears the cookie. */
enum td_err auth_session_end(struct req *r);

/*
 * Login throttling, shared by every worker through PostgreSQL: too many
 * recent failures for the account or the address. The count of failures
 * is recorded with auth_failure() and forgotten on success.
 */
bool auth_throttled(struct req *r, const char *account);
void auth_failure(struct req *r, const char *account);
void auth_success(struct req *r, const char *account);

/* Sets the anonymous CSRF cookie if the request has none; returns the token. */
const char *auth_anon_csrf(struct req *r);

#endif
