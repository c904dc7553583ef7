#!/bin/sh
# tests/e2e/run.sh - run end-to-end scenarios, several at a time, and count them.
#
# Each argument is a scenario script (tests/e2e/NNNN-name.sh); simple ones are
# numbered first (0xxx basics, 1xxx federation, 2xxx sharding, 3xxx central).
# A scenario exits 0 (pass), 77 (skip: a peer program is missing) or
# anything else (fail). Each is bounded by E2E_TIMEOUT seconds.
#
# Most of a scenario's time is spent waiting (outages, cuts, settling), so
# E2E_JOBS of them (default 3) run at once, in the order given. Each one's
# output, stdout and stderr, is kept and printed whole, followed by its
# PASS/FAIL/SKIP line, in the order given: as soon as it and every one before
# it have ended. Scenarios running side by side do not collide: each has its
# own directory, processes and block of ports (lib.sh). E2E_JOBS=1 runs them
# one after another.
set -u
: "${E2E_TIMEOUT:=300}"
: "${E2E_JOBS:=3}"
case $E2E_JOBS in
'' | *[!0-9]* | 0) echo "run.sh: E2E_JOBS must be a positive number, not '$E2E_JOBS'" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-e2e-run.XXXXXX") || exit 2
# Stopped (make interrupted, ^C): stop the running scenarios too. Each runs
# under timeout(1), which has a process group of its own, so a signal to
# ours does not reach them; timeout passes ours on to the whole scenario.
stop_all() {
	for f in "$work"/*.pid; do
		[ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null
	done
}
trap 'rm -rf "$work"' EXIT
trap 'stop_all; wait; exit 130' INT
trap 'stop_all; wait; exit 143' TERM
trap 'stop_all; wait; exit 129' HUP

# Finished scenarios announce their index on a FIFO the loop below reads.
mkfifo "$work/done" || exit 2
exec 3<>"$work/done"

total=$#
k=0
for t in "$@"; do
	k=$((k + 1))
	printf '%s\n' "$t" >"$work/$k.name"
done

# run_one K: runs scenario K in the background.
run_one() {
	t=$(cat "$work/$1.name")
	(
		start=$(date +%s)
		timeout -k 10 "$E2E_TIMEOUT" sh "$t" >"$work/$1.out" 2>&1 </dev/null &
		echo $! >"$work/$1.pid"
		wait $!
		rc=$?
		rm -f "$work/$1.pid"
		echo "$rc $(($(date +%s) - start))" >"$work/$1.rc"
		echo "$1" >&3
	) &
}

pass=0 fail=0 skip=0
started=0 running=0 printed=0
began=$(date +%s)
while [ "$printed" -lt "$total" ]; do
	while [ "$running" -lt "$E2E_JOBS" ] && [ "$started" -lt "$total" ]; do
		started=$((started + 1))
		running=$((running + 1))
		run_one "$started"
	done
	read -r _ <&3 || { echo "run.sh: lost track of the scenarios" >&2; exit 2; }
	running=$((running - 1))
	# Print what ended, in order.
	while [ "$printed" -lt "$total" ] && [ -f "$work/$((printed + 1)).rc" ]; do
		printed=$((printed + 1))
		name=$(basename "$(cat "$work/$printed.name")" .sh)
		read -r rc secs <"$work/$printed.rc"
		cat "$work/$printed.out"
		case $rc in
		0) pass=$((pass + 1)); echo "PASS: $name (${secs}s)" ;;
		77) skip=$((skip + 1)); echo "SKIP: $name" ;;
		*) fail=$((fail + 1)); echo "FAIL: $name (exit $rc, ${secs}s)" ;;
		esac
	done
done
wait
echo "e2e: $total scenarios in $(($(date +%s) - began))s, $E2E_JOBS at a time"
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
