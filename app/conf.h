/* conf.h: the one config file, with TALLYDESK_* environment overrides */
#ifndef TD_CONF_H
#define TD_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define CONF_DEFAULT_PATH TD_SYSCONFDIR "/tallydesk/tallydesk.conf"

/* Read-only after conf_load(); the only process-wide state. */
struct config {
	char *path;	    /* the file read, or "" when none */
	char *database_url; /* libpq connection string, as the app's role */
	char *migrate_database_url; /* as the tables' owner, for migrate */
	char *socket;		    /* FastCGI unix socket path */
	unsigned socket_mode;
	int workers;
	char *views_dir;
	char *sql_dir;
	size_t max_body;     /* bytes; larger bodies get 413 */
	size_t max_upload;   /* bytes in one uploaded file */
	int db_timeout;	     /* seconds to wait connecting to PostgreSQL */
	bool secure_cookies; /* false only for plain-http local use */
	int argon2_t;	     /* argon2id passes */
	int argon2_m;	     /* argon2id memory, KiB */
	int argon2_p;	     /* argon2id lanes */
	int session_idle; /* minutes without a request before a session ends */
	int session_max;  /* hours after which a session ends regardless */
	int login_max_failures;	   /* per account within login_window */
	int login_ip_max_failures; /* per address within login_window */
	int login_window;	   /* minutes */
	char *default_workspace;   /* tenant slug the sign-in form offers, or ""
				    */
	char *base_url;		   /* how users reach us, for links in mail */
	char *dns_server; /* "IP[:port]" for mail authentication, "" system */
	enum log_level log_level;
};

/*
 * Loads path (when required is false, a missing file means defaults),
 * then applies TALLYDESK_<KEY> environment variables, then validates.
 * On failure returns false and writes a message naming the file, line and
 * key to err (size errlen). The result is freed with conf_release().
 */
bool conf_load(struct config *c, const char *path, bool required, char *err,
	       size_t errlen);
void conf_release(struct config *c);

#endif
