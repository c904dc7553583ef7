/* lib/tsdb/hchunks.h - the head's closed chunks in memory-mapped files.
 *
 * The head keeps its open chunks in memory; a chunk it closes is written
 * here and read back through a read-only shared mapping, as Prometheus'
 * head does with chunks_head/. Pages of these files count in the process'
 * resident memory only while something reads them, so a head of millions
 * of series holds little more than its index and open chunks in memory.
 *
 * Files under <data>/head_chunks: 000001, 000002, ..., each starting with
 * the magic "STRHCK01" and growing to at most HCHUNKS_FILE_MAX bytes of
 * records:
 *   u32 series id (LE) | uvarint length | u8 encoding | bytes |
 *   u32 CRC-32C of everything before it in the record
 * A chunk's position is file << 32 | offset of its record (never 0).
 *
 * Lifetime: every written chunk is live until the head releases it.
 * Files are only deleted by hchunks_collect(), which the store calls after
 * a WAL checkpoint is committed (a checkpoint refers to the chunks it holds
 * by position) and after replay: then a file none of whose chunks is live
 * is deleted, as is every file that existed at open and that replay did not
 * claim a chunk of (written after the last checkpoint: the WAL replay wrote
 * its chunks again). hchunks_sync() makes what was written durable: the
 * store calls it before it commits a checkpoint referring to it.
 *
 * Readers get a chunk's bytes with a reference on its file; a deleted
 * file stays mapped until the last reference goes. Every read checks the
 * record's series id and checksum: a damaged or missing chunk is logged
 * (once per file) and counted, never served.
 *
 * Threads: all functions are thread-safe (one mutex; file reference counts
 * are atomic). Callers may hold the head's stripe locks: this module never
 * calls back.
 */
#ifndef STRATA_TSDB_HCHUNKS_H
#define STRATA_TSDB_HCHUNKS_H

#include <stddef.h>
#include <stdint.h>

#define HCHUNKS_FILE_MAX (128u << 20)

struct hchunks;
struct hchunks_file;

/* One chunk to write. */
struct hchunks_rec {
	uint32_t id;		/* the series' id */
	uint8_t enc;		/* enum chunk_enc */
	const uint8_t *b;
	uint32_t len;
};

struct hchunks_stats {
	uint64_t bytes;		/* on disk */
	uint32_t files;
	uint64_t chunks_written;	/* total */
	uint64_t write_failures;	/* chunks that could not be written */
	uint64_t bad_reads;	/* damaged or missing chunks asked for */
};

/* hchunks_open opens (creating) the directory, maps the files in it and
 * returns the store, or NULL with the reason in err. Close with
 * hchunks_close(). */
struct hchunks *hchunks_open(const char *dir, char *err, size_t errlen);
/* hchunks_close unmaps and closes everything; files stay on disk. No
 * reference may be live. NULL is a no-op. */
void hchunks_close(struct hchunks *hc);

/* hchunks_write appends the n chunks (one write per file touched) and sets
 * pos[i] to each one's position. Returns how many were written: a prefix
 * of r (fewer than n when the disk refused; logged once per episode). */
size_t hchunks_write(struct hchunks *hc, const struct hchunks_rec *r, size_t n, uint64_t *pos);
/* hchunks_ref returns a reference on the file holding pos (release with
 * hchunks_put), or NULL when there is no such file. Cheap: no page of the
 * file is touched. */
struct hchunks_file *hchunks_ref(struct hchunks *hc, uint64_t pos);
/* hchunks_file_ref adds a reference to f and returns it. */
struct hchunks_file *hchunks_file_ref(struct hchunks_file *f);
/* hchunks_read returns the bytes of the chunk of series id at pos in f (a
 * reference the caller holds) with *enc and *len set, or NULL when the
 * record is damaged or not that series' (logged once per file, counted).
 * The bytes stay valid while the reference is held. */
const uint8_t *hchunks_read(struct hchunks_file *f, uint64_t pos, uint32_t id, uint8_t *enc,
    size_t *len);
/* hchunks_put drops a file reference. NULL is a no-op. */
void hchunks_put(struct hchunks_file *f);

/* hchunks_claim marks the chunk at pos live again (loading a checkpoint).
 * Returns 0, or -1 when its file is gone or shorter than pos. */
int hchunks_claim(struct hchunks *hc, uint64_t pos);
/* hchunks_release drops the chunk at pos (the head let go of it). */
void hchunks_release(struct hchunks *hc, uint64_t pos);

/* hchunks_sync makes everything written so far durable. Returns 0 or -1. */
int hchunks_sync(struct hchunks *hc);
/* hchunks_collect deletes the files without live chunks (see above). */
void hchunks_collect(struct hchunks *hc);
void hchunks_stats(struct hchunks *hc, struct hchunks_stats *st);

#endif
