/* tests/unit/test_scrape_pull.c - lib/scrape pulling from strata servers.
 *
 * Two layers:
 * - the protocol against a scripted lib/http server: the cursor header on
 *   /federate jobs with honor_labels only, the cursor moving to a body's
 *   until, an immediate re-pull when the answer was capped far behind, a
 *   failed pull leaving the cursor where it was (and writing no marker), a
 *   text answer handled as Prometheus federation, the cursor file written
 *   one pull behind and read back by a new manager;
 * - a cut between a central and a leaf, both real: the leaf is a tsdb head
 *   served by lib/api's /federate (api_federate_set_storage) with a writer
 *   thread committing samples the way scrapes do (within the settle time),
 *   the central a scrape manager on a second head. The central first
 *   catches up 45 minutes in capped pieces, then the leaf's listener goes
 *   away for a few seconds while the writer carries on (a series ends with
 *   a staleness marker meanwhile, another holds a NaN that is not one);
 *   after the leaf is back, every sample of the leaf is on the central,
 *   bit for bit, and nothing else.
 * Link: lib/scrape, lib/api (federate), lib/http, lib/tsdb.
 */
#include "config.h"

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

#include "api/federate.h"
#include "config/config.h"
#include "expfmt/pull.h"
#include "http/server.h"
#include "labels/matcher.h"
#include "promql/storage.h"
#include "scrape/scrape.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

/* --- helpers -------------------------------------------------------------------- */

static struct cfg *
load_cfg(const char *yaml)
{
	char err[1024];
	struct cfg *c = cfg_load_string(yaml, strlen(yaml), "t.yml", "/tmp", err, sizeof(err));

	if (c == NULL)
		fail_msg("config refused: %s\n%s", err, yaml);
	return c;
}

static uint64_t
bits_of(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

static double
from_bits(uint64_t b)
{
	double v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

static char *
make_tmpdir(void)
{
	char tmpl[] = "/tmp/strata-scrape-pull-XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return mem_strdup(tmpl);
}

static void
rm_tmpdir(char *dir)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_printf(&sb, "%s/%s", dir, SCRAPE_CURSOR_FILE);
	(void)unlink(strbuf_cstr(&sb));
	strbuf_reset(&sb);
	strbuf_printf(&sb, "%s/%s.tmp", dir, SCRAPE_CURSOR_FILE);
	(void)unlink(strbuf_cstr(&sb));
	(void)rmdir(dir);
	strbuf_free(&sb);
	mem_free(dir);
}

static struct scrape_manager *
new_manager(struct tsdb_head *h, const char *state_dir, int64_t lookback_ms)
{
	struct scrape_opts o;
	struct scrape_manager *m;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.head = h;
	o.user_agent = "strata-test/1";
	o.workers = 2;
	o.state_dir = state_dir;
	o.pull_lookback_ms = lookback_ms;
	m = scrape_manager_new(&o, err, sizeof(err));
	assert_non_null(m);
	return m;
}

static void
apply(struct scrape_manager *m, struct cfg *c)
{
	char err[512];

	if (scrape_manager_apply(m, c, err, sizeof(err)) != 0)
		fail_msg("apply: %s", err);
}

/* count_up counts the up samples of job with value v (-1: any). */
static size_t
count_up(struct tsdb_head *h, const char *job, double v)
{
	struct matcher *ms[2];
	struct tsdb_series_set *ss;
	size_t n = 0;
	int64_t t;
	double x;

	ms[0] = matcher_new(MATCH_EQUAL, "__name__", "up", NULL, 0);
	ms[1] = matcher_new(MATCH_EQUAL, "job", job, NULL, 0);
	ss = tsdb_head_select(h, ms, 2, INT64_MIN, INT64_MAX);
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);

		while (tsdb_iter_next(it, &t, &x))
			if (v < 0 || x == v)
				n++;
	}
	tsdb_series_set_free(ss);
	matcher_free(ms[0]);
	matcher_free(ms[1]);
	return n;
}

/* --- the protocol against a scripted server ------------------------------------------ */

enum answer { A_PULL_AHEAD, A_PULL_NOW, A_FAIL, A_TEXT };

struct script {
	pthread_mutex_t mu;
	enum answer ans[16];
	size_t nans;
	size_t nreq;
	char since[16][32];	/* header of each request ("" when absent) */
	int64_t at[16];		/* when it came, ms */
	char plain_hdr[32];	/* the header on the plain job's route */
	int nplain;
};

static int
h_script(struct http_request *req, void *arg)
{
	struct script *s = arg;
	const char *hv = http_request_header(req, PULL_SINCE_HEADER);
	struct strbuf body = STRBUF_INIT;
	enum answer a;
	long long since = hv != NULL ? atoll(hv) : 0;
	int64_t now = time_now_ms();
	int rc;

	pthread_mutex_lock(&s->mu);
	if (s->nreq < 16) {
		snprintf(s->since[s->nreq], sizeof(s->since[0]), "%s", hv != NULL ? hv : "");
		s->at[s->nreq] = now;
	}
	a = s->ans[s->nreq < s->nans ? s->nreq : s->nans - 1];
	s->nreq++;
	pthread_mutex_unlock(&s->mu);
	switch (a) {
	case A_FAIL:
		return http_respond_text(req, 503, "down for a while\n");
	case A_TEXT:
		strbuf_printf(&body, "# TYPE m untyped\nm{instance=\"src\"} 5 %lld\n", (long long)now);
		rc = http_respond_data(req, 200, "text/plain; version=0.0.4", body.buf, body.len);
		break;
	default:
		/* a sample one ms after the cursor, and the window's end */
		strbuf_printf(&body, "# strata-pull 1 %lld %lld\nS m{instance=\"src\"}\n%lld 1\n# EOF\n",
		    since, a == A_PULL_AHEAD ? since + 20000 : (long long)(now - SCRAPE_PULL_SETTLE_MS),
		    since + 1);
		rc = http_respond_data(req, 200, PULL_CONTENT_TYPE, body.buf, body.len);
		break;
	}
	strbuf_free(&body);
	return rc;
}

static int
h_plain(struct http_request *req, void *arg)
{
	struct script *s = arg;
	const char *hv = http_request_header(req, PULL_SINCE_HEADER);

	pthread_mutex_lock(&s->mu);
	snprintf(s->plain_hdr, sizeof(s->plain_hdr), "%s", hv != NULL ? hv : "");
	s->nplain++;
	pthread_mutex_unlock(&s->mu);
	return http_respond_text(req, 200, "p 1\n");
}

static size_t
script_nreq(struct script *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = s->nreq;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void
wait_requests(struct script *s, size_t n)
{
	int i;

	for (i = 0; i < 500 && script_nreq(s) < n; i++)
		usleep(10000);
	if (script_nreq(s) < n)
		fail_msg("%zu requests after 5 s, wanted %zu", script_nreq(s), n);
}

/* read_cursor_file returns the cursor saved for a URL containing part, or -1. */
static long long
read_cursor_file(const char *dir, const char *part)
{
	struct strbuf path = STRBUF_INIT;
	char line[1024];
	long long v = -1;
	FILE *f;

	strbuf_printf(&path, "%s/%s", dir, SCRAPE_CURSOR_FILE);
	f = fopen(strbuf_cstr(&path), "r");
	strbuf_free(&path);
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (line[0] != '#' && strstr(line, part) != NULL)
			v = atoll(line);
	fclose(f);
	return v;
}

static void
test_pull_protocol(void **state)
{
	struct script s = { .ans = { A_PULL_AHEAD, A_FAIL, A_TEXT, A_PULL_NOW, A_PULL_NOW },
	    .nans = 5 };
	struct http_server *srv;
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct scrape_manager *m;
	struct strbuf y = STRBUF_INIT;
	struct scrape_target_info *ti;
	struct scrape_stats st;
	struct cfg *c;
	char err[256], *dir = make_tmpdir();
	int64_t t0 = time_now_ms(), since0, until4;
	long long saved;
	size_t n, i, nreq;
	int port;

	(void)state;
	pthread_mutex_init(&s.mu, NULL);
	srv = http_server_new("127.0.0.1:0", NULL, err, sizeof(err));
	assert_non_null(srv);
	assert_int_equal(http_server_route(srv, HTTP_GET, "/federate", 0, h_script, &s), 0);
	assert_int_equal(http_server_route(srv, HTTP_GET, "/other/federate", 0, h_plain, &s), 0);
	assert_int_equal(http_server_route(srv, HTTP_GET, "/metrics", 0, h_plain, &s), 0);
	assert_int_equal(http_server_start(srv, err, sizeof(err)), 0);
	port = http_server_port(srv);
	/* fed pulls; "noh" lacks honor_labels and "plain" scrapes /metrics:
	 * neither sends the header */
	strbuf_printf(&y, "scrape_configs:\n"
	    "  - job_name: fed\n    scrape_interval: 500ms\n    scrape_timeout: 400ms\n"
	    "    honor_labels: true\n    metrics_path: /federate\n"
	    "    params: {'match[]': ['{job=~\".+\"}']}\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
	    "  - job_name: noh\n    scrape_interval: 500ms\n    scrape_timeout: 400ms\n"
	    "    metrics_path: /other/federate\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
	    "  - job_name: plain\n    scrape_interval: 500ms\n    scrape_timeout: 400ms\n"
	    "    honor_labels: true\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n", port, port, port);
	c = load_cfg(strbuf_cstr(&y));
	m = new_manager(h, dir, 60000);
	apply(m, c);
	wait_requests(&s, 5);
	scrape_manager_stop(m);

	pthread_mutex_lock(&s.mu);
	nreq = s.nreq;
	/* the first pull starts a lookback before now */
	since0 = atoll(s.since[0]);
	assert_true(since0 >= t0 - 60000 - 1000 && since0 <= t0 - 60000 + 5000);
	/* answered 20 s ahead, far behind now: the next pull at once, from there */
	assert_int_equal(atoll(s.since[1]), since0 + 20000);
	if (s.at[1] - s.at[0] > 250)
		fail_msg("catch-up pull %lld ms after the first", (long long)(s.at[1] - s.at[0]));
	/* a failed pull leaves the cursor; so does a text answer */
	assert_int_equal(atoll(s.since[2]), since0 + 20000);
	assert_int_equal(atoll(s.since[3]), since0 + 20000);
	/* caught up: the next pull a tick later from the body's until */
	until4 = atoll(s.since[4]);
	assert_true(until4 >= s.at[3] - SCRAPE_PULL_SETTLE_MS - 10 && until4 <= s.at[3] - SCRAPE_PULL_SETTLE_MS);
	assert_true(s.at[4] - s.at[3] >= 250);
	assert_string_equal(s.plain_hdr, "");
	assert_true(s.nplain >= 2);
	pthread_mutex_unlock(&s.mu);

	scrape_manager_stats(m, &st);
	assert_true(st.pulls >= 3);
	assert_int_equal(st.pull_catchups, 1);
	assert_int_equal(st.cursor_write_errors, 0);
	scrape_stats_free(&st);
	/* the failed pull is a down target, and wrote no staleness marker */
	assert_int_equal(count_up(h, "fed", 0), 1);
	{
		struct matcher *mm = matcher_new(MATCH_EQUAL, "__name__", "m", NULL, 0);
		struct tsdb_series_set *ss = tsdb_head_select(h, &mm, 1, INT64_MIN, INT64_MAX);
		int64_t t;
		double v;

		assert_true(tsdb_series_set_next(ss));
		while (tsdb_iter_next(tsdb_series_set_iter(ss), &t, &v))
			assert_false(bits_of(v) == CHUNK_STALE_NAN_BITS);
		tsdb_series_set_free(ss);
		matcher_free(mm);
	}
	assert_int_equal(scrape_manager_targets(m, &ti, &n), 0);
	for (i = 0; i < n; i++) {
		if (strcmp(ti[i].pool, "fed") == 0) {
			assert_true(ti[i].pull);
			assert_string_equal(ti[i].last_error, "");
		} else {
			assert_false(ti[i].pull);
		}
	}
	scrape_target_info_free(ti, n);

	/* The file holds the start of the last successful pull (one behind);
	 * a new manager starts there. */
	saved = read_cursor_file(dir, "/federate?match");
	pthread_mutex_lock(&s.mu);
	assert_true(saved == atoll(s.since[nreq - 1]) || saved == atoll(s.since[nreq - 2]));
	assert_true(saved >= since0 + 20000);
	pthread_mutex_unlock(&s.mu);
	scrape_manager_free(m);
	saved = read_cursor_file(dir, "/federate?match");
	m = new_manager(h, dir, 60000);
	apply(m, c);
	wait_requests(&s, nreq + 1);
	pthread_mutex_lock(&s.mu);
	assert_int_equal(atoll(s.since[nreq]), saved);
	pthread_mutex_unlock(&s.mu);
	scrape_manager_free(m);

	http_server_free(srv);
	cfg_free(c);
	strbuf_free(&y);
	tsdb_head_free(h);
	rm_tmpdir(dir);
	pthread_mutex_destroy(&s.mu);
}

/* --- a cut between a central and a leaf ------------------------------------------------- */

#define NSER 6
#define LAG_MS 14000		/* the writer stamps samples this far back (< the settle time) */

struct leaf {
	struct tsdb_head *h;
	struct promql_storage st;
	struct api_federate *f;
	struct http_server *srv;
	int port;
	pthread_t writer;
	int stop;		/* atomic */
	int phase;		/* atomic: 1 = cut (series 4 ends, series 5 holds a NaN) */
	int64_t last_t;		/* atomic: newest timestamp written */
};

static struct labels *
series_labels(int i)
{
	char iv[8];
	struct label l[4] = {
		{ "__name__", i == 3 ? "dropped_m" : "m" }, { "job", "synth" },
		{ "instance", "t:1" }, { "i", iv },
	};

	snprintf(iv, sizeof(iv), "%d", i);
	return labels_new(l, 4);
}

static void
leaf_listen(struct leaf *l)
{
	char addr[64], err[256];
	int tries;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", l->port);
	for (tries = 0; tries < 50; tries++) {
		l->srv = http_server_new(l->port ? addr : "127.0.0.1:0", NULL, err, sizeof(err));
		if (l->srv != NULL)
			break;
		usleep(20000);
	}
	assert_non_null(l->srv);
	assert_int_equal(api_federate_route(l->f, l->srv), 0);
	assert_int_equal(http_server_start(l->srv, err, sizeof(err)), 0);
	l->port = http_server_port(l->srv);
}

/* leaf_writer appends a sample to every live series every 50 ms, stamped
 * LAG_MS back: committed well within the server's settle time, like a
 * scrape that took a while. During the cut series 4 ends with a marker and
 * series 5 gets a NaN that is not one. */
static void *
leaf_writer(void *arg)
{
	struct leaf *l = arg;
	struct labels *ls[NSER];
	uint64_t ref[NSER] = { 0 };
	double v = 0;
	bool ended = false, nan_done = false;
	int i;

	for (i = 0; i < NSER; i++)
		ls[i] = series_labels(i);
	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int64_t t = time_now_ms() - LAG_MS;
		struct tsdb_appender *a = tsdb_appender_new(l->h);
		bool cut = __atomic_load_n(&l->phase, __ATOMIC_ACQUIRE) == 1;

		v += 1;
		for (i = 0; i < NSER; i++) {
			double x = v + i;

			if (i == 4 && ended)
				continue;
			if (i == 4 && cut) {
				x = from_bits(CHUNK_STALE_NAN_BITS);
				ended = true;
			} else if (i == 5 && cut && !nan_done) {
				x = from_bits(UINT64_C(0x7ff8000000000001));
				nan_done = true;
			}
			assert_int_equal(tsdb_appender_append(a, &ref[i], ls[i], t, x), 0);
		}
		assert_int_equal(tsdb_appender_commit(a), 0);
		tsdb_appender_free(a);
		__atomic_store_n(&l->last_t, t, __ATOMIC_RELEASE);
		usleep(50000);
	}
	for (i = 0; i < NSER; i++)
		labels_free(ls[i]);
	return NULL;
}

/* backfill writes 20 minutes of history, from 40 to 20 minutes ago, every
 * 10 s, for series 0..3 (what the leaf held before the central came). */
static void
backfill(struct tsdb_head *h, int64_t now)
{
	int i;

	for (i = 0; i < 4; i++) {
		struct labels *ls = series_labels(i);
		uint64_t ref = 0;
		int64_t t;

		for (t = now - 40 * 60000; t < now - 20 * 60000; t += 10000)
			assert_int_equal(tsdb_head_append(h, &ref, ls, t, (double)(t / 1000 + i)), 0);
		labels_free(ls);
	}
}

/* newest_on returns the newest timestamp of series i (leaf labels, on
 * either head), or INT64_MIN. */
static int64_t
newest_on(struct tsdb_head *h, int i)
{
	struct labels *ls = series_labels(i);
	struct matcher *ms[4];
	struct tsdb_series_set *ss;
	int64_t t, newest = INT64_MIN;
	double v;
	uint32_t k;

	for (k = 0; k < ls->n; k++)
		ms[k] = matcher_new(MATCH_EQUAL, ls->v[k].name, ls->v[k].value, NULL, 0);
	ss = tsdb_head_select(h, ms, ls->n, INT64_MIN, INT64_MAX);
	while (tsdb_series_set_next(ss))
		while (tsdb_iter_next(tsdb_series_set_iter(ss), &t, &v))
			newest = t;
	tsdb_series_set_free(ss);
	for (k = 0; k < ls->n; k++)
		matcher_free(ms[k]);
	labels_free(ls);
	return newest;
}

/* compare checks that every series of the leaf (job="synth") is on the
 * central with the external label added and the very same samples, that
 * the dropped series is not, and returns the number of samples compared. */
static size_t
compare(struct tsdb_head *leaf, struct tsdb_head *central, size_t *stale, size_t *nan)
{
	struct matcher *m = matcher_new(MATCH_EQUAL, "job", "synth", NULL, 0);
	struct tsdb_series_set *ls = tsdb_head_select(leaf, &m, 1, INT64_MIN, INT64_MAX);
	struct labels_builder *lb = labels_builder_new();
	size_t total = 0, nseries = 0;

	*stale = *nan = 0;
	while (tsdb_series_set_next(ls)) {
		const struct labels *l = tsdb_series_set_labels(ls);
		struct labels *want;
		struct matcher *ms[8];
		struct tsdb_series_set *cs;
		struct tsdb_iter *li, *ci = NULL;
		int64_t lt, ct;
		double lv, cv;
		uint32_t k;
		size_t found = 0;

		labels_builder_reset(lb, l);
		labels_builder_set(lb, "site", "leaf1");
		want = labels_builder_labels(lb);
		for (k = 0; k < want->n; k++)
			ms[k] = matcher_new(MATCH_EQUAL, want->v[k].name, want->v[k].value, NULL, 0);
		cs = tsdb_head_select(central, ms, want->n, INT64_MIN, INT64_MAX);
		while (tsdb_series_set_next(cs)) {
			if (labels_equal(tsdb_series_set_labels(cs), want)) {
				found++;
				ci = tsdb_series_set_iter(cs);
				break;
			}
		}
		if (strcmp(labels_name(l), "dropped_m") == 0) {
			assert_int_equal(found, 0);	/* metric relabeling dropped it */
		} else {
			nseries++;
			if (found != 1)
				fail_msg("series %s missing on the central", labels_name(l));
			li = tsdb_series_set_iter(ls);
			for (;;) {
				bool lh = tsdb_iter_next(li, &lt, &lv);
				bool chh = tsdb_iter_next(ci, &ct, &cv);

				if (!lh && !chh)
					break;
				if (lh != chh || lt != ct || bits_of(lv) != bits_of(cv))
					fail_msg("series %s i=%s: leaf %s %lld %016llx, central %s %lld %016llx",
					    labels_name(l), labels_get(l, "i"), lh ? "has" : "ends",
					    (long long)lt, (unsigned long long)bits_of(lv),
					    chh ? "has" : "ends", (long long)ct,
					    (unsigned long long)bits_of(cv));
				total++;
				if (bits_of(lv) == CHUNK_STALE_NAN_BITS)
					(*stale)++;
				else if (isnan(lv))
					(*nan)++;
			}
		}
		tsdb_series_set_free(cs);
		for (k = 0; k < want->n; k++)
			matcher_free(ms[k]);
		labels_free(want);
	}
	tsdb_series_set_free(ls);
	matcher_free(m);
	labels_builder_free(lb);
	assert_int_equal(nseries, NSER - 1);
	return total;
}

static void
test_pull_cut(void **state)
{
	struct leaf l;
	struct label el = { "site", "leaf1" };
	struct labels *ext = labels_new(&el, 1);
	struct tsdb_head *central = tsdb_head_new(NULL, NULL, 0);
	struct scrape_manager *m;
	struct scrape_stats st;
	struct strbuf y = STRBUF_INIT;
	struct cfg *c;
	char *dir = make_tmpdir();
	int64_t now = time_now_ms(), last;
	size_t total, stale, nan, down;
	int i;

	(void)state;
	memset(&l, 0, sizeof(l));
	l.h = tsdb_head_new(NULL, NULL, 0);
	backfill(l.h, now);
	promql_storage_head(&l.st, l.h);
	l.f = api_federate_new(l.h, 5 * 60 * 1000);
	api_federate_set_storage(l.f, &l.st);
	api_federate_set_external_labels(l.f, ext);
	leaf_listen(&l);
	assert_int_equal(pthread_create(&l.writer, NULL, leaf_writer, &l), 0);

	/* The central: a plain federation job; it starts 45 minutes back. */
	strbuf_printf(&y, "scrape_configs:\n"
	    "  - job_name: fed\n    scrape_interval: 300ms\n    scrape_timeout: 250ms\n"
	    "    honor_labels: true\n    metrics_path: /federate\n"
	    "    params: {'match[]': ['{job=~\".+\"}']}\n"
	    "    metric_relabel_configs:\n"
	    "      - source_labels: [__name__]\n        regex: dropped_.*\n        action: drop\n"
	    "    static_configs: [{targets: ['127.0.0.1:%d']}]\n", l.port);
	c = load_cfg(strbuf_cstr(&y));
	m = new_manager(central, dir, 45 * 60000);
	apply(m, c);
	/* caught up in capped pieces: the backfill is there */
	for (i = 0; i < 300 && newest_on(central, 0) < now - 20 * 60000 - 10000; i++)
		usleep(20000);
	assert_true(newest_on(central, 0) >= now - 20 * 60000 - 10000);
	scrape_manager_stats(m, &st);
	assert_true(st.pull_catchups >= 3);
	scrape_stats_free(&st);
	usleep(1000000);

	/* The cut: the leaf's listener goes away, the leaf keeps writing. */
	http_server_free(l.srv);
	l.srv = NULL;
	__atomic_store_n(&l.phase, 1, __ATOMIC_RELEASE);
	usleep(2500000);
	leaf_listen(&l);
	usleep(500000);
	__atomic_store_n(&l.stop, 1, __ATOMIC_RELEASE);
	pthread_join(l.writer, NULL);
	last = __atomic_load_n(&l.last_t, __ATOMIC_ACQUIRE);
	/* The last samples settle a second after they were written. */
	for (i = 0; i < 300 && newest_on(central, 0) < last; i++)
		usleep(20000);
	scrape_manager_stop(m);

	total = compare(l.h, central, &stale, &nan);
	assert_true(total > 5 * 120);
	assert_int_equal(stale, 1);
	assert_int_equal(nan, 1);
	/* the cut was seen (up == 0), and the central wrote no marker itself */
	down = count_up(central, "fed", 0);
	assert_true(down >= 3);
	assert_true(count_up(central, "fed", 1) >= 5);
	scrape_manager_stats(m, &st);
	assert_int_equal(st.samples_hook_dropped, 0);
	assert_true(st.pull_samples >= total);
	scrape_stats_free(&st);
	assert_true(read_cursor_file(dir, "/federate?match") > now - 60000);

	scrape_manager_free(m);
	cfg_free(c);
	strbuf_free(&y);
	http_server_free(l.srv);
	api_federate_free(l.f);
	labels_free(ext);
	tsdb_head_free(l.h);
	tsdb_head_free(central);
	rm_tmpdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pull_protocol),
		cmocka_unit_test(test_pull_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
