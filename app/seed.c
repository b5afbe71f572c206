/* seed.c: the demo tenant that `tallydesk seed-demo` creates */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "req.h"
#include "seed.h"
#include "banned.h"

static const char sql_user[] =
	"INSERT INTO users (tenant_id, email, name, role, password_hash)"
	" SELECT app_tenant(), $1, $2, $3, $4"
	" WHERE NOT EXISTS (SELECT 1 FROM users"
	"  WHERE tenant_id = app_tenant() AND lower(email) = lower($1))"
	" RETURNING id";

/*
 * Sample data for `seed-demo --sample-data` (what ./dev up shows): three
 * clients on three kinds of contract, their people and machines, tickets
 * with conversations and logged time. Each statement finds what the ones
 * before made by name, so they run in order in one transaction, and only
 * into a workspace that has no clients yet.
 */
static const char sql_has_clients[] =
	"SELECT EXISTS (SELECT 1 FROM clients WHERE tenant_id = app_tenant())";
static const char sql_sample_clients[] =
	"INSERT INTO clients (tenant_id, name, tags) VALUES"
	" (app_tenant(), 'Acme Manufacturing', '{manufacturing,priority}'),"
	" (app_tenant(), 'Globex Legal', '{legal}'),"
	" (app_tenant(), 'Initech Design', '{design}')";
static const char sql_sample_domains[] =
	"INSERT INTO client_domains (tenant_id, client_id, domain, is_primary)"
	" SELECT app_tenant(), c.id, d.domain, true FROM clients c JOIN (VALUES"
	" ('Acme Manufacturing', 'acme.example'),"
	" ('Globex Legal', 'globex.example'),"
	" ('Initech Design', 'initech.example')) d (name, domain)"
	" ON d.name = c.name WHERE c.tenant_id = app_tenant()";
static const char sql_sample_contacts[] =
	"INSERT INTO contacts (tenant_id, client_id, name, email, job_title,"
	" is_billing, is_technical, is_vip)"
	" SELECT app_tenant(), c.id, p.name, p.email, p.title, p.billing,"
	" p.technical, p.vip FROM clients c JOIN (VALUES"
	" ('Acme Manufacturing', 'Dana Wright', 'dana@acme.example',"
	"  'Operations director', true, false, true),"
	" ('Acme Manufacturing', 'Sam Patel', 'sam@acme.example',"
	"  'Office manager', false, true, false),"
	" ('Globex Legal', 'Priya Shah', 'priya@globex.example',"
	"  'Practice manager', true, true, false),"
	" ('Initech Design', 'Leo Martin', 'leo@initech.example',"
	"  'Studio lead', true, true, false))"
	" p (client, name, email, title, billing, technical, vip)"
	" ON p.client = c.name WHERE c.tenant_id = app_tenant()";
static const char sql_sample_assets[] =
	"INSERT INTO assets (tenant_id, client_id, name, kind, category, os)"
	" SELECT app_tenant(), c.id, a.prefix || '-' || lpad(i::text, 2, '0'),"
	" a.kind, 'managed', a.os FROM clients c JOIN (VALUES"
	" ('Acme Manufacturing', 'ACME-WS', 'workstation', 'Windows 11', 24),"
	" ('Acme Manufacturing', 'ACME-SRV', 'server', 'Windows Server 2022', 2),"
	" ('Globex Legal', 'GLX-WS', 'workstation', 'Windows 11', 12),"
	" ('Globex Legal', 'GLX-SRV', 'server', 'Ubuntu 24.04', 1),"
	" ('Initech Design', 'INI-MAC', 'workstation', 'macOS 15', 6))"
	" a (client, prefix, kind, os, n) ON a.client = c.name,"
	" generate_series(1, a.n) i WHERE c.tenant_id = app_tenant()";
static const char sql_sample_contracts[] =
	"INSERT INTO contracts (tenant_id, client_id, name, type, starts_on,"
	" sla_tier_id, hourly_rate, overage_rate, flat_fee, block_minutes,"
	" block_fee, notes)"
	" SELECT app_tenant(), c.id, k.name, k.type,"
	" date_trunc('year', now())::date,"
	" (SELECT id FROM sla_tiers WHERE tenant_id = app_tenant()"
	"  AND name = k.tier), k.rate, k.overage, k.flat, k.block, k.fee, ''"
	" FROM clients c JOIN (VALUES"
	" ('Acme Manufacturing', 'Managed endpoints + 10 h block', 'per_asset',"
	"  'Gold', 95.00, 85.00, 250.00, 600, 750.00),"
	" ('Globex Legal', 'All you can eat', 'all_you_can_eat', 'Silver',"
	"  NULL, NULL, 1800.00, NULL, NULL),"
	" ('Initech Design', 'Pay as you go', 'pay_as_you_go', 'Bronze',"
	"  110.00, NULL, 0.00, NULL, NULL))"
	" k (client, name, type, tier, rate, overage, flat, block, fee)"
	" ON k.client = c.name WHERE c.tenant_id = app_tenant()";
static const char sql_sample_lines[] =
	"INSERT INTO contract_lines (tenant_id, contract_id, description,"
	" quantity_source, quantity, asset_kinds, unit_price, service_code)"
	" SELECT app_tenant(), k.id, l.description, l.source, l.quantity,"
	" l.kinds, l.price, l.service FROM contracts k"
	" JOIN clients c ON c.tenant_id = k.tenant_id AND c.id = k.client_id"
	" JOIN (VALUES"
	" ('Acme Manufacturing', 'Managed workstation', 'assets', NULL::numeric,"
	"  '{workstation}'::text[], 15.00, 'MSP-WS'),"
	" ('Acme Manufacturing', 'Managed server', 'assets', NULL,"
	"  '{server}', 60.00, 'MSP-SRV'),"
	" ('Globex Legal', 'Microsoft 365 Business Premium', 'fixed', 14,"
	"  '{}', 18.10, 'M365-BP'))"
	" l (client, description, source, quantity, kinds, price, service)"
	" ON l.client = c.name WHERE k.tenant_id = app_tenant()";
static const char sql_sample_tickets[] =
	"INSERT INTO tickets (tenant_id, number, subject, description,"
	" client_id, contact_id, source, status, priority, type, assignee_id,"
	" tags, created_at, updated_at, closed_at, touched_by_human)"
	" SELECT app_tenant(), 1000 + t.n, t.subject, t.body, c.id,"
	" (SELECT id FROM contacts WHERE tenant_id = app_tenant()"
	"  AND client_id = c.id ORDER BY id LIMIT 1), t.source, t.status,"
	" t.priority, t.type, (SELECT id FROM users WHERE tenant_id ="
	" app_tenant() AND email = t.who), t.tags,"
	" now() - t.age, now() - t.age / 2,"
	" CASE WHEN t.status = 'closed' THEN now() - t.age / 3 END, true"
	" FROM clients c JOIN (VALUES"
	" (1, 'Acme Manufacturing', 'Label printer on line 2 prints blank labels',"
	"  'Since this morning the Zebra printer on line 2 feeds labels but prints"
	" nothing.', 'email', 'in_progress', 2, 'incident',"
	"  'tess@demo.tallydesk.test', '{printer}'::text[], interval '3 hours'),"
	" (2, 'Acme Manufacturing', 'New starter: laptop and accounts for Jo',"
	"  'Jo starts Monday in purchasing: laptop, email, ERP access.',"
	"  'portal', 'new', 3, 'incident', NULL, '{onboarding}',"
	"  interval '40 minutes'),"
	" (3, 'Globex Legal', 'Document management search is very slow',"
	"  'Searches in the DMS take over a minute for everyone.', 'phone',"
	"  'waiting', 2, 'incident', 'tom@demo.tallydesk.test', '{dms}',"
	"  interval '1 day'),"
	" (4, 'Globex Legal', 'Move the office firewall to the new rack', '',"
	"  'manual', 'in_progress', 3, 'project', 'tom@demo.tallydesk.test',"
	"  '{network}', interval '5 days'),"
	" (5, 'Initech Design', 'Shared drive full', 'The NAS says 98% used.',"
	"  'alert', 'closed', 1, 'incident', 'tess@demo.tallydesk.test',"
	"  '{storage}', interval '2 days'))"
	" t (n, client, subject, body, source, status, priority, type, who,"
	" tags, age) ON t.client = c.name WHERE c.tenant_id = app_tenant()";
static const char sql_sample_numbers[] =
	"INSERT INTO ticket_numbers (tenant_id, last) VALUES (app_tenant(), 1005)"
	" ON CONFLICT (tenant_id) DO UPDATE SET last = greatest("
	" ticket_numbers.last, 1005)";
static const char sql_sample_comments[] =
	"INSERT INTO ticket_comments (tenant_id, ticket_id, author_user_id,"
	" public, body, created_at)"
	" SELECT app_tenant(), t.id, (SELECT id FROM users WHERE tenant_id ="
	" app_tenant() AND email = m.who), m.public, m.body, now() - m.ago"
	" FROM tickets t JOIN (VALUES"
	" (1001, 'tess@demo.tallydesk.test', true, 'Thanks Dana, I am looking at"
	" it now. Could someone check the ribbon is seated?', interval '2 hours'),"
	" (1001, 'tess@demo.tallydesk.test', false, 'Driver updated last night"
	" by Windows Update; rolling back.', interval '1 hour'),"
	" (1003, 'tom@demo.tallydesk.test', true, 'We have rebuilt the index."
	" Please try a search and let us know.', interval '20 hours'),"
	" (1005, 'tess@demo.tallydesk.test', true, 'Cleared 400 GB of old"
	" renders to the archive volume; 61% used now.', interval '1 day'))"
	" m (number, who, public, body, ago) ON m.number = t.number"
	" WHERE t.tenant_id = app_tenant()";
/* A staff member's first public reply answers the ticket (SLA response). */
static const char sql_sample_responses[] =
	"UPDATE tickets t SET first_response_at = r.at FROM (SELECT ticket_id,"
	" min(created_at) AS at FROM ticket_comments WHERE tenant_id ="
	" app_tenant() AND public AND author_user_id IS NOT NULL"
	" GROUP BY ticket_id) r WHERE t.tenant_id = app_tenant()"
	" AND t.id = r.ticket_id";
static const char sql_sample_time[] =
	"INSERT INTO time_entries (tenant_id, ticket_id, client_id, user_id,"
	" started_at, minutes, kind, description, source)"
	" SELECT app_tenant(), t.id, t.client_id, (SELECT id FROM users WHERE"
	" tenant_id = app_tenant() AND email = e.who), now() - e.ago, e.minutes,"
	" e.kind, e.note, 'manual' FROM tickets t JOIN (VALUES"
	" (1001, 'tess@demo.tallydesk.test', 45, 'billable',"
	"  'Diagnosis and driver rollback', interval '2 hours'),"
	" (1003, 'tom@demo.tallydesk.test', 90, 'billable',"
	"  'DMS index rebuild', interval '20 hours'),"
	" (1004, 'tom@demo.tallydesk.test', 120, 'billable',"
	"  'Rack survey and cabling plan', interval '4 days'),"
	" (1005, 'tess@demo.tallydesk.test', 30, 'billable',"
	"  'Archive old renders', interval '1 day'))"
	" e (number, who, minutes, kind, note, ago) ON e.number = t.number"
	" WHERE t.tenant_id = app_tenant()";

static const char *const sample_sql[] = {
	sql_sample_clients,  sql_sample_domains, sql_sample_contacts,
	sql_sample_assets,   sql_sample_contracts, sql_sample_lines,
	sql_sample_tickets,  sql_sample_numbers, sql_sample_comments,
	sql_sample_responses, sql_sample_time,
};

/* The sample data, into a workspace that has no clients yet. */
static enum td_err add_sample(struct req *r, bool *added)
{
	PGresult *res;
	enum td_err err;
	size_t i;

	*added = false;
	err = req_query(r, sql_has_clients, 0, NULL, &res);
	if (err != TD_OK || db_bool(res, 0, 0))
		return err;
	for (i = 0; i < sizeof(sample_sql) / sizeof(sample_sql[0]); i++) {
		err = req_query(r, sample_sql[i], 0, NULL, NULL);
		if (err != TD_OK)
			return err;
	}
	*added = true;
	return audit_write(r, "demo.sample_data", "tenant", r->auth.tenant_id,
			   NULL, NULL);
}

static const struct {
	const char *email, *name, *role;
} people[] = {
	{ SEED_DEMO_EMAIL, "Alex Admin", "admin" },
	{ "morgan@demo.tallydesk.test", "Morgan Manager", "manager" },
	{ "tess@demo.tallydesk.test", "Tess Technician", "technician" },
	{ "tom@demo.tallydesk.test", "Tom Technician", "technician" },
};

int seed_demo(const struct config *conf, const char *password, bool sample)
{
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	PGresult *res;
	char hash[256];
	const char *params[4];
	size_t i;
	int rc = 1, created = 0;
	bool added = false;

	cli_req_init(&r, &ctx, &db, conf, "seed-demo");
	if (!auth_password_hash(conf, password, hash, sizeof(hash))) {
		fprintf(stderr, "tallydesk: cannot hash the demo password\n");
		goto out;
	}
	if (db_tx_begin(&db, r.arena, 0) != TD_OK)
		goto fail;
	if (cli_tenant_create(&r, SEED_DEMO_SLUG, "Northwind IT Services",
			      "GBP", "Europe/London", true) == 0)
		goto out;
	for (i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
		params[0] = people[i].email;
		params[1] = people[i].name;
		params[2] = people[i].role;
		params[3] = hash;
		if (req_query(&r, sql_user, 4, params, &res) != TD_OK)
			goto fail;
		if (PQntuples(res) == 0)
			continue;
		created++;
		if (audit_write(&r, "user.create", "user", db_int(res, 0, 0),
				NULL, NULL) != TD_OK)
			goto fail;
	}
	if (sample && add_sample(&r, &added) != TD_OK)
		goto fail;
	if (db_tx_commit(&db, r.arena) != TD_OK)
		goto fail;
	printf("demo tenant '%s' ready (%d users created now%s)\n",
	       SEED_DEMO_SLUG, created,
	       added ? "; sample clients, contracts, tickets and time added" :
		       "");
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "tallydesk: cannot seed the demo tenant: %s\n",
		db.errmsg);
out:
	cli_req_release(&r);
	return rc;
}
