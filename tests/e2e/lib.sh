# tests/e2e/lib.sh - helpers for end-to-end scenarios; sourced by each test.
#
# A scenario starts real programs on 127.0.0.1 with their own ports and data
# directories under $E2E_DIR, stops them by PID on exit (e2e_cleanup runs from
# the EXIT trap, also on SIGTERM, SIGINT and SIGHUP), and fails with
# e2e_fail. Every wait is bounded.
#
# Scenarios run side by side (tests/e2e/run.sh, E2E_JOBS), also beside other
# runs on the same machine, so their ports never collide: each scenario
# reserves a block of E2E_PORT_BLOCK ports for its lifetime by holding an
# flock(1) on ${TMPDIR:-/tmp}/strata-e2e-ports/<block>.lock (on fd 9, which
# what it starts inherits: the block stays reserved while any of its
# processes lives, and a crashed run leaves no stale reservation). The
# blocks lie below the kernel's ephemeral port range (or above it when that
# starts low), so no outgoing connection takes one of their ports; a block
# where some other program listens (a benchmark on fixed ports) is skipped.
# e2e_port and e2e_ports hand out the block's ports in order, each checked
# free first (skipping one a program outside the scheme holds).

set -eu
: "${STRATA_BUILDDIR:?run through make e2e}"
E2E_NAME=$(basename "$0" .sh)
E2E_SRC=$(cd "$(dirname "$0")" && pwd)	# tests/e2e: its helper scripts
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-e2e-$E2E_NAME.XXXXXX")
E2E_PIDS=""
E2E_PORT_LOCK=""

e2e_cleanup() {
	for pid in $E2E_PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $E2E_PIDS; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	# the block's ports may linger in TIME_WAIT: the next scenario prefers another
	[ -z "${E2E_PORT_LOCK:-}" ] || touch "$E2E_PORT_LOCK" 2>/dev/null || true
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

e2e_log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }
e2e_fail() {
	printf '%s: FAIL: %s\n' "$E2E_NAME" "$*" >&2
	for f in "$E2E_DIR"/*.log; do
		[ -f "$f" ] || continue
		echo "--- tail of $f" >&2
		tail -20 "$f" >&2
	done
	exit 1
}

# e2e_reserve_ports reserves this scenario's block of ports (see the top);
# run once, below. Sets E2E_PORT_FIRST and E2E_PORT_END (exclusive).
: "${E2E_PORT_BLOCK:=400}"
# e2e_block_free FIRST: true when nothing listens on 127.0.0.1 on any of
# the E2E_PORT_BLOCK ports from FIRST on (connections in TIME_WAIT, left
# by a scenario that used the block before, do not count).
e2e_block_free() {
	python3 - "$1" "$E2E_PORT_BLOCK" <<'PY'
import socket, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
for p in range(first, first + n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
}
e2e_reserve_ports() {
	set -- $(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768 60999)
	if [ "$1" -ge $((10000 + 4 * E2E_PORT_BLOCK)) ]; then
		_r_lo=10000 _r_hi=$1
	else
		_r_lo=$(($2 + 1)) _r_hi=65536
	fi
	_r_nblocks=$(((_r_hi - _r_lo) / E2E_PORT_BLOCK))
	[ "$_r_nblocks" -gt 0 ] || e2e_fail "no room for a block of $E2E_PORT_BLOCK ports outside the ephemeral range $*"
	_r_locks=${TMPDIR:-/tmp}/strata-e2e-ports
	mkdir -p "$_r_locks" 2>/dev/null || true
	chmod 1777 "$_r_locks" 2>/dev/null || true
	_r_now=$(date +%s)
	_r_b=$(($(od -An -N2 -tu2 /dev/urandom) % _r_nblocks))
	_r_found=""
	# First a block nobody used for 2 minutes (a lock file is touched when
	# its scenario ends: what it served may linger in TIME_WAIT for 60 s),
	# then any block that is not reserved.
	for _r_pass in fresh any; do
		_r_i=0
		while [ "$_r_i" -lt "$_r_nblocks" ] && [ -z "$_r_found" ]; do
			_r_f="$_r_locks/$_r_b.lock"
			[ -e "$_r_f" ] || { : >"$_r_f" && chmod 666 "$_r_f" && touch -d @0 "$_r_f"; } 2>/dev/null || true
			if ! command -v flock >/dev/null; then
				_r_found=$_r_b	# no flock(1): an unreserved random block
			elif [ -r "$_r_f" ] && { [ "$_r_pass" = any ] ||
			    [ $((_r_now - $(stat -c %Y "$_r_f" 2>/dev/null || echo 0))) -ge 120 ]; }; then
				exec 9<"$_r_f"
				# ours, and nothing else listens in it (a benchmark's fixed ports)
				if flock -n 9 && e2e_block_free $((_r_lo + _r_b * E2E_PORT_BLOCK)); then
					_r_found=$_r_b
					E2E_PORT_LOCK=$_r_f
					touch "$_r_f" 2>/dev/null || true
				else
					exec 9<&-
				fi
			fi
			[ -n "$_r_found" ] || _r_b=$(((_r_b + 1) % _r_nblocks))
			_r_i=$((_r_i + 1))
		done
		[ -z "$_r_found" ] || break
	done
	[ -n "$_r_found" ] || e2e_fail "every block of ports in $_r_lo-$_r_hi is reserved by another scenario or in use"
	E2E_PORT_FIRST=$((_r_lo + _r_b * E2E_PORT_BLOCK))
	E2E_PORT_END=$((E2E_PORT_FIRST + E2E_PORT_BLOCK))
	echo "$E2E_PORT_FIRST" >"$E2E_DIR/ports.next"
}

# e2e_ports N: prints the first of N consecutive TCP ports of this
# scenario's block, free on 127.0.0.1 now; never the same port twice.
e2e_ports() {
	python3 - "$E2E_DIR/ports.next" "$E2E_PORT_END" "$1" <<'PY' || e2e_fail "no $1 free consecutive ports left in $E2E_PORT_FIRST-$E2E_PORT_END"
import socket, sys
state, end, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = int(open(state).read())
while p + n <= end:
    socks = []
    try:
        for q in range(p, p + n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", q))
    except OSError:
        p = q + 1	# something else holds q: start after it
        continue
    finally:
        for s in socks:
            s.close()
    with open(state, "w") as f:
        f.write("%d\n" % (p + n))
    print(p)
    sys.exit(0)
sys.exit(1)
PY
}

# e2e_port prints a TCP port of this scenario's block, free on 127.0.0.1 now.
e2e_port() {
	e2e_ports 1
}

# e2e_start NAME CMD...: runs CMD in the background in its own working
# directory $E2E_DIR/run-NAME (so relative default paths such as a daemon's
# data/ never collide), output in $E2E_DIR/NAME.log; sets E2E_LAST_PID.
e2e_start() {
	name=$1
	shift
	mkdir -p "$E2E_DIR/run-$name"
	(cd "$E2E_DIR/run-$name" && exec "$@") >"$E2E_DIR/$name.log" 2>&1 &
	E2E_LAST_PID=$!
	E2E_PIDS="$E2E_PIDS $E2E_LAST_PID"
}

# e2e_start_cut_proxy NAME LISTEN TARGET: starts a TCP proxy (cutproxy.py)
# from port LISTEN to TARGET on 127.0.0.1; while $E2E_DIR/cut exists it
# refuses new connections and closes open ones.
e2e_start_cut_proxy() {
	e2e_start "$1" python3 "$E2E_SRC/cutproxy.py" "$2" "$3" "$E2E_DIR/cut"
}

# e2e_wait_http URL [SECONDS]: waits until URL answers 200.
e2e_wait_http() {
	url=$1
	limit=${2:-30}
	i=0
	while [ "$i" -lt $((limit * 5)) ]; do
		curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
		sleep 0.2
		i=$((i + 1))
	done
	e2e_fail "$url not ready after ${limit}s"
}

# e2e_get URL: prints the body of a GET (fails the test on a transport error).
e2e_get() {
	curl -sS -g --max-time 10 "$1" || e2e_fail "GET $1 failed"
}

# e2e_py SCRIPT [ARGS...]: runs a python3 snippet (sys.argv[1:] = ARGS); for
# JSON checks. A failed assertion fails the test with its message.
e2e_py() {
	code=$1
	shift
	python3 -c "$code" "$@" || e2e_fail "check failed: $code"
}

# e2e_until SECONDS CMD...: retries CMD every 0.5 s until it succeeds;
# returns non-zero after SECONDS.
e2e_until() {
	limit=$1
	shift
	i=0
	while [ "$i" -lt $((limit * 2)) ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
		i=$((i + 1))
	done
	return 1
}

# e2e_synth NAME FIRST_PORT TARGETS SERIES [MODE ...]: starts synthetic targets.
e2e_synth() {
	name=$1 first=$2 n=$3 s=$4
	shift 4
	e2e_start "$name" "$STRATA_BUILDDIR/tests/bench/synth-targets" --first-port="$first" \
		--targets="$n" --series="$s" "$@"
}

e2e_reserve_ports
