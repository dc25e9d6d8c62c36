// SPDX-License-Identifier: MIT
/*
 * Interrupt handling time, the in-kernel half of the bpf_irq sampler
 * (core/samplers/bpf_irq.c):
 *   - hard interrupts: irq_handler_entry -> irq_handler_exit, the time of
 *     each handler (an interrupt on a shared line runs several), into one
 *     histogram, and the handler runs counted by IRQ number;
 *   - softirqs: softirq_entry -> softirq_exit, per vector.
 * Entry times are kept per CPU: handlers run with interrupts off and a
 * softirq vector does not nest on its CPU, so one slot per CPU suffices.
 *
 * The histograms are shared by all CPUs (atomic adds) in .bss, which
 * userspace reads through the skeleton's mmap: interrupt rates are bounded
 * by devices and timers, well below syscall or context switch rates, and a
 * per-CPU copy would cost 11 x 58 KB per possible CPU.
 *
 * The arguments used are plain integers, so the tp_btf and raw_tp
 * flavours share every line.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hist.bpf.h"
#include "irq.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct hitel_irq_data data;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct hitel_irq_start);
	__uint(max_entries, 1);
} start SEC(".maps");

static __always_inline struct hitel_irq_start *this_start(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&start, &zero);
}

static __always_inline void hard_entry(void)
{
	struct hitel_irq_start *st = this_start();

	if (st)
		st->hard = bpf_ktime_get_ns();
}

static __always_inline void hard_exit(int irq)
{
	__u64 now = bpf_ktime_get_ns(), t0;
	struct hitel_irq_start *st = this_start();
	__u64 slot = irq >= 0 && irq < IRQ_SLOTS - 1 ? irq : IRQ_SLOTS - 1;

	if (!st)
		return;
	t0 = st->hard;
	st->hard = 0;
	if (!t0 || now < t0)
		return; /* entered before we attached */
	hist_add_atomic(&data.hard, now - t0);
	barrier_var(slot);
	if (slot >= IRQ_SLOTS)
		slot = IRQ_SLOTS - 1;
	__sync_fetch_and_add(&data.hard_count[slot], 1);
}

static __always_inline void soft_entry(unsigned int vec)
{
	struct hitel_irq_start *st = this_start();
	__u64 v = vec;

	barrier_var(v);
	if (st && v < IRQ_SOFTIRQS)
		st->soft[v] = bpf_ktime_get_ns();
}

static __always_inline void soft_exit(unsigned int vec)
{
	__u64 now = bpf_ktime_get_ns(), t0;
	struct hitel_irq_start *st = this_start();
	__u64 v = vec;

	barrier_var(v);
	if (!st || v >= IRQ_SOFTIRQS)
		return;
	t0 = st->soft[v];
	st->soft[v] = 0;
	if (!t0 || now < t0)
		return;
	hist_add_atomic(&data.soft[v], now - t0);
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(hitel_irqhin, int irq)
{
	hard_entry();
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(hitel_irqhout, int irq)
{
	hard_exit(irq);
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(hitel_irqsin, unsigned int vec)
{
	soft_entry(vec);
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(hitel_irqsout, unsigned int vec)
{
	soft_exit(vec);
	return 0;
}

SEC("raw_tp/irq_handler_entry")
int BPF_PROG(hitel_irqhin_r, int irq)
{
	hard_entry();
	return 0;
}

SEC("raw_tp/irq_handler_exit")
int BPF_PROG(hitel_irqhout_r, int irq)
{
	hard_exit(irq);
	return 0;
}

SEC("raw_tp/softirq_entry")
int BPF_PROG(hitel_irqsin_r, unsigned int vec)
{
	soft_entry(vec);
	return 0;
}

SEC("raw_tp/softirq_exit")
int BPF_PROG(hitel_irqsout_r, unsigned int vec)
{
	soft_exit(vec);
	return 0;
}
