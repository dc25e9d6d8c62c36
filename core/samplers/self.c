/* SPDX-License-Identifier: MIT */
/*
 * self: what hitel itself costs. CPU time comes from
 * clock_gettime(CLOCK_PROCESS_CPUTIME_ID), which the scheduler keeps in
 * exact nanoseconds, unlike the tick-quantised utime/stime of
 * /proc/self/stat (NOTES-procfs.md): at 10 Hz those would be 0 or 1 tick.
 * RSS comes from <root>/proc/self/statm, the thread count from
 * <root>/proc/self/stat.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procfile.h"
#include "registry.h"
#include "sampler.h"

#define NS_PER_S 1000000000ULL

struct self_priv {
	struct hitel_procfile *statm, *stat;
	uint64_t page_size;
	struct hitel_series *cpu, *rss, *threads;
};

static const struct hitel_family_desc cpu_desc = {
	.name = "hitel/process/cpu",
	.help = "CPU time used by this process (all threads, user and system).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc rss_desc = {
	.name = "hitel/process/rss",
	.help = "Resident memory of this process.",
	.unit = "bytes",
	.kind = HITEL_KIND_GAUGE,
};

static const struct hitel_family_desc threads_desc = {
	.name = "hitel/process/threads",
	.help = "Threads of this process.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
	.flags = HITEL_FAMILY_NO_HIST,
};

static int self_init(struct hitel_sampler *s)
{
	struct self_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	long ps = sysconf(_SC_PAGESIZE);
	int err;

	p->page_size = ps > 0 ? (uint64_t)ps : 4096;
	err = hitel_sampler_open(s, "/proc/self/statm", &p->statm);
	if (err == 0)
		err = hitel_sampler_open(s, "/proc/self/stat", &p->stat);
	if (err < 0)
		return err;
	p->cpu = hitel_registry_series(reg, &cpu_desc, NULL, 0);
	p->rss = hitel_registry_series(reg, &rss_desc, NULL, 0);
	p->threads = hitel_registry_series(reg, &threads_desc, NULL, 0);
	if (!p->cpu || !p->rss || !p->threads) {
		err = errno ? errno : ENOMEM;
		hitel_sampler_fail(s, "cannot create series: %s", strerror(err));
		return -err;
	}
	return 0;
}

static void self_fini(struct hitel_sampler *s)
{
	struct self_priv *p = hitel_sampler_priv(s);

	hitel_procfile_free(p->statm);
	hitel_procfile_free(p->stat);
	p->statm = p->stat = NULL;
}

/* statm: "size resident shared text lib data dt", in pages. */
static int parse_statm(const char *buf, uint64_t *resident_pages)
{
	uint64_t size;

	if (hitel_parse_u64(&buf, &size) < 0 || hitel_parse_u64(&buf, resident_pages) < 0)
		return -EINVAL;
	return 0;
}

/* stat: "pid (comm) state ppid ... num_threads ...": num_threads is field
 * 20. comm may hold blanks and parentheses, so fields are counted from the
 * last ')'. */
static int parse_threads(const char *buf, uint64_t *threads)
{
	const char *p = strrchr(buf, ')');
	int field;

	if (!p)
		return -EINVAL;
	p++;
	/* p is before field 3; skip fields 3..19. */
	for (field = 3; field < 20; field++) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			return -EINVAL;
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	return hitel_parse_u64(&p, threads) < 0 ? -EINVAL : 0;
}

static int self_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct self_priv *p = hitel_sampler_priv(s);
	struct timespec ts;
	uint64_t pages, threads;
	const char *buf;
	size_t len;
	int err;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0) {
		err = errno;
		hitel_sampler_fail(s, "CLOCK_PROCESS_CPUTIME_ID: %s", strerror(err));
		return -err;
	}
	hitel_series_counter(p->cpu, (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec,
			     now_ns);

	err = hitel_sampler_read(s, p->statm, &buf, &len);
	if (err < 0)
		return err;
	if (parse_statm(buf, &pages) < 0) {
		hitel_sampler_fail(s, "cannot parse %s", hitel_procfile_path(p->statm));
		return -EINVAL;
	}
	hitel_series_gauge(p->rss, pages * p->page_size, now_ns);

	err = hitel_sampler_read(s, p->stat, &buf, &len);
	if (err < 0)
		return err;
	if (parse_threads(buf, &threads) < 0) {
		hitel_sampler_fail(s, "cannot parse %s", hitel_procfile_path(p->stat));
		return -EINVAL;
	}
	hitel_series_gauge(p->threads, threads, now_ns);
	return 0;
}

const struct hitel_sampler_ops hitel_sampler_self = {
	.name = "self",
	.help = "CPU time, resident memory and threads of the hitel process itself.",
	/* hitel's own CPU, RSS and threads: a per-second distribution says
	 * enough, and /proc/self/stat is one of the dearer reads. */
	.default_hz = 1,
	.default_enabled = 1,
	.priv_size = sizeof(struct self_priv),
	.init = self_init,
	.read = self_read,
	.fini = self_fini,
};
