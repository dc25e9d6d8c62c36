/* SPDX-License-Identifier: MIT */
/* Layout shared by bpf/tcp.bpf.c and core/samplers/bpf_tcp.c. */
#ifndef HITEL_BPF_TCP_H
#define HITEL_BPF_TCP_H

#include "hitel_bpf.h"

/* Drop reasons 0..TCP_DROP_SLOTS-2 (enum skb_drop_reason: 128 values in
 * v6.18) are counted each in their own slot; larger ones, such as the
 * subsystem reasons (subsystem << 16, v6.6+), share the last ("other"). */
#define TCP_DROP_SLOTS 256

/*
 * One row per possible CPU in the mmapable array map `rows`, written only by
 * programs running on that CPU (plain adds: packet drops can come at line
 * rate). Cumulative, never reset.
 */
struct tcp_row {
	__u64 retransmits; /* tcp_retransmit_skb */
	__u64 lost;	   /* connects not timed: table of connects in flight full */
	__u64 pad[6];
	__u64 drops[TCP_DROP_SLOTS]; /* kfree_skb by reason */
};

#endif /* HITEL_BPF_TCP_H */
