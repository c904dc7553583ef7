/* central/coverage.h - what time ranges this replica holds completely, on disk.
 *
 * A replica of the central pair keeps, beside its store, the list of time
 * ranges for which it holds every sample it would have had if it never
 * stopped: the stretches it ingested itself (extended by a heartbeat while
 * it runs) and the ranges it copied from its peer. A restart, a long stall
 * or a failed commit ends one stretch; the next starts later, and what lies
 * between is a gap the peer may fill.
 *
 * The file is <data dir>/peer-coverage, append-only text, one interval a
 * line: "<start_ms> <end_ms>\n" (half-open [start, end)), after a
 * "# strata peer coverage v1" header. A heartbeat appends its stretch again
 * with a later end; reading merges every line, so the newest end wins. A
 * line without its newline (a crash while writing) or that does not parse
 * is skipped: a truncated number only ever claims less. Opening merges the
 * lines, drops what is older than the retention and rewrites the file
 * compacted (a temporary file renamed over it); so does an append once the
 * file has grown past a few thousand lines.
 *
 * Claims are never fsynced on their own: a lost line makes the replica
 * claim less, which only costs a repeated repair.
 *
 * Threads: every function may be called from any thread (one mutex).
 */
#ifndef STRATA_CENTRAL_COVERAGE_H
#define STRATA_CENTRAL_COVERAGE_H

#include <stddef.h>
#include <stdint.h>

#include "central/ranges.h"

#define COVERAGE_FILE "peer-coverage"

struct coverage;

/* coverage_open reads (creating) dir/peer-coverage, forgets what ended
 * before min_time (0: keep everything) and rewrites it compacted. Returns
 * NULL with err when the file cannot be read, written or renamed. Close
 * with coverage_close(). */
struct coverage *coverage_open(const char *dir, int64_t min_time, char *err, size_t errlen);
/* coverage_close closes the file and frees c; NULL is a no-op. */
void coverage_close(struct coverage *c);

/* coverage_add records that [start, end) is held completely. Returns 0 (also
 * when it was already recorded, or the interval is empty), or -1 with err
 * when the line could not be written (what is in memory still counts). */
int coverage_add(struct coverage *c, int64_t start, int64_t end, char *err, size_t errlen);
/* coverage_forget drops what ended before min_time (retention); in memory
 * only, the file follows at its next compaction. */
void coverage_forget(struct coverage *c, int64_t min_time);
/* coverage_get copies the held ranges into out (emptied first). */
void coverage_get(struct coverage *c, struct ranges *out);

/* coverage_parse merges the interval lines of buf[0..len) (header and
 * comment lines, lines without a newline and malformed lines skipped) into
 * out and returns how many lines were taken. */
size_t coverage_parse(const char *buf, size_t len, struct ranges *out);

#endif
