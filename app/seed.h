/* seed.h: the demo tenant that `tallydesk seed-demo` creates */
#ifndef TD_SEED_H
#define TD_SEED_H

#include <stdbool.h>

struct config;

#define SEED_DEMO_SLUG	"demo"
#define SEED_DEMO_EMAIL "admin@demo.tallydesk.test"

/*
 * Creates (or leaves as it is) the demo tenant with an admin whose
 * password is password, and with sample, a few clients, contracts,
 * tickets and time to look at (only while it has no clients). Safe to run
 * again: creates nothing twice. Returns the process exit status.
 */
int seed_demo(const struct config *conf, const char *password, bool sample);

#endif
