#!/bin/sh
# tests/e2e/4003-storage-disk-full.sh - the data directory on a small tmpfs
# runs full: the leaf keeps answering queries, reports the refused writes
# (prometheus_tsdb_wal_writes_failed_total and the log), accepts nothing it
# cannot log, and ingests again once space comes back. Runs in a private
# mount namespace (unshare) so the tmpfs needs no privileges beyond a user
# namespace; skipped where there is none.
if [ -z "${E2E_NS:-}" ]; then
	unshare -rm true 2>/dev/null || { echo "4003-storage-disk-full: no user namespaces"; exit 77; }
	E2E_NS=1 exec unshare -rm sh "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

first=$(e2e_ports 2)
port=$(e2e_port)
base="http://127.0.0.1:$port"
data="$E2E_DIR/small"
mkdir -p "$data"
mount -t tmpfs -o size=4m tmpfs "$data" || { e2e_log "cannot mount a tmpfs"; exit 77; }
e2e_synth targets "$first" 2 300
cat >"$E2E_DIR/leaf.yml" <<CFG
global:
  scrape_interval: 500ms
  scrape_timeout: 400ms
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$first", "127.0.0.1:$((first + 1))"]
CFG
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$data"
LEAF=$E2E_LAST_PID
e2e_wait_http "$base/-/ready"

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
metric() {
	curl -sS "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
now() { python3 -c 'import time; print("%.3f" % time.time())'; }

sleep 3
dd if=/dev/zero of="$data/filler" bs=64k 2>/dev/null || true	# until ENOSPC
sleep 3
failed=$(metric prometheus_tsdb_wal_writes_failed_total)
[ "${failed%.*}" -gt 0 ] || e2e_fail "disk full but prometheus_tsdb_wal_writes_failed_total=$failed"
grep -q 'write failed' "$E2E_DIR/leaf.log" || e2e_fail "no write failure in the log"
held=$(count "$(now)")
[ "${held%% *}" -gt 0 ] || e2e_fail "no reads while the disk is full"
sleep 2
[ "$(count "$(now)")" = "$held" ] || e2e_fail "samples were accepted while the WAL could not log them"
e2e_log "disk full: reads served (${held%% *} samples), $failed refused commits reported"

rm -f "$data/filler"
sleep 3
resumed=$(count "$(now)")
[ "${resumed%% *}" -gt "${held%% *}" ] || e2e_fail "no ingestion after space came back ($resumed <= $held)"
f2=$(metric prometheus_tsdb_wal_writes_failed_total)
sleep 2
[ "$(metric prometheus_tsdb_wal_writes_failed_total)" = "$f2" ] || e2e_fail "writes still failing"
grep -q 'writes succeed again' "$E2E_DIR/leaf.log" || e2e_fail "no recovery in the log"
e2e_log "ok: space back, ingesting again (${resumed%% *} samples)"
kill "$LEAF" 2>/dev/null || true
wait "$LEAF" 2>/dev/null || true
umount "$data" 2>/dev/null || true
