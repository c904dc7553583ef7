/* tests/unit/test_tsdb_block.c - lib/tsdb blocks: write/read, damage, the
 * head cut into blocks, compaction, retention, out-of-order flushes and
 * reads across head and blocks.
 *
 * Blocks: a round trip of series with every kind of value (bit for bit),
 * matchers checked against a brute-force evaluation, label names and
 * values; a flipped byte in the index refuses the block naming the file, a
 * flipped byte in a chunk skips that chunk (never served), a missing or
 * truncated chunk file refuses the block. Store (with 1-minute blocks so a
 * test holds many): the head is cut as it grows, reads see head and blocks
 * as one, nothing is lost or duplicated across cuts, restarts and
 * compactions; blocks merge into larger ranges; retention by time and by
 * size deletes whole blocks; out-of-order samples reach blocks that overlap
 * and get merged; a block written into a running store's directory is
 * picked up.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "tsdb/block.h"
#include "tsdb/db.h"
#include "tsdb/head.h"
#include "tsdb/iter.h"
#include "tsdb/pack.h"
#include "util/log.h"
#include "util/mem.h"

#define MIN 60000LL

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static char *
tmpdir(void)
{
	char tmpl[256];
	const char *base = getenv("TMPDIR");

	snprintf(tmpl, sizeof tmpl, "%s/strata-block-XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	return mem_strdup(tmpl);
}

static uint64_t
bits(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof b);
	return b;
}

static double
from_bits(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof v);
	return v;
}

/* series_labels builds series i's labels: 3 metrics, jobs, instances. */
static struct labels *
series_labels(unsigned i)
{
	static const char *names[] = { "http_requests_total", "up", "temp_celsius" };
	char inst[32], job[16];
	struct label l[4];
	size_t n = 3;

	snprintf(inst, sizeof inst, "host-%u:9100", i / 3);
	snprintf(job, sizeof job, "job%u", i % 4);
	l[0].name = "__name__";
	l[0].value = names[i % 3];
	l[1].name = "instance";
	l[1].value = inst;
	l[2].name = "job";
	l[2].value = job;
	if (i % 5 == 0) {
		l[3].name = "zone";
		l[3].value = i % 2 ? "a" : "";
		if (i % 2)
			n = 4;
	}
	return labels_new(l, n);
}

static uint64_t
value_of(unsigned s, int64_t t)
{
	int64_t k = t / 15000;

	if (k % 53 == 52)
		return CHUNK_STALE_NAN_BITS;
	switch (s % 4) {
	case 0: return bits((double)(k * 3 + s));
	case 1: return bits(k % 2 ? 1 : 0);
	case 2: return k % 40 == 1 ? UINT64_C(0x7ff8000000000001) : bits(20.5 + sin((double)k) * 3);
	default: return k % 17 == 0 ? bits(INFINITY) : bits(-0.0);
	}
}

/* --- packed chunks ----------------------------------------------------------------------- */

static const uint64_t special[] = {
	CHUNK_STALE_NAN_BITS, UINT64_C(0x7ff8000000000001), UINT64_C(0xfff8000000000000),
	UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000000), UINT64_C(0x8000000000000000),
	0, 1, UINT64_C(0x4340000000000000), UINT64_C(0x433fffffffffffff), UINT64_C(0xc33fffffffffffff),
	UINT64_C(0x7fefffffffffffff),
};

/* pack2_roundtrip checks version 2 on v: every sample back, and ranges
 * decoding whole groups from the one holding the range's start, all of the
 * range included. Returns the size. */
static size_t
pack2_roundtrip(const struct tsdb_sample *v, size_t n)
{
	struct enc e = { NULL, 0, 0 };
	struct tsdb_sample *out = NULL;
	size_t nout = 0, cap = 0, i, len, r;

	pack2_encode(v, n, &e);
	assert_int_equal(pack2_decode_range(e.b, e.len, INT64_MIN, INT64_MAX, &out, &nout, &cap), 0);
	assert_int_equal(nout, n);
	for (i = 0; i < n; i++) {
		if (out[i].t != v[i].t || out[i].v != v[i].v)
			fail_msg("pack2 sample %zu of %zu: (%lld, %016llx), want (%lld, %016llx)", i, n,
			    (long long)out[i].t, (unsigned long long)out[i].v, (long long)v[i].t,
			    (unsigned long long)v[i].v);
	}
	for (r = 0; r < 8; r++) {
		size_t a = rnd() % n, b = a + rnd() % (n - a), first, k;
		int64_t lo = v[a].t - (int64_t)(rnd() % 2), hi = v[b].t + (int64_t)(rnd() % 2);

		nout = 0;
		assert_int_equal(pack2_decode_range(e.b, e.len, lo, hi, &out, &nout, &cap), 0);
		assert_true(nout > 0);
		for (first = 0; first < n && v[first].t != out[0].t; first++)
			;
		assert_true(first < n && first % 128 == 0);
		assert_true(first <= a);
		assert_true(first + nout > b);
		for (k = 0; k < nout; k++)
			assert_true(out[k].t == v[first + k].t && out[k].v == v[first + k].v);
	}
	/* a range before the chunk or after it */
	nout = 0;
	assert_int_equal(pack2_decode_range(e.b, e.len, INT64_MIN, v[0].t - 1, &out, &nout, &cap), 0);
	assert_int_equal(nout, 0);
	assert_int_equal(pack2_decode_range(e.b, e.len, v[n - 1].t + 1, INT64_MAX, &out, &nout, &cap), 0);
	assert_true(nout == (n % 128 ? n % 128 : 128));	/* the last group */
	len = e.len;
	mem_free(out);
	enc_free(&e);
	return len;
}

/* pack_roundtrip encodes and decodes v, checking bits; returns the size. */
static size_t
pack_roundtrip(const struct tsdb_sample *v, size_t n)
{
	struct enc e = { NULL, 0, 0 };
	struct tsdb_sample *out = NULL;
	size_t nout = 0, cap = 0, i, len;

	pack_encode(v, n, &e);
	assert_int_equal(pack_decode(e.b, e.len, &out, &nout, &cap), 0);
	assert_int_equal(nout, n);
	for (i = 0; i < n; i++) {
		if (out[i].t != v[i].t || out[i].v != v[i].v)
			fail_msg("sample %zu of %zu: (%lld, %016llx), want (%lld, %016llx)", i, n,
			    (long long)out[i].t, (unsigned long long)out[i].v, (long long)v[i].t,
			    (unsigned long long)v[i].v);
	}
	/* a decoder appends: a second decode doubles the output */
	assert_int_equal(pack_decode(e.b, e.len, &out, &nout, &cap), 0);
	assert_int_equal(nout, 2 * n);
	len = e.len;
	mem_free(out);
	enc_free(&e);
	pack2_roundtrip(v, n);
	return len;
}

static void
test_pack_roundtrip(void **state)
{
	static const size_t lens[] = { 1, 2, 3, 4, 127, 128, 129, 255, 256, 257, 1000, 4097 };
	struct tsdb_sample *v = mem_alloc(PACK_MAX_SAMPLES * sizeof *v);
	size_t li, i, kind, rounds = 0;

	(void)state;
	for (kind = 0; kind < 9; kind++) {
		for (li = 0; li < sizeof lens / sizeof lens[0]; li++) {
			size_t n = lens[li];
			int64_t t = (int64_t)(rnd() % 2000000000000LL) - 1000000000000LL;

			for (i = 0; i < n; i++) {
				switch (kind % 3) {	/* timestamps */
				case 0: t += 15000; break;
				case 1: t += 15000 + (int64_t)(rnd() % 7) - 3; break;
				default: t += 1 + (int64_t)(rnd() % (i % 50 == 0 ? 1000000000000ULL : 100000)); break;
				}
				v[i].t = t;
				switch (kind / 3 * 3 + (i % 3)) {	/* values */
				case 0: case 1: case 2: v[i].v = bits((double)(i * 37 + rnd() % 5)); break;
				case 3: v[i].v = bits((double)(int64_t)(rnd() % 100000) / 100.0); break;
				case 4: v[i].v = special[rnd() % (sizeof special / sizeof special[0])]; break;
				case 5: v[i].v = rnd(); break;
				case 6: v[i].v = i % 11 == 0 ? CHUNK_STALE_NAN_BITS : bits(0.1 * (double)i); break;
				case 7: v[i].v = bits(1e15 + (double)i); break;
				default: v[i].v = bits(-(double)(rnd() % 1000) / 8.0); break;
				}
			}
			pack_roundtrip(v, n);
			rounds++;
		}
	}
	/* the largest chunk, and extremes of time */
	for (i = 0; i < PACK_MAX_SAMPLES; i++) {
		v[i].t = INT64_MIN + 1 + (int64_t)i * 140737488355328LL;
		v[i].v = bits((double)(i % 2));
	}
	pack_roundtrip(v, PACK_MAX_SAMPLES);
	print_message("pack: %zu round trips (regular/jittery/random times; counters, decimals, "
	    "specials, random bits, stale markers) bit for bit\n", rounds + 1);
	mem_free(v);
}

static void
test_pack_size(void **state)
{
	struct tsdb_sample v[480];
	struct chunk_app app;
	size_t i, sz_pack, sz_pack2, sz_xor = 0, k;
	double g = 20;
	uint64_t cnt = 1000000;
	const char *what[] = { "counter", "gauge 2 decimals", "constant" };

	(void)state;
	for (k = 0; k < 3; k++) {
		for (i = 0; i < 480; i++) {
			v[i].t = 1700000000000LL + (int64_t)i * 15000 + (int64_t)(rnd() % 5);
			if (k == 0) {
				cnt += rnd() % 200;
				v[i].v = bits((double)cnt);
			} else if (k == 1) {
				g += (double)((int)(rnd() % 21) - 10) / 100.0;
				g = round(g * 100) / 100;
				v[i].v = bits(g);
			} else {
				v[i].v = bits(1);
			}
		}
		sz_pack = pack_roundtrip(v, 480);
		sz_pack2 = pack2_roundtrip(v, 480);
		sz_xor = 0;
		for (i = 0; i < 480; i += 120) {
			size_t j;

			chunk_app_init(&app);
			for (j = i; j < i + 120; j++)
				chunk_app_append(&app, v[j].t, v[j].v);
			sz_xor += app.len;
			chunk_app_reset(&app);
		}
		print_message("pack (version 2) vs XOR, 2h at 15s with 0-4 ms jitter, %s: %.2f (%.2f) "
		    "vs %.2f bytes/sample\n", what[k], sz_pack / 480.0, sz_pack2 / 480.0, sz_xor / 480.0);
		assert_true(sz_pack < sz_xor);
		assert_true(sz_pack2 < sz_xor);
		assert_true(sz_pack2 < sz_pack + 40);	/* the anchors of three more groups */
	}
}

static void
test_pack_corrupt(void **state)
{
	struct tsdb_sample v[300];
	struct enc e = { NULL, 0, 0 };
	size_t i, round, errors = 0;

	(void)state;
	for (i = 0; i < 300; i++) {
		v[i].t = (int64_t)i * 15000 + (int64_t)(rnd() % 3);
		v[i].v = i % 3 ? bits((double)i / 4) : rnd();
	}
	pack_encode(v, 300, &e);
	for (round = 0; round < 3000; round++) {
		uint8_t *b = mem_alloc(e.len);
		size_t len = e.len, nout = 0, cap = 0;
		struct tsdb_sample *out = NULL;

		memcpy(b, e.b, e.len);
		if (round % 2)
			len = rnd() % e.len;	/* truncated */
		else
			b[rnd() % e.len] ^= (uint8_t)(1u << (rnd() % 8));	/* flipped bit */
		if (pack_decode(b, len, &out, &nout, &cap) != 0)
			errors++;
		for (i = 1; i < nout; i++)
			assert_true(out[i].t > out[i - 1].t);	/* never out of order */
		mem_free(out);
		mem_free(b);
	}
	print_message("pack: 3000 damaged inputs decoded safely, %zu refused\n", errors);
	assert_true(errors > 1500);
	enc_free(&e);
	/* the same for version 2, whole and in ranges */
	pack2_encode(v, 300, &e);
	for (round = 0, errors = 0; round < 3000; round++) {
		uint8_t *b = mem_alloc(e.len);
		size_t len = e.len, nout = 0, cap = 0;
		struct tsdb_sample *out = NULL;
		int64_t lo = round % 3 ? INT64_MIN : (int64_t)(rnd() % 4500000);

		memcpy(b, e.b, e.len);
		if (round % 2)
			len = rnd() % e.len;
		else
			b[rnd() % e.len] ^= (uint8_t)(1u << (rnd() % 8));
		if (pack2_decode_range(b, len, lo, INT64_MAX, &out, &nout, &cap) != 0) {
			errors++;
			assert_int_equal(nout, 0);
		}
		for (i = 1; i < nout; i++)
			assert_true(out[i].t > out[i - 1].t);
		mem_free(out);
		mem_free(b);
	}
	print_message("pack version 2: 3000 damaged inputs decoded safely, %zu refused\n", errors);
	assert_true(errors > 1000);
	enc_free(&e);
}

/* --- blocks ------------------------------------------------------------------------------ */

/* make_block writes nseries series with samples every 15 s in [mint, maxt). */
static struct block *
make_block(const char *dir, unsigned nseries, int64_t mint, int64_t maxt, char *id)
{
	char err[512], *p;
	struct block_writer *w = block_writer_new(dir, mint, maxt, 1, err, sizeof err);
	struct labels **ls = mem_alloc(nseries * sizeof *ls);
	unsigned *order = mem_alloc(nseries * sizeof *order), i, j;
	struct tsdb_sample *v = mem_alloc((size_t)((maxt - mint) / 15000 + 2) * sizeof *v);
	struct block *b;

	assert_non_null(w);
	for (i = 0; i < nseries; i++) {
		ls[i] = series_labels(i);
		order[i] = i;
	}
	/* labels order */
	for (i = 1; i < nseries; i++)
		for (j = i; j > 0 && labels_compare(ls[order[j - 1]], ls[order[j]]) > 0; j--) {
			unsigned x = order[j];

			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	for (i = 0; i < nseries; i++) {
		unsigned s = order[i];
		size_t n = 0;
		int64_t t;

		for (t = mint; t < maxt; t += 15000) {
			v[n].t = t + (int64_t)(s % 7);
			v[n].v = value_of(s, t);
			n++;
		}
		assert_int_equal(block_writer_add(w, ls[s], v, n, err, sizeof err), 0);
	}
	assert_int_equal(block_writer_finish(w, id, err, sizeof err), 0);
	p = mem_alloc(strlen(dir) + 40);
	sprintf(p, "%s/%s", dir, id);
	b = block_open(p, err, sizeof err);
	if (b == NULL)
		fail_msg("%s", err);
	mem_free(p);
	for (i = 0; i < nseries; i++)
		labels_free(ls[i]);
	mem_free(ls);
	mem_free(order);
	mem_free(v);
	return b;
}

static void
test_block_roundtrip(void **state)
{
	char *dir = tmpdir(), id[BLOCK_ID_LEN + 1];
	struct block *b;
	struct postings_ids all;
	struct tsdb_strings names, vals;
	struct tsdb_iter it;
	unsigned i, checked = 0;
	const int64_t mint = 7200000LL * 1000, maxt = mint + 7200000;

	(void)state;
	b = make_block(dir, 300, mint, maxt, id);
	assert_true(block_is_id(id));
	assert_int_equal(block_meta(b)->nseries, 300);
	assert_int_equal(block_meta(b)->mint, mint);
	assert_int_equal(block_meta(b)->maxt, maxt);
	assert_int_equal(block_meta(b)->nsamples, 300 * 480);
	block_all(b, &all);
	assert_int_equal(all.n, 300);
	iter_init(&it, INT64_MIN, INT64_MAX);
	for (i = 0; i < all.n; i++) {
		struct labels *ls = block_labels(b, all.v[i]);
		unsigned s = 0, k = 0;
		int64_t t;
		double v;
		struct labels *want;

		assert_non_null(ls);
		/* find which series this is: instance host-N, job, name */
		for (s = 0; s < 300; s++) {
			want = series_labels(s);
			if (labels_equal(want, ls)) {
				labels_free(want);
				break;
			}
			labels_free(want);
		}
		assert_true(s < 300);
		if (i > 0) {
			struct labels *prev = block_labels(b, all.v[i - 1]);

			assert_true(labels_compare(prev, ls) < 0);	/* sorted */
			labels_free(prev);
		}
		iter_clear(&it);
		assert_true(block_series_sources(b, all.v[i], &it, 1));
		while (tsdb_iter_next(&it, &t, &v)) {
			assert_int_equal(t, mint + (int64_t)k * 15000 + (int64_t)(s % 7));
			assert_true(bits(v) == value_of(s, mint + (int64_t)k * 15000));
			k++;
			checked++;
		}
		assert_int_equal(k, 480);
		labels_free(ls);
	}
	iter_release(&it);
	assert_int_equal(checked, 300 * 480);
	postings_ids_free(&all);
	block_label_names(b, &names);
	assert_int_equal(names.n, 4);
	assert_string_equal(names.v[0], "__name__");
	assert_string_equal(names.v[3], "zone");
	block_label_values(b, "__name__", &vals);
	assert_int_equal(vals.n, 3);
	assert_string_equal(vals.v[0], "http_requests_total");
	tsdb_strings_free(&names);
	tsdb_strings_free(&vals);
	print_message("block: 300 series x 480 samples written and read back bit for bit, %llu bytes "
	    "(%.2f bytes/sample)\n", (unsigned long long)block_bytes(b),
	    (double)block_bytes(b) / (300.0 * 480));
	block_delete(b);
	block_put(b);
	block_rmdir(dir);
	mem_free(dir);
}

/* brute-force matcher check over the block's series */
static void
test_block_matchers(void **state)
{
	static const char *mnames[] = { "__name__", "job", "instance", "zone", "nope" };
	static const char *mvals[] = { "up", "job1", "job.*", "host-1.*", "", "a", ".+", "temp_celsius|up", "x" };
	char *dir = tmpdir(), id[BLOCK_ID_LEN + 1], err[128];
	struct block *b = make_block(dir, 120, 0, 7200000, id);
	unsigned round, nonempty = 0;

	(void)state;
	for (round = 0; round < 1500; round++) {
		struct matcher *ms[3];
		size_t n = 1 + rnd() % 3, i;
		struct postings_ids got, all;
		size_t k = 0;

		for (i = 0; i < n; i++) {
			enum matcher_op op = (enum matcher_op)(rnd() % 4);

			ms[i] = matcher_new(op, mnames[rnd() % 5], mvals[rnd() % 9], err, sizeof err);
			assert_non_null(ms[i]);
		}
		block_select(b, ms, n, &got);
		block_all(b, &all);
		for (i = 0; i < all.n; i++) {
			struct labels *ls = block_labels(b, all.v[i]);
			bool match = true;
			size_t j;

			for (j = 0; j < n; j++)
				match = match && matcher_matches_labels(ms[j], ls);
			if (match) {
				assert_true(k < got.n);
				assert_int_equal(got.v[k], all.v[i]);
				k++;
			}
			labels_free(ls);
		}
		assert_int_equal(k, got.n);
		nonempty += got.n > 0;
		postings_ids_free(&got);
		postings_ids_free(&all);
		for (i = 0; i < n; i++)
			matcher_free(ms[i]);
	}
	print_message("block matchers: 1500 random matcher sets equal to brute force, %u non-empty\n",
	    nonempty);
	block_delete(b);
	block_put(b);
	block_rmdir(dir);
	mem_free(dir);
}

static void
flip_byte(const char *path, long off_from_end_or_start, bool from_end)
{
	int fd = open(path, O_RDWR);
	struct stat sb;
	uint8_t c;
	off_t off;

	assert_true(fd >= 0);
	fstat(fd, &sb);
	off = from_end ? sb.st_size - off_from_end_or_start : off_from_end_or_start;
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x10;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void
test_block_damage(void **state)
{
	char *dir = tmpdir(), id[BLOCK_ID_LEN + 1], err[512], p[1024];
	struct block *b;
	struct postings_ids all;
	struct tsdb_iter it;
	unsigned i, total = 0;
	int64_t t;

	(void)state;
	/* a flipped byte in the index: refused, naming the file */
	b = make_block(dir, 20, 0, 7200000, id);
	block_put(b);
	snprintf(p, sizeof p, "%s/%s/index", dir, id);
	flip_byte(p, 100, false);
	snprintf(p, sizeof p, "%s/%s", dir, id);
	assert_null(block_open(p, err, sizeof err));
	assert_non_null(strstr(err, "index"));
	assert_non_null(strstr(err, "checksum"));
	/* a flipped byte in a chunk: that chunk is skipped, the rest served */
	b = make_block(dir, 20, 0, 7200000, id);
	block_put(b);
	snprintf(p, sizeof p, "%s/%s/chunks/000001", dir, id);
	flip_byte(p, 500, false);
	snprintf(p, sizeof p, "%s/%s", dir, id);
	b = block_open(p, err, sizeof err);
	assert_non_null(b);
	block_all(b, &all);
	iter_init(&it, INT64_MIN, INT64_MAX);
	for (i = 0; i < all.n; i++) {
		iter_clear(&it);
		block_series_sources(b, all.v[i], &it, 1);
		while (tsdb_iter_next(&it, &t, NULL))
			total++;
	}
	iter_release(&it);
	assert_true(total < 20 * 480 && total >= 19 * 480 - 240);
	postings_ids_free(&all);
	block_put(b);
	/* a truncated chunk file, then a missing one: refused */
	b = make_block(dir, 20, 0, 7200000, id);
	block_put(b);
	snprintf(p, sizeof p, "%s/%s/chunks/000001", dir, id);
	assert_int_equal(truncate(p, 1000), 0);
	snprintf(p, sizeof p, "%s/%s", dir, id);
	assert_null(block_open(p, err, sizeof err));
	assert_non_null(strstr(err, "chunks/000001"));
	snprintf(p, sizeof p, "%s/%s/chunks/000001", dir, id);
	assert_int_equal(unlink(p), 0);
	snprintf(p, sizeof p, "%s/%s", dir, id);
	assert_null(block_open(p, err, sizeof err));
	assert_non_null(strstr(err, "chunks/000001"));
	/* a Prometheus block (another index format) */
	snprintf(p, sizeof p, "%s/%s/index", dir, id);
	{
		FILE *f = fopen(p, "w");
		static const uint8_t prom[] = { 0xba, 0xaa, 0xd7, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

		fwrite(prom, 1, sizeof prom, f);
		fclose(f);
	}
	snprintf(p, sizeof p, "%s/%s", dir, id);
	assert_null(block_open(p, err, sizeof err));
	assert_non_null(strstr(err, "not a strata block"));
	block_rmdir(dir);
	mem_free(dir);
}

/* --- the store --------------------------------------------------------------------------- */

static struct tsdb_db *
open_db(const char *dir, int64_t retention_ms, int64_t retention_bytes, int64_t ooo)
{
	struct tsdb_db_opts o;
	char err[512];
	struct tsdb_db *db;

	memset(&o, 0, sizeof o);
	o.path = dir;
	o.block_range_ms = MIN;
	o.retention_ms = retention_ms;
	o.retention_bytes = retention_bytes;
	o.ooo_window_ms = ooo;
	o.wal_sync = WAL_SYNC_NONE;
	o.no_maintenance = true;
	db = tsdb_db_open(&o, err, sizeof err);
	if (db == NULL)
		fail_msg("open %s: %s", dir, err);
	return db;
}

#define NS 40

/* ingest appends every 5 s from step `from` to `to` (exclusive) for NS
 * series, running maintenance every maint_every steps. */
static void
ingest(struct tsdb_db *db, unsigned from, unsigned to, unsigned maint_every)
{
	struct tsdb_appender *a = tsdb_appender_new(tsdb_db_head(db));
	uint64_t refs[NS] = { 0 };
	unsigned i, s;

	for (i = from; i < to; i++) {
		for (s = 0; s < NS; s++) {
			struct labels *ls = refs[s] ? NULL : series_labels(s);

			assert_int_equal(tsdb_appender_append(a, &refs[s], ls, (int64_t)i * 5000,
			    from_bits(value_of(s, (int64_t)i * 15000))), 0);
			labels_free(ls);
		}
		assert_int_equal(tsdb_appender_commit(a), 0);
		if (maint_every && i % maint_every == maint_every - 1)
			assert_int_equal(tsdb_db_maintain(db), 0);
	}
	tsdb_appender_free(a);
}

/* verify checks steps [from, to) of every series, over [mint, maxt]. */
static void
verify(struct tsdb_db *db, unsigned from, unsigned to)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_REGEX, "job", "job.*", err, sizeof err);
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, (int64_t)from * 5000,
	    (int64_t)(to - 1) * 5000);
	unsigned count = 0;

	while (tsdb_series_set_next(ss)) {
		const struct labels *ls = tsdb_series_set_labels(ss);
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		unsigned s, i = from;
		int64_t t;
		double v;

		for (s = 0; s < NS; s++) {
			struct labels *want = series_labels(s);
			bool eq = labels_equal(want, ls);

			labels_free(want);
			if (eq)
				break;
		}
		assert_true(s < NS);
		while (tsdb_iter_next(it, &t, &v)) {
			if (t != (int64_t)i * 5000)
				fail_msg("series %u: t=%lld, want %lld", s, (long long)t, (long long)i * 5000);
			assert_true(bits(v) == value_of(s, (int64_t)i * 15000));
			i++;
		}
		assert_int_equal(i, to);
		count++;
	}
	assert_int_equal(count, NS);
	tsdb_series_set_free(ss);
	matcher_free(m);
}

static void
test_db_cut_and_compact(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db = open_db(dir, 0, 0, 0);
	struct tsdb_db_stats st;
	struct tsdb_latest *lv;
	size_t nl;
	char err[128];
	struct matcher *m;

	(void)state;
	/* 60 minutes at 5 s: cut as it grows (1-minute blocks) */
	ingest(db, 0, 720, 24);
	tsdb_db_stats(db, &st);
	assert_true(st.head_truncations >= 50);
	assert_true(st.compactions > 0);
	assert_true(st.blocks_loaded < st.head_truncations);	/* merged into larger ranges */
	assert_true(st.head.mint >= 57 * MIN);		/* the head kept only the tail */
	verify(db, 0, 720);
	verify(db, 100, 500);
	/* latest comes from the head; from blocks once the head lets go */
	m = matcher_new(MATCH_EQUAL, "__name__", "up", err, sizeof err);
	tsdb_db_latest(db, &m, 1, 0, &lv, &nl);
	assert_true(nl > 0);
	assert_int_equal(lv[0].t, 719 * 5000);
	tsdb_latest_free(lv, nl);
	print_message("store: 60 min of 1-min blocks: %llu cuts, %llu compactions, %llu blocks, "
	    "%llu bytes\n", (unsigned long long)st.head_truncations,
	    (unsigned long long)st.compactions, (unsigned long long)st.blocks_loaded,
	    (unsigned long long)st.blocks_bytes);
	tsdb_db_close(db);
	/* reopen: same data exactly once */
	db = open_db(dir, 0, 0, 0);
	verify(db, 0, 720);
	ingest(db, 720, 900, 60);
	verify(db, 0, 900);
	tsdb_db_close(db);
	matcher_free(m);
	block_rmdir(dir);
	mem_free(dir);
}

static void
test_db_retention(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db = open_db(dir, 20 * MIN, 0, 0);
	struct tsdb_db_stats st;
	int64_t first;

	(void)state;
	ingest(db, 0, 720, 24);
	tsdb_db_stats(db, &st);
	assert_true(st.retention_time > 0);
	/* whole blocks go: what is left starts at a block boundary, within
	 * retention plus one (capped: a tenth of it) block range of the end */
	first = st.lowest_timestamp;
	assert_true(first % MIN == 0);
	assert_true(first >= 60 * MIN - 20 * MIN - 6 * MIN);
	verify(db, (unsigned)(first / 5000), 720);
	tsdb_db_close(db);
	block_rmdir(dir);
	mem_free(dir);

	/* by size: blocks + WAL under the limit after maintenance */
	dir = tmpdir();
	db = open_db(dir, 0, 60 * 1024, 0);
	ingest(db, 0, 720, 24);
	tsdb_db_stats(db, &st);
	assert_true(st.retention_size > 0);
	assert_true(st.blocks_bytes + st.wal.storage_bytes <= 60 * 1024 ||
	    st.blocks_loaded <= 1);
	assert_int_equal(st.retention_limit_bytes, 60 * 1024);
	print_message("retention: by time kept from %lld ms; by size %llu block bytes + %llu WAL bytes "
	    "<= 61440\n", (long long)first, (unsigned long long)st.blocks_bytes,
	    (unsigned long long)st.wal.storage_bytes);
	tsdb_db_close(db);
	block_rmdir(dir);
	mem_free(dir);
}

static unsigned
count_all(struct tsdb_db *db, const char *name, int64_t mint, int64_t maxt)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_EQUAL, "__name__", name, err, sizeof err);
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, mint, maxt);
	unsigned n = 0;
	int64_t t, prev;

	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);

		prev = INT64_MIN;
		while (tsdb_iter_next(it, &t, NULL)) {
			assert_true(t > prev);
			prev = t;
			n++;
		}
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
	return n;
}

static void
test_db_backfill(void **state)
{
	char *dir = tmpdir(), id[BLOCK_ID_LEN + 1];
	struct tsdb_db *db = open_db(dir, 0, 0, 2 * MIN);
	struct tsdb_head *h = tsdb_db_head(db);
	struct tsdb_appender *a;
	struct labels *ls = series_labels(1);	/* "up" */
	struct tsdb_db_stats st;
	struct block *b;
	uint64_t ref = 0;
	int64_t t;

	(void)state;
	/* live data for 30 minutes, cut into blocks */
	ingest(db, 0, 360, 24);
	assert_int_equal(count_all(db, "up", INT64_MIN, INT64_MAX), 13 * 360);
	/* gap repair: the unrestricted appender rewrites minutes 2-8 (every
	 * sample already there, identical) and adds samples between them */
	a = tsdb_appender_new_unrestricted(h);
	for (t = 2 * MIN + 2500; t < 8 * MIN; t += 5000)
		assert_int_equal(tsdb_appender_append(a, &ref, ls, t, 42), 0);
	assert_int_equal(tsdb_appender_commit(a), 0);
	tsdb_appender_free(a);
	assert_int_equal(count_all(db, "up", INT64_MIN, INT64_MAX), 13 * 360 + 72);
	/* the flush and cut move them into overlapping blocks; compaction
	 * merges those; nothing is lost or doubled */
	ingest(db, 360, 400, 0);
	assert_int_equal(tsdb_db_maintain(db), 0);
	tsdb_db_stats(db, &st);
	assert_int_equal(st.head.ooo_samples, 0);
	assert_int_equal(count_all(db, "up", INT64_MIN, INT64_MAX), 13 * 400 + 72);
	assert_int_equal(count_all(db, "up", 2 * MIN, 8 * MIN - 1), 13 * 72 + 72);
	/* a block dropped into the directory (an import) is picked up */
	b = make_block(dir, 12, -240 * MIN, -180 * MIN, id);
	block_put(b);
	assert_int_equal(tsdb_db_maintain(db), 0);
	assert_int_equal(count_all(db, "http_requests_total", -240 * MIN, -180 * MIN), 4 * 240);
	tsdb_db_close(db);
	db = open_db(dir, 0, 0, 2 * MIN);
	assert_int_equal(count_all(db, "up", INT64_MIN, INT64_MAX), 13 * 400 + 72 + 4 * 240);
	tsdb_db_close(db);
	labels_free(ls);
	block_rmdir(dir);
	mem_free(dir);
}

static void
test_db_status(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db = open_db(dir, 0, 0, 0);
	struct tsdb_status st;
	size_t i;

	(void)state;
	tsdb_db_status(db, 10, &st);
	assert_int_equal(st.num_series, 0);
	assert_int_equal(st.min_time, INT64_MAX);	/* as Prometheus shows an empty head */
	assert_int_equal(st.max_time, INT64_MIN);
	tsdb_status_free(&st);
	ingest(db, 0, 3, 0);	/* NS series of series_labels(0..NS) */
	tsdb_db_status(db, 3, &st);
	assert_int_equal(st.num_series, NS);
	assert_int_equal(st.chunk_count, NS);
	assert_int_equal(st.min_time, 0);
	assert_int_equal(st.max_time, 10000);
	/* names: 3 metrics; instance host-0..13; job0..3; zone a */
	assert_int_equal(st.num_label_pairs, 3 + 14 + 4 + 1);
	assert_int_equal(st.card.nmetrics, 3);
	assert_string_equal(st.card.metrics[0].name, "http_requests_total");	/* 14 series */
	assert_int_equal(st.card.metrics[0].count, 14);
	assert_string_equal(st.card.metrics[1].name, "temp_celsius");	/* 13, ties by name */
	assert_int_equal(st.card.metrics[1].count, 13);
	assert_string_equal(st.card.metrics[2].name, "up");
	assert_int_equal(st.card.nlabels, 3);	/* top 3 of 4 names */
	assert_string_equal(st.card.labels[0].name, "instance");
	assert_int_equal(st.card.labels[0].count, 14);
	assert_string_equal(st.card.labels[1].name, "job");
	assert_string_equal(st.card.labels[2].name, "__name__");
	assert_string_equal(st.card.pairs[0].name, "__name__=http_requests_total");
	assert_int_equal(st.card.pairs[0].count, 14);
	assert_string_equal(st.card.pairs[1].name, "__name__=temp_celsius");	/* ties by name */
	for (i = 0; i < st.card.nmemory; i++)
		if (strcmp(st.card.memory[i].name, "job") == 0)
			assert_int_equal(st.card.memory[i].count, 4 * NS);	/* "jobN" x 40 */
	assert_string_equal(st.card.memory[0].name, "instance");
	tsdb_status_free(&st);
	tsdb_db_close(db);
	block_rmdir(dir);
	mem_free(dir);
}

static void
test_db_foreign_dir(void **state)
{
	char *dir = tmpdir(), p[1024], err[512];
	struct tsdb_db_opts o;

	(void)state;
	snprintf(p, sizeof p, "%s/chunks_head", dir);
	assert_int_equal(mkdir(p, 0777), 0);
	memset(&o, 0, sizeof o);
	o.path = dir;
	o.no_maintenance = true;
	assert_null(tsdb_db_open(&o, err, sizeof err));
	assert_non_null(strstr(err, "chunks_head"));
	block_rmdir(dir);
	mem_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_roundtrip),
		cmocka_unit_test(test_pack_size),
		cmocka_unit_test(test_pack_corrupt),
		cmocka_unit_test(test_block_roundtrip),
		cmocka_unit_test(test_block_matchers),
		cmocka_unit_test(test_block_damage),
		cmocka_unit_test(test_db_cut_and_compact),
		cmocka_unit_test(test_db_retention),
		cmocka_unit_test(test_db_backfill),
		cmocka_unit_test(test_db_status),
		cmocka_unit_test(test_db_foreign_dir),
	};

	log_setup("error", "logfmt", NULL, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
