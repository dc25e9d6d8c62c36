/* SPDX-License-Identifier: MIT */
/*
 * netstat sampler: /proc/net/snmp + /proc/net/netstat fixtures (this kernel,
 * 2.6.32 with fewer columns, a future kernel with new and reordered columns,
 * damaged pairs), a header that changes between reads, one file missing,
 * rates, empty and missing files, and a live loopback connect.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hist.h"
#include "testutil.h"

#define SEC 1000000000ULL
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct want {
	const char *family;
	uint64_t value;
};

struct fixture_case {
	const char *dir;
	size_t ntcp, nudp, nudplite; /* series under tcp/, udp/, udplite/ */
	const struct want *want;
	size_t nwant;
	const char *const *absent; /* families, NULL-terminated */
};

/* Numbers copied from the fixture files. */
static const struct want want_618[] = {
	{"tcp/active_opens", 16},
	{"tcp/passive_opens", 2},
	{"tcp/in_segments", 1996},
	{"tcp/out_segments", 1148},
	{"tcp/out_resets", 2},
	{"tcp/curr_established", 0},
	{"tcp/timeouts", 2},
	{"tcp/abort_on_data", 1},
	{"udp/in_datagrams", 35},
	{"udp/out_datagrams", 36},
	{"udplite/in_datagrams", 0},
};

static const struct want want_2632[] = {
	{"tcp/active_opens", 4711},
	{"tcp/passive_opens", 1210},
	{"tcp/attempt_fails", 31},
	{"tcp/established_resets", 17},
	{"tcp/curr_established", 9},
	{"tcp/in_segments", 8800123},
	{"tcp/out_segments", 9100456},
	{"tcp/retransmitted_segments", 2205},
	{"tcp/in_errors", 4},
	{"tcp/out_resets", 1500},
	{"tcp/listen_overflows", 22},
	{"tcp/listen_drops", 25},
	{"tcp/timeouts", 640},
	{"tcp/fast_retrans", 950},
	{"tcp/abort_on_timeout", 19},
	{"tcp/abort_on_memory", 2},
	{"tcp/backlog_drops", 6},
	{"tcp/syncookies_sent", 5},
	{"udp/in_datagrams", 71234},
	{"udp/no_ports", 120},
	{"udp/in_errors", 3},
	{"udp/out_datagrams", 70011},
	{"udp/receive_buffer_errors", 2},
	{"udp/send_buffer_errors", 0},
};
static const char *const absent_2632[] = {
	"tcp/checksum_errors", "tcp/syn_retrans", "tcp/ofo_queue", "udp/checksum_errors",
	"udp/ignored_multicast", NULL,
};

/* New columns first, in the middle and last; CurrEstab moved; a Tcp6 group
 * with known column names that must not feed tcp/. */
static const struct want want_future[] = {
	{"tcp/curr_established", 33},
	{"tcp/active_opens", 1001},
	{"tcp/passive_opens", 1002},
	{"tcp/checksum_errors", 1010},
	{"udp/memory_errors", 2009},
	{"tcp/listen_drops", 3001},
	{"tcp/listen_overflows", 3002},
	{"tcp/abort_on_memory", 3008},
};

static const struct want want_garbage[] = {
	{"tcp/active_opens", 77},
	{"tcp/passive_opens", 5},
	{"tcp/timeouts", 8},
	{"tcp/ofo_queue", 6},
};
static const char *const absent_garbage[] = {
	"udp/in_datagrams", "udplite/in_datagrams", "tcp/listen_overflows", "tcp/syn_retrans",
	"tcp/backlog_drops", NULL,
};

static const struct want want_only_snmp[] = {{"tcp/active_opens", 16}, {"udp/in_datagrams", 35}};
static const char *const absent_only_snmp[] = {"tcp/listen_overflows", "tcp/timeouts", NULL};
static const struct want want_only_netstat[] = {{"tcp/timeouts", 2}};
static const char *const absent_only_netstat[] = {"tcp/active_opens", "udp/in_datagrams", NULL};

static const struct fixture_case cases[] = {
	{"netstat/debian12-6.18", 28, 9, 9, want_618, N(want_618), NULL},
	{"netstat/linux-2.6.32", 22, 6, 6, want_2632, N(want_2632), absent_2632},
	{"netstat/future", 19, 9, 0, want_future, N(want_future), NULL},
	{"netstat/garbage", 4, 0, 0, want_garbage, N(want_garbage), absent_garbage},
	{"netstat/only-snmp", 11, 9, 9, want_only_snmp, N(want_only_snmp), absent_only_snmp},
	{"netstat/only-netstat", 17, 0, 0, want_only_netstat, N(want_only_netstat),
	 absent_only_netstat},
};

START_TEST(test_fixture)
{
	const struct fixture_case *c = &cases[_i];
	char *root = tu_fixture(c->dir);
	struct hitel_engine *e = tu_engine("netstat", root);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	tu_status(e, "netstat", &st);
	ck_assert_msg(st.up == 1, "%s: down: %s", c->dir, st.reason);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < c->nwant; i++) {
		const struct hitel_point *p = tu_point(snap, c->want[i].family, "");

		ck_assert_msg(p->value == c->want[i].value, "%s: %s = %llu, want %llu", c->dir,
			      c->want[i].family, (unsigned long long)p->value,
			      (unsigned long long)c->want[i].value);
		ck_assert_int_eq(p->kind, strcmp(p->family, "tcp/curr_established") == 0
						  ? HITEL_KIND_GAUGE
						  : HITEL_KIND_COUNTER);
	}
	for (i = 0; c->absent && c->absent[i]; i++)
		ck_assert_msg(!hitel_snapshot_find(snap, c->absent[i], ""),
			      "%s: %s should not exist", c->dir, c->absent[i]);
	ck_assert_uint_eq(tu_count_prefix(snap, "tcp/"), c->ntcp);
	ck_assert_uint_eq(tu_count_prefix(snap, "udp/"), c->nudp);
	ck_assert_uint_eq(tu_count_prefix(snap, "udplite/"), c->nudplite);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	free(root);
}
END_TEST

static void write_files(const char *root, const char *snmp, const char *netstat)
{
	tu_write(root, "proc/net/snmp", snmp);
	tu_write(root, "proc/net/netstat", netstat);
}

START_TEST(test_rate)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	write_files(root,
		    "Tcp: RtoAlgorithm MaxConn ActiveOpens CurrEstab RetransSegs\n"
		    "Tcp: 1 -1 100 4 1000\n",
		    "TcpExt: ListenOverflows TCPTimeouts\nTcpExt: 0 10\n");
	e = tu_engine("netstat", root);
	hitel_engine_run_once(e, SEC);
	write_files(root,
		    "Tcp: RtoAlgorithm MaxConn ActiveOpens CurrEstab RetransSegs\n"
		    "Tcp: 1 -1 150 7 1030\n",
		    "TcpExt: ListenOverflows TCPTimeouts\nTcpExt: 2 10\n");
	hitel_engine_run_once(e, SEC + SEC / 2);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "tcp/active_opens", "");
	ck_assert_uint_eq(p->value, 150);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 100); /* 50 in 0.5 s */
	p = tu_point(snap, "tcp/retransmitted_segments", "");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 60);
	p = tu_point(snap, "tcp/listen_overflows", "");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 4);
	p = tu_point(snap, "tcp/timeouts", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	p = tu_point(snap, "tcp/curr_established", "");
	ck_assert_uint_eq(p->value, 7);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 2);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 4);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* When neither file changed, the last read's values are recorded again:
 * counters a zero rate, gauges their value, one per read. When one file
 * changes both are parsed; a column in both files still counts once. */
START_TEST(test_same_content)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;

	write_files(root,
		    "Tcp: ActiveOpens CurrEstab\nTcp: 100 4\n",
		    "TcpExt: TCPTimeouts\nTcpExt: 10\nTcpExt: TCPTimeouts\nTcpExt: 99\n");
	e = tu_engine("netstat", root);
	hitel_engine_run_once(e, SEC);
	hitel_engine_run_once(e, 2 * SEC);
	hitel_engine_run_once(e, 3 * SEC);
	write_files(root,
		    "Tcp: ActiveOpens CurrEstab\nTcp: 100 4\n",
		    "TcpExt: TCPTimeouts\nTcpExt: 12\nTcpExt: TCPTimeouts\nTcpExt: 99\n");
	hitel_engine_run_once(e, 4 * SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "tcp/active_opens", "");
	ck_assert_uint_eq(p->value, 100);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	ck_assert_uint_eq(p->updated_ns, 4 * SEC);
	p = tu_point(snap, "tcp/curr_established", "");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	p = tu_point(snap, "tcp/timeouts", "");
	ck_assert_uint_eq(p->value, 12);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 2);
	hitel_snapshot_free(snap);
	/* Files that failed fail again when they repeat. */
	write_files(root, "Tcp: ActiveOpens\nTcp: x\n", "");
	tu_down_twice(e, "netstat", 5 * SEC, &st);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* Columns are found by name on every header change, not by position. */
START_TEST(test_header_change)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;

	write_files(root, "Tcp: ActiveOpens PassiveOpens\nTcp: 10 20\n",
		    "TcpExt: TCPTimeouts\nTcpExt: 5\n");
	e = tu_engine("netstat", root);
	hitel_engine_run_once(e, SEC);
	write_files(root, "Tcp: PassiveOpens Foo ActiveOpens\nTcp: 25 999 12\n",
		    "IpExt: InOctets\nIpExt: 1\nTcpExt: Bar TCPTimeouts\nTcpExt: 3 6\n");
	hitel_engine_run_once(e, 2 * SEC);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "tcp/active_opens", "")->value, 12);
	ck_assert_uint_eq(tu_point(snap, "tcp/passive_opens", "")->value, 25);
	ck_assert_uint_eq(tu_point(snap, "tcp/timeouts", "")->value, 6);
	ck_assert_uint_eq(tu_point(snap, "tcp/active_opens", "")->resets, 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

START_TEST(test_empty_files)
{
	char *root = tu_fixture("netstat/empty");
	struct hitel_engine *e = tu_engine("netstat", root);
	struct hitel_sampler_status st;

	hitel_engine_run_once(e, SEC);
	tu_status(e, "netstat", &st);
	ck_assert_int_eq(st.up, 0);
	ck_assert_msg(strstr(st.reason, "no known TCP or UDP counter") != NULL, "reason: %s",
		      st.reason);
	ck_assert_msg(strstr(st.reason, "proc/net/snmp") != NULL, "reason: %s", st.reason);
	hitel_engine_free(e);
	free(root);
}
END_TEST

START_TEST(test_missing_files)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e = tu_engine("netstat", root);
	struct hitel_sampler_status st;
	char path[512];

	hitel_engine_run_once(e, SEC);
	tu_status(e, "netstat", &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(path, sizeof(path), "cannot open %s/proc/net/snmp", root);
	ck_assert_msg(strstr(st.reason, path) != NULL, "reason: %s", st.reason);
	snprintf(path, sizeof(path), "cannot open %s/proc/net/netstat", root);
	ck_assert_msg(strstr(st.reason, path) != NULL, "reason: %s", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A TCP connect on 127.0.0.1 counts one active and one passive open. */
START_TEST(test_live_connect)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct hitel_engine *e = tu_engine("netstat", NULL);
	struct hitel_snapshot *s1, *s2;
	struct hitel_sampler_status st;
	uint64_t t = tu_now();
	int l, c, a;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);

	hitel_engine_run_once(e, t);
	s1 = hitel_engine_snapshot(e);
	c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	a = accept(l, NULL, NULL);
	ck_assert_int_ge(a, 0);
	hitel_engine_run_once(e, t + SEC / 10);
	s2 = hitel_engine_snapshot(e);
	tu_status(e, "netstat", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);

	ck_assert_uint_ge(tu_point(s2, "tcp/active_opens", "")->value,
			  tu_point(s1, "tcp/active_opens", "")->value + 1);
	ck_assert_uint_ge(tu_point(s2, "tcp/passive_opens", "")->value,
			  tu_point(s1, "tcp/passive_opens", "")->value + 1);
	/* Both ends of the connection are established right now. */
	ck_assert_uint_ge(tu_point(s2, "tcp/curr_established", "")->value, 2);
	tu_point(s2, "udp/in_datagrams", "");
	tu_point(s2, "tcp/listen_overflows", "");
	close(a);
	close(c);
	close(l);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("netstat");
	TCase *tc = tcase_create("netstat");

	tcase_add_loop_test(tc, test_fixture, 0, N(cases));
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_same_content);
	tcase_add_test(tc, test_header_change);
	tcase_add_test(tc, test_empty_files);
	tcase_add_test(tc, test_missing_files);
	tcase_add_test(tc, test_live_connect);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
