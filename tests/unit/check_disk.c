/* SPDX-License-Identifier: MIT */
/*
 * disk sampler: /proc/diskstats fixtures from several kernels (11, 15, 17 and
 * more values per line), whole-device detection through sys/block, default
 * and user filters, rates between two reads, devices that come and go, odd
 * input, a missing file, and the live /proc.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL

struct want {
	const char *family;
	const char *labels;
	uint64_t value;
};

struct fixture_case {
	const char *dir;
	size_t nseries; /* block/ series expected in total */
	const struct want *want;
	size_t nwant;
	const char *const *absent; /* "family" then "labels", pairs, NULL-terminated */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Numbers copied from the fixture files; bytes are sectors * 512. */
static const struct want want_618[] = {
	{"block/io/ops", "device=vda,op=read", 72046},
	{"block/io/merged", "device=vda,op=read", 12314},
	{"block/io/bytes", "device=vda,op=read", 3999706ULL * 512},
	{"block/io/time", "device=vda,op=read", 18956},
	{"block/io/ops", "device=vda,op=write", 24174},
	{"block/io/merged", "device=vda,op=write", 8003},
	{"block/io/bytes", "device=vda,op=write", 2039456ULL * 512},
	{"block/io/time", "device=vda,op=write", 7163},
	{"block/io/in_flight", "device=vda", 0},
	{"block/io/busy", "device=vda", 10448},
	{"block/io/weighted_time", "device=vda", 27152},
	{"block/io/ops", "device=vda,op=discard", 10451},
	{"block/io/merged", "device=vda,op=discard", 64},
	{"block/io/bytes", "device=vda,op=discard", 549080ULL * 512},
	{"block/io/time", "device=vda,op=discard", 876},
	{"block/io/ops", "device=vda,op=flush", 3482},
	{"block/io/time", "device=vda,op=flush", 154},
};
static const char *const absent_618[] = {
	"block/io/merged", "device=vda,op=flush",
	"block/io/bytes", "device=vda,op=flush",
	"block/io/ops", "device=loop0,op=read",
	"block/io/busy", "device=zram0",
	NULL,
};

static const struct want want_414[] = {
	{"block/io/ops", "device=sda,op=read", 148502},
	{"block/io/merged", "device=sda,op=read", 31004},
	{"block/io/bytes", "device=sda,op=read", 9212346ULL * 512},
	{"block/io/time", "device=sda,op=read", 84512},
	{"block/io/ops", "device=sda,op=write", 501233},
	{"block/io/merged", "device=sda,op=write", 402211},
	{"block/io/bytes", "device=sda,op=write", 30011862ULL * 512},
	{"block/io/time", "device=sda,op=write", 1202210},
	{"block/io/in_flight", "device=sda", 3},
	{"block/io/busy", "device=sda", 410032},
	{"block/io/weighted_time", "device=sda", 1286818},
	{"block/io/ops", "device=dm-0,op=write", 903344},
	{"block/io/time", "device=dm-0,op=write", 3560101},
};
static const char *const absent_414[] = {
	"block/io/ops", "device=sda,op=discard",
	"block/io/ops", "device=sda,op=flush",
	"block/io/ops", "device=sda1,op=read",
	"block/io/ops", "device=sda2,op=read",
	"block/io/ops", "device=sr0,op=read",
	"block/io/ops", "device=loop0,op=read",
	NULL,
};

static const struct want want_54[] = {
	{"block/io/ops", "device=nvme0n1,op=read", 2210411},
	{"block/io/in_flight", "device=nvme0n1", 2},
	{"block/io/ops", "device=nvme0n1,op=discard", 12001},
	{"block/io/merged", "device=nvme0n1,op=discard", 0},
	{"block/io/bytes", "device=nvme0n1,op=discard", 24002048ULL * 512},
	{"block/io/time", "device=nvme0n1,op=discard", 1201},
	{"block/io/bytes", "device=md127,op=read", 2812004ULL * 512},
	{"block/io/bytes", "device=md127,op=write", 9633112ULL * 512},
	{"block/io/ops", "device=md127,op=discard", 201},
	{"block/io/bytes", "device=md127,op=discard", 1048576ULL * 512},
};
static const char *const absent_54[] = {
	"block/io/ops", "device=nvme0n1,op=flush",
	"block/io/ops", "device=nvme0n1p1,op=read",
	NULL,
};

/* 4 values more than 5.5+ prints: the first 17 are used. */
static const struct want want_future[] = {
	{"block/io/ops", "device=vda,op=read", 30037},
	{"block/io/in_flight", "device=vda", 1},
	{"block/io/ops", "device=vda,op=flush", 2612},
	{"block/io/time", "device=vda,op=flush", 120},
};

static const struct want want_cciss[] = {
	{"block/io/ops", "device=cciss/c0d0,op=read", 1000},
	{"block/io/bytes", "device=cciss/c0d0,op=write", 160000ULL * 512},
};
static const char *const absent_cciss[] = {
	"block/io/ops", "device=cciss/c0d0p1,op=read", NULL,
};

/* Without sys/block partitions cannot be told apart: both are reported. */
static const struct want want_nosys[] = {
	{"block/io/ops", "device=sda,op=read", 100},
	{"block/io/ops", "device=sda1,op=read", 90},
};
static const char *const absent_nosys[] = {"block/io/ops", "device=loop0,op=read", NULL};

/* Only vdc (first of two lines), the 40-character name and vdd are valid. */
static const struct want want_garbage[] = {
	{"block/io/ops", "device=vdc,op=read", 11},
	{"block/io/weighted_time", "device=vdc", 21},
	{"block/io/time", "device=vdc,op=flush", 27},
	{"block/io/ops", "device=abcdefghijklmnopqrstuvwxyz0123456789abcd,op=write", 6},
	{"block/io/bytes", "device=abcdefghijklmnopqrstuvwxyz0123456789abcd,op=write", 48 * 512},
	{"block/io/ops", "device=vdd,op=read", 1},
	{"block/io/weighted_time", "device=vdd", 11},
};
static const char *const absent_garbage[] = {
	"block/io/ops", "device=vda,op=read",
	"block/io/ops", "device=vdb,op=read",
	"block/io/ops", "device=sdx,op=read",
	"block/io/ops", "device=sdy,op=read",
	"block/io/ops", "device=sdz,op=read",
	"block/io/ops", "device=vdq,op=read",
	NULL,
};

static const struct fixture_case cases[] = {
	{"disk/debian12-6.18", 17, want_618, N(want_618), absent_618},
	{"disk/linux-4.14", 22, want_414, N(want_414), absent_414},
	{"disk/linux-5.4", 30, want_54, N(want_54), absent_54},
	{"disk/future", 17, want_future, N(want_future), NULL},
	{"disk/cciss", 11, want_cciss, N(want_cciss), absent_cciss},
	{"disk/no-sys", 34, want_nosys, N(want_nosys), absent_nosys},
	{"disk/garbage", 17 + 11 + 11, want_garbage, N(want_garbage), absent_garbage},
};

static struct hitel_engine *fixture_engine(const char *dir)
{
	char *root = tu_fixture(dir);
	struct hitel_engine *e = tu_engine("disk", root);

	free(root);
	return e;
}

START_TEST(test_fixture)
{
	const struct fixture_case *c = &cases[_i];
	struct hitel_engine *e = fixture_engine(c->dir);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	tu_status(e, "disk", &st);
	ck_assert_msg(st.up == 1, "%s: down: %s", c->dir, st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	for (i = 0; i < c->nwant; i++) {
		const struct hitel_point *p = tu_point(snap, c->want[i].family, c->want[i].labels);

		ck_assert_msg(p->value == c->want[i].value, "%s: %s{%s} = %llu, want %llu",
			      c->dir, c->want[i].family, c->want[i].labels,
			      (unsigned long long)p->value, (unsigned long long)c->want[i].value);
	}
	for (i = 0; c->absent && c->absent[i]; i += 2)
		ck_assert_msg(!hitel_snapshot_find(snap, c->absent[i], c->absent[i + 1]),
			      "%s: %s{%s} should not exist", c->dir, c->absent[i],
			      c->absent[i + 1]);
	ck_assert_uint_eq(tu_count_prefix(snap, "block/"), c->nseries);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_units)
{
	struct hitel_engine *e = fixture_engine("disk/debian12-6.18");
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	hitel_engine_run_once(e, SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "block/io/time", "device=vda,op=read");
	ck_assert_str_eq(p->unit, "seconds");
	ck_assert_int_eq(p->scale, -3);
	ck_assert_int_eq(p->kind, HITEL_KIND_COUNTER);
	p = tu_point(snap, "block/io/busy", "device=vda");
	ck_assert_str_eq(p->unit, "seconds");
	ck_assert_int_eq(p->scale, -3);
	p = tu_point(snap, "block/io/bytes", "device=vda,op=write");
	ck_assert_str_eq(p->unit, "bytes");
	ck_assert_int_eq(p->scale, 0);
	p = tu_point(snap, "block/io/in_flight", "device=vda");
	ck_assert_int_eq(p->kind, HITEL_KIND_GAUGE);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static void write_stats(const char *root, const char *body)
{
	tu_write(root, "proc/diskstats", body);
}

/* Two reads 0.5 s apart: value is the new raw counter, the one recorded rate
 * is the increase per second. */
START_TEST(test_rate)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;

	tu_write(root, "sys/block/vda/dev", "254:0\n");
	write_stats(root, " 254 0 vda 1000 10 8000 400 2000 20 16000 800 2 3000 5000 "
			  "0 0 0 0 50 5\n");
	e = tu_engine("disk", root);
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * SEC), 0);
	write_stats(root, " 254 0 vda 1300 10 10400 520 2100 21 16800 900 5 3250 5600 "
			  "0 0 0 0 60 7\n");
	ck_assert_int_eq(hitel_engine_run_once(e, 10 * SEC + SEC / 2), 0);
	tu_status(e, "disk", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	snap = hitel_engine_snapshot(e);

	p = tu_point(snap, "block/io/ops", "device=vda,op=read");
	ck_assert_uint_eq(p->value, 1300);
	ck_assert_ptr_nonnull(p->hist);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 600); /* 300 in 0.5 s */
	ck_assert_uint_eq(hitel_hist_max(p->hist), 600);

	p = tu_point(snap, "block/io/bytes", "device=vda,op=read");
	ck_assert_uint_eq(p->value, 10400ULL * 512);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 2400ULL * 512 * 2);

	/* 250 ms busy in 500 ms: 500 ms per second, i.e. 50 % utilisation. */
	p = tu_point(snap, "block/io/busy", "device=vda");
	ck_assert_uint_eq(p->value, 3250);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 500);

	p = tu_point(snap, "block/io/ops", "device=vda,op=flush");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 20);
	p = tu_point(snap, "block/io/time", "device=vda,op=write");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 200);

	/* The gauge records each value. */
	p = tu_point(snap, "block/io/in_flight", "device=vda");
	ck_assert_uint_eq(p->value, 5);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 5);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

static uint64_t read_ops(struct hitel_engine *e, uint64_t t)
{
	struct hitel_snapshot *snap;
	struct hitel_sampler_status st;
	uint64_t v;

	ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	tu_status(e, "disk", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	v = tu_point(snap, "block/io/ops", "device=vda,op=read")->value;
	hitel_snapshot_free(snap);
	return v;
}

/* Between the once-a-second diskstats scans, a kept device is read from its
 * own stat file; a stat file that fails sends that tick to diskstats. The
 * two files disagree here on purpose, to tell which one was read. */
START_TEST(test_sysfs_between_scans)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	const uint64_t t0 = 10 * SEC, ms = SEC / 1000;

	tu_write(root, "sys/block/vda/dev", "254:0\n");
	tu_write(root, "sys/block/vda/stat", "1100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	write_stats(root, " 254 0 vda 1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
			  " 254 1 vda1 7 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
			  " 7 0 loop0 9 0 0 0 0 0 0 0 0 0 0 0\n");
	e = tu_engine("disk", root);
	ck_assert_uint_eq(read_ops(e, t0), 1000);
	ck_assert_uint_eq(read_ops(e, t0 + 10 * ms), 1100);
	tu_write(root, "sys/block/vda/stat", "   1200 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	ck_assert_uint_eq(read_ops(e, t0 + 20 * ms), 1200);
	write_stats(root, " 254 0 vda 5000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	ck_assert_uint_eq(read_ops(e, t0 + 990 * ms), 1200);
	ck_assert_uint_eq(read_ops(e, t0 + 1000 * ms), 5000); /* the next scan */
	/* The stat file's text has not changed since it was last read, but
	 * the scan recorded other values since: it is parsed, not repeated. */
	ck_assert_uint_eq(read_ops(e, t0 + 1005 * ms), 1200);
	tu_write(root, "sys/block/vda/stat", "5100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	ck_assert_uint_eq(read_ops(e, t0 + 1010 * ms), 5100);
	tu_write(root, "sys/block/vda/stat", "52");
	write_stats(root, " 254 0 vda 5300 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	ck_assert_uint_eq(read_ops(e, t0 + 1020 * ms), 5300);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A stat file whose text did not change is not parsed again, but it is a
 * read all the same: zero rates for the counters and the in-flight gauge's
 * value, each time. */
START_TEST(test_sysfs_same_text)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	const uint64_t t0 = 10 * SEC, ms = SEC / 1000;
	int i;

	tu_write(root, "sys/block/vda/dev", "254:0\n");
	tu_write(root, "sys/block/vda/stat", "1000 0 64 30 0 0 0 0 3 0 0 0 0 0 0 0 0\n");
	write_stats(root, " 254 0 vda 900 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	e = tu_engine("disk", root);
	for (i = 0; i < 6; i++)
		ck_assert_int_eq(hitel_engine_run_once(e, t0 + (uint64_t)i * 10 * ms), 0);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "block/io/ops", "device=vda,op=read");
	ck_assert_uint_eq(p->value, 1000);
	/* 900 -> 1000 at the first sysfs read, then four repeats. */
	ck_assert_uint_eq(hitel_hist_count(p->hist), 5);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 10000);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0);
	ck_assert_uint_eq(p->updated_ns, t0 + 50 * ms);
	ck_assert_uint_eq(tu_point(snap, "block/io/bytes", "device=vda,op=read")->value, 64 * 512);
	p = tu_point(snap, "block/io/in_flight", "device=vda");
	ck_assert_uint_eq(p->value, 3);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 6);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 0);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 3);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A device appears, another leaves and comes back: new names get series,
 * returning names continue the same series. */
START_TEST(test_devices_come_and_go)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	tu_write(root, "sys/block/vda/dev", "254:0\n");
	tu_write(root, "sys/block/vdb/dev", "254:16\n");
	write_stats(root, " 254 0 vda 10 0 80 1 0 0 0 0 0 1 1\n");
	e = tu_engine("disk", root);
	hitel_engine_run_once(e, SEC);
	write_stats(root, " 254 16 vdb 5 0 40 1 0 0 0 0 0 1 1\n"
			  " 254 0 vda 20 0 160 2 0 0 0 0 0 2 2\n");
	hitel_engine_run_once(e, 2 * SEC);
	write_stats(root, " 254 16 vdb 6 0 48 1 0 0 0 0 0 1 1\n");
	hitel_engine_run_once(e, 3 * SEC);
	write_stats(root, " 254 0 vda 40 0 320 4 0 0 0 0 0 4 4\n"
			  " 254 16 vdb 7 0 56 1 0 0 0 0 0 1 1\n");
	hitel_engine_run_once(e, 4 * SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "block/io/ops", "device=vda,op=read");
	ck_assert_uint_eq(p->value, 40);
	ck_assert_uint_eq(p->updated_ns, 4 * SEC);
	/* 10 -> 20 over 1 s, then 20 -> 40 over the 2 s vda was away. */
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 10);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 10);
	p = tu_point(snap, "block/io/ops", "device=vdb,op=read");
	ck_assert_uint_eq(p->value, 7);
	ck_assert_uint_eq(tu_count_prefix(snap, "block/"), 22);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

struct filter_case {
	const char *key[2], *value[2];
	const char *present, *absent; /* a device= label set, or NULL */
	size_t nseries;
};

static const struct filter_case filters[] = {
	/* An include pattern turns the default excludes off. */
	{{"include", NULL}, {"loop*", NULL}, "device=loop3,op=read", "device=vda,op=read", 8 * 17},
	{{"include", NULL}, {"*", NULL}, "device=zram0,op=read", NULL, 10 * 17},
	{{"exclude", NULL}, {"vda", NULL}, NULL, "device=vda,op=read", 0},
	{{"include", "exclude"}, {"*", "loop[1-7]"}, "device=loop0,op=read", "device=loop1,op=read",
	 3 * 17},
};

START_TEST(test_filter)
{
	const struct filter_case *c = &filters[_i];
	struct hitel_engine *e = fixture_engine("disk/debian12-6.18");
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "disk");
	struct hitel_snapshot *snap;
	char err[256];
	int k;

	for (k = 0; k < 2 && c->key[k]; k++)
		ck_assert_msg(hitel_sampler_set(s, c->key[k], c->value[k], err, sizeof(err)) == 0,
			      "%s", err);
	hitel_engine_run_once(e, SEC);
	snap = hitel_engine_snapshot(e);
	if (c->present)
		tu_point(snap, "block/io/ops", c->present);
	if (c->absent)
		ck_assert_ptr_null(hitel_snapshot_find(snap, "block/io/ops", c->absent));
	ck_assert_uint_eq(tu_count_prefix(snap, "block/"), c->nseries);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_empty_file)
{
	struct hitel_engine *e = fixture_engine("disk/empty");
	struct hitel_sampler_status st;

	hitel_engine_run_once(e, SEC);
	tu_status(e, "disk", &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "proc/diskstats") != NULL, "reason: %s", st.reason);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_missing_file)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e = tu_engine("disk", root);
	struct hitel_sampler_status st;
	char path[512];

	hitel_engine_run_once(e, SEC);
	tu_status(e, "disk", &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(path, sizeof(path), "%s/proc/diskstats", root);
	ck_assert_msg(strstr(st.reason, path) != NULL, "reason: %s", st.reason);
	ck_assert_msg(strstr(st.reason, "cannot open") != NULL, "reason: %s", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A whole disk of this machine, from sysfs itself: not one the default
 * excludes drop, and one that has done I/O. */
static int live_disk(char *name, size_t len)
{
	static const char *const skip[] = {"loop", "ram", "zram", "fd", "sr"};
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int found = 0;

	ck_assert_ptr_nonnull(d);
	while (!found && (de = readdir(d))) {
		unsigned long long reads = 0;
		char path[512];
		size_t i;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < N(skip); i++)
			if (strncmp(de->d_name, skip[i], strlen(skip[i])) == 0)
				break;
		if (i < N(skip))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (f && fscanf(f, "%llu", &reads) == 1 && reads > 0) {
			snprintf(name, len, "%s", de->d_name);
			found = 1;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return found;
}

START_TEST(test_live)
{
	struct hitel_engine *e = tu_engine("disk", NULL);
	struct hitel_snapshot *s1, *s2;
	const struct hitel_point *p1, *p2;
	struct hitel_sampler_status st;
	char dev[256], labels[320];
	uint64_t t = tu_now();

	ck_assert_msg(live_disk(dev, sizeof(dev)), "no disk with I/O under /sys/block");
	snprintf(labels, sizeof(labels), "device=%s,op=read", dev);
	hitel_engine_run_once(e, t);
	s1 = hitel_engine_snapshot(e);
	hitel_engine_run_once(e, t + SEC / 10);
	s2 = hitel_engine_snapshot(e);
	tu_status(e, "disk", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	p1 = tu_point(s1, "block/io/ops", labels);
	p2 = tu_point(s2, "block/io/ops", labels);
	ck_assert_uint_gt(p1->value, 0);
	ck_assert_uint_ge(p2->value, p1->value);
	ck_assert_uint_eq(p2->updated_ns, t + SEC / 10);
	ck_assert_uint_eq(hitel_hist_count(p2->hist), 1);
	/* Partitions are not whole devices. */
	snprintf(labels, sizeof(labels), "device=%s1,op=read", dev);
	ck_assert_ptr_null(hitel_snapshot_find(s2, "block/io/ops", labels));
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("disk");
	TCase *tc = tcase_create("disk");

	tcase_add_loop_test(tc, test_fixture, 0, N(cases));
	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_sysfs_between_scans);
	tcase_add_test(tc, test_sysfs_same_text);
	tcase_add_test(tc, test_devices_come_and_go);
	tcase_add_loop_test(tc, test_filter, 0, N(filters));
	tcase_add_test(tc, test_empty_file);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_live);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
