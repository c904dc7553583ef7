/* lib/labels/labels.h - label sets: sorted, interned, hashed, immutable.
 *
 * A struct labels is the identity of a series: name/value pairs sorted by
 * name, names unique, the metric name stored as the "__name__" label. Its
 * strings are interned (one copy per distinct string in the process, see
 * intern_*), so a set costs a header and two pointers per label. A set is
 * immutable once built and reference-counted: labels_ref() shares it,
 * labels_free() drops one reference. Thread-safe: sets may be read and
 * ref'd from any thread; the intern table has its own lock.
 *
 * A struct labels_builder is the mutable side (relabeling, scrape target
 * labels, PromQL label functions): set/delete by name, then build a set.
 */
#ifndef STRATA_LABELS_LABELS_H
#define STRATA_LABELS_LABELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

#define LABEL_METRIC_NAME "__name__"

struct label {
	const char *name;
	const char *value;
};

struct labels {
	uint64_t hash;		/* labels_hash() of v[0..n) */
	uint32_t refs;		/* atomic; managed by labels_ref/labels_free */
	uint32_t n;
	struct label v[];	/* sorted by name, interned strings */
};

/* intern_get returns the interned copy of s[0..len) with one more reference;
 * release it with intern_put(). Never NULL. */
const char *intern_get(const char *s, size_t len);
/* intern_ref adds a reference to an already interned string and returns it. */
const char *intern_ref(const char *interned);
/* intern_put drops one reference; the string is freed at zero. NULL is a no-op. */
void intern_put(const char *interned);
/* intern_count returns the number of distinct interned strings (a metric). */
size_t intern_count(void);

/* labels_new builds a set from n pairs (any order, names unique, strings
 * borrowed and interned). Caller frees with labels_free(). */
struct labels *labels_new(const struct label *v, size_t n);
/* labels_empty returns the shared empty set (a reference; free it as usual). */
struct labels *labels_empty(void);
/* labels_ref adds a reference to ls and returns it. */
struct labels *labels_ref(struct labels *ls);
/* labels_free drops a reference; the set is released at zero. NULL is a no-op. */
void labels_free(struct labels *ls);

/* labels_get returns the value of name, or NULL when ls has no such label. */
const char *labels_get(const struct labels *ls, const char *name);
/* labels_name returns the metric name (value of __name__) or "". */
const char *labels_name(const struct labels *ls);
/* labels_compare orders sets as Prometheus does (pairwise by name, then
 * value; a prefix sorts first). Returns <0, 0 or >0. */
int labels_compare(const struct labels *a, const struct labels *b);
bool labels_equal(const struct labels *a, const struct labels *b);
/* labels_hash hashes n pairs sorted by name (xxh3 over name 0xff value 0xff).
 * Equal sets hash equally whether their strings are interned or borrowed. */
uint64_t labels_hash(const struct label *v, size_t n);
/* labels_format appends ls as {name="value", ...} with Go-quoted values, the
 * way Prometheus prints a label set. */
void labels_format(const struct labels *ls, struct strbuf *out);
/* labels_quote appends s[0..len) as a Go double-quoted string literal, exactly
 * as strconv.Quote does (printable runes kept, the rest escaped, invalid
 * UTF-8 bytes as \xXX). */
void labels_quote(const char *s, size_t len, struct strbuf *out);
/* labels_is_valid_name tells whether s[0..len) matches [a-zA-Z_][a-zA-Z0-9_]*. */
bool labels_is_valid_name(const char *s, size_t len);
/* labels_is_valid_metric_name tells whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool labels_is_valid_metric_name(const char *s, size_t len);

/* The builder owns copies of every string set in it. */
struct labels_builder;

/* labels_builder_new returns an empty builder; free with labels_builder_free(). */
struct labels_builder *labels_builder_new(void);
void labels_builder_free(struct labels_builder *lb);
/* labels_builder_reset empties lb and, when base is not NULL, copies its pairs. */
void labels_builder_reset(struct labels_builder *lb, const struct labels *base);
/* labels_builder_set sets name to value (both copied); an empty value deletes
 * the label, as in Prometheus. */
void labels_builder_set(struct labels_builder *lb, const char *name, const char *value);
/* labels_builder_setn is labels_builder_set for strings that are not NUL-terminated. */
void labels_builder_setn(struct labels_builder *lb, const char *name, size_t nlen,
    const char *value, size_t vlen);
void labels_builder_del(struct labels_builder *lb, const char *name);
/* labels_builder_get returns the current value of name or NULL; valid until
 * the next change to lb. */
const char *labels_builder_get(const struct labels_builder *lb, const char *name);
/* labels_builder_count and labels_builder_at walk the current pairs, sorted
 * by name; pointers valid until the next change to lb. */
size_t labels_builder_count(const struct labels_builder *lb);
struct label labels_builder_at(const struct labels_builder *lb, size_t i);
/* labels_builder_labels returns a new set with the current pairs; caller
 * frees with labels_free(). */
struct labels *labels_builder_labels(const struct labels_builder *lb);

#endif
