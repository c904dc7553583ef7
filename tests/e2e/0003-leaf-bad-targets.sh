#!/bin/sh
# tests/e2e/0003-leaf-bad-targets.sh - targets that misbehave are marked down
# with a clear lastError while the leaf keeps scraping the good ones and
# its memory stays bounded: a garbage body, a body over body_size_limit, a
# target over sample_limit, one that trickles bytes, one that hangs past the
# timeout, a refused connection; then /federate with malformed selectors.
. "$(dirname "$0")/lib.sh"

good=$(e2e_ports 2)
garbage=$(e2e_ports 1)
huge=$(e2e_ports 1)
slow=$(e2e_ports 1)
hang=$(e2e_ports 1)
many=$(e2e_ports 1)
closed=$(e2e_port)
port=$(e2e_port)
base="http://127.0.0.1:$port"
e2e_synth good "$good" 2 50
e2e_synth garbage "$garbage" 1 10 --mode=garbage
e2e_synth huge "$huge" 1 10 --mode=huge --huge-mb=64
e2e_synth slow "$slow" 1 10000 --mode=slow
e2e_synth hang "$hang" 1 10 --mode=hang
e2e_synth many "$many" 1 5000

cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: good
    static_configs: [{targets: ["127.0.0.1:$good", "127.0.0.1:$((good + 1))"]}]
  - job_name: garbage
    static_configs: [{targets: ["127.0.0.1:$garbage"]}]
  - job_name: huge
    body_size_limit: 1MB
    static_configs: [{targets: ["127.0.0.1:$huge"]}]
  - job_name: slow
    static_configs: [{targets: ["127.0.0.1:$slow"]}]
  - job_name: hang
    static_configs: [{targets: ["127.0.0.1:$hang"]}]
  - job_name: many
    sample_limit: 1000
    static_configs: [{targets: ["127.0.0.1:$many"]}]
  - job_name: closed
    static_configs: [{targets: ["127.0.0.1:$closed"]}]
EOF
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port"
leaf_pid=$E2E_LAST_PID
e2e_wait_http "$base/-/ready"

check() {
	e2e_get "$base/api/v1/targets" | python3 -c '
import json, sys
t = {x["scrapePool"]: x for x in json.load(sys.stdin)["data"]["activeTargets"] if x["scrapePool"] != "good"}
want = {
    "garbage": "", "huge": "body size limit", "slow": "", "hang": "",
    "many": "sample limit exceeded", "closed": "",
}
for pool, frag in want.items():
    x = t[pool]
    assert x["health"] == "down" and x["lastError"] != "", (pool, x)
    assert frag in x["lastError"], (pool, x["lastError"])
' && e2e_get "$base/federate?match[]=up" | grep '^up{.*job="good"' | grep -c ' 1 ' | grep -qx 2
}
e2e_until 30 check || {
	e2e_get "$base/api/v1/targets" >&2
	e2e_fail "bad targets not all down with an error, or good ones not up"
}
e2e_get "$base/api/v1/targets" | e2e_py '
import json, sys
for x in json.load(sys.stdin)["data"]["activeTargets"]:
    if x["scrapePool"] != "good":
        print("0003: %-8s %s" % (x["scrapePool"], x["lastError"]))
'
# Nothing of the refused scrapes was stored.
n=$(e2e_get "$base/federate?match[]={job=\"many\"}" | grep -vc '^#' || true)
[ "$n" -le 6 ] || e2e_fail "$n series of the over-limit target stored"

# Memory stays bounded while the 64 MiB target is refused again and again.
sleep 6
rss=$(awk '/VmRSS/ {print $2}' "/proc/$leaf_pid/status")
e2e_log "leaf RSS ${rss} kB"
[ "$rss" -lt 200000 ] || e2e_fail "leaf RSS ${rss} kB"

# Malformed and empty selectors get Prometheus' answers.
for q in 'match[]=up{' 'match[]={a=~"("}' 'match[]=%zz' 'match[]=' 'match[]=1+1'; do
	code=$(curl -s -g -o "$E2E_DIR/fed.out" -w '%{http_code}' "$base/federate?$q")
	[ "$code" = 400 ] || e2e_fail "/federate?$q gave $code"
done
code=$(curl -s -g -o /dev/null -w '%{http_code}' "$base/federate?match[]={}")
[ "$code" = 200 ] || e2e_fail "/federate?match[]={} gave $code"
kill -0 "$leaf_pid" || e2e_fail "leaf died"
e2e_log "ok"
