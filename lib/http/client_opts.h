/* lib/http/client_opts.h - libcurl options strata's HTTP clients share.
 *
 * Scrapes (lib/scrape) and remote write, remote read and Alertmanager posts
 * (lib/remote) configure their libcurl easy handles from the same
 * Prometheus http_config; the settings that must agree between them are
 * applied here once. Stateless: each function touches only the handle it
 * is given, so any thread may call it for a handle it owns.
 */
#ifndef STRATA_HTTP_CLIENT_OPTS_H
#define STRATA_HTTP_CLIENT_OPTS_H

#include <curl/curl.h>

#include "config/config.h"

/* http_client_set_tls applies tls_config to easy: CA, client certificate and
 * key files when set, peer and host verification unless
 * insecure_skip_verify, and the TLS version range (minimum TLS 1.2 when
 * unset, as Go's default). server_name is left to the caller: how the TLS
 * name is split from the connection address depends on the URL at hand.
 * tls is borrowed; libcurl copies the strings. */
void http_client_set_tls(CURL *easy, const struct cfg_tls *tls);

/* http_client_set_proxy sends easy's requests through proxy_url, or through
 * no proxy when it is "": as in Prometheus 2.42, never a proxy or a
 * no_proxy list from the environment (http_proxy, no_proxy, ...). That
 * also spares libcurl its environment lookups on every transfer.
 * proxy_url is borrowed; libcurl copies it. */
void http_client_set_proxy(CURL *easy, const char *proxy_url);

#endif
