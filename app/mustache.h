/* mustache.h: a mustache renderer (spec v1.3 + inheritance, dynamic names) */
#ifndef TD_MUSTACHE_H
#define TD_MUSTACHE_H

#include <stdbool.h>
#include <stddef.h>

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
 * section 'items'".
 */
enum td_err mustache_set_add(struct mustache_set *set, const char *name,
			     const char *src, size_t len, const char **errmsg);

/* True if the set holds a template of that name. */
bool mustache_set_has(const struct mustache_set *set, const char *name);

/*
 * Renders template name with data as the context stack's root, appending
 * to out. {{x}} is HTML-escaped, {{{x}}} and {{&x}} are not. A missing
 * partial renders as nothing (as the spec says); a missing template name
 * returns TD_ENOENT. Lookups follow the spec: dotted names, implicit
 * iterator ".", JSON false/null/""-less falsiness per spec (empty arrays
 * are falsey, empty strings are truthy), numbers printed as JSON does
 * (integers plainly, reals with the shortest exact form).
 */
enum td_err mustache_render(const struct mustache_set *set, const char *name,
			    json_t *data, struct sbuf *out);

#endif
