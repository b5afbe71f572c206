/* http_test.c: percent-decoding, UTF-8, forms, cookies and multipart */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "sbuf.h"
#include "http.h"
#include "tap.h"
#include "banned.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static bool utf8(const char *s, size_t len)
{
	return http_utf8_valid(s, len);
}

static bool str_is(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0;
}

static bool why_has(const char *why, const char *needle)
{
	return why != NULL && strstr(why, needle) != NULL;
}

static void test_utf8(void)
{
	ok(utf8(S("")), "the empty string is valid utf-8");
	ok(utf8(S("plain ascii ~")), "ascii is valid utf-8");
	ok(utf8(S("\xc3\xa9")), "a 2-byte sequence (U+00E9) is valid");
	ok(utf8(S("\xe2\x82\xac")), "a 3-byte sequence (U+20AC) is valid");
	ok(utf8(S("\xf0\x9f\x98\x80")), "a 4-byte sequence (U+1F600) is valid");
	ok(utf8(S("\xf4\x8f\xbf\xbf")), "the 4-byte maximum U+10FFFF is valid");
	ok(utf8(S("\xed\x9f\xbf")),
	   "U+D7FF just below the surrogates is valid");
	ok(utf8(S("\xee\x80\x80")),
	   "U+E000 just above the surrogates is valid");
	ok(utf8(S("\xc2\x80")), "the smallest 2-byte form U+0080 is valid");
	ok(!utf8(S("\xc0\xaf")), "overlong '/' \\xc0\\xaf is rejected");
	ok(!utf8(S("\xc1\xbf")), "overlong 2-byte \\xc1\\xbf is rejected");
	ok(!utf8(S("\xe0\x80\xaf")), "overlong 3-byte '/' is rejected");
	ok(!utf8(S("\xe0\x9f\xbf")), "overlong 3-byte U+07FF is rejected");
	ok(!utf8(S("\xf0\x80\x80\xaf")), "overlong 4-byte '/' is rejected");
	ok(!utf8(S("\xf0\x8f\xbf\xbf")), "overlong 4-byte U+FFFF is rejected");
	ok(!utf8(S("\xed\xa0\x80")),
	   "surrogate U+D800 \\xed\\xa0\\x80 is rejected");
	ok(!utf8(S("\xed\xbf\xbf")), "surrogate U+DFFF is rejected");
	ok(!utf8(S("\xf4\x90\x80\x80")),
	   "U+110000 above the maximum is rejected");
	ok(!utf8(S("\xf5\x80\x80\x80")), "lead byte \\xf5 is rejected");
	ok(!utf8(S("\xff")) && !utf8(S("\xfe")),
	   "bytes \\xfe and \\xff are rejected");
	ok(!utf8(S("\x80")), "a lone continuation byte is rejected");
	ok(!utf8(S("a\xc3")), "a 2-byte sequence cut at the end is rejected");
	ok(!utf8(S("\xe2\x82")),
	   "a 3-byte sequence cut at the end is rejected");
	ok(!utf8(S("\xf0\x9f\x98")),
	   "a 4-byte sequence cut at the end is rejected");
	ok(!utf8(S("\xe2\x82x")),
	   "a sequence cut by an ascii byte is rejected");
	ok(!utf8(S("\xc3\xa9\xa9")), "an extra continuation byte is rejected");
	ok(utf8(S("a\0b")),
	   "an embedded U+0000 is valid utf-8 (nul is checked elsewhere)");
}

/* Decodes a C string; *out is "" on failure. */
static enum td_err dec(struct arena *a, const char *s, bool plus,
		       const char **out, size_t *outlen, const char **why)
{
	char *o = NULL;
	enum td_err err;

	*why = NULL;
	*out = "";
	*outlen = 0;
	err = http_percent_decode(a, s, strlen(s), plus, &o, outlen, why);
	if (err == TD_OK)
		*out = o;
	return err;
}

static void test_percent_decode(struct arena *a)
{
	static const char *const bad[] = { "%",	   "%4",   "%zz",  "%g0",
					   "abc%", "%%41", "% 41", "a%2" };
	const char *out, *why;
	size_t n, i;
	enum td_err err;

	err = dec(a, "a%20b", false, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "a b") == 0 && n == 3,
	   "'a%%20b' decodes to 'a b'");
	err = dec(a, "%c3%a9", false, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "\xc3\xa9") == 0 && n == 2,
	   "lowercase hex '%%c3%%a9' decodes to e-acute");
	err = dec(a, "%C3%A9", false, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "\xc3\xa9") == 0,
	   "uppercase hex '%%C3%%A9' decodes to e-acute");
	err = dec(a, "%2f%2F%aA", false, &out, &n, &why);
	ok(err != TD_OK, "'%%aA' (a lone \\xaa byte) is rejected");
	err = dec(a, "%2f%2F%7e", false, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "//~") == 0,
	   "mixed-case hex digits decode");
	err = dec(a, "a+b", true, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "a b") == 0,
	   "'+' is a space when asked");
	err = dec(a, "a+b", false, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "a+b") == 0,
	   "'+' stays '+' when not asked (paths)");
	err = dec(a, "%2B", true, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "+") == 0,
	   "'%%2B' is a literal '+' even in forms");
	err = dec(a, "", true, &out, &n, &why);
	ok(err == TD_OK && strcmp(out, "") == 0 && n == 0,
	   "the empty string decodes to the empty string");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = dec(a, bad[i], false, &out, &n, &why);
		ok(err == TD_EINPUT && why_has(why, "bad percent escape"),
		   "bad escape '%s' is rejected with a message", bad[i]);
	}
	err = dec(a, "a%00b", false, &out, &n, &why);
	ok(err == TD_EINPUT && why_has(why, "nul byte"),
	   "a decoded nul byte is rejected with a message");
	err = dec(a, "%c0%af", false, &out, &n, &why);
	ok(err == TD_EINPUT && why_has(why, "not valid utf-8"),
	   "a decoded overlong sequence is rejected as invalid utf-8");
	err = dec(a, "%ed%a0%80", false, &out, &n, &why);
	ok(err == TD_EINPUT && why_has(why, "not valid utf-8"),
	   "a decoded surrogate is rejected as invalid utf-8");
	err = dec(a, "\xff", false, &out, &n, &why);
	ok(err == TD_EINPUT, "raw invalid utf-8 is rejected too");
	err = dec(a, "%F0%9F%98%80", false, &out, &n, &why);
	ok(err == TD_OK && n == 4, "an escaped 4-byte sequence decodes");
}

static struct http_params parse_q(struct arena *a, const char *s,
				  const struct http_limits *lim,
				  enum td_err *err, const char **why)
{
	struct http_params p;

	memset(&p, 0, sizeof(p));
	*why = NULL;
	*err = http_parse_urlencoded(a, s, strlen(s), lim, &p, why);
	return p;
}

static const char *repeat(struct arena *a, const char *unit, size_t times,
			  const char *sep)
{
	struct sbuf sb;
	size_t i;

	sbuf_init(&sb, a, 64);
	for (i = 0; i < times; i++) {
		if (i > 0)
			sbuf_adds(&sb, sep);
		sbuf_adds(&sb, unit);
	}
	return sbuf_cstr(&sb);
}

static void test_urlencoded(struct arena *a)
{
	const struct http_limits *def = &HTTP_LIMITS_DEFAULT;
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	struct http_params p;
	struct sbuf sb;
	const char *why;
	enum td_err err;

	ok(def->max_params == 1000 && def->max_name == 256 &&
		   def->max_value == 1048576 && def->max_cookies == 64 &&
		   def->max_parts == 64 && def->max_file == 26214400,
	   "the default limits are 1000/256/1MiB/64/64/25MiB");

	p = parse_q(a, "a=1&b=two", def, &err, &why);
	ok(err == TD_OK && p.n == 2 && strcmp(p.v[0].name, "a") == 0 &&
		   strcmp(p.v[0].value, "1") == 0 &&
		   strcmp(p.v[1].name, "b") == 0 &&
		   strcmp(p.v[1].value, "two") == 0 && p.v[1].value_len == 3,
	   "'a=1&b=two' gives two pairs in order");
	p = parse_q(a, "&a=1&&b=2&", def, &err, &why);
	ok(err == TD_OK && p.n == 2, "empty pairs are skipped");
	p = parse_q(a, "", def, &err, &why);
	ok(err == TD_OK && p.n == 0, "an empty query gives no pairs");
	p = parse_q(a, "flag&x=", def, &err, &why);
	ok(err == TD_OK && p.n == 2 && strcmp(p.v[0].value, "") == 0 &&
		   strcmp(p.v[1].value, "") == 0,
	   "a pair without '=' or with nothing after it has value ''");
	p = parse_q(a, "c=1&c=2", def, &err, &why);
	ok(err == TD_OK && p.n == 2 && str_is(http_params_get(&p, "c"), "1"),
	   "repeated names are kept and the first wins in http_params_get");
	ok(http_params_get(&p, "nope") == NULL,
	   "http_params_get of an absent name is NULL");
	p = parse_q(a, "q=hello+world%21&a%5Bb%5D=x", def, &err, &why);
	ok(err == TD_OK && str_is(http_params_get(&p, "q"), "hello world!") &&
		   str_is(http_params_get(&p, "a[b]"), "x"),
	   "names and values are decoded, '+' as space");
	p = parse_q(a, "tok=a=b=", def, &err, &why);
	ok(err == TD_OK && str_is(http_params_get(&p, "tok"), "a=b="),
	   "a value may hold '='");
	p = parse_q(a, "=x&y=1", def, &err, &why);
	ok(err == TD_OK && p.n == 1 && strcmp(p.v[0].name, "y") == 0,
	   "a pair with an empty name is skipped");
	p = parse_q(a, "a=1&q=%zz", def, &err, &why);
	ok(err == TD_EINPUT && why != NULL &&
		   strcmp(why, "parameter 'q' has a bad percent escape") == 0,
	   "'%%zz' in a query is rejected with a message naming 'q'");
	p = parse_q(a, "q=%4", def, &err, &why);
	ok(err == TD_EINPUT && why_has(why, "bad percent escape"),
	   "a truncated escape at the end is rejected");
	p = parse_q(a, "q=a%00b", def, &err, &why);
	ok(err == TD_EINPUT && why != NULL &&
		   strcmp(why, "parameter 'q' contains a nul byte") == 0,
	   "a decoded nul byte is rejected with a message");
	p = parse_q(a, "name=%c0%af", def, &err, &why);
	ok(err == TD_EINPUT && why != NULL &&
		   strcmp(why, "parameter 'name' is not valid utf-8") == 0,
	   "a decoded overlong sequence is rejected as invalid utf-8");
	p = parse_q(a, "%zz=1", def, &err, &why);
	ok(err == TD_EINPUT && why != NULL &&
		   strcmp(why,
			  "parameter name '%zz' has a bad percent escape") == 0,
	   "a bad escape in a name is rejected quoting the raw name");
	p = parse_q(a, "a\n'%zz=1", def, &err, &why);
	ok(err == TD_EINPUT && why_has(why, "'a\\x0a\\x27%zz'"),
	   "control bytes and quotes in a quoted name are escaped");

	p = parse_q(a, repeat(a, "k=v", 1000, "&"), def, &err, &why);
	ok(err == TD_OK && p.n == 1000, "1000 parameters are accepted");
	p = parse_q(a, repeat(a, "k=v", 1001, "&"), def, &err, &why);
	ok(err == TD_ETOOBIG && why_has(why, "limit of 1000 parameters"),
	   "1001 parameters are too many, and the message names the limit");
	lim.max_params = 3;
	p = parse_q(a, "a=1&&b=2&c=3&d=4", &lim, &err, &why);
	ok(err == TD_ETOOBIG, "a custom max_params of 3 refuses a fourth pair");
	lim = HTTP_LIMITS_DEFAULT;

	sbuf_init(&sb, a, 0);
	sbuf_adds(&sb, "v=");
	sbuf_adds(&sb, repeat(a, "x", 1024 * 1024, ""));
	p = parse_q(a, sbuf_cstr(&sb), def, &err, &why);
	ok(err == TD_OK && p.n == 1 && p.v[0].value_len == 1024 * 1024,
	   "a value of exactly 1 MiB is accepted");
	sbuf_addch(&sb, 'x');
	p = parse_q(a, sbuf_cstr(&sb), def, &err, &why);
	ok(err == TD_ETOOBIG &&
		   why_has(why,
			   "parameter 'v' is longer than the limit of 1048576 bytes"),
	   "a value of 1 MiB + 1 is too big, and the message names the limit");
	lim.max_value = 4;
	p = parse_q(a, "v=%41%41%41%41", &lim, &err, &why);
	ok(err == TD_OK && p.v[0].value_len == 4,
	   "the value limit counts decoded bytes");
	lim = HTTP_LIMITS_DEFAULT;
	p = parse_q(a, repeat(a, "n", 256, ""), def, &err, &why);
	ok(err == TD_OK && p.n == 1, "a 256-byte name is accepted");
	p = parse_q(a, repeat(a, "n", 257, ""), def, &err, &why);
	ok(err == TD_ETOOBIG && why_has(why, "limit of 256 bytes") &&
		   why_has(why, "..."),
	   "a 257-byte name is too big, quoted cut short");
}

static struct http_params parse_c(struct arena *a, const char *s,
				  const struct http_limits *lim,
				  enum td_err *err, const char **why)
{
	struct http_params p;

	memset(&p, 0, sizeof(p));
	*why = NULL;
	*err = http_parse_cookies(a, s, lim, &p, why);
	return p;
}

static void test_cookies(struct arena *a)
{
	const struct http_limits *def = &HTTP_LIMITS_DEFAULT;
	struct http_params p;
	const char *why;
	enum td_err err;

	p = parse_c(a, "a=1; b=2", def, &err, &why);
	ok(err == TD_OK && p.n == 2 && str_is(http_params_get(&p, "a"), "1") &&
		   str_is(http_params_get(&p, "b"), "2"),
	   "'a=1; b=2' gives two cookies");
	p = parse_c(a, "  a = 1 ;b=2;\t", def, &err, &why);
	ok(err == TD_OK && p.n == 2 && str_is(http_params_get(&p, "a"), "1"),
	   "spaces and tabs around names and values are tolerated");
	p = parse_c(a, "junk; a=1; =x; ;;b", def, &err, &why);
	ok(err == TD_OK && p.n == 1 && strcmp(p.v[0].name, "a") == 0,
	   "pairs without '=' or without a name are skipped");
	p = parse_c(a, "s=\"x y\"; t=\"", def, &err, &why);
	ok(err == TD_OK && str_is(http_params_get(&p, "s"), "x y") &&
		   str_is(http_params_get(&p, "t"), "\""),
	   "a quoted value is unquoted; a lone quote is kept");
	p = parse_c(a, "tok=ab%2Fc==", def, &err, &why);
	ok(err == TD_OK && str_is(http_params_get(&p, "tok"), "ab%2Fc==") &&
		   p.v[0].value_len == 8,
	   "values are not percent-decoded and may hold '='");
	p = parse_c(a, "bad=\xff\xfe; ok=1", def, &err, &why);
	ok(err == TD_OK && p.n == 1 && strcmp(p.v[0].name, "ok") == 0,
	   "a cookie that is not valid utf-8 is skipped");
	p = parse_c(a, "", def, &err, &why);
	ok(err == TD_OK && p.n == 0, "an empty header gives no cookies");
	p = parse_c(a, repeat(a, "c=1", 64, "; "), def, &err, &why);
	ok(err == TD_OK && p.n == 64, "64 cookies are accepted");
	p = parse_c(a, repeat(a, "c=1", 65, "; "), def, &err, &why);
	ok(err == TD_ETOOBIG && why_has(why, "limit of 64 cookies"),
	   "65 cookies are too many, and the message names the limit");
}

struct mp {
	enum td_err err;
	const char *why;
	struct http_params params;
	struct http_files files;
};

static struct mp mp_parse(struct arena *a, const char *ctype, const char *body,
			  size_t len, const struct http_limits *lim)
{
	struct mp r;

	memset(&r, 0, sizeof(r));
	r.err = http_parse_multipart(a, ctype, (const unsigned char *)body, len,
				     lim, &r.params, &r.files, &r.why);
	return r;
}

#define MP(a, ct, body, lim)                                                   \
	mp_parse((a), (ct), (body), sizeof(body) - 1, (lim))

static const char bin_data[] = "\x00\x01\r\n--\r\n--AaB03\r\n--AaB03xy\r\n"
			       "\n--AaB03x-\xff\xfe\r\n\r\n--";

static void test_multipart_happy(struct arena *a)
{
	const struct http_limits *def = &HTTP_LIMITS_DEFAULT;
	static const char body[] =
		"This is the preamble.\r\n"
		"--AaB03x\r\n"
		"Content-Disposition: form-data; name=\"title\"\r\n"
		"\r\n"
		"Printer on fire\r\n"
		"--AaB03x\r\n"
		"content-disposition: form-data; name=\"note\"\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n"
		"line one\r\nline two \xc3\xa9\r\n"
		"--AaB03x\r\n"
		"Content-Disposition: form-data; name=\"upload\"; "
		"filename=\"blob.bin\"\r\n"
		"Content-Type: application/octet-stream\r\n"
		"\r\n"
		"\x00\x01\r\n--\r\n--AaB03\r\n--AaB03xy\r\n"
		"\n--AaB03x-\xff\xfe\r\n\r\n--"
		"\r\n"
		"--AaB03x\r\n"
		"Content-Disposition: form-data; name=\"empty\"\r\n"
		"\r\n"
		"\r\n"
		"--AaB03x--\r\n"
		"This is the epilogue.\r\n--AaB03x\r\n";
	struct mp r;

	r = MP(a, "multipart/form-data; boundary=AaB03x", body, def);
	ok(r.err == TD_OK, "a form with text fields and a binary file parses");
	ok(r.params.n == 3 && strcmp(r.params.v[0].name, "title") == 0 &&
		   strcmp(r.params.v[0].value, "Printer on fire") == 0,
	   "a text field goes to params without its trailing CRLF");
	ok(r.params.n == 3 && str_is(http_params_get(&r.params, "note"),
				     "line one\r\nline two \xc3\xa9"),
	   "a text field keeps its inner CRLF and utf-8");
	ok(r.params.n == 3 && str_is(http_params_get(&r.params, "empty"), "") &&
		   r.params.v[2].value_len == 0,
	   "an empty text field is ''");
	ok(r.files.n == 1 && strcmp(r.files.v[0].field, "upload") == 0 &&
		   strcmp(r.files.v[0].filename, "blob.bin") == 0 &&
		   strcmp(r.files.v[0].content_type,
			  "application/octet-stream") == 0,
	   "a part with a filename goes to files with field, name and type");
	ok(r.files.n == 1 && r.files.v[0].len == sizeof(bin_data) - 1 &&
		   memcmp(r.files.v[0].data, bin_data, sizeof(bin_data) - 1) ==
			   0,
	   "binary file data with CRLF, '--' and near-boundaries is exact");
	ok(http_params_get(&r.params, "upload") == NULL,
	   "a file part does not appear in params");
}

static void test_multipart_variants(struct arena *a)
{
	const struct http_limits *def = &HTTP_LIMITS_DEFAULT;
	struct mp r;

	r = MP(a, "multipart/form-data; boundary=\"a b:c=d\"",
	       "--a b:c=d\r\n"
	       "Content-Disposition: form-data; name=x\r\n\r\n1\r\n"
	       "--a b:c=d--",
	       def);
	ok(r.err == TD_OK && r.params.n == 1 &&
		   str_is(http_params_get(&r.params, "x"), "1"),
	   "a quoted boundary with space, ':' and '=' works");
	r = MP(a, "Multipart/Form-Data ;charset=utf-8; BOUNDARY=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "1\r\n--zz--\r\n",
	       def);
	ok(r.err == TD_OK && r.params.n == 1,
	   "media type and parameter names are case-insensitive");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\nContent-Disposition: form-data; name=\"x\"\n\nab\n"
	       "--zz\nContent-Disposition: form-data; name=\"y\"\n\ncd\n"
	       "--zz--\n",
	       def);
	ok(r.err == TD_OK && r.params.n == 2 &&
		   str_is(http_params_get(&r.params, "x"), "ab") &&
		   str_is(http_params_get(&r.params, "y"), "cd"),
	   "bare LF line endings are tolerated");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz  \t\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "1\r\n--zz--",
	       def);
	ok(r.err == TD_OK && r.params.n == 1,
	   "transport padding after a boundary is tolerated");
	r = MP(a, "multipart/form-data; boundary=zz", "--zz--\r\n", def);
	ok(r.err == TD_OK && r.params.n == 0 && r.files.n == 0,
	   "a body with only the final boundary has no fields");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"q\\\"x\\\\y\"\r\n"
	       "\r\nv\r\n--zz--",
	       def);
	ok(r.err == TD_OK && r.params.n == 1 &&
		   strcmp(r.params.v[0].name, "q\"x\\y") == 0,
	   "escapes in a quoted field name are undone");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"f\"; "
	       "filename=\"\"\r\nContent-Type: application/octet-stream\r\n"
	       "\r\n\r\n--zz--",
	       def);
	ok(r.err == TD_OK && r.files.n == 0 && r.params.n == 0,
	   "a file input left empty (filename \"\") is skipped");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"f\"; "
	       "filename=\"a.txt\"\r\n\r\nhi\r\n--zz--",
	       def);
	ok(r.err == TD_OK && r.files.n == 1 &&
		   strcmp(r.files.v[0].content_type, "") == 0 &&
		   r.files.v[0].len == 2,
	   "a file without Content-Type has content_type ''");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nX-Other: yes\r\nContent-Disposition: form-data; "
	       "name=\"x\"; other=\"1\"; filename*=UTF-8''a\r\n\r\n1\r\n--zz--",
	       def);
	ok(r.err == TD_OK && r.params.n == 1 && r.files.n == 0,
	   "unknown headers, unknown parameters and filename* are ignored");
}

static const char *upload_name(struct arena *a, const char *disp)
{
	struct sbuf sb;
	struct mp r;

	sbuf_init(&sb, a, 0);
	sbuf_adds(&sb, "--zz\r\nContent-Disposition: form-data; name=\"f\"; ");
	sbuf_adds(&sb, disp);
	sbuf_adds(&sb, "\r\n\r\ndata\r\n--zz--\r\n");
	r = mp_parse(a, "multipart/form-data; boundary=zz", sb.buf, sb.len,
		     &HTTP_LIMITS_DEFAULT);
	if (r.err != TD_OK || r.files.n != 1)
		return NULL;
	return r.files.v[0].filename;
}

static bool name_is(const char *got, const char *want)
{
	return got != NULL && strcmp(got, want) == 0;
}

static void test_multipart_filenames(struct arena *a)
{
	ok(name_is(upload_name(a, "filename=\"C:\\\\x\\\\a.txt\""), "a.txt"),
	   "an escaped Windows path 'C:\\\\x\\\\a.txt' is stripped to 'a.txt'");
	ok(name_is(upload_name(a, "filename=\"C:\\x\\a.txt\""), "a.txt"),
	   "a raw Windows path 'C:\\x\\a.txt' (old browsers) is stripped to 'a.txt'");
	ok(name_is(upload_name(a, "filename=\"../../etc/passwd\""), "passwd"),
	   "a Unix path is stripped to its last component");
	ok(name_is(upload_name(a, "filename=\"..\""), ""),
	   "'..' as a filename becomes ''");
	ok(name_is(upload_name(a, "filename=\"a\\\"b.txt\""), "a\"b.txt"),
	   "an escaped quote in a filename is undone");
	ok(name_is(upload_name(a, "filename=\"r\xc3\xa9sum\xc3\xa9.pdf\""),
		   "r\xc3\xa9sum\xc3\xa9.pdf"),
	   "a raw utf-8 filename is kept");
	ok(name_is(upload_name(a, "filename=plain.txt"), "plain.txt"),
	   "an unquoted filename is accepted");
	ok(upload_name(a, "filename=\"\xff.txt\"") == NULL,
	   "a filename that is not valid utf-8 is rejected");
}

static void test_multipart_errors(struct arena *a)
{
	const struct http_limits *def = &HTTP_LIMITS_DEFAULT;
	struct http_limits lim = HTTP_LIMITS_DEFAULT;
	struct mp r;
	struct sbuf sb;
	size_t i;

	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "no final boundary"),
	   "a missing final boundary is rejected with a message");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n"
	       "--zz",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "no final boundary"),
	   "a last boundary without '--' or a line break is not final");
	r = MP(a, "multipart/form-data; boundary=zz", "hello\r\n", def);
	ok(r.err == TD_EINPUT &&
		   why_has(r.why, "does not contain the boundary"),
	   "a body without the boundary is rejected");
	r = MP(a, "multipart/form-data; boundary=zz", "", def);
	ok(r.err == TD_EINPUT, "an empty body is rejected");
	r = MP(a, "application/x-www-form-urlencoded", "--zz--", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "not multipart/form-data"),
	   "another content type is rejected");
	r = MP(a, "multipart/form-data", "--zz--", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "no boundary"),
	   "a content type without boundary is rejected");
	r = MP(a, "multipart/form-data; boundary=\"zz", "--zz--", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "malformed"),
	   "an unterminated quoted boundary is rejected");
	r = MP(a, "multipart/form-data; boundary=\"a<b\"", "--a<b--", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "rfc 2046"),
	   "a boundary with a character outside bchars is rejected");
	r = MP(a, "multipart/form-data; boundary=\"ab \"", "--ab --", def);
	ok(r.err == TD_EINPUT, "a boundary ending in a space is rejected");

	sbuf_init(&sb, a, 0);
	sbuf_adds(&sb, "multipart/form-data; boundary=");
	for (i = 0; i < 70; i++)
		sbuf_addch(&sb, 'b');
	r = MP(a, sbuf_cstr(&sb), "x", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "does not contain"),
	   "a 70-character boundary is allowed");
	sbuf_addch(&sb, 'b');
	r = MP(a, sbuf_cstr(&sb), "x", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "70 characters"),
	   "a 71-character boundary is rejected");

	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Type: text/plain\r\n\r\n1\r\n--zz--", def);
	ok(r.err == TD_EINPUT && why_has(r.why, "part 1") &&
		   why_has(r.why, "content-disposition"),
	   "a part without Content-Disposition is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data\r\n\r\n1\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "content-disposition name"),
	   "a part without a name is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: attachment; name=\"x\"\r\n\r\n1\r\n"
	       "--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "not form-data"),
	   "a disposition other than form-data is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\r\n\r\n1\r\n"
	       "--zz--",
	       def);
	ok(r.err == TD_EINPUT &&
		   why_has(r.why, "malformed content-disposition"),
	   "an unterminated quoted name is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n"
	       "NoColonHere\r\n\r\n1\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT &&
		   why_has(r.why, "part 1 has a malformed header line"),
	   "a header line without a colon is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data;\r\n name=\"x\"\r\n\r\n1\r\n"
	       "--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "malformed header line"),
	   "a folded header line is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n"
	       "--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "no blank line"),
	   "a part whose headers run into the boundary is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n"
	       "X-A: \x01\r\n\r\n1\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "control character"),
	   "a control byte in a header is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n"
	       "Content-Disposition: form-data; name=\"y\"\r\n\r\n1\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "two content-disposition"),
	   "two Content-Disposition headers are rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "\xc0\xaf\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT && why_has(r.why, "field 'x' is not valid utf-8"),
	   "a text field that is not valid utf-8 is rejected");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "a\0b\r\n--zz--",
	       def);
	ok(r.err == TD_EINPUT, "a text field with a nul byte is rejected");

	lim.max_value = 3;
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "abc\r\n--zz--",
	       &lim);
	ok(r.err == TD_OK, "a text field at max_value is accepted");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n"
	       "abcd\r\n--zz--",
	       &lim);
	ok(r.err == TD_ETOOBIG && why_has(r.why, "limit of 3 bytes"),
	   "a text field over max_value is too big, naming the limit");
	lim = HTTP_LIMITS_DEFAULT;
	lim.max_file = 4;
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"f\"; "
	       "filename=\"a\"\r\n\r\nabcde\r\n--zz--",
	       &lim);
	ok(r.err == TD_ETOOBIG && why_has(r.why, "file in field 'f'") &&
		   why_has(r.why, "limit of 4 bytes"),
	   "a file over max_file is too big, naming the limit");
	lim = HTTP_LIMITS_DEFAULT;
	lim.max_parts = 2;
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
	       "--zz\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n"
	       "--zz--",
	       &lim);
	ok(r.err == TD_OK && r.params.n == 2, "max_parts parts are accepted");
	r = MP(a, "multipart/form-data; boundary=zz",
	       "--zz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
	       "--zz\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2\r\n"
	       "--zz\r\nContent-Disposition: form-data; name=\"c\"\r\n\r\n3\r\n"
	       "--zz--",
	       &lim);
	ok(r.err == TD_ETOOBIG && why_has(r.why, "limit of 2 parts"),
	   "one part over max_parts is too big, naming the limit");
}

/* A body of near-boundaries must not take quadratic time. */
static void test_multipart_near_misses(struct arena *a)
{
	const char *bnd = "----------------------------------------------"
			  "-----------------------x";
	struct sbuf sb, ct;
	struct mp r;
	size_t i;

	sbuf_init(&ct, a, 0);
	sbuf_addf(&ct, "multipart/form-data; boundary=%s", bnd);
	sbuf_init(&sb, a, 0);
	sbuf_addf(&sb,
		  "--%s\r\nContent-Disposition: form-data; name=\"f\"; "
		  "filename=\"x\"\r\n\r\n",
		  bnd);
	for (i = 0; i < 200000; i++)
		sbuf_addf(&sb, "\n--%.*s", 60, bnd);
	sbuf_addf(&sb, "\r\n--%s--\r\n", bnd);
	r = mp_parse(a, sbuf_cstr(&ct), sb.buf, sb.len, &HTTP_LIMITS_DEFAULT);
	ok(r.err == TD_OK && r.files.n == 1 && r.files.v[0].len == 200000 * 63,
	   "12 MB of near-boundaries parse into one file (linear search)");
}

static void test_url_encode(struct arena *a)
{
	struct sbuf sb;
	char *dec;
	size_t n;
	const char *why;

	sbuf_init(&sb, a, 0);
	http_url_encode(&sb, "AZaz09-._~");
	ok(strcmp(sbuf_cstr(&sb), "AZaz09-._~") == 0,
	   "unreserved characters pass through url encoding");
	sbuf_reset(&sb);
	http_url_encode(&sb, "a b&c=d/e+f?\xc3\xa9%");
	ok(strcmp(sbuf_cstr(&sb), "a%20b%26c%3Dd%2Fe%2Bf%3F%C3%A9%25") == 0,
	   "reserved, space and utf-8 bytes become uppercase %%XX");
	ok(http_percent_decode(a, sb.buf, sb.len, true, &dec, &n, &why) ==
			   TD_OK &&
		   strcmp(dec, "a b&c=d/e+f?\xc3\xa9%") == 0,
	   "url encoding round-trips through form decoding");
}

int main(void)
{
	struct arena *a = arena_new();

	test_utf8();
	test_percent_decode(a);
	test_urlencoded(a);
	test_cookies(a);
	test_multipart_happy(a);
	test_multipart_variants(a);
	test_multipart_filenames(a);
	test_multipart_errors(a);
	test_multipart_near_misses(a);
	test_url_encode(a);
	arena_free(a);
	return tap_done();
}
