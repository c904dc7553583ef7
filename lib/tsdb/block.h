/* lib/tsdb/block.h - immutable blocks on disk: an index and chunk files,
 * read through mmap.
 *
 * A block holds the samples of [mint, maxt) (maxt exclusive, as in
 * Prometheus) in a directory named by a ULID:
 *   <data>/<ULID>/index          symbols, series, postings, meta, checksums
 *   <data>/<ULID>/chunks/000001  chunk records, files of at most 512 MiB
 *   <data>/<ULID>/meta.json      the meta in JSON, for people (not read)
 * index (all integers little-endian, varints LEB128):
 *   "STRIDX02" (blocks whose chunks may be CHUNK_ENC_PACK2; "STRIDX01",
 *   the same index with older encodings only, is read too; a strata that
 *   predates PACK2 refuses a STRIDX02 block instead of misreading it)
 *   symbols   every distinct label string, sorted: { uvarint len, bytes, NUL }
 *   symtab    u32 offset of each symbol in symbols
 *   series    per series, sorted by labels: uvarint nlabels, { uvarint name
 *             symbol, uvarint value symbol }, uvarint nchunks, { varint mint
 *             - previous maxt (block mint at first), uvarint maxt - mint,
 *             uvarint file, uvarint offset }
 *   seriestab u32 offset of each series in series
 *   postings  per label pair: uvarint count, { uvarint series delta }
 *   pairs     sorted by (name symbol, value symbol): { u32 name, u32 value,
 *             u32 offset in postings, u32 count }
 *   meta      i64 mint, i64 maxt, u64 nseries, u64 nchunks, u64 nsamples,
 *             u32 level, u32 nfiles, { u64 size }, u32 nparents, { 26-byte
 *             ULID }, 26-byte ULID of the block
 *   toc       per section { u64 offset, u64 length, u32 CRC-32C }, then
 *             u32 nsymbols, u32 nseries, u32 npairs
 *   footer    u64 toc offset, u32 CRC-32C of the toc, the magic again
 * chunk record: uvarint length, u8 encoding (enum chunk_enc), data, u32
 * CRC-32C of encoding and data. A chunk ref is file << 32 | offset.
 *
 * Opening checks the footer, every section checksum and the chunk files'
 * sizes: a block written by something else, damaged or missing a file is
 * refused with a message naming the file. Chunk checksums are checked on
 * every read; a bad chunk is skipped and logged, never served.
 *
 * A struct block is reference-counted: readers hold one while they read its
 * mapping, so retention can drop a block under them. Writing goes to
 * <ULID>.tmp and is renamed into place after an fsync, so a block appears
 * whole or not at all.
 */
#ifndef STRATA_TSDB_BLOCK_H
#define STRATA_TSDB_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/postings.h"

#define BLOCK_ID_LEN 26

struct block_meta {
	char id[BLOCK_ID_LEN + 1];
	int64_t mint, maxt;		/* [mint, maxt) */
	uint64_t nseries, nchunks, nsamples;
	uint32_t level;			/* 1 for a block cut from the head */
	uint32_t nparents;
	char (*parents)[BLOCK_ID_LEN + 1];	/* blocks it replaces */
};

struct block;
struct block_writer;

/* block_is_id tells whether name is a ULID (a block directory's name). */
bool block_is_id(const char *name);
/* block_new_id writes a fresh ULID (now, random) into out. */
void block_new_id(char out[BLOCK_ID_LEN + 1]);

/* block_rmdir removes a directory tree (a half-written or deleted block). */
void block_rmdir(const char *path);

/* block_open maps the block in dir. Returns it with one reference, or NULL
 * with the reason (naming the file) in err. */
struct block *block_open(const char *dir, char *err, size_t errlen);
struct block *block_ref(struct block *b);
/* block_put drops a reference; the last one unmaps the block (and deletes
 * its directory when block_delete was called). NULL is a no-op. */
void block_put(struct block *b);
/* block_delete renames the block's directory away now and removes it when
 * the last reference goes. */
void block_delete(struct block *b);
const struct block_meta *block_meta(const struct block *b);
const char *block_dir(const struct block *b);
/* block_bytes returns the block's size on disk. */
uint64_t block_bytes(const struct block *b);

/* block_select fills out with the refs of the series matching all n
 * matchers (n >= 1), ascending (which is labels order). */
void block_select(struct block *b, struct matcher *const *ms, size_t n,
    struct postings_ids *out);
/* block_all fills out with every series ref. */
void block_all(struct block *b, struct postings_ids *out);
/* block_labels returns series ref's label set (caller frees), or NULL. */
struct labels *block_labels(struct block *b, uint32_t ref);
/* block_series_sources adds the chunks of series ref overlapping the
 * iterator's range to it (bytes stay in the mapping: the caller keeps a
 * reference on b while iterating). Returns false for a bad ref. */
bool block_series_sources(struct block *b, uint32_t ref, struct tsdb_iter *it,
    uint32_t prio);
/* block_series_samples appends all samples of series ref to *v. Returns 0,
 * or -1 when a chunk is damaged (skipped, logged). */
int block_series_samples(struct block *b, uint32_t ref, struct tsdb_sample **v,
    size_t *n, size_t *cap);
/* block_label_names / block_label_values list the names, or the values of
 * name, in use in the block (sorted, interned references). */
void block_label_names(struct block *b, struct tsdb_strings *out);
void block_label_values(struct block *b, const char *name, struct tsdb_strings *out);

/* block_writer_new starts a block of [mint, maxt) at the given compaction
 * level under datadir. Returns NULL with err. */
struct block_writer *block_writer_new(const char *datadir, int64_t mint, int64_t maxt,
    uint32_t level, char *err, size_t errlen);
/* block_writer_parent records a block the new one replaces. */
void block_writer_parent(struct block_writer *w, const char *id);
/* block_writer_add adds a series: called in labels order, samples sorted by
 * time, unique; those outside [mint, maxt) are dropped. ls is borrowed.
 * Returns 0, or -1 with err on a write error. */
int block_writer_add(struct block_writer *w, const struct labels *ls,
    const struct tsdb_sample *v, size_t n, char *err, size_t errlen);
/* block_writer_finish writes the index, syncs and renames the block into
 * place; *id gets its ULID. Returns 0, 1 when the block would be empty
 * (nothing is written), or -1 with err. Frees w in every case. */
int block_writer_finish(struct block_writer *w, char id[BLOCK_ID_LEN + 1],
    char *err, size_t errlen);
/* block_writer_abort discards w and its files. NULL is a no-op. */
void block_writer_abort(struct block_writer *w);

#endif
