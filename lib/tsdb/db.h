/* lib/tsdb/db.h - the store: one data directory, head + WAL + blocks.
 *
 * A daemon opens one store on --storage.tsdb.path:
 *
 *   struct tsdb_db_opts o = { .path = "data/", .retention_ms = 15 * 86400000LL };
 *   struct tsdb_db *db = tsdb_db_open(&o, err, sizeof err);
 *   struct tsdb_head *h = tsdb_db_head(db);  // appenders and head readers as before
 *   ...
 *   tsdb_db_close(db);
 *
 * Opening takes the directory's lock file (a second process is refused),
 * loads the blocks, replays the WAL into the head (repairing a torn or
 * corrupt tail, see wal.h) and starts the maintenance thread. Every commit
 * of a head appender is then logged before it is applied. Chunks the head
 * closes go to files under head_chunks/ (lib/tsdb/hchunks.h), read back
 * through mmap. The maintenance thread cuts the head into 2h blocks once it
 * spans 3h, moves out-of-order samples into blocks, compacts blocks into
 * larger ranges, deletes blocks beyond retention (time, and size including
 * the WAL and head_chunks/) and checkpoints the WAL so replay stays short.
 * Closing writes a final checkpoint.
 *
 * Reading across head and blocks uses the shapes of the head's functions,
 * so a reader of the head adapts by swapping the call:
 *
 *   tsdb_head_select(h, ms, n, mint, maxt)   -> tsdb_db_select(db, ms, n, mint, maxt)
 *   tsdb_head_latest(h, ms, n, mint, &v, &k) -> tsdb_db_latest(db, ms, n, mint, &v, &k)
 *   tsdb_head_label_names(h, ms, n, &out)    -> tsdb_db_label_names(db, ms, n, mint, maxt, &out)
 *   tsdb_head_label_values(h, nm, ms, n, &o) -> tsdb_db_label_values(db, nm, ms, n, mint, maxt, &o)
 *
 * The series set, iterator, latest and string types and their functions
 * (tsdb_series_set_next, tsdb_iter_next, tsdb_iter_seek, ...) are the
 * head's, with the same meaning: series in labels order, samples in time
 * order, each timestamp once (where head and blocks overlap, the head wins,
 * then the newer block). Writing into the past: scraped samples behind a
 * series' newest go out of order within ooo_window_ms; an unrestricted
 * appender (tsdb_appender_new_unrestricted on tsdb_db_head) takes any age,
 * for imports and gap repair. Both reach blocks at the next maintenance.
 *
 * Threads: all functions are thread-safe. Readers hold block references,
 * so retention never unmaps a block under a reader.
 */
#ifndef STRATA_TSDB_DB_H
#define STRATA_TSDB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/matcher.h"
#include "tsdb/hchunks.h"
#include "tsdb/head.h"
#include "tsdb/postings.h"
#include "tsdb/wal.h"

struct tsdb_db_opts {
	const char *path;		/* data directory (created if missing) */
	int64_t retention_ms;		/* 0: keep forever */
	int64_t retention_bytes;	/* 0: no size limit */
	int64_t ooo_window_ms;		/* 0: no out-of-order writes (scraped) */
	int64_t block_range_ms;		/* 0: 2h */
	enum wal_sync wal_sync;		/* WAL_SYNC_INTERVAL by default */
	int64_t wal_sync_ms;		/* 0: WAL_SYNC_INTERVAL_MS */
	size_t wal_segment_size;	/* 0: 128 MiB */
	bool no_maintenance;		/* no thread: the caller runs tsdb_db_maintain */
};

/* Counters for self-metrics (see TSDB_DB_METRICS). */
struct tsdb_db_stats {
	struct tsdb_head_stats head;
	struct wal_stats wal;
	struct hchunks_stats hchunks;	/* the head's closed chunks on disk */
	uint64_t blocks_loaded;
	uint64_t blocks_bytes;
	uint64_t compactions;
	uint64_t compactions_failed;
	uint64_t head_truncations;
	uint64_t head_truncations_failed;
	uint64_t ooo_flushes;
	uint64_t reloads;
	uint64_t reloads_failed;
	uint64_t retention_time;	/* blocks deleted by time */
	uint64_t retention_size;	/* blocks deleted by size */
	uint64_t retention_limit_bytes;
	int64_t lowest_timestamp;	/* oldest sample held, ms */
	double replay_seconds;		/* WAL replay at open */
	uint64_t replay_unknown_refs;
	uint64_t corrupt_blocks;	/* blocks skipped at load */
};

/* The store's self-metrics, Prometheus' names where shared:
 * X(expression on a struct tsdb_db_stats st, name, type, help). A
 * collector in lib/api expands it to write the families. */
#define TSDB_DB_METRICS(X) \
	X(st.head.series, "prometheus_tsdb_head_series", "gauge", \
	    "Total number of series in the head block.") \
	X(st.head.series_created, "prometheus_tsdb_head_series_created_total", "counter", \
	    "Total number of series created in the head") \
	X(st.head.series_removed, "prometheus_tsdb_head_series_removed_total", "counter", \
	    "Total number of series removed in the head") \
	X(st.head.chunks, "prometheus_tsdb_head_chunks", "gauge", \
	    "Total number of chunks in the head block.") \
	X(st.head.chunks_created, "prometheus_tsdb_head_chunks_created_total", "counter", \
	    "Total number of chunks created in the head") \
	X(st.head.chunks_removed, "prometheus_tsdb_head_chunks_removed_total", "counter", \
	    "Total number of chunks removed in the head") \
	X(st.head.samples_appended, "prometheus_tsdb_head_samples_appended_total", "counter", \
	    "Total number of appended samples.") \
	X(st.head.ooo_appended, "prometheus_tsdb_head_out_of_order_samples_appended_total", "counter", \
	    "Total number of appended out of order samples.") \
	X(st.head.out_of_order, "prometheus_tsdb_out_of_order_samples_total", "counter", \
	    "Total number of out of order samples ingestion failed attempts due to out of order being disabled.") \
	X(st.head.out_of_bounds, "prometheus_tsdb_out_of_bounds_samples_total", "counter", \
	    "Total number of out of bound samples ingestion failed attempts with out of order support disabled.") \
	X(st.head.too_old, "prometheus_tsdb_too_old_samples_total", "counter", \
	    "Total number of out of order samples ingestion failed attempts with out of support enabled, but sample outside of time window.") \
	X(st.head.ooo_samples, "strata_tsdb_head_out_of_order_samples", "gauge", \
	    "Out-of-order samples held in the head until they move to blocks.") \
	X(st.head.mint == INT64_MAX ? 0 : st.head.mint, "prometheus_tsdb_head_min_time", "gauge", \
	    "Minimum time bound of the head block. The unit is decided by the library consumer.") \
	X(st.head.maxt == INT64_MIN ? 0 : st.head.maxt, "prometheus_tsdb_head_max_time", "gauge", \
	    "Maximum timestamp of the head block. The unit is decided by the library consumer.") \
	X(st.hchunks.bytes, "prometheus_tsdb_head_chunks_storage_size_bytes", "gauge", \
	    "Size of the chunks_head directory.") \
	X(st.hchunks.chunks_written, "strata_tsdb_head_chunks_written_total", "counter", \
	    "Closed head chunks written to the head chunk files (then read through mmap).") \
	X(st.hchunks.write_failures, "strata_tsdb_head_chunks_write_failures_total", "counter", \
	    "Closed head chunks that could not be written to the head chunk files and stay in memory.") \
	X(st.hchunks.bad_reads, "strata_tsdb_head_chunks_damaged_reads_total", "counter", \
	    "Reads of head chunks found missing or damaged (skipped, never served).") \
	X(st.head_truncations_failed, "prometheus_tsdb_head_truncations_failed_total", "counter", \
	    "Total number of head truncations that failed.") \
	X(st.head_truncations, "prometheus_tsdb_head_truncations_total", "counter", \
	    "Total number of head truncations attempted.") \
	X(st.wal.fsyncs, "strata_tsdb_wal_fsyncs_total", "counter", \
	    "Total number of fdatasync calls on WAL segments.") \
	X(st.wal.fsync_seconds, "strata_tsdb_wal_fsync_seconds_total", "counter", \
	    "Total time spent in fdatasync on WAL segments.") \
	X(st.wal.writes_failed, "prometheus_tsdb_wal_writes_failed_total", "counter", \
	    "Total number of WAL writes that failed.") \
	X(st.wal.corruptions, "prometheus_tsdb_wal_corruptions_total", "counter", \
	    "Total number of WAL corruptions.") \
	X(st.wal.segment_current, "prometheus_tsdb_wal_segment_current", "gauge", \
	    "WAL segment index that TSDB is currently writing to.") \
	X(st.wal.storage_bytes, "prometheus_tsdb_wal_storage_size_bytes", "gauge", \
	    "Size of the write log directory.") \
	X(st.wal.records, "strata_tsdb_wal_records_total", "counter", \
	    "Total number of records written to the WAL.") \
	X(st.wal.bytes_written, "strata_tsdb_wal_written_bytes_total", "counter", \
	    "Total number of bytes written to the WAL.") \
	X(st.wal.checkpoints, "prometheus_tsdb_checkpoint_creations_total", "counter", \
	    "Total number of checkpoint creations attempted.") \
	X(st.wal.checkpoints_failed, "prometheus_tsdb_checkpoint_creations_failed_total", "counter", \
	    "Total number of checkpoint creations that failed.") \
	X(st.wal.segments_deleted, "strata_tsdb_wal_segments_deleted_total", "counter", \
	    "Total number of WAL segments deleted after a checkpoint.") \
	X(st.replay_seconds, "strata_tsdb_data_replay_duration_seconds", "gauge", \
	    "Time taken to replay the data on disk.") \
	X(st.blocks_loaded, "prometheus_tsdb_blocks_loaded", "gauge", \
	    "Number of currently loaded data blocks") \
	X(st.blocks_bytes, "prometheus_tsdb_storage_blocks_bytes", "gauge", \
	    "The number of bytes that are currently used for local storage by all blocks.") \
	X(st.compactions, "prometheus_tsdb_compactions_total", "counter", \
	    "Total number of compactions that were executed for the partition.") \
	X(st.compactions_failed, "prometheus_tsdb_compactions_failed_total", "counter", \
	    "Total number of compactions that failed for the partition.") \
	X(st.ooo_flushes, "strata_tsdb_out_of_order_flushes_total", "counter", \
	    "Total number of times out-of-order samples were written to blocks.") \
	X(st.reloads, "prometheus_tsdb_reloads_total", "counter", \
	    "Number of times the database reloaded block data from disk.") \
	X(st.reloads_failed, "prometheus_tsdb_reloads_failures_total", "counter", \
	    "Number of times the database failed to reloadBlocks block data from disk.") \
	X(st.retention_time, "prometheus_tsdb_time_retentions_total", "counter", \
	    "The number of times that blocks were deleted because the maximum time limit was exceeded.") \
	X(st.retention_size, "prometheus_tsdb_size_retentions_total", "counter", \
	    "The number of times that blocks were deleted because the maximum number of bytes was exceeded.") \
	X(st.retention_limit_bytes, "prometheus_tsdb_retention_limit_bytes", "gauge", \
	    "Max number of bytes to be retained in the tsdb blocks, configured 0 means disabled") \
	X(st.lowest_timestamp, "prometheus_tsdb_lowest_timestamp", "gauge", \
	    "Lowest timestamp value stored in the database. The unit is decided by the library consumer.") \
	X(st.corrupt_blocks, "strata_tsdb_blocks_skipped", "gauge", \
	    "Block directories skipped at load because they are unreadable or damaged.")

struct tsdb_db;

/* tsdb_db_open opens (creating) the store at o->path. Returns NULL with the
 * reason in err: the directory cannot be created or read, another process
 * holds its lock, it holds data written by another program. A damaged WAL
 * or block is repaired or skipped and logged, never a refusal. Close with
 * tsdb_db_close(). */
struct tsdb_db *tsdb_db_open(const struct tsdb_db_opts *o, char *err, size_t errlen);
/* tsdb_db_close stops maintenance, checkpoints the WAL, releases the lock
 * and frees db. No appender or reader may be live. NULL is a no-op. */
void tsdb_db_close(struct tsdb_db *db);
/* tsdb_db_head returns the head (owned by db): appenders write through it. */
struct tsdb_head *tsdb_db_head(struct tsdb_db *db);
/* tsdb_db_maintain runs one maintenance pass now (what the thread does
 * periodically). Returns 0, or -1 when a step failed (logged). */
int tsdb_db_maintain(struct tsdb_db *db);
/* tsdb_db_checkpoint writes a WAL checkpoint of the whole head now. */
int tsdb_db_checkpoint(struct tsdb_db *db);

/* tsdb_db_select is tsdb_head_select over head and blocks. */
struct tsdb_series_set *tsdb_db_select(struct tsdb_db *db, struct matcher *const *ms,
    size_t n, int64_t mint, int64_t maxt);
/* tsdb_db_latest is tsdb_head_latest over head and blocks. */
int tsdb_db_latest(struct tsdb_db *db, struct matcher *const *ms, size_t n,
    int64_t mint, struct tsdb_latest **out, size_t *nout);
/* tsdb_db_label_names fills out with the label names of the series matching
 * the n matchers (all series when n is 0) with samples in [mint, maxt]. */
void tsdb_db_label_names(struct tsdb_db *db, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct tsdb_strings *out);
/* tsdb_db_label_values: the values of name, as tsdb_db_label_names. */
void tsdb_db_label_values(struct tsdb_db *db, const char *name,
    struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    struct tsdb_strings *out);

/* tsdb_db_set_observer attaches a commit observer (fn NULL detaches): fn
 * sees every commit of a head appender once it is logged and applied, with
 * the series it logged first and the samples it applied (see
 * tsdb_commit_observer_fn in head.h for what it may do). It does not see
 * what WAL replay restored at open, nor blocks imported from outside: like
 * Prometheus' WAL watcher, it starts from what is committed after it is
 * attached. Series logged before that are found with
 * tsdb_head_series_labels(tsdb_db_head(db), id). Detach before
 * tsdb_db_close. */
void tsdb_db_set_observer(struct tsdb_db *db, tsdb_commit_observer_fn fn, void *arg);

/* tsdb_db_stats fills st. */
void tsdb_db_stats(struct tsdb_db *db, struct tsdb_db_stats *st);

/* What /api/v1/status/tsdb shows (Prometheus 2.42's tsdbStatus): head
 * figures and the head index's cardinality lists (top `limit` each). */
struct tsdb_status {
	uint64_t num_series;
	uint64_t num_label_pairs;
	uint64_t chunk_count;
	int64_t min_time;	/* INT64_MAX when the head is empty, as Prometheus */
	int64_t max_time;	/* INT64_MIN when empty */
	struct postings_stats card;	/* metrics, labels, memory, pairs */
};

/* tsdb_db_status fills out (limit 10 is Prometheus'); free with
 * tsdb_status_free(). */
void tsdb_db_status(struct tsdb_db *db, size_t limit, struct tsdb_status *out);
void tsdb_status_free(struct tsdb_status *st);

#endif
