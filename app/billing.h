/* billing.h: the billing-run batch — every due contract period invoiced once */
#ifndef TD_BILLING_H
#define TD_BILLING_H

struct config;

/*
 * `tallydesk billing-run [--date D] [--client ID] [--jobs N] [--dry-run]`:
 * for every tenant, every client with a contract period due by day D
 * (default: today in the tenant's zone) gets that period's draft invoice,
 * one client per transaction. The lines of a batch of clients are
 * computed by one set-based statement into the session's staging tables
 * (billing_stage() in sql/0018), then each client is written by one
 * statement (billing_write()); a batch that cannot be computed is
 * computed client by client instead. With more than one batch, N worker
 * processes (default 2), each with its own connection, are handed batches
 * by the parent, which counts what they did client by client (progress,
 * summary, failures) and dies with them: a worker never outlives a killed
 * parent. Under a session advisory lock held by the parent (a second run
 * at the same time, after trying for 3 s, says so and exits 0).
 * Idempotent and resumable: periods are rows with a unique key, so a
 * rerun or a run after kill -9 creates nothing twice. --dry-run prints
 * each would-be invoice and its change from the previous one and writes
 * nothing. Returns the exit status: 0 done, 1 a client failed (the others
 * are billed; the summary names it), 2 bad usage.
 */
int billing_run(const struct config *conf, int argc, char **argv);

#endif
