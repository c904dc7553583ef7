/* lib/expfmt/parse.c - placeholder until its module lands. */
#include "config.h"
extern int strata_placeholder_parse;
