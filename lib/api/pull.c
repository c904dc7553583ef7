/* lib/api/pull.c - every sample since a cursor, for a strata central.
 *
 * The stream walks the selectors one after the other; for each it holds
 * one series set from the store and writes a bounded number of samples per
 * callback. A series matched by an earlier selector is skipped (a table of
 * the label sets already written, by hash, compared with labels_equal).
 */
#include "config.h"

#include "api/pull.h"

#include <stdio.h>
#include <string.h>

#include "expfmt/pull.h"
#include "labels/selector.h"
#include "util/mem.h"

/* Samples written per stream callback. */
#define PULL_BATCH 16384

struct pull_stream {
	const struct promql_storage *st;	/* borrowed */
	struct selector *sel;		/* owned, nsel parsed selectors */
	size_t nsel, cur;		/* selector being walked */
	void *set;			/* its series set, or NULL */
	const struct promql_series_set_ops *ops;
	bool header_done, end_done;
	int64_t since, until;
	struct labels *ext;		/* owned reference */
	struct labels **seen;		/* owned references; open addressing */
	size_t seen_cap, seen_n;
	struct expfmt_label *lbuf;	/* scratch for one series line */
	size_t lcap;
};

static void
pull_stream_free(void *arg)
{
	struct pull_stream *ps = arg;
	size_t i;

	if (ps->set != NULL)
		ps->ops->free(ps->set);
	for (i = 0; i < ps->nsel; i++)
		selector_free(&ps->sel[i]);
	mem_free(ps->sel);
	for (i = 0; i < ps->seen_cap; i++)
		labels_free(ps->seen[i]);
	mem_free(ps->seen);
	labels_free(ps->ext);
	mem_free(ps->lbuf);
	mem_free(ps);
}

/* seen_add records ls; returns false when it was already there. */
static bool
seen_add(struct pull_stream *ps, const struct labels *ls)
{
	size_t i;

	if (ps->seen_n * 2 >= ps->seen_cap) {
		struct labels **old = ps->seen;
		size_t oldcap = ps->seen_cap;

		ps->seen_cap = oldcap ? oldcap * 2 : 256;
		ps->seen = mem_calloc(ps->seen_cap, sizeof(*ps->seen));
		for (i = 0; i < oldcap; i++) {
			size_t j;

			if (old[i] == NULL)
				continue;
			for (j = old[i]->hash & (ps->seen_cap - 1); ps->seen[j] != NULL;
			    j = (j + 1) & (ps->seen_cap - 1))
				;
			ps->seen[j] = old[i];
		}
		mem_free(old);
	}
	for (i = ls->hash & (ps->seen_cap - 1); ps->seen[i] != NULL; i = (i + 1) & (ps->seen_cap - 1))
		if (ps->seen[i]->hash == ls->hash && labels_equal(ps->seen[i], ls))
			return false;
	ps->seen[i] = labels_ref((struct labels *)ls);
	ps->seen_n++;
	return true;
}

/* write_series writes the S line of ls with the external labels it lacks. */
static void
write_series(struct pull_stream *ps, struct strbuf *sb, const struct labels *ls)
{
	const struct labels *ext = ps->ext;
	size_t i, k = 0, need = ls->n + ext->n;

	if (need > ps->lcap) {
		ps->lcap = need * 2;
		ps->lbuf = mem_realloc(ps->lbuf, ps->lcap * sizeof(*ps->lbuf));
	}
	for (i = 0; i < ls->n; i++) {
		if (strcmp(ls->v[i].name, LABEL_METRIC_NAME) == 0 || ls->v[i].value[0] == '\0')
			continue;
		ps->lbuf[k].name.p = ls->v[i].name;
		ps->lbuf[k].name.len = strlen(ls->v[i].name);
		ps->lbuf[k].value.p = ls->v[i].value;
		ps->lbuf[k].value.len = strlen(ls->v[i].value);
		k++;
	}
	for (i = 0; i < ext->n; i++) {
		const char *v = labels_get(ls, ext->v[i].name);

		if (v != NULL && v[0] != '\0')
			continue;
		ps->lbuf[k].name.p = ext->v[i].name;
		ps->lbuf[k].name.len = strlen(ext->v[i].name);
		ps->lbuf[k].value.p = ext->v[i].value;
		ps->lbuf[k].value.len = strlen(ext->v[i].value);
		k++;
	}
	pull_write_series(sb, labels_name(ls), ps->lbuf, k);
}

static int
pull_next_piece(struct http_stream *s, void *arg)
{
	struct pull_stream *ps = arg;
	struct strbuf *sb = http_stream_buf(s);
	size_t written = 0;
	char err[256];
	int64_t t;
	double v;

	if (!ps->header_done) {
		pull_write_header(sb, ps->since, ps->until);
		ps->header_done = true;
	}
	while (written < PULL_BATCH) {
		const struct labels *ls;
		bool opened = false;

		if (ps->set == NULL) {
			if (ps->cur >= ps->nsel)
				break;
			if (ps->sel[ps->cur].n == 0) {	/* "{}" selects nothing */
				ps->cur++;
				continue;
			}
			ps->set = ps->st->select(ps->st->ctx, ps->sel[ps->cur].ms, ps->sel[ps->cur].n,
			    ps->since + 1, ps->until, &ps->ops, err, sizeof(err));
			ps->cur++;
			if (ps->set == NULL)
				return -1;	/* cut the body: the client sees no # EOF */
		}
		if (!ps->ops->next(ps->set)) {
			ps->ops->free(ps->set);
			ps->set = NULL;
			continue;
		}
		ls = ps->ops->labels(ps->set);
		if (labels_name(ls)[0] == '\0' || (ps->nsel > 1 && !seen_add(ps, ls)))
			continue;
		while (ps->ops->sample_next(ps->set, &t, &v)) {
			if (t <= ps->since)
				continue;
			if (t > ps->until)
				break;
			if (!opened) {
				write_series(ps, sb, ls);
				opened = true;
			}
			pull_write_sample(sb, t, v);
			written++;
		}
	}
	if (ps->set == NULL && ps->cur >= ps->nsel) {
		pull_write_end(sb);
		return 0;
	}
	return 1;
}

int
api_pull_respond(struct http_request *req, const struct promql_storage *st,
    const char *const *sel, size_t n, int64_t since, int64_t until, int64_t max_window,
    struct labels *ext)
{
	struct pull_stream *ps = mem_calloc(1, sizeof(*ps));
	char err[512];
	size_t i;

	ps->st = st;
	ps->since = since;
	if (max_window <= 0 || max_window > API_PULL_MAX_WINDOW_MS)
		max_window = API_PULL_MAX_WINDOW_MS;
	if (until > since + max_window)
		until = since + max_window;
	ps->until = until < since ? since : until;
	ps->ext = labels_ref(ext);
	ps->sel = mem_calloc(n + 1, sizeof(*ps->sel));
	for (i = 0; i < n; i++) {
		if (selector_parse(sel[i], strlen(sel[i]), &ps->sel[i], err, sizeof(err)) < 0) {
			pull_stream_free(ps);
			return http_respond_text(req, 400, "%s\n", err);
		}
		ps->nsel++;
	}
	return http_respond_stream(req, 200, PULL_CONTENT_TYPE, pull_next_piece, ps,
	    pull_stream_free);
}
