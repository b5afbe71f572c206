/* maildns.h: the DNS look-ups of mail authentication (libresolv) */
#ifndef TD_MAILDNS_H
#define TD_MAILDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct maildns;

/* What a look-up found: records, none (NXDOMAIN or no data), or a failure
 * worth retrying (timeout, SERVFAIL, REFUSED). */
enum maildns_rc { MAILDNS_FOUND, MAILDNS_NONE, MAILDNS_TEMP };

/* An IPv4 or IPv6 address in network order (len 4 or 16). */
struct maildns_addr {
	int len;
	unsigned char b[16];
};

/*
 * A resolver living as long as arena a: server "" uses the system's
 * (resolv.conf), "IP" or "IP:PORT" (IPv4) one server only — the
 * config key dns_server, so tests can ask a DNS server on loopback.
 * Answers are kept for its life (at most 5 minutes; failures 30 s): a
 * batch asks once per name. NULL and *why when the server is not an
 * address.
 */
struct maildns *maildns_open(struct arena *a, const char *server,
			     const char **why);

/* The TXT records of name, each with its strings joined, NULL-ended. */
enum maildns_rc maildns_txt(struct maildns *d, struct arena *a,
			    const char *name, const char ***out);

/* The A (v6 false) or AAAA records of name; *n of them. */
enum maildns_rc maildns_addrs(struct maildns *d, struct arena *a,
			      const char *name, bool v6,
			      struct maildns_addr **out, size_t *n);

/* The MX hosts of name, NULL-ended. */
enum maildns_rc maildns_mx(struct maildns *d, struct arena *a,
			   const char *name, const char ***out);

/* Parses "1.2.3.4" or an IPv6 address; false when it is neither. */
bool maildns_parse_ip(const char *s, struct maildns_addr *out);

#endif
