/* lib/tsdb/postings.c - the head's inverted index (label pair -> sorted ids).
 *
 * Layout: a table of label names; per name an array of values (struct plist:
 * the interned value and its sorted id list) and an open-addressing table of
 * indices into that array, keyed by the value's XXH3 hash. Id lists of one
 * or two ids live inline in the plist (labels unique per series, such as
 * instance, cost no extra allocation). A list of all ids answers matcher
 * sets that only exclude. Deletion is batched (GC): touched lists are
 * filtered in one pass each and emptied values are compacted away.
 *
 * Locking: one rwlock; writers are series creation and GC, readers are
 * selects and label listings. Every exported function takes it itself.
 */
#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "tsdb/postings.h"
#include "util/mem.h"

#define INLINE_IDS 2

struct plist {
	uint64_t hash;
	const char *value;	/* interned, one reference */
	uint32_t n, cap;	/* cap <= INLINE_IDS: ids in u.one */
	union {
		uint32_t *ids;
		uint32_t one[INLINE_IDS];
	} u;
	uint8_t touched;	/* scratch for postings_del */
};

struct pname {
	uint64_t hash;
	const char *name;	/* interned, one reference */
	struct plist **vals;
	uint32_t nvals, capvals;
	uint32_t *tab;		/* index + 1 into vals; 0 = empty */
	uint32_t tabcap;	/* power of two */
	uint8_t touched;
};

struct postings {
	pthread_rwlock_t mu;
	struct pname **names;
	uint32_t nnames, capnames;
	uint32_t *tab;		/* index + 1 into names */
	uint32_t tabcap;
	uint32_t *all;
	size_t nall, capall;
};

static uint64_t
str_hash(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

static uint32_t *
plist_ids(struct plist *pl)
{
	return pl->cap <= INLINE_IDS ? pl->u.one : pl->u.ids;
}

static void
plist_push(struct plist *pl, uint32_t id)
{
	if (pl->n == pl->cap) {
		uint32_t cap = pl->cap < 8 ? 8 : pl->cap + pl->cap / 2;
		uint32_t *ids = mem_alloc(cap * sizeof *ids);

		memcpy(ids, plist_ids(pl), pl->n * sizeof *ids);
		if (pl->cap > INLINE_IDS)
			mem_free(pl->u.ids);
		pl->u.ids = ids;
		pl->cap = cap;
	}
	plist_ids(pl)[pl->n++] = id;
}

static void
plist_free(struct plist *pl)
{
	if (pl->cap > INLINE_IDS)
		mem_free(pl->u.ids);
	intern_put(pl->value);
	mem_free(pl);
}

/* name_slot and value_slot return the table slot holding the entry for the
 * string, or the empty slot where it would go (linear probing). */
static uint32_t
name_slot(const struct postings *p, const char *name, uint64_t hash)
{
	uint32_t mask = p->tabcap - 1, i = (uint32_t)hash & mask;

	while (p->tab[i]) {
		struct pname *pn = p->names[p->tab[i] - 1];

		if (pn->hash == hash && strcmp(pn->name, name) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static uint32_t
value_slot(const struct pname *pn, const char *value, uint64_t hash)
{
	uint32_t mask = pn->tabcap - 1, i = (uint32_t)hash & mask;

	while (pn->tab[i]) {
		struct plist *pl = pn->vals[pn->tab[i] - 1];

		if (pl->hash == hash && strcmp(pl->value, value) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static void
names_rehash(struct postings *p, uint32_t cap)
{
	uint32_t i;

	mem_free(p->tab);
	p->tab = mem_calloc(cap, sizeof *p->tab);
	p->tabcap = cap;
	for (i = 0; i < p->nnames; i++)
		p->tab[name_slot(p, p->names[i]->name, p->names[i]->hash)] = i + 1;
}

static void
values_rehash(struct pname *pn, uint32_t cap)
{
	uint32_t i;

	mem_free(pn->tab);
	pn->tab = mem_calloc(cap, sizeof *pn->tab);
	pn->tabcap = cap;
	for (i = 0; i < pn->nvals; i++)
		pn->tab[value_slot(pn, pn->vals[i]->value, pn->vals[i]->hash)] = i + 1;
}

static struct pname *
find_name(const struct postings *p, const char *name)
{
	uint32_t slot;

	if (p->tabcap == 0)
		return NULL;
	slot = name_slot(p, name, str_hash(name));
	return p->tab[slot] ? p->names[p->tab[slot] - 1] : NULL;
}

static struct plist *
find_value(const struct pname *pn, const char *value)
{
	uint32_t slot;

	if (pn == NULL || pn->tabcap == 0)
		return NULL;
	slot = value_slot(pn, value, str_hash(value));
	return pn->tab[slot] ? pn->vals[pn->tab[slot] - 1] : NULL;
}

static struct pname *
get_name(struct postings *p, const char *name)
{
	uint64_t hash = str_hash(name);
	uint32_t slot;
	struct pname *pn;

	if ((p->nnames + 1) * 2 > p->tabcap)
		names_rehash(p, p->tabcap ? p->tabcap * 2 : 16);
	slot = name_slot(p, name, hash);
	if (p->tab[slot])
		return p->names[p->tab[slot] - 1];
	pn = mem_calloc(1, sizeof *pn);
	pn->hash = hash;
	pn->name = intern_ref(name);
	if (p->nnames == p->capnames) {
		p->capnames = p->capnames ? p->capnames * 2 : 16;
		p->names = mem_realloc(p->names, p->capnames * sizeof *p->names);
	}
	p->names[p->nnames++] = pn;
	p->tab[slot] = p->nnames;
	return pn;
}

static struct plist *
get_value(struct pname *pn, const char *value)
{
	uint64_t hash = str_hash(value);
	uint32_t slot;
	struct plist *pl;

	if ((pn->nvals + 1) * 4 > pn->tabcap * 3)
		values_rehash(pn, pn->tabcap ? pn->tabcap * 2 : 4);
	slot = value_slot(pn, value, hash);
	if (pn->tab[slot])
		return pn->vals[pn->tab[slot] - 1];
	pl = mem_calloc(1, sizeof *pl);
	pl->hash = hash;
	pl->value = intern_ref(value);
	pl->cap = INLINE_IDS;
	if (pn->nvals == pn->capvals) {
		pn->capvals = pn->capvals ? pn->capvals + pn->capvals / 2 + 1 : 2;
		pn->vals = mem_realloc(pn->vals, pn->capvals * sizeof *pn->vals);
	}
	pn->vals[pn->nvals++] = pl;
	pn->tab[slot] = pn->nvals;
	return pl;
}

struct postings *
postings_new(void)
{
	struct postings *p = mem_calloc(1, sizeof *p);

	pthread_rwlock_init(&p->mu, NULL);
	return p;
}

void
postings_free(struct postings *p)
{
	uint32_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nnames; i++) {
		struct pname *pn = p->names[i];

		for (j = 0; j < pn->nvals; j++)
			plist_free(pn->vals[j]);
		mem_free(pn->vals);
		mem_free(pn->tab);
		intern_put(pn->name);
		mem_free(pn);
	}
	mem_free(p->names);
	mem_free(p->tab);
	mem_free(p->all);
	pthread_rwlock_destroy(&p->mu);
	mem_free(p);
}

/* plist_insert appends id, or moves it into place in the rare case an id
 * arrives out of order. */
static void
plist_insert(struct plist *pl, uint32_t id)
{
	uint32_t *ids, i;

	plist_push(pl, id);
	ids = plist_ids(pl);
	for (i = pl->n - 1; i > 0 && ids[i - 1] > id; i--)
		ids[i] = ids[i - 1];
	ids[i] = id;
}

void
postings_add(struct postings *p, uint32_t id, const struct labels *ls)
{
	uint32_t i;
	size_t k;

	pthread_rwlock_wrlock(&p->mu);
	for (i = 0; i < ls->n; i++)
		plist_insert(get_value(get_name(p, ls->v[i].name), ls->v[i].value), id);
	if (p->nall == p->capall) {
		p->capall = p->capall ? p->capall * 2 : 1024;
		p->all = mem_realloc(p->all, p->capall * sizeof *p->all);
	}
	for (k = p->nall; k > 0 && p->all[k - 1] > id; k--)
		p->all[k] = p->all[k - 1];
	p->all[k] = id;
	p->nall++;
	pthread_rwlock_unlock(&p->mu);
}

void
postings_add_unsorted(struct postings *p, uint32_t id, const struct labels *ls)
{
	uint32_t i;

	pthread_rwlock_wrlock(&p->mu);
	for (i = 0; i < ls->n; i++)
		plist_push(get_value(get_name(p, ls->v[i].name), ls->v[i].value), id);
	if (p->nall == p->capall) {
		p->capall = p->capall ? p->capall * 2 : 1024;
		p->all = mem_realloc(p->all, p->capall * sizeof *p->all);
	}
	p->all[p->nall++] = id;
	pthread_rwlock_unlock(&p->mu);
}

static int
cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
sort_ids(uint32_t *v, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (v[i - 1] > v[i])
			break;
	if (i < n)
		qsort(v, n, sizeof *v, cmp_id);
}

void
postings_sort(struct postings *p)
{
	uint32_t i, j;

	pthread_rwlock_wrlock(&p->mu);
	for (i = 0; i < p->nnames; i++)
		for (j = 0; j < p->names[i]->nvals; j++)
			sort_ids(plist_ids(p->names[i]->vals[j]), p->names[i]->vals[j]->n);
	sort_ids(p->all, p->nall);
	pthread_rwlock_unlock(&p->mu);
}

static bool
id_in(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && ids[lo] == id;
}

static size_t
filter_out(uint32_t *v, size_t n, const uint32_t *del, size_t ndel)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (!id_in(del, ndel, v[i]))
			v[k++] = v[i];
	return k;
}

void
postings_del(struct postings *p, const uint32_t *ids,
    const struct labels *const *ls, size_t n)
{
	struct plist **touched = NULL;
	struct pname **tnames = NULL;
	size_t nt = 0, ct = 0, nn = 0, cn = 0, i;
	uint32_t j, k;

	if (n == 0)
		return;
	pthread_rwlock_wrlock(&p->mu);
	for (i = 0; i < n; i++) {
		for (j = 0; j < ls[i]->n; j++) {
			struct pname *pn = find_name(p, ls[i]->v[j].name);
			struct plist *pl = find_value(pn, ls[i]->v[j].value);

			if (pl == NULL || pl->touched)
				continue;
			pl->touched = 1;
			if (nt == ct) {
				ct = ct ? ct * 2 : 64;
				touched = mem_realloc(touched, ct * sizeof *touched);
			}
			touched[nt++] = pl;
			if (!pn->touched) {
				pn->touched = 1;
				if (nn == cn) {
					cn = cn ? cn * 2 : 16;
					tnames = mem_realloc(tnames, cn * sizeof *tnames);
				}
				tnames[nn++] = pn;
			}
		}
	}
	for (i = 0; i < nt; i++) {
		touched[i]->n = (uint32_t)filter_out(plist_ids(touched[i]), touched[i]->n, ids, n);
		touched[i]->touched = 0;
	}
	/* drop emptied values; rebuild the value tables of touched names */
	for (i = 0; i < nn; i++) {
		struct pname *pn = tnames[i];

		for (j = k = 0; j < pn->nvals; j++) {
			if (pn->vals[j]->n == 0)
				plist_free(pn->vals[j]);
			else
				pn->vals[k++] = pn->vals[j];
		}
		pn->nvals = k;
		pn->touched = 0;
		values_rehash(pn, pn->tabcap);
	}
	p->nall = filter_out(p->all, p->nall, ids, n);
	pthread_rwlock_unlock(&p->mu);
	mem_free(touched);
	mem_free(tnames);
}

/* --- matcher evaluation (read lock held) ---------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void
ids_push(struct postings_ids *o, size_t *cap, const uint32_t *v, size_t n)
{
	if (o->n + n > *cap) {
		*cap = (o->n + n) * 2;
		o->v = mem_realloc(o->v, *cap * sizeof *o->v);
	}
	memcpy(o->v + o->n, v, n * sizeof *v);
	o->n += n;
}

/* values_ids collects the ids of name's values that match m (want true) or
 * that do not (want false), sorted. The lists of one name are disjoint (a
 * series has one value per name), so concatenating and sorting is a merge. */
static void
values_ids(void *src, const struct matcher *m, bool want, struct postings_ids *out)
{
	struct postings *p = src;
	struct pname *pn = find_name(p, m->name);
	const char *lit = NULL;
	size_t cap = 0;
	uint32_t i, lists = 0;

	out->v = NULL;
	out->n = 0;
	if (pn == NULL)
		return;
	if (want)
		lit = matcher_literal(m);
	if (lit != NULL) {
		struct plist *pl = find_value(pn, lit);

		if (pl != NULL)
			ids_push(out, &cap, plist_ids(pl), pl->n);
		return;
	}
	for (i = 0; i < pn->nvals; i++) {
		struct plist *pl = pn->vals[i];

		if (matcher_matches(m, pl->value) == want) {
			ids_push(out, &cap, plist_ids(pl), pl->n);
			lists++;
		}
	}
	if (lists > 1)
		qsort(out->v, out->n, sizeof *out->v, cmp_u32);
}

/* intersect keeps in a the ids also in b. */
static void
intersect(struct postings_ids *a, const struct postings_ids *b)
{
	size_t i = 0, j = 0, k = 0;

	while (i < a->n && j < b->n) {
		if (a->v[i] < b->v[j])
			i++;
		else if (a->v[i] > b->v[j])
			j++;
		else {
			a->v[k++] = a->v[i];
			i++;
			j++;
		}
	}
	a->n = k;
}

/* subtract removes from a the ids in b. */
static void
subtract(struct postings_ids *a, const struct postings_ids *b)
{
	size_t i = 0, j = 0, k = 0;

	while (i < a->n) {
		while (j < b->n && b->v[j] < a->v[i])
			j++;
		if (j < b->n && b->v[j] == a->v[i]) {
			i++;
			continue;
		}
		a->v[k++] = a->v[i++];
	}
	a->n = k;
}

void
postings_ids_for_matchers(struct matcher *const *ms, size_t n,
    postings_values_fn values, postings_all_fn all, void *src,
    struct postings_ids *out)
{
	struct postings_ids cur = { NULL, 0 }, tmp;
	bool have = false;
	size_t i;

	/* Positive sets first (a matcher that rejects ""): they bound the
	 * result, and one empty set ends the evaluation. */
	for (i = 0; i < n; i++) {
		if (matcher_matches_empty(ms[i]))
			continue;
		values(src, ms[i], true, &tmp);
		if (!have) {
			cur = tmp;
			have = true;
		} else {
			intersect(&cur, &tmp);
			postings_ids_free(&tmp);
		}
		if (cur.n == 0)
			goto done;
	}
	if (!have)
		all(src, &cur);
	/* A matcher accepting "" keeps series without the label; what it
	 * removes is the series whose value it rejects. */
	for (i = 0; i < n && cur.n > 0; i++) {
		if (!matcher_matches_empty(ms[i]))
			continue;
		values(src, ms[i], false, &tmp);
		subtract(&cur, &tmp);
		postings_ids_free(&tmp);
	}
done:
	*out = cur;
}

/* all_ids fills out with a copy of the list of all ids (read lock held). */
static void
all_ids(void *src, struct postings_ids *out)
{
	struct postings *p = src;
	size_t cap = 0;

	out->v = NULL;
	out->n = 0;
	ids_push(out, &cap, p->all, p->nall);
}

void
postings_select(struct postings *p, struct matcher *const *ms, size_t n,
    struct postings_ids *out)
{
	pthread_rwlock_rdlock(&p->mu);
	postings_ids_for_matchers(ms, n, values_ids, all_ids, p, out);
	pthread_rwlock_unlock(&p->mu);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void
postings_label_names(struct postings *p, struct postings_strings *out)
{
	uint32_t i;

	pthread_rwlock_rdlock(&p->mu);
	out->v = mem_alloc((p->nnames + 1) * sizeof *out->v);
	out->n = 0;
	for (i = 0; i < p->nnames; i++)
		if (p->names[i]->nvals > 0)
			out->v[out->n++] = intern_ref(p->names[i]->name);
	pthread_rwlock_unlock(&p->mu);
	qsort(out->v, out->n, sizeof *out->v, cmp_str);
}

void
postings_label_values(struct postings *p, const char *name, struct postings_strings *out)
{
	struct pname *pn;
	uint32_t i;

	pthread_rwlock_rdlock(&p->mu);
	pn = find_name(p, name);
	out->n = 0;
	out->v = mem_alloc(((pn ? pn->nvals : 0) + 1) * sizeof *out->v);
	for (i = 0; pn != NULL && i < pn->nvals; i++)
		out->v[out->n++] = intern_ref(pn->vals[i]->value);
	pthread_rwlock_unlock(&p->mu);
	qsort(out->v, out->n, sizeof *out->v, cmp_str);
}

size_t
postings_bytes(struct postings *p)
{
	size_t b;
	uint32_t i, j;

	pthread_rwlock_rdlock(&p->mu);
	b = sizeof *p + p->capnames * sizeof *p->names + p->tabcap * sizeof *p->tab +
	    p->capall * sizeof *p->all;
	for (i = 0; i < p->nnames; i++) {
		struct pname *pn = p->names[i];

		b += sizeof *pn + pn->capvals * sizeof *pn->vals + pn->tabcap * sizeof *pn->tab;
		for (j = 0; j < pn->nvals; j++)
			b += sizeof *pn->vals[j] + (pn->vals[j]->cap > INLINE_IDS ?
			    pn->vals[j]->cap * sizeof(uint32_t) : 0);
	}
	pthread_rwlock_unlock(&p->mu);
	return b;
}

void
postings_ids_free(struct postings_ids *ids)
{
	MEM_FREE(ids->v);
	ids->n = 0;
}

void
postings_strings_free(struct postings_strings *s)
{
	size_t i;

	if (s->v == NULL)
		return;
	for (i = 0; i < s->n; i++)
		intern_put(s->v[i]);
	MEM_FREE(s->v);
	s->n = 0;
}

/* --- cardinality statistics ----------------------------------------------- */

/* A bounded list of the largest counts: kept sorted descending, at most
 * limit long; a new entry that does not beat the last is dropped. */
struct topk {
	struct postings_stat *v;
	size_t n, limit;
};

static bool
stat_before(const char *an, uint64_t ac, const char *bn, uint64_t bc)
{
	return ac != bc ? ac > bc : strcmp(an, bn) < 0;
}

static void
topk_push(struct topk *t, const char *a, size_t alen, const char *b, size_t blen, uint64_t count)
{
	char stackbuf[256], *name = stackbuf;
	size_t len = alen + (b ? 1 + blen : 0), i;

	if (t->limit == 0)
		return;
	if (len >= sizeof stackbuf)
		name = mem_alloc(len + 1);
	memcpy(name, a, alen);
	if (b != NULL) {
		name[alen] = '=';
		memcpy(name + alen + 1, b, blen);
	}
	name[len] = '\0';
	if (t->n == t->limit && !stat_before(name, count, t->v[t->n - 1].name, t->v[t->n - 1].count))
		goto out;
	if (t->n == t->limit)
		mem_free(t->v[--t->n].name);
	for (i = t->n; i > 0 && stat_before(name, count, t->v[i - 1].name, t->v[i - 1].count); i--)
		t->v[i] = t->v[i - 1];
	t->v[i].name = name == stackbuf ? mem_strdup(name) : name;
	t->v[i].count = count;
	t->n++;
	return;
out:
	if (name != stackbuf)
		mem_free(name);
}

void
postings_stats(struct postings *p, const char *metric, size_t limit, struct postings_stats *out)
{
	struct topk m = { NULL, 0, limit }, l = { NULL, 0, limit }, mem = { NULL, 0, limit },
	    pr = { NULL, 0, limit };
	uint32_t i, j;

	memset(out, 0, sizeof *out);
	m.v = mem_alloc((limit + 1) * sizeof *m.v);
	l.v = mem_alloc((limit + 1) * sizeof *l.v);
	mem.v = mem_alloc((limit + 1) * sizeof *mem.v);
	pr.v = mem_alloc((limit + 1) * sizeof *pr.v);
	pthread_rwlock_rdlock(&p->mu);
	for (i = 0; i < p->nnames; i++) {
		const struct pname *pn = p->names[i];
		size_t nlen = strlen(pn->name);
		uint64_t size = 0;
		bool is_metric = strcmp(pn->name, metric) == 0;

		if (pn->nvals == 0)
			continue;
		topk_push(&l, pn->name, nlen, NULL, 0, pn->nvals);
		out->num_label_pairs += pn->nvals;
		for (j = 0; j < pn->nvals; j++) {
			const struct plist *pl = pn->vals[j];
			size_t vlen = strlen(pl->value);

			if (is_metric)
				topk_push(&m, pl->value, vlen, NULL, 0, pl->n);
			topk_push(&pr, pn->name, nlen, pl->value, vlen, pl->n);
			size += (uint64_t)vlen * pl->n;
		}
		topk_push(&mem, pn->name, nlen, NULL, 0, size);
	}
	pthread_rwlock_unlock(&p->mu);
	out->metrics = m.v;
	out->nmetrics = m.n;
	out->labels = l.v;
	out->nlabels = l.n;
	out->memory = mem.v;
	out->nmemory = mem.n;
	out->pairs = pr.v;
	out->npairs = pr.n;
}

static void
stat_list_free(struct postings_stat *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		mem_free(v[i].name);
	mem_free(v);
}

void
postings_stats_free(struct postings_stats *st)
{
	stat_list_free(st->metrics, st->nmetrics);
	stat_list_free(st->labels, st->nlabels);
	stat_list_free(st->memory, st->nmemory);
	stat_list_free(st->pairs, st->npairs);
	memset(st, 0, sizeof *st);
}
