/* lib/expfmt/pull.h - the incremental pull format between strata servers.
 *
 * A central federating from a strata server asks its /federate for every
 * sample stored since its last pull (request header X-Strata-Pull-Since:
 * <ms>); the server answers in this format (Content-Type
 * application/vnd.strata.pull; version=1) instead of the text exposition,
 * which carries only the newest sample per series and cannot tell a
 * staleness marker from another NaN. A plain Prometheus ignores the header
 * and answers text, so the same federation job works against both.
 *
 *   # strata-pull 1 <since> <until>
 *   S up{instance="a:9100",job="node"}
 *   1700000000000 1
 *   1700000015000 NaN:7ff0000000000002
 *   S ...
 *   # EOF
 *
 * The header line gives the window (since, until] in ms that the body
 * covers completely: the next pull asks for since = until. An "S" line
 * opens a series (text-format name and labels, values escaped as in the
 * text format); the lines after it are its samples in time order, the
 * timestamp in ms and the value as Go's shortest float text, or for every
 * NaN "NaN:" and its 16 hex bits, so staleness markers survive bit-exact.
 * "# EOF" ends a complete body: a body without it was cut and is refused.
 *
 * Writer functions append to a strbuf; the parser walks a complete body in
 * memory and, like lib/expfmt/parse.h, hands out slices valid until the
 * next call. Stateless writer; one parser per thread.
 */
#ifndef STRATA_EXPFMT_PULL_H
#define STRATA_EXPFMT_PULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expfmt/parse.h"
#include "labels/labels.h"
#include "util/strbuf.h"

#define PULL_CONTENT_TYPE "application/vnd.strata.pull; version=1"
#define PULL_SINCE_HEADER "X-Strata-Pull-Since"
/* The client's largest acceptable window (ms); the server answers at most
 * that much time (and never more than PULL_MAX_WINDOW_MS). A client whose
 * pulls fail (too big to fetch within its timeout, or over its body limit)
 * asks for smaller windows, down to PULL_MIN_WINDOW_MS. */
#define PULL_WINDOW_HEADER "X-Strata-Pull-Max-Window"

/* How far behind now a server's window ends: samples are stamped with
 * their scrape's start and committed up to a scrape timeout later. */
#define PULL_SETTLE_MS (15 * 1000)
#define PULL_MAX_WINDOW_MS (10 * 60 * 1000)
#define PULL_MIN_WINDOW_MS (15 * 1000)

/* pull_write_header appends the window line. */
void pull_write_header(struct strbuf *sb, int64_t since, int64_t until);
/* pull_write_series appends an "S" line for the name and n labels (no
 * __name__ among them), written in the order given. */
void pull_write_series(struct strbuf *sb, const char *name,
    const struct expfmt_label *labels, size_t n);
/* pull_write_sample appends one sample line. */
void pull_write_sample(struct strbuf *sb, int64_t t, double v);
/* pull_write_end appends "# EOF". */
void pull_write_end(struct strbuf *sb);

enum pull_kind {
	PULL_ERROR = -1,	/* see pull_error(); stays failed */
	PULL_END = 0,		/* "# EOF" reached */
	PULL_SERIES,		/* a series opens: name, labels */
	PULL_SAMPLE,		/* a sample of the open series: t, v */
};

struct pull_entry {
	struct expfmt_str name;
	const struct expfmt_label *labels;	/* decoded values */
	size_t nlabels;
	int64_t t;
	double v;
};

struct pull_parser;

/* pull_parser_new reads the header line of body[0..len) (borrowed; it
 * must outlive the parser). Returns NULL with "line:col: reason" in err
 * when it is not a pull body. *since and *until receive the window. */
struct pull_parser *pull_parser_new(const char *body, size_t len,
    int64_t *since, int64_t *until, char *err, size_t errlen);
void pull_parser_free(struct pull_parser *p);
/* pull_next parses the next entry. Returns its kind; PULL_ERROR with the
 * reason in pull_error(). Slices in *e are valid until the next call. */
enum pull_kind pull_next(struct pull_parser *p, struct pull_entry *e);
/* pull_error returns "line:col: reason" of a failed parser, or NULL. */
const char *pull_error(const struct pull_parser *p);

#endif
