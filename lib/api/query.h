/* lib/api/query.h - the Prometheus query API: query, query_range, series,
 * labels, label values, query_exemplars, metadata.
 *
 * Every endpoint answers in Prometheus 2.42's JSON shape and with its error
 * types, messages and status codes (bad_data 400, execution 422, timeout
 * and canceled 503, internal 500), takes its arguments from the query
 * string or a POST form (Go's ParseForm order), and parses times as
 * Prometheus does (RFC 3339 or Unix seconds with a fraction) and durations
 * as Prometheus does ("1m" or float seconds). Queries run on the handler's
 * server thread, at most --query.max-concurrency at once (the others wait).
 *
 * The storage is borrowed and must outlive the server. A request's
 * timeout= parameter lowers --query.timeout for that query. The metadata
 * source is optional (NULL answers {}).
 */
#ifndef STRATA_API_QUERY_H
#define STRATA_API_QUERY_H

#include <stdint.h>

#include "http/server.h"
#include "promql/engine.h"
#include "promql/storage.h"

/* One metric's metadata, for /api/v1/metadata. */
struct api_metadata {
	const char *metric;
	const char *type;	/* "counter", "gauge", ... */
	const char *help;
	const char *unit;
};

/* api_metadata_fn calls emit once per known (metric, type, help, unit),
 * grouped by metric; limit_per_metric 0 = no limit. */
typedef void (*api_metadata_fn)(void *arg, const char *metric,
    void (*emit)(void *ctx, const struct api_metadata *md), void *ctx);

struct api_query_opts {
	struct promql_engine_opts engine; /* lookback, timeout, max samples */
	struct promql_storage storage;	/* copied; its ctx borrowed */
	int max_concurrency;		/* --query.max-concurrency; 0: 20 */
	api_metadata_fn metadata;	/* may be NULL */
	void *metadata_arg;
};

struct api_query;

/* api_query_new returns the endpoints' state; free with api_query_free()
 * after the server stopped. */
struct api_query *api_query_new(const struct api_query_opts *o);
void api_query_free(struct api_query *q);
/* api_query_route registers every endpoint above on srv. Returns 0 or -1. */
int api_query_route(struct api_query *q, struct http_server *srv);

/* api_parse_time parses a Prometheus API time ("1435781451.781" or RFC
 * 3339) into ms. Returns 0, or -1 with Prometheus' message in err. */
int api_parse_time(const char *s, int64_t *ms, char *err, size_t errlen);
/* api_parse_duration parses a Prometheus API duration ("15s", "1.5") into
 * ms. Returns 0, or -1 with Prometheus' message in err. */
int api_parse_duration(const char *s, int64_t *ms, char *err, size_t errlen);

#endif
