/* SPDX-License-Identifier: MIT */
/*
 * bpf_syscall against the real kernel: known syscalls made between two reads
 * land in their family (one workload per family), 2 ms sleeps are measured
 * as 2 ms, both flavours; the programs live exactly as long as the engine;
 * a sampler without capabilities or with a bogus BTF is down with a reason.
 * The machine makes syscalls of its own meanwhile, so counts are lower
 * bounds and the latency check looks at the buckets our sleeps must reach.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bpf_testutil.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "testutil.h"

#define SAMPLER "bpf_syscall"
#define LATENCY "syscall/latency"
#define COUNT "syscall/count"
#define CALLS 2000
#define SLEEPS 40
#define SLEEP_NS 2000000ULL

/* ---- one workload per family: CALLS syscalls of that family --------------- */

static void do_read_write(int which)
{
	char buf[1] = { 'x' };
	int p[2], i;

	ck_assert_int_eq(pipe(p), 0);
	for (i = 0; i < CALLS; i++) {
		ck_assert_int_eq(write(p[1], buf, 1), 1);
		ck_assert_int_eq(read(p[0], buf, 1), 1);
	}
	close(p[0]);
	close(p[1]);
	(void)which;
}

static void do_poll(int which)
{
	struct pollfd pfd = { .events = POLLIN };
	int p[2], i;

	ck_assert_int_eq(pipe(p), 0);
	pfd.fd = p[0];
	for (i = 0; i < CALLS; i++)
		ck_assert_int_eq(poll(&pfd, 1, 0), 0);
	close(p[0]);
	close(p[1]);
	(void)which;
}

static void do_lock(int which)
{
	static uint32_t word;
	int i;

	/* FUTEX_WAKE with no waiter returns 0 at once. */
	for (i = 0; i < CALLS; i++)
		ck_assert_int_eq(syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0),
				 0);
	(void)which;
}

static void do_socket(int which)
{
	int i, fd;

	for (i = 0; i < CALLS / 2; i++) {
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(shutdown(fd, SHUT_RDWR), 0);
		close(fd);
	}
	(void)which;
}

static void do_file(int which)
{
	int p[2], i, fd;

	ck_assert_int_eq(pipe(p), 0);
	for (i = 0; i < CALLS / 2; i++) {
		fd = dup(p[0]);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(close(fd), 0);
	}
	close(p[0]);
	close(p[1]);
	(void)which;
}

static void do_memory(int which)
{
	long page = sysconf(_SC_PAGESIZE);
	void *m;
	int i;

	for (i = 0; i < CALLS / 2; i++) {
		m = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(m, MAP_FAILED);
		ck_assert_int_eq(munmap(m, (size_t)page), 0);
	}
	(void)which;
}

static void do_process(int which)
{
	int i;

	for (i = 0; i < CALLS; i++)
		ck_assert_int_gt(syscall(SYS_getppid), 0);
	(void)which;
}

static void do_other(int which)
{
	char buf[8];
	int i;

	/* getrandom is in no family. */
	for (i = 0; i < CALLS; i++)
		ck_assert_int_eq(syscall(SYS_getrandom, buf, sizeof(buf), 0), (long)sizeof(buf));
	(void)which;
}

static void do_sleep(int which)
{
	struct timespec ts = { 0, (long)SLEEP_NS };
	int i;

	for (i = 0; i < SLEEPS; i++)
		ck_assert_int_eq(syscall(SYS_nanosleep, &ts, NULL), 0);
	(void)which;
}

static const struct {
	const char *family;
	void (*work)(int which);
	uint64_t min; /* at least this many in the family's count */
} families[] = {
	{ "read", do_read_write, CALLS },   { "write", do_read_write, CALLS },
	{ "poll", do_poll, CALLS },	    { "lock", do_lock, CALLS },
	{ "socket", do_socket, CALLS },	    { "file", do_file, CALLS },
	{ "memory", do_memory, CALLS },	    { "process", do_process, CALLS },
	{ "other", do_other, CALLS },	    { "sleep", do_sleep, SLEEPS },
};

#define NFAMILIES (sizeof(families) / sizeof(families[0]))

/* Values in the buckets of a window histogram that reach into [lo, hi]
 * (buckets are 0.8 % wide). */
static uint64_t count_between(const struct hitel_hist *h, uint64_t lo, uint64_t hi)
{
	struct hitel_hist_bucket b;
	unsigned int cursor = 0;
	uint64_t n = 0;

	while (hitel_hist_next(h, &cursor, &b))
		if (b.upper >= lo && b.lower <= hi)
			n += b.count;
	return n;
}

static void check_family(const char *attach, size_t i)
{
	struct hitel_engine *e = btu_engine(SAMPLER, attach);
	struct hitel_snapshot *s0, *s1, *w;
	const struct hitel_point *cnt, *lat;
	char labels[64];

	snprintf(labels, sizeof(labels), "family=%s", families[i].family);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	s0 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s0);
	families[i].work((int)i);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	s1 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s1);
	w = btu_window(s0, s1);

	cnt = tu_point(w, COUNT, labels);
	lat = tu_point(w, LATENCY, labels);
	ck_assert_ptr_nonnull(lat->hist);
	ck_assert_msg(cnt->value >= families[i].min, "%s: %s count %llu < %llu", attach,
		      families[i].family, (unsigned long long)cnt->value,
		      (unsigned long long)families[i].min);
	/* The counter is the histogram's count, read at the same time. */
	ck_assert_uint_eq(cnt->value, hitel_hist_count(lat->hist));
	ck_assert_uint_eq(lat->value, hitel_hist_count(lat->hist));

	if (strcmp(families[i].family, "sleep") == 0) {
		/* Our sleeps take 2 ms and a little more (timer slack, wakeup):
		 * at least half of them must be within [2 ms, 3 ms] (their p50),
		 * and none can be shorter, so the sum is at least theirs. */
		uint64_t in = count_between(lat->hist, SLEEP_NS, SLEEP_NS * 3 / 2);

		ck_assert_msg(in >= SLEEPS / 2, "%s: %llu of %d sleeps in [2 ms, 3 ms]", attach,
			      (unsigned long long)in, SLEEPS);
		ck_assert_uint_ge(hitel_hist_sum(lat->hist), SLEEPS * SLEEP_NS);
		ck_assert_uint_ge(hitel_hist_max(lat->hist), SLEEP_NS);
	} else {
		/* Plausible: most of these take microseconds, not seconds. */
		uint64_t p50 = hitel_hist_quantile(lat->hist, 0.5);

		ck_assert_msg(p50 > 0 && p50 < 100000000ULL, "%s: %s p50 %llu ns", attach,
			      families[i].family, (unsigned long long)p50);
	}
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
}

START_TEST(test_families_tp_btf)
{
	check_family("tp_btf", (size_t)_i);
}
END_TEST

START_TEST(test_families_raw_tp)
{
	check_family("raw_tp", (size_t)_i);
}
END_TEST

/* Every family has its series from the start, and the lost counter too. */
START_TEST(test_series)
{
	struct hitel_engine *e = btu_engine(SAMPLER, NULL);
	struct hitel_snapshot *snap;
	char labels[64];
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < NFAMILIES; i++) {
		snprintf(labels, sizeof(labels), "family=%s", families[i].family);
		tu_point(snap, LATENCY, labels);
		tu_point(snap, COUNT, labels);
	}
	tu_point(snap, "hitel/bpf/lost", "sampler=" SAMPLER);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_sysenter", "hitel_sysexit" };

	btu_check_prog_lifetime(SAMPLER, NULL, "hitel_sys", names, 2);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_sysent_r", "hitel_sysexit_r",
					     "hitel_sysdone_r" };

	btu_check_prog_lifetime(SAMPLER, "raw_tp", "hitel_sys", names, 3);
}
END_TEST

START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps(SAMPLER, LATENCY);
}
END_TEST

START_TEST(test_fail_btf_bogus)
{
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "tp_btf load", LATENCY);
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "raw_tp load", LATENCY);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_syscall");
	TCase *tc;

	tc = tcase_create("families");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_families_tp_btf, 0, (int)NFAMILIES);
	tcase_add_loop_test(tc, test_families_raw_tp, 0, (int)NFAMILIES);
	tcase_add_test(tc, test_series);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_no_caps);
	tcase_add_test(tc, test_fail_btf_bogus);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
