/* conf_test.c: config file parsing, env overrides and validation */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"
#include "banned.h"

static const char *write_conf(const char *text)
{
	static char path[] = "/tmp/tallydesk-conf-test-XXXXXX";
	int fd;
	FILE *f;

	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static bool load(struct config *c, const char *text, char *err, size_t n)
{
	const char *path = write_conf(text);
	bool good = conf_load(c, path, true, err, n);

	unlink(path);
	return good;
}

int main(void)
{
	struct config c;
	char err[512] = "";

	ok(load(&c,
		"# comment\n\nworkers = 7\nmax_body = 64M\n"
		"database_url = host=/tmp dbname=x\nsecure_cookies = off\n"
		"socket_mode = 0666\n",
		err, sizeof(err)),
	   "a valid file loads: %s", err);
	ok(c.workers == 7, "workers is read");
	ok(c.max_body == 64u << 20, "sizes take an M suffix");
	ok(!strcmp(c.database_url, "host=/tmp dbname=x"),
	   "values keep inner spaces and '='");
	ok(!c.secure_cookies, "booleans read 'off'");
	ok(c.socket_mode == 0666, "socket_mode is octal");
	conf_release(&c);

	ok(!load(&c, "workers = many\n", err, sizeof(err)) &&
		   strstr(err,
			  ":1: 'workers' must be a number from 1 to 256") !=
			   NULL,
	   "a bad number names the line and key: %s", err);
	ok(!load(&c, "wrokers = 2\n", err, sizeof(err)) &&
		   strstr(err, "unknown key 'wrokers'") != NULL,
	   "an unknown key is refused: %s", err);
	ok(!load(&c, "workers 2\n", err, sizeof(err)) &&
		   strstr(err, "expected 'key = value'") != NULL,
	   "a line without '=' is refused: %s", err);
	ok(!load(&c, "workers = 0\n", err, sizeof(err)),
	   "workers below the range is refused");
	ok(!load(&c, "max_upload = 64M\nmax_body = 1M\n", err, sizeof(err)) &&
		   strstr(err, "max_upload") != NULL,
	   "an upload limit above the body limit is refused: %s", err);

	ok(!conf_load(&c, "/nonexistent/tallydesk.conf", true, err,
		      sizeof(err)) &&
		   strstr(err,
			  "cannot read config '/nonexistent/tallydesk.conf'"),
	   "a missing required file is an error: %s", err);
	ok(conf_load(&c, "/nonexistent/tallydesk.conf", false, err,
		     sizeof(err)) &&
		   c.workers == 4,
	   "a missing default file means defaults");
	conf_release(&c);

	setenv("TALLYDESK_WORKERS", "9", 1);
	ok(load(&c, "workers = 3\n", err, sizeof(err)) && c.workers == 9,
	   "TALLYDESK_WORKERS overrides the file");
	conf_release(&c);
	setenv("TALLYDESK_WORKERS", "nine", 1);
	ok(!load(&c, "", err, sizeof(err)) &&
		   strstr(err, "environment TALLYDESK_WORKERS") != NULL,
	   "a bad environment value names the variable: %s", err);
	unsetenv("TALLYDESK_WORKERS");
	return tap_done();
}
