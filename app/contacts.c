/* contacts.c: a client's people, their roles and portal access */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "clientctx.h"
#include "contacts.h"
#include "db.h"
#include "form.h"
#include "req.h"
#include "banned.h"

/* The columns contact_json() reads, in its order. */
#define CONTACT_COLS                                                           \
	"c.id, c.client_id, c.name, c.email, c.phone, c.job_title,"            \
	" c.is_billing, c.is_portal, c.is_technical, c.is_vip,"                \
	" to_char(c.portal_granted_at AT TIME ZONE t.time_zone,"               \
	" 'YYYY-MM-DD HH24:MI'),"                                              \
	" to_char(c.portal_granted_at AT TIME ZONE 'UTC',"                     \
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"                                  \
	" coalesce(cl.billing_contact_id = c.id, false)"
#define CONTACT_FROM                                                           \
	" FROM contacts c JOIN clients cl ON cl.tenant_id = c.tenant_id"       \
	" AND cl.id = c.client_id JOIN tenants t ON t.id = c.tenant_id"

static const char sql_contacts[] =
	"SELECT " CONTACT_COLS CONTACT_FROM
	" WHERE c.tenant_id = app_tenant() AND c.client_id = $1"
	" ORDER BY lower(c.name), c.id";
static const char sql_contact_get[] =
	"SELECT " CONTACT_COLS CONTACT_FROM
	" WHERE c.tenant_id = app_tenant() AND c.id = $1";
/* Locked until the transaction ends: two edits cannot interleave. */
static const char sql_contact_lock[] =
	"SELECT " CONTACT_COLS CONTACT_FROM
	" WHERE c.tenant_id = app_tenant() AND c.id = $1 FOR UPDATE OF c";
static const char sql_email_taken[] =
	"SELECT 1 FROM contacts WHERE tenant_id = app_tenant()"
	" AND client_id = $1 AND email <> '' AND lower(email) = lower($2)"
	" AND id IS DISTINCT FROM $3::bigint";
static const char sql_contact_new[] =
	"INSERT INTO contacts (tenant_id, client_id, name, email, phone,"
	" job_title, is_billing, is_portal, is_technical, is_vip,"
	" portal_granted_at) VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7,"
	" $8, $9, CASE WHEN $7::boolean THEN now() END) RETURNING id";
/*
 * portal_granted_at keeps the first grant while access stays on; on the
 * right of SET, is_portal is the value before this update.
 */
static const char sql_contact_update[] =
	"UPDATE contacts SET name = $2, email = $3, phone = $4, job_title = $5,"
	" is_billing = $6, is_portal = $7, is_technical = $8, is_vip = $9,"
	" portal_granted_at = CASE WHEN NOT $7::boolean THEN NULL"
	" WHEN is_portal THEN portal_granted_at ELSE now() END"
	" WHERE tenant_id = app_tenant() AND id = $1";
/* A client's billing_contact_id is cleared by its foreign key. */
static const char sql_contact_delete[] =
	"DELETE FROM contacts WHERE tenant_id = app_tenant() AND id = $1";

enum {
	COL_ID,
	COL_CLIENT,
	COL_NAME,
	COL_EMAIL,
	COL_PHONE,
	COL_JOB,
	COL_BILLING,
	COL_PORTAL,
	COL_TECHNICAL,
	COL_VIP,
	COL_GRANTED,
	COL_GRANTED_ISO,
	COL_BILLING_CONTACT,
};

/* The role flags, their columns and the badge each one shows. */
static const struct {
	const char *field;
	int col;
	const char *label;
} roles[] = {
	{ "is_billing", COL_BILLING, "Billing" },
	{ "is_portal", COL_PORTAL, "Portal user" },
	{ "is_technical", COL_TECHNICAL, "Technical" },
	{ "is_vip", COL_VIP, "VIP" },
};

#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* The text fields of the add and edit forms, kept when a form is refused. */
static const char *const contact_fields[] = { "name", "email", "phone",
					      "job_title", NULL };

typedef enum td_err (*page_fn)(struct req *, int64_t);

/* What a form asks for, checked. */
struct contact_in {
	const char *name, *email, *phone, *job_title;
	bool flags[NROLES];
};

static bool len_between(const char *s, size_t lo, size_t hi)
{
	size_t n = http_utf8_len(s);

	return n >= lo && n <= hi;
}

/* What contacts.email's CHECK accepts: one '@' with something either side. */
static bool email_ok(const char *s)
{
	const char *at = strchr(s, '@'), *p;

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	if (strlen(s) > 254)
		return false;
	for (p = s; *p != '\0'; p++)
		if (isspace((unsigned char)*p))
			return false;
	return true;
}

/* A text column as a string, or null when NULL or empty (templates test it). */
static json_t *text_or_none(const PGresult *res, int row, int col)
{
	const char *s = db_text(res, row, col);

	return *s == '\0' ? json_null() : json_string(s);
}

static json_t *contact_json(struct req *r, const PGresult *res, int i)
{
	json_t *c, *badges = json_array();
	int64_t id = db_int(res, i, COL_ID);
	size_t k;

	c = json_pack(
		"{s:I, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:s}", "id",
		(json_int_t)id, "client_id",
		(json_int_t)db_int(res, i, COL_CLIENT), "name",
		db_text(res, i, COL_NAME), "email",
		text_or_none(res, i, COL_EMAIL), "phone",
		text_or_none(res, i, COL_PHONE), "job_title",
		text_or_none(res, i, COL_JOB), "portal_granted_at",
		text_or_none(res, i, COL_GRANTED), "portal_granted_at_iso",
		text_or_none(res, i, COL_GRANTED_ISO), "is_billing_contact",
		db_bool(res, i, COL_BILLING_CONTACT), "edit_url",
		arena_printf(r->arena, "/contacts/%" PRId64 "/edit", id));
	for (k = 0; k < NROLES; k++) {
		json_object_set_new(
			c, roles[k].field,
			json_boolean(db_bool(res, i, roles[k].col)));
		if (db_bool(res, i, roles[k].col))
			json_array_append_new(
				badges, json_pack("{s:s, s:s}", "key",
						  roles[k].field + 3, "label",
						  roles[k].label));
	}
	json_object_set_new(c, "roles", badges);
	return c;
}

/* The fields the audit log keeps, from a row. */
static json_t *contact_audit(const PGresult *res)
{
	json_t *a;
	size_t k;

	a = json_pack("{s:I, s:s, s:s, s:s, s:s}", "client_id",
		      (json_int_t)db_int(res, 0, COL_CLIENT), "name",
		      db_text(res, 0, COL_NAME), "email",
		      db_text(res, 0, COL_EMAIL), "phone",
		      db_text(res, 0, COL_PHONE), "job_title",
		      db_text(res, 0, COL_JOB));
	for (k = 0; k < NROLES; k++)
		json_object_set_new(
			a, roles[k].field,
			json_boolean(db_bool(res, 0, roles[k].col)));
	return a;
}

/* One contact of the tenant (locked when lock is set); 404 if none. */
static enum td_err load_contact(struct req *r, int64_t id, bool lock,
				PGresult **res)
{
	const char *params[1] = { req_id(r, id) };
	enum td_err err;

	err = req_query(r, lock ? sql_contact_lock : sql_contact_get, 1, params,
			res);
	if (err != TD_OK)
		return err;
	if (PQntuples(*res) != 1)
		return req_fail(r, TD_ENOENT, "no contact %" PRId64, id);
	return TD_OK;
}

/* The role checkboxes as booleans in the view's form. */
static void form_roles(struct req *r, const struct contact_in *in)
{
	json_t *form = json_object_get(req_view(r), "form");
	size_t k;

	if (form == NULL)
		return;
	for (k = 0; k < NROLES; k++)
		json_object_set_new(form, roles[k].field,
				    json_boolean(in->flags[k]));
}

/*
 * A form with errors: the API gets 422; a browser gets the page again
 * (show builds it) with what was typed and the messages.
 */
static enum td_err reject(struct req *r, page_fn show, int64_t id,
			  const char *view, const struct contact_in *in)
{
	enum td_err err;

	if (r->want_json)
		return form_reject(r, view, contact_fields);
	err = show(r, id);
	if (err != TD_OK)
		return err;
	err = form_reject(r, view, contact_fields);
	form_roles(r, in);
	return err;
}

static enum td_err list_page(struct req *r, int64_t client_id);

/* A write the client's state forbids: 409, on its contacts page. */
static enum td_err refuse(struct req *r, int64_t client_id, const char *why)
{
	enum td_err err;
	char *msg;

	if (r->want_json)
		return req_fail(r, TD_ECONFLICT, "%s", why);
	err = list_page(r, client_id);
	if (err != TD_OK)
		return err;
	msg = arena_printf(r->arena, "%s.", why);
	msg[0] = (char)toupper((unsigned char)msg[0]);
	r->error_detail = why;
	json_object_set_new(req_view(r), "error", json_string(msg));
	r->status = 409;
	return TD_OK;
}

/* After a write: browsers go to `to` with a flash; the API gets the view. */
static void done(struct req *r, const char *flash, const char *to)
{
	if (r->want_json)
		return;
	form_flash(r, "ok", flash);
	r->redirect = to;
}

/* Why a client's contacts cannot change, or NULL if they can. */
static const char *read_only_why(struct req *r, const struct clientctx *c)
{
	if (c->merged)
		return arena_printf(
			r->arena,
			"%s was merged into another client: change the contacts there",
			c->name);
	if (c->archived)
		return arena_printf(
			r->arena,
			"%s is archived: restore the client before changing its contacts",
			c->name);
	return NULL;
}

static const char *contacts_url(struct req *r, int64_t client_id)
{
	return arena_printf(r->arena, "/clients/%" PRId64 "/contacts",
			    client_id);
}

/* The contacts page of a client, with an empty add form. */
static enum td_err list_page(struct req *r, int64_t client_id)
{
	const char *params[1] = { req_id(r, client_id) };
	struct clientctx c;
	json_t *v, *list, *form;
	PGresult *res;
	enum td_err err;
	size_t k;
	int i, n;

	err = clientctx_load(r, client_id, "contacts", &c);
	if (err != TD_OK)
		return err;
	err = req_query(r, sql_contacts, 1, params, &res);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(list, contact_json(r, res, i));
	json_object_set_new(v, "contacts", list);
	form = json_object();
	for (k = 0; k < NROLES; k++)
		json_object_set_new(form, roles[k].field, json_false());
	json_object_set_new(v, "form", form);
	json_object_set_new(v, "read_only",
			    json_boolean(read_only_why(r, &c) != NULL));
	json_object_set_new(v, "action", json_string(contacts_url(r, c.id)));
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "Contacts · %s", c.name)));
	r->view_name = "contacts/list";
	return TD_OK;
}

/* GET /clients/:id/contacts — 404 for another tenant's client. */
enum td_err contacts_list(struct req *r)
{
	return list_page(r, route_arg_int(&r->args, "id"));
}

/* True when an API caller editing a contact left the field out. */
static bool kept(struct req *r, const char *name, const PGresult *old)
{
	return old != NULL && r->json_body != NULL &&
	       json_object_get(r->json_body, name) == NULL;
}

/* A text field as typed, or (see kept) the contact's value. */
static const char *field_or(struct req *r, const char *name,
			    const PGresult *old, int col)
{
	return kept(r, name, old) ? db_text(old, 0, col) : form_text(r, name);
}

/*
 * Reads and checks the form; old is the contact being edited (NULL when
 * adding): an API caller may send only the fields it changes. Problems
 * are noted with form_error().
 */
static enum td_err read_contact(struct req *r, int64_t client_id,
				const PGresult *old, struct contact_in *in)
{
	const char *params[3];
	PGresult *res;
	enum td_err err;
	size_t k;

	in->name = field_or(r, "name", old, COL_NAME);
	in->email = field_or(r, "email", old, COL_EMAIL);
	in->phone = field_or(r, "phone", old, COL_PHONE);
	in->job_title = field_or(r, "job_title", old, COL_JOB);
	for (k = 0; k < NROLES; k++)
		in->flags[k] = kept(r, roles[k].field, old) ?
				       db_bool(old, 0, roles[k].col) :
				       form_flag(r, roles[k].field);
	if (!len_between(in->name, 1, 200))
		form_error(r, "name", "enter a name of at most 200 characters");
	if (*in->email != '\0' && !email_ok(in->email)) {
		form_error(r, "email",
			   "enter an email address such as sam@example.com");
	} else if (*in->email != '\0') {
		params[0] = req_id(r, client_id);
		params[1] = in->email;
		params[2] = old != NULL ? db_text(old, 0, COL_ID) : NULL;
		err = req_query(r, sql_email_taken, 3, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(
				r, "email",
				"another contact of this client has this email address");
	}
	/* roles[1] is is_portal: the portal signs people in by email. */
	if (in->flags[1] && *in->email == '\0')
		form_error(
			r, "email",
			"a portal user needs an email address to sign in with");
	if (!len_between(in->phone, 0, 50))
		form_error(r, "phone", "use at most 50 characters");
	if (!len_between(in->job_title, 0, 200))
		form_error(r, "job_title", "use at most 200 characters");
	return TD_OK;
}

/* The parameters $2.. of sql_contact_new / sql_contact_update. */
static void contact_params(const struct contact_in *in, const char **params)
{
	size_t k;

	params[0] = in->name;
	params[1] = in->email;
	params[2] = in->phone;
	params[3] = in->job_title;
	for (k = 0; k < NROLES; k++)
		params[4 + k] = in->flags[k] ? "true" : "false";
}

/*
 * POST /clients/:id/contacts — 201 (API) or 303 to the contacts page;
 * 422 for bad fields or a taken email; 409 if the client is archived or
 * merged; 404 for another tenant's client.
 */
enum td_err contacts_create(struct req *r)
{
	int64_t client_id = route_arg_int(&r->args, "id"), id;
	const char *params[9], *why;
	struct contact_in in;
	struct clientctx c;
	json_t *after;
	PGresult *res;
	enum td_err err;

	err = clientctx_load(r, client_id, "contacts", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	err = read_contact(r, client_id, NULL, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, list_page, client_id, "contacts/list", &in);
	params[0] = req_id(r, client_id);
	contact_params(&in, params + 1);
	err = req_query(r, sql_contact_new, 9, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	err = load_contact(r, id, false, &res);
	if (err != TD_OK)
		return err;
	after = contact_audit(res);
	req_own_json(r, after);
	err = audit_write(r, "contact.create", "contact", id, NULL, after);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "contact", contact_json(r, res, 0));
	if (r->want_json)
		r->status = 201;
	done(r, arena_printf(r->arena, "Contact %s added.", in.name),
	     contacts_url(r, client_id));
	return TD_OK;
}

/* The edit page of a contact, its form filled from the row. */
static enum td_err edit_page(struct req *r, int64_t id)
{
	struct clientctx c;
	json_t *v, *form;
	PGresult *res;
	enum td_err err;
	size_t k;

	err = load_contact(r, id, false, &res);
	if (err == TD_OK)
		err = clientctx_load(r, db_int(res, 0, COL_CLIENT), "contacts",
				     &c);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "contact", contact_json(r, res, 0));
	form = json_pack("{s:s, s:s, s:s, s:s}", "name",
			 db_text(res, 0, COL_NAME), "email",
			 db_text(res, 0, COL_EMAIL), "phone",
			 db_text(res, 0, COL_PHONE), "job_title",
			 db_text(res, 0, COL_JOB));
	for (k = 0; k < NROLES; k++)
		json_object_set_new(
			form, roles[k].field,
			json_boolean(db_bool(res, 0, roles[k].col)));
	json_object_set_new(v, "form", form);
	json_object_set_new(v, "read_only",
			    json_boolean(read_only_why(r, &c) != NULL));
	json_object_set_new(
		v, "title",
		json_string(arena_printf(r->arena, "%s · %s",
					 db_text(res, 0, COL_NAME), c.name)));
	r->view_name = "contacts/form";
	return TD_OK;
}

/* GET /contacts/:id/edit — 404 for another tenant's contact. */
enum td_err contacts_edit(struct req *r)
{
	return edit_page(r, route_arg_int(&r->args, "id"));
}

/*
 * POST /contacts/:id — 303 to the client's contacts page (the API gets
 * the contact; fields it leaves out keep their values); 422 for bad
 * fields; 409 if the client is archived or merged; 404 for another
 * tenant's contact.
 */
enum td_err contacts_update(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), client_id;
	const char *params[9], *why;
	struct contact_in in;
	struct clientctx c;
	json_t *before, *after, *flag;
	PGresult *old, *res;
	enum td_err err;
	bool was_portal;

	err = load_contact(r, id, true, &old);
	if (err != TD_OK)
		return err;
	client_id = db_int(old, 0, COL_CLIENT);
	was_portal = db_bool(old, 0, COL_PORTAL);
	err = clientctx_load(r, client_id, "contacts", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	err = read_contact(r, client_id, old, &in);
	if (err != TD_OK)
		return err;
	if (form_has_errors(r))
		return reject(r, edit_page, id, "contacts/form", &in);
	params[0] = req_id(r, id);
	contact_params(&in, params + 1);
	err = req_query(r, sql_contact_update, 9, params, NULL);
	if (err == TD_OK)
		err = load_contact(r, id, false, &res);
	if (err != TD_OK)
		return err;
	before = contact_audit(old);
	req_own_json(r, before);
	after = contact_audit(res);
	req_own_json(r, after);
	err = audit_write(r, "contact.update", "contact", id, before, after);
	if (err == TD_OK && was_portal != in.flags[1]) {
		flag = json_pack("{s:b}", "is_portal", in.flags[1]);
		req_own_json(r, flag);
		err = audit_write(r,
				  in.flags[1] ? "contact.portal_grant" :
						"contact.portal_revoke",
				  "contact", id, NULL, flag);
	}
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "contact", contact_json(r, res, 0));
	done(r, arena_printf(r->arena, "Contact %s saved.", in.name),
	     contacts_url(r, client_id));
	return TD_OK;
}

/*
 * POST /contacts/:id/delete — 303 to the client's contacts page (the API
 * gets {deleted}); 409 if the client is archived or merged; 404 for
 * another tenant's contact. A client whose billing contact this was has
 * none afterwards.
 */
enum td_err contacts_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id"), client_id;
	const char *params[1] = { req_id(r, id) }, *why;
	struct clientctx c;
	json_t *before;
	PGresult *old;
	enum td_err err;

	err = load_contact(r, id, true, &old);
	if (err != TD_OK)
		return err;
	client_id = db_int(old, 0, COL_CLIENT);
	err = clientctx_load(r, client_id, "contacts", &c);
	if (err != TD_OK)
		return err;
	why = read_only_why(r, &c);
	if (why != NULL)
		return refuse(r, client_id, why);
	err = req_query(r, sql_contact_delete, 1, params, NULL);
	if (err != TD_OK)
		return err;
	before = contact_audit(old);
	req_own_json(r, before);
	json_object_set_new(before, "was_billing_contact",
			    json_boolean(db_bool(old, 0, COL_BILLING_CONTACT)));
	err = audit_write(r, "contact.delete", "contact", id, before, NULL);
	if (err != TD_OK)
		return err;
	json_object_set_new(req_view(r), "deleted",
			    json_pack("{s:I, s:I, s:s}", "id", (json_int_t)id,
				      "client_id", (json_int_t)client_id,
				      "name", db_text(old, 0, COL_NAME)));
	done(r,
	     arena_printf(r->arena, "Contact %s deleted.",
			  db_text(old, 0, COL_NAME)),
	     contacts_url(r, client_id));
	return TD_OK;
}
