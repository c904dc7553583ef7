/* lib/promql/parse.h - the PromQL parser (Prometheus 2.42 grammar and errors).
 *
 * promql_parse turns a query into a checked syntax tree (lib/promql/ast.h)
 * or fails with the message Prometheus' API returns for it, "1:5: parse
 * error: unexpected <op:+>": the first error found, with the line and
 * column (1-based, in bytes) of where Prometheus places it. The grammar,
 * operator precedences, error contexts ("in aggregation", "in grouping
 * opts", ...) and the type checks (checkAST) follow promql/parser of 2.42.
 *
 * promql_parse_series parses the series descriptions of Prometheus' test
 * scripts: `name{l="v"} 1+2x10 _ stale`.
 * Stateless; any thread.
 */
#ifndef STRATA_PROMQL_PARSE_H
#define STRATA_PROMQL_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "labels/labels.h"
#include "promql/ast.h"

/* promql_parse parses input[0..len). Returns the tree (free with
 * promql_node_free) or NULL with the error in err. */
struct promql_node *promql_parse(const char *input, size_t len, char *err, size_t errlen);

/* promql_parse_number parses a number as Prometheus does (Go's ParseInt
 * with base prefixes, then ParseFloat; Inf and NaN in any case). Returns 0
 * or -1 with "strconv.ParseFloat: parsing ...: invalid syntax" in err. */
int promql_parse_number(const char *s, size_t len, double *out, char *err, size_t errlen);

/* promql_parse_duration parses a PromQL duration ("5m", "1h30m"); zero is
 * an error ("duration must be greater than 0"). Returns 0 or -1 with err. */
int promql_parse_duration(const char *s, size_t len, int64_t *ms, char *err, size_t errlen);

/* One value of a test-script series description. */
struct promql_seq_value {
	double v;
	bool omitted;		/* "_" */
};

/* promql_parse_series parses a series description. On success returns 0,
 * *ls (free with labels_free) and *vals (free with mem_free, *nvals
 * entries); else -1 with the error in err. */
int promql_parse_series(const char *input, size_t len, struct labels **ls,
    struct promql_seq_value **vals, size_t *nvals, char *err, size_t errlen);

#endif
