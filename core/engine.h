/* SPDX-License-Identifier: MIT */
/*
 * The oversampling engine: one sampling thread wakes on absolute deadlines
 * (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC, timer slack 1 ns) at
 * sample_rate Hz, runs each sampler that is due (a sampler may run slower:
 * its "rate" option), and lets the registry turn counters into per-second
 * rate histograms. Missed deadlines are counted, never absorbed.
 *
 * Windows: a consumer registers a window length W; at every multiple of W
 * (aligned to CLOCK_REALTIME, so collectd's Interval 10 matches :00, :10...)
 * the engine thread snapshots the registry and keeps the last two, so
 * hitel_engine_window() returns the last complete window as their
 * difference. Readers with different W never disturb each other.
 *
 * Self-metrics (families under "hitel/"): sampler up {sampler}, sampler
 * refresh time {sampler} (histogram, ns), sampler errors {sampler}, engine
 * missed deadlines, engine lateness (histogram, ns), process cpu time and
 * RSS ("self" sampler).
 *
 * Threads: configure (set, sampler_add, window_add) before start; window,
 * snapshot, status may be called from any thread at any time.
 */
#ifndef HITEL_ENGINE_H
#define HITEL_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "sampler.h"

struct hitel_engine;

/* New engine with no samplers, owning a new registry. NULL + errno. */
struct hitel_engine *hitel_engine_new(void);
/*
 * New engine with no samplers on an existing registry that it does not own:
 * hitel_engine_free() leaves reg alone, and reg must outlive the engine.
 * Families and series are get-or-create, so a sampler asking for a series
 * that already exists continues it: same cumulative state, same id. The
 * engine's max_series and grouping powers become the registry's defaults
 * only while the registry has no family (see hitel_engine_takeover). NULL +
 * errno (EINVAL for a NULL reg, ENOMEM).
 */
struct hitel_engine *hitel_engine_new_on(struct hitel_registry *reg);
/* Stops (if running), runs every sampler's fini, frees; frees the registry
 * if the engine owns it. NULL accepted. */
void hitel_engine_free(struct hitel_engine *e);

/*
 * Reload without a reset: engine e, configured but never started, on the
 * registry of old (hitel_engine_new_on(hitel_engine_registry(old))), takes
 * over from old, running or stopped.
 *
 * Refused with -EINVAL and nothing changed (the reason, naming the option,
 * in err) when e is on another registry, or when root, max_series,
 * rate_grouping_power or hist_grouping_power differ: existing series keep
 * the histogram shape and cap they were created with, and series fed from
 * two roots would mix two machines' data. -EBUSY if e was started.
 *
 * Otherwise old is stopped (its thread joined) and:
 * - every sampler of old whose name and options (rate aside) are the same
 *   in e moves to e as it is: initialised, with its BPF maps, perf events
 *   and open files, so kernel-side cumulative state (BPF histograms and
 *   counters) continues; it runs at e's rate from hitel_engine_start(e);
 * - a sampler of e with other options, or new, is initialised by
 *   hitel_engine_start(e); one only in old stays in old, and
 *   hitel_engine_free(old) runs its fini: its series stay in the registry
 *   and stop updating (the registry never deletes);
 * - the cumulative self-metrics continue: missed deadlines, and each
 *   sampler's reads and errors (by sampler name);
 * - windows of a length registered with both engines keep their snapshots,
 *   so hitel_engine_window(e, len) answers at once and continues;
 * - e owns the registry if old did.
 * Then free old once no other thread uses it, and start e. Both engines
 * serve snapshots, windows and status meanwhile (old: its remaining
 * samplers). Returns how many samplers kept running (>= 0), -EINVAL or
 * -EBUSY. Call from the thread that configures both engines.
 */
int hitel_engine_takeover(struct hitel_engine *e, struct hitel_engine *old, char *err,
			  size_t errlen);

/*
 * Engine option, from the config vocabulary:
 *   sample_rate          Hz, 1..1000 (default 100)
 *   root                 prefix for /proc and /sys (default "/")
 *   rate_grouping_power  0..10 for rate/value histograms (default 5)
 *   hist_grouping_power  0..10 for histogram families (default 7)
 *   max_series           series cap per family (default 1024)
 * Returns 0, -ENOENT for an unknown key, -EINVAL for a bad value (message in
 * err, which names the option).
 */
int hitel_engine_set(struct hitel_engine *e, const char *key, const char *value, char *err,
		     size_t errlen);

/* Add (or return the already added) sampler by name; NULL + errno ENOENT for
 * an unknown name. */
struct hitel_sampler *hitel_engine_sampler_add(struct hitel_engine *e, const char *name);
/* Add a sampler from explicit ops (tests, out-of-tree samplers). ops must
 * outlive the engine. NULL + errno. */
struct hitel_sampler *hitel_engine_sampler_add_ops(struct hitel_engine *e,
						   const struct hitel_sampler_ops *ops);
/* Add every built-in sampler with default_enabled. Returns 0 or -errno. */
int hitel_engine_add_defaults(struct hitel_engine *e);
/* Sampler option: "rate" (Hz, <= sample_rate), "include"/"exclude" (glob,
 * repeatable), else the sampler's own option(). Same returns as
 * hitel_engine_set. */
int hitel_sampler_set(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen);

/* Register a window length (ns, >= 1/sample_rate). Idempotent. 0 or -EINVAL. */
int hitel_engine_window_add(struct hitel_engine *e, uint64_t len_ns);

/* Run init of every sampler (failures only disable that sampler) and start
 * the sampling thread. Returns 0 or -errno (thread creation). */
int hitel_engine_start(struct hitel_engine *e);
/* Stop the thread (joins). Samplers stay initialised; start may follow. */
void hitel_engine_stop(struct hitel_engine *e);

/* Without a thread: init samplers (once) and run one pass of every sampler
 * at monotonic time now_ns, as the thread would. For tests and --once. */
int hitel_engine_run_once(struct hitel_engine *e, uint64_t now_ns);

/* The engine's registry. While the thread runs, the engine's own timings
 * (hitel/sampler/refresh/time, hitel/engine/lateness) reach it in batches:
 * read through hitel_engine_snapshot() or hitel_engine_window(), which
 * include every one so far, rather than hitel_registry_snapshot(). */
struct hitel_registry *hitel_engine_registry(struct hitel_engine *e);

/* Last complete window of a registered length: NULL + errno ENOENT if the
 * length was not registered, EAGAIN if no window has completed yet. The
 * caller frees the result with hitel_snapshot_free. */
struct hitel_snapshot *hitel_engine_window(struct hitel_engine *e, uint64_t len_ns);
/* Cumulative state now. NULL + errno. */
struct hitel_snapshot *hitel_engine_snapshot(struct hitel_engine *e);

struct hitel_sampler_status {
	const char *name;
	int up;		    /* 1 up, 0 down */
	char reason[256];   /* why down; "" when up */
	unsigned int rate_hz;
	uint64_t reads, errors;
};
size_t hitel_engine_sampler_count(const struct hitel_engine *e);
/* Copy sampler i's status. 0 or -ERANGE. */
int hitel_engine_sampler_status(struct hitel_engine *e, size_t i,
				struct hitel_sampler_status *st);

/* Called on the engine thread when a sampler goes down or comes back (for
 * collectd notifications and SNMP traps). Keep it short; do not call engine
 * functions from it. */
typedef void (*hitel_status_fn)(const struct hitel_sampler_status *st, void *ctx);
void hitel_engine_on_status(struct hitel_engine *e, hitel_status_fn fn, void *ctx);

uint64_t hitel_engine_missed(const struct hitel_engine *e);

/* Who creates the sampling thread: by default pthread_create, named
 * "hitel-engine". A host with its own thread bookkeeping passes a function
 * here before start (collectd: plugin_thread_create, which gives the thread
 * the plugin's context and name). fn returns 0 or a positive errno, like
 * pthread_create. NULL restores the default. */
typedef int (*hitel_thread_create_fn)(pthread_t *thread, void *(*start)(void *), void *arg,
				      void *ctx);
void hitel_engine_set_thread_create(struct hitel_engine *e, hitel_thread_create_fn fn,
				    void *ctx);

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ns. */
uint64_t hitel_now_ns(void);
uint64_t hitel_realtime_ns(void);

#endif /* HITEL_ENGINE_H */
