/* ticketsettings.h: Settings → Tickets — status names and team queues */
#ifndef TD_TICKETSETTINGS_H
#define TD_TICKETSETTINGS_H

#include "err.h"

struct req;

enum td_err ticketsettings_page(struct req *r);	       /* GET /settings/tickets */
enum td_err ticketsettings_labels_save(struct req *r); /* POST /settings/tickets */
enum td_err ticketsettings_queue_add(struct req *r);   /* POST /settings/queues */
enum td_err ticketsettings_queue_rename(struct req *r); /* POST /settings/queues/:id */
enum td_err ticketsettings_queue_delete(struct req *r); /* POST …/:id/delete */

#endif
