/* tests/unit/test_promql_scripts.c - Prometheus' PromQL test scripts.
 *
 * Runs every *.test file of $STRATA_PEER_TESTS/promql-v2.42.0 the way
 * Prometheus' promql/test.go does: `load <step>` appends series (with
 * expansions like 1+2x10, _, stale) to a fresh in-memory head, `clear`
 * starts over, and `eval[_fail|_ordered] instant at <time> <expr>` checks
 * the result, for the expression as written and for its variants with
 * every selector pinned by @ to the evaluation time (evaluated at other
 * times), each in instant mode and in range mode (the middle step of a
 * range query must agree). The engine runs with the options test.go uses
 * (max samples 10000, subquery step 1m).
 *
 * Each file prints "# promql functions.test: 123/130 evals passed"; every
 * failure names file:line with the expected and the actual result. The
 * evals known to fail are listed below: a new failure fails the test, and
 * so does a listed eval that passes (take it off the list). Without
 * STRATA_PEER_TESTS the test is skipped (exit 77).
 */
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "labels/labels.h"
#include "promql/ast.h"
#include "promql/engine.h"
#include "promql/parse.h"
#include "promql/storage.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

/* file:line of the evals that do not pass yet. */
static const char *const known_failures[] = {
	NULL,
};

static const char *peer_dir;

struct expect {
	struct labels *ls;	/* NULL for a scalar */
	double v;
	size_t pos;		/* 1-based order */
};

struct runner {
	const char *file;
	struct tsdb_head *head;
	struct promql_storage st;
	struct promql_engine *eng;
	size_t evals, passed;
	struct strbuf failed;	/* "file:line\n" of each failed eval */
	struct strbuf report;	/* messages */
};

static void
runner_clear(struct runner *r)
{
	char err[256];
	struct promql_engine_opts o = { 0 };

	if (r->head != NULL)
		tsdb_head_free(r->head);
	if (r->eng != NULL)
		promql_engine_free(r->eng);
	r->head = tsdb_head_new(NULL, err, sizeof(err));
	assert_non_null(r->head);
	promql_storage_head(&r->st, r->head);
	o.max_samples = 10000;
	o.timeout = 100000;
	o.subquery_step = 60000;
	r->eng = promql_engine_new(&o);
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static bool
parse_go_number(const char *s, double *v)
{
	char err[256];

	return promql_parse_number(s, strlen(s), v, err, sizeof(err)) == 0;
}

static bool
almost_equal(double a, double b)
{
	const double min_normal = 2.2250738585072014e-308, eps = 0.000001;
	double diff;

	if (isnan(a) && isnan(b))
		return true;
	if (a == b)
		return true;
	diff = fabs(a - b);
	if (a == 0 || b == 0 || diff < min_normal)
		return diff < eps * min_normal;
	return diff / (fabs(a) + fabs(b)) < eps;
}

/* ---- load ----------------------------------------------------------------- */

struct load_series {
	struct labels *ls;
	struct promql_seq_value *vals;
	size_t n;
};

static int
do_load(struct runner *r, char **lines, size_t nlines, size_t *i, struct strbuf *msg)
{
	const char *arg = lines[*i] + 4;
	struct load_series *defs = NULL;
	size_t ndefs = 0, k, j;
	struct tsdb_appender *app;
	int64_t gap;
	char err[512];
	int rc = 0;

	while (*arg == ' ' || *arg == '\t')
		arg++;
	if (time_parse_duration(arg, strlen(arg), &gap, err, sizeof(err)) < 0) {
		strbuf_printf(msg, "invalid step definition %s: %s", arg, err);
		return -1;
	}
	while (*i + 1 < nlines && lines[*i + 1][0] != '\0') {
		struct load_series ls;

		(*i)++;
		if (promql_parse_series(lines[*i], strlen(lines[*i]), &ls.ls, &ls.vals, &ls.n,
		    err, sizeof(err)) < 0) {
			strbuf_printf(msg, "line %zu: %s", *i + 1, err);
			rc = -1;
			goto out;
		}
		for (k = 0; k < ndefs; k++)
			if (labels_equal(defs[k].ls, ls.ls))
				break;
		if (k < ndefs) {
			labels_free(defs[k].ls);
			mem_free(defs[k].vals);
			defs[k] = ls;
		} else {
			defs = mem_realloc(defs, (ndefs + 1) * sizeof(*defs));
			defs[ndefs++] = ls;
		}
	}
	app = tsdb_appender_new(r->head);
	for (k = 0; k < ndefs && rc == 0; k++) {
		uint64_t ref = 0;

		for (j = 0; j < defs[k].n; j++) {
			int e;

			if (defs[k].vals[j].omitted)
				continue;
			e = tsdb_appender_append(app, &ref, defs[k].ls, (int64_t)j * gap,
			    defs[k].vals[j].v);
			if (e < 0) {
				strbuf_printf(msg, "append: %s", tsdb_strerror(e));
				rc = -1;
				break;
			}
		}
	}
	if (rc == 0)
		tsdb_appender_commit(app);
	tsdb_appender_free(app);
out:
	for (k = 0; k < ndefs; k++) {
		labels_free(defs[k].ls);
		mem_free(defs[k].vals);
	}
	mem_free(defs);
	return rc;
}

/* ---- eval ----------------------------------------------------------------- */

struct eval_cmd {
	const char *expr;
	int64_t at;
	size_t line;
	bool fail, ordered;
	struct expect *exp;
	size_t nexp;
	bool scalar;
	double scalar_v;
};

static void
format_value(struct strbuf *sb, double v)
{
	promql_format_float(v, 'g', sb);
}

/* compare_vector checks a vector result; returns 0 or -1 with msg. */
static int
compare_vector(const struct eval_cmd *c, const struct promql_sample *vec, size_t n,
    struct strbuf *msg)
{
	bool *seen = NULL;
	size_t i, k;
	int rc = -1;

	if (c->scalar) {
		strbuf_printf(msg, "expected scalar ");
		format_value(msg, c->scalar_v);
		strbuf_puts(msg, " but got a vector");
		return -1;
	}
	if (c->nexp > 0)
		seen = mem_calloc(c->nexp, sizeof(*seen));
	for (i = 0; i < n; i++) {
		for (k = 0; k < c->nexp; k++)
			if (labels_equal(c->exp[k].ls, vec[i].ls))
				break;
		if (k == c->nexp) {
			strbuf_puts(msg, "unexpected metric ");
			labels_format(vec[i].ls, msg);
			strbuf_puts(msg, " in result, with value ");
			format_value(msg, vec[i].v);
			goto out;
		}
		if (c->ordered && c->exp[k].pos != i + 1) {
			strbuf_puts(msg, "expected metric ");
			labels_format(vec[i].ls, msg);
			strbuf_printf(msg, " at position %zu but was at %zu", c->exp[k].pos, i + 1);
			goto out;
		}
		if (!almost_equal(c->exp[k].v, vec[i].v)) {
			strbuf_puts(msg, "expected ");
			format_value(msg, c->exp[k].v);
			strbuf_puts(msg, " for ");
			labels_format(vec[i].ls, msg);
			strbuf_puts(msg, " but got ");
			format_value(msg, vec[i].v);
			goto out;
		}
		seen[k] = true;
	}
	for (k = 0; k < c->nexp; k++) {
		if (!seen[k]) {
			strbuf_puts(msg, "expected metric ");
			labels_format(c->exp[k].ls, msg);
			strbuf_puts(msg, " with ");
			format_value(msg, c->exp[k].v);
			strbuf_printf(msg, " not found (got %zu samples)", n);
			goto out;
		}
	}
	rc = 0;
out:
	mem_free(seen);
	return rc;
}

static int
compare_scalar(const struct eval_cmd *c, double v, struct strbuf *msg)
{
	if (!c->scalar) {
		strbuf_puts(msg, "got scalar ");
		format_value(msg, v);
		strbuf_puts(msg, " but expected a vector");
		return -1;
	}
	if (!almost_equal(c->scalar_v, v)) {
		strbuf_puts(msg, "expected scalar ");
		format_value(msg, c->scalar_v);
		strbuf_puts(msg, " but got ");
		format_value(msg, v);
		return -1;
	}
	return 0;
}

static int
compare_result(const struct eval_cmd *c, const struct promql_result *res, struct strbuf *msg)
{
	switch (res->type) {
	case PROMQL_TYPE_VECTOR:
		return compare_vector(c, res->vec, res->nvec, msg);
	case PROMQL_TYPE_SCALAR:
		return compare_scalar(c, res->scalar, msg);
	case PROMQL_TYPE_MATRIX:
		strbuf_puts(msg, "received range result on instant evaluation");
		return -1;
	default:
		strbuf_puts(msg, "unexpected result type");
		return -1;
	}
}

/* pin sets @ t on every selector and subquery not already pinned, not
 * looking inside subqueries; returns false when the expression uses a
 * function whose value depends on the evaluation time. */
static bool
pin(struct promql_node *n, int64_t t)
{
	size_t i;
	bool ok = true;

	switch (n->kind) {
	case PROMQL_VECTOR_SELECTOR:
		if (!n->u.vs.at.has_ts) {
			n->u.vs.at.has_ts = true;
			n->u.vs.at.ts = t;
		}
		return true;
	case PROMQL_MATRIX_SELECTOR:
		return pin(n->u.msel.vs, t);
	case PROMQL_SUBQUERY:
		if (!n->u.subq.at.has_ts) {
			n->u.subq.at.has_ts = true;
			n->u.subq.at.ts = t;
		}
		return true;
	case PROMQL_AGGREGATE:
		if (n->u.agg.param != NULL)
			ok = pin(n->u.agg.param, t);
		return pin(n->u.agg.expr, t) && ok;
	case PROMQL_BINARY:
		ok = pin(n->u.bin.lhs, t);
		return pin(n->u.bin.rhs, t) && ok;
	case PROMQL_CALL:
		switch (n->u.call.func->id) {
		case PROMQL_FN_DAYS_IN_MONTH: case PROMQL_FN_DAY_OF_MONTH:
		case PROMQL_FN_DAY_OF_WEEK: case PROMQL_FN_DAY_OF_YEAR: case PROMQL_FN_HOUR:
		case PROMQL_FN_MINUTE: case PROMQL_FN_MONTH: case PROMQL_FN_YEAR:
		case PROMQL_FN_PREDICT_LINEAR: case PROMQL_FN_TIME: case PROMQL_FN_TIMESTAMP:
			ok = false;
			break;
		default:
			break;
		}
		for (i = 0; i < n->u.call.nargs; i++)
			ok = pin(n->u.call.args[i], t) && ok;
		return ok;
	case PROMQL_PAREN:
		return pin(n->u.paren.expr, t);
	case PROMQL_UNARY:
		return pin(n->u.unary.expr, t);
	default:
		return true;
	}
}

/* run_one evaluates expr at t in instant and range mode; 0 when the
 * results are right. */
static int
run_one(struct runner *r, const struct eval_cmd *c, const char *expr, int64_t t,
    struct strbuf *msg)
{
	struct promql_result res, rres;
	struct promql_error err;
	size_t i, j;
	int rc;

	if (promql_query_instant(r->eng, &r->st, expr, strlen(expr), t, NULL, &res, &err) < 0) {
		if (c->fail)
			return 0;
		strbuf_printf(msg, "error evaluating query %s at %lld: %s", expr,
		    (long long)t, err.msg);
		return -1;
	}
	if (c->fail) {
		promql_result_free(&res);
		strbuf_printf(msg, "expected error evaluating query %s at %lld but got none",
		    expr, (long long)t);
		return -1;
	}
	if (compare_result(c, &res, msg) < 0) {
		strbuf_printf(msg, " (query %s at %lld)", expr, (long long)t);
		promql_result_free(&res);
		return -1;
	}
	if (promql_query_range(r->eng, &r->st, expr, strlen(expr), t - 60000, t + 60000,
	    60000, NULL, &rres, &err) < 0) {
		strbuf_printf(msg, "error evaluating query %s at %lld in range mode: %s", expr,
		    (long long)t, err.msg);
		promql_result_free(&res);
		return -1;
	}
	rc = 0;
	if (!c->ordered) {
		struct promql_sample *vec = mem_calloc(rres.nmat + 1, sizeof(*vec));
		size_t n = 0;

		for (i = 0; i < rres.nmat; i++) {
			for (j = 0; j < rres.mat[i].n; j++) {
				if (rres.mat[i].points[j].t == t) {
					vec[n].ls = rres.mat[i].ls;
					vec[n].t = t;
					vec[n].v = rres.mat[i].points[j].v;
					n++;
					break;
				}
			}
		}
		if (res.type == PROMQL_TYPE_SCALAR) {
			if (n == 0) {
				strbuf_puts(msg, "no scalar at the evaluation time in range mode");
				rc = -1;
			} else {
				rc = compare_scalar(c, vec[0].v, msg);
			}
		} else {
			rc = compare_vector(c, vec, n, msg);
		}
		if (rc < 0)
			strbuf_printf(msg, " (query %s at %lld, range mode)", expr, (long long)t);
		mem_free(vec);
	}
	promql_result_free(&res);
	promql_result_free(&rres);
	return rc;
}

static int
run_eval(struct runner *r, const struct eval_cmd *c, struct strbuf *msg)
{
	struct promql_node *n;
	char err[512];
	int64_t times[5];
	size_t ntimes = 0, i;
	struct strbuf pinned = STRBUF_INIT;
	int rc;

	if (run_one(r, c, c->expr, c->at, msg) < 0)
		return -1;
	n = promql_parse(c->expr, strlen(c->expr), err, sizeof(err));
	if (n == NULL) {
		strbuf_printf(msg, "parse: %s", err);
		return -1;
	}
	if (!pin(n, c->at)) {
		promql_node_free(n);
		return 0;
	}
	promql_node_format(n, &pinned);
	promql_node_free(n);
	if (c->at == 0) {
		times[ntimes++] = -1000;
		times[ntimes++] = 0;
		times[ntimes++] = 1000;
	} else {
		times[ntimes++] = -10 * c->at;
		times[ntimes++] = 0;
		times[ntimes++] = c->at / 5;
		times[ntimes++] = c->at;
		times[ntimes++] = 10 * c->at;
	}
	rc = 0;
	for (i = 0; i < ntimes && rc == 0; i++)
		rc = run_one(r, c, strbuf_cstr(&pinned), times[i], msg);
	strbuf_free(&pinned);
	return rc;
}

static int
parse_eval(char **lines, size_t nlines, size_t *i, struct eval_cmd *c, struct strbuf *msg)
{
	char *l = lines[*i], *p, *at;
	size_t j = 1;
	char err[512];

	memset(c, 0, sizeof(*c));
	c->line = *i + 1;
	p = l + 4;
	if (strncmp(p, "_fail", 5) == 0) {
		c->fail = true;
		p += 5;
	} else if (strncmp(p, "_ordered", 8) == 0) {
		c->ordered = true;
		p += 8;
	}
	p += strspn(p, " \t");
	if (strncmp(p, "instant", 7) != 0) {
		strbuf_puts(msg, "invalid evaluation command");
		return -1;
	}
	p += 7;
	p += strspn(p, " \t");
	if (strncmp(p, "at", 2) == 0 && (p[2] == ' ' || p[2] == '\t')) {
		p += 2;
		p += strspn(p, " \t");
		at = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		p += strspn(p, " \t");
		if (time_parse_duration(at, strlen(at), &c->at, err, sizeof(err)) < 0) {
			strbuf_printf(msg, "invalid step definition %s: %s", at, err);
			return -1;
		}
	}
	c->expr = p;
	while (*i + 1 < nlines && lines[*i + 1][0] != '\0') {
		struct promql_seq_value *vals;
		struct labels *ls;
		size_t n;
		double v;

		(*i)++;
		if (parse_go_number(lines[*i], &v)) {
			c->scalar = true;
			c->scalar_v = v;
			break;
		}
		if (promql_parse_series(lines[*i], strlen(lines[*i]), &ls, &vals, &n,
		    err, sizeof(err)) < 0) {
			strbuf_printf(msg, "line %zu: %s", *i + 1, err);
			return -1;
		}
		if (n != 1) {
			labels_free(ls);
			mem_free(vals);
			strbuf_printf(msg, "line %zu: expecting one value", *i + 1);
			return -1;
		}
		c->exp = mem_realloc(c->exp, (c->nexp + 1) * sizeof(*c->exp));
		c->exp[c->nexp].ls = ls;
		c->exp[c->nexp].v = vals[0].v;
		c->exp[c->nexp].pos = j++;
		c->nexp++;
		mem_free(vals);
	}
	return 0;
}

static void
eval_cmd_free(struct eval_cmd *c)
{
	size_t k;

	for (k = 0; k < c->nexp; k++)
		labels_free(c->exp[k].ls);
	mem_free(c->exp);
}

static void
run_file(struct runner *r, const char *path)
{
	FILE *f = fopen(path, "r");
	struct strbuf content = STRBUF_INIT;
	char buf[65536], **lines = NULL;
	size_t nlines = 0, cap = 0, i, n;
	char *s, *nl;

	assert_non_null(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&content, buf, n);
	fclose(f);
	s = content.buf;
	for (;;) {
		char *l;

		nl = strchr(s, '\n');
		if (nl != NULL)
			*nl = '\0';
		l = trim(s);
		if (l[0] == '#')
			l[0] = '\0';
		if (nlines == cap) {
			cap = cap ? cap * 2 : 256;
			lines = mem_realloc(lines, cap * sizeof(*lines));
		}
		lines[nlines++] = l;
		if (nl == NULL)
			break;
		s = nl + 1;
	}
	runner_clear(r);
	for (i = 0; i < nlines; i++) {
		struct strbuf msg = STRBUF_INIT;
		char *l = lines[i];

		if (l[0] == '\0')
			continue;
		if (strncasecmp(l, "clear", 5) == 0) {
			runner_clear(r);
		} else if (strncasecmp(l, "load", 4) == 0) {
			size_t at = i;

			if (do_load(r, lines, nlines, &i, &msg) < 0)
				strbuf_printf(&r->report, "%s:%zu: load failed: %s\n", r->file, at + 1,
				    strbuf_cstr(&msg));
		} else if (strncasecmp(l, "eval", 4) == 0) {
			struct eval_cmd c;
			size_t at = i;

			r->evals++;
			if (parse_eval(lines, nlines, &i, &c, &msg) < 0 || run_eval(r, &c, &msg) < 0) {
				strbuf_printf(&r->report, "%s:%zu: %s\n", r->file, at + 1,
				    strbuf_cstr(&msg));
				strbuf_printf(&r->failed, "%s:%zu\n", r->file, at + 1);
			} else {
				r->passed++;
			}
			eval_cmd_free(&c);
		} else {
			strbuf_printf(&r->report, "%s:%zu: invalid command %s\n", r->file, i + 1, l);
		}
		strbuf_free(&msg);
	}
	mem_free(lines);
	strbuf_free(&content);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
listed(const char *id)
{
	size_t i;

	for (i = 0; known_failures[i] != NULL; i++)
		if (strcmp(known_failures[i], id) == 0)
			return true;
	return false;
}

static void
test_prometheus_scripts(void **state)
{
	char path[4096], **names = NULL;
	size_t nnames = 0, cap = 0, i, total = 0, passed = 0;
	struct strbuf failed_all = STRBUF_INIT, problems = STRBUF_INIT;
	struct dirent *de;
	DIR *d;

	(void)state;
	if (peer_dir == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/promql-v2.42.0", peer_dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".test") != 0)
			continue;
		if (nnames == cap) {
			cap = cap ? cap * 2 : 32;
			names = mem_realloc(names, cap * sizeof(*names));
		}
		names[nnames++] = mem_strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nnames, sizeof(*names), cmp_names);
	assert_true(nnames > 0);
	for (i = 0; i < nnames; i++) {
		struct runner r;

		memset(&r, 0, sizeof(r));
		r.file = names[i];
		snprintf(path, sizeof(path), "%s/promql-v2.42.0/%s", peer_dir, names[i]);
		run_file(&r, path);
		printf("# promql %s: %zu/%zu evals passed\n", names[i], r.passed, r.evals);
		if (r.report.len > 0)
			printf("%s", strbuf_cstr(&r.report));
		total += r.evals;
		passed += r.passed;
		strbuf_append(&failed_all, r.failed.buf, r.failed.len);
		strbuf_free(&r.failed);
		strbuf_free(&r.report);
		tsdb_head_free(r.head);
		promql_engine_free(r.eng);
		mem_free(names[i]);
	}
	mem_free(names);
	printf("# promql total: %zu/%zu evals passed\n", passed, total);
	/* every failure must be listed, every listed eval must fail */
	{
		char *s = failed_all.buf, *nl;

		while (s != NULL && *s != '\0') {
			nl = strchr(s, '\n');
			*nl = '\0';
			if (!listed(s))
				strbuf_printf(&problems, "newly failing: %s\n", s);
			*nl = '\n';
			s = nl + 1;
		}
		for (i = 0; known_failures[i] != NULL; i++) {
			struct strbuf needle = STRBUF_INIT;

			strbuf_printf(&needle, "%s\n", known_failures[i]);
			if (failed_all.buf == NULL || strstr(failed_all.buf, needle.buf) == NULL)
				strbuf_printf(&problems, "now passing (remove from known_failures): %s\n",
				    known_failures[i]);
			strbuf_free(&needle);
		}
	}
	if (problems.len > 0)
		fail_msg("%s", strbuf_cstr(&problems));
	strbuf_free(&failed_all);
	strbuf_free(&problems);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prometheus_scripts),
	};
	int failed;

	peer_dir = getenv("STRATA_PEER_TESTS");
	if (peer_dir != NULL && peer_dir[0] == '\0')
		peer_dir = NULL;
	failed = cmocka_run_group_tests(tests, NULL, NULL);
	if (failed)
		return 1;
	if (peer_dir == NULL) {
		printf("STRATA_PEER_TESTS unset: PromQL test scripts skipped\n");
		return 77;
	}
	return 0;
}
