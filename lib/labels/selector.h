/* lib/labels/selector.h - parse a PromQL metric selector: name{l="v", ...}.
 *
 * The grammar of Prometheus' parser.ParseMetricSelector (what /federate's and
 * /api/v1/series' match[] take): an optional metric name, then an optional
 * brace block of label matchers with =, !=, =~, !~ and PromQL strings ("",
 * '' with Go escapes, `` raw). Like Prometheus, it only parses: an empty
 * block "{}" is valid and selects nothing.
 */
#ifndef STRATA_LABELS_SELECTOR_H
#define STRATA_LABELS_SELECTOR_H

#include <stddef.h>

#include "labels/matcher.h"

/* A parsed selector: owns its matchers. */
struct selector {
	struct matcher **ms;
	size_t n;
};

/* selector_parse parses s[0..len). Returns 0 and fills sel (free with
 * selector_free), or -1 with Prometheus-style "1:5: parse error: ..." in err. */
int selector_parse(const char *s, size_t len, struct selector *sel,
    char *err, size_t errlen);
void selector_free(struct selector *sel);
/* selector_unquote decodes a PromQL string literal (with its quotes) into
 * out. Returns 0, or -1 with the reason in err. */
int selector_unquote(const char *s, size_t len, struct strbuf *out,
    char *err, size_t errlen);

#endif
