/* maildns.c: the DNS look-ups of mail authentication (libresolv)
 *
 * res_nquery with a resolver of our own (res_state per use, never the
 * process-wide one), so the server can be configured: mail
 * authentication in tests asks a DNS server on loopback on another port.
 * Short timeouts: a slow resolver must not stall ingestion, and a look-up
 * that times out is a temporary error, never a failure of the sender.
 */
#define _DEFAULT_SOURCE /* res_state, ns_* */
#include "config.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "arena.h"
#include "maildns.h"
#include "banned.h"

#define ANSWER_MAX 8192 /* EDNS0 answers; a larger one comes by TCP */
#define CACHE_SECONDS 300 /* answers kept for a batch, at most this long */
#define CACHE_TEMP_SECONDS 30 /* and failures, so a dead server costs once */
#define CACHE_MAX 10000

/*
 * An answer kept for the resolver's life: a batch of mail from the same
 * few domains asks once per domain, not once per message.
 */
struct cached {
	enum maildns_rc rc;
	time_t at;
	int len;
	unsigned char bytes[];
};

struct maildns {
	struct __res_state st;
	GHashTable *cache; /* "type/name" -> struct cached */
};

static void close_cb(void *p)
{
	struct maildns *d = p;

	res_nclose(&d->st);
	g_hash_table_destroy(d->cache);
	free(d);
}

bool maildns_parse_ip(const char *s, struct maildns_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, out->b) == 1) {
		out->len = 4;
		return true;
	}
	if (inet_pton(AF_INET6, s, out->b) == 1) {
		out->len = 16;
		return true;
	}
	return false;
}

struct maildns *maildns_open(struct arena *a, const char *server,
			     const char **why)
{
	struct maildns *d = xmalloc(sizeof(*d));
	struct sockaddr_in sin;
	const char *colon;
	char host[64];
	long port = 53;
	char *end;

	memset(d, 0, sizeof(*d));
	memset(&sin, 0, sizeof(sin));
	*why = NULL;
	if (server != NULL && *server != '\0') {
		colon = strchr(server, ':');
		if (colon != NULL) {
			port = strtol(colon + 1, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535)
				port = -1;
		}
		if (port < 0 || (size_t)(colon != NULL ? colon - server :
							  (long)strlen(server)) >=
					sizeof(host)) {
			free(d);
			*why = "dns_server: use an IPv4 address, optionally :port";
			return NULL;
		}
		memcpy(host, server,
		       colon != NULL ? (size_t)(colon - server) : strlen(server));
		host[colon != NULL ? (size_t)(colon - server) : strlen(server)] =
			'\0';
		if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
			free(d);
			*why = "dns_server: use an IPv4 address, optionally :port";
			return NULL;
		}
		sin.sin_family = AF_INET;
		sin.sin_port = htons((unsigned short)port);
	}
	if (res_ninit(&d->st) != 0) {
		free(d);
		*why = "cannot start the DNS resolver";
		return NULL;
	}
	if (sin.sin_family == AF_INET) {
		d->st.nscount = 1;
		d->st.nsaddr_list[0] = sin;
	}
	d->st.options |= RES_USE_EDNS0;
	d->st.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	/* 1 s, then 2 s: a lost datagram costs a second, not five. */
	d->st.retrans = 1;
	d->st.retry = 2;
	d->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	arena_defer(a, close_cb, d);
	return d;
}

/*
 * The answer to (name, type) parsed into msg; the answer bytes live in
 * the arena.
 */
static void remember(struct maildns *d, char *key, enum maildns_rc rc,
		     const unsigned char *buf, int len)
{
	struct cached *c = g_malloc(sizeof(*c) + (size_t)(len > 0 ? len : 0));

	if (g_hash_table_size(d->cache) >= CACHE_MAX)
		g_hash_table_remove_all(d->cache);
	c->rc = rc;
	c->at = time(NULL);
	c->len = len > 0 ? len : 0;
	if (c->len > 0)
		memcpy(c->bytes, buf, (size_t)c->len);
	g_hash_table_replace(d->cache, key, c);
}

static enum maildns_rc query(struct maildns *d, struct arena *a,
			     const char *name, int type, ns_msg *msg)
{
	unsigned char *buf = arena_alloc_raw(a, ANSWER_MAX);
	const struct cached *c;
	enum maildns_rc rc;
	char *key;
	int n;

	if (name == NULL || *name == '\0' || strlen(name) > 253)
		return MAILDNS_NONE;
	key = g_strdup_printf("%d/%s", type, name);
	for (n = 0; key[n]; n++)
		key[n] = g_ascii_tolower(key[n]);
	c = g_hash_table_lookup(d->cache, key);
	if (c != NULL &&
	    time(NULL) - c->at < (c->rc == MAILDNS_TEMP ? CACHE_TEMP_SECONDS :
							  CACHE_SECONDS)) {
		g_free(key);
		if (c->rc != MAILDNS_FOUND)
			return c->rc;
		memcpy(buf, c->bytes, (size_t)c->len);
		return ns_initparse(buf, c->len, msg) < 0 ? MAILDNS_TEMP :
							    MAILDNS_FOUND;
	}
	n = res_nquery(&d->st, name, ns_c_in, type, buf, ANSWER_MAX);
	if (n < 0) {
		switch (d->st.res_h_errno) {
		case HOST_NOT_FOUND:
		case NO_DATA:
			rc = MAILDNS_NONE;
			break;
		default:
			rc = MAILDNS_TEMP;
		}
		remember(d, key, rc, NULL, 0);
		return rc;
	}
	if (n > ANSWER_MAX)
		n = ANSWER_MAX;
	if (ns_initparse(buf, n, msg) < 0) {
		g_free(key);
		return MAILDNS_TEMP;
	}
	remember(d, key, MAILDNS_FOUND, buf, n);
	return MAILDNS_FOUND;
}

enum maildns_rc maildns_txt(struct maildns *d, struct arena *a,
			    const char *name, const char ***out)
{
	ns_msg msg;
	ns_rr rr;
	enum maildns_rc rc = query(d, a, name, ns_t_txt, &msg);
	const char **list;
	int i, count, k = 0;

	*out = NULL;
	if (rc != MAILDNS_FOUND)
		return rc;
	count = ns_msg_count(msg, ns_s_an);
	list = arena_alloc(a, (size_t)(count + 1) * sizeof(*list));
	for (i = 0; i < count; i++) {
		const unsigned char *p, *end;
		char *s, *w;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return MAILDNS_TEMP;
		if (ns_rr_type(rr) != ns_t_txt)
			continue;
		p = ns_rr_rdata(rr);
		end = p + ns_rr_rdlen(rr);
		s = w = arena_alloc_raw(a, ns_rr_rdlen(rr) + 1);
		/* <length><bytes>, repeated: the strings join with nothing. */
		while (p < end) {
			size_t len = *p++;

			if (len > (size_t)(end - p))
				len = (size_t)(end - p);
			memcpy(w, p, len);
			w += len;
			p += len;
		}
		*w = '\0';
		list[k++] = s;
	}
	list[k] = NULL;
	*out = list;
	return k > 0 ? MAILDNS_FOUND : MAILDNS_NONE;
}

enum maildns_rc maildns_addrs(struct maildns *d, struct arena *a,
			      const char *name, bool v6,
			      struct maildns_addr **out, size_t *n)
{
	ns_msg msg;
	ns_rr rr;
	int type = v6 ? ns_t_aaaa : ns_t_a, len = v6 ? 16 : 4, i, count;
	enum maildns_rc rc = query(d, a, name, type, &msg);

	*out = NULL;
	*n = 0;
	if (rc != MAILDNS_FOUND)
		return rc;
	count = ns_msg_count(msg, ns_s_an);
	*out = arena_alloc(a, (size_t)(count + 1) * sizeof(**out));
	for (i = 0; i < count; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return MAILDNS_TEMP;
		if ((int)ns_rr_type(rr) != type || ns_rr_rdlen(rr) != len)
			continue;
		(*out)[*n].len = len;
		memcpy((*out)[*n].b, ns_rr_rdata(rr), (size_t)len);
		(*n)++;
	}
	return *n > 0 ? MAILDNS_FOUND : MAILDNS_NONE;
}

enum maildns_rc maildns_mx(struct maildns *d, struct arena *a,
			   const char *name, const char ***out)
{
	ns_msg msg;
	ns_rr rr;
	enum maildns_rc rc = query(d, a, name, ns_t_mx, &msg);
	char host[NS_MAXDNAME];
	const char **list;
	int i, count, k = 0;

	*out = NULL;
	if (rc != MAILDNS_FOUND)
		return rc;
	count = ns_msg_count(msg, ns_s_an);
	list = arena_alloc(a, (size_t)(count + 1) * sizeof(*list));
	for (i = 0; i < count; i++) {
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return MAILDNS_TEMP;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3)
			continue;
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg),
			      ns_rr_rdata(rr) + 2, host, sizeof(host)) < 0)
			continue;
		list[k++] = arena_strdup(a, host);
	}
	list[k] = NULL;
	*out = list;
	return k > 0 ? MAILDNS_FOUND : MAILDNS_NONE;
}
