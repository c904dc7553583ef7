/* lib/util/utf8.h - decoding UTF-8 the way Go does.
 *
 * Label values, regex patterns and quoted strings must treat invalid UTF-8
 * exactly as Prometheus (Go) does, so the rune decoder lives here once.
 * Stateless and thread-safe.
 */
#ifndef STRATA_UTIL_UTF8_H
#define STRATA_UTIL_UTF8_H

#include <stddef.h>

/* utf8_decode_rune decodes the rune at s[0..len) (len > 0) as Go's
 * utf8.DecodeRune: returns its width and sets *r to it; for an invalid or
 * truncated sequence, a surrogate or an overlong form it sets *r to -1 and
 * returns 1. */
size_t utf8_decode_rune(const unsigned char *s, size_t len, long *r);

#endif
