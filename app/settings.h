/* settings.h: workspace, users, API keys, security and audit pages */
#ifndef TD_SETTINGS_H
#define TD_SETTINGS_H

#include "err.h"

struct req;

enum td_err settings_workspace(struct req *r);
enum td_err settings_workspace_save(struct req *r);
enum td_err settings_logo(struct req *r);
enum td_err settings_logo_upload(struct req *r);
enum td_err settings_logo_delete(struct req *r);
enum td_err settings_tax_rate_add(struct req *r);
enum td_err settings_tax_rate_archive(struct req *r);
enum td_err settings_users(struct req *r);
enum td_err settings_user_invite(struct req *r);
enum td_err settings_user_role(struct req *r);
enum td_err settings_user_deactivate(struct req *r);
enum td_err settings_user_reactivate(struct req *r);
enum td_err settings_invite_revoke(struct req *r);
enum td_err settings_apikeys(struct req *r);
enum td_err settings_apikey_create(struct req *r);
enum td_err settings_apikey_revoke(struct req *r);
enum td_err settings_security(struct req *r);
enum td_err settings_password(struct req *r);
enum td_err settings_totp_start(struct req *r);
enum td_err settings_totp_enable(struct req *r);
enum td_err settings_totp_disable(struct req *r);
enum td_err settings_logout_all(struct req *r);
enum td_err settings_audit(struct req *r);

#endif
