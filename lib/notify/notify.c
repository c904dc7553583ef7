/* lib/notify/notify.c - the notifier: queue, Alertmanager discovery, sender thread.
 *
 * What it owns: the queue (an array used as a FIFO from qhead), the
 * running configuration (struct notify_config: per alertmanagers entry a
 * prototype HTTP client, its relabel rules and target sources, plus the
 * alert relabel rules and external labels), the published view of the
 * Alertmanagers (struct view: active targets, each with its own HTTP
 * client and libcurl handle, and dropped URLs) and the counters per URL
 * (struct amstat, kept for the life of the notifier, as Prometheus keeps
 * its metric series).
 *
 * Locking: n->mu guards all of the above pointers, the queue, the counters
 * and the reference counts of configurations and views. A view is
 * immutable once published; only the sender thread uses its libcurl
 * handles (one request at a time per target). A configuration's file_sd
 * state is touched by notify_commit before it is installed and by the
 * sender thread afterwards, never by both.
 */
#include "config.h"

#include "notify/notify.h"

#include <curl/curl.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "api/metrics.h"
#include "http/json.h"
#include "relabel/relabel.h"
#include "remote/client.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/time.h"

#define NS_PER_MS INT64_C(1000000)
#define LAT_WINDOW_NS (INT64_C(600) * 1000000000)	/* summary max age: 10m */
#define LAT_KEEP 1024					/* observations kept per URL */
#define MAX_RESP 4096

/* --- configuration ------------------------------------------------------ */

struct sd_file {
	char *path;
	int64_t mtime_ns, size;
	uint64_t ino;
	struct cfg_target_group *groups;
	size_t ngroups;
};

struct sd_conf {
	char **globs;
	size_t nglobs;
	int64_t refresh_ns;
	int64_t next_refresh_ns;	/* monotonic */
	struct sd_file *files;
	size_t nfiles;
};

/* One alerting.alertmanagers entry. */
struct amset {
	struct remote_client *proto;	/* settings; cloned per discovered URL */
	char *scheme;
	char *path;			/* the default __alerts_path__ */
	bool v1;
	struct relabel_rule **relabel;
	size_t nrelabel;
	struct cfg_target_group *statics;
	size_t nstatics;
	struct sd_conf *sd;
	size_t nsd;
};

struct notify_config {
	int refs;			/* under n->mu once installed */
	struct amset *sets;
	size_t nsets;
	struct relabel_rule **alert_relabel;
	size_t nalert_relabel;
	struct labels *ext;		/* never NULL */
};

/* --- published view of the Alertmanagers -------------------------------- */

struct amstat {
	char *url;
	uint64_t sent, errors;
	uint64_t lat_count;
	double lat_sum;
	bool has_lat;			/* observed at least once (series exists) */
	int64_t lat_t[LAT_KEEP];	/* monotonic ns of each kept observation */
	double lat_v[LAT_KEEP];
	size_t lat_head, lat_n;
};

struct target {
	char *url;
	size_t set;			/* index of its alertmanagers entry */
	bool v1;
	struct remote_client *client;
	CURL *easy;			/* sender thread only */
	struct amstat *st;
};

struct view {
	int refs;			/* under n->mu */
	struct target *t;
	size_t nt;
	char **dropped;
	size_t ndropped;
};

struct notifier {
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* queue, configuration or stop changed */
	pthread_t thread;
	bool started, stop;
	atomic_bool cancel;		/* aborts in-flight requests */

	int64_t capacity;
	size_t max_batch;
	char *external_url;
	char *user_agent;
	int64_t sd_check_ns;

	struct notify_alert **q;	/* q[qhead .. qhead+qlen) */
	size_t qhead, qlen, qalloc;
	uint64_t dropped;

	struct notify_config *conf;	/* NULL before the first commit */
	struct view *view;		/* never NULL */
	bool sd_due;			/* check file_sd now */
	struct amstat **stats;
	size_t nstats;
	struct labels_builder *lb;	/* notify_send's, under mu */
};

static void
alert_free(struct notify_alert *a)
{
	if (a == NULL)
		return;
	labels_free(a->labels);
	for (size_t i = 0; i < a->n_annotations; i++) {
		mem_free(a->annotations[i].name);
		mem_free(a->annotations[i].value);
	}
	mem_free(a->annotations);
	mem_free(a->generator_url);
	mem_free(a);
}

static void
sd_conf_clear_files(struct sd_conf *sd)
{
	for (size_t i = 0; i < sd->nfiles; i++) {
		mem_free(sd->files[i].path);
		cfg_target_groups_free(sd->files[i].groups, sd->files[i].ngroups);
	}
	MEM_FREE(sd->files);
	sd->nfiles = 0;
}

static void
rules_free(struct relabel_rule **r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		relabel_rule_free(r[i]);
	mem_free(r);
}

void
notify_config_free(struct notify_config *nc)
{
	if (nc == NULL)
		return;
	for (size_t i = 0; i < nc->nsets; i++) {
		struct amset *s = &nc->sets[i];

		remote_client_free(s->proto);
		mem_free(s->scheme);
		mem_free(s->path);
		rules_free(s->relabel, s->nrelabel);
		cfg_target_groups_free(s->statics, s->nstatics);
		for (size_t j = 0; j < s->nsd; j++) {
			for (size_t k = 0; k < s->sd[j].nglobs; k++)
				mem_free(s->sd[j].globs[k]);
			mem_free(s->sd[j].globs);
			sd_conf_clear_files(&s->sd[j]);
		}
		mem_free(s->sd);
	}
	mem_free(nc->sets);
	rules_free(nc->alert_relabel, nc->nalert_relabel);
	labels_free(nc->ext);
	mem_free(nc);
}

static void
view_free(struct view *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nt; i++) {
		mem_free(v->t[i].url);
		remote_client_free(v->t[i].client);
		if (v->t[i].easy != NULL)
			curl_easy_cleanup(v->t[i].easy);
	}
	mem_free(v->t);
	for (size_t i = 0; i < v->ndropped; i++)
		mem_free(v->dropped[i]);
	mem_free(v->dropped);
	mem_free(v);
}

/* view_unref drops a reference (n->mu held); returns the view to free
 * after unlocking, or NULL. */
static struct view *
view_unref(struct view *v)
{
	return v != NULL && --v->refs == 0 ? v : NULL;
}

static struct notify_config *
conf_unref(struct notify_config *c)
{
	return c != NULL && --c->refs == 0 ? c : NULL;
}

/* copy_rules compiles again the relabel rules of rl from their fields as
 * written (they compiled once already, so they compile again). */
static int
copy_rules(const struct cfg_relabels *rl, struct relabel_rule ***out, size_t *nout,
    char *err, size_t errlen)
{
	*out = mem_calloc(rl->n ? rl->n : 1, sizeof(**out));
	*nout = 0;
	for (size_t i = 0; i < rl->n; i++) {
		const struct cfg_relabel_raw *r = &rl->raw[i];
		struct relabel_spec spec;

		memset(&spec, 0, sizeof(spec));
		spec.action = r->action;
		spec.source_labels = (const char *const *)r->source_labels;
		spec.n_source_labels = r->n_source_labels;
		spec.separator = r->separator;
		spec.regex = r->regex;
		spec.has_modulus = r->has_modulus;
		spec.modulus = r->modulus;
		spec.target_label = r->target_label;
		spec.replacement = r->replacement;
		(*out)[i] = relabel_rule_new(&spec, err, errlen);
		if ((*out)[i] == NULL)
			return -1;
		*nout = i + 1;
	}
	return 0;
}

static struct cfg_target_group *
copy_groups(const struct cfg_target_group *g, size_t n)
{
	struct cfg_target_group *out = mem_calloc(n ? n : 1, sizeof(*out));

	for (size_t i = 0; i < n; i++) {
		out[i].targets = mem_calloc(g[i].n_targets ? g[i].n_targets : 1, sizeof(char *));
		for (size_t j = 0; j < g[i].n_targets; j++)
			out[i].targets[j] = mem_strdup(g[i].targets[j]);
		out[i].n_targets = g[i].n_targets;
		out[i].labels = labels_ref(g[i].labels);
		out[i].source = mem_strdup(g[i].source != NULL ? g[i].source : "");
	}
	return out;
}

/* path_join_clean appends "/" a "/" b to out, cleaned as Go's path.Join:
 * no empty or "." elements, ".." removes the previous one. */
static void
path_join_clean(const char *a, const char *b, struct strbuf *out)
{
	const char *parts[2] = { a, b };
	size_t starts[64];
	size_t depth = 0;

	strbuf_reset(out);
	for (int k = 0; k < 2; k++) {
		const char *p = parts[k];

		while (*p != '\0') {
			const char *e;
			size_t len;

			while (*p == '/')
				p++;
			e = p;
			while (*e != '\0' && *e != '/')
				e++;
			len = (size_t)(e - p);
			if (len == 0 || (len == 1 && p[0] == '.')) {
				/* nothing */
			} else if (len == 2 && p[0] == '.' && p[1] == '.') {
				if (depth > 0) {
					out->len = starts[--depth];
					out->buf[out->len] = '\0';
				}
			} else if (depth < sizeof(starts) / sizeof(starts[0])) {
				starts[depth++] = out->len;
				strbuf_putc(out, '/');
				strbuf_append(out, p, len);
			}
			p = e;
		}
	}
	if (out->len == 0)
		strbuf_putc(out, '/');
}

struct notify_config *
notify_prepare(const struct cfg *cfg, const struct labels *ext, const char *user_agent,
    char *err, size_t errlen)
{
	struct notify_config *nc = mem_calloc(1, sizeof(*nc));
	struct strbuf sb = STRBUF_INIT;

	nc->refs = 1;
	nc->ext = ext != NULL ? labels_ref((struct labels *)ext) : labels_empty();
	if (copy_rules(&cfg->alert_relabel, &nc->alert_relabel, &nc->nalert_relabel,
	    err, errlen) < 0)
		goto fail;
	nc->sets = mem_calloc(cfg->n_alertmanagers ? cfg->n_alertmanagers : 1, sizeof(*nc->sets));
	for (size_t i = 0; i < cfg->n_alertmanagers; i++) {
		const struct cfg_alertmanager *a = &cfg->alertmanagers[i];
		struct amset *s = &nc->sets[i];
		char e[512];

		nc->nsets = i + 1;
		s->scheme = mem_strdup(a->scheme);
		s->v1 = strcmp(a->api_version, "v1") == 0;
		strbuf_reset(&sb);
		strbuf_printf(&sb, "/api/%s/alerts", s->v1 ? "v1" : "v2");
		{
			char *tail = strbuf_detach(&sb, NULL);

			path_join_clean(a->path_prefix, tail, &sb);
			mem_free(tail);
		}
		s->path = mem_strdup(strbuf_cstr(&sb));
		strbuf_reset(&sb);
		strbuf_printf(&sb, "%s://alertmanager%s", a->scheme, s->path);
		s->proto = remote_client_new(REMOTE_KIND_ALERTS, strbuf_cstr(&sb), a->timeout_ms,
		    NULL, 0, &a->http, user_agent, e, sizeof(e));
		if (s->proto == NULL) {
			snprintf(err, errlen, "alertmanager config %zu: %s", i, e);
			goto fail;
		}
		if (copy_rules(&a->relabel, &s->relabel, &s->nrelabel, err, errlen) < 0)
			goto fail;
		s->statics = copy_groups(a->static_configs, a->n_static_configs);
		s->nstatics = a->n_static_configs;
		s->sd = mem_calloc(a->n_file_sd ? a->n_file_sd : 1, sizeof(*s->sd));
		s->nsd = a->n_file_sd;
		for (size_t j = 0; j < a->n_file_sd; j++) {
			struct sd_conf *sd = &s->sd[j];

			sd->globs = mem_calloc(a->file_sd[j].n_files ? a->file_sd[j].n_files : 1,
			    sizeof(char *));
			for (size_t k = 0; k < a->file_sd[j].n_files; k++)
				sd->globs[k] = mem_strdup(a->file_sd[j].files[k]);
			sd->nglobs = a->file_sd[j].n_files;
			sd->refresh_ns = (a->file_sd[j].refresh_interval_ms > 0 ?
			    a->file_sd[j].refresh_interval_ms : 300000) * NS_PER_MS;
		}
	}
	strbuf_free(&sb);
	return nc;
fail:
	strbuf_free(&sb);
	notify_config_free(nc);
	return NULL;
}

/* --- discovery ---------------------------------------------------------- */

/* sd_refresh brings one file_sd source up to date: files its globs match,
 * read when new, changed (mtime, size, inode) or when the refresh interval
 * is due. A file that cannot be read keeps its previous groups, as
 * Prometheus does. Returns true when the groups may have changed. */
static bool
sd_refresh(struct sd_conf *sd, int64_t now, bool force)
{
	struct sd_file *nf = NULL;
	size_t nn = 0, cap = 0;
	bool due = force || now >= sd->next_refresh_ns, changed = false;

	for (size_t i = 0; i < sd->nglobs; i++) {
		glob_t g;
		int rc = glob(sd->globs[i], 0, NULL, &g);

		if (rc != 0) {
			if (rc != GLOB_NOMATCH)
				log_kv(LOG_ERROR, "notifier", "Error expanding glob", "glob",
				    sd->globs[i], (char *)NULL);
			continue;
		}
		for (size_t j = 0; j < g.gl_pathc; j++) {
			const char *path = g.gl_pathv[j];
			struct sd_file *old = NULL, cur;
			struct stat stt;
			size_t k;

			for (k = 0; k < nn; k++)
				if (strcmp(nf[k].path, path) == 0)
					break;
			if (k < nn)
				continue;	/* matched by an earlier glob */
			for (k = 0; k < sd->nfiles; k++)
				if (sd->files[k].path != NULL && strcmp(sd->files[k].path, path) == 0)
					old = &sd->files[k];
			memset(&cur, 0, sizeof(cur));
			if (stat(path, &stt) == 0) {
				cur.mtime_ns = (int64_t)stt.st_mtim.tv_sec * 1000000000 +
				    stt.st_mtim.tv_nsec;
				cur.size = (int64_t)stt.st_size;
				cur.ino = (uint64_t)stt.st_ino;
			}
			if (old != NULL && !due && old->mtime_ns == cur.mtime_ns &&
			    old->size == cur.size && old->ino == cur.ino) {
				cur = *old;
				memset(old, 0, sizeof(*old));
			} else {
				char err[512];

				cur.path = mem_strdup(path);
				if (cfg_sd_file_load(path, &cur.groups, &cur.ngroups, err,
				    sizeof(err)) < 0) {
					log_kv(LOG_ERROR, "notifier", "Error reading file", "path", path,
					    "err", err, (char *)NULL);
					if (old != NULL) {
						cur.groups = old->groups;
						cur.ngroups = old->ngroups;
						old->groups = NULL;
						old->ngroups = 0;
					}
				} else {
					changed = true;
				}
			}
			if (nn == cap) {
				cap = cap ? cap * 2 : 8;
				nf = mem_realloc(nf, cap * sizeof(*nf));
			}
			nf[nn++] = cur;
		}
		globfree(&g);
	}
	for (size_t i = 0; i < sd->nfiles; i++)
		if (sd->files[i].path != NULL && sd->files[i].ngroups > 0)
			changed = true;	/* a file that went away had groups */
	sd_conf_clear_files(sd);
	sd->files = nf;
	sd->nfiles = nn;
	if (due)
		sd->next_refresh_ns = now + sd->refresh_ns;
	return changed;
}

struct vbuild {
	struct view *v;
	size_t tcap, dcap;
	struct labels_builder *lb;
	struct strbuf sb;
};

static void
vb_dropped(struct vbuild *b, const char *url)
{
	struct view *v = b->v;

	if (v->ndropped == b->dcap) {
		b->dcap = b->dcap ? b->dcap * 2 : 8;
		v->dropped = mem_realloc(v->dropped, b->dcap * sizeof(*v->dropped));
	}
	v->dropped[v->ndropped++] = mem_strdup(url);
}

/* am_url writes scheme://address path to sb. */
static const char *
am_url(struct strbuf *sb, const char *scheme, const char *addr, const char *path)
{
	strbuf_reset(sb);
	strbuf_printf(sb, "%s://%s%s%s", scheme, addr,
	    path[0] != '/' && path[0] != '\0' ? "/" : "", path);
	return strbuf_cstr(sb);
}

/* vb_group adds the targets of one group of set si (Prometheus'
 * AlertmanagerFromGroup): a target whose address after relabeling holds a
 * '/' makes the whole group fail, as in Prometheus. */
static void
vb_group(struct vbuild *b, const struct amset *s, size_t si, const struct cfg_target_group *g)
{
	struct view *v = b->v;
	size_t first_t = v->nt, first_d = v->ndropped;

	for (size_t i = 0; i < g->n_targets; i++) {
		const struct labels *gl = g->labels;
		const char *addr, *scheme, *path, *url;
		bool keep;

		labels_builder_reset(b->lb, NULL);
		for (uint32_t k = 0; gl != NULL && k < gl->n; k++)
			labels_builder_set(b->lb, gl->v[k].name, gl->v[k].value);
		labels_builder_set(b->lb, "__address__", g->targets[i]);
		labels_builder_set(b->lb, "__scheme__", s->scheme);
		labels_builder_set(b->lb, "__alerts_path__", s->path);
		keep = relabel_apply(s->relabel, s->nrelabel, b->lb);
		if (!keep) {
			vb_dropped(b, am_url(&b->sb, s->scheme, g->targets[i], s->path));
			continue;
		}
		addr = labels_builder_get(b->lb, "__address__");
		scheme = labels_builder_get(b->lb, "__scheme__");
		path = labels_builder_get(b->lb, "__alerts_path__");
		addr = addr != NULL ? addr : "";
		if (strchr(addr, '/') != NULL) {
			char msg[512];

			snprintf(msg, sizeof(msg), "\"%s\" is not a valid hostname", addr);
			log_kv(LOG_ERROR, "notifier", "Creating discovered Alertmanagers failed",
			    "err", msg, (char *)NULL);
			for (size_t k = first_t; k < v->nt; k++) {
				mem_free(v->t[k].url);
				remote_client_free(v->t[k].client);
			}
			for (size_t k = first_d; k < v->ndropped; k++)
				mem_free(v->dropped[k]);
			v->nt = first_t;
			v->ndropped = first_d;
			return;
		}
		url = am_url(&b->sb, scheme != NULL ? scheme : "", addr, path != NULL ? path : "");
		{
			bool seen = false;

			for (size_t k = 0; k < v->nt && !seen; k++)
				seen = v->t[k].set == si && strcmp(v->t[k].url, url) == 0;
			if (seen)
				continue;
		}
		if (v->nt == b->tcap) {
			b->tcap = b->tcap ? b->tcap * 2 : 8;
			v->t = mem_realloc(v->t, b->tcap * sizeof(*v->t));
		}
		memset(&v->t[v->nt], 0, sizeof(v->t[v->nt]));
		v->t[v->nt].url = mem_strdup(url);
		v->t[v->nt].set = si;
		v->t[v->nt].v1 = s->v1;
		v->t[v->nt].client = remote_client_clone(s->proto, url);
		v->nt++;
	}
}

/* discover refreshes c's file sources (force: read every file) and
 * returns the view of c's Alertmanagers (one reference, no counters
 * attached yet); *changed tells whether a file source changed. */
static struct view *
discover(struct notify_config *c, bool force, bool *changed)
{
	struct vbuild b;
	int64_t now = time_mono_ns();

	memset(&b, 0, sizeof(b));
	b.v = mem_calloc(1, sizeof(*b.v));
	b.v->refs = 1;
	b.lb = labels_builder_new();
	strbuf_init(&b.sb);
	*changed = false;
	for (size_t i = 0; i < c->nsets; i++) {
		struct amset *s = &c->sets[i];

		for (size_t j = 0; j < s->nstatics; j++)
			vb_group(&b, s, i, &s->statics[j]);
		for (size_t j = 0; j < s->nsd; j++) {
			if (sd_refresh(&s->sd[j], now, force))
				*changed = true;
			for (size_t k = 0; k < s->sd[j].nfiles; k++)
				for (size_t l = 0; l < s->sd[j].files[k].ngroups; l++)
					vb_group(&b, s, i, &s->sd[j].files[k].groups[l]);
		}
	}
	labels_builder_free(b.lb);
	strbuf_free(&b.sb);
	return b.v;
}

static bool
view_same(const struct view *a, const struct view *b)
{
	if (a->nt != b->nt || a->ndropped != b->ndropped)
		return false;
	for (size_t i = 0; i < a->nt; i++)
		if (a->t[i].set != b->t[i].set || strcmp(a->t[i].url, b->t[i].url) != 0)
			return false;
	for (size_t i = 0; i < a->ndropped; i++)
		if (strcmp(a->dropped[i], b->dropped[i]) != 0)
			return false;
	return true;
}

/* stat_get returns the counters of url, creating them at zero (n->mu held). */
static struct amstat *
stat_get(struct notifier *n, const char *url)
{
	struct amstat *st;

	for (size_t i = 0; i < n->nstats; i++)
		if (strcmp(n->stats[i]->url, url) == 0)
			return n->stats[i];
	st = mem_calloc(1, sizeof(*st));
	st->url = mem_strdup(url);
	n->stats = mem_realloc(n->stats, (n->nstats + 1) * sizeof(*n->stats));
	n->stats[n->nstats++] = st;
	return st;
}

/* publish installs v as the view (n->mu held) and returns the old view
 * to free after unlocking, or NULL. */
static struct view *
publish(struct notifier *n, struct view *v)
{
	struct view *old = n->view;

	for (size_t i = 0; i < v->nt; i++)
		v->t[i].st = stat_get(n, v->t[i].url);
	n->view = v;
	return view_unref(old);
}

void
notify_commit(struct notifier *n, struct notify_config *nc)
{
	struct view *v, *oldv;
	struct notify_config *oldc;
	bool changed;

	v = discover(nc, true, &changed);
	pthread_mutex_lock(&n->mu);
	oldc = conf_unref(n->conf);
	n->conf = nc;
	nc->refs = 1;
	oldv = publish(n, v);
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
	view_free(oldv);
	notify_config_free(oldc);
}

int
notify_apply(struct notifier *n, const struct cfg *cfg, const struct labels *ext,
    char *err, size_t errlen)
{
	struct notify_config *nc = notify_prepare(cfg, ext, n->user_agent, err, errlen);

	if (nc == NULL)
		return -1;
	notify_commit(n, nc);
	return 0;
}

/* --- the queue ------------------------------------------------------------ */

/* go_query_escape appends s escaped as Go's url.QueryEscape. */
static void
go_query_escape(const char *s, struct strbuf *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			strbuf_putc(out, (char)c);
		} else if (c == ' ') {
			strbuf_putc(out, '+');
		} else {
			strbuf_putc(out, '%');
			strbuf_putc(out, hex[c >> 4]);
			strbuf_putc(out, hex[c & 15]);
		}
	}
}

static int
kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rulefmt_kv *)a)->name, ((const struct rulefmt_kv *)b)->name);
}

/* queue_push appends a (n->mu held), growing the array as needed. */
static void
queue_push(struct notifier *n, struct notify_alert *a)
{
	if (n->qhead + n->qlen == n->qalloc) {
		if (n->qhead > 0) {
			memmove(n->q, n->q + n->qhead, n->qlen * sizeof(*n->q));
			n->qhead = 0;
		} else {
			n->qalloc = n->qalloc ? n->qalloc * 2 : 64;
			n->q = mem_realloc(n->q, n->qalloc * sizeof(*n->q));
		}
	}
	n->q[n->qhead + n->qlen++] = a;
}

/* queue_drop_oldest frees the d oldest queued alerts (n->mu held). */
static void
queue_drop_oldest(struct notifier *n, size_t d)
{
	for (size_t i = 0; i < d; i++)
		alert_free(n->q[n->qhead + i]);
	n->qhead += d;
	n->qlen -= d;
	if (n->qlen == 0)
		n->qhead = 0;
}

void
notify_send(void *arg, const char *expr, const struct rules_notify_alert *alerts, size_t na)
{
	struct notifier *n = arg;
	struct notify_alert **batch;
	struct strbuf gen = STRBUF_INIT;
	size_t nb = 0, cap;

	if (na == 0)
		return;
	if (n->external_url != NULL) {
		strbuf_puts(&gen, n->external_url);
		strbuf_puts(&gen, "/graph?g0.expr=");
		go_query_escape(expr != NULL ? expr : "", &gen);
		strbuf_puts(&gen, "&g0.tab=1");
	}
	batch = mem_calloc(na, sizeof(*batch));
	pthread_mutex_lock(&n->mu);
	if (n->stop) {
		pthread_mutex_unlock(&n->mu);
		mem_free(batch);
		strbuf_free(&gen);
		return;
	}
	for (size_t i = 0; i < na; i++) {
		const struct rules_notify_alert *ra = &alerts[i];
		struct notify_alert *a;
		const struct labels *ext = n->conf != NULL ? n->conf->ext : NULL;

		labels_builder_reset(n->lb, ra->labels);
		for (uint32_t k = 0; ext != NULL && k < ext->n; k++) {
			const char *have = labels_get(ra->labels, ext->v[k].name);

			if (have == NULL || have[0] == '\0')
				labels_builder_set(n->lb, ext->v[k].name, ext->v[k].value);
		}
		if (n->conf != NULL &&
		    !relabel_apply(n->conf->alert_relabel, n->conf->nalert_relabel, n->lb))
			continue;
		a = mem_calloc(1, sizeof(*a));
		a->labels = labels_builder_labels(n->lb);
		a->annotations = mem_calloc(ra->n_annotations ? ra->n_annotations : 1,
		    sizeof(*a->annotations));
		for (size_t k = 0; k < ra->n_annotations; k++) {
			a->annotations[k].name = mem_strdup(ra->annotations[k].name);
			a->annotations[k].value = mem_strdup(ra->annotations[k].value);
		}
		a->n_annotations = ra->n_annotations;
		qsort(a->annotations, a->n_annotations, sizeof(*a->annotations), kv_cmp);
		a->starts_at = ra->starts_at;
		a->ends_at = ra->ends_at;
		a->generator_url = n->external_url != NULL ? mem_strdup(strbuf_cstr(&gen)) : NULL;
		batch[nb++] = a;
	}
	if (nb == 0)
		goto out;
	cap = (size_t)n->capacity;
	if (nb > cap) {
		size_t d = nb - cap;

		for (size_t i = 0; i < d; i++)
			alert_free(batch[i]);
		memmove(batch, batch + d, cap * sizeof(*batch));
		nb = cap;
		n->dropped += d;
		log_msg(LOG_WARN, "notifier",
		    "Alert batch larger than queue capacity, dropping alerts num_dropped=%zu", d);
	}
	if (n->qlen + nb > cap) {
		size_t d = n->qlen + nb - cap;

		queue_drop_oldest(n, d);
		n->dropped += d;
		log_msg(LOG_WARN, "notifier",
		    "Alert notification queue full, dropping alerts num_dropped=%zu", d);
	}
	for (size_t i = 0; i < nb; i++)
		queue_push(n, batch[i]);
	pthread_cond_broadcast(&n->cond);
out:
	pthread_mutex_unlock(&n->mu);
	mem_free(batch);
	strbuf_free(&gen);
}

/* --- payloads ----------------------------------------------------------- */

/* fmt_time writes t (ns, UTC) as Go formats it: with 3 fraction digits
 * (strfmt.DateTime, v2) or RFC3339Nano (fraction without trailing zeros,
 * v1). RULES_TIME_ZERO is Go's zero time. */
static void
fmt_time(int64_t t, bool nano, struct strbuf *out)
{
	time_t secs;
	int64_t frac;
	struct tm tm;
	char buf[64];

	if (t == RULES_TIME_ZERO) {
		strbuf_puts(out, nano ? "0001-01-01T00:00:00Z" : "0001-01-01T00:00:00.000Z");
		return;
	}
	secs = (time_t)(t / 1000000000);
	frac = t % 1000000000;
	if (frac < 0) {
		frac += 1000000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	strbuf_puts(out, buf);
	if (!nano) {
		strbuf_printf(out, ".%03dZ", (int)(frac / 1000000));
		return;
	}
	if (frac != 0) {
		int len = snprintf(buf, sizeof(buf), ".%09d", (int)frac);

		while (len > 1 && buf[len - 1] == '0')
			len--;
		strbuf_append(out, buf, (size_t)len);
	}
	strbuf_putc(out, 'Z');
}

static void
json_time(struct json_writer *w, int64_t t, bool nano)
{
	struct strbuf sb = STRBUF_INIT;

	fmt_time(t, nano, &sb);
	json_string_n(w, sb.buf, sb.len);
	strbuf_free(&sb);
}

static void
json_kvs(struct json_writer *w, const struct rulefmt_kv *kv, size_t n)
{
	json_object_begin(w);
	for (size_t i = 0; i < n; i++) {
		json_key(w, kv[i].name);
		json_string(w, kv[i].value);
	}
	json_object_end(w);
}

void
notify_format_v2(const struct notify_alert *const *alerts, size_t n, struct strbuf *out)
{
	struct json_writer w;

	json_init(&w, out);
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		const struct notify_alert *a = alerts[i];

		/* PostableAlert: its own fields, then the embedded Alert's */
		json_object_begin(&w);
		if (a->n_annotations > 0) {
			json_key(&w, "annotations");
			json_kvs(&w, a->annotations, a->n_annotations);
		}
		json_key(&w, "endsAt");
		json_time(&w, a->ends_at, false);
		json_key(&w, "startsAt");
		json_time(&w, a->starts_at, false);
		if (a->generator_url != NULL && a->generator_url[0] != '\0') {
			json_key(&w, "generatorURL");
			json_string(&w, a->generator_url);
		}
		json_key(&w, "labels");
		json_labels(&w, a->labels);
		json_object_end(&w);
	}
	json_array_end(&w);
}

void
notify_format_v1(const struct notify_alert *const *alerts, size_t n, struct strbuf *out)
{
	struct json_writer w;

	json_init(&w, out);
	json_array_begin(&w);
	for (size_t i = 0; i < n; i++) {
		const struct notify_alert *a = alerts[i];

		json_object_begin(&w);
		json_key(&w, "labels");
		json_labels(&w, a->labels);
		json_key(&w, "annotations");
		json_kvs(&w, a->annotations, a->n_annotations);
		json_key(&w, "startsAt");
		json_time(&w, a->starts_at, true);
		json_key(&w, "endsAt");
		json_time(&w, a->ends_at, true);
		if (a->generator_url != NULL && a->generator_url[0] != '\0') {
			json_key(&w, "generatorURL");
			json_string(&w, a->generator_url);
		}
		json_object_end(&w);
	}
	json_array_end(&w);
}

/* --- sending ------------------------------------------------------------ */

struct job {
	struct notifier *n;
	struct target *t;
	const struct strbuf *body;
	size_t count;
	int64_t begin;
	bool ok;
	pthread_t th;
	bool threaded;
};

static void
lat_observe(struct amstat *st, int64_t now, double secs)
{
	size_t i = (st->lat_head + st->lat_n) % LAT_KEEP;

	if (st->lat_n == LAT_KEEP) {
		st->lat_head = (st->lat_head + 1) % LAT_KEEP;
		st->lat_n--;
	}
	st->lat_t[i] = now;
	st->lat_v[i] = secs;
	st->lat_n++;
	st->lat_count++;
	st->lat_sum += secs;
	st->has_lat = true;
}

static void
send_one(struct job *j)
{
	struct notifier *n = j->n;
	struct target *t = j->t;
	struct remote_response r;
	char msg[MAX_RESP + 600], count[32];
	int rc;
	int64_t now;

	remote_response_init(&r);
	if (t->easy == NULL)
		t->easy = curl_easy_init();
	if (t->easy == NULL) {
		rc = -1;
		snprintf(r.err, sizeof(r.err), "cannot create an HTTP client handle");
	} else {
		rc = remote_client_post_cancel(t->client, t->easy, j->body->buf, j->body->len,
		    MAX_RESP, &n->cancel, &r);
	}
	j->ok = rc == 0 && r.status / 100 == 2;
	if (!j->ok) {
		if (rc == 0)
			snprintf(msg, sizeof(msg), "bad response status %ld", r.status);
		else
			snprintf(msg, sizeof(msg), "%s", r.err);
		snprintf(count, sizeof(count), "%zu", j->count);
		if (!atomic_load(&n->cancel))
			log_kv(LOG_ERROR, "notifier", "Error sending alert", "alertmanager", t->url,
			    "count", count, "err", msg, (char *)NULL);
	}
	now = time_mono_ns();
	pthread_mutex_lock(&n->mu);
	lat_observe(t->st, now, (double)(now - j->begin) / 1e9);
	t->st->sent += j->count;
	if (!j->ok)
		t->st->errors++;
	pthread_mutex_unlock(&n->mu);
	remote_response_free(&r);
}

static void *
send_thread(void *arg)
{
	send_one(arg);
	return NULL;
}

/* send_all posts the batch to every target of v at once and waits for all
 * of them (Prometheus' sendAll). Returns true when at least one accepted. */
static bool
send_all(struct notifier *n, struct view *v, struct notify_alert **batch, size_t nb)
{
	struct strbuf v1 = STRBUF_INIT, v2 = STRBUF_INIT;
	struct job *jobs;
	int64_t begin = time_mono_ns();
	bool ok = false;

	if (nb == 0)
		return true;
	if (v->nt == 0)
		return false;
	jobs = mem_calloc(v->nt, sizeof(*jobs));
	for (size_t i = 0; i < v->nt; i++) {
		struct strbuf *body = v->t[i].v1 ? &v1 : &v2;

		if (body->len == 0) {
			if (v->t[i].v1)
				notify_format_v1((const struct notify_alert *const *)batch, nb, body);
			else
				notify_format_v2((const struct notify_alert *const *)batch, nb, body);
		}
		jobs[i].n = n;
		jobs[i].t = &v->t[i];
		jobs[i].body = body;
		jobs[i].count = nb;
		jobs[i].begin = begin;
	}
	/* the first target on this thread, the others on helpers */
	for (size_t i = 1; i < v->nt; i++)
		jobs[i].threaded = pthread_create(&jobs[i].th, NULL, send_thread, &jobs[i]) == 0;
	for (size_t i = 0; i < v->nt; i++)
		if (i == 0 || !jobs[i].threaded)
			send_one(&jobs[i]);
	for (size_t i = 1; i < v->nt; i++)
		if (jobs[i].threaded)
			pthread_join(jobs[i].th, NULL);
	for (size_t i = 0; i < v->nt; i++)
		ok = ok || jobs[i].ok;
	mem_free(jobs);
	strbuf_free(&v1);
	strbuf_free(&v2);
	return ok;
}

static bool
conf_has_sd(const struct notify_config *c)
{
	for (size_t i = 0; c != NULL && i < c->nsets; i++)
		if (c->sets[i].nsd > 0)
			return true;
	return false;
}

/* sd_tick re-reads c's file sources (n->mu not held) and publishes the
 * result when it differs and c is still the running configuration. */
static void
sd_tick(struct notifier *n, struct notify_config *c)
{
	bool changed;
	struct view *v = discover(c, false, &changed), *old = NULL;

	pthread_mutex_lock(&n->mu);
	if (n->conf == c && !view_same(v, n->view)) {
		old = publish(n, v);
		v = NULL;
	}
	pthread_mutex_unlock(&n->mu);
	view_free(v);
	view_free(old);
}

static void *
sender(void *arg)
{
	struct notifier *n = arg;
	int64_t next_sd = time_mono_ns() + n->sd_check_ns;

	pthread_mutex_lock(&n->mu);
	for (;;) {
		struct notify_alert **batch;
		struct view *v, *vf;
		size_t nb;
		int64_t now = time_mono_ns();
		bool sd = conf_has_sd(n->conf);

		if (n->stop)
			break;
		if (sd && now >= next_sd) {
			struct notify_config *c = n->conf, *cf;

			c->refs++;
			pthread_mutex_unlock(&n->mu);
			sd_tick(n, c);
			pthread_mutex_lock(&n->mu);
			cf = conf_unref(c);
			if (cf != NULL) {
				pthread_mutex_unlock(&n->mu);
				notify_config_free(cf);
				pthread_mutex_lock(&n->mu);
			}
			next_sd = time_mono_ns() + n->sd_check_ns;
			continue;
		}
		if (n->qlen == 0) {
			if (sd) {
				struct timespec ts = {
					.tv_sec = (time_t)(next_sd / 1000000000),
					.tv_nsec = (long)(next_sd % 1000000000),
				};

				pthread_cond_timedwait(&n->cond, &n->mu, &ts);
			} else {
				pthread_cond_wait(&n->cond, &n->mu);
			}
			continue;
		}
		nb = n->qlen < n->max_batch ? n->qlen : n->max_batch;
		batch = mem_alloc(nb * sizeof(*batch));
		memcpy(batch, n->q + n->qhead, nb * sizeof(*batch));
		n->qhead += nb;
		n->qlen -= nb;
		if (n->qlen == 0)
			n->qhead = 0;
		v = n->view;
		v->refs++;
		pthread_mutex_unlock(&n->mu);

		if (!send_all(n, v, batch, nb)) {
			pthread_mutex_lock(&n->mu);
			n->dropped += nb;
			pthread_mutex_unlock(&n->mu);
		}
		for (size_t i = 0; i < nb; i++)
			alert_free(batch[i]);
		mem_free(batch);

		pthread_mutex_lock(&n->mu);
		vf = view_unref(v);
		if (vf != NULL) {
			pthread_mutex_unlock(&n->mu);
			view_free(vf);
			pthread_mutex_lock(&n->mu);
		}
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* --- life cycle ----------------------------------------------------------- */

struct notifier *
notify_new(const struct notify_opts *o)
{
	struct notifier *n = mem_calloc(1, sizeof(*n));
	pthread_condattr_t ca;

	pthread_mutex_init(&n->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&n->cancel, false);
	n->capacity = o != NULL && o->queue_capacity > 0 ? o->queue_capacity :
	    NOTIFY_DEFAULT_QUEUE_CAPACITY;
	n->max_batch = o != NULL && o->max_batch > 0 ? o->max_batch : NOTIFY_MAX_BATCH;
	n->external_url = o != NULL && o->external_url != NULL ? mem_strdup(o->external_url) : NULL;
	n->user_agent = mem_strdup(o != NULL && o->user_agent != NULL ? o->user_agent :
	    "strata/" PACKAGE_VERSION);
	n->sd_check_ns = (o != NULL && o->sd_check_ms > 0 ? o->sd_check_ms : 5000) * NS_PER_MS;
	n->view = mem_calloc(1, sizeof(*n->view));
	n->view->refs = 1;
	n->lb = labels_builder_new();
	n->started = pthread_create(&n->thread, NULL, sender, n) == 0;
	if (!n->started)
		log_kv(LOG_ERROR, "notifier", "cannot start the sender thread", (char *)NULL);
	return n;
}

void
notify_stop(struct notifier *n)
{
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	atomic_store(&n->cancel, true);
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->mu);
	if (n->started) {
		pthread_join(n->thread, NULL);
		n->started = false;
	}
	pthread_mutex_lock(&n->mu);
	queue_drop_oldest(n, n->qlen);
	pthread_mutex_unlock(&n->mu);
}

void
notify_free(struct notifier *n)
{
	if (n == NULL)
		return;
	notify_stop(n);
	mem_free(n->q);
	notify_config_free(n->conf);
	view_free(n->view);
	for (size_t i = 0; i < n->nstats; i++) {
		mem_free(n->stats[i]->url);
		mem_free(n->stats[i]);
	}
	mem_free(n->stats);
	labels_builder_free(n->lb);
	mem_free(n->external_url);
	mem_free(n->user_agent);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->mu);
	mem_free(n);
}

/* --- status ------------------------------------------------------------- */

void
notify_get_stats(struct notifier *n, struct notify_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&n->mu);
	st->queue_length = n->qlen;
	st->queue_capacity = (size_t)n->capacity;
	st->alertmanagers = n->view->nt;
	st->dropped = n->dropped;
	for (size_t i = 0; i < n->nstats; i++) {
		st->sent += n->stats[i]->sent;
		st->errors += n->stats[i]->errors;
	}
	pthread_mutex_unlock(&n->mu);
}

void
notify_alertmanagers_json(struct notifier *n, struct strbuf *out)
{
	struct json_writer w;

	json_init(&w, out);
	pthread_mutex_lock(&n->mu);
	json_object_begin(&w);
	json_key(&w, "activeAlertmanagers");
	json_array_begin(&w);
	for (size_t i = 0; i < n->view->nt; i++) {
		json_object_begin(&w);
		json_key(&w, "url");
		json_string(&w, n->view->t[i].url);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_key(&w, "droppedAlertmanagers");
	json_array_begin(&w);
	for (size_t i = 0; i < n->view->ndropped; i++) {
		json_object_begin(&w);
		json_key(&w, "url");
		json_string(&w, n->view->dropped[i]);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	pthread_mutex_unlock(&n->mu);
}

static int
handle_alertmanagers(struct http_request *req, void *arg)
{
	struct api_response r;
	struct strbuf data = STRBUF_INIT;

	notify_alertmanagers_json(arg, &data);
	api_success_begin(&r);
	json_raw(&r.w, data.buf, data.len);
	strbuf_free(&data);
	return api_success_end(&r, req);
}

int
notify_route(struct notifier *n, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/api/v1/alertmanagers",
	    HTTP_ROUTE_GZIP, handle_alertmanagers, n);
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
stat_cmp(const void *a, const void *b)
{
	return strcmp((*(struct amstat *const *)a)->url, (*(struct amstat *const *)b)->url);
}

void
notify_collect(void *arg, struct strbuf *out)
{
	static const double qs[] = { 0.5, 0.9, 0.99 };
	static const char *const qn[] = { "0.5", "0.9", "0.99" };
	struct notifier *n = arg;
	struct amstat **st;
	double win[LAT_KEEP];
	int64_t now = time_mono_ns();
	size_t ns;

	pthread_mutex_lock(&n->mu);
	st = mem_calloc(n->nstats ? n->nstats : 1, sizeof(*st));
	ns = n->nstats;
	if (ns > 0) {		/* n->stats is NULL before any Alertmanager */
		memcpy(st, n->stats, ns * sizeof(*st));
		qsort(st, ns, sizeof(*st), stat_cmp);
	}

	metrics_family(out, "prometheus_notifications_alertmanagers_discovered", "gauge",
	    "The number of alertmanagers discovered and active.");
	metrics_sample(out, "prometheus_notifications_alertmanagers_discovered",
	    (double)n->view->nt, (char *)NULL);
	metrics_family(out, "prometheus_notifications_dropped_total", "counter",
	    "Total number of alerts dropped due to errors when sending to Alertmanager.");
	metrics_sample(out, "prometheus_notifications_dropped_total", (double)n->dropped,
	    (char *)NULL);
	metrics_family(out, "prometheus_notifications_errors_total", "counter",
	    "Total number of errors sending alert notifications.");
	for (size_t i = 0; i < ns; i++)
		metrics_sample(out, "prometheus_notifications_errors_total", (double)st[i]->errors,
		    "alertmanager", st[i]->url, (char *)NULL);
	metrics_family(out, "prometheus_notifications_latency_seconds", "summary",
	    "Latency quantiles for sending alert notifications.");
	for (size_t i = 0; i < ns; i++) {
		struct amstat *s = st[i];
		size_t nw = 0;

		if (!s->has_lat)
			continue;
		for (size_t k = 0; k < s->lat_n; k++) {
			size_t j = (s->lat_head + k) % LAT_KEEP;

			if (now - s->lat_t[j] <= LAT_WINDOW_NS)
				win[nw++] = s->lat_v[j];
		}
		qsort(win, nw, sizeof(win[0]), dbl_cmp);
		for (size_t k = 0; k < 3; k++) {
			double v = NAN;

			if (nw > 0) {
				size_t rank = (size_t)ceil(qs[k] * (double)nw);

				v = win[rank > 0 ? rank - 1 : 0];
			}
			metrics_sample(out, "prometheus_notifications_latency_seconds", v,
			    "alertmanager", s->url, "quantile", qn[k], (char *)NULL);
		}
		metrics_sample(out, "prometheus_notifications_latency_seconds_sum", s->lat_sum,
		    "alertmanager", s->url, (char *)NULL);
		metrics_sample(out, "prometheus_notifications_latency_seconds_count",
		    (double)s->lat_count, "alertmanager", s->url, (char *)NULL);
	}
	metrics_family(out, "prometheus_notifications_queue_capacity", "gauge",
	    "The capacity of the alert notifications queue.");
	metrics_sample(out, "prometheus_notifications_queue_capacity", (double)n->capacity,
	    (char *)NULL);
	metrics_family(out, "prometheus_notifications_queue_length", "gauge",
	    "The number of alert notifications in the queue.");
	metrics_sample(out, "prometheus_notifications_queue_length", (double)n->qlen,
	    (char *)NULL);
	metrics_family(out, "prometheus_notifications_sent_total", "counter",
	    "Total number of alerts sent.");
	for (size_t i = 0; i < ns; i++)
		metrics_sample(out, "prometheus_notifications_sent_total", (double)st[i]->sent,
		    "alertmanager", st[i]->url, (char *)NULL);
	pthread_mutex_unlock(&n->mu);
	mem_free(st);
}

/* --- external URL ----------------------------------------------------------- */

char *
notify_external_url(const char *flag, const char *listen)
{
	struct strbuf sb = STRBUF_INIT;

	if (flag != NULL && flag[0] != '\0') {
		size_t len = strlen(flag);
		const char *p = strstr(flag, "://");
		size_t min = p != NULL ? (size_t)(p - flag) + 3 : 0;

		while (len > min && flag[len - 1] == '/')
			len--;
		strbuf_append(&sb, flag, len);
	} else {
		char host[256] = "localhost";
		const char *port = listen != NULL ? strrchr(listen, ':') : NULL;

		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		strbuf_printf(&sb, "http://%s:%s", host, port != NULL ? port + 1 : "9090");
	}
	return strbuf_detach(&sb, NULL);
}
