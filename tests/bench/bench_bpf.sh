#!/usr/bin/env bash
# Compare hitel's BPF samplers with the libbpf-tools they replace, on this
# machine, in one run (not part of make check; needs root):
#  (a) run queue events and percentiles: bpf_runqueue vs runqlat over the same
#      workload (goal: counts within 2 %, each of our p50/p90/p99 inside the
#      log2 bucket runqlat puts that percentile in);
#  (b) added cost per scheduler event on `perf bench sched pipe` pinned to
#      CPU 0: none vs runqlat vs bpf_runqueue, rounds interleaved, medians
#      (goal: ours <= 0.75 x runqlat's added cost);
#  (b2) the same added cost per context switch for bpf_cpu;
#  (c) block: fio direct random reads: our read percentiles next to fio's
#      completion latency percentiles (fio adds the syscall and its own
#      overhead; we and biolatency also see other processes' I/O), and our
#      all-ops histogram against biolatency's log2 buckets.
# Usage: tests/bench/bench_bpf.sh [BUILD_DIR]   (default: the current directory)
set -euo pipefail

BUILD=$(cd "${1:-.}" && pwd)
ROUNDS=${ROUNDS:-5}
LOOPS=${LOOPS:-200000}
FIO_SECONDS=${FIO_SECONDS:-10}
WORK=$(mktemp -d /var/tmp/hitel-bench-bpf.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$1" >/dev/null 2>&1; }
missing=()
need runqlat || missing+=(libbpf-tools)
need fio || missing+=(fio)
need stress-ng || missing+=(stress-ng)
need perf || missing+=(linux-perf)
need python3 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

make -C "$BUILD" -s tests/bench/bench_bpf
HELPER=$BUILD/tests/bench/bench_bpf

# start_bg NAME READY_REGEX CMD...: run CMD with output in $WORK/NAME, wait
# until its output matches READY_REGEX (it has attached), leave pid in BGPID.
start_bg() {
	local name=$1 ready=$2
	shift 2
	"$@" >"$WORK/$name" 2>&1 &
	BGPID=$!
	PIDS+=("$BGPID")
	for _ in $(seq 1 300); do
		grep -qE "$ready" "$WORK/$name" 2>/dev/null && return 0
		kill -0 "$BGPID" 2>/dev/null || { cat "$WORK/$name"; return 1; }
		sleep 0.05
	done
	echo "$name did not start"; cat "$WORK/$name"; return 1
}
stop_bg() { kill -INT "$1"; wait "$1" || true; }

pipe_usecs() {
	taskset -c 0 perf bench sched pipe -l "$LOOPS" 2>/dev/null | awk '/usecs\/op/ {print $1}'
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# log2 histogram of a libbpf-tool ("low -> high : count |...") to "low high count" lines
log2_lines() { awk '$2 == "->" && $4 == ":" {print $1, $3, $5}' "$1"; }

echo "== (a) run queue latency: bpf_runqueue vs runqlat, same workload =="
start_bg runqlat 'Tracing' stdbuf -oL runqlat
RQ=$BGPID
start_bg ours_rq '^ready' "$HELPER" bpf_runqueue
OURS=$BGPID
taskset -c 0 perf bench sched pipe -l "$LOOPS" >/dev/null
stress-ng --switch 2 --switch-ops 200000 --taskset 0,1 -q >/dev/null 2>&1 || true
kill -INT "$RQ" "$OURS"
wait "$RQ" || true
wait "$OURS" || true
log2_lines "$WORK/runqlat" >"$WORK/runqlat.hist"
python3 - "$WORK/runqlat.hist" "$WORK/ours_rq" <<'EOF'
import math, re, sys
hist = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
n = sum(c for _, _, c in hist)
line = [l for l in open(sys.argv[2]) if l.startswith("hist scheduler/runqueue/latency")][0]
ours = dict(kv.split("=") for kv in line.split()[3:])
count = int(ours["count"])
print(f"events: runqlat {n}, hitel {count}, difference {100.0 * (count - n) / n:+.2f} % "
      f"({'ok' if abs(count - n) <= 0.02 * n else 'FAIL'}: goal within 2 %)")
for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
    rank, cum = max(1, math.ceil(q * n)), 0
    for lo, hi, c in hist:
        cum += c
        if cum >= rank:
            break
    us = int(ours[key]) / 1000.0
    inside = lo <= us < hi + 1
    print(f"{key}: hitel {us:9.2f} us, runqlat bucket [{lo}, {hi}] us: "
          f"{'ok' if inside else 'OUTSIDE'}")
EOF

echo
echo "== (b) added cost per scheduler event: perf bench sched pipe -l $LOOPS on CPU 0 =="
: >"$WORK/base"; : >"$WORK/rql"; : >"$WORK/hit"
for _ in $(seq 1 "$ROUNDS"); do
	pipe_usecs >>"$WORK/base"
	start_bg runqlat_b 'Tracing' stdbuf -oL runqlat
	pipe_usecs >>"$WORK/rql"
	stop_bg "$BGPID"
	start_bg ours_b '^ready' "$HELPER" bpf_runqueue
	pipe_usecs >>"$WORK/hit"
	stop_bg "$BGPID"
done
B=$(median <"$WORK/base"); R=$(median <"$WORK/rql"); H=$(median <"$WORK/hit")
# One pipe round trip = 2 wakeups + 2 context switches (4 program runs).
awk -v b="$B" -v r="$R" -v h="$H" 'BEGIN {
	ra = (r - b) * 1000 / 4; ha = (h - b) * 1000 / 4
	printf "usecs per round trip (median of %d): none %.3f, runqlat %.3f, hitel %.3f\n", '"$ROUNDS"', b, r, h
	printf "added per scheduler event: runqlat %.1f ns, hitel %.1f ns", ra, ha
	if (ra > 0) printf ", ratio %.2f (%s: goal <= 0.75)", ha / ra, (ha / ra <= 0.75) ? "ok" : "MISSED"
	printf "\n"
}'

echo
echo "== (b2) bpf_cpu: added cost per context switch, same pipe benchmark =="
: >"$WORK/base2"; : >"$WORK/cpu"
for _ in $(seq 1 "$ROUNDS"); do
	pipe_usecs >>"$WORK/base2"
	start_bg ours_c '^ready' "$HELPER" bpf_cpu
	pipe_usecs >>"$WORK/cpu"
	stop_bg "$BGPID"
done
B=$(median <"$WORK/base2"); C=$(median <"$WORK/cpu")
# One round trip = 2 context switches (bpf_cpu runs on sched_switch only).
awk -v b="$B" -v c="$C" 'BEGIN {
	printf "usecs per round trip (median of %d): none %.3f, bpf_cpu %.3f\n", '"$ROUNDS"', b, c
	printf "added per context switch: bpf_cpu %.1f ns\n", (c - b) * 1000 / 2
}'

echo
echo "== (c) block: fio direct random 4 KiB reads, ${FIO_SECONDS}s, vs biolatency and fio =="
start_bg biolat 'Tracing' stdbuf -oL biolatency
BL=$BGPID
start_bg ours_blk '^ready' "$HELPER" bpf_block
OURS=$BGPID
fio --name=hitel --filename="$WORK/fio.dat" --size=256M --direct=1 --rw=randread --bs=4k \
	--ioengine=psync --runtime="$FIO_SECONDS" --time_based --output-format=json \
	>"$WORK/fio.json" 2>/dev/null
kill -INT "$BL" "$OURS"
wait "$BL" || true
wait "$OURS" || true
log2_lines "$WORK/biolat" >"$WORK/biolat.hist"
DEV=$(df --output=source "$WORK" | tail -1 | sed 's|/dev/||; s|[0-9]*$||')
python3 - "$WORK/fio.json" "$WORK/ours_blk" "$WORK/biolat.hist" "$DEV" <<'EOF'
import json, math, sys
job = json.load(open(sys.argv[1]))["jobs"][0]["read"]
pct = job["clat_ns"]["percentile"]
ours = every = None
for l in open(sys.argv[2]):
    kv = dict(x.split("=", 1) for x in l.split()[3:])
    if l.startswith("hist block/io/latency {*}"):
        every = kv
    elif l.startswith("hist block/io/latency") and "op=read" in l:
        if ours is None or f"device={sys.argv[4]}," in l:
            ours = kv
hist = [tuple(map(int, l.split())) for l in open(sys.argv[3]) if l.strip()]
n = sum(c for _, _, c in hist)
print(f"requests: fio reads {job['total_ios']}, hitel reads {ours['count']}; "
      f"all devices and ops (other processes too): biolatency {n}, hitel {every['count']}")
print(f"{'':6} {'hitel read':>11} {'fio clat':>9} | {'hitel all':>10} {'biolatency bucket':>18}  (us)")
for q, key, fk in ((0.5, "p50", "50.000000"), (0.9, "p90", "90.000000"),
                   (0.99, "p99", "99.000000"), (0.999, "p999", "99.900000")):
    rank, cum, b = max(1, math.ceil(q * n)), 0, ("?", "?")
    for lo, hi, c in hist:
        cum += c
        if cum >= rank:
            b = (lo, hi)
            break
    a = int(every[key]) / 1000.0
    ok = "ok" if b[0] != "?" and b[0] <= a < b[1] + 1 else "OUTSIDE"
    print(f"{key:6} {int(ours[key]) / 1000.0:11.1f} {pct[fk] / 1000.0:9.1f} | {a:10.1f} "
          f"{'[%s, %s]' % b:>18}  {ok}")
EOF
