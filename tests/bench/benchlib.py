"""tests/bench/benchlib.py - what the benchmark scripts share.

Ports on 127.0.0.1, HTTP gets, readiness waits, a server's /metrics, CPU time
and memory of a process from /proc, stopping a process, and the machine for
the record. leaf_bench.py, head_memory_bench.py and query_bench.py import it
from their own directory.
"""
import os
import platform
import re
import signal
import socket
import subprocess
import time
import urllib.request

CLK_TCK = os.sysconf('SC_CLK_TCK')


def free_ports(n, start=21000, step=97):
    """The first port of n consecutive free ports on 127.0.0.1."""
    for base in range(start, 60000, step):
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(('127.0.0.1', p))
                socks.append(s)
        except OSError:
            for s in socks:
                s.close()
            continue
        for s in socks:
            s.close()
        return base
    raise RuntimeError('no free ports')


def get(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_ready(url, limit=300):
    end = time.time() + limit
    while time.time() < end:
        try:
            get(url, timeout=2)
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError('%s not ready' % url)


def metric(base, name):
    """Sum of every sample of metric `name` in base/metrics, or None."""
    text = get(base + '/metrics').decode()
    total, seen = 0.0, False
    for line in text.splitlines():
        m = re.match(r'^' + re.escape(name) + r'(\{[^}]*\})?\s+(\S+)', line)
        if m:
            total += float(m.group(2))
            seen = True
    return total if seen else None


def cpu_seconds(pid):
    """utime + stime of every thread of pid."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory(pid):
    """VmRSS, RssAnon, RssFile and RssShmem of pid, in bytes."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'RssAnon', 'RssFile', 'RssShmem'):
                out[k] = int(v.split()[0]) * 1024
    return out


def stop_proc(proc, grace=30):
    """SIGTERM, then SIGKILL after grace seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def machine():
    """CPU model, online cores, system and load averages, for the record."""
    model = platform.processor() or '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, %d cores, %s, load average %s' % (
        model, os.cpu_count() or 0, platform.platform(),
        ' '.join('%.2f' % x for x in os.getloadavg()))
