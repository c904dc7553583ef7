/* central/main.c - strata-central: command line, then the central wiring.
 *
 * For now it parses and checks its command line and configuration; the
 * serving loop lands with the central issue.
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

	flags = daemon_flags_new(DAEMON_CENTRAL, &nflags);
	if (daemon_parse_args(DAEMON_CENTRAL, flags, nflags, argc, argv, &status) < 0)
		goto out;
	log_kv(LOG_ERROR, "main", "serving is not implemented yet", "config", flag_str(flags, nflags, "config.file"), (char *)NULL);
	status = 1;
out:
	daemon_flags_free(flags, nflags);
	return status;
}
