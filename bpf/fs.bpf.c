// SPDX-License-Identifier: MIT
/*
 * Filesystem operation latency, the in-kernel half of the bpf_fs sampler
 * (core/samplers/bpf_fs.c), from pairs of tracepoints around operations
 * that run start to end in one task:
 *   ext4:ext4_sync_file_enter -> ext4_sync_file_exit     fsync / fdatasync
 *   ext4:ext4_writepages -> ext4_writepages_result       writepages
 *   jbd2:jbd2_start_commit -> jbd2_end_commit            journal commit
 *   writeback:writeback_start -> writeback_written       one flusher pass
 *   xfs:xfs_log_reserve -> xfs_log_reserve_exit,
 *   xfs:xfs_log_regrant -> xfs_log_regrant_exit          wait for log space
 *                                              (loaded with option xfs_log)
 * The start stamps the current task (one slot per kind of operation: they
 * nest, an fsync runs writepages); the end records the elapsed time into
 * the histogram of (layer, op, device). A journal commit runs whole in the
 * journal thread (kjournald2) and a writeback pass in one flusher worker, so
 * a per-task stamp is keyed as precisely as a (device, transaction) or
 * work-item key would be, without a table of operations in flight to size,
 * and a start whose end never comes (an error path that skips it) is
 * simply overwritten by the task's next start.
 *
 * The histograms, one per (layer, op, device) seen, are shared by all CPUs
 * (atomic adds): these operations come at most some thousands per second,
 * each costing microseconds to milliseconds, unlike syscalls or context
 * switches.
 *
 * ext4, jbd2 and xfs may be modules, absent or not loaded: the loader turns
 * off the programs whose tracepoint the running kernel lacks. The measured
 * cost is in core/samplers/bpf_fs.c.
 *
 * Flavours, chosen by the loader:
 *   tp_btf: typed arguments, stamps in task-local storage;
 *   raw_tp (fallback): probe reads, stamps in a tid-keyed hash cleared by
 *     sched_process_exit.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "fs.h"
#include "hist.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Operations not recorded: no per-task storage, or the histogram map full
 * (option max_keys). */
__u64 lost;

/* Inserted once per new key; never written. */
struct hitel_bpf_hist zero_hist;

/* One histogram per (layer, op, device), created on first use; allocated on
 * demand (58 KB each) rather than preallocated for max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fs_key);
	__type(value, struct hitel_bpf_hist);
	__uint(max_entries, 128);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fs_task);
} task_ts SEC(".maps");

/* raw_tp fallback only. Holds only the threads that ran one of the
 * operations (fsync callers, flusher workers, journal threads), each until
 * it exits; when full, their operations are counted lost. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct fs_task);
	__uint(max_entries, 16384);
} tid_ts SEC(".maps");

/*
 * Kernel differences, all here:
 * - "bdi: add a ->dev_name field to struct backing_dev_info" (v5.7) gave the
 *   bdi its own copy of its name; before, the name was its device's
 *   (bdi->dev->kobj.name).
 * - enum wb_reason has been renumbered over the years (reasons removed,
 *   WB_REASON_FOREIGN_FLUSH added): the reasons are matched by name through
 *   CO-RE enum value relocations, not by number; one this kernel lacks
 *   never matches.
 * - writeback_start/written take (wb, work) since cgroup writeback (v4.2),
 *   ext4_writepages/_result exist under these names since v3.11; older
 *   kernels have no tp_btf nor task storage anyway.
 */
struct backing_dev_info___pre57 {
	struct device *dev;
} __attribute__((preserve_access_index));

static __always_inline struct fs_task *task_get(bool btf, bool create)
{
	struct fs_task *st, zero = {};
	__u32 tid;

	if (btf)
		return bpf_task_storage_get(&task_ts, bpf_get_current_task_btf(), 0,
					    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
	tid = (__u32)bpf_get_current_pid_tgid();
	st = bpf_map_lookup_elem(&tid_ts, &tid);
	if (st || !create)
		return st;
	bpf_map_update_elem(&tid_ts, &tid, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&tid_ts, &tid);
}

/* Stamp slot of the current task; the task state, or NULL (counted lost). */
static __always_inline struct fs_task *begin(enum fs_slot slot, bool btf)
{
	struct fs_task *st = task_get(btf, true);

	if (!st) {
		__sync_fetch_and_add(&lost, 1);
		return NULL;
	}
	st->ts[slot] = bpf_ktime_get_ns();
	return st;
}

/*
 * Time since slot was stamped in the current task, clearing the stamp;
 * false when there is none (started before we attached). fsync_op, if not
 * NULL, gets the op noted at the start of an fsync.
 */
static __always_inline bool end(enum fs_slot slot, bool btf, __u64 *ns, __u32 *fsync_op)
{
	__u64 now = bpf_ktime_get_ns(), t0;
	struct fs_task *st = task_get(btf, false);

	if (!st)
		return false;
	t0 = st->ts[slot];
	if (!t0)
		return false;
	st->ts[slot] = 0;
	if (now < t0)
		return false;
	*ns = now - t0;
	if (fsync_op)
		*fsync_op = st->fsync_op;
	return true;
}

static __always_inline void record(struct fs_key *key, __u64 ns)
{
	struct hitel_bpf_hist *h = bpf_map_lookup_elem(&hists, key);

	if (!h) {
		/* EEXIST when another CPU inserted it first: fine, look it up. */
		bpf_map_update_elem(&hists, key, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, key);
		if (!h) {
			__sync_fetch_and_add(&lost, 1);
			return;
		}
	}
	hist_add_atomic(h, ns);
}

static __always_inline void record_dev(enum fs_layer fs, __u32 op, __u32 dev, __u64 ns)
{
	struct fs_key key;

	__builtin_memset(&key, 0, sizeof(key));
	key.dev = dev;
	key.fs = fs;
	key.op = op;
	record(&key, ns);
}

static __always_inline __u32 inode_dev(struct inode *inode, bool btf)
{
	return btf ? inode->i_sb->s_dev : BPF_CORE_READ(inode, i_sb, s_dev);
}

/* ---- ext4 ------------------------------------------------------------------ */

static __always_inline void on_fsync_enter(int datasync, bool btf)
{
	struct fs_task *st = begin(FS_SLOT_FSYNC, btf);

	if (st)
		st->fsync_op = datasync ? FS_OP_FDATASYNC : FS_OP_FSYNC;
}

static __always_inline void on_fsync_exit(struct inode *inode, bool btf)
{
	__u32 op = FS_OP_FSYNC;
	__u64 ns;

	if (end(FS_SLOT_FSYNC, btf, &ns, &op))
		record_dev(FS_EXT4, op, inode_dev(inode, btf), ns);
}

static __always_inline void on_writepages_done(struct inode *inode, bool btf)
{
	__u64 ns;

	if (end(FS_SLOT_WRITEPAGES, btf, &ns, NULL))
		record_dev(FS_EXT4, FS_OP_WRITEPAGES, inode_dev(inode, btf), ns);
}

/* ---- jbd2 ------------------------------------------------------------------ */

/* The device of the filesystem (j_fs_dev), not of an external journal. */
static __always_inline void on_commit_end(journal_t *journal, bool btf)
{
	__u32 dev;
	__u64 ns;

	if (!end(FS_SLOT_COMMIT, btf, &ns, NULL))
		return;
	dev = btf ? journal->j_fs_dev->bd_dev : BPF_CORE_READ(journal, j_fs_dev, bd_dev);
	record_dev(FS_JBD2, FS_OP_COMMIT, dev, ns);
}

/* ---- writeback ------------------------------------------------------------- */

#define MATCH_REASON(name, op)                                                   \
	do {                                                                     \
		if (bpf_core_enum_value_exists(enum wb_reason, name) &&          \
		    reason == bpf_core_enum_value(enum wb_reason, name))         \
			return op;                                               \
	} while (0)

static __always_inline __u32 wb_op(__u32 reason)
{
	MATCH_REASON(WB_REASON_BACKGROUND, FS_OP_WB_BACKGROUND);
	MATCH_REASON(WB_REASON_VMSCAN, FS_OP_WB_VMSCAN);
	MATCH_REASON(WB_REASON_SYNC, FS_OP_WB_SYNC);
	MATCH_REASON(WB_REASON_PERIODIC, FS_OP_WB_PERIODIC);
	MATCH_REASON(WB_REASON_LAPTOP_TIMER, FS_OP_WB_LAPTOP_TIMER);
	MATCH_REASON(WB_REASON_FS_FREE_SPACE, FS_OP_WB_FS_FREE_SPACE);
	MATCH_REASON(WB_REASON_FORKER_THREAD, FS_OP_WB_FORKER_THREAD);
	MATCH_REASON(WB_REASON_FOREIGN_FLUSH, FS_OP_WB_FOREIGN_FLUSH);
	return FS_OP_WB_OTHER;
}

static __always_inline void on_writeback_done(struct bdi_writeback *wb,
					      struct wb_writeback_work *work, bool btf)
{
	struct backing_dev_info *bdi;
	struct fs_key key;
	const char *name;
	__u64 ns;

	if (!end(FS_SLOT_WRITEBACK, btf, &ns, NULL))
		return;
	__builtin_memset(&key, 0, sizeof(key));
	key.fs = FS_WRITEBACK;
	key.op = wb_op(btf ? work->reason : BPF_CORE_READ(work, reason));
	bdi = btf ? wb->bdi : BPF_CORE_READ(wb, bdi);
	if (bpf_core_field_exists(bdi->dev_name)) {
		name = bdi->dev_name;
	} else {
		struct backing_dev_info___pre57 *old = (void *)bdi;

		name = BPF_CORE_READ(old, dev, kobj.name);
	}
	bpf_probe_read_kernel_str(key.bdi, sizeof(key.bdi), name);
	record(&key, ns);
}

/* ---- xfs ------------------------------------------------------------------- */

static __always_inline void on_log_space_done(struct xlog *log, bool btf)
{
	__u32 dev;
	__u64 ns;

	if (!end(FS_SLOT_LOG, btf, &ns, NULL))
		return;
	dev = btf ? log->l_mp->m_super->s_dev : BPF_CORE_READ(log, l_mp, m_super, s_dev);
	record_dev(FS_XFS, FS_OP_LOG_RESERVE, dev, ns);
}

/* ---- tp_btf ---------------------------------------------------------------- */

SEC("tp_btf/ext4_sync_file_enter")
int BPF_PROG(hitel_fssync, struct file *file, int datasync)
{
	on_fsync_enter(datasync, true);
	return 0;
}

SEC("tp_btf/ext4_sync_file_exit")
int BPF_PROG(hitel_fssyncd, struct inode *inode, int ret)
{
	on_fsync_exit(inode, true);
	return 0;
}

SEC("tp_btf/ext4_writepages")
int BPF_PROG(hitel_fswp)
{
	begin(FS_SLOT_WRITEPAGES, true);
	return 0;
}

SEC("tp_btf/ext4_writepages_result")
int BPF_PROG(hitel_fswpd, struct inode *inode)
{
	on_writepages_done(inode, true);
	return 0;
}

SEC("tp_btf/jbd2_start_commit")
int BPF_PROG(hitel_fscmt)
{
	begin(FS_SLOT_COMMIT, true);
	return 0;
}

SEC("tp_btf/jbd2_end_commit")
int BPF_PROG(hitel_fscmtd, journal_t *journal)
{
	on_commit_end(journal, true);
	return 0;
}

SEC("tp_btf/writeback_start")
int BPF_PROG(hitel_fswb)
{
	begin(FS_SLOT_WRITEBACK, true);
	return 0;
}

SEC("tp_btf/writeback_written")
int BPF_PROG(hitel_fswbd, struct bdi_writeback *wb, struct wb_writeback_work *work)
{
	on_writeback_done(wb, work, true);
	return 0;
}

SEC("tp_btf/xfs_log_reserve")
int BPF_PROG(hitel_fsxlog)
{
	begin(FS_SLOT_LOG, true);
	return 0;
}

SEC("tp_btf/xfs_log_reserve_exit")
int BPF_PROG(hitel_fsxlogd, struct xlog *log)
{
	on_log_space_done(log, true);
	return 0;
}

SEC("tp_btf/xfs_log_regrant")
int BPF_PROG(hitel_fsxrg)
{
	begin(FS_SLOT_LOG, true);
	return 0;
}

SEC("tp_btf/xfs_log_regrant_exit")
int BPF_PROG(hitel_fsxrgd, struct xlog *log)
{
	on_log_space_done(log, true);
	return 0;
}

/* ---- raw_tp ---------------------------------------------------------------- */

SEC("raw_tp/ext4_sync_file_enter")
int BPF_PROG(hitel_fssync_r, struct file *file, int datasync)
{
	on_fsync_enter(datasync, false);
	return 0;
}

SEC("raw_tp/ext4_sync_file_exit")
int BPF_PROG(hitel_fssyncd_r, struct inode *inode, int ret)
{
	on_fsync_exit(inode, false);
	return 0;
}

SEC("raw_tp/ext4_writepages")
int BPF_PROG(hitel_fswp_r)
{
	begin(FS_SLOT_WRITEPAGES, false);
	return 0;
}

SEC("raw_tp/ext4_writepages_result")
int BPF_PROG(hitel_fswpd_r, struct inode *inode)
{
	on_writepages_done(inode, false);
	return 0;
}

SEC("raw_tp/jbd2_start_commit")
int BPF_PROG(hitel_fscmt_r)
{
	begin(FS_SLOT_COMMIT, false);
	return 0;
}

SEC("raw_tp/jbd2_end_commit")
int BPF_PROG(hitel_fscmtd_r, journal_t *journal)
{
	on_commit_end(journal, false);
	return 0;
}

SEC("raw_tp/writeback_start")
int BPF_PROG(hitel_fswb_r)
{
	begin(FS_SLOT_WRITEBACK, false);
	return 0;
}

SEC("raw_tp/writeback_written")
int BPF_PROG(hitel_fswbd_r, struct bdi_writeback *wb, struct wb_writeback_work *work)
{
	on_writeback_done(wb, work, false);
	return 0;
}

SEC("raw_tp/xfs_log_reserve")
int BPF_PROG(hitel_fsxlog_r)
{
	begin(FS_SLOT_LOG, false);
	return 0;
}

SEC("raw_tp/xfs_log_reserve_exit")
int BPF_PROG(hitel_fsxlogd_r, struct xlog *log)
{
	on_log_space_done(log, false);
	return 0;
}

SEC("raw_tp/xfs_log_regrant")
int BPF_PROG(hitel_fsxrg_r)
{
	begin(FS_SLOT_LOG, false);
	return 0;
}

SEC("raw_tp/xfs_log_regrant_exit")
int BPF_PROG(hitel_fsxrgd_r, struct xlog *log)
{
	on_log_space_done(log, false);
	return 0;
}

/* The tid hash has no owner to free its entries: drop them at exit. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(hitel_fsexit_r, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);

	bpf_map_delete_elem(&tid_ts, &tid);
	return 0;
}
