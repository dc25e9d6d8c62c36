#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# HTTP benchmark: what a Prometheus scrape of /metrics costs hiteld (default
# samplers, default options, SNMP off) against Debian's
# prometheus-node-exporter (default collectors), measured in the same run:
#   - CPU per scrape: utime + stime of the whole process (/proc/PID/stat)
#     over N sequential curl scrapes, less what the process burns idle over
#     the same time (hiteld's engine samples at 100 Hz whether scraped or
#     not; measured just before, over a few seconds without scrapes);
#     hiteld's HTTP threads (MHD-worker) alone as a cross-check;
#   - series per scrape: sample lines of the exposition (not # lines);
#   - CPU per series, and the ratio node-exporter / hiteld (goal: >= 8);
#   - hiteld's RSS after start and after the scrapes (goal: <= 16 MiB), also
#     with a real snmpd AgentX master on a private socket, when hiteld has
#     loaded its SNMP module (net-snmp) and joined.
# Usage: bench_http.sh [path/to/hiteld]. HITEL_BENCH_SCRAPES=N (default 200).
# prometheus-node-exporter is installed (apt-get) when missing. Not part of
# make check: `make bench-http`.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

hiteld=${1:-./hiteld}
N=${HITEL_BENCH_SCRAPES:-200}
IDLE_S=${HITEL_BENCH_IDLE:-5}
GOAL_RATIO=8
GOAL_RSS_KIB=$((16 * 1024))
[ -x "$hiteld" ] || { echo "bench_http: $hiteld not built" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hitel-bench-http.XXXXXX") || exit 1
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

NODE=$(command -v prometheus-node-exporter || echo /usr/bin/prometheus-node-exporter)
if [ ! -x "$NODE" ]; then
	echo "bench_http: installing prometheus-node-exporter"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y --no-install-recommends prometheus-node-exporter ||
		{ apt-get update && apt-get install -y --no-install-recommends prometheus-node-exporter; }; } \
		>"$tmp/apt.log" 2>&1 || tail -20 "$tmp/apt.log"
	NODE=$(command -v prometheus-node-exporter || echo /usr/bin/prometheus-node-exporter)
fi
[ -x "$NODE" ] || { echo "bench_http: no prometheus-node-exporter" >&2; exit 1; }

TCK=$(getconf CLK_TCK)
now_ns() { date +%s%N; }
# cpu_ticks PID: utime + stime of the process (every thread, dead or alive).
cpu_ticks() {
	# Fields after the ")" that closes comm: utime and stime are 12th, 13th.
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
# thread_ticks PID COMM: utime + stime of the threads named COMM.
thread_ticks() {
	local t sum=0 v
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] || continue
		v=$(sed 's/.*) //' "$t/stat" | awk '{ print $12 + $13 }')
		sum=$((sum + v))
	done
	echo $sum
}
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
wait_http() { # wait_http URL: 200 within 10 s
	local i=0
	while [ $i -lt 100 ]; do
		[ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
ms() { # ms TICKS: as milliseconds
	awk -v t="$1" -v k="$TCK" 'BEGIN { printf "%.1f", t * 1000 / k }'
}

# --- start both ---------------------------------------------------------------
printf 'listen = 127.0.0.1:0\nagentx = off\n' >"$tmp/hiteld.conf"
"$hiteld" -c "$tmp/hiteld.conf" 2>"$tmp/hiteld.log" &
hpid=$!
pids="$pids $hpid"
hport=
for _ in $(seq 100); do
	hport=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$tmp/hiteld.log" | head -n 1)
	[ -n "$hport" ] && break
	sleep 0.1
done
[ -n "$hport" ] || { echo "bench_http: hiteld did not start" >&2; cat "$tmp/hiteld.log" >&2; exit 1; }
HURL="http://127.0.0.1:$hport/metrics"

nport=
for _ in 1 2 3 4 5; do
	try=$((20000 + RANDOM % 40000))
	"$NODE" --web.listen-address="127.0.0.1:$try" >"$tmp/node.log" 2>&1 &
	npid=$!
	if wait_http "http://127.0.0.1:$try/metrics"; then
		nport=$try
		pids="$pids $npid"
		break
	fi
	kill "$npid" 2>/dev/null
	wait "$npid" 2>/dev/null
done
[ -n "$nport" ] || { echo "bench_http: node exporter did not start" >&2; tail "$tmp/node.log" >&2; exit 1; }
NURL="http://127.0.0.1:$nport/metrics"

# hiteld settled: samplers initialised, the first window complete, so every
# scrape pays for the window part too (computed once per window and shared).
wait_http "$HURL" || { echo "bench_http: hiteld does not answer" >&2; exit 1; }
for _ in $(seq 250); do
	curl -s --max-time 10 "$HURL" | grep -q 'quantile="0.99"' && break
	sleep 0.1
done
rss_start=$(rss_kib "$hpid")

# --- measure --------------------------------------------------------------------
# scrape NAME PID URL: N scrapes, the last body in $tmp/NAME.txt. Sets
# cpu_ms (per scrape, idle cost removed), raw_ms (not removed), idle_pct,
# mhd_ms (MHD-worker threads per scrape), wall_ms, series, bytes.
scrape() {
	local name=$1 pid=$2 url=$3 c0 c1 c2 w0 w1 t0 t1 t2 idle busy
	# Idle first: what the process costs when nobody scrapes.
	c0=$(cpu_ticks "$pid")
	t0=$(now_ns)
	sleep "$IDLE_S"
	c1=$(cpu_ticks "$pid")
	t1=$(now_ns)
	idle=$((c1 - c0))
	w0=$(thread_ticks "$pid" MHD-worker)
	for _ in $(seq "$N"); do
		curl -s --max-time 10 -o "$tmp/$name.txt" "$url" || echo "bench_http: $name scrape failed" >&2
	done
	t2=$(now_ns)
	c2=$(cpu_ticks "$pid")
	w1=$(thread_ticks "$pid" MHD-worker)
	# The idle cost, scaled to the time the scrapes took, is not theirs.
	busy=$(awk -v c="$((c2 - c1))" -v i="$idle" -v ti="$((t1 - t0))" -v tb="$((t2 - t1))" \
		'BEGIN { v = c - i * tb / ti; print (v < 0 ? 0 : v) }')
	cpu_ms=$(awk -v b="$busy" -v k="$TCK" -v n="$N" 'BEGIN { printf "%.3f", b * 1000 / k / n }')
	raw_ms=$(awk -v b="$((c2 - c1))" -v k="$TCK" -v n="$N" 'BEGIN { printf "%.3f", b * 1000 / k / n }')
	idle_pct=$(awk -v i="$idle" -v k="$TCK" -v t="$((t1 - t0))" \
		'BEGIN { printf "%.2f", i / k / (t / 1e9) * 100 }')
	mhd_ms=$(awk -v b="$((w1 - w0))" -v k="$TCK" -v n="$N" 'BEGIN { printf "%.3f", b * 1000 / k / n }')
	wall_ms=$(awk -v t="$((t2 - t1))" -v n="$N" 'BEGIN { printf "%.2f", t / 1e6 / n }')
	series=$(grep -vc -e '^#' -e '^$' "$tmp/$name.txt")
	bytes=$(wc -c <"$tmp/$name.txt")
}

echo "== /metrics: $N sequential scrapes each, CPU from /proc/PID/stat (CLK_TCK $TCK) =="
scrape hiteld "$hpid" "$HURL"
rss_end=$(rss_kib "$hpid")
h_cpu=$cpu_ms h_raw=$raw_ms h_idle=$idle_pct h_mhd=$mhd_ms h_wall=$wall_ms h_series=$series
h_bytes=$bytes
scrape node "$npid" "$NURL"
n_cpu=$cpu_ms n_idle=$idle_pct n_wall=$wall_ms n_series=$series n_bytes=$bytes

per_series() { # per_series MS SERIES: microseconds per series
	awk -v m="$1" -v s="$2" 'BEGIN { printf "%.3f", s ? m * 1000 / s : 0 }'
}
h_us=$(per_series "$h_cpu" "$h_series")
n_us=$(per_series "$n_cpu" "$n_series")
printf '%-26s %10s %10s %12s %10s %12s %10s\n' "" "series" "bytes" "CPU/scrape" "wall" "us/series" "idle CPU"
printf '%-26s %10s %10s %10s ms %7s ms %12s %9s%%\n' "hiteld (default samplers)" \
	"$h_series" "$h_bytes" "$h_cpu" "$h_wall" "$h_us" "$h_idle"
printf '%-26s %10s %10s %10s ms %7s ms %12s %9s%%\n' "prometheus-node-exporter" \
	"$n_series" "$n_bytes" "$n_cpu" "$n_wall" "$n_us" "$n_idle"
echo "hiteld: CPU per scrape before subtracting idle $h_raw ms; HTTP threads alone $h_mhd ms"
ratio=$(awk -v h="$h_us" -v n="$n_us" 'BEGIN { if (h > 0) printf "%.1f", n / h; else print "inf" }')
verdict=$(awk -v r="$ratio" -v g=$GOAL_RATIO 'BEGIN { print (r == "inf" || r + 0 >= g) ? "met" : "NOT met" }')
echo "CPU per series: node-exporter / hiteld = ${ratio}x (goal >= ${GOAL_RATIO}x: $verdict)"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
rss_verdict() { [ "$1" -le $GOAL_RSS_KIB ] && echo met || echo "NOT met"; }
echo "hiteld RSS: $(mib "$rss_start") MiB after start, $(mib "$rss_end") MiB after the scrapes (goal <= 16 MiB: $(rss_verdict "$rss_start"), $(rss_verdict "$rss_end"))"
# --- RSS with an AgentX master ---------------------------------------------------
# hiteld maps net-snmp only when a master is there (docs/hiteld.md): the
# same measurement with a private snmpd master it has joined.
SNMPD=$(command -v snmpd || echo /usr/sbin/snmpd)
if [ -x "$SNMPD" ]; then
	mkdir -p "$tmp/snmp/persist"
	printf 'master agentx\nagentXSocket unix:%s\nagentaddress udp:127.0.0.1:%s\nrocommunity public 127.0.0.1\n' \
		"$tmp/snmp/master.sock" "$((20000 + RANDOM % 40000))" >"$tmp/snmp/snmpd.conf"
	SNMP_PERSISTENT_DIR=$tmp/snmp/persist "$SNMPD" -f -Lo -C -c "$tmp/snmp/snmpd.conf" \
		>"$tmp/snmpd.log" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 50); do
		[ -S "$tmp/snmp/master.sock" ] && break
		sleep 0.1
	done
	printf 'listen = 127.0.0.1:0\nagentx_socket = unix:%s\n' "$tmp/snmp/master.sock" \
		>"$tmp/hiteld-agentx.conf"
	"$hiteld" -c "$tmp/hiteld-agentx.conf" 2>"$tmp/hiteld-agentx.log" &
	apid=$!
	pids="$pids $apid"
	aport=
	for _ in $(seq 100); do
		aport=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$tmp/hiteld-agentx.log" |
			head -n 1)
		[ -n "$aport" ] && break
		sleep 0.1
	done
	AURL="http://127.0.0.1:$aport/metrics"
	for _ in $(seq 250); do
		curl -s --max-time 10 "$AURL" | grep -q 'quantile="0.99"' && break
		sleep 0.1
	done
	if grep -q libnetsnmp "/proc/$apid/maps" 2>/dev/null; then
		a_start=$(rss_kib "$apid")
		for _ in $(seq "$N"); do
			curl -s --max-time 10 -o /dev/null "$AURL"
		done
		a_end=$(rss_kib "$apid")
		sleep 3 # hiteld gives freed scrape memory back on its 2 s tick
		a_later=$(rss_kib "$apid")
		echo "hiteld RSS with an snmpd master (net-snmp loaded, joined): $(mib "$a_start") MiB after start, $(mib "$a_end") MiB after the scrapes, $(mib "$a_later") MiB 3 s later (goal <= 16 MiB: $(rss_verdict "$a_start"), $(rss_verdict "$a_end"), $(rss_verdict "$a_later"))"
	else
		echo "hiteld RSS with an snmpd master: not measured (hiteld did not load its SNMP module; see $tmp/hiteld-agentx.log)"
	fi
else
	echo "hiteld RSS with an snmpd master: not measured (no snmpd: Debian package snmpd)"
fi
echo "machine: $(nproc) CPUs, kernel $(uname -r); node-exporter $("$NODE" --version 2>&1 | head -n 1)"
