#!/bin/sh
# SPDX-License-Identifier: MIT
# hiteld scraped by a real Prometheus, as TAP: a private Prometheus (its own
# config and storage in a temporary directory, on a free loopback port,
# scraping every second) scrapes hiteld (window 10 s, 100 Hz) while a steady
# synthetic load runs. Then Prometheus's answers, from its HTTP API, must
# agree with hiteld's own:
#   - up{job="hitel"} is 1;
#   - histogram_quantile(q, rate(<histogram>_bucket[10s])) at the end T of a
#     hiteld window agrees with hiteld's percentile of the same window
#     (/vars.json), within the bucket error at the exported grouping power
#     (the reasoning is at the comparison below);
#   - the rate() of a counter agrees, within 5 %, with the mean of the
#     per-sample rates hiteld measured, rate(_rate_sum) / rate(_rate_count).
#
# HITELD=path overrides ./hiteld (make check runs from the build directory).
# Prometheus comes from the Debian package prometheus, jq from jq; both are
# installed here if missing, and their absence is a failure, never a skip.
# Takes about 30 s. Every wait is bounded; every process started here is
# stopped on exit.
set -u

HITELD=${HITELD:-./hiteld}
WINDOW=10     # hiteld's window = Prometheus's range, seconds
EXPORT_G=2    # bucket_grouping_power of /metrics
n=0
failed=0
pids=
tmp=$(mktemp -d /tmp/hitel-prometheus-XXXXXX)

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	failed=1
}
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
diag() {
	sed 's/^/# /' "$@"
}
cleanup() {
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
# bail DESCRIPTION [LOG]: a failure nothing after can recover from.
bail() {
	not_ok "$1"
	[ $# -lt 2 ] || diag "$2"
	echo "1..$n"
	exit 1
}
spawn() { # spawn COMMAND...: in the background, stopped by cleanup
	"$@" &
	pids="$pids $!"
}

# --- tools ---------------------------------------------------------------------
PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
if [ ! -x "$PROMETHEUS" ] || ! command -v jq >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y --no-install-recommends prometheus jq ||
		{ apt-get update && apt-get install -y --no-install-recommends prometheus jq; }; } \
		>"$tmp/apt.log" 2>&1 || diag "$tmp/apt.log"
	PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
fi
check "prometheus is available (Debian package prometheus)" test -x "$PROMETHEUS"
check "jq is available" sh -c 'command -v jq >/dev/null'
check "hiteld binary exists ($HITELD)" test -x "$HITELD"
[ $failed -eq 0 ] || bail "the tools are there"

# --- hiteld ----------------------------------------------------------------------
# A focused set: cpu for a counter, bpf_runqueue for a histogram family, at
# 10 Hz so the BPF histogram reaches the registry every 0.1 s (at its default
# 1 Hz, window edges would be a second coarse); the engine's own lateness
# histogram is always there too.
cat >"$tmp/hiteld.conf" <<EOF
sample_rate = 100
window = $WINDOW
listen = 127.0.0.1:0
agentx = off
samplers = none cpu bpf_runqueue
percentiles = 50 90 99 100
bucket_grouping_power = $EXPORT_G
[sampler bpf_runqueue]
rate = 10
EOF
: >"$tmp/hiteld.log"
spawn "$HITELD" -c "$tmp/hiteld.conf" 2>"$tmp/hiteld.log"
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
	port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$tmp/hiteld.log" | head -n 1)
	[ -n "$port" ] || sleep 0.1
	i=$((i + 1))
done
[ -n "$port" ] || bail "hiteld starts and reports its port" "$tmp/hiteld.log"
ok "hiteld starts and reports its port ($port)"

# --- steady load -------------------------------------------------------------------
# A stationary distribution for the whole test, so that two windows that
# almost coincide see the same one: a busy loop (user CPU time for the
# counter, and contention) and two dd processes streaming through a FIFO
# (a steady stream of wake-ups for the run queue latency histogram).
spawn sh -c 'while :; do :; done'
mkfifo "$tmp/fifo"
spawn dd if="$tmp/fifo" of=/dev/null bs=1k status=none
spawn dd if=/dev/zero of="$tmp/fifo" bs=1k status=none

# --- Prometheus --------------------------------------------------------------------
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: hitel
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
# A free port: try a few, as another process may take one between the
# choice and the bind.
pport=
tries=0
while [ $tries -lt 5 ] && [ -z "$pport" ]; do
	tries=$((tries + 1))
	try=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
	rm -rf "$tmp/data"
	"$PROMETHEUS" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
		--web.listen-address="127.0.0.1:$try" --log.level=warn \
		>"$tmp/prometheus.log" 2>&1 &
	prom=$!
	i=0
	while [ $i -lt 200 ] && kill -0 "$prom" 2>/dev/null; do
		if [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' \
			"http://127.0.0.1:$try/-/ready")" = 200 ]; then
			pport=$try
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	if [ -n "$pport" ]; then
		pids="$pids $prom"
	else
		kill "$prom" 2>/dev/null
		wait "$prom" 2>/dev/null
	fi
done
[ -n "$pport" ] || bail "Prometheus starts and is ready" "$tmp/prometheus.log"
ok "Prometheus starts and is ready on 127.0.0.1:$pport"

# promq QUERY [TIME]: the value of a one-element instant vector, else empty.
promq() {
	if [ $# -gt 1 ]; then
		set -- "$1" --data-urlencode "time=$2"
	fi
	q=$1
	shift
	curl -s --max-time 10 -G --data-urlencode "query=$q" "$@" \
		"http://127.0.0.1:$pport/api/v1/query" 2>/dev/null |
		jq -r 'if .status == "success" and (.data.result | length) == 1
		       then .data.result[0].value[1] else empty end' 2>/dev/null
}
# les TIME: the finite le values of the histogram's buckets at TIME, sorted
# as text (for comm).
les() {
	curl -s --max-time 10 -G --data-urlencode "query=${prom}_bucket" \
		--data-urlencode "time=$1" "http://127.0.0.1:$pport/api/v1/query" 2>/dev/null |
		jq -r '.data.result[].metric.le' 2>/dev/null | grep -v Inf | sort
}
# fcmp EXPR: awk's verdict on a floating-point condition over $a $b ...
fcmp() {
	awk -v a="${a:-0}" -v b="${b:-0}" -v lo="${lo:-0}" -v hi="${hi:-0}" \
		"BEGIN { exit !($1) }"
}

up=
i=0
while [ $i -lt 150 ] && [ "$up" != 1 ]; do
	up=$(promq 'up{job="hitel"}')
	[ "$up" = 1 ] || sleep 0.1
	i=$((i + 1))
done
check "Prometheus scrapes hiteld: up{job=\"hitel\"} == 1 ($up)" test "$up" = 1
[ "$up" = 1 ] || bail "scraping works" "$tmp/prometheus.log"
t_up=$(date +%s)

# --- one window, seen by both ------------------------------------------------------
# hiteld's windows end at wall-clock multiples of WINDOW. Take the first end
# T whose whole window Prometheus has scraped (T - WINDOW >= t_up + 1); the
# engine started before t_up, so hiteld has a complete window ending at T.
T=$(((t_up + 1 + WINDOW + WINDOW - 1) / WINDOW * WINDOW))
family='' prom='' qs=''
tol=$(awk -v g=$EXPORT_G 'BEGIN { f = 1 + 2 ^ -g; printf "%.6f", f * f }')
# The distribution must be the same in both samples; a burst of other work
# on the machine (or a new tail bucket) can break that for one window, so a
# window whose quantiles disagree is retried, up to three windows.
qratio() {
	local q=$1 label hq pq
	label=$(awk -v q="$q" 'BEGIN { s = sprintf("%g", q * 100); sub(/\./, "", s); print "p" s }')
	hq=$(jq -r --arg f "$family" --arg p "$label" \
		'.metrics[] | select(.name == $f) | .percentiles[$p] // empty' "$tmp/vars.json")
	pq=$(awk -v q="$q" '$1 == q { print $2 }' "$tmp/answers")
	echo "$label ${pq:-0} ${hq:-0}"
}
round=1
while :; do
	attempt=1
	while :; do
		# Until T + 3: the scrapes up to T are stored and hiteld has rotated its
		# window (on its first tick after T); the one it serves then ends at T
		# until T + WINDOW.
		while [ "$(date +%s)" -lt $((T + 3)) ]; do
			sleep 0.2
		done
		curl -s --max-time 10 -o "$tmp/vars.json" "http://127.0.0.1:$port/vars.json"
		fetched=$(date +%s)
		if [ -z "$family" ]; then
			# The histogram: the run queue latency (BPF); without BPF the
			# sampler is down, and the engine's lateness stands in at its
			# median (its tail is too sparse at 100 samples a second for a
			# p99 to be reproducible).
			rq_up=$(jq -r '.metrics[] | select(.name == "hitel/sampler/up" and .labels.sampler == "bpf_runqueue") | .value' \
				"$tmp/vars.json" 2>/dev/null)
			if [ "$rq_up" = 1 ]; then
				family=scheduler/runqueue/latency
				prom=hitel_scheduler_runqueue_latency_seconds
				qs="0.99 0.5"
			else
				echo "# bpf_runqueue is down here ('$rq_up'): comparing hitel/engine/lateness instead"
				family=hitel/engine/lateness
				prom=hitel_hitel_engine_lateness_seconds
				qs="0.5"
			fi
		fi
		# /metrics lists a bucket from the scrape where it first has a value.
		# rate() of a bucket series born inside the range covers only its own
		# samples, far less than its neighbours' (its count is cumulative over
		# every bucket below it); histogram_quantile then forces the buckets
		# monotonic, which empties the newcomer, and a quantile whose bucket lies
		# above it moves up. That is the first window of a new bucket only (the
		# load is steady: at most a rare new bucket far in the tail) and says
		# nothing about either side's arithmetic, so compare a window where no
		# bucket is new below the ones Prometheus's quantiles fall in.
		les "$((T - WINDOW))" >"$tmp/les0"
		les "$T" >"$tmp/les1"
		first_new=$(comm -13 "$tmp/les0" "$tmp/les1" | sort -g | head -n 1)
		affected=
		: >"$tmp/answers"
		for q in $qs; do
			pq=$(promq "histogram_quantile($q, rate(${prom}_bucket[${WINDOW}s]))" "$T")
			echo "$q $pq" >>"$tmp/answers"
			# The bucket pq fell in: the first le at T not below it.
			le_q=$(sort -g "$tmp/les1" | awk -v v="${pq:-0}" '$1 + 0 >= v + 0 { print; exit }')
			if [ -n "$first_new" ] && [ -n "$le_q" ] &&
				awk -v a="$le_q" -v b="$first_new" 'BEGIN { exit !(a + 0 >= b + 0) }'; then
				affected="$affected $q"
			fi
		done
		[ -z "$affected" ] && break
		if [ $attempt -ge 4 ]; then
			echo "# a new bucket under the quantiles in $attempt windows in a row: comparing anyway"
			break
		fi
		echo "# $prom: new bucket le=$first_new in the window ending at $T, under q=$affected: taking the next window"
		attempt=$((attempt + 1))
		T=$((T + WINDOW))
	done
	qbad=0
	for q in $qs; do
		set -- $(qratio "$q")
		a=$2 b=$3 hi=$tol
		fcmp "a + 0 > 0 && b + 0 > 0 && a / b <= hi && b / a <= hi" || qbad=1
	done
	if [ $qbad -eq 0 ] || [ $round -ge 3 ]; then
		break
	fi
	echo "# quantiles disagree in the window ending at $T: taking the next window"
	round=$((round + 1))
	T=$((T + WINDOW))
done
wsec=$(jq -r '.window_seconds' "$tmp/vars.json" 2>/dev/null)
a=$wsec b=$WINDOW
check "hiteld serves the window ending at T=$T (length $wsec s, fetched at T+$((fetched - T)) s)" \
	fcmp "a != \"null\" && a >= b - 0.5 && a <= b + 0.5 && $fetched < $((T + WINDOW - 1))"
up=$(promq 'up{job="hitel"}' "$T")
check "up{job=\"hitel\"} == 1 at T ($up)" test "$up" = 1

# Why the two percentiles differ, and by how much they may:
# - /metrics ships the buckets downsampled to bucket_grouping_power g = 2:
#   four buckets per power of two, so a bucket (lo, hi] has
#   hi/lo <= 1 + 2^-g = 1.25. histogram_quantile finds the bucket holding
#   rank q*N and interpolates linearly inside it: its answer is in [lo, hi].
# - hiteld computes the percentile from the same window at full resolution
#   (g = 7 for histogram families) and reports the upper bound of the fine
#   bucket holding rank ceil(q*N), clamped to the observed maximum. Fine
#   buckets nest exactly in the coarse ones (downsampling adds neighbours),
#   so on the same samples its answer is in the same [lo, hi]: the ratio of
#   the two is within 1.25 either way.
# - The samples are nearly, not exactly, the same: hiteld's window runs from
#   its first tick after T - 10 s to its first tick after T (wall clock);
#   rate(x[10s]) at T spans the scrapes inside (T - 10 s, T], about 9 of the
#   10 s, extrapolated (the scale cancels in a quantile), and the BPF
#   histogram reaches the registry every 0.1 s. Under the steady load the
#   distribution is stationary, so the quantiles of the two samples differ
#   by sampling noise only, which can still move a quantile lying near a
#   bucket edge into the neighbouring bucket. One more bucket of slack:
#   the ratio must be within (1 + 2^-g)^2 = 1.5625 either way.
for q in $qs; do
	set -- $(qratio "$q")
	label=$1 pq=$2 hq=$3
	ratio=$(awk -v a="${pq:-0}" -v b="${hq:-0}" 'BEGIN { if (b + 0 > 0) printf "%.3f", a / b; else print "none" }')
	a=$pq b=$hq hi=$tol
	check "$family: Prometheus's q=$q ($pq s) / hiteld's $label ($hq s) = $ratio, within x$tol either way" \
		fcmp "a + 0 > 0 && b + 0 > 0 && a / b <= hi && b / a <= hi"
done

# A counter: Prometheus's rate() over the window against the mean of the
# per-read rates hiteld measured in it (the _rate summary's sum over its
# count, both cumulative). Reads are evenly spaced (absolute deadlines), so
# the mean of the rates is the total increase over the time: equal but for
# the odd late read. 5 %.
sel='{state="user"}'
rt=$(promq "rate(hitel_cpu_usage_seconds_total${sel}[${WINDOW}s])" "$T")
rm=$(promq "rate(hitel_cpu_usage_seconds_rate_sum${sel}[${WINDOW}s]) / rate(hitel_cpu_usage_seconds_rate_count${sel}[${WINDOW}s])" "$T")
a=$rt b=$rm lo=0.95 hi=1.05
ratio=$(awk -v a="${rt:-0}" -v b="${rm:-0}" 'BEGIN { if (a + 0 > 0) printf "%.4f", b / a; else print "none" }')
check "cpu/usage{state=user}: rate() $rt CPUs, mean of hiteld's rates $rm (ratio $ratio), within 5 %" \
	fcmp "a + 0 > 0.5 && b / a >= lo && b / a <= hi"
cnt=$(promq "increase(hitel_cpu_usage_seconds_rate_count${sel}[${WINDOW}s])" "$T")
a=$cnt
check "Prometheus sees hiteld's rate samples accumulate ($cnt in ${WINDOW}s)" fcmp "a + 0 >= 10"

alive=$(for p in $pids; do kill -0 "$p" 2>/dev/null || echo dead; done)
check "hiteld, Prometheus and the load ran throughout" test -z "$alive"
if [ $failed -ne 0 ]; then
	echo "# hiteld log:"
	diag "$tmp/hiteld.log"
	echo "# prometheus log:"
	diag "$tmp/prometheus.log"
	echo "# $family in /vars.json:"
	jq -c --arg f "$family" '.metrics[] | select(.name == $f)' "$tmp/vars.json" 2>/dev/null |
		sed 's/^/# /'
fi
echo "1..$n"
exit $failed
