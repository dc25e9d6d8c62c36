/* SPDX-License-Identifier: MIT */
/*
 * bpf_cpu against the real kernel.
 *   - exact: a thread pinned to one CPU spins for 500 ms, then sleeps for
 *     1.5 s; that CPU's busy time covers the thread's own CPU time
 *     (CLOCK_THREAD_CPUTIME_ID, the scheduler's exact count) and never
 *     exceeds the wall time, and the total is the complement of the idle
 *     time /proc/stat measured over the same window (the idle half is what
 *     caught switches to idle that a kernel did not trace).
 *   - fractional: a thread on one CPU busy 3 ms of every 10 ms, sampled at
 *     100 Hz: most per-sample rates of that CPU lie strictly between 0.1 and
 *     0.9 CPU, which tick-based /proc/stat cannot give (printed beside).
 *   - the programs' lifetime, failures and options, as for every BPF sampler.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bpf_testutil.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "testutil.h"

#define SAMPLER "bpf_cpu"
#define BUSY "cpu/busy"
#define PERCPU "cpu/busy/percpu"
#define SPIN_NS 500000000ULL
#define MS 1000000ULL

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void spin_until(uint64_t end)
{
	volatile uint64_t x = 0;

	while (tu_now() < end)
		x++;
}

static void pin(int cpu, cpu_set_t *old)
{
	cpu_set_t set;

	if (old)
		ck_assert_int_eq(sched_getaffinity(0, sizeof(*old), old), 0);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ck_assert_int_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}

/* Idle ns of all CPUs by /proc/stat: idle + iowait, which the kernel
 * measures from idle entry to exit on tickless kernels (not by sampling
 * ticks as it does the busy states), printed in USER_HZ units. */
static uint64_t stat_idle_ns(void)
{
	unsigned long long v[5] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(
	    fscanf(f, "cpu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4]), 5);
	fclose(f);
	return (uint64_t)(v[3] + v[4]) * (1000000000ULL / (uint64_t)hz);
}

static struct hitel_engine *engine_percpu(const char *attach)
{
	struct hitel_engine *e = btu_engine(SAMPLER, attach);
	char err[256] = "";

	ck_assert_msg(hitel_sampler_set(hitel_engine_sampler_add(e, SAMPLER), "percpu", "true", err,
					sizeof(err)) == 0,
		      "%s", err);
	return e;
}

static void check_exact(const char *attach)
{
	struct hitel_engine *e = engine_percpu(attach);
	struct hitel_snapshot *s0, *s1, *w;
	long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t t0, t1, c0, c1, k0, k1, busy, busy0, spun, wall, kbusy, slack, w0, w1;
	cpu_set_t old;

	pin(0, &old);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	/* A switch on CPU 0 starts its row: what ran before is unknown. */
	usleep(1000);
	w0 = tu_now();
	k0 = stat_idle_ns();
	t0 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t0), 0);
	s0 = hitel_engine_snapshot(e);
	c0 = thread_cpu_ns();
	spin_until(t0 + SPIN_NS);
	c1 = thread_cpu_ns();
	usleep(3 * SPIN_NS / 1000);
	t1 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t1), 0);
	s1 = hitel_engine_snapshot(e);
	k1 = stat_idle_ns();
	w1 = tu_now();
	ck_assert_int_eq(sched_setaffinity(0, sizeof(old), &old), 0);
	ck_assert_ptr_nonnull(s0);
	ck_assert_ptr_nonnull(s1);
	w = btu_window(s0, s1);

	busy = tu_point(w, BUSY, "")->value;
	busy0 = tu_point(w, PERCPU, "cpu=0")->value;
	spun = c1 - c0;
	wall = t1 - t0;
	/* The /proc/stat reads bracket the window: capacity over their span. */
	kbusy = (w1 - w0) * (uint64_t)ncpus - (k1 - k0);
	fprintf(stderr,
		"%s: wall %.1f ms, thread on CPU %.1f ms, cpu0 busy %.1f ms, all busy %.1f ms, "
		"/proc/stat not idle %.1f ms\n",
		attach, wall / 1e6, spun / 1e6, busy0 / 1e6, busy / 1e6, kbusy / 1e6);
	ck_assert_msg(spun > SPIN_NS / 2, "the spinning thread got %.1f ms of %.1f", spun / 1e6,
		      wall / 1e6);
	/* The thread's time is part of CPU 0's busy time; the thread clock
	 * was read a little inside the window. */
	ck_assert_msg(busy0 + 100000 >= spun, "cpu0 busy %.3f ms < thread %.3f ms", busy0 / 1e6,
		      spun / 1e6);
	ck_assert_msg(busy0 <= SPIN_NS + (wall - SPIN_NS) / 2,
		      "cpu0 busy %.3f ms: more than the spin and half the sleep (wall %.3f ms)",
		      busy0 / 1e6, wall / 1e6);
	ck_assert_uint_ge(busy, busy0);
	ck_assert_uint_le(busy, wall * (uint64_t)ncpus + 100000);
	/* /proc/stat's reads bracket the window (its span is a little
	 * longer), its idle is printed in 10 ms units per CPU, and it counts
	 * interrupts on an idle CPU as not idle, where the scheduler sees the
	 * idle task: a few percent of the capacity apart. */
	slack = wall * (uint64_t)ncpus / 100 + 2 * 10 * MS * (uint64_t)ncpus;
	ck_assert_msg(busy + slack >= kbusy && busy <= kbusy + slack,
		      "busy %.1f ms, /proc/stat not idle %.1f ms, slack %.1f ms", busy / 1e6,
		      kbusy / 1e6, slack / 1e6);
	hitel_snapshot_free(s0);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(w);
	hitel_engine_free(e);
}

START_TEST(test_exact_tp_btf)
{
	check_exact("tp_btf");
}
END_TEST

START_TEST(test_exact_raw_tp)
{
	check_exact("raw_tp");
}
END_TEST

/* On CPU *arg: busy 3 ms of every 10 ms for 2 s. */
static void *duty(void *arg)
{
	uint64_t t = tu_now(), end = t + 2000 * MS;

	pin(*(int *)arg, NULL);
	while (t < end) {
		spin_until(t + 3 * MS);
		t += 10 * MS;
		while (tu_now() < t)
			usleep((useconds_t)((t - tu_now()) / 1000) + 1);
	}
	return NULL;
}

START_TEST(test_fractional)
{
	struct hitel_engine *e = engine_percpu(NULL);
	struct hitel_sampler *cpu = hitel_engine_sampler_add(e, "cpu");
	int last = (int)sysconf(_SC_NPROCESSORS_ONLN) - 1;
	struct hitel_snapshot *a, *b, *w;
	const struct hitel_hist *h, *k;
	char err[256] = "", labels[64];
	double q25, q75;
	pthread_t t;

	ck_assert_ptr_nonnull(cpu);
	ck_assert_int_eq(hitel_sampler_set(cpu, "percpu", "true", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_set(cpu, "rate", "100", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_set(e, "sample_rate", "100", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	usleep(300000);
	btu_assert_up(e, SAMPLER);
	ck_assert_int_eq(pthread_create(&t, NULL, duty, &last), 0);
	usleep(100000);
	a = hitel_engine_snapshot(e);
	usleep(1700000);
	b = hitel_engine_snapshot(e);
	pthread_join(t, NULL);
	w = btu_window(a, b);
	snprintf(labels, sizeof(labels), "cpu=%d", last);
	h = tu_point(w, PERCPU, labels)->hist;
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_gt(hitel_hist_count(h), 100);
	q25 = (double)hitel_hist_quantile(h, 0.25) / 1e9;
	q75 = (double)hitel_hist_quantile(h, 0.75) / 1e9;
	snprintf(labels, sizeof(labels), "cpu=%d,state=user", last);
	k = tu_point(w, "cpu/usage/percpu", labels)->hist;
	ck_assert_ptr_nonnull(k);
	fprintf(stderr,
		"30 %% duty on cpu %d at 100 Hz: bpf_cpu p25 %.2f p50 %.2f p75 %.2f CPU; "
		"/proc/stat user p25 %.2f p50 %.2f p75 %.2f CPU\n",
		last, q25, (double)hitel_hist_quantile(h, 0.5) / 1e9, q75,
		(double)hitel_hist_quantile(k, 0.25) / 1e9,
		(double)hitel_hist_quantile(k, 0.5) / 1e9,
		(double)hitel_hist_quantile(k, 0.75) / 1e9);
	/* Half the samples or more strictly inside (0.1, 0.9). */
	ck_assert_msg(q25 > 0.1 && q75 < 0.9, "p25 %.2f p75 %.2f", q25, q75);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_snapshot_free(w);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_cpusw", "hitel_cpuidle" };

	btu_check_prog_lifetime(SAMPLER, NULL, "hitel_cpu", names, 2);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_cpusw_r", "hitel_cpuidle_r" };

	btu_check_prog_lifetime(SAMPLER, "raw_tp", "hitel_cpu", names, 2);
}
END_TEST

START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps(SAMPLER, BUSY);
}
END_TEST

START_TEST(test_fail_btf_missing)
{
	btu_check_fails(SAMPLER, "btf", "/nonexistent/vmlinux.btf", "/nonexistent/vmlinux.btf",
			BUSY);
}
END_TEST

START_TEST(test_option_percpu)
{
	struct hitel_engine *e = btu_engine(SAMPLER, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, SAMPLER);
	struct hitel_snapshot *snap;
	char err[256] = "";

	ck_assert_int_eq(hitel_sampler_set(s, "percpu", "maybe", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "percpu") && strstr(err, "maybe"), "%s", err);
	/* Without percpu: the total only. */
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	usleep(20000);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	ck_assert_uint_gt(tu_point(snap, BUSY, "")->value, 0);
	ck_assert_uint_eq(tu_count_prefix(snap, PERCPU), 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_cpu");
	TCase *tc;

	tc = tcase_create("busy");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_exact_tp_btf);
	tcase_add_test(tc, test_exact_raw_tp);
	tcase_add_test(tc, test_fractional);
	tcase_add_test(tc, test_option_percpu);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_no_caps);
	tcase_add_test(tc, test_fail_btf_missing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
