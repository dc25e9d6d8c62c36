/* SPDX-License-Identifier: MIT */
/* The entry point of hitel-snmp.so (snmp-module.h). */
#include "snmp-module.h"

#ifndef HITEL_VERSION
#error "HITEL_VERSION must be defined (Makefile.am)"
#endif

const struct hitel_snmp_module hitel_snmp_module = {
    .abi = HITEL_SNMP_MODULE_ABI,
    .version = HITEL_VERSION,
    .start = hitel_agentx_start,
    .set_engine = hitel_agentx_set_engine,
    .stop = hitel_agentx_stop,
    .sampler_status = hitel_agentx_sampler_status,
};
