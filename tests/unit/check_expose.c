/* SPDX-License-Identifier: MIT */
/*
 * Expositions of a registry built by hand. The Prometheus output is parsed
 * back (a small parser of the 0.0.4 text format below) and checked against
 * what was recorded and against the bucket function itself, not against
 * strings the exposer produced.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expose.h"
#include "hist_bucket.h"
#include "log.h"
#include "registry.h"
#include "testutil.h"

#define MAXL 6

struct sample {
	char name[160];
	char family[160]; /* from the last # TYPE line */
	char type[16];
	char lname[MAXL][64];
	char lvalue[MAXL][256];
	int nl;
	char value[64];
};

struct parsed {
	struct sample *v;
	size_t n;
	char families[256][160];
	size_t nfam;
};

static const char *label(const struct sample *s, const char *name)
{
	int i;

	for (i = 0; i < s->nl; i++)
		if (strcmp(s->lname[i], name) == 0)
			return s->lvalue[i];
	return NULL;
}

static int name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* One sample line: name{a="x",b="y"} value. Fails the test on bad syntax. */
static void parse_sample(const char *line, struct sample *s)
{
	const char *p = line;
	size_t n = 0;

	ck_assert_msg(name_char(*p, 1), "bad metric name in: %s", line);
	while (name_char(*p, 0) && n + 1 < sizeof(s->name))
		s->name[n++] = *p++;
	s->name[n] = '\0';
	if (*p == '{') {
		p++;
		while (*p != '}') {
			char *lv;

			ck_assert_msg(s->nl < MAXL, "too many labels: %s", line);
			ck_assert_msg(name_char(*p, 1), "bad label name in: %s", line);
			n = 0;
			while (name_char(*p, 0) && *p != ':')
				s->lname[s->nl][n++] = *p++;
			s->lname[s->nl][n] = '\0';
			ck_assert_msg(p[0] == '=' && p[1] == '"', "expected =\" in: %s", line);
			p += 2;
			lv = s->lvalue[s->nl];
			n = 0;
			while (*p && *p != '"') {
				if (*p == '\\') {
					p++;
					ck_assert_msg(*p == '\\' || *p == '"' || *p == 'n',
						      "bad escape in: %s", line);
					lv[n++] = *p == 'n' ? '\n' : *p;
					p++;
				} else {
					ck_assert_msg(*p != '\n', "raw newline in label value");
					lv[n++] = *p++;
				}
			}
			lv[n] = '\0';
			ck_assert_msg(*p == '"', "unterminated label value in: %s", line);
			p++;
			s->nl++;
			if (*p == ',')
				p++;
			else
				ck_assert_msg(*p == '}', "expected , or } in: %s", line);
		}
		p++;
	}
	ck_assert_msg(*p == ' ', "expected a space before the value in: %s", line);
	p++;
	ck_assert_msg(*p && !strchr(p, ' '), "bad value (or timestamp) in: %s", line);
	snprintf(s->value, sizeof(s->value), "%s", p);
	if (strcmp(p, "+Inf") && strcmp(p, "-Inf") && strcmp(p, "NaN")) {
		char *end;

		strtod(p, &end);
		ck_assert_msg(*end == '\0', "value is not a float in: %s", line);
	}
}

static int has_suffix(const char *s, const char *fam, const char *suffix)
{
	size_t n = strlen(fam);

	return strncmp(s, fam, n) == 0 && strcmp(s + n, suffix) == 0;
}

/* Parse the exposition; enforces the format's grouping rules on the way. */
static void parse_prom(const char *text, struct parsed *out)
{
	char *copy = strdup(text), *line, *save = NULL;
	char fam[160] = "", type[16] = "";
	size_t cap = 64;

	memset(out, 0, sizeof(*out));
	out->v = calloc(cap, sizeof(*out->v));
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct sample *s;

		if (strncmp(line, "# HELP ", 7) == 0) {
			ck_assert_msg(strlen(line) > 7, "empty HELP");
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			size_t i;

			ck_assert_int_eq(sscanf(line + 7, "%159s %15s", fam, type), 2);
			ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
					  !strcmp(type, "histogram") || !strcmp(type, "summary"),
				      "bad type %s", type);
			for (i = 0; i < out->nfam; i++)
				ck_assert_msg(strcmp(out->families[i], fam) != 0,
					      "family %s declared twice", fam);
			ck_assert_uint_lt(out->nfam, 256);
			snprintf(out->families[out->nfam++], 160, "%s", fam);
			continue;
		}
		ck_assert_msg(line[0] != '#', "unexpected comment: %s", line);
		ck_assert_msg(fam[0], "sample before any TYPE: %s", line);
		if (out->n == cap) {
			cap *= 2;
			out->v = realloc(out->v, cap * sizeof(*out->v));
		}
		s = &out->v[out->n++];
		memset(s, 0, sizeof(*s));
		parse_sample(line, s);
		snprintf(s->family, sizeof(s->family), "%s", fam);
		snprintf(s->type, sizeof(s->type), "%s", type);
		/* A sample belongs to the family declared just above it. */
		if (!strcmp(type, "histogram"))
			ck_assert_msg(has_suffix(s->name, fam, "_bucket") ||
					  has_suffix(s->name, fam, "_sum") ||
					  has_suffix(s->name, fam, "_count"),
				      "%s outside its histogram %s", s->name, fam);
		else if (!strcmp(type, "summary"))
			ck_assert_msg(!strcmp(s->name, fam) || has_suffix(s->name, fam, "_sum") ||
					  has_suffix(s->name, fam, "_count"),
				      "%s outside its summary %s", s->name, fam);
		else
			ck_assert_str_eq(s->name, fam);
	}
	free(copy);
}

static const struct sample *find(const struct parsed *ps, const char *name, const char *lname,
				 const char *lvalue)
{
	size_t i;

	for (i = 0; i < ps->n; i++) {
		const char *v;

		if (strcmp(ps->v[i].name, name) != 0)
			continue;
		if (!lname)
			return &ps->v[i];
		v = label(&ps->v[i], lname);
		if (v && strcmp(v, lvalue) == 0)
			return &ps->v[i];
	}
	return NULL;
}

static char *expose_to_string(int (*fn)(FILE *, const struct hitel_snapshot *,
					const struct hitel_snapshot *,
					const struct hitel_export_opts *),
			      const struct hitel_snapshot *cum, const struct hitel_snapshot *win,
			      const struct hitel_export_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fn(f, cum, win, o), 0);
	ck_assert_int_eq(fclose(f), 0);
	return buf;
}

/* --- the hand-built registry ---------------------------------------------------- */

#define NLAT 2000
#define T0 1000000000ULL
#define STEP 10000000ULL /* 10 ms between counter reads */

static const char *const tricky = "a\\b \"quoted\"\nline2";

static const struct hitel_family_desc cpu_desc = {
    .name = "test/cpu",
    .help = "CPU time with a \\ backslash\nand a newline.",
    .unit = "seconds",
    .scale = -9,
    .kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc req_desc = {
    .name = "test/requests",
    .help = "Requests.",
    .unit = "",
    .kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc mem_desc = {
    .name = "test/memory/used",
    .help = "Memory in use.",
    .unit = "bytes",
    .kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc lat_desc = {
    .name = "test/latency",
    .help = "Latency.",
    .unit = "seconds",
    .scale = -9,
    .kind = HITEL_KIND_HISTOGRAM,
};
static const struct hitel_family_desc nohist_desc = {
    .name = "test/plain",
    .help = "No histogram.",
    .unit = "nanoseconds",
    .kind = HITEL_KIND_GAUGE,
    .flags = HITEL_FAMILY_NO_HIST,
};

struct fixture {
	struct hitel_registry *reg;
	struct hitel_snapshot *s0, *cum, *win;
	uint64_t lat[NLAT];
	uint64_t lat_sum;
	uint64_t nrates; /* rate samples of test/requests{path=tricky} */
};

static uint64_t lat_value(unsigned int i)
{
	/* A spread over six decades, with repeats and exact powers of two. */
	uint64_t v = (uint64_t)(i * 7919u % 1000u + 1) * (1ULL << (i % 20));

	return i % 97 == 0 ? 0 : v;
}

static void build(struct fixture *fx)
{
	struct hitel_label l_req[] = {{"path", tricky}, {"le", "shadowed"}};
	struct hitel_label l_cpu[] = {{"state", "user"}};
	struct hitel_label l_lat[] = {{"op", "read"}};
	struct hitel_series *cpu, *req, *mem, *lat, *plain;
	unsigned int i;
	uint64_t t = T0;

	memset(fx, 0, sizeof(*fx));
	fx->reg = hitel_registry_new();
	ck_assert_ptr_nonnull(fx->reg);
	hitel_registry_lock(fx->reg);
	cpu = hitel_registry_series(fx->reg, &cpu_desc, l_cpu, 1);
	req = hitel_registry_series(fx->reg, &req_desc, l_req, 2);
	mem = hitel_registry_series(fx->reg, &mem_desc, NULL, 0);
	lat = hitel_registry_series(fx->reg, &lat_desc, l_lat, 1);
	plain = hitel_registry_series(fx->reg, &nohist_desc, NULL, 0);
	ck_assert_ptr_nonnull(cpu);
	ck_assert_ptr_nonnull(req);
	ck_assert_ptr_nonnull(mem);
	ck_assert_ptr_nonnull(lat);
	ck_assert_ptr_nonnull(plain);
	hitel_series_counter(cpu, 0, t);
	hitel_series_counter(req, 0, t);
	hitel_series_gauge(mem, 4096, t);
	hitel_series_gauge(plain, 2500, t);
	hitel_registry_unlock(fx->reg);
	fx->s0 = hitel_registry_snapshot(fx->reg, t);
	ck_assert_ptr_nonnull(fx->s0);

	hitel_registry_lock(fx->reg);
	for (i = 1; i <= 50; i++) {
		t += STEP;
		/* cpu: 1.5 s in total; req: 3 per read, a burst of 30 at i = 25. */
		hitel_series_counter(cpu, 30000000ULL * i, t);
		hitel_series_counter(req, 3ULL * i + (i >= 25 ? 27 : 0), t);
		hitel_series_gauge(mem, 4096 + 1024ULL * i, t);
		fx->nrates++;
	}
	for (i = 0; i < NLAT; i++) {
		fx->lat[i] = lat_value(i);
		fx->lat_sum += fx->lat[i];
		hitel_hist_record(hitel_series_hist(lat), fx->lat[i]);
	}
	hitel_series_touch(lat, t);
	hitel_registry_unlock(fx->reg);
	fx->cum = hitel_registry_snapshot(fx->reg, t);
	ck_assert_ptr_nonnull(fx->cum);
	fx->win = hitel_snapshot_delta(fx->s0, fx->cum);
	ck_assert_ptr_nonnull(fx->win);
}

static void teardown(struct fixture *fx)
{
	hitel_snapshot_free(fx->s0);
	hitel_snapshot_free(fx->cum);
	hitel_snapshot_free(fx->win);
	hitel_registry_free(fx->reg);
}

static void assert_value(const struct sample *s, double want)
{
	double got;

	ck_assert_ptr_nonnull(s);
	got = strtod(s->value, NULL);
	ck_assert_msg(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want)), "%s = %s, want %.12g",
		      s->name, s->value, want);
}

/* --- tests ----------------------------------------------------------------------- */

START_TEST(test_prom_families)
{
	struct hitel_export_opts o;
	struct fixture fx;
	struct parsed ps;
	const struct sample *s;
	char *text;

	build(&fx);
	hitel_export_opts_default(&o);
	text = expose_to_string(hitel_expose_prometheus, fx.cum, fx.win, &o);
	parse_prom(text, &ps);

	/* Counter in seconds from ns: name, type, exact value. */
	s = find(&ps, "hitel_test_cpu_seconds_total", "state", "user");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->type, "counter");
	assert_value(s, 1.5);
	/* Unit-less counter: no unit suffix; the tricky label survives the
	 * escaping; a label called "le" is renamed, not confused with buckets. */
	s = find(&ps, "hitel_test_requests_total", "path", tricky);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->type, "counter");
	assert_value(s, 177);
	ck_assert_ptr_null(label(s, "le"));
	ck_assert_str_eq(label(s, "exported_le"), "shadowed");
	/* Gauge in bytes. */
	s = find(&ps, "hitel_test_memory_used_bytes", NULL, NULL);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->type, "gauge");
	assert_value(s, 4096 + 1024 * 50);
	/* nanoseconds become seconds, value converted. */
	s = find(&ps, "hitel_test_plain_seconds", NULL, NULL);
	ck_assert_ptr_nonnull(s);
	assert_value(s, 2.5e-6);
	/* NO_HIST: no summary family. */
	ck_assert_ptr_null(find(&ps, "hitel_test_plain_seconds_dist_count", NULL, NULL));
	/* HELP escaping keeps the help on one line. */
	ck_assert_ptr_nonnull(
	    strstr(text, "# HELP hitel_test_cpu_seconds_total CPU time with a \\\\ backslash"
			 "\\nand a newline.\n"));
	free(ps.v);
	free(text);
	teardown(&fx);
}
END_TEST

START_TEST(test_prom_histogram)
{
	struct hitel_export_opts o;
	struct fixture fx;
	struct parsed ps;
	const struct sample *s;
	double prev_le = -1;
	uint64_t prev_cum = 0, nb = 0;
	size_t i, j;
	char *text;
	int inf_seen = 0;

	build(&fx);
	hitel_export_opts_default(&o);
	o.bucket_grouping_power = (unsigned int)_i; /* loop: 0..7 */
	text = expose_to_string(hitel_expose_prometheus, fx.cum, fx.win, &o);
	parse_prom(text, &ps);

	for (i = 0; i < ps.n; i++) {
		const struct sample *b = &ps.v[i];
		uint64_t cum, upper, want = 0;

		if (strcmp(b->name, "hitel_test_latency_seconds_bucket") != 0)
			continue;
		ck_assert_str_eq(b->type, "histogram");
		ck_assert_str_eq(label(b, "op"), "read");
		ck_assert_ptr_nonnull(label(b, "le"));
		ck_assert_msg(!inf_seen, "bucket after +Inf");
		cum = strtoull(b->value, NULL, 10);
		ck_assert_uint_ge(cum, prev_cum);
		prev_cum = cum;
		if (strcmp(label(b, "le"), "+Inf") == 0) {
			inf_seen = 1;
			ck_assert_uint_eq(cum, NLAT);
			continue;
		}
		nb++;
		ck_assert_double_gt(strtod(label(b, "le"), NULL), prev_le);
		prev_le = strtod(label(b, "le"), NULL);
		/* le is an exact decimal of the upper bound in ns... */
		upper = (uint64_t)llround(prev_le * 1e9);
		/* ...which closes a bucket at the exported grouping power... */
		ck_assert_msg(hitel_bucket_index(upper, o.bucket_grouping_power) !=
				  hitel_bucket_index(upper + 1, o.bucket_grouping_power),
			      "le=%s is not a bucket boundary at g=%u", label(b, "le"),
			      o.bucket_grouping_power);
		/* ...and the count is every recorded value at or below it. */
		for (j = 0; j < NLAT; j++)
			want += fx.lat[j] <= upper;
		ck_assert_msg(cum == want, "le=%s: %llu, want %llu", label(b, "le"),
			      (unsigned long long)cum, (unsigned long long)want);
	}
	ck_assert(inf_seen);
	ck_assert_uint_gt(nb, 2);
	s = find(&ps, "hitel_test_latency_seconds_count", "op", "read");
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(strtoull(s->value, NULL, 10), NLAT);
	s = find(&ps, "hitel_test_latency_seconds_sum", "op", "read");
	assert_value(s, (double)fx.lat_sum * 1e-9);
	free(ps.v);
	free(text);
	teardown(&fx);
}
END_TEST

START_TEST(test_prom_summaries)
{
	struct hitel_export_opts o;
	struct fixture fx;
	struct parsed ps;
	const struct sample *s;
	double prev = -1;
	size_t i, nq = 0;
	char err[128];
	char *text;

	build(&fx);
	hitel_export_opts_default(&o);
	ck_assert_int_eq(hitel_export_set(&o, "percentiles", "50 99 100", err, sizeof(err)), 0);
	text = expose_to_string(hitel_expose_prometheus, fx.cum, fx.win, &o);
	parse_prom(text, &ps);

	for (i = 0; i < ps.n; i++) {
		const struct sample *q = &ps.v[i];
		double v;

		if (strcmp(q->name, "hitel_test_requests_rate") != 0)
			continue;
		ck_assert_str_eq(q->type, "summary");
		ck_assert_str_eq(label(q, "path"), tricky);
		v = strtod(q->value, NULL);
		ck_assert_double_ge(v, prev);
		prev = v;
		nq++;
	}
	ck_assert_uint_eq(nq, 3);
	/* Reads every 10 ms: 3 per read is 300/s; the burst read 3000/s is the
	 * max (within the rate histogram's 2^-g). */
	s = find(&ps, "hitel_test_requests_rate", "quantile", "0.5");
	ck_assert_double_ge(strtod(s->value, NULL), 300);
	ck_assert_double_le(strtod(s->value, NULL), 300 * 1.04);
	s = find(&ps, "hitel_test_requests_rate", "quantile", "1");
	ck_assert_double_ge(strtod(s->value, NULL), 3000);
	ck_assert_double_le(strtod(s->value, NULL), 3000 * 1.04);
	s = find(&ps, "hitel_test_requests_rate_count", NULL, NULL);
	ck_assert_uint_eq(strtoull(s->value, NULL, 10), fx.nrates);
	/* cpu: 30 ms per 10 ms read is 3 s/s, in seconds per second. */
	s = find(&ps, "hitel_test_cpu_seconds_rate", "quantile", "0.5");
	ck_assert_double_ge(strtod(s->value, NULL), 3.0);
	ck_assert_double_le(strtod(s->value, NULL), 3.0 * 1.04);
	/* A gauge's value distribution. */
	ck_assert_ptr_nonnull(find(&ps, "hitel_test_memory_used_bytes_dist", "quantile", "0.99"));
	free(ps.v);
	free(text);

	/* Without a window: no quantiles, but the cumulative _sum/_count. */
	text = expose_to_string(hitel_expose_prometheus, fx.cum, NULL, &o);
	parse_prom(text, &ps);
	ck_assert_ptr_null(find(&ps, "hitel_test_requests_rate", NULL, NULL));
	s = find(&ps, "hitel_test_requests_rate_count", NULL, NULL);
	ck_assert_uint_eq(strtoull(s->value, NULL, 10), fx.nrates);
	free(ps.v);
	free(text);
	teardown(&fx);
}
END_TEST

START_TEST(test_prom_empty)
{
	struct hitel_export_opts o;
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_snapshot *s = hitel_registry_snapshot(reg, 1);
	char *text;

	hitel_export_opts_default(&o);
	text = expose_to_string(hitel_expose_prometheus, s, NULL, &o);
	ck_assert_str_eq(text, "");
	free(text);
	hitel_snapshot_free(s);
	hitel_registry_free(reg);
}
END_TEST

/* Two canonical names that sanitise alike must not give one family twice
 * (scrapers reject the whole exposition): the second is left out. */
START_TEST(test_prom_collision)
{
	static const struct hitel_family_desc a = {
	    .name = "test/a_b", .help = "A.", .unit = "", .kind = HITEL_KIND_GAUGE};
	static const struct hitel_family_desc b = {
	    .name = "test/a/b", .help = "B.", .unit = "", .kind = HITEL_KIND_GAUGE};
	static const struct hitel_family_desc c = {
	    .name = "test/a", .help = "C.", .unit = "", .kind = HITEL_KIND_COUNTER};
	static const struct hitel_family_desc d = {
	    .name = "test/a/rate", .help = "D.", .unit = "", .kind = HITEL_KIND_GAUGE};
	struct hitel_registry *reg = hitel_registry_new();
	struct hitel_export_opts o;
	struct hitel_snapshot *s;
	struct parsed ps;
	char *text;
	size_t i;
	int seen = 0;

	hitel_log_set_level(HITEL_LOG_ERR);
	hitel_registry_lock(reg);
	hitel_series_gauge(hitel_registry_series(reg, &a, NULL, 0), 1, 1);
	hitel_series_gauge(hitel_registry_series(reg, &b, NULL, 0), 2, 1);
	hitel_series_counter(hitel_registry_series(reg, &c, NULL, 0), 3, 1);
	hitel_series_counter(hitel_registry_series(reg, &c, NULL, 0), 4, 2);
	hitel_series_gauge(hitel_registry_series(reg, &d, NULL, 0), 5, 1);
	hitel_registry_unlock(reg);
	s = hitel_registry_snapshot(reg, 3);
	hitel_export_opts_default(&o);
	text = expose_to_string(hitel_expose_prometheus, s, NULL, &o);
	parse_prom(text, &ps); /* fails on a family declared twice */
	for (i = 0; i < ps.n; i++)
		if (strcmp(ps.v[i].name, "hitel_test_a_b") == 0) {
			assert_value(&ps.v[i], 1);
			seen++;
		}
	ck_assert_int_eq(seen, 1);
	/* The counter's rate summary came first and keeps its name. */
	ck_assert_ptr_nonnull(find(&ps, "hitel_test_a_rate_count", NULL, NULL));
	ck_assert_ptr_nonnull(find(&ps, "hitel_test_a_total", NULL, NULL));
	free(ps.v);
	free(text);
	hitel_snapshot_free(s);
	hitel_registry_free(reg);
}
END_TEST

static const struct {
	uint64_t raw;
	int scale;
	const char *want;
} decimals[] = {
    {0, -9, "0"},
    {1, -9, "0.000000001"},
    {1500000000, -9, "1.5"},
    {1000000000, -9, "1"},
    {123456789012ULL, -9, "123.456789012"},
    {123, 0, "123"},
    {12, 3, "12000"},
    {1234, -2, "12.34"},
    {100, -2, "1"},
    {5, -1, "0.5"},
    {18446744073709551615ULL, 0, "18446744073709551615"},
    {18446744073709551615ULL, -9, "18446744073.709551615"},
};

START_TEST(test_decimal)
{
	char buf[64];

	ck_assert_str_eq(
	    hitel_expose_decimal(decimals[_i].raw, decimals[_i].scale, buf, sizeof(buf)),
	    decimals[_i].want);
}
END_TEST

static const struct {
	const char *family, *unit;
	enum hitel_kind kind;
	const char *want;
} names[] = {
    {"cpu/usage", "seconds", HITEL_KIND_COUNTER, "hitel_cpu_usage_seconds_total"},
    {"network/receive/bytes", "bytes", HITEL_KIND_COUNTER, "hitel_network_receive_bytes_total"},
    {"block/io/ops", "operations", HITEL_KIND_COUNTER, "hitel_block_io_ops_total"},
    {"hitel/sampler/up", "", HITEL_KIND_GAUGE, "hitel_hitel_sampler_up"},
    {"block/io/latency", "nanoseconds", HITEL_KIND_HISTOGRAM, "hitel_block_io_latency_seconds"},
    {"odd-name.x/y", "", HITEL_KIND_GAUGE, "hitel_odd_name_x_y"},
    {"queue/total", "", HITEL_KIND_COUNTER, "hitel_queue_total"},
    {"pressure/some", "ratio", HITEL_KIND_GAUGE, "hitel_pressure_some_ratio"},
};

START_TEST(test_names)
{
	struct hitel_point p;
	char buf[160];

	memset(&p, 0, sizeof(p));
	p.family = names[_i].family;
	p.unit = names[_i].unit;
	p.kind = names[_i].kind;
	ck_assert_str_eq(hitel_expose_prom_name(&p, buf, sizeof(buf)), names[_i].want);
}
END_TEST

/* --- a minimal JSON checker: syntax, plus the strings it decoded ------------------ */

struct json {
	const char *p;
	int found_tricky;
};

static void json_value(struct json *j);

static void json_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
		j->p++;
}

static void json_string(struct json *j)
{
	char out[512];
	size_t n = 0;

	ck_assert_int_eq(*j->p, '"');
	for (j->p++; *j->p != '"'; j->p++) {
		ck_assert_msg((unsigned char)*j->p >= 0x20, "control char in JSON string");
		if (*j->p == '\\') {
			j->p++;
			if (*j->p == 'u') {
				unsigned int c;

				ck_assert_int_eq(sscanf(j->p + 1, "%4x", &c), 1);
				out[n++] = (char)c;
				j->p += 4;
			} else {
				ck_assert_msg(strchr("\"\\/bfnrt", *j->p), "bad escape");
				out[n++] = *j->p == 'n' ? '\n' : *j->p;
			}
		} else {
			out[n++] = *j->p;
		}
		ck_assert_uint_lt(n, sizeof(out));
	}
	out[n] = '\0';
	if (strcmp(out, tricky) == 0)
		j->found_tricky = 1;
	j->p++;
}

static void json_value(struct json *j)
{
	json_ws(j);
	if (*j->p == '{' || *j->p == '[') {
		char close = *j->p == '{' ? '}' : ']';
		int obj = close == '}';

		j->p++;
		json_ws(j);
		if (*j->p == close) {
			j->p++;
			return;
		}
		for (;;) {
			json_ws(j);
			if (obj) {
				json_string(j);
				json_ws(j);
				ck_assert_int_eq(*j->p, ':');
				j->p++;
			}
			json_value(j);
			json_ws(j);
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			ck_assert_int_eq(*j->p, close);
			j->p++;
			return;
		}
	}
	if (*j->p == '"') {
		json_string(j);
	} else if (strncmp(j->p, "null", 4) == 0 || strncmp(j->p, "true", 4) == 0) {
		j->p += 4;
	} else {
		char *end;

		ck_assert_msg(*j->p == '-' || (*j->p >= '0' && *j->p <= '9'), "bad JSON at: %.20s",
			      j->p);
		strtod(j->p, &end);
		j->p = end;
	}
}

START_TEST(test_json)
{
	struct hitel_export_opts o;
	struct fixture fx;
	struct json j;
	char *text;

	build(&fx);
	hitel_export_opts_default(&o);
	text = expose_to_string(hitel_expose_json, fx.cum, fx.win, &o);
	j.p = text;
	j.found_tricky = 0;
	json_value(&j);
	json_ws(&j);
	ck_assert_msg(*j.p == '\0', "trailing data after JSON: %.20s", j.p);
	ck_assert(j.found_tricky);
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"test/latency\",\"kind\":\"histogram\""));
	ck_assert_ptr_nonnull(strstr(text, "\"count\":2000,"));
	ck_assert_ptr_nonnull(strstr(text, "\"window_seconds\":0.500"));
	free(text);
	text = expose_to_string(hitel_expose_json, fx.cum, NULL, &o);
	ck_assert_ptr_nonnull(strstr(text, "\"window_seconds\":null"));
	ck_assert_ptr_null(strstr(text, "percentiles"));
	free(text);
	teardown(&fx);
}
END_TEST

START_TEST(test_vars)
{
	struct hitel_export_opts o;
	struct fixture fx;
	char *text, *line, *save = NULL;
	const char *lat99 = "test/latency/p99{op=\"read\"} ";
	int n = 0, rate_lines = 0, lat_p99 = 0;

	build(&fx);
	hitel_export_opts_default(&o);
	text = expose_to_string(hitel_expose_vars, fx.cum, fx.win, &o);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strrchr(line, ' '), *end;

		ck_assert_msg(sp != NULL, "no value on: %s", line);
		strtod(sp + 1, &end);
		ck_assert_msg(*end == '\0', "value is not a number on: %s", line);
		if (strncmp(line, "test/requests/rate/", 19) == 0)
			rate_lines++;
		if (strncmp(line, lat99, strlen(lat99)) == 0)
			lat_p99 = 1;
		n++;
	}
	ck_assert_int_eq(rate_lines, 5);
	ck_assert(lat_p99);
	ck_assert_int_gt(n, 20);
	free(text);
	teardown(&fx);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("expose");
	TCase *tc = tcase_create("expose");

	tcase_add_test(tc, test_prom_families);
	tcase_add_loop_test(tc, test_prom_histogram, 0, 8);
	tcase_add_test(tc, test_prom_summaries);
	tcase_add_test(tc, test_prom_empty);
	tcase_add_test(tc, test_prom_collision);
	tcase_add_loop_test(tc, test_decimal, 0, sizeof(decimals) / sizeof(decimals[0]));
	tcase_add_loop_test(tc, test_names, 0, sizeof(names) / sizeof(names[0]));
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_vars);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
