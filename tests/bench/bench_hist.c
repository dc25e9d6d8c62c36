/* SPDX-License-Identifier: MIT */
/*
 * Histogram benchmarks. Every hot-path figure is a ratio against a baseline
 * measured in the same run on the same input, because absolute timings on a
 * shared VM drift: record vs a bare counts[i]++ into an array of the same
 * size, atomic record vs a bare relaxed atomic add, a shared histogram vs
 * per-thread shards. Each figure is the best of REPS runs. The snapshot rows
 * compare compact copies (what snapshots and windows hold) with dense ones.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "hist.h"

#define NVAL 4096 /* input ring: fits L1/L2 like a real hot loop's state */
#define ITERS (20 * 1000 * 1000)
#define REPS 5

static uint64_t vals[NVAL];
static unsigned int idx[NVAL];

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

typedef void (*loop_fn)(void *ctx, uint64_t iters);

static double best_ns_per_op(loop_fn fn, void *ctx, uint64_t iters)
{
	double best = 1e30;
	int r;

	for (r = 0; r < REPS; r++) {
		uint64_t t0 = bench_ns();

		fn(ctx, iters);
		double ns = (double)(bench_ns() - t0) / (double)iters;
		if (ns < best)
			best = ns;
	}
	return best;
}

static void loop_bare(void *ctx, uint64_t iters)
{
	uint64_t *counts = ctx, i;

	for (i = 0; i < iters; i++)
		counts[idx[i & (NVAL - 1)]]++;
	BENCH_KEEP(counts[0]);
}

/* counts[index(v)]++: the same bucket function, none of the bookkeeping
 * (count, sum, min, max): isolates what record adds on top of indexing. */
static struct hitel_hist *shape;
static void loop_bare_index(void *ctx, uint64_t iters)
{
	uint64_t *counts = ctx, i;

	for (i = 0; i < iters; i++)
		counts[hitel_hist_index_inline(shape, vals[i & (NVAL - 1)])]++;
	BENCH_KEEP(counts[0]);
}

/* Two relaxed atomic adds per value: the floor for an exact count and sum. */
static void loop_bare_atomic2(void *ctx, uint64_t iters)
{
	uint64_t *counts = ctx, i;

	for (i = 0; i < iters; i++) {
		__atomic_fetch_add(&counts[idx[i & (NVAL - 1)]], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&counts[1], vals[i & (NVAL - 1)], __ATOMIC_RELAXED);
	}
}

static void loop_record(void *ctx, uint64_t iters)
{
	struct hitel_hist *h = ctx;
	uint64_t i;

	for (i = 0; i < iters; i++)
		hitel_hist_record(h, vals[i & (NVAL - 1)]);
}

static void loop_bare_atomic(void *ctx, uint64_t iters)
{
	uint64_t *counts = ctx, i;

	for (i = 0; i < iters; i++)
		__atomic_fetch_add(&counts[idx[i & (NVAL - 1)]], 1, __ATOMIC_RELAXED);
}

static void loop_record_atomic(void *ctx, uint64_t iters)
{
	struct hitel_hist *h = ctx;
	uint64_t i;

	for (i = 0; i < iters; i++)
		hitel_hist_record_atomic(h, vals[i & (NVAL - 1)]);
}

struct mt {
	struct hitel_hist *shared;
	struct hitel_hist *shard[2];
	int use_shards;
	int k;
};

static void *mt_worker(void *arg)
{
	struct mt *m = arg;
	uint64_t i;

	if (m->use_shards) {
		struct hitel_hist *h = m->shard[m->k];

		for (i = 0; i < ITERS / 2; i++)
			hitel_hist_record(h, vals[(i + (uint64_t)m->k * 7) & (NVAL - 1)]);
	} else {
		for (i = 0; i < ITERS / 2; i++)
			hitel_hist_record_atomic(m->shared,
						 vals[(i + (uint64_t)m->k * 7) & (NVAL - 1)]);
	}
	return NULL;
}

static double two_threads(int use_shards)
{
	double best = 1e30;
	int r;

	for (r = 0; r < REPS; r++) {
		struct mt m[2];
		pthread_t t[2];
		struct hitel_hist *shared = hitel_hist_new(7, 64);
		struct hitel_hist *sh[2] = { hitel_hist_new(7, 64), hitel_hist_new(7, 64) };
		struct hitel_hist *merged = hitel_hist_new(7, 64);
		uint64_t t0 = bench_ns();
		int k;

		for (k = 0; k < 2; k++) {
			m[k] = (struct mt){ shared, { sh[0], sh[1] }, use_shards, k };
			pthread_create(&t[k], NULL, mt_worker, &m[k]);
		}
		for (k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		if (use_shards) { /* the read side pays the merge */
			hitel_hist_merge(merged, sh[0]);
			hitel_hist_merge(merged, sh[1]);
		}
		double ns = (double)(bench_ns() - t0) / (double)ITERS;
		if (ns < best)
			best = ns;
		hitel_hist_free(shared);
		hitel_hist_free(sh[0]);
		hitel_hist_free(sh[1]);
		hitel_hist_free(merged);
	}
	return best;
}

static double us_per_call(void (*fn)(void *), void *ctx, int calls)
{
	double best = 1e30;
	int r, c;

	for (r = 0; r < REPS; r++) {
		uint64_t t0 = bench_ns();

		for (c = 0; c < calls; c++)
			fn(ctx);
		double us = (double)(bench_ns() - t0) / 1000.0 / calls;
		if (us < best)
			best = us;
	}
	return best;
}

struct three {
	struct hitel_hist *a, *b, *out;
};

static void call_quantiles(void *ctx)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
	struct three *t = ctx;
	uint64_t out[5];

	hitel_hist_quantiles(t->b, qs, 5, out);
	BENCH_KEEP(out[4]);
}

static void call_quantile(void *ctx)
{
	struct three *t = ctx;

	BENCH_KEEP(hitel_hist_quantile(t->b, 0.99));
}

static void call_delta(void *ctx)
{
	struct three *t = ctx;

	hitel_hist_delta(t->a, t->b, t->out);
}

static void call_merge(void *ctx)
{
	struct three *t = ctx;

	hitel_hist_merge(t->out, t->b);
}

static void call_snapshot(void *ctx)
{
	struct three *t = ctx;

	hitel_hist_snapshot(t->b, t->out);
}

/* ---- snapshot rows: compact copies of realistic histograms --------------- */

/* NH histograms of the same kind, copied in a row as a snapshot copies its
 * series: together they exceed the caches, as a registry's do. */
#define NH 256

struct copy {
	struct hitel_hist *live[NH], *dense[NH], *compact[NH], *older[NH], *cold[NH];
	char *block;
	size_t len;
};

static void call_dense_copy(void *ctx)
{
	struct copy *c = ctx;
	int i;

	for (i = 0; i < NH; i++)
		hitel_hist_snapshot(c->live[i], c->dense[i]);
}

static void call_compact_to(void *ctx)
{
	struct copy *c = ctx;
	size_t used = 0;
	int i;

	for (i = 0; i < NH; i++)
		used += hitel_hist_compact_to(c->live[i], c->block + used, c->len - used);
	BENCH_KEEP(used);
}

static void call_dense_dup(void *ctx)
{
	struct copy *c = ctx;

	hitel_hist_free(hitel_hist_dup(c->live[0]));
}

static void call_compact(void *ctx)
{
	struct copy *c = ctx;

	hitel_hist_free(hitel_hist_compact(c->live[0]));
}

static void call_quantiles_dense(void *ctx)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
	struct copy *c = ctx;
	uint64_t out[5];

	hitel_hist_quantiles(c->dense[0], qs, 5, out);
	BENCH_KEEP(out[4]);
}

static void call_quantiles_compact(void *ctx)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };
	struct copy *c = ctx;
	uint64_t out[5];

	hitel_hist_quantiles(c->compact[0], qs, 5, out);
	BENCH_KEEP(out[4]);
}

static void call_window_dense(void *ctx)
{
	struct copy *c = ctx;
	struct hitel_hist *w = hitel_hist_new(hitel_hist_grouping_power(c->live[0]), 64);

	hitel_hist_delta(c->older[0], c->live[0], w);
	hitel_hist_free(w);
}

static void call_window_compact(void *ctx)
{
	struct copy *c = ctx;
	struct hitel_hist *w;

	hitel_hist_delta_new(c->cold[0], c->compact[0], &w);
	hitel_hist_free(w);
}

static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static uint64_t draw_rate(void)
{
	/* 60 % idle samples, the rest over three decades. */
	return rnd01() < 0.6 ? 0 : (uint64_t)exp10(3.0 + 3.0 * rnd01());
}

static uint64_t draw_latency(void)
{
	/* 10 us .. 100 ms, densest around 1 ms. */
	double x = rnd01() + rnd01() + rnd01();

	return (uint64_t)exp10(4.0 + 4.0 * x / 3.0);
}

static void snapshot_rows(const char *what, unsigned int g, uint64_t (*draw)(void),
			  unsigned int n, unsigned int window)
{
	struct copy *c = calloc(1, sizeof(*c));
	size_t dense = 0, compact = 0;
	unsigned int i, k;
	double d, x;

	for (k = 0; k < NH; k++) {
		c->live[k] = hitel_hist_new(g, 64);
		c->dense[k] = hitel_hist_new(g, 64);
		for (i = 0; i < n; i++)
			hitel_hist_record(c->live[k], draw());
		c->older[k] = hitel_hist_dup(c->live[k]);
		c->cold[k] = hitel_hist_compact(c->live[k]);
		for (i = 0; i < window; i++)
			hitel_hist_record(c->live[k], draw());
		c->compact[k] = hitel_hist_compact(c->live[k]);
		hitel_hist_snapshot(c->live[k], c->dense[k]);
		dense += hitel_hist_size(c->dense[k]);
		compact += hitel_hist_size(c->compact[k]);
	}
	c->len = compact;
	c->block = malloc(c->len);
	memset(c->block, 0, c->len);

	printf("\n%s\n%-46s %10zu %10zu %8.3f\n", what, "bytes per histogram: compact vs dense",
	       compact / NH, dense / NH, (double)compact / (double)dense);
	printf("%-46s %10s %10s %8s\n", "operation", "us/call", "baseline", "ratio");
	d = us_per_call(call_dense_copy, c, 10) / NH;
	x = us_per_call(call_compact_to, c, 10) / NH;
	printf("%-46s %10.3f %10.3f %8.2f\n", "256 in a row: compact_to vs dense copy", x, d, x / d);
	d = us_per_call(call_dense_dup, c, 2000);
	x = us_per_call(call_compact, c, 2000);
	printf("%-46s %10.3f %10.3f %8.2f\n", "one, in cache: compact vs dup", x, d, x / d);
	d = us_per_call(call_quantiles_dense, c, 2000);
	x = us_per_call(call_quantiles_compact, c, 2000);
	printf("%-46s %10.3f %10.3f %8.2f\n", "5 quantiles: compact vs dense", x, d, x / d);
	d = us_per_call(call_window_dense, c, 2000);
	x = us_per_call(call_window_compact, c, 2000);
	printf("%-46s %10.3f %10.3f %8.2f\n", "window: delta_new (compact) vs delta (dense)", x,
	       d, x / d);
	for (k = 0; k < NH; k++) {
		hitel_hist_free(c->live[k]);
		hitel_hist_free(c->dense[k]);
		hitel_hist_free(c->compact[k]);
		hitel_hist_free(c->older[k]);
		hitel_hist_free(c->cold[k]);
	}
	free(c->block);
	free(c);
}

int main(void)
{
	struct hitel_hist *h = hitel_hist_new(7, 64);
	unsigned int nb = hitel_hist_buckets(h), i;
	uint64_t *counts = calloc(nb, sizeof(*counts));
	double bare, bare_ix, rec, bare_at, bare_at2, rec_at, shared, shards;
	struct three t;

	/* Log-uniform values over 1 ns .. 1 s: the spread of real latencies. */
	for (i = 0; i < NVAL; i++) {
		vals[i] = (uint64_t)exp2((double)(rnd() % 30000) / 1000.0);
		idx[i] = hitel_hist_index(h, vals[i]);
	}

	bare = best_ns_per_op(loop_bare, counts, ITERS);
	shape = h;
	bare_ix = best_ns_per_op(loop_bare_index, counts, ITERS);
	rec = best_ns_per_op(loop_record, h, ITERS);
	bare_at2 = best_ns_per_op(loop_bare_atomic2, counts, ITERS);
	bare_at = best_ns_per_op(loop_bare_atomic, counts, ITERS);
	{
		struct hitel_hist *ha = hitel_hist_new(7, 64);

		rec_at = best_ns_per_op(loop_record_atomic, ha, ITERS);
		hitel_hist_free(ha);
	}
	shared = two_threads(0);
	shards = two_threads(1);

	printf("%-46s %10s %10s %8s %6s\n", "operation", "ns/op", "baseline", "ratio", "goal");
	printf("%-46s %10.2f %10.2f %8.2f %6s\n", "record vs counts[i]++", rec, bare, rec / bare,
	       "<=1.5");
	printf("%-46s %10.2f %10.2f %8.2f %6s\n", "record vs counts[index(v)]++", rec, bare_ix,
	       rec / bare_ix, "-");
	printf("%-46s %10.2f %10.2f %8.2f %6s\n", "record_atomic vs relaxed atomic add", rec_at,
	       bare_at, rec_at / bare_at, "<=1.2");
	printf("%-46s %10.2f %10.2f %8.2f %6s\n", "record_atomic vs two relaxed atomic adds", rec_at,
	       bare_at2, rec_at / bare_at2, "-");
	printf("%-46s %10.2f %10.2f %8.2f %6s\n", "2 threads: shared atomic vs per-thread shards",
	       shared, shards, shared / shards, "-");

	/* A full g=7 histogram: every bucket non-empty. */
	t.a = hitel_hist_new(7, 64);
	t.b = hitel_hist_new(7, 64);
	t.out = hitel_hist_new(7, 64);
	for (i = 0; i < nb; i++) {
		uint64_t lo, hi;

		hitel_hist_bounds(t.b, i, &lo, &hi);
		hitel_hist_record_n(t.b, lo, 3);
		hitel_hist_record_n(t.a, lo, 1);
	}
	printf("\n%-46s %10s\n", "full g=7 histogram (7424 buckets)", "us/call");
	printf("%-46s %10.2f\n", "quantile (one)", us_per_call(call_quantile, &t, 2000));
	printf("%-46s %10.2f\n", "quantiles (5 in one pass)", us_per_call(call_quantiles, &t, 2000));
	printf("%-46s %10.2f\n", "delta", us_per_call(call_delta, &t, 2000));
	printf("%-46s %10.2f\n", "merge", us_per_call(call_merge, &t, 2000));
	printf("%-46s %10.2f\n", "snapshot (copy)", us_per_call(call_snapshot, &t, 2000));

	/* Snapshots and windows copy histograms compact: realistic contents. */
	snapshot_rows("snapshot: rate histograms g=5, 36000 rates (60 % idle, 3 decades), window 100",
		      5, draw_rate, 36000, 100);
	snapshot_rows("snapshot: latency histograms g=7, 100000 values over 4 decades, window 1000",
		      7, draw_latency, 100000, 1000);
	hitel_hist_free(h);
	hitel_hist_free(t.a);
	hitel_hist_free(t.b);
	hitel_hist_free(t.out);
	free(counts);
	return 0;
}
