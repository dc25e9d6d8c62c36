/* SPDX-License-Identifier: MIT */
/*
 * bpf_fs against the real kernel, both flavours:
 *   - fsync and fdatasync of appending writes in /var/tmp (the root ext4 of
 *     the test machines) are timed, as ext4 fsync / fdatasync / writepages
 *     of the directory's device, with plausible latencies;
 *   - on an ext4 with a journal, mounted from a loop device in a private
 *     mount namespace (the test machines' root ext4 has no journal), each
 *     fsync forces a jbd2 commit, and syncfs after dirtying data runs a
 *     flusher pass for reason "sync" on the loop device;
 *   - device names from sysfs, or major:minor; include/exclude; max_keys;
 *   - the programs live exactly as long as the engine; a sampler without
 *     capabilities or with a bogus BTF is down with a reason.
 * Other processes use the same filesystems meanwhile, so counts are lower
 * bounds.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/loop.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "bpf_testutil.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"
#include "testutil.h"

#define SAMPLER "bpf_fs"
#define LAT "filesystem/latency"
#define OPS "filesystem/ops"
#define LOST "hitel/bpf/lost"
#define SYNCS 40
#define CHUNK 4096
#define EXT4_MAGIC 0xEF53
#define LOOP_MAJOR_ 7
#define IMAGE_BYTES (64 << 20)
#define US 1000ULL
#define SEC 1000000000ULL

static char *chunk;

static void setup(void)
{
	chunk = malloc(CHUNK);
	ck_assert_ptr_nonnull(chunk);
	memset(chunk, 'f', CHUNK);
}

static void teardown(void)
{
	free(chunk);
	chunk = NULL;
}

/* The kernel's name of block device dev (its sysfs directory), as the
 * sampler should label it. */
static void dev_name(dev_t dev, char *name, size_t len)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	n = readlink(link, target, sizeof(target) - 1);
	ck_assert_msg(n > 0, "%s: %s", link, strerror(errno));
	target[n] = '\0';
	snprintf(name, len, "%s", basename(target));
}

/* The device of an ext4 directory, checked to be one. */
static dev_t ext4_dir(const char *dir)
{
	struct statfs sfs;
	struct stat st;

	ck_assert_msg(statfs(dir, &sfs) == 0 && stat(dir, &st) == 0, "%s: %s", dir,
		      strerror(errno));
	ck_assert_msg(sfs.f_type == EXT4_MAGIC, "%s is not on ext4 (f_type %#lx)", dir,
		      (unsigned long)sfs.f_type);
	return st.st_dev;
}

/* ---- an ext4 with a journal on a loop device ------------------------------- */

struct loopfs {
	char dir[64];	/* mount point */
	char name[32];	/* loopN */
};

/* A free loop device bound to img_fd, detached by the kernel once unmounted
 * and closed (LO_FLAGS_AUTOCLEAR); fills path. Tries again when another
 * process takes the free device first. */
static int loop_attach(int img_fd, char *path, size_t len)
{
	struct loop_info64 info;
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC), idx, fd = -1, tries;

	ck_assert_msg(ctl >= 0, "/dev/loop-control: %s", strerror(errno));
	for (tries = 0; tries < 50 && fd < 0; tries++) {
		idx = ioctl(ctl, LOOP_CTL_GET_FREE);
		ck_assert_msg(idx >= 0, "LOOP_CTL_GET_FREE: %s", strerror(errno));
		snprintf(path, len, "/dev/loop%d", idx);
		/* A static /dev (containers) has only the first few nodes. */
		if (access(path, F_OK) != 0)
			mknod(path, S_IFBLK | 0600, makedev(LOOP_MAJOR_, (unsigned int)idx));
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0 && ioctl(fd, LOOP_SET_FD, img_fd) != 0) {
			close(fd);
			fd = -1;
		}
	}
	close(ctl);
	ck_assert_msg(fd >= 0, "no loop device could be bound: %s", strerror(errno));
	memset(&info, 0, sizeof(info));
	info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(fd, LOOP_SET_STATUS64, &info) != 0) {
		int err = errno;

		ioctl(fd, LOOP_CLR_FD, 0);
		ck_abort_msg("LOOP_SET_STATUS64: %s", strerror(err));
	}
	return fd;
}

/*
 * A fresh 64 MiB ext4 (with its journal) mounted on a temporary directory,
 * in a private mount namespace: if the test dies, the namespace goes with
 * it, the filesystem is unmounted and the loop device detached.
 */
static void loopfs_mount(struct loopfs *l)
{
	char img[] = "/var/tmp/hitel-bpf-fs-XXXXXX", cmd[256], dev[32];
	struct stat st;
	int img_fd, fd;

	ck_assert_msg(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	ck_assert_int_eq(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
	img_fd = mkstemp(img);
	ck_assert_msg(img_fd >= 0, "%s: %s", img, strerror(errno));
	ck_assert_int_eq(ftruncate(img_fd, IMAGE_BYTES), 0);
	snprintf(cmd, sizeof(cmd),
		 "PATH=\"$PATH:/usr/sbin:/sbin\" mkfs.ext4 -q -F "
		 "-E nodiscard,lazy_itable_init=0,lazy_journal_init=0 %s",
		 img);
	ck_assert_msg(system(cmd) == 0, "'%s' failed", cmd);
	fd = loop_attach(img_fd, dev, sizeof(dev));
	unlink(img); /* the loop device holds it */
	close(img_fd);
	snprintf(l->dir, sizeof(l->dir), "/tmp/hitel-bpf-fs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(l->dir));
	ck_assert_msg(mount(dev, l->dir, "ext4", 0, NULL) == 0, "mount %s on %s: %s", dev,
		      l->dir, strerror(errno));
	close(fd);
	ck_assert_int_eq(stat(dev, &st), 0);
	dev_name(st.st_rdev, l->name, sizeof(l->name));
	ck_assert_uint_eq(ext4_dir(l->dir), st.st_rdev);
}

static void loopfs_umount(struct loopfs *l)
{
	ck_assert_msg(umount2(l->dir, 0) == 0, "umount %s: %s", l->dir, strerror(errno));
	rmdir(l->dir);
}

/* ---- workloads --------------------------------------------------------------- */

/* n appending writes of CHUNK bytes to a new file in dir, each followed by
 * fsync or fdatasync; returns the slowest sync as userspace saw it (ns). */
static uint64_t sync_loop(const char *dir, int n, int datasync)
{
	char path[PATH_MAX];
	uint64_t t0, dt, max = 0;
	int fd, i;

	snprintf(path, sizeof(path), "%s/hitel-bpf-fs-XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(write(fd, chunk, CHUNK), CHUNK);
		t0 = tu_now();
		ck_assert_int_eq(datasync ? fdatasync(fd) : fsync(fd), 0);
		dt = tu_now() - t0;
		if (dt > max)
			max = dt;
	}
	close(fd);
	unlink(path);
	return max;
}

/* Dirty 1 MiB in a new file of dir and syncfs the filesystem: the flusher
 * writes it back (reason sync) while syncfs waits. */
static void dirty_syncfs(const char *dir)
{
	char path[PATH_MAX];
	int fd, i;

	snprintf(path, sizeof(path), "%s/hitel-bpf-fs-XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	for (i = 0; i < (1 << 20) / CHUNK; i++)
		ck_assert_int_eq(write(fd, chunk, CHUNK), CHUNK);
	ck_assert_int_eq(syncfs(fd), 0);
	close(fd);
	unlink(path);
}

static struct hitel_engine *fs_engine(const char *root, const char *key, const char *value)
{
	struct hitel_engine *e = tu_engine(SAMPLER, root);
	char err[256] = "";

	if (key)
		ck_assert_msg(hitel_sampler_set(hitel_engine_sampler_add(e, SAMPLER), key, value,
						err, sizeof(err)) == 0,
			      "%s", err);
	return e;
}

static struct hitel_snapshot *take(struct hitel_engine *e)
{
	struct hitel_snapshot *s;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	s = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(s);
	return s;
}

static void labels_of(char *buf, size_t len, const char *fs, const char *op, const char *dev)
{
	snprintf(buf, len, "fs=%s,op=%s,device=%s", fs, op, dev);
}

/* The latency histogram of (fs, op, device) in window w: at least min
 * operations, its counter equal to its count, and a median that is a
 * plausible time for the operation, in (lo_ns, hi_ns). */
static const struct hitel_hist *check_op(const struct hitel_snapshot *w, const char *attach,
					 const char *fs, const char *op, const char *dev,
					 uint64_t min, uint64_t lo_ns, uint64_t hi_ns)
{
	const struct hitel_point *lat, *ops;
	char labels[160];
	uint64_t p50;

	labels_of(labels, sizeof(labels), fs, op, dev);
	lat = tu_point(w, LAT, labels);
	ops = tu_point(w, OPS, labels);
	ck_assert_ptr_nonnull(lat->hist);
	ck_assert_msg(hitel_hist_count(lat->hist) >= min, "%s: %s{%s} count %llu < %llu", attach,
		      LAT, labels, (unsigned long long)hitel_hist_count(lat->hist),
		      (unsigned long long)min);
	ck_assert_uint_eq(ops->value, hitel_hist_count(lat->hist));
	p50 = hitel_hist_quantile(lat->hist, 0.5);
	ck_assert_msg(p50 > lo_ns && p50 < hi_ns, "%s: %s{%s} p50 %llu ns, want (%llu, %llu)",
		      attach, LAT, labels, (unsigned long long)p50, (unsigned long long)lo_ns,
		      (unsigned long long)hi_ns);
	return lat->hist;
}

/* ---- tests ------------------------------------------------------------------- */

static const char *const flavours[] = { "tp_btf", "raw_tp" };

/* fsync and fdatasync in /var/tmp, on the machine's root ext4. */
START_TEST(test_fsync)
{
	const char *attach = flavours[_i];
	struct hitel_engine *e = fs_engine(NULL, "attach", attach);
	struct hitel_snapshot *s0, *s1, *w;
	char dev[64];
	uint64_t user_max;

	dev_name(ext4_dir("/var/tmp"), dev, sizeof(dev));
	s0 = take(e);
	user_max = sync_loop("/var/tmp", SYNCS, 0);
	sync_loop("/var/tmp", SYNCS, 1);
	s1 = take(e);
	w = btu_window(s0, s1);
	/* The kernel's time is inside the syscall's, so the median of our
	 * fsyncs is below the slowest one timed from userspace (plus a bucket's
	 * width, 1/128). */
	check_op(w, attach, "ext4", "fsync", dev, SYNCS, US, user_max + user_max / 64 + 1);
	check_op(w, attach, "ext4", "fdatasync", dev, SYNCS, US, SEC);
	/* Each sync wrote its dirty page first. */
	check_op(w, attach, "ext4", "writepages", dev, 2 * SYNCS, US, SEC);
	ck_assert_uint_eq(tu_point(w, LOST, "sampler=" SAMPLER)->value, 0);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
}
END_TEST

/* Each fsync after an appending write needs the transaction holding the
 * new size committed: at least one jbd2 commit per fsync, on the loop
 * device. */
START_TEST(test_commit)
{
	const char *attach = flavours[_i];
	struct hitel_engine *e;
	struct hitel_snapshot *s0, *s1, *w;
	struct loopfs l;

	loopfs_mount(&l);
	e = fs_engine(NULL, "attach", attach);
	s0 = take(e);
	sync_loop(l.dir, SYNCS, 0);
	s1 = take(e);
	w = btu_window(s0, s1);
	check_op(w, attach, "ext4", "fsync", l.name, SYNCS, US, SEC);
	check_op(w, attach, "jbd2", "commit", l.name, SYNCS, US, SEC);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
	loopfs_umount(&l);
}
END_TEST

/*
 * syncfs after dirtying data queues writeback work with reason sync to the
 * flusher of the loop device and waits for it. The periodic flusher may
 * take the data first (then its pass is timed instead, as "periodic" or
 * "background"), so dirty and sync again until a sync pass shows, a few
 * times at most.
 */
START_TEST(test_writeback)
{
	const char *attach = flavours[_i];
	struct hitel_engine *e;
	struct hitel_snapshot *s0, *s1 = NULL, *w = NULL;
	const struct hitel_point *pt = NULL;
	const struct hitel_hist *h;
	char labels[160];
	struct loopfs l;
	int round;

	loopfs_mount(&l);
	e = fs_engine(NULL, "attach", attach);
	labels_of(labels, sizeof(labels), "writeback", "sync", l.name);
	s0 = take(e);
	for (round = 0; round < 5; round++) {
		dirty_syncfs(l.dir);
		hitel_snapshot_free(s1);
		hitel_snapshot_free(w);
		s1 = take(e);
		w = btu_window(s0, s1);
		pt = hitel_snapshot_find(w, LAT, labels);
		if (pt && pt->value > 0)
			break;
	}
	ck_assert_msg(pt && pt->value > 0, "%s: no %s{%s} after %d rounds", attach, LAT, labels,
		      round);
	/* Most passes find nothing left to write (syncfs queues two works,
	 * each looping until a pass writes nothing) and take well under a
	 * microsecond; the one that wrote our megabyte cannot. */
	h = check_op(w, attach, "writeback", "sync", l.name, 1, 0, SEC);
	ck_assert_uint_gt(hitel_hist_max(h), US);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
	loopfs_umount(&l);
}
END_TEST

/* Device names: the sysfs directory's name, else major:minor; read under a
 * synthetic root so that each source is tested alone. */
START_TEST(test_device_names)
{
	char *root = tu_tmpdir(), path[PATH_MAX], want[64], labels[160];
	dev_t dev = ext4_dir("/var/tmp");
	struct hitel_snapshot *s0, *s1, *w;
	struct hitel_engine *e;

	if (_i == 0) {
		tu_write(root, "sys/dev/block/.keep", "");
		snprintf(path, sizeof(path), "%s/sys/dev/block/%u:%u", root, major(dev),
			 minor(dev));
		ck_assert_int_eq(symlink("../../devices/virtual/block/sysfs-disk", path), 0);
		snprintf(want, sizeof(want), "sysfs-disk");
	} else {
		snprintf(want, sizeof(want), "%u:%u", major(dev), minor(dev));
	}
	e = fs_engine(root, NULL, NULL);
	s0 = take(e);
	sync_loop("/var/tmp", 5, 0);
	s1 = take(e);
	w = btu_window(s0, s1);
	labels_of(labels, sizeof(labels), "ext4", "fsync", want);
	ck_assert_uint_ge(tu_point(w, LAT, labels)->value, 5);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_exclude)
{
	char dev[64], labels[160];
	struct hitel_engine *e;
	struct hitel_snapshot *s0, *s1;

	dev_name(ext4_dir("/var/tmp"), dev, sizeof(dev));
	e = fs_engine(NULL, "exclude", dev);
	s0 = take(e);
	sync_loop("/var/tmp", 5, 0);
	s1 = take(e);
	labels_of(labels, sizeof(labels), "ext4", "fsync", dev);
	ck_assert_ptr_null(hitel_snapshot_find(s1, LAT, labels));
	ck_assert_ptr_null(hitel_snapshot_find(s1, OPS, labels));
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
}
END_TEST

/* With room for one (fs, op, device) in the kernel, an fsync and its
 * writepages cannot both be kept: the second is counted as lost. */
START_TEST(test_max_keys_lost)
{
	struct hitel_engine *e = fs_engine(NULL, "max_keys", "1");
	struct hitel_snapshot *s0, *s1, *w;

	s0 = take(e);
	sync_loop("/var/tmp", 5, 0);
	s1 = take(e);
	w = btu_window(s0, s1);
	ck_assert_uint_gt(tu_point(w, LOST, "sampler=" SAMPLER)->value, 0);
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
}
END_TEST

/* Whether the running kernel has tracepoint tp (in its BTF, or its loaded
 * module's). */
static int kernel_has_tp(const char *tp, const char *module)
{
	struct btf *vmlinux = btf__load_vmlinux_btf(), *mod;
	char name[128];
	int found;

	ck_assert_ptr_nonnull(vmlinux);
	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) > 0;
	if (!found) {
		mod = btf__load_module_btf(module, vmlinux);
		found = mod && btf__find_by_name_kind(mod, name, BTF_KIND_TYPEDEF) > 0;
		btf__free(mod);
	}
	btf__free(vmlinux);
	return found;
}

/* By default, every program of the flavour but the xfs log ones. */
START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_fssync", "hitel_fssyncd", "hitel_fswp",
					     "hitel_fswpd",  "hitel_fscmt",   "hitel_fscmtd",
					     "hitel_fswb",   "hitel_fswbd" };

	btu_check_prog_lifetime(SAMPLER, NULL, "hitel_fs", names, 8);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_fssync_r", "hitel_fssyncd_r", "hitel_fswp_r",
					     "hitel_fswpd_r",  "hitel_fscmt_r",	  "hitel_fscmtd_r",
					     "hitel_fswb_r",   "hitel_fswbd_r",	  "hitel_fsexit_r" };

	btu_check_prog_lifetime(SAMPLER, "raw_tp", "hitel_fs", names, 9);
}
END_TEST

/* Programs named prefix* this process holds a descriptor of. */
static int own_progs(const char *prefix)
{
	char path[300], target[64];
	DIR *dir = opendir("/proc/self/fd");
	struct bpf_prog_info info;
	struct dirent *de;
	uint32_t len;
	ssize_t n;
	int count = 0;

	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "anon_inode:bpf-prog") != 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (bpf_obj_get_info_by_fd(atoi(de->d_name), &info, &len) == 0 &&
		    strncmp(info.name, prefix, strlen(prefix)) == 0)
			count++;
	}
	closedir(dir);
	return count;
}

/* With xfs_log on, the four xfs log programs of the flavour too, where the
 * kernel has xfs (built in here; elsewhere a module that may not be
 * loaded: then they are left out and the sampler is still up). */
START_TEST(test_progs_xfs_log)
{
	struct hitel_engine *e = fs_engine(NULL, "xfs_log", "on");
	char err[256] = "";

	ck_assert_msg(hitel_sampler_set(hitel_engine_sampler_add(e, SAMPLER), "attach",
					flavours[_i], err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	ck_assert_int_eq(own_progs("hitel_fsx"),
			 kernel_has_tp("xfs_log_reserve", "xfs") ? 4 : 0);
	ck_assert_int_eq(own_progs("hitel_fs"), (_i ? 9 : 8) + own_progs("hitel_fsx"));
	hitel_engine_free(e);
	ck_assert_int_eq(own_progs("hitel_fs"), 0);
}
END_TEST

START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps(SAMPLER, LAT);
}
END_TEST

START_TEST(test_fail_btf_bogus)
{
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "tp_btf load", LAT);
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "raw_tp load", LAT);
}
END_TEST

START_TEST(test_bad_options)
{
	static const char *const bad[][2] = { { "max_keys", "0" },     { "max_keys", "4097" },
					      { "max_keys", "x" },     { "attach", "fentry" },
					      { "bpf_stats", "maybe" }, { "xfs_log", "maybe" } };
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, SAMPLER);
	char err[256];
	size_t i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_int_ne(hitel_sampler_set(s, bad[i][0], bad[i][1], err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, bad[i][0]) != NULL, "error '%s' names no option", err);
	}
	ck_assert_int_eq(hitel_sampler_set(s, "max_keys", "16", err, sizeof(err)), 0);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_fs");
	TCase *tc;

	tc = tcase_create("events");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_fsync, 0, 2);
	tcase_add_loop_test(tc, test_commit, 0, 2);
	tcase_add_loop_test(tc, test_writeback, 0, 2);
	tcase_add_loop_test(tc, test_device_names, 0, 2);
	tcase_add_test(tc, test_exclude);
	tcase_add_test(tc, test_max_keys_lost);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	tcase_add_loop_test(tc, test_progs_xfs_log, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_no_caps);
	tcase_add_test(tc, test_fail_btf_bogus);
	tcase_add_test(tc, test_bad_options);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
