/* tap.h: a tiny Test Anything Protocol harness for the C unit tests */
#ifndef TD_TAP_H
#define TD_TAP_H

#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

/* Records one test; prints "ok N - name" or "not ok N - name". */
#define ok(cond, ...)                                                      \
	do {                                                               \
		int tap_c = (cond);                                        \
		printf("%sok %d - ", tap_c ? "" : "not ", ++tap_n);       \
		printf(__VA_ARGS__);                                       \
		printf("\n");                                              \
		if (!tap_c) {                                              \
			tap_failed++;                                      \
			printf("#   failed at %s:%d\n", __FILE__, __LINE__); \
		}                                                          \
	} while (0)

/* A test that cannot run here; counts as passed per TAP, says why. */
#define skip(...)                                                     \
	do {                                                          \
		printf("ok %d - # SKIP ", ++tap_n);                   \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
	} while (0)

#define diag(...)                                                     \
	do {                                                          \
		printf("# ");                                         \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
	} while (0)

/* Prints the plan and returns the exit status for main(). */
static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
