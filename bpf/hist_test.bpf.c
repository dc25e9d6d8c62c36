// SPDX-License-Identifier: MIT
/*
 * Test-only program (tests/unit/check_bpf_bucket.c): runs the bucket function
 * and the recording helper exactly as the samplers' programs compile them,
 * over values userspace writes into .bss, so the test can compare every
 * index with the userspace implementation. Run with BPF_PROG_TEST_RUN.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>

#include "hist.bpf.h"

#define HIST_TEST_VALUES 512

char LICENSE[] SEC("license") = "Dual MIT/GPL";

__u32 nr_values;
__u64 values[HIST_TEST_VALUES];
/* hist_index(), the samplers' path (grouping power HITEL_BPF_GROUPING). */
__u32 index_fixed[HIST_TEST_VALUES];
/* hitel_bucket_index(v, g) with g a run-time value, g = 0..10. */
__u32 index_g[HITEL_HIST_MAX_GROUPING + 1][HIST_TEST_VALUES];
/* Every value recorded with hist_add() (per-CPU path) and hist_add_atomic(). */
struct hitel_bpf_hist plain;
struct hitel_bpf_hist atomic;

static long one_value(__u32 i, void *ctx)
{
	__u32 g;
	__u64 v;

	if (i >= HIST_TEST_VALUES)
		return 1;
	v = values[i];
	index_fixed[i] = hist_index(v);
	for (g = 0; g <= HITEL_HIST_MAX_GROUPING; g++)
		index_g[g][i] = hitel_bucket_index(v, g);
	hist_add(&plain, v);
	hist_add_atomic(&atomic, v);
	return 0;
}

SEC("syscall")
int hitel_histtest(void *ctx)
{
	bpf_loop(nr_values, one_value, NULL, 0);
	return 0;
}
