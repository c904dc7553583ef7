/* lib/api/metrics.h - GET /metrics: strata's own metrics in text format 0.0.4.
 *
 * Modules keep their counters in stats structs (tsdb_head_stats, ...); they
 * know nothing of exposition. A role registers collectors, callbacks that
 * read those structs and write families through the helpers below, and
 * /metrics runs every collector in registration order. The process
 * families (process_cpu_seconds_total, process_resident_memory_bytes, ...)
 * are always written first. Names are Prometheus' where the meaning is the
 * same (prometheus_tsdb_head_series, ...) and strata_* otherwise; the
 * name/type/help of each family is written once, in the collector's table.
 *
 * Collectors run on a server thread, one scrape at a time (a mutex), and
 * must only read thread-safe state.
 */
#ifndef STRATA_API_METRICS_H
#define STRATA_API_METRICS_H

#include "http/server.h"
#include "util/strbuf.h"

struct api_metrics;

/* metrics_collect_fn appends families to out. */
typedef void (*metrics_collect_fn)(void *arg, struct strbuf *out);

/* api_metrics_new returns an empty registry; free with api_metrics_free()
 * after the server stopped. */
struct api_metrics *api_metrics_new(void);
void api_metrics_free(struct api_metrics *m);
/* api_metrics_add registers a collector (arg is passed as is). Call before
 * the server starts. */
void api_metrics_add(struct api_metrics *m, metrics_collect_fn fn, void *arg);
/* api_metrics_route registers GET /metrics on srv. Returns 0 or -1. */
int api_metrics_route(struct api_metrics *m, struct http_server *srv);
/* api_metrics_write appends the whole exposition to out (what /metrics sends). */
void api_metrics_write(struct api_metrics *m, struct strbuf *out);

/* metrics_family appends "# HELP name help" and "# TYPE name type". */
void metrics_family(struct strbuf *out, const char *name, const char *type,
    const char *help);
/* metrics_sample appends one sample line: name, then NULL-terminated label
 * name/value pairs (values escaped), then the value. */
void metrics_sample(struct strbuf *out, const char *name, double v, ...)
	__attribute__((sentinel));

/* api_metrics_head is the collector of a struct tsdb_head (arg). */
void api_metrics_head(void *head, struct strbuf *out);
/* api_metrics_db is the collector of a struct tsdb_db (arg): the head,
 * WAL, blocks, compaction and retention families. */
void api_metrics_db(void *db, struct strbuf *out);
/* api_metrics_scrape is the collector of a struct scrape_manager (arg). */
void api_metrics_scrape(void *scrape, struct strbuf *out);

#endif
