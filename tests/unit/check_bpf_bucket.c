/* SPDX-License-Identifier: MIT */
/*
 * The bucket function compiled by clang for -target bpf agrees with the
 * userspace one: bpf/hist_test.bpf.c runs hist_index(), hitel_bucket_index()
 * for every grouping power, and both recording helpers over values written
 * here, in the kernel (BPF_PROG_TEST_RUN); every result is compared with
 * core/hist_bucket.h and with hitel_hist (core/hist.c) compiled by gcc.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hist.h"
#include "hist_bucket.h"
#include "hitel_bpf.h" /* before the skeleton, which uses its types */
#include "hist_test.skel.h"
#include "testutil.h"

#define NVALUES (sizeof(((struct hist_test_bpf *)0)->bss->values) / sizeof(uint64_t))

static struct hist_test_bpf *skel;
static uint64_t values[NVALUES];
static size_t nvalues;

static void add(uint64_t v)
{
	if (nvalues < NVALUES)
		values[nvalues++] = v;
}

/* 0..4, 2^k - 1, 2^k, 2^k + 1 for every k, the top of the range, the edges
 * of the buckets around 2^(g+1) for g = 7, and pseudo-random values of every
 * magnitude. */
static void make_values(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	unsigned int k;

	nvalues = 0;
	for (k = 0; k <= 4; k++)
		add(k);
	for (k = 1; k < 64; k++) {
		add((1ULL << k) - 1);
		add(1ULL << k);
		add((1ULL << k) + 1);
	}
	add(UINT64_MAX);
	add(UINT64_MAX - 1);
	add((1ULL << 63) + (1ULL << 62));
	for (k = 250; k < 262; k++)
		add(k);
	for (k = 510; k < 516; k++)
		add(k);
	while (nvalues < NVALUES) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		add(x >> (x % 64));
	}
}

static void setup(void)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	int err;

	skel = hist_test_bpf__open_and_load();
	ck_assert_msg(skel, "cannot load bpf/hist_test.bpf.o: %s", strerror(errno));
	make_values();
	memcpy(skel->bss->values, values, sizeof(values));
	skel->bss->nr_values = (uint32_t)nvalues;
	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hitel_histtest), &opts);
	ck_assert_msg(err == 0, "BPF_PROG_TEST_RUN: %s", strerror(-err));
	ck_assert_int_eq(opts.retval, 0);
}

static void teardown(void)
{
	hist_test_bpf__destroy(skel);
	skel = NULL;
}

START_TEST(test_values_cover_edges)
{
	/* The table must hold every edge value, not be cut short. */
	ck_assert_uint_eq(nvalues, NVALUES);
	ck_assert_uint_eq(skel->bss->nr_values, NVALUES);
	ck_assert_uint_eq(values[0], 0);
	ck_assert(values[5 + 3 * 62 + 1] == (1ULL << 63));
}
END_TEST

START_TEST(test_fixed_grouping)
{
	struct hitel_hist *h = hitel_hist_new(HITEL_BPF_GROUPING, HITEL_BPF_MAX_POWER);
	size_t i;

	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(hitel_hist_buckets(h), HITEL_BPF_BUCKETS);
	for (i = 0; i < nvalues; i++) {
		ck_assert_msg(skel->bss->index_fixed[i] ==
				      hitel_bucket_index(values[i], HITEL_BPF_GROUPING),
			      "value %llu: bpf %u, userspace %u", (unsigned long long)values[i],
			      skel->bss->index_fixed[i],
			      hitel_bucket_index(values[i], HITEL_BPF_GROUPING));
		ck_assert_uint_eq(skel->bss->index_fixed[i], hitel_hist_index(h, values[i]));
	}
	/* The top bucket is reached exactly by the largest values. */
	ck_assert_uint_eq(hitel_bucket_index(UINT64_MAX, HITEL_BPF_GROUPING),
			  HITEL_BPF_BUCKETS - 1);
	hitel_hist_free(h);
}
END_TEST

/* Grouping power as a run-time value, 0..10 (the loop is the test case). */
START_TEST(test_every_grouping)
{
	unsigned int g = (unsigned int)_i;
	struct hitel_hist *h = hitel_hist_new(g, 64);
	size_t i;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < nvalues; i++) {
		uint32_t bpf = skel->bss->index_g[g][i];

		ck_assert_msg(bpf == hitel_bucket_index(values[i], g),
			      "g %u value %llu: bpf %u, userspace %u", g,
			      (unsigned long long)values[i], bpf,
			      hitel_bucket_index(values[i], g));
		ck_assert_uint_eq(bpf, hitel_hist_index(h, values[i]));
	}
	hitel_hist_free(h);
}
END_TEST

/* The histograms the programs recorded equal the same values recorded by
 * userspace, bucket by bucket, with the exact sum. */
START_TEST(test_recorded_histograms)
{
	const struct hitel_bpf_hist *bh[2] = { &skel->bss->plain, &skel->bss->atomic };
	struct hitel_hist *want = hitel_hist_new(HITEL_BPF_GROUPING, HITEL_BPF_MAX_POWER);
	struct hitel_hist *got = hitel_hist_new(HITEL_BPF_GROUPING, HITEL_BPF_MAX_POWER);
	static uint64_t counts[HITEL_BPF_BUCKETS];
	unsigned int b, j;
	size_t i;

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < nvalues; i++)
		hitel_hist_record(want, values[i]);
	for (j = 0; j < 2; j++) {
		/* __u64 is unsigned long long, uint64_t is not: copy. */
		memcpy(counts, bh[j]->buckets, sizeof(counts));
		ck_assert_int_eq(hitel_hist_load(got, counts, HITEL_BPF_BUCKETS, bh[j]->sum, 0,
						 UINT64_MAX),
				 0);
		ck_assert_uint_eq(hitel_hist_count(got), nvalues);
		ck_assert(hitel_hist_sum(got) == hitel_hist_sum(want));
		for (b = 0; b < HITEL_BPF_BUCKETS; b++)
			ck_assert_msg(bh[j]->buckets[b] == hitel_hist_bucket_count(want, b),
				      "%s bucket %u: bpf %llu, userspace %llu",
				      j ? "atomic" : "plain", b,
				      (unsigned long long)bh[j]->buckets[b],
				      (unsigned long long)hitel_hist_bucket_count(want, b));
		ck_assert(hitel_hist_quantile(got, 0.5) == hitel_hist_quantile(want, 0.5));
	}
	hitel_hist_free(want);
	hitel_hist_free(got);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_bucket");
	TCase *tc = tcase_create("agree");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_values_cover_edges);
	tcase_add_test(tc, test_fixed_grouping);
	tcase_add_loop_test(tc, test_every_grouping, 0, HITEL_HIST_MAX_GROUPING + 1);
	tcase_add_test(tc, test_recorded_histograms);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
