/* lib/tsdb/head.h - the in-memory head of the time-series store.
 *
 * The head holds every active series: its label set, its closed XOR chunks
 * (in memory, or with a chunk store attached in memory-mapped files, so
 * that a series costs little more than its index entries and open chunk),
 * one open chunk and its newest sample uncompressed, and the samples written
 * out of order (a sorted array per series). Series are found by label set (a
 * hash map sharded by labels hash, collisions resolved with labels_equal) or
 * by ref, a stable id the head assigns at creation and never reuses, which a
 * scrape loop caches to append without hashing labels again. A postings
 * index (lib/tsdb/postings.h) answers matcher sets.
 *
 * Writes go through an appender: samples are checked as they are added
 * (Prometheus' rules: same timestamp and same value bits is a duplicate,
 * accepted and counted; same timestamp and other value is "duplicate sample
 * for timestamp"; older than the newest is "out of order sample", unless
 * out-of-order writes are allowed: within ooo_window of the head's newest
 * sample, or always for an unrestricted appender; older than the head's
 * min valid time is "out of bounds") and become visible together at commit:
 * a reader never sees part of a commit's in-order samples, nor a
 * half-written chunk. Commits are applied one at a time (a commit mutex).
 * When a store (lib/tsdb/db.h) attaches hooks, each commit is logged to the
 * WAL before it is applied, and a commit the log refuses is dropped whole.
 * An observer (tsdb_head_set_observer) sees each commit once applied.
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
#include "tsdb/chunk.h"

#define TSDB_DEFAULT_CHUNK_RANGE (2 * 3600 * 1000)	/* ms, Prometheus' 2h */
#define TSDB_SAMPLES_PER_CHUNK 120

enum tsdb_err {
	TSDB_OK = 0,
	TSDB_ERR_OUT_OF_ORDER = -1,	/* "out of order sample" */
	TSDB_ERR_DUPLICATE = -2,	/* "duplicate sample for timestamp" */
	TSDB_ERR_NOT_FOUND = -3,	/* unknown ref and no labels given */
	TSDB_ERR_EMPTY_LABELS = -4,	/* "empty labelset" */
	TSDB_ERR_TOO_MANY_SERIES = -5,	/* series ids exhausted */
	TSDB_ERR_OUT_OF_BOUNDS = -6,	/* "out of bounds" */
	TSDB_ERR_IO = -7,		/* the write-ahead log refused the commit */
	TSDB_ERR_TOO_OLD = -8,		/* "too old sample": before the ooo window */
};

struct tsdb_head_opts {
	int64_t chunk_range;	/* ms; chunks never span a multiple of it; 0 = 2h */
	int64_t ooo_window;	/* ms; out-of-order writes accepted this far behind
				 * the newest sample; 0 = none (Prometheus' default) */
	bool bounded;		/* refuse in-order samples older than the newest
				 * minus chunk_range/2 ("out of bounds"), as
				 * Prometheus' head does; set by the store */
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
	/* out-of-order writes and the store */
	uint64_t ooo_samples;		/* held out of order now */
	uint64_t ooo_appended;		/* total, committed out of order */
	uint64_t out_of_bounds;		/* rejected: older than the min valid time */
	uint64_t too_old;		/* rejected: older than the ooo window */
	uint64_t commits_failed;	/* refused by the write-ahead log */
	int64_t mint_inorder;		/* oldest in-order sample, INT64_MAX when none */
	int64_t min_valid;		/* set by tsdb_head_roll; INT64_MIN at first */
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
/* tsdb_appender_new_unrestricted returns an appender that writes samples of
 * any age: what the head cannot take in order is kept out of order until the
 * store moves it to blocks. For imports and the central's gap repair. */
struct tsdb_appender *tsdb_appender_new_unrestricted(struct tsdb_head *h);
/* tsdb_appender_append stages one sample. *ref (may be NULL) is a series ref
 * from an earlier append or 0; when it names a live series ls is not looked
 * at, else the series is found or created from ls (borrowed). On success *ref
 * is set to the series' ref (cache it). Returns 0 (also for an identical
 * duplicate, which is counted and dropped), TSDB_ERR_OUT_OF_ORDER,
 * TSDB_ERR_DUPLICATE, TSDB_ERR_NOT_FOUND, TSDB_ERR_EMPTY_LABELS or
 * TSDB_ERR_TOO_MANY_SERIES. */
int tsdb_appender_append(struct tsdb_appender *a, uint64_t *ref,
    struct labels *ls, int64_t t, double v);
/* One sample of tsdb_appender_append_batch: ref (not NULL), ls, t and v as
 * tsdb_appender_append takes them; rc is set to what it returns, hint to
 * where the series lives (or NULL): kept with the ref, tsdb_hint_prefetch()
 * of it before the series' next append saves a cache miss. A hint is never
 * dereferenced; a stale one costs a useless prefetch. */
struct tsdb_append_item {
	uint64_t *ref;
	struct labels *ls;
	int64_t t;
	double v;
	int rc;
	const void *hint;
};

/* tsdb_hint_prefetch asks for the series a hint names (two cache lines). */
static inline void
tsdb_hint_prefetch(const void *hint)
{
	if (hint != NULL) {
		__builtin_prefetch(hint);
		__builtin_prefetch((const char *)hint + 64);
	}
}
/* tsdb_appender_append_batch stages it[0..n) in order, as n calls of
 * tsdb_appender_append would, setting each it[i].rc; cheaper per sample when
 * the refs are known (one stripe lock for a run of series made together,
 * their cache misses overlapped). */
void tsdb_appender_append_batch(struct tsdb_appender *a, struct tsdb_append_item *it,
    size_t n);
/* tsdb_appender_commit applies the staged samples and makes them visible
 * together. Samples that became out of order since staging (another
 * appender got there first) are dropped and counted. Returns 0, or
 * TSDB_ERR_IO when the store's write-ahead log refused the commit (disk
 * full...): then nothing of it was applied and the appender is empty. */
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

/* --- store integration (lib/tsdb/db.c, the WAL and block cutting) --------- */

/* A series first written by a commit, as logged. */
struct tsdb_log_series {
	uint32_t id;
	const struct labels *ls;
};

/* A sample as logged: value bits as appended. */
struct tsdb_log_sample {
	uint32_t id;
	int64_t t;
	uint64_t v;
};

/* A sample held out of order, with the generation it was committed in. */
struct tsdb_ooo_sample {
	int64_t t;
	uint64_t v;
	uint32_t gen;
};

struct tsdb_head_hooks {
	/* log writes a commit's new series and samples before it is applied
	 * (commit lock held). Returns 0, or a tsdb_err that drops the commit;
	 * *pos is passed to wait. */
	int (*log)(void *arg, const struct tsdb_log_series *s, size_t ns,
	    const struct tsdb_log_sample *v, size_t nv, uint64_t *pos);
	/* wait is called after the commit lock is released. May be NULL. */
	void (*wait)(void *arg, uint64_t pos);
	/* roll starts a new log segment (commit lock held). May be NULL. */
	void (*roll)(void *arg);
	void *arg;
};

/* tsdb_head_set_hooks attaches a log; call before any appender exists. */
void tsdb_head_set_hooks(struct tsdb_head *h, const struct tsdb_head_hooks *hk);

/* --- commit observer (remote write: lib/remote/feed.c) ----------------------- */

/* A commit observer sees every commit once it is applied, in commit order,
 * on the committing thread with the commit lock held:
 * - s[0..ns): the series whose record this commit logged, i.e. the series
 *   no earlier commit wrote since the store attached its log (with no log
 *   attached, ns is 0); labels borrowed for the call (labels_ref to keep);
 * - v[0..nv): the samples the commit applied (in order or out of order),
 *   in staging order; samples the commit dropped (identical to one
 *   committed since staging, or no longer appendable) are left out. nv can
 *   be 0 when all were dropped.
 * It must return quickly, never block, and never call into the head: copy
 * what it needs and hand it to another thread. A series' samples reach it
 * in the order they were applied to the series. */
typedef void (*tsdb_commit_observer_fn)(void *arg, const struct tsdb_log_series *s,
    size_t ns, const struct tsdb_log_sample *v, size_t nv);

/* tsdb_head_set_observer attaches fn with arg (fn NULL detaches), at any
 * time: it waits for the commit in progress, so once it returns the old
 * observer is not called again. One observer at a time. */
void tsdb_head_set_observer(struct tsdb_head *h, tsdb_commit_observer_fn fn, void *arg);
/* tsdb_head_series_labels returns the labels of live series ref with one
 * reference (caller frees with labels_free()), or NULL when there is no
 * such series (never was, or removed by truncation or GC). Takes the
 * series' stripe lock only; any thread but an observer's call. */
struct labels *tsdb_head_series_labels(struct tsdb_head *h, uint64_t ref);

/* tsdb_head_roll, under the commit lock, raises the min valid time to
 * min_valid (in-order samples older than it are refused or go out of order
 * from now on), rolls the log and starts a new generation, which it returns:
 * every out-of-order sample of a lower generation was committed (and
 * logged) before the call. */
uint32_t tsdb_head_roll(struct tsdb_head *h, int64_t min_valid);

struct hchunks;
struct hchunks_file;

/* tsdb_head_set_chunk_store makes the head write the chunks it closes to
 * hc (lib/tsdb/hchunks.h: files read back through mmap, so closed chunks
 * cost no heap) instead of keeping them in memory. Call it once, before a
 * replay and before any appender exists; hc must outlive the head. */
void tsdb_head_set_chunk_store(struct tsdb_head *h, struct hchunks *hc);

/* A chunk handed out by tsdb_head_dump: in memory (c, with its encoding)
 * or in the head chunk files (pos, with a reference on its file). */
struct tsdb_dump_chunk {
	int64_t mint, maxt;
	struct chunk *c;		/* a reference, or NULL */
	uint64_t pos;			/* when c is NULL */
	struct hchunks_file *f;		/* when c is NULL: pos' file, a reference */
};

/* One series' data handed out by tsdb_head_dump. */
struct tsdb_series_dump {
	uint32_t id;
	struct labels *ls;
	struct tsdb_dump_chunk *c;	/* oldest first */
	uint32_t nc;
	bool open;			/* c[nc-1] is a copy of the open chunk (in memory) */
	struct chunk_app_state state;	/* the open chunk's (when open) */
	struct tsdb_ooo_sample *ooo;	/* sorted by t */
	uint32_t nooo;
};

/* tsdb_head_dump calls fn, outside any lock, for every series holding
 * in-order chunks that end before maxt or out-of-order samples with t <
 * ooo_maxt of a generation below ooo_gen, with those. The dump is valid
 * during the call only (fn takes references to keep anything). With
 * INT64_MAX, INT64_MAX, UINT32_MAX it is the whole head (a checkpoint). */
void tsdb_head_dump(struct tsdb_head *h, int64_t maxt, int64_t ooo_maxt,
    uint32_t ooo_gen, void (*fn)(void *arg, const struct tsdb_series_dump *d),
    void *arg);
/* tsdb_head_truncate drops what the same tsdb_head_dump selected (a chunk
 * still open and not yet past maxt stays) and the series left empty.
 * Returns the number of series removed. */
size_t tsdb_head_truncate(struct tsdb_head *h, int64_t maxt, int64_t ooo_maxt,
    uint32_t ooo_gen);
/* tsdb_head_next_id returns the id the next new series will get. */
uint32_t tsdb_head_next_id(struct tsdb_head *h);

/* Replay: rebuilding the head from the WAL before it is shared with any
 * other thread (no locks are taken). Series keep their logged ids; a series
 * logged again under another id is mapped onto the first. */
struct tsdb_head_replay;
struct tsdb_replay_stats {
	uint64_t series, samples, ooo, dropped, unknown_refs, snap_series;
};
struct tsdb_head_replay *tsdb_head_replay_begin(struct tsdb_head *h);
/* tsdb_head_replay_series takes over ls (one reference). */
void tsdb_head_replay_series(struct tsdb_head_replay *r, uint32_t id, struct labels *ls);
/* tsdb_head_replay_sample applies one logged sample of generation gen: in
 * order when it can, else out of order; identical samples are dropped. */
void tsdb_head_replay_sample(struct tsdb_head_replay *r, const struct tsdb_log_sample *s,
    uint32_t gen);
/* tsdb_head_replay_samples applies n logged samples in order, as
 * tsdb_head_replay_sample does, prefetching the series ahead (a WAL
 * record's samples touch many series: this hides the cache misses). */
void tsdb_head_replay_samples(struct tsdb_head_replay *r, const struct tsdb_log_sample *v,
    size_t n, uint32_t gen);
/* A checkpointed chunk: XOR bytes, or a position in the head chunk files. */
struct tsdb_snap_chunk {
	int64_t mint, maxt;
	const uint8_t *b;	/* NULL when pos is set */
	size_t len;
	uint8_t enc;		/* of b: CHUNK_ENC_XOR or CHUNK_ENC_DENSE */
	uint64_t pos;
};
/* tsdb_head_replay_snap restores a checkpointed series (takes over ls):
 * n chunks (the last open when open, always bytes; its appender state when
 * state is not NULL, else it is decoded), out-of-order samples. Returns 0
 * or -1 when a chunk is malformed or missing (the series is then restored
 * without it). */
int tsdb_head_replay_snap(struct tsdb_head_replay *r, uint32_t id, struct labels *ls,
    const struct tsdb_snap_chunk *c, size_t n, bool open, const struct chunk_app_state *state,
    const struct tsdb_ooo_sample *ooo, size_t nooo);
/* tsdb_head_replay_next_id raises the next series id to at least id. */
void tsdb_head_replay_next_id(struct tsdb_head_replay *r, uint32_t id);
/* tsdb_head_replay_end finishes (st may be NULL) and frees r. */
void tsdb_head_replay_end(struct tsdb_head_replay *r, struct tsdb_replay_stats *st);

/* tsdb_head_seq returns the last applied commit (a reader's view). */
uint64_t tsdb_head_seq(struct tsdb_head *h);
/* tsdb_head_series_sources adds the chunks and out-of-order samples of
 * series id that overlap the iterator's range, as of commit w, to it
 * (lib/tsdb/iter.h). prio orders equal timestamps (higher wins). Returns
 * false when the series is gone. */
bool tsdb_head_series_sources(struct tsdb_head *h, uint32_t id, uint64_t w,
    struct tsdb_iter *it, uint32_t prio);
/* tsdb_head_select_into adds the head's series matching the n matchers
 * with samples in [mint, maxt] to ss (see iter.h), read as of the commit
 * ss was made at. */
void tsdb_head_select_into(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_series_set *ss);
/* tsdb_head_lookup returns the ref of the series with labels ls, or 0. */
uint64_t tsdb_head_lookup(struct tsdb_head *h, const struct labels *ls);
/* tsdb_head_postings returns the head's index (for status figures). */
struct postings *tsdb_head_postings(struct tsdb_head *h);

#endif
