/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/irq.bpf.c and core/samplers/bpf_irq.c. */
#ifndef HITEL_BPF_IRQ_H
#define HITEL_BPF_IRQ_H

#include "hitel_bpf.h"

/* Softirq vectors, as the kernel numbers them (include/linux/interrupt.h,
 * unchanged since v4.1 added hrtimer before rcu). */
#define IRQ_SOFTIRQS 10

/* IRQ numbers 0..IRQ_SLOTS-2 are counted each in their own slot; larger
 * ones share the last slot ("other"). */
#define IRQ_SLOTS 1024

/* When the current handler or softirq of a CPU started; 0 when none runs.
 * One per CPU (per-CPU array), as neither nests on one CPU. */
struct hitel_irq_start {
	__u64 hard;
	__u64 soft[IRQ_SOFTIRQS];
};

/* Everything the programs record, in the program's .bss (one copy shared by
 * all CPUs, atomic adds), cumulative and never reset. */
struct hitel_irq_data {
	__u64 hard_count[IRQ_SLOTS];		  /* handler runs by IRQ number */
	struct hitel_bpf_hist hard;		  /* handler time, ns */
	struct hitel_bpf_hist soft[IRQ_SOFTIRQS]; /* softirq time by vector, ns */
};

#endif /* HITEL_BPF_IRQ_H */
