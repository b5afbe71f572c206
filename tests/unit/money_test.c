/* money_test.c: parsing, printing and multiplying minor units exactly */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "money.h"
#include "tap.h"
#include "banned.h"

static bool parses(const char *s, bool neg, int64_t want)
{
	int64_t v = -12345;

	return money_parse(s, neg, &v) == TD_OK && v == want;
}

static bool refuses(const char *s, bool neg)
{
	int64_t v = -12345;

	return money_parse(s, neg, &v) == TD_EINPUT && v == -12345;
}

static bool text_is(int64_t v, const char *want)
{
	char buf[32];

	money_text(v, buf, sizeof(buf));
	return !strcmp(buf, want);
}

static bool display_is(int64_t v, const char *want)
{
	char buf[32];

	money_display(v, buf, sizeof(buf));
	return !strcmp(buf, want);
}

static bool mul_is(int64_t q, int64_t p, int64_t want)
{
	int64_t v = 0;

	return money_mul(q, p, &v) == TD_OK && v == want;
}

int main(void)
{
	int64_t v;

	ok(parses("1625", false, 162500), "1625 is 162500 pence");
	ok(parses("1625.00", false, 162500), "1625.00 is 162500 pence");
	ok(parses("1,625.00", false, 162500), "1,625.00 with a comma parses");
	ok(parses("1625.5", false, 162550), "one decimal is tenths");
	ok(parses("0", false, 0), "0 parses");
	ok(parses("0.01", false, 1), "0.01 is one penny");
	ok(parses("1,234,567.89", false, 123456789), "several groups parse");
	ok(parses("999,999,999,999.99", false, MONEY_MAX),
	   "the numeric(14,2) maximum parses");
	ok(refuses("1,000,000,000,000.00", false), "one penny more is refused");
	ok(refuses("99999999999999999999999", false),
	   "a number past int64 is refused, not wrapped");
	ok(parses("-12.50", true, -1250), "a negative with allow_negative");
	ok(refuses("-12.50", false), "a negative without allow_negative");
	ok(refuses("", false), "empty is refused");
	ok(refuses("-", true), "a lone minus is refused");
	ok(refuses("1.234", false), "three decimals are refused");
	ok(refuses("1.", false), "a point without decimals is refused");
	ok(refuses(".5", false), "a point without a whole part is refused");
	ok(refuses("16,25", false), "a comma not before three digits");
	ok(refuses("1625,", false), "a trailing comma");
	ok(refuses(",625", false), "a leading comma");
	ok(refuses("1,6250.00", false), "a group of four after a comma");
	ok(refuses("1234,567", false), "a first group of four");
	ok(refuses("1,,625", false), "two commas");
	ok(refuses("01", false), "a leading zero");
	ok(refuses("0,625", false), "a zero group");
	ok(refuses(" 12", false), "a leading space (callers trim)");
	ok(refuses("12 ", false), "a trailing space");
	ok(refuses("+12", false), "a plus sign");
	ok(refuses("£12", false), "a currency symbol");
	ok(refuses("1e3", false), "an exponent");
	ok(refuses("12.5x", false), "trailing garbage");
	ok(refuses("NaN", false), "NaN");
	ok(refuses("--1", true), "a double minus");
	ok(money_parse(NULL, false, &v) == TD_EINPUT, "NULL is refused");

	ok(text_is(162500, "1625.00"), "text of 162500 is 1625.00");
	ok(text_is(-5, "-0.05"), "text of -5 is -0.05");
	ok(text_is(0, "0.00"), "text of 0 is 0.00");
	ok(text_is(INT64_MIN, "-92233720368547758.08"),
	   "text of INT64_MIN does not overflow");
	ok(display_is(162500, "1,625.00"), "display groups thousands");
	ok(display_is(-123456789, "-1,234,567.89"), "display of a negative");
	ok(display_is(99, "0.99"), "display under one unit");
	ok(display_is(100000, "1,000.00"), "display of exactly 1,000");

	ok(mul_is(150, 33, 50), "1.50 x 0.33 = 0.495 rounds up to 0.50");
	ok(mul_is(-150, 33, -50), "-1.50 x 0.33 rounds away from zero");
	ok(mul_is(100, 1999, 1999), "1 x 19.99");
	ok(mul_is(1200, 1250, 15000), "12 x 12.50 = 150.00");
	ok(mul_is(149, 33, 49), "1.49 x 0.33 = 0.4917 rounds down");
	ok(mul_is(0, MONEY_MAX, 0), "0 x the maximum");
	ok(money_mul(INT64_MAX, 2, &v) == TD_EINPUT,
	   "an overflowing product is refused");
	ok(money_mul(10000, MONEY_MAX, &v) == TD_EINPUT,
	   "a total past numeric(14,2) is refused");
	return tap_done();
}
