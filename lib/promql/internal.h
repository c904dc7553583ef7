/* lib/promql/internal.h - what engine.c shares with functions.c (not public).
 *
 * A query owns everything it allocates: memory blocks are linked into the
 * query (pq_alloc/pq_free) and label sets are pooled (pq_pool, one
 * reference each), so an error anywhere unwinds with longjmp (pq_fail) to
 * the query's top, which frees the lot. Intermediate values are matrices:
 * series with one point per evaluation step (struct pq_matrix); functions
 * see one step at a time as vectors (struct pq_vector) or, for range-vector
 * arguments, one series' window of points.
 */
#ifndef STRATA_LIB_PROMQL_INTERNAL_H
#define STRATA_LIB_PROMQL_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/regex.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/storage.h"

#define PQ_STALE_NAN_BITS 0x7ff0000000000002ULL

struct pq_point {
	int64_t t;
	double v;
};

struct pq_series {
	struct labels *ls;	/* pooled */
	struct pq_point *p;	/* pq_alloc'd */
	size_t n, cap;
	size_t cur;		/* read position while stepping */
};

struct pq_matrix {
	struct pq_series *s;	/* pq_alloc'd */
	size_t n, cap;
};

struct pq_sample {
	struct labels *ls;	/* pooled */
	double v;
	int64_t t;
	uint64_t h;		/* grouping key or matching signature */
};

struct pq_vector {
	struct pq_sample *s;	/* pq_alloc'd */
	size_t n, cap;
};

/* An open-addressing map from 64-bit keys to 64-bit values. */
struct pq_map {
	uint64_t *keys, *vals;
	uint8_t *used;
	size_t cap, n;
};

struct pq_blk;

struct pq_query {
	jmp_buf jb;
	const struct promql_storage *st;
	struct pq_blk *blocks;		/* every live pq_alloc block */
	struct labels **pool;		/* one reference each */
	size_t npool, cappool;
	struct pq_open *open;		/* open series sets, regexes */
	int64_t deadline;		/* time_mono_ns, 0: none */
	const volatile bool *cancel;
	long max_samples;
	int64_t lookback, subq_step;
	int64_t qstart, qend;		/* for @ start() and @ end() */
	int64_t gmin, gmax;		/* what the query's querier would cover */
	struct promql_error *err;
	struct label *lbuf;		/* scratch for building label sets */
	size_t lbufcap;
};

struct evaluator {
	struct pq_query *q;
	int64_t start, end, interval;
	long cur;			/* samples held, for max_samples */
};

/* Per-call state handed to the function implementations. */
struct pq_call {
	struct evaluator *ev;
	const struct promql_node *node;		/* the PROMQL_CALL */
	struct promql_node *const *args;	/* its arguments */
	size_t nargs;
	int64_t ts;				/* the step being evaluated */
	struct pq_vector *out;
	struct pq_map cache;			/* labels* -> labels* */
	struct regex *re;			/* label_replace */
	bool inited;
};

typedef void (*pq_vec_fn)(struct pq_call *c, struct pq_vector *const *in, size_t nin);
/* A range-vector function: points of one series in [mint, maxt]; the
 * other (scalar) arguments in sc; true with *out when there is a value. */
typedef bool (*pq_mat_fn)(struct pq_call *c, const struct pq_point *p, size_t n,
    int64_t mint, int64_t maxt, int64_t range, const double *sc, double *out);

struct pq_func_impl {
	pq_vec_fn vec;
	pq_mat_fn mat;
};

/* The implementations, indexed by enum promql_function_id (functions.c). */
extern const struct pq_func_impl pq_functions[PROMQL_FN_COUNT_];

/* engine.c */
void pq_fail(struct evaluator *ev, enum promql_errclass cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void *pq_alloc(struct pq_query *q, size_t n);
void *pq_realloc(struct pq_query *q, void *p, size_t n);
void pq_free(struct pq_query *q, void *p);
/* pq_pool takes ownership of one reference of ls and returns it. */
struct labels *pq_pool(struct pq_query *q, struct labels *ls);
/* pq_labels builds a pooled set from n pairs sorted by name (borrowed). */
struct labels *pq_labels(struct pq_query *q, const struct label *v, size_t n);
/* pq_drop_name returns ls without __name__ (ls itself when it has none). */
struct labels *pq_drop_name(struct pq_query *q, struct labels *ls);
/* pq_drop_name_cached is pq_drop_name memoised in c->cache. */
struct labels *pq_drop_name_cached(struct pq_call *c, struct labels *ls);
void pq_vec_push(struct pq_query *q, struct pq_vector *v, struct labels *ls, double val);
void pq_map_init(struct pq_query *q, struct pq_map *m, size_t hint);
void pq_map_clear(struct pq_map *m);
void pq_map_free(struct pq_query *q, struct pq_map *m);
/* pq_map_get returns the value slot of key or NULL. */
uint64_t *pq_map_get(const struct pq_map *m, uint64_t key);
/* pq_map_put returns the value slot of key, inserting 0 when absent. */
uint64_t *pq_map_put(struct pq_query *q, struct pq_map *m, uint64_t key, bool *found);
void pq_regex_track(struct pq_query *q, struct regex *re);
bool pq_is_stale(double v);
/* pq_string_arg returns the value of a string literal argument. */
const char *pq_string_arg(const struct promql_node *n);
/* pq_absent_labels returns the labels absent() and absent_over_time()
 * give their result for the argument n. */
struct labels *pq_absent_labels(struct pq_query *q, const struct promql_node *n);

/* functions.c */
double pq_quantile(double q, double *v, size_t n);

#endif
