/* seed.c: the demo tenant that `tallydesk seed-demo` creates */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <libpq-fe.h>
#include <openssl/rand.h>

#include "arena.h"
#include "conf.h"
#include "db.h"
#include "seed.h"
#include "banned.h"

static const char sql_tenant[] =
	"INSERT INTO tenants (slug, name, currency, time_zone)"
	" VALUES ($1, 'Northwind IT Services', 'GBP', 'Europe/London')"
	" ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id";
static const char sql_user[] =
	"INSERT INTO users (tenant_id, email, name, role, password_hash)"
	" SELECT $1, $2, $3, $4, $5"
	" WHERE NOT EXISTS (SELECT 1 FROM users"
	"  WHERE tenant_id = $1 AND lower(email) = lower($2))"
	" RETURNING id";
static const char sql_audit[] =
	"INSERT INTO audit_log (tenant_id, actor, action, object_type, object_id,"
	" detail) VALUES ($1, 'system:seed-demo', $2, 'user', $3, '{}')";

static const struct {
	const char *email, *name, *role;
} people[] = {
	{ SEED_DEMO_EMAIL, "Alex Admin", "admin" },
	{ "morgan@demo.tallydesk.test", "Morgan Manager", "manager" },
	{ "tess@demo.tallydesk.test", "Tess Technician", "technician" },
	{ "tom@demo.tallydesk.test", "Tom Technician", "technician" },
};

/* An argon2id encoded hash; t=3, m=64 MiB, p=1 (the login issue tunes it). */
static bool hash_password(const char *pw, char *out, size_t outlen)
{
	unsigned char salt[16];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return false;
	return argon2id_hash_encoded(3, 1 << 16, 1, pw, strlen(pw), salt,
				     sizeof(salt), 32, out, outlen) == ARGON2_OK;
}

int seed_demo(const struct config *conf, const char *password)
{
	struct arena *a = arena_new();
	struct db db;
	PGresult *res;
	char hash[256];
	const char *tenant, *params[5];
	size_t i;
	int rc = 1, created = 0;

	db_init(&db, conf->database_url, conf->db_timeout);
	if (!hash_password(password, hash, sizeof(hash))) {
		fprintf(stderr, "tallydesk: cannot hash the demo password\n");
		goto out;
	}
	params[0] = SEED_DEMO_SLUG;
	if (db_tx_begin(&db, a, 0) != TD_OK ||
	    db_exec(&db, a, sql_tenant, 1, params, &res) != TD_OK)
		goto fail;
	tenant = arena_strdup(a, db_text(res, 0, 0));
	for (i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
		params[0] = tenant;
		params[1] = people[i].email;
		params[2] = people[i].name;
		params[3] = people[i].role;
		params[4] = hash;
		if (db_exec(&db, a, sql_user, 5, params, &res) != TD_OK)
			goto fail;
		if (PQntuples(res) == 0)
			continue;
		created++;
		params[1] = "user.create";
		params[2] = db_text(res, 0, 0);
		if (db_exec(&db, a, sql_audit, 3, params, NULL) != TD_OK)
			goto fail;
	}
	if (db_tx_commit(&db, a) != TD_OK)
		goto fail;
	printf("demo tenant '%s' ready (%d users created now)\n", SEED_DEMO_SLUG,
	       created);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "tallydesk: cannot seed the demo tenant: %s\n", db.errmsg);
out:
	arena_free(a);
	db_release(&db);
	return rc;
}
