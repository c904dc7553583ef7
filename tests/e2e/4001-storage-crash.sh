#!/bin/sh
# tests/e2e/4001-storage-crash.sh - a leaf ingesting at a steady rate is
# SIGKILLed at random moments 20 times and restarted on the same data
# directory. Before each kill the samples stored up to a time T (2.5 s back,
# so no scrape is still in flight) are counted; after the restart the same
# count at T must come back exactly: nothing written before the kill is
# lost, nothing is doubled. Then a clean stop: it leaves a WAL checkpoint,
# and the restart loads it with the same count. Scrapes run every 250 ms so
# the head closes chunks (about every 30 s) into head_chunks/ during the
# run: restarts replay into them and the checkpoint names them.
. "$(dirname "$0")/lib.sh"

first=$(e2e_ports 3)
port=$(e2e_port)
base="http://127.0.0.1:$port"
data="$E2E_DIR/data"
e2e_synth targets "$first" 3 300
cat >"$E2E_DIR/leaf.yml" <<CFG
global:
  scrape_interval: 250ms
  scrape_timeout: 200ms
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$first", "127.0.0.1:$((first + 1))", "127.0.0.1:$((first + 2))"]
CFG

start_leaf() {
	e2e_start "leaf$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$data"
	LEAF=$E2E_LAST_PID
	e2e_wait_http "$base/-/ready"
}

# count T: the samples of job synth in the hour up to T (seconds), read raw
# (a range-vector query) and printed as "COUNT DIGEST", the digest covering
# every series, timestamp and value; duplicate timestamps fail the test
count() {
	curl -sS -g --max-time 20 "$base/api/v1/query" \
		--data-urlencode 'query={job="synth"}[1h]' \
		--data-urlencode "time=$1" | python3 -c '
import hashlib, json, sys
d = json.load(sys.stdin)
assert d["status"] == "success", d
h, n = hashlib.sha256(), 0
for s in sorted(d["data"]["result"], key=lambda s: sorted(s["metric"].items())):
    ts = [v[0] for v in s["values"]]
    assert len(ts) == len(set(ts)), ("duplicate timestamps", s["metric"])
    h.update(json.dumps([sorted(s["metric"].items()), s["values"]]).encode())
    n += len(ts)
print(n, h.hexdigest()[:16])'
}

back() { python3 -c 'import time, sys; print("%.3f" % (time.time() - float(sys.argv[1])))' "$1"; }

start_leaf 0
sleep 3
round=1
while [ "$round" -le 20 ]; do
	# a random moment, 1.0 to 3.9 s after the last restart
	sleep "$(python3 -c 'import random; print(round(random.uniform(1.0, 3.9), 2))')"
	t=$(back 2.5)
	before=$(count "$t") || e2e_fail "query before kill $round"
	kill -9 "$LEAF"
	wait "$LEAF" 2>/dev/null || true
	start_leaf "$round"
	after=$(count "$t") || e2e_fail "query after restart $round"
	[ "${before%% *}" -gt 0 ] || e2e_fail "kill $round: no samples at all"
	[ "$before" = "$after" ] || e2e_fail "kill $round: $before samples up to $t before the kill, $after after"
	e2e_log "kill $round: ${before%% *} samples up to T, the same after the restart (digest ${before#* })"
	round=$((round + 1))
done
grep -h 'WAL replay completed' "$E2E_DIR"/leaf*.log | tail -1 | sed 's/^/  last replay: /'

# a clean stop writes a checkpoint; the restart loads it
sleep 2
t=$(back 2.5)
before=$(count "$t")
kill "$LEAF"
wait "$LEAF" 2>/dev/null || true
ls "$data/wal" | grep -q '^checkpoint\.' || e2e_fail "no checkpoint after a clean stop: $(ls "$data/wal")"
[ -n "$(ls "$data/head_chunks")" ] || e2e_fail "no head chunk file after the run"
start_leaf 21
after=$(count "$t")
[ "$before" = "$after" ] || e2e_fail "clean restart: $before samples before, $after after"
e2e_log "ok: 20 SIGKILLs and a clean restart, nothing lost or doubled (${after%% *} samples)"
