#!/bin/sh
# SPDX-License-Identifier: MIT
# hiteld over HTTP, end to end, as TAP: the built daemon on a free loopback
# port with a temporary config; every endpoint, promtool on /metrics, bad
# requests, 50 concurrent clients, SIGHUP reloads (exporter options; a new
# engine on the same registry; refused and invalid files) and SIGTERM.
#
# HITELD=path overrides ./hiteld (make check runs from the build directory).
# promtool comes from the Debian package prometheus; it is installed here if
# missing, and its absence is a failure, never a skip.
set -u

HITELD=${HITELD:-./hiteld}
n=0
failed=0
pid=
tmp=$(mktemp -d /tmp/hiteld-http-XXXXXX)

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	echo "not ok $n - $1"
	failed=1
}
# check DESCRIPTION COMMAND...: one test point from a command's status.
check() {
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}
diag() {
	sed 's/^/# /' "$@"
}
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# curl_code PATH [curl args...]: the status code; the body goes to $tmp/body.
curl_code() {
	path=$1
	shift
	curl -s --max-time 10 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" \
		"http://127.0.0.1:$port$path" 2>/dev/null
}
alive() {
	kill -0 "$pid" 2>/dev/null
}
# metric NAME{LABELS}: its value on /metrics now (empty if absent).
metric() {
	curl -s --max-time 10 "http://127.0.0.1:$port/metrics" 2>/dev/null |
		awk -v k="$1" '$1 == k { print $2; exit }'
}

# --- tools ---------------------------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y --no-install-recommends prometheus ||
		{ apt-get update && apt-get install -y --no-install-recommends prometheus; }; } \
		>"$tmp/apt.log" 2>&1 || diag "$tmp/apt.log"
fi
check "promtool is available (Debian package prometheus)" \
	sh -c 'command -v promtool >/dev/null'
if command -v jq >/dev/null 2>&1; then
	json_ok() { jq -e '.metrics | length > 0' "$1" >/dev/null; }
else
	json_ok() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not d["metrics"])' "$1"; }
fi
check "hiteld binary exists ($HITELD)" test -x "$HITELD"

# --- config checks -----------------------------------------------------------------
cat >"$tmp/hiteld.conf" <<EOF
# integration test
sample_rate = 100
window = 1
listen = 127.0.0.1:0
percentiles = 50 90 99 99.9 100
samplers = default -scheduler
[sampler disk]
rate = 10
[sampler cpu]
rate = 50
EOF
printf 'sample_rate = 100\n[sampler disk]\nrate = 500\n' >"$tmp/bad.conf"

check "--check-config accepts a good file" \
	sh -c "'$HITELD' -c '$tmp/hiteld.conf' --check-config >/dev/null"
"$HITELD" -c "$tmp/bad.conf" --check-config >/dev/null 2>"$tmp/bad.log"
rc=$?
check "--check-config rejects a bad file with exit 1" test "$rc" -eq 1
check "the error names file, line and option" \
	grep -q "bad.conf:3: option 'rate' for sampler 'disk'" "$tmp/bad.log"
printf 'sample_rate = 10\nhttp = on\nwindow = 0.05\nlisten = nowhere\n' >"$tmp/bad2.conf"
"$HITELD" -c "$tmp/bad2.conf" --check-config >/dev/null 2>"$tmp/bad2.log"
rc=$?
check "hiteld's own keys are checked too, every error reported" \
	sh -c "[ $rc -eq 1 ] && grep -q \"bad2.conf:3: option 'window'\" '$tmp/bad2.log' && grep -q \"bad2.conf:4: option 'listen'\" '$tmp/bad2.log'"

# --- start -------------------------------------------------------------------------------
: >"$tmp/log" # exists before the background job opens it
"$HITELD" -c "$tmp/hiteld.conf" 2>"$tmp/log" &
pid=$!
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ] && alive; do
	port=$(sed -n 's/.*listening on .* (port \([0-9]*\)).*/\1/p' "$tmp/log" | head -n 1)
	[ -n "$port" ] || sleep 0.1
	i=$((i + 1))
done
if [ -z "$port" ]; then
	not_ok "hiteld starts and reports its port"
	diag "$tmp/log"
	echo "1..$n"
	exit 1
fi
ok "hiteld starts and reports its port ($port)"
code=
i=0
while [ $i -lt 100 ]; do
	code=$(curl_code /health)
	[ "$code" = 200 ] && break
	sleep 0.1
	i=$((i + 1))
done
check "/health answers 200 within 10 s" test "$code" = 200
check "/health says ok and counts samplers" grep -q '^samplers up [0-9]* down [0-9]*$' "$tmp/body"
check "/health body starts with ok" test "$(head -n 1 "$tmp/body")" = ok

code=$(curl_code /)
check "/ answers 200" test "$code" = 200
check "/ shows the version and links" sh -c "grep -q 'hiteld [0-9]' '$tmp/body' && grep -q 'href=\"/metrics\"' '$tmp/body'"

# Wait for the first 1 s window so the quantile lines are there.
i=0
while [ $i -lt 50 ]; do
	code=$(curl_code /metrics)
	grep -q 'quantile="0.99"' "$tmp/body" && break
	sleep 0.2
	i=$((i + 1))
done
cp "$tmp/body" "$tmp/metrics"
check "/metrics answers 200" test "$code" = 200
check "/metrics has the 0.0.4 content type" \
	grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers"
check "/metrics has window quantiles after one window" grep -q 'quantile="0.99"' "$tmp/metrics"
promtool check metrics <"$tmp/metrics" >"$tmp/promtool.log" 2>&1
rc=$?
check "promtool check metrics is clean" sh -c "[ $rc -eq 0 ] && [ ! -s '$tmp/promtool.log' ]"
[ $rc -eq 0 ] && [ ! -s "$tmp/promtool.log" ] || diag "$tmp/promtool.log"
check "/metrics has self metrics (hitel_hitel_sampler_up)" \
	grep -q '^hitel_hitel_sampler_up{sampler="cpu"} 1$' "$tmp/metrics"
check "/metrics has a counter with _total" grep -q '^# TYPE hitel_cpu_usage_seconds_total counter$' "$tmp/metrics"
check "/metrics has a classic histogram ending in +Inf" grep -q '_bucket{.*le="+Inf"} [0-9]' "$tmp/metrics"

code=$(curl_code /vars)
check "/vars answers 200" test "$code" = 200
check "/vars lines are 'name{labels} value'" \
	sh -c "! grep -Ev '^[a-z_/0-9]+(\\{.*\\})? -?[0-9.e+-]+\$' '$tmp/body' | grep -q ."
check "/vars has window percentiles" grep -q '^cpu/usage/rate/p99{' "$tmp/body"

code=$(curl_code /vars.json)
check "/vars.json answers 200" test "$code" = 200
check "/vars.json parses as JSON with metrics" json_ok "$tmp/body"

head=$(curl -s --max-time 10 -I -o "$tmp/headers" -w '%{http_code} %{size_download}' \
	"http://127.0.0.1:$port/metrics")
check "HEAD /metrics answers 200 with a length and no body ($head)" \
	sh -c "[ '$head' = '200 0' ] && grep -qi '^content-length: [1-9]' '$tmp/headers'"

# --- bad requests -----------------------------------------------------------------------
code=$(curl_code /metrics -X POST -d 'x=1')
check "POST answers 405" test "$code" = 405
check "405 lists the allowed methods" grep -qi '^allow: GET, HEAD' "$tmp/headers"
code=$(curl_code /metrics -X DELETE)
check "DELETE answers 405" test "$code" = 405
code=$(curl_code /no/such/path)
check "unknown path answers 404" test "$code" = 404
big=$(head -c 65536 /dev/zero | tr '\0' a)
code=$(curl_code /metrics -H "X-Big: $big")
check "a 64 KiB header gets an error status ($code)" test "$code" -ge 400
code=$(curl_code /health)
check "the server is still up after it" test "$code" = 200

# --- 50 concurrent clients --------------------------------------------------------------
pids=
for c in $(seq 1 50); do
	curl -s --max-time 20 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/metrics" \
		>"$tmp/conc.$c" 2>/dev/null &
	pids="$pids $!"
done
for p in $pids; do wait "$p"; done
answered=$(cat "$tmp"/conc.* | grep -c '^200$')
check "50 concurrent scrapes all answered 200 ($answered)" test "$answered" -eq 50

# --- SIGHUP ------------------------------------------------------------------------------
reloads() { grep -c 'reload done' "$tmp/log"; }
wait_reload() { # wait_reload COUNT: until COUNT reloads are logged (5 s)
	i=0
	while [ $i -lt 50 ] && [ "$(reloads)" -lt "$1" ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
sed -i 's/^percentiles = .*/percentiles = 50 100/' "$tmp/hiteld.conf"
kill -HUP "$pid"
wait_reload 1
check "SIGHUP reloads and keeps running" sh -c "kill -0 $pid && [ $(reloads) -ge 1 ]"
code=$(curl_code /metrics)
check "new percentiles apply at once" \
	sh -c "[ '$code' = 200 ] && grep -q 'quantile=\"1\"' '$tmp/body' && ! grep -q 'quantile=\"0.99\"' '$tmp/body'"

# An engine reload: another sample_rate, the scheduler sampler added, the
# disk sampler's rate changed. A new engine takes over the registry, so a
# count only hiteld keeps (rate samples of cpu/usage since start; a kernel
# counter would grow across a restart too) must go on from where it was.
rate_count='hitel_cpu_usage_seconds_rate_count{state="user"}'
before=$(metric "$rate_count")
up=$(metric 'hitel_hitel_sampler_up{sampler="scheduler"}')
check "the scheduler sampler is not running before the reload ('$up')" test -z "$up"
sed -i -e 's/^sample_rate = .*/sample_rate = 50/' -e '/^samplers = /d' -e 's/^rate = 10$/rate = 5/' \
	"$tmp/hiteld.conf"
kill -HUP "$pid"
wait_reload 2
check "an engine change is applied by a new engine on the same registry, hiteld keeps running" \
	sh -c "kill -0 $pid && grep -q 'engine replaced on the same registry' '$tmp/log' && ! grep -q 'restart hiteld to apply' '$tmp/log'"
code=$(curl_code /metrics)
check "window quantiles are served right after the engine reload" \
	sh -c "[ '$code' = 200 ] && grep -q 'quantile=\"1\"' '$tmp/body'"
i=0
while [ $i -lt 50 ] && [ "$(metric 'hitel_hitel_sampler_up{sampler="scheduler"}')" != 1 ]; do
	sleep 0.1
	i=$((i + 1))
done
code=$(curl_code /metrics)
check "the added sampler's series appear (scheduler up, its counters)" \
	sh -c "grep -q '^hitel_hitel_sampler_up{sampler=\"scheduler\"} 1\$' '$tmp/body' && grep -q '^hitel_scheduler_' '$tmp/body'"
sleep 1
after=$(metric "$rate_count")
check "an old series keeps its cumulative state ($rate_count $before -> $after)" \
	sh -c "[ -n '$before' ] && [ -n '$after' ] && [ '$before' -gt 50 ] && [ '$after' -gt '$before' ]"

# Options that fix the shape of existing series: the whole reload is
# refused (the new percentiles in the same file are not applied either).
sed -i -e '1i hist_grouping_power = 6' -e 's/^percentiles = .*/percentiles = 50 99/' \
	"$tmp/hiteld.conf"
kill -HUP "$pid"
i=0
while [ $i -lt 50 ] && ! grep -q 'reload refused' "$tmp/log"; do
	sleep 0.1
	i=$((i + 1))
done
code=$(curl_code /metrics)
check "a grouping power change is refused as a whole, hiteld keeps running as it was" \
	sh -c "kill -0 $pid && grep -q 'reload refused: hist_grouping_power: cannot change from 7 to 6' '$tmp/log' && [ '$code' = 200 ] && grep -q 'quantile=\"1\"' '$tmp/body' && ! grep -q 'quantile=\"0.99\"' '$tmp/body'"
sed -i -e '/^hist_grouping_power = /d' -e 's/^percentiles = .*/percentiles = 50 100/' \
	"$tmp/hiteld.conf"

before=$(metric "$rate_count")
echo 'this is not valid' >>"$tmp/hiteld.conf"
bad_line=$(wc -l <"$tmp/hiteld.conf")
kill -HUP "$pid"
i=0
while [ $i -lt 50 ] && ! grep -q "hiteld.conf:$bad_line: syntax error" "$tmp/log"; do
	sleep 0.1
	i=$((i + 1))
done
code=$(curl_code /metrics)
check "an invalid file is refused and the old settings stay" \
	sh -c "grep -q 'hiteld.conf:$bad_line: syntax error' '$tmp/log' && [ '$code' = 200 ] && grep -q 'quantile=\"1\"' '$tmp/body' && ! grep -q 'quantile=\"0.99\"' '$tmp/body'"
sleep 0.5
after=$(metric "$rate_count")
up=$(metric 'hitel_hitel_sampler_up{sampler="scheduler"}')
check "after the invalid file the engine runs on ($before -> $after, scheduler up '$up')" \
	sh -c "kill -0 $pid && [ -n '$after' ] && [ '$after' -gt '$before' ] && [ '$up' = 1 ]"

# --- SIGTERM ------------------------------------------------------------------------------
kill -TERM "$pid"
i=0
while [ $i -lt 20 ] && alive; do
	sleep 0.1
	i=$((i + 1))
done
if alive; then
	not_ok "SIGTERM stops hiteld within 2 s"
else
	ok "SIGTERM stops hiteld within 2 s"
fi
wait "$pid"
rc=$?
pid=
check "exit status after SIGTERM is 0 ($rc)" test "$rc" -eq 0

# --- --once ---------------------------------------------------------------------------------
"$HITELD" --once=0.5 >"$tmp/once" 2>"$tmp/once.log"
rc=$?
check "--once exits 0" test "$rc" -eq 0
check "--once prints values and a distribution" \
	sh -c "grep -q '^cpu/usage{' '$tmp/once' && grep -q ' : count ' '$tmp/once'"

[ $failed -eq 0 ] || diag "$tmp/log"
echo "1..$n"
exit $failed
