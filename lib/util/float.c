/* lib/util/float.c - Go's shortest float formatting. */
#include "config.h"

#include "util/float.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
float_shortest(double v, char digs[24], int *dp)
{
	char buf[48];
	int prec, nd = 0, i;

	if (v < 1e15 && v == floor(v)) {
		/* integers: their exact digits */
		unsigned long long u = (unsigned long long)v;
		char tmp[24];
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
	/* When 15 significant digits read back, the correctly rounded 15
	 * digits without their trailing zeros are the shortest (a shorter
	 * decimal that reads back is within half an ulp, so it rounds to
	 * itself at 15 digits); else 16, else 17 always do. Subnormals carry
	 * fewer digits and are searched from one digit up. */
	for (prec = v < DBL_MIN ? 0 : 14; prec <= 16; prec++) {
		snprintf(buf, sizeof(buf), "%.*e", prec, v);
		if (prec == 16 || strtod(buf, NULL) == v)
			break;
	}
	for (i = 0; buf[i] != '\0' && buf[i] != 'e'; i++)
		if (buf[i] >= '0' && buf[i] <= '9')
			digs[nd++] = buf[i];
	*dp = (int)strtol(buf + i + 1, NULL, 10) + 1;
	while (nd > 1 && digs[nd - 1] == '0')
		nd--;
	return nd;
}

/* put_e writes d[.ddd]e±XX. */
static size_t
put_e(char *b, size_t o, const char *digs, int nd, int exp)
{
	b[o++] = digs[0];
	if (nd > 1) {
		b[o++] = '.';
		memcpy(b + o, digs + 1, (size_t)nd - 1);
		o += (size_t)nd - 1;
	}
	b[o++] = 'e';
	b[o++] = exp < 0 ? '-' : '+';
	if (exp < 0)
		exp = -exp;
	if (exp >= 100)
		b[o++] = (char)('0' + exp / 100);
	b[o++] = (char)('0' + exp / 10 % 10);
	b[o++] = (char)('0' + exp % 10);
	return o;
}

/* special writes NaN, the infinities and zeros into buf and returns the
 * length, or 0 when v is none of them; *neg and *av receive v's sign and
 * magnitude. */
static size_t
special(double v, char fmt, char *buf, bool *neg, double *av)
{
	size_t o = 0;

	if (isnan(v)) {
		memcpy(buf, "NaN", 4);
		return 3;
	}
	if (isinf(v)) {
		memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
		return 4;
	}
	*neg = signbit(v);
	*av = fabs(v);
	if (*av != 0)
		return 0;
	if (*neg)
		buf[o++] = '-';
	memcpy(buf + o, fmt == 'e' ? "0e+00" : "0", fmt == 'e' ? 6 : 2);
	return o + (fmt == 'e' ? 5 : 1);
}

size_t
float_format_buf(double v, char fmt, char *buf)
{
	char digs[24];
	int nd, dp, exp, i;
	size_t o = 0;
	bool neg;
	double av;

	if ((o = special(v, fmt, buf, &neg, &av)) > 0)
		return o;
	if (neg)
		buf[o++] = '-';
	nd = float_shortest(av, digs, &dp);
	exp = dp - 1;
	/* Go's 'g' with shortest digits: %e below 1e-4 and from 1e6 on. */
	if (fmt == 'e' || exp < -4 || exp >= 6) {
		o = put_e(buf, o, digs, nd, exp);
	} else if (dp > 0) {
		for (i = 0; i < dp; i++)
			buf[o++] = i < nd ? digs[i] : '0';
		if (nd > dp) {
			buf[o++] = '.';
			memcpy(buf + o, digs + dp, (size_t)(nd - dp));
			o += (size_t)(nd - dp);
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
float_format(struct strbuf *sb, double v, char fmt)
{
	char buf[FLOAT_FMT_MAX], digs[24];
	int nd, dp, i;
	size_t n;
	bool neg;
	double av;

	if (fmt != 'f') {
		strbuf_append(sb, buf, float_format_buf(v, fmt, buf));
		return;
	}
	if ((n = special(v, fmt, buf, &neg, &av)) > 0) {
		strbuf_append(sb, buf, n);
		return;
	}
	/* 'f': every digit before the point, however many (1e300 has 301). */
	if (neg)
		strbuf_putc(sb, '-');
	nd = float_shortest(av, digs, &dp);
	if (dp > 0) {
		for (i = 0; i < dp; i++)
			strbuf_putc(sb, i < nd ? digs[i] : '0');
		if (nd > dp) {
			strbuf_putc(sb, '.');
			strbuf_append(sb, digs + dp, (size_t)(nd - dp));
		}
	} else {
		strbuf_puts(sb, "0.");
		for (i = dp; i < 0; i++)
			strbuf_putc(sb, '0');
		strbuf_append(sb, digs, (size_t)nd);
	}
}
