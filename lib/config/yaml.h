/* lib/config/yaml.h - placeholder until its module lands. */
#ifndef STRATA_LIB_CONFIG_YAML_H
#define STRATA_LIB_CONFIG_YAML_H
#endif
