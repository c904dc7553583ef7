#!/bin/sh
# tests/e2e/1101-central-pull.sh - lossless federation between strata
# servers: a strata-central federates from a strata-leaf with a plain
# Prometheus federation job (metrics_path /federate, honor_labels,
# match[]={job=~".+"}) through a TCP proxy. The proxy cuts the central off
# for 60 s while the leaf keeps scraping (and, meanwhile, one synthetic
# target is removed from the leaf's configuration, so its series end with
# staleness markers); then the leaf is stopped (SIGSTOP) for a few seconds
# and resumed. Afterwards the central holds every sample the leaf holds for
# the whole window, sample by sample: through both servers'
# /api/v1/query with a range selector at a fixed time, and through both
# servers' pull bodies (X-Strata-Pull-Since), which carry the staleness
# markers bit for bit. The central's up series shows the cut.
. "$(dirname "$0")/lib.sh"

INTERVAL=2
first=$(e2e_ports 3)
leaf_port=$(e2e_port)
proxy_port=$(e2e_port)
central_port=$(e2e_port)
leaf="http://127.0.0.1:$leaf_port"
central="http://127.0.0.1:$central_port"
e2e_synth targets "$first" 3 30

leaf_config() {
	# $1: number of synthetic targets scraped
	cat >"$E2E_DIR/leaf.yml.tmp" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: 1s
  external_labels: {site: a}
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [$(python3 -c "import sys; f, n = int(sys.argv[1]), int(sys.argv[2]); print(', '.join('\"127.0.0.1:%d\"' % p for p in range(f, f + n)))" "$first" "$1")]
EOF
	mv "$E2E_DIR/leaf.yml.tmp" "$E2E_DIR/leaf.yml"
}
leaf_config 3
cat >"$E2E_DIR/central.yml" <<EOF
global:
  scrape_interval: ${INTERVAL}s
  scrape_timeout: 1500ms
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job=~".+"}']
    static_configs:
      - targets: ["127.0.0.1:$proxy_port"]
EOF

# A TCP proxy between central and leaf: while $E2E_DIR/cut exists it
# closes every connection, open or new.
e2e_start_cut_proxy proxy "$proxy_port" "$leaf_port"
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$leaf_port"
leaf_pid=$E2E_LAST_PID
e2e_start central "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/central.yml" \
	--web.listen-address="127.0.0.1:$central_port"
e2e_wait_http "$leaf/-/ready"
e2e_wait_http "$central/-/ready"

# The central pulls what settled (15 s behind the leaf).
have_data() {
	curl -fsS -g "$central/api/v1/query?query=count(%7Bjob=%22synth%22%7D)" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) >= 90 else 1)'
}
e2e_until 40 have_data || e2e_fail "the central has no synth series after 40s"
e2e_py '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/targets", timeout=10))["data"]
t = d["activeTargets"]
assert len(t) == 1 and t[0]["health"] == "up" and t[0]["lastError"] == "", t
' "$central"

cut_start=$(date +%s)
e2e_log "cutting the central off for 60s"
touch "$E2E_DIR/cut"
sleep 20
leaf_config 2		# the third target goes: its series end with markers
kill -HUP "$leaf_pid"
sleep 40
rm -f "$E2E_DIR/cut"
e2e_log "leaf stopped for 8s"
kill -STOP "$leaf_pid"
sleep 8
kill -CONT "$leaf_pid"
resumed=$(date +%s)
sleep 35	# the window ends 10 s after the resume, settled on both

e2e_py '
import json, re, sys, urllib.parse, urllib.request
leaf, central, since_s, end_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
since, end = since_s * 1000, end_s * 1000
LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"\s*,?")

def labels_of(s):
    name, _, rest = s.partition("{")
    out = [("__name__", name)]
    body, pos = rest[:-1], 0
    while pos < len(body):
        m = LABEL.match(body, pos)
        assert m, "bad series line %r" % s
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(sorted(out))

def pull(base):
    req = urllib.request.Request(base + "/federate?" + urllib.parse.urlencode({"match[]": "{job=\"synth\"}"}),
                                 headers={"X-Strata-Pull-Since": str(since)})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("application/vnd.strata.pull"), r.headers["Content-Type"]
        lines = r.read().decode().split("\n")
    assert lines[0].startswith("# strata-pull 1 "), lines[0]
    assert lines[-2] == "# EOF", "truncated body"
    until = int(lines[0].split()[4])
    assert until >= end, "%s: window ends at %d, before %d" % (base, until, end)
    out, cur = {}, None
    for ln in lines[1:-2]:
        if ln.startswith("S "):
            cur = out.setdefault(labels_of(ln[2:]), [])
        else:
            t, v = ln.split(" ")
            if int(t) <= end:
                cur.append((int(t), v))
    return {k: v for k, v in out.items() if v}

l, c = pull(leaf), pull(central)
assert len(l) >= 90, "the leaf has only %d series in the window" % len(l)
missing = [k for k in l if k not in c]
assert not missing, "%d series missing on the central, e.g. %r" % (len(missing), missing[:2])
extra = [k for k in c if k not in l]
assert not extra, "%d series only on the central, e.g. %r" % (len(extra), extra[:2])
bad = [(k, l[k][:3], c[k][:3]) for k in l if l[k] != c[k]]
assert not bad, "%d series differ, e.g. %r" % (len(bad), bad[:1])
n = sum(len(v) for v in l.values())
stale = sum(1 for v in l.values() for s in v if s[1] == "NaN:7ff0000000000002")
# the removed target ended with markers, during the cut
assert stale >= 30, "only %d staleness markers in the window" % stale
cut = [t for v in l.values() for t, _ in v if (since_s + 20) * 1000 < t < (since_s + 80) * 1000]
assert len(cut) > 90 * 20, "the leaf scraped only %d samples during the cut" % len(cut)

# The same through the query API: a range selector at a fixed time.
# The leaf stores its series without its external labels (site=a), which
# it adds to what it serves: the central stores them with it.
def matrix(base, ext):
    q = urllib.parse.urlencode({"query": "{job=\"synth\"}[%ds]" % (end_s - since_s), "time": str(end_s)})
    d = json.load(urllib.request.urlopen(base + "/api/v1/query?" + q, timeout=30))
    assert d["status"] == "success", d
    return {tuple(sorted(dict(list(ext.items()) + list(r["metric"].items())).items())): r["values"]
            for r in d["data"]["result"]}
ql, qc = matrix(leaf, {"site": "a"}), matrix(central, {})
diff = [k for k in set(ql) | set(qc) if ql.get(k) != qc.get(k)]
if diff:
    k = diff[0]
    a, b = ql.get(k) or [], qc.get(k) or []
    i = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    raise AssertionError("range query differs in %d of %d/%d series, e.g. %r: leaf %d samples, central %d; first difference at %d: %r vs %r" % (
        len(diff), len(ql), len(qc), k, len(a), len(b), i, a[i:i + 2], b[i:i + 2]))
qn = sum(len(v) for v in ql.values())
print("1101: %d series, %d samples (%d staleness markers) identical on leaf and central; query API: %d samples" % (len(l), n, stale, qn))
' "$leaf" "$central" "$((cut_start - 20))" "$((resumed + 10))"

# The cut is visible on the central: up was 0 (failed pulls), and the
# target is up again with no error.
e2e_py '
import json, sys, urllib.parse, urllib.request
base, t = sys.argv[1], sys.argv[2]
q = urllib.parse.urlencode({"query": "min_over_time(up{job=\"federate\"}[100s])", "time": t})
r = json.load(urllib.request.urlopen(base + "/api/v1/query?" + q, timeout=10))["data"]["result"]
assert r and float(r[0]["value"][1]) == 0, r
d = json.load(urllib.request.urlopen(base + "/api/v1/targets", timeout=10))["data"]["activeTargets"]
assert d[0]["health"] == "up" and d[0]["lastError"] == "", d
' "$central" "$((resumed + 10))"
e2e_log "ok"
