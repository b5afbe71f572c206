/* mustache.h: a mustache renderer (spec v1.3 + inheritance, dynamic names) */
#ifndef TD_MUSTACHE_H
#define TD_MUSTACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct arena;
struct sbuf;

/*
 * A set of named templates that may refer to each other as partials
 * ({{>name}}, {{>*dyn}}) and parents ({{<name}}). Everything the set
 * holds lives in the arena given to mustache_set_new(); a worker builds
 * one set at start (or SIGHUP) and renders from it for its lifetime.
 */
struct mustache_set;

struct mustache_set *mustache_set_new(struct arena *a);

/*
 * Compiles src (len bytes, need not be NUL-terminated) under name,
 * replacing any template of that name. On a syntax error returns
 * TD_EINPUT and sets *errmsg (in the set's arena) to a message naming the
 * template, line and problem, e.g. "tickets/show: line 4: unclosed
 * section 'items'"; errmsg may be NULL. Partials it names need not be
 * added yet.
 */
enum td_err mustache_set_add(struct mustache_set *set, const char *name,
			     const char *src, size_t len, const char **errmsg);

/* True if a template of that name was added to the set. */
bool mustache_set_has(const struct mustache_set *set, const char *name);

/*
 * Renders template name with data as the context stack's root, appending
 * to out (whose memory comes from out's arena). {{x}} is HTML-escaped
 * (& < > " and '), {{{x}}} and {{&x}} are not. A missing partial or
 * parent renders as nothing (as the spec says); a missing template name
 * returns TD_ENOENT. Lookups follow the spec: dotted names, implicit
 * iterator ".", context stack walking. Falsey are missing, null, false
 * and the empty list; everything else is truthy, "" and 0 included.
 * Integers print plainly, reals in the shortest form that reads back the
 * same (1.21 -> "1.21", 1.0 -> "1"), true/false as words, null, objects
 * and lists as nothing.
 *
 * Partials, parents and blocks that expand themselves stop after 64
 * levels, silently. A render that runs away (over 4 million steps or
 * 16 MiB of output, e.g. a partial including itself twice) stops and
 * returns TD_ESYS; out then holds a partial page, so do not send it.
 */
enum td_err mustache_render(const struct mustache_set *set, const char *name,
			    json_t *data, struct sbuf *out);

/*
 * A row source: a list the caller answers key by key instead of building
 * a json_t object per row, for the long lists of a page (building and
 * reading back 50 objects of 24 keys cost more than the rest of it).
 *
 * A name not found in any frame of the context stack is looked up among
 * the sources: {{#tickets}} iterates rows 0..n-1 and {{^tickets}} is true
 * when n is 0. Inside a row, a key among keys is answered by get(), and
 * everything else walks up the stack as for an object that lacks it; so
 * does a key get() answers MV_MISSING for. A row renders exactly as the
 * json object of the same values would.
 */
struct mustache_value {
	enum mustache_kind {
		MV_MISSING, /* not this row's: look further up */
		MV_NULL,
		MV_FALSE,
		MV_TRUE,
		MV_INT,
		MV_TEXT,
		MV_JSON
	} kind;
	const char *s; /* MV_TEXT: valid UTF-8, need not end in NUL... */
	size_t n;      /* ...and its length */
	int64_t i;     /* MV_INT */
	json_t *json;  /* MV_JSON: a new reference the renderer releases */
};

struct mustache_rows {
	const char *name; /* the section name it stands for */
	size_t n;	  /* rows */
	/*
	 * The keys it answers: a static array, as the renderer remembers
	 * places in it by its address.
	 */
	const char *const *keys;
	size_t nkeys;
	void *ctx;
	/* Fills out for key (an index into keys) of row; out starts zeroed. */
	void (*get)(void *ctx, size_t row, size_t key,
		    struct mustache_value *out);
};

/*
 * mustache_render() with nrows row sources after data (rows may be NULL
 * when nrows is 0); they must stay valid until it returns.
 */
enum td_err mustache_render_rows(const struct mustache_set *set,
				 const char *name, json_t *data,
				 const struct mustache_rows *rows, size_t nrows,
				 struct sbuf *out);

/*
 * The same, escaping nothing ({{x}} as {{{x}}}): for plain text such as
 * a mail's subject and text part, where an entity would show as typed.
 */
enum td_err mustache_render_raw(const struct mustache_set *set,
				const char *name, json_t *data, struct sbuf *out);

#endif
