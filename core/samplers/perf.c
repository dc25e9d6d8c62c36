/* SPDX-License-Identifier: MIT */
/*
 * perf_events sampler: system-wide per-CPU counting of events named as users
 * know them (libpfm4: "perf::instructions", "perf::context-switches", or
 * PMU-specific names), oversampled like every counter, so a window has a
 * distribution of IPC and miss ratios, not one number.
 *
 * Hardware events share one group per CPU and software events another, so
 * ratios inside a group come from the same time base. When the kernel
 * multiplexes a group, each interval's increase is scaled by
 * delta(time_enabled)/delta(time_running) and the scaling is exported; the
 * scaled increases are accumulated, so totals stay monotonic (scaling the
 * cumulative raw value instead would make counters go backwards).
 *
 * An event this machine cannot count (no PMU in a VM, unknown to the CPU)
 * reports perf/event/up{event} = 0 with the reason logged, and the rest keep
 * working. CPUs going on- or offline are picked up about once a second.
 *
 * libpfm4 is not linked: its relocated event tables cost ~2 MB of RSS at
 * load and pfm_initialize() ~1 MB more, for a default set that is only the
 * kernel's generic events. Those "perf::" names are encoded from a small
 * table here; libpfm.so.4 is dlopen()ed the first time any other name
 * (PMU-specific, or a generic name with modifiers) needs it.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "export.h"
#include "procfile.h"
#include "sampler.h"

#define MAX_EVENTS 32
#define MAX_CPUS 1024
#define RESCAN_NS 1000000000ULL
enum { GRP_HW, GRP_SW, NGRP };

static const char *const default_events[] = {
	"perf::cycles",		 "perf::instructions",	     "perf::cache-references",
	"perf::cache-misses",	 "perf::branches",	     "perf::branch-misses",
	"perf::stalled-cycles-frontend", "perf::stalled-cycles-backend",
	"perf::context-switches", "perf::cpu-migrations",    "perf::page-faults",
	"perf::major-faults",	 "perf::minor-faults",
};
#define N_DEFAULT (sizeof(default_events) / sizeof(default_events[0]))

struct event {
	char name[128];
	char label[64];
	struct perf_event_attr attr;
	int grp;
	int up;	       /* counting on at least one CPU */
	int errno_seen; /* why not, when down */
	const char *unencoded; /* never opened: why (libpfm4 unusable) */
	uint64_t acc;  /* scaled increase summed over CPUs since start */
	uint64_t prev_acc;
	struct hitel_series *total, *upser;
};

struct cpu {
	int online;
	/* fd[g][0] is the group leader, read for the whole group. */
	int fd[NGRP][MAX_EVENTS];
	/* Events of each group in the order they joined it (read order). */
	int memb[NGRP][MAX_EVENTS];
	int nmemb[NGRP];
	uint64_t prev[NGRP][MAX_EVENTS], prev_en[NGRP], prev_run[NGRP];
	int primed[NGRP];
	uint64_t acc[MAX_EVENTS];
	struct hitel_series *ser[MAX_EVENTS];
};

struct perf_priv {
	struct event ev[MAX_EVENTS];
	size_t nev;
	int percpu;
	struct cpu *cpus;
	int ncpus;
	struct hitel_procfile *online;
	uint64_t last_scan;
	/* Derived ratios, from the accumulated increases of these events. */
	int i_cyc, i_ins, i_cref, i_cmiss, i_br, i_brmiss;
	struct hitel_series *ipc, *cache_ratio, *branch_ratio;
	struct hitel_series *running[NGRP];
	uint64_t en_acc[NGRP], run_acc[NGRP];
};

/*
 * The generic events of libpfm4's "perf" PMU (all its names and aliases
 * except the PERF_TYPE_HW_CACHE ones, which take umasks). Names are matched
 * case-insensitively after a "perf::" prefix, as libpfm4 does. Arrays, not
 * pointers, so the table needs no load-time relocation.
 */
static const struct generic_event {
	char name[40];
	uint32_t type;
	uint64_t config;
} generic_events[] = {
#define HW(n, c) { n, PERF_TYPE_HARDWARE, PERF_COUNT_HW_##c }
#define SW(n, c) { n, PERF_TYPE_SOFTWARE, PERF_COUNT_SW_##c }
	HW("PERF_COUNT_HW_CPU_CYCLES", CPU_CYCLES),
	HW("cycles", CPU_CYCLES),
	HW("cpu-cycles", CPU_CYCLES),
	HW("PERF_COUNT_HW_INSTRUCTIONS", INSTRUCTIONS),
	HW("instructions", INSTRUCTIONS),
	HW("PERF_COUNT_HW_CACHE_REFERENCES", CACHE_REFERENCES),
	HW("cache-references", CACHE_REFERENCES),
	HW("PERF_COUNT_HW_CACHE_MISSES", CACHE_MISSES),
	HW("cache-misses", CACHE_MISSES),
	HW("PERF_COUNT_HW_BRANCH_INSTRUCTIONS", BRANCH_INSTRUCTIONS),
	HW("branch-instructions", BRANCH_INSTRUCTIONS),
	HW("branches", BRANCH_INSTRUCTIONS),
	HW("PERF_COUNT_HW_BRANCH_MISSES", BRANCH_MISSES),
	HW("branch-misses", BRANCH_MISSES),
	HW("PERF_COUNT_HW_BUS_CYCLES", BUS_CYCLES),
	HW("bus-cycles", BUS_CYCLES),
	HW("PERF_COUNT_HW_STALLED_CYCLES_FRONTEND", STALLED_CYCLES_FRONTEND),
	HW("stalled-cycles-frontend", STALLED_CYCLES_FRONTEND),
	HW("idle-cycles-frontend", STALLED_CYCLES_FRONTEND),
	HW("PERF_COUNT_HW_STALLED_CYCLES_BACKEND", STALLED_CYCLES_BACKEND),
	HW("stalled-cycles-backend", STALLED_CYCLES_BACKEND),
	HW("idle-cycles-backend", STALLED_CYCLES_BACKEND),
	HW("PERF_COUNT_HW_REF_CPU_CYCLES", REF_CPU_CYCLES),
	HW("ref-cycles", REF_CPU_CYCLES),
	SW("PERF_COUNT_SW_CPU_CLOCK", CPU_CLOCK),
	SW("cpu-clock", CPU_CLOCK),
	SW("PERF_COUNT_SW_TASK_CLOCK", TASK_CLOCK),
	SW("task-clock", TASK_CLOCK),
	SW("PERF_COUNT_SW_PAGE_FAULTS", PAGE_FAULTS),
	SW("page-faults", PAGE_FAULTS),
	SW("faults", PAGE_FAULTS),
	SW("PERF_COUNT_SW_CONTEXT_SWITCHES", CONTEXT_SWITCHES),
	SW("context-switches", CONTEXT_SWITCHES),
	SW("cs", CONTEXT_SWITCHES),
	SW("PERF_COUNT_SW_CPU_MIGRATIONS", CPU_MIGRATIONS),
	SW("cpu-migrations", CPU_MIGRATIONS),
	SW("migrations", CPU_MIGRATIONS),
	SW("PERF_COUNT_SW_PAGE_FAULTS_MIN", PAGE_FAULTS_MIN),
	SW("minor-faults", PAGE_FAULTS_MIN),
	SW("PERF_COUNT_SW_PAGE_FAULTS_MAJ", PAGE_FAULTS_MAJ),
	SW("major-faults", PAGE_FAULTS_MAJ),
	SW("PERF_COUNT_SW_CGROUP_SWITCHES", CGROUP_SWITCHES),
	SW("cgroup-switches", CGROUP_SWITCHES),
#undef HW
#undef SW
};
#define N_GENERIC (sizeof(generic_events) / sizeof(generic_events[0]))

/* For the unit test that checks the table against libpfm4 itself. */
const char *hitel_perf_generic_name(size_t i);
const char *hitel_perf_generic_name(size_t i)
{
	return i < N_GENERIC ? generic_events[i].name : NULL;
}

/* "perf::NAME" from the table -> attr, exactly as libpfm4 encodes it with
 * PFM_PLM0 | PFM_PLM3: user and kernel counted, hypervisor and guest
 * excluded (libpfm4's h=0 and mg=0 defaults). 0, or -ENOENT when the name
 * is not one of them (then libpfm4 decides). */
int hitel_perf_encode_generic(const char *name, struct perf_event_attr *attr);
int hitel_perf_encode_generic(const char *name, struct perf_event_attr *attr)
{
	size_t i;

	if (strncasecmp(name, "perf::", 6) != 0)
		return -ENOENT;
	for (i = 0; i < N_GENERIC; i++)
		if (strcasecmp(name + 6, generic_events[i].name) == 0)
			break;
	if (i == N_GENERIC)
		return -ENOENT;
	memset(attr, 0, sizeof(*attr));
	attr->type = generic_events[i].type;
	attr->config = generic_events[i].config;
	attr->exclude_hv = 1;
	attr->exclude_guest = 1;
	attr->size = sizeof(*attr);
	return 0;
}

/* libpfm4, loaded once per process (several engines may share it). */
static struct {
	__typeof__(pfm_initialize) *initialize;
	__typeof__(pfm_get_os_event_encoding) *encode;
	__typeof__(pfm_strerror) *strerror;
	int err;	 /* 0 loaded and initialised, else -errno */
	char why[320]; /* when err */
} pfm;
static pthread_once_t pfm_once = PTHREAD_ONCE_INIT;

static void pfm_load(void)
{
	void *h = dlopen("libpfm.so.4", RTLD_NOW | RTLD_LOCAL);
	int r;

	if (!h) {
		pfm.err = -ELIBACC;
		snprintf(pfm.why, sizeof(pfm.why),
			 "cannot load libpfm.so.4 (install the Debian package libpfm4): %s",
			 dlerror());
		return;
	}
	pfm.initialize = (__typeof__(pfm.initialize))dlsym(h, "pfm_initialize");
	pfm.encode = (__typeof__(pfm.encode))dlsym(h, "pfm_get_os_event_encoding");
	pfm.strerror = (__typeof__(pfm.strerror))dlsym(h, "pfm_strerror");
	if (!pfm.initialize || !pfm.encode || !pfm.strerror) {
		pfm.err = -ELIBBAD;
		snprintf(pfm.why, sizeof(pfm.why),
			 "libpfm.so.4 lacks pfm_initialize/pfm_get_os_event_encoding/pfm_strerror "
			 "(install the Debian package libpfm4)");
		return;
	}
	r = pfm.initialize();
	if (r != PFM_SUCCESS) {
		pfm.err = -ENOSYS;
		snprintf(pfm.why, sizeof(pfm.why), "libpfm4 (libpfm.so.4) failed to initialise: %s",
			 pfm.strerror(r));
	}
	/* h stays open: libpfm4 keeps global state for the life of the process. */
}

/* Why libpfm4 is unusable, or NULL when it is usable. */
static const char *pfm_unusable(void)
{
	pthread_once(&pfm_once, pfm_load);
	return pfm.err ? pfm.why : NULL;
}

/* Event name -> attr: the built-in generic table first, libpfm4 for the
 * rest. 0; -EINVAL for a name libpfm4 does not know; -ELIBACC, -ELIBBAD or
 * -ENOSYS when libpfm4 is needed but unusable (pfm_unusable() says why). */
int hitel_perf_encode(const char *name, struct perf_event_attr *attr);
int hitel_perf_encode(const char *name, struct perf_event_attr *attr)
{
	pfm_perf_encode_arg_t arg;

	if (hitel_perf_encode_generic(name, attr) == 0)
		return 0;
	memset(attr, 0, sizeof(*attr));
	if (pfm_unusable())
		return pfm.err;
	memset(&arg, 0, sizeof(arg));
	arg.attr = attr;
	arg.size = sizeof(arg);
	if (pfm.encode(name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg) != PFM_SUCCESS)
		return -EINVAL;
	attr->size = sizeof(*attr);
	return 0;
}

/* "perf::cache-misses" -> "cache_misses"; "skx::INST_RETIRED:ANY" ->
 * "skx_inst_retired_any". */
static void make_label(const char *name, char *out, size_t len)
{
	const char *s = strncmp(name, "perf::", 6) == 0 ? name + 6 : name;
	size_t n = 0;

	for (; *s && n + 1 < len; s++) {
		char c = *s;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '_';
		if (c == '_' && (n == 0 || out[n - 1] == '_'))
			continue;
		out[n++] = c;
	}
	while (n && out[n - 1] == '_')
		n--;
	out[n] = '\0';
}

static int perf_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		       size_t errlen)
{
	struct perf_event_attr attr;
	int r;

	(void)s;
	int b;

	if (strcmp(key, "percpu") == 0) {
		if (hitel_parse_bool(value, &b) < 0) {
			snprintf(err, errlen, "option 'percpu': '%s' is not a boolean", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "event") == 0) {
		r = hitel_perf_encode(value, &attr);
		/* Without libpfm4 the name cannot be checked here; init reports
		 * the event down with the reason, and the others still count. */
		if (r < 0 && r != -EINVAL)
			return 0;
		if (r < 0) {
			snprintf(err, errlen,
				 "option 'event': unknown event '%s' (libpfm4 names such as "
				 "perf::instructions or perf::context-switches)",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

static long sys_perf_event_open(struct perf_event_attr *attr, int cpu, int group_fd)
{
	return syscall(SYS_perf_event_open, attr, -1, cpu, group_fd, PERF_FLAG_FD_CLOEXEC);
}

static void cpu_close(struct cpu *c)
{
	int g, k;

	for (g = 0; g < NGRP; g++) {
		for (k = 0; k < c->nmemb[g]; k++)
			close(c->fd[g][k]);
		c->nmemb[g] = 0;
		c->primed[g] = 0;
	}
	c->online = 0;
}

static void cpu_open(struct perf_priv *p, int cpu)
{
	struct cpu *c = &p->cpus[cpu];
	size_t i;
	int g;

	for (g = 0; g < NGRP; g++) {
		c->nmemb[g] = 0;
		for (i = 0; i < p->nev; i++) {
			struct event *e = &p->ev[i];
			long fd;

			if (e->grp != g || e->unencoded)
				continue;
			e->attr.read_format = PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED |
					      PERF_FORMAT_TOTAL_TIME_RUNNING;
			e->attr.disabled = 0;
			e->attr.inherit = 0;
			fd = sys_perf_event_open(&e->attr, cpu, c->nmemb[g] ? c->fd[g][0] : -1);
			if (fd < 0) {
				if (!e->up)
					e->errno_seen = errno;
				continue;
			}
			c->fd[g][c->nmemb[g]] = (int)fd;
			c->memb[g][c->nmemb[g]++] = (int)i;
			e->up = 1;
		}
	}
	c->online = 1;
}

/* Parse a kernel CPU list ("0-3,8,10-11") into a mask. */
static int parse_cpulist(const char *s, unsigned char *mask, int n)
{
	while (*s && *s != '\n') {
		char *end;
		long a = strtol(s, &end, 10), b;

		if (end == s || a < 0)
			return -EINVAL;
		b = a;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			if (end == s + 1 || b < a)
				return -EINVAL;
			s = end;
		}
		for (; a <= b && a < n; a++)
			mask[a] = 1;
		if (*s == ',')
			s++;
		else if (*s && *s != '\n')
			return -EINVAL;
	}
	return 0;
}

static int rescan(struct hitel_sampler *s, struct perf_priv *p)
{
	unsigned char mask[MAX_CPUS] = { 0 };
	const char *buf;
	size_t len;
	int cpu, r;

	r = hitel_procfile_read(p->online, &buf, &len);
	if (r < 0 || parse_cpulist(buf, mask, p->ncpus) < 0) {
		hitel_sampler_fail(s, "cannot parse %s", hitel_procfile_path(p->online));
		return r < 0 ? r : -EINVAL;
	}
	for (cpu = 0; cpu < p->ncpus; cpu++) {
		if (mask[cpu] && !p->cpus[cpu].online) {
			cpu_open(p, cpu);
			if (p->cpus[cpu].nmemb[GRP_HW] + p->cpus[cpu].nmemb[GRP_SW])
				hitel_sampler_log(s, HITEL_LOG_INFO, "counting on cpu %d", cpu);
		} else if (!mask[cpu] && p->cpus[cpu].online) {
			hitel_sampler_log(s, HITEL_LOG_INFO, "cpu %d went offline", cpu);
			cpu_close(&p->cpus[cpu]);
		}
	}
	return 0;
}

static int add_event(struct perf_priv *p, const char *name)
{
	struct event *e;
	int r;

	if (p->nev == MAX_EVENTS)
		return -E2BIG;
	e = &p->ev[p->nev];
	memset(e, 0, sizeof(*e));
	r = hitel_perf_encode(name, &e->attr);
	if (r == -EINVAL)
		return r;
	if (r < 0) {
		/* Kept, reported down: the events that need no libpfm4 still count. */
		e->unencoded = pfm_unusable();
		e->errno_seen = -r;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	make_label(name, e->label, sizeof(e->label));
	/* Software events never need the PMU: keep them in their own group
	 * so an unsupported hardware leader cannot take them down. */
	e->grp = e->attr.type == PERF_TYPE_SOFTWARE ? GRP_SW : GRP_HW;
	p->nev++;
	return 0;
}

static int find_label(const struct perf_priv *p, const char *label)
{
	size_t i;

	for (i = 0; i < p->nev; i++)
		if (strcmp(p->ev[i].label, label) == 0 && p->ev[i].up)
			return (int)i;
	return -1;
}

static const struct hitel_family_desc fam_events = {
	.name = "perf/events",
	.help = "Events counted by perf_events on all CPUs (scaled when multiplexed).",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_events_cpu = {
	.name = "perf/events/percpu",
	.help = "Events counted by perf_events per CPU.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_up = {
	.name = "perf/event/up",
	.help = "1 when the event is counted on this machine, 0 when it is not supported.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
	.flags = HITEL_FAMILY_NO_HIST,
};
static const struct hitel_family_desc fam_ipc = {
	.name = "perf/ipc",
	.help = "Instructions per cycle over each sample interval (all CPUs).",
	.unit = "",
	.scale = -3,
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc fam_cache = {
	.name = "perf/cache/miss_ratio",
	.help = "Cache misses per cache reference over each sample interval.",
	.unit = "",
	.scale = -6,
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc fam_branch = {
	.name = "perf/branch/miss_ratio",
	.help = "Branch misses per branch instruction over each sample interval.",
	.unit = "",
	.scale = -6,
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc fam_running = {
	.name = "perf/group/running_ratio",
	.help = "Fraction of enabled time the event group was counting (below 1: multiplexed "
		"and scaled).",
	.unit = "",
	.scale = -6,
	.kind = HITEL_KIND_GAUGE,
};

static int perf_init(struct hitel_sampler *s)
{
	struct perf_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	unsigned char mask[MAX_CPUS] = { 0 };
	char path[512];
	size_t i, n = hitel_sampler_values(s, "event");
	int cpu, any = 0, g;
	struct hitel_procfile *poss = NULL;
	const char *buf;
	size_t len;
	int err = 0;

	if (hitel_sampler_values(s, "percpu"))
		hitel_parse_bool(hitel_sampler_value(s, "percpu", hitel_sampler_values(s, "percpu") - 1),
				 &p->percpu);
	for (i = 0; i < (n ? n : N_DEFAULT); i++) {
		const char *name = n ? hitel_sampler_value(s, "event", i) : default_events[i];

		if (add_event(p, name) < 0) {
			hitel_sampler_fail(s, "cannot use event '%s'", name);
			err = -EINVAL;
			goto cleanup;
		}
	}
	/* Size the CPU table from the possible mask: hotplug never exceeds it. */
	poss = hitel_procfile_open(hitel_sampler_path(s, "/sys/devices/system/cpu/possible", path,
						      sizeof(path)));
	if (!poss || hitel_procfile_read(poss, &buf, &len) < 0 ||
	    parse_cpulist(buf, mask, MAX_CPUS) < 0) {
		hitel_sampler_fail(s, "cannot read %s", path);
		err = -ENOENT;
		goto cleanup;
	}
	for (cpu = 0; cpu < MAX_CPUS; cpu++)
		if (mask[cpu])
			p->ncpus = cpu + 1;
	p->online = hitel_procfile_open(hitel_sampler_path(s, "/sys/devices/system/cpu/online",
							   path, sizeof(path)));
	if (!p->online) {
		err = -errno;
		hitel_sampler_fail(s, "cannot open %s: %s", path, strerror(errno));
		goto cleanup;
	}
	p->cpus = calloc((size_t)p->ncpus, sizeof(*p->cpus));
	if (!p->cpus) {
		err = -ENOMEM;
		hitel_sampler_fail(s, "out of memory");
		goto cleanup;
	}
	err = rescan(s, p);
	if (err < 0)
		goto cleanup;
	for (i = 0; i < p->nev; i++) {
		struct event *e = &p->ev[i];
		struct hitel_label l = { "event", e->label };

		e->upser = hitel_registry_series(reg, &fam_up, &l, 1);
		if (e->upser)
			hitel_series_gauge(e->upser, (uint64_t)e->up, hitel_now_ns());
		if (e->unencoded) {
			hitel_sampler_log(s, HITEL_LOG_WARNING, "event %s not counted: %s", e->name,
					  e->unencoded);
			continue;
		}
		if (!e->up) {
			hitel_sampler_log(s, HITEL_LOG_NOTICE, "event %s not counted: %s%s", e->name,
					  strerror(e->errno_seen),
					  e->errno_seen == ENOENT || e->errno_seen == EOPNOTSUPP
						  ? " (not supported by this CPU or hypervisor)"
					  : e->errno_seen == EACCES || e->errno_seen == EPERM
						  ? " (needs CAP_PERFMON or kernel.perf_event_paranoid <= 0)"
						  : "");
			continue;
		}
		any = 1;
		e->total = hitel_registry_series(reg, &fam_events, &l, 1);
	}
	if (!any) {
		int e0 = p->nev ? p->ev[0].errno_seen : ENOENT;

		hitel_sampler_fail(s, "no event can be counted: %s%s",
				   p->nev && p->ev[0].unencoded ? p->ev[0].unencoded : strerror(e0),
				   e0 == EACCES || e0 == EPERM
					   ? " (needs CAP_PERFMON or kernel.perf_event_paranoid <= 0)"
					   : "");
		err = -(e0 ? e0 : ENOENT);
		goto cleanup;
	}
	p->i_cyc = find_label(p, "cycles");
	p->i_ins = find_label(p, "instructions");
	p->i_cref = find_label(p, "cache_references");
	p->i_cmiss = find_label(p, "cache_misses");
	p->i_br = find_label(p, "branches");
	p->i_brmiss = find_label(p, "branch_misses");
	if (p->i_cyc >= 0 && p->i_ins >= 0)
		p->ipc = hitel_registry_series(reg, &fam_ipc, NULL, 0);
	if (p->i_cref >= 0 && p->i_cmiss >= 0)
		p->cache_ratio = hitel_registry_series(reg, &fam_cache, NULL, 0);
	if (p->i_br >= 0 && p->i_brmiss >= 0)
		p->branch_ratio = hitel_registry_series(reg, &fam_branch, NULL, 0);
	for (g = 0; g < NGRP; g++) {
		struct hitel_label l = { "group", g == GRP_HW ? "hardware" : "software" };

		for (i = 0; i < p->nev; i++)
			if (p->ev[i].grp == g && p->ev[i].up)
				break;
		if (i < p->nev)
			p->running[g] = hitel_registry_series(reg, &fam_running, &l, 1);
	}
	p->last_scan = hitel_now_ns();
cleanup:
	hitel_procfile_free(poss);
	return err;
}

static void account(struct perf_priv *p, int cpu, int g, const uint64_t *buf)
{
	struct cpu *c = &p->cpus[cpu];
	uint64_t nr = buf[0], en = buf[1], run = buf[2], den, drun;
	int k;

	if (nr > (uint64_t)c->nmemb[g])
		nr = (uint64_t)c->nmemb[g];
	if (!c->primed[g]) {
		for (k = 0; k < (int)nr; k++)
			c->prev[g][k] = buf[3 + k];
		c->prev_en[g] = en;
		c->prev_run[g] = run;
		c->primed[g] = 1;
		return;
	}
	den = en - c->prev_en[g];
	drun = run - c->prev_run[g];
	p->en_acc[g] += den;
	p->run_acc[g] += drun;
	for (k = 0; k < (int)nr; k++) {
		uint64_t d = buf[3 + k] - c->prev[g][k];
		int ei = c->memb[g][k];

		if (drun && drun < den)
			d = (uint64_t)((unsigned __int128)d * den / drun);
		else if (!drun)
			d = 0; /* not scheduled at all: nothing measured */
		c->prev[g][k] = buf[3 + k];
		c->acc[ei] += d;
		p->ev[ei].acc += d;
	}
	c->prev_en[g] = en;
	c->prev_run[g] = run;
}

static void ratio(struct hitel_series *s, const struct perf_priv *p, int num, int den,
		  uint64_t scale, uint64_t now)
{
	uint64_t dn, dd;

	if (!s || num < 0 || den < 0)
		return;
	dn = p->ev[num].acc - p->ev[num].prev_acc;
	dd = p->ev[den].acc - p->ev[den].prev_acc;
	if (dd)
		hitel_series_gauge(s, (uint64_t)((unsigned __int128)dn * scale / dd), now);
}

static int perf_read(struct hitel_sampler *s, uint64_t now)
{
	struct perf_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	uint64_t buf[3 + MAX_EVENTS], en0[NGRP], run0[NGRP];
	size_t i;
	int cpu, g;

	if (now - p->last_scan >= RESCAN_NS) {
		p->last_scan = now;
		if (rescan(s, p) < 0)
			return -EIO;
	}
	for (g = 0; g < NGRP; g++) {
		en0[g] = p->en_acc[g];
		run0[g] = p->run_acc[g];
	}
	for (cpu = 0; cpu < p->ncpus; cpu++) {
		struct cpu *c = &p->cpus[cpu];

		if (!c->online)
			continue;
		for (g = 0; g < NGRP; g++) {
			ssize_t n;

			if (!c->nmemb[g])
				continue;
			n = read(c->fd[g][0], buf, sizeof(buf));
			if (n < (ssize_t)(3 * sizeof(uint64_t)))
				continue; /* CPU going away: the next rescan closes it */
			account(p, cpu, g, buf);
		}
		if (!p->percpu)
			continue;
		for (i = 0; i < p->nev; i++) {
			char cl[16];
			struct hitel_label l[2] = { { "cpu", cl }, { "event", p->ev[i].label } };

			if (!p->ev[i].up)
				continue;
			if (!c->ser[i]) {
				snprintf(cl, sizeof(cl), "%d", cpu);
				c->ser[i] = hitel_registry_series(reg, &fam_events_cpu, l, 2);
			}
			if (c->ser[i])
				hitel_series_counter(c->ser[i], c->acc[i], now);
		}
	}
	for (i = 0; i < p->nev; i++)
		if (p->ev[i].total)
			hitel_series_counter(p->ev[i].total, p->ev[i].acc, now);
	ratio(p->ipc, p, p->i_ins, p->i_cyc, 1000, now);
	ratio(p->cache_ratio, p, p->i_cmiss, p->i_cref, 1000000, now);
	ratio(p->branch_ratio, p, p->i_brmiss, p->i_br, 1000000, now);
	for (i = 0; i < p->nev; i++)
		p->ev[i].prev_acc = p->ev[i].acc;
	for (g = 0; g < NGRP; g++) {
		uint64_t den = p->en_acc[g] - en0[g];

		if (p->running[g] && den)
			hitel_series_gauge(p->running[g],
					   (uint64_t)((unsigned __int128)(p->run_acc[g] - run0[g]) *
						      1000000 / den),
					   now);
	}
	return 0;
}

static void perf_fini(struct hitel_sampler *s)
{
	struct perf_priv *p = hitel_sampler_priv(s);
	int cpu;

	if (p->cpus)
		for (cpu = 0; cpu < p->ncpus; cpu++)
			if (p->cpus[cpu].online)
				cpu_close(&p->cpus[cpu]);
	free(p->cpus);
	hitel_procfile_free(p->online);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_perf = {
	.name = "perf",
	.help = "perf_events counters (libpfm4 event names), system-wide per CPU",
	.default_hz = 0,
	.default_enabled = 1,
	.priv_size = sizeof(struct perf_priv),
	.option = perf_option,
	.init = perf_init,
	.read = perf_read,
	.fini = perf_fini,
};
