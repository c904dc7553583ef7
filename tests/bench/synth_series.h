/* tests/bench/synth_series.h - the synthetic series of a benchmark target.
 *
 * One layout of S series shared by every target: HELP and TYPE per family,
 * 20% gauges of two labels, 50% counters of three, the rest histograms of
 * 11 buckets + Inf, _sum and _count, then synth_target_info. Values are
 * computed from the clock (counters grow, gauges move) and printed with
 * %.17g, so every scrape brings new samples. synth-targets serves these
 * bodies over HTTP; bench_scrape appends them without the network.
 */
#ifndef STRATA_BENCH_SYNTH_SERIES_H
#define STRATA_BENCH_SYNTH_SERIES_H

#include <stdint.h>

#include "util/strbuf.h"

struct synth_series {
	char *name_labels;	/* owned: "name{...}" */
	char *help;		/* owned: HELP and TYPE lines printed before it, or NULL */
	unsigned kind;		/* 0 gauge, 1 counter, 2 bucket, 3 sum, 4 count */
	unsigned seed;
};

/* synth_series_layout returns nseries series (free with synth_series_free). */
struct synth_series *synth_series_layout(int nseries);
void synth_series_free(struct synth_series *s, int nseries);

/* synth_series_body appends target t's exposition at now_ms to out, its
 * counters counted from start_ms. */
void synth_series_body(const struct synth_series *s, int nseries, int t, int64_t start_ms,
    int64_t now_ms, struct strbuf *out);

#endif
