/* lib/util/time.c - clocks and Prometheus duration strings.
 *
 * The duration grammar is Prometheus' (common/model ParseDuration): units in
 * decreasing order, each at most once, y = 365d and w = 7d, or the bare "0".
 */
#include "config.h"

#include "util/time.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t
time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
time_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct {
	const char *name;
	int64_t ms;
} time_units[] = {
	{ "y", 365LL * 24 * 3600 * 1000 },
	{ "w", 7LL * 24 * 3600 * 1000 },
	{ "d", 24LL * 3600 * 1000 },
	{ "h", 3600LL * 1000 },
	{ "m", 60LL * 1000 },
	{ "s", 1000 },
	{ "ms", 1 },
};
#define TIME_NUNITS (sizeof(time_units) / sizeof(time_units[0]))

int
time_parse_duration(const char *s, size_t len, int64_t *ms,
    char *err, size_t errlen)
{
	size_t i = 0, next_unit = 0;
	int64_t total = 0;

	if (len == 0) {
		snprintf(err, errlen, "empty duration string");
		return -1;
	}
	if (len == 1 && s[0] == '0') {
		*ms = 0;
		return 0;
	}
	while (i < len) {
		uint64_t v = 0;
		size_t start = i, u, ulen;
		bool found = false;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				goto overflow;
			v = v * 10 + (uint64_t)(s[i] - '0');
			i++;
		}
		if (i == start)
			goto invalid;
		for (u = next_unit; u < TIME_NUNITS; u++) {
			ulen = strlen(time_units[u].name);
			/* "m" must not swallow the "m" of "ms" */
			if (len - i >= ulen &&
			    memcmp(s + i, time_units[u].name, ulen) == 0 &&
			    !(ulen == 1 && s[i] == 'm' && i + 1 < len &&
			    s[i + 1] == 's')) {
				found = true;
				break;
			}
		}
		if (!found)
			goto invalid;
		if (v > (uint64_t)INT64_MAX / (uint64_t)time_units[u].ms)
			goto overflow;
		if ((int64_t)v * time_units[u].ms > INT64_MAX - total)
			goto overflow;
		total += (int64_t)v * time_units[u].ms;
		i += ulen;
		next_unit = u + 1;
	}
	*ms = total;
	return 0;
invalid:
	snprintf(err, errlen, "not a valid duration string: \"%.*s\"",
	    (int)(len > 64 ? 64 : len), s);
	return -1;
overflow:
	snprintf(err, errlen, "duration out of range: \"%.*s\"",
	    (int)(len > 64 ? 64 : len), s);
	return -1;
}

char *
time_format_duration(int64_t ms, char *buf, size_t buflen)
{
	size_t off = 0, u;
	bool neg = ms < 0;

	if (ms == 0) {
		snprintf(buf, buflen, "0s");
		return buf;
	}
	buf[0] = '\0';
	if (neg) {
		off += (size_t)snprintf(buf, buflen, "-");
		ms = ms == INT64_MIN ? INT64_MAX : -ms;
	}
	for (u = 0; u < TIME_NUNITS && off < buflen; u++) {
		int64_t v;

		/* years and weeks only when exact: "90d" reads better than "12w6d" */
		if (u < 2 && ms % time_units[u].ms != 0)
			continue;
		v = ms / time_units[u].ms;
		if (v > 0) {
			off += (size_t)snprintf(buf + off, buflen - off,
			    "%" PRId64 "%s", v, time_units[u].name);
			ms -= v * time_units[u].ms;
		}
	}
	return buf;
}

char *
time_format_rfc3339(int64_t ms, char *buf, size_t buflen)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;
	char date[24];

	gmtime_r(&secs, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, buflen, "%s.%03dZ", date, frac);
	return buf;
}

char *
time_format_go(int64_t ms, char *buf, size_t buflen)
{
	size_t n;

	time_format_rfc3339(ms, buf, buflen);
	/* "....SS.fffZ": drop trailing zeros of the fraction, then the dot. */
	n = strlen(buf);
	if (n < 6 || buf[n - 5] != '.')
		return buf;
	n--;			/* at the 'Z' */
	while (buf[n - 1] == '0')
		n--;
	if (buf[n - 1] == '.')
		n--;
	buf[n] = 'Z';
	buf[n + 1] = '\0';
	return buf;
}
