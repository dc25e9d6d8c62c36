/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *tu_fixture(const char *rel)
{
	const char *base = getenv("HITEL_FIXTURES");
	char *out;

	if (!base || !*base)
		base = TOP_SRCDIR "/tests/fixtures";
	if (asprintf(&out, "%s/%s", base, rel) < 0)
		abort();
	return out;
}

char *tu_tmpdir(void)
{
	char tmpl[] = "/tmp/hitel-test-XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return strdup(tmpl);
}

static void mkparents(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
}

void tu_write(const char *dir, const char *rel, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkparents(path);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
}

void tu_install(const char *dir, const char *fixture_rel, const char *rel)
{
	static char buf[1 << 16];
	char *path = tu_fixture(fixture_rel);
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	ck_assert_msg(feof(f), "%s: larger than %zu bytes", path, sizeof(buf) - 1);
	buf[n] = '\0';
	fclose(f);
	free(path);
	tu_write(dir, rel, buf);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct hitel_engine *tu_engine(const char *sampler, const char *root)
{
	struct hitel_engine *e;
	char err[256] = "";

	hitel_log_set_level(HITEL_LOG_WARNING);
	e = hitel_engine_new();
	ck_assert_ptr_nonnull(e);
	if (root)
		ck_assert_msg(hitel_engine_set(e, "root", root, err, sizeof(err)) == 0, "root: %s",
			      err);
	if (sampler)
		ck_assert_msg(hitel_engine_sampler_add(e, sampler) != NULL, "sampler %s: %s",
			      sampler, strerror(errno));
	return e;
}

const struct hitel_point *tu_point(const struct hitel_snapshot *snap, const char *family,
				   const char *labels)
{
	const struct hitel_point *p = hitel_snapshot_find(snap, family, labels);

	ck_assert_msg(p != NULL, "series %s{%s} missing from snapshot", family, labels);
	return p;
}

void tu_status(struct hitel_engine *e, const char *name, struct hitel_sampler_status *st)
{
	size_t i, n = hitel_engine_sampler_count(e);

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(hitel_engine_sampler_status(e, i, st), 0);
		if (strcmp(st->name, name) == 0)
			return;
	}
	ck_abort_msg("sampler %s not in the engine", name);
}

void tu_down_twice(struct hitel_engine *e, const char *name, uint64_t t_ns,
		   struct hitel_sampler_status *st)
{
	int i;

	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(hitel_engine_run_once(e, t_ns + (uint64_t)i * 1000000000ULL), 0);
		tu_status(e, name, st);
		ck_assert_msg(st->up == 0, "%s up after read %d of a failed file", name, i + 1);
	}
}

size_t tu_count_prefix(const struct hitel_snapshot *snap, const char *prefix)
{
	size_t i, n = 0;

	for (i = 0; i < hitel_snapshot_len(snap); i++)
		if (strncmp(hitel_snapshot_point(snap, i)->family, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

/* A trivial counter sampler: tests that one sampler failing leaves the
 * others working add it next to the one that fails. */
static const struct hitel_family_desc dummy_desc = {
	.name = "test/dummy/reads",
	.help = "Reads of the dummy sampler.",
	.unit = "reads",
	.kind = HITEL_KIND_COUNTER,
};

struct dummy_priv {
	struct hitel_series *series;
	uint64_t reads;
};

static int dummy_init(struct hitel_sampler *s)
{
	struct dummy_priv *p = hitel_sampler_priv(s);

	p->series = hitel_registry_series(hitel_sampler_registry(s), &dummy_desc, NULL, 0);
	return p->series ? 0 : -ENOMEM;
}

static int dummy_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct dummy_priv *p = hitel_sampler_priv(s);

	hitel_series_counter(p->series, ++p->reads, now_ns);
	return 0;
}

const struct hitel_sampler_ops tu_dummy_ops = {
	.name = "dummy",
	.help = "test",
	.priv_size = sizeof(struct dummy_priv),
	.init = dummy_init,
	.read = dummy_read,
};

uint64_t tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
