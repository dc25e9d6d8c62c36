/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/block.bpf.c and core/samplers/bpf_block.c. */
#ifndef HITEL_BPF_BLOCK_H
#define HITEL_BPF_BLOCK_H

#include "hitel_bpf.h"

/* Request operations, in the order of the kernel's REQ_OP_* values
 * (include/linux/blk_types.h: READ 0, WRITE 1, FLUSH 2, DISCARD 3); any
 * other operation (write zeroes, secure erase, zone ops, driver private)
 * is BIO_OP_OTHER. */
enum bio_op {
	BIO_OP_READ = 0,
	BIO_OP_WRITE = 1,
	BIO_OP_FLUSH = 2,
	BIO_OP_DISCARD = 3,
	BIO_OP_OTHER = 4,
	BIO_OP_COUNT = 5,
};

/* dev is the kernel's internal dev_t of the whole disk: major << 20 | minor. */
struct bio_key {
	__u32 dev;
	__u32 op;
};

/* The value of the hash `hists`, one per (device, op) seen, shared by all
 * CPUs (atomic adds). */
struct bio_hists {
	struct hitel_bpf_hist latency; /* issue -> complete, ns */
	struct hitel_bpf_hist size;    /* bytes completed */
};

#define BIO_DEV_MINORBITS 20

#endif /* HITEL_BPF_BLOCK_H */
