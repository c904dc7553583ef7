/* lib/api/targets.c - GET /api/v1/targets from a scrape manager snapshot. */
#include "config.h"

#include "api/targets.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "http/json.h"
#include "util/mem.h"
#include "util/time.h"

static const char *
health_name(enum scrape_health h)
{
	switch (h) {
	case SCRAPE_UP:
		return "up";
	case SCRAPE_DOWN:
		return "down";
	default:
		return "unknown";
	}
}

/* by_pool_labels orders targets by pool, then by labels (discovered
 * labels for dropped targets). */
static int
by_pool_labels(const void *a, const void *b)
{
	const struct scrape_target_info *x = *(const struct scrape_target_info *const *)a;
	const struct scrape_target_info *y = *(const struct scrape_target_info *const *)b;
	int c = strcmp(x->pool, y->pool);

	if (c != 0)
		return c;
	return labels_compare(x->labels != NULL ? x->labels : x->discovered,
	    y->labels != NULL ? y->labels : y->discovered);
}

static void
write_active(struct json_writer *w, const struct scrape_target_info *t)
{
	char buf[64];

	json_object_begin(w);
	json_key(w, "discoveredLabels");
	json_labels(w, t->discovered);
	json_key(w, "labels");
	json_labels(w, t->labels);
	json_key(w, "scrapePool");
	json_string(w, t->pool);
	json_key(w, "scrapeUrl");
	json_string(w, t->scrape_url);
	json_key(w, "globalUrl");
	json_string(w, t->global_url);
	json_key(w, "lastError");
	json_string(w, t->last_error != NULL ? t->last_error : "");
	json_key(w, "lastScrape");
	/* Go's zero time.Time when the target was never scraped. */
	json_string(w, t->last_scrape_ms == 0 ? "0001-01-01T00:00:00Z" :
	    time_format_go(t->last_scrape_ms, buf, sizeof(buf)));
	json_key(w, "lastScrapeDuration");
	json_double(w, t->last_duration_s);
	json_key(w, "health");
	json_string(w, health_name(t->health));
	json_key(w, "scrapeInterval");
	json_string(w, time_format_duration(t->interval_ms, buf, sizeof(buf)));
	json_key(w, "scrapeTimeout");
	json_string(w, time_format_duration(t->timeout_ms, buf, sizeof(buf)));
	json_object_end(w);
}

void
api_targets_write(const struct scrape_target_info *v, size_t n,
    const char *state, const char *pool, struct strbuf *out)
{
	bool any = state == NULL || state[0] == '\0' || strcasecmp(state, "any") == 0;
	bool show_active = any || strcasecmp(state, "active") == 0;
	bool show_dropped = any || strcasecmp(state, "dropped") == 0;
	const struct scrape_target_info **order = NULL;
	struct json_writer w;
	size_t i;

	if (n > 0)
		order = mem_calloc(n, sizeof(*order));
	for (i = 0; i < n; i++)
		order[i] = &v[i];
	if (n > 1)
		qsort(order, n, sizeof(*order), by_pool_labels);

	json_init(&w, out);
	json_object_begin(&w);
	json_key(&w, "status");
	json_string(&w, "success");
	json_key(&w, "data");
	json_object_begin(&w);
	json_key(&w, "activeTargets");
	json_array_begin(&w);
	for (i = 0; show_active && i < n; i++)
		if (order[i]->active && (pool == NULL || pool[0] == '\0' ||
		    strcmp(pool, order[i]->pool) == 0))
			write_active(&w, order[i]);
	json_array_end(&w);
	json_key(&w, "droppedTargets");
	json_array_begin(&w);
	for (i = 0; show_dropped && i < n; i++) {
		if (order[i]->active || (pool != NULL && pool[0] != '\0' &&
		    strcmp(pool, order[i]->pool) != 0))
			continue;
		json_object_begin(&w);
		json_key(&w, "discoveredLabels");
		json_labels(&w, order[i]->discovered);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
	json_object_end(&w);
	mem_free(order);
}

static int
targets_handler(struct http_request *req, void *arg)
{
	struct scrape_manager *m = arg;
	struct scrape_target_info *v = NULL;
	struct strbuf out = STRBUF_INIT;
	size_t n = 0;
	int rc;

	if (scrape_manager_targets(m, &v, &n) < 0)
		return api_error(req, API_ERR_INTERNAL, "cannot list targets");
	api_targets_write(v, n, http_request_arg(req, "state"),
	    http_request_arg(req, "scrapePool"), &out);
	scrape_target_info_free(v, n);
	rc = http_respond(req, 200, "application/json", &out);
	strbuf_free(&out);
	return rc;
}

int
api_targets_route(struct scrape_manager *m, struct http_server *srv)
{
	return http_server_route(srv, HTTP_GET, "/api/v1/targets", HTTP_ROUTE_GZIP,
	    targets_handler, m);
}
