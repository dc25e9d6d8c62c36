/* SPDX-License-Identifier: MIT */
/*
 * pressure: pressure stall information (PSI, kernel 4.20+) from
 * /proc/pressure/{cpu,memory,io,irq}. The cumulative total= stall times
 * (microseconds) become counters, so each oversampled rate is the fraction
 * of time tasks were stalled: exact at any sampling rate, unlike the
 * kernel's own avg10/avg60/avg300, which are ignored.
 *
 * No /proc/pressure (CONFIG_PSI off, or psi=0 on the command line) fails the
 * sampler; a single missing resource file only drops that resource. irq
 * exists only since 6.1 with CONFIG_IRQ_TIME_ACCOUNTING, so its absence is
 * not logged. The cpu file has no "full" line before 5.13.
 */
#include "sampler.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "procfile.h"

enum { KIND_SOME, KIND_FULL, NKINDS };

static const char *const kind_names[NKINDS] = { "some", "full" };

static const struct resource {
	const char *name;
	int optional; /* absence is normal: do not log */
} resources[] = {
	{ "cpu", 0 },
	{ "memory", 0 },
	{ "io", 0 },
	{ "irq", 1 },
};

#define NRES (sizeof(resources) / sizeof(resources[0]))

static const struct hitel_family_desc stall_desc = {
	.name = "pressure/stall",
	.help = "Time some (or all non-idle: kind=full) tasks were stalled on a resource (PSI "
		"total=).",
	.unit = "seconds",
	.scale = -6,
	.kind = HITEL_KIND_COUNTER,
};

struct psi_totals {
	uint64_t us[NKINDS];
	unsigned int found; /* bit k: kind k parsed */
};

struct pressure_priv {
	struct hitel_procfile *files[NRES]; /* NULL: resource absent */
	struct hitel_series *series[NRES][NKINDS];
	struct psi_totals last[NRES]; /* each file's last parse */
};

/*
 * Parse a PSI file: lines "some avg10=0.00 avg60=0.00 avg300=0.00 total=123"
 * and "full ...". Only newline-terminated lines count (a line without one
 * was cut, and total= is last, so its number may be cut); unknown kinds,
 * lines without a numeric total= and repeated kinds are skipped.
 */
static void parse_psi(const char *buf, size_t len, struct psi_totals *t)
{
	const char *p = buf, *end = buf + len;

	t->found = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *q;
		unsigned int k;
		uint64_t v;

		if (!eol)
			break;
		for (k = 0; k < NKINDS; k++)
			if (eol - p > 5 && memcmp(p, kind_names[k], 4) == 0 && p[4] == ' ')
				break;
		if (k == NKINDS || (t->found & (1u << k)))
			goto next;
		/* Find the field by name: fields may be added (avg* came and
		 * could go), so position means nothing. */
		for (q = p + 5; q < eol; q++)
			if ((q[-1] == ' ' || q[-1] == '\t') && eol - q > 6 &&
			    memcmp(q, "total=", 6) == 0)
				break;
		if (q >= eol)
			goto next;
		q += 6;
		if (*q < '0' || *q > '9' || hitel_parse_u64(&q, &v) < 0 ||
		    (*q != ' ' && *q != '\t' && *q != '\n'))
			goto next;
		t->us[k] = v;
		t->found |= 1u << k;
next:
		p = eol + 1;
	}
}

static int pressure_init(struct hitel_sampler *s)
{
	struct pressure_priv *p = hitel_sampler_priv(s);
	char path[PATH_MAX], rel[64];
	struct stat sb;
	unsigned int i, opened = 0;
	int err;

	if (!hitel_sampler_path(s, "/proc/pressure", path, sizeof(path))) {
		hitel_sampler_fail(s, "path too long for /proc/pressure");
		return -ENAMETOOLONG;
	}
	if (stat(path, &sb) < 0) {
		err = errno;
		hitel_sampler_fail(s, "cannot open %s: %s (PSI needs kernel 4.20+ with CONFIG_PSI "
				      "and without psi=0)",
				   path, strerror(err));
		return -err;
	}
	for (i = 0; i < NRES; i++) {
		snprintf(rel, sizeof(rel), "/proc/pressure/%s", resources[i].name);
		if (!hitel_sampler_path(s, rel, path, sizeof(path)))
			continue;
		p->files[i] = hitel_procfile_open(path);
		if (p->files[i])
			opened++;
		else if (!resources[i].optional)
			hitel_sampler_log(s, HITEL_LOG_WARNING, "cannot open %s: %s; skipping %s",
					  path, strerror(errno), resources[i].name);
	}
	if (!opened) {
		hitel_sampler_path(s, "/proc/pressure", path, sizeof(path));
		hitel_sampler_fail(s, "cannot open any file in %s", path);
		return -ENOENT;
	}
	return 0;
}

static int pressure_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct pressure_priv *p = hitel_sampler_priv(s);
	unsigned int i, k, recorded = 0;
	struct psi_totals t;
	const char *buf;
	size_t len;
	int err, last_err = 0, same;

	for (i = 0; i < NRES; i++) {
		if (!p->files[i])
			continue;
		err = hitel_procfile_read_same(p->files[i], &buf, &len, &same);
		if (err < 0) {
			last_err = err;
			continue;
		}
		/* The same content is the same totals: recorded, not parsed
		 * (on a quiet host the files stay put for 100 ms). */
		if (same)
			t = p->last[i];
		else
			parse_psi(buf, len, &t);
		p->last[i] = t;
		for (k = 0; k < NKINDS; k++) {
			if (!(t.found & (1u << k)))
				continue;
			if (!p->series[i][k]) {
				struct hitel_label l[2] = { { "resource", resources[i].name },
							    { "kind", kind_names[k] } };

				p->series[i][k] = hitel_registry_series(hitel_sampler_registry(s),
									&stall_desc, l, 2);
				if (!p->series[i][k])
					continue;
			}
			hitel_series_counter(p->series[i][k], t.us[k], now_ns);
			recorded++;
		}
	}
	if (!recorded) {
		char path[PATH_MAX];

		hitel_sampler_path(s, "/proc/pressure", path, sizeof(path));
		if (last_err < 0) {
			hitel_sampler_fail(s, "cannot read %s: %s", path, strerror(-last_err));
			return last_err;
		}
		hitel_sampler_fail(s, "no usable total= line in %s/*", path);
		return -EINVAL;
	}
	return 0;
}

static void pressure_fini(struct hitel_sampler *s)
{
	struct pressure_priv *p = hitel_sampler_priv(s);
	unsigned int i;

	for (i = 0; i < NRES; i++)
		hitel_procfile_free(p->files[i]);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_pressure = {
	.name = "pressure",
	.help = "Pressure stall time per resource from /proc/pressure (PSI).",
	/* Three files, ~16 us a tick when read cold after each wake-up:
	 * ~11 % of the default engine's CPU at 100 Hz. PSI's own triggers
	 * take windows of 500 ms and more; 100 ms slices are five times finer,
	 * and the 10 ms view of contention is the eBPF samplers' (run-queue,
	 * block I/O latency, exact CPU busy time). rate = 100 restores it. */
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct pressure_priv),
	.init = pressure_init,
	.read = pressure_read,
	.fini = pressure_fini,
};
