#!/bin/sh
# tests/e2e/2001-shard-static.sh - static hashmod shards: 3 leaves share 300
# synthetic targets with --shard.count=3 --shard.index=I. Each leaf's active
# targets are exactly those whose MD5 hashmod of __address__ (computed here
# in Python, independently of strata) is its index, every target is owned
# exactly once, the others are listed as dropped, /api/v1/shard and the
# strata_shard_* metrics agree, strata-tool shard owner agrees, and bad
# --shard.* flags are refused at start-up with a clear message.
. "$(dirname "$0")/lib.sh"

N=300
first=$(e2e_ports $N)
e2e_synth targets "$first" $N 3

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [$(python3 -c "print(', '.join('\"127.0.0.1:%d\"' % p for p in range($first, $first + $N)))")]
EOF

# Configuration mistakes: refused before anything starts, exit status != 0.
bad() {
	want=$1
	shift
	if "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	    --web.listen-address=127.0.0.1:0 "$@" >"$E2E_DIR/bad.out" 2>&1; then
		e2e_fail "strata-leaf $* started"
	fi
	grep -qF -- "$want" "$E2E_DIR/bad.out" || e2e_fail "strata-leaf $*: want \"$want\", got: $(cat "$E2E_DIR/bad.out")"
}
bad "--shard.index=3 is out of range for --shard.count=3 (want 0 to 2)" --shard.count=3 --shard.index=3
bad "--shard.count must be at least 1, got 0" --shard.count=0
bad "cannot be combined with --shard.count or --shard.index" --shard.count=2 \
	--shard.peers=http://127.0.0.1:1,http://127.0.0.1:2 --shard.self=http://127.0.0.1:1
bad "--shard.replication-factor=2 needs dynamic sharding" --shard.count=2 --shard.replication-factor=2
bad "--shard.peers: duplicate member http://127.0.0.1:1 (entries 1 and 3)" \
	--shard.peers=http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:1/ --shard.self=http://127.0.0.1:1
bad "--shard.self http://127.0.0.1:3 is not in --shard.peers" \
	--shard.peers=http://127.0.0.1:1,http://127.0.0.1:2 --shard.self=http://127.0.0.1:3
bad "--shard.replication-factor=3 is larger than the group (2 members" \
	--shard.peers=http://127.0.0.1:1,http://127.0.0.1:2 --shard.self=http://127.0.0.1:1 --shard.replication-factor=3
bad "--shard.peers: invalid URL \"127.0.0.1:2\"" \
	--shard.peers=http://127.0.0.1:1,127.0.0.1:2 --shard.self=http://127.0.0.1:1
bad "--shard.peers needs --shard.self" --shard.peers=http://127.0.0.1:1

ports=""
for i in 0 1 2; do
	p=$(e2e_port)
	ports="$ports $p"
	e2e_start "leaf$i" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$p" --storage.tsdb.path="$E2E_DIR/data$i" \
		--shard.count=3 --shard.index=$i
done
for p in $ports; do
	e2e_wait_http "http://127.0.0.1:$p/-/ready"
done

# check_static PORT... : every leaf's active set equals the MD5 computation,
# each target owned once, all owned targets up.
check_static() {
	python3 - "$N" "$first" "$@" <<'PY'
import hashlib, json, sys, urllib.request
n, first, ports = int(sys.argv[1]), int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
def hashmod(s, mod):
    return int.from_bytes(hashlib.md5(s.encode()).digest()[8:16], "big") % mod
addrs = ["127.0.0.1:%d" % p for p in range(first, first + n)]
seen = {}
for idx, port in enumerate(ports):
    d = json.load(urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % port, timeout=10))["data"]
    act = [t["discoveredLabels"]["__address__"] for t in d["activeTargets"]]
    want = {a for a in addrs if hashmod(a, 3) == idx}
    assert set(act) == want, "leaf %d: %d active, want %d; extra %s missing %s" % (
        idx, len(act), len(want), sorted(set(act) - want)[:3], sorted(want - set(act))[:3])
    assert len(act) == len(want), "leaf %d lists a target twice" % idx
    down = [t["scrapeUrl"] for t in d["activeTargets"] if t["health"] != "up"]
    assert not down, "leaf %d: not up: %s" % (idx, down[:3])
    drop = {t["discoveredLabels"]["__address__"] for t in d["droppedTargets"]}
    assert drop == set(addrs) - want, "leaf %d: dropped %d, want %d" % (idx, len(drop), n - len(want))
    for a in act:
        seen[a] = seen.get(a, 0) + 1
assert sorted(seen) == sorted(addrs), "not every target owned: %d of %d" % (len(seen), n)
assert all(c == 1 for c in seen.values()), "owned twice: %s" % [a for a, c in seen.items() if c > 1][:3]
PY
}
# shellcheck disable=SC2086
e2e_until 30 check_static $ports || check_static $ports || e2e_fail "static ownership"
e2e_log "each leaf scrapes exactly its hashmod share of $N targets"

# /api/v1/shard and /metrics: mode, index, counts, a fingerprint shared by
# the group (the index is not part of it).
# shellcheck disable=SC2086
python3 - "$N" "$first" $ports <<'PY' || e2e_fail "/api/v1/shard or metrics"
import hashlib, json, sys, urllib.request
n, first, ports = int(sys.argv[1]), int(sys.argv[2]), [int(p) for p in sys.argv[3:]]
def hashmod(s, mod):
    return int.from_bytes(hashlib.md5(s.encode()).digest()[8:16], "big") % mod
per = [0, 0, 0]
for p in range(first, first + n):
    per[hashmod("127.0.0.1:%d" % p, 3)] += 1
fps = set()
for idx, port in enumerate(ports):
    r = json.load(urllib.request.urlopen("http://127.0.0.1:%d/api/v1/shard" % port, timeout=10))
    assert r["status"] == "success", r
    d = r["data"]
    assert d["mode"] == "static" and d["shardCount"] == 3 and d["shardIndex"] == idx, d
    assert d["targets"] == n and d["targetsOwned"] == per[idx], d
    assert abs(d["share"] - per[idx] / n) < 1e-9, d
    assert [m["targetsOwned"] for m in d["members"]] == per, d["members"]
    assert d["degradedReasons"] == [] and d["configMismatch"] == 0, d
    fps.add(d["fingerprint"])
    m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
    assert "\nstrata_shard_targets_owned %d\n" % per[idx] in m, m
    assert "\nstrata_shard_targets %d\n" % n in m
    assert 'strata_shard_info{mode="static",fingerprint="%s"} 1' % d["fingerprint"] in m
assert len(fps) == 1, fps
PY

# strata-tool shard owner computes the same indexes.
python3 -c "
for p in range($first, $first + $N): print('127.0.0.1:%d' % p)" |
	"$STRATA_BUILDDIR/strata-tool" shard owner --count 3 >"$E2E_DIR/owners.txt" ||
	e2e_fail "strata-tool shard owner"
python3 - "$E2E_DIR/owners.txt" <<'PY' || e2e_fail "strata-tool shard owner disagrees with MD5"
import hashlib, sys
rows = [l.split() for l in open(sys.argv[1])]
assert len(rows) == 300, len(rows)
for a, i in rows:
    assert int.from_bytes(hashlib.md5(a.encode()).digest()[8:16], "big") % 3 == int(i), (a, i)
PY
e2e_log "ok"
