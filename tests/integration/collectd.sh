#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Integration test of the collectd plugin (hitel.so) in a real collectd 5.12:
# values through csv, unixsock (collectdctl), write_graphite and
# write_prometheus under CPU, loopback, disk and scheduler load; config
# errors that must stop collectd; a sampler that cannot start (FAILURE, then
# OKAY notifications) while the others keep reporting. Prints TAP.
#
# Needs the Debian packages collectd-core, collectd-utils, libmicrohttpd12
# and libprotobuf-c1 (installed here with apt-get when missing) and python3.
# Run from the build directory (make check does), or point
# HITEL_COLLECTD_PLUGIN at a built hitel.so.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

LOAD_SECONDS=${HITEL_TEST_LOAD_SECONDS:-8}
. "$(dirname "$0")/tap.sh"

# ---- prerequisites ------------------------------------------------------------

need_packages collectd-core collectd-utils libmicrohttpd12 libprotobuf-c1 libcap2-bin
COLLECTD=$(command -v collectd || echo /usr/sbin/collectd)
COLLECTDCTL=$(command -v collectdctl || echo /usr/bin/collectdctl)
STOCK=${HITEL_COLLECTD_STOCK_PLUGINS:-/usr/lib/collectd}
TYPESDB=/usr/share/collectd/types.db
PY=$(command -v python3) || bail "python3 not found"
[ -x "$COLLECTD" ] || bail "collectd not found"
[ -x "$COLLECTDCTL" ] || bail "collectdctl not found"

so=${HITEL_COLLECTD_PLUGIN:-${top_builddir:-$(pwd)}/collectd-plugin/.libs/hitel.so}
[ -f "$so" ] || bail "plugin not built: $so (run make first)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hitel-collectd.XXXXXX") || bail "mktemp failed"
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

# A private plugin dir: regular-file copies (collectd refuses symlinks).
mkdir -p "$tmp/plugins"
for p in logfile csv unixsock write_graphite write_prometheus; do
	cp "$STOCK/$p.so" "$tmp/plugins/" || bail "stock plugin $p.so missing in $STOCK"
done
cp "$so" "$tmp/plugins/hitel.so"

ncpu=$(nproc)
host=hiteltest

# conf_head NAME: common part of a private collectd config.
conf_head() {
	local d=$tmp/$1
	mkdir -p "$d"
	cat <<EOF
Hostname "$host"
FQDNLookup false
BaseDir "$d"
PIDFile "$d/collectd.pid"
PluginDir "$tmp/plugins"
TypesDB "$TYPESDB"
Interval 1
WriteThreads 2
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$d/log"
  Timestamp true
  PrintSeverity true
</Plugin>
EOF
}

# start NAME: run collectd -f in the background; its pid in $cpid.
start() {
	"$COLLECTD" -f -C "$tmp/$1.conf" >"$tmp/$1/stdout" 2>&1 &
	cpid=$!
	pids="$pids $cpid"
}

# stop PID: SIGTERM, bounded wait; exit status in $stop_rc.
stop() {
	local i=0
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

# csv_glob NAME PI FILE-PREFIX: the csv file(s) of one value.
csv_files() {
	ls "$tmp/$1/csv/$host/hitel-$2/$3"-[0-9]* 2>/dev/null
}
# csv_max NAME PI PREFIX / csv_min ...: extremes of the value column.
csv_max() {
	local f
	f=$(csv_files "$@") || return 1
	awk -F, 'NR > 1 && $2 != "" { if (!s || $2 + 0 > m) m = $2 + 0; s = 1 }
		END { if (!s) exit 1; printf "%.9g\n", m }' $f
}
csv_min() {
	local f
	f=$(csv_files "$@") || return 1
	awk -F, 'NR > 1 && $2 != "" { if (!s || $2 + 0 < m) m = $2 + 0; s = 1 }
		END { if (!s) exit 1; printf "%.9g\n", m }' $f
}

# ---- 1. the built object exports only module_register -------------------------

exports=$(nm -D --defined-only "$so" 2>/dev/null | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' | sort)
check "hitel.so exports only module_register" [ "$exports" = "module_register" ]

# ---- 2. configuration errors stop collectd, naming the option --------------------

# bad_conf NAME EXPECTED-TEXT BLOCK-LINES: collectd must exit non-zero within
# 10 s and log EXPECTED-TEXT.
bad_conf() {
	local name=$1 expect=$2 rc
	{
		conf_head "$name"
		echo "LoadPlugin hitel"
		echo "<Plugin hitel>"
		printf '%s\n' "$3"
		echo "</Plugin>"
	} >"$tmp/$name.conf"
	timeout 10 "$COLLECTD" -f -C "$tmp/$name.conf" >"$tmp/$name/stdout" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] &&
		grep -qF -- "$expect" "$tmp/$name/log" "$tmp/$name/stdout"; then
		ok "config error ($name): collectd exits $rc and names it"
	else
		not_ok "config error ($name): collectd exits $rc and names it" \
			"expected non-zero exit and '$expect' in the log" \
			"$(cat "$tmp/$name/log" "$tmp/$name/stdout" 2>/dev/null | grep -i hitel | head -5)"
	fi
}
bad_conf unknown_option "hitel config: <Plugin hitel>:2: unknown option 'foo_bar'" \
	'  SampleRate 100
  FooBar 1'
bad_conf bad_value "hitel config: <Plugin hitel>:1: option 'sample_rate': " '  SampleRate 5000'
bad_conf sampler_option "hitel config: <Plugin hitel> <Sampler \"disk\">:2: unknown option 'rat' for sampler 'disk'" \
	'  <Sampler "disk">
    Include "vd*"
    Rat 10
  </Sampler>'
bad_conf bad_sampler_value "option 'rate' for sampler 'disk'" '  <Sampler "disk">
    Rate 0
  </Sampler>'
bad_conf unknown_sampler "unknown sampler 'nosuch'" '  Samplers "default" "nosuch"'

# ---- 3. a sampler that cannot start: instance "down" ----------------------------
# Its Root is a directory with copies of the files cpu and memory read, but no
# proc/pressure (as on a kernel without PSI): pressure fails, the others work.

root=$tmp/root
mkdir -p "$root/proc"
for f in stat meminfo vmstat; do
	cat "/proc/$f" >"$root/proc/$f"
done
{
	conf_head down
	cat <<EOF
LoadPlugin csv
<Plugin csv>
  DataDir "$tmp/down/csv"
</Plugin>
LoadPlugin hitel
<Plugin hitel>
  SampleRate 100
  Root "$root"
  Samplers "cpu" "memory" "pressure"
</Plugin>
EOF
} >"$tmp/down.conf"
start down
down_pid=$cpid

# ---- 3b. the "nocap" instance: collectd without the BPF capabilities -------------
# As when collectd runs as a service without CAP_BPF/CAP_PERFMON: the eBPF
# samplers must fail alone, with the reason, while the others report.

nocap_bpf=""
grep -aq "bpf_runqueue" "$so" && nocap_bpf='"bpf_runqueue" "bpf_block"'
{
	conf_head nocap
	cat <<EOF
LoadPlugin csv
<Plugin csv>
  DataDir "$tmp/nocap/csv"
</Plugin>
LoadPlugin hitel
<Plugin hitel>
  SampleRate 100
  Samplers "cpu" "memory" $nocap_bpf
</Plugin>
EOF
} >"$tmp/nocap.conf"
capsh --drop=cap_bpf,cap_perfmon,cap_sys_admin -- -c \
	"exec '$COLLECTD' -f -C '$tmp/nocap.conf'" >"$tmp/nocap/stdout" 2>&1 &
nocap_pid=$!
pids="$pids $nocap_pid"

# ---- 4. the main instance -------------------------------------------------------

# Graphite listener: appends every line received to a file.
"$PY" - "$tmp/graphite.port" "$tmp/graphite.txt" <<'EOF' &
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
out = open(sys.argv[2], "ab", buffering=0)
lock = threading.Lock()
def serve(c):
    while True:
        b = c.recv(65536)
        if not b:
            break
        with lock:
            out.write(b)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
pids="$pids $!"
wait_for 10 test -s "$tmp/graphite.port" || bail "graphite listener did not start"
gport=$(cat "$tmp/graphite.port")
pport=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sock=$tmp/main/sock
# Kernel latency histograms come from the eBPF block sampler, when built in.
bpf_sampler=""
grep -aq "bpf_block" "$so" && bpf_sampler='"bpf_block"'

{
	conf_head main
	cat <<EOF
LoadPlugin csv
<Plugin csv>
  DataDir "$tmp/main/csv"
</Plugin>
LoadPlugin unixsock
<Plugin unixsock>
  SocketFile "$sock"
  SocketGroup "root"
  DeleteSocket true
</Plugin>
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "test">
    Host "127.0.0.1"
    Port "$gport"
    Protocol "tcp"
    Prefix "pfx."
    StoreRates true
  </Node>
</Plugin>
LoadPlugin write_prometheus
<Plugin write_prometheus>
  Host "127.0.0.1"
  Port "$pport"
</Plugin>
LoadPlugin hitel
<Plugin hitel>
  SampleRate 100
  Samplers "default" $bpf_sampler
  Percentiles 50 90 99 99.9 100
  Buckets true
  BucketGroupingPower 1
</Plugin>
EOF
} >"$tmp/main.conf"
start main
main_pid=$cpid

if wait_for 15 grep -qs "hitel plugin: engine started" "$tmp/main/log"; then
	ok "collectd starts with the hitel plugin"
else
	not_ok "collectd starts with the hitel plugin" "$(tail -5 "$tmp/main/log" "$tmp/main/stdout" 2>&1)"
fi

# Load starts once values flow, so that the checks below run under load.
first_values() {
	csv_files main cpu-user total_time_in_ms-usage >/dev/null
}
wait_for 15 first_values

# ---- load: CPU, loopback TCP (also context switches), direct disk writes --------

"$PY" - "$LOAD_SECONDS" <<'EOF' &
import sys, time
end = time.time() + float(sys.argv[1])
x = 0
while time.time() < end:
    x += 1
EOF
pids="$pids $!"
"$PY" - "$LOAD_SECONDS" <<'EOF' &
import socket, sys, threading, time
end = time.time() + float(sys.argv[1])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def sink():
    c, _ = srv.accept()
    while c.recv(65536):
        pass
t = threading.Thread(target=sink, daemon=True)
t.start()
cli = socket.create_connection(srv.getsockname())
buf = b"x" * 65536
while time.time() < end:
    cli.sendall(buf)
    time.sleep(0.0005)
cli.close()
t.join(2)
EOF
pids="$pids $!"
(
	end=$((SECONDS + LOAD_SECONDS))
	while [ $SECONDS -lt $end ]; do
		dd if=/dev/zero of="$tmp/dd.bin" bs=256k count=16 oflag=direct status=none || break
	done
) &
pids="$pids $!"

lo_busy() {
	local m
	m=$(csv_max main network-lo gauge-receive_bytes-max) && is "$m > 0"
}
wait_for 10 lo_busy
sleep 1 # another window under load

# GETVAL returns rates for DERIVE: poll while the load still runs.
getval() {
	"$COLLECTDCTL" -s "$sock" getval "$host/hitel-$1" 2>/dev/null |
		sed -n 's/^value=//p' | head -1
}
cpu_busy() {
	v=$(getval cpu-user/total_time_in_ms-usage)
	w=$(getval cpu-system/total_time_in_ms-usage)
	[ -n "$v" ] && [ -n "$w" ] && is "$v + $w > 100 && $v + $w <= $ncpu * 1000 * 1.2"
}
if wait_for 5 cpu_busy; then
	ok "getval: cpu user+system time during a CPU burn is $v+$w ms/s (of $ncpu cpus)"
else
	not_ok "getval: cpu user+system time during a CPU burn is plausible" "user=$v system=$w ms/s"
fi
lo_rate() {
	v=$(getval network-lo/total_bytes-receive_bytes)
	[ -n "$v" ] && is "$v > 100000"
}
if wait_for 5 lo_rate; then
	ok "getval: lo receive rate during loopback traffic is $v B/s"
else
	not_ok "getval: lo receive rate during loopback traffic > 100 kB/s" "got '$v'"
fi
cs_rate() {
	v=$(getval scheduler/derive-context_switches)
	[ -n "$v" ] && is "$v > 0"
}
if wait_for 5 cs_rate; then
	ok "getval: context switch rate $v /s"
else
	not_ok "getval: context switch rate > 0" "got '$v'"
fi

# ---- csv -------------------------------------------------------------------------

# CPU-seconds per second. /proc/stat is tick-based, so single 10 ms samples
# can exceed the CPU count a little (and the max much more); a percentile is
# its bucket's upper bound (<= 3.1 % above): p50 stays within ncpu + 10 %.
bad=""
nfiles=0
for f in "$tmp"/main/csv/$host/hitel-cpu-*/gauge-usage-p50-*; do
	[ -f "$f" ] || continue
	nfiles=$((nfiles + 1))
	awk -F, -v n="$ncpu" 'NR > 1 && ($2 < 0 || $2 > n * 1.1) { exit 1 }' "$f" || bad="$bad $f"
done
if [ $nfiles -ge 4 ] && [ -z "$bad" ]; then
	ok "csv: cpu usage p50 of $nfiles states within [0, $ncpu] cpu-seconds/s (+10 %)"
else
	not_ok "csv: cpu usage p50 within [0, $ncpu] (+10 %)" "files=$nfiles out of range:$bad" \
		"$(cat $bad 2>/dev/null | head -5)"
fi

mx=$(csv_max main network-lo gauge-receive_bytes-max)
p50=$(csv_min main network-lo gauge-receive_bytes-p50)
if [ -n "$mx" ] && [ -n "$p50" ] && is "$mx > 0 && $mx >= $p50"; then
	ok "csv: lo receive rate max $mx B/s > 0 under loopback traffic"
else
	not_ok "csv: lo receive rate max > 0 under loopback traffic" "max='$mx' p50='$p50'"
fi

# Percentiles of one window are ordered: p50 <= p90 <= p99 <= p999 <= max.
ordered() {
	local d=$tmp/main/csv/$host/hitel-network-lo
	paste -d, $d/gauge-receive_bytes-p50-* $d/gauge-receive_bytes-p90-* \
		$d/gauge-receive_bytes-p99-* $d/gauge-receive_bytes-p999-* \
		$d/gauge-receive_bytes-max-* 2>/dev/null |
		awk -F, 'NR > 1 { rows++; if (!($1 == $3 && $3 == $5 && $5 == $7 && $7 == $9 &&
			$2 <= $4 && $4 <= $6 && $6 <= $8 && $8 <= $10)) bad++ }
			END { exit !(rows >= 2 && !bad) }'
}
check "csv: window percentiles are ordered p50 <= p90 <= p99 <= p999 <= max" ordered

disk_written() {
	local f
	for f in "$tmp"/main/csv/$host/hitel-block-*-write/gauge-io_bytes-max-*; do
		[ -f "$f" ] && awk -F, 'NR > 1 && $2 > 0 { found = 1 } END { exit !found }' "$f" &&
			return 0
	done
	return 1
}
check "csv: block device write rate > 0 under dd oflag=direct" disk_written

# Kernel latency histogram (eBPF): block I/O latency percentiles in seconds.
bpf_latency_ok() {
	local f
	for f in "$tmp"/main/csv/$host/hitel-block-*-write/duration-io_latency-p99-*; do
		[ -f "$f" ] && awk -F, 'NR > 1 && $2 > 0 && $2 < 10 { found = 1 } END { exit !found }' "$f" &&
			ls "${f%/*}"/count-io_latency-le-inf-* "${f%/*}"/derive-io_latency-count-* \
				>/dev/null 2>&1 && return 0
	done
	return 1
}
if [ -n "$bpf_sampler" ]; then
	check "csv: eBPF block write latency p99 in seconds, with count and buckets" bpf_latency_ok
else
	ok "csv: eBPF block latency # SKIP bpf_block not built (--disable-bpf)"
fi

# Histogram family: percentiles in seconds ("duration"), count/sum, buckets.
hist_ok() {
	local d=$tmp/main/csv/$host/hitel-hitel mx
	mx=$(csv_max main hitel duration-engine_lateness-max) || return 1
	is "$mx > 0 && $mx < 5" || return 1
	ls $d/derive-engine_lateness-count-* $d/total_time_in_ms-engine_lateness-sum-* \
		$d/count-engine_lateness-le-inf-* >/dev/null 2>&1
}
check "csv: histogram family engine lateness: percentiles in seconds, count, sum, buckets" hist_ok

# One value per window: timestamps on whole seconds, strictly increasing.
windows_ok() {
	local f
	f=$(csv_files main cpu-user total_time_in_ms-usage) || return 1
	awk -F, 'NR > 1 { if ($1 !~ /\.000$/ || (p != "" && $1 + 0 <= p + 0)) bad++; p = $1; rows++ }
		END { exit !(rows >= 3 && !bad) }' $f
}
# Three windows may take a while on a loaded machine: wait for them.
if wait_for 10 windows_ok; then
	ok "csv: windows aligned to the interval, never dispatched twice"
else
	not_ok "csv: windows aligned to the interval, never dispatched twice" \
		"$(cat $(csv_files main cpu-user total_time_in_ms-usage) 2>&1 | head -20)"
fi

# ---- unixsock: LISTVAL -------------------------------------------------------------

"$COLLECTDCTL" -s "$sock" listval >"$tmp/listval.txt" 2>&1
grep -o "$host/hitel[^ ]*" "$tmp/listval.txt" >"$tmp/ids.txt"
nids=$(wc -l <"$tmp/ids.txt")
if [ "$nids" -gt 100 ] && grep -qx "$host/hitel-cpu-user/gauge-usage-p99" "$tmp/ids.txt" &&
	grep -qx "$host/hitel-network-lo/total_bytes-receive_bytes" "$tmp/ids.txt"; then
	ok "listval: $nids hitel identifiers, cpu and network among them"
else
	not_ok "listval: hitel identifiers present" "count=$nids" "$(head -3 "$tmp/listval.txt")"
fi

# Every type is a stock one, and identifiers are short and sanitized.
awk '!/^#/ && NF >= 2 { print $1 }' "$TYPESDB" | sort -u >"$tmp/types.txt"
sed 's|^[^/]*/[^/]*/||; s|-.*||' "$tmp/ids.txt" | sort -u >"$tmp/used_types.txt"
unknown=$(comm -23 "$tmp/used_types.txt" "$tmp/types.txt" | tr '\n' ' ')
check "listval: every type used is in the stock types.db ($(tr '\n' ' ' <"$tmp/used_types.txt"))" \
	[ -z "$unknown" ]
badid=$(awk -F/ '{ split($2, a, "-"); pi = substr($2, length(a[1]) + 2);
	t = $3; ti = ""; i = index(t, "-"); if (i) { ti = substr(t, i + 1); t = substr(t, 1, i - 1) }
	if (length(pi) > 127 || length(ti) > 127 || pi ti !~ /^[A-Za-z0-9_.-]*$/) print }' \
	"$tmp/ids.txt" | head -3)
check "listval: identifiers sanitized and within DATA_MAX_NAME_LEN" [ -z "$badid" ]
if grep -i "hitel" "$tmp/main/log" | grep -qiE "dataset not found|unknown type"; then
	not_ok "log: no hitel value dropped for an unknown type" \
		"$(grep -iE 'dataset not found|unknown type' "$tmp/main/log" | head -3)"
else
	ok "log: no hitel value dropped for an unknown type"
fi

# ---- write_graphite and write_prometheus -----------------------------------------

# Lines end in CRLF; a DERIVE's first rate is "nan".
graphite_ok() {
	tr -d '\r' <"$tmp/graphite.txt" >"$tmp/graphite.lf" 2>/dev/null
	grep -qE "^pfx\.$host\.hitel-network-lo\.gauge-receive_bytes-max [0-9.e+-]+ [0-9]+$" \
		"$tmp/graphite.lf" &&
		grep -qE "^pfx\.$host\.hitel-cpu-user\.total_time_in_ms-usage [0-9.e+-]+ [0-9]+$" \
			"$tmp/graphite.lf"
}
check "graphite: pfx.$host.hitel-<instance>.<type>-<type_instance> lines" wait_for 5 graphite_ok

"$PY" - "$pport" >"$tmp/metrics.txt" 2>&1 <<'EOF'
import sys, urllib.request
print(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode())
EOF
prom_ok() {
	grep -qE "^collectd_hitel_gauge\{hitel=\"network-lo\",type=\"receive_bytes-max\",instance=\"$host\"\} " \
		"$tmp/metrics.txt" &&
		grep -qE "^collectd_hitel_total_bytes_total\{hitel=\"network-lo\",type=\"receive_bytes\"" \
			"$tmp/metrics.txt" &&
		grep -qE "^collectd_hitel_duration_seconds\{" "$tmp/metrics.txt"
}
check "prometheus: collectd_hitel_* families with hitel/type/instance labels" prom_ok

# ---- the "down" instance: notifications ------------------------------------------

notif_failure() {
	grep "Notification: severity = FAILURE" "$tmp/down/log" 2>/dev/null |
		grep "plugin = hitel, plugin_instance = pressure" | grep -q "is down: "
}
if wait_for 10 notif_failure; then
	ok "FAILURE notification for a sampler that cannot start, with the reason"
else
	not_ok "FAILURE notification for a sampler that cannot start" "$(grep -i notif "$tmp/down/log")"
fi
others_ok() {
	local f
	f=$(csv_files down cpu-user total_time_in_ms-usage) || return 1
	[ "$(wc -l <$f)" -ge 3 ] && csv_files down memory bytes-total >/dev/null
}
check "other samplers keep reporting while one is down" wait_for 10 others_ok

# Give it PSI files: the engine retries a failed init every 10 s.
mkdir -p "$root/proc/pressure"
for f in cpu memory io; do
	[ -r /proc/pressure/$f ] && cat /proc/pressure/$f >"$root/proc/pressure/$f"
done
notif_okay() {
	grep "Notification: severity = OKAY" "$tmp/down/log" 2>/dev/null |
		grep -q "plugin = hitel, plugin_instance = pressure"
}
if wait_for 20 notif_okay; then
	ok "OKAY notification when the sampler comes back"
else
	not_ok "OKAY notification when the sampler comes back" "$(grep -i notif "$tmp/down/log")"
fi
recovered() {
	csv_files down pressure-cpu-some total_time_in_ms-stall >/dev/null
}
check "values of the recovered sampler appear" wait_for 5 recovered

# ---- the "nocap" instance -------------------------------------------------------------

nocap_failure() {
	grep "Notification: severity = FAILURE" "$tmp/nocap/log" 2>/dev/null |
		grep "plugin_instance = bpf_runqueue" | grep -q "CAP_BPF"
}
if [ -z "$nocap_bpf" ]; then
	ok "without CAP_BPF: eBPF samplers fail alone # SKIP eBPF samplers not built (--disable-bpf)"
elif wait_for 10 nocap_failure; then
	ok "without CAP_BPF/CAP_PERFMON: bpf_runqueue is down with the reason (FAILURE notification)"
else
	not_ok "without CAP_BPF/CAP_PERFMON: bpf_runqueue is down with the reason" \
		"$(grep -i 'notif\|bpf' "$tmp/nocap/log" | head -5)"
fi
nocap_others() {
	local f
	f=$(csv_files nocap cpu-user total_time_in_ms-usage) || return 1
	[ "$(wc -l <$f)" -ge 3 ] && csv_files nocap memory bytes-total >/dev/null
}
check "without CAP_BPF/CAP_PERFMON: cpu and memory keep reporting" wait_for 10 nocap_others
stop "$nocap_pid"
check "without CAP_BPF/CAP_PERFMON: collectd exits 0" [ "$stop_rc" -eq 0 ]

# ---- shutdown ----------------------------------------------------------------------

stop "$main_pid"
if [ "$stop_rc" -eq 0 ] && grep -q "hitel plugin: [0-9]* windows dispatched ([0-9]* missed), [0-9]* values; read callback mean" "$tmp/main/log"; then
	ok "SIGTERM: collectd exits 0 and the plugin logs its read cost: $(grep -o 'hitel plugin: [0-9]* windows.*' "$tmp/main/log")"
else
	not_ok "SIGTERM: collectd exits 0 and the plugin logs its read cost" "exit $stop_rc" \
		"$(tail -5 "$tmp/main/log")"
fi
stop "$down_pid"
check "SIGTERM: the instance with a down sampler exits 0 too" [ "$stop_rc" -eq 0 ]

echo "1..$n"
[ $failed -eq 0 ]
