/* SPDX-License-Identifier: MIT */
/* Histogram: bucket function, quantile accuracy, identities, concurrency. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "hist_bucket.h"
#include "testutil.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* Reference index by the DESIGN.md formula, computed the slow way. */
static unsigned int ref_index(uint64_t v, unsigned int g)
{
	unsigned int p = 0;

	if (v < (2ULL << g))
		return (unsigned int)v;
	while (p < 63 && (v >> (p + 1)))
		p++;
	return (p - g + 1) * (1U << g) + (unsigned int)((v - (1ULL << p)) >> (p - g));
}

START_TEST(test_bucket_count_formula)
{
	ck_assert_uint_eq(hitel_bucket_count(7, 64), 7424);
	ck_assert_uint_eq(hitel_bucket_count(0, 64), 2 + 63);
	ck_assert_uint_eq(hitel_bucket_count(3, 64), 16 + 60 * 8);
}
END_TEST

START_TEST(test_index_edges)
{
	unsigned int g = (unsigned int)_i;
	struct hitel_hist *h = hitel_hist_new(g, 64);
	unsigned int k;

	ck_assert_ptr_nonnull(h);
	for (k = 0; k < 64; k++) {
		uint64_t p2 = 1ULL << k;
		uint64_t vals[] = { p2 - 1, p2, p2 + 1, 0, 1, UINT64_MAX };
		size_t j;

		for (j = 0; j < sizeof(vals) / sizeof(vals[0]); j++) {
			uint64_t v = vals[j], lo, hi;
			unsigned int i = hitel_bucket_index(v, g);

			ck_assert_uint_eq(i, ref_index(v, g));
			/* The BPF-safe header and the lzcnt fast path agree. */
			ck_assert_uint_eq(i, hitel_hist_index(h, v));
			ck_assert_uint_lt(i, hitel_hist_buckets(h));
			ck_assert_int_eq(hitel_hist_bounds(h, i, &lo, &hi), 0);
			ck_assert_msg(lo <= v && v <= hi, "g=%u v=%llu not in bucket %u [%llu,%llu]",
				      g, (unsigned long long)v, i, (unsigned long long)lo,
				      (unsigned long long)hi);
		}
	}
	ck_assert_uint_eq(hitel_bucket_index(UINT64_MAX, g), hitel_hist_buckets(h) - 1);
	hitel_hist_free(h);
}
END_TEST

START_TEST(test_bounds_contiguous)
{
	unsigned int g = (unsigned int)_i, i;
	struct hitel_hist *h = hitel_hist_new(g, 64);
	uint64_t prev_hi = 0, lo, hi;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < hitel_hist_buckets(h); i++) {
		ck_assert_int_eq(hitel_hist_bounds(h, i, &lo, &hi), 0);
		if (i)
			ck_assert_uint_eq(lo, prev_hi + 1);
		else
			ck_assert_uint_eq(lo, 0);
		ck_assert_uint_le(lo, hi);
		/* Relative width bounds the error: (hi - lo + 1) / lo <= 2^-g. */
		if (lo >= (2ULL << g))
			ck_assert_uint_le((hi - lo + 1) << g, lo);
		ck_assert_uint_eq(hitel_hist_index(h, lo), i);
		ck_assert_uint_eq(hitel_hist_index(h, hi), i);
		prev_hi = hi;
	}
	ck_assert_uint_eq(prev_hi, UINT64_MAX);
	ck_assert_int_eq(hitel_hist_bounds(h, i, &lo, &hi), -ERANGE);
	hitel_hist_free(h);
}
END_TEST

START_TEST(test_new_invalid)
{
	ck_assert_ptr_null(hitel_hist_new(11, 64));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(hitel_hist_new(7, 65));
	ck_assert_ptr_null(hitel_hist_new(7, 7));
	hitel_hist_free(NULL);
}
END_TEST

START_TEST(test_empty)
{
	struct hitel_hist *h = hitel_hist_new(7, 64);
	struct hitel_hist_bucket b;
	unsigned int cur = 0;

	ck_assert_uint_eq(hitel_hist_count(h), 0);
	ck_assert_uint_eq(hitel_hist_sum(h), 0);
	ck_assert_uint_eq(hitel_hist_min(h), 0);
	ck_assert_uint_eq(hitel_hist_max(h), 0);
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.5), 0);
	ck_assert_uint_eq(hitel_hist_quantile(h, 1.0), 0);
	ck_assert_int_eq(hitel_hist_next(h, &cur, &b), 0);
	hitel_hist_free(h);
}
END_TEST

enum dist { UNIFORM, LOGUNIFORM, PARETO, BIMODAL, NDIST };
static const char *const dist_name[] = { "uniform", "log-uniform", "pareto", "bimodal" };

static uint64_t draw(enum dist d)
{
	switch (d) {
	case UNIFORM:
		return rnd() % 1000000;
	case LOGUNIFORM:
		/* 1 .. 2^40 evenly in log space: exercises every power of two. */
		return (uint64_t)exp2(rnd01() * 40.0);
	case PARETO:
		/* alpha = 1.2, scale 1000: a heavy tail reaching far out. */
		return (uint64_t)(1000.0 / pow(1.0 - rnd01() * 0.999999, 1.0 / 1.2));
	case BIMODAL:
		/* fast path ~50 us, slow path ~20 ms, 10 % slow */
		return rnd01() < 0.9 ? 50000 + rnd() % 5000 : 20000000 + rnd() % 4000000;
	default:
		return 0;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static const double qs[] = { 0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0 };
#define NQ (sizeof(qs) / sizeof(qs[0]))

static void check_quantiles(const struct hitel_hist *h, const uint64_t *sorted, size_t n,
			    unsigned int g, const char *what)
{
	uint64_t got[NQ];
	size_t k;

	hitel_hist_quantiles(h, qs, NQ, got);
	for (k = 0; k < NQ; k++) {
		uint64_t rank = (uint64_t)ceil(qs[k] * (double)n);
		uint64_t exact = sorted[(rank ? rank : 1) - 1];

		/* Upper-bound semantics: never below the truth, at most 2^-g over. */
		ck_assert_msg(got[k] >= exact, "%s g=%u q=%g: got %llu < exact %llu", what, g, qs[k],
			      (unsigned long long)got[k], (unsigned long long)exact);
		ck_assert_msg((double)(got[k] - exact) <= ldexp((double)exact, -(int)g),
			      "%s g=%u q=%g: got %llu exact %llu: error above 2^-%u", what, g, qs[k],
			      (unsigned long long)got[k], (unsigned long long)exact, g);
		ck_assert_uint_eq(got[k], hitel_hist_quantile(h, qs[k]));
	}
}

START_TEST(test_quantile_accuracy)
{
	const size_t n = 1000000;
	enum dist d = (enum dist)(_i % NDIST);
	unsigned int g = _i < NDIST ? 7 : 3;
	uint64_t *v = malloc(n * sizeof(*v)), sum = 0;
	struct hitel_hist *h = hitel_hist_new(g, 64);
	size_t i;

	ck_assert_ptr_nonnull(v);
	for (i = 0; i < n; i++) {
		v[i] = draw(d);
		sum += v[i];
		hitel_hist_record(h, v[i]);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	ck_assert_uint_eq(hitel_hist_count(h), n);
	ck_assert_uint_eq(hitel_hist_sum(h), sum);
	ck_assert_uint_eq(hitel_hist_min(h), v[0]);
	ck_assert_uint_eq(hitel_hist_max(h), v[n - 1]);
	check_quantiles(h, v, n, g, dist_name[d]);
	free(v);
	hitel_hist_free(h);
}
END_TEST

START_TEST(test_merge_identity)
{
	const size_t n = 200000;
	struct hitel_hist *a = hitel_hist_new(7, 64), *b = hitel_hist_new(7, 64);
	struct hitel_hist *all = hitel_hist_new(7, 64);
	uint64_t *v = malloc(2 * n * sizeof(*v));
	unsigned int i;

	for (i = 0; i < 2 * n; i++) {
		v[i] = draw(i < n ? LOGUNIFORM : BIMODAL);
		hitel_hist_record(i < n ? a : b, v[i]);
		hitel_hist_record(all, v[i]);
	}
	ck_assert_int_eq(hitel_hist_merge(a, b), 0);
	for (i = 0; i < hitel_hist_buckets(a); i++)
		ck_assert_uint_eq(hitel_hist_bucket_count(a, i), hitel_hist_bucket_count(all, i));
	ck_assert_uint_eq(hitel_hist_count(a), 2 * n);
	ck_assert_uint_eq(hitel_hist_sum(a), hitel_hist_sum(all));
	ck_assert_uint_eq(hitel_hist_min(a), hitel_hist_min(all));
	ck_assert_uint_eq(hitel_hist_max(a), hitel_hist_max(all));
	qsort(v, 2 * n, sizeof(*v), cmp_u64);
	check_quantiles(a, v, 2 * n, 7, "merged");
	free(v);
	hitel_hist_free(a);
	hitel_hist_free(b);
	hitel_hist_free(all);
}
END_TEST

START_TEST(test_delta_identity)
{
	struct hitel_hist *live = hitel_hist_new(5, 64), *s1 = hitel_hist_new(5, 64);
	struct hitel_hist *s2 = hitel_hist_new(5, 64), *win = hitel_hist_new(5, 64);
	struct hitel_hist *only = hitel_hist_new(5, 64);
	uint64_t lo, hi;
	unsigned int i;

	for (i = 0; i < 50000; i++)
		hitel_hist_record(live, draw(PARETO));
	ck_assert_int_eq(hitel_hist_snapshot(live, s1), 0);
	for (i = 0; i < 30000; i++) {
		uint64_t x = draw(UNIFORM) + 1000;

		hitel_hist_record(live, x);
		hitel_hist_record(only, x);
	}
	ck_assert_int_eq(hitel_hist_snapshot(live, s2), 0);
	ck_assert_int_eq(hitel_hist_delta(s1, s2, win), 0);
	for (i = 0; i < hitel_hist_buckets(win); i++)
		ck_assert_uint_eq(hitel_hist_bucket_count(win, i), hitel_hist_bucket_count(only, i));
	ck_assert_uint_eq(hitel_hist_count(win), 30000);
	ck_assert_uint_eq(hitel_hist_sum(win), hitel_hist_sum(only));
	/* Window extremes come from bucket bounds: within the true extremes' buckets. */
	hitel_hist_bounds(win, hitel_hist_index(win, hitel_hist_max(only)), &lo, &hi);
	ck_assert_uint_ge(hitel_hist_max(win), lo);
	ck_assert_uint_le(hitel_hist_max(win), hi);
	hitel_hist_bounds(win, hitel_hist_index(win, hitel_hist_min(only)), &lo, &hi);
	ck_assert_uint_ge(hitel_hist_min(win), lo);
	ck_assert_uint_le(hitel_hist_min(win), hi);
	/* A reset (newer below older) is reported, and out holds newer. */
	ck_assert_int_eq(hitel_hist_delta(s2, s1, win), -ERANGE);
	ck_assert_uint_eq(hitel_hist_count(win), hitel_hist_count(s1));
	/* Shape mismatch. */
	hitel_hist_free(only);
	only = hitel_hist_new(4, 64);
	ck_assert_int_eq(hitel_hist_delta(s1, s2, only), -EINVAL);
	hitel_hist_free(live);
	hitel_hist_free(s1);
	hitel_hist_free(s2);
	hitel_hist_free(win);
	hitel_hist_free(only);
}
END_TEST

START_TEST(test_downsample_identity)
{
	struct hitel_hist *fine = hitel_hist_new(7, 64), *coarse = hitel_hist_new(2, 64);
	struct hitel_hist *d;
	unsigned int i;

	for (i = 0; i < 100000; i++) {
		uint64_t x = draw(i & 1 ? LOGUNIFORM : PARETO);

		hitel_hist_record(fine, x);
		hitel_hist_record(coarse, x);
	}
	d = hitel_hist_downsample(fine, 2);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(hitel_hist_buckets(d), hitel_hist_buckets(coarse));
	for (i = 0; i < hitel_hist_buckets(d); i++)
		ck_assert_uint_eq(hitel_hist_bucket_count(d, i), hitel_hist_bucket_count(coarse, i));
	ck_assert_uint_eq(hitel_hist_sum(d), hitel_hist_sum(coarse));
	ck_assert_uint_eq(hitel_hist_min(d), hitel_hist_min(coarse));
	ck_assert_uint_eq(hitel_hist_max(d), hitel_hist_max(coarse));
	ck_assert_ptr_null(hitel_hist_downsample(fine, 7));
	/* Merging coarse into fine is refused: it cannot be exact. */
	ck_assert_int_eq(hitel_hist_merge(fine, coarse), -EINVAL);
	hitel_hist_free(d);
	hitel_hist_free(fine);
	hitel_hist_free(coarse);
}
END_TEST

START_TEST(test_overflow)
{
	struct hitel_hist *h = hitel_hist_new(3, 10);

	hitel_hist_record(h, 5);
	hitel_hist_record(h, 1023);
	hitel_hist_record(h, 5000);
	hitel_hist_record(h, UINT64_MAX);
	ck_assert_uint_eq(hitel_hist_overflow(h), 2);
	ck_assert_uint_eq(hitel_hist_count(h), 4);
	ck_assert_uint_eq(hitel_hist_index(h, 5000), hitel_hist_buckets(h) - 1);
	ck_assert_uint_eq(hitel_hist_bucket_count(h, hitel_hist_buckets(h) - 1), 3);
	ck_assert_uint_eq(hitel_hist_max(h), UINT64_MAX);
	ck_assert_uint_eq(hitel_hist_quantile(h, 1.0), UINT64_MAX);
	/* The p75 lands in the top bucket, which holds overflow: report max. */
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.75), UINT64_MAX);
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.25), 5);
	hitel_hist_free(h);
}
END_TEST

START_TEST(test_record_n_and_iterate)
{
	struct hitel_hist *h = hitel_hist_new(2, 64);
	struct hitel_hist_bucket b;
	unsigned int cur = 0, seen = 0;
	uint64_t total = 0;

	hitel_hist_record_n(h, 3, 10);
	hitel_hist_record_n(h, 1000, 5);
	hitel_hist_record(h, 7);
	ck_assert_uint_eq(hitel_hist_count(h), 16);
	ck_assert_uint_eq(hitel_hist_sum(h), 30 + 5000 + 7);
	while (hitel_hist_next(h, &cur, &b)) {
		ck_assert_uint_le(b.lower, b.upper);
		total += b.count;
		seen++;
	}
	ck_assert_uint_eq(seen, 3);
	ck_assert_uint_eq(total, 16);
	/* q = 0 is the min, the median is in the 3s, p99 in the 1000 bucket. */
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.0), 3);
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.5), 3);
	ck_assert_uint_eq(hitel_hist_quantile(h, 0.99), 1000);
	hitel_hist_free(h);
}
END_TEST

START_TEST(test_load)
{
	struct hitel_hist *src = hitel_hist_new(4, 64), *dst = hitel_hist_new(4, 64);
	uint64_t *counts;
	unsigned int i, nb = hitel_hist_buckets(src);

	for (i = 0; i < 1000; i++)
		hitel_hist_record(src, draw(BIMODAL));
	counts = calloc(nb, sizeof(*counts));
	for (i = 0; i < nb; i++)
		counts[i] = hitel_hist_bucket_count(src, i);
	ck_assert_int_eq(hitel_hist_load(dst, counts, nb, hitel_hist_sum(src), 0, UINT64_MAX), 0);
	ck_assert_uint_eq(hitel_hist_count(dst), 1000);
	ck_assert_uint_eq(hitel_hist_sum(dst), hitel_hist_sum(src));
	ck_assert_uint_eq(hitel_hist_quantile(dst, 0.5), hitel_hist_quantile(src, 0.5));
	ck_assert_int_eq(hitel_hist_load(dst, counts, nb - 1, 0, 0, UINT64_MAX), -EINVAL);
	free(counts);
	hitel_hist_free(src);
	hitel_hist_free(dst);
}
END_TEST

#define THREAD_RECORDS 1000000
static struct hitel_hist *shared;

static void *recorder(void *arg)
{
	uint64_t base = (uint64_t)(uintptr_t)arg, i;

	for (i = 0; i < THREAD_RECORDS; i++)
		hitel_hist_record_atomic(shared, base + (i & 1023));
	return NULL;
}

START_TEST(test_atomic_two_threads)
{
	pthread_t t[2];
	struct hitel_hist *snap;
	uint64_t expect_sum = 0, i;
	int k;

	shared = hitel_hist_new(7, 64);
	snap = hitel_hist_new(7, 64);
	for (k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, recorder, (void *)(uintptr_t)(k * 100000 + 1));
	/* Snapshots taken mid-flight must be self-consistent. */
	for (k = 0; k < 20; k++) {
		ck_assert_int_eq(hitel_hist_snapshot(shared, snap), 0);
		ck_assert_uint_le(hitel_hist_count(snap), 2 * THREAD_RECORDS);
	}
	for (k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	for (k = 0; k < 2; k++)
		for (i = 0; i < THREAD_RECORDS; i++)
			expect_sum += (uint64_t)(k * 100000 + 1) + (i & 1023);
	ck_assert_uint_eq(hitel_hist_count(shared), 2 * THREAD_RECORDS);
	ck_assert_uint_eq(hitel_hist_sum(shared), expect_sum);
	ck_assert_uint_eq(hitel_hist_min(shared), 1);
	ck_assert_uint_eq(hitel_hist_max(shared), 100001 + 1023);
	ck_assert_int_eq(hitel_hist_snapshot(shared, snap), 0);
	ck_assert_uint_eq(hitel_hist_count(snap), 2 * THREAD_RECORDS);
	hitel_hist_free(shared);
	hitel_hist_free(snap);
}
END_TEST

START_TEST(test_dup_and_clear)
{
	struct hitel_hist *h = hitel_hist_new(5, 40), *d;

	hitel_hist_record(h, 12345);
	d = hitel_hist_dup(h);
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(hitel_hist_max_power(d), 40);
	ck_assert_uint_eq(hitel_hist_grouping_power(d), 5);
	ck_assert_uint_eq(hitel_hist_count(d), 1);
	hitel_hist_clear(d);
	ck_assert_uint_eq(hitel_hist_count(d), 0);
	ck_assert_uint_eq(hitel_hist_quantile(d, 0.5), 0);
	ck_assert_uint_eq(hitel_hist_count(h), 1);
	hitel_hist_free(h);
	hitel_hist_free(d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("hist");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_bucket_count_formula);
	tcase_add_loop_test(tc, test_index_edges, 0, HITEL_HIST_MAX_GROUPING + 1);
	tcase_add_loop_test(tc, test_bounds_contiguous, 0, HITEL_HIST_MAX_GROUPING + 1);
	tcase_add_test(tc, test_new_invalid);
	tcase_add_test(tc, test_empty);
	tcase_add_loop_test(tc, test_quantile_accuracy, 0, 2 * NDIST);
	tcase_add_test(tc, test_merge_identity);
	tcase_add_test(tc, test_delta_identity);
	tcase_add_test(tc, test_downsample_identity);
	tcase_add_test(tc, test_overflow);
	tcase_add_test(tc, test_record_n_and_iterate);
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_atomic_two_threads);
	tcase_add_test(tc, test_dup_and_clear);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
