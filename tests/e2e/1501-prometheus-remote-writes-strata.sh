#!/bin/sh
# tests/e2e/1501-prometheus-remote-writes-strata.sh - a real Prometheus 2.42
# scrapes synthetic targets and remote-writes to strata's receiver
# (lib/remote/server on a head, run by tests/remote/remote-peer). One target
# is removed half way, so Prometheus also sends its staleness markers.
# Afterwards, every sample Prometheus stored up to a cut-off time (read back
# from Prometheus itself through its /api/v1/read, with strata's remote read
# client) must be in strata's head bit for bit, and nothing else.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }
peer_bin="$STRATA_BUILDDIR/tests/remote/remote-peer"

# remote-peer prints its port once it listens
e2e_start peer "$peer_bin" serve --listen 127.0.0.1:0
peer_pid=$E2E_LAST_PID
e2e_until 10 grep -q "listening on" "$E2E_DIR/peer.log" || e2e_fail "remote-peer did not start"
peer_port=$(awk '/listening on/ {print $3; exit}' "$E2E_DIR/peer.log")
peer="http://127.0.0.1:$peer_port"

first=$(e2e_ports 2)
prom_port=$(e2e_port)
prom="http://127.0.0.1:$prom_port"
e2e_synth targets "$first" 2 25

printf '[{"targets": ["127.0.0.1:%s", "127.0.0.1:%s"]}]\n' "$first" "$((first + 1))" >"$E2E_DIR/sd.json"
cat >"$E2E_DIR/prom.yml" <<YML
global:
  scrape_interval: 1s
  external_labels: {e2e: "1501"}
scrape_configs:
  - job_name: synth
    file_sd_configs:
      - files: ["$E2E_DIR/sd.json"]
remote_write:
  - url: $peer/api/v1/write
    queue_config: {batch_send_deadline: 500ms, max_samples_per_send: 100}
YML
e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$prom_port"
e2e_wait_http "$prom/-/ready" 60
# Prometheus' discovery hands targets over every 5 s: wait for data
has_samples() { [ "$(curl -fsS "$peer/dump" | wc -l)" -ge "$1" ]; }
e2e_until 30 has_samples 200 || e2e_fail "no remote write from Prometheus"
sleep 2

# drop the second target: Prometheus writes staleness markers for its series
printf '[{"targets": ["127.0.0.1:%s"]}]\n' "$first" >"$E2E_DIR/sd.json.new"
mv "$E2E_DIR/sd.json.new" "$E2E_DIR/sd.json"
has_stale() { [ "$(curl -fsS "$peer/dump" | grep -c "	7ff0000000000002	")" -ge 25 ]; }
e2e_until 30 has_stale || e2e_fail "no staleness markers from Prometheus"
sleep 2
cutoff=$(python3 -c 'import time; print(int(time.time() * 1000) - 500)')
sleep 3	# the queue's batch deadline

"$peer_bin" read --url "$prom/api/v1/read" --match '{job="synth"}' --start 0 --end "$cutoff" \
	>"$E2E_DIR/prometheus.tsv" 2>"$E2E_DIR/read.log" || e2e_fail "remote read from Prometheus: $(cat "$E2E_DIR/read.log")"
e2e_get "$peer/dump" >"$E2E_DIR/strata.tsv"

e2e_py '
import sys
cutoff, second = int(sys.argv[3]), sys.argv[4]
def load(path, keep):
    out = set()
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if int(f[0]) <= cutoff and keep(f):
            out.add(line.rstrip("\n"))
    return out
prom = load(sys.argv[1], lambda f: True)
strata = load(sys.argv[2], lambda f: "job\tsynth" in "\t".join(f))
assert len(prom) > 400, "Prometheus holds only %d samples" % len(prom)
missing = sorted(prom - strata)
extra = sorted(strata - prom)
assert not missing, "%d samples Prometheus stored are not in strata, e.g. %r" % (len(missing), missing[:3])
assert not extra, "%d samples in strata that Prometheus does not hold, e.g. %r" % (len(extra), extra[:3])
stale = [l for l in strata if l.split("\t")[1] == "7ff0000000000002"]
stale_second = [l for l in stale if "instance\t" + second in l]
assert len(stale_second) >= 25, "only %d staleness markers for the removed target" % len(stale_second)
assert all("e2e\t1501" in l for l in strata), "external label missing"
print("1501: %d samples identical (%d series, %d staleness markers)" % (
    len(prom), len({"\t".join(l.split("\t")[2:]) for l in prom}), len(stale)))
' "$E2E_DIR/prometheus.tsv" "$E2E_DIR/strata.tsv" "$cutoff" "127.0.0.1:$((first + 1))"

kill "$peer_pid"
e2e_until 5 grep -q "write requests" "$E2E_DIR/peer.log" || true
grep -q "rejected 0)" "$E2E_DIR/peer.log" || e2e_fail "the receiver refused requests: $(tail -1 "$E2E_DIR/peer.log")"
grep -q "out of order 0;" "$E2E_DIR/peer.log" || e2e_fail "out-of-order samples: $(tail -1 "$E2E_DIR/peer.log")"
e2e_log "ok"
