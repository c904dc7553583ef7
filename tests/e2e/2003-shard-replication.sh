#!/bin/sh
# tests/e2e/2003-shard-replication.sh - --shard.replication-factor=2 over 3
# leaves and 300 synthetic targets: every target is scraped by exactly 2
# live leaves, each leaf labels what it serves with leaf_replica=<host:port>
# (external label, for a central to deduplicate), and after one leaf is
# SIGKILLed every target is still scraped by 2 (the survivors). Then the
# dead leaf comes back with different settings (R=1): the others detect and
# report the mismatch (/api/v1/shard, strata_shard_config_mismatch, log),
# which clears once it runs with the group's settings again.
. "$(dirname "$0")/lib.sh"

N=300
first=$(e2e_ports $N)
e2e_synth targets "$first" $N 3

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 5s
  scrape_timeout: 2s
  external_labels: {site: e2e}
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [$(python3 -c "print(', '.join('\"127.0.0.1:%d\"' % p for p in range($first, $first + $N)))")]
EOF

p0=$(e2e_port)
p1=$(e2e_port)
p2=$(e2e_port)
while [ "$p1" = "$p0" ]; do p1=$(e2e_port); done
while [ "$p2" = "$p0" ] || [ "$p2" = "$p1" ]; do p2=$(e2e_port); done
peers="http://127.0.0.1:$p0,http://127.0.0.1:$p1,http://127.0.0.1:$p2"

start_leaf() {
	# $1: index, $2: port, $3: replication factor
	e2e_start "leaf$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$2" --storage.tsdb.path="$E2E_DIR/data$1" \
		--shard.peers="$peers" --shard.self="http://127.0.0.1:$2" \
		--shard.replication-factor="$3" --shard.hold-down=3s
}
start_leaf 0 "$p0" 2
start_leaf 1 "$p1" 2
start_leaf 2 "$p2" 2
pid2=$E2E_LAST_PID
for p in $p0 $p1 $p2; do
	e2e_wait_http "http://127.0.0.1:$p/-/ready"
done

# owned_by R PORT...: every target active and up on exactly R of PORTs.
owned_by() {
	python3 - "$N" "$@" <<'PY'
import json, sys, urllib.request
n, r, ports = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
seen = {}
for p in ports:
    d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/targets" % p, timeout=10))["data"]
    for t in d["activeTargets"]:
        assert t["health"] == "up", "leaf %s: %s is %s" % (p, t["scrapeUrl"], t["health"])
        a = t["discoveredLabels"]["__address__"]
        seen[a] = seen.get(a, 0) + 1
assert len(seen) == n, "%d of %d targets owned" % (len(seen), n)
bad = {a: c for a, c in seen.items() if c != r}
assert not bad, "%d targets not owned by %d leaves, e.g. %s" % (len(bad), r, list(bad.items())[:3])
PY
}
e2e_until 30 owned_by 2 $p0 $p1 $p2 || owned_by 2 $p0 $p1 $p2 || e2e_fail "R=2 with 3 leaves"
e2e_log "every target scraped by exactly 2 of 3 leaves"

# The replica label: in /api/v1/shard and on every federated series.
for p in $p0 $p1 $p2; do
	python3 - "$p" <<'PY' || e2e_fail "replica label of leaf $p"
import json, sys, urllib.request
p = sys.argv[1]
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/shard" % p, timeout=10))["data"]
assert d["replicationFactor"] == 2, d
assert d["replicaLabel"] == {"name": "leaf_replica", "value": "127.0.0.1:%s" % p}, d["replicaLabel"]
assert sum(m["targetsOwned"] for m in d["members"]) == 600, d["members"]
assert d["targetsOwned"] == [m for m in d["members"] if m["self"]][0]["targetsOwned"], d
fed = urllib.request.urlopen("http://127.0.0.1:%s/federate?match[]=up" % p, timeout=10).read().decode()
lines = [l for l in fed.splitlines() if l.startswith("up{")]
assert lines, fed[:300]
for l in lines:
    assert 'leaf_replica="127.0.0.1:%s"' % p in l and 'site="e2e"' in l, l
PY
done

# One of three dies: the two survivors each scrape every target.
kill -9 "$pid2"
e2e_until 30 owned_by 2 $p0 $p1 || owned_by 2 $p0 $p1 || e2e_fail "R=2 after a leaf died"
e2e_log "after SIGKILL of one leaf, every target still scraped by 2"

# It returns with different settings: the group notices.
start_leaf 2 "$p2" 1
pid2=$E2E_LAST_PID
e2e_wait_http "http://127.0.0.1:$p2/-/ready"
mismatch() {
	# $1: port, $2: expected mismatching peers
	python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
p, want = sys.argv[1], int(sys.argv[2])
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/shard" % p, timeout=10))["data"]
assert d["configMismatch"] == want, d["configMismatch"]
if want:
    assert any(r.startswith("shard settings differ from") for r in d["degradedReasons"]), d["degradedReasons"]
    assert any(m["fingerprintMatch"] is False for m in d["members"]), d["members"]
m = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % p, timeout=10).read().decode()
assert "\nstrata_shard_config_mismatch %d\n" % want in m
PY
}
e2e_until 20 mismatch $p0 1 || mismatch $p0 1 || e2e_fail "leaf 0 did not report the mismatch"
e2e_until 20 mismatch $p2 2 || mismatch $p2 2 || e2e_fail "the odd leaf did not report the mismatch"
grep -q 'shard settings differ' "$E2E_DIR/leaf0.log" || e2e_fail "no mismatch log line on leaf 0"
e2e_log "mismatched settings reported"

# Back with the group's settings: the mismatch clears, R=2 over 3 again.
kill "$pid2"
wait "$pid2" 2>/dev/null || true
start_leaf 2 "$p2" 2
e2e_wait_http "http://127.0.0.1:$p2/-/ready"
e2e_until 20 mismatch $p0 0 || mismatch $p0 0 || e2e_fail "the mismatch did not clear"
e2e_until 30 owned_by 2 $p0 $p1 $p2 || owned_by 2 $p0 $p1 $p2 || e2e_fail "R=2 after the return"
grep -q 'shard settings agree with the peer again' "$E2E_DIR/leaf0.log" || e2e_fail "no agreement log line on leaf 0"
e2e_log "ok"
