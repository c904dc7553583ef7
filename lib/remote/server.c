/* lib/remote/server.c - the remote-write receiver and the remote-read endpoint.
 *
 * Both handlers decode the whole request first (lib/remote/codec), so a
 * malformed one is refused before it touches the head. Writes go through
 * one appender per request and one commit; reads select each query's
 * series from the head (or head and blocks, when a store is set) and
 * stream them series by series into a ReadResponse builder. ext_mu guards the external labels (handlers take a
 * reference); gate_mu/gate_cond count the reads in progress.
 */
#include "config.h"

#include "remote/server.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "expfmt/write.h"
#include "remote/codec.h"
#include "tsdb/db.h"
#include "util/log.h"
#include "util/mem.h"

/* The receiver's figures: name, help, field (all counters). */
#define REMOTE_SERVER_FAMILIES(X) \
	X("strata_remote_write_requests_total", \
	    "Remote write requests received on /api/v1/write.", write_requests) \
	X("strata_remote_write_requests_rejected_total", \
	    "Remote write requests refused as malformed (HTTP 400).", write_rejected) \
	X("strata_remote_write_requests_failed_total", \
	    "Remote write requests the store could not take (HTTP 500).", write_failed) \
	X("strata_remote_write_samples_received_total", \
	    "Float samples received in accepted remote write requests.", samples_received) \
	X("strata_remote_write_samples_appended_total", \
	    "Remote write samples appended to the head.", samples_appended) \
	X("strata_remote_write_samples_out_of_order_total", \
	    "Remote write samples skipped as out of order, too old or out of bounds.", \
	    samples_out_of_order) \
	X("strata_remote_write_samples_duplicate_total", \
	    "Remote write samples skipped: same timestamp as a stored sample, other value.", \
	    samples_duplicate) \
	X("strata_remote_write_histograms_dropped_total", \
	    "Native histogram samples received by remote write and not stored.", \
	    histograms_dropped) \
	X("strata_remote_write_exemplars_dropped_total", \
	    "Exemplars received by remote write and not stored.", exemplars_dropped) \
	X("strata_remote_write_metadata_dropped_total", \
	    "Metadata entries received by remote write and not stored.", metadata_dropped) \
	X("strata_remote_read_requests_total", \
	    "Remote read requests received on /api/v1/read.", read_requests) \
	X("strata_remote_read_requests_rejected_total", \
	    "Remote read requests answered with HTTP 400.", read_rejected) \
	X("strata_remote_read_series_total", \
	    "Series returned by remote read.", read_series) \
	X("strata_remote_read_samples_total", \
	    "Samples returned by remote read.", read_samples)

#define FIELD(n, h, f) atomic_uint_fast64_t f;
struct remote_server {
	struct tsdb_head *head;
	struct tsdb_db *db;		/* NULL: read the head only */
	size_t max_decoded;
	uint64_t sample_limit;
	unsigned concurrency;

	pthread_mutex_t ext_mu;
	struct labels *ext;

	pthread_mutex_t gate_mu;
	pthread_cond_t gate_cond;
	unsigned reading;

	struct {
		REMOTE_SERVER_FAMILIES(FIELD)
	} st;
};
#undef FIELD

struct remote_server *
remote_server_new(struct tsdb_head *head, const struct remote_server_opts *opts)
{
	struct remote_server *rs = mem_calloc(1, sizeof(*rs));
	struct remote_server_opts o = { 0 };

	if (opts != NULL)
		o = *opts;
	rs->head = head;
	rs->max_decoded = o.max_decoded > 0 ? o.max_decoded : (size_t)256 << 20;
	rs->sample_limit = o.read_sample_limit > 0 ? o.read_sample_limit : 50000000;
	rs->concurrency = o.read_concurrency > 0 ? o.read_concurrency : 10;
	pthread_mutex_init(&rs->ext_mu, NULL);
	pthread_mutex_init(&rs->gate_mu, NULL);
	pthread_cond_init(&rs->gate_cond, NULL);
	rs->ext = labels_empty();
	return rs;
}

void
remote_server_free(struct remote_server *rs)
{
	if (rs == NULL)
		return;
	labels_free(rs->ext);
	pthread_cond_destroy(&rs->gate_cond);
	pthread_mutex_destroy(&rs->gate_mu);
	pthread_mutex_destroy(&rs->ext_mu);
	mem_free(rs);
}

void
remote_server_set_db(struct remote_server *rs, struct tsdb_db *db)
{
	rs->db = db;
}

void
remote_server_set_external_labels(struct remote_server *rs, struct labels *ext)
{
	struct labels *nl = ext != NULL ? labels_ref(ext) : labels_empty(), *old;

	pthread_mutex_lock(&rs->ext_mu);
	old = rs->ext;
	rs->ext = nl;
	pthread_mutex_unlock(&rs->ext_mu);
	labels_free(old);
}

/* --- write ----------------------------------------------------------------- */

int
remote_server_write(struct remote_server *rs, const void *body, size_t len, struct strbuf *msg)
{
	struct remote_write_req wr;
	struct tsdb_appender *a;
	uint64_t appended = 0, ooo = 0, dup = 0;
	char err[1024];
	int rc;

	atomic_fetch_add(&rs->st.write_requests, 1);
	if (remote_decode_write(body, len, rs->max_decoded, &wr, err, sizeof(err)) < 0) {
		atomic_fetch_add(&rs->st.write_rejected, 1);
		log_kv(LOG_DEBUG, "remote", "error decoding remote write request", "err", err,
		    (char *)NULL);
		strbuf_puts(msg, err);
		return 400;
	}
	atomic_fetch_add(&rs->st.samples_received, wr.nsamples);
	atomic_fetch_add(&rs->st.histograms_dropped, wr.histograms);
	atomic_fetch_add(&rs->st.exemplars_dropped, wr.exemplars);
	atomic_fetch_add(&rs->st.metadata_dropped, wr.metadata);

	a = tsdb_appender_new(rs->head);
	for (size_t i = 0; i < wr.nseries; i++) {
		const struct remote_series *s = &wr.series[i];
		uint64_t ref = 0;

		for (size_t j = 0; j < s->n; j++) {
			rc = tsdb_appender_append(a, &ref, s->ls, s->s[j].t, s->s[j].v);
			switch (rc) {
			case TSDB_OK:
				appended++;
				break;
			case TSDB_ERR_DUPLICATE:
				dup++;
				break;
			case TSDB_ERR_TOO_MANY_SERIES:
			case TSDB_ERR_EMPTY_LABELS:
			case TSDB_ERR_NOT_FOUND:
				tsdb_appender_free(a);
				remote_write_req_free(&wr);
				atomic_fetch_add(&rs->st.write_failed, 1);
				strbuf_puts(msg, tsdb_strerror(rc));
				return 500;
			default:
				/* out of order, too old, out of bounds */
				ooo++;
				break;
			}
		}
	}
	rc = tsdb_appender_commit(a);
	tsdb_appender_free(a);
	remote_write_req_free(&wr);
	atomic_fetch_add(&rs->st.samples_out_of_order, ooo);
	atomic_fetch_add(&rs->st.samples_duplicate, dup);
	if (rc != 0) {
		atomic_fetch_add(&rs->st.write_failed, 1);
		log_kv(LOG_ERROR, "remote", "error appending remote write", "err",
		    tsdb_strerror(rc), (char *)NULL);
		strbuf_puts(msg, tsdb_strerror(rc));
		return 500;
	}
	atomic_fetch_add(&rs->st.samples_appended, appended);
	return 204;
}

/* --- read ------------------------------------------------------------------- */

/* with_external returns ls with the external labels it lacks (a new set,
 * or ls with one more reference). */
static struct labels *
with_external(const struct labels *ls, const struct labels *ext, struct labels_builder *lb)
{
	bool need = false;

	for (uint32_t i = 0; i < ext->n && !need; i++)
		need = labels_get(ls, ext->v[i].name) == NULL;
	if (!need)
		return labels_ref((struct labels *)ls);
	labels_builder_reset(lb, ls);
	for (uint32_t i = 0; i < ext->n; i++)
		if (labels_get(ls, ext->v[i].name) == NULL)
			labels_builder_set(lb, ext->v[i].name, ext->v[i].value);
	return labels_builder_labels(lb);
}

/* read_query adds q's result to b. Returns 0, or -1 with err when the
 * sample limit is passed. */
static int
read_query(struct remote_server *rs, const struct remote_query *q, const struct labels *ext,
    struct remote_read_resp_builder *b, struct labels_builder *lb, char *err, size_t errlen)
{
	struct matcher **ms = mem_calloc(q->nms ? q->nms : 1, sizeof(*ms));
	struct tsdb_series_set *ss;
	struct remote_sample *v = NULL;
	size_t nms = 0, cap = 0;
	int rc = 0;

	/* An equality matcher on an external label is what the external
	 * label already says: drop it (Prometheus' filterExtLabelsFromMatchers). */
	for (size_t i = 0; i < q->nms; i++) {
		const char *ev = labels_get(ext, q->ms[i]->name);

		if (q->ms[i]->op == MATCH_EQUAL && ev != NULL && strcmp(ev, q->ms[i]->value) == 0)
			continue;
		ms[nms++] = q->ms[i];
	}
	if (nms == 0 || q->mint > q->maxt)
		goto done;
	ss = rs->db != NULL ? tsdb_db_select(rs->db, ms, nms, q->mint, q->maxt) :
	    tsdb_head_select(rs->head, ms, nms, q->mint, q->maxt);
	while (rc == 0 && tsdb_series_set_next(ss)) {
		struct tsdb_iter *it = tsdb_series_set_iter(ss);
		struct labels *ls;
		size_t n = 0;
		int64_t t;
		double val;

		while (tsdb_iter_next(it, &t, &val)) {
			if (b->nsamples + n >= rs->sample_limit) {
				snprintf(err, errlen, "exceeded sample limit (%" PRIu64 ")",
				    rs->sample_limit);
				rc = -1;
				break;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				v = mem_realloc(v, cap * sizeof(*v));
			}
			v[n].t = t;
			v[n].v = val;
			n++;
		}
		if (rc < 0)
			break;
		ls = with_external(tsdb_series_set_labels(ss), ext, lb);
		remote_resp_add_series(b, ls, v, n);
		labels_free(ls);
	}
	tsdb_series_set_free(ss);
done:
	remote_resp_end_result(b);
	mem_free(v);
	mem_free(ms);
	return rc;
}

static int
server_read(struct remote_server *rs, const void *body, size_t len, bool stored,
    struct strbuf *out)
{
	struct remote_read_req rr;
	struct remote_read_resp_builder b = REMOTE_READ_RESP_BUILDER_INIT;
	struct labels_builder *lb;
	struct labels *ext;
	char err[1024];
	int status = 200;

	atomic_fetch_add(&rs->st.read_requests, 1);
	if (remote_decode_read_request(body, len, rs->max_decoded, &rr, err, sizeof(err)) < 0) {
		atomic_fetch_add(&rs->st.read_rejected, 1);
		strbuf_puts(out, err);
		return 400;
	}
	if (!rr.samples_ok) {
		atomic_fetch_add(&rs->st.read_rejected, 1);
		remote_read_req_free(&rr);
		strbuf_puts(out, "server does not support any of the requested response types; "
		    "only SAMPLES is served");
		return 400;
	}

	pthread_mutex_lock(&rs->gate_mu);
	while (rs->reading >= rs->concurrency)
		pthread_cond_wait(&rs->gate_cond, &rs->gate_mu);
	rs->reading++;
	pthread_mutex_unlock(&rs->gate_mu);

	if (stored) {
		ext = labels_empty();
	} else {
		pthread_mutex_lock(&rs->ext_mu);
		ext = labels_ref(rs->ext);
		pthread_mutex_unlock(&rs->ext_mu);
	}
	lb = labels_builder_new();
	for (size_t i = 0; i < rr.n; i++) {
		if (read_query(rs, &rr.q[i], ext, &b, lb, err, sizeof(err)) < 0) {
			status = 400;
			break;
		}
	}
	labels_builder_free(lb);
	labels_free(ext);

	pthread_mutex_lock(&rs->gate_mu);
	rs->reading--;
	pthread_cond_signal(&rs->gate_cond);
	pthread_mutex_unlock(&rs->gate_mu);

	if (status == 200) {
		atomic_fetch_add(&rs->st.read_series, b.nseries);
		atomic_fetch_add(&rs->st.read_samples, b.nsamples);
		remote_resp_finish(&b, out);
	} else {
		atomic_fetch_add(&rs->st.read_rejected, 1);
		remote_resp_builder_free(&b);
		strbuf_puts(out, err);
	}
	remote_read_req_free(&rr);
	return status;
}

int
remote_server_read(struct remote_server *rs, const void *body, size_t len, struct strbuf *out)
{
	return server_read(rs, body, len, false, out);
}

int
remote_server_read_stored(struct remote_server *rs, const void *body, size_t len,
    struct strbuf *out)
{
	return server_read(rs, body, len, true, out);
}

/* --- HTTP ---------------------------------------------------------------------- */

static int
handle_write(struct http_request *req, void *arg)
{
	struct remote_server *rs = arg;
	struct strbuf msg = STRBUF_INIT;
	const void *body;
	size_t len;
	int status;

	body = http_request_body(req, &len);
	status = remote_server_write(rs, body, len, &msg);
	if (status == 204) {
		strbuf_free(&msg);
		return http_respond_data(req, 204, NULL, "", 0);
	}
	status = http_respond_text(req, status, "%s\n", strbuf_cstr(&msg));
	strbuf_free(&msg);
	return status;
}

static int
handle_read(struct http_request *req, void *arg)
{
	struct remote_server *rs = arg;
	struct strbuf out = STRBUF_INIT;
	const char *stored = http_request_header(req, REMOTE_READ_STORED_HEADER);
	const void *body;
	size_t len;
	int status;

	body = http_request_body(req, &len);
	status = server_read(rs, body, len, stored != NULL && strcmp(stored, "true") == 0, &out);
	if (status != 200) {
		status = http_respond_text(req, status, "%s\n", strbuf_cstr(&out));
		strbuf_free(&out);
		return status;
	}
	http_response_no_compress(req);
	http_response_header(req, "Content-Encoding", "snappy");
	return http_respond(req, 200, REMOTE_CONTENT_TYPE, &out);
}

int
remote_server_route(struct remote_server *rs, struct http_server *srv, bool write, bool read)
{
	if (write && http_server_route(srv, HTTP_POST, "/api/v1/write", 0, handle_write, rs) < 0)
		return -1;
	if (read && http_server_route(srv, HTTP_POST, "/api/v1/read", 0, handle_read, rs) < 0)
		return -1;
	return 0;
}

/* --- figures -------------------------------------------------------------------- */

void
remote_server_stats(struct remote_server *rs, struct remote_server_stats *st)
{
#define LOAD(n, h, f) st->f = atomic_load(&rs->st.f);
	REMOTE_SERVER_FAMILIES(LOAD)
#undef LOAD
}

void
remote_server_collect(void *arg, struct strbuf *out)
{
	struct remote_server_stats st;

	remote_server_stats(arg, &st);
#define WRITE(n, h, f) \
	expfmt_write_help(out, n, strlen(n), h, strlen(h)); \
	strbuf_printf(out, "# TYPE %s counter\n%s ", n, n); \
	expfmt_write_float(out, (double)st.f); \
	strbuf_putc(out, '\n');
	REMOTE_SERVER_FAMILIES(WRITE)
#undef WRITE
}
