/* timectx.h: what the time modules share — kinds, defaults, new entries,
 * and one entry as the pages and the API see it */
#ifndef TD_TIMECTX_H
#define TD_TIMECTX_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "err.h"

struct req;

/* True for "billable", "internal" or "prepaid". */
bool timectx_kind_valid(const char *kind);

/* "Billable", "Internal", "Pre-paid" (the key itself if unknown). */
const char *timectx_kind_label(const char *kind);

/* [{value, label, selected}] for a kind select, selected marked. */
json_t *timectx_kind_choices(const char *selected);

/* The kind a new entry on client_id gets unless told (a constant). */
enum td_err timectx_default_kind(struct req *r, int64_t client_id,
				 const char **kind);

/* The caller as a person: their user id, or 0 for an API key. */
int64_t timectx_user(const struct req *r);

/* A new entry; the ticket decides the client. */
struct time_entry_new {
	int64_t ticket_id;
	int64_t user_id;
	const char *started_at; /* timestamptz text */
	int minutes;
	const char *kind;
	const char *description;
	const char *service;
	const char *source;   /* "timer", "manual", "bulk", "api" */
	const char *timer_id; /* decimal text, or NULL */
};

/*
 * Inserts e as pending (when the tenant approves time) or committed, and
 * writes the audit row "time.create". Sets *id and *status (a constant).
 * TD_ECONFLICT when the timer was committed already.
 */
enum td_err timectx_insert(struct req *r, const struct time_entry_new *e,
			   int64_t *id, const char **status);

/*
 * The columns every entry list selects (see timectx_entry_json), with
 * $1 the viewer's user id for their time zone (NULL: the tenant's).
 */
/* clang-format off */
#define TIMECTX_ENTRY_COLUMNS(client_name, user_name)                          \
	"SELECT e.id, e.ticket_id, t.number, t.subject, e.client_id, "         \
	client_name ", e.user_id, " user_name ","                              \
	" to_char(e.started_at AT TIME ZONE app_user_zone($1::bigint),"        \
	" 'YYYY-MM-DD HH24:MI'),"                                              \
	" to_char(e.started_at AT TIME ZONE 'UTC',"                            \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                                  \
	" e.minutes, e.kind, e.status, e.description, e.service, e.source,"    \
	" e.review_note, e.invoice_line_id IS NOT NULL,"                       \
	" e.sealed_at IS NOT NULL, t.status = 'closed',"                       \
	" to_char(e.started_at AT TIME ZONE app_user_zone($1::bigint),"        \
	" 'YYYY-MM-DD\"T\"HH24:MI'), t.type"                                   \
	" FROM time_entries e"                                                 \
	" JOIN tickets t ON t.tenant_id = e.tenant_id AND t.id = e.ticket_id"
#define TIMECTX_ENTRY_SELECT                                                   \
	TIMECTX_ENTRY_COLUMNS("c.name", "u.name")                              \
	" JOIN clients c ON c.tenant_id = e.tenant_id AND c.id = e.client_id"  \
	" JOIN users u ON u.tenant_id = e.tenant_id AND u.id = e.user_id"
/* clang-format on */
/*
 * The same columns with the client's and the person's names left NULL:
 * timectx_entry_json then takes them from names.c, which the caller loads
 * (names_load(r, res, TIMECTX_ENTRY_CLIENT, TIMECTX_ENTRY_USER)). Two
 * joins fewer, for the ticket page, which reads its entries on every view.
 */
#define TIMECTX_ENTRY_SELECT_NAMELESS TIMECTX_ENTRY_COLUMNS("NULL", "NULL")
#define TIMECTX_ENTRY_CLIENT	      4
#define TIMECTX_ENTRY_USER	      6

/* The person who logged row i of a TIMECTX_ENTRY_SELECT result. */
const char *timectx_entry_who(const PGresult *res, int i);

/* Row i of a TIMECTX_ENTRY_SELECT result as JSON (a new reference). */
json_t *timectx_entry_json(struct req *r, const PGresult *res, int i);

/* A positive id written canonically ("12", not "012" or "+12"). */
bool timectx_parse_id(const char *s, int64_t *out);

/* "h:mm" in the arena. */
const char *timectx_hmm(struct req *r, int64_t minutes);

#endif
