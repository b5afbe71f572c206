/* maildkim.h: DKIM keys (OpenSSL) and signatures (libopendkim) */
#ifndef TD_MAILDKIM_H
#define TD_MAILDKIM_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/*
 * A new RSA-2048 key: the private key as PEM and the public key as the
 * base64 of its SubjectPublicKeyInfo (the p= of the DNS record). False
 * when OpenSSL fails.
 */
bool dkim_keygen(struct arena *a, const char **private_pem,
		 const char **public_b64);

/*
 * The "DKIM-Signature: ..." header line (no CRLF) for msg (CRLF line
 * ends, headers and body), relaxed/relaxed rsa-sha256; NULL and *why on
 * failure.
 */
const char *dkim_sign_message(struct arena *a, const char *msg, size_t len,
			      const char *domain, const char *selector,
			      const char *private_pem, const char **why);

/*
 * Verifies the first DKIM signature of msg against key_file (lines of
 * "selector._domainkey.domain v=DKIM1; k=rsa; p=..."), without DNS.
 * True when it verifies; *why says what the library said.
 */
bool dkim_verify_message(const char *msg, size_t len, const char *key_file,
			 const char **why);

#endif
