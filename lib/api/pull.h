/* lib/api/pull.h - the lossless side of /federate between strata servers.
 *
 * When a /federate request carries X-Strata-Pull-Since: <ms> and the server
 * has a store to read (api_federate_set_storage), /federate answers every
 * sample of the matched series in (since, until] in the strata pull format
 * (lib/expfmt/pull.h) instead of the newest sample per series: staleness
 * markers included bit-exact, external labels added as /federate adds them,
 * streamed in pieces and gzip-compressed when the client asks.
 *
 * until is now minus API_PULL_SETTLE_MS: samples are stamped with their
 * scrape's start (or their rule evaluation's instant) and committed up to a
 * scrape timeout later, so the newest seconds are not yet complete; the
 * next pull starts where this one ended and nothing committed late is
 * skipped. One answer covers at most API_PULL_MAX_WINDOW_MS, or the smaller
 * window the client asks for (PULL_WINDOW_HEADER): a client that is further
 * behind (after a cut) gets the oldest part and pulls again at once, until
 * it has caught up; its memory per pull stays bounded. A since older than what the store holds simply returns what is
 * there (the leaf's retention bounds how far a central can catch up).
 */
#ifndef STRATA_API_PULL_H
#define STRATA_API_PULL_H

#include <stdint.h>

#include "http/server.h"
#include "expfmt/pull.h"
#include "labels/labels.h"
#include "promql/storage.h"

#define API_PULL_SETTLE_MS PULL_SETTLE_MS
#define API_PULL_MAX_WINDOW_MS PULL_MAX_WINDOW_MS

/* api_pull_respond answers req for the selectors sel[0..n) over st
 * (borrowed; must outlive the response) from since to until (at most
 * max_window after since; 0 or more than API_PULL_MAX_WINDOW_MS means
 * API_PULL_MAX_WINDOW_MS), appending the
 * external labels ext (a reference is taken). A bad selector is a 400 with
 * its parse error. Returns what the http_respond* call returned. */
int api_pull_respond(struct http_request *req, const struct promql_storage *st,
    const char *const *sel, size_t n, int64_t since, int64_t until,
    int64_t max_window, struct labels *ext);

#endif
