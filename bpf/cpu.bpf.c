// SPDX-License-Identifier: MIT
/*
 * Exact per-CPU busy time, the in-kernel half of the bpf_cpu sampler
 * (core/samplers/bpf_cpu.c). /proc/stat charges a whole tick to whatever
 * state the CPU is in when the tick fires, so a 100 Hz reader sees 0, 1 or
 * 2 ticks per sample; here every sched_switch closes the previous stretch
 * on the CPU with bpf_ktime_get_ns(), and a stretch of any task but the
 * CPU's idle task (pid 0) is busy time. Userspace adds the open stretch of
 * a CPU that is busy at the moment it reads (see cpu.h).
 *
 * cpu_idle (idle entry) closes a busy stretch too. It should find the CPU
 * idle already, since the switch to the idle task came first, but some
 * kernels switch to idle without the tracepoint: the VM this was written on
 * (a vendor scheduler patch, sched_vcpu_pack) does so a few times a second,
 * and each such switch left the CPU counted busy until its next switch,
 * six times its real busy time when idle. Those corrections are counted
 * (missed).
 *
 * One row per CPU and only programs running on that CPU, with interrupts
 * off, write it: one writer per row, plain stores inside a seqcount. The
 * seq increments are atomic fetch-adds for their ordering alone: the
 * stores of the update may not move outside them, on weakly ordered CPUs
 * (arm64 JITs a fetching atomic add as a full barrier) as with the
 * compiler.
 *
 * The tp_btf and raw_tp flavours differ only in how they read next->pid.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cpu.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define PWR_EVENT_EXIT ((unsigned int)-1)

/* One struct cpu_row per possible CPU; the loader sets max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct cpu_row);
	__uint(max_entries, 1);
} rows SEC(".maps");

static __always_inline struct cpu_row *this_row(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rows, &cpu);
}

/* Close the stretch since last_ns; from now on the CPU runs a task (running
 * 1) or idles (0). */
static __always_inline void row_update(struct cpu_row *row, __u64 running)
{
	__u64 now;

	__sync_fetch_and_add(&row->seq, 1);
	/* The clock is read after seq went odd: a reader that saw the even
	 * seq before took its own time before this (see row_busy()). */
	now = bpf_ktime_get_ns();
	if (row->last_ns && row->running && now > row->last_ns)
		row->busy_ns += now - row->last_ns;
	row->last_ns = now;
	row->running = running;
	__sync_fetch_and_add(&row->seq, 1);
}

static __always_inline void on_switch(__u32 next_pid)
{
	struct cpu_row *row = this_row();

	if (!row)
		return;
	row_update(row, next_pid != 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hitel_cpusw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(next->pid);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hitel_cpusw_r, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(BPF_CORE_READ(next, pid));
	return 0;
}

static __always_inline void on_idle(unsigned int state)
{
	struct cpu_row *row;

	if (state == PWR_EVENT_EXIT)
		return;
	row = this_row();
	if (!row || !row->running)
		return;
	row_update(row, 0);
	row->missed++;
}

SEC("tp_btf/cpu_idle")
int BPF_PROG(hitel_cpuidle, unsigned int state, unsigned int cpu_id)
{
	on_idle(state);
	return 0;
}

SEC("raw_tp/cpu_idle")
int BPF_PROG(hitel_cpuidle_r, unsigned int state, unsigned int cpu_id)
{
	on_idle(state);
	return 0;
}
