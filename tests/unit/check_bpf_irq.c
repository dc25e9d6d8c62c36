/* SPDX-License-Identifier: MIT */
/*
 * bpf_irq against the real kernel. The kernel counts every softirq run in
 * /proc/softirqs and every interrupt in /proc/interrupts at the point where
 * the tracepoints fire, so the sampler's counts must fall between the
 * kernel's counts read just inside and just outside its window (minus or
 * plus one run in flight per CPU). The workload makes sure there is
 * something to count: loopback UDP (net_rx), 200 ms of time (timer, rcu)
 * and synchronous direct writes to a file in the working directory (a
 * disk interrupt). Also: program lifetime and failures, as for every BPF
 * sampler.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bpf_testutil.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "testutil.h"

#define SAMPLER "bpf_irq"
#define SOFT "irq/softirq/time"
#define SOFT_COUNT "irq/softirq/count"
#define HARD "irq/hardirq/time"
#define HARD_COUNT "irq/hardirq/count"
#define NVEC 10
#define MAX_IRQ 1024
#define DATAGRAMS 200

static const char *const vectors[NVEC] = { "hi",      "timer",	 "net_tx", "net_rx",
					   "block",   "irq_poll", "tasklet", "sched",
					   "hrtimer", "rcu" };

/* ---- the kernel's own counts --------------------------------------------- */

struct kcounts {
	uint64_t soft[NVEC];
	uint64_t hard[MAX_IRQ];
	char name[MAX_IRQ][64]; /* last column of /proc/interrupts */
};

/* Sum of the per-CPU numbers after the first ':' of line. */
static uint64_t sum_cpus(const char *line, const char **rest)
{
	const char *p = strchr(line, ':');
	unsigned long long v, sum = 0;
	int n;

	ck_assert_ptr_nonnull(p);
	p++;
	while (sscanf(p, " %llu%n", &v, &n) == 1) {
		sum += v;
		p += n;
	}
	if (rest)
		*rest = p;
	return sum;
}

static void read_kernel(struct kcounts *k)
{
	char line[4096], tag[32];
	const char *rest, *last;
	unsigned int irq, v;
	FILE *f;

	memset(k, 0, sizeof(*k));
	f = fopen("/proc/softirqs", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %31[A-Z_]:", tag) != 1)
			continue;
		for (v = 0; v < NVEC; v++)
			if (strcasecmp(tag, vectors[v]) == 0)
				k->soft[v] = sum_cpus(line, NULL);
	}
	fclose(f);
	f = fopen("/proc/interrupts", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %u:", &irq) != 1 || irq >= MAX_IRQ)
			continue;
		k->hard[irq] = sum_cpus(line, &rest);
		line[strcspn(line, "\n")] = '\0';
		last = strrchr(line, ' ');
		snprintf(k->name[irq], sizeof(k->name[irq]), "%s", last ? last + 1 : "");
	}
	fclose(f);
}

/* ---- workload ------------------------------------------------------------ */

/* Loopback UDP: every datagram goes through net_rx on the way in. */
static void udp_traffic(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[64] = "hitel";
	int rx, tx, i;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(rx, 0);
	ck_assert_int_ge(tx, 0);
	ck_assert_int_eq(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(rx, (struct sockaddr *)&a, &len), 0);
	for (i = 0; i < DATAGRAMS; i++) {
		ck_assert_int_eq(sendto(tx, buf, sizeof(buf), 0, (struct sockaddr *)&a, sizeof(a)),
				 (ssize_t)sizeof(buf));
		ck_assert_int_eq(recv(rx, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	}
	close(rx);
	close(tx);
}

/* Synchronous writes that bypass the page cache: each completes with a
 * disk interrupt. The file lives in the working directory (the build tree,
 * on a real disk), not in /tmp, which may be tmpfs. */
static void disk_writes(void)
{
	char path[] = "bpf_irq_test.XXXXXX";
	void *buf;
	int fd, i;

	fd = mkstemp(path);
	ck_assert_msg(fd >= 0, "mkstemp in the working directory: %s", strerror(errno));
	close(fd);
	fd = open(path, O_WRONLY | O_DIRECT | O_DSYNC);
	if (fd < 0) /* no O_DIRECT here: the page cache, then the disk */
		fd = open(path, O_WRONLY | O_DSYNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(posix_memalign(&buf, 4096, 4096), 0);
	memset(buf, 'h', 4096);
	for (i = 0; i < 16; i++) {
		ck_assert_int_eq(pwrite(fd, buf, 4096, (off_t)i * 4096), 4096);
		ck_assert_int_eq(fdatasync(fd), 0);
	}
	free(buf);
	close(fd);
	unlink(path);
}

static void workload(void)
{
	struct timespec ts = { 0, 200000000L };

	udp_traffic();
	disk_writes();
	nanosleep(&ts, NULL);
}

/* ---- checks -------------------------------------------------------------- */

static uint64_t hard_count(const struct hitel_snapshot *w, unsigned int irq, const char **name)
{
	size_t i;
	char num[16];

	snprintf(num, sizeof(num), "%u", irq);
	for (i = 0; i < hitel_snapshot_len(w); i++) {
		const struct hitel_point *p = hitel_snapshot_point(w, i);
		const char *v = hitel_point_label(p, "irq");

		if (strcmp(p->family, HARD_COUNT) == 0 && v && strcmp(v, num) == 0) {
			*name = hitel_point_label(p, "name");
			return p->value;
		}
	}
	*name = NULL;
	return 0;
}

static void check_counts(const char *attach)
{
	struct hitel_engine *e = btu_engine(SAMPLER, attach);
	struct hitel_snapshot *s0, *s1, *w;
	struct kcounts *o0 = malloc(sizeof(*o0)), *i0 = malloc(sizeof(*i0));
	struct kcounts *i1 = malloc(sizeof(*i1)), *o1 = malloc(sizeof(*o1));
	uint64_t ncpus = (uint64_t)libbpf_num_possible_cpus(), busiest = 0, got, hard_total;
	const struct hitel_point *hard;
	unsigned int v, irq, top = 0;
	const char *name;
	char labels[32];

	ck_assert(o0 && i0 && i1 && o1);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	read_kernel(o0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	s0 = hitel_engine_snapshot(e);
	read_kernel(i0);
	workload();
	read_kernel(i1);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	s1 = hitel_engine_snapshot(e);
	read_kernel(o1);
	ck_assert_ptr_nonnull(s0);
	ck_assert_ptr_nonnull(s1);
	w = btu_window(s0, s1);

	for (v = 0; v < NVEC; v++) {
		uint64_t inner = i1->soft[v] - i0->soft[v], outer = o1->soft[v] - o0->soft[v];
		const struct hitel_point *t, *c;

		snprintf(labels, sizeof(labels), "vector=%s", vectors[v]);
		t = tu_point(w, SOFT, labels);
		c = tu_point(w, SOFT_COUNT, labels);
		ck_assert_ptr_nonnull(t->hist);
		got = hitel_hist_count(t->hist);
		ck_assert_uint_eq(c->value, got);
		/* 3 % of slack: under heavy attach/detach churn on the same
		 * tracepoints (copies of this test) a few runs go unseen. */
		ck_assert_msg(got + ncpus >= inner * 97 / 100 && got <= outer * 103 / 100 + ncpus,
			      "%s %s: %llu runs, kernel counted %llu inside, %llu outside", attach,
			      vectors[v], (unsigned long long)got, (unsigned long long)inner,
			      (unsigned long long)outer);
		if (got)
			ck_assert_msg(hitel_hist_quantile(t->hist, 0.5) < 1000000000ULL,
				      "%s %s p50 %llu ns", attach, vectors[v],
				      (unsigned long long)hitel_hist_quantile(t->hist, 0.5));
	}
	/* What the workload guarantees. */
	ck_assert_msg(hitel_hist_count(tu_point(w, SOFT, "vector=net_rx")->hist) > 0,
		      "%s: no net_rx softirq", attach);
	ck_assert_msg(hitel_hist_count(tu_point(w, SOFT, "vector=timer")->hist) +
				      hitel_hist_count(tu_point(w, SOFT, "vector=rcu")->hist) >
			      0,
		      "%s: no timer or rcu softirq in 200 ms", attach);

	/* Hard interrupts: the busiest line of the window, checked the same
	 * way (handlers run at most once per interrupt on a line with one
	 * handler; a little slack for replayed and spurious interrupts), with
	 * the name /proc/interrupts gives it. */
	hard = tu_point(w, HARD, "");
	ck_assert_ptr_nonnull(hard->hist);
	hard_total = hitel_hist_count(hard->hist);
	for (irq = 0; irq < MAX_IRQ; irq++)
		if (i1->hard[irq] - i0->hard[irq] > busiest) {
			busiest = i1->hard[irq] - i0->hard[irq];
			top = irq;
		}
	ck_assert_msg(busiest > 0, "no device interrupt during the workload");
	got = hard_count(w, top, &name);
	ck_assert_msg(got + ncpus >= busiest * 9 / 10, "%s: irq %u: %llu runs, kernel %llu", attach,
		      top, (unsigned long long)got, (unsigned long long)busiest);
	if (!strchr(o1->name[top], ','))
		ck_assert_msg(got <= (o1->hard[top] - o0->hard[top]) * 11 / 10 + ncpus,
			      "%s: irq %u: %llu runs, kernel %llu outside", attach, top,
			      (unsigned long long)got,
			      (unsigned long long)(o1->hard[top] - o0->hard[top]));
	ck_assert_ptr_nonnull(name);
	ck_assert_str_eq(name, o1->name[top]);
	ck_assert_uint_ge(hard_total, got);
	ck_assert_uint_eq(hard->value, hard_total);
	ck_assert_msg(hitel_hist_quantile(hard->hist, 0.5) < 100000000ULL, "hardirq p50 %llu ns",
		      (unsigned long long)hitel_hist_quantile(hard->hist, 0.5));

	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	free(o0);
	free(i0);
	free(i1);
	free(o1);
	hitel_engine_free(e);
}

START_TEST(test_counts_tp_btf)
{
	check_counts("tp_btf");
}
END_TEST

START_TEST(test_counts_raw_tp)
{
	check_counts("raw_tp");
}
END_TEST

/* include/exclude apply to the IRQ names: excluding every name leaves the
 * per-line counts out, not the histograms. */
START_TEST(test_exclude_all)
{
	struct hitel_engine *e = btu_engine(SAMPLER, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, SAMPLER);
	struct hitel_snapshot *snap;
	char err[128];
	size_t i;

	ck_assert_int_eq(hitel_sampler_set(s, "exclude", "*", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	disk_writes();
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	ck_assert_uint_gt(tu_point(snap, HARD, "")->value, 0);
	for (i = 0; i < hitel_snapshot_len(snap); i++)
		ck_assert_str_ne(hitel_snapshot_point(snap, i)->family, HARD_COUNT);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_irqhin", "hitel_irqhout", "hitel_irqsin",
					     "hitel_irqsout" };

	btu_check_prog_lifetime(SAMPLER, NULL, "hitel_irq", names, 4);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_irqhin_r", "hitel_irqhout_r",
					     "hitel_irqsin_r", "hitel_irqsout_r" };

	btu_check_prog_lifetime(SAMPLER, "raw_tp", "hitel_irq", names, 4);
}
END_TEST

START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps(SAMPLER, SOFT);
}
END_TEST

START_TEST(test_fail_btf_missing)
{
	btu_check_fails(SAMPLER, "btf", "/nonexistent/vmlinux.btf", "/nonexistent/vmlinux.btf",
			SOFT);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_irq");
	TCase *tc;

	tc = tcase_create("counts");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_counts_tp_btf);
	tcase_add_test(tc, test_counts_raw_tp);
	tcase_add_test(tc, test_exclude_all);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_no_caps);
	tcase_add_test(tc, test_fail_btf_missing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
