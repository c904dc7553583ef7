/* lib/expfmt/write.h - text exposition format 0.0.4 writer.
 *
 * Appends TYPE/HELP lines and sample lines to a struct strbuf exactly as
 * Prometheus' text encoder (prometheus/common expfmt) writes them: label
 * values escape backslash, double quote and newline; HELP escapes backslash
 * and newline; values use Go's shortest 'g' formatting (1e+06, 0.0001,
 * 1.7518624e+07) with NaN, +Inf, -Inf, and 0 for both zeros. /federate
 * streams through these, one sample at a time. Stateless and thread-safe.
 */
#ifndef STRATA_EXPFMT_WRITE_H
#define STRATA_EXPFMT_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expfmt/parse.h"
#include "labels/labels.h"
#include "util/float.h"
#include "util/strbuf.h"

/* Bytes expfmt_format_float may write, with the NUL. */
#define EXPFMT_FLOAT_MAX FLOAT_FMT_MAX

/* expfmt_format_float writes v into buf (EXPFMT_FLOAT_MAX bytes) as
 * Prometheus' text encoder does, NUL-terminated, and returns the length. */
size_t expfmt_format_float(double v, char *buf);
/* expfmt_write_float appends v formatted by expfmt_format_float. */
void expfmt_write_float(struct strbuf *sb, double v);
/* expfmt_write_label_value appends v[0..len) with \\, \" and \n escaped. */
void expfmt_write_label_value(struct strbuf *sb, const char *v, size_t len);
/* expfmt_write_type appends "# TYPE name <type>\n" (text-format names:
 * "untyped" for unknown; OpenMetrics-only types are written as untyped). */
void expfmt_write_type(struct strbuf *sb, const char *name, size_t len, enum expfmt_type t);
/* expfmt_write_help appends "# HELP name help\n" with \\ and \n escaped. */
void expfmt_write_help(struct strbuf *sb, const char *name, size_t nlen,
    const char *help, size_t hlen);
/* expfmt_write_sample appends `name{l="v",...} value[ ts]\n` for n labels
 * given in the order to write (none may be __name__; no braces when n is 0). */
void expfmt_write_sample(struct strbuf *sb, const char *name, size_t nlen,
    const struct expfmt_label *labels, size_t n, double v, bool has_ts, int64_t ts);
/* expfmt_write_series appends a sample line for the label set ls: the
 * metric name from __name__, the other labels in ls' (sorted) order. */
void expfmt_write_series(struct strbuf *sb, const struct labels *ls, double v,
    bool has_ts, int64_t ts);

#endif
