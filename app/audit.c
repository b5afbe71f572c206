/* audit.c: the append-only record of every change that matters */
#include "config.h"

#include <inttypes.h>

#include <jansson.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "req.h"
#include "banned.h"

static const char sql_audit[] =
	"INSERT INTO audit_log (tenant_id, actor_kind, actor_user_id,"
	" actor_apikey_id, actor, action, object_type, object_id, before, after,"
	" request_id, ip)"
	" VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

enum td_err audit_write(struct req *r, const char *action,
			const char *object_type, int64_t object_id,
			json_t *before, json_t *after)
{
	const struct auth *a = &r->auth;
	const char *params[11];

	switch (a->kind) {
	case AUTH_USER:
	case AUTH_MFA_PENDING:
		params[0] = "user";
		params[1] = arena_printf(r->arena, "%" PRId64, a->user_id);
		params[2] = NULL;
		params[3] = arena_printf(r->arena, "user:%" PRId64 " %s",
					 a->user_id, a->email ? a->email : "");
		break;
	case AUTH_APIKEY:
		params[0] = "apikey";
		params[1] = NULL;
		params[2] = arena_printf(r->arena, "%" PRId64, a->apikey_id);
		params[3] = arena_printf(r->arena, "apikey:%" PRId64 " %s",
					 a->apikey_id, a->name ? a->name : "");
		break;
	case AUTH_AGENT:
		params[0] = "apikey";
		params[1] = NULL;
		params[2] = NULL;
		params[3] = arena_printf(r->arena, "agent:%" PRId64 " %s",
					 a->apikey_id, a->name ? a->name : "");
		break;
	case AUTH_PORTAL: /* a client contact, in the portal */
		params[0] = "portal";
		params[1] = NULL;
		params[2] = NULL;
		params[3] =
			arena_printf(r->arena, "contact:%" PRId64 " %s",
				     a->contact_id, a->email ? a->email : "");
		break;
	case AUTH_NONE:
	default:
		params[0] = "system";
		params[1] = NULL;
		params[2] = NULL;
		params[3] =
			a->name ? arena_printf(r->arena, "system:%s", a->name) :
				  "anonymous";
		break;
	}
	params[4] = action;
	params[5] = object_type;
	params[6] = object_id > 0 ?
			    arena_printf(r->arena, "%" PRId64, object_id) :
			    NULL;
	params[7] = before ? req_json_text(r, before, NULL) : NULL;
	params[8] = after ? req_json_text(r, after, NULL) : NULL;
	params[9] = r->request_id;
	params[10] = r->remote_addr;
	return req_query(r, sql_audit, 11, params, NULL);
}
