/* tests/unit/test_relabel.c - lib/relabel: every action, validation, hashmod.
 *
 * The expected results follow Prometheus 2.42's model/relabel: its
 * TestRelabel cases (re-expressed here as tables), plus the corners its
 * Process() has and its tests do not show: separators and missing source
 * labels, full anchoring, Go template expansion ($1x is group "1x"), an
 * invalid expanded target skipped, an empty result deleting the target,
 * name-wise actions seeing the set as it was before the rule, Go's
 * strings.ToLower/ToUpper. Validation is checked message by message against
 * Config.UnmarshalYAML. hashmod is checked against known MD5 answers, the two
 * Prometheus vectors and 1,500 generated addresses hashed independently here
 * with libcrypto (bytes 8..15 of the digest, big-endian, modulo N).
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "labels/labels.h"
#include "relabel/relabel.h"
#include "util/strbuf.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAXL 12		/* label pairs in a test set */
#define MAXR 4		/* rules in a test case */

static size_t total_cases;

/* One rule as a test writes it: NULL fields are absent (Prometheus'
 * default applies); src lists source label names up to a NULL. */
struct rspec {
	const char *action;
	const char *src[5];
	const char *separator;
	const char *regex;
	const char *target;
	const char *replacement;
	uint64_t modulus;	/* 0: not written */
	bool empty_src;		/* "source_labels: []" */
};

static struct relabel_rule *
rule_try(const struct rspec *rs, char *err, size_t errlen)
{
	struct relabel_spec spec;
	size_t n = 0;

	memset(&spec, 0, sizeof(spec));
	while (n < NELEM(rs->src) && rs->src[n] != NULL)
		n++;
	spec.action = rs->action;
	spec.source_labels = n > 0 || rs->empty_src ? rs->src : NULL;
	spec.n_source_labels = n;
	spec.separator = rs->separator;
	spec.regex = rs->regex;
	spec.has_modulus = rs->modulus != 0;
	spec.modulus = rs->modulus;
	spec.target_label = rs->target;
	spec.replacement = rs->replacement;
	return relabel_rule_new(&spec, err, errlen);
}

static struct relabel_rule *
rule_ok(const struct rspec *rs)
{
	char err[512];
	struct relabel_rule *r = rule_try(rs, err, sizeof(err));

	if (r == NULL)
		fail_msg("rule refused: %s", err);
	return r;
}

/* set_new builds a set from a NULL-terminated name, value, ... list. */
static struct labels *
set_new(const char *const *nv)
{
	struct label v[MAXL];
	size_t n = 0;

	while (nv[2 * n] != NULL) {
		assert_true(n < MAXL);
		v[n].name = nv[2 * n];
		v[n].value = nv[2 * n + 1];
		n++;
	}
	return labels_new(v, n);
}

static void
set_expect(const struct labels *got, const char *const *want, const char *what)
{
	struct labels *w = set_new(want);

	if (!labels_equal(got, w)) {
		struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;

		labels_format(got, &a);
		labels_format(w, &b);
		fail_msg("%s: got %s, want %s", what, strbuf_cstr(&a), strbuf_cstr(&b));
	}
	labels_free(w);
}

/* run_case applies rules[0..) (up to one with a NULL action and no target,
 * i.e. a zeroed slot) to in and checks the result. */
struct pcase {
	const char *what;
	struct rspec rules[MAXR];
	const char *in[2 * MAXL + 1];
	const char *out[2 * MAXL + 1];	/* ignored when drop */
	bool drop;
};

static bool
rspec_is_empty(const struct rspec *rs)
{
	static const struct rspec zero;

	return memcmp(rs, &zero, sizeof(zero)) == 0;
}

static void
run_cases(const struct pcase *cases, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		struct relabel_rule *rules[MAXR];
		struct labels *in, *out;
		size_t nr = 0;

		for (j = 0; j < MAXR && !rspec_is_empty(&cases[i].rules[j]); j++)
			rules[nr++] = rule_ok(&cases[i].rules[j]);
		in = set_new(cases[i].in);
		out = relabel_process(rules, nr, in);
		if (cases[i].drop) {
			if (out != NULL) {
				struct strbuf a = STRBUF_INIT;

				labels_format(out, &a);
				fail_msg("%s: kept as %s, want dropped", cases[i].what, strbuf_cstr(&a));
			}
		} else {
			if (out == NULL)
				fail_msg("%s: dropped, want kept", cases[i].what);
			set_expect(out, cases[i].out, cases[i].what);
		}
		labels_free(out);
		labels_free(in);
		for (j = 0; j < nr; j++)
			relabel_rule_free(rules[j]);
		total_cases++;
	}
}

/* ---- Prometheus 2.42 TestRelabel ----------------------------------------- */

static const struct pcase prom_cases[] = {
	{ "replace with ${1}",
	  { { "replace", { "a" }, ";", "f(.*)", "d", "ch${1}-ch${1}", 0, false } },
	  { "a", "foo", "b", "bar", "c", "baz", NULL },
	  { "a", "foo", "b", "bar", "c", "baz", "d", "choo-choo", NULL }, false },
	{ "two replaces, the second reading the first",
	  { { "replace", { "a", "b" }, ";", "f(.*);(.*)r", "a", "b${1}${2}m", 0, false },
	    { "replace", { "c", "a" }, ";", "(b).*b(.*)ba(.*)", "d", "$1$2$2$3", 0, false } },
	  { "a", "foo", "b", "bar", "c", "baz", NULL },
	  { "a", "boobam", "b", "bar", "c", "baz", "d", "boooom", NULL }, false },
	{ "drop, later rules not run",
	  { { "drop", { "a" }, NULL, ".*o.*", NULL, NULL, 0, false },
	    { "replace", { "a" }, ";", "f(.*)", "d", "ch$1-ch$1", 0, false } },
	  { "a", "foo", NULL }, { NULL }, true },
	{ "drop on match",
	  { { "drop", { "a" }, NULL, ".*o.*", NULL, NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { NULL }, true },
	{ "replace with a group in the middle",
	  { { "replace", { "a" }, ";", ".*(b).*", "d", "$1", 0, false } },
	  { "a", "abc", NULL }, { "a", "abc", "d", "b", NULL }, false },
	{ "drop without a match keeps",
	  { { "drop", { "a" }, NULL, "no-match", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "drop: f|o is anchored, does not match foo",
	  { { "drop", { "a" }, NULL, "f|o", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "keep without a match drops",
	  { { "keep", { "a" }, NULL, "no-match", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { NULL }, true },
	{ "keep on match",
	  { { "keep", { "a" }, NULL, "f.*", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "no replacement without a match",
	  { { "replace", { "a" }, NULL, "f", "b", "bar", 0, false } },
	  { "a", "boo", NULL }, { "a", "boo", NULL }, false },
	{ "hashmod baz mod 1000",
	  { { "hashmod", { "c" }, ";", NULL, "d", NULL, 1000, false } },
	  { "a", "foo", "b", "bar", "c", "baz", NULL },
	  { "a", "foo", "b", "bar", "c", "baz", "d", "976", NULL }, false },
	{ "hashmod foo\\nbar mod 1000",
	  { { "hashmod", { "a" }, ";", NULL, "b", NULL, 1000, false } },
	  { "a", "foo\nbar", NULL }, { "a", "foo\nbar", "b", "734", NULL }, false },
	{ "labelmap with a prefix",
	  { { "labelmap", { NULL }, NULL, "(b.*)", NULL, "bar_${1}", 0, false } },
	  { "a", "foo", "b1", "bar", "b2", "baz", NULL },
	  { "a", "foo", "b1", "bar", "b2", "baz", "bar_b1", "bar", "bar_b2", "baz", NULL }, false },
	{ "labelmap of __meta_ labels",
	  { { "labelmap", { NULL }, NULL, "__meta_(my.*)", NULL, "${1}", 0, false } },
	  { "a", "foo", "__meta_my_bar", "aaa", "__meta_my_baz", "bbb", "__meta_other", "ccc", NULL },
	  { "a", "foo", "__meta_my_bar", "aaa", "__meta_my_baz", "bbb", "__meta_other", "ccc",
	    "my_bar", "aaa", "my_baz", "bbb", NULL }, false },
	{ "target label from a group",
	  { { "replace", { "a" }, NULL, "some-([^-]+)-([^,]+)", "${1}", "${2}", 0, false } },
	  { "a", "some-name-value", NULL }, { "a", "some-name-value", "name", "value", NULL }, false },
	{ "replacement of a missing group is empty: nothing set",
	  { { "replace", { "a" }, NULL, "some-([^-]+)-([^,]+)", "${1}", "${3}", 0, false } },
	  { "a", "some-name-value", NULL }, { "a", "some-name-value", NULL }, false },
	{ "target expanding to the empty name is skipped",
	  { { "replace", { "a" }, NULL, "some-([^-]+)-([^,]+)", "${3}", "${1}", 0, false } },
	  { "a", "some-name-value", NULL }, { "a", "some-name-value", NULL }, false },
	{ "a real-life tag parse",
	  { { "replace", { "__meta_sd_tags" }, NULL, "(?:.+,|^)path:(/[^,]+).*", "__metrics_path__",
	      "${1}", 0, false },
	    { "replace", { "__meta_sd_tags" }, NULL, "(?:.+,|^)job:([^,]+).*", "job", "${1}", 0, false },
	    { "replace", { "__meta_sd_tags" }, NULL, "(?:.+,|^)label:([^=]+)=([^,]+).*", "${1}",
	      "${2}", 0, false } },
	  { "__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar", NULL },
	  { "__meta_sd_tags", "path:/secret,job:some-job,label:foo=bar", "__metrics_path__", "/secret",
	    "job", "some-job", "foo", "bar", NULL }, false },
	{ "labelkeep",
	  { { "labelkeep", { NULL }, NULL, "(b.*)", NULL, NULL, 0, false } },
	  { "a", "foo", "b1", "bar", "b2", "baz", NULL }, { "b1", "bar", "b2", "baz", NULL }, false },
	{ "labeldrop",
	  { { "labeldrop", { NULL }, NULL, "(b.*)", NULL, NULL, 0, false } },
	  { "a", "foo", "b1", "bar", "b2", "baz", NULL }, { "a", "foo", NULL }, false },
	{ "uppercase and lowercase",
	  { { "uppercase", { "foo" }, NULL, NULL, "foo_uppercase", NULL, 0, false },
	    { "lowercase", { "foo" }, NULL, NULL, "foo_lowercase", NULL, 0, false } },
	  { "foo", "bAr123Foo", NULL },
	  { "foo", "bAr123Foo", "foo_lowercase", "bar123foo", "foo_uppercase", "BAR123FOO", NULL }, false },
	{ "keepequal, equal",
	  { { "keepequal", { "__tmp_port" }, NULL, NULL, "__port1", NULL, 0, false } },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL }, false },
	{ "dropequal, equal",
	  { { "dropequal", { "__tmp_port" }, NULL, NULL, "__port1", NULL, 0, false } },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL }, { NULL }, true },
	{ "dropequal, different",
	  { { "dropequal", { "__tmp_port" }, NULL, NULL, "__port2", NULL, 0, false } },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL }, false },
	{ "keepequal, different",
	  { { "keepequal", { "__tmp_port" }, NULL, NULL, "__port2", NULL, 0, false } },
	  { "__tmp_port", "1234", "__port1", "1234", "__port2", "5678", NULL }, { NULL }, true },
};

static void
test_prometheus_cases(void **state)
{
	(void)state;
	run_cases(prom_cases, NELEM(prom_cases));
	printf("# relabel: %zu cases of Prometheus 2.42 TestRelabel\n", NELEM(prom_cases));
}

/* ---- replace: joining, anchoring, templates -------------------------------- */

static const struct pcase replace_cases[] = {
	/* defaults: source joined with ";", regex (.*), replacement $1 */
	{ "defaults copy a label",
	  { { NULL, { "a" }, NULL, NULL, "x", NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "foo", NULL }, false },
	{ "default separator ;",
	  { { "replace", { "a", "b" }, NULL, NULL, "x", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "x", "foo;bar", NULL }, false },
	{ "a missing source label joins as empty",
	  { { "replace", { "a", "nope", "b" }, NULL, NULL, "x", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "x", "foo;;bar", NULL }, false },
	{ "multi-byte separator",
	  { { "replace", { "a", "b" }, "::", NULL, "x", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "x", "foo::bar", NULL }, false },
	{ "empty separator",
	  { { "replace", { "a", "b" }, "", NULL, "x", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "x", "foobar", NULL }, false },
	{ "separator is matched by the regex",
	  { { "replace", { "a", "b" }, "/", "(.*)/(.*)", "x", "$2-$1", 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "x", "bar-foo", NULL }, false },
	{ "no source labels: the empty string, matched by (.*)",
	  { { "replace", { NULL }, NULL, NULL, "x", "static", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "static", NULL }, false },
	{ "no source labels, regex needing text: nothing",
	  { { "replace", { NULL }, NULL, ".+", "x", "static", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "a missing source label empties the target (delete)",
	  { { "replace", { "nope" }, NULL, NULL, "a", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "b", "bar", NULL }, false },
	{ "replacement \"\" deletes the target",
	  { { "replace", { "a" }, NULL, NULL, "b", "", 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", NULL }, false },
	{ "an empty result deletes the target as written, not as expanded (Prometheus)",
	  { { "replace", { "a" }, NULL, "(\\w+)-(.*)", "${1}", "$2", 0, false } },
	  { "a", "b-", "b", "keep", NULL }, { "a", "b-", "b", "keep", NULL }, false },
	{ "overwrite an existing label",
	  { { "replace", { "a" }, NULL, NULL, "b", "new-$1", 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "new-foo", NULL }, false },
	{ "replace into the source itself",
	  { { "replace", { "__address__" }, NULL, "(.+):(\\d+)", "__address__", "$1:9100", 0, false } },
	  { "__address__", "host:80", NULL }, { "__address__", "host:9100", NULL }, false },
	/* anchoring: ^(?:regex)$ */
	{ "anchored: a prefix does not match",
	  { { "replace", { "a" }, NULL, "fo", "x", "y", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "anchored: a suffix does not match",
	  { { "replace", { "a" }, NULL, "oo", "x", "y", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "anchored: alternation is inside the anchors",
	  { { "replace", { "a" }, NULL, "x|foo", "x", "y", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "y", NULL }, false },
	{ "anchored: ^ and $ written in the regex are harmless",
	  { { "replace", { "a" }, NULL, "^f(o+)$", "x", "$1", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "oo", NULL }, false },
	{ "regex valid only inside ^(?:...)$",
	  { { "replace", { "a" }, NULL, "f)(?:oo", "x", "y", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "y", NULL }, false },
	{ "(?s) lets . match a newline",
	  { { "replace", { "a" }, NULL, "(?s)(.*)", "x", "[$1]", 0, false } },
	  { "a", "foo\nbar", NULL }, { "a", "foo\nbar", "x", "[foo\nbar]", NULL }, false },
	{ "Go's . does not match a newline: the default (.*) misses a multi-line value",
	  { { "replace", { "a" }, NULL, "(.*)", "x", "[$1]", 0, false } },
	  { "a", "foo\nbar", NULL }, { "a", "foo\nbar", NULL }, false },
	{ ". is one UTF-8 character",
	  { { "replace", { "a" }, NULL, "(.)(.)", "x", "$2$1", 0, false } },
	  { "a", "\xc3\xbc\xe2\x98\x83", NULL },
	  { "a", "\xc3\xbc\xe2\x98\x83", "x", "\xe2\x98\x83\xc3\xbc", NULL }, false },
	{ "case-insensitive flag",
	  { { "replace", { "a" }, NULL, "(?i)FOO", "x", "y", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "x", "y", NULL }, false },
	/* Go's Regexp.Expand */
	{ "$1x is group \"1x\" (none): empty, the target is deleted",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "$1x", 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", NULL }, false },
	{ "${1}x is group 1 then x",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "${1}x", 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "fx", NULL }, false },
	{ "$1-x: the name stops at -",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "$1-x", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "f-x", NULL }, false },
	{ "$0 is the whole match",
	  { { "replace", { "a" }, NULL, "f(o)o", "b", "<$0>", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "<foo>", NULL }, false },
	{ "$$ is a dollar",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "$$1=$1", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "$1=f", NULL }, false },
	{ "a malformed ${ stays literal",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "${1", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "${1", NULL }, false },
	{ "a lone $ stays literal",
	  { { "replace", { "a" }, NULL, "(f)oo", "b", "cost $ $1", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "cost $ f", NULL }, false },
	{ "named groups, ${name} and $name",
	  { { "replace", { "a" }, NULL, "(?P<first>f)(?P<rest>.*)", "b", "${rest}-$first", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "oo-f", NULL }, false },
	{ "$first_x is group \"first_x\" (none)",
	  { { "replace", { "a" }, NULL, "(?P<first>f)(?P<rest>.*)", "b", "<$first_x>", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "<>", NULL }, false },
	{ "named groups are numbered too",
	  { { "replace", { "a" }, NULL, "(?P<first>f)(?P<rest>.*)", "b", "$2$1", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "oof", NULL }, false },
	{ "a group that did not take part is empty",
	  { { "replace", { "a" }, NULL, "(x)?(foo)", "b", "[$1][$2]", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "[][foo]", NULL }, false },
	{ "a group number past the last group is empty",
	  { { "replace", { "a" }, NULL, "(foo)", "b", "[$9][${10}]", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "[][]", NULL }, false },
	{ "a group number with a leading zero is a name (none)",
	  { { "replace", { "a" }, NULL, "(foo)", "b", "[$01]", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "b", "[]", NULL }, false },
	/* the target label after expansion */
	{ "target from groups and text",
	  { { "replace", { "a" }, NULL, "(\\w+)-(\\w+)", "${1}_$2", "v", 0, false } },
	  { "a", "x-y", NULL }, { "a", "x-y", "x_y", "v", NULL }, false },
	{ "target expanding to an invalid name is skipped",
	  { { "replace", { "a" }, NULL, "(.*)", "${1}", "v", 0, false } },
	  { "a", "not-a-name", NULL }, { "a", "not-a-name", NULL }, false },
	{ "target expanding to a name starting with a digit is skipped",
	  { { "replace", { "a" }, NULL, "(.*)", "${1}", "v", 0, false } },
	  { "a", "9lives", NULL }, { "a", "9lives", NULL }, false },
	{ "target with $1x expands to the empty name: skipped",
	  { { "replace", { "a" }, NULL, "(.*)", "$1x", "v", 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "a skipped target leaves the rest alone, the next rule runs",
	  { { "replace", { "a" }, NULL, "(.*)", "${1}", "v", 0, false },
	    { "replace", { "a" }, NULL, NULL, "b", NULL, 0, false } },
	  { "a", "x.y", NULL }, { "a", "x.y", "b", "x.y", NULL }, false },
};

static void
test_replace(void **state)
{
	(void)state;
	run_cases(replace_cases, NELEM(replace_cases));
	printf("# relabel: %zu replace cases (separator, anchoring, Go expansion, targets)\n",
	    NELEM(replace_cases));
}

/* ---- the other actions ------------------------------------------------------ */

static const struct pcase action_cases[] = {
	/* keep / drop */
	{ "keep joins sources",
	  { { "keep", { "a", "b" }, "-", "foo-bar", NULL, NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", NULL }, false },
	{ "keep on a missing label matches the empty string",
	  { { "keep", { "nope" }, NULL, "", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "keep with the default regex keeps everything",
	  { { "keep", { "nope" }, NULL, NULL, NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "drop on a missing label with .+ keeps",
	  { { "drop", { "nope" }, NULL, ".+", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "keep after a replace sees the new label",
	  { { "replace", { "a" }, NULL, "f(.*)", "shard", "$1", 0, false },
	    { "keep", { "shard" }, NULL, "oo", NULL, NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", "shard", "oo", NULL }, false },
	/* keepequal / dropequal */
	{ "keepequal: both missing compare equal (empty)",
	  { { "keepequal", { "nope" }, NULL, NULL, "nada", NULL, 0, false } },
	  { "a", "foo", NULL }, { "a", "foo", NULL }, false },
	{ "dropequal: both missing compare equal (empty)",
	  { { "dropequal", { "nope" }, NULL, NULL, "nada", NULL, 0, false } },
	  { "a", "foo", NULL }, { NULL }, true },
	{ "keepequal joins several sources with ;",
	  { { "keepequal", { "a", "b" }, NULL, NULL, "c", NULL, 0, false } },
	  { "a", "1", "b", "2", "c", "1;2", NULL }, { "a", "1", "b", "2", "c", "1;2", NULL }, false },
	{ "keepequal: the target missing, the source set",
	  { { "keepequal", { "a" }, NULL, NULL, "nada", NULL, 0, false } },
	  { "a", "foo", NULL }, { NULL }, true },
	/* hashmod */
	{ "hashmod of several sources",
	  { { "hashmod", { "a", "b" }, NULL, NULL, "h", NULL, 1000, false } },
	  { "a", "foo", "b", "bar", NULL }, { "a", "foo", "b", "bar", "h", "HASH:foo;bar:1000", NULL },
	  false },
	{ "hashmod of nothing (the empty string)",
	  { { "hashmod", { "nope" }, NULL, NULL, "h", NULL, 7, false } },
	  { "a", "foo", NULL }, { "a", "foo", "h", "HASH::7", NULL }, false },
	{ "hashmod modulus 1 is always 0",
	  { { "hashmod", { "a" }, NULL, NULL, "h", NULL, 1, false } },
	  { "a", "foo", NULL }, { "a", "foo", "h", "0", NULL }, false },
	{ "hashmod ignores the regex and the replacement",
	  { { "hashmod", { "a" }, NULL, "nomatch", "h", "zzz", 1000, false } },
	  { "a", "baz", NULL }, { "a", "baz", "h", "976", NULL }, false },
	{ "hashmod then keep: a shard filter",
	  { { "hashmod", { "__address__" }, NULL, NULL, "__tmp_hash", NULL, 1000, false },
	    { "keep", { "__tmp_hash" }, NULL, "976", NULL, NULL, 0, false },
	    { "labeldrop", { NULL }, NULL, "__tmp_hash", NULL, NULL, 0, false } },
	  { "__address__", "baz", NULL }, { "__address__", "baz", NULL }, false },
	/* labelmap */
	{ "labelmap with the default replacement $1",
	  { { "labelmap", { NULL }, NULL, "__meta_kubernetes_pod_label_(.+)", NULL, NULL, 0, false } },
	  { "__meta_kubernetes_pod_label_app", "web", "job", "k", NULL },
	  { "__meta_kubernetes_pod_label_app", "web", "app", "web", "job", "k", NULL }, false },
	{ "labelmap sees the set before the rule (no chain z, zz, ...)",
	  { { "labelmap", { NULL }, NULL, "(.*)", NULL, "z${1}", 0, false } },
	  { "a", "1", NULL }, { "a", "1", "za", "1", NULL }, false },
	{ "labelmap onto an existing label overwrites it",
	  { { "labelmap", { NULL }, NULL, "x_(.*)", NULL, "$1", 0, false } },
	  { "a", "old", "x_a", "new", NULL }, { "a", "new", "x_a", "new", NULL }, false },
	{ "labelmap: two names onto one, the later (sorted) wins",
	  { { "labelmap", { NULL }, NULL, "[xy]_(.*)", NULL, "$1", 0, false } },
	  { "x_a", "1", "y_a", "2", NULL }, { "a", "2", "x_a", "1", "y_a", "2", NULL }, false },
	{ "labelmap is anchored on the name",
	  { { "labelmap", { NULL }, NULL, "b", NULL, "c", 0, false } },
	  { "ab", "1", "b", "2", "bc", "3", NULL }, { "ab", "1", "b", "2", "bc", "3", "c", "2", NULL },
	  false },
	{ "labelmap with a named group",
	  { { "labelmap", { NULL }, NULL, "tag_(?P<k>.+)", NULL, "t_${k}", 0, false } },
	  { "tag_env", "prod", NULL }, { "tag_env", "prod", "t_env", "prod", NULL }, false },
	/* labeldrop / labelkeep */
	{ "labeldrop of everything leaves an empty set (kept)",
	  { { "labeldrop", { NULL }, NULL, ".*", NULL, NULL, 0, false } },
	  { "a", "1", "b", "2", NULL }, { NULL }, false },
	{ "labelkeep of nothing leaves an empty set (kept)",
	  { { "labelkeep", { NULL }, NULL, "nope", NULL, NULL, 0, false } },
	  { "a", "1", "b", "2", NULL }, { NULL }, false },
	{ "labeldrop is anchored",
	  { { "labeldrop", { NULL }, NULL, "tmp", NULL, NULL, 0, false } },
	  { "tmp", "1", "tmpx", "2", "xtmp", "3", NULL }, { "tmpx", "2", "xtmp", "3", NULL }, false },
	{ "labelkeep keeps __name__ only when told",
	  { { "labelkeep", { NULL }, NULL, "__name__|job", NULL, NULL, 0, false } },
	  { "__name__", "up", "job", "j", "instance", "i", NULL }, { "__name__", "up", "job", "j", NULL },
	  false },
	{ "labeldrop then labelkeep",
	  { { "labeldrop", { NULL }, NULL, "__meta_.*", NULL, NULL, 0, false },
	    { "labelkeep", { NULL }, NULL, "__.*|job", NULL, NULL, 0, false } },
	  { "__meta_a", "1", "__address__", "h:1", "job", "j", "other", "o", NULL },
	  { "__address__", "h:1", "job", "j", NULL }, false },
	/* lowercase / uppercase: Go's strings.ToLower / ToUpper */
	{ "lowercase overwrites the target",
	  { { "lowercase", { "a" }, NULL, NULL, "a", NULL, 0, false } },
	  { "a", "MiXeD-123_!", NULL }, { "a", "mixed-123_!", NULL }, false },
	{ "lowercase joins sources",
	  { { "lowercase", { "a", "b" }, "/", NULL, "c", NULL, 0, false } },
	  { "a", "A", "b", "B", NULL }, { "a", "A", "b", "B", "c", "a/b", NULL }, false },
	{ "lowercase of nothing deletes the target",
	  { { "lowercase", { "nope" }, NULL, NULL, "a", NULL, 0, false } },
	  { "a", "foo", "b", "bar", NULL }, { "b", "bar", NULL }, false },
	{ "uppercase of nothing deletes the target",
	  { { "uppercase", { "nope" }, NULL, NULL, "a", NULL, 0, false } },
	  { "a", "foo", NULL }, { NULL }, false },
	{ "lowercase ignores the regex",
	  { { "lowercase", { "a" }, NULL, "nomatch", "b", NULL, 0, false } },
	  { "a", "ABC", NULL }, { "a", "ABC", "b", "abc", NULL }, false },
	{ "uppercase: German umlauts, sharp s has no simple upper case",
	  { { "uppercase", { "a" }, NULL, NULL, "b", NULL, 0, false } },
	  { "a", "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", NULL },
	  { "a", "\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", "b", "\xc3\x84\xc3\x96\xc3\x9c\xc3\x9f", NULL }, false },
	{ "lowercase: umlauts, Greek, Cyrillic",
	  { { "lowercase", { "a" }, NULL, NULL, "b", NULL, 0, false } },
	  { "a", "\xc3\x84\xce\xa3\xd0\x96", NULL },
	  { "a", "\xc3\x84\xce\xa3\xd0\x96", "b", "\xc3\xa4\xcf\x83\xd0\xb6", NULL }, false },
	{ "titlecase DZ with caron: upper U+01C4, lower U+01C6",
	  { { "uppercase", { "a" }, NULL, NULL, "u", NULL, 0, false },
	    { "lowercase", { "a" }, NULL, NULL, "l", NULL, 0, false } },
	  { "a", "\xc7\x85", NULL }, { "a", "\xc7\x85", "l", "\xc7\x86", "u", "\xc7\x84", NULL }, false },
	{ "KELVIN SIGN lowers to k, long s uppers to S",
	  { { "lowercase", { "a" }, NULL, NULL, "l", NULL, 0, false },
	    { "uppercase", { "b" }, NULL, NULL, "u", NULL, 0, false } },
	  { "a", "\xe2\x84\xaa", "b", "\xc5\xbf", NULL },
	  { "a", "\xe2\x84\xaa", "b", "\xc5\xbf", "l", "k", "u", "S", NULL }, false },
	{ "lowercase: an invalid byte becomes U+FFFD",
	  { { "lowercase", { "a" }, NULL, NULL, "b", NULL, 0, false } },
	  { "a", "A\xff" "B\xc3", NULL }, { "a", "A\xff" "B\xc3", "b", "a\xef\xbf\xbd" "b\xef\xbf\xbd", NULL },
	  false },
	{ "lowercase uses the target as written (no expansion, as Prometheus)",
	  { { "lowercase", { "a" }, NULL, NULL, "x${1}", NULL, 0, false } },
	  { "a", "A", NULL }, { "a", "A", "x${1}", "a", NULL }, false },
};

/* md5_mod gives a "HASH:value:mod" placeholder in action_cases its number. */
static uint64_t md5_mod(const char *s, size_t len, uint64_t mod);

static void
test_actions(void **state)
{
	struct pcase cases[NELEM(action_cases)];
	static char bufs[NELEM(action_cases)][2 * MAXL + 1][32];
	size_t i, j;

	(void)state;
	/* resolve HASH:value:mod placeholders with the independent MD5 */
	memcpy(cases, action_cases, sizeof(cases));
	for (i = 0; i < NELEM(cases); i++) {
		for (j = 0; cases[i].out[j] != NULL; j++) {
			const char *o = cases[i].out[j], *c;

			if (strncmp(o, "HASH:", 5) != 0)
				continue;
			c = strrchr(o, ':');
			snprintf(bufs[i][j], sizeof(bufs[i][j]), "%" PRIu64,
			    md5_mod(o + 5, (size_t)(c - o - 5), strtoull(c + 1, NULL, 10)));
			cases[i].out[j] = bufs[i][j];
		}
	}
	run_cases(cases, NELEM(cases));
	printf("# relabel: %zu cases of keep, drop, keepequal, dropequal, hashmod, labelmap, "
	    "labeldrop, labelkeep, lowercase, uppercase\n", NELEM(cases));
}

/* ---- validation (Config.UnmarshalYAML) ------------------------------------------ */

struct vcase {
	struct rspec r;
	const char *err;	/* NULL: accepted */
};

static const struct vcase vcases[] = {
	/* actions */
	{ { "", { NULL }, NULL, NULL, NULL, NULL, 0, false }, "relabel action cannot be empty" },
	{ { "foo", { NULL }, NULL, NULL, NULL, NULL, 0, false }, "unknown relabel action \"foo\"" },
	{ { "FooBar", { NULL }, NULL, NULL, NULL, NULL, 0, false }, "unknown relabel action \"FooBar\"" },
	{ { "replace_all_the_things_please", { NULL }, NULL, NULL, "x", NULL, 0, false },
	  "unknown relabel action \"replace_all_the_things_please\"" },
	{ { "keep\n", { NULL }, NULL, NULL, NULL, NULL, 0, false }, "unknown relabel action \"keep\\n\"" },
	{ { "REPLACE", { NULL }, NULL, NULL, "x", NULL, 0, false }, NULL },
	{ { "LabelKeep", { NULL }, NULL, NULL, NULL, NULL, 0, false }, NULL },
	{ { "\xe2\x84\xaa" "eep", { NULL }, NULL, NULL, NULL, NULL, 0, false }, NULL },
	{ { "lAbElMaP", { NULL }, NULL, NULL, NULL, NULL, 0, false }, NULL },
	/* hashmod */
	{ { "hashmod", { "a" }, NULL, NULL, "x", NULL, 0, false },
	  "relabel configuration for hashmod requires non-zero modulus" },
	{ { "hashmod", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for hashmod requires non-zero modulus" },
	{ { "hashmod", { "a" }, NULL, NULL, NULL, NULL, 10, false },
	  "relabel configuration for hashmod action requires 'target_label' value" },
	{ { "hashmod", { "a" }, NULL, NULL, "$1", NULL, 10, false },
	  "\"$1\" is invalid 'target_label' for hashmod action" },
	{ { "hashmod", { "a" }, NULL, NULL, "a-b", NULL, 10, false },
	  "\"a-b\" is invalid 'target_label' for hashmod action" },
	{ { "hashmod", { "a" }, NULL, NULL, "__tmp_hash", NULL, 10, false }, NULL },
	/* target_label required */
	{ { "replace", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for replace action requires 'target_label' value" },
	{ { NULL, { "a" }, NULL, NULL, "", NULL, 0, false },
	  "relabel configuration for replace action requires 'target_label' value" },
	{ { "lowercase", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for lowercase action requires 'target_label' value" },
	{ { "uppercase", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for uppercase action requires 'target_label' value" },
	{ { "keepequal", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for keepequal action requires 'target_label' value" },
	{ { "dropequal", { "a" }, NULL, NULL, NULL, NULL, 0, false },
	  "relabel configuration for dropequal action requires 'target_label' value" },
	/* target_label shape (relabelTarget) */
	{ { "replace", { "a" }, NULL, NULL, "-invalid", NULL, 0, false },
	  "\"-invalid\" is invalid 'target_label' for replace action" },
	{ { "replace", { "a" }, NULL, NULL, "0abc", NULL, 0, false },
	  "\"0abc\" is invalid 'target_label' for replace action" },
	{ { "replace", { "a" }, NULL, NULL, "0${3}", NULL, 0, false },
	  "\"0${3}\" is invalid 'target_label' for replace action" },
	{ { "replace", { "a" }, NULL, NULL, "-${3}", NULL, 0, false },
	  "\"-${3}\" is invalid 'target_label' for replace action" },
	{ { "lowercase", { "a" }, NULL, NULL, "a b", NULL, 0, false },
	  "\"a b\" is invalid 'target_label' for lowercase action" },
	{ { "uppercase", { "a" }, NULL, NULL, "\xc3\xa4", NULL, 0, false },
	  "\"\xc3\xa4\" is invalid 'target_label' for uppercase action" },
	{ { "keepequal", { "a" }, NULL, NULL, "a.b", NULL, 0, false },
	  "\"a.b\" is invalid 'target_label' for keepequal action" },
	{ { "dropequal", { "a" }, NULL, NULL, "$", NULL, 0, false },
	  "\"$\" is invalid 'target_label' for dropequal action" },
	/* replacement not allowed */
	{ { "lowercase", { "a" }, NULL, NULL, "b", "x", 0, false },
	  "'replacement' can not be set for lowercase action" },
	{ { "uppercase", { "a" }, NULL, NULL, "b", "", 0, false },
	  "'replacement' can not be set for uppercase action" },
	{ { "keepequal", { "a" }, NULL, NULL, "b", "$2", 0, false },
	  "'replacement' can not be set for keepequal action" },
	{ { "dropequal", { "a" }, NULL, NULL, "b", "x", 0, false },
	  "'replacement' can not be set for dropequal action" },
	{ { "lowercase", { "a" }, NULL, NULL, "b", "$1", 0, false }, NULL },
	/* labelmap replacement shape */
	{ { "labelmap", { NULL }, NULL, "(.*)", NULL, "l-$1", 0, false },
	  "\"l-$1\" is invalid 'replacement' for labelmap action" },
	{ { "labelmap", { NULL }, NULL, "(.*)", NULL, "", 0, false },
	  "\"\" is invalid 'replacement' for labelmap action" },
	{ { "labelmap", { NULL }, NULL, "(.*)", NULL, "${1}_x", 0, false }, NULL },
	/* keepequal / dropequal take only source_labels and target_label */
	{ { "keepequal", { "a" }, NULL, "(.*)", "b", NULL, 0, false },
	  "keepequal action requires only 'source_labels' and `target_label`, and no other fields" },
	{ { "keepequal", { "a" }, NULL, "", "b", NULL, 0, false },
	  "keepequal action requires only 'source_labels' and `target_label`, and no other fields" },
	{ { "dropequal", { "a" }, ",", NULL, "b", NULL, 0, false },
	  "dropequal action requires only 'source_labels' and `target_label`, and no other fields" },
	{ { "dropequal", { "a" }, NULL, NULL, "b", NULL, 3, false },
	  "dropequal action requires only 'source_labels' and `target_label`, and no other fields" },
	{ { "dropequal", { "a" }, ";", NULL, "b", "$1", 0, false }, NULL },
	/* labeldrop / labelkeep take only regex */
	{ { "labeldrop", { "a" }, NULL, "x", NULL, NULL, 0, false },
	  "labeldrop action requires only 'regex', and no other fields" },
	{ { "labeldrop", { NULL }, NULL, "x", NULL, NULL, 0, true },
	  "labeldrop action requires only 'regex', and no other fields" },
	{ { "labelkeep", { NULL }, NULL, "x", "t", NULL, 0, false },
	  "labelkeep action requires only 'regex', and no other fields" },
	{ { "labelkeep", { NULL }, "", "x", NULL, NULL, 0, false },
	  "labelkeep action requires only 'regex', and no other fields" },
	{ { "labelkeep", { NULL }, NULL, "x", NULL, "y", 0, false },
	  "labelkeep action requires only 'regex', and no other fields" },
	{ { "labeldrop", { NULL }, NULL, "x", NULL, NULL, 5, false },
	  "labeldrop action requires only 'regex', and no other fields" },
	{ { "labeldrop", { NULL }, ";", "x", "", "$1", 0, false }, NULL },
	/* regexes, compiled as Go's ^(?:regex)$ */
	{ { "replace", { "a" }, NULL, "(abc", "x", NULL, 0, false },
	  "error parsing regexp: missing closing ): `^(?:(abc)$`" },
	{ { "drop", { "a" }, NULL, "a)(?:b", NULL, NULL, 0, false }, NULL },
	{ { "drop", { "a" }, NULL, "(a)\\1", NULL, NULL, 0, false },
	  "error parsing regexp: invalid escape sequence: `\\1`" },
	{ { "drop", { "a" }, NULL, "(?=a)", NULL, NULL, 0, false },
	  "error parsing regexp: invalid or unsupported Perl syntax: `(?=`" },
	/* the regex is compiled before the checks (it is decoded first) */
	{ { "lowercase", { "a" }, NULL, "(", NULL, NULL, 0, false },
	  "error parsing regexp: missing closing ): `^(?:()$`" },
};

/* relabelTarget acceptance, after Prometheus' TestTargetLabelValidity. */
static const struct {
	const char *s;
	bool valid;
} targets[] = {
	{ "-label", false }, { "label", true }, { "label${1}", true }, { "${1}label", true },
	{ "${1}", true }, { "${", false }, { "$", false }, { "${}", false }, { "foo${", false },
	{ "$1", true }, { "asd$2asd", true }, { "-foo${1}bar-", false }, { "_${1}_", true },
	{ "foo${bar}foo", true }, { "a$b$c", true }, { "$a-", false }, { "${a}${b}", true },
	{ "${a b}", false }, { "1", false }, { "_1", true }, { "a:b", false }, { "", false },
};

static void
test_validation(void **state)
{
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(vcases); i++) {
		struct relabel_rule *r = rule_try(&vcases[i].r, err, sizeof(err));

		if (vcases[i].err == NULL) {
			if (r == NULL)
				fail_msg("case %zu (%s): refused: %s", i, vcases[i].r.action, err);
		} else {
			if (r != NULL)
				fail_msg("case %zu (%s): accepted, want \"%s\"", i, vcases[i].r.action,
				    vcases[i].err);
			if (strcmp(err, vcases[i].err) != 0)
				fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, vcases[i].err);
		}
		relabel_rule_free(r);
		total_cases++;
	}
	for (i = 0; i < NELEM(targets); i++) {
		struct rspec rs = { "replace", { "a" }, NULL, NULL, targets[i].s, NULL, 0, false };
		struct relabel_rule *r = rule_try(&rs, err, sizeof(err));

		if ((r != NULL) != targets[i].valid)
			fail_msg("target_label \"%s\": %s, want %s", targets[i].s,
			    r != NULL ? "accepted" : err, targets[i].valid ? "valid" : "invalid");
		relabel_rule_free(r);
		total_cases++;
	}
	/* a NULL or zero-sized error buffer is allowed */
	{
		struct rspec rs = { "bogus", { NULL }, NULL, NULL, NULL, NULL, 0, false };

		assert_null(rule_try(&rs, NULL, 0));
		assert_null(rule_try(&rs, err, 1));
		assert_string_equal(err, "");
	}
	/* the action and names */
	{
		static const char *const names[] = { "replace", "keep", "drop", "keepequal",
			"dropequal", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase",
			"uppercase" };
		struct rspec rs = { NULL, { "a" }, NULL, NULL, "x", NULL, 0, false };
		struct relabel_rule *r = rule_ok(&rs);

		assert_int_equal(relabel_rule_action(r), RELABEL_REPLACE);
		relabel_rule_free(r);
		for (i = 0; i < NELEM(names); i++)
			assert_string_equal(relabel_action_name((enum relabel_action)i), names[i]);
		assert_string_equal(relabel_action_name((enum relabel_action)99), "unknown");
	}
	relabel_rule_free(NULL);
	printf("# relabel: %zu validation cases with Prometheus' messages, %zu target_label shapes\n",
	    NELEM(vcases), NELEM(targets));
}

/* ---- hashmod ---------------------------------------------------------------- */

/* md5_mod computes Prometheus' hashmod independently of lib/relabel: the
 * one-shot EVP digest with the library's default MD5, bytes 8..15 of the
 * digest as a big-endian integer, modulo mod. */
static uint64_t
md5_mod(const char *s, size_t len, uint64_t mod)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t h = 0;
	int i;

	assert_int_equal(EVP_Digest(s, len, md, &mdlen, EVP_md5(), NULL), 1);
	assert_int_equal(mdlen, 16);
	for (i = 0; i < 8; i++)
		h |= (uint64_t)md[8 + i] << (8 * (7 - i));
	return h % mod;
}

static void
test_hashmod(void **state)
{
	static const uint64_t mods[] = { 1, 2, 3, 4, 5, 7, 10, 16, 100, 1000, 65537, 1000003,
		UINT64_C(1) << 32, (UINT64_C(1) << 32) + 15, UINT64_C(1) << 63, UINT64_MAX };
	/* RFC 1321 test suite digests: bytes 8..15, below UINT64_MAX */
	static const struct {
		const char *s;
		uint64_t low;
	} kat[] = {
		{ "", UINT64_C(0xe9800998ecf8427e) },
		{ "a", UINT64_C(0x31c399e269772661) },
		{ "abc", UINT64_C(0xd6963f7d28e17f72) },
		{ "message digest", UINT64_C(0x525a2f31aaf161d0) },
		{ "abcdefghijklmnopqrstuvwxyz", UINT64_C(0x7dfb496cca67e13b) },
	};
	size_t buckets[4] = { 0 }, i, j, n = 0, checked = 0;
	char addr[128];

	(void)state;
	assert_int_equal(relabel_hashmod("baz", 3, 1000), 976);
	assert_int_equal(relabel_hashmod("foo\nbar", 7, 1000), 734);
	assert_int_equal(relabel_hashmod("baz", 3, 0), 0);	/* no division by zero */
	for (i = 0; i < NELEM(kat); i++) {
		assert_int_equal(relabel_hashmod(kat[i].s, strlen(kat[i].s), UINT64_MAX), kat[i].low);
		assert_int_equal(md5_mod(kat[i].s, strlen(kat[i].s), UINT64_MAX), kat[i].low);
	}
	/* 1,500 generated targets of three shapes, every modulus */
	for (i = 0; i < 1500; i++) {
		size_t len;

		switch (i % 3) {
		case 0:
			len = (size_t)snprintf(addr, sizeof(addr), "10.%zu.%zu.%zu:%zu", i / 250 % 256,
			    i / 7 % 256, i % 256, 9100 + i % 5);
			break;
		case 1:
			len = (size_t)snprintf(addr, sizeof(addr), "node-%04zu.dc%zu.example.com:9100",
			    i, i % 4);
			break;
		default:
			len = (size_t)snprintf(addr, sizeof(addr), "[2001:db8::%zx]:%zu", i, 8000 + i);
			break;
		}
		for (j = 0; j < NELEM(mods); j++) {
			uint64_t got = relabel_hashmod(addr, len, mods[j]), want = md5_mod(addr, len, mods[j]);

			if (got != want)
				fail_msg("hashmod(%s, %" PRIu64 ") = %" PRIu64 ", want %" PRIu64, addr,
				    mods[j], got, want);
			checked++;
		}
		buckets[relabel_hashmod(addr, len, 4)]++;
		n++;
	}
	/* every shard gets its share (375 expected; MD5 is uniform) */
	for (i = 0; i < 4; i++)
		assert_true(buckets[i] > 300 && buckets[i] < 450);
	/* and the rule writes the same number, in decimal */
	for (i = 0; i < 200; i++) {
		struct rspec rs = { "hashmod", { "__address__" }, NULL, NULL, "shard", NULL,
			mods[i % NELEM(mods)], false };
		struct relabel_rule *r = rule_ok(&rs);
		char want[32];
		struct label l;
		struct labels *in, *out;

		snprintf(addr, sizeof(addr), "target-%zu:80", i);
		l.name = "__address__";
		l.value = addr;
		in = labels_new(&l, 1);
		out = relabel_process(&r, 1, in);
		assert_non_null(out);
		snprintf(want, sizeof(want), "%" PRIu64, md5_mod(addr, strlen(addr), mods[i % NELEM(mods)]));
		assert_string_equal(labels_get(out, "shard"), want);
		labels_free(out);
		labels_free(in);
		relabel_rule_free(r);
	}
	total_cases += checked + 200;
	printf("# relabel: hashmod of %zu addresses x %zu moduli (%zu) and 200 rules match the "
	    "independent MD5; shards of 4: %zu %zu %zu %zu\n", n, NELEM(mods), checked,
	    buckets[0], buckets[1], buckets[2], buckets[3]);
}

/* ---- apply on a builder, threads --------------------------------------------------- */

static void
test_apply_builder(void **state)
{
	struct rspec rs[] = {
		{ "replace", { "a" }, NULL, "(.*)", "b", "x$1", 0, false },
		{ "drop", { "b" }, NULL, "xdrop", NULL, NULL, 0, false },
	};
	struct relabel_rule *rules[2];
	struct labels_builder *lb = labels_builder_new();
	struct labels *out;

	(void)state;
	rules[0] = rule_ok(&rs[0]);
	rules[1] = rule_ok(&rs[1]);
	/* no rules: kept unchanged */
	labels_builder_set(lb, "a", "1");
	assert_true(relabel_apply(rules, 0, lb));
	assert_int_equal(labels_builder_count(lb), 1);
	/* the builder carries the result */
	assert_true(relabel_apply(rules, 2, lb));
	assert_string_equal(labels_builder_get(lb, "b"), "x1");
	out = labels_builder_labels(lb);
	assert_int_equal(out->n, 2);
	labels_free(out);
	/* dropped by the second rule */
	labels_builder_reset(lb, NULL);
	labels_builder_set(lb, "a", "drop");
	assert_false(relabel_apply(rules, 2, lb));
	labels_builder_free(lb);
	relabel_rule_free(rules[0]);
	relabel_rule_free(rules[1]);
}

struct thread_arg {
	struct relabel_rule **rules;
	size_t nrules;
	int id;
	bool ok;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;
	char v[32], want[64];
	int i;

	a->ok = true;
	for (i = 0; i < 3000 && a->ok; i++) {
		struct label l[2] = { { "__address__", v }, { "job", "J" } };
		struct labels *in, *out;
		const char *got;

		snprintf(v, sizeof(v), "h%d-%d:80", a->id, i);
		in = labels_new(l, 2);
		out = relabel_process(a->rules, a->nrules, in);
		snprintf(want, sizeof(want), "h%d-%d", a->id, i);
		got = out != NULL ? labels_get(out, "host") : NULL;
		if (got == NULL || strcmp(got, want) != 0 || labels_get(out, "job") != NULL ||
		    labels_get(out, "lc") == NULL || strcmp(labels_get(out, "lc"), "j") != 0 ||
		    labels_get(out, "shard") == NULL)
			a->ok = false;
		labels_free(out);
		labels_free(in);
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct rspec rs[] = {
		{ "replace", { "__address__" }, NULL, "(?P<h>[^:]+):\\d+", "host", "${h}", 0, false },
		{ "hashmod", { "__address__" }, NULL, NULL, "shard", NULL, 8, false },
		{ "lowercase", { "job" }, NULL, NULL, "lc", NULL, 0, false },
		{ "labeldrop", { NULL }, NULL, "job", NULL, NULL, 0, false },
	};
	struct relabel_rule *rules[NELEM(rs)];
	struct thread_arg args[4];
	pthread_t th[4];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(rs); i++)
		rules[i] = rule_ok(&rs[i]);
	for (i = 0; i < 4; i++) {
		args[i].rules = rules;
		args[i].nrules = NELEM(rs);
		args[i].id = (int)i;
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(args[i].ok);
	}
	for (i = 0; i < NELEM(rs); i++)
		relabel_rule_free(rules[i]);
	printf("# relabel: 4 threads x 3000 sets through one shared rule list\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_cases),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_hashmod),
		cmocka_unit_test(test_apply_builder),
		cmocka_unit_test(test_threads),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	printf("# relabel: %zu cases checked in all\n", total_cases);
	return rc;
}
