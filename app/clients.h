/* clients.h: clients — list, page with tabs, edit, archive, delete, merge */
#ifndef TD_CLIENTS_H
#define TD_CLIENTS_H

#include "err.h"

struct req;

enum td_err clients_list(struct req *r);
enum td_err clients_new(struct req *r);
enum td_err clients_create(struct req *r);
enum td_err clients_show(struct req *r);
enum td_err clients_edit(struct req *r);
enum td_err clients_update(struct req *r);
enum td_err clients_archive(struct req *r);
enum td_err clients_restore(struct req *r);
enum td_err clients_delete(struct req *r);
enum td_err clients_merge_form(struct req *r);
enum td_err clients_merge(struct req *r);
enum td_err clients_domain_add(struct req *r);
enum td_err clients_domain_delete(struct req *r);
enum td_err clients_link_add(struct req *r);
enum td_err clients_link_delete(struct req *r);
enum td_err clients_activity(struct req *r);

#endif
