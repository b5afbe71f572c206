/* db.c: one PostgreSQL connection per process, parameterised queries only */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "arena.h"
#include "db.h"
#include "log.h"
#include "banned.h"

/*
 * The operator's options (a conninfo may name some), then ours, which
 * win. ISO dates: the app reads dates and timestamps PostgreSQL writes as
 * text (date::text) whatever DateStyle the server defaults to. And
 * extra_float_digits 1 (PostgreSQL 12's default): float8 is then written
 * as the shortest text that reads back exactly, so the queue's update and
 * due times (date_part seconds) keep their microseconds, which its
 * cursor must match exactly; 0 or less would round them to 15 digits.
 */
static char *conn_options(const char *conninfo)
{
	static const char ours[] = "-c datestyle=ISO,YMD"
				   " -c extra_float_digits=1";
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL), *o;
	const char *theirs = NULL;
	char *s;
	size_t n;

	for (o = opts; o != NULL && o->keyword != NULL; o++)
		if (!strcmp(o->keyword, "options") && o->val != NULL &&
		    *o->val != '\0')
			theirs = o->val;
	n = (theirs != NULL ? strlen(theirs) + 1 : 0) + sizeof(ours);
	s = xmalloc(n);
	snprintf(s, n, "%s%s%s", theirs != NULL ? theirs : "",
		 theirs != NULL ? " " : "", ours);
	PQconninfoFree(opts);
	return s;
}

void db_init(struct db *db, const char *conninfo, int timeout)
{
	memset(db, 0, sizeof(*db));
	db->conninfo = xstrdup(conninfo);
	db->options = conn_options(conninfo);
	db->timeout = timeout;
}

void db_release(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db->conninfo);
	free(db->options);
	memset(db, 0, sizeof(*db));
}

static void notice_quiet(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgres: %s", msg);
}

enum td_err db_ensure(struct db *db)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name",
			       "options", NULL };
	const char *vals[5];
	char timeout[16];

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return TD_OK;
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->nprepared = 0;
	db->in_tx = false;
	snprintf(timeout, sizeof(timeout), "%d", db->timeout);
	vals[0] = db->conninfo; /* expanded; later keys override it */
	vals[1] = timeout;
	vals[2] = "tallydesk";
	vals[3] = db->options;
	vals[4] = NULL;
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(db->errmsg, sizeof(db->errmsg), "%s",
			 PQerrorMessage(db->conn));
		db->errmsg[strcspn(db->errmsg, "\n")] = '\0';
		PQfinish(db->conn);
		db->conn = NULL;
		return TD_EUNAVAIL;
	}
	PQsetNoticeProcessor(db->conn, notice_quiet, NULL);
	return TD_OK;
}

static void clear_result(void *p)
{
	PQclear(p);
}

/* The end of a request: its transaction rolls back unless committed. */
static void rollback_if_open(void *p)
{
	struct db *db = p;

	db->reopen = false;
	if (db->in_tx)
		db_tx_rollback(db);
}

/* A statement after db_exec_batch_end: the request goes on in a new one. */
static enum td_err reopen(struct db *db, struct arena *a)
{
	db->reopen = false;
	return db_tx_begin(db, a, db->tenant_id);
}

/* Maps a failed result to our error type and remembers the message. */
static enum td_err classify(struct db *db, const PGresult *res)
{
	const char *state =
		res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg =
		res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn);

	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg);
	db->errmsg[strcspn(db->errmsg, "\n")] = '\0';
	if (PQstatus(db->conn) != CONNECTION_OK)
		return TD_EUNAVAIL;
	if (state == NULL)
		return TD_EDB;
	if (!strcmp(state, "23505") || !strcmp(state, "23P01") ||
	    !strcmp(state, "40001") || !strcmp(state, "55P03"))
		return TD_ECONFLICT;
	if (!strcmp(state, "22P02") || !strcmp(state, "23514") ||
	    !strcmp(state, "22007") || !strcmp(state, "22008") ||
	    !strcmp(state, "22003") || !strcmp(state, "23502"))
		return TD_EINPUT;
	if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
	    !strcmp(state, "57P02") || !strcmp(state, "57P03"))
		return TD_EUNAVAIL;
	return TD_EDB;
}

/* The statement name for sql, preparing it on this connection if new. */
static enum td_err prepared_name(struct db *db, const char *sql, int n,
				 char *name, size_t namelen)
{
	PGresult *res;
	int i;

	for (i = 0; i < db->nprepared; i++) {
		if (db->prepared[i] == sql) {
			snprintf(name, namelen, "s%d", i);
			return TD_OK;
		}
	}
	if (db->nprepared == DB_MAX_PREPARED) {
		name[0] = '\0'; /* unnamed: still parameterised, just not cached
				 */
		return TD_OK;
	}
	snprintf(name, namelen, "s%d", db->nprepared);
	res = PQprepare(db->conn, name, sql, n, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		enum td_err err = classify(db, res);

		PQclear(res);
		return err;
	}
	PQclear(res);
	db->prepared[db->nprepared++] = sql;
	return TD_OK;
}

enum td_err db_exec(struct db *db, struct arena *a, const char *sql, int n,
		    const char *const *params, PGresult **out)
{
	char name[16];
	PGresult *res;
	ExecStatusType st;
	enum td_err err;

	if (out != NULL)
		*out = NULL;
	err = db->reopen && !db->in_tx ? reopen(db, a) : db_ensure(db);
	if (err != TD_OK)
		return err;
	err = prepared_name(db, sql, n, name, sizeof(name));
	if (err != TD_OK)
		return err;
	if (name[0] != '\0')
		res = PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0);
	else
		res = PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL,
				   0);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		err = classify(db, res);
		PQclear(res);
		return err;
	}
	if (out != NULL) {
		arena_defer(a, clear_result, res);
		*out = res;
	} else {
		PQclear(res);
	}
	return TD_OK;
}

static enum td_err simple(struct db *db, const char *sql)
{
	PGresult *res = PQexec(db->conn, sql);
	enum td_err err = TD_OK;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		err = classify(db, res);
	PQclear(res);
	return err;
}

/*
 * Reads a pipeline's results up to its sync, keeping statement i's result
 * in st[i].res; the first failure wins.
 */
static enum td_err collect(struct db *db, struct arena *a,
			   const struct db_stmt *st, int n)
{
	enum td_err err = TD_OK;
	PGresult *res;
	ExecStatusType s;
	int i = 0;

	for (;;) {
		res = PQgetResult(db->conn);
		if (res == NULL) {
			/* the end of statement i's results */
			if (PQstatus(db->conn) != CONNECTION_OK || ++i > n)
				return TD_EUNAVAIL;
			continue;
		}
		s = PQresultStatus(res);
		if (s == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			break;
		}
		if ((s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) &&
		    err == TD_OK && i < n && st[i].res != NULL) {
			arena_defer(a, clear_result, res);
			*st[i].res = res;
			continue;
		}
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK &&
		    err == TD_OK)
			err = s == PGRES_PIPELINE_ABORTED ? TD_EDB :
							    classify(db, res);
		PQclear(res);
	}
	return err;
}

enum td_err db_exec_batch(struct db *db, struct arena *a,
			  const struct db_stmt *st, int n)
{
	char names[DB_BATCH_MAX][16];
	enum td_err err;
	int i, ok = 1;

	if (n < 1 || n > DB_BATCH_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (st[i].res != NULL)
			*st[i].res = NULL;
	err = db->reopen && !db->in_tx ? reopen(db, a) : db_ensure(db);
	for (i = 0; i < n && err == TD_OK; i++)
		err = prepared_name(db, st[i].sql, st[i].n, names[i],
				    sizeof(names[i]));
	if (err != TD_OK)
		return err;
	ok = PQenterPipelineMode(db->conn);
	for (i = 0; i < n && ok == 1; i++)
		ok = names[i][0] != '\0' ?
			     PQsendQueryPrepared(db->conn, names[i], st[i].n,
						 st[i].params, NULL, NULL, 0) :
			     PQsendQueryParams(db->conn, st[i].sql, st[i].n,
					       NULL, st[i].params, NULL, NULL,
					       0);
	if (ok == 1)
		ok = PQpipelineSync(db->conn);
	if (ok != 1) {
		snprintf(db->errmsg, sizeof(db->errmsg), "%s",
			 PQerrorMessage(db->conn));
		err = PQstatus(db->conn) != CONNECTION_OK ? TD_EUNAVAIL :
							    TD_EDB;
	} else {
		err = collect(db, a, st, n);
	}
	if (PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF &&
	    PQexitPipelineMode(db->conn) != 1 && err == TD_OK)
		err = TD_EDB;
	return err;
}

/*
 * BEGIN, the tenant setting and the caller's first reads go to PostgreSQL
 * in one pipeline: one round trip instead of three on every request.
 */
enum td_err db_tx_begin_batch(struct db *db, struct arena *a, int64_t tenant_id,
			      const struct db_stmt *st, int n)
{
	static const char begin[] = "BEGIN";
	static const char set_tenant[] =
		"SELECT set_config('app.tenant_id', $1, true)";
	struct db_stmt all[DB_BATCH_MAX];
	char id[24];
	const char *params[1] = { id };
	enum td_err err;
	int k = 0, i;

	if (n < 0 || n > DB_BATCH_MAX - 2)
		abort();
	db->tenant_id = tenant_id;
	db->reopen = false;
	all[k++] = (struct db_stmt){ begin, 0, NULL, NULL };
	if (tenant_id > 0) {
		snprintf(id, sizeof(id), "%" PRId64, tenant_id);
		all[k++] = (struct db_stmt){ set_tenant, 1, params, NULL };
	}
	for (i = 0; i < n; i++)
		all[k++] = st[i];
	err = db_exec_batch(db, a, all, k);
	if (err != TD_OK) {
		if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
			return TD_EUNAVAIL;
		db->in_tx = PQtransactionStatus(db->conn) != PQTRANS_IDLE;
		if (db->in_tx)
			db_tx_rollback(db);
		return err;
	}
	db->in_tx = true;
	arena_defer(a, rollback_if_open, db);
	return TD_OK;
}

enum td_err db_tx_begin(struct db *db, struct arena *a, int64_t tenant_id)
{
	return db_tx_begin_batch(db, a, tenant_id, NULL, 0);
}

enum td_err db_tx_commit(struct db *db, struct arena *a)
{
	enum td_err err;

	(void)a;
	err = simple(db, "COMMIT");
	db->in_tx = false;
	return err;
}

enum td_err db_tx_unbind(struct db *db, struct arena *a)
{
	static const char no_tenant[] =
		"SELECT set_config('app.tenant_id', '', true)";

	db->tenant_id = 0;
	return db_exec(db, a, no_tenant, 0, NULL, NULL);
}

enum td_err db_exec_batch_end(struct db *db, struct arena *a,
			      const struct db_stmt *st, int n)
{
	static const char commit[] = "COMMIT";
	struct db_stmt all[DB_BATCH_MAX];
	enum td_err err;

	if (n < 0 || n > DB_BATCH_MAX - 1)
		abort();
	if (db->reopen && !db->in_tx) {
		err = reopen(db, a);
		if (err != TD_OK)
			return err;
	}
	if (!db->in_tx)
		return db_exec_batch(db, a, st, n);
	memcpy(all, st, (size_t)n * sizeof(*st));
	all[n] = (struct db_stmt){ commit, 0, NULL, NULL };
	err = db_exec_batch(db, a, all, n + 1);
	/* A failed statement leaves the transaction open, to roll back. */
	db->in_tx = db->conn != NULL &&
		    PQtransactionStatus(db->conn) != PQTRANS_IDLE;
	db->reopen = !db->in_tx;
	return err;
}

void db_tx_rollback(struct db *db)
{
	db->in_tx = false;
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		(void)simple(db, "ROLLBACK");
}

const char *db_text(const PGresult *res, int row, int col)
{
	return PQgetvalue(res, row, col);
}

/*
 * PostgreSQL sends integers as "-?[0-9]+"; up to 18 digits cannot
 * overflow and are read here, anything longer (or odd) by strtoll.
 */
int64_t db_int(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	bool neg = *s == '-';
	const char *digits = s + neg, *p = digits;
	int64_t v = 0;

	while (*p >= '0' && *p <= '9' && p - digits < 18)
		v = v * 10 + (*p++ - '0');
	if (*p >= '0' && *p <= '9')
		return strtoll(s, NULL, 10);
	return neg ? -v : v;
}

bool db_isnull(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) != 0;
}

bool db_bool(const PGresult *res, int row, int col)
{
	return !strcmp(PQgetvalue(res, row, col), "t");
}
