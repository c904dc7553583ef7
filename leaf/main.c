/* leaf/main.c - strata-leaf: command line, then the leaf wiring.
 *
 * For now it parses and checks its command line and configuration; the
 * serving loop lands with the leaf issue.
 */
#include "config.h"

#include <stdio.h>

#include "daemon/flags.h"
#include "util/log.h"

int
main(int argc, char **argv)
{
	struct flag *flags;
	size_t nflags;
	int status = 0;

	flags = daemon_flags_new(DAEMON_LEAF, &nflags);
	if (daemon_parse_args(DAEMON_LEAF, flags, nflags, argc, argv, &status) < 0)
		goto out;
	log_kv(LOG_ERROR, "main", "serving is not implemented yet", "config", flag_str(flags, nflags, "config.file"), (char *)NULL);
	status = 1;
out:
	daemon_flags_free(flags, nflags);
	return status;
}
