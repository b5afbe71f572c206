/* slasweep.h: the sla-sweep batch — SLA warnings and breaches as events */
#ifndef TD_SLASWEEP_H
#define TD_SLASWEEP_H

struct config;

/*
 * `tallydesk sla-sweep [--now TIMESTAMP]`: raises each due "warning" and
 * "breach" of every open ticket's response and resolution clocks into
 * sla_events, once, tenant by tenant, under a session advisory lock (a
 * second run at the same time prints that another run holds the lock and
 * exits 0). --now (for tests) sweeps as if it were that instant. Returns
 * the exit status: 0 done, 1 a failure (logged), 2 bad usage.
 */
int slasweep_run(const struct config *conf, int argc, char **argv);

#endif
