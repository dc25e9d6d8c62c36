/* SPDX-License-Identifier: MIT */
/*
 * softnet sampler: /proc/net/softnet_stat from kernels with 9, 11, 13 and 15
 * columns (CPU id from column 12 when present, else the line index), a CPU
 * offline in the middle, damaged lines, 32-bit wrap-around, rates, filters,
 * empty and missing files, and the live file (one series per online CPU).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct want {
	const char *cpu;
	uint64_t processed, dropped, squeeze;
};

struct fixture_case {
	const char *dir;
	const struct want *want;
	size_t nwant; /* also the number of CPUs expected */
	const char *absent_cpu;
};

/* Numbers copied from the fixture files (hex there). */
static const struct want want_618[] = {{"0", 0xa, 0, 0}, {"1", 0x7ea, 0, 0}};
static const struct want want_419[] = {
	{"0", 0x1e240, 0, 3},
	{"1", 0xf4240, 2, 0x1a},
	{"2", 0x400, 0, 0},
	{"3", 0x7fffffff, 0x10, 0x100},
};
static const struct want want_2632[] = {{"0", 0xbc614e, 1, 2}, {"1", 0x3039, 0, 7}};
/* CPU 2 offline: the third line says CPU 3. */
static const struct want want_510[] = {{"0", 0x64, 1, 2}, {"1", 0xc8, 3, 4}, {"3", 0x12c, 5, 6}};
/* Only the first line and the last (CPU 6) are valid. */
static const struct want want_garbage[] = {{"0", 0x64, 1, 2}, {"6", 0x2bc, 0xd, 0xe}};

static const struct fixture_case cases[] = {
	{"softnet/debian12-6.18", want_618, N(want_618), "2"},
	{"softnet/linux-4.19", want_419, N(want_419), "4"},
	{"softnet/linux-2.6.32", want_2632, N(want_2632), "2"},
	{"softnet/linux-5.10-offline", want_510, N(want_510), "2"},
	{"softnet/garbage", want_garbage, N(want_garbage), "1"},
};

static size_t count_family(const struct hitel_snapshot *snap, const char *family)
{
	size_t i, n = 0;

	for (i = 0; i < hitel_snapshot_len(snap); i++)
		if (strcmp(hitel_snapshot_point(snap, i)->family, family) == 0)
			n++;
	return n;
}

static const struct hitel_point *cpu_point(const struct hitel_snapshot *snap, const char *family,
					   const char *cpu)
{
	char labels[32];

	snprintf(labels, sizeof(labels), "cpu=%s", cpu);
	return tu_point(snap, family, labels);
}

START_TEST(test_fixture)
{
	const struct fixture_case *c = &cases[_i];
	char *root = tu_fixture(c->dir);
	struct hitel_engine *e = tu_engine("softnet", root);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	char labels[32];
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	tu_status(e, "softnet", &st);
	ck_assert_msg(st.up == 1, "%s: down: %s", c->dir, st.reason);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < c->nwant; i++) {
		const struct want *w = &c->want[i];

		ck_assert_uint_eq(cpu_point(snap, "softnet/processed", w->cpu)->value, w->processed);
		ck_assert_uint_eq(cpu_point(snap, "softnet/dropped", w->cpu)->value, w->dropped);
		ck_assert_uint_eq(cpu_point(snap, "softnet/time_squeeze", w->cpu)->value,
				  w->squeeze);
	}
	ck_assert_uint_eq(count_family(snap, "softnet/processed"), c->nwant);
	ck_assert_uint_eq(count_family(snap, "softnet/dropped"), c->nwant);
	ck_assert_uint_eq(count_family(snap, "softnet/time_squeeze"), c->nwant);
	snprintf(labels, sizeof(labels), "cpu=%s", c->absent_cpu);
	ck_assert_ptr_null(hitel_snapshot_find(snap, "softnet/processed", labels));
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

static void write_line(const char *root, uint32_t processed, uint32_t dropped, uint32_t squeeze)
{
	char body[256];

	snprintf(body, sizeof(body),
		 "%08x %08x %08x 00000000 00000000 00000000 00000000 00000000 00000000 "
		 "00000000 00000000 00000000 00000000 00000000 00000000\n",
		 processed, dropped, squeeze);
	tu_write(root, "proc/net/softnet_stat", body);
}

START_TEST(test_rate)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	write_line(root, 1000, 5, 1);
	e = tu_engine("softnet", root);
	hitel_engine_run_once(e, SEC);
	write_line(root, 1500, 7, 4);
	hitel_engine_run_once(e, SEC + SEC / 10);
	snap = hitel_engine_snapshot(e);
	p = cpu_point(snap, "softnet/processed", "0");
	ck_assert_uint_eq(p->value, 1500);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 5000); /* 500 in 100 ms */
	p = cpu_point(snap, "softnet/dropped", "0");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 20);
	p = cpu_point(snap, "softnet/time_squeeze", "0");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 30);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A file that did not change is each CPU's line again: zero rates, one
 * per read. One that failed fails again when it repeats. */
START_TEST(test_same_content)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;

	write_line(root, 1000, 5, 1);
	e = tu_engine("softnet", root);
	hitel_engine_run_once(e, SEC);
	hitel_engine_run_once(e, 2 * SEC);
	hitel_engine_run_once(e, 3 * SEC);
	write_line(root, 1500, 5, 1);
	hitel_engine_run_once(e, 4 * SEC);
	snap = hitel_engine_snapshot(e);
	p = cpu_point(snap, "softnet/processed", "0");
	ck_assert_uint_eq(p->value, 1500);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 500);
	p = cpu_point(snap, "softnet/dropped", "0");
	ck_assert_uint_eq(p->value, 5);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(p->updated_ns, 4 * SEC);
	hitel_snapshot_free(snap);
	tu_write(root, "proc/net/softnet_stat", "0000 1\n");
	tu_down_twice(e, "softnet", 5 * SEC, &st);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* The kernel's 32-bit counters wrap; the series keeps counting up. */
START_TEST(test_wrap)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	write_line(root, 0xfffffff0u, 0xffffffffu, 7);
	e = tu_engine("softnet", root);
	hitel_engine_run_once(e, SEC);
	write_line(root, 0x10, 0x1, 7);
	hitel_engine_run_once(e, 2 * SEC);
	snap = hitel_engine_snapshot(e);
	p = cpu_point(snap, "softnet/processed", "0");
	ck_assert_uint_eq(p->value, 0x100000010ULL);
	ck_assert_uint_eq(p->resets, 0);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0x20);
	p = cpu_point(snap, "softnet/dropped", "0");
	ck_assert_uint_eq(p->value, 0x100000001ULL);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 2);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

struct filter_case {
	const char *key, *value;
	const char *present, *absent;
	size_t ncpus;
};

static const struct filter_case filters[] = {
	{"include", "0", "0", "1", 1},
	{"exclude", "[13]", "2", "3", 2},
};

START_TEST(test_filter)
{
	const struct filter_case *c = &filters[_i];
	char *root = tu_fixture("softnet/linux-4.19");
	struct hitel_engine *e = tu_engine("softnet", root);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "softnet");
	struct hitel_snapshot *snap;
	char err[256], labels[32];

	ck_assert_msg(hitel_sampler_set(s, c->key, c->value, err, sizeof(err)) == 0, "%s", err);
	hitel_engine_run_once(e, SEC);
	snap = hitel_engine_snapshot(e);
	cpu_point(snap, "softnet/processed", c->present);
	snprintf(labels, sizeof(labels), "cpu=%s", c->absent);
	ck_assert_ptr_null(hitel_snapshot_find(snap, "softnet/processed", labels));
	ck_assert_uint_eq(count_family(snap, "softnet/processed"), c->ncpus);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

START_TEST(test_down)
{
	/* 0: empty file, 1: no file */
	char *root = _i == 0 ? tu_fixture("softnet/empty") : tu_tmpdir();
	struct hitel_engine *e = tu_engine("softnet", root);
	struct hitel_sampler_status st;
	char path[512];

	hitel_engine_run_once(e, SEC);
	tu_status(e, "softnet", &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(path, sizeof(path), "%s/proc/net/softnet_stat", root);
	ck_assert_msg(strstr(st.reason, path) != NULL, "reason: %s", st.reason);
	ck_assert_msg(strstr(st.reason, _i == 0 ? "no valid CPU line" : "cannot open") != NULL,
		      "reason: %s", st.reason);
	hitel_engine_free(e);
	if (_i == 1)
		tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_live)
{
	struct hitel_engine *e = tu_engine("softnet", NULL);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	uint64_t t = tu_now();
	long cpu;

	ck_assert_int_gt(online, 0);
	hitel_engine_run_once(e, t);
	hitel_engine_run_once(e, t + SEC / 10);
	tu_status(e, "softnet", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(count_family(snap, "softnet/processed"), (size_t)online);
	ck_assert_uint_eq(count_family(snap, "softnet/time_squeeze"), (size_t)online);
	/* On a machine with every CPU online the ids are 0..n-1. */
	if (online == sysconf(_SC_NPROCESSORS_CONF)) {
		for (cpu = 0; cpu < online; cpu++) {
			char id[24];
			const struct hitel_point *p;

			snprintf(id, sizeof(id), "%ld", cpu);
			p = cpu_point(snap, "softnet/processed", id);
			ck_assert_uint_eq(p->updated_ns, t + SEC / 10);
		}
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("softnet");
	TCase *tc = tcase_create("softnet");

	tcase_add_loop_test(tc, test_fixture, 0, N(cases));
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_same_content);
	tcase_add_test(tc, test_wrap);
	tcase_add_loop_test(tc, test_filter, 0, N(filters));
	tcase_add_loop_test(tc, test_down, 0, 2);
	tcase_add_test(tc, test_live);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
