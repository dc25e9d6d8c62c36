/* SPDX-License-Identifier: MIT */
#include "expose.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist_bucket.h"
#include "log.h"

/* Widest scale printed exactly; beyond it a double is close enough. */
#define MAX_EXACT_SCALE 24

/* --- numbers ---------------------------------------------------------------- */

static size_t u64_digits(uint64_t v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

const char *hitel_expose_decimal(uint64_t raw, int scale, char *buf, size_t len)
{
	char d[24], tmp[64];
	size_t nd, k, o = 0, i;

	if (!len)
		return buf;
	if (raw == 0) {
		snprintf(buf, len, "0");
		return buf;
	}
	if (scale > MAX_EXACT_SCALE || scale < -MAX_EXACT_SCALE) {
		snprintf(buf, len, "%.17g", (double)raw * pow(10.0, scale));
		return buf;
	}
	nd = u64_digits(raw, d);
	if (scale >= 0) {
		memcpy(tmp, d, nd);
		o = nd;
		for (i = 0; i < (size_t)scale; i++)
			tmp[o++] = '0';
	} else {
		k = (size_t)-scale;
		if (nd > k) {
			memcpy(tmp, d, nd - k);
			o = nd - k;
		} else {
			tmp[o++] = '0';
		}
		tmp[o++] = '.';
		for (i = nd; i < k; i++)
			tmp[o++] = '0';
		memcpy(tmp + o, nd > k ? d + nd - k : d, nd > k ? k : nd);
		o += nd > k ? k : nd;
		while (tmp[o - 1] == '0')
			o--;
		if (tmp[o - 1] == '.')
			o--;
	}
	tmp[o] = '\0';
	snprintf(buf, len, "%s", tmp);
	return buf;
}

/* --- names -------------------------------------------------------------------- */

/* Units that are not base units, and what they convert to. */
static const struct {
	const char *unit, *base;
	int scale;
} unit_map[] = {
    {"nanoseconds", "seconds", -9},  {"microseconds", "seconds", -6},
    {"milliseconds", "seconds", -3}, {"ns", "seconds", -9},
    {"us", "seconds", -6},	     {"ms", "seconds", -3},
    {"kilobytes", "bytes", 3},
};

/* Base unit and the scale of values in it. */
static const char *base_unit(const struct hitel_point *p, int *scale)
{
	size_t i;

	*scale = p->scale;
	if (!p->unit)
		return "";
	for (i = 0; i < sizeof(unit_map) / sizeof(unit_map[0]); i++) {
		if (strcmp(p->unit, unit_map[i].unit) == 0 && unit_map[i].scale) {
			*scale = p->scale + unit_map[i].scale;
			return unit_map[i].base;
		}
	}
	return p->unit;
}

/* Only physical base units become name suffixes; counts of things
 * (packets, operations, switches) read better without one, as in
 * node_exporter's node_network_receive_packets_total. */
static int unit_suffixed(const char *unit)
{
	static const char *const units[] = {"seconds", "bytes", "ratio",   "celsius", "joules",
					    "watts",   "volts", "amperes", "hertz",   "meters"};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(unit, units[i]) == 0)
			return 1;
	return 0;
}

static size_t append_sanitized(char *buf, size_t o, size_t len, const char *s)
{
	for (; *s && o + 1 < len; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			c = '_';
		buf[o++] = c;
	}
	buf[o] = '\0';
	return o;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n > m && s[n - m - 1] == '_' && memcmp(s + n - m, suffix, m) == 0;
}

/* "hitel_" + name + unit, without the counter's "_total". */
static size_t prom_base(const struct hitel_point *p, char *buf, size_t len, int *scale)
{
	const char *name = p->family, *unit = base_unit(p, scale);
	size_t o;

	o = append_sanitized(buf, 0, len, "hitel_");
	o = append_sanitized(buf, o, len, name);
	if (unit_suffixed(unit) && !ends_with(buf, o, unit)) {
		o = append_sanitized(buf, o, len, "_");
		o = append_sanitized(buf, o, len, unit);
	}
	return o;
}

const char *hitel_expose_prom_name(const struct hitel_point *p, char *buf, size_t len)
{
	int scale;
	size_t o;

	if (!len)
		return buf;
	o = prom_base(p, buf, len, &scale);
	if (p->kind == HITEL_KIND_COUNTER && !ends_with(buf, o, "total"))
		append_sanitized(buf, o, len, "_total");
	return buf;
}

/* --- output helpers --------------------------------------------------------- */

static void put_escaped(FILE *f, const char *s, int quote)
{
	for (; *s; s++) {
		switch (*s) {
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '"':
			if (quote) {
				fputs("\\\"", f);
				break;
			}
			/* fall through */
		default:
			putc(*s, f);
		}
	}
}

static void put_label_name(FILE *f, const char *name)
{
	const char *s;

	if (!*name) {
		putc('_', f);
		return;
	}
	if (strcmp(name, "le") == 0 || strcmp(name, "quantile") == 0)
		fputs("exported_", f);
	else if (*name >= '0' && *name <= '9')
		putc('_', f);
	for (s = name; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			c = '_';
		putc(c, f);
	}
}

/* {a="x",b="y"[,extra="v"]}, nothing when there are no labels at all.
 * prom: sanitise names for Prometheus; otherwise print them as they are. */
static void put_labels(FILE *f, const struct hitel_point *p, const char *extra,
		       const char *extra_value, int prom)
{
	size_t i;

	if (!p->nlabels && !extra)
		return;
	putc('{', f);
	for (i = 0; i < p->nlabels; i++) {
		if (i)
			putc(',', f);
		if (prom)
			put_label_name(f, p->labels[i].name);
		else
			put_escaped(f, p->labels[i].name, 1);
		fputs("=\"", f);
		put_escaped(f, p->labels[i].value ? p->labels[i].value : "", 1);
		putc('"', f);
	}
	if (extra) {
		if (p->nlabels)
			putc(',', f);
		fputs(extra, f);
		fputs("=\"", f);
		fputs(extra_value, f);
		putc('"', f);
	}
	putc('}', f);
}

static void put_decimal(FILE *f, uint64_t raw, int scale)
{
	char buf[64];

	fputs(hitel_expose_decimal(raw, scale, buf, sizeof(buf)), f);
}

static void put_u64(FILE *f, uint64_t v)
{
	char buf[24];

	u64_digits(v, buf);
	fputs(buf, f);
}

/* --- window lookup by series id -------------------------------------------------- */

struct winmap {
	const struct hitel_point **slot;
	size_t mask;
};

static int winmap_build(struct winmap *m, const struct hitel_snapshot *win)
{
	size_t n = win ? hitel_snapshot_len(win) : 0, cap = 16, i;

	m->slot = NULL;
	m->mask = 0;
	if (!n)
		return 0;
	while (cap < 2 * n)
		cap *= 2;
	m->slot = calloc(cap, sizeof(*m->slot));
	if (!m->slot)
		return -ENOMEM;
	m->mask = cap - 1;
	for (i = 0; i < n; i++) {
		const struct hitel_point *p = hitel_snapshot_point(win, i);
		size_t h = (size_t)p->id & m->mask;

		while (m->slot[h])
			h = (h + 1) & m->mask;
		m->slot[h] = p;
	}
	return 0;
}

/* The window's histogram of the cumulative point p, if it has samples. */
static const struct hitel_hist *winmap_hist(const struct winmap *m, const struct hitel_point *p)
{
	size_t h;

	if (!m->slot)
		return NULL;
	for (h = (size_t)p->id & m->mask; m->slot[h]; h = (h + 1) & m->mask) {
		const struct hitel_point *w = m->slot[h];

		if (w->id == p->id && strcmp(w->family, p->family) == 0)
			return w->hist && hitel_hist_count(w->hist) ? w->hist : NULL;
	}
	return NULL;
}

static int finish(FILE *f, struct winmap *m)
{
	free(m->slot);
	funlockfile(f);
	return ferror(f) ? -EIO : 0;
}

/* End of the run of points of the same family that starts at i. */
static size_t family_end(const struct hitel_snapshot *s, size_t i, size_t n)
{
	const char *fam = hitel_snapshot_point(s, i)->family;

	for (i++; i < n; i++) {
		const char *f2 = hitel_snapshot_point(s, i)->family;

		if (f2 != fam && strcmp(f2, fam) != 0)
			break;
	}
	return i;
}

/* --- Prometheus ------------------------------------------------------------- */

/* Names already emitted in this exposition, by 64-bit FNV-1a hash. Two
 * canonical names that sanitise alike ("a/b" and "a_b") would otherwise give
 * a family twice, which scrapers reject whole. */
struct nameset {
	uint64_t *h;
	size_t mask;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h | 1; /* 0 marks a free slot */
}

/* 1 if name was new (and is now taken), 0 if already emitted. */
static int nameset_take(struct nameset *ns, const char *name)
{
	uint64_t h = fnv1a(name);
	size_t i;

	for (i = (size_t)h & ns->mask; ns->h[i]; i = (i + 1) & ns->mask)
		if (ns->h[i] == h)
			return 0;
	ns->h[i] = h;
	return 1;
}

static void warn_collision(const char *family, const char *name)
{
	static int warned;

	if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		hitel_log(HITEL_LOG_WARNING, "expose",
			  "family %s maps to Prometheus name %s, already taken: left out", family,
			  name);
}

/* Upper bound of bucket i at grouping power g (the bucket function's
 * inverse). */
static uint64_t coarse_upper(unsigned int i, unsigned int g)
{
	unsigned int p, off;
	uint64_t lower;

	if (i < (2u << g))
		return i;
	p = (i >> g) + g - 1;
	off = i & ((1u << g) - 1);
	lower = (1ULL << p) + ((uint64_t)off << (p - g));
	return lower + ((1ULL << (p - g)) - 1);
}

static void prom_header(FILE *f, const char *name, const struct hitel_point *p, const char *type,
			const char *what)
{
	fputs("# HELP ", f);
	fputs(name, f);
	putc(' ', f);
	put_escaped(f, p->help && *p->help ? p->help : p->family, 0);
	if (what)
		fputs(what, f);
	fputs("\n# TYPE ", f);
	fputs(name, f);
	putc(' ', f);
	fputs(type, f);
	putc('\n', f);
}

static void prom_bucket(FILE *f, const char *name, const struct hitel_point *p, const char *le,
			uint64_t cum)
{
	fputs(name, f);
	fputs("_bucket", f);
	put_labels(f, p, "le", le, 1);
	putc(' ', f);
	put_u64(f, cum);
	putc('\n', f);
}

static void prom_histogram(FILE *f, const char *name, const struct hitel_point *p, int scale,
			   const struct hitel_export_opts *o)
{
	const struct hitel_hist *h = p->hist;
	struct hitel_hist_bucket b;
	unsigned int cursor = 0, g2, cur = 0;
	uint64_t cum = 0, upper = 0, count = h ? hitel_hist_count(h) : p->value;
	char le[64];
	int have = 0;

	if (h) {
		g2 = hitel_hist_grouping_power(h);
		if (o->bucket_grouping_power < g2)
			g2 = o->bucket_grouping_power;
		/* Fine buckets nest in coarse ones: merge runs that share a
		 * coarse index, emitting cumulative counts as they close. */
		while (o->buckets && hitel_hist_next(h, &cursor, &b)) {
			unsigned int ci = hitel_bucket_index(b.lower, g2);

			if (have && ci != cur)
				prom_bucket(f, name, p,
					    hitel_expose_decimal(upper, scale, le, sizeof(le)),
					    cum);
			if (!have || ci != cur) {
				cur = ci;
				upper = coarse_upper(ci, g2);
				have = 1;
			}
			if (b.upper > upper)
				upper = b.upper; /* the clamped top bucket */
			cum += b.count;
		}
		if (have)
			prom_bucket(f, name, p, hitel_expose_decimal(upper, scale, le, sizeof(le)),
				    cum);
	}
	prom_bucket(f, name, p, "+Inf", count);
	fputs(name, f);
	fputs("_sum", f);
	put_labels(f, p, NULL, NULL, 1);
	putc(' ', f);
	put_decimal(f, h ? hitel_hist_sum(h) : 0, scale);
	putc('\n', f);
	fputs(name, f);
	fputs("_count", f);
	put_labels(f, p, NULL, NULL, 1);
	putc(' ', f);
	put_u64(f, count);
	putc('\n', f);
}

/* The summary family of a counter's rates or a gauge's values. */
static void prom_summary(FILE *f, const struct hitel_snapshot *cum, size_t a, size_t b,
			 const struct winmap *m, const struct hitel_export_opts *o,
			 struct nameset *ns)
{
	const struct hitel_point *p0 = hitel_snapshot_point(cum, a);
	int counter = p0->kind == HITEL_KIND_COUNTER, scale;
	char name[256], qs[HITEL_EXPORT_MAX_PERCENTILES][32];
	uint64_t qv[HITEL_EXPORT_MAX_PERCENTILES];
	size_t i, j, n;

	for (i = a; i < b; i++)
		if (hitel_snapshot_point(cum, i)->hist)
			break;
	if (i == b)
		return;
	n = prom_base(p0, name, sizeof(name) - 8, &scale);
	snprintf(name + n, sizeof(name) - n, counter ? "_rate" : "_dist");
	if (!nameset_take(ns, name)) {
		warn_collision(p0->family, name);
		return;
	}
	prom_header(f, name, p0, "summary",
		    counter ? " (per-second rate, quantiles over the last window)"
			    : " (distribution of samples, quantiles over the last window)");
	for (j = 0; j < o->nq; j++)
		snprintf(qs[j], sizeof(qs[j]), "%g", o->q[j]);
	for (i = a; i < b; i++) {
		const struct hitel_point *p = hitel_snapshot_point(cum, i);
		const struct hitel_hist *wh;

		if (!p->hist)
			continue;
		wh = winmap_hist(m, p);
		if (wh && o->nq) {
			hitel_hist_quantiles(wh, o->q, o->nq, qv);
			for (j = 0; j < o->nq; j++) {
				fputs(name, f);
				put_labels(f, p, "quantile", qs[j], 1);
				putc(' ', f);
				put_decimal(f, qv[j], scale);
				putc('\n', f);
			}
		}
		fputs(name, f);
		fputs("_sum", f);
		put_labels(f, p, NULL, NULL, 1);
		putc(' ', f);
		put_decimal(f, hitel_hist_sum(p->hist), scale);
		putc('\n', f);
		fputs(name, f);
		fputs("_count", f);
		put_labels(f, p, NULL, NULL, 1);
		putc(' ', f);
		put_u64(f, hitel_hist_count(p->hist));
		putc('\n', f);
	}
}

int hitel_expose_prometheus(FILE *f, const struct hitel_snapshot *cum,
			    const struct hitel_snapshot *win, const struct hitel_export_opts *o)
{
	size_t i, n = cum ? hitel_snapshot_len(cum) : 0, cap = 16;
	struct nameset ns;
	struct winmap m;
	int err;

	if (!f || !o)
		return -EINVAL;
	while (cap < 4 * n)
		cap *= 2;
	ns.h = calloc(cap, sizeof(*ns.h));
	ns.mask = cap - 1;
	if (!ns.h)
		return -ENOMEM;
	err = winmap_build(&m, win);
	if (err) {
		free(ns.h);
		return err;
	}
	flockfile(f);
	for (i = 0; i < n;) {
		const struct hitel_point *p0 = hitel_snapshot_point(cum, i);
		size_t end = family_end(cum, i, n), j;
		char name[256];
		int scale;

		if (p0->kind == HITEL_KIND_HISTOGRAM)
			prom_base(p0, name, sizeof(name), &scale);
		else
			hitel_expose_prom_name(p0, name, sizeof(name));
		if (!nameset_take(&ns, name)) {
			warn_collision(p0->family, name);
		} else if (p0->kind == HITEL_KIND_HISTOGRAM) {
			prom_header(f, name, p0, "histogram", NULL);
			for (j = i; j < end; j++)
				prom_histogram(f, name, hitel_snapshot_point(cum, j), scale, o);
		} else {
			base_unit(p0, &scale);
			prom_header(f, name, p0,
				    p0->kind == HITEL_KIND_COUNTER ? "counter" : "gauge", NULL);
			for (j = i; j < end; j++) {
				const struct hitel_point *p = hitel_snapshot_point(cum, j);

				fputs(name, f);
				put_labels(f, p, NULL, NULL, 1);
				putc(' ', f);
				put_decimal(f, p->value, scale);
				putc('\n', f);
			}
			prom_summary(f, cum, i, end, &m, o, &ns);
		}
		i = end;
	}
	free(ns.h);
	return finish(f, &m);
}

/* --- /vars ------------------------------------------------------------------ */

static void vars_line(FILE *f, const struct hitel_point *p, const char *suffix, const char *q,
		      uint64_t raw, int scale, int integer)
{
	fputs(p->family, f);
	if (suffix)
		fputs(suffix, f);
	if (q) {
		putc('/', f);
		fputs(q, f);
	}
	put_labels(f, p, NULL, NULL, 0);
	putc(' ', f);
	if (integer)
		put_u64(f, raw);
	else
		put_decimal(f, raw, scale);
	putc('\n', f);
}

int hitel_expose_vars(FILE *f, const struct hitel_snapshot *cum, const struct hitel_snapshot *win,
		      const struct hitel_export_opts *o)
{
	char ql[HITEL_EXPORT_MAX_PERCENTILES][16];
	uint64_t qv[HITEL_EXPORT_MAX_PERCENTILES];
	size_t i, j, n = cum ? hitel_snapshot_len(cum) : 0;
	struct winmap m;
	int err;

	if (!f || !o)
		return -EINVAL;
	err = winmap_build(&m, win);
	if (err)
		return err;
	for (j = 0; j < o->nq; j++)
		hitel_quantile_label(o->q[j], ql[j], sizeof(ql[j]));
	flockfile(f);
	for (i = 0; i < n; i++) {
		const struct hitel_point *p = hitel_snapshot_point(cum, i);
		const struct hitel_hist *wh = winmap_hist(&m, p);
		const char *qsuffix = NULL;
		int scale;

		base_unit(p, &scale);
		if (p->kind == HITEL_KIND_HISTOGRAM) {
			vars_line(f, p, "/count", NULL,
				  p->hist ? hitel_hist_count(p->hist) : p->value, 0, 1);
			vars_line(f, p, "/sum", NULL, p->hist ? hitel_hist_sum(p->hist) : 0, scale,
				  0);
		} else {
			vars_line(f, p, NULL, NULL, p->value, scale, 0);
			if (p->kind == HITEL_KIND_COUNTER)
				qsuffix = "/rate";
		}
		if (!wh)
			continue;
		hitel_hist_quantiles(wh, o->q, o->nq, qv);
		for (j = 0; j < o->nq; j++)
			vars_line(f, p, qsuffix, ql[j], qv[j], scale, 0);
	}
	return finish(f, &m);
}

/* --- /vars.json ------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
	putc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
		} else if (c < 0x20) {
			fprintf(f, "\\u%04x", c);
		} else {
			putc(c, f);
		}
	}
	putc('"', f);
}

static const char *kind_name(enum hitel_kind k)
{
	switch (k) {
	case HITEL_KIND_COUNTER:
		return "counter";
	case HITEL_KIND_GAUGE:
		return "gauge";
	case HITEL_KIND_HISTOGRAM:
		return "histogram";
	}
	return "unknown";
}

int hitel_expose_json(FILE *f, const struct hitel_snapshot *cum, const struct hitel_snapshot *win,
		      const struct hitel_export_opts *o)
{
	char ql[HITEL_EXPORT_MAX_PERCENTILES][16];
	uint64_t qv[HITEL_EXPORT_MAX_PERCENTILES];
	size_t i, j, k, n = cum ? hitel_snapshot_len(cum) : 0;
	struct winmap m;
	int err;

	if (!f || !o)
		return -EINVAL;
	err = winmap_build(&m, win);
	if (err)
		return err;
	for (j = 0; j < o->nq; j++)
		hitel_quantile_label(o->q[j], ql[j], sizeof(ql[j]));
	flockfile(f);
	fputs("{\"window_seconds\":", f);
	if (win)
		fprintf(f, "%.3f",
			(double)(hitel_snapshot_time(win) - hitel_snapshot_start(win)) / 1e9);
	else
		fputs("null", f);
	fputs(",\"metrics\":[", f);
	for (i = 0; i < n; i++) {
		const struct hitel_point *p = hitel_snapshot_point(cum, i);
		const struct hitel_hist *wh = winmap_hist(&m, p);
		const char *unit;
		int scale;

		unit = base_unit(p, &scale);
		fputs(i ? ",\n{\"name\":" : "\n{\"name\":", f);
		json_string(f, p->family);
		fputs(",\"kind\":", f);
		json_string(f, kind_name(p->kind));
		fputs(",\"unit\":", f);
		json_string(f, unit);
		fputs(",\"labels\":{", f);
		for (k = 0; k < p->nlabels; k++) {
			if (k)
				putc(',', f);
			json_string(f, p->labels[k].name);
			putc(':', f);
			json_string(f, p->labels[k].value);
		}
		putc('}', f);
		if (p->kind == HITEL_KIND_HISTOGRAM) {
			fputs(",\"count\":", f);
			put_u64(f, p->hist ? hitel_hist_count(p->hist) : p->value);
			fputs(",\"sum\":", f);
			put_decimal(f, p->hist ? hitel_hist_sum(p->hist) : 0, scale);
		} else {
			fputs(",\"value\":", f);
			put_decimal(f, p->value, scale);
		}
		if (wh && o->nq) {
			hitel_hist_quantiles(wh, o->q, o->nq, qv);
			fputs(",\"percentiles\":{", f);
			for (j = 0; j < o->nq; j++) {
				if (j)
					putc(',', f);
				json_string(f, ql[j]);
				putc(':', f);
				put_decimal(f, qv[j], scale);
			}
			putc('}', f);
		}
		putc('}', f);
	}
	fputs("\n]}\n", f);
	return finish(f, &m);
}
