/* err.h: the one error type every fallible function returns */
#ifndef TD_ERR_H
#define TD_ERR_H

enum td_err {
	TD_OK = 0,
	TD_EINPUT,    /* 400: malformed or invalid input */
	TD_ETOOBIG,   /* 413: body or field over a configured limit */
	TD_EAUTH,     /* 401: no or bad credentials */
	TD_EFORBID,   /* 403: authenticated but not allowed */
	TD_ENOENT,    /* 404: no such thing */
	TD_EMETHOD,   /* 405: path exists, method does not */
	TD_ECONFLICT, /* 409: unique violation or state conflict */
	TD_EDB,	      /* 500: database failure */
	TD_EUNAVAIL,  /* 503: database unreachable */
	TD_EUPSTREAM, /* 502: an outside system failed */
	TD_ESYS,      /* 500: operating system or library failure */
	TD_ERR__MAX
};

/* The HTTP status for an error (200 for TD_OK). */
int td_status(enum td_err err);

/* A short, stable, lowercase code for JSON errors ("not_found"). */
const char *td_code(enum td_err err);

/* A sentence for people ("The page you asked for does not exist."). */
const char *td_strerror(enum td_err err);

#endif
