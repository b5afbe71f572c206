/* form.c: reading submitted fields and reporting what is wrong with them */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include <jansson.h>

#include "arena.h"
#include "form.h"
#include "http.h"
#include "req.h"
#include "sbuf.h"
#include "banned.h"

#define FLASH_COOKIE "td_flash"

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
