/* SPDX-License-Identifier: MIT */
/* Histogram: bucket function, quantile accuracy, identities, concurrency. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Writing inline into a compact histogram becomes a checked no-op. */
#define HITEL_HIST_CHECKED 1
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

/* Every read-only function gives the same answer on a and b. */
static void assert_same(const struct hitel_hist *a, const struct hitel_hist *b, const char *what)
{
	static const double more[] = { 0.0,  1e-9, 0.001, 0.05, 0.3333, 0.5, 0.6667,
				       0.95, 0.99, 0.999, 0.99999, 1.0, 2.0 };
	struct hitel_hist_bucket ba, bb;
	unsigned int ca = 0, cb = 0, i, nb = hitel_hist_buckets(a);
	uint64_t qa[sizeof(more) / sizeof(more[0])], qb[sizeof(more) / sizeof(more[0])];
	uint64_t la, ua, lb, ub;
	size_t k;
	int ra, rb;

	ck_assert_uint_eq(hitel_hist_grouping_power(a), hitel_hist_grouping_power(b));
	ck_assert_uint_eq(hitel_hist_max_power(a), hitel_hist_max_power(b));
	ck_assert_uint_eq(nb, hitel_hist_buckets(b));
	ck_assert_msg(hitel_hist_count(a) == hitel_hist_count(b), "%s: count %llu vs %llu", what,
		      (unsigned long long)hitel_hist_count(a),
		      (unsigned long long)hitel_hist_count(b));
	ck_assert_uint_eq(hitel_hist_sum(a), hitel_hist_sum(b));
	ck_assert_uint_eq(hitel_hist_min(a), hitel_hist_min(b));
	ck_assert_uint_eq(hitel_hist_max(a), hitel_hist_max(b));
	ck_assert_uint_eq(hitel_hist_overflow(a), hitel_hist_overflow(b));
	for (i = 0; i <= nb; i++)
		ck_assert_msg(hitel_hist_bucket_count(a, i) == hitel_hist_bucket_count(b, i),
			      "%s: bucket %u: %llu vs %llu", what, i,
			      (unsigned long long)hitel_hist_bucket_count(a, i),
			      (unsigned long long)hitel_hist_bucket_count(b, i));
	for (i = 0; i < 200; i++) {
		uint64_t v = rnd() >> (rnd() & 63);

		ck_assert_uint_eq(hitel_hist_index(a, v), hitel_hist_index(b, v));
		ra = hitel_hist_bounds(a, i * 37 % (nb + 1), &la, &ua);
		ck_assert_int_eq(ra, hitel_hist_bounds(b, i * 37 % (nb + 1), &lb, &ub));
		if (ra == 0) {
			ck_assert_uint_eq(la, lb);
			ck_assert_uint_eq(ua, ub);
		}
	}
	hitel_hist_quantiles(a, more, sizeof(more) / sizeof(more[0]), qa);
	hitel_hist_quantiles(b, more, sizeof(more) / sizeof(more[0]), qb);
	for (k = 0; k < sizeof(more) / sizeof(more[0]); k++) {
		ck_assert_msg(qa[k] == qb[k], "%s: q%g %llu vs %llu", what, more[k],
			      (unsigned long long)qa[k], (unsigned long long)qb[k]);
		ck_assert_uint_eq(hitel_hist_quantile(a, more[k]), hitel_hist_quantile(b, more[k]));
	}
	do {
		ra = hitel_hist_next(a, &ca, &ba);
		rb = hitel_hist_next(b, &cb, &bb);
		ck_assert_int_eq(ra, rb);
		ck_assert_uint_eq(ca, cb);
		if (ra) {
			ck_assert_uint_eq(ba.index, bb.index);
			ck_assert_uint_eq(ba.lower, bb.lower);
			ck_assert_uint_eq(ba.upper, bb.upper);
			ck_assert_uint_eq(ba.count, bb.count);
		}
	} while (ra);
}

/* A compact copy of h that must read exactly like h. */
static struct hitel_hist *compact_checked(const struct hitel_hist *h, const char *what)
{
	struct hitel_hist *c = hitel_hist_compact(h);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(hitel_hist_is_compact(c), 1);
	ck_assert_uint_le(hitel_hist_size(c), hitel_hist_size(h) + 16 * 64);
	assert_same(h, c, what);
	return c;
}

START_TEST(test_quantile_accuracy)
{
	const size_t n = 1000000;
	enum dist d = (enum dist)(_i % NDIST);
	unsigned int g = _i < NDIST ? 7 : 3;
	uint64_t *v = malloc(n * sizeof(*v)), sum = 0;
	struct hitel_hist *h = hitel_hist_new(g, 64), *c;
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
	/* The compact copy answers exactly as the dense one. */
	c = compact_checked(h, dist_name[d]);
	check_quantiles(c, v, n, g, dist_name[d]);
	ck_assert_uint_eq(hitel_hist_count(c), n);
	free(v);
	hitel_hist_free(h);
	hitel_hist_free(c);
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
	/* A compact source merges exactly as its dense original. */
	{
		struct hitel_hist *cb = compact_checked(b, "merge src");
		struct hitel_hist *a2 = hitel_hist_new(7, 64);

		for (i = 0; i < n; i++)
			hitel_hist_record(a2, draw(PARETO));
		hitel_hist_free(a);
		a = hitel_hist_dup(a2);
		ck_assert_int_eq(hitel_hist_merge(a, b), 0);
		ck_assert_int_eq(hitel_hist_merge(a2, cb), 0);
		assert_same(a, a2, "merge compact src");
		hitel_hist_free(cb);
		hitel_hist_free(a2);
	}
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
	/* Compact inputs, in every combination, give the same window; so does
	 * the compact window of hitel_hist_delta_new. */
	{
		struct hitel_hist *c1 = compact_checked(s1, "s1"), *c2 = compact_checked(s2, "s2");
		const struct hitel_hist *olds[] = { s1, c1, s1, c1 }, *news[] = { s2, s2, c2, c2 };
		struct hitel_hist *ref = hitel_hist_new(5, 64), *w2 = hitel_hist_new(5, 64), *cw;
		int k;

		ck_assert_int_eq(hitel_hist_delta(s1, s2, ref), 0);
		for (k = 0; k < 4; k++) {
			ck_assert_int_eq(hitel_hist_delta(olds[k], news[k], w2), 0);
			assert_same(ref, w2, "delta, compact inputs");
			ck_assert_int_eq(hitel_hist_delta_new(olds[k], news[k], &cw), 0);
			ck_assert_int_eq(hitel_hist_is_compact(cw), 1);
			assert_same(ref, cw, "delta_new");
			ck_assert_uint_lt(hitel_hist_size(cw), hitel_hist_size(c2));
			hitel_hist_free(cw);
			/* A reset: -ERANGE, and the window holds newer. */
			ck_assert_int_eq(hitel_hist_delta(news[k], olds[k], w2), -ERANGE);
			assert_same(s1, w2, "delta reset, compact inputs");
			ck_assert_int_eq(hitel_hist_delta_new(news[k], olds[k], &cw), -ERANGE);
			ck_assert_int_eq(hitel_hist_is_compact(cw), 1);
			assert_same(s1, cw, "delta_new reset");
			hitel_hist_free(cw);
		}
		/* The window of a histogram with itself is empty. */
		ck_assert_int_eq(hitel_hist_delta_new(c2, c2, &cw), 0);
		ck_assert_uint_eq(hitel_hist_count(cw), 0);
		ck_assert_uint_eq(hitel_hist_min(cw), 0);
		ck_assert_uint_eq(hitel_hist_max(cw), 0);
		ck_assert_int_eq(hitel_hist_delta(c2, s2, ref), 0);
		assert_same(ref, cw, "empty window");
		hitel_hist_free(cw);
		/* A compact out is refused. */
		ck_assert_int_eq(hitel_hist_delta(s1, s2, c1), -EINVAL);
		assert_same(s1, c1, "refused delta out");
		hitel_hist_free(c1);
		hitel_hist_free(c2);
		hitel_hist_free(ref);
		hitel_hist_free(w2);
	}
	/* Shape mismatch. */
	hitel_hist_free(only);
	only = hitel_hist_new(4, 64);
	ck_assert_int_eq(hitel_hist_delta(s1, s2, only), -EINVAL);
	{
		struct hitel_hist *cw = (struct hitel_hist *)1;

		ck_assert_int_eq(hitel_hist_delta_new(only, s2, &cw), -EINVAL);
		ck_assert_ptr_null(cw);
	}
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
	/* A compact input downsamples to the same (dense) histogram. */
	{
		struct hitel_hist *cf = compact_checked(fine, "fine"), *cd;
		unsigned int g2;

		for (g2 = 0; g2 < 7; g2++) {
			struct hitel_hist *dd = hitel_hist_downsample(fine, g2);

			cd = hitel_hist_downsample(cf, g2);
			ck_assert_ptr_nonnull(cd);
			ck_assert_int_eq(hitel_hist_is_compact(cd), 0);
			assert_same(dd, cd, "downsample compact");
			hitel_hist_free(dd);
			hitel_hist_free(cd);
		}
		cd = hitel_hist_downsample(cf, 2);
		assert_same(coarse, cd, "downsample compact vs coarse");
		hitel_hist_free(cd);
		ck_assert_ptr_null(hitel_hist_downsample(cf, 7));
		hitel_hist_free(cf);
	}
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
	/* The compact copy keeps the overflow and its top-bucket answers. */
	{
		struct hitel_hist *c = compact_checked(h, "overflow");

		ck_assert_uint_eq(hitel_hist_overflow(c), 2);
		ck_assert_uint_eq(hitel_hist_quantile(c, 0.75), UINT64_MAX);
		ck_assert_uint_eq(hitel_hist_bucket_count(c, hitel_hist_buckets(c) - 1), 3);
		hitel_hist_free(c);
	}
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
	/* Compact: same buckets from every cursor, including mid-chunk ones
	 * and past the end. */
	{
		struct hitel_hist *c = compact_checked(h, "iterate");
		struct hitel_hist_bucket b2;
		unsigned int c1, c2;
		int r1, r2;

		for (cur = 0; cur <= hitel_hist_buckets(h) + 1; cur++) {
			c1 = c2 = cur;
			r1 = hitel_hist_next(h, &c1, &b);
			r2 = hitel_hist_next(c, &c2, &b2);
			ck_assert_int_eq(r1, r2);
			ck_assert_uint_eq(c1, c2);
			if (r1) {
				ck_assert_uint_eq(b.index, b2.index);
				ck_assert_uint_eq(b.count, b2.count);
			}
		}
		hitel_hist_free(c);
	}
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
		struct hitel_hist *c;
		struct hitel_hist_bucket b;
		unsigned int cur = 0;
		uint64_t total = 0;

		ck_assert_int_eq(hitel_hist_snapshot(shared, snap), 0);
		ck_assert_uint_le(hitel_hist_count(snap), 2 * THREAD_RECORDS);
		/* So must compact copies: count is what their buckets hold. */
		c = hitel_hist_compact(shared);
		ck_assert_ptr_nonnull(c);
		while (hitel_hist_next(c, &cur, &b))
			total += b.count;
		ck_assert_uint_eq(hitel_hist_count(c), total);
		ck_assert_uint_le(total, 2 * THREAD_RECORDS);
		hitel_hist_free(c);
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
	{
		struct hitel_hist *c = compact_checked(shared, "atomic");

		assert_same(snap, c, "atomic snapshot vs compact");
		hitel_hist_free(c);
	}
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
	/* The dup of a compact histogram is compact and equal; a snapshot
	 * expands it back into a dense one. */
	{
		struct hitel_hist *c = compact_checked(h, "dup"), *c2 = hitel_hist_dup(c);

		ck_assert_ptr_nonnull(c2);
		ck_assert_int_eq(hitel_hist_is_compact(c2), 1);
		ck_assert_uint_eq(hitel_hist_size(c2), hitel_hist_size(c));
		assert_same(h, c2, "dup of compact");
		hitel_hist_record(d, 99);
		ck_assert_int_eq(hitel_hist_snapshot(c2, d), 0);
		ck_assert_int_eq(hitel_hist_is_compact(d), 0);
		assert_same(h, d, "snapshot of compact");
		hitel_hist_free(c);
		hitel_hist_free(c2);
	}
	hitel_hist_free(h);
	hitel_hist_free(d);
}
END_TEST

START_TEST(test_compact_empty)
{
	struct hitel_hist *h = hitel_hist_new(7, 64), *c, *w;
	struct hitel_hist_bucket b;
	unsigned int cur = 0;

	c = compact_checked(h, "empty");
	ck_assert_uint_eq(hitel_hist_count(c), 0);
	ck_assert_uint_eq(hitel_hist_min(c), 0);
	ck_assert_uint_eq(hitel_hist_max(c), 0);
	ck_assert_uint_eq(hitel_hist_quantile(c, 0.5), 0);
	ck_assert_int_eq(hitel_hist_next(c, &cur, &b), 0);
	ck_assert_uint_eq(cur, hitel_hist_buckets(c));
	/* Header only: no bucket is stored. */
	ck_assert_uint_le(hitel_hist_size(c), 128);
	ck_assert_int_eq(hitel_hist_delta_new(c, c, &w), 0);
	assert_same(h, w, "empty window");
	hitel_hist_free(w);
	ck_assert_int_eq(hitel_hist_delta_new(c, h, &w), 0);
	assert_same(h, w, "empty window, dense newer");
	hitel_hist_free(w);
	hitel_hist_free(h);
	hitel_hist_free(c);
}
END_TEST

/* Shapes with partial last chunks (nb not a multiple of 64), the fewest and
 * the most buckets, and values reaching the clamped top bucket. */
static const struct {
	unsigned int g, m;
} shapes[] = { { 0, 64 }, { 0, 1 }, { 2, 5 }, { 3, 10 }, { 5, 64 }, { 7, 64 }, { 7, 20 }, { 10, 64 } };

START_TEST(test_compact_shapes)
{
	unsigned int g = shapes[_i].g, m = shapes[_i].m, i;
	struct hitel_hist *h = hitel_hist_new(g, m), *old, *c, *cold, *w, *ref;

	ck_assert_ptr_nonnull(h);
	for (i = 0; i < 3000; i++)
		hitel_hist_record(h, rnd() >> (rnd() % 64));
	old = hitel_hist_dup(h);
	for (i = 0; i < 500; i++)
		hitel_hist_record_n(h, (rnd() & 7) ? rnd() % 5000 : UINT64_MAX >> (rnd() % 64), 3);
	hitel_hist_record(h, 0);
	hitel_hist_record(h, UINT64_MAX);
	c = compact_checked(h, "shape");
	cold = compact_checked(old, "shape old");
	ref = hitel_hist_new(g, m);
	ck_assert_int_eq(hitel_hist_delta(old, h, ref), 0);
	ck_assert_int_eq(hitel_hist_delta_new(cold, c, &w), 0);
	assert_same(ref, w, "shape delta_new");
	hitel_hist_free(w);
	ck_assert_int_eq(hitel_hist_delta_new(old, h, &w), 0);
	assert_same(ref, w, "shape delta_new dense inputs");
	hitel_hist_free(w);
	hitel_hist_free(h);
	hitel_hist_free(old);
	hitel_hist_free(c);
	hitel_hist_free(cold);
	hitel_hist_free(ref);
}
END_TEST

/* A caller's min above the lowest non-empty bucket (load takes it on
 * trust) must not make the compact copy miss that bucket. */
START_TEST(test_compact_inexact_extremes)
{
	struct hitel_hist *h = hitel_hist_new(5, 64), *c;
	uint64_t *counts = calloc(hitel_hist_buckets(h), sizeof(*counts));

	counts[3] = 4;
	counts[700] = 1;
	counts[1500] = 2;
	/* min above the chunk of bucket 3, max unknown. */
	ck_assert_int_eq(hitel_hist_load(h, counts, hitel_hist_buckets(h), 12345, 100, UINT64_MAX),
			 0);
	ck_assert_uint_eq(hitel_hist_min(h), 100);
	c = compact_checked(h, "inexact min");
	ck_assert_uint_eq(hitel_hist_count(c), 7);
	ck_assert_uint_eq(hitel_hist_bucket_count(c, 3), 4);
	ck_assert_uint_eq(hitel_hist_bucket_count(c, 1500), 2);
	hitel_hist_free(c);
	/* min above max. */
	ck_assert_int_eq(hitel_hist_load(h, counts, hitel_hist_buckets(h), 12345, 1000000, 5000),
			 0);
	c = compact_checked(h, "inexact extremes");
	ck_assert_uint_eq(hitel_hist_count(c), 7);
	free(counts);
	hitel_hist_free(h);
	hitel_hist_free(c);
}
END_TEST

/* Writing into a compact histogram is refused and leaves it unchanged. */
START_TEST(test_compact_readonly)
{
	struct hitel_hist *h = hitel_hist_new(5, 64), *c, *before, *src = hitel_hist_new(5, 64);
	uint64_t *counts = calloc(hitel_hist_buckets(h), sizeof(*counts));
	unsigned int i;

	for (i = 0; i < 1000; i++)
		hitel_hist_record(h, draw(LOGUNIFORM));
	hitel_hist_record(src, 77);
	c = compact_checked(h, "readonly");
	before = hitel_hist_dup(c);
	hitel_hist_record(c, 5);
	hitel_hist_record_n(c, 1ULL << 40, 9);
	hitel_hist_record_atomic(c, 5);
	hitel_hist_clear(c);
	ck_assert_int_eq(hitel_hist_load(c, counts, hitel_hist_buckets(c), 1, 0, UINT64_MAX),
			 -EINVAL);
	ck_assert_int_eq(hitel_hist_merge(c, src), -EINVAL);
	ck_assert_int_eq(hitel_hist_snapshot(src, c), -EINVAL);
	ck_assert_int_eq(hitel_hist_delta(src, src, c), -EINVAL);
	assert_same(before, c, "after refused writes");
	assert_same(h, c, "after refused writes, vs dense");
	ck_assert_uint_eq(hitel_hist_size(c), hitel_hist_size(before));
	free(counts);
	hitel_hist_free(h);
	hitel_hist_free(c);
	hitel_hist_free(before);
	hitel_hist_free(src);
}
END_TEST

/* What compaction is for: a cumulative rate histogram (mostly zeros, a few
 * decades of rates) and its window are a small fraction of the dense form. */
START_TEST(test_compact_size)
{
	struct hitel_hist *h = hitel_hist_new(5, 64), *c, *old, *w;
	unsigned int i;

	ck_assert_uint_eq(hitel_hist_size(h), sizeof(struct hitel_hist) + 1920 * sizeof(uint64_t));
	for (i = 0; i < 36000; i++)
		hitel_hist_record(h, rnd01() < 0.6 ? 0 : (uint64_t)exp10(3.0 + 3.0 * rnd01()));
	old = compact_checked(h, "rate");
	for (i = 0; i < 100; i++)
		hitel_hist_record(h, rnd01() < 0.6 ? 0 : (uint64_t)exp10(3.0 + 3.0 * rnd01()));
	c = compact_checked(h, "rate");
	ck_assert_uint_le(hitel_hist_size(c) * 4, hitel_hist_size(h));
	ck_assert_int_eq(hitel_hist_delta_new(old, c, &w), 0);
	ck_assert_uint_eq(hitel_hist_count(w), 100);
	ck_assert_uint_le(hitel_hist_size(w) * 10, hitel_hist_size(h));
	hitel_hist_free(h);
	hitel_hist_free(c);
	hitel_hist_free(old);
	hitel_hist_free(w);
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
	tcase_add_test(tc, test_compact_empty);
	tcase_add_loop_test(tc, test_compact_shapes, 0, sizeof(shapes) / sizeof(shapes[0]));
	tcase_add_test(tc, test_compact_inexact_extremes);
	tcase_add_test(tc, test_compact_readonly);
	tcase_add_test(tc, test_compact_size);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
