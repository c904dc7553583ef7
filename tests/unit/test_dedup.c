/* tests/unit/test_dedup.c - deduplication of replicated series (central/dedup).
 *
 * The module is driven directly: samples go through dedup_hook() as the
 * scrape workers would hand them over, the committer's pass (dedup_run)
 * runs on a simulated clock, and what it stored is read back from a real
 * head. A small simulation plays replicated leaves: each scrapes the same
 * counter targets every S at its own phase, stamps samples with a clock a
 * few hundred ms off, and is pulled by the central every P with the leaf's
 * 15 s settling; leaves die, come back, lose a target (staleness marker).
 * Checked on the stored output: one series per target without the replica
 * label, every sample one replica's, time strictly increasing, runs from
 * one replica at a time (switches counted), no gap beyond a scrape
 * interval, and rate() (the real PromQL engine) against the true rate and
 * against the same query over one surviving replica's complete series.
 * Determinism: the same samples in other arrival orders (pull phases,
 * which leaf first, committer cadence) store the same samples bit for bit.
 * Then a restart (the store's newest sample resumes the group), the skew
 * guard, markers, forgetting, the queue bound, pass-through, metrics, and
 * the threaded committer beside concurrent hooks.
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

#include "central/dedup.h"
#include "labels/matcher.h"
#include "promql/engine.h"
#include "promql/storage.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define RL "leaf_replica"
#define BASE INT64_C(1700000100000)	/* a multiple of DEDUP_EPOCH_MS */
#define SEC 1000
#define MIN (60 * SEC)
#define MAXT 4

/* --- a clock and a store --------------------------------------------------- */

static int64_t fake_now;

static int64_t
clock_fn(void *arg)
{
	(void)arg;
	return fake_now;
}

struct fx {
	struct tsdb_head *h;
	struct dedup *d;
};

static void
fx_open(struct fx *f, struct tsdb_head *h, int64_t settle)
{
	struct dedup_opts o = { 0 };
	char err[256];

	f->h = h;
	if (f->h == NULL) {
		f->h = tsdb_head_new(NULL, err, sizeof err);
		assert_non_null(f->h);
	}
	o.replica_label = RL;
	o.settle_ms = settle;
	o.now = clock_fn;
	o.manual = true;
	f->d = dedup_new(&o, err, sizeof err);
	assert_non_null(f->d);
	assert_int_equal(dedup_start(f->d, f->h, err, sizeof err), 0);
}

static void
fx_close(struct fx *f, bool keep_head)
{
	dedup_free(f->d);
	f->d = NULL;
	if (!keep_head) {
		tsdb_head_free(f->h);
		f->h = NULL;
	}
}

static struct labels *
series(const char *name, const char *instance, const char *replica)
{
	struct label v[4];
	size_t n = 0;

	v[n++] = (struct label){ LABEL_METRIC_NAME, name };
	v[n++] = (struct label){ "instance", instance };
	v[n++] = (struct label){ "job", "synth" };
	if (replica != NULL)
		v[n++] = (struct label){ RL, replica };
	return labels_new(v, n);
}

static double
stale(void)
{
	uint64_t b = CHUNK_STALE_NAN_BITS;
	double x;

	memcpy(&x, &b, sizeof x);
	return x;
}

static uint64_t
bits(double x)
{
	uint64_t b;

	memcpy(&b, &x, sizeof b);
	return b;
}

static enum scrape_sample_verdict
feed(struct dedup *d, const struct labels *ls, int64_t t, double v)
{
	struct scrape_sample s = { 0 };
	struct labels *rep = NULL;
	enum scrape_sample_verdict r;

	s.ls = ls;
	s.t = t;
	s.v = v;
	s.pull = true;
	r = dedup_hook(d, &s, &rep);
	assert_null(rep);
	return r;
}

struct pt {
	int64_t t;
	double v;
	int src;	/* replica index, -1 unknown */
};

struct got {
	struct pt *p;
	size_t n;
};

/* stored reads every series named name; each must lack the replica label
 * and be one of the instances t0..t(n-1). */
static void
stored(struct tsdb_head *h, const char *name, struct got *out, int ninst)
{
	char err[128];
	struct matcher *m = matcher_new(MATCH_EQUAL, LABEL_METRIC_NAME, name, err, sizeof err);
	struct tsdb_series_set *ss = tsdb_head_select(h, &m, 1, INT64_MIN, INT64_MAX);

	memset(out, 0, sizeof(*out) * (size_t)ninst);
	while (tsdb_series_set_next(ss)) {
		const struct labels *ls = tsdb_series_set_labels(ss);
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		const char *inst = labels_get(ls, "instance");
		int64_t t;
		double v;
		int k;

		assert_null(labels_get(ls, RL));
		assert_non_null(inst);
		k = atoi(inst + 1);
		assert_true(k >= 0 && k < ninst);
		assert_int_equal(out[k].n, 0);	/* one series per target */
		while (tsdb_iter_next(it, &t, &v)) {
			out[k].p = mem_realloc(out[k].p, (out[k].n + 1) * sizeof(*out[k].p));
			out[k].p[out[k].n++] = (struct pt){ t, v, -1 };
		}
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
}

static void
got_free(struct got *g, int n)
{
	for (int i = 0; i < n; i++)
		mem_free(g[i].p);
}

/* --- the simulation -------------------------------------------------------- */

struct srep {
	const char *value;
	int64_t phase;		/* scrape phase in S */
	int64_t skew;		/* added to the true time in its stamps */
	int64_t pull_phase;	/* when the central pulls it, in P */
	int64_t down_from, down_until;	/* leaf dead (true time) */
	int64_t down2_from, down2_until;	/* and once more */
	int64_t mark_from, mark_until;	/* target unreachable for this leaf */
	int mark_target;		/* which target (-1: all) */
	/* generated per target */
	struct pt *s[MAXT];
	size_t n[MAXT], next[MAXT];
};

struct sim {
	int64_t start, end;	/* true time of the scrapes */
	int64_t S, P, settle;	/* scrape and pull intervals, leaf settling */
	int ntargets;
	double rate[MAXT];	/* per second */
	struct srep r[3];
	int nrep;
	bool reverse;		/* pull the later replicas first on a shared tick */
	int64_t tick;		/* the committer's cadence */
};

static void
sim_defaults(struct sim *s)
{
	memset(s, 0, sizeof(*s));
	s->start = BASE;
	s->end = BASE + 20 * MIN;
	s->S = 15 * SEC;
	s->P = 15 * SEC;
	s->settle = 15 * SEC;
	s->ntargets = 3;
	for (int i = 0; i < MAXT; i++)
		s->rate[i] = 10.0 + 7.5 * i;
	s->nrep = 2;
	s->r[0] = (struct srep){ .value = "leaf-a:9090", .phase = 3 * SEC, .skew = 300,
	    .pull_phase = 5 * SEC, .mark_target = -1 };
	s->r[1] = (struct srep){ .value = "leaf-b:9090", .phase = 9 * SEC, .skew = -250,
	    .pull_phase = 11 * SEC, .mark_target = -1 };
	s->tick = 100;
}

static bool
in(int64_t t, int64_t from, int64_t until)
{
	return from < until && t >= from && t < until;
}

static double
truth(const struct sim *s, int k, int64_t tau)
{
	return 1000.0 + s->rate[k] * (double)(tau - s->start) / 1000.0;
}

static void
sim_generate(struct sim *s)
{
	for (int i = 0; i < s->nrep; i++) {
		struct srep *r = &s->r[i];

		for (int k = 0; k < s->ntargets; k++) {
			bool marked = false;

			for (int64_t tau = s->start + r->phase; tau < s->end; tau += s->S) {
				struct pt p = { tau + r->skew, truth(s, k, tau), i };

				if (in(tau, r->down_from, r->down_until) ||
				    in(tau, r->down2_from, r->down2_until))
					continue;
				if ((r->mark_target < 0 || r->mark_target == k) &&
				    in(tau, r->mark_from, r->mark_until)) {
					if (marked)
						continue;
					marked = true;
					p.v = stale();
				}
				r->s[k] = mem_realloc(r->s[k], (r->n[k] + 1) * sizeof(struct pt));
				r->s[k][r->n[k]++] = p;
			}
		}
	}
}

static void
sim_free(struct sim *s)
{
	for (int i = 0; i < s->nrep; i++)
		for (int k = 0; k < MAXT; k++)
			mem_free(s->r[i].s[k]);
}

/* sim_pull hands replica i's samples stamped up to until to the hook,
 * series after series. */
static void
sim_pull(struct sim *s, struct dedup *d, int i, int64_t until, struct labels **ls)
{
	struct srep *r = &s->r[i];

	for (int k = 0; k < s->ntargets; k++)
		while (r->next[k] < r->n[k] && r->s[k][r->next[k]].t <= until) {
			const struct pt *p = &r->s[k][r->next[k]++];

			assert_int_equal(feed(d, ls[i * MAXT + k], p->t, p->v), SCRAPE_SAMPLE_DROP);
		}
}

/* sim_run plays the whole run from wall time from to to (the central's
 * clock is the true time) into f. */
static void
sim_run(struct sim *s, struct fx *f, int64_t from, int64_t to)
{
	struct labels *ls[3 * MAXT];
	char inst[16];

	for (int i = 0; i < s->nrep; i++)
		for (int k = 0; k < s->ntargets; k++) {
			snprintf(inst, sizeof inst, "t%d", k);
			ls[i * MAXT + k] = series("req_total", inst, s->r[i].value);
		}
	for (int64_t w = from; w <= to; w += 100) {
		fake_now = w;
		for (int j = 0; j < s->nrep; j++) {
			int i = s->reverse ? s->nrep - 1 - j : j;
			struct srep *r = &s->r[i];

			if ((w - s->start - r->pull_phase) % s->P != 0 ||
			    in(w, r->down_from, r->down_until) || in(w, r->down2_from, r->down2_until))
				continue;
			/* the leaf answers up to its own now - settle */
			sim_pull(s, f->d, i, w + r->skew - s->settle, ls);
		}
		if ((w - from) % s->tick == 0)
			dedup_run(f->d);
	}
	for (int i = 0; i < s->nrep; i++)
		for (int k = 0; k < s->ntargets; k++)
			labels_free(ls[i * MAXT + k]);
}

/* attribute finds which replica each stored sample is; every one must be
 * exactly one replica's sample. */
static void
attribute(const struct sim *s, int k, struct got *g)
{
	for (size_t j = 0; j < g->n; j++) {
		struct pt *p = &g->p[j];

		for (int i = 0; i < s->nrep && p->src < 0; i++)
			for (size_t x = 0; x < s->r[i].n[k]; x++)
				if (s->r[i].s[k][x].t == p->t &&
				    bits(s->r[i].s[k][x].v) == bits(p->v)) {
					p->src = i;
					break;
				}
		if (p->src < 0)
			fail_msg("target %d: stored sample %lld %g is no replica's", k,
			    (long long)p->t, p->v);
		if (j > 0)
			assert_true(p->t > g->p[j - 1].t);
	}
}

static void
dump(const char *what, const struct got *g)
{
	fprintf(stderr, "%s:", what);
	for (size_t j = 0; j < g->n; j++)
		if (j == 0 || g->p[j].src != g->p[j - 1].src || j + 1 == g->n)
			fprintf(stderr, " [%zu]+%llds:%d", j,
			    (long long)((g->p[j].t - BASE) / 1000), g->p[j].src);
	fprintf(stderr, "\n");
}

/* runs counts the stretches of one replica in a row (printing them when
 * they are not the n expected). */
static int
runs(const struct got *g, int want)
{
	int n = 0;

	for (size_t j = 0; j < g->n; j++)
		if (j == 0 || g->p[j].src != g->p[j - 1].src)
			n++;
	if (n != want)
		dump("stretches", g);
	return n;
}

static int64_t
max_gap(const struct got *g, int64_t from, int64_t to)
{
	int64_t m = 0;

	for (size_t j = 1; j < g->n; j++)
		if (g->p[j].t > from && g->p[j - 1].t < to && g->p[j].t - g->p[j - 1].t > m)
			m = g->p[j].t - g->p[j - 1].t;
	return m;
}

/* query_rate runs expr at t over h; NAN without a result for instance k. */
static double
query_rate(struct tsdb_head *h, const char *expr, int64_t t, int k)
{
	struct promql_engine *e = promql_engine_new(NULL);
	struct promql_storage st;
	struct promql_result res;
	struct promql_error err;
	double v = NAN;
	char inst[16];

	snprintf(inst, sizeof inst, "t%d", k);
	promql_storage_head(&st, h);
	assert_int_equal(promql_query_instant(e, &st, expr, strlen(expr), t, NULL, &res, &err), 0);
	for (size_t i = 0; i < res.nvec; i++) {
		const char *in = labels_get(res.vec[i].ls, "instance");

		if (in != NULL && strcmp(in, inst) == 0)
			v = res.vec[i].v;
	}
	promql_result_free(&res);
	promql_engine_free(e);
	return v;
}

/* single_source stores replica i's complete series (the truth one leaf
 * holds) in a head of its own. */
static struct tsdb_head *
single_source(const struct sim *s, int i)
{
	char err[128], inst[16];
	struct tsdb_head *h = tsdb_head_new(NULL, err, sizeof err);

	for (int k = 0; k < s->ntargets; k++) {
		struct labels *ls;
		uint64_t ref = 0;

		snprintf(inst, sizeof inst, "t%d", k);
		ls = series("req_total", inst, NULL);
		for (size_t x = 0; x < s->r[i].n[k]; x++)
			assert_int_equal(tsdb_head_append(h, &ref, ls, s->r[i].s[k][x].t,
			    s->r[i].s[k][x].v), 0);
		labels_free(ls);
	}
	return h;
}

/* check_rates compares rate() over the stored output with the true rate
 * (within tol, relative) and with the single source's (within tol too),
 * every 15 s from 2 minutes in to the end of the data. */
static void
check_rates(const struct sim *s, struct tsdb_head *h, struct tsdb_head *single,
    const char *range, double tol, int64_t skip_from, int64_t skip_until)
{
	char expr[64];
	int64_t r = strcmp(range, "5m") == 0 ? 5 * MIN : MIN;

	snprintf(expr, sizeof expr, "rate(req_total[%s])", range);
	/* from the first instant whose window lies wholly after the first
	 * sample (before, rate() extrapolates a partial window) */
	for (int64_t t = s->start + r + s->S; t <= s->end - MIN; t += 15 * SEC) {
		if (in(t, skip_from, skip_until))
			continue;
		for (int k = 0; k < s->ntargets; k++) {
			double got = query_rate(h, expr, t, k);
			double ref = single != NULL ? query_rate(single, expr, t, k) : NAN;

			if (!(fabs(got - s->rate[k]) <= tol * s->rate[k]))
				fail_msg("%s at +%llds target %d: %g, truth %g", expr,
				    (long long)((t - s->start) / 1000), k, got, s->rate[k]);
			if (!isnan(ref) && !(fabs(got - ref) <= tol * ref))
				fail_msg("%s at +%llds target %d: %g, single source %g", expr,
				    (long long)((t - s->start) / 1000), k, got, ref);
		}
	}
}

/* run_sim plays s into a fresh store and returns what it stored. */
static void
run_sim(struct sim *s, struct fx *f, struct got *g)
{
	fx_open(f, NULL, s->settle + s->P + 10 * SEC);
	sim_run(s, f, s->start, s->end + 3 * MIN);
	stored(f->h, "req_total", g, s->ntargets);
	for (int k = 0; k < s->ntargets; k++)
		attribute(s, k, &g[k]);
}

static void
same_output(const struct got *a, const struct got *b, int n)
{
	for (int k = 0; k < n; k++) {
		assert_int_equal(a[k].n, b[k].n);
		for (size_t j = 0; j < a[k].n; j++) {
			assert_int_equal(a[k].p[j].t, b[k].p[j].t);
			assert_int_equal(bits(a[k].p[j].v), bits(b[k].p[j].v));
		}
	}
}

/* --- scenarios ------------------------------------------------------------- */

/* Two leaves with the same phase, no skew: the same samples twice. One
 * copy is stored, exactly the single source. */
static void
test_identical(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];
	struct dedup_stats st;

	(void)state;
	sim_defaults(&s);
	s.r[1].phase = s.r[0].phase;
	s.r[1].skew = s.r[0].skew = 0;
	sim_generate(&s);
	run_sim(&s, &f, g);
	for (int k = 0; k < s.ntargets; k++) {
		assert_int_equal(g[k].n, s.r[0].n[k]);
		for (size_t j = 0; j < g[k].n; j++) {
			assert_int_equal(g[k].p[j].t, s.r[0].s[k][j].t);
			assert_int_equal(bits(g[k].p[j].v), bits(s.r[0].s[k][j].v));
		}
	}
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.groups, 3);
	assert_int_equal(st.switches, 0);
	assert_int_equal(st.samples_appended, g[0].n + g[1].n + g[2].n);
	assert_int_equal(st.samples_in, st.samples_appended + st.samples_dropped);
	check_rates(&s, f.h, NULL, "1m", 1e-9, 0, 0);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* Both alive, phases 6 s apart, clocks 550 ms apart: one replica's samples
 * only. B's first sample is the earliest, but A's comes within one
 * interval: A (the smaller label) is elected at birth and never left. */
static void
test_steady(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];
	struct dedup_stats st;

	(void)state;
	sim_defaults(&s);
	s.r[0].phase = 10 * SEC;
	s.r[1].phase = 4 * SEC;
	sim_generate(&s);
	run_sim(&s, &f, g);
	for (int k = 0; k < s.ntargets; k++) {
		assert_int_equal(runs(&g[k], 1), 1);
		assert_int_equal(g[k].p[0].src, 0);
		assert_int_equal(g[k].n, s.r[0].n[k]);
		assert_true(max_gap(&g[k], 0, INT64_MAX) <= s.S);
	}
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.switches, 0);
	check_rates(&s, f.h, NULL, "1m", 0.02, 0, 0);
	check_rates(&s, f.h, NULL, "5m", 0.005, 0, 0);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* A dies for good (SIGKILL: no marker, its last pull's samples lost): B
 * takes over right after A's last stored sample. */
static void
test_failover(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];
	struct tsdb_head *single;

	(void)state;
	sim_defaults(&s);
	s.r[0].down_from = BASE + 6 * MIN + 2 * SEC;
	s.r[0].down_until = INT64_MAX;
	sim_generate(&s);
	run_sim(&s, &f, g);
	for (int k = 0; k < s.ntargets; k++) {
		assert_int_equal(runs(&g[k], 2), 2);
		assert_int_equal(g[k].p[0].src, 0);
		assert_int_equal(g[k].p[g[k].n - 1].src, 1);
		/* B's samples continue to the end */
		assert_int_equal(g[k].p[g[k].n - 1].t, s.r[1].s[k][s.r[1].n[k] - 1].t);
		assert_true(max_gap(&g[k], 0, INT64_MAX) <= s.S);
	}
	single = single_source(&s, 1);
	check_rates(&s, f.h, single, "1m", 0.03, 0, 0);
	check_rates(&s, f.h, single, "5m", 0.01, 0, 0);
	tsdb_head_free(single);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* A dies at 6 min and is back at 9: B fills in, A is elected again at the
 * 10 min epoch boundary. */
static void
test_return(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];
	struct tsdb_head *single;

	(void)state;
	sim_defaults(&s);
	s.r[0].down_from = BASE + 6 * MIN + 2 * SEC;
	s.r[0].down_until = BASE + 9 * MIN;
	s.end += 5 * SEC;	/* A's last round is the later one: no takeover at the end */
	sim_generate(&s);
	run_sim(&s, &f, g);
	for (int k = 0; k < s.ntargets; k++) {
		assert_int_equal(runs(&g[k], 3), 3);
		for (size_t j = 0; j < g[k].n; j++) {
			int64_t t = g[k].p[j].t;

			if (t < BASE + 5 * MIN || t > BASE + 10 * MIN + s.S)
				assert_int_equal(g[k].p[j].src, 0);
			if (t > BASE + 7 * MIN && t < BASE + 10 * MIN)
				assert_int_equal(g[k].p[j].src, 1);
		}
		assert_true(max_gap(&g[k], 0, INT64_MAX) <= s.S);
	}
	single = single_source(&s, 1);
	check_rates(&s, f.h, single, "1m", 0.03, 0, 0);
	check_rates(&s, f.h, single, "5m", 0.01, 0, 0);
	tsdb_head_free(single);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* As above, but A is away again across the 10 min boundary (45 s between
 * its samples there: not live at it), so B goes on until 15 min. */
static void
test_epoch_hole(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];

	(void)state;
	sim_defaults(&s);
	s.r[0].down_from = BASE + 6 * MIN + 2 * SEC;
	s.r[0].down_until = BASE + 9 * MIN;
	s.r[0].down2_from = BASE + 9 * MIN + 40 * SEC;
	s.r[0].down2_until = BASE + 10 * MIN + 15 * SEC;
	s.end += 5 * SEC;
	sim_generate(&s);
	run_sim(&s, &f, g);
	for (int k = 0; k < s.ntargets; k++) {
		assert_int_equal(runs(&g[k], 3), 3);
		for (size_t j = 0; j < g[k].n; j++) {
			int64_t t = g[k].p[j].t;

			if (t > BASE + 7 * MIN && t < BASE + 15 * MIN)
				assert_int_equal(g[k].p[j].src, 1);
			if (t > BASE + 15 * MIN + s.S)
				assert_int_equal(g[k].p[j].src, 0);
		}
		assert_true(max_gap(&g[k], 0, INT64_MAX) <= s.S);
	}
	check_rates(&s, f.h, NULL, "1m", 0.03, 0, 0);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* Staleness markers: A loses target t0 (a marker, then nothing) while B
 * still scrapes it: B takes over and no marker is stored. Then B loses
 * it too: its marker is stored, ending the series. On t1 only B (not
 * elected) sends a marker and comes back: nothing changes. */
static void
test_markers(void **state)
{
	struct sim s;
	struct fx f;
	struct got g[MAXT];
	struct tsdb_head *single;
	struct dedup_stats st;
	int stale0 = 0;

	(void)state;
	sim_defaults(&s);
	s.ntargets = 2;
	s.r[0].mark_from = BASE + 6 * MIN;
	s.r[0].mark_until = INT64_MAX;
	s.r[0].mark_target = 0;
	s.end += 5 * SEC;	/* A's last round is the later one: no takeover at the end */
	sim_generate(&s);
	/* B: target 0 gone at 12 min; target 1 gone between 7 and 8 min */
	for (int k = 0; k < 2; k++) {
		struct srep *r = &s.r[1];
		size_t w = 0;
		bool marked = false;

		for (size_t x = 0; x < r->n[k]; x++) {
			int64_t tau = r->s[k][x].t - r->skew;
			bool gone = k == 0 ? tau >= BASE + 12 * MIN :
			    (tau >= BASE + 7 * MIN && tau < BASE + 8 * MIN);

			if (gone && marked)
				continue;
			r->s[k][w] = r->s[k][x];
			if (gone) {
				r->s[k][w].v = stale();
				marked = true;
			}
			w++;
		}
		r->n[k] = w;
	}
	run_sim(&s, &f, g);
	/* t0: A, then B, then B's marker last; nothing after */
	assert_int_equal(runs(&g[0], 2), 2);
	for (size_t j = 0; j < g[0].n; j++)
		if (bits(g[0].p[j].v) == CHUNK_STALE_NAN_BITS)
			stale0++;
	assert_int_equal(stale0, 1);
	assert_int_equal(bits(g[0].p[g[0].n - 1].v), CHUNK_STALE_NAN_BITS);
	assert_int_equal(g[0].p[g[0].n - 1].src, 1);
	assert_true(max_gap(&g[0], 0, INT64_MAX) <= s.S);
	/* t1: A throughout, no marker */
	assert_int_equal(runs(&g[1], 1), 1);
	assert_int_equal(g[1].n, s.r[0].n[1]);
	for (size_t j = 0; j < g[1].n; j++)
		assert_int_not_equal(bits(g[1].p[j].v), CHUNK_STALE_NAN_BITS);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.switches, 1);
	single = single_source(&s, 1);
	s.end = BASE + 12 * MIN;
	check_rates(&s, f.h, NULL, "1m", 0.03, 0, 0);
	tsdb_head_free(single);
	got_free(g, s.ntargets);
	fx_close(&f, false);
	sim_free(&s);
}

/* The same samples arriving in other orders store the same samples. */
static void
determinism_case(void (*setup)(struct sim *))
{
	struct got ref[MAXT], g[MAXT];
	struct fx f;
	static const int64_t pulls[][2] = {
		{ 5 * SEC, 11 * SEC }, { 11 * SEC, 5 * SEC }, { 0, 0 }, { 14 * SEC, 1 * SEC },
		{ 4 * SEC, 8 * SEC },
	};

	for (size_t v = 0; v < sizeof(pulls) / sizeof(pulls[0]); v++) {
		for (int rev = 0; rev < 2; rev++) {
			struct sim s;

			sim_defaults(&s);
			setup(&s);
			s.r[0].pull_phase = pulls[v][0];
			s.r[1].pull_phase = pulls[v][1];
			s.reverse = rev;
			s.tick = rev ? 700 : 100;
			sim_generate(&s);
			run_sim(&s, &f, v == 0 && rev == 0 ? ref : g);
			if (v != 0 || rev != 0) {
				same_output(ref, g, s.ntargets);
				got_free(g, s.ntargets);
			}
			fx_close(&f, false);
			sim_free(&s);
		}
	}
	got_free(ref, MAXT > 3 ? 3 : MAXT);
}

static void
setup_failover(struct sim *s)
{
	s->r[0].down_from = BASE + 6 * MIN + 2 * SEC;
	s->r[0].down_until = BASE + 9 * MIN;
	s->r[1].down_from = BASE + 14 * MIN;
	s->r[1].down_until = BASE + 15 * MIN;
}

static void
setup_markers(struct sim *s)
{
	s->r[0].mark_from = BASE + 4 * MIN;
	s->r[0].mark_until = BASE + 5 * MIN;
	s->r[1].mark_from = BASE + 11 * MIN;
	s->r[1].mark_until = BASE + 13 * MIN;
}

/* Both lose the targets for two minutes: the series ends with a marker
 * and starts again. */
static void
setup_gone(struct sim *s)
{
	s->r[0].mark_from = BASE + 6 * MIN;
	s->r[0].mark_until = BASE + 8 * MIN;
	s->r[1].mark_from = BASE + 6 * MIN;
	s->r[1].mark_until = BASE + 8 * MIN + 10 * SEC;
	s->r[1].phase = 2 * SEC;	/* elected at birth */
}

static void
setup_three(struct sim *s)
{
	s->nrep = 3;
	s->r[2] = (struct srep){ .value = "leaf-0:9090", .phase = 13 * SEC, .skew = 120,
	    .pull_phase = 2 * SEC, .mark_target = -1,
	    .down_from = BASE + 3 * MIN, .down_until = BASE + 8 * MIN };
	s->r[0].down_from = BASE + 11 * MIN;
	s->r[0].down_until = INT64_MAX;
}

static void
test_determinism(void **state)
{
	(void)state;
	determinism_case(setup_failover);
	determinism_case(setup_markers);
	determinism_case(setup_gone);
	determinism_case(setup_three);
}

/* The two centrals of a pair started 8 minutes apart: the second one's
 * first pull starts 5 minutes back (from 3:05, where B's sample is the
 * earliest), and it still stores what the first one stores. */
static void
test_pair_start(void **state)
{
	struct sim s, s2;
	struct fx f1, f2;
	struct got g1[MAXT], g2[MAXT];

	(void)state;
	sim_defaults(&s);
	s.r[0].down_from = BASE + 10 * MIN + 2 * SEC;	/* and a takeover later on */
	s.r[0].down_until = BASE + 12 * MIN;
	sim_generate(&s);
	s2 = s;
	run_sim(&s, &f1, g1);
	fx_open(&f2, NULL, s.settle + s.P + 10 * SEC);
	for (int i = 0; i < s2.nrep; i++)
		for (int k = 0; k < s2.ntargets; k++)
			while (s2.r[i].next[k] < s2.r[i].n[k] &&
			    s2.r[i].s[k][s2.r[i].next[k]].t <= BASE + 3 * MIN + 5 * SEC)
				s2.r[i].next[k]++;
	sim_run(&s2, &f2, BASE + 8 * MIN, s.end + 3 * MIN);
	stored(f2.h, "req_total", g2, s.ntargets);
	for (int k = 0; k < s.ntargets; k++)
		attribute(&s, k, &g2[k]);
	for (int k = 0; k < s.ntargets; k++) {
		size_t j = 0;

		assert_true(g2[k].n > 20);
		while (j < g1[k].n && g1[k].p[j].t < g2[k].p[0].t)
			j++;
		assert_true(g2[k].p[0].t < BASE + 3 * MIN + 25 * SEC);
		assert_int_equal(g1[k].n - j, g2[k].n);
		for (size_t x = 0; x < g2[k].n; x++) {
			assert_int_equal(g1[k].p[j + x].t, g2[k].p[x].t);
			assert_int_equal(bits(g1[k].p[j + x].v), bits(g2[k].p[x].v));
		}
	}
	got_free(g1, s.ntargets);
	got_free(g2, s.ntargets);
	fx_close(&f1, false);
	fx_close(&f2, false);
	sim_free(&s);
}

/* A restart: the central stops at 7 min, a new deduplicator on the same
 * store re-reads the last pulls (the cursor is one pull behind) and goes
 * on. The store ends up with what an uninterrupted run stores. */
static void
test_restart(void **state)
{
	struct sim s, s2;
	struct fx f, ref;
	struct got g[MAXT], gr[MAXT];

	(void)state;
	sim_defaults(&s);
	/* A is away from 5:30 to 6:05: B is elected from 5:34.75 to the
	 * 10 min epoch, so at the restart B is followed though A is live. */
	s.r[0].phase = 10 * SEC;
	s.r[1].phase = 4 * SEC;
	s.r[0].down_from = BASE + 5 * MIN + 30 * SEC;
	s.r[0].down_until = BASE + 6 * MIN + 5 * SEC;
	sim_generate(&s);
	s2 = s;
	run_sim(&s2, &ref, gr);

	fx_open(&f, NULL, s.settle + s.P + 10 * SEC);
	for (int i = 0; i < s.nrep; i++)
		memset(s.r[i].next, 0, sizeof(s.r[i].next));
	sim_run(&s, &f, s.start, BASE + 7 * MIN);
	fx_close(&f, true);
	/* re-pull: every replica's cursor goes back 45 s, to 6:00: A's
	 * 6:10.3 is within one interval of B's 6:04.75, so a new election
	 * would take A; only the store's newest sample tells that B was
	 * elected */
	for (int i = 0; i < s.nrep; i++)
		for (int k = 0; k < s.ntargets; k++)
			while (s.r[i].next[k] > 0 &&
			    s.r[i].s[k][s.r[i].next[k] - 1].t > BASE + 7 * MIN - 15 * SEC - 45 * SEC)
				s.r[i].next[k]--;
	fx_open(&f, f.h, s.settle + s.P + 10 * SEC);
	sim_run(&s, &f, BASE + 7 * MIN + 100, s.end + 3 * MIN);
	stored(f.h, "req_total", g, s.ntargets);
	same_output(gr, g, s.ntargets);
	got_free(g, s.ntargets);
	got_free(gr, s.ntargets);
	fx_close(&f, false);
	fx_close(&ref, false);
	sim_free(&s);
}

/* The takeover sample of the next replica would go back in value (same
 * scrape round, its clock ahead): it is skipped, its next one taken. */
static void
test_skew_guard(void **state)
{
	struct fx f;
	struct labels *a = series("c_total", "t0", "a"), *b = series("c_total", "t0", "b");
	struct got g[1];
	int64_t t0 = BASE;

	(void)state;
	fx_open(&f, NULL, 20 * SEC);
	fake_now = t0;
	for (int i = 0; i < 6; i++) {
		feed(f.d, a, t0 + i * 15 * SEC, 100.0 * i);
		if (i < 5)
			feed(f.d, b, t0 + 1000 + i * 15 * SEC, 100.0 * i + 6.0);
	}
	fake_now = t0 + 60 * SEC;
	dedup_run(f.d);
	/* A dies after 75 s; B's sample of the same round is stamped 200 ms
	 * later but reads lower. */
	feed(f.d, b, t0 + 75 * SEC + 200, 499.0);
	feed(f.d, b, t0 + 90 * SEC + 200, 650.0);
	feed(f.d, b, t0 + 105 * SEC + 200, 800.0);
	fake_now = t0 + 200 * SEC;
	dedup_run(f.d);
	stored(f.h, "c_total", g, 1);
	assert_int_equal(g[0].n, 8);
	assert_int_equal(g[0].p[5].t, t0 + 75 * SEC);
	assert_int_equal(g[0].p[6].t, t0 + 90 * SEC + 200);
	for (size_t j = 1; j < g[0].n; j++)
		assert_true(g[0].p[j].v > g[0].p[j - 1].v);
	got_free(g, 1);
	labels_free(a);
	labels_free(b);
	fx_close(&f, false);
}

/* A late sample from the non-elected replica and its markers never reach
 * the store; the elected one's marker ends the series unless another
 * replica goes on right away; a new sample after the end starts again. */
static void
test_marker_rules(void **state)
{
	struct fx f;
	struct labels *a = series("g", "t0", "a"), *b = series("g", "t0", "b");
	struct got g[1];
	int64_t t0 = BASE;

	(void)state;
	fx_open(&f, NULL, 20 * SEC);
	fake_now = t0 + 10 * MIN;	/* everything is old: decided at once */
	for (int i = 0; i < 4; i++) {
		feed(f.d, a, t0 + i * 10 * SEC, 1);
		if (i < 3)
			feed(f.d, b, t0 + 5 * SEC + i * 10 * SEC, 2);
	}
	feed(f.d, b, t0 + 33 * SEC, stale());	/* not elected: dropped */
	feed(f.d, a, t0 + 45 * SEC, stale());	/* elected, nobody goes on: stored */
	feed(f.d, b, t0 + 50 * SEC, 3);		/* back */
	feed(f.d, a, t0 + 52 * SEC, 4);
	feed(f.d, b, t0 + 60 * SEC, 3);
	fake_now += 10 * MIN;
	dedup_run(f.d);
	stored(f.h, "g", g, 1);
	assert_int_equal(g[0].n, 7);
	assert_int_equal(g[0].p[3].t, t0 + 30 * SEC);
	assert_int_equal(g[0].p[4].t, t0 + 45 * SEC);
	assert_int_equal(bits(g[0].p[4].v), CHUNK_STALE_NAN_BITS);
	/* after the end, A (the smaller) is live within one interval of
	 * the earliest new sample (B's at 50 s): A starts it again */
	assert_int_equal(g[0].p[5].t, t0 + 52 * SEC);
	assert_true(g[0].p[5].v == 4);
	assert_int_equal(g[0].p[6].t, t0 + 60 * SEC);	/* B takes over */
	got_free(g, 1);
	labels_free(a);
	labels_free(b);
	fx_close(&f, false);
}

/* Series without the replica label are the scrape's; the key drops only
 * that label; the collector writes the families. */
static void
test_hook_and_metrics(void **state)
{
	struct fx f;
	struct labels *plain = series("up", "t0", NULL), *a = series("up", "t0", "a");
	struct strbuf sb = STRBUF_INIT;
	struct dedup_stats st;
	const char *m;

	(void)state;
	fx_open(&f, NULL, 20 * SEC);
	fake_now = BASE + 10 * MIN;
	assert_int_equal(feed(f.d, plain, BASE, 1), SCRAPE_SAMPLE_KEEP);
	assert_int_equal(feed(f.d, a, BASE, 1), SCRAPE_SAMPLE_DROP);
	assert_int_equal(feed(f.d, a, BASE, 1), SCRAPE_SAMPLE_DROP);	/* again */
	assert_int_equal(feed(f.d, a, BASE - 1, 1), SCRAPE_SAMPLE_DROP);
	dedup_run(f.d);
	fake_now += 2 * MIN;	/* a's data complete by time (10 min late) */
	dedup_run(f.d);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.groups, 1);
	assert_int_equal(st.samples_in, 3);
	assert_int_equal(st.samples_appended, 1);
	assert_int_equal(st.samples_dropped, 2);
	{
		struct got g[1];

		stored(f.h, "up", g, 1);
		assert_int_equal(g[0].n, 1);
		got_free(g, 1);
	}
	dedup_collect(f.d, &sb);
	m = strbuf_cstr(&sb);
	assert_non_null(strstr(m, "# TYPE strata_dedup_groups gauge\nstrata_dedup_groups 1\n"));
	assert_non_null(strstr(m, "# TYPE strata_dedup_samples_dropped_total counter\n"
	    "strata_dedup_samples_dropped_total 2\n"));
	assert_non_null(strstr(m, "# TYPE strata_dedup_switches_total counter\n"
	    "strata_dedup_switches_total 0\n"));
	strbuf_free(&sb);
	labels_free(plain);
	labels_free(a);
	fx_close(&f, false);
	{
		struct dedup_opts o = { 0 };
		char err[128];

		o.replica_label = "";
		assert_null(dedup_new(&o, err, sizeof err));
	}
}

/* Groups that receive nothing for forget_ms are forgotten; a replica that
 * sent nothing for an epoch leaves its group. */
static void
test_forget(void **state)
{
	struct fx f;
	struct labels *a = series("g", "t0", "a"), *b = series("g", "t1", "b");
	struct dedup_stats st;

	(void)state;
	fx_open(&f, NULL, 20 * SEC);
	fake_now = BASE;
	feed(f.d, a, BASE, 1);
	feed(f.d, b, BASE, 1);
	fake_now = BASE + MIN;
	dedup_run(f.d);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.groups, 2);
	fake_now = BASE + 10 * MIN;
	feed(f.d, a, BASE + 9 * MIN, 2);
	dedup_run(f.d);
	fake_now = BASE + 16 * MIN;
	dedup_run(f.d);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.groups, 1);	/* t1 went quiet 16 min ago */
	fake_now = BASE + 30 * MIN;
	dedup_run(f.d);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.groups, 0);
	labels_free(a);
	labels_free(b);
	fx_close(&f, false);
}

/* A replica whose data cannot be decided (the elected one is late and its
 * data not complete) queues at most DEDUP_QUEUE_MAX samples. */
static void
test_queue_bound(void **state)
{
	struct fx f;
	struct labels *a = series("g", "t0", "a"), *b = series("g", "t0", "b");
	struct dedup_stats st;
	struct got g[1];

	(void)state;
	fx_open(&f, NULL, 20 * SEC);
	fake_now = BASE;
	feed(f.d, a, BASE, 1);
	feed(f.d, a, BASE + 1000, 1);
	fake_now = BASE + 30 * SEC;
	dedup_run(f.d);
	/* A is the leader; A's data up to now is complete by time only after
	 * 20 s, its last arrival set its lag to 29 s: B's samples stamped
	 * in the future of A's arrival wait. */
	for (int i = 0; i < DEDUP_QUEUE_MAX + 100; i++)
		feed(f.d, b, BASE + 2000 + i, 2);
	dedup_get_stats(f.d, &st);
	assert_int_equal(st.overflows, 100);
	assert_int_equal(st.samples_dropped, 100);
	fake_now = BASE + 40 * MIN;
	dedup_run(f.d);
	stored(f.h, "g", g, 1);
	/* A's 2, then B from its oldest kept sample on */
	assert_int_equal(g[0].n, 2 + DEDUP_QUEUE_MAX);
	assert_int_equal(g[0].p[2].t, BASE + 2000 + 100);
	got_free(g, 1);
	labels_free(a);
	labels_free(b);
	fx_close(&f, false);
}

/* The threaded committer beside four hook threads on the wall clock. */
struct thr_arg {
	struct dedup *d;
	int id;
	int64_t t0;
};

static void *
hook_thread(void *arg)
{
	struct thr_arg *ta = arg;
	char inst[16];

	for (int k = 0; k < 50; k++) {
		struct labels *ls;

		snprintf(inst, sizeof inst, "t%d", k + (ta->id / 2) * 50);
		ls = series("h", inst, ta->id % 2 ? "b" : "a");
		for (int i = 0; i < 20; i++)
			feed(ta->d, ls, ta->t0 + i * 100 + (ta->id % 2) * 7, i);
		labels_free(ls);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct dedup_opts o = { 0 };
	struct tsdb_head *h;
	struct dedup *d;
	pthread_t th[4];
	struct thr_arg ta[4];
	struct dedup_stats st;
	char err[128];
	int64_t t0 = time_now_ms() - 3 * SEC;

	(void)state;
	h = tsdb_head_new(NULL, err, sizeof err);
	o.replica_label = RL;
	o.settle_ms = 200;
	d = dedup_new(&o, err, sizeof err);
	assert_int_equal(dedup_start(d, h, err, sizeof err), 0);
	for (int i = 0; i < 4; i++) {
		ta[i] = (struct thr_arg){ d, i, t0 };
		assert_int_equal(pthread_create(&th[i], NULL, hook_thread, &ta[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* every sample decided: the last ones once a's data is complete by
	 * time (a few seconds of settling) */
	for (int w = 0; w < 200; w++) {
		dedup_get_stats(d, &st);
		if (st.samples_appended + st.samples_dropped == st.samples_in)
			break;
		usleep(50 * 1000);
	}
	dedup_get_stats(d, &st);
	assert_int_equal(st.samples_in, 4 * 50 * 20);
	assert_int_equal(st.groups, 100);
	assert_int_equal(st.samples_appended + st.samples_dropped, st.samples_in);
	assert_true(st.samples_appended >= 100 * 20);
	assert_int_equal(st.append_errors, 0);
	for (int k = 0; k < 100; k += 33) {
		char inst[16];
		struct labels *ls;
		char err2[64];
		struct matcher *m[2];
		struct tsdb_series_set *ss;
		int64_t t, prev = INT64_MIN;
		double v;
		size_t n = 0;

		snprintf(inst, sizeof inst, "t%d", k);
		ls = series("h", inst, NULL);
		m[0] = matcher_new(MATCH_EQUAL, LABEL_METRIC_NAME, "h", err2, sizeof err2);
		m[1] = matcher_new(MATCH_EQUAL, "instance", inst, err2, sizeof err2);
		ss = tsdb_head_select(h, m, 2, INT64_MIN, INT64_MAX);
		assert_true(tsdb_series_set_next(ss));
		assert_true(labels_equal(tsdb_series_set_labels(ss), ls));
		while (tsdb_iter_next(tsdb_series_set_iter(ss), &t, &v)) {
			assert_true(t > prev);
			prev = t;
			n++;
		}
		assert_true(n >= 20);
		assert_false(tsdb_series_set_next(ss));
		tsdb_series_set_free(ss);
		matcher_free(m[0]);
		matcher_free(m[1]);
		labels_free(ls);
	}
	dedup_free(d);
	tsdb_head_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical),
		cmocka_unit_test(test_steady),
		cmocka_unit_test(test_failover),
		cmocka_unit_test(test_return),
		cmocka_unit_test(test_epoch_hole),
		cmocka_unit_test(test_markers),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_pair_start),
		cmocka_unit_test(test_restart),
		cmocka_unit_test(test_skew_guard),
		cmocka_unit_test(test_marker_rules),
		cmocka_unit_test(test_hook_and_metrics),
		cmocka_unit_test(test_forget),
		cmocka_unit_test(test_queue_bound),
		cmocka_unit_test(test_threads),
	};

	char err[64];

	log_setup("warn", "logfmt", err, sizeof err);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
