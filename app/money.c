/* money.c: amounts as int64 minor units, parsed and printed exactly */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "money.h"
#include "banned.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The whole part: digits, either plain or grouped "1,234,567" (first
 * group 1 to 3 digits, then groups of exactly three). No leading zero
 * unless the part is "0". *end gets the first byte after it.
 */
static bool parse_whole(const char *s, int64_t *out, const char **end)
{
	int64_t v = 0;
	size_t run = 0;
	bool grouped = false;

	if (!is_digit(*s) || (s[0] == '0' && (is_digit(s[1]) || s[1] == ',')))
		return false;
	for (;; s++) {
		if (is_digit(*s)) {
			/* MONEY_MAX / 100 whole units at most. */
			if (v > MONEY_MAX / 100)
				return false;
			v = v * 10 + (*s - '0');
			run++;
			continue;
		}
		if (*s == ',') {
			if ((grouped && run != 3) || (!grouped && run > 3) ||
			    !is_digit(s[1]))
				return false;
			grouped = true;
			run = 0;
			continue;
		}
		break;
	}
	if (grouped && run != 3)
		return false;
	*out = v;
	*end = s;
	return true;
}

enum td_err money_parse(const char *s, bool allow_negative, int64_t *out)
{
	bool neg = false;
	int64_t whole, frac = 0;
	const char *p;

	if (s == NULL)
		return TD_EINPUT;
	if (*s == '-') {
		if (!allow_negative)
			return TD_EINPUT;
		neg = true;
		s++;
	}
	if (!parse_whole(s, &whole, &p))
		return TD_EINPUT;
	if (*p == '.') {
		p++;
		if (!is_digit(p[0]))
			return TD_EINPUT;
		frac = (p[0] - '0') * 10;
		p++;
		if (is_digit(p[0])) {
			frac += p[0] - '0';
			p++;
		}
	}
	if (*p != '\0')
		return TD_EINPUT;
	if (whole > MONEY_MAX / 100 || whole * 100 + frac > MONEY_MAX)
		return TD_EINPUT;
	*out = neg ? -(whole * 100 + frac) : whole * 100 + frac;
	return TD_OK;
}

void money_text(int64_t v, char *buf, size_t len)
{
	/* |INT64_MIN| does not fit an int64: go through uint64. */
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	snprintf(buf, len, "%s%" PRIu64 ".%02" PRIu64, v < 0 ? "-" : "",
		 u / 100, u % 100);
}

void money_display(int64_t v, char *buf, size_t len)
{
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	char digits[24], out[40];
	size_t n, i, o = 0;

	snprintf(digits, sizeof(digits), "%" PRIu64, u / 100);
	n = strlen(digits);
	if (v < 0)
		out[o++] = '-';
	for (i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	snprintf(out + o, sizeof(out) - o, ".%02" PRIu64, u % 100);
	snprintf(buf, len, "%s", out);
}

enum td_err money_mul(int64_t qty, int64_t price, int64_t *out)
{
	int64_t p, r;

	if (__builtin_mul_overflow(qty, price, &p))
		return TD_EINPUT;
	/* Half away from zero; p ± 50 cannot overflow after the check. */
	if (p > INT64_MAX - 50 || p < INT64_MIN + 50)
		return TD_EINPUT;
	r = p >= 0 ? (p + 50) / 100 : -((-p + 50) / 100);
	if (r > MONEY_MAX || r < -MONEY_MAX)
		return TD_EINPUT;
	*out = r;
	return TD_OK;
}
