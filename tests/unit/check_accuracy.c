/* SPDX-License-Identifier: MIT */
/*
 * Acceptance: hitel's numbers against the kernel's, read independently.
 * - cpu: utilisation over a window agrees with /proc/stat deltas within
 *   1 percentage point;
 * - network bytes and disk ops: exactly the kernel's counters. Other
 *   processes may touch the counters at any time, so each comparison is
 *   bracketed: read the kernel, run the sampler, read the kernel again; when
 *   both kernel reads agree, the sampler must have seen exactly that value.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "testutil.h"

static char *slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;

	ck_assert_msg(f != NULL, "open %s: %s", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* /proc/stat "cpu " line: the first 8 states (user..steal), in ticks. */
static void proc_stat_cpu(uint64_t st[8])
{
	const char *s = slurp("/proc/stat");

	ck_assert_int_eq(sscanf(s, "cpu %lu %lu %lu %lu %lu %lu %lu %lu", &st[0], &st[1], &st[2],
				&st[3], &st[4], &st[5], &st[6], &st[7]),
			 8);
}

static void burn_ms(unsigned int ms)
{
	uint64_t end = tu_now() + (uint64_t)ms * 1000000ULL;
	volatile uint64_t x = 0;

	while (tu_now() < end)
		x++;
}

START_TEST(test_cpu_utilisation_within_1pp)
{
	static const char *const states[8] = { "user", "nice",	  "system",  "idle",
					       "iowait", "irq", "softirq", "steal" };
	struct hitel_engine *e = tu_engine("cpu", NULL);
	struct hitel_snapshot *a, *b, *w;
	uint64_t k0[8], k1[8], kbusy = 0, ktotal = 0, hbusy = 0, htotal = 0;
	double ku, hu;
	int i;

	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	proc_stat_cpu(k0);
	a = hitel_engine_snapshot(e);
	/* Some load so busy time is not just noise: 600 ms of one core. */
	burn_ms(600);
	usleep(400000);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	proc_stat_cpu(k1);
	b = hitel_engine_snapshot(e);
	w = hitel_snapshot_delta(a, b);
	for (i = 0; i < 8; i++) {
		char lab[32];
		const struct hitel_point *p;
		uint64_t d = k1[i] - k0[i];

		snprintf(lab, sizeof(lab), "state=%s", states[i]);
		p = tu_point(w, "cpu/usage", lab);
		ktotal += d;
		htotal += p->value;
		if (i != 3 && i != 4) {
			kbusy += d;
			hbusy += p->value;
		}
	}
	ck_assert_uint_gt(ktotal, 0);
	ck_assert_uint_gt(htotal, 0);
	ku = 100.0 * (double)kbusy / (double)ktotal;
	hu = 100.0 * (double)hbusy / (double)htotal;
	ck_assert_msg(ku - hu < 1.0 && hu - ku < 1.0,
		      "utilisation: hitel %.2f %% vs /proc/stat %.2f %%", hu, ku);
	hitel_snapshot_free(w);
	hitel_snapshot_free(a);
	hitel_snapshot_free(b);
	hitel_engine_free(e);
}
END_TEST

/* lo receive bytes from /proc/net/dev. */
static uint64_t proc_lo_rx_bytes(void)
{
	const char *s = strstr(slurp("/proc/net/dev"), " lo:");
	unsigned long v;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(sscanf(s, " lo: %lu", &v), 1);
	return v;
}

static void loopback_traffic(size_t bytes)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), r;
	char buf[65536];
	size_t sent = 0, got = 0;

	memset(buf, 'h', sizeof(buf));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	r = accept(l, NULL, NULL);
	ck_assert_int_ge(r, 0);
	while (got < bytes) {
		if (sent < bytes) {
			ssize_t n = send(c, buf, sizeof(buf) < bytes - sent ? sizeof(buf) : bytes - sent,
					 MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
		}
		ssize_t m = recv(r, buf, sizeof(buf), sent < bytes ? MSG_DONTWAIT : 0);
		if (m > 0)
			got += (size_t)m;
	}
	close(c);
	close(r);
	close(l);
}

START_TEST(test_network_bytes_exact)
{
	struct hitel_engine *e = tu_engine("network", NULL);
	int tries, matched = 0;

	for (tries = 0; tries < 50 && matched < 3; tries++) {
		struct hitel_snapshot *snap;
		uint64_t before, after;

		loopback_traffic(1 << 20);
		before = proc_lo_rx_bytes();
		ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
		after = proc_lo_rx_bytes();
		if (before != after)
			continue; /* someone else used lo in between: try again */
		snap = hitel_engine_snapshot(e);
		ck_assert_uint_eq(tu_point(snap, "network/receive/bytes", "interface=lo")->value,
				  before);
		hitel_snapshot_free(snap);
		matched++;
	}
	ck_assert_msg(matched == 3, "lo never quiet for a bracketed read (%d)", matched);
	hitel_engine_free(e);
}
END_TEST

/* The whole disk holding path: /sys/dev/block/MAJ:MIN links into
 * .../block/<disk>[/<partition>]. */
static void disk_of(const char *path, char *name, size_t len)
{
	char link[64], target[512], *slash;
	struct stat st;
	ssize_t n;

	ck_assert_int_eq(stat(path, &st), 0);
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
	n = readlink(link, target, sizeof(target) - 1);
	ck_assert_msg(n > 0, "%s: %s", link, strerror(errno));
	target[n] = '\0';
	slash = strstr(target, "/block/");
	ck_assert_ptr_nonnull(slash);
	slash += 7;
	if (strchr(slash, '/')) /* a partition: keep the disk */
		*strchr(slash, '/') = '\0';
	snprintf(name, len, "%s", slash);
}

static uint64_t proc_disk_reads(const char *dev)
{
	const char *s = slurp("/proc/diskstats"), *line = s;
	char pat[64];

	snprintf(pat, sizeof(pat), " %s ", dev);
	while (line) {
		const char *hit = strstr(line, pat);
		unsigned long v;

		if (!hit)
			break;
		/* major minor name reads ...: the name must be the third field. */
		if (sscanf(hit + strlen(pat), "%lu", &v) == 1)
			return v;
		line = strchr(hit, '\n');
	}
	ck_abort_msg("%s not in /proc/diskstats", dev);
	return 0;
}

/* O_DIRECT reads of a file on disk: each one reaches the device. */
static void direct_reads(const char *path, int n)
{
	void *buf;
	int fd, i;

	fd = open(path, O_RDONLY | O_DIRECT);
	ck_assert_msg(fd >= 0, "open %s O_DIRECT: %s", path, strerror(errno));
	ck_assert_int_eq(posix_memalign(&buf, 4096, 4096), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(pread(fd, buf, 4096, (off_t)((i * 7) % 256) * 4096), 4096);
	free(buf);
	close(fd);
}

START_TEST(test_disk_ops_exact)
{
	struct hitel_engine *e = tu_engine("disk", NULL);
	char dev[256], lab[300], file[] = "/var/tmp/hitel-accuracy-XXXXXX";
	int tries, matched = 0, fd = mkstemp(file), i;
	uint64_t first = 0;
	static char block[4096];

	/* A 1 MiB file on the root disk, flushed, then read with O_DIRECT. */
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < 256; i++)
		ck_assert_int_eq(write(fd, block, sizeof(block)), sizeof(block));
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	disk_of(file, dev, sizeof(dev));
	snprintf(lab, sizeof(lab), "device=%s,op=read", dev);
	for (tries = 0; tries < 50 && matched < 3; tries++) {
		struct hitel_snapshot *snap;
		uint64_t before, after, v;

		direct_reads(file, 20);
		before = proc_disk_reads(dev);
		ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
		after = proc_disk_reads(dev);
		if (before != after)
			continue;
		snap = hitel_engine_snapshot(e);
		v = tu_point(snap, "block/io/ops", lab)->value;
		ck_assert_uint_eq(v, before);
		if (!matched)
			first = v;
		hitel_snapshot_free(snap);
		matched++;
	}
	ck_assert_msg(matched == 3, "%s never quiet for a bracketed read", dev);
	/* Our own direct reads went through the counter. */
	direct_reads(file, 40);
	ck_assert_uint_ge(proc_disk_reads(dev) - first, 40);
	unlink(file);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("accuracy");
	TCase *tc = tcase_create("acceptance");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cpu_utilisation_within_1pp);
	tcase_add_test(tc, test_network_bytes_exact);
	tcase_add_test(tc, test_disk_ops_exact);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
