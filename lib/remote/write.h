/* lib/remote/write.h - the remote_write client: ship appended samples out.
 *
 * A struct remote_writer holds one queue per remote_write entry of the
 * configuration, like Prometheus' remote storage. The store's commit path
 * hands it every committed sample (remote_write_append / _batch); for each
 * queue the writer adds the external labels (where the series lacks them),
 * applies write_relabel_configs (the result is cached per series), and puts
 * the sample on one of the queue's shards, chosen by series so one series'
 * samples stay in order. Each shard is a thread that sends batches of up to
 * max_samples_per_send samples (or what it has after batch_send_deadline) as
 * a snappy-compressed WriteRequest, with the remote_write headers, auth and
 * TLS of its entry. Recoverable failures (network errors, 5xx, and 429 when
 * retry_on_http_429 is set; Retry-After honoured) are retried with a backoff
 * doubling from min_backoff to max_backoff until they succeed; other 4xx
 * (and 429 without retry_on_http_429) drop the batch and count it failed.
 * Every shard_update interval (10s) the queue re-computes how many shards
 * it needs from its ingestion and send rates, as Prometheus does, between
 * min_shards and max_shards; resharding lets every shard finish its
 * in-flight batch and moves the queued samples over in order.
 *
 * Unlike Prometheus, which tails its WAL and can fall behind without
 * bounds, the writer is fed from the commit path and never blocks it: a
 * queue holds at most max_pending samples (default capacity * max_shards)
 * and drops newer ones beyond that, counted in samples_dropped_total and
 * strata_remote_storage_samples_overflow_total.
 *
 * Reload (remote_writer_apply) keeps queues whose settings did not change
 * and their queued samples; changed or removed queues are flushed for up
 * to the flush deadline (together), then stopped, before the new queues
 * start sending, so a series keeps its order at an endpoint that stayed.
 * Like Prometheus' ApplyConfig, apply can thus take up to the flush
 * deadline when a replaced endpoint is down; appends never wait for it.
 *
 * Threads: any thread may append, concurrently; apply, flush and stats are
 * safe at any time. The queue list is guarded by a rwlock (appends read
 * it), each queue's series cache by a mutex, each shard by its own mutex.
 *
 * Wiring: the daemon creates the writer, applies each loaded configuration
 * to it, registers remote_writer_collect with /metrics, and feeds it what
 * the store commits through a remote feed (lib/remote/feed.h), which calls
 * remote_write_append_batch off the commit path with the committed samples
 * (labels borrowed, never retained beyond the call except by reference).
 */
#ifndef STRATA_REMOTE_WRITE_H
#define STRATA_REMOTE_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "labels/labels.h"
#include "util/strbuf.h"

struct remote_writer;

struct remote_write_opts {
	const char *user_agent;		/* default "strata/<version>"; copied */
	int64_t max_pending;		/* samples per queue; 0: capacity * max_shards */
	int64_t flush_deadline_ms;	/* on stop and for replaced queues; 0: 1m */
	int64_t shard_update_ms;	/* resharding interval; 0: 10s */
	int64_t series_ttl_ms;		/* unused series leave the relabel cache; 0: 10m */
};

/* One committed sample for remote_write_append_batch. */
struct remote_write_sample {
	const struct labels *ls;	/* borrowed for the call */
	int64_t t;
	double v;
};

/* A histogram of send durations (Prometheus' DefBuckets plus 25, 60, 120, 300 s). */
#define REMOTE_DURATION_BUCKETS 15

/* One queue's figures, Prometheus' prometheus_remote_storage_* set. */
struct remote_queue_stats {
	char *remote_name;		/* owned by the snapshot */
	char *url;
	uint64_t samples_sent;		/* samples_total */
	uint64_t samples_failed;	/* non-recoverable send errors */
	uint64_t samples_retried;	/* recoverable send errors, retried */
	uint64_t samples_dropped;	/* by relabeling, overflow or shutdown */
	uint64_t samples_overflow;	/* of which: the queue held max_pending */
	uint64_t samples_in;		/* queued (after relabeling) */
	uint64_t bytes_sent;		/* compressed request bodies sent */
	uint64_t batches_sent;
	uint64_t batches_failed;
	uint64_t samples_pending;
	double highest_sent_s;		/* newest sample timestamp sent, seconds */
	int64_t shards, shards_min, shards_max;
	double shards_desired;
	int64_t shard_capacity, max_samples_per_send;
	uint64_t duration_buckets[REMOTE_DURATION_BUCKETS];	/* cumulative counts */
	uint64_t duration_count;
	double duration_sum;		/* seconds */
};

struct remote_writer_stats {
	uint64_t samples_in;		/* prometheus_remote_storage_samples_in_total */
	double highest_s;		/* prometheus_remote_storage_highest_timestamp_in_seconds */
	struct remote_queue_stats *q;	/* owned */
	size_t n;
};

/* remote_writer_new returns a writer without queues (opts may be NULL).
 * Free with remote_writer_free(). */
struct remote_writer *remote_writer_new(const struct remote_write_opts *opts);
/* remote_writer_free stops every queue (flushing up to the deadline) and
 * frees w. NULL is a no-op. */
void remote_writer_free(struct remote_writer *w);

/* remote_writer_apply installs cfg's remote_write entries and external
 * labels (cfg is only read during the call). Returns 0, or -1 with the
 * reason in err (an unsupported setting: oauth2, sigv4; a bad URL), in
 * which case nothing changed. */
int remote_writer_apply(struct remote_writer *w, const struct cfg *cfg, char *err, size_t errlen);
/* remote_writer_check tells whether remote_writer_apply would accept cfg,
 * without changing anything (a reload checks every part before applying
 * any). Returns 0, or -1 with the reason in err. */
int remote_writer_check(struct remote_writer *w, const struct cfg *cfg, char *err, size_t errlen);

/* remote_write_append queues one sample for every endpoint. ls is borrowed. */
void remote_write_append(struct remote_writer *w, const struct labels *ls, int64_t t, double v);
/* remote_write_append_batch queues n samples (one lock round per queue). */
void remote_write_append_batch(struct remote_writer *w, const struct remote_write_sample *s,
    size_t n);

/* remote_writer_flush waits until every sample queued so far has been sent
 * (or failed for good), at most timeout_ms. Returns true when all were. */
bool remote_writer_flush(struct remote_writer *w, int64_t timeout_ms);

/* remote_writer_stats fills a snapshot; release it with remote_writer_stats_free(). */
void remote_writer_stats(struct remote_writer *w, struct remote_writer_stats *st);
void remote_writer_stats_free(struct remote_writer_stats *st);
/* remote_writer_collect appends the prometheus_remote_storage_* families
 * (text format 0.0.4) for w (a struct remote_writer *) to out: a /metrics
 * collector. */
void remote_writer_collect(void *w, struct strbuf *out);

#endif
