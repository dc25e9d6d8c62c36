/* SPDX-License-Identifier: MIT */
/*
 * memory: levels from /proc/meminfo as gauges in bytes, and paging, swap,
 * reclaim and OOM events from /proc/vmstat as counters.
 *
 * It runs at 10 Hz by default, not at the engine rate: meminfo is generated
 * on every read (global page-state sums, swap info, per-CPU counter folds)
 * and vmstat folds every per-CPU event counter, so the cost grows with the
 * number of CPUs, while memory levels move slowly: a 100 ms spike is still
 * seen in the window max at 10 Hz. "rate" raises it where wanted.
 *
 * meminfo is required; vmstat is optional (logged once when missing).
 */
#include "sampler.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfile.h"

#define GAUGE(n, h, f)                                                                   \
	{                                                                                \
		.name = n, .help = h, .unit = "bytes", .scale = 0,                      \
		.kind = HITEL_KIND_GAUGE, .flags = f,                                    \
	}

#define COUNTER(n, h, u)                                                                 \
	{                                                                                \
		.name = n, .help = h, .unit = u, .scale = 0, .kind = HITEL_KIND_COUNTER, \
	}

#define KEY(k) k, sizeof(k) - 1

/* /proc/meminfo keys, in the order the kernel prints them (the parser stops
 * once it has them all). Totals hardly ever change: no value histogram. */
static const struct meminfo_field {
	const char *key;
	size_t keylen;
	struct hitel_family_desc desc;
} meminfo_fields[] = {
	{ KEY("MemTotal"), GAUGE("memory/total", "Usable RAM (MemTotal).", HITEL_FAMILY_NO_HIST) },
	{ KEY("MemFree"), GAUGE("memory/free", "Unused RAM (MemFree).", 0) },
	{ KEY("MemAvailable"),
	  GAUGE("memory/available",
		"Estimate of RAM available for new work without swapping (MemAvailable, "
		"kernel 3.14+).",
		0) },
	{ KEY("Buffers"), GAUGE("memory/buffers", "Block device buffer cache (Buffers).", 0) },
	{ KEY("Cached"), GAUGE("memory/cached", "Page cache, excluding swap cache (Cached).", 0) },
	{ KEY("SwapTotal"),
	  GAUGE("memory/swap/total", "Swap space configured (SwapTotal).", HITEL_FAMILY_NO_HIST) },
	{ KEY("SwapFree"), GAUGE("memory/swap/free", "Unused swap space (SwapFree).", 0) },
	{ KEY("Dirty"), GAUGE("memory/dirty", "Memory waiting to be written back (Dirty).", 0) },
	{ KEY("Writeback"),
	  GAUGE("memory/writeback", "Memory being written back now (Writeback).", 0) },
	{ KEY("Slab"), GAUGE("memory/slab", "Kernel slab allocations (Slab).", 0) },
};

#define NMEMINFO (sizeof(meminfo_fields) / sizeof(meminfo_fields[0]))
#define MEMINFO_ALL ((1u << NMEMINFO) - 1)

enum {
	VM_PGFAULT,
	VM_PGMAJFAULT,
	VM_PSWPIN,
	VM_PSWPOUT,
	VM_PGSCAN,
	VM_PGSTEAL,
	VM_OOM_KILL,
	NVMSTAT,
};

static const struct hitel_family_desc vmstat_descs[NVMSTAT] = {
	[VM_PGFAULT] = COUNTER("memory/page_faults", "Page faults, minor and major (pgfault).",
			       "faults"),
	[VM_PGMAJFAULT] = COUNTER("memory/page_faults/major",
				  "Page faults that needed I/O (pgmajfault).", "faults"),
	[VM_PSWPIN] = COUNTER("memory/swap/in", "Pages swapped in (pswpin).", "pages"),
	[VM_PSWPOUT] = COUNTER("memory/swap/out", "Pages swapped out (pswpout).", "pages"),
	[VM_PGSCAN] = COUNTER("memory/reclaim/scanned",
			      "Pages scanned by reclaim (sum of pgscan_kswapd, _direct, "
			      "_khugepaged, _proactive).",
			      "pages"),
	[VM_PGSTEAL] = COUNTER("memory/reclaim/reclaimed",
			       "Pages reclaimed (sum of pgsteal_kswapd, _direct, _khugepaged, "
			       "_proactive).",
			       "pages"),
	[VM_OOM_KILL] = COUNTER("memory/oom_kills", "Processes killed by the OOM killer "
						    "(oom_kill, kernel 4.13+).",
				"kills"),
};

/* Counters taken as they are; pgscan and pgsteal are sums (reclaim_part). */
static const struct vmstat_name {
	const char *key;
	size_t keylen;
	unsigned int idx;
} vmstat_names[] = {
	{ KEY("pgfault"), VM_PGFAULT }, { KEY("pgmajfault"), VM_PGMAJFAULT },
	{ KEY("pswpin"), VM_PSWPIN },	{ KEY("pswpout"), VM_PSWPOUT },
	{ KEY("oom_kill"), VM_OOM_KILL },
};

#define NVMNAMES (sizeof(vmstat_names) / sizeof(vmstat_names[0]))

struct meminfo {
	uint64_t bytes[NMEMINFO];
	unsigned int found; /* bit i: meminfo_fields[i] parsed */
};

struct vmstat {
	uint64_t v[NVMSTAT];
	unsigned int found;
};

struct memory_priv {
	struct hitel_procfile *meminfo, *vmstat;
	struct hitel_series *mem_series[NMEMINFO];
	struct hitel_series *vm_series[NVMSTAT];
	int vmstat_warned;
	/* Each file's last parse, for a read whose content repeats it (memory
	 * levels often stay put for 100 ms): recorded again, not parsed. */
	struct meminfo m;
	struct vmstat vm;
	int vm_ok; /* vm is the parse of vmstat's last content */
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

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Parse "Key:   123 kB" lines of a /proc/meminfo buffer. Only
 * newline-terminated lines count (a line without one was cut); a known key
 * whose value is not "<number> kB" is skipped, as is a repeated key.
 */
static void parse_meminfo(const char *buf, size_t len, struct meminfo *m)
{
	const char *p = buf, *end = buf + len;

	m->found = 0;
	while (p < end && m->found != MEMINFO_ALL) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *colon, *q;
		size_t i, klen;
		uint64_t kb;

		if (!eol)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon)
			goto next;
		klen = (size_t)(colon - p);
		for (i = 0; i < NMEMINFO; i++)
			if (meminfo_fields[i].keylen == klen &&
			    memcmp(p, meminfo_fields[i].key, klen) == 0)
				break;
		if (i == NMEMINFO || (m->found & (1u << i)))
			goto next;
		q = colon + 1;
		if (field_u64(&q, &kb) < 0)
			goto next;
		q = skip_blanks(q);
		if (q[0] != 'k' || q[1] != 'B' || skip_blanks(q + 2) != eol)
			goto next;
		if (kb > UINT64_MAX / 1024)
			goto next;
		m->bytes[i] = kb * 1024;
		m->found |= 1u << i;
next:
		p = eol + 1;
	}
}

/* Reclaim counters are split by reclaimer (kswapd, direct; khugepaged and
 * proactive since 6.x) and, before 4.8, also by zone ("pgscan_kswapd_normal").
 * pgscan_direct_throttle counts throttling events, not pages, and
 * pgscan_anon/_file split the same pages a second way: neither is summed. */
static int reclaim_part(const char *name, size_t len)
{
	static const char *const who[] = { "kswapd", "direct", "khugepaged", "proactive" };
	size_t i;

	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		size_t w = strlen(who[i]);

		if (len < w || memcmp(name, who[i], w) != 0)
			continue;
		if (len == w)
			return 1;
		if (name[w] != '_')
			return 0;
		return !(len - w - 1 == 8 && memcmp(name + w + 1, "throttle", 8) == 0);
	}
	return 0;
}

/* Which counter a vmstat name feeds: VM_* or -1. */
static int vmstat_index(const char *name, size_t len)
{
	size_t i;

	if (len > 7 && memcmp(name, "pgscan_", 7) == 0)
		return reclaim_part(name + 7, len - 7) ? VM_PGSCAN : -1;
	if (len > 8 && memcmp(name, "pgsteal_", 8) == 0)
		return reclaim_part(name + 8, len - 8) ? VM_PGSTEAL : -1;
	for (i = 0; i < NVMNAMES; i++)
		if (vmstat_names[i].keylen == len && memcmp(name, vmstat_names[i].key, len) == 0)
			return (int)vmstat_names[i].idx;
	return -1;
}

/*
 * Parse "name value" lines of a /proc/vmstat buffer (same line rules as
 * meminfo). Sums add every matching line; other counters keep the first.
 */
static void parse_vmstat(const char *buf, size_t len, struct vmstat *vm)
{
	const char *p = buf, *end = buf + len;

	memset(vm, 0, sizeof(*vm));
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *sp;
		uint64_t v;
		int i;

		if (!eol)
			break;
		/* ~190 lines, and every name we want starts with p or o. */
		if (*p != 'p' && *p != 'o')
			goto next;
		sp = memchr(p, ' ', (size_t)(eol - p));
		if (!sp)
			goto next;
		i = vmstat_index(p, (size_t)(sp - p));
		if (i < 0 || (i != VM_PGSCAN && i != VM_PGSTEAL && (vm->found & (1u << i))))
			goto next;
		if (field_u64(&sp, &v) < 0 || skip_blanks(sp) != eol)
			goto next;
		vm->v[i] += v;
		vm->found |= 1u << i;
next:
		p = eol + 1;
	}
}

static int memory_init(struct hitel_sampler *s)
{
	struct memory_priv *p = hitel_sampler_priv(s);
	char path[PATH_MAX];
	int err;

	err = hitel_sampler_open(s, "/proc/meminfo", &p->meminfo);
	if (err < 0)
		return err;
	if (hitel_sampler_path(s, "/proc/vmstat", path, sizeof(path))) {
		p->vmstat = hitel_procfile_open(path);
		if (!p->vmstat)
			hitel_sampler_log(s, HITEL_LOG_NOTICE,
					  "cannot open %s: %s; no paging, swap or reclaim counters",
					  path, strerror(errno));
	}
	return 0;
}

static void read_vmstat(struct hitel_sampler *s, struct memory_priv *p, uint64_t now_ns)
{
	struct vmstat *vm = &p->vm;
	const char *buf;
	size_t len;
	unsigned int i;
	int err, same = 0;

	err = hitel_procfile_read_same(p->vmstat, &buf, &len, &same);
	if (err == 0 && !(same && p->vm_ok)) {
		parse_vmstat(buf, len, vm);
		p->vm_ok = 1;
	}
	if (err < 0)
		p->vm_ok = 0;
	if (err < 0 || !vm->found) {
		/* meminfo alone keeps the sampler up; say so once. */
		if (!p->vmstat_warned)
			hitel_sampler_log(s, HITEL_LOG_WARNING, "%s: %s",
					  hitel_procfile_path(p->vmstat),
					  err < 0 ? strerror(-err) : "no known counter");
		p->vmstat_warned = 1;
		return;
	}
	for (i = 0; i < NVMSTAT; i++) {
		if (!(vm->found & (1u << i)))
			continue;
		if (!p->vm_series[i]) {
			p->vm_series[i] = hitel_registry_series(hitel_sampler_registry(s),
								&vmstat_descs[i], NULL, 0);
			if (!p->vm_series[i])
				continue;
		}
		hitel_series_counter(p->vm_series[i], vm->v[i], now_ns);
	}
}

static int memory_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct memory_priv *p = hitel_sampler_priv(s);
	struct meminfo *m = &p->m;
	const char *buf;
	size_t len;
	unsigned int i;
	int err, same;

	err = hitel_sampler_read_same(s, p->meminfo, &buf, &len, &same);
	if (err < 0)
		return err;
	/* A content that failed to parse is parsed (and fails) again. */
	if (!same || !m->found)
		parse_meminfo(buf, len, m);
	if (!m->found) {
		hitel_sampler_fail(s, "no known field in %s", hitel_procfile_path(p->meminfo));
		return -EINVAL;
	}
	for (i = 0; i < NMEMINFO; i++) {
		if (!(m->found & (1u << i)))
			continue;
		if (!p->mem_series[i]) {
			p->mem_series[i] = hitel_registry_series(hitel_sampler_registry(s),
								 &meminfo_fields[i].desc, NULL, 0);
			if (!p->mem_series[i])
				continue;
		}
		hitel_series_gauge(p->mem_series[i], m->bytes[i], now_ns);
	}
	if (p->vmstat)
		read_vmstat(s, p, now_ns);
	return 0;
}

static void memory_fini(struct hitel_sampler *s)
{
	struct memory_priv *p = hitel_sampler_priv(s);

	hitel_procfile_free(p->meminfo);
	hitel_procfile_free(p->vmstat);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_memory = {
	.name = "memory",
	.help = "Memory levels from /proc/meminfo; paging, swap, reclaim and OOM kills from "
		"/proc/vmstat.",
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct memory_priv),
	.init = memory_init,
	.read = memory_read,
	.fini = memory_fini,
};
