#!/bin/sh
# tests/e2e/1002-leaf-federates-prometheus.sh - strata-leaf federates from a
# real Prometheus 2.42's /federate (a plain Prometheus federation job): every
# series Prometheus serves must reach strata with the same labels, and the
# same value wherever both hold the same timestamp.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }

first=$(e2e_ports 4)
leaf_port=$(e2e_port)
prom_port=$(e2e_port)
leaf="http://127.0.0.1:$leaf_port"
prom="http://127.0.0.1:$prom_port"
e2e_synth targets "$first" 4 100

cat >"$E2E_DIR/prom.yml" <<EOF
global:
  scrape_interval: 5s
  external_labels: {dc: west}
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$first", "127.0.0.1:$((first + 1))", "127.0.0.1:$((first + 2))", "127.0.0.1:$((first + 3))"]
EOF
cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 1s
  external_labels: {tier: leaf}
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job="synth"}']
    static_configs:
      - targets: ["127.0.0.1:$prom_port"]
EOF
e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$prom_port"
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$leaf_port"
e2e_wait_http "$prom/-/ready" 60
e2e_wait_http "$leaf/-/ready"
sleep 8

# Compare until every series has been seen at the same timestamp on both
# sides (strata's copy lags by at most one 1s pull), at most 30 rounds.
e2e_py '
import sys, time
sys.path.insert(0, sys.argv[1])
import expo
leaf, prom = sys.argv[2], sys.argv[3]
compared, rounds, last_diff = set(), 0, None
while rounds < 30:
    rounds += 1
    s = {tuple(x for x in k if x != ("tier", "leaf")): v
         for k, v in expo.federate(leaf, "{job=\"synth\"}").items()}
    p = expo.federate(prom, "{job=\"synth\"}")
    if len(p) < 4 * 105:	# not every target scraped yet
        time.sleep(1)
        continue
    if set(s) != set(p):	# strata pulls every 1s: new series may lag
        last_diff = (list(set(s) - set(p))[:3], list(set(p) - set(s))[:3])
        time.sleep(1)
        continue
    for k, (v, ts) in p.items():
        sv, sts = s[k]
        assert sts <= ts, "strata newer than its source for %r" % (k,)
        if sts == ts:
            assert expo.same_value(sv, v), "%r: strata %r, Prometheus %r at %d" % (k, sv, v, ts)
            compared.add(k)
    if len(compared) == len(p):
        break
    time.sleep(1)
assert len(p) >= 4 * 105, "Prometheus serves only %d series" % len(p)
assert len(compared) == len(p), "only %d of %d series compared; last series difference (only strata, only Prometheus): %r" % (
    len(compared), len(p), last_diff)
for k in p:
    assert dict(k)["dc"] == "west", k
print("1002: %d series identical in Prometheus and strata (%d rounds)" % (len(p), rounds))
' "$(dirname "$0")" "$leaf" "$prom"
e2e_log "ok"
