/* lib/labels/selector.c - PromQL metric selector parser (lexer and grammar).
 *
 * A small recursive-descent parser over the selector text; positions in
 * errors are "line:column" of the offending token, 1-based, as Prometheus
 * prints them. Stateless; safe from any thread.
 */
#include "config.h"

#include "labels/selector.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

struct sel_lexer {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
};

static int
sel_fail(struct sel_lexer *lx, size_t at, const char *fmt, ...)
{
	size_t line = 1, col = 1, i;
	char msg[256];
	va_list ap;

	for (i = 0; i < at && i < lx->len; i++) {
		if (lx->s[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(lx->err, lx->errlen, "%zu:%zu: parse error: %s", line, col, msg);
	return -1;
}

/* sel_skip skips blanks and # comments. */
static void
sel_skip(struct sel_lexer *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->s[lx->pos];

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			lx->pos++;
		} else if (c == '#') {
			while (lx->pos < lx->len && lx->s[lx->pos] != '\n')
				lx->pos++;
		} else {
			break;
		}
	}
}

static bool
sel_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
sel_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
sel_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
sel_put_utf8(struct strbuf *out, unsigned long r)
{
	if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = 0xFFFD;
	if (r < 0x80) {
		strbuf_putc(out, (char)r);
	} else if (r < 0x800) {
		strbuf_putc(out, (char)(0xC0 | (r >> 6)));
		strbuf_putc(out, (char)(0x80 | (r & 0x3F)));
	} else if (r < 0x10000) {
		strbuf_putc(out, (char)(0xE0 | (r >> 12)));
		strbuf_putc(out, (char)(0x80 | ((r >> 6) & 0x3F)));
		strbuf_putc(out, (char)(0x80 | (r & 0x3F)));
	} else {
		strbuf_putc(out, (char)(0xF0 | (r >> 18)));
		strbuf_putc(out, (char)(0x80 | ((r >> 12) & 0x3F)));
		strbuf_putc(out, (char)(0x80 | ((r >> 6) & 0x3F)));
		strbuf_putc(out, (char)(0x80 | (r & 0x3F)));
	}
}

int
selector_unquote(const char *s, size_t len, struct strbuf *out, char *err, size_t errlen)
{
	char q;
	size_t i;

	if (len < 2 || s[0] != s[len - 1] || (s[0] != '"' && s[0] != '\'' && s[0] != '`')) {
		snprintf(err, errlen, "invalid string literal");
		return -1;
	}
	q = s[0];
	if (q == '`') {
		strbuf_append(out, s + 1, len - 2);
		return 0;
	}
	for (i = 1; i < len - 1; i++) {
		char c = s[i];
		int digits = 0, base = 16, d, k;
		unsigned long r = 0;

		if (c != '\\') {
			strbuf_putc(out, c);
			continue;
		}
		if (++i >= len - 1)
			goto bad;
		c = s[i];
		switch (c) {
		case 'a': strbuf_putc(out, '\a'); continue;
		case 'b': strbuf_putc(out, '\b'); continue;
		case 'f': strbuf_putc(out, '\f'); continue;
		case 'n': strbuf_putc(out, '\n'); continue;
		case 'r': strbuf_putc(out, '\r'); continue;
		case 't': strbuf_putc(out, '\t'); continue;
		case 'v': strbuf_putc(out, '\v'); continue;
		case '\\': strbuf_putc(out, '\\'); continue;
		case 'x': digits = 2; break;
		case 'u': digits = 4; break;
		case 'U': digits = 8; break;
		default:
			if (c == q) {
				strbuf_putc(out, c);
				continue;
			}
			if (c >= '0' && c <= '7') {
				digits = 3;
				base = 8;
				i--;
				break;
			}
			snprintf(err, errlen, "unknown escape sequence U+%04X", (unsigned char)c);
			return -1;
		}
		for (k = 0; k < digits; k++) {
			if (++i >= len - 1)
				goto bad;
			d = base == 8 ? (s[i] >= '0' && s[i] <= '7' ? s[i] - '0' : -1) : sel_hex(s[i]);
			if (d < 0)
				goto bad;
			r = r * (unsigned long)base + (unsigned long)d;
		}
		if (c == 'x' || base == 8) {
			if (r > 255)
				goto bad;
			strbuf_putc(out, (char)r);
		} else {
			if (r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
				goto bad;
			sel_put_utf8(out, r);
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "invalid escape sequence in string literal");
	return -1;
}

/* sel_string lexes a quoted string at lx->pos into out. */
static int
sel_string(struct sel_lexer *lx, struct strbuf *out)
{
	size_t start = lx->pos;
	char q = lx->s[lx->pos++];
	char uerr[128];

	while (lx->pos < lx->len && lx->s[lx->pos] != q) {
		if (lx->s[lx->pos] == '\\' && q != '`')
			lx->pos++;
		else if (lx->s[lx->pos] == '\n' && q != '`')
			return sel_fail(lx, start, "unterminated quoted string");
		lx->pos++;
	}
	if (lx->pos >= lx->len)
		return sel_fail(lx, start, "unterminated %s string",
		    q == '`' ? "raw" : "quoted");
	lx->pos++;
	if (selector_unquote(lx->s + start, lx->pos - start, out, uerr, sizeof(uerr)) < 0)
		return sel_fail(lx, start, "%s", uerr);
	return 0;
}

static void
sel_add(struct selector *sel, struct matcher *m)
{
	sel->ms = mem_realloc(sel->ms, (sel->n + 1) * sizeof(*sel->ms));
	sel->ms[sel->n++] = m;
}

static int
sel_matchers(struct sel_lexer *lx, struct selector *sel)
{
	struct strbuf name = STRBUF_INIT, value = STRBUF_INIT;
	int rc = -1;

	lx->pos++;	/* '{' */
	for (;;) {
		enum matcher_op op;
		size_t at;
		struct matcher *m;
		char merr[256];

		sel_skip(lx);
		if (lx->pos >= lx->len) {
			sel_fail(lx, lx->pos, "unexpected end of input inside braces");
			goto out;
		}
		if (lx->s[lx->pos] == '}') {
			lx->pos++;
			rc = 0;
			goto out;
		}
		at = lx->pos;
		if (!sel_is_alpha(lx->s[lx->pos])) {
			sel_fail(lx, at, "unexpected character inside braces: '%c'", lx->s[lx->pos]);
			goto out;
		}
		while (lx->pos < lx->len && (sel_is_alpha(lx->s[lx->pos]) || sel_is_digit(lx->s[lx->pos])))
			lx->pos++;
		strbuf_reset(&name);
		strbuf_append(&name, lx->s + at, lx->pos - at);
		sel_skip(lx);
		if (lx->pos + 1 < lx->len && lx->s[lx->pos] == '=' && lx->s[lx->pos + 1] == '~') {
			op = MATCH_REGEX;
			lx->pos += 2;
		} else if (lx->pos + 1 < lx->len && lx->s[lx->pos] == '!' && lx->s[lx->pos + 1] == '~') {
			op = MATCH_NOT_REGEX;
			lx->pos += 2;
		} else if (lx->pos + 1 < lx->len && lx->s[lx->pos] == '!' && lx->s[lx->pos + 1] == '=') {
			op = MATCH_NOT_EQUAL;
			lx->pos += 2;
		} else if (lx->pos < lx->len && lx->s[lx->pos] == '=') {
			op = MATCH_EQUAL;
			lx->pos++;
		} else {
			if (lx->pos >= lx->len)
				sel_fail(lx, lx->pos, "unexpected end of input inside braces");
			else
				sel_fail(lx, lx->pos, "unexpected character inside braces: '%c'", lx->s[lx->pos]);
			goto out;
		}
		sel_skip(lx);
		if (lx->pos >= lx->len) {
			sel_fail(lx, lx->pos, "unexpected end of input inside braces");
			goto out;
		}
		if (lx->s[lx->pos] != '"' && lx->s[lx->pos] != '\'' && lx->s[lx->pos] != '`') {
			sel_fail(lx, lx->pos, "unexpected character inside braces: '%c', expected string", lx->s[lx->pos]);
			goto out;
		}
		strbuf_reset(&value);
		at = lx->pos;
		if (sel_string(lx, &value) < 0)
			goto out;
		m = matcher_new(op, strbuf_cstr(&name), strbuf_cstr(&value), merr, sizeof(merr));
		if (m == NULL) {
			sel_fail(lx, at, "%s", merr);
			goto out;
		}
		sel_add(sel, m);
		sel_skip(lx);
		if (lx->pos < lx->len && lx->s[lx->pos] == ',') {
			lx->pos++;
			continue;
		}
		if (lx->pos < lx->len && lx->s[lx->pos] == '}')
			continue;
		if (lx->pos >= lx->len)
			sel_fail(lx, lx->pos, "unexpected end of input inside braces");
		else
			sel_fail(lx, lx->pos, "unexpected character inside braces: '%c', expected \",\" or \"}\"", lx->s[lx->pos]);
		goto out;
	}
out:
	strbuf_free(&name);
	strbuf_free(&value);
	return rc;
}

int
selector_parse(const char *s, size_t len, struct selector *sel, char *err, size_t errlen)
{
	struct sel_lexer lx = { s, len, 0, err, errlen };
	char merr[256];

	sel->ms = NULL;
	sel->n = 0;
	sel_skip(&lx);
	if (lx.pos >= len) {
		sel_fail(&lx, lx.pos, "unexpected end of input");
		goto fail;
	}
	if (sel_is_alpha(s[lx.pos]) || s[lx.pos] == ':') {
		size_t at = lx.pos;
		char *name;
		struct matcher *m;

		while (lx.pos < len && (sel_is_alpha(s[lx.pos]) || sel_is_digit(s[lx.pos]) || s[lx.pos] == ':'))
			lx.pos++;
		name = mem_strndup(s + at, lx.pos - at);
		m = matcher_new(MATCH_EQUAL, LABEL_METRIC_NAME, name, merr, sizeof(merr));
		mem_free(name);
		if (m == NULL) {
			sel_fail(&lx, at, "%s", merr);
			goto fail;
		}
		sel_skip(&lx);
		if (lx.pos < len && s[lx.pos] == '{' && sel_matchers(&lx, sel) < 0) {
			matcher_free(m);
			goto fail;
		}
		/* Prometheus lists the name matcher last. */
		sel_add(sel, m);
	} else if (s[lx.pos] == '{') {
		if (sel_matchers(&lx, sel) < 0)
			goto fail;
	} else {
		sel_fail(&lx, lx.pos, "unexpected character: '%c'", s[lx.pos]);
		goto fail;
	}
	sel_skip(&lx);
	if (lx.pos < len) {
		sel_fail(&lx, lx.pos, "unexpected character after selector: '%c'", s[lx.pos]);
		goto fail;
	}
	return 0;
fail:
	selector_free(sel);
	return -1;
}

void
selector_free(struct selector *sel)
{
	size_t i;

	for (i = 0; i < sel->n; i++)
		matcher_free(sel->ms[i]);
	MEM_FREE(sel->ms);
	sel->n = 0;
}
