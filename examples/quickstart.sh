#!/bin/sh
# examples/quickstart.sh - install what is missing, build strata, start the demo.
#
# The README's first command. It installs the build dependencies, builds into
# build/, then starts the whole hierarchy on 127.0.0.1:
#
#   10 synthetic targets (tests/bench/synth-targets, one process)
#     -> two strata-leaf shards (--shard.count=2), scraping every 5 s
#     -> the strata-central pair (examples/central-a.yml, central-b.yml,
#        recording rules examples/central-rules.yml, --peer.url at each other)
#     -> HAProxy in front of the pair (examples/haproxy.cfg), when installed
#
# prints what to open and what to try (kill a replica, watch it repair), and
# runs until Ctrl-C, when it stops everything it started by PID. Set
# STRATA_DEMO_SECONDS=N to stop by itself N seconds after the demo is up (the
# tests do), STRATA_DEMO_BUILDDIR=DIR to run the programs of an existing
# build directory instead of installing and building into build/, and
# STRATA_DEMO_FIRST_PORT=P to take every port from P on (16 at most) instead
# of the usual ones (the tests give it ports reserved for them).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ -n "${STRATA_DEMO_BUILDDIR:-}" ]; then
	bin=$(cd "$STRATA_DEMO_BUILDDIR" && pwd)
else
	./autotools/install-deps.sh
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1
	mkdir -p build
	(cd build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" >/dev/null)
	bin=$top/build
fi
for p in strata-leaf strata-central tests/bench/synth-targets; do
	[ -x "$bin/$p" ] || { echo "quickstart: $bin/$p is missing" >&2; exit 1; }
done

# free_port N START sets FREE to the first port from START on such that N
# consecutive ports are free on 127.0.0.1 and were not handed out before.
taken=""
free_port() {
	FREE=$(python3 - "$1" "$2" $taken <<'PY'
import socket, sys
n, p, taken = int(sys.argv[1]), int(sys.argv[2]), {int(x) for x in sys.argv[3:]}
def free(q):
    if q in taken:
        return False
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", q))
        return True
    except OSError:
        return False
    finally:
        s.close()
while not all(free(q) for q in range(p, p + n)):
    p += 1
print(p)
PY
)
	i=0
	while [ "$i" -lt "$1" ]; do
		taken="$taken $((FREE + i))"
		i=$((i + 1))
	done
}

targets=10
p0=${STRATA_DEMO_FIRST_PORT:-}
free_port $targets "${p0:-19100}"; first=$FREE
free_port 1 "${p0:-9101}"; leaf0=$FREE
free_port 1 "${p0:-9102}"; leaf1=$FREE
free_port 1 "${p0:-9201}"; ca=$FREE
free_port 1 "${p0:-9202}"; cb=$FREE
free_port 1 "${p0:-9090}"; front=$FREE
demo=$(mktemp -d "${TMPDIR:-/tmp}/strata-demo.XXXXXX")
pids=""
stop() {
	trap - INT TERM EXIT
	echo
	echo "Stopping the demo."
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$demo"
}
trap stop INT TERM EXIT

# fail prints a message and the tail of every log, then exits.
fail() {
	echo "quickstart: $*" >&2
	for f in "$demo"/*.log; do
		echo "--- $f" >&2
		tail -5 "$f" >&2
	done
	exit 1
}

# wait_ready URL SECONDS: until URL answers 200.
wait_ready() {
	i=0
	until curl -fsS -o /dev/null "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le $(($2 * 5)) ] || fail "$1 not ready after $2 s"
		sleep 0.2
	done
}

# The leaves: one plain Prometheus configuration, two shards of it.
tlist=$(python3 -c "import sys; f, n = int(sys.argv[1]), int(sys.argv[2]); print(', '.join('\"127.0.0.1:%d\"' % p for p in range(f, f + n)))" "$first" "$targets")
cat >"$demo/leaf.yml" <<EOF
# The demo leaves: a plain Prometheus configuration; each leaf scrapes the
# targets its shard owns (hashmod of __address__, --shard.count=2).
global:
  scrape_interval: 5s
  scrape_timeout: 4s
scrape_configs:
  - job_name: synthetic
    static_configs:
      - targets: [$tlist]
        labels:
          env: demo
EOF
# The central pair: the example files, on the demo's ports.
cp examples/central-rules.yml "$demo/central-rules.yml"
for r in a b; do
	sed -e "s/127.0.0.1:9101/127.0.0.1:$leaf0/; s/127.0.0.1:9102/127.0.0.1:$leaf1/" \
		"examples/central-$r.yml" >"$demo/central-$r.yml"
done

"$bin/tests/bench/synth-targets" --first-port="$first" --targets="$targets" --series=200 \
	>"$demo/targets.log" 2>&1 &
pids="$pids $!"
for s in 0 1; do
	port=$([ "$s" = 0 ] && echo "$leaf0" || echo "$leaf1")
	"$bin/strata-leaf" --config.file="$demo/leaf.yml" --web.listen-address="127.0.0.1:$port" \
		--storage.tsdb.path="$demo/data-leaf-$s" --shard.count=2 --shard.index="$s" \
		--web.enable-lifecycle >"$demo/leaf-$s.log" 2>&1 &
	pids="$pids $!"
done
# central_cmd R prints the command line that starts replica R (a or b).
central_cmd() {
	if [ "$1" = a ]; then port=$ca peer=$cb; else port=$cb peer=$ca; fi
	echo "$bin/strata-central --config.file=$demo/central-$1.yml" \
		"--web.listen-address=127.0.0.1:$port --storage.tsdb.path=$demo/data-central-$1" \
		"--peer.url=http://127.0.0.1:$peer"
}
for r in a b; do
	if [ "$r" = a ]; then port=$ca peer=$cb; else port=$cb peer=$ca; fi
	"$bin/strata-central" --config.file="$demo/central-$r.yml" \
		--web.listen-address="127.0.0.1:$port" --storage.tsdb.path="$demo/data-central-$r" \
		--peer.url="http://127.0.0.1:$peer" >"$demo/central-$r.log" 2>&1 &
	pids="$pids $!"
	[ "$r" = a ] && pid_a=$! || pid_b=$!
done
haproxy_note=""
if command -v haproxy >/dev/null 2>&1; then
	sed -e "s/127.0.0.1:9090/127.0.0.1:$front/; s/127.0.0.1:9201/127.0.0.1:$ca/; s/127.0.0.1:9202/127.0.0.1:$cb/" \
		examples/haproxy.cfg >"$demo/haproxy.cfg"
	haproxy -f "$demo/haproxy.cfg" -db >"$demo/haproxy.log" 2>&1 &
	pids="$pids $!"
	entry="http://127.0.0.1:$front"
else
	entry="http://127.0.0.1:$ca"
	haproxy_note=" (HAProxy is not installed: apt-get install haproxy puts it in front of both)"
fi

echo "Starting the demo in $demo ..."
wait_ready "http://127.0.0.1:$leaf0/-/ready" 20
wait_ready "http://127.0.0.1:$leaf1/-/ready" 20
wait_ready "http://127.0.0.1:$ca/-/ready" 90
wait_ready "http://127.0.0.1:$cb/-/ready" 90
wait_ready "$entry/-/ready" 20
# The centrals pull what the leaves settled (15 s behind them), then
# evaluate the rules once that input is complete: about half a minute.
has() {
	curl -fsS -G "$entry/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'
}
i=0
until has "count(up{job=\"synthetic\"}) == $targets" && has "job:up:sum == $targets"; do
	i=$((i + 1))
	[ "$i" -le 90 ] || fail "the centrals have no aggregates after 90 s"
	sleep 1
done

cat <<EOF

The strata hierarchy is running on 127.0.0.1:

  $targets synthetic targets          127.0.0.1:$first-$((first + targets - 1)) (200 series each)
  strata-leaf, shard 0 of 2     http://127.0.0.1:$leaf0/api/v1/targets
  strata-leaf, shard 1 of 2     http://127.0.0.1:$leaf1/api/v1/targets
  strata-central, replica a     http://127.0.0.1:$ca/api/v1/peer   (pid $pid_a)
  strata-central, replica b     http://127.0.0.1:$cb/api/v1/peer   (pid $pid_b)
  the pair, for dashboards      $entry$haproxy_note

Point Grafana's Prometheus data source (or promtool query) at $entry.

What the leaves scrape reaches the centrals; the centrals' recording rules
(examples/central-rules.yml) compute the aggregates:

\$ curl -s '$entry/federate?match[]={__name__="up",job="synthetic"}'
EOF
curl -fsS -g "$entry/federate?match[]={__name__=\"up\",job=\"synthetic\"}"
echo
echo "\$ curl -s '$entry/api/v1/query?query=job:up:sum'"
curl -fsS "$entry/api/v1/query?query=job:up:sum"
echo
cat <<EOF

Try: kill replica a, leave it dead for a minute, start it again, and watch
it copy the minute it missed from replica b (raw samples and aggregates)
before it reports ready and HAProxy sends it queries again:

  kill -9 $pid_a
  sleep 60
  $(central_cmd a) &
  curl -s http://127.0.0.1:$ca/-/ready          # 503 while it repairs
  curl -s http://127.0.0.1:$ca/api/v1/peer      # state, missing, samplesRepaired
  curl -s http://127.0.0.1:$ca/metrics | grep strata_peer_

(A replica you start by hand is not stopped by Ctrl-C here.) How the pair
works and what it promises: docs/central.md.
EOF
if [ -n "${STRATA_DEMO_SECONDS:-}" ]; then
	sleep "$STRATA_DEMO_SECONDS"
else
	echo
	echo "Press Ctrl-C to stop."
	while :; do sleep 3600; done
fi
