/* SPDX-License-Identifier: MIT */
/* perf sampler in a process that does not link libpfm4 (as hiteld): the
 * default events never load it, other names dlopen() it, and without it
 * only the events that need it are down, with a reason naming it. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* Is libpfm4 mapped into this process? */
static int libpfm_mapped(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[1024];
	int found = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/libpfm.so"))
			found = 1;
	fclose(f);
	return found;
}

static struct hitel_engine *perf_engine(const char *const *events)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "perf");
	char err[256];

	ck_assert_ptr_nonnull(s);
	for (; events && *events; events++)
		ck_assert_msg(hitel_sampler_set(s, "event", *events, err, sizeof(err)) == 0, "%s: %s",
			      *events, err);
	return e;
}

static uint64_t value(struct hitel_engine *e, const char *family, const char *labels)
{
	struct hitel_snapshot *snap = hitel_engine_snapshot(e);
	uint64_t v = tu_point(snap, family, labels)->value;

	hitel_snapshot_free(snap);
	return v;
}

static int hw_cycles_supported(void)
{
	struct perf_event_attr a = { .type = PERF_TYPE_HARDWARE,
				     .size = sizeof(a),
				     .config = PERF_COUNT_HW_CPU_CYCLES };
	long fd = syscall(SYS_perf_event_open, &a, -1, 0, -1, 0);

	if (fd < 0)
		return 0;
	close((int)fd);
	return 1;
}

/* Runs first: with CK_FORK=no a later test would have loaded libpfm4. */
START_TEST(test_default_events_do_not_load_libpfm)
{
	struct hitel_engine *e;
	struct hitel_sampler_status st;

	ck_assert_msg(!libpfm_mapped(), "libpfm4 mapped before the sampler ran");
	e = perf_engine(NULL);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, &st), 0);
	ck_assert_msg(st.up, "perf down: %s", st.reason);
	ck_assert_uint_eq(value(e, "perf/event/up", "event=context_switches"), 1);
	ck_assert_msg(!libpfm_mapped(), "the default perf events loaded libpfm4");
	hitel_engine_free(e);
}
END_TEST

/* Where the dynamic linker finds libpfm.so.4, asked of a child so that this
 * process does not load it. */
static int libpfm_path(char *out, size_t len)
{
	int pfd[2], st;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		void *h = dlopen("libpfm.so.4", RTLD_NOW | RTLD_LOCAL);
		struct link_map *lm = NULL;
		char real[PATH_MAX];

		if (!h || dlinfo(h, RTLD_DI_LINKMAP, &lm) < 0 || !realpath(lm->l_name, real))
			_exit(1);
		_exit(write(pfd[1], real, strlen(real)) > 0 ? 0 : 1);
	}
	close(pfd[1]);
	n = read(pfd[0], out, len - 1);
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (n <= 0 || !WIFEXITED(st) || WEXITSTATUS(st))
		return -ENOENT;
	out[n] = '\0';
	return 0;
}

/* In a child with its own mount namespace, an empty file over libpfm4: the
 * libpfm-only event is down with a reason naming the library and package,
 * the generic one counts. Exit status 0 ok, 77 cannot hide it here, else
 * the failed check's line; messages on stderr. */
static int without_libpfm(const char *path)
{
	const char *mine[] = { "perf::context-switches", "perf::cycles:u", NULL };
	const char *only[] = { "perf::cycles:u", NULL };
	char empty[] = "/tmp/hitel-nopfm-XXXXXX";
	struct hitel_sampler_status st;
	struct hitel_engine *e;
	int fd;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "no private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	fd = mkstemp(empty);
	if (fd < 0)
		return __LINE__;
	close(fd);
	if (mount(empty, path, NULL, MS_BIND, NULL) < 0) {
		fprintf(stderr, "cannot hide %s: %s\n", path, strerror(errno));
		unlink(empty);
		return 77;
	}
	unlink(empty);
	if (dlopen("libpfm.so.4", RTLD_NOW | RTLD_LOCAL)) /* still found elsewhere */
		return 77;

	e = perf_engine(mine);
	if (hitel_engine_run_once(e, tu_now()) < 0 || hitel_engine_sampler_status(e, 0, &st) < 0)
		return __LINE__;
	if (!st.up) {
		fprintf(stderr, "perf down: %s\n", st.reason);
		return __LINE__;
	}
	if (value(e, "perf/event/up", "event=context_switches") != 1 ||
	    value(e, "perf/event/up", "event=cycles_u") != 0)
		return __LINE__;
	hitel_engine_free(e);

	e = perf_engine(only);
	hitel_engine_run_once(e, tu_now());
	if (hitel_engine_sampler_status(e, 0, &st) < 0 || st.up)
		return __LINE__;
	fprintf(stderr, "without libpfm4: %s\n", st.reason);
	if (!strstr(st.reason, "libpfm.so.4") || !strstr(st.reason, "Debian package libpfm4"))
		return __LINE__;
	hitel_engine_free(e);
	return 0;
}

START_TEST(test_without_libpfm)
{
	char path[PATH_MAX];
	pid_t pid;
	int st;

	if (libpfm_mapped()) {
		fprintf(stderr, "libpfm4 already loaded (CK_FORK=no?): not checked\n");
		return;
	}
	ck_assert_msg(libpfm_path(path, sizeof(path)) == 0, "libpfm.so.4 not found");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(without_libpfm(path));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st), "child died");
	if (WEXITSTATUS(st) == 77) {
		fprintf(stderr, "cannot hide libpfm4 here (needs root): not checked\n");
		return;
	}
	ck_assert_msg(WEXITSTATUS(st) == 0, "check at check_perf_nopfm.c line %d failed",
		      WEXITSTATUS(st));
}
END_TEST

/* A name the built-in table lacks loads libpfm4 and counts through it. */
START_TEST(test_modified_name_loads_libpfm)
{
	const char *events[] = { "perf::context-switches", "perf::cycles:u", NULL };
	struct hitel_engine *e = perf_engine(events);

	ck_assert(libpfm_mapped());
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_uint_eq(value(e, "perf/event/up", "event=context_switches"), 1);
	ck_assert_uint_eq(value(e, "perf/event/up", "event=cycles_u"),
			  (uint64_t)hw_cycles_supported());
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_unknown_name_via_libpfm)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "perf");
	char err[256] = "";

	ck_assert_int_eq(hitel_sampler_set(s, "event", "nosuchpmu::FOO:BAR", err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "nosuchpmu::FOO:BAR") != NULL, "%s", err);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("perf_nopfm");
	TCase *tc = tcase_create("perf_nopfm");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_default_events_do_not_load_libpfm);
	tcase_add_test(tc, test_without_libpfm);
	tcase_add_test(tc, test_modified_name_loads_libpfm);
	tcase_add_test(tc, test_unknown_name_via_libpfm);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
