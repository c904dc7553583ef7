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

/* expfmt_shortest fills digs with the shortest round-trip digits of the
 * finite, positive v and returns their count; *dp is the decimal point
 * position (v = 0.digs * 10^dp). */
static int
expfmt_shortest(double v, char digs[20], int *dp)
{
	char buf[40];
	int prec, nd = 0, i;
	char *e;

	if (v < 1e15 && v == floor(v)) {
		/* integers: exact digits, trailing zeros dropped */
		unsigned long long u = (unsigned long long)v;
		char tmp[20];
		int n = 0;

		while (u) {
			tmp[n++] = (char)('0' + u % 10);
			u /= 10;
		}
		*dp = n;
		for (i = 0; i < n; i++)
			digs[i] = tmp[n - 1 - i];
		while (n > 1 && digs[n - 1] == '0')
			n--;
		return n;
	}
	/* subnormals carry fewer digits: search them from one digit up */
	for (prec = v < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (prec == 16 || strtod(buf, NULL) == v)
			break;
	}
	/* buf is d.ddddde[+-]xx */
	for (i = 0; buf[i] && buf[i] != 'e'; i++)
		if (buf[i] >= '0' && buf[i] <= '9')
			digs[nd++] = buf[i];
	e = buf + i;
	*dp = (int)strtol(e + 1, NULL, 10) + 1;
	while (nd > 1 && digs[nd - 1] == '0')
		nd--;
	return nd;
}

size_t
expfmt_format_float(double v, char *buf)
{
	char digs[20];
	int nd, dp, exp, i;
	size_t o = 0;

	if (isnan(v)) {
		memcpy(buf, "NaN", 4);
		return 3;
	}
	if (isinf(v)) {
		memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
		return 4;
	}
	if (v == 0) {
		memcpy(buf, "0", 2);
		return 1;
	}
	if (v < 0) {
		buf[o++] = '-';
		v = -v;
	}
	nd = expfmt_shortest(v, digs, &dp);
	exp = dp - 1;
	if (exp < -4 || exp >= 6) {
		/* %e: d[.ddd]e±XX */
		buf[o++] = digs[0];
		if (nd > 1) {
			buf[o++] = '.';
			memcpy(buf + o, digs + 1, (size_t)nd - 1);
			o += (size_t)nd - 1;
		}
		buf[o++] = 'e';
		buf[o++] = exp < 0 ? '-' : '+';
		if (exp < 0)
			exp = -exp;
		if (exp >= 100)
			buf[o++] = (char)('0' + exp / 100);
		buf[o++] = (char)('0' + exp / 10 % 10);
		buf[o++] = (char)('0' + exp % 10);
	} else if (dp > 0) {
		for (i = 0; i < dp; i++)
			buf[o++] = i < nd ? digs[i] : '0';
		if (nd > dp) {
			buf[o++] = '.';
			for (i = dp; i < nd; i++)
				buf[o++] = digs[i];
		}
	} else {
		buf[o++] = '0';
		buf[o++] = '.';
		for (i = dp; i < 0; i++)
			buf[o++] = '0';
		memcpy(buf + o, digs, (size_t)nd);
		o += (size_t)nd;
	}
	buf[o] = '\0';
	return o;
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
