/* lib/http/client_opts.c - shared libcurl client options (TLS). */
#include "config.h"

#include "http/client_opts.h"

void
http_client_set_tls(CURL *e, const struct cfg_tls *tls)
{
	long v;

	if (tls->ca_file[0] != '\0')
		curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file);
	if (tls->cert_file[0] != '\0')
		curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert_file);
	if (tls->key_file[0] != '\0')
		curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key_file);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls->insecure_skip_verify ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls->insecure_skip_verify ? 0L : 2L);
	switch (tls->min_version) {
	case 0x0301: v = CURL_SSLVERSION_TLSv1_0; break;
	case 0x0302: v = CURL_SSLVERSION_TLSv1_1; break;
	case 0x0304: v = CURL_SSLVERSION_TLSv1_3; break;
	default: v = CURL_SSLVERSION_TLSv1_2; break;	/* Go's default minimum */
	}
	switch (tls->max_version) {
	case 0x0301: v |= CURL_SSLVERSION_MAX_TLSv1_0; break;
	case 0x0302: v |= CURL_SSLVERSION_MAX_TLSv1_1; break;
	case 0x0303: v |= CURL_SSLVERSION_MAX_TLSv1_2; break;
	case 0x0304: v |= CURL_SSLVERSION_MAX_TLSv1_3; break;
	}
	curl_easy_setopt(e, CURLOPT_SSLVERSION, v);
}

void
http_client_set_proxy(CURL *e, const char *proxy_url)
{
	curl_easy_setopt(e, CURLOPT_PROXY, proxy_url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "");
}
