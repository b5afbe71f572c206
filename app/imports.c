/* imports.c: CSV export and two-step (preview, commit) CSV import */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "clientctx.h"
#include "csv.h"
#include "db.h"
#include "form.h"
#include "http.h"
#include "imports.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define IMPORT_MAX_ROWS 100000
#define PREVIEW_ROWS	200  /* rows shown in the preview table */
#define ERRORS_MAX	1000 /* errors listed; the count is always exact */

static const char sql_export_clients[] =
	"SELECT c.name, coalesce(d.domain, ''), c.contact_email, c.phone,"
	" c.address, array_to_string(c.tags, '; '), c.payment_terms_days::text,"
	" c.tax_number, coalesce(c.currency, ''), c.archived_at IS NOT NULL"
	" FROM clients c LEFT JOIN client_domains d ON d.tenant_id = c.tenant_id"
	" AND d.client_id = c.id AND d.is_primary"
	" WHERE c.tenant_id = app_tenant() AND c.merged_into IS NULL"
	" ORDER BY lower(c.name), c.id";
static const char sql_export_contacts[] =
	"SELECT name, email, phone, job_title, is_billing, is_portal,"
	" is_technical, is_vip FROM contacts WHERE tenant_id = app_tenant()"
	" AND client_id = $1 ORDER BY lower(name), id";
static const char sql_export_assets[] =
	"SELECT a.name, a.kind, a.category, coalesce(s.name, ''), a.serial,"
	" a.os, a.billable, coalesce(a.external_id, ''),"
	" a.archived_at IS NOT NULL FROM assets a"
	" LEFT JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id"
	" WHERE a.tenant_id = app_tenant() AND a.client_id = $1"
	" ORDER BY lower(a.name), a.id";
/*
 * Matching is done in C on keys PostgreSQL lowered (so "ÉCOLE" meets
 * "école" as the unique indexes see it), from single-table reads: no
 * join whose plan could go quadratic on a 100,000-row file.
 */
static const char sql_lower[] =
	"SELECT lower(v) FROM jsonb_array_elements_text($1::jsonb)"
	" WITH ORDINALITY AS t(v, n) ORDER BY n";
static const char sql_clients_all[] =
	"SELECT id, name, lower(name), archived_at IS NOT NULL FROM clients"
	" WHERE tenant_id = app_tenant() AND merged_into IS NULL ORDER BY id";
static const char sql_domains_all[] =
	"SELECT domain, client_id FROM client_domains"
	" WHERE tenant_id = app_tenant()";
static const char sql_contacts_of[] =
	"SELECT client_id, lower(email), lower(name), name FROM contacts"
	" WHERE tenant_id = app_tenant() AND client_id = ANY ($1::bigint[])";
static const char sql_assets_of[] =
	"SELECT client_id, coalesce(external_id, ''), serial, name FROM assets"
	" WHERE tenant_id = app_tenant() AND client_id = ANY ($1::bigint[])";
static const char sql_kinds[] =
	"SELECT key FROM asset_kinds WHERE tenant_id = app_tenant()";
static const char sql_batch_new[] =
	"INSERT INTO import_batches (tenant_id, kind, filename, body, rows,"
	" created_by) VALUES (app_tenant(), $1, $2, $3, $4, $5) RETURNING id";
/* Locked: two commits of one batch cannot both go ahead. */
static const char sql_batch_get[] =
	"SELECT kind, filename, body, committed_at IS NOT NULL"
	" FROM import_batches WHERE tenant_id = app_tenant() AND id = $1"
	" FOR UPDATE";
static const char sql_batch_done[] =
	"UPDATE import_batches SET committed_at = now()"
	" WHERE tenant_id = app_tenant() AND id = $1";
static const char sql_clients_add[] =
	"INSERT INTO clients (tenant_id, name, contact_email, phone, address,"
	" tags, payment_terms_days, tax_number, currency)"
	" SELECT app_tenant(), name, contact_email, phone, address, tags,"
	" coalesce(payment_terms_days, 30), tax_number, currency"
	" FROM jsonb_to_recordset($1::jsonb) AS x(name text,"
	" contact_email text, phone text, address text, tags text[],"
	" payment_terms_days int, tax_number text, currency text)"
	" RETURNING id, lower(name)";
static const char sql_domains_add[] =
	"INSERT INTO client_domains (tenant_id, client_id, domain, is_primary)"
	" SELECT app_tenant(), client_id, domain, true"
	" FROM jsonb_to_recordset($1::jsonb) AS x(client_id bigint, domain text)";
static const char sql_contacts_add[] =
	"INSERT INTO contacts (tenant_id, client_id, name, email, phone,"
	" job_title, is_billing, is_portal, is_technical, is_vip)"
	" SELECT app_tenant(), client_id, name, email, phone, job_title,"
	" is_billing, is_portal, is_technical, is_vip"
	" FROM jsonb_to_recordset($1::jsonb) AS x(client_id bigint, name text,"
	" email text, phone text, job_title text, is_billing boolean,"
	" is_portal boolean, is_technical boolean, is_vip boolean)";
static const char sql_sites_add[] =
	"INSERT INTO sites (tenant_id, client_id, name)"
	" SELECT DISTINCT ON (client_id, lower(name)) app_tenant(), client_id,"
	" name FROM jsonb_to_recordset($1::jsonb) AS x(client_id bigint,"
	" name text) ORDER BY client_id, lower(name), name"
	" ON CONFLICT (tenant_id, client_id, lower(name)) DO NOTHING";
static const char sql_sites_of[] =
	"SELECT id, client_id, lower(name) FROM sites"
	" WHERE tenant_id = app_tenant() AND client_id = ANY ($1::bigint[])";
static const char sql_assets_add[] =
	"INSERT INTO assets (tenant_id, client_id, site_id, name, kind,"
	" category, serial, os, billable, external_id)"
	" SELECT app_tenant(), client_id, site_id, name, kind, category,"
	" serial, os, billable, external_id"
	" FROM jsonb_to_recordset($1::jsonb) AS x(client_id bigint,"
	" site_id bigint, name text, kind text, category text, serial text,"
	" os text, billable boolean, external_id text)";

/* A column of an import file. */
struct column {
	const char *name;
	const char *hint;
	bool required;
	bool shown; /* in the preview table */
};

enum {
	CL_NAME,
	CL_DOMAIN,
	CL_EMAIL,
	CL_PHONE,
	CL_ADDRESS,
	CL_TAGS,
	CL_TERMS,
	CL_TAX,
	CL_CURRENCY,
	CL__MAX
};
enum {
	CT_CLIENT,
	CT_NAME,
	CT_EMAIL,
	CT_PHONE,
	CT_JOB,
	CT_BILLING,
	CT_PORTAL,
	CT_TECHNICAL,
	CT_VIP,
	CT__MAX
};
enum {
	AS_CLIENT,
	AS_NAME,
	AS_KIND,
	AS_CATEGORY,
	AS_SITE,
	AS_SERIAL,
	AS_OS,
	AS_BILLABLE,
	AS_EXTERNAL,
	AS__MAX
};

static const struct column client_cols[CL__MAX] = {
	{ "name", "Up to 200 characters.", true, true },
	{ "domain",
	  "The email domain, e.g. acme.com. Mail from it goes to this client.",
	  false, true },
	{ "contact_email", "The client's main email address.", false, true },
	{ "phone", "Up to 50 characters.", false, false },
	{ "address", "Up to 500 characters; may span lines in quotes.", false,
	  false },
	{ "tags", "Separated by semicolons, e.g. gold; legal.", false, false },
	{ "payment_terms_days", "0 to 365. Empty: 30.", false, false },
	{ "tax_number", "Up to 50 characters.", false, false },
	{ "currency", "Three letters such as GBP. Empty: the workspace's.",
	  false, false },
};
static const struct column contact_cols[CT__MAX] = {
	{ "client", "The client's name, or one of its domains.", true, true },
	{ "name", "Up to 200 characters.", true, true },
	{ "email", "Needed for portal users.", false, true },
	{ "phone", "Up to 50 characters.", false, false },
	{ "job_title", "Up to 200 characters.", false, false },
	{ "billing", "yes or no (empty: no). Receives invoices.", false,
	  false },
	{ "portal", "yes or no. May use the client portal.", false, false },
	{ "technical", "yes or no. A technical contact.", false, false },
	{ "vip", "yes or no. Escalated under the SLA.", false, false },
};
static const struct column asset_cols[AS__MAX] = {
	{ "client", "The client's name, or one of its domains.", true, true },
	{ "name", "Up to 200 characters.", true, true },
	{ "kind",
	  "workstation, server, network, m365_user, domain, other or one of your own kinds. Empty: other.",
	  false, true },
	{ "category", "Up to 100 characters, e.g. laptop.", false, false },
	{ "site", "A site name of the client; a new name creates the site.",
	  false, false },
	{ "serial", "The serial number.", false, true },
	{ "os", "The operating system.", false, false },
	{ "billable", "yes or no (empty: yes).", false, false },
	{ "external_id", "Your RMM's id for the asset, unique per client.",
	  false, true },
};

enum import_kind {
	IMPORT_CLIENTS,
	IMPORT_CONTACTS,
	IMPORT_ASSETS,
	IMPORT__MAX
};

static const struct kind_def {
	const char *key;
	const char *label;
	const char *one; /* "client" */
	const struct column *cols;
	size_t ncols;
	const char *example;
} kinds[IMPORT__MAX] = {
	{ "clients", "Clients", "client", client_cols, CL__MAX,
	  "name,domain,contact_email,phone,tags,payment_terms_days,currency\n"
	  "Acme Ltd,acme.com,it@acme.com,+44 20 7946 0000,gold; legal,30,GBP\n"
	  "\"Smith & Sons, Plumbers\",smithplumbing.co.uk,,,,14,\n" },
	{ "contacts", "Contacts", "contact", contact_cols, CT__MAX,
	  "client,name,email,job_title,billing,portal,vip\n"
	  "Acme Ltd,Jane Doe,jane@acme.com,Office manager,yes,yes,no\n"
	  "acme.com,Raj Patel,raj@acme.com,CEO,no,no,yes\n" },
	{ "assets", "Assets", "asset", asset_cols, AS__MAX,
	  "client,name,kind,category,site,serial,os,billable,external_id\n"
	  "Acme Ltd,ACME-LT-01,workstation,laptop,Head office,5CD1234XYZ,Windows 11,yes,\n"
	  "acme.com,ACME-SRV-01,server,,Head office,,Windows Server 2022,yes,rmm-4411\n" },
};

static const char *const builtin_kinds[] = {
	"workstation", "server", "network", "m365_user", "domain", "other",
};

enum row_status { ROW_NEW, ROW_SKIP, ROW_ERROR, ROW_BLANK };

/* One data row of a file. */
struct row {
	size_t no; /* as a spreadsheet numbers it: the header is row 1 */
	enum row_status status;
	const char **v;	    /* by column of the kind: trimmed, "" if absent */
	const char *note;   /* why it is skipped, or what is wrong */
	json_t *item;	    /* what to insert (valid rows) */
	int64_t client;	    /* contacts and assets: the resolved client */
	const char *key[2]; /* what it is matched on (lowered), if anything */
};

/* A file checked against the data: what a preview shows, a commit uses. */
struct batch {
	enum import_kind kind;
	const struct kind_def *def;
	struct row *rows;
	size_t nrows;
	size_t count, creates, skips, nerrors;
	json_t *errors;	 /* [{row, column, message}], at most ERRORS_MAX */
	json_t *ignored; /* header names that are not columns of the kind */
	json_t *view;	 /* json_t references are owned by the request */
};

/* A sorted list of keys for matching, lowest rank first among equals. */
struct entry {
	const char *key;
	size_t rank;
	size_t val;
};

struct map {
	struct entry *v;
	size_t n, cap;
};

static char *ascii_lower(struct req *r, const char *s)
{
	char *out = arena_strdup(r->arena, s), *p;

	for (p = out; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static void map_add(struct req *r, struct map *m, const char *key, size_t rank,
		    size_t val)
{
	struct entry *v;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		v = arena_alloc_raw(r->arena, m->cap * sizeof(*v));
		if (m->n > 0)
			memcpy(v, m->v, m->n * sizeof(*v));
		m->v = v;
	}
	m->v[m->n].key = key;
	m->v[m->n].rank = rank;
	m->v[m->n].val = val;
	m->n++;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);

	if (c != 0)
		return c;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

static void map_sort(struct map *m)
{
	if (m->n > 1)
		qsort(m->v, m->n, sizeof(*m->v), entry_cmp);
}

/* The entry with key and the lowest rank, or NULL. */
static const struct entry *map_get(const struct map *m, const char *key)
{
	size_t lo = 0, hi = m->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(m->v[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && !strcmp(m->v[lo].key, key) ? &m->v[lo] : NULL;
}

static const struct kind_def *kind_by_key(const char *key, enum import_kind *k)
{
	size_t i;

	for (i = 0; i < IMPORT__MAX; i++)
		if (!strcmp(key, kinds[i].key)) {
			*k = (enum import_kind)i;
			return &kinds[i];
		}
	return NULL;
}

/* Notes a problem with row w (NULL: the file as a whole) for the preview. */
static void row_error(struct req *r, struct batch *b, struct row *w,
		      const char *column, const char *message)
{
	b->nerrors++;
	/* null, not 0 or "": mustache takes 0 and "" as true. */
	if (json_array_size(b->errors) < ERRORS_MAX)
		json_array_append_new(
			b->errors,
			json_pack("{s:o, s:o, s:s}", "row",
				  w ? json_integer((json_int_t)w->no) :
				      json_null(),
				  "column",
				  *column ? json_string(column) : json_null(),
				  "message", message));
	if (w == NULL)
		return;
	w->status = ROW_ERROR;
	w->note = w->note == NULL ?
			  arena_printf(r->arena, "%s%s%s", column,
				       *column ? ": " : "", message) :
			  arena_printf(r->arena, "%s; %s%s%s", w->note, column,
				       *column ? ": " : "", message);
}

static void row_skip(struct row *w, const char *why)
{
	w->status = ROW_SKIP;
	w->note = why;
}

/* A value longer than max characters is an error of its column. */
static bool too_long(struct req *r, struct batch *b, struct row *w, int col,
		     size_t max)
{
	if (http_utf8_len(w->v[col]) <= max)
		return false;
	row_error(r, b, w, b->def->cols[col].name,
		  arena_printf(r->arena, "use at most %zu characters", max));
	return true;
}

static void need(struct req *r, struct batch *b, struct row *w, int col,
		 size_t max)
{
	if (*w->v[col] == '\0')
		row_error(r, b, w, b->def->cols[col].name,
			  arena_printf(
				  r->arena, "enter a %s (up to %zu characters)",
				  !strcmp(b->def->cols[col].name, "client") ?
					  "client name or domain" :
					  b->def->cols[col].name,
				  max));
	else
		too_long(r, b, w, col, max);
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

/* What client_domains.domain's CHECK accepts, lowercase. */
static bool domain_ok(const char *s)
{
	size_t label = 0, labels = 1, n = strlen(s), i;
	char c;

	if (n == 0 || n > 253)
		return false;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			labels++;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			label++;
		} else if (c == '-' && label > 0) {
			label++;
		} else {
			return false;
		}
		if (label > 63)
			return false;
	}
	return labels >= 2 && label > 0 && s[n - 1] != '-';
}

/* yes/no (also y/n, true/false, 1/0, any case); "" is dflt. */
static bool yes_no(const char *s, bool dflt, bool *out)
{
	static const char *const yes[] = { "yes", "y", "true", "1" };
	static const char *const no[] = { "no", "n", "false", "0" };
	size_t i;

	*out = dflt;
	if (*s == '\0')
		return true;
	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool flag(struct req *r, struct batch *b, struct row *w, int col,
		 bool dflt)
{
	bool v;

	if (!yes_no(w->v[col], dflt, &v))
		row_error(r, b, w, b->def->cols[col].name, "use yes or no");
	return v;
}

static void check_client(struct req *r, struct batch *b, struct row *w)
{
	const char *const *v = w->v;
	json_t *tags = json_array(), *item;
	const char *p, *e, *end;
	char *currency, *tag;
	long long terms = -1;
	size_t i;

	need(r, b, w, CL_NAME, 200);
	w->v[CL_DOMAIN] = ascii_lower(r, v[CL_DOMAIN]);
	if (*v[CL_DOMAIN] != '\0' && !domain_ok(v[CL_DOMAIN]))
		row_error(r, b, w, "domain", "use a domain such as acme.com");
	if (*v[CL_EMAIL] != '\0' && !email_ok(v[CL_EMAIL]))
		row_error(r, b, w, "contact_email", "not an email address");
	too_long(r, b, w, CL_PHONE, 50);
	too_long(r, b, w, CL_ADDRESS, 500);
	too_long(r, b, w, CL_TAX, 50);
	for (p = v[CL_TAGS]; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, ';');
		if (e == NULL)
			e = p + strlen(p);
		end = e;
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (end == p)
			continue;
		tag = arena_strndup(r->arena, p, (size_t)(end - p));
		if (http_utf8_len(tag) > 50) {
			row_error(r, b, w, "tags",
				  "use tags of at most 50 characters");
			break;
		}
		json_array_append_new(tags, json_string(tag));
	}
	if (json_array_size(tags) > 20)
		row_error(r, b, w, "tags", "use at most 20 tags");
	if (*v[CL_TERMS] != '\0') {
		for (i = 0; v[CL_TERMS][i] != '\0'; i++)
			if (!isdigit((unsigned char)v[CL_TERMS][i]) || i > 3)
				break;
		if (v[CL_TERMS][i] == '\0')
			terms = strtoll(v[CL_TERMS], NULL, 10);
		if (terms < 0 || terms > 365)
			row_error(r, b, w, "payment_terms_days",
				  "use a whole number of days from 0 to 365");
	}
	currency = arena_strdup(r->arena, v[CL_CURRENCY]);
	for (i = 0; currency[i] != '\0'; i++)
		currency[i] = (char)toupper((unsigned char)currency[i]);
	if (*currency != '\0' &&
	    (strlen(currency) != 3 || !isupper((unsigned char)currency[0]) ||
	     !isupper((unsigned char)currency[1]) ||
	     !isupper((unsigned char)currency[2])))
		row_error(
			r, b, w, "currency",
			"use a three-letter code such as GBP, or leave it empty");
	if (w->status == ROW_ERROR) {
		json_decref(tags);
		return;
	}
	item = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "name", v[CL_NAME],
			 "contact_email", v[CL_EMAIL], "phone", v[CL_PHONE],
			 "address", v[CL_ADDRESS], "tags", tags, "tax_number",
			 v[CL_TAX]);
	json_object_set_new(item, "payment_terms_days",
			    terms >= 0 ? json_integer(terms) : json_null());
	json_object_set_new(item, "currency",
			    *currency ? json_string(currency) : json_null());
	w->item = item;
}

static void check_contact(struct req *r, struct batch *b, struct row *w)
{
	const char *const *v = w->v;
	bool billing, portal, technical, vip;

	need(r, b, w, CT_CLIENT, 200);
	need(r, b, w, CT_NAME, 200);
	if (*v[CT_EMAIL] != '\0' && !email_ok(v[CT_EMAIL]))
		row_error(r, b, w, "email", "not an email address");
	too_long(r, b, w, CT_PHONE, 50);
	too_long(r, b, w, CT_JOB, 200);
	billing = flag(r, b, w, CT_BILLING, false);
	portal = flag(r, b, w, CT_PORTAL, false);
	technical = flag(r, b, w, CT_TECHNICAL, false);
	vip = flag(r, b, w, CT_VIP, false);
	if (portal && *v[CT_EMAIL] == '\0')
		row_error(r, b, w, "portal",
			  "a portal user needs an email address");
	if (w->status == ROW_ERROR)
		return;
	w->item = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b}", "name",
			    v[CT_NAME], "email", v[CT_EMAIL], "phone",
			    v[CT_PHONE], "job_title", v[CT_JOB], "is_billing",
			    billing, "is_portal", portal, "is_technical",
			    technical, "is_vip", vip);
}

static bool kind_known(const PGresult *tenant_kinds, const char *kind)
{
	size_t i;
	int j;

	for (i = 0; i < sizeof(builtin_kinds) / sizeof(builtin_kinds[0]); i++)
		if (!strcmp(kind, builtin_kinds[i]))
			return true;
	for (j = 0; j < PQntuples(tenant_kinds); j++)
		if (!strcmp(kind, db_text(tenant_kinds, j, 0)))
			return true;
	return false;
}

static void check_asset(struct req *r, struct batch *b, struct row *w,
			const PGresult *tenant_kinds)
{
	const char *const *v = w->v;
	const char *kind = *v[AS_KIND] ? ascii_lower(r, v[AS_KIND]) : "other";
	bool billable;

	need(r, b, w, AS_CLIENT, 200);
	need(r, b, w, AS_NAME, 200);
	if (!kind_known(tenant_kinds, kind))
		row_error(
			r, b, w, "kind",
			"not a kind: use workstation, server, network, m365_user, domain, other or one of your own");
	too_long(r, b, w, AS_CATEGORY, 100);
	too_long(r, b, w, AS_SITE, 200);
	too_long(r, b, w, AS_SERIAL, 200);
	too_long(r, b, w, AS_OS, 200);
	too_long(r, b, w, AS_EXTERNAL, 200);
	billable = flag(r, b, w, AS_BILLABLE, true);
	if (w->status == ROW_ERROR)
		return;
	w->item =
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name", v[AS_NAME],
			  "kind", kind, "category", v[AS_CATEGORY], "serial",
			  v[AS_SERIAL], "os", v[AS_OS], "billable", billable);
	json_object_set_new(w->item, "external_id",
			    *v[AS_EXTERNAL] ? json_string(v[AS_EXTERNAL]) :
					      json_null());
}

/* A header cell as a column name: trimmed, lowercase, spaces as '_'. */
static const char *header_name(struct req *r, const char *s)
{
	char *n;
	size_t i;

	while (isspace((unsigned char)*s))
		s++;
	n = ascii_lower(r, s);
	for (i = strlen(n); i > 0 && isspace((unsigned char)n[i - 1]); i--)
		n[i - 1] = '\0';
	for (i = 0; n[i] != '\0'; i++)
		if (n[i] == ' ' || n[i] == '-')
			n[i] = '_';
	return n;
}

/*
 * The header row: which file column holds which column of the kind
 * (-1: none). False (noted) when a column repeats or a required one is
 * missing.
 */
static bool map_header(struct req *r, struct batch *b, const struct csv_row *h,
		       int *where)
{
	const char *name;
	size_t i, c;
	bool ok = true;

	for (c = 0; c < b->def->ncols; c++)
		where[c] = -1;
	for (i = 0; i < h->n; i++) {
		name = header_name(r, h->f[i]);
		if (*name == '\0')
			continue;
		for (c = 0; c < b->def->ncols; c++)
			if (!strcmp(name, b->def->cols[c].name))
				break;
		if (c == b->def->ncols) {
			json_array_append_new(b->ignored, json_string(name));
		} else if (where[c] >= 0) {
			row_error(r, b, NULL, name,
				  "the column appears twice in the header row");
			ok = false;
		} else {
			where[c] = (int)i;
		}
	}
	for (c = 0; c < b->def->ncols; c++) {
		if (b->def->cols[c].required && where[c] < 0) {
			row_error(
				r, b, NULL, b->def->cols[c].name,
				arena_printf(
					r->arena,
					"the header row (row 1) has no '%s' column",
					b->def->cols[c].name));
			ok = false;
		}
	}
	return ok;
}

static const char *trimmed(struct req *r, const char *s)
{
	const char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	return *e == '\0' ? s : arena_strndup(r->arena, s, (size_t)(e - s));
}

/* The rows of the file as values by column, with blank rows marked. */
static void split_rows(struct req *r, struct batch *b, const struct csv *c,
		       const int *where)
{
	struct row *w;
	size_t i, k, width = c->rows[0].n;
	const char *s;
	bool blank;

	b->nrows = c->n - 1;
	b->rows = arena_alloc(r->arena, (b->nrows + 1) * sizeof(*b->rows));
	for (i = 0; i < b->nrows; i++) {
		w = &b->rows[i];
		w->no = i + 2;
		w->v = arena_alloc_raw(r->arena, b->def->ncols * sizeof(*w->v));
		blank = true;
		for (k = 0; k < c->rows[i + 1].n; k++)
			if (*trimmed(r, c->rows[i + 1].f[k]) != '\0')
				blank = false;
		if (blank) {
			w->status = ROW_BLANK;
			continue;
		}
		b->count++;
		for (k = 0; k < b->def->ncols; k++) {
			s = where[k] >= 0 && (size_t)where[k] <
						     c->rows[i + 1].n ?
				    c->rows[i + 1].f[where[k]] :
				    "";
			w->v[k] = trimmed(r, csv_unneutralise(s));
		}
		/* Empty cells past the header's (Excel pads rows) are fine. */
		for (k = width; k < c->rows[i + 1].n; k++)
			if (*trimmed(r, c->rows[i + 1].f[k]) != '\0')
				break;
		if (k < c->rows[i + 1].n)
			row_error(
				r, b, w, "",
				arena_printf(
					r->arena,
					"the row has %zu fields; the header row has %zu",
					c->rows[i + 1].n, width));
	}
}

/* PostgreSQL's lower() of each of n strings, in order. */
static enum td_err pg_lower(struct req *r, const char **in, size_t n,
			    const char ***out)
{
	json_t *list = json_array();
	const char *params[1];
	PGresult *res;
	enum td_err err;
	size_t i;

	req_own_json(r, list);
	*out = arena_alloc_raw(r->arena, (n + 1) * sizeof(**out));
	if (n == 0)
		return TD_OK;
	for (i = 0; i < n; i++)
		json_array_append_new(list, json_string(in[i]));
	params[0] = req_json_text(r, list, NULL);
	if (params[0] == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the import keys");
	err = req_query(r, sql_lower, 1, params, &res);
	if (err != TD_OK)
		return err;
	if ((size_t)PQntuples(res) != n)
		return req_fail(r, TD_EDB, "lower() returned %d of %zu keys",
				PQntuples(res), n);
	for (i = 0; i < n; i++)
		(*out)[i] = db_text(res, (int)i, 0);
	return TD_OK;
}

/* Rows still to be created, as an array of row pointers. */
static size_t live_rows(struct req *r, struct batch *b, struct row ***out)
{
	size_t i, n = 0;

	*out = arena_alloc_raw(r->arena, (b->nrows + 1) * sizeof(**out));
	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].status == ROW_NEW)
			(*out)[n++] = &b->rows[i];
	return n;
}

/*
 * Skips each row whose key[k] (NULL: none) an earlier new row has too:
 * "same <what> as row N".
 */
static void dedupe(struct req *r, struct batch *b, int k, const char *what)
{
	struct map m = { NULL, 0, 0 };
	struct row *w;
	size_t i, first = 0;

	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].status == ROW_NEW && b->rows[i].key[k] != NULL)
			map_add(r, &m, b->rows[i].key[k], b->rows[i].no, i);
	map_sort(&m);
	for (i = 0; i < m.n; i++) {
		if (i == 0 || strcmp(m.v[i].key, m.v[i - 1].key) != 0) {
			first = m.v[i].rank;
			continue;
		}
		w = &b->rows[m.v[i].val];
		row_skip(w, arena_printf(r->arena, "same %s as row %zu", what,
					 first));
	}
}

/* The tenant's clients, by lowered name (active first) and by domain. */
struct clients {
	PGresult *res; /* id, name, lower(name), archived; by id */
	struct map by_name;
	struct map by_domain; /* val: the row in res */
};

static int find_client_row(const PGresult *res, int64_t id)
{
	int lo = 0, hi = PQntuples(res), mid;
	int64_t v;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		v = db_int(res, mid, 0);
		if (v == id)
			return mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static enum td_err load_clients(struct req *r, struct clients *cl)
{
	PGresult *dom;
	enum td_err err;
	int i, n, k;

	memset(cl, 0, sizeof(*cl));
	err = req_query(r, sql_clients_all, 0, NULL, &cl->res);
	if (err == TD_OK)
		err = req_query(r, sql_domains_all, 0, NULL, &dom);
	if (err != TD_OK)
		return err;
	n = PQntuples(cl->res);
	for (i = 0; i < n; i++)
		map_add(r, &cl->by_name, db_text(cl->res, i, 2),
			db_bool(cl->res, i, 3), (size_t)i);
	n = PQntuples(dom);
	for (i = 0; i < n; i++) {
		k = find_client_row(cl->res, db_int(dom, i, 1));
		if (k >= 0)
			map_add(r, &cl->by_domain, db_text(dom, i, 0), 0,
				(size_t)k);
	}
	map_sort(&cl->by_name);
	map_sort(&cl->by_domain);
	return TD_OK;
}

static enum td_err clients_match(struct req *r, struct batch *b)
{
	struct clients cl;
	struct row **live, *w;
	const char **names, **lowered;
	const struct entry *e;
	enum td_err err;
	size_t n, i;
	int k;

	n = live_rows(r, b, &live);
	names = arena_alloc_raw(r->arena, (n + 1) * sizeof(*names));
	for (i = 0; i < n; i++)
		names[i] = live[i]->v[CL_NAME];
	err = pg_lower(r, names, n, &lowered);
	if (err == TD_OK)
		err = load_clients(r, &cl);
	if (err != TD_OK)
		return err;
	for (i = 0; i < n; i++) {
		w = live[i];
		w->key[0] = lowered[i];
		w->key[1] = *w->v[CL_DOMAIN] ? w->v[CL_DOMAIN] : NULL;
		e = map_get(&cl.by_name, w->key[0]);
		if (e == NULL && *w->v[CL_DOMAIN] != '\0')
			e = map_get(&cl.by_domain, w->v[CL_DOMAIN]);
		if (e == NULL)
			continue;
		k = (int)e->val;
		if (strcmp(db_text(cl.res, k, 2), w->key[0]) != 0)
			row_skip(w, arena_printf(r->arena,
						 "domain %s belongs to %s%s",
						 w->v[CL_DOMAIN],
						 db_bool(cl.res, k, 3) ?
							 "archived client " :
							 "",
						 db_text(cl.res, k, 1)));
		else if (db_bool(cl.res, k, 3))
			row_skip(
				w,
				arena_printf(
					r->arena,
					"archived client %s has this name: restore it instead",
					db_text(cl.res, k, 1)));
		else
			row_skip(w, arena_printf(r->arena, "client %s exists",
						 db_text(cl.res, k, 1)));
	}
	dedupe(r, b, 0, "name");
	dedupe(r, b, 1, "domain");
	return TD_OK;
}

/*
 * Resolves the client column of contacts and assets (a name, else a
 * domain) to an active client; lowered[i] is the lowered value of
 * live[i]. Rows that do not resolve are errors.
 */
static void resolve_clients(struct req *r, struct batch *b,
			    const struct clients *cl, struct row **live,
			    size_t n, const char **lowered)
{
	const struct entry *e;
	struct row *w;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		w = live[i];
		e = map_get(&cl->by_name, lowered[i]);
		if (e == NULL)
			e = map_get(&cl->by_domain, lowered[i]);
		if (e == NULL) {
			row_error(
				r, b, w, "client",
				arena_printf(
					r->arena,
					"no client is named '%s' or has it as a domain",
					w->v[0]));
			continue;
		}
		k = (int)e->val;
		if (db_bool(cl->res, k, 3)) {
			row_error(
				r, b, w, "client",
				arena_printf(
					r->arena,
					"client %s is archived: restore it first",
					db_text(cl->res, k, 1)));
			continue;
		}
		w->client = db_int(cl->res, k, 0);
		json_object_set_new(w->item, "client_id",
				    json_integer((json_int_t)w->client));
	}
}

static int id_cmp(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;

	return a < b ? -1 : a > b;
}

/* "{1,2,3}": the distinct clients of the new rows, for = ANY ($1). */
static const char *client_array(struct req *r, struct batch *b)
{
	struct sbuf sb;
	int64_t *ids = arena_alloc_raw(r->arena, (b->nrows + 1) * sizeof(*ids));
	size_t i, n = 0;

	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].status == ROW_NEW)
			ids[n++] = b->rows[i].client;
	qsort(ids, n, sizeof(*ids), id_cmp);
	sbuf_init(&sb, r->arena, 64);
	sbuf_addch(&sb, '{');
	for (i = 0; i < n; i++)
		if (i == 0 || ids[i] != ids[i - 1])
			sbuf_addf(&sb, "%s%" PRId64, i ? "," : "", ids[i]);
	sbuf_addch(&sb, '}');
	return sbuf_cstr(&sb);
}

static enum td_err contacts_match(struct req *r, struct batch *b)
{
	struct clients cl;
	struct map have = { NULL, 0, 0 };
	struct row **live, *w;
	const char **keys, **lowered, *params[1];
	const struct entry *e;
	PGresult *res;
	enum td_err err;
	size_t n, i;
	int j;

	n = live_rows(r, b, &live);
	keys = arena_alloc_raw(r->arena, (3 * n + 1) * sizeof(*keys));
	for (i = 0; i < n; i++) {
		keys[3 * i] = live[i]->v[CT_CLIENT];
		keys[3 * i + 1] = live[i]->v[CT_EMAIL];
		keys[3 * i + 2] = live[i]->v[CT_NAME];
	}
	err = pg_lower(r, keys, 3 * n, &lowered);
	if (err == TD_OK)
		err = load_clients(r, &cl);
	if (err != TD_OK)
		return err;
	for (i = 0; i < n; i++)
		keys[i] = lowered[3 * i];
	resolve_clients(r, b, &cl, live, n, keys);
	params[0] = client_array(r, b);
	err = req_query(r, sql_contacts_of, 1, params, &res);
	if (err != TD_OK)
		return err;
	for (j = 0; j < PQntuples(res); j++) {
		if (*db_text(res, j, 1) != '\0')
			map_add(r, &have,
				arena_printf(r->arena, "%s/e/%s",
					     db_text(res, j, 0),
					     db_text(res, j, 1)),
				0, (size_t)j);
		map_add(r, &have,
			arena_printf(r->arena, "%s/n/%s", db_text(res, j, 0),
				     db_text(res, j, 2)),
			0, (size_t)j);
	}
	map_sort(&have);
	for (i = 0; i < n; i++) {
		w = live[i];
		if (w->status != ROW_NEW)
			continue;
		w->key[0] =
			*w->v[CT_EMAIL] ?
				arena_printf(r->arena, "%" PRId64 "/e/%s",
					     w->client, lowered[3 * i + 1]) :
				arena_printf(r->arena, "%" PRId64 "/n/%s",
					     w->client, lowered[3 * i + 2]);
		e = map_get(&have, w->key[0]);
		if (e != NULL)
			row_skip(w,
				 arena_printf(
					 r->arena,
					 "%s exists already (%s with %s)",
					 *w->v[CT_EMAIL] ?
						 "a contact with this email" :
						 "a contact with this name",
					 db_text(res, (int)e->val, 3),
					 db_text(cl.res,
						 find_client_row(cl.res,
								 w->client),
						 1)));
	}
	dedupe(r, b, 0, "client and email or name");
	return TD_OK;
}

static enum td_err assets_match(struct req *r, struct batch *b)
{
	struct clients cl;
	struct map have = { NULL, 0, 0 };
	struct row **live, *w;
	const char **keys, **lowered, *params[1];
	const struct entry *e;
	PGresult *res;
	enum td_err err;
	size_t n, i;
	int j;

	n = live_rows(r, b, &live);
	keys = arena_alloc_raw(r->arena, (n + 1) * sizeof(*keys));
	for (i = 0; i < n; i++)
		keys[i] = live[i]->v[AS_CLIENT];
	err = pg_lower(r, keys, n, &lowered);
	if (err == TD_OK)
		err = load_clients(r, &cl);
	if (err != TD_OK)
		return err;
	resolve_clients(r, b, &cl, live, n, lowered);
	params[0] = client_array(r, b);
	err = req_query(r, sql_assets_of, 1, params, &res);
	if (err != TD_OK)
		return err;
	for (j = 0; j < PQntuples(res); j++) {
		if (*db_text(res, j, 1) != '\0')
			map_add(r, &have,
				arena_printf(r->arena, "%s/x/%s",
					     db_text(res, j, 0),
					     db_text(res, j, 1)),
				0, (size_t)j);
		if (*db_text(res, j, 2) != '\0')
			map_add(r, &have,
				arena_printf(r->arena, "%s/s/%s",
					     db_text(res, j, 0),
					     db_text(res, j, 2)),
				0, (size_t)j);
	}
	map_sort(&have);
	/* An asset is known by its RMM id, else by its serial number. */
	for (i = 0; i < n; i++) {
		w = live[i];
		if (w->status != ROW_NEW)
			continue;
		if (*w->v[AS_EXTERNAL] != '\0')
			w->key[0] = arena_printf(r->arena, "%" PRId64 "/x/%s",
						 w->client, w->v[AS_EXTERNAL]);
		else if (*w->v[AS_SERIAL] != '\0')
			w->key[0] = arena_printf(r->arena, "%" PRId64 "/s/%s",
						 w->client, w->v[AS_SERIAL]);
		e = w->key[0] ? map_get(&have, w->key[0]) : NULL;
		if (e != NULL)
			row_skip(w, arena_printf(
					    r->arena, "asset %s has this %s",
					    db_text(res, (int)e->val, 3),
					    *w->v[AS_EXTERNAL] ? "external_id" :
								 "serial"));
	}
	dedupe(r, b, 0, "client and external_id or serial");
	return TD_OK;
}

/*
 * Parses and checks body as an import of kind against the data as it is
 * now, writing nothing: every row ends new, skipped (with a note) or in
 * error, and b->errors lists the problems. TD_OK however many rows are
 * wrong; an error only when the database fails.
 */
static enum td_err check_batch(struct req *r, enum import_kind kind,
			       const char *body, size_t len, struct batch *b)
{
	struct csv_limits lim = CSV_LIMITS_DEFAULT;
	PGresult *tenant_kinds = NULL;
	int where[16];
	struct csv c;
	const char *why;
	enum td_err err;
	size_t i;

	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->def = &kinds[kind];
	b->errors = json_array();
	req_own_json(r, b->errors);
	b->ignored = json_array();
	req_own_json(r, b->ignored);
	lim.max_rows = IMPORT_MAX_ROWS + 1; /* and the header row */
	err = csv_parse(r->arena, body, len, &lim, &c, &why);
	if (err == TD_ETOOBIG && why != NULL && strstr(why, " rows") != NULL)
		why = arena_printf(r->arena,
				   "the file has more than %d rows: split it",
				   IMPORT_MAX_ROWS);
	if (err != TD_OK) {
		row_error(r, b, NULL, "", why ? why : "the file is not CSV");
		return TD_OK;
	}
	if (c.n < 2) {
		row_error(r, b, NULL, "",
			  "the file has no rows under the header row");
		return TD_OK;
	}
	if (!map_header(r, b, &c.rows[0], where))
		return TD_OK;
	split_rows(r, b, &c, where);
	if (kind == IMPORT_ASSETS) {
		err = req_query(r, sql_kinds, 0, NULL, &tenant_kinds);
		if (err != TD_OK)
			return err;
	}
	for (i = 0; i < b->nrows; i++) {
		if (b->rows[i].status != ROW_NEW)
			continue;
		switch (kind) {
		case IMPORT_CLIENTS:
			check_client(r, b, &b->rows[i]);
			break;
		case IMPORT_CONTACTS:
			check_contact(r, b, &b->rows[i]);
			break;
		case IMPORT_ASSETS:
			check_asset(r, b, &b->rows[i], tenant_kinds);
			break;
		case IMPORT__MAX:
		default:
			abort();
		}
		if (b->rows[i].item != NULL)
			req_own_json(r, b->rows[i].item);
	}
	switch (kind) {
	case IMPORT_CLIENTS:
		err = clients_match(r, b);
		break;
	case IMPORT_CONTACTS:
		err = contacts_match(r, b);
		break;
	case IMPORT_ASSETS:
		err = assets_match(r, b);
		break;
	case IMPORT__MAX:
	default:
		abort();
	}
	if (err != TD_OK)
		return err;
	for (i = 0; i < b->nrows; i++) {
		if (b->rows[i].status == ROW_NEW)
			b->creates++;
		else if (b->rows[i].status == ROW_SKIP)
			b->skips++;
	}
	return TD_OK;
}

/* The kind choices of the form, with kind selected. */
static json_t *kinds_json(enum import_kind selected)
{
	json_t *list = json_array(), *cols;
	size_t i, c;

	for (i = 0; i < IMPORT__MAX; i++) {
		cols = json_array();
		for (c = 0; c < kinds[i].ncols; c++)
			json_array_append_new(
				cols,
				json_pack("{s:s, s:s, s:b}", "name",
					  kinds[i].cols[c].name, "hint",
					  kinds[i].cols[c].hint, "required",
					  kinds[i].cols[c].required));
		json_array_append_new(
			list,
			json_pack("{s:s, s:s, s:b, s:o, s:s}", "key",
				  kinds[i].key, "label", kinds[i].label,
				  "selected", i == (size_t)selected, "columns",
				  cols, "example", kinds[i].example));
	}
	return list;
}

static void form_view(struct req *r, enum import_kind kind)
{
	json_t *v = req_view(r);

	json_object_set_new(v, "title", json_string("Import"));
	json_object_set_new(v, "kinds", kinds_json(kind));
	json_object_set_new(v, "max_rows", json_integer(IMPORT_MAX_ROWS));
	r->view_name = "imports/form";
}

/* GET /import — ?kind= preselects clients, contacts or assets. */
enum td_err imports_form(struct req *r)
{
	const char *k = http_params_get(&r->query_params, "kind");
	enum import_kind kind = IMPORT_CLIENTS;

	if (k != NULL)
		kind_by_key(k, &kind);
	form_view(r, kind);
	json_object_set_new(req_view(r), "form",
			    json_pack("{s:s}", "kind", kinds[kind].key));
	return TD_OK;
}

static const struct http_file *find_file(const struct req *r, const char *field)
{
	size_t i;

	for (i = 0; i < r->files.n; i++)
		if (!strcmp(r->files.v[i].field, field))
			return &r->files.v[i];
	return NULL;
}

static const char *ignored_text(struct req *r, json_t *names)
{
	struct sbuf sb;
	json_t *n;
	size_t i;

	sbuf_init(&sb, r->arena, 64);
	json_array_foreach(names, i, n)
	{
		sbuf_addf(&sb, "%s%s", i ? ", " : "", json_string_value(n));
	}
	return sbuf_cstr(&sb);
}

/* The preview's view: totals, errors, the first rows and what to do. */
static void preview_view(struct req *r, struct batch *b, int64_t batch_id,
			 const char *filename)
{
	json_t *v = req_view(r), *cols = json_array(), *rows = json_array();
	json_t *cells, *row;
	size_t i, c, shown = 0, more = 0;
	const char *status;

	for (c = 0; c < b->def->ncols; c++)
		if (b->def->cols[c].shown)
			json_array_append_new(
				cols, json_string(b->def->cols[c].name));
	for (i = 0; i < b->nrows; i++) {
		if (b->rows[i].status == ROW_BLANK)
			continue;
		if (shown == PREVIEW_ROWS) {
			more++;
			continue;
		}
		shown++;
		cells = json_array();
		for (c = 0; c < b->def->ncols; c++)
			if (b->def->cols[c].shown)
				json_array_append_new(
					cells, json_string(b->rows[i].v[c]));
		status = b->rows[i].status == ROW_NEW  ? "new" :
			 b->rows[i].status == ROW_SKIP ? "skip" :
							 "error";
		row = json_pack("{s:I, s:s, s:b, s:b, s:b, s:o}", "row",
				(json_int_t)b->rows[i].no, "status", status,
				"is_new", b->rows[i].status == ROW_NEW,
				"is_skip", b->rows[i].status == ROW_SKIP,
				"is_error", b->rows[i].status == ROW_ERROR,
				"cells", cells);
		json_object_set_new(row, "note",
				    b->rows[i].note ?
					    json_string(b->rows[i].note) :
					    json_null());
		json_array_append_new(rows, row);
	}
	json_object_set_new(v, "title", json_string("Import preview"));
	json_object_set_new(v, "kind", json_string(b->def->key));
	json_object_set_new(v, "kind_label", json_string(b->def->label));
	json_object_set_new(v, "filename",
			    *filename ? json_string(filename) : json_null());
	json_object_set_new(v, "has_skips", json_boolean(b->skips > 0));
	json_object_set_new(v, "batch_id",
			    batch_id > 0 ? json_integer((json_int_t)batch_id) :
					   json_null());
	json_object_set_new(v, "rows", json_integer((json_int_t)b->count));
	json_object_set_new(v, "creates", json_integer((json_int_t)b->creates));
	json_object_set_new(v, "skips", json_integer((json_int_t)b->skips));
	json_object_set_new(v, "error_count",
			    json_integer((json_int_t)b->nerrors));
	json_object_set(v, "errors", b->errors);
	json_object_set_new(
		v, "errors_more",
		b->nerrors > json_array_size(b->errors) ?
			json_integer((json_int_t)(b->nerrors -
						  json_array_size(b->errors))) :
			json_null());
	json_object_set_new(v, "has_errors", json_boolean(b->nerrors > 0));
	json_object_set_new(v, "has_preview", json_boolean(shown > 0));
	json_object_set(v, "ignored_columns", b->ignored);
	json_object_set_new(v, "ignored_text",
			    json_array_size(b->ignored) ?
				    json_string(ignored_text(r, b->ignored)) :
				    json_null());
	json_object_set_new(v, "columns", cols);
	json_object_set_new(v, "preview", rows);
	json_object_set_new(v, "preview_more",
			    more ? json_integer((json_int_t)more) :
				   json_null());
	json_object_set_new(v, "can_commit",
			    json_boolean(batch_id > 0 && b->nerrors == 0));
	json_object_set_new(
		v, "commit_url",
		batch_id > 0 ? json_string(arena_printf(
				       r->arena, "/import/%" PRId64 "/commit",
				       batch_id)) :
			       json_null());
	r->view_name = "imports/preview";
}

/*
 * POST /import/preview — kind, and a CSV file (multipart "file") or the
 * text of one ("csv"). Writes no business data: the file is kept as an
 * import batch, only when it has no errors and something to create, for
 * the commit. 422 for a missing kind or file; a file with errors is a
 * preview (200) that lists them.
 */
enum td_err imports_preview(struct req *r)
{
	static const char *const keep[] = { "kind", NULL };
	const struct http_file *f = find_file(r, "file");
	const char *body, *filename, *params[5];
	enum import_kind kind = IMPORT_CLIENTS;
	struct batch b;
	PGresult *res;
	enum td_err err;
	size_t len;
	int64_t id = 0;

	if (kind_by_key(form_text(r, "kind"), &kind) == NULL)
		form_error(r, "kind", "choose clients, contacts or assets");
	if (f != NULL && f->len > 0) {
		body = (const char *)f->data;
		len = f->len;
		filename = f->filename ? f->filename : "";
	} else {
		body = form_text(r, "csv");
		len = strlen(body);
		filename = form_text(r, "filename");
		if (len == 0)
			form_error(r, "file",
				   "choose a CSV file, or paste its text");
	}
	if (form_has_errors(r)) {
		form_view(r, kind);
		return form_reject(r, "imports/form", keep);
	}
	if (http_utf8_len(filename) > 200 ||
	    !http_utf8_valid(filename, strlen(filename)))
		filename = "";
	err = check_batch(r, kind, body, len, &b);
	if (err != TD_OK)
		return err;
	if (b.nerrors == 0 && b.creates > 0) {
		params[0] = kinds[kind].key;
		params[1] = filename;
		params[2] = arena_strndup(r->arena, body, len);
		params[3] = arena_printf(r->arena, "%zu", b.count);
		params[4] = r->auth.kind == AUTH_USER ?
				    req_id(r, r->auth.user_id) :
				    NULL;
		err = req_query(r, sql_batch_new, 5, params, &res);
		if (err != TD_OK)
			return err;
		id = db_int(res, 0, 0);
	}
	preview_view(r, &b, id, filename);
	return TD_OK;
}

/* Runs an INSERT ... FROM jsonb_to_recordset($1) over items. */
static enum td_err insert_items(struct req *r, const char *sql, json_t *items,
				PGresult **res)
{
	const char *params[1];

	params[0] = req_json_text(r, items, NULL);
	if (params[0] == NULL)
		return req_fail(r, TD_ESYS, "cannot serialise the import");
	return req_query(r, sql, 1, params, res);
}

static json_t *new_items(struct req *r, struct batch *b)
{
	json_t *items = json_array();
	size_t i;

	req_own_json(r, items);
	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].status == ROW_NEW)
			json_array_append(items, b->rows[i].item);
	return items;
}

/* Clients, then the domains of those that have one. */
static enum td_err commit_clients(struct req *r, struct batch *b)
{
	json_t *items = new_items(r, b), *domains = json_array();
	struct map by_name = { NULL, 0, 0 };
	const struct entry *e;
	PGresult *res;
	enum td_err err;
	size_t i;
	int j;

	req_own_json(r, domains);
	for (i = 0; i < b->nrows; i++)
		if (b->rows[i].status == ROW_NEW &&
		    *b->rows[i].v[CL_DOMAIN] != '\0')
			map_add(r, &by_name, b->rows[i].key[0], 0, i);
	map_sort(&by_name);
	err = insert_items(r, sql_clients_add, items, &res);
	if (err != TD_OK)
		return err;
	/* The new names are unique (lowered): they tell the rows apart. */
	for (j = 0; j < PQntuples(res); j++) {
		e = map_get(&by_name, db_text(res, j, 1));
		if (e != NULL)
			json_array_append_new(
				domains,
				json_pack("{s:I, s:s}", "client_id",
					  (json_int_t)db_int(res, j, 0),
					  "domain",
					  b->rows[e->val].v[CL_DOMAIN]));
	}
	if (json_array_size(domains) == 0)
		return TD_OK;
	return insert_items(r, sql_domains_add, domains, NULL);
}

/* The sites the assets name, created if missing, then the assets. */
static enum td_err commit_assets(struct req *r, struct batch *b)
{
	json_t *sites = json_array(), *items;
	struct map by_name = { NULL, 0, 0 };
	const char **names, **lowered, *params[1], *key;
	const struct entry *e;
	struct row **live;
	PGresult *res;
	enum td_err err;
	size_t i, n;
	int j;

	req_own_json(r, sites);
	n = live_rows(r, b, &live);
	names = arena_alloc_raw(r->arena, (n + 1) * sizeof(*names));
	for (i = 0; i < n; i++) {
		names[i] = live[i]->v[AS_SITE];
		if (*names[i] != '\0')
			json_array_append_new(
				sites, json_pack("{s:I, s:s}", "client_id",
						 (json_int_t)live[i]->client,
						 "name", names[i]));
	}
	if (json_array_size(sites) > 0) {
		err = insert_items(r, sql_sites_add, sites, NULL);
		if (err == TD_OK)
			err = pg_lower(r, names, n, &lowered);
		params[0] = client_array(r, b);
		if (err == TD_OK)
			err = req_query(r, sql_sites_of, 1, params, &res);
		if (err != TD_OK)
			return err;
		for (j = 0; j < PQntuples(res); j++)
			map_add(r, &by_name,
				arena_printf(r->arena, "%s/%s",
					     db_text(res, j, 1),
					     db_text(res, j, 2)),
				0, (size_t)db_int(res, j, 0));
		map_sort(&by_name);
		for (i = 0; i < n; i++) {
			if (*names[i] == '\0')
				continue;
			key = arena_printf(r->arena, "%" PRId64 "/%s",
					   live[i]->client, lowered[i]);
			e = map_get(&by_name, key);
			if (e != NULL)
				json_object_set_new(
					live[i]->item, "site_id",
					json_integer((json_int_t)e->val));
		}
	}
	items = new_items(r, b);
	return insert_items(r, sql_assets_add, items, NULL);
}

/* Where to go after a commit: the one client the rows are for, or all. */
static const char *after_commit(struct req *r, struct batch *b)
{
	int64_t client = 0;
	size_t i;

	if (b->kind == IMPORT_CLIENTS)
		return "/clients";
	for (i = 0; i < b->nrows; i++) {
		if (b->rows[i].status != ROW_NEW)
			continue;
		if (client != 0 && b->rows[i].client != client)
			return "/clients";
		client = b->rows[i].client;
	}
	if (client == 0)
		return "/clients";
	return arena_printf(r->arena, "/clients/%" PRId64 "/%s", client,
			    b->def->key);
}

/*
 * POST /import/:id/commit — checks the kept file again against the data
 * as it is now and creates its new rows, all or nothing. 404 if no such
 * batch; 409 if it was committed already, or if a row no longer passes
 * (the preview again, with the errors; nothing is written).
 */
enum td_err imports_commit(struct req *r)
{
	int64_t id = route_arg_int(&r->args, "id");
	const char *params[1] = { req_id(r, id) }, *body;
	enum import_kind kind;
	struct batch b;
	json_t *after, *v;
	PGresult *res;
	enum td_err err;

	err = req_query(r, sql_batch_get, 1, params, &res);
	if (err != TD_OK)
		return err;
	if (PQntuples(res) != 1 ||
	    kind_by_key(db_text(res, 0, 0), &kind) == NULL)
		return req_fail(r, TD_ENOENT, "no import %" PRId64, id);
	if (db_bool(res, 0, 3))
		return req_fail(r, TD_ECONFLICT,
				"import %" PRId64 " was committed already", id);
	body = db_text(res, 0, 2);
	err = check_batch(r, kind, body, strlen(body), &b);
	if (err != TD_OK)
		return err;
	if (b.nerrors > 0) {
		/* Nothing was written: the whole preview, with its errors. */
		preview_view(r, &b, 0, db_text(res, 0, 1));
		v = req_view(r);
		json_object_set_new(v, "batch_id",
				    json_integer((json_int_t)id));
		json_object_set_new(
			v, "error",
			json_string(
				"Nothing was imported: the data changed since the preview, and some rows no longer pass. Fix the file and preview it again."));
		r->error_detail = "some rows no longer pass";
		r->status = 409;
		return TD_OK;
	}
	switch (kind) {
	case IMPORT_CLIENTS:
		err = commit_clients(r, &b);
		break;
	case IMPORT_CONTACTS:
		err = insert_items(r, sql_contacts_add, new_items(r, &b), NULL);
		break;
	case IMPORT_ASSETS:
		err = commit_assets(r, &b);
		break;
	case IMPORT__MAX:
	default:
		abort();
	}
	if (err == TD_OK)
		err = req_query(r, sql_batch_done, 1, params, NULL);
	if (err != TD_OK)
		return err;
	after = json_pack("{s:s, s:s, s:I, s:I, s:I}", "kind", kinds[kind].key,
			  "filename", db_text(res, 0, 1), "rows",
			  (json_int_t)b.count, "created", (json_int_t)b.creates,
			  "skipped", (json_int_t)b.skips);
	req_own_json(r, after);
	err = audit_write(r, "import.commit", "import_batch", id, NULL, after);
	if (err != TD_OK)
		return err;
	v = req_view(r);
	json_object_set_new(v, "batch_id", json_integer((json_int_t)id));
	json_object_update(v, after);
	if (r->want_json)
		return TD_OK;
	form_flash(r, "ok",
		   arena_printf(
			   r->arena, "Imported %zu %s%s.", b.creates,
			   b.creates == 1 ? kinds[kind].one : kinds[kind].key,
			   b.skips ? arena_printf(r->arena,
						  "; skipped %zu already there",
						  b.skips) :
				     ""));
	r->redirect = after_commit(r, &b);
	return TD_OK;
}

/* A file name from a client's name: lowercase letters, digits and '-'. */
static const char *slug(struct req *r, const char *name, int64_t id)
{
	struct sbuf sb;
	bool dash = false;

	sbuf_init(&sb, r->arena, 64);
	for (; *name != '\0' && sb.len < 40; name++) {
		if (isalnum((unsigned char)*name) &&
		    (unsigned char)*name < 0x80) {
			if (dash && sb.len > 0)
				sbuf_addch(&sb, '-');
			dash = false;
			sbuf_addch(&sb, (char)tolower((unsigned char)*name));
		} else {
			dash = true;
		}
	}
	if (sb.len == 0)
		sbuf_addf(&sb, "client-%" PRId64, id);
	return sbuf_cstr(&sb);
}

/*
 * Sends sb as a CSV download. The UTF-8 BOM makes Excel read the file as
 * UTF-8; our reader skips it.
 */
static void send_csv(struct req *r, struct sbuf *sb, const char *filename)
{
	r->body_out = sb->buf;
	r->body_out_len = sb->len;
	r->body_type = "text/csv; charset=utf-8";
	req_header(r, "Content-Disposition",
		   arena_printf(r->arena, "attachment; filename=\"%s\"",
				filename));
}

static void csv_start(struct req *r, struct sbuf *sb, size_t rows,
		      const struct column *cols, size_t ncols,
		      const char *extra)
{
	const char *names[16];
	size_t i;

	sbuf_init(sb, r->arena, 256 + rows * 128);
	sbuf_adds(sb, "\xef\xbb\xbf");
	for (i = 0; i < ncols; i++)
		names[i] = cols[i].name;
	if (extra != NULL)
		names[i++] = extra;
	csv_add_row(sb, names, i);
}

static const char *yes(const PGresult *res, int row, int col)
{
	return db_bool(res, row, col) ? "yes" : "no";
}

/*
 * GET /clients/export.csv — every client that is not merged away, in
 * the import's columns (and "archived"), so the file imports again.
 */
enum td_err imports_export_clients(struct req *r)
{
	const char *f[CL__MAX + 1];
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i, n, c;

	err = req_query(r, sql_export_clients, 0, NULL, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	csv_start(r, &sb, (size_t)n, client_cols, CL__MAX, "archived");
	for (i = 0; i < n; i++) {
		for (c = 0; c < CL__MAX; c++)
			f[c] = db_text(res, i, c);
		f[CL__MAX] = yes(res, i, CL__MAX);
		csv_add_row(&sb, f, CL__MAX + 1);
	}
	send_csv(r, &sb, "clients.csv");
	return TD_OK;
}

/* GET /clients/:id/contacts/export.csv — 404 if no such client. */
enum td_err imports_export_contacts(struct req *r)
{
	const char *f[CT__MAX], *params[1];
	struct clientctx cc;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i, n, c;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), NULL, &cc);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, cc.id);
	err = req_query(r, sql_export_contacts, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	csv_start(r, &sb, (size_t)n, contact_cols, CT__MAX, NULL);
	for (i = 0; i < n; i++) {
		f[CT_CLIENT] = cc.name;
		for (c = 0; c < 4; c++)
			f[CT_NAME + c] = db_text(res, i, c);
		for (c = 0; c < 4; c++)
			f[CT_BILLING + c] = yes(res, i, 4 + c);
		csv_add_row(&sb, f, CT__MAX);
	}
	send_csv(r, &sb,
		 arena_printf(r->arena, "%s-contacts.csv",
			      slug(r, cc.name, cc.id)));
	return TD_OK;
}

/* GET /clients/:id/assets/export.csv — archived ones too; 404 if no client. */
enum td_err imports_export_assets(struct req *r)
{
	const char *f[AS__MAX + 1], *params[1];
	struct clientctx cc;
	struct sbuf sb;
	PGresult *res;
	enum td_err err;
	int i, n, c;

	err = clientctx_load(r, route_arg_int(&r->args, "id"), NULL, &cc);
	if (err != TD_OK)
		return err;
	params[0] = req_id(r, cc.id);
	err = req_query(r, sql_export_assets, 1, params, &res);
	if (err != TD_OK)
		return err;
	n = PQntuples(res);
	csv_start(r, &sb, (size_t)n, asset_cols, AS__MAX, "archived");
	for (i = 0; i < n; i++) {
		f[AS_CLIENT] = cc.name;
		for (c = 0; c < 6; c++)
			f[AS_NAME + c] = db_text(res, i, c);
		f[AS_BILLABLE] = yes(res, i, 6);
		f[AS_EXTERNAL] = db_text(res, i, 7);
		f[AS__MAX] = yes(res, i, 8);
		csv_add_row(&sb, f, AS__MAX + 1);
	}
	send_csv(r, &sb,
		 arena_printf(r->arena, "%s-assets.csv",
			      slug(r, cc.name, cc.id)));
	return TD_OK;
}
