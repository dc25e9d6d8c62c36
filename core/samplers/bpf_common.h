/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers shared by the eBPF samplers (bpf_*.c in this directory);
 * not part of the library's public interface. Each BPF sampler goes
 * open -> configure -> load -> attach, tp_btf first and raw_tp as the
 * fallback, and reports why it is down with hitel_sampler_fail().
 */
#ifndef HITEL_BPF_COMMON_H
#define HITEL_BPF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "sampler.h"

struct bpf_map;
struct bpf_object;
struct bpf_object_open_opts;
struct bpf_object_skeleton;
struct hitel_bpf_hist;

/* Which program flavour to load: "attach" option auto|tp_btf|raw_tp. */
enum hitel_bpf_attach {
	HITEL_BPF_ATTACH_AUTO = 0, /* tp_btf, then raw_tp if that fails */
	HITEL_BPF_ATTACH_TP_BTF,
	HITEL_BPF_ATTACH_RAW_TP,
};

/* Options every BPF sampler accepts (hitel_bpf_option parses them). */
struct hitel_bpf_opts {
	enum hitel_bpf_attach attach;
	int stats; /* "bpf_stats": keep kernel.bpf_stats_enabled on while running */
	char btf[256]; /* "btf": BTF of the running kernel, for CO-RE ("" = kernel's) */
};

/* Parse the common options "attach", "bpf_stats", "btf". Same returns as
 * hitel_sampler_ops.option (0, -ENOENT unknown key, -EINVAL with err). */
int hitel_bpf_option(struct hitel_bpf_opts *o, const char *key, const char *value, char *err,
		     size_t errlen);

/* hitel_sampler_ops.option of a BPF sampler with only the common options;
 * samplers with their own options end with it. */
int hitel_bpf_sampler_option(struct hitel_sampler *s, const char *key, const char *value,
			     char *err, size_t errlen);

/* Validate a count option ("max_keys N"): 0, or -EINVAL with err unless
 * value is a number in 1..max. */
int hitel_bpf_count_option(const char *key, const char *value, unsigned int max, char *err,
			   size_t errlen);

/* The last value of a count option that hitel_bpf_count_option() accepted
 * (option() rejected any other), or def when unset. */
unsigned int hitel_bpf_count_value(const struct hitel_sampler *s, const char *key,
				   unsigned int def, unsigned int max);

/* Fill o from the options the engine stored for the sampler (the engine
 * clears the private state before each init, so init reads them back; the
 * last value of a key wins; option() already validated them). */
void hitel_bpf_opts_load(const struct hitel_sampler *s, struct hitel_bpf_opts *o);

/*
 * Cheap checks before anything is loaded, so that a sampler that cannot work
 * fails at once with a precise reason (and its periodic init retries cost
 * nothing): the capabilities to load tracing programs, and kernel BTF (or the
 * "btf" option's file). Calls hitel_sampler_fail() and returns -EPERM or
 * -ENOENT; 0 when loading may proceed. Also routes libbpf's messages into
 * hitel_log (once per process: libbpf's print callback is process-wide).
 */
int hitel_bpf_precheck(struct hitel_sampler *s, const struct hitel_bpf_opts *o);

/* Select a flavour: autoload the programs of sections "tp_btf/..." (raw == 0)
 * or "raw_tp/..." (raw == 1), not the others. */
void hitel_bpf_select(struct bpf_object *obj, int raw);

/* Human explanation appended to a libbpf error: "" or " (needs ...)". */
const char *hitel_bpf_hint(int err);

/*
 * What hitel_bpf_load() needs of a sampler. The skeleton's type is the
 * sampler's own (bpftool generates one per program), so the sampler opens
 * and destroys it; the steps between use the generic skeleton.
 */
struct hitel_bpf_loader {
	/* Open the skeleton with oo and keep it in ctx. Returns its generic
	 * skeleton, or NULL + errno. */
	struct bpf_object_skeleton *(*open)(void *ctx, const struct bpf_object_open_opts *oo);
	/* Between the choice of programs and the load: map sizes, maps or
	 * programs left out. 0 or -errno; NULL when nothing to do. */
	int (*configure)(void *ctx, int raw);
	/* After the attach: map what the sampler reads in place. 0 or -errno;
	 * NULL when nothing to do. */
	int (*mmap)(void *ctx);
	/* Undo open and mmap, whichever happened; also called on failure. */
	void (*unload)(void *ctx);
};

/*
 * Open, configure, load and attach the programs: tp_btf, then raw_tp if that
 * fails, as o->attach allows; the steps that failed go to
 * hitel_sampler_fail() ("cannot load BPF programs: ..."), a raw_tp fallback
 * to the log. Returns the flavour loaded (0 tp_btf, 1 raw_tp) or -errno.
 */
int hitel_bpf_load(struct hitel_sampler *s, const struct hitel_bpf_opts *o,
		   const struct hitel_bpf_loader *l, void *ctx);

/* Map the first n entries (of size bytes) of an mmapable array read only,
 * *len the length to unmap. NULL + errno. */
const void *hitel_bpf_mmap(const struct bpf_map *map, size_t n, size_t size, size_t *len);
/* Unmap what hitel_bpf_mmap() returned; NULL does nothing. */
void hitel_bpf_munmap(const void *addr, size_t len);

/*
 * Load into series the sum of n histograms, the first at first and the
 * next ones stride bytes apart (the rows of a per-CPU map; n 1 for a shared
 * histogram). counts is scratch of HITEL_BPF_BUCKETS words: too large for
 * the stack. *count, unless NULL, gets the total count. 0 or -errno from
 * hitel_series_hist_load().
 */
int hitel_bpf_hist_load(struct hitel_series *series, const struct hitel_bpf_hist *first,
			size_t stride, unsigned int n, uint64_t *counts, uint64_t *count,
			uint64_t now_ns);

/* The sampler's "hitel/bpf/lost" {sampler} counter: events its programs
 * could not record. NULL + errno. */
struct hitel_series *hitel_bpf_lost_series(struct hitel_sampler *s);

/* A counter created after the sampler started, seeded with 0 at since_ns
 * (the previous read, when its count was still 0): its first window then
 * holds every event, where a counter's first value would be its baseline.
 * NULL at the family's series cap (counted and logged by the registry). */
struct hitel_series *hitel_bpf_counter_series(struct hitel_sampler *s,
					      const struct hitel_family_desc *desc,
					      const struct hitel_label *labels, size_t nlabels,
					      uint64_t since_ns);

/* hitel_sampler_fail() for a series that could not be created; -errno. */
int hitel_bpf_fail_series(struct hitel_sampler *s);

/*
 * Self-metrics of the loaded programs from the kernel's BPF statistics
 * (bpf_prog_info run_cnt/run_time_ns; non-zero only while
 * kernel.bpf_stats_enabled is on, or the "bpf_stats" option holds it on):
 * "hitel/bpf/runs" and "hitel/bpf/run_time" {sampler, program}.
 */
struct hitel_bpf_stats;
/* With o->stats, turns the statistics on (BPF_ENABLE_STATS) for the
 * sampler's life. NULL + errno after hitel_sampler_fail(). Needs the
 * registry lock. */
struct hitel_bpf_stats *hitel_bpf_stats_new(struct hitel_sampler *s, struct bpf_object *obj,
					    const struct hitel_bpf_opts *o);
void hitel_bpf_stats_free(struct hitel_bpf_stats *st);
/* Record the counters of every loaded program, at most every 500 ms (a read
 * is a system call per program). Registry lock held. */
void hitel_bpf_stats_read(struct hitel_bpf_stats *st, uint64_t now_ns);

/* Number of possible CPUs (rows of per-CPU maps), or -errno. */
int hitel_bpf_ncpus(void);

#endif /* HITEL_BPF_COMMON_H */
