/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/fs.bpf.c and core/samplers/bpf_fs.c. */
#ifndef HITEL_BPF_FS_H
#define HITEL_BPF_FS_H

#include "hitel_bpf.h"

/* The "fs" label: the layer whose tracepoints time the operation. The names
 * are in core/samplers/bpf_fs.c, the meaning in docs/metrics/bpf_fs.md. */
enum fs_layer {
	FS_EXT4 = 0,
	FS_JBD2,
	FS_XFS,
	FS_WRITEBACK,
	FS_LAYER_COUNT,
};

/* The "op" label. The writeback ones are the reasons the flusher wrote
 * (the kernel's enum wb_reason, mapped by name at load time). */
enum fs_op {
	FS_OP_FSYNC = 0,
	FS_OP_FDATASYNC,
	FS_OP_WRITEPAGES,
	FS_OP_COMMIT,
	FS_OP_LOG_RESERVE,
	FS_OP_WB_BACKGROUND,
	FS_OP_WB_VMSCAN,
	FS_OP_WB_SYNC,
	FS_OP_WB_PERIODIC,
	FS_OP_WB_LAPTOP_TIMER,
	FS_OP_WB_FS_FREE_SPACE,
	FS_OP_WB_FORKER_THREAD,
	FS_OP_WB_FOREIGN_FLUSH,
	FS_OP_WB_OTHER,
	FS_OP_COUNT,
};

/* Operations timed in one task, one start stamp each (they can nest: an
 * fsync runs ext4_writepages; a flusher pass too). */
enum fs_slot {
	FS_SLOT_FSYNC = 0,
	FS_SLOT_WRITEPAGES,
	FS_SLOT_COMMIT,
	FS_SLOT_WRITEBACK,
	FS_SLOT_LOG,
	FS_SLOT_COUNT,
};

#define FS_BDI_LEN 32
#define FS_DEV_MINORBITS 20

/*
 * Key of the hash `hists`: dev is the kernel's dev_t of the filesystem's
 * device (major << 20 | minor); for fs = writeback, dev is 0 and bdi holds
 * the name of the backing device the flusher wrote to ("254:0", or
 * "btrfs-1" for a filesystem with a private bdi), NUL-padded.
 */
struct fs_key {
	__u32 dev;
	__u16 fs;
	__u16 op;
	char bdi[FS_BDI_LEN];
};

/* Per-task state: start time of each slot (0: not timing), and whether the
 * fsync being timed is an fdatasync. */
struct fs_task {
	__u64 ts[FS_SLOT_COUNT];
	__u32 fsync_op;
	__u32 pad;
};

#endif /* HITEL_BPF_FS_H */
