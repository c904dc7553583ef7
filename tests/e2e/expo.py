"""tests/e2e/expo.py - read text expositions and Prometheus API JSON in e2e checks.

parse(text) -> {labels_key: (value, ts)} where labels_key is a sorted tuple of
(name, value) pairs including __name__; used to compare what strata and a
real Prometheus serve. Values are floats (NaN compared with same_value).
"""
import json
import math
import re
import sys
import urllib.parse
import urllib.request

_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+))?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return v.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')


def parse(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError('bad line: %r' % line)
        labels = [('__name__', m.group(1))]
        body = (m.group(2) or '{}')[1:-1]
        pos = 0
        while pos < len(body):
            lm = _LABEL.match(body, pos)
            if not lm:
                raise ValueError('bad labels: %r' % line)
            if lm.group(2) != '':
                labels.append((lm.group(1), _unescape(lm.group(2))))
            pos = lm.end()
        ts = int(m.group(4)) if m.group(4) is not None else None
        out[tuple(sorted(labels))] = (float(m.group(3)), ts)
    return out


def same_value(a, b):
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode('utf-8')


def federate(base, selector):
    return parse(get(base + '/federate?' + urllib.parse.urlencode({'match[]': selector})))


def query(base, expr, **params):
    params['query'] = expr
    d = json.loads(get(base + '/api/v1/query?' + urllib.parse.urlencode(params)))
    if d.get('status') != 'success':
        raise RuntimeError('query %s: %s' % (expr, d))
    return d['data']


def key_of(metric):
    return tuple(sorted((k, v) for k, v in metric.items() if v != ''))


if __name__ == '__main__':
    # python3 expo.py FILE: print the series count of an exposition
    print(len(parse(open(sys.argv[1]).read())))
