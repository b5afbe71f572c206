/* fuzz_mustache.c: libFuzzer target for the mustache compiler and renderer */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "err.h"
#include "mustache.h"
#include "sbuf.h"
#include "banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A small context that reaches every value type, lists to iterate, nested
 * objects for dotted names and strings that name the partials below, for
 * {{>*name}} and {{<*name}}.
 */
static const char context[] =
	"{\"a\": [1, 2.5, \"x<y\", {\"b\": true, \"s\": \"in\"}, [3, []]],"
	" \"s\": \"str & 'q'\", \"o\": {\"k\": \"v\", \"n\": null, \"o\": {"
	"\"k\": 1e300}}, \"e\": [], \"z\": \"\", \"f\": false, \"t\": true,"
	" \"i\": -7, \"p\": \"p\", \"q\": \"q\", \"self\": \"t\"}";

/*
 * The input is up to three templates separated by NUL bytes: "t" (the one
 * rendered), then "p" and "q", which "t" and each other may use as
 * partials or parents, themselves included. A template that fails to
 * compile must say why.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "t", "p", "q" };
	const char *src = (const char *)data, *nul, *msg;
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	json_t *ctx = json_loads(context, 0, NULL);
	struct sbuf out;
	enum td_err err;
	size_t i, n;

	if (ctx == NULL)
		abort();
	for (i = 0; i < 3; i++) {
		nul = memchr(src, '\0', size);
		n = nul ? (size_t)(nul - src) : size;
		msg = NULL;
		err = mustache_set_add(set, names[i], src, n, &msg);
		if (err != TD_OK && (err != TD_EINPUT || msg == NULL))
			abort();
		if (nul == NULL)
			break;
		src += n + 1;
		size -= n + 1;
	}
	sbuf_init(&out, a, 256);
	err = mustache_render(set, "t", ctx, &out);
	if (err != TD_OK && err != TD_ENOENT && err != TD_ESYS)
		abort();
	if (out.buf[out.len] != '\0')
		abort();
	/* Rendering twice gives the same bytes: no state leaks between. */
	if (err == TD_OK) {
		struct sbuf again;

		sbuf_init(&again, a, out.len + 1);
		if (mustache_render(set, "t", ctx, &again) != TD_OK ||
		    again.len != out.len || memcmp(again.buf, out.buf, out.len))
			abort();
	}
	json_decref(ctx);
	arena_free(a);
	return 0;
}
