/* SPDX-License-Identifier: MIT */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Compact form. Buckets are taken in chunks of 64 (bucket i is bit i % 64 of
 * chunk i / 64); only chunks with a non-empty bucket are stored, in index
 * order. b[] holds three arrays:
 *   bits[nchunk]   which buckets of the chunk are non-empty
 *   keys[nchunk]   chunk number << 32 | position of its first count
 *   counts[nnz]    the non-zero counts, in bucket order
 * A lookup is a binary search over keys and a popcount; iteration walks the
 * bits. 64 buckets per chunk rather than one power-of-two group (2^g): the
 * bitmap then is one word for every g, and a chunk costs 16 bytes whether
 * its buckets are dense (a busy latency histogram) or sparse (a rate window
 * with a few samples), where a stored group would cost 8 bytes per bucket
 * of it and a sorted (index, count) array 16 per non-empty bucket.
 */
#define CHUNK_SHIFT 6u
#define CHUNK_MASK 63u
#define MAX_BUCKETS                                                                                \
	((2u << HITEL_HIST_MAX_GROUPING) +                                                         \
	 (HITEL_HIST_MAX_POWER - HITEL_HIST_MAX_GROUPING - 1u) * (1u << HITEL_HIST_MAX_GROUPING))
#define MAX_CHUNKS ((MAX_BUCKETS + CHUNK_MASK) >> CHUNK_SHIFT)

static unsigned int chunks_of(unsigned int nb)
{
	return (nb + CHUNK_MASK) >> CHUNK_SHIFT;
}

static uint64_t chunk_key(unsigned int chunk, size_t off)
{
	return (uint64_t)chunk << 32 | (uint64_t)off;
}

static unsigned int key_chunk(uint64_t key)
{
	return (unsigned int)(key >> 32);
}

static size_t key_off(uint64_t key)
{
	return (size_t)(uint32_t)key;
}

static const uint64_t *c_bits(const struct hitel_hist *h)
{
	return h->b;
}

static const uint64_t *c_keys(const struct hitel_hist *h)
{
	return h->b + h->nchunk;
}

static const uint64_t *c_counts(const struct hitel_hist *h)
{
	return h->b + 2 * (size_t)h->nchunk;
}

static size_t c_nnz(const struct hitel_hist *h)
{
	if (!h->nchunk)
		return 0;
	return key_off(c_keys(h)[h->nchunk - 1]) +
	       (size_t)__builtin_popcountll(c_bits(h)[h->nchunk - 1]);
}

static size_t compact_size(unsigned int nchunk, size_t nnz)
{
	return sizeof(struct hitel_hist) + (2 * (size_t)nchunk + nnz) * sizeof(uint64_t);
}

/* Position of the first stored chunk numbered >= chunk (nchunk if none). */
static unsigned int c_find(const struct hitel_hist *h, unsigned int chunk)
{
	const uint64_t *keys = c_keys(h);
	unsigned int lo = 0, hi = h->nchunk, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (key_chunk(keys[mid]) < chunk)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Count of bucket bit of stored chunk k, which must be set. */
static uint64_t c_count_at(const struct hitel_hist *h, unsigned int k, unsigned int bit)
{
	uint64_t below = c_bits(h)[k] & ((1ULL << bit) - 1);

	return c_counts(h)[key_off(c_keys(h)[k]) + (size_t)__builtin_popcountll(below)];
}

static uint64_t c_bucket(const struct hitel_hist *h, unsigned int i)
{
	unsigned int k = c_find(h, i >> CHUNK_SHIFT), bit = i & CHUNK_MASK;

	if (k == h->nchunk || key_chunk(c_keys(h)[k]) != i >> CHUNK_SHIFT ||
	    !(c_bits(h)[k] >> bit & 1))
		return 0;
	return c_count_at(h, k, bit);
}

/* Walks the non-empty buckets of either form in index order. */
struct nz {
	const struct hitel_hist *h;
	unsigned int i;	   /* dense: next bucket; compact: next stored chunk */
	unsigned int base; /* compact: first bucket of the current chunk */
	uint64_t w;	   /* compact: buckets of the current chunk not yet seen */
	size_t pos;	   /* compact: next count */
};

static void nz_init(struct nz *it, const struct hitel_hist *h)
{
	memset(it, 0, sizeof(*it));
	it->h = h;
}

static int nz_next(struct nz *it, unsigned int *idx, uint64_t *count)
{
	const struct hitel_hist *h = it->h;

	if (!h->compact) {
		for (; it->i < h->nb; it->i++) {
			uint64_t c = __atomic_load_n(&h->b[it->i], __ATOMIC_RELAXED);

			if (c) {
				*idx = it->i++;
				*count = c;
				return 1;
			}
		}
		return 0;
	}
	while (!it->w) {
		if (it->i >= h->nchunk)
			return 0;
		it->w = c_bits(h)[it->i];
		it->base = key_chunk(c_keys(h)[it->i]) << CHUNK_SHIFT;
		it->pos = key_off(c_keys(h)[it->i]);
		it->i++;
	}
	*idx = it->base + (unsigned int)__builtin_ctzll(it->w);
	it->w &= it->w - 1;
	*count = c_counts(h)[it->pos++];
	return 1;
}

size_t hitel_hist_bytes(unsigned int g, unsigned int m)
{
	if (g > HITEL_HIST_MAX_GROUPING || m > HITEL_HIST_MAX_POWER || m <= g) {
		errno = EINVAL;
		return 0;
	}
	return sizeof(struct hitel_hist) + (size_t)hitel_bucket_count(g, m) * sizeof(uint64_t);
}

struct hitel_hist *hitel_hist_init(void *mem, unsigned int g, unsigned int m)
{
	struct hitel_hist *h = mem;

	h->g = g;
	h->m = m;
	h->nb = hitel_bucket_count(g, m);
	h->min = UINT64_MAX;
	return h;
}

struct hitel_hist *hitel_hist_new(unsigned int g, unsigned int m)
{
	size_t size = hitel_hist_bytes(g, m);
	void *mem;

	if (!size)
		return NULL;
	mem = calloc(1, size);
	if (!mem) {
		errno = ENOMEM;
		return NULL;
	}
	return hitel_hist_init(mem, g, m);
}

void hitel_hist_free(struct hitel_hist *h)
{
	free(h);
}

static size_t hist_size(const struct hitel_hist *h)
{
	if (h->compact)
		return compact_size(h->nchunk, c_nnz(h));
	return sizeof(*h) + (size_t)h->nb * sizeof(uint64_t);
}

size_t hitel_hist_size(const struct hitel_hist *h)
{
	return hist_size(h);
}

int hitel_hist_is_compact(const struct hitel_hist *h)
{
	return h->compact ? 1 : 0;
}

struct hitel_hist *hitel_hist_dup(const struct hitel_hist *h)
{
	struct hitel_hist *d;

	if (h->compact) {
		d = malloc(hist_size(h));
		if (!d) {
			errno = ENOMEM;
			return NULL;
		}
		memcpy(d, h, hist_size(h));
		return d;
	}
	d = hitel_hist_new(h->g, h->m);
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

/*
 * Finding the non-empty buckets is the cost of a compact copy, and it runs
 * under the registry lock: 64 words at a time with SSE2 compares (every
 * x86-64 has them; 1.3x faster than the plain loop, and AVX2 measured no
 * better), a plain loop elsewhere. Each also sums the words (compact_scan).
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include <emmintrin.h>
#define HAVE_MASK64_SSE2 1

/* SSE2 has no 64-bit compare: a word is zero when both its halves are. */
static uint64_t mask64_sse2(const uint64_t *p, uint64_t *total)
{
	__m128i zero = _mm_setzero_si128(), acc = zero, v, z;
	uint64_t mask = 0, s[2];
	unsigned int j, m;

	for (j = 0; j < 64; j += 2) {
		v = _mm_loadu_si128((const __m128i *)(p + j));
		z = _mm_cmpeq_epi32(v, zero);
		z = _mm_and_si128(z, _mm_shuffle_epi32(z, _MM_SHUFFLE(2, 3, 0, 1)));
		m = (unsigned int)_mm_movemask_pd(_mm_castsi128_pd(z));
		mask |= (uint64_t)(~m & 3u) << j;
		acc = _mm_add_epi64(acc, v);
	}
	_mm_storeu_si128((__m128i *)s, acc);
	*total += s[0] + s[1];
	return mask;
}
#endif

static uint64_t mask_plain(const uint64_t *p, unsigned int len, uint64_t *total)
{
	uint64_t mask = 0, sum = 0;
	unsigned int j;

	for (j = 0; j < len; j++) {
		mask |= (uint64_t)(p[j] != 0) << j;
		sum += p[j];
	}
	*total += sum;
	return mask;
}

/* With atomic writers: relaxed loads, one at a time. */
static uint64_t mask_atomic(const uint64_t *p, unsigned int len)
{
	uint64_t mask = 0;
	unsigned int j;

	for (j = 0; j < len; j++)
		if (__atomic_load_n(&p[j], __ATOMIC_RELAXED))
			mask |= 1ULL << j;
	return mask;
}

/* Pass 1 of a dense-to-compact copy: which buckets are non-empty. */
struct scan {
	uint64_t bits[MAX_CHUNKS]; /* per chunk, valid in [lo, hi) */
	unsigned int lo, hi, n;	   /* chunk range scanned; non-empty chunks */
	size_t nnz;
	int atomic;
};

/*
 * A histogram that no atomic writer touched has exact min and max (every
 * writer keeps them), so only the chunks between their buckets are scanned:
 * a rate histogram occupies a fraction of its 64 powers of two. If those
 * chunks do not hold the whole count, the extremes were not exact (a
 * caller's min/max given to load): scan them all. With atomic writers every
 * chunk is scanned, and a bucket found non-empty stays so (they only add),
 * so what pass 2 copies fits what this pass sized.
 */
static void compact_scan(const struct hitel_hist *h, struct scan *sc)
{
	unsigned int nc = chunks_of(h->nb), c, len;
	uint64_t total;

	sc->atomic = __atomic_load_n(&h->atomic_used, __ATOMIC_RELAXED);
	sc->lo = 0;
	sc->hi = nc;
	if (!sc->atomic && !h->count) {
		sc->hi = 0;
	} else if (!sc->atomic && h->min <= h->max) {
		sc->lo = hitel_hist_index_inline(h, h->min) >> CHUNK_SHIFT;
		sc->hi = (hitel_hist_index_inline(h, h->max) >> CHUNK_SHIFT) + 1;
	}
	for (;;) {
		sc->n = 0;
		sc->nnz = 0;
		total = 0;
		for (c = sc->lo; c < sc->hi; c++) {
			const uint64_t *p = h->b + ((size_t)c << CHUNK_SHIFT);
			uint64_t m;

			len = h->nb - (c << CHUNK_SHIFT);
			if (len > CHUNK_MASK + 1)
				len = CHUNK_MASK + 1;
			if (sc->atomic)
				m = mask_atomic(p, len);
#ifdef HAVE_MASK64_SSE2
			else if (len == CHUNK_MASK + 1)
				m = mask64_sse2(p, &total);
#endif
			else
				m = mask_plain(p, len, &total);
			sc->bits[c] = m;
			sc->n += m != 0;
			sc->nnz += (size_t)__builtin_popcountll(m);
		}
		if (sc->atomic || total == h->count || (sc->lo == 0 && sc->hi == nc))
			return;
		sc->lo = 0;
		sc->hi = nc;
	}
}

/* Pass 2: write the compact copy into d (compact_size(sc->n, sc->nnz)). */
static void compact_emit(const struct hitel_hist *h, const struct scan *sc, struct hitel_hist *d)
{
	uint64_t *keys = d->b + sc->n, *counts = d->b + 2 * (size_t)sc->n, count = 0, v, w;
	unsigned int c, k = 0, j;
	size_t off = 0;

	d->g = h->g;
	d->m = h->m;
	d->nb = h->nb;
	d->atomic_used = 0;
	d->compact = 1;
	d->nchunk = sc->n;
	for (c = sc->lo; c < sc->hi; c++) {
		const uint64_t *p = h->b + ((size_t)c << CHUNK_SHIFT);

		if (!sc->bits[c])
			continue;
		d->b[k] = sc->bits[c];
		keys[k++] = chunk_key(c, off);
		for (w = sc->bits[c]; w; w &= w - 1) {
			j = (unsigned int)__builtin_ctzll(w);
			v = sc->atomic ? __atomic_load_n(&p[j], __ATOMIC_RELAXED) : p[j];
			counts[off++] = v;
			count += v;
		}
	}
	/* Derived from the buckets copied, as hitel_hist_snapshot does. */
	d->count = count;
	d->sum = __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
	d->min = __atomic_load_n(&h->min, __ATOMIC_RELAXED);
	d->max = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
	d->overflow = __atomic_load_n(&h->overflow, __ATOMIC_RELAXED);
}

static struct hitel_hist *compact_dense(const struct hitel_hist *h)
{
	struct scan sc;
	struct hitel_hist *d;

	compact_scan(h, &sc);
	d = malloc(compact_size(sc.n, sc.nnz));
	if (!d) {
		errno = ENOMEM;
		return NULL;
	}
	compact_emit(h, &sc, d);
	return d;
}

struct hitel_hist *hitel_hist_compact(const struct hitel_hist *h)
{
	return h->compact ? hitel_hist_dup(h) : compact_dense(h);
}

size_t hitel_hist_compact_to(const struct hitel_hist *h, void *buf, size_t len)
{
	struct scan sc;
	size_t need;

	if (h->compact) {
		need = hist_size(h);
		if (need <= len)
			memcpy(buf, h, need);
		return need;
	}
	compact_scan(h, &sc);
	need = compact_size(sc.n, sc.nnz);
	if (need <= len)
		compact_emit(h, &sc, buf);
	return need;
}

/* The window's extremes (see hitel_hist_delta): bounds of its lowest and
 * highest non-empty bucket, tightened by newer's cumulative extremes. */
static void window_extremes(struct hitel_hist *out, unsigned int first, unsigned int last,
			    const struct hitel_hist *newer)
{
	uint64_t lo, hi;

	if (!out->count) {
		out->min = UINT64_MAX;
		out->max = 0;
		return;
	}
	bounds(out->g, first, &out->min, &hi);
	bounds(out->g, last, &lo, &out->max);
	if (newer->min > out->min && newer->min <= out->max)
		out->min = newer->min;
	if (newer->max < out->max && newer->max >= out->min)
		out->max = newer->max;
}

/*
 * newer - older, both compact, into a new compact histogram. The result has
 * at most newer's chunks and counts, so it is built in one pass into that
 * much space, then packed and shrunk. Returns NULL with errno ERANGE when a
 * bucket went down, ENOMEM.
 */
static struct hitel_hist *delta_compact(const struct hitel_hist *older,
					const struct hitel_hist *newer)
{
	const uint64_t *nbits = c_bits(newer), *nkeys = c_keys(newer), *ncounts = c_counts(newer);
	const uint64_t *obits = c_bits(older), *okeys = c_keys(older), *ocounts = c_counts(older);
	unsigned int cap = newer->nchunk, n = 0, j = 0, k, chunk, bit, first = 0, last = 0;
	size_t ni = 0, oi = 0, off = 0;
	uint64_t *bits, *keys, *counts, count = 0, w, ow, mask, d;
	struct hitel_hist *out, *shrunk;

	out = malloc(compact_size(cap, c_nnz(newer)));
	if (!out) {
		errno = ENOMEM;
		return NULL;
	}
	*out = *newer;
	bits = out->b;
	keys = out->b + cap;
	counts = out->b + 2 * (size_t)cap;
	for (k = 0; k < newer->nchunk; k++) {
		chunk = key_chunk(nkeys[k]);
		ni = key_off(nkeys[k]);
		ow = 0;
		/* An older chunk that newer lacks, or an older bucket in a
		 * chunk that newer has empty: that bucket went down. */
		if (j < older->nchunk && key_chunk(okeys[j]) < chunk)
			goto reset;
		if (j < older->nchunk && key_chunk(okeys[j]) == chunk) {
			ow = obits[j];
			oi = key_off(okeys[j]);
			j++;
			if (ow & ~nbits[k])
				goto reset;
		}
		mask = 0;
		for (w = nbits[k]; w; w &= w - 1) {
			bit = (unsigned int)__builtin_ctzll(w);
			d = ncounts[ni++];
			if (ow >> bit & 1) {
				if (d < ocounts[oi])
					goto reset;
				d -= ocounts[oi++];
			}
			if (!d)
				continue;
			mask |= 1ULL << bit;
			counts[off++] = d;
			count += d;
		}
		if (!mask)
			continue;
		if (!n)
			first = chunk << CHUNK_SHIFT | (unsigned int)__builtin_ctzll(mask);
		last = chunk << CHUNK_SHIFT | (63u - (unsigned int)__builtin_clzll(mask));
		bits[n] = mask;
		keys[n++] = chunk_key(chunk, off - (size_t)__builtin_popcountll(mask));
	}
	if (j < older->nchunk)
		goto reset;
	/* Pack: keys and counts were laid out for cap chunks. */
	memmove(out->b + n, keys, n * sizeof(uint64_t));
	memmove(out->b + 2 * (size_t)n, counts, off * sizeof(uint64_t));
	out->nchunk = n;
	out->count = count;
	out->sum = newer->sum - older->sum;
	out->overflow = newer->overflow - older->overflow;
	window_extremes(out, first, last, newer);
	shrunk = realloc(out, compact_size(n, off));
	return shrunk ? shrunk : out;

reset:
	free(out);
	errno = ERANGE;
	return NULL;
}

int hitel_hist_delta_new(const struct hitel_hist *older, const struct hitel_hist *newer,
			 struct hitel_hist **out)
{
	struct hitel_hist *o = NULL, *nw = NULL;
	int err = 0;

	*out = NULL;
	if (older->g != newer->g || older->m != newer->m)
		return -EINVAL;
	if (!older->compact) {
		o = compact_dense(older);
		if (!o) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	if (!newer->compact) {
		nw = compact_dense(newer);
		if (!nw) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	*out = delta_compact(o ? o : older, nw ? nw : newer);
	if (!*out && errno == ERANGE) {
		/* A reset: the window holds newer, as hitel_hist_delta leaves it. */
		*out = hitel_hist_compact(nw ? nw : newer);
		err = *out ? -ERANGE : -ENOMEM;
	} else if (!*out) {
		err = -ENOMEM;
	}

cleanup:
	hitel_hist_free(o);
	hitel_hist_free(nw);
	return err;
}

void hitel_hist_record_atomic(struct hitel_hist *h, uint64_t v)
{
	unsigned int i = hitel_hist_index_inline(h, v);
	uint64_t cur;

	if (h->compact)
		return;
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

	if (h->compact || n != h->nb)
		return -EINVAL;
	/* Only changed buckets are written: a kernel histogram loaded every
	 * read is mostly zeros, and writing them would make every page of
	 * h resident (60 KB at g = 7) where reading leaves untouched pages
	 * unallocated. */
	for (i = 0; i < h->nb; i++) {
		if (h->b[i] != counts[i])
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

	if (src->g != dst->g || src->m != dst->m || dst->compact)
		return -EINVAL;
	if (src->compact) {
		struct nz it;
		uint64_t n;

		memset(dst->b, 0, (size_t)dst->nb * sizeof(uint64_t));
		nz_init(&it, src);
		while (nz_next(&it, &i, &n))
			dst->b[i] = n;
		dst->count = src->count;
		dst->sum = src->sum;
		dst->min = src->min;
		dst->max = src->max;
		dst->overflow = src->overflow;
		dst->atomic_used = 0;
		return 0;
	}
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
	    out->m != newer->m || out->compact)
		return -EINVAL;
	if (older->compact || newer->compact) {
		struct nz it;
		uint64_t n;

		memset(out->b, 0, (size_t)out->nb * sizeof(uint64_t));
		nz_init(&it, newer);
		while (nz_next(&it, &i, &n)) {
			out->b[i] = n;
			c += n;
		}
		nz_init(&it, older);
		while (nz_next(&it, &i, &n)) {
			if (out->b[i] < n) {
				hitel_hist_snapshot(newer, out);
				return -ERANGE;
			}
			out->b[i] -= n;
			c -= n;
		}
	} else {
		for (i = 0; i < newer->nb; i++) {
			if (newer->b[i] < older->b[i]) {
				hitel_hist_snapshot(newer, out);
				return -ERANGE;
			}
			out->b[i] = newer->b[i] - older->b[i];
			c += out->b[i];
		}
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
	uint64_t lo, hi, n;
	unsigned int i, j;

	if (src->compact) {
		struct nz it;

		nz_init(&it, src);
		while (nz_next(&it, &i, &n)) {
			if (src->g == dst->g) {
				dst->b[i] += n;
				continue;
			}
			bounds(src->g, i, &lo, &hi);
			j = hitel_bucket_index(lo, dst->g);
			dst->b[j < dst->nb ? j : dst->nb - 1] += n;
		}
		return;
	}
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

	if (dst->compact || src->m != dst->m || src->g < dst->g)
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
	if (h->compact)
		return;
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
	if (i >= h->nb)
		return 0;
	if (h->compact)
		return c_bucket(h, i);
	return __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
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

/* The answers that need no scan: an empty histogram, q <= 0 (or NaN) and
 * q >= 1. Returns 1 with *out set, or 0 with the rank to look for. */
static int quantile_direct(const struct hitel_hist *h, double q, uint64_t total, uint64_t *out,
			   uint64_t *rank)
{
	if (!total) {
		*out = 0;
		return 1;
	}
	if (!(q > 0.0)) { /* also catches NaN */
		*out = hitel_hist_min(h);
		return 1;
	}
	if (q >= 1.0) {
		*out = h->max;
		return 1;
	}
	*rank = (uint64_t)ceil(q * (double)total);
	if (*rank < 1)
		*rank = 1;
	if (*rank > total)
		*rank = total;
	return 0;
}

/* Bucket index of the pos-th stored count of a compact histogram. */
static unsigned int c_index_of(const struct hitel_hist *h, size_t pos)
{
	const uint64_t *keys = c_keys(h);
	unsigned int lo = 0, hi = h->nchunk, mid, k;
	uint64_t w;
	size_t r;

	/* The last chunk whose first count is at or before pos. */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (key_off(keys[mid]) <= pos)
			lo = mid;
		else
			hi = mid;
	}
	k = lo;
	w = c_bits(h)[k];
	for (r = pos - key_off(keys[k]); r; r--)
		w &= w - 1;
	return key_chunk(keys[k]) << CHUNK_SHIFT | (unsigned int)__builtin_ctzll(w);
}

/* The compact form sums its stored counts, a plain array like the dense
 * buckets minus the empty ones, and stops at the same bucket as the dense
 * scan: the first whose cumulative count reaches the rank, never an empty
 * one. Only that bucket's index is looked up. */
static void quantiles_compact(const struct hitel_hist *h, const double *qs, size_t n, uint64_t *out)
{
	const uint64_t *counts = c_counts(h);
	size_t nnz = c_nnz(h), pos = 0, k;
	uint64_t cum = 0, rank = 0;

	for (k = 0; k < n; k++) {
		if (quantile_direct(h, qs[k], h->count, &out[k], &rank))
			continue;
		while (pos < nnz && cum + counts[pos] < rank)
			cum += counts[pos++];
		out[k] = pos < nnz ? clamp_answer(h, c_index_of(h, pos)) : h->max;
	}
}

void hitel_hist_quantiles(const struct hitel_hist *h, const double *qs, size_t n,
			  uint64_t *out)
{
	uint64_t total = hitel_hist_count(h), cum = 0, rank = 0;
	unsigned int i = 0;
	size_t k;

	if (h->compact) {
		quantiles_compact(h, qs, n, out);
		return;
	}
	for (k = 0; k < n; k++) {
		if (quantile_direct(h, qs[k], total, &out[k], &rank))
			continue;
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

static int next_compact(const struct hitel_hist *h, unsigned int *cursor,
			struct hitel_hist_bucket *b)
{
	unsigned int i = *cursor, k, chunk, bit;
	uint64_t w;

	k = i < h->nb ? c_find(h, i >> CHUNK_SHIFT) : h->nchunk;
	for (; k < h->nchunk; k++) {
		chunk = key_chunk(c_keys(h)[k]);
		w = c_bits(h)[k];
		if (chunk == i >> CHUNK_SHIFT)
			w &= ~0ULL << (i & CHUNK_MASK);
		if (!w)
			continue;
		bit = (unsigned int)__builtin_ctzll(w);
		b->index = chunk << CHUNK_SHIFT | bit;
		b->count = c_count_at(h, k, bit);
		bounds(h->g, b->index, &b->lower, &b->upper);
		*cursor = b->index + 1;
		return 1;
	}
	*cursor = h->nb;
	return 0;
}

int hitel_hist_next(const struct hitel_hist *h, unsigned int *cursor,
		    struct hitel_hist_bucket *b)
{
	unsigned int i;

	if (h->compact)
		return next_compact(h, cursor, b);
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
