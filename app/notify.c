/* notify.c: mail to staff about their tickets, through the outbox */
#include "config.h"

#include <stddef.h>

#include "auth.h"
#include "notify.h"
#include "req.h"
#include "banned.h"

static const char sql_notice[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text,"
	" message_id, from_addr, ticket_id)"
	" SELECT app_tenant(), $2, u.email, '[T-' || t.number || '] ' || $3,"
	" $4, '<td.' || $2 || '.' || gen_random_uuid() || '@'"
	"  || split_part(ms.support_address, '@', 2) || '>',"
	" ms.support_address, t.id FROM tickets t"
	" JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.assignee_id"
	" JOIN mail_settings ms ON ms.tenant_id = t.tenant_id"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1 AND u.active"
	" AND ms.support_address <> '' AND u.id IS DISTINCT FROM $5::bigint";

enum td_err notify_assignee(struct req *r, int64_t ticket_id, const char *kind,
			    const char *what, const char *text)
{
	const char *params[5] = { req_id(r, ticket_id), kind, what, text,
				  r->auth.kind == AUTH_USER ?
					  req_id(r, r->auth.user_id) :
					  NULL };

	return req_query(r, sql_notice, 5, params, NULL);
}
