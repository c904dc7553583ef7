/* lib/promql/ast.c - PromQL syntax tree: construction, types, printing.
 *
 * The printer reproduces Prometheus 2.42's String() methods (printer.go):
 * one space around binary operators, "by (a, b) " before the parenthesised
 * arguments of an aggregation, matchers sorted by their text with the metric
 * name outside the braces, "@ 1.000" with three decimals, durations as
 * model.Duration prints them, numbers as Go's %v. Stateless; thread-safe.
 */
#include "config.h"

#include "promql/ast.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "util/float.h"
#include "util/mem.h"
#include "util/time.h"

#define S PROMQL_TYPE_SCALAR
#define V PROMQL_TYPE_VECTOR
#define M PROMQL_TYPE_MATRIX
#define T PROMQL_TYPE_STRING
#define PROMQL_FN_DEF(id, nm, rt, var, na, ...) \
	{ nm, { __VA_ARGS__ }, na, var, rt, PROMQL_FN_##id },
static const struct promql_function functions[] = {
	PROMQL_FUNCTIONS(PROMQL_FN_DEF)
};
#undef PROMQL_FN_DEF
#undef S
#undef V
#undef M
#undef T

const struct promql_function *
promql_function_lookup(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(functions) / sizeof(functions[0]); i++)
		if (strlen(functions[i].name) == len && memcmp(functions[i].name, name, len) == 0)
			return &functions[i];
	return NULL;
}

struct promql_node *
promql_node_new(enum promql_node_kind kind, size_t start, size_t end)
{
	struct promql_node *n = mem_calloc(1, sizeof(*n));

	n->kind = kind;
	n->start = start;
	n->end = end;
	n->depth = 1;
	return n;
}

void
promql_names_add(struct promql_names *ns, const char *s, size_t len)
{
	ns->v = mem_realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	ns->v[ns->n++] = mem_strndup(s, len);
}

void
promql_names_free(struct promql_names *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		mem_free(ns->v[i]);
	MEM_FREE(ns->v);
	ns->n = 0;
}

bool
promql_names_has(const struct promql_names *ns, const char *s)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], s) == 0)
			return true;
	return false;
}

void
promql_node_free(struct promql_node *n)
{
	size_t i;

	if (n == NULL)
		return;
	switch (n->kind) {
	case PROMQL_AGGREGATE:
		promql_node_free(n->u.agg.expr);
		promql_node_free(n->u.agg.param);
		promql_names_free(&n->u.agg.grouping);
		break;
	case PROMQL_BINARY:
		promql_node_free(n->u.bin.lhs);
		promql_node_free(n->u.bin.rhs);
		if (n->u.bin.vm != NULL) {
			promql_names_free(&n->u.bin.vm->matching);
			promql_names_free(&n->u.bin.vm->include);
			mem_free(n->u.bin.vm);
		}
		break;
	case PROMQL_CALL:
		for (i = 0; i < n->u.call.nargs; i++)
			promql_node_free(n->u.call.args[i]);
		mem_free(n->u.call.args);
		break;
	case PROMQL_MATRIX_SELECTOR:
		promql_node_free(n->u.msel.vs);
		break;
	case PROMQL_SUBQUERY:
		promql_node_free(n->u.subq.expr);
		break;
	case PROMQL_PAREN:
		promql_node_free(n->u.paren.expr);
		break;
	case PROMQL_STRING:
		mem_free(n->u.str.val);
		break;
	case PROMQL_UNARY:
		promql_node_free(n->u.unary.expr);
		break;
	case PROMQL_VECTOR_SELECTOR:
		mem_free(n->u.vs.name);
		for (i = 0; i < n->u.vs.nms; i++)
			matcher_free(n->u.vs.ms[i]);
		mem_free(n->u.vs.ms);
		break;
	case PROMQL_STEP_INVARIANT:
		promql_node_free(n->u.inv.expr);
		break;
	case PROMQL_NUMBER:
		break;
	}
	mem_free(n);
}

enum promql_type
promql_node_type(const struct promql_node *n)
{
	switch (n->kind) {
	case PROMQL_AGGREGATE:
	case PROMQL_VECTOR_SELECTOR:
		return PROMQL_TYPE_VECTOR;
	case PROMQL_CALL:
		return n->u.call.func != NULL ? n->u.call.func->ret : PROMQL_TYPE_NONE;
	case PROMQL_MATRIX_SELECTOR:
	case PROMQL_SUBQUERY:
		return PROMQL_TYPE_MATRIX;
	case PROMQL_NUMBER:
		return PROMQL_TYPE_SCALAR;
	case PROMQL_STRING:
		return PROMQL_TYPE_STRING;
	case PROMQL_PAREN:
		return promql_node_type(n->u.paren.expr);
	case PROMQL_UNARY:
		return promql_node_type(n->u.unary.expr);
	case PROMQL_STEP_INVARIANT:
		return promql_node_type(n->u.inv.expr);
	case PROMQL_BINARY:
		if (promql_node_type(n->u.bin.lhs) == PROMQL_TYPE_SCALAR &&
		    promql_node_type(n->u.bin.rhs) == PROMQL_TYPE_SCALAR)
			return PROMQL_TYPE_SCALAR;
		return PROMQL_TYPE_VECTOR;
	}
	return PROMQL_TYPE_NONE;
}

void
promql_node_range(const struct promql_node *n, size_t *start, size_t *end)
{
	size_t s, e;

	switch (n->kind) {
	case PROMQL_BINARY:
		promql_node_range(n->u.bin.lhs, start, &e);
		promql_node_range(n->u.bin.rhs, &s, end);
		return;
	case PROMQL_MATRIX_SELECTOR:
		promql_node_range(n->u.msel.vs, start, &e);
		*end = n->end;
		return;
	case PROMQL_SUBQUERY:
		promql_node_range(n->u.subq.expr, start, &e);
		*end = n->end;
		return;
	case PROMQL_UNARY:
		*start = n->start;
		promql_node_range(n->u.unary.expr, &s, end);
		return;
	case PROMQL_STEP_INVARIANT:
		promql_node_range(n->u.inv.expr, start, end);
		return;
	default:
		*start = n->start;
		*end = n->end;
		return;
	}
}

const char *
promql_type_name(enum promql_type t)
{
	switch (t) {
	case PROMQL_TYPE_SCALAR:
		return "scalar";
	case PROMQL_TYPE_VECTOR:
		return "vector";
	case PROMQL_TYPE_MATRIX:
		return "matrix";
	case PROMQL_TYPE_STRING:
		return "string";
	default:
		return "none";
	}
}

const char *
promql_type_doc(enum promql_type t)
{
	switch (t) {
	case PROMQL_TYPE_VECTOR:
		return "instant vector";
	case PROMQL_TYPE_MATRIX:
		return "range vector";
	default:
		return promql_type_name(t);
	}
}

/* ---- floats ------------------------------------------------------------ */

void
promql_format_float(double v, char fmt, struct strbuf *out)
{
	float_format(out, v, fmt);
}

/* ---- printing --------------------------------------------------------- */

static void
put_duration(int64_t ms, struct strbuf *out)
{
	char buf[64];

	strbuf_puts(out, time_format_duration(ms, buf, sizeof(buf)));
}

static void
put_at_offset(const struct promql_at *at, int64_t offset, struct strbuf *out)
{
	if (at->has_ts)
		strbuf_printf(out, " @ %.3f", (double)at->ts / 1000.0);
	else if (at->start_or_end == PROMQL_T_START)
		strbuf_puts(out, " @ start()");
	else if (at->start_or_end == PROMQL_T_END)
		strbuf_puts(out, " @ end()");
	if (offset > 0) {
		strbuf_puts(out, " offset ");
		put_duration(offset, out);
	} else if (offset < 0) {
		strbuf_puts(out, " offset -");
		put_duration(-offset, out);
	}
}

static void
put_names(const struct promql_names *ns, struct strbuf *out)
{
	size_t i;

	for (i = 0; i < ns->n; i++) {
		if (i > 0)
			strbuf_puts(out, ", ");
		strbuf_puts(out, ns->v[i]);
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
put_selector(const struct promql_node *n, bool with_mods, struct strbuf *out)
{
	char **strs = NULL;
	size_t i, ns = 0;

	if (n->u.vs.nms > 0)
		strs = mem_alloc(n->u.vs.nms * sizeof(*strs));
	for (i = 0; i < n->u.vs.nms; i++) {
		const struct matcher *m = n->u.vs.ms[i];
		struct strbuf sb = STRBUF_INIT;

		if (strcmp(m->name, LABEL_METRIC_NAME) == 0 && m->op == MATCH_EQUAL &&
		    strcmp(m->value, n->u.vs.name) == 0)
			continue;
		matcher_format(m, &sb);
		strs[ns++] = strbuf_detach(&sb, NULL);
	}
	strbuf_puts(out, n->u.vs.name);
	if (ns > 0) {
		qsort(strs, ns, sizeof(*strs), cmp_str);
		strbuf_putc(out, '{');
		for (i = 0; i < ns; i++) {
			if (i > 0)
				strbuf_putc(out, ',');
			strbuf_puts(out, strs[i]);
			mem_free(strs[i]);
		}
		strbuf_putc(out, '}');
	}
	mem_free(strs);
	if (with_mods)
		put_at_offset(&n->u.vs.at, n->u.vs.offset, out);
}

void
promql_node_format(const struct promql_node *n, struct strbuf *out)
{
	size_t i;

	switch (n->kind) {
	case PROMQL_AGGREGATE:
		strbuf_puts(out, promql_tok_string(n->u.agg.op));
		if (n->u.agg.without) {
			strbuf_puts(out, " without (");
			put_names(&n->u.agg.grouping, out);
			strbuf_puts(out, ") ");
		} else if (n->u.agg.grouping.n > 0) {
			strbuf_puts(out, " by (");
			put_names(&n->u.agg.grouping, out);
			strbuf_puts(out, ") ");
		}
		strbuf_putc(out, '(');
		if (promql_tok_is_aggregator_with_param(n->u.agg.op) && n->u.agg.param != NULL) {
			promql_node_format(n->u.agg.param, out);
			strbuf_puts(out, ", ");
		}
		if (n->u.agg.expr != NULL)
			promql_node_format(n->u.agg.expr, out);
		strbuf_putc(out, ')');
		break;
	case PROMQL_BINARY: {
		const struct promql_vector_matching *vm = n->u.bin.vm;

		promql_node_format(n->u.bin.lhs, out);
		strbuf_putc(out, ' ');
		strbuf_puts(out, promql_tok_string(n->u.bin.op));
		if (n->u.bin.return_bool)
			strbuf_puts(out, " bool");
		if (vm != NULL && (vm->matching.n > 0 || vm->on)) {
			strbuf_puts(out, vm->on ? " on (" : " ignoring (");
			put_names(&vm->matching, out);
			strbuf_putc(out, ')');
			if (vm->card == PROMQL_CARD_MANY_TO_ONE || vm->card == PROMQL_CARD_ONE_TO_MANY) {
				strbuf_puts(out, vm->card == PROMQL_CARD_MANY_TO_ONE ?
				    " group_left (" : " group_right (");
				put_names(&vm->include, out);
				strbuf_putc(out, ')');
			}
		}
		strbuf_putc(out, ' ');
		promql_node_format(n->u.bin.rhs, out);
		break;
	}
	case PROMQL_CALL:
		strbuf_puts(out, n->u.call.func->name);
		strbuf_putc(out, '(');
		for (i = 0; i < n->u.call.nargs; i++) {
			if (i > 0)
				strbuf_puts(out, ", ");
			promql_node_format(n->u.call.args[i], out);
		}
		strbuf_putc(out, ')');
		break;
	case PROMQL_MATRIX_SELECTOR: {
		const struct promql_node *vs = n->u.msel.vs;

		if (vs->kind == PROMQL_VECTOR_SELECTOR)
			put_selector(vs, false, out);
		else
			promql_node_format(vs, out);
		strbuf_putc(out, '[');
		put_duration(n->u.msel.range, out);
		strbuf_putc(out, ']');
		if (vs->kind == PROMQL_VECTOR_SELECTOR)
			put_at_offset(&vs->u.vs.at, vs->u.vs.offset, out);
		break;
	}
	case PROMQL_SUBQUERY:
		promql_node_format(n->u.subq.expr, out);
		strbuf_putc(out, '[');
		put_duration(n->u.subq.range, out);
		strbuf_putc(out, ':');
		if (n->u.subq.step != 0)
			put_duration(n->u.subq.step, out);
		strbuf_putc(out, ']');
		put_at_offset(&n->u.subq.at, n->u.subq.offset, out);
		break;
	case PROMQL_NUMBER:
		promql_format_float(n->u.num.val, 'g', out);
		break;
	case PROMQL_PAREN:
		strbuf_putc(out, '(');
		promql_node_format(n->u.paren.expr, out);
		strbuf_putc(out, ')');
		break;
	case PROMQL_STRING:
		labels_quote(n->u.str.val, n->u.str.len, out);
		break;
	case PROMQL_UNARY:
		strbuf_puts(out, promql_tok_string(n->u.unary.op));
		promql_node_format(n->u.unary.expr, out);
		break;
	case PROMQL_VECTOR_SELECTOR:
		put_selector(n, true, out);
		break;
	case PROMQL_STEP_INVARIANT:
		promql_node_format(n->u.inv.expr, out);
		break;
	}
}
