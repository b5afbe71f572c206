/* fuzz_duration.c: libFuzzer target for the strict duration parser */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whatever parses is within range and prints back to text that parses to
 * the same number; whatever fails says why and leaves the result alone.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL, *s = (const char *)data;
	char buf[16];
	int m = -1, again = -1;

	if (!duration_parse(s, size, &m, &why)) {
		if (why == NULL || m != -1)
			abort();
		return 0;
	}
	if (why != NULL || m < 1 || m > DURATION_MAX_MINUTES)
		abort();
	duration_format(m, buf, sizeof(buf));
	if (!duration_parse(buf, strlen(buf), &again, &why) || again != m)
		abort();
	return 0;
}
