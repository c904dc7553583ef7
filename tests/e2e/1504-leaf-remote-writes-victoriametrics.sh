#!/bin/sh
# tests/e2e/1504-leaf-remote-writes-victoriametrics.sh - a strata-leaf
# scraping synthetic targets, with a recording rule file, ships everything
# its store commits to a real VictoriaMetrics over remote_write (the store's
# commit observer -> lib/remote/feed -> lib/remote/write). Along the way: a
# reload with a bad remote_write section is refused (the old queue keeps
# sending), a reload drops a target (staleness markers), and SIGTERM hands
# what was committed last to the writer, which flushes it before exit (the
# queue sends only full batches of 5000 samples, so thousands are still
# pending then: only the shutdown flush ships them).
# The leaf is then restarted on the same data without targets, rules or
# remote_write, and every sample its store holds (read raw through
# /api/v1/read, staleness markers included) must be in VictoriaMetrics with
# the same labels (plus the external label), timestamp and value, and
# VictoriaMetrics must hold nothing else.
#
# VictoriaMetrics keeps a value as a decimal (int64 mantissa and a power of
# ten), so a float with more significant digits than that holds (here the
# synthetic histograms' _sum and scrape_duration_seconds) can come back
# one or two ulps off: such values must agree to 1e-12 relative, every
# other value bit for bit; the figures are printed.
. "$(dirname "$0")/lib.sh"
command -v victoria-metrics >/dev/null || { e2e_log "victoria-metrics not installed"; exit 77; }
peer_bin="$STRATA_BUILDDIR/tests/remote/remote-peer"

first=$(e2e_ports 3)
port=$(e2e_port)
base="http://127.0.0.1:$port"
vm_port=$(e2e_port)
vm="http://127.0.0.1:$vm_port"
e2e_synth targets "$first" 3 400
e2e_start vm victoria-metrics -httpListenAddr="127.0.0.1:$vm_port" \
	-storageDataPath="$E2E_DIR/vm-data" -search.latencyOffset=0s -retentionPeriod=1y
e2e_wait_http "$vm/health" 30

cat >"$E2E_DIR/rules.yml" <<'YML'
groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:synth_target_info:count
        expr: count by (job) (synth_target_info)
      - record: job:synth_requests_1_total:rate5s
        expr: sum by (job, code) (rate(synth_requests_1_total[5s]))
YML
# write_config TARGETS [EXTRA]: the leaf's configuration with the first
# TARGETS targets; EXTRA is added to the remote_write entry
write_config() {
	tl=""
	i=0
	while [ "$i" -lt "$1" ]; do
		tl="$tl\"127.0.0.1:$((first + i))\", "
		i=$((i + 1))
	done
	cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels: {site: e2e}
rule_files: ["$E2E_DIR/rules.yml"]
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [${tl%, }]
remote_write:
  - url: $vm/api/v1/write
    name: vm
    queue_config: {max_samples_per_send: 5000, batch_send_deadline: 60s, min_backoff: 50ms}
${2:-}
EOF
}
write_config 3
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port" --web.enable-lifecycle \
	--storage.tsdb.path="$E2E_DIR/leaf-data"
leaf_pid=$E2E_LAST_PID
e2e_wait_http "$base/-/ready"

# metric NAME [MATCH]: the value of a /metrics line
metric() {
	e2e_get "$base/metrics" >"$E2E_DIR/metrics.txt"
	awk -v n="$1" -v m="${2:-}" '$1 ~ "^"n"($|[{])" && index($1, m) > 0 {print $2; exit}' \
		"$E2E_DIR/metrics.txt"
}
shipping() {
	s=$(metric prometheus_remote_storage_samples_total 'remote_name="vm"')
	[ -n "$s" ] && [ "${s%.*}" -gt 2000 ]
}
# queued: samples the queue took so far (sent or pending)
queued() {
	s=$(metric prometheus_remote_storage_samples_total 'remote_name="vm"')
	p=$(metric prometheus_remote_storage_samples_pending 'remote_name="vm"')
	echo $((${s%.*} + ${p%.*}))
}
e2e_until 20 shipping || e2e_fail "nothing reaches VictoriaMetrics: $(e2e_get "$base/metrics" | grep remote_storage)"

# a bad remote_write section refuses the reload; the old queue keeps going
write_config 3 "    sigv4: {region: eu-west-1}"
code=$(curl -s -o "$E2E_DIR/reload.out" -w '%{http_code}' -X POST "$base/-/reload")
[ "$code" = 500 ] || e2e_fail "reload with a bad remote_write gave $code"
grep -q 'sigv4' "$E2E_DIR/reload.out" || e2e_fail "reload error: $(cat "$E2E_DIR/reload.out")"
before=$(queued)
sleep 2
after=$(queued)
[ "$after" -gt "$before" ] || e2e_fail "remote write stopped after a refused reload"

# one target less: its series get staleness markers, shipped as well
sleep 4
write_config 2
curl -fsS -X POST "$base/-/reload" >/dev/null || e2e_fail "reload to two targets"
sleep 4
for m in strata_remote_storage_feed_dropped_samples_total \
    strata_remote_storage_feed_unresolved_samples_total; do
	[ "$(metric $m)" = 0 ] || e2e_fail "$m is $(metric $m)"
done
[ "$(metric prometheus_remote_storage_samples_failed_total 'remote_name="vm"')" = 0 ] ||
	e2e_fail "samples failed"
e2e_get "$base/metrics" | grep -E '^(strata_remote_storage_feed_samples_total|prometheus_remote_storage_samples_(total|pending))' \
	>"$E2E_DIR/figures.txt"
pending=$(metric prometheus_remote_storage_samples_pending 'remote_name="vm"')
[ "${pending%.*}" -gt 0 ] || e2e_fail "nothing pending for the shutdown flush"

# SIGTERM: what was committed last is flushed before the leaf exits
kill -TERM "$leaf_pid"
i=0
while kill -0 "$leaf_pid" 2>/dev/null; do
	i=$((i + 1))
	[ "$i" -lt 150 ] || e2e_fail "the leaf did not exit within 30 s"
	sleep 0.2
done

# the same store, read-only in effect: no targets, rules or remote_write
cat >"$E2E_DIR/leaf2.yml" <<EOF
global:
  external_labels: {site: e2e}
EOF
e2e_start leaf2 "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf2.yml" \
	--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$E2E_DIR/leaf-data"
e2e_wait_http "$base/-/ready"
"$peer_bin" read --url "$base/api/v1/read" --match '{__name__=~".+"}' --start 0 \
	--end 9999999999999 >"$E2E_DIR/strata.tsv" || e2e_fail "remote read from the leaf"
curl -fsS "$vm/internal/force_flush" >/dev/null 2>&1 || true
sleep 1
curl -fsS -g "$vm/api/v1/export?match[]={__name__=~\".%2B\"}" >"$E2E_DIR/export.json" ||
	e2e_fail "VictoriaMetrics export"

e2e_py '
import sys, json, re, struct, math
def f64(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]
STALE = "7ff0000000000002"
held = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    key = tuple(sorted(zip(f[2::2], f[3::2])))
    held.setdefault(key, {})[int(f[0])] = f[1]
got = {}
for line in open(sys.argv[2]):
    line = re.sub(r"(?<=[\[,])([+-])Inf(?=[,\]])",
        lambda m: "-Infinity" if m.group(1) == "-" else "Infinity", line)
    r = json.loads(line)
    key = tuple(sorted(r["metric"].items()))
    got.setdefault(key, {}).update(zip(r["timestamps"], r["values"]))
assert set(got) == set(held), "series only in VictoriaMetrics: %r; only in strata: %r" % (
    sorted(set(got) - set(held))[:3], sorted(set(held) - set(got))[:3])
n = exact = near = stale = 0
bad = []
names = set()
for key, samples in held.items():
    g = got[key]
    extra = set(g) - set(samples)
    assert not extra, "VictoriaMetrics holds samples strata does not: %r %r" % (key, sorted(extra)[:3])
    for t, h in samples.items():
        n += 1
        names.add(dict(key)["__name__"])
        if t not in g:
            bad.append((key, t, h, "absent"))
            continue
        v = g[t]
        if h == STALE:
            stale += 1
            if v is not None:
                bad.append((key, t, h, v))
            continue
        want = f64(h)
        if v is None:
            bad.append((key, t, h, v))
        elif struct.pack(">d", float(v)) == struct.pack(">d", want):
            exact += 1
        elif math.isfinite(want) and abs(float(v) - want) <= 1e-12 * abs(want):
            near += 1
        else:
            bad.append((key, t, h, v))
assert not bad, "%d of %d samples differ, e.g. %r" % (len(bad), n, bad[:5])
for need in ("up", "scrape_duration_seconds", "job:synth_target_info:count",
        "job:synth_requests_1_total:rate5s", "synth_requests_1_total"):
    assert need in names, "no %s in the comparison" % need
assert stale > 0, "no staleness marker compared"
assert n > 10000, "only %d samples compared" % n
print("1504: %d samples in %d series identical in VictoriaMetrics (%d bit for bit, %d within "
    "1e-12 relative, %d staleness markers)" % (n, len(held), exact, near, stale))
' "$E2E_DIR/strata.tsv" "$E2E_DIR/export.json"
e2e_log "before SIGTERM (the pending ones were sent by the shutdown flush):"
cat "$E2E_DIR/figures.txt"
e2e_log "ok"
