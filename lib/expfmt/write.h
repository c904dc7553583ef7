/* lib/expfmt/write.h - placeholder until its module lands. */
#ifndef STRATA_LIB_EXPFMT_WRITE_H
#define STRATA_LIB_EXPFMT_WRITE_H
#endif
