/* SPDX-License-Identifier: MIT */
/* Tiny timing helpers shared by the benchmarks: every figure is reported
 * next to a baseline measured in the same run, because absolute timings on a
 * shared 2-core VM are noise. */
#ifndef HITEL_BENCH_H
#define HITEL_BENCH_H

#include <stdint.h>
#include <time.h>

static inline uint64_t bench_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Keep a value alive so the compiler cannot drop the loop computing it. */
#define BENCH_KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

#endif
