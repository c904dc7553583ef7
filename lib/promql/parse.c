/* lib/promql/parse.c - PromQL parser: grammar, error contexts, type checks.
 *
 * Prometheus generates an LALR parser from generated_parser.y; this is a
 * hand-written precedence-climbing parser that accepts the same language
 * and reports the same first error. Operators bind as the yacc precedences
 * say (or < and/unless < comparisons < +,- < *,/,%,atan2 < ^, right-assoc),
 * unary +/- binds like * (so -2^2 is -(2^2)), and the postfix modifiers
 * offset, @ and [range] / [range:step] bind tightest, to the operand just
 * parsed. A syntax error names the lookahead token ("unexpected <op:*>")
 * with the context of the innermost yacc error rule that would catch it:
 * "in aggregation" while inside an aggregation's arguments, "in grouping
 * opts", "in label matching", "in offset", "in @", "in subquery selector".
 * Actions that Prometheus runs while reducing (matcher compilation, number
 * and duration parsing, offsets and @) run at the same points, so their
 * errors win over later ones. After a successful parse the tree is checked
 * as checkAST does (types, bool, vector matching, set operators), which
 * also settles the matching cardinality of set operators.
 * The lexer is pulled one token at a time, lazily, so lexer errors surface
 * where yacc would see them. Stateless; any thread.
 */
#include "config.h"

#include "promql/parse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "labels/selector.h"
#include "util/mem.h"
#include "util/time.h"

struct parser {
	struct promql_lexer lx;
	const char *in;
	size_t len;
	struct promql_item tok;
	bool have;
	size_t last_closing;
	int agg_depth;		/* aggregations whose arguments are being parsed */
	int rec;		/* nesting of parse_expr */
	bool failed;
	char *err;
	size_t errlen;
};

enum {
	PREC_OR = 1,
	PREC_AND,
	PREC_CMP,
	PREC_ADD,
	PREC_MUL,
	PREC_POW,
};

/* ---- errors -------------------------------------------------------------- */

static void
format_pos(const char *in, size_t len, size_t pos, char *buf, size_t buflen)
{
	size_t i, line = 1;
	long last_nl = -1;

	if (pos > len) {
		snprintf(buf, buflen, "invalid position:");
		return;
	}
	for (i = 0; i < pos; i++) {
		if (in[i] == '\n') {
			last_nl = (long)i;
			line++;
		}
	}
	snprintf(buf, buflen, "%zu:%ld:", line, (long)pos - last_nl);
}

static void fail_at(struct parser *p, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail_at(struct parser *p, size_t pos, const char *fmt, ...)
{
	char where[64], msg[1024];
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_pos(p->in, p->len, pos, where, sizeof(where));
	snprintf(p->err, p->errlen, "%s parse error: %s", where, msg);
}

static struct promql_item *
tok(struct parser *p)
{
	if (!p->have) {
		do {
			promql_lex_next(&p->lx, &p->tok);
		} while (p->tok.typ == PROMQL_T_COMMENT);
		p->have = true;
		switch (p->tok.typ) {
		case PROMQL_T_ERROR:
			fail_at(p, p->tok.pos, "%.*s", (int)p->tok.len, p->tok.val);
			break;
		case PROMQL_T_RIGHT_BRACE:
		case PROMQL_T_RIGHT_PAREN:
		case PROMQL_T_RIGHT_BRACKET:
		case PROMQL_T_DURATION:
		case PROMQL_T_NUMBER:
			p->last_closing = p->tok.pos + p->tok.len;
			break;
		default:
			break;
		}
	}
	return &p->tok;
}

static void
advance(struct parser *p)
{
	p->have = false;
}

/* unexpected reports the lookahead token: "unexpected <desc>[ in ctx][,
 * expected exp]". Lexer errors were reported when lexed. */
static void
unexpected(struct parser *p, const char *ctx, const char *exp)
{
	struct strbuf sb = STRBUF_INIT;
	struct promql_item *t = tok(p);

	if (t->typ == PROMQL_T_ERROR || p->failed) {
		p->failed = true;
		return;
	}
	strbuf_puts(&sb, "unexpected ");
	promql_item_desc(t, &sb);
	if (ctx != NULL) {
		strbuf_puts(&sb, " in ");
		strbuf_puts(&sb, ctx);
	}
	if (exp != NULL) {
		strbuf_puts(&sb, ", expected ");
		strbuf_puts(&sb, exp);
	}
	fail_at(p, t->pos, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
}

/* generic is the error of a token no specific rule expects: yacc unwinds
 * to the innermost aggregation, or to the start rule. */
static void
generic(struct parser *p)
{
	unexpected(p, p->agg_depth > 0 ? "aggregation" : NULL, NULL);
}

static void
node_start(const struct promql_node *n, size_t *start)
{
	size_t end;

	promql_node_range(n, start, &end);
}

/* deepen sets n's depth from its children; false (with an error) when the
 * tree gets deeper than PROMQL_MAX_DEPTH. */
static bool
deepen(struct parser *p, struct promql_node *n)
{
	struct promql_node *kids[2] = { NULL, NULL };
	unsigned d = 0;
	size_t i, start;

	switch (n->kind) {
	case PROMQL_AGGREGATE:
		kids[0] = n->u.agg.expr;
		kids[1] = n->u.agg.param;
		break;
	case PROMQL_BINARY:
		kids[0] = n->u.bin.lhs;
		kids[1] = n->u.bin.rhs;
		break;
	case PROMQL_CALL:
		for (i = 0; i < n->u.call.nargs; i++)
			if (n->u.call.args[i]->depth > d)
				d = n->u.call.args[i]->depth;
		break;
	case PROMQL_MATRIX_SELECTOR:
		kids[0] = n->u.msel.vs;
		break;
	case PROMQL_SUBQUERY:
		kids[0] = n->u.subq.expr;
		break;
	case PROMQL_PAREN:
		kids[0] = n->u.paren.expr;
		break;
	case PROMQL_UNARY:
		kids[0] = n->u.unary.expr;
		break;
	default:
		break;
	}
	for (i = 0; i < 2; i++)
		if (kids[i] != NULL && kids[i]->depth > d)
			d = kids[i]->depth;
	n->depth = d + 1;
	if (n->depth > PROMQL_MAX_DEPTH) {
		node_start(n, &start);
		fail_at(p, start, "expression nested more than %d levels deep", PROMQL_MAX_DEPTH);
		return false;
	}
	return true;
}

/* ---- numbers and durations --------------------------------------------- */

static int
go_parse_int(const char *s, size_t len, int64_t *out)
{
	uint64_t v = 0, lim = (uint64_t)INT64_MAX;
	unsigned base = 10;
	size_t i = 0;

	if (len == 0)
		return -1;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	} else if (len >= 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
		base = 8;
		i = 2;
	} else if (len >= 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		base = 2;
		i = 2;
	} else if (len >= 2 && s[0] == '0') {
		base = 8;
		i = 1;
	}
	if (i >= len)
		return -1;
	for (; i < len; i++) {
		unsigned d;
		char c = s[i];

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -1;
		if (d >= base)
			return -1;
		if (v > (lim - d) / base)
			return -1;
		v = v * base + d;
	}
	*out = (int64_t)v;
	return 0;
}

/* go_parse_float accepts Go's decimal float syntax and inf/infinity/nan. */
static int
go_parse_float(const char *s, size_t len, double *out, bool *range)
{
	char buf[512];
	size_t i = 0, digits = 0;
	const char *w;
	size_t wl;

	*range = false;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (s[0] == '+' || s[0] == '-')
		i++;
	w = s + i;
	wl = len - i;
	if ((wl == 3 && strncasecmp(w, "inf", 3) == 0) ||
	    (wl == 8 && strncasecmp(w, "infinity", 8) == 0)) {
		*out = s[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	if (wl == 3 && strncasecmp(w, "nan", 3) == 0) {
		*out = NAN;
		return 0;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		i++;
		digits++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			digits++;
		}
	}
	if (digits == 0)
		return -1;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t ed = 0;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			ed++;
		}
		if (ed == 0)
			return -1;
	}
	if (i != len)
		return -1;
	errno = 0;
	*out = strtod(buf, NULL);
	if (errno == ERANGE && isinf(*out))
		*range = true;
	return 0;
}

int
promql_parse_number(const char *s, size_t len, double *out, char *err, size_t errlen)
{
	int64_t iv;
	bool range;
	size_t i = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-'))
		i = 1;
	if (go_parse_int(s + i, len - i, &iv) == 0) {
		*out = (double)iv;
		if (i == 1 && s[0] == '-')
			*out = -*out;
		return 0;
	}
	if (go_parse_float(s, len, out, &range) < 0) {
		snprintf(err, errlen, "strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
		    (int)(len > 200 ? 200 : len), s);
		return -1;
	}
	if (range) {
		snprintf(err, errlen, "strconv.ParseFloat: parsing \"%.*s\": value out of range",
		    (int)(len > 200 ? 200 : len), s);
		return -1;
	}
	return 0;
}

int
promql_parse_duration(const char *s, size_t len, int64_t *ms, char *err, size_t errlen)
{
	if (time_parse_duration(s, len, ms, err, errlen) < 0) {
		if (strncmp(err, "duration out of range", 21) == 0)
			snprintf(err, errlen, "duration out of range");
		return -1;
	}
	/* Prometheus keeps durations in nanoseconds */
	if (*ms > INT64_MAX / 1000000) {
		snprintf(err, errlen, "duration out of range");
		return -1;
	}
	if (*ms == 0) {
		snprintf(err, errlen, "duration must be greater than 0");
		return -1;
	}
	return 0;
}

static bool
number_tok(struct parser *p, double *v)
{
	struct promql_item *t = tok(p);
	char e[300];

	if (promql_parse_number(t->val, t->len, v, e, sizeof(e)) < 0) {
		fail_at(p, t->pos, "error parsing number: %s", e);
		return false;
	}
	return true;
}

static bool
duration_tok(struct parser *p, int64_t *ms)
{
	struct promql_item *t = tok(p);
	char e[200];

	if (promql_parse_duration(t->val, t->len, ms, e, sizeof(e)) < 0) {
		fail_at(p, t->pos, "%s", e);
		return false;
	}
	return true;
}

static char *
unquote_tok(struct parser *p, size_t *outlen)
{
	struct promql_item *t = tok(p);
	struct strbuf sb = STRBUF_INIT;
	char e[200];

	if (selector_unquote(t->val, t->len, &sb, e, sizeof(e)) < 0) {
		struct strbuf q = STRBUF_INIT;

		labels_quote(t->val, t->len, &q);
		fail_at(p, t->pos, "error unquoting string %s: %s", strbuf_cstr(&q), e);
		strbuf_free(&q);
		strbuf_free(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, outlen);
}

/* ---- the grammar ----------------------------------------------------------- */

static struct promql_node *parse_expr(struct parser *p, int min_prec);

static int
binop_prec(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_LOR:
		return PREC_OR;
	case PROMQL_T_LAND:
	case PROMQL_T_LUNLESS:
		return PREC_AND;
	case PROMQL_T_EQLC:
	case PROMQL_T_NEQ:
	case PROMQL_T_LTE:
	case PROMQL_T_LSS:
	case PROMQL_T_GTE:
	case PROMQL_T_GTR:
		return PREC_CMP;
	case PROMQL_T_ADD:
	case PROMQL_T_SUB:
		return PREC_ADD;
	case PROMQL_T_MUL:
	case PROMQL_T_DIV:
	case PROMQL_T_MOD:
	case PROMQL_T_ATAN2:
		return PREC_MUL;
	case PROMQL_T_POW:
		return PREC_POW;
	default:
		return 0;
	}
}

static bool
is_maybe_label(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_AVG: case PROMQL_T_BOOL: case PROMQL_T_BOTTOMK: case PROMQL_T_BY:
	case PROMQL_T_COUNT: case PROMQL_T_COUNT_VALUES: case PROMQL_T_GROUP:
	case PROMQL_T_GROUP_LEFT: case PROMQL_T_GROUP_RIGHT: case PROMQL_T_IDENTIFIER:
	case PROMQL_T_IGNORING: case PROMQL_T_LAND: case PROMQL_T_LOR: case PROMQL_T_LUNLESS:
	case PROMQL_T_MAX: case PROMQL_T_METRIC_IDENTIFIER: case PROMQL_T_MIN:
	case PROMQL_T_OFFSET: case PROMQL_T_ON: case PROMQL_T_QUANTILE: case PROMQL_T_STDDEV:
	case PROMQL_T_STDVAR: case PROMQL_T_SUM: case PROMQL_T_TOPK: case PROMQL_T_START:
	case PROMQL_T_END: case PROMQL_T_ATAN2:
		return true;
	default:
		return false;
	}
}

/* is_metric_keyword: the keywords the grammar also accepts as metric names. */
static bool
is_metric_keyword(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_BY: case PROMQL_T_LAND: case PROMQL_T_LOR: case PROMQL_T_LUNLESS:
	case PROMQL_T_OFFSET: case PROMQL_T_WITHOUT: case PROMQL_T_START: case PROMQL_T_END:
		return true;
	default:
		return false;
	}
}

/* starts_expr tells whether a token can begin an expression. */
static bool
starts_expr(enum promql_tok t)
{
	switch (t) {
	case PROMQL_T_NUMBER: case PROMQL_T_STRING: case PROMQL_T_LEFT_PAREN:
	case PROMQL_T_LEFT_BRACE: case PROMQL_T_IDENTIFIER: case PROMQL_T_METRIC_IDENTIFIER:
	case PROMQL_T_ADD: case PROMQL_T_SUB:
		return true;
	default:
		return promql_tok_is_aggregator(t) || is_metric_keyword(t);
	}
}

/* parse_grouping parses "(a, b, ...)" after by/without/on/ignoring/group_x. */
static int
parse_grouping(struct parser *p, struct promql_names *out)
{
	struct promql_item *t = tok(p);

	if (t->typ != PROMQL_T_LEFT_PAREN) {
		unexpected(p, "grouping opts", "\"(\"");
		return -1;
	}
	advance(p);
	if (tok(p)->typ == PROMQL_T_RIGHT_PAREN) {
		advance(p);
		return 0;
	}
	for (;;) {
		t = tok(p);
		if (!is_maybe_label(t->typ) || !promql_is_label(t->val, t->len)) {
			unexpected(p, "grouping opts", "label");
			return -1;
		}
		promql_names_add(out, t->val, t->len);
		advance(p);
		t = tok(p);
		if (t->typ == PROMQL_T_COMMA) {
			advance(p);
			if (tok(p)->typ == PROMQL_T_RIGHT_PAREN) {
				advance(p);
				return 0;
			}
			continue;
		}
		if (t->typ == PROMQL_T_RIGHT_PAREN) {
			advance(p);
			return 0;
		}
		unexpected(p, "grouping opts", "\",\" or \")\"");
		return -1;
	}
}

/* parse_call_body parses "(args...)"; returns the argument count or -1. */
static long
parse_call_body(struct parser *p, struct promql_node ***args)
{
	size_t n = 0;

	*args = NULL;
	if (tok(p)->typ != PROMQL_T_LEFT_PAREN) {
		generic(p);
		return -1;
	}
	advance(p);
	if (tok(p)->typ == PROMQL_T_RIGHT_PAREN) {
		advance(p);
		return 0;
	}
	for (;;) {
		struct promql_node *e = parse_expr(p, 0);
		struct promql_item *t;

		if (e == NULL)
			goto fail;
		*args = mem_realloc(*args, (n + 1) * sizeof(**args));
		(*args)[n++] = e;
		t = tok(p);
		if (t->typ == PROMQL_T_COMMA) {
			size_t cpos = t->pos;

			advance(p);
			/* yacc reduces "args ," by default: anything that cannot
			 * start an expression is a trailing comma first */
			if (!starts_expr(tok(p)->typ)) {
				if (tok(p)->typ != PROMQL_T_ERROR)
					fail_at(p, cpos, "trailing commas not allowed in function call args");
				goto fail;
			}
			continue;
		}
		if (t->typ == PROMQL_T_RIGHT_PAREN) {
			advance(p);
			return (long)n;
		}
		generic(p);
		goto fail;
	}
fail:
	while (n > 0)
		promql_node_free((*args)[--n]);
	MEM_FREE(*args);
	return -1;
}

static struct promql_node *
parse_aggregate(struct parser *p, const struct promql_item *op)
{
	struct promql_node *n = promql_node_new(PROMQL_AGGREGATE, op->pos, op->pos);
	struct promql_node **args = NULL;
	long nargs = -1;
	enum promql_tok t;
	int want;

	n->u.agg.op = op->typ;
	p->agg_depth++;
	t = tok(p)->typ;
	if (t == PROMQL_T_BY || t == PROMQL_T_WITHOUT) {
		n->u.agg.without = t == PROMQL_T_WITHOUT;
		advance(p);
		if (parse_grouping(p, &n->u.agg.grouping) < 0)
			goto fail;
		nargs = parse_call_body(p, &args);
		if (nargs < 0)
			goto fail;
	} else {
		nargs = parse_call_body(p, &args);
		if (nargs < 0)
			goto fail;
		t = tok(p)->typ;
		if (t == PROMQL_T_BY || t == PROMQL_T_WITHOUT) {
			n->u.agg.without = t == PROMQL_T_WITHOUT;
			advance(p);
			if (parse_grouping(p, &n->u.agg.grouping) < 0)
				goto fail;
		}
	}
	p->agg_depth--;
	n->end = p->last_closing;
	if (nargs == 0) {
		fail_at(p, n->start, "no arguments for aggregate expression provided");
		goto fail_args;
	}
	want = promql_tok_is_aggregator_with_param(op->typ) ? 2 : 1;
	if (nargs != want) {
		fail_at(p, n->start, "wrong number of arguments for aggregate expression "
		    "provided, expected %d, got %ld", want, nargs);
		goto fail_args;
	}
	if (want == 2)
		n->u.agg.param = args[0];
	n->u.agg.expr = args[want - 1];
	mem_free(args);
	if (!deepen(p, n)) {
		promql_node_free(n);
		return NULL;
	}
	return n;
fail:
	p->agg_depth--;
fail_args:
	while (nargs > 0)
		promql_node_free(args[--nargs]);
	mem_free(args);
	promql_node_free(n);
	return NULL;
}

static int
parse_matchers(struct parser *p, struct promql_node *vs)
{
	struct promql_item *t;

	advance(p);	/* '{' */
	if (tok(p)->typ == PROMQL_T_RIGHT_BRACE) {
		vs->end = tok(p)->pos + tok(p)->len;
		advance(p);
		return 0;
	}
	for (;;) {
		struct promql_item name;
		enum matcher_op op;
		struct matcher *m;
		char *val, merr[512];
		size_t vlen;
		char *nm;

		t = tok(p);
		if (t->typ != PROMQL_T_IDENTIFIER) {
			unexpected(p, "label matching", "identifier or \"}\"");
			return -1;
		}
		name = *t;
		advance(p);
		t = tok(p);
		switch (t->typ) {
		case PROMQL_T_EQL:
			op = MATCH_EQUAL;
			break;
		case PROMQL_T_NEQ:
			op = MATCH_NOT_EQUAL;
			break;
		case PROMQL_T_EQL_REGEX:
			op = MATCH_REGEX;
			break;
		case PROMQL_T_NEQ_REGEX:
			op = MATCH_NOT_REGEX;
			break;
		default:
			unexpected(p, "label matching", "label matching operator");
			return -1;
		}
		advance(p);
		t = tok(p);
		if (t->typ != PROMQL_T_STRING) {
			unexpected(p, "label matching", "string");
			return -1;
		}
		val = unquote_tok(p, &vlen);
		if (val == NULL)
			return -1;
		nm = mem_strndup(name.val, name.len);
		m = matcher_new(op, nm, val, merr, sizeof(merr));
		mem_free(nm);
		if (m == NULL && (op == MATCH_REGEX || op == MATCH_NOT_REGEX)) {
			/* Prometheus compiles ^(?:v)$: its messages quote that */
			struct strbuf anch = STRBUF_INIT;
			struct regex *re;

			strbuf_printf(&anch, "^(?:%s)$", val);
			re = regex_new(anch.buf, anch.len, merr, sizeof(merr));
			regex_free(re);
			strbuf_free(&anch);
		}
		mem_free(val);
		if (m == NULL) {
			fail_at(p, name.pos, "%s", merr);
			return -1;
		}
		vs->u.vs.ms = mem_realloc(vs->u.vs.ms, (vs->u.vs.nms + 1) * sizeof(*vs->u.vs.ms));
		vs->u.vs.ms[vs->u.vs.nms++] = m;
		advance(p);
		t = tok(p);
		if (t->typ == PROMQL_T_COMMA) {
			advance(p);
			t = tok(p);
			if (t->typ == PROMQL_T_RIGHT_BRACE) {
				vs->end = t->pos + t->len;
				advance(p);
				return 0;
			}
			continue;
		}
		if (t->typ == PROMQL_T_RIGHT_BRACE) {
			vs->end = t->pos + t->len;
			advance(p);
			return 0;
		}
		unexpected(p, "label matching", "\",\" or \"}\"");
		return -1;
	}
}

/* parse_selector parses a vector selector; name is NULL for "{...}". */
static struct promql_node *
parse_selector(struct parser *p, const struct promql_item *name)
{
	struct promql_node *n;
	size_t start = name != NULL ? name->pos : tok(p)->pos;
	char merr[256];

	n = promql_node_new(PROMQL_VECTOR_SELECTOR, start, name != NULL ? name->pos + name->len : start);
	if (tok(p)->typ == PROMQL_T_LEFT_BRACE && parse_matchers(p, n) < 0) {
		promql_node_free(n);
		return NULL;
	}
	n->u.vs.name = name != NULL ? mem_strndup(name->val, name->len) : mem_strdup("");
	if (name != NULL) {
		struct matcher *m = matcher_new(MATCH_EQUAL, LABEL_METRIC_NAME, n->u.vs.name,
		    merr, sizeof(merr));

		n->u.vs.ms = mem_realloc(n->u.vs.ms, (n->u.vs.nms + 1) * sizeof(*n->u.vs.ms));
		n->u.vs.ms[n->u.vs.nms++] = m;
	}
	return n;
}

static int
add_offset(struct parser *p, struct promql_node *e, int64_t off)
{
	int64_t *orig;
	size_t start;

	node_start(e, &start);
	switch (e->kind) {
	case PROMQL_VECTOR_SELECTOR:
		orig = &e->u.vs.offset;
		break;
	case PROMQL_MATRIX_SELECTOR:
		if (e->u.msel.vs->kind != PROMQL_VECTOR_SELECTOR) {
			fail_at(p, start, "ranges only allowed for vector selectors");
			return -1;
		}
		orig = &e->u.msel.vs->u.vs.offset;
		break;
	case PROMQL_SUBQUERY:
		orig = &e->u.subq.offset;
		break;
	default:
		fail_at(p, start, "offset modifier must be preceded by an instant vector "
		    "selector or range vector selector or a subquery");
		return -1;
	}
	if (*orig != 0) {
		fail_at(p, start, "offset may not be set multiple times");
		return -1;
	}
	*orig = off;
	e->end = p->last_closing;
	return 0;
}

static struct promql_at *
at_vars(struct parser *p, struct promql_node *e)
{
	struct promql_at *at;
	size_t start;

	node_start(e, &start);
	switch (e->kind) {
	case PROMQL_VECTOR_SELECTOR:
		at = &e->u.vs.at;
		break;
	case PROMQL_MATRIX_SELECTOR:
		if (e->u.msel.vs->kind != PROMQL_VECTOR_SELECTOR) {
			fail_at(p, start, "ranges only allowed for vector selectors");
			return NULL;
		}
		at = &e->u.msel.vs->u.vs.at;
		break;
	case PROMQL_SUBQUERY:
		at = &e->u.subq.at;
		break;
	default:
		fail_at(p, start, "@ modifier must be preceded by an instant vector selector "
		    "or range vector selector or a subquery");
		return NULL;
	}
	if (at->has_ts || at->start_or_end != 0) {
		fail_at(p, start, "@ <timestamp> may not be set multiple times");
		return NULL;
	}
	return at;
}

static int
set_timestamp(struct parser *p, struct promql_node *e, double ts)
{
	struct promql_at *at;
	size_t start;

	node_start(e, &start);
	if (isinf(ts) || isnan(ts) || ts >= 9223372036854775807.0 ||
	    ts <= -9223372036854775808.0) {
		char buf[400];

		if (isnan(ts))
			snprintf(buf, sizeof(buf), "NaN");
		else if (isinf(ts))
			snprintf(buf, sizeof(buf), "%s", ts > 0 ? "+Inf" : "-Inf");
		else
			snprintf(buf, sizeof(buf), "%f", ts);
		fail_at(p, start, "timestamp out of bounds for @ modifier: %s", buf);
		return -1;
	}
	at = at_vars(p, e);
	if (at == NULL)
		return -1;
	at->has_ts = true;
	/* int64(math.Round(ts * 1000)): Go gives the minimum when it overflows */
	{
		double ms = round(ts * 1000.0);

		at->ts = ms >= -9223372036854775808.0 && ms < 9223372036854775808.0 ?
		    (int64_t)ms : INT64_MIN;
	}
	e->end = p->last_closing;
	return 0;
}

static struct promql_node *
parse_postfix(struct parser *p, struct promql_node *e)
{
	for (;;) {
		struct promql_item *t = tok(p);

		if (t->typ == PROMQL_T_OFFSET) {
			bool neg = false;
			int64_t d;

			advance(p);
			if (tok(p)->typ == PROMQL_T_SUB) {
				neg = true;
				advance(p);
			}
			if (tok(p)->typ != PROMQL_T_DURATION) {
				unexpected(p, "offset", "duration");
				goto fail;
			}
			if (!duration_tok(p, &d))
				goto fail;
			advance(p);
			if (add_offset(p, e, neg ? -d : d) < 0)
				goto fail;
		} else if (t->typ == PROMQL_T_AT) {
			double ts;

			advance(p);
			t = tok(p);
			if (t->typ == PROMQL_T_NUMBER) {
				if (!number_tok(p, &ts))
					goto fail;
				advance(p);
				if (set_timestamp(p, e, ts) < 0)
					goto fail;
			} else if (t->typ == PROMQL_T_ADD || t->typ == PROMQL_T_SUB) {
				bool neg = t->typ == PROMQL_T_SUB;

				advance(p);
				if (tok(p)->typ != PROMQL_T_NUMBER) {
					unexpected(p, "@", "timestamp");
					goto fail;
				}
				if (!number_tok(p, &ts))
					goto fail;
				advance(p);
				if (set_timestamp(p, e, neg ? -ts : ts) < 0)
					goto fail;
			} else if (t->typ == PROMQL_T_START || t->typ == PROMQL_T_END) {
				enum promql_tok which = t->typ;
				struct promql_at *at;

				advance(p);
				if (tok(p)->typ != PROMQL_T_LEFT_PAREN) {
					unexpected(p, "@", "timestamp");
					goto fail;
				}
				advance(p);
				if (tok(p)->typ != PROMQL_T_RIGHT_PAREN) {
					unexpected(p, "@", "timestamp");
					goto fail;
				}
				advance(p);
				at = at_vars(p, e);
				if (at == NULL)
					goto fail;
				at->start_or_end = which;
				e->end = p->last_closing;
			} else {
				unexpected(p, "@", "timestamp");
				goto fail;
			}
		} else if (t->typ == PROMQL_T_LEFT_BRACKET) {
			size_t lb = t->pos;
			int64_t range, step = 0;
			struct promql_node *n;

			advance(p);
			if (tok(p)->typ != PROMQL_T_DURATION) {
				unexpected(p, "subquery selector", "duration");
				goto fail;
			}
			if (!duration_tok(p, &range))
				goto fail;
			advance(p);
			t = tok(p);
			if (t->typ == PROMQL_T_RIGHT_BRACKET) {
				const char *msg = NULL;

				advance(p);
				if (e->kind != PROMQL_VECTOR_SELECTOR)
					msg = "ranges only allowed for vector selectors";
				else if (e->u.vs.offset != 0)
					msg = "no offset modifiers allowed before range";
				else if (e->u.vs.at.has_ts)
					msg = "no @ modifiers allowed before range";
				if (msg != NULL) {
					fail_at(p, lb, "%s", msg);
					goto fail;
				}
				n = promql_node_new(PROMQL_MATRIX_SELECTOR, e->start, p->last_closing);
				n->u.msel.vs = e;
				n->u.msel.range = range;
				e = n;
				if (!deepen(p, e))
					goto fail;
			} else if (t->typ == PROMQL_T_COLON) {
				advance(p);
				t = tok(p);
				if (t->typ == PROMQL_T_DURATION) {
					if (!duration_tok(p, &step))
						goto fail;
					advance(p);
					if (tok(p)->typ != PROMQL_T_RIGHT_BRACKET) {
						unexpected(p, "subquery selector", "\"]\"");
						goto fail;
					}
				} else if (t->typ != PROMQL_T_RIGHT_BRACKET) {
					unexpected(p, "subquery selector", "duration or \"]\"");
					goto fail;
				}
				n = promql_node_new(PROMQL_SUBQUERY, 0, tok(p)->pos + 1);
				advance(p);
				n->u.subq.expr = e;
				n->u.subq.range = range;
				n->u.subq.step = step;
				e = n;
				if (!deepen(p, e))
					goto fail;
			} else {
				unexpected(p, "subquery or range", "\":\" or \"]\"");
				goto fail;
			}
		} else {
			return e;
		}
	}
fail:
	promql_node_free(e);
	return NULL;
}

static struct promql_node *
parse_primary(struct parser *p)
{
	struct promql_item *t = tok(p), item;
	struct promql_node *n;

	switch (t->typ) {
	case PROMQL_T_NUMBER: {
		double v;

		if (!number_tok(p, &v))
			return NULL;
		n = promql_node_new(PROMQL_NUMBER, t->pos, t->pos + t->len);
		n->u.num.val = v;
		advance(p);
		return n;
	}
	case PROMQL_T_STRING: {
		size_t len;
		char *s = unquote_tok(p, &len);

		if (s == NULL)
			return NULL;
		n = promql_node_new(PROMQL_STRING, t->pos, t->pos + t->len);
		n->u.str.val = s;
		n->u.str.len = len;
		advance(p);
		return n;
	}
	case PROMQL_T_LEFT_PAREN: {
		struct promql_node *e;
		size_t start = t->pos;

		advance(p);
		e = parse_expr(p, 0);
		if (e == NULL)
			return NULL;
		t = tok(p);
		if (t->typ != PROMQL_T_RIGHT_PAREN) {
			generic(p);
			promql_node_free(e);
			return NULL;
		}
		n = promql_node_new(PROMQL_PAREN, start, t->pos + t->len);
		n->u.paren.expr = e;
		advance(p);
		if (!deepen(p, n)) {
			promql_node_free(n);
			return NULL;
		}
		return n;
	}
	case PROMQL_T_LEFT_BRACE:
		return parse_selector(p, NULL);
	case PROMQL_T_IDENTIFIER:
		item = *t;
		advance(p);
		if (tok(p)->typ == PROMQL_T_LEFT_PAREN) {
			struct promql_node **args;
			long nargs = parse_call_body(p, &args);
			const struct promql_function *f;

			if (nargs < 0)
				return NULL;
			f = promql_function_lookup(item.val, item.len);
			if (f == NULL) {
				struct strbuf q = STRBUF_INIT;

				labels_quote(item.val, item.len, &q);
				fail_at(p, item.pos, "unknown function with name %s", strbuf_cstr(&q));
				strbuf_free(&q);
				while (nargs > 0)
					promql_node_free(args[--nargs]);
				mem_free(args);
				return NULL;
			}
			n = promql_node_new(PROMQL_CALL, item.pos, p->last_closing);
			n->u.call.func = f;
			n->u.call.args = args;
			n->u.call.nargs = (size_t)nargs;
			if (!deepen(p, n)) {
				promql_node_free(n);
				return NULL;
			}
			return n;
		}
		return parse_selector(p, &item);
	case PROMQL_T_METRIC_IDENTIFIER:
		item = *t;
		advance(p);
		return parse_selector(p, &item);
	default:
		if (promql_tok_is_aggregator(t->typ)) {
			enum promql_tok next;

			item = *t;
			advance(p);
			next = tok(p)->typ;
			if (next == PROMQL_T_LEFT_PAREN || next == PROMQL_T_BY ||
			    next == PROMQL_T_WITHOUT)
				return parse_aggregate(p, &item);
			return parse_selector(p, &item);
		}
		if (is_metric_keyword(t->typ)) {
			item = *t;
			advance(p);
			return parse_selector(p, &item);
		}
		generic(p);
		return NULL;
	}
}

static struct promql_node *
parse_unary(struct parser *p)
{
	struct promql_item *t = tok(p);
	struct promql_node *e, *n;

	if (t->typ == PROMQL_T_ADD || t->typ == PROMQL_T_SUB) {
		enum promql_tok op = t->typ;
		size_t pos = t->pos;

		advance(p);
		e = parse_expr(p, PREC_POW);
		if (e == NULL)
			return NULL;
		if (e->kind == PROMQL_NUMBER) {
			if (op == PROMQL_T_SUB)
				e->u.num.val = -e->u.num.val;
			e->start = pos;
			return e;
		}
		n = promql_node_new(PROMQL_UNARY, pos, pos);
		n->u.unary.op = op;
		n->u.unary.expr = e;
		if (!deepen(p, n)) {
			promql_node_free(n);
			return NULL;
		}
		return n;
	}
	e = parse_primary(p);
	if (e == NULL)
		return NULL;
	return parse_postfix(p, e);
}

static struct promql_node *parse_expr_rec(struct parser *p, int min_prec);

/* parse_expr bounds the parser's own recursion (parentheses, unary
 * operators, ^ chains) before any tree exists to measure. */
static struct promql_node *
parse_expr(struct parser *p, int min_prec)
{
	struct promql_node *n;

	if (p->rec >= PROMQL_MAX_DEPTH) {
		fail_at(p, tok(p)->pos, "expression nested more than %d levels deep",
		    PROMQL_MAX_DEPTH);
		return NULL;
	}
	p->rec++;
	n = parse_expr_rec(p, min_prec);
	p->rec--;
	return n;
}

static struct promql_node *
parse_expr_rec(struct parser *p, int min_prec)
{
	struct promql_node *lhs = parse_unary(p);

	if (lhs == NULL)
		return NULL;
	for (;;) {
		struct promql_item *t = tok(p);
		int prec = binop_prec(t->typ);
		struct promql_vector_matching *vm;
		struct promql_node *n, *rhs;
		enum promql_tok op;

		if (prec == 0 || prec < min_prec)
			return lhs;
		op = t->typ;
		advance(p);
		n = promql_node_new(PROMQL_BINARY, 0, 0);
		n->u.bin.op = op;
		n->u.bin.lhs = lhs;
		vm = n->u.bin.vm = mem_calloc(1, sizeof(*vm));
		vm->card = PROMQL_CARD_ONE_TO_ONE;
		t = tok(p);
		if (t->typ == PROMQL_T_BOOL) {
			n->u.bin.return_bool = true;
			advance(p);
			t = tok(p);
		}
		if (t->typ == PROMQL_T_ON || t->typ == PROMQL_T_IGNORING) {
			vm->on = t->typ == PROMQL_T_ON;
			advance(p);
			if (parse_grouping(p, &vm->matching) < 0)
				goto fail;
			t = tok(p);
			if (t->typ == PROMQL_T_GROUP_LEFT || t->typ == PROMQL_T_GROUP_RIGHT) {
				vm->card = t->typ == PROMQL_T_GROUP_LEFT ?
				    PROMQL_CARD_MANY_TO_ONE : PROMQL_CARD_ONE_TO_MANY;
				advance(p);
				if (tok(p)->typ == PROMQL_T_LEFT_PAREN) {
					if (parse_grouping(p, &vm->include) < 0)
						goto fail;
				} else if (!starts_expr(tok(p)->typ)) {
					/* yacc only reduces the empty label list
					 * before the start of an operand */
					unexpected(p, "grouping opts", "\"(\"");
					goto fail;
				}
			}
		}
		rhs = parse_expr(p, op == PROMQL_T_POW ? prec : prec + 1);
		if (rhs == NULL)
			goto fail;
		n->u.bin.rhs = rhs;
		if (!deepen(p, n))
			goto fail;
		lhs = n;
		continue;
fail:
		promql_node_free(n);
		return NULL;
	}
}

/* ---- type checks (checkAST) -------------------------------------------- */

static enum promql_type check(struct parser *p, struct promql_node *n);

static void
expect_type(struct parser *p, struct promql_node *n, enum promql_type want, const char *ctx)
{
	enum promql_type t = check(p, n);
	size_t start;

	if (p->failed)
		return;
	if (t != want) {
		node_start(n, &start);
		fail_at(p, start, "expected type %s in %s, got %s", promql_type_doc(want), ctx,
		    promql_type_doc(t));
	}
}

static size_t
op_pos(struct parser *p, struct promql_node *n)
{
	size_t s, e;

	promql_node_range(n->u.bin.lhs, &s, &e);
	while (e < p->len && (p->in[e] == ' ' || p->in[e] == '\t' || p->in[e] == '\n' ||
	    p->in[e] == '\r'))
		e++;
	return e;
}

static enum promql_type
check(struct parser *p, struct promql_node *n)
{
	enum promql_type typ = promql_node_type(n);
	size_t i, j, start;

	if (p->failed)
		return typ;
	node_start(n, &start);
	switch (n->kind) {
	case PROMQL_AGGREGATE:
		expect_type(p, n->u.agg.expr, PROMQL_TYPE_VECTOR, "aggregation expression");
		if (n->u.agg.op == PROMQL_T_TOPK || n->u.agg.op == PROMQL_T_BOTTOMK ||
		    n->u.agg.op == PROMQL_T_QUANTILE)
			expect_type(p, n->u.agg.param, PROMQL_TYPE_SCALAR, "aggregation parameter");
		if (n->u.agg.op == PROMQL_T_COUNT_VALUES)
			expect_type(p, n->u.agg.param, PROMQL_TYPE_STRING, "aggregation parameter");
		break;
	case PROMQL_BINARY: {
		enum promql_type lt = check(p, n->u.bin.lhs);
		enum promql_type rt = check(p, n->u.bin.rhs);
		struct promql_vector_matching *vm = n->u.bin.vm;
		enum promql_tok op = n->u.bin.op;
		const char *ops = promql_tok_string(op);

		if (p->failed)
			break;
		if (n->u.bin.return_bool && !promql_tok_is_comparison(op)) {
			fail_at(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
			break;
		}
		if (promql_tok_is_comparison(op) && !n->u.bin.return_bool &&
		    rt == PROMQL_TYPE_SCALAR && lt == PROMQL_TYPE_SCALAR) {
			fail_at(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
			break;
		}
		if (promql_tok_is_set_op(op) && vm->card == PROMQL_CARD_ONE_TO_ONE)
			vm->card = PROMQL_CARD_MANY_TO_MANY;
		for (i = 0; i < vm->matching.n; i++)
			for (j = 0; j < vm->include.n; j++)
				if (vm->on && strcmp(vm->matching.v[i], vm->include.v[j]) == 0) {
					fail_at(p, op_pos(p, n), "label \"%s\" must not occur in ON "
					    "and GROUP clause at once", vm->matching.v[i]);
					return typ;
				}
		if (lt != PROMQL_TYPE_SCALAR && lt != PROMQL_TYPE_VECTOR) {
			node_start(n->u.bin.lhs, &start);
			fail_at(p, start, "binary expression must contain only scalar and instant vector types");
			break;
		}
		if (rt != PROMQL_TYPE_SCALAR && rt != PROMQL_TYPE_VECTOR) {
			node_start(n->u.bin.rhs, &start);
			fail_at(p, start, "binary expression must contain only scalar and instant vector types");
			break;
		}
		if (lt != PROMQL_TYPE_VECTOR || rt != PROMQL_TYPE_VECTOR) {
			if (vm->matching.n > 0) {
				fail_at(p, start, "vector matching only allowed between instant vectors");
				break;
			}
			promql_names_free(&vm->matching);
			promql_names_free(&vm->include);
			mem_free(vm);
			n->u.bin.vm = NULL;
		} else if (promql_tok_is_set_op(op)) {
			if (vm->card == PROMQL_CARD_ONE_TO_MANY || vm->card == PROMQL_CARD_MANY_TO_ONE) {
				fail_at(p, start, "no grouping allowed for \"%s\" operation", ops);
				break;
			}
			if (vm->card != PROMQL_CARD_MANY_TO_MANY) {
				fail_at(p, start, "set operations must always be many-to-many");
				break;
			}
		}
		if ((lt == PROMQL_TYPE_SCALAR || rt == PROMQL_TYPE_SCALAR) && promql_tok_is_set_op(op))
			fail_at(p, start, "set operator \"%s\" not allowed in binary scalar expression", ops);
		break;
	}
	case PROMQL_CALL: {
		const struct promql_function *f = n->u.call.func;
		size_t nargs = n->u.call.nargs, na;
		char ctx[128];

		if (f->variadic == 0) {
			if ((size_t)f->nargs != nargs) {
				fail_at(p, start, "expected %d argument(s) in call to \"%s\", got %zu",
				    f->nargs, f->name, nargs);
				break;
			}
		} else {
			na = (size_t)f->nargs - 1;
			if (na > nargs) {
				fail_at(p, start, "expected at least %zu argument(s) in call to \"%s\", got %zu",
				    na, f->name, nargs);
				break;
			} else if (f->variadic > 0 && na + (size_t)f->variadic < nargs) {
				fail_at(p, start, "expected at most %zu argument(s) in call to \"%s\", got %zu",
				    na + (size_t)f->variadic, f->name, nargs);
				break;
			}
		}
		snprintf(ctx, sizeof(ctx), "call to function \"%s\"", f->name);
		for (i = 0; i < nargs && !p->failed; i++) {
			size_t k = i;

			if (k >= (size_t)f->nargs) {
				if (f->variadic == 0)
					break;
				k = (size_t)f->nargs - 1;
			}
			expect_type(p, n->u.call.args[i], f->arg_types[k], ctx);
		}
		break;
	}
	case PROMQL_PAREN:
		check(p, n->u.paren.expr);
		break;
	case PROMQL_UNARY: {
		enum promql_type t = check(p, n->u.unary.expr);

		if (!p->failed && t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR)
			fail_at(p, start, "unary expression only allowed on expressions of type "
			    "scalar or instant vector, got \"%s\"", promql_type_doc(t));
		break;
	}
	case PROMQL_SUBQUERY: {
		enum promql_type t = check(p, n->u.subq.expr);

		if (!p->failed && t != PROMQL_TYPE_VECTOR)
			fail_at(p, start, "subquery is only allowed on instant vector, got %s instead",
			    promql_type_name(t));
		break;
	}
	case PROMQL_MATRIX_SELECTOR:
		check(p, n->u.msel.vs);
		break;
	case PROMQL_VECTOR_SELECTOR:
		if (n->u.vs.name[0] != '\0') {
			for (i = 0; i + 1 < n->u.vs.nms; i++) {
				if (strcmp(n->u.vs.ms[i]->name, LABEL_METRIC_NAME) == 0) {
					fail_at(p, start, "metric name must not be set twice: \"%s\" or \"%s\"",
					    n->u.vs.name, n->u.vs.ms[i]->value);
					break;
				}
			}
			break;
		}
		for (i = 0; i < n->u.vs.nms; i++)
			if (!matcher_matches(n->u.vs.ms[i], ""))
				break;
		if (i == n->u.vs.nms)
			fail_at(p, start, "vector selector must contain at least one non-empty matcher");
		break;
	default:
		break;
	}
	return typ;
}

struct promql_node *
promql_parse(const char *input, size_t len, char *err, size_t errlen)
{
	struct parser p;
	struct promql_node *e = NULL;

	memset(&p, 0, sizeof(p));
	promql_lex_init(&p.lx, input, len, false);
	p.in = input;
	p.len = len;
	p.err = err;
	p.errlen = errlen;
	if (tok(&p)->typ == PROMQL_T_EOF) {
		fail_at(&p, 0, "no expression found in input");
		return NULL;
	}
	e = parse_expr(&p, 0);
	if (e != NULL && tok(&p)->typ != PROMQL_T_EOF)
		generic(&p);
	if (e != NULL && !p.failed)
		check(&p, e);
	if (p.failed) {
		promql_node_free(e);
		return NULL;
	}
	return e;
}

/* ---- series descriptions (test scripts) ------------------------------ */

static void
seq_add(struct promql_seq_value **v, size_t *n, size_t *cap, double val, bool omitted)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = mem_realloc(*v, *cap * sizeof(**v));
	}
	(*v)[*n].v = val;
	(*v)[*n].omitted = omitted;
	(*n)++;
}

static int
parse_uint_tok(struct parser *p, uint64_t *out)
{
	struct promql_item *t = tok(p);
	uint64_t v = 0;
	size_t i;

	if (t->typ != PROMQL_T_NUMBER) {
		unexpected(p, "series values", NULL);
		return -1;
	}
	for (i = 0; i < t->len; i++) {
		if (t->val[i] < '0' || t->val[i] > '9' || v > (UINT64_MAX - 9) / 10) {
			fail_at(p, t->pos, "invalid repetition in series values: strconv.ParseUint: "
			    "parsing \"%.*s\": invalid syntax", (int)t->len, t->val);
			return -1;
		}
		v = v * 10 + (uint64_t)(t->val[i] - '0');
	}
	if (t->len == 0 || v > 100000000) {
		fail_at(p, t->pos, "invalid repetition in series values");
		return -1;
	}
	*out = v;
	advance(p);
	return 0;
}

/* series_value parses number | +number | -number | stale. */
static int
series_value(struct parser *p, double *v)
{
	struct promql_item *t = tok(p);
	bool neg = false;

	if (t->typ == PROMQL_T_IDENTIFIER) {
		if (t->len != 5 || memcmp(t->val, "stale", 5) != 0) {
			unexpected(p, "series values", "number or \"stale\"");
			return -1;
		}
		{
			uint64_t bits = 0x7ff0000000000002ULL;

			memcpy(v, &bits, sizeof(*v));
		}
		advance(p);
		return 0;
	}
	if (t->typ == PROMQL_T_ADD || t->typ == PROMQL_T_SUB) {
		neg = t->typ == PROMQL_T_SUB;
		advance(p);
		t = tok(p);
	}
	if (t->typ != PROMQL_T_NUMBER) {
		unexpected(p, "series values", NULL);
		return -1;
	}
	if (!number_tok(p, v))
		return -1;
	if (neg)
		*v = -*v;
	advance(p);
	return 0;
}

int
promql_parse_series(const char *input, size_t len, struct labels **ls,
    struct promql_seq_value **vals, size_t *nvals, char *err, size_t errlen)
{
	struct parser p;
	struct labels_builder *lb = labels_builder_new();
	struct promql_item *t;
	size_t cap = 0;

	*ls = NULL;
	*vals = NULL;
	*nvals = 0;
	memset(&p, 0, sizeof(p));
	promql_lex_init(&p.lx, input, len, true);
	p.in = input;
	p.len = len;
	p.err = err;
	p.errlen = errlen;

	t = tok(&p);
	if (t->typ == PROMQL_T_IDENTIFIER || t->typ == PROMQL_T_METRIC_IDENTIFIER ||
	    promql_tok_is_aggregator(t->typ) || is_metric_keyword(t->typ)) {
		labels_builder_setn(lb, LABEL_METRIC_NAME, strlen(LABEL_METRIC_NAME), t->val, t->len);
		advance(&p);
		t = tok(&p);
	}
	if (t->typ == PROMQL_T_LEFT_BRACE) {
		advance(&p);
		for (;;) {
			struct promql_item name;
			char *val;
			size_t vlen;

			t = tok(&p);
			if (t->typ == PROMQL_T_RIGHT_BRACE) {
				advance(&p);
				break;
			}
			if (t->typ != PROMQL_T_IDENTIFIER) {
				unexpected(&p, "label set", "identifier or \"}\"");
				goto fail;
			}
			name = *t;
			advance(&p);
			if (tok(&p)->typ != PROMQL_T_EQL) {
				unexpected(&p, "label set", "\"=\"");
				goto fail;
			}
			advance(&p);
			if (tok(&p)->typ != PROMQL_T_STRING) {
				unexpected(&p, "label set", "string");
				goto fail;
			}
			val = unquote_tok(&p, &vlen);
			if (val == NULL)
				goto fail;
			labels_builder_setn(lb, name.val, name.len, val, vlen);
			mem_free(val);
			advance(&p);
			t = tok(&p);
			if (t->typ == PROMQL_T_COMMA) {
				advance(&p);
				continue;
			}
			if (t->typ != PROMQL_T_RIGHT_BRACE) {
				unexpected(&p, "label set", "\",\" or \"}\"");
				goto fail;
			}
		}
	}
	/* series_values: (SPACE series_item?)* */
	for (;;) {
		t = tok(&p);
		if (t->typ == PROMQL_T_EOF)
			break;
		if (t->typ != PROMQL_T_SPACE) {
			unexpected(&p, "series values", NULL);
			goto fail;
		}
		advance(&p);
		t = tok(&p);
		if (t->typ == PROMQL_T_EOF || t->typ == PROMQL_T_SPACE)
			continue;
		if (t->typ == PROMQL_T_BLANK) {
			advance(&p);
			if (tok(&p)->typ == PROMQL_T_TIMES) {
				uint64_t k, i;

				advance(&p);
				if (parse_uint_tok(&p, &k) < 0)
					goto fail;
				for (i = 0; i < k; i++)
					seq_add(vals, nvals, &cap, 0, true);
			} else {
				seq_add(vals, nvals, &cap, 0, true);
			}
			continue;
		} else {
			double v, inc;
			uint64_t k, i;

			if (series_value(&p, &v) < 0)
				goto fail;
			t = tok(&p);
			if (t->typ == PROMQL_T_TIMES) {
				advance(&p);
				if (parse_uint_tok(&p, &k) < 0)
					goto fail;
				for (i = 0; i <= k; i++)
					seq_add(vals, nvals, &cap, v, false);
			} else if (t->typ == PROMQL_T_ADD || t->typ == PROMQL_T_SUB) {
				bool neg = t->typ == PROMQL_T_SUB;

				advance(&p);
				if (tok(&p)->typ != PROMQL_T_NUMBER) {
					unexpected(&p, "series values", NULL);
					goto fail;
				}
				if (!number_tok(&p, &inc))
					goto fail;
				if (neg)
					inc = -inc;
				advance(&p);
				if (tok(&p)->typ != PROMQL_T_TIMES) {
					unexpected(&p, "series values", NULL);
					goto fail;
				}
				advance(&p);
				if (parse_uint_tok(&p, &k) < 0)
					goto fail;
				for (i = 0; i <= k; i++) {
					seq_add(vals, nvals, &cap, v, false);
					v += inc;
				}
			} else {
				seq_add(vals, nvals, &cap, v, false);
			}
		}
	}
	if (p.failed)
		goto fail;
	*ls = labels_builder_labels(lb);
	labels_builder_free(lb);
	return 0;
fail:
	if (!p.failed)
		fail_at(&p, 0, "invalid series description");
	labels_builder_free(lb);
	MEM_FREE(*vals);
	*nvals = 0;
	return -1;
}
