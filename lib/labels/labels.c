/* lib/labels/labels.c - label sets, the string intern table, the builder.
 *
 * Owns the process-wide intern table: one refcounted copy of every distinct
 * string used in a label set. The table is split into INTERN_SHARDS shards by
 * hash, each a chained hash set behind its own mutex. intern_get() takes the
 * shard lock; intern_ref() and the fast path of intern_put() are lock-free
 * atomics. Invariant: an entry with refs == 0 is never reachable, because the
 * last reference is only dropped under the shard lock (the decrement to zero
 * and the unlink happen together), and intern_get() only revives entries it
 * finds under that same lock.
 *
 * Label sets are immutable after labels_new() and refcounted with atomics, so
 * any thread may read, ref or free them. The shared empty set is static and
 * immortal. Values are quoted for printing the way Go's strconv.Quote does;
 * the Unicode "printable" test (categories L, M, N, P, S) is answered by a
 * PCRE2 character class, compiled once, so no Unicode table lives here.
 *
 * The builder is single-threaded, owns copies of its strings and keeps its
 * pairs sorted by name.
 */
#include "config.h"

#include "labels/labels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "util/mem.h"
#include "util/utf8.h"

/* ------------------------------------------------------------------------ */
/* intern table                                                              */

#define INTERN_SHARDS 64

struct intern_entry {
	struct intern_entry *next;
	uint64_t hash;
	uint32_t refs;		/* atomic */
	uint32_t len;
	char s[];
};

struct intern_shard {
	pthread_mutex_t lock;
	struct intern_entry **buckets;
	size_t nbuckets;	/* power of two, 0 before first use */
	size_t count;
};

static struct intern_shard intern_shards[INTERN_SHARDS];
static pthread_once_t intern_once = PTHREAD_ONCE_INIT;
static size_t intern_total;	/* atomic */

static void
intern_init(void)
{
	size_t i;

	for (i = 0; i < INTERN_SHARDS; i++)
		pthread_mutex_init(&intern_shards[i].lock, NULL);
}

static struct intern_entry *
intern_entry_of(const char *s)
{
	return (struct intern_entry *)(void *)(s - offsetof(struct intern_entry, s));
}

static struct intern_shard *
intern_shard_of(uint64_t hash)
{
	return &intern_shards[hash >> 58];
}

static void
intern_grow(struct intern_shard *sh)
{
	size_t n = sh->nbuckets ? sh->nbuckets * 2 : 64;
	struct intern_entry **nb = mem_calloc(n, sizeof(*nb));
	size_t i;

	for (i = 0; i < sh->nbuckets; i++) {
		struct intern_entry *e = sh->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = nb[e->hash & (n - 1)];
			nb[e->hash & (n - 1)] = e;
		}
	}
	mem_free(sh->buckets);
	sh->buckets = nb;
	sh->nbuckets = n;
}

const char *
intern_get(const char *s, size_t len)
{
	uint64_t h = XXH3_64bits(s, len);
	struct intern_shard *sh;
	struct intern_entry *e;

	pthread_once(&intern_once, intern_init);
	sh = intern_shard_of(h);
	pthread_mutex_lock(&sh->lock);
	if (sh->nbuckets > 0) {
		for (e = sh->buckets[h & (sh->nbuckets - 1)]; e != NULL; e = e->next) {
			if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0) {
				__atomic_fetch_add(&e->refs, 1, __ATOMIC_RELAXED);
				pthread_mutex_unlock(&sh->lock);
				return e->s;
			}
		}
	}
	if (sh->count >= sh->nbuckets)
		intern_grow(sh);
	e = mem_alloc(sizeof(*e) + len + 1);
	e->hash = h;
	e->refs = 1;
	e->len = (uint32_t)len;
	memcpy(e->s, s, len);
	e->s[len] = '\0';
	e->next = sh->buckets[h & (sh->nbuckets - 1)];
	sh->buckets[h & (sh->nbuckets - 1)] = e;
	sh->count++;
	__atomic_fetch_add(&intern_total, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sh->lock);
	return e->s;
}

const char *
intern_ref(const char *interned)
{
	if (interned != NULL)
		__atomic_fetch_add(&intern_entry_of(interned)->refs, 1, __ATOMIC_RELAXED);
	return interned;
}

void
intern_put(const char *interned)
{
	struct intern_entry *e, **pp;
	struct intern_shard *sh;
	uint32_t r;

	if (interned == NULL)
		return;
	e = intern_entry_of(interned);
	/* Fast path: not the last reference, no lock. */
	r = __atomic_load_n(&e->refs, __ATOMIC_RELAXED);
	while (r > 1) {
		if (__atomic_compare_exchange_n(&e->refs, &r, r - 1, true,
		    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			return;
	}
	/* Possibly the last one: decide under the lock intern_get() takes. */
	sh = intern_shard_of(e->hash);
	pthread_mutex_lock(&sh->lock);
	if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) != 0) {
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	for (pp = &sh->buckets[e->hash & (sh->nbuckets - 1)]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	sh->count--;
	__atomic_fetch_sub(&intern_total, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&sh->lock);
	mem_free(e);
}

size_t
intern_count(void)
{
	return __atomic_load_n(&intern_total, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------------ */
/* label sets                                                                */

static struct labels labels_empty_set = { 0, 1, 0 };
static pthread_once_t labels_empty_once = PTHREAD_ONCE_INIT;

static void
labels_empty_init(void)
{
	labels_empty_set.hash = labels_hash(NULL, 0);
}

struct labels *
labels_empty(void)
{
	pthread_once(&labels_empty_once, labels_empty_init);
	return &labels_empty_set;
}

static int
label_cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* labels_new_sorted builds a set from pairs already sorted by name. */
static struct labels *
labels_new_sorted(const struct label *v, size_t n)
{
	struct labels *ls;
	size_t i;

	if (n == 0)
		return labels_empty();
	ls = mem_alloc(sizeof(*ls) + n * sizeof(ls->v[0]));
	ls->refs = 1;
	ls->n = (uint32_t)n;
	ls->hash = labels_hash(v, n);
	for (i = 0; i < n; i++) {
		ls->v[i].name = intern_get(v[i].name, strlen(v[i].name));
		ls->v[i].value = intern_get(v[i].value, strlen(v[i].value));
	}
	return ls;
}

struct labels *
labels_new(const struct label *v, size_t n)
{
	struct label small[16], *tmp;
	struct labels *ls;
	size_t i;

	for (i = 1; i < n; i++)
		if (strcmp(v[i - 1].name, v[i].name) > 0)
			break;
	if (i >= n)
		return labels_new_sorted(v, n);
	tmp = n <= 16 ? small : mem_alloc(n * sizeof(*tmp));
	memcpy(tmp, v, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), label_cmp_name);
	ls = labels_new_sorted(tmp, n);
	if (tmp != small)
		mem_free(tmp);
	return ls;
}

struct labels *
labels_ref(struct labels *ls)
{
	if (ls != NULL && ls != &labels_empty_set)
		__atomic_fetch_add(&ls->refs, 1, __ATOMIC_RELAXED);
	return ls;
}

void
labels_free(struct labels *ls)
{
	uint32_t i;

	if (ls == NULL || ls == &labels_empty_set)
		return;
	if (__atomic_sub_fetch(&ls->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (i = 0; i < ls->n; i++) {
		intern_put(ls->v[i].name);
		intern_put(ls->v[i].value);
	}
	mem_free(ls);
}

const char *
labels_get(const struct labels *ls, const char *name)
{
	size_t lo = 0, hi = ls->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ls->v[mid].name, name);

		if (c == 0)
			return ls->v[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *
labels_name(const struct labels *ls)
{
	const char *v;

	/* Sorted by name, the metric name comes first unless a label name
	 * sorts before "__name__" (an upper-case or "_A".."_Z" one): look
	 * there before searching. */
	if (ls->n > 0 && strcmp(ls->v[0].name, LABEL_METRIC_NAME) == 0)
		return ls->v[0].value;
	v = labels_get(ls, LABEL_METRIC_NAME);

	return v != NULL ? v : "";
}

int
labels_compare(const struct labels *a, const struct labels *b)
{
	uint32_t i, n = a->n < b->n ? a->n : b->n;
	int c;

	for (i = 0; i < n; i++) {
		if (a->v[i].name != b->v[i].name) {
			c = strcmp(a->v[i].name, b->v[i].name);
			if (c != 0)
				return c < 0 ? -1 : 1;
		}
		if (a->v[i].value != b->v[i].value) {
			c = strcmp(a->v[i].value, b->v[i].value);
			if (c != 0)
				return c < 0 ? -1 : 1;
		}
	}
	return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

bool
labels_equal(const struct labels *a, const struct labels *b)
{
	uint32_t i;

	if (a == b)
		return true;
	if (a->n != b->n || a->hash != b->hash)
		return false;
	/* Interned: equal strings are the same pointer. */
	for (i = 0; i < a->n; i++)
		if (a->v[i].name != b->v[i].name || a->v[i].value != b->v[i].value)
			return false;
	return true;
}

uint64_t
labels_hash(const struct label *v, size_t n)
{
	unsigned char buf[1024];
	size_t i, len = 0, nl, vl;
	XXH3_state_t st;

	for (i = 0; i < n; i++) {
		nl = strlen(v[i].name);
		vl = strlen(v[i].value);
		if (len + nl + vl + 2 > sizeof(buf))
			goto stream;
		memcpy(buf + len, v[i].name, nl);
		len += nl;
		buf[len++] = 0xff;
		memcpy(buf + len, v[i].value, vl);
		len += vl;
		buf[len++] = 0xff;
	}
	return XXH3_64bits(buf, len);
stream:
	/* Too big for the stack buffer: the same bytes, streamed. */
	XXH3_64bits_reset(&st);
	for (i = 0; i < n; i++) {
		XXH3_64bits_update(&st, v[i].name, strlen(v[i].name));
		XXH3_64bits_update(&st, "\xff", 1);
		XXH3_64bits_update(&st, v[i].value, strlen(v[i].value));
		XXH3_64bits_update(&st, "\xff", 1);
	}
	return XXH3_64bits_digest(&st);
}

/* ------------------------------------------------------------------------ */
/* Go quoting                                                                */

static pcre2_code *print_re;
static pthread_once_t print_once = PTHREAD_ONCE_INIT;

static void
print_init(void)
{
	static const char pat[] = "[\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}]";
	int ec;
	PCRE2_SIZE eo;

	print_re = pcre2_compile((PCRE2_SPTR)pat, sizeof(pat) - 1,
	    PCRE2_UTF | PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, &ec, &eo, NULL);
	if (print_re != NULL)
		(void)pcre2_jit_compile(print_re, PCRE2_JIT_COMPLETE);
}

/* labels_quote appends s[0..len) as a Go double-quoted string literal
 * (strconv.Quote): printable runes as is, \a\b\f\n\r\t\v\\\" escaped, other
 * runes as \xXX, \uXXXX or \UXXXXXXXX, invalid UTF-8 bytes as \xXX. */
void
labels_quote(const char *str, size_t len, struct strbuf *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	pcre2_match_data *md = NULL;
	size_t i = 0, w;
	long r;

	strbuf_putc(out, '"');
	while (i < len) {
		w = utf8_decode_rune(s + i, len - i, &r);
		if (r < 0) {
			strbuf_putc(out, '\\');
			strbuf_putc(out, 'x');
			strbuf_putc(out, hex[s[i] >> 4]);
			strbuf_putc(out, hex[s[i] & 15]);
			i += w;
			continue;
		}
		if (r < 0x80) {
			switch (r) {
			case '"': strbuf_puts(out, "\\\""); break;
			case '\\': strbuf_puts(out, "\\\\"); break;
			case '\a': strbuf_puts(out, "\\a"); break;
			case '\b': strbuf_puts(out, "\\b"); break;
			case '\f': strbuf_puts(out, "\\f"); break;
			case '\n': strbuf_puts(out, "\\n"); break;
			case '\r': strbuf_puts(out, "\\r"); break;
			case '\t': strbuf_puts(out, "\\t"); break;
			case '\v': strbuf_puts(out, "\\v"); break;
			default:
				if (r < 0x20 || r == 0x7f) {
					strbuf_putc(out, '\\');
					strbuf_putc(out, 'x');
					strbuf_putc(out, hex[r >> 4]);
					strbuf_putc(out, hex[r & 15]);
				} else {
					strbuf_putc(out, (char)r);
				}
			}
			i += w;
			continue;
		}
		pthread_once(&print_once, print_init);
		if (md == NULL && print_re != NULL)
			md = pcre2_match_data_create(1, NULL);
		if (print_re != NULL && md != NULL &&
		    pcre2_match(print_re, s + i, w, 0, PCRE2_NO_UTF_CHECK, md, NULL) > 0) {
			strbuf_append(out, s + i, w);
		} else if (r < 0x10000) {
			strbuf_printf(out, "\\u%04lx", r);
		} else {
			strbuf_printf(out, "\\U%08lx", r);
		}
		i += w;
	}
	strbuf_putc(out, '"');
	if (md != NULL)
		pcre2_match_data_free(md);
}

void
labels_format(const struct labels *ls, struct strbuf *out)
{
	uint32_t i;

	strbuf_putc(out, '{');
	for (i = 0; i < ls->n; i++) {
		if (i > 0)
			strbuf_puts(out, ", ");
		strbuf_puts(out, ls->v[i].name);
		strbuf_putc(out, '=');
		labels_quote(ls->v[i].value, strlen(ls->v[i].value), out);
	}
	strbuf_putc(out, '}');
}

static bool
is_alpha_(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool
labels_is_valid_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !is_alpha_(s[0]))
		return false;
	for (i = 1; i < len; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

bool
labels_is_valid_metric_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || (!is_alpha_(s[0]) && s[0] != ':'))
		return false;
	for (i = 1; i < len; i++)
		if (!is_alpha_(s[i]) && !is_digit(s[i]) && s[i] != ':')
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */
/* builder                                                                   */

struct labels_builder {
	struct label *v;	/* sorted by name; strings owned (mem_strndup) */
	size_t n, cap;
};

struct labels_builder *
labels_builder_new(void)
{
	return mem_calloc(1, sizeof(struct labels_builder));
}

static void
builder_clear(struct labels_builder *lb)
{
	size_t i;

	for (i = 0; i < lb->n; i++) {
		mem_free((char *)lb->v[i].name);
		mem_free((char *)lb->v[i].value);
	}
	lb->n = 0;
}

void
labels_builder_free(struct labels_builder *lb)
{
	if (lb == NULL)
		return;
	builder_clear(lb);
	mem_free(lb->v);
	mem_free(lb);
}

static void
builder_reserve(struct labels_builder *lb, size_t n)
{
	if (n <= lb->cap)
		return;
	lb->cap = lb->cap ? lb->cap * 2 : 16;
	if (lb->cap < n)
		lb->cap = n;
	lb->v = mem_realloc(lb->v, lb->cap * sizeof(*lb->v));
}

void
labels_builder_reset(struct labels_builder *lb, const struct labels *base)
{
	uint32_t i;

	builder_clear(lb);
	if (base == NULL)
		return;
	builder_reserve(lb, base->n);
	for (i = 0; i < base->n; i++) {
		lb->v[i].name = mem_strdup(base->v[i].name);
		lb->v[i].value = mem_strdup(base->v[i].value);
	}
	lb->n = base->n;
}

/* builder_find returns the index of name (nlen bytes) or, when absent, the
 * insertion point with *found false. Names compare as Go strings: bytewise,
 * a prefix first. */
static size_t
builder_find(const struct labels_builder *lb, const char *name, size_t nlen, bool *found)
{
	size_t lo = 0, hi = lb->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *m = lb->v[mid].name;
		size_t ml = strlen(m);
		int c = memcmp(m, name, ml < nlen ? ml : nlen);

		if (c == 0)
			c = ml < nlen ? -1 : ml > nlen ? 1 : 0;
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

void
labels_builder_setn(struct labels_builder *lb, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	bool found;
	size_t i;

	/* A C string ends at its first NUL; store what the set will hold. */
	nlen = strnlen(name, nlen);
	vlen = strnlen(value, vlen);
	i = builder_find(lb, name, nlen, &found);
	if (vlen == 0) {
		if (found) {
			mem_free((char *)lb->v[i].name);
			mem_free((char *)lb->v[i].value);
			memmove(&lb->v[i], &lb->v[i + 1], (lb->n - i - 1) * sizeof(lb->v[0]));
			lb->n--;
		}
		return;
	}
	if (found) {
		mem_free((char *)lb->v[i].value);
		lb->v[i].value = mem_strndup(value, vlen);
		return;
	}
	builder_reserve(lb, lb->n + 1);
	memmove(&lb->v[i + 1], &lb->v[i], (lb->n - i) * sizeof(lb->v[0]));
	lb->v[i].name = mem_strndup(name, nlen);
	lb->v[i].value = mem_strndup(value, vlen);
	lb->n++;
}

void
labels_builder_set(struct labels_builder *lb, const char *name, const char *value)
{
	labels_builder_setn(lb, name, strlen(name), value, strlen(value));
}

void
labels_builder_del(struct labels_builder *lb, const char *name)
{
	labels_builder_setn(lb, name, strlen(name), "", 0);
}

const char *
labels_builder_get(const struct labels_builder *lb, const char *name)
{
	bool found;
	size_t i = builder_find(lb, name, strlen(name), &found);

	return found ? lb->v[i].value : NULL;
}

size_t
labels_builder_count(const struct labels_builder *lb)
{
	return lb->n;
}

struct label
labels_builder_at(const struct labels_builder *lb, size_t i)
{
	return lb->v[i];
}

struct labels *
labels_builder_labels(const struct labels_builder *lb)
{
	return labels_new_sorted(lb->v, lb->n);
}
