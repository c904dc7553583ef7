/* lib/expfmt/write.c - text exposition format 0.0.4 writer.
 *
 * Owns nothing: every function appends to the caller's strbuf. Float
 * formatting reproduces Go's strconv.FormatFloat(v, 'g', -1, 64): the
 * shortest digit string that reads back as v (found by printf at 15, 16,
 * then 17 significant digits: when 15 round-trip, stripping their trailing
 * zeros gives the shortest string, and below 15 nothing else can; for
 * subnormals, which carry fewer digits, from one digit up), then
 * Go's layout: exponent form when the decimal exponent is below -4 or at
 * least 6 (Go's rule for shortest 'g'), plain decimals otherwise.
 */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt/write.h"

#include "util/float.h"

size_t
expfmt_format_float(double v, char *buf)
{
	/* Prometheus' text encoder writes both zeros as "0". */
	if (v == 0) {
		memcpy(buf, "0", 2);
		return 1;
	}
	return float_format_buf(v, 'g', buf);
}

void
expfmt_write_float(struct strbuf *sb, double v)
{
	char buf[EXPFMT_FLOAT_MAX];

	strbuf_append(sb, buf, expfmt_format_float(v, buf));
}

/* expfmt_write_escaped appends s with backslash, newline and (when quote)
 * double quote escaped. */
static void
expfmt_write_escaped(struct strbuf *sb, const char *s, size_t len, bool quote)
{
	size_t i, from = 0;

	for (i = 0; i < len; i++) {
		const char *rep;

		switch (s[i]) {
		case '\\': rep = "\\\\"; break;
		case '\n': rep = "\\n"; break;
		case '"':
			if (!quote)
				continue;
			rep = "\\\"";
			break;
		default:
			continue;
		}
		strbuf_append(sb, s + from, i - from);
		strbuf_append(sb, rep, 2);
		from = i + 1;
	}
	strbuf_append(sb, s + from, len - from);
}

void
expfmt_write_label_value(struct strbuf *sb, const char *v, size_t len)
{
	expfmt_write_escaped(sb, v, len, true);
}

void
expfmt_write_type(struct strbuf *sb, const char *name, size_t len, enum expfmt_type t)
{
	const char *tn;

	switch (t) {
	case EXPFMT_COUNTER: tn = "counter"; break;
	case EXPFMT_GAUGE: tn = "gauge"; break;
	case EXPFMT_HISTOGRAM: tn = "histogram"; break;
	case EXPFMT_SUMMARY: tn = "summary"; break;
	default: tn = "untyped"; break;
	}
	strbuf_append(sb, "# TYPE ", 7);
	strbuf_append(sb, name, len);
	strbuf_putc(sb, ' ');
	strbuf_puts(sb, tn);
	strbuf_putc(sb, '\n');
}

void
expfmt_write_help(struct strbuf *sb, const char *name, size_t nlen, const char *help, size_t hlen)
{
	strbuf_append(sb, "# HELP ", 7);
	strbuf_append(sb, name, nlen);
	strbuf_putc(sb, ' ');
	expfmt_write_escaped(sb, help, hlen, false);
	strbuf_putc(sb, '\n');
}

/* expfmt_write_tail appends " value[ ts]\n". */
static void
expfmt_write_tail(struct strbuf *sb, double v, bool has_ts, int64_t ts)
{
	char buf[EXPFMT_FLOAT_MAX + 24];
	size_t o;

	buf[0] = ' ';
	o = 1 + expfmt_format_float(v, buf + 1);
	if (has_ts)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " %lld", (long long)ts);
	buf[o++] = '\n';
	strbuf_append(sb, buf, o);
}

void
expfmt_write_sample(struct strbuf *sb, const char *name, size_t nlen,
    const struct expfmt_label *labels, size_t n, double v, bool has_ts, int64_t ts)
{
	size_t i;

	strbuf_append(sb, name, nlen);
	if (n > 0) {
		strbuf_putc(sb, '{');
		for (i = 0; i < n; i++) {
			if (i)
				strbuf_putc(sb, ',');
			strbuf_append(sb, labels[i].name.p, labels[i].name.len);
			strbuf_append(sb, "=\"", 2);
			expfmt_write_escaped(sb, labels[i].value.p, labels[i].value.len, true);
			strbuf_putc(sb, '"');
		}
		strbuf_putc(sb, '}');
	}
	expfmt_write_tail(sb, v, has_ts, ts);
}

void
expfmt_write_series(struct strbuf *sb, const struct labels *ls, double v, bool has_ts, int64_t ts)
{
	const char *name = "";
	uint32_t i;
	bool first = true;

	for (i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].name, LABEL_METRIC_NAME) == 0)
			name = ls->v[i].value;
	strbuf_puts(sb, name);
	for (i = 0; i < ls->n; i++) {
		if (strcmp(ls->v[i].name, LABEL_METRIC_NAME) == 0)
			continue;
		strbuf_putc(sb, first ? '{' : ',');
		first = false;
		strbuf_puts(sb, ls->v[i].name);
		strbuf_append(sb, "=\"", 2);
		expfmt_write_escaped(sb, ls->v[i].value, strlen(ls->v[i].value), true);
		strbuf_putc(sb, '"');
	}
	if (!first)
		strbuf_putc(sb, '}');
	expfmt_write_tail(sb, v, has_ts, ts);
}
