/* cli.c: administration from the command line (tenant, user, apikey) */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "arena.h"
#include "audit.h"
#include "auth.h"
#include "cli.h"
#include "conf.h"
#include "db.h"
#include "req.h"
#include "banned.h"

static const char sql_tenant_find[] =
	"SELECT set_config('app.tenant_slug', $1, true),"
	" (SELECT id FROM tenants WHERE slug = $1)";
static const char sql_tenant_next[] =
	"SELECT nextval(pg_get_serial_sequence('tenants', 'id'))";
static const char sql_set_tenant[] =
	"SELECT set_config('app.tenant_id', $1, true)";
static const char sql_tenant_new[] =
	"INSERT INTO tenants (id, slug, name, currency, time_zone)"
	" OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5)";
static const char sql_invite_new[] =
	"INSERT INTO invites (tenant_id, email, role, token_hash, link, expires_at)"
	" VALUES (app_tenant(), $1, $2, $3, $4, now() + interval '7 days')"
	" RETURNING id";
static const char sql_apikey_new[] =
	"INSERT INTO api_keys (tenant_id, name, role, prefix, key_hash)"
	" VALUES (app_tenant(), $1, $2, $3, $4) RETURNING id";

void cli_req_init(struct req *r, struct worker_ctx *ctx, struct db *db,
		  const struct config *conf, const char *who)
{
	memset(ctx, 0, sizeof(*ctx));
	memset(r, 0, sizeof(*r));
	ctx->conf = conf;
	ctx->db = db;
	db_init(db, conf->database_url, conf->db_timeout);
	r->arena = arena_new();
	r->ctx = ctx;
	r->db = db;
	r->method_name = "CLI";
	r->path = who;
	r->remote_addr = "";
	r->user_agent = "tallydesk";
	snprintf(r->request_id, sizeof(r->request_id), "cli-%ld",
		 (long)getpid());
	r->auth.name = who;
}

void cli_req_release(struct req *r)
{
	struct db *db = r->db;

	arena_free(r->arena);
	db_release(db);
}

static int64_t bind_tenant(struct req *r, int64_t id)
{
	const char *params[1] = { req_id(r, id) };

	if (req_query(r, sql_set_tenant, 1, params, NULL) != TD_OK)
		return 0;
	r->auth.tenant_id = id;
	return id;
}

int64_t cli_use_tenant(struct req *r, const char *slug)
{
	const char *params[1] = { slug };
	PGresult *res;

	if (db_tx_begin(r->db, r->arena, 0) != TD_OK) {
		fprintf(stderr,
			"tallydesk: cannot connect to the database: %s\n",
			r->db->errmsg);
		return 0;
	}
	if (req_query(r, sql_tenant_find, 1, params, &res) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot look up tenant '%s': %s\n",
			slug, r->db->errmsg);
		return 0;
	}
	if (db_isnull(res, 0, 1)) {
		fprintf(stderr, "tallydesk: no tenant '%s'\n", slug);
		return 0;
	}
	return bind_tenant(r, db_int(res, 0, 1));
}

int64_t cli_tenant_create(struct req *r, const char *slug, const char *name,
			  const char *currency, const char *time_zone,
			  bool exist_ok)
{
	const char *params[5] = { slug };
	PGresult *res;
	int64_t id;

	if (req_query(r, sql_tenant_find, 1, params, &res) != TD_OK)
		goto fail;
	if (!db_isnull(res, 0, 1)) {
		if (exist_ok)
			return bind_tenant(r, db_int(res, 0, 1));
		fprintf(stderr, "tallydesk: a tenant '%s' exists already\n",
			slug);
		return 0;
	}
	/* Under row-level security a new row must carry the tenant it is for.
	 */
	if (req_query(r, sql_tenant_next, 0, NULL, &res) != TD_OK)
		goto fail;
	id = db_int(res, 0, 0);
	if (bind_tenant(r, id) == 0)
		goto fail;
	params[0] = req_id(r, id);
	params[1] = slug;
	params[2] = name;
	params[3] = currency;
	params[4] = time_zone;
	if (req_query(r, sql_tenant_new, 5, params, NULL) != TD_OK)
		goto fail;
	if (audit_write(r, "tenant.create", "tenant", id, NULL, NULL) != TD_OK)
		goto fail;
	return id;
fail:
	fprintf(stderr, "tallydesk: cannot create tenant '%s': %s\n", slug,
		r->db->errmsg);
	return 0;
}

/* --name value pairs after the action; NULL for unknown or repeated ones. */
struct opts {
	const char *names[8];
	const char *values[8];
	int n;
};

static int parse_opts(struct opts *o, int argc, char **argv,
		      const char *const *allowed)
{
	int i, j;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc; i++) {
		for (j = 0; allowed[j] != NULL; j++)
			if (!strcmp(argv[i], allowed[j]))
				break;
		if (allowed[j] == NULL || i + 1 == argc || o->n == 8) {
			fprintf(stderr, "tallydesk: %s '%s'\n",
				allowed[j] == NULL ? "unknown option" :
						     "a value is missing after",
				argv[i]);
			return 2;
		}
		o->names[o->n] = argv[i];
		o->values[o->n++] = argv[++i];
	}
	return 0;
}

static const char *opt(const struct opts *o, const char *name, const char *dflt)
{
	int i;

	for (i = 0; i < o->n; i++)
		if (!strcmp(o->names[i], name))
			return o->values[i];
	return dflt;
}

static int need(const struct opts *o, const char *const *names)
{
	int i;

	for (i = 0; names[i] != NULL; i++) {
		if (opt(o, names[i], NULL) == NULL) {
			fprintf(stderr, "tallydesk: '%s' is required\n",
				names[i]);
			return 2;
		}
	}
	return 0;
}

static int finish(struct req *r, int rc)
{
	if (rc == 0 && db_tx_commit(r->db, r->arena) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot commit: %s\n",
			r->db->errmsg);
		rc = 1;
	}
	cli_req_release(r);
	return rc;
}

/* tallydesk tenant create --slug S --name N [--currency C] [--time-zone Z] */
int cli_tenant(const struct config *conf, int argc, char **argv)
{
	static const char *const allowed[] = { "--slug", "--name", "--currency",
					       "--time-zone", NULL };
	static const char *const required[] = { "--slug", "--name", NULL };
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	struct opts o;
	int64_t id;

	if (argc < 1 || strcmp(argv[0], "create") != 0) {
		fprintf(stderr,
			"usage: tallydesk tenant create --slug SLUG --name NAME"
			" [--currency GBP] [--time-zone Europe/London]\n");
		return 2;
	}
	if (parse_opts(&o, argc - 1, argv + 1, allowed) || need(&o, required))
		return 2;
	cli_req_init(&r, &ctx, &db, conf, "tenant-create");
	if (db_tx_begin(&db, r.arena, 0) != TD_OK) {
		fprintf(stderr,
			"tallydesk: cannot connect to the database: %s\n",
			db.errmsg);
		return finish(&r, 1);
	}
	id = cli_tenant_create(&r, opt(&o, "--slug", ""), opt(&o, "--name", ""),
			       opt(&o, "--currency", "GBP"),
			       opt(&o, "--time-zone", "Europe/London"), false);
	if (id == 0)
		return finish(&r, 1);
	printf("tenant '%s' created (id %" PRId64
	       "); invite its first admin with:\n"
	       "  tallydesk user invite --tenant %s --email EMAIL --role admin\n",
	       opt(&o, "--slug", ""), id, opt(&o, "--slug", ""));
	return finish(&r, 0);
}

/* tallydesk user invite --tenant S --email E --role R: prints the link */
int cli_user(const struct config *conf, int argc, char **argv)
{
	static const char *const allowed[] = { "--tenant", "--email", "--role",
					       NULL };
	static const char *const required[] = { "--tenant", "--email", "--role",
						NULL };
	char token[AUTH_TOKEN_LEN + 1];
	const char *params[4], *email, *link;
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	struct opts o;
	PGresult *res;
	int64_t tenant;

	if (argc < 1 || strcmp(argv[0], "invite") != 0) {
		fprintf(stderr,
			"usage: tallydesk user invite --tenant SLUG --email EMAIL"
			" --role admin|manager|technician\n");
		return 2;
	}
	if (parse_opts(&o, argc - 1, argv + 1, allowed) || need(&o, required))
		return 2;
	if (auth_role_parse(opt(&o, "--role", "")) == 0) {
		fprintf(stderr,
			"tallydesk: --role must be admin, manager or technician\n");
		return 2;
	}
	email = opt(&o, "--email", "");
	if (strchr(email, '@') == NULL) {
		fprintf(stderr, "tallydesk: '%s' is not an email address\n",
			email);
		return 2;
	}
	cli_req_init(&r, &ctx, &db, conf, "user-invite");
	tenant = cli_use_tenant(&r, opt(&o, "--tenant", ""));
	if (tenant == 0 || !auth_new_token(token))
		return finish(&r, 1);
	link = arena_printf(r.arena, "%s/invite/%" PRId64 ".%s", conf->base_url,
			    tenant, token);
	params[0] = email;
	params[1] = opt(&o, "--role", "");
	params[2] = auth_token_hash(&r, token);
	params[3] = link;
	if (req_query(&r, sql_invite_new, 4, params, &res) != TD_OK ||
	    audit_write(&r, "user.invite", "invite", db_int(res, 0, 0), NULL,
			NULL) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot create the invite: %s\n",
			db.errmsg);
		return finish(&r, 1);
	}
	printf("%s\n", link);
	return finish(&r, 0);
}

/* tallydesk apikey create --tenant S --name N --role R: prints the key alone */
int cli_apikey(const struct config *conf, int argc, char **argv)
{
	static const char *const allowed[] = { "--tenant", "--name", "--role",
					       NULL };
	static const char *const required[] = { "--tenant", "--name", "--role",
						NULL };
	char token[AUTH_TOKEN_LEN + 1], out[128];
	const char *params[4], *key;
	struct worker_ctx ctx;
	struct db db;
	struct req r;
	struct opts o;
	PGresult *res;
	int64_t tenant;

	if (argc < 1 || strcmp(argv[0], "create") != 0) {
		fprintf(stderr,
			"usage: tallydesk apikey create --tenant SLUG --name NAME"
			" --role admin|manager|technician\n");
		return 2;
	}
	if (parse_opts(&o, argc - 1, argv + 1, allowed) || need(&o, required))
		return 2;
	if (auth_role_parse(opt(&o, "--role", "")) == 0) {
		fprintf(stderr,
			"tallydesk: --role must be admin, manager or technician\n");
		return 2;
	}
	cli_req_init(&r, &ctx, &db, conf, "apikey-create");
	tenant = cli_use_tenant(&r, opt(&o, "--tenant", ""));
	if (tenant == 0 || !auth_new_token(token))
		return finish(&r, 1);
	key = arena_printf(r.arena, "td_%" PRId64 "_%s", tenant, token);
	params[0] = opt(&o, "--name", "");
	params[1] = opt(&o, "--role", "");
	params[2] = arena_strndup(r.arena, key, 12);
	params[3] = auth_token_hash(&r, key);
	if (req_query(&r, sql_apikey_new, 4, params, &res) != TD_OK ||
	    audit_write(&r, "apikey.create", "apikey", db_int(res, 0, 0), NULL,
			NULL) != TD_OK) {
		fprintf(stderr, "tallydesk: cannot create the API key: %s\n",
			db.errmsg);
		return finish(&r, 1);
	}
	snprintf(out, sizeof(out), "%s", key); /* the arena goes in finish() */
	if (finish(&r, 0) != 0)
		return 1;
	printf("%s\n", out);
	return 0;
}
