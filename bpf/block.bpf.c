// SPDX-License-Identifier: MIT
/*
 * Block I/O latency and size per (device, op), the in-kernel half of the
 * bpf_block sampler (core/samplers/bpf_block.c): block_rq_issue stamps the
 * request (keyed by its address, as biolatency does), block_rq_complete
 * records issue -> complete latency and the bytes completed into the
 * histograms of (disk, op). A request completed in several parts is counted
 * once, at its first completion, with the bytes of that part.
 *
 * Flavours: tp_btf (typed arguments, direct loads) and raw_tp (fallback,
 * probe reads); the loader picks one.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "block.h"
#include "hist.bpf.h"

#define REQ_OP_MASK 0xff /* REQ_OP_BITS is 8 since v4.10 */

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern int LINUX_KERNEL_VERSION __kconfig;

/* Events not recorded (a map full or out of memory). */
__u64 lost;

/* Inserted once per new key; never written. */
struct bio_hists zero_hists;

/*
 * One entry per (device, op), created by the program on the first completion
 * of that pair; allocated on demand (119 KB each) rather than preallocated
 * for max_entries (option "max_keys"), since a machine uses a few.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bio_key);
	__type(value, struct bio_hists);
	__uint(max_entries, 64);
} hists SEC(".maps");

/* Issue time of requests in flight, by request address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 16384);
} start SEC(".maps");

/*
 * Kernel differences, all here:
 * - commit a54895fa057c ("block: remove the request_queue to argument request
 *   based tracepoints", v5.11) dropped the request_queue argument of
 *   block_rq_issue (and insert); block_rq_complete kept (rq, error, nr_bytes).
 * - commit d152c682f03c ("block: add an explicit ->disk backpointer to the
 *   request_queue", v5.15) added request_queue::disk, and commit f3fa33acca9f
 *   ("block: remove the ->rq_disk field in struct request", v5.17) removed
 *   request::rq_disk.
 */
struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

struct request_queue___515 {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct request___515 {
	struct request_queue___515 *q;
} __attribute__((preserve_access_index));

static __always_inline struct request *issue_arg(__u64 *ctx)
{
	if (LINUX_KERNEL_VERSION < KERNEL_VERSION(5, 11, 0))
		return (struct request *)ctx[1];
	return (struct request *)ctx[0];
}

static __always_inline __u32 rq_dev(struct request *rq, bool btf)
{
	struct request___pre517 *old = (void *)rq;
	struct request___515 *cur = (void *)rq;
	struct gendisk *disk;
	int major, minor;

	if (bpf_core_field_exists(old->rq_disk))
		disk = btf ? old->rq_disk : BPF_CORE_READ(old, rq_disk);
	else
		disk = (struct gendisk *)(btf ? cur->q->disk : BPF_CORE_READ(cur, q, disk));
	if (!disk)
		return 0;
	major = btf ? disk->major : BPF_CORE_READ(disk, major);
	minor = btf ? disk->first_minor : BPF_CORE_READ(disk, first_minor);
	return ((__u32)major << BIO_DEV_MINORBITS) | (__u32)minor;
}

static __always_inline __u32 rq_op(struct request *rq, bool btf)
{
	__u32 op = (btf ? rq->cmd_flags : BPF_CORE_READ(rq, cmd_flags)) & REQ_OP_MASK;

	return op < BIO_OP_OTHER ? op : BIO_OP_OTHER;
}

static __always_inline struct bio_hists *hists_get(struct bio_key *key)
{
	struct bio_hists *h = bpf_map_lookup_elem(&hists, key);

	if (h)
		return h;
	/* EEXIST when another CPU inserted it first: fine, look it up. */
	bpf_map_update_elem(&hists, key, &zero_hists, BPF_NOEXIST);
	return bpf_map_lookup_elem(&hists, key);
}

static __always_inline void on_issue(struct request *rq)
{
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&start, &key, &now, BPF_ANY))
		__sync_fetch_and_add(&lost, 1);
}

static __always_inline void on_complete(struct request *rq, __u64 nr_bytes, bool btf)
{
	__u64 rkey = (__u64)rq, *t0, now = bpf_ktime_get_ns(), issued;
	struct bio_hists *h;
	struct bio_key key;

	t0 = bpf_map_lookup_elem(&start, &rkey);
	if (!t0)
		return; /* issued before we attached, or not through issue */
	issued = *t0;
	bpf_map_delete_elem(&start, &rkey);
	key.dev = rq_dev(rq, btf);
	key.op = rq_op(rq, btf);
	if (key.dev == 0 || now < issued)
		return;
	h = hists_get(&key);
	if (!h) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	hist_add_atomic(&h->latency, now - issued);
	hist_add_atomic(&h->size, nr_bytes);
}

SEC("tp_btf/block_rq_issue")
int hitel_bioissue(__u64 *ctx)
{
	on_issue(issue_arg(ctx));
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(hitel_biodone, struct request *rq, int error, unsigned int nr_bytes)
{
	on_complete(rq, nr_bytes, true);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int hitel_bioiss_r(__u64 *ctx)
{
	on_issue(issue_arg(ctx));
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(hitel_biodone_r, struct request *rq, int error, unsigned int nr_bytes)
{
	on_complete(rq, nr_bytes, false);
	return 0;
}
