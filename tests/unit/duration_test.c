/* duration_test.c: the strict h:mm / minutes parser and its printer */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "duration.h"
#include "tap.h"
#include "banned.h"

static bool parses(const char *s, int want)
{
	const char *why = NULL;
	int m = -1;

	return duration_parse(s, strlen(s), &m, &why) && m == want &&
	       why == NULL;
}

static bool refused(const char *s)
{
	const char *why = NULL;
	int m = -7;

	return !duration_parse(s, strlen(s), &m, &why) && m == -7 &&
	       why != NULL && *why != '\0';
}

static bool formats(int minutes, const char *want)
{
	char buf[16];

	duration_format(minutes, buf, sizeof(buf));
	return strcmp(buf, want) == 0;
}

int main(void)
{
	const char *why = NULL;
	int m = 0;

	ok(parses("1:30", 90), "1:30 is 90 minutes");
	ok(parses("0:05", 5), "0:05 is 5 minutes");
	ok(parses("12:00", 720), "12:00 is 720 minutes");
	ok(parses("24:00", 1440), "24:00 is the longest entry");
	ok(parses("90", 90), "bare 90 is minutes");
	ok(parses("1", 1), "1 minute is the shortest entry");
	ok(parses("0045", 45), "leading zeros in minutes are fine");
	ok(refused("0"), "0 minutes is refused");
	ok(refused("0:00"), "0:00 is refused");
	ok(refused("24:01"), "more than a day is refused");
	ok(refused("1441"), "1441 minutes is refused");
	ok(refused("99999"), "five digits are refused");
	ok(refused("1:5"), "one-digit minutes after a colon are refused");
	ok(refused("1:60"), "60 after the colon is refused");
	ok(refused("123:00"), "three-digit hours are refused");
	ok(refused(":30"), "no hours before the colon is refused");
	ok(refused("1:"), "nothing after the colon is refused");
	ok(refused("1:30:00"), "two colons are refused");
	ok(refused("-5"), "a sign is refused");
	ok(refused("+5"), "a plus sign is refused");
	ok(refused(" 5"), "a space is refused");
	ok(refused("1.5"), "a fraction is refused");
	ok(refused("1h30"), "units are refused");
	ok(refused(""), "empty is refused");
	ok(!duration_parse("15", 1, &m, &why) || m == 1,
	   "only len bytes are read");
	ok(!duration_parse("5\0"
			   "5",
			   3, &m, &why),
	   "an embedded NUL is refused");
	ok(refused("1:60") && (duration_parse("1:60", 4, &m, &why),
			       strstr(why, "00 to 59") != NULL),
	   "the message names the bad minutes");
	ok(formats(90, "1:30"), "90 prints as 1:30");
	ok(formats(5, "0:05"), "5 prints as 0:05");
	ok(formats(6000, "100:00"), "6000 prints as 100:00");
	ok(formats(-3, "0:00"), "negative prints as 0:00");
	return tap_done();
}
