/* mailsettings.c: Settings → Email — how inbound mail is handled */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "audit.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "mailsettings.h"
#include "req.h"
#include "view.h"
#include "banned.h"

/* The row, or the defaults 0014 gives a tenant that has none yet. */
static const char sql_get[] =
	"SELECT coalesce(s.support_address, ''),"
	" coalesce(s.create_contacts, true), coalesce(s.closed_reply, 'reopen'),"
	" coalesce(s.rate_limit, 30), coalesce(s.trusted_authserv_id, ''),"
	" coalesce(s.acknowledge, true), coalesce(s.verify_sender, true)"
	" FROM (SELECT 1) one"
	" LEFT JOIN mail_settings s ON s.tenant_id = app_tenant()";
static const char sql_put[] =
	"INSERT INTO mail_settings (tenant_id, support_address, create_contacts,"
	" closed_reply, rate_limit, trusted_authserv_id, acknowledge,"
	" verify_sender) VALUES (app_tenant(), $1, $2::boolean, $3, $4::int, $5,"
	" $6::boolean, $7::boolean)"
	" ON CONFLICT (tenant_id) DO UPDATE SET"
	" support_address = EXCLUDED.support_address,"
	" create_contacts = EXCLUDED.create_contacts,"
	" closed_reply = EXCLUDED.closed_reply, rate_limit = EXCLUDED.rate_limit,"
	" trusted_authserv_id = EXCLUDED.trusted_authserv_id,"
	" acknowledge = EXCLUDED.acknowledge,"
	" verify_sender = EXCLUDED.verify_sender";

static const char *const fields[] = { "support_address", "create_contacts",
				      "closed_reply", "rate_limit",
				      "trusted_authserv_id", "acknowledge",
				      "verify_sender" };
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

/* The settings as {support_address, create_contacts, ...}. */
static enum td_err current(struct req *r, json_t **out)
{
	PGresult *res;
	enum td_err err = req_query(r, sql_get, 0, NULL, &res);

	if (err != TD_OK)
		return err;
	*out = json_pack("{s:s, s:b, s:s, s:I, s:s, s:b, s:b}", fields[0],
			 db_text(res, 0, 0), fields[1], db_bool(res, 0, 1),
			 fields[2], db_text(res, 0, 2), fields[3],
			 (json_int_t)db_int(res, 0, 3), fields[4],
			 db_text(res, 0, 4), fields[5], db_bool(res, 0, 5),
			 fields[6], db_bool(res, 0, 6));
	return TD_OK;
}

static enum td_err page(struct req *r)
{
	json_t *v = req_view(r), *s;
	enum td_err err = current(r, &s);

	if (err != TD_OK)
		return err;
	view_settings_page(r, "Email", "settings/mail", "/settings/mail");
	json_object_set_new(
		v, "reopen",
		json_boolean(!strcmp(json_string_value(json_object_get(
					     s, "closed_reply")),
				     "reopen")));
	json_object_set_new(v, "mail", s);
	return TD_OK;
}

/* GET /settings/mail (admins). */
enum td_err mailsettings_page(struct req *r)
{
	return page(r);
}

static bool email_ok(const char *s)
{
	const char *at = strchr(s, '@');

	return at != NULL && at != s && at[1] != '\0' && strchr(at + 1, '@') == NULL &&
	       strpbrk(s, " \t\r\n<>\",;") == NULL && strlen(s) <= 254;
}

/*
 * POST /settings/mail — support_address ("" or an address), the two
 * checkboxes, closed_reply (reopen | new_ticket), rate_limit (1 to
 * 100000 a sender per hour), trusted_authserv_id. 422 for bad fields.
 */
enum td_err mailsettings_save(struct req *r)
{
	const char *addr = form_text(r, "support_address");
	const char *closed = form_text(r, "closed_reply");
	const char *rate = form_text(r, "rate_limit");
	const char *authserv = form_text(r, "trusted_authserv_id");
	const char *params[7];
	json_t *before, *after;
	enum td_err err;
	char *end;
	long n;

	if (*addr != '\0' && !email_ok(addr))
		form_error(r, "support_address",
			   "enter an address such as help@your-msp.example");
	if (*closed == '\0')
		closed = "reopen";
	if (strcmp(closed, "reopen") != 0 && strcmp(closed, "new_ticket") != 0)
		form_error(r, "closed_reply", "choose reopen or new_ticket");
	errno = 0;
	n = strtol(rate, &end, 10);
	if (*rate == '\0' || *end != '\0' || errno != 0 || n < 1 || n > 100000)
		form_error(r, "rate_limit", "enter a number from 1 to 100000");
	if (http_utf8_len(authserv) > 255)
		form_error(r, "trusted_authserv_id", "use at most 255 characters");
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "settings/mail", NULL);
	}
	err = current(r, &before);
	if (err != TD_OK)
		return err;
	req_own_json(r, before);
	params[0] = addr;
	params[1] = form_flag(r, "create_contacts") ? "true" : "false";
	params[2] = closed;
	params[3] = rate;
	params[4] = authserv;
	params[5] = form_flag(r, "acknowledge") ? "true" : "false";
	params[6] = form_flag(r, "verify_sender") ? "true" : "false";
	err = req_query(r, sql_put, 7, params, NULL);
	if (err == TD_OK)
		err = current(r, &after);
	if (err != TD_OK)
		return err;
	req_own_json(r, after);
	if (!json_equal(before, after)) {
		err = audit_write(r, "mail_settings.update", "tenant",
				  r->auth.tenant_id, before, after);
		if (err != TD_OK)
			return err;
	}
	if (r->want_json)
		return page(r);
	form_flash(r, "ok", "Email settings saved.");
	r->redirect = "/settings/mail";
	return TD_OK;
}
