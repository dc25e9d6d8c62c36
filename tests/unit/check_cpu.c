/* SPDX-License-Identifier: MIT */
/* cpu sampler: /proc/stat fixtures (this machine, old kernels, odd input),
 * rates between two reads, option percpu, missing file, the live /proc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define NSTATES 10

static const char *const states[NSTATES] = {
	"user", "nice",	   "system", "idle",  "iowait",
	"irq",	"softirq", "steal",  "guest", "guest_nice",
};

static uint64_t ns_per_tick(void)
{
	long hz = sysconf(_SC_CLK_TCK);

	ck_assert_int_gt(hz, 0);
	ck_assert_uint_eq(SEC % (uint64_t)hz, 0);
	return SEC / (uint64_t)hz;
}

/* Copy fixture <rel_case>/proc/stat into root (the same inode is rewritten,
 * so the sampler's open fd sees the new content, as with procfs). */
static void install(const char *root, const char *rel_case)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "cpu/%s/proc/stat", rel_case);
	tu_install(root, rel, "proc/stat");
}

static void status(struct hitel_engine *e, struct hitel_sampler_status *st)
{
	ck_assert_uint_eq(hitel_engine_sampler_count(e), 1);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, st), 0);
	ck_assert_str_eq(st->name, "cpu");
}

static struct hitel_engine *engine_at(const char *fixture_case, int percpu)
{
	char rel[128], err[256] = "";
	char *root;
	struct hitel_engine *e;

	snprintf(rel, sizeof(rel), "cpu/%s", fixture_case);
	root = tu_fixture(rel);
	e = tu_engine("cpu", root);
	free(root);
	if (percpu)
		ck_assert_int_eq(hitel_sampler_set(hitel_engine_sampler_add(e, "cpu"), "percpu",
						   "true", err, sizeof(err)),
				 0);
	return e;
}

/* ---- fixtures ----------------------------------------------------------- */

/* Ticks as printed in the fixture; ncols columns exist, the rest must have
 * no series. up = 0: nothing usable, the reason must name the file. */
static const struct parse_case {
	const char *name;
	int up;
	unsigned int ncols;
	uint64_t total[NSTATES];
	uint64_t cpu0[NSTATES];
	unsigned int ncpus;
} parse_cases[] = {
	{ "debian12-6.18", 1, 10, { 5683, 0, 3528, 128408, 612, 0, 77, 26, 0, 0 },
	  { 2111, 0, 1233, 65801, 27, 0, 14, 9, 0, 0 }, 2 },
	{ "linux-2.6.18", 1, 8, { 79452, 1204, 30211, 5301234, 40123, 512, 1830, 77 },
	  { 40001, 600, 15100, 2650000, 20000, 256, 900, 40 }, 2 },
	{ "linux-2.4", 1, 4, { 1000, 20, 300, 40000 }, { 1000, 20, 300, 40000 }, 1 },
	/* an 11th column and cpu-prefixed lines that are not CPUs */
	{ "future", 1, 10, { 5683, 0, 3528, 128408, 612, 0, 77, 26, 3, 1 },
	  { 2111, 0, 1233, 65801, 27, 0, 14, 9, 1, 0 }, 2 },
	/* cut inside cpu1: the complete lines count, the cut one does not */
	{ "truncated", 1, 10, { 5683, 0, 3528, 128408, 612, 0, 77, 26, 0, 0 },
	  { 2111, 0, 1233, 65801, 27, 0, 14, 9, 0, 0 }, 1 },
	/* a repeated line keeps its first values */
	{ "duplicate", 1, 4, { 10, 20, 30, 40 }, { 1, 2, 3, 4 }, 1 },
	{ "truncated-total", 0, 0, { 0 }, { 0 }, 0 },
	{ "empty", 0, 0, { 0 }, { 0 }, 0 },
	{ "garbage", 0, 0, { 0 }, { 0 }, 0 },
};

static unsigned int count_cpus(const struct hitel_snapshot *snap)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < hitel_snapshot_len(snap); i++) {
		const struct hitel_point *p = hitel_snapshot_point(snap, i);
		const char *st = hitel_point_label(p, "state");

		if (strcmp(p->family, "cpu/usage/percpu") == 0 && st && !strcmp(st, "user"))
			n++;
	}
	return n;
}

START_TEST(test_parse_fixture)
{
	const struct parse_case *c = &parse_cases[_i];
	uint64_t tick = ns_per_tick();
	struct hitel_engine *e = engine_at(c->name, 1);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	unsigned int i;
	char labels[64];

	ck_assert_int_eq(hitel_engine_run_once(e, 5 * SEC), 0);
	status(e, &st);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	ck_assert_msg(st.up == c->up, "%s: up %d, reason '%s'", c->name, st.up, st.reason);
	if (!c->up) {
		ck_assert_msg(strstr(st.reason, "proc/stat") != NULL, "%s: reason '%s'", c->name,
			      st.reason);
		ck_assert_ptr_null(hitel_snapshot_find(snap, "cpu/usage", "state=user"));
		ck_assert_uint_eq(count_cpus(snap), 0);
	}
	for (i = 0; i < NSTATES && c->up; i++) {
		const struct hitel_point *p;

		snprintf(labels, sizeof(labels), "state=%s", states[i]);
		p = hitel_snapshot_find(snap, "cpu/usage", labels);
		if (i >= c->ncols) {
			ck_assert_msg(p == NULL, "%s: %s should be absent", c->name, labels);
			continue;
		}
		ck_assert_msg(p != NULL, "%s: %s missing", c->name, labels);
		ck_assert_uint_eq(p->value, c->total[i] * tick);
		ck_assert_int_eq(p->kind, HITEL_KIND_COUNTER);
		ck_assert_str_eq(p->unit, "seconds");
		ck_assert_int_eq(p->scale, -9);

		snprintf(labels, sizeof(labels), "cpu=0,state=%s", states[i]);
		p = tu_point(snap, "cpu/usage/percpu", labels);
		ck_assert_uint_eq(p->value, c->cpu0[i] * tick);
	}
	ck_assert_uint_eq(count_cpus(snap), c->ncpus);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_percpu_off_by_default)
{
	struct hitel_engine *e = engine_at("debian12-6.18", 0);
	struct hitel_snapshot *snap;

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "cpu/usage", "state=idle")->value,
			  128408 * ns_per_tick());
	ck_assert_uint_eq(count_cpus(snap), 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static const struct option_case {
	const char *value;
	int ret;
} option_cases[] = {
	{ "true", 0 }, { "false", 0 }, { "yes", 0 },	   { "0", 0 },
	{ "", -EINVAL }, { "maybe", -EINVAL }, { "truex", -EINVAL },
};

START_TEST(test_option_values)
{
	const struct option_case *c = &option_cases[_i];
	struct hitel_engine *e = tu_engine("cpu", NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "cpu");
	char err[256] = "";

	ck_assert_int_eq(hitel_sampler_set(s, "percpu", c->value, err, sizeof(err)), c->ret);
	if (c->ret)
		ck_assert_msg(strstr(err, "percpu") != NULL, "err '%s'", err);
	ck_assert_int_eq(hitel_sampler_set(s, "per_cpu", "true", err, sizeof(err)), -ENOENT);
	hitel_engine_free(e);
}
END_TEST

/* The last value given wins, as in a config file read top to bottom. */
START_TEST(test_option_last_wins)
{
	struct hitel_engine *e = engine_at("debian12-6.18", 1);
	struct hitel_snapshot *snap;
	char err[256];

	ck_assert_int_eq(hitel_sampler_set(hitel_engine_sampler_add(e, "cpu"), "percpu", "false",
					   err, sizeof(err)),
			 0);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(count_cpus(snap), 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

/* ---- rates -------------------------------------------------------------- */

/* step0 -> step1 one second apart: user +100, system +30, idle +70 ticks;
 * cpu0 system +30 and idle +70, cpu1 user +100. */
static const struct rate_case {
	const char *family, *labels;
	uint64_t ticks1, dticks;
} rate_cases[] = {
	{ "cpu/usage", "state=user", 1100, 100 },
	{ "cpu/usage", "state=system", 530, 30 },
	{ "cpu/usage", "state=idle", 20070, 70 },
	{ "cpu/usage", "state=nice", 0, 0 },
	{ "cpu/usage", "state=softirq", 5, 0 },
	{ "cpu/usage/percpu", "cpu=0,state=system", 280, 30 },
	{ "cpu/usage/percpu", "cpu=0,state=idle", 10070, 70 },
	{ "cpu/usage/percpu", "cpu=1,state=user", 700, 100 },
	{ "cpu/usage/percpu", "cpu=1,state=idle", 10000, 0 },
};

START_TEST(test_rates)
{
	uint64_t tick = ns_per_tick(), t0 = 7 * SEC;
	char *root = tu_tmpdir();
	char err[256];
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	size_t i;

	install(root, "step0");
	e = tu_engine("cpu", root);
	ck_assert_int_eq(hitel_sampler_set(hitel_engine_sampler_add(e, "cpu"), "percpu", "1",
					   err, sizeof(err)),
			 0);
	ck_assert_int_eq(hitel_engine_run_once(e, t0), 0);
	install(root, "step1");
	ck_assert_int_eq(hitel_engine_run_once(e, t0 + SEC), 0);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < sizeof(rate_cases) / sizeof(rate_cases[0]); i++) {
		const struct rate_case *c = &rate_cases[i];
		const struct hitel_point *p = tu_point(snap, c->family, c->labels);

		ck_assert_uint_eq(p->value, c->ticks1 * tick);
		ck_assert_ptr_nonnull(p->hist);
		ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
		/* ns of CPU time per second: 100 ticks in 1 s is one CPU-second. */
		ck_assert_msg(hitel_hist_max(p->hist) == c->dticks * tick, "%s{%s}: rate %llu",
			      c->family, c->labels, (unsigned long long)hitel_hist_max(p->hist));
		ck_assert_uint_eq(hitel_hist_sum(p->hist), c->dticks * tick);
		ck_assert_uint_eq(p->updated_ns, t0 + SEC);
	}
	if (tick == 10000000)
		ck_assert_uint_eq(hitel_hist_max(tu_point(snap, "cpu/usage", "state=user")->hist),
				  SEC);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A file that turns to garbage marks the sampler down; good content brings
 * it back, and the counters continue. */
START_TEST(test_garbage_then_recovery)
{
	char *root = tu_tmpdir();
	struct hitel_sampler_status st;
	struct hitel_engine *e;
	struct hitel_snapshot *snap;

	install(root, "step0");
	e = tu_engine("cpu", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 1);
	install(root, "garbage");
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "proc/stat") != NULL, "reason '%s'", st.reason);
	install(root, "step1");
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * SEC), 0);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "cpu/usage", "state=user")->value,
			  1100 * ns_per_tick());
	ck_assert_uint_eq(tu_point(snap, "cpu/usage", "state=user")->resets, 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_missing_file)
{
	char *root = tu_tmpdir();
	char want[512];
	struct hitel_sampler_status st;
	struct hitel_engine *e = tu_engine("cpu", root);

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(want, sizeof(want), "%s/proc/stat", root);
	ck_assert_msg(strstr(st.reason, want) != NULL, "reason '%s'", st.reason);
	ck_assert_msg(strstr(st.reason, "cannot open") != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* ---- live --------------------------------------------------------------- */

static uint64_t total_ns(const struct hitel_snapshot *snap)
{
	uint64_t sum = 0;
	unsigned int i;
	char labels[32];

	/* guest is already inside user (and guest_nice inside nice). */
	for (i = 0; i < 8; i++) {
		snprintf(labels, sizeof(labels), "state=%s", states[i]);
		sum += tu_point(snap, "cpu/usage", labels)->value;
	}
	return sum;
}

START_TEST(test_live)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct hitel_engine *e = tu_engine("cpu", NULL);
	struct hitel_snapshot *a, *b;
	struct hitel_sampler_status st;
	uint64_t t0, t1, idle0, idle1, busy;

	t0 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t0), 0);
	a = hitel_engine_snapshot(e);
	nanosleep(&ts, NULL);
	t1 = tu_now();
	ck_assert_int_eq(hitel_engine_run_once(e, t1), 0);
	b = hitel_engine_snapshot(e);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	idle0 = tu_point(a, "cpu/usage", "state=idle")->value;
	idle1 = tu_point(b, "cpu/usage", "state=idle")->value;
	ck_assert_uint_ge(idle1, idle0);
	ck_assert_uint_gt(idle1, 0);
	/* All CPUs together account ncpu seconds per second, give or take a
	 * tick per CPU at each end; a busy machine only shifts it between
	 * states. */
	busy = total_ns(b) - total_ns(a);
	ck_assert_msg(busy >= (t1 - t0) / 4 && busy <= 2 * (uint64_t)ncpu * (t1 - t0),
		      "%llu ns of CPU time in %llu ns on %ld CPUs", (unsigned long long)busy,
		      (unsigned long long)(t1 - t0), ncpu);
	ck_assert_uint_eq(hitel_hist_count(tu_point(b, "cpu/usage", "state=idle")->hist), 1);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("cpu");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_parse_fixture, 0,
			    (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
	tcase_add_test(tc, test_percpu_off_by_default);
	tcase_add_loop_test(tc, test_option_values, 0,
			    (int)(sizeof(option_cases) / sizeof(option_cases[0])));
	tcase_add_test(tc, test_option_last_wins);
	tcase_add_test(tc, test_rates);
	tcase_add_test(tc, test_garbage_then_recovery);
	tcase_add_test(tc, test_missing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("live");
	tcase_add_test(tc, test_live);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
