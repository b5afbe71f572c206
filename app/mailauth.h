/* mailauth.h: our own DKIM, SPF and DMARC verdict on inbound mail */
#ifndef TD_MAILAUTH_H
#define TD_MAILAUTH_H

#include <stdbool.h>
#include <stddef.h>

struct arena;
struct maildns;

/*
 * What the SMTP transaction said, when the MTA passes it on
 * (mail-ingest --client-ip, --sender, --helo); NULL when unknown, then
 * the topmost Received header (our own MTA's) and Return-Path are read.
 */
struct mailauth_env {
	const char *client_ip;
	const char *mail_from; /* "" for the null sender <> */
	const char *helo;
	/* A resolver to reuse, with what it has looked up (a batch), or
	 * NULL for one per message. */
	struct maildns *dns;
};

struct mailauth_result {
	/* RFC 8601 words: pass, fail, softfail, neutral, none, permerror,
	 * temperror (DKIM: the best of its signatures). */
	const char *dkim, *spf, *dmarc;
	const char *dmarc_policy; /* none, quarantine, reject, or NULL */
	const char *verdict;	  /* "dkim=pass spf=fail dmarc=fail (p=reject)" */
	/* A DKIM signature that does not verify, an SPF fail, or a DMARC
	 * fail under a quarantine or reject policy. */
	bool failed;
};

/*
 * Verifies raw (the message as received) whose From domain is
 * from_domain (NULL when it has none): every DKIM signature (keys from
 * DNS), SPF for the connecting address and envelope sender, DMARC
 * alignment of the From domain with either. Never fails: what cannot be
 * looked up is a temperror.
 */
void mailauth_check(struct arena *a, struct maildns *dns,
		    const unsigned char *raw, size_t len,
		    const char *from_domain, const struct mailauth_env *env,
		    struct mailauth_result *out);

/*
 * The SPF result (RFC 7208 check_host) for ip sending as sender
 * (local@domain; "" for the null sender, then postmaster@helo).
 */
const char *mailauth_spf(struct arena *a, struct maildns *dns, const char *ip,
			 const char *sender, const char *helo);

#endif
