/* SPDX-License-Identifier: MIT */
/*
 * Recording into struct hitel_bpf_hist from BPF programs, with the same
 * bucket function as userspace (core/hist_bucket.h: no loops, no clz).
 */
#ifndef HITEL_HIST_BPF_H
#define HITEL_HIST_BPF_H

#include "hist_bucket.h"
#include "hitel_bpf.h"

static __always_inline __u64 hist_index(__u64 v)
{
	__u64 i = hitel_bucket_index(v, HITEL_BPF_GROUPING);

	/*
	 * Never true for max power 64, but the verifier needs the bound, on
	 * the very register used for the access: barrier_var() stops clang
	 * from testing a copy and indexing with the unchecked original.
	 */
	barrier_var(i);
	if (i >= HITEL_BPF_BUCKETS)
		i = HITEL_BPF_BUCKETS - 1;
	return i;
}

/* For a histogram only this CPU writes (a per-CPU row): plain adds. */
static __always_inline void hist_add(struct hitel_bpf_hist *h, __u64 v)
{
	__u64 i = hist_index(v);

	h->buckets[i] += 1;
	h->sum += v;
}

/* For a histogram shared by all CPUs. */
static __always_inline void hist_add_atomic(struct hitel_bpf_hist *h, __u64 v)
{
	__u64 i = hist_index(v);

	__sync_fetch_and_add(&h->buckets[i], 1);
	__sync_fetch_and_add(&h->sum, v);
}

#endif /* HITEL_HIST_BPF_H */
