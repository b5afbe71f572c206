/* accounts.h: signing in and out, second factor, invites, password resets */
#ifndef TD_ACCOUNTS_H
#define TD_ACCOUNTS_H

#include "err.h"

struct req;

enum td_err accounts_login_form(struct req *r);
enum td_err accounts_login(struct req *r);
enum td_err accounts_totp_form(struct req *r);
enum td_err accounts_totp(struct req *r);
enum td_err accounts_logout(struct req *r);
enum td_err accounts_forgot_form(struct req *r);
enum td_err accounts_forgot(struct req *r);
enum td_err accounts_reset_form(struct req *r);
enum td_err accounts_reset(struct req *r);
enum td_err accounts_invite_form(struct req *r);
enum td_err accounts_invite_accept(struct req *r);
enum td_err accounts_me(struct req *r);

#endif
