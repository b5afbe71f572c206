/* migrate.c: apply sql/NNNN_*.sql in order, each once */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "arena.h"
#include "conf.h"
#include "db.h"
#include "migrate.h"
#include "sbuf.h"
#include "banned.h"

#define MIGRATE_MAX  1000
#define MIGRATE_LOCK "7342001" /* pg_advisory_lock key for migrations */

static const char sql_create[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" name text PRIMARY KEY,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";
static const char sql_lock[] = "SELECT pg_advisory_lock(" MIGRATE_LOCK ")";
static const char sql_unlock[] = "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")";
static const char sql_applied[] =
	"SELECT name, checksum FROM schema_migrations ORDER BY name";
static const char sql_record[] =
	"INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)";

struct migration {
	char *name;
	char *checksum;
	char *sql;
	bool applied;
};

/* NNNN_word.sql: four digits, an underscore, a name, ".sql". */
static bool valid_name(const char *s)
{
	size_t len = strlen(s), i;

	if (len < 10 || strcmp(s + len - 4, ".sql") != 0 || s[4] != '_')
		return false;
	for (i = 0; i < 4; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct migration *)a)->name,
		      ((const struct migration *)b)->name);
}

static char *sha256_hex(struct arena *a, const char *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char *hex;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex = arena_alloc(a, 2 * mdlen + 1);
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

static char *slurp(struct arena *a, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct sbuf sb;
	char buf[8192];
	size_t n;

	if (f == NULL)
		return NULL;
	sbuf_init(&sb, a, 8192);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_add(&sb, buf, n);
	fclose(f);
	*len = sb.len;
	return sb.buf;
}

/* Reads the migration files, sorted; returns the count or -1. */
static int read_dir(struct arena *a, const char *dir, struct migration *m)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL) {
		fprintf(stderr,
			"tallydesk: cannot open sql directory '%s': %s\n", dir,
			strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len;
		char *path;

		if (!valid_name(de->d_name))
			continue;
		if (n == MIGRATE_MAX) {
			fprintf(stderr, "tallydesk: more than %d migrations\n",
				MIGRATE_MAX);
			closedir(d);
			return -1;
		}
		path = arena_printf(a, "%s/%s", dir, de->d_name);
		m[n].name = arena_strdup(a, de->d_name);
		m[n].sql = slurp(a, path, &len);
		if (m[n].sql == NULL) {
			fprintf(stderr, "tallydesk: cannot read '%s': %s\n",
				path, strerror(errno));
			closedir(d);
			return -1;
		}
		m[n].checksum = sha256_hex(a, m[n].sql, len);
		n++;
	}
	closedir(d);
	qsort(m, (size_t)n, sizeof(m[0]), by_name);
	return n;
}

/* Marks applied files; refuses edited, missing or out-of-order ones. */
static bool check_applied(PGresult *res, struct migration *m, int n)
{
	int rows = PQntuples(res), i, j;
	const char *last = "";

	for (i = 0; i < rows; i++) {
		const char *name = PQgetvalue(res, i, 0);
		const char *sum = PQgetvalue(res, i, 1);
		bool found = false;

		for (j = 0; j < n; j++) {
			if (strcmp(m[j].name, name) != 0)
				continue;
			found = true;
			if (strcmp(m[j].checksum, sum) != 0) {
				fprintf(stderr,
					"tallydesk: migration '%s' was edited after it was applied "
					"(checksum %.12s, applied %.12s); shipped migrations must "
					"never change: add a new one instead\n",
					name, m[j].checksum, sum);
				return false;
			}
			m[j].applied = true;
		}
		if (!found) {
			fprintf(stderr,
				"tallydesk: migration '%s' was applied but its file is missing "
				"from the sql directory\n",
				name);
			return false;
		}
		if (strcmp(name, last) > 0)
			last = name;
	}
	for (j = 0; j < n; j++) {
		if (!m[j].applied && strcmp(m[j].name, last) < 0) {
			fprintf(stderr,
				"tallydesk: migration '%s' is new but sorts before '%s', "
				"which is already applied\n",
				m[j].name, last);
			return false;
		}
	}
	return true;
}

static bool apply(struct db *db, struct arena *a, struct migration *m)
{
	const char *params[2] = { m->name, m->checksum };
	PGresult *res;
	bool good;

	if (db_tx_begin(db, a, 0) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot begin: %s\n", db->errmsg);
		return false;
	}
	/* A file may hold many statements: the simple protocol runs them all.
	 */
	res = PQexec(db->conn, m->sql);
	good = PQresultStatus(res) == PGRES_COMMAND_OK ||
	       PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!good)
		fprintf(stderr, "tallydesk: migration '%s' failed: %s", m->name,
			PQresultErrorMessage(res));
	PQclear(res);
	if (!good) {
		db_tx_rollback(db);
		return false;
	}
	if (db_exec(db, a, sql_record, 2, params, NULL) != TD_OK ||
	    db_tx_commit(db, a) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot record migration '%s': %s\n",
			m->name, db->errmsg);
		db_tx_rollback(db);
		return false;
	}
	return true;
}

int migrate_run(const struct config *conf, bool quiet)
{
	struct arena *a = arena_new();
	struct migration *m = arena_alloc(a, MIGRATE_MAX * sizeof(*m));
	struct db db;
	PGresult *res;
	int n, i, applied = 0, rc = 1;

	/* DDL runs as the owner; the app's own role owns nothing. */
	db_init(&db,
		*conf->migrate_database_url ? conf->migrate_database_url :
					      conf->database_url,
		conf->db_timeout);
	n = read_dir(a, conf->sql_dir, m);
	if (n < 0)
		goto out;
	if (db_ensure(&db) != TD_OK) {
		fprintf(stderr,
			"tallydesk: cannot connect to the database: %s\n",
			db.errmsg);
		goto out;
	}
	if (db_exec(&db, a, sql_lock, 0, NULL, NULL) != TD_OK ||
	    db_exec(&db, a, sql_create, 0, NULL, NULL) != TD_OK ||
	    db_exec(&db, a, sql_applied, 0, NULL, &res) != TD_OK) {
		fprintf(stderr,
			"tallydesk: cannot read schema_migrations: %s\n",
			db.errmsg);
		goto out;
	}
	if (!check_applied(res, m, n))
		goto out;
	for (i = 0; i < n; i++) {
		if (m[i].applied)
			continue;
		if (!apply(&db, a, &m[i]))
			goto out;
		applied++;
		if (!quiet)
			printf("applied %s\n", m[i].name);
	}
	if (!quiet)
		printf("database is up to date: %d migrations, %d applied now\n",
		       n, applied);
	rc = 0;
out:
	if (db.conn != NULL)
		(void)db_exec(&db, a, sql_unlock, 0, NULL, NULL);
	arena_free(a);
	db_release(&db);
	return rc;
}
