# tests/e2e/lib.sh - helpers for end-to-end scenarios; sourced by each test.
#
# A scenario starts real programs on 127.0.0.1 with their own ports and data
# directories under $E2E_DIR, stops them by PID on exit (e2e_cleanup runs from
# the EXIT trap), and fails with e2e_fail. Every wait is bounded.

set -eu
: "${STRATA_BUILDDIR:?run through make e2e}"
E2E_NAME=$(basename "$0" .sh)
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/strata-e2e-$E2E_NAME.XXXXXX")
E2E_PIDS=""

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
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$E2E_DIR"
}
trap e2e_cleanup EXIT

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

# e2e_port prints a TCP port free on 127.0.0.1.
e2e_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
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

# e2e_ports N: prints N consecutive free TCP ports on 127.0.0.1 (the first).
e2e_ports() {
	python3 - "$1" <<'PY'
import socket, sys, random
n = int(sys.argv[1])
for _ in range(200):
    base = random.randint(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        for s in socks: s.close()
        continue
    for s in socks: s.close()
    print(base)
    sys.exit(0)
sys.exit(1)
PY
}
