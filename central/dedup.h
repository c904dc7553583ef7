/* central/dedup.h - one copy of series that replicated leaves serve twice.
 *
 * With --shard.replication-factor=R each target is scraped by R leaves, and
 * each leaf adds a label naming itself (leaf_replica="<host:port>") to what
 * it serves. A central federating from every leaf thus receives R series
 * per target series that differ only in that label. This module stores
 * them once, without the label: series whose labels minus the replica
 * label are equal form a *group*; per group one replica is *elected* and
 * its samples are stored under the group's labels, the others' dropped.
 * Series without the replica label are not touched.
 *
 * It sits on the scrape manager's sample hook (scrape.h): dedup_hook()
 * queues every replicated sample in its group and tells the scrape to
 * append nothing; a committer thread decides and appends the group's
 * samples to the head through its own (unrestricted) appender, in time
 * order, usually within DEDUP_TICK_MS of their arrival.
 *
 * The election is a function of the data (timestamps, values, replica
 * label values), never of arrival order, so both replicas of the central
 * pair store the same samples whatever order the leaves' pulls reach them
 * in (provided every sample reaches both within the settle time, below):
 *
 *   - follow: the elected replica's next sample is stored as long as it
 *     comes at most thr after the last stored one (thr = 2.5 x the group's
 *     sample spacing: the median of its last three stored intervals) and is
 *     not a staleness marker. Other replicas' samples meanwhile are dropped.
 *   - takeover: when the elected replica's data goes stale (its next sample
 *     is a staleness marker, or comes more than thr later, or none came
 *     within thr), the replica with the earliest sample after the last
 *     stored one takes over (equal timestamps: the smallest label value),
 *     so the stored series has no gap beyond the replicas' own and never
 *     interleaves two replicas. A staleness marker of the elected replica
 *     is stored, ending the series, only when no other replica has a
 *     sample between the last stored one and the marker; markers of the
 *     others are dropped. A takeover sample that comes less than half a
 *     spacing after the last stored one with a lower value is skipped (the
 *     same scrape round seen through clocks a few hundred ms apart: rate()
 *     would read it as a counter reset).
 *   - epochs: at every multiple of DEDUP_EPOCH_MS (wall-clock aligned
 *     sample time) the replica with the smallest label value that is live
 *     across the boundary (samples before and after it, at most thr apart)
 *     is elected, at its first sample after the last stored one. So the
 *     pair agrees again within one epoch after anything that made it
 *     disagree (a cut between one central and one leaf, a restart).
 *   - birth: a new group waits one settle time for the replicas' data,
 *     then elects, among the replicas whose first sample comes within one
 *     spacing of the earliest sample, the one with the smallest label
 *     value, from its first sample (so two centrals started at different
 *     times, whose first pulls reach back to different points, elect
 *     alike). The same election starts a series again after it ended
 *     with a marker. After a restart a group resumes with the replica
 *     whose sample is the one the store already holds last, and nothing
 *     at or before that sample is appended again.
 *
 * Deciding needs to know that a replica has no earlier sample still on
 * its way. A replica's samples for one series arrive in time order (scrape
 * hook ordering), so its data is complete up to its newest sample, and,
 * by time, up to now minus its settle time: max(the configured settle
 * time, dedup_set_settle(): the federation jobs' settling plus interval
 * plus timeout; the largest delay from sample time to arrival in that
 * replica's last three pulls + 1 s; a replica that went silent keeps its
 * last figures). Only a takeover, an epoch change led by a replica that
 * is not the smallest and a birth wait for that; the elected replica's
 * samples are stored as they come.
 *
 * Memory: per group 120 bytes, 48 per replica, the label set (16 + 16
 * per label; its strings are interned, shared with the head) and each
 * replica's queue of samples not yet decided (16 bytes a slot: 4 while
 * decisions follow arrivals, up to DEDUP_QUEUE_MAX (16 KiB) while one
 * waits, e.g. for a catch-up; beyond, the oldest is dropped). A group of
 * two replicas with six labels: about 470 bytes in steady state. A
 * group keeps at most DEDUP_MAX_REPLICAS replicas; one silent for an epoch
 * is forgotten. A group that received nothing for forget_ms is forgotten.
 * Replica label values are kept for the process' life (at most
 * DEDUP_MAX_VALUES; samples of further values pass through untouched).
 *
 * Threads: dedup_hook runs on the scrape workers, several at once; groups
 * live in DEDUP_SHARDS hash shards, each under its own mutex, which the
 * committer also takes while deciding. The committer alone appends,
 * reads the start-up table and frees groups. Stats are atomic.
 */
#ifndef STRATA_CENTRAL_DEDUP_H
#define STRATA_CENTRAL_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "scrape/scrape.h"
#include "tsdb/head.h"
#include "util/strbuf.h"

#define DEDUP_SHARDS 64
#define DEDUP_TICK_MS 100
#define DEDUP_EPOCH_MS (5 * 60 * 1000)
#define DEDUP_DEFAULT_SETTLE_MS (30 * 1000)
#define DEDUP_DEFAULT_FORGET_MS (15 * 60 * 1000)
#define DEDUP_DEFAULT_SPACING_MS (60 * 1000)	/* before two samples were stored */
#define DEDUP_QUEUE_MAX 1024
#define DEDUP_MAX_REPLICAS 8
#define DEDUP_MAX_VALUES 4096
#define DEDUP_STARTUP_KEEP_MS (10 * 60 * 1000)

struct dedup_opts {
	const char *replica_label;	/* the label naming the replica (copied) */
	int64_t settle_ms;		/* 0: DEDUP_DEFAULT_SETTLE_MS */
	int64_t forget_ms;		/* 0: DEDUP_DEFAULT_FORGET_MS */
	int64_t epoch_ms;		/* 0: DEDUP_EPOCH_MS */
	/* the clock (ms since the epoch); NULL: the wall clock */
	int64_t (*now)(void *arg);
	void *now_arg;
	/* no committer thread: the caller runs dedup_run() (tests) */
	bool manual;
};

struct dedup_stats {
	uint64_t groups;		/* strata_dedup_groups */
	uint64_t samples_in;		/* replicated samples the hook took */
	uint64_t samples_appended;	/* stored under the group's labels */
	uint64_t samples_dropped;	/* strata_dedup_samples_dropped_total */
	uint64_t switches;		/* strata_dedup_switches_total */
	uint64_t overflows;		/* dropped because a queue was full (also in dropped) */
	uint64_t append_errors;		/* refused by the store */
	uint64_t passthrough;		/* replica values beyond DEDUP_MAX_VALUES, kept as they are */
};

struct dedup;

/* dedup_new returns a deduplicator for o->replica_label (not started), or
 * NULL with err (an empty label name). Free with dedup_free(). */
struct dedup *dedup_new(const struct dedup_opts *o, char *err, size_t errlen);

/* dedup_start reads the newest sample of every series head holds
 * (borrowed; it must outlive dedup_stop) for the restart rule above and,
 * unless manual, starts the committer thread. Call once, before the scrape
 * manager has targets. Returns 0, or -1 with err. */
int dedup_start(struct dedup *d, struct tsdb_head *head, char *err, size_t errlen);

/* dedup_hook is the scrape_sample_fn (arg: the struct dedup): samples
 * without the replica label are kept as they are; the others are queued
 * and dropped from the scrape (SCRAPE_SAMPLE_DROP). Thread-safe. */
enum scrape_sample_verdict dedup_hook(void *arg, const struct scrape_sample *s,
    struct labels **replace);

/* dedup_run decides and appends what can be decided now (what the
 * committer thread does every DEDUP_TICK_MS). Returns the number of
 * samples appended. For manual mode; must not run beside the thread. */
size_t dedup_run(struct dedup *d);

/* dedup_set_settle sets the configured settle time (how long after its
 * timestamp every sample has been pulled). Thread-safe. */
void dedup_set_settle(struct dedup *d, int64_t ms);

/* dedup_stop stops the committer (samples not yet decided stay queued).
 * Idempotent; call after the scrape manager stopped, before the head is
 * closed. */
void dedup_stop(struct dedup *d);

/* dedup_free stops d and releases it. NULL is a no-op. */
void dedup_free(struct dedup *d);

/* dedup_get_stats fills *st. Thread-safe. */
void dedup_get_stats(struct dedup *d, struct dedup_stats *st);

/* dedup_collect is the /metrics collector (lib/api/metrics.h) of a struct
 * dedup (arg): strata_dedup_groups, strata_dedup_samples_dropped_total,
 * strata_dedup_switches_total and the other figures of struct dedup_stats. */
void dedup_collect(void *arg, struct strbuf *out);

#endif
