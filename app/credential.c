/* credential.c: the text shapes of session cookies and API keys */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "credential.h"
#include "banned.h"

bool credential_is_token(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return i == CREDENTIAL_TOKEN_LEN;
}

bool credential_parse(const char *s, char sep, int64_t *tenant,
		      const char **token)
{
	const char *p = s;
	int64_t id = 0;

	if (*p < '1' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (p - s >= 18)
			return false; /* keeps id far from overflow */
		id = id * 10 + (*p - '0');
	}
	if (*p != sep || !credential_is_token(p + 1))
		return false;
	*tenant = id;
	*token = p + 1;
	return true;
}

bool credential_parse_bearer(const char *header, int64_t *tenant,
			     const char **token)
{
	if (strncmp(header, "Bearer td_", 10) != 0)
		return false;
	return credential_parse(header + 10, '_', tenant, token);
}
