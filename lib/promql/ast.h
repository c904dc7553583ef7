/* lib/promql/ast.h - the PromQL syntax tree, its types and its printer.
 *
 * A parsed expression is a tree of struct promql_node, one kind per
 * Prometheus AST type (AggregateExpr, BinaryExpr, Call, MatrixSelector,
 * SubqueryExpr, NumberLiteral, ParenExpr, StringLiteral, UnaryExpr,
 * VectorSelector, StepInvariantExpr). Every node owns its children, strings
 * and matchers; promql_node_free() releases a whole tree. Positions are the
 * byte ranges Prometheus reports in errors. promql_node_format() prints a
 * tree as Prometheus' String() does ("sum by (job) (rate(x[5m] offset 1m))"),
 * which parses back to the same tree; the rules API and the tests use it.
 * A tree is not thread-safe while being evaluated (the engine annotates it).
 */
#ifndef STRATA_PROMQL_AST_H
#define STRATA_PROMQL_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/matcher.h"
#include "promql/lex.h"
#include "util/strbuf.h"

enum promql_type {
	PROMQL_TYPE_NONE,
	PROMQL_TYPE_SCALAR,
	PROMQL_TYPE_VECTOR,
	PROMQL_TYPE_MATRIX,
	PROMQL_TYPE_STRING,
};

enum promql_node_kind {
	PROMQL_AGGREGATE,
	PROMQL_BINARY,
	PROMQL_CALL,
	PROMQL_MATRIX_SELECTOR,
	PROMQL_SUBQUERY,
	PROMQL_NUMBER,
	PROMQL_PAREN,
	PROMQL_STRING,
	PROMQL_UNARY,
	PROMQL_VECTOR_SELECTOR,
	PROMQL_STEP_INVARIANT,
};

enum promql_card {
	PROMQL_CARD_ONE_TO_ONE,
	PROMQL_CARD_MANY_TO_ONE,
	PROMQL_CARD_ONE_TO_MANY,
	PROMQL_CARD_MANY_TO_MANY,
};

/* A list of label names (grouping, on/ignoring, group_left/right). */
struct promql_names {
	char **v;		/* owned strings */
	size_t n;
};

struct promql_vector_matching {
	enum promql_card card;
	struct promql_names matching;	/* on (...) / ignoring (...) */
	bool on;
	struct promql_names include;	/* group_left (...) / group_right (...) */
};

struct promql_function;

/* "@" and offset of a selector or subquery. */
struct promql_at {
	bool has_ts;			/* @ <timestamp> (or start()/end() once resolved) */
	int64_t ts;			/* ms */
	enum promql_tok start_or_end;	/* PROMQL_T_START, PROMQL_T_END or 0 */
};

struct promql_node {
	enum promql_node_kind kind;
	size_t start, end;	/* byte range in the query */
	bool step_invariant;	/* engine annotation: evaluate once per query */
	unsigned depth;		/* levels of the subtree (a leaf is 1) */
	union {
		struct {
			enum promql_tok op;
			struct promql_node *expr, *param;
			struct promql_names grouping;
			bool without;
		} agg;
		struct {
			enum promql_tok op;
			struct promql_node *lhs, *rhs;
			struct promql_vector_matching *vm;	/* NULL unless vector/vector */
			bool return_bool;
		} bin;
		struct {
			const struct promql_function *func;
			struct promql_node **args;
			size_t nargs;
		} call;
		struct {
			struct promql_node *vs;		/* a PROMQL_VECTOR_SELECTOR */
			int64_t range;			/* ms */
		} msel;
		struct {
			struct promql_node *expr;
			int64_t range, step;		/* ms; step 0: the default */
			int64_t offset;			/* ms, as written */
			struct promql_at at;
		} subq;
		struct {
			double val;
		} num;
		struct {
			struct promql_node *expr;
		} paren;
		struct {
			char *val;			/* owned, unquoted */
			size_t len;
		} str;
		struct {
			enum promql_tok op;
			struct promql_node *expr;
		} unary;
		struct {
			char *name;			/* owned; "" when none */
			struct matcher **ms;		/* owned; the name matcher last */
			size_t nms;
			int64_t offset;			/* ms, as written */
			struct promql_at at;
		} vs;
		struct {
			struct promql_node *expr;
		} inv;
	} u;
};

/* Every PromQL 2.42 function: X(id, name, return type, variadic, nargs,
 * argument types...). The parser's signatures and the engine's
 * implementations are both generated from this list. S, V, M, T are the
 * scalar, instant vector, range vector and string types. */
#define PROMQL_FUNCTIONS(X) \
	X(ABS, "abs", V, 0, 1, V) \
	X(ABSENT, "absent", V, 0, 1, V) \
	X(ABSENT_OVER_TIME, "absent_over_time", V, 0, 1, M) \
	X(ACOS, "acos", V, 0, 1, V) \
	X(ACOSH, "acosh", V, 0, 1, V) \
	X(ASIN, "asin", V, 0, 1, V) \
	X(ASINH, "asinh", V, 0, 1, V) \
	X(ATAN, "atan", V, 0, 1, V) \
	X(ATANH, "atanh", V, 0, 1, V) \
	X(AVG_OVER_TIME, "avg_over_time", V, 0, 1, M) \
	X(CEIL, "ceil", V, 0, 1, V) \
	X(CHANGES, "changes", V, 0, 1, M) \
	X(CLAMP, "clamp", V, 0, 3, V, S, S) \
	X(CLAMP_MAX, "clamp_max", V, 0, 2, V, S) \
	X(CLAMP_MIN, "clamp_min", V, 0, 2, V, S) \
	X(COS, "cos", V, 0, 1, V) \
	X(COSH, "cosh", V, 0, 1, V) \
	X(COUNT_OVER_TIME, "count_over_time", V, 0, 1, M) \
	X(DAYS_IN_MONTH, "days_in_month", V, 1, 1, V) \
	X(DAY_OF_MONTH, "day_of_month", V, 1, 1, V) \
	X(DAY_OF_WEEK, "day_of_week", V, 1, 1, V) \
	X(DAY_OF_YEAR, "day_of_year", V, 1, 1, V) \
	X(DEG, "deg", V, 0, 1, V) \
	X(DELTA, "delta", V, 0, 1, M) \
	X(DERIV, "deriv", V, 0, 1, M) \
	X(EXP, "exp", V, 0, 1, V) \
	X(FLOOR, "floor", V, 0, 1, V) \
	X(HISTOGRAM_COUNT, "histogram_count", V, 0, 1, V) \
	X(HISTOGRAM_SUM, "histogram_sum", V, 0, 1, V) \
	X(HISTOGRAM_FRACTION, "histogram_fraction", V, 0, 3, S, S, V) \
	X(HISTOGRAM_QUANTILE, "histogram_quantile", V, 0, 2, S, V) \
	X(HOLT_WINTERS, "holt_winters", V, 0, 3, M, S, S) \
	X(HOUR, "hour", V, 1, 1, V) \
	X(IDELTA, "idelta", V, 0, 1, M) \
	X(INCREASE, "increase", V, 0, 1, M) \
	X(IRATE, "irate", V, 0, 1, M) \
	X(LABEL_REPLACE, "label_replace", V, 0, 5, V, T, T, T, T) \
	X(LABEL_JOIN, "label_join", V, -1, 4, V, T, T, T) \
	X(LAST_OVER_TIME, "last_over_time", V, 0, 1, M) \
	X(LN, "ln", V, 0, 1, V) \
	X(LOG10, "log10", V, 0, 1, V) \
	X(LOG2, "log2", V, 0, 1, V) \
	X(MAX_OVER_TIME, "max_over_time", V, 0, 1, M) \
	X(MIN_OVER_TIME, "min_over_time", V, 0, 1, M) \
	X(MINUTE, "minute", V, 1, 1, V) \
	X(MONTH, "month", V, 1, 1, V) \
	X(PI, "pi", S, 0, 0) \
	X(PREDICT_LINEAR, "predict_linear", V, 0, 2, M, S) \
	X(PRESENT_OVER_TIME, "present_over_time", V, 0, 1, M) \
	X(QUANTILE_OVER_TIME, "quantile_over_time", V, 0, 2, S, M) \
	X(RAD, "rad", V, 0, 1, V) \
	X(RATE, "rate", V, 0, 1, M) \
	X(RESETS, "resets", V, 0, 1, M) \
	X(ROUND, "round", V, 1, 2, V, S) \
	X(SCALAR, "scalar", S, 0, 1, V) \
	X(SGN, "sgn", V, 0, 1, V) \
	X(SIN, "sin", V, 0, 1, V) \
	X(SINH, "sinh", V, 0, 1, V) \
	X(SORT, "sort", V, 0, 1, V) \
	X(SORT_DESC, "sort_desc", V, 0, 1, V) \
	X(SQRT, "sqrt", V, 0, 1, V) \
	X(STDDEV_OVER_TIME, "stddev_over_time", V, 0, 1, M) \
	X(STDVAR_OVER_TIME, "stdvar_over_time", V, 0, 1, M) \
	X(SUM_OVER_TIME, "sum_over_time", V, 0, 1, M) \
	X(TAN, "tan", V, 0, 1, V) \
	X(TANH, "tanh", V, 0, 1, V) \
	X(TIME, "time", S, 0, 0) \
	X(TIMESTAMP, "timestamp", V, 0, 1, V) \
	X(VECTOR, "vector", V, 0, 1, S) \
	X(YEAR, "year", V, 1, 1, V)

#define PROMQL_FN_ENUM(id, name, ...) PROMQL_FN_##id,
enum promql_function_id {
	PROMQL_FUNCTIONS(PROMQL_FN_ENUM)
	PROMQL_FN_COUNT_
};
#undef PROMQL_FN_ENUM

/* A function's signature, as Prometheus' parser.Functions lists it. */
struct promql_function {
	const char *name;
	enum promql_type arg_types[5];
	int nargs;		/* entries of arg_types */
	int variadic;		/* 0, n optional trailing args, -1 unbounded */
	enum promql_type ret;
	enum promql_function_id id;
};

/* promql_function_lookup returns the function called name or NULL. */
const struct promql_function *promql_function_lookup(const char *name, size_t len);

/* The deepest expression tree the parser accepts: evaluation, printing and
 * freeing recurse, so this bounds their stack (well under 1 MiB). */
#define PROMQL_MAX_DEPTH 500

/* promql_node_new returns a zeroed node of kind; free with promql_node_free. */
struct promql_node *promql_node_new(enum promql_node_kind kind, size_t start, size_t end);
/* promql_node_free releases n and its children. NULL is a no-op. */
void promql_node_free(struct promql_node *n);
/* promql_node_type returns the value type n evaluates to. */
enum promql_type promql_node_type(const struct promql_node *n);
/* promql_node_range returns n's position range as Prometheus computes it. */
void promql_node_range(const struct promql_node *n, size_t *start, size_t *end);
/* promql_type_name returns "scalar", "vector", "matrix", "string", "none". */
const char *promql_type_name(enum promql_type t);
/* promql_type_doc returns the documented name: "instant vector", "range vector", ... */
const char *promql_type_doc(enum promql_type t);
/* promql_node_format appends the canonical text of n (Prometheus' String()). */
void promql_node_format(const struct promql_node *n, struct strbuf *out);

/* promql_names_add appends a copy of s[0..len). */
void promql_names_add(struct promql_names *ns, const char *s, size_t len);
void promql_names_free(struct promql_names *ns);
bool promql_names_has(const struct promql_names *ns, const char *s);

/* promql_format_float appends v as Go's strconv.FormatFloat(v, fmt, -1, 64)
 * with fmt 'g' (1e+06, 0.0001) or 'f' (1000000, NaN, +Inf). */
void promql_format_float(double v, char fmt, struct strbuf *out);

#endif
