#!/bin/sh
# tests/e2e/0004-demo.sh - the README's first command (examples/quickstart.sh)
# starts the demo, prints the URLs and a /federate sample with up == 1 for
# every synthetic target, and stops both processes by itself.
. "$(dirname "$0")/lib.sh"
src=${STRATA_SRCDIR:?run through make e2e}
[ -f "$src/build/Makefile" ] || { e2e_log "no build/ in the source tree"; exit 77; }

STRATA_DEMO_SECONDS=1 timeout 120 sh "$src/examples/quickstart.sh" >"$E2E_DIR/demo.out" 2>&1 ||
	e2e_fail "quickstart failed: $(tail -20 "$E2E_DIR/demo.out")"
grep -q '/api/v1/targets' "$E2E_DIR/demo.out" || e2e_fail "no URLs printed"
n=$(grep -c '^up{.*job="synthetic".*} 1 ' "$E2E_DIR/demo.out" || true)
[ "$n" -eq 5 ] || e2e_fail "want 5 synthetic targets up in the demo, got $n: $(cat "$E2E_DIR/demo.out")"
grep -q 'Stopping the demo' "$E2E_DIR/demo.out" || e2e_fail "demo did not stop"
sleep 1
! pgrep -f "strata-demo" >/dev/null || e2e_fail "demo processes left running"
e2e_log "ok"
