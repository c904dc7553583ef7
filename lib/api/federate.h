/* lib/api/federate.h - GET /federate, as Prometheus 2.42 serves it.
 *
 * For every series matched by any of the match[] selectors, the newest
 * sample at or before now and no older than the lookback delta, unless that
 * sample is a staleness marker; grouped by metric name, each group under
 * "# TYPE <name> untyped", every sample with its explicit millisecond
 * timestamp, external labels appended where the series lacks them
 * (instance="" when there is no instance label at all). A bad selector is a
 * 400 with the parser's message. The body is streamed from the head's
 * newest-sample index in pieces (gzip on the fly when the client asks), so
 * a large federation never sits whole in memory.
 *
 * Threads: handlers run on server threads; the external labels are swapped
 * on reload under a mutex (readers take a reference).
 */
#ifndef STRATA_API_FEDERATE_H
#define STRATA_API_FEDERATE_H

#include <stdint.h>

#include "http/server.h"
#include "labels/labels.h"
#include "promql/storage.h"
#include "tsdb/head.h"

struct api_federate;

/* api_federate_new serves head (borrowed; must outlive the handler) with
 * the given lookback delta (ms). Caller frees with api_federate_free()
 * after the server has stopped. */
struct api_federate *api_federate_new(struct tsdb_head *head, int64_t lookback_ms);
void api_federate_free(struct api_federate *f);
/* api_federate_set_external_labels installs the external labels (takes a
 * new reference on ext; the previous set is released). */
void api_federate_set_external_labels(struct api_federate *f, struct labels *ext);
/* api_federate_set_storage lets /federate answer incremental pulls
 * (lib/api/pull.h) from st (borrowed; must outlive the server). Call before
 * the server starts. */
void api_federate_set_storage(struct api_federate *f, const struct promql_storage *st);
/* api_federate_route registers GET /federate on srv. Returns 0 or -1. */
int api_federate_route(struct api_federate *f, struct http_server *srv);

/* api_federate_write appends the /federate body for the n selectors sel
 * (strings as given in match[]) evaluated at now_ms to out, or returns -1
 * with the parser's message in err. For tests and tools; the handler
 * streams the same bytes. */
int api_federate_write(struct api_federate *f, const char *const *sel, size_t n,
    int64_t now_ms, struct strbuf *out, char *err, size_t errlen);

#endif
