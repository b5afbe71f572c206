/* seed.c: the demo tenant that `tallydesk seed-demo` creates */
#include "config.h"

#include <inttypes.h>
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

static const struct {
	const char *email, *name, *role;
} people[] = {
	{ SEED_DEMO_EMAIL, "Alex Admin", "admin" },
	{ "morgan@demo.tallydesk.test", "Morgan Manager", "manager" },
	{ "tess@demo.tallydesk.test", "Tess Technician", "technician" },
	{ "tom@demo.tallydesk.test", "Tom Technician", "technician" },
};

int seed_demo(const struct config *conf, const char *password)
{
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	PGresult *res;
	char hash[256];
	const char *params[4];
	size_t i;
	int rc = 1, created = 0;

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
	if (db_tx_commit(&db, r.arena) != TD_OK)
		goto fail;
	printf("demo tenant '%s' ready (%d users created now)\n",
	       SEED_DEMO_SLUG, created);
	rc = 0;
	goto out;
fail:
	fprintf(stderr, "tallydesk: cannot seed the demo tenant: %s\n",
		db.errmsg);
out:
	cli_req_release(&r);
	return rc;
}
