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
#include <sys/mman.h>
#include <unistd.h>

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

static const struct hitel_family_desc lost_desc = {
	.name = "hitel/bpf/lost",
	.help = "Events a BPF sampler could not record (map full, no storage, no memory).",
	.unit = "events",
	.kind = HITEL_KIND_COUNTER,
};

static int parse_connects(const char *value, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || end == value || *end || v < 1 || v > CONNECTS_MAX)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static int tcp_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen)
{
	struct hitel_bpf_opts o;
	unsigned int n;

	(void)s;
	if (strcmp(key, "max_connects") == 0) {
		if (parse_connects(value, &n) == 0)
			return 0;
		snprintf(err, errlen, "bad value '%s' for option max_connects (1..%u)", value,
			 CONNECTS_MAX);
		return -EINVAL;
	}
	memset(&o, 0, sizeof(o));
	return hitel_bpf_option(&o, key, value, err, errlen);
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

static void tcp_unload(struct tcp_priv *p)
{
	if (p->rows)
		munmap((void *)p->rows, p->rows_len);
	p->rows = NULL;
	tcp_bpf__destroy(p->skel);
	p->skel = NULL;
}

static int tcp_load(struct tcp_priv *p, int raw, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	const char *step = "open";
	long page = sysconf(_SC_PAGESIZE);
	void *m;
	int err = 0;

	if (p->opts.btf[0])
		oo.btf_custom_path = p->opts.btf;
	p->skel = tcp_bpf__open_opts(&oo);
	if (!p->skel) {
		err = -errno;
		goto cleanup;
	}
	hitel_bpf_select(p->skel->obj, raw);
	step = "configure";
	err = bpf_map__set_max_entries(p->skel->maps.rows, p->ncpus);
	if (!err)
		err = bpf_map__set_max_entries(p->skel->maps.connecting, p->max_connects);
	if (err)
		goto cleanup;
	step = "load";
	err = tcp_bpf__load(p->skel);
	if (err)
		goto cleanup;
	step = "attach";
	err = tcp_bpf__attach(p->skel);
	if (err)
		goto cleanup;
	step = "mmap";
	p->rows_len = ((size_t)p->ncpus * sizeof(struct tcp_row) + (size_t)page - 1) /
		      (size_t)page * (size_t)page;
	m = mmap(NULL, p->rows_len, PROT_READ, MAP_SHARED, bpf_map__fd(p->skel->maps.rows), 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto cleanup;
	}
	p->rows = m;
	p->raw = raw;
cleanup:
	if (err) {
		if (err > 0)
			err = -err;
		snprintf(why, whylen, "%s %s: %s%s", raw ? "raw_tp" : "tp_btf", step,
			 strerror(-err), hitel_bpf_hint(err));
		tcp_unload(p);
	}
	return err;
}

static int tcp_init(struct hitel_sampler *s)
{
	struct tcp_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	struct hitel_label who = { "sampler", hitel_sampler_name(s) };
	char why_btf[192] = "", why_raw[192] = "";
	size_t nopt = hitel_sampler_values(s, "max_connects");
	unsigned int i;
	int err, n;

	hitel_bpf_opts_load(s, &p->opts);
	p->max_connects = CONNECTS_DEFAULT;
	if (nopt)
		parse_connects(hitel_sampler_value(s, "max_connects", nopt - 1),
			       &p->max_connects);
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

	err = -EINVAL;
	if (p->opts.attach != HITEL_BPF_ATTACH_RAW_TP)
		err = tcp_load(p, 0, why_btf, sizeof(why_btf));
	if (err && p->opts.attach != HITEL_BPF_ATTACH_TP_BTF)
		err = tcp_load(p, 1, why_raw, sizeof(why_raw));
	if (err) {
		hitel_sampler_fail(s, "cannot load BPF programs: %s%s%s", why_btf,
				   why_btf[0] && why_raw[0] ? "; " : "", why_raw);
		return err;
	}
	if (why_btf[0])
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "using the raw_tp fallback: %s", why_btf);
	p->prev_ns = hitel_now_ns();

	p->connect = hitel_registry_series(reg, &connect_desc, NULL, 0);
	p->retransmits = hitel_registry_series(reg, &retransmits_desc, NULL, 0);
	p->lost = hitel_registry_series(reg, &lost_desc, &who, 1);
	if (!p->connect || !p->retransmits || !p->lost) {
		err = errno ? -errno : -ENOMEM;
		hitel_sampler_fail(s, "cannot create series: %s", strerror(-err));
		return err;
	}
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	if (!p->stats) {
		hitel_sampler_fail(s, "out of memory");
		return -ENOMEM;
	}
	return 0;
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
	/* NULL at the family's series cap: counted and logged by the registry. */
	d->series = hitel_registry_series(hitel_sampler_registry(s), &drops_desc, &l, 1);
	if (d->series)
		hitel_series_counter(d->series, 0, p->prev_ns);
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
	memcpy(p->counts, p->skel->bss->connect_hist.buckets, sizeof(p->counts));
	err = hitel_series_hist_load(p->connect, p->counts, HITEL_BPF_BUCKETS,
				     p->skel->bss->connect_hist.sum, now_ns);
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
