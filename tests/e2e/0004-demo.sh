#!/bin/sh
# tests/e2e/0004-demo.sh - the README's first command (examples/quickstart.sh)
# starts the whole hierarchy (synthetic targets, two leaf shards, the
# central pair, HAProxy when installed) with this build's programs, prints
# the URLs and what to try, shows through the pair's entry point that all
# 10 synthetic targets are up and that the recording rules ran, and stops
# every process by itself.
. "$(dirname "$0")/lib.sh"
src=${STRATA_SRCDIR:?run through make e2e}

# Its ports from this scenario's block, its directory under ours (so the
# check for processes left running sees this demo's only).
ports=$(e2e_ports 16)
STRATA_DEMO_SECONDS=1 STRATA_DEMO_BUILDDIR="$STRATA_BUILDDIR" \
	STRATA_DEMO_FIRST_PORT=$ports TMPDIR="$E2E_DIR" \
	timeout 180 sh "$src/examples/quickstart.sh" >"$E2E_DIR/demo.out" 2>&1 ||
	e2e_fail "quickstart failed: $(tail -30 "$E2E_DIR/demo.out")"
out=$(cat "$E2E_DIR/demo.out")
for want in 'shard 0 of 2' 'shard 1 of 2' '/api/v1/peer' 'replica a' 'replica b' 'kill -9' \
	'docs/central.md' 'Stopping the demo'; do
	grep -qF -- "$want" "$E2E_DIR/demo.out" || e2e_fail "demo output lacks \"$want\": $out"
done
if command -v haproxy >/dev/null; then
	grep -q 'the pair, for dashboards *http://127.0.0.1:[0-9]*$' "$E2E_DIR/demo.out" ||
		e2e_fail "no HAProxy entry point printed: $out"
fi
# /federate of the pair: every synthetic target up, with the replica label
n=$(grep -c '^up{.*job="synthetic".*replica="[ab]".*} 1 ' "$E2E_DIR/demo.out" || true)
[ "$n" -eq 10 ] || e2e_fail "want 10 synthetic targets up through the pair, got $n: $out"
grep -q '"__name__":"job:up:sum","job":"synthetic"},"value":\[[0-9.]*,"10"\]' "$E2E_DIR/demo.out" ||
	e2e_fail "job:up:sum is not 10 through the pair: $out"
sleep 1
! pgrep -f "$E2E_DIR/strata-demo" >/dev/null || e2e_fail "demo processes left running"
e2e_log "ok"
