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
 * statement fewer): SLA_BOX_COLUMNS(tz) are SLA_BOX_NCOLS columns of the
 * ticket t and its tier r (joined by SLA_BOX_JOIN), tz the tenant's time
 * zone as SQL. For each clock: its due time (in tz and ISO), its state,
 * and the seconds left (business time) or overdue (wall time) at the
 * instant it stopped or now.
 */
#define SLA_CLOCK(due, warn, stop, tz)                                         \
	" to_char(" due " AT TIME ZONE " tz ", 'YYYY-MM-DD HH24:MI'),"         \
	" to_char(" due                                                        \
	" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"              \
	" CASE WHEN " due " IS NULL THEN 'none'"                               \
	" WHEN coalesce(" stop ", t.sla_paused_at, now()) > " due              \
	" THEN 'breached' WHEN " stop " IS NOT NULL THEN 'met'"                \
	" WHEN t.sla_paused_at IS NOT NULL THEN 'paused'"                      \
	" WHEN now() >= " warn " THEN 'at_risk' ELSE 'ok' END,"                \
	" CASE WHEN r.id IS NULL THEN NULL"                                    \
	" WHEN coalesce(" stop ", t.sla_paused_at, now()) > " due              \
	" THEN -floor(extract(epoch FROM coalesce(" stop ", t.sla_paused_at,"  \
	" now()) - " due "))::bigint"                                          \
	" ELSE sla_business_seconds(t.tenant_id, t.sla_tier_id,"               \
	" coalesce(" stop ", t.sla_paused_at, now()), " due ") END"
/* clang-format off */
#define SLA_BOX_COLUMNS(tz)                                                    \
	" r.name, r.calendar, r.time_zone,"                                    \
	SLA_CLOCK("t.response_due_at", "t.response_warn_at",                   \
		  "coalesce(t.first_response_at, t.closed_at)", tz) ","        \
	SLA_CLOCK("t.resolution_due_at", "t.resolution_warn_at",               \
		  "t.closed_at", tz)
/* clang-format on */
#define SLA_BOX_JOIN                                                           \
	" LEFT JOIN sla_tiers r ON r.tenant_id = t.tenant_id"                  \
	" AND r.id = t.sla_tier_id"
#define SLA_BOX_NCOLS 11

/*
 * Adds "sla" to a ticket's view model from its SLA_BOX_COLUMNS, the first
 * at col of res's first row: tier, and for "response" and "resolution"
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
