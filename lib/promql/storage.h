/* lib/promql/storage.h - what the PromQL engine reads from, and the head adapter.
 *
 * The engine never sees a storage implementation: it selects series
 * through a struct promql_storage (a context and function pointers) and
 * walks what it gets back through struct promql_series_set_ops: one series
 * after the other, in labels order, each with its samples in time order.
 * promql_storage_head() wires the in-memory head (lib/tsdb/head.h) to it;
 * an on-disk store, a merged view, or a remote-read client plugs in the
 * same way. Samples are returned as stored: staleness markers keep their
 * bits (0x7ff0000000000002) and the engine interprets them.
 *
 * Threads: a struct promql_storage may be used by several queries at once
 * when its implementation allows it (the head does); a series set is used
 * by one thread.
 */
#ifndef STRATA_PROMQL_STORAGE_H
#define STRATA_PROMQL_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "labels/matcher.h"

struct tsdb_head;
struct tsdb_db;

/* Operations on a selected set of series. */
struct promql_series_set_ops {
	/* next moves to the next series; false at the end. */
	bool (*next)(void *set);
	/* labels returns the current series' labels, owned by the set and
	 * valid until the set is freed (labels_ref() to keep them). */
	const struct labels *(*labels)(void *set);
	/* sample_next returns the next sample of the current series (at or
	 * after the select's mint, in time order); false at its end. */
	bool (*sample_next)(void *set, int64_t *t, double *v);
	/* free releases the set. */
	void (*free)(void *set);
};

/* A sorted list of label names or values, released with strings_free. */
struct promql_strings {
	const char **v;
	size_t n;
};

struct promql_storage {
	void *ctx;
	/* select returns a set of the series matching all n matchers (n >= 1)
	 * that have samples in [mint, maxt] (ms), in labels order, and sets
	 * *ops; or NULL with a message in err. */
	void *(*select)(void *ctx, struct matcher *const *ms, size_t n, int64_t mint,
	    int64_t maxt, const struct promql_series_set_ops **ops, char *err, size_t errlen);
	/* label_names fills out with the label names of the series matching
	 * the n matchers (all series when n is 0) in [mint, maxt]. Returns 0
	 * or -1 with err. May be NULL. */
	int (*label_names)(void *ctx, struct matcher *const *ms, size_t n, int64_t mint,
	    int64_t maxt, struct promql_strings *out, char *err, size_t errlen);
	/* label_values is label_names for the values of one label. May be NULL. */
	int (*label_values)(void *ctx, const char *name, struct matcher *const *ms, size_t n,
	    int64_t mint, int64_t maxt, struct promql_strings *out, char *err, size_t errlen);
	/* strings_free releases what label_names/label_values returned. */
	void (*strings_free)(void *ctx, struct promql_strings *s);
};

/* promql_storage_head fills st so that it reads the head h (borrowed; it
 * must outlive every query that uses st). */
void promql_storage_head(struct promql_storage *st, struct tsdb_head *h);
/* promql_storage_db fills st so that it reads the store db (head and
 * blocks; borrowed, as for the head). */
void promql_storage_db(struct promql_storage *st, struct tsdb_db *db);

#endif
