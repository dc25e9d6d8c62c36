/* SPDX-License-Identifier: MIT */
/*
 * Metric registry: families (canonical name, help, unit, kind) holding
 * series (label sets). Everything is cumulative; a window is the difference
 * of two snapshots (hitel_snapshot_delta).
 *
 * Values are unsigned 64-bit integers in the family's unit scaled by
 * 10^scale (cpu time: unit "seconds", scale -9, i.e. nanoseconds), so
 * kernel counters are kept exactly and exporters convert mechanically.
 *
 * Counters are oversampled: every hitel_series_counter() call after the first
 * records the per-second rate since the previous call (measured elapsed time)
 * into the series' rate histogram. Gauges record each value into a value
 * histogram. Histogram series hold a cumulative histogram (e.g. loaded from a
 * BPF map).
 *
 * Threads: writers (samplers, on the engine thread) call the hitel_series_*
 * functions between hitel_registry_lock() and hitel_registry_unlock().
 * Readers take snapshots (hitel_registry_snapshot locks internally), which are
 * consistent across all series, and never block writers for longer than one
 * copy.
 */
#ifndef HITEL_REGISTRY_H
#define HITEL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"

enum hitel_kind {
	HITEL_KIND_COUNTER = 0,
	HITEL_KIND_GAUGE = 1,
	HITEL_KIND_HISTOGRAM = 2,
};

/* Family flags. */
#define HITEL_FAMILY_NO_HIST 0x1u /* counter/gauge without a rate/value histogram */

struct hitel_label {
	const char *name;
	const char *value;
};

struct hitel_family_desc {
	const char *name; /* canonical "subsystem/thing[/qualifier]", e.g. "cpu/usage" */
	const char *help; /* one sentence */
	const char *unit; /* base unit: "seconds", "bytes", "packets", "" for ratios */
	int scale;	  /* decimal exponent: value in unit = stored integer * 10^scale */
	enum hitel_kind kind;
	unsigned int max_series;     /* cap on series; 0: registry default */
	unsigned int grouping_power; /* histogram shape; 0 with max_power 0: defaults */
	unsigned int max_power;
	unsigned int flags; /* HITEL_FAMILY_* */
};

struct hitel_registry;
struct hitel_family;
struct hitel_series;

/* Defaults: 1024 series per family; rate/value histograms g=5 (3.1 %),
 * histogram families g=7 (0.8 %); max power 64. */
struct hitel_registry *hitel_registry_new(void);
void hitel_registry_free(struct hitel_registry *reg);
/* Change defaults before any family is created. Returns 0 or -EINVAL. */
int hitel_registry_set_defaults(struct hitel_registry *reg, unsigned int max_series,
				unsigned int rate_grouping_power,
				unsigned int hist_grouping_power);

/* Writers hold this lock around a batch of updates (the engine does it around
 * each sampler read). Not recursive. */
void hitel_registry_lock(struct hitel_registry *reg);
void hitel_registry_unlock(struct hitel_registry *reg);

/*
 * Get or create a family. The desc strings are copied. Asking again for an
 * existing name returns it if kind, unit and scale agree, else NULL with
 * errno EEXIST. NULL + errno EINVAL/ENOMEM otherwise. Needs the lock.
 */
struct hitel_family *hitel_registry_family(struct hitel_registry *reg,
					   const struct hitel_family_desc *desc);

/*
 * Get or create the series with these labels (order matters and must be the
 * same each time; strings are copied). NULL + errno ENOSPC when the family is
 * at its cap: the refusal is counted (hitel_family_refused) and logged once.
 * Needs the lock. Series live as long as the registry: cache the pointer.
 */
struct hitel_series *hitel_family_series(struct hitel_family *fam,
					 const struct hitel_label *labels, size_t nlabels);
/* Both in one call. */
struct hitel_series *hitel_registry_series(struct hitel_registry *reg,
					   const struct hitel_family_desc *desc,
					   const struct hitel_label *labels, size_t nlabels);

uint64_t hitel_family_refused(const struct hitel_family *fam);
const char *hitel_family_name(const struct hitel_family *fam);
/* Families in creation order (for self-metrics such as refused series).
 * Needs the lock. */
size_t hitel_registry_family_count(const struct hitel_registry *reg);
struct hitel_family *hitel_registry_family_at(struct hitel_registry *reg, size_t i);

/* Counter: raw cumulative value at monotonic time t_ns. From the second call
 * on, records round(delta * 1e9 / elapsed_ns) into the rate histogram. A value
 * below the previous one is a reset: counted, no rate recorded. */
void hitel_series_counter(struct hitel_series *s, uint64_t raw, uint64_t t_ns);
/* Gauge: current value at t_ns; recorded into the value histogram. */
void hitel_series_gauge(struct hitel_series *s, uint64_t v, uint64_t t_ns);
/* Histogram series: replace with cumulative bucket counts in this series'
 * shape (n == hitel_hist_buckets(hitel_series_hist(s))). 0 or -EINVAL. */
int hitel_series_hist_load(struct hitel_series *s, const uint64_t *counts, size_t n,
			   uint64_t sum, uint64_t t_ns);
/* The series' histogram (rate, value or cumulative), to record into
 * directly under the lock, or to read its shape. */
struct hitel_hist *hitel_series_hist(struct hitel_series *s);
/* Mark updated at t_ns after recording directly into hitel_series_hist(). */
void hitel_series_touch(struct hitel_series *s, uint64_t t_ns);

/*
 * Counters read together (an interface's 16, a disk's) that mostly do not
 * move between two reads at 100 Hz: an idle interface still costs a series
 * update per counter and read, each a cache line gone cold in the 10 ms
 * since the last. A group remembers the last values it was given, and a
 * read that repeats all of them at a later time is counted once on the
 * group; those zero-rate samples are folded into every member before
 * anything reads them (snapshots, hitel_series_hist()). What the members
 * record is exactly what hitel_series_counter() on each would have.
 * members[] are counters (NULL entries are skipped), each in one group,
 * updated only through it. All of these need the lock.
 */
struct hitel_series_group;
/* NULL + errno: EINVAL (a member not a counter, or already in a group),
 * ENOMEM. */
struct hitel_series_group *hitel_series_group_new(struct hitel_registry *reg,
						  struct hitel_series *const *members, size_t n);
/* Folds what is pending into the members, which may then be grouped again. */
void hitel_series_group_free(struct hitel_series_group *g);
/* raw[i] for members[i] at t_ns. */
void hitel_series_group_counters(struct hitel_series_group *g, const uint64_t *raw,
				 uint64_t t_ns);
/* A read whose values are known to be the last ones given (its text did
 * not change): what hitel_series_group_counters() with those would do,
 * without the caller parsing them. 0, -EAGAIN (no read given yet) or
 * -EINVAL (NULL, or the registry is gone). */
int hitel_series_group_repeat(struct hitel_series_group *g, uint64_t t_ns);
/* Reads counted on the group alone and not yet folded into the members. */
uint64_t hitel_series_group_pending(const struct hitel_series_group *g);

/* A read-only view of one series in a snapshot. Strings belong to the
 * registry (valid while it lives); hist belongs to the snapshot. */
struct hitel_point {
	const char *family;
	const char *help;
	const char *unit;
	int scale;
	enum hitel_kind kind;
	const struct hitel_label *labels;
	size_t nlabels;
	/* Stable 64-bit FNV-1a hash of family name and labels: the same series
	 * gets the same id across restarts (SNMP row indexes). */
	uint64_t id;
	/* counter: cumulative raw value (in a window: its increase);
	 * gauge: last value; histogram: count. */
	uint64_t value;
	/* counter: per-second rates; gauge: values; histogram: the histogram.
	 * In a window: only what was recorded inside it. NULL with NO_HIST. */
	const struct hitel_hist *hist;
	uint64_t updated_ns; /* monotonic time of last update; 0: never */
	uint64_t resets;     /* counter resets seen (window: inside it) */
};

struct hitel_snapshot;

/* Consistent copy of every series, ordered by family creation then series
 * creation. t_ns is stored as the snapshot time. NULL + errno ENOMEM. */
struct hitel_snapshot *hitel_registry_snapshot(struct hitel_registry *reg, uint64_t t_ns);
/* Window = newer - older (see struct hitel_point for what each field becomes).
 * Series that appear only in newer count from their creation. */
struct hitel_snapshot *hitel_snapshot_delta(const struct hitel_snapshot *older,
					    const struct hitel_snapshot *newer);
void hitel_snapshot_free(struct hitel_snapshot *snap);
size_t hitel_snapshot_len(const struct hitel_snapshot *snap);
const struct hitel_point *hitel_snapshot_point(const struct hitel_snapshot *snap, size_t i);
/* Snapshot time; for a window, start is the older snapshot's time. */
uint64_t hitel_snapshot_time(const struct hitel_snapshot *snap);
uint64_t hitel_snapshot_start(const struct hitel_snapshot *snap);
/* Find a point by family name and a label set given as "k=v,k=v" ("" for
 * none); NULL if absent. Linear: for tests and tools, not hot paths. */
const struct hitel_point *hitel_snapshot_find(const struct hitel_snapshot *snap,
					      const char *family, const char *labels);
/* Label value by name, or NULL. */
const char *hitel_point_label(const struct hitel_point *p, const char *name);

#endif /* HITEL_REGISTRY_H */
