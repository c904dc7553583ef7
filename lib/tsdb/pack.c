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
load_be64(const uint8_t *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return __builtin_bswap64(x);
}

/* br_get reads nbits (<= 64), a 64-bit word at a time. */
static uint64_t
br_get(struct bitr *r, unsigned nbits)
{
	size_t byte, len;
	unsigned off;
	uint64_t w = 0, v;

	if (r->nbits - r->pos < nbits) {
		r->err = 1;
		return 0;
	}
	if (nbits == 0)
		return 0;
	byte = r->pos >> 3;
	off = (unsigned)(r->pos & 7);
	len = r->nbits >> 3;
	if (len - byte >= 8) {
		w = load_be64(r->b + byte);
	} else {
		size_t i;

		for (i = 0; i < len - byte; i++)
			w |= (uint64_t)r->b[byte + i] << (56 - 8 * i);
	}
	v = w << off;
	if (off + nbits > 64)	/* the last bits are in the ninth byte */
		v |= (uint64_t)r->b[byte + 8] >> (8 - off);
	if (nbits < 64)
		v >>= 64 - nbits;
	r->pos += nbits;
	return v;
}

static unsigned
bits_of(uint64_t x)
{
	return x ? 64 - (unsigned)__builtin_clzll(x) : 0;
}


/* --- packed integers ------------------------------------------------------------------------ */

/* pack_group writes m <= GROUP signed integers as one group (see pack.h). */
static void
pack_group(struct enc *e, const int64_t *x, size_t m)
{
	int64_t base = x[0];
	unsigned hist[65] = { 0 }, w, best_w = 64, k, nexc = 0;
	uint64_t best = UINT64_MAX;
	struct bitw bw = { e, 0, 0 };
	size_t i;

	for (i = 1; i < m; i++)
		if (x[i] < base)
			base = x[i];
	for (i = 0; i < m; i++)
		hist[bits_of((uint64_t)x[i] - (uint64_t)base)]++;
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
		if (bits_of((uint64_t)x[i] - (uint64_t)base) > w)
			nexc++;
	enc_varint(e, base);
	enc_u8(e, (uint8_t)w);
	enc_u8(e, (uint8_t)nexc);
	for (i = 0; i < m; i++) {
		uint64_t d = (uint64_t)x[i] - (uint64_t)base;

		bw_put(&bw, w == 64 ? d : d & ((UINT64_C(1) << w) - 1), w);
	}
	bw_flush(&bw);
	for (i = 0; i < m; i++) {
		uint64_t d = (uint64_t)x[i] - (uint64_t)base;

		if (bits_of(d) > w) {
			enc_u8(e, (uint8_t)i);
			enc_uvarint(e, d >> w);
		}
	}
}

/* pack_ints writes n signed integers in groups (see pack.h). */
static void
pack_ints(struct enc *e, const int64_t *x, size_t n)
{
	size_t g;

	for (g = 0; g < n; g += GROUP)
		pack_group(e, x + g, n - g < GROUP ? n - g : GROUP);
}

/* bits_unpack reads m values of w bits (MSB first) from p[0..bytes) into
 * x, adding base. A word at a time: no loop over bits. Returns 0, or -1
 * when the bytes end early. */
static int
bits_unpack(const uint8_t *p, size_t bytes, unsigned w, size_t m, int64_t base, int64_t *x)
{
	size_t i, pos = 0;

	if (w == 0) {
		for (i = 0; i < m; i++)
			x[i] = base;
		return 0;
	}
	if ((m * w + 7) / 8 > bytes)
		return -1;
	for (i = 0; i < m; i++, pos += w) {
		size_t byte = pos >> 3;
		unsigned off = (unsigned)(pos & 7);
		uint64_t word, val;

		if (byte + 8 <= bytes) {
			word = load_be64(p + byte);
		} else {
			size_t k;

			word = 0;
			for (k = 0; byte + k < bytes; k++)
				word |= (uint64_t)p[byte + k] << (56 - 8 * k);
		}
		val = (word << off) >> (64 - w);
		if (off + w > 64) {	/* the value's last bits are in a ninth byte */
			if (byte + 8 >= bytes)
				return -1;
			val |= (uint64_t)p[byte + 8] >> (8 - (off + w - 64));
		}
		x[i] = (int64_t)((uint64_t)base + val);
	}
	return 0;
}

/* unpack_group reads one group of m values into x. Returns 0 or -1. */
static int
unpack_group(struct dec *d, int64_t *x, size_t m)
{
	int64_t base = dec_varint(d);
	unsigned w = dec_u8(d), nexc = dec_u8(d), k;
	size_t bytes;
	const uint8_t *p;

	if (d->err || w > 64)
		return -1;
	bytes = (m * w + 7) / 8;
	if ((p = dec_bytes(d, bytes)) == NULL)
		return -1;
	if (bits_unpack(p, bytes, w, m, base, x) < 0)
		return -1;
	for (k = 0; k < nexc; k++) {
		unsigned pos = dec_u8(d);
		uint64_t hi = dec_uvarint(d);

		if (d->err || pos >= m || w == 64)
			return -1;
		x[pos] = (int64_t)((uint64_t)x[pos] + (hi << w));
	}
	return 0;
}

/* skip_group moves d past one group of m values without unpacking it. */
static int
skip_group(struct dec *d, size_t m)
{
	unsigned w, nexc, k;

	(void)dec_varint(d);
	w = dec_u8(d);
	nexc = dec_u8(d);
	if (d->err || w > 64 || dec_bytes(d, (m * w + 7) / 8) == NULL)
		return -1;
	for (k = 0; k < nexc; k++) {
		(void)dec_u8(d);
		(void)dec_uvarint(d);
	}
	return d->err ? -1 : 0;
}

/* unpack_ints reads n integers into x. Returns 0 or -1. */
static int
unpack_ints(struct dec *d, int64_t *x, size_t n)
{
	size_t g;

	for (g = 0; g < n; g += GROUP)
		if (unpack_group(d, x + g, n - g < GROUP ? n - g : GROUP) < 0)
			return -1;
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

/* scaled_at tells whether bits == m / 10^e for an integer m (|m| < 2^53,
 * -0 excluded) and sets *m to it. */
static inline bool
scaled_at(uint64_t bits, int e, int64_t *m)
{
	double x = f64(bits) * p10[e];

	if (!isfinite(x) || !(fabs(x) < 9007199254740992.0) ||
	    bits == UINT64_C(0x8000000000000000))
		return false;
	x = nearbyint(x);
	if (u64(x / p10[e]) != bits)
		return false;
	*m = (int64_t)x;
	return true;
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
		int64_t mi;
		bool ok = scaled_at(v[i].v, e, &mi);

		m[i] = ok ? mi : prev;
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
		int64_t mi;

		if (!scaled_at(v[i].v, e, &mi)) {
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

/* --- version 2: groups a reader can skip ------------------------------------------------ */

enum { P2V_DELTA = 0, P2V_DOD = 1, P2V_XOR = 2 };

static int64_t
sub64(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* The bytes of one section (timestamps, or values in one mode) of every
 * group: at[g] is where group g's part starts in e. */
struct p2sect {
	struct enc e;
	size_t *at;
};

static void
p2sect_init(struct p2sect *s, size_t groups)
{
	s->e.b = NULL;
	s->e.len = s->e.cap = 0;
	s->at = mem_alloc((groups + 1) * sizeof *s->at);
}

static void
p2sect_free(struct p2sect *s)
{
	enc_free(&s->e);
	mem_free(s->at);
}

/* p2_ts writes every group's timestamps: the first (a delta from the
 * previous group's first), the first delta (a delta from the previous
 * group's first delta), then the rest as deltas or deltas of deltas. */
static void
p2_ts(const struct tsdb_sample *v, size_t n, bool dod, struct p2sect *out, int64_t *scratch)
{
	size_t s, g, i;

	for (s = 0, g = 0; s < n; s += GROUP, g++) {
		size_t end = n - s < GROUP ? n : s + GROUP;

		out->at[g] = out->e.len;
		enc_varint(&out->e, s == 0 ? v[0].t : sub64(v[s].t, v[s - GROUP].t));
		if (end - s < 2)
			continue;
		enc_varint(&out->e, s == 0 ? sub64(v[1].t, v[0].t) :
		    sub64(sub64(v[s + 1].t, v[s].t), sub64(v[s - GROUP + 1].t, v[s - GROUP].t)));
		if (end - s < 3)
			continue;
		for (i = s + 2; i < end; i++) {
			int64_t d = sub64(v[i].t, v[i - 1].t);

			scratch[i - s - 2] = dod ? sub64(d, sub64(v[i - 1].t, v[i - 2].t)) : d;
		}
		pack_group(&out->e, scratch, end - s - 2);
	}
	out->at[g] = out->e.len;
}

/* p2_scaled writes every group's values as integers m / 10^e: the first
 * and the first delta anchored on the previous group's, the rest as deltas
 * (order 1) or deltas of deltas (order 2), then the group's exceptions (u8
 * count, { u8 position, u64 bits }) for values that are no such decimal. */
static void
p2_scaled(const struct tsdb_sample *v, size_t n, int e, int order, struct p2sect *out,
    int64_t *m, int64_t *scratch)
{
	size_t s, g, i;
	int64_t prev = 0;

	for (i = 0; i < n; i++) {
		int64_t mi;
		bool ok = scaled_at(v[i].v, e, &mi);

		m[i] = ok ? mi : prev;
		scratch[i] = !ok;	/* exception flags, reused below once read */
		prev = m[i];
	}
	for (s = 0, g = 0; s < n; s += GROUP, g++) {
		size_t end = n - s < GROUP ? n : s + GROUP, nexc = 0;
		uint8_t exc[GROUP];

		for (i = s; i < end; i++)
			if (scratch[i])
				exc[nexc++] = (uint8_t)(i - s);
		out->at[g] = out->e.len;
		enc_varint(&out->e, s == 0 ? m[0] : sub64(m[s], m[s - GROUP]));
		if (end - s >= 2)
			enc_varint(&out->e, s == 0 ? sub64(m[1], m[0]) :
			    sub64(sub64(m[s + 1], m[s]), sub64(m[s - GROUP + 1], m[s - GROUP])));
		if (end - s >= 3) {
			int64_t tmp[GROUP];

			for (i = s + 2; i < end; i++) {
				int64_t d = sub64(m[i], m[i - 1]);

				tmp[i - s - 2] = order == 2 ? sub64(d, sub64(m[i - 1], m[i - 2])) : d;
			}
			pack_group(&out->e, tmp, end - s - 2);
		}
		enc_u8(&out->e, (uint8_t)nexc);
		for (i = 0; i < nexc; i++) {
			enc_u8(&out->e, exc[i]);
			enc_u64(&out->e, v[s + exc[i]].v);
		}
	}
	out->at[g] = out->e.len;
}

/* p2_xor writes every group's values as Gorilla XOR restarting at the
 * group: uvarint length, the first value's 64 bits, the XOR bit stream. */
static void
p2_xor(const struct tsdb_sample *v, size_t n, struct p2sect *out, struct enc *tmp)
{
	size_t s, g;

	for (s = 0, g = 0; s < n; s += GROUP, g++) {
		size_t cnt = n - s < GROUP ? n - s : GROUP;

		tmp->len = 0;
		encode_xor(v + s, cnt, tmp);	/* a mode byte, then the group's bytes */
		out->at[g] = out->e.len;
		enc_uvarint(&out->e, tmp->len - 1);
		enc_bytes(&out->e, tmp->b + 1, tmp->len - 1);
	}
	out->at[g] = out->e.len;
}

void
pack2_encode(const struct tsdb_sample *v, size_t n, struct enc *out)
{
	size_t groups = (n + GROUP - 1) / GROUP, g, i, nexc = 0;
	int64_t *m = mem_alloc((n + 1) * sizeof *m), *scratch = mem_alloc((n + 1) * sizeof *scratch);
	struct p2sect ts[2], vs[3];
	struct enc tmp = { NULL, 0, 0 };
	int e = 0, tbest, vbest;

	for (i = 0; i < 2; i++) {
		p2sect_init(&ts[i], groups);
		p2_ts(v, n, i == 1, &ts[i], scratch);
	}
	tbest = ts[1].e.len < ts[0].e.len;
	for (i = 0; i < 3; i++)
		p2sect_init(&vs[i], groups);
	/* the scale that covers every value that scales at all */
	for (i = 0; i < n; i++) {
		int64_t mi;
		int sc = scale_of(v[i].v, &mi);

		if (sc < 0)
			nexc++;
		else if (sc > e)
			e = sc;
	}
	p2_xor(v, n, &vs[P2V_XOR], &tmp);
	vbest = P2V_XOR;
	if (nexc <= n / 4) {
		p2_scaled(v, n, e, 1, &vs[P2V_DELTA], m, scratch);
		p2_scaled(v, n, e, 2, &vs[P2V_DOD], m, scratch);
		for (i = 0; i < 2; i++)
			if (vs[i].e.len < vs[vbest].e.len)
				vbest = (int)i;
	}
	enc_uvarint(out, n);
	enc_u8(out, (uint8_t)(tbest | vbest << 1));
	if (vbest != P2V_XOR)
		enc_u8(out, (uint8_t)e);
	for (g = 0; g < groups; g++) {
		enc_bytes(out, ts[tbest].e.b + ts[tbest].at[g], ts[tbest].at[g + 1] - ts[tbest].at[g]);
		enc_bytes(out, vs[vbest].e.b + vs[vbest].at[g], vs[vbest].at[g + 1] - vs[vbest].at[g]);
	}
	for (i = 0; i < 2; i++)
		p2sect_free(&ts[i]);
	for (i = 0; i < 3; i++)
		p2sect_free(&vs[i]);
	enc_free(&tmp);
	mem_free(m);
	mem_free(scratch);
}

/* The chain state before a group, and where it starts. */
struct p2pos {
	const uint8_t *p;
	int64_t t, d, m, dm;	/* the previous group's first t, delta, m, m delta */
	int64_t first;		/* this group's first timestamp */
};

struct p2hdr {
	size_t n;
	bool dod;
	int vmode;
	unsigned e;
};

/* p2_group walks group g (cnt samples) from d with chain state *st:
 * updates the chain to this group's anchors, then decodes its samples into
 * out (cnt of them) or, with out NULL, skips them. Returns 0 or -1. */
static int
p2_group(struct dec *d, const struct p2hdr *h, size_t g, size_t cnt, struct p2pos *st,
    struct tsdb_sample *out)
{
	int64_t x[GROUP], t, dt, m, dm;
	size_t i;

	t = dec_varint(d);
	st->t = g == 0 ? t : (int64_t)((uint64_t)st->t + (uint64_t)t);
	if (cnt >= 2) {
		dt = dec_varint(d);
		st->d = g == 0 ? dt : (int64_t)((uint64_t)st->d + (uint64_t)dt);
	}
	if (cnt >= 3 && (out != NULL ? unpack_group(d, x, cnt - 2) : skip_group(d, cnt - 2)) < 0)
		return -1;
	if (d->err)
		return -1;
	if (out != NULL) {
		out[0].t = st->t;
		if (cnt >= 2) {
			out[1].t = (int64_t)((uint64_t)st->t + (uint64_t)st->d);
			dt = st->d;
			for (i = 2; i < cnt; i++) {
				dt = h->dod ? (int64_t)((uint64_t)dt + (uint64_t)x[i - 2]) : x[i - 2];
				out[i].t = (int64_t)((uint64_t)out[i - 1].t + (uint64_t)dt);
			}
			for (i = 1; i < cnt; i++)
				if (out[i].t <= out[i - 1].t)
					return -1;
		}
	}
	if (h->vmode == P2V_XOR) {
		uint64_t len = dec_uvarint(d);
		const uint8_t *p;
		struct dec sd;

		if (d->err || len > dec_left(d) || (p = dec_bytes(d, (size_t)len)) == NULL)
			return -1;
		if (out == NULL)
			return 0;
		dec_init(&sd, p, (size_t)len);
		return decode_xor(&sd, out, cnt) < 0 || dec_left(&sd) != 0 ? -1 : 0;
	}
	m = dec_varint(d);
	st->m = g == 0 ? m : (int64_t)((uint64_t)st->m + (uint64_t)m);
	if (cnt >= 2) {
		dm = dec_varint(d);
		st->dm = g == 0 ? dm : (int64_t)((uint64_t)st->dm + (uint64_t)dm);
	}
	if (cnt >= 3 && (out != NULL ? unpack_group(d, x, cnt - 2) : skip_group(d, cnt - 2)) < 0)
		return -1;
	if (out != NULL) {
		int64_t mv = st->m;

		out[0].v = u64(h->e == 0 ? (double)mv : (double)mv / p10[h->e]);
		if (cnt >= 2) {
			dm = st->dm;
			mv = (int64_t)((uint64_t)mv + (uint64_t)dm);
			out[1].v = u64(h->e == 0 ? (double)mv : (double)mv / p10[h->e]);
			for (i = 2; i < cnt; i++) {
				dm = h->vmode == P2V_DOD ? (int64_t)((uint64_t)dm + (uint64_t)x[i - 2]) :
				    x[i - 2];
				mv = (int64_t)((uint64_t)mv + (uint64_t)dm);
				out[i].v = u64(h->e == 0 ? (double)mv : (double)mv / p10[h->e]);
			}
		}
	}
	{
		unsigned nexc = dec_u8(d), k;

		if (d->err || nexc > cnt)
			return -1;
		for (k = 0; k < nexc; k++) {
			unsigned pos = dec_u8(d);
			uint64_t bits = dec_u64(d);

			if (d->err || pos >= cnt)
				return -1;
			if (out != NULL)
				out[pos].v = bits;
		}
	}
	return d->err ? -1 : 0;
}

int
pack2_decode_range(const uint8_t *b, size_t len, int64_t mint, int64_t maxt,
    struct tsdb_sample **v, size_t *n, size_t *cap)
{
	struct p2pos stackdir[16], *dir = stackdir, st = { NULL, 0, 0, 0, 0, 0 };
	struct p2hdr h;
	struct dec d;
	uint64_t cnt;
	uint8_t modes;
	size_t groups, g, used, first = 0, last, total = 0, before = *n;
	int rc = CHUNK_ERR_CORRUPT;
	bool all = true;

	dec_init(&d, b, len);
	cnt = dec_uvarint(&d);
	modes = dec_u8(&d);
	if (d.err || cnt == 0 || cnt > PACK_MAX_SAMPLES || modes > 5)
		return CHUNK_ERR_CORRUPT;
	h.n = (size_t)cnt;
	h.dod = modes & 1;
	h.vmode = modes >> 1;
	h.e = h.vmode == P2V_XOR ? 0 : dec_u8(&d);
	if (d.err || h.e > MAX_SCALE)
		return CHUNK_ERR_CORRUPT;
	groups = (h.n + GROUP - 1) / GROUP;
	if (groups > sizeof stackdir / sizeof stackdir[0])
		dir = mem_alloc(groups * sizeof *dir);
	/* walk the groups, skipping their bodies, up to the first starting after maxt */
	for (g = 0; g < groups; g++) {
		size_t gc = h.n - g * GROUP < GROUP ? h.n - g * GROUP : GROUP;

		dir[g] = st;
		dir[g].p = d.p;
		if (p2_group(&d, &h, g, gc, &st, NULL) < 0)
			goto out;
		dir[g].first = st.t;
		if (g > 0 && st.t <= dir[g - 1].first)
			goto out;
		if (st.t > maxt) {
			all = false;
			break;
		}
	}
	used = g < groups ? g : groups;	/* groups starting at or before maxt */
	if (all && dec_left(&d) != 0)
		goto out;
	if (used == 0) {
		rc = 0;
		goto out;
	}
	/* from the last group starting at or before mint */
	for (first = used - 1; first > 0 && dir[first].first > mint; first--)
		;
	last = used - 1;
	for (g = first; g <= last; g++)
		total += h.n - g * GROUP < GROUP ? h.n - g * GROUP : GROUP;
	if (*n + total > *cap) {
		*cap = *n + total + 64;
		*v = mem_realloc(*v, *cap * sizeof **v);
	}
	for (g = first; g <= last; g++) {
		size_t gc = h.n - g * GROUP < GROUP ? h.n - g * GROUP : GROUP;

		d.p = dir[g].p;
		d.err = false;
		st = dir[g];
		if (p2_group(&d, &h, g, gc, &st, *v + *n) < 0) {
			*n = before;
			goto out;
		}
		if (*n > before && (*v)[*n].t <= (*v)[*n - 1].t) {
			*n = before;
			goto out;
		}
		*n += gc;
	}
	rc = 0;
out:
	if (dir != stackdir)
		mem_free(dir);
	return rc;
}
