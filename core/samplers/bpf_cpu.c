/* SPDX-License-Identifier: MIT */
/*
 * bpf_cpu: exact busy time per CPU from the sched_switch and cpu_idle
 * tracepoints (bpf/cpu.bpf.c), read at the engine's rate from an mmapped
 * array: no system call per read, a cache line per CPU.
 *
 * Why: /proc/stat is tick-based (10 ms units on this kind of machine), so
 * per-sample CPU rates at 100 Hz are quantisation, not signal. Busy time
 * from the scheduler is exact to the nanosecond, so the distribution of
 * "CPUs busy" over 10 ms samples is what it claims to be: a 30 % busy CPU
 * reads about 0.3 per sample, not 0 or 1.
 *
 * Families:
 *   cpu/busy                counter, ns: all CPUs (rate: CPUs busy)
 *   cpu/busy/percpu {cpu}   counter, ns: with option percpu
 *   hitel/bpf/lost {sampler} counter: switches to idle the program did not
 *                           see (caught at the idle entry that followed)
 *   hitel/bpf/runs, hitel/bpf/run_time   with kernel BPF statistics on
 *
 * What "busy" means here: a task other than the CPU's idle task was on the
 * CPU. Interrupts taken while the CPU idles count as idle, interrupts taken
 * while a task runs and time the hypervisor stole from a running vCPU count
 * as busy (/proc/stat puts both in their own states). A CPU counts as idle
 * until its first context switch after the programs are attached.
 *
 * Cost, measured on a 2-CPU VM (tests/bench/bench_bpf.sh, perf bench sched
 * pipe): 130 ns of program per context switch by the kernel's BPF
 * statistics with warm caches, ~0.5 us per run right after idle; 0.02 % of
 * a CPU on that mostly idle machine. The read is a cache line per CPU: too
 * little to tell from the engine's noise at 100 Hz.
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
#include "cpu.h"
#include "cpu.skel.h"
#include "export.h"
#include "hot.h"
#include "registry.h"
#include "sampler.h"

_Static_assert(sizeof(struct cpu_row) == 64, "one cache line per CPU row");

/* A writer holds a row for well under a microsecond; a reader that keeps
 * losing the race (a CPU switching in a tight loop) takes the row's last
 * value rather than spin. */
#define SEQ_TRIES 64

struct bcpu_priv {
	struct hitel_bpf_opts opts;
	struct cpu_bpf *skel;
	const struct cpu_row *rows; /* mmap of the rows map, read only */
	size_t rows_len;
	unsigned int ncpus;
	int percpu;
	uint64_t *last; /* per CPU: the value last recorded */
	struct hitel_series *total, *lost;
	struct hitel_series **cpus; /* with percpu, per CPU; NULL until seen busy */
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc busy_desc = {
	.name = "cpu/busy",
	.help = "Time CPUs ran a task other than the idle task, all CPUs, exact from "
		"sched_switch (eBPF); the rate is CPUs busy.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc percpu_desc = {
	.name = "cpu/busy/percpu",
	.help = "Time a CPU ran a task other than the idle task, exact from sched_switch "
		"(eBPF); the rate is the fraction of the CPU busy.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
	.max_series = 8192,
};

static int bcpu_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		       size_t errlen)
{
	int b;

	if (strcmp(key, "percpu") == 0) {
		if (hitel_parse_bool(value, &b) == 0)
			return 0;
		snprintf(err, errlen, "percpu: expected true or false, got \"%s\"", value);
		return -EINVAL;
	}
	return hitel_bpf_sampler_option(s, key, value, err, errlen);
}

static void bcpu_unload(void *ctx)
{
	struct bcpu_priv *p = ctx;

	hitel_bpf_munmap(p->rows, p->rows_len);
	p->rows = NULL;
	cpu_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *bcpu_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct bcpu_priv *p = ctx;

	p->skel = cpu_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int bcpu_configure(void *ctx, int raw)
{
	struct bcpu_priv *p = ctx;

	(void)raw;
	return bpf_map__set_max_entries(p->skel->maps.rows, p->ncpus);
}

static int bcpu_mmap(void *ctx)
{
	struct bcpu_priv *p = ctx;

	p->rows =
	    hitel_bpf_mmap(p->skel->maps.rows, p->ncpus, sizeof(struct cpu_row), &p->rows_len);
	return p->rows ? 0 : -errno;
}

static const struct hitel_bpf_loader bcpu_loader = {
	.open = bcpu_open,
	.configure = bcpu_configure,
	.mmap = bcpu_mmap,
	.unload = bcpu_unload,
};

static int bcpu_init(struct hitel_sampler *s)
{
	struct bcpu_priv *p = hitel_sampler_priv(s);
	size_t n;
	int err, nc;

	hitel_bpf_opts_load(s, &p->opts);
	n = hitel_sampler_values(s, "percpu");
	if (n)
		hitel_parse_bool(hitel_sampler_value(s, "percpu", n - 1), &p->percpu);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	nc = hitel_bpf_ncpus();
	if (nc <= 0) {
		hitel_sampler_fail(s, "cannot count possible CPUs: %s",
				   strerror(nc ? -nc : EINVAL));
		return nc ? nc : -EINVAL;
	}
	p->ncpus = (unsigned int)nc;
	p->last = calloc(p->ncpus, sizeof(*p->last));
	if (p->percpu)
		p->cpus = calloc(p->ncpus, sizeof(*p->cpus));
	if (!p->last || (p->percpu && !p->cpus)) {
		hitel_sampler_fail(s, "out of memory");
		return -ENOMEM;
	}
	err = hitel_bpf_load(s, &p->opts, &bcpu_loader, p);
	if (err < 0)
		return err;
	p->total = hitel_registry_series(hitel_sampler_registry(s), &busy_desc, NULL, 0);
	p->lost = hitel_bpf_lost_series(s);
	if (!p->total || !p->lost)
		return hitel_bpf_fail_series(s);
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
}

/*
 * Busy ns of CPU c at now_ns (a CLOCK_MONOTONIC time taken just before),
 * never less than what the CPU reported last. A switch that the row does
 * not show yet took its time after now_ns (the writer reads the clock
 * after making seq odd, and we read seq after our clock), so the open
 * stretch is counted up to now_ns only; the max() covers the clock reads of
 * two CPUs being a few ns apart.
 */
HITEL_TICK
static uint64_t row_busy(struct bcpu_priv *p, unsigned int c, uint64_t now_ns)
{
	const struct cpu_row *r = &p->rows[c];
	uint64_t seq, busy = 0, last = 0, running = 0, v;
	unsigned int i;

	for (i = 0; i < SEQ_TRIES; i++) {
		seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		busy = __atomic_load_n(&r->busy_ns, __ATOMIC_RELAXED);
		last = __atomic_load_n(&r->last_ns, __ATOMIC_RELAXED);
		running = __atomic_load_n(&r->running, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&r->seq, __ATOMIC_RELAXED) == seq)
			break;
	}
	if (i == SEQ_TRIES)
		return p->last[c];
	v = busy + (last && running && now_ns > last ? now_ns - last : 0);
	if (v > p->last[c])
		p->last[c] = v;
	return p->last[c];
}

static struct hitel_series *cpu_series(struct hitel_sampler *s, struct bcpu_priv *p, unsigned int c)
{
	char name[16];
	struct hitel_label l = { "cpu", name };

	if (!p->cpus[c]) {
		snprintf(name, sizeof(name), "%u", c);
		p->cpus[c] = hitel_registry_series(hitel_sampler_registry(s), &percpu_desc, &l, 1);
	}
	return p->cpus[c];
}

HITEL_TICK
static int bcpu_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct bcpu_priv *p = hitel_sampler_priv(s);
	uint64_t sum = 0, missed = 0, v;
	unsigned int c;

	for (c = 0; c < p->ncpus; c++) {
		v = row_busy(p, c, now_ns);
		sum += v;
		missed += __atomic_load_n(&p->rows[c].missed, __ATOMIC_RELAXED);
		/* Possible CPUs that never ran anything (not present, or
		 * offline since boot) get no series. */
		if (p->percpu && (v || p->cpus[c])) {
			struct hitel_series *ser = cpu_series(s, p, c);

			if (ser)
				hitel_series_counter(ser, v, now_ns);
		}
	}
	hitel_series_counter(p->total, sum, now_ns);
	hitel_series_counter(p->lost, missed, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	return 0;
}

static void bcpu_fini(struct hitel_sampler *s)
{
	struct bcpu_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	bcpu_unload(p);
	free(p->last);
	free(p->cpus);
	p->last = NULL;
	p->cpus = NULL;
}

const struct hitel_sampler_ops hitel_sampler_bpf_cpu = {
	.name = "bpf_cpu",
	.help = "Exact CPU busy time from the sched_switch and cpu_idle tracepoints (eBPF), "
		"for high-rate utilisation distributions (options: percpu, attach "
		"auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 0,
	.default_enabled = 1,
	.priv_size = sizeof(struct bcpu_priv),
	.option = bcpu_option,
	.init = bcpu_init,
	.read = bcpu_read,
	.fini = bcpu_fini,
};
