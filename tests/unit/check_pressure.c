/* SPDX-License-Identifier: MIT */
/* pressure sampler: /proc/pressure fixtures (this machine, 5.10 without cpu
 * "full", 6.1 with irq, odd input), rates, missing files, the live /proc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hist.h"
#include "log.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define ABSENT UINT64_MAX

static void install(const char *root, const char *fixture_case, const char *resource)
{
	char rel[256], dst[64];

	snprintf(rel, sizeof(rel), "pressure/%s/proc/pressure/%s", fixture_case, resource);
	snprintf(dst, sizeof(dst), "proc/pressure/%s", resource);
	tu_install(root, rel, dst);
}

static void status(struct hitel_engine *e, struct hitel_sampler_status *st)
{
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, st), 0);
	ck_assert_str_eq(st->name, "pressure");
}

/* Counts WARNING messages to check what is logged. */
static int warnings;
static char last_warning[512];

static void count_log(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == HITEL_LOG_WARNING) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	}
}

/* ---- fixtures ----------------------------------------------------------- */

#define NSER 8
static const char *const labels[NSER] = {
	"resource=cpu,kind=some",    "resource=cpu,kind=full", "resource=memory,kind=some",
	"resource=memory,kind=full", "resource=io,kind=some",  "resource=io,kind=full",
	"resource=irq,kind=some",    "resource=irq,kind=full",
};

/* total= in µs, as in the fixture text. */
static const struct parse_case {
	const char *name;
	int up;
	uint64_t us[NSER];
} parse_cases[] = {
	{ "debian12-6.18", 1, { 7606612, 0, 0, 0, 5699273, 5374936, ABSENT, ABSENT } },
	/* before 5.13 the cpu file has no "full" line */
	{ "linux-5.10", 1, { 123456789, ABSENT, 4000, 3000, 777, 555, ABSENT, ABSENT } },
	/* since 6.1: irq, with a "full" line only */
	{ "linux-6.1-irq", 1, { 7606612, 0, 0, 0, 5699273, 5374936, ABSENT, 98765 } },
	{ "no-memory", 1, { 7606612, 0, ABSENT, ABSENT, 5699273, 5374936, ABSENT, ABSENT } },
	/* extra fields, lines in another order, an unknown kind, a repeated
	 * kind (the first counts) */
	{ "future", 1, { 1111, 2222, 3333, 4444, 5555, 6666, ABSENT, ABSENT } },
	/* the cut lines are dropped, the complete ones kept */
	{ "truncated", 1,
	  { 1000, ABSENT, ABSENT, ABSENT, 2000, ABSENT, ABSENT, ABSENT } },
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

	snprintf(rel, sizeof(rel), "pressure/%s", c->name);
	root = tu_fixture(rel);
	e = tu_engine("pressure", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * SEC), 0);
	status(e, &st);
	ck_assert_msg(st.up == c->up, "%s: up %d, reason '%s'", c->name, st.up, st.reason);
	if (!c->up)
		ck_assert_msg(strstr(st.reason, "proc/pressure") != NULL, "reason '%s'",
			      st.reason);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < NSER; i++) {
		const struct hitel_point *p = hitel_snapshot_find(snap, "pressure/stall",
								  labels[i]);
		uint64_t want = c->up ? c->us[i] : ABSENT;

		if (want == ABSENT) {
			ck_assert_msg(p == NULL, "%s: {%s} should be absent", c->name, labels[i]);
			continue;
		}
		ck_assert_msg(p != NULL, "%s: {%s} missing", c->name, labels[i]);
		ck_assert_msg(p->value == want, "%s: {%s} = %llu, want %llu", c->name, labels[i],
			      (unsigned long long)p->value, (unsigned long long)want);
		ck_assert_int_eq(p->kind, HITEL_KIND_COUNTER);
		ck_assert_str_eq(p->unit, "seconds");
		ck_assert_int_eq(p->scale, -6);
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* ---- rates -------------------------------------------------------------- */

START_TEST(test_rates)
{
	static const struct {
		const char *labels;
		uint64_t value, rate;
	} want[] = {
		/* +250 ms of stall in 1 s: a stalled fraction of 0.25 */
		{ "resource=cpu,kind=some", 1250000, 250000 },
		{ "resource=cpu,kind=full", 0, 0 },
		{ "resource=io,kind=some", 100500, 100000 },
		{ "resource=io,kind=full", 50400, 50000 },
		{ "resource=memory,kind=some", 0, 0 },
	};
	static const char *const res[] = { "cpu", "memory", "io" };
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	size_t i;

	for (i = 0; i < 3; i++)
		install(root, "step0", res[i]);
	e = tu_engine("pressure", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 9 * SEC), 0);
	for (i = 0; i < 3; i++)
		install(root, "step1", res[i]);
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * SEC), 0);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct hitel_point *p = tu_point(snap, "pressure/stall", want[i].labels);

		ck_assert_uint_eq(p->value, want[i].value);
		ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
		ck_assert_msg(hitel_hist_max(p->hist) == want[i].rate, "{%s}: rate %llu",
			      want[i].labels, (unsigned long long)hitel_hist_max(p->hist));
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* ---- missing files ------------------------------------------------------ */

/* Files that did not change are recorded again from their last parse:
 * zero rates, one per read; a file that changes alone is parsed alone. */
START_TEST(test_same_content)
{
	static const char *const res[] = { "cpu", "memory", "io" };
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	size_t i;

	for (i = 0; i < 3; i++)
		install(root, "step0", res[i]);
	e = tu_engine("pressure", root);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(hitel_engine_run_once(e, (7 + i) * SEC), 0);
	install(root, "step1", "cpu");
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * SEC), 0);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "pressure/stall", "resource=io,kind=some");
	ck_assert_uint_eq(p->value, 500);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	ck_assert_uint_eq(p->updated_ns, 10 * SEC);
	p = tu_point(snap, "pressure/stall", "resource=cpu,kind=some");
	ck_assert_uint_eq(p->value, 1250000);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 250000);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_no_psi)
{
	char *root = tu_fixture("pressure/no-psi");
	char want[512];
	struct hitel_sampler_status st;
	struct hitel_engine *e = tu_engine("pressure", root);

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(want, sizeof(want), "cannot open %s/proc/pressure", root);
	ck_assert_msg(strstr(st.reason, want) != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* The directory without any file we know: down, naming the directory. */
START_TEST(test_empty_dir)
{
	char *root = tu_tmpdir();
	struct hitel_sampler_status st;
	struct hitel_engine *e;

	tu_write(root, "proc/pressure/unknown", "x\n");
	e = tu_engine("pressure", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "proc/pressure") != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A missing resource is logged once, by name; a missing irq (normal before
 * 6.1) is not logged at all. */
START_TEST(test_missing_resource_logged)
{
	char *root = tu_fixture("pressure/no-memory");
	struct hitel_sampler_status st;
	struct hitel_engine *e = tu_engine("pressure", root);

	warnings = 0;
	hitel_log_set(count_log, NULL);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * SEC), 0);
	hitel_log_set(NULL, NULL);
	status(e, &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_int_eq(warnings, 1);
	ck_assert_msg(strstr(last_warning, "proc/pressure/memory") != NULL, "'%s'",
		      last_warning);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* ---- live --------------------------------------------------------------- */

START_TEST(test_live)
{
	static const char *const live[] = { "resource=cpu,kind=some", "resource=memory,kind=some",
					    "resource=memory,kind=full", "resource=io,kind=some",
					    "resource=io,kind=full" };
	struct timespec ts = { 0, 200 * 1000 * 1000 };
	struct hitel_engine *e = tu_engine("pressure", NULL);
	struct hitel_sampler_status st;
	struct hitel_snapshot *a, *b;
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	a = hitel_engine_snapshot(e);
	nanosleep(&ts, NULL);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	b = hitel_engine_snapshot(e);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++) {
		const struct hitel_point *pa = tu_point(a, "pressure/stall", live[i]);
		const struct hitel_point *pb = tu_point(b, "pressure/stall", live[i]);

		ck_assert_uint_ge(pb->value, pa->value);
		ck_assert_uint_eq(pb->resets, 0);
		/* stalled time cannot outrun the clock: at most 1 s/s, with
		 * room for a late read (a unit slip would be 1000 times off) */
		ck_assert_uint_le(hitel_hist_max(pb->hist), 2000000);
	}
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pressure");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_parse_fixture, 0,
			    (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
	tcase_add_test(tc, test_rates);
	tcase_add_test(tc, test_same_content);
	tcase_add_test(tc, test_no_psi);
	tcase_add_test(tc, test_empty_dir);
	tcase_add_test(tc, test_missing_resource_logged);
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
