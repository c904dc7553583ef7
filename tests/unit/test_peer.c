/* tests/unit/test_peer.c - gap repair between central replicas (central/).
 *
 * Time-range arithmetic; the coverage file (reopen, torn and garbled lines,
 * retention, compaction); the peer's coverage answer (round trip and 14
 * malformed answers); the configuration fingerprint (external labels do
 * not count, scrape settings and rule file contents do). Then repair over
 * HTTP on 127.0.0.1 between two real stores: a replica missing 2.5 hours
 * copies them from a peer that serves remote read from a head and a block,
 * sample for sample, leaving what it already holds alone and counting a
 * conflicting value; and every kind of bad peer: another cluster's
 * fingerprint, a closed port, garbage, 404, 503, a cut answer, a slow
 * peer, a remote read that is not protobuf or whose samples are out of
 * order: each gets its state and nothing is written; a peer whose clock is
 * ahead has its skew measured and is never trusted past our watermark.
 * Start-up: rules start (the own stretch opens) once everything before the
 * process's start is copied, the replica reports ready only once it also
 * holds the peer's samples up to the start of that stretch. Last, the
 * heartbeat: a stretch opens when the replica is synced, grows with now -
 * lag, and a stall ends it.
 */
#include "config.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "central/coverage.h"
#include "central/peer.h"
#include "central/ranges.h"
#include "config/config.h"
#include "http/server.h"
#include "remote/codec.h"
#include "remote/server.h"
#include "tsdb/db.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define MIN_MS (60 * 1000LL)

static char *
tmpdir(void)
{
	char tmpl[256];
	const char *base = getenv("TMPDIR");

	snprintf(tmpl, sizeof tmpl, "%s/strata-peer-XXXXXX", base ? base : "/tmp");
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

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
assert_ranges(const struct ranges *r, size_t n, const int64_t *pairs)
{
	if (r->n != n) {
		for (size_t i = 0; i < r->n; i++)
			print_error("  [%lld, %lld)\n", (long long)r->v[i].start, (long long)r->v[i].end);
	}
	assert_int_equal(r->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(r->v[i].start, pairs[2 * i]);
		assert_int_equal(r->v[i].end, pairs[2 * i + 1]);
	}
}

/* --- ranges ------------------------------------------------------------------- */

static void
test_ranges_add(void **state)
{
	struct ranges r = RANGES_INIT;

	(void)state;
	ranges_add(&r, 50, 60);
	ranges_add(&r, 10, 20);
	ranges_add(&r, 30, 40);
	ranges_add(&r, 5, 5);		/* empty: ignored */
	ranges_add(&r, 9, 3);		/* reversed: ignored */
	assert_ranges(&r, 3, (int64_t[]){ 10, 20, 30, 40, 50, 60 });
	ranges_add(&r, 20, 30);		/* touches both neighbours: one interval */
	assert_ranges(&r, 2, (int64_t[]){ 10, 40, 50, 60 });
	ranges_add(&r, 12, 18);		/* inside */
	assert_ranges(&r, 2, (int64_t[]){ 10, 40, 50, 60 });
	ranges_add(&r, 0, 100);		/* swallows all */
	assert_ranges(&r, 1, (int64_t[]){ 0, 100 });
	ranges_add(&r, 100, 110);	/* adjacent on the right */
	ranges_add(&r, -10, 0);		/* adjacent on the left */
	assert_ranges(&r, 1, (int64_t[]){ -10, 110 });
	ranges_add(&r, 200, 210);
	ranges_add(&r, 105, 205);	/* bridges */
	assert_ranges(&r, 1, (int64_t[]){ -10, 210 });
	assert_int_equal(ranges_total(&r), 220);
	assert_true(ranges_covers(&r, 0, 210));
	assert_false(ranges_covers(&r, 0, 211));
	ranges_free(&r);
	assert_int_equal(r.n, 0);
}

static void
test_ranges_subtract_clip(void **state)
{
	struct ranges a = RANGES_INIT, b = RANGES_INIT, out = RANGES_INIT, c = RANGES_INIT;

	(void)state;
	ranges_add(&a, 0, 100);
	ranges_add(&a, 200, 300);
	ranges_add(&b, 10, 20);
	ranges_add(&b, 90, 210);
	ranges_add(&b, 250, 260);
	ranges_subtract(&out, &a, &b);
	assert_ranges(&out, 4, (int64_t[]){ 0, 10, 20, 90, 210, 250, 260, 300 });
	ranges_subtract(&out, &b, &a);
	assert_ranges(&out, 1, (int64_t[]){ 100, 200 });
	ranges_subtract(&out, &a, &a);
	assert_int_equal(out.n, 0);
	ranges_subtract(&out, &a, &c);	/* minus nothing */
	assert_true(ranges_equal(&out, &a));
	ranges_subtract(&out, &c, &a);	/* nothing minus */
	assert_int_equal(out.n, 0);

	ranges_copy(&c, &a);
	ranges_clip(&c, 50, 250);
	assert_ranges(&c, 2, (int64_t[]){ 50, 100, 200, 250 });
	ranges_clip(&c, 100, 200);	/* the hole between them */
	assert_int_equal(c.n, 0);
	ranges_free(&a);
	ranges_free(&b);
	ranges_free(&c);
	ranges_free(&out);
}

/* --- coverage file -------------------------------------------------------------- */

static void
test_coverage_file(void **state)
{
	char *dir = tmpdir(), path[512], err[256];
	struct coverage *c;
	struct ranges r = RANGES_INIT;
	FILE *f;

	(void)state;
	c = coverage_open(dir, 0, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(coverage_add(c, 1000, 2000, err, sizeof(err)), 0);
	assert_int_equal(coverage_add(c, 1000, 5000, err, sizeof(err)), 0);	/* heartbeat grows it */
	assert_int_equal(coverage_add(c, 9000, 9500, err, sizeof(err)), 0);
	assert_int_equal(coverage_add(c, 1500, 1600, err, sizeof(err)), 0);	/* held: no line */
	coverage_close(c);

	/* a torn line, garbage, a reversed interval and a comment are skipped */
	snprintf(path, sizeof(path), "%s/%s", dir, COVERAGE_FILE);
	f = fopen(path, "a");
	fputs("# a comment\n20000 x\n30000 20000\n-5 notanumber\n 1 2\n40000 41000", f);
	fclose(f);
	c = coverage_open(dir, 0, err, sizeof(err));
	assert_non_null(c);
	coverage_get(c, &r);
	assert_ranges(&r, 2, (int64_t[]){ 1000, 5000, 9000, 9500 });
	coverage_close(c);

	/* reopening with a retention forgets what ended before it, and the
	 * compacted file holds just the merged set */
	c = coverage_open(dir, 4000, err, sizeof(err));
	assert_non_null(c);
	coverage_get(c, &r);
	assert_ranges(&r, 2, (int64_t[]){ 4000, 5000, 9000, 9500 });
	coverage_forget(c, 9200);
	coverage_get(c, &r);
	assert_ranges(&r, 1, (int64_t[]){ 9200, 9500 });
	coverage_close(c);
	{
		char buf[256] = "";
		size_t n;

		f = fopen(path, "r");
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		assert_string_equal(buf, "# strata peer coverage v1\n4000 5000\n9000 9500\n");
	}

	/* thousands of heartbeats compact the file and lose nothing */
	c = coverage_open(dir, 0, err, sizeof(err));
	for (int i = 0; i < 6000; i++)
		assert_int_equal(coverage_add(c, 100000, 100001 + i, err, sizeof(err)), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(coverage_add(c, 200000 + 10 * i, 200005 + 10 * i, err, sizeof(err)), 0);
	coverage_close(c);
	{
		long size;

		f = fopen(path, "r");
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fclose(f);
		assert_true(size < 2048 * 24);	/* not 6100 lines */
	}
	c = coverage_open(dir, 0, err, sizeof(err));
	coverage_get(c, &r);
	assert_int_equal(r.n, 103);	/* with 4000-5000 and 9000-9500 from before */
	assert_int_equal(r.v[2].start, 100000);
	assert_int_equal(r.v[2].end, 106000);
	coverage_close(c);

	/* a data directory that cannot hold the file is an error */
	assert_null(coverage_open("/proc/self/nonexistent-dir", 0, err, sizeof(err)));
	assert_non_null(strstr(err, "peer-coverage"));
	ranges_free(&r);
	rm_rf(dir);
	mem_free(dir);
}

/* --- the coverage answer ----------------------------------------------------------- */

static void
test_answer_parse(void **state)
{
	static const char good[] =
	    "# strata-peer 1\n"
	    "fingerprint 0123456789abcdef0123456789abcdef\n"
	    "time 1700000000123\n"
	    "watermark 1699999970000\n"
	    "synced 1\n"
	    "future-key something\n"
	    "range 1699990000000 1699995000000\n"
	    "range 1699996000000 1699999970000\n"
	    "# EOF\n";
	static const struct {
		const char *body, *want;
	} bad[] = {
		{ "", "empty answer" },
		{ "<html>404</html>\n", "line 1: not a strata peer answer" },
		{ "# strata-peer 2\n# EOF\n", "line 1: not a strata peer answer" },
		{ "# strata-peer 1\nfingerprint ab\ntime 1\nwatermark 1\nsynced 1\n", "no \"# EOF\"" },
		{ "# strata-peer 1\nfingerprint ab\ntime 1\nwatermark 1\nsynced 1\n# EO", "unterminated" },
		{ "# strata-peer 1\nfingerprint ab\ntime 1\nwatermark 1\n# EOF\n", "lacks synced" },
		{ "# strata-peer 1\ntime 1\nwatermark 1\nsynced 0\n# EOF\n", "lacks fingerprint" },
		{ "# strata-peer 1\nfingerprint XYZ\n# EOF\n", "line 2: bad fingerprint" },
		{ "# strata-peer 1\nfingerprint ab\ntime 12x\n# EOF\n", "line 3: bad time" },
		{ "# strata-peer 1\nfingerprint ab\ntime 99999999999999999999999\n# EOF\n", "bad time" },
		{ "# strata-peer 1\nsynced yes\n# EOF\n", "line 2: bad synced" },
		{ "# strata-peer 1\nrange 5 3\n# EOF\n", "line 2: bad range" },
		{ "# strata-peer 1\nrange 5\n# EOF\n", "line 2: bad range" },
		{ "# strata-peer 1\nfingerprint ab\ntime 1\nwatermark 1\nsynced 1\n# EOF\nrange 1 2\n",
		    "data after" },
		{ "# strata-peer 1\n\n# EOF\n", "line 2: expected" },
	};
	struct peer_answer a;
	char err[256];

	(void)state;
	assert_int_equal(peer_parse_answer(good, strlen(good), &a, err, sizeof(err)), 0);
	assert_string_equal(a.fingerprint, "0123456789abcdef0123456789abcdef");
	assert_int_equal(a.time, 1700000000123LL);
	assert_int_equal(a.watermark, 1699999970000LL);
	assert_true(a.synced);
	assert_ranges(&a.coverage, 2,
	    (int64_t[]){ 1699990000000LL, 1699995000000LL, 1699996000000LL, 1699999970000LL });
	ranges_free(&a.coverage);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (peer_parse_answer(bad[i].body, strlen(bad[i].body), &a, err, sizeof(err)) == 0 ||
		    strstr(err, bad[i].want) == NULL) {
			print_error("case %zu: want %s, got %s\n", i, bad[i].want, err);
			fail();
		}
	}
}

/* --- fingerprint ----------------------------------------------------------------------- */

static void
test_fingerprint(void **state)
{
	char *dir = tmpdir(), path[512], cfgtext[1024], err[256];
	char f1[PEER_FINGERPRINT_LEN], f2[PEER_FINGERPRINT_LEN], f3[PEER_FINGERPRINT_LEN];
	char f4[PEER_FINGERPRINT_LEN], f5[PEER_FINGERPRINT_LEN];
	static const char tmpl[] =
	    "global:\n  scrape_interval: %s\n  external_labels: {replica: %s}\n"
	    "rule_files: [\"%s/*.rules.yml\"]\n"
	    "scrape_configs:\n  - job_name: fed\n    honor_labels: true\n"
	    "    metrics_path: /federate\n    params: {'match[]': ['{job!=\"\"}']}\n"
	    "    static_configs: [{targets: ['127.0.0.1:9090']}]\n";
	struct cfg *c;

	(void)state;
	snprintf(path, sizeof(path), "%s/a.rules.yml", dir);
	write_file(path, "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n"
	    "        expr: sum by (job) (up)\n");

	snprintf(cfgtext, sizeof(cfgtext), tmpl, "15s", "a", dir);
	c = cfg_load_string(cfgtext, strlen(cfgtext), "a.yml", dir, err, sizeof(err));
	assert_non_null(c);
	peer_fingerprint(c, f1);
	cfg_free(c);
	snprintf(cfgtext, sizeof(cfgtext), tmpl, "15s", "b", dir);
	c = cfg_load_string(cfgtext, strlen(cfgtext), "b.yml", dir, err, sizeof(err));
	peer_fingerprint(c, f2);
	cfg_free(c);
	snprintf(cfgtext, sizeof(cfgtext), tmpl, "30s", "a", dir);
	c = cfg_load_string(cfgtext, strlen(cfgtext), "a.yml", dir, err, sizeof(err));
	peer_fingerprint(c, f3);
	cfg_free(c);
	/* the same configuration with another rule file content */
	write_file(path, "groups:\n  - name: g\n    rules:\n      - record: job:up:max\n"
	    "        expr: max by (job) (up)\n");
	snprintf(cfgtext, sizeof(cfgtext), tmpl, "15s", "a", dir);
	c = cfg_load_string(cfgtext, strlen(cfgtext), "a.yml", dir, err, sizeof(err));
	peer_fingerprint(c, f4);
	peer_fingerprint(c, f5);
	cfg_free(c);

	assert_int_equal(strlen(f1), 32);
	assert_string_equal(f1, f2);		/* only the replica label differs */
	assert_string_not_equal(f1, f3);	/* scrape interval */
	assert_string_not_equal(f1, f4);	/* rule file content */
	assert_string_equal(f4, f5);		/* stable */
	unlink(path);
	rm_rf(dir);
	mem_free(dir);
}

/* --- replicas over HTTP ------------------------------------------------------------------ */

/* A replica: a store, its remote read endpoint and its peer, served on
 * 127.0.0.1. */
struct replica {
	char *dir;
	struct tsdb_db *db;
	struct remote_server *rs;
	struct http_server *srv;
	struct peer *peer;
	char url[64];
};

static void
replica_open(struct replica *r)
{
	struct tsdb_db_opts o = { 0 };
	char err[256];

	memset(r, 0, sizeof(*r));
	r->dir = tmpdir();
	o.path = r->dir;
	o.no_maintenance = true;
	r->db = tsdb_db_open(&o, err, sizeof(err));
	assert_non_null(r->db);
	r->srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(r->srv);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d", http_server_port(r->srv));
}

/* replica_start makes the peer (of peer_url, with opts o) and serves. */
static void
replica_start(struct replica *r, const char *peer_url, struct peer_opts *o, const char *fp,
    const struct ranges *held)
{
	struct peer_opts def = { 0 };
	char err[256];

	if (held != NULL) {
		struct coverage *c = coverage_open(r->dir, 0, err, sizeof(err));

		assert_non_null(c);
		for (size_t i = 0; i < held->n; i++)
			coverage_add(c, held->v[i].start, held->v[i].end, err, sizeof(err));
		coverage_close(c);
	}
	if (o == NULL)
		o = &def;
	o->url = peer_url;
	o->data_dir = r->dir;
	o->db = r->db;
	if (o->timeout_ms == 0)
		o->timeout_ms = 2000;
	if (o->read_timeout_ms == 0)
		o->read_timeout_ms = 5000;
	r->peer = peer_new(o, err, sizeof(err));
	assert_non_null(r->peer);
	peer_set_config(r->peer, fp, 1000, 0);
	r->rs = remote_server_new(tsdb_db_head(r->db), NULL);
	remote_server_set_db(r->rs, r->db);
	assert_int_equal(remote_server_route(r->rs, r->srv, false, true), 0);
	assert_int_equal(peer_route(r->peer, r->srv), 0);
	assert_int_equal(http_server_start(r->srv, err, sizeof(err)), 0);
}

static void
replica_close(struct replica *r)
{
	http_server_free(r->srv);
	peer_free(r->peer);
	remote_server_free(r->rs);
	tsdb_db_close(r->db);
	rm_rf(r->dir);
	mem_free(r->dir);
}

static struct labels *
series_labels(int i)
{
	char v[16];
	struct label l[3] = { { "__name__", i < 4 ? "up" : "job:up:sum" }, { "instance", v },
		{ "job", "synth" } };

	snprintf(v, sizeof(v), "h%d", i);
	return labels_new(l, 3);
}

static double
value_at(int i, int k)
{
	if (i == 3 && k == 100)
		return 0;		/* a stale marker replaced below */
	return (double)(i * 1000 + k) + 0.25;
}

/* fill appends, in time order, samples at base + k minutes for k in [k0,
 * k1) for 5 series (the fourth has a staleness marker at k=100). */
static void
fill(struct tsdb_db *db, int64_t base, int k0, int k1)
{
	struct labels *ls[5];
	uint64_t ref[5] = { 0 };
	struct tsdb_appender *a = tsdb_appender_new(tsdb_db_head(db));

	for (int i = 0; i < 5; i++)
		ls[i] = series_labels(i);
	for (int k = k0; k < k1; k++) {
		for (int i = 0; i < 5; i++) {
			double v = value_at(i, k);

			if (i == 3 && k == 100) {
				uint64_t b = REMOTE_STALE_NAN_BITS;

				memcpy(&v, &b, sizeof(v));
			}
			assert_int_equal(tsdb_appender_append(a, &ref[i], ls[i], base + k * MIN_MS, v), 0);
		}
		assert_int_equal(tsdb_appender_commit(a), 0);
	}
	tsdb_appender_free(a);
	for (int i = 0; i < 5; i++)
		labels_free(ls[i]);
}

/* put_past writes one sample of series i into db's past. */
static void
put_past(struct tsdb_db *db, int i, int64_t t, double v)
{
	struct tsdb_appender *a = tsdb_appender_new_unrestricted(tsdb_db_head(db));
	struct labels *ls = series_labels(i);

	assert_int_equal(tsdb_appender_append(a, NULL, ls, t, v), 0);
	assert_int_equal(tsdb_appender_commit(a), 0);
	tsdb_appender_free(a);
	labels_free(ls);
}

/* dump writes every sample of db in [mint, maxt] as text lines. */
static void
dump(struct tsdb_db *db, int64_t mint, int64_t maxt, struct strbuf *out)
{
	char err[64];
	struct matcher *m = matcher_new(MATCH_REGEX, "__name__", ".+", err, sizeof(err));
	struct tsdb_series_set *ss = tsdb_db_select(db, &m, 1, mint, maxt);

	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t;
		double v;

		labels_format(tsdb_series_set_labels(ss), out);
		strbuf_putc(out, '\n');
		while (tsdb_iter_next(it, &t, &v)) {
			uint64_t b;

			memcpy(&b, &v, sizeof(b));
			strbuf_printf(out, " %lld %016llx\n", (long long)t, (unsigned long long)b);
		}
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
}

static uint64_t
count_samples(struct tsdb_db *db)
{
	struct tsdb_db_stats st;

	tsdb_db_stats(db, &st);
	return st.head.samples_appended + st.head.ooo_appended;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	strbuf_append(arg, ptr, size * nmemb);
	return size * nmemb;
}

/* http_get GETs base + path into out (fails the test on a transport error). */
static void
http_get(const char *base, const char *path, struct strbuf *out)
{
	CURL *e = curl_easy_init();
	char url[256];

	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	strbuf_putc(out, '\0');
}

/* count_open is an on_open callback counting its calls in *arg. */
static void
count_open(void *arg)
{
	(*(int *)arg)++;
}

static void
test_repair(void **state)
{
	struct replica a, b;
	struct ranges held_b = RANGES_INIT, held_a = RANGES_INIT, got = RANGES_INIT;
	struct strbuf da = STRBUF_INIT, db = STRBUF_INIT;
	struct peer_opts ao = { 0 };
	struct peer_stats st;
	struct tsdb_db_stats dst;
	int opened = 0;
	int64_t now = time_now_ms(), base = now / MIN_MS * MIN_MS - 240 * MIN_MS;
	const char *fp = "0123456789abcdef0123456789abcdef";
	char err[256];
	uint64_t before;

	(void)state;
	replica_open(&a);
	replica_open(&b);

	/* b holds 236 minutes; its older part goes to a block */
	fill(b.db, base, 0, 236);
	assert_int_equal(tsdb_db_maintain(b.db), 0);
	tsdb_db_stats(b.db, &dst);
	assert_true(dst.blocks_loaded >= 1);
	ranges_add(&held_b, base, base + 236 * MIN_MS);

	/* a holds the first hour and the last 26 minutes, and two samples of
	 * its gap: one with the peer's value, one with another */
	fill(a.db, base, 0, 60);
	fill(a.db, base, 210, 236);
	put_past(a.db, 0, base + 120 * MIN_MS, value_at(0, 120));
	put_past(a.db, 1, base + 130 * MIN_MS, -1);
	ranges_add(&held_a, base, base + 60 * MIN_MS);
	ranges_add(&held_a, base + 210 * MIN_MS, base + 236 * MIN_MS);

	replica_start(&b, "", NULL, fp, &held_b);
	ao.slice_ms = 10 * MIN_MS;	/* several slices, resized on the way */
	ao.slice_samples = 30;
	ao.on_open = count_open;
	ao.on_open_arg = &opened;
	replica_start(&a, b.url, &ao, fp, &held_a);
	assert_int_equal(peer_sync_once(b.peer), 0);	/* b: no peer, synced */
	peer_set_config(b.peer, fp, 0, 0);		/* b's watermark: now */
	assert_false(peer_is_synced(a.peer));

	before = count_samples(a.db);
	assert_int_equal(peer_sync_once(a.peer), 0);
	assert_int_equal(peer_state(a.peer, err, sizeof(err)), PEER_OK);
	peer_stats(a.peer, &st);
	/* 150 minutes of 5 series, less the two a held */
	assert_int_equal(st.samples_repaired, 150 * 5 - 2);
	assert_int_equal(st.samples_conflicting, 1);
	assert_int_equal(st.ranges_repaired, 1);
	assert_int_equal(st.ranges_missing, 0);
	assert_int_equal(st.repair_failures, 0);
	assert_true(st.last_sync_ms >= now);
	assert_int_equal(count_samples(a.db) - before, 150 * 5 - 2);
	/* nothing left, peer watermark past the process's start: rules
	 * start, but the peer's watermark (its now at the answer) is not yet
	 * past the own stretch, which opens after the answer: not ready */
	assert_int_equal(opened, 1);
	assert_false(peer_is_synced(a.peer));

	peer_coverage(a.peer, &got);
	assert_true(ranges_equal(&got, &held_b));

	/* both hold the same samples, bit for bit, but the conflicting one */
	dump(a.db, base, now, &da);
	dump(b.db, base, now, &db);
	{
		char want[64], have[64];
		double old = value_at(1, 130), neg = -1;
		uint64_t ob, nb;
		char *pos;

		memcpy(&ob, &old, sizeof(ob));
		memcpy(&nb, &neg, sizeof(nb));
		snprintf(want, sizeof(want), " %lld %016llx\n", (long long)(base + 130 * MIN_MS),
		    (unsigned long long)ob);
		snprintf(have, sizeof(have), " %lld %016llx\n", (long long)(base + 130 * MIN_MS),
		    (unsigned long long)nb);
		pos = strstr(da.buf, have);
		assert_non_null(pos);
		memcpy(pos, want, strlen(want));	/* same length: one sample */
	}
	assert_int_equal(da.len, db.len);
	assert_string_equal(da.buf, db.buf);
	assert_non_null(strstr(db.buf, "7ff0000000000002"));	/* the stale marker made it */

	/* a second pass finds nothing and writes nothing; the peer's
	 * watermark is past the own stretch's start now: ready */
	before = count_samples(a.db);
	assert_int_equal(peer_sync_once(a.peer), 0);
	assert_int_equal(count_samples(a.db), before);
	assert_true(peer_is_synced(a.peer));
	assert_int_equal(opened, 1);

	/* /api/v1/peer tells it */
	{
		struct strbuf body = STRBUF_INIT;

		http_get(a.url, "/api/v1/peer", &body);
		assert_non_null(strstr(body.buf, "\"state\":\"ok\""));
		assert_non_null(strstr(body.buf, "\"samplesRepaired\":748"));
		assert_non_null(strstr(body.buf, "\"samplesConflicting\":1"));
		assert_non_null(strstr(body.buf, "\"synced\":true"));
		assert_non_null(strstr(body.buf, "\"syncedReason\":\"caught up with the peer\""));
		strbuf_free(&body);
	}
	/* and /metrics */
	{
		struct strbuf m = STRBUF_INIT;

		peer_collect(a.peer, &m);
		assert_non_null(strstr(m.buf, "\nstrata_peer_up 1\n"));
		assert_non_null(strstr(m.buf, "\nstrata_peer_samples_repaired_total 748\n"));
		assert_non_null(strstr(m.buf, "\nstrata_peer_ranges_missing 0\n"));
		assert_non_null(strstr(m.buf, "strata_peer_state{state=\"ok\"} 1\n"));
		assert_non_null(strstr(m.buf, "\nstrata_peer_repair_failures_total 0\n"));
		assert_non_null(strstr(m.buf, "strata_peer_last_sync_timestamp_seconds "));
		strbuf_free(&m);
	}
	strbuf_free(&da);
	strbuf_free(&db);
	ranges_free(&held_a);
	ranges_free(&held_b);
	ranges_free(&got);
	replica_close(&a);
	replica_close(&b);
}

static void
test_mismatched_cluster(void **state)
{
	struct replica a, b;
	struct ranges held_b = RANGES_INIT;
	struct peer_stats st;
	int64_t base = time_now_ms() / MIN_MS * MIN_MS - 30 * MIN_MS;
	char err[512];
	uint64_t before;

	(void)state;
	replica_open(&a);
	replica_open(&b);
	fill(b.db, base, 0, 20);
	ranges_add(&held_b, base, base + 20 * MIN_MS);
	replica_start(&b, "", NULL, "ffffffffffffffffffffffffffffffff", &held_b);
	replica_start(&a, b.url, NULL, "0123456789abcdef0123456789abcdef", NULL);
	before = count_samples(a.db);
	assert_int_equal(peer_sync_once(a.peer), -1);
	assert_int_equal(peer_state(a.peer, err, sizeof(err)), PEER_MISMATCHED);
	assert_non_null(strstr(err, "another cluster"));
	assert_int_equal(count_samples(a.db), before);
	peer_stats(a.peer, &st);
	assert_int_equal(st.samples_repaired, 0);
	assert_int_equal(st.sync_failures, 1);
	assert_true(peer_is_synced(a.peer));	/* never waits for another cluster */
	ranges_free(&held_b);
	replica_close(&a);
	replica_close(&b);
}

/* A scripted bad peer: what /api/v1/peer/coverage and /api/v1/read answer. */
struct bad_peer {
	int cov_status;
	const char *cov_body;		/* NULL: a valid answer covering the last hour */
	int read_status;
	int read_kind;			/* 0 text body, 1 samples out of order, 2 a series
					 * twice, 3 a sample outside the range, 4 no series */
	int64_t skew_ms;		/* the peer's clock minus ours */
	const char *read_body;
	unsigned delay_ms;
};

static int
bad_coverage(struct http_request *req, void *arg)
{
	struct bad_peer *bp = arg;
	struct strbuf sb = STRBUF_INIT;
	int64_t now = time_now_ms() + bp->skew_ms;

	if (bp->delay_ms > 0)
		usleep(bp->delay_ms * 1000);
	if (bp->cov_body != NULL)
		return http_respond_data(req, bp->cov_status, "text/plain", bp->cov_body,
		    strlen(bp->cov_body));
	strbuf_printf(&sb, "# strata-peer 1\nfingerprint 0123456789abcdef0123456789abcdef\n"
	    "time %lld\nwatermark %lld\nsynced 1\nrange %lld %lld\n# EOF\n",
	    (long long)now, (long long)(now - 1000), (long long)(now - 3600000),
	    (long long)(now - 1000));
	return http_respond(req, bp->cov_status, PEER_CONTENT_TYPE, &sb);
}

static int
bad_read(struct http_request *req, void *arg)
{
	struct bad_peer *bp = arg;
	struct remote_read_resp_builder b = REMOTE_READ_RESP_BUILDER_INIT;
	struct strbuf out = STRBUF_INIT;
	struct remote_read_req rr;
	struct remote_sample s[3];
	struct labels *ls;
	const void *body;
	size_t len;
	char err[256];
	int64_t t0;

	if (bp->read_kind == 0)
		return http_respond_data(req, bp->read_status, "text/plain", bp->read_body,
		    strlen(bp->read_body));
	body = http_request_body(req, &len);
	assert_int_equal(remote_decode_read_request(body, len, 1 << 20, &rr, err, sizeof(err)), 0);
	t0 = rr.q[0].mint;
	remote_read_req_free(&rr);
	s[0] = (struct remote_sample){ t0 + 3000, 1 };
	s[1] = (struct remote_sample){ t0 + 1000, 2 };
	s[2] = (struct remote_sample){ t0 + 2000, 3 };
	ls = series_labels(0);
	if (bp->read_kind == 4) {		/* nothing */
	} else if (bp->read_kind == 1) {	/* out of order */
		remote_resp_add_series(&b, ls, s, 3);
	} else if (bp->read_kind == 2) {	/* one series twice */
		remote_resp_add_series(&b, ls, s + 1, 1);
		remote_resp_add_series(&b, ls, s + 2, 1);
	} else {				/* before the range */
		s[0].t = t0 - 1;
		remote_resp_add_series(&b, ls, s, 1);
	}
	labels_free(ls);
	remote_resp_end_result(&b);
	remote_resp_finish(&b, &out);
	http_response_no_compress(req);
	http_response_header(req, "Content-Encoding", "snappy");
	return http_respond(req, 200, REMOTE_CONTENT_TYPE, &out);
}

/* try_bad syncs a fresh replica against bp; returns the state and err. */
static enum peer_state
try_bad(struct bad_peer *bp, const char *url_override, char *err, size_t errlen,
    struct peer_stats *st)
{
	struct replica a;
	struct http_server *srv;
	struct peer_opts o = { 0 };
	char url[64], e[256];
	enum peer_state s;
	uint64_t before;

	srv = http_server_new("127.0.0.1:0", NULL, e, sizeof(e));
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, HTTP_GET, "/api/v1/peer/coverage", 0, bad_coverage,
	    bp), 0);
	assert_int_equal(http_server_route(srv, HTTP_POST, "/api/v1/read", 0, bad_read, bp), 0);
	assert_int_equal(http_server_start(srv, e, sizeof(e)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(srv));

	replica_open(&a);
	o.timeout_ms = 300;
	o.give_up_ms = 1;
	replica_start(&a, url_override != NULL ? url_override : url, &o,
	    "0123456789abcdef0123456789abcdef", NULL);
	before = count_samples(a.db);
	assert_int_equal(peer_sync_once(a.peer), -1);
	s = peer_state(a.peer, err, errlen);
	peer_stats(a.peer, st);
	assert_int_equal(count_samples(a.db), before);	/* never wrong data */
	assert_false(peer_is_synced(a.peer));		/* one failure is not enough */
	usleep(5000);
	assert_int_equal(peer_sync_once(a.peer), -1);
	assert_true(peer_is_synced(a.peer));		/* give_up_ms later: serve */
	replica_close(&a);
	http_server_free(srv);
	return s;
}

static void
test_bad_peers(void **state)
{
	struct peer_stats st;
	char err[1024];
	struct bad_peer bp;

	(void)state;
	/* down: nothing listens */
	memset(&bp, 0, sizeof(bp));
	bp.cov_status = 200;
	assert_int_equal(try_bad(&bp, "http://127.0.0.1:1", err, sizeof(err), &st), PEER_UNREACHABLE);
	assert_non_null(strstr(err, "127.0.0.1:1/api/v1/peer/coverage"));

	/* slow: answers after the timeout */
	bp.delay_ms = 1200;
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_UNREACHABLE);
	assert_non_null(strstr(err, "imed out"));
	bp.delay_ms = 0;

	/* garbage, 404 (not a strata central), 503, an answer cut short */
	bp.cov_body = "{\"status\":\"success\"}";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "not a strata peer answer"));
	bp.cov_status = 404;
	bp.cov_body = "404 page not found\n";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "HTTP status 404: 404 page not found"));
	bp.cov_status = 503;
	bp.cov_body = "Service Unavailable\n";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_UNREACHABLE);
	bp.cov_status = 200;
	bp.cov_body = "# strata-peer 1\nfingerprint 0123456789abcdef0123456789abcdef\ntime 1\n"
	    "watermark 1\nsynced 1\nrange 1 2\n";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "no \"# EOF\""));

	/* a valid coverage answer, then a remote read that is not one */
	bp.cov_body = NULL;
	bp.read_status = 200;
	bp.read_kind = 0;
	bp.read_body = "this is not snappy";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "snappy"));
	assert_int_equal(st.repair_failures, 1);
	assert_int_equal(st.samples_repaired, 0);
	bp.read_status = 400;
	bp.read_body = "bad request\n";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	bp.read_status = 500;
	bp.read_body = "internal error\n";
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_UNREACHABLE);
	/* well-formed protobuf, impossible content: refused whole */
	bp.read_kind = 1;
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "out of order"));
	bp.read_kind = 2;
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "appears twice"));
	bp.read_kind = 3;
	assert_int_equal(try_bad(&bp, NULL, err, sizeof(err), &st), PEER_GARBAGE);
	assert_non_null(strstr(err, "outside the range asked for"));
}

/* A peer whose clock is 3 s ahead: its skew is measured, and repair never
 * claims past this replica's own watermark. */
static void
test_clock_skew(void **state)
{
	struct bad_peer bp = { .cov_status = 200, .read_status = 200, .read_kind = 4,
		.skew_ms = 3000 };
	struct replica a;
	struct http_server *srv;
	struct ranges got = RANGES_INIT;
	struct strbuf body = STRBUF_INIT;
	char url[64], e[256];
	int64_t before;
	double skew;
	char *p;

	(void)state;
	srv = http_server_new("127.0.0.1:0", NULL, e, sizeof(e));
	assert_int_equal(http_server_route(srv, HTTP_GET, "/api/v1/peer/coverage", 0, bad_coverage,
	    &bp), 0);
	assert_int_equal(http_server_route(srv, HTTP_POST, "/api/v1/read", 0, bad_read, &bp), 0);
	assert_int_equal(http_server_start(srv, e, sizeof(e)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(srv));
	replica_open(&a);
	replica_start(&a, url, NULL, "0123456789abcdef0123456789abcdef", NULL);
	before = time_now_ms();
	assert_int_equal(peer_sync_once(a.peer), 0);
	assert_int_equal(peer_state(a.peer, NULL, 0), PEER_OK);
	peer_coverage(a.peer, &got);
	assert_int_equal(got.n, 1);
	assert_true(got.v[0].end <= time_now_ms() - 1000);	/* not the peer's now + 2 s */
	assert_true(got.v[0].end >= before - 1000 - 50);
	http_get(a.url, "/api/v1/peer", &body);
	p = strstr(body.buf, "\"clockSkewSeconds\":");
	assert_non_null(p);
	skew = strtod(p + 19, NULL);
	assert_true(skew > 2.9 && skew < 3.1);
	assert_non_null(strstr(body.buf, "\"state\":\"ok\""));
	strbuf_free(&body);
	ranges_free(&got);
	replica_close(&a);
	http_server_free(srv);
}

/* Once its stretch is open, what lies after the start of the replica's
 * own stretch is its own: the heartbeat claims it, repair never copies it
 * (even before the heartbeat got there). The replica is ready only once
 * it holds the peer's ranges up to that start. */
static void
test_own_stretch_not_copied(void **state)
{
	struct bad_peer bp = { .cov_status = 200, .read_status = 200, .read_kind = 4 };
	struct replica a;
	struct http_server *srv;
	struct peer_stats st;
	struct ranges got = RANGES_INIT;
	struct strbuf body = STRBUF_INIT;
	char url[64], e[256];
	long long own;
	char *p;

	(void)state;
	srv = http_server_new("127.0.0.1:0", NULL, e, sizeof(e));
	assert_int_equal(http_server_route(srv, HTTP_GET, "/api/v1/peer/coverage", 0, bad_coverage,
	    &bp), 0);
	assert_int_equal(http_server_route(srv, HTTP_POST, "/api/v1/read", 0, bad_read, &bp), 0);
	assert_int_equal(http_server_start(srv, e, sizeof(e)), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(srv));
	replica_open(&a);
	replica_start(&a, url, NULL, "0123456789abcdef0123456789abcdef", NULL);
	usleep(1100 * 1000);		/* the peer's watermark passes our start */
	assert_int_equal(peer_sync_once(a.peer), 0);	/* the last hour */
	assert_false(peer_is_synced(a.peer));	/* up to the peer's watermark only */
	usleep(1200 * 1000);		/* now - lag passes the stretch's start */
	assert_int_equal(peer_sync_once(a.peer), 0);	/* up to our stretch */
	peer_stats(a.peer, &st);
	assert_int_equal(st.ranges_repaired, 2);
	assert_true(peer_is_synced(a.peer));	/* whole up to its own stretch */
	/* one range, from the peer's first claim to the own stretch */
	http_get(a.url, "/api/v1/peer", &body);
	p = strstr(body.buf, "\"stretchStartMs\":");
	assert_non_null(p);
	own = strtoll(p + 17, NULL, 10);
	peer_coverage(a.peer, &got);
	assert_int_equal(got.n, 1);
	assert_int_equal(got.v[0].end, own);
	assert_true(got.v[0].start <= own - 3600000 + 5000);
	strbuf_free(&body);
	ranges_free(&got);
	usleep(200 * 1000);
	assert_int_equal(peer_sync_once(a.peer), 0);	/* nothing: ours */
	peer_stats(a.peer, &st);
	assert_int_equal(st.ranges_repaired, 2);
	assert_int_equal(st.ranges_missing, 0);
	replica_close(&a);
	http_server_free(srv);
}

static void
test_heartbeat(void **state)
{
	struct replica a;
	struct ranges got = RANGES_INIT;
	int64_t t0, s;
	struct peer_opts o = { 0 };

	(void)state;
	replica_open(&a);
	o.stall_ms = 5000;
	replica_start(&a, "", &o, "0123456789abcdef0123456789abcdef", NULL);
	peer_set_config(a.peer, "0123456789abcdef0123456789abcdef", 3000, -1000);

	/* nothing is claimed before the replica is synced */
	t0 = time_now_ms();
	peer_heartbeat(a.peer, t0 + 10000, 1000);
	peer_coverage(a.peer, &got);
	assert_int_equal(got.n, 0);

	/* no peer: synced at once; the stretch opens at now + run offset */
	assert_int_equal(peer_sync_once(a.peer), 0);
	assert_true(peer_is_synced(a.peer));
	peer_heartbeat(a.peer, t0 + 2000, 2000);	/* now - lag is before the start */
	peer_coverage(a.peer, &got);
	assert_int_equal(got.n, 0);
	peer_heartbeat(a.peer, t0 + 20000, 4000);
	peer_coverage(a.peer, &got);
	assert_int_equal(got.n, 1);
	s = got.v[0].start;
	assert_true(s >= t0 - 1000 && s <= time_now_ms() - 1000);
	assert_int_equal(got.v[0].end, t0 + 17000);
	peer_heartbeat(a.peer, t0 + 22000, 6000);
	peer_coverage(a.peer, &got);
	assert_ranges(&got, 1, (int64_t[]){ s, t0 + 19000 });

	/* a stall (monotonic jump past stall_ms) ends the stretch */
	peer_heartbeat(a.peer, t0 + 40000, 6000 + 18000);
	peer_heartbeat(a.peer, t0 + 50000, 26000);
	peer_coverage(a.peer, &got);
	assert_ranges(&got, 2, (int64_t[]){ s, t0 + 19000, t0 + 39000, t0 + 47000 });

	ranges_free(&got);
	replica_close(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges_add),
		cmocka_unit_test(test_ranges_subtract_clip),
		cmocka_unit_test(test_coverage_file),
		cmocka_unit_test(test_answer_parse),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_repair),
		cmocka_unit_test(test_mismatched_cluster),
		cmocka_unit_test(test_bad_peers),
		cmocka_unit_test(test_clock_skew),
		cmocka_unit_test(test_own_stretch_not_copied),
		cmocka_unit_test(test_heartbeat),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
