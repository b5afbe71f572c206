/* slasweep.c: the sla-sweep batch — SLA warnings and breaches as events */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "arena.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "mailtemplates.h"
#include "slasweep.h"
#include "banned.h"

#define SWEEP_LOCK   "7342008" /* pg_advisory_lock key of sla-sweep */
#define SWEEP_BATCH  20000     /* tickets per statement */
#define SWEEP_ROUNDS 100       /* statements per tenant and run, at most */
#define STR_(x)	     #x
#define STR(x)	     STR_(x)

static const char sql_lock[] = "SELECT pg_try_advisory_lock(" SWEEP_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" SWEEP_LOCK ")";
static const char sql_now[] = "SELECT coalesce($1::timestamptz, now())::text";
/* Every tenant id; sla_sweep_tenants() is the one cross-tenant look. */
static const char sql_tenants[] = "SELECT t FROM sla_sweep_tenants() t";

/*
 * One batch of one tenant at instant $1: the work-list rows whose next
 * instant has come (sla_schedule_next index), each due event inserted
 * once (the unique key makes reruns and races insert nothing twice), and
 * the rows marked so the next run skips them (next_at is generated from
 * the marks). A warning whose clock is already breached is skipped (the
 * breach says more). A warning of a business-hours tier waits while the
 * calendar is closed: its row stays due and a run in opening hours raises
 * it; rows of open calendars go first, so held ones never crowd them out
 * of a batch. Rows a ticket update holds locked are left for the next run.
 */
static const char sql_sweep[] =
	"WITH tier AS (SELECT id, sla_is_open(tenant_id, id, $1) AS open_now"
	" FROM sla_tiers WHERE tenant_id = app_tenant()),"
	" due AS (SELECT s.ticket_id, s.response_open, s.response_warn_at,"
	" s.response_due_at, s.resolution_warn_at, s.resolution_due_at,"
	" s.response_warned, s.response_breached, s.resolution_warned,"
	" s.resolution_breached, coalesce(tier.open_now, false) AS open_now"
	" FROM sla_schedule s LEFT JOIN tier ON tier.id = s.tier_id"
	" WHERE s.tenant_id = app_tenant() AND s.next_at <= $1"
	" ORDER BY tier.open_now IS NOT TRUE, s.next_at"
	" LIMIT " STR(
		SWEEP_BATCH) " FOR UPDATE OF s SKIP LOCKED),"
			     " ev AS (SELECT d.ticket_id, v.clock, v.kind, v.due_at FROM due d"
			     " CROSS JOIN LATERAL (VALUES"
			     " ('response', 'warning', d.response_due_at, d.response_open"
			     "  AND NOT d.response_warned AND d.response_warn_at <= $1"
			     "  AND d.response_due_at > $1 AND d.open_now),"
			     " ('response', 'breach', d.response_due_at, d.response_open"
			     "  AND NOT d.response_breached AND d.response_due_at <= $1),"
			     " ('resolution', 'warning', d.resolution_due_at,"
			     "  NOT d.resolution_warned AND d.resolution_warn_at <= $1"
			     "  AND d.resolution_due_at > $1 AND d.open_now),"
			     " ('resolution', 'breach', d.resolution_due_at,"
			     "  NOT d.resolution_breached AND d.resolution_due_at <= $1))"
			     " AS v (clock, kind, due_at, fire) WHERE v.fire),"
			     " ins AS (INSERT INTO sla_events (tenant_id, ticket_id, clock, kind,"
			     " due_at, raised_at) SELECT app_tenant(), ticket_id, clock, kind,"
			     " due_at, $1 FROM ev"
			     " ON CONFLICT (tenant_id, ticket_id, clock, kind) DO NOTHING"
			     " RETURNING ticket_id, clock, kind, due_at),"
			     /* Each new event is mailed to the ticket's assignee. */
			     " note AS (INSERT INTO outbox (tenant_id, kind, to_addr,"
			     " subject, body_text, message_id, from_addr, ticket_id,"
			     " template, template_data)"
			     " SELECT app_tenant(), 'sla_' || i.kind, u.email,"
			     " '[T-' || t.number || '] SLA ' || i.kind || ': ' || i.clock"
			     " || ' due ' || to_char(i.due_at AT TIME ZONE n.time_zone,"
			     " 'YYYY-MM-DD HH24:MI'),"
			     " 'T-' || t.number || ' ' || t.subject || E'\\n\\nThe '"
			     " || i.clock || ' target is ' || CASE i.kind WHEN 'breach'"
			     " THEN 'missed' ELSE 'close' END || ' (due '"
			     " || to_char(i.due_at AT TIME ZONE n.time_zone,"
			     " 'YYYY-MM-DD HH24:MI') || ').',"
			     " '<td.sla.' || gen_random_uuid() || '@'"
			     " || split_part(ms.support_address, '@', 2) || '>',"
			     " ms.support_address, t.id, 'sla_' || i.kind,"
			     " jsonb_build_object('clock', i.clock, 'assignee', u.name,"
			     " 'due', to_char(i.due_at AT TIME ZONE n.time_zone,"
			     " 'YYYY-MM-DD HH24:MI')) FROM ins i"
			     " JOIN tickets t ON t.tenant_id = app_tenant()"
			     " AND t.id = i.ticket_id"
			     " JOIN users u ON u.tenant_id = t.tenant_id"
			     " AND u.id = t.assignee_id AND u.active"
			     " JOIN tenants n ON n.id = t.tenant_id"
			     " JOIN mail_settings ms ON ms.tenant_id = t.tenant_id"
			     " AND ms.support_address <> '' RETURNING 1),"
			     " mark AS (SELECT d.ticket_id,"
			     " d.response_warned OR (d.response_open AND d.response_warn_at <= $1"
			     "  AND (d.open_now OR d.response_due_at <= $1)) AS rw,"
			     " d.response_breached OR (d.response_open"
			     "  AND d.response_due_at <= $1) AS rb,"
			     " d.resolution_warned OR (d.resolution_warn_at <= $1"
			     "  AND (d.open_now OR d.resolution_due_at <= $1)) AS sw,"
			     " d.resolution_breached OR d.resolution_due_at <= $1 AS sb"
			     " FROM due d),"
			     " upd AS (UPDATE sla_schedule s SET response_warned = m.rw,"
			     " response_breached = m.rb, resolution_warned = m.sw,"
			     " resolution_breached = m.sb FROM mark m"
			     " WHERE s.tenant_id = app_tenant() AND s.ticket_id = m.ticket_id"
			     " AND (s.response_warned, s.response_breached, s.resolution_warned,"
			     " s.resolution_breached) IS DISTINCT FROM (m.rw, m.rb, m.sw, m.sb)"
			     " RETURNING 1)"
			     " SELECT (SELECT count(*) FROM ins WHERE kind = 'warning'),"
			     " (SELECT count(*) FROM ins WHERE kind = 'breach'),"
			     " (SELECT count(*) FROM upd), (SELECT count(*) FROM due)";
/* The batch touches few rows of a big table: look them up by key. */
static const char sql_plan[] =
	"SELECT set_config('enable_hashjoin', 'off', true),"
	" set_config('enable_mergejoin', 'off', true)";

struct totals {
	long tenants;
	long warnings;
	long breaches;
	long failed;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Sweeps one tenant in transactions of one batch; false on failure. */
static bool sweep_tenant(const struct config *conf, struct db *db,
			 int64_t tenant, const char *now, struct totals *tot)
{
	const char *params[1] = { now };
	long warnings = 0, breaches = 0, changed, seen;
	struct arena *a;
	PGresult *res;
	int round;

	for (round = 0; round < SWEEP_ROUNDS; round++) {
		a = arena_new();
		if (db_tx_begin(db, a, tenant) != TD_OK ||
		    db_exec(db, a, sql_plan, 0, NULL, NULL) != TD_OK ||
		    db_exec(db, a, sql_sweep, 1, params, &res) != TD_OK ||
		    /* the notices the statement queued: subject, text, HTML */
		    mailtpl_render_queued(db, a, conf, NULL) != TD_OK) {
			log_error("sla-sweep: tenant %" PRId64 ": %s", tenant,
				  db->errmsg);
			arena_free(a); /* rolls the transaction back */
			return false;
		}
		warnings += (long)db_int(res, 0, 0);
		breaches += (long)db_int(res, 0, 1);
		changed = (long)db_int(res, 0, 2);
		seen = (long)db_int(res, 0, 3);
		if (db_tx_commit(db, a) != TD_OK) {
			log_error("sla-sweep: tenant %" PRId64
				  ": cannot commit: %s",
				  tenant, db->errmsg);
			arena_free(a);
			return false;
		}
		arena_free(a);
		/* A full batch that changed something: there may be more. */
		if (seen < SWEEP_BATCH || changed == 0)
			break;
	}
	if (warnings > 0 || breaches > 0)
		log_info("sla-sweep: tenant %" PRId64
			 ": %ld warning%s, %ld breach%s",
			 tenant, warnings, warnings == 1 ? "" : "s", breaches,
			 breaches == 1 ? "" : "es");
	tot->warnings += warnings;
	tot->breaches += breaches;
	return true;
}

/* --now TIMESTAMP only; false (after saying why) for anything else. */
static bool parse_args(int argc, char **argv, const char **now)
{
	int i;

	*now = NULL;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--now") && i + 1 < argc && *now == NULL) {
			*now = argv[++i];
		} else {
			fprintf(stderr,
				"tallydesk: sla-sweep: unexpected argument '%s'\n"
				"usage: tallydesk sla-sweep\n",
				argv[i]);
			return false;
		}
	}
	return true;
}

int slasweep_run(const struct config *conf, int argc, char **argv)
{
	const char *params[1], *now;
	struct totals tot = { 0 };
	struct timespec t0;
	struct arena *a;
	PGresult *res, *tenants;
	enum td_err err;
	struct db db;
	int i, rc = 1;

	if (!parse_args(argc, argv, &params[0]))
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	db_init(&db, conf->database_url, conf->db_timeout);
	a = arena_new();
	err = db_exec(&db, a, sql_now, 1, params, &res);
	if (err == TD_EINPUT) {
		fprintf(stderr, "tallydesk: sla-sweep: --now: %s\n", db.errmsg);
		rc = 2;
		goto out;
	}
	if (err != TD_OK) {
		log_error("sla-sweep: cannot reach the database: %s",
			  db.errmsg);
		goto out;
	}
	now = arena_strdup(a, db_text(res, 0, 0));
	if (db_exec(&db, a, sql_lock, 0, NULL, &res) != TD_OK) {
		log_error("sla-sweep: cannot take the lock: %s", db.errmsg);
		goto out;
	}
	if (!db_bool(res, 0, 0)) {
		printf("sla-sweep: another run holds the lock; nothing to do\n");
		rc = 0;
		goto out;
	}
	if (db_exec(&db, a, sql_tenants, 0, NULL, &tenants) != TD_OK) {
		log_error("sla-sweep: cannot list the tenants: %s", db.errmsg);
		goto out;
	}
	for (i = 0; i < PQntuples(tenants); i++) {
		tot.tenants++;
		if (!sweep_tenant(conf, &db, db_int(tenants, i, 0), now, &tot))
			tot.failed++;
	}
	db_exec(&db, a, sql_unlock, 0, NULL, NULL);
	printf("sla-sweep: %ld tenant%s, %ld warning%s, %ld breach%s"
	       " at %s in %.0f ms%s\n",
	       tot.tenants, tot.tenants == 1 ? "" : "s", tot.warnings,
	       tot.warnings == 1 ? "" : "s", tot.breaches,
	       tot.breaches == 1 ? "" : "es", now, ms_since(&t0),
	       tot.failed ? " (some tenants failed: see the log)" : "");
	rc = tot.failed ? 1 : 0;
out:
	arena_free(a);
	db_release(&db);
	return rc;
}
