/* maildkim.c: DKIM keys (OpenSSL) and signatures (libopendkim) */
#define _DEFAULT_SOURCE /* dkim.h needs u_char and u_int */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "arena.h"
#include "maildkim.h"
#include "banned.h"

bool dkim_keygen(struct arena *a, const char **private_pem,
		 const char **public_b64)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL;
	BIO *bio = NULL;
	char *pem_data, *b64;
	long pem_len;
	int der_len;
	bool ok = false;

	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) <= 0 ||
	    EVP_PKEY_generate(ctx, &key) <= 0)
		goto done;
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL ||
	    !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		goto done;
	pem_len = BIO_get_mem_data(bio, &pem_data);
	*private_pem = arena_strndup(a, pem_data, (size_t)pem_len);
	der_len = i2d_PUBKEY(key, &der);
	if (der_len <= 0)
		goto done;
	b64 = arena_alloc(a, (size_t)(4 * ((der_len + 2) / 3) + 1));
	EVP_EncodeBlock((unsigned char *)b64, der, der_len);
	*public_b64 = b64;
	ok = true;
done:
	OPENSSL_free(der);
	BIO_free(bio);
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

const char *dkim_sign_message(struct arena *a, const char *msg, size_t len,
			      const char *domain, const char *selector,
			      const char *private_pem, const char **why)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_STAT st = DKIM_STAT_INTERNAL;
	DKIM *d = NULL;
	u_char *sig = NULL;
	size_t siglen = 0;
	const char *out = NULL;

	*why = "cannot start libopendkim";
	if (lib == NULL)
		return NULL;
	d = dkim_sign(lib, (const unsigned char *)"tallydesk", NULL,
		      (dkim_sigkey_t)private_pem,
		      (const unsigned char *)selector,
		      (const unsigned char *)domain, DKIM_CANON_RELAXED,
		      DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
	if (d == NULL) {
		*why = dkim_getresultstr(st);
		goto done;
	}
	st = dkim_chunk(d, (u_char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &sig,
				      &siglen);
	if (st != DKIM_STAT_OK) {
		*why = dkim_geterror(d) != NULL ? dkim_geterror(d) :
						  dkim_getresultstr(st);
		goto done;
	}
	/* The buffer belongs to the handle: copy it before dkim_free. */
	out = arena_printf(a, "DKIM-Signature: %.*s", (int)siglen,
			   (const char *)sig);
	*why = NULL;
done:
	if (d != NULL)
		dkim_free(d);
	dkim_close(lib);
	return out;
}

bool dkim_verify_message(const char *msg, size_t len, const char *key_file,
			 const char **why)
{
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_STAT st = DKIM_STAT_INTERNAL;
	dkim_query_t method = DKIM_QUERY_FILE;
	DKIM *d = NULL;
	bool ok = false;

	*why = "cannot start libopendkim";
	if (lib == NULL)
		return false;
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &method,
			 sizeof(method)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
			 (void *)key_file, strlen(key_file)) != DKIM_STAT_OK)
		goto done;
	d = dkim_verify(lib, (const unsigned char *)"tallydesk", NULL, &st);
	if (d == NULL) {
		*why = dkim_getresultstr(st);
		goto done;
	}
	st = dkim_chunk(d, (u_char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	ok = st == DKIM_STAT_OK;
	*why = dkim_getresultstr(st);
done:
	if (d != NULL)
		dkim_free(d);
	dkim_close(lib);
	return ok;
}
