/* main.c: mode dispatch only */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "cli.h"
#include "conf.h"
#include "log.h"
#include "mailingest.h"
#include "mailpoll.h"
#include "migrate.h"
#include "outbox.h"
#include "seed.h"
#include "serve.h"
#include "slasweep.h"
#include "banned.h"

static const char usage[] =
	"usage: tallydesk [--config FILE] MODE [OPTIONS]\n"
	"\n"
	"modes:\n"
	"  serve           run the FastCGI server (master + workers)\n"
	"  migrate         apply new database migrations [--quiet]\n"
	"  seed-demo       create the demo tenant and its users (idempotent)\n"
	"                  [--password PW] [--sample-data: clients, contracts,\n"
	"                  tickets and time to look at, into an empty workspace]\n"
	"                  [--password PW] (default $TALLYDESK_DEMO_PASSWORD\n"
	"                  or 'demo-password')\n"
	"  tenant create   --slug SLUG --name NAME [--currency GBP]\n"
	"                  [--time-zone Europe/London]\n"
	"  user invite     --tenant SLUG --email EMAIL --role ROLE\n"
	"                  (prints the invite link)\n"
	"  apikey create   --tenant SLUG --name NAME --role ROLE\n"
	"                  (prints the key alone)\n"
	"  sla-sweep       raise due SLA warnings and breaches once (run\n"
	"                  every minute by tallydesk-sla-sweep.timer)\n"
	"  mail-ingest     --tenant SLUG: one message on stdin becomes a ticket\n"
	"                  or a reply (exit 0 delivered, 75 try again later,\n"
	"                  65 kept for review but refused); [--batch DIR] every\n"
	"                  file of DIR; [--dry-run] show how it reads, as JSON;\n"
	"                  [--client-ip IP --sender ADDR --helo NAME] for SPF\n"
	"  outbox-send     send queued mail by SMTP with DKIM [--once]\n"
	"                  [--loop SECONDS] [--smtp URL] [--starttls]\n"
	"                  ($TALLYDESK_SMTP_URL, _USER, _PASSWORD, _STARTTLS=yes)\n"
	"  mail-domain     add --tenant SLUG --domain DOMAIN [--client-id ID],\n"
	"                  or show --tenant SLUG: DKIM keys and DNS records\n"
	"  dkim-verify     --key-file FILE < message: check its DKIM signature\n"
	"  mail-poll       fetch mail from every IMAP mailbox of mail_mailboxes\n"
	"                  into tickets once (tallydesk-mail-poll.timer)\n"
	"  billing-run     invoice every contract period that has come, once\n"
	"                  (daily by tallydesk-billing-run.timer) [--date D]\n"
	"                  [--client ID] [--dry-run: print, write nothing]\n"
	"                  [--jobs N: worker processes, default 2]\n"
	"  version         print the version\n"
	"  help            print this help\n"
	"\n"
	"--config FILE: the config file (default " CONF_DEFAULT_PATH
	", or\n$TALLYDESK_CONFIG); TALLYDESK_<KEY> environment variables override it.\n"
	"Roles: admin, manager, technician.\n";

/* Exit status 2, as for any command-line mistake. */
static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr,
		"tallydesk: %s%s%s%s\nrun 'tallydesk --help' for the modes and options\n",
		what, *arg ? " '" : "", arg, *arg ? "'" : "");
	return 2;
}

/* Options of serve, migrate and seed-demo. */
static int simple_opts(const char *mode, int argc, char **argv, bool *quiet,
		       const char **password, bool *sample)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strcmp(mode, "migrate") && !strcmp(argv[i], "--quiet")) {
			*quiet = true;
		} else if (!strcmp(mode, "seed-demo") &&
			   !strcmp(argv[i], "--password")) {
			if (i + 1 == argc)
				return bad_usage("a value is missing after",
						 argv[i]);
			*password = argv[++i];
		} else if (!strcmp(mode, "seed-demo") &&
			   !strcmp(argv[i], "--sample-data")) {
			*sample = true;
		} else if (argv[i][0] == '-') {
			return bad_usage("unknown option", argv[i]);
		} else {
			return bad_usage("unexpected argument", argv[i]);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL, *mode = NULL, *password = NULL;
	bool quiet = false, sample = false, required;
	struct config conf;
	char err[1024];
	int i, rc;

	for (i = 1; i < argc && mode == NULL; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h") ||
		    !strcmp(a, "help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--version") || !strcmp(a, "version")) {
			printf("tallydesk %s\n", PACKAGE_VERSION);
			return 0;
		} else if (!strcmp(a, "--config")) {
			if (i + 1 == argc)
				return bad_usage("a value is missing after", a);
			config_path = argv[++i];
		} else if (a[0] == '-') {
			return bad_usage("unknown option", a);
		} else {
			mode = a;
		}
	}
	if (mode == NULL)
		return bad_usage("no mode given", "");
	if (strcmp(mode, "serve") && strcmp(mode, "migrate") &&
	    strcmp(mode, "seed-demo") && strcmp(mode, "tenant") &&
	    strcmp(mode, "user") && strcmp(mode, "apikey") &&
	    strcmp(mode, "sla-sweep") && strcmp(mode, "mail-ingest") &&
	    strcmp(mode, "outbox-send") && strcmp(mode, "mail-domain") &&
	    strcmp(mode, "dkim-verify") && strcmp(mode, "mail-poll") &&
	    strcmp(mode, "billing-run"))
		return bad_usage("unknown mode", mode);
	argc -= i;
	argv += i;
	if (!strcmp(mode, "serve") || !strcmp(mode, "migrate") ||
	    !strcmp(mode, "seed-demo")) {
		rc = simple_opts(mode, argc, argv, &quiet, &password, &sample);
		if (rc != 0)
			return rc;
	}

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
	} else if (!strcmp(mode, "seed-demo")) {
		if (password == NULL)
			password = getenv("TALLYDESK_DEMO_PASSWORD");
		rc = seed_demo(&conf, password ? password : "demo-password",
			       sample);
	} else if (!strcmp(mode, "tenant")) {
		rc = cli_tenant(&conf, argc, argv);
	} else if (!strcmp(mode, "sla-sweep")) {
		rc = slasweep_run(&conf, argc, argv);
	} else if (!strcmp(mode, "mail-ingest")) {
		rc = mail_ingest_main(&conf, argc, argv);
	} else if (!strcmp(mode, "outbox-send")) {
		rc = outbox_send_main(&conf, argc, argv);
	} else if (!strcmp(mode, "mail-domain")) {
		rc = outbox_domain_main(&conf, argc, argv);
	} else if (!strcmp(mode, "billing-run")) {
		rc = billing_run(&conf, argc, argv);
	} else if (!strcmp(mode, "mail-poll")) {
		rc = mail_poll_main(&conf, argc, argv);
	} else if (!strcmp(mode, "dkim-verify")) {
		rc = outbox_dkim_verify_main(argc, argv);
	} else if (!strcmp(mode, "user")) {
		rc = cli_user(&conf, argc, argv);
	} else {
		rc = cli_apikey(&conf, argc, argv);
	}
	conf_release(&conf);
	return rc;
}
