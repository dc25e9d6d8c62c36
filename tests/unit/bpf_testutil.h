/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the Check suites of the eBPF samplers bpf_syscall,
 * bpf_irq and bpf_tcp: an engine with one BPF sampler, the kernel's program
 * list (programs loaded while the engine lives, gone after
 * hitel_engine_free), and the failure paths (bogus BTF, no capabilities).
 */
#ifndef HITEL_BPF_TESTUTIL_H
#define HITEL_BPF_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "registry.h"

/* An engine with sampler added, option attach set unless NULL. */
struct hitel_engine *btu_engine(const char *sampler, const char *attach);

/* Fail the test unless sampler is up. */
void btu_assert_up(struct hitel_engine *e, const char *sampler);

/* Window between two snapshots; frees nothing. */
struct hitel_snapshot *btu_window(const struct hitel_snapshot *a, const struct hitel_snapshot *b);

/*
 * With attach (NULL: auto), the sampler loads exactly the programs names
 * (whose names start with prefix), and none of them is left in the kernel
 * after hitel_engine_free().
 */
void btu_check_prog_lifetime(const char *sampler, const char *attach, const char *prefix,
			     const char *const *names, size_t nnames);

/*
 * The sampler with option key=value (key NULL: none) is down with a reason
 * containing want, a trivial sampler beside it keeps recording, and family
 * has no series. Check assertions.
 */
void btu_check_fails(const char *sampler, const char *key, const char *value, const char *want,
		     const char *family);

/* The same in a forked child that dropped CAP_SYS_ADMIN, CAP_BPF and
 * CAP_PERFMON first: the reason names the capabilities. */
void btu_check_fails_without_caps(const char *sampler, const char *family);

#endif
