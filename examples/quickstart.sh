#!/bin/sh
# examples/quickstart.sh - install what is missing, build strata, start the demo.
#
# The README's first command. Today the demo checks the build: it prints the
# programs' versions, validates the example configuration and checks a
# sample exposition. The live two-site demo lands with the leaf and central
# issues.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

./autotools/install-deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null

./strata-leaf --version
./strata-central --version
./strata-tool --version
echo
echo "Checking the example leaf configuration:"
./strata-tool check config ../examples/leaf.yml
echo
echo "Checking an exposition (text format 0.0.4):"
printf '# TYPE http_requests_total counter\nhttp_requests_total{code="200"} 1027\nhttp_requests_total{code="500"} 3\n' |
	./strata-tool check metrics
echo
echo "Which of 3 shards owns 10.0.0.1:9100 (hashmod, as Prometheus):"
./strata-tool shard owner --count 3 10.0.0.1:9100
