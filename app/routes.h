/* routes.h: the one route table of the application */
#ifndef TD_ROUTES_H
#define TD_ROUTES_H

#include <stddef.h>

struct route;

/* The table, and its length in *n. */
const struct route *routes_table(size_t *n);

#endif
