#!/bin/sh
# examples/quickstart.sh - install what is missing, build strata, start the demo.
#
# The README's first command. It installs the build dependencies, builds into
# build/, then starts on 127.0.0.1 a handful of synthetic targets (one
# process, tests/bench/synth-targets) and a strata-leaf scraping them every
# 5s, prints the URLs to open and a sample of /federate, and runs until
# Ctrl-C, when it stops both by PID. Set STRATA_DEMO_SECONDS=N to stop by
# itself after N seconds (the tests do).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./autotools/install-deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null

# free_port prints a TCP port nobody listens on, starting at $1.
free_port() {
	p=$1
	while python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p"
}

targets=5
first=$(free_port 19100)
leaf_port=$(free_port 9090)
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

tlist=""
i=0
while [ "$i" -lt "$targets" ]; do
	tlist="$tlist\"127.0.0.1:$((first + i))\", "
	i=$((i + 1))
done
cat >"$demo/leaf.yml" <<EOF
# The demo leaf: a plain Prometheus configuration.
global:
  scrape_interval: 5s
  external_labels:
    site: demo
scrape_configs:
  - job_name: synthetic
    static_configs:
      - targets: [${tlist%, }]
        labels:
          env: demo
  - job_name: strata
    static_configs:
      - targets: ["127.0.0.1:$leaf_port"]
EOF

./tests/bench/synth-targets --first-port="$first" --targets="$targets" --series=200 \
	>"$demo/targets.log" 2>&1 &
pids="$pids $!"
./strata-leaf --config.file="$demo/leaf.yml" --web.listen-address="127.0.0.1:$leaf_port" \
	--storage.tsdb.path="$demo/data" \
	--web.enable-lifecycle >"$demo/leaf.log" 2>&1 &
pids="$pids $!"

base="http://127.0.0.1:$leaf_port"
i=0
until curl -fsS -o /dev/null "$base/-/ready" 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 100 ]; then
		echo "strata-leaf did not become ready; its log:" >&2
		cat "$demo/leaf.log" >&2
		exit 1
	fi
	sleep 0.1
done
sleep 6	# one scrape interval

echo
echo "strata-leaf is scraping $targets synthetic targets (127.0.0.1:$first-$((first + targets - 1))):"
echo "  targets:    $base/api/v1/targets"
echo "  federation: $base/federate?match[]={job=\"synthetic\"}"
echo "  metrics:    $base/metrics"
echo "  config:     $base/api/v1/status/config"
echo
echo "\$ curl -s '$base/federate?match[]={__name__=\"up\"}'"
curl -fsS -g "$base/federate?match[]={__name__=\"up\"}"
echo
echo "\$ curl -s '$base/federate?match[]={job=\"synthetic\"}' | head -5"
curl -fsS -g "$base/federate?match[]={job=\"synthetic\"}" >"$demo/federate.txt"
head -5 "$demo/federate.txt"
echo
if [ -n "${STRATA_DEMO_SECONDS:-}" ]; then
	sleep "$STRATA_DEMO_SECONDS"
else
	echo "Press Ctrl-C to stop."
	while :; do sleep 3600; done
fi
