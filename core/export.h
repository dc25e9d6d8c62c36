/* SPDX-License-Identifier: MIT */
/*
 * Options shared by every exporter (collectd plugin, SNMP tables, HTTP):
 * which window percentiles to publish and at which grouping power to ship
 * histogram buckets. Same vocabulary in collectd's block (CamelCase) and in
 * hiteld's config file (snake_case).
 */
#ifndef HITEL_EXPORT_H
#define HITEL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#define HITEL_EXPORT_MAX_PERCENTILES 16

struct hitel_export_opts {
	/* Quantiles in (0, 1], ascending, 1.0 meaning max. */
	double q[HITEL_EXPORT_MAX_PERCENTILES];
	size_t nq;
	/* Grouping power for exported buckets (coarse: fewer series);
	 * percentiles are always computed at full resolution. */
	unsigned int bucket_grouping_power;
	/* Export histogram buckets at all (collectd: off by default). */
	int buckets;
};

/* Defaults: p50 p90 p99 p999 max; buckets at grouping power 2 (19 % wide),
 * buckets on. */
void hitel_export_opts_default(struct hitel_export_opts *o);
/*
 * Options:
 *   percentiles            list of percents, e.g. "50 90 99 99.9 100"
 *   bucket_grouping_power  0..7
 *   buckets                true/false
 * Returns 0, -ENOENT for an unknown key, -EINVAL with a message naming the
 * option.
 */
int hitel_export_set(struct hitel_export_opts *o, const char *key, const char *value, char *err,
		     size_t errlen);
/* Label of quantile q: 0.5 -> "p50", 0.999 -> "p999", 0.9999 -> "p9999",
 * 1.0 -> "max", 0.995 -> "p995". Returns buf. */
const char *hitel_quantile_label(double q, char *buf, size_t len);
/* Parse a boolean option value: true/false/yes/no/on/off/1/0. 0 or -EINVAL. */
int hitel_parse_bool(const char *value, int *out);

#endif /* HITEL_EXPORT_H */
