/* billing.c: the billing-run batch — each due contract period invoiced once */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "arena.h"
#include "billing.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "money.h"
#include "banned.h"

#define BILLING_LOCK	  "7342108" /* pg_advisory_lock key of billing-run */
#define BILLING_MAX_NAMED 10	    /* failed clients named in the summary */
#define BILLING_LOG_EVERY 1000	    /* clients between log lines */
#define BILLING_BAR	  30	    /* progress bar width on a terminal */
#define BILLING_BATCH	  500	    /* clients computed per statement */
#define BILLING_LOCK_WAIT 30	    /* tries for the lock, 100 ms apart */

static const char sql_lock[] = "SELECT pg_try_advisory_lock(" BILLING_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" BILLING_LOCK ")";
static const char sql_date[] = "SELECT $1::date::text";
/*
 * A lost commit (PostgreSQL crashing within a fraction of a second of it)
 * is billed again by the next run: periods are idempotent. Saves a disk
 * flush per client.
 */
static const char sql_async[] = "SET synchronous_commit = off";
static const char sql_tenants[] = "SELECT t FROM billing_tenants() t";
static const char sql_clients[] =
	"SELECT c FROM billing_due_clients($1::date, $2::bigint) c";
/*
 * A batch of clients: the engine (sql/0018) computes the lines of every
 * due period of theirs in one set-based statement into this session's
 * staging tables; nothing is written to the books.
 */
static const char sql_stage[] = "SELECT billing_stage($1::bigint[], $2::date)";
/*
 * One client, one statement and so its own transaction: binds the tenant,
 * writes (unless $3) what was staged for the client; counts, the total
 * and the text for people.
 */
static const char sql_client[] =
	"SELECT invoices, would_bill, total, report"
	" FROM billing_write($1::bigint, $2::bigint, $3::boolean)";
/*
 * Between batches: the cached plans (ours, and the foreign-key checks')
 * were made when the invoice tables were smaller, maybe empty, where a
 * sequential scan is cheapest; planned again, they use the indexes.
 */
static const char sql_replan[] = "DISCARD PLANS";

struct options {
	const char *date; /* NULL: each tenant's today */
	const char *client;
	bool dry_run;
};

struct work {
	int64_t tenant;
	int64_t client;
};

struct totals {
	long clients;
	long done;
	long invoices;
	long would_bill;
	int64_t amount; /* minor units */
	long failed;
	int64_t named[BILLING_MAX_NAMED];
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static bool parse_args(int argc, char **argv, struct options *o)
{
	char *end;
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--date") && i + 1 < argc &&
		    o->date == NULL) {
			o->date = argv[++i];
		} else if (!strcmp(argv[i], "--client") && i + 1 < argc &&
			   o->client == NULL) {
			o->client = argv[++i];
			errno = 0;
			if (strtoll(o->client, &end, 10) <= 0 || *end != '\0' ||
			    errno != 0) {
				fprintf(stderr,
					"tallydesk: billing-run: --client: "
					"'%s' is not a client id\n",
					o->client);
				return false;
			}
		} else if (!strcmp(argv[i], "--dry-run") && !o->dry_run) {
			o->dry_run = true;
		} else {
			fprintf(stderr,
				"tallydesk: billing-run: unexpected argument '%s'\n"
				"usage: tallydesk billing-run [--date YYYY-MM-DD]"
				" [--client ID] [--dry-run]\n",
				argv[i]);
			return false;
		}
	}
	return true;
}

/* Every (tenant, client) with a period due; NULL after logging a failure. */
static struct work *list_work(struct db *db, struct arena *a,
			      const struct options *o, long *n)
{
	const char *params[2] = { o->date, o->client };
	PGresult *tenants, *res;
	struct work *w = NULL;
	size_t cap = 0;
	int64_t tenant;
	int i, j;

	*n = 0;
	if (db_exec(db, a, sql_tenants, 0, NULL, &tenants) != TD_OK) {
		log_error("billing-run: cannot list the tenants: %s",
			  db->errmsg);
		return NULL;
	}
	for (i = 0; i < PQntuples(tenants); i++) {
		tenant = db_int(tenants, i, 0);
		if (db_tx_begin(db, a, tenant) != TD_OK ||
		    db_exec(db, a, sql_clients, 2, params, &res) != TD_OK ||
		    db_tx_commit(db, a) != TD_OK) {
			log_error("billing-run: tenant %" PRId64
				  ": cannot list the clients due: %s",
				  tenant, db->errmsg);
			db_tx_rollback(db);
			return NULL;
		}
		for (j = 0; j < PQntuples(res); j++) {
			if ((size_t)*n == cap) {
				cap = cap ? cap * 2 : 256;
				w = xrealloc(w, cap * sizeof(*w));
			}
			w[*n].tenant = tenant;
			w[*n].client = db_int(res, j, 0);
			(*n)++;
		}
	}
	if (w == NULL)
		w = xmalloc(sizeof(*w));
	return w;
}

/*
 * The run's lock, tried for a few seconds: a run killed a moment ago
 * keeps it until its server session notices (at the end of the statement
 * it was running). *got false: another run holds it.
 */
static enum td_err take_lock(struct db *db, struct arena *a, bool *got)
{
	const struct timespec pause = { 0, 100L * 1000 * 1000 };
	PGresult *res;
	enum td_err err;
	int i;

	*got = false;
	for (i = 0; i < BILLING_LOCK_WAIT; i++) {
		if (i > 0)
			nanosleep(&pause, NULL);
		err = db_exec(db, a, sql_lock, 0, NULL, &res);
		if (err != TD_OK)
			return err;
		if (db_bool(res, 0, 0)) {
			*got = true;
			break;
		}
	}
	return TD_OK;
}

/* "{1,2,3}": the clients of w[0..n) as a bigint[] parameter. */
static char *client_array(struct arena *a, const struct work *w, long n)
{
	size_t cap = (size_t)n * 21 + 3, len = 0;
	char *buf = arena_alloc(a, cap);
	long i;

	buf[len++] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64,
					i ? "," : "", w[i].client);
	buf[len++] = '}';
	buf[len] = '\0';
	return buf;
}

/*
 * Stages clients w[0..n) (one tenant) in a transaction of its own: only
 * this session's staging tables change. False after logging a failure.
 */
static bool stage_clients(struct db *db, const struct work *w, long n,
			  const struct options *o)
{
	const char *params[2];
	struct arena *a = arena_new();
	bool ok;

	params[0] = client_array(a, w, n);
	params[1] = o->date;
	ok = db_tx_begin(db, a, w[0].tenant) == TD_OK &&
	     db_exec(db, a, sql_stage, 2, params, NULL) == TD_OK &&
	     db_tx_commit(db, a) == TD_OK;
	if (!ok)
		log_error(
			"billing-run: cannot compute %ld client%s from client %" PRId64
			" (tenant %" PRId64 "): %s; one by one instead",
			n, n == 1 ? "" : "s", w[0].client, w[0].tenant,
			db->errmsg);
	arena_free(a); /* rolls back a transaction left open */
	return ok;
}

/* Stages client w alone inside the caller's transaction. */
static bool stage_in_tx(struct db *db, struct arena *a, const struct work *w,
			const struct options *o)
{
	const char *params[2];

	params[0] = client_array(a, w, 1);
	params[1] = o->date;
	return db_exec(db, a, sql_stage, 2, params, NULL) == TD_OK;
}

/*
 * Bills (or previews) one client in its own transaction from what was
 * staged, or when `alone` staging it first in that same transaction;
 * false on failure.
 */
static bool bill_client(struct db *db, const struct work *w,
			const struct options *o, bool alone, struct totals *tot)
{
	const char *params[3];
	char tenant[24], client[24];
	struct arena *a;
	PGresult *res;
	int64_t amount;
	bool ok = false;

	snprintf(tenant, sizeof(tenant), "%" PRId64, w->tenant);
	snprintf(client, sizeof(client), "%" PRId64, w->client);
	params[0] = tenant;
	params[1] = client;
	params[2] = o->dry_run ? "true" : "false";
	a = arena_new();
	if ((alone && (db_tx_begin(db, a, w->tenant) != TD_OK ||
		       !stage_in_tx(db, a, w, o))) ||
	    db_exec(db, a, sql_client, 3, params, &res) != TD_OK) {
		log_error("billing-run: client %" PRId64 " (tenant %" PRId64
			  "): %s",
			  w->client, w->tenant, db->errmsg);
		goto out;
	}
	if (PQntuples(res) != 1 ||
	    money_parse(db_text(res, 0, 2), true, &amount) != TD_OK) {
		log_error("billing-run: client %" PRId64 ": total '%s' is out"
			  " of range",
			  w->client, PQntuples(res) ? db_text(res, 0, 2) : "");
		goto out;
	}
	if (o->dry_run && *db_text(res, 0, 3))
		printf("%s\n", db_text(res, 0, 3));
	/* (a dry run's transaction is rolled back by arena_free) */
	if (alone && !o->dry_run && db_tx_commit(db, a) != TD_OK) {
		log_error("billing-run: client %" PRId64 ": cannot commit: %s",
			  w->client, db->errmsg);
		goto out;
	}
	tot->invoices += (long)db_int(res, 0, 0);
	tot->would_bill += (long)db_int(res, 0, 1);
	tot->amount += amount;
	ok = true;
out:
	arena_free(a); /* rolls back a transaction left open */
	return ok;
}

/* The end of the batch from w[i]: up to BILLING_BATCH clients, one tenant. */
static long batch_end(const struct work *w, long n, long i)
{
	long end = i + 1;

	while (end < n && end - i < BILLING_BATCH &&
	       w[end].tenant == w[i].tenant)
		end++;
	return end;
}

static void show_progress(const struct totals *tot, bool tty, bool last)
{
	char bar[BILLING_BAR + 1];
	long filled, i;

	if (tty) {
		filled = tot->clients ? tot->done * BILLING_BAR / tot->clients :
					BILLING_BAR;
		for (i = 0; i < BILLING_BAR; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[BILLING_BAR] = '\0';
		fprintf(stderr,
			"\rbilling-run: [%s] %ld/%ld clients, %ld invoices%s",
			bar, tot->done, tot->clients, tot->invoices,
			last ? "\n" : "");
		fflush(stderr);
	} else if (tot->done % BILLING_LOG_EVERY == 0 && !last) {
		log_info("billing-run: %ld/%ld clients, %ld invoices",
			 tot->done, tot->clients, tot->invoices);
	}
}

static void print_summary(const struct totals *tot, const struct options *o,
			  double ms)
{
	char total[32];
	long i;

	money_display(tot->amount, total, sizeof(total));
	if (o->dry_run)
		printf("billing-run: dry run: %ld client%s, %ld invoice%s would"
		       " be created, total %s; nothing written in %.0f ms\n",
		       tot->clients, tot->clients == 1 ? "" : "s",
		       tot->would_bill, tot->would_bill == 1 ? "" : "s", total,
		       ms);
	else
		printf("billing-run: %ld client%s, %ld invoice%s created,"
		       " total %s in %.0f ms\n",
		       tot->clients, tot->clients == 1 ? "" : "s",
		       tot->invoices, tot->invoices == 1 ? "" : "s", total, ms);
	if (tot->failed == 0)
		return;
	printf("billing-run: %ld client%s failed (see the log), the others"
	       " were billed: client",
	       tot->failed, tot->failed == 1 ? "" : "s");
	for (i = 0; i < tot->failed && i < BILLING_MAX_NAMED; i++)
		printf("%s %" PRId64, i ? "," : "", tot->named[i]);
	printf("%s\n", tot->failed > BILLING_MAX_NAMED ? ", ..." : "");
}

int billing_run(const struct config *conf, int argc, char **argv)
{
	const char *params[1];
	struct totals tot = { 0 };
	struct options o;
	struct timespec t0;
	struct work *w = NULL;
	struct arena *a;
	PGresult *res;
	enum td_err err;
	struct db db;
	bool tty, alone, locked;
	long i, j, end;
	int rc = 1;

	if (!parse_args(argc, argv, &o))
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tty = isatty(STDERR_FILENO);
	db_init(&db, conf->database_url, conf->db_timeout);
	a = arena_new();
	if (o.date != NULL) {
		params[0] = o.date;
		err = db_exec(&db, a, sql_date, 1, params, &res);
		if (err == TD_EINPUT) {
			fprintf(stderr,
				"tallydesk: billing-run: --date: '%s' is not"
				" a date (YYYY-MM-DD)\n",
				o.date);
			rc = 2;
			goto out;
		}
		if (err != TD_OK) {
			log_error("billing-run: cannot reach the database: %s",
				  db.errmsg);
			goto out;
		}
		o.date = arena_strdup(a, db_text(res, 0, 0));
	}
	if (!o.dry_run) {
		if (take_lock(&db, a, &locked) != TD_OK) {
			log_error("billing-run: cannot take the lock: %s",
				  db.errmsg);
			goto out;
		}
		if (!locked) {
			printf("billing-run: another run holds the lock;"
			       " nothing to do\n");
			rc = 0;
			goto out;
		}
	}
	if (db_exec(&db, a, sql_async, 0, NULL, NULL) != TD_OK) {
		log_error("billing-run: cannot set up the session: %s",
			  db.errmsg);
		goto out;
	}
	w = list_work(&db, a, &o, &tot.clients);
	if (w == NULL)
		goto out;
	for (i = 0; i < tot.clients; i = end) {
		end = batch_end(w, tot.clients, i);
		if (i > 0)
			db_exec(&db, a, sql_replan, 0, NULL, NULL);
		alone = !stage_clients(&db, &w[i], end - i, &o);
		for (j = i; j < end; j++) {
			if (!bill_client(&db, &w[j], &o, alone, &tot)) {
				if (tot.failed < BILLING_MAX_NAMED)
					tot.named[tot.failed] = w[j].client;
				tot.failed++;
			}
			tot.done++;
			show_progress(&tot, tty, false);
		}
	}
	if (tot.clients > 0)
		show_progress(&tot, tty, true);
	if (!o.dry_run)
		db_exec(&db, a, sql_unlock, 0, NULL, NULL);
	print_summary(&tot, &o, ms_since(&t0));
	rc = tot.failed ? 1 : 0;
out:
	free(w);
	arena_free(a);
	db_release(&db);
	return rc;
}
