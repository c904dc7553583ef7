/* lib/config/yaml.c - a small YAML document tree on libyaml, with limits.
 *
 * The builder consumes libyaml's parser events and keeps a stack of the
 * open collections (at most YDOC_MAX_DEPTH). Every node is recorded in
 * doc->all so that aliases can share nodes and ydoc_free() can still free
 * each node exactly once. A node's weight is the number of nodes it would
 * have with every alias expanded; a collection adds each child's weight as
 * the child completes and refuses the document past YDOC_MAX_NODES, so an
 * alias bomb is stopped after a bounded amount of work. Anchors live in a
 * small open-addressing table (the latest definition of a name wins, as in
 * YAML). Single-threaded; no global state.
 *
 * The emitter half drives libyaml's emitter into a strbuf with the scalar
 * styles Go's yaml.v2 chooses, so marshalled configs look like Prometheus'.
 */
#include "config.h"

#include "config/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "util/mem.h"

#define YTAG_BINARY	"tag:yaml.org,2002:binary"
#define YTAG_STR	"tag:yaml.org,2002:str"
#define YTAG_NULL	"tag:yaml.org,2002:null"

struct ybuild {
	struct ydoc *doc;
	const char *buf;
	size_t len;
	const char *file;
	char *err;
	size_t errlen;
	struct ynode *stack[YDOC_MAX_DEPTH];
	size_t depth;
	/* anchors: open addressing, power-of-two capacity */
	struct ynode **anchors;
	size_t nanchors, capanchors;
};

static void
yb_fail(struct ybuild *b, size_t line, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
yb_fail(struct ybuild *b, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->errlen == 0)
		return;
	n = snprintf(b->err, b->errlen, "%s:%zu:%zu: ", b->file, line, col);
	if (n < 0 || (size_t)n >= b->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static uint64_t
yb_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void
yb_anchor_put(struct ybuild *b, struct ynode *n)
{
	size_t i, mask;

	if ((b->nanchors + 1) * 2 > b->capanchors) {
		size_t ncap = b->capanchors ? b->capanchors * 2 : 16, j;
		struct ynode **nv = mem_calloc(ncap, sizeof(*nv));

		for (j = 0; j < b->capanchors; j++) {
			struct ynode *a = b->anchors[j];

			if (a == NULL)
				continue;
			for (i = yb_hash(a->anchor) & (ncap - 1); nv[i];
			    i = (i + 1) & (ncap - 1))
				;
			nv[i] = a;
		}
		mem_free(b->anchors);
		b->anchors = nv;
		b->capanchors = ncap;
	}
	mask = b->capanchors - 1;
	for (i = yb_hash(n->anchor) & mask; b->anchors[i]; i = (i + 1) & mask) {
		if (strcmp(b->anchors[i]->anchor, n->anchor) == 0) {
			b->anchors[i] = n;	/* redefinition: latest wins */
			return;
		}
	}
	b->anchors[i] = n;
	b->nanchors++;
}

static struct ynode *
yb_anchor_get(struct ybuild *b, const char *name)
{
	size_t i, mask;

	if (b->capanchors == 0)
		return NULL;
	mask = b->capanchors - 1;
	for (i = yb_hash(name) & mask; b->anchors[i]; i = (i + 1) & mask)
		if (strcmp(b->anchors[i]->anchor, name) == 0)
			return b->anchors[i];
	return NULL;
}

static struct ynode *
yb_node(struct ybuild *b, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ydoc *d = b->doc;
	struct ynode *n;

	if (d->nall >= YDOC_MAX_NODES) {
		yb_fail(b, m->line + 1, m->column + 1,
		    "document has more than %d nodes", YDOC_MAX_NODES);
		return NULL;
	}
	if (d->nall == d->capall) {
		d->capall = d->capall ? d->capall * 2 : 64;
		d->all = mem_realloc(d->all, d->capall * sizeof(*d->all));
	}
	n = mem_calloc(1, sizeof(*n));
	n->kind = kind;
	n->line = (uint32_t)(m->line + 1);
	n->col = (uint32_t)(m->column + 1);
	n->weight = 1;
	d->all[d->nall++] = n;
	return n;
}

static void
yb_push_child(struct ynode *p, struct ynode *c)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->v = mem_realloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n++] = c;
}

/* yb_attach hangs a completed node under the innermost open collection (or
 * makes it the root) and charges its weight there. Returns 0 or -1. */
static int
yb_attach(struct ybuild *b, struct ynode *n)
{
	struct ynode *p;

	if (b->depth == 0) {
		if (b->doc->root == NULL)
			b->doc->root = n;
		return 0;
	}
	p = b->stack[b->depth - 1];
	yb_push_child(p, n);
	p->weight += n->weight;
	if (p->weight > YDOC_MAX_NODES) {
		yb_fail(b, p->line, p->col,
		    "document has more than %d nodes once aliases are expanded",
		    YDOC_MAX_NODES);
		return -1;
	}
	return 0;
}

static int
yb_b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* yb_base64 decodes n->s in place (ignoring whitespace). Returns 0 or -1. */
static int
yb_base64(struct ynode *n)
{
	size_t i, o = 0, pad = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (i = 0; i < n->len; i++) {
		int c = (unsigned char)n->s[i], v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = yb_b64val(c)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			n->s[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (pad > 2)
		return -1;
	n->s[o] = '\0';
	n->len = o;
	return 0;
}

static bool
yb_is_null_word(const char *s, size_t len)
{
	return len == 0 || (len == 1 && s[0] == '~') ||
	    (len == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
	    memcmp(s, "NULL", 4) == 0));
}

static int
yb_scalar(struct ybuild *b, yaml_event_t *ev)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	struct ynode *n;

	if (ev->data.scalar.length > YDOC_MAX_SCALAR) {
		yb_fail(b, ev->start_mark.line + 1, ev->start_mark.column + 1,
		    "scalar of %zu bytes is longer than the limit of %u bytes",
		    ev->data.scalar.length, YDOC_MAX_SCALAR);
		return -1;
	}
	if ((n = yb_node(b, YNODE_SCALAR, &ev->start_mark)) == NULL)
		return -1;
	n->len = ev->data.scalar.length;
	n->s = mem_strndup((const char *)ev->data.scalar.value, n->len);
	n->done = true;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (tag != NULL) {
		n->plain = false;
		if (strcmp(tag, YTAG_BINARY) == 0) {
			if (yb_base64(n) < 0) {
				yb_fail(b, n->line, n->col,
				    "!!binary value contains invalid base64 data");
				return -1;
			}
			n->binary = true;
		} else if (strcmp(tag, YTAG_NULL) == 0) {
			n->null = true;
		}
	} else if (n->plain && yb_is_null_word(n->s, n->len)) {
		n->null = true;
	}
	if (ev->data.scalar.anchor != NULL) {
		n->anchor = mem_strdup((const char *)ev->data.scalar.anchor);
		yb_anchor_put(b, n);
	}
	return yb_attach(b, n);
}

static int
yb_open(struct ybuild *b, yaml_event_t *ev, enum ynode_kind kind)
{
	const yaml_char_t *anchor = kind == YNODE_MAP ?
	    ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	struct ynode *n;

	if (b->depth >= YDOC_MAX_DEPTH) {
		yb_fail(b, ev->start_mark.line + 1, ev->start_mark.column + 1,
		    "document nested deeper than %d levels", YDOC_MAX_DEPTH);
		return -1;
	}
	if ((n = yb_node(b, kind, &ev->start_mark)) == NULL)
		return -1;
	if (anchor != NULL) {
		n->anchor = mem_strdup((const char *)anchor);
		yb_anchor_put(b, n);
	}
	b->stack[b->depth++] = n;
	return 0;
}

static bool
yb_is_merge_key(const struct ynode *k)
{
	return k->kind == YNODE_SCALAR && k->plain && k->len == 2 &&
	    k->s[0] == '<' && k->s[1] == '<';
}

static bool
yb_key_eq(const struct ynode *a, const struct ynode *b)
{
	return a->kind == YNODE_SCALAR && b->kind == YNODE_SCALAR &&
	    a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

/* yb_has_key tells whether pairs v[0..2n) hold key k. */
static bool
yb_has_key(struct ynode **v, size_t n, const struct ynode *k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (yb_key_eq(v[2 * i], k))
			return true;
	return false;
}

/* yb_merge folds "<<" keys of map m into its own pairs: explicit keys win,
 * then the merged maps in order (an earlier one wins over a later one).
 * Returns 0 or -1. */
static int
yb_merge(struct ybuild *b, struct ynode *m)
{
	struct ynode **nv, *srcs[64];
	size_t i, j, k, nn = 0, nsrc = 0, work = 0, cap;
	bool any = false;

	for (i = 0; i < m->n; i++)
		any |= yb_is_merge_key(m->v[2 * i]);
	if (!any)
		return 0;
	cap = 0;
	for (i = 0; i < m->n; i++) {
		struct ynode *k2 = m->v[2 * i], *val = m->v[2 * i + 1];

		if (!yb_is_merge_key(k2))
			continue;
		if (val->kind == YNODE_MAP) {
			if (nsrc == 64)
				goto toomany;
			srcs[nsrc++] = val;
			cap += val->n;
		} else if (val->kind == YNODE_SEQ) {
			for (j = 0; j < val->n; j++) {
				if (val->v[j]->kind != YNODE_MAP) {
					yb_fail(b, val->v[j]->line, val->v[j]->col,
					    "map merge requires map or sequence of maps as the value");
					return -1;
				}
				if (nsrc == 64)
					goto toomany;
				srcs[nsrc++] = val->v[j];
				cap += val->v[j]->n;
			}
		} else {
			yb_fail(b, val->line, val->col,
			    "map merge requires map or sequence of maps as the value");
			return -1;
		}
	}
	cap += m->n;
	nv = mem_alloc(2 * cap * sizeof(*nv));
	for (i = 0; i < m->n; i++) {
		if (yb_is_merge_key(m->v[2 * i]))
			continue;
		nv[2 * nn] = m->v[2 * i];
		nv[2 * nn + 1] = m->v[2 * i + 1];
		nn++;
	}
	for (k = 0; k < nsrc; k++) {
		for (j = 0; j < srcs[k]->n; j++) {
			work += nn;
			if (work > 10000000) {
				mem_free(nv);
				yb_fail(b, m->line, m->col, "map merge too large");
				return -1;
			}
			if (yb_has_key(nv, nn, srcs[k]->v[2 * j]))
				continue;
			nv[2 * nn] = srcs[k]->v[2 * j];
			nv[2 * nn + 1] = srcs[k]->v[2 * j + 1];
			nn++;
		}
	}
	mem_free(m->v);
	m->v = nv;
	m->n = nn;
	m->cap = cap;
	m->weight = 1;
	for (i = 0; i < 2 * nn; i++) {
		m->weight += nv[i]->weight;
		if (m->weight > YDOC_MAX_NODES) {
			yb_fail(b, m->line, m->col,
			    "document has more than %d nodes once aliases are expanded",
			    YDOC_MAX_NODES);
			return -1;
		}
	}
	return 0;
toomany:
	yb_fail(b, m->line, m->col, "map merge of more than 64 maps");
	return -1;
}

static int
yb_close(struct ybuild *b)
{
	struct ynode *n = b->stack[--b->depth];

	if (n->kind == YNODE_MAP) {
		n->n /= 2;	/* children were pushed as key, value, ... */
		if (yb_merge(b, n) < 0)
			return -1;
	}
	n->done = true;
	return yb_attach(b, n);
}

static int
yb_alias(struct ybuild *b, yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct ynode *t = yb_anchor_get(b, name);

	if (t == NULL) {
		yb_fail(b, ev->start_mark.line + 1, ev->start_mark.column + 1,
		    "unknown anchor '%s' referenced", name);
		return -1;
	}
	if (!t->done) {
		yb_fail(b, ev->start_mark.line + 1, ev->start_mark.column + 1,
		    "anchor '%s' value contains itself", name);
		return -1;
	}
	return yb_attach(b, t);
}

static void
yb_parser_error(struct ybuild *b, yaml_parser_t *p)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR) {
		yb_fail(b, 1, 1, "out of memory parsing YAML");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		/* the reader reports a byte offset, not a mark */
		size_t i, line = 1, col = 1, off = p->problem_offset;

		for (i = 0; i < off && i < b->len; i++) {
			if (b->buf[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)b->buf[i] & 0xc0) != 0x80) {
				col++;
			}
		}
		yb_fail(b, line, col, "%s", problem);
		return;
	}
	if (p->context != NULL)
		yb_fail(b, p->problem_mark.line + 1, p->problem_mark.column + 1,
		    "%s (%s)", problem, p->context);
	else
		yb_fail(b, p->problem_mark.line + 1, p->problem_mark.column + 1,
		    "%s", problem);
}

/*
 * ydoc_parse: see yaml.h.
 */
struct ydoc *
ydoc_parse(const char *buf, size_t len, const char *file, char *err,
    size_t errlen)
{
	struct ybuild b;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false, ok = true;

	memset(&b, 0, sizeof(b));
	b.file = file ? file : "<input>";
	b.buf = buf;
	b.len = len;
	b.err = err;
	b.errlen = errlen;
	if (errlen > 0)
		err[0] = '\0';
	if (len > YDOC_MAX_INPUT) {
		yb_fail(&b, 1, 1, "input of %zu bytes is larger than the limit of %u bytes",
		    len, YDOC_MAX_INPUT);
		return NULL;
	}
	b.doc = mem_calloc(1, sizeof(*b.doc));
	if (!yaml_parser_initialize(&parser)) {
		yb_fail(&b, 1, 1, "cannot initialise the YAML parser");
		mem_free(b.doc);
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && ok) {
		if (!yaml_parser_parse(&parser, &ev)) {
			yb_parser_error(&b, &parser);
			ok = false;
			break;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_END_EVENT:
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_SCALAR_EVENT:
			ok = yb_scalar(&b, &ev) == 0;
			break;
		case YAML_SEQUENCE_START_EVENT:
			ok = yb_open(&b, &ev, YNODE_SEQ) == 0;
			break;
		case YAML_MAPPING_START_EVENT:
			ok = yb_open(&b, &ev, YNODE_MAP) == 0;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			ok = b.depth > 0 && yb_close(&b) == 0;
			break;
		case YAML_ALIAS_EVENT:
			ok = yb_alias(&b, &ev) == 0;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	mem_free(b.anchors);
	if (!ok) {
		ydoc_free(b.doc);
		return NULL;
	}
	return b.doc;
}

/*
 * ydoc_free: see yaml.h.
 */
void
ydoc_free(struct ydoc *doc)
{
	size_t i;

	if (doc == NULL)
		return;
	for (i = 0; i < doc->nall; i++) {
		mem_free(doc->all[i]->s);
		mem_free(doc->all[i]->v);
		mem_free(doc->all[i]->anchor);
		mem_free(doc->all[i]);
	}
	mem_free(doc->all);
	mem_free(doc);
}

/*
 * ydoc_map_key: see yaml.h.
 */
const char *
ydoc_map_key(const struct ynode *map, size_t i)
{
	const struct ynode *k = map->v[2 * i];

	return k->kind == YNODE_SCALAR ? k->s : "";
}

/*
 * ydoc_map_value: see yaml.h.
 */
const struct ynode *
ydoc_map_value(const struct ynode *map, size_t i)
{
	return map->v[2 * i + 1];
}

/*
 * ydoc_map_get: see yaml.h.
 */
const struct ynode *
ydoc_map_get(const struct ynode *map, const char *key)
{
	size_t i;

	if (map == NULL || map->kind != YNODE_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (strcmp(ydoc_map_key(map, i), key) == 0)
			return ydoc_map_value(map, i);
	return NULL;
}

/*
 * ydoc_parse_bool: see yaml.h.
 */
int
ydoc_parse_bool(const char *s, bool *out)
{
	static const char *const t[] = { "y", "Y", "yes", "Yes", "YES", "true",
	    "True", "TRUE", "on", "On", "ON" };
	static const char *const f[] = { "n", "N", "no", "No", "NO", "false",
	    "False", "FALSE", "off", "Off", "OFF" };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/*
 * ydoc_parse_int: see yaml.h.
 */
int
ydoc_parse_int(const char *s, int64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0, lim;
	bool neg = false, any = false;

	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
		base = 8;
		s += 2;
	} else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		base = 2;
		s += 2;
	} else if (s[0] == '0' && s[1] != '\0') {
		base = 8;
		s++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s; s++) {
		unsigned d;

		if (*s == '_')
			continue;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (d >= base)
			return -1;
		if (v > (lim - d) / base)
			return -1;
		v = v * base + d;
		any = true;
	}
	if (!any)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static bool
yd_is_float(const char *s, size_t len)
{
	size_t i = 0, digits = 0, frac = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		i++;
		digits++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			frac++;
		}
		if (digits == 0 && frac == 0)
			return false;
	} else if (digits == 0) {
		return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			i++;
			e++;
		}
		if (e == 0)
			return false;
	}
	return i == len;
}

static bool
yd_is_base60(const char *s, size_t len)
{
	size_t i = 0;
	bool colon = false;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	if (i >= len || s[i] < '0' || s[i] > '9')
		return false;
	for (; i < len; i++) {
		if (s[i] == ':')
			colon = true;
		else if (s[i] == '.')
			return colon;
		else if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	}
	return colon;
}

static bool
yd_is_timestamp(const char *s, size_t len)
{
	size_t i;

	if (len < 8)
		return false;
	for (i = 0; i < 4; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return s[4] == '-' && s[5] >= '0' && s[5] <= '9';
}

/*
 * ydoc_resolves_to_string: see yaml.h.
 */
bool
ydoc_resolves_to_string(const char *s, size_t len)
{
	static const char *const special[] = { ".inf", ".Inf", ".INF", "+.inf",
	    "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
	    "<<" };
	char tmp[80];
	int64_t iv;
	bool bv;
	size_t i;

	if (yb_is_null_word(s, len))
		return false;
	if (memchr(s, '\0', len) != NULL)
		return true;
	for (i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strlen(special[i]) == len && memcmp(s, special[i], len) == 0)
			return false;
	if (len < sizeof(tmp)) {
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		if (ydoc_parse_bool(tmp, &bv) == 0)
			return false;
		if ((s[0] == '+' || s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
		    ydoc_parse_int(tmp, &iv) == 0)
			return false;
	}
	if (yd_is_float(s, len) || yd_is_base60(s, len) || yd_is_timestamp(s, len))
		return false;
	/* all-digit strings too long for an int64 still read as numbers */
	for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		;
	return !(i == len && len > 0);
}

/*
 * ydoc_tag: see yaml.h.
 */
const char *
ydoc_tag(const struct ynode *n)
{
	int64_t iv;
	bool bv;

	if (n->kind == YNODE_MAP)
		return "!!map";
	if (n->kind == YNODE_SEQ)
		return "!!seq";
	if (n->binary)
		return "!!binary";
	if (n->null)
		return "!!null";
	if (!n->plain)
		return "!!str";
	if (ydoc_parse_bool(n->s, &bv) == 0)
		return "!!bool";
	if (ydoc_parse_int(n->s, &iv) == 0 &&
	    (n->s[0] == '+' || n->s[0] == '-' || (n->s[0] >= '0' && n->s[0] <= '9')))
		return "!!int";
	if (yd_is_float(n->s, n->len))
		return "!!float";
	return "!!str";
}

/* ---- emitting ----------------------------------------------------------- */

struct yemit {
	yaml_emitter_t em;
	struct strbuf *out;
	bool failed;
};

static int
ye_write(void *data, unsigned char *buf, size_t size)
{
	struct yemit *e = data;

	strbuf_append(e->out, buf, size);
	return 1;
}

static void
ye_event(struct yemit *e, yaml_event_t *ev, int made)
{
	if (!made) {
		e->failed = true;
		return;
	}
	if (e->failed) {
		yaml_event_delete(ev);
		return;
	}
	if (!yaml_emitter_emit(&e->em, ev))
		e->failed = true;
}

/*
 * ydoc_emit_new: see yaml.h.
 */
struct yemit *
ydoc_emit_new(struct strbuf *out)
{
	struct yemit *e = mem_calloc(1, sizeof(*e));
	yaml_event_t ev;

	e->out = out;
	if (!yaml_emitter_initialize(&e->em)) {
		e->failed = true;
		return e;
	}
	yaml_emitter_set_output(&e->em, ye_write, e);
	yaml_emitter_set_unicode(&e->em, 1);
	yaml_emitter_set_indent(&e->em, 2);
	ye_event(e, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
	ye_event(e, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
	return e;
}

/*
 * ydoc_emit_end: see yaml.h.
 */
int
ydoc_emit_end(struct yemit *e)
{
	yaml_event_t ev;
	int rc;

	ye_event(e, &ev, yaml_document_end_event_initialize(&ev, 1));
	ye_event(e, &ev, yaml_stream_end_event_initialize(&ev));
	if (!e->failed)
		yaml_emitter_flush(&e->em);
	rc = e->failed ? -1 : 0;
	yaml_emitter_delete(&e->em);
	mem_free(e);
	return rc;
}

void
ydoc_emit_map_start(struct yemit *e)
{
	yaml_event_t ev;

	ye_event(e, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
	    YAML_BLOCK_MAPPING_STYLE));
}

void
ydoc_emit_map_end(struct yemit *e)
{
	yaml_event_t ev;

	ye_event(e, &ev, yaml_mapping_end_event_initialize(&ev));
}

void
ydoc_emit_seq_start(struct yemit *e, bool flow)
{
	yaml_event_t ev;

	ye_event(e, &ev, yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
	    flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

void
ydoc_emit_seq_end(struct yemit *e)
{
	yaml_event_t ev;

	ye_event(e, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void
ye_scalar(struct yemit *e, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	ye_event(e, &ev, yaml_scalar_event_initialize(&ev, NULL, NULL,
	    (yaml_char_t *)(uintptr_t)s, (int)strlen(s), 1, 1, style));
}

void
ydoc_emit_str(struct yemit *e, const char *s)
{
	size_t len = strlen(s);
	yaml_scalar_style_t style;

	if (strchr(s, '\n') != NULL)
		style = YAML_LITERAL_SCALAR_STYLE;
	else if (ydoc_resolves_to_string(s, len))
		style = YAML_PLAIN_SCALAR_STYLE;
	else
		style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	ye_scalar(e, s, style);
}

void
ydoc_emit_raw(struct yemit *e, const char *s)
{
	ye_scalar(e, s, YAML_PLAIN_SCALAR_STYLE);
}
