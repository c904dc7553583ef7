#!/bin/sh
# tests/e2e/0602-alertmanager.sh - strata-leaf sends its alerts to a real
# Alertmanager (Debian's prometheus-alertmanager), as Prometheus 2.42 does.
#
# The leaf evaluates two alerting rules every second: E2EFiring (vector(1) > 0,
# for: 0s) keeps firing; E2EResolves fires until a deadline a few seconds after
# the start, then resolves. Its alerting section lists the Alertmanager and a
# dead one (a closed port), adds external labels and drops one of them with
# alert_relabel_configs. Through the Alertmanager's own API (GET
# /api/v2/alerts) the test checks that both alerts arrive with the rule's and
# external labels (not the dropped one), the expanded annotations, startsAt
# and generatorURL from --web.external-url; that the firing one is re-sent
# every resend delay (its endsAt moves on); that the resolved one disappears
# from the active alerts. The dead Alertmanager costs errors, never delivery.
# When a Prometheus 2.42 is installed it runs the same rules against a second
# Alertmanager, and both Alertmanagers must hold the same alerts (labels,
# annotations, generatorURL).
. "$(dirname "$0")/lib.sh"
command -v prometheus-alertmanager >/dev/null || { e2e_log "prometheus-alertmanager not installed"; exit 77; }

am=$(e2e_port)
am2=$(e2e_port)
dead=$(e2e_port)
sport=$(e2e_port)
pport=$(e2e_port)
deadline=$(( $(date +%s) + 10 ))

cat >"$E2E_DIR/am.yml" <<'EOF'
route:
  receiver: 'null'
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: 'null'
EOF
cat >"$E2E_DIR/rules.yml" <<EOF
groups:
  - name: e2e alerts
    interval: 1s
    rules:
      - alert: E2EFiring
        expr: vector(1) > 0
        for: 0s
        labels:
          severity: page
        annotations:
          summary: 'value is {{ \$value }}'
          where: '{{ \$externalLabels.site }}'
      - alert: E2EResolves
        expr: vector(1) and on() (vector(time()) < $deadline)
        labels:
          severity: info
EOF
mkcfg() {
	cat <<EOF
global:
  evaluation_interval: 1s
  external_labels:
    site: e2e
    replica: r1
rule_files:
  - $E2E_DIR/rules.yml
alerting:
  alert_relabel_configs:
    - regex: replica
      action: labeldrop
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$1']
    - timeout: 2s
      static_configs:
        - targets: ['127.0.0.1:$dead']
EOF
}
mkcfg "$am" >"$E2E_DIR/leaf.yml"
mkcfg "$am2" >"$E2E_DIR/prom.yml"

e2e_start am prometheus-alertmanager --config.file="$E2E_DIR/am.yml" \
	--storage.path="$E2E_DIR/am-data" --web.listen-address="127.0.0.1:$am" \
	--cluster.listen-address=
with_prom=
if command -v prometheus >/dev/null; then
	with_prom=1
	e2e_start am2 prometheus-alertmanager --config.file="$E2E_DIR/am.yml" \
		--storage.path="$E2E_DIR/am2-data" --web.listen-address="127.0.0.1:$am2" \
		--cluster.listen-address=
fi
e2e_wait_http "http://127.0.0.1:$am/-/ready"
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/leaf.yml" \
	--storage.tsdb.path="$E2E_DIR/leaf-data" --web.listen-address="127.0.0.1:$sport" \
	--web.external-url=http://strata.example:9090/ --rules.alert.resend-delay=2s
if [ -n "$with_prom" ]; then
	e2e_wait_http "http://127.0.0.1:$am2/-/ready"
	e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
		--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$pport" \
		--web.external-url=http://strata.example:9090/ --rules.alert.resend-delay=2s
fi
e2e_wait_http "http://127.0.0.1:$sport/-/ready"

# alerts ALERTMANAGER NAMES: succeeds when the active alerts are exactly NAMES
alerts() {
	python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
got = json.load(urllib.request.urlopen("http://127.0.0.1:%s/api/v2/alerts" % sys.argv[1], timeout=5))
names = sorted(a["labels"]["alertname"] for a in got)
sys.exit(0 if names == sorted(sys.argv[2].split()) else 1)
PY
}
e2e_until 15 alerts "$am" "E2EFiring E2EResolves" ||
	e2e_fail "alerts did not reach the Alertmanager: $(e2e_get "http://127.0.0.1:$am/api/v2/alerts")"
e2e_get "http://127.0.0.1:$am/api/v2/alerts" >"$E2E_DIR/a1.json"

python3 - "$E2E_DIR/a1.json" <<'PY' || e2e_fail "alerts as received by the Alertmanager"
import json, sys, datetime
alerts = {a["labels"]["alertname"]: a for a in json.load(open(sys.argv[1]))}
f, r = alerts["E2EFiring"], alerts["E2EResolves"]
assert f["labels"] == {"alertname": "E2EFiring", "severity": "page", "site": "e2e"}, f["labels"]
assert r["labels"] == {"alertname": "E2EResolves", "severity": "info", "site": "e2e"}, r["labels"]
assert f["annotations"] == {"summary": "value is 1", "where": "e2e"}, f["annotations"]
assert r["annotations"] == {}, r["annotations"]
assert f["generatorURL"] == "http://strata.example:9090/graph?g0.expr=vector%281%29+%3E+0&g0.tab=1", f["generatorURL"]
assert f["status"]["state"] == "active", f["status"]
def t(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
now = datetime.datetime.now(datetime.timezone.utc).timestamp()
# startsAt: when it fired (this run); endsAt: 4 resend delays (2s) later
assert now - 30 < t(f["startsAt"]) <= now, (f["startsAt"], now)
assert 0 < t(f["endsAt"]) - now <= 8.5, (f["endsAt"], now)
PY
e1=$(python3 -c 'import json,sys; print([a["endsAt"] for a in json.load(open(sys.argv[1])) if a["labels"]["alertname"]=="E2EFiring"][0])' "$E2E_DIR/a1.json")

# resend: the firing alert's endsAt moves on
sleep 3
e2e_get "http://127.0.0.1:$am/api/v2/alerts" >"$E2E_DIR/a2.json"
python3 - "$E2E_DIR/a2.json" "$e1" <<'PY' || e2e_fail "E2EFiring was not re-sent"
import json, sys
f = [a for a in json.load(open(sys.argv[1])) if a["labels"]["alertname"] == "E2EFiring"][0]
assert f["endsAt"] > sys.argv[2], (f["endsAt"], sys.argv[2])
PY

# resolve: E2EResolves leaves the active alerts after its deadline
e2e_until 20 alerts "$am" "E2EFiring" ||
	e2e_fail "E2EResolves still active: $(e2e_get "http://127.0.0.1:$am/api/v2/alerts")"
[ "$(date +%s)" -ge "$deadline" ] || e2e_fail "E2EResolves gone before its deadline"

# strata's view: both Alertmanagers discovered, errors only for the dead one
e2e_get "http://127.0.0.1:$sport/api/v1/alertmanagers" >"$E2E_DIR/ams.json"
python3 - "$E2E_DIR/ams.json" "$am" "$dead" <<'PY' || e2e_fail "/api/v1/alertmanagers: $(cat "$E2E_DIR/ams.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["status"] == "success", d
assert d["data"] == {"activeAlertmanagers": [
    {"url": "http://127.0.0.1:%s/api/v2/alerts" % sys.argv[2]},
    {"url": "http://127.0.0.1:%s/api/v2/alerts" % sys.argv[3]}],
    "droppedAlertmanagers": []}, d
PY
e2e_get "http://127.0.0.1:$sport/metrics" >"$E2E_DIR/metrics.txt"
python3 - "$E2E_DIR/metrics.txt" "$am" "$dead" <<'PY' || e2e_fail "notification metrics"
import re, sys
text = open(sys.argv[1]).read()
def val(name, am=None):
    lab = '{alertmanager="http://127.0.0.1:%s/api/v2/alerts"}' % am if am else ""
    m = re.search("^" + re.escape(name + lab) + r" (\S+)$", text, re.M)
    assert m, (name, am)
    return float(m.group(1))
good, dead = sys.argv[2], sys.argv[3]
assert val("prometheus_notifications_sent_total", good) >= 3
assert val("prometheus_notifications_errors_total", good) == 0
assert val("prometheus_notifications_errors_total", dead) >= 1
assert val("prometheus_notifications_latency_seconds_count", good) >= 1
assert val("prometheus_notifications_dropped_total") == 0
assert val("prometheus_notifications_alertmanagers_discovered") == 2
assert val("prometheus_notifications_queue_capacity") == 10000
PY

# side by side with Prometheus 2.42 and its own Alertmanager
if [ -n "$with_prom" ]; then
	e2e_until 15 alerts "$am2" "E2EFiring" ||
		e2e_fail "Prometheus' alerts: $(e2e_get "http://127.0.0.1:$am2/api/v2/alerts")"
	e2e_get "http://127.0.0.1:$am/api/v2/alerts" >"$E2E_DIR/s.json"
	e2e_get "http://127.0.0.1:$am2/api/v2/alerts" >"$E2E_DIR/p.json"
	python3 - "$E2E_DIR/s.json" "$E2E_DIR/p.json" <<'PY' || e2e_fail "strata and Prometheus alerts differ"
import json, sys
def norm(path):
    return sorted((json.dumps(a["labels"], sort_keys=True), json.dumps(a["annotations"], sort_keys=True),
                   a["generatorURL"], a["status"]["state"]) for a in json.load(open(path)))
s, p = norm(sys.argv[1]), norm(sys.argv[2])
assert s == p, ("strata", s, "prometheus", p)
PY
fi
e2e_log "ok"
