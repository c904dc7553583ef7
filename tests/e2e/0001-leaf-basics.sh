#!/bin/sh
# tests/e2e/0001-leaf-basics.sh - a leaf scrapes synthetic targets and serves
# them: readiness, /api/v1/targets, /federate, /metrics, status endpoints,
# reload by SIGHUP and POST /-/reload (a bad config is refused and the old
# one kept), staleness of a target removed on reload, the demo script.
. "$(dirname "$0")/lib.sh"

first=$(e2e_ports 4)
port=$(e2e_port)
base="http://127.0.0.1:$port"
e2e_synth targets "$first" 4 50

write_config() {
	# $1: number of synthetic targets to list
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
  external_labels: {site: e2e}
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: [${tl%, }]
        labels: {env: test}
  - job_name: dropped
    relabel_configs:
      - action: drop
        source_labels: [__address__]
        regex: .*
    static_configs:
      - targets: ["127.0.0.1:1"]
EOF
}

write_config 4
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port" --web.enable-lifecycle
leaf_pid=$E2E_LAST_PID
e2e_wait_http "$base/-/ready"
e2e_get "$base/-/healthy" | grep -q Healthy || e2e_fail "/-/healthy"

# Four targets up within a few scrapes.
up4() {
	e2e_get "$base/api/v1/targets" | python3 -c '
import json, sys
d = json.load(sys.stdin)["data"]
act = d["activeTargets"]
assert len(act) == 4 and all(t["health"] == "up" for t in act), act
assert len(d["droppedTargets"]) == 1, d["droppedTargets"]'
}
e2e_until 20 up4 || e2e_fail "targets not all up: $(e2e_get "$base/api/v1/targets")"
e2e_get "$base/api/v1/targets" | e2e_py '
import json, sys
d = json.load(sys.stdin)
assert d["status"] == "success"
t = d["data"]["activeTargets"][0]
for k in ("discoveredLabels", "labels", "scrapePool", "scrapeUrl", "globalUrl", "lastError",
          "lastScrape", "lastScrapeDuration", "health", "scrapeInterval", "scrapeTimeout"):
    assert k in t, k
assert t["labels"]["job"] == "synth" and t["labels"]["env"] == "test", t
assert t["labels"]["instance"] == t["discoveredLabels"]["__address__"], t
assert t["scrapeUrl"].startswith("http://127.0.0.1:") and t["scrapeUrl"].endswith("/metrics"), t
assert t["scrapeInterval"] == "1s" and t["lastError"] == "", t
dr = d["data"]["droppedTargets"][0]["discoveredLabels"]
assert dr["job"] == "dropped" and dr["__address__"] == "127.0.0.1:1", dr
'

# /federate: every target's series with the external label, up == 1.
fed=$(e2e_get "$base/federate?match[]={job=\"synth\"}")
n=$(printf '%s\n' "$fed" | grep -vc '^#')
[ "$n" -ge $((4 * 50)) ] || e2e_fail "/federate has $n series, want >= 200"
printf '%s\n' "$fed" | grep -q '^up{.*site="e2e"} 1 [0-9]*$' || e2e_fail "no up 1 with site=e2e in /federate"
printf '%s\n' "$fed" | grep -q '^# TYPE up untyped$' || e2e_fail "no # TYPE up untyped"
for m in scrape_duration_seconds scrape_samples_scraped scrape_samples_post_metric_relabeling scrape_series_added; do
	printf '%s\n' "$fed" | grep -q "^$m{" || e2e_fail "no $m in /federate"
done
code=$(curl -s -g -o /dev/null -w '%{http_code}' "$base/federate?match[]=up{")
[ "$code" = 400 ] || e2e_fail "bad selector gave $code, want 400"
curl -fsS -g -H 'Accept-Encoding: gzip' "$base/federate?match[]={job=\"synth\"}" | gzip -dc | grep -q '^up{' ||
	e2e_fail "gzip /federate"

# /metrics and status endpoints.
met=$(e2e_get "$base/metrics")
printf '%s\n' "$met" | grep -q '^prometheus_tsdb_head_series [1-9]' || e2e_fail "no head series in /metrics"
printf '%s\n' "$met" | grep -q '^process_resident_memory_bytes ' || e2e_fail "no process metrics"
e2e_get "$base/api/v1/status/config" | grep -q 'job_name: synth' || e2e_fail "status/config"
e2e_get "$base/api/v1/status/buildinfo" | grep -q '"version"' || e2e_fail "status/buildinfo"
e2e_get "$base/api/v1/status/flags" | grep -q '"web.listen-address":"127.0.0.1:' || e2e_fail "status/flags"

# Reload with a bad config: refused, old config kept, still scraping.
echo "scrape_configs: [{job_name: x, bogus: 1}]" >"$E2E_DIR/leaf.yml"
code=$(curl -s -o "$E2E_DIR/reload.out" -w '%{http_code}' -X POST "$base/-/reload")
[ "$code" = 500 ] || e2e_fail "bad reload gave $code"
grep -q 'bogus' "$E2E_DIR/reload.out" || e2e_fail "reload error does not say where: $(cat "$E2E_DIR/reload.out")"
grep -q 'field bogus not found' "$E2E_DIR/leaf.log" || e2e_fail "bad reload not logged"
e2e_until 10 up4 || e2e_fail "targets changed after a refused reload"

# SIGHUP with one target fewer: the removed target's series go stale and
# leave /federate; the others keep scraping.
write_config 3
removed="127.0.0.1:$((first + 3))"
kill -HUP "$leaf_pid"
three() {
	e2e_get "$base/api/v1/targets?state=active" | python3 -c '
import json, sys
assert len(json.load(sys.stdin)["data"]["activeTargets"]) == 3'
}
e2e_until 10 three || e2e_fail "SIGHUP reload did not drop a target"
gone() { ! e2e_get "$base/federate?match[]={instance=\"$removed\"}" | grep -q .; }
e2e_until 10 gone || e2e_fail "series of a removed target still in /federate"
e2e_get "$base/federate?match[]=up" | grep -c '^up{.*} 1 ' | grep -qx 3 || e2e_fail "want 3 up targets"

# POST /-/reload back to four targets.
write_config 4
curl -fsS -X POST "$base/-/reload" >/dev/null || e2e_fail "good POST /-/reload"
e2e_until 20 up4 || e2e_fail "target not back after reload"

# Lifecycle endpoints are refused without --web.enable-lifecycle (checked on
# a second leaf), and the first leaf stops cleanly on SIGTERM.
port2=$(e2e_port)
e2e_start leaf2 "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port2"
e2e_wait_http "http://127.0.0.1:$port2/-/ready"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port2/-/reload")
[ "$code" = 403 ] || e2e_fail "reload without lifecycle gave $code"
kill -TERM "$leaf_pid"
e2e_until 10 sh -c "! kill -0 $leaf_pid" || e2e_fail "leaf did not stop on SIGTERM"
grep -q 'See you next time' "$E2E_DIR/leaf.log" || e2e_fail "no clean exit"
e2e_log "ok"
