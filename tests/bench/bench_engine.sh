#!/bin/sh
# CPU per second at 100 Hz with the default samplers, as ratios against
# baselines measured in the same run:
#   (a) a bare loop reading the same files at the same rates (goal <= 1.2x)
#   (b) collectd 5.12 with its cpu, disk, interface, memory and load plugins
#       at Interval 0.01 (goal: hitel >= 10x cheaper)
# Usage: bench_engine.sh path/to/bench_engine [SECONDS] [ROUNDS]
# Each measurement is the median of ROUNDS runs (default 3), the engine and
# its bare loop alternating, so a noisy neighbour on this shared machine
# hits both sides rather than one.
set -eu
bin=$1
secs=${2:-10}
rounds=${3:-3}
hz=$(getconf CLK_TCK)

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}

# The default samplers that read files, against a loop reading those files;
# the same with bpf_cpu, the default source of CPU time at the engine's rate
# (cpu reads the tick-based /proc/stat at 10 Hz), against collectd, its
# BPF program's kernel time included; the whole default set (with perf and
# every eBPF sampler) for information; and the subset that matches
# collectd's five plugins.
# An engine run prints "engine CPU missed N bpf KERNEL": the process's CPU
# fraction and the fraction the kernel spent in its BPF programs.
five="cpu bpf_cpu disk network memory scheduler"
eng() { "$bin" engine "$secs" "$@" | awk '{printf "%.5f", $2 + $6}'; }
e_l= b_l= eb_l= e5_l= b5_l=
for r in $(seq "$rounds"); do
	e_l="$e_l $("$bin" engine "$secs" | awk '{print $2}')"
	b_l="$b_l $("$bin" bare "$secs" 2>/dev/null | awk '{print $2}')"
	eb_l="$eb_l $(eng default bpf_cpu)"
	e5_l="$e5_l $(eng $five)"
	b5_l="$b5_l $("$bin" bare "$secs" $five 2>/dev/null | awk '{print $2}')"
done
a_l=$(eng all)
engine=$(echo "$e_l" | median)
bare=$(echo "$b_l" | median)
engine_bpf=$(echo "$eb_l" | median)
engine_all=$a_l
engine_five=$(echo "$e5_l" | median)
bare_five=$(echo "$b5_l" | median)
echo "runs (CPU fraction): engine$e_l; bare$b_l; engine+bpf_cpu$eb_l; engine five$e5_l; bare five$b5_l"

if ! command -v collectd >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq collectd-core >/dev/null
fi
tmp=$(mktemp -d)
cat >"$tmp/c.conf" <<CONF
Interval 0.01
BaseDir "$tmp"
PIDFile "$tmp/pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
LoadPlugin disk
LoadPlugin interface
LoadPlugin memory
LoadPlugin load
CONF
collectd -f -C "$tmp/c.conf" >"$tmp/log" 2>&1 &
pid=$!
sleep 2
t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
sleep "$secs"
t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
kill "$pid"; wait "$pid" 2>/dev/null || true
rm -rf "$tmp"
collectd=$(echo "$t0 $t1 $hz $secs" | awk '{printf "%.5f", ($2-$1)/$3/$4}')

awk -v e="$engine" -v b="$bare" -v eb="$engine_bpf" -v a="$engine_all" -v e5="$engine_five" \
	-v b5="$bare_five" -v c="$collectd" 'BEGIN {
	printf "%-64s %8s\n", "process at 100 Hz (eBPF: + kernel time of its programs)", "CPU %"
	printf "%-64s %8.2f\n", "hitel engine, default file samplers", e * 100
	printf "%-64s %8.2f\n", "bare loop reading the same files", b * 100
	printf "%-64s %8.2f\n", "hitel engine, default file samplers + bpf_cpu", eb * 100
	printf "%-64s %8.2f\n", "hitel engine, every default sampler (+perf, +eBPF)", a * 100
	printf "%-64s %8.2f\n", "hitel engine: cpu, bpf_cpu, disk, network, memory, scheduler", e5 * 100
	printf "%-64s %8.2f\n", "bare loop reading those files", b5 * 100
	printf "%-64s %8.2f\n", "collectd cpu,disk,interface,memory,load @ 0.01 s", c * 100
	printf "ratio engine / bare loop (default file samplers): %.2f (goal <= 1.2)\n", e / b
	printf "ratio engine / bare loop (five sources):          %.2f\n", e5 / b5
	printf "ratio collectd / engine (default + bpf_cpu):      %.1f (goal >= 10)\n", c / eb
	printf "ratio collectd / engine (default file samplers):  %.1f\n", c / e
	printf "ratio collectd / engine (the same five sources):  %.1f\n", c / e5
	printf "ratio collectd / bare loop (five sources, floor): %.1f\n", c / b5
}'
