/* arena.h: a region allocator; everything in it is freed in one call */
#ifndef TD_ARENA_H
#define TD_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* Abort-on-failure allocators for memory outside any arena. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* A new, empty arena. Never returns NULL (allocation failure aborts). */
struct arena *arena_new(void);

/*
 * Runs every deferred cleanup (last registered first), then frees all
 * memory of the arena and the arena itself. NULL is a no-op.
 */
void arena_free(struct arena *a);

/*
 * Runs the deferred cleanups and forgets every allocation, but keeps up to
 * keep bytes of chunks for the next use: a worker resets one arena per
 * request instead of asking malloc for the same blocks again.
 */
void arena_reset(struct arena *a, size_t keep);

/* n bytes, aligned for any type, zeroed. Lives until arena_free(). */
void *arena_alloc(struct arena *a, size_t n);

/* Like arena_alloc, but the memory is not zeroed. */
void *arena_alloc_raw(struct arena *a, size_t n);

/* Copies of strings; the result is NUL-terminated and lives in the arena. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* s followed by t, without a format to parse (for hot paths). */
char *arena_join(struct arena *a, const char *s, const char *t);
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Registers fn(ptr) to run when the arena is freed, before its memory is
 * released. Use it the moment a PGresult, json_t or handle is obtained.
 */
void arena_defer(struct arena *a, void (*fn)(void *), void *ptr);

/* Bytes handed out so far (for limits and tests). */
size_t arena_used(const struct arena *a);

#endif
