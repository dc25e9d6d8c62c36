/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check suites. */
#ifndef HITEL_TESTUTIL_H
#define HITEL_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "registry.h"

/* Run one suite; returns the process exit status (0 when all passed).
 * Output goes through Check's TAP writer when CK_TAP_LOG_FILE_NAME is set
 * (make check sets it to "-" so every test case is counted). */
int tu_run(Suite *s);

/* Absolute path of a fixture: $HITEL_FIXTURES or TOP_SRCDIR/tests/fixtures,
 * joined with rel. Static buffer per call site is not needed: returns a
 * malloc'd string the caller frees. */
char *tu_fixture(const char *rel);

/* Make a temporary directory tree for synthetic procfs roots; returns a
 * malloc'd path. tu_write() writes a file under it, creating parents. */
char *tu_tmpdir(void);
void tu_write(const char *dir, const char *rel, const char *content);
/* Copy the fixture file <fixtures>/<fixture_rel> (up to 64 KiB) to
 * <dir>/<rel> with tu_write(): an existing file keeps its inode, so a
 * sampler's open fd sees the new content, as with procfs. */
void tu_install(const char *dir, const char *fixture_rel, const char *rel);
void tu_rmtree(const char *dir);

/* An engine with only `sampler` added, root at `root` (NULL: "/"), log
 * quiet below WARNING. Fails the test on error. */
struct hitel_engine *tu_engine(const char *sampler, const char *root);

/* Point lookup in a snapshot that fails the test with a clear message when
 * the series is missing. labels as for hitel_snapshot_find. */
const struct hitel_point *tu_point(const struct hitel_snapshot *snap, const char *family,
				   const char *labels);

/* Status of the sampler called name; fails the test if it is not there. */
void tu_status(struct hitel_engine *e, const char *name, struct hitel_sampler_status *st);
/* Reads at t_ns and one second later, each leaving sampler name down: a
 * file that failed must fail again when its content repeats (the repeat
 * paths record a file's last parse only after a read that succeeded). The
 * second read's status goes to *st. */
void tu_down_twice(struct hitel_engine *e, const char *name, uint64_t t_ns,
		   struct hitel_sampler_status *st);
/* Number of points whose family starts with prefix. */
size_t tu_count_prefix(const struct hitel_snapshot *snap, const char *prefix);

/* "dummy": counts its reads in test/dummy/reads. */
extern const struct hitel_sampler_ops tu_dummy_ops;

/* Monotonic ns. */
uint64_t tu_now(void);

#endif
