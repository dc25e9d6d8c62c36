/* SPDX-License-Identifier: MIT */
/*
 * bpf_runqueue: run queue latency, off-CPU time and voluntary/involuntary
 * context switches, recorded in the kernel by bpf/runqueue.bpf.c from the
 * sched_wakeup, sched_wakeup_new and sched_switch tracepoints, and loaded
 * from its per-CPU rows at the sampler's rate. The kernel histograms are
 * cumulative and never reset, so every read replaces the series' histogram
 * with the exact state (counts and sums summed over CPUs).
 *
 * Families:
 *   scheduler/runqueue/latency            histogram, ns
 *   scheduler/offcpu/time                 histogram, ns
 *   scheduler/bpf/context_switches {kind} counter (voluntary, involuntary)
 *   hitel/bpf/lost {sampler}              counter: events not recorded
 *   hitel/bpf/runs, hitel/bpf/run_time    with kernel BPF statistics on
 *
 * Design choices, measured on a 2-CPU VM (kernel 6.18, BPF statistics on,
 * perf bench sched pipe; an empty tp_btf program costs 52 ns/run there and
 * bpf_ktime_get_ns() another 50 ns):
 * - Timestamps in task-local storage rather than a pid-keyed hash (the
 *   same program otherwise): sched_wakeup 140 vs 242 ns/run, sched_switch
 *   205 vs 368 ns/run. Storage also needs no sizing and is freed with the
 *   task. The raw_tp fallback cannot reach task storage (untyped pointers)
 *   and uses the hash, sized to threads-max (at most 2^16).
 * - Histograms in one row per CPU with plain adds rather than one shared
 *   row with atomic adds: 209 vs 210 ns per sched_switch with one busy CPU,
 *   200 vs 227 ns with both CPUs switching, as the shared cache lines then
 *   bounce between CPUs (and more so with more CPUs). The cost is memory,
 *   116 KB per possible CPU, and a sum over CPUs per read (2 x 7424 words
 *   per CPU, at 1 Hz by default). The rows are an mmapable array read in
 *   place: no syscall and no copy per read.
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
#include "hist.h"
#include "registry.h"
#include "runqueue.h"
#include "runqueue.skel.h"
#include "sampler.h"

_Static_assert(HITEL_BPF_BUCKETS == (2U << HITEL_BPF_GROUPING) +
					   (HITEL_BPF_MAX_POWER - HITEL_BPF_GROUPING - 1) *
						   (1U << HITEL_BPF_GROUPING),
	       "HITEL_BPF_BUCKETS must equal hitel_bucket_count(g, m)");

#define PID_ENTRIES_MAX 65536
#define PID_ENTRIES_MIN 4096

struct rq_priv {
	struct hitel_bpf_opts opts;
	struct runqueue_bpf *skel;
	const struct runq_row *rows; /* mmap of the rows map, read only */
	size_t rows_len;
	unsigned int ncpus;
	int raw; /* the raw_tp flavour is loaded */
	uint64_t counts[HITEL_BPF_BUCKETS];
	struct hitel_series *runq, *offcpu, *voluntary, *involuntary, *lost;
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc runq_desc = {
	.name = "scheduler/runqueue/latency",
	.help = "Time tasks waited on a run queue, from wakeup (or preemption) to running.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc offcpu_desc = {
	.name = "scheduler/offcpu/time",
	.help = "Time tasks spent off CPU, from being switched out to being switched back in "
		"(blocked and waiting to run).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc switches_desc = {
	.name = "scheduler/bpf/context_switches",
	.help = "Context switches away from non-idle tasks: voluntary (the task blocked) or "
		"involuntary (preempted or yielding while runnable).",
	.unit = "switches",
	.kind = HITEL_KIND_COUNTER,
};

/* Entries of the raw_tp fallback's pid hash: one per live thread. */
static unsigned int pid_entries(void)
{
	unsigned long v = 0;
	FILE *f = fopen("/proc/sys/kernel/threads-max", "re");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	if (v < PID_ENTRIES_MIN)
		return v ? PID_ENTRIES_MIN : PID_ENTRIES_MAX;
	return v > PID_ENTRIES_MAX ? PID_ENTRIES_MAX : (unsigned int)v;
}

static void rq_unload(void *ctx)
{
	struct rq_priv *p = ctx;

	hitel_bpf_munmap(p->rows, p->rows_len);
	p->rows = NULL;
	/* Detaches every link and closes programs and maps. */
	runqueue_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *rq_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct rq_priv *p = ctx;

	p->skel = runqueue_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int rq_configure(void *ctx, int raw)
{
	struct rq_priv *p = ctx;
	int err;

	err = bpf_map__set_max_entries(p->skel->maps.rows, p->ncpus);
	if (!err)
		err = bpf_map__set_autocreate(raw ? p->skel->maps.task_ts : p->skel->maps.pid_ts,
					      false);
	if (!err && raw)
		err = bpf_map__set_max_entries(p->skel->maps.pid_ts, pid_entries());
	return err;
}

static int rq_mmap(void *ctx)
{
	struct rq_priv *p = ctx;

	p->rows = hitel_bpf_mmap(p->skel->maps.rows, p->ncpus, sizeof(struct runq_row),
				 &p->rows_len);
	return p->rows ? 0 : -errno;
}

static const struct hitel_bpf_loader rq_loader = {
	.open = rq_open,
	.configure = rq_configure,
	.mmap = rq_mmap,
	.unload = rq_unload,
};

static int rq_init(struct hitel_sampler *s)
{
	struct rq_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	struct hitel_label kind = { "kind", "voluntary" };
	int err, n;

	hitel_bpf_opts_load(s, &p->opts);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	n = hitel_bpf_ncpus();
	if (n <= 0) {
		hitel_sampler_fail(s, "cannot count possible CPUs: %s", strerror(n ? -n : EINVAL));
		return n ? n : -EINVAL;
	}
	p->ncpus = (unsigned int)n;

	err = hitel_bpf_load(s, &p->opts, &rq_loader, p);
	if (err < 0)
		return err;
	p->raw = err;

	p->runq = hitel_registry_series(reg, &runq_desc, NULL, 0);
	p->offcpu = hitel_registry_series(reg, &offcpu_desc, NULL, 0);
	p->voluntary = hitel_registry_series(reg, &switches_desc, &kind, 1);
	kind.value = "involuntary";
	p->involuntary = hitel_registry_series(reg, &switches_desc, &kind, 1);
	p->lost = hitel_bpf_lost_series(s);
	if (!p->runq || !p->offcpu || !p->voluntary || !p->involuntary || !p->lost)
		return hitel_bpf_fail_series(s);
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
}

static int rq_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct rq_priv *p = hitel_sampler_priv(s);
	uint64_t vol = 0, invol = 0, lost = 0;
	unsigned int c;
	int err;

	for (c = 0; c < p->ncpus; c++) {
		vol += p->rows[c].voluntary;
		invol += p->rows[c].involuntary;
		lost += p->rows[c].lost;
	}
	err = hitel_bpf_hist_load(p->runq, &p->rows[0].runq, sizeof(p->rows[0]), p->ncpus,
				  p->counts, NULL, now_ns);
	if (!err)
		err = hitel_bpf_hist_load(p->offcpu, &p->rows[0].offcpu, sizeof(p->rows[0]),
					  p->ncpus, p->counts, NULL, now_ns);
	if (err) {
		hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
		return err;
	}
	hitel_series_counter(p->voluntary, vol, now_ns);
	hitel_series_counter(p->involuntary, invol, now_ns);
	hitel_series_counter(p->lost, lost, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	return 0;
}

static void rq_fini(struct hitel_sampler *s)
{
	struct rq_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	rq_unload(p);
}

const struct hitel_sampler_ops hitel_sampler_bpf_runqueue = {
	.name = "bpf_runqueue",
	.help = "Run queue latency and off-CPU time histograms, and voluntary/involuntary "
		"context switches, recorded in the kernel by eBPF programs on the sched "
		"tracepoints (options: attach auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 1,
	.priv_size = sizeof(struct rq_priv),
	.option = hitel_bpf_sampler_option,
	.init = rq_init,
	.read = rq_read,
	.fini = rq_fini,
};
