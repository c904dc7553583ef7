/* lib/remote/client.h - the HTTP side of strata's remote write and read clients.
 *
 * A struct remote_client is one endpoint as configured (URL, remote_timeout,
 * headers, and the HTTP client settings of a remote_write/remote_read entry:
 * basic_auth, authorization, TLS, proxy, redirects), copied out of the
 * config so it outlives a reload. It is immutable once built and shared by
 * every thread that posts to the endpoint; each thread brings its own libcurl
 * easy handle (keep-alive is per handle). Secrets given as files
 * (password_file, credentials_file) are read again on every request, as
 * Prometheus does, so rotating them needs no reload.
 *
 * Every request carries the protocol headers of its kind: remote write
 * sends Content-Encoding: snappy, Content-Type: application/x-protobuf and
 * X-Prometheus-Remote-Write-Version: 0.1.0; remote read adds
 * Accept-Encoding: snappy and X-Prometheus-Remote-Read-Version: 0.1.0; the
 * Alertmanager API (lib/notify) sends Content-Type: application/json.
 */
#ifndef STRATA_REMOTE_CLIENT_H
#define STRATA_REMOTE_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/strbuf.h"

struct remote_client;

enum remote_kind {
	REMOTE_KIND_WRITE,
	REMOTE_KIND_READ,
	REMOTE_KIND_ALERTS,	/* POST of Alertmanager API JSON */
};

/* What one POST got back. */
struct remote_response {
	long status;		/* HTTP status; 0 when the request failed in transport */
	int64_t retry_after_ms;	/* Retry-After (seconds or HTTP date), -1 when absent */
	struct strbuf body;	/* the body, up to the caller's limit */
	bool too_large;		/* the body was larger than the limit (and cut) */
	char err[512];		/* transport error, when status is 0 */
};

/* remote_client_new builds an endpoint. http may be NULL (no auth, default
 * TLS). oauth2 is refused with a clear message (strata does not implement
 * it). user_agent is copied. Returns NULL with the reason in err; free with
 * remote_client_free(). */
struct remote_client *remote_client_new(enum remote_kind kind, const char *url,
    int64_t timeout_ms, const struct cfg_kv *headers, size_t nheaders,
    const struct cfg_http *http, const char *user_agent, char *err, size_t errlen);
void remote_client_free(struct remote_client *c);
/* remote_client_clone returns a copy of c that posts to url instead (an
 * http or https URL; not checked). Free with remote_client_free(). */
struct remote_client *remote_client_clone(const struct remote_client *c, const char *url);
/* remote_client_url returns the endpoint's URL (owned by c). */
const char *remote_client_url(const struct remote_client *c);

/* remote_client_post sends body[0..len) on easy (the caller's libcurl
 * handle, reset and set up here) and fills *r (initialise it with
 * remote_response_init, release with remote_response_free). The body of
 * the answer is kept up to max_resp bytes. Returns 0 when a response came
 * back (whatever its status), -1 on a transport failure or an unreadable
 * secrets file (r->err says which). */
int remote_client_post(const struct remote_client *c, void *easy, const void *body,
    size_t len, size_t max_resp, struct remote_response *r);
/* remote_client_post_cancel is remote_client_post that gives up (a
 * transport failure, "operation cancelled") soon after *cancel becomes
 * true; cancel may be NULL. */
int remote_client_post_cancel(const struct remote_client *c, void *easy, const void *body,
    size_t len, size_t max_resp, const atomic_bool *cancel, struct remote_response *r);

void remote_response_init(struct remote_response *r);
void remote_response_free(struct remote_response *r);

/* remote_parse_retry_after parses a Retry-After value (delay seconds or an
 * HTTP date, relative to now_ms) into milliseconds; -1 when unparsable. */
int64_t remote_parse_retry_after(const char *v, int64_t now_ms);

#endif
