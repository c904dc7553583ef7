/* lib/tsdb/chunk.c - Gorilla/XOR chunk encoder and decoder.
 *
 * Owns the bit-level format described in chunk.h (the same bytes as
 * Prometheus' chunkenc XOR chunks, so chunks can be shipped as they are in
 * remote-read responses and written to disk unchanged). Bits are written
 * most significant first. An open chunk (struct chunk_app) is single-writer
 * and is guarded by its owner; sealed chunks and snapshots are immutable
 * and shared by reference count. The decoder checks every read against the
 * byte length, so corrupt bytes from disk end the iteration with an error
 * instead of reading past the buffer. Most samples appended to a DENSE
 * chunk are steady (the previous interval, a decimal moving by the previous
 * delta): they take a short path that writes their two zero bits
 * (dense_append_steady), the same bytes as the general one.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "util/mem.h"

#define HEADER_BYTES 2
#define PUT_SLACK 8	/* put_bits stores 8 bytes from the current one */
#define NEG_ZERO UINT64_C(0x8000000000000000)
#define DEC_MAX_SCALE 15

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct chunk_app) == 56, "struct chunk_app grew (a series embeds it)");
#endif

static const double p10[DEC_MAX_SCALE + 1] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

uint64_t
chunk_f64_bits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof b);
	return b;
}

double
chunk_bits_f64(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof v);
	return v;
}

/* --- writer --------------------------------------------------------------- */

/* Size classes of an open chunk's bytes, jemalloc's: 16 to 128 by 16, then
 * four a doubling (160, 192, 224, 256, 320, ...), so an allocation wastes
 * nothing to rounding; class 0 is no allocation. CHUNK_MAX_SAMPLES samples
 * of the largest encoding take about 1.2 MiB; a restored chunk is at most
 * RESTORE_MAX bytes, and even one whose header understates its samples
 * stays below the last class, 8 MiB, however many are appended to it. */
#define CAP_CLASSES 73
#define RESTORE_MAX (2u << 20)

static const uint32_t cap_tab[CAP_CLASSES] = {
	0, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768,
	896, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240,
	12288, 14336, 16384, 20480, 24576, 28672, 32768, 40960, 49152, 57344, 65536, 81920, 98304,
	114688, 131072, 163840, 196608, 229376, 262144, 327680, 393216, 458752, 524288, 655360,
	786432, 917504, 1048576, 1310720, 1572864, 1835008, 2097152, 2621440, 3145728, 3670016,
	4194304, 5242880, 6291456, 7340032, 8388608,
};

/* cls_for returns the smallest class from k on holding need bytes. */
static uint8_t
cls_for(unsigned k, uint64_t need)
{
	while (k < CAP_CLASSES - 1 && cap_tab[k] < need)
		k++;
	return (uint8_t)k;
}

uint32_t
chunk_app_cap(const struct chunk_app *app)
{
	return cap_tab[app->capcls];
}

/* get_mint decodes the zigzag varint first timestamp at b[HEADER_BYTES]
 * (the same in XOR and DENSE chunks); false when it runs past len. */
static bool
get_mint(const uint8_t *b, size_t len, int64_t *mint)
{
	uint64_t x = 0;
	unsigned shift = 0;
	size_t i;

	for (i = HEADER_BYTES; i < len && shift <= 63; i++, shift += 7) {
		x |= (uint64_t)(b[i] & 0x7f) << shift;
		if (!(b[i] & 0x80)) {
			*mint = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
			return true;
		}
	}
	return false;
}

int64_t
chunk_app_mint(const struct chunk_app *app)
{
	int64_t mint = 0;

	(void)get_mint(app->b, app->len, &mint);
	return mint;
}

/* app_tdelta returns the last timestamp delta (n > 0); one that did not fit
 * in 32 bits is decoded from the bytes again. */
static uint64_t
app_tdelta(const struct chunk_app *app)
{
	struct chunk_iter it;

	if (app->tdelta != CHUNK_TDELTA_FAR)
		return app->tdelta;
	chunk_iter_init_enc(&it, app->enc, app->b, app->len, app->n);
	while (chunk_iter_next(&it))
		;
	return it.tdelta;
}

static void
set_tdelta(struct chunk_app *app, uint64_t tdelta)
{
	app->tdelta = tdelta < CHUNK_TDELTA_FAR ? (uint32_t)tdelta : CHUNK_TDELTA_FAR;
}

void
chunk_app_init_enc(struct chunk_app *app, uint8_t enc)
{
	memset(app, 0, sizeof *app);
	app->leading = 0xff;
	app->enc = enc == CHUNK_ENC_DENSE ? CHUNK_ENC_DENSE : CHUNK_ENC_XOR;
}

void
chunk_app_init(struct chunk_app *app)
{
	chunk_app_init_enc(app, CHUNK_ENC_XOR);
}

void
chunk_app_reset(struct chunk_app *app)
{
	uint8_t enc = app->enc;

	mem_free(app->b);
	chunk_app_init_enc(app, enc);
}

/* app_grow is app_reserve's slow path: about 1.5x, to a whole size class. */
static __attribute__((noinline)) void
app_grow(struct chunk_app *app, uint32_t need)
{
	uint32_t cap = cap_tab[app->capcls];

	cap = cap ? cap + cap / 2 : 32;
	app->capcls = cls_for(app->capcls, cap > need ? cap : need);
	if (cap_tab[app->capcls] < need)
		abort();	/* past 8 MiB: cannot happen (CAP_CLASSES) */
	app->b = mem_realloc(app->b, cap_tab[app->capcls]);
}

/* app_reserve makes room for extra more bytes (and PUT_SLACK past them). */
static inline void
app_reserve(struct chunk_app *app, uint32_t extra)
{
	uint32_t need = app->len + extra + PUT_SLACK;

	if (need > cap_tab[app->capcls])
		app_grow(app, need);
}

/* reserve_bits makes room for nbits more bits. */
static inline void
reserve_bits(struct chunk_app *app, unsigned nbits)
{
	app_reserve(app, (nbits + 7) / 8 + 1);
}

static void
put_byte(struct chunk_app *app, uint8_t byte)
{
	if (app->bitsfree == 0) {
		app->b[app->len++] = byte;
		return;
	}
	app->b[app->len - 1] |= (uint8_t)(byte >> (8 - app->bitsfree));
	app->b[app->len++] = (uint8_t)(byte << app->bitsfree);
}

static void
put_bit(struct chunk_app *app, unsigned bit)
{
	if (app->bitsfree == 0) {
		app->b[app->len++] = 0;
		app->bitsfree = 8;
	}
	if (bit)
		app->b[app->len - 1] |= (uint8_t)(1u << (app->bitsfree - 1));
	app->bitsfree--;
}

/* put_bits56 writes the low nbits (1 to 56) of v, most significant first,
 * with one big-endian 8-byte store from the last partial byte (or the next
 * byte): the partial byte's written bits, v, zeros. The zeros land past the
 * end, inside the PUT_SLACK bytes app_reserve keeps. */
static inline void
put_bits56(struct chunk_app *app, uint64_t v, unsigned nbits)
{
	unsigned used = (8u - app->bitsfree) & 7u, total;
	uint32_t at = app->bitsfree != 0 ? app->len - 1 : app->len;
	uint8_t *p = app->b + at;
	uint64_t w;

	v &= (UINT64_C(1) << nbits) - 1;
	w = (uint64_t)(used != 0 ? p[0] & (0xffu << (8 - used)) : 0) << 56;
	w |= v << (64 - used - nbits);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	memcpy(p, &w, sizeof w);
	total = used + nbits;
	app->len = at + (total + 7) / 8;
	app->bitsfree = (uint8_t)((8 - (total & 7)) & 7);
}

/* put_bits writes the low nbits (0 to 64) of v, most significant first.
 * The caller reserved (nbits + 7) / 8 + 1 bytes. */
static inline void
put_bits(struct chunk_app *app, uint64_t v, unsigned nbits)
{
	if (nbits == 0)
		return;
	if (nbits > 56) {
		put_bits56(app, v >> 32, nbits - 32);
		put_bits56(app, v, 32);
		return;
	}
	put_bits56(app, v, nbits);
}

static void
put_uvarint(struct chunk_app *app, uint64_t x)
{
	while (x >= 0x80) {
		put_byte(app, (uint8_t)(x | 0x80));
		x >>= 7;
	}
	put_byte(app, (uint8_t)x);
}

static unsigned
clz64(uint64_t x)
{
	return x ? (unsigned)__builtin_clzll(x) : 64;
}

static unsigned
ctz64(uint64_t x)
{
	return x ? (unsigned)__builtin_ctzll(x) : 64;
}

/* put_xor writes vbits against the previous value (Gorilla value coding). */
static void
put_xor(struct chunk_app *app, uint64_t vbits)
{
	uint64_t delta = vbits ^ app->v;
	unsigned lead, trail, sig;

	if (delta == 0) {
		put_bit(app, 0);
		return;
	}
	put_bit(app, 1);
	lead = clz64(delta);
	trail = ctz64(delta);
	if (lead >= 32)
		lead = 31;	/* 5 bits of room */
	if (app->leading != 0xff && lead >= app->leading && trail >= app->trailing) {
		put_bit(app, 0);
		put_bits(app, delta >> app->trailing, 64 - app->leading - app->trailing);
		return;
	}
	app->leading = (uint8_t)lead;
	app->trailing = (uint8_t)trail;
	put_bit(app, 1);
	put_bits(app, lead, 5);
	sig = 64 - lead - trail;
	put_bits(app, sig & 63, 6);	/* 64 is written as 0 */
	put_bits(app, delta >> trail, sig);
}

/* fits_bits tells whether dod is in Prometheus' range for an nbits bucket:
 * -(2^(n-1) - 1) .. 2^(n-1). */
static int
fits_bits(int64_t dod, unsigned nbits)
{
	int64_t hi = (int64_t)1 << (nbits - 1);

	return dod >= -(hi - 1) && dod <= hi;
}

/* dec_of tells whether bits is m / 10^e exactly for an integer m with
 * |m| <= 2^53 (so the decoder's (double)m / 10^e gives the same bits): m
 * is v * 10^e rounded to nearest, ties to even (nearbyint() in the
 * default rounding mode, in integers: below 2^53 the cast and the
 * fraction are exact). */
static inline bool
dec_of(uint64_t bits, unsigned e, int64_t *m)
{
	double v = chunk_bits_f64(bits), x, f;
	int64_t i;

	if (bits == NEG_ZERO)
		return false;
	if (e == 0) {
		if (!(fabs(v) < 9007199254740992.0) || (double)(int64_t)v != v)
			return false;
		*m = (int64_t)v;
		return true;
	}
	x = v * p10[e];
	if (!(fabs(x) < 9007199254740992.0))
		return false;
	i = (int64_t)x;
	f = x - (double)i;
	if (f > 0.5 || (f == 0.5 && (i & 1)))
		i++;
	else if (f < -0.5 || (f == -0.5 && (i & 1)))
		i--;
	if (chunk_f64_bits((double)i / p10[e]) != bits)
		return false;
	*m = i;
	return true;
}

/* dec_scale returns the smallest scale >= from at which bits is a decimal,
 * or -1. */
static int
dec_scale(uint64_t bits, unsigned from, int64_t *m)
{
	double v = chunk_bits_f64(bits);
	unsigned e;

	if (!isfinite(v))
		return -1;
	for (e = from; e <= DEC_MAX_SCALE; e++)
		if (dec_of(bits, e, m))
			return (int)e;
	return -1;
}

static uint64_t
zigzag(int64_t x)
{
	return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

/* put_dod writes a timestamp's delta of delta in the buckets 0, '10' + w1
 * bits, '110' + w2, '1110' + w3, '1111' + 64: XOR chunks use Prometheus'
 * 14/17/20, dense chunks 7/14/20 (a few ms of scrape jitter in 9 bits). */
static inline void
put_dod(struct chunk_app *app, int64_t dod, unsigned w1, unsigned w2, unsigned w3)
{
	if (dod == 0) {
		put_bit(app, 0);
	} else if (fits_bits(dod, w1)) {
		put_bits(app, 0x2, 2);
		put_bits(app, (uint64_t)dod, w1);
	} else if (fits_bits(dod, w2)) {
		put_bits(app, 0x6, 3);
		put_bits(app, (uint64_t)dod, w2);
	} else if (fits_bits(dod, w3)) {
		put_bits(app, 0xe, 4);
		put_bits(app, (uint64_t)dod, w3);
	} else {
		put_bits(app, 0xf, 4);
		put_bits(app, (uint64_t)dod, 64);
	}
}

static unsigned
uvarint_len(uint64_t x)
{
	unsigned n = 1;

	while (x >= 0x80) {
		x >>= 7;
		n++;
	}
	return n;
}

/* xor_cost returns the bits put_xor would write for vbits. */
static unsigned
xor_cost(const struct chunk_app *app, uint64_t vbits)
{
	uint64_t d = vbits ^ app->v;
	unsigned lead, trail;

	if (d == 0)
		return 1;
	lead = clz64(d);
	trail = ctz64(d);
	if (lead >= 32)
		lead = 31;
	if (app->leading != 0xff && lead >= app->leading && trail >= app->trailing)
		return 2 + 64u - app->leading - app->trailing;
	return 2 + 5 + 6 + 64 - lead - trail;
}

/* Decimal delta-of-delta buckets of CHUNK_ENC_DENSE: prefix p (p ones and
 * a zero) then dod_bits[p] bits; p == 0 is a zero dod, p == 1 an XOR
 * escape, seven ones a new scale. */
static const unsigned dod_bits[7] = { 0, 0, 6, 13, 20, 32, 64 };

/* dod_cost returns the bits of a decimal delta of delta and its prefix. */
static unsigned
dod_cost(int64_t dod, unsigned *prefix)
{
	unsigned p;

	if (dod == 0) {
		*prefix = 0;
		return 1;
	}
	for (p = 2; p < 6 && !fits_bits(dod, dod_bits[p]); p++)
		;
	*prefix = p;
	return p + 1 + dod_bits[p];
}

/* dense_put_value writes a value after the first (CHUNK_ENC_DENSE): the
 * cheaper of the decimal delta of delta and an XOR escape, a new scale when
 * the value has more decimals and that beats XOR. After any value that is a
 * decimal at the scale, m and its delta follow it (the decoder does the
 * same), so an escape does not leave them stale. Each way reserves the bits
 * it writes (an XOR-mode value its worst case, 77). */
static void
dense_put_value(struct chunk_app *app, uint64_t vbits)
{
	int64_t m = 0, dm = 0, dod = 0;
	unsigned xc, dc = 0, prefix = 0;
	bool isdec;
	int e;

	if (!app->dec) {
		reserve_bits(app, 2 + 5 + 6 + 64);
		put_xor(app, vbits);
		return;
	}
	isdec = dec_of(vbits, app->e, &m);
	if (isdec) {
		dm = (int64_t)((uint64_t)m - (uint64_t)app->m);
		dod = (int64_t)((uint64_t)dm - (uint64_t)app->dm);
		if (dod == 0) {	/* 1 bit: no XOR escape is shorter */
			reserve_bits(app, 1);
			put_bit(app, 0);
			app->m = m;
			return;
		}
		dc = dod_cost(dod, &prefix);
	}
	xc = 2 + xor_cost(app, vbits);
	if (isdec && dc <= xc) {
		reserve_bits(app, dc);
		if (prefix == 0) {
			put_bit(app, 0);
		} else {
			put_bits(app, (UINT64_C(1) << (prefix + 1)) - 2, prefix + 1);
			put_bits(app, (uint64_t)dod, dod_bits[prefix]);
		}
		app->m = m;
		app->dm = dm;
		return;
	}
	if (!isdec && app->e < DEC_MAX_SCALE && (e = dec_scale(vbits, app->e + 1u, &m)) >= 0 &&
	    7 + 4 + 8 * uvarint_len(zigzag(m)) < xc) {
		reserve_bits(app, 7 + 4 + 8 * uvarint_len(zigzag(m)));
		put_bits(app, 0x7f, 7);
		put_bits(app, (uint64_t)e, 4);
		put_uvarint(app, zigzag(m));
		app->e = (uint8_t)e;
		app->m = m;
		app->dm = 0;
		return;
	}
	reserve_bits(app, xc);
	put_bits(app, 0x2, 2);
	put_xor(app, vbits);
	if (isdec) {
		app->m = m;
		app->dm = dm;
	}
}

static int
dense_append(struct chunk_app *app, int64_t t, uint64_t vbits)
{
	uint64_t tdelta = 0;

	int64_t dod = 0;

	/* the timestamp reserves its bits here (a first sample all of it: 10
	 * varint bytes, 1 + 4 bits and 10 varint bytes or 64 bits), the value
	 * in dense_put_value: reserved this tightly, an open chunk's last size
	 * class is about its bytes */
	if (app->n >= 2) {
		dod = (int64_t)((uint64_t)t - (uint64_t)app->t - app_tdelta(app));
		reserve_bits(app, dod == 0 ? 1 : fits_bits(dod, 7) ? 9 : 68);
	} else {
		app_reserve(app, app->n == 0 ? HEADER_BYTES + 22 : 10);
	}
	if (app->n == 0) {
		int64_t m;
		int e = dec_scale(vbits, 0, &m);

		app->len = HEADER_BYTES;
		app->b[0] = app->b[1] = 0;
		app->bitsfree = 0;
		put_uvarint(app, zigzag(t));
		app->dec = e >= 0;
		put_bit(app, e >= 0 ? 0 : 1);
		if (e >= 0) {
			put_bits(app, (uint64_t)e, 4);
			put_uvarint(app, zigzag(m));
			app->e = (uint8_t)e;
			app->m = m;
			app->dm = 0;
		} else {
			put_bits(app, vbits, 64);
		}
	} else if (app->n == 1) {
		tdelta = (uint64_t)t - (uint64_t)app->t;
		put_uvarint(app, tdelta);
		dense_put_value(app, vbits);
	} else {
		tdelta = (uint64_t)t - (uint64_t)app->t;
		put_dod(app, dod, 7, 14, 20);
		dense_put_value(app, vbits);
	}
	app->t = t;
	app->v = vbits;
	set_tdelta(app, tdelta);
	app->n++;
	app->b[0] = (uint8_t)(app->n >> 8);
	app->b[1] = (uint8_t)app->n;
	return CHUNK_OK;
}

/* dense_append_steady appends what most samples of a DENSE chunk are (after
 * its second): the interval of the previous one and a decimal at the scale
 * whose delta is the previous delta, two zero bits (a zero timestamp delta
 * of delta, a zero decimal one), as dense_append would write them. Returns
 * false, having changed nothing, for any other sample. */
static inline bool
dense_append_steady(struct chunk_app *app, int64_t t, uint64_t vbits)
{
	int64_t m;

	if (app->n < 2 || app->n == CHUNK_MAX_SAMPLES || !app->dec || t <= app->t ||
	    app->tdelta == CHUNK_TDELTA_FAR || (uint64_t)t - (uint64_t)app->t != app->tdelta)
		return false;
	if (!dec_of(vbits, app->e, &m))
		return false;
	if ((int64_t)((uint64_t)m - (uint64_t)app->m) != app->dm)
		return false;
	reserve_bits(app, 1);
	put_bit(app, 0);
	reserve_bits(app, 1);
	put_bit(app, 0);
	app->m = m;
	app->t = t;
	app->v = vbits;
	app->n++;
	app->b[0] = (uint8_t)(app->n >> 8);
	app->b[1] = (uint8_t)app->n;
	return true;
}

/* app_append is chunk_app_append but for the steady DENSE samples. */
static __attribute__((noinline)) int
app_append(struct chunk_app *app, int64_t t, uint64_t vbits)
{
	uint64_t tdelta = 0;

	if (app->n == CHUNK_MAX_SAMPLES)
		return CHUNK_ERR_FULL;
	if (app->n > 0 && t <= app->t)
		return CHUNK_ERR_ORDER;
	if (app->enc == CHUNK_ENC_DENSE)
		return dense_append(app, t, vbits);
	/* worst case: 4 + 64 bits of dod, 2 + 5 + 6 + 64 bits of value, or
	 * 10 varint bytes + 8 value bytes */
	app_reserve(app, app->n == 0 ? HEADER_BYTES + 20 : 24);
	if (app->n == 0) {
		uint64_t zz = ((uint64_t)t << 1) ^ (uint64_t)(t >> 63);

		app->len = HEADER_BYTES;
		app->b[0] = app->b[1] = 0;
		app->bitsfree = 0;
		put_uvarint(app, zz);
		put_bits(app, vbits, 64);
	} else if (app->n == 1) {
		tdelta = (uint64_t)t - (uint64_t)app->t;
		put_uvarint(app, tdelta);
		put_xor(app, vbits);
	} else {
		tdelta = (uint64_t)t - (uint64_t)app->t;
		put_dod(app, (int64_t)(tdelta - app_tdelta(app)), 14, 17, 20);
		put_xor(app, vbits);
	}
	app->t = t;
	app->v = vbits;
	set_tdelta(app, tdelta);
	app->n++;
	app->b[0] = (uint8_t)(app->n >> 8);
	app->b[1] = (uint8_t)app->n;
	return CHUNK_OK;
}

int
chunk_app_append(struct chunk_app *app, int64_t t, uint64_t vbits)
{
	if (app->enc == CHUNK_ENC_DENSE && dense_append_steady(app, t, vbits))
		return CHUNK_OK;
	return app_append(app, t, vbits);
}

int
chunk_app_append_f(struct chunk_app *app, int64_t t, double v)
{
	return chunk_app_append(app, t, chunk_f64_bits(v));
}

static struct chunk *
chunk_alloc(uint8_t enc, const uint8_t *b, uint32_t len, int64_t mint, int64_t maxt)
{
	struct chunk *c = mem_alloc(sizeof *c + len);

	c->mint = mint;
	c->maxt = maxt;
	c->refs = 1;
	c->len = len;
	c->enc = enc;
	memcpy(c->b, b, len);
	return c;
}

struct chunk *
chunk_app_snapshot(const struct chunk_app *app)
{
	if (app->n == 0)
		return NULL;
	return chunk_alloc(app->enc, app->b, app->len, chunk_app_mint(app), app->t);
}

struct chunk *
chunk_app_seal(struct chunk_app *app)
{
	struct chunk *c = chunk_app_snapshot(app);

	chunk_app_reset(app);
	return c;
}

int
chunk_app_resume(struct chunk_app *app, const uint8_t *b, size_t len)
{
	return chunk_app_resume_enc(app, CHUNK_ENC_XOR, b, len);
}

/* app_copy gives app a copy of len bytes in a buffer of a whole class. */
static void
app_copy(struct chunk_app *app, const uint8_t *b, size_t len)
{
	app->capcls = cls_for(0, len);
	app->b = mem_alloc(cap_tab[app->capcls]);
	app->len = (uint32_t)len;
	memcpy(app->b, b, len);
}

int
chunk_app_resume_enc(struct chunk_app *app, uint8_t enc, const uint8_t *b, size_t len)
{
	struct chunk_iter it;

	chunk_app_init_enc(app, enc);
	if (len < HEADER_BYTES || len > RESTORE_MAX ||
	    (enc != CHUNK_ENC_XOR && enc != CHUNK_ENC_DENSE))
		return CHUNK_ERR_CORRUPT;
	chunk_iter_init_enc(&it, enc, b, len, CHUNK_MAX_SAMPLES);
	while (chunk_iter_next(&it))
		;
	if (it.err || it.read == 0 || it.pos > len * 8 || (it.pos + 7) / 8 != len)
		return CHUNK_ERR_CORRUPT;
	app_copy(app, b, len);
	app->bitsfree = (uint8_t)(len * 8 - it.pos);
	app->n = it.read;
	app->t = it.t;
	app->v = it.v;
	set_tdelta(app, it.tdelta);
	/* without a window yet, start one as a fresh appender would (Prometheus
	 * reuses 0/0 here: both decode the same, this is smaller) */
	app->leading = it.window ? it.leading : 0xff;
	app->trailing = it.trailing;
	app->dec = it.dec;
	app->e = it.e;
	app->m = it.m;
	app->dm = it.dm;
	return CHUNK_OK;
}

void
chunk_app_save(const struct chunk_app *app, struct chunk_app_state *st)
{
	st->t = app->t;
	st->v = app->v;
	st->tdelta = app_tdelta(app);
	st->bitsfree = app->bitsfree;
	st->leading = app->leading;
	st->trailing = app->trailing;
	st->enc = app->enc;
	st->dec = app->dec;
	st->e = app->e;
	st->m = app->m;
	st->dm = app->dm;
}

int
chunk_app_restore(struct chunk_app *app, const uint8_t *b, size_t len, int64_t mint,
    const struct chunk_app_state *st)
{
	uint16_t n;
	int64_t first;

	chunk_app_init_enc(app, st->enc == CHUNK_ENC_DENSE ? CHUNK_ENC_DENSE : CHUNK_ENC_XOR);
	if (len < HEADER_BYTES + 2 || len > RESTORE_MAX || st->bitsfree > 7 ||
	    (st->leading != 0xff && st->leading > 31) || st->trailing > 64 || st->t < mint ||
	    (st->enc != 0 && st->enc != CHUNK_ENC_XOR && st->enc != CHUNK_ENC_DENSE) ||
	    st->e > DEC_MAX_SCALE || st->dec > 1 || (app->enc == CHUNK_ENC_XOR && len < HEADER_BYTES + 9))
		return CHUNK_ERR_CORRUPT;
	n = (uint16_t)((b[0] << 8) | b[1]);
	/* the first timestamp is read from the bytes from now on: it must be mint */
	if (n == 0 || (n == 1 && st->t != mint) || !get_mint(b, len, &first) || first != mint)
		return CHUNK_ERR_CORRUPT;
	app_copy(app, b, len);
	app->bitsfree = st->bitsfree;
	app->n = n;
	app->t = st->t;
	app->v = st->v;
	set_tdelta(app, st->tdelta);
	app->leading = st->leading;
	app->trailing = st->trailing;
	if (app->enc == CHUNK_ENC_DENSE) {
		app->dec = st->dec;
		app->e = st->e;
		app->m = st->m;
		app->dm = st->dm;
	}
	return CHUNK_OK;
}

/* --- shared chunks ------------------------------------------------------ */

struct chunk *
chunk_from_bytes(const uint8_t *b, size_t len)
{
	struct chunk_iter it;
	int64_t mint = 0;

	if (len < HEADER_BYTES || len > UINT32_MAX)
		return NULL;
	chunk_iter_init(&it, b, len, CHUNK_MAX_SAMPLES);
	while (chunk_iter_next(&it)) {
		if (it.read == 1)
			mint = it.t;
	}
	if (it.err || it.read == 0)
		return NULL;
	return chunk_alloc(CHUNK_ENC_XOR, b, (uint32_t)len, mint, it.t);
}

struct chunk *
chunk_new(const uint8_t *b, size_t len, int64_t mint, int64_t maxt)
{
	return chunk_alloc(CHUNK_ENC_XOR, b, (uint32_t)len, mint, maxt);
}

struct chunk *
chunk_new_enc(uint8_t enc, const uint8_t *b, size_t len, int64_t mint, int64_t maxt)
{
	return chunk_alloc(enc, b, (uint32_t)len, mint, maxt);
}

struct chunk *
chunk_ref(struct chunk *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
chunk_put(struct chunk *c)
{
	if (c == NULL)
		return;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		mem_free(c);
}

uint16_t
chunk_samples(const struct chunk *c)
{
	return (uint16_t)((c->b[0] << 8) | c->b[1]);
}

/* --- reader --------------------------------------------------------------- */

void
chunk_iter_init(struct chunk_iter *it, const uint8_t *b, size_t len, uint16_t limit)
{
	chunk_iter_init_enc(it, CHUNK_ENC_XOR, b, len, limit);
}

void
chunk_iter_init_enc(struct chunk_iter *it, uint8_t enc, const uint8_t *b, size_t len,
    uint16_t limit)
{
	uint16_t total = 0;

	memset(it, 0, sizeof *it);
	it->b = b;
	it->enc = enc;
	if (enc != CHUNK_ENC_XOR && enc != CHUNK_ENC_DENSE) {
		it->err = CHUNK_ERR_CORRUPT;
	} else if (len >= HEADER_BYTES) {
		total = (uint16_t)((b[0] << 8) | b[1]);
		it->nbits = len * 8;
		it->pos = HEADER_BYTES * 8;
	} else if (len > 0) {
		it->err = CHUNK_ERR_CORRUPT;
	}
	it->total = total < limit ? total : limit;
	it->t = INT64_MIN;
}

/* get_bits reads nbits (<= 64) into *out; false when the bytes end. Reads
 * a big-endian word at the current byte (plus one byte when the bits
 * straddle nine), never past the buffer. */
static bool
get_bits(struct chunk_iter *it, unsigned nbits, uint64_t *out)
{
	size_t byte, len;
	unsigned off;
	uint64_t w = 0, v;

	if (it->nbits - it->pos < nbits)
		return false;
	if (nbits == 0) {
		*out = 0;
		return true;
	}
	byte = it->pos >> 3;
	off = (unsigned)(it->pos & 7);
	len = it->nbits >> 3;
	if (len - byte >= 8) {
		const uint8_t *p = it->b + byte;

		w = (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
		    (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
		    (uint64_t)p[6] << 8 | p[7];
	} else {
		size_t i;

		for (i = 0; i < len - byte; i++)
			w |= (uint64_t)it->b[byte + i] << (56 - 8 * i);
	}
	v = w << off;
	if (off + nbits > 64)	/* the last bits are in the ninth byte */
		v |= (uint64_t)it->b[byte + 8] >> (8 - off);
	if (nbits < 64)
		v >>= 64 - nbits;
	it->pos += nbits;
	*out = v;
	return true;
}

static bool
get_uvarint(struct chunk_iter *it, uint64_t *out)
{
	uint64_t x = 0, byte;
	unsigned shift;

	for (shift = 0; shift < 70; shift += 7) {
		if (!get_bits(it, 8, &byte))
			return false;
		if (shift == 63 && byte > 1)
			return false;	/* overflows 64 bits */
		x |= (byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*out = x;
			return true;
		}
	}
	return false;
}

static bool
get_xor(struct chunk_iter *it)
{
	uint64_t bit, bits;
	unsigned mbits;

	if (!get_bits(it, 1, &bit))
		return false;
	if (!bit)
		return true;
	if (!get_bits(it, 1, &bit))
		return false;
	if (bit) {
		if (!get_bits(it, 5, &bits))
			return false;
		it->leading = (uint8_t)bits;
		if (!get_bits(it, 6, &bits))
			return false;
		mbits = bits ? (unsigned)bits : 64;
		if (it->leading + mbits > 64)
			return false;
		it->trailing = (uint8_t)(64 - it->leading - mbits);
		it->window = 1;
	} else {
		/* reuse; before any window this is 0/0, i.e. 64 bits, as
		 * Prometheus reads (and, after a resume, writes) it */
		mbits = 64u - it->leading - it->trailing;
	}
	if (!get_bits(it, mbits, &bits))
		return false;
	it->v ^= bits << it->trailing;
	return true;
}

static bool
corrupt(struct chunk_iter *it)
{
	it->err = CHUNK_ERR_CORRUPT;
	return false;
}

/* get_sext reads an n-bit delta in Prometheus' biased two's complement. */
static bool
get_sext(struct chunk_iter *it, unsigned n, int64_t *out)
{
	uint64_t bits;

	if (!get_bits(it, n, &bits))
		return false;
	if (n < 64 && bits > (UINT64_C(1) << (n - 1)))
		bits -= UINT64_C(1) << n;	/* negative */
	*out = (int64_t)bits;
	return true;
}

/* dense_get_value reads a value after the first (CHUNK_ENC_DENSE). */
static bool
dense_get_value(struct chunk_iter *it)
{
	unsigned ones = 0;
	uint64_t bit, x;
	int64_t dod = 0, m;

	if (!it->dec)
		return get_xor(it);
	while (ones < 7) {
		if (!get_bits(it, 1, &bit))
			return false;
		if (!bit)
			break;
		ones++;
	}
	if (ones == 1) {	/* an XOR escape; m follows a decimal value */
		if (!get_xor(it))
			return false;
		if (dec_of(it->v, it->e, &m)) {
			it->dm = (int64_t)((uint64_t)m - (uint64_t)it->m);
			it->m = m;
		}
		return true;
	}
	if (ones == 7) {	/* a new scale */
		if (!get_bits(it, 4, &x) || x > DEC_MAX_SCALE)
			return false;
		it->e = (uint8_t)x;
		if (!get_uvarint(it, &x))
			return false;
		it->m = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
		it->dm = 0;
	} else {
		if (ones > 0 && !get_sext(it, dod_bits[ones], &dod))
			return false;
		it->dm = (int64_t)((uint64_t)it->dm + (uint64_t)dod);
		it->m = (int64_t)((uint64_t)it->m + (uint64_t)it->dm);
	}
	it->v = chunk_f64_bits(it->e == 0 ? (double)it->m : (double)it->m / p10[it->e]);
	return true;
}

/* dense_next decodes the next sample of a CHUNK_ENC_DENSE chunk. */
static bool
dense_next(struct chunk_iter *it)
{
	uint64_t x;

	if (it->read == 0) {
		if (!get_uvarint(it, &x))
			return corrupt(it);
		it->t = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
		if (!get_bits(it, 1, &x))
			return corrupt(it);
		it->dec = x == 0;
		if (it->dec) {
			if (!get_bits(it, 4, &x) || x > DEC_MAX_SCALE)
				return corrupt(it);
			it->e = (uint8_t)x;
			if (!get_uvarint(it, &x))
				return corrupt(it);
			it->m = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
			it->dm = 0;
			it->v = chunk_f64_bits(it->e == 0 ? (double)it->m :
			    (double)it->m / p10[it->e]);
		} else if (!get_bits(it, 64, &it->v)) {
			return corrupt(it);
		}
		it->read++;
		return true;
	}
	if (it->read == 1) {
		if (!get_uvarint(it, &x))
			return corrupt(it);
		it->tdelta = x;
	} else {
		static const unsigned tsz[4] = { 7, 14, 20, 64 };
		unsigned ones = 0;
		int64_t dod = 0;

		while (ones < 4) {
			if (!get_bits(it, 1, &x))
				return corrupt(it);
			if (!x)
				break;
			ones++;
		}
		if (ones > 0 && !get_sext(it, tsz[ones - 1], &dod))
			return corrupt(it);
		it->tdelta += (uint64_t)dod;
	}
	x = (uint64_t)it->t + it->tdelta;
	if ((int64_t)x <= it->t)
		return corrupt(it);	/* not strictly increasing */
	it->t = (int64_t)x;
	if (!dense_get_value(it))
		return corrupt(it);
	it->read++;
	return true;
}

bool
chunk_iter_next(struct chunk_iter *it)
{
	uint64_t x;

	if (it->err || it->read >= it->total)
		return false;
	if (it->enc == CHUNK_ENC_DENSE)
		return dense_next(it);
	if (it->read == 0) {
		if (!get_uvarint(it, &x))
			return corrupt(it);
		it->t = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
		if (!get_bits(it, 64, &it->v))
			return corrupt(it);
		it->read++;
		return true;
	}
	if (it->read == 1) {
		if (!get_uvarint(it, &x))
			return corrupt(it);
		it->tdelta = x;
	} else {
		unsigned prefix = 0, i, sz = 0;
		uint64_t bit, bits;
		int64_t dod = 0;

		for (i = 0; i < 4; i++) {
			if (!get_bits(it, 1, &bit))
				return corrupt(it);
			prefix = (prefix << 1) | (unsigned)bit;
			if (!bit)
				break;
		}
		switch (prefix) {
		case 0x0: break;
		case 0x2: sz = 14; break;
		case 0x6: sz = 17; break;
		case 0xe: sz = 20; break;
		case 0xf:
			if (!get_bits(it, 64, &bits))
				return corrupt(it);
			dod = (int64_t)bits;
			break;
		default:
			return corrupt(it);
		}
		if (sz) {
			if (!get_bits(it, sz, &bits))
				return corrupt(it);
			if (bits > (UINT64_C(1) << (sz - 1)))
				bits -= UINT64_C(1) << sz;	/* negative */
			dod = (int64_t)bits;
		}
		it->tdelta += (uint64_t)dod;
	}
	x = (uint64_t)it->t + it->tdelta;
	if ((int64_t)x <= it->t)
		return corrupt(it);	/* not strictly increasing */
	it->t = (int64_t)x;
	if (!get_xor(it))
		return corrupt(it);
	it->read++;
	return true;
}

bool
chunk_iter_seek(struct chunk_iter *it, int64_t t)
{
	if (it->err)
		return false;
	while (it->read == 0 || it->t < t) {
		if (!chunk_iter_next(it))
			return false;
	}
	return true;
}

double
chunk_iter_value(const struct chunk_iter *it)
{
	return chunk_bits_f64(it->v);
}
