#!/usr/bin/env python3
"""tests/e2e/promql_diff.py - run a PromQL corpus against strata and a real
Prometheus and compare the answers (the differential test, 0650).

Every expression of the corpus runs as an instant query at each --time and
as a range query for each --range START:END:STEP, against both HTTP APIs.
Two answers agree when:

  - Prometheus erred and strata erred with the same errorType (the message
    may differ: such answers are counted, and shown with -v), or
  - both succeeded with the same resultType, the same series (label sets,
    compared as sets: the order of series in a vector or matrix is not
    defined by Prometheus) and, per series, the same timestamps and values
    within 1e-9 relative (or 1e-12 absolute, for sums that cancel to about
    zero in a different order); NaN equals NaN, +Inf and -Inf equal only
    themselves; a value that is the same float must be the same text
    (Prometheus writes "1e+21", "4e-08", "-0").
  - Where the order is defined (an instant query whose outermost operation
    is sort, sort_desc, topk or bottomk) the sequence of values must also
    agree position by position (per group for topk/bottomk by/without), so
    ties in any order still agree; for topk/bottomk the series chosen among
    tied values may differ, the values chosen per group and step may not.

An answer that differs has one or more kinds of difference:
  error       one side erred, the other did not
  errortype   both erred, with other errorTypes
  resulttype  other resultTypes
  series      other label sets (or a series twice)
  points      a matrix series with other timestamps
  value       a value outside the tolerance, or another timestamp
  text        the same float written differently
  order       the values in another order where the order is defined

The known-differences file lists answers allowed to differ, one per line:
MODES<TAB>KINDS<TAB>EXPRESSION<TAB>REASON, where MODES is `*` (every mode)
or a comma-separated list of `instant@TIME` and `range@START:END:STEP`, and
KINDS the comma-separated kinds the answer must show, no more and no fewer.
A listed answer that agrees again or differs otherwise, or an entry that
matches no answer, fails the run, so the list cannot go stale.

Prints one line per unexpected result, then
`NAME: A/N query results agree (...)`: A of N answers agree (known
differences do not count as agreeing). Exit 0 when every difference is
listed and every listed one still differs as listed, else 1.

usage: promql_diff.py --prometheus URL --strata URL --queries FILE
                      [--known FILE] --time T [--time T ...]
                      --range S:E:STEP [...] [--name NAME] [-j N] [-v]
"""
import argparse
import http.client
import json
import math
import re
import sys
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

REL_TOL = 1e-9
ABS_TOL = 1e-12
KINDS = ('error', 'errortype', 'resulttype', 'series', 'points', 'value', 'text', 'order')


class Client:
    """A keep-alive HTTP client per thread for one server."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.local = threading.local()

    def post(self, path, params):
        body = urllib.parse.urlencode(params)
        for attempt in (0, 1):
            conn = getattr(self.local, 'conn', None)
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.local.conn = conn
            try:
                conn.request('POST', path, body,
                             {'Content-Type': 'application/x-www-form-urlencoded'})
                r = conn.getresponse()
                data = r.read()
                if (r.getheader('Connection') or '').lower() == 'close':
                    conn.close()
                    self.local.conn = None
                return r.status, data
            except (http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError('unreachable')


def fetch(client, expr, mode):
    if mode[0] == 'instant':
        status, data = client.post('/api/v1/query', {'query': expr, 'time': mode[1]})
    else:
        status, data = client.post('/api/v1/query_range',
                                   {'query': expr, 'start': mode[1], 'end': mode[2], 'step': mode[3]})
    try:
        d = json.loads(data)
    except ValueError:
        return {'status': 'invalid', 'http': status, 'body': data[:200].decode('utf-8', 'replace')}
    d['http'] = status
    return d


def fval(s):
    # Prometheus marshals values as strings: "1.5", "NaN", "+Inf", "-Inf"
    return float(s)


def same_float(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    d = abs(a - b)
    return d <= ABS_TOL or d <= REL_TOL * max(abs(a), abs(b))


def point_kind(p, s):
    """None when [t, "v"] pairs agree, else 'value' or 'text'."""
    if p[0] != s[0]:
        return 'value'
    a, b = fval(p[1]), fval(s[1])
    if a == b or math.isnan(a) and math.isnan(b):
        return None if p[1] == s[1] else 'text'
    return None if same_float(a, b) else 'value'


def key_of(metric):
    return tuple(sorted(metric.items()))


def show_key(k):
    return '{' + ', '.join('%s=%s' % (n, json.dumps(v, ensure_ascii=False)) for n, v in k) + '}'


def short(v, n=60):
    s = str(v)
    return s if len(s) <= n else s[:n] + '...'


def split_top(expr):
    """(name, grouping kind, grouping labels) when the whole expression is
    one call of sort, sort_desc, topk or bottomk; else (None, None, None)."""
    e = expr.strip()
    m = re.match(r'(sort|sort_desc|topk|bottomk)\s*(?:(by|without)\s*\(([^)]*)\)\s*)?\(', e)
    if not m:
        return None, None, None
    name, kind, labels = m.group(1), m.group(2), m.group(3)
    depth, i, instr = 0, m.end() - 1, None
    while i < len(e):
        c = e[i]
        if instr:
            if c == '\\':
                i += 1
            elif c == instr:
                instr = None
        elif c in '"\'`':
            instr = c
        elif c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0:
                break
        i += 1
    rest = e[i + 1:].strip()
    if rest:
        m2 = re.fullmatch(r'(by|without)\s*\(([^)]*)\)', rest)
        if not m2 or kind:
            return None, None, None
        kind, labels = m2.group(1), m2.group(2)
    return name, kind, [x.strip() for x in (labels or '').split(',') if x.strip()]


def group_of(expr, metric):
    name, kind, labs = split_top(expr)
    if kind == 'by':
        return tuple(metric.get(x, '') for x in labs)
    if kind == 'without':
        return tuple(sorted((k, v) for k, v in metric.items() if k not in labs and k != '__name__'))
    return ()


def points_of(rt, x):
    return [x['value']] if rt == 'vector' else x['values']


class Diff:
    """The kinds of difference of one answer, with the first message of each."""

    def __init__(self):
        self.kinds = {}

    def add(self, kind, msg):
        self.kinds.setdefault(kind, msg)

    def __bool__(self):
        return bool(self.kinds)

    def names(self):
        return ','.join(k for k in KINDS if k in self.kinds)

    def __str__(self):
        return '; '.join('%s: %s' % (k, self.kinds[k]) for k in KINDS if k in self.kinds)


def compare_tied(expr, rt, pm, sm, d):
    """topk/bottomk answers whose series differ: per group and timestamp the
    values chosen must be the same, and so must a series both chose."""
    def chosen(m):
        out = {}
        for k, x in m.items():
            for t, v in points_of(rt, x):
                out.setdefault((group_of(expr, dict(k)), t), []).append(fval(v))
        return out
    pc, sc = chosen(pm), chosen(sm)
    if set(pc) != set(sc):
        d.add('series', 'other series, not only among tied values')
        return
    for g, pv in pc.items():
        a = sorted(pv, key=lambda x: (math.isnan(x), x))
        b = sorted(sc[g], key=lambda x: (math.isnan(x), x))
        if len(a) != len(b) or not all(same_float(x, y) for x, y in zip(a, b)):
            d.add('series', 'group %s at %s: values %s, Prometheus %s' % (g[0], g[1], b, a))
    for k in pm:
        if k in sm:
            spts = dict((t, v) for t, v in points_of(rt, sm[k]))
            for t, v in points_of(rt, pm[k]):
                if t in spts:
                    kind = point_kind([t, v], [t, spts[t]])
                    if kind:
                        d.add(kind, 'series %s at %s: %s, Prometheus %s' % (show_key(k), t, spts[t], v))


def compare(expr, mode, p, s):
    """The Diff of two answers (empty when they agree)."""
    d = Diff()
    if p.get('status') != 'success':
        if p.get('status') != 'error':
            d.add('error', 'Prometheus answered oddly: %s' % short(p, 300))
        elif s.get('status') != 'error':
            d.add('error', 'Prometheus erred (%s: %s), strata answered %s' % (
                p.get('errorType'), p.get('error'), short(json.dumps(s.get('data')), 200)))
        elif s.get('errorType') != p.get('errorType'):
            d.add('errortype', '%s (%s), Prometheus %s (%s)' % (
                s.get('errorType'), s.get('error'), p.get('errorType'), p.get('error')))
        return d
    if s.get('status') != 'success':
        d.add('error', 'strata erred (%s: %s), Prometheus answered %s' % (
            s.get('errorType'), s.get('error') or s.get('body'), short(json.dumps(p['data']), 200)))
        return d
    pd, sd = p['data'], s['data']
    if pd['resultType'] != sd['resultType']:
        d.add('resulttype', '%s, Prometheus %s' % (sd['resultType'], pd['resultType']))
        return d
    rt = pd['resultType']
    if rt == 'scalar':
        kind = point_kind(pd['result'], sd['result'])
        if kind:
            d.add(kind, 'scalar %s, Prometheus %s' % (sd['result'], pd['result']))
        return d
    if rt == 'string':
        if pd['result'] != sd['result']:
            d.add('value', 'string %s, Prometheus %s' % (sd['result'], pd['result']))
        return d
    pr, sr = pd['result'], sd['result']
    pm, sm = {}, {}
    for src, dst in ((pr, pm), (sr, sm)):
        for x in src:
            k = key_of(x['metric'])
            if k in dst:
                d.add('series', 'series %s twice in %s' % (
                    show_key(k), 'Prometheus' if dst is pm else 'strata'))
            dst[k] = x
    only_p = [k for k in pm if k not in sm]
    only_s = [k for k in sm if k not in pm]
    if (only_p or only_s) and split_top(expr)[0] in ('topk', 'bottomk'):
        # Among tied values Prometheus picks whichever its heap holds.
        compare_tied(expr, rt, pm, sm, d)
        return d
    if only_p:
        d.add('series', '%d series only in Prometheus (e.g. %s)' % (len(only_p), show_key(only_p[0])))
    if only_s:
        d.add('series', '%d series only in strata (e.g. %s)' % (len(only_s), show_key(only_s[0])))
    for k, px in pm.items():
        if k not in sm:
            continue
        pv, sv = points_of(rt, px), points_of(rt, sm[k])
        if len(pv) != len(sv) or any(a[0] != b[0] for a, b in zip(pv, sv)):
            pt, st = {x[0] for x in pv}, {x[0] for x in sv}
            d.add('points', 'series %s: %d points, Prometheus %d (strata extra at %s, missing at %s)' % (
                show_key(k), len(sv), len(pv), sorted(st - pt)[:3], sorted(pt - st)[:3]))
            continue
        for a, b in zip(pv, sv):
            kind = point_kind(a, b)
            if kind:
                d.add(kind, 'series %s at %s: %s, Prometheus %s' % (
                    show_key(k), a[0], short(b[1]), short(a[1])))
    if rt == 'vector' and mode[0] == 'instant' and split_top(expr)[0] is not None:
        pg, sg = {}, {}
        for src, dst in ((pr, pg), (sr, sg)):
            for x in src:
                dst.setdefault(group_of(expr, x['metric']), []).append(x['value'][1])
        for g, seq in pg.items():
            other = sg.get(g, [])
            if len(seq) != len(other) or not all(
                    same_float(fval(a), fval(b)) for a, b in zip(seq, other)):
                d.add('order', 'values in the order %s, Prometheus %s' % (
                    short(other, 200), short(seq, 200)))
    return d


def mode_name(mode):
    if mode[0] == 'instant':
        return 'instant@%s' % mode[1]
    return 'range@%s:%s:%s' % mode[1:]


def load_lines(path):
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            yield n, line


def load_known(path, modes):
    """{(mode name, expr): [line, kinds, reason, hits]}; raises ValueError."""
    known, names = {}, [mode_name(m) for m in modes]
    for n, line in load_lines(path):
        parts = line.split('\t')
        if len(parts) != 4 or not parts[3].strip():
            raise ValueError('%s:%d: want MODES<TAB>KINDS<TAB>EXPRESSION<TAB>REASON' % (path, n))
        ms = names if parts[0] == '*' else parts[0].split(',')
        kinds = ','.join(k for k in KINDS if k in parts[1].split(','))
        if not kinds or set(parts[1].split(',')) - set(KINDS):
            raise ValueError('%s:%d: kinds are %s' % (path, n, ', '.join(KINDS)))
        for m in ms:
            if m not in names:
                raise ValueError('%s:%d: mode %s is not run' % (path, n, m))
            if (m, parts[2]) in known:
                raise ValueError('%s:%d: %s listed twice' % (path, n, m))
            known[(m, parts[2])] = [n, kinds, parts[3], 0]
    return known


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--prometheus', required=True)
    ap.add_argument('--strata', required=True)
    ap.add_argument('--queries', required=True)
    ap.add_argument('--known')
    ap.add_argument('--time', action='append', default=[])
    ap.add_argument('--range', action='append', default=[])
    ap.add_argument('--name', default='promql_diff')
    ap.add_argument('-j', type=int, default=2)
    ap.add_argument('-v', action='store_true')
    a = ap.parse_args()

    exprs = [line.strip() for _, line in load_lines(a.queries)]
    modes = [('instant', t) for t in a.time] + [('range',) + tuple(r.split(':')) for r in a.range]
    try:
        known = load_known(a.known, modes) if a.known else {}
    except ValueError as e:
        print(e)
        return 1
    prom, strata = Client(a.prometheus), Client(a.strata)

    def one(job):
        expr, mode = job
        p = fetch(prom, expr, mode)
        s = fetch(strata, expr, mode)
        return expr, mode, p, s, compare(expr, mode, p, s)

    jobs = [(e, m) for e in exprs for m in modes]
    agree = total = ndata = nerr = nknown = 0
    failures, errmsg = [], []
    with ThreadPoolExecutor(a.j) as ex:
        for expr, mode, p, s, diff in ex.map(one, jobs):
            total += 1
            if p.get('status') == 'error':
                nerr += 1
            elif p.get('data', {}).get('result') not in ([], None):
                ndata += 1
            mn = mode_name(mode)
            k = known.get((mn, expr))
            if k is not None:
                k[3] += 1
            if not diff:
                if p.get('status') == 'error' and p.get('error') != s.get('error'):
                    errmsg.append((expr, mn, p.get('error'), s.get('error')))
                if k is not None:
                    failures.append('%s [%s]: listed at line %d as differing (%s) but agrees now'
                                    % (expr, mn, k[0], k[1]))
                else:
                    agree += 1
            elif k is None:
                failures.append('%s [%s]: %s' % (expr, mn, diff))
            elif k[1] != diff.names():
                failures.append('%s [%s]: listed at line %d as differing in %s, differs in %s: %s'
                                % (expr, mn, k[0], k[1], diff.names(), diff))
            else:
                nknown += 1
                if a.v:
                    print('known (line %d): %s [%s]: %s' % (k[0], expr, mn, diff))
    for (mn, expr), (n, kinds, reason, hits) in sorted(known.items(), key=lambda x: x[1][0]):
        if hits == 0:
            failures.append('known difference at line %d (%s %s) matches no query' % (n, mn, expr))
    for f in failures:
        print('DIFF: ' + f)
    if a.v:
        for expr, mn, pe, se in errmsg:
            print('error message: %s [%s]\n  prometheus: %s\n  strata:     %s' % (expr, mn, pe, se))
    print('%s: %d/%d query results agree (%d expressions x %d modes: %d with data, %d empty, '
          '%d errors; %d known differences; %d errors worded otherwise)'
          % (a.name, agree, total, len(exprs), len(modes), ndata, total - ndata - nerr, nerr,
             nknown, len(errmsg)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
