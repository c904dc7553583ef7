/* lib/expfmt/pull.c - writer and parser of the strata pull format. */
#include "config.h"

#include "expfmt/pull.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt/write.h"
#include "util/mem.h"

void
pull_write_header(struct strbuf *sb, int64_t since, int64_t until)
{
	strbuf_printf(sb, "# strata-pull 1 %" PRId64 " %" PRId64 "\n", since, until);
}

void
pull_write_series(struct strbuf *sb, const char *name,
    const struct expfmt_label *labels, size_t n)
{
	size_t i;

	strbuf_puts(sb, "S ");
	strbuf_puts(sb, name);
	if (n > 0) {
		strbuf_putc(sb, '{');
		for (i = 0; i < n; i++) {
			if (i > 0)
				strbuf_putc(sb, ',');
			strbuf_append(sb, labels[i].name.p, labels[i].name.len);
			strbuf_puts(sb, "=\"");
			expfmt_write_label_value(sb, labels[i].value.p, labels[i].value.len);
			strbuf_putc(sb, '"');
		}
		strbuf_putc(sb, '}');
	}
	strbuf_putc(sb, '\n');
}

void
pull_write_sample(struct strbuf *sb, int64_t t, double v)
{
	char buf[EXPFMT_FLOAT_MAX];
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	if (isnan(v))
		strbuf_printf(sb, "%" PRId64 " NaN:%016" PRIx64 "\n", t, bits);
	else if (v == 0 && signbit(v))
		strbuf_printf(sb, "%" PRId64 " -0\n", t);
	else {
		expfmt_format_float(v, buf);
		strbuf_printf(sb, "%" PRId64 " %s\n", t, buf);
	}
}

void
pull_write_end(struct strbuf *sb)
{
	strbuf_puts(sb, "# EOF\n");
}

/* --- parser ----------------------------------------------------------- */

struct pull_parser {
	const char *body, *end, *pos;	/* borrowed body; pos: next line */
	size_t line;			/* of the line last read, 1-based */
	bool in_series, failed, done;
	char err[256];
	struct expfmt_label *labels;	/* owned, lcap entries */
	size_t lcap;
	struct strbuf vals;		/* decoded label values */
};

static enum pull_kind
pull_fail(struct pull_parser *p, const char *at, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	const char *ls = at;

	while (ls > p->body && ls[-1] != '\n')
		ls--;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, sizeof(p->err), "%zu:%zu: %s", p->line, (size_t)(at - ls) + 1, msg);
	p->failed = true;
	return PULL_ERROR;
}

/* next_line returns the next line (without its newline) in *s, *n; false
 * at the end of the body. */
static bool
next_line(struct pull_parser *p, const char **s, size_t *n)
{
	const char *nl;

	if (p->pos >= p->end)
		return false;
	nl = memchr(p->pos, '\n', (size_t)(p->end - p->pos));
	*s = p->pos;
	*n = (size_t)((nl != NULL ? nl : p->end) - p->pos);
	p->pos = nl != NULL ? nl + 1 : p->end;
	p->line++;
	return true;
}

static bool
parse_i64(const char *s, size_t n, int64_t *out)
{
	char buf[32];
	char *end;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!((buf[0] >= '0' && buf[0] <= '9') || (buf[0] == '-' && n > 1)))
		return false;
	*out = strtoll(buf, &end, 10);
	return *end == '\0';
}

struct pull_parser *
pull_parser_new(const char *body, size_t len, int64_t *since, int64_t *until,
    char *err, size_t errlen)
{
	struct pull_parser *p = mem_calloc(1, sizeof(*p));
	const char *s, *sp;
	size_t n;
	static const char magic[] = "# strata-pull 1 ";

	p->body = p->pos = body != NULL ? body : "";
	p->end = p->body + len;
	if (!next_line(p, &s, &n) || n < sizeof(magic) - 1 ||
	    memcmp(s, magic, sizeof(magic) - 1) != 0) {
		snprintf(err, errlen, "1:1: not a strata pull body (no \"# strata-pull 1\" line)");
		goto fail;
	}
	s += sizeof(magic) - 1;
	n -= sizeof(magic) - 1;
	sp = memchr(s, ' ', n);
	if (sp == NULL || !parse_i64(s, (size_t)(sp - s), since) ||
	    !parse_i64(sp + 1, n - (size_t)(sp + 1 - s), until) || *until < *since) {
		snprintf(err, errlen, "1:17: bad pull window");
		goto fail;
	}
	return p;
fail:
	pull_parser_free(p);
	return NULL;
}

void
pull_parser_free(struct pull_parser *p)
{
	if (p == NULL)
		return;
	mem_free(p->labels);
	strbuf_free(&p->vals);
	mem_free(p);
}

const char *
pull_error(const struct pull_parser *p)
{
	return p->failed ? p->err : NULL;
}

static bool
is_name_char(char c, bool first, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (colon && c == ':') || (!first && c >= '0' && c <= '9');
}

/* parse_series reads `name{l="v",...}` from s[0..n). */
static enum pull_kind
parse_series(struct pull_parser *p, const char *s, size_t n, struct pull_entry *e)
{
	const char *q = s, *end = s + n;
	size_t nl = 0, i;
	size_t *voff = NULL, *vlen = NULL;
	enum pull_kind k = PULL_SERIES;

	while (q < end && is_name_char(*q, q == s, true))
		q++;
	if (q == s)
		return pull_fail(p, s, "expected a metric name");
	e->name.p = s;
	e->name.len = (size_t)(q - s);
	strbuf_reset(&p->vals);
	if (q < end && *q == '{') {
		q++;
		while (q < end && *q != '}') {
			const char *ln = q;

			if (nl > 0) {
				if (*q != ',') {
					k = pull_fail(p, q, "expected \",\" or \"}\"");
					goto out;
				}
				ln = ++q;
			}
			while (q < end && is_name_char(*q, q == ln, false))
				q++;
			if (q == ln || q + 1 >= end || q[0] != '=' || q[1] != '"') {
				k = pull_fail(p, q, "expected a label name and =\"");
				goto out;
			}
			if (nl == p->lcap) {
				p->lcap = p->lcap ? p->lcap * 2 : 16;
				p->labels = mem_realloc(p->labels, p->lcap * sizeof(*p->labels));
			}
			voff = mem_realloc(voff, p->lcap * sizeof(*voff));
			vlen = mem_realloc(vlen, p->lcap * sizeof(*vlen));
			p->labels[nl].name.p = ln;
			p->labels[nl].name.len = (size_t)(q - ln);
			q += 2;
			voff[nl] = p->vals.len;
			while (q < end && *q != '"') {
				if (*q == '\\') {
					if (q + 1 >= end) {
						k = pull_fail(p, q, "unterminated escape");
						goto out;
					}
					q++;
					strbuf_putc(&p->vals, *q == 'n' ? '\n' : *q);
				} else {
					strbuf_putc(&p->vals, *q);
				}
				q++;
			}
			if (q >= end) {
				k = pull_fail(p, q, "unterminated label value");
				goto out;
			}
			vlen[nl] = p->vals.len - voff[nl];
			q++;
			nl++;
		}
		if (q >= end) {
			k = pull_fail(p, q, "expected \"}\"");
			goto out;
		}
		q++;
	}
	if (q != end) {
		k = pull_fail(p, q, "unexpected text after the series");
		goto out;
	}
	for (i = 0; i < nl; i++) {
		p->labels[i].value.p = p->vals.buf + voff[i];
		p->labels[i].value.len = vlen[i];
	}
	e->labels = p->labels;
	e->nlabels = nl;
out:
	mem_free(voff);
	mem_free(vlen);
	return k;
}

static enum pull_kind
parse_sample(struct pull_parser *p, const char *s, size_t n, struct pull_entry *e)
{
	const char *sp = memchr(s, ' ', n), *v;
	size_t vn;

	if (sp == NULL || !parse_i64(s, (size_t)(sp - s), &e->t))
		return pull_fail(p, s, "expected \"<timestamp> <value>\"");
	v = sp + 1;
	vn = n - (size_t)(v - s);
	if (vn == 20 && memcmp(v, "NaN:", 4) == 0) {
		uint64_t bits = 0;
		size_t i;

		for (i = 4; i < 20; i++) {
			char c = v[i];
			unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			    c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;

			if (d == 16)
				return pull_fail(p, v + i, "bad NaN bits");
			bits = bits << 4 | d;
		}
		memcpy(&e->v, &bits, sizeof(bits));
		if (!isnan(e->v))
			return pull_fail(p, v, "NaN bits that are not a NaN");
		return PULL_SAMPLE;
	}
	if (expfmt_parse_float(v, vn, &e->v) < 0)
		return pull_fail(p, v, "bad sample value");
	return PULL_SAMPLE;
}

enum pull_kind
pull_next(struct pull_parser *p, struct pull_entry *e)
{
	const char *s;
	size_t n;

	if (p->failed)
		return PULL_ERROR;
	if (p->done)
		return PULL_END;
	if (!next_line(p, &s, &n))
		return pull_fail(p, p->end, "body ends without \"# EOF\" (truncated)");
	if (n == 5 && memcmp(s, "# EOF", 5) == 0) {
		if (p->pos != p->end)
			return pull_fail(p, p->pos, "text after \"# EOF\"");
		p->done = true;
		return PULL_END;
	}
	if (n >= 2 && s[0] == 'S' && s[1] == ' ') {
		p->in_series = true;
		return parse_series(p, s + 2, n - 2, e);
	}
	if (!p->in_series)
		return pull_fail(p, s, "sample before any series");
	return parse_sample(p, s, n, e);
}
