#!/bin/sh
# tests/bench/storage_bench.sh - strata's store beside Prometheus 2.42 on the same data.
#
#   storage_bench.sh import [SERIES] [HOURS] [JITTER_MS]   bytes per sample after
#       compaction: one OpenMetrics file (tests/bench/bench_tsdb openmetrics)
#       imported with strata-tool import openmetrics and with promtool tsdb
#       create-blocks-from openmetrics, then each server started on its
#       directory until its compactions settle; block bytes / samples.
#   storage_bench.sh replay [SERIES] [HOURS]   restart to ready after a crash:
#       the same commits written as a strata WAL and a Prometheus WAL
#       (bench_tsdb wal), then strata-leaf and prometheus started on them;
#       time to /-/ready, CPU seconds, resident memory per series (at ready
#       and SETTLE seconds later, default 60: the replay's garbage gone, the
#       head at rest with 2h of samples). strata is
#       also timed after a clean stop (a checkpoint of the whole head) and,
#       with BENCH_PRODUCTION=1, after a crash with the checkpoints its
#       maintenance takes while ingesting (bench_tsdb --maintain).
#
# Prints figures; asserts nothing. Needs a configured build directory
# (STRATA_BUILDDIR, default ./) with `make tests/bench/bench_tsdb` done, and
# the Debian prometheus package. Work files go to BENCH_DIR (default a
# fresh directory under /tmp) and are removed unless BENCH_KEEP is set.
set -eu
B=${STRATA_BUILDDIR:-$(pwd)}
W=${BENCH_DIR:-$(mktemp -d /tmp/strata-storage-bench.XXXXXX)}
mkdir -p "$W"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
printf 'global:\n  scrape_interval: 1h\nscrape_configs: []\n' >"$W/empty.yml"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { python3 -c 'import time; print(time.time())'; }
cpu() { awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"; }
rss_mib() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { printf "%d\n", $2 }'; }

# start NAME PORT CMD...: starts a server, waits for /-/ready; sets PID, READY (s)
start() {
	name=$1 p=$2
	shift 2
	t0=$(now)
	"$@" >"$W/$name.log" 2>&1 &
	PID=$!
	PIDS="$PIDS $PID"
	until curl -sf -o /dev/null "http://127.0.0.1:$p/-/ready"; do
		kill -0 "$PID" 2>/dev/null || { echo "$name died:"; tail "$W/$name.log"; exit 1; }
		sleep 0.05
	done
	READY=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
}

stop() {
	kill "$1"
	wait "$1" 2>/dev/null || true
}

leaf() { start "$1" "$2" "$B/strata-leaf" --config.file="$W/empty.yml" \
	--web.listen-address="127.0.0.1:$2" --storage.tsdb.path="$3" --storage.tsdb.retention.time=30d; }
prom() { start "$1" "$2" prometheus --config.file="$W/empty.yml" \
	--web.listen-address="127.0.0.1:$2" --storage.tsdb.path="$3" --storage.tsdb.retention.time=30d; }

# settle PORT: waits until prometheus_tsdb_compactions_total stops moving (90 s)
settle() {
	last=x same=0
	while [ "$same" -lt 90 ]; do
		c=$(metric "$1" prometheus_tsdb_compactions_total)
		b=$(metric "$1" prometheus_tsdb_blocks_loaded)
		if [ "$c $b" = "$last" ]; then same=$((same + 5)); else same=0; fi
		last="$c $b"
		sleep 5
	done
	echo "$last"
}

blocks_bytes() {
	find "$1" -mindepth 1 -maxdepth 1 -type d ! -name wal ! -name chunks_head -exec du -sb {} + |
		awk '{ s += $1 } END { print s + 0 }'
}

bench_import() {
	series=${1:-20000} hours=${2:-24} jitter=${3:-3}
	"$B/tests/bench/bench_tsdb" openmetrics --series "$series" --hours "$hours" --jitter "$jitter" \
		--out "$W/data.om"
	samples=$(( (series + 999) / 1000 * 1000 * hours * 240 ))
	echo "input: $(du -h "$W/data.om" | cut -f1) of OpenMetrics, $samples samples"
	t0=$(now)
	"$B/strata-tool" import openmetrics "$W/data.om" --storage.tsdb.path="$W/strata" >"$W/strata-import.log"
	ts=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
	t0=$(now)
	promtool tsdb create-blocks-from openmetrics "$W/data.om" "$W/prom" >"$W/prom-import.log" 2>&1
	tp=$(python3 -c "import time; print('%.1f' % (time.time() - $t0))")
	echo "import: strata-tool ${ts}s ($(blocks_bytes "$W/strata") bytes of 2h blocks), promtool ${tp}s ($(blocks_bytes "$W/prom") bytes)"
	rm -f "$W/data.om"

	p=$(port)
	leaf strata "$p" "$W/strata"
	s=$(settle "$p")
	cs=$(cpu "$PID")
	stop "$PID"
	p=$(port)
	prom prometheus "$p" "$W/prom"
	s2=$(settle "$p")
	cp=$(cpu "$PID")
	stop "$PID"
	sb=$(blocks_bytes "$W/strata")
	pb=$(blocks_bytes "$W/prom")
	echo "after compaction: strata $sb bytes (compactions, blocks: $s; CPU ${cs}s), prometheus $pb bytes ($s2; CPU ${cp}s)"
	python3 -c "
s, p, n = $sb, $pb, $samples
print('bytes/sample: strata %.3f, prometheus %.3f; strata/prometheus = %.2f' % (s / n, p / n, s / p))"
	grep -h 'compacted blocks' "$W/strata.log" | sed 's/.*duration=\([0-9.]*\)s.*/\1/' |
		awk '{ s += $1 } END { printf "compaction time: strata %.1fs", s }'
	grep -h 'compact blocks' "$W/prometheus.log" | sed 's/.*duration=\([0-9.]*\)\(m\?s\).*/\1 \2/' |
		awk '{ s += ($2 == "ms" ? $1 / 1000 : $1) } END { printf ", prometheus %.1fs\n", s }'
}

bench_replay() {
	series=${1:-1000000} hours=${2:-2}
	# baseline memory of empty servers
	p=$(port)
	leaf empty-strata "$p" "$W/empty-strata"
	base_s=$(rss_mib "$PID")
	stop "$PID"
	p=$(port)
	prom empty-prom "$p" "$W/empty-prom"
	base_p=$(rss_mib "$PID")
	stop "$PID"

	"$B/tests/bench/bench_tsdb" wal --series "$series" --hours "$hours" --strata "$W/s" --prometheus "$W/p"
	p=$(port)
	leaf strata-wal "$p" "$W/s"
	n=$(metric "$p" prometheus_tsdb_head_series)
	echo "strata, WAL only: ready in ${READY}s, CPU $(cpu "$PID")s, RSS $(rss_mib "$PID") MiB ($(( ($(rss_mib "$PID") - base_s) * 1048576 / n )) bytes/series above an empty leaf), $n series"
	sleep "${SETTLE:-60}"
	echo "  ${SETTLE:-60} s later: RSS $(rss_mib "$PID") MiB ($(( $(rss_mib "$PID") * 1048576 / n )) bytes/series, $(( ($(rss_mib "$PID") - base_s) * 1048576 / n )) above an empty leaf)"
	stop "$PID"
	p=$(port)
	leaf strata-ckpt "$p" "$W/s"
	echo "strata, after a clean stop (checkpoint): ready in ${READY}s, CPU $(cpu "$PID")s"
	stop "$PID"
	p=$(port)
	prom prometheus "$p" "$W/p"
	n=$(metric "$p" prometheus_tsdb_head_series)
	echo "prometheus, WAL: ready in ${READY}s, CPU $(cpu "$PID")s, RSS $(rss_mib "$PID") MiB ($(( ($(rss_mib "$PID") - base_p) * 1048576 / n )) bytes/series above an empty prometheus), $n series"
	grep -h 'WAL replay completed' "$W/prometheus.log" | sed 's/^/  /'
	sleep "${SETTLE:-60}"
	echo "  ${SETTLE:-60} s later: RSS $(rss_mib "$PID") MiB ($(( $(rss_mib "$PID") * 1048576 / n )) bytes/series, $(( ($(rss_mib "$PID") - base_p) * 1048576 / n )) above an empty prometheus)"
	stop "$PID"
	rm -rf "$W/s" "$W/p"
	[ -n "${BENCH_PRODUCTION:-}" ] || return 0
	# production: checkpoints taken while ingesting, then a crash
	"$B/tests/bench/bench_tsdb" wal --series "$series" --hours "$hours" --strata "$W/m" --maintain 20 >/dev/null
	p=$(port)
	leaf strata-prod "$p" "$W/m"
	echo "strata, crash with its running checkpoints: ready in ${READY}s, CPU $(cpu "$PID")s"
	stop "$PID"
}

case "${1:-}" in
import) shift; bench_import "$@" ;;
replay) shift; bench_replay "$@" ;;
*) echo "usage: storage_bench.sh import [SERIES] [HOURS] [JITTER_MS] | replay [SERIES] [HOURS]" >&2; exit 2 ;;
esac
