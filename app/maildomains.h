/* maildomains.h: Settings → Email domains — sending domains, live DNS checks */
#ifndef TD_MAILDOMAINS_H
#define TD_MAILDOMAINS_H

#include "err.h"

struct req;

/* GET /settings/mail-domains (admins): each domain, its records, status. */
enum td_err maildomains_page(struct req *r);

/* POST /settings/mail-domains: domain, from_address, client_id ("" for
 * the tenant's own); a DKIM key is made. 422 for bad fields. */
enum td_err maildomains_add(struct req *r);

/* POST /settings/mail-domains/:id/check: looks the records up now. */
enum td_err maildomains_check(struct req *r);

/* POST /settings/mail-domains/:id/delete */
enum td_err maildomains_delete(struct req *r);

#endif
