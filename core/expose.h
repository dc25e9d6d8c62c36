/* SPDX-License-Identifier: MIT */
/*
 * Text expositions of a snapshot, shared by every wrapper that serves pulls
 * (hiteld's HTTP endpoints; a test or tool can print them too). No HTTP here:
 * each function writes to a stdio stream (open_memstream for a response).
 *
 * Inputs: cum is a cumulative snapshot (hitel_engine_snapshot); win is the
 * last complete window (hitel_engine_window) or NULL when none has completed
 * yet, in which case window percentiles are left out. Points of win are
 * matched to points of cum by their id.
 *
 * Values are converted to the family's base unit with its scale, printed as
 * exact decimals (raw 1234567 at scale -9 -> 0.001234567; scale 0 -> the
 * integer itself). Window percentiles use the exporter options' quantiles at
 * the histograms' full resolution; Prometheus buckets are downsampled to
 * bucket_grouping_power.
 *
 * Prometheus mapping (text format 0.0.4), for a family "subsystem/thing":
 *   name     "hitel_" + name with '/' and other invalid characters as '_'
 *            (self metrics "hitel/x" give "hitel_hitel_x": mechanical, so no
 *            two families collide), + "_" + unit for physical
 *            base units (seconds, bytes, ratio, celsius, joules, watts, volts,
 *            amperes, hertz, meters; milli/micro/nanoseconds are converted to
 *            seconds first) unless the name already ends with it, + "_total"
 *            for counters. Counted things (packets, operations) add nothing.
 *   counter  TYPE counter, the cumulative value.
 *   gauge    TYPE gauge, the last value.
 *   histogram TYPE histogram: cumulative <name>_bucket{le} for the non-empty
 *            buckets (le = the bucket's inclusive upper bound in base units),
 *            le="+Inf", <name>_sum, <name>_count.
 *   rates    a counter with a rate histogram also gets a summary family
 *            <name without _total>_rate: {quantile="0.99"} per-second rate
 *            percentiles over the window, _sum and _count of all rate samples
 *            since start (cumulative, so rate(_sum)/rate(_count) is the mean).
 *   values   a gauge with a value histogram likewise gets <name>_dist.
 * Label names are sanitised ("le"/"quantile" become "exported_le"...); label
 * values escape backslash, double quote and newline.
 *
 * Thread-safety: all functions are reentrant; the snapshots are read-only.
 */
#ifndef HITEL_EXPOSE_H
#define HITEL_EXPOSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "export.h"
#include "registry.h"

#define HITEL_EXPOSE_PROMETHEUS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define HITEL_EXPOSE_VARS_TYPE "text/plain; charset=utf-8"
#define HITEL_EXPOSE_JSON_TYPE "application/json"

/* Prometheus text format 0.0.4. Returns 0, or -EIO/-ENOMEM if writing to out
 * failed. */
int hitel_expose_prometheus(FILE *out, const struct hitel_snapshot *cum,
			    const struct hitel_snapshot *win, const struct hitel_export_opts *o);

/*
 * Human-readable lines "name{labels} value" in base units, canonical names:
 *   counter    name{l} V, then name/rate/p50{l} R ... (per second, window)
 *   gauge      name{l} V, then name/p50{l} V ... (window)
 *   histogram  name/count{l} N, name/sum{l} S, then name/p50{l} V ... (window)
 * Returns as hitel_expose_prometheus.
 */
int hitel_expose_vars(FILE *out, const struct hitel_snapshot *cum, const struct hitel_snapshot *win,
		      const struct hitel_export_opts *o);

/*
 * One JSON object:
 *   {"window_seconds": 10.0 | null,
 *    "metrics": [{"name": "cpu/usage", "kind": "counter", "unit": "seconds",
 *                 "labels": {"cpu": "0"}, "value": 12.5,
 *                 "percentiles": {"p50": 0.2, ..., "max": 0.9}}, ...]}
 * "percentiles" (window; per-second rates for counters) only when a window
 * exists and the series has samples in it; histograms carry "count" and
 * "sum" instead of "value". Returns as hitel_expose_prometheus.
 */
int hitel_expose_json(FILE *out, const struct hitel_snapshot *cum, const struct hitel_snapshot *win,
		      const struct hitel_export_opts *o);

/* Prometheus name of the point's family as it appears on sample lines of
 * counters and gauges (with "_total" for counters; the histogram's base
 * name). Returns buf (truncated to len). */
const char *hitel_expose_prom_name(const struct hitel_point *p, char *buf, size_t len);

/* raw * 10^scale as an exact decimal ("0.5", "12", "1500"). Returns buf;
 * len >= 48 always fits. */
const char *hitel_expose_decimal(uint64_t raw, int scale, char *buf, size_t len);

#endif /* HITEL_EXPOSE_H */
