/* lib/tsdb/wal.h - the write-ahead log: checksummed records in segment files.
 *
 * Directory layout (under <data>/wal):
 *   00000000, 00000001, ...  segments, written in order, each at most
 *                            segment_size bytes; only the newest is written
 *   checkpoint.NNNNNNNN      the head's state as of the end of segment N
 *                            (replay starts there and reads segments > N)
 * Every file starts with the 8-byte magic "STRWAL\0\1". A record is
 *   u32 length of payload (LE) | u32 CRC-32C of type and payload | u8 type | payload
 * Payload formats (varints are LEB128, signed ones zigzag):
 *   WAL_SERIES   { uvarint id, uvarint nlabels, { str name, str value }* }*
 *   WAL_SAMPLES  { varint id delta, varint t delta, value }*  (deltas from
 *                the previous sample of the record, the first from 0);
 *                value: uvarint x; x even: the integer zigzag(x >> 1) as a
 *                double; x == 1: 8 raw bytes (LE) of the value's bits, so
 *                NaNs and stale markers are kept bit for bit
 *   WAL_SNAP_SERIES (checkpoints) one series: uvarint id, uvarint nlabels,
 *                { str, str }*, uvarint nchunks, { str chunk bytes }*,
 *                u8 open (0: none; 1: the last chunk is the open one; 2:
 *                the same, followed by its appender state: varint t,
 *                u64 value bits, uvarint tdelta, u8 bitsfree, leading,
 *                trailing), uvarint nooo,
 *                { varint t delta, u64 value bits, uvarint generation }*
 *   WAL_SNAP_META (checkpoints) uvarint next series id
 *   WAL_SNAP_SERIES2 (checkpoints since closed head chunks live in
 *                lib/tsdb/hchunks.h files) as WAL_SNAP_SERIES, but each
 *                chunk is { varint mint, uvarint maxt - mint, u8 where, 0:
 *                str XOR chunk bytes, 1: uvarint its position in the head
 *                chunk files, 2: u8 encoding (enum chunk_enc), str bytes }
 *                (the open chunk always as bytes), and u8 open may be 3: the
 *                state of a CHUNK_ENC_DENSE open chunk, open 2's fields then
 *                u8 dec, u8 e, varint m, varint dm
 * Checkpoints holding WAL_SNAP_SERIES2 records start with the magic
 * "STRWAL\0\2" (a strata that cannot read them refuses the directory
 * instead of losing their series); both magics are read.
 *
 * Opening replays: the newest checkpoint, then every later segment, one
 * callback per good record. The first bad record (short, bad length, bad
 * checksum, unknown type) ends the log: its segment is truncated there and
 * later segments are deleted, each logged with what was dropped; the
 * process starts with what was intact. Writing always starts a new segment.
 * A directory whose segments carry no strata magic was written by something
 * else and is refused, naming the file.
 *
 * Durability: wal_log() write(2)s the records before returning, so a killed
 * process loses nothing it logged. fdatasync runs on a background thread:
 * with WAL_SYNC_INTERVAL at most sync_interval_ms after a write (what a power
 * loss can take), with WAL_SYNC_COMMIT as soon as a committer waits in
 * wal_wait() (group commit: one fdatasync serves every waiting commit).
 *
 * Threads: wal_log, wal_roll and the checkpoint functions take the WAL's
 * mutex; the head calls wal_log under its commit lock, so records are in
 * commit order. The sync thread takes the mutex only to read positions.
 */
#ifndef STRATA_TSDB_WAL_H
#define STRATA_TSDB_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/head.h"

#define WAL_SEGMENT_SIZE (128u << 20)
#define WAL_MAX_RECORD (64u << 20)

enum wal_type {
	WAL_SERIES = 1,
	WAL_SAMPLES = 2,
	WAL_SNAP_SERIES = 3,
	WAL_SNAP_META = 4,
	WAL_SNAP_SERIES2 = 5,
};

/* The default bound on what a power loss can take. Prometheus 2.42 syncs its
 * WAL only when a segment is cut; one fdatasync a second keeps the window
 * short while costing a scraping leaf next to nothing (200 ms cost it about
 * 8% of its CPU in wake-ups and disk flushes). */
#define WAL_SYNC_INTERVAL_MS 1000

enum wal_sync {
	WAL_SYNC_INTERVAL = 0,	/* fdatasync in the background, bounded delay */
	WAL_SYNC_COMMIT,	/* committers wait for their fdatasync (grouped) */
	WAL_SYNC_NONE,		/* write(2) only: survives a crash, not a power loss */
};

struct wal_opts {
	size_t segment_size;		/* 0: WAL_SEGMENT_SIZE */
	enum wal_sync sync;
	int64_t sync_interval_ms;	/* 0: WAL_SYNC_INTERVAL_MS */
};

struct wal_stats {
	uint64_t records;		/* records written */
	uint64_t bytes_written;
	uint64_t writes_failed;
	uint64_t fsyncs;
	double fsync_seconds;		/* total time in fdatasync */
	uint64_t corruptions;		/* repairs at open */
	uint64_t dropped_bytes;		/* bytes discarded by repairs */
	uint32_t segment_current;
	uint32_t segment_first;
	uint64_t storage_bytes;		/* segments + checkpoint on disk */
	uint64_t checkpoint_bytes;	/* of that, the checkpoint */
	uint64_t replayed_bytes;	/* segment records replayed at open */
	uint64_t checkpoints;		/* created */
	uint64_t checkpoints_failed;
	uint64_t segments_deleted;	/* by checkpoints */
	uint64_t replay_records;
	bool failing;			/* the last write failed */
};

struct wal;
struct wal_ckpt;

/* wal_record_fn receives one good record during replay: seg is the segment
 * (or checkpoint) number it came from. p is valid during the call. */
typedef void (*wal_record_fn)(void *arg, uint8_t type, const uint8_t *p,
    size_t len, uint32_t seg);

/* wal_open opens (creating it if needed) the log in dir, replays it through
 * fn (may be NULL), repairs it and opens a new segment for writing. Returns
 * NULL with a message in err when the directory cannot be used (permissions,
 * a log written by something else). Free with wal_close(). */
struct wal *wal_open(const char *dir, const struct wal_opts *o,
    wal_record_fn fn, void *arg, char *err, size_t errlen);
/* wal_close syncs and closes the log. NULL is a no-op. */
void wal_close(struct wal *w);

/* wal_log writes one commit: a WAL_SERIES record for the ns series (may be
 * 0) and WAL_SAMPLES records for the nv samples. *pos (may be NULL) gets the
 * log position to pass to wal_wait(). Returns 0, or TSDB_ERR_IO when the
 * write failed (nothing of the commit is in the log then). */
int wal_log(struct wal *w, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv, uint64_t *pos);
/* wal_wait returns once the log is synced up to pos (WAL_SYNC_COMMIT only;
 * otherwise at once). */
void wal_wait(struct wal *w, uint64_t pos);
/* wal_roll closes the current segment (synced) and starts the next one.
 * Returns the new segment's number. */
uint32_t wal_roll(struct wal *w);
/* wal_segment returns the number of the segment being written. */
uint32_t wal_segment(struct wal *w);
/* wal_last_error copies the last write error's text into buf. */
void wal_last_error(struct wal *w, char *buf, size_t len);
void wal_stats(struct wal *w, struct wal_stats *st);
/* wal_keep_checkpoint hard-links the checkpoint replayed at open to
 * checkpoint.N.damaged, out of reach of later clean-ups: the store calls it
 * when records of it could not be used, so a fixed or newer strata can
 * still read them. Returns 0, or -1 (nothing to keep, or the link failed). */
int wal_keep_checkpoint(struct wal *w);

/* wal_ckpt_begin starts checkpoint `upto`: the state of the log up to the
 * end of segment upto. Returns NULL with err on failure. */
struct wal_ckpt *wal_ckpt_begin(struct wal *w, uint32_t upto, char *err, size_t errlen);
/* wal_ckpt_series appends one series (WAL_SNAP_SERIES). Returns 0 or -1. */
int wal_ckpt_series(struct wal_ckpt *ck, const struct tsdb_series_dump *d);
/* wal_ckpt_meta appends the head counters (WAL_SNAP_META). */
int wal_ckpt_meta(struct wal_ckpt *ck, uint32_t next_id);
/* wal_ckpt_commit makes the checkpoint durable and current, then deletes
 * the segments it covers and older checkpoints. Frees ck. Returns 0, or -1
 * with err (the previous checkpoint and segments stay). */
int wal_ckpt_commit(struct wal_ckpt *ck, char *err, size_t errlen);
/* wal_ckpt_abort discards a checkpoint being written. NULL is a no-op. */
void wal_ckpt_abort(struct wal_ckpt *ck);

/* --- record payload decoding (for replay) --- */

/* wal_dec_series calls fn for each series of a WAL_SERIES payload with a
 * label set it owns one reference of (fn takes it over). Returns 0 or -1 on
 * malformed input. */
int wal_dec_series(const uint8_t *p, size_t len,
    void (*fn)(void *arg, uint32_t id, struct labels *ls), void *arg);

struct wal_samples_dec {
	const uint8_t *p, *end;
	int64_t t;
	uint64_t id;
	bool err;
};
/* wal_samples_init prepares to decode a WAL_SAMPLES payload. */
void wal_samples_init(struct wal_samples_dec *d, const uint8_t *p, size_t len);
/* wal_samples_next decodes the next sample; false at the end or on
 * malformed input (then d->err). */
bool wal_samples_next(struct wal_samples_dec *d, struct tsdb_log_sample *out);

/* A decoded WAL_SNAP_SERIES record; pointers into the payload and into
 * arrays the decoder owns (valid until the next wal_dec_snap or free). */
struct wal_snap {
	uint32_t id;
	struct labels *ls;		/* one reference, the caller's */
	struct tsdb_snap_chunk *c;	/* chunks: bytes or file positions */
	size_t nchunks;
	bool open;			/* the last chunk is the open one */
	bool has_state;			/* state holds its appender state */
	struct chunk_app_state state;
	struct tsdb_ooo_sample *ooo;
	size_t nooo;
	size_t cap, ooocap;
};
/* wal_dec_snap decodes a WAL_SNAP_SERIES (type 3) or WAL_SNAP_SERIES2 (5)
 * payload into s. Returns 0 or -1. */
int wal_dec_snap(uint8_t type, const uint8_t *p, size_t len, struct wal_snap *s);
void wal_snap_free(struct wal_snap *s);

/* wal_encode_samples appends the WAL_SAMPLES payload of v[0..n) to out
 * (exposed for tests and the benchmarks). */
struct enc;
void wal_encode_samples(struct enc *out, const struct tsdb_log_sample *v, size_t n);

#endif
