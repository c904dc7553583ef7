/* tests/fuzz/fuzz_config.c - libFuzzer target: cfg_load_string, then marshal and reload.
 *
 * Any input must either be refused with a FILE:line:col message or load;
 * a loaded config must marshal, and what it marshals must load again
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
#include "util/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
