#!/bin/sh
# autotools/install-deps.sh - install what strata needs on Debian/Ubuntu.
#
# Build tools and libraries (found by configure with pkg-config), and the real
# programs the end-to-end tests and benchmarks run beside strata on loopback
# (prometheus 2.42 + promtool, node exporter, alertmanager, haproxy,
# victoria-metrics). Installs only what is missing; as root, or through sudo.
set -eu

BUILD_PKGS="build-essential autoconf automake pkg-config make gcc clang
libmicrohttpd-dev libcurl4-openssl-dev libyaml-dev libjemalloc-dev libcmocka-dev
libpcre2-dev zlib1g-dev libssl-dev libxxhash-dev libprotobuf-c-dev libsnappy-dev
protobuf-c-compiler"
PEER_PKGS="curl ca-certificates procps iproute2 python3 prometheus
prometheus-node-exporter prometheus-alertmanager haproxy victoria-metrics"

missing=""
for p in $BUILD_PKGS $PEER_PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -eq 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO=sudo
else
	echo "install-deps: need root or sudo to install:$missing" >&2
	exit 1
fi
echo "install-deps: installing$missing"
$SUDO apt-get update -qq
# The peers are started by the tests themselves; keep their packaged
# services from starting (policy-rc.d) so nothing else holds their ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod +x /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
