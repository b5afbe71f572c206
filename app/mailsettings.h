/* mailsettings.h: Settings → Email — how inbound mail is handled */
#ifndef TD_MAILSETTINGS_H
#define TD_MAILSETTINGS_H

#include "err.h"

struct req;

enum td_err mailsettings_page(struct req *r); /* GET /settings/mail */
enum td_err mailsettings_save(struct req *r); /* POST /settings/mail */

#endif
