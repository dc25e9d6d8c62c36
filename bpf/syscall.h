/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/syscall.bpf.c and core/samplers/bpf_syscall.c. */
#ifndef HITEL_BPF_SYSCALL_H
#define HITEL_BPF_SYSCALL_H

#include "hitel_bpf.h"

/*
 * Syscall families. OTHER is 0 so that a table slot the loader leaves unset
 * (a syscall it does not know) means "other". The names are in
 * core/samplers/bpf_syscall.c, the mapping in docs/metrics/bpf_syscall.md.
 */
enum syscall_family {
	SYSCALL_FAM_OTHER = 0,
	SYSCALL_FAM_READ,
	SYSCALL_FAM_WRITE,
	SYSCALL_FAM_POLL,
	SYSCALL_FAM_LOCK,
	SYSCALL_FAM_SLEEP,
	SYSCALL_FAM_SOCKET,
	SYSCALL_FAM_FILE,
	SYSCALL_FAM_MEMORY,
	SYSCALL_FAM_PROCESS,
	SYSCALL_FAM_COUNT,
};

/* Syscall numbers 0..SYSCALL_SLOTS-1 have a slot in the family table; larger
 * ones (x32's bit 30, MIPS's offsets) are "other". */
#define SYSCALL_SLOTS 512

/*
 * One row per possible CPU in the mmapable array map `rows`, written only by
 * programs running on that CPU (plain adds). Cumulative, never reset. The
 * count of a family is the sum of its buckets.
 */
struct syscall_row {
	__u64 lost; /* syscalls not timed: no storage for the thread */
	__u64 pad[7];
	struct hitel_bpf_hist latency[SYSCALL_FAM_COUNT]; /* sys_enter -> sys_exit, ns */
};

/* Per-thread state between sys_enter and sys_exit; ts is 0 when no syscall
 * is being timed. */
struct syscall_task {
	__u64 ts;
	__u32 family;
	__u32 pad;
};

#endif /* HITEL_BPF_SYSCALL_H */
