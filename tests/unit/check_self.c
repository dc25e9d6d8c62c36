/* SPDX-License-Identifier: MIT */
/*
 * The self sampler: live checks against this test process (CPU time, RSS,
 * threads) and parsing of synthetic roots (odd comm names, truncated or
 * missing files).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "hist.h"
#include "log.h"
#include "registry.h"
#include "testutil.h"

#define MS 1000000ULL
#define MIB (1024ULL * 1024)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_warning[512];

static void log_capture(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&log_lock);
	if (level <= HITEL_LOG_WARNING)
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	pthread_mutex_unlock(&log_lock);
}

static struct hitel_engine *self_engine(const char *root)
{
	struct hitel_engine *e = tu_engine("self", root);

	last_warning[0] = '\0';
	hitel_log_set(log_capture, NULL);
	return e;
}

static uint64_t cputime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Spin until this process used ns more CPU time. */
static void burn(uint64_t ns)
{
	uint64_t end = cputime() + ns;
	volatile uint64_t x = 0;

	while (cputime() < end)
		x++;
}

static uint64_t value_of(struct hitel_engine *e, const char *family)
{
	struct hitel_snapshot *snap = hitel_engine_snapshot(e);
	uint64_t v;

	ck_assert_ptr_nonnull(snap);
	v = tu_point(snap, family, "")->value;
	hitel_snapshot_free(snap);
	return v;
}

START_TEST(test_cpu_grows)
{
	struct hitel_engine *e = self_engine(NULL);
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	uint64_t t0, t1, c0, c1, rate, ncpu = (uint64_t)sysconf(_SC_NPROCESSORS_ONLN);

	t0 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t0), 0);
	c0 = value_of(e, "hitel/process/cpu");
	burn(200 * MS);
	t1 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t1), 0);

	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "hitel/process/cpu", "");
	c1 = p->value;
	ck_assert_str_eq(p->unit, "seconds");
	ck_assert_int_eq(p->scale, -9);
	ck_assert_int_eq(p->kind, HITEL_KIND_COUNTER);
	ck_assert_msg(c1 - c0 >= 200 * MS, "cpu grew %llu ns over a 200 ms burn",
		      (unsigned long long)(c1 - c0));
	/* Single-threaded: at most the wall time that passed. */
	ck_assert_msg(c1 - c0 <= t1 - t0 + 10 * MS, "cpu grew %llu ns in %llu ns",
		      (unsigned long long)(c1 - c0), (unsigned long long)(t1 - t0));
	ck_assert_ptr_nonnull(p->hist);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	rate = hitel_hist_max(p->hist);
	ck_assert_msg(rate > 0 && rate <= ncpu * 1000000000ULL + ncpu * 1000000000ULL / 32,
		      "cpu rate %llu ns/s with %llu cpus", (unsigned long long)rate,
		      (unsigned long long)ncpu);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

/* The engine thread reads self at 10 Hz (its default is 1 Hz) while this
 * thread burns. */
START_TEST(test_cpu_threaded)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "self");
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	uint64_t ncpu = (uint64_t)sysconf(_SC_NPROCESSORS_ONLN), max, end;
	char err[128];

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, &st), 0);
	ck_assert_uint_eq(st.rate_hz, 1);
	ck_assert_msg(hitel_sampler_set(s, "rate", "10", err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	/* Short pauses let the engine thread in even under valgrind, which
	 * runs one thread at a time. */
	end = tu_now() + 600 * MS;
	while (tu_now() < end) {
		struct timespec pause = { 0, 1000000 };

		burn(10 * MS);
		nanosleep(&pause, NULL);
	}
	hitel_engine_stop(e);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, &st), 0);
	ck_assert_str_eq(st.name, "self");
	ck_assert_uint_eq(st.rate_hz, 10);
	ck_assert_int_eq(st.up, 1);

	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "hitel/process/cpu", "");
	ck_assert_msg(hitel_hist_count(p->hist) >= 2, "%llu rates",
		      (unsigned long long)hitel_hist_count(p->hist));
	max = hitel_hist_max(p->hist);
	ck_assert_msg(max > 0 && max <= ncpu * 1000000000ULL + ncpu * 1000000000ULL / 32,
		      "cpu rate %llu ns/s with %llu cpus", (unsigned long long)max,
		      (unsigned long long)ncpu);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_rss)
{
	struct hitel_engine *e = self_engine(NULL);
	const size_t len = 32 * MIB;
	uint64_t r0, r1;
	char *m;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	r0 = value_of(e, "hitel/process/rss");
	ck_assert_msg(r0 > 1 * MIB, "rss %llu bytes", (unsigned long long)r0);

	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(m, MAP_FAILED);
	memset(m, 1, len);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	r1 = value_of(e, "hitel/process/rss");
	munmap(m, len);
	ck_assert_msg(r1 >= r0 + len * 3 / 4, "rss %llu -> %llu after touching %zu bytes",
		      (unsigned long long)r0, (unsigned long long)r1, len);
	hitel_engine_free(e);
}
END_TEST

static void *idle_thread(void *arg)
{
	pthread_barrier_t *b = arg;

	pthread_barrier_wait(b); /* started */
	pthread_barrier_wait(b); /* may exit */
	return NULL;
}

START_TEST(test_threads)
{
	struct hitel_engine *e = self_engine(NULL);
	pthread_barrier_t b;
	pthread_t t;
	uint64_t n0, n1;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	n0 = value_of(e, "hitel/process/threads");
	ck_assert_uint_ge(n0, 1);

	pthread_barrier_init(&b, NULL, 2);
	ck_assert_int_eq(pthread_create(&t, NULL, idle_thread, &b), 0);
	pthread_barrier_wait(&b);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	n1 = value_of(e, "hitel/process/threads");
	pthread_barrier_wait(&b);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&b);
	ck_assert_uint_eq(n1, n0 + 1);
	hitel_engine_free(e);
}
END_TEST

/* Synthetic roots. The stat lines follow /proc/<pid>/stat of Linux 6.1
 * (52 fields); num_threads is field 20. */
#define STAT_TAIL " 0 98933 3133440 418 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0\n"

static const struct {
	const char *what;
	const char *statm; /* NULL: file absent */
	const char *stat;
	int up;
	uint64_t rss_pages, threads;
	const char *reason; /* substring when down */
} roots[] = {
	{ "plain", "765 410 382 5 0 123 0\n",
	  "3866 (cat) R 3863 3863 4447 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1" STAT_TAIL, 1, 410,
	  1, NULL },
	{ "comm with blanks and parentheses", "100 7 5 1 0 9 0\n",
	  "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 12" STAT_TAIL, 1, 7, 12,
	  NULL },
	{ "negative nice", "100 8 5 1 0 9 0\n",
	  "42 (w) S 1 42 42 0 -1 4194560 100 0 0 0 5 3 0 0 39 -19 3" STAT_TAIL, 1, 8, 3, NULL },
	{ "no statm", NULL, "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1" STAT_TAIL, 0, 0, 0,
	  "proc/self/statm" },
	{ "no stat", "100 8 5 1 0 9 0\n", NULL, 0, 0, 0, "proc/self/stat" },
	{ "garbage statm", "size resident\n",
	  "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1" STAT_TAIL, 0, 0, 0, "cannot parse" },
	{ "truncated stat", "100 8 5 1 0 9 0\n", "1 (x) S 1 1 1 0 -1 0 0\n", 0, 0, 0,
	  "cannot parse" },
	{ "stat without comm", "100 8 5 1 0 9 0\n", "1 x S 1 1 1\n", 0, 0, 0, "cannot parse" },
};

START_TEST(test_roots)
{
	char *dir = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;

	if (roots[_i].statm)
		tu_write(dir, "proc/self/statm", roots[_i].statm);
	if (roots[_i].stat)
		tu_write(dir, "proc/self/stat", roots[_i].stat);
	e = self_engine(dir);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, &st), 0);
	ck_assert_msg(st.up == roots[_i].up, "%s: up %d (%s)", roots[_i].what, st.up, st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/up", "sampler=self")->value,
			  (uint64_t)roots[_i].up);
	if (roots[_i].up) {
		ck_assert_uint_eq(tu_point(snap, "hitel/process/rss", "")->value,
				  roots[_i].rss_pages * (uint64_t)sysconf(_SC_PAGESIZE));
		ck_assert_uint_eq(tu_point(snap, "hitel/process/threads", "")->value,
				  roots[_i].threads);
		ck_assert_str_eq(st.reason, "");
	} else {
		ck_assert_msg(strstr(st.reason, roots[_i].reason) != NULL,
			      "%s: reason '%s' lacks '%s'", roots[_i].what, st.reason,
			      roots[_i].reason);
		/* The reason is logged too. */
		ck_assert_msg(strstr(last_warning, roots[_i].reason) != NULL,
			      "%s: logged '%s'", roots[_i].what, last_warning);
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("self");
	TCase *tc;

	tc = tcase_create("live");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_cpu_grows);
	tcase_add_test(tc, test_cpu_threaded);
	tcase_add_test(tc, test_rss);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("roots");
	tcase_add_loop_test(tc, test_roots, 0, (int)(sizeof(roots) / sizeof(roots[0])));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
