/* routes.c: the one route table; each module owns its handlers */
#include "config.h"

#include <stddef.h>

#include "pages.h"
#include "router.h"
#include "routes.h"
#include "banned.h"

#define GET (HTTP_GET | HTTP_HEAD)

static const struct route table[] = {
	{ GET, "/", pages_home, ROUTE_PUBLIC },
	{ GET, "/healthz", pages_healthz, ROUTE_PUBLIC | ROUTE_JSON },
	{ GET, "/bench/list", pages_bench_list, ROUTE_PUBLIC },
	{ HTTP_POST, "/echo", pages_echo, ROUTE_PUBLIC | ROUTE_JSON },
	{ GET, "/tickets", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/clients", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/contracts", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/invoices", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/time", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/reports", pages_placeholder, ROUTE_PUBLIC },
	{ GET, "/settings", pages_placeholder, ROUTE_PUBLIC },
};

const struct route *routes_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}
