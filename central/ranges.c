/* central/ranges.c - sets of time ranges (see ranges.h).
 *
 * Sets are small (a few intervals per restart or stall within retention),
 * so every operation is a linear pass over sorted arrays.
 */
#include "config.h"

#include "central/ranges.h"

#include <string.h>

#include "util/mem.h"

void
ranges_free(struct ranges *r)
{
	mem_free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

void
ranges_reset(struct ranges *r)
{
	r->n = 0;
}

static void
ranges_push(struct ranges *r, int64_t start, int64_t end)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = mem_realloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n].start = start;
	r->v[r->n].end = end;
	r->n++;
}

void
ranges_add(struct ranges *r, int64_t start, int64_t end)
{
	size_t i, j;

	if (start >= end)
		return;
	/* i: the first interval that ends at or after start (it may touch). */
	for (i = 0; i < r->n && r->v[i].end < start; i++)
		;
	/* j: one past the last interval that starts at or before end. */
	for (j = i; j < r->n && r->v[j].start <= end; j++)
		;
	if (i == j) {		/* touches nothing: insert at i */
		ranges_push(r, 0, 0);
		memmove(&r->v[i + 1], &r->v[i], (r->n - 1 - i) * sizeof(*r->v));
		r->v[i].start = start;
		r->v[i].end = end;
		return;
	}
	/* merge v[i..j) and the new interval into v[i] */
	if (r->v[i].start < start)
		start = r->v[i].start;
	if (r->v[j - 1].end > end)
		end = r->v[j - 1].end;
	r->v[i].start = start;
	r->v[i].end = end;
	memmove(&r->v[i + 1], &r->v[j], (r->n - j) * sizeof(*r->v));
	r->n -= j - i - 1;
}

void
ranges_copy(struct ranges *dst, const struct ranges *src)
{
	ranges_reset(dst);
	for (size_t i = 0; i < src->n; i++)
		ranges_push(dst, src->v[i].start, src->v[i].end);
}

void
ranges_subtract(struct ranges *out, const struct ranges *a, const struct ranges *b)
{
	size_t j = 0;

	ranges_reset(out);
	for (size_t i = 0; i < a->n; i++) {
		int64_t s = a->v[i].start, e = a->v[i].end;

		/* skip b's intervals wholly before this one */
		while (j < b->n && b->v[j].end <= s)
			j++;
		for (size_t k = j; k < b->n && b->v[k].start < e; k++) {
			if (b->v[k].start > s)
				ranges_push(out, s, b->v[k].start);
			if (b->v[k].end > s)
				s = b->v[k].end;
			if (s >= e)
				break;
		}
		if (s < e)
			ranges_push(out, s, e);
	}
}

void
ranges_clip(struct ranges *r, int64_t lo, int64_t hi)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n; i++) {
		int64_t s = r->v[i].start > lo ? r->v[i].start : lo;
		int64_t e = r->v[i].end < hi ? r->v[i].end : hi;

		if (s < e) {
			r->v[k].start = s;
			r->v[k].end = e;
			k++;
		}
	}
	r->n = k;
}

int64_t
ranges_total(const struct ranges *r)
{
	int64_t t = 0;

	for (size_t i = 0; i < r->n; i++)
		t += r->v[i].end - r->v[i].start;
	return t;
}

bool
ranges_covers(const struct ranges *r, int64_t start, int64_t end)
{
	if (start >= end)
		return true;
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].start <= start && end <= r->v[i].end)
			return true;
	return false;
}

bool
ranges_equal(const struct ranges *a, const struct ranges *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].start != b->v[i].start || a->v[i].end != b->v[i].end)
			return false;
	return true;
}
