/* tests/unit/test_tsdb_wal.c - lib/tsdb durability: CRC-32C, the WAL, replay,
 * checkpoints, out-of-order writes and the store's lock.
 *
 * WAL: record framing round trips (values bit for bit: NaN payloads, the
 * stale marker, +-Inf, -0, integers, large ids and deltas), torn tails and
 * flipped bytes repaired by truncation with what was intact kept, a log
 * written by another program refused, write failures (RLIMIT_FSIZE) refused
 * and recovered from. Store: a child process appends and is SIGKILLed, the
 * parent reopens and finds every committed sample exactly once; the same
 * across a checkpoint; out-of-order and unrestricted writes, their replay;
 * a second open of a locked directory refused.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "tsdb/crc32c.h"
#include "tsdb/db.h"
#include "tsdb/enc.h"
#include "tsdb/hchunks.h"
#include "tsdb/head.h"
#include "tsdb/iter.h"
#include "tsdb/wal.h"
#include "util/log.h"
#include "util/mem.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t
rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* tmpdir makes a fresh directory under $TMPDIR. */
static char *
tmpdir(void)
{
	char tmpl[256];
	const char *base = getenv("TMPDIR");

	snprintf(tmpl, sizeof tmpl, "%s/strata-tsdb-XXXXXX", base ? base : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	return mem_strdup(tmpl);
}

static void
rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		char p[1024];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", path, de->d_name);
		rm_rf(p);
	}
	closedir(d);
	(void)rmdir(path);
}

static struct labels *
mk_labels(const char *name, const char *k, const char *v)
{
	struct label l[2] = { { "__name__", name }, { k, v } };

	return labels_new(l, k ? 2 : 1);
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

/* --- CRC-32C --------------------------------------------------------------------------- */

static void
test_crc32c(void **state)
{
	uint8_t buf[1000];
	size_t i;

	(void)state;
	assert_int_equal(crc32c("123456789", 9), 0xe3069283u);
	assert_int_equal(crc32c_update_portable(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(crc32c("", 0), 0);
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (uint8_t)rnd();
	for (i = 0; i < 300; i++) {
		size_t off = rnd() % 16, len = rnd() % (sizeof buf - 16), cut = len ? rnd() % len : 0;
		uint32_t whole = crc32c(buf + off, len);

		assert_int_equal(whole, crc32c_update_portable(0, buf + off, len));
		assert_int_equal(whole, crc32c_update(crc32c(buf + off, cut), buf + off + cut, len - cut));
	}
}

/* --- WAL records ---------------------------------------------------------------------------- */

struct collected {
	struct tsdb_log_sample *v;
	size_t n, cap;
	size_t nseries;
	uint32_t series_ids[64];
	struct labels *series_ls[64];
	uint64_t records;
};

static void
collect_series(void *arg, uint32_t id, struct labels *ls)
{
	struct collected *c = arg;

	if (c->nseries < 64) {
		c->series_ids[c->nseries] = id;
		c->series_ls[c->nseries++] = ls;
	} else {
		labels_free(ls);
	}
}

static void
collect(void *arg, uint8_t type, const uint8_t *p, size_t len, uint32_t seg)
{
	struct collected *c = arg;
	struct wal_samples_dec d;
	struct tsdb_log_sample x;

	(void)seg;
	c->records++;
	if (type == WAL_SERIES) {
		assert_int_equal(wal_dec_series(p, len, collect_series, c), 0);
		return;
	}
	assert_int_equal(type, WAL_SAMPLES);
	wal_samples_init(&d, p, len);
	while (wal_samples_next(&d, &x)) {
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->v = mem_realloc(c->v, c->cap * sizeof *c->v);
		}
		c->v[c->n++] = x;
	}
	assert_false(d.err);
}

static void
collected_free(struct collected *c)
{
	size_t i;

	for (i = 0; i < c->nseries; i++)
		labels_free(c->series_ls[i]);
	mem_free(c->v);
	memset(c, 0, sizeof *c);
}

static const uint64_t special_bits[] = {
	CHUNK_STALE_NAN_BITS,
	UINT64_C(0x7ff8000000000001),	/* Go's NaN */
	UINT64_C(0x7ff8000000000000),
	UINT64_C(0xfff8000000000000),	/* negative quiet NaN */
	UINT64_C(0x7ff0000000000000),	/* +Inf */
	UINT64_C(0xfff0000000000000),	/* -Inf */
	UINT64_C(0x8000000000000000),	/* -0 */
	UINT64_C(0x0000000000000000),
	UINT64_C(0x0000000000000001),	/* smallest subnormal */
	UINT64_C(0x4330000000000000),	/* 2^52 */
	UINT64_C(0x4340000000000000),	/* 2^53 */
	UINT64_C(0xc330000000000000),	/* -2^52 */
};

/* make_samples fills v with n samples: ids and times moving both ways,
 * specials, integers and random bits. */
static void
make_samples(struct tsdb_log_sample *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		v[i].id = 1 + (uint32_t)(rnd() % (i % 7 == 0 ? UINT32_MAX - 2 : 1000));
		v[i].t = i % 5 == 0 ? (int64_t)rnd() : (int64_t)(1700000000000LL + (int64_t)(rnd() % 100000) - 50000);
		switch (i % 4) {
		case 0: v[i].v = special_bits[i / 4 % (sizeof special_bits / sizeof special_bits[0])]; break;
		case 1: v[i].v = bits((double)(int64_t)(rnd() % 2000001) - 1000000); break;
		case 2: v[i].v = rnd(); break;
		default: v[i].v = bits((double)(rnd() % 1000) / 100.0); break;
		}
	}
}

static void
test_wal_roundtrip(void **state)
{
	char *dir = tmpdir(), err[512];
	struct wal_opts wo = { 64 * 1024, WAL_SYNC_COMMIT, 0 };
	struct collected c = { 0 };
	struct tsdb_log_sample *v = mem_alloc(20000 * sizeof *v);
	struct labels *ls[3];
	struct tsdb_log_series s[3];
	struct wal_stats st;
	struct wal *w;
	uint64_t pos;
	size_t i, k;

	(void)state;
	make_samples(v, 20000);
	ls[0] = mk_labels("up", "job", "a");
	ls[1] = mk_labels("up", "job", "b\xe2\x82\xac\"\\\n");
	ls[2] = mk_labels("x", NULL, NULL);
	for (i = 0; i < 3; i++) {
		s[i].id = (uint32_t)(i + 1) * 1000003u;
		s[i].ls = ls[i];
	}
	w = wal_open(dir, &wo, collect, &c, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(c.records, 0);
	assert_int_equal(wal_log(w, s, 3, v, 10, &pos), 0);
	wal_wait(w, pos);	/* group commit returns once synced */
	for (i = 10; i < 20000; i += k) {
		k = 1 + rnd() % 700;
		if (i + k > 20000)
			k = 20000 - i;
		assert_int_equal(wal_log(w, NULL, 0, v + i, k, NULL), 0);
	}
	wal_stats(w, &st);
	assert_true(st.segment_current > 0);	/* 64 KiB segments rolled */
	assert_true(st.fsyncs > 0);
	wal_close(w);

	w = wal_open(dir, &wo, collect, &c, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(c.n, 20000);
	for (i = 0; i < 20000; i++) {
		assert_int_equal(c.v[i].id, v[i].id);
		assert_int_equal(c.v[i].t, v[i].t);
		assert_true(c.v[i].v == v[i].v);	/* bit for bit */
	}
	assert_int_equal(c.nseries, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(c.series_ids[i], s[i].id);
		assert_true(labels_equal(c.series_ls[i], ls[i]));
	}
	wal_stats(w, &st);
	assert_int_equal(st.corruptions, 0);
	wal_close(w);
	print_message("wal round trip: 20000 samples (NaN payloads, stale, +-Inf, -0, ints, random bits), "
	    "3 series, %u segments of 64 KiB\n", (unsigned)st.segment_current);
	collected_free(&c);
	for (i = 0; i < 3; i++)
		labels_free(ls[i]);
	mem_free(v);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_wal_encoding_size(void **state)
{
	struct enc e = { NULL, 0, 0 };
	struct tsdb_log_sample v[1000];
	size_t i;

	(void)state;
	/* one scrape: consecutive ids, one timestamp, counter-like values */
	for (i = 0; i < 1000; i++) {
		v[i].id = (uint32_t)(5000 + i);
		v[i].t = 1700000000000LL;
		v[i].v = bits((double)(i * 37));
	}
	wal_encode_samples(&e, v, 1000);
	print_message("wal samples record: %.2f bytes/sample for a scrape of integer values\n",
	    (double)e.len / 1000);
	assert_true(e.len < 1000 * 6);
	enc_free(&e);
}

/* seg_file returns the path of segment n in dir. */
static void
seg_file(char *out, size_t len, const char *dir, unsigned n)
{
	snprintf(out, len, "%s/%08u", dir, n);
}

static off_t
fsize(const char *p)
{
	struct stat sb;

	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

/* write_log writes nrec records of 100 samples each (sample i has t == i). */
static void
write_log(const char *dir, size_t seg_size, size_t nrec)
{
	struct wal_opts wo = { seg_size, WAL_SYNC_NONE, 0 };
	struct tsdb_log_sample v[100];
	char err[512];
	struct wal *w = wal_open(dir, &wo, NULL, NULL, err, sizeof err);
	size_t r, i;

	assert_non_null(w);
	for (r = 0; r < nrec; r++) {
		for (i = 0; i < 100; i++) {
			v[i].id = 1;
			v[i].t = (int64_t)(r * 100 + i);
			v[i].v = rnd();
		}
		assert_int_equal(wal_log(w, NULL, 0, v, 100, NULL), 0);
	}
	wal_close(w);
}

static void
check_prefix(const struct collected *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		assert_int_equal(c->v[i].t, (int64_t)i);
}

static void
test_wal_torn_tail(void **state)
{
	char *dir = tmpdir(), err[512], p[1024];
	struct collected c = { 0 };
	struct wal_stats st;
	struct wal *w;
	off_t sz;

	(void)state;
	write_log(dir, 0, 50);
	seg_file(p, sizeof p, dir, 0);
	sz = fsize(p);
	assert_int_equal(truncate(p, sz - 37), 0);	/* torn inside the last record */
	w = wal_open(dir, NULL, collect, &c, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(c.n, 4900);	/* the 49 whole records */
	check_prefix(&c);
	wal_stats(w, &st);
	assert_int_equal(st.corruptions, 1);
	assert_true(fsize(p) < sz - 37);	/* cut at the last good record */
	wal_close(w);
	/* a second open finds a clean log: same records, no new repair */
	collected_free(&c);
	w = wal_open(dir, NULL, collect, &c, err, sizeof err);
	assert_non_null(w);
	assert_int_equal(c.n, 4900);
	wal_stats(w, &st);
	assert_int_equal(st.corruptions, 0);
	wal_close(w);
	collected_free(&c);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_wal_corrupt_middle(void **state)
{
	char *dir = tmpdir(), err[512], p[1024];
	struct collected c = { 0 };
	struct wal_stats st;
	struct wal *w;
	uint8_t b;
	int fd;
	off_t sz;

	(void)state;
	write_log(dir, 64 * 1024, 400);	/* several segments */
	seg_file(p, sizeof p, dir, 1);
	sz = fsize(p);
	assert_true(sz > 10000);
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, sz / 2), 1);
	b ^= 0x40;	/* one flipped bit in a sample */
	assert_int_equal(pwrite(fd, &b, 1, sz / 2), 1);
	close(fd);
	w = wal_open(dir, NULL, collect, &c, err, sizeof err);
	assert_non_null(w);
	check_prefix(&c);
	assert_true(c.n > 0 && c.n < 40000);
	assert_int_equal(c.n % 100, 0);
	seg_file(p, sizeof p, dir, 3);
	assert_int_equal(fsize(p), -1);	/* later segments were deleted */
	seg_file(p, sizeof p, dir, 2);
	assert_int_equal(fsize(p), 8);	/* and writing starts after the repaired one */
	wal_stats(w, &st);
	assert_int_equal(st.corruptions, 1);
	assert_true(st.dropped_bytes > 0);
	print_message("wal corruption: flipped bit in segment 1 of %u: kept %zu of 40000 samples\n",
	    (unsigned)st.segment_current, c.n);
	wal_close(w);
	collected_free(&c);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_wal_foreign(void **state)
{
	char *dir = tmpdir(), err[512], p[1024];
	/* the start of a Prometheus WAL segment: a full record of a series */
	static const uint8_t prom[] = { 0x01, 0x00, 0x0c, 0x9a, 0x3b, 0x2c, 0x11, 0x01, 0x01, 0x02 };
	int fd;

	(void)state;
	seg_file(p, sizeof p, dir, 0);
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(write(fd, prom, sizeof prom), (ssize_t)sizeof prom);
	close(fd);
	assert_null(wal_open(dir, NULL, NULL, NULL, err, sizeof err));
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "not a strata WAL"));
	assert_int_equal(fsize(p), (off_t)sizeof prom);	/* untouched */
	rm_rf(dir);
	mem_free(dir);
}

/* --- the store: crash, replay, checkpoint ---------------------------------------------------------- */

static struct tsdb_db *
open_db(const char *dir, int64_t ooo_window)
{
	struct tsdb_db_opts o;
	char err[512];
	struct tsdb_db *db;

	memset(&o, 0, sizeof o);
	o.path = dir;
	o.ooo_window_ms = ooo_window;
	o.no_maintenance = true;
	db = tsdb_db_open(&o, err, sizeof err);
	if (db == NULL)
		fail_msg("open %s: %s", dir, err);
	return db;
}

/* expected value of series s at step i */
static uint64_t
value_at(unsigned s, unsigned i)
{
	if (i % 97 == 96)
		return CHUNK_STALE_NAN_BITS;
	switch (s % 4) {
	case 0: return bits((double)(i * (s + 1)));
	case 1: return bits((double)i / 8.0 + s);
	case 2: return i % 50 == 7 ? UINT64_C(0x7ff8000000000001) : bits(sin(i) * s);
	default: return i % 31 == 3 ? bits(-INFINITY) : bits(1e300 * i);
	}
}

#define NSERIES 60

/* append_steps appends steps [from, to) to NSERIES series, one commit per step. */
static void
append_steps(struct tsdb_head *h, unsigned from, unsigned to)
{
	struct tsdb_appender *a = tsdb_appender_new(h);
	uint64_t refs[NSERIES] = { 0 };
	unsigned i, s;

	for (i = from; i < to; i++) {
		for (s = 0; s < NSERIES; s++) {
			char v[16];
			struct labels *ls = NULL;

			if (refs[s] == 0) {
				snprintf(v, sizeof v, "s%u", s);
				ls = mk_labels(s % 2 ? "metric_a" : "metric_b", "id", v);
			}
			assert_int_equal(tsdb_appender_append(a, &refs[s], ls,
			    1700000000000LL + (int64_t)i * 15000, from_bits(value_at(s, i))), 0);
			labels_free(ls);
		}
		assert_int_equal(tsdb_appender_commit(a), 0);
	}
	tsdb_appender_free(a);
}

/* check_steps checks that the store holds exactly steps [0, n) of every series. */
static void
check_steps(struct tsdb_db *db, unsigned n)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_REGEX, "__name__", "metric_.*", err, sizeof err);
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, INT64_MIN, INT64_MAX);
	unsigned count = 0;

	while (tsdb_series_set_next(ss)) {
		const struct labels *ls = tsdb_series_set_labels(ss);
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		unsigned s = (unsigned)atoi(labels_get(ls, "id") + 1), i = 0;
		int64_t t;
		double v;

		while (tsdb_iter_next(it, &t, &v)) {
			assert_int_equal(t, 1700000000000LL + (int64_t)i * 15000);
			if (bits(v) != value_at(s, i))
				fail_msg("series %u step %u: %016llx, want %016llx", s, i,
				    (unsigned long long)bits(v), (unsigned long long)value_at(s, i));
			i++;
		}
		assert_int_equal(i, n);
		count++;
	}
	assert_int_equal(count, n > 0 ? NSERIES : 0);
	tsdb_series_set_free(ss);
	matcher_free(m);
}

/* crash_child runs fn in a child process that is SIGKILLed right after. */
static void
crash_child(const char *dir, unsigned from, unsigned to, bool checkpoint_midway)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct tsdb_db *db = open_db(dir, 0);

		append_steps(tsdb_db_head(db), from, (from + to) / 2);
		if (checkpoint_midway && tsdb_db_checkpoint(db) != 0)
			_exit(3);
		append_steps(tsdb_db_head(db), (from + to) / 2, to);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static void
test_db_crash_replay(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db;
	struct tsdb_db_stats st;

	(void)state;
	crash_child(dir, 0, 300, false);
	db = open_db(dir, 0);
	check_steps(db, 300);
	tsdb_db_stats(db, &st);
	assert_int_equal(st.head.series, NSERIES);
	assert_int_equal(st.wal.corruptions, 0);
	tsdb_db_close(db);
	/* again across a checkpoint taken midway, then the close's checkpoint */
	crash_child(dir, 300, 700, true);
	db = open_db(dir, 0);
	check_steps(db, 700);
	append_steps(tsdb_db_head(db), 700, 710);
	tsdb_db_close(db);
	db = open_db(dir, 0);
	check_steps(db, 710);
	tsdb_db_stats(db, &st);
	assert_int_equal(st.head.series, NSERIES);
	/* what the checkpoints covered is gone */
	assert_true(st.wal.segment_first > 0);
	print_message("store: SIGKILL after 300 and 700 commits, checkpoint midway: %u series x 710 "
	    "samples back exactly; replay %.3fs\n", NSERIES, st.replay_seconds);
	tsdb_db_close(db);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_db_lock(void **state)
{
	char *dir = tmpdir(), err[512];
	struct tsdb_db_opts o;
	struct tsdb_db *db = open_db(dir, 0), *db2;
	pid_t pid;
	int status;

	(void)state;
	memset(&o, 0, sizeof o);
	o.path = dir;
	o.no_maintenance = true;
	/* another process is refused while we hold the lock */
	pid = fork();
	if (pid == 0) {
		db2 = tsdb_db_open(&o, err, sizeof err);
		_exit(db2 == NULL && strstr(err, "lock") != NULL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	tsdb_db_close(db);
	db2 = tsdb_db_open(&o, err, sizeof err);
	assert_non_null(db2);
	tsdb_db_close(db2);
	rm_rf(dir);
	mem_free(dir);
}

static unsigned
count_samples(struct tsdb_db *db, const char *name, int64_t *first, int64_t *last)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_EQUAL, "__name__", name, err, sizeof err);
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, INT64_MIN, INT64_MAX);
	unsigned n = 0;
	int64_t t, prev = INT64_MIN;

	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);

		while (tsdb_iter_next(it, &t, NULL)) {
			assert_true(t > prev);
			if (n == 0 && first)
				*first = t;
			prev = t;
			n++;
		}
	}
	if (last)
		*last = prev;
	tsdb_series_set_free(ss);
	matcher_free(m);
	return n;
}

static void
test_db_out_of_order(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db = open_db(dir, 600000);	/* 10 min window */
	struct tsdb_head *h = tsdb_db_head(db);
	struct labels *ls = mk_labels("ooo", "k", "v");
	struct tsdb_appender *a;
	struct tsdb_head_stats hs;
	uint64_t ref = 0;
	int64_t base = 1700000000000LL, first, last, t;
	int i;

	(void)state;
	for (i = 0; i < 100; i++)
		assert_int_equal(tsdb_head_append(h, &ref, ls, base + i * 10000, i), 0);
	/* within the window: accepted; the same again: a duplicate; another
	 * value at that time: refused; before the window: too old */
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 985000, 1), 0);
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 985000, 1), 0);
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 985000, 2), TSDB_ERR_DUPLICATE);
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 500000, 5), TSDB_ERR_DUPLICATE);
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 500000, 50), 0);	/* identical in order */
	assert_int_equal(tsdb_head_append(h, &ref, ls, base + 5000, 1), TSDB_ERR_TOO_OLD);
	for (t = base + 400005; t < base + 990000; t += 10000)
		assert_int_equal(tsdb_head_append(h, &ref, ls, t, -1), 0);
	tsdb_head_stats(h, &hs);
	assert_int_equal(hs.ooo_samples, 60);
	assert_int_equal(hs.too_old, 1);
	assert_int_equal(count_samples(db, "ooo", &first, &last), 160);
	assert_int_equal(first, base);
	assert_int_equal(last, base + 990000);
	/* an unrestricted appender writes anywhere, a plain one only in order */
	a = tsdb_appender_new_unrestricted(h);
	for (i = 0; i < 10; i++)
		assert_int_equal(tsdb_appender_append(a, &ref, NULL, base - 86400000 + i, 7), 0);
	assert_int_equal(tsdb_appender_commit(a), 0);
	tsdb_appender_free(a);
	assert_int_equal(count_samples(db, "ooo", &first, NULL), 170);
	assert_int_equal(first, base - 86400000);
	tsdb_db_close(db);
	/* all of it comes back from the checkpoint */
	db = open_db(dir, 600000);
	assert_int_equal(count_samples(db, "ooo", &first, &last), 170);
	assert_int_equal(first, base - 86400000);
	tsdb_db_close(db);
	labels_free(ls);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_db_ooo_replay_after_crash(void **state)
{
	char *dir = tmpdir();
	struct tsdb_db *db;
	pid_t pid = fork();
	int status;

	(void)state;
	assert_true(pid >= 0);
	if (pid == 0) {
		struct labels *ls = mk_labels("late", NULL, NULL);
		struct tsdb_appender *a;
		uint64_t ref = 0;
		int i;

		db = open_db(dir, 0);
		for (i = 0; i < 50; i++)
			tsdb_head_append(tsdb_db_head(db), &ref, ls, 1000000 + i * 1000, i);
		a = tsdb_appender_new_unrestricted(tsdb_db_head(db));
		for (i = 0; i < 50; i++)
			tsdb_appender_append(a, &ref, NULL, 500 + i * 1000, -i);
		tsdb_appender_commit(a);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	db = open_db(dir, 0);
	assert_int_equal(count_samples(db, "late", NULL, NULL), 100);
	tsdb_db_close(db);
	rm_rf(dir);
	mem_free(dir);
}

static void
test_db_checkpoint_kept(void **state)
{
	char *dir = tmpdir(), p[1024];
	/* a checkpoint whose one record frames and checksums well but does not
	 * decode (what an older strata makes of a newer format) */
	static const uint8_t payload[] = { 0x05, 0x01, 0x01, 'a', 0x01 };
	uint8_t rec[9 + sizeof payload], type = WAL_SNAP_SERIES;
	uint32_t crc = crc32c_update(crc32c_update(0, &type, 1), payload, sizeof payload);
	struct tsdb_db *db;
	struct stat sb;
	FILE *f;

	(void)state;
	snprintf(p, sizeof p, "%s/wal", dir);
	assert_int_equal(mkdir(p, 0777), 0);
	snprintf(p, sizeof p, "%s/wal/checkpoint.00000003", dir);
	f = fopen(p, "w");
	put_u32le(rec, sizeof payload);
	put_u32le(rec + 4, crc);
	rec[8] = type;
	memcpy(rec + 9, payload, sizeof payload);
	fwrite("STRWAL\0\1", 1, 8, f);
	fwrite(rec, 1, sizeof rec, f);
	fclose(f);
	db = open_db(dir, 0);
	append_steps(tsdb_db_head(db), 0, 5);
	assert_int_equal(tsdb_db_checkpoint(db), 0);	/* replaces checkpoint.00000003 */
	tsdb_db_close(db);
	snprintf(p, sizeof p, "%s/wal/checkpoint.00000003.damaged", dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_size, 8 + (off_t)sizeof rec);
	snprintf(p, sizeof p, "%s/wal/checkpoint.00000003", dir);
	assert_int_not_equal(stat(p, &sb), 0);
	db = open_db(dir, 0);
	check_steps(db, 5);
	tsdb_db_close(db);
	rm_rf(dir);
	mem_free(dir);
}

/* --- write failures ---------------------------------------------------------------------------- */

static void
test_db_write_failure(void **state)
{
	char *dir = tmpdir();
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* RLIMIT_FSIZE stands in for a full disk: writes past it fail */
		struct rlimit rl;
		struct tsdb_db *db = open_db(dir, 0);
		struct labels *ls = mk_labels("full", NULL, NULL);
		struct tsdb_db_stats st;
		uint64_t ref = 0;
		int i, rc = 0, ok = 0, failed = 0;

		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = 64 * 1024;
		setrlimit(RLIMIT_FSIZE, &rl);
		for (i = 0; i < 20000 && failed < 10; i++) {
			rc = tsdb_head_append(tsdb_db_head(db), &ref, ls, i, i);
			if (rc == 0)
				ok++;
			else if (rc == TSDB_ERR_IO)
				failed++;
			else
				_exit(10);
		}
		tsdb_db_stats(db, &st);
		if (failed == 0 || st.head.samples_appended != (uint64_t)ok || !st.wal.failing)
			_exit(11);
		/* reads keep working */
		if (count_samples(db, "full", NULL, NULL) != (unsigned)ok)
			_exit(12);
		/* space comes back: writes resume */
		rl.rlim_cur = RLIM_INFINITY;
		setrlimit(RLIMIT_FSIZE, &rl);
		for (i = 20000; i < 20100; i++)
			if (tsdb_head_append(tsdb_db_head(db), &ref, ls, i, i) != 0)
				_exit(13);
		tsdb_db_stats(db, &st);
		if (st.wal.failing)
			_exit(14);
		printf("[ INFO   ] wal write failure: %d commits ok, %d refused, then 100 more ok\n",
		    ok, failed);
		fflush(stdout);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		fail_msg("child exited %d", WEXITSTATUS(status));
	{
		struct tsdb_db *db = open_db(dir, 0);
		struct tsdb_db_stats st;
		unsigned n = count_samples(db, "full", NULL, NULL);

		tsdb_db_stats(db, &st);
		assert_true(n > 100);
		assert_int_equal(st.wal.corruptions, 0);	/* no torn record left */
		tsdb_db_close(db);
	}
	rm_rf(dir);
	mem_free(dir);
}

/* --- closed head chunks in files (lib/tsdb/hchunks.h) ------------------------------------------- */

/* hc_files counts the files under dir/head_chunks; *first gets the lowest
 * number's path. */
static unsigned
hc_files(const char *dir, char *first, size_t flen)
{
	char p[512];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;
	long lo = -1;

	snprintf(p, sizeof p, "%s/head_chunks", dir);
	d = opendir(p);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		if (lo < 0 || atol(de->d_name) < lo) {
			lo = atol(de->d_name);
			if (first != NULL)
				snprintf(first, flen, "%.500s/%.200s", p, de->d_name);
		}
	}
	closedir(d);
	return n;
}

/* check_damaged reads every series: each sample served is the right one;
 * returns how many there were and whether a read reported damage. */
static unsigned
check_served(struct tsdb_db *db, bool *damaged)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_REGEX, "__name__", "metric_.*", err, sizeof err);
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, INT64_MIN, INT64_MAX);
	unsigned total = 0;

	*damaged = false;
	while (tsdb_series_set_next(ss)) {
		const struct labels *ls = tsdb_series_set_labels(ss);
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		unsigned s = (unsigned)atoi(labels_get(ls, "id") + 1);
		int64_t t;
		double v;

		while (tsdb_iter_next(it, &t, &v)) {
			unsigned i = (unsigned)((t - 1700000000000LL) / 15000);

			assert_int_equal(t, 1700000000000LL + (int64_t)i * 15000);
			assert_true(bits(v) == value_at(s, i));
			total++;
		}
		if (it->err != 0)
			*damaged = true;
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
	return total;
}

static void
test_db_head_chunk_files(void **state)
{
	char *dir = tmpdir(), first[1024];
	struct tsdb_db *db;
	struct tsdb_db_stats st;
	unsigned nfiles, served;
	bool damaged;
	int fd;
	uint8_t b[64];
	off_t sz;

	(void)state;
	/* closed chunks are written to head_chunks/ and read back from there */
	db = open_db(dir, 0);
	append_steps(tsdb_db_head(db), 0, 400);
	tsdb_db_stats(db, &st);
	assert_true(st.hchunks.chunks_written >= 2 * NSERIES);
	assert_int_equal(st.hchunks.write_failures, 0);
	assert_true(st.hchunks.bytes > 0);
	check_steps(db, 400);
	/* the checkpoint names them by position instead of copying them */
	assert_int_equal(tsdb_db_checkpoint(db), 0);
	tsdb_db_stats(db, &st);
	assert_true(st.wal.checkpoint_bytes < st.hchunks.bytes);
	tsdb_db_close(db);
	db = open_db(dir, 0);
	check_steps(db, 400);
	tsdb_db_stats(db, &st);
	assert_int_equal(st.hchunks.bad_reads, 0);
	tsdb_db_close(db);
	/* crash after chunks were written past a checkpoint: the replay writes
	 * them again, and the files no chunk lives in any more go */
	crash_child(dir, 400, 1000, true);
	nfiles = hc_files(dir, NULL, 0);
	db = open_db(dir, 0);
	check_steps(db, 1000);
	assert_true(hc_files(dir, NULL, 0) <= nfiles + 1);
	/* a head cut into a block lets go of its chunks: their files are
	 * deleted once a checkpoint no longer names them */
	tsdb_db_stats(db, &st);
	nfiles = st.hchunks.files;
	assert_int_equal(tsdb_db_maintain(db), 0);
	tsdb_db_stats(db, &st);
	assert_true(st.blocks_loaded >= 1);
	assert_true(st.hchunks.files < nfiles);
	check_steps(db, 1000);
	append_steps(tsdb_db_head(db), 1000, 1200);
	tsdb_db_close(db);
	/* damage: a flipped byte in a chunk record is found, the chunk is
	 * skipped and counted; everything served is still right */
	assert_true(hc_files(dir, first, sizeof first) >= 1);
	fd = open(first, O_RDWR);
	assert_true(fd >= 0);
	sz = lseek(fd, 0, SEEK_END);
	assert_true(sz > 200);
	assert_int_equal(pread(fd, b, 1, sz / 2), 1);
	b[0] ^= 0x10;
	assert_int_equal(pwrite(fd, b, 1, sz / 2), 1);
	close(fd);
	db = open_db(dir, 0);
	served = check_served(db, &damaged);
	tsdb_db_stats(db, &st);
	assert_true(damaged);
	assert_true(st.hchunks.bad_reads >= 1);
	assert_true(served < 1200 * NSERIES && served > 1000 * NSERIES / 2);
	tsdb_db_close(db);
	/* a missing file: the checkpoint's series come back without its chunks */
	assert_true(hc_files(dir, first, sizeof first) >= 1);
	assert_int_equal(unlink(first), 0);
	db = open_db(dir, 0);
	served = check_served(db, &damaged);
	assert_true(served < 1200 * NSERIES && served > 0);
	print_message("head chunk files: 1200 steps x %u series; checkpoint and crash replays "
	    "exact; a flipped byte and a missing file lose their chunks only (%u of %u "
	    "samples served, all right)\n", NSERIES, served, 1200 * NSERIES);
	tsdb_db_close(db);
	rm_rf(dir);
	mem_free(dir);
}

/* a head whose chunk files cannot be written keeps the chunks in memory */
static void
test_head_chunk_write_failure(void **state)
{
	char *dir = tmpdir();
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256], p[1024];
		struct hchunks_stats hs;
		struct hchunks *hc;
		struct tsdb_head *h = tsdb_head_new(NULL, err, sizeof err);
		struct rlimit rl;
		unsigned n;

		snprintf(p, sizeof p, "%s/head_chunks", dir);
		hc = hchunks_open(p, err, sizeof err);
		if (h == NULL || hc == NULL)
			_exit(10);
		tsdb_head_set_chunk_store(h, hc);
		append_steps(h, 0, 300);
		hchunks_stats(hc, &hs);
		if (hs.chunks_written < 2 * NSERIES || hs.write_failures != 0)
			_exit(11);
		/* RLIMIT_FSIZE stands in for a full disk */
		signal(SIGXFSZ, SIG_IGN);
		getrlimit(RLIMIT_FSIZE, &rl);
		rl.rlim_cur = (rlim_t)hs.bytes;
		setrlimit(RLIMIT_FSIZE, &rl);
		append_steps(h, 300, 600);
		hchunks_stats(hc, &hs);
		if (hs.write_failures < 2 * NSERIES)
			_exit(12);
		rl.rlim_cur = RLIM_INFINITY;
		setrlimit(RLIMIT_FSIZE, &rl);
		append_steps(h, 600, 900);
		hchunks_stats(hc, &hs);
		if (hs.chunks_written < 4 * NSERIES)
			_exit(13);
		/* every sample readable: from files and from memory */
		{
			struct matcher *m = matcher_new(MATCH_REGEX, "__name__", "metric_.*", err,
			    sizeof err);
			struct tsdb_series_set *ss = tsdb_head_select(h, &m, 1, INT64_MIN, INT64_MAX);

			n = 0;
			while (tsdb_series_set_next(ss)) {
				struct tsdb_iter *it = tsdb_series_set_iter(ss);
				unsigned s = (unsigned)atoi(labels_get(tsdb_series_set_labels(ss),
				    "id") + 1), i = 0;
				int64_t t;
				double v;

				while (tsdb_iter_next(it, &t, &v)) {
					if (t != 1700000000000LL + (int64_t)i * 15000 ||
					    bits(v) != value_at(s, i))
						_exit(14);
					i++;
				}
				if (i != 900)
					_exit(15);
				n++;
			}
			tsdb_series_set_free(ss);
			matcher_free(m);
		}
		if (n != NSERIES)
			_exit(16);
		tsdb_head_free(h);
		hchunks_close(hc);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("child: %s %d", WIFEXITED(status) ? "exit" : "signal",
		    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	rm_rf(dir);
	mem_free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_wal_roundtrip),
		cmocka_unit_test(test_wal_encoding_size),
		cmocka_unit_test(test_wal_torn_tail),
		cmocka_unit_test(test_wal_corrupt_middle),
		cmocka_unit_test(test_wal_foreign),
		cmocka_unit_test(test_db_crash_replay),
		cmocka_unit_test(test_db_lock),
		cmocka_unit_test(test_db_out_of_order),
		cmocka_unit_test(test_db_ooo_replay_after_crash),
		cmocka_unit_test(test_db_checkpoint_kept),
		cmocka_unit_test(test_db_write_failure),
		cmocka_unit_test(test_db_head_chunk_files),
		cmocka_unit_test(test_head_chunk_write_failure),
	};

	log_setup("error", "logfmt", NULL, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
