/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/cpu.bpf.c and core/samplers/bpf_cpu.c. */
#ifndef HITEL_BPF_CPU_H
#define HITEL_BPF_CPU_H

#include "hitel_bpf.h"

/*
 * One row per possible CPU in the mmapable array map `rows`, a cache line
 * each, written only by sched_switch on that CPU. Userspace reads a row in
 * place while it may be written, so the writer makes seq odd for the
 * duration of an update (a seqcount): a reader retries when it saw an odd
 * seq or seq changed under it.
 *
 * The CPU's busy time at time t (CLOCK_MONOTONIC ns, the clock of
 * bpf_ktime_get_ns) is busy_ns + (t - last_ns) when running is 1, busy_ns
 * when it is 0. last_ns is 0 until the first switch on the CPU after the
 * programs were attached: what ran before is unknown, and counting it as
 * idle keeps the counter free of a bogus jump.
 */
struct cpu_row {
	__u64 seq;
	__u64 busy_ns;	/* time a task other than the idle task ran, up to last_ns */
	__u64 last_ns;	/* the last switch (or idle entry) on this CPU; 0: none yet */
	__u64 running;	/* since last_ns a task other than the idle task runs */
	__u64 missed;	/* idle entries while running: a switch to idle not seen */
	__u64 pad[3];
};

#endif /* HITEL_BPF_CPU_H */
