/* fuzz_money.c: libFuzzer target for the money parser and printers */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whatever parses is within numeric(14,2), prints back to text that
 * parses to the same value, and multiplies without overflow or abort.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[64], buf[40];
	int64_t v, again, prod;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (money_parse(s, true, &v) != TD_OK)
		return 0;
	if (v > MONEY_MAX || v < -MONEY_MAX)
		abort();
	money_text(v, buf, sizeof(buf));
	if (money_parse(buf, true, &again) != TD_OK || again != v)
		abort();
	money_display(v, buf, sizeof(buf));
	if (money_parse(buf, true, &again) != TD_OK || again != v)
		abort();
	if (money_mul(v, v, &prod) == TD_OK &&
	    (prod > MONEY_MAX || prod < -MONEY_MAX))
		abort();
	return 0;
}
