/* clientctx.h: the client a page is about, and the tabs of a client page */
#ifndef TD_CLIENTCTX_H
#define TD_CLIENTCTX_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct req;

struct clientctx {
	int64_t id;
	const char *name;
	bool archived;
	bool merged; /* merged into another client: read-only */
};

/*
 * Loads client id of the request's tenant (TD_ENOENT, logged, if there is
 * none — other tenants' clients are invisible) and puts into the view
 * `client` {id, name, archived, url} and `client_tabs` [{label, href,
 * active}] with tab (e.g. "contacts") marked active. An agent caller may
 * only load its own client.
 */
enum td_err clientctx_load(struct req *r, int64_t id, const char *tab,
			   struct clientctx *out);

/*
 * Keyset pagination: the page size from ?limit= (1..200, default 50) and
 * the opaque ?after= cursor as the text a previous page made (NULL when
 * absent). clientctx_next_url builds the link to the next page from the
 * request's own query with after replaced.
 */
int clientctx_limit(struct req *r);
const char *clientctx_after(struct req *r);
const char *clientctx_next_url(struct req *r, const char *base,
			       const char *after);

#endif
