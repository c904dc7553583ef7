/* lib/config/marshal.c - print a struct cfg the way Prometheus prints its config.
 *
 * cfg_marshal_yaml() writes what /api/v1/status/config returns: Go's
 * yaml.v2 rendering of Prometheus' Config struct after loading, i.e. every
 * default filled in, fields in struct order, omitempty fields left out,
 * secrets as <secret>, passwords in URLs as xxxxx. Read-only on the config;
 * any thread.
 */
#include "config.h"

#include "config/config.h"
#include "config/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"
#include "util/time.h"

#define SECRET "<secret>"

static void
m_key(struct yemit *e, const char *k)
{
	ydoc_emit_str(e, k);
}

static void
m_str(struct yemit *e, const char *k, const char *v)
{
	m_key(e, k);
	ydoc_emit_str(e, v);
}

/* m_stropt writes k: v unless v is empty (omitempty). */
static void
m_stropt(struct yemit *e, const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		m_str(e, k, v);
}

static void
m_secret(struct yemit *e, const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		m_str(e, k, SECRET);
}

static void
m_bool(struct yemit *e, const char *k, bool v)
{
	m_key(e, k);
	ydoc_emit_raw(e, v ? "true" : "false");
}

static void
m_int(struct yemit *e, const char *k, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	m_key(e, k);
	ydoc_emit_raw(e, buf);
}

static void
m_uintopt(struct yemit *e, const char *k, uint64_t v)
{
	char buf[32];

	if (v == 0)
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	m_key(e, k);
	ydoc_emit_raw(e, buf);
}

static void
m_dur(struct yemit *e, const char *k, int64_t ms)
{
	char buf[64];

	m_key(e, k);
	ydoc_emit_str(e, time_format_duration(ms, buf, sizeof(buf)));
}

static void
m_duropt(struct yemit *e, const char *k, int64_t ms)
{
	if (ms != 0)
		m_dur(e, k, ms);
}

/* m_url writes a URL with any password replaced by xxxxx (url.Redacted). */
static void
m_url(struct yemit *e, const char *k, const char *u)
{
	const char *p = strstr(u, "://"), *at, *slash, *colon;
	struct strbuf sb = STRBUF_INIT;

	if (p == NULL) {
		m_str(e, k, u);
		return;
	}
	p += 3;
	slash = strchr(p, '/');
	at = strchr(p, '@');
	colon = strchr(p, ':');
	if (at == NULL || (slash != NULL && at > slash) || colon == NULL || colon > at) {
		m_str(e, k, u);
		return;
	}
	strbuf_append(&sb, u, (size_t)(colon - u) + 1);
	strbuf_puts(&sb, "xxxxx");
	strbuf_puts(&sb, at);
	m_str(e, k, strbuf_cstr(&sb));
	strbuf_free(&sb);
}

static void
m_strlist(struct yemit *e, const char *k, char **v, size_t n, bool flow)
{
	size_t i;

	m_key(e, k);
	ydoc_emit_seq_start(e, flow);
	for (i = 0; i < n; i++)
		ydoc_emit_str(e, v[i]);
	ydoc_emit_seq_end(e);
}

static void
m_kvmap(struct yemit *e, const char *k, const struct cfg_kv *v, size_t n)
{
	size_t i;

	if (n == 0)
		return;
	m_key(e, k);
	ydoc_emit_map_start(e);
	for (i = 0; i < n; i++)
		m_str(e, v[i].key, v[i].value);
	ydoc_emit_map_end(e);
}

static void
m_labels(struct yemit *e, const char *k, const struct labels *ls)
{
	uint32_t i;

	if (ls == NULL || ls->n == 0)
		return;
	m_key(e, k);
	ydoc_emit_map_start(e);
	for (i = 0; i < ls->n; i++)
		m_str(e, ls->v[i].name, ls->v[i].value);
	ydoc_emit_map_end(e);
}

static const char *
m_tls_name(uint16_t v)
{
	switch (v) {
	case 0x0301: return "TLS10";
	case 0x0302: return "TLS11";
	case 0x0303: return "TLS12";
	case 0x0304: return "TLS13";
	default: return NULL;
	}
}

static void
m_tls(struct yemit *e, const struct cfg_tls *t)
{
	if (!t->ca_file[0] && !t->cert_file[0] && !t->key_file[0] &&
	    !t->server_name[0] && !t->insecure_skip_verify && !t->min_version &&
	    !t->max_version)
		return;
	m_key(e, "tls_config");
	ydoc_emit_map_start(e);
	m_stropt(e, "ca_file", t->ca_file);
	m_stropt(e, "cert_file", t->cert_file);
	m_stropt(e, "key_file", t->key_file);
	m_stropt(e, "server_name", t->server_name);
	m_bool(e, "insecure_skip_verify", t->insecure_skip_verify);
	if (m_tls_name(t->min_version))
		m_str(e, "min_version", m_tls_name(t->min_version));
	if (m_tls_name(t->max_version))
		m_str(e, "max_version", m_tls_name(t->max_version));
	ydoc_emit_map_end(e);
}

static void
m_http(struct yemit *e, const struct cfg_http *h)
{
	size_t i, j;

	if (h->has_basic_auth) {
		m_key(e, "basic_auth");
		ydoc_emit_map_start(e);
		m_str(e, "username", h->basic_username);
		m_secret(e, "password", h->basic_password);
		m_stropt(e, "password_file", h->basic_password_file);
		ydoc_emit_map_end(e);
	}
	if (h->has_authorization) {
		m_key(e, "authorization");
		ydoc_emit_map_start(e);
		m_stropt(e, "type", h->auth_type);
		m_secret(e, "credentials", h->auth_credentials);
		m_stropt(e, "credentials_file", h->auth_credentials_file);
		ydoc_emit_map_end(e);
	}
	if (h->oauth2 != NULL) {
		const struct cfg_oauth2 *o = h->oauth2;

		m_key(e, "oauth2");
		ydoc_emit_map_start(e);
		m_str(e, "client_id", o->client_id);
		m_key(e, "client_secret");
		if (o->client_secret[0])
			ydoc_emit_str(e, SECRET);
		else
			ydoc_emit_raw(e, "null");
		m_str(e, "client_secret_file", o->client_secret_file);
		if (o->n_scopes > 0)
			m_strlist(e, "scopes", o->scopes, o->n_scopes, false);
		m_str(e, "token_url", o->token_url);
		m_kvmap(e, "endpoint_params", o->endpoint_params, o->n_endpoint_params);
		if (o->proxy_url[0])
			m_url(e, "proxy_url", o->proxy_url);
		m_tls(e, &o->tls);
		ydoc_emit_map_end(e);
	}
	m_secret(e, "bearer_token", h->bearer_token);
	m_stropt(e, "bearer_token_file", h->bearer_token_file);
	if (h->proxy_url[0])
		m_url(e, "proxy_url", h->proxy_url);
	if (h->n_proxy_connect_header > 0) {
		m_key(e, "proxy_connect_header");
		ydoc_emit_map_start(e);
		for (i = 0; i < h->n_proxy_connect_header; i++) {
			m_key(e, h->proxy_connect_header[i].name);
			ydoc_emit_seq_start(e, false);
			for (j = 0; j < h->proxy_connect_header[i].n_values; j++)
				ydoc_emit_str(e, SECRET);
			ydoc_emit_seq_end(e);
		}
		ydoc_emit_map_end(e);
	}
	m_tls(e, &h->tls);
	m_bool(e, "follow_redirects", h->follow_redirects);
	m_bool(e, "enable_http2", h->enable_http2);
}

static void
m_relabels(struct yemit *e, const char *k, const struct cfg_relabels *rl)
{
	size_t i;

	if (rl->n == 0)
		return;
	m_key(e, k);
	ydoc_emit_seq_start(e, false);
	for (i = 0; i < rl->n; i++) {
		const struct cfg_relabel_raw *r = &rl->raw[i];

		ydoc_emit_map_start(e);
		if (r->n_source_labels > 0)
			m_strlist(e, "source_labels", r->source_labels,
			    r->n_source_labels, true);
		m_stropt(e, "separator", r->separator ? r->separator : ";");
		m_key(e, "regex");
		if (r->regex == NULL)
			ydoc_emit_str(e, "(.*)");
		else if (r->regex[0] == '\0')
			ydoc_emit_raw(e, "null");
		else
			ydoc_emit_str(e, r->regex);
		if (r->modulus != 0) {
			char buf[32];

			snprintf(buf, sizeof(buf), "%" PRIu64, r->modulus);
			m_key(e, "modulus");
			ydoc_emit_raw(e, buf);
		}
		m_stropt(e, "target_label", r->target_label);
		m_stropt(e, "replacement", r->replacement ? r->replacement : "$1");
		m_stropt(e, "action", r->action ? r->action : "replace");
		ydoc_emit_map_end(e);
	}
	ydoc_emit_seq_end(e);
}

static void
m_sd(struct yemit *e, const struct cfg_file_sd *fs, size_t nfs,
    const struct cfg_target_group *st, size_t nst)
{
	size_t i;

	if (nfs > 0) {
		m_key(e, "file_sd_configs");
		ydoc_emit_seq_start(e, false);
		for (i = 0; i < nfs; i++) {
			ydoc_emit_map_start(e);
			m_strlist(e, "files", fs[i].files, fs[i].n_files, false);
			m_dur(e, "refresh_interval", fs[i].refresh_interval_ms);
			ydoc_emit_map_end(e);
		}
		ydoc_emit_seq_end(e);
	}
	if (nst > 0) {
		m_key(e, "static_configs");
		ydoc_emit_seq_start(e, false);
		for (i = 0; i < nst; i++) {
			ydoc_emit_map_start(e);
			m_strlist(e, "targets", st[i].targets, st[i].n_targets, false);
			m_labels(e, "labels", st[i].labels);
			ydoc_emit_map_end(e);
		}
		ydoc_emit_seq_end(e);
	}
}

static void
m_scrape(struct yemit *e, const struct cfg_scrape *s)
{
	size_t i;

	ydoc_emit_map_start(e);
	m_str(e, "job_name", s->job_name);
	if (s->honor_labels)
		m_bool(e, "honor_labels", true);
	m_bool(e, "honor_timestamps", s->honor_timestamps);
	if (s->n_params > 0) {
		m_key(e, "params");
		ydoc_emit_map_start(e);
		for (i = 0; i < s->n_params; i++)
			m_strlist(e, s->params[i].name, s->params[i].values,
			    s->params[i].n_values, false);
		ydoc_emit_map_end(e);
	}
	m_duropt(e, "scrape_interval", s->scrape_interval_ms);
	m_duropt(e, "scrape_timeout", s->scrape_timeout_ms);
	m_stropt(e, "metrics_path", s->metrics_path);
	m_stropt(e, "scheme", s->scheme);
	m_uintopt(e, "body_size_limit", (uint64_t)s->body_size_limit);
	m_uintopt(e, "sample_limit", s->sample_limit);
	m_uintopt(e, "target_limit", s->target_limit);
	m_uintopt(e, "label_limit", s->label_limit);
	m_uintopt(e, "label_name_length_limit", s->label_name_length_limit);
	m_uintopt(e, "label_value_length_limit", s->label_value_length_limit);
	m_http(e, &s->http);
	m_relabels(e, "relabel_configs", &s->relabel);
	m_relabels(e, "metric_relabel_configs", &s->metric_relabel);
	m_sd(e, s->file_sd, s->n_file_sd, s->static_configs, s->n_static_configs);
	ydoc_emit_map_end(e);
}

static void
m_float(struct yemit *e, const char *k, double v)
{
	char buf[64];
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	m_key(e, k);
	ydoc_emit_raw(e, buf);
}

/*
 * cfg_marshal_yaml: see config.h.
 */
int
cfg_marshal_yaml(const struct cfg *c, struct strbuf *out)
{
	struct yemit *e = ydoc_emit_new(out);
	size_t i;

	ydoc_emit_map_start(e);

	m_key(e, "global");
	ydoc_emit_map_start(e);
	m_dur(e, "scrape_interval", c->scrape_interval_ms);
	m_dur(e, "scrape_timeout", c->scrape_timeout_ms);
	m_dur(e, "evaluation_interval", c->evaluation_interval_ms);
	m_stropt(e, "query_log_file", c->query_log_file);
	m_labels(e, "external_labels", c->external_labels);
	ydoc_emit_map_end(e);

	if (c->alert_relabel.n > 0 || c->n_alertmanagers > 0) {
		m_key(e, "alerting");
		ydoc_emit_map_start(e);
		m_relabels(e, "alert_relabel_configs", &c->alert_relabel);
		if (c->n_alertmanagers > 0) {
			m_key(e, "alertmanagers");
			ydoc_emit_seq_start(e, false);
			for (i = 0; i < c->n_alertmanagers; i++) {
				const struct cfg_alertmanager *a = &c->alertmanagers[i];

				ydoc_emit_map_start(e);
				m_http(e, &a->http);
				m_stropt(e, "scheme", a->scheme);
				m_stropt(e, "path_prefix", a->path_prefix);
				m_duropt(e, "timeout", a->timeout_ms);
				m_str(e, "api_version", a->api_version);
				m_relabels(e, "relabel_configs", &a->relabel);
				m_sd(e, a->file_sd, a->n_file_sd, a->static_configs,
				    a->n_static_configs);
				ydoc_emit_map_end(e);
			}
			ydoc_emit_seq_end(e);
		}
		ydoc_emit_map_end(e);
	}

	if (c->n_rule_files > 0)
		m_strlist(e, "rule_files", c->rule_files, c->n_rule_files, false);

	if (c->n_scrape > 0) {
		m_key(e, "scrape_configs");
		ydoc_emit_seq_start(e, false);
		for (i = 0; i < c->n_scrape; i++)
			m_scrape(e, &c->scrape[i]);
		ydoc_emit_seq_end(e);
	}

	if (c->has_tsdb || c->has_exemplars) {
		m_key(e, "storage");
		ydoc_emit_map_start(e);
		if (c->has_tsdb) {
			m_key(e, "tsdb");
			ydoc_emit_map_start(e);
			m_int(e, "outofordertimewindow", c->out_of_order_time_window_ms);
			m_duropt(e, "out_of_order_time_window", c->out_of_order_time_window_ms);
			ydoc_emit_map_end(e);
		}
		if (c->has_exemplars) {
			m_key(e, "exemplars");
			ydoc_emit_map_start(e);
			if (c->max_exemplars != 0)
				m_int(e, "max_exemplars", c->max_exemplars);
			ydoc_emit_map_end(e);
		}
		ydoc_emit_map_end(e);
	}

	if (c->tracing.present) {
		const struct cfg_tracing *t = &c->tracing;

		m_key(e, "tracing");
		ydoc_emit_map_start(e);
		m_stropt(e, "client_type", t->client_type);
		m_stropt(e, "endpoint", t->endpoint);
		if (t->sampling_fraction != 0)
			m_float(e, "sampling_fraction", t->sampling_fraction);
		if (t->insecure)
			m_bool(e, "insecure", true);
		m_tls(e, &t->tls);
		m_kvmap(e, "headers", t->headers, t->n_headers);
		m_stropt(e, "compression", t->compression);
		m_duropt(e, "timeout", t->timeout_ms);
		ydoc_emit_map_end(e);
	}

	if (c->n_remote_write > 0) {
		m_key(e, "remote_write");
		ydoc_emit_seq_start(e, false);
		for (i = 0; i < c->n_remote_write; i++) {
			const struct cfg_remote_write *rw = &c->remote_write[i];
			const struct cfg_queue *q = &rw->queue;

			ydoc_emit_map_start(e);
			m_url(e, "url", rw->url);
			m_duropt(e, "remote_timeout", rw->remote_timeout_ms);
			m_kvmap(e, "headers", rw->headers, rw->n_headers);
			m_relabels(e, "write_relabel_configs", &rw->write_relabel);
			m_stropt(e, "name", rw->name);
			if (rw->send_exemplars)
				m_bool(e, "send_exemplars", true);
			if (rw->send_native_histograms)
				m_bool(e, "send_native_histograms", true);
			m_http(e, &rw->http);
			m_key(e, "queue_config");
			ydoc_emit_map_start(e);
			m_uintopt(e, "capacity", (uint64_t)q->capacity);
			m_uintopt(e, "max_shards", (uint64_t)q->max_shards);
			m_uintopt(e, "min_shards", (uint64_t)q->min_shards);
			m_uintopt(e, "max_samples_per_send", (uint64_t)q->max_samples_per_send);
			m_duropt(e, "batch_send_deadline", q->batch_send_deadline_ms);
			m_duropt(e, "min_backoff", q->min_backoff_ms);
			m_duropt(e, "max_backoff", q->max_backoff_ms);
			if (q->retry_on_http_429)
				m_bool(e, "retry_on_http_429", true);
			ydoc_emit_map_end(e);
			m_key(e, "metadata_config");
			ydoc_emit_map_start(e);
			m_bool(e, "send", rw->metadata.send);
			m_dur(e, "send_interval", rw->metadata.send_interval_ms);
			m_uintopt(e, "max_samples_per_send",
			    (uint64_t)rw->metadata.max_samples_per_send);
			ydoc_emit_map_end(e);
			if (rw->sigv4 != NULL) {
				m_key(e, "sigv4");
				ydoc_emit_map_start(e);
				m_stropt(e, "region", rw->sigv4->region);
				m_stropt(e, "access_key", rw->sigv4->access_key);
				m_secret(e, "secret_key", rw->sigv4->secret_key);
				m_stropt(e, "profile", rw->sigv4->profile);
				m_stropt(e, "role_arn", rw->sigv4->role_arn);
				ydoc_emit_map_end(e);
			}
			ydoc_emit_map_end(e);
		}
		ydoc_emit_seq_end(e);
	}

	if (c->n_remote_read > 0) {
		m_key(e, "remote_read");
		ydoc_emit_seq_start(e, false);
		for (i = 0; i < c->n_remote_read; i++) {
			const struct cfg_remote_read *rr = &c->remote_read[i];

			ydoc_emit_map_start(e);
			m_url(e, "url", rr->url);
			m_duropt(e, "remote_timeout", rr->remote_timeout_ms);
			m_kvmap(e, "headers", rr->headers, rr->n_headers);
			if (rr->read_recent)
				m_bool(e, "read_recent", true);
			m_stropt(e, "name", rr->name);
			m_http(e, &rr->http);
			m_kvmap(e, "required_matchers", rr->required_matchers,
			    rr->n_required_matchers);
			if (rr->filter_external_labels)
				m_bool(e, "filter_external_labels", true);
			ydoc_emit_map_end(e);
		}
		ydoc_emit_seq_end(e);
	}

	ydoc_emit_map_end(e);
	return ydoc_emit_end(e);
}
