/* tests/bench/synth_targets.c - many synthetic scrape targets in one process.
 *
 * Serves T targets of S series each, target i on 127.0.0.1:(first-port + i),
 * for the demo, the end-to-end tests and the benchmarks: a target server that
 * is not the bottleneck. The main thread accepts on every listening socket
 * (epoll) and hands connections to one libmicrohttpd daemon
 * (MHD_USE_NO_LISTEN_SOCKET + MHD_add_connection); the handler finds the
 * target from the connection's local port. The series are synth_series.h's,
 * laid out once; their values move with the clock.
 *
 * Misbehaving modes for the bad-input tests: --mode=garbage (an invalid
 * exposition), huge (a body of --huge-mb MiB), slow (trickles one line per
 * 100 ms), hang (sends nothing for 10 minutes).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "util/mem.h"
#include "util/strbuf.h"
#include "util/time.h"
#include "synth_series.h"

enum synth_mode { MODE_NORMAL, MODE_GARBAGE, MODE_HUGE, MODE_SLOW, MODE_HANG };

struct synth {
	int first_port;
	int ntargets;
	int nseries;
	enum synth_mode mode;
	int huge_mb;
	struct synth_series *series;	/* nseries entries shared by every target */
	int64_t start_ms;
};

static volatile sig_atomic_t synth_stop;

static void
synth_on_signal(int sig)
{
	(void)sig;
	synth_stop = 1;
}


struct synth_trickle {
	struct strbuf body;
	size_t off;
	int hang;
};

static ssize_t
synth_trickle_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct synth_trickle *tr = cls;
	const char *nl;
	size_t n;

	(void)pos;
	if (tr->hang) {
		int i;

		for (i = 0; i < 6000 && !synth_stop; i++)
			usleep(100000);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	if (tr->off >= tr->body.len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	usleep(100000);
	nl = memchr(tr->body.buf + tr->off, '\n', tr->body.len - tr->off);
	n = nl ? (size_t)(nl - (tr->body.buf + tr->off)) + 1 : tr->body.len - tr->off;
	if (n > max)
		n = max;
	memcpy(buf, tr->body.buf + tr->off, n);
	tr->off += n;
	return (ssize_t)n;
}

static void
synth_trickle_free(void *cls)
{
	struct synth_trickle *tr = cls;

	strbuf_free(&tr->body);
	mem_free(tr);
}

static int
synth_target_of(const struct synth *s, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (ci == NULL || getsockname(ci->connect_fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	return ntohs(sa.sin_port) - s->first_port;
}

static enum MHD_Result
synth_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct synth *s = cls;
	struct MHD_Response *resp;
	struct strbuf body = STRBUF_INIT;
	enum MHD_Result ret;
	int t;

	(void)url; (void)version; (void)upload_data; (void)upload_size;
	if (*con_cls == NULL) {	/* two-call idiom keeps the connection alive */
		*con_cls = (void *)1;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0)
		return MHD_NO;
	t = synth_target_of(s, conn);
	if (t < 0 || t >= s->ntargets)
		t = 0;
	switch (s->mode) {
	case MODE_NORMAL:
		synth_series_body(s->series, s->nseries, t, s->start_ms, time_now_ms(), &body);
		break;
	case MODE_GARBAGE:
		strbuf_puts(&body, "# TYPE ok gauge\nok 1\nthis is { not an exposition\n");
		break;
	case MODE_HUGE: {
		size_t want = (size_t)s->huge_mb << 20;
		long i = 0;

		while (body.len < want)
			strbuf_printf(&body, "synth_huge_series{i=\"%ld\"} 1\n", i++);
		break;
	}
	case MODE_SLOW:
	case MODE_HANG: {
		struct synth_trickle *tr = mem_calloc(1, sizeof(*tr));

		synth_series_body(s->series, s->nseries, t, s->start_ms, time_now_ms(), &tr->body);
		tr->hang = s->mode == MODE_HANG;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
		    synth_trickle_read, tr, synth_trickle_free);
		MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	}
	resp = MHD_create_response_from_buffer(body.len, body.buf ? body.buf : (char *)"",
	    MHD_RESPMEM_MUST_COPY);
	strbuf_free(&body);
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int
synth_listen(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
synth_usage(void)
{
	fprintf(stderr, "usage: synth-targets --first-port=P [--targets=T] [--series=S]\n"
	    "         [--mode=normal|garbage|huge|slow|hang] [--huge-mb=N]\n"
	    "Serves T targets of about S series each on 127.0.0.1:P..P+T-1 until SIGINT/SIGTERM.\n");
}

int
main(int argc, char **argv)
{
	struct synth s = { 0, 1, 100, MODE_NORMAL, 64, NULL, 0 };
	struct MHD_Daemon *d;
	struct epoll_event ev, evs[64];
	int i, ep, *fds;
	unsigned flags;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "--first-port=", 13) == 0)
			s.first_port = atoi(a + 13);
		else if (strncmp(a, "--targets=", 10) == 0)
			s.ntargets = atoi(a + 10);
		else if (strncmp(a, "--series=", 9) == 0)
			s.nseries = atoi(a + 9);
		else if (strncmp(a, "--huge-mb=", 10) == 0)
			s.huge_mb = atoi(a + 10);
		else if (strcmp(a, "--mode=normal") == 0)
			s.mode = MODE_NORMAL;
		else if (strcmp(a, "--mode=garbage") == 0)
			s.mode = MODE_GARBAGE;
		else if (strcmp(a, "--mode=huge") == 0)
			s.mode = MODE_HUGE;
		else if (strcmp(a, "--mode=slow") == 0)
			s.mode = MODE_SLOW;
		else if (strcmp(a, "--mode=hang") == 0)
			s.mode = MODE_HANG;
		else {
			synth_usage();
			return 2;
		}
	}
	if (s.first_port <= 0 || s.ntargets < 1 || s.nseries < 1 ||
	    s.first_port + s.ntargets > 65536 || s.huge_mb < 1) {
		synth_usage();
		return 2;
	}
	s.start_ms = time_now_ms() - 3600 * 1000;
	s.series = synth_series_layout(s.nseries);
	signal(SIGINT, synth_on_signal);
	signal(SIGTERM, synth_on_signal);
	signal(SIGPIPE, SIG_IGN);

	flags = MHD_USE_NO_LISTEN_SOCKET | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
	if (s.mode == MODE_SLOW || s.mode == MODE_HANG)
		flags |= MHD_USE_THREAD_PER_CONNECTION;
	else
		flags |= MHD_USE_EPOLL;
	d = MHD_start_daemon(flags, 0, NULL, NULL, synth_handle, &s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s.ntargets * 4 + 64),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	    (s.mode == MODE_SLOW || s.mode == MODE_HANG) ? MHD_OPTION_END : MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)2, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "synth-targets: cannot start the HTTP daemon\n");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	fds = mem_calloc((size_t)s.ntargets, sizeof(*fds));
	for (i = 0; i < s.ntargets; i++) {
		fds[i] = synth_listen(s.first_port + i);
		if (fds[i] < 0) {
			fprintf(stderr, "synth-targets: cannot listen on 127.0.0.1:%d: %s\n",
			    s.first_port + i, strerror(errno));
			return 1;
		}
		ev.events = EPOLLIN;
		ev.data.fd = fds[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	fprintf(stderr, "synth-targets: %d targets x %d series on 127.0.0.1:%d-%d\n",
	    s.ntargets, s.nseries, s.first_port, s.first_port + s.ntargets - 1);
	while (!synth_stop) {
		int n = epoll_wait(ep, evs, 64, 200), k;

		for (k = 0; k < n; k++) {
			struct sockaddr_in peer;
			socklen_t plen = sizeof(peer);
			int c;

			while ((c = accept4(evs[k].data.fd, (struct sockaddr *)&peer, &plen,
			    SOCK_CLOEXEC)) >= 0) {
				if (MHD_add_connection(d, c, (struct sockaddr *)&peer, plen) != MHD_YES)
					close(c);
				plen = sizeof(peer);
			}
		}
	}
	MHD_stop_daemon(d);
	return 0;
}
