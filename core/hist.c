/* SPDX-License-Identifier: MIT */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct hitel_hist *hitel_hist_new(unsigned int g, unsigned int m)
{
	struct hitel_hist *h;
	unsigned int nb;

	if (g > HITEL_HIST_MAX_GROUPING || m > HITEL_HIST_MAX_POWER || m <= g) {
		errno = EINVAL;
		return NULL;
	}
	nb = hitel_bucket_count(g, m);
	h = calloc(1, sizeof(*h) + (size_t)nb * sizeof(uint64_t));
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	h->g = g;
	h->m = m;
	h->nb = nb;
	h->min = UINT64_MAX;
	return h;
}

void hitel_hist_free(struct hitel_hist *h)
{
	free(h);
}

static size_t hist_size(const struct hitel_hist *h)
{
	return sizeof(*h) + (size_t)h->nb * sizeof(uint64_t);
}

struct hitel_hist *hitel_hist_dup(const struct hitel_hist *h)
{
	struct hitel_hist *d = hitel_hist_new(h->g, h->m);

	if (d && hitel_hist_snapshot(h, d) < 0) {
		hitel_hist_free(d);
		errno = EINVAL;
		return NULL;
	}
	return d;
}

unsigned int hitel_hist_grouping_power(const struct hitel_hist *h)
{
	return h->g;
}

unsigned int hitel_hist_max_power(const struct hitel_hist *h)
{
	return h->m;
}

unsigned int hitel_hist_buckets(const struct hitel_hist *h)
{
	return h->nb;
}

unsigned int hitel_hist_index(const struct hitel_hist *h, uint64_t v)
{
	return hitel_hist_index_inline(h, v);
}

static void bounds(unsigned int g, unsigned int i, uint64_t *lower, uint64_t *upper)
{
	unsigned int p;
	uint64_t off;

	if (i < (2U << g)) {
		*lower = *upper = i;
		return;
	}
	p = (i >> g) + g - 1;
	off = i & ((1U << g) - 1);
	*lower = (1ULL << p) + (off << (p - g));
	*upper = *lower + ((1ULL << (p - g)) - 1);
}

int hitel_hist_bounds(const struct hitel_hist *h, unsigned int i, uint64_t *lower,
		      uint64_t *upper)
{
	if (i >= h->nb)
		return -ERANGE;
	bounds(h->g, i, lower, upper);
	return 0;
}

void hitel_hist_record_atomic(struct hitel_hist *h, uint64_t v)
{
	unsigned int i = hitel_hist_index_inline(h, v);
	uint64_t cur;

	if (!__atomic_load_n(&h->atomic_used, __ATOMIC_RELAXED))
		__atomic_store_n(&h->atomic_used, 1, __ATOMIC_RELAXED);
	if (h->m < 64 && v >> h->m)
		__atomic_fetch_add(&h->overflow, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->b[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum, v, __ATOMIC_RELAXED);
	/* Extremes change rarely once warm: a plain load usually settles it
	 * and the CAS loop runs only on a new min or max. */
	cur = __atomic_load_n(&h->min, __ATOMIC_RELAXED);
	while (v < cur &&
	       !__atomic_compare_exchange_n(&h->min, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	cur = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
	while (v > cur &&
	       !__atomic_compare_exchange_n(&h->max, &cur, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

static void recompute_extremes(struct hitel_hist *h)
{
	uint64_t lo, hi;
	unsigned int i;

	h->min = UINT64_MAX;
	h->max = 0;
	for (i = 0; i < h->nb; i++) {
		if (h->b[i]) {
			bounds(h->g, i, &lo, &hi);
			h->min = lo;
			break;
		}
	}
	for (i = h->nb; i-- > 0;) {
		if (h->b[i]) {
			bounds(h->g, i, &lo, &hi);
			h->max = hi;
			break;
		}
	}
}

int hitel_hist_load(struct hitel_hist *h, const uint64_t *counts, size_t n, uint64_t sum,
		    uint64_t min, uint64_t max)
{
	uint64_t c = 0;
	unsigned int i;

	if (n != h->nb)
		return -EINVAL;
	for (i = 0; i < h->nb; i++) {
		h->b[i] = counts[i];
		c += counts[i];
	}
	h->count = c;
	h->sum = sum;
	h->overflow = 0;
	h->atomic_used = 0;
	recompute_extremes(h);
	if (c && min != 0 && min > h->min)
		h->min = min;
	if (c && max != UINT64_MAX && max < h->max)
		h->max = max;
	return 0;
}

int hitel_hist_snapshot(const struct hitel_hist *src, struct hitel_hist *dst)
{
	uint64_t c = 0;
	unsigned int i;

	if (src->g != dst->g || src->m != dst->m)
		return -EINVAL;
	if (!__atomic_load_n(&src->atomic_used, __ATOMIC_RELAXED)) {
		memcpy(dst, src, hist_size(src));
		return 0;
	}
	for (i = 0; i < src->nb; i++) {
		dst->b[i] = __atomic_load_n(&src->b[i], __ATOMIC_RELAXED);
		c += dst->b[i];
	}
	dst->count = c;
	dst->sum = __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
	dst->min = __atomic_load_n(&src->min, __ATOMIC_RELAXED);
	dst->max = __atomic_load_n(&src->max, __ATOMIC_RELAXED);
	dst->overflow = __atomic_load_n(&src->overflow, __ATOMIC_RELAXED);
	dst->atomic_used = 0;
	return 0;
}

int hitel_hist_delta(const struct hitel_hist *older, const struct hitel_hist *newer,
		     struct hitel_hist *out)
{
	uint64_t c = 0;
	unsigned int i;

	if (older->g != newer->g || older->m != newer->m || out->g != newer->g ||
	    out->m != newer->m)
		return -EINVAL;
	for (i = 0; i < newer->nb; i++) {
		if (newer->b[i] < older->b[i]) {
			hitel_hist_snapshot(newer, out);
			return -ERANGE;
		}
		out->b[i] = newer->b[i] - older->b[i];
		c += out->b[i];
	}
	out->count = c;
	out->sum = newer->sum - older->sum;
	out->overflow = newer->overflow - older->overflow;
	out->atomic_used = 0;
	recompute_extremes(out);
	if (c) {
		if (newer->min > out->min && newer->min <= out->max)
			out->min = newer->min;
		if (newer->max < out->max && newer->max >= out->min)
			out->max = newer->max;
	}
	return 0;
}

/* dst += src where src may be finer: each fine bucket lies inside exactly
 * one coarse bucket, found through its lower bound. */
static void add_into(struct hitel_hist *dst, const struct hitel_hist *src)
{
	uint64_t lo, hi;
	unsigned int i, j;

	if (src->g == dst->g) {
		for (i = 0; i < src->nb; i++)
			dst->b[i] += src->b[i];
		return;
	}
	for (i = 0; i < src->nb; i++) {
		if (!src->b[i])
			continue;
		bounds(src->g, i, &lo, &hi);
		j = hitel_bucket_index(lo, dst->g);
		dst->b[j < dst->nb ? j : dst->nb - 1] += src->b[i];
	}
}

int hitel_hist_merge(struct hitel_hist *dst, const struct hitel_hist *src)
{
	uint64_t scount, dcount;

	if (src->m != dst->m || src->g < dst->g)
		return -EINVAL;
	scount = hitel_hist_count(src);
	dcount = hitel_hist_count(dst);
	add_into(dst, src);
	dst->count = dcount + scount;
	dst->atomic_used = 0;
	dst->sum += src->sum;
	dst->overflow += src->overflow;
	if (scount) {
		if (src->min < dst->min)
			dst->min = src->min;
		if (src->max > dst->max)
			dst->max = src->max;
	}
	return 0;
}

struct hitel_hist *hitel_hist_downsample(const struct hitel_hist *h, unsigned int g2)
{
	struct hitel_hist *d;

	if (g2 >= h->g) {
		errno = EINVAL;
		return NULL;
	}
	d = hitel_hist_new(g2, h->m);
	if (!d)
		return NULL;
	if (hitel_hist_merge(d, h) < 0) {
		hitel_hist_free(d);
		errno = EINVAL;
		return NULL;
	}
	return d;
}

void hitel_hist_clear(struct hitel_hist *h)
{
	memset(h->b, 0, (size_t)h->nb * sizeof(uint64_t));
	h->count = h->sum = h->max = h->overflow = 0;
	h->min = UINT64_MAX;
	h->atomic_used = 0;
}

uint64_t hitel_hist_count(const struct hitel_hist *h)
{
	uint64_t c = 0;
	unsigned int i;

	if (!__atomic_load_n(&h->atomic_used, __ATOMIC_RELAXED))
		return h->count;
	for (i = 0; i < h->nb; i++)
		c += __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
	return c;
}

uint64_t hitel_hist_sum(const struct hitel_hist *h)
{
	return __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
}

uint64_t hitel_hist_min(const struct hitel_hist *h)
{
	uint64_t v = __atomic_load_n(&h->min, __ATOMIC_RELAXED);

	return v == UINT64_MAX && !hitel_hist_count(h) ? 0 : v;
}

uint64_t hitel_hist_max(const struct hitel_hist *h)
{
	return __atomic_load_n(&h->max, __ATOMIC_RELAXED);
}

uint64_t hitel_hist_overflow(const struct hitel_hist *h)
{
	return __atomic_load_n(&h->overflow, __ATOMIC_RELAXED);
}

uint64_t hitel_hist_bucket_count(const struct hitel_hist *h, unsigned int i)
{
	return i < h->nb ? __atomic_load_n(&h->b[i], __ATOMIC_RELAXED) : 0;
}

static uint64_t clamp_answer(const struct hitel_hist *h, unsigned int i)
{
	uint64_t lo, hi;

	bounds(h->g, i, &lo, &hi);
	if (i == h->nb - 1 && h->overflow)
		hi = h->max;
	if (hi > h->max)
		hi = h->max;
	if (hi < h->min)
		hi = h->min;
	return hi;
}

void hitel_hist_quantiles(const struct hitel_hist *h, const double *qs, size_t n,
			  uint64_t *out)
{
	uint64_t total = hitel_hist_count(h), cum = 0, rank;
	unsigned int i = 0;
	size_t k;

	for (k = 0; k < n; k++) {
		double q = qs[k];

		if (!total) {
			out[k] = 0;
			continue;
		}
		if (!(q > 0.0)) { /* also catches NaN */
			out[k] = hitel_hist_min(h);
			continue;
		}
		if (q >= 1.0) {
			out[k] = h->max;
			continue;
		}
		rank = (uint64_t)ceil(q * (double)total);
		if (rank < 1)
			rank = 1;
		if (rank > total)
			rank = total;
		/* qs ascending: resume the scan where the last quantile ended. */
		while (i < h->nb && cum + h->b[i] < rank)
			cum += h->b[i++];
		out[k] = i < h->nb ? clamp_answer(h, i) : h->max;
	}
}

uint64_t hitel_hist_quantile(const struct hitel_hist *h, double q)
{
	uint64_t v;

	hitel_hist_quantiles(h, &q, 1, &v);
	return v;
}

int hitel_hist_next(const struct hitel_hist *h, unsigned int *cursor,
		    struct hitel_hist_bucket *b)
{
	unsigned int i;

	for (i = *cursor; i < h->nb; i++) {
		uint64_t c = __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);

		if (c) {
			b->index = i;
			b->count = c;
			bounds(h->g, i, &b->lower, &b->upper);
			*cursor = i + 1;
			return 1;
		}
	}
	*cursor = h->nb;
	return 0;
}
