/* db.h: one PostgreSQL connection per process, parameterised queries only */
#ifndef TD_DB_H
#define TD_DB_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "err.h"

struct arena;

#define DB_MAX_PREPARED 256

/* A process's connection and the statements prepared on it. */
struct db {
	PGconn *conn;
	char *conninfo;
	char *options; /* the conninfo's options, and ISO dates */
	int timeout;
	bool in_tx;
	/*
	 * The request's transaction ended early (db_exec_batch_end): a later
	 * statement opens a new one bound to tenant_id first.
	 */
	bool reopen;
	int64_t tenant_id;
	int nprepared;
	const char *prepared[DB_MAX_PREPARED]; /* by address of the SQL text */
	char errmsg[512];		       /* last failure, for logs */
};

/* Sets up db for conninfo; connects lazily on first use. */
void db_init(struct db *db, const char *conninfo, int timeout);

/* Closes the connection and frees what db holds. */
void db_release(struct db *db);

/*
 * Makes sure the connection is up, reconnecting if PostgreSQL restarted.
 * TD_EUNAVAIL (message in db->errmsg) if it cannot be reached.
 */
enum td_err db_ensure(struct db *db);

/*
 * Runs sql with n text parameters (NULL entries are SQL NULL). sql must be
 * a string constant: it is prepared once per connection, keyed by its
 * address. The result is cleared when a is freed (when res is NULL it is
 * cleared at once). Errors: TD_ECONFLICT on unique/exclusion violations,
 * TD_EUNAVAIL when the connection is lost, TD_EINPUT on invalid text
 * representation or check violations, TD_EDB otherwise; db->errmsg says
 * what PostgreSQL said.
 */
enum td_err db_exec(struct db *db, struct arena *a, const char *sql, int n,
		    const char *const *params, PGresult **res);

/*
 * BEGIN, and when tenant_id > 0 bind the transaction to it for row-level
 * security. The arena rolls back a transaction still open when it is freed,
 * so an early return is always safe.
 */
enum td_err db_tx_begin(struct db *db, struct arena *a, int64_t tenant_id);

/* One statement of a batch: db_exec's arguments. res may be NULL. */
struct db_stmt {
	const char *sql;
	int n;
	const char *const *params;
	PGresult **res;
};

#define DB_BATCH_MAX 12

/*
 * Runs up to DB_BATCH_MAX statements in order in one round trip (libpq's
 * pipeline mode), for reads that do not depend on each other. Results are
 * kept as db_exec keeps them. The first failure is returned; the
 * statements after it do not run.
 */
enum td_err db_exec_batch(struct db *db, struct arena *a,
			  const struct db_stmt *st, int n);

/*
 * db_tx_begin and then the n statements, all in one round trip: a request
 * binds its transaction and looks up its session at once.
 */
enum td_err db_tx_begin_batch(struct db *db, struct arena *a, int64_t tenant_id,
			      const struct db_stmt *st, int n);
enum td_err db_tx_commit(struct db *db, struct arena *a);

/*
 * The transaction is bound to no tenant any more, nor is one reopened
 * after db_exec_batch_end: for a credential that did not check out.
 */
enum td_err db_tx_unbind(struct db *db, struct arena *a);

/*
 * The statements and COMMIT in one round trip, for a request's last reads:
 * a round trip fewer on every page. A statement after it (a name looked
 * up late, say) opens a new transaction bound to the same tenant, which
 * the request's end commits as usual.
 */
enum td_err db_exec_batch_end(struct db *db, struct arena *a,
			      const struct db_stmt *st, int n);
void db_tx_rollback(struct db *db);

/* Helpers for reading results: value as text ("" for NULL) and as int64. */
const char *db_text(const PGresult *res, int row, int col);
int64_t db_int(const PGresult *res, int row, int col);
bool db_isnull(const PGresult *res, int row, int col);
/* A boolean column: true for PostgreSQL's "t". */
bool db_bool(const PGresult *res, int row, int col);

#endif
