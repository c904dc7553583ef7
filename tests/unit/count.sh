#!/bin/sh
# tests/unit/count.sh - sum the cmocka results in a build dir's unit test logs.
# usage: tests/unit/count.sh BUILDDIR LABEL  ->  "LABEL: N passed, M failed"
set -eu
logs=$(ls "$1"/tests/unit/test_*.log 2>/dev/null || true)
[ -n "$logs" ] || { echo "$2: 0 passed, 0 failed"; exit 0; }
# shellcheck disable=SC2086
pass=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' $logs | awk '{s+=$1} END {print s+0}')
# shellcheck disable=SC2086
fail=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' $logs | awk '{s+=$1} END {print s+0}')
echo "$2: $pass passed, $fail failed"
