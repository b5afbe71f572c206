/* sla.h: SLA tiers (settings), the SLA box of a ticket, the SLA report */
#ifndef TD_SLA_H
#define TD_SLA_H

#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"

struct req;

/*
 * The clocks live in PostgreSQL (sql/0008_sla.sql): triggers on tickets set
 * sla_tier_id (sla_client_tier()), response_due_at, resolution_due_at,
 * the warning instants (response_warn_at, resolution_warn_at) and
 * sla_paused_at on every insert and update, whoever writes the row, and
 * keep sla-sweep's work list (sla_schedule) in step.
 *
 * SLA state of a ticket row t for the queue (filter and sort), as SQL:
 *
 *   sla_state(t)  -> 'none' | 'breached' | 'paused' | 'at_risk' | 'met' | 'ok'
 *
 *   breached: coalesce(t.first_response_at, t.closed_at, t.sla_paused_at,
 *                      now()) > t.response_due_at
 *          OR coalesce(t.closed_at, t.sla_paused_at, now())
 *                      > t.resolution_due_at
 *   at risk:  not breached, open, not paused, and
 *             (t.first_response_at IS NULL AND now() >= t.response_warn_at)
 *          OR now() >= t.resolution_warn_at
 *   ok:       none of these (and open); 'met': closed in time;
 *             'paused': waiting on the client with a tier that pauses.
 *
 * e.g. "WHERE sla_state(t) = 'breached'" (filter) and
 * "ORDER BY sla_next_due(t) NULLS LAST" (sort open tickets by the next due
 * time: the response's until answered, then the resolution's). Both are
 * SQL functions taking the tickets row ("FROM tickets t").
 */

/*
 * The SLA box of a ticket, read with the ticket itself (its page has one
 * statement fewer): SLA_BOX_COLUMN(tz) is one column of the ticket t, tz
 * the tenant's time zone as SQL. It is NULL without a tier, and otherwise
 * the JSON text sla_box() (sql/0029) makes: the tier, and for each clock
 * its due time (in tz and ISO), its state, and the seconds left (business
 * time) or overdue (wall time) at the instant it stopped or now. A ticket
 * without a tier costs nothing: the function is called only for one with.
 */
#define SLA_BOX_COLUMN(tz)                                                     \
	" CASE WHEN t.sla_tier_id IS NOT NULL THEN sla_box(t.tenant_id,"       \
	" t.sla_tier_id, t.first_response_at, t.closed_at, t.sla_paused_at,"   \
	" t.response_due_at, t.response_warn_at, t.resolution_due_at,"         \
	" t.resolution_warn_at, " tz ") END"

/*
 * Adds "sla" to a ticket's view model from its SLA_BOX_COLUMN, column col
 * of res's first row: tier, and for "response" and "resolution"
 * {due_at, state (ok, at_risk, breached, met, paused), label ("2 h 10 min
 * left", "overdue by 35 min"), css (sla-ok, sla-risk, sla-breached,
 * sla-met, sla-paused)}. "sla" is null when the ticket has no tier.
 */
void sla_box_json(struct req *r, const PGresult *res, int col, json_t *ticket);

/* Settings: /settings/sla (admins). */
enum td_err sla_settings(struct req *r);
enum td_err sla_tier_create(struct req *r);
enum td_err sla_tier_edit(struct req *r);
enum td_err sla_tier_update(struct req *r);
enum td_err sla_tier_delete(struct req *r);
enum td_err sla_holiday_add(struct req *r);
enum td_err sla_holiday_delete(struct req *r);

/* Reports: /reports/sla and /reports/sla.csv (managers and admins). */
enum td_err sla_report(struct req *r);
enum td_err sla_report_csv(struct req *r);

#endif
