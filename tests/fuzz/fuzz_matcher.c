/* tests/fuzz/fuzz_matcher.c - libFuzzer target for lib/labels.
 *
 * The input is split at NUL bytes into a pattern, a subject and a template.
 * The pattern is compiled as a Go regex and as each matcher type; the subject
 * is matched (plain and with groups) and the template expanded; the subject
 * also feeds a label builder (lines of name=value) whose set is formatted,
 * hashed and compared. Checks invariants that hold for any input: plain and
 * group matching agree, offsets are in range, a literal matches itself, !~ is
 * the negation of =~, builder sets equal sets rebuilt from their pairs, and
 * the intern table is back to its size at the end.
 * Build: make tests/fuzz/fuzz_matcher; run: ./tests/fuzz/fuzz_matcher -max_total_time=600
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "labels/labels.h"
#include "labels/matcher.h"
#include "labels/regex.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static const uint8_t *
next_part(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *start = *p, *z = memchr(start, 0, (size_t)(end - start));

	if (z == NULL) {
		*len = (size_t)(end - start);
		*p = end;
	} else {
		*len = (size_t)(z - start);
		*p = z + 1;
	}
	return start;
}

static void
fuzz_regex(const char *pat, size_t plen, const char *subj, size_t slen, const char *tmpl)
{
	struct strbuf sb = STRBUF_INIT;
	struct regex_match m;
	struct regex *re;
	const char *lit;
	char err[256];
	bool a, b;
	int g;

	re = regex_new(pat, plen, err, sizeof(err));
	if (re == NULL) {
		CHECK(strncmp(err, "error parsing regexp: ", 22) == 0);
		return;
	}
	a = regex_match(re, subj, slen);
	b = regex_match_groups(re, subj, slen, &m);
	CHECK(a == b);
	if (b) {
		CHECK(m.ngroups >= 1 && m.ngroups <= REGEX_MAX_GROUPS);
		CHECK(m.ngroups <= regex_groups(re) + 1);
		CHECK(m.start[0] == 0 && m.end[0] == (long)slen);
		for (g = 0; g < m.ngroups; g++) {
			if (m.start[g] < 0) {
				CHECK(m.end[g] < 0);
				continue;
			}
			CHECK(m.start[g] <= m.end[g] && m.end[g] <= (long)slen);
		}
		regex_expand(re, tmpl, subj, &m, &sb);
		CHECK(sb.len <= strlen(tmpl) * (slen + 1) + 1);
	}
	lit = regex_literal(re);
	if (lit != NULL) {
		CHECK(regex_match(re, lit, strlen(lit)));
		CHECK(regex_match_groups(re, lit, strlen(lit), &m));
		CHECK(a == (slen == strlen(lit) && memcmp(subj, lit, slen) == 0));
	}
	strbuf_free(&sb);
	regex_free(re);
}

static void
fuzz_matchers(const char *pat, const char *subj)
{
	static const enum matcher_op ops[] = { MATCH_EQUAL, MATCH_NOT_EQUAL, MATCH_REGEX,
		MATCH_NOT_REGEX };
	struct strbuf sb = STRBUF_INIT;
	bool r[4] = { false, false, false, false };
	bool ok[4] = { false, false, false, false };
	char err[256];
	size_t i;

	for (i = 0; i < 4; i++) {
		struct matcher *m = matcher_new(ops[i], "l", pat, err, sizeof(err));

		if (m == NULL)
			continue;
		ok[i] = true;
		r[i] = matcher_matches(m, subj);
		(void)matcher_matches_empty(m);
		matcher_format(m, &sb);
		matcher_free(m);
	}
	CHECK(ok[0] && ok[1] && ok[2] == ok[3]);
	CHECK(r[0] != r[1]);
	if (ok[2])
		CHECK(r[2] != r[3]);
	strbuf_free(&sb);
}

static void
fuzz_labels(const char *subj, size_t slen)
{
	struct labels_builder *lb = labels_builder_new();
	struct strbuf sb = STRBUF_INIT;
	struct labels *a, *b;
	struct label *v;
	size_t i = 0, n;

	/* lines of name=value (bytes as they come; empty values delete) */
	while (i < slen) {
		const char *line = subj + i, *nl = memchr(line, '\n', slen - i), *eq;
		size_t llen = nl ? (size_t)(nl - line) : slen - i;

		eq = memchr(line, '=', llen);
		if (eq != NULL)
			labels_builder_setn(lb, line, (size_t)(eq - line), eq + 1,
			    llen - (size_t)(eq - line) - 1);
		else
			labels_builder_setn(lb, line, llen, "v", 1);
		i += llen + 1;
	}
	n = labels_builder_count(lb);
	a = labels_builder_labels(lb);
	CHECK(a->n == n);
	v = mem_alloc((n ? n : 1) * sizeof(*v));
	for (i = 0; i < n; i++)
		v[n - 1 - i] = labels_builder_at(lb, i);	/* reversed: labels_new sorts */
	b = labels_new(v, n);
	CHECK(labels_equal(a, b));
	CHECK(labels_compare(a, b) == 0);
	CHECK(a->hash == b->hash);
	for (i = 0; i < n; i++) {
		CHECK(strcmp(labels_get(a, a->v[i].name), a->v[i].value) == 0);
		if (i > 0)
			CHECK(strcmp(a->v[i - 1].name, a->v[i].name) < 0);
	}
	labels_format(a, &sb);
	labels_quote(subj, slen, &sb);
	(void)labels_is_valid_name(subj, slen);
	(void)labels_is_valid_metric_name(subj, slen);
	if (n > 0) {
		labels_builder_del(lb, a->v[0].name);
		labels_free(b);
		b = labels_builder_labels(lb);
		CHECK(!labels_equal(a, b));
		CHECK(labels_compare(a, b) != 0);
		CHECK((labels_compare(a, b) < 0) == (labels_compare(b, a) > 0));
	}
	mem_free(v);
	labels_free(a);
	labels_free(b);
	labels_builder_free(lb);
	strbuf_free(&sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size, *ps, *ss, *ts;
	size_t base = intern_count(), plen, slen, tlen;
	char *pat, *subj, *tmpl;

	ps = next_part(&p, end, &plen);
	ss = next_part(&p, end, &slen);
	ts = next_part(&p, end, &tlen);
	pat = mem_strndup((const char *)ps, plen);
	subj = mem_strndup((const char *)ss, slen);
	tmpl = mem_strndup((const char *)ts, tlen);

	fuzz_regex(pat, plen, subj, slen, tmpl);
	fuzz_matchers(pat, subj);
	fuzz_labels(subj, slen);
	CHECK(intern_count() == base);

	mem_free(pat);
	mem_free(subj);
	mem_free(tmpl);
	return 0;
}
