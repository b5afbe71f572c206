/* portal.h: the client portal — magic-link sign-in and a contact's tickets */
#ifndef TD_PORTAL_H
#define TD_PORTAL_H

#include "err.h"

struct req;

#define PORTAL_COOKIE "td_portal"

/*
 * A request on a tenant's own portal host name (tenant_hosts) is served
 * by the portal: returns "/portal/<slug>" + path for it, path itself for
 * any other host (the install's own, from base_url) or a /portal/ path.
 */
const char *portal_host_path(struct req *r, const char *path);

/* The contact's side: /portal/:slug/... (and /api/v1/portal/...). */
enum td_err portal_login_form(struct req *r);
enum td_err portal_login(struct req *r);
enum td_err portal_link_form(struct req *r);
enum td_err portal_link_use(struct req *r);
enum td_err portal_logout(struct req *r);
enum td_err portal_home(struct req *r);
enum td_err portal_invoice_pdf(struct req *r);
enum td_err portal_ticket_new(struct req *r);
enum td_err portal_ticket_create(struct req *r);
enum td_err portal_ticket_show(struct req *r);
enum td_err portal_reply(struct req *r);
enum td_err portal_close(struct req *r);
enum td_err portal_download(struct req *r);
enum td_err portal_brand_css(struct req *r);
enum td_err portal_logo(struct req *r);

/* The staff side: /clients/:id/portal and its actions. */
enum td_err portal_staff_page(struct req *r);
enum td_err portal_staff_link(struct req *r);
enum td_err portal_staff_grant(struct req *r);
enum td_err portal_staff_revoke(struct req *r);

/* Settings → Portal (admins): welcome text and host names. */
enum td_err portal_settings(struct req *r);
enum td_err portal_settings_save(struct req *r);
enum td_err portal_host_add(struct req *r);
enum td_err portal_host_delete(struct req *r);

#endif
