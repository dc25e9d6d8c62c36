/* SPDX-License-Identifier: MIT */
/*
 * bpf_syscall: syscall latency (sys_enter -> sys_exit) histograms and counts
 * per syscall family, recorded in the kernel by bpf/syscall.bpf.c from the
 * raw_syscalls tracepoints and loaded from its per-CPU rows at the sampler's
 * rate. The kernel histograms are cumulative and never reset.
 *
 * Families:
 *   syscall/latency {family}   histogram, ns
 *   syscall/count {family}     counter: syscalls completed (the histogram's count)
 *   hitel/bpf/lost {sampler}   counter: syscalls not timed
 *   hitel/bpf/runs, hitel/bpf/run_time   with kernel BPF statistics on
 * family is read, write, poll, lock, sleep, socket, file, memory, process or
 * other; the table below is the mapping (docs/metrics/bpf_syscall.md).
 *
 * Design choices, measured on a 2-CPU VM (kernel 6.18, TSC clock; minimum
 * of 20 runs of 200k syscall(SYS_getppid) on one CPU, programs attached and
 * detached between runs; getppid alone takes 166 ns there):
 * - Added cost per syscall, the sys_enter + sys_exit pair, tp_btf: 120 ns
 *   for two empty programs (the raw_syscalls tracepoints also move every
 *   syscall to the slow path), +100 ns for the two clock reads, +58 ns for
 *   two task storage lookups; the table load and bucket add are in the
 *   noise. Whole sampler: +270 ns (tp_btf), +368 ns (raw_tp).
 * - Per-thread stamps in task-local storage rather than a tid-keyed hash,
 *   the same tp_btf programs otherwise: +271..304 vs +370..376 ns per
 *   syscall. Storage also needs no sizing and is freed with the thread.
 *   The raw_tp flavour, for kernels without tp_btf or without task storage
 *   for tracing programs (< 5.11), uses the hash.
 * - Histograms in one row per CPU with plain adds, as bpf_runqueue does:
 *   this runs on every syscall of every CPU, so a shared histogram's sum and
 *   hot buckets would bounce between CPUs on each call. The cost is memory,
 *   10 x 58 KB per possible CPU, and a sum over CPUs per read (1 Hz).
 * - No separate counters: the count of a family is its histogram's count,
 *   which the read computes while summing the rows.
 */
#include "config.h"

#include <errno.h>
#include <linux/types.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_common.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"
#include "syscall.h"
#include "syscall.skel.h"

#define TID_ENTRIES_MAX 65536
#define TID_ENTRIES_MIN 4096

static const char *const family_names[SYSCALL_FAM_COUNT] = {
	[SYSCALL_FAM_OTHER] = "other",	 [SYSCALL_FAM_READ] = "read",
	[SYSCALL_FAM_WRITE] = "write",	 [SYSCALL_FAM_POLL] = "poll",
	[SYSCALL_FAM_LOCK] = "lock",	 [SYSCALL_FAM_SLEEP] = "sleep",
	[SYSCALL_FAM_SOCKET] = "socket", [SYSCALL_FAM_FILE] = "file",
	[SYSCALL_FAM_MEMORY] = "memory", [SYSCALL_FAM_PROCESS] = "process",
};

struct sys_entry {
	long nr;
	enum syscall_family family;
};

#define E(name, fam) { SYS_##name, SYSCALL_FAM_##fam }

/*
 * The table is built from <sys/syscall.h>, so the numbers are those of the
 * architecture hitel is built for. The first list holds syscalls that both
 * x86_64 and the generic table (asm-generic/unistd.h, without any
 * __ARCH_WANT_*: arm64, riscv64, loongarch64) have; the legacy list is
 * x86_64's. Anything unlisted is "other". Other architectures get no table
 * (everything "other") rather than a guess.
 */
#if defined(__x86_64__) || defined(__aarch64__) || (defined(__riscv) && defined(__LP64__)) || \
	defined(__loongarch64)
#define HAVE_SYSCALL_TABLE 1

/* Syscalls added after the uapi headers of Debian 12 (v6.1): numbers since
 * 424 are the same on every architecture listed above. */
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_map_shadow_stack
#define SYS_map_shadow_stack 453
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#ifndef SYS_futex_requeue
#define SYS_futex_requeue 456
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif

static const struct sys_entry sys_table[] = {
	E(read, READ), E(readv, READ), E(pread64, READ), E(preadv, READ), E(preadv2, READ),
	E(recvfrom, READ), E(recvmsg, READ), E(recvmmsg, READ),

	E(write, WRITE), E(writev, WRITE), E(pwrite64, WRITE), E(pwritev, WRITE),
	E(pwritev2, WRITE), E(sendto, WRITE), E(sendmsg, WRITE), E(sendmmsg, WRITE),
	E(sendfile, WRITE), E(splice, WRITE), E(tee, WRITE), E(vmsplice, WRITE),
	E(copy_file_range, WRITE),

	E(ppoll, POLL), E(pselect6, POLL), E(epoll_pwait, POLL), E(epoll_pwait2, POLL),
	E(epoll_ctl, POLL), E(epoll_create1, POLL), E(io_getevents, POLL),
	E(io_pgetevents, POLL), E(io_uring_enter, POLL),

	E(futex, LOCK), E(futex_waitv, LOCK), E(futex_wake, LOCK), E(futex_wait, LOCK),
	E(futex_requeue, LOCK), E(flock, LOCK), E(semop, LOCK), E(semtimedop, LOCK),
	E(set_robust_list, LOCK), E(get_robust_list, LOCK),

	E(nanosleep, SLEEP), E(clock_nanosleep, SLEEP), E(clock_gettime, SLEEP),
	E(clock_settime, SLEEP), E(clock_getres, SLEEP), E(clock_adjtime, SLEEP),
	E(gettimeofday, SLEEP), E(settimeofday, SLEEP), E(adjtimex, SLEEP),
	E(getitimer, SLEEP), E(setitimer, SLEEP), E(timer_create, SLEEP),
	E(timer_settime, SLEEP), E(timer_gettime, SLEEP), E(timer_getoverrun, SLEEP),
	E(timer_delete, SLEEP), E(timerfd_create, SLEEP), E(timerfd_settime, SLEEP),
	E(timerfd_gettime, SLEEP),

	E(socket, SOCKET), E(socketpair, SOCKET), E(bind, SOCKET), E(listen, SOCKET),
	E(accept, SOCKET), E(accept4, SOCKET), E(connect, SOCKET), E(shutdown, SOCKET),
	E(getsockname, SOCKET), E(getpeername, SOCKET), E(setsockopt, SOCKET),
	E(getsockopt, SOCKET),

	E(openat, FILE), E(openat2, FILE), E(close, FILE), E(close_range, FILE),
	E(statx, FILE), E(lseek, FILE), E(faccessat, FILE), E(faccessat2, FILE),
	E(pipe2, FILE), E(dup, FILE), E(dup3, FILE), E(fcntl, FILE), E(ioctl, FILE),
	E(fsync, FILE), E(fdatasync, FILE), E(sync, FILE), E(syncfs, FILE),
	E(sync_file_range, FILE), E(truncate, FILE), E(ftruncate, FILE), E(fallocate, FILE),
	E(fadvise64, FILE), E(readahead, FILE), E(getdents64, FILE), E(getcwd, FILE),
	E(chdir, FILE), E(fchdir, FILE), E(renameat2, FILE), E(mkdirat, FILE),
	E(linkat, FILE), E(unlinkat, FILE), E(symlinkat, FILE), E(readlinkat, FILE),
	E(fchmod, FILE), E(fchmodat, FILE), E(fchmodat2, FILE), E(fchown, FILE),
	E(fchownat, FILE), E(umask, FILE), E(utimensat, FILE), E(mknodat, FILE),
	E(statfs, FILE), E(fstatfs, FILE), E(setxattr, FILE), E(lsetxattr, FILE),
	E(fsetxattr, FILE), E(getxattr, FILE), E(lgetxattr, FILE), E(fgetxattr, FILE),
	E(listxattr, FILE), E(llistxattr, FILE), E(flistxattr, FILE), E(removexattr, FILE),
	E(lremovexattr, FILE), E(fremovexattr, FILE), E(inotify_init1, FILE),
	E(inotify_add_watch, FILE), E(inotify_rm_watch, FILE), E(fanotify_init, FILE),
	E(fanotify_mark, FILE), E(name_to_handle_at, FILE), E(open_by_handle_at, FILE),
	E(eventfd2, FILE), E(signalfd4, FILE), E(cachestat, FILE),

	E(mmap, MEMORY), E(munmap, MEMORY), E(mprotect, MEMORY), E(brk, MEMORY),
	E(mremap, MEMORY), E(msync, MEMORY), E(mincore, MEMORY), E(madvise, MEMORY),
	E(mlock, MEMORY), E(munlock, MEMORY), E(mlockall, MEMORY), E(munlockall, MEMORY),
	E(mlock2, MEMORY), E(mbind, MEMORY), E(set_mempolicy, MEMORY),
	E(get_mempolicy, MEMORY), E(set_mempolicy_home_node, MEMORY),
	E(migrate_pages, MEMORY), E(move_pages, MEMORY), E(remap_file_pages, MEMORY),
	E(membarrier, MEMORY), E(userfaultfd, MEMORY), E(memfd_create, MEMORY),
	E(process_madvise, MEMORY), E(process_mrelease, MEMORY), E(pkey_mprotect, MEMORY),
	E(pkey_alloc, MEMORY), E(pkey_free, MEMORY), E(shmget, MEMORY), E(shmat, MEMORY),
	E(shmdt, MEMORY), E(shmctl, MEMORY), E(map_shadow_stack, MEMORY), E(mseal, MEMORY),

	E(clone, PROCESS), E(execve, PROCESS), E(execveat, PROCESS), E(exit, PROCESS),
	E(exit_group, PROCESS), E(wait4, PROCESS), E(waitid, PROCESS), E(kill, PROCESS),
	E(tkill, PROCESS), E(tgkill, PROCESS), E(rt_sigaction, PROCESS),
	E(rt_sigprocmask, PROCESS), E(rt_sigreturn, PROCESS), E(rt_sigpending, PROCESS),
	E(rt_sigtimedwait, PROCESS), E(rt_sigqueueinfo, PROCESS),
	E(rt_tgsigqueueinfo, PROCESS), E(rt_sigsuspend, PROCESS), E(sigaltstack, PROCESS),
	E(getpid, PROCESS), E(getppid, PROCESS), E(gettid, PROCESS), E(getuid, PROCESS),
	E(geteuid, PROCESS), E(getgid, PROCESS), E(getegid, PROCESS), E(setuid, PROCESS),
	E(setgid, PROCESS), E(setreuid, PROCESS), E(setregid, PROCESS),
	E(setresuid, PROCESS), E(getresuid, PROCESS), E(setresgid, PROCESS),
	E(getresgid, PROCESS), E(setfsuid, PROCESS), E(setfsgid, PROCESS),
	E(getgroups, PROCESS), E(setgroups, PROCESS), E(setpgid, PROCESS),
	E(getpgid, PROCESS), E(setsid, PROCESS), E(getsid, PROCESS), E(getpriority, PROCESS),
	E(setpriority, PROCESS), E(sched_setparam, PROCESS), E(sched_getparam, PROCESS),
	E(sched_setscheduler, PROCESS), E(sched_getscheduler, PROCESS),
	E(sched_get_priority_max, PROCESS), E(sched_get_priority_min, PROCESS),
	E(sched_rr_get_interval, PROCESS), E(sched_setaffinity, PROCESS),
	E(sched_getaffinity, PROCESS), E(sched_setattr, PROCESS), E(sched_getattr, PROCESS),
	E(sched_yield, PROCESS), E(prctl, PROCESS), E(set_tid_address, PROCESS),
	E(rseq, PROCESS), E(prlimit64, PROCESS), E(getrusage, PROCESS), E(times, PROCESS),
	E(ptrace, PROCESS), E(capget, PROCESS), E(capset, PROCESS), E(personality, PROCESS),
	E(unshare, PROCESS), E(setns, PROCESS), E(pidfd_open, PROCESS),
	E(pidfd_send_signal, PROCESS), E(pidfd_getfd, PROCESS), E(kcmp, PROCESS),
	E(process_vm_readv, PROCESS), E(process_vm_writev, PROCESS), E(seccomp, PROCESS),
	E(getcpu, PROCESS), E(restart_syscall, PROCESS),

	/* Only some of the generic architectures (__ARCH_WANT_*). */
#ifdef SYS_renameat
	E(renameat, FILE),
#endif
#ifdef SYS_newfstatat
	E(newfstatat, FILE),
#endif
#ifdef SYS_fstat
	E(fstat, FILE),
#endif
#ifdef SYS_getrlimit
	E(getrlimit, PROCESS), E(setrlimit, PROCESS),
#endif
#ifdef SYS_clone3
	E(clone3, PROCESS),
#endif
#ifdef SYS_memfd_secret
	E(memfd_secret, MEMORY),
#endif

#ifdef __x86_64__
	/* Legacy syscalls the generic table dropped. */
	E(poll, POLL), E(select, POLL), E(epoll_wait, POLL), E(epoll_create, POLL),
	E(pause, SLEEP), E(alarm, SLEEP), E(time, SLEEP),
	E(open, FILE), E(creat, FILE), E(stat, FILE), E(lstat, FILE), E(access, FILE),
	E(pipe, FILE), E(dup2, FILE), E(getdents, FILE), E(rename, FILE), E(mkdir, FILE),
	E(rmdir, FILE), E(link, FILE), E(unlink, FILE), E(symlink, FILE), E(readlink, FILE),
	E(chmod, FILE), E(chown, FILE), E(lchown, FILE), E(utime, FILE), E(utimes, FILE),
	E(futimesat, FILE), E(mknod, FILE), E(inotify_init, FILE), E(eventfd, FILE),
	E(signalfd, FILE),
	E(fork, PROCESS), E(vfork, PROCESS), E(getpgrp, PROCESS), E(arch_prctl, PROCESS),
#endif
};
#else
#define HAVE_SYSCALL_TABLE 0
#endif

struct sys_priv {
	struct hitel_bpf_opts opts;
	struct syscall_bpf *skel;
	const struct syscall_row *rows; /* mmap of the rows map, read only */
	size_t rows_len;
	unsigned int ncpus;
	int raw; /* the raw_tp flavour is loaded */
	uint64_t counts[HITEL_BPF_BUCKETS];
	struct hitel_series *latency[SYSCALL_FAM_COUNT], *count[SYSCALL_FAM_COUNT], *lost;
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc latency_desc = {
	.name = "syscall/latency",
	.help = "Syscall latency, from entry to exit, including any time the syscall "
		"blocked, per syscall family.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc count_desc = {
	.name = "syscall/count",
	.help = "Syscalls completed, per syscall family.",
	.unit = "syscalls",
	.kind = HITEL_KIND_COUNTER,
};

/* Entries of the raw_tp fallback's tid hash: one per live thread. */
static unsigned int tid_entries(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/proc/sys/kernel/threads-max", "re");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (v < TID_ENTRIES_MIN)
		return v ? TID_ENTRIES_MIN : TID_ENTRIES_MAX;
	return v > TID_ENTRIES_MAX ? TID_ENTRIES_MAX : (unsigned int)v;
}

static void fill_families(struct syscall_bpf *skel)
{
#if HAVE_SYSCALL_TABLE
	size_t i;

	for (i = 0; i < sizeof(sys_table) / sizeof(sys_table[0]); i++)
		if (sys_table[i].nr >= 0 && sys_table[i].nr < SYSCALL_SLOTS)
			skel->rodata->families[sys_table[i].nr] = (__u8)sys_table[i].family;
#else
	(void)skel; /* all zero: SYSCALL_FAM_OTHER */
#endif
}

static void sys_unload(void *ctx)
{
	struct sys_priv *p = ctx;

	hitel_bpf_munmap(p->rows, p->rows_len);
	p->rows = NULL;
	/* Detaches every link and closes programs and maps. */
	syscall_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *sys_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct sys_priv *p = ctx;

	p->skel = syscall_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int sys_configure(void *ctx, int raw)
{
	struct sys_priv *p = ctx;
	int err;

	fill_families(p->skel);
	err = bpf_map__set_max_entries(p->skel->maps.rows, p->ncpus);
	if (!err)
		err = bpf_map__set_autocreate(raw ? p->skel->maps.task_ts : p->skel->maps.tid_ts,
					      false);
	if (!err && raw)
		err = bpf_map__set_max_entries(p->skel->maps.tid_ts, tid_entries());
	return err;
}

static int sys_mmap(void *ctx)
{
	struct sys_priv *p = ctx;

	p->rows = hitel_bpf_mmap(p->skel->maps.rows, p->ncpus, sizeof(struct syscall_row),
				 &p->rows_len);
	return p->rows ? 0 : -errno;
}

static const struct hitel_bpf_loader sys_loader = {
	.open = sys_open,
	.configure = sys_configure,
	.mmap = sys_mmap,
	.unload = sys_unload,
};

static int sys_init(struct hitel_sampler *s)
{
	struct sys_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	unsigned int f;
	int err, n;

	hitel_bpf_opts_load(s, &p->opts);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	n = hitel_bpf_ncpus();
	if (n <= 0) {
		hitel_sampler_fail(s, "cannot count possible CPUs: %s", strerror(n ? -n : EINVAL));
		return n ? n : -EINVAL;
	}
	p->ncpus = (unsigned int)n;

	err = hitel_bpf_load(s, &p->opts, &sys_loader, p);
	if (err < 0)
		return err;
	p->raw = err;
	if (!HAVE_SYSCALL_TABLE)
		hitel_sampler_log(s, HITEL_LOG_NOTICE,
				  "no syscall table for this architecture: every syscall is "
				  "counted as family other");

	for (f = 0; f < SYSCALL_FAM_COUNT; f++) {
		struct hitel_label l = { "family", family_names[f] };

		p->latency[f] = hitel_registry_series(reg, &latency_desc, &l, 1);
		p->count[f] = hitel_registry_series(reg, &count_desc, &l, 1);
		if (!p->latency[f] || !p->count[f])
			goto noseries;
	}
	p->lost = hitel_bpf_lost_series(s);
	if (!p->lost)
		goto noseries;
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
noseries:
	return hitel_bpf_fail_series(s);
}

static int sys_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct sys_priv *p = hitel_sampler_priv(s);
	uint64_t lost = 0, count;
	unsigned int c, f;
	int err;

	for (f = 0; f < SYSCALL_FAM_COUNT; f++) {
		err = hitel_bpf_hist_load(p->latency[f], &p->rows[0].latency[f],
					  sizeof(p->rows[0]), p->ncpus, p->counts, &count, now_ns);
		if (err) {
			hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
			return err;
		}
		hitel_series_counter(p->count[f], count, now_ns);
	}
	for (c = 0; c < p->ncpus; c++)
		lost += p->rows[c].lost;
	hitel_series_counter(p->lost, lost, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	return 0;
}

static void sys_fini(struct hitel_sampler *s)
{
	struct sys_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	sys_unload(p);
}

const struct hitel_sampler_ops hitel_sampler_bpf_syscall = {
	.name = "bpf_syscall",
	.help = "Syscall latency histograms and counts per syscall family (read, write, poll, "
		"lock, sleep, socket, file, memory, process, other), recorded in the kernel by "
		"eBPF programs on the raw_syscalls tracepoints (options: attach "
		"auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 0,
	.priv_size = sizeof(struct sys_priv),
	.option = hitel_bpf_sampler_option,
	.init = sys_init,
	.read = sys_read,
	.fini = sys_fini,
};
