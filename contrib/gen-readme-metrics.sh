#!/bin/sh
# Regenerate README.md's metric list (between the METRICS marker and the
# next "## " heading) from docs/metrics/*.md, in the samplers' order.
# Usage: contrib/gen-readme-metrics.sh [README.md]   (run from the source tree)
set -eu
readme=${1:-README.md}
order="cpu memory disk network netstat softnet scheduler pressure process perf bpf_cpu
bpf_runqueue bpf_block bpf_syscall bpf_irq bpf_tcp bpf_fs self"
tmp=$(mktemp)
{
	sed -n '1,/^<!-- METRICS: generated from docs\/metrics\/\*.md -->$/p' "$readme"
	for m in $order; do
		echo
		cat "docs/metrics/$m.md"
	done
	echo
	awk 'f && /^## /{p=1} /^<!-- METRICS: generated/{f=1} p' "$readme"
} >"$tmp"
mv "$tmp" "$readme"
