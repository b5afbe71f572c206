/* money.h: amounts as int64 minor units, parsed and printed exactly */
#ifndef TD_MONEY_H
#define TD_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* numeric(14,2): at most 999,999,999,999.99 either side of zero. */
#define MONEY_MAX INT64_C(99999999999999)

/*
 * Parses a decimal with at most two places into hundredths: "1625",
 * "1625.5", "1,625.00", and with allow_negative a leading '-'. Commas
 * only between groups of three digits; no spaces, signs other than '-',
 * currency symbols, exponents, leading zeros ("01"), or a point without
 * digits on both sides. TD_EINPUT for anything else or beyond MONEY_MAX;
 * *out is set only on success. Used for money and for hours.
 */
enum td_err money_parse(const char *s, bool allow_negative, int64_t *out);

/* Writes v as "-1625.00" (no grouping) into buf; needs 24 bytes. */
void money_text(int64_t v, char *buf, size_t len);

/* Writes v as "-1,625.00" (grouped by thousands) into buf; needs 32 bytes. */
void money_display(int64_t v, char *buf, size_t len);

/*
 * qty (hundredths) times price (minor units), rounded half away from zero
 * to the minor unit: 1.50 × 0.33 = 0.50. TD_EINPUT (no *out) beyond
 * MONEY_MAX.
 */
enum td_err money_mul(int64_t qty, int64_t price, int64_t *out);

#endif
