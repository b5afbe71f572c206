/* contractutil.h: what the contract modules share among themselves */
#ifndef TD_CONTRACTUTIL_H
#define TD_CONTRACTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct req;

/*
 * Committed billable minutes of client $1 started in [$2, $3) (instants),
 * time on project tickets left out.
 */
extern const char contractutil_sql_used[];

/*
 * form_text(), but a JSON value that is neither a string, an integer nor
 * null (a float like 1625.5, a list) is a field error, not "" — money
 * must not lose its digits on the way in.
 */
const char *contractutil_text(struct req *r, const char *name);

/*
 * Before an edit of contract id's terms (the contract, its lines): the
 * optional form field effective_from says from which day the change bills
 * (empty: today once the contract has been billed, else from its start);
 * the terms before are kept as history (sql/0018). A bad day, or one
 * before the last change, is a form_error(); the caller checks.
 */
enum td_err contractutil_terms_effective(struct req *r, int64_t id);

/* True for a real calendar day written YYYY-MM-DD, years 2000 to 2199. */
bool contractutil_valid_date(const char *s);

/* Minutes as hours with one decimal ("3.0"), half away from zero. */
void contractutil_hours1(int64_t minutes, char *buf, size_t len);

/* Minutes as hours with two decimals ("7.50"), half away from zero. */
void contractutil_hours2(int64_t minutes, char *buf, size_t len);

/*
 * The contract page of id into the request's view (contracts/show):
 * the contract, its lines, block status and what the caller may do.
 * TD_ENOENT for another tenant's contract.
 */
enum td_err contractutil_show_page(struct req *r, int64_t id);

/*
 * Sets "lines" in contract (the JSON of contract id of client_id): each
 * recurring line with its live quantity today and the total the next
 * run would bill, and "lines_total".
 */
enum td_err contractutil_lines_json(struct req *r, int64_t id,
				    int64_t client_id, json_t *contract);

#endif
