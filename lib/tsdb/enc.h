/* lib/tsdb/enc.h - byte encoding primitives of the on-disk formats.
 *
 * A struct enc is a growable output buffer (varints, little-endian fixed
 * widths, raw bytes); a struct dec reads a byte range and latches an error
 * flag instead of reading past the end, so a decoder checks once at the
 * end of a record. Header-only (static inline): the WAL, the block writer
 * and reader and the checkpoint code all use them on hot paths.
 */
#ifndef STRATA_TSDB_ENC_H
#define STRATA_TSDB_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/mem.h"

struct enc {
	uint8_t *b;	/* owned; free with enc_free() */
	size_t len;
	size_t cap;
};

struct dec {
	const uint8_t *p;
	const uint8_t *end;
	bool err;	/* latched: a read went past the end or was malformed */
};

static inline void
enc_free(struct enc *e)
{
	mem_free(e->b);
	e->b = NULL;
	e->len = e->cap = 0;
}

static inline void
enc_grow(struct enc *e, size_t extra)
{
	if (e->len + extra <= e->cap)
		return;
	e->cap = e->cap ? e->cap * 2 : 256;
	while (e->cap < e->len + extra)
		e->cap *= 2;
	e->b = mem_realloc(e->b, e->cap);
}

static inline void
enc_bytes(struct enc *e, const void *p, size_t n)
{
	enc_grow(e, n);
	if (n > 0)
		memcpy(e->b + e->len, p, n);
	e->len += n;
}

static inline void
enc_u8(struct enc *e, uint8_t x)
{
	enc_grow(e, 1);
	e->b[e->len++] = x;
}

static inline void
enc_u32(struct enc *e, uint32_t x)
{
	uint8_t b[4] = { (uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24) };

	enc_bytes(e, b, 4);
}

static inline void
enc_u64(struct enc *e, uint64_t x)
{
	enc_u32(e, (uint32_t)x);
	enc_u32(e, (uint32_t)(x >> 32));
}

static inline void
enc_uvarint(struct enc *e, uint64_t x)
{
	uint8_t *p;

	enc_grow(e, 10);
	p = e->b + e->len;
	while (x >= 0x80) {
		*p++ = (uint8_t)(x | 0x80);
		x >>= 7;
	}
	*p++ = (uint8_t)x;
	e->len = (size_t)(p - e->b);
}

static inline uint64_t
enc_zigzag(int64_t x)
{
	return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

static inline int64_t
dec_unzigzag(uint64_t x)
{
	return (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
}

static inline void
enc_varint(struct enc *e, int64_t x)
{
	enc_uvarint(e, enc_zigzag(x));
}

/* enc_str writes a length-prefixed string. */
static inline void
enc_str(struct enc *e, const char *s, size_t n)
{
	enc_uvarint(e, n);
	enc_bytes(e, s, n);
}

static inline void
put_u32le(uint8_t *p, uint32_t x)
{
	p[0] = (uint8_t)x;
	p[1] = (uint8_t)(x >> 8);
	p[2] = (uint8_t)(x >> 16);
	p[3] = (uint8_t)(x >> 24);
}

static inline uint32_t
get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline uint64_t
get_u64le(const uint8_t *p)
{
	return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

static inline void
dec_init(struct dec *d, const void *p, size_t n)
{
	d->p = p;
	d->end = d->p + n;
	d->err = false;
}

static inline size_t
dec_left(const struct dec *d)
{
	return d->err ? 0 : (size_t)(d->end - d->p);
}

static inline uint64_t
dec_uvarint(struct dec *d)
{
	uint64_t x = 0;
	unsigned shift;

	for (shift = 0; shift < 64 && d->p < d->end; shift += 7) {
		uint8_t b = *d->p++;

		if (shift == 63 && b > 1)
			break;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return x;
	}
	d->err = true;
	d->p = d->end;
	return 0;
}

static inline int64_t
dec_varint(struct dec *d)
{
	return dec_unzigzag(dec_uvarint(d));
}

static inline uint8_t
dec_u8(struct dec *d)
{
	if (d->p >= d->end) {
		d->err = true;
		return 0;
	}
	return *d->p++;
}

static inline uint32_t
dec_u32(struct dec *d)
{
	uint32_t x;

	if (d->end - d->p < 4) {
		d->err = true;
		d->p = d->end;
		return 0;
	}
	x = get_u32le(d->p);
	d->p += 4;
	return x;
}

static inline uint64_t
dec_u64(struct dec *d)
{
	uint64_t x;

	if (d->end - d->p < 8) {
		d->err = true;
		d->p = d->end;
		return 0;
	}
	x = get_u64le(d->p);
	d->p += 8;
	return x;
}

/* dec_bytes returns a pointer to the next n bytes (NULL past the end). */
static inline const uint8_t *
dec_bytes(struct dec *d, size_t n)
{
	const uint8_t *p = d->p;

	if ((size_t)(d->end - d->p) < n) {
		d->err = true;
		d->p = d->end;
		return NULL;
	}
	d->p += n;
	return p;
}

/* dec_str reads a length-prefixed string: its bytes and *n. */
static inline const uint8_t *
dec_str(struct dec *d, size_t *n)
{
	uint64_t len = dec_uvarint(d);

	if (d->err || len > (uint64_t)(d->end - d->p)) {
		d->err = true;
		d->p = d->end;
		*n = 0;
		return NULL;
	}
	*n = (size_t)len;
	return dec_bytes(d, (size_t)len);
}

#endif
