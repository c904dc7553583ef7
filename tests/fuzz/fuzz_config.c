/* tests/fuzz/fuzz_config.c - libFuzzer target: cfg_load_string, relabel, marshal, reload.
 *
 * Any input must either be refused with a FILE:line:col message or load;
 * a loaded config's relabel rules are applied to its static targets (see
 * fuzz_relabel); it must marshal, and what it marshals must load again
 * (the /api/v1/status/config output is valid config), except for the
 * keepequal/dropequal quirk Prometheus has too (see below). The same bytes are
 * also read as a file_sd target file. Memory is bounded by the limits in
 * lib/config/yaml.h; run with -rss_limit_mb=2048.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "labels/labels.h"
#include "relabel/relabel.h"
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_relabel runs every scrape job's relabel_configs over each of its
 * static targets (as target relabeling does: __address__, job, the group's
 * labels), then its metric_relabel_configs over what is kept, through both
 * relabel_process() and relabel_apply(), which must agree. */
static void
fuzz_relabel(const struct cfg *c)
{
	struct labels_builder *lb = labels_builder_new();
	size_t i, j, k, m;

	for (i = 0; i < c->n_scrape; i++) {
		const struct cfg_scrape *s = &c->scrape[i];

		for (j = 0; j < s->n_static_configs; j++) {
			const struct cfg_target_group *g = &s->static_configs[j];

			for (k = 0; k < g->n_targets; k++) {
				struct labels *in, *out, *out2 = NULL;
				bool kept;

				labels_builder_reset(lb, g->labels);
				labels_builder_set(lb, "__address__", g->targets[k]);
				labels_builder_set(lb, "job", s->job_name);
				in = labels_builder_labels(lb);
				out = relabel_process(s->relabel.rules, s->relabel.n, in);
				kept = relabel_apply(s->relabel.rules, s->relabel.n, lb);
				if (kept != (out != NULL))
					abort();
				if (kept) {
					out2 = labels_builder_labels(lb);
					if (!labels_equal(out, out2))
						abort();
					for (m = 1; m < out->n; m++)
						if (strcmp(out->v[m - 1].name, out->v[m].name) >= 0)
							abort();	/* sorted, unique */
					labels_free(relabel_process(s->metric_relabel.rules,
					    s->metric_relabel.n, out));
				}
				labels_free(out2);
				labels_free(out);
				labels_free(in);
			}
		}
	}
	labels_builder_free(lb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct cfg *c, *c2;
	struct cfg_target_group *g;
	size_t n;

	c = cfg_load_string((const char *)data, size, "f.yml", "/d", err, sizeof(err));
	if (c == NULL) {
		if (strncmp(err, "f.yml:", 6) != 0)
			abort();	/* every message is positioned */
	} else {
		struct strbuf sb = STRBUF_INIT;

		fuzz_relabel(c);
		if (cfg_marshal_yaml(c, &sb) < 0)
			abort();
		c2 = cfg_load_string(sb.buf, sb.len, "m.yml", NULL, err, sizeof(err));
		/* Prometheus prints keepequal/dropequal rules with the default
		 * separator, regex and replacement, which its own loader (and
		 * ours) then refuses: the one known non-round-trip. */
		if (c2 == NULL && strstr(err, "action requires only 'source_labels'") == NULL) {
			fprintf(stderr, "marshalled config refused: %s\n%s\n", err, sb.buf);
			abort();
		}
		cfg_free(c2);
		strbuf_free(&sb);
		cfg_free(c);
	}
	if (cfg_sd_file_parse((const char *)data, size, "t.json", size > 0 && data[0] == '[',
	    &g, &n, err, sizeof(err)) == 0)
		cfg_target_groups_free(g, n);
	return 0;
}
