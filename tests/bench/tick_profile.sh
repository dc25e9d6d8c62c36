#!/bin/sh
# Per-tick instructions, cache lines and pages of the engine by function,
# from a valgrind lackey trace (see tick_profile.py for why and how).
# Usage: tick_profile.sh path/to/bench_engine [SECONDS] [SAMPLER...]
# Takes a few minutes: lackey runs the engine ~50x slower and the trace is
# ~30 MB a second of engine time.
set -eu
bin=$1
secs=${2:-4}
[ $# -ge 2 ] && shift 2 || shift $#
here=$(dirname "$0")
command -v valgrind >/dev/null || { echo "tick_profile: needs valgrind" >&2; exit 1; }
valgrind --tool=lackey --trace-mem=yes --log-fd=9 "$bin" engine "$secs" "$@" 9>&1 \
	>/dev/null 2>/dev/null | python3 "$here/tick_profile.py" "$bin"
