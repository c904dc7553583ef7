/* lib/http/server.h - the HTTP server every strata endpoint plugs into.
 *
 * An http_server listens on a Prometheus --web.listen-address (":9090",
 * "0.0.0.0:9090", "127.0.0.1:0", "[::1]:9090", "localhost:9090") and runs
 * libmicrohttpd's internal threads. Before http_server_start() the owner
 * registers routes: an exact path or a path prefix, a set of methods and a
 * handler. The route table is immutable once the server runs, so handlers
 * need no locking to reach it.
 *
 * A handler runs on a server thread, once per request, after the whole
 * request body has arrived (bounded by max_body: larger bodies get 413
 * without reaching it). It reads the request through the accessors below
 * and answers with exactly one http_respond*() call; it returns 0, or a
 * negative value after http_request_fail() to have the server answer 500
 * with the message. Everything reachable from a struct http_request
 * (strings, arrays) belongs to the request and lives until the response is
 * done; handlers copy what they keep.
 *
 * Query-string and form arguments follow Go's Request.ParseForm: for POST,
 * PUT and PATCH with Content-Type application/x-www-form-urlencoded the body
 * pairs come first, then the query-string pairs; '+' decodes to a space;
 * repeated keys keep every value in order.
 *
 * Responses can be compressed: on routes registered with HTTP_ROUTE_GZIP,
 * a client whose Accept-Encoding lists "gzip" (or "deflate") gets the body
 * compressed at the server's gzip_level, as Prometheus' CompressionHandler
 * does. Streamed responses (http_respond_stream) are produced chunk by chunk
 * by a callback, sent with chunked transfer encoding and compressed on the
 * fly, so /federate never needs its whole output in memory.
 */
#ifndef STRATA_HTTP_SERVER_H
#define STRATA_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

struct http_server;
struct http_request;
struct http_stream;

/* Methods, as a bit set for routes. Bit order is alphabetical, the order
 * of the Allow header. */
enum http_method {
	HTTP_DELETE = 1 << 0,
	HTTP_GET = 1 << 1,
	HTTP_HEAD = 1 << 2,
	HTTP_OPTIONS = 1 << 3,
	HTTP_PATCH = 1 << 4,
	HTTP_POST = 1 << 5,
	HTTP_PUT = 1 << 6,
	HTTP_OTHER = 1 << 7,	/* any other method name */
};

/* Route flags. */
enum {
	HTTP_ROUTE_PREFIX = 1 << 0,	/* path is a prefix: "/api/v1/label/" */
	HTTP_ROUTE_GZIP = 1 << 1,	/* compress when the client accepts it */
};

struct http_server_opts {
	/* 0: one thread per connection (a slow handler blocks only its own
	 * connection); N > 0: N epoll threads shared by all connections. */
	unsigned threads;
	unsigned max_connections;	/* default 512, like --web.max-connections */
	unsigned per_ip_connections;	/* 0: no per-address limit */
	unsigned timeout_s;		/* idle connection timeout; default 120, 0: none */
	size_t max_body;		/* request body bound; default 32 MiB */
	size_t max_header;		/* request line + headers; default 128 KiB */
	int gzip_level;			/* 1..9, default 1; 0: never compress */
};

/* http_handler_fn answers one request: 0 after an http_respond*() call, or
 * negative (see http_request_fail) for a 500. */
typedef int (*http_handler_fn)(struct http_request *req, void *arg);

/* http_stream_fn produces the next piece of a streamed body by writing to
 * s (a few KiB to a few hundred KiB per call is right). Returns 1 if more
 * is to come, 0 when the body is complete, negative on failure (the
 * connection is then cut, so the client sees a truncated chunked body). */
typedef int (*http_stream_fn)(struct http_stream *s, void *state);

/* http_server_opts_default fills o with the defaults above. */
void http_server_opts_default(struct http_server_opts *o);

/* http_server_new parses listen_address the way Prometheus' Go net.Listen
 * does, binds and listens (so "address in use" is reported here and the
 * port of ":0" is known at once). opts may be NULL for defaults. Returns
 * the server, not yet serving, or NULL with a message in err. Caller frees
 * with http_server_free(). */
struct http_server *http_server_new(const char *listen_address,
    const struct http_server_opts *opts, char *err, size_t errlen);

/* http_server_route registers fn for methods (a set of enum http_method;
 * GET implies HEAD) on path, exact or with HTTP_ROUTE_PREFIX a prefix.
 * Exact routes win over prefixes, longer prefixes over shorter. Several
 * routes may share a path with different methods. Returns 0, or -1 if the
 * server already runs. path is copied; arg is passed to fn as is. */
int http_server_route(struct http_server *srv, unsigned methods,
    const char *path, unsigned flags, http_handler_fn fn, void *arg);

/* http_server_start begins serving. Returns 0, or -1 with a message. */
int http_server_start(struct http_server *srv, char *err, size_t errlen);
/* http_server_port returns the bound TCP port. */
int http_server_port(const struct http_server *srv);
/* http_server_stop stops serving: in-flight handlers finish, then every
 * connection and the listening socket are closed. Idempotent; the server
 * cannot be restarted. */
void http_server_stop(struct http_server *srv);
/* http_server_free stops srv if needed and releases it; NULL is a no-op. */
void http_server_free(struct http_server *srv);

/* --- request accessors (strings owned by the request) ------------------ */

/* http_request_method returns the method as an enum http_method bit. */
unsigned http_request_method(const struct http_request *req);
/* http_request_method_name returns the method as sent ("GET"). */
const char *http_request_method_name(const struct http_request *req);
/* http_request_path returns the decoded path, without the query string. */
const char *http_request_path(const struct http_request *req);
/* http_request_suffix returns, for a prefix route, the part of the path
 * after the prefix ("up" for /api/v1/label/up with prefix
 * /api/v1/label/); for an exact route "". */
const char *http_request_suffix(const struct http_request *req);
/* http_request_query returns the raw (still encoded) query string, "" if
 * none. */
const char *http_request_query(const struct http_request *req);
/* http_request_arg returns the first value of form argument key (body
 * first, then query), or NULL if absent (Go's FormValue gives "" then). */
const char *http_request_arg(struct http_request *req, const char *key);
/* http_request_args returns every value of key in order and their count in
 * *n (0 and a non-NULL empty array if absent). */
const char *const *http_request_args(struct http_request *req,
    const char *key, size_t *n);
/* http_request_nargs returns how many form arguments there are;
 * http_request_arg_at returns the key of the i-th and its value in *val. */
size_t http_request_nargs(struct http_request *req);
const char *http_request_arg_at(struct http_request *req, size_t i,
    const char **val);
/* http_request_form_error returns why part of the form could not be parsed
 * (bad %-escape, ';' separator, body not readable) as Go's ParseForm would
 * report it, or NULL. Well-formed pairs are available either way. */
const char *http_request_form_error(struct http_request *req);
/* http_request_header returns a request header (name case-insensitive) or
 * NULL. */
const char *http_request_header(const struct http_request *req,
    const char *name);
/* http_request_body returns the raw request body and its length in *len
 * (never NULL; "" when there is none). */
const void *http_request_body(const struct http_request *req, size_t *len);
/* http_request_remote_addr returns the peer as Go writes RemoteAddr:
 * "127.0.0.1:41234" or "[::1]:41234". */
const char *http_request_remote_addr(const struct http_request *req);
/* http_request_compresses tells whether this response will be
 * compressed (route has HTTP_ROUTE_GZIP, client accepts it, not disabled). */
bool http_request_compresses(const struct http_request *req);

/* --- responses (exactly one http_respond* per request) -------------------- */

/* http_response_header adds a response header; name and value are copied.
 * Call before http_respond*. Returns 0 or -1 (invalid characters). */
int http_response_header(struct http_request *req, const char *name,
    const char *value);
/* http_response_no_compress turns compression off for this response (for
 * bodies that are already compressed, like snappy remote-read replies). */
void http_response_no_compress(struct http_request *req);
/* http_respond sends status with body, taking ownership of body's bytes
 * (body is left empty). content_type may be NULL. Returns 0 or -1. */
int http_respond(struct http_request *req, int status,
    const char *content_type, struct strbuf *body);
/* http_respond_data sends a copy of len bytes of data. Returns 0 or -1. */
int http_respond_data(struct http_request *req, int status,
    const char *content_type, const void *data, size_t len);
/* http_respond_text sends a printf-formatted text/plain body, like Go's
 * http.Error (which appends the newline itself; pass it in fmt). */
int http_respond_text(struct http_request *req, int status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* http_respond_stream sends status and then a body produced by repeated
 * calls next(s, state) on the server thread until it returns 0 (or fails).
 * state_free(state), if not NULL, runs exactly once when the response is
 * done or abandoned, also if this call fails. Returns 0 or -1. */
int http_respond_stream(struct http_request *req, int status,
    const char *content_type, http_stream_fn next, void *state,
    void (*state_free)(void *state));
/* http_request_fail records a message for the 500 the server sends when
 * the handler returns without responding; returns -1 so a handler can
 * "return http_request_fail(req, ...)". */
int http_request_fail(struct http_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- streamed bodies ---------------------------------------------------- */

/* http_stream_buf returns the buffer a stream callback appends to (for
 * strbuf_* and json_* writers); the server drains it after each call. */
struct strbuf *http_stream_buf(struct http_stream *s);
/* http_stream_write appends len bytes. */
void http_stream_write(struct http_stream *s, const void *data, size_t len);
/* http_stream_printf appends printf-formatted text. */
void http_stream_printf(struct http_stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* http_stream_request returns the request a stream answers (still valid
 * while the stream runs; the response can no longer be changed). */
struct http_request *http_stream_request(struct http_stream *s);

#endif
