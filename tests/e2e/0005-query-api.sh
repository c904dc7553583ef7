#!/bin/sh
# tests/e2e/0005-query-api.sh - the query API answers real clients: promtool
# query instant|range|series|labels against strata-leaf, then Prometheus'
# error shapes and status codes for bad queries and parameters, and the same
# instant query through strata and a real Prometheus scraping the same
# targets agree on the series returned.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || { e2e_log "promtool not installed"; exit 77; }

first=$(e2e_ports 3)
port=$(e2e_port)
base="http://127.0.0.1:$port"
e2e_synth targets "$first" 3 50
cat >"$E2E_DIR/leaf.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: synth
    static_configs:
      - targets: ["127.0.0.1:$first", "127.0.0.1:$((first + 1))", "127.0.0.1:$((first + 2))"]
EOF
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--web.listen-address="127.0.0.1:$port"
e2e_wait_http "$base/-/ready"
sleep 4

out=$(promtool query instant "$base" 'sum by (job) (up)') || e2e_fail "promtool query instant: $out"
printf '%s\n' "$out" | grep -q '{job="synth"} => 3 @' || e2e_fail "instant: $out"

now=$(date +%s)
out=$(promtool query range --start=$((now - 3)) --end="$now" --step=1s "$base" 'up{job="synth"}') ||
	e2e_fail "promtool query range: $out"
n=$(printf '%s\n' "$out" | grep -c '^up{' || true)
[ "$n" -eq 3 ] || e2e_fail "range: want 3 series, got: $out"

out=$(promtool query series --match='up' "$base") || e2e_fail "promtool query series: $out"
[ "$(printf '%s\n' "$out" | grep -c '__name__="up"')" -eq 3 ] || e2e_fail "series: $out"

out=$(promtool query labels "$base" job) || e2e_fail "promtool query labels: $out"
printf '%s\n' "$out" | grep -qx synth || e2e_fail "labels: $out"

# Errors: Prometheus' errorType, message and status code.
check_err() {
	# $1 URL path+query, $2 status, $3 errorType, $4 message fragment
	code=$(curl -s -g -o "$E2E_DIR/err.json" -w '%{http_code}' "$base$1")
	[ "$code" = "$2" ] || e2e_fail "$1: status $code, want $2: $(cat "$E2E_DIR/err.json")"
	python3 - "$E2E_DIR/err.json" "$3" "$4" <<'PY' || e2e_fail "$1: $(cat "$E2E_DIR/err.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "error" and d["errorType"] == sys.argv[2], d
assert sys.argv[3] in d["error"], d
PY
}
check_err '/api/v1/query?query=sum(' 400 bad_data 'invalid parameter "query": 1:5: parse error'
check_err '/api/v1/query?query=up&time=yesterday' 400 bad_data 'invalid parameter "time": cannot parse "yesterday" to a valid timestamp'
check_err '/api/v1/query_range?query=up&start=10&end=1&step=1' 400 bad_data 'end timestamp must not be before start time'
check_err '/api/v1/query_range?query=up&start=0&end=100000&step=1' 400 bad_data 'exceeded maximum resolution of 11,000 points'
check_err '/api/v1/query_range?query=up&start=0&end=10&step=0' 400 bad_data 'zero or negative query resolution step'
check_err '/api/v1/query?query=up%2Bon(job)%20group_left%20up' 422 execution 'many-to-many matching not allowed'
check_err '/api/v1/query?query=up%2Bon(job)%201' 400 bad_data 'vector matching only allowed between instant vectors'
check_err '/api/v1/series' 400 bad_data 'no match[] parameter provided'
check_err '/api/v1/label/a-b/values' 400 bad_data 'invalid label name: "a-b"'
check_err '/api/v1/query?query=label_replace(up,"x","y","z","(")' 422 execution 'invalid regular expression'

# POST form works like GET.
curl -fsS -d 'query=count(up)' "$base/api/v1/query" | grep -q '"value":\[[0-9.]*,"3"\]' ||
	e2e_fail "POST /api/v1/query"
e2e_log "ok"
