/* SPDX-License-Identifier: MIT */
/*
 * collectd plugin "hitel": runs the hitel oversampling engine inside collectd
 * and dispatches, once per collectd interval, the last complete window of
 * the engine as collectd values (distributions flattened into percentiles,
 * counters as cumulative DERIVE values), plus notifications when a sampler
 * goes down or comes back. docs/collectd.md is the reference for options and
 * for the value mapping.
 *
 * Threads. The engine's sampling thread is created through
 * plugin_thread_create() (hitel_engine_set_thread_create), so it carries the
 * plugin context. It still never calls collectd's dispatch functions: it only
 * logs and queues status changes under a mutex. Everything that needs collectd's per-plugin context (the interval
 * of plugin_dispatch_values, notifications) runs on collectd's read thread
 * in hitel_read(), where the daemon has set our context. So the engine
 * thread needs no plugin context, and core/ stays free of collectd headers.
 *
 * This file must not include the project's config.h: collectd's own
 * config.h (pulled in by collectd.h) defines the same PACKAGE* macros.
 */
#include <collectd/core/daemon/collectd.h>
#include <collectd/core/daemon/configfile.h>
#include <collectd/core/daemon/plugin.h>
#include <collectd/core/daemon/utils_time.h>
#include <collectd/core/utils/common/common.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conffile.h"
#include "engine.h"
#include "export.h"
#include "hist.h"
#include "log.h"
#include "registry.h"

#define HC_PLUGIN "hitel"
#define HC_NAME_LEN DATA_MAX_NAME_LEN
#define HC_QUEUE_LEN 64
#define HC_VALUE_LEN 1024

/* A sampler's status change, copied off the engine thread. */
struct hc_event {
	char name[64];
	int up;
	char reason[200];
	cdtime_t time;
};

/* Per-series state kept between windows, keyed by the series' stable id. */
struct hc_series {
	uint64_t id;
	uint64_t updated_ns; /* updated_ns of the last window seen */
	uint64_t total;	     /* counter increase / histogram count since start */
	uint64_t sum;	     /* histogram sum since start */
	int used;
};

/* Sampler status as last notified (unknown samplers count as up). */
struct hc_known {
	char name[64];
	int up;
};

static struct {
	struct hitel_config *cfg; /* entries of every <Plugin hitel> block, until init */
	struct hitel_engine *engine;
	struct hitel_export_opts opts;
	int started;
	uint64_t window_ns;
	cdtime_t interval;
	uint64_t last_end_ns; /* realtime end of the last window dispatched (0: none) */
	uint64_t last_mono;   /* its snapshot time: identifies it */

	struct hc_series *series;
	size_t series_cap, series_len;

	pthread_mutex_t qlock;
	struct hc_event queue[HC_QUEUE_LEN];
	size_t qlen;
	uint64_t qdropped;

	struct hc_known *known;
	size_t nknown;

	/* self-telemetry of the plugin: read callback cost and windows */
	uint64_t reads, missed_windows, values; /* reads: those that dispatched a window */
	uint64_t read_ns_sum, read_ns_max, read_ns_last;
} hc = {
	.qlock = PTHREAD_MUTEX_INITIALIZER,
};

/* ---- logging ------------------------------------------------------------ */

static void hc_log(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	/* hitel's levels are syslog's, like collectd's LOG_* */
	plugin_log((int)level, "%s", msg);
}

/* ---- identifiers ---------------------------------------------------------- */

static uint32_t hc_fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * Copy src into dst (DATA_MAX_NAME_LEN) with every character outside
 * [A-Za-z0-9_.-] turned into '_' (collectd forbids '/', and Graphite and
 * Prometheus names are stricter still). A name too long is cut and ends with
 * a hash of the whole name, so two long names stay distinct.
 */
static void hc_sanitize(char *dst, const char *src)
{
	size_t n = strlen(src), i, keep = n;

	if (n >= HC_NAME_LEN)
		keep = HC_NAME_LEN - 1 - 9;
	for (i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = (isalnum(c) || c == '_' || c == '-' || c == '.') ? (char)c : '_';
	}
	if (keep < n)
		snprintf(dst + keep, HC_NAME_LEN - keep, "_%08" PRIx32, hc_fnv1a(src));
	else
		dst[keep] = '\0';
}

/* Append to a bounded string (truncates; hc_sanitize handles length). */
static void hc_append(char *buf, size_t len, const char *s)
{
	size_t n = strlen(buf);

	if (n + 1 < len)
		snprintf(buf + n, len - n, "%s", s);
}

/*
 * plugin_instance = family's first path element and the label values, joined
 * with '-'; "thing" = the rest of the family path with '/' as '_'.
 * "block/io/latency" {device=vda, op=read} -> "block-vda-read", "io_latency".
 */
static void hc_names(const struct hitel_point *p, char *pi, char *thing)
{
	char raw[4 * HC_NAME_LEN];
	const char *slash = strchr(p->family, '/');
	size_t i;

	raw[0] = '\0';
	if (slash)
		snprintf(raw, sizeof(raw), "%.*s", (int)(slash - p->family), p->family);
	else
		snprintf(raw, sizeof(raw), "%s", p->family);
	for (i = 0; i < p->nlabels; i++) {
		hc_append(raw, sizeof(raw), "-");
		hc_append(raw, sizeof(raw), p->labels[i].value);
	}
	hc_sanitize(pi, raw);

	snprintf(raw, sizeof(raw), "%s", slash ? slash + 1 : "");
	for (i = 0; raw[i]; i++)
		if (raw[i] == '/')
			raw[i] = '_';
	hc_sanitize(thing, raw);
}

/* ---- types and units ------------------------------------------------------ */

/*
 * Stock types.db types by family unit. Counters go out cumulative as DERIVE
 * (integers: cum_exp is the decimal exponent of the dispatched integer in
 * the base unit; INT32_MIN keeps the family's own stored scale). Values
 * (gauges, percentiles of gauges and histograms) go out as GAUGE in the base
 * unit.
 */
struct hc_unit_map {
	const char *unit;
	const char *cum_type;
	int cum_exp;
	const char *value_type;
};

static const struct hc_unit_map hc_units[] = {
	{ "bytes", "total_bytes", 0, "bytes" },
	{ "seconds", "total_time_in_ms", -3, "duration" },
	{ "packets", "packets", 0, "gauge" },
	{ NULL, "derive", INT32_MIN, "gauge" },
};

static const struct hc_unit_map *hc_unit(const char *unit)
{
	size_t i;

	for (i = 0; hc_units[i].unit; i++)
		if (unit && strcmp(unit, hc_units[i].unit) == 0)
			return &hc_units[i];
	return &hc_units[i];
}

/* v * 10^(from - to), as an integer (floor when scaling down). */
static uint64_t hc_rescale(uint64_t v, int from, int to)
{
	int d = from - to;

	for (; d > 0; d--)
		v *= 10;
	for (; d < 0; d++)
		v /= 10;
	return v;
}

/* ---- per-series state ----------------------------------------------------- */

static struct hc_series *hc_series_get(uint64_t id)
{
	size_t mask, i;

	if (hc.series_len * 2 >= hc.series_cap) {
		size_t ncap = hc.series_cap ? hc.series_cap * 2 : 256, j;
		struct hc_series *n = calloc(ncap, sizeof(*n));

		if (!n)
			return NULL;
		for (j = 0; j < hc.series_cap; j++) {
			if (!hc.series[j].used)
				continue;
			for (i = hc.series[j].id & (ncap - 1); n[i].used; i = (i + 1) & (ncap - 1))
				;
			n[i] = hc.series[j];
		}
		free(hc.series);
		hc.series = n;
		hc.series_cap = ncap;
	}
	mask = hc.series_cap - 1;
	for (i = id & mask; hc.series[i].used; i = (i + 1) & mask)
		if (hc.series[i].id == id)
			return &hc.series[i];
	hc.series[i].used = 1;
	hc.series[i].id = id;
	hc.series_len++;
	return &hc.series[i];
}

/* ---- dispatch ------------------------------------------------------------- */

struct hc_out {
	cdtime_t time;
	cdtime_t interval;
	const char *pi;
};

static void hc_submit(const struct hc_out *o, const char *type, const char *thing,
		      const char *suffix, value_t v)
{
	value_list_t vl = VALUE_LIST_INIT;
	char ti[2 * HC_NAME_LEN];

	if (thing[0] && suffix)
		snprintf(ti, sizeof(ti), "%s-%s", thing, suffix);
	else
		snprintf(ti, sizeof(ti), "%s", thing[0] ? thing : (suffix ? suffix : ""));

	vl.values = &v;
	vl.values_len = 1;
	vl.time = o->time;
	vl.interval = o->interval;
	sstrncpy(vl.host, hostname_g, sizeof(vl.host));
	sstrncpy(vl.plugin, HC_PLUGIN, sizeof(vl.plugin));
	sstrncpy(vl.plugin_instance, o->pi, sizeof(vl.plugin_instance));
	sstrncpy(vl.type, type, sizeof(vl.type));
	hc_sanitize(vl.type_instance, ti);
	plugin_dispatch_values(&vl);
	hc.values++;
}

static void hc_submit_gauge(const struct hc_out *o, const char *type, const char *thing,
			    const char *suffix, double g)
{
	value_t v = { .gauge = g };

	hc_submit(o, type, thing, suffix, v);
}

static void hc_submit_derive(const struct hc_out *o, const char *type, const char *thing,
			     const char *suffix, uint64_t d)
{
	value_t v = { .derive = (derive_t)d };

	hc_submit(o, type, thing, suffix, v);
}

/* The configured percentiles of h, each scaled by mul, as type/thing-pXX. */
static void hc_submit_percentiles(const struct hc_out *o, const char *type, const char *thing,
				  const struct hitel_hist *h, double mul)
{
	uint64_t q[HITEL_EXPORT_MAX_PERCENTILES];
	char label[32];
	size_t i;

	hitel_hist_quantiles(h, hc.opts.q, hc.opts.nq, q);
	for (i = 0; i < hc.opts.nq; i++)
		hc_submit_gauge(o, type, thing,
				hitel_quantile_label(hc.opts.q[i], label, sizeof(label)),
				(double)q[i] * mul);
}

/* v * 10^scale in plain decimal, exactly ("0.000131071", not 1.31071e-04):
 * the bound becomes part of a type_instance. */
static void hc_decimal(uint64_t v, int scale, char *buf, size_t len)
{
	uint64_t div = 1;
	int d;

	if (scale >= 0) {
		snprintf(buf, len, "%" PRIu64, hc_rescale(v, scale, 0));
		return;
	}
	for (d = 0; d < -scale && d < 19; d++)
		div *= 10;
	if (v % div == 0) {
		snprintf(buf, len, "%" PRIu64, v / div);
		return;
	}
	snprintf(buf, len, "%" PRIu64 ".%0*" PRIu64, v / div, d, v % div);
	for (d = (int)strlen(buf); buf[d - 1] == '0'; d--)
		buf[d - 1] = '\0';
}

/* Window counts at or below each bucket's upper bound ("count", le-<bound>
 * in the base unit), at the exported grouping power; only bounds of
 * non-empty buckets, then le-inf with the window's total. */
static void hc_submit_buckets(const struct hc_out *o, const char *thing, const struct hitel_hist *h,
			      int scale)
{
	struct hitel_hist *coarse = NULL;
	const struct hitel_hist *src = h;
	struct hitel_hist_bucket b;
	unsigned int cursor = 0;
	uint64_t cum = 0;
	char le[64];

	if (hitel_hist_grouping_power(h) > hc.opts.bucket_grouping_power) {
		coarse = hitel_hist_downsample(h, hc.opts.bucket_grouping_power);
		if (coarse)
			src = coarse;
	}
	while (hitel_hist_next(src, &cursor, &b)) {
		cum += b.count;
		memcpy(le, "le-", 3);
		hc_decimal(b.upper, scale, le + 3, sizeof(le) - 3);
		hc_submit_gauge(o, "count", thing, le, (double)cum);
	}
	hc_submit_gauge(o, "count", thing, "le-inf", (double)hitel_hist_count(src));
	hitel_hist_free(coarse);
}

static void hc_dispatch_point(const struct hitel_point *p, cdtime_t time, cdtime_t interval)
{
	const struct hc_unit_map *u = hc_unit(p->unit);
	const struct hitel_hist *h = p->hist;
	char pi[HC_NAME_LEN], thing[HC_NAME_LEN];
	struct hc_out o = { .time = time, .interval = interval, .pi = pi };
	struct hc_series *s;
	double mul = pow(10.0, p->scale);
	int cum_exp;

	s = hc_series_get(p->id);
	if (!s)
		return;
	/* Not updated inside this window (sampler down, device gone): send
	 * nothing rather than repeat a stale value. */
	if (p->updated_ns == 0 || p->updated_ns == s->updated_ns)
		return;
	s->updated_ns = p->updated_ns;

	hc_names(p, pi, thing);
	cum_exp = u->cum_exp == INT32_MIN ? p->scale : u->cum_exp;

	switch (p->kind) {
	case HITEL_KIND_COUNTER:
		s->total += p->value;
		hc_submit_derive(&o, u->cum_type, thing, NULL,
				 hc_rescale(s->total, p->scale, cum_exp));
		/* The oversampled per-second rates, base unit per second. */
		if (h && hitel_hist_count(h))
			hc_submit_percentiles(&o, "gauge", thing, h, mul);
		break;
	case HITEL_KIND_GAUGE:
		hc_submit_gauge(&o, u->value_type, thing, NULL, (double)p->value * mul);
		if (h && hitel_hist_count(h))
			hc_submit_percentiles(&o, u->value_type, thing, h, mul);
		break;
	case HITEL_KIND_HISTOGRAM:
		if (!h)
			break;
		s->total += hitel_hist_count(h);
		s->sum += hitel_hist_sum(h);
		hc_submit_derive(&o, "derive", thing, "count", s->total);
		hc_submit_derive(&o, u->cum_type, thing, "sum",
				 hc_rescale(s->sum, p->scale, cum_exp));
		if (hitel_hist_count(h)) {
			hc_submit_percentiles(&o, u->value_type, thing, h, mul);
			if (hc.opts.buckets)
				hc_submit_buckets(&o, thing, h, p->scale);
		}
		break;
	}
}

/* ---- notifications -------------------------------------------------------- */

/* Engine thread: copy and queue; hitel_read() dispatches. */
static void hc_on_status(const struct hitel_sampler_status *st, void *ctx)
{
	struct hc_event *ev;

	(void)ctx;
	pthread_mutex_lock(&hc.qlock);
	if (hc.qlen == HC_QUEUE_LEN) {
		hc.qdropped++;
	} else {
		ev = &hc.queue[hc.qlen++];
		sstrncpy(ev->name, st->name ? st->name : "?", sizeof(ev->name));
		ev->up = st->up;
		sstrncpy(ev->reason, st->reason, sizeof(ev->reason));
		ev->time = cdtime();
	}
	pthread_mutex_unlock(&hc.qlock);
}

static struct hc_known *hc_known_get(const char *name)
{
	struct hc_known *k;
	size_t i;

	for (i = 0; i < hc.nknown; i++)
		if (strcmp(hc.known[i].name, name) == 0)
			return &hc.known[i];
	k = realloc(hc.known, (hc.nknown + 1) * sizeof(*k));
	if (!k)
		return NULL;
	hc.known = k;
	k = &hc.known[hc.nknown++];
	sstrncpy(k->name, name, sizeof(k->name));
	k->up = 1;
	return k;
}

static void hc_notify(const struct hc_event *ev)
{
	notification_t n = {
		.severity = ev->up ? NOTIF_OKAY : NOTIF_FAILURE,
		.time = ev->time,
	};
	struct hc_known *k = hc_known_get(ev->name);

	/* Only changes: a sampler found down by the poll after start and then
	 * reported down by the engine is notified once. */
	if (!k || k->up == ev->up)
		return;
	k->up = ev->up;
	if (ev->up)
		snprintf(n.message, sizeof(n.message), "hitel sampler '%.63s' is up again",
			 ev->name);
	else
		/* Cut the reason to fit NOTIF_MAX_MSG_LEN. */
		snprintf(n.message, sizeof(n.message), "hitel sampler '%.48s' is down: %.180s",
			 ev->name, ev->reason[0] ? ev->reason : "no reason given");
	sstrncpy(n.host, hostname_g, sizeof(n.host));
	sstrncpy(n.plugin, HC_PLUGIN, sizeof(n.plugin));
	hc_sanitize(n.plugin_instance, ev->name);
	sstrncpy(n.type, "gauge", sizeof(n.type));
	sstrncpy(n.type_instance, "up", sizeof(n.type_instance));
	plugin_dispatch_notification(&n);
}

static void hc_flush_notifications(void)
{
	struct hc_event evs[HC_QUEUE_LEN];
	uint64_t dropped;
	size_t n, i;

	pthread_mutex_lock(&hc.qlock);
	n = hc.qlen;
	memcpy(evs, hc.queue, n * sizeof(evs[0]));
	hc.qlen = 0;
	dropped = hc.qdropped;
	hc.qdropped = 0;
	pthread_mutex_unlock(&hc.qlock);

	if (dropped)
		WARNING("hitel plugin: %" PRIu64 " sampler status changes dropped (queue full)",
			dropped);
	for (i = 0; i < n; i++)
		hc_notify(&evs[i]);
}

/* Samplers whose init failed inside hitel_engine_start(): queue them like
 * the engine's own reports (hc_notify drops duplicates). */
static void hc_poll_status(void)
{
	struct hitel_sampler_status st;
	size_t i, n = hitel_engine_sampler_count(hc.engine);

	for (i = 0; i < n; i++) {
		memset(&st, 0, sizeof(st));
		if (hitel_engine_sampler_status(hc.engine, i, &st) == 0 && !st.up)
			hc_on_status(&st, NULL);
	}
}

/* ---- read ----------------------------------------------------------------- */

/*
 * The engine stamps a window with the monotonic time of the snapshot it took
 * on its first tick after a realtime multiple of the window length. Map that
 * back to the multiple: values carry aligned times (:00, :10, ...).
 */
static uint64_t hc_window_end(const struct hitel_snapshot *w)
{
	uint64_t mono = hitel_now_ns(), rt = hitel_realtime_ns(), t = hitel_snapshot_time(w);

	if (t < mono)
		rt -= mono - t;
	return rt / hc.window_ns * hc.window_ns;
}

/*
 * The newest complete window. collectd schedules reads on its own clock, so
 * a read may come just after a window boundary but before the engine's next
 * tick has published that window; wait for it (bounded: a tick at
 * SampleRate >= 10 comes within 100 ms) rather than skip it and lose it when
 * the next one replaces it.
 */
static struct hitel_snapshot *hc_window(void)
{
	uint64_t deadline = hitel_now_ns() + 250000000ull;
	struct hitel_snapshot *w;

	for (;;) {
		w = hitel_engine_window(hc.engine, hc.window_ns);
		if (!w)
			return NULL;
		if (hitel_snapshot_time(w) != hc.last_mono ||
		    hitel_realtime_ns() < hc.last_end_ns + hc.window_ns ||
		    hitel_now_ns() >= deadline)
			return w;
		hitel_snapshot_free(w);
		{
			struct timespec ts = { 0, 5000000 };

			nanosleep(&ts, NULL);
		}
	}
}

static void hc_submit_self(cdtime_t time)
{
	struct hc_out o = { .time = time, .interval = hc.interval, .pi = "hitel" };

	if (hc.reads)
		hc_submit_gauge(&o, "duration", "collectd_read", NULL,
				(double)hc.read_ns_last * 1e-9);
	hc_submit_derive(&o, "derive", "collectd_windows_missed", NULL, hc.missed_windows);
}

static int hitel_read(user_data_t *ud)
{
	uint64_t t0 = hitel_now_ns(), end, dt;
	struct hitel_snapshot *w;
	cdtime_t time;
	size_t i, n;

	(void)ud;
	hc_flush_notifications();

	w = hc_window();
	if (!w) {
		if (errno == EAGAIN)
			return 0; /* no window has completed yet */
		ERROR("hitel plugin: cannot get the engine window: %s", STRERRNO);
		return -1;
	}
	/* Each window once: the snapshot's own time identifies it. */
	if (hitel_snapshot_time(w) == hc.last_mono) {
		hitel_snapshot_free(w);
		return 0;
	}
	end = hc_window_end(w);
	if (hc.last_end_ns && end > hc.last_end_ns + hc.window_ns)
		hc.missed_windows += (end - hc.last_end_ns) / hc.window_ns - 1;
	hc.last_mono = hitel_snapshot_time(w);
	hc.last_end_ns = end;

	time = NS_TO_CDTIME_T(end);
	n = hitel_snapshot_len(w);
	for (i = 0; i < n; i++)
		hc_dispatch_point(hitel_snapshot_point(w, i), time, hc.interval);
	hitel_snapshot_free(w);
	hc_submit_self(time);

	dt = hitel_now_ns() - t0;
	hc.reads++;
	hc.read_ns_last = dt;
	hc.read_ns_sum += dt;
	if (dt > hc.read_ns_max)
		hc.read_ns_max = dt;
	return 0;
}

/* ---- configuration -------------------------------------------------------- */

/* "SampleRate" -> "sample_rate", "BucketGroupingPower" ->
 * "bucket_grouping_power", "IOSize" -> "io_size". */
static void hc_snake(const char *camel, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; camel[i] && o + 2 < len; i++) {
		unsigned char c = (unsigned char)camel[i];

		if (isupper(c) && i > 0 &&
		    (islower((unsigned char)camel[i - 1]) || isdigit((unsigned char)camel[i - 1]) ||
		     (isupper((unsigned char)camel[i - 1]) &&
		      islower((unsigned char)camel[i + 1]))))
			out[o++] = '_';
		out[o++] = (char)tolower(c);
	}
	out[o] = '\0';
}

static void hc_value_str(const oconfig_value_t *v, char *buf, size_t len)
{
	switch (v->type) {
	case OCONFIG_TYPE_STRING:
		snprintf(buf, len, "%s", v->value.string);
		break;
	case OCONFIG_TYPE_NUMBER:
		snprintf(buf, len, "%.15g", v->value.number);
		break;
	case OCONFIG_TYPE_BOOLEAN:
		snprintf(buf, len, "%s", v->value.boolean ? "true" : "false");
		break;
	default:
		buf[0] = '\0';
	}
}

/*
 * One <Plugin hitel> child into the shared vocabulary. oconfig items carry no
 * file name or line number in collectd 5.12, so entries are "located" as
 * "<Plugin hitel>" or "<Plugin hitel> <Sampler \"x\">" and their position in
 * that block (1 = first option), which the core's messages print as
 * file:line.
 */
static int hc_cfg_item(const oconfig_item_t *ci, unsigned int pos)
{
	char key[128], val[HC_VALUE_LEN], one[HC_VALUE_LEN], where[160];
	const char *name;
	int i, j, rc;

	if (strcasecmp(ci->key, "Sampler") != 0) {
		if (ci->children_num || ci->values_num < 1) {
			ERROR("hitel plugin: <Plugin hitel>:%u: option '%s' needs a value "
			      "(the only block is <Sampler \"name\">)",
			      pos, ci->key);
			return -1;
		}
		/* Several values make a list: Samplers "default" "-perf",
		 * Percentiles 50 99 100. */
		val[0] = '\0';
		for (i = 0; i < ci->values_num; i++) {
			hc_value_str(&ci->values[i], one, sizeof(one));
			if (i)
				hc_append(val, sizeof(val), " ");
			hc_append(val, sizeof(val), one);
		}
		hc_snake(ci->key, key, sizeof(key));
		return hitel_config_add(hc.cfg, NULL, key, val, "<Plugin hitel>", pos);
	}

	if (ci->values_num != 1 || ci->values[0].type != OCONFIG_TYPE_STRING) {
		ERROR("hitel plugin: <Plugin hitel>:%u: <Sampler> needs one sampler name: "
		      "<Sampler \"name\">",
		      pos);
		return -1;
	}
	name = ci->values[0].value.string;
	snprintf(where, sizeof(where), "<Plugin hitel> <Sampler \"%.64s\">", name);
	if (hitel_config_add(hc.cfg, name, NULL, NULL, where, 0) < 0)
		return -1;
	for (i = 0; i < ci->children_num; i++) {
		const oconfig_item_t *c = &ci->children[i];

		if (c->children_num || c->values_num < 1) {
			ERROR("hitel plugin: %s:%d: option '%s' for sampler '%s' needs a value",
			      where, i + 1, c->key, name);
			return -1;
		}
		hc_snake(c->key, key, sizeof(key));
		/* Each value is one entry: Include "vd*" "sd*" repeats. */
		for (j = 0; j < c->values_num; j++) {
			hc_value_str(&c->values[j], val, sizeof(val));
			rc = hitel_config_add(hc.cfg, name, key, val, where, (unsigned int)i + 1);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

/*
 * A new engine configured from every entry so far: collectd calls the config
 * callback once per <Plugin hitel> block, and the core applies a
 * configuration as a whole (engine keys, then the sampler set, then exporter
 * keys), so each block re-applies all of them to a fresh engine.
 */
static int hc_apply(void)
{
	struct hitel_config_target t = { 0 };
	char err[512] = "";
	int rc;

	hitel_engine_free(hc.engine);
	hc.engine = hitel_engine_new();
	if (!hc.engine) {
		ERROR("hitel plugin: cannot create the engine: %s", STRERRNO);
		return -1;
	}
	hitel_export_opts_default(&hc.opts);
	/* One collectd value per bucket is costly: off unless asked for. */
	hc.opts.buckets = 0;
	t.engine = hc.engine;
	t.export = &hc.opts;
	rc = hitel_config_apply(hc.cfg, &t, err, sizeof(err));
	if (rc < 0) {
		/* Every error is already logged ("hitel config: ..."). */
		ERROR("hitel plugin: invalid configuration, collectd will not start: %s",
		      err[0] ? err : strerror(-rc));
		hitel_engine_free(hc.engine);
		hc.engine = NULL;
		return -1;
	}
	return 0;
}

static int hitel_config(oconfig_item_t *ci)
{
	int i;

	if (!hc.cfg) {
		hc.cfg = hitel_config_new();
		if (!hc.cfg) {
			ERROR("hitel plugin: out of memory");
			return -1;
		}
	}
	for (i = 0; i < ci->children_num; i++)
		if (hc_cfg_item(&ci->children[i], (unsigned int)i + 1) < 0)
			return -1;
	return hc_apply();
}

/* ---- life cycle ----------------------------------------------------------- */

static void hc_free_all(void)
{
	hitel_engine_free(hc.engine); /* joins the thread, runs samplers' fini */
	hc.engine = NULL;
	hitel_config_free(hc.cfg);
	hc.cfg = NULL;
	hc.started = 0;
	free(hc.series);
	hc.series = NULL;
	hc.series_cap = hc.series_len = 0;
	free(hc.known);
	hc.known = NULL;
	hc.nknown = 0;
	hc.qlen = 0;
}

/* The engine's sampling thread comes from collectd, so it carries the
 * plugin's context (its log lines are attributed to "hitel") and shows as
 * "hitel engine" in collectd's thread list. */
static int hc_thread_create(pthread_t *thread, void *(*start)(void *), void *arg, void *ctx)
{
	(void)ctx;
	return plugin_thread_create(thread, start, arg, "hitel engine") == 0 ? 0 : EAGAIN;
}

static int hitel_init(void)
{
	int rc;

	if (hc.started)
		return 0;
	/* Without a <Plugin hitel> block: the embedded default. */
	if (!hc.engine) {
		hc.cfg = hitel_config_new();
		if (!hc.cfg || hc_apply() < 0)
			goto fail;
	}
	hitel_config_free(hc.cfg);
	hc.cfg = NULL;
	/* One window per collectd interval (the plugin's own Interval if the
	 * LoadPlugin block sets one). */
	hc.interval = plugin_get_interval();
	hc.window_ns = CDTIME_T_TO_NS(hc.interval);
	rc = hitel_engine_window_add(hc.engine, hc.window_ns);
	if (rc < 0) {
		ERROR("hitel plugin: interval %.3f s is not a valid window "
		      "(shorter than one sample at SampleRate?): %s",
		      CDTIME_T_TO_DOUBLE(hc.interval), strerror(-rc));
		goto fail;
	}
	hitel_engine_on_status(hc.engine, hc_on_status, NULL);
	hitel_engine_set_thread_create(hc.engine, hc_thread_create, NULL);

	/* The engine blocks every signal in its thread: SIGTERM and SIGINT
	 * keep going to collectd's threads. */
	rc = hitel_engine_start(hc.engine);
	if (rc < 0) {
		ERROR("hitel plugin: cannot start the engine: %s", strerror(-rc));
		goto fail;
	}
	hc.started = 1;
	hc_poll_status();

	rc = plugin_register_complex_read(NULL, HC_PLUGIN, hitel_read, hc.interval, NULL);
	if (rc != 0) {
		ERROR("hitel plugin: cannot register the read callback");
		goto fail;
	}
	INFO("hitel plugin: engine started with %zu samplers, window %.3f s",
	     hitel_engine_sampler_count(hc.engine), CDTIME_T_TO_DOUBLE(hc.interval));
	return 0;

fail:
	hc_free_all();
	return -1;
}

static int hitel_shutdown(void)
{
	if (hc.reads)
		INFO("hitel plugin: %" PRIu64 " windows dispatched (%" PRIu64 " missed), %" PRIu64
		     " values; read callback mean %.3f ms, max %.3f ms",
		     hc.reads, hc.missed_windows, hc.values,
		     (double)hc.read_ns_sum / (double)hc.reads * 1e-6,
		     (double)hc.read_ns_max * 1e-6);
	hc_free_all();
	hitel_log_set(NULL, NULL);
	return 0;
}

__attribute__((visibility("default"))) void module_register(void);

__attribute__((visibility("default"))) void module_register(void)
{
	hitel_log_set(hc_log, NULL);
	hitel_log_set_level(HITEL_LOG_INFO);
	plugin_register_complex_config(HC_PLUGIN, hitel_config);
	plugin_register_init(HC_PLUGIN, hitel_init);
	plugin_register_shutdown(HC_PLUGIN, hitel_shutdown);
}
