/* log.c: one-line log messages on stderr (journald adds the time) */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "banned.h"

static enum log_level max_level = LOG_LEVEL_INFO;

static const char *const names[] = { "error", "warning", "info", "debug" };

void log_set_level(enum log_level level)
{
	max_level = level;
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	if (level > max_level)
		return;
	n = snprintf(line, sizeof(line), "tallydesk[%ld]: %s: ", (long)getpid(),
		     names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line so workers' lines never interleave mid-line. */
	fprintf(stderr, "%s\n", line);
}

#define LOG_FN(fn, level)                                                      \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(level, fmt, ap);                                          \
		va_end(ap);                                                    \
	}

LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)
