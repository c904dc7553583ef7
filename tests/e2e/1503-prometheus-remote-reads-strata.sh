#!/bin/sh
# tests/e2e/1503-prometheus-remote-reads-strata.sh - a real Prometheus 2.42
# with remote_read pointed at strata's /api/v1/read (lib/remote/server on a
# head, run by tests/remote/remote-peer) and nothing of its own: range queries
# through Prometheus' query API must return exactly the samples strata
# holds (staleness markers are not returned by range selectors, NaN and
# infinities are), whatever matchers the query uses. Prometheus and strata
# share an external label, which Prometheus adds to its remote read
# matchers and strips from the results, as it does with any Prometheus.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }
peer_bin="$STRATA_BUILDDIR/tests/remote/remote-peer"

now=$(python3 -c 'import time; print(int(time.time()) * 1000)')
python3 - "$E2E_DIR/data.tsv" "$now" <<'PY'
import sys, math
now = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    for i in range(60):			# ten minutes, 10 s apart
        t = now - 590000 + i * 10000
        for j in range(5):
            v = repr(math.cos(i / 7.0 + j) * 10 ** j)
            if j == 4 and i == 20: v = "+Inf"
            if j == 4 and i == 21: v = "-Inf"
            if j == 4 and i == 22: v = "NaN"
            if j == 3 and i == 40: v = "0x7ff0000000000002"
            f.write("%d\t%s\t__name__\trr_metric\ti\t%d\tjob\trr\n" % (t, v, j))
        f.write("%d\t%d\t__name__\trr_other\tjob\trr\n" % (t, i))
PY
e2e_start peer "$peer_bin" serve --listen 127.0.0.1:0 --load "$E2E_DIR/data.tsv" \
	--external-labels site=s1
peer_pid=$E2E_LAST_PID
e2e_until 10 grep -q "listening on" "$E2E_DIR/peer.log" || e2e_fail "remote-peer did not start"
peer_port=$(awk '/listening on/ {print $3; exit}' "$E2E_DIR/peer.log")

prom_port=$(e2e_port)
prom="http://127.0.0.1:$prom_port"
cat >"$E2E_DIR/prom.yml" <<YML
global:
  external_labels: {site: s1}
remote_read:
  - url: http://127.0.0.1:$peer_port/api/v1/read
    read_recent: true
YML
e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$prom_port"
e2e_wait_http "$prom/-/ready" 60

e2e_py '
import sys, json, math, urllib.parse, urllib.request
data, prom, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
held = {}
for line in open(data):
    f = line.rstrip("\n").split("\t")
    labels = tuple(sorted(zip(f[2::2], f[3::2])))
    held.setdefault(labels, []).append((int(f[0]), f[1]))
def q(expr):
    u = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": "%.3f" % (now / 1000)})
    d = json.load(urllib.request.urlopen(u, timeout=30))
    assert d["status"] == "success", d
    return d["data"]["result"]
def check(expr, keep, add=()):
    res = q(expr)
    got = {tuple(sorted(r["metric"].items())): r["values"] for r in res}
    want = {tuple(sorted(k + add)): v for k, v in held.items() if keep(dict(k))}
    assert set(got) == set(want), "%s: series %r, want %r" % (expr, sorted(got), sorted(want))
    n = 0
    for k, samples in want.items():
        exp = [(t, v) for t, v in samples if v != "0x7ff0000000000002"]	# range selectors skip staleness markers
        vals = got[k]
        assert len(vals) == len(exp), "%s %r: %d samples, want %d" % (expr, k, len(vals), len(exp))
        for (t, v), (gt, gv) in zip(exp, vals):
            assert int(round(float(gt) * 1000)) == t, (expr, k, gt, t)
            fv, fg = float(v), float(gv)
            assert (math.isnan(fv) and math.isnan(fg)) or fv == fg, (expr, k, t, v, gv)
            n += 1
    return n
n = check("rr_metric[15m]", lambda l: l["__name__"] == "rr_metric")
n += check("{__name__=~\"rr_.*\", i!=\"2\"}[15m]", lambda l: l.get("i") != "2")
n += check("rr_metric{i=~\"[13]\", job=\"rr\"}[15m]", lambda l: l.get("i") in ("1", "3"))
# a matcher on the external label itself: Prometheus sends it as is and
# keeps the label strata adds (it only strips the matchers it added)
n += check("rr_other{site=\"s1\"}[15m]", lambda l: l["__name__"] == "rr_other", (("site", "s1"),))
r = q("rr_metric{site=\"elsewhere\"}[15m]")
assert r == [], r
# an instant query: the newest sample of each series within the lookback
r = q("sum(rr_other)")
assert float(r[0]["value"][1]) == 59, r
print("1503: %d samples read back through Prometheus identical" % n)
' "$E2E_DIR/data.tsv" "$prom" "$now"

kill "$peer_pid"
e2e_until 5 grep -q "read requests" "$E2E_DIR/peer.log" || true
grep -q "read requests [1-9]" "$E2E_DIR/peer.log" || e2e_fail "strata served no remote read: $(tail -1 "$E2E_DIR/peer.log")"
e2e_log "ok"
