/* tickets.h: one ticket — create, page with timeline, change, close, reopen,
 * merge */
#ifndef TD_TICKETS_H
#define TD_TICKETS_H

#include "err.h"

struct req;

enum td_err tickets_new(struct req *r);
enum td_err tickets_create(struct req *r);
enum td_err tickets_show(struct req *r);
enum td_err tickets_update(struct req *r);
enum td_err tickets_close(struct req *r);
enum td_err tickets_reopen(struct req *r);
enum td_err tickets_merge(struct req *r);
enum td_err tickets_split(struct req *r);

#endif
