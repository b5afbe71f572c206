/* sbuf.h: growable strings in an arena */
#ifndef TD_SBUF_H
#define TD_SBUF_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/*
 * Invariants: buf is never NULL and buf[len] == '\0' at all times, so
 * sbuf_cstr() is always valid. Memory comes from the arena given to
 * sbuf_init(); growing leaves the old block to the arena.
 */
struct sbuf {
	char *buf;
	size_t len;
	size_t cap;
	struct arena *arena;
};

void sbuf_init(struct sbuf *sb, struct arena *a, size_t hint);
void sbuf_add(struct sbuf *sb, const char *s, size_t n);
void sbuf_adds(struct sbuf *sb, const char *s);
void sbuf_addch(struct sbuf *sb, char c);
void sbuf_addf(struct sbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sbuf_vaddf(struct sbuf *sb, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Appends s with & < > " ' replaced by HTML entities. */
void sbuf_add_html(struct sbuf *sb, const char *s, size_t n);
void sbuf_reset(struct sbuf *sb);
const char *sbuf_cstr(const struct sbuf *sb);

#endif
