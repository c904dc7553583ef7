#!/bin/sh
# tests/e2e/0601-rules-vs-prometheus.sh - recording and alerting rules in
# strata-leaf and in a real Prometheus 2.42 with the same configuration.
#
# Both load the same rule file by the same absolute path, so their groups
# evaluate at the same instants (the slot is a hash of file and group name).
# The rules' values are functions of the evaluation time only, so on the
# window both servers ran, every recorded sample must be identical: same
# timestamps, same values, same labels; a rule reading another rule's output
# of the same instant; staleness when a rule's output disappears (an instant
# query right after the disappearance is empty in both); ALERTS firing at the
# same instants. /api/v1/rules and /api/v1/alerts must then agree once the
# fields that depend on when each server started are removed.
. "$(dirname "$0")/lib.sh"
command -v prometheus >/dev/null || { e2e_log "prometheus not installed"; exit 77; }

sport=$(e2e_port)
pport=$(e2e_port)
sbase="http://127.0.0.1:$sport"
pbase="http://127.0.0.1:$pport"
cat >"$E2E_DIR/rules.yml" <<'EOF'
groups:
  - name: e2e fast
    interval: 2s
    rules:
      - record: e2e:time
        expr: vector(time())
      - record: e2e:double
        expr: e2e:time * 2
        labels:
          kind: derived
      - record: e2e:blink
        expr: vector(1) and on() (vector(time() % 12) < 6)
      - alert: E2EAlways
        expr: vector(1234567)
        for: 4s
        labels:
          severity: '{{ if gt $value 1000.0 }}page{{ else }}info{{ end }}'
        annotations:
          summary: 'value {{ $value | humanize }} ({{ printf "%.1f" $value }})'
          where: '{{ $labels.nope }}|{{ $externalLabels.site }}'
          broken: '{{ humanize "x" }}'
      - alert: E2ENever
        expr: vector(1) == 0
  - name: e2e slow
    rules:
      - record: e2e:slow
        expr: count(e2e:time)
EOF
cat >"$E2E_DIR/prom.yml" <<'EOF'
global:
  evaluation_interval: 3s
  external_labels:
    site: e2e
rule_files:
  - rules.yml
EOF

e2e_start prometheus prometheus --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/prom-data" --web.listen-address="127.0.0.1:$pport"
e2e_start leaf "$STRATA_BUILDDIR/strata-leaf" --config.file="$E2E_DIR/prom.yml" \
	--storage.tsdb.path="$E2E_DIR/leaf-data" --web.listen-address="127.0.0.1:$sport"
e2e_wait_http "$pbase/-/ready"
e2e_wait_http "$sbase/-/ready"
sleep 17

now=$(date +%s)
python3 - "$sbase" "$pbase" "$now" <<'PY' || e2e_fail "rule outputs differ"
import json, sys, urllib.parse, urllib.request

sbase, pbase, now = sys.argv[1], sys.argv[2], float(sys.argv[3])

def query(base, q, t):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": "%.3f" % t})
    d = json.load(urllib.request.urlopen(url, timeout=10))
    assert d["status"] == "success", (base, q, d)
    return d["data"]["result"]

def samples(base, q):
    """{labels: [(t, v)]} of the raw samples of a range selector."""
    out = {}
    for s in query(base, q + "[40s]", now):
        key = tuple(sorted(s["metric"].items()))
        out[key] = [(float(t), v) for t, v in s["values"]]
    return out

def window(a, b):
    ts_a = [t for v in a.values() for t, _ in v]
    ts_b = [t for v in b.values() for t, _ in v]
    assert ts_a and ts_b, ("no samples", a, b)
    return max(min(ts_a), min(ts_b)), min(max(ts_a), max(ts_b))

def same_on_window(q, lo=None, hi=None):
    s, p = samples(sbase, q), samples(pbase, q)
    if lo is None:
        lo, hi = window(s, p)
    assert hi - lo >= 4, ("overlap too short", q, lo, hi, s, p)
    cut = lambda d: {k: [x for x in v if lo <= x[0] <= hi] for k, v in d.items()}
    cs, cp = cut(s), cut(p)
    cs = {k: v for k, v in cs.items() if v}
    cp = {k: v for k, v in cp.items() if v}
    assert cs == cp, ("%s on [%.3f, %.3f]" % (q, lo, hi), "strata", cs, "prometheus", cp)
    return lo, hi, cs

lo, hi, got = same_on_window("e2e:time")
n = len(got[(("__name__", "e2e:time"),)])
# the instants are the group's slots: 2s apart, and each value is its time
ts = [t for t, _ in got[(("__name__", "e2e:time"),)]]
assert all(abs(b - a - 2) < 1e-9 for a, b in zip(ts, ts[1:])), ts
assert all(float(v) == t for t, v in got[(("__name__", "e2e:time"),)]), got
same_on_window("e2e:double", lo, hi)
same_on_window("e2e:slow")
# staleness: where e2e:blink stops, an instant query is empty in both
lo_b, hi_b, blink = same_on_window("e2e:blink", lo, hi)
t = lo
checked = 0
while t <= hi:
    rs, rp = query(sbase, "e2e:blink", t + 0.001), query(pbase, "e2e:blink", t + 0.001)
    assert [r["value"][1] for r in rs] == [r["value"][1] for r in rp], (t, rs, rp)
    if not rs:
        checked += 1
    t += 2
assert checked > 0, "e2e:blink never went stale in the window"
# ALERTS while both fire
s, p = samples(sbase, 'ALERTS{alertstate="firing"}'), samples(pbase, 'ALERTS{alertstate="firing"}')
lo_a, hi_a = window(s, p)
same_on_window('ALERTS{alertstate="firing"}', lo_a, hi_a)
print("0601: %d instants of e2e:time identical, %d stale checks, ALERTS firing on [%.3f, %.3f]"
      % (n, checked, lo_a, hi_a))
PY

# The rules and alerts APIs, with what depends on each server's start
# (evaluation times and durations, activeAt) removed.
for path in '/api/v1/rules' '/api/v1/rules?type=alert' '/api/v1/rules?type=record' \
    '/api/v1/alerts' '/api/v1/rules?type=nope'; do
	e2e_get "$sbase$path" >"$E2E_DIR/s.json"
	e2e_get "$pbase$path" >"$E2E_DIR/p.json"
	python3 - "$E2E_DIR/s.json" "$E2E_DIR/p.json" "$path" <<'PY' || e2e_fail "$path differs"
import json, sys

def norm(x):
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()
                if k not in ("evaluationTime", "lastEvaluation", "activeAt")}
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x

s, p = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert norm(s) == norm(p), (sys.argv[3], json.dumps(norm(s), indent=1), json.dumps(norm(p), indent=1))
PY
done
e2e_get "$sbase/metrics" >"$E2E_DIR/metrics.txt"
grep -q '^prometheus_rule_group_rules{rule_group=".*/rules.yml;e2e fast"} 5$' "$E2E_DIR/metrics.txt" ||
	e2e_fail "prometheus_rule_group_rules missing from /metrics"

# strata-tool check rules agrees with promtool on a bad file.
printf 'groups:\n- name: g\n  rules:\n  - record: 1bad\n    expr: up(\n' >"$E2E_DIR/bad.yml"
"$STRATA_BUILDDIR/strata-tool" check rules "$E2E_DIR/bad.yml" >"$E2E_DIR/s.out" 2>&1 && e2e_fail "bad.yml accepted"
if command -v promtool >/dev/null; then
	promtool check rules "$E2E_DIR/bad.yml" >"$E2E_DIR/p.out" 2>&1 || true
	cmp -s "$E2E_DIR/s.out" "$E2E_DIR/p.out" ||
		e2e_fail "check rules output differs: $(diff "$E2E_DIR/s.out" "$E2E_DIR/p.out")"
fi
e2e_log "ok"
