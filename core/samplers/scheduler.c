/* SPDX-License-Identifier: MIT */
/*
 * scheduler: context switches, forks, interrupts and runnable/blocked task
 * counts from /proc/stat, and the load averages from /proc/loadavg.
 *
 * /proc/stat is also read by the cpu sampler: the engine reads it once per
 * tick for both (hitel_sampler_open_shared). The kernel recomputes the load
 * averages every 5 s (LOAD_FREQ), so /proc/loadavg is read once a second,
 * not at the sampling rate: a 100 Hz gauge of a value that moves every 5 s
 * would be 500 identical samples.
 */
#include "sampler.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfile.h"

#define LOAD_NS 1000000000ULL

enum {
	ST_CTXT,
	ST_FORKS,
	ST_INTR,
	ST_RUNNING,
	ST_BLOCKED,
	NSTAT,
};

#define KEY(k) k, sizeof(k) - 1

struct stat_field {
	const char *key;
	size_t keylen;
	const struct hitel_family_desc *desc;
	const char *state; /* {state} label of the tasks gauge, or NULL */
};

static const struct hitel_family_desc ctxt_desc = {
	.name = "scheduler/context_switches",
	.help = "Context switches on all CPUs (ctxt in /proc/stat).",
	.unit = "switches",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc forks_desc = {
	.name = "scheduler/forks",
	.help = "Processes and threads created (processes in /proc/stat).",
	.unit = "forks",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc intr_desc = {
	.name = "scheduler/interrupts",
	.help = "Interrupts serviced, all sources (first number of intr in /proc/stat).",
	.unit = "interrupts",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc tasks_desc = {
	.name = "scheduler/tasks",
	.help = "Tasks runnable (state=running) and in uninterruptible I/O wait (state=blocked).",
	.unit = "tasks",
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc load_desc = {
	.name = "scheduler/load",
	.help = "Load average over 1, 5 and 15 minutes (/proc/loadavg).",
	.unit = "",
	.scale = -2,
	.kind = HITEL_KIND_GAUGE,
};

static const struct stat_field stat_fields[NSTAT] = {
	[ST_CTXT] = { KEY("ctxt"), &ctxt_desc, NULL },
	[ST_FORKS] = { KEY("processes"), &forks_desc, NULL },
	[ST_INTR] = { KEY("intr"), &intr_desc, NULL },
	[ST_RUNNING] = { KEY("procs_running"), &tasks_desc, "running" },
	[ST_BLOCKED] = { KEY("procs_blocked"), &tasks_desc, "blocked" },
};

#define NLOAD 3
static const char *const load_periods[NLOAD] = { "1m", "5m", "15m" };

struct sched_stat {
	uint64_t v[NSTAT];
	unsigned int found;
};

struct sched_load {
	uint64_t centi[NLOAD]; /* load * 100, exactly as printed */
	int ok;
};

struct sched_priv {
	struct hitel_procfile *stat, *loadavg;
	struct hitel_series *stat_series[NSTAT];
	struct hitel_series *load_series[NLOAD];
	uint64_t load_ns; /* last /proc/loadavg read */
	int load_read;	  /* it has been read */
};

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

/*
 * Parse the scalar lines of a /proc/stat buffer ("ctxt 308206"); of "intr"
 * only the first number (the total) is used. Only newline-terminated lines
 * count (a line without one was cut); a repeated key keeps its first value.
 */
static void parse_stat(const char *buf, size_t len, struct sched_stat *st)
{
	const char *p = buf, *end = buf + len;

	st->found = 0;
	while (p < end && st->found != (1u << NSTAT) - 1) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t i;

		if (!eol)
			break;
		/* The cpu lines come first and are the most numerous. */
		if (p[0] == 'c' && p[1] == 'p')
			goto next;
		for (i = 0; i < NSTAT; i++) {
			const struct stat_field *f = &stat_fields[i];
			const char *q;

			if ((size_t)(eol - p) <= f->keylen || memcmp(p, f->key, f->keylen) != 0 ||
			    p[f->keylen] != ' ')
				continue;
			q = p + f->keylen;
			if (!(st->found & (1u << i)) && field_u64(&q, &st->v[i]) == 0)
				st->found |= 1u << i;
			break;
		}
next:
		p = eol + 1;
	}
}

/* "0.08": integer part and up to two decimals, as an exact integer * 100. */
static int parse_centi(const char **p, uint64_t *out)
{
	const char *q = *p;
	uint64_t ip, frac = 0;
	int digits = 0;

	if (hitel_parse_u64(&q, &ip) < 0)
		return -EINVAL;
	if (*q == '.') {
		q++;
		while (*q >= '0' && *q <= '9') {
			if (++digits > 2)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*q++ - '0');
		}
		if (!digits)
			return -EINVAL;
		if (digits == 1)
			frac *= 10;
	}
	if ((*q != ' ' && *q != '\t' && *q != '\n') || ip > (UINT64_MAX - frac) / 100)
		return -EINVAL;
	*out = ip * 100 + frac;
	*p = q;
	return 0;
}

/* Parse "0.08 0.04 0.01 1/89 6053\n": the kernel prints each average as
 * %lu.%02lu, so no float is needed. The line must end in a newline. */
static void parse_loadavg(const char *buf, size_t len, struct sched_load *ld)
{
	const char *p = buf;
	unsigned int i;

	ld->ok = 0;
	if (!memchr(buf, '\n', len))
		return;
	for (i = 0; i < NLOAD; i++)
		if (parse_centi(&p, &ld->centi[i]) < 0)
			return;
	ld->ok = 1;
}

static int sched_init(struct hitel_sampler *s)
{
	struct sched_priv *p = hitel_sampler_priv(s);
	int err;

	err = hitel_sampler_open_shared(s, "/proc/stat", &p->stat);
	if (err == 0)
		err = hitel_sampler_open(s, "/proc/loadavg", &p->loadavg);
	return err;
}

static int sched_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct sched_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	struct sched_stat st;
	struct sched_load ld;
	const char *buf;
	size_t len;
	unsigned int i;
	int err;

	err = hitel_sampler_read_shared(s, p->stat, &buf, &len);
	if (err < 0)
		return err;
	parse_stat(buf, len, &st);
	memset(&ld, 0, sizeof(ld));
	if (!p->load_read || now_ns - p->load_ns >= LOAD_NS) {
		err = hitel_sampler_read(s, p->loadavg, &buf, &len);
		if (err < 0)
			return err;
		parse_loadavg(buf, len, &ld);
		if (!st.found && !ld.ok) {
			hitel_sampler_fail(s, "nothing usable in %s and %s",
					   hitel_procfile_path(p->stat),
					   hitel_procfile_path(p->loadavg));
			return -EINVAL;
		}
		p->load_read = 1;
		p->load_ns = now_ns;
	} else if (!st.found) {
		hitel_sampler_fail(s, "nothing usable in %s", hitel_procfile_path(p->stat));
		return -EINVAL;
	}

	for (i = 0; i < NSTAT; i++) {
		const struct stat_field *f = &stat_fields[i];

		if (!(st.found & (1u << i)))
			continue;
		if (!p->stat_series[i]) {
			struct hitel_label l = { "state", f->state };

			p->stat_series[i] = hitel_registry_series(reg, f->desc, f->state ? &l : NULL,
								  f->state ? 1 : 0);
			if (!p->stat_series[i])
				continue;
		}
		if (f->desc->kind == HITEL_KIND_COUNTER)
			hitel_series_counter(p->stat_series[i], st.v[i], now_ns);
		else
			hitel_series_gauge(p->stat_series[i], st.v[i], now_ns);
	}
	for (i = 0; ld.ok && i < NLOAD; i++) {
		if (!p->load_series[i]) {
			struct hitel_label l = { "period", load_periods[i] };

			p->load_series[i] = hitel_registry_series(reg, &load_desc, &l, 1);
			if (!p->load_series[i])
				continue;
		}
		hitel_series_gauge(p->load_series[i], ld.centi[i], now_ns);
	}
	return 0;
}

static void sched_fini(struct hitel_sampler *s)
{
	struct sched_priv *p = hitel_sampler_priv(s);

	hitel_procfile_free(p->stat);
	hitel_procfile_free(p->loadavg);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_scheduler = {
	.name = "scheduler",
	.help = "Context switches, forks, interrupts and task counts from /proc/stat; load "
		"averages from /proc/loadavg.",
	/* With cpu's rate, so the two share one read of /proc/stat. */
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct sched_priv),
	.init = sched_init,
	.read = sched_read,
	.fini = sched_fini,
};
