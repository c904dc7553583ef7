/* tests/unit/test_tsdb.c - lib/tsdb: XOR chunks, postings, the in-memory head.
 *
 * Chunks: golden bytes (Prometheus' format), random and adversarial round
 * trips checked bit for bit, ordering rules, seek, corrupt input, resume
 * (from at most 2 MiB of bytes), and the bytes per sample of a typical
 * counter and gauge (printed).
 * Head: append/select round trips, every matcher kind checked against a
 * brute-force evaluation, duplicates and out-of-order counting, commit
 * visibility, chunk cutting, latest samples, label names/values, GC,
 * labels hashes that collide (whole or in the 32 bits the label-set map
 * keeps), out-of-order samples of many series, a concurrent writer with readers, and the memory per series
 * (printed).
 * Commit observer: what it sees (applied samples only, series records with
 * a log attached, nothing for a refused commit), detaching, and concurrent
 * appenders with readers (every committed sample seen once, in order).
 */
#include "config.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "tsdb/chunk.h"
#include "tsdb/hchunks.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/time.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* --- chunks ----------------------------------------------------------------- */

/* check_roundtrip appends n samples, decodes them and compares bits; also
 * checks chunk_from_bytes and that a resumed appender writes the same bytes. */
static size_t
check_roundtrip_enc(uint8_t enc, const int64_t *ts, const uint64_t *vs, size_t n)
{
	struct chunk_app app, res;
	struct chunk_iter it;
	struct chunk *c;
	size_t i, half = n / 2;

	chunk_app_init_enc(&app, enc);
	for (i = 0; i < n; i++)
		assert_int_equal(chunk_app_append(&app, ts[i], vs[i]), CHUNK_OK);
	chunk_iter_init_enc(&it, enc, app.b, app.len, CHUNK_MAX_SAMPLES);
	for (i = 0; i < n; i++) {
		assert_true(chunk_iter_next(&it));
		assert_int_equal(it.t, ts[i]);
		if (it.v != vs[i])
			fail_msg("enc %u sample %zu: %016llx, want %016llx", enc, i,
			    (unsigned long long)it.v, (unsigned long long)vs[i]);
	}
	assert_false(chunk_iter_next(&it));
	assert_int_equal(it.err, 0);
	if (enc == CHUNK_ENC_XOR) {
		c = chunk_from_bytes(app.b, app.len);
		assert_non_null(c);
		assert_int_equal(chunk_samples(c), n);
		assert_int_equal(c->mint, ts[0]);
		assert_int_equal(c->maxt, ts[n - 1]);
		chunk_put(c);
	}
	assert_int_equal(chunk_app_mint(&app), ts[0]);
	assert_true(chunk_app_cap(&app) >= app.len);
	c = chunk_app_snapshot(&app);
	assert_int_equal(c->enc, enc);
	assert_int_equal(chunk_samples(c), n);
	assert_int_equal(c->mint, ts[0]);
	assert_int_equal(c->maxt, ts[n - 1]);
	chunk_put(c);
	if (half > 0) {	/* resume (decoding, or from the saved state) after half: same bytes */
		struct chunk_app first;
		struct chunk_app_state st;
		int k;

		chunk_app_init_enc(&first, enc);
		for (i = 0; i < half; i++)
			chunk_app_append(&first, ts[i], vs[i]);
		chunk_app_save(&first, &st);
		for (k = 0; k < 2; k++) {
			assert_int_equal(k == 0 ? chunk_app_resume_enc(&res, enc, first.b, first.len) :
			    chunk_app_restore(&res, first.b, first.len, ts[0], &st), CHUNK_OK);
			for (i = half; i < n; i++)
				assert_int_equal(chunk_app_append(&res, ts[i], vs[i]), CHUNK_OK);
			assert_int_equal(res.len, app.len);
			assert_memory_equal(res.b, app.b, app.len);
			chunk_app_reset(&res);
		}
		/* the first timestamp comes from the bytes: another one is corrupt */
		assert_int_equal(chunk_app_restore(&res, first.b, first.len, ts[0] + 1, &st),
		    CHUNK_ERR_CORRUPT);
		chunk_app_reset(&res);
		chunk_app_reset(&first);
	}
	i = app.len;
	chunk_app_reset(&app);
	return i;
}

/* check_roundtrip checks both appendable encodings; returns XOR's size. */
static size_t
check_roundtrip(const int64_t *ts, const uint64_t *vs, size_t n)
{
	check_roundtrip_enc(CHUNK_ENC_DENSE, ts, vs, n);
	return check_roundtrip_enc(CHUNK_ENC_XOR, ts, vs, n);
}

static void
test_chunk_golden(void **state)
{
	/* Prometheus' XOR bytes for (1, 0.0), (2, 0.0), (3, 0.0): header 3,
	 * varint 1 -> 0x02, 64 zero bits, uvarint delta 0x01, then the bits
	 * 0 (same value), 0 (dod 0), 0 (same value). */
	static const uint8_t want[] = { 0x00, 0x03, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00 };
	struct chunk_app app;

	(void)state;
	chunk_app_init(&app);
	assert_int_equal(chunk_app_append_f(&app, 1, 0.0), 0);
	assert_int_equal(chunk_app_append_f(&app, 2, 0.0), 0);
	assert_int_equal(chunk_app_append_f(&app, 3, 0.0), 0);
	assert_int_equal(app.len, sizeof want);
	assert_memory_equal(app.b, want, sizeof want);
	chunk_app_reset(&app);
	/* a dod of -1 at t=10,20,29: prefix 10 and 14 bits of 0x3fff */
	chunk_app_init(&app);
	chunk_app_append_f(&app, 10, 1.0);
	chunk_app_append_f(&app, 20, 1.0);
	chunk_app_append_f(&app, 29, 1.0);
	/* after header(2) + varint 20 (1) + 8 value + uvarint 10 (1): bit 0
	 * (value), then 10 + 11111111111111 + 0 (value) */
	assert_int_equal(app.b[12], 0x5f);	/* 0 10 11111 */
	assert_int_equal(app.b[13], 0xff);	/* 11111111 */
	assert_int_equal(app.b[14], 0x80);	/* 1 0 ...... */
	chunk_app_reset(&app);
	printf("chunk golden bytes: ok\n");
}

static void
test_chunk_random(void **state)
{
	enum { N = 1000, SERIES = 300 };
	static int64_t ts[N];
	static uint64_t vs[N];
	size_t s, i, n, samples = 0;

	(void)state;
	for (s = 0; s < SERIES; s++) {
		int64_t t = (int64_t)(rnd() % 2000000000000ULL) - 1000000000000LL;
		int64_t step = (int64_t)(rnd() % 60000) + 1;
		unsigned kind = (unsigned)(s % 5);
		double acc = 0;

		n = 1 + rnd() % N;
		for (i = 0; i < n; i++) {
			switch (kind) {
			case 0: t += step; break;				/* regular */
			case 1: t += step + (int64_t)(rnd() % 200) - 100 + 101; break;	/* jitter */
			case 2: t += 1 + (int64_t)(rnd() % 10000000); break;	/* wild */
			case 3: t += 1 + (int64_t)(rnd() % ((rnd() % 3 == 0) ? 1000000000000ULL : 3)); break;
			default: t += 1; break;
			}
			switch (kind) {
			case 0: acc += (double)(rnd() % 100); vs[i] = chunk_f64_bits(acc); break;
			case 1: vs[i] = chunk_f64_bits((double)(rnd() % 1000) / 7.0); break;
			case 2: vs[i] = rnd(); break;				/* any bits, NaNs too */
			case 3: vs[i] = rnd() % 4 ? vs[i ? i - 1 : 0] : rnd(); break;
			default: vs[i] = 0x7ff0000000000000ULL | (rnd() & 0xfffffffffffffULL) | 1; break;
			}
			ts[i] = t;
		}
		check_roundtrip(ts, vs, n);
		samples += n;
	}
	printf("chunk random round trips: %d series, %zu samples bit-exact, resume ok\n",
	    SERIES, samples);
}

static void
test_chunk_adversarial(void **state)
{
	static const uint64_t specials[] = {
		CHUNK_STALE_NAN_BITS, 0x7ff8000000000001ULL, 0xfff8000000000000ULL,
		0x7ff0000000000000ULL /* +Inf */, 0xfff0000000000000ULL /* -Inf */,
		0x8000000000000000ULL /* -0.0 */, 0, 1, 0x7fefffffffffffffULL,
		0xffffffffffffffffULL, 0x7ff4000000000000ULL, CHUNK_STALE_NAN_BITS,
	};
	static const int64_t dods[] = {
		0, 1, -1, 8191, 8192, 8193, -8191, -8192, -8193, 65535, 65536, 65537,
		-65535, -65536, -65537, 524287, 524288, 524289, -524287, -524288,
		-524289, 1LL << 40, -(1LL << 40), 3,
	};
	int64_t ts[64];
	uint64_t vs[64];
	size_t i, n = sizeof specials / sizeof specials[0], cases = 0;
	int64_t delta;

	(void)state;
	/* special values on negative timestamps */
	for (i = 0; i < n; i++) {
		ts[i] = -5000000 + (int64_t)i * 15000;
		vs[i] = specials[i];
	}
	check_roundtrip(ts, vs, n);
	cases++;
	/* each pair of specials, both orders */
	for (i = 0; i < n * n; i++) {
		ts[0] = (int64_t)i;
		ts[1] = (int64_t)i + 1;
		ts[2] = (int64_t)i + 2;
		vs[0] = specials[i / n];
		vs[1] = specials[i % n];
		vs[2] = specials[i / n];
		check_roundtrip(ts, vs, 3);
		cases++;
	}
	/* dod bucket edges around a base delta large enough to stay positive */
	for (i = 0; i < sizeof dods / sizeof dods[0]; i++) {
		delta = (1LL << 41);
		ts[0] = -1000;
		ts[1] = ts[0] + delta;
		ts[2] = ts[1] + delta + dods[i];
		ts[3] = ts[2] + delta + dods[i] - dods[i];
		ts[4] = ts[3] + 1;
		vs[0] = vs[1] = vs[2] = vs[3] = vs[4] = chunk_f64_bits(1.5);
		check_roundtrip(ts, vs, 5);
		cases++;
	}
	/* timestamp deltas around 2^32 ms (an open chunk keeps 32 bits of the
	 * last delta and decodes a longer one again) */
	ts[0] = 1700000000000;
	for (i = 1; i < 12; i++) {
		static const int64_t far[] = { 15000, 4294967294, 4294967295, 4294967296, 15000,
		    15001, 4294967295, 4294967295, 1LL << 33, 15000, 15000 };

		ts[i] = ts[i - 1] + far[i - 1];
		vs[i - 1] = chunk_f64_bits((double)i);
	}
	vs[11] = specials[0];
	check_roundtrip(ts, vs, 12);
	cases++;
	/* the whole int64 range: from near INT64_MIN to near INT64_MAX */
	ts[0] = INT64_MIN + 1;
	ts[1] = -1;
	ts[2] = 0;
	ts[3] = INT64_MAX - 1;
	ts[4] = INT64_MAX;
	for (i = 0; i < 5; i++)
		vs[i] = specials[i];
	check_roundtrip(ts, vs, 5);
	ts[0] = INT64_MIN;
	ts[1] = INT64_MAX;
	check_roundtrip(ts, vs, 2);
	cases += 2;
	printf("chunk adversarial round trips: %zu cases (NaN payloads, stale, +-Inf, -0, "
	    "dod bucket edges, int64 extremes)\n", cases);
}

static void
test_chunk_order_and_full(void **state)
{
	struct chunk_app app;
	uint32_t i;

	(void)state;
	chunk_app_init(&app);
	assert_int_equal(chunk_app_append_f(&app, 100, 1), CHUNK_OK);
	assert_int_equal(chunk_app_append_f(&app, 100, 1), CHUNK_ERR_ORDER);
	assert_int_equal(chunk_app_append_f(&app, 99, 1), CHUNK_ERR_ORDER);
	assert_int_equal(chunk_app_append_f(&app, 101, 1), CHUNK_OK);
	assert_int_equal(chunk_app_append_f(&app, 101, 2), CHUNK_ERR_ORDER);
	for (i = 2; i < CHUNK_MAX_SAMPLES; i++)
		assert_int_equal(chunk_app_append_f(&app, 100 + i, i), CHUNK_OK);
	assert_int_equal(app.n, CHUNK_MAX_SAMPLES);
	assert_int_equal(chunk_app_append_f(&app, 1000000, 1), CHUNK_ERR_FULL);
	chunk_app_reset(&app);
	printf("chunk ordering: equal and older timestamps rejected, full at %d\n",
	    CHUNK_MAX_SAMPLES);
}

static void
test_chunk_seek_and_corrupt(void **state)
{
	struct chunk_app app;
	struct chunk_iter it;
	struct chunk *c;
	size_t cut, trials = 0, errs = 0, k;
	uint8_t buf[4096];
	int i;

	(void)state;
	chunk_app_init(&app);
	for (i = 0; i < 100; i++)
		chunk_app_append_f(&app, i * 10, i);
	chunk_iter_init(&it, app.b, app.len, CHUNK_MAX_SAMPLES);
	assert_true(chunk_iter_seek(&it, 55));
	assert_int_equal(it.t, 60);
	assert_true(chunk_iter_seek(&it, 0));	/* never backwards */
	assert_int_equal(it.t, 60);
	assert_true(chunk_iter_seek(&it, 990));
	assert_true(chunk_iter_value(&it) == 99.0);
	assert_false(chunk_iter_seek(&it, 991));
	/* a limit hides the newest samples */
	chunk_iter_init(&it, app.b, app.len, 10);
	assert_false(chunk_iter_seek(&it, 100));
	assert_int_equal(it.read, 10);
	/* truncation is detected, never read past */
	for (cut = 0; cut < app.len; cut++) {
		c = chunk_from_bytes(app.b, cut);
		assert_null(c);
		chunk_iter_init(&it, app.b, cut, CHUNK_MAX_SAMPLES);
		while (chunk_iter_next(&it))
			;
		assert_true(cut < 2 ? 1 : it.err != 0);
	}
	/* random garbage: must not crash (ASan checks the reads) */
	for (trials = 0; trials < 2000; trials++) {
		size_t len = 2 + rnd() % 200;

		for (k = 0; k < len; k++)
			buf[k] = (uint8_t)rnd();
		c = chunk_from_bytes(buf, len);
		if (c == NULL)
			errs++;
		chunk_put(c);
	}
	chunk_app_reset(&app);
	printf("chunk seek ok; truncations detected; %zu garbage inputs, %zu rejected\n",
	    trials, errs);
}

/* test_chunk_restore_bounds: an open chunk is restored or resumed from at
 * most 2 MiB (a chunk of CHUNK_MAX_SAMPLES samples takes about 1.2). */
static void
test_chunk_restore_bounds(void **state)
{
	size_t len = (2u << 20) + 1;
	uint8_t *b = calloc(1, len);
	struct chunk_app_state st;
	struct chunk_app app;

	(void)state;
	assert_non_null(b);
	b[1] = 2;		/* two samples, the first at t = 0 */
	memset(&st, 0, sizeof st);
	st.t = 15000;
	st.enc = CHUNK_ENC_DENSE;
	assert_int_equal(chunk_app_restore(&app, b, len, 0, &st), CHUNK_ERR_CORRUPT);
	chunk_app_reset(&app);
	assert_int_equal(chunk_app_resume_enc(&app, CHUNK_ENC_DENSE, b, len), CHUNK_ERR_CORRUPT);
	chunk_app_reset(&app);
	assert_int_equal(chunk_app_restore(&app, b, 64, 0, &st), CHUNK_OK);
	assert_int_equal(chunk_app_mint(&app), 0);
	assert_true(chunk_app_cap(&app) >= 64);
	chunk_app_reset(&app);
	free(b);
}

static void
test_chunk_bytes_per_sample(void **state)
{
	enum { CHUNKS = 200, PER = 120 };
	static const char *kinds[] = { "counter", "gauge" };
	double bps[2][2];
	size_t c, i, k, jit;

	(void)state;
	for (jit = 0; jit < 2; jit++) {
		for (k = 0; k < 2; k++) {
			double v = 1000;
			size_t bytes = 0;

			for (c = 0; c < CHUNKS; c++) {
				struct chunk_app app;
				int64_t t = 1700000000000LL + (int64_t)c * PER * 15000;

				chunk_app_init(&app);
				for (i = 0; i < PER; i++) {
					/* 15s scrapes, with or without a few ms of jitter */
					int64_t tj = t + (int64_t)i * 15000 +
					    (jit ? (int64_t)(rnd() % 5) : 0);

					if (k == 0)	/* requests: ~2/s */
						v += (double)(20 + rnd() % 20);
					else		/* resident memory in pages */
						v = 1.5e9 + (double)(rnd() % 256) * 4096;
					assert_int_equal(chunk_app_append_f(&app, tj, v), 0);
				}
				bytes += app.len;
				chunk_app_reset(&app);
			}
			bps[jit][k] = (double)bytes / (CHUNKS * PER);
		}
	}
	for (k = 0; k < 2; k++)
		printf("chunk bytes/sample, %s (120 per chunk, 15s scrapes): %.2f exact "
		    "timestamps, %.2f with 0-4 ms jitter\n", kinds[k], bps[0][k], bps[1][k]);
	assert_true(bps[0][0] < 2.5);	/* dod 0 costs 1 bit: the value dominates */
	assert_true(bps[1][0] < bps[0][0] + 2.5);	/* jitter costs 16 bits */
}

/* CHUNK_ENC_DENSE's decimal values: scale changes, delta-of-delta bucket
 * edges, the 2^53 limit, non-decimals between decimals; and its size beside
 * XOR on scrape-like series. */
static void
test_chunk_dense(void **state)
{
	static const int64_t dods[] = {
		0, 1, -1, 31, 32, 33, -31, -32, 4095, 4096, 4097, -4095, -4096, 524287,
		524288, 524289, -524287, -524288, 2147483647LL, 2147483648LL, 2147483649LL,
		-2147483647LL, -2147483648LL, 1LL << 40, -(1LL << 40),
	};
	static const double scaled[] = {
		12, 12.5, 12.25, 0.001, -7.125, 1e-15, 123456789.123456, 0.1, 0.30000000000000004,
		9007199254740991.0, 9007199254740992.0, -9007199254740991.0, 1e300, 5e-324, 0,
	};
	int64_t ts[256];
	uint64_t vs[256];
	size_t i, j, n, cases = 0;
	double bps[3][2];
	static const char *kinds[] = { "counter", "integer gauge", "float gauge" };

	(void)state;
	/* delta-of-delta bucket edges of the values' integers */
	for (i = 0; i < sizeof dods / sizeof dods[0]; i++) {
		int64_t m = 1000, dm = 5;

		for (n = 0; n < 6; n++) {
			ts[n] = 1000 + (int64_t)n * 15000;
			vs[n] = chunk_f64_bits((double)m);
			if (n == 2)
				dm += dods[i];
			m += dm;
			if (m > (1LL << 52) || m < -(1LL << 52))
				m = 7;
		}
		check_roundtrip(ts, vs, n);
		cases++;
	}
	/* values changing scale, long fractions, the 2^53 edge, subnormals */
	for (i = 0; i < sizeof scaled / sizeof scaled[0]; i++) {
		for (j = 0; j < sizeof scaled / sizeof scaled[0]; j++) {
			ts[0] = -30000;
			ts[1] = 0;
			ts[2] = 15000;
			ts[3] = 30001;
			vs[0] = chunk_f64_bits(scaled[i]);
			vs[1] = chunk_f64_bits(scaled[j]);
			vs[2] = chunk_f64_bits(scaled[i] + scaled[j]);
			vs[3] = j % 3 ? CHUNK_STALE_NAN_BITS : chunk_f64_bits(-0.0);
			check_roundtrip(ts, vs, 4);
			cases++;
		}
	}
	/* a counter interrupted by stale markers and NaNs, then a larger scale */
	for (n = 0; n < 200; n++) {
		ts[n] = 1700000000000LL + (int64_t)n * 1000 + (int64_t)(rnd() % 7);
		vs[n] = n % 17 == 5 ? CHUNK_STALE_NAN_BITS : n % 23 == 4 ?
		    UINT64_C(0x7ff8000000000001) : chunk_f64_bits(n < 150 ? (double)(n * 37) :
		    (double)(n * 37) + 0.25);
	}
	check_roundtrip(ts, vs, n);
	cases++;
	/* sizes: 120 samples a chunk at 15s, 0-4 ms of jitter */
	for (i = 0; i < 3; i++) {
		size_t xb = 0, db = 0, c;
		double v = 1000;

		for (c = 0; c < 200; c++) {
			for (n = 0; n < 120; n++) {
				ts[n] = 1700000000000LL + ((int64_t)c * 120 + (int64_t)n) * 15000 +
				    (int64_t)(rnd() % 5);
				if (i == 0)
					v += (double)(20 + rnd() % 20);
				else if (i == 1)
					v = 1.5e9 + (double)(rnd() % 256) * 4096;
				else
					v = 40.0 + (double)(rnd() % 1000) / 100.0;	/* 2 decimals */
				vs[n] = chunk_f64_bits(v);
			}
			xb += check_roundtrip_enc(CHUNK_ENC_XOR, ts, vs, n);
			db += check_roundtrip_enc(CHUNK_ENC_DENSE, ts, vs, n);
		}
		bps[i][0] = (double)xb / (200 * 120);
		bps[i][1] = (double)db / (200 * 120);
		printf("chunk bytes/sample, %s (15s, 0-4 ms jitter): XOR %.2f, dense %.2f\n",
		    kinds[i], bps[i][0], bps[i][1]);
	}
	assert_true(bps[0][1] < bps[0][0] * 0.7);	/* jitter 9 bits, increments 9 */
	assert_true(bps[1][1] < bps[1][0]);		/* XOR escapes at 2 bits */
	assert_true(bps[2][1] < bps[2][0] * 0.6);	/* two decimals */
	printf("chunk dense round trips: %zu cases (value dod bucket edges, scales, 2^53, "
	    "stale markers between decimals)\n", cases);
}

/* --- head helpers ------------------------------------------------------------ */

/* mk builds a label set from name, value pairs ending in NULL. */
static struct labels *
mk(const char *name, ...)
{
	struct label v[32];
	size_t n = 0;
	va_list ap;
	const char *s;

	va_start(ap, name);
	for (s = name; s != NULL && n < 32; s = va_arg(ap, const char *)) {
		v[n].name = s;
		v[n].value = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	return labels_new(v, n);
}

static struct matcher *
mm(enum matcher_op op, const char *name, const char *value)
{
	char err[256];
	struct matcher *m = matcher_new(op, name, value, err, sizeof err);

	if (m == NULL)
		fail_msg("matcher: %s", err);
	return m;
}

static struct tsdb_head *
new_head(void)
{
	char err[128];
	struct tsdb_head *h = tsdb_head_new(NULL, err, sizeof err);

	assert_non_null(h);
	return h;
}

/* count_samples selects ms over [mint, maxt] and returns series and samples. */
static size_t
count_select(struct tsdb_head *h, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, size_t *samples)
{
	struct tsdb_series_set *ss = tsdb_head_select(h, ms, n, mint, maxt);
	size_t series = 0;
	int64_t t;
	double v;

	*samples = 0;
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);

		series++;
		while (tsdb_iter_next(it, &t, &v))
			(*samples)++;
	}
	tsdb_series_set_free(ss);
	return series;
}

/* --- head -------------------------------------------------------------------- */

static void
test_head_append_select(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *a = mk("__name__", "up", "job", "b", NULL);
	struct labels *b = mk("__name__", "up", "job", "a", NULL);
	struct labels *c = mk("__name__", "down", "job", "a", NULL);
	struct matcher *m = mm(MATCH_EQUAL, "__name__", "up");
	struct tsdb_series_set *ss;
	struct tsdb_iter *it;
	uint64_t ra = 0, rb = 0, rc = 0;
	int64_t t;
	double v;
	int i, n;

	(void)state;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(tsdb_head_append(h, &ra, a, i * 1000, i), 0);
		assert_int_equal(tsdb_head_append(h, &rb, b, i * 1000, -i), 0);
		assert_int_equal(tsdb_head_append(h, &rc, c, i * 1000, 0.5), 0);
	}
	assert_true(ra != rb && rb != rc && ra != 0);
	ss = tsdb_head_select(h, &m, 1, 100000, 200000);
	assert_int_equal(tsdb_series_set_count(ss), 2);
	/* labels order: job="a" before job="b" */
	assert_true(tsdb_series_set_next(ss));
	assert_string_equal(labels_get(tsdb_series_set_labels(ss), "job"), "a");
	assert_int_equal(tsdb_series_set_ref(ss), rb);
	it = tsdb_series_set_iter(ss);
	for (n = 0; tsdb_iter_next(it, &t, &v); n++) {
		assert_int_equal(t, 100000 + n * 1000);
		assert_true(v == -(double)(100 + n));
	}
	assert_int_equal(n, 101);
	assert_true(tsdb_series_set_next(ss));
	assert_string_equal(labels_get(tsdb_series_set_labels(ss), "job"), "b");
	it = tsdb_series_set_iter(ss);
	assert_true(tsdb_iter_seek(it, 150500, &t, &v));
	assert_int_equal(t, 151000);
	assert_true(v == 151.0);
	assert_true(tsdb_iter_seek(it, 100, &t, &v));	/* stays */
	assert_int_equal(t, 151000);
	assert_true(tsdb_iter_next(it, &t, &v));
	assert_int_equal(t, 152000);
	assert_false(tsdb_iter_seek(it, 200001, &t, &v));
	assert_false(tsdb_series_set_next(ss));
	tsdb_series_set_free(ss);
	/* a range before everything selects nothing */
	{
		size_t samples;

		assert_int_equal(count_select(h, &m, 1, -100, -1, &samples), 0);
	}
	matcher_free(m);
	labels_free(a);
	labels_free(b);
	labels_free(c);
	tsdb_head_free(h);
	printf("head append/select: 3 series x 1000 samples, range, order, seek ok\n");
}

static void
test_head_matchers(void **state)
{
	static const char *names[] = { "__name__", "job", "env", "path", "code" };
	static const char *vals[] = { "a", "b", "foo", "bar", "foobar", "", "x1", "200" };
	static const enum matcher_op ops[] = { MATCH_EQUAL, MATCH_NOT_EQUAL, MATCH_REGEX, MATCH_NOT_REGEX };
	static const char *regs[] = { ".*", ".+", "foo.*", "a|b", "", "b", "x[0-9]", "(?:foo|bar)" };
	enum { NSERIES = 400 };
	struct tsdb_head *h = new_head();
	struct labels *all[NSERIES];
	size_t i, j, k, checks = 0, nonempty = 0;

	(void)state;
	for (i = 0; i < NSERIES; i++) {
		struct label v[6];
		size_t n = 0;

		for (j = 0; j < 5; j++) {
			const char *val = vals[rnd() % 8];

			if (*val == '\0' && j != 0)
				continue;	/* missing label */
			v[n].name = names[j];
			v[n].value = *val ? val : "m";
			n++;
		}
		v[n].name = "id";
		{
			char buf[16];

			snprintf(buf, sizeof buf, "%zu", i);
			v[n].value = buf;
			all[i] = labels_new(v, n + 1);
		}
		assert_int_equal(tsdb_head_append(h, NULL, all[i], 1000, (double)i), 0);
	}
	for (k = 0; k < 3000; k++) {
		struct matcher *ms[3];
		size_t nm = 1 + rnd() % 3, want = 0, got, samples;
		struct tsdb_latest *lat;
		size_t nlat;

		for (j = 0; j < nm; j++) {
			enum matcher_op op = ops[rnd() % 4];
			const char *name = rnd() % 6 == 0 ? "nosuch" : names[rnd() % 5];
			const char *value = (op == MATCH_REGEX || op == MATCH_NOT_REGEX) ?
			    regs[rnd() % 8] : (rnd() % 5 == 0 ? "" : vals[rnd() % 8]);

			ms[j] = mm(op, name, value);
		}
		for (i = 0; i < NSERIES; i++) {
			bool ok = true;

			for (j = 0; j < nm && ok; j++)
				ok = matcher_matches_labels(ms[j], all[i]);
			want += ok;
		}
		got = count_select(h, ms, nm, 0, 2000, &samples);
		assert_int_equal(got, want);
		assert_int_equal(samples, want);
		tsdb_head_latest(h, ms, nm, 0, &lat, &nlat);
		assert_int_equal(nlat, want);
		for (i = 1; i < nlat; i++)
			assert_true(labels_compare(lat[i - 1].ls, lat[i].ls) < 0);
		tsdb_latest_free(lat, nlat);
		for (j = 0; j < nm; j++)
			matcher_free(ms[j]);
		checks++;
		nonempty += want > 0;
	}
	for (i = 0; i < NSERIES; i++)
		labels_free(all[i]);
	tsdb_head_free(h);
	printf("head matchers: %zu random matcher sets (=, !=, =~, !~, empty-matching, "
	    "missing labels) equal to brute force, %zu non-empty\n", checks, nonempty);
}

static void
test_head_duplicates_ooo(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *a = mk("__name__", "x", NULL);
	struct tsdb_head_stats st;
	uint64_t ref = 0;
	size_t samples;
	struct matcher *m = mm(MATCH_EQUAL, "__name__", "x");

	(void)state;
	assert_int_equal(tsdb_head_append(h, &ref, a, 1000, 1.0), 0);
	assert_int_equal(tsdb_head_append(h, &ref, a, 1000, 1.0), 0);	/* duplicate */
	assert_int_equal(tsdb_head_append(h, &ref, a, 1000, 2.0), TSDB_ERR_DUPLICATE);
	assert_int_equal(tsdb_head_append(h, &ref, a, 999, 1.0), TSDB_ERR_OUT_OF_ORDER);
	assert_string_equal(tsdb_strerror(TSDB_ERR_DUPLICATE), "duplicate sample for timestamp");
	assert_string_equal(tsdb_strerror(TSDB_ERR_OUT_OF_ORDER), "out of order sample");
	/* stale markers compare by bits: the same marker is a duplicate, another NaN is not */
	assert_int_equal(tsdb_head_append(h, &ref, a, 2000, chunk_bits_f64(CHUNK_STALE_NAN_BITS)), 0);
	assert_int_equal(tsdb_head_append(h, &ref, a, 2000, chunk_bits_f64(CHUNK_STALE_NAN_BITS)), 0);
	assert_int_equal(tsdb_head_append(h, &ref, a, 2000, NAN), TSDB_ERR_DUPLICATE);
	tsdb_head_stats(h, &st);
	assert_int_equal(st.samples_appended, 2);
	assert_int_equal(st.duplicates, 2);
	assert_int_equal(st.duplicate_ts, 2);
	assert_int_equal(st.out_of_order, 1);
	assert_int_equal(st.mint, 1000);
	assert_int_equal(st.maxt, 2000);
	assert_int_equal(count_select(h, &m, 1, 0, 5000, &samples), 1);
	assert_int_equal(samples, 2);
	{	/* within one appender: staged t=5000 then t=4000 -> dropped at commit */
		struct tsdb_appender *ap = tsdb_appender_new(h);

		assert_int_equal(tsdb_appender_append(ap, &ref, a, 5000, 1), 0);
		assert_int_equal(tsdb_appender_append(ap, &ref, a, 4000, 1), 0);
		tsdb_appender_commit(ap);
		tsdb_appender_free(ap);
		tsdb_head_stats(h, &st);
		assert_int_equal(st.out_of_order, 2);
		assert_int_equal(st.samples_appended, 3);
	}
	matcher_free(m);
	labels_free(a);
	tsdb_head_free(h);
	printf("head duplicates: identical accepted+counted, conflicting and older rejected+counted\n");
}

static void
test_head_appender(void **state)
{
	struct tsdb_head *h = new_head();
	struct tsdb_appender *ap = tsdb_appender_new(h);
	struct matcher *m = mm(MATCH_REGEX, "__name__", "m.*");
	struct labels *ls[50];
	uint64_t refs[50];
	size_t i, samples;
	char name[16];

	(void)state;
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "m%zu", i);
		ls[i] = mk("__name__", name, NULL);
		refs[i] = 0;
		assert_int_equal(tsdb_appender_append(ap, &refs[i], ls[i], 1000, 1), 0);
	}
	assert_int_equal(tsdb_appender_series_created(ap), 50);
	/* staged, not visible */
	assert_int_equal(count_select(h, &m, 1, 0, 10000, &samples), 0);
	tsdb_appender_commit(ap);
	assert_int_equal(count_select(h, &m, 1, 0, 10000, &samples), 50);
	/* by ref, no labels */
	for (i = 0; i < 50; i++)
		assert_int_equal(tsdb_appender_append(ap, &refs[i], NULL, 2000, 2), 0);
	tsdb_appender_rollback(ap);
	count_select(h, &m, 1, 0, 10000, &samples);
	assert_int_equal(samples, 50);
	for (i = 0; i < 50; i++)
		assert_int_equal(tsdb_appender_append(ap, &refs[i], NULL, 2000, 2), 0);
	tsdb_appender_commit(ap);
	count_select(h, &m, 1, 0, 10000, &samples);
	assert_int_equal(samples, 100);
	{	/* unknown ref without labels; with labels falls back */
		uint64_t bad = 999999, r2 = 999999;

		assert_int_equal(tsdb_appender_append(ap, &bad, NULL, 3000, 1), TSDB_ERR_NOT_FOUND);
		assert_int_equal(tsdb_appender_append(ap, &r2, ls[3], 3000, 1), 0);
		assert_int_equal(r2, refs[3]);
		tsdb_appender_commit(ap);
	}
	{
		struct labels *e = labels_new(NULL, 0);

		assert_int_equal(tsdb_appender_append(ap, NULL, e, 1, 1), TSDB_ERR_EMPTY_LABELS);
		labels_free(e);
	}
	tsdb_appender_free(ap);
	for (i = 0; i < 50; i++)
		labels_free(ls[i]);
	matcher_free(m);
	tsdb_head_free(h);
	printf("head appender: staged invisible, commit publishes 50 series, rollback, refs ok\n");
}

static void
test_head_chunks_latest_labels(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *a = mk("__name__", "c", "job", "j1", "le", "1", NULL);
	struct labels *b = mk("__name__", "g", "job", "j2", NULL);
	struct matcher *m = mm(MATCH_NOT_EQUAL, "job", "zzz");
	struct tsdb_head_stats st;
	struct tsdb_latest *lat;
	struct tsdb_strings s;
	size_t n, samples;
	uint64_t ra = 0, rb = 0;
	int64_t t;

	(void)state;
	/* 15s scrapes over 4h from an aligned start: 2 ranges of 4 chunks */
	for (t = 0; t < 4 * 3600 * 1000; t += 15000) {
		tsdb_head_append(h, &ra, a, t, (double)t);
		tsdb_head_append(h, &rb, b, t, 1.0);
	}
	tsdb_head_stats(h, &st);
	printf("head chunks: 960 samples at 15s over 4h -> %llu chunks per series\n",
	    (unsigned long long)(st.chunks / 2));
	assert_int_equal(st.chunks, 16);
	assert_int_equal(st.series, 2);
	assert_int_equal(count_select(h, &m, 1, INT64_MIN, INT64_MAX, &samples), 2);
	assert_int_equal(samples, 1920);
	/* a range crossing chunk boundaries */
	count_select(h, &m, 1, 1800000 - 1, 3600000 + 15000, &samples);
	assert_int_equal(samples, 2 * (3600000 / 15000 - 1800000 / 15000 + 2));
	tsdb_head_latest(h, &m, 1, 0, &lat, &n);
	assert_int_equal(n, 2);
	assert_string_equal(labels_name(lat[0].ls), "c");
	assert_int_equal(lat[0].t, 4 * 3600 * 1000 - 15000);
	assert_true(lat[0].v == (double)(4 * 3600 * 1000 - 15000));
	assert_int_equal(lat[1].ref, rb);
	tsdb_latest_free(lat, n);
	tsdb_head_latest(h, &m, 1, 4 * 3600 * 1000, &lat, &n);	/* too old */
	assert_int_equal(n, 0);
	tsdb_latest_free(lat, n);
	tsdb_head_label_names(h, NULL, 0, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.v[0], "__name__");
	assert_string_equal(s.v[1], "job");
	assert_string_equal(s.v[2], "le");
	tsdb_strings_free(&s);
	{
		struct matcher *g = mm(MATCH_EQUAL, "__name__", "g");

		tsdb_head_label_names(h, &g, 1, &s);
		assert_int_equal(s.n, 2);
		tsdb_strings_free(&s);
		tsdb_head_label_values(h, "job", &g, 1, &s);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.v[0], "j2");
		tsdb_strings_free(&s);
		matcher_free(g);
	}
	tsdb_head_label_values(h, "job", NULL, 0, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.v[0], "j1");
	assert_string_equal(s.v[1], "j2");
	tsdb_strings_free(&s);
	tsdb_head_label_values(h, "nosuch", NULL, 0, &s);
	assert_int_equal(s.n, 0);
	tsdb_strings_free(&s);
	matcher_free(m);
	labels_free(a);
	labels_free(b);
	tsdb_head_free(h);
	printf("head latest, label names and values ok\n");
}

static void
test_head_gc(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *old = mk("__name__", "old", "k", "v", NULL);
	struct labels *live = mk("__name__", "live", "k", "v", NULL);
	struct matcher *m = mm(MATCH_EQUAL, "k", "v");
	struct tsdb_head_stats st;
	struct tsdb_strings s;
	uint64_t ro = 0, rl = 0, ro2 = 0;
	size_t samples;
	int64_t t;

	(void)state;
	for (t = 0; t < 3600 * 1000; t += 15000)
		tsdb_head_append(h, &ro, old, t, 1);
	for (t = 0; t < 5 * 3600 * 1000; t += 15000)
		tsdb_head_append(h, &rl, live, t, 2);
	assert_int_equal(tsdb_head_gc(h, 3 * 3600 * 1000), 1);
	tsdb_head_stats(h, &st);
	assert_int_equal(st.series, 1);
	assert_int_equal(st.series_removed, 1);
	assert_true(st.chunks_removed > 0);
	assert_int_equal(st.mint, 3 * 3600 * 1000);	/* 30m chunks: the one from 3h on stays */
	/* live keeps its ref and appends by it */
	assert_int_equal(tsdb_head_append(h, &rl, NULL, 5 * 3600 * 1000, 3), 0);
	assert_int_equal(count_select(h, &m, 1, INT64_MIN, INT64_MAX, &samples), 1);
	tsdb_head_label_values(h, "__name__", NULL, 0, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0], "live");
	tsdb_strings_free(&s);
	/* the old ref is dead; the labels get a new series */
	assert_int_equal(tsdb_head_append(h, &ro, NULL, 1, 1), TSDB_ERR_NOT_FOUND);
	assert_int_equal(tsdb_head_append(h, &ro2, old, 1, 1), 0);
	assert_true(ro2 != ro && ro2 != rl);
	/* a series with staged samples survives gc */
	{
		struct tsdb_appender *ap = tsdb_appender_new(h);
		uint64_t r = 0;
		struct labels *fresh = mk("__name__", "fresh", NULL);

		tsdb_appender_append(ap, &r, fresh, 10, 1);
		tsdb_head_gc(h, 100);
		tsdb_appender_commit(ap);
		tsdb_appender_free(ap);
		assert_int_equal(tsdb_head_append(h, &r, NULL, 20, 1), 0);
		labels_free(fresh);
	}
	matcher_free(m);
	labels_free(old);
	labels_free(live);
	tsdb_head_free(h);
	printf("head gc: old series removed, old chunks dropped, live refs stable\n");
}

/* test_head_ooo_many gives many series of one stripe out-of-order samples
 * (a series keeps them beside it, in its stripe): duplicates by value,
 * selects, gc dropping some series' samples entirely (their entries go, the
 * others must stay findable) and new ones after. */
static void
test_head_ooo_many(void **state)
{
	enum { N = 1000 };
	struct tsdb_head_opts o = { .ooo_window = 1000000000 };
	struct tsdb_head_stats st;
	struct tsdb_head *h;
	struct matcher *m = mm(MATCH_EQUAL, "__name__", "o");
	static uint64_t ref[N];
	size_t i, k, samples, want = 0;
	char err[128], v[16];

	(void)state;
	h = tsdb_head_new(&o, err, sizeof err);
	assert_non_null(h);
	for (i = 0; i < N; i++) {
		struct labels *ls;

		snprintf(v, sizeof v, "%zu", i);
		ls = mk("__name__", "o", "i", v, NULL);
		ref[i] = 0;
		assert_int_equal(tsdb_head_append(h, &ref[i], ls, 100000, 1), 0);
		labels_free(ls);
	}
	/* series i gets (i % 4) * 2 samples at 1000, 2000, ... out of order */
	for (k = 0; k < 6; k++)
		for (i = 0; i < N; i++)
			if (k < (i % 4) * 2)
				assert_int_equal(tsdb_head_append(h, &ref[i], NULL,
				    (int64_t)(k + 1) * 1000, (double)(i + k)), 0);
	for (i = 0; i < N; i++) {
		want += 1 + (i % 4) * 2;
		if (i % 4 != 0) {
			assert_int_equal(tsdb_head_append(h, &ref[i], NULL, 1000, (double)i), 0);
			assert_int_equal(tsdb_head_append(h, &ref[i], NULL, 1000, -1.0),
			    TSDB_ERR_DUPLICATE);
		}
	}
	tsdb_head_stats(h, &st);
	assert_int_equal(st.ooo_samples, want - N);
	assert_int_equal(st.duplicates, N - N / 4);
	assert_int_equal(count_select(h, &m, 1, INT64_MIN, INT64_MAX, &samples), N);
	assert_int_equal(samples, want);
	/* gc drops the samples before 2500: series with i % 4 == 1 keep none */
	assert_int_equal(tsdb_head_gc(h, 2500), 0);
	for (i = 0, want = 0; i < N; i++)
		want += 1 + (i % 4 >= 2 ? (i % 4) * 2 - 2 : 0);
	tsdb_head_stats(h, &st);
	assert_int_equal(st.ooo_samples, want - N);
	assert_int_equal(count_select(h, &m, 1, INT64_MIN, INT64_MAX, &samples), N);
	assert_int_equal(samples, want);
	for (i = 0; i < N; i++) {	/* i % 4 == 3 holds (6000, i + 5): a duplicate */
		assert_int_equal(tsdb_head_append(h, &ref[i], NULL, 6000, (double)(i + 5)), 0);
		want += i % 4 == 3 ? 0 : 1;
	}
	tsdb_head_stats(h, &st);
	assert_int_equal(st.ooo_samples, want - N);
	assert_int_equal(count_select(h, &m, 1, INT64_MIN, INT64_MAX, &samples), N);
	assert_int_equal(samples, want);
	assert_int_equal(count_select(h, &m, 1, 5500, 6500, &samples), N);
	assert_int_equal(samples, N);
	matcher_free(m);
	tsdb_head_free(h);
	printf("head out of order, %d series: duplicates, selects, gc dropping some series' "
	    "samples, new ones after\n", N);
}

/* test_head_hash_collisions forges the labels hashes of distinct sets: groups
 * share the whole hash, or only its low 32 bits (what a label-set map slot
 * keeps) in one shard. Every set must keep its own series through creation,
 * lookup, table growth and GC (deletion moves the slots after a hole). */
static void
test_head_hash_collisions(void **state)
{
	enum { N = 600 };
	struct tsdb_head *h = new_head();
	static struct labels *ls[N];
	static uint64_t ref[N];
	char v[16];
	size_t i, j;

	(void)state;
	for (i = 0; i < N; i++) {
		snprintf(v, sizeof v, "%zu", i);
		ls[i] = mk("__name__", "c", "i", v, NULL);
		/* top 6 bits (the shard) equal; i % 3 == 0: all 64 bits equal within
		 * a group of 30; else the low 32 bits equal within a group of 30,
		 * the bits above differ */
		ls[i]->hash = (UINT64_C(0x2a) << 58) | (uint64_t)(i / 30) * 0x9e3779b9u;
		if (i % 3 != 0)
			ls[i]->hash |= (uint64_t)(i + 1) << 32;
		ref[i] = 0;
		assert_int_equal(tsdb_head_append(h, &ref[i], ls[i], 1000, (double)i), 0);
		for (j = 0; j < i; j++)
			assert_true(ref[j] != ref[i]);
	}
	for (i = 0; i < N; i++) {
		uint64_t r = 0;

		assert_int_equal(tsdb_head_lookup(h, ls[i]), ref[i]);
		/* by labels again: the same series, a duplicate */
		assert_int_equal(tsdb_head_append(h, &r, ls[i], 1000, (double)i), 0);
		assert_int_equal(r, ref[i]);
	}
	/* keep every third series alive, let gc drop the others */
	for (i = 0; i < N; i += 3)
		assert_int_equal(tsdb_head_append(h, &ref[i], NULL, 10000, 1), 0);
	assert_int_equal(tsdb_head_gc(h, 5000), N - N / 3);
	for (i = 0; i < N; i++) {
		uint64_t r = 0;

		assert_int_equal(tsdb_head_lookup(h, ls[i]), i % 3 == 0 ? ref[i] : 0);
		assert_int_equal(tsdb_head_append(h, &r, ls[i], 20000, 2), 0);
		if (i % 3 == 0)
			assert_int_equal(r, ref[i]);
		else
			assert_true(r > ref[N - 1]);	/* a new series */
		assert_int_equal(tsdb_head_lookup(h, ls[i]), r);
	}
	for (i = 0; i < N; i++)
		labels_free(ls[i]);
	tsdb_head_free(h);
	printf("head hash collisions: %d sets in groups sharing 64 or 32 hash bits, "
	    "each its own series through growth and gc\n", N);
}

/* --- concurrency -------------------------------------------------------------- */

enum { CSERIES = 500, CSTEP = 1000 };

struct conc {
	struct tsdb_head *h;
	struct labels *ls[CSERIES];
	int64_t committed;	/* atomic: t of the last commit */
	int stop;		/* atomic */
	size_t reads, bad;
};

static void *
conc_writer(void *arg)
{
	struct conc *c = arg;
	struct tsdb_appender *ap = tsdb_appender_new(c->h);
	uint64_t refs[CSERIES] = { 0 };
	int64_t start = time_mono_ns(), t;
	size_t i;

	for (t = CSTEP; time_mono_ns() - start < 1500000000LL; t += CSTEP) {
		for (i = 0; i < CSERIES; i++)
			tsdb_appender_append(ap, &refs[i], c->ls[i], t, (double)t);
		tsdb_appender_commit(ap);
		__atomic_store_n(&c->committed, t, __ATOMIC_RELEASE);
		if (t % (200 * CSTEP) == 0)
			tsdb_head_gc(c->h, t - 100 * CSTEP);
	}
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	tsdb_appender_free(ap);
	return NULL;
}

static void *
conc_reader(void *arg)
{
	struct conc *c = arg;
	struct matcher *m = mm(MATCH_REGEX, "__name__", "s.*");
	size_t reads = 0, bad = 0, i;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int64_t before = __atomic_load_n(&c->committed, __ATOMIC_ACQUIRE);
		struct tsdb_series_set *ss;
		struct tsdb_latest *lat;
		size_t n;

		tsdb_head_latest(c->h, &m, 1, 0, &lat, &n);
		for (i = 0; i < n; i++)
			if (lat[i].t < before || lat[i].v != (double)lat[i].t)
				bad++;
		if (before > 0 && n != CSERIES)
			bad++;
		tsdb_latest_free(lat, n);
		ss = tsdb_head_select(c->h, &m, 1, before - 50 * CSTEP, INT64_MAX);
		while (tsdb_series_set_next(ss)) {
			struct tsdb_iter *it = tsdb_series_set_iter(ss);
			int64_t t, prev = 0;
			double v;

			while (tsdb_iter_next(it, &t, &v)) {
				/* contiguous, value == t: no torn chunk, no gap */
				if (v != (double)t || (prev != 0 && t != prev + CSTEP))
					bad++;
				prev = t;
			}
			if (prev < before)
				bad++;
		}
		tsdb_series_set_free(ss);
		reads++;
	}
	matcher_free(m);
	__atomic_add_fetch(&c->reads, reads, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->bad, bad, __ATOMIC_RELAXED);
	return NULL;
}

/* run_concurrent runs one writer and three readers on a head; with files,
 * the head writes the chunks it closes to a chunk store in a temporary
 * directory (readers then read them through its mappings). */
static void
run_concurrent(bool files)
{
	static struct conc c;
	pthread_t w, r[3];
	struct tsdb_head_stats st;
	struct hchunks *hc = NULL;
	char name[32], dir[64] = "/tmp/strata-hc-XXXXXX", err[256];
	size_t i;

	memset(&c, 0, sizeof c);
	c.h = new_head();
	if (files) {
		assert_non_null(mkdtemp(dir));
		hc = hchunks_open(dir, err, sizeof err);
		assert_non_null(hc);
		tsdb_head_set_chunk_store(c.h, hc);
	}
	for (i = 0; i < CSERIES; i++) {
		snprintf(name, sizeof name, "s%zu", i);
		c.ls[i] = mk("__name__", name, "job", "conc", NULL);
	}
	pthread_create(&w, NULL, conc_writer, &c);
	for (i = 0; i < 3; i++)
		pthread_create(&r[i], NULL, conc_reader, &c);
	pthread_join(w, NULL);
	for (i = 0; i < 3; i++)
		pthread_join(r[i], NULL);
	tsdb_head_stats(c.h, &st);
	printf("head concurrency%s: 1 writer (%llu samples, %d series/commit) + 3 readers "
	    "(%zu selects+latest), %zu inconsistencies\n", files ? " (chunk files)" : "",
	    (unsigned long long)st.samples_appended, CSERIES, c.reads, c.bad);
	assert_int_equal(c.bad, 0);
	assert_true(c.reads > 0);
	for (i = 0; i < CSERIES; i++)
		labels_free(c.ls[i]);
	tsdb_head_free(c.h);
	if (files) {
		struct hchunks_stats hs;

		hchunks_stats(hc, &hs);
		assert_true(hs.chunks_written > 0);
		assert_int_equal(hs.bad_reads, 0);
		hchunks_collect(hc);	/* the head let go of every chunk */
		hchunks_stats(hc, &hs);
		assert_true(hs.files <= 1);
		hchunks_close(hc);
		for (i = 1; i < 1000; i++) {
			char p[96];

			snprintf(p, sizeof p, "%s/%06zu", dir, i);
			(void)unlink(p);
		}
		assert_int_equal(rmdir(dir), 0);
	}
}

static void
test_head_concurrent(void **state)
{
	(void)state;
	run_concurrent(false);
	run_concurrent(true);
}

/* --- commit observer ------------------------------------------------------------ */

/* A recording observer: copies every call (the head's rule: copy, return).
 * It runs on appender threads: it allocates through lib/util/mem, never
 * cmocka's test_malloc, whose bookkeeping is not thread-safe. */
struct obs_rec {
	pthread_mutex_t mu;
	size_t calls;
	struct tsdb_log_sample *v;
	size_t n, cap;
	uint32_t *sid;			/* series ids seen in series records */
	struct labels **sls;		/* their labels (one reference each) */
	size_t ns, caps;
};

static void
obs_fn(void *arg, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv)
{
	struct obs_rec *r = arg;
	size_t i;

	pthread_mutex_lock(&r->mu);
	r->calls++;
	for (i = 0; i < ns; i++) {
		if (r->ns == r->caps) {
			r->caps = r->caps ? r->caps * 2 : 16;
			r->sid = mem_realloc(r->sid, r->caps * sizeof *r->sid);
			r->sls = mem_realloc(r->sls, r->caps * sizeof *r->sls);
		}
		r->sid[r->ns] = s[i].id;
		r->sls[r->ns++] = labels_ref((struct labels *)s[i].ls);
	}
	if (r->n + nv > r->cap) {
		r->cap = (r->n + nv) * 2;
		r->v = mem_realloc(r->v, r->cap * sizeof *r->v);
	}
	memcpy(r->v + r->n, v, nv * sizeof *v);
	r->n += nv;
	pthread_mutex_unlock(&r->mu);
}

static void
obs_init(struct obs_rec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->mu, NULL);
}

static void
obs_release(struct obs_rec *r)
{
	size_t i;

	for (i = 0; i < r->ns; i++)
		labels_free(r->sls[i]);
	mem_free(r->sid);
	mem_free(r->sls);
	mem_free(r->v);
	pthread_mutex_destroy(&r->mu);
}

/* A log that accepts or refuses (fail) every commit. */
struct fake_log {
	int fail;
	size_t series_logged;
};

static int
fake_log(void *arg, const struct tsdb_log_series *s, size_t ns,
    const struct tsdb_log_sample *v, size_t nv, uint64_t *pos)
{
	struct fake_log *fl = arg;

	(void)s;
	(void)v;
	(void)nv;
	*pos = 0;
	if (fl->fail)
		return TSDB_ERR_IO;
	fl->series_logged += ns;
	return 0;
}

static void
test_head_observer(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *a = mk("__name__", "a", NULL), *b = mk("__name__", "b", NULL), *got;
	struct tsdb_appender *p = tsdb_appender_new(h), *q = tsdb_appender_new(h);
	struct obs_rec r;
	uint64_t ra = 0, rb = 0;

	(void)state;
	obs_init(&r);
	/* before any observer: not seen */
	assert_int_equal(tsdb_head_append(h, &ra, a, 1000, 1), 0);
	tsdb_head_set_observer(h, obs_fn, &r);
	assert_int_equal(r.calls, 0);

	/* two appenders race: p stages a@2000 and a@3000, q stages a@3000
	 * with the same value and a@2500, and commits first; p's a@3000 is
	 * then a duplicate and a@2000 out of order: neither is applied, so
	 * neither is observed. b is new in p's commit. */
	assert_int_equal(tsdb_appender_append(p, &ra, a, 2000, 2), 0);
	assert_int_equal(tsdb_appender_append(p, &ra, a, 3000, 3), 0);
	assert_int_equal(tsdb_appender_append(p, &rb, b, 3000, 30), 0);
	assert_int_equal(tsdb_appender_append(q, &ra, a, 2500, 2.5), 0);
	assert_int_equal(tsdb_appender_append(q, &ra, a, 3000, 3), 0);
	assert_int_equal(tsdb_appender_commit(q), 0);
	assert_int_equal(tsdb_appender_commit(p), 0);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.v[0].id, ra);
	assert_int_equal(r.v[0].t, 2500);
	assert_int_equal(r.v[0].v, chunk_f64_bits(2.5));
	assert_int_equal(r.v[1].t, 3000);
	assert_int_equal(r.v[2].id, rb);
	assert_int_equal(r.v[2].t, 3000);
	assert_int_equal(r.v[2].v, chunk_f64_bits(30));
	assert_int_equal(r.ns, 0);	/* no log attached: no series records */

	/* a commit whose samples are all dropped is observed empty */
	assert_int_equal(tsdb_appender_append(p, &ra, a, 3500, 1), 0);
	assert_int_equal(tsdb_appender_append(q, &ra, a, 3500, 1), 0);
	tsdb_appender_commit(q);
	tsdb_appender_commit(p);
	assert_int_equal(r.calls, 4);
	assert_int_equal(r.n, 4);
	/* an empty appender commits nothing */
	tsdb_appender_commit(p);
	assert_int_equal(r.calls, 4);

	/* labels by id, any series; NULL for what is not there */
	got = tsdb_head_series_labels(h, rb);
	assert_non_null(got);
	assert_true(labels_equal(got, b));
	labels_free(got);
	assert_null(tsdb_head_series_labels(h, 0));
	assert_null(tsdb_head_series_labels(h, 99999));
	assert_null(tsdb_head_series_labels(h, UINT64_MAX));

	/* detached: no call */
	tsdb_head_set_observer(h, NULL, &r);
	assert_int_equal(tsdb_head_append(h, &ra, a, 9000, 9), 0);
	assert_int_equal(r.calls, 4);

	tsdb_appender_free(p);
	tsdb_appender_free(q);
	tsdb_head_free(h);
	obs_release(&r);
	labels_free(a);
	labels_free(b);
	printf("head observer: applied samples only, in commit order; detach stops calls\n");
}

static void
test_head_observer_log(void **state)
{
	struct tsdb_head *h = new_head();
	struct labels *a = mk("__name__", "a", NULL), *b = mk("__name__", "b", NULL);
	struct labels *c = mk("__name__", "c", NULL);
	struct fake_log fl = { 0, 0 };
	struct tsdb_head_hooks hk = { fake_log, NULL, NULL, &fl };
	struct obs_rec r;
	uint64_t ra = 0, rb = 0, rc = 0;

	(void)state;
	obs_init(&r);
	tsdb_head_set_hooks(h, &hk);
	/* a is logged before the observer comes: it never gets a record */
	assert_int_equal(tsdb_head_append(h, &ra, a, 1000, 1), 0);
	tsdb_head_set_observer(h, obs_fn, &r);
	{
		struct tsdb_appender *p = tsdb_appender_new(h);

		assert_int_equal(tsdb_appender_append(p, &ra, a, 2000, 2), 0);
		assert_int_equal(tsdb_appender_append(p, &rb, b, 2000, 2), 0);
		assert_int_equal(tsdb_appender_commit(p), 0);
		assert_int_equal(r.ns, 1);
		assert_int_equal(r.sid[0], rb);
		assert_true(labels_equal(r.sls[0], b));
		/* b again: no second record */
		assert_int_equal(tsdb_appender_append(p, &rb, b, 3000, 3), 0);
		assert_int_equal(tsdb_appender_commit(p), 0);
		assert_int_equal(r.ns, 1);
		/* refused by the log: not observed, and c's record comes with
		 * the commit that gets through */
		fl.fail = 1;
		assert_int_equal(tsdb_appender_append(p, &rc, c, 3000, 3), 0);
		assert_int_equal(tsdb_appender_commit(p), TSDB_ERR_IO);
		assert_int_equal(r.calls, 2);
		fl.fail = 0;
		assert_int_equal(tsdb_appender_append(p, &rc, c, 3000, 3), 0);
		assert_int_equal(tsdb_appender_commit(p), 0);
		assert_int_equal(r.calls, 3);
		assert_int_equal(r.ns, 2);
		assert_int_equal(r.sid[1], rc);
		assert_true(labels_equal(r.sls[1], c));
		tsdb_appender_free(p);
	}
	assert_int_equal(r.n, 4);
	assert_int_equal(fl.series_logged, 3);
	tsdb_head_set_observer(h, NULL, NULL);
	tsdb_head_free(h);
	/* the observer's references outlive the head */
	assert_string_equal(labels_get(r.sls[1], "__name__"), "c");
	obs_release(&r);
	labels_free(a);
	labels_free(b);
	labels_free(c);
	printf("head observer with a log: one series record per new series, none for a refused commit\n");
}

#define OWRITERS 3
#define OSERIES 40
#define OCOMMITS 3000

struct obs_conc {
	struct tsdb_head *h;
	struct labels *ls[OWRITERS][OSERIES];
	uint64_t refs[OWRITERS][OSERIES];
	int stop;	/* atomic */
	size_t reads, errors;
};

static void *
obs_writer(void *arg)
{
	struct obs_conc *c = ((void **)arg)[0];
	size_t w = (size_t)(uintptr_t)((void **)arg)[1], i, k;
	struct tsdb_appender *ap = tsdb_appender_new(c->h);

	for (k = 1; k <= OCOMMITS; k++) {
		for (i = 0; i < OSERIES; i++)
			if (tsdb_appender_append(ap, &c->refs[w][i], c->ls[w][i],
			    (int64_t)k * 1000, (double)(k * 100 + w)) != 0)
				__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
		if (tsdb_appender_commit(ap) != 0)
			__atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
	}
	tsdb_appender_free(ap);
	return NULL;
}

static void *
obs_reader(void *arg)
{
	struct obs_conc *c = arg;
	struct matcher *m = mm(MATCH_REGEX, "__name__", "o.*");

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		size_t samples;
		struct labels *ls;

		count_select(c->h, &m, 1, 0, INT64_MAX, &samples);
		if ((ls = tsdb_head_series_labels(c->h, c->refs[0][0])) != NULL)
			labels_free(ls);
		__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	}
	matcher_free(m);
	return NULL;
}

static void
test_head_observer_concurrent(void **state)
{
	static struct obs_conc c;
	struct obs_rec r;
	pthread_t w[OWRITERS], rd[2];
	void *args[OWRITERS][2];
	char name[32];
	size_t i, j, bad = 0;
	int64_t *last;

	(void)state;
	memset(&c, 0, sizeof c);
	obs_init(&r);
	c.h = new_head();
	tsdb_head_set_observer(c.h, obs_fn, &r);
	for (i = 0; i < OWRITERS; i++)
		for (j = 0; j < OSERIES; j++) {
			snprintf(name, sizeof name, "o%zu_%zu", i, j);
			c.ls[i][j] = mk("__name__", name, NULL);
		}
	for (i = 0; i < 2; i++)
		pthread_create(&rd[i], NULL, obs_reader, &c);
	for (i = 0; i < OWRITERS; i++) {
		args[i][0] = &c;
		args[i][1] = (void *)(uintptr_t)i;
		pthread_create(&w[i], NULL, obs_writer, args[i]);
	}
	for (i = 0; i < OWRITERS; i++)
		pthread_join(w[i], NULL);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	tsdb_head_set_observer(c.h, NULL, NULL);
	assert_int_equal(c.errors, 0);
	/* every sample once, each series' in time order, value as appended */
	assert_int_equal(r.n, (size_t)OWRITERS * OSERIES * OCOMMITS);
	last = mem_calloc(OWRITERS * OSERIES + 2, sizeof *last);
	for (i = 0; i < r.n; i++) {
		const struct tsdb_log_sample *x = &r.v[i];
		struct labels *ls = tsdb_head_series_labels(c.h, x->id);
		size_t wi = 0, si = 0;
		int64_t k = x->t / 1000;

		assert_non_null(ls);
		assert_int_equal(sscanf(labels_get(ls, "__name__"), "o%zu_%zu", &wi, &si), 2);
		labels_free(ls);
		if (x->t != last[x->id] + 1000 ||
		    x->v != chunk_f64_bits((double)((uint64_t)k * 100 + wi)))
			bad++;
		last[x->id] = x->t;
	}
	for (i = 0; i < OWRITERS; i++)
		for (j = 0; j < OSERIES; j++)
			assert_int_equal(last[c.refs[i][j]], (int64_t)OCOMMITS * 1000);
	printf("head observer: %d appenders x %d commits + 2 readers: %zu samples seen, "
	    "%zu out of place, %zu reads\n", OWRITERS, OCOMMITS, r.n, bad, c.reads);
	assert_int_equal(bad, 0);
	mem_free(last);
	for (i = 0; i < OWRITERS; i++)
		for (j = 0; j < OSERIES; j++)
			labels_free(c.ls[i][j]);
	tsdb_head_free(c.h);
	obs_release(&r);
}

/* --- memory --------------------------------------------------------------------- */

static size_t
heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void
test_head_memory(void **state)
{
	enum { N = 50000 };
	static const char *envs[] = { "prod", "staging", "dev" };
	struct tsdb_head *h;
	struct tsdb_appender *ap;
	static uint64_t refs[N];
	size_t base, after1, after120, i, s;
	char inst[32], pod[48], name[32], path[32];

	(void)state;
	malloc_trim(0);
	base = heap_used();
	h = new_head();
	ap = tsdb_appender_new(h);
	for (i = 0; i < N; i++) {
		struct labels *ls;
		struct label v[10];

		snprintf(name, sizeof name, "http_requests_%zu_total", i % 20);
		snprintf(inst, sizeof inst, "10.1.%zu.%zu:9100", (i / 50) / 256, (i / 50) % 256);
		snprintf(pod, sizeof pod, "api-7d9f8c6b5-%05zu", i);
		snprintf(path, sizeof path, "/api/v%zu", i % 16);
		v[0] = (struct label){ "__name__", name };
		v[1] = (struct label){ "job", "api" };
		v[2] = (struct label){ "instance", inst };
		v[3] = (struct label){ "env", envs[i % 3] };
		v[4] = (struct label){ "region", i % 2 ? "eu-west-1" : "us-east-1" };
		v[5] = (struct label){ "cluster", "k8s-main" };
		v[6] = (struct label){ "namespace", "shop" };
		v[7] = (struct label){ "pod", pod };
		v[8] = (struct label){ "path", path };
		v[9] = (struct label){ "code", i % 7 ? "200" : "500" };
		ls = labels_new(v, 10);
		refs[i] = 0;
		assert_int_equal(tsdb_appender_append(ap, &refs[i], ls, 0, 1), 0);
		labels_free(ls);
		if (i % 1000 == 999)
			tsdb_appender_commit(ap);
	}
	tsdb_appender_commit(ap);
	after1 = heap_used();
	for (s = 1; s < 120; s++) {
		for (i = 0; i < N; i++)
			tsdb_appender_append(ap, &refs[i], NULL, (int64_t)s * 15000,
			    (double)(s * 10 + i % 13));
		tsdb_appender_commit(ap);
	}
	after120 = heap_used();
	if (after1 <= base) {	/* sanitizer allocators do not report to mallinfo */
		printf("head memory: not measurable with this allocator (mallinfo2 reports nothing)\n");
		goto out;
	}
	printf("head memory: %d series x 10 labels (1 unique value each): %.0f bytes/series "
	    "with 1 sample (series, labels, strings, maps, postings, open chunk); "
	    "%.0f bytes/series with 120 samples (%.2f bytes/sample of chunk data)\n",
	    N, (double)(after1 - base) / N, (double)(after120 - base) / N,
	    (double)(after120 - after1) / N / 119);
	assert_true((after1 - base) / N < 1024);
out:
	tsdb_appender_free(ap);
	tsdb_head_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunk_golden),
		cmocka_unit_test(test_chunk_random),
		cmocka_unit_test(test_chunk_adversarial),
		cmocka_unit_test(test_chunk_order_and_full),
		cmocka_unit_test(test_chunk_seek_and_corrupt),
		cmocka_unit_test(test_chunk_restore_bounds),
		cmocka_unit_test(test_chunk_bytes_per_sample),
		cmocka_unit_test(test_chunk_dense),
		cmocka_unit_test(test_head_append_select),
		cmocka_unit_test(test_head_matchers),
		cmocka_unit_test(test_head_duplicates_ooo),
		cmocka_unit_test(test_head_appender),
		cmocka_unit_test(test_head_chunks_latest_labels),
		cmocka_unit_test(test_head_gc),
		cmocka_unit_test(test_head_hash_collisions),
		cmocka_unit_test(test_head_ooo_many),
		cmocka_unit_test(test_head_concurrent),
		cmocka_unit_test(test_head_observer),
		cmocka_unit_test(test_head_observer_log),
		cmocka_unit_test(test_head_observer_concurrent),
		cmocka_unit_test(test_head_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
