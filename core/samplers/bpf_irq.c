/* SPDX-License-Identifier: MIT */
/*
 * bpf_irq: time spent in hard interrupt handlers and in softirqs, recorded in
 * the kernel by bpf/irq.bpf.c from the irq_handler_entry/exit and
 * softirq_entry/exit tracepoints, read from the program's .bss (mmapped by
 * the skeleton: no syscall, no copy) at the sampler's rate.
 *
 * Families:
 *   irq/hardirq/time                histogram, ns: one value per handler run
 *   irq/hardirq/count {irq, name}   counter: handler runs per IRQ line
 *   irq/softirq/time {vector}       histogram, ns
 *   irq/softirq/count {vector}      counter: softirq runs (the histogram's count)
 *   hitel/bpf/runs, hitel/bpf/run_time   with kernel BPF statistics on
 * vector is hi, timer, net_tx, net_rx, block, irq_poll, tasklet, sched,
 * hrtimer or rcu. name is the line's handlers (/sys/kernel/irq/N/actions,
 * as the last column of /proc/interrupts), resolved the first time the line
 * is seen; include/exclude filter on it. IRQ numbers from 1023 on share
 * the series irq="other". Only lines that fire get a series, so the
 * cardinality is at most that of /proc/interrupts, and at most 1024.
 */
#include "config.h"

#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_common.h"
#include "engine.h"
#include "hist.h"
#include "irq.h"
#include "irq.skel.h"
#include "registry.h"
#include "sampler.h"

#define NAME_LEN 128

static const char *const vector_names[IRQ_SOFTIRQS] = {
	"hi", "timer", "net_tx", "net_rx", "block",
	"irq_poll", "tasklet", "sched", "hrtimer", "rcu",
};

struct irq_line {
	int seen; /* series created, or skipped */
	struct hitel_series *count; /* NULL: filtered out or at the series cap */
};

struct irq_priv {
	struct hitel_bpf_opts opts;
	struct irq_bpf *skel;
	int raw;
	uint64_t counts[HITEL_BPF_BUCKETS];
	struct hitel_series *hard, *soft[IRQ_SOFTIRQS], *soft_count[IRQ_SOFTIRQS];
	struct irq_line lines[IRQ_SLOTS];
	uint64_t prev_ns; /* time of the previous read (of the attach, at first) */
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc hard_desc = {
	.name = "irq/hardirq/time",
	.help = "Time spent in one run of a hard interrupt handler.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc hard_count_desc = {
	.name = "irq/hardirq/count",
	.help = "Hard interrupt handler runs per IRQ line.",
	.unit = "interrupts",
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc soft_desc = {
	.name = "irq/softirq/time",
	.help = "Time spent in one run of a softirq vector's handler.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc soft_count_desc = {
	.name = "irq/softirq/count",
	.help = "Softirq handler runs per vector.",
	.unit = "softirqs",
	.kind = HITEL_KIND_COUNTER,
};

static void irq_unload(void *ctx)
{
	struct irq_priv *p = ctx;

	/* Detaches every link, unmaps .bss, closes programs and maps. */
	irq_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *irq_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct irq_priv *p = ctx;

	p->skel = irq_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static const struct hitel_bpf_loader irq_loader = {
	.open = irq_open,
	.unload = irq_unload,
};

/* The handlers of IRQ line irq, as /proc/interrupts shows them; "" when the
 * kernel does not say (no handler, or no /sys/kernel/irq before v4.13). */
static void line_name(const struct hitel_sampler *s, unsigned int irq, char *name, size_t len)
{
	char rel[64], path[512];
	FILE *f;
	size_t n;

	name[0] = '\0';
	snprintf(rel, sizeof(rel), "/sys/kernel/irq/%u/actions", irq);
	if (!hitel_sampler_path(s, rel, path, sizeof(path)))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(name, (int)len, f)) {
		n = strcspn(name, "\n");
		name[n] = '\0';
	}
	fclose(f);
}

/*
 * The series of IRQ slot i, created the first time its count is not 0.
 * Every read sees every slot, so the count was 0 at the previous read: the
 * new series starts there, at 0, and its first window and rate hold every
 * interrupt (a counter's first value is otherwise its baseline).
 */
static struct irq_line *line_get(struct hitel_sampler *s, struct irq_priv *p, unsigned int slot)
{
	struct irq_line *l = &p->lines[slot];
	struct hitel_label lab[2];
	char num[16], name[NAME_LEN];

	if (l->seen)
		return l;
	l->seen = 1;
	if (slot == IRQ_SLOTS - 1) {
		snprintf(num, sizeof(num), "other");
		snprintf(name, sizeof(name), "other");
	} else {
		snprintf(num, sizeof(num), "%u", slot);
		line_name(s, slot, name, sizeof(name));
		if (!name[0])
			snprintf(name, sizeof(name), "unknown");
	}
	if (!hitel_sampler_match(s, name))
		return l;
	lab[0].name = "irq";
	lab[0].value = num;
	lab[1].name = "name";
	lab[1].value = name;
	l->count = hitel_bpf_counter_series(s, &hard_count_desc, lab, 2, p->prev_ns);
	return l;
}

static int irq_init(struct hitel_sampler *s)
{
	struct irq_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	unsigned int v;
	int err;

	hitel_bpf_opts_load(s, &p->opts);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;

	err = hitel_bpf_load(s, &p->opts, &irq_loader, p);
	if (err < 0)
		return err;
	p->raw = err;
	p->prev_ns = hitel_now_ns();

	p->hard = hitel_registry_series(reg, &hard_desc, NULL, 0);
	if (!p->hard)
		goto noseries;
	for (v = 0; v < IRQ_SOFTIRQS; v++) {
		struct hitel_label l = { "vector", vector_names[v] };

		p->soft[v] = hitel_registry_series(reg, &soft_desc, &l, 1);
		p->soft_count[v] = hitel_registry_series(reg, &soft_count_desc, &l, 1);
		if (!p->soft[v] || !p->soft_count[v])
			goto noseries;
	}
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
noseries:
	return hitel_bpf_fail_series(s);
}

static int irq_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct irq_priv *p = hitel_sampler_priv(s);
	const struct hitel_irq_data *d = &p->skel->bss->data;
	struct irq_line *l;
	uint64_t count;
	unsigned int i;
	int err;

	err = hitel_bpf_hist_load(p->hard, &d->hard, 0, 1, p->counts, NULL, now_ns);
	for (i = 0; !err && i < IRQ_SOFTIRQS; i++) {
		err = hitel_bpf_hist_load(p->soft[i], &d->soft[i], 0, 1, p->counts, &count, now_ns);
		if (!err)
			hitel_series_counter(p->soft_count[i], count, now_ns);
	}
	if (err) {
		hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
		return err;
	}
	for (i = 0; i < IRQ_SLOTS; i++) {
		count = d->hard_count[i];
		if (!count)
			continue;
		l = line_get(s, p, i);
		if (l->count)
			hitel_series_counter(l->count, count, now_ns);
	}
	hitel_bpf_stats_read(p->stats, now_ns);
	p->prev_ns = now_ns;
	return 0;
}

static void irq_fini(struct hitel_sampler *s)
{
	struct irq_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	irq_unload(p);
	memset(p->lines, 0, sizeof(p->lines));
}

const struct hitel_sampler_ops hitel_sampler_bpf_irq = {
	.name = "bpf_irq",
	.help = "Hard interrupt handler time (histogram, and runs per IRQ line) and softirq "
		"time per vector, recorded in the kernel by eBPF programs on the irq "
		"tracepoints (options: include/exclude on IRQ names, attach "
		"auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 0,
	.priv_size = sizeof(struct irq_priv),
	.option = hitel_bpf_sampler_option,
	.init = irq_init,
	.read = irq_read,
	.fini = irq_fini,
};
