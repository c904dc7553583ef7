/* tool/import.c - strata-tool import openmetrics: backfill blocks from a file.
 *
 * Like `promtool tsdb create-blocks-from openmetrics`: reads OpenMetrics
 * text whose samples all carry timestamps, and writes one block per aligned
 * block range (2h unless --max-block-duration says otherwise) into the data
 * directory. A stopped strata loads them at start, a running one at its
 * next maintenance pass (blocks appear whole: written aside, then renamed);
 * where they overlap data already there, compaction merges them.
 *
 * The file is mapped and parsed once to validate it and count samples per
 * block range, then once per batch of ranges whose samples fit in memory
 * (about 512 MiB): a batch's samples are gathered per series, sorted, and
 * written. Within a series the last sample written for a timestamp wins.
 * Exit status: 0 done, 1 invalid input or a write error, 2 usage.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "expfmt/parse.h"
#include "labels/labels.h"
#include "tool/tool.h"
#include "tsdb/block.h"
#include "util/mem.h"
#include "util/time.h"

#define BATCH_BYTES ((size_t)512 << 20)

struct imp_series {
	struct labels *ls;
	struct tsdb_sample *v;
	size_t n, cap;
};

struct imp {
	const char *file;
	const char *body;
	size_t len;
	int64_t range;
	const char *dir;
	/* series of the current batch, found by their text in the file */
	struct imp_series *s;
	size_t ns, caps;
	uint32_t *tab;		/* index + 1 into s; open addressing by hash */
	uint64_t *hashes;
	char **keys;
	size_t tabcap;
	struct labels_builder *lb;
	/* sample counts per block range, ranges sorted */
	int64_t *win;
	uint64_t *wcount;
	size_t nwin, capwin;
	uint64_t samples, blocks, series_total;
};

static void
import_usage(FILE *out)
{
	fprintf(out, "usage: strata-tool import openmetrics FILE --storage.tsdb.path DIR "
	    "[--max-block-duration DURATION]\n");
}

static int64_t
align_down(int64_t t, int64_t r)
{
	int64_t q = t / r;

	if (t < 0 && q * r != t)
		q--;
	return q * r;
}

/* window_add counts a sample in the range starting at w (ranges sorted). */
static void
window_add(struct imp *im, int64_t w)
{
	size_t lo = 0, hi = im->nwin;

	if (im->nwin > 0 && im->win[im->nwin - 1] == w) {
		im->wcount[im->nwin - 1]++;
		return;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (im->win[mid] < w)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < im->nwin && im->win[lo] == w) {
		im->wcount[lo]++;
		return;
	}
	if (im->nwin == im->capwin) {
		im->capwin = im->capwin ? im->capwin * 2 : 16;
		im->win = mem_realloc(im->win, im->capwin * sizeof *im->win);
		im->wcount = mem_realloc(im->wcount, im->capwin * sizeof *im->wcount);
	}
	memmove(im->win + lo + 1, im->win + lo, (im->nwin - lo) * sizeof *im->win);
	memmove(im->wcount + lo + 1, im->wcount + lo, (im->nwin - lo) * sizeof *im->wcount);
	im->win[lo] = w;
	im->wcount[lo] = 1;
	im->nwin++;
}

/* series_of returns the batch's series for the sample in e. */
static struct imp_series *
series_of(struct imp *im, const struct expfmt_entry *e)
{
	uint64_t h = XXH3_64bits(e->series.p, e->series.len);
	size_t i, k;
	struct imp_series *s;

	if ((im->ns + 1) * 2 > im->tabcap) {
		size_t cap = im->tabcap ? im->tabcap * 2 : 1024;
		uint32_t *tab = mem_calloc(cap, sizeof *tab);

		for (i = 0; i < im->tabcap; i++) {
			if (im->tab[i] == 0)
				continue;
			for (k = im->hashes[im->tab[i] - 1] & (cap - 1); tab[k]; k = (k + 1) & (cap - 1))
				;
			tab[k] = im->tab[i];
		}
		mem_free(im->tab);
		im->tab = tab;
		im->tabcap = cap;
	}
	for (k = h & (im->tabcap - 1); im->tab[k]; k = (k + 1) & (im->tabcap - 1)) {
		size_t j = im->tab[k] - 1;

		if (im->hashes[j] == h && strlen(im->keys[j]) == e->series.len &&
		    memcmp(im->keys[j], e->series.p, e->series.len) == 0)
			return &im->s[j];
	}
	if (im->ns == im->caps) {
		im->caps = im->caps ? im->caps * 2 : 1024;
		im->s = mem_realloc(im->s, im->caps * sizeof *im->s);
		im->hashes = mem_realloc(im->hashes, im->caps * sizeof *im->hashes);
		im->keys = mem_realloc(im->keys, im->caps * sizeof *im->keys);
	}
	s = &im->s[im->ns];
	memset(s, 0, sizeof *s);
	labels_builder_reset(im->lb, NULL);
	labels_builder_setn(im->lb, LABEL_METRIC_NAME, strlen(LABEL_METRIC_NAME),
	    e->name.p, e->name.len);
	for (i = 0; i < e->nlabels; i++)
		labels_builder_setn(im->lb, e->labels[i].name.p, e->labels[i].name.len,
		    e->labels[i].value.p, e->labels[i].value.len);
	s->ls = labels_builder_labels(im->lb);
	im->hashes[im->ns] = h;
	im->keys[im->ns] = mem_strndup(e->series.p, e->series.len);
	im->tab[k] = (uint32_t)++im->ns;
	return s;
}

static void
series_reset(struct imp *im)
{
	size_t i;

	for (i = 0; i < im->ns; i++) {
		labels_free(im->s[i].ls);
		mem_free(im->s[i].v);
		mem_free(im->keys[i]);
	}
	im->ns = 0;
	if (im->tab != NULL)
		memset(im->tab, 0, im->tabcap * sizeof *im->tab);
}

/* parse walks the file; with [lo, hi) set it gathers the samples in that
 * span, else it validates and counts per range. Returns 0 or 1. */
static int
parse(struct imp *im, int64_t lo, int64_t hi, bool gather)
{
	struct expfmt_parser *p = expfmt_parser_new(EXPFMT_OPENMETRICS, im->body, im->len);
	struct expfmt_entry e;
	enum expfmt_kind k;
	int rc = 0;

	while ((k = expfmt_next(p, &e)) > 0) {
		struct imp_series *s;

		if (k != EXPFMT_SAMPLE)
			continue;
		if (!gather) {
			if (!e.has_ts) {
				fprintf(stderr, "%s: sample %.*s has no timestamp: backfilling needs "
				    "one on every sample\n", im->file, (int)e.series.len, e.series.p);
				rc = 1;
				break;
			}
			window_add(im, align_down(e.ts, im->range));
			im->samples++;
			continue;
		}
		if (e.ts < lo || e.ts >= hi)
			continue;
		s = series_of(im, &e);
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 16;
			s->v = mem_realloc(s->v, s->cap * sizeof *s->v);
		}
		s->v[s->n].t = e.ts;
		s->v[s->n++].v = chunk_f64_bits(e.value);
	}
	if (k == EXPFMT_ERROR) {
		const struct expfmt_error *err = expfmt_error(p);

		fprintf(stderr, "%s:%zu:%zu: %s\n", im->file, err->line, err->column, err->msg);
		rc = 1;
	}
	expfmt_parser_free(p);
	return rc;
}

static int
cmp_series(const void *a, const void *b)
{
	return labels_compare(((const struct imp_series *)a)->ls,
	    ((const struct imp_series *)b)->ls);
}

struct tagged {
	int64_t t;
	uint64_t v;
	size_t i;	/* position in the file: ties keep it */
};

static int
cmp_tagged(const void *a, const void *b)
{
	const struct tagged *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* sort_unique sorts a series' samples by time and keeps, of samples with
 * one timestamp, the one written last in the file. */
static void
sort_unique(struct imp_series *s)
{
	struct tagged *tmp;
	size_t i, k;
	bool sorted = true;

	for (i = 1; i < s->n && sorted; i++)
		sorted = s->v[i].t > s->v[i - 1].t;
	if (sorted)
		return;
	tmp = mem_alloc(s->n * sizeof *tmp);
	for (i = 0; i < s->n; i++) {
		tmp[i].t = s->v[i].t;
		tmp[i].v = s->v[i].v;
		tmp[i].i = i;
	}
	qsort(tmp, s->n, sizeof *tmp, cmp_tagged);
	for (i = k = 0; i < s->n; i++) {
		if (k > 0 && s->v[k - 1].t == tmp[i].t) {
			s->v[k - 1].v = tmp[i].v;	/* the later one */
			continue;
		}
		s->v[k].t = tmp[i].t;
		s->v[k++].v = tmp[i].v;
	}
	s->n = k;
	mem_free(tmp);
}

/* write_batch writes blocks for ranges [w0, w1) of the gathered series. */
static int
write_batch(struct imp *im, size_t w0, size_t w1)
{
	size_t w, i;
	char err[512];

	if (im->ns > 1)
		qsort(im->s, im->ns, sizeof *im->s, cmp_series);
	for (i = 0; i < im->ns; i++)
		sort_unique(&im->s[i]);
	im->series_total += im->ns;
	for (w = w0; w < w1; w++) {
		int64_t lo = im->win[w], hi = lo + im->range;
		struct block_writer *bw = block_writer_new(im->dir, lo, hi, 1, err, sizeof err);
		char id[BLOCK_ID_LEN + 1];
		uint64_t nsamp = 0, nser = 0;
		int rc;

		if (bw == NULL) {
			fprintf(stderr, "strata-tool: %s\n", err);
			return 1;
		}
		for (i = 0; i < im->ns; i++) {
			struct imp_series *s = &im->s[i];
			size_t a = 0, b;

			while (a < s->n && s->v[a].t < lo)
				a++;
			for (b = a; b < s->n && s->v[b].t < hi; b++)
				;
			if (b == a)
				continue;
			if (block_writer_add(bw, s->ls, s->v + a, b - a, err, sizeof err) < 0) {
				block_writer_abort(bw);
				fprintf(stderr, "strata-tool: %s\n", err);
				return 1;
			}
			nsamp += b - a;
			nser++;
		}
		rc = block_writer_finish(bw, id, err, sizeof err);
		if (rc < 0) {
			fprintf(stderr, "strata-tool: %s\n", err);
			return 1;
		}
		if (rc == 0) {
			char a[32], b[32];

			printf("BLOCK %s  %s .. %s  %" PRIu64 " series  %" PRIu64 " samples\n", id,
			    time_format_rfc3339(lo, a, sizeof a), time_format_rfc3339(hi, b, sizeof b),
			    nser, nsamp);
			im->blocks++;
		}
	}
	return 0;
}

int
tool_import_openmetrics(int argc, char **argv)
{
	struct imp im;
	const char *file = NULL;
	struct stat sb;
	int fd, i, rc = 1;
	size_t w;
	void *m;
	int64_t t0 = time_mono_ns();

	memset(&im, 0, sizeof im);
	im.range = 2 * 3600 * 1000;
	im.dir = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		size_t nl;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			import_usage(stdout);
			return 0;
		}
		if (strncmp(a, "--", 2) != 0) {
			if (file != NULL) {
				import_usage(stderr);
				return 2;
			}
			file = a;
			continue;
		}
		nl = strcspn(a, "=");
		if (a[nl] == '=')
			val = a + nl + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (val == NULL) {
			fprintf(stderr, "strata-tool: %s needs a value\n", a);
			return 2;
		}
		if (nl == strlen("--storage.tsdb.path") && strncmp(a, "--storage.tsdb.path", nl) == 0) {
			im.dir = val;
		} else if (nl == strlen("--max-block-duration") &&
		    strncmp(a, "--max-block-duration", nl) == 0) {
			char err[128];

			if (time_parse_duration(val, strlen(val), &im.range, err, sizeof err) < 0 ||
			    im.range < 60000) {
				fprintf(stderr, "strata-tool: --max-block-duration: %s\n",
				    im.range < 60000 ? "at least 1m" : err);
				return 2;
			}
		} else {
			fprintf(stderr, "strata-tool: unknown flag %.*s\n", (int)nl, a);
			import_usage(stderr);
			return 2;
		}
	}
	if (file == NULL || im.dir == NULL) {
		import_usage(stderr);
		return 2;
	}
	im.file = file;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "strata-tool: %s: %s\n", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (mkdir(im.dir, 0777) < 0 && errno != EEXIST) {
		fprintf(stderr, "strata-tool: create %s: %s\n", im.dir, strerror(errno));
		close(fd);
		return 1;
	}
	m = sb.st_size > 0 ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (m == MAP_FAILED) {
		fprintf(stderr, "strata-tool: %s: %s\n", file, strerror(errno));
		return 1;
	}
	im.body = m;
	im.len = (size_t)sb.st_size;
	im.lb = labels_builder_new();
	if (parse(&im, 0, 0, false) != 0)
		goto out;
	/* batches of consecutive ranges whose samples fit in memory */
	for (w = 0; w < im.nwin;) {
		size_t end = w + 1;
		uint64_t n = im.wcount[w];

		while (end < im.nwin && (n + im.wcount[end]) * sizeof(struct tsdb_sample) * 2 <
		    BATCH_BYTES)
			n += im.wcount[end++];
		if (parse(&im, im.win[w], im.win[end - 1] + im.range, true) != 0 ||
		    write_batch(&im, w, end) != 0)
			goto out;
		series_reset(&im);
		w = end;
	}
	printf("imported %" PRIu64 " samples into %" PRIu64 " blocks under %s in %.2fs\n",
	    im.samples, im.blocks, im.dir, (double)(time_mono_ns() - t0) / 1e9);
	rc = 0;
out:
	series_reset(&im);
	mem_free(im.s);
	mem_free(im.tab);
	mem_free(im.hashes);
	mem_free(im.keys);
	mem_free(im.win);
	mem_free(im.wcount);
	labels_builder_free(im.lb);
	if (m != NULL)
		munmap(m, im.len);
	return rc;
}
