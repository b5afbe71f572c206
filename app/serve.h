/* serve.h: the pre-fork FastCGI server */
#ifndef TD_SERVE_H
#define TD_SERVE_H

#include <stdbool.h>

struct config;

/*
 * Runs the master: opens (or inherits from systemd) the FastCGI socket,
 * keeps conf->workers workers alive, reloads on SIGHUP, drains and
 * returns on SIGTERM/SIGINT. Returns the process exit status.
 * config_path is re-read on SIGHUP.
 */
int serve_run(struct config *conf, const char *config_path, bool required);

#endif
