/* lib/rules/rulefmt.c - Prometheus 2.42 rule files: parse and validate.
 *
 * Prometheus reads a rule file twice (model/rulefmt.Parse): once with
 * yaml.v3 into RuleGroups with known fields enforced, once into a list of
 * raw yaml.Node groups for positions, then validates. This file does the
 * same on the bounded YAML tree of lib/config/yaml.h: the first pass
 * decodes with yaml.v3's rules (type errors collected as "line N: ...",
 * a bad duration aborting the pass, null sequence items skipped, duplicate
 * mapping keys refused), the second pass only checks what decoding into raw
 * nodes can refuse, and validation reports Prometheus' messages with the
 * positions of the record, alert and expr nodes. Syntax errors are
 * reported in yaml.v3's form ("yaml: line N: problem"), computed with
 * libyaml directly.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/yaml.h"
#include "labels/labels.h"
#include "promql/ast.h"
#include "promql/parse.h"
#include "rules/rulefmt.h"
#include "rules/template.h"
#include "util/mem.h"
#include "util/strbuf.h"

/* rulefmt_errors_add: see rulefmt.h. */
void
rulefmt_errors_add(struct rulefmt_errors *e, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	e->v = mem_realloc(e->v, (e->n + 1) * sizeof(*e->v));
	e->v[e->n++] = strbuf_detach(&sb, NULL);
}

/* rulefmt_errors_free: see rulefmt.h. */
void
rulefmt_errors_free(struct rulefmt_errors *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		mem_free(e->v[i]);
	mem_free(e->v);
	e->v = NULL;
	e->n = 0;
}

/* rulefmt_parse_duration: see rulefmt.h. */
int
rulefmt_parse_duration(const char *s, size_t len, int64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "y", 365LL * 24 * 3600 * 1000 }, { "w", 7LL * 24 * 3600 * 1000 },
		{ "d", 24LL * 3600 * 1000 }, { "h", 3600LL * 1000 }, { "m", 60LL * 1000 },
		{ "s", 1000 }, { "ms", 1 },
	};
	size_t i = 0, u = 0;
	int64_t total_ns = 0;
	bool overflow = false;

	if (len == 1 && s[0] == '0') {
		*ms = 0;
		return 0;
	}
	if (len == 0) {
		snprintf(err, errlen, "empty duration string");
		return -1;
	}
	while (i < len) {
		size_t start = i, ulen;
		uint64_t n = 0;
		bool big = false;

		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (n > UINT64_MAX / 10 - 10)
				big = true;
			else
				n = n * 10 + (uint64_t)(s[i] - '0');
			i++;
		}
		if (i == start)
			goto bad;
		/* the longest unit that matches here, in order after the last */
		for (; u < sizeof(units) / sizeof(units[0]); u++) {
			ulen = strlen(units[u].unit);
			if (len - i >= ulen && memcmp(s + i, units[u].unit, ulen) == 0 &&
			    !(units[u].unit[0] == 'm' && ulen == 1 && len - i >= 2 && s[i + 1] == 's'))
				break;
		}
		if (u == sizeof(units) / sizeof(units[0]))
			goto bad;
		i += strlen(units[u].unit);
		/* Go: n > MaxInt64/mult/ms overflows; then dur += n*ms*mult */
		if (big || n > (uint64_t)(INT64_MAX / units[u].ms / 1000000)) {
			overflow = true;
		} else {
			int64_t add = (int64_t)n * units[u].ms * 1000000;

			if (total_ns > INT64_MAX - add)
				overflow = true;
			else
				total_ns += add;
		}
		u++;
	}
	if (overflow) {
		snprintf(err, errlen, "duration out of range");
		return -1;
	}
	*ms = total_ns / 1000000;
	return 0;
bad:
	{
		struct strbuf q = STRBUF_INIT;

		labels_quote(s, len, &q);
		snprintf(err, errlen, "not a valid duration string: %s", strbuf_cstr(&q));
		strbuf_free(&q);
	}
	return -1;
}

/* rulefmt_alert_template_name: see rulefmt.h. */
void
rulefmt_alert_template_name(const char *alert, char *buf, size_t len)
{
	snprintf(buf, len, "__alert_%s", alert);
}

/* --- yaml.v3's view of scalars ------------------------------------------- */

static bool
is_float_syntax(const char *s)
{
	/* yaml.v3's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
	const char *p = s;

	if (*p == '-' || *p == '+')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	} else {
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

enum v3tag { T_NULL, T_BOOL, T_INT, T_FLOAT, T_STR, T_SEQ, T_MAP };

/* v3_resolve gives the tag yaml.v3 resolves a node to and, for numbers,
 * the value. */
static enum v3tag
v3_resolve(const struct ynode *n, int64_t *iv, double *fv, bool *ifits)
{
	static const char *nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *bools[] = { "true", "True", "TRUE", "false", "False", "FALSE" };
	static const char *floats[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
		"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN" };
	char buf[128], *end;
	size_t i, j;

	*ifits = false;
	if (n->kind == YNODE_SEQ)
		return T_SEQ;
	if (n->kind == YNODE_MAP)
		return T_MAP;
	if (!n->plain)
		return n->null ? T_NULL : T_STR;
	for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->s, nulls[i]) == 0)
			return T_NULL;
	for (i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (strcmp(n->s, bools[i]) == 0)
			return T_BOOL;
	for (i = 0; i < sizeof(floats) / sizeof(floats[0]); i++)
		if (strcmp(n->s, floats[i]) == 0)
			return T_FLOAT;
	if (n->len >= sizeof(buf))
		return T_STR;
	for (i = 0, j = 0; i < n->len; i++)
		if (n->s[i] != '_')
			buf[j++] = n->s[i];
	buf[j] = '\0';
	if (j == 0)
		return T_STR;
	{
		int base = 0;
		const char *p = buf;
		bool neg = false;

		if (*p == '+' || *p == '-') {
			neg = *p == '-';
			p++;
		}
		if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
			base = 2;
		else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
			base = 8;
		if (base != 0 && p[2] != '\0') {
			unsigned long long u;

			errno = 0;
			u = strtoull(p + 2, &end, base);
			if (*end == '\0') {
				if (errno == 0 && u <= (unsigned long long)INT64_MAX) {
					*iv = neg ? -(int64_t)u : (int64_t)u;
					*ifits = true;
				}
				return T_INT;
			}
		}
		if ((p[0] >= '0' && p[0] <= '9') || p[0] == '.') {
			long long v;

			errno = 0;
			v = strtoll(buf, &end, 0);
			if (*end == '\0' && errno == 0) {
				*iv = v;
				*ifits = true;
				return T_INT;
			}
			if (*end == '\0' && !neg) {
				errno = 0;
				(void)strtoull(buf, &end, 0);
				if (*end == '\0' && errno == 0)
					return T_INT;
			}
		}
	}
	if (is_float_syntax(buf)) {
		errno = 0;
		*fv = strtod(buf, &end);
		if (*end == '\0')
			return T_FLOAT;
	}
	return T_STR;
}

static const char *
v3_tag_name(enum v3tag t)
{
	switch (t) {
	case T_NULL: return "!!null";
	case T_BOOL: return "!!bool";
	case T_INT: return "!!int";
	case T_FLOAT: return "!!float";
	case T_STR: return "!!str";
	case T_SEQ: return "!!seq";
	case T_MAP: return "!!map";
	}
	return "!!str";
}

/* --- first pass: decoding into RuleGroups ---------------------------------- */

struct dec {
	struct strbuf terrors;	/* "\n  line N: ..." each */
	size_t nterrors;
	char fatal[512];	/* a duration error aborts the pass */
	bool failed;
};

static void dec_terror(struct dec *d, const struct ynode *n, const char *into)
{
	int64_t iv;
	double fv;
	bool fits;
	enum v3tag t = v3_resolve(n, &iv, &fv, &fits);

	strbuf_printf(&d->terrors, "\n  line %u: cannot unmarshal %s", n->line, v3_tag_name(t));
	if (t != T_SEQ && t != T_MAP) {
		if (n->len > 10)
			strbuf_printf(&d->terrors, " `%.7s...`", n->s);
		else
			strbuf_printf(&d->terrors, " `%s`", n->s);
	}
	strbuf_printf(&d->terrors, " into %s", into);
	d->nterrors++;
}

/* dec_unique_keys checks a mapping for repeated keys as yaml.v3 does.
 * Returns false (errors recorded) when some key repeats. */
static bool
dec_unique_keys(struct dec *d, const struct ynode *map)
{
	size_t i, j;
	bool ok = true;

	for (i = 0; i < map->n; i++) {
		const struct ynode *ki = map->v[2 * i];

		for (j = i + 1; j < map->n; j++) {
			const struct ynode *kj = map->v[2 * j];

			if (ki->kind == kj->kind && ki->kind == YNODE_SCALAR &&
			    ki->len == kj->len && memcmp(ki->s, kj->s, ki->len) == 0) {
				struct strbuf q = STRBUF_INIT;

				labels_quote(kj->s, kj->len, &q);
				strbuf_printf(&d->terrors, "\n  line %u: mapping key %s already defined at line %u",
				    kj->line, strbuf_cstr(&q), ki->line);
				strbuf_free(&q);
				d->nterrors++;
				ok = false;
			}
		}
	}
	return ok;
}

/* dec_string decodes a string field: any scalar, null leaves "". */
static char *
dec_string(struct dec *d, const struct ynode *n)
{
	if (n->kind != YNODE_SCALAR) {
		dec_terror(d, n, "string");
		return mem_strdup("");
	}
	if (n->null && n->plain)
		return mem_strdup("");
	return mem_strndup(n->s, n->len);
}

/* dec_duration decodes a model.Duration (through a string). */
static int64_t
dec_duration(struct dec *d, const struct ynode *n)
{
	char err[256];
	int64_t ms = 0;

	if (n->kind != YNODE_SCALAR) {
		dec_terror(d, n, "string");
		return 0;
	}
	if (n->null && n->plain)
		return 0;
	if (rulefmt_parse_duration(n->s, n->len, &ms, err, sizeof(err)) < 0) {
		if (!d->failed) {
			snprintf(d->fatal, sizeof(d->fatal), "%s", err);
			d->failed = true;
		}
		return 0;
	}
	return ms;
}

static int64_t
dec_int(struct dec *d, const struct ynode *n)
{
	int64_t iv = 0;
	double fv = 0;
	bool fits;
	enum v3tag t = v3_resolve(n, &iv, &fv, &fits);

	switch (t) {
	case T_NULL:
		return 0;
	case T_INT:
		if (fits)
			return iv;
		break;
	case T_FLOAT:
		if (fv <= 9223372036854775807.0 && fv >= -9223372036854775808.0 && fv == fv)
			return (int64_t)fv;
		break;
	default:
		break;
	}
	dec_terror(d, n, "int");
	return 0;
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rulefmt_kv *)a)->name, ((const struct rulefmt_kv *)b)->name);
}

/* dec_map decodes a map[string]string. */
static void
dec_map(struct dec *d, const struct ynode *n, struct rulefmt_kv **out, size_t *nout)
{
	size_t i;

	*out = NULL;
	*nout = 0;
	if (n->kind == YNODE_SCALAR && n->null && n->plain)
		return;
	if (n->kind != YNODE_MAP) {
		dec_terror(d, n, "map[string]string");
		return;
	}
	if (!dec_unique_keys(d, n))
		return;
	*out = mem_calloc(n->n + 1, sizeof(**out));
	for (i = 0; i < n->n; i++) {
		const struct ynode *k = n->v[2 * i], *v = n->v[2 * i + 1];

		if (k->kind != YNODE_SCALAR) {
			dec_terror(d, k, "string");
			continue;
		}
		if (k->null && k->plain)
			continue;	/* yaml.v3 drops a null key */
		if (v->kind != YNODE_SCALAR) {
			dec_terror(d, v, "string");
			continue;
		}
		(*out)[*nout].name = mem_strndup(k->s, k->len);
		(*out)[*nout].value = (v->null && v->plain) ? mem_strdup("") : mem_strndup(v->s, v->len);
		(*nout)++;
	}
	qsort(*out, *nout, sizeof(**out), kv_cmp);
}

/* A rule's yaml.Node fields, for validation. */
struct rule_nodes {
	const struct ynode *record, *alert, *expr;
};

static const char *
node_value(const struct ynode *n)
{
	/* a yaml.Node's Value: the scalar as written ("null" stays "null") */
	if (n == NULL || n->kind != YNODE_SCALAR)
		return "";
	return n->s;
}

static void
dec_rule(struct dec *d, const struct ynode *n, struct rulefmt_rule *r, struct rule_nodes *rn)
{
	size_t i;

	memset(rn, 0, sizeof(*rn));
	if (!dec_unique_keys(d, n))
		return;
	for (i = 0; i < n->n; i++) {
		const char *key = ydoc_map_key(n, i);
		const struct ynode *k = n->v[2 * i], *v = ydoc_map_value(n, i);

		if (k->kind != YNODE_SCALAR) {
			dec_terror(d, k, "string");
			continue;
		}
		if (strcmp(key, "record") == 0) {
			rn->record = v;
		} else if (strcmp(key, "alert") == 0) {
			rn->alert = v;
		} else if (strcmp(key, "expr") == 0) {
			rn->expr = v;
		} else if (strcmp(key, "for") == 0) {
			r->for_ms = dec_duration(d, v);
		} else if (strcmp(key, "keep_firing_for") == 0) {
			r->keep_firing_for_ms = dec_duration(d, v);
		} else if (strcmp(key, "labels") == 0) {
			dec_map(d, v, &r->labels, &r->n_labels);
		} else if (strcmp(key, "annotations") == 0) {
			dec_map(d, v, &r->annotations, &r->n_annotations);
		} else {
			strbuf_printf(&d->terrors, "\n  line %u: field %s not found in type rulefmt.RuleNode",
			    k->line, key);
			d->nterrors++;
		}
	}
	r->alert = node_value(rn->alert)[0] != '\0';
	r->name = mem_strdup(r->alert ? node_value(rn->alert) : node_value(rn->record));
	r->expr = mem_strdup(node_value(rn->expr));
}

struct group_nodes {
	struct rule_nodes *rules;	/* per decoded rule */
};

static void
dec_group(struct dec *d, const struct ynode *n, struct rulefmt_group *g, struct group_nodes *gn)
{
	size_t i, j;

	if (!dec_unique_keys(d, n))
		return;
	for (i = 0; i < n->n; i++) {
		const char *key = ydoc_map_key(n, i);
		const struct ynode *k = n->v[2 * i], *v = ydoc_map_value(n, i);

		if (k->kind != YNODE_SCALAR) {
			dec_terror(d, k, "string");
			continue;
		}
		if (strcmp(key, "name") == 0) {
			mem_free(g->name);
			g->name = dec_string(d, v);
		} else if (strcmp(key, "interval") == 0) {
			g->interval_ms = dec_duration(d, v);
		} else if (strcmp(key, "limit") == 0) {
			g->limit = dec_int(d, v);
		} else if (strcmp(key, "rules") == 0) {
			if (v->kind == YNODE_SCALAR && v->null && v->plain)
				continue;
			if (v->kind != YNODE_SEQ) {
				dec_terror(d, v, "[]rulefmt.RuleNode");
				continue;
			}
			for (j = 0; j < g->n_rules; j++) {
				/* a repeated rules key was refused above; never here */
			}
			g->rules = mem_calloc(v->n + 1, sizeof(*g->rules));
			gn->rules = mem_calloc(v->n + 1, sizeof(*gn->rules));
			for (j = 0; j < v->n; j++) {
				const struct ynode *it = v->v[j];

				if (it->kind == YNODE_SCALAR && it->null && it->plain)
					continue;	/* yaml.v3 skips a null item */
				if (it->kind != YNODE_MAP) {
					dec_terror(d, it, "rulefmt.RuleNode");
					continue;
				}
				dec_rule(d, it, &g->rules[g->n_rules], &gn->rules[g->n_rules]);
				g->n_rules++;
			}
		} else {
			strbuf_printf(&d->terrors, "\n  line %u: field %s not found in type rulefmt.RuleGroup",
			    k->line, key);
			d->nterrors++;
		}
	}
	if (g->name == NULL)
		g->name = mem_strdup("");
}

static void
rule_free(struct rulefmt_rule *r)
{
	size_t i;

	mem_free(r->name);
	mem_free(r->expr);
	for (i = 0; i < r->n_labels; i++) {
		mem_free(r->labels[i].name);
		mem_free(r->labels[i].value);
	}
	mem_free(r->labels);
	for (i = 0; i < r->n_annotations; i++) {
		mem_free(r->annotations[i].name);
		mem_free(r->annotations[i].value);
	}
	mem_free(r->annotations);
}

/* rulefmt_file_free: see rulefmt.h. */
void
rulefmt_file_free(struct rulefmt_file *f)
{
	size_t i, j;

	if (f == NULL)
		return;
	for (i = 0; i < f->n_groups; i++) {
		struct rulefmt_group *g = &f->groups[i];

		for (j = 0; j < g->n_rules; j++)
			rule_free(&g->rules[j]);
		mem_free(g->rules);
		mem_free(g->name);
	}
	mem_free(f->groups);
	mem_free(f->path);
	mem_free(f);
}

/* --- syntax errors in yaml.v3's words ------------------------------------- */

static void
yaml_go_error(const char *buf, size_t len, struct strbuf *out)
{
	yaml_parser_t p;
	yaml_event_t ev;
	bool failed = false;
	size_t line = 0;

	if (!yaml_parser_initialize(&p)) {
		strbuf_puts(out, "yaml: cannot initialise the parser");
		return;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	for (;;) {
		bool end;

		if (!yaml_parser_parse(&p, &ev)) {
			failed = true;
			break;
		}
		end = ev.type == YAML_DOCUMENT_END_EVENT || ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	if (!failed) {
		yaml_parser_delete(&p);
		return;
	}
	if (p.context_mark.line != 0) {
		line = p.context_mark.line;
		if (p.error == YAML_SCANNER_ERROR)
			line++;
	} else if (p.problem_mark.line != 0) {
		line = p.problem_mark.line;
		if (p.error == YAML_SCANNER_ERROR)
			line++;
	}
	strbuf_puts(out, "yaml: ");
	if (line != 0)
		strbuf_printf(out, "line %zu: ", line);
	strbuf_puts(out, p.problem != NULL && p.problem[0] ? p.problem :
	    "unknown problem parsing YAML content");
	yaml_parser_delete(&p);
}

/* --- validation (RuleGroups.Validate, RuleNode.Validate) --------------------- */

static void
pos_prefix(struct strbuf *sb, const struct ynode *n)
{
	if (n == NULL)
		strbuf_puts(sb, "0:0: ");
	else
		strbuf_printf(sb, "%u:%u: ", n->line, n->col);
}

/* rule_error appends "FILE: [L:C: [L:C: ]]group "g", rule N, "name": msg". */
static void
rule_error(struct rulefmt_errors *errs, const char *file, const char *group, size_t idx,
    const char *rname, bool has_node, const struct ynode *node, const struct ynode *alt,
    const char *msg)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_printf(&sb, "%s: ", file);
	if (has_node) {
		pos_prefix(&sb, node);
		if (alt != NULL)
			pos_prefix(&sb, alt);
	}
	strbuf_puts(&sb, "group ");
	labels_quote(group, strlen(group), &sb);
	strbuf_printf(&sb, ", rule %zu, ", idx);
	labels_quote(rname, strlen(rname), &sb);
	strbuf_printf(&sb, ": %s", msg);
	rulefmt_errors_add(errs, "%s", strbuf_cstr(&sb));
	strbuf_free(&sb);
}

static bool
is_valid_utf8(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n, k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
		else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
		else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
		else return false;
		if (i + n > len)
			return false;
		for (k = 1; k < n; k++) {
			if (((unsigned char)s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			return false;
		i += n;
	}
	return true;
}

static void
check_template(struct rulefmt_errors *errs, const char *file, const char *group, size_t idx,
    const char *alert, const char *what, const struct rulefmt_kv *kv)
{
	struct strbuf text = STRBUF_INIT;
	char name[512], err[1024];
	struct tmpl *t;

	rulefmt_alert_template_name(alert, name, sizeof(name));
	strbuf_puts(&text, TMPL_ALERT_DEFS);
	strbuf_puts(&text, kv->value);
	t = tmpl_parse(text.buf, text.len, name, err, sizeof(err));
	if (t == NULL) {
		struct strbuf msg = STRBUF_INIT;

		strbuf_printf(&msg, "%s ", what);
		labels_quote(kv->name, strlen(kv->name), &msg);
		strbuf_printf(&msg, ": %s", err);
		rule_error(errs, file, group, idx, alert, false, NULL, NULL, strbuf_cstr(&msg));
		strbuf_free(&msg);
	}
	tmpl_free(t);
	strbuf_free(&text);
}

static void
validate_rule(struct rulefmt_errors *errs, const char *file, const char *group, size_t idx,
    const struct rulefmt_rule *r, const struct rule_nodes *rn)
{
	const char *record = node_value(rn->record), *alert = node_value(rn->alert);
	const char *expr = node_value(rn->expr);
	const char *rname = alert[0] ? alert : record;
	char msg[2048];
	size_t i;

	if (record[0] && alert[0])
		rule_error(errs, file, group, idx, rname, true, rn->record, rn->alert,
		    "only one of 'record' and 'alert' must be set");
	if (!record[0] && !alert[0])
		rule_error(errs, file, group, idx, rname, true, rn->record, NULL,
		    "one of 'record' or 'alert' must be set");
	if (!expr[0]) {
		rule_error(errs, file, group, idx, rname, true, rn->expr, NULL,
		    "field 'expr' must be set in rule");
	} else {
		char perr[1024];
		struct promql_node *tree = promql_parse(expr, strlen(expr), perr, sizeof(perr));

		if (tree == NULL) {
			snprintf(msg, sizeof(msg), "could not parse expression: %s", perr);
			rule_error(errs, file, group, idx, rname, true, rn->expr, NULL, msg);
		}
		promql_node_free(tree);
	}
	if (record[0]) {
		if (r->n_annotations > 0)
			rule_error(errs, file, group, idx, rname, true, rn->record, NULL,
			    "invalid field 'annotations' in recording rule");
		if (r->for_ms != 0)
			rule_error(errs, file, group, idx, rname, true, rn->record, NULL,
			    "invalid field 'for' in recording rule");
		if (r->keep_firing_for_ms != 0)
			rule_error(errs, file, group, idx, rname, true, rn->record, NULL,
			    "invalid field 'keep_firing_for' in recording rule");
		if (!labels_is_valid_metric_name(record, strlen(record))) {
			snprintf(msg, sizeof(msg), "invalid recording rule name: %s", record);
			rule_error(errs, file, group, idx, rname, true, rn->record, NULL, msg);
		}
	}
	for (i = 0; i < r->n_labels; i++) {
		const struct rulefmt_kv *kv = &r->labels[i];

		if (!labels_is_valid_name(kv->name, strlen(kv->name)) ||
		    strcmp(kv->name, LABEL_METRIC_NAME) == 0) {
			snprintf(msg, sizeof(msg), "invalid label name: %s", kv->name);
			rule_error(errs, file, group, idx, rname, false, NULL, NULL, msg);
		}
		if (!is_valid_utf8(kv->value, strlen(kv->value))) {
			snprintf(msg, sizeof(msg), "invalid label value: %s", kv->value);
			rule_error(errs, file, group, idx, rname, false, NULL, NULL, msg);
		}
	}
	for (i = 0; i < r->n_annotations; i++) {
		const struct rulefmt_kv *kv = &r->annotations[i];

		if (!labels_is_valid_name(kv->name, strlen(kv->name))) {
			snprintf(msg, sizeof(msg), "invalid annotation name: %s", kv->name);
			rule_error(errs, file, group, idx, rname, false, NULL, NULL, msg);
		}
	}
	if (alert[0]) {
		for (i = 0; i < r->n_labels; i++)
			check_template(errs, file, group, idx, alert, "label", &r->labels[i]);
		for (i = 0; i < r->n_annotations; i++)
			check_template(errs, file, group, idx, alert, "annotation", &r->annotations[i]);
	}
}

/* rulefmt_parse: see rulefmt.h. */
int
rulefmt_parse(const char *buf, size_t len, const char *name, struct rulefmt_file **out,
    struct rulefmt_errors *errs)
{
	struct rulefmt_file *f = mem_calloc(1, sizeof(*f));
	struct group_nodes *gnodes = NULL;
	const struct ynode *root, *groups = NULL;
	struct ydoc *doc;
	struct dec d;
	char yerr[1024];
	size_t i, j, nerr0 = errs->n, ngroup_nodes = 0;
	int rc = -1;

	memset(&d, 0, sizeof(d));
	f->path = mem_strdup(name);
	*out = NULL;
	doc = ydoc_parse(buf, len, name, yerr, sizeof(yerr));
	if (doc == NULL) {
		struct strbuf sb = STRBUF_INIT;

		yaml_go_error(buf, len, &sb);
		if (sb.len == 0) {
			/* libyaml accepted it: one of ydoc's limits refused it */
			rulefmt_errors_add(errs, "%s", yerr);
		} else {
			/* both of Prometheus' passes report the syntax error */
			rulefmt_errors_add(errs, "%s: %s", name, strbuf_cstr(&sb));
			rulefmt_errors_add(errs, "%s: %s", name, strbuf_cstr(&sb));
		}
		strbuf_free(&sb);
		goto done;
	}
	root = doc->root;

	/* pass 1: into RuleGroups, known fields */
	if (root != NULL && !(root->kind == YNODE_SCALAR && root->null && root->plain)) {
		if (root->kind != YNODE_MAP) {
			dec_terror(&d, root, "rulefmt.RuleGroups");
		} else if (dec_unique_keys(&d, root)) {
			for (i = 0; i < root->n; i++) {
				const struct ynode *k = root->v[2 * i], *v = root->v[2 * i + 1];

				if (k->kind != YNODE_SCALAR) {
					dec_terror(&d, k, "string");
					continue;
				}
				if (strcmp(ydoc_map_key(root, i), "groups") != 0) {
					strbuf_printf(&d.terrors,
					    "\n  line %u: field %s not found in type rulefmt.RuleGroups",
					    k->line, ydoc_map_key(root, i));
					d.nterrors++;
					continue;
				}
				groups = v;
				if (v->kind == YNODE_SCALAR && v->null && v->plain)
					continue;
				if (v->kind != YNODE_SEQ) {
					dec_terror(&d, v, "[]rulefmt.RuleGroup");
					continue;
				}
				f->groups = mem_calloc(v->n + 1, sizeof(*f->groups));
				gnodes = mem_calloc(v->n + 1, sizeof(*gnodes));
				ngroup_nodes = v->n;
				for (j = 0; j < v->n; j++) {
					const struct ynode *it = v->v[j];

					if (it->kind == YNODE_SCALAR && it->null && it->plain)
						continue;
					if (it->kind != YNODE_MAP) {
						dec_terror(&d, it, "rulefmt.RuleGroup");
						continue;
					}
					dec_group(&d, it, &f->groups[f->n_groups], &gnodes[f->n_groups]);
					f->n_groups++;
				}
			}
		}
	}
	if (d.failed)
		rulefmt_errors_add(errs, "%s: %s", name, d.fatal);
	else if (d.nterrors > 0)
		rulefmt_errors_add(errs, "%s: yaml: unmarshal errors:%s", name, strbuf_cstr(&d.terrors));

	/* pass 2: into ruleGroups{Groups []yaml.Node} */
	strbuf_reset(&d.terrors);
	d.nterrors = 0;
	if (root != NULL && !(root->kind == YNODE_SCALAR && root->null && root->plain)) {
		if (root->kind != YNODE_MAP) {
			dec_terror(&d, root, "rulefmt.ruleGroups");
		} else if (dec_unique_keys(&d, root) && groups != NULL &&
		    !(groups->kind == YNODE_SCALAR && groups->null && groups->plain) &&
		    groups->kind != YNODE_SEQ) {
			dec_terror(&d, groups, "[]yaml.Node");
		}
	}
	if (d.nterrors > 0)
		rulefmt_errors_add(errs, "%s: yaml: unmarshal errors:%s", name, strbuf_cstr(&d.terrors));
	if (errs->n > nerr0)
		goto done;

	/* Validate: positions come from the raw group list (null items included). */
	for (i = 0; i < f->n_groups; i++) {
		struct rulefmt_group *g = &f->groups[i];
		const struct ynode *gn = i < ngroup_nodes ? groups->v[i] : NULL;

		if (g->name[0] == '\0') {
			if (gn != NULL)
				rulefmt_errors_add(errs, "%s: %u:%u: Groupname must not be empty", name,
				    gn->line, gn->col);
			else
				rulefmt_errors_add(errs, "%s: 0:0: Groupname must not be empty", name);
		}
		for (j = 0; j < i; j++)
			if (strcmp(f->groups[j].name, g->name) == 0) {
				rulefmt_errors_add(errs, "%s: %u:%u: groupname: \"%s\" is repeated in the same file",
				    name, gn != NULL ? gn->line : 0, gn != NULL ? gn->col : 0, g->name);
				break;
			}
		for (j = 0; j < g->n_rules; j++)
			validate_rule(errs, name, g->name, j + 1, &g->rules[j], &gnodes[i].rules[j]);
	}
	if (errs->n > nerr0)
		goto done;
	*out = f;
	f = NULL;
	rc = 0;
done:
	if (gnodes != NULL) {
		for (i = 0; i < ngroup_nodes; i++)
			mem_free(gnodes[i].rules);
		mem_free(gnodes);
	}
	strbuf_free(&d.terrors);
	ydoc_free(doc);
	rulefmt_file_free(f);
	return rc;
}

/* rulefmt_load: see rulefmt.h. */
int
rulefmt_load(const char *path, struct rulefmt_file **out, struct rulefmt_errors *errs)
{
	struct strbuf sb = STRBUF_INIT;
	FILE *fp;
	char chunk[65536];
	size_t n;
	int rc;

	*out = NULL;
	fp = fopen(path, "rb");
	if (fp == NULL) {
		char msg[256];

		/* Go's syscall messages are lower case */
		snprintf(msg, sizeof(msg), "%s", strerror(errno));
		if (msg[0] >= 'A' && msg[0] <= 'Z')
			msg[0] = (char)(msg[0] - 'A' + 'a');
		rulefmt_errors_add(errs, "%s: open %s: %s", path, path, msg);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (sb.len + n > YDOC_MAX_INPUT) {
			fclose(fp);
			strbuf_free(&sb);
			rulefmt_errors_add(errs, "%s: file is larger than the limit of %u bytes", path,
			    YDOC_MAX_INPUT);
			return -1;
		}
		strbuf_append(&sb, chunk, n);
	}
	if (ferror(fp)) {
		rulefmt_errors_add(errs, "%s: read %s: %s", path, path, strerror(errno));
		fclose(fp);
		strbuf_free(&sb);
		return -1;
	}
	fclose(fp);
	rc = rulefmt_parse(sb.buf ? sb.buf : "", sb.len, path, out, errs);
	strbuf_free(&sb);
	return rc;
}
