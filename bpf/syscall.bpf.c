// SPDX-License-Identifier: MIT
/*
 * Syscall latency per family, the in-kernel half of the bpf_syscall sampler
 * (core/samplers/bpf_syscall.c): raw_syscalls sys_enter stamps the thread
 * with the time and the syscall's family, sys_exit records the difference
 * into the family's histogram in this CPU's row. This runs on every syscall
 * of the machine, so the path is kept to one storage lookup, one clock read
 * and one table load at entry, and the same plus one bucket add at exit; the
 * count of a family is its histogram's count (no counter to add to).
 *
 * The syscall number -> family table is rodata written by the loader before
 * load (from <sys/syscall.h>, so it follows the build's architecture).
 * Syscalls that never return (exit, exit_group, a successful execve of a
 * multithreaded process from another thread) leave a stamp behind: task
 * storage frees it with the task, the raw_tp flavour deletes it at exit.
 *
 * Flavours, chosen by the loader:
 *   tp_btf (>= 5.11): the stamp lives in task-local storage of the current
 *     task (bpf_get_current_task_btf). Measured cheaper than a tid-keyed
 *     hash with the same attach type: see core/samplers/bpf_syscall.c.
 *   raw_tp (fallback, older kernels without tp_btf or task storage for
 *     tracing programs): the stamp lives in a tid-keyed hash, cleared by
 *     sched_process_exit.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hist.bpf.h"
#include "syscall.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Family of each syscall number; set by the loader, SYSCALL_FAM_OTHER (0)
 * where unset. */
const volatile __u8 families[SYSCALL_SLOTS];

/* One struct syscall_row per possible CPU; the loader sets max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct syscall_row);
	__uint(max_entries, 1);
} rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_task);
} task_ts SEC(".maps");

/* raw_tp fallback only; sized by the loader (threads-max). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct syscall_task);
	__uint(max_entries, 1);
} tid_ts SEC(".maps");

/*
 * A 32-bit process on a 64-bit x86 kernel makes ia32 syscalls, whose numbers
 * mean other syscalls in the 64-bit table: they are counted as "other".
 * TS_COMPAT (arch/x86/include/asm/thread_info.h) is set for the duration of
 * such a syscall; thread_info is inside task_struct on x86 since v4.9.
 * x32 syscalls carry bit 30 in their number and fall outside the table.
 * Other architectures' compat tasks are not told apart.
 */
#define X86_TS_COMPAT 0x0002

static __always_inline bool is_compat(struct task_struct *t, bool btf)
{
#if defined(__TARGET_ARCH_x86)
	if (!bpf_core_field_exists(t->thread_info.status))
		return false;
	if (btf)
		return t->thread_info.status & X86_TS_COMPAT;
	return BPF_CORE_READ(t, thread_info.status) & X86_TS_COMPAT;
#else
	return false;
#endif
}

static __always_inline __u32 family_of(long id, bool compat)
{
	__u32 fam;

	if (compat || id < 0 || id >= SYSCALL_SLOTS)
		return SYSCALL_FAM_OTHER;
	fam = families[id];
	return fam < SYSCALL_FAM_COUNT ? fam : SYSCALL_FAM_OTHER;
}

static __always_inline struct syscall_row *this_row(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rows, &cpu);
}

static __always_inline void count_lost(void)
{
	struct syscall_row *row = this_row();

	if (row)
		row->lost++;
}

/* The current thread's state: task storage (tp_btf) or the tid hash. btf is
 * a compile-time constant, so each program keeps only its own branch. */
static __always_inline struct syscall_task *task_get(struct task_struct *t, bool btf,
						     bool create)
{
	struct syscall_task *st, zero = {};
	__u32 tid;

	if (btf)
		return bpf_task_storage_get(&task_ts, t, 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	tid = (__u32)bpf_get_current_pid_tgid();
	st = bpf_map_lookup_elem(&tid_ts, &tid);
	if (st || !create)
		return st;
	bpf_map_update_elem(&tid_ts, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tid_ts, &tid);
}

static __always_inline struct task_struct *current_task(bool btf)
{
	if (btf)
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

static __always_inline void on_enter(long id, bool btf)
{
	struct task_struct *t = current_task(btf);
	struct syscall_task *st = task_get(t, btf, true);

	if (!st) {
		count_lost();
		return;
	}
	st->family = family_of(id, is_compat(t, btf));
	/* Last, so that the stamp leaves out the work above. */
	st->ts = bpf_ktime_get_ns();
}

static __always_inline void on_exit(bool btf)
{
	/* First, for the same reason. */
	__u64 now = bpf_ktime_get_ns(), t0;
	struct syscall_task *st = task_get(current_task(btf), btf, false);
	struct syscall_row *row;
	__u64 fam; /* 64 bits: no zero extension to separate copy and check */

	if (!st)
		return;
	t0 = st->ts;
	if (!t0)
		return; /* entered before we attached */
	st->ts = 0;
	row = this_row();
	if (!row || now < t0)
		return;
	fam = st->family;
	/* As in hist_index(): bound the register used for the access. */
	barrier_var(fam);
	if (fam >= SYSCALL_FAM_COUNT)
		fam = SYSCALL_FAM_OTHER;
	hist_add(&row->latency[fam], now - t0);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(hitel_sysenter, struct pt_regs *regs, long id)
{
	on_enter(id, true);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(hitel_sysexit, struct pt_regs *regs, long ret)
{
	on_exit(true);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(hitel_sysent_r, struct pt_regs *regs, long id)
{
	on_enter(id, false);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(hitel_sysexit_r, struct pt_regs *regs, long ret)
{
	on_exit(false);
	return 0;
}

/* The tid hash has no owner to free its entries: drop them at exit. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(hitel_sysdone_r, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&tid_ts, &tid);
	return 0;
}
