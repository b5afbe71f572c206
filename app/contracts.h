/* contracts.h: what a client pays, what support it gets, its block hours */
#ifndef TD_CONTRACTS_H
#define TD_CONTRACTS_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * The default kind of a new time entry for client_id now (in the tenant's
 * time zone): "billable" when the client has an active contract of any
 * type (per-asset and all-you-can-eat time is billable but included in
 * the fee; block and pay-as-you-go time is billable), "internal" when it
 * has none. *kind is a string constant. TD_EDB if the query fails.
 */
enum td_err contracts_time_default(struct req *r, int64_t client_id,
				   const char **kind);

/*
 * Sets "block" in into when client_id has an active contract with block
 * hours today: {contract_id, contract_name, used, size, left (hours as
 * "3.0"), used_minutes, size_minutes, cycle ("month"), cycle_from,
 * cycle_to, over (bool), text ("3.0 of 10.0 h left this month")}; sets
 * nothing otherwise. Render it with the partial contracts/_block. Usage is
 * committed billable time on non-project tickets of the client in the
 * current cycle. TD_EDB if a query fails.
 */
enum td_err contracts_block_json(struct req *r, int64_t client_id,
				 json_t *into);

/*
 * Asks ahead (req_want) for the read contracts_block_json and
 * contracts_time_default make, for a ticket's client before the ticket is
 * read, so it goes in the ticket page's one round trip; once the ticket's
 * row has come, contracts_ticket_known lets both (asked by client) take
 * its result.
 */
void contracts_ticket_want(struct req *r, int64_t ticket_id);
void contracts_ticket_known(struct req *r, int64_t ticket_id,
			    int64_t client_id);

/*
 * Sets "contracts" in into: the client's contracts, newest first, as
 * {id, name, type_label, from, to, state, state_label, url}, and "block"
 * as contracts_block_json does. For the client page.
 */
enum td_err contracts_client_json(struct req *r, int64_t client_id,
				  json_t *into);

/* Pages and their JSON twins (/api/v1/...); statuses at each handler. */
enum td_err contracts_list(struct req *r);
enum td_err contracts_client_list(struct req *r);
enum td_err contracts_new(struct req *r);
enum td_err contracts_create(struct req *r);
enum td_err contracts_show(struct req *r);
enum td_err contracts_edit(struct req *r);
enum td_err contracts_update(struct req *r);
enum td_err contracts_end(struct req *r);
enum td_err contracts_void(struct req *r);
enum td_err contracts_line_add(struct req *r);
enum td_err contracts_line_update(struct req *r);
enum td_err contracts_line_delete(struct req *r);
enum td_err contracts_blocks_report(struct req *r);
enum td_err contracts_blocks_csv(struct req *r);

#endif
