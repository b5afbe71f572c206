/* sites.h: named groups of a client's assets */
#ifndef TD_SITES_H
#define TD_SITES_H

#include "err.h"

struct req;

enum td_err sites_list(struct req *r);
enum td_err sites_create(struct req *r);
enum td_err sites_update(struct req *r);
enum td_err sites_delete(struct req *r);

#endif
