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

#include "sampler.h"

struct bpf_object;

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
 * Self-metrics of the loaded programs from the kernel's BPF statistics
 * (bpf_prog_info run_cnt/run_time_ns; non-zero only while
 * kernel.bpf_stats_enabled is on, or the "bpf_stats" option holds it on):
 * "hitel/bpf/runs" and "hitel/bpf/run_time" {sampler, program}.
 */
struct hitel_bpf_stats;
/* With o->stats, turns the statistics on (BPF_ENABLE_STATS) for the
 * sampler's life. NULL + errno. Needs the registry lock. */
struct hitel_bpf_stats *hitel_bpf_stats_new(struct hitel_sampler *s, struct bpf_object *obj,
					    const struct hitel_bpf_opts *o);
void hitel_bpf_stats_free(struct hitel_bpf_stats *st);
/* Record the counters of every loaded program. Registry lock held. */
void hitel_bpf_stats_read(struct hitel_bpf_stats *st, uint64_t now_ns);

/* Number of possible CPUs (rows of per-CPU maps), or -errno. */
int hitel_bpf_ncpus(void);

#endif /* HITEL_BPF_COMMON_H */
