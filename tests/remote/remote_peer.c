/* tests/remote/remote_peer.c - a small program around lib/remote for the 15xx
 * end-to-end scenarios, where real Prometheus and VictoriaMetrics are the
 * other side.
 *
 *   remote-peer serve --listen ADDR [--load FILE] [--external-labels k=v,...]
 *       an in-memory head with POST /api/v1/write and POST /api/v1/read
 *       (lib/remote/server) and GET /dump, which prints every sample held;
 *       --load appends FILE first. Prints "listening on PORT", runs until
 *       SIGTERM or SIGINT.
 *   remote-peer send --config FILE --input FILE [--flush-timeout SECONDS]
 *       a remote_writer configured from FILE's remote_write section
 *       (external labels and write_relabel_configs included) is fed every
 *       sample of the input in order and flushed; prints the queue figures
 *       and exits 0 when every queued sample was sent.
 *   remote-peer read --url URL --match SELECTOR --start MS --end MS [--strip k=v,...]
 *       one remote read; prints the series in the dump format.
 *
 * Sample lines, in and out: TIMESTAMP_MS TAB VALUE TAB NAME TAB VALUE ...,
 * where an output VALUE is the 16 hex digits of the float's bits and an
 * input VALUE is either that with a 0x prefix or a number strtod reads
 * ("NaN", "+Inf", "1.5"). Label pairs come sorted by name.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "http/server.h"
#include "labels/labels.h"
#include "labels/selector.h"
#include "remote/codec.h"
#include "remote/read.h"
#include "remote/server.h"
#include "remote/write.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/strbuf.h"

static const char *
opt(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 2; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

static void
die(const char *fmt, const char *arg)
{
	fprintf(stderr, "remote-peer: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(2);
}

/* parse_kv parses "k=v,k=v" into a label set (caller frees). */
static struct labels *
parse_kv(const char *s)
{
	struct labels_builder *lb = labels_builder_new();
	struct labels *ls;
	char *copy = mem_strdup(s != NULL ? s : ""), *p = copy, *tok;

	while ((tok = strsep(&p, ",")) != NULL) {
		char *eq = strchr(tok, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		labels_builder_set(lb, tok, eq + 1);
	}
	ls = labels_builder_labels(lb);
	labels_builder_free(lb);
	mem_free(copy);
	return ls;
}

/* parse_line reads one sample line; returns the labels (caller frees) or
 * NULL for a blank or malformed line. */
static struct labels *
parse_line(char *line, int64_t *t, double *v)
{
	struct labels_builder *lb;
	struct labels *ls;
	char *p = line, *f[64];
	size_t n = 0;

	line[strcspn(line, "\r\n")] = '\0';
	while (n < 64 && (f[n] = strsep(&p, "\t")) != NULL)
		n++;
	if (n < 4 || n % 2 != 0)
		return NULL;
	*t = strtoll(f[0], NULL, 10);
	if (strncmp(f[1], "0x", 2) == 0) {
		uint64_t b = strtoull(f[1] + 2, NULL, 16);

		memcpy(v, &b, sizeof(*v));
	} else {
		*v = strtod(f[1], NULL);
	}
	lb = labels_builder_new();
	for (size_t i = 2; i + 1 < n; i += 2)
		labels_builder_set(lb, f[i], f[i + 1]);
	ls = labels_builder_labels(lb);
	labels_builder_free(lb);
	return ls;
}

static void
dump_sample(struct strbuf *out, const struct labels *ls, int64_t t, double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof(b));
	strbuf_printf(out, "%" PRId64 "\t%016" PRIx64, t, b);
	for (uint32_t i = 0; i < ls->n; i++)
		strbuf_printf(out, "\t%s\t%s", ls->v[i].name, ls->v[i].value);
	strbuf_putc(out, '\n');
}

/* --- serve ---------------------------------------------------------------- */

static int
h_dump(struct http_request *req, void *arg)
{
	struct tsdb_head *h = arg;
	struct strbuf out = STRBUF_INIT;
	char err[256];
	struct matcher *m;
	struct tsdb_series_set *ss;
	struct tsdb_head_stats hs;

	tsdb_head_stats(h, &hs);
	if (hs.series == 0)	/* nothing to select (and no empty postings to walk) */
		return http_respond(req, 200, "text/plain; charset=utf-8", &out);
	m = matcher_new(MATCH_REGEX, "__name__", ".+", err, sizeof(err));
	ss = tsdb_head_select(h, &m, 1, INT64_MIN, INT64_MAX);
	while (tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		int64_t t;
		double v;

		while (tsdb_iter_next(it, &t, &v))
			dump_sample(&out, tsdb_series_set_labels(ss), t, v);
	}
	tsdb_series_set_free(ss);
	matcher_free(m);
	return http_respond(req, 200, "text/plain; charset=utf-8", &out);
}

static int
h_ready(struct http_request *req, void *arg)
{
	(void)arg;
	return http_respond_text(req, 200, "ready\n");
}

static int
serve(int argc, char **argv)
{
	const char *listen = opt(argc, argv, "--listen", "127.0.0.1:0");
	const char *load = opt(argc, argv, "--load", NULL);
	struct tsdb_head *h = tsdb_head_new(NULL, NULL, 0);
	struct remote_server *rs = remote_server_new(h, NULL);
	struct labels *ext = parse_kv(opt(argc, argv, "--external-labels", ""));
	struct http_server *srv;
	char err[1024];
	sigset_t set;
	int sig;

	remote_server_set_external_labels(rs, ext);
	labels_free(ext);
	if (load != NULL) {
		FILE *f = fopen(load, "r");
		char line[8192];
		size_t n = 0;

		if (f == NULL)
			die("cannot open %s", load);
		while (fgets(line, sizeof(line), f) != NULL) {
			int64_t t;
			double v;
			struct labels *ls = parse_line(line, &t, &v);

			if (ls == NULL)
				continue;
			if (tsdb_head_append(h, NULL, ls, t, v) == 0)
				n++;
			labels_free(ls);
		}
		fclose(f);
		fprintf(stderr, "remote-peer: loaded %zu samples\n", n);
	}
	srv = http_server_new(listen, NULL, err, sizeof(err));
	if (srv == NULL)
		die("%s", err);
	if (remote_server_route(rs, srv, true, true) < 0 ||
	    http_server_route(srv, HTTP_GET, "/dump", 0, h_dump, h) < 0 ||
	    http_server_route(srv, HTTP_GET, "/-/ready", 0, h_ready, NULL) < 0)
		die("%s", "cannot register routes");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (http_server_start(srv, err, sizeof(err)) < 0)
		die("%s", err);
	printf("listening on %d\n", http_server_port(srv));
	fflush(stdout);
	sigwait(&set, &sig);
	http_server_free(srv);
	{
		struct remote_server_stats st;

		remote_server_stats(rs, &st);
		fprintf(stderr, "remote-peer: write requests %" PRIu64 " (rejected %" PRIu64
		    "), samples appended %" PRIu64 ", out of order %" PRIu64
		    "; read requests %" PRIu64 ", samples %" PRIu64 "\n",
		    st.write_requests, st.write_rejected, st.samples_appended,
		    st.samples_out_of_order, st.read_requests, st.read_samples);
	}
	remote_server_free(rs);
	tsdb_head_free(h);
	return 0;
}

/* --- send ------------------------------------------------------------------ */

static int
send_cmd(int argc, char **argv)
{
	const char *cfgfile = opt(argc, argv, "--config", NULL);
	const char *input = opt(argc, argv, "--input", NULL);
	int64_t timeout_s = strtoll(opt(argc, argv, "--flush-timeout", "30"), NULL, 10);
	struct remote_write_opts o = { .flush_deadline_ms = 2000, .user_agent = "strata-remote-peer" };
	struct remote_writer *w;
	struct remote_writer_stats st;
	struct cfg *cfg;
	char err[1024], line[8192];
	FILE *f;
	size_t n = 0;
	bool flushed, ok = true;

	if (cfgfile == NULL || input == NULL)
		die("%s", "send needs --config and --input");
	cfg = cfg_load_file(cfgfile, err, sizeof(err));
	if (cfg == NULL)
		die("%s", err);
	w = remote_writer_new(&o);
	if (remote_writer_apply(w, cfg, err, sizeof(err)) < 0)
		die("%s", err);
	cfg_free(cfg);
	if ((f = fopen(input, "r")) == NULL)
		die("cannot open %s", input);
	while (fgets(line, sizeof(line), f) != NULL) {
		int64_t t;
		double v;
		struct labels *ls = parse_line(line, &t, &v);

		if (ls == NULL)
			continue;
		remote_write_append(w, ls, t, v);
		labels_free(ls);
		n++;
	}
	fclose(f);
	flushed = remote_writer_flush(w, timeout_s * 1000);
	remote_writer_stats(w, &st);
	printf("appended %zu flushed %s\n", n, flushed ? "yes" : "no");
	for (size_t i = 0; i < st.n; i++) {
		const struct remote_queue_stats *q = &st.q[i];

		printf("queue %s url %s in %" PRIu64 " sent %" PRIu64 " failed %" PRIu64
		    " retried %" PRIu64 " dropped %" PRIu64 " batches %" PRIu64 " bytes %" PRIu64
		    " shards %" PRId64 "\n", q->remote_name, q->url, q->samples_in,
		    q->samples_sent, q->samples_failed, q->samples_retried, q->samples_dropped,
		    q->batches_sent, q->bytes_sent, q->shards);
		if (q->samples_sent != q->samples_in)
			ok = false;
	}
	remote_writer_stats_free(&st);
	remote_writer_free(w);
	return flushed && ok ? 0 : 1;
}

/* --- read ------------------------------------------------------------------- */

static int
read_cmd(int argc, char **argv)
{
	const char *url = opt(argc, argv, "--url", NULL);
	const char *match = opt(argc, argv, "--match", NULL);
	int64_t start = strtoll(opt(argc, argv, "--start", "0"), NULL, 10);
	int64_t end = strtoll(opt(argc, argv, "--end", "9223372036854775807"), NULL, 10);
	struct labels *strip = parse_kv(opt(argc, argv, "--strip", ""));
	struct remote_reader *r;
	struct remote_series *s;
	struct selector sel;
	struct strbuf out = STRBUF_INIT;
	size_t n;
	char err[1024];

	if (url == NULL || match == NULL)
		die("%s", "read needs --url and --match");
	if (selector_parse(match, strlen(match), &sel, err, sizeof(err)) < 0)
		die("%s", err);
	r = remote_reader_new_url(url, 30000, NULL, err, sizeof(err));
	if (r == NULL)
		die("%s", err);
	if (remote_read(r, sel.ms, sel.n, start, end, strip, &s, &n, err, sizeof(err)) < 0)
		die("%s", err);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < s[i].n; j++)
			dump_sample(&out, s[i].ls, s[i].s[j].t, s[i].s[j].v);
	fwrite(strbuf_cstr(&out), 1, out.len, stdout);
	strbuf_free(&out);
	remote_series_free(s, n);
	remote_reader_free(r);
	selector_free(&sel);
	labels_free(strip);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "send") == 0)
		return send_cmd(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "read") == 0)
		return read_cmd(argc, argv);
	fprintf(stderr, "usage: remote-peer serve|send|read [options] (see tests/remote/remote_peer.c)\n");
	return 2;
}
