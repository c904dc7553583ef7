/* shard/leaf.h - the targets source strata-leaf gives its shard: every
 * target of the scrape manager after target relabeling, owned or not.
 *
 * A scrape manager snapshot lists each target with its __address__ after
 * relabeling (scrape_target_info.address) whether this leaf owns it or
 * not; targets relabeling drops have none and are not counted. Stateless
 * beyond the borrowed manager, so counting from a server thread needs no
 * lock of its own.
 */
#ifndef STRATA_SHARD_LEAF_H
#define STRATA_SHARD_LEAF_H

#include "scrape/scrape.h"
#include "shard/shard.h"

/* shard_leaf_targets is the shard_targets_fn over a scrape manager (arg,
 * borrowed; it must outlive the shard's use of it). */
void shard_leaf_targets(void *arg, shard_emit_fn emit, void *ctx);

#endif
