#!/usr/bin/env python3
"""tests/bench/head_memory_bench.py - resident memory per series at steady state.

strata-leaf beside a real Prometheus 2.42 (and, with --vm, VictoriaMetrics),
scraping the same synthetic targets (tests/bench/synth-targets: T targets x S
series) at the same time, each on its own port and data dir on 127.0.0.1.
A fast scrape interval fills the head quickly: every 1 s for 25 minutes gives
each series 1,500 samples, about what 2 h at 5 s hold (1,440), in the same
number of 120-sample head chunks. Neither server cuts a block in that time
(both wait until the head spans 3 h), so what is measured is a full head.

Every --every seconds it prints, for each system: VmRSS, its anonymous part
(RssAnon: heap, stacks) and its file-backed part (RssFile: mapped files
whose pages were touched, binary included), samples per series, and bytes
per series: VmRSS / series and (VmRSS - VmRSS of the same server started
empty) / series. The last line per system is the steady-state figure.

Nothing is asserted. Run by hand:

  python3 tests/bench/head_memory_bench.py --builddir BUILD [--series 100000]
      [--targets 100] [--interval 1] [--minutes 25] [--every 60] [--vm]
      [--only strata,prometheus] [--strata-bin PATH]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import free_ports, memory, metric, stop_proc, wait_ready


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


SYSTEMS = {
    'strata': dict(ready='/-/ready', series='prometheus_tsdb_head_series',
                   samples='prometheus_tsdb_head_samples_appended_total'),
    'prometheus': dict(ready='/-/ready', series='prometheus_tsdb_head_series',
                       samples='prometheus_tsdb_head_samples_appended_total'),
    'vm': dict(ready='/health', series=None, samples='vm_rows_added_to_storage_total'),
}


def command(a, name, cfg, port, data):
    if name == 'strata':
        return [a.strata_bin, '--config.file=' + cfg, '--web.listen-address=127.0.0.1:%d' % port,
                '--storage.tsdb.path=' + data]
    if name == 'prometheus':
        return ['prometheus', '--config.file=' + cfg, '--storage.tsdb.path=' + data,
                '--web.listen-address=127.0.0.1:%d' % port]
    return ['victoria-metrics', '-promscrape.config=' + cfg, '-storageDataPath=' + data,
            '-httpListenAddr=127.0.0.1:%d' % port, '-retentionPeriod=1d']


def start(a, name, cfg, port, data, log):
    shutil.rmtree(data, ignore_errors=True)
    p = subprocess.Popen(command(a, name, cfg, port, data), stdout=log, stderr=subprocess.STDOUT)
    wait_ready('http://127.0.0.1:%d%s' % (port, SYSTEMS[name]['ready']))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--series', type=int, default=100000)
    ap.add_argument('--targets', type=int, default=100)
    ap.add_argument('--interval', type=int, default=1)
    ap.add_argument('--minutes', type=float, default=25)
    ap.add_argument('--every', type=int, default=60)
    ap.add_argument('--vm', action='store_true')
    ap.add_argument('--only', default=None)
    ap.add_argument('--builddir', default=os.environ.get('STRATA_BUILDDIR', 'build'))
    ap.add_argument('--strata-bin', default=None)
    ap.add_argument('--workdir', default=None)
    a = ap.parse_args()
    a.strata_bin = a.strata_bin or os.path.join(a.builddir, 'strata-leaf')
    names = a.only.split(',') if a.only else ['strata', 'prometheus'] + (['vm'] if a.vm else [])
    tmp = a.workdir or tempfile.mkdtemp(prefix='strata-memory-bench-')
    os.makedirs(tmp, exist_ok=True)
    per_target = a.series // a.targets
    first = free_ports(a.targets + len(names), start=22000, step=89)
    ports = {n: first + a.targets + i for i, n in enumerate(names)}
    cfg = os.path.join(tmp, 'scrape.yml')
    empty = os.path.join(tmp, 'empty.yml')
    tl = ', '.join('"127.0.0.1:%d"' % (first + i) for i in range(a.targets))
    with open(cfg, 'w') as f:
        f.write('global:\n  scrape_interval: %ds\n  scrape_timeout: %dms\nscrape_configs:\n'
                '  - job_name: synth\n    static_configs:\n      - targets: [%s]\n'
                % (a.interval, int(a.interval * 900), tl))
    with open(empty, 'w') as f:
        f.write('global:\n  scrape_interval: 1h\nscrape_configs: []\n')
    procs = {}
    try:
        # baseline: each server started empty, alone, for 20 s
        base = {}
        for n in names:
            with open(os.path.join(tmp, n + '-empty.log'), 'w') as log:
                p = start(a, n, empty, ports[n], os.path.join(tmp, n + '-empty'), log)
                time.sleep(20)
                base[n] = memory(p.pid)['VmRSS']
                stop_proc(p, grace=60)
            shutil.rmtree(os.path.join(tmp, n + '-empty'), ignore_errors=True)
        print('empty servers: ' + ', '.join('%s %.1f MiB' % (n, base[n] / 2**20) for n in names),
              flush=True)
        synth = subprocess.Popen([os.path.join(a.builddir, 'tests/bench/synth-targets'),
                                  '--first-port=%d' % first, '--targets=%d' % a.targets,
                                  '--series=%d' % per_target],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs['synth'] = synth
        wait_ready('http://127.0.0.1:%d/metrics' % first)
        for n in names:
            log = open(os.path.join(tmp, n + '.log'), 'w')
            procs[n] = start(a, n, cfg, ports[n], os.path.join(tmp, n + '-data'), log)
        t0 = time.time()
        end = t0 + a.minutes * 60
        print('| min | system | series | samples/series | VmRSS MiB | RssAnon MiB | RssFile MiB '
              '| B/series | B/series above empty | data dir MiB |')
        print('|---|---|---|---|---|---|---|---|---|---|', flush=True)
        while True:
            now = time.time()
            last = now >= end
            for n in names:
                b = 'http://127.0.0.1:%d' % ports[n]
                st = memory(procs[n].pid)
                ser = metric(b, SYSTEMS[n]['series']) if SYSTEMS[n]['series'] else None
                active = ser or per_target * a.targets
                smp = metric(b, SYSTEMS[n]['samples']) or 0
                print('| %.1f | %s | %d | %.0f | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f |' % (
                    (now - t0) / 60, n, active, smp / active, st['VmRSS'] / 2**20,
                    st.get('RssAnon', 0) / 2**20, st.get('RssFile', 0) / 2**20,
                    st['VmRSS'] / active, (st['VmRSS'] - base[n]) / active,
                    du(os.path.join(tmp, n + '-data')) / 2**20), flush=True)
            if last:
                break
            time.sleep(max(1, min(a.every, end - time.time())))
    finally:
        for n, p in procs.items():
            if n != 'synth':
                stop_proc(p, grace=60)
        if 'synth' in procs:
            stop_proc(procs['synth'], grace=10)
        if not a.workdir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
