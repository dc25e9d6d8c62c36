/* SPDX-License-Identifier: MIT */
/*
 * cpu: time per CPU state from the "cpu" (and, with option percpu, "cpuN")
 * lines of /proc/stat, as counters in nanoseconds, so every oversampled rate
 * is CPU-seconds per second: the distribution of utilisation across samples.
 *
 * Two kernel facts decide what the numbers mean:
 * - guest and guest_nice are already counted in user and nice (the kernel's
 *   account_guest_time() adds to both), so a sum over all ten states counts
 *   guest time twice.
 * - /proc/stat is tick-based: it prints USER_HZ units (100 per second here,
 *   10 ms steps), so a 100 Hz reader sees 0, 1 or 2 ticks per sample and the
 *   per-sample rates are quantisation, not signal. Window averages are exact;
 *   the eBPF sched_switch sampler gives nanosecond busy time for high-rate
 *   distributions.
 */
#include "sampler.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "procfile.h"

#define NSTATES 10
/* user nice system idle: older kernels add columns, none has fewer. */
#define MIN_COLS 4
/* Bound on a cpu number taken from the file, so a garbage "cpu4000000000"
 * line cannot make us allocate gigabytes (NR_CPUS tops out at 8192). */
#define MAX_CPUS 65536

static const char *const state_names[NSTATES] = {
	"user", "nice",	   "system", "idle",  "iowait",
	"irq",	"softirq", "steal",  "guest", "guest_nice",
};

static const struct hitel_family_desc usage_desc = {
	.name = "cpu/usage",
	.help = "CPU time spent in each state, all CPUs (tick-based; guest is included in user).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc percpu_desc = {
	.name = "cpu/usage/percpu",
	.help = "CPU time spent in each state, per CPU (tick-based; guest is included in user).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
	/* ten states for up to 1024 CPUs; the registry default (1024) would
	 * refuse series on machines with more than 102 CPUs. */
	.max_series = NSTATES * 1024,
};

struct cpu_times {
	uint64_t ticks[NSTATES];
	unsigned int ncols; /* columns parsed; 0: no such line */
};

/* One parse of /proc/stat. percpu[] is indexed by cpu number and grows
 * as CPUs appear (hotplug); it is reused across reads. */
struct cpu_stat {
	struct cpu_times total;
	struct cpu_times *percpu;
	size_t npercpu; /* highest cpu number seen in this parse + 1 */
	size_t cap;
};

struct cpu_series {
	struct hitel_series *s[NSTATES];
};

struct cpu_priv {
	struct hitel_procfile *stat;
	int percpu;
	uint64_t hz; /* USER_HZ: the unit of /proc/stat */
	struct cpu_stat parsed;
	struct hitel_series *total[NSTATES];
	struct cpu_series *cpus; /* series cache, indexed by cpu number */
	size_t ncpus;
};

/* A number must end at a blank or the end of the line: "12ab" is garbage,
 * not 12. */
static int field_u64(const char **p, uint64_t *out)
{
	const char *q = *p;
	uint64_t v;

	if (hitel_parse_u64(&q, &v) < 0)
		return -EINVAL;
	if (*q != ' ' && *q != '\t' && *q != '\n')
		return -EINVAL;
	*p = q;
	*out = v;
	return 0;
}

static unsigned int parse_times(const char *p, struct cpu_times *t)
{
	unsigned int n;

	/* Columns beyond the ten known ones (a future kernel) are ignored. */
	for (n = 0; n < NSTATES; n++)
		if (field_u64(&p, &t->ticks[n]) < 0)
			break;
	return n;
}

static int grow_percpu(struct cpu_stat *st, size_t need)
{
	size_t cap = st->cap ? st->cap : 8;
	struct cpu_times *n;

	while (cap < need)
		cap *= 2;
	n = realloc(st->percpu, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n + st->cap, 0, (cap - st->cap) * sizeof(*n));
	st->percpu = n;
	st->cap = cap;
	return 0;
}

/*
 * Parse the cpu lines of a /proc/stat buffer (NUL-terminated, len bytes).
 * Only newline-terminated lines count: the kernel ends every line with one,
 * so a line without it was cut and its last number may be cut too. A line
 * with fewer than MIN_COLS numbers, or a repeated cpu, is skipped.
 * Returns 0 or -ENOMEM.
 */
static int parse_stat(const char *buf, size_t len, int want_percpu, struct cpu_stat *st)
{
	const char *p = buf, *end = buf + len;
	size_t i;

	st->total.ncols = 0;
	for (i = 0; i < st->npercpu; i++)
		st->percpu[i].ncols = 0;
	st->npercpu = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		struct cpu_times t;
		uint64_t cpu;
		const char *q;

		if (!eol)
			break;
		if (eol - p < 4 || memcmp(p, "cpu", 3) != 0)
			goto next;
		q = p + 3;
		if (*q == ' ') {
			if (st->total.ncols)
				goto next;
			t.ncols = parse_times(q, &t);
			if (t.ncols >= MIN_COLS)
				st->total = t;
			goto next;
		}
		if (!want_percpu || *q < '0' || *q > '9' || hitel_parse_u64(&q, &cpu) < 0 ||
		    *q != ' ' || cpu >= MAX_CPUS)
			goto next;
		t.ncols = parse_times(q, &t);
		if (t.ncols < MIN_COLS)
			goto next;
		if (cpu >= st->cap && grow_percpu(st, (size_t)cpu + 1) < 0)
			return -ENOMEM;
		if (st->percpu[cpu].ncols)
			goto next;
		st->percpu[cpu] = t;
		if (cpu + 1 > st->npercpu)
			st->npercpu = (size_t)cpu + 1;
next:
		p = eol + 1;
	}
	return 0;
}

static uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz)
{
	/* Split so the product cannot overflow before the result would. */
	return ticks / hz * 1000000000ULL + ticks % hz * 1000000000ULL / hz;
}

static int parse_bool(const char *v)
{
	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1"))
		return 1;
	if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcmp(v, "0"))
		return 0;
	return -EINVAL;
}

/* Only validates: the engine keeps accepted values and init() reads them
 * back, because priv is zeroed before every init. */
static int cpu_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen)
{
	(void)s;
	if (strcmp(key, "percpu") != 0)
		return -ENOENT;
	if (parse_bool(value) < 0) {
		snprintf(err, errlen, "percpu: expected true or false, got \"%s\"", value);
		return -EINVAL;
	}
	return 0;
}

static int cpu_init(struct hitel_sampler *s)
{
	struct cpu_priv *p = hitel_sampler_priv(s);
	size_t n;
	long hz;
	int err;

	hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0) {
		hitel_sampler_fail(s, "sysconf(_SC_CLK_TCK) failed");
		return -EINVAL;
	}
	p->hz = (uint64_t)hz;
	n = hitel_sampler_values(s, "percpu");
	p->percpu = n ? parse_bool(hitel_sampler_value(s, "percpu", n - 1)) == 1 : 0;
	err = hitel_sampler_open_shared(s, "/proc/stat", &p->stat);
	if (err < 0)
		return err;
	return 0;
}

static struct hitel_series *percpu_series(struct hitel_sampler *s, struct cpu_priv *p,
					  size_t cpu, unsigned int state)
{
	char name[24];
	struct hitel_label labels[2];

	if (cpu >= p->ncpus) {
		size_t n = p->ncpus ? p->ncpus : 8;
		struct cpu_series *c;

		while (n <= cpu)
			n *= 2;
		c = realloc(p->cpus, n * sizeof(*c));
		if (!c)
			return NULL;
		memset(c + p->ncpus, 0, (n - p->ncpus) * sizeof(*c));
		p->cpus = c;
		p->ncpus = n;
	}
	if (!p->cpus[cpu].s[state]) {
		snprintf(name, sizeof(name), "%zu", cpu);
		labels[0] = (struct hitel_label){ "cpu", name };
		labels[1] = (struct hitel_label){ "state", state_names[state] };
		p->cpus[cpu].s[state] =
			hitel_registry_series(hitel_sampler_registry(s), &percpu_desc, labels, 2);
	}
	return p->cpus[cpu].s[state];
}

static int cpu_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct cpu_priv *p = hitel_sampler_priv(s);
	const struct cpu_times *t;
	const char *buf;
	size_t len, cpu;
	unsigned int i, recorded = 0;
	int err;

	err = hitel_sampler_read_shared(s, p->stat, &buf, &len);
	if (err < 0)
		return err;
	err = parse_stat(buf, len, p->percpu, &p->parsed);
	if (err < 0) {
		hitel_sampler_fail(s, "parsing %s: %s", hitel_procfile_path(p->stat),
				   strerror(-err));
		return err;
	}

	t = &p->parsed.total;
	for (i = 0; i < t->ncols; i++) {
		if (!p->total[i]) {
			struct hitel_label l = { "state", state_names[i] };

			p->total[i] =
				hitel_registry_series(hitel_sampler_registry(s), &usage_desc, &l, 1);
			if (!p->total[i])
				continue;
		}
		hitel_series_counter(p->total[i], ticks_to_ns(t->ticks[i], p->hz), now_ns);
		recorded++;
	}
	for (cpu = 0; cpu < p->parsed.npercpu; cpu++) {
		t = &p->parsed.percpu[cpu];
		for (i = 0; i < t->ncols; i++) {
			struct hitel_series *ser = percpu_series(s, p, cpu, i);

			if (!ser)
				continue;
			hitel_series_counter(ser, ticks_to_ns(t->ticks[i], p->hz), now_ns);
			recorded++;
		}
	}
	if (!recorded) {
		hitel_sampler_fail(s, "no usable cpu line in %s", hitel_procfile_path(p->stat));
		return -EINVAL;
	}
	return 0;
}

static void cpu_fini(struct hitel_sampler *s)
{
	struct cpu_priv *p = hitel_sampler_priv(s);

	hitel_procfile_free(p->stat);
	p->stat = NULL;
	free(p->parsed.percpu);
	free(p->cpus);
	memset(&p->parsed, 0, sizeof(p->parsed));
	memset(p->total, 0, sizeof(p->total));
	p->cpus = NULL;
	p->ncpus = 0;
}

const struct hitel_sampler_ops hitel_sampler_cpu = {
	.name = "cpu",
	.help = "CPU time per state from /proc/stat (option percpu adds per-CPU series).",
	/* Tick-based data: at 10 Hz a sample holds ~10 ticks per CPU, at
	 * 100 Hz 0-2, which is noise (bpf_cpu gives exact busy time at the
	 * engine's rate). /proc/stat also costs ~7 us a read here, more with
	 * more CPUs and interrupt lines (the intr line sums them all). */
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct cpu_priv),
	.option = cpu_option,
	.init = cpu_init,
	.read = cpu_read,
	.fini = cpu_fini,
};
