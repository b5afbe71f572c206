/* billing.c: the billing-run batch — each due contract period invoiced once */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#	include <sys/prctl.h>
#endif

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
#define BILLING_BATCH_MIN 20	    /* ... at least, when shared out */
#define BILLING_SHARES	  16	    /* batches per worker, when shared out */
#define BILLING_LOCK_WAIT 30	    /* tries for the lock, 100 ms apart */
#define BILLING_JOBS	  2	    /* worker processes (--jobs) */
#define BILLING_MAX_JOBS  16

static const char sql_lock[] = "SELECT pg_try_advisory_lock(" BILLING_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" BILLING_LOCK ")";
static const char sql_date[] = "SELECT $1::date::text";
/*
 * Each session of a run (the parent's, each worker's): without waiting
 * for the disk at commit (a lost commit, PostgreSQL crashing within a
 * fraction of a second of it, is billed again by the next run: periods
 * are idempotent; saves a disk flush per client), and named, so that
 * pg_stat_activity tells a run's sessions apart.
 */
static const char sql_session[] =
	"SELECT set_config('synchronous_commit', 'off', false),"
	" set_config('application_name', 'tallydesk billing-run', false)";
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
 * (After every batch: planning again only after batches 1, 2, 4, 8, ...
 * was no faster in bench/billing.)
 */
static const char sql_replan[] = "DISCARD PLANS";

struct options {
	const char *date; /* NULL: each tenant's today */
	const char *client;
	bool dry_run;
	int jobs;
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
	long shown; /* clients done when the bar was last drawn */
};

/*
 * What became of one client, as a worker tells its parent: this head,
 * then `report` bytes of text for people (a dry run's).
 */
struct outcome {
	int64_t client;
	int64_t amount; /* minor units */
	int32_t ok;
	int32_t invoices;
	int32_t would_bill;
	uint32_t report;
};

/*
 * Where outcomes go: counted here (fd -1: one process does it all), or
 * written to the parent through a worker's pipe.
 */
struct sink {
	int fd;
	struct totals *tot;
	bool tty;
};

/* A worker process: its pipes and the batch w[start..end) it was given. */
struct job {
	pid_t pid;
	int cmd; /* parent writes a struct span; closed: no more work */
	int out; /* worker writes struct outcome (+ report); EOF: gone */
	long start, end, told;
};

struct span {
	long start, end;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static bool parse_jobs(const char *s, int *jobs)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > BILLING_MAX_JOBS) {
		fprintf(stderr,
			"tallydesk: billing-run: --jobs: '%s' is not a number"
			" from 1 to %d\n",
			s, BILLING_MAX_JOBS);
		return false;
	}
	*jobs = (int)v;
	return true;
}

static bool parse_args(int argc, char **argv, struct options *o)
{
	bool jobs_set = false;
	char *end;
	int i;

	memset(o, 0, sizeof(*o));
	o->jobs = BILLING_JOBS;
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
		} else if (!strcmp(argv[i], "--jobs") && i + 1 < argc &&
			   !jobs_set) {
			jobs_set = true;
			if (!parse_jobs(argv[++i], &o->jobs))
				return false;
		} else if (!strcmp(argv[i], "--dry-run") && !o->dry_run) {
			o->dry_run = true;
		} else {
			fprintf(stderr,
				"tallydesk: billing-run: unexpected argument '%s'\n"
				"usage: tallydesk billing-run [--date YYYY-MM-DD]"
				" [--client ID] [--jobs N] [--dry-run]\n",
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

static void show_progress(struct totals *tot, bool tty, bool last)
{
	char bar[BILLING_BAR + 1];
	long filled, i;

	if (tty) {
		/* drawn every 0.1 %: a terminal is slower than the batch */
		if (!last && tot->done < tot->clients &&
		    (tot->done - tot->shown) * 1000 < tot->clients)
			return;
		tot->shown = tot->done;
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

/* Counts one client's outcome into tot, prints its report. */
static void count_outcome(struct totals *tot, const struct outcome *r,
			  const char *report, bool tty)
{
	if (*report) {
		if (tty)
			fprintf(stderr, "\r\033[K");
		printf("%s\n", report);
	}
	if (r->ok) {
		tot->invoices += r->invoices;
		tot->would_bill += r->would_bill;
		tot->amount += r->amount;
	} else {
		if (tot->failed < BILLING_MAX_NAMED)
			tot->named[tot->failed] = r->client;
		tot->failed++;
	}
	tot->done++;
	show_progress(tot, tty, false);
}

static bool write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t k;

	while (n > 0) {
		k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/* False at end of file (nothing read) or on a short read. */
static bool read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	ssize_t k;

	while (n > 0) {
		k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p += k;
		n -= (size_t)k;
	}
	return true;
}

/*
 * Passes one client's outcome on. A worker whose parent is gone cannot
 * tell it: it stops (the client itself is whole, one transaction).
 */
static void tell(struct sink *s, const struct outcome *r, const char *report)
{
	struct outcome head = *r;

	if (s->fd < 0) {
		count_outcome(s->tot, r, report, s->tty);
		return;
	}
	head.report = (uint32_t)strlen(report);
	if (!write_all(s->fd, &head, sizeof(head)) ||
	    !write_all(s->fd, report, head.report))
		_exit(1);
}

/*
 * Bills (or previews) one client in its own transaction from what was
 * staged, or when `alone` staging it first in that same transaction, and
 * tells the sink how it went.
 */
static void bill_client(struct db *db, const struct work *w,
			const struct options *o, bool alone, struct sink *s)
{
	const char *params[3];
	char tenant[24], client[24];
	struct outcome r = { .client = w->client };
	const char *report = "";
	struct arena *a;
	PGresult *res;
	int64_t amount;

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
	/* (a dry run's transaction is rolled back by arena_free) */
	if (alone && !o->dry_run && db_tx_commit(db, a) != TD_OK) {
		log_error("billing-run: client %" PRId64 ": cannot commit: %s",
			  w->client, db->errmsg);
		goto out;
	}
	if (o->dry_run)
		report = db_text(res, 0, 3);
	r.invoices = (int32_t)db_int(res, 0, 0);
	r.would_bill = (int32_t)db_int(res, 0, 1);
	r.amount = amount;
	r.ok = 1;
out:
	tell(s, &r, report);
	arena_free(a); /* rolls back a transaction left open */
}

/* Computes, then bills client by client, w[0..n) (one tenant). */
static void bill_batch(struct db *db, const struct work *w, long n,
		       const struct options *o, struct sink *s)
{
	bool alone = !stage_clients(db, w, n, o);
	long i;

	for (i = 0; i < n; i++)
		bill_client(db, &w[i], o, alone, s);
}

/* The next batch from *next: up to size clients, one tenant. */
static bool next_batch(const struct work *w, long n, long size, long *next,
		       struct span *sp)
{
	long end;

	if (*next >= n)
		return false;
	end = *next + 1;
	while (end < n && end - *next < size &&
	       w[end].tenant == w[*next].tenant)
		end++;
	sp->start = *next;
	sp->end = end;
	*next = end;
	return true;
}

/* Batches of clients per statement: smaller when shared among workers. */
static long batch_size(long clients, int jobs)
{
	long size;

	if (jobs <= 1)
		return BILLING_BATCH;
	size = (clients + (long)jobs * BILLING_SHARES - 1) /
	       ((long)jobs * BILLING_SHARES);
	if (size < BILLING_BATCH_MIN)
		size = BILLING_BATCH_MIN;
	return size < BILLING_BATCH ? size : BILLING_BATCH;
}

/* A fresh session of the batch's own: no synchronous commit. */
static void open_session(struct db *db, const struct config *conf,
			 struct arena *a)
{
	db_init(db, conf->database_url, conf->db_timeout);
	if (db_exec(db, a, sql_session, 0, NULL, NULL) != TD_OK)
		log_error("billing-run: cannot set up the session: %s",
			  db->errmsg);
}

/*
 * A worker process: bills the batches its parent sends until the parent
 * closes the pipe. Its own connection, its own staging tables.
 */
static int worker_main(const struct config *conf, const struct work *w,
		       const struct options *o, int cmd, int out)
{
	struct sink s = { .fd = out };
	struct span sp;
	struct arena *a = arena_new();
	struct db db;
	long done = 0;

	open_session(&db, conf, a);
	while (read_all(cmd, &sp, sizeof(sp))) {
		if (done > 0)
			db_exec(&db, a, sql_replan, 0, NULL, NULL);
		bill_batch(&db, &w[sp.start], sp.end - sp.start, o, &s);
		done++;
	}
	arena_free(a);
	db_release(&db);
	return 0;
}

/*
 * Forks worker `no`. The child closes what is the parent's (its
 * connection's socket, the other workers' pipes) and dies with its
 * parent, so a killed run leaves no worker behind. -1 on failure.
 */
static pid_t spawn_job(const struct config *conf, struct db *parent_db,
		       const struct work *w, const struct options *o,
		       struct job *jobs, int no)
{
	int cmd[2], out[2], i, rc;
	pid_t parent = getpid(), pid;

	if (pipe(cmd) != 0)
		return -1;
	if (pipe(out) != 0) {
		close(cmd[0]);
		close(cmd[1]);
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		close(cmd[0]);
		close(cmd[1]);
		close(out[0]);
		close(out[1]);
		return -1;
	}
	if (pid == 0) {
#ifdef __linux__
		prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
		if (getppid() != parent)
			_exit(1);
		signal(SIGPIPE, SIG_DFL);
		if (parent_db->conn != NULL)
			close(PQsocket(parent_db->conn));
		for (i = 0; i < no; i++) {
			if (jobs[i].cmd >= 0)
				close(jobs[i].cmd);
			if (jobs[i].out >= 0)
				close(jobs[i].out);
		}
		close(cmd[1]);
		close(out[0]);
		rc = worker_main(conf, w, o, cmd[0], out[1]);
		_exit(rc);
	}
	close(cmd[0]);
	close(out[1]);
	jobs[no].pid = pid;
	jobs[no].cmd = cmd[1];
	jobs[no].out = out[0];
	jobs[no].start = jobs[no].end = jobs[no].told = 0;
	return pid;
}

/* The clients w[from..to) did not bill: a worker died with them. */
static void count_lost(struct totals *tot, const struct work *w, long from,
		       long to, bool tty)
{
	struct outcome r = { 0 };
	long i;

	for (i = from; i < to; i++) {
		r.client = w[i].client;
		count_outcome(tot, &r, "", tty);
	}
}

/* Gives job j its next batch, or tells it there is no more. */
static void feed_job(struct job *j, const struct work *w, long n, long size,
		     long *next)
{
	struct span sp;

	if (j->cmd < 0)
		return;
	if (next_batch(w, n, size, next, &sp)) {
		if (write_all(j->cmd, &sp, sizeof(sp))) {
			j->start = sp.start;
			j->end = sp.end;
			j->told = 0;
			return;
		}
		*next = sp.start; /* the worker is gone: left for another */
	}
	close(j->cmd);
	j->cmd = -1;
}

/*
 * Reads one outcome from job j into tot; false when the worker is gone
 * (what it had not billed of its batch counts as failed).
 */
static bool hear_job(struct job *j, const struct work *w, struct totals *tot,
		     bool tty)
{
	struct outcome r;
	char *report;
	bool ok;

	if (!read_all(j->out, &r, sizeof(r))) {
		if (j->told < j->end - j->start) {
			log_error("billing-run: worker %ld stopped before"
				  " client %" PRId64,
				  (long)j->pid, w[j->start + j->told].client);
			count_lost(tot, w, j->start + j->told, j->end, tty);
		}
		j->told = j->end - j->start;
		return false;
	}
	report = xmalloc((size_t)r.report + 1);
	ok = read_all(j->out, report, r.report);
	report[ok ? r.report : 0] = '\0';
	count_outcome(tot, &r, report, tty);
	free(report);
	j->told++;
	return true;
}

/*
 * Shares the clients w[0..n) out to `njobs` worker processes, a batch at
 * a time, and counts what they tell into tot. False if not one worker
 * could be started (nothing was billed then).
 */
static bool run_jobs(const struct config *conf, struct db *db,
		     const struct work *w, long n, const struct options *o,
		     int njobs, struct totals *tot, bool tty)
{
	struct job jobs[BILLING_MAX_JOBS];
	struct pollfd pfd[BILLING_MAX_JOBS];
	int which[BILLING_MAX_JOBS];
	long size = batch_size(n, njobs), next = 0;
	int i, k, live = 0, status;
	void (*was)(int) = signal(SIGPIPE, SIG_IGN);

	for (i = 0; i < njobs; i++) {
		jobs[i].cmd = jobs[i].out = -1;
		jobs[i].pid = -1;
	}
	for (i = 0; i < njobs; i++) {
		if (spawn_job(conf, db, w, o, jobs, i) < 0) {
			log_error("billing-run: cannot start worker %d: %s", i,
				  strerror(errno));
			continue;
		}
		live++;
		feed_job(&jobs[i], w, n, size, &next);
	}
	if (live == 0) {
		signal(SIGPIPE, was);
		return false;
	}
	while (live > 0) {
		for (i = 0, k = 0; i < njobs; i++) {
			if (jobs[i].out < 0)
				continue;
			pfd[k].fd = jobs[i].out;
			pfd[k].events = POLLIN;
			which[k++] = i;
		}
		if (poll(pfd, (nfds_t)k, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("billing-run: poll: %s", strerror(errno));
			break;
		}
		for (i = 0; i < k; i++) {
			struct job *j = &jobs[which[i]];

			if (pfd[i].revents == 0)
				continue;
			if (!hear_job(j, w, tot, tty)) {
				close(j->out);
				j->out = -1;
				if (j->cmd >= 0)
					close(j->cmd);
				j->cmd = -1;
				live--;
				continue;
			}
			if (j->told == j->end - j->start)
				feed_job(j, w, n, size, &next);
		}
	}
	for (i = 0; i < njobs; i++) {
		if (jobs[i].pid <= 0)
			continue;
		if (jobs[i].out >= 0) { /* not heard to the end */
			count_lost(tot, w, jobs[i].start + jobs[i].told,
				   jobs[i].end, tty);
			close(jobs[i].out);
		}
		if (jobs[i].cmd >= 0)
			close(jobs[i].cmd);
		while (waitpid(jobs[i].pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	signal(SIGPIPE, was);
	count_lost(tot, w, next, n, tty); /* every worker gone early */
	return true;
}

/* One process bills w[0..n) on the run's own connection. */
static void run_here(struct db *db, struct arena *a, const struct work *w,
		     long n, const struct options *o, struct totals *tot,
		     bool tty)
{
	struct sink s = { .fd = -1, .tot = tot, .tty = tty };
	struct span sp;
	long next = 0, done = 0;

	while (next_batch(w, n, BILLING_BATCH, &next, &sp)) {
		if (done > 0)
			db_exec(db, a, sql_replan, 0, NULL, NULL);
		bill_batch(db, &w[sp.start], sp.end - sp.start, o, &s);
		done++;
	}
}

/* How many workers are worth starting for n clients. */
static int jobs_for(const struct work *w, long n, const struct options *o)
{
	long size = batch_size(n, o->jobs), next = 0, batches = 0;
	struct span sp;

	while (batches < o->jobs && next_batch(w, n, size, &next, &sp))
		batches++;
	return (int)batches;
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
	bool tty, locked;
	int rc = 1, njobs;

	if (!parse_args(argc, argv, &o))
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tty = isatty(STDERR_FILENO);
	a = arena_new();
	open_session(&db, conf, a);
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
	w = list_work(&db, a, &o, &tot.clients);
	if (w == NULL)
		goto out;
	njobs = jobs_for(w, tot.clients, &o);
	if (njobs <= 1 ||
	    !run_jobs(conf, &db, w, tot.clients, &o, njobs, &tot, tty))
		run_here(&db, a, w, tot.clients, &o, &tot, tty);
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
