#!/bin/sh
# tests/e2e/2002-shard-failover.sh - dynamic membership: 3 leaves with the
# same --shard.peers share 300 synthetic targets by rendezvous hashing
# (default probing: every 1s, dead after 3 failures). One leaf is SIGKILLed:
# its targets, and only those, are taken over and scraped by the survivors
# within two scrape intervals (10s scrape interval here); it restarts and, after the hold-down,
# the assignment is again the original one. The owners match
# strata-tool shard owner --peers, and /api/v1/shard and the metrics report
# the dead member.
. "$(dirname "$0")/lib.sh"

N=300
INTERVAL=10
first=$(e2e_ports $N)
e2e_synth targets "$first" $N 3

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: 2s
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
	# $1: index, $2: port
	e2e_start "leaf$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$2" --storage.tsdb.path="$E2E_DIR/data$1" \
		--shard.peers="$peers" --shard.self="http://127.0.0.1:$2" --shard.hold-down=5s
}
start_leaf 0 "$p0"
start_leaf 1 "$p1"
pid1=$E2E_LAST_PID
start_leaf 2 "$p2"
for p in $p0 $p1 $p2; do
	e2e_wait_http "http://127.0.0.1:$p/-/ready"
done

# snapshot OUT PORT...: writes {port: [active addresses]} with every target
# up, each owned exactly once among PORTs and all N owned; fails otherwise.
snapshot() {
	out=$1
	shift
	python3 - "$N" "$out" "$@" <<'PY'
import json, sys, urllib.request
n, out, ports = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
res, seen = {}, {}
for p in ports:
    d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/targets" % p, timeout=10))["data"]
    act = d["activeTargets"]
    assert all(t["health"] == "up" for t in act), "leaf %s: not all up" % p
    res[p] = sorted(t["discoveredLabels"]["__address__"] for t in act)
    for a in res[p]:
        seen[a] = seen.get(a, 0) + 1
assert len(seen) == n and all(c == 1 for c in seen.values()), \
    "%d owned, %d owned twice" % (len(seen), sum(c > 1 for c in seen.values()))
json.dump(res, open(out, "w"))
PY
}
e2e_until 30 snapshot "$E2E_DIR/before.json" $p0 $p1 $p2 ||
	snapshot "$E2E_DIR/before.json" $p0 $p1 $p2 || e2e_fail "initial assignment"

# The leaves agree with strata-tool shard owner --peers.
python3 -c "
for p in range($first, $first + $N): print('127.0.0.1:%d' % p)" |
	"$STRATA_BUILDDIR/strata-tool" shard owner --peers "$peers" >"$E2E_DIR/owners.txt" ||
	e2e_fail "strata-tool shard owner --peers"
python3 - "$E2E_DIR/before.json" "$E2E_DIR/owners.txt" <<'PY' || e2e_fail "assignment differs from strata-tool"
import json, sys
before = json.load(open(sys.argv[1]))
owner = dict(l.split() for l in open(sys.argv[2]))
for port, addrs in before.items():
    for a in addrs:
        assert owner[a] == "http://127.0.0.1:%s" % port, (a, owner[a], port)
counts = sorted(len(v) for v in before.values())
assert counts[0] >= 60, counts     # about 100 each
PY
e2e_log "initial shares: $(python3 -c "import json,sys; print({k: len(v) for k, v in json.load(open(sys.argv[1])).items()})" "$E2E_DIR/before.json")"

# SIGKILL leaf 1; the survivors must take over its targets and scrape them.
kill_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
kill -9 "$pid1"
# One Python loop (0.2s steps) measures when a survivor declares the leaf
# dead and when every one of its targets has been scraped by a survivor.
python3 - "$E2E_DIR/before.json" "$p1" "$kill_ms" "$((2 * INTERVAL))" "$p0" "$p2" \
	>"$E2E_DIR/takeover.txt" <<'PY' || e2e_fail "takeover: $(cat "$E2E_DIR/takeover.txt")"
import json, sys, time, urllib.request, datetime
before, dead, kill_ms, window, ports = (json.load(open(sys.argv[1])), sys.argv[2],
    int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:])
lost = set(before[dead])
def get(p, path):
    return json.load(urllib.request.urlopen("http://127.0.0.1:%s%s" % (p, path), timeout=5))["data"]
def ms(t):
    return datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000
detected, why = None, ""
while True:
    now = time.time() * 1000
    if detected is None:
        states = [m["state"] for p in ports for m in get(p, "/api/v1/shard")["members"]
                  if m["url"].endswith(":" + dead)]
        if all(s == "dead" for s in states):
            detected = now - kill_ms
    got = {}
    for p in ports:
        for t in get(p, "/api/v1/targets")["activeTargets"]:
            got[t["discoveredLabels"]["__address__"]] = t
    missing = [a for a in lost if a not in got]
    stale = [a for a in lost if a in got and (got[a]["health"] != "up" or
             ms(got[a]["lastScrape"]) + 1000 < kill_ms)]
    if not missing and not stale and detected is not None:
        print("dead seen by both survivors after %d ms; all %d targets scraped by survivors after %d ms"
              % (detected, len(lost), now - kill_ms))
        sys.exit(0)
    why = "%d not taken over, %d not scraped since the kill, detected: %s" % (
        len(missing), len(stale), detected)
    if now - kill_ms > window * 1000:
        print("not within %ds: %s" % (window, why))
        sys.exit(1)
    time.sleep(0.2)
PY
e2e_log "takeover (window $((2 * INTERVAL))s = 2 scrape intervals): $(cat "$E2E_DIR/takeover.txt")"

snapshot "$E2E_DIR/after.json" $p0 $p2 || e2e_fail "assignment after the kill"
python3 - "$E2E_DIR/before.json" "$E2E_DIR/after.json" "$p1" <<'PY' || e2e_fail "targets of live leaves moved"
import json, sys
before, after, dead = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
for p, addrs in after.items():
    kept, now = set(before[p]), set(addrs)
    assert kept <= now, "leaf %s lost %s" % (p, sorted(kept - now)[:3])
    assert now - kept <= set(before[dead]), "leaf %s gained targets of a live leaf" % p
    assert now - kept, "leaf %s took none of the dead leaf's targets" % p
PY
e2e_log "only the dead leaf's targets moved"

# What the survivors report.
python3 - "$p0" "$p1" <<'PY' || e2e_fail "/api/v1/shard or metrics after the kill"
import json, sys, urllib.request
port, dead = sys.argv[1], sys.argv[2]
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v1/shard" % port, timeout=10))["data"]
assert d["mode"] == "dynamic" and d["membersAlive"] == 2, d
m = {x["url"]: x for x in d["members"]}
x = m["http://127.0.0.1:%s" % dead]
assert x["state"] == "dead" and not x["live"] and x["lastError"] and x["targetsOwned"] == 0, x
assert "1 of 3 members not live" in d["degradedReasons"], d["degradedReasons"]
assert d["ownershipChanges"] >= 1 and d["configMismatch"] == 0, d
assert sum(x["targetsOwned"] for x in d["members"]) == 300, d["members"]
t = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10).read().decode()
assert "\nstrata_shard_members_alive 2\n" in t, t
assert 'strata_shard_member_up{member="http://127.0.0.1:%s"} 0' % dead in t
assert "\nstrata_shard_config_mismatch 0\n" in t
PY

# Restart leaf 1: after the hold-down (5s) the survivors hand its targets back.
start_leaf 1 "$p1"
e2e_wait_http "http://127.0.0.1:$p1/-/ready"
back_t0=$(python3 -c 'import time; print(int(time.time() * 1000))')
returned() {
	snapshot "$E2E_DIR/back.json" $p0 $p1 $p2 &&
		python3 -c "
import json, sys
assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))" "$E2E_DIR/before.json" "$E2E_DIR/back.json"
}
e2e_until 30 returned || e2e_fail "the assignment did not return after the restart"
e2e_log "assignment back to the original $(( $(python3 -c 'import time; print(int(time.time() * 1000))') - back_t0 )) ms after the restarted leaf was ready (hold-down 5s)"
e2e_log "ok"
