/* tests/bench/synth_series.c - the synthetic series of a benchmark target:
 * their layout and bodies (see synth_series.h).
 */
#include "config.h"

#include <math.h>

#include "util/mem.h"
#include "synth_series.h"

static const double synth_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof(synth_buckets) / sizeof(synth_buckets[0]))

struct synth_series *
synth_series_layout(int nseries)
{
	struct synth_series *s = mem_calloc((size_t)nseries, sizeof(*s));
	int i = 0, fam = 0;
	struct strbuf sb = STRBUF_INIT;

	while (i < nseries) {
		int left = nseries - i, n, j;
		unsigned kind = fam % 5 == 0 ? 0 : fam % 5 == 4 ? 2 : 1;

		if (kind == 2 && left < (int)NBUCKETS + 3)
			kind = 1;
		strbuf_reset(&sb);
		if (kind == 0) {
			n = left < 50 ? left : 50;
			strbuf_printf(&sb, "# HELP synth_memory_%d_bytes Synthetic gauge family %d.\n# TYPE synth_memory_%d_bytes gauge\n", fam, fam, fam);
			s[i].help = strbuf_detach(&sb, NULL);
			for (j = 0; j < n; j++, i++) {
				strbuf_printf(&sb, "synth_memory_%d_bytes{area=\"a%d\",node=\"n%d\"}", fam, j, j % 7);
				s[i].name_labels = strbuf_detach(&sb, NULL);
				s[i].kind = 0;
				s[i].seed = (unsigned)(i * 2654435761u);
			}
		} else if (kind == 1) {
			n = left < 100 ? left : 100;
			strbuf_printf(&sb, "# HELP synth_requests_%d_total Synthetic counter family %d.\n# TYPE synth_requests_%d_total counter\n", fam, fam, fam);
			s[i].help = strbuf_detach(&sb, NULL);
			for (j = 0; j < n; j++, i++) {
				strbuf_printf(&sb, "synth_requests_%d_total{code=\"%d\",handler=\"/api/v1/h%d\",method=\"%s\"}",
				    fam, 200 + (j % 5) * 100, j / 5, j % 2 ? "POST" : "GET");
				s[i].name_labels = strbuf_detach(&sb, NULL);
				s[i].kind = 1;
				s[i].seed = (unsigned)(i * 2654435761u);
			}
		} else {
			int h, nh = left / (int)(NBUCKETS + 3);

			if (nh > 20)
				nh = 20;
			strbuf_printf(&sb, "# HELP synth_latency_%d_seconds Synthetic histogram family %d.\n# TYPE synth_latency_%d_seconds histogram\n", fam, fam, fam);
			s[i].help = strbuf_detach(&sb, NULL);
			for (h = 0; h < nh; h++) {
				size_t b;

				for (b = 0; b <= NBUCKETS; b++, i++) {
					if (b < NBUCKETS)
						strbuf_printf(&sb, "synth_latency_%d_seconds_bucket{handler=\"/h%d\",le=\"%g\"}", fam, h, synth_buckets[b]);
					else
						strbuf_printf(&sb, "synth_latency_%d_seconds_bucket{handler=\"/h%d\",le=\"+Inf\"}", fam, h);
					s[i].name_labels = strbuf_detach(&sb, NULL);
					s[i].kind = 2;
					s[i].seed = (unsigned)b;
				}
				strbuf_printf(&sb, "synth_latency_%d_seconds_sum{handler=\"/h%d\"}", fam, h);
				s[i].name_labels = strbuf_detach(&sb, NULL);
				s[i++].kind = 3;
				strbuf_printf(&sb, "synth_latency_%d_seconds_count{handler=\"/h%d\"}", fam, h);
				s[i].name_labels = strbuf_detach(&sb, NULL);
				s[i++].kind = 4;
			}
		}
		fam++;
	}
	strbuf_free(&sb);
	return s;
}

void
synth_series_body(const struct synth_series *s, int nseries, int t, int64_t start_ms,
    int64_t now_ms, struct strbuf *out)
{
	double secs = (double)(now_ms - start_ms) / 1000.0;
	long tick = (long)(now_ms / 1000);
	int i;

	for (i = 0; i < nseries; i++) {
		const struct synth_series *se = &s[i];
		double v;

		if (se->help != NULL)
			strbuf_puts(out, se->help);
		switch (se->kind) {
		case 0:
			v = (double)((se->seed + (unsigned)t * 31u + (unsigned)tick * 7u) % 100000u) * 1024.0;
			break;
		case 1:
			v = floor(secs * (double)(1 + (se->seed + (unsigned)t) % 50));
			break;
		case 2:
			v = floor(secs * (double)(se->seed + 1));
			break;
		case 3:
			v = secs * 0.37 * (double)(t + 1);
			break;
		default:
			v = floor(secs * (double)(NBUCKETS + 1));
		}
		strbuf_puts(out, se->name_labels);
		strbuf_printf(out, " %.17g\n", v);
	}
	strbuf_printf(out, "synth_target_info{target=\"%d\"} 1\n", t);
}

void
synth_series_free(struct synth_series *s, int nseries)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < nseries; i++) {
		mem_free(s[i].name_labels);
		mem_free(s[i].help);
	}
	mem_free(s);
}
