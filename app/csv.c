/* csv.c: reading and writing RFC 4180 comma-separated values */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "arena.h"
#include "csv.h"
#include "http.h"
#include "sbuf.h"
#include "banned.h"

const struct csv_limits CSV_LIMITS_DEFAULT = {
	.max_rows = 100000,
	.max_cols = 64,
	.max_field = 64 * 1024,
};

/* Where the parse is: the input, the position and the physical line. */
struct parser {
	struct arena *a;
	const char *s;
	size_t len, pos, line;
	const struct csv_limits *lim;
	const char **why;
};

static enum td_err fail(struct parser *p, enum td_err err, size_t line,
			const char *what)
{
	*p->why = arena_printf(p->a, "line %zu: %s", line, what);
	return err;
}

static enum td_err too_long(struct parser *p, size_t line)
{
	*p->why =
		arena_printf(p->a, "line %zu: a field is longer than %zu bytes",
			     line, p->lim->max_field);
	return TD_ETOOBIG;
}

/* A quoted field from just after its opening quote to after its closing one. */
static enum td_err quoted(struct parser *p, const char **out)
{
	size_t start = p->pos, i = p->pos, n = 0, line = p->line;
	char *f, *o;

	for (;;) {
		if (i >= p->len)
			return fail(p, TD_EINPUT, line,
				    "unterminated quoted field");
		if (p->s[i] == '"') {
			if (i + 1 < p->len && p->s[i + 1] == '"')
				i++;
			else
				break;
		} else if (p->s[i] == '\n') {
			p->line++;
		} else if (p->s[i] == '\0') {
			return fail(p, TD_EINPUT, p->line, "a NUL byte");
		}
		i++;
		n++;
	}
	if (n > p->lim->max_field)
		return too_long(p, line);
	f = arena_alloc_raw(p->a, n + 1);
	o = f;
	for (; start < i; start++) {
		*o++ = p->s[start];
		if (p->s[start] == '"')
			start++; /* the second of a doubled quote */
	}
	*o = '\0';
	p->pos = i + 1;
	if (!http_utf8_valid(f, n))
		return fail(p, TD_EINPUT, line,
			    "invalid UTF-8 (save the file as CSV UTF-8)");
	*out = f;
	return TD_OK;
}

/* An unquoted field: up to the next ',', line ending or the end. */
static enum td_err unquoted(struct parser *p, const char **out)
{
	size_t i = p->pos;
	char c;

	for (; i < p->len; i++) {
		c = p->s[i];
		if (c == ',' || c == '\n' || c == '\r')
			break;
		if (c == '"')
			return fail(
				p, TD_EINPUT, p->line,
				"a quote inside an unquoted field (put the whole field in quotes and double the quote)");
		if (c == '\0')
			return fail(p, TD_EINPUT, p->line, "a NUL byte");
	}
	if (i - p->pos > p->lim->max_field)
		return too_long(p, p->line);
	if (!http_utf8_valid(p->s + p->pos, i - p->pos))
		return fail(p, TD_EINPUT, p->line,
			    "invalid UTF-8 (save the file as CSV UTF-8)");
	*out = arena_strndup(p->a, p->s + p->pos, i - p->pos);
	p->pos = i;
	return TD_OK;
}

/*
 * After a field: true with *more when a ',' follows (another field of
 * this record), false at the end of the record (its line ending is
 * consumed).
 */
static enum td_err after_field(struct parser *p, bool *more)
{
	*more = false;
	if (p->pos >= p->len)
		return TD_OK;
	switch (p->s[p->pos]) {
	case ',':
		p->pos++;
		*more = true;
		return TD_OK;
	case '\n':
		p->pos++;
		p->line++;
		return TD_OK;
	case '\r':
		if (p->pos + 1 < p->len && p->s[p->pos + 1] == '\n') {
			p->pos += 2;
			p->line++;
			return TD_OK;
		}
		return fail(p, TD_EINPUT, p->line,
			    "a carriage return without a line feed");
	default:
		return fail(
			p, TD_EINPUT, p->line,
			"text after a closing quote (a field in quotes must end at the quote)");
	}
}

static void add_row(struct parser *p, struct csv *out, size_t *cap, size_t line,
		    const char **fields, size_t n)
{
	struct csv_row *rows, *row;

	if (out->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		rows = arena_alloc_raw(p->a, *cap * sizeof(*rows));
		if (out->n > 0)
			memcpy(rows, out->rows, out->n * sizeof(*rows));
		out->rows = rows;
	}
	row = &out->rows[out->n++];
	row->line = line;
	row->n = n;
	row->f = arena_alloc_raw(p->a, n * sizeof(*row->f));
	memcpy(row->f, fields, n * sizeof(*row->f));
}

enum td_err csv_parse(struct arena *a, const char *s, size_t len,
		      const struct csv_limits *lim, struct csv *out,
		      const char **why)
{
	struct parser p = { a, s, len, 0, 1, lim, why };
	const char **fields =
		arena_alloc_raw(a, lim->max_cols * sizeof(*fields));
	size_t cap = 0, n, line;
	enum td_err err;
	bool more;

	out->rows = NULL;
	out->n = 0;
	*why = NULL;
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		p.pos = 3;
	while (p.pos < p.len) {
		if (out->n == lim->max_rows) {
			*why = arena_printf(a, "line %zu: more than %zu rows",
					    p.line, lim->max_rows);
			return TD_ETOOBIG;
		}
		line = p.line;
		n = 0;
		do {
			if (n == lim->max_cols)
				return fail(
					&p, TD_ETOOBIG, line,
					arena_printf(a, "more than %zu columns",
						     lim->max_cols));
			if (p.pos < p.len && s[p.pos] == '"') {
				p.pos++;
				err = quoted(&p, &fields[n]);
			} else {
				err = unquoted(&p, &fields[n]);
			}
			if (err == TD_OK)
				err = after_field(&p, &more);
			if (err != TD_OK)
				return err;
			n++;
		} while (more);
		add_row(&p, out, &cap, line, fields, n);
	}
	return TD_OK;
}

/* Starts, after any ', like something a spreadsheet would evaluate. */
static bool formula_like(const char *s)
{
	while (*s == '\'')
		s++;
	return *s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' ||
	       *s == '\r';
}

void csv_add_field(struct sbuf *sb, const char *s)
{
	bool quote = strpbrk(s, ",\"\r\n") != NULL;

	if (quote)
		sbuf_addch(sb, '"');
	if (formula_like(s))
		sbuf_addch(sb, '\'');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			sbuf_addch(sb, '"');
		sbuf_addch(sb, *s);
	}
	if (quote)
		sbuf_addch(sb, '"');
}

void csv_add_row(struct sbuf *sb, const char *const *fields, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			sbuf_addch(sb, ',');
		csv_add_field(sb, fields[i]);
	}
	sbuf_add(sb, "\r\n", 2);
}

const char *csv_unneutralise(const char *s)
{
	if (s[0] == '\'' && formula_like(s + 1))
		return s + 1;
	return s;
}
