/* SPDX-License-Identifier: MIT */
/*
 * The engine with fake samplers defined here: options, run_once rates,
 * failure and recovery, the sampling thread (windows, missed deadlines,
 * per-sampler rates), concurrent readers, and a new engine taking over a
 * running one's registry (reload).
 *
 * Timing asserts are deliberately loose: this runs on a noisy shared
 * machine, sometimes under valgrind.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "hist.h"
#include "log.h"
#include "registry.h"
#include "sampler.h"
#include "testutil.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define MAX_STAMPS 4096

/* ---- fake samplers ------------------------------------------------------- */

/* Behaviour and record of one fake sampler, found by its name (priv is
 * zeroed by the engine before every init, so the test cannot use it). */
struct fake {
	const char *name;
	/* behaviour */
	int init_fails;		 /* this many init calls fail... */
	int init_err;		 /* ...with -init_err */
	const char *init_reason; /* NULL: no hitel_sampler_fail */
	int read_fail_from;	 /* 1-based read calls in [from, to) fail */
	int read_fail_to;
	int read_err;
	const char *read_reason;
	uint64_t sleep_ns;
	/* record (engine thread writes; test reads after stop or atomically) */
	int init_calls, fini_calls;
	uint64_t reads;
	uint64_t stamps[MAX_STAMPS];
};

enum { F_RAMP, F_STAMP, F_SLOW, F_ODD, F_SLEEPY, F_BROKEN, F_MUTE, F_FLAKY, F_MANY, F_N };

static struct fake fakes[F_N];

/* The ramp's raw value: A units per microsecond before ramp_switch, B after,
 * so its per-second rate is A*1e6, then B*1e6. */
static uint64_t ramp_switch = UINT64_MAX;
static const uint64_t ramp_a = 1, ramp_b = 7;

static uint64_t ramp_value(uint64_t t)
{
	uint64_t before = t < ramp_switch ? t : ramp_switch;
	uint64_t after = t > ramp_switch ? t - ramp_switch : 0;

	return before / 1000 * ramp_a + after / 1000 * ramp_b;
}

static void fakes_reset(void)
{
	static const char *const names[F_N] = { "ramp",	  "stamp", "slow",  "odd",  "sleepy",
						"broken", "mute",  "flaky", "many" };
	int i;

	memset(fakes, 0, sizeof(fakes));
	for (i = 0; i < F_N; i++)
		fakes[i].name = names[i];
	ramp_switch = UINT64_MAX;
}

static struct fake *fake_of(struct hitel_sampler *s)
{
	int i;

	for (i = 0; i < F_N; i++)
		if (strcmp(fakes[i].name, hitel_sampler_name(s)) == 0)
			return &fakes[i];
	abort();
}

struct fake_priv {
	struct hitel_series *a, *b, *many[3];
};

static const struct hitel_family_desc ramp_desc = {
	.name = "test/ramp",
	.help = "Fake counter.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc ramp2_desc = {
	.name = "test/ramp2",
	.help = "Fake counter, twice test/ramp.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc many_desc = {
	.name = "test/many",
	.help = "Fake gauges.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
};

static int fake_init(struct hitel_sampler *s)
{
	struct fake *f = fake_of(s);
	struct fake_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);

	f->init_calls++;
	if (f->init_calls <= f->init_fails) {
		if (f->init_reason)
			hitel_sampler_fail(s, "%s", f->init_reason);
		return -f->init_err;
	}
	if (f == &fakes[F_RAMP]) {
		p->a = hitel_registry_series(reg, &ramp_desc, NULL, 0);
		p->b = hitel_registry_series(reg, &ramp2_desc, NULL, 0);
	} else if (f == &fakes[F_MANY]) {
		static const char *const v[3] = { "0", "1", "2" };
		int i;

		for (i = 0; i < 3; i++) {
			struct hitel_label l = { "i", v[i] };

			p->many[i] = hitel_registry_series(reg, &many_desc, &l, 1);
		}
	}
	return 0;
}

static void fake_fini(struct hitel_sampler *s)
{
	fake_of(s)->fini_calls++;
}

static int fake_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct fake *f = fake_of(s);
	struct fake_priv *p = hitel_sampler_priv(s);
	uint64_t n = __atomic_add_fetch(&f->reads, 1, __ATOMIC_RELAXED);
	int i;

	if (n <= MAX_STAMPS)
		f->stamps[n - 1] = now_ns;
	if (f->sleep_ns) {
		struct timespec ts = { (time_t)(f->sleep_ns / SEC), (long)(f->sleep_ns % SEC) };

		nanosleep(&ts, NULL);
	}
	if ((int)n >= f->read_fail_from && (int)n < f->read_fail_to) {
		if (f->read_reason)
			hitel_sampler_fail(s, "%s", f->read_reason);
		return -f->read_err;
	}
	if (p->a) {
		hitel_series_counter(p->a, ramp_value(now_ns), now_ns);
		hitel_series_counter(p->b, 2 * ramp_value(now_ns), now_ns);
	}
	for (i = 0; i < 3; i++)
		if (p->many[i])
			hitel_series_gauge(p->many[i], (uint64_t)i, now_ns);
	return 0;
}

static int fake_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		       size_t errlen)
{
	(void)s;
	if (strcmp(key, "color") != 0)
		return -ENOENT;
	if (!*value) {
		snprintf(err, errlen, "color: must not be empty");
		return -EINVAL;
	}
	return 0;
}

#define FAKE_OPS(var, nm, hz)                                                                   \
	static const struct hitel_sampler_ops var = {                                           \
		.name = nm,                                                                     \
		.help = "fake",                                                                 \
		.default_hz = hz,                                                               \
		.priv_size = sizeof(struct fake_priv),                                          \
		.option = fake_option,                                                          \
		.init = fake_init,                                                              \
		.read = fake_read,                                                              \
		.fini = fake_fini,                                                              \
	}

FAKE_OPS(ramp_ops, "ramp", 0);
FAKE_OPS(stamp_ops, "stamp", 0);
FAKE_OPS(slow_ops, "slow", 0);
FAKE_OPS(odd_ops, "odd", 0);
FAKE_OPS(sleepy_ops, "sleepy", 20);
FAKE_OPS(broken_ops, "broken", 0);
FAKE_OPS(mute_ops, "mute", 0);
FAKE_OPS(flaky_ops, "flaky", 0);
FAKE_OPS(many_ops, "many", 0);

/* No option(), no callbacks at all. */
static const struct hitel_sampler_ops plain_ops = {
	.name = "plain",
	.help = "fake without callbacks",
	.default_hz = 5,
};

/* ---- log and status capture ---------------------------------------------- */

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static int warnings;
static char last_warning[512];

struct event {
	char name[32];
	int up;
	char reason[256];
};
static struct event events[16];
static int nevents;

static void log_capture(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&cap_lock);
	if (level <= HITEL_LOG_WARNING) {
		warnings++;
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
	}
	pthread_mutex_unlock(&cap_lock);
}

static void on_status(const struct hitel_sampler_status *st, void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&cap_lock);
	if (nevents < 16) {
		snprintf(events[nevents].name, sizeof(events[nevents].name), "%s", st->name);
		events[nevents].up = st->up;
		snprintf(events[nevents].reason, sizeof(events[nevents].reason), "%s",
			 st->reason);
	}
	nevents++;
	pthread_mutex_unlock(&cap_lock);
}

static struct hitel_engine *engine_new(const char *rate)
{
	struct hitel_engine *e;
	char err[256] = "";

	fakes_reset();
	warnings = 0;
	nevents = 0;
	hitel_log_set(log_capture, NULL);
	hitel_log_set_level(HITEL_LOG_INFO);
	e = hitel_engine_new();
	ck_assert_ptr_nonnull(e);
	if (rate)
		ck_assert_msg(hitel_engine_set(e, "sample_rate", rate, err, sizeof(err)) == 0,
			      "%s", err);
	hitel_engine_on_status(e, on_status, NULL);
	return e;
}

static struct hitel_sampler *add(struct hitel_engine *e, const struct hitel_sampler_ops *ops)
{
	struct hitel_sampler *s = hitel_engine_sampler_add_ops(e, ops);

	ck_assert_msg(s != NULL, "add %s: %s", ops->name, strerror(errno));
	return s;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / SEC), (long)(ns % SEC) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- options ------------------------------------------------------------- */

static const struct {
	const char *key, *value;
	int ret;
	const char *msg; /* substring of the error message; NULL: any */
} engine_opts[] = {
	{ "sample_rate", "100", 0, NULL },
	{ "sample_rate", "1", 0, NULL },
	{ "sample_rate", "1000", 0, NULL },
	{ "sample_rate", "0", -EINVAL, "sample_rate" },
	{ "sample_rate", "1001", -EINVAL, "1..1000" },
	{ "sample_rate", "abc", -EINVAL, "sample_rate" },
	{ "sample_rate", "", -EINVAL, "sample_rate" },
	{ "sample_rate", "-5", -EINVAL, "1..1000" },
	{ "sample_rate", "10x", -EINVAL, "sample_rate" },
	{ "sample_rate", "99999999999999999999999", -EINVAL, "sample_rate" },
	{ "root", "/tmp", 0, NULL },
	{ "root", "relative/dir", -EINVAL, "root" },
	{ "rate_grouping_power", "3", 0, NULL },
	{ "rate_grouping_power", "11", -EINVAL, "rate_grouping_power" },
	{ "hist_grouping_power", "10", 0, NULL },
	{ "hist_grouping_power", "x", -EINVAL, "0..10" },
	{ "max_series", "8", 0, NULL },
	{ "max_series", "0", -EINVAL, "max_series" },
	{ "bogus", "1", -ENOENT, "unknown option 'bogus'" },
	{ "samplerate", "100", -ENOENT, "samplerate" },
};

START_TEST(test_engine_options)
{
	struct hitel_engine *e = engine_new(NULL);
	char err[256];
	int ret;

	strcpy(err, "");
	ret = hitel_engine_set(e, engine_opts[_i].key, engine_opts[_i].value, err, sizeof(err));
	ck_assert_msg(ret == engine_opts[_i].ret, "%s=%s: got %d, want %d (%s)",
		      engine_opts[_i].key, engine_opts[_i].value, ret, engine_opts[_i].ret, err);
	if (engine_opts[_i].msg)
		ck_assert_msg(strstr(err, engine_opts[_i].msg) != NULL,
			      "%s=%s: message '%s' lacks '%s'", engine_opts[_i].key,
			      engine_opts[_i].value, err, engine_opts[_i].msg);
	hitel_engine_free(e);
}
END_TEST

static const struct {
	const struct hitel_sampler_ops *ops;
	const char *key, *value;
	int ret;
	const char *msg;
} sampler_opts[] = {
	{ &ramp_ops, "rate", "50", 0, NULL },
	{ &ramp_ops, "rate", "100", 0, NULL },
	{ &ramp_ops, "rate", "0", -EINVAL, "rate" },
	{ &ramp_ops, "rate", "101", -EINVAL, "1..100" },
	{ &ramp_ops, "rate", "fast", -EINVAL, "rate" },
	{ &ramp_ops, "include", "eth*", 0, NULL },
	{ &ramp_ops, "exclude", "lo", 0, NULL },
	{ &ramp_ops, "color", "red", 0, NULL },
	{ &ramp_ops, "color", "", -EINVAL, "must not be empty" },
	{ &ramp_ops, "nope", "1", -ENOENT, "unknown option 'nope' for sampler 'ramp'" },
	{ &plain_ops, "color", "red", -ENOENT, "unknown option 'color' for sampler 'plain'" },
	{ &plain_ops, "rate", "5", 0, NULL },
};

START_TEST(test_sampler_options)
{
	struct hitel_engine *e = engine_new("100");
	struct hitel_sampler *s = add(e, sampler_opts[_i].ops);
	char err[256] = "";
	int ret;

	ret = hitel_sampler_set(s, sampler_opts[_i].key, sampler_opts[_i].value, err, sizeof(err));
	ck_assert_msg(ret == sampler_opts[_i].ret, "%s %s=%s: got %d, want %d (%s)",
		      sampler_opts[_i].ops->name, sampler_opts[_i].key, sampler_opts[_i].value,
		      ret, sampler_opts[_i].ret, err);
	if (sampler_opts[_i].msg)
		ck_assert_msg(strstr(err, sampler_opts[_i].msg) != NULL,
			      "message '%s' lacks '%s'", err, sampler_opts[_i].msg);
	/* Only accepted values are kept. */
	ck_assert_uint_eq(hitel_sampler_values(s, sampler_opts[_i].key), ret == 0 ? 1 : 0);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_sampler_values_match)
{
	struct hitel_engine *e = engine_new("100");
	struct hitel_sampler *s = add(e, &ramp_ops), *s2 = add(e, &stamp_ops);
	struct hitel_sampler_status st;
	char err[256] = "", buf[64];

	ck_assert_ptr_eq(hitel_engine_sampler_add_ops(e, &ramp_ops), s); /* idempotent */
	ck_assert_uint_eq(hitel_engine_sampler_count(e), 2);
	ck_assert_int_eq(hitel_sampler_set(s, "color", "red", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_set(s, "color", "blue", err, sizeof(err)), 0);
	ck_assert_uint_eq(hitel_sampler_values(s, "color"), 2);
	ck_assert_str_eq(hitel_sampler_value(s, "color", 0), "red");
	ck_assert_str_eq(hitel_sampler_value(s, "color", 1), "blue");
	ck_assert_ptr_null(hitel_sampler_value(s, "color", 2));
	ck_assert_uint_eq(hitel_sampler_values(s, "shape"), 0);

	/* No include: everything but the excludes. */
	ck_assert_int_eq(hitel_sampler_match(s, "eth1"), 1);
	ck_assert_int_eq(hitel_sampler_set(s, "exclude", "eth1", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_match(s, "eth1"), 0);
	ck_assert_int_eq(hitel_sampler_match(s, "lo"), 1);
	ck_assert_int_eq(hitel_sampler_set(s, "include", "eth*", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_set(s, "include", "wl*", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_match(s, "eth0"), 1);
	ck_assert_int_eq(hitel_sampler_match(s, "eth1"), 0);
	ck_assert_int_eq(hitel_sampler_match(s, "wlan0"), 1);
	ck_assert_int_eq(hitel_sampler_match(s, "lo"), 0);
	ck_assert_int_eq(hitel_sampler_match(s2, "lo"), 1); /* filters are per sampler */

	/* Paths under the root, with or without trailing slash. */
	ck_assert_str_eq(hitel_sampler_path(s, "/proc/stat", buf, sizeof(buf)), "/proc/stat");
	ck_assert_int_eq(hitel_engine_set(e, "root", "/srv/fix/", err, sizeof(err)), 0);
	ck_assert_str_eq(hitel_sampler_path(s, "/proc/stat", buf, sizeof(buf)),
			 "/srv/fix/proc/stat");
	ck_assert_ptr_null(hitel_sampler_path(s, "/proc/stat", buf, 8));

	/* Rates: explicit, ops default, engine rate. */
	ck_assert_int_eq(hitel_sampler_set(s, "rate", "25", err, sizeof(err)), 0);
	tu_status(e, "ramp", &st);
	ck_assert_uint_eq(st.rate_hz, 25);
	tu_status(e, "stamp", &st);
	ck_assert_uint_eq(st.rate_hz, 100);
	add(e, &plain_ops);
	tu_status(e, "plain", &st);
	ck_assert_uint_eq(st.rate_hz, 5);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 3, &st), -ERANGE);

	errno = 0;
	ck_assert_ptr_null(hitel_engine_sampler_add(e, "no-such-sampler"));
	ck_assert_int_eq(errno, ENOENT);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_window_add)
{
	struct hitel_engine *e = engine_new("100");

	ck_assert_int_eq(hitel_engine_window_add(e, 0), -EINVAL);
	ck_assert_int_eq(hitel_engine_window_add(e, 1 * MS), -EINVAL); /* < 1/sample_rate */
	ck_assert_int_eq(hitel_engine_window_add(e, 10 * MS), 0);
	ck_assert_int_eq(hitel_engine_window_add(e, 10 * MS), 0);
	errno = 0;
	ck_assert_ptr_null(hitel_engine_window(e, 20 * MS));
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_ptr_null(hitel_engine_window(e, 10 * MS));
	ck_assert_int_eq(errno, EAGAIN);
	hitel_engine_free(e);
}
END_TEST

/* Registry settings reach the registry before samplers create families. */
START_TEST(test_registry_settings)
{
	struct hitel_engine *e = engine_new("100");
	char err[256] = "";
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	uint64_t t = 5 * SEC;

	ck_assert_int_eq(hitel_engine_set(e, "max_series", "2", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_set(e, "rate_grouping_power", "3", err, sizeof(err)), 0);
	add(e, &many_ops);
	add(e, &ramp_ops);
	ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 10 * MS), 0);
	/* Settings that shape the registry are fixed once samplers exist. */
	ck_assert_int_eq(hitel_engine_set(e, "max_series", "5", err, sizeof(err)), -EBUSY);

	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	ck_assert_ptr_nonnull(tu_point(snap, "test/many", "i=1"));
	ck_assert_ptr_null(hitel_snapshot_find(snap, "test/many", "i=2"));
	p = tu_point(snap, "hitel/registry/refused", "family=test/many");
	ck_assert_uint_eq(p->value, 1);
	ck_assert_ptr_null(hitel_snapshot_find(snap, "hitel/registry/refused", "family=test/ramp"));
	p = tu_point(snap, "test/ramp", "");
	ck_assert_ptr_nonnull(p->hist);
	ck_assert_uint_eq(hitel_hist_grouping_power(p->hist), 3);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

/* ---- run_once ------------------------------------------------------------ */

START_TEST(test_run_once_rates)
{
	struct hitel_engine *e = engine_new("100");
	const uint64_t t0 = 1 * SEC, step = 10 * MS;
	const uint64_t r1 = ramp_a * 1000000, r2 = ramp_b * 1000000;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;
	uint64_t q25, q75, t = t0;
	int i;

	add(e, &ramp_ops);
	ramp_switch = t0 + 50 * step;
	for (i = 0; i <= 100; i++, t += step)
		ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	t -= step;

	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	p = tu_point(snap, "test/ramp", "");
	ck_assert_uint_eq(p->value, ramp_value(t));
	ck_assert_uint_eq(p->updated_ns, t);
	ck_assert_ptr_nonnull(p->hist);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 100);
	/* Half the intervals at r1, half at r2; quantiles are bucket upper
	 * bounds (relative error <= 2^-g, g = 5 by default). */
	q25 = hitel_hist_quantile(p->hist, 0.25);
	q75 = hitel_hist_quantile(p->hist, 0.75);
	ck_assert_msg(q25 >= r1 && q25 <= r1 + r1 / 32, "p25 %llu vs %llu",
		      (unsigned long long)q25, (unsigned long long)r1);
	ck_assert_msg(q75 >= r2 && q75 <= r2 + r2 / 32, "p75 %llu vs %llu",
		      (unsigned long long)q75, (unsigned long long)r2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), r1);
	ck_assert_uint_eq(hitel_hist_max(p->hist), r2);

	p = tu_point(snap, "hitel/sampler/refresh/time", "sampler=ramp");
	ck_assert_int_eq(p->kind, HITEL_KIND_HISTOGRAM);
	ck_assert_str_eq(p->unit, "seconds");
	ck_assert_int_eq(p->scale, -9);
	ck_assert_uint_eq(p->value, 101);
	p = tu_point(snap, "hitel/sampler/up", "sampler=ramp");
	ck_assert_uint_eq(p->value, 1);
	ck_assert_ptr_null(p->hist);
	p = tu_point(snap, "hitel/sampler/errors", "sampler=ramp");
	ck_assert_uint_eq(p->value, 0);
	p = tu_point(snap, "hitel/engine/missed", "");
	ck_assert_uint_eq(p->value, 0);
	hitel_snapshot_free(snap);

	tu_status(e, "ramp", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_str_eq(st.reason, "");
	ck_assert_uint_eq(st.reads, 101);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert_int_eq(fakes[F_RAMP].init_calls, 1);
	ck_assert_int_eq(nevents, 0); /* no transition */

	hitel_engine_free(e);
	ck_assert_int_eq(fakes[F_RAMP].fini_calls, 1);
}
END_TEST

START_TEST(test_init_failure)
{
	struct hitel_engine *e = engine_new("100");
	struct hitel_snapshot *snap;
	struct hitel_sampler_status st;
	char want[256];
	uint64_t t = 100 * SEC;

	add(e, &broken_ops);
	add(e, &ramp_ops);
	add(e, &mute_ops);
	fakes[F_BROKEN].init_fails = 2;
	fakes[F_BROKEN].init_err = ENODEV;
	fakes[F_BROKEN].init_reason = "no widget in /sys/class/widget";
	fakes[F_MUTE].init_fails = 1000;
	fakes[F_MUTE].init_err = EACCES;

	ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 1 * SEC), 0);

	tu_status(e, "broken", &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_str_eq(st.reason, "no widget in /sys/class/widget");
	ck_assert_uint_eq(st.reads, 0);
	tu_status(e, "mute", &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(want, sizeof(want), "init failed: %s", strerror(EACCES));
	ck_assert_str_eq(st.reason, want);
	tu_status(e, "ramp", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_uint_eq(st.reads, 2);
	/* fini runs after a failed init too. */
	ck_assert_int_eq(fakes[F_BROKEN].fini_calls, 1);
	ck_assert_int_eq(fakes[F_BROKEN].init_calls, 1);
	ck_assert_uint_eq(fakes[F_BROKEN].reads, 0);

	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/up", "sampler=broken")->value, 0);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/up", "sampler=mute")->value, 0);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/up", "sampler=ramp")->value, 1);
	ck_assert_uint_eq(tu_point(snap, "test/ramp", "")->value, ramp_value(t + 1 * SEC));
	hitel_snapshot_free(snap);

	/* One down event each; each reason logged once. */
	ck_assert_int_eq(nevents, 2);
	ck_assert_str_eq(events[0].name, "broken");
	ck_assert_int_eq(events[0].up, 0);
	ck_assert_str_eq(events[0].reason, "no widget in /sys/class/widget");
	ck_assert_str_eq(events[1].name, "mute");
	ck_assert_int_eq(warnings, 2);

	/* Init is retried every 10 s, not at every pass. */
	ck_assert_int_eq(hitel_engine_run_once(e, t + 9 * SEC), 0);
	ck_assert_int_eq(fakes[F_BROKEN].init_calls, 1);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 10 * SEC), 0);
	ck_assert_int_eq(fakes[F_BROKEN].init_calls, 2); /* fails again, same reason */
	ck_assert_int_eq(fakes[F_MUTE].init_calls, 2);
	ck_assert_int_eq(warnings, 2); /* same reasons: not logged again */
	ck_assert_int_eq(nevents, 2);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 20 * SEC), 0);
	ck_assert_int_eq(fakes[F_BROKEN].init_calls, 3); /* succeeds */
	tu_status(e, "broken", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_str_eq(st.reason, "");
	ck_assert_uint_eq(st.reads, 1);
	ck_assert_int_eq(nevents, 3);
	ck_assert_str_eq(events[2].name, "broken");
	ck_assert_int_eq(events[2].up, 1);
	hitel_engine_free(e);
	ck_assert_int_eq(fakes[F_BROKEN].fini_calls, 3);
	ck_assert_int_eq(fakes[F_MUTE].fini_calls, fakes[F_MUTE].init_calls);
}
END_TEST

/* A read fails (with or without a reason) and recovers. */
static const char *const read_reasons[] = { NULL, "device went away" };

START_TEST(test_read_recover)
{
	struct hitel_engine *e = engine_new("100");
	struct hitel_snapshot *snap;
	struct hitel_sampler_status st;
	char want[256];
	uint64_t t = 50 * SEC;

	add(e, &flaky_ops);
	fakes[F_FLAKY].read_fail_from = 2;
	fakes[F_FLAKY].read_fail_to = 4; /* reads 2 and 3 fail */
	fakes[F_FLAKY].read_err = EIO;
	fakes[F_FLAKY].read_reason = read_reasons[_i];
	if (read_reasons[_i])
		snprintf(want, sizeof(want), "%s", read_reasons[_i]);
	else
		snprintf(want, sizeof(want), "read failed: %s", strerror(EIO));

	ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	tu_status(e, "flaky", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 100 * MS), 0); /* read 2 fails */
	tu_status(e, "flaky", &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_str_eq(st.reason, want);
	ck_assert_uint_eq(st.errors, 1);
	ck_assert_int_eq(nevents, 1);
	ck_assert_int_eq(events[0].up, 0);
	ck_assert_str_eq(events[0].reason, want);

	/* Down: retried once per second, not at every pass. */
	ck_assert_int_eq(hitel_engine_run_once(e, t + 500 * MS), 0);
	ck_assert_uint_eq(fakes[F_FLAKY].reads, 2);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 1100 * MS), 0); /* read 3 fails */
	ck_assert_uint_eq(fakes[F_FLAKY].reads, 3);
	tu_status(e, "flaky", &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_uint_eq(st.errors, 2);
	ck_assert_int_eq(nevents, 1); /* still down: no new event */
	ck_assert_int_eq(warnings, 1); /* same reason: logged once */
	ck_assert_int_eq(hitel_engine_run_once(e, t + 2200 * MS), 0); /* read 4 succeeds */
	tu_status(e, "flaky", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_str_eq(st.reason, "");
	ck_assert_uint_eq(st.reads, 4);
	ck_assert_uint_eq(st.errors, 2);
	ck_assert_int_eq(nevents, 2);
	ck_assert_int_eq(events[1].up, 1);
	ck_assert_str_eq(events[1].reason, "");

	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/errors", "sampler=flaky")->value, 2);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/up", "sampler=flaky")->value, 1);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

/* ---- the sampling thread ------------------------------------------------- */

START_TEST(test_thread_windows)
{
	struct hitel_engine *e = engine_new("200");
	struct hitel_snapshot *w, *s1, *s2;
	const struct hitel_point *p, *p2;
	uint64_t dur, n, q50;

	add(e, &ramp_ops);
	ck_assert_int_eq(hitel_engine_window_add(e, 200 * MS), 0);
	ck_assert_int_eq(hitel_engine_window_add(e, 100 * MS), 0);
	errno = 0;
	ck_assert_ptr_null(hitel_engine_window(e, 200 * MS));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	ck_assert_int_eq(hitel_engine_start(e), -EBUSY);
	sleep_ns(1500 * MS);

	w = hitel_engine_window(e, 200 * MS);
	ck_assert_msg(w != NULL, "no 200 ms window after 1.5 s: %s", strerror(errno));
	dur = hitel_snapshot_time(w) - hitel_snapshot_start(w);
	ck_assert_msg(dur >= 100 * MS && dur <= 400 * MS, "window lasts %llu ns",
		      (unsigned long long)dur);
	p = tu_point(w, "test/ramp", "");
	/* The increase is what the ramp (1 per us) grew between the last
	 * reads before each snapshot: about the window, not the cumulative
	 * 1.5 s, and not nothing. */
	ck_assert_msg(p->value >= dur / 1000 / 2 && p->value <= dur / 1000 * 3 / 2,
		      "increase %llu over %llu ns", (unsigned long long)p->value,
		      (unsigned long long)dur);
	ck_assert_ptr_nonnull(p->hist);
	/* About 40 samples; a busy machine skips ticks, never adds any. */
	n = hitel_hist_count(p->hist);
	ck_assert_msg(n >= 10 && n <= dur / (5 * MS) + 2,
		      "%llu rate samples in a %llu ns window at 200 Hz", (unsigned long long)n,
		      (unsigned long long)dur);
	q50 = hitel_hist_quantile(p->hist, 0.5);
	ck_assert_msg(q50 >= 990000 && q50 <= 1040000, "median rate %llu, want 1e6",
		      (unsigned long long)q50);
	p2 = tu_point(w, "test/ramp2", "");
	ck_assert_uint_eq(p2->value, 2 * p->value);
	hitel_snapshot_free(w);

	w = hitel_engine_window(e, 100 * MS);
	ck_assert_ptr_nonnull(w);
	dur = hitel_snapshot_time(w) - hitel_snapshot_start(w);
	ck_assert_msg(dur >= 50 * MS && dur <= 200 * MS, "window lasts %llu ns",
		      (unsigned long long)dur);
	hitel_snapshot_free(w);

	s1 = hitel_engine_snapshot(e);
	sleep_ns(100 * MS);
	s2 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s1);
	ck_assert_ptr_nonnull(s2);
	ck_assert_uint_gt(tu_point(s2, "test/ramp", "")->value,
			  tu_point(s1, "test/ramp", "")->value);
	ck_assert_uint_gt(hitel_hist_count(tu_point(s2, "test/ramp", "")->hist),
			  hitel_hist_count(tu_point(s1, "test/ramp", "")->hist));
	/* The engine's own lateness histogram: one value per wake-up. */
	n = tu_point(s2, "hitel/engine/lateness", "")->value;
	ck_assert_msg(n >= 30 && n <= 400, "%llu wake-ups in 1.6 s at 200 Hz",
		      (unsigned long long)n);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_engine_free(e);
}
END_TEST

/* The engine stages its self timings and folds them in batches: a
 * cumulative snapshot still counts every read made before it, a window
 * counts the refresh times of the same reads as the sampler's own series,
 * and nothing stays staged after stop. */
START_TEST(test_self_timings_staged)
{
	struct hitel_engine *e = engine_new("200");
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap, *w;
	uint64_t before, count;
	int i;

	add(e, &ramp_ops);
	ck_assert_int_eq(hitel_engine_window_add(e, 100 * MS), 0);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(300 * MS);
	/* A read stages its time and counts itself under the registry lock,
	 * and a snapshot folds under it: the count is between the reads
	 * before and after, at any moment (staged, it would lag by up to
	 * two dozen reads). */
	for (i = 0; i < 8; i++) {
		tu_status(e, "ramp", &st);
		before = st.reads;
		snap = hitel_engine_snapshot(e);
		ck_assert_ptr_nonnull(snap);
		tu_status(e, "ramp", &st);
		count = tu_point(snap, "hitel/sampler/refresh/time", "sampler=ramp")->value;
		ck_assert_msg(count >= before && count <= st.reads,
			      "refresh count %llu, reads %llu..%llu", (unsigned long long)count,
			      (unsigned long long)before, (unsigned long long)st.reads);
		hitel_snapshot_free(snap);
		sleep_ns(7 * MS);
	}
	/* A window has as many refresh times as rates of the ramp: both are
	 * one per read of the window. */
	sleep_ns(250 * MS);
	w = hitel_engine_window(e, 100 * MS);
	ck_assert_ptr_nonnull(w);
	count = tu_point(w, "hitel/sampler/refresh/time", "sampler=ramp")->value;
	ck_assert_uint_gt(count, 5);
	ck_assert_uint_eq(count, hitel_hist_count(tu_point(w, "test/ramp", "")->hist));
	hitel_snapshot_free(w);
	hitel_engine_stop(e);
	/* Stopped: every read's time is in the registry itself (not only in
	 * what hitel_engine_snapshot folds), and so is every wake-up's
	 * lateness (one per read here: the ramp runs at every tick). */
	tu_status(e, "ramp", &st);
	snap = hitel_registry_snapshot(hitel_engine_registry(e), SEC);
	ck_assert_uint_eq(tu_point(snap, "hitel/sampler/refresh/time", "sampler=ramp")->value,
			  st.reads);
	ck_assert_uint_ge(tu_point(snap, "hitel/engine/lateness", "")->value, st.reads);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

/* Number of consecutive reads closer together than gap. */
static int close_pairs(const struct fake *f, uint64_t gap)
{
	uint64_t n = f->reads < MAX_STAMPS ? f->reads : MAX_STAMPS, i;
	int close = 0;

	for (i = 1; i < n; i++)
		if (f->stamps[i] - f->stamps[i - 1] < gap)
			close++;
	return close;
}

START_TEST(test_missed_no_burst)
{
	struct hitel_engine *e = engine_new("200");
	const uint64_t period = 5 * MS;
	struct hitel_snapshot *snap;
	uint64_t missed;
	int close;

	/* sleepy runs first in each of its ticks and sleeps 3 periods, at
	 * its default 20 Hz: about 20 stalls a second. */
	add(e, &sleepy_ops);
	add(e, &stamp_ops);
	fakes[F_SLEEPY].sleep_ns = 3 * period;
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(1000 * MS);
	hitel_engine_stop(e);

	missed = hitel_engine_missed(e);
	ck_assert_msg(missed >= 10, "only %llu missed deadlines", (unsigned long long)missed);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "hitel/engine/missed", "")->value, missed);
	hitel_snapshot_free(snap);
	/* Catch-up ticks right after a stall would read stamp back to back,
	 * microseconds apart, three times per stall. A tick that merely woke
	 * late rarely lands that close to the next one. */
	close = close_pairs(&fakes[F_STAMP], period / 50);
	ck_assert_msg(close < 10, "%d reads less than %llu ns apart in %llu", close,
		      (unsigned long long)(period / 50), (unsigned long long)fakes[F_STAMP].reads);
	ck_assert_msg(fakes[F_SLEEPY].reads >= 5 && fakes[F_SLEEPY].reads <= 22,
		      "sleepy read %llu times", (unsigned long long)fakes[F_SLEEPY].reads);
	hitel_engine_free(e);
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median time between consecutive reads: robust to the odd late tick. */
static uint64_t median_gap(const struct fake *f)
{
	static uint64_t gaps[MAX_STAMPS];
	uint64_t n = f->reads < MAX_STAMPS ? f->reads : MAX_STAMPS, i;

	ck_assert_uint_ge(n, 3);
	for (i = 1; i < n; i++)
		gaps[i - 1] = f->stamps[i] - f->stamps[i - 1];
	qsort(gaps, n - 1, sizeof(gaps[0]), cmp_u64);
	return gaps[(n - 1) / 2];
}

START_TEST(test_sampler_rate)
{
	struct hitel_engine *e = engine_new("200");
	struct hitel_sampler_status st;
	char err[256] = "";
	uint64_t t0, el_ms, fast, slow, odd, gap;

	add(e, &stamp_ops);
	ck_assert_int_eq(hitel_sampler_set(add(e, &slow_ops), "rate", "20", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_set(add(e, &odd_ops), "rate", "30", err, sizeof(err)), 0);
	t0 = tu_now();
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(1000 * MS);
	hitel_engine_stop(e);
	el_ms = (tu_now() - t0) / MS;
	fast = fakes[F_STAMP].reads;
	slow = fakes[F_SLOW].reads;
	odd = fakes[F_ODD].reads;
	/* A sampler never runs ahead of its own deadlines; a busy machine
	 * only skips ticks, so lower bounds are loose. */
	ck_assert_msg(slow >= 10 && slow <= 20 * el_ms / 1000 + 2, "20 Hz: %llu reads in %llu ms",
		      (unsigned long long)slow, (unsigned long long)el_ms);
	ck_assert_msg(odd >= 15 && odd <= 30 * el_ms / 1000 + 2, "30 Hz: %llu reads in %llu ms",
		      (unsigned long long)odd, (unsigned long long)el_ms);
	ck_assert_msg(fast >= odd && fast <= 200 * el_ms / 1000 + 2,
		      "200 Hz: %llu reads in %llu ms", (unsigned long long)fast,
		      (unsigned long long)el_ms);
	/* 20 Hz on a 5 ms grid: 50 ms apart; 30 Hz: 30 or 35 ms apart. */
	gap = median_gap(&fakes[F_SLOW]);
	ck_assert_msg(gap >= 45 * MS && gap <= 55 * MS, "20 Hz sampler: median gap %llu ns",
		      (unsigned long long)gap);
	gap = median_gap(&fakes[F_ODD]);
	ck_assert_msg(gap >= 27 * MS && gap <= 38 * MS, "30 Hz sampler: median gap %llu ns",
		      (unsigned long long)gap);
	tu_status(e, "slow", &st);
	ck_assert_uint_eq(st.rate_hz, 20);
	ck_assert_uint_eq(st.reads, slow);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_stop_fast)
{
	struct hitel_engine *e = engine_new("1");
	uint64_t t0, el;

	add(e, &stamp_ops);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(50 * MS);
	t0 = tu_now();
	hitel_engine_stop(e);
	el = tu_now() - t0;
	ck_assert_msg(el < 500 * MS, "stop took %llu ms at 1 Hz", (unsigned long long)(el / MS));
	ck_assert_uint_eq(fakes[F_STAMP].reads, 1);
	/* Samplers stay initialised across stop/start. */
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(20 * MS);
	hitel_engine_stop(e);
	ck_assert_uint_eq(fakes[F_STAMP].reads, 2);
	ck_assert_int_eq(fakes[F_STAMP].init_calls, 1);
	hitel_engine_free(e);
	ck_assert_int_eq(fakes[F_STAMP].fini_calls, 1);
}
END_TEST

/* ---- concurrent readers ------------------------------------------------- */

struct reader {
	pthread_t thread;
	struct hitel_engine *e;
	int id;
	uint64_t until;
	int windows, snapshots;
	char error[256];
};

/* Checks that hold in any consistent snapshot: ramp is a function of its
 * update time, and ramp2 is written in the same read. */
static int check_snapshot(struct reader *r, const struct hitel_snapshot *s, int window)
{
	const struct hitel_point *a = hitel_snapshot_find(s, "test/ramp", "");
	const struct hitel_point *b = hitel_snapshot_find(s, "test/ramp2", "");

	if (!a || !b) {
		snprintf(r->error, sizeof(r->error), "ramp missing");
		return -1;
	}
	if (b->value != 2 * a->value || a->updated_ns != b->updated_ns ||
	    (a->hist && hitel_hist_count(a->hist) != hitel_hist_count(b->hist))) {
		snprintf(r->error, sizeof(r->error), "torn: %llu vs %llu",
			 (unsigned long long)a->value, (unsigned long long)b->value);
		return -1;
	}
	if (!window && a->value != ramp_value(a->updated_ns)) {
		snprintf(r->error, sizeof(r->error), "ramp %llu at %llu",
			 (unsigned long long)a->value, (unsigned long long)a->updated_ns);
		return -1;
	}
	if (window && hitel_snapshot_time(s) <= hitel_snapshot_start(s)) {
		snprintf(r->error, sizeof(r->error), "empty window");
		return -1;
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t last = 0;

	/* Until the deadline, and longer (up to 10 s) while no window was
	 * seen: under valgrind, threads share one CPU and windows come late. */
	while ((tu_now() < r->until || (!r->windows && tu_now() < r->until + 10000 * MS)) &&
	       !r->error[0]) {
		struct hitel_snapshot *s = hitel_engine_snapshot(r->e);
		struct hitel_sampler_status st;
		const struct hitel_point *a;

		if (!s) {
			snprintf(r->error, sizeof(r->error), "snapshot: %s", strerror(errno));
			break;
		}
		a = hitel_snapshot_find(s, "test/ramp", "");
		if (a && a->value < last)
			snprintf(r->error, sizeof(r->error), "ramp went back");
		else if (a && check_snapshot(r, s, 0) == 0)
			last = a->value;
		hitel_snapshot_free(s);
		r->snapshots++;

		s = hitel_engine_window(r->e, r->id == 0 ? 100 * MS : 200 * MS);
		if (s) {
			check_snapshot(r, s, 1);
			hitel_snapshot_free(s);
			r->windows++;
		} else if (errno != EAGAIN) {
			snprintf(r->error, sizeof(r->error), "window: %s", strerror(errno));
		}
		if (hitel_engine_sampler_status(r->e, 0, &st) < 0 || !st.up)
			snprintf(r->error, sizeof(r->error), "status");
		(void)hitel_engine_missed(r->e);
		sleep_ns(100000); /* leave the engine thread room to run */
	}
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	struct hitel_engine *e = engine_new("200");
	struct reader r[3];
	int i;

	add(e, &ramp_ops);
	ck_assert_int_eq(hitel_engine_window_add(e, 100 * MS), 0);
	ck_assert_int_eq(hitel_engine_start(e), 0);
	/* A window registered while running works too. */
	ck_assert_int_eq(hitel_engine_window_add(e, 200 * MS), 0);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++) {
		r[i].e = e;
		r[i].id = i;
		r[i].until = tu_now() + 1200 * MS;
		ck_assert_int_eq(pthread_create(&r[i].thread, NULL, reader_main, &r[i]), 0);
	}
	for (i = 0; i < 3; i++)
		pthread_join(r[i].thread, NULL);
	hitel_engine_stop(e);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(!r[i].error[0], "reader %d: %s", i, r[i].error);
		ck_assert_int_gt(r[i].snapshots, 0);
		ck_assert_msg(r[i].windows > 0, "reader %d saw no window", i);
	}
	hitel_engine_free(e);
}
END_TEST

/* ---- takeover (reload on the same registry) ------------------------------ */

/* Options a new engine may not change under existing series. */
static const struct {
	const char *key, *value; /* NULL key: a new engine on another registry */
	const char *msg;
} takeover_refusals[] = {
	{ "rate_grouping_power", "3", "rate_grouping_power: cannot change from 5 to 3" },
	{ "hist_grouping_power", "6", "hist_grouping_power: cannot change from 7 to 6" },
	{ "max_series", "8", "max_series: cannot change from 1024 to 8" },
	{ "root", "/tmp", "root: cannot change from '/' to '/tmp'" },
	{ NULL, NULL, "not on the running engine's registry" },
};

START_TEST(test_takeover_refused)
{
	struct hitel_engine *old = engine_new("100"), *e;
	char err[256] = "";
	uint64_t reads;

	add(old, &ramp_ops);
	ck_assert_int_eq(hitel_engine_start(old), 0);
	sleep_ns(50 * MS);
	e = takeover_refusals[_i].key ? hitel_engine_new_on(hitel_engine_registry(old))
				      : hitel_engine_new();
	ck_assert_ptr_nonnull(e);
	if (takeover_refusals[_i].key)
		ck_assert_int_eq(hitel_engine_set(e, takeover_refusals[_i].key,
						  takeover_refusals[_i].value, err, sizeof(err)),
				 0);
	add(e, &ramp_ops);
	ck_assert_int_eq(hitel_engine_takeover(e, old, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, takeover_refusals[_i].msg) != NULL, "err '%s', want '%s'", err,
		      takeover_refusals[_i].msg);
	/* Nothing changed: old still runs its sampler. */
	reads = __atomic_load_n(&fakes[F_RAMP].reads, __ATOMIC_RELAXED);
	sleep_ns(50 * MS);
	ck_assert_uint_gt(__atomic_load_n(&fakes[F_RAMP].reads, __ATOMIC_RELAXED), reads);
	hitel_engine_free(e);
	ck_assert_int_eq(fakes[F_RAMP].fini_calls, 0);
	hitel_engine_free(old);
	ck_assert_int_eq(fakes[F_RAMP].fini_calls, 1);
}
END_TEST

START_TEST(test_takeover_misuse)
{
	struct hitel_engine *old = engine_new("100"), *e;
	char err[256] = "";

	errno = 0;
	ck_assert_ptr_null(hitel_engine_new_on(NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(hitel_engine_takeover(old, old, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(hitel_engine_takeover(NULL, old, err, sizeof(err)), -EINVAL);
	e = hitel_engine_new_on(hitel_engine_registry(old));
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(hitel_engine_run_once(e, hitel_now_ns()), 0);
	ck_assert_int_eq(hitel_engine_takeover(e, old, err, sizeof(err)), -EBUSY);
	/* e does not own the registry: freeing it first leaves old whole. */
	hitel_engine_free(e);
	ck_assert_int_eq(hitel_engine_run_once(old, hitel_now_ns()), 0);
	hitel_engine_free(old);
}
END_TEST

START_TEST(test_takeover_keeps_state)
{
	struct hitel_engine *old = engine_new("200"), *e;
	struct hitel_snapshot *s1, *s2, *w;
	const struct hitel_point *p1, *p2;
	struct hitel_sampler_status st;
	char err[256] = "";
	int kept;

	ck_assert_int_eq(hitel_sampler_set(add(old, &ramp_ops), "color", "red", err, sizeof(err)),
			 0);
	ck_assert_int_eq(hitel_sampler_set(add(old, &stamp_ops), "color", "red", err, sizeof(err)),
			 0);
	add(old, &mute_ops);
	fakes[F_FLAKY].read_fail_from = 1;
	fakes[F_FLAKY].read_fail_to = 1000000;
	fakes[F_FLAKY].read_err = EIO;
	add(old, &flaky_ops);
	ck_assert_int_eq(hitel_engine_window_add(old, 100 * MS), 0);
	ck_assert_int_eq(hitel_engine_window_add(old, 300 * MS), 0);
	ck_assert_int_eq(hitel_engine_start(old), 0);
	sleep_ns(400 * MS);

	/* The reload: ramp unchanged but for its rate, stamp with another
	 * option, flaky with the same ones, mute gone, many new. */
	e = hitel_engine_new_on(hitel_engine_registry(old));
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(hitel_engine_set(e, "sample_rate", "100", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_sampler_set(add(e, &ramp_ops), "color", "red", err, sizeof(err)),
			 0);
	ck_assert_int_eq(hitel_sampler_set(hitel_engine_sampler_add_ops(e, &ramp_ops), "rate",
					   "50", err, sizeof(err)),
			 0);
	ck_assert_int_eq(hitel_sampler_set(add(e, &stamp_ops), "color", "blue", err, sizeof(err)),
			 0);
	add(e, &flaky_ops);
	add(e, &many_ops);
	ck_assert_int_eq(hitel_engine_window_add(e, 100 * MS), 0);
	hitel_engine_on_status(e, on_status, NULL);

	kept = hitel_engine_takeover(e, old, err, sizeof(err));
	ck_assert_msg(kept == 2, "kept %d (%s), want ramp and flaky", kept, err);
	s1 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s1);
	/* The 100 ms window carried over: served before e even starts. */
	w = hitel_engine_window(e, 100 * MS);
	ck_assert_msg(w != NULL, "no carried window: %s", strerror(errno));
	hitel_snapshot_free(w);
	errno = 0;
	ck_assert_ptr_null(hitel_engine_window(e, 300 * MS)); /* registered with old only */
	ck_assert_int_eq(errno, ENOENT);
	tu_status(e, "ramp", &st);
	ck_assert_int_eq(st.up, 1);
	ck_assert_uint_eq(st.rate_hz, 50);
	tu_status(e, "flaky", &st);
	ck_assert_uint_gt(st.errors, 0);

	hitel_engine_free(old);
	ck_assert_int_eq(fakes[F_RAMP].init_calls, 1); /* moved, never re-initialised */
	ck_assert_int_eq(fakes[F_RAMP].fini_calls, 0);
	ck_assert_int_eq(fakes[F_FLAKY].fini_calls, 0);
	ck_assert_int_eq(fakes[F_STAMP].fini_calls, 1); /* other options: replaced */
	ck_assert_int_eq(fakes[F_MUTE].fini_calls, 1);	/* removed */
	ck_assert_int_eq(hitel_engine_start(e), 0);
	sleep_ns(300 * MS);
	ck_assert_int_eq(fakes[F_STAMP].init_calls, 2);
	ck_assert_int_eq(fakes[F_MANY].init_calls, 1);
	s2 = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s2);

	/* The ramp's series goes on: cumulative value and rate samples grow
	 * from where they were, no reset, same id. */
	p1 = tu_point(s1, "test/ramp", "");
	p2 = tu_point(s2, "test/ramp", "");
	ck_assert_uint_gt(p2->value, p1->value);
	ck_assert_uint_gt(hitel_hist_count(p2->hist), hitel_hist_count(p1->hist));
	ck_assert_uint_eq(p2->resets, 0);
	ck_assert_uint_eq(p2->id, p1->id);
	/* Self-metrics continue too: errors of the failing sampler, lateness. */
	ck_assert_uint_ge(tu_point(s2, "hitel/sampler/errors", "sampler=flaky")->value,
			  tu_point(s1, "hitel/sampler/errors", "sampler=flaky")->value);
	ck_assert_uint_gt(tu_point(s2, "hitel/engine/lateness", "")->value,
			  tu_point(s1, "hitel/engine/lateness", "")->value);
	/* The removed sampler's series stay, no longer updated; the new one's
	 * appear. */
	ck_assert_ptr_nonnull(hitel_snapshot_find(s2, "hitel/sampler/up", "sampler=mute"));
	ck_assert_ptr_nonnull(hitel_snapshot_find(s2, "test/many", "i=2"));
	ck_assert_uint_eq(hitel_engine_sampler_count(e), 4);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_engine_free(e); /* owns the registry now: ASan/valgrind see it go */
}
END_TEST


/* ---- shared files --------------------------------------------------------- */

/* Two samplers reading one file through hitel_sampler_open_shared(): "first"
 * rewrites the file right after reading it, so "second" sees the old text
 * only if the file was read once for the tick, as promised. */
static char *share_root;
static struct hitel_procfile *share_f[2];
static char share_seen[2][64];
static int share_fini;

static void share_write(const char *text)
{
	tu_write(share_root, "proc/shared", text);
}

static int share_idx(struct hitel_sampler *s)
{
	return strcmp(hitel_sampler_name(s), "second") == 0;
}

static int share_init(struct hitel_sampler *s)
{
	struct hitel_procfile **f = hitel_sampler_priv(s);
	int err = hitel_sampler_open_shared(s, "/proc/shared", f);

	if (err == 0)
		share_f[share_idx(s)] = *f;
	return err;
}

static int share_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct hitel_procfile **f = hitel_sampler_priv(s);
	const char *buf;
	size_t len;
	int err = hitel_sampler_read_shared(s, *f, &buf, &len);

	(void)now_ns;
	if (err < 0)
		return err;
	snprintf(share_seen[share_idx(s)], sizeof(share_seen[0]), "%.*s", (int)len, buf);
	if (share_idx(s) == 0) {
		char next[64];

		snprintf(next, sizeof(next), "%lu\n", strtoul(buf, NULL, 10) + 1);
		share_write(next);
	}
	return 0;
}

static void share_fini_fn(struct hitel_sampler *s)
{
	struct hitel_procfile **f = hitel_sampler_priv(s);

	hitel_procfile_free(*f);
	*f = NULL;
	share_fini++;
}

static const struct hitel_sampler_ops share_first = {
	.name = "first", .priv_size = sizeof(struct hitel_procfile *),
	.init = share_init, .read = share_read, .fini = share_fini_fn,
};
static const struct hitel_sampler_ops share_second = {
	.name = "second", .priv_size = sizeof(struct hitel_procfile *),
	.init = share_init, .read = share_read, .fini = share_fini_fn,
};

START_TEST(test_shared_file)
{
	struct hitel_engine *e = hitel_engine_new(), *e2;
	char err[256];
	uint64_t t = SEC;
	int i;

	share_root = tu_tmpdir();
	share_write("1\n");
	ck_assert_int_eq(hitel_engine_set(e, "root", share_root, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(hitel_engine_sampler_add_ops(e, &share_first));
	ck_assert_ptr_nonnull(hitel_engine_sampler_add_ops(e, &share_second));
	for (i = 1; i <= 3; i++, t += 10 * MS) {
		char want[16];

		ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
		snprintf(want, sizeof(want), "%d\n", i);
		ck_assert_str_eq(share_seen[0], want);
		ck_assert_str_eq(share_seen[1], want); /* not the rewritten i + 1 */
	}
	ck_assert_ptr_nonnull(share_f[0]);
	ck_assert_ptr_eq(share_f[0], share_f[1]);

	/* After a takeover the moved samplers keep their file and its
	 * once-per-tick reads, although the old engine is gone. */
	e2 = hitel_engine_new_on(hitel_engine_registry(e));
	ck_assert_ptr_nonnull(e2);
	ck_assert_int_eq(hitel_engine_set(e2, "root", share_root, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(hitel_engine_sampler_add_ops(e2, &share_first));
	ck_assert_ptr_nonnull(hitel_engine_sampler_add_ops(e2, &share_second));
	ck_assert_int_eq(hitel_engine_takeover(e2, e, err, sizeof(err)), 2);
	hitel_engine_free(e);
	ck_assert_int_eq(share_fini, 0);
	ck_assert_int_eq(hitel_engine_run_once(e2, t), 0);
	ck_assert_str_eq(share_seen[0], "4\n");
	ck_assert_str_eq(share_seen[1], "4\n");
	hitel_engine_free(e2);
	ck_assert_int_eq(share_fini, 2); /* valgrind/ASan: the file is closed */
	tu_rmtree(share_root);
	free(share_root);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc;

	tc = tcase_create("options");
	tcase_add_loop_test(tc, test_engine_options, 0,
			    (int)(sizeof(engine_opts) / sizeof(engine_opts[0])));
	tcase_add_loop_test(tc, test_sampler_options, 0,
			    (int)(sizeof(sampler_opts) / sizeof(sampler_opts[0])));
	tcase_add_test(tc, test_sampler_values_match);
	tcase_add_test(tc, test_window_add);
	tcase_add_test(tc, test_registry_settings);
	suite_add_tcase(s, tc);

	tc = tcase_create("run_once");
	tcase_add_test(tc, test_run_once_rates);
	tcase_add_test(tc, test_init_failure);
	tcase_add_loop_test(tc, test_read_recover, 0, 2);
	tcase_add_test(tc, test_shared_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("thread");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_thread_windows);
	tcase_add_test(tc, test_self_timings_staged);
	tcase_add_test(tc, test_missed_no_burst);
	tcase_add_test(tc, test_sampler_rate);
	tcase_add_test(tc, test_stop_fast);
	tcase_add_test(tc, test_concurrent_readers);
	suite_add_tcase(s, tc);

	tc = tcase_create("takeover");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_takeover_refused, 0,
			    (int)(sizeof(takeover_refusals) / sizeof(takeover_refusals[0])));
	tcase_add_test(tc, test_takeover_misuse);
	tcase_add_test(tc, test_takeover_keeps_state);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
