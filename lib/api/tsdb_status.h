/* lib/api/tsdb_status.h - GET /api/v1/status/tsdb: the store's cardinality.
 *
 * Prometheus 2.42's answer: headStats (numSeries, numLabelPairs,
 * chunkCount, minTime, maxTime) and the top 10 of seriesCountByMetricName,
 * labelValueCountByLabelName, memoryInBytesByLabelName and
 * seriesCountByLabelValuePair, computed from the head's index by
 * tsdb_db_status() (lib/tsdb/db.h). Handlers run on server threads; the
 * store is thread-safe.
 */
#ifndef STRATA_API_TSDB_STATUS_H
#define STRATA_API_TSDB_STATUS_H

#include "http/server.h"
#include "tsdb/db.h"

/* api_tsdb_status_route registers GET /api/v1/status/tsdb on srv, reading
 * db (borrowed; must outlive the server). Returns 0 or -1. */
int api_tsdb_status_route(struct tsdb_db *db, struct http_server *srv);

#endif
