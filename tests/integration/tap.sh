# SPDX-License-Identifier: MIT
# TAP helpers shared by the integration scripts (sourced, bash):
# ok/not_ok/check count test points in $n and failures in $failed; the
# script prints the plan "1..$n" at its end.
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
# not_ok DESC [DIAGNOSTIC...]
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	local l
	for l in "$@"; do
		echo "# $l"
	done
}
# check DESC CMD...: one test point from a command's status.
check() {
	local desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc" "failed: $*"
	fi
}
bail() {
	echo "Bail out! $*"
	exit 1
}
# is: awk-evaluated comparison, e.g. is "$x > 0".
is() {
	awk "BEGIN { exit !($1) }" </dev/null
}
# wait_for SECONDS CMD...: poll every 0.1 s until CMD succeeds.
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
# need_packages PKG...: install the Debian packages that are missing, or
# bail out naming them.
need_packages() {
	local pkg missing=""
	for pkg in "$@"; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
	done
	[ -n "$missing" ] || return 0
	echo "# installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 ||
		{ apt-get update >/dev/null 2>&1 &&
			apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; } ||
		bail "cannot install$missing"
}
