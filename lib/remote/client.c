/* lib/remote/client.c - the HTTP side of remote write and read clients (libcurl).
 *
 * remote_client_new copies what a request needs out of the configuration;
 * remote_client_post sets a caller's easy handle up for one POST (a reset
 * keeps the handle's connection cache, so consecutive posts reuse the
 * connection) and runs it synchronously on the calling thread.
 */
#include "config.h"

#include "remote/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http/client_opts.h"
#include "remote/codec.h"
#include "util/mem.h"
#include "util/time.h"

struct remote_client {
	enum remote_kind kind;
	char *url;
	int64_t timeout_ms;
	char *user_agent;
	char **headers;			/* "Name: value" lines */
	size_t nheaders;
	bool basic;
	char *username, *password, *password_file;
	bool authorization;
	char *auth_type, *credentials, *credentials_file;
	struct cfg_tls tls;		/* strings owned, "" when unset */
	char *proxy_url;
	char **proxy_headers;
	size_t nproxy_headers;
	bool follow_redirects;
	bool http2;
};

static char *
dup_or_empty(const char *s)
{
	return mem_strdup(s != NULL ? s : "");
}

struct remote_client *
remote_client_new(enum remote_kind kind, const char *url, int64_t timeout_ms,
    const struct cfg_kv *headers, size_t nheaders, const struct cfg_http *http,
    const char *user_agent, char *err, size_t errlen)
{
	struct remote_client *c;
	struct strbuf sb = STRBUF_INIT;

	const char *what = kind == REMOTE_KIND_WRITE ? "remote write" :
	    kind == REMOTE_KIND_READ ? "remote read" : "alertmanager";

	if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		snprintf(err, errlen, "%s URL %s: scheme must be http or https", what,
		    url != NULL ? url : "(none)");
		return NULL;
	}
	if (http != NULL && http->oauth2 != NULL) {
		snprintf(err, errlen, "%s %s: oauth2 is not supported by strata", what, url);
		return NULL;
	}
	c = mem_calloc(1, sizeof(*c));
	c->kind = kind;
	c->url = mem_strdup(url);
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
	c->user_agent = mem_strdup(user_agent != NULL ? user_agent : "strata/" PACKAGE_VERSION);
	c->headers = mem_calloc(nheaders ? nheaders : 1, sizeof(*c->headers));
	for (size_t i = 0; i < nheaders; i++) {
		strbuf_reset(&sb);
		strbuf_printf(&sb, "%s: %s", headers[i].key, headers[i].value);
		c->headers[i] = mem_strdup(strbuf_cstr(&sb));
	}
	c->nheaders = nheaders;
	c->follow_redirects = true;
	c->http2 = true;
	if (http != NULL) {
		c->basic = http->has_basic_auth;
		c->username = dup_or_empty(http->basic_username);
		c->password = dup_or_empty(http->basic_password);
		c->password_file = dup_or_empty(http->basic_password_file);
		c->authorization = http->has_authorization;
		c->auth_type = dup_or_empty(http->auth_type);
		c->credentials = dup_or_empty(http->auth_credentials);
		c->credentials_file = dup_or_empty(http->auth_credentials_file);
		c->tls.ca_file = dup_or_empty(http->tls.ca_file);
		c->tls.cert_file = dup_or_empty(http->tls.cert_file);
		c->tls.key_file = dup_or_empty(http->tls.key_file);
		c->tls.server_name = dup_or_empty(http->tls.server_name);
		c->tls.insecure_skip_verify = http->tls.insecure_skip_verify;
		c->tls.min_version = http->tls.min_version;
		c->tls.max_version = http->tls.max_version;
		c->proxy_url = dup_or_empty(http->proxy_url);
		for (size_t i = 0; i < http->n_proxy_connect_header; i++)
			c->nproxy_headers += http->proxy_connect_header[i].n_values;
		c->proxy_headers = mem_calloc(c->nproxy_headers ? c->nproxy_headers : 1,
		    sizeof(*c->proxy_headers));
		for (size_t i = 0, k = 0; i < http->n_proxy_connect_header; i++) {
			for (size_t j = 0; j < http->proxy_connect_header[i].n_values; j++) {
				strbuf_reset(&sb);
				strbuf_printf(&sb, "%s: %s", http->proxy_connect_header[i].name,
				    http->proxy_connect_header[i].values[j]);
				c->proxy_headers[k++] = mem_strdup(strbuf_cstr(&sb));
			}
		}
		c->follow_redirects = http->follow_redirects;
		c->http2 = http->enable_http2;
	} else {
		c->username = dup_or_empty(NULL);
		c->password = dup_or_empty(NULL);
		c->password_file = dup_or_empty(NULL);
		c->auth_type = dup_or_empty(NULL);
		c->credentials = dup_or_empty(NULL);
		c->credentials_file = dup_or_empty(NULL);
		c->tls.ca_file = dup_or_empty(NULL);
		c->tls.cert_file = dup_or_empty(NULL);
		c->tls.key_file = dup_or_empty(NULL);
		c->tls.server_name = dup_or_empty(NULL);
		c->proxy_url = dup_or_empty(NULL);
		c->proxy_headers = mem_calloc(1, sizeof(*c->proxy_headers));
	}
	strbuf_free(&sb);
	return c;
}

void
remote_client_free(struct remote_client *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nheaders; i++)
		mem_free(c->headers[i]);
	mem_free(c->headers);
	for (size_t i = 0; i < c->nproxy_headers; i++)
		mem_free(c->proxy_headers[i]);
	mem_free(c->proxy_headers);
	mem_free(c->url);
	mem_free(c->user_agent);
	mem_free(c->username);
	mem_free(c->password);
	mem_free(c->password_file);
	mem_free(c->auth_type);
	mem_free(c->credentials);
	mem_free(c->credentials_file);
	mem_free(c->tls.ca_file);
	mem_free(c->tls.cert_file);
	mem_free(c->tls.key_file);
	mem_free(c->tls.server_name);
	mem_free(c->proxy_url);
	mem_free(c);
}

static char **
dup_lines(char *const *v, size_t n)
{
	char **out = mem_calloc(n ? n : 1, sizeof(*out));

	for (size_t i = 0; i < n; i++)
		out[i] = mem_strdup(v[i]);
	return out;
}

struct remote_client *
remote_client_clone(const struct remote_client *c, const char *url)
{
	struct remote_client *d = mem_calloc(1, sizeof(*d));

	*d = *c;
	d->url = mem_strdup(url);
	d->user_agent = mem_strdup(c->user_agent);
	d->headers = dup_lines(c->headers, c->nheaders);
	d->username = mem_strdup(c->username);
	d->password = mem_strdup(c->password);
	d->password_file = mem_strdup(c->password_file);
	d->auth_type = mem_strdup(c->auth_type);
	d->credentials = mem_strdup(c->credentials);
	d->credentials_file = mem_strdup(c->credentials_file);
	d->tls.ca_file = mem_strdup(c->tls.ca_file);
	d->tls.cert_file = mem_strdup(c->tls.cert_file);
	d->tls.key_file = mem_strdup(c->tls.key_file);
	d->tls.server_name = mem_strdup(c->tls.server_name);
	d->proxy_url = mem_strdup(c->proxy_url);
	d->proxy_headers = dup_lines(c->proxy_headers, c->nproxy_headers);
	return d;
}

const char *
remote_client_url(const struct remote_client *c)
{
	return c->url;
}

void
remote_response_init(struct remote_response *r)
{
	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
}

void
remote_response_free(struct remote_response *r)
{
	strbuf_free(&r->body);
}

int64_t
remote_parse_retry_after(const char *v, int64_t now_ms)
{
	char *end;
	long long s;
	time_t when;

	while (*v == ' ' || *v == '\t')
		v++;
	if (*v == '\0')
		return -1;
	if (isdigit((unsigned char)*v)) {
		errno = 0;
		s = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno != 0 || *end != '\0' || s < 0 || s > 365LL * 86400)
			return -1;
		return (int64_t)s * 1000;
	}
	when = curl_getdate(v, NULL);
	if (when == (time_t)-1)
		return -1;
	return (int64_t)when * 1000 > now_ms ? (int64_t)when * 1000 - now_ms : 0;
}

/* read_secret returns the trimmed contents of path (caller frees) or NULL
 * with err. */
static char *
read_secret(const char *path, const char *what, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char buf[8192];
	size_t n, b = 0;

	if (f == NULL) {
		snprintf(err, errlen, "unable to read %s file %s: %s", what, path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		n--;
	while (b < n && isspace((unsigned char)buf[b]))
		b++;
	return mem_strndup(buf + b, n - b);
}

struct post_state {
	struct remote_response *r;
	size_t max;
};

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct post_state *st = arg;
	size_t n = size * nmemb;

	if (st->r->body.len + n > st->max) {
		size_t room = st->max - st->r->body.len;

		strbuf_append(&st->r->body, ptr, room);
		st->r->too_large = true;
		return room == n ? n : room;	/* short count: libcurl stops the transfer */
	}
	strbuf_append(&st->r->body, ptr, n);
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct post_state *st = arg;
	size_t n = size * nmemb;

	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
		char v[128];
		size_t l = n - 12;

		if (l >= sizeof(v))
			l = sizeof(v) - 1;
		memcpy(v, ptr + 12, l);
		v[l] = '\0';
		while (l > 0 && (v[l - 1] == '\r' || v[l - 1] == '\n' || v[l - 1] == ' '))
			v[--l] = '\0';
		st->r->retry_after_ms = remote_parse_retry_after(v, time_now_ms());
	}
	return n;
}

/* set_server_name makes the TLS name (SNI, certificate check) server_name
 * while connecting to the URL's own host, as Go's tls.Config.ServerName
 * does: the request goes to https://server_name:port/... and CONNECT_TO
 * sends it to host:port. Returns the list to free after the transfer. */
static struct curl_slist *
set_server_name(const struct remote_client *c, CURL *e)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *url = NULL;
	struct curl_slist *ct = NULL;
	struct strbuf sb = STRBUF_INIT;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, c->url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_HOST, c->tls.server_name, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		curl_easy_setopt(e, CURLOPT_URL, c->url);
		goto out;
	}
	curl_easy_setopt(e, CURLOPT_URL, url);
	strbuf_printf(&sb, "%s:%s:%s:%s", c->tls.server_name, port, host, port);
	ct = curl_slist_append(NULL, strbuf_cstr(&sb));
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, ct);
out:
	curl_free(host);
	curl_free(port);
	curl_free(url);
	curl_url_cleanup(u);
	strbuf_free(&sb);
	return ct;
}

/* on_progress aborts a transfer once the caller's cancel flag is set. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

int
remote_client_post(const struct remote_client *c, void *easy, const void *body,
    size_t len, size_t max_resp, struct remote_response *r)
{
	return remote_client_post_cancel(c, easy, body, len, max_resp, NULL, r);
}

int
remote_client_post_cancel(const struct remote_client *c, void *easy, const void *body,
    size_t len, size_t max_resp, const atomic_bool *cancel, struct remote_response *r)
{
	CURL *e = easy;
	struct curl_slist *hdrs = NULL, *ph = NULL, *ct = NULL;
	struct post_state st = { r, max_resp };
	struct strbuf sb = STRBUF_INIT;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *secret = NULL;
	CURLcode cc;
	int rc = -1;

	r->status = 0;
	r->retry_after_ms = -1;
	r->too_large = false;
	r->err[0] = '\0';
	strbuf_reset(&r->body);

	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &st);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &st);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, c->follow_redirects ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, c->http2 ?
	    (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);

	if (cancel != NULL) {
		curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)cancel);
		curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	}

	if (c->kind == REMOTE_KIND_ALERTS) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Encoding: snappy");
		hdrs = curl_slist_append(hdrs, "Content-Type: " REMOTE_CONTENT_TYPE);
	}
	if (c->kind == REMOTE_KIND_WRITE) {
		hdrs = curl_slist_append(hdrs, "X-Prometheus-Remote-Write-Version: " REMOTE_WRITE_VERSION);
	} else if (c->kind == REMOTE_KIND_READ) {
		hdrs = curl_slist_append(hdrs, "Accept-Encoding: snappy");
		hdrs = curl_slist_append(hdrs, "X-Prometheus-Remote-Read-Version: " REMOTE_READ_VERSION);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");	/* no 100-continue round trip */
	for (size_t i = 0; i < c->nheaders; i++)
		hdrs = curl_slist_append(hdrs, c->headers[i]);
	if (c->authorization) {
		if (c->credentials_file[0] != '\0' &&
		    (secret = read_secret(c->credentials_file, "authorization credentials",
		    r->err, sizeof(r->err))) == NULL)
			goto out;
		strbuf_printf(&sb, "Authorization: %s %s", c->auth_type,
		    secret != NULL ? secret : c->credentials);
		hdrs = curl_slist_append(hdrs, strbuf_cstr(&sb));
		MEM_FREE(secret);
	}
	if (c->basic) {
		if (c->password_file[0] != '\0' &&
		    (secret = read_secret(c->password_file, "basic auth password",
		    r->err, sizeof(r->err))) == NULL)
			goto out;
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, secret != NULL ? secret : c->password);
	}
	http_client_set_tls(e, &c->tls);
	if (c->tls.server_name[0] != '\0' && strncmp(c->url, "https://", 8) == 0)
		ct = set_server_name(c, e);
	else
		curl_easy_setopt(e, CURLOPT_URL, c->url);
	http_client_set_proxy(e, c->proxy_url);
	if (c->proxy_url[0] != '\0') {
		for (size_t i = 0; i < c->nproxy_headers; i++)
			ph = curl_slist_append(ph, c->proxy_headers[i]);
		if (ph != NULL) {
			curl_easy_setopt(e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
			curl_easy_setopt(e, CURLOPT_PROXYHEADER, ph);
		}
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);

	cc = curl_easy_perform(e);
	if (cc == CURLE_WRITE_ERROR && r->too_large)
		cc = CURLE_OK;	/* cut on purpose: the status is known */
	if (cc != CURLE_OK) {
		snprintf(r->err, sizeof(r->err), "Post \"%s\": %s", c->url,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
	rc = 0;
out:
	mem_free(secret);
	/* the handle must not keep pointers to what is freed below */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_PROXYHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, NULL);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, NULL);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(ph);
	curl_slist_free_all(ct);
	strbuf_free(&sb);
	return rc;
}
