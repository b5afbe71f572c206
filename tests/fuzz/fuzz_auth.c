/* fuzz_auth.c: libFuzzer target for the Cookie and Authorization parsers */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "credential.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new();
	struct http_params cookies = { 0 };
	const char *why = NULL, *token, *v;
	char *s = arena_alloc(a, size + 1);
	int64_t tenant;

	memcpy(s, data, size);
	s[size] = '\0';
	if (http_parse_cookies(a, s, &HTTP_LIMITS_DEFAULT, &cookies, &why) ==
	    TD_OK) {
		v = http_params_get(&cookies, "td_session");
		if (v != NULL && credential_parse(v, '.', &tenant, &token)) {
			if (tenant <= 0 ||
			    strlen(token) != CREDENTIAL_TOKEN_LEN)
				abort();
		}
	}
	if (credential_parse_bearer(s, &tenant, &token)) {
		if (tenant <= 0 || !credential_is_token(token))
			abort();
	}
	if (credential_parse(s, '.', &tenant, &token) && tenant <= 0)
		abort();
	arena_free(a);
	return 0;
}
