/* lib/tsdb/chunk.h - placeholder until its module lands. */
#ifndef STRATA_LIB_TSDB_CHUNK_H
#define STRATA_LIB_TSDB_CHUNK_H
#endif
