/* names.h: client and people names a worker keeps for lists of tickets */
#ifndef TD_NAMES_H
#define TD_NAMES_H

#include <stdint.h>

#include <libpq-fe.h>

#include "err.h"

struct req;

/*
 * Makes sure the names of the clients in column client_col and the people
 * in column user_col (NULL allowed; -1: no such column) of res are at
 * hand: one query for those this worker does not keep yet, none when it
 * keeps them all. Kept names last while the tenant's directory version
 * (sql/0022, bumped when a client or a person is renamed) stays where it
 * was; a caller without a session (API keys) keeps nothing between
 * requests.
 */
enum td_err names_load(struct req *r, const PGresult *res, int client_col,
		       int user_col);

/* A name names_load made sure of; NULL when there is no such row. */
const char *names_client(int64_t id);
const char *names_user(int64_t id);

#endif
