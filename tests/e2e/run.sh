#!/bin/sh
# tests/e2e/run.sh - run end-to-end scenarios one after another and count them.
#
# Each argument is a scenario script (tests/e2e/NNNN-name.sh); simple ones are
# numbered first (0xxx basics, 1xxx federation, 2xxx sharding, 3xxx central).
# A scenario exits 0 (pass), 77 (skip: a peer program is missing) or
# anything else (fail). Each is bounded by E2E_TIMEOUT seconds.
set -u
pass=0 fail=0 skip=0
: "${E2E_TIMEOUT:=300}"
for t in "$@"; do
	name=$(basename "$t" .sh)
	start=$(date +%s)
	timeout -k 10 "$E2E_TIMEOUT" sh "$t"
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS: $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP: $name" ;;
	*) fail=$((fail + 1)); echo "FAIL: $name (exit $rc, ${secs}s)" ;;
	esac
done
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
