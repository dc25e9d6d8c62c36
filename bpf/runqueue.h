/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/runqueue.bpf.c and core/samplers/bpf_runqueue.c. */
#ifndef HITEL_BPF_RUNQUEUE_H
#define HITEL_BPF_RUNQUEUE_H

#include "hitel_bpf.h"

/*
 * One row per possible CPU in the mmapable array map `rows`: a program only
 * ever writes the row of the CPU it runs on, so updates are plain adds (no
 * lock prefix, no cache line shared between CPUs) and userspace sums the
 * rows. All fields are cumulative and never reset.
 */
struct runq_row {
	__u64 voluntary;   /* switches away from a task that blocked */
	__u64 involuntary; /* switches away from a task still runnable */
	__u64 lost;	   /* events not recorded: no task storage / map full */
	__u64 pad[5];
	struct hitel_bpf_hist runq;   /* wakeup (or preemption) -> on CPU, ns */
	struct hitel_bpf_hist offcpu; /* switched out -> switched back in, ns */
};

/* Per-task state: when the task was queued and when it left the CPU; 0 when
 * not pending. */
struct runq_task {
	__u64 queued_ns;
	__u64 off_ns;
};

#endif /* HITEL_BPF_RUNQUEUE_H */
