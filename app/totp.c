/* totp.c: RFC 6238 one-time passwords and RFC 4648 base32 for 2FA */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "arena.h"
#include "sbuf.h"
#include "totp.h"
#include "banned.h"

#define TOTP_DIGITS 6
#define SHA1_LEN    20

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

size_t totp_base32_encode(const unsigned char *in, size_t n, char *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i, len = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[len++] = b32_alphabet[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		out[len++] = b32_alphabet[(acc << (5 - bits)) & 31];
	out[len] = '\0';
	return len;
}

/* The 5-bit value of a base32 digit, or -1 if c is not one. */
static int b32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

bool totp_base32_decode(const char *in, unsigned char *out, size_t outcap,
			size_t *outlen)
{
	uint32_t acc = 0;
	int bits = 0, v;
	size_t len = 0;

	for (; *in != '\0'; in++) {
		if (*in == ' ' || *in == '=')
			continue;
		v = b32_value(*in);
		if (v < 0)
			return false;
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (len == outcap)
				return false;
			out[len++] = (unsigned char)(acc >> bits);
		}
	}
	*outlen = len;
	return true;
}

/*
 * HMAC-SHA1 through the OpenSSL 3 provider API; the legacy HMAC() is
 * compiled out by OPENSSL_NO_DEPRECATED.
 */
static bool hmac_sha1(const unsigned char *key, size_t keylen,
		      const unsigned char *msg, size_t n,
		      unsigned char out[SHA1_LEN])
{
	/* OSSL_PARAM wants a char *, and a literal is const here */
	char digest[] = "SHA1";
	/* a NULL key means "keep the old key", so an empty key needs a pointer
	 */
	static const unsigned char nokey[1];
	OSSL_PARAM params[2];
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	size_t outlen = 0;
	bool ret = false;

	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		goto out;
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, keylen > 0 ? key : nokey, keylen, params) != 1)
		goto out;
	if (EVP_MAC_update(ctx, msg, n) != 1)
		goto out;
	if (EVP_MAC_final(ctx, out, &outlen, SHA1_LEN) != 1)
		goto out;
	ret = outlen == SHA1_LEN;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ret;
}

uint32_t totp_hotp(const unsigned char *key, size_t keylen, uint64_t counter,
		   int digits)
{
	static const uint32_t modulus[] = { 1000000, 10000000, 100000000 };
	unsigned char msg[8], h[SHA1_LEN];
	uint32_t bin;
	int i, off;

	if (digits < 6 || digits > 8)
		return UINT32_MAX;
	for (i = 7; i >= 0; i--) {
		msg[i] = (unsigned char)(counter & 0xff);
		counter >>= 8;
	}
	if (!hmac_sha1(key, keylen, msg, sizeof(msg), h))
		return UINT32_MAX;
	/* RFC 4226 section 5.3, dynamic truncation */
	off = h[SHA1_LEN - 1] & 0x0f;
	bin = (uint32_t)(h[off] & 0x7f) << 24 | (uint32_t)h[off + 1] << 16 |
	      (uint32_t)h[off + 2] << 8 | (uint32_t)h[off + 3];
	return bin % modulus[digits - 6];
}

/*
 * Copies the digits of a typed code into digits[], skipping spaces.
 * False unless it holds exactly TOTP_DIGITS digits and nothing else.
 */
static bool parse_code(const char *code, char digits[TOTP_DIGITS])
{
	size_t n = 0;

	for (; *code != '\0'; code++) {
		if (*code == ' ')
			continue;
		if (*code < '0' || *code > '9' || n == TOTP_DIGITS)
			return false;
		digits[n++] = *code;
	}
	return n == TOTP_DIGITS;
}

/* The TOTP_DIGITS decimal digits of v < 10^TOTP_DIGITS, leading zeros kept. */
static void format_code(uint32_t v, char digits[TOTP_DIGITS])
{
	int i;

	for (i = TOTP_DIGITS - 1; i >= 0; i--) {
		digits[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

int64_t totp_verify(const unsigned char *key, size_t keylen, const char *code,
		    int64_t now, int64_t last_step)
{
	char typed[TOTP_DIGITS], want[TOTP_DIGITS];
	int64_t step, t, found = -1;
	uint32_t v;

	if (code == NULL || now < 0 || !parse_code(code, typed))
		return -1;
	step = now / TOTP_PERIOD;
	/*
	 * Every candidate is computed and compared, so the time taken does
	 * not depend on where (or whether) the code matched.
	 */
	for (t = step - 1; t <= step + 1; t++) {
		if (t < 0)
			continue;
		v = totp_hotp(key, keylen, (uint64_t)t, TOTP_DIGITS);
		if (v == UINT32_MAX)
			return -1;
		format_code(v, want);
		if (CRYPTO_memcmp(want, typed, TOTP_DIGITS) == 0 &&
		    t > last_step && found < 0)
			found = t;
	}
	return found;
}

bool totp_new_secret(unsigned char key[TOTP_SECRET_LEN])
{
	return RAND_bytes(key, TOTP_SECRET_LEN) == 1;
}

/* Appends s percent-encoded; only RFC 3986 unreserved characters pass. */
static void add_pct(struct sbuf *sb, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			sbuf_addch(sb, (char)c);
		} else {
			sbuf_addch(sb, '%');
			sbuf_addch(sb, hex[c >> 4]);
			sbuf_addch(sb, hex[c & 15]);
		}
	}
}

char *totp_uri(struct arena *a, const char *issuer, const char *account,
	       const char *secret_b32)
{
	struct sbuf sb;

	sbuf_init(&sb, a, 160);
	sbuf_adds(&sb, "otpauth://totp/");
	add_pct(&sb, issuer);
	sbuf_addch(&sb, ':');
	add_pct(&sb, account);
	sbuf_adds(&sb, "?secret=");
	add_pct(&sb, secret_b32);
	sbuf_adds(&sb, "&issuer=");
	add_pct(&sb, issuer);
	sbuf_adds(&sb, "&algorithm=SHA1&digits=6&period=30");
	return sb.buf;
}
