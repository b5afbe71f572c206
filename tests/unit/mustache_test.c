/* mustache_test.c: the mustache renderer against the spec and our own cases */
#include "config.h"

#include <stdbool.h>
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
	return tap_done();
}
