#!/bin/sh
# tests/e2e/4002-storage-wal-corruption.sh - a damaged WAL never stops the
# leaf: a flipped byte in a segment, then a segment cut mid-record. Each time
# it starts, reports what it dropped (the log, naming the file, and
# prometheus_tsdb_wal_corruptions_total), serves what was intact and keeps
# ingesting.
. "$(dirname "$0")/lib.sh"

first=$(e2e_ports 2)
port=$(e2e_port)
base="http://127.0.0.1:$port"
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

start_leaf() {
	e2e_start "leaf-$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
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

metric() {
	curl -sS "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

back() { python3 -c 'import time, sys; print("%.3f" % (time.time() - float(sys.argv[1])))' "$1"; }

# the newest WAL segment holding records
segment() {
	for s in $(ls "$data/wal" | grep -E '^[0-9]{8}$'); do
		[ "$(stat -c %s "$data/wal/$s")" -gt 1000 ] && echo "$s"
	done | tail -1
}

for damage in flip truncate; do
	data="$E2E_DIR/data-$damage"
	start_leaf "$damage"
	sleep 4
	t=$(back 1.5)
	full=$(count "$t")
	full=${full%% *}
	kill -9 "$LEAF"
	wait "$LEAF" 2>/dev/null || true
	seg=$(segment)
	[ -n "$seg" ] || e2e_fail "no WAL segment with data: $(ls -l "$data/wal")"
	size=$(stat -c %s "$data/wal/$seg")
	if [ "$damage" = flip ]; then
		python3 -c '
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5a]))' \
			"$data/wal/$seg" "$((size / 2))"
	else
		truncate -s "$((size * 2 / 3 + 3))" "$data/wal/$seg"
	fi
	start_leaf "$damage-after"
	log="$E2E_DIR/leaf-$damage-after.log"
	grep -q 'corrupt or torn record: truncating' "$log" || e2e_fail "$damage: no corruption report"
	grep 'corrupt or torn record' "$log" | grep -q "file=$data/wal/$seg" ||
		e2e_fail "$damage: the report does not name $seg: $(grep 'corrupt or torn' "$log")"
	c=$(metric prometheus_tsdb_wal_corruptions_total)
	[ "$c" = 1 ] || e2e_fail "$damage: prometheus_tsdb_wal_corruptions_total=$c"
	kept=$(count "$t")
	kept=${kept%% *}
	[ "$kept" -gt 0 ] && [ "$kept" -lt "$full" ] ||
		e2e_fail "$damage: $kept samples kept of $full (want some, not all)"
	e2e_log "$damage: kept $kept of $full samples; dropped $(grep -h 'corrupt or torn' "$log" |
		sed 's/.*bytes_dropped=\([0-9]*\).*/\1/') bytes of $seg"
	sleep 2
	more=$(count "$(back 1)")
	more=${more%% *}
	[ "$more" -gt "$kept" ] || e2e_fail "$damage: no new samples after the repair"
	kill "$LEAF"
	wait "$LEAF" 2>/dev/null || true
done
e2e_log "ok"
