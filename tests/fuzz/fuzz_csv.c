/* fuzz_csv.c: libFuzzer target for the CSV reader and writer */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "csv.h"
#include "http.h"
#include "sbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Small limits so the fuzzer reaches them; whatever parses must hold the
 * documented invariants, and writing it out must read back the same.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct csv_limits lim = { 50, 8, 64 };
	/* The writer may add a ' to a field: room for it. */
	static const struct csv_limits wide = { 50, 8, 65 };
	struct arena *a = arena_new();
	struct csv c, again;
	struct sbuf sb;
	const char *why = NULL;
	size_t i, j;

	if (csv_parse(a, (const char *)data, size, &lim, &c, &why) != TD_OK) {
		if (why == NULL || strncmp(why, "line ", 5) != 0)
			abort();
		arena_free(a);
		return 0;
	}
	if (c.n > lim.max_rows)
		abort();
	sbuf_init(&sb, a, size * 2 + 16);
	/* As exports do; without it a field starting with U+FEFF is eaten. */
	sbuf_adds(&sb, "\xef\xbb\xbf");
	for (i = 0; i < c.n; i++) {
		if (c.rows[i].n < 1 || c.rows[i].n > lim.max_cols ||
		    c.rows[i].line < 1 || c.rows[i].line > size + 1)
			abort();
		for (j = 0; j < c.rows[i].n; j++) {
			if (strlen(c.rows[i].f[j]) > lim.max_field ||
			    !http_utf8_valid(c.rows[i].f[j],
					     strlen(c.rows[i].f[j])))
				abort();
		}
		csv_add_row(&sb, c.rows[i].f, c.rows[i].n);
	}
	if (csv_parse(a, sb.buf, sb.len, &wide, &again, &why) != TD_OK ||
	    again.n != c.n)
		abort();
	for (i = 0; i < c.n; i++) {
		if (again.rows[i].n != c.rows[i].n)
			abort();
		for (j = 0; j < c.rows[i].n; j++)
			if (strcmp(csv_unneutralise(again.rows[i].f[j]),
				   c.rows[i].f[j]) != 0)
				abort();
	}
	arena_free(a);
	return 0;
}
