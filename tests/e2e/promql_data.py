#!/usr/bin/env python3
"""tests/e2e/promql_data.py - deterministic OpenMetrics data for the PromQL
differential test (0650), with a timestamp on every sample.

Three hours from T0 (1700000000, not aligned to a 2h block, so the data
spans two blocks split at 1700006400) of about 2,450 series over 19
instances of four jobs: the api job scraped every 15s, the others every
30s, each instance at its own offset with a few ms of jitter, as real
scrapes are. Counters reset when their
instance restarts (every instance restarts 0-2 times); gauges include NaN,
+Inf and -Inf; classic histograms (buckets, _sum, _count) and summaries
(quantiles, some NaN, _sum, _count); an info metric; series that stop
before the end of the data (an instance gone at 2h30m, short-lived batch
task series, an instance with a 20m hole), a gauge sampled every 6m (more
than the lookback delta), label values that need escaping; series sampled
exactly on the minute (window edges), floats at the ends of float64, a
counter near 2^53, and classic histograms that break the rules (a bound
written twice, falling counts, no +Inf bucket).

Output is identical for identical arguments (seeded generator, repr()
floats), so strata and Prometheus load the same bytes.

usage: promql_data.py OUT [--hours H]     prints the series and sample counts
"""
import math
import random
import sys

T0 = 1700000000                 # seconds; 2h blocks start at 1699999200 and 1700006400
HOURS = 3
JOBS = (('api', 8, 15), ('db', 4, 30), ('cache', 4, 30), ('batch', 3, 30))
BUCKETS = ('0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf')
HANDLERS = ('/api/v1/query', '/api/v1/query_range', '/api/v1/write', '/metrics')


def fmt_ts(ms):
    return '%d.%03d' % divmod(ms, 1000)


def fmt_v(v):
    if math.isnan(v):
        return 'NaN'
    if math.isinf(v):
        return '+Inf' if v > 0 else '-Inf'
    if v == 0 and math.copysign(1, v) < 0:
        return '-0'
    if v == int(v) and abs(v) < 1e15:
        return '%d' % v
    return repr(v)


def esc(v):
    return v.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def lbl(d):
    return '{' + ','.join('%s="%s"' % (k, esc(v)) for k, v in d.items()) + '}'


class Instance:
    """One scraped target: its timeline of scrape timestamps (ms) and
    restarts (counter resets)."""

    def __init__(self, rng, job, idx, interval, end_ms):
        self.job, self.idx = job, idx
        self.labels = {'job': job, 'instance': '10.0.%d.%d:9100' % (len(job), idx + 1)}
        off = rng.randrange(interval * 1000)
        t = T0 * 1000 + off
        stop = end_ms
        hole = None
        if job == 'batch' and idx == 2:
            stop = T0 * 1000 + int(2.5 * 3600 * 1000)           # gone at 2h30m
        if job == 'cache' and idx == 3:
            hole = (T0 * 1000 + 3600 * 1000, T0 * 1000 + 4800 * 1000)  # 20m hole at 1h
        self.ts = []
        while t < stop:
            if hole is None or not (hole[0] <= t < hole[1]):
                self.ts.append(t + rng.randrange(-40, 41))
            t += interval * 1000
        self.restarts = sorted(rng.sample(range(len(self.ts)), rng.randrange(3)))
        self.restarts = [r for r in self.restarts if r > 0]

    def epochs(self):
        """epoch number (restarts so far) per timestamp index."""
        e, out, rs = 0, [], set(self.restarts)
        for i in range(len(self.ts)):
            if i in rs:
                e += 1
            out.append(e)
        return out


def counter_series(rng, inst, rate, burst=0.0, integer=True):
    """A counter with resets at the instance's restarts."""
    vals, v, ep = [], rng.uniform(0, 1000) if not integer else float(rng.randrange(1000)), inst.epochs()
    for i in range(len(inst.ts)):
        if i > 0 and ep[i] != ep[i - 1]:
            v = 0.0
        dt = 15 if inst.job == 'api' else 30
        inc = rate * dt * rng.uniform(0.5, 1.5)
        if burst and rng.random() < 0.02:
            inc *= burst
        v += round(inc) if integer else round(inc, 3)
        vals.append(v)
    return vals


def main():
    out = sys.argv[1]
    hours = HOURS
    if '--hours' in sys.argv:
        hours = float(sys.argv[sys.argv.index('--hours') + 1])
    rng = random.Random(6650)
    end_ms = T0 * 1000 + int(hours * 3600 * 1000)
    insts = []
    for job, n, interval in JOBS:
        for i in range(n):
            insts.append(Instance(rng, job, i, interval, end_ms))
    fams = []   # (name, type, [(labels, [(ts_ms, value)])]) in output order
    nseries = nsamples = 0

    def fam(name, typ, series):
        nonlocal nseries, nsamples
        fams.append((name, typ, series))
        nseries += len(series)
        nsamples += sum(len(s[1]) for s in series)

    # http_requests_total: counter, per method and code
    s = []
    for it in insts:
        methods = ('GET', 'POST', 'PUT') if it.job == 'api' else ('GET', 'POST')
        for m in methods:
            for code in ('200', '404', '500'):
                rate = {'200': 20.0, '404': 1.0, '500': 0.1}[code] * (2 if m == 'GET' else 1)
                vals = counter_series(rng, it, rate, burst=10)
                s.append((dict(it.labels, method=m, code=code), list(zip(it.ts, vals))))
    fam('http_requests', 'counter', s)

    # node_cpu_seconds: counter with fractional values, 8 cpus x 4 modes
    s = []
    for it in insts:
        for cpu in range(8):
            for mode, share in (('idle', 0.7), ('user', 0.2), ('system', 0.08), ('iowait', 0.02)):
                vals = counter_series(rng, it, share, integer=False)
                s.append((dict(it.labels, cpu=str(cpu), mode=mode), list(zip(it.ts, vals))))
    fam('node_cpu_seconds', 'counter', s)

    # process_cpu_seconds: one per instance
    s = [(dict(it.labels), list(zip(it.ts, counter_series(rng, it, 0.3, integer=False))))
         for it in insts]
    fam('process_cpu_seconds', 'counter', s)

    # temperature_celsius: gauges with NaN, +Inf and -Inf
    s = []
    for k, it in enumerate(insts):
        for sensor in range(4):
            base = 40 + 5 * sensor + k
            pts = []
            for i, t in enumerate(it.ts):
                v = base + 10 * math.sin((t / 1000 - T0) / 1800.0 + sensor) + rng.gauss(0, 1)
                v = round(v, 2)
                if sensor == 3 and k % 5 == 0 and i % 97 == 13:
                    v = float('nan')
                if sensor == 2 and k == 1 and 300 <= i < 305:
                    v = float('inf')
                if sensor == 2 and k == 2 and 100 <= i < 103:
                    v = float('-inf')
                pts.append((t, v))
            s.append((dict(it.labels, sensor=str(sensor)), pts))
    fam('temperature_celsius', 'gauge', s)

    # memory_usage_bytes: large values
    s = []
    for it in insts:
        v, pts = rng.uniform(1e8, 4e9), []
        for t in it.ts:
            v = max(1e6, v + rng.gauss(0, 2e6))
            pts.append((t, float(int(v))))
        s.append((dict(it.labels), pts))
    fam('memory_usage_bytes', 'gauge', s)

    # queue_depth: small integers, zeros, negatives for one instance
    s = []
    for k, it in enumerate(insts):
        pts = []
        for t in it.ts:
            v = float(max(0, int(rng.gauss(3, 4))))
            if k == 4:
                v = -v
            pts.append((t, v))
        s.append((dict(it.labels), pts))
    fam('queue_depth', 'gauge', s)

    # up: 1, with a few 0s
    s = []
    for it in insts:
        s.append((dict(it.labels), [(t, 0.0 if rng.random() < 0.01 else 1.0) for t in it.ts]))
    fam('up', 'gauge', s)

    # disk_free_bytes: slowly decreasing, two devices
    s = []
    for it in insts:
        for dev in ('/dev/sda1', '/dev/nvme0n1p2'):
            v, pts = rng.uniform(5e10, 2e11), []
            for t in it.ts:
                v -= rng.uniform(0, 2e5)
                pts.append((t, float(int(v))))
            s.append((dict(it.labels, device=dev), pts))
    fam('disk_free_bytes', 'gauge', s)

    # http_request_duration_seconds: classic histogram per handler
    s = []
    for it in insts:
        ep = it.epochs()
        for h in HANDLERS:
            scale = {'/api/v1/query': 0.05, '/api/v1/query_range': 0.4,
                     '/api/v1/write': 0.01, '/metrics': 0.002}[h]
            cum = [0] * len(BUCKETS)
            total, ssum = 0, 0.0
            rows = {b: [] for b in BUCKETS}
            rows['_sum'], rows['_count'] = [], []
            for i, t in enumerate(it.ts):
                if i > 0 and ep[i] != ep[i - 1]:
                    cum = [0] * len(BUCKETS)
                    total, ssum = 0, 0.0
                n = rng.randrange(0, 40)
                for _ in range(n):
                    x = rng.expovariate(1 / scale)
                    ssum += x
                    for bi, b in enumerate(BUCKETS):
                        if b == '+Inf' or x <= float(b):
                            cum[bi] += 1
                total += n
                for bi, b in enumerate(BUCKETS):
                    rows[b].append((t, float(cum[bi])))
                rows['_sum'].append((t, round(ssum, 6)))
                rows['_count'].append((t, float(total)))
            s.append((dict(it.labels, handler=h), rows))
    hist = s
    nseries += len(hist) * (len(BUCKETS) + 2)
    nsamples += sum(len(r['_count']) for _, r in hist) * (len(BUCKETS) + 2)

    # rpc_duration_seconds: summary per service; quantiles NaN at times
    summ = []
    for it in insts:
        ep = it.epochs()
        for svc in ('auth', 'billing'):
            rows = {'0.5': [], '0.9': [], '0.99': [], '_sum': [], '_count': []}
            total, ssum = 0, 0.0
            for i, t in enumerate(it.ts):
                if i > 0 and ep[i] != ep[i - 1]:
                    total, ssum = 0, 0.0
                n = rng.randrange(0, 10)
                total += n
                ssum += round(n * rng.uniform(0.01, 0.2), 4)
                for q, f in (('0.5', 1.0), ('0.9', 2.5), ('0.99', 6.0)):
                    v = float('nan') if n == 0 else round(f * rng.uniform(0.01, 0.05), 5)
                    rows[q].append((t, v))
                rows['_sum'].append((t, round(ssum, 4)))
                rows['_count'].append((t, float(total)))
            summ.append((dict(it.labels, service=svc), rows))
    nseries += len(summ) * 5
    nsamples += sum(len(r['_count']) for _, r in summ) * 5

    # build: info metric (series build_info), constant 1
    s = []
    for k, it in enumerate(insts):
        ver = '1.%d.%d' % (k % 3, k % 2)
        s.append((dict(it.labels, version=ver, revision='abc%04x' % (k * 2654435761 % 65536),
                       goversion='go1.19'), [(t, 1.0) for t in it.ts]))
    fam('build', 'info', s)

    # batch_task_runs_total: short-lived series (churn), batch job only
    s = []
    for it in insts:
        if it.job != 'batch':
            continue
        for task in range(60):
            a = rng.randrange(len(it.ts))
            b = min(len(it.ts), a + rng.randrange(5, 80))
            v, pts = 0.0, []
            for t in it.ts[a:b]:
                v += rng.randrange(0, 5)
                pts.append((t, v))
            s.append((dict(it.labels, task='t%03d' % task), pts))
    fam('batch_task_runs', 'counter', s)

    # sparse_gauge: every 6 minutes (longer than the 5m lookback)
    s = []
    for it in insts:
        if it.job != 'db':
            continue
        pts = [(t, round(rng.uniform(0, 100), 1)) for t in it.ts[::12]]
        s.append((dict(it.labels), pts))
    fam('sparse_gauge', 'gauge', s)

    # weird_labels: values that need escaping in the text and in JSON
    s = []
    it = insts[0]
    for k, path in enumerate(('/a"b', 'back\\slash', 'new\nline', 'ünïcödé ✓', 'x,y=z', '')):
        if path == '':
            continue
        s.append((dict(it.labels, path=path, idx=str(k)),
                  [(t, float(k * 10 + (i % 7))) for i, t in enumerate(it.ts)]))
    fam('weird_labels', 'gauge', s)

    # mixed_type: unknown type (untyped)
    s = [(dict(it.labels), [(t, float(i % 13) - 6) for i, t in enumerate(it.ts)])
         for it in insts if it.job == 'db']
    fam('mixed_type', 'unknown', s)

    # aligned_gauge, aligned_counter_total: db only, exactly every 60s on
    # the minute, no jitter, so instant times and range steps on the minute
    # hit the edges of lookback and range windows exactly
    s, c = [], []
    first = (T0 // 60 + 1) * 60 * 1000
    for k, it in enumerate(insts):
        if it.job != 'db':
            continue
        ts = list(range(first, end_ms, 60000))
        s.append((dict(it.labels), [(t, float((i * 7 + k) % 11)) for i, t in enumerate(ts)]))
        v, pts = 0.0, []
        for i, t in enumerate(ts):
            v = 0.0 if i % 50 == 49 else v + (i % 4) + k
            pts.append((t, v))
        c.append((dict(it.labels), pts))
    fam('aligned_gauge', 'gauge', s)
    fam('aligned_counter', 'counter', c)

    # extreme_values: magnitudes at the ends of float64, cycling
    ext = (1e308, -1e308, 5e-324, 1e-300, 1.7976931348623157e308, 0.30000000000000004,
           -0.0, 9007199254740993.0, 1e21, 123456789.125, -2.5e-7, 1e15 + 0.3)
    s = []
    for k, it in enumerate(insts):
        if it.job != 'db':
            continue
        s.append((dict(it.labels), [(t, ext[(i + 3 * k) % len(ext)]) for i, t in enumerate(it.ts)]))
    fam('extreme_values', 'gauge', s)

    # big_counter_total: a counter near 2^53 growing by small steps
    s = []
    for k, it in enumerate(insts):
        if it.job != 'cache':
            continue
        v, pts = 9.0e15 + k * 1e14, []
        for t in it.ts:
            v += rng.randrange(1, 9)
            pts.append((t, v))
        s.append((dict(it.labels), pts))
    fam('big_counter', 'counter', s)

    # odd_histogram: classic histograms that break the rules, db only:
    # a bound written twice ("1" and "1.0"), counts that fall with le,
    # no +Inf bucket, only a +Inf bucket
    odd = []
    shapes = (('0.1', '1.0', '1', '10', '+Inf'), ('0.1', '1', '10', '+Inf'),
              ('0.1', '1', '10'), ('+Inf',))
    for k, it in enumerate([x for x in insts if x.job == 'db']):
        les = shapes[k]
        rows = {le: [] for le in les}
        rows['_count'], rows['_sum'] = [], []
        cum = [0.0] * len(les)
        for t in it.ts:
            for bi in range(len(les)):
                cum[bi] += rng.randrange(0, 3) + bi
            vals = list(cum)
            if k == 1:
                vals[1], vals[2] = vals[2] + 5, vals[1]
            for bi, le in enumerate(les):
                rows[le].append((t, vals[bi]))
            rows['_count'].append((t, max(vals)))
            rows['_sum'].append((t, round(max(vals) * 0.7, 3)))
        odd.append((dict(it.labels), les, rows))
    nseries += sum(len(les) + 2 for _, les, _ in odd)
    nsamples += sum(len(r['_count']) * (len(les) + 2) for _, les, r in odd)

    with open(out, 'w') as f:
        w = f.write
        for name, typ, series in fams:
            w('# TYPE %s %s\n' % (name, typ))
            sname = name + {'counter': '_total', 'info': '_info'}.get(typ, '')
            for labels, pts in series:
                ls = lbl(labels)
                for t, v in pts:
                    w('%s%s %s %s\n' % (sname, ls, fmt_v(v), fmt_ts(t)))
        w('# TYPE http_request_duration_seconds histogram\n')
        for labels, rows in hist:
            pre = [lbl(dict(labels, le=b)) for b in BUCKETS]
            ls = lbl(labels)
            for i in range(len(rows['_count'])):
                ts = fmt_ts(rows['_count'][i][0])
                for bi, b in enumerate(BUCKETS):
                    w('http_request_duration_seconds_bucket%s %s %s\n'
                      % (pre[bi], fmt_v(rows[b][i][1]), ts))
                w('http_request_duration_seconds_count%s %s %s\n' % (ls, fmt_v(rows['_count'][i][1]), ts))
                w('http_request_duration_seconds_sum%s %s %s\n' % (ls, fmt_v(rows['_sum'][i][1]), ts))
        w('# TYPE rpc_duration_seconds summary\n')
        for labels, rows in summ:
            pre = {q: lbl(dict(labels, quantile=q)) for q in ('0.5', '0.9', '0.99')}
            ls = lbl(labels)
            for i in range(len(rows['_count'])):
                ts = fmt_ts(rows['_count'][i][0])
                for q in ('0.5', '0.9', '0.99'):
                    w('rpc_duration_seconds%s %s %s\n' % (pre[q], fmt_v(rows[q][i][1]), ts))
                w('rpc_duration_seconds_count%s %s %s\n' % (ls, fmt_v(rows['_count'][i][1]), ts))
                w('rpc_duration_seconds_sum%s %s %s\n' % (ls, fmt_v(rows['_sum'][i][1]), ts))
        # typed unknown: an OpenMetrics histogram may not break these rules
        # (strata-tool refuses it, promtool does not check), but such series
        # reach PromQL anyway through untyped text exposition or /federate
        for suffix in ('_bucket', '_count', '_sum'):
            w('# TYPE odd_histogram%s unknown\n' % suffix)
            for labels, les, rows in odd:
                for le in (les if suffix == '_bucket' else (suffix,)):
                    ls = lbl(dict(labels, le=le)) if suffix == '_bucket' else lbl(labels)
                    for t, v in rows[le]:
                        w('odd_histogram%s%s %s %s\n' % (suffix, ls, fmt_v(v), fmt_ts(t)))
        w('# EOF\n')
    print('%d series, %d samples, %s .. %s' % (nseries, nsamples, T0, end_ms // 1000))


if __name__ == '__main__':
    main()
