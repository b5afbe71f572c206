/* sbuf.c: growable strings in an arena */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "sbuf.h"
#include "banned.h"

void sbuf_init(struct sbuf *sb, struct arena *a, size_t hint)
{
	sb->arena = a;
	sb->cap = hint < 64 ? 64 : hint;
	sb->buf = arena_alloc_raw(a, sb->cap);
	sb->buf[0] = '\0';
	sb->len = 0;
}

static void grow(struct sbuf *sb, size_t extra)
{
	size_t cap = sb->cap;
	char *nb;

	if (extra < cap - sb->len)
		return;
	if (extra > ((size_t)-1) / 4 - sb->len)
		abort();
	while (cap - sb->len <= extra)
		cap *= 2;
	nb = arena_alloc_raw(sb->arena, cap);
	memcpy(nb, sb->buf, sb->len + 1);
	sb->buf = nb;
	sb->cap = cap;
}

void sbuf_add(struct sbuf *sb, const char *s, size_t n)
{
	if (n >= sb->cap - sb->len)
		grow(sb, n);
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void sbuf_adds(struct sbuf *sb, const char *s)
{
	sbuf_add(sb, s, strlen(s));
}

void sbuf_addch(struct sbuf *sb, char c)
{
	grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n <= 0)
		return;
	grow(sb, (size_t)n);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void sbuf_addf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

/* Which bytes need an entity: 0 for none, else an index into entities[]. */
static const unsigned char html_special[256] = {
	['&'] = 1, ['<'] = 2, ['>'] = 3, ['"'] = 4, ['\''] = 5,
};
static const char *const entities[] = { "",	"&amp;",  "&lt;",
					"&gt;", "&quot;", "&#39;" };

void sbuf_add_html(struct sbuf *sb, const char *s, size_t n)
{
	size_t i, run = 0;
	unsigned char k;

	for (i = 0; i < n; i++) {
		k = html_special[(unsigned char)s[i]];
		if (k == 0)
			continue;
		sbuf_add(sb, s + run, i - run);
		sbuf_adds(sb, entities[k]);
		run = i + 1;
	}
	sbuf_add(sb, s + run, n - run);
}

void sbuf_reset(struct sbuf *sb)
{
	sb->len = 0;
	sb->buf[0] = '\0';
}

const char *sbuf_cstr(const struct sbuf *sb)
{
	return sb->buf;
}
