/* SPDX-License-Identifier: MIT */
/*
 * bpf_tcp against the real kernel, on 127.0.0.1 only: completed connects
 * are timed; datagrams to a closed UDP port are drops with reason
 * no_socket, at least as many as the kernel's Udp NoPorts counter says;
 * a SYN dropped by a full listen queue is retransmitted after the initial
 * RTO (1 s) and counted, no more often than the kernel's RetransSegs says.
 * Also: program lifetime and failures, as for every BPF sampler.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bpf_testutil.h"
#include "engine.h"
#include "hist.h"
#include "registry.h"
#include "testutil.h"

#define SAMPLER "bpf_tcp"
#define CONNECT "tcp/connect/latency"
#define RETRANS "tcp/bpf/retransmits"
#define DROPS "network/drops"
#define CONNECTS 50
#define DATAGRAMS 20

/* Field name of /proc/net/snmp's line pair starting with proto. */
static uint64_t snmp(const char *proto, const char *name)
{
	char head[2048], vals[2048], *hs, *vs, *h, *v;
	size_t plen = strlen(proto);
	FILE *f = fopen("/proc/net/snmp", "r");
	uint64_t out = UINT64_MAX;

	ck_assert_ptr_nonnull(f);
	while (fgets(head, sizeof(head), f) && fgets(vals, sizeof(vals), f)) {
		if (strncmp(head, proto, plen) != 0 || head[plen] != ':')
			continue;
		h = strtok_r(head, " \n", &hs);
		v = strtok_r(vals, " \n", &vs);
		while (h && v) {
			if (strcmp(h, name) == 0)
				out = strtoull(v, NULL, 10);
			h = strtok_r(NULL, " \n", &hs);
			v = strtok_r(NULL, " \n", &vs);
		}
		break;
	}
	fclose(f);
	ck_assert_msg(out != UINT64_MAX, "no %s %s in /proc/net/snmp", proto, name);
	return out;
}

static struct sockaddr_in loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int listener(int backlog, struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*a = loopback();
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

/* A port on 127.0.0.1 nobody listens on (bound, then released). */
static struct sockaddr_in closed_port(int type)
{
	struct sockaddr_in a = loopback();
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, type, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return a;
}

static void connects(int n)
{
	struct sockaddr_in a;
	int srv = listener(128, &a), i, c, s;

	for (i = 0; i < n; i++) {
		c = socket(AF_INET, SOCK_STREAM, 0);
		ck_assert_int_ge(c, 0);
		ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
		s = accept(srv, NULL, NULL);
		ck_assert_int_ge(s, 0);
		close(s);
		close(c);
	}
	close(srv);
}

struct run {
	struct hitel_engine *e;
	struct hitel_snapshot *s0;
};

static void run_start(struct run *r, const char *attach)
{
	r->e = btu_engine(SAMPLER, attach);
	ck_assert_int_eq(hitel_engine_run_once(r->e, tu_now()), 0);
	btu_assert_up(r->e, SAMPLER);
	r->s0 = hitel_engine_snapshot(r->e);
	ck_assert_ptr_nonnull(r->s0);
}

/* Read now and return the window since run_start. */
static struct hitel_snapshot *run_window(struct run *r)
{
	struct hitel_snapshot *s1, *w;

	ck_assert_int_eq(hitel_engine_run_once(r->e, tu_now()), 0);
	s1 = hitel_engine_snapshot(r->e);
	ck_assert_ptr_nonnull(s1);
	w = btu_window(r->s0, s1);
	hitel_snapshot_free(s1);
	return w;
}

static void run_end(struct run *r)
{
	hitel_snapshot_free(r->s0);
	hitel_engine_free(r->e);
}

/* Value of a counter in a window; 0 when the series does not exist (a drop
 * reason gets its series when it first occurs). */
static uint64_t value(const struct hitel_snapshot *w, const char *family, const char *labels)
{
	const struct hitel_point *p = hitel_snapshot_find(w, family, labels);

	return p ? p->value : 0;
}

static void check_connect(const char *attach)
{
	const struct hitel_point *lat;
	struct hitel_snapshot *w;
	struct run r;
	uint64_t p50;

	run_start(&r, attach);
	connects(CONNECTS);
	w = run_window(&r);
	lat = tu_point(w, CONNECT, "");
	ck_assert_ptr_nonnull(lat->hist);
	ck_assert_msg(hitel_hist_count(lat->hist) >= CONNECTS, "%s: %llu connects timed < %d",
		      attach, (unsigned long long)hitel_hist_count(lat->hist), CONNECTS);
	ck_assert_uint_eq(lat->value, hitel_hist_count(lat->hist));
	/* A loopback handshake takes microseconds; never 0 (two clock reads
	 * around a softirq round trip). */
	p50 = hitel_hist_quantile(lat->hist, 0.5);
	ck_assert_msg(p50 > 0 && p50 < 100000000ULL, "%s: connect p50 %llu ns", attach,
		      (unsigned long long)p50);
	ck_assert_uint_eq(value(w, "hitel/bpf/lost", "sampler=" SAMPLER), 0);
	hitel_snapshot_free(w);
	run_end(&r);
}

static void check_drops(const char *attach)
{
	struct sockaddr_in to = closed_port(SOCK_DGRAM), tcp_to = closed_port(SOCK_STREAM);
	uint64_t noports0, noports1, got;
	struct hitel_snapshot *w;
	char buf[32] = "hitel";
	struct run r;
	int fd, i;

	run_start(&r, attach);
	noports0 = snmp("Udp", "NoPorts");
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < DATAGRAMS; i++)
		ck_assert_int_eq(
			sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)),
			(ssize_t)sizeof(buf));
	close(fd);
	/* A SYN to a closed TCP port is answered with a RST and dropped for
	 * the same reason. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&tcp_to, sizeof(tcp_to)), -1);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(fd);
	noports1 = snmp("Udp", "NoPorts");
	w = run_window(&r);

	ck_assert_uint_ge(noports1 - noports0, DATAGRAMS);
	got = value(w, DROPS, "reason=no_socket");
	ck_assert_msg(got >= noports1 - noports0 + 1,
		      "%s: %llu drops for no_socket, kernel: %llu UDP NoPorts + 1 TCP", attach,
		      (unsigned long long)got, (unsigned long long)(noports1 - noports0));
	hitel_snapshot_free(w);
	run_end(&r);
}

/*
 * listen(fd, 0) accepts one connection into the queue; the next SYN finds
 * the queue full and is dropped, so the client retransmits it after the
 * initial RTO of 1 s. Poll for up to 4 s.
 */
static void check_retransmit(const char *attach)
{
	struct sockaddr_in a;
	uint64_t segs0, segs1, got = 0, t0;
	struct hitel_snapshot *w;
	struct run r;
	int srv, c1, c2;

	/* Read before the window opens, so that it holds ours. */
	segs0 = snmp("Tcp", "RetransSegs");
	run_start(&r, attach);
	srv = listener(0, &a);
	c1 = socket(AF_INET, SOCK_STREAM, 0);
	c2 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(c1, 0);
	ck_assert_int_ge(c2, 0);
	ck_assert_int_eq(connect(c1, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(connect(c2, (struct sockaddr *)&a, sizeof(a)), -1);
	ck_assert_int_eq(errno, EINPROGRESS);
	t0 = tu_now();
	while (tu_now() - t0 < 4000000000ULL) {
		usleep(100000);
		w = run_window(&r);
		got = value(w, RETRANS, "");
		hitel_snapshot_free(w);
		if (got)
			break;
	}
	segs1 = snmp("Tcp", "RetransSegs");
	close(c2);
	close(c1);
	close(srv);
	ck_assert_msg(got >= 1, "%s: no retransmit counted in 4 s (kernel: %llu)", attach,
		      (unsigned long long)(segs1 - segs0));
	/* One event per retransmitted skb, the MIB counts its segments. */
	ck_assert_msg(got <= segs1 - segs0, "%s: %llu retransmits, kernel %llu segments", attach,
		      (unsigned long long)got, (unsigned long long)(segs1 - segs0));
	run_end(&r);
}

START_TEST(test_connect_tp_btf)
{
	check_connect("tp_btf");
}
END_TEST

START_TEST(test_connect_raw_tp)
{
	check_connect("raw_tp");
}
END_TEST

START_TEST(test_drops_tp_btf)
{
	check_drops("tp_btf");
}
END_TEST

START_TEST(test_drops_raw_tp)
{
	check_drops("raw_tp");
}
END_TEST

START_TEST(test_retransmit_tp_btf)
{
	check_retransmit("tp_btf");
}
END_TEST

START_TEST(test_retransmit_raw_tp)
{
	check_retransmit("raw_tp");
}
END_TEST

/* Drop reasons are filtered by name: excluding no_socket leaves it out. */
START_TEST(test_exclude_reason)
{
	struct sockaddr_in to = closed_port(SOCK_DGRAM);
	struct hitel_engine *e = btu_engine(SAMPLER, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, SAMPLER);
	struct hitel_snapshot *snap;
	char buf[8] = "x", err[128];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(hitel_sampler_set(s, "exclude", "no_socket", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, SAMPLER);
	ck_assert_int_eq(sendto(fd, buf, 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	close(fd);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	snap = hitel_engine_snapshot(e);
	ck_assert_ptr_nonnull(snap);
	ck_assert_ptr_null(hitel_snapshot_find(snap, DROPS, "reason=no_socket"));
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

static const struct {
	const char *value;
	int ret;
} connects_cases[] = {
	{ "1", 0 }, { "65536", 0 }, { "1048576", 0 }, { "0", -EINVAL }, { "1048577", -EINVAL },
	{ "12x", -EINVAL }, { "", -EINVAL },
};

START_TEST(test_option_max_connects)
{
	struct hitel_engine *e = tu_engine(NULL, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, SAMPLER);
	char err[256] = "";

	ck_assert_int_eq(hitel_sampler_set(s, "max_connects", connects_cases[_i].value, err,
					   sizeof(err)),
			 connects_cases[_i].ret);
	if (connects_cases[_i].ret)
		ck_assert_msg(strstr(err, "max_connects") != NULL, "error '%s'", err);
	hitel_engine_free(e);
}
END_TEST

START_TEST(test_progs_tp_btf)
{
	static const char *const names[] = { "hitel_tcpstate", "hitel_tcpretx", "hitel_tcpdrop" };

	btu_check_prog_lifetime(SAMPLER, NULL, "hitel_tcp", names, 3);
}
END_TEST

START_TEST(test_progs_raw_tp)
{
	static const char *const names[] = { "hitel_tcpstat_r", "hitel_tcpretx_r",
					     "hitel_tcpdrop_r" };

	btu_check_prog_lifetime(SAMPLER, "raw_tp", "hitel_tcp", names, 3);
}
END_TEST

START_TEST(test_fail_no_caps)
{
	btu_check_fails_without_caps(SAMPLER, CONNECT);
}
END_TEST

START_TEST(test_fail_btf_bogus)
{
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "tp_btf load", CONNECT);
	btu_check_fails(SAMPLER, "btf", "/proc/self/status", "raw_tp load", CONNECT);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("bpf_tcp");
	TCase *tc;

	tc = tcase_create("events");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_connect_tp_btf);
	tcase_add_test(tc, test_connect_raw_tp);
	tcase_add_test(tc, test_drops_tp_btf);
	tcase_add_test(tc, test_drops_raw_tp);
	tcase_add_test(tc, test_retransmit_tp_btf);
	tcase_add_test(tc, test_retransmit_raw_tp);
	tcase_add_test(tc, test_exclude_reason);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_loop_test(tc, test_option_max_connects, 0,
			    (int)(sizeof(connects_cases) / sizeof(connects_cases[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("lifetime");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_progs_tp_btf);
	tcase_add_test(tc, test_progs_raw_tp);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fail_no_caps);
	tcase_add_test(tc, test_fail_btf_bogus);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
