/* lib/promql/engine.c - PromQL evaluation with Prometheus 2.42 semantics.
 *
 * Like Prometheus' evaluator, every node is evaluated over the whole range
 * of steps at once into a matrix (series with one point per step); nodes
 * whose result does not depend on the step (an @ modifier fixes their
 * time) are evaluated once and replicated, exactly where PreprocessExpr
 * would wrap them in a StepInvariantExpr. Operators, aggregations and
 * functions of instant vectors run step by step over vectors (range_eval);
 * functions of range vectors slide a window over each series, read from
 * storage or from a subquery's result. Staleness markers end a series in
 * the lookback, and never enter a range. The sample accounting follows
 * Prometheus' so that --query.max-samples trips where it trips there.
 *
 * Memory: each query allocates through pq_alloc (blocks linked into the
 * query) and pools the label sets it holds; errors longjmp to the query's
 * top, which releases everything, including open series sets. One thread
 * runs a query; the engine itself is read-only and shared.
 */
#include "config.h"

#include "promql/engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/internal.h"
#include "promql/parse.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

struct promql_engine {
	struct promql_engine_opts o;
};

struct pq_blk {
	struct pq_blk *prev, *next;
	size_t size, pad;
};

enum { OPEN_SET, OPEN_REGEX };

struct pq_open {
	struct pq_open *next;
	int kind;
	void *p;
	const struct promql_series_set_ops *ops;
};

/* ---- query memory, pool, errors -------------------------------------- */

void
pq_fail(struct evaluator *ev, enum promql_errclass cls, const char *fmt, ...)
{
	struct pq_query *q = ev->q;
	va_list ap;

	q->err->cls = cls;
	va_start(ap, fmt);
	vsnprintf(q->err->msg, sizeof(q->err->msg), fmt, ap);
	va_end(ap);
	longjmp(q->jb, 1);
}

void *
pq_alloc(struct pq_query *q, size_t n)
{
	struct pq_blk *b = mem_alloc(sizeof(*b) + n);

	b->size = n;
	b->prev = NULL;
	b->next = q->blocks;
	if (q->blocks != NULL)
		q->blocks->prev = b;
	q->blocks = b;
	return b + 1;
}

static void
blk_unlink(struct pq_query *q, struct pq_blk *b)
{
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		q->blocks = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
}

void
pq_free(struct pq_query *q, void *p)
{
	struct pq_blk *b;

	if (p == NULL)
		return;
	b = (struct pq_blk *)p - 1;
	blk_unlink(q, b);
	mem_free(b);
}

void *
pq_realloc(struct pq_query *q, void *p, size_t n)
{
	struct pq_blk *b;

	if (p == NULL)
		return pq_alloc(q, n);
	b = (struct pq_blk *)p - 1;
	blk_unlink(q, b);
	b = mem_realloc(b, sizeof(*b) + n);
	b->size = n;
	b->prev = NULL;
	b->next = q->blocks;
	if (q->blocks != NULL)
		q->blocks->prev = b;
	q->blocks = b;
	return b + 1;
}

struct labels *
pq_pool(struct pq_query *q, struct labels *ls)
{
	if (q->npool == q->cappool) {
		q->cappool = q->cappool ? q->cappool * 2 : 64;
		q->pool = mem_realloc(q->pool, q->cappool * sizeof(*q->pool));
	}
	q->pool[q->npool++] = ls;
	return ls;
}

struct labels *
pq_labels(struct pq_query *q, const struct label *v, size_t n)
{
	return pq_pool(q, labels_new(v, n));
}

static void
open_add(struct pq_query *q, int kind, void *p, const struct promql_series_set_ops *ops)
{
	struct pq_open *o = mem_alloc(sizeof(*o));

	o->kind = kind;
	o->p = p;
	o->ops = ops;
	o->next = q->open;
	q->open = o;
}

static void
open_close(struct pq_query *q, void *p)
{
	struct pq_open **pp, *o;

	for (pp = &q->open; (o = *pp) != NULL; pp = &o->next) {
		if (o->p == p) {
			*pp = o->next;
			if (o->kind == OPEN_SET)
				o->ops->free(o->p);
			else
				regex_free(o->p);
			mem_free(o);
			return;
		}
	}
}

void
pq_regex_track(struct pq_query *q, struct regex *re)
{
	open_add(q, OPEN_REGEX, re, NULL);
}

bool
pq_is_stale(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b == PQ_STALE_NAN_BITS;
}

static void
check_ctx(struct evaluator *ev, const char *env)
{
	struct pq_query *q = ev->q;

	if (q->cancel != NULL && *q->cancel)
		pq_fail(ev, PROMQL_ERR_CANCELED, "query was canceled in %s", env);
	if (q->deadline != 0 && time_mono_ns() > q->deadline)
		pq_fail(ev, PROMQL_ERR_TIMEOUT, "query timed out in %s", env);
}

/* fail_sb fails with the text of sb, which it frees first. */
static void fail_sb(struct evaluator *ev, enum promql_errclass cls, struct strbuf *sb)
	__attribute__((noreturn));

static void
fail_sb(struct evaluator *ev, enum promql_errclass cls, struct strbuf *sb)
{
	char msg[sizeof(((struct promql_error *)0)->msg)];

	snprintf(msg, sizeof(msg), "%s", strbuf_cstr(sb));
	strbuf_free(sb);
	pq_fail(ev, cls, "%s", msg);
}

static void
too_many_samples(struct evaluator *ev)
{
	pq_fail(ev, PROMQL_ERR_EXECUTION,
	    "query processing would load too many samples into memory in query execution");
}

/* ---- maps ----------------------------------------------------------------- */

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void
pq_map_init(struct pq_query *q, struct pq_map *m, size_t hint)
{
	size_t cap = 16;

	while (cap < hint * 2)
		cap *= 2;
	m->cap = cap;
	m->n = 0;
	m->keys = pq_alloc(q, cap * sizeof(*m->keys));
	m->vals = pq_alloc(q, cap * sizeof(*m->vals));
	m->used = pq_alloc(q, cap);
	memset(m->used, 0, cap);
}

void
pq_map_clear(struct pq_map *m)
{
	if (m->n > 0)
		memset(m->used, 0, m->cap);
	m->n = 0;
}

void
pq_map_free(struct pq_query *q, struct pq_map *m)
{
	pq_free(q, m->keys);
	pq_free(q, m->vals);
	pq_free(q, m->used);
	memset(m, 0, sizeof(*m));
}

uint64_t *
pq_map_get(const struct pq_map *m, uint64_t key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = mix64(key) & (m->cap - 1); m->used[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			return &m->vals[i];
	return NULL;
}

static void
map_grow(struct pq_query *q, struct pq_map *m)
{
	struct pq_map nm;
	size_t i;

	pq_map_init(q, &nm, m->cap);
	for (i = 0; i < m->cap; i++) {
		if (m->used[i]) {
			bool found;

			*pq_map_put(q, &nm, m->keys[i], &found) = m->vals[i];
		}
	}
	pq_map_free(q, m);
	*m = nm;
}

uint64_t *
pq_map_put(struct pq_query *q, struct pq_map *m, uint64_t key, bool *found)
{
	size_t i;

	if (m->cap == 0)
		pq_map_init(q, m, 8);
	if ((m->n + 1) * 2 > m->cap)
		map_grow(q, m);
	for (i = mix64(key) & (m->cap - 1); m->used[i]; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			*found = true;
			return &m->vals[i];
		}
	}
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = 0;
	m->n++;
	*found = false;
	return &m->vals[i];
}

/* ---- labels --------------------------------------------------------------- */

static struct label *
lbuf(struct pq_query *q, size_t n)
{
	if (n > q->lbufcap) {
		q->lbufcap = n + 16;
		q->lbuf = mem_realloc(q->lbuf, q->lbufcap * sizeof(*q->lbuf));
	}
	return q->lbuf;
}

struct labels *
pq_drop_name(struct pq_query *q, struct labels *ls)
{
	struct label *v;
	size_t i, n = 0;

	if (labels_get(ls, LABEL_METRIC_NAME) == NULL)
		return ls;
	v = lbuf(q, ls->n);
	for (i = 0; i < ls->n; i++)
		if (strcmp(ls->v[i].name, LABEL_METRIC_NAME) != 0)
			v[n++] = ls->v[i];
	return pq_labels(q, v, n);
}

struct labels *
pq_drop_name_cached(struct pq_call *c, struct labels *ls)
{
	uint64_t *slot;
	bool found;
	struct labels *r;

	slot = pq_map_put(c->ev->q, &c->cache, (uint64_t)(uintptr_t)ls, &found);
	if (found)
		return (struct labels *)(uintptr_t)*slot;
	r = pq_drop_name(c->ev->q, ls);
	/* the map may have grown: look the slot up again */
	*pq_map_put(c->ev->q, &c->cache, (uint64_t)(uintptr_t)ls, &found) = (uint64_t)(uintptr_t)r;
	return r;
}

static bool
name_in(const char *name, const struct promql_names *ns)
{
	return promql_names_has(ns, name);
}

/* hash_subset hashes the labels of ls that are in names (on) or not in
 * names and not __name__ (!on). */
static uint64_t
hash_subset(struct pq_query *q, const struct labels *ls, const struct promql_names *names, bool on)
{
	struct label *v = lbuf(q, ls->n);
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++) {
		bool in = name_in(ls->v[i].name, names);

		if (on ? in : (!in && strcmp(ls->v[i].name, LABEL_METRIC_NAME) != 0))
			v[n++] = ls->v[i];
	}
	return labels_hash(v, n);
}

/* keep_or_del returns ls with only the labels in names (keep) or without
 * them (!keep); drop_name also removes __name__. */
static struct labels *
keep_or_del(struct pq_query *q, struct labels *ls, const struct promql_names *names,
    bool keep, bool drop_name)
{
	struct label *v = lbuf(q, ls->n);
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++) {
		bool in = name_in(ls->v[i].name, names);

		if (drop_name && strcmp(ls->v[i].name, LABEL_METRIC_NAME) == 0)
			continue;
		if (keep ? in : !in)
			v[n++] = ls->v[i];
	}
	if (n == ls->n)
		return ls;
	return pq_labels(q, v, n);
}

/* set_label returns ls with name set to value (deleted when value is ""). */
static struct labels *
set_label(struct pq_query *q, struct labels *ls, const char *name, const char *value)
{
	struct label *v = lbuf(q, ls->n + 1);
	size_t i, n = 0;
	bool done = false;

	for (i = 0; i < ls->n; i++) {
		int c = strcmp(ls->v[i].name, name);

		if (c == 0) {
			done = true;
			if (value[0] != '\0') {
				v[n].name = ls->v[i].name;
				v[n++].value = value;
			}
			continue;
		}
		if (c > 0 && !done) {
			done = true;
			if (value[0] != '\0') {
				v[n].name = name;
				v[n++].value = value;
			}
		}
		v[n++] = ls->v[i];
	}
	if (!done && value[0] != '\0') {
		v[n].name = name;
		v[n++].value = value;
	}
	return pq_labels(q, v, n);
}

/* ---- vectors and matrices --------------------------------------------- */

void
pq_vec_push(struct pq_query *q, struct pq_vector *v, struct labels *ls, double val)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->s = pq_realloc(q, v->s, v->cap * sizeof(*v->s));
	}
	v->s[v->n].ls = ls;
	v->s[v->n].v = val;
	v->s[v->n].t = 0;
	v->s[v->n].h = 0;
	v->n++;
}

static void
series_push(struct pq_query *q, struct pq_series *s, int64_t t, double v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->p = pq_realloc(q, s->p, s->cap * sizeof(*s->p));
	}
	s->p[s->n].t = t;
	s->p[s->n].v = v;
	s->n++;
}

static struct pq_series *
matrix_add(struct pq_query *q, struct pq_matrix *m, struct labels *ls)
{
	struct pq_series *s;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 8;
		m->s = pq_realloc(q, m->s, m->cap * sizeof(*m->s));
	}
	s = &m->s[m->n++];
	memset(s, 0, sizeof(*s));
	s->ls = ls;
	return s;
}

static void
matrix_free(struct pq_query *q, struct pq_matrix *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		pq_free(q, m->s[i].p);
	pq_free(q, m->s);
	memset(m, 0, sizeof(*m));
}

static size_t
matrix_samples(const struct pq_matrix *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++)
		n += m->s[i].n;
	return n;
}

/* has_dup_labels tells whether two of the n label sets are equal. */
static bool
has_dup_labels(struct pq_query *q, struct labels *const *ls, size_t n, size_t stride)
{
	struct pq_map m = { 0 };
	size_t i;
	bool dup = false;

	if (n < 2)
		return false;
	if (n == 2)
		return labels_equal(ls[0], *(struct labels *const *)((const char *)ls + stride));
	pq_map_init(q, &m, n);
	for (i = 0; i < n && !dup; i++) {
		struct labels *l = *(struct labels *const *)((const char *)ls + i * stride);
		bool found;
		uint64_t *slot = pq_map_put(q, &m, l->hash, &found);

		if (found && labels_equal((struct labels *)(uintptr_t)*slot, l))
			dup = true;
		else if (!found)
			*slot = (uint64_t)(uintptr_t)l;
	}
	pq_map_free(q, &m);
	return dup;
}

static void
check_vector_dups(struct evaluator *ev, const struct pq_vector *v)
{
	if (v->n > 1 && has_dup_labels(ev->q, &v->s[0].ls, v->n, sizeof(v->s[0])))
		pq_fail(ev, PROMQL_ERR_EXECUTION, "vector cannot contain metrics with the same labelset");
}

static void
check_matrix_dups(struct evaluator *ev, const struct pq_matrix *m)
{
	if (m->n > 1 && has_dup_labels(ev->q, &m->s[0].ls, m->n, sizeof(m->s[0])))
		pq_fail(ev, PROMQL_ERR_EXECUTION, "vector cannot contain metrics with the same labelset");
}

/* ---- nodes ---------------------------------------------------------------- */

static const struct promql_node *
unwrap_parens(const struct promql_node *n)
{
	while (n != NULL && n->kind == PROMQL_PAREN)
		n = n->u.paren.expr;
	return n;
}

const char *
pq_string_arg(const struct promql_node *n)
{
	n = unwrap_parens(n);
	return n->u.str.val;
}

static bool
is_at_unsafe(enum promql_function_id id)
{
	switch (id) {
	case PROMQL_FN_DAYS_IN_MONTH:
	case PROMQL_FN_DAY_OF_MONTH:
	case PROMQL_FN_DAY_OF_WEEK:
	case PROMQL_FN_DAY_OF_YEAR:
	case PROMQL_FN_HOUR:
	case PROMQL_FN_MINUTE:
	case PROMQL_FN_MONTH:
	case PROMQL_FN_YEAR:
	case PROMQL_FN_PREDICT_LINEAR:
	case PROMQL_FN_TIME:
	case PROMQL_FN_TIMESTAMP:
		return true;
	default:
		return false;
	}
}

/* preprocess marks the nodes Prometheus' PreprocessExpr wraps in a
 * StepInvariantExpr; returns whether n itself is step invariant. */
static bool
preprocess(struct promql_node *n)
{
	size_t i;

	n->step_invariant = false;
	switch (n->kind) {
	case PROMQL_VECTOR_SELECTOR:
		return n->u.vs.at.has_ts || n->u.vs.at.start_or_end != 0;
	case PROMQL_AGGREGATE:
		if (n->u.agg.param != NULL)
			preprocess(n->u.agg.param);
		/* Prometheus looks at the aggregated expression only */
		if (n->u.agg.param != NULL)
			n->u.agg.param->step_invariant = false;
		return preprocess(n->u.agg.expr);
	case PROMQL_BINARY: {
		bool a = preprocess(n->u.bin.lhs), b = preprocess(n->u.bin.rhs);

		if (a && b)
			return true;
		n->u.bin.lhs->step_invariant = a;
		n->u.bin.rhs->step_invariant = b;
		return false;
	}
	case PROMQL_CALL: {
		bool inv = !is_at_unsafe(n->u.call.func->id);
		bool flags[8] = { false };

		for (i = 0; i < n->u.call.nargs; i++) {
			bool f = preprocess(n->u.call.args[i]);

			if (i < 8)
				flags[i] = f;
			inv = inv && f;
		}
		if (inv)
			return true;
		for (i = 0; i < n->u.call.nargs && i < 8; i++)
			n->u.call.args[i]->step_invariant = flags[i];
		return false;
	}
	case PROMQL_MATRIX_SELECTOR:
		return preprocess(n->u.msel.vs);
	case PROMQL_SUBQUERY:
		if (preprocess(n->u.subq.expr))
			n->u.subq.expr->step_invariant = true;
		return n->u.subq.at.has_ts || n->u.subq.at.start_or_end != 0;
	case PROMQL_PAREN:
		return preprocess(n->u.paren.expr);
	case PROMQL_UNARY:
		return preprocess(n->u.unary.expr);
	case PROMQL_STRING:
	case PROMQL_NUMBER:
		return true;
	case PROMQL_STEP_INVARIANT:
		return preprocess(n->u.inv.expr);
	}
	return false;
}

static bool
at_time(const struct evaluator *ev, const struct promql_at *at, int64_t *t)
{
	if (at->has_ts) {
		*t = at->ts;
		return true;
	}
	if (at->start_or_end == PROMQL_T_START) {
		*t = ev->q->qstart;
		return true;
	}
	if (at->start_or_end == PROMQL_T_END) {
		*t = ev->q->qend;
		return true;
	}
	return false;
}

/* find_min_max computes the time range Prometheus' findMinMaxTime gives
 * the query's querier: for every selector, its evaluation times moved by
 * the enclosing subqueries' ranges and offsets (or fixed by @), less the
 * lookback or its range, less its offset. */
struct subq_path {
	int64_t off, range, ts;
	bool has_ts;
};

static void
find_min_max(const struct evaluator *ev, const struct promql_node *n, struct subq_path sp,
    int64_t eval_range, int64_t *min, int64_t *max, bool *any)
{
	size_t i;

	switch (n->kind) {
	case PROMQL_VECTOR_SELECTOR: {
		int64_t start = ev->start, end = ev->end, at = 0;

		if (sp.has_ts)
			start = end = sp.ts;
		if (at_time(ev, &n->u.vs.at, &at)) {
			start = end = at;
		} else {
			start -= sp.off + sp.range;
			end -= sp.off;
		}
		start -= eval_range == 0 ? ev->q->lookback : eval_range;
		start -= n->u.vs.offset;
		end -= n->u.vs.offset;
		if (!*any || start < *min)
			*min = start;
		if (!*any || end > *max)
			*max = end;
		*any = true;
		return;
	}
	case PROMQL_MATRIX_SELECTOR:
		find_min_max(ev, n->u.msel.vs, sp, n->u.msel.range, min, max, any);
		return;
	case PROMQL_SUBQUERY: {
		int64_t at = 0;

		sp.off += n->u.subq.offset;
		sp.range += n->u.subq.range;
		if (at_time(ev, &n->u.subq.at, &at)) {
			sp.off = n->u.subq.offset;
			sp.range = n->u.subq.range;
			sp.ts = at;
			sp.has_ts = true;
		}
		find_min_max(ev, n->u.subq.expr, sp, 0, min, max, any);
		return;
	}
	case PROMQL_AGGREGATE:
		find_min_max(ev, n->u.agg.expr, sp, 0, min, max, any);
		if (n->u.agg.param != NULL)
			find_min_max(ev, n->u.agg.param, sp, 0, min, max, any);
		return;
	case PROMQL_BINARY:
		find_min_max(ev, n->u.bin.lhs, sp, 0, min, max, any);
		find_min_max(ev, n->u.bin.rhs, sp, 0, min, max, any);
		return;
	case PROMQL_CALL:
		for (i = 0; i < n->u.call.nargs; i++)
			find_min_max(ev, n->u.call.args[i], sp, 0, min, max, any);
		return;
	case PROMQL_PAREN:
		find_min_max(ev, n->u.paren.expr, sp, 0, min, max, any);
		return;
	case PROMQL_UNARY:
		find_min_max(ev, n->u.unary.expr, sp, 0, min, max, any);
		return;
	case PROMQL_STEP_INVARIANT:
		find_min_max(ev, n->u.inv.expr, sp, 0, min, max, any);
		return;
	default:
		return;
	}
}

/* clamp_steps keeps ts += interval from wrapping past the last step. */
static void
clamp_steps(struct evaluator *ev)
{
	if (ev->end > INT64_MAX - ev->interval)
		ev->end = INT64_MAX - ev->interval;
}

/* ---- evaluation ----------------------------------------------------------- */

struct pq_value {
	enum promql_type type;	/* MATRIX (for every non-string) or STRING */
	struct pq_matrix m;
	const char *str;
};

static struct pq_matrix eval(struct evaluator *ev, const struct promql_node *n);

typedef void (*step_fn)(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin,
    int64_t ts, struct pq_vector *out);
typedef uint64_t (*prep_fn)(struct evaluator *ev, void *ctx, const struct labels *ls);

/* range_eval steps through [start, end], hands fn the samples of each
 * argument at the step, and collects fn's output into a matrix. It takes
 * ownership of the args; orig is the sample count before they were
 * evaluated. */
static struct pq_matrix
range_eval(struct evaluator *ev, step_fn fn, void *ctx, prep_fn prep, struct pq_matrix *args,
    size_t nargs, long orig)
{
	struct pq_query *q = ev->q;
	struct pq_vector *in = NULL, out = { 0 };
	uint64_t **helpers = NULL;
	struct pq_matrix res = { 0 };
	struct pq_map idx = { 0 };
	long temp;
	int64_t ts;
	size_t i, j;

	if (nargs > 0) {
		in = pq_alloc(q, nargs * sizeof(*in));
		memset(in, 0, nargs * sizeof(*in));
		helpers = pq_alloc(q, nargs * sizeof(*helpers));
	}
	for (i = 0; i < nargs; i++) {
		in[i].cap = args[i].n > 0 ? args[i].n : 1;
		in[i].s = pq_alloc(q, in[i].cap * sizeof(*in[i].s));
		helpers[i] = NULL;
		for (j = 0; j < args[i].n; j++)
			args[i].s[j].cur = 0;
		if (prep != NULL && args[i].n > 0) {
			helpers[i] = pq_alloc(q, args[i].n * sizeof(**helpers));
			for (j = 0; j < args[i].n; j++)
				helpers[i][j] = prep(ev, ctx, args[i].s[j].ls);
		}
	}
	temp = ev->cur;
	for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
		check_ctx(ev, "expression evaluation");
		ev->cur = temp;
		for (i = 0; i < nargs; i++) {
			in[i].n = 0;
			for (j = 0; j < args[i].n; j++) {
				struct pq_series *s = &args[i].s[j];
				struct pq_sample *o;

				if (s->cur >= s->n || s->p[s->cur].t != ts)
					continue;
				if (ev->cur >= q->max_samples)
					too_many_samples(ev);
				o = &in[i].s[in[i].n++];
				o->ls = s->ls;
				o->v = s->p[s->cur].v;
				o->t = ts;
				o->h = helpers[i] != NULL ? helpers[i][j] : 0;
				s->cur++;
				ev->cur++;
			}
		}
		out.n = 0;
		fn(ev, ctx, in, nargs, ts, &out);
		check_vector_dups(ev, &out);
		ev->cur += (long)out.n;
		temp += (long)out.n;
		if (ev->cur > q->max_samples)
			too_many_samples(ev);
		if (ev->start == ev->end) {
			for (i = 0; i < out.n; i++)
				series_push(q, matrix_add(q, &res, out.s[i].ls), ts, out.s[i].v);
			ev->cur = orig + (long)out.n;
			goto done;
		}
		for (i = 0; i < out.n; i++) {
			struct labels *ls = out.s[i].ls;
			bool found;
			uint64_t *slot = pq_map_put(q, &idx, ls->hash, &found);
			struct pq_series *s;

			if (!found) {
				*slot = res.n;
				s = matrix_add(q, &res, ls);
			} else {
				s = &res.s[*slot];
			}
			series_push(q, s, ts, out.s[i].v);
		}
	}
	ev->cur = orig + (long)matrix_samples(&res);
done:
	for (i = 0; i < nargs; i++) {
		pq_free(q, in[i].s);
		pq_free(q, helpers[i]);
		matrix_free(q, &args[i]);
	}
	pq_free(q, in);
	pq_free(q, helpers);
	pq_free(q, out.s);
	pq_map_free(q, &idx);
	return res;
}

static int64_t
num_steps(const struct evaluator *ev)
{
	if (ev->end < ev->start)
		return 0;
	return (ev->end - ev->start) / ev->interval + 1;
}

/* ---- selectors ---------------------------------------------------------- */

/* A cursor over the samples of the series of a selection (storage) or of
 * an evaluated matrix (subquery). */
struct src {
	void *set;
	const struct promql_series_set_ops *ops;
	const struct pq_matrix *m;
	size_t mi;
	const struct pq_point *mp;
	size_t mn, mpos;
	bool have;
	int64_t nt;
	double nv;
	int64_t gmin, gmax;	/* the query's sample range (storage only) */
};

static void *
do_select(struct evaluator *ev, const struct promql_node *vs, int64_t mint, int64_t maxt,
    const struct promql_series_set_ops **ops)
{
	char err[512];
	void *set;

	/* Prometheus opens one querier for the whole query: no selector sees
	 * samples outside of it */
	if (mint < ev->q->gmin)
		mint = ev->q->gmin;
	if (maxt > ev->q->gmax)
		maxt = ev->q->gmax;
	set = ev->q->st->select(ev->q->st->ctx, vs->u.vs.ms, vs->u.vs.nms, mint, maxt,
	    ops, err, sizeof(err));

	if (set == NULL)
		pq_fail(ev, PROMQL_ERR_STORAGE, "expanding series: %s", err);
	open_add(ev->q, OPEN_SET, set, *ops);
	return set;
}

static bool
src_next_series(struct src *s, struct labels **ls)
{
	s->have = false;
	if (s->set != NULL) {
		if (!s->ops->next(s->set))
			return false;
		*ls = (struct labels *)s->ops->labels(s->set);
		return true;
	}
	if (s->mi >= s->m->n)
		return false;
	*ls = s->m->s[s->mi].ls;
	s->mp = s->m->s[s->mi].p;
	s->mn = s->m->s[s->mi].n;
	s->mpos = 0;
	s->mi++;
	return true;
}

static bool
src_peek(struct src *s, int64_t *t, double *v)
{
	if (!s->have) {
		if (s->set != NULL) {
			do {
				if (!s->ops->sample_next(s->set, &s->nt, &s->nv))
					return false;
			} while (s->nt < s->gmin);
			if (s->nt > s->gmax)
				return false;
		} else {
			if (s->mpos >= s->mn)
				return false;
			s->nt = s->mp[s->mpos].t;
			s->nv = s->mp[s->mpos].v;
			s->mpos++;
		}
		s->have = true;
	}
	*t = s->nt;
	*v = s->nv;
	return true;
}

static __attribute__((noinline)) struct pq_matrix
eval_vector_selector(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	struct pq_matrix res = { 0 };
	struct src s = { 0 };
	struct labels *ls;
	int64_t at = 0, off = n->u.vs.offset, ref0, ref1;
	bool has_at = at_time(ev, &n->u.vs.at, &at);

	ref0 = (has_at ? at : ev->start) - off;
	ref1 = (has_at ? at : ev->end) - off;
	s.set = do_select(ev, n, ref0 - q->lookback, ref1, &s.ops);
	s.gmin = q->gmin;
	s.gmax = q->gmax;
	while (src_next_series(&s, &ls)) {
		struct pq_series tmp = { 0 };
		bool have_prev = false;
		int64_t pt = 0, ts, t;
		double pv = 0, v;

		check_ctx(ev, "expression evaluation");
		for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
			int64_t ref = (has_at ? at : ts) - off;

			while (src_peek(&s, &t, &v) && t <= ref) {
				pt = t;
				pv = v;
				have_prev = true;
				s.have = false;
			}
			if (!have_prev || pt < ref - q->lookback || pq_is_stale(pv))
				continue;
			if (ev->cur >= q->max_samples)
				too_many_samples(ev);
			series_push(q, &tmp, ts, pv);
			ev->cur++;
		}
		if (tmp.n > 0) {
			struct pq_series *o = matrix_add(q, &res, pq_pool(q, labels_ref(ls)));

			o->p = tmp.p;
			o->n = tmp.n;
			o->cap = tmp.cap;
		}
	}
	open_close(q, s.set);
	return res;
}

/* eval_timestamp_vs evaluates timestamp(selector): the time of the sample
 * each step selects, rather than the step. */
static __attribute__((noinline)) struct pq_matrix
eval_timestamp_vs(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	struct pq_matrix res = { 0 };
	struct src s = { 0 };
	struct labels *ls;
	int64_t at = 0, off = n->u.vs.offset, ref0, ref1, ts;
	bool has_at = at_time(ev, &n->u.vs.at, &at);
	struct pq_map idx = { 0 };

	ref0 = (has_at ? at : ev->start) - off;
	ref1 = (has_at ? at : ev->end) - off;
	s.set = do_select(ev, n, ref0 - q->lookback, ref1, &s.ops);
	s.gmin = q->gmin;
	s.gmax = q->gmax;
	/* gather each series' step values, then emit step by step as
	 * rangeEval would, with the metric name dropped */
	{
		struct pq_matrix raw = { 0 };
		size_t i, k, nsteps = (size_t)num_steps(ev);
		struct pq_vector out = { 0 };

		while (src_next_series(&s, &ls)) {
			struct pq_series *rs = matrix_add(q, &raw, pq_drop_name(q, labels_ref(ls)));
			bool have_prev = false;
			int64_t pt = 0, t;
			double pv = 0, v;

			/* pq_drop_name returns its argument when there is no name */
			if (rs->ls == ls)
				pq_pool(q, rs->ls);
			else
				labels_free(ls);
			check_ctx(ev, "expression evaluation");
			for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
				int64_t ref = (has_at ? at : ts) - off;

				while (src_peek(&s, &t, &v) && t <= ref) {
					pt = t;
					pv = v;
					have_prev = true;
					s.have = false;
				}
				if (!have_prev || pt < ref - q->lookback || pq_is_stale(pv))
					continue;
				series_push(q, rs, ts, (double)pt / 1000.0);
			}
		}
		open_close(q, s.set);
		for (i = 0; i < raw.n; i++)
			raw.s[i].cur = 0;
		for (k = 0, ts = ev->start; k < nsteps; k++, ts += ev->interval) {
			check_ctx(ev, "expression evaluation");
			out.n = 0;
			for (i = 0; i < raw.n; i++) {
				struct pq_series *rs = &raw.s[i];

				if (rs->cur < rs->n && rs->p[rs->cur].t == ts) {
					ev->cur++;
					if (ev->cur > q->max_samples)
						too_many_samples(ev);
					pq_vec_push(q, &out, rs->ls, rs->p[rs->cur].v);
					rs->cur++;
				}
			}
			check_vector_dups(ev, &out);
			for (i = 0; i < out.n; i++) {
				bool found;
				uint64_t *slot = pq_map_put(q, &idx, out.s[i].ls->hash, &found);

				if (!found)
					*slot = res.n, matrix_add(q, &res, out.s[i].ls);
				series_push(q, &res.s[*slot], ts, out.s[i].v);
			}
		}
		pq_free(q, out.s);
		matrix_free(q, &raw);
		pq_map_free(q, &idx);
	}
	return res;
}

static __attribute__((noinline)) struct pq_matrix
eval_matrix_selector(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	const struct promql_node *vs = n->u.msel.vs;
	struct pq_matrix res = { 0 };
	struct src s = { 0 };
	struct labels *ls;
	int64_t at = 0, maxt, mint, t;
	bool has_at = at_time(ev, &vs->u.vs.at, &at);
	double v;

	if (ev->start != ev->end)
		pq_fail(ev, PROMQL_ERR_EXECUTION, "cannot do range evaluation of matrix selector");
	maxt = (has_at ? at : ev->start) - vs->u.vs.offset;
	mint = maxt - n->u.msel.range;
	s.set = do_select(ev, vs, mint, maxt, &s.ops);
	s.gmin = q->gmin;
	s.gmax = q->gmax;
	while (src_next_series(&s, &ls)) {
		struct pq_series tmp = { 0 };

		check_ctx(ev, "expression evaluation");
		while (src_peek(&s, &t, &v) && t <= maxt) {
			s.have = false;
			if (t < mint || pq_is_stale(v))
				continue;
			if (ev->cur >= q->max_samples)
				too_many_samples(ev);
			ev->cur++;
			series_push(q, &tmp, t, v);
		}
		if (tmp.n > 0) {
			struct pq_series *o = matrix_add(q, &res, pq_pool(q, labels_ref(ls)));

			o->p = tmp.p;
			o->n = tmp.n;
			o->cap = tmp.cap;
		}
	}
	open_close(q, s.set);
	return res;
}

/* eval_subquery evaluates a subquery's expression at its own steps. */
static __attribute__((noinline)) struct pq_matrix
eval_subquery(struct evaluator *ev, const struct promql_node *n)
{
	struct evaluator sub = *ev;
	struct pq_matrix res;
	int64_t at = 0, ref0, ref1, step, lo;
	bool has_at = at_time(ev, &n->u.subq.at, &at);

	step = n->u.subq.step != 0 ? n->u.subq.step : ev->q->subq_step;
	ref0 = (has_at ? at : ev->start) - n->u.subq.offset;
	/* with @, Prometheus' offset is relative to the evaluation start: a
	 * subquery evaluated for every step (under predict_linear) extends
	 * past the @ time by the evaluated range */
	ref1 = (has_at ? at + (ev->end - ev->start) : ev->end) - n->u.subq.offset;
	lo = ref0 - n->u.subq.range;
	sub.interval = step;
	/* Go's truncating division, then up to the next step */
	sub.start = step * (lo / step);
	if (sub.start < lo)
		sub.start += step;
	sub.end = ref1;
	clamp_steps(&sub);
	res = eval(&sub, n->u.subq.expr);
	ev->cur = sub.cur;
	return res;
}

static __attribute__((noinline)) struct pq_matrix
eval_step_invariant(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	struct evaluator sub = *ev;
	struct pq_matrix res;
	size_t i;
	int64_t ts;

	sub.end = sub.start;
	clamp_steps(&sub);
	/* evaluate the node itself once, without the annotation */
	{
		struct promql_node *mn = (struct promql_node *)(uintptr_t)n;

		mn->step_invariant = false;
		res = eval(&sub, n);
		mn->step_invariant = true;
	}
	ev->cur = sub.cur;
	if (n->kind == PROMQL_MATRIX_SELECTOR || n->kind == PROMQL_SUBQUERY)
		return res;
	for (i = 0; i < res.n; i++) {
		struct pq_series *s = &res.s[i];

		if (s->n != 1)
			pq_fail(ev, PROMQL_ERR_EXECUTION, "unexpected number of samples");
		if (ev->start >= ev->end)
			continue;
		for (ts = ev->start + ev->interval; ts <= ev->end; ts += ev->interval) {
			series_push(q, s, ts, s->p[0].v);
			ev->cur++;
			if (ev->cur > q->max_samples)
				too_many_samples(ev);
		}
	}
	return res;
}

/* ---- functions -------------------------------------------------------------- */

static void
call_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct pq_call *c = ctx;
	struct pq_vector *ins[8];
	size_t i;

	(void)ev;
	for (i = 0; i < nin && i < 8; i++)
		ins[i] = &in[i];
	c->ts = ts;
	c->out = out;
	pq_functions[c->node->u.call.func->id].vec(c, ins, nin);
}

struct labels *
pq_absent_labels(struct pq_query *q, const struct promql_node *n)
{
	const struct promql_node *vs;
	struct label *v;
	size_t i, j, k = 0;

	n = unwrap_parens(n);
	if (n->kind == PROMQL_VECTOR_SELECTOR)
		vs = n;
	else if (n->kind == PROMQL_MATRIX_SELECTOR)
		vs = n->u.msel.vs;
	else
		return labels_empty();
	v = lbuf(q, vs->u.vs.nms);
	/* equality matchers set a label once; a second matcher on it drops it */
	for (i = 0; i < vs->u.vs.nms; i++) {
		const struct matcher *m = vs->u.vs.ms[i];
		bool seen = false;

		if (strcmp(m->name, LABEL_METRIC_NAME) == 0)
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(vs->u.vs.ms[j]->name, m->name) == 0 &&
			    vs->u.vs.ms[j]->op == MATCH_EQUAL)
				seen = true;
		for (j = 0; j < k; j++)
			if (strcmp(v[j].name, m->name) == 0)
				break;
		if (m->op == MATCH_EQUAL && !seen && m->value[0] != '\0') {
			if (j < k) {
				v[j].value = m->value;
			} else {
				v[k].name = m->name;
				v[k++].value = m->value;
			}
		} else if (j < k) {
			memmove(&v[j], &v[j + 1], (k - j - 1) * sizeof(*v));
			k--;
		}
	}
	return pq_labels(q, v, k);
}

static __attribute__((noinline)) struct pq_matrix
eval_call_matrix(struct evaluator *ev, const struct promql_node *n, size_t mi)
{
	struct pq_query *q = ev->q;
	const struct promql_function *f = n->u.call.func;
	const struct promql_node *marg = unwrap_parens(n->u.call.args[mi]);
	struct pq_matrix res = { 0 }, others[5], subm = { 0 };
	struct src s = { 0 };
	struct pq_call c;
	struct labels *ls;
	struct pq_point *win = NULL;
	size_t wcap = 0, ws = 0, we = 0, j, nargs = n->u.call.nargs;
	int64_t at = 0, off, range, ts;
	bool has_at, is_subq = marg->kind == PROMQL_SUBQUERY;
	long subq_samples = 0;
	double sc[5] = { 0 };

	memset(&c, 0, sizeof(c));
	c.ev = ev;
	c.node = n;
	c.args = n->u.call.args;
	c.nargs = nargs;
	memset(others, 0, sizeof(others));
	if (is_subq) {
		subm = eval_subquery(ev, marg);
		subq_samples = (long)matrix_samples(&subm);
		has_at = at_time(ev, &marg->u.subq.at, &at);
		off = marg->u.subq.offset;
		range = marg->u.subq.range;
	} else {
		has_at = at_time(ev, &marg->u.msel.vs->u.vs.at, &at);
		off = marg->u.msel.vs->u.vs.offset;
		range = marg->u.msel.range;
	}
	for (j = 0; j < nargs && j < 5; j++)
		if (j != mi)
			others[j] = eval(ev, n->u.call.args[j]);
	if (is_subq) {
		s.m = &subm;
	} else {
		int64_t r0 = (has_at ? at : ev->start) - off;
		int64_t r1 = (has_at ? at + (ev->end - ev->start) : ev->end) - off;

		s.set = do_select(ev, marg->u.msel.vs, r0 - range, r1, &s.ops);
		s.gmin = q->gmin;
		s.gmax = q->gmax;
	}
	while (src_next_series(&s, &ls)) {
		struct pq_series tmp = { 0 };
		int64_t k, t;
		double v;

		check_ctx(ev, "expression evaluation");
		ev->cur -= (long)(we - ws);
		ws = we = 0;
		for (k = 0, ts = ev->start; ts <= ev->end; ts += ev->interval, k++) {
			/* With @, Prometheus turns the timestamp into an offset
			 * relative to the evaluation start: when the function is
			 * evaluated at every step (predict_linear), the window
			 * moves with the step. */
			int64_t maxt = (has_at ? at + (ts - ev->start) : ts) - off;
			int64_t mint = maxt - range;
			double out;

			for (j = 0; j < nargs && j < 5; j++) {
				if (j == mi)
					continue;
				sc[j] = others[j].n > 0 && (size_t)k < others[j].s[0].n ?
				    others[j].s[0].p[k].v : 0;
			}
			while (ws < we && win[ws].t < mint) {
				ws++;
				ev->cur--;
			}
			while (src_peek(&s, &t, &v) && t <= maxt) {
				s.have = false;
				if (pq_is_stale(v) || t < mint)
					continue;
				if (we == wcap) {
					if (ws > 0) {
						memmove(win, win + ws, (we - ws) * sizeof(*win));
						we -= ws;
						ws = 0;
					}
					if (we == wcap) {
						wcap = wcap ? wcap * 2 : 64;
						win = pq_realloc(q, win, wcap * sizeof(*win));
					}
				}
				if (ev->cur >= q->max_samples)
					too_many_samples(ev);
				ev->cur++;
				win[we].t = t;
				win[we].v = v;
				we++;
			}
			if (ws == we)
				continue;
			c.ts = ts;
			if (pq_functions[f->id].mat(&c, win + ws, we - ws, mint, maxt, range, sc, &out))
				series_push(q, &tmp, ts, out);
		}
		if (tmp.n > 0) {
			struct labels *ol;
			struct pq_series *o;

			if (ev->cur + (long)tmp.n > q->max_samples)
				too_many_samples(ev);
			ev->cur += (long)tmp.n;
			if (s.set != NULL)
				ls = pq_pool(q, labels_ref(ls));
			ol = f->id == PROMQL_FN_LAST_OVER_TIME ? ls : pq_drop_name(q, ls);
			o = matrix_add(q, &res, ol);
			o->p = tmp.p;
			o->n = tmp.n;
			o->cap = tmp.cap;
		}
	}
	ev->cur -= (long)(we - ws);
	pq_free(q, win);
	if (s.set != NULL)
		open_close(q, s.set);
	for (j = 0; j < 5; j++)
		matrix_free(q, &others[j]);
	if (is_subq) {
		matrix_free(q, &subm);
		ev->cur -= subq_samples;
	}
	pq_map_free(q, &c.cache);

	if (f->id == PROMQL_FN_ABSENT_OVER_TIME) {
		int64_t steps = num_steps(ev);
		struct pq_map found = { 0 };
		struct pq_matrix out = { 0 };
		struct pq_series *os;
		size_t i, p;

		for (i = 0; i < res.n; i++) {
			if ((int64_t)res.s[i].n == steps) {
				matrix_free(q, &res);
				return out;
			}
		}
		for (i = 0; i < res.n; i++) {
			for (p = 0; p < res.s[i].n; p++) {
				bool fnd;

				pq_map_put(q, &found, (uint64_t)res.s[i].p[p].t, &fnd);
			}
			if (i > 0 && (int64_t)found.n == steps) {
				matrix_free(q, &res);
				pq_map_free(q, &found);
				return out;
			}
		}
		os = matrix_add(q, &out, pq_absent_labels(q, n->u.call.args[0]));
		for (ts = ev->start; ts <= ev->end; ts += ev->interval)
			if (pq_map_get(&found, (uint64_t)ts) == NULL)
				series_push(q, os, ts, 1);
		pq_map_free(q, &found);
		matrix_free(q, &res);
		return out;
	}
	check_matrix_dups(ev, &res);
	return res;
}

static __attribute__((noinline)) struct pq_matrix
eval_call(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	const struct promql_function *f = n->u.call.func;
	struct pq_matrix args[8], res;
	struct pq_call *cp;
	size_t i, nargs = n->u.call.nargs;
	long orig;

	if (f->id == PROMQL_FN_TIMESTAMP) {
		const struct promql_node *a = unwrap_parens(n->u.call.args[0]);

		if (a->kind == PROMQL_VECTOR_SELECTOR)
			return eval_timestamp_vs(ev, a);
	}
	for (i = 0; i < nargs; i++) {
		const struct promql_node *a = unwrap_parens(n->u.call.args[i]);

		if (a->kind == PROMQL_MATRIX_SELECTOR || a->kind == PROMQL_SUBQUERY)
			return eval_call_matrix(ev, n, i);
	}
	if (nargs > 8)
		nargs = 8;
	orig = ev->cur;
	memset(args, 0, sizeof(args));
	for (i = 0; i < nargs; i++)
		if (promql_node_type(n->u.call.args[i]) != PROMQL_TYPE_STRING)
			args[i] = eval(ev, n->u.call.args[i]);
	cp = pq_alloc(q, sizeof(*cp));
	memset(cp, 0, sizeof(*cp));
	cp->ev = ev;
	cp->node = n;
	cp->args = n->u.call.args;
	cp->nargs = n->u.call.nargs;
	res = range_eval(ev, call_step, cp, NULL, args, nargs, orig);
	pq_map_free(q, &cp->cache);
	if (cp->re != NULL)
		open_close(q, cp->re);
	pq_free(q, cp);
	return res;
}

/* ---- binary operators ---------------------------------------------------- */

struct bin_ctx {
	const struct promql_node *n;
	struct pq_map sigs, matched;
	struct pq_map rcache;		/* (lhs, rhs) pair -> result metric index */
	struct {
		struct labels *l, *r, *res;
	} *rm;
	size_t nrm, caprm;
	struct pq_call dn;		/* drop-name cache */
};

static double
scalar_binop(enum promql_tok op, double l, double r)
{
	switch (op) {
	case PROMQL_T_ADD:
		return l + r;
	case PROMQL_T_SUB:
		return l - r;
	case PROMQL_T_MUL:
		return l * r;
	case PROMQL_T_DIV:
		return l / r;
	case PROMQL_T_POW:
		return pow(l, r);
	case PROMQL_T_MOD:
		return fmod(l, r);
	case PROMQL_T_EQLC:
		return l == r;
	case PROMQL_T_NEQ:
		return l != r;
	case PROMQL_T_GTR:
		return l > r;
	case PROMQL_T_LSS:
		return l < r;
	case PROMQL_T_GTE:
		return l >= r;
	case PROMQL_T_LTE:
		return l <= r;
	case PROMQL_T_ATAN2:
		return atan2(l, r);
	default:
		return NAN;
	}
}

/* elem_binop is vectorElemBinop: the value and whether to keep it. */
static double
elem_binop(enum promql_tok op, double l, double r, bool *keep)
{
	*keep = true;
	switch (op) {
	case PROMQL_T_EQLC:
		*keep = l == r;
		return l;
	case PROMQL_T_NEQ:
		*keep = l != r;
		return l;
	case PROMQL_T_GTR:
		*keep = l > r;
		return l;
	case PROMQL_T_LSS:
		*keep = l < r;
		return l;
	case PROMQL_T_GTE:
		*keep = l >= r;
		return l;
	case PROMQL_T_LTE:
		*keep = l <= r;
		return l;
	default:
		return scalar_binop(op, l, r);
	}
}

static bool
drops_name(enum promql_tok op)
{
	switch (op) {
	case PROMQL_T_ADD:
	case PROMQL_T_SUB:
	case PROMQL_T_DIV:
	case PROMQL_T_MUL:
	case PROMQL_T_POW:
	case PROMQL_T_MOD:
		return true;
	default:
		return false;
	}
}

static void
ss_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct bin_ctx *b = ctx;

	(void)nin;
	(void)ts;
	if (in[0].n == 0 || in[1].n == 0)
		return;
	pq_vec_push(ev->q, out, labels_empty(),
	    scalar_binop(b->n->u.bin.op, in[0].s[0].v, in[1].s[0].v));
}

static void
vs_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct bin_ctx *b = ctx;
	const struct promql_node *n = b->n;
	bool swap = promql_node_type(n->u.bin.lhs) == PROMQL_TYPE_SCALAR;
	struct pq_vector *vec = swap ? &in[1] : &in[0];
	struct pq_vector *sca = swap ? &in[0] : &in[1];
	enum promql_tok op = n->u.bin.op;
	double rv;
	size_t i;

	(void)nin;
	(void)ts;
	if (sca->n == 0)
		return;
	rv = sca->s[0].v;
	for (i = 0; i < vec->n; i++) {
		double l = vec->s[i].v, r = rv, val;
		bool keep;
		struct labels *ls = vec->s[i].ls;

		if (swap) {
			l = rv;
			r = vec->s[i].v;
		}
		val = elem_binop(op, l, r, &keep);
		if (promql_tok_is_comparison(op) && swap)
			val = r;
		if (n->u.bin.return_bool) {
			val = keep ? 1.0 : 0.0;
			keep = true;
		}
		if (!keep)
			continue;
		if (drops_name(op) || n->u.bin.return_bool)
			ls = pq_drop_name_cached(&b->dn, ls);
		pq_vec_push(ev->q, out, ls, val);
	}
}

static uint64_t
sig_prep(struct evaluator *ev, void *ctx, const struct labels *ls)
{
	struct bin_ctx *b = ctx;
	const struct promql_vector_matching *vm = b->n->u.bin.vm;

	return hash_subset(ev->q, ls, &vm->matching, vm->on);
}

static void
and_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct bin_ctx *b = ctx;
	struct pq_vector *l = &in[0], *r = &in[1];
	enum promql_tok op = b->n->u.bin.op;
	size_t i;
	bool found;

	(void)nin;
	(void)ts;
	pq_map_clear(&b->sigs);
	if (op == PROMQL_T_LAND) {
		if (l->n == 0 || r->n == 0)
			return;
		for (i = 0; i < r->n; i++)
			pq_map_put(ev->q, &b->sigs, r->s[i].h, &found);
		for (i = 0; i < l->n; i++)
			if (pq_map_get(&b->sigs, l->s[i].h) != NULL)
				pq_vec_push(ev->q, out, l->s[i].ls, l->s[i].v);
	} else if (op == PROMQL_T_LOR) {
		if (l->n == 0 || r->n == 0) {
			struct pq_vector *src = l->n == 0 ? r : l;

			for (i = 0; i < src->n; i++)
				pq_vec_push(ev->q, out, src->s[i].ls, src->s[i].v);
			return;
		}
		for (i = 0; i < l->n; i++) {
			pq_map_put(ev->q, &b->sigs, l->s[i].h, &found);
			pq_vec_push(ev->q, out, l->s[i].ls, l->s[i].v);
		}
		for (i = 0; i < r->n; i++)
			if (pq_map_get(&b->sigs, r->s[i].h) == NULL)
				pq_vec_push(ev->q, out, r->s[i].ls, r->s[i].v);
	} else {
		if (l->n == 0 || r->n == 0) {
			for (i = 0; i < l->n; i++)
				pq_vec_push(ev->q, out, l->s[i].ls, l->s[i].v);
			return;
		}
		for (i = 0; i < r->n; i++)
			pq_map_put(ev->q, &b->sigs, r->s[i].h, &found);
		for (i = 0; i < l->n; i++)
			if (pq_map_get(&b->sigs, l->s[i].h) == NULL)
				pq_vec_push(ev->q, out, l->s[i].ls, l->s[i].v);
	}
}

/* match_labels is Labels.MatchLabels: the labels matching is done on. */
static struct labels *
match_labels(struct pq_query *q, struct labels *ls, const struct promql_vector_matching *vm)
{
	struct label *v = lbuf(q, ls->n);
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++) {
		bool in = name_in(ls->v[i].name, &vm->matching);

		if (vm->on == in && (vm->on || strcmp(ls->v[i].name, LABEL_METRIC_NAME) != 0))
			v[n++] = ls->v[i];
	}
	return pq_labels(q, v, n);
}

static struct labels *
result_metric(struct pq_query *q, struct bin_ctx *b, struct labels *l, struct labels *r)
{
	const struct promql_vector_matching *vm = b->n->u.bin.vm;
	uint64_t key = mix64((uint64_t)(uintptr_t)l) ^ (uint64_t)(uintptr_t)r;
	uint64_t *slot;
	struct labels *res = l;
	bool found;
	size_t i;

	slot = pq_map_get(&b->rcache, key);
	if (slot != NULL && b->rm[*slot].l == l && b->rm[*slot].r == r)
		return b->rm[*slot].res;
	if (drops_name(b->n->u.bin.op))
		res = pq_drop_name(q, res);
	if (vm->card == PROMQL_CARD_ONE_TO_ONE)
		res = keep_or_del(q, res, &vm->matching, vm->on, false);
	for (i = 0; i < vm->include.n; i++) {
		const char *val = labels_get(r, vm->include.v[i]);

		res = set_label(q, res, vm->include.v[i], val != NULL ? val : "");
	}
	if (b->nrm == b->caprm) {
		b->caprm = b->caprm ? b->caprm * 2 : 16;
		b->rm = pq_realloc(q, b->rm, b->caprm * sizeof(*b->rm));
	}
	b->rm[b->nrm].l = l;
	b->rm[b->nrm].r = r;
	b->rm[b->nrm].res = res;
	*pq_map_put(q, &b->rcache, key, &found) = b->nrm++;
	return res;
}

static void
binop_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct bin_ctx *b = ctx;
	struct pq_query *q = ev->q;
	const struct promql_vector_matching *vm = b->n->u.bin.vm;
	struct pq_vector *lhs = &in[0], *rhs = &in[1];
	enum promql_tok op = b->n->u.bin.op;
	bool found;
	size_t i;

	(void)nin;
	(void)ts;
	if (lhs->n == 0 || rhs->n == 0)
		return;
	if (vm->card == PROMQL_CARD_ONE_TO_MANY) {
		struct pq_vector *t = lhs;

		lhs = rhs;
		rhs = t;
	}
	pq_map_clear(&b->sigs);
	for (i = 0; i < rhs->n; i++) {
		uint64_t *slot = pq_map_put(q, &b->sigs, rhs->s[i].h, &found);

		if (found) {
			struct strbuf m = STRBUF_INIT;

			strbuf_puts(&m, "found duplicate series for the match group ");
			labels_format(match_labels(q, rhs->s[i].ls, vm), &m);
			strbuf_printf(&m, " on the %s hand-side of the operation: [",
			    vm->card == PROMQL_CARD_ONE_TO_MANY ? "left" : "right");
			labels_format(rhs->s[i].ls, &m);
			strbuf_puts(&m, ", ");
			labels_format(rhs->s[*slot].ls, &m);
			strbuf_puts(&m, "];many-to-many matching not allowed: matching labels must be "
			    "unique on one side");
			fail_sb(ev, PROMQL_ERR_EXECUTION, &m);
		}
		*slot = i;
	}
	pq_map_clear(&b->matched);
	for (i = 0; i < lhs->n; i++) {
		uint64_t *slot = pq_map_get(&b->sigs, lhs->s[i].h);
		const struct pq_sample *ls = &lhs->s[i], *rs;
		double vl, vr, val;
		bool keep;
		struct labels *metric;

		if (slot == NULL)
			continue;
		rs = &rhs->s[*slot];
		vl = ls->v;
		vr = rs->v;
		if (vm->card == PROMQL_CARD_ONE_TO_MANY) {
			vl = rs->v;
			vr = ls->v;
		}
		val = elem_binop(op, vl, vr, &keep);
		if (b->n->u.bin.return_bool)
			val = keep ? 1.0 : 0.0;
		else if (!keep)
			continue;
		metric = result_metric(q, b, ls->ls, rs->ls);
		if (b->n->u.bin.return_bool)
			metric = pq_drop_name_cached(&b->dn, metric);
		if (vm->card == PROMQL_CARD_ONE_TO_ONE) {
			pq_map_put(q, &b->matched, ls->h, &found);
			if (found)
				pq_fail(ev, PROMQL_ERR_EXECUTION, "multiple matches for labels: many-to-one "
				    "matching must be explicit (group_left/group_right)");
		} else {
			pq_map_put(q, &b->matched, mix64(ls->h) ^ metric->hash, &found);
			if (found)
				pq_fail(ev, PROMQL_ERR_EXECUTION, "multiple matches for labels: grouping "
				    "labels must ensure unique matches");
		}
		pq_vec_push(q, out, metric, val);
	}
}

static __attribute__((noinline)) struct pq_matrix
eval_binary(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	enum promql_type lt = promql_node_type(n->u.bin.lhs), rt = promql_node_type(n->u.bin.rhs);
	struct pq_matrix args[2], res;
	struct bin_ctx *bp = pq_alloc(q, sizeof(*bp));
	long orig = ev->cur;
	step_fn fn;
	prep_fn prep = NULL;

	memset(bp, 0, sizeof(*bp));
	bp->n = n;
	bp->dn.ev = ev;
	args[0] = eval(ev, n->u.bin.lhs);
	args[1] = eval(ev, n->u.bin.rhs);
	if (lt == PROMQL_TYPE_SCALAR && rt == PROMQL_TYPE_SCALAR) {
		fn = ss_step;
	} else if (lt == PROMQL_TYPE_VECTOR && rt == PROMQL_TYPE_VECTOR) {
		prep = sig_prep;
		fn = promql_tok_is_set_op(n->u.bin.op) ? and_step : binop_step;
	} else {
		fn = vs_step;
	}
	res = range_eval(ev, fn, bp, prep, args, 2, orig);
	pq_map_free(q, &bp->sigs);
	pq_map_free(q, &bp->matched);
	pq_map_free(q, &bp->rcache);
	pq_map_free(q, &bp->dn.cache);
	pq_free(q, bp->rm);
	pq_free(q, bp);
	return res;
}

/* ---- aggregations -------------------------------------------------------- */

struct agg_elem {
	struct labels *ls;
	double v;
};

struct agg_group {
	struct labels *ls;
	double value, mean;
	long count;
	struct agg_elem *heap;	/* topk/bottomk/quantile */
	size_t nheap, capheap;
};

struct agg_ctx {
	const struct promql_node *n;
	struct promql_names grouping;	/* sorted, borrowed strings */
	const char *value_label;	/* count_values */
	struct pq_map groups;		/* key -> index into g */
	struct agg_group *g;
	size_t ng, capg;
	struct pq_map labels_cache;	/* key -> group labels */
	struct pq_map cv_cache;		/* count_values: (labels, value) -> labels */
};

/* heap_less orders topk's min-heap (NaN smallest) or, reversed, bottomk's. */
static bool
heap_less(const struct agg_elem *h, size_t i, size_t j, bool rev)
{
	if (isnan(h[i].v))
		return true;
	return rev ? h[i].v > h[j].v : h[i].v < h[j].v;
}

static void
heap_swap(struct agg_elem *h, size_t i, size_t j)
{
	struct agg_elem t = h[i];

	h[i] = h[j];
	h[j] = t;
}

static void
heap_up(struct agg_elem *h, size_t j, bool rev)
{
	while (j > 0) {
		size_t i = (j - 1) / 2;

		if (!heap_less(h, j, i, rev))
			break;
		heap_swap(h, i, j);
		j = i;
	}
}

static void
heap_down(struct agg_elem *h, size_t i, size_t n, bool rev)
{
	for (;;) {
		size_t j1 = 2 * i + 1, j;

		if (j1 >= n)
			break;
		j = j1;
		if (j1 + 1 < n && heap_less(h, j1 + 1, j1, rev))
			j = j1 + 1;
		if (!heap_less(h, j, i, rev))
			break;
		heap_swap(h, i, j);
		i = j;
	}
}

static void
group_heap_push(struct pq_query *q, struct agg_group *g, struct labels *ls, double v)
{
	if (g->nheap == g->capheap) {
		g->capheap = g->capheap ? g->capheap * 2 : 4;
		g->heap = pq_realloc(q, g->heap, g->capheap * sizeof(*g->heap));
	}
	g->heap[g->nheap].ls = ls;
	g->heap[g->nheap].v = v;
	g->nheap++;
}

/* sort_reverse sorts h as Go's sort.Sort(sort.Reverse(heap)): by
 * less(j, i); insertion sort (what Go uses for up to 12 elements), else a
 * stable merge sort. */
static void
sort_reverse(struct pq_query *q, struct agg_elem *h, size_t n, bool rev)
{
	size_t i, j;

	if (n <= 12) {
		for (i = 1; i < n; i++)
			for (j = i; j > 0 && heap_less(h, j - 1, j, rev); j--)
				heap_swap(h, j, j - 1);
		return;
	}
	{
		struct agg_elem *tmp = pq_alloc(q, n * sizeof(*tmp));
		size_t width;

		for (width = 1; width < n; width *= 2) {
			for (i = 0; i < n; i += 2 * width) {
				size_t lo = i, mid = i + width < n ? i + width : n;
				size_t hi = i + 2 * width < n ? i + 2 * width : n;
				size_t a = lo, b = mid, k = lo;

				while (a < mid && b < hi) {
					struct agg_elem pair[2] = { h[a], h[b] };

					/* take b first only when b sorts strictly before a */
					if (heap_less(pair, 0, 1, rev))
						tmp[k++] = h[b++];
					else
						tmp[k++] = h[a++];
				}
				while (a < mid)
					tmp[k++] = h[a++];
				while (b < hi)
					tmp[k++] = h[b++];
			}
			memcpy(h, tmp, n * sizeof(*h));
		}
		pq_free(q, tmp);
	}
}

static uint64_t
grouping_key(struct pq_query *q, const struct labels *ls, const struct promql_names *g,
    bool without)
{
	if (without)
		return hash_subset(q, ls, g, false);
	if (g->n == 0)
		return 0;
	return hash_subset(q, ls, g, true);
}

static uint64_t
agg_prep(struct evaluator *ev, void *ctx, const struct labels *ls)
{
	struct agg_ctx *a = ctx;

	return grouping_key(ev->q, ls, &a->grouping, a->n->u.agg.without);
}

static int
cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
agg_step(struct evaluator *ev, void *ctx, struct pq_vector *in, size_t nin, int64_t ts,
    struct pq_vector *out)
{
	struct agg_ctx *a = ctx;
	struct pq_query *q = ev->q;
	const struct promql_node *n = a->n;
	enum promql_tok op = n->u.agg.op;
	struct pq_vector *vec = &in[nin - 1];
	bool without = n->u.agg.without, recompute = false;
	long long k = 0;
	double qv = 0;
	size_t i;

	(void)ts;
	if (op == PROMQL_T_TOPK || op == PROMQL_T_BOTTOMK) {
		double f = in[0].n > 0 ? in[0].s[0].v : NAN;

		if (!(f <= 9223372036854774784.0 && f >= -9223372036854775808.0)) {
			struct strbuf sb = STRBUF_INIT;

			strbuf_puts(&sb, "Scalar value ");
			promql_format_float(f, 'g', &sb);
			strbuf_puts(&sb, " overflows int64");
			fail_sb(ev, PROMQL_ERR_EXECUTION, &sb);
		}
		k = (long long)f;
		if (k < 1)
			return;
	}
	if (op == PROMQL_T_QUANTILE)
		qv = in[0].n > 0 ? in[0].s[0].v : NAN;
	if (op == PROMQL_T_COUNT_VALUES)
		recompute = true;
	pq_map_clear(&a->groups);
	a->ng = 0;
	for (i = 0; i < vec->n; i++) {
		struct pq_sample *s = &vec->s[i];
		struct labels *metric = s->ls;
		struct agg_group *g;
		uint64_t key, *slot;
		bool found;

		if (op == PROMQL_T_COUNT_VALUES) {
			struct strbuf sb = STRBUF_INIT;
			uint64_t ck = mix64((uint64_t)(uintptr_t)metric);
			uint64_t bits;

			memcpy(&bits, &s->v, sizeof(bits));
			ck ^= mix64(bits + 0x9e3779b97f4a7c15ULL);
			slot = pq_map_get(&a->cv_cache, ck);
			if (slot != NULL) {
				metric = (struct labels *)(uintptr_t)*slot;
			} else {
				promql_format_float(s->v, 'f', &sb);
				metric = set_label(q, metric, a->value_label, strbuf_cstr(&sb));
				strbuf_free(&sb);
				*pq_map_put(q, &a->cv_cache, ck, &found) = (uint64_t)(uintptr_t)metric;
			}
		}
		key = recompute ? grouping_key(q, metric, &a->grouping, without) : s->h;
		slot = pq_map_put(q, &a->groups, key, &found);
		if (!found) {
			uint64_t *ls_slot = pq_map_get(&a->labels_cache, key);
			struct labels *gl;

			if (ls_slot != NULL) {
				gl = (struct labels *)(uintptr_t)*ls_slot;
			} else {
				if (without)
					gl = keep_or_del(q, metric, &a->grouping, false, true);
				else if (a->grouping.n > 0)
					gl = keep_or_del(q, metric, &a->grouping, true, false);
				else
					gl = labels_empty();
				*pq_map_put(q, &a->labels_cache, key, &found) = (uint64_t)(uintptr_t)gl;
			}
			if (a->ng == a->capg) {
				a->capg = a->capg ? a->capg * 2 : 16;
				a->g = pq_realloc(q, a->g, a->capg * sizeof(*a->g));
				memset(a->g + a->ng, 0, (a->capg - a->ng) * sizeof(*a->g));
			}
			*pq_map_put(q, &a->groups, key, &found) = a->ng;
			g = &a->g[a->ng++];
			g->ls = gl;
			g->value = s->v;
			g->mean = s->v;
			g->count = 1;
			g->nheap = 0;
			switch (op) {
			case PROMQL_T_STDVAR:
			case PROMQL_T_STDDEV:
				g->value = 0;
				break;
			case PROMQL_T_TOPK:
			case PROMQL_T_BOTTOMK:
			case PROMQL_T_QUANTILE:
				group_heap_push(q, g, s->ls, s->v);
				break;
			case PROMQL_T_GROUP:
				g->value = 1;
				break;
			default:
				break;
			}
			continue;
		}
		g = &a->g[*slot];
		switch (op) {
		case PROMQL_T_SUM:
			g->value += s->v;
			break;
		case PROMQL_T_AVG:
			g->count++;
			if (isinf(g->mean)) {
				if (isinf(s->v) && (g->mean > 0) == (s->v > 0))
					break;
				if (!isinf(s->v) && !isnan(s->v))
					break;
			}
			g->mean += s->v / (double)g->count - g->mean / (double)g->count;
			break;
		case PROMQL_T_GROUP:
			break;
		case PROMQL_T_MAX:
			if (g->value < s->v || isnan(g->value))
				g->value = s->v;
			break;
		case PROMQL_T_MIN:
			if (g->value > s->v || isnan(g->value))
				g->value = s->v;
			break;
		case PROMQL_T_COUNT:
		case PROMQL_T_COUNT_VALUES:
			g->count++;
			break;
		case PROMQL_T_STDVAR:
		case PROMQL_T_STDDEV: {
			double delta;

			g->count++;
			delta = s->v - g->mean;
			g->mean += delta / (double)g->count;
			g->value += delta * (s->v - g->mean);
			break;
		}
		case PROMQL_T_TOPK:
		case PROMQL_T_BOTTOMK: {
			bool rev = op == PROMQL_T_BOTTOMK;
			bool better = rev ? g->heap[0].v > s->v : g->heap[0].v < s->v;

			if ((long long)g->nheap < k || better || isnan(g->heap[0].v)) {
				if ((long long)g->nheap == k) {
					if (k == 1) {
						g->heap[0].ls = s->ls;
						g->heap[0].v = s->v;
						break;
					}
					/* heap.Pop: swap the root to the end, fix, drop */
					heap_swap(g->heap, 0, g->nheap - 1);
					heap_down(g->heap, 0, g->nheap - 1, rev);
					g->nheap--;
				}
				group_heap_push(q, g, s->ls, s->v);
				heap_up(g->heap, g->nheap - 1, rev);
			}
			break;
		}
		case PROMQL_T_QUANTILE:
			group_heap_push(q, g, s->ls, s->v);
			break;
		default:
			break;
		}
	}
	for (i = 0; i < a->ng; i++) {
		struct agg_group *g = &a->g[i];
		size_t j;

		switch (op) {
		case PROMQL_T_AVG:
			g->value = g->mean;
			break;
		case PROMQL_T_COUNT:
		case PROMQL_T_COUNT_VALUES:
			g->value = (double)g->count;
			break;
		case PROMQL_T_STDVAR:
			g->value = g->value / (double)g->count;
			break;
		case PROMQL_T_STDDEV:
			g->value = sqrt(g->value / (double)g->count);
			break;
		case PROMQL_T_TOPK:
		case PROMQL_T_BOTTOMK:
			if (g->nheap > 1)
				sort_reverse(q, g->heap, g->nheap, op == PROMQL_T_BOTTOMK);
			for (j = 0; j < g->nheap; j++)
				pq_vec_push(q, out, g->heap[j].ls, g->heap[j].v);
			continue;
		case PROMQL_T_QUANTILE: {
			double *vals = pq_alloc(q, g->nheap * sizeof(*vals));

			for (j = 0; j < g->nheap; j++)
				vals[j] = g->heap[j].v;
			g->value = pq_quantile(qv, vals, g->nheap);
			pq_free(q, vals);
			break;
		}
		default:
			break;
		}
		pq_vec_push(q, out, g->ls, g->value);
	}
}

/* out of line, to keep eval()'s recursion frame small */
static __attribute__((noinline)) struct pq_matrix
eval_aggregate(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_query *q = ev->q;
	const struct promql_node *param = n->u.agg.param != NULL ? unwrap_parens(n->u.agg.param) : NULL;
	struct pq_matrix args[2], res;
	struct agg_ctx *ap = pq_alloc(q, sizeof(*ap));
	long orig = ev->cur;
	size_t i;

	memset(ap, 0, sizeof(*ap));
	memset(args, 0, sizeof(args));
	ap->n = n;
	ap->grouping.n = n->u.agg.grouping.n;
	ap->grouping.v = pq_alloc(q, (ap->grouping.n + 1) * sizeof(char *));
	for (i = 0; i < ap->grouping.n; i++)
		ap->grouping.v[i] = n->u.agg.grouping.v[i];
	qsort(ap->grouping.v, ap->grouping.n, sizeof(char *), cmp_names);
	if (param != NULL && param->kind == PROMQL_STRING) {
		ap->value_label = param->u.str.val;
		if (!labels_is_valid_name(ap->value_label, strlen(ap->value_label))) {
			struct strbuf sb = STRBUF_INIT;

			strbuf_puts(&sb, "invalid label name ");
			labels_quote(ap->value_label, strlen(ap->value_label), &sb);
			fail_sb(ev, PROMQL_ERR_EXECUTION, &sb);
		}
		if (!n->u.agg.without) {
			ap->grouping.v[ap->grouping.n++] = (char *)(uintptr_t)ap->value_label;
			qsort(ap->grouping.v, ap->grouping.n, sizeof(char *), cmp_names);
		}
		args[0] = eval(ev, n->u.agg.expr);
		res = range_eval(ev, agg_step, ap, agg_prep, args, 1, orig);
	} else {
		if (n->u.agg.param != NULL)
			args[0] = eval(ev, n->u.agg.param);
		args[1] = eval(ev, n->u.agg.expr);
		res = range_eval(ev, agg_step, ap, agg_prep, args, 2, orig);
	}
	for (i = 0; i < ap->capg; i++)
		pq_free(q, ap->g[i].heap);
	pq_free(q, ap->g);
	pq_free(q, ap->grouping.v);
	pq_map_free(q, &ap->groups);
	pq_map_free(q, &ap->labels_cache);
	pq_map_free(q, &ap->cv_cache);
	pq_free(q, ap);
	return res;
}

/* ---- the dispatcher ------------------------------------------------------ */

static __attribute__((noinline)) struct pq_matrix
eval_number(struct evaluator *ev, double v)
{
	struct pq_query *q = ev->q;
	struct pq_matrix res = { 0 };
	struct pq_series *s = matrix_add(q, &res, labels_empty());
	int64_t ts;

	for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
		series_push(q, s, ts, v);
		ev->cur++;
		if (ev->cur > q->max_samples)
			too_many_samples(ev);
	}
	return res;
}

static __attribute__((noinline)) struct pq_matrix
eval_unary(struct evaluator *ev, const struct promql_node *n)
{
	struct pq_matrix m = eval(ev, n->u.unary.expr);
	size_t i, j;

	if (n->u.unary.op == PROMQL_T_SUB) {
		for (i = 0; i < m.n; i++) {
			m.s[i].ls = pq_drop_name(ev->q, m.s[i].ls);
			for (j = 0; j < m.s[i].n; j++)
				m.s[i].p[j].v = -m.s[i].p[j].v;
		}
		check_matrix_dups(ev, &m);
	}
	return m;
}

static struct pq_matrix
eval(struct evaluator *ev, const struct promql_node *n)
{
	check_ctx(ev, "expression evaluation");
	if (n->step_invariant && n->kind != PROMQL_NUMBER && n->kind != PROMQL_STRING)
		return eval_step_invariant(ev, n);
	switch (n->kind) {
	case PROMQL_AGGREGATE:
		return eval_aggregate(ev, n);
	case PROMQL_CALL:
		return eval_call(ev, n);
	case PROMQL_PAREN:
		return eval(ev, n->u.paren.expr);
	case PROMQL_UNARY:
		return eval_unary(ev, n);
	case PROMQL_BINARY:
		return eval_binary(ev, n);
	case PROMQL_NUMBER:
		return eval_number(ev, n->u.num.val);
	case PROMQL_VECTOR_SELECTOR:
		return eval_vector_selector(ev, n);
	case PROMQL_MATRIX_SELECTOR:
		return eval_matrix_selector(ev, n);
	case PROMQL_SUBQUERY:
		return eval_subquery(ev, n);
	case PROMQL_STEP_INVARIANT:
		return eval(ev, n->u.inv.expr);
	case PROMQL_STRING:
		break;
	}
	pq_fail(ev, PROMQL_ERR_EXECUTION, "unexpected string evaluation");
}

/* ---- queries -------------------------------------------------------------- */

struct promql_engine *
promql_engine_new(const struct promql_engine_opts *opts)
{
	struct promql_engine *e = mem_calloc(1, sizeof(*e));

	if (opts != NULL)
		e->o = *opts;
	if (e->o.lookback_delta <= 0)
		e->o.lookback_delta = PROMQL_DEFAULT_LOOKBACK;
	if (e->o.max_samples <= 0)
		e->o.max_samples = PROMQL_DEFAULT_MAX_SAMPLES;
	if (e->o.subquery_step <= 0)
		e->o.subquery_step = PROMQL_DEFAULT_SUBQUERY_STEP;
	return e;
}

void
promql_engine_free(struct promql_engine *e)
{
	mem_free(e);
}

static void
query_release(struct pq_query *q)
{
	size_t i;

	while (q->open != NULL)
		open_close(q, q->open->p);
	while (q->blocks != NULL) {
		struct pq_blk *b = q->blocks;

		q->blocks = b->next;
		mem_free(b);
	}
	for (i = 0; i < q->npool; i++)
		labels_free(q->pool[i]);
	mem_free(q->pool);
	mem_free(q->lbuf);
}

static int
cmp_series(const void *a, const void *b)
{
	return labels_compare(((const struct promql_series *)a)->ls,
	    ((const struct promql_series *)b)->ls);
}

int
promql_eval(struct promql_engine *e, const struct promql_storage *st,
    struct promql_node *expr, int64_t start, int64_t end, int64_t step,
    const volatile bool *cancel, struct promql_result *res, struct promql_error *err)
{
	struct pq_query *q;
	struct evaluator ev;
	struct pq_matrix m;
	enum promql_type type = promql_node_type(expr);
	bool instant = start == end && step == 0;
	size_t i;

	memset(res, 0, sizeof(*res));
	err->cls = PROMQL_ERR_NONE;
	err->msg[0] = '\0';
	if (!instant && type != PROMQL_TYPE_VECTOR && type != PROMQL_TYPE_SCALAR) {
		err->cls = PROMQL_ERR_BAD_DATA;
		snprintf(err->msg, sizeof(err->msg), "invalid expression type \"%s\" for range "
		    "query, must be Scalar or instant Vector", promql_type_doc(type));
		return -1;
	}
	if (!instant && step <= 0) {
		err->cls = PROMQL_ERR_BAD_DATA;
		snprintf(err->msg, sizeof(err->msg), "zero or negative query resolution step "
		    "widths are not accepted. Try a positive integer");
		return -1;
	}
	q = mem_calloc(1, sizeof(*q));
	q->st = st;
	q->err = err;
	q->cancel = cancel;
	q->max_samples = e->o.max_samples;
	q->lookback = e->o.lookback_delta;
	q->subq_step = e->o.subquery_step;
	q->qstart = start;
	q->qend = end;
	if (e->o.timeout > 0)
		q->deadline = time_mono_ns() + e->o.timeout * 1000000;
	if (preprocess(expr))
		expr->step_invariant = true;
	ev.q = q;
	ev.start = start;
	ev.end = end;
	ev.interval = instant ? 1 : step;
	ev.cur = 0;
	clamp_steps(&ev);
	{
		struct subq_path sp = { 0, 0, 0, false };
		bool any = false;

		find_min_max(&ev, expr, sp, 0, &q->gmin, &q->gmax, &any);
		if (!any)
			q->gmin = q->gmax = 0;
	}
	if (setjmp(q->jb) != 0) {
		query_release(q);
		mem_free(q);
		memset(res, 0, sizeof(*res));
		return -1;
	}
	res->type = instant ? type : PROMQL_TYPE_MATRIX;
	res->t = start;
	if (type == PROMQL_TYPE_STRING) {
		const struct promql_node *sn = unwrap_parens(expr);

		res->str = mem_strdup(sn->u.str.val);
		query_release(q);
		mem_free(q);
		return 0;
	}
	m = eval(&ev, expr);
	check_ctx(&ev, "expression evaluation");
	if (instant && type == PROMQL_TYPE_SCALAR) {
		res->scalar = m.n > 0 && m.s[0].n > 0 ? m.s[0].p[0].v : NAN;
	} else if (instant && type == PROMQL_TYPE_VECTOR) {
		res->vec = mem_alloc((m.n > 0 ? m.n : 1) * sizeof(*res->vec));
		res->nvec = m.n;
		for (i = 0; i < m.n; i++) {
			res->vec[i].ls = labels_ref(m.s[i].ls);
			res->vec[i].t = start;
			res->vec[i].v = m.s[i].p[0].v;
		}
	} else {
		res->mat = mem_alloc((m.n > 0 ? m.n : 1) * sizeof(*res->mat));
		res->nmat = m.n;
		for (i = 0; i < m.n; i++) {
			res->mat[i].ls = labels_ref(m.s[i].ls);
			res->mat[i].n = m.s[i].n;
			res->mat[i].points = mem_alloc((m.s[i].n > 0 ? m.s[i].n : 1) *
			    sizeof(struct promql_point));
			memcpy(res->mat[i].points, m.s[i].p, m.s[i].n * sizeof(struct promql_point));
		}
		if (!instant)
			qsort(res->mat, res->nmat, sizeof(*res->mat), cmp_series);
	}
	query_release(q);
	mem_free(q);
	return 0;
}

static int
query(struct promql_engine *e, const struct promql_storage *st, const char *qs, size_t qlen,
    int64_t start, int64_t end, int64_t step, const volatile bool *cancel,
    struct promql_result *res, struct promql_error *err)
{
	struct promql_node *expr;
	int rc;

	memset(res, 0, sizeof(*res));
	expr = promql_parse(qs, qlen, err->msg, sizeof(err->msg));
	if (expr == NULL) {
		err->cls = PROMQL_ERR_BAD_DATA;
		return -1;
	}
	rc = promql_eval(e, st, expr, start, end, step, cancel, res, err);
	promql_node_free(expr);
	return rc;
}

int
promql_query_instant(struct promql_engine *e, const struct promql_storage *st,
    const char *q, size_t qlen, int64_t ts, const volatile bool *cancel,
    struct promql_result *res, struct promql_error *err)
{
	return query(e, st, q, qlen, ts, ts, 0, cancel, res, err);
}

int
promql_query_range(struct promql_engine *e, const struct promql_storage *st,
    const char *q, size_t qlen, int64_t start, int64_t end, int64_t step,
    const volatile bool *cancel, struct promql_result *res, struct promql_error *err)
{
	return query(e, st, q, qlen, start, end, step, cancel, res, err);
}

void
promql_result_free(struct promql_result *res)
{
	size_t i;

	for (i = 0; i < res->nvec; i++)
		labels_free(res->vec[i].ls);
	mem_free(res->vec);
	for (i = 0; i < res->nmat; i++) {
		labels_free(res->mat[i].ls);
		mem_free(res->mat[i].points);
	}
	mem_free(res->mat);
	mem_free(res->str);
	memset(res, 0, sizeof(*res));
}
