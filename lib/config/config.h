/* lib/config/config.h - placeholder until its module lands. */
#ifndef STRATA_LIB_CONFIG_CONFIG_H
#define STRATA_LIB_CONFIG_CONFIG_H
#endif
