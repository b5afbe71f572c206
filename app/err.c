/* err.c: status, code and message tables for enum td_err */
#include "config.h"

#include <stdlib.h>

#include "err.h"

static const int statuses[TD_ERR__MAX] = {
	[TD_OK] = 200,	     [TD_EINPUT] = 400,	   [TD_ETOOBIG] = 413,
	[TD_EAUTH] = 401,    [TD_EFORBID] = 403,   [TD_ENOENT] = 404,
	[TD_EMETHOD] = 405,  [TD_ECONFLICT] = 409, [TD_EDB] = 500,
	[TD_EUNAVAIL] = 503, [TD_EUPSTREAM] = 502, [TD_ESYS] = 500,
};

static const char *const codes[TD_ERR__MAX] = {
	[TD_OK] = "ok",
	[TD_EINPUT] = "bad_request",
	[TD_ETOOBIG] = "too_large",
	[TD_EAUTH] = "unauthorized",
	[TD_EFORBID] = "forbidden",
	[TD_ENOENT] = "not_found",
	[TD_EMETHOD] = "method_not_allowed",
	[TD_ECONFLICT] = "conflict",
	[TD_EDB] = "database_error",
	[TD_EUNAVAIL] = "unavailable",
	[TD_EUPSTREAM] = "upstream_error",
	[TD_ESYS] = "internal_error",
};

static const char *const messages[TD_ERR__MAX] = {
	[TD_OK] = "OK",
	[TD_EINPUT] = "The request could not be understood.",
	[TD_ETOOBIG] = "The request is larger than this server accepts.",
	[TD_EAUTH] = "You need to sign in to see this.",
	[TD_EFORBID] = "You are not allowed to do this.",
	[TD_ENOENT] = "There is nothing here.",
	[TD_EMETHOD] = "This address does not accept that method.",
	[TD_ECONFLICT] = "That conflicts with the current state.",
	[TD_EDB] = "Something went wrong while reading or saving data.",
	[TD_EUNAVAIL] =
		"The database is unavailable right now. Please try again in a moment.",
	[TD_EUPSTREAM] = "An outside service did not answer properly.",
	[TD_ESYS] = "Something went wrong on our side.",
};

int td_status(enum td_err err)
{
	if ((unsigned)err >= TD_ERR__MAX)
		abort();
	return statuses[err];
}

const char *td_code(enum td_err err)
{
	if ((unsigned)err >= TD_ERR__MAX)
		abort();
	return codes[err];
}

const char *td_strerror(enum td_err err)
{
	if ((unsigned)err >= TD_ERR__MAX)
		abort();
	return messages[err];
}
