/* lib/labels/matcher.c - label matchers (=, !=, =~, !~) as Prometheus has them.
 *
 * A matcher owns copies of its name and value and, for the regex ops, a
 * compiled fully anchored struct regex (which has the literal and ".*" fast
 * paths). It is immutable after matcher_new(), so any thread may use it. A
 * missing label is matched as the empty string.
 */
#include "config.h"

#include "labels/matcher.h"

#include <stdio.h>
#include <string.h>

#include "util/mem.h"

struct matcher *
matcher_new(enum matcher_op op, const char *name, const char *value, char *err, size_t errlen)
{
	struct matcher *m;

	if (op != MATCH_EQUAL && op != MATCH_NOT_EQUAL && op != MATCH_REGEX &&
	    op != MATCH_NOT_REGEX) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "invalid matcher type %d", (int)op);
		return NULL;
	}
	m = mem_calloc(1, sizeof(*m));
	m->op = op;
	m->name = mem_strdup(name);
	m->value = mem_strdup(value);
	if (op == MATCH_REGEX || op == MATCH_NOT_REGEX) {
		m->re = regex_new(value, strlen(value), err, errlen);
		if (m->re == NULL) {
			matcher_free(m);
			return NULL;
		}
	}
	return m;
}

void
matcher_free(struct matcher *m)
{
	if (m == NULL)
		return;
	regex_free(m->re);
	mem_free(m->name);
	mem_free(m->value);
	mem_free(m);
}

bool
matcher_matches(const struct matcher *m, const char *value)
{
	switch (m->op) {
	case MATCH_EQUAL:
		return strcmp(m->value, value) == 0;
	case MATCH_NOT_EQUAL:
		return strcmp(m->value, value) != 0;
	case MATCH_REGEX:
		return regex_match(m->re, value, strlen(value));
	case MATCH_NOT_REGEX:
		return !regex_match(m->re, value, strlen(value));
	}
	return false;
}

bool
matcher_matches_empty(const struct matcher *m)
{
	return matcher_matches(m, "");
}

const char *
matcher_literal(const struct matcher *m)
{
	if (m->op == MATCH_EQUAL)
		return m->value;
	if (m->op == MATCH_REGEX && m->re != NULL)
		return regex_literal(m->re);
	return NULL;
}

bool
matcher_matches_labels(const struct matcher *m, const struct labels *ls)
{
	const char *v = labels_get(ls, m->name);

	return matcher_matches(m, v != NULL ? v : "");
}

const char *
matcher_op_string(enum matcher_op op)
{
	switch (op) {
	case MATCH_EQUAL:
		return "=";
	case MATCH_NOT_EQUAL:
		return "!=";
	case MATCH_REGEX:
		return "=~";
	case MATCH_NOT_REGEX:
		return "!~";
	}
	return "?";
}

void
matcher_format(const struct matcher *m, struct strbuf *out)
{
	strbuf_puts(out, m->name);
	strbuf_puts(out, matcher_op_string(m->op));
	labels_quote(m->value, strlen(m->value), out);
}
