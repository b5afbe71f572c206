/*
 * names.c: the names of a tenant's clients and people, kept by each worker
 * so a page of tickets needs no join to show them. Two small hash maps from
 * id to name, emptied when the request's tenant or directory version
 * differs from theirs.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "arena.h"
#include "auth.h"
#include "db.h"
#include "names.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define NAMES_MAX 200000 /* past this, start again rather than grow */

struct slot {
	int64_t id; /* 0: empty */
	char *name;
};

struct map {
	struct slot *slots;
	size_t cap, n; /* cap is a power of two */
};

static struct {
	int64_t tenant_id, version;
	struct map clients, users;
} kept = { 0, -1, { NULL, 0, 0 }, { NULL, 0, 0 } };

static const char sql_names[] =
	"SELECT 'c', id, name FROM clients WHERE tenant_id = app_tenant()"
	" AND id = ANY($1::bigint[])"
	" UNION ALL SELECT 'u', id, name FROM users"
	" WHERE tenant_id = app_tenant() AND id = ANY($2::bigint[])";

static size_t slot_of(const struct map *m, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 17) & (m->cap - 1);
}

static struct slot *find(const struct map *m, int64_t id)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = slot_of(m, id); m->slots[i].id != 0;
	     i = (i + 1) & (m->cap - 1))
		if (m->slots[i].id == id)
			return &m->slots[i];
	return NULL;
}

static void clear(struct map *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		free(m->slots[i].name);
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

static void put_slot(struct map *m, int64_t id, char *name)
{
	size_t i = slot_of(m, id);

	while (m->slots[i].id != 0 && m->slots[i].id != id)
		i = (i + 1) & (m->cap - 1);
	if (m->slots[i].id == id) {
		free(m->slots[i].name);
	} else {
		m->slots[i].id = id;
		m->n++;
	}
	m->slots[i].name = name;
}

static void put(struct map *m, int64_t id, const char *name)
{
	struct slot *old;
	size_t i, cap;

	if (m->n + 1 > NAMES_MAX)
		clear(m);
	old = m->slots;
	cap = m->cap;
	if (2 * (m->n + 1) > m->cap) {
		m->cap = cap ? cap * 2 : 64;
		m->slots = xmalloc(m->cap * sizeof(*m->slots));
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
		m->n = 0;
		for (i = 0; i < cap; i++)
			if (old[i].id != 0)
				put_slot(m, old[i].id, old[i].name);
		free(old);
	}
	put_slot(m, id, xstrdup(name));
}

/* Adds the ids of column col not kept yet to list ("{1,2}" form). */
static void want(const struct map *m, const PGresult *res, int col,
		 struct sbuf *list)
{
	int i, n = PQntuples(res);
	int64_t id;

	for (i = 0; col >= 0 && i < n; i++) {
		if (PQgetisnull(res, i, col))
			continue;
		id = db_int(res, i, col);
		if (id <= 0 || find(m, id) != NULL)
			continue;
		sbuf_addf(list, "%s%" PRId64, list->len > 1 ? "," : "", id);
	}
	sbuf_addch(list, '}');
}

enum td_err names_load(struct req *r, const PGresult *res, int client_col,
		       int user_col)
{
	const struct auth *a = &r->auth;
	bool keep = a->kind == AUTH_USER && a->directory_version >= 0;
	struct sbuf cs, us;
	const char *params[2];
	PGresult *got;
	enum td_err err;
	int i;

	if (!keep || kept.tenant_id != a->tenant_id ||
	    kept.version != a->directory_version) {
		clear(&kept.clients);
		clear(&kept.users);
		kept.tenant_id = keep ? a->tenant_id : 0;
		kept.version = keep ? a->directory_version : -1;
	}
	sbuf_init(&cs, r->arena, 64);
	sbuf_init(&us, r->arena, 64);
	sbuf_addch(&cs, '{');
	sbuf_addch(&us, '{');
	want(&kept.clients, res, client_col, &cs);
	want(&kept.users, res, user_col, &us);
	if (cs.len == 2 && us.len == 2)
		return TD_OK;
	params[0] = sbuf_cstr(&cs);
	params[1] = sbuf_cstr(&us);
	err = req_query(r, sql_names, 2, params, &got);
	if (err != TD_OK)
		return err;
	for (i = 0; i < PQntuples(got); i++)
		put(*db_text(got, i, 0) == 'c' ? &kept.clients : &kept.users,
		    db_int(got, i, 1), db_text(got, i, 2));
	return TD_OK;
}

const char *names_client(int64_t id)
{
	const struct slot *s = find(&kept.clients, id);

	return s != NULL ? s->name : NULL;
}

const char *names_user(int64_t id)
{
	const struct slot *s = find(&kept.users, id);

	return s != NULL ? s->name : NULL;
}
