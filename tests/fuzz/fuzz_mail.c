/* fuzz_mail.c: libFuzzer target for the mail parser (no database) */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "arena.h"
#include "mailparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Any bytes parse: every string that comes out is valid UTF-8 without
 * NUL, attachments have names, and trimming keeps a prefix-free result.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new();
	struct mail_msg m;
	const char *reply;
	size_t i;

	mail_parse(a, data, size, &m);
	if (!g_utf8_validate(m.text, -1, NULL))
		abort();
	if (m.subject != NULL && !g_utf8_validate(m.subject, -1, NULL))
		abort();
	if (m.from_name != NULL && !g_utf8_validate(m.from_name, -1, NULL))
		abort();
	for (i = 0; i < m.natt; i++)
		if (m.att[i].filename == NULL || *m.att[i].filename == '\0' ||
		    !g_utf8_validate(m.att[i].filename, -1, NULL))
			abort();
	if (m.kind >= MAIL_KIND__MAX)
		abort();
	reply = mail_trim_quoted(a, m.text);
	if (!g_utf8_validate(reply, -1, NULL))
		abort();
	arena_free(a);
	return 0;
}
