/* lib/scrape/cache.h - one target's scrape cache and the append of a scrape.
 *
 * The cache is Prometheus' scrapeCache: it maps the series text of a sample
 * as the target wrote it (`name{labels}`, byte for byte) to the final label
 * set (after target labels and metric relabeling) and the head's series ref,
 * so a sample seen before costs one hash of its text, one probe and one
 * appender call: no label parsing, no allocation. Texts dropped by metric
 * relabeling are cached as dropped.
 *
 * The texts are not kept: a text is known by its length and its 128-bit
 * hash (expfmt_series_hash, XXH3) under a random seed drawn per cache, so a
 * target cannot aim at collisions without knowing the seed. Two texts of
 * one target collide with a probability of about n^2 / 2^129 for n texts
 * in the cache (1e-27 for a million); a hinted line (expfmt_expect) is
 * taken for another series with 2^-128 per sample. A collision would file
 * the samples of one series under the other; it cannot crash anything.
 * XXH3 is not a cryptographic hash: the seed stops precomputed collisions,
 * not an attacker who can learn hashes (the cache shows them to no one).
 *
 * The same table tracks staleness: every entry remembers whether the
 * previous scrape succeeded and appended it without an explicit
 * timestamp, so the series of the previous scrape that are missing
 * from this one get a stale marker (NaN 0x7ff0000000000002) at this scrape's
 * timestamp; a failed scrape marks every series of the previous scrape stale;
 * scrape_cache_end_of_run does the same when the target goes away.
 *
 * Entries not seen in the last successful scrape are dropped from the cache
 * after it (and after a failed one once the table holds more than twice the
 * entries of the last success plus 1000, as Prometheus forces a flush).
 *
 * Pull bodies (scrape_cache_append_pull) use the same table keyed by the
 * body's "S" line; they take no part in staleness tracking, and their
 * entries stay cached while a series was in one of the last
 * SCRAPE_PULL_CACHE_KEEP pulls (a pull body only holds the series that got
 * samples since the previous one).
 *
 * The sample hook (scrape.h) is called from the append functions below
 * when set with scrape_cache_set_hook(); its replacement label sets are
 * cached per entry. Metadata (TYPE, HELP, UNIT) is kept per family; it is
 * the only part of a cache read by other threads (under its own lock).
 *
 * A cache belongs to one target and is used by one thread at a time (the
 * scrape worker that holds the target); only the metadata has a lock. A
 * struct scrape_scratch is a worker's reusable parsers, builder and buffers.
 */
#ifndef STRATA_SCRAPE_CACHE_H
#define STRATA_SCRAPE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expfmt/parse.h"
#include "labels/labels.h"
#include "relabel/relabel.h"
#include "scrape/scrape.h"
#include "tsdb/head.h"

/* Pull entries stay cached this many pulls after their series' last body. */
#define SCRAPE_PULL_CACHE_KEEP 8
/* A pull body is committed in pieces of this many samples. */
#define SCRAPE_PULL_COMMIT_EVERY 65536

/* Samples further in the future than this are out of bounds (Prometheus'
 * maxAheadTime). */
#define SCRAPE_MAX_AHEAD_MS (10 * 60 * 1000)

/* What the append of a scrape needs to know about its job and target
 * (borrowed for the call). */
struct scrape_append_conf {
	const struct labels *target;	/* public target labels (no __ names) */
	bool honor_labels;
	bool honor_timestamps;
	uint64_t sample_limit;		/* 0: none */
	uint64_t label_limit;
	uint64_t label_name_length_limit;
	uint64_t label_value_length_limit;
	struct relabel_rule *const *metric_relabel;
	size_t n_metric_relabel;
};

/* The figures of one scrape. */
struct scrape_append_result {
	uint64_t total;		/* samples in the body (scrape_samples_scraped) */
	uint64_t added;		/* after metric relabeling (..._post_metric_relabeling) */
	uint64_t series_added;	/* new cache entries appended (scrape_series_added) */
	uint64_t out_of_order, duplicate, out_of_bounds;
	bool sample_limit;	/* the failure was "sample limit exceeded" */
	bool label_limits;	/* the failure was a label limit */
};

struct scrape_cache;
struct scrape_scratch;

/* scrape_cache_new returns an empty cache; free with scrape_cache_free(). */
struct scrape_cache *scrape_cache_new(void);
/* scrape_cache_free releases the cache and its label references; NULL is a no-op. */
void scrape_cache_free(struct scrape_cache *c);
/* scrape_cache_size returns the number of cached series (texts). */
size_t scrape_cache_size(const struct scrape_cache *c);
/* scrape_cache_has_scraped tells whether any scrape was recorded (success or
 * failure): only then does end-of-run staleness apply. */
bool scrape_cache_has_scraped(const struct scrape_cache *c);

/* scrape_scratch_new returns per-thread working state; free with
 * scrape_scratch_free(). */
struct scrape_scratch *scrape_scratch_new(void);
void scrape_scratch_free(struct scrape_scratch *w);

/* scrape_cache_append parses body[0..len) in format fmt and stages its
 * samples on app at ts_ms (or their own timestamps under honor_timestamps),
 * then the stale markers of series gone since the previous scrape. now_ms
 * bounds future timestamps. Fills *r. Returns 0, or -1 with Prometheus'
 * error (a parse error as "line:column: message", "sample limit exceeded",
 * a label limit, ...) in err: the caller then rolls app back and calls
 * scrape_cache_fail(). Out-of-order, duplicate and out-of-bounds samples are
 * counted in *r and skipped, as Prometheus does. */
int scrape_cache_append(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    enum expfmt_format fmt, const char *body, size_t len, int64_t ts_ms,
    int64_t now_ms, struct scrape_append_result *r, char *err, size_t errlen);

/* The window a pull body covered. */
struct scrape_pull_window {
	int64_t since, until;
};

/* scrape_cache_append_pull checks the whole pull body body[0..len)
 * (lib/expfmt/pull.h: syntax, "# EOF", a window starting at or before
 * want_since, labels after honor_labels/target labels/metric relabeling,
 * label limits, sample_limit over every kept sample), then appends every
 * kept sample at its own timestamp on app (meant to be an unrestricted
 * appender), committing every SCRAPE_PULL_COMMIT_EVERY samples and at the
 * end. No staleness tracking. Fills *r and *win. Returns 0 with nothing
 * staged, or -1 with the reason in err: nothing was appended unless the
 * store refused a commit (then earlier pieces stay; re-pulling them later
 * adds identical duplicates, which the store drops). The caller then
 * calls scrape_cache_fail() as for a failed scrape (it writes no marker
 * for pulled series). */
int scrape_cache_append_pull(struct scrape_cache *c, struct scrape_scratch *w,
    struct tsdb_appender *app, const struct scrape_append_conf *conf,
    const char *body, size_t len, int64_t want_since, int64_t now_ms,
    struct scrape_pull_window *win, struct scrape_append_result *r,
    char *err, size_t errlen);

/* scrape_cache_set_hook makes c call fn(arg, ...) for its samples (see
 * scrape.h) with target as the sample's target labels (a reference is
 * taken). Call before the first append. */
void scrape_cache_set_hook(struct scrape_cache *c, scrape_sample_fn fn, void *arg,
    const struct labels *target);
/* scrape_cache_take_hook_dropped returns how many samples the hook dropped
 * since the previous call. */
uint64_t scrape_cache_take_hook_dropped(struct scrape_cache *c);

/* scrape_cache_metadata calls fn for every metric family with metadata
 * (only metric's when metric is not NULL): type as Prometheus names it
 * ("unknown" for untyped), help and unit "" when none. Strings are valid
 * during the call. Thread-safe against the cache's appends; the cache
 * must stay alive. */
void scrape_cache_metadata(struct scrape_cache *c, const char *metric,
    void (*fn)(void *ctx, const char *metric, const char *type, const char *help,
    const char *unit), void *ctx);

/* scrape_cache_fail records a failed scrape at ts_ms: it stages a stale
 * marker on app for every series the previous scrape appended. Returns
 * true when the cache had grown too much and was flushed (Prometheus'
 * forced flush). */
bool scrape_cache_fail(struct scrape_cache *c, struct tsdb_appender *app, int64_t ts_ms);

/* scrape_cache_report stages the synthetic series of a scrape with the
 * target labels: up, scrape_duration_seconds, scrape_samples_scraped,
 * scrape_samples_post_metric_relabeling, scrape_series_added. */
void scrape_cache_report(struct scrape_cache *c, struct tsdb_appender *app,
    const struct labels *target, int64_t ts_ms, bool up, double duration_s,
    uint64_t scraped, uint64_t added, uint64_t series_added);

/* scrape_cache_end_of_run stages, at ts_ms, stale markers for the series of
 * the last scrape (if it succeeded) and for the five synthetic series: what
 * Prometheus writes when a target goes away. */
void scrape_cache_end_of_run(struct scrape_cache *c, struct tsdb_appender *app,
    const struct labels *target, int64_t ts_ms);

#endif
