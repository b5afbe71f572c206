/* timeentries.h: time entries — the Time page, manual and bulk entry,
 * edits, approval, the missing-time view, time reports, time settings */
#ifndef TD_TIMEENTRIES_H
#define TD_TIMEENTRIES_H

#include "err.h"

struct req;

#include <stdint.h>

#include <jansson.h>

/*
 * Sets "time_month" in into: the client's time this month (the tenant's
 * time zone) as the report's row — committed billable, internal, prepaid
 * and total, pending, billed and not yet billed (each {minutes, text}),
 * entries and cost. For the client page; render with time/_client.
 * TD_EDB if the query fails.
 */
enum td_err timeentries_client_json(struct req *r, int64_t client_id,
				    json_t *into);

/* Pages and their JSON twins (/api/v1/...); statuses at each handler. */
enum td_err timeentries_page(struct req *r);
enum td_err timeentries_create(struct req *r);
enum td_err timeentries_show(struct req *r);
enum td_err timeentries_update(struct req *r);
enum td_err timeentries_delete(struct req *r);
enum td_err timeentries_bulk_form(struct req *r);
enum td_err timeentries_bulk(struct req *r);
enum td_err timeentries_approvals(struct req *r);
enum td_err timeentries_review(struct req *r);
enum td_err timeentries_missing(struct req *r);
enum td_err timeentries_report(struct req *r);
enum td_err timeentries_report_csv(struct req *r);
enum td_err timeentries_settings(struct req *r);
enum td_err timeentries_settings_save(struct req *r);
enum td_err timeentries_rates_save(struct req *r);
enum td_err timeentries_passive_save(struct req *r);

#endif
