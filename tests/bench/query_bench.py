#!/usr/bin/env python3
"""tests/bench/query_bench.py - PromQL query latency, strata beside Prometheus 2.42.

Writes one OpenMetrics file with timestamps (6h from T0 = 1700006400, a 6h
boundary, at 15s) holding:

  x_total     10,000 counter series (10 jobs x 100 instances x 10 paths), 6h
  y_total     100,000 counter series (10 jobs x 1,000 instances x 10 shards),
              the last 15 minutes only
  h           1,000 classic histograms (12 buckets, _sum, _count; 14,000
              series), the last 75 minutes

and backfills it into a real Prometheus 2.42 (promtool tsdb
create-blocks-from openmetrics) and into strata (strata-tool import
openmetrics), then starts both on 127.0.0.1 with an empty scrape config and
waits until neither compacts any more. Each query below then runs once per
system to warm up (the answers are compared with tests/e2e/promql_diff.py's
rules), then RUNS times per system, alternating; the figures printed are
medians of the wall-clock latency of the whole HTTP request and of the CPU
time the server process spent meanwhile (utime + stime from /proc, in
1/CLK_TCK steps: all its threads, Go's garbage collector included), which a
machine busy with other work disturbs less.

  range    sum by (job) (rate(x_total[5m]))                  6h at 15s
  instant  topk(10, rate(y_total[5m]))                        at the end
  range    histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))  1h at 15s
  instant  the same histogram_quantile                        at the end

Nothing is asserted: this prints figures for tests/bench/README.md.

usage: query_bench.py [--builddir DIR] [--runs R] [--workdir DIR] [--keep]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from benchlib import cpu_seconds, get, machine, metric, stop_proc, wait_ready

T0 = 1700006400
HOURS = 6
STEP = 15
END = T0 + HOURS * 3600
BUCKETS = ('0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf')

QUERIES = (
    ('sum by (job) (rate(x_total[5m])), 10k series, 6h at 15s', 'range',
     'sum by (job) (rate(x_total[5m]))', T0, END),
    ('topk(10, rate(y_total[5m])), 100k series', 'instant',
     'topk(10, rate(y_total[5m]))', None, END),
    ('histogram_quantile(0.9, ...), 1k histograms, 1h at 15s', 'range',
     'histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))', END - 3600, END),
    ('histogram_quantile(0.9, ...), 1k histograms, instant', 'instant',
     'histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))', None, END),
)


def fmt_ts(ms):
    return '%d.%03d' % divmod(ms, 1000)


def generate(path):
    """Writes the data set; returns (series, samples)."""
    nser = nsamp = 0
    with open(path, 'w', buffering=1 << 22) as f:
        f.write('# TYPE x counter\n')
        n = HOURS * 3600 // STEP + 1
        for j in range(10):
            for i in range(100):
                for p in range(10):
                    s = (j * 100 + i) * 10 + p
                    pre = 'x_total{job="j%d",instance="host-%03d:9100",path="/p%d"} ' % (j, i, p)
                    off = T0 * 1000 + (s * 7919) % (STEP * 1000)
                    v = s % 1000
                    out = []
                    for k in range(n):
                        v += (k * 7 + s) % 13
                        out.append('%s%d %s\n' % (pre, v, fmt_ts(off + k * STEP * 1000)))
                    f.write(''.join(out))
                    nser += 1
                    nsamp += n
        f.write('# TYPE y counter\n')
        n = 15 * 60 // STEP
        start = END - 15 * 60
        for j in range(10):
            for i in range(1000):
                for sh in range(10):
                    s = (j * 1000 + i) * 10 + sh
                    pre = 'y_total{job="j%d",instance="node-%04d:9100",shard="%d"} ' % (j, i, sh)
                    off = start * 1000 + (s * 7919) % (STEP * 1000)
                    v = s % 5000
                    out = []
                    for k in range(n):
                        v += (k * 3 + s) % 17
                        out.append('%s%d %s\n' % (pre, v, fmt_ts(off + k * STEP * 1000)))
                    f.write(''.join(out))
                    nser += 1
                    nsamp += n
        f.write('# TYPE h histogram\n')
        n = 75 * 60 // STEP
        start = END - 75 * 60
        for j in range(10):
            for i in range(100):
                s = j * 100 + i
                lab = 'job="j%d",instance="host-%03d:9100"' % (j, i)
                pres = ['h_bucket{%s,le="%s"} ' % (lab, b) for b in BUCKETS]
                cnt_pre, sum_pre = 'h_count{%s} ' % lab, 'h_sum{%s} ' % lab
                off = start * 1000 + (s * 7919) % (STEP * 1000)
                cum = [0] * len(BUCKETS)
                total = 0.0
                out = []
                for k in range(n):
                    ts = fmt_ts(off + k * STEP * 1000)
                    for b in range(len(BUCKETS)):
                        cum[b] += (k + s + b * 5) % (3 + b)
                    for b in range(1, len(BUCKETS)):
                        cum[b] = max(cum[b], cum[b - 1])
                    total += cum[-1] * 0.01
                    for b in range(len(BUCKETS)):
                        out.append('%s%d %s\n' % (pres[b], cum[b], ts))
                    out.append('%s%d %s\n' % (cnt_pre, cum[-1], ts))
                    out.append('%s%.3f %s\n' % (sum_pre, total, ts))
                f.write(''.join(out))
                nser += len(BUCKETS) + 2
                nsamp += n * (len(BUCKETS) + 2)
        f.write('# EOF\n')
    return nser, nsamp


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def settle(systems, quiet=70, limit=600):
    """Waits until no system's block count or compaction count changed for
    `quiet` seconds (Prometheus plans compactions once a minute)."""
    names = ('prometheus_tsdb_blocks_loaded', 'prometheus_tsdb_compactions_total')
    last, since, end = None, time.time(), time.time() + limit
    while time.time() < end:
        cur = [tuple(metric(s['base'], n) for n in names) for s in systems]
        if cur != last:
            last, since = cur, time.time()
            print('  tsdb (blocks, compactions): %s' % ', '.join(
                '%s %s' % (s['name'], c) for s, c in zip(systems, cur)), flush=True)
        elif time.time() - since >= quiet:
            return
        time.sleep(5)


def run_query(base, kind, expr, start, end):
    if kind == 'range':
        q = {'query': expr, 'start': start, 'end': end, 'step': STEP}
        url = base + '/api/v1/query_range?' + urllib.parse.urlencode(q)
    else:
        url = base + '/api/v1/query?' + urllib.parse.urlencode({'query': expr, 'time': end})
    t0 = time.perf_counter()
    body = get(url)
    return time.perf_counter() - t0, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--builddir', default=os.environ.get('STRATA_BUILDDIR', 'build'))
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--workdir', help='keep data here (reused when present)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary work directory')
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, '..', 'e2e'))
    import promql_diff

    tmp = a.workdir or tempfile.mkdtemp(prefix='strata-qbench-')
    os.makedirs(tmp, exist_ok=True)
    data = os.path.join(tmp, 'data.om')
    pdir, sdir = os.path.join(tmp, 'prom-data'), os.path.join(tmp, 'strata-data')
    procs = []
    try:
        print('machine: %s' % machine(), flush=True)
        if not os.path.exists(pdir) or not os.path.exists(sdir):
            t0 = time.time()
            nser, nsamp = generate(data)
            print('data: %d series, %d samples, %.0f MB, written in %.0fs'
                  % (nser, nsamp, os.path.getsize(data) / 1e6, time.time() - t0), flush=True)
            shutil.rmtree(pdir, ignore_errors=True)
            shutil.rmtree(sdir, ignore_errors=True)
            t0 = time.time()
            subprocess.run(['promtool', 'tsdb', 'create-blocks-from', 'openmetrics', '-q', data, pdir],
                           check=True)
            tp = time.time() - t0
            t0 = time.time()
            subprocess.run([os.path.join(a.builddir, 'strata-tool'), 'import', 'openmetrics', data,
                            '--storage.tsdb.path', sdir], check=True, stdout=subprocess.DEVNULL)
            ts = time.time() - t0
            print('import: promtool %.1fs, strata-tool %.1fs' % (tp, ts), flush=True)
            os.unlink(data)
        cfg = os.path.join(tmp, 'empty.yml')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: 15s\nscrape_configs: []\n')
        systems = []
        common = ['--config.file=' + cfg, '--storage.tsdb.retention.time=100y', '--query.lookback-delta=5m']
        for name, cmd, path in (
                ('strata', [os.path.join(a.builddir, 'strata-leaf')], sdir),
                ('prometheus', ['prometheus'], pdir)):
            port = free_port()
            log = open(os.path.join(tmp, name + '.log'), 'w')
            p = subprocess.Popen(cmd + common + ['--storage.tsdb.path=' + path,
                                                 '--web.listen-address=127.0.0.1:%d' % port],
                                 stdout=log, stderr=subprocess.STDOUT)
            procs.append(p)
            systems.append({'name': name, 'base': 'http://127.0.0.1:%d' % port, 'proc': p})
        for s in systems:
            wait_ready(s['base'] + '/-/ready')
        print('waiting for compactions to finish (load average %s)'
              % ' '.join('%.2f' % x for x in os.getloadavg()), flush=True)
        settle(systems)

        lat = {(q[0], s['name']): [] for q in QUERIES for s in systems}
        cpu = {(q[0], s['name']): [] for q in QUERIES for s in systems}
        for label, kind, expr, start, end in QUERIES:
            answers = {}
            for s in systems:
                _, body = run_query(s['base'], kind, expr, start, end)
                answers[s['name']] = json.loads(body)
            mode = ('range', start, end, STEP) if kind == 'range' else ('instant', end)
            diff = promql_diff.compare(expr, mode, answers['prometheus'], answers['strata'])
            print('warm-up %s: answers %s' % (label, 'agree' if not diff else 'DIFFER: %s' % diff),
                  flush=True)
        for r in range(a.runs):
            for label, kind, expr, start, end in QUERIES:
                for s in (systems if r % 2 == 0 else systems[::-1]):
                    c0 = cpu_seconds(s['proc'].pid)
                    dt, _ = run_query(s['base'], kind, expr, start, end)
                    lat[(label, s['name'])].append(dt)
                    cpu[(label, s['name'])].append(cpu_seconds(s['proc'].pid) - c0)
            print('run %d/%d done' % (r + 1, a.runs), flush=True)
        print()
        print('median (min-max) of %d runs, seconds per query (whole HTTP request); '
              'load average %s' % (a.runs, ' '.join('%.2f' % x for x in os.getloadavg())))
        print('| query | strata (s) | Prometheus 2.42 (s) | strata / Prometheus '
              '| CPU-s strata | CPU-s Prometheus | CPU ratio |')
        print('|---|---|---|---|---|---|---|')
        for label, *_ in QUERIES:
            ls, lp = lat[(label, 'strata')], lat[(label, 'prometheus')]
            ms, mp = statistics.median(ls), statistics.median(lp)
            cs = statistics.median(cpu[(label, 'strata')])
            cp = statistics.median(cpu[(label, 'prometheus')])
            print('| %s | %.3f (%.3f-%.3f) | %.3f (%.3f-%.3f) | %.2f | %.2f | %.2f | %s |' % (
                label, ms, min(ls), max(ls), mp, min(lp), max(lp), ms / mp, cs, cp,
                '%.2f' % (cs / cp) if cp > 0 else '-'))
        print()
        print('strata pid %d, Prometheus pid %d (stopped now)' % (procs[0].pid, procs[1].pid))
    finally:
        for p in procs:
            stop_proc(p)
        if not a.workdir and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
