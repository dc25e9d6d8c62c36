/* SPDX-License-Identifier: MIT */
/*
 * The log-linear bucket function: the contract shared by userspace (core/)
 * and the BPF programs (bpf/). Both sides include this header, so a value
 * recorded in the kernel and one recorded by the engine land in the same
 * bucket and histograms merge without loss.
 *
 * It uses only `unsigned long long` (64 bits on every Linux ABI and in BPF),
 * no loops and no __builtin_clzll: clang 14 crashes lowering clz for
 * -target bpf, and the verifier wants straight-line code.
 *
 * With grouping power g and max power m (values must be < 2^m):
 *   index(v) = v                                          if v < 2^(g+1)
 *   index(v) = (p - g + 1) * 2^g + ((v - 2^p) >> (p - g)) otherwise,
 *              where p = floor(log2 v)
 * Bucket count: 2^(g+1) + (m - g - 1) * 2^g. Relative error <= 2^-g.
 */
#ifndef HITEL_HIST_BUCKET_H
#define HITEL_HIST_BUCKET_H

#define HITEL_HIST_MAX_GROUPING 10
#define HITEL_HIST_MAX_POWER 64

/* floor(log2 v) for v > 0, by a binary shift cascade (6 compares). */
static inline __attribute__((always_inline)) unsigned int
hitel_bucket_log2(unsigned long long v)
{
	unsigned int p = 0;

	if (v >= (1ULL << 32)) {
		v >>= 32;
		p += 32;
	}
	if (v >= (1ULL << 16)) {
		v >>= 16;
		p += 16;
	}
	if (v >= (1ULL << 8)) {
		v >>= 8;
		p += 8;
	}
	if (v >= (1ULL << 4)) {
		v >>= 4;
		p += 4;
	}
	if (v >= (1ULL << 2)) {
		v >>= 2;
		p += 2;
	}
	if (v >= (1ULL << 1))
		p += 1;
	return p;
}

/* Number of buckets for grouping power g and max power m (g < m <= 64). */
static inline __attribute__((always_inline)) unsigned int
hitel_bucket_count(unsigned int g, unsigned int m)
{
	return (2U << g) + (m - g - 1) * (1U << g);
}

/*
 * Bucket index of v. The caller clamps the result to bucket_count - 1 when
 * m < 64 and v may reach 2^m (userspace does; BPF programs are built with
 * m = 64 or clamp themselves). g must be <= HITEL_HIST_MAX_GROUPING.
 */
static inline __attribute__((always_inline)) unsigned int
hitel_bucket_index(unsigned long long v, unsigned int g)
{
	unsigned int p;

	if (v < (2ULL << g))
		return (unsigned int)v;
	p = hitel_bucket_log2(v);
	return ((p - g + 1) << g) + (unsigned int)((v - (1ULL << p)) >> (p - g));
}

#endif /* HITEL_HIST_BUCKET_H */
