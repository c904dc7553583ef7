/* central/ranges.h - sets of time ranges: the arithmetic of gap repair.
 *
 * A struct ranges is a sorted list of disjoint half-open millisecond
 * intervals [start, end): what a replica holds completely, what its peer
 * holds, what is missing. Adding an interval merges it with every interval
 * it overlaps or touches, so the list stays canonical (sorted, disjoint,
 * never adjacent) and two sets holding the same instants compare equal
 * element by element. A plain value owned by its user; not thread-safe.
 */
#ifndef STRATA_CENTRAL_RANGES_H
#define STRATA_CENTRAL_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One interval [start, end) in ms; start < end. */
struct range {
	int64_t start, end;
};

struct ranges {
	struct range *v;	/* owned; sorted, disjoint, not adjacent */
	size_t n, cap;
};

#define RANGES_INIT { NULL, 0, 0 }

/* ranges_free releases r's array and empties it (reusable afterwards). */
void ranges_free(struct ranges *r);
/* ranges_reset empties r, keeping its array. */
void ranges_reset(struct ranges *r);
/* ranges_add merges [start, end) into r; an empty or reversed interval is
 * ignored. */
void ranges_add(struct ranges *r, int64_t start, int64_t end);
/* ranges_copy makes dst (emptied first) hold what src holds. */
void ranges_copy(struct ranges *dst, const struct ranges *src);
/* ranges_subtract sets out (emptied first; not a nor b) to a minus b. */
void ranges_subtract(struct ranges *out, const struct ranges *a, const struct ranges *b);
/* ranges_clip keeps only what lies in [lo, hi). */
void ranges_clip(struct ranges *r, int64_t lo, int64_t hi);
/* ranges_total returns the summed length of r in ms. */
int64_t ranges_total(const struct ranges *r);
/* ranges_covers tells whether every instant of [start, end) is in r. */
bool ranges_covers(const struct ranges *r, int64_t start, int64_t end);
/* ranges_equal tells whether a and b hold the same instants. */
bool ranges_equal(const struct ranges *a, const struct ranges *b);

#endif
