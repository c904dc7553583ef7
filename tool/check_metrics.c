/* tool/check_metrics.c - placeholder until the subcommand lands. */
#include "config.h"

#include <stdio.h>

#include "tool/tool.h"

int
tool_check_metrics(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "strata-tool: %s: not implemented yet\n", argv[0]);
	return 2;
}
