/* queue.c: the ticket queue — list, my work, kanban board, bulk actions, saved
 * views */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "mustache.h"
#include "names.h"
#include "notify.h"
#include "queue.h"
#include "req.h"
#include "sbuf.h"
#include "ticketctx.h"
#include "view.h"
#include "banned.h"

#define CURSOR_KEY_MAX	    64
#define BOARD_CLOSED	    20
#define BOARD_COLUMN_MAX    200
#define BULK_MAX	    200
#define TAG_LEN		    40
#define CLIENTS_NAMED_MAX_S "200"

/*
 * The list: one statement per sort order sharing columns and filters.
 * Every filter is a parameter that may be NULL, so nothing is built from
 * input: $1 statuses (text[]), $2 priority, $3 clients (bigint[]), $4 assignee,
 * $5 unassigned only, $6 tag, $7 type, $8 source, $9 search words,
 * $10 cursor key, $11 cursor id, $12 limit, $13 queue. Times come as
 * instants: the ages and due times are counted from the request's clock
 * in C, not on every row, and the next page's cursor key is made from
 * the last row's columns (row_key). Client and assignee names are not
 * joined: the worker keeps them (names.c) and asks only for those it has
 * not seen (columns 3 and 5 stay, empty, so the others keep their
 * places). Nothing is counted.
 * Search first collects the matching ticket ids from the two full-text
 * indexes (tickets and comments) once, then fetches those tickets by key:
 * an OR of the two matches would hide both indexes from the planner and
 * walk every ticket (two seconds at 1M tickets). A common word would
 * collect most tickets that way: LIST_WALK goes first.
 */
/*
 * The SLA state and next due time from the columns (sql/0028): the row
 * forms, sla_state(t::tickets), copy each whole row to read eight columns.
 */
#define SLA_STATE                                                              \
	"sla_state_of(t.sla_tier_id, t.first_response_at, t.closed_at,"        \
	" t.sla_paused_at, t.response_due_at, t.resolution_due_at,"            \
	" t.response_warn_at, t.resolution_warn_at)"
#define SLA_NEXT                                                               \
	"sla_next_due_of(t.first_response_at, t.closed_at, t.response_due_at," \
	" t.resolution_due_at)"
#define LIST_TAGS TICKET_TAGS_JSON("t.tags")
#define LIST_COLUMNS                                                             \
	"SELECT t.id, t.number, t.subject, NULL::text, t.client_id, NULL::text," \
	" t.assignee_id, t.status, t.priority, " LIST_TAGS ", t.type,"           \
	" date_part('epoch', t.updated_at), t.source, t.board_rank, " SLA_STATE  \
	", date_part('epoch', " SLA_NEXT ")"
/*
 * With search words the tickets come from a fenced subquery (OFFSET 0) of
 * the matching ids, so the planner sorts those few rows instead of walking
 * the recency index through every ticket hoping to meet them.
 */
#define SEARCH_FROM                                                            \
	" FROM (SELECT * FROM tickets s WHERE s.tenant_id = app_tenant()"      \
	" AND s.id = ANY (ARRAY(SELECT x.id FROM tickets x"                    \
	" WHERE x.tenant_id = app_tenant()"                                    \
	" AND x.search @@ plainto_tsquery('simple', $9) UNION"                 \
	" SELECT m.ticket_id FROM ticket_comments m"                           \
	" WHERE m.tenant_id = app_tenant()"                                    \
	" AND m.search @@ plainto_tsquery('simple', $9))) OFFSET 0) t"
#define LIST_FROM " FROM tickets t"
#define LIST_FILTERS                                                           \
	" WHERE t.tenant_id = app_tenant() AND t.status = ANY($1::text[])"     \
	" AND ($2::int IS NULL OR t.priority = $2::int)"                       \
	" AND ($3::bigint[] IS NULL OR t.client_id = ANY($3::bigint[]))"       \
	" AND ($4::bigint IS NULL OR t.assignee_id = $4::bigint)"              \
	" AND (NOT $5::boolean OR t.assignee_id IS NULL)"                      \
	" AND ($6::text IS NULL OR t.tags @> ARRAY[$6::text])"                 \
	" AND ($7::text IS NULL OR t.type = $7::text)"                         \
	" AND ($8::text IS NULL OR t.source = $8::text)" /* $9 (search words)  \
							    is applied by      \
							    SEARCH_FROM; typed \
							    here for all. */   \
	" AND ($9::text IS NULL OR $9::text IS NOT NULL)"                      \
	" AND ($13::text IS NULL OR t.queue = $13::text)"                      \
	" AND ($14::text IS NULL OR " SLA_STATE " = $14::text)"
/*
 * The two lists people open most — every open ticket, and their own —
 * have no optional filters: the absent ones are one-time checks, not ORs,
 * so PostgreSQL can keep one plan for them instead of planning the list
 * afresh on every request (which cost more than running it).
 */
#define PLAIN_FILTERS(status, assignee)                                        \
	" WHERE t.tenant_id = app_tenant() AND " status " AND " assignee       \
	" AND $2::int IS NULL AND $3::bigint[] IS NULL"                        \
	" AND NOT $5::boolean AND $6::text IS NULL AND $7::text IS NULL"       \
	" AND $8::text IS NULL AND $9::text IS NULL AND $13::text IS NULL"     \
	" AND $14::text IS NULL"
#define ANY_STATUS "t.status = ANY($1::text[])"
/* Exactly the open ones, spelt so the open-ticket indexes (0013) apply. */
#define OPEN_STATUS	       "t.status <> 'closed' AND $1::text[] IS NOT NULL"
#define NOBODY		       "$4::bigint IS NULL"
#define ME		       "t.assignee_id = $4::bigint"
#define LIST_FILTERS_ALL       PLAIN_FILTERS(ANY_STATUS, NOBODY)
#define LIST_FILTERS_MINE      PLAIN_FILTERS(ANY_STATUS, ME)
#define LIST_FILTERS_OPEN      PLAIN_FILTERS(OPEN_STATUS, NOBODY)
#define LIST_FILTERS_OPEN_MINE PLAIN_FILTERS(OPEN_STATUS, ME)
/* Each order: its cursor test and its ORDER BY (row_key makes the key). */
#define CUR_UPDATED                                                            \
	" AND ($10::text IS NULL OR (t.updated_at, t.id) <"                    \
	" ($10::timestamptz, $11::bigint))"
#define ORD_UPDATED " ORDER BY t.updated_at DESC, t.id DESC"
/* Identity values are handed out in creation order. */
#define CUR_CREATED " AND ($10::text IS NULL OR t.id < $11::bigint)"
#define ORD_CREATED " ORDER BY t.id DESC"
/* The key is "<priority>~<updated>", split by the statement. */
#define CUR_PRIORITY                                                           \
	" AND ($10::text IS NULL"                                              \
	" OR t.priority > split_part($10, '~', 1)::int"                        \
	" OR (t.priority = split_part($10, '~', 1)::int"                       \
	" AND (t.updated_at, t.id) <"                                          \
	" (split_part($10, '~', 2)::timestamptz, $11::bigint)))"
#define ORD_PRIORITY " ORDER BY t.priority, t.updated_at DESC, t.id DESC"
#define CUR_NUMBER                                                             \
	" AND ($10::text IS NULL OR (t.number, t.id) >"                        \
	" ($10::bigint, $11::bigint))"
#define ORD_NUMBER " ORDER BY t.number, t.id"

#define LIST_ORDERED(cur, ord, from, filters)                                  \
	LIST_COLUMNS from filters cur ord " LIMIT $12::int"
#define LIST_UPDATED(from, filters)                                            \
	LIST_ORDERED(CUR_UPDATED, ORD_UPDATED, from, filters)
#define LIST_CREATED(from, filters)                                            \
	LIST_ORDERED(CUR_CREATED, ORD_CREATED, from, filters)
#define LIST_PRIORITY(from, filters)                                           \
	LIST_ORDERED(CUR_PRIORITY, ORD_PRIORITY, from, filters)
#define LIST_NUMBER(from, filters)                                             \
	LIST_ORDERED(CUR_NUMBER, ORD_NUMBER, from, filters)

/*
 * Search, first try: walk the filtered tickets in the page's order and keep
 * those the words match (subject and description, or any comment), at most
 * SCAN_FIRST of them. A common word fills the page within the first few
 * dozen; collecting every ticket it matches (SEARCH_FROM) would take
 * seconds. When the walk does not fill the page, the page comes from
 * SEARCH_FROM instead, which is fast exactly when matches are few.
 */
#define SCAN_FIRST "2000"
#define MATCHES                                                                \
	" WHERE (t.search @@ plainto_tsquery('simple', $9) OR EXISTS ("        \
	"SELECT 1 FROM ticket_comments m WHERE m.tenant_id = t.tenant_id"      \
	" AND m.ticket_id = t.id"                                              \
	" AND m.search @@ plainto_tsquery('simple', $9)))"
#define LIST_WALK(cur, ord)                                                    \
	LIST_COLUMNS " FROM (SELECT t.*" LIST_FROM LIST_FILTERS cur ord        \
		     " LIMIT " SCAN_FIRST ") t" MATCHES ord " LIMIT $12::int"

/*
 * Most urgent first: the next SLA due time, tickets without one last. The
 * key is that time in microseconds (digits only, like every other key),
 * which row_key reads from the row's due time.
 */
#define NO_DUE "9223372036854775807"
#define SLA_DUE                                                                \
	"coalesce((extract(epoch FROM " SLA_NEXT ") * 1000000)"                \
	"::bigint, " NO_DUE ")"
#define LIST_SLA(from, filters)                                                \
	LIST_COLUMNS from filters " AND ($10::text IS NULL OR (" SLA_DUE       \
				  ", t.id) > ($10::bigint, $11::bigint))"      \
				  " ORDER BY " SLA_DUE ", t.id LIMIT $12::int"

static const char sql_list_updated[] = LIST_UPDATED(LIST_FROM, LIST_FILTERS);
static const char sql_list_created[] = LIST_CREATED(LIST_FROM, LIST_FILTERS);
static const char sql_list_priority[] = LIST_PRIORITY(LIST_FROM, LIST_FILTERS);
static const char sql_list_number[] = LIST_NUMBER(LIST_FROM, LIST_FILTERS);
static const char sql_search_updated[] =
	LIST_UPDATED(SEARCH_FROM, LIST_FILTERS);
static const char sql_search_created[] =
	LIST_CREATED(SEARCH_FROM, LIST_FILTERS);
static const char sql_search_priority[] =
	LIST_PRIORITY(SEARCH_FROM, LIST_FILTERS);
static const char sql_search_number[] = LIST_NUMBER(SEARCH_FROM, LIST_FILTERS);
static const char sql_walk_updated[] = LIST_WALK(CUR_UPDATED, ORD_UPDATED);
static const char sql_walk_created[] = LIST_WALK(CUR_CREATED, ORD_CREATED);
static const char sql_walk_priority[] = LIST_WALK(CUR_PRIORITY, ORD_PRIORITY);
static const char sql_walk_number[] = LIST_WALK(CUR_NUMBER, ORD_NUMBER);
static const char sql_all_updated[] = LIST_UPDATED(LIST_FROM, LIST_FILTERS_ALL);
static const char sql_all_created[] = LIST_CREATED(LIST_FROM, LIST_FILTERS_ALL);
static const char sql_all_priority[] =
	LIST_PRIORITY(LIST_FROM, LIST_FILTERS_ALL);
static const char sql_all_number[] = LIST_NUMBER(LIST_FROM, LIST_FILTERS_ALL);
static const char sql_mine_updated[] =
	LIST_UPDATED(LIST_FROM, LIST_FILTERS_MINE);
static const char sql_mine_created[] =
	LIST_CREATED(LIST_FROM, LIST_FILTERS_MINE);
static const char sql_mine_priority[] =
	LIST_PRIORITY(LIST_FROM, LIST_FILTERS_MINE);
static const char sql_mine_number[] = LIST_NUMBER(LIST_FROM, LIST_FILTERS_MINE);
static const char sql_open_updated[] =
	LIST_UPDATED(LIST_FROM, LIST_FILTERS_OPEN);
static const char sql_open_created[] =
	LIST_CREATED(LIST_FROM, LIST_FILTERS_OPEN);
static const char sql_open_priority[] =
	LIST_PRIORITY(LIST_FROM, LIST_FILTERS_OPEN);
static const char sql_open_number[] = LIST_NUMBER(LIST_FROM, LIST_FILTERS_OPEN);
static const char sql_open_mine_updated[] =
	LIST_UPDATED(LIST_FROM, LIST_FILTERS_OPEN_MINE);
static const char sql_open_mine_created[] =
	LIST_CREATED(LIST_FROM, LIST_FILTERS_OPEN_MINE);
static const char sql_open_mine_priority[] =
	LIST_PRIORITY(LIST_FROM, LIST_FILTERS_OPEN_MINE);
static const char sql_open_mine_number[] =
	LIST_NUMBER(LIST_FROM, LIST_FILTERS_OPEN_MINE);
static const char sql_list_sla[] = LIST_SLA(LIST_FROM, LIST_FILTERS);
static const char sql_search_sla[] = LIST_SLA(SEARCH_FROM, LIST_FILTERS);
static const char sql_all_sla[] = LIST_SLA(LIST_FROM, LIST_FILTERS_ALL);
static const char sql_mine_sla[] = LIST_SLA(LIST_FROM, LIST_FILTERS_MINE);
static const char sql_open_sla[] = LIST_SLA(LIST_FROM, LIST_FILTERS_OPEN);
static const char sql_open_mine_sla[] =
	LIST_SLA(LIST_FROM, LIST_FILTERS_OPEN_MINE);

/* The board: open columns by rank, then the most recently closed. */
static const char sql_board_open[] = LIST_COLUMNS LIST_FROM LIST_FILTERS
	" AND $10::text IS NULL AND $11::bigint IS NULL"
	" ORDER BY t.board_rank, t.updated_at DESC, t.id DESC"
	" LIMIT $12::int";
static const char sql_board_closed[] = LIST_COLUMNS LIST_FROM LIST_FILTERS
	" AND $10::text IS NULL AND $11::bigint IS NULL"
	" ORDER BY t.closed_at DESC, t.id DESC LIMIT $12::int";
/*
 * The filters are parameters that may be NULL; a generic plan cannot
 * drop them and walks the wrong index. Planned with the values (for the
 * rest of this transaction only), they fold away.
 */
static const char sql_custom_plans[] =
	"SELECT set_config('plan_cache_mode', 'force_custom_plan', true)";
/* ...and the plain lists keep the one plan they were made for. */
static const char sql_generic_plans[] =
	"SELECT set_config('plan_cache_mode', 'force_generic_plan', true)";

static const char sql_view_save[] =
	"INSERT INTO saved_views (tenant_id, user_id, name, query)"
	" VALUES (app_tenant(), $1, $2, $3) ON CONFLICT (tenant_id, user_id,"
	" name) DO UPDATE SET query = EXCLUDED.query RETURNING id";
static const char sql_view_delete[] =
	"DELETE FROM saved_views WHERE tenant_id = app_tenant() AND id = $1"
	" AND user_id = $2 RETURNING name";
static const char sql_user_ok[] =
	"SELECT name FROM users WHERE tenant_id = app_tenant() AND id = $1"
	" AND active";
/*
 * The client filter: by id (links from a client's page), or by part of a
 * name typed into the filter form — every client whose name holds it, so
 * the page never lists every client to choose from.
 */
static const char sql_client_name[] =
	"SELECT name FROM clients WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_clients_named[] =
	"SELECT coalesce(array_agg(id)::text, '{}'), count(*), min(name)"
	" FROM (SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND merged_into IS NULL AND strpos(lower(name), lower($1)) > 0"
	" ORDER BY lower(name) LIMIT " CLIENTS_NAMED_MAX_S ") c";

/* What bulk actions and moves change, before and after. */
static const char sql_snapshot[] =
	"SELECT status, priority, assignee_id, to_json(tags)::text, board_rank"
	" FROM tickets WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_set_assignee[] =
	"UPDATE tickets SET assignee_id = $2::bigint"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_set_status[] =
	"UPDATE tickets SET status = $2 WHERE tenant_id = app_tenant()"
	" AND id = $1";
static const char sql_set_priority[] =
	"UPDATE tickets SET priority = $2::smallint"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_add_tag[] =
	"UPDATE tickets SET tags = array_append(tags, $2::text)"
	" WHERE tenant_id = app_tenant() AND id = $1"
	" AND NOT tags @> ARRAY[$2::text]";
/*
 * A new rank for $3 in column $2: halfway between the neighbour $1 and
 * the card on its other side (or one step past it at the column's end).
 * No row when the neighbour is not in that column.
 */
static const char sql_rank_before[] =
	"SELECT (x.board_rank + coalesce((SELECT max(o.board_rank)"
	" FROM tickets o WHERE o.tenant_id = app_tenant() AND o.status = $2"
	" AND o.id <> $3 AND o.board_rank < x.board_rank),"
	" x.board_rank - 1)) / 2 FROM tickets x"
	" WHERE x.tenant_id = app_tenant() AND x.id = $1 AND x.status = $2"
	" AND x.id <> $3";
static const char sql_rank_after[] =
	"SELECT (x.board_rank + coalesce((SELECT min(o.board_rank)"
	" FROM tickets o WHERE o.tenant_id = app_tenant() AND o.status = $2"
	" AND o.id <> $3 AND o.board_rank > x.board_rank),"
	" x.board_rank + 1)) / 2 FROM tickets x"
	" WHERE x.tenant_id = app_tenant() AND x.id = $1 AND x.status = $2"
	" AND x.id <> $3";
static const char sql_rank_end[] =
	"SELECT coalesce(max(board_rank) + 1, 0) FROM tickets"
	" WHERE tenant_id = app_tenant() AND status = $1 AND id <> $2";
static const char sql_move[] =
	"UPDATE tickets SET status = $2, board_rank = $3::float8"
	" WHERE tenant_id = app_tenant() AND id = $1 RETURNING board_rank";

enum queue_sort {
	SORT_UPDATED,
	SORT_CREATED,
	SORT_PRIORITY,
	SORT_NUMBER,
	SORT_SLA,
	SORT__MAX
};

static const struct {
	const char *key;
	const char *label;
	const char *sql;
	const char *search_sql;	   /* the same with search words */
	const char *walk_sql;	   /* search, first try (LIST_WALK) */
	const char *all_sql;	   /* no filter but the statuses */
	const char *mine_sql;	   /* and the caller's own */
	const char *open_sql;	   /* every open ticket */
	const char *open_mine_sql; /* the caller's open tickets */
} sorts[SORT__MAX] = {
	{ "updated", "Recently updated", sql_list_updated, sql_search_updated,
	  sql_walk_updated, sql_all_updated, sql_mine_updated, sql_open_updated,
	  sql_open_mine_updated },
	{ "created", "Newest", sql_list_created, sql_search_created,
	  sql_walk_created, sql_all_created, sql_mine_created, sql_open_created,
	  sql_open_mine_created },
	{ "priority", "Priority", sql_list_priority, sql_search_priority,
	  sql_walk_priority, sql_all_priority, sql_mine_priority,
	  sql_open_priority, sql_open_mine_priority },
	{ "number", "Number", sql_list_number, sql_search_number,
	  sql_walk_number, sql_all_number, sql_mine_number, sql_open_number,
	  sql_open_mine_number },
	{ "sla", "SLA due", sql_list_sla, sql_search_sla, NULL, sql_all_sla,
	  sql_mine_sla, sql_open_sla, sql_open_mine_sla },
};

/* The list's filters as parsed from the query string. */
struct queue_filter {
	bool status[TICKET_STATUS__MAX];
	const char *priority;
	const char *client_id;
	const char *client;	 /* part of a client's name, as typed */
	const char *client_ids;	 /* what either resolved to: a bigint[] */
	const char *client_name; /* the one client's name, for the form */
	const char *assignee;	 /* as typed: id, "me" or "unassigned" */
	const char *assignee_id;
	bool unassigned;
	const char *tag;
	const char *type;
	const char *source;
	const char *queue;
	const char *sla; /* breached, at_risk, paused, ok */
	const char *q;
	enum queue_sort sort;
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A query parameter, NULL when absent or empty. */
static const char *query_param(struct req *r, const char *name)
{
	const char *v = http_params_get(&r->query_params, name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/*
 * JSON text as a value, an empty list if it does not parse. Most tickets
 * have no tags: their "[]" skips the parser, which costs a list row more
 * than all its other fields.
 */
static json_t *json_from(const char *text)
{
	json_t *v;

	if (!strcmp(text, "[]"))
		return json_array();
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	return v != NULL ? v : json_array();
}

/*
 * before, n and after as one string in the arena: the list's rough ages
 * and due times, 50 of each a page, without printf's format parsing.
 */
static const char *count_text(struct req *r, const char *before, int64_t n,
			      const char *after)
{
	char digits[24], *d = digits + sizeof(digits);
	size_t nb = strlen(before), na = strlen(after), nd;
	uint64_t u = n < 0 ? -(uint64_t)n : (uint64_t)n;
	char *s;

	do {
		*--d = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (n < 0)
		*--d = '-';
	nd = (size_t)(digits + sizeof(digits) - d);
	s = arena_alloc_raw(r->arena, nb + nd + na + 1);
	memcpy(s, before, nb);
	memcpy(s + nb, d, nd);
	memcpy(s + nb + nd, after, na + 1);
	return s;
}

/* "3m ago", "5h ago", "2d ago": the list only needs a rough age. */
static const char *age_text(struct req *r, int64_t s)
{
	if (s < 60)
		return "just now";
	if (s < 3600)
		return count_text(r, "", s / 60, "m ago");
	if (s < 86400)
		return count_text(r, "", s / 3600, "h ago");
	return count_text(r, "", s / 86400, "d ago");
}

/* "due in 2h", "overdue 3d": the list only needs a rough idea. */
static const char *due_text(struct req *r, int64_t s)
{
	const char *when = s < 0 ? "overdue " : "due in ";
	int64_t a = s < 0 ? -s : s;

	if (a < 3600)
		return count_text(r, when, a / 60, "m");
	if (a < 86400)
		return count_text(r, when, a / 3600, "h");
	return count_text(r, when, a / 86400, "d");
}

/* v as n decimal digits at s, zero-padded. */
static void put_digits(char *s, int v, int n)
{
	while (n-- > 0) {
		s[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * "2026-11-24T08:17:59Z" for a time in seconds since the epoch, digit by
 * digit: strftime cost more than all the other fields of a list row.
 */
static const char *iso_utc(struct req *r, int64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;
	char *s = arena_alloc_raw(r->arena, 24);

	s[0] = '\0';
	if (gmtime_r(&t, &tm) == NULL)
		return s;
	/* Years of other than four digits are for strftime. */
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		if (strftime(s, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
			s[0] = '\0';
		return s;
	}
	memcpy(s, "0000-00-00T00:00:00Z", 21);
	put_digits(s, tm.tm_year + 1900, 4);
	put_digits(s + 5, tm.tm_mon + 1, 2);
	put_digits(s + 8, tm.tm_mday, 2);
	put_digits(s + 11, tm.tm_hour, 2);
	put_digits(s + 14, tm.tm_min, 2);
	put_digits(s + 17, tm.tm_sec, 2);
	return s;
}

/*
 * The cursor's form of an instant in µs, "2026-11-24T11:53:27.123456Z":
 * every microsecond, since the cursor test compares it with updated_at
 * exactly; trailing zeros are dropped, as PostgreSQL drops them.
 */
static const char *iso_utc_us(struct req *r, int64_t us)
{
	int64_t secs = us / 1000000, frac = us % 1000000;
	const char *whole;
	int digits = 6;

	if (frac < 0) {
		secs--;
		frac += 1000000;
	}
	whole = iso_utc(r, secs);
	if (frac == 0 || *whole == '\0')
		return whole;
	while (frac % 10 == 0) {
		frac /= 10;
		digits--;
	}
	return arena_printf(r->arena, "%.*s.%0*" PRId64 "Z",
			    (int)strlen(whole) - 1, whole, digits, frac);
}

/*
 * Microseconds as whole seconds, to the nearest and ties to even, as the
 * float8-to-int8 casts the list used to do in SQL rounded them.
 */
static int64_t secs_of(int64_t us)
{
	int64_t secs = us / 1000000, rem = us % 1000000;

	if (rem < 0) {
		secs--;
		rem += 1000000;
	}
	if (rem > 500000 || (rem == 500000 && secs % 2 != 0))
		secs++;
	return secs;
}

/*
 * An instant as float8out wrote its seconds since the epoch (date_part):
 * "1795523432.123456", "1795523432", "-0.5" or, within 0.0001 s of the
 * epoch, "5e-05". db.c pins extra_float_digits at 1, so that is the
 * shortest text that reads back as the same double, and for any instant
 * of whole microseconds from 1697 to 2242 (under 2^33 seconds from the
 * epoch, where doubles lie less than 1 µs apart) it is that instant's
 * exact decimal. Read digit by digit into *us; strtod and a
 * multiplication would round. False for other text (Infinity, NaN) or a
 * fraction of a microsecond.
 */
static bool parse_epoch_us(const char *s, int64_t *us)
{
	bool neg = false, point = false, eneg;
	int64_t m = 0;
	int ndigits = 0, scale = 6, e = 0;

	if (*s == '-') {
		neg = true;
		s++;
	}
	for (;; s++) {
		if (*s == '.' && !point) {
			point = true;
			continue;
		}
		if (!is_digit(*s))
			break;
		if (++ndigits > 18)
			return false;
		m = m * 10 + (*s - '0');
		if (point)
			scale--;
	}
	if (ndigits == 0)
		return false;
	if (*s == 'e') {
		eneg = *++s == '-';
		if (*s == '-' || *s == '+')
			s++;
		if (!is_digit(*s))
			return false;
		for (; is_digit(*s) && e < 100; s++)
			e = e * 10 + (*s - '0');
		scale += eneg ? -e : e;
	}
	if (*s != '\0')
		return false;
	for (; scale > 0; scale--) {
		if (m > INT64_MAX / 10)
			return false;
		m *= 10;
	}
	for (; scale < 0; scale++) {
		if (m % 10 != 0)
			return false;
		m /= 10;
	}
	*us = neg ? -m : m;
	return true;
}

/*
 * The request's clock in µs: the list's ages and due times count from it
 * rather than from PostgreSQL's now() on every row. Both are this
 * machine's clock in every deployment we document, and a second between
 * them does not change "3m ago".
 */
static int64_t clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The badge of an SLA state (the colours the ticket page uses). */
static const char *sla_badge(const char *state)
{
	if (!strcmp(state, "breached"))
		return "badge-p1";
	if (!strcmp(state, "at_risk"))
		return "badge-p2";
	if (!strcmp(state, "ok") || !strcmp(state, "met"))
		return "badge-on";
	return "badge-off";
}

/* The columns of LIST_COLUMNS a row reads (3 and 5 are empty). */
enum list_col {
	COL_ID = 0,
	COL_NUMBER = 1,
	COL_SUBJECT = 2,
	COL_CLIENT_ID = 4,
	COL_ASSIGNEE_ID = 6,
	COL_STATUS = 7,
	COL_PRIORITY = 8,
	COL_TAGS = 9,
	COL_TYPE = 10,
	COL_UPDATED = 11, /* float8 seconds since the epoch */
	COL_SOURCE = 12,
	COL_RANK = 13,
	COL_SLA_STATE = 14,
	COL_SLA_DUE = 15 /* the same, or null when nothing is due */
};

/* One list result, for reading its rows field by field. */
struct row_src {
	struct req *r;
	const PGresult *res;
	int64_t now; /* µs, read once per request (clock_us) */
};

/* How a field is read from column col of row i (see LIST_ROW). */
typedef void row_read(const struct row_src *src, int i, int col,
		      struct mustache_value *out);

static void set_text(struct mustache_value *out, const char *s)
{
	out->kind = MV_TEXT;
	out->s = s;
	out->n = strlen(s);
}

/* A kept name (UTF-8 already: it came from PostgreSQL), or null. */
static void set_name(struct mustache_value *out, const char *s)
{
	if (s != NULL)
		set_text(out, s);
	else
		out->kind = MV_NULL;
}

static void read_int(const struct row_src *src, int i, int col,
		     struct mustache_value *out)
{
	out->kind = MV_INT;
	out->i = db_int(src->res, i, col);
}

static void read_opt_int(const struct row_src *src, int i, int col,
			 struct mustache_value *out)
{
	if (db_isnull(src->res, i, col))
		out->kind = MV_NULL;
	else
		read_int(src, i, col, out);
}

/* A text column, as it came (PostgreSQL sends valid UTF-8). */
static void read_text(const struct row_src *src, int i, int col,
		      struct mustache_value *out)
{
	out->kind = MV_TEXT;
	out->s = PQgetvalue(src->res, i, col);
	out->n = (size_t)PQgetlength(src->res, i, col);
}

static void read_ref(const struct row_src *src, int i, int col,
		     struct mustache_value *out)
{
	set_text(out,
		 arena_join(src->r->arena, "T-", db_text(src->res, i, col)));
}

static void read_url(const struct row_src *src, int i, int col,
		     struct mustache_value *out)
{
	set_text(out, arena_join(src->r->arena, "/tickets/",
				 db_text(src->res, i, col)));
}

static void read_client(const struct row_src *src, int i, int col,
			struct mustache_value *out)
{
	set_name(out, names_client(db_int(src->res, i, col)));
}

static void read_assignee(const struct row_src *src, int i, int col,
			  struct mustache_value *out)
{
	if (db_isnull(src->res, i, col))
		out->kind = MV_NULL;
	else
		set_name(out, names_user(db_int(src->res, i, col)));
}

static enum ticket_status status_of(const struct row_src *src, int i, int col)
{
	return ticketctx_status_parse(db_text(src->res, i, col));
}

static void read_status_label(const struct row_src *src, int i, int col,
			      struct mustache_value *out)
{
	set_text(out, ticketctx_status_label(src->r, status_of(src, i, col)));
}

static void read_status_class(const struct row_src *src, int i, int col,
			      struct mustache_value *out)
{
	set_text(out, ticketctx_status_badge(status_of(src, i, col)));
}

static void read_priority_label(const struct row_src *src, int i, int col,
				struct mustache_value *out)
{
	set_text(out, ticketctx_priority_label((int)db_int(src->res, i, col)));
}

static void read_priority_class(const struct row_src *src, int i, int col,
				struct mustache_value *out)
{
	static const char *const prio_class[] = { "badge-p3", "badge-p1",
						  "badge-p2", "badge-p3",
						  "badge-p4" };
	int64_t prio = db_int(src->res, i, col);

	set_text(out, prio_class[prio >= 1 && prio <= 4 ? prio : 0]);
}

static void read_tags(const struct row_src *src, int i, int col,
		      struct mustache_value *out)
{
	out->kind = MV_JSON;
	out->json = json_from(db_text(src->res, i, col));
}

/* The time since the instant in col, "3m ago"; null if it cannot be read. */
static void read_age(const struct row_src *src, int i, int col,
		     struct mustache_value *out)
{
	int64_t us;

	if (parse_epoch_us(db_text(src->res, i, col), &us))
		set_text(out, age_text(src->r, secs_of(src->now - us)));
	else
		out->kind = MV_NULL;
}

/* The instant in col to the second, "2026-11-24T08:17:59Z", or null. */
static void read_time(const struct row_src *src, int i, int col,
		      struct mustache_value *out)
{
	int64_t us;

	if (parse_epoch_us(db_text(src->res, i, col), &us))
		set_text(out, iso_utc(src->r, secs_of(us)));
	else
		out->kind = MV_NULL;
}

static void read_rank(const struct row_src *src, int i, int col,
		      struct mustache_value *out)
{
	out->kind = MV_JSON;
	out->json = json_real(strtod(db_text(src->res, i, col), NULL));
}

/* "paused", the time to the next due, or null when nothing is due. */
static void read_sla_label(const struct row_src *src, int i, int col,
			   struct mustache_value *out)
{
	int64_t us;

	if (!strcmp(db_text(src->res, i, COL_SLA_STATE), "paused"))
		set_text(out, "paused");
	else if (db_isnull(src->res, i, col) ||
		 !parse_epoch_us(db_text(src->res, i, col), &us))
		out->kind = MV_NULL;
	else
		set_text(out, due_text(src->r, secs_of(us - src->now)));
}

static void read_sla_class(const struct row_src *src, int i, int col,
			   struct mustache_value *out)
{
	set_text(out, sla_badge(db_text(src->res, i, col)));
}

/*
 * A row of the list, field by field: its key, how it is read and from
 * which column. The API's objects (ticket_row) and the page's rows
 * (row_get) both come from this one table, so they cannot disagree; the
 * order is the API's.
 */
#define LIST_ROW(X)                                                            \
	X("id", read_int, COL_ID)                                              \
	X("number", read_int, COL_NUMBER)                                      \
	X("ref", read_ref, COL_NUMBER)                                         \
	X("url", read_url, COL_ID)                                             \
	X("subject", read_text, COL_SUBJECT)                                   \
	X("client_id", read_int, COL_CLIENT_ID)                                \
	X("client", read_client, COL_CLIENT_ID)                                \
	X("assignee", read_assignee, COL_ASSIGNEE_ID)                          \
	X("assignee_id", read_opt_int, COL_ASSIGNEE_ID)                        \
	X("status", read_text, COL_STATUS)                                     \
	X("status_label", read_status_label, COL_STATUS)                       \
	X("status_class", read_status_class, COL_STATUS)                       \
	X("priority", read_int, COL_PRIORITY)                                  \
	X("priority_label", read_priority_label, COL_PRIORITY)                 \
	X("priority_class", read_priority_class, COL_PRIORITY)                 \
	X("tags", read_tags, COL_TAGS)                                         \
	X("type", read_text, COL_TYPE)                                         \
	X("updated", read_age, COL_UPDATED)                                    \
	X("updated_at", read_time, COL_UPDATED)                                \
	X("source", read_text, COL_SOURCE)                                     \
	X("board_rank", read_rank, COL_RANK)                                   \
	X("sla_state", read_text, COL_SLA_STATE)                               \
	X("sla_label", read_sla_label, COL_SLA_DUE)                            \
	X("sla_class", read_sla_class, COL_SLA_STATE)
#define ROW_KEY(key, read, col)	  key,
#define ROW_FIELD(key, read, col) { read, col },

static const char *const row_keys[] = { LIST_ROW(ROW_KEY) };
static const struct row_field {
	row_read *read;
	int col;
} row_fields[] = { LIST_ROW(ROW_FIELD) };

#define ROW_NKEYS (sizeof(row_keys) / sizeof(row_keys[0]))

/* A value of the table as the API gives it. */
static json_t *value_json(const struct mustache_value *v)
{
	switch (v->kind) {
	case MV_NULL:
		return json_null();
	case MV_FALSE:
		return json_false();
	case MV_TRUE:
		return json_true();
	case MV_INT:
		return json_integer(v->i);
	case MV_TEXT:
		return json_stringn_nocheck(v->s, v->n);
	case MV_JSON:
		return v->json;
	case MV_MISSING:
	default:
		abort();
	}
}

/* Row i of the list as the API's object (and the board's card). */
static json_t *ticket_row(const struct row_src *src, int i)
{
	struct mustache_value v;
	json_t *o = json_object();
	size_t k;

	for (k = 0; k < ROW_NKEYS; k++) {
		memset(&v, 0, sizeof(v));
		row_fields[k].read(src, i, row_fields[k].col, &v);
		json_object_set_new_nocheck(o, row_keys[k], value_json(&v));
	}
	return o;
}

/* The row source's answer: the same table, with no object built. */
static void row_get(void *ctx, size_t row, size_t key,
		    struct mustache_value *out)
{
	const struct row_src *src = ctx;

	row_fields[key].read(src, (int)row, row_fields[key].col, out);
}

/* The page's first n rows, read as the template asks for them. */
static void add_row_source(struct req *r, const struct row_src *from, int n)
{
	struct row_src *src = arena_alloc(r->arena, sizeof(*src));
	struct mustache_rows rows;

	*src = *from;
	rows.name = "tickets";
	rows.n = (size_t)n;
	rows.keys = row_keys;
	rows.nkeys = ROW_NKEYS;
	rows.ctx = src;
	rows.get = row_get;
	view_rows(r, &rows);
}

/* The statuses as a PostgreSQL array literal of fixed keys. */
static const char *status_array(struct req *r, const struct queue_filter *f)
{
	struct sbuf sb;
	int i;

	sbuf_init(&sb, r->arena, 48);
	sbuf_addch(&sb, '{');
	for (i = 0; i < TICKET_STATUS__MAX; i++) {
		if (!f->status[i])
			continue;
		if (sbuf_cstr(&sb)[1] != '\0')
			sbuf_addch(&sb, ',');
		sbuf_adds(&sb, ticketctx_status_key((enum ticket_status)i));
	}
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

static bool one_of(const char *s, const char *const *keys)
{
	for (; *keys != NULL; keys++)
		if (!strcmp(s, *keys))
			return true;
	return false;
}

/* Reads the filters; problems go to form_error. */
static void read_filter(struct req *r, struct queue_filter *f, bool mine)
{
	static const char *const types[] = { "incident", "project", NULL };
	static const char *const sources[] = { "email", "portal", "alert",
					       "phone", "manual", "api",
					       NULL };
	static const char *const slas[] = { "breached", "at_risk", "paused",
					    "ok", NULL };
	const char *s;
	bool any = false;
	enum ticket_status st;
	int64_t v;
	size_t i;
	int k;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < r->query_params.n; i++) {
		if (strcmp(r->query_params.v[i].name, "status") ||
		    r->query_params.v[i].value[0] == '\0')
			continue;
		st = ticketctx_status_parse(r->query_params.v[i].value);
		if (st == TICKET_STATUS__MAX) {
			form_error(
				r, "status",
				"choose new, in_progress, waiting or closed");
			continue;
		}
		f->status[st] = true;
		any = true;
	}
	if (!any || mine) {
		memset(f->status, 0, sizeof(f->status));
		f->status[TICKET_NEW] = true;
		f->status[TICKET_IN_PROGRESS] = true;
		f->status[TICKET_WAITING] = true;
	}
	f->priority = query_param(r, "priority");
	if (f->priority != NULL &&
	    (strlen(f->priority) != 1 || f->priority[0] < '1' ||
	     f->priority[0] > '4'))
		form_error(r, "priority", "choose a priority from 1 to 4");
	f->client_id = query_param(r, "client_id");
	if (f->client_id != NULL && !http_parse_id(f->client_id, &v))
		form_error(r, "client_id", "not a client");
	f->client = query_param(r, "client");
	if (f->client != NULL && http_utf8_len(f->client) > 200)
		form_error(r, "client", "type at most 200 characters");
	f->assignee = mine ? "me" : query_param(r, "assignee");
	if (f->assignee != NULL) {
		if (!strcmp(f->assignee, "me"))
			f->assignee_id = req_id(r, r->auth.user_id);
		else if (!strcmp(f->assignee, "unassigned"))
			f->unassigned = true;
		else if (http_parse_id(f->assignee, &v))
			f->assignee_id = f->assignee;
		else
			form_error(r, "assignee",
				   "choose a person, me or unassigned");
	}
	f->tag = query_param(r, "tag");
	f->type = query_param(r, "type");
	if (f->type != NULL && !one_of(f->type, types))
		form_error(r, "type", "choose incident or project");
	f->source = query_param(r, "source");
	if (f->source != NULL && !one_of(f->source, sources))
		form_error(r, "source", "not a ticket source");
	f->sla = query_param(r, "sla");
	if (f->sla != NULL && !one_of(f->sla, slas))
		form_error(r, "sla", "choose breached, at_risk, paused or ok");
	f->queue = query_param(r, "queue");
	if (f->queue != NULL && http_utf8_len(f->queue) > 60)
		form_error(r, "queue", "not a queue");
	f->q = query_param(r, "q");
	s = query_param(r, "sort");
	f->sort = SORT_UPDATED;
	if (s != NULL) {
		for (k = 0; k < SORT__MAX; k++)
			if (!strcmp(s, sorts[k].key))
				break;
		if (k == SORT__MAX)
			form_error(r, "sort",
				   "sort by updated, created, priority, number "
				   "or sla");
		else
			f->sort = (enum queue_sort)k;
	}
}

static void filter_params(struct req *r, const struct queue_filter *f,
			  const char **params)
{
	params[0] = status_array(r, f);
	params[1] = f->priority;
	params[2] = f->client_ids;
	params[3] = f->assignee_id;
	params[4] = f->unassigned ? "true" : "false";
	params[5] = f->tag;
	params[6] = f->type;
	params[7] = f->source;
	params[8] = f->q;
	params[12] = f->queue;
	params[13] = f->sla;
}

static json_t *filter_json(const struct queue_filter *f)
{
	json_t *st = json_array(), *o;
	int i;

	for (i = 0; i < TICKET_STATUS__MAX; i++)
		if (f->status[i])
			json_array_append_new(st,
					      json_string(ticketctx_status_key(
						      (enum ticket_status)i)));
	o = json_pack("{s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?,"
		      " s:s?, s:s?, s:s}",
		      "status", st, "priority", f->priority, "client_id",
		      f->client_id, "client",
		      f->client_name != NULL ? f->client_name : f->client,
		      "assignee", f->assignee, "tag", f->tag, "type", f->type,
		      "source", f->source, "queue", f->queue, "sla", f->sla,
		      "q", f->q, "sort", sorts[f->sort].key);
	return o;
}

/*
 * The cursor key of row i, what the sort's cursor test compares: the
 * update time to the microsecond ("2026-11-24T11:53:27.123456Z", after
 * "2~" by priority), the SLA due time in µs, the id or the number. NULL
 * if the row's time cannot be read.
 */
static const char *row_key(struct req *r, enum queue_sort sort,
			   const PGresult *res, int i)
{
	int64_t us;

	switch (sort) {
	case SORT_UPDATED:
	case SORT_PRIORITY:
		if (!parse_epoch_us(db_text(res, i, COL_UPDATED), &us))
			return NULL;
		if (sort == SORT_UPDATED)
			return iso_utc_us(r, us);
		return arena_printf(r->arena, "%s~%s",
				    db_text(res, i, COL_PRIORITY),
				    iso_utc_us(r, us));
	case SORT_CREATED:
		return db_text(res, i, COL_ID);
	case SORT_NUMBER:
		return db_text(res, i, COL_NUMBER);
	case SORT_SLA:
		if (db_isnull(res, i, COL_SLA_DUE))
			return NO_DUE;
		if (!parse_epoch_us(db_text(res, i, COL_SLA_DUE), &us))
			return NULL;
		return arena_printf(r->arena, "%" PRId64, us);
	case SORT__MAX:
	default:
		abort();
	}
}

/*
 * The cursor "<id>.<key>": the key must look like what the sort writes
 * (digits, '-', ':', '.', 'T', 'Z', '~'), so a cast cannot fail.
 */
static bool parse_cursor(struct req *r, const char *s, const char **key,
			 const char **id)
{
	const char *dot = strchr(s, '.'), *p;
	int64_t v;

	if (dot == NULL)
		return false;
	if (!http_parse_id(arena_strndup(r->arena, s, (size_t)(dot - s)), &v))
		return false;
	*id = req_id(r, v);
	*key = dot + 1;
	if (**key == '\0' || strlen(*key) > CURSOR_KEY_MAX)
		return false;
	for (p = *key; *p != '\0'; p++)
		if (!is_digit(*p) && strchr("-:.TZ~", *p) == NULL)
			return false;
	return true;
}

/*
 * Turns ?client_id or ?client (part of a name) into the bigint[] the list
 * statements take. A name no client holds is a form error, not an empty
 * list that looks like "no tickets".
 */
static enum td_err resolve_clients(struct req *r, struct queue_filter *f)
{
	const char *params[1];
	PGresult *res;
	enum td_err err;

	if (form_has_errors(r))
		return TD_OK;
	if (f->client_id != NULL) {
		params[0] = f->client_id;
		err = req_query(r, sql_client_name, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) == 0) {
			form_error(r, "client_id", "not a client");
			return TD_OK;
		}
		/* The form sends both; a name typed over the shown one wins. */
		if (f->client == NULL ||
		    !strcmp(f->client, db_text(res, 0, 0))) {
			f->client_name = db_text(res, 0, 0);
			f->client_ids =
				arena_printf(r->arena, "{%s}", f->client_id);
			return TD_OK;
		}
		f->client_id = NULL;
	}
	if (f->client == NULL)
		return TD_OK;
	params[0] = f->client;
	err = req_query(r, sql_clients_named, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (db_int(res, 0, 1) == 0) {
		form_error(r, "client",
			   arena_printf(r->arena,
					"no client's name contains “%s”",
					f->client));
		return TD_OK;
	}
	if (db_int(res, 0, 1) == 1)
		f->client_name = db_text(res, 0, 2);
	f->client_ids = db_text(res, 0, 0);
	return TD_OK;
}

/* Choices for the filter form and the bulk form; the saved views. */
static enum td_err add_choices(struct req *r, const struct queue_filter *f)
{
	struct ticket_choices c;
	json_t *v = req_view(r);
	int64_t user = 0;
	enum td_err err;

	/* A person picked from the menu (not "me", not "unassigned"). */
	if (f->assignee_id != NULL && !f->unassigned && f->assignee != NULL &&
	    strcmp(f->assignee, "me") != 0)
		user = strtoll(f->assignee_id, NULL, 10);
	err = ticketctx_choices(r, "user_choices", user, f->queue, true, &c);
	json_object_set_new(v, "has_queues",
			    json_boolean(json_array_size(c.queues) > 0));
	json_object_set_new(v, "queue_choices", c.queues);
	json_object_set_new(v, "views", c.views);
	return err;
}

/* Flags the template needs to mark the current choices. */
static void add_flags(struct req *r, const struct queue_filter *f)
{
	json_t *v = req_view(r), *o = json_object();
	char key[32];
	int i;

	for (i = 0; i < TICKET_STATUS__MAX; i++)
		json_object_set_new(o,
				    ticketctx_status_key((enum ticket_status)i),
				    json_boolean(f->status[i]));
	json_object_set_new(v, "status_on", o);
	o = json_object();
	for (i = 1; i <= 4; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		json_object_set_new(o, key,
				    json_boolean(f->priority != NULL &&
						 f->priority[0] == '0' + i));
	}
	json_object_set_new(v, "priority_on", o);
	o = json_object();
	for (i = 0; i < SORT__MAX; i++)
		json_object_set_new(
			o, sorts[i].key,
			json_boolean(f->sort == (enum queue_sort)i));
	json_object_set_new(v, "sort_on", o);
	json_object_set_new(
		v, "assignee_on",
		json_pack("{s:b, s:b}", "me",
			  f->assignee != NULL && !strcmp(f->assignee, "me"),
			  "unassigned", f->unassigned));
	json_object_set_new(
		v, "type_on",
		json_pack("{s:b, s:b}", "incident",
			  f->type != NULL && !strcmp(f->type, "incident"),
			  "project",
			  f->type != NULL && !strcmp(f->type, "project")));
	json_object_set_new(
		v, "sla_on",
		json_pack("{s:b, s:b, s:b, s:b}", "breached",
			  f->sla != NULL && !strcmp(f->sla, "breached"),
			  "at_risk",
			  f->sla != NULL && !strcmp(f->sla, "at_risk"),
			  "paused", f->sla != NULL && !strcmp(f->sla, "paused"),
			  "ok", f->sla != NULL && !strcmp(f->sla, "ok")));
	json_object_set_new(v, "query", json_string(r->query));
	json_object_set_new(
		v, "return_to",
		json_string(*r->query != '\0' ?
				    arena_printf(r->arena, "/tickets?%s",
						 r->query) :
				    "/tickets"));
}

/*
 * The statement for f: a planned-once one when the only filters are the
 * statuses and perhaps "mine"; otherwise one planned with its values.
 * *plans is the setting that goes with it.
 */
static void list_sql(const struct queue_filter *f, const char **sql,
		     const char **plans)
{
	bool only_mine = f->assignee_id != NULL && f->assignee != NULL &&
			 !strcmp(f->assignee, "me"),
	     open;

	if (f->priority == NULL && f->client_ids == NULL && !f->unassigned &&
	    f->tag == NULL && f->type == NULL && f->source == NULL &&
	    f->q == NULL && f->queue == NULL && f->sla == NULL &&
	    (f->assignee_id == NULL || only_mine)) {
		open = f->status[TICKET_NEW] && f->status[TICKET_IN_PROGRESS] &&
		       f->status[TICKET_WAITING] && !f->status[TICKET_CLOSED];
		if (open)
			*sql = only_mine ? sorts[f->sort].open_mine_sql :
					   sorts[f->sort].open_sql;
		else
			*sql = only_mine ? sorts[f->sort].mine_sql :
					   sorts[f->sort].all_sql;
		*plans = sql_generic_plans;
		return;
	}
	*sql = f->q != NULL ? sorts[f->sort].search_sql : sorts[f->sort].sql;
	*plans = sql_custom_plans;
}

static enum td_err list_page(struct req *r, bool mine)
{
	const char *after = clientctx_after(r), *params[14], *next, *collect;
	const char *key = NULL, *cid = NULL, *last_key;
	struct queue_filter f;
	struct row_src src = { r, NULL, clock_us() };
	json_t *v = req_view(r), *rows = NULL;
	int limit = clientctx_limit(r), i, n;
	PGresult *res;
	/* The plan setting, the list and the commit, in one round trip. */
	struct db_stmt q[2] = { { NULL, 0, NULL, NULL },
				{ NULL, 14, params, &res } };
	enum td_err err;

	read_filter(r, &f, mine);
	if (after != NULL && !parse_cursor(r, after, &key, &cid))
		form_error(r, "after", "not a valid position in the list");
	err = resolve_clients(r, &f);
	if (err != TD_OK)
		return err;
	/* The page reads its rows from the result (add_row_source). */
	if (r->want_json) {
		rows = json_array();
		json_object_set_new(v, "tickets", rows);
	}
	json_object_set_new(v, "next", json_null());
	json_object_set_new(v, "filter", filter_json(&f));
	json_object_set_new(v, "title",
			    json_string(mine ? "My work" : "Tickets"));
	json_object_set_new(v, "mine", json_boolean(mine));
	json_object_set_new(v, "paged", json_boolean(after != NULL));
	r->view_name = "tickets/list";
	add_flags(r, &f);
	err = add_choices(r, &f);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return form_reject(r, "tickets/list", NULL);
	filter_params(r, &f, params);
	params[9] = key;
	params[10] = cid;
	/* One more than a page, to know whether there is a next one. */
	params[11] = arena_printf(r->arena, "%d", limit + 1);
	list_sql(&f, &q[1].sql, &q[0].sql);
	collect = q[1].sql;
	if (f.q != NULL && sorts[f.sort].walk_sql != NULL)
		q[1].sql = sorts[f.sort].walk_sql;
	err = db_exec_batch_end(r->db, r->arena, q, 2);
	/* The walk did not fill the page: the matches are few; collect them. */
	if (err == TD_OK && q[1].sql != collect && PQntuples(res) <= limit)
		err = db_exec(r->db, r->arena, collect, 14, params, &res);
	if (err != TD_OK)
		return req_fail(r, err, "query failed: %s", r->db->errmsg);
	err = names_load(r, res, COL_CLIENT_ID, COL_ASSIGNEE_ID);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	src.res = res;
	if (rows == NULL)
		add_row_source(r, &src, n < limit ? n : limit);
	for (i = 0; rows != NULL && i < n && i < limit; i++)
		json_array_append_new(rows, ticket_row(&src, i));
	json_object_set_new(v, "has_tickets", json_boolean(n > 0));
	if (n > limit) {
		last_key = row_key(r, f.sort, res, limit - 1);
		if (last_key == NULL)
			return req_fail(r, TD_EDB,
					"cannot read the cursor key of ticket "
					"%s",
					db_text(res, limit - 1, COL_ID));
		next = arena_printf(r->arena, "%s.%s",
				    db_text(res, limit - 1, COL_ID), last_key);
		json_object_set_new(v, "next", json_string(next));
		json_object_set_new(
			v, "next_url",
			json_string(clientctx_next_url(
				r, mine ? "/tickets/mine" : "/tickets", next)));
	}
	return TD_OK;
}

/*
 * GET /tickets — ?status (repeatable; default the open ones), ?priority,
 * ?client_id, ?assignee=<id>|me|unassigned, ?tag, ?type, ?source, ?q,
 * ?sort=updated|created|priority|number, ?after, ?limit. 422 for a value
 * it does not know or a cursor it did not make.
 */
enum td_err queue_list(struct req *r)
{
	return list_page(r, false);
}

/* GET /tickets/mine — the list, open tickets assigned to the caller. */
enum td_err queue_mine(struct req *r)
{
	return list_page(r, true);
}

/*
 * GET /tickets/board — ?client_id, ?assignee: four columns by status; the
 * closed one holds the most recently closed only. 422 for bad filters.
 */
enum td_err queue_board(struct req *r)
{
	const char *params[14];
	struct queue_filter f;
	struct row_src src = { r, NULL, clock_us() };
	json_t *v = req_view(r), *cols = json_array(), *col, *cards;
	PGresult *res;
	enum td_err err;
	int i, n, s;
	const char *st;

	read_filter(r, &f, false);
	f.priority = f.tag = f.type = f.source = f.q = f.sla = NULL;
	err = resolve_clients(r, &f);
	if (err != TD_OK)
		return err;
	json_object_set_new(v, "title", json_string("Board"));
	json_object_set_new(v, "columns", cols);
	json_object_set_new(v, "filter", filter_json(&f));
	r->view_name = "tickets/board";
	add_flags(r, &f);
	err = add_choices(r, &f);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return form_reject(r, "tickets/board", NULL);
	memset(f.status, 0, sizeof(f.status));
	f.status[TICKET_NEW] = f.status[TICKET_IN_PROGRESS] =
		f.status[TICKET_WAITING] = true;
	filter_params(r, &f, params);
	params[9] = NULL;
	params[10] = NULL;
	err = req_query(r, sql_custom_plans, 0, NULL, NULL);
	if (err != TD_OK)
		return err;
	/*
	 * Each column on its own, a card more than it shows, so a long column
	 * says it goes on instead of quietly ending (0016 indexes the order).
	 */
	for (s = 0; s < TICKET_STATUS__MAX; s++) {
		st = ticketctx_status_key((enum ticket_status)s);
		params[0] = arena_printf(r->arena, "{%s}", st);
		params[11] =
			arena_printf(r->arena, "%d",
				     s == TICKET_CLOSED ? BOARD_CLOSED :
							  BOARD_COLUMN_MAX + 1);
		err = req_query(r,
				s == TICKET_CLOSED ? sql_board_closed :
						     sql_board_open,
				14, params, &res);
		if (err == TD_OK)
			err = names_load(r, res, COL_CLIENT_ID,
					 COL_ASSIGNEE_ID);
		if (err != TD_OK)
			return err;
		cards = json_array();
		n = PQntuples(res);
		src.res = res;
		for (i = 0; i < n && i < BOARD_COLUMN_MAX; i++)
			json_array_append_new(cards, ticket_row(&src, i));
		col = json_pack(
			"{s:s, s:s, s:s, s:b, s:I, s:b}", "status", st, "label",
			ticketctx_status_label(r, (enum ticket_status)s),
			"class", ticketctx_status_badge((enum ticket_status)s),
			"closed", s == TICKET_CLOSED, "count",
			(json_int_t)json_array_size(cards), "more",
			s != TICKET_CLOSED && n > BOARD_COLUMN_MAX);
		json_object_set_new(col, "cards", cards);
		json_array_append_new(cols, col);
	}
	return TD_OK;
}

static enum td_err snapshot(struct req *r, int64_t id, json_t **out)
{
	const char *params[1] = { req_id(r, id) };
	PGresult *res;
	enum td_err err = req_query(r, sql_snapshot, 1, params, &res);

	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64, id);
	*out = json_pack("{s:s, s:I, s:o, s:o, s:f}", "status",
			 db_text(res, 0, 0), "priority",
			 (json_int_t)db_int(res, 0, 1), "assignee_id",
			 db_isnull(res, 0, 2) ? json_null() :
						json_integer(db_int(res, 0, 2)),
			 "tags", json_from(db_text(res, 0, 3)), "board_rank",
			 strtod(db_text(res, 0, 4), NULL));
	req_own_json(r, *out);
	return TD_OK;
}

/* Runs write (with $1 the ticket and $2 value) and audits the change. */
static enum td_err change_ticket(struct req *r, int64_t id, const char *sql,
				 const char *value)
{
	const char *params[2] = { req_id(r, id), value };
	json_t *before, *after;
	enum td_err err;

	err = snapshot(r, id, &before);
	if (err == TD_OK)
		err = req_query(r, sql, 2, params, NULL);
	if (err == TD_OK)
		err = snapshot(r, id, &after);
	if (err == TD_OK)
		err = audit_write(r, "ticket.update", "ticket", id, before,
				  after);
	if (err == TD_OK)
		err = ticketctx_touch(r, id, false);
	return err;
}

/* Where a bulk form may send the browser back to: a list page of ours. */
static bool safe_return(const char *s)
{
	const char *p;

	if (strcmp(s, "/tickets") && strncmp(s, "/tickets?", 9) &&
	    strcmp(s, "/tickets/mine") && strncmp(s, "/tickets/mine?", 14))
		return false;
	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f || *p == '\\')
			return false;
	return true;
}

/* The ids of a bulk request: repeated form fields or a JSON "ids" array. */
static json_t *bulk_ids(struct req *r)
{
	json_t *ids = json_array(), *a, *x;
	int64_t v;
	size_t i;

	req_own_json(r, ids);
	if (r->json_body != NULL) {
		a = json_object_get(r->json_body, "ids");
		json_array_foreach(a, i, x)
		{
			if (json_is_integer(x) && json_integer_value(x) > 0)
				json_array_append_new(
					ids,
					json_integer(json_integer_value(x)));
			else
				form_error(r, "ids", "not a ticket");
		}
		return ids;
	}
	for (i = 0; i < r->form.n; i++) {
		if (strcmp(r->form.v[i].name, "id"))
			continue;
		if (http_parse_id(r->form.v[i].value, &v))
			json_array_append_new(ids, json_integer(v));
		else
			form_error(r, "ids", "not a ticket");
	}
	return ids;
}

/*
 * POST /tickets/bulk — action=assign|status|priority|tag, value, id
 * (repeated). Closed tickets are skipped; closing is not a bulk action.
 * 422 for a bad action, value or id list; 404 if a ticket is not there.
 */
enum td_err queue_bulk(struct req *r)
{
	static const char *const actions[] = { "assign", "status", "priority",
					       "tag",	 "merge",  NULL };
	const char *action = form_text(r, "action");
	const char *value = form_text(r, "value"), *sql = NULL, *p[1];
	const char *back = form_text(r, "return_to");
	json_t *ids = bulk_ids(r), *done = json_array(),
	       *skipped = json_array();
	json_t *x;
	struct ticket_ref t;
	enum ticket_status st;
	PGresult *res;
	enum td_err err;
	int64_t v, target = 0, nums[2] = { 0, 0 };
	size_t i;

	if (!safe_return(back))
		back = "/tickets";
	json_object_set_new(req_view(r), "updated", done);
	json_object_set_new(req_view(r), "skipped", skipped);
	if (json_array_size(ids) == 0)
		form_error(r, "ids", "tick at least one ticket");
	else if (json_array_size(ids) > BULK_MAX)
		form_error(r, "ids", "at most 200 tickets at a time");
	if (!one_of(action, actions)) {
		form_error(r, "action",
			   "choose assign, status, priority, tag or merge");
	} else if (!strcmp(action, "assign")) {
		sql = sql_set_assignee;
		if (!strcmp(value, "me") && r->auth.user_id <= 0) {
			form_error(r, "value", "only people can take tickets");
		} else if (!strcmp(value, "me")) {
			value = req_id(r, r->auth.user_id);
		} else if (!strcmp(value, "") || !strcmp(value, "none")) {
			value = NULL;
		} else if (!http_parse_id(value, &v)) {
			form_error(r, "value", "choose a person");
		} else {
			p[0] = value;
			err = req_query(r, sql_user_ok, 1, p, &res);
			if (err != TD_OK)
				return err;
			if (PQntuples(res) == 0)
				form_error(r, "value", "no such person");
		}
	} else if (!strcmp(action, "status")) {
		sql = sql_set_status;
		st = ticketctx_status_parse(value);
		if (st == TICKET_CLOSED)
			form_error(r, "value",
				   "close tickets from their pages: the close "
				   "guard asks about time");
		else if (st == TICKET_STATUS__MAX)
			form_error(r, "value",
				   "choose new, in_progress or waiting");
	} else if (!strcmp(action, "priority")) {
		sql = sql_set_priority;
		if (strlen(value) != 1 || value[0] < '1' || value[0] > '4')
			form_error(r, "value", "choose a priority from 1 to 4");
	} else if (!strcmp(action, "merge")) {
		/* Duplicates: every ticked ticket but the target goes into it.
		 */
		err = ticketctx_find(r, value, &target);
		if (err != TD_OK)
			return err;
		if (target == 0) {
			form_error(r, "value",
				   "enter the ticket to merge into, such as "
				   "T-1002");
		} else {
			err = ticketctx_load(r, target, false, &t);
			if (err != TD_OK)
				return err;
			if (t.status == TICKET_CLOSED)
				form_error(r, "value",
					   arena_printf(r->arena,
							"T-%" PRId64
							" is closed: reopen it "
							"to merge into it",
							t.number));
			nums[1] = t.number;
		}
	} else {
		sql = sql_add_tag;
		if (*value == '\0' || strlen(value) > TAG_LEN)
			form_error(r, "value", "a tag of 1 to 40 characters");
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			form_flash(r, "error",
				   "Nothing changed: choose "
				   "tickets, an action and a "
				   "valid value");
			r->redirect = back;
			return TD_OK;
		}
		return form_reject(r, "tickets/list", NULL);
	}
	json_array_foreach(ids, i, x)
	{
		err = ticketctx_load(r, (int64_t)json_integer_value(x), true,
				     &t);
		if (err != TD_OK)
			return err;
		if (t.status == TICKET_CLOSED) {
			json_array_append_new(
				skipped,
				json_string(arena_printf(r->arena, "T-%" PRId64,
							 t.number)));
			continue;
		}
		if (target != 0 && t.id == target)
			continue;
		err = target != 0 ? ticketctx_merge(r, t.id, target, nums) :
				    change_ticket(r, t.id, sql, value);
		if (err == TD_OK && sql == sql_set_assignee && value != NULL)
			err = notify_assignee(
				r, t.id, "assigned", "assigned to you",
				arena_printf(
					r->arena,
					"%s assigned T-%" PRId64 " to you: %s",
					r->auth.name != NULL ? r->auth.name :
							       "Someone",
					t.number, t.subject));
		if (err != TD_OK)
			return err;
		json_array_append_new(done, json_integer(t.id));
	}
	if (!r->want_json) {
		form_flash(r, "ok",
			   target != 0 ?
				   arena_printf(
					   r->arena,
					   "Merged %zu tickets into T-%" PRId64
					   "%s",
					   json_array_size(done), nums[1],
					   json_array_size(skipped) ?
						   "; skipped the closed "
						   "ones" :
						   "") :
			   json_array_size(skipped) == 0 ?
				   arena_printf(r->arena, "Updated %zu tickets",
						json_array_size(done)) :
				   arena_printf(r->arena,
						"Updated %zu tickets; skipped "
						"%zu closed",
						json_array_size(done),
						json_array_size(skipped)));
		r->redirect = back;
	}
	return TD_OK;
}

/* A move with bad fields: 422 for the API, back to the board for people. */
static enum td_err move_reject(struct req *r)
{
	if (r->want_json)
		return form_reject(r, "tickets/board", NULL);
	form_flash(r, "error", "Not moved: choose New, In progress or Waiting");
	r->redirect = "/tickets/board";
	return TD_OK;
}

/*
 * POST /tickets/:id/move — status, before_id or after_id (a card of that
 * column). 409 when the ticket is closed or the move would close it; 422
 * for a bad status or neighbour; 404 when there is no such ticket.
 */
enum td_err queue_board_move(struct req *r)
{
	const char *status = form_text(r, "status");
	const char *before_id = form_text(r, "before_id");
	const char *after_id = form_text(r, "after_id");
	const char *params[3], *rank;
	json_t *before, *after;
	struct ticket_ref t;
	enum ticket_status st;
	PGresult *res;
	enum td_err err;
	int64_t v;

	err = ticketctx_load(r, r->args.num[0], true, &t);
	if (err != TD_OK)
		return err;
	err = ticketctx_require_open(r, &t);
	if (err != TD_OK)
		return err;
	st = ticketctx_status_parse(status);
	if (st == TICKET_CLOSED)
		return req_fail(r, TD_ECONFLICT,
				"close the ticket from its page: the close "
				"guard asks about time");
	if (st == TICKET_STATUS__MAX)
		form_error(r, "status", "choose new, in_progress or waiting");
	if (*before_id != '\0' && !http_parse_id(before_id, &v))
		form_error(r, "before_id", "not a ticket");
	if (*after_id != '\0' && !http_parse_id(after_id, &v))
		form_error(r, "after_id", "not a ticket");
	if (form_has_errors(r))
		return move_reject(r);
	params[1] = ticketctx_status_key(st);
	params[2] = req_id(r, t.id);
	if (*before_id != '\0' || *after_id != '\0') {
		params[0] = *before_id != '\0' ? before_id : after_id;
		err = req_query(r,
				*before_id != '\0' ? sql_rank_before :
						     sql_rank_after,
				3, params, &res);
	} else {
		params[0] = params[1];
		params[1] = params[2];
		err = req_query(r, sql_rank_end, 2, params, &res);
		params[1] = ticketctx_status_key(st);
	}
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1) {
		form_error(r, *before_id != '\0' ? "before_id" : "after_id",
			   "not a card of that column");
		return move_reject(r);
	}
	rank = db_text(res, 0, 0);
	err = snapshot(r, t.id, &before);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, t.id);
	params[2] = rank;
	err = req_query(r, sql_move, 3, params, &res);
	if (err != TD_OK)
		return err;
	err = snapshot(r, t.id, &after);
	if (err == TD_OK)
		err = audit_write(r, "ticket.update", "ticket", t.id, before,
				  after);
	if (err == TD_OK)
		err = ticketctx_touch(r, t.id, false);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "ticket",
			    json_pack("{s:I, s:s, s:f}", "id", (json_int_t)t.id,
				      "status", params[1], "board_rank",
				      strtod(rank, NULL)));
	if (!r->want_json) {
		form_flash(r, "ok",
			   arena_printf(r->arena, "Moved T-%" PRId64 " to %s",
					t.number,
					ticketctx_status_label(r, st)));
		r->redirect = "/tickets/board";
	}
	return TD_OK;
}

/*
 * POST /tickets/views — name, query (the list's query string). Saving a
 * name again replaces its query. 422 for a missing name or long query.
 */
enum td_err queue_view_save(struct req *r)
{
	const char *name = form_text(r, "name"), *query = form_text(r, "query");
	const char *params[3];
	PGresult *res;
	enum td_err err;

	if (*query == '?')
		query++;
	if (*name == '\0' || strlen(name) > 60)
		form_error(r, "name", "a name of 1 to 60 characters");
	if (strlen(query) > 2000)
		form_error(r, "query", "at most 2000 characters");
	if (r->auth.user_id <= 0)
		form_error(r, "name", "only people have saved views");
	if (form_has_errors(r)) {
		if (!r->want_json) {
			form_flash(r, "error",
				   "Not saved: give the view a "
				   "name of 1 to 60 characters");
			r->redirect = "/tickets";
			return TD_OK;
		}
		return form_reject(r, "tickets/list", NULL);
	}
	params[0] = req_id(r, r->auth.user_id);
	params[1] = name;
	params[2] = query;
	err = req_query(r, sql_view_save, 3, params, &res);
	if (err != TD_OK)
		return err;
	err = audit_write(r, "saved_view.save", "saved_view", db_int(res, 0, 0),
			  NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(
		req_view(r), "view",
		json_pack("{s:I, s:s, s:s, s:s}", "id",
			  (json_int_t)db_int(res, 0, 0), "name", name, "query",
			  query, "href",
			  arena_printf(r->arena, "/tickets?%s", query)));
	if (!r->want_json) {
		form_flash(r, "ok",
			   arena_printf(r->arena, "Saved view %s", name));
		r->redirect = arena_printf(r->arena, "/tickets?%s", query);
	}
	return TD_OK;
}

/* POST /tickets/views/:id/delete — 404 unless it is the caller's own. */
enum td_err queue_view_delete(struct req *r)
{
	const char *params[2];
	PGresult *res;
	enum td_err err;

	params[0] = req_id(r, r->args.num[0]);
	params[1] = req_id(r, r->auth.user_id);
	err = req_query(r, sql_view_delete, 2, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) == 0)
		return req_fail(r, TD_ENOENT, "no saved view %" PRId64,
				r->args.num[0]);
	err = audit_write(r, "saved_view.delete", "saved_view", r->args.num[0],
			  NULL, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_integer(r->args.num[0]));
	if (!r->want_json) {
		form_flash(r, "ok",
			   arena_printf(r->arena, "Deleted view %s",
					db_text(res, 0, 0)));
		r->redirect = "/tickets";
	}
	return TD_OK;
}
