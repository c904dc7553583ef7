/* tests/bench/bench_expfmt.c - parser throughput on a realistic scrape body.
 *
 * Builds in memory a body of 10+ MB shaped like a large node-exporter plus
 * application scrape: families with HELP and TYPE (CPU seconds per cpu and
 * mode, filesystems, network devices, Go runtime gauges) and high-cardinality
 * request-duration histograms (12 le buckets, _sum, _count, five labels).
 * Parses it repeatedly on one core, text format and OpenMetrics, touching
 * every label and value as a scrape loop would, and prints MB/s and ns per
 * sample per CPU second of the parsing thread, the median of 5 runs (and
 * the wall-clock median). Figures, not pass/fail (make bench).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expfmt/parse.h"
#include "expfmt/write.h"
#include "util/strbuf.h"

#define BENCH_RUNS 5
#define BENCH_TARGET_BYTES (12u << 20)

static uint64_t bench_rng = 88172645463325252ULL;

static double
bench_rand(void)
{
	bench_rng ^= bench_rng << 13;
	bench_rng ^= bench_rng >> 7;
	bench_rng ^= bench_rng << 17;
	return (double)(bench_rng >> 11) / 9007199254740992.0;
}

static void
bench_meta(struct strbuf *sb, bool om, const char *name, const char *type, const char *help)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    !om && strcmp(type, "unknown") == 0 ? "untyped" : type);
}

static void
bench_value(struct strbuf *sb, double v)
{
	strbuf_putc(sb, ' ');
	expfmt_write_float(sb, v);
	strbuf_putc(sb, '\n');
}

/* bench_body appends one "host" worth of families; om picks OpenMetrics
 * naming (counter family without _total). */
static void
bench_body(struct strbuf *sb, bool om, int host)
{
	static const char *const modes[] = { "idle", "iowait", "irq", "nice", "softirq", "steal",
		"system", "user" };
	static const char *const handlers[] = { "/api/v1/query", "/api/v1/query_range",
		"/api/v1/series", "/api/v1/labels", "/federate", "/metrics", "/-/healthy",
		"/api/v1/write" };
	static const char *const methods[] = { "GET", "POST" };
	static const char *const codes[] = { "200", "204", "400", "500" };
	static const char *const les[] = { "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
		"1", "2.5", "5", "10", "+Inf" };
	char fam[128];
	int cpu, m, i, h, me, c, b;

	snprintf(fam, sizeof(fam), "node_cpu_seconds%s_h%d", om ? "" : "_total", host);
	bench_meta(sb, om, fam, "counter", "Seconds the CPUs spent in each mode.");
	for (cpu = 0; cpu < 32; cpu++)
		for (m = 0; m < 8; m++) {
			if (om)
				strbuf_printf(sb, "node_cpu_seconds_h%d_total", host);
			else
				strbuf_printf(sb, "node_cpu_seconds_total_h%d", host);
			strbuf_printf(sb, "{cpu=\"%d\",mode=\"%s\"}", cpu, modes[m]);
			bench_value(sb, (double)(int)(bench_rand() * 1e7) / 100);
		}
	snprintf(fam, sizeof(fam), "node_filesystem_avail_bytes_h%d", host);
	bench_meta(sb, om, fam, "gauge", "Filesystem space available to non-root users in bytes.");
	for (i = 0; i < 24; i++)
		strbuf_printf(sb, "%s{device=\"/dev/nvme0n1p%d\",fstype=\"ext4\",mountpoint=\"/srv/data%d\"} "
		    "%.0f\n", fam, i, i, bench_rand() * 1e12);
	snprintf(fam, sizeof(fam), "node_network_receive_bytes%s_h%d", om ? "" : "_total", host);
	bench_meta(sb, om, fam, "counter", "Network device statistic receive_bytes.");
	for (i = 0; i < 16; i++) {
		strbuf_printf(sb, "node_network_receive_bytes%s_h%d%s{device=\"eth%d\"}",
		    om ? "" : "_total", host, om ? "_total" : "", i);
		bench_value(sb, (double)(long long)(bench_rand() * 1e13));
	}
	for (i = 0; i < 20; i++) {
		snprintf(fam, sizeof(fam), "go_memstats_stat%d_bytes_h%d", i, host);
		bench_meta(sb, om, fam, "gauge", "Number of bytes in some Go runtime statistic.");
		strbuf_puts(sb, fam);
		bench_value(sb, bench_rand() * 1e8);
	}
	snprintf(fam, sizeof(fam), "http_request_duration_seconds_h%d", host);
	bench_meta(sb, om, fam, "histogram", "Latency of HTTP requests by handler, method and code.");
	for (h = 0; h < 8; h++)
		for (me = 0; me < 2; me++)
			for (c = 0; c < 4; c++) {
				double cnt = 0, sum = 0;
				char lbl[256];

				snprintf(lbl, sizeof(lbl), "handler=\"%s\",method=\"%s\",code=\"%s\","
				    "instance=\"app-%d.example.internal:9090\",job=\"frontend\"",
				    handlers[h], methods[me], codes[c], host % 100);
				for (b = 0; b < 12; b++) {
					cnt += (double)(int)(bench_rand() * 1000);
					strbuf_printf(sb, "%s_bucket{%s,le=\"%s\"}", fam, lbl, les[b]);
					bench_value(sb, cnt);
				}
				sum = cnt * 0.137;
				strbuf_printf(sb, "%s_sum{%s}", fam, lbl);
				bench_value(sb, sum);
				strbuf_printf(sb, "%s_count{%s}", fam, lbl);
				bench_value(sb, cnt);
			}
}

/* bench_now reads clock id in seconds. The figures use the thread's CPU
 * time (CLOCK_THREAD_CPUTIME_ID): on a machine shared with other jobs the
 * wall clock also counts the time the thread waited for a core, which says
 * nothing of the parser. The wall-clock median is printed beside it. */
static double
bench_now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
bench_format(bool om)
{
	struct strbuf sb = STRBUF_INIT;
	struct expfmt_parser *p;
	struct expfmt_entry e;
	double secs[BENCH_RUNS], wall[BENCH_RUNS], sink = 0;
	size_t samples = 0, labels = 0, iters, it;
	int host = 0, run;
	enum expfmt_kind k;

	while (sb.len < BENCH_TARGET_BYTES)
		bench_body(&sb, om, host++);
	if (om)
		strbuf_puts(&sb, "# EOF\n");
	p = expfmt_parser_new(om ? EXPFMT_OPENMETRICS : EXPFMT_TEXT, sb.buf, sb.len);
	while ((k = expfmt_next(p, &e)) > 0)
		if (k == EXPFMT_SAMPLE) {
			samples++;
			labels += e.nlabels;
		}
	if (k != EXPFMT_EOF) {
		fprintf(stderr, "bench body invalid: %zu:%zu: %s\n", expfmt_error(p)->line,
		    expfmt_error(p)->column, expfmt_error(p)->msg);
		return 1;
	}
	iters = 10;
	for (run = 0; run < BENCH_RUNS; run++) {
		double t0 = bench_now(CLOCK_THREAD_CPUTIME_ID), w0 = bench_now(CLOCK_MONOTONIC);

		for (it = 0; it < iters; it++) {
			expfmt_reset(p, om ? EXPFMT_OPENMETRICS : EXPFMT_TEXT, sb.buf, sb.len);
			while ((k = expfmt_next(p, &e)) > 0) {
				size_t i;

				if (k != EXPFMT_SAMPLE)
					continue;
				sink += e.value + (double)e.series.len;
				for (i = 0; i < e.nlabels; i++)
					sink += (double)(e.labels[i].value.len + e.labels[i].name.len);
			}
		}
		secs[run] = (bench_now(CLOCK_THREAD_CPUTIME_ID) - t0) / (double)iters;
		wall[run] = (bench_now(CLOCK_MONOTONIC) - w0) / (double)iters;
	}
	qsort(secs, BENCH_RUNS, sizeof(secs[0]), bench_cmp);
	qsort(wall, BENCH_RUNS, sizeof(wall[0]), bench_cmp);
	printf("parser %-11s body %.1f MB, %zu samples, %zu hosts, %.1f labels/sample\n",
	    om ? "openmetrics" : "text", (double)sb.len / 1e6, samples, (size_t)host,
	    (double)labels / (double)samples);
	printf("parser %-11s median of %d runs: %.0f MB/s, %.1f ns/sample, %.1f M samples/s "
	    "per CPU second (min %.0f, max %.0f MB/s; wall clock median %.0f MB/s)\n",
	    om ? "openmetrics" : "text", BENCH_RUNS,
	    (double)sb.len / secs[BENCH_RUNS / 2] / 1e6,
	    secs[BENCH_RUNS / 2] * 1e9 / (double)samples,
	    (double)samples / secs[BENCH_RUNS / 2] / 1e6,
	    (double)sb.len / secs[BENCH_RUNS - 1] / 1e6, (double)sb.len / secs[0] / 1e6,
	    (double)sb.len / wall[BENCH_RUNS / 2] / 1e6);
	if (sink == 0.123)
		printf("%f\n", sink);
	expfmt_parser_free(p);
	strbuf_free(&sb);
	return 0;
}

int
main(void)
{
	if (bench_format(false) != 0 || bench_format(true) != 0)
		return 1;
	return 0;
}
