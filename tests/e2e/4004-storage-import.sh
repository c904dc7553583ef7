#!/bin/sh
# tests/e2e/4004-storage-import.sh - strata-tool import openmetrics writes
# blocks a running leaf picks up (at its next maintenance pass) and a
# stopped one loads at start; the same file imported twice is not doubled
# (the overlapping blocks are merged by compaction); a file without
# timestamps is refused with its name.
. "$(dirname "$0")/lib.sh"

port=$(e2e_port)
base="http://127.0.0.1:$port"
data="$E2E_DIR/data"
printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' >"$E2E_DIR/leaf.yml"
"$STRATA_BUILDDIR/tests/bench/bench_tsdb" openmetrics --series 1000 --hours 1 \
	--out "$E2E_DIR/data.om" >/dev/null 2>&1 ||
	{ e2e_log "tests/bench/bench_tsdb not built (make tests/bench/bench_tsdb)"; exit 77; }
want=$((1000 * 240))

start_leaf() {
	e2e_start "leaf-$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$data"
	LEAF=$E2E_LAST_PID
	e2e_wait_http "$base/-/ready"
}

# count: the samples of job synth in the last 2 hours, checked for
# duplicate timestamps
count() {
	curl -sS -g --max-time 20 "$base/api/v1/query" \
		--data-urlencode 'query={job="synth"}[2h]' | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
n = 0
for s in d["data"]["result"]:
    ts = [v[0] for v in s["values"]]
    assert len(ts) == len(set(ts)), ("duplicate timestamps", s["metric"])
    n += len(ts)
print(n)'
}

start_leaf 1
[ "$(count)" = 0 ] || e2e_fail "samples before the import"
"$STRATA_BUILDDIR/strata-tool" import openmetrics "$E2E_DIR/data.om" --storage.tsdb.path="$data" \
	>"$E2E_DIR/import1.log" || e2e_fail "import into a running leaf: $(cat "$E2E_DIR/import1.log")"
# the leaf's maintenance pass (every 5 s) loads new block directories
tries=0
while [ "$(count)" != "$want" ] && [ "$tries" -lt 40 ]; do
	sleep 0.5
	tries=$((tries + 1))
done
n=$(count)
[ "$n" = "$want" ] || e2e_fail "running leaf: $n samples after the import, want $want"
e2e_log "running leaf: picked up $n imported samples in about $((tries / 2)) s"
kill "$LEAF"
wait "$LEAF" 2>/dev/null || true

# the same file again, into the stopped leaf's directory
"$STRATA_BUILDDIR/strata-tool" import openmetrics "$E2E_DIR/data.om" --storage.tsdb.path="$data" \
	>"$E2E_DIR/import2.log" || e2e_fail "import into a stopped leaf"
start_leaf 2
n=$(count)
[ "$n" = "$want" ] || e2e_fail "after importing twice: $n samples, want $want"
e2e_log "stopped leaf: loaded at start, the second import not doubled ($n samples)"

# no timestamps: refused, naming the file
printf '# TYPE x gauge\nx 1\n# EOF\n' >"$E2E_DIR/nots.om"
if "$STRATA_BUILDDIR/strata-tool" import openmetrics "$E2E_DIR/nots.om" \
	--storage.tsdb.path="$E2E_DIR/other" 2>"$E2E_DIR/err.txt"; then
	e2e_fail "a file without timestamps was imported"
fi
grep -q "nots.om" "$E2E_DIR/err.txt" || e2e_fail "the refusal does not name the file: $(cat "$E2E_DIR/err.txt")"
e2e_log "ok"
