/* seed.h: the demo tenant that `tallydesk seed-demo` creates */
#ifndef TD_SEED_H
#define TD_SEED_H

struct config;

#define SEED_DEMO_SLUG	"demo"
#define SEED_DEMO_EMAIL "admin@demo.tallydesk.test"

/*
 * Creates (or leaves as it is) the demo tenant with an admin whose
 * password is password. Safe to run again: creates nothing twice.
 * Returns the process exit status.
 */
int seed_demo(const struct config *conf, const char *password);

#endif
