/* csv.h: reading and writing RFC 4180 comma-separated values */
#ifndef TD_CSV_H
#define TD_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct arena;
struct sbuf;

/* Hard limits of one parse; over any of them the parse fails. */
struct csv_limits {
	size_t max_rows;  /* records, the header row included */
	size_t max_cols;  /* fields in one record */
	size_t max_field; /* bytes in one field, after unquoting */
};

/* 100,000 records of at most 64 fields of at most 64 KiB. */
extern const struct csv_limits CSV_LIMITS_DEFAULT;

/* One record: n >= 1 fields, each NUL-terminated valid UTF-8. */
struct csv_row {
	size_t line; /* the physical line the record starts on, from 1 */
	size_t n;
	const char **f;
};

struct csv {
	struct csv_row *rows;
	size_t n;
};

/*
 * Parses s[0..len) into *out (everything in the arena). Fields are
 * separated by ',' and records by CRLF or LF; a field in double quotes
 * may hold ',', CR, LF and "" (one quote). A leading UTF-8 BOM is
 * skipped; the last record's line ending is optional; an empty line is a
 * record with one empty field. Errors: TD_EINPUT for malformed input (an
 * unterminated quoted field, text after a closing quote, a quote inside
 * an unquoted field, a bare CR, a NUL byte, invalid UTF-8) and
 * TD_ETOOBIG over a limit, with *why saying where ("line 12:
 * unterminated quoted field"). Runs in time linear in len.
 */
enum td_err csv_parse(struct arena *a, const char *s, size_t len,
		      const struct csv_limits *lim, struct csv *out,
		      const char **why);

/*
 * Appends one field for a file meant for spreadsheets: quoted when it
 * holds ',', '"', CR or LF, and, when it starts (after any ') with = + -
 * @ TAB or CR, prefixed with ' so no spreadsheet runs it as a formula.
 * csv_unneutralise() undoes the prefix exactly.
 */
void csv_add_field(struct sbuf *sb, const char *s);

/* Appends a record of n fields (csv_add_field each) and CRLF. */
void csv_add_row(struct sbuf *sb, const char *const *fields, size_t n);

/*
 * A field as it was before csv_add_field's formula prefix: s without
 * its first ' when what follows would have been prefixed; else s.
 */
const char *csv_unneutralise(const char *s);

#endif
