/* config.c: parse, override and validate the config file */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "conf.h"
#include "banned.h"

enum conf_type {
	CONF_STR,
	CONF_INT,
	CONF_SIZE,
	CONF_BOOL,
	CONF_MODE,
	CONF_LEVEL
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t off;
	long long min, max;
};

#define KEY(n, t, f, lo, hi)                                                   \
	{                                                                      \
		n, t, offsetof(struct config, f), lo, hi                       \
	}

static const struct conf_key keys[] = {
	KEY("database_url", CONF_STR, database_url, 0, 0),
	KEY("migrate_database_url", CONF_STR, migrate_database_url, 0, 0),
	KEY("socket", CONF_STR, socket, 0, 0),
	KEY("socket_mode", CONF_MODE, socket_mode, 0, 0777),
	KEY("workers", CONF_INT, workers, 1, 256),
	KEY("views_dir", CONF_STR, views_dir, 0, 0),
	KEY("sql_dir", CONF_STR, sql_dir, 0, 0),
	KEY("max_body", CONF_SIZE, max_body, 1024, 1LL << 30),
	KEY("max_upload", CONF_SIZE, max_upload, 1024, 1LL << 30),
	KEY("db_timeout", CONF_INT, db_timeout, 1, 600),
	KEY("secure_cookies", CONF_BOOL, secure_cookies, 0, 0),
	KEY("argon2_t", CONF_INT, argon2_t, 1, 20),
	KEY("argon2_m", CONF_INT, argon2_m, 8, 4 << 20),
	KEY("argon2_p", CONF_INT, argon2_p, 1, 16),
	KEY("session_idle", CONF_INT, session_idle, 1, 60 * 24 * 30),
	KEY("session_max", CONF_INT, session_max, 1, 24 * 365),
	KEY("login_max_failures", CONF_INT, login_max_failures, 1, 1000),
	KEY("login_ip_max_failures", CONF_INT, login_ip_max_failures, 1,
	    100000),
	KEY("login_window", CONF_INT, login_window, 1, 24 * 60),
	KEY("default_workspace", CONF_STR, default_workspace, 0, 0),
	KEY("base_url", CONF_STR, base_url, 0, 0),
	KEY("dns_server", CONF_STR, dns_server, 0, 0),
	KEY("log_level", CONF_LEVEL, log_level, 0, 0),
};

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = xstrdup(v);
}

static void defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	set_str(&c->path, "");
	set_str(&c->database_url, "dbname=tallydesk");
	set_str(&c->migrate_database_url, "");
	set_str(&c->socket, "/run/tallydesk/fcgi.sock");
	c->socket_mode = 0660;
	c->workers = 4;
	set_str(&c->views_dir, TD_PKGDATADIR "/views");
	set_str(&c->sql_dir, TD_PKGDATADIR "/sql");
	c->max_body = 32u << 20;
	c->max_upload = 25u << 20;
	c->db_timeout = 5;
	c->secure_cookies = true;
	c->argon2_t = 3;
	c->argon2_m = 1 << 16;
	c->argon2_p = 1;
	c->session_idle = 12 * 60;
	c->session_max = 7 * 24;
	c->login_max_failures = 5;
	c->login_ip_max_failures = 50;
	c->login_window = 15;
	set_str(&c->default_workspace, "");
	set_str(&c->base_url, "http://127.0.0.1:8080");
	set_str(&c->dns_server, "");
	c->log_level = LOG_LEVEL_INFO;
}

/* Sets one key from text; on failure writes why to err. */
static bool set_key(struct config *c, const struct conf_key *k, const char *v,
		    char *err, size_t errlen)
{
	void *slot = (char *)c + k->off;
	char *end;
	long long n;

	switch (k->type) {
	case CONF_STR:
		if (*v == '\0' && strcmp(k->name, "default_workspace") != 0 &&
		    strcmp(k->name, "migrate_database_url") != 0 &&
		    strcmp(k->name, "dns_server") != 0) {
			snprintf(err, errlen, "'%s' must not be empty",
				 k->name);
			return false;
		}
		set_str(slot, v);
		return true;
	case CONF_INT:
	case CONF_SIZE:
	case CONF_MODE:
		errno = 0;
		n = strtoll(v, &end, k->type == CONF_MODE ? 8 : 10);
		if (k->type == CONF_SIZE && end != v) {
			long long mul = 1;

			switch (*end) {
			case 'k':
			case 'K':
				mul = 1LL << 10;
				end++;
				break;
			case 'm':
			case 'M':
				mul = 1LL << 20;
				end++;
				break;
			case 'g':
			case 'G':
				mul = 1LL << 30;
				end++;
				break;
			default:
				break;
			}
			if (n > k->max / mul + 1)
				errno = ERANGE;
			else
				n *= mul;
		}
		if (end == v || *end != '\0' || errno != 0 || n < k->min ||
		    n > k->max) {
			snprintf(
				err, errlen,
				"'%s' must be a number from %lld to %lld%s, not '%s'",
				k->name, k->min, k->max,
				k->type == CONF_MODE ? " (octal)" : "", v);
			return false;
		}
		if (k->type == CONF_INT)
			*(int *)slot = (int)n;
		else if (k->type == CONF_SIZE)
			*(size_t *)slot = (size_t)n;
		else
			*(unsigned *)slot = (unsigned)n;
		return true;
	case CONF_BOOL:
		if (!strcmp(v, "on") || !strcmp(v, "true") ||
		    !strcmp(v, "yes") || !strcmp(v, "1"))
			*(bool *)slot = true;
		else if (!strcmp(v, "off") || !strcmp(v, "false") ||
			 !strcmp(v, "no") || !strcmp(v, "0"))
			*(bool *)slot = false;
		else {
			snprintf(err, errlen,
				 "'%s' must be on or off, not '%s'", k->name,
				 v);
			return false;
		}
		return true;
	case CONF_LEVEL:
		if (!strcmp(v, "error"))
			*(enum log_level *)slot = LOG_LEVEL_ERROR;
		else if (!strcmp(v, "warning"))
			*(enum log_level *)slot = LOG_LEVEL_WARN;
		else if (!strcmp(v, "info"))
			*(enum log_level *)slot = LOG_LEVEL_INFO;
		else if (!strcmp(v, "debug"))
			*(enum log_level *)slot = LOG_LEVEL_DEBUG;
		else {
			snprintf(
				err, errlen,
				"'log_level' must be error, warning, info or debug, not '%s'",
				v);
			return false;
		}
		return true;
	default:
		abort();
	}
}

static const struct conf_key *find_key(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == len &&
		    !strncmp(keys[i].name, name, len))
			return &keys[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static bool read_file(struct config *c, FILE *f, const char *path, char *err,
		      size_t errlen)
{
	char line[4096], why[512];
	int lineno = 0;

	while (fgets(line, sizeof(line), f) != NULL) {
		char *s, *eq, *name, *val;
		const struct conf_key *k;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line is too long", path,
				 lineno);
			return false;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "%s:%d: expected 'key = value'",
				 path, lineno);
			return false;
		}
		*eq = '\0';
		name = trim(s);
		val = trim(eq + 1);
		k = find_key(name, strlen(name));
		if (k == NULL) {
			snprintf(err, errlen, "%s:%d: unknown key '%s'", path,
				 lineno, name);
			return false;
		}
		if (!set_key(c, k, val, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			return false;
		}
	}
	return true;
}

static bool apply_env(struct config *c, char *err, size_t errlen)
{
	char var[64], why[512];
	size_t i, j;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v;
		int n = snprintf(var, sizeof(var), "TALLYDESK_%s",
				 keys[i].name);

		if (n < 0 || (size_t)n >= sizeof(var))
			abort();
		for (j = 10; var[j] != '\0'; j++)
			var[j] = (char)toupper((unsigned char)var[j]);
		v = getenv(var);
		if (v == NULL)
			continue;
		if (!set_key(c, &keys[i], v, why, sizeof(why))) {
			snprintf(err, errlen, "environment %s: %s", var, why);
			return false;
		}
	}
	return true;
}

bool conf_load(struct config *c, const char *path, bool required, char *err,
	       size_t errlen)
{
	FILE *f;

	defaults(c);
	f = fopen(path, "r");
	if (f == NULL && (required || errno != ENOENT)) {
		snprintf(err, errlen, "cannot read config '%s': %s", path,
			 strerror(errno));
		conf_release(c);
		return false;
	}
	if (f != NULL) {
		bool good = read_file(c, f, path, err, errlen);

		fclose(f);
		if (!good) {
			conf_release(c);
			return false;
		}
		set_str(&c->path, path);
	}
	if (!apply_env(c, err, errlen)) {
		conf_release(c);
		return false;
	}
	if (strlen(c->socket) >= 100) {
		snprintf(err, errlen,
			 "'socket' path is too long (%zu bytes, at most 99)",
			 strlen(c->socket));
		conf_release(c);
		return false;
	}
	if (c->max_upload > c->max_body) {
		snprintf(err, errlen,
			 "'max_upload' (%zu) must not exceed 'max_body' (%zu)",
			 c->max_upload, c->max_body);
		conf_release(c);
		return false;
	}
	return true;
}

void conf_release(struct config *c)
{
	free(c->path);
	free(c->database_url);
	free(c->migrate_database_url);
	free(c->socket);
	free(c->views_dir);
	free(c->sql_dir);
	free(c->base_url);
	free(c->dns_server);
	free(c->default_workspace);
	memset(c, 0, sizeof(*c));
}
