/* lib/tsdb/head.h - the in-memory head of the time-series store.
 *
 * The head holds every active series: its label set, its closed XOR chunks,
 * one open chunk and its newest sample uncompressed. Series are found by
 * label set (a hash map sharded by labels hash, collisions resolved with
 * labels_equal) or by ref, a stable id the head assigns at creation and never
 * reuses, which a scrape loop caches to append without hashing labels again.
 * A postings index (lib/tsdb/postings.h) answers matcher sets.
 *
 * Writes go through an appender: samples are checked as they are added
 * (Prometheus' rules: same timestamp and same value bits is a duplicate,
 * accepted and counted; same timestamp and other value is "duplicate sample
 * for timestamp"; older than the newest is "out of order sample") and become
 * visible together at commit: a reader never sees part of a commit, nor a
 * half-written chunk. Commits are applied one at a time (a commit mutex);
 * a WAL will hook in at commit, before samples are applied.
 *
 * Threads: any number of appenders and readers. Series state is guarded by
 * striped mutexes (by id), the label map by sharded rwlocks, the postings by
 * their own rwlock. Readers copy the open chunk and take references on closed
 * chunks under the series' stripe lock, then decode without any lock.
 */
#ifndef STRATA_TSDB_HEAD_H
#define STRATA_TSDB_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/matcher.h"

#define TSDB_DEFAULT_CHUNK_RANGE (2 * 3600 * 1000)	/* ms, Prometheus' 2h */
#define TSDB_SAMPLES_PER_CHUNK 120

enum tsdb_err {
	TSDB_OK = 0,
	TSDB_ERR_OUT_OF_ORDER = -1,	/* "out of order sample" */
	TSDB_ERR_DUPLICATE = -2,	/* "duplicate sample for timestamp" */
	TSDB_ERR_NOT_FOUND = -3,	/* unknown ref and no labels given */
	TSDB_ERR_EMPTY_LABELS = -4,	/* "empty labelset" */
	TSDB_ERR_TOO_MANY_SERIES = -5,	/* series ids exhausted */
};

struct tsdb_head_opts {
	int64_t chunk_range;	/* ms; chunks never span a multiple of it; 0 = 2h */
};

struct tsdb_head_stats {
	uint64_t series;		/* live series */
	uint64_t series_created;	/* total */
	uint64_t series_removed;	/* total, by tsdb_head_gc */
	uint64_t samples_appended;	/* total, committed */
	uint64_t duplicates;		/* identical samples accepted and dropped */
	uint64_t out_of_order;		/* rejected (append or commit) */
	uint64_t duplicate_ts;		/* rejected: same t, other value */
	uint64_t chunks;		/* live chunks (closed + open) */
	uint64_t chunks_created;	/* total */
	uint64_t chunks_removed;	/* total */
	int64_t mint;			/* oldest sample, INT64_MAX when empty */
	int64_t maxt;			/* newest sample, INT64_MIN when empty */
};

/* One series' newest sample, for /federate. */
struct tsdb_latest {
	struct labels *ls;	/* one reference, released by tsdb_latest_free */
	uint64_t ref;
	int64_t t;
	double v;		/* bits as appended (stale markers intact) */
};

/* A sorted list of interned strings (one intern reference each). */
struct tsdb_strings {
	const char **v;
	size_t n;
};

struct tsdb_head;
struct tsdb_appender;
struct tsdb_series_set;
struct tsdb_iter;

/* tsdb_strerror returns Prometheus' message for a tsdb_err. */
const char *tsdb_strerror(int err);

/* tsdb_head_new returns an empty head (opts may be NULL for defaults), or
 * NULL with a message in err. Free with tsdb_head_free(). */
struct tsdb_head *tsdb_head_new(const struct tsdb_head_opts *opts, char *err, size_t errlen);
/* tsdb_head_free releases the head; no appender or reader may be live. */
void tsdb_head_free(struct tsdb_head *h);

/* tsdb_appender_new returns an appender on h; free with tsdb_appender_free().
 * One thread uses an appender at a time; it can be reused after a commit. */
struct tsdb_appender *tsdb_appender_new(struct tsdb_head *h);
/* tsdb_appender_append stages one sample. *ref (may be NULL) is a series ref
 * from an earlier append or 0; when it names a live series ls is not looked
 * at, else the series is found or created from ls (borrowed). On success *ref
 * is set to the series' ref (cache it). Returns 0 (also for an identical
 * duplicate, which is counted and dropped), TSDB_ERR_OUT_OF_ORDER,
 * TSDB_ERR_DUPLICATE, TSDB_ERR_NOT_FOUND, TSDB_ERR_EMPTY_LABELS or
 * TSDB_ERR_TOO_MANY_SERIES. */
int tsdb_appender_append(struct tsdb_appender *a, uint64_t *ref,
    struct labels *ls, int64_t t, double v);
/* tsdb_appender_commit applies the staged samples and makes them visible
 * together. Samples that became out of order since staging (another
 * appender got there first) are dropped and counted. Returns 0. */
int tsdb_appender_commit(struct tsdb_appender *a);
/* tsdb_appender_rollback drops the staged samples. */
void tsdb_appender_rollback(struct tsdb_appender *a);
/* tsdb_appender_series_created returns how many series this appender
 * created since it was made (scrape_series_added). */
uint64_t tsdb_appender_series_created(const struct tsdb_appender *a);
/* tsdb_appender_free rolls back what is staged and frees a. NULL is a no-op. */
void tsdb_appender_free(struct tsdb_appender *a);
/* tsdb_head_append appends and commits one sample (see
 * tsdb_appender_append for ref, ls and the result). */
int tsdb_head_append(struct tsdb_head *h, uint64_t *ref, struct labels *ls,
    int64_t t, double v);

/* tsdb_head_select returns the series matching all n matchers (borrowed,
 * n >= 1) with samples in [mint, maxt], in labels order, as of the last
 * commit. Free with tsdb_series_set_free(). */
struct tsdb_series_set *tsdb_head_select(struct tsdb_head *h,
    struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt);
/* tsdb_series_set_next moves to the next series; false at the end. */
bool tsdb_series_set_next(struct tsdb_series_set *ss);
/* tsdb_series_set_labels returns the current series' labels (owned by the
 * set, valid until it is freed; labels_ref() to keep them longer). */
const struct labels *tsdb_series_set_labels(const struct tsdb_series_set *ss);
/* tsdb_series_set_ref returns the current series' ref. */
uint64_t tsdb_series_set_ref(const struct tsdb_series_set *ss);
/* tsdb_series_set_iter returns the sample iterator of the current series,
 * over [mint, maxt]; owned by the set and reset by tsdb_series_set_next. */
struct tsdb_iter *tsdb_series_set_iter(struct tsdb_series_set *ss);
/* tsdb_series_set_count returns how many series the set holds in total. */
size_t tsdb_series_set_count(const struct tsdb_series_set *ss);
void tsdb_series_set_free(struct tsdb_series_set *ss);

/* tsdb_iter_next moves to the next sample; false at the end. */
bool tsdb_iter_next(struct tsdb_iter *it, int64_t *t, double *v);
/* tsdb_iter_seek moves to the first sample at or after t (staying when the
 * current one is) and returns it; false when there is none. */
bool tsdb_iter_seek(struct tsdb_iter *it, int64_t t, int64_t *tout, double *vout);

/* tsdb_head_latest fills *out with the newest committed sample of every
 * series matching the n matchers whose newest sample is at or after mint,
 * in labels order, without decoding chunks. Caller frees with
 * tsdb_latest_free(*out, *nout). Returns 0. */
int tsdb_head_latest(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, struct tsdb_latest **out, size_t *nout);
void tsdb_latest_free(struct tsdb_latest *v, size_t n);

/* tsdb_head_label_names fills out with the label names of the series
 * matching the n matchers (all series when n is 0), sorted. */
void tsdb_head_label_names(struct tsdb_head *h, struct matcher *const *ms,
    size_t n, struct tsdb_strings *out);
/* tsdb_head_label_values fills out with the values of label name among the
 * series matching the n matchers (all series when n is 0), sorted. */
void tsdb_head_label_values(struct tsdb_head *h, const char *name,
    struct matcher *const *ms, size_t n, struct tsdb_strings *out);
/* tsdb_strings_free releases what the label functions returned. */
void tsdb_strings_free(struct tsdb_strings *s);

/* tsdb_head_stats fills st (counters are read without stopping writers). */
void tsdb_head_stats(struct tsdb_head *h, struct tsdb_head_stats *st);
/* tsdb_head_gc drops chunks whose samples are all older than mint and the
 * series left without samples (unless an appender has samples staged for
 * them). Live series keep their refs. Returns the number of series removed. */
size_t tsdb_head_gc(struct tsdb_head *h, int64_t mint);

#endif
