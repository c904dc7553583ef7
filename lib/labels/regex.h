/* lib/labels/regex.h - Prometheus' regular expressions on PCRE2 (JIT).
 *
 * Prometheus uses Go's RE2 syntax, always fully anchored: a pattern p matches
 * a string only when ^(?:p)$ does. This module compiles patterns that way,
 * refuses what RE2 refuses (backreferences, lookaround), bounds the cost of a
 * match (PCRE2 match and depth limits: a pathological pattern cannot hang a
 * thread; a match that hits the limit counts as no match), and expands Go
 * templates ($1, ${1}, $name, ${name}, $$) for relabeling.
 * A compiled struct regex is immutable and may be used from any thread.
 */
#ifndef STRATA_LABELS_REGEX_H
#define STRATA_LABELS_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "util/strbuf.h"

struct regex;

#define REGEX_MAX_GROUPS 64

/* Capture offsets of one match: group i spans [start[i], end[i]); -1 when the
 * group did not participate. Group 0 is the whole match. */
struct regex_match {
	int ngroups;
	long start[REGEX_MAX_GROUPS];
	long end[REGEX_MAX_GROUPS];
};

/* regex_new compiles pattern[0..len) fully anchored. Returns NULL with
 * Go-like "error parsing regexp: ..." text in err on a bad pattern. Caller
 * frees with regex_free(). */
struct regex *regex_new(const char *pattern, size_t len, char *err, size_t errlen);
void regex_free(struct regex *re);
/* regex_pattern returns the pattern as given (not the anchored form). */
const char *regex_pattern(const struct regex *re);
/* regex_match tells whether the whole of s[0..len) matches. */
bool regex_match(const struct regex *re, const char *s, size_t len);
/* regex_match_groups matches s and fills m. Returns true on a match. */
bool regex_match_groups(const struct regex *re, const char *s, size_t len,
    struct regex_match *m);
/* regex_expand appends template expanded with the groups of m over s, with
 * Go's Regexp.Expand rules (unknown or out-of-range groups expand to ""). */
void regex_expand(const struct regex *re, const char *tmpl, const char *s,
    const struct regex_match *m, struct strbuf *out);
/* regex_literal returns the literal string the pattern matches when it
 * matches exactly one string (no metacharacters), else NULL. */
const char *regex_literal(const struct regex *re);
/* regex_groups returns the number of capturing groups (group 0 excluded). */
int regex_groups(const struct regex *re);
/* regex_group_name returns the name of group i ((?P<name>...)) or "" for an
 * unnamed or out-of-range group. Owned by re. */
const char *regex_group_name(const struct regex *re, int i);
/* regex_limit_hits returns how many matches, process-wide, stopped at the
 * match/depth/JIT-stack limit and were counted as no match (a metric). */
unsigned long regex_limit_hits(void);
/* regex_thread_cleanup frees the calling thread's match state now (it is
 * otherwise freed at thread exit); the next match recreates it. */
void regex_thread_cleanup(void);

#endif
