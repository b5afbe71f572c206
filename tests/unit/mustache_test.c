/* mustache_test.c: the mustache renderer against the spec and our own cases */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "arena.h"
#include "err.h"
#include "mustache.h"
#include "sbuf.h"
#include "tap.h"
#include "banned.h"

/* The spec files, required ones first; "~" marks optional modules. */
static const char *const spec_files[] = {
	"comments", "delimiters",     "interpolation", "inverted", "partials",
	"sections", "~dynamic-names", "~inheritance",  "~lambdas",
};

struct counts {
	int passed, skipped, failed;
};

/* Prints s for a diagnostic line, with newlines and tabs made visible. */
static void diag_str(const char *label, const char *s, size_t n)
{
	struct arena *a = arena_new();
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, a, n + 16);
	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			sbuf_adds(&sb, "\\n");
		else if (s[i] == '\r')
			sbuf_adds(&sb, "\\r");
		else if (s[i] == '\t')
			sbuf_adds(&sb, "\\t");
		else
			sbuf_addch(&sb, s[i]);
	}
	diag("%s \"%s\"", label, sbuf_cstr(&sb));
	arena_free(a);
}

static void run_spec_test(const char *file, json_t *test, struct counts *c)
{
	const char *name = json_string_value(json_object_get(test, "name"));
	json_t *tmpl = json_object_get(test, "template");
	json_t *expected = json_object_get(test, "expected");
	json_t *partials = json_object_get(test, "partials");
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	const char *key, *msg = NULL;
	json_t *val;
	struct sbuf out;
	enum td_err err = TD_OK;
	bool same;

	json_object_foreach(partials, key, val)
	{
		if (err == TD_OK)
			err = mustache_set_add(set, key, json_string_value(val),
					       json_string_length(val), &msg);
	}
	if (err == TD_OK)
		err = mustache_set_add(set, "spec", json_string_value(tmpl),
				       json_string_length(tmpl), &msg);
	sbuf_init(&out, a, 256);
	if (err == TD_OK)
		err = mustache_render(set, "spec",
				      json_object_get(test, "data"), &out);
	same = err == TD_OK && out.len == json_string_length(expected) &&
	       memcmp(out.buf, json_string_value(expected), out.len) == 0;
	ok(same, "%s: %s", file, name);
	if (same) {
		c->passed++;
	} else {
		c->failed++;
		if (msg != NULL)
			diag("error: %s", msg);
		diag_str("template:", json_string_value(tmpl),
			 json_string_length(tmpl));
		diag_str("expected:", json_string_value(expected),
			 json_string_length(expected));
		diag_str("got:     ", out.buf, out.len);
	}
	arena_free(a);
}

static void run_spec_file(struct arena *a, const char *dir, const char *file,
			  struct counts *c)
{
	const char *path = arena_printf(a, "%s/%s.json", dir, file);
	json_error_t jerr;
	json_t *root, *tests, *test;
	size_t i;

	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		ok(0, "%s: cannot load '%s': %s", file, path, jerr.text);
		c->failed++;
		return;
	}
	tests = json_object_get(root, "tests");
	json_array_foreach(tests, i, test)
	{
		/* Lambdas are code in other languages; C data has none. */
		if (file[0] == '~' && !strcmp(file, "~lambdas")) {
			skip("lambda: %s",
			     json_string_value(json_object_get(test, "name")));
			c->skipped++;
			continue;
		}
		run_spec_test(file, test, c);
	}
	json_decref(root);
}

static void run_spec(void)
{
	const char *shared = getenv("TD_SHARED");
	const char *srcdir = getenv("TD_SRCDIR");
	struct counts c = { 0, 0, 0 };
	struct arena *a = arena_new();
	const char *dir;
	struct stat st;
	size_t i;

	if (shared != NULL && shared[0] != '\0')
		dir = arena_printf(a, "%s/testdata/mustache-spec", shared);
	else
		dir = arena_printf(
			a, "%s/../shared/testdata/mustache-spec",
			srcdir != NULL && srcdir[0] != '\0' ? srcdir : ".");
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		skip("mustache spec not found at %s: set TD_SHARED to the "
		     "shared folder",
		     dir);
		arena_free(a);
		return;
	}
	for (i = 0; i < sizeof(spec_files) / sizeof(spec_files[0]); i++)
		run_spec_file(a, dir, spec_files[i], &c);
	diag("mustache spec: %d passed, %d skipped, %d failed", c.passed,
	     c.skipped, c.failed);
	arena_free(a);
}

/* Compiles src as "t" in a fresh set and returns the error message. */
static const char *compile_error(struct arena *a, const char *name,
				 const char *src)
{
	struct mustache_set *set = mustache_set_new(a);
	const char *msg = NULL;
	enum td_err err;

	err = mustache_set_add(set, name, src, strlen(src), &msg);
	if (err != TD_EINPUT)
		return "(no error)";
	return msg != NULL ? msg : "(no message)";
}

static void test_syntax_errors(void)
{
	struct arena *a = arena_new();
	static const struct {
		const char *src, *msg;
	} cases[] = {
		{ "<ul>\n{{#items}}\n<li>{{name}}</li>\n",
		  "tickets/show: line 2: unclosed section 'items'" },
		{ "{{^none}}",
		  "tickets/show: line 1: unclosed inverted section "
		  "'none'" },
		{ "a\nb\n{{#a}}{{/b}}",
		  "tickets/show: line 3: closing tag 'b' does not match open "
		  "section 'a'" },
		{ "x\n{{/a}}", "tickets/show: line 2: unexpected closing tag "
			       "'a'" },
		{ "x {{name", "tickets/show: line 1: unclosed tag" },
		{ "{{! a\nlong comment\n}} {{{raw}}", "tickets/show: line 3: "
						      "unclosed tag" },
		{ "{{=<%=}}", "tickets/show: line 1: invalid delimiters '<%'" },
		{ "{{ }}", "tickets/show: line 1: empty tag" },
		{ "{{a b}}", "tickets/show: line 1: invalid tag name 'a b'" },
		{ "{{a..b}}", "tickets/show: line 1: invalid name 'a..b'" },
		{ "{{<layout}}\n{{$body}}\n{{/layout}}",
		  "tickets/show: line 3: closing tag 'layout' does not match "
		  "open block 'body'" },
	};
	const char *msg;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msg = compile_error(a, "tickets/show", cases[i].src);
		ok(!strcmp(msg, cases[i].msg), "syntax error message: %s",
		   cases[i].msg);
		if (strcmp(msg, cases[i].msg) != 0)
			diag("got: %s", msg);
	}
	arena_free(a);
}

/* Renders src with data (JSON text) and returns the output or NULL. */
static const char *render(struct arena *a, const char *src, const char *data,
			  enum td_err *errp)
{
	struct mustache_set *set = mustache_set_new(a);
	json_t *d = json_loads(data, 0, NULL);
	struct sbuf out;
	enum td_err err;

	sbuf_init(&out, a, 64);
	err = mustache_set_add(set, "t", src, strlen(src), NULL);
	if (err == TD_OK)
		err = mustache_render(set, "t", d, &out);
	json_decref(d);
	if (errp != NULL)
		*errp = err;
	return err == TD_OK ? sbuf_cstr(&out) : NULL;
}

/* mustache_render_raw(): plain text for mail, nothing escaped. */
static void test_raw(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	const char *src = "{{x}} {{#l}}{{.}}{{/l}}|{{>p}}";
	json_t *d = json_pack("{s:s, s:[s]}", "x", "Tom & <Jerry>", "l", "'q'");
	struct sbuf out;

	sbuf_init(&out, a, 64);
	mustache_set_add(set, "t", src, strlen(src), NULL);
	mustache_set_add(set, "p", "{{x}}", 5, NULL);
	ok(mustache_render_raw(set, "t", d, &out) == TD_OK &&
		   !strcmp(sbuf_cstr(&out),
			   "Tom & <Jerry> 'q'|Tom & <Jerry>"),
	   "mustache_render_raw escapes nothing, in sections and partials");
	sbuf_reset(&out);
	ok(mustache_render(set, "t", d, &out) == TD_OK &&
		   !strcmp(sbuf_cstr(&out), "Tom &amp; &lt;Jerry&gt; &#39;q&#39;|"
					    "Tom &amp; &lt;Jerry&gt;"),
	   "mustache_render of the same set still escapes");
	json_decref(d);
	arena_free(a);
}

static void test_escaping(void)
{
	struct arena *a = arena_new();
	const char *s;

	s = render(a, "<p>{{x}}</p><p>{{{x}}}</p><p>{{&x}}</p>",
		   "{\"x\": \"<script>alert('hi & bye')</script>\"}", NULL);
	ok(s != NULL && !strcmp(s, "<p>&lt;script&gt;alert(&#39;hi &amp; "
				   "bye&#39;)&lt;/script&gt;</p>"
				   "<p><script>alert('hi & bye')</script></p>"
				   "<p><script>alert('hi & bye')</script></p>"),
	   "{{x}} escapes a script tag, {{{x}}} and {{&x}} do not");
	s = render(a, "<a title=\"{{t}}\">", "{\"t\": \"\\\" onmouseover=x\"}",
		   NULL);
	ok(s != NULL && !strcmp(s, "<a title=\"&quot; onmouseover=x\">"),
	   "a double quote cannot break out of an attribute");
	arena_free(a);
}

static void test_values(void)
{
	struct arena *a = arena_new();
	const char *s;

	s = render(a, "{{i}} {{r}} {{w}} {{big}} {{t}} {{f}} [{{n}}] [{{o}}]",
		   "{\"i\": -42, \"r\": 0.1, \"w\": 1.0, \"big\": 1e300, "
		   "\"t\": true, \"f\": false, \"n\": null, \"o\": {}}",
		   NULL);
	ok(s != NULL && !strcmp(s, "-42 0.1 1 1e+300 true false [] []"),
	   "numbers print in their shortest form, null and objects as nothing");
	s = render(a,
		   "{{#e}}E{{/e}}{{#z}}Z{{/z}}{{#l}}L{{/l}}{{#m}}M{{/m}}"
		   "{{^l}}!L{{/l}}",
		   "{\"e\": \"\", \"z\": 0, \"l\": [], \"m\": {}}", NULL);
	ok(s != NULL && !strcmp(s, "EZM!L"),
	   "\"\", 0 and {} are truthy, [] is falsey");
	arena_free(a);
}

static void test_recursion(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	struct sbuf out;
	enum td_err err;
	size_t i;
	bool all_x = true;

	mustache_set_add(set, "self", "x{{>self}}", 10, NULL);
	mustache_set_add(set, "twice", "{{>twice}}{{>twice}}y", 21, NULL);
	mustache_set_add(set, "parent", "{{<parent}}{{/parent}}z", 23, NULL);
	mustache_set_add(set, "block", "{{$b}}{{/b}}", 12, NULL);
	mustache_set_add(set, "loop",
			 "{{<block}}{{$b}}[{{$b}}{{/b}}]{{/b}}"
			 "{{/block}}",
			 46, NULL);

	sbuf_init(&out, a, 64);
	err = mustache_render(set, "self", NULL, &out);
	for (i = 0; i < out.len; i++)
		all_x = all_x && out.buf[i] == 'x';
	ok(err == TD_OK && out.len == 1 + 64 && all_x,
	   "a partial that includes itself stops after 64 levels");

	sbuf_init(&out, a, 64);
	err = mustache_render(set, "parent", NULL, &out);
	ok(err == TD_OK && out.len == 1 + 64,
	   "a parent that extends itself stops after 64 levels");

	sbuf_init(&out, a, 64);
	err = mustache_render(set, "loop", NULL, &out);
	ok(err == TD_OK && out.len == 2 * 63,
	   "a block whose override holds itself stops after 64 levels");

	sbuf_init(&out, a, 64);
	err = mustache_render(set, "twice", NULL, &out);
	ok(err == TD_ESYS,
	   "a partial that includes itself twice hits the work limit");

	sbuf_init(&out, a, 64);
	ok(mustache_render(set, "nope", NULL, &out) == TD_ENOENT &&
		   out.len == 0,
	   "rendering a missing template gives TD_ENOENT");
	ok(mustache_set_has(set, "self") && !mustache_set_has(set, "nope"),
	   "mustache_set_has finds added templates only");
	arena_free(a);
}

static void test_replace(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	struct sbuf out;
	char name[32];
	int i;
	bool good = true;

	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "views/%d", i);
		mustache_set_add(set, name, name, strlen(name), NULL);
	}
	mustache_set_add(set, "views/7", "seven", 5, NULL);
	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "views/%d", i);
		sbuf_init(&out, a, 16);
		mustache_render(set, name, NULL, &out);
		good = good && !strcmp(out.buf, i == 7 ? "seven" : name);
	}
	ok(good, "100 templates by name, one of them replaced");
	arena_free(a);
}

static void test_layout(void)
{
	struct arena *a = arena_new();
	const char *s;
	struct mustache_set *set = mustache_set_new(a);
	static const char layout[] = "<html>\n"
				     "  <head>\n"
				     "    {{$head}}\n"
				     "    <title>tallydesk</title>\n"
				     "    {{/head}}\n"
				     "  </head>\n"
				     "  <body>\n"
				     "    {{$body}}\n"
				     "    {{/body}}\n"
				     "  </body>\n"
				     "</html>\n";
	static const char page[] = "{{<layout}}\n"
				   "{{$head}}\n"
				   "<title>{{title}}</title>\n"
				   "{{/head}}\n"
				   "{{$body}}\n"
				   "<ul>\n"
				   "  {{#items}}\n"
				   "  <li>{{.}}</li>\n"
				   "  {{/items}}\n"
				   "</ul>\n"
				   "{{/body}}\n"
				   "{{/layout}}\n";
	static const char expected[] = "<html>\n"
				       "  <head>\n"
				       "    <title>T&amp;C</title>\n"
				       "  </head>\n"
				       "  <body>\n"
				       "    <ul>\n"
				       "      <li>a</li>\n"
				       "      <li>b</li>\n"
				       "    </ul>\n"
				       "  </body>\n"
				       "</html>\n";
	struct sbuf out;
	json_t *d =
		json_pack("{s:s, s:[s,s]}", "title", "T&C", "items", "a", "b");

	mustache_set_add(set, "layout", layout, strlen(layout), NULL);
	mustache_set_add(set, "page", page, strlen(page), NULL);
	sbuf_init(&out, a, 64);
	mustache_render(set, "page", d, &out);
	s = sbuf_cstr(&out);
	ok(!strcmp(s, expected),
	   "a page's blocks are re-indented into its layout");
	if (strcmp(s, expected) != 0)
		diag("got: %s", s);
	json_decref(d);
	arena_free(a);
}

/*
 * Whitespace rules the spec leaves open: a parent pair stands alone like a
 * partial even with overrides on its line; two section tags on one line
 * keep the line, as in classic mustache.
 */
static void test_standalone(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	static const char layout[] = "<h1>{{$title}}x{{/title}}</h1>\n"
				     "<p>\n"
				     "  {{$body}}\n"
				     "  {{/body}}\n"
				     "</p>\n";
	static const char page[] =
		"<div>\n  {{<layout}}{{$title}}Hi{{/title}}{{/layout}}\n</div>\n";
	struct sbuf out;
	const char *s;

	mustache_set_add(set, "layout", layout, strlen(layout), NULL);
	mustache_set_add(set, "page", page, strlen(page), NULL);
	sbuf_init(&out, a, 64);
	mustache_render(set, "page", NULL, &out);
	ok(!strcmp(out.buf, "<div>\n  <h1>Hi</h1>\n  <p>\n  </p>\n</div>\n"),
	   "a parent pair with an override on its line is indented and "
	   "stands alone");
	s = render(a, "{{#a}}{{#a}}\nx\n{{/a}}{{/a}}\n", "{\"a\": true}", NULL);
	ok(s != NULL && !strcmp(s, "\nx\n\n"),
	   "two section tags on one line keep their newline");
	arena_free(a);
}

/* A ticket list of some 30 KB through a layout, a parent and a partial. */
static void test_big_list(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	static const char layout[] =
		"<!doctype html>\n<html><head><title>{{$title}}tallydesk"
		"{{/title}}</title></head>\n<body>\n{{$body}}\n{{/body}}\n"
		"</body></html>\n";
	static const char list[] =
		"{{<layout}}{{$title}}{{title}} - tallydesk{{/title}}\n"
		"{{$body}}\n"
		"<table>\n"
		"  {{#tickets}}\n"
		"  {{>tickets/row}}\n"
		"  {{/tickets}}\n"
		"</table>\n"
		"{{/body}}\n"
		"{{/layout}}\n";
	static const char row[] =
		"<tr id=\"t{{id}}\"><td>{{subject}}</td>"
		"<td>{{client.name}}</td>"
		"<td>{{#open}}open{{/open}}{{^open}}closed{{/open}}</td>"
		"<td>{{minutes}}</td></tr>\n";
	json_t *d = json_object(), *tickets = json_array();
	struct sbuf out, first;
	clock_t t0;
	double ms;
	enum td_err err = TD_OK;
	int i, rows = 0, reps = 200;
	const char *p;
	bool same = true;

	for (i = 0; i < 300; i++)
		json_array_append_new(tickets,
				      json_pack("{s:i, s:s, s:{s:s}, s:b, s:i}",
						"id", 1000 + i, "subject",
						"Printer <jammed> & smoking",
						"client", "name",
						"O'Brien & Sons", "open",
						i % 3 != 0, "minutes", i * 15));
	json_object_set_new(d, "title", json_string("Tickets"));
	json_object_set_new(d, "tickets", tickets);
	mustache_set_add(set, "layout", layout, strlen(layout), NULL);
	mustache_set_add(set, "tickets/list", list, strlen(list), NULL);
	mustache_set_add(set, "tickets/row", row, strlen(row), NULL);

	sbuf_init(&first, a, 1 << 15);
	mustache_render(set, "tickets/list", d, &first);
	t0 = clock();
	for (i = 0; i < reps; i++) {
		sbuf_init(&out, a, 1 << 15);
		err = mustache_render(set, "tickets/list", d, &out);
		same = same && err == TD_OK && out.len == first.len &&
		       !memcmp(out.buf, first.buf, out.len);
	}
	ms = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC / reps;
	for (p = first.buf; (p = strstr(p, "<tr id=")) != NULL; p++)
		rows++;
	ok(first.len > 30000 && rows == 300,
	   "a 300-row list renders to over 30 KB (%zu bytes)", first.len);
	ok(strstr(first.buf, "<title>Tickets - tallydesk</title>") != NULL &&
		   strstr(first.buf,
			  "<table>\n  <tr id=\"t1000\"><td>Printer &lt;jammed"
			  "&gt; &amp; smoking</td><td>O&#39;Brien &amp; "
			  "Sons</td><td>closed</td><td>0</td></tr>\n"
			  "  <tr id=\"t1001\">") != NULL &&
		   strstr(first.buf, "</tr>\n</table>\n</body></html>\n") !=
			   NULL,
	   "the list has its title, escaped and indented rows");
	ok(same, "%d renders of the same data give the same page", reps);
	diag("30 KB page: %.3f ms a render", ms);
	json_decref(d);
	arena_free(a);
}

/*
 * Row sources. The test source answers, for row r of n: id r*10-1 (an
 * int), name (text with no NUL after it), tags (a list, empty on odd
 * rows), flag (true on even rows), off (false), none (null), gone (not
 * the row's: the parent's shows), meta (an object) and dyn (a partial's
 * name). Its MV_JSON values are references to json the test keeps, so
 * it can check the renderer released every one.
 */
struct test_rows {
	json_t *tags[2];
	json_t *meta;
};

static const char *const test_keys[] = { "id",	 "name", "tags", "flag", "off",
					 "none", "gone", "meta", "dyn" };

static void test_get(void *ctx, size_t row, size_t key,
		     struct mustache_value *out)
{
	struct test_rows *t = ctx;
	static const char name[] = "Tom & <Jerry>'s!";

	switch (key) {
	case 0:
		out->kind = MV_INT;
		out->i = (int64_t)row * 10 - 1;
		break;
	case 1:
		out->kind = MV_TEXT;
		out->s = name;
		out->n = sizeof(name) - 2; /* without the "!" */
		break;
	case 2:
		out->kind = MV_JSON;
		out->json = json_incref(t->tags[row % 2]);
		break;
	case 3:
		out->kind = row % 2 ? MV_FALSE : MV_TRUE;
		break;
	case 4:
		out->kind = MV_FALSE;
		break;
	case 5:
		out->kind = MV_NULL;
		break;
	case 6:
		out->kind = MV_MISSING;
		break;
	case 7:
		out->kind = MV_JSON;
		out->json = json_incref(t->meta);
		break;
	case 8:
		out->kind = MV_TEXT;
		out->s = "p";
		out->n = 1;
		break;
	default:
		abort();
	}
}

static struct mustache_rows test_source(struct test_rows *t, size_t n)
{
	struct mustache_rows rows;

	rows.name = "items";
	rows.n = n;
	rows.keys = test_keys;
	rows.nkeys = sizeof(test_keys) / sizeof(test_keys[0]);
	rows.ctx = t;
	rows.get = test_get;
	return rows;
}

static void test_rows_init(struct test_rows *t)
{
	t->tags[0] = json_pack("[s, s]", "a<b", "c");
	t->tags[1] = json_array();
	t->meta = json_pack("{s:s, s:{s:i}}", "k", "v&w", "deep", "n", 7);
}

/* True if the renderer left only the test's own references. */
static bool test_rows_released(struct test_rows *t)
{
	bool ok = t->tags[0]->refcount == 1 && t->tags[1]->refcount == 1 &&
		  t->meta->refcount == 1;

	json_decref(t->tags[0]);
	json_decref(t->tags[1]);
	json_decref(t->meta);
	return ok;
}

/* The rows as the json list they stand for: what the source must equal. */
static json_t *test_rows_json(struct test_rows *t, size_t n)
{
	json_t *list = json_array(), *o, *v;
	struct mustache_value mv;
	size_t r, k;

	for (r = 0; r < n; r++) {
		o = json_object();
		for (k = 0; k < sizeof(test_keys) / sizeof(test_keys[0]); k++) {
			memset(&mv, 0, sizeof(mv));
			test_get(t, r, k, &mv);
			switch (mv.kind) {
			case MV_MISSING:
				continue;
			case MV_NULL:
				v = json_null();
				break;
			case MV_FALSE:
				v = json_false();
				break;
			case MV_TRUE:
				v = json_true();
				break;
			case MV_INT:
				v = json_integer(mv.i);
				break;
			case MV_TEXT:
				v = json_stringn(mv.s, mv.n);
				break;
			case MV_JSON:
				v = json_deep_copy(mv.json);
				json_decref(mv.json);
				break;
			default:
				abort();
			}
			json_object_set_new(o, test_keys[k], v);
		}
		json_array_append_new(list, o);
	}
	return list;
}

/*
 * Renders src over data (JSON text) with a source of n test rows, or
 * NULL on an error; *released says every MV_JSON reference came back.
 */
static const char *render_rows(struct arena *a, const char *src,
			       const char *data, size_t n, bool *released)
{
	struct mustache_set *set = mustache_set_new(a);
	json_t *d = json_loads(data, 0, NULL);
	struct test_rows t;
	struct mustache_rows rows;
	struct sbuf out;
	enum td_err err;

	test_rows_init(&t);
	rows = test_source(&t, n);
	sbuf_init(&out, a, 64);
	mustache_set_add(set, "p", "<{{name}}>", 10, NULL);
	err = mustache_set_add(set, "t", src, strlen(src), NULL);
	if (err == TD_OK)
		err = mustache_render_rows(set, "t", d, &rows, 1, &out);
	json_decref(d);
	*released = test_rows_released(&t);
	return err == TD_OK ? sbuf_cstr(&out) : NULL;
}

static void check_rows(struct arena *a, const char *src, const char *data,
		       size_t n, const char *want, const char *what)
{
	bool released;
	const char *s = render_rows(a, src, data, n, &released);

	ok(s != NULL && !strcmp(s, want) && released, "row source: %s", what);
	if (s == NULL || strcmp(s, want) != 0)
		diag("got: %s", s != NULL ? s : "(error)");
	if (!released)
		diag("a json reference was not released");
}

static void test_row_kinds(void)
{
	struct arena *a = arena_new();

	check_rows(a,
		   "{{#items}}{{id}} {{name}} {{flag}} {{off}} [{{none}}]"
		   " [{{tags}}] [{{meta}}];{{/items}}",
		   "{}", 2,
		   "-1 Tom &amp; &lt;Jerry&gt;&#39;s true false [] [] [];"
		   "9 Tom &amp; &lt;Jerry&gt;&#39;s false false [] [] [];",
		   "each kind prints as its json would");
	check_rows(a, "{{#items}}{{{name}}}|{{&name}}{{/items}}", "{}", 1,
		   "Tom & <Jerry>'s|Tom & <Jerry>'s",
		   "text is escaped by {{x}} only, and read to its length");
	check_rows(a,
		   "{{#items}}{{#flag}}F{{/flag}}{{^flag}}!F{{/flag}}"
		   "{{#off}}O{{/off}}{{^none}}N{{/none}}{{#id}}I{{/id}}"
		   "{{#name}}T{{/name}}{{#meta}}M{{/meta}};{{/items}}",
		   "{}", 2, "FNITM;!FNITM;",
		   "true, an int, text and an object are truthy; false and "
		   "null are not");
	arena_free(a);
}

static void test_row_lookup(void)
{
	struct arena *a = arena_new();

	check_rows(a, "{{#items}}{{gone}} {{title}} {{off}};{{/items}}",
		   "{\"gone\": \"up\", \"title\": \"T&C\", \"off\": 1}", 2,
		   "up T&amp;C false;up T&amp;C false;",
		   "a missing key and a key it lacks fall through to the "
		   "parent, its own keys shadow the parent's");
	check_rows(a, "{{^items}}none{{/items}}{{#items}}row{{/items}}", "{}",
		   0, "none", "an empty source is falsey");
	check_rows(a, "{{^items}}none{{/items}}[{{items}}]", "{}", 3, "[]",
		   "a source with rows is truthy and prints nothing");
	check_rows(a, "{{#items}}row{{/items}}", "{\"items\": [1]}", 3, "row",
		   "a json key of the same name comes first");
	check_rows(a, "{{#items}}{{#name}}<{{.}}|{{id}}>{{/name}};{{/items}}",
		   "{}", 2,
		   "<Tom &amp; &lt;Jerry&gt;&#39;s|-1>;"
		   "<Tom &amp; &lt;Jerry&gt;&#39;s|9>;",
		   "a section over text pushes it as {{.}}, the row stays "
		   "below");
	check_rows(a,
		   "{{#items}}{{#tags}}<span>{{.}}</span>{{/tags}}"
		   "{{^tags}}untagged{{/tags}};{{/items}}",
		   "{}", 2, "<span>a&lt;b</span><span>c</span>;untagged;",
		   "a section over a json list iterates it with {{.}}");
	check_rows(a,
		   "{{#items}}{{meta.k}} {{meta.deep.n}} [{{name.x}}]"
		   " [{{meta.nope}}] {{#meta}}{{k}}{{/meta}};{{/items}}",
		   "{\"name\": {\"x\": \"parent\"}}", 1,
		   "v&amp;w 7 [] [] v&amp;w;",
		   "dotted names go into a row's object and stop at its "
		   "text");
	check_rows(a, "{{#items}}{{>*dyn}}{{/items}}", "{}", 1,
		   "<Tom &amp; &lt;Jerry&gt;&#39;s>",
		   "a dynamic partial takes its name from a row");
	check_rows(a, "{{#items}}{{#items}}{{id}}{{/items}};{{/items}}", "{}",
		   2, "-19;-19;", "a source nests in itself");
	arena_free(a);
}

/* The same node meets two sources whose keys are in other orders. */
static void test_row_keys_cache(void)
{
	/* test_get answers by index: here "id" gets the name, "name" -1. */
	static const char *const other_keys[] = { "name", "id" };
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	static const char src[] = "{{#items}}{{>row}}{{/items}}|"
				  "{{#others}}{{>row}}{{/others}}";
	struct test_rows t;
	struct mustache_rows rows[2];
	struct sbuf out;
	enum td_err err;
	bool same = true;
	int i;

	test_rows_init(&t);
	rows[0] = test_source(&t, 2);
	rows[1] = test_source(&t, 1);
	rows[1].name = "others";
	rows[1].keys = other_keys;
	rows[1].nkeys = 2;
	mustache_set_add(set, "row", "{{id}}={{name}};", 16, NULL);
	mustache_set_add(set, "t", src, strlen(src), NULL);
	for (i = 0; i < 3; i++) {
		sbuf_init(&out, a, 64);
		err = mustache_render_rows(set, "t", NULL, rows, 2, &out);
		same = same && err == TD_OK &&
		       !strcmp(sbuf_cstr(&out),
			       "-1=Tom &amp; &lt;Jerry&gt;&#39;s;"
			       "9=Tom &amp; &lt;Jerry&gt;&#39;s;|"
			       "Tom &amp; &lt;Jerry&gt;&#39;s=-1;");
		if (i == 0 && !same)
			diag("got: %s", sbuf_cstr(&out));
	}
	ok(same && test_rows_released(&t),
	   "row source: a node finds its key again in sources of other "
	   "key orders, render after render");
	arena_free(a);
}

/* A page over the source renders as over the json list it stands for. */
static void test_row_same_as_json(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	static const char src[] =
		"{{#items}}<tr id=\"{{id}}\"><td>{{name}}|{{{name}}}</td>"
		"<td>{{#tags}}<i>{{.}}</i> {{/tags}}{{^tags}}-{{/tags}}</td>"
		"<td>{{#flag}}yes{{/flag}}{{^flag}}no{{/flag}} {{off}}"
		" {{none}}{{gone}}</td><td>{{meta.k}}{{#meta}}{{deep.n}}"
		"{{/meta}}</td><td>{{#name}}{{.}}{{/name}}{{title}}</td>"
		"</tr>\n{{/items}}{{^items}}empty{{/items}}";
	struct test_rows t;
	struct mustache_rows rows;
	struct sbuf a_out, b_out;
	json_t *d;
	bool same = true;
	size_t n;

	test_rows_init(&t);
	mustache_set_add(set, "t", src, strlen(src), NULL);
	for (n = 0; n < 4; n++) {
		d = json_pack("{s:s, s:s}", "title", "<T>", "gone", "g");
		rows = test_source(&t, n);
		sbuf_init(&a_out, a, 256);
		mustache_render_rows(set, "t", d, &rows, 1, &a_out);
		json_object_set_new(d, "items", test_rows_json(&t, n));
		sbuf_init(&b_out, a, 256);
		mustache_render(set, "t", d, &b_out);
		json_decref(d);
		same = same && a_out.len == b_out.len &&
		       !memcmp(a_out.buf, b_out.buf, a_out.len);
		if (a_out.len != b_out.len ||
		    memcmp(a_out.buf, b_out.buf, a_out.len))
			diag("rows: %s\njson: %s", a_out.buf, b_out.buf);
	}
	ok(same && test_rows_released(&t),
	   "row source: 0 to 3 rows render as the json list they stand for");
	arena_free(a);
}

/* A source iterated inside itself counts its rows against the limit. */
static void test_row_steps(void)
{
	struct arena *a = arena_new();
	struct mustache_set *set = mustache_set_new(a);
	static const char src[] = "{{#items}}{{#items}}{{/items}}{{/items}}";
	struct test_rows t;
	struct mustache_rows rows;
	struct sbuf out;
	enum td_err err;

	test_rows_init(&t);
	rows = test_source(&t, (size_t)1 << 12);
	mustache_set_add(set, "t", src, strlen(src), NULL);
	sbuf_init(&out, a, 64);
	err = mustache_render_rows(set, "t", NULL, &rows, 1, &out);
	ok(err == TD_ESYS && test_rows_released(&t),
	   "row source: 4096 x 4096 empty rows hit the work limit");
	arena_free(a);
}

int main(void)
{
	run_spec();
	test_syntax_errors();
	test_escaping();
	test_raw();
	test_values();
	test_recursion();
	test_replace();
	test_layout();
	test_standalone();
	test_big_list();
	test_row_kinds();
	test_row_lookup();
	test_row_keys_cache();
	test_row_same_as_json();
	test_row_steps();
	return tap_done();
}
