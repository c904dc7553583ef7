/* lib/rules/rules.c - the rule manager: recording and alerting rules on timers.
 *
 * Follows rules/manager.go, alerting.go and recording.go of Prometheus
 * 2.42 (see rules.h for the behaviour). A group is a state machine stepped
 * by group_step(g, now): the first evaluation at the slotted instant after
 * it started, then one per interval with missed instants counted, then,
 * once removed by a reload, staleness markers two intervals later. In
 * threaded mode each group has a thread sleeping on its condition variable
 * until the next step; in manual mode rules_manager_run() steps every
 * group from the caller's thread.
 *
 * Locks: m->mu guards the group lists and m->restored; g->mu guards the
 * group's run state (stop flags, next instant), its statistics and every
 * rule's state (health, last error, alerts, previous series). Queries,
 * template expansion and appends run without any lock; only the group's
 * own thread evaluates it. Lock order: m->mu, then g->mu.
 */
#include "config.h"

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "config/config.h"
#include "labels/matcher.h"
#include "promql/ast.h"
#include "promql/parse.h"
#include "promql/storage.h"
#include "rules/rules.h"
#include "rules/template.h"
#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define RESOLVED_RETENTION_NS (15 * 60 * NS_PER_S)

/* --- small containers ----------------------------------------------------- */

/* rules_vector_push: see rules.h. */
void
rules_vector_push(struct rules_vector *vec, struct labels *ls, double v)
{
	if (vec->n == vec->cap) {
		vec->cap = vec->cap ? vec->cap * 2 : 16;
		vec->v = mem_realloc(vec->v, vec->cap * sizeof(*vec->v));
	}
	vec->v[vec->n].ls = ls;
	vec->v[vec->n].v = v;
	vec->n++;
}

/* rules_vector_free: see rules.h. */
void
rules_vector_free(struct rules_vector *vec)
{
	size_t i;

	for (i = 0; i < vec->n; i++)
		labels_free(vec->v[i].ls);
	mem_free(vec->v);
	memset(vec, 0, sizeof(*vec));
}

/* A set of label sets with a cached series ref each (seriesInPreviousEval). */
struct lset_ent {
	struct labels *ls;	/* one reference; NULL: empty slot */
	uint64_t ref;
};

struct lset {
	struct lset_ent *v;
	size_t n, cap;		/* cap: 0 or a power of two */
};

static struct lset_ent *
lset_find(const struct lset *s, const struct labels *ls)
{
	size_t i;

	if (s->cap == 0)
		return NULL;
	for (i = ls->hash & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i].ls == NULL)
			return NULL;
		if (s->v[i].ls->hash == ls->hash && labels_equal(s->v[i].ls, ls))
			return &s->v[i];
	}
}

static void lset_add(struct lset *s, struct labels *ls, uint64_t ref);

static void
lset_grow(struct lset *s)
{
	struct lset old = *s;
	size_t i;

	s->cap = s->cap ? s->cap * 2 : 16;
	s->v = mem_calloc(s->cap, sizeof(*s->v));
	s->n = 0;
	for (i = 0; i < old.cap; i++)
		if (old.v[i].ls != NULL)
			lset_add(s, old.v[i].ls, old.v[i].ref);
	mem_free(old.v);
}

/* lset_add takes ls's reference; a set already present keeps its entry. */
static void
lset_add(struct lset *s, struct labels *ls, uint64_t ref)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap)
		lset_grow(s);
	for (i = ls->hash & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i].ls == NULL) {
			s->v[i].ls = ls;
			s->v[i].ref = ref;
			s->n++;
			return;
		}
		if (s->v[i].ls->hash == ls->hash && labels_equal(s->v[i].ls, ls)) {
			labels_free(ls);
			return;
		}
	}
}

static void
lset_free(struct lset *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		labels_free(s->v[i].ls);
	mem_free(s->v);
	memset(s, 0, sizeof(*s));
}

/* An alert instance of an alerting rule. */
struct alert {
	struct labels *labels;
	struct rulefmt_kv *ann;
	size_t nann;
	enum rules_alert_state state;
	double value;
	int64_t active_at, fired_at, resolved_at, last_sent_at, valid_until;
	int64_t keep_firing_since;
	uint64_t seen;		/* the evaluation that last returned it */
};

/* Alerts by labels: open addressing with backward-shift deletion. */
struct amap {
	struct alert **v;
	size_t n, cap;
};

static void
kv_free(struct rulefmt_kv *kv, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		mem_free(kv[i].name);
		mem_free(kv[i].value);
	}
	mem_free(kv);
}

static struct rulefmt_kv *
kv_copy(const struct rulefmt_kv *kv, size_t n)
{
	struct rulefmt_kv *c = mem_calloc(n + 1, sizeof(*c));
	size_t i;

	for (i = 0; i < n; i++) {
		c[i].name = mem_strdup(kv[i].name);
		c[i].value = mem_strdup(kv[i].value);
	}
	return c;
}

static void
alert_free(struct alert *a)
{
	if (a == NULL)
		return;
	labels_free(a->labels);
	kv_free(a->ann, a->nann);
	mem_free(a);
}

static struct alert *
amap_get(const struct amap *m, const struct labels *ls)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = ls->hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i] == NULL)
			return NULL;
		if (m->v[i]->labels->hash == ls->hash && labels_equal(m->v[i]->labels, ls))
			return m->v[i];
	}
}

static void amap_put(struct amap *m, struct alert *a);

static void
amap_grow(struct amap *m)
{
	struct amap old = *m;
	size_t i;

	m->cap = m->cap ? m->cap * 2 : 16;
	m->v = mem_calloc(m->cap, sizeof(*m->v));
	m->n = 0;
	for (i = 0; i < old.cap; i++)
		if (old.v[i] != NULL)
			amap_put(m, old.v[i]);
	mem_free(old.v);
}

/* amap_put inserts a; an alert with the same labels is freed and replaced. */
static void
amap_put(struct amap *m, struct alert *a)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap)
		amap_grow(m);
	for (i = a->labels->hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i] == NULL) {
			m->v[i] = a;
			m->n++;
			return;
		}
		if (m->v[i]->labels->hash == a->labels->hash && labels_equal(m->v[i]->labels, a->labels)) {
			if (m->v[i] != a)
				alert_free(m->v[i]);
			m->v[i] = a;
			return;
		}
	}
}

/* amap_del removes (and frees) the alert with a's labels. */
static void
amap_del(struct amap *m, struct alert *a)
{
	size_t i, j, k;

	if (m->cap == 0)
		return;
	for (i = a->labels->hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->v[i] == NULL)
			return;
		if (m->v[i] == a)
			break;
	}
	alert_free(m->v[i]);
	m->v[i] = NULL;
	m->n--;
	/* shift back the entries that probed past the hole */
	for (j = (i + 1) & (m->cap - 1); m->v[j] != NULL; j = (j + 1) & (m->cap - 1)) {
		k = m->v[j]->labels->hash & (m->cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->v[i] = m->v[j];
			m->v[j] = NULL;
			i = j;
		}
	}
}

static void
amap_clear(struct amap *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		alert_free(m->v[i]);
	mem_free(m->v);
	memset(m, 0, sizeof(*m));
}

/* --- groups and rules ----------------------------------------------------- */

struct rule {
	bool alert;
	char *name;
	char *query;			/* canonical expression */
	char *name_and_labels;		/* name + labels string: CopyState's key */
	char *tmpl_name;		/* "__alert_" + name */
	struct rulefmt_kv *labels;	/* as written, sorted */
	size_t n_labels;
	struct rulefmt_kv *ann;
	size_t n_ann;
	struct tmpl **ltmpl, **atmpl;	/* NULL where the text has no action */
	struct labels *label_set;	/* the labels as written, as a set */
	int64_t for_ms, kff_ms;
	/* state, under g->mu */
	enum rules_health health;
	char *last_error;
	int64_t eval_dur_ns;
	int64_t last_eval;
	struct amap active;
	uint64_t evals;			/* evaluations, for alert.seen */
	bool restored;
	struct lset prev;		/* series written by the last evaluation */
};

struct group {
	struct rules_manager *m;
	char *file, *name, *key;
	int64_t interval_ms, interval_ns;
	int64_t limit;
	struct rule *rules;
	size_t n_rules;
	struct labels *ext;		/* external labels (a reference) */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	volatile bool stop;		/* no more evaluations (also cancels queries) */
	bool retiring;			/* removed: mark its series stale, then end */
	bool abort;			/* the manager stops: end without marking */
	bool done;			/* the thread has nothing left to do */
	bool should_restore;
	bool started;			/* the first evaluation happened */
	int iters;
	int64_t next_ns;		/* next evaluation instant */
	int64_t last_ts;		/* last evaluation instant */
	int64_t stale_at_ns;		/* retiring: when to write the markers */
	int64_t stop_time_ns;		/* retiring: their timestamp */
	struct lset stale;		/* series of rules that no longer exist */

	int64_t eval_dur_ns;
	int64_t last_eval;
	uint64_t evaluations, failures, iterations, missed;
	double last_samples;
};

struct rules_manager {
	struct rules_manager_opts o;
	char *external_url;
	pthread_mutex_t mu;
	struct group **groups;		/* sorted by file, then name */
	size_t n_groups;
	struct group **retired;		/* removed groups still marking staleness */
	size_t n_retired;
	bool restored;			/* a rule set was loaded once */
	bool stopped;
	atomic_int_fast64_t delay_ns;	/* evaluation delay (opts, then set_eval_delay) */
};

static int64_t
clock_now(const struct rules_manager *m)
{
	struct timespec ts;

	if (m->o.now_ns != NULL)
		return m->o.now_ns(m->o.clock_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* eval_now is the clock evaluations are scheduled by: the wall clock less
 * the evaluation delay. */
static int64_t
eval_now(const struct rules_manager *m)
{
	return clock_now(m) - (int64_t)atomic_load(&m->delay_ns);
}

static double
stale_nan(void)
{
	uint64_t bits = CHUNK_STALE_NAN_BITS;
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

/* ns_to_ms is Prometheus' timestamp.FromTime. */
static int64_t
ns_to_ms(int64_t ns)
{
	int64_t s = ns / NS_PER_S, r = ns % NS_PER_S;

	if (r < 0) {
		r += NS_PER_S;
		s--;
	}
	return s * 1000 + r / NS_PER_MS;
}

/* unix_seconds is Go's Time.Unix(). */
static int64_t
unix_seconds(int64_t ns)
{
	int64_t s = ns / NS_PER_S;

	if (ns % NS_PER_S < 0)
		s--;
	return s;
}

/* group_hash is Prometheus' labels {file=..., name=...}.Hash(): XXH64 of
 * each name and value followed by 0xff, names sorted. */
static uint64_t
group_hash(const char *file, const char *name)
{
	XXH64_state_t *st = XXH64_createState();
	const unsigned char sep = 0xff;
	uint64_t h;

	XXH64_reset(st, 0);
	XXH64_update(st, "file", 4);
	XXH64_update(st, &sep, 1);
	XXH64_update(st, file, strlen(file));
	XXH64_update(st, &sep, 1);
	XXH64_update(st, "name", 4);
	XXH64_update(st, &sep, 1);
	XXH64_update(st, name, strlen(name));
	XXH64_update(st, &sep, 1);
	h = XXH64_digest(st);
	XXH64_freeState(st);
	return h;
}

/* rules_eval_timestamp: see rules.h. */
int64_t
rules_eval_timestamp(const char *file, const char *name, int64_t interval_ms, int64_t now_ns)
{
	int64_t iv = interval_ms * NS_PER_MS, offset, adj;

	if (iv <= 0)
		return now_ns;
	offset = (int64_t)(group_hash(file, name) % (uint64_t)iv);
	adj = now_ns - offset;
	return adj - adj % iv + offset;
}

const char *
rules_health_name(enum rules_health h)
{
	switch (h) {
	case RULES_HEALTH_OK: return "ok";
	case RULES_HEALTH_ERR: return "err";
	case RULES_HEALTH_UNKNOWN: break;
	}
	return "unknown";
}

const char *
rules_state_name(enum rules_alert_state s)
{
	switch (s) {
	case RULES_PENDING: return "pending";
	case RULES_FIRING: return "firing";
	case RULES_INACTIVE: break;
	}
	return "inactive";
}

static void
rule_free(struct rule *r)
{
	size_t i;

	mem_free(r->name);
	mem_free(r->query);
	mem_free(r->name_and_labels);
	mem_free(r->tmpl_name);
	for (i = 0; i < r->n_labels; i++)
		tmpl_free(r->ltmpl != NULL ? r->ltmpl[i] : NULL);
	for (i = 0; i < r->n_ann; i++)
		tmpl_free(r->atmpl != NULL ? r->atmpl[i] : NULL);
	mem_free(r->ltmpl);
	mem_free(r->atmpl);
	kv_free(r->labels, r->n_labels);
	kv_free(r->ann, r->n_ann);
	labels_free(r->label_set);
	mem_free(r->last_error);
	amap_clear(&r->active);
	lset_free(&r->prev);
}

static void
group_free(struct group *g)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->n_rules; i++)
		rule_free(&g->rules[i]);
	mem_free(g->rules);
	mem_free(g->file);
	mem_free(g->name);
	mem_free(g->key);
	labels_free(g->ext);
	lset_free(&g->stale);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cond);
	mem_free(g);
}

/* labels_string appends ls as Prometheus' Labels.String(): {a="b", c="d"}. */
static void
kv_labels_string(const struct rulefmt_kv *kv, size_t n, struct strbuf *out)
{
	size_t i;

	strbuf_putc(out, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			strbuf_puts(out, ", ");
		strbuf_puts(out, kv[i].name);
		strbuf_putc(out, '=');
		labels_quote(kv[i].value, strlen(kv[i].value), out);
	}
	strbuf_putc(out, '}');
}

/* rule_init builds a rule from its file form; returns -1 with err when the
 * expression or a template does not parse (rulefmt checked both already). */
static int
rule_init(struct rule *r, const struct rulefmt_rule *fr, bool restored, char *err, size_t errlen)
{
	struct promql_node *tree;
	struct strbuf sb = STRBUF_INIT;
	struct label *lv;
	size_t i;
	char tname[512];

	memset(r, 0, sizeof(*r));
	r->alert = fr->alert;
	r->name = mem_strdup(fr->name);
	r->for_ms = fr->for_ms;
	r->kff_ms = fr->keep_firing_for_ms;
	r->labels = kv_copy(fr->labels, fr->n_labels);
	r->n_labels = fr->n_labels;
	r->ann = kv_copy(fr->annotations, fr->n_annotations);
	r->n_ann = fr->n_annotations;
	r->restored = restored;
	tree = promql_parse(fr->expr, strlen(fr->expr), err, errlen);
	if (tree == NULL)
		return -1;
	promql_node_format(tree, &sb);
	promql_node_free(tree);
	r->query = strbuf_detach(&sb, NULL);
	strbuf_puts(&sb, r->name);
	kv_labels_string(r->labels, r->n_labels, &sb);
	r->name_and_labels = strbuf_detach(&sb, NULL);
	lv = mem_calloc(r->n_labels + 1, sizeof(*lv));
	for (i = 0; i < r->n_labels; i++) {
		lv[i].name = r->labels[i].name;
		lv[i].value = r->labels[i].value;
	}
	r->label_set = labels_new(lv, r->n_labels);
	mem_free(lv);
	rulefmt_alert_template_name(r->name, tname, sizeof(tname));
	r->tmpl_name = mem_strdup(tname);
	if (!r->alert)
		return 0;
	r->ltmpl = mem_calloc(r->n_labels + 1, sizeof(*r->ltmpl));
	r->atmpl = mem_calloc(r->n_ann + 1, sizeof(*r->atmpl));
	for (i = 0; i < r->n_labels + r->n_ann; i++) {
		const struct rulefmt_kv *kv = i < r->n_labels ? &r->labels[i] : &r->ann[i - r->n_labels];
		struct tmpl **slot = i < r->n_labels ? &r->ltmpl[i] : &r->atmpl[i - r->n_labels];

		if (!tmpl_has_actions(kv->value, strlen(kv->value)))
			continue;
		strbuf_reset(&sb);
		strbuf_puts(&sb, TMPL_ALERT_DEFS);
		strbuf_puts(&sb, kv->value);
		*slot = tmpl_parse(sb.buf, sb.len, tname, err, errlen);
		if (*slot == NULL) {
			strbuf_free(&sb);
			return -1;
		}
	}
	strbuf_free(&sb);
	return 0;
}

static bool
kv_equal(const struct rulefmt_kv *a, size_t na, const struct rulefmt_kv *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i].name, b[i].name) != 0 || strcmp(a[i].value, b[i].value) != 0)
			return false;
	return true;
}

/* group_equal is Prometheus' Group.Equals. */
static bool
group_equal(const struct group *a, const struct group *b)
{
	size_t i;

	if (strcmp(a->name, b->name) != 0 || strcmp(a->file, b->file) != 0 ||
	    a->interval_ms != b->interval_ms || a->limit != b->limit || a->n_rules != b->n_rules)
		return false;
	for (i = 0; i < a->n_rules; i++) {
		const struct rule *x = &a->rules[i], *y = &b->rules[i];

		if (x->alert != y->alert || strcmp(x->name, y->name) != 0 ||
		    strcmp(x->query, y->query) != 0 || x->for_ms != y->for_ms ||
		    x->kff_ms != y->kff_ms || !kv_equal(x->labels, x->n_labels, y->labels, y->n_labels) ||
		    !kv_equal(x->ann, x->n_ann, y->ann, y->n_ann))
			return false;
	}
	return true;
}

static struct group *
group_new(struct rules_manager *m, const char *file, const struct rulefmt_group *fg,
    int64_t interval_ms, const struct labels *ext, bool restored, char *err, size_t errlen)
{
	struct group *g = mem_calloc(1, sizeof(*g));
	struct strbuf key = STRBUF_INIT;
	size_t i;

	g->m = m;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->file = mem_strdup(file);
	g->name = mem_strdup(fg->name);
	strbuf_printf(&key, "%s;%s", file, fg->name);
	g->key = strbuf_detach(&key, NULL);
	g->interval_ms = fg->interval_ms != 0 ? fg->interval_ms : interval_ms;
	g->interval_ns = g->interval_ms * NS_PER_MS;
	g->limit = fg->limit;
	g->ext = ext != NULL ? labels_ref((struct labels *)ext) : labels_empty();
	g->last_eval = RULES_TIME_ZERO;
	g->rules = mem_calloc(fg->n_rules + 1, sizeof(*g->rules));
	for (i = 0; i < fg->n_rules; i++) {
		char e[1024];

		if (rule_init(&g->rules[i], &fg->rules[i], restored, e, sizeof(e)) < 0) {
			g->n_rules = i + 1;
			snprintf(err, errlen, "%s: %s", file, e);
			group_free(g);
			return NULL;
		}
		g->rules[i].last_eval = RULES_TIME_ZERO;
	}
	g->n_rules = fg->n_rules;
	return g;
}

/* --- evaluation ------------------------------------------------------------ */

static bool
group_stopping(struct group *g)
{
	bool s;

	pthread_mutex_lock(&g->mu);
	s = g->stop;
	pthread_mutex_unlock(&g->mu);
	return s;
}

static int
run_query(struct group *g, const char *q, int64_t ts_ms, struct rules_vector *out,
    char *err, size_t errlen)
{
	const struct rules_manager_opts *o = &g->m->o;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	return o->query(o, q, ts_ms, &g->stop, out, err, errlen);
}

/* The query function templates get ("query"). */
struct tq_ctx {
	struct group *g;
};

static int
template_query(void *arg, const char *q, int64_t ts, struct tmpl_sample **out, size_t *n,
    char *err, size_t errlen)
{
	struct tq_ctx *c = arg;
	struct rules_vector vec;
	size_t i;

	if (run_query(c->g, q, ts, &vec, err, errlen) < 0)
		return -1;
	*out = mem_calloc(vec.n + 1, sizeof(**out));
	for (i = 0; i < vec.n; i++) {
		(*out)[i].ls = vec.v[i].ls;
		(*out)[i].v = vec.v[i].v;
	}
	*n = vec.n;
	mem_free(vec.v);
	return 0;
}

/* has_same_labelset tells whether two samples of vec have equal labels. */
static bool
has_same_labelset(const struct rules_vector *vec)
{
	struct lset seen = { NULL, 0, 0 };
	bool dup = false;
	size_t i;

	for (i = 0; i < vec->n && !dup; i++) {
		if (lset_find(&seen, vec->v[i].ls) != NULL)
			dup = true;
		else
			lset_add(&seen, labels_ref(vec->v[i].ls), 0);
	}
	lset_free(&seen);
	return dup;
}

/* record_eval is RecordingRule.Eval. */
static int
record_eval(struct group *g, struct rule *r, int64_t ts, struct rules_vector *vec,
    char *err, size_t errlen)
{
	struct labels_builder *lb;
	size_t i, j;

	if (run_query(g, r->query, ns_to_ms(ts), vec, err, errlen) < 0)
		return -1;
	lb = labels_builder_new();
	for (i = 0; i < vec->n; i++) {
		labels_builder_reset(lb, vec->v[i].ls);
		labels_builder_set(lb, LABEL_METRIC_NAME, r->name);
		for (j = 0; j < r->n_labels; j++)
			labels_builder_set(lb, r->labels[j].name, r->labels[j].value);
		labels_free(vec->v[i].ls);
		vec->v[i].ls = labels_builder_labels(lb);
	}
	labels_builder_free(lb);
	if (has_same_labelset(vec)) {
		snprintf(err, errlen, "vector contains metrics with the same labelset after applying rule labels");
		return -1;
	}
	if (g->limit > 0 && (int64_t)vec->n > g->limit) {
		snprintf(err, errlen, "exceeded limit of %" PRId64 " with %zu series", g->limit, vec->n);
		return -1;
	}
	return 0;
}

/* expand runs a label or annotation template for one sample; a failure
 * becomes Prometheus' "<error expanding template: ...>" text. */
static char *
expand(struct group *g, struct rule *r, const struct tmpl *t, const char *raw,
    const struct tmpl_env *env)
{
	struct strbuf out = STRBUF_INIT;
	char err[2048];

	if (t == NULL)
		return mem_strdup(raw);
	if (tmpl_execute(t, env, &out, err, sizeof(err)) < 0) {
		strbuf_reset(&out);
		strbuf_printf(&out, "<error expanding template: error executing template %s: %s>",
		    r->tmpl_name, err);
		log_kv(LOG_WARN, "rules", "Expanding alert template failed", "group", g->name,
		    "alert", r->name, "err", err, (char *)NULL);
	}
	return strbuf_detach(&out, NULL);
}

static struct labels *
alert_series_labels(const struct rule *r, const struct alert *a, const char *metric,
    bool with_state)
{
	struct labels_builder *lb = labels_builder_new();
	struct labels *ls;
	size_t i;

	labels_builder_reset(lb, r->label_set);
	for (i = 0; i < a->labels->n; i++)
		labels_builder_set(lb, a->labels->v[i].name, a->labels->v[i].value);
	labels_builder_set(lb, LABEL_METRIC_NAME, metric);
	labels_builder_set(lb, "alertname", r->name);
	if (with_state)
		labels_builder_set(lb, "alertstate", rules_state_name(a->state));
	ls = labels_builder_labels(lb);
	labels_builder_free(lb);
	return ls;
}

/* alert_eval is AlertingRule.Eval. */
static int
alert_eval(struct group *g, struct rule *r, int64_t ts, struct rules_vector *vec,
    char *err, size_t errlen)
{
	struct rules_vector res;
	struct labels_builder *lb;
	struct alert **fresh;
	struct amap seen = { NULL, 0, 0 };
	struct tq_ctx qc = { g };
	struct alert **list;
	size_t i, j, nlist = 0, nfresh;
	int64_t n_active = 0;
	uint64_t gen;

	if (run_query(g, r->query, ns_to_ms(ts), &res, err, errlen) < 0)
		return -1;
	fresh = mem_calloc(res.n + 1, sizeof(*fresh));
	lb = labels_builder_new();
	for (i = 0; i < res.n; i++) {
		struct tmpl_env env;
		struct alert *a = mem_calloc(1, sizeof(*a));

		memset(&env, 0, sizeof(env));
		env.labels = res.v[i].ls;
		env.external_labels = g->ext;
		env.external_url = g->m->external_url;
		env.value = res.v[i].v;
		env.ts = ns_to_ms(ts);
		env.query = template_query;
		env.query_arg = &qc;
		labels_builder_reset(lb, res.v[i].ls);
		labels_builder_del(lb, LABEL_METRIC_NAME);
		for (j = 0; j < r->n_labels; j++) {
			char *v = expand(g, r, r->ltmpl[j], r->labels[j].value, &env);

			labels_builder_set(lb, r->labels[j].name, v);
			mem_free(v);
		}
		labels_builder_set(lb, "alertname", r->name);
		a->ann = mem_calloc(r->n_ann + 1, sizeof(*a->ann));
		a->nann = r->n_ann;
		for (j = 0; j < r->n_ann; j++) {
			a->ann[j].name = mem_strdup(r->ann[j].name);
			a->ann[j].value = expand(g, r, r->atmpl[j], r->ann[j].value, &env);
		}
		a->labels = labels_builder_labels(lb);
		a->active_at = ts;
		a->state = RULES_PENDING;
		a->value = res.v[i].v;
		a->fired_at = a->resolved_at = a->last_sent_at = a->valid_until = RULES_TIME_ZERO;
		a->keep_firing_since = RULES_TIME_ZERO;
		if (amap_get(&seen, a->labels) != NULL) {
			/* seen only indexes the alerts; fresh owns them */
			alert_free(a);
			for (j = 0; j < i; j++)
				alert_free(fresh[j]);
			mem_free(fresh);
			mem_free(seen.v);
			labels_builder_free(lb);
			rules_vector_free(&res);
			snprintf(err, errlen,
			    "vector contains metrics with the same labelset after applying alert labels");
			return -1;
		}
		amap_put(&seen, a);
		fresh[i] = a;
	}
	nfresh = res.n;
	labels_builder_free(lb);
	rules_vector_free(&res);
	mem_free(seen.v);

	pthread_mutex_lock(&g->mu);
	gen = ++r->evals;
	for (i = 0; i < nfresh; i++) {
		struct alert *a = fresh[i], *old = amap_get(&r->active, a->labels);

		if (old != NULL && old->state != RULES_INACTIVE) {
			old->value = a->value;
			kv_free(old->ann, old->nann);
			old->ann = a->ann;
			old->nann = a->nann;
			a->ann = NULL;
			a->nann = 0;
			old->seen = gen;
			alert_free(a);
			continue;
		}
		a->seen = gen;
		amap_put(&r->active, a);
	}
	mem_free(fresh);
	/* walk a copy of the list: deletions reshape the map */
	list = mem_calloc(r->active.n + 1, sizeof(*list));
	for (i = 0; i < r->active.cap; i++)
		if (r->active.v[i] != NULL)
			list[nlist++] = r->active.v[i];
	for (i = 0; i < nlist; i++) {
		struct alert *a = list[i];

		if (a->seen != gen) {
			bool keep_firing = false, drop;

			if (a->state == RULES_FIRING && r->kff_ms > 0) {
				if (a->keep_firing_since == RULES_TIME_ZERO)
					a->keep_firing_since = ts;
				if (ts - a->keep_firing_since < r->kff_ms * NS_PER_MS)
					keep_firing = true;
			}
			drop = a->state == RULES_PENDING ||
			    (a->resolved_at != RULES_TIME_ZERO && ts - a->resolved_at > RESOLVED_RETENTION_NS);
			if (a->state != RULES_INACTIVE && !keep_firing) {
				a->state = RULES_INACTIVE;
				a->resolved_at = ts;
			}
			if (drop) {
				amap_del(&r->active, a);
				continue;
			}
			if (!keep_firing)
				continue;
		} else {
			a->keep_firing_since = RULES_TIME_ZERO;
		}
		n_active++;
		if (a->state == RULES_PENDING && ts - a->active_at >= r->for_ms * NS_PER_MS) {
			a->state = RULES_FIRING;
			a->fired_at = ts;
		}
		if (r->restored) {
			rules_vector_push(vec, alert_series_labels(r, a, "ALERTS", true), 1);
			rules_vector_push(vec, alert_series_labels(r, a, "ALERTS_FOR_STATE", false),
			    (double)unix_seconds(a->active_at));
		}
	}
	mem_free(list);
	if (g->limit > 0 && n_active > g->limit) {
		amap_clear(&r->active);
		pthread_mutex_unlock(&g->mu);
		rules_vector_free(vec);
		snprintf(err, errlen, "exceeded limit of %" PRId64 " with %" PRId64 " alerts", g->limit,
		    n_active);
		return -1;
	}
	pthread_mutex_unlock(&g->mu);
	return 0;
}

/* send_alerts is AlertingRule.sendAlerts: the alerts due for (re)sending
 * go to the notifier, if there is one. Called with g->mu held. */
static void
send_alerts(struct group *g, struct rule *r, int64_t ts)
{
	const struct rules_manager_opts *o = &g->m->o;
	int64_t resend = (o->resend_delay_ms > 0 ? o->resend_delay_ms : 60000) * NS_PER_MS;
	int64_t delta = g->interval_ns > resend ? g->interval_ns : resend;
	struct rules_notify_alert *out;
	size_t i, n = 0;

	if (o->notify == NULL)
		return;
	out = mem_calloc(r->active.n + 1, sizeof(*out));
	for (i = 0; i < r->active.cap; i++) {
		struct alert *a = r->active.v[i];
		bool need;

		if (a == NULL || a->state == RULES_PENDING)
			continue;
		if (a->resolved_at != RULES_TIME_ZERO &&
		    (a->last_sent_at == RULES_TIME_ZERO || a->resolved_at > a->last_sent_at))
			need = true;
		else
			need = a->last_sent_at == RULES_TIME_ZERO || a->last_sent_at + resend < ts;
		if (!need)
			continue;
		a->last_sent_at = ts;
		/* ts is the evaluation instant, which an evaluation delay puts
		 * behind the wall clock: count the delay in, or a delayed
		 * central's alerts would reach Alertmanager already expired. */
		a->valid_until = ts + 4 * delta + atomic_load(&g->m->delay_ns);
		out[n].labels = a->labels;
		out[n].annotations = a->ann;
		out[n].n_annotations = a->nann;
		out[n].starts_at = a->fired_at;
		out[n].ends_at = a->resolved_at != RULES_TIME_ZERO ? a->resolved_at : a->valid_until;
		n++;
	}
	o->notify(o->notify_arg, r->query, out, n);
	mem_free(out);
}

static void
rule_set_error(struct rule *r, const char *err)
{
	r->health = RULES_HEALTH_ERR;
	mem_free(r->last_error);
	r->last_error = mem_strdup(err);
}

static bool
is_ignorable_stale_error(int rc)
{
	return rc == TSDB_ERR_OUT_OF_ORDER || rc == TSDB_ERR_TOO_OLD || rc == TSDB_ERR_DUPLICATE;
}

/* rule_eval_one evaluates rule i of g at ts and writes its output. */
static void
rule_eval_one(struct group *g, struct rule *r, size_t idx, int64_t ts, double *samples_total)
{
	struct rules_vector vec = { NULL, 0, 0 };
	struct lset returned = { NULL, 0, 0 };
	struct tsdb_appender *app;
	int64_t wall0 = clock_now(g->m), mono0 = time_mono_ns(), ts_ms = ns_to_ms(ts);
	size_t i, n_ooo = 0, n_old = 0, n_dup = 0;
	char err[2048], ibuf[32];
	int rc;

	snprintf(ibuf, sizeof(ibuf), "%zu", idx);
	pthread_mutex_lock(&g->mu);
	g->evaluations++;
	pthread_mutex_unlock(&g->mu);
	rc = r->alert ? alert_eval(g, r, ts, &vec, err, sizeof(err)) :
	    record_eval(g, r, ts, &vec, err, sizeof(err));
	if (rc < 0) {
		rules_vector_free(&vec);
		pthread_mutex_lock(&g->mu);
		rule_set_error(r, err);
		g->failures++;
		r->eval_dur_ns = time_mono_ns() - mono0;
		r->last_eval = wall0;
		pthread_mutex_unlock(&g->mu);
		if (strncmp(err, "query was canceled", 18) != 0)
			log_kv(LOG_WARN, "rules", "Evaluating rule failed", "file", g->file, "group", g->name,
			    "name", r->name, "index", ibuf, "err", err, (char *)NULL);
		return;
	}
	pthread_mutex_lock(&g->mu);
	r->health = RULES_HEALTH_OK;
	MEM_FREE(r->last_error);
	if (r->alert)
		send_alerts(g, r, ts);
	pthread_mutex_unlock(&g->mu);
	*samples_total += (double)vec.n;

	app = tsdb_appender_new(g->m->o.head);
	for (i = 0; i < vec.n; i++) {
		struct lset_ent *e = lset_find(&r->prev, vec.v[i].ls);
		uint64_t ref = e != NULL ? e->ref : 0;

		rc = tsdb_appender_append(app, &ref, vec.v[i].ls, ts_ms, vec.v[i].v);
		if (rc == 0) {
			lset_add(&returned, labels_ref(vec.v[i].ls), ref);
			continue;
		}
		pthread_mutex_lock(&g->mu);
		rule_set_error(r, tsdb_strerror(rc));
		pthread_mutex_unlock(&g->mu);
		if (rc == TSDB_ERR_OUT_OF_ORDER)
			n_ooo++;
		else if (rc == TSDB_ERR_TOO_OLD)
			n_old++;
		else if (rc == TSDB_ERR_DUPLICATE)
			n_dup++;
		else
			log_kv(LOG_WARN, "rules", "Rule evaluation result discarded", "group", g->name,
			    "name", r->name, "index", ibuf, "err", tsdb_strerror(rc), (char *)NULL);
	}
	if (n_ooo > 0 || n_old > 0 || n_dup > 0)
		log_msg(LOG_WARN, "rules", "group=%s name=%s: results dropped: %zu out of order, "
		    "%zu too old, %zu with another value at the same timestamp", g->name, r->name,
		    n_ooo, n_old, n_dup);
	/* series no longer produced get a staleness marker */
	for (i = 0; i < r->prev.cap; i++) {
		struct lset_ent *e = &r->prev.v[i];

		if (e->ls == NULL || lset_find(&returned, e->ls) != NULL)
			continue;
		rc = tsdb_appender_append(app, &e->ref, e->ls, ts_ms, stale_nan());
		if (rc != 0 && !is_ignorable_stale_error(rc)) {
			struct strbuf sb = STRBUF_INIT;

			labels_format(e->ls, &sb);
			log_kv(LOG_WARN, "rules", "Adding stale sample failed", "group", g->name,
			    "name", r->name, "sample", strbuf_cstr(&sb), "err", tsdb_strerror(rc),
			    (char *)NULL);
			strbuf_free(&sb);
		}
	}
	rc = tsdb_appender_commit(app);
	tsdb_appender_free(app);
	pthread_mutex_lock(&g->mu);
	if (rc != 0) {
		rule_set_error(r, tsdb_strerror(rc));
		g->failures++;
		lset_free(&returned);
		log_kv(LOG_WARN, "rules", "Rule sample appending failed", "group", g->name,
		    "name", r->name, "err", tsdb_strerror(rc), (char *)NULL);
	} else {
		lset_free(&r->prev);
		r->prev = returned;
	}
	r->eval_dur_ns = time_mono_ns() - mono0;
	r->last_eval = wall0;
	pthread_mutex_unlock(&g->mu);
	rules_vector_free(&vec);
}

/* cleanup_stale writes staleness markers at ts for the series of rules
 * that no longer exist (g->stale); they are kept if the commit fails. */
static void
cleanup_stale(struct group *g, int64_t ts)
{
	struct tsdb_appender *app;
	size_t i;
	int rc;

	pthread_mutex_lock(&g->mu);
	if (g->stale.n == 0) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	pthread_mutex_unlock(&g->mu);
	app = tsdb_appender_new(g->m->o.head);
	for (i = 0; i < g->stale.cap; i++) {
		struct lset_ent *e = &g->stale.v[i];

		if (e->ls == NULL)
			continue;
		rc = tsdb_appender_append(app, &e->ref, e->ls, ns_to_ms(ts), stale_nan());
		if (rc != 0 && !is_ignorable_stale_error(rc))
			log_kv(LOG_WARN, "rules", "Adding stale sample for previous configuration failed",
			    "group", g->name, "err", tsdb_strerror(rc), (char *)NULL);
	}
	rc = tsdb_appender_commit(app);
	tsdb_appender_free(app);
	if (rc != 0) {
		log_kv(LOG_WARN, "rules", "Stale sample appending for previous configuration failed",
		    "group", g->name, "err", tsdb_strerror(rc), (char *)NULL);
		return;
	}
	pthread_mutex_lock(&g->mu);
	lset_free(&g->stale);
	pthread_mutex_unlock(&g->mu);
}

/* group_eval is Group.Eval: every rule in order at ts. */
static void
group_eval(struct group *g, int64_t ts)
{
	double samples = 0;
	size_t i;

	for (i = 0; i < g->n_rules; i++) {
		if (group_stopping(g))
			return;
		rule_eval_one(g, &g->rules[i], i, ts, &samples);
	}
	pthread_mutex_lock(&g->mu);
	g->last_samples = samples;
	pthread_mutex_unlock(&g->mu);
	cleanup_stale(g, ts);
}

/* last_sample reads the newest sample of the series with exactly the
 * labels ls in [mint, maxt]. Returns false when there is none. */
static bool
last_sample(const struct promql_storage *st, const struct labels *ls, int64_t mint, int64_t maxt,
    int64_t *t, double *v)
{
	struct matcher **ms = mem_calloc(ls->n + 1, sizeof(*ms));
	const struct promql_series_set_ops *ops = NULL;
	char err[256];
	void *set;
	bool found = false;
	size_t i, n = 0;

	for (i = 0; i < ls->n; i++) {
		ms[n] = matcher_new(MATCH_EQUAL, ls->v[i].name, ls->v[i].value, err, sizeof(err));
		if (ms[n] != NULL)
			n++;
	}
	set = n > 0 ? st->select(st->ctx, ms, n, mint, maxt, &ops, err, sizeof(err)) : NULL;
	if (set != NULL) {
		while (ops->next(set)) {
			int64_t st_t;
			double st_v;

			if (ops->labels(set)->n != ls->n)
				continue;
			while (ops->sample_next(set, &st_t, &st_v)) {
				if (st_t > maxt)
					break;
				*t = st_t;
				*v = st_v;
				found = true;
			}
			break;
		}
		ops->free(set);
	}
	for (i = 0; i < n; i++)
		matcher_free(ms[i]);
	mem_free(ms);
	return found;
}

/* restore_for_state is Group.RestoreForState at now (ns). */
static void
restore_for_state(struct group *g, int64_t now)
{
	const struct rules_manager_opts *o = &g->m->o;
	int64_t tol = (o->outage_tolerance_ms > 0 ? o->outage_tolerance_ms : 3600000) * NS_PER_MS;
	int64_t grace = (o->for_grace_period_ms > 0 ? o->for_grace_period_ms : 600000) * NS_PER_MS;
	int64_t maxt = ns_to_ms(now), mint = ns_to_ms(now - tol);
	size_t i, j;

	pthread_mutex_lock(&g->mu);
	for (i = 0; i < g->n_rules; i++) {
		struct rule *r = &g->rules[i];
		int64_t hold = r->for_ms * NS_PER_MS;

		if (!r->alert)
			continue;
		if (hold < grace || o->storage == NULL) {
			r->restored = true;
			continue;
		}
		for (j = 0; j < r->active.cap; j++) {
			struct alert *a = r->active.v[j];
			struct labels *ls;
			int64_t t, down_at, restored_at, remaining;
			double v;
			bool ok;

			if (a == NULL)
				continue;
			ls = alert_series_labels(r, a, "ALERTS_FOR_STATE", false);
			ok = last_sample(o->storage, ls, mint, maxt, &t, &v);
			labels_free(ls);
			if (!ok || isnan(v))	/* a staleness marker: the alert was not active */
				continue;
			down_at = (t / 1000) * NS_PER_S;
			restored_at = (int64_t)v * NS_PER_S;
			remaining = hold - (down_at - restored_at);
			if (remaining <= 0)
				continue;	/* it was firing: the next evaluation decides */
			if (remaining < grace)
				restored_at = now + grace - hold;
			else
				restored_at += now - down_at;
			a->active_at = restored_at;
		}
		r->restored = true;
	}
	pthread_mutex_unlock(&g->mu);
}

/* group_iterate is the body of one scheduled evaluation (iter in run()). */
static void
group_iterate(struct group *g, int64_t ts)
{
	int64_t start = clock_now(g->m), mono0 = time_mono_ns();

	pthread_mutex_lock(&g->mu);
	g->iterations++;
	pthread_mutex_unlock(&g->mu);
	group_eval(g, ts);
	pthread_mutex_lock(&g->mu);
	g->eval_dur_ns = time_mono_ns() - mono0;
	g->last_eval = start;
	g->iters++;
	pthread_mutex_unlock(&g->mu);
}

/* group_due returns when g next needs a step (ns), INT64_MAX for never.
 * Called with g->mu held. */
static int64_t
group_due(const struct group *g)
{
	if (g->done || g->abort)
		return INT64_MAX;
	if (g->retiring)
		return g->stop_time_ns == RULES_TIME_ZERO ? INT64_MIN : g->stale_at_ns;
	if (g->stop)
		return INT64_MAX;
	return g->next_ns;
}

/* retire_collect moves every series g wrote into g->stale (run()'s
 * deferred function); called once the group's evaluations ended. */
static void
retire_collect(struct group *g, int64_t now)
{
	size_t i, j;

	pthread_mutex_lock(&g->mu);
	for (i = 0; i < g->n_rules; i++) {
		struct lset *p = &g->rules[i].prev;

		for (j = 0; j < p->cap; j++)
			if (p->v[j].ls != NULL) {
				lset_add(&g->stale, p->v[j].ls, p->v[j].ref);
				p->v[j].ls = NULL;
			}
		lset_free(p);
	}
	g->stop_time_ns = now;
	g->stale_at_ns = now + 2 * g->interval_ns;
	pthread_mutex_unlock(&g->mu);
}

/* group_step does what is due at now. */
static void
group_step(struct group *g, int64_t now)
{
	int64_t ts;
	bool restore;

	pthread_mutex_lock(&g->mu);
	if (g->abort || g->done) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	if (g->retiring) {
		bool collect = g->stop_time_ns == RULES_TIME_ZERO, write = !collect && now >= g->stale_at_ns;
		int64_t stamp = g->stop_time_ns;

		pthread_mutex_unlock(&g->mu);
		if (collect) {
			retire_collect(g, now);
			return;
		}
		if (write) {
			cleanup_stale(g, stamp);
			pthread_mutex_lock(&g->mu);
			g->done = true;
			pthread_mutex_unlock(&g->mu);
		}
		return;
	}
	if (g->stop || now < g->next_ns) {
		pthread_mutex_unlock(&g->mu);
		return;
	}
	if (!g->started) {
		ts = g->next_ns;
		g->started = true;
	} else {
		int64_t missed = (now - g->last_ts) / g->interval_ns - 1;

		if (missed > 0) {
			g->missed += (uint64_t)missed;
			g->iterations += (uint64_t)missed;
		} else {
			missed = 0;
		}
		ts = g->last_ts + (missed + 1) * g->interval_ns;
	}
	g->last_ts = ts;
	g->next_ns = ts + g->interval_ns;
	pthread_mutex_unlock(&g->mu);

	group_iterate(g, ts);

	pthread_mutex_lock(&g->mu);
	restore = g->should_restore && g->iters == 2 && !g->stop;
	if (restore)
		g->should_restore = false;
	pthread_mutex_unlock(&g->mu);
	if (restore)
		restore_for_state(g, eval_now(g->m));
}

static void *
group_thread(void *arg)
{
	struct group *g = arg;

	pthread_mutex_lock(&g->mu);
	for (;;) {
		int64_t due = group_due(g), now;

		if (due == INT64_MAX) {
			if (g->done || g->abort || (g->stop && !g->retiring))
				break;
			pthread_cond_wait(&g->cond, &g->mu);
			continue;
		}
		now = eval_now(g->m);
		if (now < due) {
			struct timespec until;
			int64_t wall_due = due + (int64_t)atomic_load(&g->m->delay_ns);

			until.tv_sec = (time_t)(wall_due / NS_PER_S);
			until.tv_nsec = (long)(wall_due % NS_PER_S);
			pthread_cond_timedwait(&g->cond, &g->mu, &until);
			continue;
		}
		pthread_mutex_unlock(&g->mu);
		group_step(g, now);
		pthread_mutex_lock(&g->mu);
	}
	g->done = true;
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

/* group_start schedules g's first evaluation after now. */
static void
group_start(struct rules_manager *m, struct group *g, int64_t now)
{
	g->next_ns = rules_eval_timestamp(g->file, g->name, g->interval_ms, now) + g->interval_ns;
	if (m->o.manual)
		return;
	if (pthread_create(&g->thread, NULL, group_thread, g) == 0)
		g->thread_started = true;
	else
		log_kv(LOG_ERROR, "rules", "cannot start a rule group thread", "group", g->name,
		    (char *)NULL);
}

/* group_halt stops g's evaluations and waits for its thread (which, when
 * abort is false, has nothing else to do). */
static void
group_halt(struct group *g, bool abort)
{
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	if (abort)
		g->abort = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
	if (g->thread_started) {
		pthread_join(g->thread, NULL);
		g->thread_started = false;
	}
}

/* group_retire stops g's evaluations and lets it mark its series stale two
 * intervals from now (in its thread, or from rules_manager_run). */
static void
group_retire(struct group *g)
{
	pthread_mutex_lock(&g->mu);
	g->stop = true;
	g->retiring = true;
	g->stop_time_ns = RULES_TIME_ZERO;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

/* group_copy_state is Group.CopyState(from) into the new group to. */
static void
group_copy_state(struct group *to, struct group *from)
{
	bool *used = mem_calloc(from->n_rules + 1, sizeof(*used));
	size_t i, j, k;

	to->eval_dur_ns = from->eval_dur_ns;
	to->last_eval = from->last_eval;
	/* the self-metrics of a group continue across a change */
	to->evaluations = from->evaluations;
	to->failures = from->failures;
	to->iterations = from->iterations;
	to->missed = from->missed;
	to->last_samples = from->last_samples;
	for (i = 0; i < to->n_rules; i++) {
		struct rule *r = &to->rules[i];

		for (j = 0; j < from->n_rules; j++) {
			struct rule *f = &from->rules[j];

			if (used[j] || strcmp(f->name_and_labels, r->name_and_labels) != 0)
				continue;
			used[j] = true;
			lset_free(&r->prev);
			r->prev = f->prev;
			memset(&f->prev, 0, sizeof(f->prev));
			if (r->alert && f->alert) {
				for (k = 0; k < f->active.cap; k++)
					if (f->active.v[k] != NULL) {
						amap_put(&r->active, f->active.v[k]);
						f->active.v[k] = NULL;
					}
				f->active.n = 0;
			}
			break;
		}
	}
	lset_free(&to->stale);
	to->stale = from->stale;
	memset(&from->stale, 0, sizeof(from->stale));
	for (j = 0; j < from->n_rules; j++) {
		struct lset *p = &from->rules[j].prev;

		if (used[j])
			continue;
		for (k = 0; k < p->cap; k++)
			if (p->v[k].ls != NULL) {
				lset_add(&to->stale, p->v[k].ls, p->v[k].ref);
				p->v[k].ls = NULL;
			}
	}
	mem_free(used);
}

/* --- the manager ----------------------------------------------------------- */

/* rules_manager_new: see rules.h. */
struct rules_manager *
rules_manager_new(const struct rules_manager_opts *opts, char *err, size_t errlen)
{
	struct rules_manager *m;

	if (opts == NULL || opts->query == NULL || opts->head == NULL) {
		snprintf(err, errlen, "rule manager: a query function and a head are required");
		return NULL;
	}
	m = mem_calloc(1, sizeof(*m));
	m->o = *opts;
	m->external_url = mem_strdup(opts->external_url != NULL ? opts->external_url : "");
	m->o.external_url = m->external_url;
	atomic_init(&m->delay_ns, opts->eval_delay_ms > 0 ? opts->eval_delay_ms * NS_PER_MS : 0);
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

/* rules_manager_set_eval_delay: see rules.h. */
void
rules_manager_set_eval_delay(struct rules_manager *m, int64_t eval_delay_ms)
{
	atomic_store(&m->delay_ns, eval_delay_ms > 0 ? eval_delay_ms * NS_PER_MS : 0);
}

static int
group_cmp(const void *a, const void *b)
{
	const struct group *x = *(struct group *const *)a, *y = *(struct group *const *)b;
	int c = strcmp(x->file, y->file);

	return c != 0 ? c : strcmp(x->name, y->name);
}

/* reap_retired frees removed groups whose work is over. m->mu held. */
static void
reap_retired(struct rules_manager *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n_retired; i++) {
		struct group *g = m->retired[i];
		bool done;

		pthread_mutex_lock(&g->mu);
		done = g->done || g->abort;
		pthread_mutex_unlock(&g->mu);
		if (done) {
			if (g->thread_started)
				pthread_join(g->thread, NULL);
			group_free(g);
		} else {
			m->retired[n++] = g;
		}
	}
	m->n_retired = n;
}

/* rules_manager_update: see rules.h. */
int
rules_manager_update(struct rules_manager *m, int64_t interval_ms, const char *const *files,
    size_t nfiles, const struct labels *ext, char *err, size_t errlen)
{
	struct rulefmt_errors errs = { NULL, 0 };
	struct group **ng = NULL;
	size_t nng = 0, i, j;
	bool restored, first;
	int64_t now;

	pthread_mutex_lock(&m->mu);
	restored = m->restored;
	pthread_mutex_unlock(&m->mu);
	first = !restored;
	for (i = 0; i < nfiles; i++) {
		struct rulefmt_file *f = NULL;

		if (rulefmt_load(files[i], &f, &errs) < 0)
			continue;
		for (j = 0; j < f->n_groups; j++) {
			char e[1536];
			struct group *g = group_new(m, files[i], &f->groups[j], interval_ms, ext, restored,
			    e, sizeof(e));
			size_t k;

			if (g == NULL) {
				rulefmt_errors_add(&errs, "%s", e);
				continue;
			}
			g->should_restore = first;
			/* a file listed twice: the later group replaces the earlier */
			for (k = 0; k < nng; k++)
				if (strcmp(ng[k]->key, g->key) == 0)
					break;
			if (k < nng) {
				group_free(ng[k]);
				ng[k] = g;
			} else {
				ng = mem_realloc(ng, (nng + 1) * sizeof(*ng));
				ng[nng++] = g;
			}
		}
		rulefmt_file_free(f);
	}
	if (errs.n > 0) {
		for (i = 0; i < errs.n; i++)
			log_kv(LOG_ERROR, "rules", "loading groups failed", "err", errs.v[i], (char *)NULL);
		if (errs.n > 1)
			snprintf(err, errlen, "error loading rules, previous rule set restored: %s (and %zu more)",
			    errs.v[0], errs.n - 1);
		else
			snprintf(err, errlen, "error loading rules, previous rule set restored: %s", errs.v[0]);
		rulefmt_errors_free(&errs);
		for (i = 0; i < nng; i++)
			group_free(ng[i]);
		mem_free(ng);
		return -1;
	}
	if (nng > 1)
		qsort(ng, nng, sizeof(*ng), group_cmp);

	pthread_mutex_lock(&m->mu);
	if (m->stopped) {
		pthread_mutex_unlock(&m->mu);
		for (i = 0; i < nng; i++)
			group_free(ng[i]);
		mem_free(ng);
		snprintf(err, errlen, "the rule manager is stopped");
		return -1;
	}
	m->restored = true;
	now = eval_now(m);
	reap_retired(m);
	for (i = 0; i < nng; i++) {
		struct group *old = NULL;

		for (j = 0; j < m->n_groups; j++)
			if (m->groups[j] != NULL && strcmp(m->groups[j]->key, ng[i]->key) == 0) {
				old = m->groups[j];
				m->groups[j] = NULL;
				break;
			}
		if (old != NULL && group_equal(old, ng[i])) {
			group_free(ng[i]);
			ng[i] = old;
			continue;
		}
		if (old != NULL) {
			group_halt(old, false);
			group_copy_state(ng[i], old);
			group_free(old);
		}
		group_start(m, ng[i], now);
	}
	for (j = 0; j < m->n_groups; j++) {
		struct group *old = m->groups[j];

		if (old == NULL)
			continue;
		group_retire(old);
		if (m->o.manual)
			retire_collect(old, now);	/* no thread is evaluating it */
		m->retired = mem_realloc(m->retired, (m->n_retired + 1) * sizeof(*m->retired));
		m->retired[m->n_retired++] = old;
	}
	mem_free(m->groups);
	m->groups = ng;
	m->n_groups = nng;
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* rules_manager_apply: see rules.h. */
int
rules_manager_apply(struct rules_manager *m, const struct cfg *cfg, char *err, size_t errlen)
{
	char **files = NULL;
	size_t n = 0, i, k;
	int rc;

	for (i = 0; i < cfg->n_rule_files; i++) {
		glob_t gl;
		int grc;

		memset(&gl, 0, sizeof(gl));
		grc = glob(cfg->rule_files[i], GLOB_PERIOD, NULL, &gl);
		if (grc == GLOB_NOMATCH) {
			globfree(&gl);
			continue;
		}
		if (grc != 0) {
			snprintf(err, errlen, "error retrieving rule files for %s: glob failed",
			    cfg->rule_files[i]);
			globfree(&gl);
			for (k = 0; k < n; k++)
				mem_free(files[k]);
			mem_free(files);
			return -1;
		}
		for (k = 0; k < gl.gl_pathc; k++) {
			files = mem_realloc(files, (n + 1) * sizeof(*files));
			files[n++] = mem_strdup(gl.gl_pathv[k]);
		}
		globfree(&gl);
	}
	rc = rules_manager_update(m, cfg->evaluation_interval_ms, (const char *const *)files, n,
	    cfg->external_labels, err, errlen);
	for (k = 0; k < n; k++)
		mem_free(files[k]);
	mem_free(files);
	return rc;
}

/* rules_manager_run: see rules.h. */
int64_t
rules_manager_run(struct rules_manager *m)
{
	int64_t next = INT64_MAX, now;
	size_t i;

	if (!m->o.manual)
		return INT64_MAX;
	pthread_mutex_lock(&m->mu);
	now = eval_now(m);
	for (i = 0; i < m->n_groups + m->n_retired; i++) {
		struct group *g = i < m->n_groups ? m->groups[i] : m->retired[i - m->n_groups];
		int64_t due;
		int guard;

		/* retiring groups may need two steps: collect, then mark */
		for (guard = 0; guard < 3; guard++) {
			pthread_mutex_lock(&g->mu);
			due = group_due(g);
			pthread_mutex_unlock(&g->mu);
			if (due > now)
				break;
			group_step(g, now);
		}
		if (due < next)
			next = due;
	}
	reap_retired(m);
	pthread_mutex_unlock(&m->mu);
	if (next != INT64_MAX)
		next += (int64_t)atomic_load(&m->delay_ns);	/* on the caller's clock */
	return next;
}

/* rules_manager_stop: see rules.h. */
void
rules_manager_stop(struct rules_manager *m)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	m->stopped = true;
	for (i = 0; i < m->n_groups; i++)
		group_halt(m->groups[i], true);
	for (i = 0; i < m->n_retired; i++)
		group_halt(m->retired[i], true);
	pthread_mutex_unlock(&m->mu);
}

/* rules_manager_free: see rules.h. */
void
rules_manager_free(struct rules_manager *m)
{
	size_t i;

	if (m == NULL)
		return;
	rules_manager_stop(m);
	for (i = 0; i < m->n_groups; i++)
		group_free(m->groups[i]);
	for (i = 0; i < m->n_retired; i++)
		group_free(m->retired[i]);
	mem_free(m->groups);
	mem_free(m->retired);
	mem_free(m->external_url);
	pthread_mutex_destroy(&m->mu);
	mem_free(m);
}

/* --- snapshots ------------------------------------------------------------- */

static int
alert_info_cmp(const void *a, const void *b)
{
	return labels_compare(((const struct rules_alert_info *)a)->labels,
	    ((const struct rules_alert_info *)b)->labels);
}

static void
rule_snapshot(const struct rule *r, struct rules_rule_info *ri)
{
	size_t i, n = 0;

	ri->alert = r->alert;
	ri->name = mem_strdup(r->name);
	ri->query = mem_strdup(r->query);
	ri->for_ms = r->for_ms;
	ri->keep_firing_for_ms = r->kff_ms;
	ri->labels = kv_copy(r->labels, r->n_labels);
	ri->n_labels = r->n_labels;
	ri->annotations = kv_copy(r->ann, r->n_ann);
	ri->n_annotations = r->n_ann;
	ri->health = r->health;
	ri->last_error = r->last_error != NULL ? mem_strdup(r->last_error) : NULL;
	ri->eval_seconds = (double)r->eval_dur_ns / 1e9;
	ri->last_eval = r->last_eval;
	ri->state = RULES_INACTIVE;
	ri->alerts = mem_calloc(r->active.n + 1, sizeof(*ri->alerts));
	for (i = 0; i < r->active.cap; i++) {
		const struct alert *a = r->active.v[i];
		struct rules_alert_info *ai;

		if (a == NULL)
			continue;
		ai = &ri->alerts[n++];
		ai->labels = labels_ref(a->labels);
		ai->annotations = kv_copy(a->ann, a->nann);
		ai->n_annotations = a->nann;
		ai->state = a->state;
		ai->value = a->value;
		ai->active_at = a->active_at;
		ai->fired_at = a->fired_at;
		ai->resolved_at = a->resolved_at;
		ai->keep_firing_since = a->keep_firing_since;
		if (a->state > ri->state)
			ri->state = a->state;
	}
	ri->n_alerts = n;
	qsort(ri->alerts, n, sizeof(*ri->alerts), alert_info_cmp);
}

/* rules_manager_snapshot: see rules.h. */
struct rules_snapshot *
rules_manager_snapshot(struct rules_manager *m)
{
	struct rules_snapshot *s = mem_calloc(1, sizeof(*s));
	size_t i, j;

	pthread_mutex_lock(&m->mu);
	s->groups = mem_calloc(m->n_groups + 1, sizeof(*s->groups));
	s->n_groups = m->n_groups;
	for (i = 0; i < m->n_groups; i++) {
		struct group *g = m->groups[i];
		struct rules_group_info *gi = &s->groups[i];

		pthread_mutex_lock(&g->mu);
		gi->file = mem_strdup(g->file);
		gi->name = mem_strdup(g->name);
		gi->interval_ms = g->interval_ms;
		gi->limit = g->limit;
		gi->eval_seconds = (double)g->eval_dur_ns / 1e9;
		gi->last_eval = g->last_eval;
		gi->evaluations = g->evaluations;
		gi->failures = g->failures;
		gi->iterations = g->iterations;
		gi->missed = g->missed;
		gi->last_samples = g->last_samples;
		gi->rules = mem_calloc(g->n_rules + 1, sizeof(*gi->rules));
		gi->n_rules = g->n_rules;
		for (j = 0; j < g->n_rules; j++)
			rule_snapshot(&g->rules[j], &gi->rules[j]);
		pthread_mutex_unlock(&g->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return s;
}

/* rules_snapshot_free: see rules.h. */
void
rules_snapshot_free(struct rules_snapshot *s)
{
	size_t i, j, k;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_groups; i++) {
		struct rules_group_info *gi = &s->groups[i];

		for (j = 0; j < gi->n_rules; j++) {
			struct rules_rule_info *ri = &gi->rules[j];

			for (k = 0; k < ri->n_alerts; k++) {
				labels_free(ri->alerts[k].labels);
				kv_free(ri->alerts[k].annotations, ri->alerts[k].n_annotations);
			}
			mem_free(ri->alerts);
			mem_free(ri->name);
			mem_free(ri->query);
			kv_free(ri->labels, ri->n_labels);
			kv_free(ri->annotations, ri->n_annotations);
			mem_free(ri->last_error);
		}
		mem_free(gi->rules);
		mem_free(gi->file);
		mem_free(gi->name);
	}
	mem_free(s->groups);
	mem_free(s);
}
