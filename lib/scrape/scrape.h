/* lib/scrape/scrape.h - the scrape manager: targets, loops, HTTP, appends.
 *
 * A scrape manager turns a configuration's scrape_configs into scrape pools
 * (one per job) of targets (static_configs and file_sd_configs groups, target
 * relabeling, an ownership filter for sharding) and scrapes every target on
 * its own timer, as Prometheus 2.42 does: same labels, same URLs, same
 * request headers, same synthetic series, limits, error texts and staleness
 * markers. Samples go to a tsdb head through appenders, one commit per scrape.
 *
 * Threads: one event-loop thread owns the timers and every HTTP transfer
 * (libcurl multi, sockets in epoll); a few worker threads inflate gzip
 * bodies, parse, relabel and append them; the caller's thread builds targets
 * in scrape_manager_apply() (reading file_sd files) and hands them to the
 * loop. A target costs about 30 KiB besides its series (libcurl handle and
 * its own connection cache, receive buffer). Every function below
 * may be called from any thread, but apply, resync, stop and free one at a
 * time (they are serialised internally; free must be the last call).
 *
 * Phase: a target with interval I is scraped at the wall-clock instants
 * t with t mod I == phase (ns since the epoch), where phase comes from the
 * target's labels and URL (lib/scrape/target.h: Prometheus' Target.offset
 * formula, with opts.jitter_seed for Prometheus' jitterSeed), so the same
 * configuration scrapes a target at the same instants on two servers, and a
 * target that survives a reload keeps its phase. The sample timestamp is the
 * scheduled instant when the loop was on time (within 2 ms, as Prometheus'
 * timestamp alignment), else the actual start.
 *
 * Pulls between strata servers: a target of a job whose __metrics_path__
 * ends in "/federate" with honor_labels and honor_timestamps true sends
 * X-Strata-Pull-Since: <cursor> (lib/expfmt/pull.h) with every request. A
 * plain Prometheus ignores it and answers text: the scrape is then exactly
 * Prometheus federation. A strata server answers a pull body: every sample
 * of (cursor, until] with its own timestamp (staleness markers bit-exact),
 * appended through an unrestricted appender (any age; the past goes out of
 * order), with honor_labels, metric relabeling, label limits, sample_limit
 * (every sample of the body that relabeling keeps counts) and the synthetic
 * series as for any scrape. The body is checked whole (syntax, "# EOF",
 * labels, limits) before anything is appended, then committed in pieces.
 * Pull mode writes no staleness marker of its own: not for series absent
 * from a body (a body only holds series with new samples), not on a failed
 * pull (the cursor stays, the next successful pull fills the gap); the
 * source's markers come through. A success moves the cursor to the body's
 * until; a body that ends more than an interval before now minus
 * SCRAPE_PULL_SETTLE_MS after advancing over 1.5 intervals (a capped answer
 * after a cut) is followed at once by the next pull, until caught up. Each
 * pull asks for at most the target's window (PULL_WINDOW_HEADER): it starts
 * at PULL_MAX_WINDOW_MS, halves after a failed pull (a catch-up body too big
 * to fetch within the timeout or the body limit) down to
 * PULL_MIN_WINDOW_MS, and doubles back after each successful one.
 * Cursors live per target (pool name and scrape URL) and, with
 * opts.state_dir, in the file SCRAPE_CURSOR_FILE there (tmp + fsync +
 * rename; at most once a second plus on the loop's sd poll and on stop),
 * which holds the cursor of the previous successful pull (one pull behind,
 * so a crash before the WAL synced re-pulls what it lost; re-pulled samples
 * are identical duplicates and dropped) and is read at start. Entries of
 * targets not pulled for SCRAPE_CURSOR_KEEP_MS are forgotten. Without a
 * cursor a target starts at now minus opts.pull_lookback_ms. While a
 * pull-capable target is answered in text the cursor follows now minus the
 * lookback, so a server upgraded to strata is pulled from there.
 *
 * Metadata: TYPE, HELP and UNIT lines are kept per target and metric family
 * in the target's scrape cache, as Prometheus does (an entry lives until 10
 * scrapes after the last one that mentioned it; at most
 * SCRAPE_META_MAX_FAMILIES families per target); scrape_manager_metadata()
 * lists them for /api/v1/metadata. Pull bodies carry none.
 */
#ifndef STRATA_SCRAPE_SCRAPE_H
#define STRATA_SCRAPE_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "expfmt/pull.h"
#include "labels/labels.h"
#include "tsdb/head.h"

/* Pull protocol constants (lib/expfmt/pull.h, shared with the server). */
#define SCRAPE_PULL_SETTLE_MS PULL_SETTLE_MS
#define SCRAPE_PULL_MAX_WINDOW_MS PULL_MAX_WINDOW_MS
#define SCRAPE_CURSOR_FILE "scrape-pull-cursors"
#define SCRAPE_CURSOR_KEEP_MS (7 * 86400 * 1000LL)
#define SCRAPE_META_MAX_FAMILIES 65536

/* --- the sample hook ---------------------------------------------------------
 *
 * opts.sample_hook, when set, is called for every sample about to be
 * appended to the store from a scraped or pulled body, after honor_labels,
 * target labels and metric relabeling and after the label limits, with the
 * series' final label set; and for every staleness marker the scrape cache
 * writes itself (a series gone from a body, a failed scrape, a removed
 * target: marker = true). It is not called for the synthetic series (up,
 * scrape_*), nor for samples that relabeling dropped, that lie too far in the
 * future, or beyond sample_limit (a scrape over its limit is refused whole).
 * It returns:
 *   SCRAPE_SAMPLE_KEEP     append s->ls as it is;
 *   SCRAPE_SAMPLE_DROP     append nothing (counted in samples_hook_dropped);
 *   SCRAPE_SAMPLE_REPLACE  append under *replace instead: a label set the
 *                          hook hands over (one reference, which the scrape
 *                          cache takes). Returning the same labels object for
 *                          a series each time (a new reference to a set the
 *                          hook keeps) costs a pointer comparison; another
 *                          object costs a labels_equal() and, when it
 *                          differs, a series lookup. NULL means KEEP.
 * Unset, it costs one NULL test per sample; set, one indirect call per
 * sample and a 16-byte slot per cached series.
 *
 * Threads and order: the hook runs on the worker thread that appends the
 * target's scrape (end-of-run markers of a removed target: on the scrape
 * loop thread), never twice at once for one target, and the calls for one
 * target are ordered: every call of a scrape happens before every call of
 * the target's next scrape (hand-off through the manager's queues). Within
 * a scrape: the samples in body order, then (text scrapes) the markers of
 * the series the previous scrape had; within a pull body, series after
 * series, each series' samples in time order, and a series' timestamps grow
 * from pull to pull (except after a restart, which re-pulls the last window:
 * the same samples again). Different targets run concurrently on different
 * workers: the hook must be thread-safe. The hook must not call the scrape
 * manager. What the hook sees is staged, not yet committed: a text scrape
 * that fails later in its body (parse error, sample_limit) is rolled back
 * after the hook saw its first samples (the failure's markers follow); a
 * pull body is checked whole before its first call, so only a store error
 * can refuse a pull's samples after the hook saw them. The store may still
 * refuse a kept sample as out of order or duplicate; the hook is not told.
 */
enum scrape_sample_verdict {
	SCRAPE_SAMPLE_KEEP = 0,
	SCRAPE_SAMPLE_DROP,
	SCRAPE_SAMPLE_REPLACE,
};

struct scrape_sample {
	const struct labels *target;	/* the target's labels (no __ names) */
	const struct labels *ls;	/* the series' final labels */
	int64_t t;			/* ms */
	double v;			/* bits as they will be stored */
	bool pull;			/* from a strata pull body */
	bool marker;			/* a staleness marker the scrape cache wrote */
};

typedef enum scrape_sample_verdict (*scrape_sample_fn)(void *arg,
    const struct scrape_sample *s, struct labels **replace);

struct scrape_opts {
	struct tsdb_head *head;		/* borrowed: where samples are appended */
	/* Ownership filter for sharding: called for every target after target
	 * relabeling with its full label set (__address__, __scheme__,
	 * __metrics_path__, __param_*, job, instance, ...; no __meta_*);
	 * false makes the target dropped (listed in droppedTargets) instead of
	 * scraped. NULL: own everything. Must be thread-safe and must not call
	 * back into the scrape manager (it runs under the manager's lock);
	 * scrape_manager_resync() re-evaluates it for all targets. */
	bool (*owns)(void *arg, const struct labels *target_labels);
	void *owns_arg;
	const char *user_agent;		/* e.g. "strata/0.1.0"; NULL: "strata" */
	/* additions to the brief, all optional (0 = default) */
	unsigned workers;		/* parse/append threads; 0: online CPUs, at most 8 */
	uint64_t jitter_seed;		/* xor'ed into every target's phase hash; 0 */
	int64_t sd_poll_ms;		/* file_sd mtime poll period; 0: 5000 */
	/* pulls between strata servers (see top) */
	const char *state_dir;		/* where the cursor file lives; NULL: none (copied) */
	int64_t pull_lookback_ms;	/* cursor start without a saved one; 0: 5 min */
	scrape_sample_fn sample_hook;	/* NULL: none (see above) */
	void *sample_hook_arg;
};

struct scrape_manager;

/* scrape_manager_new starts the loop and worker threads with no pools.
 * Returns the manager (free with scrape_manager_free()) or NULL with err. */
struct scrape_manager *scrape_manager_new(const struct scrape_opts *o, char *err, size_t errlen);

/* scrape_manager_apply installs cfg's scrape_configs; cfg is borrowed and
 * must stay alive until the next apply (or free) returns. Targets whose
 * identity (labels and URL) did not change keep their loop: no gap, same
 * phase, same scrape cache (unless honor_labels, honor_timestamps,
 * metric_relabel_configs or a label limit of the job changed: then the
 * target restarts like a new one and the old loop's series go stale).
 * Removed targets get staleness markers two intervals later, as in
 * Prometheus, unless they came back. file_sd files are read now and then
 * polled (mtime, size, inode) every sd_poll_ms and re-read at their
 * refresh_interval. Returns 0, or -1 with err (then nothing changed): only
 * for what strata cannot scrape (oauth2). An unreadable file_sd file is
 * logged and counted, not an error (as Prometheus). Returns after no scrape
 * still uses the previous configuration. */
int scrape_manager_apply(struct scrape_manager *m, const struct cfg *cfg, char *err, size_t errlen);

/* scrape_manager_resync re-runs owns() on every target, starting targets
 * now owned and retiring (with staleness markers) those no longer owned.
 * Returns when done. */
void scrape_manager_resync(struct scrape_manager *m);

/* scrape_manager_stop stops scraping: transfers are cancelled, appends in
 * progress finish, no staleness markers are written (as Prometheus on
 * shutdown). Idempotent. */
void scrape_manager_stop(struct scrape_manager *m);

/* scrape_manager_free stops m if needed and releases it; NULL is a no-op. */
void scrape_manager_free(struct scrape_manager *m);

enum scrape_health { SCRAPE_UNKNOWN, SCRAPE_UP, SCRAPE_DOWN };

/* One target, a snapshot; every pointer is owned by the array. */
struct scrape_target_info {
	char *pool;			/* job name */
	struct labels *discovered;	/* before relabeling (__meta_*, __address__, job, ...) */
	struct labels *labels;		/* after relabeling, without __ labels; NULL when dropped */
	bool active;			/* false: dropped by relabeling or not owned */
	char *scrape_url, *global_url;	/* NULL when dropped; global_url == scrape_url for now */
	char *address;			/* __address__ after relabeling: active and not-owned
					 * targets; NULL when dropped by relabeling */
	bool pull;			/* active: the last successful scrape was a strata pull */
	char *last_error;		/* "" when none; NULL when dropped */
	int64_t last_scrape_ms;		/* wall clock of the last scrape start; 0 = never */
	double last_duration_s;
	enum scrape_health health;
	int64_t interval_ms, timeout_ms;
};

/* scrape_manager_targets returns every target of every pool: the active
 * ones of a pool first (in discovery order), then its dropped ones. Returns
 * 0 with *out (free with scrape_target_info_free(*out, *n)) and *n. */
int scrape_manager_targets(struct scrape_manager *m, struct scrape_target_info **out, size_t *n);
void scrape_target_info_free(struct scrape_target_info *v, size_t n);

/* Per pool figures. */
struct scrape_pool_stats {
	char *pool;			/* owned */
	uint64_t targets;		/* prometheus_target_scrape_pool_targets (active, deduplicated) */
	uint64_t dropped;		/* dropped by relabeling or ownership */
	uint64_t discovered;		/* prometheus_sd_discovered_targets{config=pool} */
	uint64_t target_limit;		/* prometheus_target_scrape_pool_target_limit */
	uint64_t sync_failed;		/* prometheus_target_sync_failed_total (targets refused) */
};

/* Observed intervals between scrape starts of one configured interval,
 * prometheus_target_interval_length_seconds{interval=...}: a summary. */
struct scrape_interval_stats {
	int64_t interval_ms;		/* the label; format it as Go's Duration.String() */
	uint64_t count;
	double sum;			/* seconds */
	double q[5];			/* quantiles 0.01 0.05 0.5 0.9 0.99 of the last 1024 observations; NaN if none */
};

/* Manager-wide counters (totals since scrape_manager_new). */
struct scrape_stats {
	uint64_t scrapes;		/* scrapes done (strata_scrapes_total) */
	uint64_t scrapes_failed;	/* with up == 0 (strata_scrapes_failed_total) */
	uint64_t samples_appended;	/* samples after metric relabeling in successful scrapes
					 * (synthetic series not counted) */
	uint64_t ticks_skipped;		/* intervals skipped: the previous scrape was still running */
	uint64_t exceeded_sample_limit;	/* prometheus_target_scrapes_exceeded_sample_limit_total */
	uint64_t exceeded_body_size_limit; /* prometheus_target_scrapes_exceeded_body_size_limit_total */
	uint64_t exceeded_label_limits;	/* prometheus_target_scrape_pool_exceeded_label_limits_total */
	uint64_t exceeded_target_limit;	/* prometheus_target_scrape_pool_exceeded_target_limit_total */
	uint64_t sample_out_of_order;	/* prometheus_target_scrapes_sample_out_of_order_total */
	uint64_t sample_duplicate;	/* prometheus_target_scrapes_sample_duplicate_timestamp_total */
	uint64_t sample_out_of_bounds;	/* prometheus_target_scrapes_sample_out_of_bounds_total */
	uint64_t cache_flush_forced;	/* prometheus_target_scrapes_cache_flush_forced_total */
	uint64_t sd_file_read_errors;	/* prometheus_sd_file_read_errors_total */
	uint64_t reloads, reloads_failed; /* prometheus_target_scrape_pool_reloads(_failed)_total */
	uint64_t pulls;			/* successful strata pulls (strata_scrape_pulls_total) */
	uint64_t pull_catchups;		/* pulls started at once to catch up after a cut */
	uint64_t pull_samples;		/* samples appended from pull bodies (after hook) */
	uint64_t cursor_write_errors;	/* cursor file writes that failed */
	uint64_t samples_hook_dropped;	/* samples the sample hook dropped */
	struct scrape_pool_stats *pools;
	size_t n_pools;
	struct scrape_interval_stats *intervals;
	size_t n_intervals;
};

/* One metric family's metadata as a target exposed it. */
struct scrape_metadata {
	const char *metric;		/* family name */
	const char *type;		/* "counter", "gauge", ..., "unknown" (untyped) */
	const char *help;		/* "" when none */
	const char *unit;		/* "" when none */
};

/* scrape_manager_metadata calls emit for every distinct (metric, type,
 * help, unit) of the active targets (all of them merged, duplicates once),
 * ordered by metric, then type, help, unit; only metric's when metric is
 * not NULL. The strings are valid during the call. Runs on the caller's
 * thread; emit must not call the manager. (lib/daemon/core.c adapts it to
 * api_metadata_fn.) */
void scrape_manager_metadata(struct scrape_manager *m, const char *metric,
    void (*emit)(void *ctx, const struct scrape_metadata *md), void *ctx);

/* scrape_manager_stats fills *st; release with scrape_stats_free(). */
void scrape_manager_stats(struct scrape_manager *m, struct scrape_stats *st);
/* scrape_stats_free releases the arrays of st and zeroes it. */
void scrape_stats_free(struct scrape_stats *st);

#endif
