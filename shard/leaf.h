/* shard/leaf.h - the targets source strata-leaf gives its shard: every
 * target of the scrape manager after target relabeling, owned or not.
 *
 * A scrape manager snapshot lists each target with its discovered labels
 * only (the labels after relabeling are not kept for targets dropped by
 * ownership), so the source runs target relabeling again
 * (scrape_tdef_build() with the job's configuration) to find the
 * __address__ that ownership is decided on, and skips the targets
 * relabeling drops. The wiring tells the source which configuration is in
 * force: shard_leaf_source_set_cfg() from its apply, after
 * scrape_manager_apply() and before the previous configuration is freed.
 * A mutex guards the configuration pointer, so counting from a server
 * thread never sees a freed configuration.
 */
#ifndef STRATA_SHARD_LEAF_H
#define STRATA_SHARD_LEAF_H

#include "config/config.h"
#include "scrape/scrape.h"
#include "shard/shard.h"

struct shard_leaf_source;

/* shard_leaf_source_new returns a source over m (borrowed; must outlive
 * it). Caller frees with shard_leaf_source_free(). */
struct shard_leaf_source *shard_leaf_source_new(struct scrape_manager *m);
void shard_leaf_source_free(struct shard_leaf_source *src);
/* shard_leaf_source_set_cfg installs the configuration in force (borrowed;
 * NULL: none). */
void shard_leaf_source_set_cfg(struct shard_leaf_source *src, const struct cfg *cfg);
/* shard_leaf_targets is the shard_targets_fn of a source (arg). */
void shard_leaf_targets(void *arg, shard_emit_fn emit, void *ctx);

#endif
