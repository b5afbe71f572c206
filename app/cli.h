/* cli.h: administration from the command line (tenant, user, apikey) */
#ifndef TD_CLI_H
#define TD_CLI_H

#include <stdbool.h>
#include <stdint.h>

struct config;
struct db;
struct req;
struct worker_ctx;

/*
 * A request-shaped context for command-line work, so the code that checks
 * passwords, makes tokens and writes the audit log serves both. The caller
 * provides the storage; cli_req_release() frees what it holds.
 */
void cli_req_init(struct req *r, struct worker_ctx *ctx, struct db *db,
		  const struct config *conf, const char *who);
void cli_req_release(struct req *r);

/*
 * Begins a transaction bound to the tenant with this slug; 0 and a message
 * on stderr when there is no such tenant.
 */
int64_t cli_use_tenant(struct req *r, const char *slug);

/*
 * Creates a tenant (or returns the existing one with that slug when
 * exist_ok) inside the request's open transaction and binds the
 * transaction to it. Returns its id, or 0 after printing why.
 */
int64_t cli_tenant_create(struct req *r, const char *slug, const char *name,
			  const char *currency, const char *time_zone,
			  bool exist_ok);

/* The modes: each returns the process exit status. */
int cli_tenant(const struct config *conf, int argc, char **argv);
int cli_user(const struct config *conf, int argc, char **argv);
int cli_apikey(const struct config *conf, int argc, char **argv);

#endif
