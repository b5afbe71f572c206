/* totp.h: RFC 6238 one-time passwords and RFC 4648 base32 for 2FA */
#ifndef TD_TOTP_H
#define TD_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

/* Bytes of a secret made by totp_new_secret() (the RFC 4226 advice). */
#define TOTP_SECRET_LEN 20

/* Length of a TOTP time step in seconds. */
#define TOTP_PERIOD 30

/*
 * RFC 4648 base32 without padding, uppercase. out must hold (n*8+4)/5+1
 * bytes; it is NUL-terminated. Returns the length without the NUL.
 */
size_t totp_base32_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decodes base32, ignoring spaces and '=' and accepting lowercase. Returns
 * false on any other character or if the result exceeds outcap bytes; then
 * out and *outlen hold nothing useful. Trailing bits that do not make a
 * whole byte are dropped.
 */
bool totp_base32_decode(const char *in, unsigned char *out, size_t outcap,
			size_t *outlen);

/*
 * The RFC 4226 HOTP value (HMAC-SHA1) for counter with `digits` digits
 * (6..8). Returns UINT32_MAX, which is never a valid code, if digits is out
 * of range or the HMAC cannot be computed.
 */
uint32_t totp_hotp(const unsigned char *key, size_t keylen, uint64_t counter,
		   int digits);

/*
 * Verifies a 6-digit code typed by a user at unix time now, 30 s steps,
 * accepting one step either side. code may contain spaces. Returns the
 * matched time step, or -1 if wrong, malformed, or if the step is
 * <= last_step (replay protection: the caller stores the returned step and
 * passes it back next time; pass -1 if none was stored). The codes are
 * compared in constant time (CRYPTO_memcmp).
 */
int64_t totp_verify(const unsigned char *key, size_t keylen, const char *code,
		    int64_t now, int64_t last_step);

/* 20 random bytes from RAND_bytes; false if the RNG fails. */
bool totp_new_secret(unsigned char key[TOTP_SECRET_LEN]);

/*
 * "otpauth://totp/Issuer:account?secret=...&issuer=...&algorithm=SHA1
 * &digits=6&period=30" with issuer and account percent-encoded (only
 * A-Za-z0-9-._~ pass as they are). Lives in the arena; never NULL.
 */
char *totp_uri(struct arena *a, const char *issuer, const char *account,
	       const char *secret_b32);

#endif
