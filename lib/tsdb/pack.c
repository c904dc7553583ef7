/* lib/tsdb/pack.c - packed block chunks (format in pack.h).
 *
 * The encoder tries the candidate encodings (timestamp deltas or deltas of
 * deltas; values as scaled decimals with deltas or deltas of deltas, or
 * XOR) into scratch buffers and keeps the smallest. The decoder checks every
 * length and count against the input, so damaged bytes end in
 * CHUNK_ERR_CORRUPT, never a read past the buffer.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tsdb/pack.h"
#include "util/mem.h"

#define GROUP 128
#define MAX_SCALE 15

static const double p10[MAX_SCALE + 1] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

/* --- bits ------------------------------------------------------------------------------ */

struct bitw {
	struct enc *e;
	uint64_t acc;
	unsigned nacc;		/* bits in acc (< 8 after a put) */
};

static void
bw_put(struct bitw *w, uint64_t v, unsigned nbits)
{
	while (nbits > 0) {
		unsigned take = nbits > 32 ? 32 : nbits;
		uint64_t part = (v >> (nbits - take)) & ((UINT64_C(1) << take) - 1);

		w->acc = (w->acc << take) | part;
		w->nacc += take;
		nbits -= take;
		while (w->nacc >= 8) {
			enc_u8(w->e, (uint8_t)(w->acc >> (w->nacc - 8)));
			w->nacc -= 8;
		}
		w->acc &= (UINT64_C(1) << w->nacc) - 1;
	}
}

static void
bw_flush(struct bitw *w)
{
	if (w->nacc > 0)
		enc_u8(w->e, (uint8_t)(w->acc << (8 - w->nacc)));
	w->acc = 0;
	w->nacc = 0;
}

struct bitr {
	const uint8_t *b;
	size_t nbits, pos;
	int err;
};

static uint64_t
br_get(struct bitr *r, unsigned nbits)
{
	uint64_t v = 0;

	if (r->nbits - r->pos < nbits) {
		r->err = 1;
		return 0;
	}
	while (nbits > 0) {
		unsigned avail = 8 - (unsigned)(r->pos & 7), take = avail < nbits ? avail : nbits;
		unsigned byte = (r->b[r->pos >> 3] >> (avail - take)) & ((1u << take) - 1);

		v = (v << take) | byte;
		r->pos += take;
		nbits -= take;
	}
	return v;
}

static unsigned
bits_of(uint64_t x)
{
	return x ? 64 - (unsigned)__builtin_clzll(x) : 0;
}


/* --- packed integers ------------------------------------------------------------------------ */

/* pack_ints writes n signed integers in groups (see pack.h). */
static void
pack_ints(struct enc *e, const int64_t *x, size_t n)
{
	size_t g;

	for (g = 0; g < n; g += GROUP) {
		size_t m = n - g < GROUP ? n - g : GROUP, i;
		int64_t base = x[g];
		unsigned hist[65] = { 0 }, w, best_w = 64, k, nexc = 0;
		uint64_t best = UINT64_MAX;
		struct bitw bw = { e, 0, 0 };

		for (i = 1; i < m; i++)
			if (x[g + i] < base)
				base = x[g + i];
		for (i = 0; i < m; i++)
			hist[bits_of((uint64_t)x[g + i] - (uint64_t)base)]++;
		/* cost of width w: m*w bits plus each wider value as an exception */
		for (w = 0; w <= 64; w++) {
			uint64_t cost = (uint64_t)m * w, exc = 0;

			for (k = w + 1; k <= 64; k++) {
				exc += hist[k];
				cost += (uint64_t)hist[k] * (8 + 8 * ((k - w + 6) / 7));
			}
			if (exc > 255)
				continue;
			if (cost < best) {
				best = cost;
				best_w = w;
			}
		}
		w = best_w;
		for (i = 0; i < m; i++)
			if (bits_of((uint64_t)x[g + i] - (uint64_t)base) > w)
				nexc++;
		enc_varint(e, base);
		enc_u8(e, (uint8_t)w);
		enc_u8(e, (uint8_t)nexc);
		for (i = 0; i < m; i++) {
			uint64_t d = (uint64_t)x[g + i] - (uint64_t)base;

			bw_put(&bw, w == 64 ? d : d & ((UINT64_C(1) << w) - 1), w);
		}
		bw_flush(&bw);
		for (i = 0; i < m; i++) {
			uint64_t d = (uint64_t)x[g + i] - (uint64_t)base;

			if (bits_of(d) > w) {
				enc_u8(e, (uint8_t)i);
				enc_uvarint(e, d >> w);
			}
		}
	}
}

/* unpack_ints reads n integers into x. Returns 0 or -1. */
static int
unpack_ints(struct dec *d, int64_t *x, size_t n)
{
	size_t g;

	for (g = 0; g < n; g += GROUP) {
		size_t m = n - g < GROUP ? n - g : GROUP, i, bytes;
		int64_t base = dec_varint(d);
		unsigned w = dec_u8(d), nexc = dec_u8(d), k;
		struct bitr r;

		if (d->err || w > 64)
			return -1;
		bytes = (m * w + 7) / 8;
		r.b = dec_bytes(d, bytes);
		if (r.b == NULL)
			return -1;
		r.nbits = bytes * 8;
		r.pos = 0;
		r.err = 0;
		for (i = 0; i < m; i++)
			x[g + i] = (int64_t)((uint64_t)base + br_get(&r, w));
		for (k = 0; k < nexc; k++) {
			unsigned pos = dec_u8(d);
			uint64_t hi = dec_uvarint(d);

			if (d->err || pos >= m || w == 64)
				return -1;
			x[g + pos] = (int64_t)((uint64_t)x[g + pos] + (hi << w));
		}
		if (r.err)
			return -1;
	}
	return 0;
}

/* --- timestamps -------------------------------------------------------------------------------- */

static void
encode_ts(const struct tsdb_sample *v, size_t n, struct enc *out, int64_t *scratch,
    struct enc *tmp)
{
	size_t i, best_len;
	uint8_t mode;

	enc_varint(out, v[0].t);
	if (n == 1)
		return;
	enc_varint(out, (int64_t)((uint64_t)v[1].t - (uint64_t)v[0].t));
	if (n == 2)
		return;
	/* deltas */
	for (i = 2; i < n; i++)
		scratch[i - 2] = (int64_t)((uint64_t)v[i].t - (uint64_t)v[i - 1].t);
	tmp->len = 0;
	pack_ints(tmp, scratch, n - 2);
	best_len = tmp->len;
	mode = 0;
	/* deltas of deltas */
	for (i = 2; i < n; i++)
		scratch[i - 2] = (int64_t)(((uint64_t)v[i].t - (uint64_t)v[i - 1].t) -
		    ((uint64_t)v[i - 1].t - (uint64_t)v[i - 2].t));
	{
		size_t at = tmp->len;

		pack_ints(tmp, scratch, n - 2);
		if (tmp->len - at < best_len) {
			enc_u8(out, 1);
			enc_bytes(out, tmp->b + at, tmp->len - at);
			return;
		}
	}
	enc_u8(out, mode);
	enc_bytes(out, tmp->b, best_len);
}

static int
decode_ts(struct dec *d, struct tsdb_sample *v, size_t n, int64_t *scratch)
{
	size_t i;
	uint8_t mode;

	v[0].t = dec_varint(d);
	if (n > 1)
		v[1].t = (int64_t)((uint64_t)v[0].t + (uint64_t)dec_varint(d));
	if (n <= 2)
		return d->err ? -1 : 0;
	mode = dec_u8(d);
	if (d->err || mode > 1 || unpack_ints(d, scratch, n - 2) < 0)
		return -1;
	for (i = 2; i < n; i++) {
		uint64_t delta = (uint64_t)scratch[i - 2];

		if (mode == 1)
			delta += (uint64_t)v[i - 1].t - (uint64_t)v[i - 2].t;
		v[i].t = (int64_t)((uint64_t)v[i - 1].t + delta);
		if (v[i].t <= v[i - 1].t)
			return -1;
	}
	return v[1].t > v[0].t ? 0 : -1;
}

/* --- values ------------------------------------------------------------------------------------ */

static double
f64(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof v);
	return v;
}

static uint64_t
u64(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof b);
	return b;
}

/* scale_of returns the smallest e with bits == m / 10^e for an integer m
 * (|m| < 2^53), or -1. */
static int
scale_of(uint64_t bits, int64_t *m)
{
	double v = f64(bits);
	int e;

	if (!isfinite(v) || bits == UINT64_C(0x8000000000000000))
		return -1;
	for (e = 0; e <= MAX_SCALE; e++) {
		double x = v * p10[e];

		if (fabs(x) >= 9007199254740992.0)
			return -1;
		x = nearbyint(x);
		if (u64(x / p10[e]) == bits) {
			*m = (int64_t)x;
			return e;
		}
	}
	return -1;
}

/* encode_scaled writes mode 0 with scale e; values that do not scale are
 * exceptions (their integer slot repeats the previous integer). */
static void
encode_scaled(const struct tsdb_sample *v, size_t n, int e, int order, struct enc *out,
    int64_t *m, int64_t *scratch)
{
	size_t i, nexc = 0, last = 0;
	int64_t prev = 0;

	for (i = 0; i < n; i++) {
		double x = f64(v[i].v) * p10[e];
		bool ok = isfinite(x) && fabs(x) < 9007199254740992.0 &&
		    v[i].v != UINT64_C(0x8000000000000000);

		if (ok) {
			x = nearbyint(x);
			ok = u64(x / p10[e]) == v[i].v;
		}
		m[i] = ok ? (int64_t)x : prev;
		if (!ok)
			nexc++;
		prev = m[i];
	}
	enc_u8(out, 0);
	enc_u8(out, (uint8_t)e);
	enc_u8(out, (uint8_t)order);
	enc_varint(out, m[0]);
	if (n > 1) {
		if (order == 1) {
			for (i = 1; i < n; i++)
				scratch[i - 1] = (int64_t)((uint64_t)m[i] - (uint64_t)m[i - 1]);
			pack_ints(out, scratch, n - 1);
		} else {
			enc_varint(out, (int64_t)((uint64_t)m[1] - (uint64_t)m[0]));
			for (i = 2; i < n; i++)
				scratch[i - 2] = (int64_t)(((uint64_t)m[i] - (uint64_t)m[i - 1]) -
				    ((uint64_t)m[i - 1] - (uint64_t)m[i - 2]));
			pack_ints(out, scratch, n - 2);
		}
	}
	enc_uvarint(out, nexc);
	for (i = 0; i < n; i++) {
		double x = f64(v[i].v) * p10[e];
		bool ok = isfinite(x) && fabs(x) < 9007199254740992.0 &&
		    v[i].v != UINT64_C(0x8000000000000000);

		if (ok)
			ok = u64(nearbyint(x) / p10[e]) == v[i].v;
		if (!ok) {
			enc_uvarint(out, i - last);
			enc_u64(out, v[i].v);
			last = i;
		}
	}
}

static void
encode_xor(const struct tsdb_sample *v, size_t n, struct enc *out)
{
	struct bitw bw = { out, 0, 0 };
	unsigned lead = 0xff, trail = 0;
	size_t i;

	enc_u8(out, 1);
	enc_u64(out, v[0].v);
	for (i = 1; i < n; i++) {
		uint64_t x = v[i].v ^ v[i - 1].v;
		unsigned l, t;

		if (x == 0) {
			bw_put(&bw, 0, 1);
			continue;
		}
		l = (unsigned)__builtin_clzll(x);
		t = (unsigned)__builtin_ctzll(x);
		if (l > 31)
			l = 31;
		if (lead != 0xff && l >= lead && t >= trail) {
			bw_put(&bw, 2, 2);	/* 10: reuse the window */
			bw_put(&bw, x >> trail, 64 - lead - trail);
			continue;
		}
		lead = l;
		trail = t;
		bw_put(&bw, 3, 2);	/* 11: new window */
		bw_put(&bw, lead, 5);
		bw_put(&bw, (64 - lead - trail) & 63, 6);
		bw_put(&bw, x >> trail, 64 - lead - trail);
	}
	bw_flush(&bw);
}

static int
decode_xor(struct dec *d, struct tsdb_sample *v, size_t n)
{
	struct bitr r;
	unsigned lead = 0, trail = 0;
	size_t i;
	bool window = false;

	v[0].v = dec_u64(d);
	if (d->err)
		return -1;
	r.b = d->p;
	r.nbits = dec_left(d) * 8;
	r.pos = 0;
	r.err = 0;
	for (i = 1; i < n; i++) {
		uint64_t x;
		unsigned sig;

		if (br_get(&r, 1) == 0) {
			v[i].v = v[i - 1].v;
			continue;
		}
		if (br_get(&r, 1) == 1) {
			lead = (unsigned)br_get(&r, 5);
			sig = (unsigned)br_get(&r, 6);
			if (sig == 0)
				sig = 64;
			if (lead + sig > 64)
				return -1;
			trail = 64 - lead - sig;
			window = true;
		} else if (!window) {
			return -1;
		}
		x = br_get(&r, 64 - lead - trail);
		if (r.err)
			return -1;
		v[i].v = v[i - 1].v ^ (x << trail);
	}
	if (r.err)
		return -1;
	(void)dec_bytes(d, (r.pos + 7) / 8);
	return 0;
}

static int
decode_scaled(struct dec *d, struct tsdb_sample *v, size_t n, int64_t *m, int64_t *scratch)
{
	unsigned e = dec_u8(d), order = dec_u8(d);
	uint64_t nexc, i, idx = 0;

	if (d->err || e > MAX_SCALE || order < 1 || order > 2)
		return -1;
	m[0] = dec_varint(d);
	if (n > 1) {
		if (order == 1) {
			if (unpack_ints(d, scratch, n - 1) < 0)
				return -1;
			for (i = 1; i < n; i++)
				m[i] = (int64_t)((uint64_t)m[i - 1] + (uint64_t)scratch[i - 1]);
		} else {
			m[1] = (int64_t)((uint64_t)m[0] + (uint64_t)dec_varint(d));
			if (n > 2 && unpack_ints(d, scratch, n - 2) < 0)
				return -1;
			for (i = 2; i < n; i++)
				m[i] = (int64_t)((uint64_t)m[i - 1] + ((uint64_t)m[i - 1] -
				    (uint64_t)m[i - 2]) + (uint64_t)scratch[i - 2]);
		}
	}
	for (i = 0; i < n; i++)
		v[i].v = u64((double)m[i] / p10[e]);
	nexc = dec_uvarint(d);
	if (d->err || nexc > n)
		return -1;
	for (i = 0; i < nexc; i++) {
		idx += dec_uvarint(d);
		if (d->err || idx >= n)
			return -1;
		v[idx].v = dec_u64(d);
	}
	return d->err ? -1 : 0;
}

/* --- chunks ---------------------------------------------------------------------------------------- */

void
pack_encode(const struct tsdb_sample *v, size_t n, struct enc *out)
{
	int64_t *m = mem_alloc((n + 1) * sizeof *m), *scratch = mem_alloc((n + 1) * sizeof *scratch);
	struct enc a = { NULL, 0, 0 }, b = { NULL, 0, 0 };
	size_t i, nexc = 0;
	int e = 0;

	enc_uvarint(out, n);
	encode_ts(v, n, out, scratch, &a);
	/* the scale that covers every value that scales at all */
	for (i = 0; i < n; i++) {
		int64_t mi;
		int s = scale_of(v[i].v, &mi);

		if (s < 0)
			nexc++;
		else if (s > e)
			e = s;
	}
	a.len = b.len = 0;
	encode_xor(v, n, &a);
	if (nexc <= n / 4) {
		struct enc *best = &a;

		encode_scaled(v, n, e, 1, &b, m, scratch);
		if (b.len < best->len)
			best = &b;
		if (n > 2) {
			struct enc c = { NULL, 0, 0 };

			encode_scaled(v, n, e, 2, &c, m, scratch);
			if (c.len < best->len) {
				enc_bytes(out, c.b, c.len);
				enc_free(&c);
				goto done;
			}
			enc_free(&c);
		}
		enc_bytes(out, best->b, best->len);
	} else {
		enc_bytes(out, a.b, a.len);
	}
done:
	enc_free(&a);
	enc_free(&b);
	mem_free(m);
	mem_free(scratch);
}

int
pack_decode(const uint8_t *b, size_t len, struct tsdb_sample **v, size_t *n, size_t *cap)
{
	struct dec d;
	uint64_t cnt;
	struct tsdb_sample *out;
	int64_t *m = NULL, *scratch = NULL;
	int rc = CHUNK_ERR_CORRUPT;
	uint8_t mode;

	dec_init(&d, b, len);
	cnt = dec_uvarint(&d);
	if (d.err || cnt == 0 || cnt > PACK_MAX_SAMPLES)
		return CHUNK_ERR_CORRUPT;
	if (*n + cnt > *cap) {
		*cap = *n + (size_t)cnt + 64;
		*v = mem_realloc(*v, *cap * sizeof **v);
	}
	out = *v + *n;
	m = mem_alloc((cnt + 1) * sizeof *m);
	scratch = mem_alloc((cnt + 1) * sizeof *scratch);
	if (decode_ts(&d, out, (size_t)cnt, scratch) < 0)
		goto out;
	mode = dec_u8(&d);
	if (d.err)
		goto out;
	if (mode == 0) {
		if (decode_scaled(&d, out, (size_t)cnt, m, scratch) < 0)
			goto out;
	} else if (mode == 1) {
		if (decode_xor(&d, out, (size_t)cnt) < 0)
			goto out;
	} else {
		goto out;
	}
	if (dec_left(&d) != 0)
		goto out;
	*n += (size_t)cnt;
	rc = 0;
out:
	mem_free(m);
	mem_free(scratch);
	return rc;
}
