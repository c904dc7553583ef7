/* lib/util/log.h - the process logger: levels, logfmt or JSON lines on stderr.
 *
 * One logger per process, configured once at start-up from --log.level and
 * --log.format (log_setup); until then it logs at info in logfmt. Each line
 * carries ts, level, component and msg, then optional key/value pairs:
 *
 *   log_kv(LOG_WARN, "scrape", "scrape failed", "target", url, "err", e, NULL);
 *   log_msg(LOG_INFO, "main", "listening on %s", addr);
 *
 * The level is checked before anything is formatted. Hot loops count in
 * metrics; they do not log. Safe to call from any thread (one write(2) per line).
 */
#ifndef STRATA_UTIL_LOG_H
#define STRATA_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* log_setup sets the level ("debug", "info", "warn", "error") and format
 * ("logfmt", "json"). Returns 0, or -1 with a message in err. */
int log_setup(const char *level, const char *format, char *err, size_t errlen);
/* log_enabled tells whether a line at lvl would be written. */
bool log_enabled(enum log_level lvl);
/* log_kv writes msg and NULL-terminated key, value string pairs. */
void log_kv(enum log_level lvl, const char *component, const char *msg, ...)
	__attribute__((sentinel));
/* log_msg writes a printf-formatted msg. */
void log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
