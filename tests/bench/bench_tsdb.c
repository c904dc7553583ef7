/* tests/bench/bench_tsdb.c - data for the storage benchmarks (strata vs Prometheus).
 *
 * Generates one synthetic load, deterministically, in the shapes the
 * storage benchmarks feed to strata and to Prometheus 2.42:
 *
 *   bench_tsdb openmetrics --series N --hours H --out FILE
 *       OpenMetrics text with timestamps, for strata-tool import and
 *       promtool tsdb create-blocks-from openmetrics (bytes per sample);
 *   bench_tsdb wal --series N --hours H --strata DIR [--prometheus DIR] [--maintain K]
 *       the same samples committed through strata's store (one commit per
 *       target and scrape, as a leaf does), the process then exiting without
 *       closing the store (a crash: the WAL is all there is); and, with
 *       --prometheus, the same commits as a Prometheus 2.42 WAL (32 KiB
 *       pages, Snappy-compressed records as Prometheus writes by default),
 *       for the replay benchmark; --maintain K runs the store's maintenance
 *       (checkpoints) every K scrapes, as a running leaf would;
 *   bench_tsdb replay --strata DIR
 *       opens the store (WAL replay), prints the time, resident memory and
 *       the allocator's live bytes per series (BENCH_JESTATS=1: jemalloc's
 *       table by size class too), closes it (a checkpoint) and opens it
 *       again.
 *
 * The load imitates tests/bench/synth-targets (the load the README's other
 * figures use): targets of 1000 series, 20% gauges (multiples of 1024 moving
 * each scrape), 50% counters (integer rates), 30% histograms (11 buckets,
 * +Inf, a float _sum, _count); scrapes every 15 s, every target with its own
 * 0-3 ms timestamp jitter per scrape (--jitter J: 0-J ms; 0 for aligned
 * timestamps). The last scrape is "now", so the data
 * is inside any retention.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <snappy-c.h>
#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "labels/labels.h"
#include "tsdb/db.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define PER_TARGET 1000
#define STEP_MS 15000
#define NBUCKETS 11

static const double buckets[NBUCKETS] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

struct load {
	unsigned nseries, ntargets;
	unsigned jitter;	/* ms of timestamp jitter per scrape and target (0-3) */
	unsigned steps;
	int64_t start;
	/* per series within a target (the same layout for every target) */
	char **name;		/* metric name */
	char ***lv;		/* label name/value pairs besides instance, job */
	unsigned *nlv;
	unsigned *kind;		/* 0 gauge, 1 counter, 2 bucket, 3 sum, 4 count */
	unsigned *seed;
};

static char *
xstrdup(const char *s)
{
	return mem_strdup(s);
}

static void
load_build(struct load *l, unsigned nseries, double hours)
{
	unsigned i = 0, fam = 0;
	char buf[128];

	l->ntargets = (nseries + PER_TARGET - 1) / PER_TARGET;
	l->nseries = l->ntargets * PER_TARGET;
	l->steps = (unsigned)(hours * 3600000 / STEP_MS);
	l->start = (time_now_ms() / STEP_MS) * STEP_MS - (int64_t)(l->steps - 1) * STEP_MS;
	l->name = mem_calloc(PER_TARGET, sizeof *l->name);
	l->lv = mem_calloc(PER_TARGET, sizeof *l->lv);
	l->nlv = mem_calloc(PER_TARGET, sizeof *l->nlv);
	l->kind = mem_calloc(PER_TARGET, sizeof *l->kind);
	l->seed = mem_calloc(PER_TARGET, sizeof *l->seed);
	while (i < PER_TARGET) {
		unsigned left = PER_TARGET - i, kind = fam % 5 == 0 ? 0 : fam % 5 == 4 ? 2 : 1, n, j;

		if (kind == 2 && left < NBUCKETS + 3)
			kind = 1;
		if (kind == 0) {
			n = left < 50 ? left : 50;
			for (j = 0; j < n; j++, i++) {
				snprintf(buf, sizeof buf, "synth_memory_%u_bytes", fam);
				l->name[i] = xstrdup(buf);
				l->lv[i] = mem_calloc(4, sizeof(char *));
				l->lv[i][0] = xstrdup("area");
				snprintf(buf, sizeof buf, "a%u", j);
				l->lv[i][1] = xstrdup(buf);
				l->lv[i][2] = xstrdup("node");
				snprintf(buf, sizeof buf, "n%u", j % 7);
				l->lv[i][3] = xstrdup(buf);
				l->nlv[i] = 2;
				l->kind[i] = 0;
				l->seed[i] = i * 2654435761u;
			}
		} else if (kind == 1) {
			n = left < 100 ? left : 100;
			for (j = 0; j < n; j++, i++) {
				snprintf(buf, sizeof buf, "synth_requests_%u_total", fam);
				l->name[i] = xstrdup(buf);
				l->lv[i] = mem_calloc(6, sizeof(char *));
				l->lv[i][0] = xstrdup("code");
				snprintf(buf, sizeof buf, "%u", 200 + (j % 5) * 100);
				l->lv[i][1] = xstrdup(buf);
				l->lv[i][2] = xstrdup("handler");
				snprintf(buf, sizeof buf, "/api/v1/h%u", j / 5);
				l->lv[i][3] = xstrdup(buf);
				l->lv[i][4] = xstrdup("method");
				l->lv[i][5] = xstrdup(j % 2 ? "POST" : "GET");
				l->nlv[i] = 3;
				l->kind[i] = 1;
				l->seed[i] = i * 2654435761u;
			}
		} else {
			unsigned h, nh = left / (NBUCKETS + 3), b;

			if (nh > 20)
				nh = 20;
			for (h = 0; h < nh; h++) {
				for (b = 0; b <= NBUCKETS + 2; b++, i++) {
					l->lv[i] = mem_calloc(4, sizeof(char *));
					l->lv[i][0] = xstrdup("handler");
					snprintf(buf, sizeof buf, "/h%u", h);
					l->lv[i][1] = xstrdup(buf);
					l->nlv[i] = 1;
					if (b <= NBUCKETS) {
						snprintf(buf, sizeof buf, "synth_latency_%u_seconds_bucket", fam);
						l->name[i] = xstrdup(buf);
						l->lv[i][2] = xstrdup("le");
						if (b < NBUCKETS)
							snprintf(buf, sizeof buf, "%g", buckets[b]);
						else
							snprintf(buf, sizeof buf, "+Inf");
						l->lv[i][3] = xstrdup(buf);
						l->nlv[i] = 2;
						l->kind[i] = 2;
						l->seed[i] = b;
					} else {
						snprintf(buf, sizeof buf, "synth_latency_%u_seconds_%s", fam,
						    b == NBUCKETS + 1 ? "sum" : "count");
						l->name[i] = xstrdup(buf);
						l->kind[i] = b == NBUCKETS + 1 ? 3 : 4;
					}
				}
			}
		}
		fam++;
	}
}

/* ts is target t's timestamp of scrape k. */
static int64_t
ts(const struct load *l, unsigned t, unsigned k)
{
	uint32_t h = (t * 2654435761u) ^ (k * 40503u);

	h ^= h >> 15;
	h *= 2246822519u;
	h ^= h >> 13;
	return l->start + (int64_t)k * STEP_MS + (l->jitter ? (int64_t)(h % (l->jitter + 1)) : 0);
}

/* value of series i of target t at time ms (synth-targets' model) */
static double
value(const struct load *l, unsigned i, unsigned t, int64_t ms)
{
	double secs = (double)(ms - l->start + 3600000) / 1000.0;
	long tick = (long)(ms / 1000);

	switch (l->kind[i]) {
	case 0:
		return (double)((l->seed[i] + t * 31u + (unsigned)tick * 7u) % 100000u) * 1024.0;
	case 1:
		return floor(secs * (double)(1 + (l->seed[i] + t) % 50));
	case 2:
		return floor(secs * (double)(l->seed[i] + 1));
	case 3:
		return secs * 0.37 * (double)(t + 1);
	default:
		return floor(secs * (double)(NBUCKETS + 1));
	}
}

static struct labels *
series_labels(const struct load *l, unsigned i, unsigned t)
{
	struct label v[8];
	char inst[32];
	unsigned k, n = 0;

	snprintf(inst, sizeof inst, "host-%u:9100", t);
	v[n].name = "__name__";
	v[n++].value = l->name[i];
	v[n].name = "instance";
	v[n++].value = inst;
	v[n].name = "job";
	v[n++].value = "synth";
	for (k = 0; k < l->nlv[i]; k++) {
		v[n].name = l->lv[i][2 * k];
		v[n++].value = l->lv[i][2 * k + 1];
	}
	return labels_new(v, n);
}

/* --- OpenMetrics ------------------------------------------------------------------- */

static int
write_openmetrics(const struct load *l, const char *path)
{
	FILE *f = fopen(path, "w");
	struct strbuf sb = STRBUF_INIT;
	unsigned i, k, t;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	/* family by family, then series by series (OpenMetrics wants both
	 * whole), each series' samples in time order */
	for (i = 0; i < PER_TARGET;) {
		unsigned end = i + 1, kind = l->kind[i];
		char fam[128];
		size_t flen;

		if (kind >= 2) {	/* histogram: bucket..sum..count of one family */
			snprintf(fam, sizeof fam, "%s", l->name[i]);
			flen = strlen(fam) - strlen("_bucket");
			fam[flen] = '\0';
			while (end < PER_TARGET && strncmp(l->name[end], fam, flen) == 0 &&
			    l->kind[end] >= 2)
				end++;
			fprintf(f, "# TYPE %s histogram\n", fam);
		} else {
			while (end < PER_TARGET && strcmp(l->name[end], l->name[i]) == 0)
				end++;
			snprintf(fam, sizeof fam, "%s", l->name[i]);
			if (kind == 1)
				fam[strlen(fam) - strlen("_total")] = '\0';
			fprintf(f, "# TYPE %s %s\n", fam, kind == 0 ? "gauge" : "counter");
		}
		/* a metric's samples together (OpenMetrics); a histogram's
		 * buckets, sum and count of one time together */
		for (t = 0; t < l->ntargets; t++) {
			unsigned g, gsize = kind >= 2 ? NBUCKETS + 3 : 1;

			for (g = i; g < end; g += gsize) {
				strbuf_reset(&sb);
				for (k = 0; k < l->steps; k++) {
					int64_t ms = ts(l, t, k);
					unsigned j;

					for (j = g; j < g + gsize && j < end; j++) {
						unsigned a;

						strbuf_printf(&sb, "%s{instance=\"host-%u:9100\",job=\"synth\"",
						    l->name[j], t);
						for (a = 0; a < l->nlv[j]; a++)
							strbuf_printf(&sb, ",%s=\"%s\"", l->lv[j][2 * a],
							    l->lv[j][2 * a + 1]);
						strbuf_printf(&sb, "} %.17g %" PRId64 ".%03d\n",
						    value(l, j, t, ms), ms / 1000, (int)(ms % 1000));
					}
				}
				fwrite(sb.buf, 1, sb.len, f);
			}
		}
		i = end;
	}
	fprintf(f, "# EOF\n");
	strbuf_free(&sb);
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("wrote %s: %u series x %u samples = %" PRIu64 " samples\n", path, l->nseries,
	    l->steps, (uint64_t)l->nseries * l->steps);
	return 0;
}

/* --- a Prometheus 2.42 WAL ---------------------------------------------------------- */

#define PAGE 32768
#define PROM_SEG (128u << 20)
#define REC_HDR 7

struct promwal {
	char *dir;
	int fd;
	unsigned seg;
	uint8_t page[PAGE];
	size_t alloc;		/* bytes used in page */
	size_t pages;		/* pages done in the segment */
	uint8_t *snap;
	size_t snapcap;
	uint64_t bytes;
};

static uint32_t crc_tab[256];

static uint32_t
crc32c_be(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	if (crc_tab[1] == 0) {
		uint32_t i, j;

		for (i = 0; i < 256; i++) {
			uint32_t x = i;

			for (j = 0; j < 8; j++)
				x = (x >> 1) ^ (0x82f63b78u & (0u - (x & 1)));
			crc_tab[i] = x;
		}
	}
	while (n--)
		c = crc_tab[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static void
pw_open_segment(struct promwal *w)
{
	char p[1024];

	snprintf(p, sizeof p, "%s/%08u", w->dir, w->seg);
	w->fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w->fd < 0) {
		fprintf(stderr, "%s: %s\n", p, strerror(errno));
		exit(1);
	}
	w->pages = 0;
	w->alloc = 0;
}

static void
pw_flush_page(struct promwal *w, bool whole)
{
	size_t n = whole ? PAGE : w->alloc;

	if (whole)
		memset(w->page + w->alloc, 0, PAGE - w->alloc);
	if (n > 0 && write(w->fd, w->page, n) != (ssize_t)n) {
		fprintf(stderr, "write Prometheus WAL: %s\n", strerror(errno));
		exit(1);
	}
	w->bytes += n;
	if (whole) {
		w->pages++;
		w->alloc = 0;
	}
}

/* pw_log writes one record the way Prometheus' WL.log does. */
static void
pw_log(struct promwal *w, const uint8_t *rec, size_t len)
{
	size_t clen = snappy_max_compressed_length(len), left;
	const uint8_t *enc = rec;
	uint8_t flag = 0;
	int i;

	if (clen > w->snapcap) {
		w->snapcap = clen;
		w->snap = mem_realloc(w->snap, clen);
	}
	if (snappy_compress((const char *)rec, len, (char *)w->snap, &clen) == SNAPPY_OK &&
	    clen < len) {
		enc = w->snap;
		len = clen;
		flag = 1 << 3;
	}
	left = PAGE - w->alloc - REC_HDR + (PAGE - REC_HDR) * (PROM_SEG / PAGE - w->pages - 1);
	if (len > left) {
		if (w->alloc > 0)
			pw_flush_page(w, true);
		close(w->fd);
		w->seg++;
		pw_open_segment(w);
	}
	for (i = 0; i == 0 || len > 0; i++) {
		size_t l = PAGE - w->alloc - REC_HDR, typ;
		uint8_t *h = w->page + w->alloc;
		uint32_t crc;

		if (l > len)
			l = len;
		if (i == 0 && l == len)
			typ = 1;
		else if (l == len)
			typ = 4;
		else if (i == 0)
			typ = 2;
		else
			typ = 3;
		h[0] = (uint8_t)(typ | flag);
		h[1] = (uint8_t)(l >> 8);
		h[2] = (uint8_t)l;
		crc = crc32c_be(enc, l);
		h[3] = (uint8_t)(crc >> 24);
		h[4] = (uint8_t)(crc >> 16);
		h[5] = (uint8_t)(crc >> 8);
		h[6] = (uint8_t)crc;
		memcpy(h + REC_HDR, enc, l);
		w->alloc += REC_HDR + l;
		enc += l;
		len -= l;
		if (PAGE - w->alloc < REC_HDR)
			pw_flush_page(w, true);
	}
}

static void
put_be64(struct strbuf *b, uint64_t x)
{
	uint8_t v[8];
	int i;

	for (i = 0; i < 8; i++)
		v[i] = (uint8_t)(x >> (56 - 8 * i));
	strbuf_append(b, v, 8);
}

static void
put_uvarint(struct strbuf *b, uint64_t x)
{
	while (x >= 0x80) {
		strbuf_putc(b, (char)(x | 0x80));
		x >>= 7;
	}
	strbuf_putc(b, (char)x);
}

static void
put_varint(struct strbuf *b, int64_t x)
{
	put_uvarint(b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
}

/* --- the load through strata's store (and Prometheus' WAL) --------------------------------- */

static double
rss_mib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double kib = 0;

	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atof(line + 6);
	if (f != NULL)
		fclose(f);
	return kib / 1024;
}

/* heap_mib gives the allocator's live bytes (allocated) and the pages it
 * holds (resident), in MiB; 0 without jemalloc. */
static void
heap_mib(double *allocated, double *resident)
{
	*allocated = *resident = 0;
#ifdef HAVE_JEMALLOC
	{
		uint64_t epoch = 1;
		size_t a = 0, r = 0, sz = sizeof a;

		mallctl("epoch", &epoch, &sz, &epoch, sz);
		sz = sizeof a;
		if (mallctl("stats.allocated", &a, &sz, NULL, 0) == 0)
			*allocated = (double)a / 1048576;
		sz = sizeof r;
		if (mallctl("stats.resident", &r, &sz, NULL, 0) == 0)
			*resident = (double)r / 1048576;
	}
#endif
}

static int
write_wal(const struct load *l, const char *sdir, const char *pdir, unsigned maintain)
{
	struct tsdb_db_opts o;
	struct tsdb_db *db;
	struct tsdb_appender *a;
	struct promwal pw;
	struct strbuf rec = STRBUF_INIT;
	uint64_t *refs = mem_calloc(l->nseries, sizeof *refs);
	char err[512];
	unsigned k, t, i;
	int64_t strata_ns = 0;
	struct tsdb_db_stats st;

	memset(&o, 0, sizeof o);
	o.path = sdir;
	o.no_maintenance = true;	/* nothing but the WAL: the worst case */
	db = tsdb_db_open(&o, err, sizeof err);
	if (db == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	a = tsdb_appender_new(tsdb_db_head(db));
	memset(&pw, 0, sizeof pw);
	if (pdir != NULL) {
		char p[1024];

		snprintf(p, sizeof p, "%s/wal", pdir);
		mkdir(pdir, 0777);
		mkdir(p, 0777);
		pw.dir = mem_strdup(p);
		pw_open_segment(&pw);
	}
	for (k = 0; k < l->steps; k++) {
		for (t = 0; t < l->ntargets; t++) {
			int64_t ms = ts(l, t, k);
			int64_t p0 = time_mono_ns();

			for (i = 0; i < PER_TARGET; i++) {
				uint64_t *ref = &refs[t * PER_TARGET + i];
				struct labels *ls = *ref ? NULL : series_labels(l, i, t);

				if (tsdb_appender_append(a, ref, ls, ms, value(l, i, t, ms)) != 0) {
					fprintf(stderr, "append failed\n");
					return 1;
				}
				labels_free(ls);
			}
			if (tsdb_appender_commit(a) != 0) {
				fprintf(stderr, "commit failed\n");
				return 1;
			}
			strata_ns += time_mono_ns() - p0;
			if (pdir == NULL)
				continue;
			if (k == 0) {	/* a series record for the target's new series */
				strbuf_reset(&rec);
				strbuf_putc(&rec, 1);
				for (i = 0; i < PER_TARGET; i++) {
					struct labels *ls = series_labels(l, i, t);
					uint32_t j;

					put_be64(&rec, t * PER_TARGET + i + 1);
					put_uvarint(&rec, ls->n);
					for (j = 0; j < ls->n; j++) {
						put_uvarint(&rec, strlen(ls->v[j].name));
						strbuf_puts(&rec, ls->v[j].name);
						put_uvarint(&rec, strlen(ls->v[j].value));
						strbuf_puts(&rec, ls->v[j].value);
					}
					labels_free(ls);
				}
				pw_log(&pw, (const uint8_t *)rec.buf, rec.len);
			}
			strbuf_reset(&rec);
			strbuf_putc(&rec, 2);
			put_be64(&rec, t * PER_TARGET + 1);
			put_be64(&rec, (uint64_t)ms);
			for (i = 0; i < PER_TARGET; i++) {
				double v = value(l, i, t, ms);
				uint64_t bits;

				memcpy(&bits, &v, 8);
				put_varint(&rec, i);
				put_varint(&rec, 0);
				put_be64(&rec, bits);
			}
			pw_log(&pw, (const uint8_t *)rec.buf, rec.len);
		}
		if (maintain > 0 && k % maintain == maintain - 1)
			(void)tsdb_db_maintain(db);	/* what the leaf's thread does */
		if (k % 40 == 0)
			fprintf(stderr, "\rscrape %u/%u", k, l->steps);
	}
	fprintf(stderr, "\n");
	tsdb_db_stats(db, &st);
	printf("strata: %u series x %u scrapes = %" PRIu64 " samples committed in %.1fs (%.2f M samples/s), "
	    "WAL %.1f MiB (%.2f bytes/sample), head RSS %.0f MiB\n", l->nseries, l->steps,
	    st.head.samples_appended, (double)strata_ns / 1e9,
	    (double)st.head.samples_appended / ((double)strata_ns / 1e3),
	    (double)st.wal.storage_bytes / 1048576, (double)st.wal.storage_bytes /
	    (double)st.head.samples_appended, rss_mib());
	if (pdir != NULL) {
		if (pw.alloc > 0)
			pw_flush_page(&pw, false);
		close(pw.fd);
		printf("prometheus: WAL %.1f MiB (%.2f bytes/sample), %u segments\n",
		    (double)pw.bytes / 1048576, (double)pw.bytes / (double)st.head.samples_appended,
		    pw.seg + 1);
	}
	fflush(stdout);
	/* a crash: no close, no checkpoint */
	_exit(0);
}

static double
cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
replay(const char *sdir)
{
	struct tsdb_db_opts o;
	struct tsdb_db *db;
	struct tsdb_db_stats st;
	char err[512];
	double base = rss_mib(), c0 = cpu_secs(), c1, ha0, hr0, ha, hr;
	int64_t t0 = time_mono_ns();
	double open1, close1, open2;

	heap_mib(&ha0, &hr0);
	memset(&o, 0, sizeof o);
	o.path = sdir;
	o.no_maintenance = true;
	db = tsdb_db_open(&o, err, sizeof err);
	if (db == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	open1 = (double)(time_mono_ns() - t0) / 1e9;
	c1 = cpu_secs() - c0;
	tsdb_db_stats(db, &st);
	heap_mib(&ha, &hr);
#ifdef HAVE_JEMALLOC
	if (getenv("BENCH_JESTATS") != NULL)	/* live bytes by size class: what the head holds */
		malloc_stats_print(NULL, NULL, "gdalxe");
#endif
	printf("strata replay from the WAL: %.2fs (%.2f CPU s) for %" PRIu64 " series, %" PRIu64
	    " samples (%.1f M samples/s); RSS %.0f MiB, %.0f bytes/series above the empty process "
	    "(heap: %.0f bytes/series allocated, %.0f resident)\n",
	    open1, c1, st.head.series, st.head.samples_appended,
	    (double)st.head.samples_appended / open1 / 1e6, rss_mib(),
	    (rss_mib() - base) * 1048576 / (double)st.head.series,
	    (ha - ha0) * 1048576 / (double)st.head.series, (hr - hr0) * 1048576 / (double)st.head.series);
	t0 = time_mono_ns();
	tsdb_db_close(db);
	close1 = (double)(time_mono_ns() - t0) / 1e9;
	t0 = time_mono_ns();
	c0 = cpu_secs();
	db = tsdb_db_open(&o, err, sizeof err);
	open2 = (double)(time_mono_ns() - t0) / 1e9;
	tsdb_db_stats(db, &st);
	printf("strata close (checkpoint): %.2fs; reopen from the checkpoint: %.2fs (%.2f CPU s) for %"
	    PRIu64 " series\n", close1, open2, cpu_secs() - c0, st.head.series);
	tsdb_db_close(db);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *mode, *out = NULL, *sdir = NULL, *pdir = NULL;
	unsigned series = 10000, maintain = 0, jitter = 3;
	double hours = 2;
	struct load l;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_tsdb openmetrics|wal|replay [--series N] [--hours H] "
		    "[--out FILE] [--strata DIR] [--prometheus DIR] [--maintain K] [--jitter MS]\n");
		return 2;
	}
	mode = argv[1];
	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--series") == 0)
			series = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--hours") == 0)
			hours = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--out") == 0)
			out = argv[i + 1];
		else if (strcmp(argv[i], "--strata") == 0)
			sdir = argv[i + 1];
		else if (strcmp(argv[i], "--prometheus") == 0)
			pdir = argv[i + 1];
		else if (strcmp(argv[i], "--jitter") == 0)
			jitter = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--maintain") == 0)
			maintain = (unsigned)atoi(argv[i + 1]);
	}
	log_setup("warn", "logfmt", NULL, 0);
	if (strcmp(mode, "replay") == 0)
		return sdir ? replay(sdir) : 2;
	load_build(&l, series, hours);
	l.jitter = jitter;
	if (strcmp(mode, "openmetrics") == 0)
		return out ? write_openmetrics(&l, out) : 2;
	if (strcmp(mode, "wal") == 0)
		return sdir ? write_wal(&l, sdir, pdir, maintain) : 2;
	return 2;
}
