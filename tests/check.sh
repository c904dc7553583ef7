#!/bin/sh
# tests/check.sh - build strata and run every test (the README's test command).
#
# Installs what is missing, builds in ./build with warnings as errors, runs
# the unit suites (make check), the end-to-end scenarios against real
# programs on 127.0.0.1 (make e2e) and make distcheck. Exits non-zero on the
# first failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./autotools/install-deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure --enable-werror -q
make -j"$(nproc)" >/dev/null
status=0
make -j"$(nproc)" check >check.out 2>&1 || status=$?
grep -E '^(PASS|FAIL|SKIP|ERROR|XFAIL|XPASS):|^# ' check.out || true
# What each suite printed (counts of corpus cases and cases run).
for log in tests/unit/*.log; do
	[ "$(basename "$log")" = test-suite.log ] && continue
	grep -E 'pass|PASSED|FAILED|cases|skip' "$log" | sed "s|^|$(basename "$log" .log): |"
done
[ "$status" -eq 0 ] || { cat tests/unit/*.log; exit 1; }
unit_summary=$("$top/tests/unit/count.sh" . unit)

make e2e

make distcheck >distcheck.out 2>&1 || { tail -50 distcheck.out; exit 1; }
echo "make distcheck: ok"
echo "$unit_summary"
