/* lib/api/tsdb_status.c - GET /api/v1/status/tsdb (see tsdb_status.h).
 *
 * The JSON keys and their order are Prometheus' (web/api/v1 tsdbStatus and
 * HeadStats); the figures come from tsdb_db_status() with Prometheus'
 * limit of 10 entries per list.
 */
#include "config.h"

#include "api/api.h"
#include "api/tsdb_status.h"

#define STATUS_LIMIT 10

static void
stat_list(struct json_writer *w, const char *key, const struct postings_stat *v, size_t n)
{
	size_t i;

	json_key(w, key);
	json_array_begin(w);
	for (i = 0; i < n; i++) {
		json_object_begin(w);
		json_key(w, "name");
		json_string(w, v[i].name);
		json_key(w, "value");
		json_uint(w, v[i].count);
		json_object_end(w);
	}
	json_array_end(w);
}

static int
tsdb_status_handler(struct http_request *req, void *arg)
{
	struct tsdb_status st;
	struct api_response r;

	tsdb_db_status(arg, STATUS_LIMIT, &st);
	api_success_begin(&r);
	json_object_begin(&r.w);
	json_key(&r.w, "headStats");
	json_object_begin(&r.w);
	json_key(&r.w, "numSeries");
	json_uint(&r.w, st.num_series);
	json_key(&r.w, "numLabelPairs");
	json_uint(&r.w, st.num_label_pairs);
	json_key(&r.w, "chunkCount");
	json_uint(&r.w, st.chunk_count);
	json_key(&r.w, "minTime");
	json_int(&r.w, st.min_time);
	json_key(&r.w, "maxTime");
	json_int(&r.w, st.max_time);
	json_object_end(&r.w);
	stat_list(&r.w, "seriesCountByMetricName", st.card.metrics, st.card.nmetrics);
	stat_list(&r.w, "labelValueCountByLabelName", st.card.labels, st.card.nlabels);
	stat_list(&r.w, "memoryInBytesByLabelName", st.card.memory, st.card.nmemory);
	stat_list(&r.w, "seriesCountByLabelValuePair", st.card.pairs, st.card.npairs);
	json_object_end(&r.w);
	tsdb_status_free(&st);
	return api_success_end(&r, req);
}

int
api_tsdb_status_route(struct tsdb_db *db, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/api/v1/status/tsdb", HTTP_ROUTE_GZIP,
	    tsdb_status_handler, db);
}
