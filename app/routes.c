/* routes.c: the one route table — who may call what */
#include "config.h"

#include <stddef.h>

#include "accounts.h"
#include "auth.h"
#include "pages.h"
#include "router.h"
#include "routes.h"
#include "settings.h"
#include "banned.h"

#define GET (HTTP_GET | HTTP_HEAD)
#define POST HTTP_POST
#define ANYONE ROUTE_PUBLIC, 0
#define STAFF 0, ROLE_STAFF
#define MANAGERS 0, ROLE_MANAGER | ROLE_ADMIN
#define ADMINS 0, ROLE_ADMIN

static const struct route table[] = {
	{ GET, "/healthz", pages_healthz, ROUTE_PUBLIC | ROUTE_JSON | ROUTE_NOTX, 0 },
	{ GET, "/bench/list", pages_bench_list, ROUTE_PUBLIC | ROUTE_NOTX, 0 },
	{ POST, "/echo", pages_echo, ROUTE_PUBLIC | ROUTE_JSON | ROUTE_NOTX | ROUTE_NOCSRF, 0 },

	{ GET, "/login", accounts_login_form, ANYONE },
	{ POST, "/login", accounts_login, ANYONE },
	{ GET, "/login/totp", accounts_totp_form, ROUTE_MFA, ROLE_STAFF },
	{ POST, "/login/totp", accounts_totp, ROUTE_MFA, ROLE_STAFF },
	{ POST, "/logout", accounts_logout, ROUTE_PUBLIC | ROUTE_MFA, 0 },
	{ GET, "/login/forgot", accounts_forgot_form, ANYONE },
	{ POST, "/login/forgot", accounts_forgot, ANYONE },
	{ GET, "/reset/:token", accounts_reset_form, ANYONE },
	{ POST, "/reset/:token", accounts_reset, ANYONE },
	{ GET, "/invite/:token", accounts_invite_form, ANYONE },
	{ POST, "/invite/:token", accounts_invite_accept, ANYONE },
	{ GET, "/me", accounts_me, ROUTE_JSON, ROLE_STAFF },

	{ GET, "/", pages_home, STAFF },
	{ GET, "/tickets", pages_placeholder, STAFF },
	{ GET, "/clients", pages_placeholder, STAFF },
	{ GET, "/contracts", pages_placeholder, STAFF },
	{ GET, "/invoices", pages_placeholder, MANAGERS },
	{ GET, "/time", pages_placeholder, STAFF },
	{ GET, "/reports", pages_placeholder, MANAGERS },

	{ GET, "/settings", settings_workspace, ADMINS },
	{ POST, "/settings", settings_workspace_save, ADMINS },
	{ POST, "/settings/logo", settings_logo_upload, ADMINS },
	{ POST, "/settings/logo/delete", settings_logo_delete, ADMINS },
	{ GET, "/settings/logo", settings_logo, STAFF },
	{ POST, "/settings/tax-rates", settings_tax_rate_add, ADMINS },
	{ POST, "/settings/tax-rates/:id/archive", settings_tax_rate_archive, ADMINS },
	{ GET, "/settings/users", settings_users, ADMINS },
	{ POST, "/settings/users/invite", settings_user_invite, ADMINS },
	{ POST, "/settings/users/:id/role", settings_user_role, ADMINS },
	{ POST, "/settings/users/:id/deactivate", settings_user_deactivate, ADMINS },
	{ POST, "/settings/users/:id/reactivate", settings_user_reactivate, ADMINS },
	{ POST, "/settings/invites/:id/revoke", settings_invite_revoke, ADMINS },
	{ GET, "/settings/apikeys", settings_apikeys, ADMINS },
	{ POST, "/settings/apikeys", settings_apikey_create, ADMINS },
	{ POST, "/settings/apikeys/:id/revoke", settings_apikey_revoke, ADMINS },
	{ GET, "/settings/security", settings_security, STAFF },
	{ POST, "/settings/password", settings_password, STAFF },
	{ POST, "/settings/totp/start", settings_totp_start, STAFF },
	{ POST, "/settings/totp/enable", settings_totp_enable, STAFF },
	{ POST, "/settings/totp/disable", settings_totp_disable, STAFF },
	{ POST, "/settings/sessions/logout-all", settings_logout_all, STAFF },
	{ GET, "/settings/audit", settings_audit, MANAGERS },
};

const struct route *routes_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}
