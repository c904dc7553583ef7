/* shard/leaf.c - the targets source strata-leaf gives its shard.
 *
 * Runs on whichever thread counts (an /api/v1/shard request, a /metrics
 * scrape), holding the source mutex for the whole walk so that the
 * configuration cannot be swapped (and then freed) under it.
 */
#include "config.h"

#include "shard/leaf.h"

#include <pthread.h>
#include <string.h>

#include "scrape/target.h"
#include "util/mem.h"

struct shard_leaf_source {
	pthread_mutex_t mu;		/* guards cfg */
	struct scrape_manager *m;
	const struct cfg *cfg;
};

struct shard_leaf_source *
shard_leaf_source_new(struct scrape_manager *m)
{
	struct shard_leaf_source *src = mem_calloc(1, sizeof(*src));

	pthread_mutex_init(&src->mu, NULL);
	src->m = m;
	return src;
}

void
shard_leaf_source_free(struct shard_leaf_source *src)
{
	if (src == NULL)
		return;
	pthread_mutex_destroy(&src->mu);
	mem_free(src);
}

void
shard_leaf_source_set_cfg(struct shard_leaf_source *src, const struct cfg *cfg)
{
	pthread_mutex_lock(&src->mu);
	src->cfg = cfg;
	pthread_mutex_unlock(&src->mu);
}

/* shard_leaf_job finds the job called name; hint is where the previous
 * one was (targets come grouped by pool). */
static const struct cfg_scrape *
shard_leaf_job(const struct cfg *cfg, const char *name, size_t *hint)
{
	size_t i;

	if (*hint < cfg->n_scrape && strcmp(cfg->scrape[*hint].job_name, name) == 0)
		return &cfg->scrape[*hint];
	for (i = 0; i < cfg->n_scrape; i++) {
		if (strcmp(cfg->scrape[i].job_name, name) == 0) {
			*hint = i;
			return &cfg->scrape[i];
		}
	}
	return NULL;
}

void
shard_leaf_targets(void *arg, shard_emit_fn emit, void *ctx)
{
	struct shard_leaf_source *src = arg;
	struct scrape_target_info *v = NULL;
	size_t n = 0, i, hint = 0;

	pthread_mutex_lock(&src->mu);
	if (src->cfg == NULL || scrape_manager_targets(src->m, &v, &n) < 0) {
		pthread_mutex_unlock(&src->mu);
		return;
	}
	for (i = 0; i < n; i++) {
		const struct cfg_scrape *sc = shard_leaf_job(src->cfg, v[i].pool, &hint);
		struct scrape_tdef d;
		const char *a;
		char err[256];

		if (sc == NULL || v[i].discovered == NULL)
			continue;	/* a pool of a configuration being replaced */
		if (scrape_tdef_build(v[i].discovered, sc, &d, err, sizeof(err)) < 0)
			continue;
		if (d.labels != NULL) {
			a = labels_get(d.labels, "__address__");
			if (a == NULL)
				a = "";
			emit(ctx, a, strlen(a));
		}
		scrape_tdef_clear(&d);
	}
	pthread_mutex_unlock(&src->mu);
	scrape_target_info_free(v, n);
}
