#!/bin/sh
# tests/e2e/1001-prometheus-federates-leaf.sh - a real Prometheus 2.42
# federates from strata-leaf (honor_labels, match[]={job=~".+"}); every
# series strata serves, external labels included, must be in Prometheus with
# the same labels, timestamp and value.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }

first=$(e2e_ports 5)
leaf_port=$(e2e_port)
prom_port=$(e2e_port)
leaf="http://127.0.0.1:$leaf_port"
prom="http://127.0.0.1:$prom_port"
e2e_synth targets "$first" 5 100

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 5s
  external_labels: {site: a, region: "eu-1"}
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$first", "127.0.0.1:$((first + 1))", "127.0.0.1:$((first + 2))"]
      - targets: ["127.0.0.1:$((first + 3))", "127.0.0.1:$((first + 4))"]
        labels: {instance: "named-instance", team: "x"}
EOF
# Two targets share an instance label: relabel them apart by address.
cat >>"$E2E_DIR/leaf.yml" <<EOF
    relabel_configs:
      - source_labels: [__address__]
        target_label: addr
EOF
cat >"$E2E_DIR/prom.yml" <<EOF
global:
  scrape_interval: 1s
  external_labels: {federator: p}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job=~".+"}']
    static_configs:
      - targets: ["127.0.0.1:$leaf_port"]
EOF
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$leaf_port"
e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$prom_port"
e2e_wait_http "$leaf/-/ready"
e2e_wait_http "$prom/-/ready" 60
sleep 7	# one leaf scrape of every target

# Take strata's /federate, give Prometheus a few of its 1s pulls, then
# look for every sample among Prometheus' samples of the last minute.
curl -fsS -G --data-urlencode 'match[]={job=~".+"}' "$leaf/federate" >"$E2E_DIR/strata.txt" || e2e_fail "strata /federate"
sleep 4
e2e_py '
import sys, json, urllib.parse
sys.path.insert(0, sys.argv[1])
import expo
strata = expo.parse(open(sys.argv[2]).read())
assert len(strata) >= 500, "strata served only %d series" % len(strata)
d = expo.query(sys.argv[3], "{job=~\".+\",site=\"a\"}[1m]")
prom = {}
for r in d["result"]:
    prom[expo.key_of(r["metric"])] = {int(round(float(t) * 1000)): float(v) for t, v in r["values"]}
missing = [k for k in strata if k not in prom]
assert not missing, "%d series missing in Prometheus, e.g. %r" % (len(missing), missing[:3])
bad = []
for k, (v, ts) in strata.items():
    got = prom[k].get(ts)
    if got is None or not expo.same_value(got, v):
        bad.append((k, ts, v, got))
assert not bad, "%d samples differ, e.g. %r" % (len(bad), bad[:3])
for k in strata:
    labels = dict(k)
    assert labels["site"] == "a" and labels["region"] == "eu-1", k
    assert "instance" in labels, k
print("1001: %d series identical in strata and Prometheus" % len(strata))
' "$(dirname "$0")" "$E2E_DIR/strata.txt" "$prom"
e2e_log "ok"
