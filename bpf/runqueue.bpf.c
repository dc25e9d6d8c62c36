// SPDX-License-Identifier: MIT
/*
 * Scheduler latency histograms, the in-kernel half of the bpf_runqueue
 * sampler (core/samplers/bpf_runqueue.c):
 *   - run queue latency: from sched_wakeup / sched_wakeup_new, or from a
 *     preemption that leaves the task runnable, to sched_switch onto a CPU
 *     (the definition of bcc's runqlat);
 *   - off-CPU time: from sched_switch away from a task to sched_switch back
 *     onto a CPU (bcc's offcputime, all states);
 *   - voluntary / involuntary context switches.
 * The idle task (pid 0, one per CPU) is ignored on both sides of a switch:
 * it is "runnable" whenever it is switched out, and would otherwise add one
 * bogus run queue latency per idle period.
 *
 * Two flavours of the same logic, chosen by the loader:
 *   tp_btf (>= 5.11, needs kernel BTF): task pointers are typed, so the
 *     timestamps live in task-local storage; no pid-keyed map to size,
 *     nothing to delete, no collision between per-CPU idle tasks, and
 *     cheaper per event (see the measurement in core/samplers/bpf_runqueue.c).
 *   raw_tp (fallback): untyped arguments cannot reach bpf_task_storage_get,
 *     so the timestamps live in a pid-keyed hash.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hist.bpf.h"
#include "runqueue.h"

#define TASK_RUNNING 0

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* One struct runq_row per possible CPU; the loader sets max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct runq_row);
	__uint(max_entries, 1);
} rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct runq_task);
} task_ts SEC(".maps");

/* raw_tp fallback only; sized by the loader (threads-max). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct runq_task);
	__uint(max_entries, 1);
} pid_ts SEC(".maps");

/*
 * Commit 2f064a59a11f ("sched: Change task_struct::state", v5.14) renamed
 * task_struct::state to __state (and made it unsigned int).
 */
struct task_struct___pre514 {
	volatile long state;
} __attribute__((preserve_access_index));

/* btf: t is a trusted BTF pointer (tp_btf), read it directly. */
static __always_inline long task_state(struct task_struct *t, bool btf)
{
	struct task_struct___pre514 *old = (void *)t;

	if (bpf_core_field_exists(t->__state))
		return btf ? t->__state : BPF_CORE_READ(t, __state);
	return btf ? old->state : BPF_CORE_READ(old, state);
}

static __always_inline struct runq_row *this_row(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rows, &cpu);
}

/*
 * Per-task state for t: task-local storage (tp_btf, t is a trusted BTF
 * pointer) or the pid hash (raw_tp). btf is a compile-time constant, so each
 * program keeps only its own branch.
 */
static __always_inline struct runq_task *task_get(struct task_struct *t, __u32 pid, bool btf,
						   bool create)
{
	struct runq_task *ts, zero = {};

	if (btf)
		return bpf_task_storage_get(&task_ts, t, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	ts = bpf_map_lookup_elem(&pid_ts, &pid);
	if (ts || !create)
		return ts;
	bpf_map_update_elem(&pid_ts, &pid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&pid_ts, &pid);
}

static __always_inline __u32 task_pid(struct task_struct *t, bool btf)
{
	return btf ? t->pid : BPF_CORE_READ(t, pid);
}

static __always_inline void on_wakeup(struct task_struct *p, bool btf)
{
	__u32 pid = task_pid(p, btf);
	struct runq_task *ts;
	struct runq_row *row;

	if (pid == 0)
		return;
	ts = task_get(p, pid, btf, true);
	if (ts) {
		ts->queued_ns = bpf_ktime_get_ns();
		return;
	}
	row = this_row();
	if (row)
		row->lost++;
}

static __always_inline void on_switch(bool preempt, struct task_struct *prev,
				      struct task_struct *next, bool btf)
{
	__u32 prev_pid = task_pid(prev, btf), next_pid = task_pid(next, btf);
	struct runq_row *row = this_row();
	__u64 now = bpf_ktime_get_ns();
	struct runq_task *ts;

	if (!row)
		return;
	if (prev_pid != 0) {
		/*
		 * A task switched out while still TASK_RUNNING (preempted, or
		 * sched_yield) goes straight back on the run queue. A task
		 * that blocks forgets any earlier wakeup: only the wakeup that
		 * ends this sleep may start its next run queue wait.
		 */
		bool runnable = task_state(prev, btf) == TASK_RUNNING;

		/* As the kernel's nvcsw/nivcsw (__schedule()). */
		if (!preempt && !runnable)
			row->voluntary++;
		else
			row->involuntary++;
		ts = task_get(prev, prev_pid, btf, true);
		if (ts) {
			ts->off_ns = now;
			ts->queued_ns = runnable ? now : 0;
		} else {
			row->lost++;
		}
	}
	if (next_pid == 0)
		return;
	ts = task_get(next, next_pid, btf, false);
	if (!ts)
		return;
	if (ts->queued_ns && now >= ts->queued_ns)
		hist_add(&row->runq, now - ts->queued_ns);
	if (ts->off_ns && now >= ts->off_ns)
		hist_add(&row->offcpu, now - ts->off_ns);
	ts->queued_ns = 0;
	ts->off_ns = 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(hitel_rqwake, struct task_struct *p)
{
	on_wakeup(p, true);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(hitel_rqwaken, struct task_struct *p)
{
	on_wakeup(p, true);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(hitel_rqswitch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(preempt, prev, next, true);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(hitel_rqwake_r, struct task_struct *p)
{
	on_wakeup(p, false);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(hitel_rqwaken_r, struct task_struct *p)
{
	on_wakeup(p, false);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(hitel_rqswtch_r, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	on_switch(preempt, prev, next, false);
	return 0;
}

/* The pid hash has no owner to free its entries: drop them at exit. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(hitel_rqexit_r, struct task_struct *p)
{
	__u32 pid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&pid_ts, &pid);
	return 0;
}
