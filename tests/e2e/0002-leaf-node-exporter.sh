#!/bin/sh
# tests/e2e/0002-leaf-node-exporter.sh - strata-leaf scrapes a real
# prometheus-node-exporter: the target is up, every metric family the
# exporter exposes reaches /federate, scrape_samples_scraped matches the
# exporter's own sample count, and a metric_relabel_configs drop applies.
. "$(dirname "$0")/lib.sh"
ne=$(command -v prometheus-node-exporter || true)
[ -n "$ne" ] || { e2e_log "prometheus-node-exporter not installed"; exit 77; }

ne_port=$(e2e_port)
port=$(e2e_port)
base="http://127.0.0.1:$port"
e2e_start node-exporter "$ne" --web.listen-address="127.0.0.1:$ne_port"
e2e_wait_http "http://127.0.0.1:$ne_port/metrics"

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 2s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$ne_port"]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_.*
        action: drop
EOF
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port"
e2e_wait_http "$base/-/ready"
upq() { e2e_get "$base/federate?match[]=up" | grep -q '^up{.*job="node".*} 1 '; }
e2e_until 20 upq || e2e_fail "node exporter target not up: $(e2e_get "$base/api/v1/targets")"
sleep 2

e2e_get "http://127.0.0.1:$ne_port/metrics" >"$E2E_DIR/ne.txt"
e2e_get "$base/federate?match[]={job=\"node\"}" >"$E2E_DIR/strata.txt"
e2e_py '
import sys
sys.path.insert(0, sys.argv[1])
import expo
ne = expo.parse(open(sys.argv[2]).read())
st = expo.parse(open(sys.argv[3]).read())
names = lambda d: {dict(k)["__name__"] for k in d}
want = {n for n in names(ne) if not n.startswith("go_")}
got = names(st)
missing = sorted(want - got)
assert not missing, "families missing in strata: %r" % missing[:10]
assert not [n for n in got if n.startswith("go_")], "go_* not dropped"
scraped = [v for k, (v, ts) in st.items() if dict(k)["__name__"] == "scrape_samples_scraped"][0]
post = [v for k, (v, ts) in st.items() if dict(k)["__name__"] == "scrape_samples_post_metric_relabeling"][0]
# The exporter may add or drop a few series between two scrapes.
assert abs(scraped - len(ne)) <= max(10, len(ne) // 50), (scraped, len(ne))
gos = len([k for k in ne if dict(k)["__name__"].startswith("go_")])
assert abs((scraped - post) - gos) <= 5, (scraped, post, gos)
print("0002: %d node exporter families, %d samples per scrape" % (len(want), scraped))
' "$(dirname "$0")" "$E2E_DIR/ne.txt" "$E2E_DIR/strata.txt"
e2e_log "ok"
