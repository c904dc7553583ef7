#!/bin/sh
# tests/e2e/0650-promql-differential.sh - strata answers PromQL as
# Prometheus 2.42 does: the same OpenMetrics data (promql_data.py: three
# hours, about 2,450 series of counters with resets, gauges with NaN/Inf,
# classic histograms, summaries, series that stop) is backfilled into a real
# Prometheus (promtool tsdb create-blocks-from openmetrics) and into
# strata-leaf (strata-tool import openmetrics); every expression of
# promql_queries.txt then runs against both HTTP APIs as an instant query at
# four times and as two range queries, and promql_diff.py compares the
# answers. Differences must be listed, with their reason, in
# promql_known_diffs.txt; prints the agreement count.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }
command -v promtool >/dev/null || { e2e_log "promtool not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)

python3 "$here/promql_data.py" "$E2E_DIR/data.om" >"$E2E_DIR/data.log" 2>&1 ||
	e2e_fail "promql_data.py: $(cat "$E2E_DIR/data.log")"
e2e_log "data: $(cat "$E2E_DIR/data.log")"

promtool tsdb create-blocks-from openmetrics -q "$E2E_DIR/data.om" "$E2E_DIR/prom-data" \
	>"$E2E_DIR/promtool.log" 2>&1 &
promtool_pid=$!
"$STRATA_BUILDDIR/strata-tool" import openmetrics "$E2E_DIR/data.om" \
	--storage.tsdb.path "$E2E_DIR/strata-data" >"$E2E_DIR/import.log" 2>&1 ||
	e2e_fail "strata-tool import: $(tail -5 "$E2E_DIR/import.log")"
wait "$promtool_pid" || e2e_fail "promtool create-blocks: $(tail -5 "$E2E_DIR/promtool.log")"
rm -f "$E2E_DIR/data.om"

cat >"$E2E_DIR/empty.yml" <<EOF
global:
  scrape_interval: 15s
  evaluation_interval: 1m
scrape_configs: []
EOF
pport=$(e2e_port)
sport=$(e2e_port)
e2e_start prometheus prometheus --config.file="$E2E_DIR/empty.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --storage.tsdb.retention.time=100y \
	--query.lookback-delta=5m --web.listen-address="127.0.0.1:$pport"
e2e_start strata "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/empty.yml" \
	--storage.tsdb.path="$E2E_DIR/strata-data" --storage.tsdb.retention.time=100y \
	--query.lookback-delta=5m --web.listen-address="127.0.0.1:$sport"
e2e_wait_http "http://127.0.0.1:$pport/-/ready" 60
e2e_wait_http "http://127.0.0.1:$sport/-/ready" 60

# Instant: 25m in, the block boundary, an odd millisecond, 2m past the end
# of the data (within the lookback delta). Range: from before the data to
# 10m past its end at an odd step, and 30m on the minute at 15s.
rc=0
python3 "$here/promql_diff.py" --name "${E2E_NAME%%-*}" \
	--prometheus "http://127.0.0.1:$pport" --strata "http://127.0.0.1:$sport" \
	--queries "$here/promql_queries.txt" --known "$here/promql_known_diffs.txt" \
	--time 1700001500 --time 1700006400 --time 1700008123.456 --time 1700010920 \
	--range 1699999700:1700011400:97 --range 1700004000:1700005800:15 \
	>"$E2E_DIR/diff.out" 2>&1 || rc=$?
grep -v '^DIFF: ' "$E2E_DIR/diff.out" | tail -5
if [ "$rc" -ne 0 ]; then
	head -40 "$E2E_DIR/diff.out" | cut -c1-400 >&2
	e2e_fail "strata and Prometheus disagree ($(grep -c '^DIFF: ' "$E2E_DIR/diff.out") unexpected results)"
fi
e2e_log "ok"
