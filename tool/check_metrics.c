/* tool/check_metrics.c - strata-tool check metrics: validate an exposition.
 *
 * Reads a whole body (a file, or stdin when no file or "-" is given), parses
 * it with lib/expfmt in the format asked for (text by default) and prints
 * how many samples and distinct series it holds, or FILE:line:column: reason
 * for the first error. Exit status: 0 valid, 1 invalid or unreadable, 2 usage.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expfmt/parse.h"
#include "tool/tool.h"
#include "util/mem.h"

static void
check_metrics_usage(FILE *out)
{
	fprintf(out, "usage: strata-tool check metrics [--format=text|openmetrics] [FILE]\n");
}

/* check_metrics_read returns the contents of f (caller frees) or NULL. */
static char *
check_metrics_read(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = mem_try_alloc(cap);

	if (buf == NULL)
		return NULL;
	for (;;) {
		size_t r;

		if (n == cap) {
			char *nb = cap > SIZE_MAX / 2 ? NULL : mem_try_realloc(buf, cap * 2);

			if (nb == NULL) {
				mem_free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0) {
			if (ferror(f)) {
				mem_free(buf);
				return NULL;
			}
			break;
		}
	}
	*len = n;
	return buf;
}

/* check_metrics_distinct counts distinct series by a 64-bit hash of their
 * raw bytes (an open-addressing set; 0 marks a free slot). */
struct check_metrics_set {
	uint64_t *v;
	size_t n, cap;
};

static void
check_metrics_add(struct check_metrics_set *s, const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	if (h == 0)
		h = 1;
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024, j;
		uint64_t *nv = mem_calloc(ncap, sizeof(*nv));

		for (j = 0; j < s->cap; j++) {
			if (s->v[j] == 0)
				continue;
			for (i = s->v[j] & (ncap - 1); nv[i]; i = (i + 1) & (ncap - 1))
				;
			nv[i] = s->v[j];
		}
		mem_free(s->v);
		s->v = nv;
		s->cap = ncap;
	}
	for (i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return;
	s->v[i] = h;
	s->n++;
}

int
tool_check_metrics(int argc, char **argv)
{
	enum expfmt_format fmt = EXPFMT_TEXT;
	const char *file = NULL, *fname;
	struct check_metrics_set set = { NULL, 0, 0 };
	struct expfmt_parser *p;
	struct expfmt_entry e;
	size_t len = 0, samples = 0;
	char *body;
	int i, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *f = NULL;

		if (strncmp(a, "--format=", 9) == 0) {
			f = a + 9;
		} else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
			f = argv[++i];
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			check_metrics_usage(stdout);
			return 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "strata-tool: check metrics: unknown flag %s\n", a);
			check_metrics_usage(stderr);
			return 2;
		} else if (file == NULL) {
			file = a;
			continue;
		} else {
			check_metrics_usage(stderr);
			return 2;
		}
		if (strcmp(f, "text") == 0) {
			fmt = EXPFMT_TEXT;
		} else if (strcmp(f, "openmetrics") == 0) {
			fmt = EXPFMT_OPENMETRICS;
		} else {
			fprintf(stderr, "strata-tool: check metrics: unknown format \"%s\" "
			    "(text or openmetrics)\n", f);
			return 2;
		}
	}
	if (file == NULL || strcmp(file, "-") == 0) {
		fname = "<stdin>";
		body = check_metrics_read(stdin, &len);
	} else {
		FILE *f = fopen(file, "rb");

		fname = file;
		if (f == NULL) {
			fprintf(stderr, "%s: %s\n", file, strerror(errno));
			return 1;
		}
		body = check_metrics_read(f, &len);
		fclose(f);
	}
	if (body == NULL) {
		fprintf(stderr, "%s: %s\n", fname, strerror(errno ? errno : EIO));
		return 1;
	}
	p = expfmt_parser_new(fmt, body, len);
	while ((rc = expfmt_next(p, &e)) > 0) {
		if (rc == EXPFMT_SAMPLE) {
			samples++;
			check_metrics_add(&set, e.series.p, e.series.len);
		}
	}
	if (rc == EXPFMT_ERROR) {
		const struct expfmt_error *err = expfmt_error(p);

		fprintf(stderr, "%s:%zu:%zu: %s\n", fname, err->line, err->column, err->msg);
	} else {
		printf("%s: %zu series (%zu samples) in %s format\n", fname, set.n, samples,
		    fmt == EXPFMT_TEXT ? "text" : "openmetrics");
	}
	expfmt_parser_free(p);
	mem_free(set.v);
	mem_free(body);
	return rc == EXPFMT_ERROR ? 1 : 0;
}
