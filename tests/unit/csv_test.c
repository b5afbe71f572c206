/* csv_test.c: the RFC 4180 reader, its limits and errors, and the writer */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "csv.h"
#include "sbuf.h"
#include "tap.h"
#include "banned.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static struct arena *a;

static enum td_err parse(const char *s, size_t len, struct csv *out,
			 const char **why)
{
	return csv_parse(a, s, len, &CSV_LIMITS_DEFAULT, out, why);
}

static bool field_is(const struct csv *c, size_t row, size_t col,
		     const char *want)
{
	return row < c->n && col < c->rows[row].n &&
	       strcmp(c->rows[row].f[col], want) == 0;
}

static bool why_is(const char *why, const char *want)
{
	return why != NULL && strcmp(why, want) == 0;
}

static bool why_has(const char *why, const char *needle)
{
	return why != NULL && strstr(why, needle) != NULL;
}

static void test_reading(void)
{
	struct csv c;
	const char *why;
	enum td_err err;

	err = parse(S("name,domain\nAcme,acme.com\n"), &c, &why);
	ok(err == TD_OK && c.n == 2 && c.rows[0].n == 2 &&
		   field_is(&c, 0, 0, "name") && field_is(&c, 1, 1, "acme.com"),
	   "plain fields split on commas and LF");
	err = parse(S("a,b\r\nc,d\r\n"), &c, &why);
	ok(err == TD_OK && c.n == 2 && field_is(&c, 0, 1, "b") &&
		   field_is(&c, 1, 0, "c"),
	   "CRLF ends a record and is not part of the field");
	err = parse(S("a,b\nc,d"), &c, &why);
	ok(err == TD_OK && c.n == 2 && field_is(&c, 1, 1, "d"),
	   "the last record needs no line ending");
	err = parse(S("\xef\xbb\xbfname\nx\n"), &c, &why);
	ok(err == TD_OK && c.n == 2 && field_is(&c, 0, 0, "name"),
	   "a UTF-8 BOM at the start is skipped");
	err = parse(S("\"Acme, Inc.\",x\n"), &c, &why);
	ok(err == TD_OK && c.rows[0].n == 2 && field_is(&c, 0, 0, "Acme, Inc."),
	   "a quoted field keeps its comma");
	err = parse(S("\"say \"\"hi\"\"\",\"\"\"\"\n"), &c, &why);
	ok(err == TD_OK && field_is(&c, 0, 0, "say \"hi\"") &&
		   field_is(&c, 0, 1, "\""),
	   "a doubled quote inside quotes is one quote");
	err = parse(S("\"line one\r\nline two\nthree\",b\nnext,row\n"), &c,
		    &why);
	ok(err == TD_OK && c.n == 2 &&
		   field_is(&c, 0, 0, "line one\r\nline two\nthree") &&
		   field_is(&c, 1, 0, "next"),
	   "CR and LF inside quotes are kept in the field");
	ok(err == TD_OK && c.rows[0].line == 1 && c.rows[1].line == 4,
	   "a record after an embedded newline knows its physical line");
	err = parse(S("a,,c,\n"), &c, &why);
	ok(err == TD_OK && c.rows[0].n == 4 && field_is(&c, 0, 1, "") &&
		   field_is(&c, 0, 3, ""),
	   "empty fields, a trailing comma included, are kept");
	err = parse(S("a\n\nb\n"), &c, &why);
	ok(err == TD_OK && c.n == 3 && c.rows[1].n == 1 &&
		   field_is(&c, 1, 0, "") && c.rows[2].line == 3,
	   "an empty line is a record with one empty field");
	err = parse(S("\"\"\n"), &c, &why);
	ok(err == TD_OK && c.n == 1 && field_is(&c, 0, 0, ""),
	   "an empty quoted field is the empty string");
	err = parse(S(""), &c, &why);
	ok(err == TD_OK && c.n == 0, "empty input has no records");
	err = parse(S("\xef\xbb\xbf"), &c, &why);
	ok(err == TD_OK && c.n == 0, "a BOM alone has no records");
	err = parse(S("caf\xc3\xa9,\xe2\x82\xac\n"), &c, &why);
	ok(err == TD_OK && field_is(&c, 0, 0, "caf\xc3\xa9"),
	   "UTF-8 text is kept as it is");
}

static void test_errors(void)
{
	struct csv c;
	const char *why;
	enum td_err err;

	err = parse(S("a,b\nc,d\ne,\"open\nstill open\n"), &c, &why);
	ok(err == TD_EINPUT && why_is(why, "line 3: unterminated quoted field"),
	   "an unterminated quote names the line it opened on");
	err = parse(S("a\n\"x\"y,z\n"), &c, &why);
	ok(err == TD_EINPUT &&
		   why_has(why, "line 2: text after a closing quote"),
	   "text after a closing quote is refused");
	err = parse(S("a\nab\"c\n"), &c, &why);
	ok(err == TD_EINPUT &&
		   why_has(why, "line 2: a quote inside an unquoted"),
	   "a quote inside an unquoted field is refused");
	err = parse(S("a\rb\n"), &c, &why);
	ok(err == TD_EINPUT &&
		   why_has(why,
			   "line 1: a carriage return without a line feed"),
	   "a bare CR is refused");
	err = parse(S("a\nb\0c\n"), &c, &why);
	ok(err == TD_EINPUT && why_is(why, "line 2: a NUL byte"),
	   "a NUL byte is refused");
	err = parse(S("x\n\"q\0\"\n"), &c, &why);
	ok(err == TD_EINPUT && why_is(why, "line 2: a NUL byte"),
	   "a NUL byte inside quotes is refused");
	err = parse(S("ok\nfine\ncaf\xe9\n"), &c, &why);
	ok(err == TD_EINPUT && why_has(why, "line 3: invalid UTF-8"),
	   "Latin-1 bytes are invalid UTF-8, with the line");
	err = parse(S("\"multi\nline\",\"bad \xc0\xaf\"\n"), &c, &why);
	ok(err == TD_EINPUT && why_has(why, "line 2: invalid UTF-8"),
	   "an overlong sequence in a quoted field is refused");
	err = parse(S("a\n\xed\xa0\x80\n"), &c, &why);
	ok(err == TD_EINPUT && why_has(why, "invalid UTF-8"),
	   "a UTF-16 surrogate is refused");
}

static void test_limits(void)
{
	struct csv_limits lim = CSV_LIMITS_DEFAULT;
	struct sbuf sb;
	struct csv c;
	const char *why;
	enum td_err err;
	size_t i;

	sbuf_init(&sb, a, 1024);
	for (i = 0; i < 64; i++)
		sbuf_adds(&sb, i ? ",x" : "x");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_OK && c.rows[0].n == 64, "64 columns are accepted");
	sbuf_adds(&sb, ",x\n");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_ETOOBIG && why_is(why, "line 1: more than 64 columns"),
	   "65 columns are refused");

	sbuf_reset(&sb);
	for (i = 0; i < 64 * 1024; i++)
		sbuf_addch(&sb, 'a');
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_OK && strlen(c.rows[0].f[0]) == 64 * 1024,
	   "a field of exactly 64 KiB is accepted");
	sbuf_addch(&sb, 'a');
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_ETOOBIG && why_has(why, "longer than 65536 bytes"),
	   "an unquoted field over 64 KiB is refused");
	sbuf_reset(&sb);
	sbuf_adds(&sb, "ok\n\"");
	for (i = 0; i < 64 * 1024; i++)
		sbuf_adds(&sb, "\"\"");
	sbuf_adds(&sb, "\"\n");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_OK && strlen(c.rows[1].f[0]) == 64 * 1024,
	   "a quoted field is measured after unquoting: 64 Ki quotes fit");
	sbuf_reset(&sb);
	sbuf_adds(&sb, "ok\n\"\"\"");
	for (i = 0; i < 64 * 1024; i++)
		sbuf_adds(&sb, "\"\"");
	sbuf_adds(&sb, "\"\n");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_ETOOBIG && why_has(why, "line 2: a field is longer"),
	   "a quoted field over 64 KiB after unquoting is refused");

	sbuf_reset(&sb);
	for (i = 0; i < 100000; i++)
		sbuf_adds(&sb, "r\n");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_OK && c.n == 100000, "100,000 rows are accepted");
	sbuf_adds(&sb, "r");
	err = parse(sb.buf, sb.len, &c, &why);
	ok(err == TD_ETOOBIG &&
		   why_is(why, "line 100001: more than 100000 rows"),
	   "row 100,001 is refused with its line");
	lim.max_rows = 2;
	err = csv_parse(a, S("a\nb\n"), &lim, &c, &why);
	ok(err == TD_OK && c.n == 2,
	   "a trailing newline does not count as another row");
}

static const char *written(const char *const *fields, size_t n)
{
	struct sbuf sb;

	sbuf_init(&sb, a, 64);
	csv_add_row(&sb, fields, n);
	return sbuf_cstr(&sb);
}

static void test_writing(void)
{
	static const char *const plain[] = { "Acme", "acme.com", "" };
	static const char *const special[] = { "a,b", "say \"hi\"",
					       "two\nlines", "cr\rhere",
					       "caf\xc3\xa9" };
	static const char *const formulas[] = {
		"=SUM(A1:A2)", "+44 20 7946 0000", "-5",     "@cmd", "\tx",
		"\rx",	       "'=already",	   "'plain", "a=b"
	};
	const char *out, *why;
	struct csv c;
	enum td_err err;
	size_t i;
	bool same = true;

	ok(!strcmp(written(plain, 3), "Acme,acme.com,\r\n"),
	   "plain fields are written bare, with CRLF");
	ok(!strcmp(written(special, 5),
		   "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"cr\rhere\","
		   "caf\xc3\xa9\r\n"),
	   "commas, quotes, CR and LF are quoted, quotes doubled");
	out = written(special, 5);
	err = parse(out, strlen(out), &c, &why);
	for (i = 0; err == TD_OK && i < 5; i++)
		same = same && field_is(&c, 0, i, special[i]);
	ok(err == TD_OK && c.n == 1 && c.rows[0].n == 5 && same,
	   "written fields read back the same");
	out = written(formulas, 9);
	ok(!strcmp(out, "'=SUM(A1:A2),'+44 20 7946 0000,'-5,'@cmd,'\tx,"
			"\"'\rx\",''=already,'plain,a=b\r\n"),
	   "fields starting with = + - @ TAB or CR get a ' prefix");
	err = parse(out, strlen(out), &c, &why);
	same = err == TD_OK && c.n == 1 && c.rows[0].n == 9;
	for (i = 0; same && i < 9; i++)
		same = !strcmp(csv_unneutralise(c.rows[0].f[i]), formulas[i]);
	ok(same, "csv_unneutralise undoes the prefix exactly");
	ok(!strcmp(csv_unneutralise("'hello"), "'hello") &&
		   !strcmp(csv_unneutralise("'"), "'") &&
		   !strcmp(csv_unneutralise(""), ""),
	   "csv_unneutralise leaves other leading quotes alone");
}

int main(void)
{
	a = arena_new();
	test_reading();
	test_errors();
	test_limits();
	test_writing();
	arena_free(a);
	return tap_done();
}
