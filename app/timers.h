/* timers.h: the running timer of a technician, and a ticket's time */
#ifndef TD_TIMERS_H
#define TD_TIMERS_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * Minutes logged on the ticket, committed and pending (rejected time does
 * not count), for the close guard. TD_EDB if the query fails.
 */
enum td_err timers_ticket_minutes(struct req *r, int64_t ticket_id,
				  int64_t *minutes);

/*
 * Call when a ticket closes by any path (by hand, auto-close, portal, a
 * rule), in the closing transaction: discards every running timer on it
 * (its time is not logged; an audit row "time.timer_discard" on the
 * ticket says whose and how long), and seals the ticket's entries, so
 * changing them later needs a reopen and a reason. *discarded is how many
 * timers were running (say so to the user when > 0).
 */
enum td_err timers_discard_for_ticket(struct req *r, int64_t ticket_id,
				      int *discarded);

/*
 * Adds to ticket (the ticket's JSON object): "time_entries" (oldest
 * first), "time_total_minutes", "time_total" ("h:mm"), "time_billable"
 * and the caller's timer state "timer" {running, here, elsewhere {ref,
 * url}, started_at_iso, since} for the header Start/Stop button, plus
 * "time_kinds" (the stop form's choices, the client's default selected).
 * Render with the partials time/_timer_button and time/_ticket.
 * timeline may be NULL; see below.
 */
enum td_err timers_ticket_json(struct req *r, int64_t ticket_id, json_t *ticket,
			       json_t *timeline);
/* Asks ahead (req_want) for the reads timers_ticket_json makes. */
void timers_ticket_want(struct req *r, int64_t ticket_id);

/*
 * With a timeline (an array built by tickets.c), timers_ticket_json also
 * appends the entries to it as items {kind "time", is_event, who, label,
 * changes, at, at_iso}, each at its place by at_iso, from the same query.
 */

/* Pages and their JSON twins; statuses at each handler. */
enum td_err timers_start(struct req *r);
enum td_err timers_show(struct req *r);
enum td_err timers_stop(struct req *r);
enum td_err timers_discard(struct req *r);
enum td_err timers_pause(struct req *r);

#endif
