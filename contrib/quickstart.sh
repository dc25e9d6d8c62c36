#!/bin/sh
# hitel quick start for a fresh Debian 12 machine (run as root from the
# source tree):
#   contrib/quickstart.sh run    install packages, build, run hiteld in the
#                                foreground on its embedded default config
#   contrib/quickstart.sh test   install packages, build, run every test
#   contrib/quickstart.sh deps | build    just that step
set -eu
cd "$(dirname "$0")/.."

# Build and runtime dependencies, plus what the integration tests drive:
# real collectd, snmpd and Prometheus's promtool.
PACKAGES="build-essential autoconf automake libtool pkg-config check
	clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libpfm4-dev
	libsnmp-dev libmicrohttpd-dev collectd-core collectd-dev collectd-utils
	libmicrohttpd12 libprotobuf-c1 snmpd snmp snmptrapd smitools prometheus jq e2fsprogs
	curl python3 iproute2 procps valgrind libcap2-bin linux-perf"

deps() {
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	# npm fetches the SNMP base MIBs for the SNMP test; take Debian's only
	# when no npm is there (a nodesource nodejs ships its own).
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
	[ -z "$missing" ] && return 0
	echo "quickstart: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Debian starts snmpd/prometheus services on install where an init
	# system runs; the tests run their own private daemons instead.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends $missing
	rm -f /usr/sbin/policy-rc.d
}

build() {
	[ -x ./configure ] || ./autogen.sh
	[ -f Makefile ] || ./configure
	make -j"$(nproc)"
}

case "${1:-}" in
deps) deps ;;
build) deps; build ;;
run)
	deps
	build
	if [ -x ./hiteld ]; then
		echo "quickstart: hiteld on http://127.0.0.1:4242/ (curl 127.0.0.1:4242/vars); Ctrl-C stops"
		exec ./hiteld
	fi
	echo "quickstart: hiteld was not built (see configure's summary)" >&2
	exit 1
	;;
test)
	deps
	build
	# Serially: the burst and accuracy tests measure the machine and must
	# not compete with other tests for the two cores.
	make check
	;;
*)
	echo "usage: $0 run|test|deps|build" >&2
	exit 2
	;;
esac
