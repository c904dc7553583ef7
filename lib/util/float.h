/* lib/util/float.h - floats written as Go's strconv.FormatFloat(v, fmt, -1, 64).
 *
 * Prometheus writes sample values in three places strata must match byte
 * for byte: the text exposition ('g': "1e+06", "0.0001"), the JSON API
 * ('f' strings, 'e' for very small or large points) and PromQL's printed
 * expressions. All of them want the shortest decimal that reads back as
 * the same double, in Go's layouts; this module computes it once for all.
 * Stateless and thread-safe.
 */
#ifndef STRATA_UTIL_FLOAT_H
#define STRATA_UTIL_FLOAT_H

#include <stddef.h>

#include "util/strbuf.h"

/* Bytes float_format_buf may write, with the NUL. */
#define FLOAT_FMT_MAX 32

/* float_shortest fills digs with the fewest significant decimal digits that
 * read back as v (finite, > 0; no trailing zeros) and returns their count
 * n; v is 0.d1..dn times 10^*dp. */
int float_shortest(double v, char digs[24], int *dp);

/* float_format_buf writes v as Go's FormatFloat(v, fmt, -1, 64) for fmt
 * 'e' or 'g' into buf (FLOAT_FMT_MAX bytes), NUL-terminated, and returns
 * the length: "NaN", "+Inf", "-Inf", "-0" for negative zero, exponents with
 * at least two digits ("1e+06", "1e-07"). */
size_t float_format_buf(double v, char fmt, char *buf);
/* float_format appends v as Go's FormatFloat(v, fmt, -1, 64) for fmt 'e',
 * 'f' or 'g' ('f' writes every digit: 1e300 takes 301). */
void float_format(struct strbuf *sb, double v, char fmt);

#endif
