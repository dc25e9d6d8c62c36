/* SPDX-License-Identifier: MIT */
/*
 * Definitions shared by every hitel BPF program and its userspace loader.
 * Plain __u32/__u64 only: this header is included both by bpf/<name>.bpf.c
 * (with vmlinux.h) and by core/samplers/bpf_<name>.c (with <linux/types.h>).
 */
#ifndef HITEL_BPF_H
#define HITEL_BPF_H

/*
 * Histogram shape of every in-kernel histogram: grouping power 7 (0.78 %
 * relative error) over the whole u64 range (max power 64), so no value is
 * ever clamped and kernel histograms merge with userspace ones of the
 * default shape. HITEL_BPF_BUCKETS == hitel_bucket_count(7, 64); the
 * userspace side checks that at compile time.
 */
#define HITEL_BPF_GROUPING 7
#define HITEL_BPF_MAX_POWER 64
#define HITEL_BPF_BUCKETS 7424

/* One cumulative histogram as it sits in a map value: the exact sum of the
 * recorded values (modulo 2^64) and one counter per bucket; the count is the
 * sum of the buckets. Never reset. */
struct hitel_bpf_hist {
	__u64 sum;
	__u64 pad[7]; /* buckets start on their own cache line */
	__u64 buckets[HITEL_BPF_BUCKETS];
};

#endif /* HITEL_BPF_H */
