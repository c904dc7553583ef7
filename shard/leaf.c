/* shard/leaf.c - the targets source strata-leaf gives its shard. */
#include "config.h"

#include "shard/leaf.h"

#include <string.h>

void
shard_leaf_targets(void *arg, shard_emit_fn emit, void *ctx)
{
	struct scrape_target_info *v = NULL;
	size_t n = 0, i;

	if (scrape_manager_targets(arg, &v, &n) < 0)
		return;
	for (i = 0; i < n; i++)
		if (v[i].address != NULL)
			emit(ctx, v[i].address, strlen(v[i].address));
	scrape_target_info_free(v, n);
}
