/* routes.c: the one route table — who may call what */
#include "config.h"

#include <stddef.h>

#include "accounts.h"
#include "agent.h"
#include "alerts.h"
#include "assets.h"
#include "auth.h"
#include "clients.h"
#include "comments.h"
#include "contacts.h"
#include "contracts.h"
#include "imports.h"
#include "pages.h"
#include "queue.h"
#include "router.h"
#include "routes.h"
#include "settings.h"
#include "sites.h"
#include "sla.h"
#include "tickets.h"
#include "ticketsettings.h"
#include "timeentries.h"
#include "timers.h"
#include "banned.h"

#define GET	 (HTTP_GET | HTTP_HEAD)
#define POST	 HTTP_POST
#define ANYONE	 ROUTE_PUBLIC, 0
#define STAFF	 0, ROLE_STAFF
#define MANAGERS 0, ROLE_MANAGER | ROLE_ADMIN
#define ADMINS	 0, ROLE_ADMIN
#define AGENTS	 ROUTE_JSON, ROLE_AGENT

static const struct route table[] = {
	{ GET, "/healthz", pages_healthz,
	  ROUTE_PUBLIC | ROUTE_JSON | ROUTE_NOTX, 0 },
	{ GET, "/bench/list", pages_bench_list, ROUTE_PUBLIC | ROUTE_NOTX, 0 },
	{ POST, "/echo", pages_echo,
	  ROUTE_PUBLIC | ROUTE_JSON | ROUTE_NOTX | ROUTE_NOCSRF, 0 },

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
	{ GET, "/tickets", queue_list, STAFF },
	{ POST, "/tickets", tickets_create, STAFF },
	{ GET, "/tickets/new", tickets_new, STAFF },
	{ GET, "/tickets/mine", queue_mine, STAFF },
	{ GET, "/tickets/board", queue_board, STAFF },
	{ POST, "/tickets/bulk", queue_bulk, STAFF },
	{ POST, "/tickets/views", queue_view_save, STAFF },
	{ POST, "/tickets/views/:id/delete", queue_view_delete, STAFF },
	{ GET, "/tickets/:id", tickets_show, STAFF },
	{ POST, "/tickets/:id", tickets_update, STAFF },
	{ POST, "/tickets/:id/close", tickets_close, STAFF },
	{ POST, "/tickets/:id/reopen", tickets_reopen, STAFF },
	{ POST, "/tickets/:id/merge", tickets_merge, STAFF },
	{ POST, "/tickets/:id/split", tickets_split, STAFF },
	{ POST, "/tickets/:id/move", queue_board_move, STAFF },
	{ POST, "/tickets/:id/comments", comments_create, STAFF },
	{ POST, "/tickets/:id/attachments", comments_attach, STAFF },
	{ POST, "/comments/:id", comments_update, STAFF },
	{ GET, "/attachments/:id", comments_download, STAFF },
	{ POST, "/alerts", alerts_intake, ROUTE_JSON, ROLE_STAFF },
	{ GET, "/settings/tickets", ticketsettings_page, ADMINS },
	{ POST, "/settings/tickets", ticketsettings_labels_save, ADMINS },
	{ POST, "/settings/queues", ticketsettings_queue_add, ADMINS },
	{ POST, "/settings/queues/:id", ticketsettings_queue_rename, ADMINS },
	{ POST, "/settings/queues/:id/delete", ticketsettings_queue_delete,
	  ADMINS },
	{ GET, "/settings/alerts", alerts_settings, ADMINS },
	{ POST, "/settings/alerts", alerts_settings_save, ADMINS },
	{ GET, "/settings/sla", sla_settings, ADMINS },
	{ POST, "/settings/sla", sla_tier_create, ADMINS },
	{ GET, "/settings/sla/:id", sla_tier_edit, ADMINS },
	{ POST, "/settings/sla/:id", sla_tier_update, ADMINS },
	{ POST, "/settings/sla/:id/delete", sla_tier_delete, ADMINS },
	{ POST, "/settings/sla/:id/holidays", sla_holiday_add, ADMINS },
	{ POST, "/settings/sla/:id/holidays/:holiday_id/delete",
	  sla_holiday_delete, ADMINS },
	{ GET, "/clients/:id/maintenance", alerts_windows, STAFF },
	{ POST, "/clients/:id/maintenance", alerts_window_create, MANAGERS },
	{ POST, "/maintenance/:id/delete", alerts_window_delete, MANAGERS },
	{ GET, "/clients", clients_list, STAFF },
	{ POST, "/clients", clients_create, STAFF },
	{ GET, "/clients/new", clients_new, STAFF },
	{ GET, "/clients/merge", clients_merge_form, MANAGERS },
	{ POST, "/clients/merge", clients_merge, MANAGERS },
	{ GET, "/clients/export.csv", imports_export_clients, STAFF },
	{ GET, "/clients/:id", clients_show, STAFF },
	{ POST, "/clients/:id", clients_update, STAFF },
	{ GET, "/clients/:id/edit", clients_edit, STAFF },
	{ POST, "/clients/:id/archive", clients_archive, MANAGERS },
	{ POST, "/clients/:id/restore", clients_restore, MANAGERS },
	{ POST, "/clients/:id/delete", clients_delete, MANAGERS },
	{ POST, "/clients/:id/domains", clients_domain_add, STAFF },
	{ POST, "/clients/:id/domains/:domain_id/delete", clients_domain_delete,
	  STAFF },
	{ POST, "/clients/:id/related", clients_link_add, STAFF },
	{ POST, "/clients/:id/related/:other_id/delete", clients_link_delete,
	  STAFF },
	{ GET, "/clients/:id/activity", clients_activity, STAFF },
	{ GET, "/clients/:id/contacts", contacts_list, STAFF },
	{ POST, "/clients/:id/contacts", contacts_create, STAFF },
	{ GET, "/clients/:id/contacts/export.csv", imports_export_contacts,
	  STAFF },
	{ GET, "/contacts/:id/edit", contacts_edit, STAFF },
	{ POST, "/contacts/:id", contacts_update, STAFF },
	{ POST, "/contacts/:id/delete", contacts_delete, STAFF },
	{ GET, "/clients/:id/sites", sites_list, STAFF },
	{ POST, "/clients/:id/sites", sites_create, STAFF },
	{ POST, "/sites/:id", sites_update, STAFF },
	{ POST, "/sites/:id/delete", sites_delete, STAFF },
	{ GET, "/clients/:id/assets", assets_list, STAFF },
	{ POST, "/clients/:id/assets", assets_create, STAFF },
	{ GET, "/clients/:id/assets/export.csv", imports_export_assets, STAFF },
	{ GET, "/clients/:id/asset-counts", assets_counts, STAFF },
	{ GET, "/clients/:id/tokens", agent_tokens, MANAGERS },
	{ POST, "/clients/:id/tokens", agent_token_create, MANAGERS },
	{ POST, "/clients/:id/tokens/:token_id/revoke", agent_token_revoke,
	  MANAGERS },
	{ POST, "/assets/move", assets_move, STAFF },
	{ GET, "/assets/:id", assets_show, STAFF },
	{ POST, "/assets/:id", assets_update, STAFF },
	{ GET, "/import", imports_form, MANAGERS },
	{ POST, "/import/preview", imports_preview, MANAGERS },
	{ POST, "/import/:id/commit", imports_commit, MANAGERS },
	{ GET, "/settings/asset-kinds", assets_kinds, ADMINS },
	{ POST, "/settings/asset-kinds", assets_kind_add, ADMINS },

	{ HTTP_PUT, "/agent/assets/:external", agent_asset_put, AGENTS },
	{ HTTP_DELETE, "/agent/assets/:external", agent_asset_delete, AGENTS },
	{ POST, "/agent/assets", agent_assets_bulk, AGENTS },
	{ GET, "/contracts", contracts_list, STAFF },
	{ POST, "/contracts", contracts_create, MANAGERS },
	{ GET, "/contracts/new", contracts_new, MANAGERS },
	{ GET, "/contracts/:id", contracts_show, STAFF },
	{ POST, "/contracts/:id", contracts_update, MANAGERS },
	{ GET, "/contracts/:id/edit", contracts_edit, MANAGERS },
	{ POST, "/contracts/:id/end", contracts_end, MANAGERS },
	{ POST, "/contracts/:id/void", contracts_void, ADMINS },
	{ POST, "/contracts/:id/lines", contracts_line_add, MANAGERS },
	{ POST, "/contracts/:id/lines/:line_id", contracts_line_update,
	  MANAGERS },
	{ POST, "/contracts/:id/lines/:line_id/delete", contracts_line_delete,
	  MANAGERS },
	{ GET, "/clients/:id/contracts", contracts_client_list, STAFF },
	{ GET, "/reports/blocks", contracts_blocks_report, MANAGERS },
	{ GET, "/reports/blocks.csv", contracts_blocks_csv, MANAGERS },
	{ GET, "/invoices", pages_placeholder, MANAGERS },
	{ GET, "/time", timeentries_page, STAFF },
	{ POST, "/tickets/:id/timer", timers_start, STAFF },
	{ POST, "/tickets/:id/time", timeentries_create, STAFF },
	{ GET, "/timer", timers_show, STAFF },
	{ POST, "/timer/stop", timers_stop, STAFF },
	{ POST, "/timer/discard", timers_discard, STAFF },
	{ POST, "/timer/pause", timers_pause, STAFF },
	{ POST, "/time/passive", timeentries_passive_save, STAFF },
	{ POST, "/time/entries", timeentries_create, STAFF },
	{ GET, "/time/entries/:id", timeentries_show, STAFF },
	{ POST, "/time/entries/:id", timeentries_update, STAFF },
	{ POST, "/time/entries/:id/delete", timeentries_delete, STAFF },
	{ GET, "/time/bulk", timeentries_bulk_form, STAFF },
	{ POST, "/time/bulk", timeentries_bulk, STAFF },
	{ GET, "/time/approvals", timeentries_approvals, MANAGERS },
	{ POST, "/time/approvals", timeentries_review, MANAGERS },
	{ GET, "/time/missing", timeentries_missing, MANAGERS },
	{ GET, "/reports/time", timeentries_report, MANAGERS },
	{ GET, "/reports/time.csv", timeentries_report_csv, MANAGERS },
	{ GET, "/settings/time", timeentries_settings, ADMINS },
	{ POST, "/settings/time", timeentries_settings_save, ADMINS },
	{ POST, "/settings/users/:id/rates", timeentries_rates_save, ADMINS },
	{ GET, "/reports", pages_reports, MANAGERS },
	{ GET, "/reports/sla", sla_report, MANAGERS },
	{ GET, "/reports/sla.csv", sla_report_csv, MANAGERS },

	{ GET, "/settings", settings_workspace, ADMINS },
	{ POST, "/settings", settings_workspace_save, ADMINS },
	{ POST, "/settings/logo", settings_logo_upload, ADMINS },
	{ POST, "/settings/logo/delete", settings_logo_delete, ADMINS },
	{ GET, "/settings/logo", settings_logo, STAFF },
	{ POST, "/settings/tax-rates", settings_tax_rate_add, ADMINS },
	{ POST, "/settings/tax-rates/:id/archive", settings_tax_rate_archive,
	  ADMINS },
	{ GET, "/settings/users", settings_users, ADMINS },
	{ POST, "/settings/users/invite", settings_user_invite, ADMINS },
	{ POST, "/settings/users/:id/role", settings_user_role, ADMINS },
	{ POST, "/settings/users/:id/deactivate", settings_user_deactivate,
	  ADMINS },
	{ POST, "/settings/users/:id/reactivate", settings_user_reactivate,
	  ADMINS },
	{ POST, "/settings/invites/:id/revoke", settings_invite_revoke,
	  ADMINS },
	{ GET, "/settings/apikeys", settings_apikeys, ADMINS },
	{ POST, "/settings/apikeys", settings_apikey_create, ADMINS },
	{ POST, "/settings/apikeys/:id/revoke", settings_apikey_revoke,
	  ADMINS },
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
