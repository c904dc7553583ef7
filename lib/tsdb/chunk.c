/* lib/tsdb/chunk.c - placeholder until its module lands. */
#include "config.h"
extern int strata_placeholder_chunk;
