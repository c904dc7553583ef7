/* tests/bench/bench_scrape.c - the leaf's per-sample scrape path, without the network.
 *
 * Builds the bodies tests/bench/synth-targets serves (synth_series.h:
 * targets of 1000 series, values moving every scrape), opens
 * a store with its WAL in a temporary directory as the leaf does (default
 * options, maintenance thread included), and appends every target's body
 * as lib/scrape/scrape.c's process() does: scrape_cache_append with the
 * job's default options (honor_timestamps, no limits, no relabeling, no
 * sample hook), scrape_cache_report, tsdb_appender_commit on one appender.
 * Each scrape of a target is 5 s after its previous one; targets are
 * spread over the interval, as the leaf's ticks spread them.
 *
 *   bench_scrape [--targets T] [--scrapes N] [--warmup W] [--series S]
 *
 * The first W scrapes of every target (creating the series) are not
 * measured; the next N are, and it prints CPU and wall ns per scraped sample
 * (the body's samples; the five report samples, the commit and the WAL
 * write are part of the cost). Bodies are built outside the measured
 * function, bench_measured_round, so instruction counts can be taken for it
 * alone and are repeatable:
 *
 *   valgrind --tool=callgrind --collect-atstart=no \
 *       --toggle-collect=bench_measured_round tests/bench/bench_scrape --scrapes 5
 *
 * (Ir divided by the samples it prints). Figures, not pass/fail.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "expfmt/parse.h"
#include "labels/labels.h"
#include "scrape/cache.h"
#include "tsdb/db.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"
#include "synth_series.h"

#define STEP_MS 5000
/* a fixed start, so that runs are alike to the instruction: 2023-11-14,
 * a little after a multiple of 2 h */
#define START_MS INT64_C(1699970400000)

struct bench_target {
	struct scrape_cache *cache;
	struct labels *public;
	struct strbuf body;
	int64_t offset_ms;	/* of its scrapes within the interval */
};

static int64_t
bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* bench_scrape_round appends scrape k of every target as process() does.
 * Returns the samples scraped, or -1. */
static long
bench_scrape_round(struct bench_target *tg, int ntargets, struct scrape_scratch *w,
    struct tsdb_appender *app, int k)
{
	long total = 0;
	int t;

	for (t = 0; t < ntargets; t++) {
		struct bench_target *x = &tg[t];
		struct scrape_append_conf conf;
		struct scrape_append_result r;
		int64_t ts = START_MS + x->offset_ms + (int64_t)k * STEP_MS;
		char err[1024];

		memset(&conf, 0, sizeof(conf));
		conf.target = x->public;
		conf.honor_timestamps = true;
		if (scrape_cache_append(x->cache, w, app, &conf, EXPFMT_TEXT, x->body.buf,
		    x->body.len, ts, ts, &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "target %d: %s\n", t, err);
			return -1;
		}
		if (r.added != r.total || r.out_of_order + r.duplicate + r.out_of_bounds > 0) {
			fprintf(stderr, "target %d: %llu of %llu samples went in\n", t,
			    (unsigned long long)r.added, (unsigned long long)r.total);
			return -1;
		}
		scrape_cache_report(x->cache, app, x->public, ts, true, 0.004, r.total,
		    r.added, r.series_added);
		if (tsdb_appender_commit(app) != 0) {
			fprintf(stderr, "target %d: commit failed\n", t);
			return -1;
		}
		total += (long)r.total;
	}
	return total;
}

/* bench_measured_round is bench_scrape_round for the scrapes measured: the
 * function callgrind collects in. */
static __attribute__((noinline)) long
bench_measured_round(struct bench_target *tg, int ntargets, struct scrape_scratch *w,
    struct tsdb_appender *app, int k)
{
	return bench_scrape_round(tg, ntargets, w, app, k);
}

static int
bench_arg(int argc, char **argv, int *i, const char *name, int *out)
{
	if (strcmp(argv[*i], name) != 0)
		return 0;
	if (*i + 1 >= argc || (*out = atoi(argv[*i + 1])) <= 0) {
		fprintf(stderr, "%s wants a positive number\n", name);
		exit(2);
	}
	(*i)++;
	return 1;
}

int
main(int argc, char **argv)
{
	int ntargets = 100, nscrapes = 20, warmup = 2, nseries = 1000, i, k, rc = 1;
	char dir[] = "/tmp/bench_scrape.XXXXXX", cmd[64], err[512];
	struct synth_series *layout;
	struct bench_target *tg;
	struct tsdb_db_opts o;
	struct tsdb_db *db;
	struct scrape_scratch *w;
	struct tsdb_appender *app;
	int64_t cpu = 0, wall = 0;
	long samples = 0;

	for (i = 1; i < argc; i++) {
		if (!bench_arg(argc, argv, &i, "--targets", &ntargets) &&
		    !bench_arg(argc, argv, &i, "--scrapes", &nscrapes) &&
		    !bench_arg(argc, argv, &i, "--warmup", &warmup) &&
		    !bench_arg(argc, argv, &i, "--series", &nseries)) {
			fprintf(stderr, "usage: %s [--targets T] [--scrapes N] [--warmup W] [--series S]\n",
			    argv[0]);
			return 2;
		}
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.path = dir;
	db = tsdb_db_open(&o, err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	layout = synth_series_layout(nseries);
	tg = mem_calloc((size_t)ntargets, sizeof(*tg));
	for (i = 0; i < ntargets; i++) {
		char inst[64];
		struct label l[2] = { { "instance", inst }, { "job", "synth" } };

		snprintf(inst, sizeof(inst), "127.0.0.1:%d", 20000 + i);
		tg[i].cache = scrape_cache_new();
		tg[i].public = labels_new(l, 2);
		tg[i].offset_ms = (int64_t)i * STEP_MS / ntargets;
	}
	w = scrape_scratch_new();
	app = tsdb_appender_new(tsdb_db_head(db));
	for (k = 0; k < warmup + nscrapes; k++) {
		int64_t c0, w0;
		long n;

		for (i = 0; i < ntargets; i++) {
			strbuf_reset(&tg[i].body);
			synth_series_body(layout, nseries, i, START_MS, START_MS + tg[i].offset_ms +
			    (int64_t)k * STEP_MS, &tg[i].body);
		}
		if (k < warmup) {
			if (bench_scrape_round(tg, ntargets, w, app, k) < 0)
				goto out;
			continue;
		}
		c0 = bench_cpu_ns();
		w0 = time_mono_ns();
		n = bench_measured_round(tg, ntargets, w, app, k);
		if (n < 0)
			goto out;
		cpu += bench_cpu_ns() - c0;
		wall += time_mono_ns() - w0;
		samples += n;
	}
	printf("targets %d, series %d, scrapes %d measured (+%d warmup): %ld samples\n",
	    ntargets, nseries, nscrapes, warmup, samples);
	printf("cpu  %.1f ns/sample\nwall %.1f ns/sample\n", (double)cpu / (double)samples,
	    (double)wall / (double)samples);
	rc = 0;
out:
	tsdb_appender_free(app);
	scrape_scratch_free(w);
	for (i = 0; i < ntargets; i++) {
		scrape_cache_free(tg[i].cache);
		labels_free(tg[i].public);
		strbuf_free(&tg[i].body);
	}
	mem_free(tg);
	synth_series_free(layout, nseries);
	tsdb_db_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return rc;
}
