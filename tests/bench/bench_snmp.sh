#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# SNMP benchmark: the HITEL-MIB subtree served by hitel-agentx (default
# samplers, default 5 s cache) through a private snmpd over AgentX:
#   - full snmpbulkwalk of the subtree: wall time and cell count (goal: <= 250 ms),
#     with the same walk from the agent's own-agent mode for comparison;
#   - single-GET latency, one value per request: from one process
#     (Perl SNMP module, when libsnmp-perl is installed) and as snmpget
#     processes, each against snmpd's own sysUpTime.0 as the baseline.
# Usage: bench_snmp.sh [path/to/hitel-agentx]. Needs snmpd and snmp.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

agentx=${1:-./snmp-subagent/hitel-agentx}
WALKS=${HITEL_BENCH_WALKS:-15}
GETS=${HITEL_BENCH_GETS:-200}
GOAL_MS=250
[ -x "$agentx" ] || { echo "bench_snmp: $agentx not built" >&2; exit 1; }
SNMPD=$(command -v snmpd || echo /usr/sbin/snmpd)
[ -x "$SNMPD" ] || { echo "bench_snmp: snmpd not installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hitel-bench-snmp.XXXXXX") || exit 1
pids=""
cleanup() {
	local p
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

export SNMPCONFPATH=$tmp/conf SNMP_PERSISTENT_DIR=$tmp/persist MIBS=
mkdir -p "$tmp/conf" "$tmp/persist"

free_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
wait_for() {
	local limit=$(($1 * 10)) i=0
	shift
	while [ $i -lt $limit ]; do
		"$@" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
now_us() {
	echo $(($(date +%s%N) / 1000))
}

ROOT=.1.3.6.1.4.1.8072.9999.4242
sport=$(free_port)
oport=$(free_port)
A="-v2c -c public -t 2 -r 1 -On 127.0.0.1:$sport"
cat >"$tmp/snmpd.conf" <<EOF
agentaddress udp:127.0.0.1:$sport
master agentx
agentXSocket unix:$tmp/agentx.sock
rocommunity public 127.0.0.1
EOF
"$SNMPD" -f -Lo -I -smux -C -c "$tmp/snmpd.conf" >"$tmp/snmpd.log" 2>&1 &
pids="$pids $!"
wait_for 10 snmpget $A .1.3.6.1.2.1.1.3.0 >/dev/null 2>&1 || { echo "snmpd did not start" >&2; exit 1; }
"$agentx" -x "unix:$tmp/agentx.sock" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
pids="$pids $agent_pid"

# Wait for the first complete 5 s window (hitelWindowLength.0 > 0), so the
# walk sees every series and percentiles from a real window.
window() {
	local v
	v=$(snmpget $A -Oqv "$ROOT.1.1.0" 2>/dev/null) || return 1
	[ -n "$v" ] && [ "$v" -gt 0 ] 2>/dev/null
}
echo "waiting for the first 5 s window..."
wait_for 20 window || { echo "no window after 20 s" >&2; tail "$tmp/agent.log" >&2; exit 1; }

# walk HOSTPORT: prints "ms cells" of one full bulkwalk.
walk() {
	local t0 t1 cells
	t0=$(now_us)
	cells=$(snmpbulkwalk -v2c -c public -t 2 -r 1 -On -Cr50 "$1" "$ROOT" 2>/dev/null | grep -c "^$ROOT\.")
	t1=$(now_us)
	echo "$(((t1 - t0) / 1000)) $cells"
}
# stats LABEL FILE: min / median / max of column 1.
stats() {
	sort -n "$2" | awk -v label="$1" '{ v[NR] = $1; c = $2 }
		END { printf "%-28s min %4d ms  median %4d ms  max %4d ms  (%d cells, %d runs)\n",
			label, v[1], v[int((NR + 1) / 2)], v[NR], c, NR }'
}

walk "127.0.0.1:$sport" >/dev/null # first load of the cache
: >"$tmp/w_agentx"
for i in $(seq "$WALKS"); do
	walk "127.0.0.1:$sport" >>"$tmp/w_agentx"
done
echo "== full bulkwalk of HITEL-MIB (snmpbulkwalk -Cr50) =="
stats "via snmpd + AgentX (unix)" "$tmp/w_agentx"
med=$(sort -n "$tmp/w_agentx" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
if [ "$med" -le "$GOAL_MS" ]; then
	echo "goal: median AgentX walk ${med} ms <= ${GOAL_MS} ms: met"
else
	echo "goal: median AgentX walk ${med} ms <= ${GOAL_MS} ms: NOT met"
fi

# One series' 32-bit value: the first row of hitelMetricValue32.
oid=$(snmpgetnext $A "$ROOT.1.3.1.8" 2>/dev/null | awk '{ print $1 }')
base=.1.3.6.1.2.1.1.3.0
echo "== single GET latency (one varbind per request) =="
if perl -MSNMP -e 1 2>/dev/null; then
	for target in "$oid" "$base"; do
		perl -MSNMP -MTime::HiRes=time -e '
			my ($port, $oid, $n) = @ARGV;
			my $s = SNMP::Session->new(DestHost => "127.0.0.1:$port", Community => "public",
				Version => 2, UseNumeric => 1, Timeout => 2000000, Retries => 1);
			my ($t0, $err) = (time, 0);
			for (1 .. $n) { my $v = $s->get($oid); $err++ if $s->{ErrorNum}; }
			printf "%-28s %7.1f us per GET (%d GETs, %d errors)\n",
				($oid =~ /^\.1\.3\.6\.1\.4\.1\.8072/ ? "hitel via AgentX" : "snmpd sysUpTime.0"),
				(time - $t0) * 1e6 / $n, $n, $err;
		' "$sport" "$target" $((GETS * 10))
	done
else
	echo "(Perl SNMP module not installed: in-process latency skipped)"
fi
for target in "$oid" "$base"; do
	t0=$(now_us)
	for i in $(seq "$GETS"); do
		snmpget $A "$target" >/dev/null 2>&1
	done
	t1=$(now_us)
	label="snmpget process, hitel"
	[ "$target" = "$base" ] && label="snmpget process, sysUpTime"
	awk -v l="$label" -v us=$((t1 - t0)) -v n="$GETS" \
		'BEGIN { printf "%-28s %7.2f ms per process (%d runs)\n", l, us / n / 1000, n }'
done

# Own-agent mode: the same tables without snmpd (one engine at a time).
kill "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
"$agentx" -l "udp:127.0.0.1:$oport" >"$tmp/own.log" 2>&1 &
pids="$pids $!"
A="-v2c -c public -t 2 -r 1 -On 127.0.0.1:$oport"
wait_for 20 window || { echo "own agent: no window after 20 s" >&2; exit 1; }
walk "127.0.0.1:$oport" >/dev/null
: >"$tmp/w_own"
for i in $(seq "$WALKS"); do
	walk "127.0.0.1:$oport" >>"$tmp/w_own"
done
echo "== full bulkwalk, own-agent mode (no snmpd) =="
stats "own-agent mode (udp)" "$tmp/w_own"
