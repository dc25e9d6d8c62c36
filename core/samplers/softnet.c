/* SPDX-License-Identifier: MIT */
/*
 * softnet: per-CPU packet processing counters from /proc/net/softnet_stat.
 *
 * One line per online CPU of %08x columns (net/core/net-procfs.c):
 *   0 processed, 1 dropped (backlog full), 2 time_squeeze (net_rx_action ran
 *   out of budget or time with work left), 3-8 unused, 9 received_rps
 *   (2.6.35), 10 flow_limit_count (3.11), 11 backlog length and 12 CPU id
 *   (5.10), 13-14 input and process queue lengths (6.x).
 * Kernels before 5.10 print no CPU id and skip offline CPUs, so there the
 * line index stands in for it and is wrong once a CPU below is offline.
 *
 * The kernel keeps these as 32-bit counters: the sampler widens them to 64
 * bits across wraps (at 1 Mpps, processed wraps every 71 minutes) so the
 * series never shows a false reset.
 *
 * No total over CPUs: labels are the dimension (DESIGN.md) and a consumer
 * sums them (Prometheus: sum without (cpu)).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfile.h"
#include "sampler.h"

#define SOFTNET "/proc/net/softnet_stat"
#define MAX_CPU 65536 /* far above CONFIG_NR_CPUS_RANGE_END (8192) */
#define MAXCOLS 32    /* columns kept; more are a newer kernel's, ignored */
#define COL_CPU 12

enum { C_PROCESSED, C_DROPPED, C_SQUEEZE, NCTR };

static const struct hitel_family_desc fams[NCTR] = {
	[C_PROCESSED] = {.name = "softnet/processed",
			 .help = "Packets taken off the CPU's backlog and input queues by NAPI.",
			 .unit = "packets",
			 .kind = HITEL_KIND_COUNTER},
	[C_DROPPED] = {.name = "softnet/dropped",
		       .help = "Packets dropped because the CPU's backlog was full "
			       "(net.core.netdev_max_backlog).",
		       .unit = "packets",
		       .kind = HITEL_KIND_COUNTER},
	[C_SQUEEZE] = {.name = "softnet/time_squeeze",
		       .help = "net_rx_action runs that ended with work left (budget or "
			       "time exhausted).",
		       .unit = "events",
		       .kind = HITEL_KIND_COUNTER},
};

struct softnet_cpu {
	unsigned int gen; /* read generation that last saw this CPU */
	int known;	  /* keep and series decided */
	int keep;
	int started;	      /* last[] and total[] hold a first value */
	uint32_t last[NCTR];  /* raw 32-bit values of the previous read */
	uint64_t total[NCTR]; /* widened across 32-bit wraps */
	struct hitel_series *series[NCTR];
};

struct softnet_priv {
	struct hitel_procfile *f;
	struct softnet_cpu *cpus; /* indexed by CPU id */
	size_t ncpus;
	unsigned int gen;
	int warned_bad;
	int last_ok; /* the last read succeeded: the same file is the same reads */
};

struct softnet_line {
	uint64_t v[MAXCOLS];
	int n;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Every column is printed with %08x: a token of fewer than 8 digits is a
 * cut line (or not this file), and more than 16 would overflow. */
static int parse_line(const char *p, struct softnet_line *l)
{
	l->n = 0;
	for (;;) {
		uint64_t v = 0;
		int digits = 0, d;

		while (is_blank(*p))
			p++;
		if (*p == '\n' || *p == '\0')
			break;
		while ((d = hexval(*p)) >= 0) {
			if (++digits > 16)
				return -EINVAL;
			v = v << 4 | (uint64_t)d;
			p++;
		}
		if (digits < 8 || !(is_blank(*p) || *p == '\n' || *p == '\0'))
			return -EINVAL;
		if (l->n < MAXCOLS)
			l->v[l->n] = v;
		l->n++;
	}
	/* 9 (2.6), 10, 11 columns, then 13 and more with the CPU id: a count
	 * in between is a line cut at a column boundary. */
	if (l->n < 9 || l->n == 12)
		return -EINVAL;
	return 0;
}

static struct softnet_cpu *cpu_get(struct softnet_priv *p, size_t cpu)
{
	if (cpu >= MAX_CPU)
		return NULL;
	if (cpu >= p->ncpus) {
		size_t n = p->ncpus ? p->ncpus : 8;
		struct softnet_cpu *nc;

		while (n <= cpu)
			n *= 2;
		nc = realloc(p->cpus, n * sizeof(*nc));
		if (!nc)
			return NULL;
		memset(nc + p->ncpus, 0, (n - p->ncpus) * sizeof(*nc));
		p->cpus = nc;
		p->ncpus = n;
	}
	return &p->cpus[cpu];
}

static void cpu_setup(struct hitel_sampler *s, struct softnet_cpu *c, size_t cpu)
{
	char name[24];
	struct hitel_label lb = {"cpu", name};
	int i;

	snprintf(name, sizeof(name), "%zu", cpu);
	c->known = 1;
	c->keep = hitel_sampler_match(s, name);
	if (!c->keep)
		return;
	for (i = 0; i < NCTR; i++)
		c->series[i] = hitel_registry_series(hitel_sampler_registry(s), &fams[i], &lb, 1);
}

static void cpu_update(struct softnet_cpu *c, const struct softnet_line *l, uint64_t now)
{
	int i;

	for (i = 0; i < NCTR; i++) {
		uint32_t raw = (uint32_t)l->v[i];

		if (!c->started)
			c->total[i] = raw;
		else
			c->total[i] += (uint32_t)(raw - c->last[i]);
		c->last[i] = raw;
		hitel_series_counter(c->series[i], c->total[i], now);
	}
	c->started = 1;
}

/* The CPU's line repeats its last one: totals unchanged, recorded again. */
static void cpu_repeat(struct softnet_cpu *c, uint64_t now)
{
	int i;

	for (i = 0; i < NCTR; i++)
		hitel_series_counter(c->series[i], c->total[i], now);
}

static int softnet_init(struct hitel_sampler *s)
{
	struct softnet_priv *p = hitel_sampler_priv(s);
	int err;

	err = hitel_sampler_open(s, SOFTNET, &p->f);
	if (err < 0)
		return err;
	return 0;
}

static int softnet_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct softnet_priv *p = hitel_sampler_priv(s);
	const char *buf, *line;
	size_t len, index = 0, i;
	unsigned int prev = p->gen;
	int err, good = 0, bad = 0, same;

	err = hitel_sampler_read_same(s, p->f, &buf, &len, &same);
	if (err < 0) {
		p->last_ok = 0;
		return err;
	}
	if (++p->gen == 0) /* 0 marks a new entry: never a current generation */
		p->gen = 1;
	if (same && p->last_ok) {
		/* The CPUs the last read saw, each line as it was. */
		for (i = 0; i < p->ncpus; i++) {
			struct softnet_cpu *c = &p->cpus[i];

			if (c->gen != prev)
				continue;
			c->gen = p->gen;
			if (c->keep)
				cpu_repeat(c, now_ns);
		}
		return 0;
	}
	p->last_ok = 0;
	for (line = buf; line; line = hitel_next_line(line)) {
		struct softnet_line l;
		struct softnet_cpu *c;
		size_t cpu;

		if (*line == '\n')
			continue;
		/* Without an id column, the n-th line is the n-th online CPU,
		 * whether or not a line before it was readable. */
		index++;
		if (parse_line(line, &l)) {
			bad++;
			continue;
		}
		cpu = l.n > COL_CPU ? (size_t)l.v[COL_CPU] : index - 1;
		c = cpu_get(p, cpu);
		if (!c || c->gen == p->gen) { /* absurd id, no memory, or an id twice */
			bad++;
			continue;
		}
		good++;
		c->gen = p->gen;
		if (!c->known)
			cpu_setup(s, c, cpu);
		if (c->keep)
			cpu_update(c, &l, now_ns);
	}
	if (bad && !p->warned_bad) {
		p->warned_bad = 1;
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "skipped %d malformed line(s) in %s", bad,
				  hitel_procfile_path(p->f));
	}
	if (!good) {
		hitel_sampler_fail(s, "no valid CPU line in %s", hitel_procfile_path(p->f));
		return -ENODATA;
	}
	p->last_ok = 1;
	return 0;
}

static void softnet_fini(struct hitel_sampler *s)
{
	struct softnet_priv *p = hitel_sampler_priv(s);

	free(p->cpus);
	hitel_procfile_free(p->f);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_softnet = {
	.name = "softnet",
	.help = "Per-CPU network receive processing from /proc/net/softnet_stat.",
	/* Per-CPU "processed" at 100 Hz repeats what network's packet
	 * counters show at 100 Hz, and drops and squeezes are rare events
	 * whose count per 100 ms is the news. At 100 Hz this file was ~5 % of
	 * the default engine's CPU (a cold read after each wake-up: ~7 us). */
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct softnet_priv),
	.init = softnet_init,
	.read = softnet_read,
	.fini = softnet_fini,
};
