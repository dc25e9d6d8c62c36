/* SPDX-License-Identifier: MIT */
#ifndef HITEL_HOT_H
#define HITEL_HOT_H

/*
 * HITEL_TICK marks a function that every engine tick runs (the 100 Hz path:
 * the engine's loop, the file read, the network and disk samplers' repeat
 * paths, the registry updates they make). The linker gathers the sections
 * named .text.hot.* in one place, so these functions share a few pages
 * instead of being spread over the library's text.
 *
 * Why pages: after the 10 ms sleep nearly everything a tick touches is
 * cold, and in a VM a cold TLB entry is a two-level page walk. Measured
 * here (a chain of dependent loads 10 ms after each wake-up): ~130 ns a
 * load when the loads share a few pages, ~380 ns when each is on a page of
 * its own. A plain tick touched 16 code pages before this, 10 after
 * (`make bench-ticks` with TICK_PAGES=1 lists them).
 *
 * Also bpf_cpu's read (100 Hz too) and the counter update every sampler
 * makes. Not the 10 Hz samplers' parsers: placed in between, they would
 * spread the every-tick path again (the linker keeps each object's
 * sections together).
 */
#define HITEL_TICK __attribute__((section(".text.hot.hitel_tick")))

#endif
