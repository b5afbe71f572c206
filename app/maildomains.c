/* maildomains.c: Settings → Email domains — sending domains, live DNS checks
 *
 * A domain mail leaves from: the tenant's own, or a client's (mail about
 * that client's tickets then leaves from it). Adding one makes its DKIM
 * key; the page shows the exact SPF, DKIM and DMARC records to publish,
 * and "Check now" looks them up live. Only a domain whose DKIM record
 * checks out (verified_at) is sent from: mail_sender() in 0020.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "conf.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "maildkim.h"
#include "maildns.h"
#include "maildomains.h"
#include "req.h"
#include "router.h"
#include "view.h"
#include "banned.h"

static const char sql_list[] =
	"SELECT d.id, d.domain, d.client_id, coalesce(c.name, ''),"
	" d.from_address, d.selector, d.dkim_public_b64,"
	" d.verified_at IS NOT NULL, to_char(d.checked_at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD HH24:MI \"UTC\"'), d.spf_status, d.dkim_status,"
	" d.dmarc_status, d.check_found::text"
	" FROM mail_domains d LEFT JOIN clients c"
	" ON c.tenant_id = d.tenant_id AND c.id = d.client_id"
	" WHERE d.tenant_id = app_tenant()"
	" ORDER BY d.client_id IS NOT NULL, lower(c.name), d.domain";
static const char sql_clients[] =
	"SELECT id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND archived_at IS NULL AND merged_into IS NULL ORDER BY lower(name), id";
static const char sql_client_known[] =
	"SELECT 1 FROM clients WHERE tenant_id = app_tenant() AND id = $1"
	" AND archived_at IS NULL AND merged_into IS NULL";
static const char sql_domain_taken[] =
	"SELECT 1 FROM mail_domains WHERE tenant_id = app_tenant()"
	" AND domain = $1";
static const char sql_client_taken[] =
	"SELECT 1 FROM mail_domains WHERE tenant_id = app_tenant()"
	" AND client_id = $1";
static const char sql_new[] =
	"INSERT INTO mail_domains (tenant_id, domain, client_id, from_address,"
	" dkim_private_pem, dkim_public_b64) VALUES (app_tenant(), $1, $2, $3,"
	" $4, $5) RETURNING id";
static const char sql_one[] =
	"SELECT domain, selector, dkim_public_b64, client_id, from_address"
	" FROM mail_domains WHERE tenant_id = app_tenant() AND id = $1"
	" FOR UPDATE";
static const char sql_checked[] =
	"UPDATE mail_domains SET checked_at = now(), spf_status = $2,"
	" dkim_status = $3, dmarc_status = $4, check_found = $5::jsonb,"
	" verified_at = CASE WHEN $3 = 'ok' THEN coalesce(verified_at, now())"
	" END WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_delete[] =
	"DELETE FROM mail_domains WHERE tenant_id = app_tenant() AND id = $1";

static const char *const add_fields[] = { "domain", "from_address",
					  "client_id", NULL };

#define PAGE_URL "/settings/mail-domains"

/* What a record's status means to the person publishing it. */
static const char *status_label(const char *status)
{
	if (status == NULL)
		return "Not checked yet";
	if (!strcmp(status, "ok"))
		return "Found and matching";
	if (!strcmp(status, "missing"))
		return "Missing";
	if (!strcmp(status, "wrong"))
		return "Wrong value";
	return "Look-up failed: try again";
}

static const char *spf_value(void)
{
	return "v=spf1 mx a ~all";
}

static const char *dmarc_value(void)
{
	return "v=DMARC1; p=quarantine; adkim=r; aspf=r";
}

static json_t *record_json(const char *kind, const char *name,
			   const char *value, const char *status,
			   json_t *found)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:b, s:b}",
			      "kind", kind, "name", name, "type", "TXT",
			      "value", value, "status", status, "status_label",
			      status_label(status), "ok",
			      status != NULL && !strcmp(status, "ok"),
			      "bad", status != NULL && strcmp(status, "ok"));
	const char *f = json_string_value(found);

	if (f != NULL)
		json_object_set_new(o, "found", json_string(f));
	return o;
}

/* One domain with its three records and their last status. */
static json_t *domain_json(struct req *r, const PGresult *res, int i)
{
	const char *d = db_text(res, i, 1), *sel = db_text(res, i, 5);
	const char *st[3];
	json_t *o, *recs, *found;
	int k;

	for (k = 0; k < 3; k++)
		st[k] = db_isnull(res, i, 9 + k) ?
				NULL :
				arena_strdup(r->arena, db_text(res, i, 9 + k));
	found = json_loads(db_text(res, i, 12), 0, NULL);
	if (found == NULL)
		found = json_object();
	req_own_json(r, found);
	recs = json_array();
	json_array_append_new(recs, record_json("SPF", d, spf_value(), st[0],
						json_object_get(found, "spf")));
	json_array_append_new(
		recs,
		record_json("DKIM",
			    arena_printf(r->arena, "%s._domainkey.%s", sel, d),
			    arena_printf(r->arena, "v=DKIM1; k=rsa; p=%s",
					 db_text(res, i, 6)),
			    st[1], json_object_get(found, "dkim")));
	json_array_append_new(
		recs, record_json("DMARC", arena_printf(r->arena, "_dmarc.%s", d),
				  dmarc_value(), st[2],
				  json_object_get(found, "dmarc")));
	o = json_pack("{s:I, s:s, s:o, s:s, s:s, s:s, s:b, s:s?, s:o}", "id",
		      (json_int_t)db_int(res, i, 0), "domain", d, "client_id",
		      db_isnull(res, i, 2) ? json_null() :
					     json_integer(db_int(res, i, 2)),
		      "client_name", db_text(res, i, 3), "from_address",
		      db_text(res, i, 4), "selector", sel, "verified",
		      db_bool(res, i, 7), "checked_at",
		      db_isnull(res, i, 8) ? NULL : db_text(res, i, 8),
		      "records", recs);
	json_object_set_new(o, "own", json_boolean(db_isnull(res, i, 2)));
	json_object_set_new(o, "check_url",
			    json_string(arena_printf(r->arena,
						     PAGE_URL "/%" PRId64 "/check",
						     db_int(res, i, 0))));
	json_object_set_new(o, "delete_url",
			    json_string(arena_printf(r->arena,
						     PAGE_URL "/%" PRId64 "/delete",
						     db_int(res, i, 0))));
	return o;
}

static enum td_err page(struct req *r)
{
	json_t *v = req_view(r), *list, *clients, *form;
	PGresult *res, *cres;
	enum td_err err;
	int i, n;

	err = req_query(r, sql_list, 0, NULL, &res);
	if (err == TD_OK)
		err = req_query(r, sql_clients, 0, NULL, &cres);
	if (err != TD_OK)
		return err;
	view_settings_page(r, "Email domains", "settings/mail_domains",
			   PAGE_URL);
	list = json_array();
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		json_array_append_new(list, domain_json(r, res, i));
	clients = json_array();
	n = PQntuples(cres);
	for (i = 0; i < n; i++) {
		const char *id = db_text(cres, i, 0);

		json_array_append_new(
			clients,
			json_pack("{s:I, s:s, s:b}", "id",
				  (json_int_t)db_int(cres, i, 0), "name",
				  db_text(cres, i, 1), "selected",
				  !strcmp(id, form_text(r, "client_id"))));
	}
	json_object_set_new(v, "domains", list);
	json_object_set_new(v, "clients", clients);
	form = json_object_get(v, "form");
	if (form == NULL)
		json_object_set_new(v, "form", json_object());
	return TD_OK;
}

/* GET /settings/mail-domains (admins). */
enum td_err maildomains_page(struct req *r)
{
	return page(r);
}

static bool domain_ok(const char *d)
{
	size_t i, n = strlen(d), label = 0;

	if (n < 3 || n > 253 || strchr(d, '.') == NULL || d[0] == '.' ||
	    d[n - 1] == '.' || d[0] == '-')
		return false;
	for (i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (label == 0 || d[i - 1] == '-' ||
			    (i + 1 < n && d[i + 1] == '-'))
				return false;
			label = 0;
			continue;
		}
		if (!islower((unsigned char)d[i]) &&
		    !isdigit((unsigned char)d[i]) && d[i] != '-')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

static const char *lowered(struct req *r, const char *s)
{
	char *out = arena_strdup(r->arena, s), *p;

	while (*out == ' ')
		out++;
	for (p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	while (p > out && p[-1] == ' ')
		*--p = '\0';
	return out;
}

/*
 * POST /settings/mail-domains — domain, from_address (at that domain),
 * client_id ("" or absent: the tenant's own). A DKIM key is made; 201
 * (API) or 303 to the page; 422 for bad or taken fields.
 */
enum td_err maildomains_add(struct req *r)
{
	const char *domain = lowered(r, form_text(r, "domain"));
	const char *from = lowered(r, form_text(r, "from_address"));
	const char *client = form_text(r, "client_id"), *at;
	const char *params[5], *pem, *pub;
	json_t *after;
	PGresult *res;
	enum td_err err;
	int64_t id;

	if (*client == '\0' && r->json_body != NULL &&
	    json_is_integer(json_object_get(r->json_body, "client_id")))
		client = req_id(r, json_integer_value(json_object_get(
					   r->json_body, "client_id")));
	if (!domain_ok(domain)) {
		form_error(r, "domain", "enter a domain name such as help.example.com");
	} else {
		params[0] = domain;
		err = req_query(r, sql_domain_taken, 1, params, &res);
		if (err != TD_OK)
			return err;
		if (PQntuples(res) > 0)
			form_error(r, "domain", "this domain is already added");
	}
	at = strrchr(from, '@');
	if (at == NULL || at == from || strcmp(at + 1, domain) != 0 ||
	    strpbrk(from, " \t\r\n<>\",;") != NULL || strchr(from, '@') != at ||
	    strlen(from) > 254)
		form_error(r, "from_address",
			   "enter an address at this domain, such as support@"
			   "help.example.com");
	if (*client != '\0') {
		params[0] = client;
		if (strspn(client, "0123456789") != strlen(client) ||
		    strlen(client) > 18) {
			form_error(r, "client_id", "choose a client");
		} else {
			err = req_query(r, sql_client_known, 1, params, &res);
			if (err == TD_OK && PQntuples(res) == 0)
				form_error(r, "client_id", "choose a client");
			if (err == TD_OK && PQntuples(res) > 0)
				err = req_query(r, sql_client_taken, 1, params,
						&res);
			if (err != TD_OK)
				return err;
			if (!form_has_errors(r) && PQntuples(res) > 0)
				form_error(r, "client_id",
					   "this client already has a sending domain");
		}
	}
	if (form_has_errors(r)) {
		if (!r->want_json) {
			err = page(r);
			if (err != TD_OK)
				return err;
		}
		return form_reject(r, "settings/mail_domains", add_fields);
	}
	if (!dkim_keygen(r->arena, &pem, &pub))
		return req_fail(r, TD_ESYS, "cannot make a DKIM key");
	params[0] = domain;
	params[1] = *client ? client : NULL;
	params[2] = from;
	params[3] = pem;
	params[4] = pub;
	err = req_query(r, sql_new, 5, params, &res);
	if (err != TD_OK)
		return err;
	id = db_int(res, 0, 0);
	after = json_pack("{s:s, s:s, s:s?}", "domain", domain, "from_address",
			  from, "client_id", params[1]);
	req_own_json(r, after);
	err = audit_write(r, "mail_domain.create", "mail_domain", id, NULL,
			  after);
	if (err != TD_OK)
		return err;
	if (r->want_json) {
		r->status = 201;
		return page(r);
	}
	form_flash(r, "ok",
		   arena_printf(r->arena,
				"%s added: publish its three records, then check"
				" them.",
				domain));
	r->redirect = PAGE_URL;
	return TD_OK;
}

/* The value of tag ("p") in a "k=v; k=v" record, spaces removed. */
static const char *tag_value(struct req *r, const char *rec, const char *tag)
{
	size_t n = strlen(tag);
	const char *p = rec;

	while (p != NULL && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (!strncasecmp(p, tag, n) &&
		    (p[n] == '=' || p[n] == ' ' || p[n] == '\t')) {
			const char *v = p + n, *end;
			char *out, *w;

			while (*v == ' ' || *v == '\t')
				v++;
			if (*v != '=')
				return NULL;
			v++;
			end = strchr(v, ';');
			if (end == NULL)
				end = v + strlen(v);
			out = w = arena_alloc_raw(r->arena,
						  (size_t)(end - v) + 1);
			for (; v < end; v++)
				if (!isspace((unsigned char)*v))
					*w++ = *v;
			*w = '\0';
			return out;
		}
		p = strchr(p, ';');
	}
	return NULL;
}

/*
 * One record's status: the records at name that start with prefix;
 * "ok" when exactly one is there and it matches (DKIM: our public key
 * want_p; DMARC: a valid policy; SPF: any), what was found in found.
 */
static const char *check_record(struct req *r, struct maildns *dns,
				const char *name, const char *prefix,
				const char *want_p, json_t *found,
				const char *key)
{
	const char **txt, *hit = NULL, *p;
	enum maildns_rc rc = maildns_txt(dns, r->arena, name, &txt);
	size_t n = strlen(prefix);
	int i, count = 0;

	if (rc == MAILDNS_TEMP)
		return "error";
	for (i = 0; txt != NULL && txt[i] != NULL; i++)
		if ((!strncasecmp(txt[i], prefix, n) &&
		     (txt[i][n] == '\0' || txt[i][n] == ' ' ||
		      txt[i][n] == ';')) ||
		    /* v= is optional in a DKIM key record (RFC 6376 3.6.1) */
		    (want_p != NULL && strncasecmp(txt[i], "v=", 2) != 0 &&
		     tag_value(r, txt[i], "p") != NULL)) {
			hit = txt[i];
			count++;
		}
	if (hit == NULL)
		return "missing";
	json_object_set_new(found, key, json_string(hit));
	if (count > 1)
		return "wrong";
	if (want_p != NULL) { /* DKIM: the public key must be ours */
		p = tag_value(r, hit, "p");
		return p != NULL && !strcmp(p, want_p) ? "ok" : "wrong";
	}
	if (!strcmp(key, "dmarc")) {
		p = tag_value(r, hit, "p");
		return p != NULL && (!strcasecmp(p, "none") ||
				     !strcasecmp(p, "quarantine") ||
				     !strcasecmp(p, "reject")) ?
			       "ok" :
			       "wrong";
	}
	return "ok";
}

/*
 * POST /settings/mail-domains/:id/check — looks the three records up
 * now and keeps what was found; the domain is sent from while its DKIM
 * record checks out. 404 for another tenant's domain.
 */
enum td_err maildomains_check(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[5], *domain, *why, *st[3], *outcome;
	const char *server = r->ctx->conf->dns_server;
	struct maildns *dns;
	json_t *found, *after;
	PGresult *res;
	enum td_err err;

	params[0] = req_id(r, id);
	err = req_query(r, sql_one, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no sending domain %" PRId64, id);
	domain = arena_strdup(r->arena, db_text(res, 0, 0));
	dns = maildns_open(r->arena, server, &why);
	if (dns == NULL)
		return req_fail(r, TD_ESYS, "cannot check DNS: %s", why);
	found = json_object();
	req_own_json(r, found);
	st[0] = check_record(r, dns, domain, "v=spf1", NULL, found, "spf");
	st[1] = check_record(r, dns,
			     arena_printf(r->arena, "%s._domainkey.%s",
					  db_text(res, 0, 1), domain),
			     "v=DKIM1", db_text(res, 0, 2), found, "dkim");
	st[2] = check_record(r, dns, arena_printf(r->arena, "_dmarc.%s", domain),
			     "v=DMARC1", NULL, found, "dmarc");
	params[1] = st[0];
	params[2] = st[1];
	params[3] = st[2];
	params[4] = req_json_text(r, found, NULL);
	err = req_query(r, sql_checked, 5, params, NULL);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:s, s:s, s:s}", "domain", domain, "spf",
			  st[0], "dkim", st[1], "dmarc", st[2]);
	req_own_json(r, after);
	err = audit_write(r, "mail_domain.check", "mail_domain", id, NULL,
			  after);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return page(r);
	/* A client's domain is sent from only once verified; the
	 * workspace's own always is (its support address). */
	if (db_isnull(res, 0, 3))
		outcome = !strcmp(st[1], "ok") ?
				  " Receivers can verify its signatures." :
				  " Receivers cannot verify its signatures"
				  " until the DKIM record checks out.";
	else
		outcome = !strcmp(st[1], "ok") ?
				  " Mail is sent from this domain." :
				  " Mail is not sent from it until its DKIM"
				  " record checks out.";
	form_flash(r, !strcmp(st[1], "ok") ? "ok" : "error",
		   arena_printf(r->arena, "%s: SPF %s, DKIM %s, DMARC %s.%s",
				domain, status_label(st[0]),
				status_label(st[1]), status_label(st[2]),
				outcome));
	r->redirect = PAGE_URL;
	return TD_OK;
}

/* POST /settings/mail-domains/:id/delete — 404 for another tenant's. */
enum td_err maildomains_delete(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) };
	json_t *before;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_one, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1)
		return req_fail(r, TD_ENOENT, "no sending domain %" PRId64, id);
	before = json_pack("{s:s, s:s}", "domain", db_text(res, 0, 0),
			   "from_address", db_text(res, 0, 4));
	req_own_json(r, before);
	err = req_query(r, sql_delete, 1, params, NULL);
	if (err == TD_OK)
		err = audit_write(r, "mail_domain.delete", "mail_domain", id,
				  before, NULL);
	if (err != TD_OK)
		return err;
	if (r->want_json)
		return page(r);
	form_flash(r, "ok",
		   arena_printf(r->arena, "%s removed.",
				json_string_value(json_object_get(before,
								  "domain"))));
	r->redirect = PAGE_URL;
	return TD_OK;
}
