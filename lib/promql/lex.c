/* lib/promql/lex.c - the PromQL lexer.
 *
 * A transcription of the behaviour of Prometheus 2.42's state-function
 * lexer: lexStatements dispatches on the next rune; braces, brackets and
 * parentheses are tracked so that words lex as identifiers inside braces
 * and as a COLON inside brackets (Prometheus' quirk), durations are only
 * recognised after '[' or where a number is followed by a unit, and every
 * error stops the scan with Prometheus' message. Runes are decoded as Go
 * does (an invalid byte is U+FFFD of width 1). Stateless apart from the
 * struct promql_lexer the caller owns.
 */
#include "config.h"

#include "promql/lex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "labels/labels.h"

#define LEX_EOF (-1L)
#define RUNE_ERROR 0xFFFDL

/* The sub-states that may span calls of promql_lex_next's inner loop. */
enum lex_sub {
	SUB_STATEMENTS,
	SUB_INSIDE_BRACES,
	SUB_VALUE_SEQUENCE,
	SUB_STRING,
	SUB_RAW_STRING,
	SUB_SPACE,
	SUB_LINE_COMMENT,
	SUB_DURATION,
	SUB_NUMBER_OR_DURATION,
	SUB_KEYWORD_OR_IDENTIFIER,
	SUB_IDENTIFIER,
	SUB_DONE,
};

struct lex_run {
	struct promql_lexer *l;
	struct promql_item *it;
	size_t width;
	long quote;		/* the quote rune of the string being read */
	bool scanned;
};

static const struct {
	const char *word;
	enum promql_tok tok;
} lex_keywords[] = {
	{ "and", PROMQL_T_LAND },
	{ "or", PROMQL_T_LOR },
	{ "unless", PROMQL_T_LUNLESS },
	{ "atan2", PROMQL_T_ATAN2 },
	{ "sum", PROMQL_T_SUM },
	{ "avg", PROMQL_T_AVG },
	{ "count", PROMQL_T_COUNT },
	{ "min", PROMQL_T_MIN },
	{ "max", PROMQL_T_MAX },
	{ "group", PROMQL_T_GROUP },
	{ "stddev", PROMQL_T_STDDEV },
	{ "stdvar", PROMQL_T_STDVAR },
	{ "topk", PROMQL_T_TOPK },
	{ "bottomk", PROMQL_T_BOTTOMK },
	{ "count_values", PROMQL_T_COUNT_VALUES },
	{ "quantile", PROMQL_T_QUANTILE },
	{ "offset", PROMQL_T_OFFSET },
	{ "by", PROMQL_T_BY },
	{ "without", PROMQL_T_WITHOUT },
	{ "on", PROMQL_T_ON },
	{ "ignoring", PROMQL_T_IGNORING },
	{ "group_left", PROMQL_T_GROUP_LEFT },
	{ "group_right", PROMQL_T_GROUP_RIGHT },
	{ "bool", PROMQL_T_BOOL },
	{ "start", PROMQL_T_START },
	{ "end", PROMQL_T_END },
	{ "inf", PROMQL_T_NUMBER },
	{ "nan", PROMQL_T_NUMBER },
};

static const struct {
	enum promql_tok tok;
	const char *str;
} tok_strings[] = {
	{ PROMQL_T_LEFT_PAREN, "(" },
	{ PROMQL_T_RIGHT_PAREN, ")" },
	{ PROMQL_T_LEFT_BRACE, "{" },
	{ PROMQL_T_RIGHT_BRACE, "}" },
	{ PROMQL_T_LEFT_BRACKET, "[" },
	{ PROMQL_T_RIGHT_BRACKET, "]" },
	{ PROMQL_T_COMMA, "," },
	{ PROMQL_T_EQL, "=" },
	{ PROMQL_T_COLON, ":" },
	{ PROMQL_T_SEMICOLON, ";" },
	{ PROMQL_T_BLANK, "_" },
	{ PROMQL_T_TIMES, "x" },
	{ PROMQL_T_SPACE, "<space>" },
	{ PROMQL_T_SUB, "-" },
	{ PROMQL_T_ADD, "+" },
	{ PROMQL_T_MUL, "*" },
	{ PROMQL_T_MOD, "%" },
	{ PROMQL_T_DIV, "/" },
	{ PROMQL_T_EQLC, "==" },
	{ PROMQL_T_NEQ, "!=" },
	{ PROMQL_T_LTE, "<=" },
	{ PROMQL_T_LSS, "<" },
	{ PROMQL_T_GTE, ">=" },
	{ PROMQL_T_GTR, ">" },
	{ PROMQL_T_EQL_REGEX, "=~" },
	{ PROMQL_T_NEQ_REGEX, "!~" },
	{ PROMQL_T_POW, "^" },
	{ PROMQL_T_LAND, "and" },
	{ PROMQL_T_LOR, "or" },
	{ PROMQL_T_LUNLESS, "unless" },
	{ PROMQL_T_ATAN2, "atan2" },
	{ PROMQL_T_SUM, "sum" },
	{ PROMQL_T_AVG, "avg" },
	{ PROMQL_T_COUNT, "count" },
	{ PROMQL_T_MIN, "min" },
	{ PROMQL_T_MAX, "max" },
	{ PROMQL_T_GROUP, "group" },
	{ PROMQL_T_STDDEV, "stddev" },
	{ PROMQL_T_STDVAR, "stdvar" },
	{ PROMQL_T_TOPK, "topk" },
	{ PROMQL_T_BOTTOMK, "bottomk" },
	{ PROMQL_T_COUNT_VALUES, "count_values" },
	{ PROMQL_T_QUANTILE, "quantile" },
	{ PROMQL_T_OFFSET, "offset" },
	{ PROMQL_T_BY, "by" },
	{ PROMQL_T_WITHOUT, "without" },
	{ PROMQL_T_ON, "on" },
	{ PROMQL_T_IGNORING, "ignoring" },
	{ PROMQL_T_GROUP_LEFT, "group_left" },
	{ PROMQL_T_GROUP_RIGHT, "group_right" },
	{ PROMQL_T_BOOL, "bool" },
	{ PROMQL_T_START, "start" },
	{ PROMQL_T_END, "end" },
};

bool
promql_tok_is_operator(enum promql_tok t)
{
	return t > PROMQL_T_OPERATORS_START && t < PROMQL_T_OPERATORS_END;
}

bool
promql_tok_is_aggregator(enum promql_tok t)
{
	return t > PROMQL_T_AGGREGATORS_START && t < PROMQL_T_AGGREGATORS_END;
}

bool
promql_tok_is_aggregator_with_param(enum promql_tok t)
{
	return t == PROMQL_T_TOPK || t == PROMQL_T_BOTTOMK ||
	    t == PROMQL_T_COUNT_VALUES || t == PROMQL_T_QUANTILE;
}

bool
promql_tok_is_keyword(enum promql_tok t)
{
	return t > PROMQL_T_KEYWORDS_START && t < PROMQL_T_KEYWORDS_END;
}

bool
promql_tok_is_comparison(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_EQLC:
	case PROMQL_T_NEQ:
	case PROMQL_T_LTE:
	case PROMQL_T_LSS:
	case PROMQL_T_GTE:
	case PROMQL_T_GTR:
		return true;
	default:
		return false;
	}
}

bool
promql_tok_is_set_op(enum promql_tok t)
{
	return t == PROMQL_T_LAND || t == PROMQL_T_LOR || t == PROMQL_T_LUNLESS;
}

const char *
promql_tok_string(enum promql_tok t)
{
	size_t i;

	for (i = 0; i < sizeof(tok_strings) / sizeof(tok_strings[0]); i++)
		if (tok_strings[i].tok == t)
			return tok_strings[i].str;
	return NULL;
}

bool
promql_is_label(const char *s, size_t len)
{
	return labels_is_valid_name(s, len);
}

/* ---- Go-style quoting for messages -------------------------------------- */

static void
put_utf8(struct strbuf *out, long r)
{
	char b[4];

	if (r < 0x80) {
		b[0] = (char)r;
		strbuf_append(out, b, 1);
	} else if (r < 0x800) {
		b[0] = (char)(0xC0 | (r >> 6));
		b[1] = (char)(0x80 | (r & 0x3F));
		strbuf_append(out, b, 2);
	} else if (r < 0x10000) {
		b[0] = (char)(0xE0 | (r >> 12));
		b[1] = (char)(0x80 | ((r >> 6) & 0x3F));
		b[2] = (char)(0x80 | (r & 0x3F));
		strbuf_append(out, b, 3);
	} else {
		b[0] = (char)(0xF0 | (r >> 18));
		b[1] = (char)(0x80 | ((r >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((r >> 6) & 0x3F));
		b[3] = (char)(0x80 | (r & 0x3F));
		strbuf_append(out, b, 4);
	}
}

void
promql_quote_rune(long r, struct strbuf *out)
{
	struct strbuf tmp = STRBUF_INIT, q = STRBUF_INIT;

	if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
		r = RUNE_ERROR;
	if (r == '\'') {
		strbuf_puts(out, "'\\''");
		return;
	}
	if (r == '"') {
		strbuf_puts(out, "'\"'");
		return;
	}
	put_utf8(&tmp, r);
	labels_quote(tmp.buf, tmp.len, &q);
	/* labels_quote wrote "...": the same escapes, single quotes */
	strbuf_putc(out, '\'');
	strbuf_append(out, q.buf + 1, q.len - 2);
	strbuf_putc(out, '\'');
	strbuf_free(&tmp);
	strbuf_free(&q);
}

/* sharp_u appends r as Go's %#U: U+0063 'c' (the rune itself only when
 * printable). */
static void
sharp_u(long r, struct strbuf *out)
{
	struct strbuf q = STRBUF_INIT;

	strbuf_printf(out, "U+%04lX", r < 0 ? RUNE_ERROR : r);
	if (r < 0)
		return;
	promql_quote_rune(r, &q);
	/* printable when quoting kept it as is (or it is a quote character) */
	if (r == '\'' || r == '"' || r == '\\' || (q.len > 2 && q.buf[1] != '\\')) {
		strbuf_puts(out, " '");
		put_utf8(out, r);
		strbuf_putc(out, '\'');
	}
	strbuf_free(&q);
}

/* quote_go appends s as Go's %q, or %.10q followed by "..." when max_runes
 * is 10 and s has more than 10 runes... Prometheus applies the precision to
 * the unquoted string. */
static void
quote_truncated(const char *s, size_t len, size_t max_runes, struct strbuf *out)
{
	size_t i = 0, runes = 0;

	while (i < len && runes < max_runes) {
		unsigned char c = (unsigned char)s[i];
		size_t w = 1;

		if (c >= 0xF0 && c < 0xF8)
			w = 4;
		else if (c >= 0xE0)
			w = 3;
		else if (c >= 0xC0)
			w = 2;
		if (i + w > len)
			w = 1;
		i += w;
		runes++;
	}
	labels_quote(s, i, out);
}

static const char *
tok_desc(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_ERROR:
		return "error";
	case PROMQL_T_EOF:
		return "end of input";
	case PROMQL_T_COMMENT:
		return "comment";
	case PROMQL_T_IDENTIFIER:
		return "identifier";
	case PROMQL_T_METRIC_IDENTIFIER:
		return "metric identifier";
	case PROMQL_T_STRING:
		return "string";
	case PROMQL_T_NUMBER:
		return "number";
	case PROMQL_T_DURATION:
		return "duration";
	default:
		return NULL;
	}
}

/* item_string appends Prometheus' Item.String(). */
static void
item_string(const struct promql_item *it, struct strbuf *out)
{
	if (it->typ == PROMQL_T_EOF) {
		strbuf_puts(out, "EOF");
	} else if (it->typ == PROMQL_T_ERROR) {
		strbuf_append(out, it->val, it->len);
	} else if (it->typ == PROMQL_T_IDENTIFIER || it->typ == PROMQL_T_METRIC_IDENTIFIER) {
		labels_quote(it->val, it->len, out);
	} else if (promql_tok_is_keyword(it->typ)) {
		strbuf_printf(out, "<%.*s>", (int)it->len, it->val);
	} else if (promql_tok_is_operator(it->typ)) {
		strbuf_printf(out, "<op:%.*s>", (int)it->len, it->val);
	} else if (promql_tok_is_aggregator(it->typ)) {
		strbuf_printf(out, "<aggr:%.*s>", (int)it->len, it->val);
	} else if (it->len > 10) {
		quote_truncated(it->val, it->len, 10, out);
		strbuf_puts(out, "...");
	} else {
		labels_quote(it->val, it->len, out);
	}
}

void
promql_item_desc(const struct promql_item *it, struct strbuf *out)
{
	const char *d;

	if (promql_tok_string(it->typ) != NULL) {
		item_string(it, out);
		return;
	}
	if (it->typ == PROMQL_T_EOF) {
		strbuf_puts(out, "end of input");
		return;
	}
	d = tok_desc(it->typ);
	if (d != NULL) {
		strbuf_puts(out, d);
	} else {
		/* a token without a name prints as its goyacc number; of the
		 * tokens the lexer emits only '@' has none (AT = 57385) */
		strbuf_printf(out, "\"<Item %d>\"", it->typ == PROMQL_T_AT ? 57385 : (int)it->typ);
	}
	strbuf_putc(out, ' ');
	item_string(it, out);
}

/* ---- the scanner ---------------------------------------------------------- */

void
promql_lex_init(struct promql_lexer *l, const char *input, size_t len, bool series_desc)
{
	memset(l, 0, sizeof(*l));
	l->input = input;
	l->len = len;
	l->state = SUB_STATEMENTS;
	l->series_desc = series_desc;
}

/* next decodes the rune at pos (Go's utf8.DecodeRuneInString). */
static long
next(struct lex_run *r)
{
	struct promql_lexer *l = r->l;
	const unsigned char *s = (const unsigned char *)l->input + l->pos;
	size_t avail = l->len - l->pos, w;
	long c;

	if (l->pos >= l->len) {
		r->width = 0;
		return LEX_EOF;
	}
	if (s[0] < 0x80) {
		c = s[0];
		w = 1;
	} else if (s[0] >= 0xC2 && s[0] < 0xE0 && avail >= 2 && (s[1] & 0xC0) == 0x80) {
		c = ((long)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
		w = 2;
	} else if (s[0] >= 0xE0 && s[0] < 0xF0 && avail >= 3 && (s[1] & 0xC0) == 0x80 &&
	    (s[2] & 0xC0) == 0x80) {
		c = ((long)(s[0] & 0x0F) << 12) | ((long)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
		w = 3;
		if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) {
			c = RUNE_ERROR;
			w = 1;
		}
	} else if (s[0] >= 0xF0 && s[0] < 0xF5 && avail >= 4 && (s[1] & 0xC0) == 0x80 &&
	    (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
		c = ((long)(s[0] & 0x07) << 18) | ((long)(s[1] & 0x3F) << 12) |
		    ((long)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
		w = 4;
		if (c < 0x10000 || c > 0x10FFFF) {
			c = RUNE_ERROR;
			w = 1;
		}
	} else {
		c = RUNE_ERROR;
		w = 1;
	}
	r->width = w;
	l->pos += w;
	return c;
}

static void
backup(struct lex_run *r)
{
	r->l->pos -= r->width;
}

static long
peek(struct lex_run *r)
{
	long c = next(r);

	backup(r);
	return c;
}

static void
emit(struct lex_run *r, enum promql_tok t)
{
	struct promql_lexer *l = r->l;

	r->it->typ = t;
	r->it->pos = l->start;
	r->it->val = l->input + l->start;
	r->it->len = l->pos - l->start;
	l->start = l->pos;
	r->scanned = true;
}

static void
ignore(struct lex_run *r)
{
	r->l->start = r->l->pos;
}

static bool
accept(struct lex_run *r, const char *valid)
{
	long c = next(r);

	if (c > 0 && c < 0x80 && strchr(valid, (int)c) != NULL)
		return true;
	backup(r);
	return false;
}

static void
accept_run(struct lex_run *r, const char *valid)
{
	long c;

	do {
		c = next(r);
	} while (c > 0 && c < 0x80 && strchr(valid, (int)c) != NULL);
	backup(r);
}

/* errorf emits an ERROR item at start and ends the scan. */
static enum lex_sub
errorf(struct lex_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum lex_sub
errorf(struct lex_run *r, const char *fmt, ...)
{
	struct promql_lexer *l = r->l;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l->errbuf, sizeof(l->errbuf), fmt, ap);
	va_end(ap);
	r->it->typ = PROMQL_T_ERROR;
	r->it->pos = l->start;
	r->it->val = l->errbuf;
	r->it->len = strlen(l->errbuf);
	r->scanned = true;
	return SUB_DONE;
}

/* errorq emits an ERROR item "prefix<quoted rune>suffix". */
static enum lex_sub
errorq(struct lex_run *r, const char *prefix, long c, const char *suffix)
{
	struct strbuf sb = STRBUF_INIT;
	enum lex_sub s;

	strbuf_puts(&sb, prefix);
	promql_quote_rune(c, &sb);
	strbuf_puts(&sb, suffix);
	s = errorf(r, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return s;
}

/* errors "...: %q" with the text start..pos quoted as a Go string. */
static enum lex_sub
errors_text(struct lex_run *r, const char *prefix)
{
	struct strbuf sb = STRBUF_INIT;
	enum lex_sub s;

	strbuf_puts(&sb, prefix);
	labels_quote(r->l->input + r->l->start, r->l->pos - r->l->start, &sb);
	s = errorf(r, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
	return s;
}

static bool
is_space(long c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
is_digit(long c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(long c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_alnum(long c)
{
	return is_alpha(c) || is_digit(c);
}

static bool
has_prefix(struct lex_run *r, const char *p)
{
	size_t n = strlen(p);

	return r->l->len - r->l->pos >= n && memcmp(r->l->input + r->l->pos, p, n) == 0;
}

/* scan_number scans what may be a number; true when the next rune may
 * follow one (not alphanumeric, or 'x' in a series description). */
static bool
scan_number(struct lex_run *r)
{
	const char *digits = "0123456789";
	long c;

	if (!r->l->series_desc && accept(r, "0") && accept(r, "xX"))
		digits = "0123456789abcdefABCDEF";
	accept_run(r, digits);
	if (accept(r, "."))
		accept_run(r, digits);
	if (accept(r, "eE")) {
		accept(r, "+-");
		accept_run(r, "0123456789");
	}
	c = peek(r);
	return (r->l->series_desc && c == 'x') || !is_alnum(c);
}

static bool
accept_remaining_duration(struct lex_run *r)
{
	if (!accept(r, "smhdwy"))
		return false;
	accept(r, "s");
	while (accept(r, "0123456789")) {
		while (accept(r, "0123456789"))
			;
		if (!accept(r, "smhdw"))
			return false;
		accept(r, "s");
	}
	return !is_alnum(next(r));
}

static enum lex_sub
lex_statements(struct lex_run *r)
{
	struct promql_lexer *l = r->l;
	long c, t;

	if (l->brace_open)
		return SUB_INSIDE_BRACES;
	if (has_prefix(r, "#"))
		return SUB_LINE_COMMENT;
	c = next(r);
	switch (c) {
	case LEX_EOF:
		if (l->paren_depth != 0)
			return errorf(r, "unclosed left parenthesis");
		if (l->bracket_open)
			return errorf(r, "unclosed left bracket");
		emit(r, PROMQL_T_EOF);
		return SUB_DONE;
	case ',':
		emit(r, PROMQL_T_COMMA);
		break;
	case ' ':
	case '\t':
	case '\n':
	case '\r':
		return SUB_SPACE;
	case '*':
		emit(r, PROMQL_T_MUL);
		break;
	case '/':
		emit(r, PROMQL_T_DIV);
		break;
	case '%':
		emit(r, PROMQL_T_MOD);
		break;
	case '+':
		emit(r, PROMQL_T_ADD);
		break;
	case '-':
		emit(r, PROMQL_T_SUB);
		break;
	case '^':
		emit(r, PROMQL_T_POW);
		break;
	case '=':
		t = peek(r);
		if (t == '=') {
			next(r);
			emit(r, PROMQL_T_EQLC);
		} else if (t == '~') {
			return errorq(r, "unexpected character after '=': ", t, "");
		} else {
			emit(r, PROMQL_T_EQL);
		}
		break;
	case '!':
		t = next(r);
		if (t == '=')
			emit(r, PROMQL_T_NEQ);
		else
			return errorq(r, "unexpected character after '!': ", t, "");
		break;
	case '<':
		if (peek(r) == '=') {
			next(r);
			emit(r, PROMQL_T_LTE);
		} else {
			emit(r, PROMQL_T_LSS);
		}
		break;
	case '>':
		if (peek(r) == '=') {
			next(r);
			emit(r, PROMQL_T_GTE);
		} else {
			emit(r, PROMQL_T_GTR);
		}
		break;
	case '"':
	case '\'':
		r->quote = c;
		return SUB_STRING;
	case '`':
		r->quote = c;
		return SUB_RAW_STRING;
	case '(':
		emit(r, PROMQL_T_LEFT_PAREN);
		l->paren_depth++;
		break;
	case ')':
		emit(r, PROMQL_T_RIGHT_PAREN);
		l->paren_depth--;
		if (l->paren_depth < 0)
			return errorq(r, "unexpected right parenthesis ", c, "");
		break;
	case '{':
		emit(r, PROMQL_T_LEFT_BRACE);
		l->brace_open = true;
		return SUB_INSIDE_BRACES;
	case '[':
		if (l->bracket_open)
			return errorq(r, "unexpected left bracket ", c, "");
		l->got_colon = false;
		emit(r, PROMQL_T_LEFT_BRACKET);
		if (is_space(peek(r))) {
			while (is_space(peek(r)))
				next(r);
			ignore(r);
		}
		l->bracket_open = true;
		return SUB_DURATION;
	case ']':
		if (!l->bracket_open)
			return errorq(r, "unexpected right bracket ", c, "");
		emit(r, PROMQL_T_RIGHT_BRACKET);
		l->bracket_open = false;
		break;
	case '@':
		emit(r, PROMQL_T_AT);
		break;
	default:
		if (is_digit(c) || (c == '.' && is_digit(peek(r)))) {
			backup(r);
			return SUB_NUMBER_OR_DURATION;
		}
		if (is_alpha(c) || c == ':') {
			if (!l->bracket_open) {
				backup(r);
				return SUB_KEYWORD_OR_IDENTIFIER;
			}
			if (l->got_colon)
				return errorq(r, "unexpected colon ", c, "");
			emit(r, PROMQL_T_COLON);
			l->got_colon = true;
			break;
		}
		return errorq(r, "unexpected character: ", c, "");
	}
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_inside_braces(struct lex_run *r)
{
	struct promql_lexer *l = r->l;
	long c, n;

	if (has_prefix(r, "#"))
		return SUB_LINE_COMMENT;
	c = next(r);
	if (c == LEX_EOF)
		return errorf(r, "unexpected end of input inside braces");
	if (is_space(c))
		return SUB_SPACE;
	if (is_alpha(c)) {
		backup(r);
		return SUB_IDENTIFIER;
	}
	switch (c) {
	case ',':
		emit(r, PROMQL_T_COMMA);
		break;
	case '"':
	case '\'':
		r->quote = c;
		return SUB_STRING;
	case '`':
		r->quote = c;
		return SUB_RAW_STRING;
	case '=':
		if (next(r) == '~') {
			emit(r, PROMQL_T_EQL_REGEX);
			break;
		}
		backup(r);
		emit(r, PROMQL_T_EQL);
		break;
	case '!':
		n = next(r);
		if (n == '~')
			emit(r, PROMQL_T_NEQ_REGEX);
		else if (n == '=')
			emit(r, PROMQL_T_NEQ);
		else
			return errorq(r, "unexpected character after '!' inside braces: ", n, "");
		break;
	case '{':
		return errorq(r, "unexpected left brace ", c, "");
	case '}':
		emit(r, PROMQL_T_RIGHT_BRACE);
		l->brace_open = false;
		if (l->series_desc)
			return SUB_VALUE_SEQUENCE;
		return SUB_STATEMENTS;
	default:
		return errorq(r, "unexpected character inside braces: ", c, "");
	}
	return SUB_INSIDE_BRACES;
}

static void
skip_space_run(struct lex_run *r)
{
	while (is_space(peek(r)))
		next(r);
	ignore(r);
}

static enum lex_sub
lex_number(struct lex_run *r)
{
	if (!scan_number(r))
		return errors_text(r, "bad number syntax: ");
	emit(r, PROMQL_T_NUMBER);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_value_sequence(struct lex_run *r)
{
	long c = next(r);

	if (c == LEX_EOF)
		return SUB_STATEMENTS;
	if (is_space(c)) {
		emit(r, PROMQL_T_SPACE);
		skip_space_run(r);
	} else if (c == '+') {
		emit(r, PROMQL_T_ADD);
	} else if (c == '-') {
		emit(r, PROMQL_T_SUB);
	} else if (c == 'x') {
		emit(r, PROMQL_T_TIMES);
	} else if (c == '_') {
		emit(r, PROMQL_T_BLANK);
	} else if (is_digit(c) || (c == '.' && is_digit(peek(r)))) {
		backup(r);
		lex_number(r);
	} else if (is_alpha(c)) {
		backup(r);
		return SUB_KEYWORD_OR_IDENTIFIER;
	} else {
		return errorq(r, "unexpected character in series sequence: ", c, "");
	}
	return SUB_VALUE_SEQUENCE;
}

/* lex_escape scans an escape sequence after the backslash; returns false
 * after emitting an error. */
static bool
lex_escape(struct lex_run *r)
{
	long c = next(r), x = 0, max;
	int n, base, d;

	switch (c) {
	case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
		return true;
	case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		n = 3;
		base = 8;
		max = 255;
		break;
	case 'x':
		c = next(r);
		n = 2;
		base = 16;
		max = 255;
		break;
	case 'u':
		c = next(r);
		n = 4;
		base = 16;
		max = 0x10FFFF;
		break;
	case 'U':
		c = next(r);
		n = 8;
		base = 16;
		max = 0x10FFFF;
		break;
	case LEX_EOF:
		errorf(r, "escape sequence not terminated");
		return false;
	default:
		if (c == r->quote)
			return true;
		{
			struct strbuf sb = STRBUF_INIT;

			strbuf_puts(&sb, "unknown escape sequence ");
			sharp_u(c, &sb);
			errorf(r, "%s", strbuf_cstr(&sb));
			strbuf_free(&sb);
		}
		return false;
	}
	while (n > 0) {
		if (c >= '0' && c <= '9')
			d = (int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (int)(c - 'A' + 10);
		else
			d = 16;
		if (d >= base) {
			if (c == LEX_EOF) {
				errorf(r, "escape sequence not terminated");
			} else {
				struct strbuf sb = STRBUF_INIT;

				strbuf_puts(&sb, "illegal character ");
				sharp_u(c, &sb);
				strbuf_puts(&sb, " in escape sequence");
				errorf(r, "%s", strbuf_cstr(&sb));
				strbuf_free(&sb);
			}
			return false;
		}
		x = x * base + d;
		n--;
		if (n > 0)
			c = next(r);
	}
	if (x > max || (x >= 0xD800 && x < 0xE000)) {
		errorf(r, "escape sequence is an invalid Unicode code point");
		return false;
	}
	return true;
}

static enum lex_sub
lex_string(struct lex_run *r)
{
	for (;;) {
		long c = next(r);

		if (c == '\\') {
			if (!lex_escape(r))
				return SUB_DONE;
			continue;
		}
		if (c == RUNE_ERROR)
			return errorf(r, "invalid UTF-8 rune");
		if (c == LEX_EOF || c == '\n')
			return errorf(r, "unterminated quoted string");
		if (c == r->quote)
			break;
	}
	emit(r, PROMQL_T_STRING);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_raw_string(struct lex_run *r)
{
	for (;;) {
		long c = next(r);

		if (c == RUNE_ERROR)
			return errorf(r, "invalid UTF-8 rune");
		if (c == LEX_EOF)
			return errorf(r, "unterminated raw string");
		if (c == r->quote)
			break;
	}
	emit(r, PROMQL_T_STRING);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_line_comment(struct lex_run *r)
{
	long c;

	r->l->pos += 1;
	do {
		c = next(r);
	} while (c != '\r' && c != '\n' && c != LEX_EOF);
	backup(r);
	emit(r, PROMQL_T_COMMENT);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_duration(struct lex_run *r)
{
	if (scan_number(r))
		return errorf(r, "missing unit character in duration");
	if (!accept_remaining_duration(r))
		return errors_text(r, "bad duration syntax: ");
	backup(r);
	emit(r, PROMQL_T_DURATION);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_number_or_duration(struct lex_run *r)
{
	if (scan_number(r)) {
		emit(r, PROMQL_T_NUMBER);
		return SUB_STATEMENTS;
	}
	if (accept_remaining_duration(r)) {
		backup(r);
		emit(r, PROMQL_T_DURATION);
		return SUB_STATEMENTS;
	}
	return errors_text(r, "bad number or duration syntax: ");
}

static enum lex_sub
lex_identifier(struct lex_run *r)
{
	while (is_alnum(next(r)))
		;
	backup(r);
	emit(r, PROMQL_T_IDENTIFIER);
	return SUB_STATEMENTS;
}

static enum lex_sub
lex_keyword_or_identifier(struct lex_run *r)
{
	struct promql_lexer *l = r->l;
	const char *word;
	size_t wlen, i;
	long c;

	do {
		c = next(r);
	} while (is_alnum(c) || c == ':');
	backup(r);
	word = l->input + l->start;
	wlen = l->pos - l->start;
	for (i = 0; i < sizeof(lex_keywords) / sizeof(lex_keywords[0]); i++) {
		if (strlen(lex_keywords[i].word) == wlen &&
		    strncasecmp(lex_keywords[i].word, word, wlen) == 0)
			break;
	}
	if (i < sizeof(lex_keywords) / sizeof(lex_keywords[0]))
		emit(r, lex_keywords[i].tok);
	else if (memchr(word, ':', wlen) == NULL)
		emit(r, PROMQL_T_IDENTIFIER);
	else
		emit(r, PROMQL_T_METRIC_IDENTIFIER);
	if (l->series_desc && peek(r) != '{')
		return SUB_VALUE_SEQUENCE;
	return SUB_STATEMENTS;
}

void
promql_lex_next(struct promql_lexer *l, struct promql_item *it)
{
	struct lex_run r = { l, it, 0, 0, false };
	enum lex_sub s = (enum lex_sub)l->state;

	while (!r.scanned) {
		switch (s) {
		case SUB_STATEMENTS:
			s = lex_statements(&r);
			break;
		case SUB_INSIDE_BRACES:
			s = lex_inside_braces(&r);
			break;
		case SUB_VALUE_SEQUENCE:
			s = lex_value_sequence(&r);
			break;
		case SUB_STRING:
			s = lex_string(&r);
			break;
		case SUB_RAW_STRING:
			s = lex_raw_string(&r);
			break;
		case SUB_SPACE:
			skip_space_run(&r);
			s = SUB_STATEMENTS;
			break;
		case SUB_LINE_COMMENT:
			s = lex_line_comment(&r);
			break;
		case SUB_DURATION:
			s = lex_duration(&r);
			break;
		case SUB_NUMBER_OR_DURATION:
			s = lex_number_or_duration(&r);
			break;
		case SUB_KEYWORD_OR_IDENTIFIER:
			s = lex_keyword_or_identifier(&r);
			break;
		case SUB_IDENTIFIER:
			s = lex_identifier(&r);
			break;
		case SUB_DONE:
			l->start = l->pos;
			emit(&r, PROMQL_T_EOF);
			break;
		}
	}
	l->state = it->typ == PROMQL_T_ERROR ? SUB_DONE : (int)s;
}
