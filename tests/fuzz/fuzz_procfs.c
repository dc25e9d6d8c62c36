/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the procfs samplers' parsers (coverage-guided; the
 * deterministic suite tests/unit/check_fuzz.c runs in make check). Not wired
 * into make: build and run it by hand from the top of the source tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -DTOP_SRCDIR="\"$PWD\"" -Icore -I. \
 *     core/hist.c core/log.c core/procfile.c core/registry.c core/engine.c \
 *     core/samplers/{cpu,memory,disk,network,netstat,softnet,scheduler}.c \
 *     core/samplers/{pressure,process,self}.c \
 *     tests/fuzz/fuzz_procfs.c -o fuzz_procfs -lm -lpthread
 *   mkdir -p corpus && ./fuzz_procfs -max_total_time=300 corpus
 *
 * It defines the sampler table itself (core/samplers.c would pull in the
 * BPF and perf samplers): do not link core/samplers.c.
 *
 * Input: the first byte picks a (sampler, file) pair from the table below,
 * the rest is that file's content. Each input gets a fresh engine over a
 * tmpfs root holding the sampler's base fixture, runs two passes, and puts
 * the base file back. A sampler down without a reason aborts.
 * HITEL_FIXTURES overrides the fixture directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"
#include "sampler.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

extern const struct hitel_sampler_ops hitel_sampler_cpu, hitel_sampler_memory,
	hitel_sampler_disk, hitel_sampler_network, hitel_sampler_netstat, hitel_sampler_softnet,
	hitel_sampler_scheduler, hitel_sampler_pressure, hitel_sampler_process,
	hitel_sampler_self;

const struct hitel_sampler_ops *const hitel_builtin_samplers[] = {
	&hitel_sampler_cpu,	  &hitel_sampler_memory,   &hitel_sampler_disk,
	&hitel_sampler_network,	  &hitel_sampler_netstat,  &hitel_sampler_softnet,
	&hitel_sampler_scheduler, &hitel_sampler_pressure, &hitel_sampler_process,
	&hitel_sampler_self,	  NULL,
};

const struct hitel_sampler_ops *hitel_sampler_ops_find(const char *name)
{
	size_t i;

	for (i = 0; hitel_builtin_samplers[i]; i++)
		if (strcmp(hitel_builtin_samplers[i]->name, name) == 0)
			return hitel_builtin_samplers[i];
	return NULL;
}

struct target {
	const char *sampler, *base, *file, *real;
	const char *opts[12];
};

#define PROCESS_OPTS                                                                           \
	{ "name", "web:nginx", "name", "odd:a) b (", "name", "py:python3*", "pidfile",         \
	  "app:/run/app.pid", "cgroup", "db:/sys/fs/cgroup/system.slice/db.service" }

static const struct target targets[] = {
	{ "cpu", "cpu/debian12-6.18", "proc/stat", "/proc/stat", { "percpu", "true" } },
	{ "memory", "memory/debian12-6.18", "proc/meminfo", "/proc/meminfo", { NULL } },
	{ "memory", "memory/debian12-6.18", "proc/vmstat", "/proc/vmstat", { NULL } },
	{ "disk", "disk/debian12-6.18", "proc/diskstats", "/proc/diskstats", { NULL } },
	{ "network", "network/debian12-6.18", "proc/net/dev", "/proc/net/dev", { NULL } },
	{ "netstat", "netstat/debian12-6.18", "proc/net/snmp", "/proc/net/snmp", { NULL } },
	{ "netstat", "netstat/debian12-6.18", "proc/net/netstat", "/proc/net/netstat", { NULL } },
	{ "softnet", "softnet/debian12-6.18", "proc/net/softnet_stat", "/proc/net/softnet_stat",
	  { NULL } },
	{ "scheduler", "scheduler/debian12-6.18", "proc/stat", "/proc/stat", { NULL } },
	{ "scheduler", "scheduler/debian12-6.18", "proc/loadavg", "/proc/loadavg", { NULL } },
	{ "pressure", "pressure/debian12-6.18", "proc/pressure/cpu", "/proc/pressure/cpu",
	  { NULL } },
	{ "pressure", "pressure/debian12-6.18", "proc/pressure/memory", "/proc/pressure/memory",
	  { NULL } },
	{ "process", "process/basic", "proc/100/stat", NULL, PROCESS_OPTS },
	{ "process", "process/basic", "proc/100/status", NULL, PROCESS_OPTS },
	{ "process", "process/basic", "proc/100/io", NULL, PROCESS_OPTS },
	{ "process", "process/basic", "proc/100/comm", NULL, PROCESS_OPTS },
	{ "process", "process/basic", "sys/fs/cgroup/system.slice/db.service/cgroup.procs", NULL,
	  PROCESS_OPTS },
	{ "process", "process/basic", "run/app.pid", NULL, PROCESS_OPTS },
	{ "self", NULL, "proc/self/statm", "/proc/self/statm", { NULL } },
	{ "self", NULL, "proc/self/stat", "/proc/self/stat", { NULL } },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

struct blob {
	char *p;
	size_t len;
};

/* One root per target, built once; base holds the file's original bytes. */
static char roots[NTARGETS][64];
static struct blob base[NTARGETS];

static int slurp(const char *path, struct blob *b)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	b->p = NULL;
	b->len = 0;
	if (fd < 0)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		b->p = realloc(b->p, b->len + (size_t)n);
		if (!b->p)
			abort();
		memcpy(b->p + b->len, chunk, (size_t)n);
		b->len += (size_t)n;
	}
	close(fd);
	return 0;
}

static void spew(const char *root, const char *rel, const void *p, size_t len)
{
	char path[PATH_MAX], *s;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (s = path + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(path, 0755);
			*s = '/';
		}
	}
	/* In place (same inode): samplers keep their files open. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || (len && write(fd, p, len) != (ssize_t)len))
		abort();
	close(fd);
}

static const char *copy_src, *copy_dst;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct blob b;

	(void)st;
	(void)ftw;
	if (flag != FTW_F)
		return 0;
	if (slurp(path, &b) == 0) {
		spew(copy_dst, path + strlen(copy_src) + 1, b.p, b.len);
		free(b.p);
	}
	return 0;
}

static const char *fixtures(void)
{
	const char *f = getenv("HITEL_FIXTURES");

	return f && *f ? f : TOP_SRCDIR "/tests/fixtures";
}

static void discard(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)level;
	(void)msg;
	(void)ctx;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	size_t i;

	for (i = 0; i < NTARGETS; i++)
		if (roots[i][0])
			nftw(roots[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(size_t i)
{
	const struct target *t = &targets[i];
	char path[PATH_MAX];

	snprintf(roots[i], sizeof(roots[i]), "%s/hitel-fuzz-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(roots[i]))
		abort();
	if (t->base) {
		snprintf(path, sizeof(path), "%s/%s", fixtures(), t->base);
		copy_src = path;
		copy_dst = roots[i];
		nftw(path, copy_one, 16, FTW_PHYS);
	}
	snprintf(path, sizeof(path), "%s/%s", roots[i], t->file);
	if (slurp(path, &base[i]) < 0 && (!t->real || slurp(t->real, &base[i]) < 0)) {
		fprintf(stderr, "fuzz_procfs: no seed for %s %s\n", t->sampler, t->file);
		abort();
	}
	spew(roots[i], t->file, base[i].p, base[i].len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hitel_sampler_status st;
	const struct target *t;
	struct hitel_engine *e;
	struct hitel_sampler *s;
	char err[256];
	size_t i, k;

	if (size < 1)
		return 0;
	i = data[0] % NTARGETS;
	t = &targets[i];
	if (!roots[i][0]) {
		static int once;

		if (!once++)
			atexit(cleanup);
		hitel_log_set(discard, NULL);
		hitel_log_set_level(HITEL_LOG_DEBUG);
		setup(i);
	}
	spew(roots[i], t->file, data + 1, size - 1);

	e = hitel_engine_new();
	if (!e || hitel_engine_set(e, "root", roots[i], err, sizeof(err)) < 0 ||
	    hitel_engine_set(e, "max_series", "64", err, sizeof(err)) < 0 ||
	    hitel_engine_set(e, "rate_grouping_power", "2", err, sizeof(err)) < 0)
		abort();
	s = hitel_engine_sampler_add(e, t->sampler);
	if (!s)
		abort();
	for (k = 0; k + 1 < sizeof(t->opts) / sizeof(t->opts[0]) && t->opts[k]; k += 2)
		if (hitel_sampler_set(s, t->opts[k], t->opts[k + 1], err, sizeof(err)) < 0)
			abort();
	for (k = 1; k <= 2; k++) {
		hitel_engine_run_once(e, k * 1100000000ULL);
		if (hitel_engine_sampler_status(e, 0, &st) < 0 || (!st.up && !st.reason[0])) {
			fprintf(stderr, "fuzz_procfs: %s down without a reason\n", t->sampler);
			abort();
		}
	}
	hitel_engine_free(e);
	spew(roots[i], t->file, base[i].p, base[i].len);
	return 0;
}
