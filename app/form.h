/* form.h: reading submitted fields and reporting what is wrong with them */
#ifndef TD_FORM_H
#define TD_FORM_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * A submitted field, from the form body or, for API calls, a string in the
 * JSON body; leading and trailing spaces removed; "" when absent.
 */
const char *form_text(struct req *r, const char *name);

/* True when the request sent the field at all (a form field or JSON key). */
bool form_sent(struct req *r, const char *name);

/* True for a checkbox that was ticked ("1", "on", "true" or JSON true). */
bool form_flag(struct req *r, const char *name);

/*
 * The "tags" field: a comma-separated string, or (JSON) an array of
 * strings; trimmed, lowercased, deduplicated, at most 20 of at most 40
 * characters, no commas or control characters. Problems go to
 * form_error(). The list lives with the request.
 */
json_t *form_tags(struct req *r);

/* Notes a problem with a field (shown next to it, and in the API's "fields").
 */
void form_error(struct req *r, const char *field, const char *message);

/* True once form_error() has been called. */
bool form_has_errors(const struct req *r);

/*
 * Finishes a request whose form had errors: the API gets 422 with the
 * fields; a browser gets the form again (view_name) with what was typed
 * (the fields named in keep) and the messages, status 422.
 */
enum td_err form_reject(struct req *r, const char *view_name,
			const char *const *keep);

/* A same-site path to go to after signing in ("/" when next is unsafe). */
const char *form_safe_next(const char *next);

/* Adds a flash message shown on the next page (kept in a cookie). */
void form_flash(struct req *r, const char *kind, const char *text);

#endif
