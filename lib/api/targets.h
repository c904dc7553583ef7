/* lib/api/targets.h - GET /api/v1/targets, in Prometheus 2.42's JSON shape.
 *
 * activeTargets (discoveredLabels, labels, scrapePool, scrapeUrl,
 * globalUrl, lastError, lastScrape, lastScrapeDuration, health,
 * scrapeInterval, scrapeTimeout) and droppedTargets (discoveredLabels),
 * filtered by ?state=active|dropped|any and ?scrapePool=, ordered by pool
 * then labels. The data comes from a scrape manager snapshot taken per
 * request; the handler holds no state of its own.
 */
#ifndef STRATA_API_TARGETS_H
#define STRATA_API_TARGETS_H

#include "http/server.h"
#include "scrape/scrape.h"
#include "util/strbuf.h"

/* api_targets_route registers GET /api/v1/targets on srv for m (borrowed;
 * must outlive the server). Returns 0 or -1. */
int api_targets_route(struct scrape_manager *m, struct http_server *srv);

/* api_targets_write appends the whole response body for the n targets v
 * (state: "active", "dropped", "any" or ""; pool: "" for all). */
void api_targets_write(const struct scrape_target_info *v, size_t n,
    const char *state, const char *pool, struct strbuf *out);

#endif
