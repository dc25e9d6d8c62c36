/* SPDX-License-Identifier: MIT */
/* memory sampler: /proc/meminfo and /proc/vmstat fixtures (this machine, old
 * kernels, odd input), rates, missing files, the live /proc. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define KB 1024ULL
#define ABSENT UINT64_MAX

static void install(const char *root, const char *fixture_case, const char *file)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "memory/%s/%s", fixture_case, file);
	tu_install(root, rel, file);
}

static void status(struct hitel_engine *e, struct hitel_sampler_status *st)
{
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, st), 0);
	ck_assert_str_eq(st->name, "memory");
}

/* ---- fixtures ----------------------------------------------------------- */

enum {
	F_TOTAL,
	F_FREE,
	F_AVAILABLE,
	F_BUFFERS,
	F_CACHED,
	F_SWAP_TOTAL,
	F_SWAP_FREE,
	F_DIRTY,
	F_WRITEBACK,
	F_SLAB,
	F_FAULTS,
	F_MAJOR,
	F_SWAP_IN,
	F_SWAP_OUT,
	F_SCANNED,
	F_RECLAIMED,
	F_OOM,
	NFAM,
};

static const struct family {
	const char *name, *unit;
	enum hitel_kind kind;
} families[NFAM] = {
	[F_TOTAL] = { "memory/total", "bytes", HITEL_KIND_GAUGE },
	[F_FREE] = { "memory/free", "bytes", HITEL_KIND_GAUGE },
	[F_AVAILABLE] = { "memory/available", "bytes", HITEL_KIND_GAUGE },
	[F_BUFFERS] = { "memory/buffers", "bytes", HITEL_KIND_GAUGE },
	[F_CACHED] = { "memory/cached", "bytes", HITEL_KIND_GAUGE },
	[F_SWAP_TOTAL] = { "memory/swap/total", "bytes", HITEL_KIND_GAUGE },
	[F_SWAP_FREE] = { "memory/swap/free", "bytes", HITEL_KIND_GAUGE },
	[F_DIRTY] = { "memory/dirty", "bytes", HITEL_KIND_GAUGE },
	[F_WRITEBACK] = { "memory/writeback", "bytes", HITEL_KIND_GAUGE },
	[F_SLAB] = { "memory/slab", "bytes", HITEL_KIND_GAUGE },
	[F_FAULTS] = { "memory/page_faults", "faults", HITEL_KIND_COUNTER },
	[F_MAJOR] = { "memory/page_faults/major", "faults", HITEL_KIND_COUNTER },
	[F_SWAP_IN] = { "memory/swap/in", "pages", HITEL_KIND_COUNTER },
	[F_SWAP_OUT] = { "memory/swap/out", "pages", HITEL_KIND_COUNTER },
	[F_SCANNED] = { "memory/reclaim/scanned", "pages", HITEL_KIND_COUNTER },
	[F_RECLAIMED] = { "memory/reclaim/reclaimed", "pages", HITEL_KIND_COUNTER },
	[F_OOM] = { "memory/oom_kills", "kills", HITEL_KIND_COUNTER },
};

/* Expected values from the fixture text (meminfo kB * 1024; vmstat as is;
 * reclaim sums worked out by hand), ABSENT for no series. */
static const struct parse_case {
	const char *name;
	int up;
	uint64_t v[NFAM];
} parse_cases[] = {
	{ "debian12-6.18", 1,
	  { 24684084 * KB, 23913180 * KB, 24240672 * KB, 10340 * KB, 496816 * KB, 0, 0,
	    4760 * KB, 0, 97272 * KB, 3678706, 1439, 0, 0, 0, 0, 0 } },
	/* no MemAvailable (3.14), per-zone reclaim counters (before 4.8), no
	 * oom_kill (4.13); pgscan_direct_throttle is not a page count */
	{ "linux-3.10", 1,
	  { 3881692 * KB, 208640 * KB, ABSENT, 2064 * KB, 2763112 * KB, 2097148 * KB,
	    2094588 * KB, 88 * KB, 0, 429280 * KB, 1034882761, 21455, 163, 802,
	    1500 + 2500 + 50 + 60, 1100 + 2200 + 30 + 40, ABSENT } },
	/* khugepaged and proactive reclaim count; the anon/file split and
	 * direct_throttle do not */
	{ "linux-6.18-reclaim", 1,
	  { 24684084 * KB, 23913180 * KB, 24240672 * KB, 10340 * KB, 496816 * KB, 0, 0,
	    4760 * KB, 0, 97272 * KB, 3678706, 1439, 12, 34, 1000 + 100 + 10 + 5,
	    900 + 80 + 7 + 3, 2 } },
	{ "no-vmstat", 1,
	  { 24684084 * KB, 23913180 * KB, 24240672 * KB, 10340 * KB, 496816 * KB, 0, 0,
	    4760 * KB, 0, 97272 * KB, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT,
	    ABSENT } },
	/* only "SwapTotal: 0 kB" is well formed; vmstat has nothing usable */
	{ "garbage", 1,
	  { ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, 0, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT,
	    ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT } },
	/* meminfo cut after MemAvailable, vmstat inside pgfault */
	{ "truncated", 1,
	  { 24684084 * KB, 23913180 * KB, 24240672 * KB, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT,
	    ABSENT, ABSENT, ABSENT, ABSENT, 0, 0, ABSENT, ABSENT, ABSENT } },
	{ "empty", 0, { ABSENT } },
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

	snprintf(rel, sizeof(rel), "memory/%s", c->name);
	root = tu_fixture(rel);
	e = tu_engine("memory", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * SEC), 0);
	status(e, &st);
	ck_assert_msg(st.up == c->up, "%s: up %d, reason '%s'", c->name, st.up, st.reason);
	snap = hitel_engine_snapshot(e);
	if (!c->up)
		ck_assert_msg(strstr(st.reason, "proc/meminfo") != NULL, "reason '%s'",
			      st.reason);
	for (i = 0; i < NFAM; i++) {
		const struct hitel_point *p = hitel_snapshot_find(snap, families[i].name, "");
		uint64_t want = c->up ? c->v[i] : ABSENT;

		if (want == ABSENT) {
			ck_assert_msg(p == NULL, "%s: %s should be absent", c->name,
				      families[i].name);
			continue;
		}
		ck_assert_msg(p != NULL, "%s: %s missing", c->name, families[i].name);
		ck_assert_msg(p->value == want, "%s: %s = %llu, want %llu", c->name,
			      families[i].name, (unsigned long long)p->value,
			      (unsigned long long)want);
		ck_assert_int_eq(p->kind, families[i].kind);
		ck_assert_str_eq(p->unit, families[i].unit);
		ck_assert_int_eq(p->scale, 0);
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

/* ---- rates and gauges --------------------------------------------------- */

START_TEST(test_rates)
{
	static const struct {
		const char *family;
		uint64_t value, rate;
	} want[] = {
		{ "memory/page_faults", 11000, 1000 },
		{ "memory/page_faults/major", 60, 10 },
		{ "memory/swap/in", 0, 0 },
		{ "memory/swap/out", 256, 256 },
		{ "memory/reclaim/scanned", 1000, 1000 },
		{ "memory/reclaim/reclaimed", 500, 500 },
		{ "memory/oom_kills", 1, 1 },
	};
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	size_t i;

	install(root, "step0", "proc/meminfo");
	install(root, "step0", "proc/vmstat");
	e = tu_engine("memory", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 4 * SEC), 0);
	install(root, "step1", "proc/meminfo");
	install(root, "step1", "proc/vmstat");
	/* half a second: the rate is twice the increase */
	ck_assert_int_eq(hitel_engine_run_once(e, 4 * SEC + SEC / 2), 0);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		p = tu_point(snap, want[i].family, "");
		ck_assert_uint_eq(p->value, want[i].value);
		ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
		ck_assert_msg(hitel_hist_max(p->hist) == 2 * want[i].rate, "%s: rate %llu",
			      want[i].family, (unsigned long long)hitel_hist_max(p->hist));
	}
	/* gauges: last value, and both values in the value histogram */
	p = tu_point(snap, "memory/free", "");
	ck_assert_uint_eq(p->value, 400000 * KB);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 400000 * KB);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 500000 * KB);
	p = tu_point(snap, "memory/dirty", "");
	ck_assert_uint_eq(p->value, 5000 * KB);
	/* totals carry no histogram */
	ck_assert_ptr_null(tu_point(snap, "memory/total", "")->hist);
	ck_assert_ptr_null(tu_point(snap, "memory/swap/total", "")->hist);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* Files whose content did not change are recorded again from their last
 * parse: a gauge value and a zero rate per read, as if parsed. One file
 * changing alone is parsed alone. */
START_TEST(test_same_content)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;

	install(root, "step0", "proc/meminfo");
	install(root, "step0", "proc/vmstat");
	e = tu_engine("memory", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 1 * SEC), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * SEC), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * SEC), 0);
	install(root, "step1", "proc/vmstat");
	ck_assert_int_eq(hitel_engine_run_once(e, 4 * SEC), 0);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "memory/free", "");
	ck_assert_uint_eq(p->value, 500000 * KB);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 500000 * KB);
	ck_assert_uint_eq(p->updated_ns, 4 * SEC);
	p = tu_point(snap, "memory/page_faults", "");
	ck_assert_uint_eq(p->value, 11000);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 1000); /* 1000 more in 1 s */
	hitel_snapshot_free(snap);
	/* A meminfo that fails fails again when it repeats. */
	install(root, "empty", "proc/meminfo");
	tu_down_twice(e, "memory", 5 * SEC, &st);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* meminfo going bad marks the sampler down; vmstat going bad does not. */
START_TEST(test_read_failures)
{
	char *root = tu_tmpdir();
	struct hitel_sampler_status st;
	struct hitel_engine *e;

	install(root, "step0", "proc/meminfo");
	install(root, "step0", "proc/vmstat");
	e = tu_engine("memory", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 1);
	install(root, "garbage", "proc/vmstat");
	ck_assert_int_eq(hitel_engine_run_once(e, 2 * SEC), 0);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	install(root, "empty", "proc/meminfo");
	ck_assert_int_eq(hitel_engine_run_once(e, 3 * SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "proc/meminfo") != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_missing_meminfo)
{
	char *root = tu_tmpdir();
	char want[512];
	struct hitel_sampler_status st;
	struct hitel_engine *e;

	install(root, "step0", "proc/vmstat");
	e = tu_engine("memory", root);
	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	status(e, &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(want, sizeof(want), "cannot open %s/proc/meminfo", root);
	ck_assert_msg(strstr(st.reason, want) != NULL, "reason '%s'", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* Levels move slowly and meminfo costs a few µs: 10 Hz unless configured. */
START_TEST(test_default_rate)
{
	struct hitel_engine *e = tu_engine("memory", NULL);
	struct hitel_sampler_status st;

	status(e, &st);
	ck_assert_uint_eq(st.rate_hz, 10);
	hitel_engine_free(e);
}
END_TEST

/* ---- live --------------------------------------------------------------- */

START_TEST(test_live)
{
	struct hitel_engine *e = tu_engine("memory", NULL);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	struct sysinfo si;
	uint64_t total, ram, page = (uint64_t)sysconf(_SC_PAGESIZE);

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	status(e, &st);
	ck_assert_msg(st.up == 1, "reason '%s'", st.reason);
	ck_assert_int_eq(sysinfo(&si), 0);
	snap = hitel_engine_snapshot(e);
	total = tu_point(snap, "memory/total", "")->value;
	ram = (uint64_t)si.totalram * si.mem_unit;
	ck_assert_msg(total + page >= ram && total <= ram + page, "MemTotal %llu, sysinfo %llu",
		      (unsigned long long)total, (unsigned long long)ram);
	ck_assert_uint_le(tu_point(snap, "memory/free", "")->value, total);
	ck_assert_uint_le(tu_point(snap, "memory/available", "")->value, total);
	ck_assert_uint_gt(tu_point(snap, "memory/slab", "")->value, 0);
	ck_assert_uint_eq(tu_point(snap, "memory/swap/total", "")->value,
			  (uint64_t)si.totalswap * si.mem_unit);
	/* every process start faults pages in */
	ck_assert_uint_gt(tu_point(snap, "memory/page_faults", "")->value, 0);
	ck_assert_ptr_nonnull(tu_point(snap, "memory/reclaim/scanned", ""));
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_parse_fixture, 0,
			    (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
	tcase_add_test(tc, test_rates);
	tcase_add_test(tc, test_same_content);
	tcase_add_test(tc, test_read_failures);
	tcase_add_test(tc, test_missing_meminfo);
	tcase_add_test(tc, test_default_rate);
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
