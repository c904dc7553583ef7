/* lib/util/time.h - clocks and Prometheus durations.
 *
 * Timestamps in strata are int64 milliseconds since the Unix epoch, as in
 * Prometheus. Durations are int64 milliseconds and are written the way
 * Prometheus writes them ("1m30s", "2h", "0s").
 */
#ifndef STRATA_UTIL_TIME_H
#define STRATA_UTIL_TIME_H

#include <stddef.h>
#include <stdint.h>

/* time_now_ms returns wall-clock milliseconds since the epoch. */
int64_t time_now_ms(void);
/* time_mono_ns returns a monotonic clock in nanoseconds (for intervals). */
int64_t time_mono_ns(void);

/* time_parse_duration parses a Prometheus duration ("1y2w3d4h5m6s7ms", "0")
 * of len bytes into *ms. Returns 0, or -1 with a message in err. */
int time_parse_duration(const char *s, size_t len, int64_t *ms,
    char *err, size_t errlen);
/* time_format_duration writes ms as Prometheus does into buf (at least 32
 * bytes) and returns buf. */
char *time_format_duration(int64_t ms, char *buf, size_t buflen);
/* time_format_rfc3339 writes ms as "2006-01-02T15:04:05.000Z" (UTC) into buf
 * (at least 32 bytes) and returns buf. */
char *time_format_rfc3339(int64_t ms, char *buf, size_t buflen);

/* time_format_go writes ms the way Go marshals a UTC time.Time to JSON
 * (RFC3339Nano: fraction without trailing zeros, none when zero), e.g.
 * "2023-11-14T22:13:20.12Z", into buf (at least 32 bytes); returns buf. */
char *time_format_go(int64_t ms, char *buf, size_t buflen);

#endif
