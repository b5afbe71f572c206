/* duration.c: strict parsing and printing of worked time ("1:30", "90") */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "duration.h"
#include "banned.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits s[0..len) as a number; false if any is not a digit. */
static bool digits(const char *s, size_t len, int *out)
{
	size_t i;
	int v = 0;

	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool duration_parse(const char *s, size_t len, int *minutes, const char **why)
{
	size_t colon = len, i;
	int h, m, total;

	*why = "enter a duration as h:mm (1:30) or minutes (90)";
	if (s == NULL || len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] != ':')
			continue;
		if (colon != len)
			return false;
		colon = i;
	}
	if (colon == len) {
		/* Four digits are enough for a day (1440). */
		if (len > 4 || !digits(s, len, &total))
			return false;
	} else {
		if (colon < 1 || colon > 2 || len - colon - 1 != 2 ||
		    !digits(s, colon, &h) || !digits(s + colon + 1, 2, &m))
			return false;
		if (m > 59) {
			*why = "minutes after the colon must be 00 to 59";
			return false;
		}
		total = h * 60 + m;
	}
	if (total < 1) {
		*why = "a duration must be at least one minute";
		return false;
	}
	if (total > DURATION_MAX_MINUTES) {
		*why = "a single entry can be at most 24:00; split longer work";
		return false;
	}
	*minutes = total;
	*why = NULL;
	return true;
}

void duration_format(int minutes, char *buf, size_t size)
{
	if (minutes < 0)
		minutes = 0;
	snprintf(buf, size, "%d:%02d", minutes / 60, minutes % 60);
}
