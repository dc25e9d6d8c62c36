#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Benchmark (not part of make check): the CPU cost of collectd running hitel
# (default samplers, SampleRate 100, Interval 10) against collectd running its
# own cpu, disk, interface, memory and load plugins (Interval 10), measured in
# the same run, one after the other, on the same machine state. Both write
# through csv into a temp dir, so the write path is the same.
#
# A third run, for reference, has the stock plugins read at Interval 0.01,
# the rate hitel samples at.
#
# Reports CPU seconds per second of each collectd process (utime + stime from
# /proc/PID/stat over the measured span, after start-up), their ratio, the
# number of values each dispatches per interval, and the read callback's mean
# and max duration as the plugin logs it at shutdown.
#
# Usage: tests/bench/bench_collectd.sh [SECONDS]   (default 30 per instance)
# Run from the build directory or set HITEL_COLLECTD_PLUGIN.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

secs=${1:-30}
so=${HITEL_COLLECTD_PLUGIN:-${top_builddir:-$(pwd)}/collectd-plugin/.libs/hitel.so}
stock=${HITEL_COLLECTD_STOCK_PLUGINS:-/usr/lib/collectd}
collectd=$(command -v collectd || echo /usr/sbin/collectd)
[ -f "$so" ] || { echo "bench_collectd: $so not built" >&2; exit 1; }
[ -x "$collectd" ] || { echo "bench_collectd: collectd not installed (collectd-core)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hitel-bench-collectd.XXXXXX") || exit 1
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$tmp/plugins"
for p in logfile csv cpu disk interface memory load; do
	cp "$stock/$p.so" "$tmp/plugins/" || exit 1
done
cp "$so" "$tmp/plugins/hitel.so"
hz=$(getconf CLK_TCK)

# conf NAME PLUGIN-LINES [INTERVAL]
conf() {
	mkdir -p "$tmp/$1"
	cat >"$tmp/$1.conf" <<EOF
Hostname "bench"
FQDNLookup false
BaseDir "$tmp/$1"
PIDFile "$tmp/$1/collectd.pid"
PluginDir "$tmp/plugins"
TypesDB "/usr/share/collectd/types.db"
Interval ${3:-10}
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "$tmp/$1/log"
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "$tmp/$1/csv"
</Plugin>
$2
EOF
}

cpu_ticks() {
	# utime and stime are fields 14 and 15; the name (field 2) has no spaces here.
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run NAME: start, wait for init, measure $secs seconds, stop. Sets
# r_cpu (CPU s/s), r_ticks (clock ticks used) and r_values (values
# dispatched per interval).
run() {
	local name=$1 i=0 t0 t1 c0 c1
	"$collectd" -f -C "$tmp/$name.conf" >"$tmp/$name/stdout" 2>&1 &
	pid=$!
	while ! grep -qs "Initialization complete" "$tmp/$name/log" && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 2 # past start-up (BPF loads, first reads)
	c0=$(cpu_ticks "$pid")
	t0=$(date +%s.%N)
	sleep "$secs"
	c1=$(cpu_ticks "$pid")
	t1=$(date +%s.%N)
	kill -TERM "$pid"
	wait "$pid"
	pid=""
	r_ticks=$((c1 - c0))
	r_cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" \
		'BEGIN { printf "%.5f", (b - a) / hz / (t1 - t0) }')
	# csv keeps one file per value identifier: lines / files = windows.
	r_values=$(find "$tmp/$name/csv" -type f 2>/dev/null | wc -l)
}

conf hitel 'LoadPlugin hitel
<Plugin hitel>
  SampleRate 100
</Plugin>'
conf stock 'LoadPlugin cpu
LoadPlugin disk
LoadPlugin interface
LoadPlugin memory
LoadPlugin load'
conf stock100 'LoadPlugin cpu
LoadPlugin disk
LoadPlugin interface
LoadPlugin memory
LoadPlugin load' 0.01

echo "== collectd CPU per second: hitel (default samplers, 100 Hz) vs stock plugins, Interval 10, ${secs} s each =="
run hitel
h_cpu=$r_cpu h_values=$r_values
h_read=$(grep -o "hitel plugin: [0-9]* windows dispatched.*" "$tmp/hitel/log" | head -1)
h_ticks=$r_ticks
run stock
s_cpu=$r_cpu s_values=$r_values s_ticks=$r_ticks
run stock100
f_cpu=$r_cpu f_values=$r_values

# /proc/PID/stat counts in 1/CLK_TCK s (tick-based accounting here): a few
# ticks over the span make a rough figure, so print them.
awk -v h="$h_cpu" -v s="$s_cpu" -v f="$f_cpu" -v hv="$h_values" -v sv="$s_values" \
	-v fv="$f_values" -v ht="$h_ticks" -v st="$s_ticks" -v hz="$hz" 'BEGIN {
	printf "collectd + hitel:          %.4f CPU s/s (%.2f %% of a core; %d ticks of 1/%d s), %d values per interval\n", h, h * 100, ht, hz, hv
	printf "collectd + stock plugins:  %.4f CPU s/s (%.2f %% of a core; %d ticks of 1/%d s), %d values per interval\n", s, s * 100, st, hz, sv
	if (st > 0)
		printf "ratio hitel / stock:       %.0fx%s\n", h / s, st < 10 ? " (stock used under 10 ticks: rough)" : ""
	else
		printf "ratio hitel / stock:       stock used no tick at all: > %.0fx\n", h * '"$secs"' * hz
	printf "for reference, stock plugins at Interval 0.01 (the same 100 Hz, raw points, no percentiles): %.4f CPU s/s (%.2f %%), %.1fx hitel\n", f, f * 100, (h > 0 ? f / h : 0)
}'
echo "hitel read callback:       ${h_read:-not logged (no window completed?)}"
echo "hitel reads every counter 1000 times per 10 s window: window p50/p90/p99/p999/max of every"
echo "rate (bursts shorter than the interval), pressure stall, TCP/UDP, softnet and its own health;"
echo "the stock plugins report one average per interval."
