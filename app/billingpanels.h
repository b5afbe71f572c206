/* billingpanels.h: billing figures shown on other resources' pages */
#ifndef TD_BILLINGPANELS_H
#define TD_BILLINGPANELS_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * For managers and admins only (technicians see no money): sets
 * "billing_panel" in into for client_id, from one query: the month-to-date
 * preview (billing_preview(): period, total before tax, its largest lines,
 * how many more, the link to the full preview) and the client's last
 * invoices {id, url, number, date, currency, total, balance, status,
 * status_label} with the link to the invoices list filtered by client.
 * Sets nothing for other roles. TD_EDB if the query fails.
 */
enum td_err billingpanels_client(struct req *r, int64_t client_id,
				 json_t *into);

/*
 * Sets "terms_history" in into: each version of contract_id's terms,
 * newest first, {from, to, from_text, to_text, in_force, changed_at,
 * changed_by, first, changes: [{what, before, after}]}, and
 * "has_terms_history" (more than one version). TD_EDB if the query fails.
 */
enum td_err billingpanels_terms(struct req *r, int64_t contract_id,
				json_t *into);

#endif
