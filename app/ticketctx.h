/* ticketctx.h: what every ticket module shares — load, create, touch */
#ifndef TD_TICKETCTX_H
#define TD_TICKETCTX_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/*
 * A ticket's tags (the column tags, text[]) as the text of a JSON array.
 * Most tickets have none, and to_json costs per call, empty or not.
 */
#define TICKET_TAGS_JSON(tags)                                                 \
	"CASE WHEN cardinality(" tags ") = 0 THEN '[]'"                        \
	" ELSE to_json(" tags ")::text END"

struct req;

/* The statuses and their default labels, in workflow order. */
enum ticket_status {
	TICKET_NEW,
	TICKET_IN_PROGRESS,
	TICKET_WAITING,
	TICKET_CLOSED,
	TICKET_STATUS__MAX
};

/* "new" -> TICKET_NEW; TICKET_STATUS__MAX for anything else. */
enum ticket_status ticketctx_status_parse(const char *s);
const char *ticketctx_status_key(enum ticket_status s);	    /* "in_progress" */
const char *ticketctx_status_default(enum ticket_status s); /* "In progress" */
/*
 * The label the request's tenant gives s (its own name from Settings →
 * Tickets, else the default). Read once per request.
 */
const char *ticketctx_status_label(struct req *r, enum ticket_status s);
const char *ticketctx_priority_label(int priority); /* "P1 Critical" */
/* The badge class of a status ("badge-in-progress"); closed for others. */
const char *ticketctx_status_badge(enum ticket_status s);

struct ticket_ref {
	int64_t id;
	int64_t number;
	int64_t client_id;
	enum ticket_status status;
	const char *subject;
	int version;
};

/*
 * Loads ticket id of the request's tenant; TD_ENOENT (logged) when there
 * is none (other tenants' tickets are invisible). When for_update, the
 * row is locked for the rest of the transaction, so concurrent writers
 * take turns and none loses the other's change.
 */
enum td_err ticketctx_load(struct req *r, int64_t id, bool for_update,
			   struct ticket_ref *out);

/* TD_ECONFLICT with "T-1042 is closed: reopen it to change it" when closed. */
enum td_err ticketctx_require_open(struct req *r, const struct ticket_ref *t);

/* A new ticket's fields; NULL/0 members take the defaults. */
struct ticket_new {
	const char *subject;
	const char *description;
	int64_t client_id;
	int64_t contact_id;
	int64_t site_id;
	int64_t asset_id;
	const char *source; /* "manual" when NULL */
	int priority;	    /* 3 when 0 */
	const char *type;   /* "incident" when NULL */
	int64_t assignee_id;
	const char *alert_key;
	const char *tags_json; /* JSON array of strings, or NULL */
	const char *queue;     /* a ticket_queues name; "" or NULL for none */
};

/*
 * TD_OK when name is "" or one of the tenant's queues; otherwise a form
 * error on field "queue" (still TD_OK: the caller checks the form).
 */
enum td_err ticketctx_check_queue(struct req *r, const char *name);

/*
 * What the ticket pages offer to choose from, in one statement: the active
 * people [{id, name, selected}] (selected: id == user_sel), the queues
 * [{value, label, selected}] (selected: name == queue_sel) and, when
 * views is set, the caller's saved views [{id, name, query, href}]. The
 * status names come with them and serve ticketctx_status_label for the
 * rest of the request. The people go into the page's view as users_key:
 * for HTML a row source read straight from the kept rows (fifty people as
 * json objects cost as much as the rest of a queue page's list), for the
 * JSON twin an array. The other arrays are the caller's (attach them with
 * json_object_set_new), made even when the query fails.
 */
struct ticket_choices {
	json_t *queues, *views;
};
enum td_err ticketctx_choices(struct req *r, const char *users_key,
			      int64_t user_sel, const char *queue_sel,
			      bool views, struct ticket_choices *out);

/*
 * Inserts a ticket with the tenant's next number and writes the audit
 * row "ticket.create". The number is taken under a row lock on the
 * tenant's counter, so numbers never repeat. Returns its id and number.
 */
enum td_err ticketctx_create(struct req *r, const struct ticket_new *n,
			     int64_t *id, int64_t *number);

/*
 * Marks a ticket changed now: updated_at, version + 1, and when a person
 * (not an alert or the system) did it, touched_by_human; the first public
 * reply of a staff member sets first_response_at.
 */
enum td_err ticketctx_touch(struct req *r, int64_t id, bool public_reply);

/*
 * The ticket a person typed: "T-1042" (any case) or a bare id. *id is 0
 * when there is no such ticket of this tenant.
 */
enum td_err ticketctx_find(struct req *r, const char *text, int64_t *id);

/*
 * Reopens a closed ticket (status in progress, closed time cleared) with
 * an audit row "ticket.reopen" giving why (NULL for a person's own click).
 * The caller has locked the row and checked that it is closed.
 */
enum td_err ticketctx_reopen(struct req *r, int64_t id, const char *why);

/*
 * The client wrote (a reply by mail or through the portal): a ticket
 * waiting on the client goes back to in progress — its SLA clock resumes —
 * with an audit row saying why; a ticket in any other state is left as it
 * is. The caller has locked the row (ticketctx_load for update).
 */
enum td_err ticketctx_client_activity(struct req *r, int64_t id);

/* Adds an internal note by the caller (labelled "System"). */
enum td_err ticketctx_note(struct req *r, int64_t ticket, const char *body);

/*
 * Merges ticket id into target: comments, attachments, alert occurrences
 * and time move; both get a note and an audit row; id closes pointing at
 * target. Both rows are locked in id order, so opposite merges cannot
 * deadlock. TD_ECONFLICT (with the message) for itself or a closed
 * ticket; TD_ENOENT. nums gets the two ticket numbers (id's, target's).
 */
enum td_err ticketctx_merge(struct req *r, int64_t id, int64_t target,
			    int64_t nums[2]);

#endif
