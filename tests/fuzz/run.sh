#!/bin/sh
# tests/fuzz/run.sh - build the libFuzzer targets and run each for a while.
#
# usage: tests/fuzz/run.sh [SECONDS] [TARGET...]   (from a configured build dir)
# Default 600 s per target, one job each, corpora kept in tests/fuzz/corpus-NAME
# of the build dir. Seeds come from the peer corpora and the repo's examples.
# A crash leaves crash-* files in the build dir and makes the script fail.
set -eu
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"fuzz_expfmt fuzz_config fuzz_matcher"}
srcdir=$(sed -n 's/^abs_top_srcdir = //p' Makefile)
peer=$(sed -n 's/^PEER_TESTS_DIR = //p' Makefile)
status=0
for t in $targets; do
	make -s "tests/fuzz/$t"
	corpus="tests/fuzz/corpus-$t"
	mkdir -p "$corpus"
	seeds=""
	case $t in
	fuzz_expfmt) [ -n "$peer" ] && seeds="$peer/openmetrics-parsers" ;;
	fuzz_config) [ -n "$peer" ] && seeds="$peer/config-v2.42.0" ;;
	esac
	[ -d "$srcdir/examples" ] && [ "$t" = fuzz_config ] && seeds="$seeds $srcdir/examples"
	seed_dir="tests/fuzz/seeds-$t"
	rm -rf "$seed_dir"
	mkdir -p "$seed_dir"
	for d in $seeds; do
		find "$d" -type f -size -64k | while read -r f; do
			cp "$f" "$seed_dir/$(echo "$f" | md5sum | cut -c1-16)"
		done
	done
	echo "== $t for ${secs}s"
	"./tests/fuzz/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-print_final_stats=1 "$corpus" "$seed_dir" 2>"tests/fuzz/$t.log" || status=1
	grep -E 'stat::number_of_executed_units|Done|ERROR|SUMMARY' "tests/fuzz/$t.log" || true
done
exit $status
