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

/* Byte by byte, the plain way: what sbuf_add_html must agree with. */
static void escape_slowly(struct sbuf *sb, const char *s, size_t n)
{
	static const char *const names[] = { "&amp;", "&lt;", "&gt;", "&quot;",
					     "&#39;" };
	static const char set[] = "&<>\"'";
	const char *hit;
	size_t i;

	for (i = 0; i < n; i++) {
		hit = s[i] != '\0' ? strchr(set, s[i]) : NULL;
		if (hit != NULL)
			sbuf_adds(sb, names[hit - set]);
		else
			sbuf_add(sb, s + i, 1);
	}
}

/*
 * sbuf_add_html agrees with the plain escape for a special byte at every
 * place of texts of many lengths, next to UTF-8, bytes that differ from a
 * special one by a bit, and an embedded NUL.
 */
static int escapes_like_slowly(struct arena *a)
{
	static const char specials[] = "&<>\"'";
	static const char fillers[] = "a\xe2\x80\x94%.=;?\x00\x7f\xa6\xbc";
	char text[41];
	struct sbuf fast, slow;
	size_t at, k, f, len;

	for (f = 0; f < sizeof(fillers) - 1; f++) {
		for (k = 0; k < 5; k++) {
			for (at = 0; at < sizeof(text); at++) {
				for (len = at + 1; len <= sizeof(text);
				     len += 7) {
					memset(text, fillers[f], sizeof(text));
					text[at] = specials[k];
					sbuf_init(&fast, a, 8);
					sbuf_init(&slow, a, 8);
					sbuf_add_html(&fast, text, len);
					escape_slowly(&slow, text, len);
					if (fast.len != slow.len ||
					    memcmp(fast.buf, slow.buf,
						   fast.len) != 0)
						return 0;
				}
			}
		}
	}
	return 1;
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
	ok(escapes_like_slowly(a),
	   "sbuf_add_html escapes a special byte at any place of a word alike");
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
