/* lib/tsdb/chunk.h - Gorilla/XOR compressed chunks of (timestamp, float) samples.
 *
 * A chunk holds up to CHUNK_MAX_SAMPLES samples with strictly increasing
 * timestamps, in the byte format of Prometheus' chunkenc XOR encoding: a
 * 2-byte big-endian sample count, then a bit stream (first timestamp as a
 * zigzag varint and the first value as 64 raw bits; the second timestamp as
 * an unsigned varint delta; then delta-of-delta timestamps in 1/14/17/20/64
 * bit buckets and XOR-compressed values with leading/trailing zero reuse).
 * The bytes are self-contained: a WAL, an on-disk block or a remote-read
 * response can carry them unchanged. Values are kept as their 64 bits, so
 * every NaN (and the stale marker 0x7ff0000000000002) round-trips bit-exact.
 *
 * Two objects:
 * - struct chunk_app: the open chunk of a series, mutable, owned by one
 *   writer; the head guards it with the series' stripe lock.
 * - struct chunk: an immutable, reference-counted chunk (a sealed open chunk,
 *   a reader's snapshot of an open one, or bytes read back from disk). Any
 *   thread may iterate it; chunk_ref()/chunk_put() are atomic.
 * A struct chunk_iter decodes a chunk's bytes without allocating.
 */
#ifndef STRATA_TSDB_CHUNK_H
#define STRATA_TSDB_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_MAX_SAMPLES 65535		/* what the 2-byte header counts */
#define CHUNK_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* Chunk encodings, as block and head chunk files name them. */
enum chunk_enc {
	CHUNK_ENC_XOR = 1,		/* Prometheus' XOR chunks */
	CHUNK_ENC_PACK = 2,		/* lib/tsdb/pack.h (blocks before PACK2) */
	CHUNK_ENC_DENSE = 3,		/* the head's chunks (below) */
	CHUNK_ENC_PACK2 = 4,		/* lib/tsdb/pack.h version 2 (blocks) */
};

/* CHUNK_ENC_DENSE is what the head appends to: XOR's layout with buckets
 * for what scrapes produce. The same 2-byte sample count, then a bit stream:
 *   sample 0: zigzag uvarint t; 1 bit mode (0: decimal values, 1: XOR
 *     values, chosen by whether the first value is a short decimal); the
 *     value: decimal: 4 bits e, zigzag uvarint m (value = m / 10^e); XOR:
 *     64 bits
 *   sample 1: uvarint t1 - t0; a value
 *   sample i >= 2: the timestamp's delta of delta: '0' 0, '10' + 7 bits,
 *     '110' + 14, '1110' + 20, '1111' + 64 (n bits hold -(2^(n-1)-1) ..
 *     2^(n-1)): scrape jitter of a few ms costs 9 bits where XOR pays 16;
 *     then a value
 *   a value, XOR mode: Gorilla's ('0' same, '10' reuse the window, '11' 5
 *     bits leading zeros, 6 bits length, the bits)
 *   a value, decimal mode: the delta of delta of m: '0' 0, '110' + 6 bits,
 *     '1110' + 13, '11110' + 20, '111110' + 32, '1111110' + 64; '10' + a
 *     Gorilla XOR value
 *     against the previous value's bits (a value that is no short decimal:
 *     NaN, the stale marker, +-Inf, -0, long binary fractions; or a decimal
 *     that costs less so); '1111111' + 4 bits e + zigzag uvarint m: a value
 *     with more decimals than e (a new scale; m's delta restarts at 0).
 *     Decimal means value == m / 10^e exactly, |m| < 2^53, e <= 15. After
 *     an XOR escape whose value is a decimal at e, m and its delta follow
 *     it; after any other escape they stay.
 * Counters and decimal gauges cost a few bits a value where XOR pays 12 to
 * 25; every value keeps its exact bits. The uvarints are 8-bit groups in
 * the bit stream. */

/* A sample as stored: timestamp and the bits of the value. */
struct tsdb_sample {
	int64_t t;
	uint64_t v;
};

enum chunk_err {
	CHUNK_OK = 0,
	CHUNK_ERR_ORDER = -1,		/* timestamp not after the last one */
	CHUNK_ERR_FULL = -2,		/* CHUNK_MAX_SAMPLES reached */
	CHUNK_ERR_CORRUPT = -3,		/* bytes end early or are inconsistent */
};

struct chunk {
	int64_t mint;		/* first sample's timestamp */
	int64_t maxt;		/* last sample's timestamp */
	uint32_t refs;		/* atomic */
	uint32_t len;		/* bytes in b (header included) */
	uint8_t enc;		/* CHUNK_ENC_XOR or CHUNK_ENC_DENSE */
	uint8_t b[];
};

/* The open chunk keeps what the next sample's encoding needs and derives
 * the rest: its first timestamp from the bytes (chunk_app_mint), its
 * allocation from a size class index; a timestamp delta of 2^32 - 1 ms or
 * more is kept as CHUNK_TDELTA_FAR and read back from the bytes; dec and e
 * share a byte. 56 bytes on 64-bit targets (a series embeds it). */
#define CHUNK_TDELTA_FAR UINT32_MAX

struct chunk_app {
	uint8_t *b;		/* owned; header + bit stream; NULL when empty */
	int64_t t;		/* last timestamp (valid when n > 0) */
	uint64_t v;		/* last value's bits (valid when n > 0) */
	int64_t m;		/* DENSE decimal: the last decimal value's integer */
	int64_t dm;		/* and its delta */
	uint32_t len;		/* bytes in use */
	uint32_t tdelta;	/* last timestamp delta, or CHUNK_TDELTA_FAR */
	uint16_t n;		/* samples appended */
	uint8_t bitsfree;	/* unused low bits of b[len-1] */
	uint8_t leading;	/* XOR state; 0xff before the first XOR */
	uint8_t trailing;
	uint8_t capcls;		/* b holds chunk_app_cap() bytes; 0: none */
	uint8_t enc;		/* CHUNK_ENC_XOR or CHUNK_ENC_DENSE */
	uint8_t dec : 1;	/* DENSE: values are decimals (1) or XOR (0) */
	uint8_t e : 4;		/* DENSE decimal: the scale */
};

struct chunk_iter {
	const uint8_t *b;	/* borrowed bytes, header included */
	size_t nbits;		/* bits in b */
	size_t pos;		/* next bit to read */
	uint16_t total;		/* samples to decode (header or a smaller limit) */
	uint16_t read;		/* samples decoded */
	uint8_t leading, trailing;
	uint8_t window;		/* a leading/trailing window was read */
	uint8_t enc;		/* CHUNK_ENC_XOR or CHUNK_ENC_DENSE */
	uint8_t dec, e;		/* DENSE: as in struct chunk_app */
	int err;		/* 0 or CHUNK_ERR_CORRUPT */
	int64_t t;		/* current sample */
	uint64_t v;
	uint64_t tdelta;
	int64_t m, dm;		/* DENSE decimal state */
};

/* chunk_app_init makes app an empty open XOR chunk (no allocation yet). */
void chunk_app_init(struct chunk_app *app);
/* chunk_app_init_enc makes app an empty open chunk of encoding enc
 * (CHUNK_ENC_XOR or CHUNK_ENC_DENSE). */
void chunk_app_init_enc(struct chunk_app *app, uint8_t enc);
/* chunk_app_reset releases app's bytes and makes it empty again (same
 * encoding). */
void chunk_app_reset(struct chunk_app *app);
/* chunk_app_mint returns the first timestamp of a non-empty app (decoded
 * from its bytes). */
int64_t chunk_app_mint(const struct chunk_app *app);
/* chunk_app_cap returns how many bytes app->b holds. */
uint32_t chunk_app_cap(const struct chunk_app *app);
/* chunk_app_append adds a sample whose value is given as its bits. Returns 0,
 * CHUNK_ERR_ORDER when t is not greater than the last timestamp, or
 * CHUNK_ERR_FULL. */
int chunk_app_append(struct chunk_app *app, int64_t t, uint64_t vbits);
/* chunk_app_append_f is chunk_app_append for a double (bits preserved). */
int chunk_app_append_f(struct chunk_app *app, int64_t t, double v);
/* chunk_app_snapshot returns an immutable copy of app's current bytes (one
 * reference, release with chunk_put()), or NULL when app is empty. app is
 * unchanged. */
struct chunk *chunk_app_snapshot(const struct chunk_app *app);
/* chunk_app_seal returns app's samples as an exactly-sized immutable chunk
 * (one reference) and empties app; NULL when app is empty. */
struct chunk *chunk_app_seal(struct chunk_app *app);
/* chunk_app_resume makes app an open XOR chunk continuing the bytes of c
 * (for reopening a chunk read back from disk). Returns 0 or
 * CHUNK_ERR_CORRUPT (also for more than 2 MiB: no chunk takes that). */
int chunk_app_resume(struct chunk_app *app, const uint8_t *b, size_t len);
/* chunk_app_resume_enc is chunk_app_resume for a chunk of encoding enc. */
int chunk_app_resume_enc(struct chunk_app *app, uint8_t enc, const uint8_t *b, size_t len);

/* The state an open chunk needs beyond its bytes to take more samples
 * (kept in checkpoints so a restart need not decode every open chunk). */
struct chunk_app_state {
	int64_t t;		/* last timestamp */
	uint64_t v;		/* last value's bits */
	uint64_t tdelta;
	uint8_t bitsfree, leading, trailing;
	uint8_t enc;		/* CHUNK_ENC_XOR (0 reads as XOR) or CHUNK_ENC_DENSE */
	uint8_t dec, e;		/* DENSE */
	int64_t m, dm;		/* DENSE */
};

/* chunk_app_save fills st from a non-empty app. */
void chunk_app_save(const struct chunk_app *app, struct chunk_app_state *st);
/* chunk_app_restore makes app an open chunk of len bytes (copied) whose
 * first timestamp is mint, with the state saved by chunk_app_save, without
 * decoding. Returns 0 or CHUNK_ERR_CORRUPT when the state cannot belong to
 * the bytes (the bytes do not start with mint, or are more than 2 MiB). */
int chunk_app_restore(struct chunk_app *app, const uint8_t *b, size_t len, int64_t mint,
    const struct chunk_app_state *st);

/* chunk_from_bytes validates len bytes (decodes every sample) and returns
 * a chunk holding a copy with one reference, or NULL when the bytes are
 * not a well-formed chunk of at least one sample. */
struct chunk *chunk_from_bytes(const uint8_t *b, size_t len);
/* chunk_new returns an XOR chunk holding a copy of len trusted bytes
 * (already checksummed) with the given time range, without decoding them. */
struct chunk *chunk_new(const uint8_t *b, size_t len, int64_t mint, int64_t maxt);
/* chunk_new_enc is chunk_new for bytes of encoding enc. */
struct chunk *chunk_new_enc(uint8_t enc, const uint8_t *b, size_t len, int64_t mint,
    int64_t maxt);
/* chunk_ref adds a reference to c and returns it. */
struct chunk *chunk_ref(struct chunk *c);
/* chunk_put drops a reference; c is freed at zero. NULL is a no-op. */
void chunk_put(struct chunk *c);
/* chunk_samples returns the sample count written in c's header. */
uint16_t chunk_samples(const struct chunk *c);

/* chunk_iter_init prepares it to decode len bytes of an XOR chunk at b
 * (borrowed for the iterator's life), at most limit samples (use
 * CHUNK_MAX_SAMPLES for all). */
void chunk_iter_init(struct chunk_iter *it, const uint8_t *b, size_t len, uint16_t limit);
/* chunk_iter_init_enc is chunk_iter_init for CHUNK_ENC_XOR or
 * CHUNK_ENC_DENSE bytes (any other encoding reads as corrupt). */
void chunk_iter_init_enc(struct chunk_iter *it, uint8_t enc, const uint8_t *b, size_t len,
    uint16_t limit);
/* chunk_iter_next decodes the next sample into it->t / it->v. Returns false
 * at the end or on corrupt bytes (then it->err is set). */
bool chunk_iter_next(struct chunk_iter *it);
/* chunk_iter_seek advances to the first sample with timestamp >= t (staying
 * put when the current one already is). Returns false when there is none. */
bool chunk_iter_seek(struct chunk_iter *it, int64_t t);
/* chunk_iter_value returns the current value as a double (same bits). */
double chunk_iter_value(const struct chunk_iter *it);

/* chunk_f64_bits and chunk_bits_f64 convert without touching NaN payloads. */
uint64_t chunk_f64_bits(double v);
double chunk_bits_f64(uint64_t b);

#endif
