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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
