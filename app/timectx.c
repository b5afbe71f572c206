/* timectx.c: what the time modules share — kinds, defaults, new entries */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "contracts.h"
#include "db.h"
#include "duration.h"
#include "names.h"
#include "req.h"
#include "timectx.h"
#include "banned.h"

static const char sql_approval[] =
	"SELECT time_approval FROM tenants WHERE id = app_tenant()";
/* The client comes from the ticket, so an entry can never disagree. */
static const char sql_insert[] =
	"INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id,"
	" started_at, minutes, kind, status, description, service, source,"
	" timer_id, created_by)"
	" SELECT app_tenant(), t.id, t.client_id, $2, $3::timestamptz, $4::int,"
	" $5, $6, $7, $8, $9, $10::bigint, $11::bigint FROM tickets t"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1"
	" RETURNING id, client_id";

static const struct {
	const char *key, *label;
} kinds[] = {
	{ "billable", "Billable" },
	{ "internal", "Internal" },
	{ "prepaid", "Pre-paid" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

bool timectx_kind_valid(const char *kind)
{
	size_t i;

	for (i = 0; i < NKINDS; i++)
		if (!strcmp(kind, kinds[i].key))
			return true;
	return false;
}

const char *timectx_kind_label(const char *kind)
{
	size_t i;

	for (i = 0; i < NKINDS; i++)
		if (!strcmp(kind, kinds[i].key))
			return kinds[i].label;
	return kind;
}

json_t *timectx_kind_choices(const char *selected)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; i < NKINDS; i++)
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:b}", "value", kinds[i].key,
				  "label", kinds[i].label, "selected",
				  selected != NULL &&
					  !strcmp(selected, kinds[i].key)));
	return list;
}

enum td_err timectx_default_kind(struct req *r, int64_t client_id,
				 const char **kind)
{
	/* The contract decides: billable under one, internal without. */
	return contracts_time_default(r, client_id, kind);
}

bool timectx_parse_id(const char *s, int64_t *out)
{
	const char *p;
	long long v;
	char *end;

	if (s == NULL || *s == '\0' || *s == '0' || strlen(s) > 18)
		return false;
	for (p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*out = (int64_t)v;
	return true;
}

int64_t timectx_user(const struct req *r)
{
	return r->auth.kind == AUTH_USER ? r->auth.user_id : 0;
}

const char *timectx_hmm(struct req *r, int64_t minutes)
{
	char buf[32];

	duration_format(minutes > 1000000000 ? 1000000000 : (int)minutes, buf,
			sizeof(buf));
	return arena_strdup(r->arena, buf);
}

enum td_err timectx_insert(struct req *r, const struct time_entry_new *e,
			   int64_t *id, const char **status)
{
	const char *params[11];
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_approval, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	*status = PQntuples(res) == 1 && db_bool(res, 0, 0) ? "pending" :
							      "committed";
	params[0] = req_id(r, e->ticket_id);
	params[1] = req_id(r, e->user_id);
	params[2] = e->started_at;
	params[3] = arena_printf(r->arena, "%d", e->minutes);
	params[4] = e->kind;
	params[5] = *status;
	params[6] = e->description;
	params[7] = e->service;
	params[8] = e->source;
	params[9] = e->timer_id;
	params[10] = timectx_user(r) ? req_id(r, timectx_user(r)) : NULL;
	err = req_query(r, sql_insert, 11, params, &res);
	if (err != TD_OK)
		return req_fail(r, err, "cannot log time on ticket %" PRId64,
				e->ticket_id);
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no ticket %" PRId64,
				e->ticket_id);
	*id = db_int(res, 0, 0);
	after = json_pack("{s:I, s:I, s:I, s:s, s:i, s:s, s:s, s:s, s:s, s:s}",
			  "ticket_id", (json_int_t)e->ticket_id, "client_id",
			  (json_int_t)db_int(res, 0, 1), "user_id",
			  (json_int_t)e->user_id, "started_at", e->started_at,
			  "minutes", e->minutes, "kind", e->kind, "status",
			  *status, "description", e->description, "service",
			  e->service, "source", e->source);
	req_own_json(r, after);
	return audit_write(r, "time.create", "time_entry", *id, NULL, after);
}

/* Columns of TIMECTX_ENTRY_SELECT. */
enum {
	E_ID,
	E_TICKET,
	E_NUMBER,
	E_SUBJECT,
	E_CLIENT = TIMECTX_ENTRY_CLIENT,
	E_CLIENT_NAME,
	E_USER = TIMECTX_ENTRY_USER,
	E_USER_NAME,
	E_STARTED,
	E_STARTED_ISO,
	E_MINUTES,
	E_KIND,
	E_STATUS,
	E_DESCRIPTION,
	E_SERVICE,
	E_SOURCE,
	E_NOTE,
	E_INVOICED,
	E_SEALED,
	E_TICKET_CLOSED,
	E_STARTED_INPUT,
	E_TICKET_TYPE,
};

static const char *status_label(const char *status)
{
	if (!strcmp(status, "pending"))
		return "Pending approval";
	if (!strcmp(status, "rejected"))
		return "Rejected";
	return "Committed";
}

/* A name column, or names.c's when the statement left it NULL. */
static const char *name_at(const PGresult *res, int i, int col,
			   const char *(*kept)(int64_t))
{
	const char *name;

	if (!db_isnull(res, i, col))
		return db_text(res, i, col);
	name = kept(db_int(res, i, col - 1));
	return name != NULL ? name : "";
}

const char *timectx_entry_who(const PGresult *res, int i)
{
	return name_at(res, i, E_USER_NAME, names_user);
}

json_t *timectx_entry_json(struct req *r, const PGresult *res, int i)
{
	int64_t id = db_int(res, i, E_ID), ticket = db_int(res, i, E_TICKET);
	bool invoiced = db_bool(res, i, E_INVOICED);
	bool closed = db_bool(res, i, E_TICKET_CLOSED);
	bool mine = db_int(res, i, E_USER) == timectx_user(r);
	bool manager = (r->auth.role & (ROLE_MANAGER | ROLE_ADMIN)) != 0;
	const char *kind = db_text(res, i, E_KIND);
	const char *status = db_text(res, i, E_STATUS), *why = NULL;
	json_t *e;

	if (invoiced)
		why = "on an invoice: locked (a credit note is the way back)";
	else if (closed)
		why = "the ticket is closed: reopen it to change this entry";
	else if (!mine && !manager)
		why = "only its technician or a manager may change it";
	e = json_pack("{s:I, s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:s}", "id",
		      (json_int_t)id, "url",
		      arena_printf(r->arena, "/time/entries/%" PRId64, id),
		      "ticket_id", (json_int_t)ticket, "minutes",
		      (int)db_int(res, i, E_MINUTES), "duration",
		      timectx_hmm(r, db_int(res, i, E_MINUTES)), "kind", kind,
		      "kind_label", timectx_kind_label(kind), "status", status,
		      "status_label", status_label(status));
	json_object_set_new(
		e, "ticket",
		json_pack("{s:I, s:s, s:s, s:s, s:s, s:b}", "id",
			  (json_int_t)ticket, "ref",
			  arena_printf(r->arena, "T-%s",
				       db_text(res, i, E_NUMBER)),
			  "subject", db_text(res, i, E_SUBJECT), "url",
			  arena_printf(r->arena, "/tickets/%" PRId64, ticket),
			  "type", db_text(res, i, E_TICKET_TYPE), "closed",
			  closed));
	json_object_set_new(
		e, "client",
		json_pack("{s:I, s:s}", "id",
			  (json_int_t)db_int(res, i, E_CLIENT), "name",
			  name_at(res, i, E_CLIENT_NAME, names_client)));
	json_object_set_new(e, "user",
			    json_pack("{s:I, s:s}", "id",
				      (json_int_t)db_int(res, i, E_USER),
				      "name", timectx_entry_who(res, i)));
	json_object_set_new(e, "started_at",
			    json_string(db_text(res, i, E_STARTED)));
	json_object_set_new(e, "started_at_iso",
			    json_string(db_text(res, i, E_STARTED_ISO)));
	json_object_set_new(e, "started_at_input",
			    json_string(db_text(res, i, E_STARTED_INPUT)));
	json_object_set_new(e, "description",
			    json_string(db_text(res, i, E_DESCRIPTION)));
	json_object_set_new(e, "service",
			    json_string(db_text(res, i, E_SERVICE)));
	json_object_set_new(e, "source",
			    json_string(db_text(res, i, E_SOURCE)));
	json_object_set_new(e, "review_note",
			    json_string(db_text(res, i, E_NOTE)));
	/* Mustache shows "" as true: the templates test these instead. */
	json_object_set_new(e, "has_review_note",
			    json_boolean(*db_text(res, i, E_NOTE) != '\0'));
	json_object_set_new(e, "has_service",
			    json_boolean(*db_text(res, i, E_SERVICE) != '\0'));
	json_object_set_new(e, "pending",
			    json_boolean(!strcmp(status, "pending")));
	json_object_set_new(e, "rejected",
			    json_boolean(!strcmp(status, "rejected")));
	json_object_set_new(e, "invoiced", json_boolean(invoiced));
	json_object_set_new(e, "sealed",
			    json_boolean(db_bool(res, i, E_SEALED)));
	json_object_set_new(e, "editable", json_boolean(why == NULL));
	json_object_set_new(e, "locked_why",
			    why != NULL ? json_string(why) : json_null());
	json_object_set_new(e, "kinds", timectx_kind_choices(kind));
	return e;
}
