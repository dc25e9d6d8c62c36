/* SPDX-License-Identifier: MIT */
/* Registry: families, series, counter rates, snapshots, windows, ids, locking. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "log.h"
#include "registry.h"
#include "testutil.h"

#define SEC 1000000000ULL

static struct hitel_family_desc desc_of(const char *name, enum hitel_kind kind)
{
	struct hitel_family_desc d = {
	    .name = name, .help = "help text", .unit = "bytes", .kind = kind};

	return d;
}

/* Collects WARNING messages so tests can count "logged once". */
static int warnings;
static char last_warning[256];

static void count_log(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	if (level == HITEL_LOG_WARNING) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	}
}

/* Independent FNV-1a 64 over an explicit byte string (the id contract). */
static uint64_t fnv_bytes(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- families ------------------------------------------------------------- */

START_TEST(test_family_get_or_create)
{
	struct hitel_registry *reg = hitel_registry_new();
	char name[] = "net/rx/bytes", help[] = "received", unit[] = "bytes";
	struct hitel_family_desc d = {
	    .name = name, .help = help, .unit = unit, .kind = HITEL_KIND_COUNTER};
	struct hitel_family *f, *g;

	ck_assert_ptr_nonnull(reg);
	hitel_registry_lock(reg);
	f = hitel_registry_family(reg, &d);
	ck_assert_ptr_nonnull(f);
	/* Strings are copied: scribbling over the caller's buffers changes nothing. */
	memset(name, 'x', sizeof(name) - 1);
	memset(unit, 'y', sizeof(unit) - 1);
	ck_assert_str_eq(hitel_family_name(f), "net/rx/bytes");
	d.name = "net/rx/bytes";
	d.unit = "bytes";
	d.help = "other help is not a conflict";
	ck_assert_ptr_eq(hitel_registry_family(reg, &d), f);
	ck_assert_uint_eq(hitel_registry_family_count(reg), 1);

	/* Conflicting redefinitions. */
	d.kind = HITEL_KIND_GAUGE;
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EEXIST);
	d.kind = HITEL_KIND_COUNTER;
	d.unit = "packets";
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EEXIST);
	d.unit = "bytes";
	d.scale = -3;
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EEXIST);
	d.scale = 0;
	ck_assert_ptr_eq(hitel_registry_family(reg, &d), f);

	/* Creation order and lookup by index. */
	d.name = "net/tx/bytes";
	g = hitel_registry_family(reg, &d);
	ck_assert_ptr_nonnull(g);
	ck_assert_ptr_ne(f, g);
	ck_assert_uint_eq(hitel_registry_family_count(reg), 2);
	ck_assert_ptr_eq(hitel_registry_family_at(reg, 0), f);
	ck_assert_ptr_eq(hitel_registry_family_at(reg, 1), g);
	ck_assert_ptr_null(hitel_registry_family_at(reg, 2));
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
	hitel_registry_free(NULL);
}
END_TEST

START_TEST(test_family_many)
{
	/* Enough families to grow the name hash several times; each stays
	 * reachable by name and in order. */
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family *fams[300];
	char name[32];
	int i;

	hitel_registry_lock(reg);
	for (i = 0; i < 300; i++) {
		struct hitel_family_desc d;

		snprintf(name, sizeof(name), "fam/%d", i);
		d = desc_of(name, HITEL_KIND_GAUGE);
		fams[i] = hitel_registry_family(reg, &d);
		ck_assert_ptr_nonnull(fams[i]);
	}
	for (i = 0; i < 300; i++) {
		struct hitel_family_desc d;

		snprintf(name, sizeof(name), "fam/%d", i);
		d = desc_of(name, HITEL_KIND_GAUGE);
		ck_assert_ptr_eq(hitel_registry_family(reg, &d), fams[i]);
		ck_assert_ptr_eq(hitel_registry_family_at(reg, (size_t)i), fams[i]);
	}
	ck_assert_uint_eq(hitel_registry_family_count(reg), 300);
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
}
END_TEST

/* clang-format off */
static const struct {
	const char *name;
	int valid;
} family_names[] = {
	{ "cpu/usage", 1 },
	{ "a", 1 },
	{ "x_1/y2/z_3", 1 },
	{ "", 0 },
	{ NULL, 0 },
	{ "Cpu/usage", 0 },
	{ "cpu usage", 0 },
	{ "cpu-usage", 0 },
	{ "cpu.usage", 0 },
	{ "cpu/usage{x}", 0 },
	{ "caf\xc3\xa9", 0 },
};
/* clang-format on */

START_TEST(test_family_names)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of(family_names[_i].name, HITEL_KIND_COUNTER);
	struct hitel_family *f;

	hitel_registry_lock(reg);
	errno = 0;
	f = hitel_registry_family(reg, &d);
	if (family_names[_i].valid) {
		ck_assert_ptr_nonnull(f);
		ck_assert_str_eq(hitel_family_name(f), family_names[_i].name);
	} else {
		ck_assert_ptr_null(f);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_uint_eq(hitel_registry_family_count(reg), 0);
	}
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_family_invalid_desc)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("ok/name", HITEL_KIND_COUNTER);

	hitel_registry_lock(reg);
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, NULL));
	ck_assert_int_eq(errno, EINVAL);
	d.kind = (enum hitel_kind)7;
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EINVAL);
	d.kind = HITEL_KIND_HISTOGRAM;
	d.grouping_power = 11; /* beyond HITEL_HIST_MAX_GROUPING */
	d.max_power = 64;
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EINVAL);
	d.grouping_power = 8;
	d.max_power = 8; /* max power must exceed grouping power */
	errno = 0;
	ck_assert_ptr_null(hitel_registry_family(reg, &d));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(hitel_registry_family_count(reg), 0);
	hitel_registry_unlock(reg);

	ck_assert_int_eq(hitel_registry_set_defaults(reg, 0, 5, 7), -EINVAL);
	ck_assert_int_eq(hitel_registry_set_defaults(reg, 10, 11, 7), -EINVAL);
	ck_assert_int_eq(hitel_registry_set_defaults(reg, 10, 5, 11), -EINVAL);
	ck_assert_int_eq(hitel_registry_set_defaults(NULL, 10, 5, 7), -EINVAL);
	hitel_registry_free(reg);
}
END_TEST

/* Histogram shape chosen for each kind of family. has_hist < 0: no hist. */
/* clang-format off */
static const struct {
	enum hitel_kind kind;
	unsigned int g, m, flags;
	int set_defaults; /* rate 3, hist 9 */
	int has_hist;
	unsigned int want_g, want_m;
} shapes[] = {
	{ HITEL_KIND_COUNTER, 0, 0, 0, 0, 1, 5, 64 },
	{ HITEL_KIND_GAUGE, 0, 0, 0, 0, 1, 5, 64 },
	{ HITEL_KIND_HISTOGRAM, 0, 0, 0, 0, 1, 7, 64 },
	{ HITEL_KIND_COUNTER, 0, 0, 0, 1, 1, 3, 64 },
	{ HITEL_KIND_GAUGE, 0, 0, 0, 1, 1, 3, 64 },
	{ HITEL_KIND_HISTOGRAM, 0, 0, 0, 1, 1, 9, 64 },
	{ HITEL_KIND_COUNTER, 2, 20, 0, 0, 1, 2, 20 },
	{ HITEL_KIND_HISTOGRAM, 4, 40, 0, 1, 1, 4, 40 },
	/* Only one of the two given: defaults. */
	{ HITEL_KIND_HISTOGRAM, 4, 0, 0, 0, 1, 7, 64 },
	{ HITEL_KIND_COUNTER, 0, 30, 0, 0, 1, 5, 64 },
	{ HITEL_KIND_COUNTER, 0, 0, HITEL_FAMILY_NO_HIST, 0, 0, 0, 0 },
	{ HITEL_KIND_GAUGE, 0, 0, HITEL_FAMILY_NO_HIST, 0, 0, 0, 0 },
	/* A histogram family always has its histogram. */
	{ HITEL_KIND_HISTOGRAM, 0, 0, HITEL_FAMILY_NO_HIST, 0, 1, 7, 64 },
};
/* clang-format on */

START_TEST(test_hist_shapes)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("shape/test", shapes[_i].kind);
	struct hitel_series *s;
	struct hitel_hist *h;

	d.grouping_power = shapes[_i].g;
	d.max_power = shapes[_i].m;
	d.flags = shapes[_i].flags;
	if (shapes[_i].set_defaults)
		ck_assert_int_eq(hitel_registry_set_defaults(reg, 1024, 3, 9), 0);
	hitel_registry_lock(reg);
	s = hitel_registry_series(reg, &d, NULL, 0);
	ck_assert_ptr_nonnull(s);
	h = hitel_series_hist(s);
	if (!shapes[_i].has_hist) {
		ck_assert_ptr_null(h);
	} else {
		ck_assert_ptr_nonnull(h);
		ck_assert_uint_eq(hitel_hist_grouping_power(h), shapes[_i].want_g);
		ck_assert_uint_eq(hitel_hist_max_power(h), shapes[_i].want_m);
	}
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
}
END_TEST

/* ---- series --------------------------------------------------------------- */

START_TEST(test_series_identity)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("disk/io/bytes", HITEL_KIND_COUNTER);
	char dev[] = "sda", op[] = "read";
	struct hitel_label l1[] = {{"device", dev}, {"op", op}};
	struct hitel_label l1_copy[] = {{"device", "sda"}, {"op", "read"}};
	struct hitel_label l_swapped[] = {{"op", "read"}, {"device", "sda"}};
	struct hitel_label l_other[] = {{"device", "sdb"}, {"op", "read"}};
	struct hitel_label l_sub[] = {{"device", "sda"}};
	struct hitel_family *f;
	struct hitel_series *a, *b, *c, *e, *none;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	hitel_registry_lock(reg);
	f = hitel_registry_family(reg, &d);
	a = hitel_family_series(f, l1, 2);
	ck_assert_ptr_nonnull(a);
	/* Strings are copied. */
	strcpy(dev, "xxx");
	strcpy(op, "zzzz");
	ck_assert_ptr_eq(hitel_family_series(f, l1_copy, 2), a);
	ck_assert_ptr_eq(hitel_registry_series(reg, &d, l1_copy, 2), a);
	b = hitel_family_series(f, l_swapped, 2);
	c = hitel_family_series(f, l_other, 2);
	e = hitel_family_series(f, l_sub, 1);
	none = hitel_family_series(f, NULL, 0);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_nonnull(none);
	ck_assert_ptr_ne(a, b);
	ck_assert_ptr_ne(a, c);
	ck_assert_ptr_ne(a, e);
	ck_assert_ptr_ne(a, none);
	ck_assert_ptr_ne(b, c);
	ck_assert_ptr_eq(hitel_family_series(f, l_swapped, 2), b);
	ck_assert_ptr_eq(hitel_family_series(f, NULL, 0), none);
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 1);
	ck_assert_uint_eq(hitel_snapshot_len(snap), 5);
	/* Series order is creation order; labels keep their given order. */
	p = hitel_snapshot_point(snap, 0);
	ck_assert_uint_eq(p->nlabels, 2);
	ck_assert_str_eq(p->labels[0].name, "device");
	ck_assert_str_eq(p->labels[0].value, "sda");
	ck_assert_str_eq(p->labels[1].name, "op");
	ck_assert_str_eq(p->labels[1].value, "read");
	p = hitel_snapshot_point(snap, 1);
	ck_assert_str_eq(p->labels[0].name, "op");
	ck_assert_str_eq(p->labels[1].name, "device");
	ck_assert_str_eq(hitel_point_label(hitel_snapshot_point(snap, 2), "device"), "sdb");
	ck_assert_uint_eq(hitel_snapshot_point(snap, 3)->nlabels, 1);
	ck_assert_uint_eq(hitel_snapshot_point(snap, 4)->nlabels, 0);
	ck_assert_ptr_null(hitel_snapshot_point(snap, 5));
	hitel_snapshot_free(snap);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_series_many)
{
	/* Grows the per-family hash well past its initial size: every series
	 * must still be found again, and be distinct. */
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("many/series", HITEL_KIND_COUNTER);
	static struct hitel_series *got[1000];
	char v[16];
	int i;

	d.flags = HITEL_FAMILY_NO_HIST;
	hitel_registry_lock(reg);
	for (i = 0; i < 1000; i++) {
		struct hitel_label l = {"n", v};

		snprintf(v, sizeof(v), "%d", i);
		got[i] = hitel_registry_series(reg, &d, &l, 1);
		ck_assert_ptr_nonnull(got[i]);
		hitel_series_counter(got[i], (uint64_t)i, 1);
	}
	for (i = 0; i < 1000; i++) {
		struct hitel_label l = {"n", v};

		snprintf(v, sizeof(v), "%d", i);
		ck_assert_ptr_eq(hitel_registry_series(reg, &d, &l, 1), got[i]);
	}
	hitel_registry_unlock(reg);
	{
		struct hitel_snapshot *snap = hitel_registry_snapshot(reg, 2);

		ck_assert_uint_eq(hitel_snapshot_len(snap), 1000);
		for (i = 0; i < 1000; i++)
			ck_assert_uint_eq(hitel_snapshot_point(snap, (size_t)i)->value,
					  (uint64_t)i);
		hitel_snapshot_free(snap);
	}
	hitel_registry_free(reg);
}
END_TEST

/* clang-format off */
static const struct {
	struct hitel_label l[2];
	size_t n;
} bad_labels[] = {
	{ { { "a", "1" }, { "a", "2" } }, 2 }, /* duplicate name */
	{ { { "", "1" } }, 1 },
	{ { { NULL, "1" } }, 1 },
	{ { { "a", NULL } }, 1 },
	{ { { "a=b", "1" } }, 1 },
	{ { { "a,b", "1" } }, 1 },
	{ { { "a b", "1" } }, 1 },
};
/* clang-format on */

START_TEST(test_series_bad_labels)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("bad/labels", HITEL_KIND_GAUGE);

	hitel_registry_lock(reg);
	errno = 0;
	ck_assert_ptr_null(hitel_registry_series(reg, &d, bad_labels[_i].l, bad_labels[_i].n));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_registry_series(reg, &d, NULL, 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_family_series(NULL, NULL, 0));
	ck_assert_int_eq(errno, EINVAL);
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_series_cap)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc capped = desc_of("capped/three", HITEL_KIND_COUNTER);
	struct hitel_family_desc dflt = desc_of("capped/default", HITEL_KIND_GAUGE);
	struct hitel_family *f, *g;
	struct hitel_series *first = NULL;
	struct hitel_snapshot *snap;
	char v[16];
	int i;

	hitel_log_set(count_log, NULL);
	hitel_log_set_level(HITEL_LOG_DEBUG);
	warnings = 0;
	/* Registry default cap 2 for families without their own. */
	ck_assert_int_eq(hitel_registry_set_defaults(reg, 2, 5, 7), 0);
	capped.max_series = 3;
	hitel_registry_lock(reg);
	f = hitel_registry_family(reg, &capped);
	g = hitel_registry_family(reg, &dflt);
	for (i = 0; i < 3; i++) {
		struct hitel_label l = {"i", v};
		struct hitel_series *s;

		snprintf(v, sizeof(v), "%d", i);
		s = hitel_family_series(f, &l, 1);
		ck_assert_ptr_nonnull(s);
		if (!first)
			first = s;
	}
	ck_assert_uint_eq(hitel_family_refused(f), 0);
	for (i = 3; i < 6; i++) {
		struct hitel_label l = {"i", v};

		snprintf(v, sizeof(v), "%d", i);
		errno = 0;
		ck_assert_ptr_null(hitel_family_series(f, &l, 1));
		ck_assert_int_eq(errno, ENOSPC);
		ck_assert_uint_eq(hitel_family_refused(f), (uint64_t)(i - 2));
	}
	ck_assert_int_eq(warnings, 1);
	ck_assert_msg(strstr(last_warning, "capped/three") != NULL, "warning: %s", last_warning);
	/* Existing series are still found at the cap. */
	{
		struct hitel_label l = {"i", "0"};

		ck_assert_ptr_eq(hitel_family_series(f, &l, 1), first);
	}
	ck_assert_uint_eq(hitel_family_refused(f), 3);

	/* The other family uses the registry default, counts and logs on its own. */
	ck_assert_ptr_nonnull(hitel_family_series(g, (struct hitel_label[]){{"x", "1"}}, 1));
	ck_assert_ptr_nonnull(hitel_family_series(g, (struct hitel_label[]){{"x", "2"}}, 1));
	ck_assert_ptr_null(hitel_family_series(g, (struct hitel_label[]){{"x", "3"}}, 1));
	ck_assert_ptr_null(hitel_family_series(g, (struct hitel_label[]){{"x", "4"}}, 1));
	ck_assert_uint_eq(hitel_family_refused(g), 2);
	ck_assert_uint_eq(hitel_family_refused(f), 3);
	ck_assert_int_eq(warnings, 2);
	ck_assert_msg(strstr(last_warning, "capped/default") != NULL, "warning: %s", last_warning);
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 1);
	ck_assert_uint_eq(hitel_snapshot_len(snap), 5);
	hitel_snapshot_free(snap);
	hitel_log_set(NULL, NULL);
	hitel_registry_free(reg);
}
END_TEST

/* ---- updates -------------------------------------------------------------- */

/* One counter fed a sequence of (raw, t); what the rate histogram and the
 * series hold afterwards. Rates are derived by hand from the inputs. */
#define MAXSTEPS 5
/* clang-format off */
static const struct {
	const char *what;
	struct {
		uint64_t raw, t;
	} step[MAXSTEPS];
	size_t nsteps;
	uint64_t count, sum, min, max; /* rate histogram */
	uint64_t value, resets;
} counter_cases[] = {
	{ "first value only", { { 1000, SEC } }, 1, 0, 0, 0, 0, 1000, 0 },
	{ "+1000 over 0.5 s", { { 1000, SEC }, { 2000, SEC + SEC / 2 } }, 2, 1, 2000, 2000, 2000,
	  2000, 0 },
	{ "+0 over 1 s", { { 7, SEC }, { 7, 2 * SEC } }, 2, 1, 0, 0, 0, 7, 0 },
	/* 1e9/3 = 333333333.33 rounds down, 2e9/3 = 666666666.67 up. */
	{ "rounding", { { 0, 10 }, { 1, 13 }, { 3, 16 } }, 3, 2, 333333333 + 666666667,
	  333333333, 666666667, 3, 0 },
	/* Half rounds up: 3 over 2 s = 1.5/s. */
	{ "half", { { 0, 0 }, { 3, 2 * SEC } }, 2, 1, 2, 2, 2, 3, 0 },
	{ "2^60 over 1 s", { { 5, SEC }, { 5 + (1ULL << 60), 2 * SEC } }, 2, 1, 1ULL << 60,
	  1ULL << 60, 1ULL << 60, 5 + (1ULL << 60), 0 },
	/* 2^60 / 3 = 384307168202282325 remainder 1. */
	{ "2^60 over 3 s", { { 0, SEC }, { 1ULL << 60, 4 * SEC } }, 2, 1, 384307168202282325ULL,
	  384307168202282325ULL, 384307168202282325ULL, 1ULL << 60, 0 },
	/* 2^60 per 1 ms = 2^60 * 1000 per second: saturates the 64-bit rate. */
	{ "saturate", { { 0, SEC }, { 1ULL << 60, SEC + 1000000 } }, 2, 1, UINT64_MAX,
	  UINT64_MAX, UINT64_MAX, 1ULL << 60, 0 },
	{ "top of range", { { UINT64_MAX - 10, SEC }, { UINT64_MAX, 2 * SEC } }, 2, 1, 10, 10, 10,
	  UINT64_MAX, 0 },
	/* Reset: no rate for the step that goes down; the next one counts from
	 * the new value. */
	{ "reset", { { 500, SEC }, { 600, 2 * SEC }, { 10, 3 * SEC }, { 110, 4 * SEC } }, 4, 2,
	  200, 100, 100, 110, 1 },
	{ "two resets", { { 500, SEC }, { 400, 2 * SEC }, { 300, 3 * SEC } }, 3, 0, 0, 0, 0,
	  300, 2 },
	/* Same timestamp: no rate; the next interval covers both increases. */
	{ "same time", { { 0, SEC }, { 500, SEC }, { 1000, 2 * SEC } }, 3, 1, 1000, 1000, 1000,
	  1000, 0 },
	{ "time backwards", { { 0, 2 * SEC }, { 500, SEC }, { 1500, 3 * SEC } }, 3, 1, 1500, 1500,
	  1500, 1500, 0 },
	/* Equal-time step followed by a drop is still a reset. */
	{ "same time then drop", { { 100, SEC }, { 150, SEC }, { 120, 2 * SEC } }, 3, 0, 0, 0, 0,
	  120, 1 },
};
/* clang-format on */

START_TEST(test_counter_rates)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("test/counter", HITEL_KIND_COUNTER);
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_series *s;
	struct hitel_hist *h;
	size_t i;

	hitel_registry_lock(reg);
	s = hitel_registry_series(reg, &d, NULL, 0);
	for (i = 0; i < counter_cases[_i].nsteps; i++)
		hitel_series_counter(s, counter_cases[_i].step[i].raw, counter_cases[_i].step[i].t);
	h = hitel_series_hist(s);
	ck_assert_msg(hitel_hist_count(h) == counter_cases[_i].count, "%s: count %llu",
		      counter_cases[_i].what, (unsigned long long)hitel_hist_count(h));
	ck_assert_msg(hitel_hist_sum(h) == counter_cases[_i].sum, "%s: sum %llu",
		      counter_cases[_i].what, (unsigned long long)hitel_hist_sum(h));
	ck_assert_msg(hitel_hist_min(h) == counter_cases[_i].min, "%s: min %llu",
		      counter_cases[_i].what, (unsigned long long)hitel_hist_min(h));
	ck_assert_msg(hitel_hist_max(h) == counter_cases[_i].max, "%s: max %llu",
		      counter_cases[_i].what, (unsigned long long)hitel_hist_max(h));
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 99 * SEC);
	p = hitel_snapshot_point(snap, 0);
	ck_assert_msg(p->value == counter_cases[_i].value, "%s: value %llu", counter_cases[_i].what,
		      (unsigned long long)p->value);
	ck_assert_uint_eq(p->resets, counter_cases[_i].resets);
	ck_assert_uint_eq(p->updated_ns, counter_cases[_i].step[counter_cases[_i].nsteps - 1].t);
	ck_assert_uint_eq(hitel_hist_count(p->hist), counter_cases[_i].count);
	hitel_snapshot_free(snap);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_gauge)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("test/gauge", HITEL_KIND_GAUGE);
	struct hitel_family_desc dn = desc_of("test/gauge_nohist", HITEL_KIND_GAUGE);
	struct hitel_series *s, *n;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	dn.flags = HITEL_FAMILY_NO_HIST;
	hitel_registry_lock(reg);
	s = hitel_registry_series(reg, &d, NULL, 0);
	n = hitel_registry_series(reg, &dn, NULL, 0);
	hitel_series_gauge(s, 5, 10);
	hitel_series_gauge(s, 100, 20);
	hitel_series_gauge(s, 3, 30);
	hitel_series_gauge(n, 42, 40);
	/* Wrong-kind updates are ignored, not mixed in. */
	hitel_series_counter(s, 1000, 50);
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 60);
	p = hitel_snapshot_find(snap, "test/gauge", "");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->kind, HITEL_KIND_GAUGE);
	ck_assert_uint_eq(p->value, 3);
	ck_assert_uint_eq(p->updated_ns, 30);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 108);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 100);
	p = hitel_snapshot_find(snap, "test/gauge_nohist", "");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->value, 42);
	ck_assert_ptr_null(p->hist);
	hitel_snapshot_free(snap);
	hitel_registry_free(reg);
}
END_TEST

/* Zero samples (a counter that did not move, a gauge at 0) are counted in
 * the series and added to its histogram only when something reads it: every
 * reader must see them, in the right window, whatever the order. */
START_TEST(test_deferred_zeros)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc dc = desc_of("test/counter", HITEL_KIND_COUNTER);
	struct hitel_family_desc dg = desc_of("test/gauge", HITEL_KIND_GAUGE);
	struct hitel_snapshot *s1, *s2, *w;
	const struct hitel_point *p;
	struct hitel_series *c, *g;
	uint64_t t = SEC, raw = 1000;
	int i;

	hitel_registry_lock(reg);
	c = hitel_registry_series(reg, &dc, NULL, 0);
	g = hitel_registry_series(reg, &dg, NULL, 0);
	hitel_series_counter(c, raw, t);
	/* 5 unchanged reads, one of +10 in 1 s, 3 unchanged. */
	for (i = 0; i < 5; i++)
		hitel_series_counter(c, raw, t += SEC);
	hitel_series_counter(c, raw += 10, t += SEC);
	for (i = 0; i < 3; i++)
		hitel_series_counter(c, raw, t += SEC);
	hitel_series_gauge(g, 0, t);
	hitel_series_gauge(g, 0, t);
	hitel_series_gauge(g, 7, t);
	hitel_series_gauge(g, 0, t);
	hitel_registry_unlock(reg);

	s1 = hitel_registry_snapshot(reg, t);
	p = hitel_snapshot_find(s1, "test/counter", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 9);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 0), 8);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 10);
	ck_assert_uint_eq(hitel_hist_quantile(p->hist, 0.5), 0);
	p = hitel_snapshot_find(s1, "test/gauge", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 0), 3);
	ck_assert_uint_eq(p->value, 0);

	/* Zeros after the first snapshot belong to the next window only. */
	hitel_registry_lock(reg);
	for (i = 0; i < 4; i++)
		hitel_series_counter(c, raw, t += SEC);
	hitel_registry_unlock(reg);
	s2 = hitel_registry_snapshot(reg, t);
	w = hitel_snapshot_delta(s1, s2);
	ck_assert_ptr_nonnull(w);
	p = hitel_snapshot_find(w, "test/counter", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	p = hitel_snapshot_find(s2, "test/counter", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 13);

	/* The direct accessor flushes too. */
	hitel_registry_lock(reg);
	hitel_series_counter(c, raw, t += SEC);
	ck_assert_uint_eq(hitel_hist_count(hitel_series_hist(c)), 14);
	hitel_registry_unlock(reg);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_hist_load)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("test/latency", HITEL_KIND_HISTOGRAM);
	struct hitel_family_desc dc = desc_of("test/counter", HITEL_KIND_COUNTER);
	struct hitel_series *s, *c;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	uint64_t *counts;
	unsigned int nb;

	d.grouping_power = 2;
	d.max_power = 10;
	hitel_registry_lock(reg);
	s = hitel_registry_series(reg, &d, NULL, 0);
	c = hitel_registry_series(reg, &dc, NULL, 0);
	nb = hitel_hist_buckets(hitel_series_hist(s));
	counts = calloc(nb, sizeof(*counts));
	counts[1] = 3; /* value 1 */
	counts[5] = 2; /* value 5 */
	ck_assert_int_eq(hitel_series_hist_load(s, counts, nb, 13, 77), 0);
	ck_assert_int_eq(hitel_series_hist_load(s, counts, nb - 1, 13, 78), -EINVAL);
	ck_assert_int_eq(hitel_series_hist_load(c, counts, nb, 13, 78), -EINVAL);
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 100);
	p = hitel_snapshot_find(snap, "test/latency", "");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->kind, HITEL_KIND_HISTOGRAM);
	ck_assert_uint_eq(p->value, 5);
	ck_assert_uint_eq(p->updated_ns, 77);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 1), 3);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 5), 2);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 13);
	/* The snapshot owns a copy: later changes do not reach it. */
	hitel_registry_lock(reg);
	hitel_hist_record(hitel_series_hist(s), 2);
	hitel_series_touch(s, 90);
	hitel_registry_unlock(reg);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 5);
	hitel_snapshot_free(snap);

	/* Direct records plus touch show up in value too. */
	snap = hitel_registry_snapshot(reg, 101);
	p = hitel_snapshot_find(snap, "test/latency", "");
	ck_assert_uint_eq(p->value, 6);
	ck_assert_uint_eq(p->updated_ns, 90);
	hitel_snapshot_free(snap);
	free(counts);
	hitel_registry_free(reg);
}
END_TEST

/* ---- snapshots ------------------------------------------------------------ */

START_TEST(test_snapshot_order)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc a = desc_of("ord/a", HITEL_KIND_COUNTER);
	struct hitel_family_desc b = desc_of("ord/b", HITEL_KIND_GAUGE);
	struct hitel_family_desc c = desc_of("ord/c", HITEL_KIND_HISTOGRAM);
	static const struct {
		const char *family, *s;
	} want[] = {{"ord/a", "1"}, {"ord/a", "2"}, {"ord/b", "1"}, {"ord/b", "2"}, {"ord/c", "1"}};
	struct hitel_snapshot *snap;
	size_t i;

	b.unit = "seconds";
	b.scale = -9;
	b.help = "b's help";
	hitel_registry_lock(reg);
	/* Interleaved creation: order is by family first. */
	hitel_registry_series(reg, &a, (struct hitel_label[]){{"s", "1"}}, 1);
	hitel_registry_series(reg, &b, (struct hitel_label[]){{"s", "1"}}, 1);
	hitel_registry_series(reg, &a, (struct hitel_label[]){{"s", "2"}}, 1);
	hitel_registry_series(reg, &b, (struct hitel_label[]){{"s", "2"}}, 1);
	hitel_registry_series(reg, &c, (struct hitel_label[]){{"s", "1"}}, 1);
	hitel_registry_unlock(reg);

	snap = hitel_registry_snapshot(reg, 1234);
	ck_assert_uint_eq(hitel_snapshot_time(snap), 1234);
	ck_assert_uint_eq(hitel_snapshot_start(snap), 1234);
	ck_assert_uint_eq(hitel_snapshot_len(snap), 5);
	for (i = 0; i < 5; i++) {
		const struct hitel_point *p = hitel_snapshot_point(snap, i);

		ck_assert_str_eq(p->family, want[i].family);
		ck_assert_str_eq(hitel_point_label(p, "s"), want[i].s);
		ck_assert_uint_eq(p->updated_ns, 0);
		ck_assert_uint_eq(p->value, 0);
	}
	{
		const struct hitel_point *p = hitel_snapshot_point(snap, 2);

		ck_assert_str_eq(p->unit, "seconds");
		ck_assert_str_eq(p->help, "b's help");
		ck_assert_int_eq(p->scale, -9);
		ck_assert_int_eq(p->kind, HITEL_KIND_GAUGE);
		ck_assert_int_eq(hitel_snapshot_point(snap, 4)->kind, HITEL_KIND_HISTOGRAM);
	}
	hitel_snapshot_free(snap);

	/* An empty registry gives an empty snapshot. */
	hitel_registry_free(reg);
	reg = hitel_registry_new();
	snap = hitel_registry_snapshot(reg, 5);
	ck_assert_ptr_nonnull(snap);
	ck_assert_uint_eq(hitel_snapshot_len(snap), 0);
	ck_assert_ptr_null(hitel_snapshot_point(snap, 0));
	ck_assert_ptr_null(hitel_snapshot_find(snap, "ord/a", ""));
	hitel_snapshot_free(snap);
	hitel_snapshot_free(NULL);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_delta_counter)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("win/counter", HITEL_KIND_COUNTER);
	struct hitel_series *old, *fresh, *rst, *idle, *late;
	struct hitel_snapshot *a, *b, *w;
	const struct hitel_point *p;

	hitel_registry_lock(reg);
	old = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "old"}}, 1);
	rst = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "reset"}}, 1);
	idle = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "idle"}}, 1);
	hitel_series_counter(old, 100, 1 * SEC);
	hitel_series_counter(old, 300, 2 * SEC); /* rate 200 before the window */
	hitel_series_counter(rst, 500, 1 * SEC);
	hitel_registry_unlock(reg);
	a = hitel_registry_snapshot(reg, 2 * SEC);

	hitel_registry_lock(reg);
	hitel_series_counter(old, 700, 3 * SEC);  /* rate 400 inside */
	hitel_series_counter(old, 1000, 4 * SEC); /* rate 300 inside */
	hitel_series_counter(rst, 40, 3 * SEC);	  /* reset */
	hitel_series_counter(rst, 60, 4 * SEC);	  /* rate 20 */
	/* Created in the window: counts from its first value. */
	fresh = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "fresh"}}, 1);
	hitel_series_counter(fresh, 1000, 3 * SEC);
	hitel_series_counter(fresh, 1300, 4 * SEC);
	/* Existed before but got its first value in the window: same. */
	hitel_series_counter(idle, 50, 3 * SEC);
	hitel_series_counter(idle, 80, 4 * SEC);
	/* Created in the window, never updated. */
	late = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "late"}}, 1);
	ck_assert_ptr_nonnull(late);
	hitel_registry_unlock(reg);
	b = hitel_registry_snapshot(reg, 4 * SEC);

	w = hitel_snapshot_delta(a, b);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(hitel_snapshot_start(w), 2 * SEC);
	ck_assert_uint_eq(hitel_snapshot_time(w), 4 * SEC);
	ck_assert_uint_eq(hitel_snapshot_len(w), 5);
	/* Window order is the newer snapshot's order. */
	ck_assert_str_eq(hitel_point_label(hitel_snapshot_point(w, 3), "s"), "fresh");
	ck_assert_str_eq(hitel_point_label(hitel_snapshot_point(w, 4), "s"), "late");

	p = tu_point(w, "win/counter", "s=old");
	ck_assert_uint_eq(p->value, 700);
	ck_assert_uint_eq(p->resets, 0);
	ck_assert_uint_eq(p->updated_ns, 4 * SEC);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 700);
	p = tu_point(w, "win/counter", "s=reset");
	ck_assert_uint_eq(p->value, 60); /* since the reset: a lower bound */
	ck_assert_uint_eq(p->resets, 1);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 20);
	p = tu_point(w, "win/counter", "s=fresh");
	ck_assert_uint_eq(p->value, 300);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 300);
	p = tu_point(w, "win/counter", "s=idle");
	ck_assert_uint_eq(p->value, 30);
	p = tu_point(w, "win/counter", "s=late");
	ck_assert_uint_eq(p->value, 0);
	ck_assert_uint_eq(p->updated_ns, 0);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 0);

	/* The cumulative snapshots are untouched by taking the window. */
	ck_assert_uint_eq(tu_point(b, "win/counter", "s=old")->value, 1000);
	ck_assert_uint_eq(hitel_hist_count(tu_point(b, "win/counter", "s=old")->hist), 3);

	/* A window of a snapshot with itself is empty. */
	hitel_snapshot_free(w);
	w = hitel_snapshot_delta(b, b);
	ck_assert_uint_eq(tu_point(w, "win/counter", "s=old")->value, 0);
	ck_assert_uint_eq(hitel_hist_count(tu_point(w, "win/counter", "s=old")->hist), 0);
	ck_assert_uint_eq(hitel_snapshot_start(w), hitel_snapshot_time(w));

	hitel_snapshot_free(w);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_delta_counter_drop)
{
	/* A counter that drops between snapshots: the drop itself is the
	 * reset, whatever the order of calls inside the window. */
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("win/drop", HITEL_KIND_COUNTER);
	struct hitel_series *s, *up, *fresh;
	struct hitel_snapshot *a, *b, *w;
	const struct hitel_point *p;

	d.flags = HITEL_FAMILY_NO_HIST;
	hitel_registry_lock(reg);
	s = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "down"}}, 1);
	up = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "up"}}, 1);
	hitel_series_counter(s, 1000, SEC);
	hitel_series_counter(up, 100, SEC);
	hitel_registry_unlock(reg);
	a = hitel_registry_snapshot(reg, SEC);
	hitel_registry_lock(reg);
	hitel_series_counter(s, 5, 2 * SEC);
	/* Reset, then past the old value: newer - older (50) would hide the
	 * 100 counted before the reset and mislead; the count since the
	 * reset (150) is the lower bound. */
	hitel_series_counter(up, 0, 2 * SEC);
	hitel_series_counter(up, 150, 3 * SEC);
	/* New in the window, reset before the window ends. */
	fresh = hitel_registry_series(reg, &d, (struct hitel_label[]){{"s", "fresh"}}, 1);
	hitel_series_counter(fresh, 1000, 2 * SEC);
	hitel_series_counter(fresh, 1200, 2 * SEC);
	hitel_series_counter(fresh, 1100, 3 * SEC);
	hitel_registry_unlock(reg);
	b = hitel_registry_snapshot(reg, 3 * SEC);
	w = hitel_snapshot_delta(a, b);
	p = tu_point(w, "win/drop", "s=down");
	ck_assert_uint_eq(p->value, 5);
	ck_assert_uint_eq(p->resets, 1);
	ck_assert_ptr_null(p->hist);
	p = tu_point(w, "win/drop", "s=up");
	ck_assert_uint_eq(p->value, 150);
	ck_assert_uint_eq(p->resets, 1);
	p = tu_point(w, "win/drop", "s=fresh");
	ck_assert_uint_eq(p->value, 1100);
	ck_assert_uint_eq(p->resets, 1);
	hitel_snapshot_free(w);
	hitel_snapshot_free(a);

	/* The next window has no reset of its own: the earlier ones drop out. */
	hitel_registry_lock(reg);
	hitel_series_counter(s, 15, 4 * SEC);
	hitel_registry_unlock(reg);
	a = b;
	b = hitel_registry_snapshot(reg, 4 * SEC);
	w = hitel_snapshot_delta(a, b);
	p = tu_point(w, "win/drop", "s=down");
	ck_assert_uint_eq(p->value, 10);
	ck_assert_uint_eq(p->resets, 0);
	ck_assert_uint_eq(tu_point(w, "win/drop", "s=up")->resets, 0);
	ck_assert_uint_eq(tu_point(w, "win/drop", "s=up")->value, 0);
	ck_assert_uint_eq(tu_point(b, "win/drop", "s=down")->resets, 1);
	hitel_snapshot_free(w);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_delta_gauge_hist)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc dg = desc_of("win/gauge", HITEL_KIND_GAUGE);
	struct hitel_family_desc dh = desc_of("win/hist", HITEL_KIND_HISTOGRAM);
	struct hitel_series *g, *h, *h2;
	struct hitel_snapshot *a, *b, *w;
	const struct hitel_point *p;
	uint64_t *c1, *c2;
	unsigned int nb;

	dh.grouping_power = 3;
	dh.max_power = 16;
	hitel_registry_lock(reg);
	g = hitel_registry_series(reg, &dg, NULL, 0);
	h = hitel_registry_series(reg, &dh, (struct hitel_label[]){{"k", "grow"}}, 1);
	h2 = hitel_registry_series(reg, &dh, (struct hitel_label[]){{"k", "reset"}}, 1);
	nb = hitel_hist_buckets(hitel_series_hist(h));
	c1 = calloc(nb, sizeof(*c1));
	c2 = calloc(nb, sizeof(*c2));
	c1[3] = 10;
	c1[9] = 4;
	ck_assert_int_eq(hitel_series_hist_load(h, c1, nb, 30 + 36, SEC), 0);
	ck_assert_int_eq(hitel_series_hist_load(h2, c1, nb, 30 + 36, SEC), 0);
	hitel_series_gauge(g, 1000, SEC);
	hitel_series_gauge(g, 2000, SEC);
	hitel_registry_unlock(reg);
	a = hitel_registry_snapshot(reg, SEC);

	hitel_registry_lock(reg);
	hitel_series_gauge(g, 7, 2 * SEC);
	hitel_series_gauge(g, 9, 3 * SEC);
	memcpy(c2, c1, nb * sizeof(*c2));
	c2[3] = 15; /* +5 */
	c2[12] = 2; /* +2 */
	ck_assert_int_eq(hitel_series_hist_load(h, c2, nb, 66 + 5 * 3 + 2 * 12, 3 * SEC), 0);
	memset(c2, 0, nb * sizeof(*c2));
	c2[1] = 6; /* went down elsewhere: a reset */
	ck_assert_int_eq(hitel_series_hist_load(h2, c2, nb, 6, 3 * SEC), 0);
	hitel_registry_unlock(reg);
	b = hitel_registry_snapshot(reg, 3 * SEC);

	w = hitel_snapshot_delta(a, b);
	ck_assert_ptr_nonnull(w);
	p = tu_point(w, "win/gauge", "");
	ck_assert_uint_eq(p->value, 9);
	ck_assert_uint_eq(p->updated_ns, 3 * SEC);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 16);
	ck_assert_uint_le(hitel_hist_max(p->hist), 9);

	p = tu_point(w, "win/hist", "k=grow");
	ck_assert_uint_eq(p->value, 7);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 3), 5);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 9), 0);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 12), 2);
	ck_assert_uint_eq(hitel_hist_sum(p->hist), 5 * 3 + 2 * 12);
	ck_assert_uint_eq(p->resets, 0);

	p = tu_point(w, "win/hist", "k=reset");
	ck_assert_uint_eq(p->value, 6);
	ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, 1), 6);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 6);

	hitel_snapshot_free(w);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	free(c1);
	free(c2);
	hitel_registry_free(reg);
}
END_TEST

/* ---- compact snapshot histograms ------------------------------------------ */

static uint64_t rs = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rs ^= rs >> 12;
	rs ^= rs << 25;
	rs ^= rs >> 27;
	return rs * 2685821657736338717ULL;
}

/* Mostly idle with a few decades of activity, like real rates; latencies
 * over four decades. */
static uint64_t draw_rate(void)
{
	return rnd() % 10 < 6 ? 0 : 1000 + (rnd() % 1000) * (1ULL << (rnd() % 10));
}

static uint64_t draw_latency(void)
{
	return 10000 + (rnd() % 100) * (1ULL << (rnd() % 17));
}

/* A read-only copy reads exactly like what it copies: totals, every
 * bucket, iteration and quantiles. */
static void assert_hist_same(const struct hitel_hist *want, const struct hitel_hist *got,
			     const char *what)
{
	static const double qs[] = {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0};
	uint64_t qa[7], qb[7];
	struct hitel_hist_bucket a, b;
	unsigned int ca = 0, cb = 0, i;
	int ra, rb;

	ck_assert_uint_eq(hitel_hist_grouping_power(want), hitel_hist_grouping_power(got));
	ck_assert_uint_eq(hitel_hist_buckets(want), hitel_hist_buckets(got));
	ck_assert_msg(hitel_hist_count(want) == hitel_hist_count(got), "%s: count %llu vs %llu",
		      what, (unsigned long long)hitel_hist_count(want),
		      (unsigned long long)hitel_hist_count(got));
	ck_assert_uint_eq(hitel_hist_sum(want), hitel_hist_sum(got));
	ck_assert_uint_eq(hitel_hist_min(want), hitel_hist_min(got));
	ck_assert_uint_eq(hitel_hist_max(want), hitel_hist_max(got));
	ck_assert_uint_eq(hitel_hist_overflow(want), hitel_hist_overflow(got));
	for (i = 0; i < hitel_hist_buckets(want); i++)
		ck_assert_uint_eq(hitel_hist_bucket_count(want, i),
				  hitel_hist_bucket_count(got, i));
	hitel_hist_quantiles(want, qs, 7, qa);
	hitel_hist_quantiles(got, qs, 7, qb);
	for (i = 0; i < 7; i++)
		ck_assert_msg(qa[i] == qb[i], "%s: q%g %llu vs %llu", what, qs[i],
			      (unsigned long long)qa[i], (unsigned long long)qb[i]);
	do {
		ra = hitel_hist_next(want, &ca, &a);
		rb = hitel_hist_next(got, &cb, &b);
		ck_assert_int_eq(ra, rb);
		if (ra) {
			ck_assert_uint_eq(a.index, b.index);
			ck_assert_uint_eq(a.count, b.count);
		}
	} while (ra);
}

#define COMPACT_SERIES 40
/* Rate series first, then latency ones: snapshot order is family creation
 * order, then series order. */
#define IS_LATENCY(i) ((i) >= COMPACT_SERIES * 3 / 4)

/* Every histogram of snapshot snap is compact and equals the live one. */
static size_t assert_snapshot_compact(struct hitel_registry *reg, const struct hitel_snapshot *snap,
				      struct hitel_series *const *ser, size_t n)
{
	size_t i, bytes = 0;

	ck_assert_uint_eq(hitel_snapshot_len(snap), n + 1);
	for (i = 0; i < n; i++) {
		const struct hitel_point *p = hitel_snapshot_point(snap, i);

		ck_assert_ptr_nonnull(p->hist);
		ck_assert_int_eq(hitel_hist_is_compact(p->hist), 1);
		hitel_registry_lock(reg);
		assert_hist_same(hitel_series_hist(ser[i]), p->hist, p->family);
		hitel_registry_unlock(reg);
		if (p->kind == HITEL_KIND_HISTOGRAM)
			ck_assert_uint_eq(p->value, hitel_hist_count(p->hist));
		bytes += hitel_hist_size(p->hist);
	}
	ck_assert_ptr_null(hitel_snapshot_point(snap, n)->hist); /* NO_HIST */
	return bytes;
}

START_TEST(test_snapshot_compact)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc dc = desc_of("cmp/rate", HITEL_KIND_COUNTER);
	struct hitel_family_desc dh = desc_of("cmp/latency", HITEL_KIND_HISTOGRAM);
	struct hitel_family_desc dn = desc_of("cmp/plain", HITEL_KIND_GAUGE);
	struct hitel_series *ser[COMPACT_SERIES + 20], *plain;
	struct hitel_hist *ref[COMPACT_SERIES], *want;
	struct hitel_snapshot *s1, *s2, *s3, *w;
	size_t i, dense = 0, bytes, adjacent = 0;
	uint64_t raw[COMPACT_SERIES] = {0};
	unsigned int k;
	char v[16];

	dn.flags = HITEL_FAMILY_NO_HIST;
	hitel_registry_lock(reg);
	for (i = 0; i < COMPACT_SERIES; i++) {
		struct hitel_label l = {"i", v};

		snprintf(v, sizeof(v), "%zu", i);
		ser[i] = hitel_registry_series(reg, IS_LATENCY(i) ? &dh : &dc, &l, 1);
		ck_assert_ptr_nonnull(ser[i]);
	}
	plain = hitel_registry_series(reg, &dn, NULL, 0);
	ck_assert_ptr_nonnull(plain);
	hitel_series_gauge(plain, 5, SEC);
	/* Counters record through their rates (1 s apart: rate = increase);
	 * histogram series directly. */
	for (k = 1; k <= 2000; k++) {
		for (i = 0; i < COMPACT_SERIES; i++) {
			if (IS_LATENCY(i)) {
				hitel_hist_record(hitel_series_hist(ser[i]), draw_latency());
				continue;
			}
			raw[i] += draw_rate();
			hitel_series_counter(ser[i], raw[i], k * SEC);
		}
	}
	for (i = 0; i < COMPACT_SERIES; i++)
		dense += sizeof(struct hitel_hist) +
			 hitel_hist_buckets(hitel_series_hist(ser[i])) * sizeof(uint64_t);
	hitel_registry_unlock(reg);

	/* The first snapshot sizes the next ones. */
	s1 = hitel_registry_snapshot(reg, 10 * SEC);
	ck_assert_ptr_nonnull(s1);
	bytes = assert_snapshot_compact(reg, s1, ser, COMPACT_SERIES);
	ck_assert_msg(bytes * 4 < dense, "compact %zu bytes vs dense %zu", bytes, dense);
	hitel_snapshot_free(s1);
	s1 = hitel_registry_snapshot(reg, 11 * SEC);
	ck_assert_ptr_nonnull(s1);
	ck_assert_uint_eq(assert_snapshot_compact(reg, s1, ser, COMPACT_SERIES), bytes);
	/* ... into one block: back to back. */
	for (i = 0; i + 1 < COMPACT_SERIES; i++) {
		const struct hitel_hist *a = hitel_snapshot_point(s1, i)->hist;

		adjacent += (const char *)a + hitel_hist_size(a) ==
			    (const char *)hitel_snapshot_point(s1, i + 1)->hist;
	}
	ck_assert_uint_eq(adjacent, COMPACT_SERIES - 1);

	/* A window: only what was recorded in it, compact too. */
	hitel_registry_lock(reg);
	for (i = 0; i < COMPACT_SERIES; i++) {
		ref[i] = hitel_hist_new(hitel_hist_grouping_power(hitel_series_hist(ser[i])), 64);
		for (k = 0; k < 50; k++) {
			uint64_t x = IS_LATENCY(i) ? draw_latency() : draw_rate();

			if (IS_LATENCY(i)) {
				hitel_hist_record(hitel_series_hist(ser[i]), x);
			} else {
				raw[i] += x;
				hitel_series_counter(ser[i], raw[i], (2001 + k) * SEC);
			}
			hitel_hist_record(ref[i], x);
		}
	}
	hitel_registry_unlock(reg);
	s2 = hitel_registry_snapshot(reg, 12 * SEC);
	ck_assert_ptr_nonnull(s2);
	assert_snapshot_compact(reg, s2, ser, COMPACT_SERIES);
	w = hitel_snapshot_delta(s1, s2);
	ck_assert_ptr_nonnull(w);
	bytes = 0;
	for (i = 0; i < COMPACT_SERIES; i++) {
		const struct hitel_point *p = hitel_snapshot_point(w, i);

		want = hitel_hist_new(hitel_hist_grouping_power(p->hist), 64);
		ck_assert_int_eq(hitel_hist_delta(hitel_snapshot_point(s1, i)->hist,
						  hitel_snapshot_point(s2, i)->hist, want),
				 0);
		ck_assert_int_eq(hitel_hist_is_compact(p->hist), 1);
		assert_hist_same(want, p->hist, "window");
		/* The buckets are exactly those recorded in the window. */
		ck_assert_uint_eq(hitel_hist_count(p->hist), 50);
		ck_assert_uint_eq(hitel_hist_sum(p->hist), hitel_hist_sum(ref[i]));
		for (k = 0; k < hitel_hist_buckets(ref[i]); k++)
			ck_assert_uint_eq(hitel_hist_bucket_count(p->hist, k),
					  hitel_hist_bucket_count(ref[i], k));
		bytes += hitel_hist_size(p->hist);
		hitel_hist_free(want);
		hitel_hist_free(ref[i]);
	}
	ck_assert_msg(bytes * 20 < dense, "window %zu bytes vs dense %zu", bytes, dense);
	hitel_snapshot_free(w);

	/* Twenty more series than the last snapshot sized for (in the latency
	 * family: before cmp/plain): they get their own allocations, and read
	 * the same. */
	hitel_registry_lock(reg);
	for (i = COMPACT_SERIES; i < COMPACT_SERIES + 20; i++) {
		struct hitel_label l = {"i", v};

		snprintf(v, sizeof(v), "%zu", i);
		ser[i] = hitel_registry_series(reg, &dh, &l, 1);
		for (k = 0; k < 3000; k++)
			hitel_hist_record(hitel_series_hist(ser[i]), draw_latency());
	}
	hitel_registry_unlock(reg);
	s3 = hitel_registry_snapshot(reg, 13 * SEC);
	ck_assert_ptr_nonnull(s3);
	ck_assert_uint_eq(hitel_snapshot_len(s3), COMPACT_SERIES + 21);
	ck_assert_ptr_null(hitel_snapshot_point(s3, COMPACT_SERIES + 20)->hist);
	for (i = 0; i < COMPACT_SERIES + 20; i++) {
		hitel_registry_lock(reg);
		assert_hist_same(hitel_series_hist(ser[i]), hitel_snapshot_point(s3, i)->hist,
				 "grown");
		hitel_registry_unlock(reg);
	}
	/* A window over the growth: new series count from their creation. */
	w = hitel_snapshot_delta(s2, s3);
	ck_assert_ptr_nonnull(w);
	for (i = COMPACT_SERIES; i < COMPACT_SERIES + 20; i++)
		assert_hist_same(hitel_snapshot_point(s3, i)->hist,
				 hitel_snapshot_point(w, i)->hist, "new series window");
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_snapshot_free(s3);
	hitel_registry_free(reg);
}
END_TEST

/* A group records exactly what per-series updates record: two registries
 * get the same reads, one through a group, one series by series, with
 * repeats (mostly), changes, resets, a time that does not advance and
 * snapshots taken in between; every snapshot of the two must be equal. */
#define GROUP_N 6
static void assert_points_same(const struct hitel_snapshot *a, const struct hitel_snapshot *b)
{
	size_t i;

	ck_assert_uint_eq(hitel_snapshot_len(a), hitel_snapshot_len(b));
	for (i = 0; i < hitel_snapshot_len(a); i++) {
		const struct hitel_point *pa = hitel_snapshot_point(a, i);
		const struct hitel_point *pb = hitel_snapshot_point(b, i);

		ck_assert_str_eq(pa->family, pb->family);
		ck_assert_uint_eq(pa->value, pb->value);
		ck_assert_uint_eq(pa->updated_ns, pb->updated_ns);
		ck_assert_uint_eq(pa->resets, pb->resets);
		ck_assert_int_eq(pa->hist != NULL, pb->hist != NULL);
		if (pa->hist)
			assert_hist_same(pa->hist, pb->hist, pa->family);
	}
}

/* Snapshots of ra and rb at t hold the same points. */
static void assert_registries_same(struct hitel_registry *ra, struct hitel_registry *rb, uint64_t t)
{
	struct hitel_snapshot *a = hitel_registry_snapshot(ra, t);
	struct hitel_snapshot *b = hitel_registry_snapshot(rb, t);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	assert_points_same(a, b);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
}

START_TEST(test_group_same_as_series)
{
	struct hitel_registry *ra = hitel_registry_new(), *rb = hitel_registry_new();
	struct hitel_series *sa[GROUP_N], *sb[GROUP_N];
	struct hitel_series_group *g;
	uint64_t raw[GROUP_N] = {0}, t = SEC, max_pending = 0;
	int i, step, snaps = 0, repeats = 0, said_repeat = 0;

	for (i = 0; i < GROUP_N; i++) {
		char name[32];
		struct hitel_family_desc d;

		snprintf(name, sizeof(name), "test/group/c%d", i);
		d = desc_of(name, HITEL_KIND_COUNTER);
		if (i == GROUP_N - 1)
			d.flags = HITEL_FAMILY_NO_HIST; /* members without a histogram too */
		hitel_registry_lock(ra);
		sa[i] = hitel_registry_series(ra, &d, NULL, 0);
		hitel_registry_unlock(ra);
		hitel_registry_lock(rb);
		sb[i] = hitel_registry_series(rb, &d, NULL, 0);
		hitel_registry_unlock(rb);
	}
	hitel_registry_lock(rb);
	sb[2] = NULL; /* a member the cap refused: skipped */
	g = hitel_series_group_new(rb, sb, GROUP_N);
	hitel_registry_unlock(rb);
	ck_assert_ptr_nonnull(g);
	sa[2] = NULL;

	rs = 0x1234567ULL;
	for (step = 0; step < 4000; step++) {
		uint64_t r = rnd() % 100;

		if (r < 8)
			raw[rnd() % GROUP_N] += rnd() % 5000; /* one counter moves */
		else if (r < 9)
			raw[rnd() % GROUP_N] = rnd() % 100; /* a reset (or a move) */
		if (rnd() % 50 != 0)
			t += 10 * 1000 * 1000; /* else the same time again */
		repeats += r >= 9;
		hitel_registry_lock(ra);
		for (i = 0; i < GROUP_N; i++)
			hitel_series_counter(sa[i], raw[i], t);
		hitel_registry_unlock(ra);
		hitel_registry_lock(rb);
		/* A sampler that saw the same text says so instead of values. */
		if (r >= 9 && step > 0 && rnd() % 2) {
			ck_assert_int_eq(hitel_series_group_repeat(g, t), 0);
			said_repeat++;
		} else {
			hitel_series_group_counters(g, raw, t);
		}
		if (hitel_series_group_pending(g) > max_pending)
			max_pending = hitel_series_group_pending(g);
		hitel_registry_unlock(rb);
		if (rnd() % 97 == 0) {
			assert_registries_same(ra, rb, t);
			ck_assert_uint_eq(hitel_series_group_pending(g), 0);
			snaps++;
		}
		if (step % 500 == 499) {
			/* The direct accessor folds what is pending too. */
			hitel_registry_lock(ra);
			hitel_registry_lock(rb);
			ck_assert_uint_eq(hitel_hist_count(hitel_series_hist(sa[0])),
					  hitel_hist_count(hitel_series_hist(sb[0])));
			hitel_registry_unlock(rb);
			hitel_registry_unlock(ra);
		}
	}
	ck_assert_int_gt(snaps, 10);
	ck_assert_int_gt(repeats, 3000);
	ck_assert_int_gt(said_repeat, 1000);
	/* Repeats were counted on the group, not on each member. */
	ck_assert_uint_gt(max_pending, 5);

	/* Freed, the group leaves its reads in the members, which then work
	 * alone or in a new group. */
	hitel_registry_lock(rb);
	hitel_series_group_counters(g, raw, t += SEC);
	hitel_series_group_free(g);
	g = hitel_series_group_new(rb, sb, GROUP_N);
	ck_assert_ptr_nonnull(g);
	hitel_registry_unlock(rb);
	hitel_registry_lock(ra);
	for (i = 0; i < GROUP_N; i++)
		hitel_series_counter(sa[i], raw[i], t);
	hitel_registry_unlock(ra);
	assert_registries_same(ra, rb, t);
	/* The registry may go first: the owner's free still works. */
	hitel_registry_free(rb);
	ck_assert_int_eq(hitel_series_group_repeat(g, t + SEC), -EINVAL);
	hitel_series_group_free(g);
	hitel_series_group_free(NULL);
	hitel_registry_free(ra);
}
END_TEST

START_TEST(test_group_invalid)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc dc = desc_of("test/counter", HITEL_KIND_COUNTER);
	struct hitel_family_desc dg = desc_of("test/gauge", HITEL_KIND_GAUGE);
	struct hitel_series *m[2];
	struct hitel_series_group *g;

	hitel_registry_lock(reg);
	m[0] = hitel_registry_series(reg, &dc, NULL, 0);
	m[1] = hitel_registry_series(reg, &dg, NULL, 0);
	errno = 0;
	ck_assert_ptr_null(hitel_series_group_new(reg, m, 2)); /* a gauge */
	ck_assert_int_eq(errno, EINVAL);
	g = hitel_series_group_new(reg, m, 1);
	ck_assert_ptr_nonnull(g);
	/* A repeat of nothing: the caller must give values first. */
	ck_assert_int_eq(hitel_series_group_repeat(g, SEC), -EAGAIN);
	ck_assert_uint_eq(hitel_series_group_pending(g), 0);
	ck_assert_int_eq(hitel_series_group_repeat(NULL, SEC), -EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_series_group_new(reg, m, 1)); /* already grouped */
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(hitel_series_group_new(NULL, m, 1));
	hitel_series_group_free(g);
	g = hitel_series_group_new(reg, m, 1); /* free again after the group went */
	ck_assert_ptr_nonnull(g);
	hitel_series_group_free(g);
	hitel_registry_unlock(reg);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_delta_invalid)
{
	struct hitel_registry *r1 = hitel_registry_new(), *r2 = hitel_registry_new();
	struct hitel_snapshot *a, *b, *c, *w;

	a = hitel_registry_snapshot(r1, 1);
	b = hitel_registry_snapshot(r1, 2);
	c = hitel_registry_snapshot(r2, 3);
	w = hitel_snapshot_delta(a, b);
	ck_assert_ptr_nonnull(w);
	errno = 0;
	ck_assert_ptr_null(hitel_snapshot_delta(b, a)); /* older is newer */
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_snapshot_delta(b, c)); /* another registry */
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_snapshot_delta(a, w)); /* a window is not cumulative */
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(hitel_snapshot_delta(NULL, b));
	ck_assert_int_eq(errno, EINVAL);
	hitel_snapshot_free(w);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_snapshot_free(c);
	hitel_registry_free(r1);
	hitel_registry_free(r2);
}
END_TEST

/* clang-format off */
static const struct {
	const char *family, *labels;
	const char *want; /* value of label "who" in the found point, NULL: none */
} finds[] = {
	{ "f/one", "a=1,b=2", "ab" },
	{ "f/one", "b=2,a=1", "ab" }, /* order does not matter for lookup */
	{ "f/one", "a=1", NULL },
	{ "f/one", "a=1,b=2,c=3", NULL },
	{ "f/one", "a=1,a=1,who=ab", NULL }, /* right count, a name twice */
	{ "f/one", "a=1,b=2,c=3,who=ab", NULL }, /* a superset */
	{ "f/one", "a=1,b=3,who=ab", NULL },
	{ "f/one", "a=1,c=2,who=ab", NULL },
	{ "f/one", "a=1,b=22", NULL },
	{ "f/one", "a=1,b=", NULL },
	{ "f/one", "a=12", "a12" },
	{ "f/one", "a=", "empty" },
	{ "f/one", "", "none" },
	{ "f/two", "", NULL },
	{ "f/on", "a=12", NULL },
};
/* clang-format on */

START_TEST(test_find)
{
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_family_desc d = desc_of("f/one", HITEL_KIND_GAUGE);
	struct hitel_label ab[] = {{"a", "1"}, {"b", "2"}, {"who", "ab"}};
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	/* "who" is part of every label set; finds[] does not name it, so it
	 * is added to the spec below. */
	hitel_registry_lock(reg);
	hitel_registry_series(reg, &d, ab, 3);
	hitel_registry_series(reg, &d, (struct hitel_label[]){{"a", "12"}, {"who", "a12"}}, 2);
	hitel_registry_series(reg, &d, (struct hitel_label[]){{"a", ""}, {"who", "empty"}}, 2);
	hitel_registry_series(reg, &d, (struct hitel_label[]){{"who", "none"}}, 1);
	hitel_registry_unlock(reg);
	snap = hitel_registry_snapshot(reg, 1);
	{
		char spec[64];

		if (finds[_i].want)
			snprintf(spec, sizeof(spec), "%s%swho=%s", finds[_i].labels,
				 *finds[_i].labels ? "," : "", finds[_i].want);
		else
			snprintf(spec, sizeof(spec), "%s", finds[_i].labels);
		p = hitel_snapshot_find(snap, finds[_i].family, spec);
		if (!finds[_i].want) {
			ck_assert_msg(p == NULL, "%s{%s} found", finds[_i].family, spec);
		} else {
			ck_assert_msg(p != NULL, "%s{%s} missing", finds[_i].family, spec);
			ck_assert_str_eq(hitel_point_label(p, "who"), finds[_i].want);
		}
		/* Without "who", a spec never matches: every series has it. */
		ck_assert_ptr_null(hitel_snapshot_find(snap, finds[_i].family, finds[_i].labels));
	}
	p = hitel_snapshot_point(snap, 0);
	ck_assert_str_eq(hitel_point_label(p, "a"), "1");
	ck_assert_str_eq(hitel_point_label(p, "b"), "2");
	ck_assert_ptr_null(hitel_point_label(p, "c"));
	ck_assert_ptr_null(hitel_point_label(p, NULL));
	ck_assert_ptr_null(hitel_point_label(NULL, "a"));
	hitel_snapshot_free(snap);
	hitel_registry_free(reg);
}
END_TEST

START_TEST(test_ids)
{
	struct hitel_registry *r1 = hitel_registry_new(), *r2 = hitel_registry_new();
	struct hitel_family_desc d = desc_of("cpu/usage", HITEL_KIND_COUNTER);
	struct hitel_family_desc other = desc_of("cpu/other", HITEL_KIND_COUNTER);
	struct hitel_family_desc fa = desc_of("a", HITEL_KIND_COUNTER);
	struct hitel_family_desc fab = desc_of("ab", HITEL_KIND_COUNTER);
	struct hitel_label cpu0[] = {{"cpu", "0"}, {"state", "user"}};
	struct hitel_label cpu1[] = {{"cpu", "1"}, {"state", "user"}};
	struct hitel_label swapped[] = {{"state", "user"}, {"cpu", "0"}};
	struct hitel_snapshot *s1, *s2;
	static const char bytes[] = "cpu/usage\0cpu\0000\0state\0user";
	uint64_t id;

	hitel_registry_lock(r1);
	hitel_registry_series(r1, &d, cpu0, 2);
	hitel_registry_series(r1, &d, cpu1, 2);
	hitel_registry_series(r1, &d, swapped, 2);
	hitel_registry_series(r1, &other, cpu0, 2);
	hitel_registry_series(r1, &fa, (struct hitel_label[]){{"bx", "1"}}, 1);
	hitel_registry_series(r1, &fab, (struct hitel_label[]){{"x", "1"}}, 1);
	hitel_registry_series(r1, &d, NULL, 0);
	hitel_registry_unlock(r1);
	/* Another registry, other creation order. */
	hitel_registry_lock(r2);
	hitel_registry_series(r2, &other, cpu1, 2);
	hitel_registry_series(r2, &d, cpu1, 2);
	hitel_registry_series(r2, &d, cpu0, 2);
	hitel_registry_unlock(r2);
	s1 = hitel_registry_snapshot(r1, 1);
	s2 = hitel_registry_snapshot(r2, 1);

	id = tu_point(s1, "cpu/usage", "cpu=0,state=user")->id;
	/* The documented contract: FNV-1a 64 over name, 0, then per label
	 * name, 0, value, 0 (sizeof includes the literal's final 0). */
	ck_assert_uint_eq(id, fnv_bytes(bytes, sizeof(bytes)));
	ck_assert_uint_eq(tu_point(s2, "cpu/usage", "cpu=0,state=user")->id, id);
	ck_assert_uint_eq(tu_point(s2, "cpu/usage", "cpu=1,state=user")->id,
			  tu_point(s1, "cpu/usage", "cpu=1,state=user")->id);
	ck_assert_uint_ne(tu_point(s1, "cpu/usage", "cpu=1,state=user")->id, id);
	ck_assert_uint_ne(hitel_snapshot_point(s1, 2)->id, id); /* swapped order */
	ck_assert_uint_ne(tu_point(s1, "cpu/other", "cpu=0,state=user")->id, id);
	ck_assert_uint_ne(tu_point(s1, "a", "bx=1")->id, tu_point(s1, "ab", "x=1")->id);
	ck_assert_uint_eq(tu_point(s1, "cpu/usage", "")->id,
			  fnv_bytes("cpu/usage", sizeof("cpu/usage")));
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_registry_free(r1);
	hitel_registry_free(r2);
}
END_TEST

/* ---- concurrency ---------------------------------------------------------- */

#define CONC_SERIES 100
#define CONC_BATCHES 1000
#define CONC_MIN_SNAPS 20
#define CONC_MAX_SNAPS 150 /* bounds the run time under valgrind */

struct conc {
	struct hitel_registry *reg;
	struct hitel_series *gauges[CONC_SERIES];
	struct hitel_series *counters[CONC_SERIES];
	int done;
	int snaps[2];
};

static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	struct hitel_family_desc grow = desc_of("conc/grow", HITEL_KIND_GAUGE);
	uint64_t batch, deadline = tu_now() + 60 * SEC;
	int i;

	grow.grouping_power = 2;
	grow.max_power = 24;
	/* Runs CONC_BATCHES batches, then on until both readers have seen
	 * enough snapshots, so they race with writes for real. Yielding lets
	 * them get the lock at all (mutexes are not fair); the time bound
	 * only guards against a hang. */
	for (batch = 1; batch <= CONC_BATCHES ||
			((__atomic_load_n(&c->snaps[0], __ATOMIC_RELAXED) < CONC_MIN_SNAPS ||
			  __atomic_load_n(&c->snaps[1], __ATOMIC_RELAXED) < CONC_MIN_SNAPS) &&
			 tu_now() < deadline);
	     batch++) {
		hitel_registry_lock(c->reg);
		for (i = 0; i < CONC_SERIES; i++) {
			hitel_series_gauge(c->gauges[i], batch, batch);
			hitel_series_counter(c->counters[i], batch * 10, batch * SEC);
		}
		/* New series while readers run: a snapshot sized before one
		 * was created must still copy it. */
		if (batch % 4 == 0 && batch <= CONC_BATCHES) {
			char v[16];
			struct hitel_label l = {"n", v};

			snprintf(v, sizeof(v), "%llu", (unsigned long long)batch);
			hitel_series_gauge(hitel_registry_series(c->reg, &grow, &l, 1), batch,
					   batch);
		}
		hitel_registry_unlock(c->reg);
		sched_yield();
	}
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct reader {
	struct conc *c;
	int idx;
	char error[256];
};

static void check_snapshot(struct reader *r, const struct hitel_snapshot *snap)
{
	const struct hitel_point *p;
	uint64_t batch, count;
	size_t i, n = hitel_snapshot_len(snap), grown = 0;

	if (n < 2 * CONC_SERIES) {
		snprintf(r->error, sizeof(r->error), "snapshot has %zu points", n);
		return;
	}
	batch = hitel_snapshot_point(snap, 0)->value;
	for (i = 0; i < CONC_SERIES; i++) {
		p = hitel_snapshot_point(snap, i);
		count = hitel_hist_count(p->hist);
		if (p->value != batch || p->updated_ns != batch || count != batch) {
			snprintf(r->error, sizeof(r->error),
				 "gauge %zu: value %llu, hist %llu, batch %llu", i,
				 (unsigned long long)p->value, (unsigned long long)count,
				 (unsigned long long)batch);
			return;
		}
		p = hitel_snapshot_point(snap, CONC_SERIES + i);
		count = hitel_hist_count(p->hist);
		/* Counter rates: one per batch after the first. */
		if (p->value != batch * 10 || count != (batch ? batch - 1 : 0)) {
			snprintf(r->error, sizeof(r->error),
				 "counter %zu: value %llu, rates %llu, batch %llu", i,
				 (unsigned long long)p->value, (unsigned long long)count,
				 (unsigned long long)batch);
			return;
		}
	}
	for (i = 2 * CONC_SERIES; i < n; i++) {
		p = hitel_snapshot_point(snap, i);
		if (strcmp(p->family, "conc/grow") != 0 || p->value > batch) {
			snprintf(r->error, sizeof(r->error), "grown point %zu: %s %llu", i,
				 p->family, (unsigned long long)p->value);
			return;
		}
		grown++;
	}
	/* One grown series per 4 batches, created in the same batch. */
	if (grown != (batch < CONC_BATCHES ? batch : CONC_BATCHES) / 4)
		snprintf(r->error, sizeof(r->error), "batch %llu but %zu grown series",
			 (unsigned long long)batch, grown);
}

static void *conc_reader(void *arg)
{
	struct reader *r = arg;
	struct conc *c = r->c;
	struct hitel_snapshot *prev = NULL;

	while (!r->error[0] && c->snaps[r->idx] < CONC_MAX_SNAPS &&
	       (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) || c->snaps[r->idx] < 1)) {
		struct hitel_snapshot *snap = hitel_registry_snapshot(c->reg, tu_now());

		if (!snap) {
			snprintf(r->error, sizeof(r->error), "snapshot failed");
			break;
		}
		check_snapshot(r, snap);
		if (prev && !r->error[0]) {
			struct hitel_snapshot *w = hitel_snapshot_delta(prev, snap);

			if (!w || hitel_snapshot_len(w) != hitel_snapshot_len(snap))
				snprintf(r->error, sizeof(r->error), "window failed");
			hitel_snapshot_free(w);
		}
		hitel_snapshot_free(prev);
		prev = snap;
		__atomic_add_fetch(&c->snaps[r->idx], 1, __ATOMIC_RELAXED);
	}
	hitel_snapshot_free(prev);
	return NULL;
}

START_TEST(test_concurrent_snapshots)
{
	struct conc *c = calloc(1, sizeof(*c));
	struct hitel_family_desc dg = desc_of("conc/gauge", HITEL_KIND_GAUGE);
	struct hitel_family_desc dc = desc_of("conc/counter", HITEL_KIND_COUNTER);
	struct reader readers[2];
	pthread_t w, r[2];
	char v[16];
	int i;

	/* Small value histograms keep snapshots cheap (more of them race);
	 * the counters keep the default rate shape. */
	dg.grouping_power = 2;
	dg.max_power = 24;
	c->reg = hitel_registry_new();
	hitel_registry_lock(c->reg);
	for (i = 0; i < CONC_SERIES; i++) {
		struct hitel_label l = {"i", v};

		snprintf(v, sizeof(v), "%d", i);
		c->gauges[i] = hitel_registry_series(c->reg, &dg, &l, 1);
		c->counters[i] = hitel_registry_series(c->reg, &dc, &l, 1);
		ck_assert_ptr_nonnull(c->gauges[i]);
		ck_assert_ptr_nonnull(c->counters[i]);
	}
	hitel_registry_unlock(c->reg);

	for (i = 0; i < 2; i++) {
		memset(&readers[i], 0, sizeof(readers[i]));
		readers[i].c = c;
		readers[i].idx = i;
		ck_assert_int_eq(pthread_create(&r[i], NULL, conc_reader, &readers[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&w, NULL, conc_writer, c), 0);
	pthread_join(w, NULL);
	pthread_join(r[0], NULL);
	pthread_join(r[1], NULL);
	ck_assert_msg(!readers[0].error[0], "reader 0: %s", readers[0].error);
	ck_assert_msg(!readers[1].error[0], "reader 1: %s", readers[1].error);
	ck_assert_int_ge(c->snaps[0], CONC_MIN_SNAPS);
	ck_assert_int_ge(c->snaps[1], CONC_MIN_SNAPS);
	hitel_registry_free(c->reg);
	free(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_family_get_or_create);
	tcase_add_test(tc, test_family_many);
	tcase_add_loop_test(tc, test_family_names, 0,
			    (int)(sizeof(family_names) / sizeof(family_names[0])));
	tcase_add_test(tc, test_family_invalid_desc);
	tcase_add_loop_test(tc, test_hist_shapes, 0, (int)(sizeof(shapes) / sizeof(shapes[0])));
	tcase_add_test(tc, test_series_identity);
	tcase_add_test(tc, test_series_many);
	tcase_add_loop_test(tc, test_series_bad_labels, 0,
			    (int)(sizeof(bad_labels) / sizeof(bad_labels[0])));
	tcase_add_test(tc, test_series_cap);
	tcase_add_loop_test(tc, test_counter_rates, 0,
			    (int)(sizeof(counter_cases) / sizeof(counter_cases[0])));
	tcase_add_test(tc, test_gauge);
	tcase_add_test(tc, test_deferred_zeros);
	tcase_add_test(tc, test_group_same_as_series);
	tcase_add_test(tc, test_group_invalid);
	tcase_add_test(tc, test_hist_load);
	tcase_add_test(tc, test_snapshot_order);
	tcase_add_test(tc, test_delta_counter);
	tcase_add_test(tc, test_delta_counter_drop);
	tcase_add_test(tc, test_delta_gauge_hist);
	tcase_add_test(tc, test_delta_invalid);
	tcase_add_test(tc, test_snapshot_compact);
	tcase_add_loop_test(tc, test_find, 0, (int)(sizeof(finds) / sizeof(finds[0])));
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_concurrent_snapshots);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
