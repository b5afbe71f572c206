/* arena_test.c: the arena, sbuf and error tables */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "err.h"
#include "sbuf.h"
#include "tap.h"
#include "banned.h"

static int cleanups;

static void count_cleanup(void *p)
{
	cleanups += *(int *)p;
}

int main(void)
{
	struct arena *a = arena_new();
	struct sbuf sb;
	char *big, *s;
	int one = 1, ten = 10, i;
	uintptr_t p;

	p = (uintptr_t)arena_alloc(a, 3);
	ok(p % 16 == 0, "allocations are 16-byte aligned");
	p = (uintptr_t)arena_alloc(a, 5);
	ok(p % 16 == 0, "the next allocation is aligned too");
	big = arena_alloc(a, 1 << 20);
	ok(big[0] == 0 && big[(1 << 20) - 1] == 0, "a 1 MiB block is zeroed");
	s = arena_printf(a, "%s-%d", "T", 1042);
	ok(!strcmp(s, "T-1042"), "arena_printf formats into the arena");
	ok(arena_used(a) >= (1u << 20), "arena_used counts big blocks");

	sbuf_init(&sb, a, 1);
	ok(sb.buf != NULL && sb.buf[0] == '\0' && sb.len == 0,
	   "a new sbuf is an empty, NUL-terminated string");
	for (i = 0; i < 10000; i++)
		sbuf_addch(&sb, 'x');
	ok(sb.len == 10000 && sb.buf[10000] == '\0' && strlen(sb.buf) == 10000,
	   "sbuf grows past its first block and stays terminated");
	sbuf_reset(&sb);
	sbuf_add_html(&sb, "<a href=\"x\">Tom & Jerry's</a>", 29);
	ok(!strcmp(sbuf_cstr(&sb),
		   "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"),
	   "sbuf_add_html escapes the five HTML metacharacters");
	sbuf_reset(&sb);
	sbuf_addf(&sb, "%05.2f|%lld", 3.14159, 123456789012LL);
	ok(!strcmp(sbuf_cstr(&sb), "03.14|123456789012"), "sbuf_addf formats");

	arena_defer(a, count_cleanup, &one);
	arena_reset(a, 1 << 21);
	ok(cleanups == 1, "arena_reset runs the deferred cleanups");
	ok(arena_used(a) == 0, "arena_reset forgets every allocation");
	big = arena_alloc(a, 1 << 20);
	ok(big[0] == 0 && big[(1 << 20) - 1] == 0,
	   "a kept block handed out again is zeroed");
	s = arena_printf(a, "%d", 7);
	ok(!strcmp(s, "7"), "a reset arena allocates as new");
	cleanups = 0;
	arena_defer(a, count_cleanup, &one);
	arena_defer(a, count_cleanup, &ten);
	arena_free(a);
	ok(cleanups == 11, "arena_free runs every deferred cleanup");
	arena_free(NULL);
	ok(1, "arena_free(NULL) is a no-op");

	ok(td_status(TD_ENOENT) == 404 && td_status(TD_ETOOBIG) == 413 &&
		   td_status(TD_EUNAVAIL) == 503 && td_status(TD_OK) == 200,
	   "errors map to HTTP statuses");
	ok(!strcmp(td_code(TD_ENOENT), "not_found"),
	   "errors have stable JSON codes");
	for (i = 0; i < TD_ERR__MAX; i++)
		if (td_strerror((enum td_err)i) == NULL)
			break;
	ok(i == TD_ERR__MAX, "every error has a message");
	return tap_done();
}
