/* tool/tool.h - the subcommands of strata-tool.
 *
 * Each subcommand takes the arguments after its name (argv[0] is the
 * subcommand's name) and returns the process exit status: 0 on success,
 * 1 when the input is invalid, 2 on a usage error.
 */
#ifndef STRATA_TOOL_TOOL_H
#define STRATA_TOOL_TOOL_H

/* strata-tool check metrics [--format=text|openmetrics] [FILE] */
int tool_check_metrics(int argc, char **argv);
/* strata-tool check config FILE... */
int tool_check_config(int argc, char **argv);
/* strata-tool check rules [--lint=...] [--lint-fatal] FILE... (tool/check_rules.c) */
int tool_check_rules(int argc, char **argv);
/* strata-tool shard owner --count N ADDRESS... */
int tool_shard_owner(int argc, char **argv);
/* strata-tool import openmetrics FILE --storage.tsdb.path DIR (tool/import.c) */
int tool_import_openmetrics(int argc, char **argv);

#endif
