/* migrate.h: apply sql/NNNN_*.sql in order, each once */
#ifndef TD_MIGRATE_H
#define TD_MIGRATE_H

#include <stdbool.h>

struct config;

/*
 * Applies every migration in conf->sql_dir not yet recorded in
 * schema_migrations, each in its own transaction, under an advisory lock
 * so concurrent runs wait for each other. Refuses (returns non-zero with a
 * message on stderr) when an applied file was edited or is missing, or a
 * new file sorts before an applied one. Returns the process exit status.
 */
int migrate_run(const struct config *conf, bool quiet);

#endif
