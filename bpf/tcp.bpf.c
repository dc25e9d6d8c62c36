// SPDX-License-Identifier: MIT
/*
 * TCP connect latency, retransmits and packet drops, the in-kernel half of
 * the bpf_tcp sampler (core/samplers/bpf_tcp.c):
 *   - sock:inet_sock_set_state: a TCP socket entering SYN_SENT is stamped
 *     (keyed by its address); leaving SYN_SENT for ESTABLISHED records the
 *     connect latency; any other way out of SYN_SENT, or CLOSE, forgets it;
 *   - tcp:tcp_retransmit_skb: counted;
 *   - skb:kfree_skb: counted by drop reason.
 *
 * The connect histogram is shared by all CPUs (atomic adds, in .bss):
 * connects are rare next to packets. Retransmits and drops are counted in
 * per-CPU rows: a drop storm is exactly when a shared counter would hurt.
 *
 * Flavours: tp_btf (typed arguments) and raw_tp (fallback, probe reads);
 * the loader picks one.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "hist.bpf.h"
#include "tcp.h"

#define IPPROTO_TCP_ 6
#define TCP_ESTABLISHED_ 1
#define TCP_SYN_SENT_ 2
#define TCP_CLOSE_ 7

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Connect latency (SYN_SENT -> ESTABLISHED), ns. */
struct hitel_bpf_hist connect_hist;

/* One struct tcp_row per possible CPU; the loader sets max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct tcp_row);
	__uint(max_entries, 1);
} rows SEC(".maps");

/* When each socket in SYN_SENT entered it, by socket address; the loader
 * sets max_entries (option max_connects). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 16384);
} connecting SEC(".maps");

static __always_inline struct tcp_row *this_row(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&rows, &cpu);
}

/*
 * sock::sk_protocol was a bitfield until commit bf9765145b85 ("sock: Make
 * sk_protocol a 16-bit value", v5.6); the probed bitfield read handles both
 * layouts, in both flavours (state changes are per connection: cheap
 * enough).
 */
static __always_inline void on_state(const struct sock *sk, int old, int new)
{
	__u64 key = (__u64)sk, now, *t0, start;
	struct tcp_row *row;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != IPPROTO_TCP_)
		return;
	if (new == TCP_SYN_SENT_) {
		now = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&connecting, &key, &now, BPF_ANY)) {
			row = this_row();
			if (row)
				row->lost++;
		}
		return;
	}
	if (old != TCP_SYN_SENT_ && new != TCP_CLOSE_)
		return;
	t0 = bpf_map_lookup_elem(&connecting, &key);
	if (!t0)
		return; /* connecting before we attached */
	start = *t0;
	bpf_map_delete_elem(&connecting, &key);
	now = bpf_ktime_get_ns();
	if (old == TCP_SYN_SENT_ && new == TCP_ESTABLISHED_ && now >= start)
		hist_add_atomic(&connect_hist, now - start);
}

static __always_inline void on_retransmit(void)
{
	struct tcp_row *row = this_row();

	if (row)
		row->retransmits++;
}

/*
 * kfree_skb(skb, location) gained its reason argument with enum
 * skb_drop_reason in commit c504e5c2f964 ("net: skb: introduce
 * kfree_skb_reason()", v5.17): without the enum the read of the third
 * argument is dead code the verifier never sees, and every drop is slot 0.
 * Since v6.2 a free with SKB_CONSUMED fires consume_skb instead, but skip
 * it in case a kernel traces it here.
 */
static __always_inline void on_drop(__u64 *ctx)
{
	struct tcp_row *row;
	__u64 reason = 0;

	if (bpf_core_type_exists(enum skb_drop_reason)) {
		reason = ctx[2] & 0xffffffff;
		if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
		    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
			return;
	}
	row = this_row();
	if (!row)
		return;
	barrier_var(reason);
	if (reason >= TCP_DROP_SLOTS)
		reason = TCP_DROP_SLOTS - 1;
	row->drops[reason]++;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hitel_tcpstate, const struct sock *sk, const int old, const int new)
{
	on_state(sk, old, new);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(hitel_tcpretx)
{
	on_retransmit();
	return 0;
}

SEC("tp_btf/kfree_skb")
int hitel_tcpdrop(__u64 *ctx)
{
	on_drop(ctx);
	return 0;
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(hitel_tcpstat_r, const struct sock *sk, const int old, const int new)
{
	on_state(sk, old, new);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(hitel_tcpretx_r)
{
	on_retransmit();
	return 0;
}

SEC("raw_tp/kfree_skb")
int hitel_tcpdrop_r(__u64 *ctx)
{
	on_drop(ctx);
	return 0;
}
