/* tests/unit/test_labels.c - lib/labels: interning, label sets, builder,
 * Go quoting, regexes (RE2 syntax on PCRE2, anchoring, limits, Expand) and
 * matchers.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "labels/regex.h"
#include "util/time.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* interning                                                                 */

static void
test_intern_refcount(void **state)
{
	size_t base = intern_count();
	char buf[] = "some_value_xyz";
	const char *a, *b, *c;

	(void)state;
	a = intern_get("some_value_xyz", 14);
	assert_int_equal(intern_count(), base + 1);
	b = intern_get(buf, strlen(buf));	/* different pointer, same bytes */
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, buf);
	assert_string_equal(a, "some_value_xyz");
	c = intern_get("some_value_xy", 13);	/* a prefix is another string */
	assert_ptr_not_equal(a, c);
	assert_int_equal(intern_count(), base + 2);
	assert_ptr_equal(intern_ref(a), a);
	intern_put(a);
	intern_put(b);
	assert_int_equal(intern_count(), base + 2);	/* one ref left */
	intern_put(a);
	assert_int_equal(intern_count(), base + 1);
	intern_put(c);
	assert_int_equal(intern_count(), base);
	intern_put(NULL);
	/* The empty string and embedded bytes intern too. */
	a = intern_get("", 0);
	assert_string_equal(a, "");
	b = intern_get("x\xff", 2);
	assert_memory_equal(b, "x\xff", 3);
	intern_put(a);
	intern_put(b);
	assert_int_equal(intern_count(), base);
}

static void
test_intern_many(void **state)
{
	size_t base = intern_count(), i;
	const char *p[5000];
	char buf[32];

	(void)state;
	for (i = 0; i < NELEM(p); i++) {
		snprintf(buf, sizeof(buf), "k%zu", i);
		p[i] = intern_get(buf, strlen(buf));
	}
	assert_int_equal(intern_count(), base + NELEM(p));
	for (i = 0; i < NELEM(p); i++) {
		snprintf(buf, sizeof(buf), "k%zu", i);
		assert_ptr_equal(intern_get(buf, strlen(buf)), p[i]);
		intern_put(p[i]);
	}
	assert_int_equal(intern_count(), base + NELEM(p));
	for (i = 0; i < NELEM(p); i++)
		intern_put(p[i]);
	assert_int_equal(intern_count(), base);
	printf("# intern: %zu strings interned, looked up and released\n", NELEM(p));
}

static void *
intern_thread(void *arg)
{
	char buf[32];
	int i, j;

	(void)arg;
	for (j = 0; j < 20; j++) {
		for (i = 0; i < 500; i++) {
			const char *s;

			snprintf(buf, sizeof(buf), "shared%d", i % 50);
			s = intern_get(buf, strlen(buf));
			if (strcmp(s, buf) != 0)
				return (void *)1;
			intern_put(intern_ref(s));
			intern_put(s);
		}
	}
	return NULL;
}

static void
test_intern_threads(void **state)
{
	size_t base = intern_count();
	pthread_t t[4];
	void *rv;
	int i;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, intern_thread, NULL), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_int_equal(intern_count(), base);
}

/* ------------------------------------------------------------------------ */
/* label sets                                                                */

static struct labels *
mk(const char *const *kv)
{
	struct label v[32];
	size_t n = 0;

	while (kv[2 * n] != NULL) {
		v[n].name = kv[2 * n];
		v[n].value = kv[2 * n + 1];
		n++;
	}
	return labels_new(v, n);
}

static void
test_labels_sort_hash(void **state)
{
	static const char *const unsorted[] = { "job", "api", "__name__", "up",
		"instance", "h:9090", "a", "1", NULL };
	static const struct label sorted[] = { { "__name__", "up" }, { "a", "1" },
		{ "instance", "h:9090" }, { "job", "api" } };
	size_t base = intern_count();
	struct labels *a, *b, *e;
	char name[16], value[16];
	struct label borrowed;

	(void)state;
	a = mk(unsorted);
	assert_int_equal(a->n, 4);
	assert_string_equal(a->v[0].name, "__name__");
	assert_string_equal(a->v[1].name, "a");
	assert_string_equal(a->v[2].name, "instance");
	assert_string_equal(a->v[3].name, "job");
	/* The hash of the interned set equals the hash of borrowed pairs. */
	assert_true(a->hash == labels_hash(sorted, NELEM(sorted)));
	b = labels_new(sorted, NELEM(sorted));
	assert_true(labels_equal(a, b));
	assert_int_equal(labels_compare(a, b), 0);
	assert_ptr_equal(a->v[2].value, b->v[2].value);
	assert_string_equal(labels_get(a, "instance"), "h:9090");
	assert_null(labels_get(a, "nope"));
	assert_null(labels_get(a, "instanc"));
	assert_string_equal(labels_name(a), "up");
	/* borrowed strings in stack buffers */
	snprintf(name, sizeof(name), "%s", "job");
	snprintf(value, sizeof(value), "%s", "api");
	borrowed.name = name;
	borrowed.value = value;
	assert_true(labels_hash(&borrowed, 1) == labels_hash(&sorted[3], 1));
	/* The name/value boundary is part of the hash. */
	{
		static const struct label x[] = { { "ab", "c" } }, y[] = { { "a", "bc" } };

		assert_true(labels_hash(x, 1) != labels_hash(y, 1));
	}
	assert_ptr_equal(labels_ref(a), a);
	labels_free(a);
	labels_free(a);
	labels_free(b);
	e = labels_empty();
	assert_int_equal(e->n, 0);
	assert_string_equal(labels_name(e), "");
	assert_true(e->hash == labels_hash(NULL, 0));
	a = labels_new(NULL, 0);
	assert_true(labels_equal(a, e));
	labels_free(a);
	labels_free(labels_ref(e));
	labels_free(e);
	labels_free(NULL);
	assert_int_equal(intern_count(), base);
}

static void
test_labels_hash_large(void **state)
{
	struct label v[40];
	char names[40][8], big[3000];
	struct labels *ls;
	size_t i;

	(void)state;
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < NELEM(v); i++) {
		snprintf(names[i], sizeof(names[i]), "n%02zu", i);
		v[i].name = names[i];
		v[i].value = i == 7 ? big : "x";
	}
	ls = labels_new(v, NELEM(v));
	/* The streamed path (over 1 KiB) hashes the same as a rebuild. */
	assert_true(ls->hash == labels_hash(ls->v, ls->n));
	assert_true(ls->hash != labels_hash(ls->v, ls->n - 1));
	labels_free(ls);
}

static void
test_labels_compare(void **state)
{
	/* Each set sorts strictly before the next (Prometheus labels.Compare). */
	static const char *const order[][9] = {
		{ NULL },
		{ "a", "", NULL },
		{ "a", "1", NULL },
		{ "a", "1", "b", "1", NULL },
		{ "a", "1", "b", "2", NULL },
		{ "a", "1", "c", "0", NULL },
		{ "a", "10", NULL },
		{ "a", "2", NULL },
		{ "a", "Z", NULL },
		{ "a", "z", NULL },
		{ "a", "\xc3\xa9", NULL },
		{ "aa", "0", NULL },
		{ "b", "0", NULL },
	};
	struct labels *ls[NELEM(order)];
	size_t i, j, checked = 0;

	(void)state;
	for (i = 0; i < NELEM(order); i++)
		ls[i] = mk(order[i]);
	for (i = 0; i < NELEM(order); i++) {
		for (j = 0; j < NELEM(order); j++) {
			int c = labels_compare(ls[i], ls[j]);

			if (i < j)
				assert_true(c < 0);
			else if (i > j)
				assert_true(c > 0);
			else
				assert_int_equal(c, 0);
			assert_true(labels_equal(ls[i], ls[j]) == (i == j));
			checked++;
		}
	}
	for (i = 0; i < NELEM(order); i++)
		labels_free(ls[i]);
	printf("# compare: %zu ordered pairs checked\n", checked);
}

static void
test_labels_format(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} quote[] = {
		{ "", "\"\"" },
		{ "plain", "\"plain\"" },
		{ "a\"b", "\"a\\\"b\"" },
		{ "back\\slash", "\"back\\\\slash\"" },
		{ "line\nbreak", "\"line\\nbreak\"" },
		{ "\a\b\f\r\t\v", "\"\\a\\b\\f\\r\\t\\v\"" },
		{ "\x01\x1f\x7f", "\"\\x01\\x1f\\x7f\"" },
		{ "caf\xc3\xa9", "\"caf\xc3\xa9\"" },
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\"" },
		{ "\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"" },		/* emoji: So, printable */
		{ "\xc2\xa0", "\"\\u00a0\"" },				/* NBSP: Zs */
		{ "\xe2\x80\xa8", "\"\\u2028\"" },			/* line separator: Zl */
		{ "\xef\xbb\xbf", "\"\\ufeff\"" },			/* BOM: Cf */
		{ "\xc2\x85", "\"\\u0085\"" },				/* NEL: Cc */
		{ "\xcc\x81", "\"\xcc\x81\"" },				/* combining acute: Mn */
		{ "\xf3\xa0\x80\x81", "\"\\U000e0001\"" },		/* language tag: Cf */
		{ "\xf4\x8f\xbf\xbf", "\"\\U0010ffff\"" },		/* noncharacter: Cn */
		{ "\xff", "\"\\xff\"" },
		{ "a\xc3", "\"a\\xc3\"" },				/* truncated */
		{ "\xc0\x80", "\"\\xc0\\x80\"" },			/* overlong */
		{ "\xed\xa0\x80", "\"\\xed\\xa0\\x80\"" },		/* surrogate */
		{ "\xe2\x82", "\"\\xe2\\x82\"" },
		{ " ~", "\" ~\"" },
	};
	static const char *const kv[] = { "job", "a\"b", "__name__", "up", "z", "\n", NULL };
	struct strbuf sb = STRBUF_INIT;
	struct labels *ls;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(quote); i++) {
		strbuf_reset(&sb);
		labels_quote(quote[i].in, strlen(quote[i].in), &sb);
		if (strcmp(strbuf_cstr(&sb), quote[i].want) != 0)
			fail_msg("quote case %zu: got %s want %s", i, strbuf_cstr(&sb), quote[i].want);
	}
	strbuf_reset(&sb);
	ls = mk(kv);
	labels_format(ls, &sb);
	assert_string_equal(strbuf_cstr(&sb), "{__name__=\"up\", job=\"a\\\"b\", z=\"\\n\"}");
	labels_free(ls);
	strbuf_reset(&sb);
	labels_format(labels_empty(), &sb);
	assert_string_equal(strbuf_cstr(&sb), "{}");
	strbuf_free(&sb);
	printf("# format: %zu quoting cases\n", NELEM(quote));
}

static void
test_labels_names(void **state)
{
	static const struct {
		const char *s;
		bool label, metric;
	} cases[] = {
		{ "", false, false },
		{ "a", true, true },
		{ "_", true, true },
		{ "__name__", true, true },
		{ "A9_z", true, true },
		{ "9a", false, false },
		{ ":", false, true },
		{ "a:b", false, true },
		{ "job:rate5m:sum", false, true },
		{ "a-b", false, false },
		{ "a b", false, false },
		{ "\xc3\xa9", false, false },
		{ "a.b", false, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		assert_true(labels_is_valid_name(cases[i].s, strlen(cases[i].s)) == cases[i].label);
		assert_true(labels_is_valid_metric_name(cases[i].s, strlen(cases[i].s)) == cases[i].metric);
	}
	/* length is honoured: "ab-" cut at 2 */
	assert_true(labels_is_valid_name("ab-", 2));
}

static void
test_builder(void **state)
{
	static const char *const kv[] = { "b", "2", "a", "1", NULL };
	size_t base = intern_count();
	struct labels_builder *lb;
	struct labels *base_ls, *ls, *want;
	struct label l;
	char name[8], value[8];

	(void)state;
	base_ls = mk(kv);
	lb = labels_builder_new();
	labels_builder_reset(lb, base_ls);
	assert_int_equal(labels_builder_count(lb), 2);
	/* owns copies: overwrite the caller's buffers after set */
	snprintf(name, sizeof(name), "c");
	snprintf(value, sizeof(value), "3");
	labels_builder_set(lb, name, value);
	name[0] = 'X';
	value[0] = 'Y';
	labels_builder_set(lb, "__name__", "m");
	labels_builder_set(lb, "a", "one");	/* replace */
	labels_builder_set(lb, "b", "");	/* empty deletes */
	labels_builder_set(lb, "zz", "");	/* deleting a missing name is a no-op */
	labels_builder_setn(lb, "d!!", 1, "4??", 1);
	assert_int_equal(labels_builder_count(lb), 4);
	l = labels_builder_at(lb, 0);
	assert_string_equal(l.name, "__name__");
	l = labels_builder_at(lb, 1);
	assert_string_equal(l.name, "a");
	assert_string_equal(l.value, "one");
	l = labels_builder_at(lb, 2);
	assert_string_equal(l.name, "c");
	assert_string_equal(l.value, "3");
	l = labels_builder_at(lb, 3);
	assert_string_equal(l.name, "d");
	assert_string_equal(l.value, "4");
	assert_null(labels_builder_get(lb, "b"));
	assert_string_equal(labels_builder_get(lb, "c"), "3");
	ls = labels_builder_labels(lb);
	{
		static const char *const w[] = { "__name__", "m", "a", "one", "c", "3", "d", "4", NULL };

		want = mk(w);
	}
	assert_true(labels_equal(ls, want));
	assert_true(ls->hash == want->hash);
	labels_free(want);
	labels_free(ls);
	labels_builder_del(lb, "a");
	assert_null(labels_builder_get(lb, "a"));
	assert_int_equal(labels_builder_count(lb), 3);
	/* the base set was not changed */
	assert_string_equal(labels_get(base_ls, "b"), "2");
	labels_builder_reset(lb, NULL);
	assert_int_equal(labels_builder_count(lb), 0);
	ls = labels_builder_labels(lb);
	assert_int_equal(ls->n, 0);
	labels_free(ls);
	labels_builder_free(lb);
	labels_builder_free(NULL);
	labels_free(base_ls);
	assert_int_equal(intern_count(), base);
}

/* A table of builder operations checked against a naive model. */
static void
test_builder_random(void **state)
{
	static const char *const names[] = { "a", "b", "__name__", "job", "aa", "A", "_", "z" };
	static const char *const values[] = { "", "1", "x", "" };
	const char *model[NELEM(names)];
	struct labels_builder *lb = labels_builder_new();
	uint32_t seed = 12345;
	size_t op, i, n;

	(void)state;
	memset(model, 0, sizeof(model));
	for (op = 0; op < 2000; op++) {
		size_t ni, vi;

		seed = seed * 1103515245 + 12345;
		ni = (seed >> 16) % NELEM(names);
		vi = (seed >> 8) % NELEM(values);
		labels_builder_set(lb, names[ni], values[vi]);
		model[ni] = values[vi][0] ? values[vi] : NULL;
		for (i = 0, n = 0; i < NELEM(names); i++)
			n += model[i] != NULL;
		assert_int_equal(labels_builder_count(lb), n);
		for (i = 1; i < n; i++)
			assert_true(strcmp(labels_builder_at(lb, i - 1).name, labels_builder_at(lb, i).name) < 0);
		for (i = 0; i < NELEM(names); i++) {
			const char *g = labels_builder_get(lb, names[i]);

			if (model[i] == NULL)
				assert_null(g);
			else
				assert_string_equal(g, model[i]);
		}
	}
	labels_builder_free(lb);
	printf("# builder: 2000 random operations matched the model\n");
}


/* ------------------------------------------------------------------------ */
/* regex: matching                                                           */

static void
test_regex_match_table(void **state)
{
	static const struct {
		const char *re, *s;
		bool want;
	} cases[] = {
		/* anchoring */
		{ "foo", "foo", true }, { "foo", "foobar", false }, { "foo", "barfoo", false },
		{ "foo", "", false }, { "a|b", "a", true }, { "a|b", "b", true },
		{ "a|b", "ab", false }, { "foo|bar", "foobar", false }, { "ab|cd", "abd", false },
		{ "ab|cd", "acd", false }, { "", "", true }, { "", "a", false },
		{ "^foo$", "foo", true }, { "^foo", "foo", true }, { "\\Afoo\\z", "foo", true },
		{ "a$b", "a$b", false }, { "\\$", "$", true },
		/* fast paths and the newline */
		{ ".*", "", true }, { ".*", "anything at all", true }, { ".*", "a\nb", false },
		{ ".+", "", false }, { ".+", "x", true }, { ".+", "\n", false },
		{ "(?s).*", "a\nb", true }, { "(?s:.*)", "\n", true }, { "(?s:.)", "\n", true },
		{ "a.c", "a\nc", false }, { "(?s)a.c", "a\nc", true }, { "[^a]", "\n", true },
		/* $ is the end of the text, not before a final newline */
		{ "foo$", "foo\n", false }, { "foo$", "foo", true }, { "foo\n?", "foo\n", true },
		{ "foo\\n", "foo\n", true }, { "(?m)foo$", "foo", true },
		{ "(?m)foo$\n^bar", "foo\nbar", true }, { "(?m)a\n^", "a\n", true },
		{ "(?m)^a$", "a", true }, { "(?m:$)\n", "\n", true },
		/* flags */
		{ "(?i)foo", "FoO", true }, { "(?i)foo", "FoX", false }, { "(?i:a)b", "Ab", true },
		{ "(?i:a)b", "AB", false }, { "(?i)\xc3\xa9", "\xc3\x89", true },
		{ "(?i)\xce\xa3", "\xcf\x83", true }, { "(?i)\xce\xa3", "\xcf\x82", true },
		{ "(?i)k", "\xe2\x84\xaa", true }, { "(?i)[k]", "K", true },
		{ "(?i)stra\xc3\x9f" "e", "STRASSE", false }, { "a(?i)b", "aB", true },
		{ "a(?i)b", "AB", false }, { "(?i)a(?-i)b", "Ab", true }, { "(?i)a(?-i)b", "AB", false },
		{ "(?U)a+", "aaa", true }, { "(?U)(a+)(a*)", "aaa", true }, { "(?)a", "a", true },
		/* Perl classes are ASCII-only as in Go */
		{ "\\d+", "123", true }, { "\\d", "\xd9\xa3", false }, { "\\D", "\xd9\xa3", true },
		{ "\\w+", "h_1", true }, { "\\w+", "h\xc3\xa9llo", false }, { "\\W", "\xc3\xa9", true },
		{ "\\s", "\t", true }, { "\\s", " ", true }, { "\\s", "\v", false },
		{ "\\S", "\v", true }, { "\\S", "a", true }, { "\\S", " ", false },
		{ "[\\s]", "\v", false }, { "[\\s]", "\r", true }, { "[\\S]", "\v", true },
		{ "[\\S]", "\n", false }, { "[^\\S]", " ", true }, { "[^\\S]", "\v", false },
		{ "[\\d\\s]+", "1 2", true }, { "[^\\d]", "5", false }, { "[\\D]", "x", true },
		/* Go escapes */
		{ "\\v", "\v", true }, { "\\v", "\n", false }, { "\\a\\f\\t\\r", "\a\f\t\r", true },
		{ "\\x41", "A", true }, { "\\x{263a}", "\xe2\x98\xba", true }, { "\\x{41}", "A", true },
		{ "\\101", "A", true }, { "\\12", "\n", true }, { "\\0101", "\x08" "1", true },
		{ "\\.", ".", true }, { "\\.", "a", false }, { "a\\+", "a+", true }, { "\\_", "_", true },
		{ "\\ ", " ", true }, { "\\#", "#", true }, { "\\-", "-", true },
		{ "\\Q.*\\E", ".*", true }, { "\\Q.*\\E", "ab", false }, { "\\Qa.b", "a.b", true },
		{ "\\Qab\\E+", "abbb", true }, { "\\Qab\\E+", "abab", false }, { "x\\Q\\Ey", "xy", true },
		{ "a\\b", "a", true }, { "a\\bb", "ab", false }, { "a\\B", "a", false },
		/* POSIX and Unicode classes */
		{ "[[:alpha:]]+", "abcXYZ", true }, { "[[:alpha:]]", "\xc3\xa9", false },
		{ "[[:^alpha:]]", "1", true }, { "[[:^alpha:]]", "a", false }, { "[[:word:]]+", "a_1", true },
		{ "[[:digit:][:upper:]]+", "A1B2", true }, { "[[:space:]]", "\v", true },
		{ "[[:punct:]]", "!", true }, { "[[:xdigit:]]+", "09afAF", true },
		{ "\\pL+", "h\xc3\xa9llo", true }, { "\\p{L}", "1", false }, { "\\PL", "1", true },
		{ "\\p{Greek}+", "\xce\xb1\xce\xb2\xce\xb3", true }, { "\\p{Greek}", "a", false },
		{ "\\p{^Greek}", "a", true }, { "\\P{^Greek}", "\xce\xb1", true },
		{ "[\\p{Lu}]", "A", true }, { "[\\p{Lu}]", "a", false }, { "\\p{Lu}", "\xc3\x89", true },
		{ "\\p{Han}", "\xe6\x97\xa5", true }, { "\\p{Any}", "\xf0\x9f\x98\x80", true },
		{ "\\pN", "\xd9\xa3", true }, { "[\\pN-]+", "1-2", true }, { "\\p{Latin}", "a", true },
		/* named groups */
		{ "(?P<name>a+)b", "aab", true }, { "(?P<n1>x)|(?P<n1>y)", "y", true },
		/* repetition */
		{ "a{2}", "aa", true }, { "a{2}", "aaa", false }, { "a{2,}", "aaaa", true },
		{ "a{2,3}", "aaaa", false }, { "a{0}", "", true }, { "a{0,1}", "a", true },
		{ "a{,2}", "a{,2}", true }, { "a{,2}", "aa", false }, { "a{", "a{", true },
		{ "a{1", "a{1", true }, { "a{01}", "a{01}", true }, { "{", "{", true },
		{ "x{2}{", "xx{", true }, { "a{1,2", "a{1,2", true }, { "}", "}", true },
		{ "]", "]", true }, { "a*?", "aaa", true }, { "a+?b", "aab", true }, { "a??", "", true },
		{ "^*foo", "foo", true }, { "(?:a|b)+", "abba", true }, { "x*", "", true },
		{ "(|a)", "a", true }, { "()", "", true }, { "(a)|b", "b", true },
		{ "(a|ab)(c|bcd)(d*)", "abcd", true }, { "(a{10}){100}", "", false },
		/* classes */
		{ "[]a]", "]", true }, { "[]a]", "a", true }, { "[^]a]", "b", true },
		{ "[^]a]", "]", false }, { "[a-]", "-", true }, { "[a-c-e]", "-", true },
		{ "[a-c-e]", "d", false }, { "[a-c-e]", "e", true }, { "[[]", "[", true },
		{ "[a[]", "[", true }, { "[[.a.]]", "a]", true }, { "[[=a=]]", "=]", true },
		{ "[\\d\\-x]", "-", true }, { "[\\x41-\\x43]", "B", true }, { "[\\n]", "\n", true },
		{ "[\\]]", "]", true }, { "[\\\\]", "\\", true }, { "[a-z0-9_]+", "abc_09", true },
		{ "[^a-z]", "A", true }, { "[\xce\xb1-\xcf\x89]", "\xce\xb2", true },
		{ "[\\x{0}-\\x{10FFFF}]", "\xf4\x8f\xbf\xbf", true },
		/* Unicode and invalid UTF-8 subjects (Go reads a bad byte as U+FFFD) */
		{ "\xc3\xa9", "\xc3\xa9", true }, { ".", "\xc3\xa9", true }, { "..", "\xc3\xa9", false },
		{ ".", "\xff", true }, { "\\x{fffd}", "\xff", true }, { "..", "\xe2\x82", true },
		{ "foo.*", "foo\xff", true }, { "foo.+bar", "foo\xff\xfe" "bar", true },
		{ "[^a]", "\xff", true }, { "a", "\xff", false }, { "\xef\xbf\xbd", "\xc0", true },
		{ "x(.)y", "x\xed\xa0\x80y", false }, { "x(...)y", "x\xed\xa0\x80y", true },
		/* typical Prometheus matchers */
		{ "api|web", "web", true }, { "api-.*", "api-server", true }, { "api-.*", "xapi-", false },
		{ "5..", "503", true }, { "5..", "5034", false }, { "2..|3..", "302", true },
		{ ".*:9090", "host:9090", true }, { ".*:9090", "host:90901", false },
		{ "(foo|bar)_total", "bar_total", true }, { "node_(cpu|memory)_.*", "node_cpu_seconds", true },
		{ "prometheus|alertmanager|grafana", "grafan", false },
		{ "/api/v1/.+", "/api/v1/query", true }, { "/api/v1/.+", "/api/v1/", false },
		{ "[a-z]+[0-9]?", "abc7", true }, { ".*-(canary|stable)", "svc-canary", true },
	};
	size_t i, pass = 0;
	char err[256];

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct regex *re = regex_new(cases[i].re, strlen(cases[i].re), err, sizeof(err));

		if (re == NULL)
			fail_msg("case %zu: /%s/ did not compile: %s", i, cases[i].re, err);
		if (regex_match(re, cases[i].s, strlen(cases[i].s)) != cases[i].want)
			fail_msg("case %zu: /%s/ against \"%s\": want %d", i, cases[i].re, cases[i].s,
			    cases[i].want);
		assert_string_equal(regex_pattern(re), cases[i].re);
		regex_free(re);
		pass++;
	}
	printf("# regex: %zu match cases passed\n", pass);
}

static void
test_regex_errors(void **state)
{
	static const struct {
		const char *re, *want;
	} cases[] = {
		/* RE2 refuses lookaround, backreferences, atomic groups, possessives */
		{ "(?=a)", "invalid or unsupported Perl syntax: `(?=`" },
		{ "a(?!b)", "invalid or unsupported Perl syntax: `(?!`" },
		{ "(?<=a)b", "invalid or unsupported Perl syntax: `(?<`" },
		{ "(?<!a)b", "invalid or unsupported Perl syntax: `(?<`" },
		{ "(?>a)", "invalid or unsupported Perl syntax: `(?>`" },
		{ "(?|a)", "invalid or unsupported Perl syntax: `(?|`" },
		{ "(?#comment)", "invalid or unsupported Perl syntax: `(?#`" },
		{ "(?x)a b", "invalid or unsupported Perl syntax: `(?x`" },
		{ "(?ix)a", "invalid or unsupported Perl syntax: `(?ix`" },
		{ "(?i", "invalid or unsupported Perl syntax: `(?i`" },
		{ "(?", "invalid or unsupported Perl syntax: `(?`" },
		{ "(?-)", "invalid or unsupported Perl syntax: `(?-)`" },
		{ "(?i-)", "invalid or unsupported Perl syntax: `(?i-)`" },
		{ "(?i-m-s)", "invalid or unsupported Perl syntax: `(?i-m-`" },
		{ "(?P=n)", "invalid or unsupported Perl syntax: `(?P`" },
		{ "(?P>n)", "invalid or unsupported Perl syntax: `(?P`" },
		{ "(?<name>x)", "invalid or unsupported Perl syntax: `(?<`" },
		{ "(?'n'x)", "invalid or unsupported Perl syntax: `(?'`" },
		{ "(?R)", "invalid or unsupported Perl syntax: `(?R`" },
		{ "(?1)", "invalid or unsupported Perl syntax: `(?1`" },
		{ "(?C1)", "invalid or unsupported Perl syntax: `(?C`" },
		{ "(?\xc3\xa9)", "invalid or unsupported Perl syntax: `(?\xc3\xa9`" },
		{ "a++", "invalid nested repetition operator: `++`" },
		{ "a*+", "invalid nested repetition operator: `*+`" },
		{ "a?+", "invalid nested repetition operator: `?+`" },
		{ "a{2}+", "invalid nested repetition operator: `{2}+`" },
		{ "a**", "invalid nested repetition operator: `**`" },
		{ "a*?+", "invalid nested repetition operator: `*?+`" },
		{ "a*??", "invalid nested repetition operator: `*??`" },
		{ "x{2}{3}", "invalid nested repetition operator: `{2}{3}`" },
		{ "(a)\\1", "invalid escape sequence: `\\1`" },
		{ "(a)\\9", "invalid escape sequence: `\\9`" },
		{ "\\8", "invalid escape sequence: `\\8`" },
		{ "\\C", "invalid escape sequence: `\\C`" },
		{ "\\K", "invalid escape sequence: `\\K`" },
		{ "\\R", "invalid escape sequence: `\\R`" },
		{ "\\h", "invalid escape sequence: `\\h`" },
		{ "\\X", "invalid escape sequence: `\\X`" },
		{ "\\G", "invalid escape sequence: `\\G`" },
		{ "\\Z", "invalid escape sequence: `\\Z`" },
		{ "\\e", "invalid escape sequence: `\\e`" },
		{ "\\cA", "invalid escape sequence: `\\c`" },
		{ "\\g1", "invalid escape sequence: `\\g`" },
		{ "\\k<n>", "invalid escape sequence: `\\k`" },
		{ "\\N", "invalid escape sequence: `\\N`" },
		{ "\\E", "invalid escape sequence: `\\E`" },
		{ "\\\xc3\xa9", "invalid escape sequence: `\\\xc3\xa9`" },
		{ "[\\b]", "invalid escape sequence: `\\b`" },
		{ "[\\Qa\\E]", "invalid escape sequence: `\\Q`" },
		{ "\\x", "invalid escape sequence: `\\x`" },
		{ "\\x4", "invalid escape sequence: `\\x4`" },
		{ "\\xZZ", "invalid escape sequence: `\\xZZ`" },
		{ "\\x{}", "invalid escape sequence: `\\x{}`" },
		{ "\\x{41", "invalid escape sequence: `\\x{41`" },
		{ "\\x{110000}", "invalid escape sequence: `\\x{110000`" },
		{ "\\", "trailing backslash at end of expression: ``" },
		{ "a\\", "trailing backslash at end of expression: ``" },
		{ "(a", "missing closing ): `(a`" },
		{ "((a)", "missing closing ): `((a)`" },
		{ "a)", "unexpected ): `a)`" },
		{ ")", "unexpected ): `)`" },
		{ "[a", "missing closing ]: `[a`" },
		{ "x[a", "missing closing ]: `[a`" },
		{ "[]", "missing closing ]: `[]`" },
		{ "[^]", "missing closing ]: `[^]`" },
		{ "[a-", "missing closing ]: `[a-`" },
		{ "[z-a]", "invalid character class range: `z-a`" },
		{ "[a-\\x00]", "invalid character class range: `a-\\x00`" },
		{ "[[:foo:]]", "invalid character class range: `[:foo:]`" },
		{ "[[:alpha:]", "missing closing ]: `[[:alpha:]`" },
		{ "\\p{Foo}", "invalid character class range: `\\p{Foo}`" },
		{ "\\p{Greek", "invalid character class range: `\\p{Greek`" },
		{ "\\pX", "invalid character class range: `\\pX`" },
		{ "\\p", "invalid character class range: `\\p`" },
		{ "\\p{Xan}", "invalid character class range: `\\p{Xan}`" },
		{ "\\p{L&}", "invalid character class range: `\\p{L&}`" },
		{ "*", "missing argument to repetition operator: `*`" },
		{ "+a", "missing argument to repetition operator: `+`" },
		{ "a|*", "missing argument to repetition operator: `*`" },
		{ "(*)", "missing argument to repetition operator: `*`" },
		{ "(*ACCEPT)", "missing argument to repetition operator: `*`" },
		{ "(?i)*", "missing argument to repetition operator: `*`" },
		{ "??", "missing argument to repetition operator: `??`" },
		{ "{2}", "missing argument to repetition operator: `{2}`" },
		{ "a{1001}", "invalid repeat count: `{1001}`" },
		{ "a{2,1}", "invalid repeat count: `{2,1}`" },
		{ "a{1001,}", "invalid repeat count: `{1001,}`" },
		{ "a{100000000}", "invalid repeat count: `{100000000}`" },
		{ "(a{10}){101}", "invalid repeat count: `{101}`" },
		{ "((a{10}){10}){11}", "invalid repeat count: `{11}`" },
		{ "(?P<n", "invalid named capture: `(?P<n`" },
		{ "(?P<>a)", "invalid named capture: `(?P<>`" },
		{ "(?P<a-b>x)", "invalid named capture: `(?P<a-b>`" },
		{ "(?P<\xc3\xa9>x)", "invalid named capture: `(?P<\xc3\xa9>`" },
		{ "a\xff", "invalid UTF-8: `\xff`" },
	};
	size_t i;
	char err[256], want[256];

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct regex *re = regex_new(cases[i].re, strlen(cases[i].re), err, sizeof(err));

		if (re != NULL)
			fail_msg("case %zu: /%s/ compiled, want error %s", i, cases[i].re, cases[i].want);
		snprintf(want, sizeof(want), "error parsing regexp: %s", cases[i].want);
		if (strcmp(err, want) != 0)
			fail_msg("case %zu: /%s/: got '%s' want '%s'", i, cases[i].re, err, want);
	}
	/* accepted: what Go accepts near those edges */
	{
		static const char *const ok[] = { "(?i)a", "(?i:a)", "(?-i:a)", "(?im-sU:a)", "(?)",
			"(?:)", "(?P<n_1>a)", "(?P<1x>a)", "a{1000}", "(a{10}){100}", "a{0,1000}",
			"\\Q(?=\\E", "[(?=]", "\\p{Greek}", "\\p{^L}", "\\P{Lu}", "\\pZ", "[[:^word:]]",
			"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\10", "a{2}{", "^*", "$+", "\\b?" };

		for (i = 0; i < NELEM(ok); i++) {
			struct regex *re = regex_new(ok[i], strlen(ok[i]), err, sizeof(err));

			if (re == NULL)
				fail_msg("/%s/ refused: %s", ok[i], err);
			regex_free(re);
		}
		printf("# regex: %zu refused patterns, %zu accepted edge patterns\n",
		    NELEM(cases), NELEM(ok));
	}
}

static void
test_regex_catastrophic(void **state)
{
	static const struct {
		const char *re;
		char fill;
		const char *tail;
	} cases[] = {
		{ "(a+)+b", 'a', "c" },
		{ "(a+)+", 'a', "c" },
		{ "(a|aa)+", 'a', "b" },
		{ "(a|a)*x?", 'a', "y" },
		{ "(.*a){20}", 'a', "b" },
		{ "(x+x+)+y", 'x', "" },
		{ "(\\w*)*\\d", 'w', "!" },
		{ "(?i)(a*)*b", 'A', "" },
	};
	char subject[4096];
	size_t i;
	int64_t t0, worst = 0;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct regex *re = regex_new(cases[i].re, strlen(cases[i].re), NULL, 0);
		size_t n = 3000;

		assert_non_null(re);
		memset(subject, cases[i].fill, n);
		snprintf(subject + n, sizeof(subject) - n, "%s", cases[i].tail);
		t0 = time_mono_ns();
		assert_false(regex_match(re, subject, strlen(subject)));
		t0 = time_mono_ns() - t0;
		if (t0 > worst)
			worst = t0;
		/* A bounded match: well under a second even on a slow machine. */
		assert_true(t0 < 2000000000LL);
		regex_free(re);
	}
	printf("# regex: %zu catastrophic patterns, slowest %.1f ms, %lu limit hits\n",
	    NELEM(cases), (double)worst / 1e6, regex_limit_hits());
	/* Deep but legitimate: a capturing loop over 100 kB outgrows the JIT
	 * stack and must still match (interpreter fallback), without a limit hit. */
	{
		static const char *const deep[] = { "(a|b|-)*", "(?:a|b|-)*", "(.*)-(.*)-(.*)", "[ab-]+" };
		size_t n = 100000, k;
		char *big = mem_alloc(n);
		unsigned long hits = regex_limit_hits();

		for (k = 0; k < n; k++)
			big[k] = "ab-"[k % 3];
		for (i = 0; i < NELEM(deep); i++) {
			struct regex *re = regex_new(deep[i], strlen(deep[i]), NULL, 0);

			assert_non_null(re);
			if (!regex_match(re, big, n))
				fail_msg("/%s/ did not match a 100 kB subject", deep[i]);
			regex_free(re);
		}
		assert_int_equal(regex_limit_hits(), hits);
		mem_free(big);
	}
}

static void
test_regex_groups_expand(void **state)
{
	static const struct {
		const char *re, *s, *tmpl, *want;
	} cases[] = {
		{ "(a)(b)", "ab", "$1-$2", "a-b" },
		{ "(a)(b)", "ab", "$2$1", "ba" },
		{ "(a)(b)", "ab", "${1}x", "ax" },
		{ "(a)(b)", "ab", "$1x", "" },		/* ${1x}: no such group */
		{ "(a)(b)", "ab", "$10", "" },
		{ "(a)(b)", "ab", "$0", "ab" },
		{ "(a)(b)", "ab", "$00", "" },
		{ "(a)(b)", "ab", "$01", "" },
		{ "(a)(b)", "ab", "$$", "$" },
		{ "(a)(b)", "ab", "$$1", "$1" },
		{ "(a)(b)", "ab", "$", "$" },
		{ "(a)(b)", "ab", "x$", "x$" },
		{ "(a)(b)", "ab", "${", "${" },
		{ "(a)(b)", "ab", "${1", "${1" },
		{ "(a)(b)", "ab", "${}", "${}" },
		{ "(a)(b)", "ab", "$-$1", "$-a" },
		{ "(a)(b)", "ab", "${1}${2}", "ab" },
		{ "(a)(b)", "ab", "${99}", "" },
		{ "(a)(b)", "ab", "$100000000", "" },
		{ "(a)(b)", "ab", "no dollars", "no dollars" },
		{ "(a)(b)", "ab", "", "" },
		{ "(a)(b)", "ab", "$1\xc3\xa9", "" },		/* é is a letter: ${1é} */
		{ "(a)(b)", "ab", "${1}\xc3\xa9", "a\xc3\xa9" },
		{ "(a)(b)", "ab", "$1\xe2\x82\xac", "a\xe2\x82\xac" },	/* € is not */
		{ "(a)(b)", "ab", "$1\xff", "a\xff" },
		{ "(a)(b)", "ab", "$\xd9\xa1", "" },		/* Arabic-Indic one: a digit, not 0-9 */
		{ "(a)(b)", "ab", "$1 $2", "a b" },
		{ "(a)(b)", "ab", "$1.$2", "a.b" },
		{ "(?P<first>a)(?P<second>b)", "ab", "$second$first", "" },	/* ${second$first}? no: $second then $first */
		{ "(?P<first>a)(?P<second>b)", "ab", "${second}${first}", "ba" },
		{ "(?P<first>a)(?P<second>b)", "ab", "${first}_", "a_" },
		{ "(?P<first>a)(?P<second>b)", "ab", "$first_", "" },
		{ "(?P<first>a)(?P<second>b)", "ab", "$first-$2", "a-b" },
		{ "(?P<1x>a)", "a", "$1x", "a" },
		{ "(?P<1x>a)", "a", "$1", "a" },
		{ "(a)|(b)", "b", "[$1][$2]", "[][b]" },
		{ "(?P<n>a)|(?P<n>b)", "b", "$n", "b" },
		{ "(?P<n>a)|(?P<n>b)", "a", "$n", "a" },
		{ "(.*)", "foo", "$1", "foo" },
		{ "(.*)", "", "x${1}y", "xy" },
		{ "(?:(a)|b)(c)", "bc", "$1$2", "c" },
		{ "(\\w+):(\\d+)", "host:9090", "$1", "host" },
		{ "(.+)\\.(.+)", "a.b.c", "$1|$2", "a.b|c" },
		{ "x(.)y", "x\xffy", "<$1>", "<\xff>" },
		{ "(.)(.)", "\xff\xc3\xa9", "$2$1", "\xc3\xa9\xff" },
	};
	struct strbuf sb = STRBUF_INIT;
	struct regex_match m;
	size_t i;
	char err[256];

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct regex *re = regex_new(cases[i].re, strlen(cases[i].re), err, sizeof(err));
		const char *want = cases[i].want;

		if (re == NULL)
			fail_msg("case %zu: /%s/: %s", i, cases[i].re, err);
		if (!regex_match_groups(re, cases[i].s, strlen(cases[i].s), &m))
			fail_msg("case %zu: /%s/ does not match \"%s\"", i, cases[i].re, cases[i].s);
		assert_int_equal(m.ngroups, regex_groups(re) + 1);
		assert_int_equal(m.start[0], 0);
		assert_int_equal(m.end[0], (long)strlen(cases[i].s));
		strbuf_reset(&sb);
		regex_expand(re, cases[i].tmpl, cases[i].s, &m, &sb);
		/* "$second$first": "second" then "$first" -> "ba" */
		if (strcmp(cases[i].tmpl, "$second$first") == 0)
			want = "ba";
		if (strcmp(strbuf_cstr(&sb), want) != 0)
			fail_msg("case %zu: /%s/ \"%s\" expand '%s': got '%s' want '%s'", i,
			    cases[i].re, cases[i].s, cases[i].tmpl, strbuf_cstr(&sb), want);
		regex_free(re);
	}
	/* group offsets and names */
	{
		struct regex *re = regex_new("(?P<k>[a-z]+)=(v)?(?:x)?", 24, err, sizeof(err));

		assert_non_null(re);
		assert_int_equal(regex_groups(re), 2);
		assert_string_equal(regex_group_name(re, 1), "k");
		assert_string_equal(regex_group_name(re, 2), "");
		assert_string_equal(regex_group_name(re, 3), "");
		assert_true(regex_match_groups(re, "abc=", 4, &m));
		assert_int_equal(m.start[1], 0);
		assert_int_equal(m.end[1], 3);
		assert_int_equal(m.start[2], -1);
		assert_int_equal(m.end[2], -1);
		assert_false(regex_match_groups(re, "abc=vv", 6, &m));
		regex_free(re);
	}
	/* more than REGEX_MAX_GROUPS groups: the first ones are reported */
	{
		struct strbuf p = STRBUF_INIT;
		struct regex *re;
		int g;

		for (g = 0; g < 80; g++)
			strbuf_puts(&p, "(a)");
		re = regex_new(p.buf, p.len, err, sizeof(err));
		assert_non_null(re);
		assert_int_equal(regex_groups(re), 80);
		memset(err, 'a', 80);
		assert_true(regex_match_groups(re, err, 80, &m));
		assert_int_equal(m.ngroups, REGEX_MAX_GROUPS);
		assert_int_equal(m.start[63], 62);
		strbuf_reset(&sb);
		regex_expand(re, "$63|$70", err, &m, &sb);
		assert_string_equal(strbuf_cstr(&sb), "a|");
		regex_free(re);
		strbuf_free(&p);
	}
	strbuf_free(&sb);
	printf("# regex: %zu expand cases passed\n", NELEM(cases));
}

static void
test_regex_literal(void **state)
{
	static const struct {
		const char *re, *lit;	/* NULL: not a literal */
	} cases[] = {
		{ "foo", "foo" }, { "", "" }, { "foo\\.bar", "foo.bar" }, { "a\\-b", "a-b" },
		{ "\\Qa.b\\E", "a.b" }, { "a{", "a{" }, { "\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9" },
		{ "\\x41\\n", "A\n" }, { "job:up:sum", "job:up:sum" }, { "a}", "a}" },
		{ "a|b", NULL }, { "a+", NULL }, { "(?i)a", NULL }, { "a.b", NULL }, { "(a)", NULL },
		{ "[a]", NULL }, { "^a", NULL }, { "a$", NULL }, { "\\d", NULL }, { "a{2}", NULL },
		{ "\\x00", NULL }, { ".*", NULL }, { "\\bfoo", NULL }, { "a\\x{fffd}", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		struct regex *re = regex_new(cases[i].re, strlen(cases[i].re), NULL, 0);
		const char *lit;

		assert_non_null(re);
		lit = regex_literal(re);
		if (cases[i].lit == NULL) {
			if (lit != NULL)
				fail_msg("/%s/ reported literal \"%s\"", cases[i].re, lit);
		} else {
			if (lit == NULL || strcmp(lit, cases[i].lit) != 0)
				fail_msg("/%s/: literal %s", cases[i].re, lit ? lit : "(null)");
			/* the fast path agrees with the definition */
			assert_true(regex_match(re, cases[i].lit, strlen(cases[i].lit)));
			assert_false(regex_match(re, "zz", 2));
		}
		regex_free(re);
	}
	/* a NUL byte in a pattern is a literal rune, not the end */
	{
		struct regex *re = regex_new("a\0b", 3, NULL, 0);

		assert_non_null(re);
		assert_true(regex_match(re, "a\0b", 3));
		assert_false(regex_match(re, "a", 1));
		regex_free(re);
	}
}

struct regex_thread_arg {
	struct regex *re;
	int bad;
};

static void *
regex_thread_main(void *p)
{
	struct regex_thread_arg *a = p;
	struct regex_match m;
	char buf[64];
	int i;

	for (i = 0; i < 20000; i++) {
		int n = snprintf(buf, sizeof(buf), "host%d:%d", i, 9000 + i % 100);

		if (!regex_match_groups(a->re, buf, (size_t)n, &m) || m.start[2] < 0 ||
		    m.end[2] != n)
			a->bad++;
		if (regex_match(a->re, buf, (size_t)n - 1))
			a->bad++;
	}
	regex_thread_cleanup();
	return NULL;
}

static void
test_regex_threads(void **state)
{
	struct regex_thread_arg a[4];
	pthread_t t[4];
	static const char pat[] = "([a-z]+\\d+):(9\\d\\d\\d)";
	struct regex *re = regex_new(pat, strlen(pat), NULL, 0);
	int i;

	(void)state;
	assert_non_null(re);
	for (i = 0; i < 4; i++) {
		a[i].re = re;
		a[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, regex_thread_main, &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].bad, 0);
	}
	regex_free(re);
}

/* ------------------------------------------------------------------------ */
/* matchers                                                                  */

static void
test_matchers(void **state)
{
	static const char *const kv[] = { "__name__", "http_requests_total", "job", "api",
		"code", "503", "path", "/a\"b\n", NULL };
	static const struct {
		enum matcher_op op;
		const char *name, *value;
		bool want, empty;
	} cases[] = {
		{ MATCH_EQUAL, "job", "api", true, false },
		{ MATCH_EQUAL, "job", "ap", false, false },
		{ MATCH_EQUAL, "job", "", false, true },
		{ MATCH_EQUAL, "missing", "", true, true },
		{ MATCH_EQUAL, "missing", "x", false, false },
		{ MATCH_NOT_EQUAL, "job", "api", false, true },
		{ MATCH_NOT_EQUAL, "job", "web", true, true },
		{ MATCH_NOT_EQUAL, "missing", "", false, false },
		{ MATCH_NOT_EQUAL, "missing", "x", true, true },
		{ MATCH_REGEX, "code", "5..", true, false },
		{ MATCH_REGEX, "code", "5", false, false },
		{ MATCH_REGEX, "code", "50", false, false },
		{ MATCH_REGEX, "code", "4..|5..", true, false },
		{ MATCH_REGEX, "job", "a.*", true, false },
		{ MATCH_REGEX, "job", ".*", true, true },
		{ MATCH_REGEX, "job", ".+", true, false },
		{ MATCH_REGEX, "job", "api", true, false },
		{ MATCH_REGEX, "missing", ".*", true, true },
		{ MATCH_REGEX, "missing", ".+", false, false },
		{ MATCH_REGEX, "missing", "|x", true, true },
		{ MATCH_REGEX, "missing", "x?", true, true },
		{ MATCH_REGEX, "__name__", "http_.*_total", true, false },
		{ MATCH_REGEX, "path", "/a\"b.", false, false },
		{ MATCH_REGEX, "path", "(?s)/a\"b.", true, false },
		{ MATCH_NOT_REGEX, "code", "5..", false, true },
		{ MATCH_NOT_REGEX, "code", "4..", true, true },
		{ MATCH_NOT_REGEX, "missing", ".*", false, false },
		{ MATCH_NOT_REGEX, "missing", ".+", true, true },
		{ MATCH_NOT_REGEX, "job", "API", true, true },
		{ MATCH_NOT_REGEX, "job", "(?i)API", false, true },
	};
	struct strbuf sb = STRBUF_INIT;
	struct labels *ls = mk(kv);
	struct matcher *m;
	size_t i;
	char err[256];

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		m = matcher_new(cases[i].op, cases[i].name, cases[i].value, err, sizeof(err));
		if (m == NULL)
			fail_msg("case %zu: %s", i, err);
		if (matcher_matches_labels(m, ls) != cases[i].want)
			fail_msg("case %zu: %s%s\"%s\" want %d", i, cases[i].name,
			    matcher_op_string(cases[i].op), cases[i].value, cases[i].want);
		assert_true(matcher_matches_empty(m) == cases[i].empty);
		assert_true(matcher_matches(m, "") == cases[i].empty);
		assert_true((m->re != NULL) == (cases[i].op == MATCH_REGEX || cases[i].op == MATCH_NOT_REGEX));
		matcher_free(m);
	}
	assert_string_equal(matcher_op_string(MATCH_EQUAL), "=");
	assert_string_equal(matcher_op_string(MATCH_NOT_EQUAL), "!=");
	assert_string_equal(matcher_op_string(MATCH_REGEX), "=~");
	assert_string_equal(matcher_op_string(MATCH_NOT_REGEX), "!~");
	m = matcher_new(MATCH_NOT_REGEX, "path", "a\"b\\.c\n\xc3\xa9", err, sizeof(err));
	assert_non_null(m);
	matcher_format(m, &sb);
	assert_string_equal(strbuf_cstr(&sb), "path!~\"a\\\"b\\\\.c\\n\xc3\xa9\"");
	matcher_free(m);
	strbuf_reset(&sb);
	m = matcher_new(MATCH_EQUAL, "job", "api", err, sizeof(err));
	matcher_format(m, &sb);
	assert_string_equal(strbuf_cstr(&sb), "job=\"api\"");
	matcher_free(m);
	/* a bad regex is refused with the regex error */
	assert_null(matcher_new(MATCH_REGEX, "job", "(?=x)", err, sizeof(err)));
	assert_string_equal(err, "error parsing regexp: invalid or unsupported Perl syntax: `(?=`");
	assert_null(matcher_new((enum matcher_op)42, "job", "x", err, sizeof(err)));
	matcher_free(NULL);
	labels_free(ls);
	strbuf_free(&sb);
	printf("# matchers: %zu cases passed\n", NELEM(cases));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intern_refcount),
		cmocka_unit_test(test_intern_many),
		cmocka_unit_test(test_intern_threads),
		cmocka_unit_test(test_labels_sort_hash),
		cmocka_unit_test(test_labels_hash_large),
		cmocka_unit_test(test_labels_compare),
		cmocka_unit_test(test_labels_format),
		cmocka_unit_test(test_labels_names),
		cmocka_unit_test(test_builder),
		cmocka_unit_test(test_builder_random),
		cmocka_unit_test(test_regex_match_table),
		cmocka_unit_test(test_regex_errors),
		cmocka_unit_test(test_regex_catastrophic),
		cmocka_unit_test(test_regex_groups_expand),
		cmocka_unit_test(test_regex_literal),
		cmocka_unit_test(test_regex_threads),
		cmocka_unit_test(test_matchers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
