#!/usr/bin/env python3
"""tests/bench/leaf_bench.py - strata-leaf beside Prometheus 2.42 and VictoriaMetrics.

Starts one synthetic target server (tests/bench/synth-targets: T targets x S
series) and, at the same time and against the same targets, strata-leaf, a
real Prometheus 2.42 and a real VictoriaMetrics (Debian packages), each with
its own port and data dir on 127.0.0.1. After a warm-up it measures, for each:

  - CPU seconds per million samples ingested (utime+stime from /proc over a
    window, divided by the samples its own counter says it appended),
  - resident memory per active series (VmRSS / series),
  - /federate of every series: median latency and bytes (uncompressed).

Each configuration runs RUNS times; the figures printed are medians, with
the machine (CPU model, cores, load average before and after) for the
record. Nothing is asserted: this prints figures for tests/bench/README.md.
A large run (1M series) wants a longer --warmup: Prometheus and
VictoriaMetrics create their series during the first scrapes.

usage: leaf_bench.py [--series N] [--targets T] [--interval S] [--warmup S]
                     [--window S] [--runs R] [--federate-runs N]
                     [--builddir DIR] [--only strata,prometheus,vm]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from benchlib import cpu_seconds, free_ports, get, machine, memory, metric, stop_proc, wait_ready

class System:
    def __init__(self, name, cmd, base, samples_metric, log):
        self.name, self.base, self.samples_metric = name, base, samples_metric
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def samples(self):
        return metric(self.base, self.samples_metric)

    def stop(self):
        stop_proc(self.proc)


def scrape_config(targets, interval, first):
    tl = ', '.join('"127.0.0.1:%d"' % (first + i) for i in range(targets))
    return ('global:\n  scrape_interval: %ds\n  scrape_timeout: %ds\n'
            'scrape_configs:\n  - job_name: synth\n    static_configs:\n'
            '      - targets: [%s]\n') % (interval, max(1, interval - 1), tl)


def run_once(a, tmp):
    per_target = a.series // a.targets
    first = free_ports(a.targets + 3)
    ports = {n: first + a.targets + i for i, n in enumerate(('strata', 'prometheus', 'vm'))}
    cfg = os.path.join(tmp, 'scrape.yml')
    with open(cfg, 'w') as f:
        f.write(scrape_config(a.targets, a.interval, first))
    logs = {}
    synth_log = open(os.path.join(tmp, 'synth.log'), 'w')
    synth = subprocess.Popen([os.path.join(a.builddir, 'tests/bench/synth-targets'),
                              '--first-port=%d' % first, '--targets=%d' % a.targets,
                              '--series=%d' % per_target], stdout=synth_log, stderr=subprocess.STDOUT)
    systems = []
    try:
        wait_ready('http://127.0.0.1:%d/metrics' % first)
        for name in a.only:
            logs[name] = open(os.path.join(tmp, name + '.log'), 'w')
            base = 'http://127.0.0.1:%d' % ports[name]
            data = os.path.join(tmp, name + '-data')
            shutil.rmtree(data, ignore_errors=True)
            if name == 'strata':
                cmd = [os.path.join(a.builddir, 'strata-leaf'), '--config.file=' + cfg,
                       '--web.listen-address=127.0.0.1:%d' % ports[name],
                       '--storage.tsdb.path=' + data]
                systems.append(System(name, cmd, base, 'prometheus_tsdb_head_samples_appended_total', logs[name]))
            elif name == 'prometheus':
                cmd = ['prometheus', '--config.file=' + cfg, '--storage.tsdb.path=' + data,
                       '--web.listen-address=127.0.0.1:%d' % ports[name]]
                systems.append(System(name, cmd, base, 'prometheus_tsdb_head_samples_appended_total', logs[name]))
            else:
                cmd = ['victoria-metrics', '-promscrape.config=' + cfg, '-storageDataPath=' + data,
                       '-httpListenAddr=127.0.0.1:%d' % ports[name], '-retentionPeriod=1d',
                       # its default refuses /federate of more than 1M series
                       '-search.maxFederateSeries=%d' % (2 * a.series + 10 * a.targets)]
                systems.append(System(name, cmd, base, 'vm_rows_added_to_storage_total', logs[name]))
        for s in systems:
            wait_ready(s.base + ('/health' if s.name == 'vm' else '/-/ready'))
        time.sleep(a.warmup)
        c0 = {s.name: (cpu_seconds(s.proc.pid), s.samples()) for s in systems}
        time.sleep(a.window)
        c1 = {s.name: (cpu_seconds(s.proc.pid), s.samples()) for s in systems}
        res = {}
        active = a.targets * per_target
        for s in systems:
            cpu = c1[s.name][0] - c0[s.name][0]
            n = (c1[s.name][1] or 0) - (c0[s.name][1] or 0)
            if n <= 0:
                n = active * a.window / a.interval
            res[s.name] = {'cpu_per_m': cpu / (n / 1e6), 'samples_per_s': n / a.window,
                           'rss_per_series': memory(s.proc.pid)['VmRSS'] / active}
        sel = urllib.parse.urlencode({'match[]': '{__name__=~".+"}'})
        for s in systems:
            lat, size = [], 0
            for _ in range(a.federate_runs):
                t0 = time.perf_counter()
                body = get(s.base + '/federate?' + sel)
                lat.append(time.perf_counter() - t0)
                size = len(body)
            res[s.name]['federate_s'] = statistics.median(lat)
            res[s.name]['federate_bytes'] = size
        return res
    finally:
        for s in systems:
            s.stop()
        stop_proc(synth, grace=10)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--series', type=int, default=100000)
    p.add_argument('--targets', type=int, default=100)
    p.add_argument('--interval', type=int, default=5)
    p.add_argument('--warmup', type=int, default=30)
    p.add_argument('--window', type=int, default=60)
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--federate-runs', type=int, default=5)
    p.add_argument('--builddir', default=os.environ.get('STRATA_BUILDDIR', 'build'))
    p.add_argument('--only', default='strata,prometheus,vm')
    a = p.parse_args()
    a.only = a.only.split(',')
    runs = []
    tmp = tempfile.mkdtemp(prefix='strata-bench-')
    print('machine: %s' % machine(), flush=True)
    try:
        for i in range(a.runs):
            r = run_once(a, tmp)
            runs.append(r)
            print('run %d: %s' % (i + 1, {k: {m: round(x, 4) for m, x in v.items()} for k, v in r.items()}),
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print('machine after: %s' % machine())
    print()
    print('%d series (%d targets x %d), scrape every %ds, warm-up %ds, window %ds, median of %d runs'
          % (a.series, a.targets, a.series // a.targets, a.interval, a.warmup, a.window, a.runs))
    print('| system | CPU-s per 1M samples | samples/s | RSS bytes/series | /federate all (s) | /federate bytes |')
    print('|---|---|---|---|---|---|')
    for name in a.only:
        med = {m: statistics.median(r[name][m] for r in runs) for m in runs[0][name]}
        print('| %s | %.3f | %.0f | %.0f | %.3f | %d |' % (
            name, med['cpu_per_m'], med['samples_per_s'], med['rss_per_series'],
            med['federate_s'], med['federate_bytes']))


if __name__ == '__main__':
    sys.exit(main())
