/* lib/tsdb/head.h - placeholder until its module lands. */
#ifndef STRATA_LIB_TSDB_HEAD_H
#define STRATA_LIB_TSDB_HEAD_H
#endif
