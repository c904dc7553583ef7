#!/bin/sh
# tests/e2e/3003-central-bad-input.sh - a central pair member facing bad peers
# and bad leaves: each gets a clear state, nothing wrong is stored, nothing
# crashes.
#
# - replica c1's --peer.url answers garbage (a plain HTTP server): c1's
#   /api/v1/peer says "garbage" with the reason, it copies nothing and,
#   10 s later, serves (ready) without repair;
# - replicas c2 and c3 name each other but their configurations differ (a
#   scrape interval): both say "mismatched" with both fingerprints and are
#   ready at once, never copying;
# - c1 federates from a fake strata leaf whose pull bodies are cut short
#   (no "# EOF") and from a target whose body is larger than the job's
#   body_size_limit: both targets are down with their error in
#   /api/v1/targets and none of their series is stored.
. "$(dirname "$0")/lib.sh"

p=$(e2e_ports 6)
p1=$((p + 0)) p2=$((p + 1)) p3=$((p + 2)) pg=$((p + 3)) pl=$((p + 4)) ph=$((p + 5))
C1="http://127.0.0.1:$p1" C2="http://127.0.0.1:$p2" C3="http://127.0.0.1:$p3"

# A garbage peer and a fake strata leaf answering cut pull bodies.
cat >"$E2E_DIR/fake.py" <<'PY'
import http.server, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if mode == "garbage":
            body, ctype = b"hello, I am not a strata central\n", "text/plain"
        else:
            since = int(self.headers.get("X-Strata-Pull-Since", "0"))
            now = int(time.time() * 1000) - 15000
            body = ("# strata-pull 1 %d %d\nS cut_series{instance=\"fake\",job=\"fake\"}\n%d 1\n%d 2\n"
                    % (since, now, now - 1000, now)).encode()	# no "# EOF"
            ctype = "application/vnd.strata.pull; version=1"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.do_GET()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
e2e_start garbage-peer python3 "$E2E_DIR/fake.py" garbage "$pg"
e2e_start cut-leaf python3 "$E2E_DIR/fake.py" cut "$pl"
e2e_synth huge "$ph" 1 1 --mode=huge --huge-mb=4

central_config() {
	# $1: file, $2: scrape interval
	cat >"$1" <<EOF
global:
  scrape_interval: $2
  scrape_timeout: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['{job=~".+"}']
    static_configs:
      - targets: ["127.0.0.1:$pl"]
  - job_name: federate-huge
    honor_labels: true
    metrics_path: /federate
    body_size_limit: 1MB
    params:
      'match[]': ['{job=~".+"}']
    static_configs:
      - targets: ["127.0.0.1:$ph"]
EOF
}
central_config "$E2E_DIR/c1.yml" 2s
central_config "$E2E_DIR/c2.yml" 2s
central_config "$E2E_DIR/c3.yml" 3s
start_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
e2e_start c1 "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/c1.yml" \
	--web.listen-address="127.0.0.1:$p1" --storage.tsdb.path="$E2E_DIR/d1" \
	--peer.url="http://127.0.0.1:$pg"
e2e_start c2 "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/c2.yml" \
	--web.listen-address="127.0.0.1:$p2" --storage.tsdb.path="$E2E_DIR/d2" --peer.url="$C3"
e2e_start c3 "$STRATA_BUILDDIR/strata-central" --config.file="$E2E_DIR/c3.yml" \
	--web.listen-address="127.0.0.1:$p3" --storage.tsdb.path="$E2E_DIR/d3" --peer.url="$C2"

# Another cluster: both refuse each other at once.
e2e_wait_http "$C2/-/ready" 15
e2e_wait_http "$C3/-/ready" 15
for u in "$C2" "$C3"; do
	e2e_py '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/peer", timeout=10))["data"]
assert d["state"] == "mismatched", d
assert "another cluster" in d["lastError"] and d["fingerprint"] != d["peerFingerprint"], d
assert d["peerFingerprint"] in d["lastError"] and d["fingerprint"] in d["lastError"], d
assert d["synced"] and d["syncedReason"] == "peer belongs to another cluster", d
assert d["samplesRepaired"] == 0 and d["rangesRepaired"] == 0, d
' "$u"
done
e2e_log "c2 and c3 of different clusters: mismatched, ready, nothing copied"

# A garbage peer: not ready while it retries, ready after 10 s.
e2e_wait_http "$C1/-/ready" 30
ready_ms=$(python3 -c 'import time; print(int(time.time() * 1000))')
[ $((ready_ms - start_ms)) -ge 9000 ] || e2e_fail "c1 ready after $((ready_ms - start_ms)) ms: it did not retry its peer"
e2e_py '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/peer", timeout=10))["data"]
assert d["state"] == "garbage" and "not a strata peer answer" in d["lastError"], d
assert d["synced"] and d["syncedReason"] == "peer not usable" and d["samplesRepaired"] == 0, d
m = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=10).read().decode()
assert "\nstrata_peer_up 0\n" in m and "strata_peer_state{state=\"garbage\"} 1\n" in m, m
' "$C1"
e2e_log "c1 with a garbage peer: state garbage, ready after $((ready_ms - start_ms)) ms, nothing copied"

# Bad leaves: down with their error, nothing of theirs stored.
check_targets() {
	python3 - "$C1" "$pl" "$ph" <<'PY'
import json, sys, urllib.parse, urllib.request
base, pl, ph = sys.argv[1], sys.argv[2], sys.argv[3]
t = {x["labels"]["instance"]: x for x in
     json.load(urllib.request.urlopen(base + "/api/v1/targets", timeout=10))["data"]["activeTargets"]}
cut, huge = t["127.0.0.1:" + pl], t["127.0.0.1:" + ph]
assert cut["health"] == "down" and cut["lastError"], cut
assert huge["health"] == "down" and "body size limit" in huge["lastError"], huge
for q in ('cut_series', 'synth_huge_series'):
    r = json.load(urllib.request.urlopen(base + "/api/v1/query?" + urllib.parse.urlencode(
        {"query": "count(%s) or vector(0)" % q}), timeout=10))["data"]["result"]
    assert r[0]["value"][1] == "0", (q, r)
print("cut pull body: %s; huge body: %s" % (cut["lastError"], huge["lastError"]))
PY
}
e2e_until 20 check_targets || e2e_fail "bad leaves not reported: $(check_targets 2>&1 | tail -3)"
e2e_log "$(check_targets)"
for u in "$C1" "$C2" "$C3"; do
	curl -fsS -o /dev/null "$u/-/healthy" || e2e_fail "$u died"
done
e2e_log "ok"
