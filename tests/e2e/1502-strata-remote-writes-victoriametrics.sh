#!/bin/sh
# tests/e2e/1502-strata-remote-writes-victoriametrics.sh - strata's
# remote_write client (lib/remote/write, run by tests/remote/remote-peer send)
# ships samples to a real VictoriaMetrics, which is started only after the
# client has begun: the client must retry (connection refused, backoff)
# until VictoriaMetrics answers, then deliver everything. External labels
# and write_relabel_configs apply on the way. VictoriaMetrics' export must
# then hold exactly the samples sent: same labels, timestamps and values,
# staleness markers as VictoriaMetrics keeps them (null), plain NaN dropped
# (VictoriaMetrics does not store NaN).
. "$(dirname "$0")/lib.sh"
command -v victoria-metrics >/dev/null || { e2e_log "victoria-metrics not installed"; exit 77; }
peer_bin="$STRATA_BUILDDIR/tests/remote/remote-peer"
vm_port=$(e2e_port)
vm="http://127.0.0.1:$vm_port"

# 4 series x 300 samples, 15 s apart, ending a minute ago; values with at
# most 12 significant digits (VictoriaMetrics stores decimals), ±Inf, a
# NaN, staleness markers; one series to be dropped by relabeling.
python3 - "$E2E_DIR/input.tsv" <<'PY'
import sys, time, math
end = int(time.time()) * 1000 - 60000
with open(sys.argv[1], "w") as f:
    for i in range(300):
        t = end - (299 - i) * 15000
        vals = {
            "e2e_counter": "%d" % (i * 7),
            "e2e_gauge": "%.6f" % (math.sin(i / 10.0) * 1000),
            "e2e_small": "%.4e" % ((i + 1) * 1.2345e-9),
            "e2e_drop_me": "1",
        }
        if i == 100: vals["e2e_gauge"] = "+Inf"
        if i == 101: vals["e2e_gauge"] = "-Inf"
        if i == 102: vals["e2e_gauge"] = "NaN"
        if i in (150, 299): vals["e2e_small"] = "0x7ff0000000000002"
        for name, v in vals.items():
            f.write("%d\t%s\t__name__\t%s\tinstance\tnode-%d\tjob\te2e\n" % (t, v, name, i % 2))
PY
cat >"$E2E_DIR/strata.yml" <<YML
global:
  external_labels: {source: strata}
remote_write:
  - url: $vm/api/v1/write
    name: vm
    queue_config: {max_samples_per_send: 100, batch_send_deadline: 200ms, min_backoff: 100ms, max_backoff: 1s}
    write_relabel_configs:
      - {source_labels: [__name__], regex: "e2e_drop_.*", action: drop}
      - {target_label: shipped_by, replacement: remote-peer}
YML

# the client starts first: VictoriaMetrics is not there yet
"$peer_bin" send --config "$E2E_DIR/strata.yml" --input "$E2E_DIR/input.tsv" --flush-timeout 40 \
	>"$E2E_DIR/send.log" 2>&1 &
send_pid=$!
E2E_PIDS="$E2E_PIDS $send_pid"
sleep 2
e2e_start vm victoria-metrics -httpListenAddr="127.0.0.1:$vm_port" \
	-storageDataPath="$E2E_DIR/vm-data" -search.latencyOffset=0s -retentionPeriod=1y
wait "$send_pid" || e2e_fail "the client did not deliver everything: $(cat "$E2E_DIR/send.log")"
cat "$E2E_DIR/send.log"
grep -q "retried 0 " "$E2E_DIR/send.log" && e2e_fail "no retry while VictoriaMetrics was down"
grep -q "failed 0 " "$E2E_DIR/send.log" || e2e_fail "samples failed"
grep -q "dropped 300 " "$E2E_DIR/send.log" || e2e_fail "the relabel drop did not count 300 samples"

export_all() {
	curl -fsS "$vm/internal/force_flush" >/dev/null 2>&1 || true
	curl -fsS -g "$vm/api/v1/export?match[]={job=\"e2e\"}" >"$E2E_DIR/export.json"
}
# VictoriaMetrics writes infinities as +Inf/-Inf, which JSON lacks
VMJSON='import json, re
def vmrows(path):
    for line in open(path):
        yield json.loads(re.sub(r"(?<=[\[,])([+-])Inf(?=[,\]])", lambda m: "-Infinity" if m.group(1) == "-" else "Infinity", line))
'
complete() { export_all && python3 -c "$VMJSON
import sys
n = sum(len(r['timestamps']) for r in vmrows(sys.argv[1]))
sys.exit(0 if n >= 899 else 1)" "$E2E_DIR/export.json"; }
e2e_until 20 complete || e2e_fail "VictoriaMetrics export incomplete"

e2e_py "$VMJSON"'
import sys, math
want = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    labels = dict(zip(f[2::2], f[3::2]))
    if labels["__name__"].startswith("e2e_drop_"):
        continue
    labels["source"] = "strata"
    labels["shipped_by"] = "remote-peer"
    key = tuple(sorted(labels.items()))
    v = f[1]
    if v == "NaN":
        continue			# VictoriaMetrics drops NaN
    val = None if v == "0x7ff0000000000002" else float(v)
    want.setdefault(key, {})[int(f[0])] = val
got = {}
for r in vmrows(sys.argv[2]):
    key = tuple(sorted(r["metric"].items()))
    got[key] = dict(zip(r["timestamps"], r["values"]))
assert set(got) == set(want), "series differ: only in VM %r, missing in VM %r" % (
    sorted(set(got) - set(want))[:3], sorted(set(want) - set(got))[:3])
bad = []
n = 0
for key, samples in want.items():
    for t, v in samples.items():
        n += 1
        g = got[key].get(t, "absent")
        if g == "absent" or (v is None) != (g is None) or (v is not None and float(g) != v):
            bad.append((dict(key)["__name__"], t, v, g))
    extra = set(got[key]) - set(samples)
    assert not extra, "VM holds samples not sent: %r" % sorted(extra)[:3]
assert not bad, "%d samples differ, e.g. %r" % (len(bad), bad[:5])
print("1502: %d samples in %d series identical in VictoriaMetrics" % (n, len(want)))
' "$E2E_DIR/input.tsv" "$E2E_DIR/export.json"
e2e_log "ok"
