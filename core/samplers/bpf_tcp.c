/* SPDX-License-Identifier: MIT */
/*
 * bpf_tcp: TCP connect latency, retransmits and packet drops by reason,
 * recorded in the kernel by bpf/tcp.bpf.c from the sock:inet_sock_set_state,
 * tcp:tcp_retransmit_skb and skb:kfree_skb tracepoints.
 *
 * Families:
 *   tcp/connect/latency          histogram, ns: SYN_SENT -> ESTABLISHED
 *   tcp/bpf/retransmits          counter: segments retransmitted (per skb)
 *   network/drops {reason}       counter: packets freed as dropped
 *   hitel/bpf/lost {sampler}     counter: connects not timed (table full)
 *   hitel/bpf/runs, hitel/bpf/run_time   with kernel BPF statistics on
 *
 * Drop reasons: the kernel passes enum skb_drop_reason values (v5.17+). The
 * names come from the running kernel's BTF (the enum's enumerators, read
 * once at init with libbpf's btf__ API), not from a table compiled here,
 * because the enum grows and is renumbered between releases; the tracepoint
 * format file would need tracefs, which is often not mounted. The label is
 * the enumerator without its SKB_DROP_REASON_ (or SKB_) prefix, in lower
 * case: SKB_DROP_REASON_NO_SOCKET -> "no_socket". Values without a name get
 * "reason_N"; values from 255 on (subsystem reasons) share "other"; a kernel
 * without drop reasons counts every drop as "not_specified". So the
 * cardinality is bounded by 256, and only reasons that occur get a series.
 * include/exclude filter on the reason name.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_common.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"
#include "tcp.h"
#include "tcp.skel.h"

#define CONNECTS_DEFAULT 16384
#define CONNECTS_MAX (1U << 20)
#define REASON_LEN 48

struct drop_slot {
	char name[REASON_LEN];
	int seen; /* series created, or filtered out */
	struct hitel_series *series;
};

struct tcp_priv {
	struct hitel_bpf_opts opts;
	unsigned int max_connects;
	struct tcp_bpf *skel;
	const struct tcp_row *rows; /* mmap of the rows map, read only */
	size_t rows_len;
	unsigned int ncpus;
	int raw;
	uint64_t prev_ns; /* time of the previous read (of the attach, at first) */
	uint64_t counts[HITEL_BPF_BUCKETS];
	uint64_t drops[TCP_DROP_SLOTS];
	struct drop_slot slots[TCP_DROP_SLOTS];
	struct hitel_series *connect, *retransmits, *lost;
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc connect_desc = {
	.name = "tcp/connect/latency",
	.help = "TCP active open latency, from sending SYN (SYN_SENT) to ESTABLISHED.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc retransmits_desc = {
	.name = "tcp/bpf/retransmits",
	.help = "TCP retransmissions (one per retransmitted skb, tcp_retransmit_skb).",
	.unit = "retransmits",
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc drops_desc = {
	.name = "network/drops",
	.help = "Packets the kernel freed as dropped (kfree_skb), by drop reason.",
	.unit = "packets",
	.kind = HITEL_KIND_COUNTER,
};

static int tcp_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen)
{
	if (strcmp(key, "max_connects") == 0)
		return hitel_bpf_count_option(key, value, CONNECTS_MAX, err, errlen);
	return hitel_bpf_sampler_option(s, key, value, err, errlen);
}

/* "SKB_DROP_REASON_NO_SOCKET" -> "no_socket", "SKB_CONSUMED" -> "consumed". */
static void reason_label(const char *enumerator, char *out, size_t len)
{
	static const char *const prefixes[] = { "SKB_DROP_REASON_", "SKB_" };
	size_t i, n;

	for (i = 0; i < 2; i++) {
		n = strlen(prefixes[i]);
		if (strncmp(enumerator, prefixes[i], n) == 0) {
			enumerator += n;
			break;
		}
	}
	for (i = 0; enumerator[i] && i + 1 < len; i++)
		out[i] = (char)tolower((unsigned char)enumerator[i]);
	out[i] = '\0';
}

/* Names of the drop reasons from the kernel's BTF (the "btf" option's file
 * if set). Returns the number of enumerators named, 0 when the kernel has no
 * enum skb_drop_reason, or -errno when the BTF cannot be read. */
static int reasons_load(struct tcp_priv *p)
{
	struct btf *btf = p->opts.btf[0] ? btf__parse(p->opts.btf, NULL) : btf__load_vmlinux_btf();
	const struct btf_type *t;
	const struct btf_enum *e;
	int id, i, n = 0;

	if (!btf)
		return errno ? -errno : -ENOENT;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id > 0) {
		t = btf__type_by_id(btf, (__u32)id);
		e = btf_enum(t);
		for (i = 0; i < btf_vlen(t); i++, e++) {
			if (e->val < 0 || e->val >= TCP_DROP_SLOTS - 1)
				continue;
			reason_label(btf__name_by_offset(btf, e->name_off),
				     p->slots[e->val].name, REASON_LEN);
			n++;
		}
	}
	btf__free(btf);
	return n;
}

static void tcp_unload(void *ctx)
{
	struct tcp_priv *p = ctx;

	hitel_bpf_munmap(p->rows, p->rows_len);
	p->rows = NULL;
	tcp_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *tcp_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct tcp_priv *p = ctx;

	p->skel = tcp_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int tcp_configure(void *ctx, int raw)
{
	struct tcp_priv *p = ctx;
	int err;

	(void)raw;
	err = bpf_map__set_max_entries(p->skel->maps.rows, p->ncpus);
	if (!err)
		err = bpf_map__set_max_entries(p->skel->maps.connecting, p->max_connects);
	return err;
}

static int tcp_mmap(void *ctx)
{
	struct tcp_priv *p = ctx;

	p->rows = hitel_bpf_mmap(p->skel->maps.rows, p->ncpus, sizeof(struct tcp_row),
				 &p->rows_len);
	return p->rows ? 0 : -errno;
}

static const struct hitel_bpf_loader tcp_loader = {
	.open = tcp_open,
	.configure = tcp_configure,
	.mmap = tcp_mmap,
	.unload = tcp_unload,
};

static int tcp_init(struct hitel_sampler *s)
{
	struct tcp_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	unsigned int i;
	int err, n;

	hitel_bpf_opts_load(s, &p->opts);
	p->max_connects = hitel_bpf_count_value(s, "max_connects", CONNECTS_DEFAULT, CONNECTS_MAX);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	n = hitel_bpf_ncpus();
	if (n <= 0) {
		hitel_sampler_fail(s, "cannot count possible CPUs: %s", strerror(n ? -n : EINVAL));
		return n ? n : -EINVAL;
	}
	p->ncpus = (unsigned int)n;

	n = reasons_load(p);
	if (n < 0) {
		/* Drops are still counted, by number. */
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "cannot read drop reason names from BTF: %s",
				  strerror(-n));
	} else if (n == 0) {
		/* Before v5.17: no reasons, every drop lands in slot 0. */
		snprintf(p->slots[0].name, REASON_LEN, "not_specified");
	}
	for (i = 0; i < TCP_DROP_SLOTS - 1; i++)
		if (!p->slots[i].name[0])
			snprintf(p->slots[i].name, REASON_LEN, "reason_%u", i);
	snprintf(p->slots[TCP_DROP_SLOTS - 1].name, REASON_LEN, "other");

	err = hitel_bpf_load(s, &p->opts, &tcp_loader, p);
	if (err < 0)
		return err;
	p->raw = err;
	p->prev_ns = hitel_now_ns();

	p->connect = hitel_registry_series(reg, &connect_desc, NULL, 0);
	p->retransmits = hitel_registry_series(reg, &retransmits_desc, NULL, 0);
	p->lost = hitel_bpf_lost_series(s);
	if (!p->connect || !p->retransmits || !p->lost)
		return hitel_bpf_fail_series(s);
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
}

/*
 * The series of drop reason i, created the first time its count is not 0.
 * Every read sees every slot, so the count was 0 at the previous read: the
 * new series starts there, at 0, and its first window and rate hold every
 * drop (a counter's first value is otherwise its baseline).
 */
static struct hitel_series *drop_series(struct hitel_sampler *s, struct tcp_priv *p,
					unsigned int i)
{
	struct drop_slot *d = &p->slots[i];
	struct hitel_label l = { "reason", d->name };

	if (d->seen)
		return d->series;
	d->seen = 1;
	if (!hitel_sampler_match(s, d->name))
		return NULL;
	d->series = hitel_bpf_counter_series(s, &drops_desc, &l, 1, p->prev_ns);
	return d->series;
}

static int tcp_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct tcp_priv *p = hitel_sampler_priv(s);
	uint64_t retransmits = 0, lost = 0;
	struct hitel_series *series;
	unsigned int c, i;
	int err;

	memset(p->drops, 0, sizeof(p->drops));
	for (c = 0; c < p->ncpus; c++) {
		const struct tcp_row *r = &p->rows[c];

		retransmits += r->retransmits;
		lost += r->lost;
		for (i = 0; i < TCP_DROP_SLOTS; i++)
			p->drops[i] += r->drops[i];
	}
	err = hitel_bpf_hist_load(p->connect, &p->skel->bss->connect_hist, 0, 1, p->counts, NULL,
				  now_ns);
	if (err) {
		hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
		return err;
	}
	for (i = 0; i < TCP_DROP_SLOTS; i++) {
		if (!p->drops[i])
			continue;
		series = drop_series(s, p, i);
		if (series)
			hitel_series_counter(series, p->drops[i], now_ns);
	}
	hitel_series_counter(p->retransmits, retransmits, now_ns);
	hitel_series_counter(p->lost, lost, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	p->prev_ns = now_ns;
	return 0;
}

static void tcp_fini(struct hitel_sampler *s)
{
	struct tcp_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	tcp_unload(p);
	memset(p->slots, 0, sizeof(p->slots));
}

const struct hitel_sampler_ops hitel_sampler_bpf_tcp = {
	.name = "bpf_tcp",
	.help = "TCP connect latency histogram, TCP retransmits and packet drops by drop "
		"reason, recorded in the kernel by eBPF programs on the sock, tcp and skb "
		"tracepoints (options: include/exclude on drop reasons, max_connects N, attach "
		"auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 1,
	.priv_size = sizeof(struct tcp_priv),
	.option = tcp_option,
	.init = tcp_init,
	.read = tcp_read,
	.fini = tcp_fini,
};
