#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Integration test of the SNMP side of hiteld (snmp-subagent/agentx.c, run
# by the test program hitel-agentx): HITEL-MIB passes smilint -l 6; a
# private snmpd master serves our AgentX subagent's tables to snmpget,
# snmpwalk, snmptable and SNMPv1; row indexes survive a restart; the
# subagent is back within 5 s after the master restarts; a sampler that goes
# down (its /proc file emptied under a private root) sends hitelSamplerDown
# and hitelSamplerUp to snmptrapd, also after the master was away; the
# agent's own-agent mode answers directly; hiteld loads net-snmp (its SNMP
# module) only once a master's socket appears, and a module that cannot be
# loaded leaves HTTP serving. Prints TAP.
#
# Needs the Debian packages snmpd, snmp, snmptrapd and smitools (installed
# here with apt-get when missing), python3, and npm: SNMPv2-SMI/TC/CONF are
# not in Debian main, so they come from the npm package net-snmp (its
# tarball cached in the build directory, see ../../docs/snmp.md). Run from the build
# directory (make check does), or set HITEL_AGENTX to a built hitel-agentx.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

. "$(dirname "$0")/tap.sh"
# matches STRING REGEX
matches() {
	[[ "$1" =~ $2 ]]
}

# ---- prerequisites ------------------------------------------------------------

need_packages snmpd snmp snmptrapd smitools
SNMPD=$(command -v snmpd || echo /usr/sbin/snmpd)
SNMPTRAPD=$(command -v snmptrapd || echo /usr/sbin/snmptrapd)
for t in "$SNMPD" "$SNMPTRAPD"; do
	[ -x "$t" ] || bail "$t not found"
done
for t in snmpget snmpwalk snmpbulkwalk snmptable smilint python3 npm curl; do
	command -v "$t" >/dev/null || bail "$t not found"
done

builddir=${top_builddir:-$(pwd)}
srcdir_top=${srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
agentx=${HITEL_AGENTX:-$builddir/snmp-subagent/hitel-agentx}
[ -x "$agentx" ] || bail "hitel-agentx not built: $agentx (run make check)"
mibdir=$srcdir_top/snmp-subagent
[ -f "$mibdir/HITEL-MIB.txt" ] || bail "HITEL-MIB.txt not found in $mibdir"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hitel-snmp.XXXXXX") || bail "mktemp failed"
pids=""
cleanup() {
	local p
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	[ -n "${HITEL_TEST_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Base MIB modules, one file per module name. The npm tarball is cached in
# the build directory (make clean removes it).
cache=${HITEL_SNMP_BASE_MIBS:-$builddir/tests/integration/snmp-base-mibs.tgz}
if ! [ -s "$cache" ]; then
	echo "# fetching SNMPv2-SMI/TC/CONF/MIB from the npm package net-snmp"
	mkdir -p "$tmp/npm" "$(dirname "$cache")" || bail "cannot create $(dirname "$cache")"
	(cd "$tmp/npm" && timeout 120 npm pack net-snmp --silent >/dev/null 2>&1) ||
		bail "npm pack net-snmp failed"
	cp "$tmp"/npm/net-snmp-*.tgz "$cache" || bail "cannot cache the npm package in $cache"
fi
base=$tmp/base-mibs
mkdir -p "$tmp/unpack" "$base"
tar -xzf "$cache" -C "$tmp/unpack" package/lib/mibs || bail "cannot unpack $cache"
for f in "$tmp"/unpack/package/lib/mibs/*.mib; do
	cp "$f" "$base/$(basename "$f" .mib)" || bail "cannot copy $f"
done
for m in SNMPv2-SMI SNMPv2-TC SNMPv2-CONF SNMPv2-MIB; do
	[ -f "$base/$m" ] || bail "$m missing from $cache"
done

# Every net-snmp tool: private config and persistence, our MIB and the base.
export SNMPCONFPATH=$tmp/conf SNMP_PERSISTENT_DIR=$tmp/persist MIBS=
export MIBDIRS=$base:/usr/share/snmp/mibs:$mibdir
mkdir -p "$tmp/conf" "$tmp/persist"
M="-m SNMPv2-MIB:HITEL-MIB"

free_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# stop PID: SIGTERM, bounded wait; exit status in $stop_rc.
stop() {
	local i=0
	stop_rc=
	kill -TERM "$1" 2>/dev/null
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		stop_rc=137
	fi
	wait "$1" 2>/dev/null
	stop_rc=${stop_rc:-$?}
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# ---- 1. the MIB ---------------------------------------------------------------

lint=$(SMIPATH=$base:/usr/share/snmp/mibs smilint -l 6 -s "$mibdir/HITEL-MIB.txt" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$lint" ]; then
	ok "smilint -l 6 HITEL-MIB: no findings"
else
	not_ok "smilint -l 6 HITEL-MIB: no findings" "rc $rc" "$lint"
fi
tr=$(snmptranslate $M -On HITEL-MIB::hitelSamplerDown 2>/dev/null)
check "net-snmp loads HITEL-MIB (hitelSamplerDown = $tr)" \
	[ "$tr" = ".1.3.6.1.4.1.8072.9999.4242.0.1" ]

# ---- 2. a private master agent and trap receiver ---------------------------------

sport=$(free_port)
tport=$(free_port)
sock=$tmp/agentx.sock
A="-v2c -c public -t 1 -r 1 127.0.0.1:$sport"

mkdir -p "$tmp/snmpd"
cat >"$tmp/snmpd/snmpd.conf" <<EOF
agentaddress udp:127.0.0.1:$sport
master agentx
agentXSocket unix:$sock
agentXPerms 0660 0750
rocommunity public 127.0.0.1
trap2sink 127.0.0.1:$tport public
EOF
cat >"$tmp/conf/snmptrapd.conf" <<EOF
disableAuthorization yes
EOF

start_snmpd() {
	SNMPCONFPATH=$tmp/snmpd SNMP_PERSISTENT_DIR=$tmp/snmpd/persist \
		"$SNMPD" -f -Lo -I -smux -C -c "$tmp/snmpd/snmpd.conf" >>"$tmp/snmpd.log" 2>&1 &
	snmpd_pid=$!
	pids="$pids $snmpd_pid"
	wait_for 10 snmpget $A -Oqv SNMPv2-MIB::sysUpTime.0 >/dev/null 2>&1
}

"$SNMPTRAPD" -f -Lf "$tmp/traps.log" -C -c "$tmp/conf/snmptrapd.conf" $M \
	"udp:127.0.0.1:$tport" >"$tmp/snmptrapd.out" 2>&1 &
trapd_pid=$!
pids="$pids $trapd_pid"
trap_seen() {
	grep -q "$1" "$tmp/traps.log" 2>/dev/null
}
probe_trap() {
	snmptrap -v2c -c public "127.0.0.1:$tport" '' SNMPv2-MIB::warmStart >/dev/null 2>&1
	trap_seen warmStart
}
wait_for 10 probe_trap || bail "snmptrapd does not receive traps on port $tport"

start_snmpd || bail "snmpd does not answer on udp:127.0.0.1:$sport"
ok "private snmpd master answers (udp $sport, AgentX $sock)"

# ---- 3. the subagent's tables -------------------------------------------------

start_agent() {
	"$agentx" "$@" >>"$tmp/agent.log" 2>&1 &
	agent_pid=$!
	pids="$pids $agent_pid"
}
rows() {
	local v
	v=$(snmpget $A $M -Oqv HITEL-MIB::hitelMetricNumber.0 2>/dev/null) || return 1
	set -- $v
	[ -n "${1:-}" ] && [ "$1" -gt 0 ] 2>/dev/null
}

start_agent -x "unix:$sock" -t 1000
if wait_for 10 rows; then
	ok "subagent registers: hitelMetricNumber.0 = $(snmpget $A $M -Oqv HITEL-MIB::hitelMetricNumber.0)"
else
	not_ok "subagent registers" "$(tail -n 5 "$tmp/agent.log")"
fi

# The cpu/usage row of user time (the label set depends on the machine).
# Series appear as samplers first read, and the tables are cached for a
# second: poll.
cpu_idx=
cpu_labels=
find_cpu_row() {
	local i l
	snmpwalk $A $M -OQs HITEL-MIB::hitelMetricName >"$tmp/names" 2>&1 || return 1
	for i in $(awk -F'[. ]' '$NF == "cpu/usage" { print $2 }' "$tmp/names"); do
		l=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricLabels.$i" 2>/dev/null)
		case ",$l," in
		*,state=user,*)
			cpu_idx=$i
			cpu_labels=$l
			return 0
			;;
		esac
	done
	return 1
}
if wait_for 10 find_cpu_row; then
	ok "metric table has a cpu/usage row for user time (index $cpu_idx: $cpu_labels)"
else
	not_ok "metric table has a cpu/usage row for user time" "$(head -n 5 "$tmp/names")"
	cpu_idx=1
fi

kind=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricKind.$cpu_idx" "HITEL-MIB::hitelMetricUnit.$cpu_idx" \
	"HITEL-MIB::hitelMetricScale.$cpu_idx" 2>&1 | tr '\n' ' ')
check "cpu/usage is a counter in seconds at scale -9 ($kind)" \
	[ "$kind" = "counter seconds -9 " ]

v1=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricValue.$cpu_idx" 2>/dev/null)
sleep 1.1
v2=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricValue.$cpu_idx" 2>/dev/null)
check "cpu/usage value is a Counter64 that grows ($v1 -> $v2)" \
	is "\"$v1\" ~ /^[0-9]+$/ && \"$v2\" ~ /^[0-9]+$/ && $v2 + 0 >= $v1 + 0 && $v1 + 0 > 0"

snmptable $A $M -Cb -Cf '|' HITEL-MIB::hitelMetricTable >"$tmp/table" 2>&1
check "snmptable shows named metric rows" grep -qF "cpu/usage|$cpu_labels|counter|seconds|-9|" "$tmp/table"

window_is() {
	[ "$(snmpget $A $M -Oqv HITEL-MIB::hitelWindowLength.0 2>/dev/null)" = "$1 milliseconds" ]
}
check "hitelWindowLength.0 becomes the 1000 ms window" wait_for 8 window_is 1000

name=$(snmpget $A $M -Oqv HITEL-MIB::hitelPercentileName.99000 2>&1)
check "percentile 99000 is named p99 ($name)" [ "$name" = "p99" ]
# One request, so one cached snapshot.
pcts=$(snmpget $A $M -Oqv "HITEL-MIB::hitelPercentileValue.$cpu_idx.50000" \
	"HITEL-MIB::hitelPercentileValue.$cpu_idx.99000" \
	"HITEL-MIB::hitelPercentileValue.$cpu_idx.100000" \
	"HITEL-MIB::hitelPercentileValue32.$cpu_idx.99000" 2>&1 | tr '\n' ' ')
set -- $pcts
p50=${1:-x} p99=${2:-x} pmax=${3:-x} p99_32=${4:-x}
# Rates of CPU time: a median within the machine's CPUs; single samples
# can exceed it (USER_HZ ticks read at 100 Hz are coarse).
ncpu=$(nproc)
if [[ "$p50$p99$pmax$p99_32" =~ ^[0-9]+$ ]] &&
	is "$p50 <= $p99 && $p99 <= $pmax && $p50 <= $ncpu * 1.1e9 && $pmax < 1e11 && $p99_32 == $p99"; then
	ok "cpu/usage window p50 <= p99 <= max, integers in ns/s, 32-bit copy ($pcts)"
else
	not_ok "cpu/usage window p50 <= p99 <= max, integers in ns/s, 32-bit copy" "got: $pcts"
fi

snmptable $A $M -Cb -Cf '|' HITEL-MIB::hitelSamplerTable >"$tmp/samplers" 2>&1
check "sampler table lists cpu up" grep -q '^cpu|up|' "$tmp/samplers"

# Buckets of one histogram: cumulative counts never go down and stay within
# the histogram's count (read after them, so at least as large).
snmpwalk $A $M -OQs HITEL-MIB::hitelBucketCount >"$tmp/buckets" 2>&1
hidx=$(awk -F'[. ]' '/^hitelBucketCount/ { print $2; exit }' "$tmp/buckets")
if [ -n "$hidx" ]; then
	last=$(awk -F'[. =]+' -v m="$hidx" '$2 == m { if ($4 + 0 < last) bad = 1; last = $4 + 0 }
		END { print bad ? "decreasing" : last }' "$tmp/buckets")
	set -- $(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricValue.$hidx" \
		"HITEL-MIB::hitelMetricKind.$hidx" 2>&1)
	check "buckets of histogram row $hidx are cumulative, last $last <= count ${1:-?} (${2:-?})" \
		is "\"${2:-}\" == \"histogram\" && \"$last\" ~ /^[0-9]+$/ && $last > 0 && $last <= ${1:-0}"
	sum=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricSum.$hidx" 2>&1)
	check "a histogram row has a sum ($sum)" matches "$sum" '^[1-9][0-9]*$'
else
	not_ok "bucket table has rows" "$(head -n 3 "$tmp/buckets")"
fi
# Cells that do not apply are absent, not zero (a walk skips them).
nosum=$(snmpget $A $M "HITEL-MIB::hitelMetricSum.$cpu_idx" 2>&1)
check "a counter row has no hitelMetricSum instance" matches "$nosum" 'No Such Instance'

# SNMPv1 cannot carry Counter64: a v1 GET of such a column fails whole, the
# 32-bit columns answer, and a v1 walk skips the 64-bit ones.
V1="-v1 -c public -t 1 -r 1 127.0.0.1:$sport"
g1=$(snmpget $V1 $M -Oqv "HITEL-MIB::hitelMetricValue32.$cpu_idx" "HITEL-MIB::hitelMetricName.$cpu_idx" \
	2>&1 | tr '\n' ' ')
check "SNMPv1 GET of 32-bit and string columns answers ($g1)" matches "$g1" '^[0-9]+ cpu/usage $'
g1=$(snmpget $V1 $M "HITEL-MIB::hitelMetricValue.$cpu_idx" 2>&1)
check "SNMPv1 GET of a Counter64 column is refused (noSuchName)" matches "$g1" noSuchName
snmpwalk $V1 $M -OQs HITEL-MIB::hitelSamplerTable >"$tmp/v1walk" 2>&1
check "SNMPv1 walk of the sampler table skips Counter64 columns" \
	is "$(grep -c '^hitelSamplerStatus.* = up' "$tmp/v1walk") > 0 && $(grep -c hitelSamplerReads "$tmp/v1walk") == 0"

cells=$(snmpbulkwalk $A -Cr50 -On .1.3.6.1.4.1.8072.9999.4242 2>&1 | grep -c '^\.1\.3\.6\.1\.4\.1\.8072\.9999\.4242\.')
check "bulkwalk of the hitel subtree returns cells ($cells)" [ "$cells" -gt 1000 ]

# ---- 4. stable indexes, restarts ------------------------------------------------

before=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricName.$cpu_idx" "HITEL-MIB::hitelMetricLabels.$cpu_idx" 2>&1)
stop "$agent_pid"
check "subagent exits 0 on SIGTERM" [ "$stop_rc" = 0 ]
start_agent -x "unix:$sock" -t 1000
# The subagent registers before its first samples: wait for the cpu row
# itself (under the index it had before), not just for any row.
cpu_row_back() {
	[ "$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricName.$cpu_idx" 2>/dev/null)" = "cpu/usage" ]
}
wait_for 10 cpu_row_back
after=$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricName.$cpu_idx" "HITEL-MIB::hitelMetricLabels.$cpu_idx" 2>&1)
check "row index of $cpu_labels is the same after a restart" [ "$before" = "$after" ]

stop "$snmpd_pid"
t0=$(now_ms)
start_snmpd
back() {
	[ "$(snmpget $A $M -Oqv "HITEL-MIB::hitelMetricName.$cpu_idx" 2>/dev/null)" = "cpu/usage" ]
}
if wait_for 10 back; then
	dt=$(($(now_ms) - t0))
	check "rows are back within 5 s of a master restart (${dt} ms)" [ "$dt" -le 5000 ]
else
	not_ok "rows are back within 5 s of a master restart" "$(tail -n 5 "$tmp/agent.log")"
fi
stop "$agent_pid"

# ---- 5. notifications -----------------------------------------------------------

# A cpu sampler reading a private copy of /proc/stat: emptying the file
# makes its reads fail (the fd stays open, pread sees 0 bytes).
mkdir -p "$tmp/root/proc"
cp /proc/stat "$tmp/root/proc/stat"
printf 'root = %s\nsamplers = cpu\n' "$tmp/root" >"$tmp/trap.conf"
start_agent -c "$tmp/trap.conf" -x "unix:$sock" -t 1000
cpu_up() {
	snmptable $A $M -Cb -Cf '|' HITEL-MIB::hitelSamplerTable 2>/dev/null | grep -q "^cpu|$1|"
}
check "fixture-root agent serves cpu up" wait_for 10 cpu_up up

: >"$tmp/root/proc/stat"
check "hitelSamplerDown reaches snmptrapd" wait_for 10 trap_seen hitelSamplerDown
check "the trap names cpu, its status and the reason" \
	grep -q 'hitelSamplerName\.[0-9]* = STRING: cpu.*down(2).*no usable cpu line' "$tmp/traps.log"
check "sampler table shows cpu down" wait_for 5 cpu_up down
cp /proc/stat "$tmp/root/proc/stat"
check "hitelSamplerUp reaches snmptrapd" wait_for 10 trap_seen hitelSamplerUp

# While the master is away the notification waits, and goes out when the
# master returns.
stop "$snmpd_pid"
: >"$tmp/root/proc/stat"
downs() {
	[ "$(grep -c 'no usable cpu line' "$tmp/agent.log")" -ge 2 ]
}
wait_for 10 downs
sleep 0.5
check "no trap goes out while the master is down" [ "$(grep -c hitelSamplerDown "$tmp/traps.log")" = 1 ]
start_snmpd
two_downs() {
	[ "$(grep -c hitelSamplerDown "$tmp/traps.log")" -ge 2 ]
}
check "the queued hitelSamplerDown arrives after the master returns" wait_for 10 two_downs
stop "$agent_pid"
cp /proc/stat "$tmp/root/proc/stat"

# ---- 6. own-agent mode --------------------------------------------------------------

# A port already taken (snmpd's): no half-started agent.
out=$(timeout 20 "$agentx" -l "udp:127.0.0.1:$sport" 2>&1)
rc=$?
check "own-agent mode on a busy port fails at start (rc $rc)" \
	is "$rc != 0 && $rc != 124 && $(grep -c 'cannot start the SNMP agent: Address already in use' <<<"$out") == 1"

oport=$(free_port)
O="-v2c -c hiteltest -t 1 -r 1 127.0.0.1:$oport"
start_agent -l "udp:127.0.0.1:$oport" -C hiteltest -T "127.0.0.1:$tport" -c "$tmp/trap.conf" -t 1000
own_rows() {
	[ "$(snmpget $O $M -Oqv "HITEL-MIB::hitelMetricName.$cpu_idx" 2>/dev/null)" = cpu/usage ]
}
check "own-agent mode answers snmpget directly (udp $oport)" wait_for 10 own_rows
wrong=$(snmpget -v2c -c public -t 0.5 -r 0 "127.0.0.1:$oport" $M HITEL-MIB::hitelMetricNumber.0 2>&1)
check "own-agent mode ignores another community" matches "$wrong" Timeout
g1=$(snmpget -v1 -c hiteltest -t 1 -r 1 "127.0.0.1:$oport" $M -Oqv \
	"HITEL-MIB::hitelMetricValue32.$cpu_idx" 2>&1)
check "own-agent mode answers SNMPv1 ($g1)" matches "$g1" '^[0-9]+$'
: >"$tmp/root/proc/stat"
three_downs() {
	[ "$(grep -c hitelSamplerDown "$tmp/traps.log")" -ge 3 ]
}
check "own-agent mode sends hitelSamplerDown to its trap sink" wait_for 10 three_downs
stop "$agent_pid"
check "own agent exits 0 on SIGTERM" [ "$stop_rc" = 0 ]

# ---- 7. hiteld itself: HTTP and AgentX from one process -----------------------------

hiteld=${HITEL_HITELD:-$builddir/hiteld}
if [ -x "$hiteld" ]; then
	hport=$(free_port)
	cp /proc/stat "$tmp/root/proc/stat"
	# The file names a wrong socket: -x on the command line overrides it.
	printf 'listen = 127.0.0.1:%s\nagentx_socket = unix:%s/nowhere\nsnmp_cache = 1\nroot = %s\nsamplers = cpu\n' \
		"$hport" "$tmp" "$tmp/root" >"$tmp/hiteld.conf"
	"$hiteld" -c "$tmp/hiteld.conf" -x "unix:$sock" >>"$tmp/hiteld.log" 2>&1 &
	hiteld_pid=$!
	pids="$pids $hiteld_pid"
	check "hiteld joins the AgentX master: its sampler table shows cpu up" wait_for 10 cpu_up up
	health() {
		curl -sf "http://127.0.0.1:$hport/health" >/dev/null
	}
	check "hiteld serves HTTP at the same time" wait_for 5 health
	ndown=$(grep -c hitelSamplerDown "$tmp/traps.log")
	: >"$tmp/root/proc/stat"
	more_downs() {
		[ "$(grep -c hitelSamplerDown "$tmp/traps.log")" -gt "$ndown" ]
	}
	check "hiteld sends hitelSamplerDown through the master" wait_for 10 more_downs
	stop "$hiteld_pid"
	check "hiteld exits 0 on SIGTERM" [ "$stop_rc" = 0 ]
	cp /proc/stat "$tmp/root/proc/stat"
else
	not_ok "hiteld joins the AgentX master" "hiteld not built: $hiteld"
fi

# ---- 8. hiteld maps net-snmp only when a master is there ---------------------------

maps_netsnmp() {
	grep -q libnetsnmp "/proc/$1/maps" 2>/dev/null
}
if [ -x "$hiteld" ]; then
	hport=$(free_port)
	lport=$(free_port)
	late=$tmp/late.sock
	printf 'listen = 127.0.0.1:%s\nagentx_socket = unix:%s\nsnmp_cache = 1\nroot = %s\nsamplers = cpu\n' \
		"$hport" "$late" "$tmp/root" >"$tmp/hiteld-late.conf"
	"$hiteld" -c "$tmp/hiteld-late.conf" >>"$tmp/hiteld.log" 2>&1 &
	hiteld_pid=$!
	pids="$pids $hiteld_pid"
	check "hiteld without a master serves HTTP" wait_for 5 health
	sleep 3 # longer than hiteld's 2 s check for the master
	check "hiteld without a master does not map libnetsnmp" eval '! maps_netsnmp "$hiteld_pid"'
	# A sampler that goes down before the module is loaded is announced
	# to the master once it is.
	downs_before=$(grep -c hitelSamplerDown "$tmp/traps.log")
	: >"$tmp/root/proc/stat"
	hiteld_down() {
		grep -q 'no usable cpu line' "$tmp/hiteld.log"
	}
	check "hiteld's cpu goes down before any master" wait_for 10 hiteld_down
	mkdir -p "$tmp/snmpd-late"
	sed -e "s|^agentaddress .*|agentaddress udp:127.0.0.1:$lport|" \
		-e "s|^agentXSocket .*|agentXSocket unix:$late|" \
		"$tmp/snmpd/snmpd.conf" >"$tmp/snmpd-late/snmpd.conf"
	SNMPCONFPATH=$tmp/snmpd-late SNMP_PERSISTENT_DIR=$tmp/snmpd-late/persist \
		"$SNMPD" -f -Lo -I -smux -C -c "$tmp/snmpd-late/snmpd.conf" >>"$tmp/snmpd.log" 2>&1 &
	pids="$pids $!"
	check "hiteld maps libnetsnmp once the master appears" wait_for 10 maps_netsnmp "$hiteld_pid"
	late_down_trap() {
		[ "$(grep -c hitelSamplerDown "$tmp/traps.log")" -gt "$downs_before" ]
	}
	check "the earlier hitelSamplerDown reaches snmptrapd after the module loads" \
		wait_for 10 late_down_trap
	cp /proc/stat "$tmp/root/proc/stat"
	late_up() {
		snmptable -v2c -c public -t 1 -r 1 "127.0.0.1:$lport" $M -Cb -Cf '|' \
			HITEL-MIB::hitelSamplerTable 2>/dev/null | grep -q '^cpu|up|'
	}
	check "hiteld joins the master that appeared" wait_for 10 late_up
	stop "$hiteld_pid"
	check "hiteld with the module loaded exits 0 on SIGTERM" [ "$stop_rc" = 0 ]

	# A module that cannot be loaded: one clear line, HTTP keeps serving.
	hport=$(free_port)
	printf 'listen = 127.0.0.1:%s\nsnmp_listen = udp:127.0.0.1:%s\nroot = %s\nsamplers = cpu\n' \
		"$hport" "$(free_port)" "$tmp/root" >"$tmp/hiteld-nomod.conf"
	HITEL_MODULE_DIR=$tmp/no-such-dir "$hiteld" -c "$tmp/hiteld-nomod.conf" >"$tmp/hiteld-nomod.log" 2>&1 &
	hiteld_pid=$!
	pids="$pids $hiteld_pid"
	check "hiteld without its SNMP module serves HTTP" wait_for 5 health
	check "hiteld logs the module it cannot load" \
		grep -q "cannot load the SNMP module $tmp/no-such-dir/hitel-snmp.so: " "$tmp/hiteld-nomod.log"
	stop "$hiteld_pid"
	check "hiteld without its SNMP module exits 0 on SIGTERM" [ "$stop_rc" = 0 ]
else
	not_ok "hiteld maps net-snmp only with a master" "hiteld not built: $hiteld"
fi

if [ $failed -ne 0 ]; then
	echo "# hiteld log (tail):"
	tail -n 20 "$tmp/hiteld.log" 2>/dev/null | sed 's/^/#   /'
	echo "# agent log (tail):"
	tail -n 20 "$tmp/agent.log" | sed 's/^/#   /'
fi
echo "1..$n"
exit $((failed != 0))
