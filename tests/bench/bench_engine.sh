#!/bin/sh
# CPU per second at 100 Hz with the default samplers, as ratios against
# baselines measured in the same run:
#   (a) a bare loop reading the same files at the same rates (goal <= 1.2)
#   (b) collectd 5.12 with its cpu, disk, interface, memory and load plugins
#       at Interval 0.01 (goal: hitel >= 10x cheaper)
# Usage: bench_engine.sh path/to/bench_engine [SECONDS] [ROUNDS]
#
# Successive runs on this shared machine differ by 15-20 %, so a ratio of
# two medians taken minutes apart is mostly noise. Each round therefore
# makes its own ratios, and the script reports their median (ROUNDS,
# default 5):
#   (a) the engine and its bare loop run side by side ("bench_engine pair":
#       two processes, wake-ups half a period apart), over the same seconds;
#       odd rounds fork the engine, even ones the bare loop, since the two
#       roles do not cost the same (measured each round with a bare loop in
#       both, "pair-bare");
#   (b) collectd runs alongside the engine it is compared with, its CPU
#       time taken over the seconds the engine measures itself.
set -eu
bin=$1
secs=${2:-10}
rounds=${3:-5}
hz=$(getconf CLK_TCK)

median() {
	tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'
}

if ! command -v collectd >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq collectd-core >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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

# CPU fraction of collectd over secs, after 2 s of start-up.
# collectd and the engine (args: its samplers) over the same seconds:
# prints "engine_fraction collectd_fraction". The engine measures itself
# from 2 s after its start; collectd's ticks are taken from then until the
# engine exits (a few ms past its window).
with_collectd() {
	collectd -f -C "$tmp/c.conf" >"$tmp/log" 2>&1 &
	cpid=$!
	sleep 2
	"$bin" engine "$secs" "$@" >"$tmp/eng" 2>/dev/null &
	epid=$!
	sleep 2
	t0=$(awk '{print $14+$15}' "/proc/$cpid/stat")
	s0=$(date +%s.%N)
	wait "$epid"
	t1=$(awk '{print $14+$15}' "/proc/$cpid/stat")
	s1=$(date +%s.%N)
	kill "$cpid"
	wait "$cpid" 2>/dev/null || true
	awk '{printf "%.5f", $2 + $6}' "$tmp/eng"
	echo " $t0 $t1 $hz $s0 $s1" | awk '{printf " %.5f", ($2-$1)/$3/($5-$4)}'
}

eng() { "$bin" engine "$secs" "$@" | awk '{printf "%.5f", $2 + $6}'; }
# A pair's two lines -> "ENGINE BARE". Two processes paired this way do not
# cost the same even when they do the same work (the forked child, waking
# first, paid ~4 % more in a test here): rounds alternate which one the
# engine is ($mode), and "pair-bare" measures that bias for the report.
pair() {
	"$bin" "$mode" "$secs" "$@" 2>/dev/null |
		awk '$1 == "engine" {e = $2} $1 == "bare" {b = $2} END {printf "%s %s", e, b}'
}
# The child bare loop's CPU over the parent's, both doing the same.
pair_bias() {
	"$bin" pair-bare "$secs" 2>/dev/null |
		awk '$1 == "bare_child" {c = $2} $1 == "bare" {b = $2} END {printf "%.3f", c / b}'
}
ratio() { echo "$1 $2" | awk '{printf "%.3f", $1 / $2}'; }

# The default samplers that read files against their bare loop; the same
# for the subset that matches collectd's five plugins (cpu with bpf_cpu,
# disk, network, memory, scheduler); the default file samplers with
# bpf_cpu, the default source of CPU time at the engine's rate, against
# collectd; the whole default set (perf, every eBPF sampler) once, for
# information.
five="cpu bpf_cpu disk network memory scheduler"
e_l= b_l= a_l= e5_l= b5_l= a5_l= eb_l= c_l= bb_l= c5_l= pb_l=
for r in $(seq "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then mode=pair; else mode=pair-swapped; fi
	pb_l="$pb_l $(pair_bias)"
	set -- $(pair)
	e_l="$e_l $1" b_l="$b_l $2" a_l="$a_l $(ratio "$1" "$2")"
	set -- $(pair $five)
	e5_l="$e5_l $1" b5_l="$b5_l $2" a5_l="$a5_l $(ratio "$1" "$2")"
	set -- "$@" $(with_collectd default bpf_cpu)
	eb=$3 c=$4
	eb_l="$eb_l $eb" c_l="$c_l $c" bb_l="$bb_l $(ratio "$c" "$eb")"
	c5_l="$c5_l $(ratio "$c" "$1")"
	echo "round $r done" >&2
done
all=$(eng all)

m() { echo "$1" | median; }
echo "rounds (CPU fraction): engine$e_l; bare$b_l; engine five$e5_l; bare five$b5_l;" \
	"engine+bpf_cpu$eb_l; collectd$c_l"
echo "per-round ratios: (a)$a_l; (a five)$a5_l; (b)$bb_l; (b five)$c5_l;" \
	"pair bias (bare loop as child / as parent)$pb_l"
awk -v e="$(m "$e_l")" -v b="$(m "$b_l")" -v e5="$(m "$e5_l")" -v b5="$(m "$b5_l")" \
	-v eb="$(m "$eb_l")" -v c="$(m "$c_l")" -v all="$all" -v a="$(m "$a_l")" \
	-v a5="$(m "$a5_l")" -v bb="$(m "$bb_l")" -v c5="$(m "$c5_l")" -v n="$rounds" \
	-v pb="$(m "$pb_l")" 'BEGIN {
	printf "%-64s %8s\n", "process at 100 Hz (eBPF: + kernel time of its programs), median", "CPU %"
	printf "%-64s %8.2f\n", "hitel engine, default file samplers", e * 100
	printf "%-64s %8.2f\n", "bare loop reading the same files (run alongside)", b * 100
	printf "%-64s %8.2f\n", "hitel engine: cpu, bpf_cpu, disk, network, memory, scheduler", e5 * 100
	printf "%-64s %8.2f\n", "bare loop reading those files (run alongside)", b5 * 100
	printf "%-64s %8.2f\n", "hitel engine, default file samplers + bpf_cpu", eb * 100
	printf "%-64s %8.2f\n", "collectd cpu,disk,interface,memory,load @ 0.01 s", c * 100
	printf "%-64s %8.2f\n", "hitel engine, every default sampler (+perf, +eBPF), one run", all * 100
	printf "medians of %d per-round ratios:\n", n
	printf "(a) engine / bare loop, default file samplers: %.2f (goal <= 1.2)\n", a
	printf "    engine / bare loop, the five sources:      %.2f\n", a5
	printf "    (rounds alternate which process the engine is; the same bare\n"
	printf "    loop in both costs %.3fx as the forked child)\n", pb
	printf "(b) collectd / engine, default + bpf_cpu:      %.1f (goal >= 10)\n", bb
	printf "    collectd / engine, the five sources:       %.1f\n", c5
}'
