/* SPDX-License-Identifier: MIT */
#include "export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void hitel_export_opts_default(struct hitel_export_opts *o)
{
	static const double def[] = { 0.5, 0.9, 0.99, 0.999, 1.0 };

	memset(o, 0, sizeof(*o));
	memcpy(o->q, def, sizeof(def));
	o->nq = sizeof(def) / sizeof(def[0]);
	o->bucket_grouping_power = 2;
	o->buckets = 1;
}

int hitel_parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int parse_percentiles(struct hitel_export_opts *o, const char *value, char *err,
			     size_t errlen)
{
	double q[HITEL_EXPORT_MAX_PERCENTILES];
	const char *p = value;
	size_t n = 0, i;

	while (*p) {
		char *end;
		double v;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		v = strtod(p, &end);
		if (end == p || !(v > 0.0) || v > 100.0 || (*end && !strchr(" \t,", *end))) {
			snprintf(err, errlen,
				 "option 'percentiles': '%s' is not a list of percents in (0, 100]",
				 value);
			return -EINVAL;
		}
		if (n == HITEL_EXPORT_MAX_PERCENTILES) {
			snprintf(err, errlen, "option 'percentiles': at most %d values",
				 HITEL_EXPORT_MAX_PERCENTILES);
			return -EINVAL;
		}
		q[n++] = v / 100.0;
		p = end;
	}
	if (!n) {
		snprintf(err, errlen, "option 'percentiles': empty list");
		return -EINVAL;
	}
	qsort(q, n, sizeof(q[0]), cmp_double);
	o->nq = 0;
	for (i = 0; i < n; i++)
		if (!o->nq || q[i] != o->q[o->nq - 1])
			o->q[o->nq++] = q[i];
	return 0;
}

int hitel_export_set(struct hitel_export_opts *o, const char *key, const char *value, char *err,
		     size_t errlen)
{
	if (strcmp(key, "percentiles") == 0)
		return parse_percentiles(o, value, err, errlen);
	if (strcmp(key, "bucket_grouping_power") == 0) {
		char *end;
		long v = strtol(value, &end, 10);

		if (end == value || *end || v < 0 || v > 7) {
			snprintf(err, errlen, "option 'bucket_grouping_power': '%s' is not in 0..7",
				 value);
			return -EINVAL;
		}
		o->bucket_grouping_power = (unsigned int)v;
		return 0;
	}
	if (strcmp(key, "buckets") == 0) {
		if (hitel_parse_bool(value, &o->buckets) < 0) {
			snprintf(err, errlen, "option 'buckets': '%s' is not a boolean", value);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s'", key);
	return -ENOENT;
}

const char *hitel_quantile_label(double q, char *buf, size_t len)
{
	char digits[32];
	size_t i, n;

	if (q >= 1.0) {
		snprintf(buf, len, "max");
		return buf;
	}
	/* p + the percent's digits without the dot: 0.5 -> 50, 0.999 -> 999. */
	snprintf(digits, sizeof(digits), "%.6f", q * 100.0);
	n = strlen(digits);
	while (n > 0 && digits[n - 1] == '0')
		digits[--n] = '\0';
	if (n > 0 && digits[n - 1] == '.')
		digits[--n] = '\0';
	for (i = 0; i < n && digits[i] != '.'; i++)
		;
	if (i < n)
		memmove(digits + i, digits + i + 1, n - i);
	snprintf(buf, len, "p%s", digits);
	return buf;
}
