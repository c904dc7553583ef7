/* lib/tsdb/pack.h - packed chunks: the encoding of block chunks on disk.
 *
 * Gorilla's XOR chunks (chunk.h) suit an open head chunk appended one
 * sample at a time. A block chunk is written once, whole, so it can look at
 * all its samples and pick the cheapest of a few encodings:
 *
 *   uvarint n (samples, >= 1)
 *   timestamps: varint t0; when n > 1 varint t1 - t0; when n > 2 a u8 mode
 *     (0: deltas t[i] - t[i-1], 1: deltas of deltas) and those n - 2 values
 *     as packed integers (below)
 *   values: u8 mode
 *     0 scaled: u8 e, the values as integers m with v == m / 10^e exactly
 *       (decimal values as exposition text writes them: counters, 0.5,
 *       12.25 ...); u8 k (1: deltas, 2: deltas of deltas); varint m0;
 *       n - 1 (k = 1) or varint m1 - m0 and n - 2 (k = 2) packed integers;
 *       then uvarint x exceptions { uvarint index delta, u64 bits }: the
 *       values that are not such decimals (NaN, the stale marker, +-Inf, -0,
 *       long binary fractions) kept bit for bit
 *     1 xor: Gorilla's XOR value coding as a bit stream (values only)
 *   packed integers, in groups of 128: varint base (the group minimum),
 *     u8 width w, u8 count x of exceptions, the group's values - base in w
 *     bits each (MSB first, the group padded to a byte), then x times { u8
 *     position, uvarint (value - base) >> w }: outliers cost their own
 *     bytes instead of widening the group (patched frame of reference)
 *
 * Regular 15 s scrapes cost 0 bits per timestamp, a few milliseconds of
 * jitter 2-4 bits; counters and decimal gauges a few bits per value.
 *
 * Version 2 (CHUNK_ENC_PACK2, what blocks are written with) makes every
 * group of 128 samples decodable on its own, so a reader that wants the
 * last minutes of a chunk skips the groups before them without unpacking
 * (a group is skipped by reading its anchors and headers):
 *
 *   uvarint n; u8 modes: bit 0 timestamps as deltas of deltas (else
 *     deltas), bits 1-2 values: 0 scaled deltas, 1 scaled deltas of
 *     deltas, 2 XOR; u8 e (scaled modes)
 *   then for each group g of samples [128g, min(128g + 128, n)), s = 128g:
 *     varint t[s] (g > 0: t[s] - t[s-128]); when the group holds >= 2
 *     samples varint t[s+1] - t[s] (g > 0: minus the previous group's that
 *     delta); when >= 3, one packed-integer group of the remaining deltas
 *     or deltas of deltas (the first from t[s+1] - t[s])
 *     values, scaled: varint m[s] (g > 0: minus m[s-128]), when >= 2
 *     varint m[s+1] - m[s] (g > 0: minus the previous group's), when >= 3
 *     a packed-integer group of the rest, then u8 x exceptions { u8
 *     position in the group, u64 bits }
 *     values, XOR: uvarint length, then the group's first value's 64 bits
 *     (little-endian) and Gorilla XOR bits for the rest, byte-padded
 * The anchors cost about 8 bytes a group (0.06 bytes a sample).
 *
 * Stateless; thread-safe. Integers unpack a 64-bit word at a time.
 */
#ifndef STRATA_TSDB_PACK_H
#define STRATA_TSDB_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/chunk.h"
#include "tsdb/enc.h"

#define PACK_MAX_SAMPLES 65535

/* pack_encode appends the packed form of v[0..n) (sorted by t, unique,
 * 1 <= n <= PACK_MAX_SAMPLES) to out. */
void pack_encode(const struct tsdb_sample *v, size_t n, struct enc *out);
/* pack_decode appends the samples of len packed bytes to *v (*n samples,
 * *cap allocated; grown as needed). Returns 0 or CHUNK_ERR_CORRUPT. */
int pack_decode(const uint8_t *b, size_t len, struct tsdb_sample **v, size_t *n,
    size_t *cap);

/* pack2_encode appends the CHUNK_ENC_PACK2 form of v[0..n) (as
 * pack_encode) to out. */
void pack2_encode(const struct tsdb_sample *v, size_t n, struct enc *out);
/* pack2_decode_range appends the samples of the groups of len PACK2 bytes
 * that can hold samples in [mint, maxt] (whole groups: from the last group
 * starting at or before mint to the last starting at or before maxt) to *v,
 * skipping the other groups without unpacking them. Returns 0 or
 * CHUNK_ERR_CORRUPT (nothing appended). */
int pack2_decode_range(const uint8_t *b, size_t len, int64_t mint, int64_t maxt,
    struct tsdb_sample **v, size_t *n, size_t *cap);

#endif
