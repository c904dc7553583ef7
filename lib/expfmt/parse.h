/* lib/expfmt/parse.h - placeholder until its module lands. */
#ifndef STRATA_LIB_EXPFMT_PARSE_H
#define STRATA_LIB_EXPFMT_PARSE_H
#endif
