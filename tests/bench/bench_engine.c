/* SPDX-License-Identifier: MIT */
/*
 * CPU cost of oversampling: the engine with the default samplers at 100 Hz
 * against a bare loop that wakes on the same absolute deadlines and only
 * preads the same files at the same rates (no parsing, no histograms).
 *
 * The bare loop's file list is not hard-coded: each default sampler runs
 * alone for a while with pread() counted per descriptor (this program's
 * pread() stands in for libc's), and the files it read are named from
 * /proc/self/fd with the rate each was read at. So the baseline follows the
 * samplers as they change, including files a sampler reads less often than
 * its own rate (disk reads /proc/diskstats once a second).
 *
 *   bench_engine engine SECONDS [SAMPLER...] -> "engine <cpu fraction> missed N bpf <f>"
 *   bench_engine bare SECONDS [SAMPLER...]   -> "bare <cpu fraction>"
 *   bench_engine pair SECONDS [SAMPLER...]   -> both lines, from an engine and
 *                                              its bare loop run side by side
 *   bench_engine pair-swapped | pair-bare ... -> the same with the roles
 *                                              swapped, or a bare loop in
 *                                              both (see run_pair)
 * A pair runs the two at once, in two processes whose wake-ups are half a
 * period apart, so both see the same minutes of this shared machine: the
 * noise that moves successive runs by 15-20 % largely cancels in their
 * ratio.
 * bpf <f> is the CPU fraction the kernel spent in the run's BPF programs
 * (kernel.bpf_stats_enabled on while an eBPF sampler runs), charged to the
 * tasks the events hit, not to this process.
 * Without SAMPLER, or with "default": the default samplers whose work is
 * reading files (perf and eBPF samplers read counters and maps a file loop
 * has no equivalent for; "engine ... all" measures the whole default set).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "engine.h"
#include "log.h"

#define MAXF 256

struct file {
	char path[256];
	unsigned int hz;
	int fd;
};

static struct file files[MAXF];
static size_t nfiles;

static int seen(const char *path)
{
	size_t i;

	for (i = 0; i < nfiles; i++)
		if (strcmp(files[i].path, path) == 0)
			return 1;
	return 0;
}

#define MAXFD 1024

static void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL) };

	while (nanosleep(&ts, &ts) == EINTR)
		;
}
#define DISCOVER_NS 2000000000ULL

/* Reads from offset 0 (a whole-file read starts there) per descriptor,
 * while discover() counts. */
static unsigned long fd_reads[MAXFD];
static int counting;

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (counting && off == 0 && fd >= 0 && fd < MAXFD)
		__atomic_add_fetch(&fd_reads[fd], 1, __ATOMIC_RELAXED);
	return syscall(SYS_pread64, fd, buf, n, off);
}

/* Files a sampler reads, each with the rate it reads it at. */
static void discover(const struct hitel_sampler_ops *ops)
{
	struct hitel_engine *e = hitel_engine_new();
	DIR *d;
	struct dirent *de;
	uint64_t t0;

	if (!e || !hitel_engine_sampler_add(e, ops->name) || hitel_engine_start(e) < 0)
		return;
	/* Past init, then count. */
	bench_sleep_ns(DISCOVER_NS / 4);
	memset(fd_reads, 0, sizeof(fd_reads));
	t0 = bench_ns();
	__atomic_store_n(&counting, 1, __ATOMIC_SEQ_CST);
	bench_sleep_ns(DISCOVER_NS);
	__atomic_store_n(&counting, 0, __ATOMIC_SEQ_CST);
	t0 = bench_ns() - t0;
	hitel_engine_stop(e);
	d = opendir("/proc/self/fd");
	while (d && (de = readdir(d)) && nfiles < MAXF) {
		char link[300], target[256];
		struct stat sb;
		ssize_t n;
		int fd = atoi(de->d_name);
		double hz;

		if (fd <= 0 || fd >= MAXFD || !fd_reads[fd])
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if ((strncmp(target, "/proc/", 6) && strncmp(target, "/sys/", 5)) ||
		    stat(target, &sb) < 0 || S_ISDIR(sb.st_mode) || seen(target))
			continue;
		hz = (double)fd_reads[fd] * 1e9 / (double)t0;
		snprintf(files[nfiles].path, sizeof(files[nfiles].path), "%s", target);
		files[nfiles].hz = hz < 1.5 ? 1 : (unsigned int)(hz + 0.5);
		nfiles++;
	}
	if (d)
		closedir(d);
	hitel_engine_free(e);
}

static double cpu_fraction(uint64_t cpu0, uint64_t t0)
{
	return (double)(bench_cpu_ns() - cpu0) / (double)(bench_ns() - t0);
}

static int run_bare(unsigned int secs, unsigned int hz, const char *label)
{
	static char buf[1 << 17];
	uint64_t period = 1000000000ULL / hz, t0, cpu0, k, ticks = (uint64_t)secs * hz;
	struct timespec ts;
	size_t i;

	for (i = 0; i < nfiles; i++)
		files[i].fd = open(files[i].path, O_RDONLY | O_CLOEXEC);
	prctl(PR_SET_TIMERSLACK, 1UL);
	t0 = bench_ns();
	cpu0 = bench_cpu_ns();
	for (k = 1; k <= ticks; k++) {
		uint64_t dl = t0 + k * period;

		ts.tv_sec = (time_t)(dl / 1000000000ULL);
		ts.tv_nsec = (long)(dl % 1000000000ULL);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		for (i = 0; i < nfiles; i++) {
			off_t off = 0;
			ssize_t n;

			if (files[i].fd < 0 ||
			    k % (files[i].hz < hz ? (hz + files[i].hz / 2) / files[i].hz : 1))
				continue;
			while ((n = pread(files[i].fd, buf, sizeof(buf), off)) > 0)
				off += n;
		}
	}
	printf("%s %.5f\n", label, cpu_fraction(cpu0, t0));
	return 0;
}

/* The default samplers whose work is reading files. */
static int file_default(const struct hitel_sampler_ops *ops)
{
	return ops->default_enabled && strcmp(ops->name, "perf") != 0 &&
	       strncmp(ops->name, "bpf_", 4) != 0;
}

/* Samplers of the run: argv's names, "default" (the default samplers that
 * only read files, also what no name means), "all" (every default
 * sampler). */
static int chosen(const struct hitel_sampler_ops *ops, int argc, char **argv)
{
	int i;

	if (argc == 0)
		return file_default(ops);
	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], ops->name) == 0 ||
		    (strcmp(argv[i], "all") == 0 && ops->default_enabled) ||
		    (strcmp(argv[i], "default") == 0 && file_default(ops)))
			return 1;
	return 0;
}

/* ns the kernel spent in the engine's BPF programs so far (their
 * hitel/bpf/run_time series; read at most twice a second by the samplers,
 * so both ends of a run are equally stale). */
static uint64_t bpf_run_ns(struct hitel_engine *e)
{
	struct hitel_snapshot *snap = hitel_engine_snapshot(e);
	uint64_t sum = 0;
	size_t i;

	for (i = 0; snap && i < hitel_snapshot_len(snap); i++) {
		const struct hitel_point *p = hitel_snapshot_point(snap, i);

		if (strcmp(p->family, "hitel/bpf/run_time") == 0)
			sum += p->value;
	}
	hitel_snapshot_free(snap);
	return sum;
}

static int run_engine(unsigned int secs, int argc, char **argv)
{
	struct hitel_engine *e = hitel_engine_new();
	uint64_t t0, cpu0, bpf0, bpf1;
	double frac;
	size_t i;

	if (!e)
		return 1;
	for (i = 0; hitel_builtin_samplers[i]; i++) {
		const struct hitel_sampler_ops *ops = hitel_builtin_samplers[i];
		struct hitel_sampler *s;
		char err[128];

		if (!chosen(ops, argc, argv))
			continue;
		s = hitel_engine_sampler_add(e, ops->name);
		if (!s)
			return 1;
		/* The programs' kernel time is the eBPF samplers' hidden
		 * cost: it is charged to whatever task the event hit. */
		if (strncmp(ops->name, "bpf_", 4) == 0)
			hitel_sampler_set(s, "bpf_stats", "on", err, sizeof(err));
	}
	if (hitel_engine_start(e) < 0) {
		fprintf(stderr, "engine start failed\n");
		return 1;
	}
	sleep(2); /* past init and a BPF statistics read: the steady state */
	bpf0 = bpf_run_ns(e);
	t0 = bench_ns();
	cpu0 = bench_cpu_ns();
	sleep(secs);
	frac = cpu_fraction(cpu0, t0);
	bpf1 = bpf_run_ns(e);
	printf("engine %.5f missed %llu bpf %.5f\n", frac,
	       (unsigned long long)hitel_engine_missed(e),
	       (double)(bpf1 - bpf0) / (double)(bench_ns() - t0));
	hitel_engine_free(e);
	return 0;
}

/* The engine and the bare loop in two processes, measuring the same
 * seconds, their wake-ups half a 100 Hz period apart. Two identical bare
 * loops paired this way do not cost the same: the forked child, which
 * wakes first, costs ~4 % more than the parent here ("pair-bare" shows
 * it). So the roles are a parameter and the script alternates them:
 *   PAIR_PLAIN:   engine in the child, first; bare loop in the parent;
 *   PAIR_SWAPPED: bare loop in the child, first; engine in the parent;
 *   PAIR_BARE:    a bare loop in each ("bare_child", first, and "bare").
 * The engine measures from 2 s after its start; a bare loop starts 2 s
 * after the fork, or 2 s plus half a period for the second one. */
enum pair_kind { PAIR_PLAIN, PAIR_SWAPPED, PAIR_BARE };

static int run_pair(unsigned int secs, int argc, char **argv, enum pair_kind kind)
{
	int status = 1, ret;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		if (kind == PAIR_PLAIN) {
			ret = run_engine(secs, argc, argv);
		} else {
			bench_sleep_ns(2000000000ULL);
			ret = run_bare(secs, 100, kind == PAIR_BARE ? "bare_child" : "bare");
		}
		fflush(stdout);
		_exit(ret);
	}
	if (kind == PAIR_SWAPPED) {
		bench_sleep_ns(5000000ULL);
		ret = run_engine(secs, argc, argv);
	} else {
		bench_sleep_ns(2005000000ULL);
		ret = run_bare(secs, 100, "bare");
	}
	fflush(stdout);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	return ret ? ret : WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	unsigned int secs = argc > 2 ? (unsigned int)atoi(argv[2]) : 10;
	int bare = argc > 1 && strcmp(argv[1], "bare") == 0;
	int pair = argc > 1 && strcmp(argv[1], "pair") == 0;
	int swapped = argc > 1 && strcmp(argv[1], "pair-swapped") == 0;
	int pair_bare = argc > 1 && strcmp(argv[1], "pair-bare") == 0;
	size_t i;

	hitel_log_set_level(HITEL_LOG_ERR);
	if (argc > 1 && strcmp(argv[1], "engine") == 0)
		return run_engine(secs, argc > 3 ? argc - 3 : 0, argv + 3);
	if (bare || pair || swapped || pair_bare) {
		for (i = 0; hitel_builtin_samplers[i]; i++)
			if (chosen(hitel_builtin_samplers[i], argc > 3 ? argc - 3 : 0, argv + 3))
				discover(hitel_builtin_samplers[i]);
		for (i = 0; i < nfiles; i++)
			fprintf(stderr, "bare loop reads %s at %u Hz\n", files[i].path, files[i].hz);
		if (pair || swapped || pair_bare)
			return run_pair(secs, argc > 3 ? argc - 3 : 0, argv + 3,
					pair ? PAIR_PLAIN : swapped ? PAIR_SWAPPED : PAIR_BARE);
		return run_bare(secs, 100, "bare");
	}
	fprintf(stderr,
		"usage: %s engine|bare|pair|pair-swapped|pair-bare SECONDS "
		"[SAMPLER...|default|all]\n",
		argv[0]);
	return 2;
}
