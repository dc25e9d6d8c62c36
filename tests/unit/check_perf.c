/* SPDX-License-Identifier: MIT */
/* perf sampler: libpfm4 names, software events live, the hardware path
 * through whatever this machine offers, hotplug, accuracy against perf.
 * Linked with libpfm4 to check the sampler's built-in generic events
 * against it (check_perf_nopfm checks that they never load it). */
#include <errno.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* core/samplers/perf.c */
const char *hitel_perf_generic_name(size_t i);
int hitel_perf_encode_generic(const char *name, struct perf_event_attr *attr);
int hitel_perf_encode(const char *name, struct perf_event_attr *attr);

static struct hitel_engine *perf_engine(const char *root, const char **opts)
{
	struct hitel_engine *e = tu_engine(NULL, root);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "perf");
	char err[256];

	ck_assert_ptr_nonnull(s);
	for (; opts && opts[0]; opts += 2)
		ck_assert_msg(hitel_sampler_set(s, opts[0], opts[1], err, sizeof(err)) == 0, "%s: %s",
			      opts[0], err);
	return e;
}

static uint64_t value(struct hitel_engine *e, const char *family, const char *labels)
{
	struct hitel_snapshot *snap = hitel_engine_snapshot(e);
	uint64_t v = tu_point(snap, family, labels)->value;

	hitel_snapshot_free(snap);
	return v;
}

/* Ping-pong over two pipes with a thread: two context switches per round.
 * A thread, not a child process, so valgrind sees no inherited "leak". */
struct pp {
	int a[2], b[2], rounds;
};

static void *pong(void *arg)
{
	struct pp *p = arg;
	char c;
	int i;

	for (i = 0; i < p->rounds; i++)
		if (read(p->a[0], &c, 1) != 1 || write(p->b[1], &c, 1) != 1)
			break;
	return NULL;
}

static void pingpong(int rounds)
{
	struct pp p = { .rounds = rounds };
	pthread_t t;
	char c = 'x';
	int i;

	ck_assert_int_eq(pipe(p.a), 0);
	ck_assert_int_eq(pipe(p.b), 0);
	pthread_create(&t, NULL, pong, &p);
	for (i = 0; i < rounds; i++) {
		ck_assert_int_eq(write(p.a[1], &c, 1), 1);
		ck_assert_int_eq(read(p.b[0], &c, 1), 1);
	}
	pthread_join(t, NULL);
	close(p.a[0]);
	close(p.a[1]);
	close(p.b[0]);
	close(p.b[1]);
}

START_TEST(test_bad_event_name)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "perf");
	char err[256] = "";

	ck_assert_int_eq(hitel_sampler_set(s, "event", "perf::no-such-event", err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "perf::no-such-event") != NULL, "error names the event: %s",
		      err);
	ck_assert_int_eq(hitel_sampler_set(s, "percpu", "maybe", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "percpu") != NULL, "%s", err);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_software_events_count)
{
	const char *opts[] = { "event", "perf::context-switches", "event", "perf::page-faults",
			       NULL };
	struct hitel_engine *e = perf_engine(NULL, opts);
	uint64_t cs0, cs1, pf0, pf1;
	char *mem;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	cs0 = value(e, "perf/events", "event=context_switches");
	pf0 = value(e, "perf/events", "event=page_faults");
	pingpong(5000);
	mem = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(mem, MAP_FAILED);
	memset(mem, 1, 64 << 20); /* 16384 first touches */
	munmap(mem, 64 << 20);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	cs1 = value(e, "perf/events", "event=context_switches");
	pf1 = value(e, "perf/events", "event=page_faults");
	ck_assert_msg(cs1 - cs0 >= 10000, "context switches +%llu, want >= 10000",
		      (unsigned long long)(cs1 - cs0));
	ck_assert_msg(pf1 - pf0 >= 16000, "page faults +%llu, want >= 16000",
		      (unsigned long long)(pf1 - pf0));
	ck_assert_uint_eq(value(e, "perf/event/up", "event=context_switches"), 1);
	hitel_engine_free(e);
}
END_TEST

/* What libpfm4 itself makes of name, with the sampler's privilege levels. */
static int pfm_encode(const char *name, struct perf_event_attr *attr)
{
	pfm_perf_encode_arg_t arg;

	ck_assert_int_eq(pfm_initialize(), PFM_SUCCESS);
	memset(attr, 0, sizeof(*attr));
	memset(&arg, 0, sizeof(arg));
	arg.attr = attr;
	arg.size = sizeof(arg);
	return pfm_get_os_event_encoding(name, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT_EXT, &arg);
}

static void assert_same_attr(const char *name, struct perf_event_attr *ours,
			     struct perf_event_attr *theirs)
{
	ck_assert_msg(ours->type == theirs->type && ours->config == theirs->config &&
			      ours->config1 == theirs->config1 && ours->config2 == theirs->config2,
		      "%s: type/config %u/%#llx, libpfm4 %u/%#llx", name, ours->type,
		      (unsigned long long)ours->config, theirs->type,
		      (unsigned long long)theirs->config);
	ck_assert_msg(ours->exclude_user == theirs->exclude_user &&
			      ours->exclude_kernel == theirs->exclude_kernel &&
			      ours->exclude_hv == theirs->exclude_hv &&
			      ours->exclude_idle == theirs->exclude_idle &&
			      ours->exclude_host == theirs->exclude_host &&
			      ours->exclude_guest == theirs->exclude_guest &&
			      ours->precise_ip == theirs->precise_ip,
		      "%s: exclude u/k/hv/idle/host/guest %d%d%d%d%d%d, libpfm4 %d%d%d%d%d%d", name,
		      ours->exclude_user, ours->exclude_kernel, ours->exclude_hv, ours->exclude_idle,
		      ours->exclude_host, ours->exclude_guest, theirs->exclude_user,
		      theirs->exclude_kernel, theirs->exclude_hv, theirs->exclude_idle,
		      theirs->exclude_host, theirs->exclude_guest);
	/* And nothing else differs (libpfm4 leaves size to the caller). */
	theirs->size = ours->size;
	ck_assert_msg(memcmp(ours, theirs, sizeof(*ours)) == 0, "%s: attr differs from libpfm4's",
		      name);
}

START_TEST(test_generic_table_matches_libpfm)
{
	/* The sampler's defaults and the generic names users write most: all
	 * must be in the table, so the default set never needs libpfm4. */
	static const char *const must[] = {
		"cycles", "cpu-cycles", "instructions", "cache-references", "cache-misses",
		"branches", "branch-instructions", "branch-misses", "bus-cycles",
		"stalled-cycles-frontend", "stalled-cycles-backend", "ref-cycles", "cpu-clock",
		"task-clock", "page-faults", "faults", "context-switches", "cs", "cpu-migrations",
		"migrations", "minor-faults", "major-faults",
	};
	struct perf_event_attr ours, theirs;
	char name[96];
	const char *g;
	size_t i;

	for (i = 0; (g = hitel_perf_generic_name(i)) != NULL; i++) {
		snprintf(name, sizeof(name), "perf::%s", g);
		ck_assert_msg(hitel_perf_encode_generic(name, &ours) == 0, "%s not built in", name);
		ck_assert_msg(pfm_encode(name, &theirs) == PFM_SUCCESS, "libpfm4 does not know %s",
			      name);
		assert_same_attr(name, &ours, &theirs);
	}
	ck_assert_uint_ge(i, sizeof(must) / sizeof(must[0]));
	for (i = 0; i < sizeof(must) / sizeof(must[0]); i++) {
		snprintf(name, sizeof(name), "perf::%s", must[i]);
		ck_assert_msg(hitel_perf_encode_generic(name, &ours) == 0, "%s not built in", name);
	}
	/* Matched without regard to case, as libpfm4 does. */
	ck_assert_int_eq(hitel_perf_encode_generic("PERF::Context-Switches", &ours), 0);
	ck_assert_int_eq(pfm_encode("PERF::Context-Switches", &theirs), PFM_SUCCESS);
	assert_same_attr("PERF::Context-Switches", &ours, &theirs);
	/* Modifiers, other PMUs, bare names, cache events: libpfm4's business. */
	ck_assert_int_eq(hitel_perf_encode_generic("perf::cycles:u", &ours), -ENOENT);
	ck_assert_int_eq(hitel_perf_encode_generic("cycles", &ours), -ENOENT);
	ck_assert_int_eq(hitel_perf_encode_generic("perf::L1-DCACHE-LOADS", &ours), -ENOENT);
	ck_assert_int_eq(hitel_perf_encode_generic("skx::INST_RETIRED:ANY", &ours), -ENOENT);
	ck_assert_int_eq(hitel_perf_encode_generic("perf::", &ours), -ENOENT);
}
END_TEST

/* Names the table lacks go through libpfm4 (dlopen()ed), with its result. */
START_TEST(test_other_names_through_libpfm)
{
	static const char *const names[] = { "perf::cycles:u", "perf::context-switches:k",
					     "perf::L1-DCACHE-LOADS", "cycles" };
	struct perf_event_attr ours, theirs;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_msg(hitel_perf_encode(names[i], &ours) == 0, "%s not encoded", names[i]);
		ck_assert_int_eq(pfm_encode(names[i], &theirs), PFM_SUCCESS);
		assert_same_attr(names[i], &ours, &theirs);
	}
	ck_assert_int_eq(ours.type, PERF_TYPE_HARDWARE);
	ck_assert_int_eq(hitel_perf_encode("perf::cycles:u", &ours), 0);
	ck_assert_int_eq(ours.exclude_kernel, 1);
	ck_assert_int_eq(ours.exclude_user, 0);
	ck_assert_int_eq(hitel_perf_encode("perf::no-such-event", &ours), -EINVAL);
	ck_assert_int_eq(hitel_perf_encode("nosuchpmu::CYCLES", &ours), -EINVAL);
}
END_TEST

/* Can this machine count hardware cycles at all? Asked of the kernel
 * directly, so the test checks hitel's answer against the truth. */
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

START_TEST(test_default_set_hardware_path)
{
	struct hitel_engine *e = perf_engine(NULL, NULL);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	int hw = hw_cycles_supported();

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	usleep(20000);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_sampler_status(e, 0, &st), 0);
	/* Software events always work, so the sampler is up either way. */
	ck_assert_msg(st.up, "perf down: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "perf/event/up", "event=cycles")->value, (uint64_t)hw);
	ck_assert_uint_eq(tu_point(snap, "perf/event/up", "event=context_switches")->value, 1);
	tu_point(snap, "perf/events", "event=cpu_migrations");
	if (hw) {
		tu_point(snap, "perf/events", "event=cycles");
		tu_point(snap, "perf/ipc", "");
	} else {
		ck_assert_ptr_null(hitel_snapshot_find(snap, "perf/events", "event=cycles"));
		ck_assert_ptr_null(hitel_snapshot_find(snap, "perf/ipc", ""));
	}
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_hotplug_from_online_mask)
{
	const char *opts[] = { "event", "perf::context-switches", "percpu", "true", NULL };
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	uint64_t t = tu_now();

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		tu_rmtree(root);
		free(root);
		ck_abort_msg("needs 2 CPUs");
	}
	tu_write(root, "sys/devices/system/cpu/possible", "0-1\n");
	tu_write(root, "sys/devices/system/cpu/online", "0\n");
	e = perf_engine(root, opts);
	ck_assert_int_eq(hitel_engine_run_once(e, t), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 10000000), 0);
	snap = hitel_engine_snapshot(e);
	tu_point(snap, "perf/events/percpu", "cpu=0,event=context_switches");
	ck_assert_ptr_null(
		hitel_snapshot_find(snap, "perf/events/percpu", "cpu=1,event=context_switches"));
	hitel_snapshot_free(snap);
	/* cpu1 comes online: picked up at the next rescan (once a second). */
	tu_write(root, "sys/devices/system/cpu/online", "0-1\n");
	ck_assert_int_eq(hitel_engine_run_once(e, t + 1100000000ULL), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, t + 1200000000ULL), 0);
	snap = hitel_engine_snapshot(e);
	tu_point(snap, "perf/events/percpu", "cpu=1,event=context_switches");
	hitel_snapshot_free(snap);
	/* And goes away again: no error, its series stays. */
	tu_write(root, "sys/devices/system/cpu/online", "0\n");
	ck_assert_int_eq(hitel_engine_run_once(e, t + 2300000000ULL), 0);
	snap = hitel_engine_snapshot(e);
	tu_point(snap, "perf/events/percpu", "cpu=1,event=context_switches");
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* perf stat -a -e context-switches around a ping-pong workload, with hitel
 * reading just before perf starts and just after it exits: counts within 2 %. */
START_TEST(test_accuracy_vs_perf_stat)
{
	const char *opts[] = { "event", "perf::context-switches", NULL };
	struct hitel_engine *e = perf_engine(NULL, opts);
	char out[] = "/tmp/hitel-perfstat-XXXXXX", line[512];
	uint64_t c0, c1, ours;
	unsigned long theirs = 0;
	FILE *f;
	int fd = mkstemp(out), st;
	pid_t pid;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	c0 = value(e, "perf/events", "event=context_switches");
	pid = fork();
	if (pid == 0) {
		execlp("perf", "perf", "stat", "-a", "-e", "context-switches", "-x,", "-o", out,
		       "--", "perf", "bench", "sched", "pipe", "-l", "50000", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "perf stat failed (exit %d): install linux-perf", WEXITSTATUS(st));
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	c1 = value(e, "perf/events", "event=context_switches");
	f = fopen(out, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "context-switches"))
			theirs = strtoul(line, NULL, 10);
	fclose(f);
	unlink(out);
	ours = c1 - c0;
	fprintf(stderr, "context switches: hitel %llu, perf stat -a %lu\n",
		(unsigned long long)ours, theirs);
	ck_assert_uint_gt(theirs, 100000);
	ck_assert_msg((double)ours >= 0.98 * (double)theirs && (double)ours <= 1.02 * (double)theirs,
		      "hitel %llu vs perf %lu: more than 2 %% apart", (unsigned long long)ours,
		      theirs);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("perf");
	TCase *tc = tcase_create("perf");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bad_event_name);
	tcase_add_test(tc, test_generic_table_matches_libpfm);
	tcase_add_test(tc, test_other_names_through_libpfm);
	tcase_add_test(tc, test_software_events_count);
	tcase_add_test(tc, test_default_set_hardware_path);
	tcase_add_test(tc, test_hotplug_from_online_mask);
	tcase_add_test(tc, test_accuracy_vs_perf_stat);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
