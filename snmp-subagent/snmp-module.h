/* SPDX-License-Identifier: MIT */
/*
 * The SNMP side of hiteld as a loadable module (hitel-snmp.so, installed in
 * $(pkglibdir)): agentx.c and net-snmp are mapped only once hiteld needs
 * SNMP, since merely loading net-snmp and its dependencies (libcrypto,
 * libperl, ...) costs ~4 MB of resident memory, and initialising it as much
 * again. The module carries no copy of libhitel: it resolves the hitel_*
 * functions it calls in the hiteld executable (linked -export-dynamic), so
 * the log callback, the engine and the registry are hiteld's own.
 *
 * The module exports one symbol, HITEL_SNMP_MODULE_SYMBOL: the table below,
 * whose entries behave as documented in agentx.h.
 */
#ifndef HITEL_SNMP_MODULE_H
#define HITEL_SNMP_MODULE_H

#include "agentx.h"

#define HITEL_SNMP_MODULE_FILE "hitel-snmp.so"
#define HITEL_SNMP_MODULE_SYMBOL "hitel_snmp_module"
/* Bumped whenever this table or a structure of agentx.h, engine.h or
 * export.h that crosses the boundary changes. */
#define HITEL_SNMP_MODULE_ABI 1u

struct hitel_snmp_module {
	unsigned int abi;
	/* The package version the module was built from: hiteld refuses a
	 * module from another build of hitel (say, a stale install). */
	const char *version;
	struct hitel_agentx *(*start)(struct hitel_engine *e, const struct hitel_agentx_opts *o);
	int (*set_engine)(struct hitel_agentx *a, struct hitel_engine *e);
	void (*stop)(struct hitel_agentx *a);
	void (*sampler_status)(struct hitel_agentx *a, const struct hitel_sampler_status *st);
};

extern const struct hitel_snmp_module hitel_snmp_module;

#endif /* HITEL_SNMP_MODULE_H */
