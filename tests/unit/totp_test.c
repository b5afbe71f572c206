/* totp_test.c: RFC 6238/4226 vectors, base32, verify window, replay, URI */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "totp.h"
#include "tap.h"
#include "banned.h"

static const unsigned char rfc_key[] = "12345678901234567890";
#define RFC_KEYLEN 20

/* The 6-digit code for a step, as a user would type it. */
static void code_for(int64_t step, char buf[7])
{
	snprintf(buf, 7, "%06u",
		 (unsigned)totp_hotp(rfc_key, RFC_KEYLEN, (uint64_t)step, 6));
}

static void test_rfc6238(void)
{
	static const struct {
		int64_t time;
		uint32_t code;
	} v[] = {
		{ 59, 94287082 },	  { 1111111109, 7081804 },
		{ 1111111111, 14050471 }, { 1234567890, 89005924 },
		{ 2000000000, 69279037 }, { 20000000000, 65353130 },
	};
	size_t i;
	uint32_t got;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		got = totp_hotp(rfc_key, RFC_KEYLEN, (uint64_t)v[i].time / 30,
				8);
		ok(got == v[i].code, "RFC 6238 SHA1 at T=%lld is %08u",
		   (long long)v[i].time, (unsigned)v[i].code);
	}
}

static void test_rfc4226(void)
{
	static const uint32_t v[] = { 755224, 287082, 359152, 969429, 338314,
				      254676, 287922, 162583, 399871, 520489 };
	uint32_t i;
	int bad = 0;

	for (i = 0; i < 10; i++) {
		if (totp_hotp(rfc_key, RFC_KEYLEN, i, 6) != v[i]) {
			diag("HOTP counter %u: got %u, want %06u", i,
			     totp_hotp(rfc_key, RFC_KEYLEN, i, 6), v[i]);
			bad++;
		}
	}
	ok(bad == 0, "RFC 4226 HOTP vectors for counters 0..9");
	ok(totp_hotp(rfc_key, RFC_KEYLEN, 0, 5) == UINT32_MAX &&
		   totp_hotp(rfc_key, RFC_KEYLEN, 0, 9) == UINT32_MAX,
	   "HOTP refuses 5 and 9 digits");
	ok(totp_hotp(rfc_key, 0, 0, 6) < 1000000,
	   "HOTP with an empty key still gives a code");
}

static void test_base32(void)
{
	static const char *const v[][2] = {
		{ "", "" },
		{ "f", "MY" },
		{ "fo", "MZXQ" },
		{ "foo", "MZXW6" },
		{ "foob", "MZXW6YQ" },
		{ "fooba", "MZXW6YTB" },
		{ "foobar", "MZXW6YTBOI" },
	};
	char enc[64];
	unsigned char dec[64], bin[256];
	size_t i, n, len;
	int bad = 0;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = totp_base32_encode((const unsigned char *)v[i][0],
				       strlen(v[i][0]), enc);
		ok(n == strlen(v[i][1]) && !strcmp(enc, v[i][1]),
		   "base32 of \"%s\" is \"%s\"", v[i][0], v[i][1]);
	}
	ok(totp_base32_decode("MZXW6YQ=", dec, sizeof(dec), &len) && len == 4 &&
		   !memcmp(dec, "foob", 4),
	   "base32 decode skips '=' padding");
	ok(totp_base32_decode("mzxw 6ytb oi", dec, sizeof(dec), &len) &&
		   len == 6 && !memcmp(dec, "foobar", 6),
	   "base32 decode accepts lowercase and spaces");
	ok(totp_base32_decode("", dec, sizeof(dec), &len) && len == 0,
	   "base32 decode of an empty string is empty");
	ok(!totp_base32_decode("MZXW1YQ", dec, sizeof(dec), &len),
	   "base32 decode rejects '1'");
	ok(!totp_base32_decode("MZXW-6YQ", dec, sizeof(dec), &len),
	   "base32 decode rejects '-'");
	ok(!totp_base32_decode("MZXW6YQ\n", dec, sizeof(dec), &len),
	   "base32 decode rejects a newline");
	ok(!totp_base32_decode("MZXW6YTBOI", dec, 5, &len),
	   "base32 decode refuses 6 bytes into 5");
	ok(totp_base32_decode("MZXW6YTBOI", dec, 6, &len) && len == 6,
	   "base32 decode fits 6 bytes into exactly 6");

	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 37 + 11);
	for (n = 0; n <= 41; n++) {
		char big[512];
		unsigned char back[256];

		len = totp_base32_encode(bin, n, big);
		if (len != (n * 8 + 4) / 5 ||
		    !totp_base32_decode(big, back, sizeof(back), &len) ||
		    len != n || memcmp(back, bin, n) != 0)
			bad++;
	}
	ok(bad == 0, "base32 round trips binary data of 0..41 bytes");
}

static void test_verify(void)
{
	const int64_t now = 1111111111, step = now / 30;
	char c[7], spaced[16];

	code_for(step, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, -1) == step,
	   "verify accepts the current step and returns it");
	ok(!strcmp(c, "050471"), "the 6-digit code keeps its leading zero");
	code_for(step - 1, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, -1) == step - 1,
	   "verify accepts the previous step");
	code_for(step + 1, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, -1) == step + 1,
	   "verify accepts the next step");
	code_for(step - 2, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, -1) == -1,
	   "verify refuses a code two steps old");
	code_for(step + 2, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, -1) == -1,
	   "verify refuses a code two steps ahead");

	code_for(step, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, step) == -1,
	   "verify refuses a replay of the stored step");
	code_for(step - 1, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, step) == -1,
	   "verify refuses an older step than the stored one");
	code_for(step + 1, c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, c, now, step) == step + 1,
	   "verify accepts a newer step than the stored one");

	code_for(step, c);
	snprintf(spaced, sizeof(spaced), " %.3s %.3s ", c, c + 3);
	ok(totp_verify(rfc_key, RFC_KEYLEN, spaced, now, -1) == step,
	   "verify accepts \"%s\" with spaces", spaced);
	snprintf(spaced, sizeof(spaced), "%.5s", c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, spaced, now, -1) == -1,
	   "verify refuses 5 digits");
	snprintf(spaced, sizeof(spaced), "%s0", c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, spaced, now, -1) == -1,
	   "verify refuses 7 digits");
	snprintf(spaced, sizeof(spaced), "%.5sx", c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, spaced, now, -1) == -1,
	   "verify refuses a letter");
	snprintf(spaced, sizeof(spaced), "%s\n", c);
	ok(totp_verify(rfc_key, RFC_KEYLEN, spaced, now, -1) == -1,
	   "verify refuses a newline");
	ok(totp_verify(rfc_key, RFC_KEYLEN, "", now, -1) == -1 &&
		   totp_verify(rfc_key, RFC_KEYLEN, NULL, now, -1) == -1,
	   "verify refuses empty and NULL codes");
	ok(totp_verify(rfc_key, RFC_KEYLEN, "287082", 59, -1) == 1,
	   "verify at T=59 (step 1) matches the RFC code 287082");
	ok(totp_verify(rfc_key, RFC_KEYLEN, "755224", 10, -1) == 0,
	   "verify at step 0 has no previous step and still works");
}

static void test_secret_and_uri(void)
{
	struct arena *a = arena_new();
	unsigned char k1[TOTP_SECRET_LEN], k2[TOTP_SECRET_LEN];
	char b32[(TOTP_SECRET_LEN * 8 + 4) / 5 + 1];
	const char *uri;

	ok(totp_new_secret(k1) && totp_new_secret(k2) &&
		   memcmp(k1, k2, sizeof(k1)) != 0,
	   "two new secrets differ");
	ok(totp_base32_encode(k1, sizeof(k1), b32) == 32,
	   "a 20-byte secret is 32 base32 characters");

	uri = totp_uri(a, "Acme & Co", "alice@example.com", "JBSWY3DPEHPK3PXP");
	ok(!strcmp(uri, "otpauth://totp/Acme%20%26%20Co:alice%40example.com"
			"?secret=JBSWY3DPEHPK3PXP&issuer=Acme%20%26%20Co"
			"&algorithm=SHA1&digits=6&period=30"),
	   "URI percent-encodes issuer and account");
	diag("%s", uri);
	uri = totp_uri(a, "a-b.c_d~e", "x:y/z?\xc3\xa9", "MZXW6");
	ok(!strcmp(uri, "otpauth://totp/a-b.c_d~e:x%3Ay%2Fz%3F%C3%A9"
			"?secret=MZXW6&issuer=a-b.c_d~e"
			"&algorithm=SHA1&digits=6&period=30"),
	   "URI passes unreserved characters and encodes : / ? and UTF-8");
	arena_free(a);
}

int main(void)
{
	test_rfc6238();
	test_rfc4226();
	test_base32();
	test_verify();
	test_secret_and_uri();
	return tap_done();
}
