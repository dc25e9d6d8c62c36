/* SPDX-License-Identifier: MIT */
/* The table of built-in samplers: adding a sampler adds one line here. */
#include "config.h"

#include <string.h>

#include "sampler.h"

extern const struct hitel_sampler_ops hitel_sampler_cpu;
extern const struct hitel_sampler_ops hitel_sampler_memory;
extern const struct hitel_sampler_ops hitel_sampler_disk;
extern const struct hitel_sampler_ops hitel_sampler_network;
extern const struct hitel_sampler_ops hitel_sampler_netstat;
extern const struct hitel_sampler_ops hitel_sampler_softnet;
extern const struct hitel_sampler_ops hitel_sampler_scheduler;
extern const struct hitel_sampler_ops hitel_sampler_pressure;
extern const struct hitel_sampler_ops hitel_sampler_process;
extern const struct hitel_sampler_ops hitel_sampler_self;
#ifdef HITEL_WITH_PERF
extern const struct hitel_sampler_ops hitel_sampler_perf;
#endif
#ifdef HITEL_WITH_BPF
extern const struct hitel_sampler_ops hitel_sampler_bpf_cpu;
extern const struct hitel_sampler_ops hitel_sampler_bpf_runqueue;
extern const struct hitel_sampler_ops hitel_sampler_bpf_block;
extern const struct hitel_sampler_ops hitel_sampler_bpf_syscall;
extern const struct hitel_sampler_ops hitel_sampler_bpf_irq;
extern const struct hitel_sampler_ops hitel_sampler_bpf_tcp;
extern const struct hitel_sampler_ops hitel_sampler_bpf_fs;
#endif

const struct hitel_sampler_ops *const hitel_builtin_samplers[] = {
	&hitel_sampler_cpu,
	&hitel_sampler_memory,
	&hitel_sampler_disk,
	&hitel_sampler_network,
	&hitel_sampler_netstat,
	&hitel_sampler_softnet,
	&hitel_sampler_scheduler,
	&hitel_sampler_pressure,
	&hitel_sampler_process,
	&hitel_sampler_self,
#ifdef HITEL_WITH_PERF
	&hitel_sampler_perf,
#endif
#ifdef HITEL_WITH_BPF
	&hitel_sampler_bpf_cpu,
	&hitel_sampler_bpf_runqueue,
	&hitel_sampler_bpf_block,
	&hitel_sampler_bpf_syscall,
	&hitel_sampler_bpf_irq,
	&hitel_sampler_bpf_tcp,
	&hitel_sampler_bpf_fs,
#endif
	NULL,
};

const struct hitel_sampler_ops *hitel_sampler_ops_find(const char *name)
{
	size_t i;

	for (i = 0; hitel_builtin_samplers[i]; i++)
		if (strcmp(hitel_builtin_samplers[i]->name, name) == 0)
			return hitel_builtin_samplers[i];
	return NULL;
}
