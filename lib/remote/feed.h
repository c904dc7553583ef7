/* lib/remote/feed.h - what the store commits, handed to remote write.
 *
 * A struct remote_feed connects a store (lib/tsdb/db.h) to a sink, in a
 * daemon the remote_write client (remote_writer_sink, lib/remote/write.h),
 * the way Prometheus' WAL watcher feeds its remote storage: every sample a
 * commit applies (scraped, pulled, recorded by rules, repaired from a peer,
 * received through /api/v1/write) is shipped, with its series' labels, in
 * commit order.
 *
 * The store calls the feed's commit observer under its commit lock; the
 * observer only copies the commit's series records (id and a labels
 * reference) and samples (id, t, value bits) onto a bounded queue and
 * returns. It never waits: a commit that finds the queue full has its
 * samples (those that do not fit) dropped and counted. One feed thread
 * takes the queue in order, resolves series ids to label sets (a map fed
 * by the series records; ids logged before the feed was active are looked
 * up in the head, tsdb_head_series_labels) and hands batches to the sink.
 * Map entries unused for series_ttl_ms are forgotten (looked up again if
 * the series comes back). A sample whose series left the head before the
 * feed resolved it cannot be shipped and is counted as unresolved.
 *
 * Not shipped, as in Prometheus: what WAL replay restored at start-up,
 * blocks imported from outside the process, and what was committed while
 * the feed was inactive (no remote_write entry configured).
 *
 * Threads: the observer runs on committing threads; the feed thread owns
 * the id map; every function here is thread-safe. f->mu guards the queue
 * and the counters the observer and the thread share.
 */
#ifndef STRATA_REMOTE_FEED_H
#define STRATA_REMOTE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/write.h"
#include "tsdb/db.h"
#include "util/strbuf.h"

struct remote_feed;

/* A sink receives n resolved samples, in commit order (labels borrowed for
 * the call). It runs on the feed thread and may block: the queue then
 * fills, and commits drop what no longer fits. */
typedef void (*remote_feed_sink_fn)(void *arg, const struct remote_write_sample *s, size_t n);

struct remote_feed_opts {
	size_t max_samples;	/* queued samples at most; 0: 1M (24 MiB) */
	size_t batch;		/* samples per sink call at most; 0: 4096 */
	int64_t series_ttl_ms;	/* id map entries unused this long go; 0: 10m */
};

/* The feed's self-metrics: X(field of struct remote_feed_stats, name, type, help). */
#define REMOTE_FEED_METRICS(X) \
	X(samples_in, "strata_remote_storage_feed_samples_total", "counter", \
	    "Samples committed to the store and queued for remote write.") \
	X(samples_dropped, "strata_remote_storage_feed_dropped_samples_total", "counter", \
	    "Committed samples not queued for remote write because the feed's queue was full.") \
	X(samples_unresolved, "strata_remote_storage_feed_unresolved_samples_total", "counter", \
	    "Queued samples not shipped because their series left the head before its labels were resolved.") \
	X(samples_out, "strata_remote_storage_feed_shipped_samples_total", "counter", \
	    "Samples handed from the feed to the remote write queues.") \
	X(pending, "strata_remote_storage_feed_pending_samples", "gauge", \
	    "Samples waiting in the feed's queue.") \
	X(capacity, "strata_remote_storage_feed_capacity_samples", "gauge", \
	    "Samples the feed's queue holds at most.") \
	X(series, "strata_remote_storage_feed_series", "gauge", \
	    "Series whose labels the feed keeps by id.")

struct remote_feed_stats {
	uint64_t samples_in, samples_dropped, samples_unresolved, samples_out;
	uint64_t pending, capacity, series;
};

/* remote_feed_new returns a feed from db to sink (arg passed as is),
 * inactive (not observing) until remote_feed_set_active; db and arg must
 * outlive it. Free with remote_feed_free(). */
struct remote_feed *remote_feed_new(struct tsdb_db *db, remote_feed_sink_fn sink, void *arg,
    const struct remote_feed_opts *o);
/* remote_feed_free stops observing, hands everything queued to the sink,
 * stops the thread and frees f. NULL is a no-op. */
void remote_feed_free(struct remote_feed *f);
/* remote_feed_set_active attaches (true) or detaches (false) the commit
 * observer; samples queued before a detach are still shipped. */
void remote_feed_set_active(struct remote_feed *f, bool on);
/* remote_feed_flush waits until every sample queued so far has been
 * handed to the sink (or found unresolved), at most timeout_ms. Returns
 * true when all were. */
bool remote_feed_flush(struct remote_feed *f, int64_t timeout_ms);
/* remote_feed_stats fills st. */
void remote_feed_stats(struct remote_feed *f, struct remote_feed_stats *st);
/* remote_feed_collect appends the REMOTE_FEED_METRICS families for f (a
 * struct remote_feed *) to out: a /metrics collector. */
void remote_feed_collect(void *f, struct strbuf *out);

/* remote_writer_sink is a remote_feed_sink_fn that queues the samples on
 * arg, a struct remote_writer * (remote_write_append_batch). */
void remote_writer_sink(void *arg, const struct remote_write_sample *s, size_t n);

#endif
