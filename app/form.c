/* form.c: reading submitted fields and reporting what is wrong with them */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define FLASH_COOKIE  "td_flash"
#define FORM_TAGS_MAX 20
#define FORM_TAG_LEN  40

bool form_sent(struct req *r, const char *name)
{
	if (r->json_body != NULL)
		return json_object_get(r->json_body, name) != NULL;
	return http_params_get(&r->form, name) != NULL;
}

const char *form_text(struct req *r, const char *name)
{
	const char *v = NULL, *e;
	json_t *j;

	if (r->json_body != NULL) {
		j = json_object_get(r->json_body, name);
		if (json_is_string(j))
			v = json_string_value(j);
		else if (json_is_integer(j))
			v = arena_printf(r->arena, "%" JSON_INTEGER_FORMAT,
					 json_integer_value(j));
	} else {
		v = http_params_get(&r->form, name);
	}
	if (v == NULL)
		return "";
	while (isspace((unsigned char)*v))
		v++;
	e = v + strlen(v);
	while (e > v && isspace((unsigned char)e[-1]))
		e--;
	return arena_strndup(r->arena, v, (size_t)(e - v));
}

bool form_flag(struct req *r, const char *name)
{
	const char *v;

	if (r->json_body != NULL)
		return json_is_true(json_object_get(r->json_body, name));
	v = http_params_get(&r->form, name);
	return v != NULL &&
	       (!strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "true"));
}

void form_error(struct req *r, const char *field, const char *message)
{
	if (r->error_fields == NULL) {
		r->error_fields = json_object();
		req_own_json(r, r->error_fields);
	}
	if (json_object_get(r->error_fields, field) == NULL)
		json_object_set_new(r->error_fields, field,
				    json_string(message));
}

bool form_has_errors(const struct req *r)
{
	return r->error_fields != NULL && json_object_size(r->error_fields) > 0;
}

enum td_err form_reject(struct req *r, const char *view_name,
			const char *const *keep)
{
	json_t *v, *typed;
	size_t i;

	if (r->want_json) {
		r->error_detail = "some fields are not valid";
		r->status = 422;
		return TD_EINPUT;
	}
	v = req_view(r);
	typed = json_object();
	for (i = 0; keep != NULL && keep[i] != NULL; i++)
		json_object_set_new(typed, keep[i],
				    json_string(form_text(r, keep[i])));
	json_object_set_new(v, "form", typed);
	json_object_set(v, "errors", r->error_fields);
	r->status = 422;
	r->view_name = view_name;
	return TD_OK;
}

const char *form_safe_next(const char *next)
{
	/* Only paths on this site: "/x", never "//host" or "/\host". */
	if (next == NULL || next[0] != '/' || next[1] == '/' || next[1] == '\\')
		return "/";
	if (strpbrk(next, "\r\n") != NULL)
		return "/";
	return next;
}

void form_flash(struct req *r, const char *kind, const char *text)
{
	struct sbuf sb;

	sbuf_init(&sb, r->arena, 128);
	sbuf_adds(&sb, FLASH_COOKIE "=");
	http_url_encode(&sb, kind);
	sbuf_addch(&sb, ':');
	http_url_encode(&sb, text);
	sbuf_adds(&sb, "; Path=/; HttpOnly; SameSite=Lax; Max-Age=60");
	req_header(r, "Set-Cookie", sb.buf);
}

/*
 * Adds one tag as typed: trimmed and lowercased (ASCII letters), skipped
 * when empty or already there; false (with a form error) when unusable.
 */
static bool add_tag(struct req *r, json_t *list, const char *s, size_t n)
{
	char *tag;
	json_t *t;
	size_t i;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0)
		return true;
	tag = arena_strndup(r->arena, s, n);
	for (i = 0; i < n; i++) {
		if ((unsigned char)tag[i] < 0x20 || tag[i] == 0x7f) {
			form_error(r, "tags",
				   "a tag cannot hold control characters");
			return false;
		}
		if (tag[i] == ',') {
			form_error(r, "tags", "a tag cannot hold a comma");
			return false;
		}
		tag[i] = (char)tolower((unsigned char)tag[i]);
	}
	if (http_utf8_len(tag) > FORM_TAG_LEN) {
		form_error(r, "tags",
			   arena_printf(r->arena,
					"'%s' is longer than %d characters",
					tag, FORM_TAG_LEN));
		return false;
	}
	json_array_foreach(list, i, t)
	{
		if (!strcmp(json_string_value(t), tag))
			return true;
	}
	json_array_append_new(list, json_string(tag));
	return true;
}

/* The tags sent: a comma-separated string, or (JSON) an array of strings. */
json_t *form_tags(struct req *r)
{
	json_t *list = json_array(), *j = NULL, *t;
	const char *s, *comma;
	size_t i;

	req_own_json(r, list);
	if (r->json_body != NULL)
		j = json_object_get(r->json_body, "tags");
	if (json_is_array(j)) {
		json_array_foreach(j, i, t)
		{
			if (!json_is_string(t)) {
				form_error(r, "tags",
					   "send the tags as strings");
				return list;
			}
			if (!add_tag(r, list, json_string_value(t),
				     strlen(json_string_value(t))))
				return list;
		}
	} else {
		s = form_text(r, "tags");
		for (;;) {
			comma = strchr(s, ',');
			if (!add_tag(r, list, s,
				     comma ? (size_t)(comma - s) : strlen(s)))
				return list;
			if (comma == NULL)
				break;
			s = comma + 1;
		}
	}
	if (json_array_size(list) > FORM_TAGS_MAX)
		form_error(r, "tags",
			   arena_printf(r->arena, "use at most %d tags",
					FORM_TAGS_MAX));
	return list;
}
