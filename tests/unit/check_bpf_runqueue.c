/* SPDX-License-Identifier: MIT */
/*
 * bpf_runqueue against the real kernel: two threads ping-pong over pipes on
 * one CPU, and the sampler's counts are compared with the kernel's own
 * per-thread accounting (/proc/self/task/TID/schedstat: run_delay and
 * pcount; /proc/self/task/TID/status: context switch counts). Also: the
 * programs appear in the kernel's program list while the engine lives and
 * are gone after hitel_engine_free(); loading failures leave the sampler
 * down with a reason while another sampler keeps working.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"
#include "bpf_testutil.h"
#include "testutil.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define ROUND_TRIPS 4000
#define YIELDS 2000
#define RQ "scheduler/runqueue/latency"
#define OFFCPU "scheduler/offcpu/time"
#define SWITCHES "scheduler/bpf/context_switches"

/* ---- a second, trivial sampler: must keep working when BPF fails --------- */


/* ---- workload --------------------------------------------------------------- */

struct thread_stat {
	uint64_t run_delay, pcount, nvcsw, nivcsw;
};

struct pong {
	int ab[2], ba[2];
	pid_t tid;
};

static void pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof(set), &set), 0);
}

static void *pong_main(void *arg)
{
	struct pong *pg = arg;
	char c;
	int i;

	pin_cpu0();
	pg->tid = (pid_t)syscall(SYS_gettid);
	for (i = 0; i < ROUND_TRIPS; i++) {
		if (read(pg->ab[0], &c, 1) != 1 || write(pg->ba[1], &c, 1) != 1)
			return NULL;
	}
	for (i = 0; i < YIELDS; i++)
		sched_yield();
	/* Done; stay alive until the main thread has read our statistics. */
	if (write(pg->ba[1], &c, 1) == 1 && read(pg->ab[0], &c, 1) == 1)
		return NULL;
	return NULL;
}

static void thread_stat(pid_t tid, struct thread_stat *st)
{
	char path[96], line[256];
	unsigned long long exec;
	FILE *f;

	memset(st, 0, sizeof(*st));
	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)tid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fscanf(f, "%llu %llu %llu", &exec, (unsigned long long *)&st->run_delay,
				(unsigned long long *)&st->pcount),
			 3);
	fclose(f);
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
			st->nvcsw = v;
		else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
			st->nivcsw = v;
	}
	fclose(f);
}

static void stat_sub(struct thread_stat *a, const struct thread_stat *b)
{
	a->run_delay -= b->run_delay;
	a->pcount -= b->pcount;
	a->nvcsw -= b->nvcsw;
	a->nivcsw -= b->nivcsw;
}

/*
 * Ping-pong ROUND_TRIPS times between this thread and a second one, both on
 * CPU 0, then let both yield YIELDS times; *sum gets the change of both
 * threads' kernel accounting, measured from inside the workload (thread
 * statistics are read while both threads live).
 */
static void ping_pong(struct thread_stat *sum)
{
	struct thread_stat a0, b0, a1, b1;
	struct pong pg;
	pthread_t t;
	cpu_set_t old;
	char c = 'x';
	pid_t me = (pid_t)syscall(SYS_gettid);
	int i;

	ck_assert_int_eq(pthread_getaffinity_np(pthread_self(), sizeof(old), &old), 0);
	pin_cpu0();
	ck_assert_int_eq(pipe(pg.ab), 0);
	ck_assert_int_eq(pipe(pg.ba), 0);
	pg.tid = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, pong_main, &pg), 0);
	/* First round trip: the thread is up and knows its tid. */
	ck_assert_int_eq(write(pg.ab[1], &c, 1), 1);
	ck_assert_int_eq(read(pg.ba[0], &c, 1), 1);
	thread_stat(me, &a0);
	thread_stat(pg.tid, &b0);
	for (i = 1; i < ROUND_TRIPS; i++) {
		ck_assert_int_eq(write(pg.ab[1], &c, 1), 1);
		ck_assert_int_eq(read(pg.ba[0], &c, 1), 1);
	}
	/* Both threads yield to each other: switches away from a runnable
	 * task that was not preempted (involuntary for the kernel). */
	for (i = 0; i < YIELDS; i++)
		sched_yield();
	ck_assert_int_eq(read(pg.ba[0], &c, 1), 1);
	thread_stat(me, &a1);
	thread_stat(pg.tid, &b1);
	ck_assert_int_eq(write(pg.ab[1], &c, 1), 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	close(pg.ab[0]);
	close(pg.ab[1]);
	close(pg.ba[0]);
	close(pg.ba[1]);
	ck_assert_int_eq(pthread_setaffinity_np(pthread_self(), sizeof(old), &old), 0);
	stat_sub(&a1, &a0);
	stat_sub(&b1, &b0);
	sum->run_delay = a1.run_delay + b1.run_delay;
	sum->pcount = a1.pcount + b1.pcount;
	sum->nvcsw = a1.nvcsw + b1.nvcsw;
	sum->nivcsw = a1.nivcsw + b1.nivcsw;
}

/* Context switches of all CPUs, from /proc/stat. */
static uint64_t proc_ctxt(void)
{
	unsigned long long v = 0;
	char line[512];
	FILE *f = fopen("/proc/stat", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "ctxt %llu", &v) == 1)
			break;
	fclose(f);
	ck_assert_uint_gt(v, 0);
	return v;
}

static struct hitel_engine *rq_engine(const char *attach, const char *stats)
{
	struct hitel_engine *e = tu_engine("bpf_runqueue", NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "bpf_runqueue");
	char err[256] = "";

	if (attach)
		ck_assert_msg(hitel_sampler_set(s, "attach", attach, err, sizeof(err)) == 0, "%s",
			      err);
	if (stats)
		ck_assert_msg(hitel_sampler_set(s, "bpf_stats", stats, err, sizeof(err)) == 0,
			      "%s", err);
	return e;
}

static void assert_up(struct hitel_engine *e, const char *name)
{
	struct hitel_sampler_status st;
	size_t i;

	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		ck_assert_int_eq(hitel_engine_sampler_status(e, i, &st), 0);
		if (strcmp(st.name, name) == 0) {
			ck_assert_msg(st.up == 1, "%s down: %s", name, st.reason);
			return;
		}
	}
	ck_abort_msg("no sampler %s", name);
}

/*
 * Run the workload between two reads and check the window against the
 * kernel's accounting of the two threads: every run of theirs after a wait
 * is one run queue latency and one off-CPU time (so at least pcount of each
 * system-wide), their waits add up to run_delay (the kernel's clock and
 * ours differ slightly, and the kernel stamps the queueing a little earlier
 * than the wakeup tracepoint: half of it is a safe floor), and their
 * voluntary and involuntary switches are among ours.
 */
static void check_workload(struct hitel_engine *e)
{
	struct hitel_snapshot *s0, *s1, *w;
	const struct hitel_point *rq, *off, *vol, *invol;
	struct thread_stat k;
	uint64_t p50, p99, ctxt0, ctxt1;

	ctxt0 = proc_ctxt();
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	assert_up(e, "bpf_runqueue");
	s0 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s0);
	ping_pong(&k);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ctxt1 = proc_ctxt();
	s1 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s1);
	w = hitel_snapshot_delta(s0, s1);
	ck_assert_ptr_nonnull(w);

	rq = tu_point(w, RQ, "");
	off = tu_point(w, OFFCPU, "");
	vol = tu_point(w, SWITCHES, "kind=voluntary");
	invol = tu_point(w, SWITCHES, "kind=involuntary");
	ck_assert_ptr_nonnull(rq->hist);
	ck_assert_ptr_nonnull(off->hist);

	ck_assert_uint_ge(k.pcount, ROUND_TRIPS); /* the workload did run */
	ck_assert_msg(hitel_hist_count(rq->hist) >= k.pcount * 98 / 100,
		      "run queue latencies %llu < pcount %llu",
		      (unsigned long long)hitel_hist_count(rq->hist),
		      (unsigned long long)k.pcount);
	ck_assert_msg(hitel_hist_count(off->hist) >= k.pcount * 98 / 100,
		      "off-CPU times %llu < pcount %llu",
		      (unsigned long long)hitel_hist_count(off->hist),
		      (unsigned long long)k.pcount);
	ck_assert_msg(hitel_hist_sum(rq->hist) >= k.run_delay / 2,
		      "run queue latency sum %llu ns < half of run_delay %llu ns",
		      (unsigned long long)hitel_hist_sum(rq->hist),
		      (unsigned long long)k.run_delay);
	ck_assert_msg(vol->value >= k.nvcsw * 98 / 100, "voluntary %llu < nvcsw %llu",
		      (unsigned long long)vol->value, (unsigned long long)k.nvcsw);
	ck_assert_msg(invol->value >= k.nivcsw * 98 / 100, "involuntary %llu < nivcsw %llu",
		      (unsigned long long)invol->value, (unsigned long long)k.nivcsw);
	/* Not more than the kernel's count of all switches (which includes
	 * those away from the idle task), read around our window. */
	ck_assert_msg(vol->value + invol->value <= ctxt1 - ctxt0, "switches %llu > ctxt %llu",
		      (unsigned long long)(vol->value + invol->value),
		      (unsigned long long)(ctxt1 - ctxt0));

	/* Plausible distributions: a wait on an otherwise quiet CPU takes
	 * microseconds, not seconds; off-CPU includes the run queue wait. */
	p50 = hitel_hist_quantile(rq->hist, 0.5);
	p99 = hitel_hist_quantile(rq->hist, 0.99);
	ck_assert_msg(p50 > 0 && p50 < 100000000ULL, "run queue p50 %llu ns",
		      (unsigned long long)p50);
	ck_assert_uint_le(p50, p99);
	ck_assert_uint_le(p99, hitel_hist_max(rq->hist));
	ck_assert_msg(hitel_hist_quantile(off->hist, 0.5) > 0, "off-CPU p50 is 0");
	/* Histogram series count what they hold. */
	ck_assert_uint_eq(rq->value, hitel_hist_count(rq->hist));

	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
}

START_TEST(test_pingpong_tp_btf)
{
	struct hitel_engine *e = rq_engine("tp_btf", NULL);

	check_workload(e);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_pingpong_raw_tp)
{
	struct hitel_engine *e = rq_engine("raw_tp", NULL);

	check_workload(e);
	hitel_engine_free(e);
}
END_TEST

/* ---- the kernel's program list ----------------------------------------------- */

#define MAX_IDS 64

struct prog_ids {
	size_t n;
	uint32_t id[MAX_IDS];
	char name[MAX_IDS][BPF_OBJ_NAME_LEN];
};

/* Programs whose name starts with prefix. */
static void list_progs(const char *prefix, struct prog_ids *out)
{
	uint32_t id = 0;

	out->n = 0;
	while (bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue; /* unloaded meanwhile */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
		    strncmp(info.name, prefix, strlen(prefix)) == 0 && out->n < MAX_IDS) {
			out->id[out->n] = id;
			memcpy(out->name[out->n], info.name, BPF_OBJ_NAME_LEN);
			out->n++;
		}
		close(fd);
	}
}

static int has_id(const struct prog_ids *l, uint32_t id)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->id[i] == id)
			return 1;
	return 0;
}

/* The new programs (in now, not in before) include name; returns its id. */
static uint32_t new_prog(const struct prog_ids *before, const struct prog_ids *now,
			 const char *name)
{
	size_t i;

	for (i = 0; i < now->n; i++)
		if (!has_id(before, now->id[i]) && strcmp(now->name[i], name) == 0)
			return now->id[i];
	ck_abort_msg("program %s not loaded", name);
	return 0;
}

/* Whether program id still exists; the kernel frees programs after an RCU
 * grace period, so give it up to 2 s to go away. */
static int prog_alive(uint32_t id)
{
	int tries, fd;

	for (tries = 0; tries < 200; tries++) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			return errno != ENOENT;
		close(fd);
		usleep(10000);
	}
	return 1;
}

static void check_prog_lifetime(const char *attach, const char *const *names, size_t nnames)
{
	struct prog_ids before, during;
	struct hitel_engine *e = rq_engine(attach, NULL);
	uint32_t ids[8];
	size_t i, fresh = 0;

	list_progs("hitel_rq", &before);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	assert_up(e, "bpf_runqueue");
	list_progs("hitel_rq", &during);
	for (i = 0; i < nnames; i++)
		ids[i] = new_prog(&before, &during, names[i]);
	/* Exactly one flavour is loaded. */
	for (i = 0; i < during.n; i++)
		fresh += !has_id(&before, during.id[i]);
	ck_assert_uint_eq(fresh, nnames);
	hitel_engine_free(e);
	for (i = 0; i < nnames; i++)
		ck_assert_msg(!prog_alive(ids[i]), "program %s (id %u) still loaded", names[i],
			      ids[i]);
}

START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_rqwake", "hitel_rqwaken", "hitel_rqswitch" };

	check_prog_lifetime(NULL, names, 3);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_rqwake_r", "hitel_rqwaken_r",
					     "hitel_rqswtch_r", "hitel_rqexit_r" };

	check_prog_lifetime("raw_tp", names, 4);
}
END_TEST

/* ---- BPF statistics ----------------------------------------------------------- */

/* Open "bpf-stats" file descriptors of this process (BPF_ENABLE_STATS
 * keeps the statistics on while one is open; the sysctl does not show it). */
static int stats_fds(void)
{
	char path[64], target[64];
	int fd, n = 0;
	ssize_t len;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		n += strcmp(target, "anon_inode:bpf-stats") == 0;
	}
	return n;
}

START_TEST(test_bpf_stats)
{
	struct hitel_engine *e = rq_engine(NULL, "on");
	const struct hitel_point *runs, *time;
	struct hitel_snapshot *snap;
	struct thread_stat k;
	uint64_t t0;

	ck_assert_int_eq(stats_fds(), 0);
	t0 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t0), 0);
	assert_up(e, "bpf_runqueue");
	ck_assert_int_eq(stats_fds(), 1);
	ping_pong(&k);
	/* The statistics are read at most every 500 ms. */
	while (tu_now() - t0 < 600000000ULL)
		usleep(10000);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	snap = hitel_engine_snapshot(e);
	runs = tu_point(snap, "hitel/bpf/runs", "sampler=bpf_runqueue,program=hitel_rqswitch");
	time = tu_point(snap, "hitel/bpf/run_time",
			"sampler=bpf_runqueue,program=hitel_rqswitch");
	ck_assert_uint_ge(runs->value, k.pcount);
	ck_assert_uint_gt(time->value, 0);
	/* No raw_tp program was loaded, so none has a series. */
	ck_assert_ptr_null(hitel_snapshot_find(snap, "hitel/bpf/runs",
					       "sampler=bpf_runqueue,program=hitel_rqswtch_r"));
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	ck_assert_int_eq(stats_fds(), 0);
}
END_TEST

/* ---- failures ------------------------------------------------------------------ */

START_TEST(test_fail_btf_missing)
{
	btu_check_fails("bpf_runqueue", "btf", "/nonexistent/vmlinux.btf",
			"/nonexistent/vmlinux.btf", RQ);
}
END_TEST

/* A file that exists but is no BTF: libbpf itself fails, in both flavours. */
START_TEST(test_fail_btf_bogus)
{
	btu_check_fails("bpf_runqueue", "btf", "/proc/self/status", "tp_btf load", RQ);
	btu_check_fails("bpf_runqueue", "btf", "/proc/self/status", "raw_tp load", RQ);
}
END_TEST

/* Without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN (dropped in a child): the
 * kernel refuses BPF, and the sampler says which capabilities it needs. */
START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps("bpf_runqueue", RQ);
}
END_TEST

/* ---- options ----------------------------------------------------------------- */

static const struct {
	const char *key, *value;
	int ret;
	const char *msg; /* in the error text */
} option_cases[] = {
	{ "attach", "auto", 0, NULL },
	{ "attach", "tp_btf", 0, NULL },
	{ "attach", "raw_tp", 0, NULL },
	{ "attach", "kprobe", -EINVAL, "attach" },
	{ "bpf_stats", "on", 0, NULL },
	{ "bpf_stats", "off", 0, NULL },
	{ "bpf_stats", "maybe", -EINVAL, "bpf_stats" },
	{ "btf", "/sys/kernel/btf/vmlinux", 0, NULL },
	{ "btf", "", -EINVAL, "btf" },
	{ "colour", "blue", -ENOENT, "colour" },
};

START_TEST(test_options)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "bpf_runqueue");
	char err[256] = "";
	int ret;

	ret = hitel_sampler_set(s, option_cases[_i].key, option_cases[_i].value, err,
				sizeof(err));
	ck_assert_int_eq(ret, option_cases[_i].ret);
	if (option_cases[_i].msg)
		ck_assert_msg(strstr(err, option_cases[_i].msg) != NULL, "error '%s'", err);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_runqueue");
	TCase *tc;

	tc = tcase_create("workload");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pingpong_tp_btf);
	tcase_add_test(tc, test_pingpong_raw_tp);
	tcase_add_test(tc, test_bpf_stats);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_btf_missing);
	tcase_add_test(tc, test_fail_btf_bogus);
	tcase_add_test(tc, test_fail_no_caps);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_loop_test(tc, test_options, 0,
			    (int)(sizeof(option_cases) / sizeof(option_cases[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
