/* lib/rules/query.c - evaluating rule expressions with the PromQL engine.
 *
 * Kept apart from rules.c so that the manager (and its tests) link without
 * the engine; see query.h.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "promql/engine.h"
#include "rules/query.h"

/* rules_query_engine: see query.h. */
int
rules_query_engine(const struct rules_manager_opts *opts, const char *expr, int64_t ts,
    const volatile bool *cancel, struct rules_vector *out, char *err, size_t errlen)
{
	struct promql_result res;
	struct promql_error perr;
	size_t i;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (opts->engine == NULL || opts->storage == NULL) {
		snprintf(err, errlen, "no query engine configured");
		return -1;
	}
	memset(&res, 0, sizeof(res));
	memset(&perr, 0, sizeof(perr));
	if (promql_query_instant(opts->engine, opts->storage, expr, strlen(expr), ts, cancel,
	    &res, &perr) < 0) {
		snprintf(err, errlen, "%s", perr.msg);
		return -1;
	}
	switch (res.type) {
	case PROMQL_TYPE_VECTOR:
		for (i = 0; i < res.nvec; i++) {
			rules_vector_push(out, res.vec[i].ls, res.vec[i].v);
			res.vec[i].ls = NULL;	/* the reference moved into out */
		}
		break;
	case PROMQL_TYPE_SCALAR:
		rules_vector_push(out, labels_empty(), res.scalar);
		break;
	default:
		snprintf(err, errlen, "rule result is not a vector or scalar");
		rc = -1;
		break;
	}
	promql_result_free(&res);
	return rc;
}
