/* tool/check_rules.c - strata-tool check rules FILE...: validate rule files like promtool.
 *
 * Each file is read with lib/rules/rulefmt (the parser the servers use),
 * then linted for duplicate rules (same name and labels) unless
 * --lint=none. Output follows promtool check rules of Prometheus 2.42:
 *
 *   Checking FILE
 *     SUCCESS: N rules found
 *
 * or "  FAILED:" and one error per line on stderr. Exit status 1 when a
 * file has errors, 3 when only lint errors were found and --lint-fatal was
 * given, else 0.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rules/rulefmt.h"
#include "tool/tool.h"
#include "util/mem.h"
#include "util/strbuf.h"

struct dup_rule {
	const char *metric;
	const struct rulefmt_kv *labels;
	size_t n;
};

static int
dup_compare(const struct dup_rule *a, const struct dup_rule *b)
{
	size_t i;
	int c = strcmp(a->metric, b->metric);

	if (c != 0)
		return c;
	for (i = 0; i < a->n && i < b->n; i++) {
		c = strcmp(a->labels[i].name, b->labels[i].name);
		if (c != 0)
			return c;
		c = strcmp(a->labels[i].value, b->labels[i].value);
		if (c != 0)
			return c;
	}
	return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

static int
dup_qsort(const void *a, const void *b)
{
	return dup_compare(a, b);
}

/* lint_duplicates appends promtool's duplicate-rules lint message to out
 * and returns true when f has rules with the same name and labels. */
static bool
lint_duplicates(const struct rulefmt_file *f, struct strbuf *out)
{
	struct dup_rule *r, *dups;
	size_t n = 0, nd = 0, i, j;
	bool found;

	for (i = 0; i < f->n_groups; i++)
		n += f->groups[i].n_rules;
	if (n < 2)
		return false;
	r = mem_calloc(n, sizeof(*r));
	dups = mem_calloc(n, sizeof(*dups));
	n = 0;
	for (i = 0; i < f->n_groups; i++)
		for (j = 0; j < f->groups[i].n_rules; j++) {
			const struct rulefmt_rule *rule = &f->groups[i].rules[j];

			r[n].metric = rule->name;
			r[n].labels = rule->labels;
			r[n].n = rule->n_labels;
			n++;
		}
	qsort(r, n, sizeof(*r), dup_qsort);
	for (i = 1; i < n; i++) {
		if (dup_compare(&r[i - 1], &r[i]) == 0 &&
		    (nd == 0 || dup_compare(&r[i - 1], &dups[nd - 1]) != 0))
			dups[nd++] = r[i];
	}
	found = nd > 0;
	if (found) {
		strbuf_printf(out, "lint error %zu duplicate rule(s) found.\n", nd);
		for (i = 0; i < nd; i++) {
			strbuf_printf(out, "Metric: %s\nLabel(s):\n", dups[i].metric);
			for (j = 0; j < dups[i].n; j++)
				strbuf_printf(out, "\t%s: %s\n", dups[i].labels[j].name,
				    dups[i].labels[j].value);
		}
		strbuf_puts(out, "Might cause inconsistency while recording expressions");
	}
	mem_free(r);
	mem_free(dups);
	return found;
}

int
tool_check_rules(int argc, char **argv)
{
	bool lint_dups = true, lint_fatal = false, failed = false, has_errors = false;
	int i, nfiles = 0;
	struct stat st;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("usage: strata-tool check rules [--lint=duplicate-rules|all|none] "
			    "[--lint-fatal] <rule-files>...\n\nCheck if the rule files are valid or not.\n");
			return 0;
		}
		if (strncmp(a, "--lint=", 7) == 0) {
			const char *p = a + 7;

			lint_dups = false;
			for (;;) {
				size_t len = strcspn(p, ",");

				if ((len == 3 && strncmp(p, "all", 3) == 0) ||
				    (len == 15 && strncmp(p, "duplicate-rules", 15) == 0))
					lint_dups = true;
				else if (len == 4 && strncmp(p, "none", 4) == 0)
					lint_dups = false;
				else
					printf("WARNING: unknown lint option %.*s\n", (int)len, p);
				if (p[len] == '\0')
					break;
				p += len + 1;
			}
			continue;
		}
		if (strcmp(a, "--lint-fatal") == 0) {
			lint_fatal = true;
			continue;
		}
		if (strncmp(a, "--", 2) == 0) {
			fprintf(stderr, "strata-tool: error: unknown long flag '%s', try --help\n", a);
			return 2;
		}
		if (stat(a, &st) < 0) {
			fprintf(stderr, "strata-tool: error: path '%s' does not exist, try --help\n", a);
			return 1;
		}
		nfiles++;
	}
	if (nfiles == 0) {
		fprintf(stderr, "strata-tool: error: required argument 'rule-files' not provided, try --help\n");
		return 1;
	}
	for (i = 1; i < argc; i++) {
		struct rulefmt_errors errs = { NULL, 0 };
		struct rulefmt_file *f = NULL;
		struct strbuf lint = STRBUF_INIT;
		size_t k;

		if (strncmp(argv[i], "--", 2) == 0)
			continue;
		printf("Checking %s\n", argv[i]);
		fflush(stdout);
		if (rulefmt_load(argv[i], &f, &errs) < 0) {
			fprintf(stderr, "  FAILED:\n");
			for (k = 0; k < errs.n; k++)
				fprintf(stderr, "%s\n", errs.v[k]);
			fflush(stderr);
			failed = true;
			has_errors = true;
		} else if (lint_dups && lint_duplicates(f, &lint)) {
			fprintf(stderr, "  FAILED:\n%s\n", strbuf_cstr(&lint));
			fflush(stderr);
			failed = true;
		} else {
			size_t n = 0;

			for (k = 0; k < f->n_groups; k++)
				n += f->groups[k].n_rules;
			printf("  SUCCESS: %zu rules found\n", n);
		}
		printf("\n");
		fflush(stdout);
		strbuf_free(&lint);
		rulefmt_errors_free(&errs);
		rulefmt_file_free(f);
	}
	if (failed && has_errors)
		return 1;
	if (failed && lint_fatal)
		return 3;
	return 0;
}
