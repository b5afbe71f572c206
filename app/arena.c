/* arena.c: chunked bump allocator with deferred cleanups */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "banned.h"

#define ARENA_CHUNK 8192
#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	max_align_t data[];
};

struct cleanup {
	struct cleanup *next;
	void (*fn)(void *);
	void *ptr;
};

struct arena {
	struct chunk *head;  /* the chunk being filled; big blocks follow it */
	struct chunk *spare; /* chunks kept by arena_reset(), for reuse */
	struct cleanup *cleanups;
	size_t total;
};

static void oom(size_t n)
{
	fprintf(stderr, "tallydesk: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom(n);
	return q;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

static struct chunk *chunk_new(size_t size)
{
	struct chunk *c;

	if (size > SIZE_MAX - sizeof(*c))
		oom(size);
	c = xmalloc(sizeof(*c) + size);
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

/* A kept chunk of at least size bytes, or NULL. */
static struct chunk *take_spare(struct arena *a, size_t size)
{
	struct chunk **pp, *c;

	for (pp = &a->spare; (c = *pp) != NULL; pp = &c->next) {
		if (c->size >= size) {
			*pp = c->next;
			c->next = NULL;
			c->used = 0;
			return c;
		}
	}
	return NULL;
}

struct arena *arena_new(void)
{
	struct arena *a = xcalloc(1, sizeof(*a));

	a->head = chunk_new(ARENA_CHUNK);
	return a;
}

static void run_cleanups(struct arena *a)
{
	struct cleanup *cl;

	/* A cleanup may itself register more; keep draining. */
	while ((cl = a->cleanups) != NULL) {
		a->cleanups = cl->next;
		cl->fn(cl->ptr);
	}
}

static void free_chunks(struct chunk *c)
{
	struct chunk *next;

	for (; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
}

void arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	run_cleanups(a);
	free_chunks(a->head);
	free_chunks(a->spare);
	free(a);
}

void arena_reset(struct arena *a, size_t keep)
{
	struct chunk *c, *next, *kept = NULL;
	size_t sum = 0;

	run_cleanups(a);
	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		if (sum + c->size <= keep) {
			sum += c->size;
			c->used = 0;
			c->next = kept;
			kept = c;
		} else {
			free(c);
		}
	}
	/* Spares from before were already within keep; the new list replaces
	 * them. */
	free_chunks(a->spare);
	a->spare = kept;
	a->head = take_spare(a, ARENA_CHUNK);
	if (a->head == NULL)
		a->head = chunk_new(ARENA_CHUNK);
	a->total = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
	void *p = arena_alloc_raw(a, n);

	memset(p, 0, n);
	return p;
}

void *arena_alloc_raw(struct arena *a, size_t n)
{
	struct chunk *c = a->head;
	size_t need, off;
	void *p;

	if (n > SIZE_MAX - ARENA_ALIGN)
		oom(n);
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need == 0)
		need = ARENA_ALIGN;
	if (need > ARENA_CHUNK / 4) {
		/* Big blocks get a chunk of their own behind the head. */
		struct chunk *big = take_spare(a, need);

		if (big == NULL)
			big = chunk_new(need);

		big->used = need;
		big->next = c->next;
		c->next = big;
		a->total += need;
		return big->data;
	}
	if (c->size - c->used < need) {
		c = take_spare(a, ARENA_CHUNK);
		if (c == NULL)
			c = chunk_new(ARENA_CHUNK);
		c->next = a->head;
		a->head = c;
	}
	off = c->used;
	c->used += need;
	a->total += need;
	p = (char *)c->data + off;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_join(struct arena *a, const char *s, const char *t)
{
	size_t m = strlen(s), n = strlen(t);
	char *p = arena_alloc_raw(a, m + n + 1);

	memcpy(p, s, m);
	memcpy(p + m, t, n + 1);
	return p;
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	struct chunk *c = a->head;
	size_t room = c->size - c->used, need;
	va_list cp;
	int n;
	char *p;

	/*
	 * One pass into the head chunk's free space when the text fits (it
	 * nearly always does); otherwise measure, allocate and format again.
	 */
	va_copy(cp, ap);
	n = vsnprintf((char *)c->data + c->used, room, fmt, cp);
	va_end(cp);
	if (n < 0)
		return arena_strdup(a, "");
	if ((size_t)n < room) {
		p = (char *)c->data + c->used;
		need = ((size_t)n + 1 + ARENA_ALIGN - 1) &
		       ~(size_t)(ARENA_ALIGN - 1);
		c->used += need;
		a->total += need;
		return p;
	}
	p = arena_alloc_raw(a, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void arena_defer(struct arena *a, void (*fn)(void *), void *ptr)
{
	struct cleanup *cl = arena_alloc(a, sizeof(*cl));

	cl->fn = fn;
	cl->ptr = ptr;
	cl->next = a->cleanups;
	a->cleanups = cl;
}

size_t arena_used(const struct arena *a)
{
	return a->total;
}
