/* lib/api/metrics.c - the /metrics registry, writer helpers and process metrics. */
#include "config.h"

#include "api/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "expfmt/write.h"
#include "scrape/scrape.h"
#include "tsdb/db.h"
#include "tsdb/head.h"
#include "util/mem.h"
#include "util/time.h"

struct collector {
	metrics_collect_fn fn;
	void *arg;
};

struct api_metrics {
	pthread_mutex_t mu;		/* one scrape at a time */
	struct collector *c;		/* owned array */
	size_t n;
	double start_s;			/* process start, seconds since the epoch */
};

struct api_metrics *
api_metrics_new(void)
{
	struct api_metrics *m = mem_calloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	m->start_s = (double)time_now_ms() / 1000.0;
	return m;
}

void
api_metrics_free(struct api_metrics *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	mem_free(m->c);
	mem_free(m);
}

void
api_metrics_add(struct api_metrics *m, metrics_collect_fn fn, void *arg)
{
	m->c = mem_realloc(m->c, (m->n + 1) * sizeof(*m->c));
	m->c[m->n].fn = fn;
	m->c[m->n].arg = arg;
	m->n++;
}

void
metrics_family(struct strbuf *out, const char *name, const char *type, const char *help)
{
	expfmt_write_help(out, name, strlen(name), help, strlen(help));
	strbuf_printf(out, "# TYPE %s %s\n", name, type);
}

void
metrics_sample(struct strbuf *out, const char *name, double v, ...)
{
	const char *k, *val;
	bool first = true;
	va_list ap;

	strbuf_puts(out, name);
	va_start(ap, v);
	while ((k = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		strbuf_puts(out, first ? "{" : ",");
		strbuf_puts(out, k);
		strbuf_puts(out, "=\"");
		expfmt_write_label_value(out, val, strlen(val));
		strbuf_putc(out, '"');
		first = false;
	}
	va_end(ap);
	if (!first)
		strbuf_putc(out, '}');
	strbuf_putc(out, ' ');
	expfmt_write_float(out, v);
	strbuf_putc(out, '\n');
}

/* process_metrics writes what client_golang's process collector writes. */
static void
process_metrics(struct api_metrics *m, struct strbuf *out)
{
	struct rusage ru;
	struct rlimit rl;
	long page = sysconf(_SC_PAGESIZE);
	unsigned long vsize = 0;
	long rss = 0;
	FILE *fp;
	DIR *dir;
	size_t fds = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		metrics_family(out, "process_cpu_seconds_total", "counter",
		    "Total user and system CPU time spent in seconds.");
		metrics_sample(out, "process_cpu_seconds_total",
		    (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6, (char *)NULL);
	}
	if ((dir = opendir("/proc/self/fd")) != NULL) {
		struct dirent *de;

		while ((de = readdir(dir)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		closedir(dir);
		metrics_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
		metrics_sample(out, "process_open_fds", (double)(fds > 0 ? fds - 1 : 0), (char *)NULL);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		metrics_family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		metrics_sample(out, "process_max_fds", (double)rl.rlim_cur, (char *)NULL);
	}
	if ((fp = fopen("/proc/self/statm", "r")) != NULL) {
		unsigned long pages_v = 0, pages_r = 0;

		if (fscanf(fp, "%lu %lu", &pages_v, &pages_r) == 2) {
			vsize = pages_v * (unsigned long)page;
			rss = (long)pages_r * page;
		}
		fclose(fp);
		metrics_family(out, "process_virtual_memory_bytes", "gauge",
		    "Virtual memory size in bytes.");
		metrics_sample(out, "process_virtual_memory_bytes", (double)vsize, (char *)NULL);
		metrics_family(out, "process_resident_memory_bytes", "gauge",
		    "Resident memory size in bytes.");
		metrics_sample(out, "process_resident_memory_bytes", (double)rss, (char *)NULL);
	}
	metrics_family(out, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	metrics_sample(out, "process_start_time_seconds", m->start_s, (char *)NULL);
}

void
api_metrics_write(struct api_metrics *m, struct strbuf *out)
{
	size_t i;

	pthread_mutex_lock(&m->mu);
	process_metrics(m, out);
	for (i = 0; i < m->n; i++)
		m->c[i].fn(m->c[i].arg, out);
	pthread_mutex_unlock(&m->mu);
}

static int
metrics_handler(struct http_request *req, void *arg)
{
	struct strbuf out = STRBUF_INIT;
	int rc;

	api_metrics_write(arg, &out);
	rc = http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", &out);
	strbuf_free(&out);
	return rc;
}

int
api_metrics_route(struct api_metrics *m, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/metrics", HTTP_ROUTE_GZIP,
	    metrics_handler, m);
}

/* The head's families: stats field, name, type, help (Prometheus 2.42's). */
#define HEAD_METRICS(X) \
	X(series, "prometheus_tsdb_head_series", "gauge", \
	    "Total number of series in the head block.") \
	X(series_created, "prometheus_tsdb_head_series_created_total", "counter", \
	    "Total number of series created in the head") \
	X(series_removed, "prometheus_tsdb_head_series_removed_total", "counter", \
	    "Total number of series removed in the head") \
	X(chunks, "prometheus_tsdb_head_chunks", "gauge", \
	    "Total number of chunks in the head block.") \
	X(chunks_created, "prometheus_tsdb_head_chunks_created_total", "counter", \
	    "Total number of chunks created in the head") \
	X(chunks_removed, "prometheus_tsdb_head_chunks_removed_total", "counter", \
	    "Total number of chunks removed in the head") \
	X(out_of_order, "prometheus_tsdb_out_of_order_samples_total", "counter", \
	    "Total number of out of order samples ingestion failed attempts due to out of order being disabled.") \
	X(duplicate_ts, "strata_tsdb_duplicate_timestamp_samples_total", "counter", \
	    "Total number of samples refused for a duplicate timestamp with another value.") \
	X(duplicates, "strata_tsdb_duplicate_samples_total", "counter", \
	    "Total number of identical samples received again and dropped.")

void
api_metrics_head(void *arg, struct strbuf *out)
{
	struct tsdb_head_stats st;

	tsdb_head_stats(arg, &st);
#define X(field, name, type, help) \
	metrics_family(out, name, type, help); \
	metrics_sample(out, name, (double)st.field, (char *)NULL);
	HEAD_METRICS(X)
#undef X
	metrics_family(out, "prometheus_tsdb_head_samples_appended_total", "counter",
	    "Total number of appended samples.");
	metrics_sample(out, "prometheus_tsdb_head_samples_appended_total",
	    (double)st.samples_appended, "type", "float", (char *)NULL);
	metrics_family(out, "prometheus_tsdb_head_min_time", "gauge",
	    "Minimum time bound of the head block. The unit is decided by the library consumer.");
	metrics_sample(out, "prometheus_tsdb_head_min_time",
	    st.series > 0 ? (double)st.mint : 0, (char *)NULL);
	metrics_family(out, "prometheus_tsdb_head_max_time", "gauge",
	    "Maximum timestamp of the head block. The unit is decided by the library consumer.");
	metrics_sample(out, "prometheus_tsdb_head_max_time",
	    st.series > 0 ? (double)st.maxt : 0, (char *)NULL);
}

/* The scrape manager's counters: stats field, name, help (all counters). */
#define SCRAPE_COUNTERS(X) \
	X(scrapes, "strata_scrapes_total", \
	    "Total number of scrapes done.") \
	X(scrapes_failed, "strata_scrapes_failed_total", \
	    "Total number of scrapes that failed (up == 0).") \
	X(ticks_skipped, "strata_scrape_ticks_skipped_total", \
	    "Total number of scrape intervals skipped because the previous scrape of the target was still running.") \
	X(exceeded_sample_limit, "prometheus_target_scrapes_exceeded_sample_limit_total", \
	    "Total number of scrapes that hit the sample limit and were rejected.") \
	X(exceeded_body_size_limit, "prometheus_target_scrapes_exceeded_body_size_limit_total", \
	    "Total number of scrapes that hit the body size limit") \
	X(exceeded_label_limits, "prometheus_target_scrape_pool_exceeded_label_limits_total", \
	    "Total number of times scrape pools hit the label limits, during sync or config reload.") \
	X(exceeded_target_limit, "prometheus_target_scrape_pool_exceeded_target_limit_total", \
	    "Total number of times scrape pools hit the target limit, during sync or config reload.") \
	X(sample_out_of_order, "prometheus_target_scrapes_sample_out_of_order_total", \
	    "Total number of samples rejected due to not being out of the expected order.") \
	X(sample_duplicate, "prometheus_target_scrapes_sample_duplicate_timestamp_total", \
	    "Total number of samples rejected due to duplicate timestamps but different values.") \
	X(sample_out_of_bounds, "prometheus_target_scrapes_sample_out_of_bounds_total", \
	    "Total number of samples rejected due to timestamp falling outside of the time bounds.") \
	X(cache_flush_forced, "prometheus_target_scrapes_cache_flush_forced_total", \
	    "How many times a scrape cache was flushed due to getting big while scrapes are failing.") \
	X(sd_file_read_errors, "prometheus_sd_file_read_errors_total", \
	    "The number of File-SD read errors.") \
	X(reloads, "prometheus_target_scrape_pool_reloads_total", \
	    "Total number of scrape pool reloads.") \
	X(reloads_failed, "prometheus_target_scrape_pool_reloads_failed_total", \
	    "Total number of failed scrape pool reloads.") \
	X(pulls, "strata_scrape_pulls_total", \
	    "Total number of successful pulls from strata servers (every sample since the previous pull).") \
	X(pull_catchups, "strata_scrape_pull_catchups_total", \
	    "Total number of pulls started at once to catch up after a cut.") \
	X(pull_samples, "strata_scrape_pull_samples_total", \
	    "Total number of samples appended from pull bodies.") \
	X(cursor_write_errors, "strata_scrape_pull_cursor_write_errors_total", \
	    "Total number of failed writes of the pull cursor file.") \
	X(samples_hook_dropped, "strata_scrape_samples_hook_dropped_total", \
	    "Total number of scraped samples the sample hook (deduplication) dropped.")

void
api_metrics_scrape(void *arg, struct strbuf *out)
{
	static const char *const quantiles[5] = { "0.01", "0.05", "0.5", "0.9", "0.99" };
	struct scrape_stats st;
	char buf[32];
	size_t i, q;

	scrape_manager_stats(arg, &st);
#define X(field, name, help) \
	metrics_family(out, name, "counter", help); \
	metrics_sample(out, name, (double)st.field, (char *)NULL);
	SCRAPE_COUNTERS(X)
#undef X
	metrics_family(out, "prometheus_target_scrape_pool_targets", "gauge",
	    "Current number of targets in this scrape pool.");
	for (i = 0; i < st.n_pools; i++)
		metrics_sample(out, "prometheus_target_scrape_pool_targets",
		    (double)st.pools[i].targets, "scrape_job", st.pools[i].pool, (char *)NULL);
	metrics_family(out, "prometheus_target_scrape_pool_target_limit", "gauge",
	    "Maximum number of targets allowed in this scrape pool.");
	for (i = 0; i < st.n_pools; i++)
		metrics_sample(out, "prometheus_target_scrape_pool_target_limit",
		    (double)st.pools[i].target_limit, "scrape_job", st.pools[i].pool, (char *)NULL);
	metrics_family(out, "prometheus_sd_discovered_targets", "gauge",
	    "Current number of discovered targets.");
	for (i = 0; i < st.n_pools; i++)
		metrics_sample(out, "prometheus_sd_discovered_targets",
		    (double)st.pools[i].discovered, "config", st.pools[i].pool,
		    "name", "scrape", (char *)NULL);
	metrics_family(out, "prometheus_target_sync_failed_total", "counter",
	    "Total number of target sync failures.");
	for (i = 0; i < st.n_pools; i++)
		metrics_sample(out, "prometheus_target_sync_failed_total",
		    (double)st.pools[i].sync_failed, "scrape_job", st.pools[i].pool, (char *)NULL);
	metrics_family(out, "prometheus_target_interval_length_seconds", "summary",
	    "Actual intervals between scrapes.");
	for (i = 0; i < st.n_intervals; i++) {
		const struct scrape_interval_stats *is = &st.intervals[i];

		time_format_duration(is->interval_ms, buf, sizeof(buf));
		for (q = 0; q < 5; q++)
			metrics_sample(out, "prometheus_target_interval_length_seconds", is->q[q],
			    "interval", buf, "quantile", quantiles[q], (char *)NULL);
		metrics_sample(out, "prometheus_target_interval_length_seconds_sum", is->sum,
		    "interval", buf, (char *)NULL);
		metrics_sample(out, "prometheus_target_interval_length_seconds_count",
		    (double)is->count, "interval", buf, (char *)NULL);
	}
	scrape_stats_free(&st);
}

void
api_metrics_db(void *arg, struct strbuf *out)
{
	struct tsdb_db_stats st;

	tsdb_db_stats(arg, &st);
#define X(expr, name, type, help) \
	metrics_family(out, name, type, help); \
	metrics_sample(out, name, (double)(expr), (char *)NULL);
	TSDB_DB_METRICS(X)
#undef X
}
