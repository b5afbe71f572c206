/* notify.h: mail to staff about their tickets, through the outbox */
#ifndef TD_NOTIFY_H
#define TD_NOTIFY_H

#include <stdint.h>

#include "err.h"

struct req;

/*
 * Queues a notice to the ticket's assignee in the caller's transaction:
 * subject "[T-1042] <what>", body text, from the tenant's support address.
 * Nothing is queued when the ticket has no assignee, the assignee did it
 * themselves, or the tenant has no support address. kind names the notice
 * in the outbox ("client_reply", "assigned").
 */
enum td_err notify_assignee(struct req *r, int64_t ticket_id, const char *kind,
			    const char *what, const char *text);

#endif
