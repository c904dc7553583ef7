/* lib/rules/query.h - evaluating rule expressions with the PromQL engine.
 *
 * The rule manager evaluates expressions through a rules_query_fn so that
 * it never depends on the engine itself; rules_query_engine is the one the
 * daemons use: an instant query on opts->engine over opts->storage, as
 * Prometheus' rules.EngineQueryFunc (a scalar becomes one sample without
 * labels; a string or matrix is an error). Thread-safe: the engine is.
 */
#ifndef STRATA_RULES_QUERY_H
#define STRATA_RULES_QUERY_H

#include "rules/rules.h"

/* rules_query_engine is a rules_query_fn; opts->engine and opts->storage
 * must be set. */
int rules_query_engine(const struct rules_manager_opts *opts, const char *expr, int64_t ts,
    const volatile bool *cancel, struct rules_vector *out, char *err, size_t errlen);

#endif
