#!/bin/sh
# tests/e2e/3001-central-pair-ha.sh - the central pair behind HAProxy.
#
# Two strata-leaf shards (--shard.count=2) scrape 8 synthetic targets; a
# pair of strata-central replicas (examples/central-a.yml and -b.yml,
# intervals shortened) federate from both leaves, evaluate the recording
# rules of examples/central-rules.yml (a sum of up and a rate aggregate)
# and point --peer.url at each other; a real HAProxy with
# examples/haproxy.cfg (ports rewritten) is in front. A client queries
# count(up) through HAProxy every 0.2 s while replica a is SIGKILLed, stays
# dead for 60 s and restarts on the same data directory.
#
# Asserted: before the kill, each replica holds one contiguous range from
# the pair's first instant (ready means whole: losing either replica from
# then on loses nothing); no query through HAProxy fails; the restarted
# replica reports not ready (503) until it has repaired its gap from b,
# then ready; within 2 minutes of the restart both replicas hold identical
# samples, sample for sample, for the raw federated series (what the
# leaves serve, job="synth") and the recorded aggregates from 30 s before
# the kill to 30 s after the restart (each replica's own range query at a
# fixed time); /api/v1/peer and /metrics report the repair.
#
# Each replica's own observations (up, scrape_* of its federation job,
# job="federate") describe its own pulls and are not made equal
# (docs/central.md): they are compared only strictly inside the downtime,
# where the restarted replica holds its peer's, copied.
. "$(dirname "$0")/lib.sh"
src=${STRATA_SRCDIR:?run through make e2e}
command -v haproxy >/dev/null || { e2e_log "haproxy not installed"; exit 77; }

N=8
first=$(e2e_ports $N)
p=$(e2e_ports 5)
l0=$((p + 0)) l1=$((p + 1)) pa=$((p + 2)) pb=$((p + 3)) pf=$((p + 4))
A="http://127.0.0.1:$pa" B="http://127.0.0.1:$pb" F="http://127.0.0.1:$pf"
e2e_synth targets "$first" $N 60

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [$(python3 -c "import sys; f = int(sys.argv[1]); print(', '.join('\"127.0.0.1:%d\"' % p for p in range(f, f + $N)))" "$first")]
EOF
for i in 0 1; do
	port=$([ $i = 0 ] && echo "$l0" || echo "$l1")
	e2e_start "leaf$i" "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$E2E_DIR/leaf$i" \
		--shard.count=2 --shard.index=$i
done

# The examples, with the test's ports and shorter intervals (pulls every
# 2 s: the evaluation delay is 15 s of settling + 2 s + 1 s).
cp "$src/examples/central-rules.yml" "$E2E_DIR/central-rules.yml"
for r in a b; do
	sed -e "s/127.0.0.1:9101/127.0.0.1:$l0/; s/127.0.0.1:9102/127.0.0.1:$l1/" \
		-e 's/scrape_interval: 5s/scrape_interval: 2s/; s/scrape_timeout: 4s/scrape_timeout: 1s/' \
		"$src/examples/central-$r.yml" >"$E2E_DIR/central-$r.yml"
done
grep -q "127.0.0.1:$l1" "$E2E_DIR/central-b.yml" || e2e_fail "examples/central-b.yml changed shape"
sed -e "s/127.0.0.1:9090/127.0.0.1:$pf/; s/127.0.0.1:9201/127.0.0.1:$pa/; s/127.0.0.1:9202/127.0.0.1:$pb/" \
	"$src/examples/haproxy.cfg" >"$E2E_DIR/haproxy.cfg"
haproxy -c -q -f "$E2E_DIR/haproxy.cfg" || e2e_fail "haproxy refuses examples/haproxy.cfg"

start_central() {
	# $1: a or b
	if [ "$1" = a ]; then port=$pa peer=$B; else port=$pb peer=$A; fi
	e2e_start "central-$1" "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central-$1.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$E2E_DIR/data-$1" \
		--peer.url="$peer"
}
e2e_wait_http "http://127.0.0.1:$l0/-/ready"
e2e_wait_http "http://127.0.0.1:$l1/-/ready"
start_central a
pid_a=$E2E_LAST_PID
start_central b
e2e_start haproxy haproxy -f "$E2E_DIR/haproxy.cfg" -db
e2e_wait_http "$A/-/ready" 90
e2e_wait_http "$B/-/ready" 90
e2e_wait_http "$F/-/ready" 30

# Both replicas pull and evaluate their rules.
have() {
	# $1: base URL, $2: query; true when the instant query returns samples
	curl -sfg --max-time 5 "$1/api/v1/query" --data-urlencode "query=$2" |
		python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'
}
for u in "$A" "$B"; do
	e2e_until 90 have "$u" 'job:synth_requests:rate30s' || e2e_fail "$u evaluates no rules"
	e2e_until 30 have "$u" 'count(up{job="synth"}) == 8' || e2e_fail "$u lacks the leaves' series"
done
sleep 10

# Ready means whole: each replica holds one range from the pair's first
# instant (the later one copied the earlier one's head start before it
# reported ready), so the window checked below, from 30 s before the kill,
# is held by the survivor. (A few seconds: a heartbeat may be due.)
whole() {
	python3 - "$A" "$B" <<'PY'
import json, sys, time, urllib.request
cov = [json.load(urllib.request.urlopen(u + "/api/v1/peer", timeout=10))["data"]["coverage"]
       for u in sys.argv[1:3]]
now = time.time() * 1000
assert all(len(c) == 1 for c in cov), cov
assert cov[0][0]["startMs"] == cov[1][0]["startMs"] <= now - 35000, cov
PY
}
e2e_until 5 whole || whole || e2e_fail "the pair is ready but not whole: $(curl -s "$A/api/v1/peer"; curl -s "$B/api/v1/peer")"

# The client: count(up) through HAProxy every 0.2 s until told to stop.
cat >"$E2E_DIR/client.py" <<'PY'
import json, os, sys, time, urllib.request, urllib.error
url, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
ok, failures, t_end = 0, [], time.time() + 600
while not os.path.exists(stop) and time.time() < t_end:
    t = time.time()
    try:
        with urllib.request.urlopen(url + "/api/v1/query?query=count(up)", timeout=10) as r:
            d = json.load(r)
            if r.status != 200 or d.get("status") != "success" or not d["data"]["result"]:
                failures.append("%.3f: %s %s" % (t, r.status, d))
            else:
                ok += 1
    except Exception as e:
        failures.append("%.3f: %r" % (t, e))
    time.sleep(max(0, 0.2 - (time.time() - t)))
json.dump({"ok": ok, "failures": failures}, open(out, "w"))
PY
e2e_start client python3 "$E2E_DIR/client.py" "$F" "$E2E_DIR/client.stop" "$E2E_DIR/client.json"

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
sleep 3
kill_ms=$(now_ms)
kill -9 "$pid_a"
killed_ms=$(now_ms)	# a's last sample is stamped before this
e2e_log "replica a SIGKILLed; restarting it in 60 s"
sleep 60
restart_ms=$(now_ms)
start_central a

# Not ready while it repairs, then ready.
first_status=""
i=0
while [ "$i" -lt 600 ]; do
	s=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$A/-/ready" || true)
	[ -z "$first_status" ] && [ "$s" != 000 ] && first_status=$s
	[ "$s" = 200 ] && break
	sleep 0.2
	i=$((i + 1))
done
[ "$s" = 200 ] || e2e_fail "restarted replica a not ready after 120 s: $(curl -s "$A/api/v1/peer")"
ready_ms=$(now_ms)
[ "$first_status" = 503 ] || e2e_fail "restarted replica a answered /-/ready $first_status before repairing"
curl -s "$A/-/ready" >/dev/null
e2e_log "replica a ready $((ready_ms - restart_ms)) ms after its restart (503 until then)"

# Identical samples: each replica's own range query at a fixed time over
# [kill - 30 s, restart + 30 s], for the raw series and the aggregates,
# once both replicas say they hold the window completely.
cat >"$E2E_DIR/compare.py" <<'PY'
import json, sys, time, urllib.parse, urllib.request
A, B, lo, hi, deadline = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
kill, restart = int(sys.argv[6]), int(sys.argv[7])
def get(base, path, **q):
    u = base + path + ("?" + urllib.parse.urlencode(q) if q else "")
    with urllib.request.urlopen(u, timeout=30) as r:
        return json.load(r)["data"]
def holds(base):
    return any(r["startMs"] <= lo and r["endMs"] >= hi for r in get(base, "/api/v1/peer")["coverage"])
def samples(base, sel):
    w = "%dms" % (hi - lo)
    res = get(base, "/api/v1/query", query="%s[%s]" % (sel, w), time="%.3f" % (hi / 1000.0))["result"]
    return {json.dumps(s["metric"], sort_keys=True): s["values"] for s in res}
def compare():
    diffs, n = [], {}
    for sel in ('{job="synth"}', '{__name__=~"job:.+"}', '{job="federate"}'):
        sa, sb = samples(A, sel), samples(B, sel)
        if sel == '{job="federate"}':
            # each replica's own pulls: only the downtime, which a holds
            # from b; elsewhere both hold their own
            inside = lambda vs: [v for v in vs if kill < v[0] * 1000 < restart]
            sa = {k: inside(v) for k, v in sa.items() if inside(v)}
            sb = {k: inside(v) for k, v in sb.items() if inside(v)}
            if not sa or not sb:
                diffs.append("%s: no samples inside the downtime (a %d series, b %d)" % (sel, len(sa), len(sb)))
                continue
        n[sel] = (len(sa), sum(len(v) for v in sa.values()))
        if sa.keys() != sb.keys():
            diffs.append("%s: series only on a: %s, only on b: %s" % (
                sel, sorted(sa.keys() - sb.keys())[:3], sorted(sb.keys() - sa.keys())[:3]))
            continue
        for k in sa:
            if sa[k] != sb[k]:
                va, vb = dict(map(tuple, sa[k])), dict(map(tuple, sb[k]))
                d = sorted(set(va.items()) ^ set(vb.items()))[:4]
                diffs.append("%s: %d vs %d samples, first differences %s" % (k, len(va), len(vb), d))
    return diffs, n
why, covered = "", False
while time.time() < deadline:
    covered = holds(A) and holds(B)
    if not covered:
        why = "coverage: a %s, b %s" % (get(A, "/api/v1/peer")["coverage"], get(B, "/api/v1/peer")["coverage"])
        time.sleep(1)
        continue
    diffs, n = compare()
    if not diffs:
        assert n['{__name__=~"job:.+"}'][0] == 2, n
        print("identical: %s" % "; ".join("%s %d series %d samples" % (s, a, b) for s, (a, b) in n.items()))
        sys.exit(0)
    why = "; ".join(diffs[:5])
    time.sleep(2)
if not covered:	# say whether the samples differ too
    diffs, _ = compare()
    why += "; samples: " + ("; ".join(diffs[:5]) if diffs else "identical in the window")
print("not identical before the deadline: " + why)
sys.exit(1)
PY
lo=$((kill_ms - 30000))
hi=$((restart_ms + 30000))
deadline=$(python3 -c "print($restart_ms / 1000 + 120)")
python3 "$E2E_DIR/compare.py" "$A" "$B" "$lo" "$hi" "$deadline" "$killed_ms" "$restart_ms" >"$E2E_DIR/compare.txt" ||
	e2e_fail "$(cat "$E2E_DIR/compare.txt")"
same_ms=$(now_ms)
e2e_log "$(cat "$E2E_DIR/compare.txt")"
e2e_log "identical $((same_ms - restart_ms)) ms after the restart (window: 30 s before the kill to 30 s after the restart)"

# What the replicas report.
python3 - "$A" "$B" <<'PY' || e2e_fail "/api/v1/peer or /metrics after the repair"
import json, sys, urllib.request
A, B = sys.argv[1], sys.argv[2]
def get(u):
    return urllib.request.urlopen(u, timeout=10).read().decode()
a, b = json.loads(get(A + "/api/v1/peer"))["data"], json.loads(get(B + "/api/v1/peer"))["data"]
assert a["state"] == "ok" and a["synced"] and a["syncedReason"] == "caught up with the peer", a
assert a["samplesRepaired"] > 0 and a["rangesRepaired"] >= 1 and a["repairFailures"] == 0, a
assert a["recentRepairs"] and a["fingerprint"] == b["fingerprint"] == a["peerFingerprint"], a
assert b["state"] == "ok" and b["synced"], b
m = get(A + "/metrics")
assert "\nstrata_peer_up 1\n" in m and "\nstrata_peer_synced 1\n" in m
assert [l for l in m.splitlines() if l.startswith("strata_peer_samples_repaired_total ")][0].split()[1] != "0"
print("a repaired %d samples in %d ranges" % (a["samplesRepaired"], a["rangesRepaired"]))
PY

touch "$E2E_DIR/client.stop"
e2e_until 15 test -f "$E2E_DIR/client.json" || e2e_fail "client did not stop"
python3 - "$E2E_DIR/client.json" <<'PY' || e2e_fail "queries through HAProxy failed: $(head -c 2000 "$E2E_DIR/client.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert not d["failures"], d["failures"][:5]
assert d["ok"] > 300, d["ok"]
print("%d queries through HAProxy, none failed" % d["ok"])
PY
e2e_log "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$E2E_DIR/client.json") queries through HAProxy during the kill, outage and repair: none failed"
e2e_log "ok"
