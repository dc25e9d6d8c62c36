/* SPDX-License-Identifier: MIT */
/* scheduler sampler: /proc/stat and /proc/loadavg fixtures (this machine,
 * old kernels, odd input), exact load decimals, rates, missing files, the
 * live /proc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define ABSENT UINT64_MAX

static void install(const char *root, const char *fixture_case, const char *file)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "scheduler/%s/%s", fixture_case, file);
	tu_install(root, rel, file);
}

static void status(struct hitel_engine *e, struct hitel_sampler_status *st)
{
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, st), 0);
	ck_assert_str_eq(st->name, "scheduler");
}

enum { S_CTXT, S_FORKS, S_INTR, S_RUNNING, S_BLOCKED, S_LOAD1, S_LOAD5, S_LOAD15, NSER };

static const struct series {
	const char *family, *labels, *unit;
	enum hitel_kind kind;
	int scale;
} series[NSER] = {
	[S_CTXT] = { "scheduler/context_switches", "", "switches", HITEL_KIND_COUNTER, 0 },
	[S_FORKS] = { "scheduler/forks", "", "forks", HITEL_KIND_COUNTER, 0 },
	[S_INTR] = { "scheduler/interrupts", "", "interrupts", HITEL_KIND_COUNTER, 0 },
	[S_RUNNING] = { "scheduler/tasks", "state=running", "tasks", HITEL_KIND_GAUGE, 0 },
	[S_BLOCKED] = { "scheduler/tasks", "state=blocked", "tasks", HITEL_KIND_GAUGE, 0 },
	[S_LOAD1] = { "scheduler/load", "period=1m", "", HITEL_KIND_GAUGE, -2 },
	[S_LOAD5] = { "scheduler/load", "period=5m", "", HITEL_KIND_GAUGE, -2 },
	[S_LOAD15] = { "scheduler/load", "period=15m", "", HITEL_KIND_GAUGE, -2 },
};

/* ---- fixtures ----------------------------------------------------------- */

static const struct parse_case {
	const char *name;
	int up;
	uint64_t v[NSER]; /* loads in hundredths, as printed */
} parse_cases[] = {
	{ "debian12-6.18", 1, { 473355, 12384, 233940, 1, 0, 45, 18, 6 } },
	{ "linux-2.6.9", 1, { 1990473, 2915, 114930548, 17, 3, 12345, 9870, 500 } },
	{ "garbage-loadavg", 1,
	  { 473329, 12381, 233926, 2, 0, ABSENT, ABSENT, ABSENT } },
	/* stat cut inside procs_blocked, loadavg inside the second number */
	{ "truncated", 1, { 473355, 12384, ABSENT, 1, ABSENT, ABSENT, ABSENT, ABSENT } },
	{ "garbage", 0, { 0 } },
	{ "empty", 0, { 0 } },
};

START_TEST(test_parse_fixture)
{
	const struct parse_case *c = &parse_cases[_i];
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	struct hitel_engine *e;
	char rel[128];
	char *root;
	unsigned int i;

	snprintf(rel, sizeof(rel), "scheduler/%s", c->name);
	root = tu_fixture(rel);
	e = tu_engine("scheduler", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * SEC), 0);
	status(e, &st);
	ck_assert_msg(st.up == c->up, "%s: up %d, reason '%s'", c->name, st.up, st.reason);
	if (!c->up)
		ck_assert_msg(strstr(st.reason, "proc/stat") && strstr(st.reason, "proc/loadavg"),
			      "reason '%s'", st.reason);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < NSER; i++) {
		const struct series *s = &series[i];
		const struct hitel_point *p = hitel_snapshot_find(snap, s->family, s->labels);
		uint64_t want = c->up ? c->v[i] : ABSENT;

		if (want == ABSENT) {
			ck_assert_msg(p == NULL, "%s: %s{%s} should be absent", c->name,
				      s->family, s->labels);
			continue;
		}
		ck_assert_msg(p != NULL, "%s: %s{%s} missing", c->name, s->family, s->labels);
		ck_assert_msg(p->value == want, "%s: %s{%s} = %llu, want %llu", c->name,
			      s->family, s->labels, (unsigned long long)p->value,
			      (unsigned long long)want);
		ck_assert_int_eq(p->kind, s->kind);
		ck_assert_str_eq(p->unit, s->unit);
		ck_assert_int_eq(p->scale, s->scale);
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* Load averages are kept exactly as the kernel prints them ("%lu.%02lu"),
 * in hundredths; anything else is not a load average. */
static const struct load_case {
	const char *text;
	int ok;
	uint64_t v[3];
} load_cases[] = {
	{ "0.00 0.01 0.10 1/1 1\n", 1, { 0, 1, 10 } },
	{ "1.99 10.05 1024.50 1/1 1\n", 1, { 199, 1005, 102450 } },
	{ "0.5 2 3.00 1/1 1\n", 1, { 50, 200, 300 } },
	{ "0.29 0.58 0.87\n", 1, { 29, 58, 87 } },
	/* the largest value that fits, and one more */
	{ "184467440737095516.15 0.00 0.00 1/1 1\n", 1, { UINT64_MAX, 0, 0 } },
	{ "184467440737095516.16 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "999999999999999999999.00 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "0.123 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "0. 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "1,50 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "-1.00 0.00 0.00 1/1 1\n", 0, { 0 } },
	{ "0.50 0.25\n0.10 1/1 1\n", 0, { 0 } },
	{ "0.50 0.25 0.10", 0, { 0 } },
	{ "0.50 0.25 0.10 1/1 1", 0, { 0 } },
	{ "", 0, { 0 } },
};

START_TEST(test_load_decimals)
{
	const struct load_case *c = &load_cases[_i];
	static const char *const periods[] = { "period=1m", "period=5m", "period=15m" };
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	unsigned int i;

	install(root, "step0", "proc/stat");
	tu_write(root, "proc/loadavg", c->text);
	e = tu_engine("scheduler", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < 3; i++) {
		const struct hitel_point *p = hitel_snapshot_find(snap, "scheduler/load",
								  periods[i]);

		if (!c->ok) {
			ck_assert_msg(p == NULL, "'%s': %s should be absent", c->text, periods[i]);
			continue;
		}
		ck_assert_msg(p != NULL, "'%s': %s missing", c->text, periods[i]);
		ck_assert_msg(p->value == c->v[i], "'%s': %s = %llu", c->text, periods[i],
			      (unsigned long long)p->value);
	}
	/* /proc/stat alone keeps the sampler up */
	ck_assert_ptr_nonnull(tu_point(snap, "scheduler/context_switches", ""));
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* ---- rates -------------------------------------------------------------- */

START_TEST(test_rates)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	install(root, "step0", "proc/stat");
	install(root, "step0", "proc/loadavg");
	e = tu_engine("scheduler", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 20 * SEC), 0);
	install(root, "step1", "proc/stat");
	install(root, "step1", "proc/loadavg");
	ck_assert_int_eq(hitel_engine_run_once(e, 22 * SEC), 0);
	snap = hitel_engine_snapshot(e);

	/* over 2 s: ctxt +5000, processes +10, intr +2500 */
	p = tu_point(snap, "scheduler/context_switches", "");
	ck_assert_uint_eq(p->value, 105000);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 2500);
	p = tu_point(snap, "scheduler/forks", "");
	ck_assert_uint_eq(p->value, 2010);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 5);
	p = tu_point(snap, "scheduler/interrupts", "");
	ck_assert_uint_eq(p->value, 52500);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 1250);

	p = tu_point(snap, "scheduler/tasks", "state=running");
	ck_assert_uint_eq(p->value, 3);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 1);
	p = tu_point(snap, "scheduler/tasks", "state=blocked");
	ck_assert_uint_eq(p->value, 2);
	p = tu_point(snap, "scheduler/load", "period=1m");
	ck_assert_uint_eq(p->value, 250);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 100);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 250);
	ck_assert_uint_eq(tu_point(snap, "scheduler/load", "period=5m")->value, 75);
	ck_assert_uint_eq(tu_point(snap, "scheduler/load", "period=15m")->value, 30);
	hitel_snapshot_free(snap);

	/* /proc/loadavg is read once a second (the kernel updates it every
	 * 5 s); /proc/stat on every read. */
	install(root, "step0", "proc/loadavg");
	ck_assert_int_eq(hitel_engine_run_once(e, 22 * SEC + SEC / 2), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "scheduler/load", "period=1m")->value, 250);
	ck_assert_uint_eq(hitel_hist_count(tu_point(snap, "scheduler/load", "period=1m")->hist), 2);
	ck_assert_uint_eq(hitel_hist_count(tu_point(snap, "scheduler/tasks", "state=running")->hist),
			  3);
	hitel_snapshot_free(snap);
	ck_assert_int_eq(hitel_engine_run_once(e, 23 * SEC), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "scheduler/load", "period=1m")->value, 100);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* Each required file, missing, takes the sampler down and is named. */
START_TEST(test_missing_file)
{
	static const char *const files[] = { "proc/stat", "proc/loadavg" };
	const char *missing = files[_i], *present = files[1 - _i];
	char *root = tu_tmpdir();
	char want[512];
	struct hitel_sampler_status st;
	struct hitel_engine *e;

	install(root, "step0", present);
	e = tu_engine("scheduler", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(want, sizeof(want), "cannot open %s/%s", root, missing);
	ck_assert_msg(strstr(st.reason, want) != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* ---- live --------------------------------------------------------------- */

START_TEST(test_live)
{
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	struct hitel_engine *e = tu_engine("scheduler", NULL);
	struct hitel_sampler_status st;
	struct hitel_snapshot *a, *b;
	static const char *const periods[] = { "period=1m", "period=5m", "period=15m" };
	unsigned int i;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	a = hitel_engine_snapshot(e);
	nanosleep(&ts, NULL);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	b = hitel_engine_snapshot(e);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	/* our own sleep switched context at least once */
	ck_assert_uint_gt(tu_point(b, "scheduler/context_switches", "")->value,
			  tu_point(a, "scheduler/context_switches", "")->value);
	ck_assert_uint_ge(tu_point(b, "scheduler/interrupts", "")->value,
			  tu_point(a, "scheduler/interrupts", "")->value);
	ck_assert_uint_gt(tu_point(b, "scheduler/forks", "")->value, 0);
	/* the reading thread itself is running */
	ck_assert_uint_ge(tu_point(b, "scheduler/tasks", "state=running")->value, 1);
	for (i = 0; i < 3; i++)
		ck_assert_uint_lt(tu_point(b, "scheduler/load", periods[i])->value, 100000);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("scheduler");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_parse_fixture, 0,
			    (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
	tcase_add_loop_test(tc, test_load_decimals, 0,
			    (int)(sizeof(load_cases) / sizeof(load_cases[0])));
	tcase_add_test(tc, test_rates);
	tcase_add_loop_test(tc, test_missing_file, 0, 2);
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
