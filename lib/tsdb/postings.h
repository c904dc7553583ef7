/* lib/tsdb/postings.h - the head's inverted index: label pair -> series ids.
 *
 * For every label name=value of every series the index keeps the sorted list
 * of series ids carrying it, plus the list of all ids. Ids are assigned in
 * increasing order by the head, so adding is an append. Lookups evaluate a
 * whole matcher set (Prometheus' PostingsForMatchers: intersect what must
 * match, subtract what must not) under one read lock and hand back a private
 * sorted array. Strings are the interned strings of the series' label sets;
 * the index holds one intern reference per distinct name and value.
 *
 * Thread-safety: one rwlock inside; every function may be called from any
 * thread. The index never touches series: it knows ids and label sets only.
 */
#ifndef STRATA_TSDB_POSTINGS_H
#define STRATA_TSDB_POSTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/matcher.h"

struct postings;

/* A sorted array of series ids; free with postings_ids_free(). */
struct postings_ids {
	uint32_t *v;
	size_t n;
};

/* A sorted array of interned strings, one intern reference each; free with
 * postings_strings_free(). */
struct postings_strings {
	const char **v;
	size_t n;
};

/* postings_new returns an empty index; free with postings_free(). */
struct postings *postings_new(void);
void postings_free(struct postings *p);
/* postings_add indexes id (greater than any id added before) under every
 * pair of ls (borrowed: interned strings are ref'd, ls is not kept). */
void postings_add(struct postings *p, uint32_t id, const struct labels *ls);
/* postings_add_unsorted is postings_add for ids in any order (a replay):
 * lists are appended to and sorted by postings_sort(), which must run
 * before the index is read. */
void postings_add_unsorted(struct postings *p, uint32_t id, const struct labels *ls);
/* postings_sort sorts the lists postings_add_unsorted appended to. */
void postings_sort(struct postings *p);
/* postings_del removes n ids with their label sets (ids sorted ascending).
 * Lists left empty are dropped. */
void postings_del(struct postings *p, const uint32_t *ids,
    const struct labels *const *ls, size_t n);
/* postings_select fills out with the ids of series matching all n matchers
 * (n >= 1; a set that matches only by empty-accepting matchers starts from
 * all ids). Caller frees out with postings_ids_free(). */
void postings_select(struct postings *p, struct matcher *const *ms, size_t n,
    struct postings_ids *out);
/* A source of id lists for postings_ids_for_matchers: values fills out with
 * the sorted ids of the series whose value of m->name matches m (want true)
 * or is set and does not match it (want false); all fills out with every id.
 * The caller of either frees out with postings_ids_free(). */
typedef void (*postings_values_fn)(void *src, const struct matcher *m, bool want,
    struct postings_ids *out);
typedef void (*postings_all_fn)(void *src, struct postings_ids *out);
/* postings_ids_for_matchers is the matcher-set evaluation shared by the head
 * index and the blocks (Prometheus' PostingsForMatchers): intersect the sets
 * of the matchers that reject "", starting from all ids if there are none,
 * then subtract what each matcher accepting "" rejects. The caller holds
 * whatever lock src needs. Caller frees out with postings_ids_free(). */
void postings_ids_for_matchers(struct matcher *const *ms, size_t n,
    postings_values_fn values, postings_all_fn all, void *src,
    struct postings_ids *out);
/* postings_label_names fills out with every label name in use, sorted. */
void postings_label_names(struct postings *p, struct postings_strings *out);
/* postings_label_values fills out with the values in use for name, sorted. */
void postings_label_values(struct postings *p, const char *name,
    struct postings_strings *out);
/* postings_bytes returns an estimate of the index's heap footprint. */
size_t postings_bytes(struct postings *p);

/* A name and a count, for cardinality statistics. */
struct postings_stat {
	char *name;		/* owned */
	uint64_t count;
};

/* The index's cardinality figures (Prometheus' PostingsStats): the top
 * `limit` of each list, by count descending (ties by name). */
struct postings_stats {
	uint64_t num_label_pairs;
	struct postings_stat *metrics;	/* series per value of the metric label */
	size_t nmetrics;
	struct postings_stat *labels;	/* values per label name */
	size_t nlabels;
	struct postings_stat *memory;	/* sum of value lengths x series, per name */
	size_t nmemory;
	struct postings_stat *pairs;	/* series per "name=value" */
	size_t npairs;
};

/* postings_stats fills out; metric is the label counted per value (usually
 * "__name__"). Free with postings_stats_free(). */
void postings_stats(struct postings *p, const char *metric, size_t limit,
    struct postings_stats *out);
void postings_stats_free(struct postings_stats *st);

void postings_ids_free(struct postings_ids *ids);
void postings_strings_free(struct postings_strings *s);

#endif
