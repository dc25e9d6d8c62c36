/* SPDX-License-Identifier: MIT */
/*
 * process sampler: exact values on a fake proc tree (tests/fixtures/process/
 * basic: odd comm names, a kernel thread, pids without io or fd, pidfiles,
 * a cgroup), monotonic aggregation across pid exit and pid reuse, the once a
 * second rescan, option errors, and a live child watched through a pidfile.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define NS 1000000000ULL

static uint64_t ticks_ns(uint64_t ticks)
{
	return ticks * NS / (uint64_t)sysconf(_SC_CLK_TCK);
}

/* ---- helpers ---------------------------------------------------------------- */

static const char *copy_src;
static const char *copy_dst;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char out[PATH_MAX];
	char buf[8192];
	ssize_t n;
	int in, fd;

	(void)ftw;
	snprintf(out, sizeof(out), "%s%s", copy_dst, path + strlen(copy_src));
	if (flag == FTW_D)
		return mkdir(out, st->st_mode & 0777) < 0 && errno != EEXIST ? -1 : 0;
	if (flag != FTW_F)
		return 0;
	in = open(path, O_RDONLY);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(fd, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	close(in);
	close(fd);
	return 0;
}

/* A writable copy of a fixture tree; the caller frees and tu_rmtree()s it. */
static char *fixture_copy(const char *rel)
{
	char *src = tu_fixture(rel);
	char *dst = tu_tmpdir();

	copy_src = src;
	copy_dst = dst;
	ck_assert_int_eq(nftw(src, copy_one, 16, FTW_PHYS), 0);
	free(src);
	return dst;
}

static struct hitel_engine *engine_with(const char *root, const char *const *opts)
{
	struct hitel_engine *e = tu_engine("process", root);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "process");
	char err[256];

	ck_assert_ptr_nonnull(s);
	for (; opts && opts[0]; opts += 2) {
		err[0] = '\0';
		ck_assert_msg(hitel_sampler_set(s, opts[0], opts[1], err, sizeof(err)) == 0,
			      "%s=%s: %s", opts[0], opts[1], err);
	}
	return e;
}

static struct hitel_sampler_status status_of(struct hitel_engine *e)
{
	struct hitel_sampler_status st;
	size_t i;

	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		ck_assert_int_eq(hitel_engine_sampler_status(e, i, &st), 0);
		if (strcmp(st.name, "process") == 0)
			return st;
	}
	ck_abort_msg("no process sampler");
	return st;
}

static const struct hitel_point *find1(const struct hitel_snapshot *snap, const char *family,
				       const char *label, const char *extra)
{
	char spec[256];

	if (extra)
		snprintf(spec, sizeof(spec), "process=%s,%s", label, extra);
	else
		snprintf(spec, sizeof(spec), "process=%s", label);
	return hitel_snapshot_find(snap, family, spec);
}

static uint64_t val(const struct hitel_snapshot *snap, const char *family, const char *label,
		    const char *extra)
{
	const struct hitel_point *p = find1(snap, family, label, extra);

	ck_assert_msg(p != NULL, "%s{process=%s,%s} missing", family, label,
		      extra ? extra : "");
	return p->value;
}

static uint64_t cpu_total(const struct hitel_snapshot *snap, const char *label)
{
	return val(snap, "process/cpu", label, "mode=user") +
	       val(snap, "process/cpu", label, "mode=system");
}

/* No counter of the watch was ever seen going down. */
static void assert_no_resets(const struct hitel_snapshot *snap, const char *label)
{
	size_t i;

	for (i = 0; i < hitel_snapshot_len(snap); i++) {
		const struct hitel_point *p = hitel_snapshot_point(snap, i);
		const char *l = hitel_point_label(p, "process");

		if (l && strcmp(l, label) == 0 && p->kind == HITEL_KIND_COUNTER)
			ck_assert_msg(p->resets == 0, "%s{process=%s} reset", p->family, label);
	}
}

/* Fake /proc/PID for a process named comm, from numbers. */
static void write_pid(const char *root, int pid, const char *comm, uint64_t utime,
		      uint64_t stime, uint64_t start, uint64_t rchar)
{
	char rel[64], buf[1024];

	snprintf(rel, sizeof(rel), "proc/%d/comm", pid);
	snprintf(buf, sizeof(buf), "%s\n", comm);
	tu_write(root, rel, buf);
	snprintf(rel, sizeof(rel), "proc/%d/stat", pid);
	snprintf(buf, sizeof(buf),
		 "%d (%s) S 1 %d %d 0 -1 4194560 100 0 0 0 %llu %llu 0 0 20 0 1 0 %llu "
		 "50958336 4564 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 "
		 "0 0 0 0 0 0 0 0 0 0\n",
		 pid, comm, pid, pid, (unsigned long long)utime, (unsigned long long)stime,
		 (unsigned long long)start);
	tu_write(root, rel, buf);
	snprintf(rel, sizeof(rel), "proc/%d/status", pid);
	snprintf(buf, sizeof(buf),
		 "Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nVmRSS:\t     100 kB\nThreads:\t1\n"
		 "voluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t1\n",
		 comm, pid);
	tu_write(root, rel, buf);
	snprintf(rel, sizeof(rel), "proc/%d/io", pid);
	snprintf(buf, sizeof(buf),
		 "rchar: %llu\nwchar: 0\nsyscr: 1\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 0\n"
		 "cancelled_write_bytes: 0\n",
		 (unsigned long long)rchar);
	tu_write(root, rel, buf);
}

/* ---- exact values on the fixture tree ----------------------------------------- */

struct expect {
	const char *key, *value, *label;
	uint64_t count, utime, stime, rss_kb, threads, vcsw, ivcsw;
	int has_io;
	uint64_t rchar, wchar, rbytes, wbytes;
	int64_t fds; /* -1: series omitted (no fd directory) */
};

/* Sums over the fixture's pids (see tests/fixtures/process/basic/proc). */
static const struct expect expects[] = {
	/* 100 + 101 */
	{ "name", "web:nginx", "web", 2, 2650, 1275, 24576, 5, 51000, 710, 1, 1005000, 2003000,
	  4096, 417792, 8 },
	/* comm with spaces and parentheses, label defaults to the name */
	{ "name", "my (odd) app", "my (odd) app", 1, 7, 3, 1024, 2, 12, 3, 1, 10, 20, 0, 0, 1 },
	/* "103 (a) b () S ...": the last ')' ends comm */
	{ "name", "odd:a) b (", "odd", 1, 11, 22, 512, 1, 5, 6, 1, 1, 2, 3, 4, -1 },
	/* kernel thread: no VmRSS line */
	{ "name", "kt:kthreadd", "kt", 1, 0, 9, 0, 1, 60, 0, 1, 0, 0, 0, 0, -1 },
	/* glob: python3 (200) and python3.11 (201) */
	{ "name", "py:python3*", "py", 2, 440, 110, 67584, 4, 330, 44, 1, 7854, 8976, 111, 222,
	  6 },
	/* literal: python3 only */
	{ "name", "py3:python3", "py3", 1, 400, 100, 65536, 3, 300, 40, 1, 7777, 8888, 111, 222,
	  4 },
	{ "pidfile", "app:/run/app.pid", "app", 1, 400, 100, 65536, 3, 300, 40, 1, 7777, 8888,
	  111, 222, 4 },
	/* 300 has no io file: io sums 301 only */
	{ "cgroup", "db:/sys/fs/cgroup/system.slice/db.service", "db", 2, 1010, 505, 135168, 2,
	  4040, 202, 1, 100, 200, 300, 400, 8 },
	/* only pid 300, whose io is unreadable: io series omitted */
	{ "pidfile", "pg:/run/pg.pid", "pg", 1, 1000, 500, 131072, 1, 4000, 200, 0, 0, 0, 0, 0,
	  6 },
	{ "pidfile", "stale:/run/stale.pid", "stale", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1 },
	{ "pidfile", "garbage:/run/garbage.pid", "garbage", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	  -1 },
	{ "pidfile", "missing:/run/missing.pid", "missing", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	  -1 },
	{ "name", "none:nosuchprocess", "none", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1 },
};
#define NEXPECTS (sizeof(expects) / sizeof(expects[0]))

static void check_expect(const struct hitel_snapshot *snap, const struct expect *x)
{
	const char *l = x->label;
	const struct hitel_point *p;

	ck_assert_uint_eq(val(snap, "process/instances", l, NULL), x->count);
	ck_assert_uint_eq(val(snap, "process/cpu", l, "mode=user"), ticks_ns(x->utime));
	ck_assert_uint_eq(val(snap, "process/cpu", l, "mode=system"), ticks_ns(x->stime));
	ck_assert_uint_eq(val(snap, "process/memory/rss", l, NULL), x->rss_kb * 1024);
	ck_assert_uint_eq(val(snap, "process/threads", l, NULL), x->threads);
	ck_assert_uint_eq(val(snap, "process/context_switches", l, "kind=voluntary"), x->vcsw);
	ck_assert_uint_eq(val(snap, "process/context_switches", l, "kind=involuntary"), x->ivcsw);
	if (x->has_io) {
		ck_assert_uint_eq(val(snap, "process/io/chars", l, "op=read"), x->rchar);
		ck_assert_uint_eq(val(snap, "process/io/chars", l, "op=write"), x->wchar);
		ck_assert_uint_eq(val(snap, "process/io/bytes", l, "op=read"), x->rbytes);
		ck_assert_uint_eq(val(snap, "process/io/bytes", l, "op=write"), x->wbytes);
	} else {
		ck_assert_ptr_null(find1(snap, "process/io/chars", l, "op=read"));
		ck_assert_ptr_null(find1(snap, "process/io/bytes", l, "op=write"));
	}
	p = find1(snap, "process/fds", l, NULL);
	if (x->fds < 0)
		ck_assert_msg(p == NULL, "process/fds{process=%s} should be omitted", l);
	else
		ck_assert_uint_eq(val(snap, "process/fds", l, NULL), (uint64_t)x->fds);
}

START_TEST(test_fixture_values)
{
	char *root = tu_fixture("process/basic");
	const char *opts[2 * NEXPECTS + 1];
	struct hitel_snapshot *snap;
	struct hitel_engine *e;
	size_t i;

	for (i = 0; i < NEXPECTS; i++) {
		opts[2 * i] = expects[i].key;
		opts[2 * i + 1] = expects[i].value;
	}
	opts[2 * NEXPECTS] = NULL;
	e = engine_with(root, opts);
	/* The second pass, 100 ms later, reads known pids without a rescan:
	 * same files, same values. */
	ck_assert_int_eq(hitel_engine_run_once(e, 5 * NS), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 5 * NS + NS / 10), 0);
	ck_assert_int_eq(status_of(e).up, 1);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	for (i = 0; i < NEXPECTS; i++)
		check_expect(snap, &expects[i]);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* ---- aggregation stays monotonic ---------------------------------------------- */

START_TEST(test_monotonic_across_exit)
{
	char *root = fixture_copy("process/basic");
	const char *opts[] = { "name", "web:nginx", NULL };
	struct hitel_engine *e = engine_with(root, opts);
	struct hitel_snapshot *snap;
	char path[PATH_MAX];
	uint64_t user0, sys0, rchar0, vcsw0;

	ck_assert_int_eq(hitel_engine_run_once(e, 1 * NS), 0);
	snap = hitel_engine_snapshot(e);
	user0 = val(snap, "process/cpu", "web", "mode=user");
	sys0 = val(snap, "process/cpu", "web", "mode=system");
	rchar0 = val(snap, "process/io/chars", "web", "op=read");
	vcsw0 = val(snap, "process/context_switches", "web", "kind=voluntary");
	hitel_snapshot_free(snap);

	/* The worker works (between rescans: the known pid is re-read). */
	write_pid(root, 101, "nginx", 2600, 1200, 1240, 1000500);
	ck_assert_int_eq(hitel_engine_run_once(e, 1 * NS + NS / 2), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=user"), user0 + ticks_ns(100));
	ck_assert_uint_eq(val(snap, "process/io/chars", "web", "op=read"), rchar0 + 500);
	/* The rewritten status has vcsw 1: a drop is not fed as negative. */
	ck_assert_uint_eq(val(snap, "process/context_switches", "web", "kind=voluntary"),
			  vcsw0);
	hitel_snapshot_free(snap);

	/* It exits: the rescan drops it, its share stays in the counters. */
	snprintf(path, sizeof(path), "%s/proc/101", root);
	tu_rmtree(path);
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * NS + NS / 10), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 1);
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=user"), user0 + ticks_ns(100));
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=system"), sys0);
	ck_assert_uint_eq(val(snap, "process/memory/rss", "web", NULL), 8192 * 1024);
	ck_assert_uint_eq(val(snap, "process/fds", "web", NULL), 3);
	hitel_snapshot_free(snap);

	/* A new worker counts from its own start, on top. */
	write_pid(root, 105, "nginx", 20, 4, 8000, 300);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * NS + NS / 5), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 2);
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=user"), user0 + ticks_ns(120));
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=system"), sys0 + ticks_ns(4));
	ck_assert_uint_eq(val(snap, "process/io/chars", "web", "op=read"), rchar0 + 800);
	assert_no_resets(snap, "web");
	ck_assert_int_eq(status_of(e).up, 1);
	hitel_snapshot_free(snap);

	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_pid_reuse)
{
	char *root = fixture_copy("process/basic");
	const char *opts[] = { "name", "web:nginx", NULL };
	struct hitel_engine *e = engine_with(root, opts);
	struct hitel_snapshot *snap;
	uint64_t user0;

	ck_assert_int_eq(hitel_engine_run_once(e, 1 * NS), 0);
	snap = hitel_engine_snapshot(e);
	user0 = val(snap, "process/cpu", "web", "mode=user");
	hitel_snapshot_free(snap);

	/* pid 100 exited and a new process got its number: smaller counters,
	 * another starttime. Not a drop of the aggregate. */
	write_pid(root, 100, "nginx", 5, 1, 99999, 10);
	ck_assert_int_eq(hitel_engine_run_once(e, 1 * NS + NS / 5), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 1);
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=user"), user0);
	hitel_snapshot_free(snap);

	/* The rescan takes the new process in, from zero. */
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * NS + NS / 5), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 2);
	ck_assert_uint_eq(val(snap, "process/cpu", "web", "mode=user"), user0 + ticks_ns(5));
	assert_no_resets(snap, "web");
	hitel_snapshot_free(snap);

	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_rescan_once_per_second)
{
	char *root = fixture_copy("process/basic");
	const char *opts[] = { "name", "web:nginx", NULL };
	struct hitel_engine *e = engine_with(root, opts);
	struct hitel_snapshot *snap;

	ck_assert_int_eq(hitel_engine_run_once(e, 10 * NS), 0);
	write_pid(root, 106, "nginx", 1, 1, 9000, 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * NS + NS / 2), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 2);
	hitel_snapshot_free(snap);
	ck_assert_int_eq(hitel_engine_run_once(e, 11 * NS), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "web", NULL), 3);
	hitel_snapshot_free(snap);

	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* More pids than the open-file budget: the rest are read with
 * open/read/close, with the same results. */
START_TEST(test_many_pids)
{
	char *root = tu_tmpdir();
	const char *opts[] = { "name", "w:worker", NULL };
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	uint64_t sum = 0;
	int pid;

	for (pid = 1000; pid < 1300; pid++) {
		write_pid(root, pid, "worker", (uint64_t)pid, 0, 500, 0);
		sum += (uint64_t)pid;
	}
	write_pid(root, 1300, "other", 1, 1, 500, 0);
	e = engine_with(root, opts);
	ck_assert_int_eq(hitel_engine_run_once(e, NS), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/instances", "w", NULL), 300);
	ck_assert_uint_eq(val(snap, "process/cpu", "w", "mode=user"), ticks_ns(sum));
	ck_assert_uint_eq(val(snap, "process/threads", "w", NULL), 300);
	hitel_snapshot_free(snap);

	write_pid(root, 1000, "worker", 1007, 0, 500, 0);
	write_pid(root, 1299, "worker", 1299 + 9, 0, 500, 0);
	ck_assert_int_eq(hitel_engine_run_once(e, NS + NS / 10), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(snap, "process/cpu", "w", "mode=user"), ticks_ns(sum + 16));
	hitel_snapshot_free(snap);

	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* ---- idle, options ------------------------------------------------------------ */

static char logged[4096];

static void capture_log(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == HITEL_LOG_INFO && strlen(logged) + strlen(msg) + 2 < sizeof(logged)) {
		strcat(logged, msg);
		strcat(logged, "\n");
	}
}

START_TEST(test_idle_without_watch)
{
	char *root = tu_fixture("process/basic");
	struct hitel_engine *e = engine_with(root, NULL);
	struct hitel_snapshot *snap;
	size_t i;

	logged[0] = '\0';
	hitel_log_set(capture_log, NULL);
	hitel_log_set_level(HITEL_LOG_INFO);
	ck_assert_int_eq(hitel_engine_run_once(e, NS), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * NS), 0);
	hitel_log_set(NULL, NULL);
	hitel_log_set_level(HITEL_LOG_WARNING);
	ck_assert_msg(strstr(logged, "hitel process: ") && strstr(logged, "idle"),
		      "no INFO line saying the sampler is idle: %s", logged);
	ck_assert_int_eq(status_of(e).up, 1);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < hitel_snapshot_len(snap); i++)
		ck_assert_msg(strncmp(hitel_snapshot_point(snap, i)->family, "process/", 8) != 0,
			      "idle sampler made %s", hitel_snapshot_point(snap, i)->family);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

static const struct {
	const char *key, *value;
	int ret;
} option_cases[] = {
	{ "name", "", -EINVAL },
	{ "name", ":nginx", -EINVAL },
	{ "name", "web:", -EINVAL },
	{ "pidfile", "/run/x.pid", -EINVAL },
	{ "pidfile", ":/run/x.pid", -EINVAL },
	{ "pidfile", "x:run/x.pid", -EINVAL },
	{ "pidfile", "x:", -EINVAL },
	{ "pidfile", "bad label:/run/x.pid", -EINVAL },
	{ "cgroup", "db", -EINVAL },
	{ "cgroup", "db:sys/fs/cgroup/db", -EINVAL },
	{ "cgroup", ":/sys/fs/cgroup/db", -EINVAL },
	{ "frobnicate", "x", -ENOENT },
	{ "name", "nginx", 0 },
	{ "name", "web:nginx", 0 },
	{ "name", "kworker/0:1", 0 }, /* comm with a ':' after a non-label */
	{ "name", "py:python3*", 0 },
	{ "pidfile", "app:/run/app.pid", 0 },
	{ "cgroup", "db:/sys/fs/cgroup/db/", 0 },
};

START_TEST(test_options)
{
	struct hitel_engine *e = tu_engine("process", NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "process");
	char err[256] = "";
	int ret;

	ret = hitel_sampler_set(s, option_cases[_i].key, option_cases[_i].value, err, sizeof(err));
	ck_assert_msg(ret == option_cases[_i].ret, "%s=\"%s\": got %d, want %d (%s)",
		      option_cases[_i].key, option_cases[_i].value, ret, option_cases[_i].ret,
		      err);
	if (ret == -EINVAL)
		ck_assert_msg(strstr(err, option_cases[_i].key) != NULL,
			      "message does not name the option: \"%s\"", err);
	if (ret < 0)
		ck_assert_msg(err[0] != '\0', "no message");
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_duplicate_label)
{
	char *root = tu_fixture("process/basic");
	const char *opts[] = { "name", "web:nginx", "pidfile", "web:/run/app.pid", NULL };
	struct hitel_engine *e = engine_with(root, opts);
	struct hitel_sampler_status st;

	hitel_log_set_level(HITEL_LOG_ERR); /* the expected failure */
	ck_assert_int_eq(hitel_engine_run_once(e, NS), 0);
	hitel_log_set_level(HITEL_LOG_WARNING);
	st = status_of(e);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "duplicate") && strstr(st.reason, "web"), "reason: %s",
		      st.reason);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* include/exclude apply to watch labels. */
START_TEST(test_exclude_label)
{
	char *root = tu_fixture("process/basic");
	const char *opts[] = { "name", "web:nginx", "pidfile", "app:/run/app.pid", "exclude",
			       "we*", NULL };
	struct hitel_engine *e = engine_with(root, opts);
	struct hitel_snapshot *snap;

	ck_assert_int_eq(hitel_engine_run_once(e, NS), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_null(find1(snap, "process/instances", "web", NULL));
	ck_assert_uint_eq(val(snap, "process/instances", "app", NULL), 1);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* ---- live: a child burning CPU and writing, watched by pidfile ---------------- */

#define BURN_NS 300000000ULL
#define WRITE_BYTES (1u << 20)

static uint64_t cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void child(int go, int done)
{
	static char block[4096];
	volatile uint64_t x = 1;
	uint64_t t0;
	unsigned int written = 0;
	int null = open("/dev/null", O_WRONLY);
	char c;

	if (null < 0 || read(go, &c, 1) != 1)
		_exit(1);
	t0 = cpu_now();
	while (cpu_now() - t0 < BURN_NS || written < WRITE_BYTES) {
		int i;

		for (i = 0; i < 10000; i++)
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		if (written < WRITE_BYTES && write(null, block, sizeof(block)) > 0)
			written += sizeof(block);
	}
	if (write(done, "d", 1) != 1)
		_exit(1);
	/* Stay alive (and readable) until the parent closes the pipe. */
	while (read(go, &c, 1) > 0)
		;
	_exit(0);
}

START_TEST(test_live_child)
{
	char *dir;
	char pidfile[PATH_MAX], opt[PATH_MAX + 8], buf[32];
	const char *opts[] = { "pidfile", opt, NULL };
	struct hitel_snapshot *s1, *s2, *s3;
	struct hitel_engine *e;
	int go[2], done[2], wst;
	uint64_t cpu1, cpu2, w1, w2;
	pid_t pid;
	char c;

	/* Fork before allocating anything, so the child (which leaves with
	 * _exit) owns no memory that valgrind would report as lost. */
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		child(go[0], done[1]);
	}
	close(go[0]);
	close(done[1]);

	dir = tu_tmpdir();
	snprintf(pidfile, sizeof(pidfile), "%s/child.pid", dir);
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	tu_write(dir, "child.pid", buf);
	snprintf(opt, sizeof(opt), "kid:%s", pidfile);
	e = engine_with(NULL, opts);

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	s1 = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(s1, "process/instances", "kid", NULL), 1);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(done[0], &c, 1), 1);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	s2 = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(s2, "process/instances", "kid", NULL), 1);

	cpu1 = cpu_total(s1, "kid");
	cpu2 = cpu_total(s2, "kid");
	w1 = val(s1, "process/io/chars", "kid", "op=write");
	w2 = val(s2, "process/io/chars", "kid", "op=write");
	/* Tick-based accounting: allow generous slack below 300 ms. */
	ck_assert_msg(cpu2 - cpu1 >= BURN_NS / 2, "cpu grew %llu ns, burned >= %llu",
		      (unsigned long long)(cpu2 - cpu1), BURN_NS);
	ck_assert_msg(w2 - w1 >= WRITE_BYTES, "wchar grew %llu, wrote %u",
		      (unsigned long long)(w2 - w1), WRITE_BYTES);
	ck_assert_uint_ge(val(s2, "process/memory/rss", "kid", NULL), 4096);
	ck_assert_uint_ge(val(s2, "process/fds", "kid", NULL), 3);
	ck_assert_uint_eq(val(s2, "process/threads", "kid", NULL), 1);

	/* The child exits and is reaped: count 0, counters keep their value. */
	close(go[1]);
	ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
	ck_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now() + 2 * NS), 0);
	s3 = hitel_engine_snapshot(e);
	ck_assert_uint_eq(val(s3, "process/instances", "kid", NULL), 0);
	ck_assert_uint_eq(cpu_total(s3, "kid"), cpu2);
	assert_no_resets(s3, "kid");
	ck_assert_int_eq(status_of(e).up, 1);

	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_snapshot_free(s3);
	hitel_engine_free(e);
	close(done[0]);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("process");
	TCase *tc = tcase_create("fixture");

	tcase_add_test(tc, test_fixture_values);
	tcase_add_test(tc, test_monotonic_across_exit);
	tcase_add_test(tc, test_pid_reuse);
	tcase_add_test(tc, test_rescan_once_per_second);
	tcase_add_test(tc, test_many_pids);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_test(tc, test_idle_without_watch);
	tcase_add_loop_test(tc, test_options, 0,
			    (int)(sizeof(option_cases) / sizeof(option_cases[0])));
	tcase_add_test(tc, test_duplicate_label);
	tcase_add_test(tc, test_exclude_label);
	suite_add_tcase(s, tc);

	tc = tcase_create("live");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_live_child);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
