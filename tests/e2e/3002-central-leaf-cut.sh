#!/bin/sh
# tests/e2e/3002-central-leaf-cut.sh - a leaf cut off from the central pair.
#
# Two strata-leaf shards scrape 6 synthetic targets; both replicas of the
# central pair (peers of each other, the recording rules of
# examples/central-rules.yml) federate from leaf 1 directly and from leaf 0
# through one TCP proxy. The proxy refuses and cuts every connection for
# 60 s while leaf 0 keeps scraping: a network cut, not a stopped leaf.
#
# Asserted: during the cut both centrals show the leaf's federation target
# down with its error in /api/v1/targets; afterwards both centrals hold
# every sample leaf 0 stored from 10 s before the cut to 10 s after it,
# sample for sample (range queries at a fixed time on the leaf and on each
# replica), the recorded aggregates of the window are the same on both
# replicas, and up{job="federate"} shows the cut on both.
. "$(dirname "$0")/lib.sh"
src=${STRATA_SRCDIR:?run through make e2e}

N=6
first=$(e2e_ports $N)
p=$(e2e_ports 5)
l0=$((p + 0)) l1=$((p + 1)) px=$((p + 2)) pa=$((p + 3)) pb=$((p + 4))
L0="http://127.0.0.1:$l0" A="http://127.0.0.1:$pa" B="http://127.0.0.1:$pb"
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

# A TCP proxy in front of leaf 0: while $E2E_DIR/cut exists it refuses new
# connections and closes open ones.
e2e_start_cut_proxy proxy "$px" "$l0"

cp "$src/examples/central-rules.yml" "$E2E_DIR/central-rules.yml"
for r in a b; do
	sed -e "s/127.0.0.1:9101/127.0.0.1:$px/; s/127.0.0.1:9102/127.0.0.1:$l1/" \
		-e 's/scrape_interval: 5s/scrape_interval: 2s/; s/scrape_timeout: 4s/scrape_timeout: 1s/' \
		"$src/examples/central-$r.yml" >"$E2E_DIR/central-$r.yml"
done
e2e_wait_http "$L0/-/ready"
e2e_wait_http "http://127.0.0.1:$l1/-/ready"
e2e_start central-a "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central-a.yml" \
	--web.listen-address="127.0.0.1:$pa" --storage.tsdb.path="$E2E_DIR/data-a" --peer.url="$B"
e2e_start central-b "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central-b.yml" \
	--web.listen-address="127.0.0.1:$pb" --storage.tsdb.path="$E2E_DIR/data-b" --peer.url="$A"
e2e_wait_http "$A/-/ready" 90
e2e_wait_http "$B/-/ready" 90

have() {
	curl -sfg --max-time 5 "$1/api/v1/query" --data-urlencode "query=$2" |
		python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'
}
for u in "$A" "$B"; do
	e2e_until 90 have "$u" 'job:synth_requests:rate30s' || e2e_fail "$u evaluates no rules"
	e2e_until 30 have "$u" 'count(up{job="synth"}) == 6' || e2e_fail "$u lacks the leaves' series"
done

cut_s=$(date +%s)
touch "$E2E_DIR/cut"
e2e_log "leaf 0 cut off from both centrals for 60 s"
sleep 10
for u in "$A" "$B"; do
	e2e_py '
import json, sys, urllib.request
base, px = sys.argv[1], sys.argv[2]
t = [t for t in json.load(urllib.request.urlopen(base + "/api/v1/targets", timeout=10))["data"]["activeTargets"]
     if t["labels"]["instance"] == "127.0.0.1:" + px]
assert len(t) == 1 and t[0]["health"] == "down" and t[0]["lastError"], t
print("%s: %s" % (base, t[0]["lastError"]))
' "$u" "$px" >>"$E2E_DIR/targets.txt"
done
e2e_log "during the cut: $(tr '\n' ';' <"$E2E_DIR/targets.txt")"
sleep 50
rm -f "$E2E_DIR/cut"
end_s=$(date +%s)
e2e_log "cut over"

# Both centrals catch up on the minute from leaf 0 itself; compare once
# the window has settled (pulls are 15 s behind the leaf), retrying until
# 90 s after the cut.
python3 - "$L0" "$A" "$B" "$((cut_s - 10))" "$((end_s + 10))" "$((end_s + 90))" \
	>"$E2E_DIR/compare.txt" <<'PY' || e2e_fail "$(cat "$E2E_DIR/compare.txt")"
import json, sys, time, urllib.parse, urllib.request
L0, A, B, lo, hi, deadline = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def matrix(base, sel):
    q = urllib.parse.urlencode({"query": "%s[%ds]" % (sel, hi - lo), "time": str(hi)})
    d = json.load(urllib.request.urlopen(base + "/api/v1/query?" + q, timeout=30))["data"]["result"]
    return {json.dumps(r["metric"], sort_keys=True): r["values"] for r in d}
why = ""
while time.time() < hi + 20:
    time.sleep(1)
while True:
    leaf = matrix(L0, '{job="synth"}')
    inst = sorted({json.loads(k)["instance"] for k in leaf})
    sel = '{job="synth",instance=~"%s"}' % "|".join(i.replace(".", "\\\\.") for i in inst)
    ca, cb = matrix(A, sel), matrix(B, sel)
    ra, rb = matrix(A, '{__name__=~"job:.+"}'), matrix(B, '{__name__=~"job:.+"}')
    n = sum(len(v) for v in leaf.values())
    cut = sum(1 for v in leaf.values() for t, _ in v if lo + 10 < float(t) <= hi - 10)
    bad = []
    for name, c in (("a", ca), ("b", cb)):
        d = [k for k in set(leaf) | set(c) if leaf.get(k) != c.get(k)]
        if d:
            k = d[0]
            bad.append("central %s differs from the leaf in %d of %d series, e.g. %s: leaf %d samples, central %d" % (
                name, len(d), len(leaf), k, len(leaf.get(k) or []), len(c.get(k) or [])))
    if ra != rb:
        k = next(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))
        va, vb = dict(map(tuple, ra.get(k) or [])), dict(map(tuple, rb.get(k) or []))
        bad.append("aggregates differ between the replicas: %s %s" % (k, sorted(set(va.items()) ^ set(vb.items()))[:4]))
    if not bad:
        # leaf 0 owns some of the 6 targets (66 series each) and scraped
        # them every 2 s through the 60 s cut
        if len(leaf) < 66 or cut < len(leaf) * 25 or len(ra) != 2:
            print("too little data: %d series, %d samples during the cut, %d aggregates" % (
                len(leaf), cut, len(ra)))
            sys.exit(1)
        print("leaf 0: %d series, %d samples in the window (%d during the cut): identical on both centrals; "
              "aggregates identical on both (%d samples)" % (len(leaf), n, cut, sum(len(v) for v in ra.values())))
        sys.exit(0)
    why = "; ".join(bad)
    if time.time() > deadline:
        break
    time.sleep(2)
print("not within 90 s of the cut: " + why)
sys.exit(1)
PY
e2e_log "$(cat "$E2E_DIR/compare.txt")"

# The cut is visible on both: up of the proxied target was 0, now 1.
for u in "$A" "$B"; do
	e2e_py '
import json, sys, urllib.parse, urllib.request
base, px, lo, hi = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
q = urllib.parse.urlencode({"query": "min_over_time(up{job=\"federate\",instance=\"127.0.0.1:%s\"}[%ss])" % (px, int(hi) - int(lo)), "time": hi})
r = json.load(urllib.request.urlopen(base + "/api/v1/query?" + q, timeout=10))["data"]["result"]
assert r and float(r[0]["value"][1]) == 0, r
t = [t for t in json.load(urllib.request.urlopen(base + "/api/v1/targets", timeout=10))["data"]["activeTargets"]
     if t["labels"]["instance"] == "127.0.0.1:" + px]
assert t[0]["health"] == "up" and t[0]["lastError"] == "", t
' "$u" "$px" "$cut_s" "$end_s"
done
e2e_log "ok"
