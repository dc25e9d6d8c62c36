/* SPDX-License-Identifier: MIT */
/* The config file: syntax, the sampler set, and errors that name file, line
 * and option. Engines here are configured, never started. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "engine.h"
#include "export.h"
#include "log.h"
#include "testutil.h"

/* --- log capture ------------------------------------------------------------------ */

static char logged[8192];
static int nerrors;

static void capture(enum hitel_log_level level, const char *msg, void *ctx)
{
	size_t n = strlen(logged);

	(void)ctx;
	if (level != HITEL_LOG_ERR)
		return;
	nerrors++;
	snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

static void setup(void)
{
	logged[0] = '\0';
	nerrors = 0;
	hitel_log_set(capture, NULL);
	hitel_log_set_level(HITEL_LOG_WARNING);
}

static void teardown(void)
{
	hitel_log_set(NULL, NULL);
}

/* --- a wrapper key, as hiteld has ---------------------------------------------------- */

struct wrapper {
	char listen[64];
	int calls;
};

static int wrapper_key(const char *key, const char *value, char *err, size_t errlen, void *ctx)
{
	struct wrapper *w = ctx;

	if (strcmp(key, "listen") != 0)
		return -ENOENT;
	w->calls++;
	if (!strchr(value, ':')) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", value);
		return -EINVAL;
	}
	snprintf(w->listen, sizeof(w->listen), "%s", value);
	return 0;
}

struct loaded {
	struct hitel_engine *e;
	struct hitel_export_opts x;
	struct wrapper w;
	char err[512];
	int ret;
};

static void load(struct loaded *l, const char *text)
{
	struct hitel_config_target t;

	memset(l, 0, sizeof(*l));
	l->e = hitel_engine_new();
	ck_assert_ptr_nonnull(l->e);
	hitel_export_opts_default(&l->x);
	t.engine = l->e;
	t.export = &l->x;
	t.key = wrapper_key;
	t.ctx = &l->w;
	l->ret = hitel_config_load_buffer(text, strlen(text), "t.conf", &t, l->err, sizeof(l->err));
}

static int has_sampler(struct hitel_engine *e, const char *name)
{
	struct hitel_sampler_status st;
	size_t i;

	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		ck_assert_int_eq(hitel_engine_sampler_status(e, i, &st), 0);
		if (strcmp(st.name, name) == 0)
			return 1;
	}
	return 0;
}

static size_t builtin_count(int only_default)
{
	size_t i, n = 0;

	for (i = 0; hitel_builtin_samplers[i]; i++)
		if (!only_default || hitel_builtin_samplers[i]->default_enabled)
			n++;
	return n;
}

/* A built-in sampler that is not default-enabled, or NULL. */
static const char *non_default_sampler(void)
{
	size_t i;

	for (i = 0; hitel_builtin_samplers[i]; i++)
		if (!hitel_builtin_samplers[i]->default_enabled)
			return hitel_builtin_samplers[i]->name;
	return NULL;
}

/* --- good files -------------------------------------------------------------------- */

START_TEST(test_good_file)
{
	static const char text[] = "# hiteld.conf\r\n"
				   "sample_rate = 50\n"
				   "   percentiles = 50 90 99 99.9 100   # five of them\n"
				   "bucket_grouping_power=3\n"
				   "listen = \"127.0.0.1:4242\"\n"
				   "\n"
				   "[sampler disk]\n"
				   "include = vd*  # virtio\n"
				   "include = \"sd# odd\"\n"
				   "exclude = loop*\n"
				   "rate = 10\n"
				   "[export]\n"
				   "buckets = off\n";
	struct hitel_sampler *disk;
	struct loaded l;

	load(&l, text);
	ck_assert_msg(l.ret == 0, "load: %d %s", l.ret, l.err);
	ck_assert_int_eq(nerrors, 0);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), builtin_count(1));
	/* Exporter keys, top level and [export]. */
	ck_assert_uint_eq(l.x.nq, 5);
	ck_assert_double_eq_tol(l.x.q[3], 0.999, 1e-12);
	ck_assert_uint_eq(l.x.bucket_grouping_power, 3);
	ck_assert_int_eq(l.x.buckets, 0);
	/* Wrapper key, quotes removed. */
	ck_assert_str_eq(l.w.listen, "127.0.0.1:4242");
	/* Sampler options in order, comments stripped, quoted '#' kept. */
	disk = hitel_engine_sampler_add(l.e, "disk");
	ck_assert_ptr_nonnull(disk);
	ck_assert_uint_eq(hitel_sampler_values(disk, "include"), 2);
	ck_assert_str_eq(hitel_sampler_value(disk, "include", 0), "vd*");
	ck_assert_str_eq(hitel_sampler_value(disk, "include", 1), "sd# odd");
	ck_assert_str_eq(hitel_sampler_value(disk, "exclude", 0), "loop*");
	ck_assert_str_eq(hitel_sampler_value(disk, "rate", 0), "10");
	hitel_engine_free(l.e);
}
END_TEST

START_TEST(test_embedded_default)
{
	struct loaded l;
	size_t i;

	load(&l, "");
	ck_assert_int_eq(l.ret, 0);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), builtin_count(1));
	for (i = 0; hitel_builtin_samplers[i]; i++)
		ck_assert_int_eq(has_sampler(l.e, hitel_builtin_samplers[i]->name),
				 hitel_builtin_samplers[i]->default_enabled != 0);
	ck_assert_uint_eq(l.x.nq, 5); /* exporter defaults untouched */
	ck_assert_int_eq(l.w.calls, 0);
	hitel_engine_free(l.e);
}
END_TEST

START_TEST(test_sampler_set)
{
	const char *extra = non_default_sampler();
	char text[256];
	struct loaded l;

	load(&l, "samplers = none\n[sampler cpu]\n[sampler memory]\nrate = 5\n");
	ck_assert_int_eq(l.ret, 0);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), 2);
	ck_assert(has_sampler(l.e, "cpu") && has_sampler(l.e, "memory"));
	hitel_engine_free(l.e);

	load(&l, "samplers = all -disk\n");
	ck_assert_int_eq(l.ret, 0);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), builtin_count(0) - 1);
	ck_assert(!has_sampler(l.e, "disk"));
	hitel_engine_free(l.e);

	load(&l, "samplers = cpu, network\n");
	ck_assert_int_eq(l.ret, 0);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), 2);
	ck_assert(has_sampler(l.e, "network"));
	hitel_engine_free(l.e);

	/* enabled = false removes a default one; its options are still checked
	 * (this one is valid). */
	load(&l, "[sampler disk]\nenabled = false\nrate = 10\n");
	ck_assert_msg(l.ret == 0, "%s", l.err);
	ck_assert_uint_eq(hitel_engine_sampler_count(l.e), builtin_count(1) - 1);
	ck_assert(!has_sampler(l.e, "disk"));
	hitel_engine_free(l.e);

	/* A section adds a sampler that is not in the default set. */
	if (extra) {
		snprintf(text, sizeof(text), "[sampler %s]\n", extra);
		load(&l, text);
		ck_assert_msg(l.ret == 0, "%s", l.err);
		ck_assert(has_sampler(l.e, extra));
		ck_assert_uint_eq(hitel_engine_sampler_count(l.e), builtin_count(1) + 1);
		hitel_engine_free(l.e);
	}
}
END_TEST

/* --- errors: each names file, line and option ------------------------------------- */

static const struct {
	const char *text;
	const char *want; /* the start of the (first) error message */
} bad[] = {
    {"sample_rate = 0\n", "t.conf:1: option 'sample_rate': "},
    {"sample_rate = fast\n", "t.conf:1: option 'sample_rate': "},
    {"\npercentiles = 50 abc\n", "t.conf:2: option 'percentiles': "},
    {"bucket_grouping_power = 9\n", "t.conf:1: option 'bucket_grouping_power': "},
    {"bogus = 1\n", "t.conf:1: unknown option 'bogus'"},
    {"listen = nowhere\n", "t.conf:1: option 'listen': 'nowhere' is not HOST:PORT"},
    {"# c\n[sampler disk]\nrate = 0\n", "t.conf:3: option 'rate' for sampler 'disk': "},
    {"sample_rate = 10\n[sampler cpu]\nrate = 50\n", "t.conf:3: option 'rate' for sampler 'cpu': "},
    {"[sampler cpu]\nbogus = 1\n", "t.conf:2: unknown option 'bogus' for sampler 'cpu'"},
    {"[sampler disk]\nenabled = maybe\n", "t.conf:2: option 'enabled' for sampler 'disk': "},
    {"[sampler disk]\nenabled = false\nrate = 0\n", "t.conf:3: option 'rate' for sampler 'disk': "},
    {"[sampler disk]\ninclude =\n", "t.conf:2: option 'include' for sampler 'disk': "},
    {"[sampler nosuch]\nrate = 1\n", "t.conf:1: sampler 'nosuch': unknown sampler (known: "},
    {"samplers = default nosuch\n",
     "t.conf:1: option 'samplers': unknown sampler 'nosuch' (known: "},
    {"[export]\nsample_rate = 10\n", "t.conf:2: unknown option 'sample_rate' in section [export]"},
    {"just some words\n", "t.conf:1: syntax error: expected 'key = value'"},
    {"= 5\n", "t.conf:1: syntax error: '' is not an option name"},
    {"a b = 5\n", "t.conf:1: syntax error: 'a b' is not an option name"},
    {"[weird]\nx = 1\n", "t.conf:1: unknown section '[weird]'"},
    {"[sampler disk\n", "t.conf:1: syntax error: expected '[sampler NAME]'"},
    {"[sampler]\n", "t.conf:1: unknown section '[sampler]'"},
    {"listen = \"127.0.0.1:1\n", "t.conf:1: option 'listen': unterminated quoted value"},
    {"listen = \"127.0.0.1:1\" x\n", "t.conf:1: option 'listen': text after the quoted"},
};

START_TEST(test_errors)
{
	struct loaded l;

	load(&l, bad[_i].text);
	ck_assert_msg(l.ret == -EINVAL, "case %d: returned %d (%s)", _i, l.ret, l.err);
	ck_assert_msg(strncmp(l.err, bad[_i].want, strlen(bad[_i].want)) == 0,
		      "case %d: got \"%s\", want \"%s...\"", _i, l.err, bad[_i].want);
	/* The same message went to the log. */
	ck_assert_int_ge(nerrors, 1);
	ck_assert_msg(strstr(logged, l.err) != NULL, "not logged: %s", l.err);
	hitel_engine_free(l.e);
}
END_TEST

START_TEST(test_all_errors_reported)
{
	static const char text[] = "sample_rate = 0\n"
				   "garbage line\n"
				   "[sampler disk]\n"
				   "rate = 0\n"
				   "[sampler nosuch]\n"
				   "[export]\n"
				   "percentiles = 0\n";
	struct loaded l;

	load(&l, text);
	ck_assert_int_eq(l.ret, -EINVAL);
	/* The first error in err is the syntax error (reported first); every
	 * other one is in the log too. */
	ck_assert_int_eq(nerrors, 5);
	ck_assert_ptr_nonnull(strstr(logged, "t.conf:1: option 'sample_rate'"));
	ck_assert_ptr_nonnull(strstr(logged, "t.conf:2: syntax error"));
	ck_assert_ptr_nonnull(strstr(logged, "t.conf:4: option 'rate' for sampler 'disk'"));
	ck_assert_ptr_nonnull(strstr(logged, "t.conf:5: sampler 'nosuch'"));
	ck_assert_ptr_nonnull(strstr(logged, "t.conf:7: option 'percentiles'"));
	ck_assert_ptr_nonnull(strstr(l.err, "t.conf:2: syntax error"));
	hitel_engine_free(l.e);
}
END_TEST

START_TEST(test_parse_file)
{
	static const char text[] = "sample_rate = 20\n[sampler cpu]\nrate = 30\n";
	struct hitel_config_target t;
	struct hitel_export_opts x;
	struct hitel_engine *e = hitel_engine_new();
	char err[256];
	FILE *f = fmemopen((void *)text, sizeof(text) - 1, "r");
	int ret;

	ck_assert_ptr_nonnull(f);
	hitel_export_opts_default(&x);
	t.engine = e;
	t.export = &x;
	t.key = NULL;
	t.ctx = NULL;
	ret = hitel_config_load(f, "/etc/hiteld.conf", &t, err, sizeof(err));
	fclose(f);
	/* rate 30 > sample_rate 20: the engine key was applied first. */
	ck_assert_int_eq(ret, -EINVAL);
	ck_assert_msg(strncmp(err, "/etc/hiteld.conf:3: option 'rate' for sampler 'cpu': ", 53) ==
			  0,
		      "%s", err);
	/* The engine's own "for sampler 'cpu'" is not repeated. */
	ck_assert_ptr_null(strstr(strstr(err, "for sampler") + 1, "for sampler"));
	ck_assert_ptr_nonnull(strstr(err, "20"));
	hitel_engine_free(e);
}
END_TEST

/* Wrapper keys are unknown without a callback, exporter keys without opts. */
START_TEST(test_no_wrapper)
{
	struct hitel_config_target t = {0};
	char err[256];

	t.engine = hitel_engine_new();
	ck_assert_int_eq(
	    hitel_config_load_buffer("listen = 1:2\n", 13, "w.conf", &t, err, sizeof(err)),
	    -EINVAL);
	ck_assert_str_eq(err, "w.conf:1: unknown option 'listen'");
	ck_assert_int_eq(
	    hitel_config_load_buffer("percentiles = 50\n", 17, "w.conf", &t, err, sizeof(err)),
	    -EINVAL);
	ck_assert_str_eq(err, "w.conf:1: unknown option 'percentiles'");
	hitel_engine_free(t.engine);
}
END_TEST

/* --- what a reload may apply --------------------------------------------------------- */

static struct hitel_config *applied(const char *text, struct hitel_engine **e)
{
	struct hitel_config *c = hitel_config_new();
	struct hitel_config_target t;
	struct hitel_export_opts x;
	struct wrapper w;
	char err[256];

	ck_assert_ptr_nonnull(c);
	*e = hitel_engine_new();
	hitel_export_opts_default(&x);
	memset(&w, 0, sizeof(w));
	t.engine = *e;
	t.export = &x;
	t.key = wrapper_key;
	t.ctx = &w;
	ck_assert_int_eq(hitel_config_parse(c, text, strlen(text), "r.conf", err, sizeof(err)), 0);
	ck_assert_msg(hitel_config_apply(c, &t, err, sizeof(err)) == 0, "%s", err);
	return c;
}

static const struct {
	const char *a, *b;
	int same;
} reloads[] = {
    {"sample_rate = 50\npercentiles = 50\n", "# new\nsample_rate = 50\n\npercentiles = 99\n", 1},
    {"listen = 127.0.0.1:1\n", "listen = 127.0.0.1:2\n[export]\nbuckets = off\n", 1},
    {"sample_rate = 50\n", "sample_rate = 60\n", 0},
    {"[sampler disk]\nrate = 10\n", "[sampler disk]\nrate = 20\n", 0},
    {"", "[sampler disk]\nenabled = false\n", 0},
    {"", "samplers = default\n", 0},
    {"[sampler disk]\ninclude = a\n", "[sampler disk]\ninclude = a\n", 1},
};

START_TEST(test_same_engine)
{
	struct hitel_engine *ea, *eb;
	struct hitel_config *a = applied(reloads[_i].a, &ea), *b = applied(reloads[_i].b, &eb);

	ck_assert_int_eq(hitel_config_same_engine(a, b), reloads[_i].same);
	ck_assert_int_eq(hitel_config_same_engine(b, a), reloads[_i].same);
	hitel_config_free(a);
	hitel_config_free(b);
	hitel_engine_free(ea);
	hitel_engine_free(eb);
}
END_TEST

START_TEST(test_add_entries)
{
	struct hitel_config *c = hitel_config_new();
	struct hitel_config_target t = {0};
	char err[256];

	/* What a wrapper with its own syntax (collectd's blocks) does. */
	ck_assert_int_eq(hitel_config_add(c, NULL, "samplers", "none", "collectd.conf", 10), 0);
	ck_assert_int_eq(hitel_config_add(c, "cpu", NULL, NULL, "collectd.conf", 11), 0);
	ck_assert_int_eq(hitel_config_add(c, "cpu", "rate", "0", "collectd.conf", 12), 0);
	ck_assert_int_eq(hitel_config_add(c, NULL, NULL, "x", "f", 1), -EINVAL);
	t.engine = hitel_engine_new();
	ck_assert_int_eq(hitel_config_apply(c, &t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strncmp(err, "collectd.conf:12: option 'rate' for sampler 'cpu': ", 51) == 0,
		      "%s", err);
	ck_assert_uint_eq(hitel_engine_sampler_count(t.engine), 1);
	hitel_engine_free(t.engine);
	hitel_config_free(c);
	hitel_config_free(NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_embedded_default);
	tcase_add_test(tc, test_sampler_set);
	tcase_add_loop_test(tc, test_errors, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_all_errors_reported);
	tcase_add_test(tc, test_parse_file);
	tcase_add_test(tc, test_no_wrapper);
	tcase_add_loop_test(tc, test_same_engine, 0, sizeof(reloads) / sizeof(reloads[0]));
	tcase_add_test(tc, test_add_entries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
