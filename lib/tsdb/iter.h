/* lib/tsdb/iter.h - sample iterators and series sets over the head and blocks.
 *
 * A struct tsdb_iter walks one series' samples in [mint, maxt] from any
 * number of sources: chunks of the head in memory (referenced) or in its
 * chunk files (a file reference), encoded chunks of blocks (bytes inside a
 * block's mapping, kept alive by the series set) and sample arrays (the
 * head's out-of-order samples, copied). Sources are
 * ordered by their first timestamp; a source that overlaps no other is
 * streamed as it is, overlapping ones are decoded together, sorted and
 * deduplicated (on equal timestamps the source with the higher priority
 * wins: the head over blocks, newer blocks over older ones).
 *
 * A struct tsdb_series_set is what tsdb_head_select() and tsdb_db_select()
 * return: series in labels order, each with the places its samples live
 * (a head ref, block series refs), resolved into an iterator when the set
 * moves to the series. The public functions are declared in head.h; this
 * header is for lib/tsdb's own modules.
 *
 * Not thread-safe: one reader uses a set and its iterator.
 */
#ifndef STRATA_TSDB_ITER_H
#define STRATA_TSDB_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"

struct block;

struct hchunks_file;

enum isrc_kind {
	ISRC_CHUNK,	/* struct chunk, a reference */
	ISRC_RAW,	/* encoded bytes owned by someone else */
	ISRC_ARRAY,	/* sorted samples, owned */
	ISRC_HFILE,	/* a chunk in the head chunk files, a file reference */
};

struct isrc {
	int64_t mint, maxt;
	uint32_t prio;
	uint8_t kind;
	uint8_t enc;		/* ISRC_RAW: enum chunk_enc */
	uint16_t lim;		/* ISRC_CHUNK, ISRC_HFILE: samples to read */
	union {
		struct chunk *c;
		struct {
			struct hchunks_file *f;
			uint64_t pos;
			uint32_t id;
		} hf;
		struct {
			const uint8_t *b;
			size_t len;
		} raw;
		struct {
			struct tsdb_sample *v;
			size_t n;
		} arr;
	} u;
};

struct tsdb_iter {
	struct isrc *src;
	uint32_t n, cap;
	uint32_t i;		/* next source to open */
	uint8_t mode;		/* 0: between sources, 1: streaming ci, 2: buf */
	bool done;
	bool have;		/* t/v hold the current sample */
	bool sorted;
	int err;		/* a source did not decode (CHUNK_ERR_CORRUPT) */
	struct chunk_iter ci;
	struct tsdb_sample *buf;
	size_t bn, bpos, bcap;
	int64_t mint, maxt;
	int64_t seek;		/* the last seek's target: nothing older is wanted */
	int64_t t;
	uint64_t v;
};

/* iter_init prepares an empty iterator over [mint, maxt]. */
void iter_init(struct tsdb_iter *it, int64_t mint, int64_t maxt);
/* iter_clear drops the sources (keeping allocations) and rewinds. */
void iter_clear(struct tsdb_iter *it);
/* iter_release frees everything iter_init and the adds allocated. */
void iter_release(struct tsdb_iter *it);
/* iter_add_chunk adds a head chunk (takes over one reference), reading its
 * first lim samples. */
void iter_add_chunk(struct tsdb_iter *it, struct chunk *c, uint16_t lim, uint32_t prio);
/* iter_add_raw adds len encoded bytes (borrowed; must outlive the iterator). */
void iter_add_raw(struct tsdb_iter *it, uint8_t enc, const uint8_t *b, size_t len,
    int64_t mint, int64_t maxt, uint32_t prio);
/* iter_add_array adds n samples sorted by t (takes ownership of v). */
void iter_add_array(struct tsdb_iter *it, struct tsdb_sample *v, size_t n, uint32_t prio);
/* iter_add_hfile adds the chunk of series id at pos in the head chunk
 * files, in [mint, maxt], reading its first lim samples; takes over the
 * file reference f. Its bytes are read (and checked) when the iterator
 * gets to it. */
void iter_add_hfile(struct tsdb_iter *it, struct hchunks_file *f, uint64_t pos, uint32_t id,
    int64_t mint, int64_t maxt, uint16_t lim, uint32_t prio);
/* iter_add_dump adds a chunk of series id handed out by tsdb_head_dump
 * (taking references of its own). */
void iter_add_dump(struct tsdb_iter *it, uint32_t id, const struct tsdb_dump_chunk *dc,
    uint32_t prio);

/* chunk_decode appends the samples of len encoded bytes to *v (growing it,
 * *n samples, *cap allocated). Returns 0 or CHUNK_ERR_CORRUPT. */
int chunk_decode(uint8_t enc, const uint8_t *b, size_t len, struct tsdb_sample **v,
    size_t *n, size_t *cap);

/* --- series sets ---------------------------------------------------------- */

/* sset_new returns an empty set reading h (may be NULL) as of its last
 * commit, over [mint, maxt]. */
struct tsdb_series_set *sset_new(struct tsdb_head *h, int64_t mint, int64_t maxt);
/* sset_add_block makes b (a reference is taken) a source of the set and
 * returns its index for sset_add. Blocks added later win equal timestamps
 * (add them oldest first). */
uint32_t sset_add_block(struct tsdb_series_set *ss, struct block *b);
/* sset_add records that series ls (takes over one reference) has samples in
 * the head under id (when head is true) or in block blk under ref. */
void sset_add(struct tsdb_series_set *ss, struct labels *ls, bool head, uint32_t id,
    uint32_t blk, uint32_t ref);
/* sset_finish sorts the set by labels and merges the places of one series. */
void sset_finish(struct tsdb_series_set *ss);
/* sset_head_w returns the commit the set reads the head at. */
uint64_t sset_head_w(const struct tsdb_series_set *ss);

#endif
