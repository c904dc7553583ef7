/* lib/config/config.h - the Prometheus 2.42 configuration file.
 *
 * cfg_load_file()/cfg_load_string() parse and validate a prometheus.yml the
 * way Prometheus 2.42 does (same defaults, same validation messages, every
 * unknown field refused), prefixing each message with FILE:line:col. The
 * result is a tree of plain structs, immutable once loaded and owned by the
 * struct cfg: readers on any thread may share it; a reload builds a new
 * struct cfg and swaps it in, keeping the old one on error.
 *
 * strata discovers targets only from static_configs and file_sd_configs;
 * every other *_sd_configs section Prometheus 2.42 knows is refused with
 * "<name> is not supported by strata". Relabel rules are compiled with
 * lib/relabel at load time; their fields as written are kept for printing.
 * Relative file paths (rule_files, file_sd files, password/credential and
 * TLS files, query_log_file) are joined to the config file's directory, as
 * Prometheus does; their existence is not checked here (strata-tool check
 * config does that, like promtool).
 *
 * Durations are int64 milliseconds; 0 means "unset" only where noted.
 * String fields are never NULL unless noted; "" means unset.
 */
#ifndef STRATA_LIB_CONFIG_CONFIG_H
#define STRATA_LIB_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels/labels.h"
#include "relabel/relabel.h"
#include "util/strbuf.h"

/* A string map entry (headers, params, endpoint_params): sorted by key. */
struct cfg_kv {
	char *key;
	char *value;
};

/* params: name -> list of values, sorted by name. */
struct cfg_param {
	char *name;
	char **values;
	size_t n_values;
};

struct cfg_tls {
	char *ca_file, *cert_file, *key_file;
	char *server_name;
	bool insecure_skip_verify;
	uint16_t min_version, max_version;	/* 0, or 0x0301 (TLS10) .. 0x0304 (TLS13) */
};

struct cfg_oauth2 {
	char *client_id, *client_secret, *client_secret_file, *token_url;
	char **scopes;
	size_t n_scopes;
	struct cfg_kv *endpoint_params;
	size_t n_endpoint_params;
	char *proxy_url;
	struct cfg_tls tls;
};

/* Prometheus' HTTPClientConfig after Validate(): a bearer_token or
 * bearer_token_file is moved into authorization (type "Bearer"). */
struct cfg_http {
	bool has_basic_auth;
	char *basic_username, *basic_password, *basic_password_file;
	bool has_authorization;
	char *auth_type;		/* "Bearer" by default */
	char *auth_credentials, *auth_credentials_file;
	struct cfg_oauth2 *oauth2;	/* NULL when absent */
	char *proxy_url;
	struct cfg_param *proxy_connect_header;	/* values are secrets */
	size_t n_proxy_connect_header;
	struct cfg_tls tls;
	bool follow_redirects;		/* default true */
	bool enable_http2;		/* default true */
	/* as written; NULL once validation moved them into authorization */
	char *bearer_token, *bearer_token_file;
};

/* One relabel_configs entry: the compiled rule and the fields as written
 * (NULL / has_* false when absent; regex is "" for an explicit null). */
struct cfg_relabel_raw {
	char **source_labels;
	size_t n_source_labels;
	char *separator, *regex, *target_label, *replacement, *action;
	bool has_modulus;
	uint64_t modulus;
};

/* A list of rules ready for relabel_apply(rules, n, lb). */
struct cfg_relabels {
	struct relabel_rule **rules;
	struct cfg_relabel_raw *raw;
	size_t n;
};

/* A static_configs entry or one group of a file_sd target file. */
struct cfg_target_group {
	char **targets;			/* __address__ values */
	size_t n_targets;
	struct labels *labels;		/* never NULL */
	char *source;			/* "FILE:INDEX" for file_sd, else "INDEX" */
};

struct cfg_file_sd {
	char **files;			/* globs, joined to the config dir */
	size_t n_files;
	int64_t refresh_interval_ms;	/* default 5m */
};

struct cfg_scrape {
	char *job_name;
	bool honor_labels;
	bool honor_timestamps;		/* default true */
	struct cfg_param *params;
	size_t n_params;
	int64_t scrape_interval_ms;	/* default: global */
	int64_t scrape_timeout_ms;	/* default: global, capped at the interval */
	char *metrics_path;		/* default "/metrics" */
	char *scheme;			/* "http" (default) or "https" */
	int64_t body_size_limit;	/* bytes, 0 = no limit */
	uint64_t sample_limit, target_limit, label_limit;
	uint64_t label_name_length_limit, label_value_length_limit;
	struct cfg_http http;
	struct cfg_relabels relabel, metric_relabel;
	struct cfg_target_group *static_configs;
	size_t n_static_configs;
	struct cfg_file_sd *file_sd;
	size_t n_file_sd;
};

struct cfg_alertmanager {
	struct cfg_http http;
	char *scheme;			/* default "http" */
	char *path_prefix;		/* default "" */
	int64_t timeout_ms;		/* default 10s */
	char *api_version;		/* "v1" or "v2" (default) */
	struct cfg_relabels relabel;
	struct cfg_target_group *static_configs;
	size_t n_static_configs;
	struct cfg_file_sd *file_sd;
	size_t n_file_sd;
};

struct cfg_queue {
	int64_t capacity, max_shards, min_shards, max_samples_per_send;
	int64_t batch_send_deadline_ms, min_backoff_ms, max_backoff_ms;
	bool retry_on_http_429;
};

struct cfg_metadata {
	bool send;			/* default true */
	int64_t send_interval_ms;	/* default 1m */
	int64_t max_samples_per_send;	/* default 500 */
};

struct cfg_sigv4 {
	char *region, *access_key, *secret_key, *profile, *role_arn;
};

struct cfg_remote_write {
	char *url;
	int64_t remote_timeout_ms;	/* default 30s */
	struct cfg_kv *headers;
	size_t n_headers;
	struct cfg_relabels write_relabel;
	char *name;			/* "" when unset */
	bool send_exemplars, send_native_histograms;
	struct cfg_http http;
	struct cfg_queue queue;
	struct cfg_metadata metadata;
	struct cfg_sigv4 *sigv4;	/* NULL when absent */
};

struct cfg_remote_read {
	char *url;
	int64_t remote_timeout_ms;	/* default 1m */
	struct cfg_kv *headers;
	size_t n_headers;
	bool read_recent;
	char *name;
	struct cfg_http http;
	struct cfg_kv *required_matchers;	/* label name -> value, sorted */
	size_t n_required_matchers;
	bool filter_external_labels;	/* default true */
};

struct cfg_tracing {
	bool present;
	char *client_type;		/* "grpc" (default) or "http" */
	char *endpoint;
	double sampling_fraction;
	bool insecure;
	struct cfg_tls tls;
	struct cfg_kv *headers;
	size_t n_headers;
	char *compression;
	int64_t timeout_ms;
};

struct cfg {
	char *path;			/* file loaded, or NULL */
	char *dir;			/* its directory ("." for strings) */

	/* global */
	int64_t scrape_interval_ms;	/* default 1m */
	int64_t scrape_timeout_ms;	/* default 10s */
	int64_t evaluation_interval_ms;	/* default 1m */
	char *query_log_file;
	struct labels *external_labels;	/* never NULL */

	char **rule_files;		/* globs, joined to the config dir */
	size_t n_rule_files;

	struct cfg_scrape *scrape;
	size_t n_scrape;

	struct cfg_relabels alert_relabel;
	struct cfg_alertmanager *alertmanagers;
	size_t n_alertmanagers;

	struct cfg_remote_write *remote_write;
	size_t n_remote_write;
	struct cfg_remote_read *remote_read;
	size_t n_remote_read;

	bool has_tsdb;
	int64_t out_of_order_time_window_ms;
	bool has_exemplars;
	int64_t max_exemplars;

	struct cfg_tracing tracing;
};

/* cfg_load_file reads and validates the configuration at path. Returns the
 * config (caller frees with cfg_free()) or NULL with "FILE:line:col: msg"
 * in err. */
struct cfg *cfg_load_file(const char *path, char *err, size_t errlen);
/* cfg_load_string parses buf[0..len) as a configuration; name is used in
 * messages and relative paths are joined to dir (NULL: left relative).
 * Returns the config (caller frees with cfg_free()) or NULL with err. */
struct cfg *cfg_load_string(const char *buf, size_t len, const char *name,
    const char *dir, char *err, size_t errlen);
/* cfg_free releases c and everything it owns; NULL is a no-op. */
void cfg_free(struct cfg *c);

/* cfg_marshal_yaml appends c as YAML to out, in the shape Prometheus'
 * /api/v1/status/config returns (defaults filled in, secrets as <secret>).
 * Returns 0, or -1 if the emitter failed. */
int cfg_marshal_yaml(const struct cfg *c, struct strbuf *out);

/* cfg_scrape_find returns the job named job_name, or NULL (borrowed). */
const struct cfg_scrape *cfg_scrape_find(const struct cfg *c, const char *job_name);

/* cfg_sd_file_load reads a file_sd target file (JSON when the name ends in
 * .json, YAML otherwise): a list of {targets, labels}. Each group gets the
 * label __meta_filepath=path, as Prometheus adds. Returns 0 with *groups
 * (free with cfg_target_groups_free()) and *n, or -1 with "FILE:line: msg"
 * in err. */
int cfg_sd_file_load(const char *path, struct cfg_target_group **groups,
    size_t *n, char *err, size_t errlen);
/* cfg_sd_file_parse is cfg_sd_file_load on bytes already read; json selects
 * the stricter JSON reading; name is used in messages and __meta_filepath. */
int cfg_sd_file_parse(const char *buf, size_t len, const char *name, bool json,
    struct cfg_target_group **groups, size_t *n, char *err, size_t errlen);
/* cfg_target_groups_free releases n groups and the array; NULL is a no-op. */
void cfg_target_groups_free(struct cfg_target_group *groups, size_t n);

/* cfg_is_unsupported_sd tells whether key is a Prometheus 2.42 service
 * discovery section strata refuses (kubernetes_sd_configs, ...). */
bool cfg_is_unsupported_sd(const char *key);

#endif
