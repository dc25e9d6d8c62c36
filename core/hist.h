/* SPDX-License-Identifier: MIT */
/*
 * Log-linear histograms (see hist_bucket.h for the bucket function).
 *
 * A histogram is cumulative: it only ever grows. A reporting window is the
 * difference of two snapshots (hitel_hist_delta), so any number of readers
 * with different intervals share one histogram without resetting it.
 *
 * Thread-safety: hitel_hist_record*() without the _atomic suffix need a
 * single writer (or external locking). hitel_hist_record_atomic() may be
 * called from many threads at once; a reader that runs concurrently with
 * atomic writers uses hitel_hist_snapshot(), which loads each bucket
 * atomically (the snapshot is then per-bucket consistent: count is derived
 * from the buckets copied, so quantiles over it are self-consistent).
 *
 * Counts are derived from the buckets, so recording costs one add; the sum
 * is kept exactly modulo 2^64: a delta is exact while a window's sum stays
 * below 2^64.
 *
 * Two forms share this type. A dense histogram (hitel_hist_new) keeps every
 * bucket and is what writers record into. A compact histogram
 * (hitel_hist_compact, hitel_hist_delta_new, and hitel_hist_dup of a compact
 * one) is a read-only copy that stores only the non-empty buckets: snapshots
 * and windows are made of them, since most buckets of a real histogram are
 * empty (a g=7 latency histogram spanning four decades fills ~14 of its 58
 * power-of-two groups). Every read-only function below accepts either form
 * and gives identical results for equal contents; the writing functions
 * (record*, load, clear, and the destination of merge, snapshot and delta)
 * need a dense histogram and refuse a compact one as each one documents. A
 * compact histogram never changes, so any number of threads may read it.
 */
#ifndef HITEL_HIST_H
#define HITEL_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "hist_bucket.h"

struct hitel_hist;

/*
 * Creates an empty histogram with grouping power g (0..10, relative error
 * <= 2^-g) and max power m (g < m <= 64; values >= 2^m are clamped into the
 * top bucket and counted by hitel_hist_overflow()). Returns NULL and sets
 * errno (EINVAL, ENOMEM).
 */
struct hitel_hist *hitel_hist_new(unsigned int g, unsigned int m);
/*
 * The same in memory the caller provides (a registry maps its long-lived
 * histograms itself, so pages no record touches are never resident):
 * hitel_hist_bytes() is the size needed (0 and errno EINVAL for a bad
 * shape); mem must be zeroed and 8-byte aligned. The result is never passed
 * to hitel_hist_free().
 */
size_t hitel_hist_bytes(unsigned int g, unsigned int m);
struct hitel_hist *hitel_hist_init(void *mem, unsigned int g, unsigned int m);
/* Frees h; NULL is accepted. */
void hitel_hist_free(struct hitel_hist *h);
/* New histogram with the same shape and contents, in the same form (the dup
 * of a compact histogram is compact). NULL + errno (ENOMEM) on error. */
struct hitel_hist *hitel_hist_dup(const struct hitel_hist *h);
/*
 * New read-only compact copy of h (dense or compact): only its non-empty
 * buckets, in 64-bucket chunks of a bitmap and the non-zero counts, so it
 * costs 16 bytes per non-empty chunk plus 8 per non-empty bucket instead of
 * 8 per bucket. Like hitel_hist_snapshot(), it may run while other threads
 * call hitel_hist_record_atomic(h). Free it with hitel_hist_free(). Returns
 * NULL and sets errno (ENOMEM).
 */
struct hitel_hist *hitel_hist_compact(const struct hitel_hist *h);
/*
 * hitel_hist_compact() into the caller's memory, for copying many
 * histograms into one block: writes the compact copy of h to buf when it
 * takes at most len bytes, and returns the bytes it takes either way (a
 * multiple of 8; buf must be 8-byte aligned). The copy lives in buf, is
 * read like any compact histogram and is never passed to hitel_hist_free().
 */
size_t hitel_hist_compact_to(const struct hitel_hist *h, void *buf, size_t len);
/* 1 if h is compact (read-only), 0 if dense. */
int hitel_hist_is_compact(const struct hitel_hist *h);
/* Bytes of memory h holds (the allocation behind it): for measurements. */
size_t hitel_hist_size(const struct hitel_hist *h);

unsigned int hitel_hist_grouping_power(const struct hitel_hist *h);
unsigned int hitel_hist_max_power(const struct hitel_hist *h);
unsigned int hitel_hist_buckets(const struct hitel_hist *h);

/* Bucket index of v for this histogram's shape (clamped to the top bucket). */
unsigned int hitel_hist_index(const struct hitel_hist *h, uint64_t v);
/* Inclusive value bounds of bucket i: every v with lower <= v <= upper maps
 * to i. Returns 0, or -ERANGE if i is out of range. */
int hitel_hist_bounds(const struct hitel_hist *h, unsigned int i, uint64_t *lower,
		      uint64_t *upper);

/*
 * The layout is visible only so that recording inlines into callers' loops:
 * measured 1.8x faster than a call (tests/bench/bench_hist.c). Treat every
 * field as private; use the functions.
 */
struct hitel_hist {
	unsigned int g, m, nb;
	/* Set once by the first atomic record: count must then be derived from
	 * the buckets, because atomic writers skip it (one locked add fewer). */
	int atomic_used;
	/* Non-zero for a compact histogram: b[] then holds nchunk chunk bitmaps,
	 * nchunk chunk keys and the non-zero counts (hist.c), not nb counts. */
	int compact;
	unsigned int nchunk;
	uint64_t count, sum, min, max, overflow;
	uint64_t b[];
};

/* Userspace may use lzcnt/bsr; hist_bucket.h must not (BPF). A unit test
 * checks that both agree on every edge value. */
static inline unsigned int hitel_hist_index_inline(const struct hitel_hist *h, uint64_t v)
{
	unsigned int p, i;

	if (v < (2ULL << h->g))
		return (unsigned int)v;
	p = 63U - (unsigned int)__builtin_clzll(v);
	i = ((p - h->g + 1) << h->g) + (unsigned int)((v - (1ULL << p)) >> (p - h->g));
	return i < h->nb ? i : h->nb - 1;
}

/*
 * Record n copies of v. Single writer; h must be dense. On a compact
 * histogram this would write outside it: the API hands compact histograms
 * out as const (snapshot points) or from hitel_hist_compact(), and this hot
 * path does not check, so as not to cost every record a branch. Code built
 * with HITEL_HIST_CHECKED defined turns it into a no-op on a compact one
 * (the unit tests do).
 */
static inline void hitel_hist_record_n(struct hitel_hist *h, uint64_t v, uint64_t n)
{
	unsigned int i = hitel_hist_index_inline(h, v);

#ifdef HITEL_HIST_CHECKED
	if (h->compact)
		return;
#endif

	if (h->m < 64 && v >> h->m)
		h->overflow += n;
	h->b[i] += n;
	h->count += n;
	h->sum += v * n;
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

/* Record one value. Single writer; h must be dense (see above). */
static inline void hitel_hist_record(struct hitel_hist *h, uint64_t v)
{
	hitel_hist_record_n(h, v, 1);
}

/* Record one value; safe from many threads at once (relaxed atomics: one
 * locked add on the bucket, one on the sum; min/max only CAS when they
 * move). Shared histograms contend on the sum's cache line: with several hot
 * writers, per-thread histograms merged on read are much cheaper (bench).
 * A no-op on a compact histogram. */
void hitel_hist_record_atomic(struct hitel_hist *h, uint64_t v);

/* Replace the contents with cumulative bucket counts from elsewhere (e.g. a
 * kernel map summed over CPUs). counts has hitel_hist_buckets(h) entries; sum
 * is the exact sum of recorded values. min/max are recomputed from the bucket
 * bounds unless the caller knows them (pass 0, UINT64_MAX for unknown).
 * Returns 0 or -EINVAL (also when h is compact). */
int hitel_hist_load(struct hitel_hist *h, const uint64_t *counts, size_t n, uint64_t sum,
		    uint64_t min, uint64_t max);

/* Copy src (dense or compact) into dst (same shape, dense). Uses atomic
 * loads, so it may run while other threads call
 * hitel_hist_record_atomic(src). Returns 0 or -EINVAL (also when dst is
 * compact). */
int hitel_hist_snapshot(const struct hitel_hist *src, struct hitel_hist *dst);

/*
 * out = newer - older (same shape; out may alias neither). older and newer
 * may each be dense or compact; out must be dense (hitel_hist_delta_new
 * makes a compact one). The window's min/max are not recoverable exactly
 * from two cumulative states: they are the bounds of the lowest/highest
 * non-empty delta bucket, tightened by the cumulative min/max of newer (so
 * they are within 2^-g of the truth). Returns 0, -EINVAL on shape mismatch
 * or a compact out, -ERANGE if older is not a prefix of newer (some bucket
 * went down: the histogram was reset), in which case out holds newer.
 */
int hitel_hist_delta(const struct hitel_hist *older, const struct hitel_hist *newer,
		     struct hitel_hist *out);
/*
 * *out = newer - older as a new compact histogram (contents as
 * hitel_hist_delta would leave in a dense out; inputs dense or compact).
 * Returns 0 with *out set; -ERANGE with *out a compact copy of newer (a
 * reset, as above); -EINVAL on shape mismatch and -ENOMEM, with *out NULL.
 * The caller frees *out with hitel_hist_free().
 */
int hitel_hist_delta_new(const struct hitel_hist *older, const struct hitel_hist *newer,
			 struct hitel_hist **out);

/* dst += src. Same max power; src's grouping power must be >= dst's (finer
 * data merges exactly into coarser buckets). src may be compact; dst must be
 * dense. Returns 0 or -EINVAL. */
int hitel_hist_merge(struct hitel_hist *dst, const struct hitel_hist *src);

/* Exact downsample to grouping power g2 < g (every fine bucket lies inside
 * one coarse bucket). h may be compact; the result is always a new dense
 * histogram (small: few buckets at a low g). NULL + errno on error. */
struct hitel_hist *hitel_hist_downsample(const struct hitel_hist *h, unsigned int g2);

/* Clear to empty (for reuse of scratch histograms, never on live series).
 * A no-op on a compact histogram. */
void hitel_hist_clear(struct hitel_hist *h);

uint64_t hitel_hist_count(const struct hitel_hist *h);
uint64_t hitel_hist_sum(const struct hitel_hist *h);
/* Observed min and max; 0 when empty. */
uint64_t hitel_hist_min(const struct hitel_hist *h);
uint64_t hitel_hist_max(const struct hitel_hist *h);
/* Values recorded at or above 2^m (clamped into the top bucket). */
uint64_t hitel_hist_overflow(const struct hitel_hist *h);
/* Count in bucket i (0 if out of range). */
uint64_t hitel_hist_bucket_count(const struct hitel_hist *h, unsigned int i);

/*
 * Quantile q in [0, 1]: the rank r = max(1, ceil(q * N)); the answer is the
 * inclusive upper bound of the smallest bucket whose cumulative count reaches
 * r, clamped to [min, max]. So it never understates (good for latency SLOs)
 * and overstates by at most 2^-g relative; q = 0 gives min, q = 1 gives max.
 * Returns 0 on an empty histogram.
 */
uint64_t hitel_hist_quantile(const struct hitel_hist *h, double q);
/* Several quantiles in one pass; qs ascending. out[i] as above. */
void hitel_hist_quantiles(const struct hitel_hist *h, const double *qs, size_t n,
			  uint64_t *out);

/* Iteration over non-empty buckets: start with *cursor = 0; returns 1 and
 * fills the bucket (inclusive bounds, count) while there is one, then 0. */
struct hitel_hist_bucket {
	unsigned int index;
	uint64_t lower, upper, count;
};
int hitel_hist_next(const struct hitel_hist *h, unsigned int *cursor,
		    struct hitel_hist_bucket *b);

#endif /* HITEL_HIST_H */
