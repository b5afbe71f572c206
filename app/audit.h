/* audit.h: the append-only record of every change that matters */
#ifndef TD_AUDIT_H
#define TD_AUDIT_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * Records action ("user.login", "apikey.create") on an object in the
 * request's tenant, with the caller (user, API key or nobody), the request
 * id and address, and optional before/after snapshots (borrowed: the
 * caller keeps its references). Runs in the request's transaction, so it
 * is written exactly when the change is.
 */
enum td_err audit_write(struct req *r, const char *action,
			const char *object_type, int64_t object_id,
			json_t *before, json_t *after);

#endif
