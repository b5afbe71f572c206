/* notify.c: mail to staff about their tickets, through the outbox */
#include "config.h"

#include <stddef.h>

#include <libpq-fe.h>

#include "auth.h"
#include "mailtemplates.h"
#include "notify.h"
#include "req.h"
#include "banned.h"

/*
 * The notice's template gets what happened (what, body), who did it
 * (actor) and to whom (assignee); subject and body_text are what is sent
 * should the template ever fail to render.
 */
static const char sql_notice[] =
	"INSERT INTO outbox (tenant_id, kind, to_addr, subject, body_text,"
	" message_id, from_addr, ticket_id, template, template_data)"
	" SELECT app_tenant(), $2, u.email, '[T-' || t.number || '] ' || $3,"
	" $4, '<td.' || $2 || '.' || gen_random_uuid() || '@'"
	"  || split_part(ms.support_address, '@', 2) || '>',"
	" ms.support_address, t.id, $2, jsonb_build_object('what', $3::text,"
	" 'body', $4::text, 'assignee', u.name, 'actor', $6::text)"
	" FROM tickets t"
	" JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.assignee_id"
	" JOIN mail_settings ms ON ms.tenant_id = t.tenant_id"
	" WHERE t.tenant_id = app_tenant() AND t.id = $1 AND u.active"
	" AND ms.support_address <> '' AND u.id IS DISTINCT FROM $5::bigint"
	" RETURNING id";

enum td_err notify_assignee(struct req *r, int64_t ticket_id, const char *kind,
			    const char *what, const char *text)
{
	const char *params[6] = { req_id(r, ticket_id), kind, what, text,
				  r->auth.kind == AUTH_USER ?
					  req_id(r, r->auth.user_id) :
					  NULL,
				  r->auth.name };
	PGresult *res;
	enum td_err err = req_query(r, sql_notice, 6, params, &res);

	if (err == TD_OK && PQntuples(res) > 0)
		err = mailtpl_render_queued_req(r);
	return err;
}
