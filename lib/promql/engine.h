/* lib/promql/engine.h - evaluate PromQL instant and range queries.
 *
 * The engine evaluates a query string (or an already parsed tree) against a
 * struct promql_storage with Prometheus 2.42 semantics: lookback delta,
 * staleness markers, @ and offset, subqueries aligned to their step, vector
 * matching, every aggregation and function, the metric-name dropping rules,
 * and Prometheus' errors ("vector cannot contain metrics with the same
 * labelset", "query processing would load too many samples into memory in
 * query execution", ...). It never includes HTTP: the API layer turns a
 * struct promql_result into JSON and a struct promql_error into a status.
 *
 * An engine holds options only and may be shared by any number of threads;
 * each query allocates its own state. A parsed tree passed to
 * promql_eval_* is annotated during the evaluation (one query at a time).
 */
#ifndef STRATA_PROMQL_ENGINE_H
#define STRATA_PROMQL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "promql/ast.h"
#include "promql/storage.h"

#define PROMQL_DEFAULT_LOOKBACK (5 * 60 * 1000)	/* ms */
#define PROMQL_DEFAULT_MAX_SAMPLES 50000000
#define PROMQL_DEFAULT_SUBQUERY_STEP (60 * 1000)	/* ms: the global evaluation interval */

struct promql_engine_opts {
	int64_t lookback_delta;	/* ms; 0: 5m (--query.lookback-delta) */
	int64_t timeout;	/* ms; 0: no timeout (--query.timeout) */
	long max_samples;	/* 0: 50000000 (--query.max-samples) */
	int64_t subquery_step;	/* ms, step of subqueries written without one; 0: 1m */
};

/* One sample of a vector result. */
struct promql_sample {
	struct labels *ls;	/* one reference, released by promql_result_free */
	int64_t t;		/* ms */
	double v;
};

struct promql_point {
	int64_t t;
	double v;
};

/* One series of a matrix result. */
struct promql_series {
	struct labels *ls;	/* one reference */
	struct promql_point *points;
	size_t n;
};

/* The value of a query: a scalar, a string, an instant vector or a
 * matrix (a range query's result, or an instant query of a range vector). */
struct promql_result {
	enum promql_type type;
	int64_t t;			/* scalar and string: evaluation time */
	double scalar;
	char *str;			/* string (owned) */
	struct promql_sample *vec;	/* vector, in evaluation order */
	size_t nvec;
	struct promql_series *mat;	/* matrix; sorted by labels for range queries */
	size_t nmat;
};

/* Error classes, as Prometheus' API maps them to status codes. */
enum promql_errclass {
	PROMQL_ERR_NONE,
	PROMQL_ERR_BAD_DATA,	/* parse errors, invalid arguments: 400 */
	PROMQL_ERR_EXECUTION,	/* evaluation errors: 422 */
	PROMQL_ERR_TIMEOUT,	/* "query timed out in ...": 503 */
	PROMQL_ERR_CANCELED,	/* "query was canceled in ...": 503 */
	PROMQL_ERR_STORAGE,	/* storage errors: 500 */
};

struct promql_error {
	enum promql_errclass cls;
	char msg[1024];
};

struct promql_engine;

/* promql_engine_new returns an engine (opts may be NULL for defaults);
 * free with promql_engine_free. */
struct promql_engine *promql_engine_new(const struct promql_engine_opts *opts);
void promql_engine_free(struct promql_engine *e);

/* promql_query_instant evaluates q at ts (ms). Returns 0 with *res filled
 * (free with promql_result_free) or -1 with *err. cancel (may be NULL) is
 * polled: setting it to true from another thread cancels the query. */
int promql_query_instant(struct promql_engine *e, const struct promql_storage *st,
    const char *q, size_t qlen, int64_t ts, const volatile bool *cancel,
    struct promql_result *res, struct promql_error *err);
/* promql_query_range evaluates q from start to end (ms, inclusive) every
 * step ms. The expression must be a scalar or an instant vector. */
int promql_query_range(struct promql_engine *e, const struct promql_storage *st,
    const char *q, size_t qlen, int64_t start, int64_t end, int64_t step,
    const volatile bool *cancel, struct promql_result *res, struct promql_error *err);
/* promql_eval runs a parsed tree (start == end and step 0 for an instant
 * evaluation); the same results and errors as the query functions. */
int promql_eval(struct promql_engine *e, const struct promql_storage *st,
    struct promql_node *expr, int64_t start, int64_t end, int64_t step,
    const volatile bool *cancel, struct promql_result *res, struct promql_error *err);

/* promql_result_free releases what a query returned and zeroes res. */
void promql_result_free(struct promql_result *res);

#endif
