/* lib/promql/storage.c - the engine's storage interface over the in-memory head.
 *
 * A thin adapter: select is tsdb_head_select, a series' samples come from
 * the set's iterator, label names and values from the head's postings
 * (the head keeps no per-time index, so [mint, maxt] does not narrow them,
 * as in Prometheus' head). No state of its own beyond the series set.
 */
#include "config.h"

#include "promql/storage.h"

#include <stdio.h>

#include "tsdb/db.h"
#include "tsdb/head.h"
#include "util/mem.h"

struct head_set {
	struct tsdb_series_set *ss;
	struct tsdb_iter *it;	/* of the current series */
};

static bool
head_next(void *set)
{
	struct head_set *hs = set;

	if (!tsdb_series_set_next(hs->ss))
		return false;
	hs->it = tsdb_series_set_iter(hs->ss);
	return true;
}

static const struct labels *
head_labels(void *set)
{
	return tsdb_series_set_labels(((struct head_set *)set)->ss);
}

static bool
head_sample_next(void *set, int64_t *t, double *v)
{
	struct head_set *hs = set;

	return hs->it != NULL && tsdb_iter_next(hs->it, t, v);
}

static void
head_free(void *set)
{
	struct head_set *hs = set;

	tsdb_series_set_free(hs->ss);
	mem_free(hs);
}

static const struct promql_series_set_ops head_ops = {
	head_next, head_labels, head_sample_next, head_free,
};

static void *
head_select(void *ctx, struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    const struct promql_series_set_ops **ops, char *err, size_t errlen)
{
	struct head_set *hs;

	if (n == 0) {
		snprintf(err, errlen, "no matchers");
		return NULL;
	}
	hs = mem_calloc(1, sizeof(*hs));
	hs->ss = tsdb_head_select(ctx, ms, n, mint, maxt);
	*ops = &head_ops;
	return hs;
}

static void
to_strings(struct tsdb_strings *ts, struct promql_strings *out)
{
	out->v = ts->v;
	out->n = ts->n;
}

static int
head_label_names(void *ctx, struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    struct promql_strings *out, char *err, size_t errlen)
{
	struct tsdb_strings ts = { NULL, 0 };

	(void)mint;
	(void)maxt;
	(void)err;
	(void)errlen;
	tsdb_head_label_names(ctx, ms, n, &ts);
	to_strings(&ts, out);
	return 0;
}

static int
head_label_values(void *ctx, const char *name, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct promql_strings *out, char *err, size_t errlen)
{
	struct tsdb_strings ts = { NULL, 0 };

	(void)mint;
	(void)maxt;
	(void)err;
	(void)errlen;
	tsdb_head_label_values(ctx, name, ms, n, &ts);
	to_strings(&ts, out);
	return 0;
}

static void
head_strings_free(void *ctx, struct promql_strings *s)
{
	struct tsdb_strings ts = { s->v, s->n };

	(void)ctx;
	tsdb_strings_free(&ts);
	s->v = NULL;
	s->n = 0;
}

void
promql_storage_head(struct promql_storage *st, struct tsdb_head *h)
{
	st->ctx = h;
	st->select = head_select;
	st->label_names = head_label_names;
	st->label_values = head_label_values;
	st->strings_free = head_strings_free;
}

/* --- the store: head and blocks (lib/tsdb/db.h) ------------------------- */

static void *
db_select(void *ctx, struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    const struct promql_series_set_ops **ops, char *err, size_t errlen)
{
	struct head_set *hs;

	if (n == 0) {
		snprintf(err, errlen, "no matchers");
		return NULL;
	}
	hs = mem_calloc(1, sizeof(*hs));
	hs->ss = tsdb_db_select(ctx, ms, n, mint, maxt);
	*ops = &head_ops;
	return hs;
}

static int
db_label_names(void *ctx, struct matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
    struct promql_strings *out, char *err, size_t errlen)
{
	struct tsdb_strings ts = { NULL, 0 };

	(void)err;
	(void)errlen;
	tsdb_db_label_names(ctx, ms, n, mint, maxt, &ts);
	to_strings(&ts, out);
	return 0;
}

static int
db_label_values(void *ctx, const char *name, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, struct promql_strings *out, char *err, size_t errlen)
{
	struct tsdb_strings ts = { NULL, 0 };

	(void)err;
	(void)errlen;
	tsdb_db_label_values(ctx, name, ms, n, mint, maxt, &ts);
	to_strings(&ts, out);
	return 0;
}

void
promql_storage_db(struct promql_storage *st, struct tsdb_db *db)
{
	st->ctx = db;
	st->select = db_select;
	st->label_names = db_label_names;
	st->label_values = db_label_values;
	st->strings_free = head_strings_free;
}
