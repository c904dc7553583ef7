/* tool/main.c - strata-tool: checks, shard lookups, imports and queries.
 *
 * Dispatches "strata-tool <command> [<subcommand>] ARGS" to the functions in
 * tool/tool.h; each lives in its own file beside this one.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tool/tool.h"

static const struct {
	const char *cmd;
	const char *sub;
	int (*run)(int argc, char **argv);
	const char *usage;
} tool_commands[] = {
	{ "check", "config", tool_check_config, "check config FILE...      validate Prometheus configuration files" },
	{ "check", "rules", tool_check_rules, "check rules FILE...       validate Prometheus rule files" },
	{ "check", "metrics", tool_check_metrics, "check metrics [--format=text|openmetrics] [FILE]  validate an exposition" },
	{ "import", "openmetrics", tool_import_openmetrics, "import openmetrics FILE --storage.tsdb.path DIR  backfill blocks from OpenMetrics text" },
	{ "shard", "owner", tool_shard_owner, "shard owner --count N ADDRESS...  print the shard index owning each target" },
};
#define TOOL_NCOMMANDS (sizeof(tool_commands) / sizeof(tool_commands[0]))

static void
tool_usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: strata-tool <command> [<args>]\n\nCommands:\n");
	for (i = 0; i < TOOL_NCOMMANDS; i++)
		fprintf(out, "  %s\n", tool_commands[i].usage);
	fprintf(out, "  --help, --version\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		tool_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		tool_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("strata-tool, version %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (i = 0; i < TOOL_NCOMMANDS; i++) {
		if (strcmp(argv[1], tool_commands[i].cmd) != 0)
			continue;
		if (argc < 3 || strcmp(argv[2], tool_commands[i].sub) != 0)
			continue;
		return tool_commands[i].run(argc - 2, argv + 2);
	}
	fprintf(stderr, "strata-tool: unknown command \"%s%s%s\"\n", argv[1],
	    argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
	tool_usage(stderr);
	return 2;
}
