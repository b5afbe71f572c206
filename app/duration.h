/* duration.h: strict parsing and printing of worked time ("1:30", "90") */
#ifndef TD_DURATION_H
#define TD_DURATION_H

#include <stdbool.h>
#include <stddef.h>

/* The longest single time entry typed by hand: one day. */
#define DURATION_MAX_MINUTES 1440

/*
 * Parses s[0..len) as "h:mm" (h one or two digits, mm exactly two digits
 * below 60) or as whole minutes (one to four digits), nothing else: no
 * signs, spaces, units or fractions. The result must be 1 to
 * DURATION_MAX_MINUTES. On success sets *minutes and returns true; on
 * failure sets *why to a message for the user (a string constant).
 */
bool duration_parse(const char *s, size_t len, int *minutes, const char **why);

/* minutes as "h:mm" into buf (at least 16 bytes); negative as "0:00". */
void duration_format(int minutes, char *buf, size_t size);

#endif
