/* tests/unit/test_http.c - lib/http: listen addresses, routing, forms, bodies,
 * streaming, gzip, keep-alive, limits, concurrency, and the JSON writer.
 *
 * Every server listens on 127.0.0.1 (or ::1 when the host has it) port 0;
 * libcurl is the client. Each request carries a timeout so a hung server
 * fails the test instead of stalling it. The requests/s figures printed at
 * the end are informational and never asserted.
 */
#include "config.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <zlib.h>

#include "http/gzip.h"
#include "http/json.h"
#include "http/server.h"
#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"

#define MAX_BODY (1u << 20)
#define STREAM_BYTES (8u << 20)

static struct http_server *g_srv;
static char g_base[64];

/* --- handlers ------------------------------------------------------------- */

static int
h_echo(struct http_request *req, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	const char *k, *v, *fe;
	size_t i, n = http_request_nargs(req);

	(void)arg;
	strbuf_printf(&sb, "%s %s\n", http_request_method_name(req),
	    http_request_path(req));
	for (i = 0; i < n; i++) {
		k = http_request_arg_at(req, i, &v);
		strbuf_printf(&sb, "%s=%s\n", k, v);
	}
	fe = http_request_form_error(req);
	if (fe != NULL)
		strbuf_printf(&sb, "error: %s\n", fe);
	return http_respond(req, 200, "text/plain", &sb);
}

static int
h_match(struct http_request *req, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	const char *const *m;
	const char *q;
	size_t n, i;

	(void)arg;
	m = http_request_args(req, "match[]", &n);
	strbuf_printf(&sb, "n=%zu", n);
	for (i = 0; i < n; i++)
		strbuf_printf(&sb, " [%s]", m[i]);
	q = http_request_arg(req, "query");
	strbuf_printf(&sb, " query=%s", q != NULL ? q : "(null)");
	return http_respond(req, 200, "text/plain", &sb);
}

static int
h_label(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_text(req, 200, "label=%s", http_request_suffix(req));
}

static int
h_labels_exact(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_text(req, 200, "exact");
}

static int
h_body(struct http_request *req, void *arg)
{
	size_t len;
	const void *b = http_request_body(req, &len);
	const char *ce = http_request_header(req, "Content-Encoding");
	const char *ct = http_request_header(req, "Content-Type");

	(void)arg;
	(void)http_response_header(req, "X-Body-Len", "yes");
	(void)http_response_header(req, "X-Content-Encoding",
	    ce != NULL ? ce : "-");
	(void)http_response_header(req, "X-Content-Type", ct != NULL ? ct : "-");
	return http_respond_data(req, 200, "application/octet-stream", b, len);
}

static int
h_fail(struct http_request *req, void *arg)
{
	(void)arg;
	return http_request_fail(req, "boom: %d", 42);
}

static int
h_silent(struct http_request *req, void *arg)
{
	(void)req;
	(void)arg;
	return 0;
}

static int
h_info(struct http_request *req, void *arg)
{
	const char *a = http_request_header(req, "accept");

	(void)arg;
	return http_respond_text(req, 200, "remote=%s accept=%s compress=%d",
	    http_request_remote_addr(req), a != NULL ? a : "-",
	    http_request_compresses(req));
}

static int
h_small(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_data(req, 200, "text/plain", "ok\n", 3);
}

/* stream_byte is the deterministic content of the streamed body. */
static unsigned char
stream_byte(size_t i)
{
	return (unsigned char)("abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37] ^
	    ((i / 4096) & 1 ? 0x20 : 0));
}

struct gen {
	size_t pos, total;
	int calls;
	int *freed;
};

static int
gen_next(struct http_stream *s, void *state)
{
	struct gen *g = state;
	char buf[50000];
	size_t n = g->total - g->pos, i;

	if (n > sizeof(buf))
		n = sizeof(buf);
	for (i = 0; i < n; i++)
		buf[i] = (char)stream_byte(g->pos + i);
	http_stream_write(s, buf, n);
	g->pos += n;
	g->calls++;
	if (http_stream_request(s) == NULL)
		return -1;
	return g->pos < g->total ? 1 : 0;
}

static int g_stream_frees;

static void
gen_free(void *state)
{
	__atomic_add_fetch(&g_stream_frees, 1, __ATOMIC_SEQ_CST);
	mem_free(state);
}

static int
h_stream(struct http_request *req, void *arg)
{
	struct gen *g = mem_calloc(1, sizeof(*g));
	const char *b = http_request_arg(req, "bytes");

	(void)arg;
	g->total = b != NULL ? strtoul(b, NULL, 10) : STREAM_BYTES;
	return http_respond_stream(req, 200, "text/plain", gen_next, g,
	    gen_free);
}

static int
bad_next(struct http_stream *s, void *state)
{
	int *n = state;

	if ((*n)++ < 3) {
		strbuf_grow(http_stream_buf(s), 100000);
		for (int i = 0; i < 100000; i++)
			strbuf_putc(http_stream_buf(s), 'x');
		return 1;
	}
	return -1;
}

static int
h_stream_fail(struct http_request *req, void *arg)
{
	int *n = mem_calloc(1, sizeof(*n));

	(void)arg;
	return http_respond_stream(req, 200, "text/plain", bad_next, n,
	    gen_free);
}

static int
h_big(struct http_request *req, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	int i;

	(void)arg;
	for (i = 0; i < 20000; i++)
		strbuf_printf(&sb, "series_%d{job=\"x\"} %d\n", i % 97, i);
	return http_respond(req, 200, "text/plain; version=0.0.4", &sb);
}

static int
h_json(struct http_request *req, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	struct json_writer w;

	(void)arg;
	json_init(&w, &sb);
	json_object_begin(&w);
	json_key(&w, "status");
	json_string(&w, "success");
	json_key(&w, "data");
	json_array_begin(&w);
	json_string(&w, http_request_arg(req, "v"));
	json_array_end(&w);
	json_object_end(&w);
	return http_respond(req, 200, "application/json", &sb);
}

/* --- client helpers ------------------------------------------------------- */

struct resp {
	long status;
	struct strbuf body;
	struct strbuf hdrs;
	long connects;
	CURLcode code;
};

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
	strbuf_append(ud, p, sz * n);
	return sz * n;
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
	strbuf_append(ud, p, sz * n);
	return sz * n;
}

struct upload {
	const char *data;
	size_t len, off;
};

static size_t
on_read(char *buf, size_t sz, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t k = u->len - u->off;

	if (k > sz * n)
		k = sz * n;
	memcpy(buf, u->data + u->off, k);
	u->off += k;
	return k;
}

/* do_req runs one request on h (reused for keep-alive). body != NULL makes
 * it a POST (or method). chunked sends the body without Content-Length. */
static void
do_req(CURL *h, const char *method, const char *path, const char *body,
    size_t blen, const char *ctype, const char *accept_enc, bool chunked,
    struct resp *r)
{
	char url[4096];
	struct curl_slist *hl = NULL;
	struct upload up = { body, blen, 0 };

	snprintf(url, sizeof(url), "%s%s", g_base, path);
	strbuf_init(&r->body);
	strbuf_init(&r->hdrs);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, accept_enc);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
	if (ctype != NULL) {
		char line[256];

		snprintf(line, sizeof(line), "Content-Type: %s", ctype);
		hl = curl_slist_append(hl, line);
	}
	if (body != NULL) {
		if (chunked) {
			hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(h, CURLOPT_READDATA, &up);
		} else {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)blen);
		}
	}
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (method != NULL)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	r->code = curl_easy_perform(h);
	r->status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
}

static void
resp_free(struct resp *r)
{
	strbuf_free(&r->body);
	strbuf_free(&r->hdrs);
}

/* has_header tells whether the raw headers hold "name: value" (value
 * compared exactly, name case-insensitively). */
static bool
has_header(const struct resp *r, const char *name, const char *value)
{
	const char *p = strbuf_cstr(&r->hdrs);
	size_t nl = strlen(name);

	while (p != NULL && *p != '\0') {
		const char *e = strstr(p, "\r\n");
		size_t len = e != NULL ? (size_t)(e - p) : strlen(p);

		if (len > nl + 1 && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			const char *v = p + nl + 1;

			while (*v == ' ')
				v++;
			if (value == NULL || ((size_t)(p + len - v) ==
			    strlen(value) && strncmp(v, value, strlen(value)) == 0))
				return true;
		}
		p = e != NULL ? e + 2 : NULL;
	}
	return false;
}

static void
get(const char *path, struct resp *r)
{
	CURL *h = curl_easy_init();

	do_req(h, NULL, path, NULL, 0, NULL, NULL, false, r);
	curl_easy_cleanup(h);
}

/* --- setup ---------------------------------------------------------------- */

static void
add_routes(struct http_server *s)
{
	assert_int_equal(http_server_route(s, HTTP_GET | HTTP_POST, "/echo", 0,
	    h_echo, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET | HTTP_POST,
	    "/api/v1/series", HTTP_ROUTE_GZIP, h_match, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/api/v1/label/",
	    HTTP_ROUTE_PREFIX | HTTP_ROUTE_GZIP, h_label, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/api/v1/labels",
	    HTTP_ROUTE_GZIP, h_labels_exact, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/api/",
	    HTTP_ROUTE_PREFIX, h_info, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_POST, "/api/v1/write", 0,
	    h_body, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_PUT, "/api/v1/write", 0,
	    h_body, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/fail", 0, h_fail,
	    NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/silent", 0,
	    h_silent, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/info",
	    HTTP_ROUTE_GZIP, h_info, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/small", 0, h_small,
	    NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/federate",
	    HTTP_ROUTE_GZIP, h_stream, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/stream-fail", 0,
	    h_stream_fail, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET, "/big",
	    HTTP_ROUTE_GZIP, h_big, NULL), 0);
	assert_int_equal(http_server_route(s, HTTP_GET | HTTP_POST, "/json",
	    HTTP_ROUTE_GZIP, h_json, NULL), 0);
}

static int
group_setup(void **state)
{
	struct http_server_opts o;
	char err[256];

	(void)state;
	curl_global_init(CURL_GLOBAL_ALL);
	http_server_opts_default(&o);
	o.max_body = MAX_BODY;
	o.timeout_s = 10;
	g_srv = http_server_new("127.0.0.1:0", &o, err, sizeof(err));
	if (g_srv == NULL) {
		fprintf(stderr, "server: %s\n", err);
		return -1;
	}
	add_routes(g_srv);
	if (http_server_start(g_srv, err, sizeof(err)) != 0) {
		fprintf(stderr, "start: %s\n", err);
		return -1;
	}
	snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d",
	    http_server_port(g_srv));
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	http_server_free(g_srv);
	g_srv = NULL;
	curl_global_cleanup();
	return 0;
}

/* --- tests ---------------------------------------------------------------- */

static void
test_listen_addresses(void **state)
{
	struct http_server *s;
	char err[256];
	static const char *const bad[] = { "9090", "127.0.0.1", "1:2:3",
		"[::1", "[::1]", "[::1]x90", "nosuchhost.invalid:80",
		"127.0.0.1:notaport", "127.0.0.1:99999" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		s = http_server_new(bad[i], NULL, err, sizeof(err));
		if (s != NULL)
			fail_msg("%s accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	s = http_server_new("localhost:0", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_true(http_server_port(s) > 0);
	http_server_free(s);
	/* The port of the running server is taken. */
	snprintf(err, sizeof(err), "127.0.0.1:%d", http_server_port(g_srv));
	s = http_server_new(err, NULL, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "in use"));
	/* IPv6 loopback, when the host has it. */
	s = http_server_new("[::1]:0", NULL, err, sizeof(err));
	if (s == NULL) {
		printf("  [::1] unavailable here: %s\n", err);
	} else {
		char url[64];
		CURL *h = curl_easy_init();
		struct strbuf body = STRBUF_INIT;
		long code = 0;

		add_routes(s);
		assert_int_equal(http_server_start(s, err, sizeof(err)), 0);
		snprintf(url, sizeof(url), "http://[::1]:%d/info",
		    http_server_port(s));
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
		assert_int_equal(curl_easy_perform(h), CURLE_OK);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 200);
		assert_non_null(strstr(strbuf_cstr(&body), "remote=[::1]:"));
		curl_easy_cleanup(h);
		strbuf_free(&body);
		http_server_free(s);
	}
	printf("  %zu bad listen addresses refused\n",
	    sizeof(bad) / sizeof(bad[0]));
}

static void
test_get_args(void **state)
{
	struct resp r;

	(void)state;
	get("/echo?match[]=up&match%5B%5D=foo%7Bx%3D%22a+b%22%7D&x=1&x=&y&&z=%2B",
	    &r);
	assert_int_equal(r.code, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_string_equal(strbuf_cstr(&r.body),
	    "GET /echo\nmatch[]=up\nmatch[]=foo{x=\"a b\"}\nx=1\nx=\ny=\nz=+\n");
	resp_free(&r);

	get("/api/v1/series?match[]=a&match[]=b&match[]=c", &r);
	assert_string_equal(strbuf_cstr(&r.body), "n=3 [a] [b] [c] query=(null)");
	resp_free(&r);

	/* Go's ParseQuery: bad escapes and ';' are errors, the rest parses. */
	get("/echo?a=%zz&b=1&c;d=2&e=%4", &r);
	assert_string_equal(strbuf_cstr(&r.body),
	    "GET /echo\nb=1\nerror: invalid URL escape \"%zz\"\n");
	resp_free(&r);
	get("/echo?c;d=2&b=%41", &r);
	assert_string_equal(strbuf_cstr(&r.body),
	    "GET /echo\nb=A\nerror: invalid semicolon separator in query\n");
	resp_free(&r);
}

static void
test_post_form(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;
	const char *form = "match[]=body1&query=sum(rate(x%5B5m%5D))+by+(job)"
	    "&match%5B%5D=body2";

	(void)state;
	/* Body values come first, then the query string's (Go ParseForm). */
	do_req(h, NULL, "/api/v1/series?match[]=q1&query=fromquery", form,
	    strlen(form), "application/x-www-form-urlencoded", NULL, false, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(strbuf_cstr(&r.body),
	    "n=3 [body1] [body2] [q1] query=sum(rate(x[5m])) by (job)");
	resp_free(&r);
	/* Content-Type with parameters and odd case still counts. */
	do_req(h, NULL, "/api/v1/series", "match[]=z", 9,
	    "Application/X-WWW-Form-Urlencoded; charset=utf-8", NULL, false, &r);
	assert_string_equal(strbuf_cstr(&r.body), "n=1 [z] query=(null)");
	resp_free(&r);
	/* Other content types are not parsed as a form. */
	do_req(h, NULL, "/api/v1/series?match[]=q", "match[]=z", 9,
	    "text/plain", NULL, false, &r);
	assert_string_equal(strbuf_cstr(&r.body), "n=1 [q] query=(null)");
	resp_free(&r);
	/* A large form body (sent with Expect: 100-continue by curl). */
	{
		struct strbuf big = STRBUF_INIT;
		int i;

		for (i = 0; i < 5000; i++)
			strbuf_printf(&big, "%smatch[]=m%d", i ? "&" : "", i);
		do_req(h, NULL, "/api/v1/series", big.buf, big.len,
		    "application/x-www-form-urlencoded", NULL, false, &r);
		assert_int_equal(r.status, 200);
		assert_true(strncmp(strbuf_cstr(&r.body), "n=5000 [m0] [m1]",
		    16) == 0);
		assert_non_null(strstr(strbuf_cstr(&r.body), "[m4999] query"));
		resp_free(&r);
		strbuf_free(&big);
	}
	curl_easy_cleanup(h);
}

static void
test_routing_errors(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;

	(void)state;
	do_req(h, NULL, "/nope", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(strbuf_cstr(&r.body), "404 page not found\n");
	resp_free(&r);

	do_req(h, NULL, "/api/v1/write", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow", "OPTIONS, POST, PUT"));
	assert_string_equal(strbuf_cstr(&r.body), "Method Not Allowed\n");
	resp_free(&r);

	do_req(h, "DELETE", "/echo", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 405);
	assert_true(has_header(&r, "Allow", "GET, HEAD, OPTIONS, POST"));
	resp_free(&r);

	do_req(h, "OPTIONS", "/echo", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Allow", "GET, HEAD, OPTIONS, POST"));
	resp_free(&r);

	do_req(h, "HEAD", "/big", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);
	resp_free(&r);

	/* Prefix routes: the longest prefix wins, exact beats prefix. */
	do_req(h, NULL, "/api/v1/label/job/values", NULL, 0, NULL, NULL, false,
	    &r);
	assert_string_equal(strbuf_cstr(&r.body), "label=job/values");
	resp_free(&r);
	do_req(h, NULL, "/api/v1/label/a%2Fb/values", NULL, 0, NULL, NULL,
	    false, &r);
	assert_string_equal(strbuf_cstr(&r.body), "label=a/b/values");
	resp_free(&r);
	do_req(h, NULL, "/api/v1/labels", NULL, 0, NULL, NULL, false, &r);
	assert_string_equal(strbuf_cstr(&r.body), "exact");
	resp_free(&r);
	do_req(h, NULL, "/api/other", NULL, 0, NULL, NULL, false, &r);
	assert_true(strncmp(strbuf_cstr(&r.body), "remote=127.0.0.1:", 17) == 0);
	resp_free(&r);

	/* Handler failures are 500 with the message. */
	do_req(h, NULL, "/fail", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 500);
	assert_string_equal(strbuf_cstr(&r.body), "boom: 42\n");
	resp_free(&r);
	do_req(h, NULL, "/silent", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 500);
	assert_string_equal(strbuf_cstr(&r.body),
	    "handler returned without a response\n");
	resp_free(&r);

	/* Routes cannot change while the server runs. */
	assert_int_equal(http_server_route(g_srv, HTTP_GET, "/late", 0,
	    h_small, NULL), -1);
	curl_easy_cleanup(h);
}

static void
test_body_and_headers(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;
	struct strbuf bin = STRBUF_INIT;
	size_t i;
	struct curl_slist *hl = NULL;

	(void)state;
	for (i = 0; i < 300000; i++)
		strbuf_putc(&bin, (char)(i * 7 + (i >> 9)));
	do_req(h, NULL, "/api/v1/write", bin.buf, bin.len,
	    "application/x-protobuf", NULL, false, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, bin.len);
	assert_memory_equal(r.body.buf, bin.buf, bin.len);
	assert_true(has_header(&r, "X-Content-Type", "application/x-protobuf"));
	assert_true(has_header(&r, "X-Content-Encoding", "-"));
	resp_free(&r);
	/* chunked upload, PUT */
	do_req(h, "PUT", "/api/v1/write", bin.buf, bin.len, NULL, NULL, true,
	    &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, bin.len);
	assert_memory_equal(r.body.buf, bin.buf, bin.len);
	resp_free(&r);
	/* Accept is readable, remote address is Go's host:port. */
	hl = curl_slist_append(hl, "Accept: application/openmetrics-text");
	do_req(h, NULL, "/info", NULL, 0, NULL, NULL, false, &r);
	resp_free(&r);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	{
		char url[128];

		snprintf(url, sizeof(url), "%s/info", g_base);
		strbuf_init(&r.body);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, NULL);
		assert_int_equal(curl_easy_perform(h), CURLE_OK);
		assert_non_null(strstr(strbuf_cstr(&r.body),
		    "accept=application/openmetrics-text"));
		assert_non_null(strstr(strbuf_cstr(&r.body),
		    "remote=127.0.0.1:"));
		strbuf_free(&r.body);
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(hl);
	strbuf_free(&bin);
}

static void
test_body_limit(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;
	char *big = mem_alloc(MAX_BODY + 1000);

	(void)state;
	memset(big, 'b', MAX_BODY + 1000);
	/* Exactly at the limit is fine. */
	do_req(h, NULL, "/api/v1/write", big, MAX_BODY, "application/x-protobuf",
	    NULL, false, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, MAX_BODY);
	resp_free(&r);
	/* Content-Length past the limit: 413 before the body is read. */
	do_req(h, NULL, "/api/v1/write", big, MAX_BODY + 1,
	    "application/x-protobuf", NULL, false, &r);
	assert_int_equal(r.status, 413);
	assert_string_equal(strbuf_cstr(&r.body), "request body too large\n");
	resp_free(&r);
	/* Chunked past the limit: 413 once the body ends. */
	do_req(h, NULL, "/api/v1/write", big, MAX_BODY + 1000,
	    "application/x-protobuf", NULL, true, &r);
	assert_int_equal(r.status, 413);
	resp_free(&r);
	/* The server still works afterwards. */
	do_req(h, NULL, "/small", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	mem_free(big);
	curl_easy_cleanup(h);
}

static void
check_stream_body(const struct strbuf *b, size_t total)
{
	size_t i;

	assert_int_equal(b->len, total);
	for (i = 0; i < total; i++)
		if ((unsigned char)b->buf[i] != stream_byte(i))
			fail_msg("byte %zu differs", i);
}

static void
test_stream(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;
	int frees = __atomic_load_n(&g_stream_frees, __ATOMIC_SEQ_CST);

	(void)state;
	do_req(h, NULL, "/federate", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.code, CURLE_OK);
	assert_int_equal(r.status, 200);
	assert_true(has_header(&r, "Transfer-Encoding", "chunked"));
	assert_false(has_header(&r, "Content-Encoding", NULL));
	check_stream_body(&r.body, STREAM_BYTES);
	resp_free(&r);
	/* gzip on the fly, decoded by curl. */
	do_req(h, NULL, "/federate", NULL, 0, NULL, "gzip", false, &r);
	assert_int_equal(r.code, CURLE_OK);
	assert_true(has_header(&r, "Content-Encoding", "gzip"));
	check_stream_body(&r.body, STREAM_BYTES);
	assert_int_equal(r.connects, 0);	/* reused after a stream */
	resp_free(&r);
	/* Empty and tiny streams. */
	do_req(h, NULL, "/federate?bytes=0", NULL, 0, NULL, "gzip", false, &r);
	assert_int_equal(r.code, CURLE_OK);
	assert_int_equal(r.body.len, 0);
	resp_free(&r);
	do_req(h, NULL, "/federate?bytes=5", NULL, 0, NULL, NULL, false, &r);
	check_stream_body(&r.body, 5);
	resp_free(&r);
	/* A failing producer cuts the connection: the client sees an error. */
	do_req(h, NULL, "/stream-fail", NULL, 0, NULL, NULL, false, &r);
	assert_int_not_equal(r.code, CURLE_OK);
	resp_free(&r);
	do_req(h, NULL, "/small", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	curl_easy_cleanup(h);
	/* Each stream's state was released exactly once. */
	for (int i = 0; i < 100 && __atomic_load_n(&g_stream_frees,
	    __ATOMIC_SEQ_CST) < frees + 5; i++)
		usleep(10000);
	assert_int_equal(__atomic_load_n(&g_stream_frees, __ATOMIC_SEQ_CST),
	    frees + 5);
	printf("  streamed %u MiB plain and gzip, intact\n", STREAM_BYTES >> 20);
}

static void
test_gzip_negotiation(void **state)
{
	CURL *h = curl_easy_init();
	struct resp plain, z, d;

	(void)state;
	do_req(h, NULL, "/big", NULL, 0, NULL, NULL, false, &plain);
	assert_int_equal(plain.status, 200);
	assert_false(has_header(&plain, "Content-Encoding", NULL));
	do_req(h, NULL, "/big", NULL, 0, NULL, "gzip", false, &z);
	assert_true(has_header(&z, "Content-Encoding", "gzip"));
	assert_int_equal(z.body.len, plain.body.len);
	assert_memory_equal(z.body.buf, plain.body.buf, plain.body.len);
	do_req(h, NULL, "/big", NULL, 0, NULL, "deflate", false, &d);
	assert_true(has_header(&d, "Content-Encoding", "deflate"));
	assert_int_equal(d.body.len, plain.body.len);
	assert_memory_equal(d.body.buf, plain.body.buf, plain.body.len);
	resp_free(&z);
	resp_free(&d);
	/* Compressed size on the wire is smaller. */
	{
		curl_off_t dl = 0;

		do_req(h, NULL, "/big", NULL, 0, NULL, "gzip", false, &z);
		curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &dl);
		assert_true((size_t)dl < plain.body.len / 3);
		printf("  /big %zu bytes, gzip on the wire %lld\n",
		    plain.body.len, (long long)dl);
		resp_free(&z);
	}
	/* Routes without HTTP_ROUTE_GZIP never compress. */
	do_req(h, NULL, "/echo?a=1", NULL, 0, NULL, "gzip", false, &z);
	assert_false(has_header(&z, "Content-Encoding", NULL));
	resp_free(&z);
	/* Small JSON body through gzip. */
	do_req(h, NULL, "/json?v=%3Cb%3E", NULL, 0, NULL, "gzip", false, &z);
	assert_true(has_header(&z, "Content-Encoding", "gzip"));
	assert_string_equal(strbuf_cstr(&z.body),
	    "{\"status\":\"success\",\"data\":[\"\\u003cb\\u003e\"]}");
	resp_free(&z);
	resp_free(&plain);
	curl_easy_cleanup(h);
}

static void
test_keepalive(void **state)
{
	CURL *h = curl_easy_init();
	struct resp r;
	int i;

	(void)state;
	do_req(h, NULL, "/small", NULL, 0, NULL, NULL, false, &r);
	assert_int_equal(r.connects, 1);
	resp_free(&r);
	for (i = 0; i < 5; i++) {
		static const char *const paths[] = { "/small", "/nope",
			"/echo?x=1", "/fail", "/api/v1/write" };

		if (i == 4)
			do_req(h, NULL, paths[i], "abc", 3, NULL, NULL, false,
			    &r);
		else
			do_req(h, NULL, paths[i], NULL, 0, NULL, NULL, false,
			    &r);
		if (r.connects != 0)
			fail_msg("%s opened a new connection", paths[i]);
		assert_false(has_header(&r, "Connection", "close"));
		resp_free(&r);
	}
	do_req(h, NULL, "/echo", "a=1", 3, "application/x-www-form-urlencoded",
	    NULL, false, &r);
	assert_int_equal(r.connects, 0);
	resp_free(&r);
	curl_easy_cleanup(h);
}

struct worker {
	int id, n, bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	CURL *h = curl_easy_init();
	struct resp r;
	char path[64], want[64];
	int i;

	for (i = 0; i < w->n; i++) {
		snprintf(path, sizeof(path), "/api/v1/series?match[]=w%d&match[]=%d",
		    w->id, i);
		snprintf(want, sizeof(want), "n=2 [w%d] [%d] query=(null)", w->id,
		    i);
		do_req(h, NULL, path, NULL, 0, NULL, i % 3 ? NULL : "gzip", false,
		    &r);
		if (r.status != 200 || strcmp(strbuf_cstr(&r.body), want) != 0)
			w->bad++;
		resp_free(&r);
		if (i % 50 == 0) {
			do_req(h, NULL, "/federate?bytes=300000", NULL, 0, NULL,
			    "gzip", false, &r);
			if (r.status != 200 || r.body.len != 300000)
				w->bad++;
			resp_free(&r);
		}
	}
	curl_easy_cleanup(h);
	return NULL;
}

static void
test_concurrent(void **state)
{
	enum { NT = 6, NREQ = 300 };
	pthread_t t[NT];
	struct worker w[NT];
	int i, bad = 0;
	int64_t t0 = time_mono_ns();

	(void)state;
	for (i = 0; i < NT; i++) {
		w[i].id = i;
		w[i].n = NREQ;
		w[i].bad = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]),
		    0);
	}
	for (i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
	}
	assert_int_equal(bad, 0);
	printf("  %d clients x %d requests correct in %.0f ms\n", NT, NREQ,
	    (double)(time_mono_ns() - t0) / 1e6);
}

/* parallel_streams opens four simultaneous streaming requests to s and
 * counts how many were served completely. */
static int
parallel_streams(struct http_server *s)
{
	char url[80];
	CURLM *m = curl_multi_init();
	CURL *hs[4];
	struct strbuf sink[4];
	int i, running, ok = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/federate?bytes=2000000",
	    http_server_port(s));
	for (i = 0; i < 4; i++) {
		strbuf_init(&sink[i]);
		hs[i] = curl_easy_init();
		curl_easy_setopt(hs[i], CURLOPT_URL, url);
		curl_easy_setopt(hs[i], CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(hs[i], CURLOPT_WRITEDATA, &sink[i]);
		curl_easy_setopt(hs[i], CURLOPT_TIMEOUT, 10L);
		curl_multi_add_handle(m, hs[i]);
	}
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running > 0);
	for (i = 0; i < 4; i++) {
		long code = 0;

		curl_easy_getinfo(hs[i], CURLINFO_RESPONSE_CODE, &code);
		if (code == 200 && sink[i].len == 2000000)
			ok++;
		strbuf_free(&sink[i]);
		curl_multi_remove_handle(m, hs[i]);
		curl_easy_cleanup(hs[i]);
	}
	curl_multi_cleanup(m);
	return ok;
}

static struct http_server *
limited_server(unsigned per_ip, unsigned max_conn, unsigned timeout_s)
{
	struct http_server_opts o;
	struct http_server *s;
	char err[256];

	http_server_opts_default(&o);
	o.per_ip_connections = per_ip;
	o.max_connections = max_conn;
	o.timeout_s = timeout_s;
	s = http_server_new("127.0.0.1:0", &o, err, sizeof(err));
	assert_non_null(s);
	add_routes(s);
	assert_int_equal(http_server_start(s, err, sizeof(err)), 0);
	return s;
}

static void
test_limits(void **state)
{
	struct http_server *s;
	int ok;

	(void)state;
	/* Of four simultaneous connections, two get through each limit. */
	s = limited_server(2, 512, 5);
	ok = parallel_streams(s);
	printf("  per-IP limit 2: %d of 4 served\n", ok);
	assert_true(ok >= 1 && ok <= 3);
	http_server_free(s);
	s = limited_server(0, 2, 5);
	ok = parallel_streams(s);
	printf("  connection limit 2: %d of 4 served\n", ok);
	assert_true(ok >= 1 && ok <= 3);
	http_server_free(s);

	s = limited_server(0, 512, 1);
	/* An idle keep-alive connection is closed after the timeout. */
	{
		CURL *h = curl_easy_init();
		struct resp r;
		char base[64];

		memcpy(base, g_base, sizeof(base));
		snprintf(g_base, sizeof(g_base), "http://127.0.0.1:%d",
		    http_server_port(s));
		do_req(h, NULL, "/small", NULL, 0, NULL, NULL, false, &r);
		assert_int_equal(r.status, 200);
		resp_free(&r);
		usleep(2500 * 1000);
		do_req(h, NULL, "/small", NULL, 0, NULL, NULL, false, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.connects, 1);
		resp_free(&r);
		memcpy(g_base, base, sizeof(base));
		curl_easy_cleanup(h);
	}
	/* A client stuck half-way through its headers is cut off too. */
	{
		struct sockaddr_in a;
		struct timeval tv = { 6, 0 };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char buf[256];
		ssize_t n;
		int64_t t0 = time_mono_ns();

		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)http_server_port(s));
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_true(fd >= 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		assert_int_equal(write(fd, "GET /small HTTP/1.1\r\nHost: x", 29),
		    29);
		n = read(fd, buf, sizeof(buf));
		assert_true(n <= 0);
		assert_true(time_mono_ns() - t0 < 5000000000LL);
		printf("  half-sent request cut after %.1f s (timeout 1 s)\n",
		    (double)(time_mono_ns() - t0) / 1e9);
		close(fd);
	}
	http_server_free(s);
}

/* rate_run measures keep-alive GETs on one connection for about 0.5 s;
 * arg points to the port in, the request count out. */
static void *
rate_run(void *arg)
{
	long *io = arg;
	CURL *h = curl_easy_init();
	struct strbuf sink = STRBUF_INIT;
	char url[64];
	int64_t t0;
	long n = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%ld/small", *io);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	t0 = time_mono_ns();
	while (time_mono_ns() - t0 < 500000000 && n < 200000) {
		strbuf_reset(&sink);
		if (curl_easy_perform(h) != CURLE_OK)
			break;
		n++;
	}
	curl_easy_cleanup(h);
	strbuf_free(&sink);
	*io = n;
	return NULL;
}

/* rate returns requests/s over nclients keep-alive connections. */
static double
rate(struct http_server *s, int nclients)
{
	pthread_t t[8];
	long io[8];
	int i;
	double total = 0;

	for (i = 0; i < nclients; i++) {
		io[i] = http_server_port(s);
		assert_int_equal(pthread_create(&t[i], NULL, rate_run, &io[i]),
		    0);
	}
	for (i = 0; i < nclients; i++) {
		pthread_join(t[i], NULL);
		total += (double)io[i];
	}
	return total / 0.5;
}

static void
test_rate(void **state)
{
	struct http_server_opts o;
	struct http_server *s;
	char err[256];
	unsigned modes[] = { 0, 2 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		http_server_opts_default(&o);
		o.threads = modes[i];
		s = http_server_new("127.0.0.1:0", &o, err, sizeof(err));
		assert_non_null(s);
		add_routes(s);
		assert_int_equal(http_server_start(s, err, sizeof(err)), 0);
		printf("  keep-alive GET /small, %s: 1 client %.0f req/s, "
		    "4 clients %.0f req/s (informational)\n",
		    modes[i] ? "2 epoll threads" : "thread per connection",
		    rate(s, 1), rate(s, 4));
		http_server_free(s);
	}
}

static void
test_json(void **state)
{
	static const char esc_in[] = "a\"b\\c\n\t\r\x01<>&\xe2\x80\xa8"
	    "\xe2\x80\xa9 \xc3\xa9\xff\xc3 \xed\xa0\x80 \xf0\x9f\x98\x80";
	struct strbuf sb = STRBUF_INIT;
	struct json_writer w;
	static const struct {
		double v;
		const char *num, *str;
	} nums[] = {
		{ 0, "0", "0" }, { 1, "1", "1" }, { -1.5, "-1.5", "-1.5" },
		{ 0.1, "0.1", "0.1" }, { 1e21, "1e+21",
		    "1000000000000000000000" },
		{ 1e20, "100000000000000000000", "100000000000000000000" },
		{ 1e-7, "1e-7", "0.0000001" }, { 1e-6, "0.000001", "0.000001" },
		{ 123456789.125, "123456789.125", "123456789.125" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308", NULL },
		{ 5e-324, "5e-324", NULL }, { 2.5e-10, "2.5e-10", "0.00000000025" },
		{ 1.0 / 3, "0.3333333333333333", "0.3333333333333333" },
	};
	size_t i;

	(void)state;
	json_escape(&sb, esc_in, sizeof(esc_in) - 1);
	assert_string_equal(strbuf_cstr(&sb),
	    "\"a\\\"b\\\\c\\n\\t\\r\\u0001\\u003c\\u003e\\u0026\\u2028\\u2029 "
	    "\xc3\xa9\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \xf0\x9f\x98\x80\"");
	strbuf_reset(&sb);
	json_escape(&sb, "x\0y", 3);
	assert_string_equal(strbuf_cstr(&sb), "\"x\\u0000y\"");
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		strbuf_reset(&sb);
		json_init(&w, &sb);
		json_double(&w, nums[i].v);
		if (strcmp(strbuf_cstr(&sb), nums[i].num) != 0)
			fail_msg("json_double(%g) = %s, want %s", nums[i].v,
			    strbuf_cstr(&sb), nums[i].num);
		if (nums[i].str == NULL)
			continue;
		strbuf_reset(&sb);
		json_format_float(&sb, nums[i].v, 'f');
		if (strcmp(strbuf_cstr(&sb), nums[i].str) != 0)
			fail_msg("'f'(%g) = %s, want %s", nums[i].v,
			    strbuf_cstr(&sb), nums[i].str);
	}
	strbuf_reset(&sb);
	json_init(&w, &sb);
	json_array_begin(&w);
	json_float_string(&w, NAN);
	json_float_string(&w, INFINITY);
	json_float_string(&w, -INFINITY);
	json_float_string(&w, 1e-7);
	json_double(&w, NAN);
	json_object_begin(&w);
	json_key(&w, "a");
	json_array_begin(&w);
	json_array_end(&w);
	json_key(&w, "b");
	json_object_begin(&w);
	json_object_end(&w);
	json_key(&w, "c");
	json_int(&w, -9223372036854775807LL - 1);
	json_key(&w, "d");
	json_uint(&w, 18446744073709551615ULL);
	json_key(&w, "e");
	json_bool(&w, true);
	json_key(&w, "f");
	json_string(&w, NULL);
	json_key(&w, "g");
	json_raw(&w, "[1,2]", 5);
	json_object_end(&w);
	json_null(&w);
	json_array_end(&w);
	assert_true(json_ok(&w));
	assert_string_equal(strbuf_cstr(&sb),
	    "[\"NaN\",\"+Inf\",\"-Inf\",\"0.0000001\",null,{\"a\":[],\"b\":{},"
	    "\"c\":-9223372036854775808,\"d\":18446744073709551615,\"e\":true,"
	    "\"f\":null,\"g\":[1,2]},null]");
	strbuf_free(&sb);
	printf("  %zu number forms checked\n", sizeof(nums) / sizeof(nums[0]));
}

static void
test_gzip_roundtrip(void **state)
{
	struct strbuf in = STRBUF_INIT, out = STRBUF_INIT;
	struct http_gzip *z;
	unsigned char *dec;
	uLongf declen;
	z_stream zs;
	size_t i;
	int deflate_fmt;

	(void)state;
	for (i = 0; i < 200000; i++)
		strbuf_printf(&in, "%zu,", i * 2654435761u % 1000);
	for (deflate_fmt = 0; deflate_fmt <= 1; deflate_fmt++) {
		strbuf_reset(&out);
		z = http_gzip_new(deflate_fmt ? 9 : 1, deflate_fmt);
		assert_non_null(z);
		for (i = 0; i < in.len; i += 7777)
			assert_int_equal(http_gzip_write(z, in.buf + i,
			    in.len - i < 7777 ? in.len - i : 7777, &out), 0);
		assert_int_equal(http_gzip_finish(z, &out), 0);
		assert_int_equal(http_gzip_write(z, "x", 1, &out), -1);
		http_gzip_free(z);
		dec = mem_alloc(in.len + 1);
		declen = in.len + 1;
		memset(&zs, 0, sizeof(zs));
		assert_int_equal(inflateInit2(&zs, deflate_fmt ? 15 : 31), Z_OK);
		zs.next_in = (Bytef *)out.buf;
		zs.avail_in = (uInt)out.len;
		zs.next_out = dec;
		zs.avail_out = (uInt)declen;
		assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
		assert_int_equal(zs.total_out, in.len);
		assert_memory_equal(dec, in.buf, in.len);
		inflateEnd(&zs);
		mem_free(dec);
		if (deflate_fmt == 0)
			assert_true((unsigned char)out.buf[0] == 0x1f &&
			    (unsigned char)out.buf[1] == 0x8b);
	}
	strbuf_free(&in);
	strbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_get_args),
		cmocka_unit_test(test_post_form),
		cmocka_unit_test(test_routing_errors),
		cmocka_unit_test(test_body_and_headers),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_gzip_negotiation),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_rate),
	};

	return cmocka_run_group_tests_name("http", tests, group_setup,
	    group_teardown);
}
