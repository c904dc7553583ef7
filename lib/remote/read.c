/* lib/remote/read.c - the remote read client.
 *
 * One POST per call: the ReadRequest is encoded by lib/remote/codec, sent
 * through lib/remote/client with the remote read headers, and the SAMPLES
 * answer (snappy + protobuf) decoded into strata series. The response body
 * is bounded while it arrives (max_response) and again when decompressed
 * (max_decoded). One libcurl handle is cached for keep-alive (mu guards
 * whether it is lent out).
 */
#include "config.h"

#include "remote/read.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "remote/client.h"
#include "util/mem.h"

struct remote_reader {
	struct remote_client *client;
	size_t max_response, max_decoded;
	pthread_mutex_t mu;
	CURL *easy;			/* cached handle; NULL while lent out */
	atomic_uint_fast64_t requests, failures, series, samples, bytes;
};

static struct remote_reader *
reader_new(const char *url, int64_t timeout_ms, const struct cfg_kv *headers, size_t nh,
    const struct cfg_http *http, const struct remote_read_opts *opts, char *err, size_t errlen)
{
	struct remote_reader *r;
	struct remote_read_opts o = { 0 };
	struct remote_client *c;

	if (opts != NULL)
		o = *opts;
	c = remote_client_new(REMOTE_KIND_READ, url, timeout_ms, headers, nh, http,
	    o.user_agent, err, errlen);
	if (c == NULL)
		return NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = mem_calloc(1, sizeof(*r));
	r->client = c;
	r->max_response = o.max_response > 0 ? o.max_response : (size_t)256 << 20;
	r->max_decoded = o.max_decoded > 0 ? o.max_decoded : (size_t)1 << 30;
	pthread_mutex_init(&r->mu, NULL);
	r->easy = curl_easy_init();
	return r;
}

struct remote_reader *
remote_reader_new(const struct cfg_remote_read *rr, const struct remote_read_opts *opts,
    char *err, size_t errlen)
{
	return reader_new(rr->url, rr->remote_timeout_ms, rr->headers, rr->n_headers,
	    &rr->http, opts, err, errlen);
}

struct remote_reader *
remote_reader_new_url(const char *url, int64_t timeout_ms, const struct remote_read_opts *opts,
    char *err, size_t errlen)
{
	return reader_new(url, timeout_ms, NULL, 0, NULL, opts, err, errlen);
}

void
remote_reader_free(struct remote_reader *r)
{
	if (r == NULL)
		return;
	if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	remote_client_free(r->client);
	pthread_mutex_destroy(&r->mu);
	mem_free(r);
	curl_global_cleanup();
}

void
remote_reader_stats(struct remote_reader *r, struct remote_reader_stats *st)
{
	st->requests = atomic_load(&r->requests);
	st->failures = atomic_load(&r->failures);
	st->series = atomic_load(&r->series);
	st->samples = atomic_load(&r->samples);
	st->bytes = atomic_load(&r->bytes);
}

/* strip_labels replaces *ls by itself without the labels of strip that it
 * carries with the same value. */
static void
strip_labels(struct labels **ls, const struct labels *strip)
{
	struct label small[32], *v = small;
	size_t m = 0;
	struct labels *in = *ls;

	if (in->n > 32)
		v = mem_alloc(in->n * sizeof(*v));
	for (uint32_t i = 0; i < in->n; i++) {
		const char *sv = labels_get(strip, in->v[i].name);

		if (sv != NULL && strcmp(sv, in->v[i].value) == 0)
			continue;
		v[m++] = in->v[i];
	}
	if (m != in->n) {
		*ls = labels_new(v, m);
		labels_free(in);
	}
	if (v != small)
		mem_free(v);
}

int
remote_read(struct remote_reader *r, struct matcher *const *ms, size_t n,
    int64_t mint, int64_t maxt, const struct labels *strip,
    struct remote_series **out, size_t *nout, char *err, size_t errlen)
{
	struct remote_query q = { mint, maxt, (struct matcher **)ms, n };
	struct strbuf body = STRBUF_INIT;
	struct remote_response resp;
	struct remote_read_resp rr;
	CURL *easy;
	bool own = false;
	int rc = -1;

	*out = NULL;
	*nout = 0;
	atomic_fetch_add(&r->requests, 1);
	remote_encode_read_request(&q, 1, &body);
	remote_response_init(&resp);

	pthread_mutex_lock(&r->mu);
	easy = r->easy;
	r->easy = NULL;
	pthread_mutex_unlock(&r->mu);
	if (easy == NULL) {
		easy = curl_easy_init();
		own = true;
	}
	if (easy == NULL) {
		snprintf(err, errlen, "cannot create an HTTP client handle");
		goto out;
	}
	if (remote_client_post(r->client, easy, body.buf, body.len, r->max_response, &resp) < 0) {
		snprintf(err, errlen, "%s", resp.err);
		goto out;
	}
	if (resp.status / 100 != 2) {
		size_t l = resp.body.len < 1024 ? resp.body.len : 1024;

		while (l > 0 && (resp.body.buf[l - 1] == '\n' || resp.body.buf[l - 1] == '\r'))
			l--;
		snprintf(err, errlen, "remote read %s: server returned HTTP status %ld: %.*s",
		    remote_client_url(r->client), resp.status, (int)l,
		    l > 0 ? resp.body.buf : "");
		goto out;
	}
	if (resp.too_large) {
		snprintf(err, errlen, "remote read %s: response larger than %zu bytes",
		    remote_client_url(r->client), r->max_response);
		goto out;
	}
	atomic_fetch_add(&r->bytes, resp.body.len);
	if (remote_decode_read_response(resp.body.buf != NULL ? resp.body.buf : "",
	    resp.body.len, r->max_decoded, &rr, err, errlen) < 0)
		goto out;
	if (rr.n != 1) {
		snprintf(err, errlen, "remote read %s: %zu results for 1 query",
		    remote_client_url(r->client), rr.n);
		remote_read_resp_free(&rr);
		goto out;
	}
	*out = rr.results[0].series;
	*nout = rr.results[0].n;
	rr.results[0].series = NULL;
	rr.results[0].n = 0;
	atomic_fetch_add(&r->series, *nout);
	atomic_fetch_add(&r->samples, rr.nsamples);
	remote_read_resp_free(&rr);
	if (strip != NULL && strip->n > 0)
		for (size_t i = 0; i < *nout; i++)
			strip_labels(&(*out)[i].ls, strip);
	rc = 0;
out:
	if (easy != NULL) {
		if (own) {
			curl_easy_cleanup(easy);
		} else {
			pthread_mutex_lock(&r->mu);
			r->easy = easy;
			pthread_mutex_unlock(&r->mu);
		}
	}
	if (rc < 0)
		atomic_fetch_add(&r->failures, 1);
	remote_response_free(&resp);
	strbuf_free(&body);
	return rc;
}
