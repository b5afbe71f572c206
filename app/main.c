/* main.c: mode dispatch only */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "migrate.h"
#include "seed.h"
#include "serve.h"
#include "banned.h"

static const char usage[] =
	"usage: tallydesk [--config FILE] MODE [OPTIONS]\n"
	"\n"
	"modes:\n"
	"  serve        run the FastCGI server (master + workers)\n"
	"  migrate      apply new database migrations from the sql directory\n"
	"  seed-demo    create the demo tenant and its users (idempotent)\n"
	"  version      print the version\n"
	"  help         print this help\n"
	"\n"
	"options:\n"
	"  --config FILE   config file (default " CONF_DEFAULT_PATH ");\n"
	"                  TALLYDESK_<KEY> environment variables override it\n"
	"  --quiet         (migrate) print nothing when all is well\n"
	"  --password PW   (seed-demo) the demo admin's password\n"
	"                  (default: $TALLYDESK_DEMO_PASSWORD or 'demo-password')\n";

/* Exit status 2, as for any command-line mistake. */
static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr,
		"tallydesk: %s%s%s%s\nrun 'tallydesk --help' for the modes and options\n",
		what, *arg ? " '" : "", arg, *arg ? "'" : "");
	return 2;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL, *mode = NULL, *password = NULL;
	bool quiet = false, required;
	struct config conf;
	char err[1024];
	int i, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--version") || !strcmp(a, "version")) {
			printf("tallydesk %s\n", PACKAGE_VERSION);
			return 0;
		} else if (!strcmp(a, "--config") || !strcmp(a, "--password")) {
			if (i + 1 == argc)
				return bad_usage("a value is missing after", a);
			if (!strcmp(a, "--config"))
				config_path = argv[++i];
			else
				password = argv[++i];
		} else if (!strcmp(a, "--quiet")) {
			quiet = true;
		} else if (a[0] == '-') {
			return bad_usage("unknown option", a);
		} else if (mode == NULL) {
			mode = a;
		} else {
			return bad_usage("unexpected argument", a);
		}
	}
	if (mode == NULL)
		return bad_usage("no mode given", "");
	if (strcmp(mode, "serve") && strcmp(mode, "migrate") &&
	    strcmp(mode, "seed-demo"))
		return bad_usage("unknown mode", mode);

	required = config_path != NULL || getenv("TALLYDESK_CONFIG") != NULL;
	if (config_path == NULL)
		config_path = getenv("TALLYDESK_CONFIG");
	if (config_path == NULL)
		config_path = CONF_DEFAULT_PATH;
	if (!conf_load(&conf, config_path, required, err, sizeof(err))) {
		fprintf(stderr, "tallydesk: %s\n", err);
		return 1;
	}
	log_set_level(conf.log_level);
	if (!strcmp(mode, "serve")) {
		rc = serve_run(&conf, config_path, required);
	} else if (!strcmp(mode, "migrate")) {
		rc = migrate_run(&conf, quiet);
	} else {
		if (password == NULL)
			password = getenv("TALLYDESK_DEMO_PASSWORD");
		rc = seed_demo(&conf, password ? password : "demo-password");
	}
	conf_release(&conf);
	return rc;
}
