#!/bin/sh
# tests/e2e/3201-central-dedup.sh - deduplication on the central: two
# leaves in dynamic shard mode with --shard.replication-factor=2 both
# scrape every synthetic target and label what they serve with
# leaf_replica=<host:port>; one strata-central federates from both (lossless
# pulls) with --dedup.replica-label=leaf_replica (the default). The central
# holds each target's series once, without the replica label, and
# count(up{job="synth"}) is the number of targets. Then the leaf whose
# samples the central stores for a target is SIGKILLed: the central's
# series go on from the other leaf with no gap longer than two scrape
# intervals, and rate() of the synthetic counters over windows that hold
# the switch stays within a few percent of their known rates and of the
# surviving leaf's own rate(). A second central, started 15 s after the
# first (no peer: no gap repair between them), stores the same samples bit
# for bit, before and across the switch.
. "$(dirname "$0")/lib.sh"

N=8
S=2	# leaf scrape interval, seconds
first=$(e2e_ports $N)
e2e_synth targets "$first" $N 60

p0=$(e2e_port)
p1=$(e2e_port)
pc=$(e2e_port)
pd=$(e2e_port)
peers="http://127.0.0.1:$p0,http://127.0.0.1:$p1"
central="http://127.0.0.1:$pc"
central2="http://127.0.0.1:$pd"

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: ${S}s
  scrape_timeout: 1s
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [$(python3 -c "import sys; f, n = int(sys.argv[1]), int(sys.argv[2]); print(', '.join('\"127.0.0.1:%d\"' % p for p in range(f, f + n)))" "$first" "$N")]
EOF
cat >"$E2E_DIR/central.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 1500ms
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job="synth"}']
    static_configs:
      - targets: ["127.0.0.1:$p0", "127.0.0.1:$p1"]
EOF

start_leaf() {
	# $1: index, $2: port
	e2e_start "leaf$1" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$2" --storage.tsdb.path="$E2E_DIR/data$1" \
		--shard.peers="$peers" --shard.self="http://127.0.0.1:$2" \
		--shard.replication-factor=2 --shard.hold-down=3s
}
start_leaf 0 "$p0"
pid0=$E2E_LAST_PID
start_leaf 1 "$p1"
pid1=$E2E_LAST_PID
e2e_start central "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central.yml" \
	--web.listen-address="127.0.0.1:$pc" --storage.tsdb.path="$E2E_DIR/central-data" \
	--dedup.replica-label=leaf_replica
for u in "http://127.0.0.1:$p0" "http://127.0.0.1:$p1" "$central"; do
	e2e_wait_http "$u/-/ready"
done
sleep 15
e2e_start central2 "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central.yml" \
	--web.listen-address="127.0.0.1:$pd" --storage.tsdb.path="$E2E_DIR/central2-data"
e2e_wait_http "$central2/-/ready"

# Each target's series once, without the replica label.
once() {
	python3 - "$central" "http://127.0.0.1:$p0" "$N" <<'PY'
import json, sys, urllib.parse, urllib.request
central, leaf, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def q(base, expr):
    u = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    d = json.load(urllib.request.urlopen(u, timeout=10))
    assert d["status"] == "success", d
    return d["data"]["result"]
up = q(central, 'count(up{job="synth"})')
assert up and int(float(up[0]["value"][1])) == n, ("count(up)", up)
assert q(central, 'count({job="synth", leaf_replica!=""})') == [], "replica label stored"
per = q(central, 'count by (instance) ({job="synth"})')
ref = q(leaf, 'count by (instance) ({job="synth"})')
assert len(per) == n and len(ref) == n, (len(per), len(ref))
want = {r["metric"]["instance"]: r["value"][1] for r in ref}
got = {r["metric"]["instance"]: r["value"][1] for r in per}
assert got == want, ("series per target", got, want)
PY
}
e2e_until 60 once || once || e2e_fail "the central does not hold each series once"
e2e_log "each target's series once on the central, count(up{job=\"synth\"}) = $N"

# The elected leaf is the one with the smaller label value (both are live
# from the start). Both leaves scrape a target in the same slot and stamp
# the same timestamps, but read the synthetic target's clock-driven values
# a few ms apart: the samples where the two leaves' values differ tell
# whose samples the central stored. Kill that leaf.
leader=$(python3 - "$central" "http://127.0.0.1:$p0" "http://127.0.0.1:$p1" "127.0.0.1:$first" "127.0.0.1:$p0" "127.0.0.1:$p1" <<'PY'
import json, sys, time, urllib.parse, urllib.request
central, l0, l1, inst, v0, v1 = sys.argv[1:7]
def samples(base, t):
    # {(series without leaf_replica, timestamp): value} of one target, 60 s
    u = base + "/api/v1/query?" + urllib.parse.urlencode(
        {"query": '{job="synth",instance="%s"}[60s]' % inst, "time": "%.3f" % t})
    out = {}
    for s in json.load(urllib.request.urlopen(u, timeout=10))["data"]["result"]:
        m = dict(s["metric"])
        m.pop("leaf_replica", None)
        k = json.dumps(m, sort_keys=True)
        for ts, v in s["values"]:
            out[(k, ts)] = v
    return out
want = 0 if v0 < v1 else 1
why = "no samples"
for _ in range(60):
    t = time.time() - 20
    c, a, b = samples(central, t), samples(l0, t), samples(l1, t)
    votes, other = [0, 0], []
    for key, v in c.items():
        if key not in a and key not in b:
            other.append(("on neither leaf", key, v))
        elif a.get(key) != b.get(key):
            if v == a.get(key):
                votes[0] += 1
            elif v == b.get(key):
                votes[1] += 1
            else:
                other.append(("neither leaf's value", key, v, a.get(key), b.get(key)))
    assert not other, other[:3]
    if len(c) >= 60 * 10 and sum(votes) >= 20:
        assert votes[1 - want] == 0, ("not the smaller label's samples", votes, want)
        print("central %d samples: %d the smaller label's where the leaves differ, %d the other's"
              % (len(c), votes[want], votes[1 - want]), file=sys.stderr)
        print(want)
        sys.exit(0)
    why = "%d samples on the central, %d/%d where the leaves differ" % (len(c), votes[0], votes[1])
    time.sleep(1)
sys.exit("cannot tell which leaf the central follows: " + why)
PY
) || e2e_fail "the central does not follow the leaf with the smaller label"
if [ "$leader" = 0 ]; then victim=$pid0 survivor=$p1; else victim=$pid1 survivor=$p0; fi
sleep 10	# the rate windows checked below start 40 s before the kill
e2e_log "the central follows leaf $leader (the smaller label): SIGKILL it"
kill_t=$(python3 -c 'import time; print("%.3f" % time.time())')
kill -9 "$victim"

# The takeover waits for the dead leaf's data to be complete (its settle
# time, about 15 s + a pull, plus 2.5 scrape intervals); then check a
# window that holds the switch, once both centrals store every series up
# to its end (the survivor's samples come 15 s + a pull late).
complete() {
	python3 - "$central" "$central2" "$kill_t" <<'PY'
import json, sys, urllib.parse, urllib.request
kill_t = float(sys.argv[3])
for base in sys.argv[1:3]:
    u = base + "/api/v1/query?" + urllib.parse.urlencode(
        {"query": '{job="synth"}[55s]', "time": "%.3f" % (kill_t + 15)})
    r = json.load(urllib.request.urlopen(u, timeout=20))["data"]["result"]
    assert r and all(float(s["values"][-1][0]) > kill_t + 12 for s in r)
PY
}
e2e_until 120 complete || e2e_log "the centrals' series do not reach 15 s after the kill within 120 s"
python3 - "$central" "http://127.0.0.1:$survivor" "$first" "$N" "$kill_t" "$S" <<'PY' || e2e_fail "series or rates after the failover"
import json, sys, urllib.parse, urllib.request
central, survivor, first, n, kill_t, S = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
def q(base, expr, t):
    u = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": "%.3f" % t})
    d = json.load(urllib.request.urlopen(u, timeout=20))
    assert d["status"] == "success", d
    return d["data"]["result"]
# 1. no gap beyond two scrape intervals in any series, 40 s before the kill to 15 s after
t_end = kill_t + 15
raw = q(central, '{job="synth"}[55s]', t_end)
assert len(raw) >= n * 60, len(raw)
worst = (0, None)
for s in raw:
    ts = [float(v[0]) for v in s["values"]]
    assert ts[-1] > kill_t + 5, ("series stops at the kill", s["metric"], ts[-1] - kill_t)
    for a, b in zip(ts, ts[1:]):
        if b - a > worst[0]:
            worst = (b - a, s["metric"])
assert worst[0] <= 2 * S + 0.5, ("gap", worst)
print("largest gap %.3fs over %d series" % (worst[0], len(raw)))
# 2. rate() of the synthetic counters: 1 + (seed + target) % 50 per second
#    (tests/bench/synth_targets.c: series i = 50 + j of family 1, seed i * 2654435761)
bad = []
checked = 0
worst_rel = 0.0
# the dead leaf's last pulled sample is about 16 s before the kill: these
# 30 s windows hold the switch
for t in (kill_t - 10, kill_t, kill_t + 10):
    got = q(central, 'rate(synth_requests_1_total[30s])', t)
    ref = {json.dumps(r["metric"], sort_keys=True): float(r["value"][1])
           for r in q(survivor, 'rate(synth_requests_1_total[30s])', t)}
    assert len(got) == n * 10, (len(got), t - kill_t)
    for r in got:
        m = r["metric"]
        tgt = int(m["instance"].rsplit(":", 1)[1]) - first
        h = int(m["handler"].rsplit("h", 1)[1])
        j = h * 5 + (int(m["code"]) - 200) // 100
        assert (j % 2 == 1) == (m["method"] == "POST"), m
        seed = ((50 + j) * 2654435761) % (1 << 32)
        truth = 1 + ((seed + tgt) % (1 << 32)) % 50
        v = float(r["value"][1])
        key = json.dumps(m, sort_keys=True)
        checked += 1
        worst_rel = max(worst_rel, abs(v - truth) / truth)
        if abs(v - truth) > 0.05 * truth:
            bad.append(("truth", t - kill_t, m, v, truth))
        if key in ref and abs(v - ref[key]) > 0.05 * ref[key]:
            bad.append(("survivor", t - kill_t, m, v, ref[key]))
assert not bad, bad[:5]
print("rate() of %d counters within 5%% of the truth and of the surviving leaf (worst %.2f%%)"
      % (checked, 100 * worst_rel))
PY
# The second central holds the same samples (it starts with the leaves'
# last 5 minutes), before and across the switch.
python3 - "$central" "$central2" "$kill_t" <<'PY' || e2e_fail "the two centrals differ"
import json, sys, urllib.parse, urllib.request
c1, c2, kill_t = sys.argv[1], sys.argv[2], float(sys.argv[3])
def raw(base):
    u = base + "/api/v1/query?" + urllib.parse.urlencode(
        {"query": '{job="synth"}[60s]', "time": "%.3f" % (kill_t + 15)})
    r = json.load(urllib.request.urlopen(u, timeout=20))["data"]["result"]
    return {json.dumps(s["metric"], sort_keys=True): s["values"] for s in r}
a, b = raw(c1), raw(c2)
assert a.keys() == b.keys(), (len(a), len(b), sorted(a.keys() ^ b.keys())[:3])
diff = [k for k in a if a[k] != b[k]]
assert not diff, (len(diff), diff[0], a[diff[0]][:4], b[diff[0]][:4])
print("both centrals: %d series, %d samples, identical" % (len(a), sum(len(v) for v in a.values())))
PY
m=$(e2e_get "$central/metrics")
echo "$m" | grep -q '^strata_dedup_groups [1-9]' || e2e_fail "strata_dedup_groups"
echo "$m" | grep -q '^strata_dedup_samples_dropped_total [1-9]' || e2e_fail "strata_dedup_samples_dropped_total"
echo "$m" | grep -q '^strata_dedup_switches_total [1-9]' || e2e_fail "no switch after the kill"
e2e_log "ok"
