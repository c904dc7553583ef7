/* lib/http/server.c - HTTP server on libmicrohttpd: listen, route, respond.
 *
 * Owns the listening socket (bound here so Go-style listen addresses and
 * port 0 behave as in Prometheus), the MHD daemon and the route table. MHD
 * runs its own threads: one per connection by default, or a pool of epoll
 * threads. The route table is written only before http_server_start() and
 * read-only afterwards, so no lock guards it; a struct http_request is
 * touched by one MHD thread at a time and freed in MHD's completion
 * callback.
 *
 * Request flow inside the MHD access handler (the "two-call idiom", which
 * keeps HTTP/1.1 connections alive): the first call only routes and checks
 * Content-Length against max_body (a too-large body gets 413 at once and the
 * connection is closed); further calls collect the body; the final call
 * (no more upload data) runs the handler and queues its response. Bodies are
 * bounded by max_body and allocated with mem_try_*, since the client picks
 * their size.
 *
 * Streamed responses pull from the handler's callback inside MHD's content
 * reader: each call's output is compressed (if negotiated) and handed to MHD
 * in pieces, so memory per stream is one callback's output plus zlib state.
 */
#include "config.h"

#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/gzip.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/strbuf.h"

#define HTTP_STREAM_BLOCK (64 * 1024)

enum { ENC_NONE, ENC_GZIP, ENC_DEFLATE };

struct http_route {
	char *path;
	size_t len;
	unsigned methods;
	unsigned flags;
	http_handler_fn fn;
	void *arg;
};

struct http_server {
	struct http_server_opts opts;
	int fd;			/* listening socket; MHD's once started */
	int family;
	int port;
	struct MHD_Daemon *mhd;
	struct http_route *routes;
	size_t nroutes;
	bool started;
	bool stopped;
	char mhd_err[256];	/* last MHD message, for start errors */
};

struct http_hdr {
	char *name;
	char *value;
	struct http_hdr *next;
};

struct http_arg {
	char *key;
	char *val;
};

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn;
	char *uri;		/* raw request target, as sent */
	const char *query;	/* into uri: after '?', or "" */
	const char *path;	/* MHD's decoded path */
	const char *method_name;
	unsigned method;
	const struct http_route *route;
	const char *suffix;
	unsigned allowed;	/* methods of the matched path, for 405 */
	int early_status;	/* 404/405 decided before the body */
	bool started;
	bool too_large;
	bool no_memory;
	char *body;
	size_t body_len, body_cap, discarded;
	bool args_parsed;
	struct http_arg *args;
	size_t nargs, args_cap;
	char *form_err;
	void **scratch;		/* arrays handed out by http_request_args */
	size_t nscratch, scratch_cap;
	struct http_hdr *hdrs;
	struct MHD_Response *resp;
	int status;
	char *fail_msg;
	int encoding;
	bool no_compress;
	char remote[INET6_ADDRSTRLEN + 16];
};

struct http_stream {
	struct http_request *req;	/* valid while the stream is read */
	struct strbuf raw;		/* what the producer wrote */
	struct strbuf out;		/* compressed bytes (gzip only) */
	size_t off;			/* bytes of the pending buffer sent */
	struct http_gzip *gz;
	http_stream_fn next;
	void *state;
	void (*state_free)(void *);
	bool eof;
};

/* --- options, errors ------------------------------------------------------ */

void
http_server_opts_default(struct http_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->threads = 0;
	o->max_connections = 512;
	o->per_ip_connections = 0;
	o->timeout_s = 120;
	o->max_body = 32u << 20;
	o->max_header = 128u << 10;
	o->gzip_level = 1;
}

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- listening ------------------------------------------------------------ */

/* split_host_port splits addr as Go's net.SplitHostPort does. Returns 0 or
 * -1 with a message. host and port point into buf. */
static int
split_host_port(const char *addr, char *buf, size_t buflen, char **host,
    char **port, char *err, size_t errlen)
{
	char *colon, *end;
	size_t len = strlen(addr);

	if (len + 1 > buflen) {
		seterr(err, errlen, "address %s: too long", addr);
		return -1;
	}
	memcpy(buf, addr, len + 1);
	if (buf[0] == '[') {
		end = strchr(buf, ']');
		if (end == NULL) {
			seterr(err, errlen, "address %s: missing ']' in address",
			    addr);
			return -1;
		}
		if (end[1] == '\0') {
			seterr(err, errlen, "address %s: missing port in address",
			    addr);
			return -1;
		}
		if (end[1] != ':') {
			seterr(err, errlen,
			    "address %s: unexpected character after ']'", addr);
			return -1;
		}
		*end = '\0';
		*host = buf + 1;
		*port = end + 2;
		if (strchr(*port, ':') != NULL || strchr(*port, ']') != NULL) {
			seterr(err, errlen, "address %s: too many colons in address",
			    addr);
			return -1;
		}
		return 0;
	}
	colon = strrchr(buf, ':');
	if (colon == NULL) {
		seterr(err, errlen, "address %s: missing port in address", addr);
		return -1;
	}
	*colon = '\0';
	if (strchr(buf, ':') != NULL) {
		seterr(err, errlen, "address %s: too many colons in address",
		    addr);
		return -1;
	}
	if (strchr(buf, '[') != NULL || strchr(buf, ']') != NULL ||
	    strchr(colon + 1, '[') != NULL || strchr(colon + 1, ']') != NULL) {
		seterr(err, errlen, "address %s: unexpected bracket", addr);
		return -1;
	}
	*host = buf;
	*port = colon + 1;
	return 0;
}

/* open_listener makes a bound, listening, non-blocking TCP socket for one
 * address. Returns the fd or -1 with errno set. */
static int
open_listener(const struct sockaddr *sa, socklen_t salen)
{
	int fd, one = 1, zero = 0, e;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
		    sizeof(zero));
	if (bind(fd, sa, salen) != 0 || listen(fd, SOMAXCONN) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* listen_address binds addr; returns the fd or -1 with a message. */
static int
listen_address(const char *addr, int *family, char *err, size_t errlen)
{
	char buf[512], *host, *port;
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	int rc, fd;

	if (split_host_port(addr, buf, sizeof(buf), &host, &port, err,
	    errlen) != 0)
		return -1;
	if (*port == '\0')
		port = "0";
	if (strspn(port, "0123456789") == strlen(port) &&
	    (strlen(port) > 5 || atol(port) > 65535)) {
		seterr(err, errlen, "address %s: invalid port", addr);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_PASSIVE;
	if (*host == '\0') {
		/* Like Go: all addresses, dual-stack when IPv6 exists. */
		struct sockaddr_in6 s6;
		struct sockaddr_in s4;
		long pn;

		rc = getaddrinfo(NULL, port, &hints, &res);
		if (rc != 0) {
			seterr(err, errlen, "address %s: %s", addr,
			    gai_strerror(rc));
			return -1;
		}
		pn = ntohs(res->ai_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)res->ai_addr)->sin6_port :
		    ((struct sockaddr_in *)res->ai_addr)->sin_port);
		freeaddrinfo(res);
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)pn);
		s6.sin6_addr = in6addr_any;
		fd = open_listener((struct sockaddr *)&s6, sizeof(s6));
		*family = AF_INET6;
		if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
			memset(&s4, 0, sizeof(s4));
			s4.sin_family = AF_INET;
			s4.sin_port = htons((uint16_t)pn);
			s4.sin_addr.s_addr = htonl(INADDR_ANY);
			fd = open_listener((struct sockaddr *)&s4, sizeof(s4));
			*family = AF_INET;
		}
		if (fd < 0)
			seterr(err, errlen, "listen tcp %s: %s", addr,
			    strerror(errno));
		return fd;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		seterr(err, errlen, "address %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	/* Go listens on the first IPv4 address of a name, else the first. */
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (pick == NULL)
		pick = res;
	fd = open_listener(pick->ai_addr, pick->ai_addrlen);
	*family = pick->ai_family;
	if (fd < 0)
		seterr(err, errlen, "listen tcp %s: %s", addr, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

struct http_server *
http_server_new(const char *listen_address_str,
    const struct http_server_opts *opts, char *err, size_t errlen)
{
	struct http_server *srv;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (listen_address_str == NULL) {
		seterr(err, errlen, "no listen address");
		return NULL;
	}
	srv = mem_calloc(1, sizeof(*srv));
	if (opts != NULL)
		srv->opts = *opts;
	else
		http_server_opts_default(&srv->opts);
	if (srv->opts.max_connections == 0)
		srv->opts.max_connections = 512;
	if (srv->opts.max_header < 4096)
		srv->opts.max_header = 4096;
	srv->fd = listen_address(listen_address_str, &srv->family, err,
	    errlen);
	if (srv->fd < 0) {
		mem_free(srv);
		return NULL;
	}
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &sl) == 0)
		srv->port = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	return srv;
}

int
http_server_route(struct http_server *srv, unsigned methods, const char *path,
    unsigned flags, http_handler_fn fn, void *arg)
{
	struct http_route *r;

	if (srv->started || fn == NULL || path == NULL)
		return -1;
	srv->routes = mem_realloc(srv->routes,
	    (srv->nroutes + 1) * sizeof(*srv->routes));
	r = &srv->routes[srv->nroutes++];
	r->path = mem_strdup(path);
	r->len = strlen(path);
	if (methods & HTTP_GET)
		methods |= HTTP_HEAD;
	r->methods = methods;
	r->flags = flags;
	r->fn = fn;
	r->arg = arg;
	return 0;
}

int
http_server_port(const struct http_server *srv)
{
	return srv->port;
}

/* --- routing -------------------------------------------------------------- */

static unsigned
method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned bit;
	} tab[] = {
		{ "GET", HTTP_GET }, { "POST", HTTP_POST }, { "HEAD", HTTP_HEAD },
		{ "PUT", HTTP_PUT }, { "DELETE", HTTP_DELETE },
		{ "OPTIONS", HTTP_OPTIONS }, { "PATCH", HTTP_PATCH },
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(m, tab[i].name) == 0)
			return tab[i].bit;
	return HTTP_OTHER;
}

/* route_find sets req->route (and suffix) for its path and method, or
 * req->allowed to the methods the path takes and returns NULL. */
static const struct http_route *
route_find(struct http_request *req)
{
	const struct http_server *srv = req->srv;
	const char *path = req->path;
	const struct http_route *r;
	size_t i, best = 0;
	bool exact = false, prefix = false;

	req->allowed = 0;
	for (i = 0; i < srv->nroutes; i++) {
		r = &srv->routes[i];
		if ((r->flags & HTTP_ROUTE_PREFIX) || strcmp(r->path, path) != 0)
			continue;
		exact = true;
		req->allowed |= r->methods;
		if (r->methods & req->method) {
			req->suffix = "";
			return r;
		}
	}
	if (exact)
		return NULL;
	for (i = 0; i < srv->nroutes; i++) {
		r = &srv->routes[i];
		if ((r->flags & HTTP_ROUTE_PREFIX) && r->len >= best &&
		    strncmp(r->path, path, r->len) == 0) {
			best = r->len;
			prefix = true;
		}
	}
	if (!prefix)
		return NULL;
	for (i = 0; i < srv->nroutes; i++) {
		r = &srv->routes[i];
		if (!(r->flags & HTTP_ROUTE_PREFIX) || r->len != best ||
		    strncmp(r->path, path, r->len) != 0)
			continue;
		req->allowed |= r->methods;
		if (r->methods & req->method) {
			req->suffix = path + r->len;
			return r;
		}
	}
	return NULL;
}

/* accept_encoding picks the response encoding as Prometheus'
 * CompressionHandler does: the first listed of "gzip" and "deflate". */
static int
accept_encoding(const char *ae)
{
	const char *p = ae, *e, *s;

	while (p != NULL && *p != '\0') {
		size_t n;

		e = strchr(p, ',');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		s = p;
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 4 && memcmp(s, "gzip", 4) == 0)
			return ENC_GZIP;
		if (n == 7 && memcmp(s, "deflate", 7) == 0)
			return ENC_DEFLATE;
		p = e != NULL ? e + 1 : NULL;
	}
	return ENC_NONE;
}

/* --- request accessors ---------------------------------------------------- */

unsigned
http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *
http_request_method_name(const struct http_request *req)
{
	return req->method_name;
}

const char *
http_request_path(const struct http_request *req)
{
	return req->path;
}

const char *
http_request_suffix(const struct http_request *req)
{
	return req->suffix != NULL ? req->suffix : "";
}

const char *
http_request_query(const struct http_request *req)
{
	return req->query != NULL ? req->query : "";
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const void *
http_request_body(const struct http_request *req, size_t *len)
{
	*len = req->body_len;
	return req->body != NULL ? req->body : "";
}

const char *
http_request_remote_addr(const struct http_request *req)
{
	struct http_request *r = (struct http_request *)req;
	const union MHD_ConnectionInfo *ci;
	char ip[INET6_ADDRSTRLEN];

	if (r->remote[0] != '\0')
		return r->remote;
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return "";
	if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)(const void *)ci->client_addr;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)) == NULL)
			return "";
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			snprintf(r->remote, sizeof(r->remote), "%s:%u",
			    ip + 7, ntohs(s6->sin6_port));
		else
			snprintf(r->remote, sizeof(r->remote), "[%s]:%u", ip,
			    ntohs(s6->sin6_port));
	} else if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *s4 =
		    (const struct sockaddr_in *)(const void *)ci->client_addr;

		if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)) == NULL)
			return "";
		snprintf(r->remote, sizeof(r->remote), "%s:%u", ip,
		    ntohs(s4->sin_port));
	}
	return r->remote;
}

bool
http_request_compresses(const struct http_request *req)
{
	return req->encoding != ENC_NONE && !req->no_compress;
}

/* --- form parsing (Go's url.ParseQuery and Request.ParseForm) ------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* form_unescape decodes len bytes of s (query-component rules: '+' is a
 * space) into a new string. Returns NULL on a bad escape (the first one
 * is recorded in req->form_err) or on OOM. */
static char *
form_unescape(struct http_request *req, const char *s, size_t len)
{
	char *out, *o;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != '%')
			continue;
		if (i + 2 >= len || hexval((unsigned char)s[i + 1]) < 0 ||
		    hexval((unsigned char)s[i + 2]) < 0) {
			if (req->form_err == NULL) {
				struct strbuf sb = STRBUF_INIT;
				size_t n = len - i < 3 ? len - i : 3;

				strbuf_puts(&sb, "invalid URL escape \"");
				strbuf_append(&sb, s + i, n);
				strbuf_putc(&sb, '"');
				req->form_err = strbuf_detach(&sb, NULL);
			}
			return NULL;
		}
		i += 2;
	}
	out = mem_try_alloc(len + 1);
	if (out == NULL)
		return NULL;
	for (i = 0, o = out; i < len; i++) {
		if (s[i] == '%') {
			*o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 +
			    hexval((unsigned char)s[i + 2]));
			i += 2;
		} else if (s[i] == '+') {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static void
form_seterr(struct http_request *req, const char *msg)
{
	if (req->form_err == NULL)
		req->form_err = mem_strdup(msg);
}

/* form_parse adds the pairs of s (len bytes) to req->args. */
static void
form_parse(struct http_request *req, const char *s, size_t len)
{
	const char *end = s + len;

	while (s < end) {
		const char *amp = memchr(s, '&', (size_t)(end - s));
		const char *pe = amp != NULL ? amp : end;
		const char *eq;
		char *k, *v;

		if (memchr(s, ';', (size_t)(pe - s)) != NULL) {
			form_seterr(req, "invalid semicolon separator in query");
			s = pe + (amp != NULL);
			continue;
		}
		if (pe == s) {
			s = pe + (amp != NULL);
			continue;
		}
		eq = memchr(s, '=', (size_t)(pe - s));
		k = form_unescape(req, s, (size_t)((eq != NULL ? eq : pe) - s));
		v = k == NULL ? NULL : eq != NULL ?
		    form_unescape(req, eq + 1, (size_t)(pe - eq - 1)) :
		    form_unescape(req, "", 0);
		if (k == NULL || v == NULL) {
			mem_free(k);
			mem_free(v);
			s = pe + (amp != NULL);
			continue;
		}
		if (req->nargs == req->args_cap) {
			size_t ncap = req->args_cap ? req->args_cap * 2 : 8;
			struct http_arg *na = mem_try_realloc(req->args,
			    ncap * sizeof(*na));

			if (na == NULL) {
				mem_free(k);
				mem_free(v);
				form_seterr(req, "out of memory");
				return;
			}
			req->args = na;
			req->args_cap = ncap;
		}
		req->args[req->nargs].key = k;
		req->args[req->nargs].val = v;
		req->nargs++;
		s = pe + (amp != NULL);
	}
}

/* is_form_body tells whether the body holds form values for ParseForm. */
static bool
is_form_body(const struct http_request *req)
{
	const char *ct;
	size_t n;

	if (!(req->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH)))
		return false;
	ct = http_request_header(req, "Content-Type");
	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded",
	    33) == 0;
}

static void
args_parse(struct http_request *req)
{
	if (req->args_parsed)
		return;
	req->args_parsed = true;
	if (is_form_body(req) && req->body_len > 0)
		form_parse(req, req->body, req->body_len);
	if (req->query != NULL)
		form_parse(req, req->query, strlen(req->query));
}

const char *
http_request_arg(struct http_request *req, const char *key)
{
	size_t i;

	args_parse(req);
	for (i = 0; i < req->nargs; i++)
		if (strcmp(req->args[i].key, key) == 0)
			return req->args[i].val;
	return NULL;
}

const char *const *
http_request_args(struct http_request *req, const char *key, size_t *n)
{
	static const char *const empty[1] = { NULL };
	const char **out;
	size_t i, cnt = 0;

	args_parse(req);
	*n = 0;
	for (i = 0; i < req->nargs; i++)
		if (strcmp(req->args[i].key, key) == 0)
			cnt++;
	if (cnt == 0)
		return empty;
	if (req->nscratch == req->scratch_cap) {
		req->scratch_cap = req->scratch_cap ? req->scratch_cap * 2 : 4;
		req->scratch = mem_realloc(req->scratch,
		    req->scratch_cap * sizeof(*req->scratch));
	}
	out = mem_alloc((cnt + 1) * sizeof(*out));
	req->scratch[req->nscratch++] = out;
	for (i = 0, cnt = 0; i < req->nargs; i++)
		if (strcmp(req->args[i].key, key) == 0)
			out[cnt++] = req->args[i].val;
	out[cnt] = NULL;
	*n = cnt;
	return out;
}

size_t
http_request_nargs(struct http_request *req)
{
	args_parse(req);
	return req->nargs;
}

const char *
http_request_arg_at(struct http_request *req, size_t i, const char **val)
{
	args_parse(req);
	if (i >= req->nargs) {
		*val = NULL;
		return NULL;
	}
	*val = req->args[i].val;
	return req->args[i].key;
}

const char *
http_request_form_error(struct http_request *req)
{
	args_parse(req);
	return req->form_err;
}

/* --- responses ------------------------------------------------------------ */

int
http_response_header(struct http_request *req, const char *name,
    const char *value)
{
	struct http_hdr *h, **tail;

	if (strpbrk(name, "\r\n: \t") != NULL || strpbrk(value, "\r\n") != NULL)
		return -1;
	h = mem_calloc(1, sizeof(*h));
	h->name = mem_strdup(name);
	h->value = mem_strdup(value);
	for (tail = &req->hdrs; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = h;
	return 0;
}

void
http_response_no_compress(struct http_request *req)
{
	req->no_compress = true;
}

/* finish_response adds the standard and the handler's headers to resp and
 * parks it in req for the access handler to queue. */
static int
finish_response(struct http_request *req, struct MHD_Response *resp,
    int status, const char *content_type, bool compressed)
{
	struct http_hdr *h;

	if (resp == NULL)
		return -1;
	if (content_type != NULL)
		MHD_add_response_header(resp, "Content-Type", content_type);
	if (compressed)
		MHD_add_response_header(resp, "Content-Encoding",
		    req->encoding == ENC_GZIP ? "gzip" : "deflate");
	for (h = req->hdrs; h != NULL; h = h->next)
		if (MHD_add_response_header(resp, h->name, h->value) != MHD_YES)
			log_kv(LOG_WARN, "http", "response header refused",
			    "name", h->name, NULL);
	req->resp = resp;
	req->status = status;
	return 0;
}

int
http_respond(struct http_request *req, int status, const char *content_type,
    struct strbuf *body)
{
	struct MHD_Response *resp;
	bool comp = http_request_compresses(req);
	char *buf;
	size_t len;

	if (req->resp != NULL) {
		strbuf_free(body);
		return -1;
	}
	if (comp) {
		struct strbuf z = STRBUF_INIT;

		if (http_gzip_compress(req->srv->opts.gzip_level,
		    req->encoding == ENC_DEFLATE, body->buf != NULL ?
		    body->buf : "", body->len, &z) != 0) {
			strbuf_free(&z);
			strbuf_free(body);
			return http_request_fail(req, "compression failed");
		}
		strbuf_free(body);
		buf = strbuf_detach(&z, &len);
	} else {
		buf = strbuf_detach(body, &len);
	}
	resp = MHD_create_response_from_buffer_with_free_callback(len, buf,
	    mem_free);
	if (resp == NULL) {
		mem_free(buf);
		return -1;
	}
	return finish_response(req, resp, status, content_type, comp);
}

int
http_respond_data(struct http_request *req, int status,
    const char *content_type, const void *data, size_t len)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_append(&sb, data, len);
	return http_respond(req, status, content_type, &sb);
}

int
http_respond_text(struct http_request *req, int status, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	(void)http_response_header(req, "X-Content-Type-Options", "nosniff");
	return http_respond(req, status, "text/plain; charset=utf-8", &sb);
}

int
http_request_fail(struct http_request *req, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	mem_free(req->fail_msg);
	req->fail_msg = strbuf_detach(&sb, NULL);
	return -1;
}

/* --- streamed responses --------------------------------------------------- */

struct strbuf *
http_stream_buf(struct http_stream *s)
{
	return &s->raw;
}

void
http_stream_write(struct http_stream *s, const void *data, size_t len)
{
	strbuf_append(&s->raw, data, len);
}

void
http_stream_printf(struct http_stream *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strbuf_vprintf(&s->raw, fmt, ap);
	va_end(ap);
}

struct http_request *
http_stream_request(struct http_stream *s)
{
	return s->req;
}

/* stream_read is MHD's content reader: refill from the producer when the
 * pending bytes are sent, and hand out at most max bytes. */
static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *s = cls;
	struct strbuf *pend = s->gz != NULL ? &s->out : &s->raw;
	size_t n;
	int rc;

	(void)pos;
	while (s->off >= pend->len) {
		strbuf_reset(pend);
		s->off = 0;
		if (s->eof)
			return MHD_CONTENT_READER_END_OF_STREAM;
		rc = s->next(s, s->state);
		if (rc < 0) {
			log_kv(LOG_WARN, "http", "stream producer failed",
			    "path", s->req->path, NULL);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (s->gz != NULL) {
			if (http_gzip_write(s->gz, s->raw.buf, s->raw.len,
			    &s->out) != 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			strbuf_reset(&s->raw);
		}
		if (rc == 0) {
			s->eof = true;
			if (s->gz != NULL && http_gzip_finish(s->gz, &s->out) != 0)
				return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	n = pend->len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, pend->buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void
stream_free(void *cls)
{
	struct http_stream *s = cls;

	if (s->state_free != NULL)
		s->state_free(s->state);
	strbuf_free(&s->raw);
	strbuf_free(&s->out);
	http_gzip_free(s->gz);
	mem_free(s);
}

int
http_respond_stream(struct http_request *req, int status,
    const char *content_type, http_stream_fn next, void *state,
    void (*state_free)(void *state))
{
	struct http_stream *s;
	struct MHD_Response *resp;
	bool comp = http_request_compresses(req);

	if (req->resp != NULL || next == NULL) {
		if (state_free != NULL)
			state_free(state);
		return -1;
	}
	s = mem_calloc(1, sizeof(*s));
	s->req = req;
	s->next = next;
	s->state = state;
	s->state_free = state_free;
	if (comp) {
		s->gz = http_gzip_new(req->srv->opts.gzip_level,
		    req->encoding == ENC_DEFLATE);
		if (s->gz == NULL) {
			stream_free(s);
			return http_request_fail(req, "compression failed");
		}
	}
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    HTTP_STREAM_BLOCK, stream_read, s, stream_free);
	if (resp == NULL) {
		stream_free(s);
		return -1;
	}
	return finish_response(req, resp, status, content_type, comp);
}

/* --- MHD callbacks -------------------------------------------------------- */

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_request *req = mem_calloc(1, sizeof(*req));
	char *q;

	req->srv = cls;
	req->conn = conn;
	req->uri = mem_strdup(uri != NULL ? uri : "");
	q = strchr(req->uri, '?');
	req->query = q != NULL ? q + 1 : "";
	return req;
}

static void
request_free(struct http_request *req)
{
	struct http_hdr *h, *hn;
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < req->nargs; i++) {
		mem_free(req->args[i].key);
		mem_free(req->args[i].val);
	}
	mem_free(req->args);
	for (i = 0; i < req->nscratch; i++)
		mem_free(req->scratch[i]);
	mem_free(req->scratch);
	for (h = req->hdrs; h != NULL; h = hn) {
		hn = h->next;
		mem_free(h->name);
		mem_free(h->value);
		mem_free(h);
	}
	if (req->resp != NULL)
		MHD_destroy_response(req->resp);
	mem_free(req->form_err);
	mem_free(req->fail_msg);
	mem_free(req->body);
	mem_free(req->uri);
	mem_free(req);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	request_free(*con_cls);
	*con_cls = NULL;
}

static void
on_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *srv = cls;
	char buf[256];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	if (!__atomic_load_n(&srv->started, __ATOMIC_ACQUIRE))
		memcpy(srv->mhd_err, buf, n + 1);
	log_kv(LOG_DEBUG, "http", buf, NULL);
}

/* queue_text queues a Go http.Error-style text response right away. */
static enum MHD_Result
queue_text(struct MHD_Connection *conn, int status, const char *text,
    const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result rc;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
	    MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type",
	    "text/plain; charset=utf-8");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (allow != NULL)
		MHD_add_response_header(resp, "Allow", allow);
	rc = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void
allow_header(unsigned allowed, char *buf, size_t len)
{
	static const char *const names[] = { "DELETE", "GET", "HEAD",
		"OPTIONS", "PATCH", "POST", "PUT" };
	size_t i, off = 0;

	allowed |= HTTP_OPTIONS;
	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(allowed & (1u << i)))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
		    off ? ", " : "", names[i]);
		if (off >= len)
			break;
	}
}

/* run_handler calls the route's handler and queues what it produced. */
static enum MHD_Result
run_handler(struct http_request *req)
{
	const struct http_route *r = req->route;
	struct MHD_Response *resp;
	enum MHD_Result rc;
	int hrc;

	if ((r->flags & HTTP_ROUTE_GZIP) && req->srv->opts.gzip_level > 0) {
		const char *ae = http_request_header(req, "Accept-Encoding");

		req->encoding = ae != NULL ? accept_encoding(ae) : ENC_NONE;
	}
	hrc = r->fn(req, r->arg);
	if (req->resp == NULL) {
		const char *msg = req->fail_msg != NULL ? req->fail_msg :
		    "handler returned without a response";
		char *text;
		struct strbuf sb = STRBUF_INIT;

		log_kv(LOG_WARN, "http", "handler failed", "path", req->path,
		    "err", msg, NULL);
		strbuf_printf(&sb, "%s\n", msg);
		text = strbuf_detach(&sb, NULL);
		resp = MHD_create_response_from_buffer_with_free_callback(
		    strlen(text), text, mem_free);
		if (resp == NULL) {
			mem_free(text);
			return MHD_NO;
		}
		MHD_add_response_header(resp, "Content-Type",
		    "text/plain; charset=utf-8");
		MHD_add_response_header(resp, "X-Content-Type-Options",
		    "nosniff");
		rc = MHD_queue_response(req->conn, 500, resp);
		MHD_destroy_response(resp);
		return rc;
	}
	if (hrc < 0 && req->fail_msg != NULL)
		log_kv(LOG_WARN, "http", "handler failed after responding",
		    "path", req->path, "err", req->fail_msg, NULL);
	rc = MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	return rc;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *con_cls;
	char allow[96];

	(void)version;
	if (req == NULL) {
		req = on_uri(srv, url, conn);
		*con_cls = req;
	}
	if (!req->started) {
		const char *cl;

		req->started = true;
		req->conn = conn;
		req->path = url;
		req->method_name = method;
		req->method = method_bit(method);
		req->route = route_find(req);
		if (req->route == NULL)
			req->early_status = req->allowed ? 405 : 404;
		if (req->route == NULL && req->method == HTTP_OPTIONS &&
		    req->allowed)
			req->early_status = 200;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && strtoull(cl, NULL, 10) > srv->opts.max_body)
			return queue_text(conn, 413, "request body too large\n",
			    NULL);
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (req->early_status || req->too_large || req->no_memory) {
			req->discarded += n;
			/* Stop reading a body nobody wants past a bound. */
			return req->discarded > srv->opts.max_body + 65536 ?
			    MHD_NO : MHD_YES;
		}
		if (n > srv->opts.max_body - req->body_len) {
			req->too_large = true;
			MEM_FREE(req->body);
			req->body_len = req->body_cap = 0;
			req->discarded = n;
			return MHD_YES;
		}
		if (req->body_len + n + 1 > req->body_cap) {
			size_t ncap = req->body_cap ? req->body_cap : 4096;
			char *nb;

			while (ncap < req->body_len + n + 1)
				ncap *= 2;
			nb = mem_try_realloc(req->body, ncap);
			if (nb == NULL) {
				req->no_memory = true;
				MEM_FREE(req->body);
				req->body_len = req->body_cap = 0;
				return MHD_YES;
			}
			req->body = nb;
			req->body_cap = ncap;
		}
		memcpy(req->body + req->body_len, upload_data, n);
		req->body_len += n;
		req->body[req->body_len] = '\0';
		return MHD_YES;
	}
	if (req->early_status == 404)
		return queue_text(conn, 404, "404 page not found\n", NULL);
	if (req->early_status == 405 || req->early_status == 200) {
		allow_header(req->allowed, allow, sizeof(allow));
		return queue_text(conn, req->early_status,
		    req->early_status == 405 ? "Method Not Allowed\n" : "",
		    allow);
	}
	if (req->too_large)
		return queue_text(conn, 413, "request body too large\n", NULL);
	if (req->no_memory)
		return queue_text(conn, 503, "out of memory for request body\n",
		    NULL);
	return run_handler(req);
}

/* --- lifecycle ------------------------------------------------------------ */

int
http_server_start(struct http_server *srv, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_ERROR_LOG | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ITC;
	unsigned pool = srv->opts.threads;

	if (srv->started || srv->stopped) {
		seterr(err, errlen, "server already started");
		return -1;
	}
	if (pool == 0)
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	else
		flags |= MHD_USE_EPOLL;
	if (srv->family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)srv->fd,
	    MHD_OPTION_CONNECTION_LIMIT, srv->opts.max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->opts.per_ip_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, srv->opts.timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, srv->opts.max_header,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, on_log, srv,
	    MHD_OPTION_THREAD_POOL_SIZE, pool > 1 ? pool : 0,
	    MHD_OPTION_END);
	if (srv->mhd == NULL) {
		seterr(err, errlen, "starting HTTP server: %s",
		    srv->mhd_err[0] ? srv->mhd_err : "libmicrohttpd failed");
		return -1;
	}
	__atomic_store_n(&srv->started, true, __ATOMIC_RELEASE);
	log_msg(LOG_DEBUG, "http", "serving on port %d", srv->port);
	return 0;
}

void
http_server_stop(struct http_server *srv)
{
	if (srv == NULL || srv->stopped)
		return;
	srv->stopped = true;
	if (srv->mhd != NULL) {
		MHD_stop_daemon(srv->mhd);	/* closes the listening socket */
		srv->mhd = NULL;
		srv->fd = -1;
	}
	if (srv->fd >= 0) {
		close(srv->fd);
		srv->fd = -1;
	}
}

void
http_server_free(struct http_server *srv)
{
	size_t i;

	if (srv == NULL)
		return;
	http_server_stop(srv);
	for (i = 0; i < srv->nroutes; i++)
		mem_free(srv->routes[i].path);
	mem_free(srv->routes);
	mem_free(srv);
}
