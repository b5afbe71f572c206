/* credential.h: the text shapes of session cookies and API keys */
#ifndef TD_CREDENTIAL_H
#define TD_CREDENTIAL_H

#include <stdbool.h>
#include <stdint.h>

#define CREDENTIAL_TOKEN_LEN 43 /* 32 random bytes as base64url, no padding */

/* True if s is exactly CREDENTIAL_TOKEN_LEN base64url characters. */
bool credential_is_token(const char *s);

/*
 * Splits "<tenant id><sep><token>" — a session cookie ("12.<token>") or
 * the part of an API key after "td_" ("12_<token>"). The tenant id is a
 * positive decimal without leading zeros or sign. *token points into s.
 * False for anything else.
 */
bool credential_parse(const char *s, char sep, int64_t *tenant,
		      const char **token);

/* Parses an Authorization header value "Bearer td_<tenant>_<token>". */
bool credential_parse_bearer(const char *header, int64_t *tenant,
			     const char **token);

#endif
