/* lib/daemon/flags.h - the command line shared by strata-leaf and strata-central.
 *
 * Prometheus' flag names wherever a meaning is shared, then the strata-only
 * ones (DESIGN.md "Binaries"). Each role gets a fresh copy of the table so
 * that values parsed for one process never leak into another.
 */
#ifndef STRATA_DAEMON_FLAGS_H
#define STRATA_DAEMON_FLAGS_H

#include <stddef.h>

#include "util/flag.h"

enum daemon_role {
	DAEMON_LEAF,
	DAEMON_CENTRAL,
};

/* daemon_flags_new returns the flag table for role and its length in *n.
 * Caller frees with daemon_flags_free(). */
struct flag *daemon_flags_new(enum daemon_role role, size_t *n);
void daemon_flags_free(struct flag *flags, size_t n);

/* daemon_main parses the command line of a daemon and handles --help and
 * --version. Returns -1 when the process should exit with *status, else 0
 * with the flags parsed into the table. */
int daemon_parse_args(enum daemon_role role, struct flag *flags, size_t n,
    int argc, char **argv, int *status);

#endif
