/* SPDX-License-Identifier: MIT */
/*
 * network sampler: /proc/net/dev fixtures (this kernel, Linux 2.0's columns,
 * a future kernel with unknown columns, damaged lines), rates between two
 * reads, interfaces that come and go, include/exclude, empty, headerless and
 * missing files, and loopback traffic counted live.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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
	const char *labels;
	uint64_t value;
};

struct fixture_case {
	const char *dir;
	size_t nseries; /* network/ series in total */
	const struct want *want;
	size_t nwant;
	const char *const *absent; /* family, labels pairs; NULL-terminated */
};

/* Numbers copied from the fixture files. */
static const struct want want_618[] = {
	{"network/receive/bytes", "interface=lo", 3267},
	{"network/receive/packets", "interface=lo", 29},
	{"network/transmit/bytes", "interface=lo", 3267},
	{"network/receive/bytes", "interface=eth0", 88986751},
	{"network/receive/packets", "interface=eth0", 2007},
	{"network/transmit/bytes", "interface=eth0", 95460},
	{"network/transmit/packets", "interface=eth0", 1165},
	{"network/receive/errors", "interface=eth0", 0},
	{"network/transmit/carrier_errors", "interface=ifb1", 0},
};

static const struct want want_20[] = {
	{"network/receive/packets", "interface=eth0", 12345678},
	{"network/receive/errors", "interface=eth0", 3},
	{"network/receive/drops", "interface=eth0", 1},
	{"network/receive/fifo_errors", "interface=eth0", 0},
	{"network/receive/frame_errors", "interface=eth0", 2},
	{"network/transmit/packets", "interface=eth0", 7654321},
	{"network/transmit/errors", "interface=eth0", 4},
	{"network/transmit/collisions", "interface=eth0", 9},
	{"network/transmit/carrier_errors", "interface=eth0", 1},
	{"network/receive/packets", "interface=lo", 812},
};
static const char *const absent_20[] = {
	"network/receive/bytes", "interface=eth0",
	"network/transmit/bytes", "interface=eth0",
	"network/receive/multicast", "interface=eth0",
	"network/transmit/compressed", "interface=eth0",
	NULL,
};

/* Unknown columns in the middle of both sections: mapping is by name. */
static const struct want want_future[] = {
	{"network/receive/bytes", "interface=eth0", 43330133},
	{"network/receive/errors", "interface=eth0", 1},
	{"network/receive/multicast", "interface=eth0", 6},
	{"network/transmit/bytes", "interface=eth0", 56047},
	{"network/transmit/errors", "interface=eth0", 8},
	{"network/transmit/drops", "interface=eth0", 9},
	{"network/transmit/fifo_errors", "interface=eth0", 10},
	{"network/transmit/collisions", "interface=eth0", 11},
	{"network/transmit/carrier_errors", "interface=eth0", 12},
	{"network/transmit/compressed", "interface=eth0", 13},
};

/* Only the 40-character name, lo (its first line) and eth7 are valid. */
static const struct want want_garbage[] = {
	{"network/receive/bytes", "interface=veth0123456789abcdefghijklmnopqrstuvwxy", 1000},
	{"network/transmit/packets", "interface=veth0123456789abcdefghijklmnopqrstuvwxy", 20},
	{"network/receive/bytes", "interface=lo", 500},
	{"network/receive/bytes", "interface=eth7", 700},
	{"network/receive/multicast", "interface=eth7", 6},
	{"network/transmit/compressed", "interface=eth7", 14},
};
static const char *const absent_garbage[] = {
	"network/receive/bytes", "interface=eth1",
	"network/receive/bytes", "interface=eth2",
	"network/receive/bytes", "interface=eth3",
	"network/receive/bytes", "interface=eth4",
	"network/receive/bytes", "interface=eth5",
	"network/receive/bytes", "interface=eth6",
	"network/receive/bytes", "interface=",
	NULL,
};

static const struct fixture_case cases[] = {
	{"network/debian12-6.18", 4 * 16, want_618, N(want_618), NULL},
	{"network/linux-2.0", 2 * 11, want_20, N(want_20), absent_20},
	{"network/future", 2 * 16, want_future, N(want_future), NULL},
	{"network/garbage", 3 * 16, want_garbage, N(want_garbage), absent_garbage},
};

static struct hitel_engine *fixture_engine(const char *dir)
{
	char *root = tu_fixture(dir);
	struct hitel_engine *e = tu_engine("network", root);

	free(root);
	return e;
}

START_TEST(test_fixture)
{
	const struct fixture_case *c = &cases[_i];
	struct hitel_engine *e = fixture_engine(c->dir);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	size_t i;

	ck_assert_int_eq(hitel_engine_run_once(e, SEC), 0);
	tu_status(e, "network", &st);
	ck_assert_msg(st.up == 1, "%s: down: %s", c->dir, st.reason);
	snap = hitel_engine_snapshot(e);
	for (i = 0; i < c->nwant; i++) {
		const struct hitel_point *p = tu_point(snap, c->want[i].family, c->want[i].labels);

		ck_assert_msg(p->value == c->want[i].value, "%s: %s{%s} = %llu, want %llu",
			      c->dir, c->want[i].family, c->want[i].labels,
			      (unsigned long long)p->value, (unsigned long long)c->want[i].value);
		ck_assert_int_eq(p->kind, HITEL_KIND_COUNTER);
	}
	for (i = 0; c->absent && c->absent[i]; i += 2)
		ck_assert_msg(!hitel_snapshot_find(snap, c->absent[i], c->absent[i + 1]),
			      "%s: %s{%s} should not exist", c->dir, c->absent[i],
			      c->absent[i + 1]);
	ck_assert_uint_eq(tu_count_prefix(snap, "network/"), c->nseries);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

#define HDR                                                                                        \
	"Inter-|   Receive                                                |  Transmit\n"           \
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs " \
	"drop fifo colls carrier compressed\n"

START_TEST(test_rate)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;

	tu_write(root, "proc/net/dev",
		 HDR "  eth0: 1000000 1000 0 0 0 0 0 10 500000 700 0 0 0 0 0 0\n");
	e = tu_engine("network", root);
	hitel_engine_run_once(e, 5 * SEC);
	tu_write(root, "proc/net/dev",
		 HDR "  eth0: 1250000 1200 1 0 0 0 0 12 600000 800 0 3 0 0 0 0\n");
	hitel_engine_run_once(e, 5 * SEC + SEC / 4);
	tu_status(e, "network", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	/* 250 000 bytes in 250 ms: 1 000 000 bytes/s. */
	p = tu_point(snap, "network/receive/bytes", "interface=eth0");
	ck_assert_uint_eq(p->value, 1250000);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 1000000);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 1000000);
	p = tu_point(snap, "network/receive/packets", "interface=eth0");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 800);
	p = tu_point(snap, "network/transmit/bytes", "interface=eth0");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 400000);
	p = tu_point(snap, "network/transmit/drops", "interface=eth0");
	ck_assert_uint_eq(p->value, 3);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 12);
	p = tu_point(snap, "network/receive/multicast", "interface=eth0");
	ck_assert_uint_eq(hitel_hist_min(p->hist), 8);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* The header with rx bytes and packets named the other way round. */
#define HDR_SWAPPED                                                                                \
	"Inter-|   Receive                                                |  Transmit\n"           \
	" face |packets    bytes errs drop fifo frame compressed multicast|bytes    packets errs " \
	"drop fifo colls carrier compressed\n"

/* A line whose text did not change is not parsed again, but it is still a
 * read: a zero rate for every counter. After a header change the same text
 * means other values, so it is parsed again. A line that moves again is
 * parsed. An excluded interface stays out. */
START_TEST(test_same_text)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_sampler *s;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;
	struct hitel_sampler_status st;
	char err[256];
	const char *eth0 = "  eth0: 1000000 1000 0 0 0 0 0 10 500000 700 0 0 0 0 0 0\n";
	const char *lo = "  lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n";
	char text[1024];
	int i;

	snprintf(text, sizeof(text), HDR "%s%s", eth0, lo);
	tu_write(root, "proc/net/dev", text);
	e = tu_engine("network", root);
	s = hitel_engine_sampler_add(e, "network");
	ck_assert_int_eq(hitel_sampler_set(s, "exclude", "lo", err, sizeof(err)), 0);
	for (i = 1; i <= 5; i++)
		hitel_engine_run_once(e, (uint64_t)i * SEC);
	tu_status(e, "network", &st);
	ck_assert_msg(st.up, "down: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "network/receive/bytes", "interface=eth0");
	ck_assert_uint_eq(p->value, 1000000);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	ck_assert_uint_eq(p->updated_ns, 5 * SEC);
	p = tu_point(snap, "network/transmit/packets", "interface=eth0");
	ck_assert_uint_eq(hitel_hist_count(p->hist), 4);
	ck_assert_ptr_null(hitel_snapshot_find(snap, "network/receive/bytes", "interface=lo"));
	hitel_snapshot_free(snap);

	/* Same lines, other header: bytes is now the second number. */
	snprintf(text, sizeof(text), HDR_SWAPPED "%s%s", eth0, lo);
	tu_write(root, "proc/net/dev", text);
	hitel_engine_run_once(e, 6 * SEC);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_point(snap, "network/receive/bytes", "interface=eth0")->value, 1000);
	ck_assert_uint_eq(tu_point(snap, "network/receive/packets", "interface=eth0")->value,
			  1000000);
	hitel_snapshot_free(snap);

	/* Back to the usual header, and eth0 moves: parsed, a real rate. */
	tu_write(root, "proc/net/dev",
		 HDR "  eth0: 1500000 1001 0 0 0 0 0 10 500000 700 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 7 * SEC);
	hitel_engine_run_once(e, 8 * SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "network/receive/bytes", "interface=eth0");
	ck_assert_uint_eq(p->value, 1500000);
	ck_assert_uint_eq(p->updated_ns, 8 * SEC);
	ck_assert_uint_eq(tu_point(snap, "network/receive/packets", "interface=eth0")->value, 1001);
	ck_assert_ptr_null(hitel_snapshot_find(snap, "network/receive/bytes", "interface=lo"));
	hitel_snapshot_free(snap);

	/* The file changes in one line only: the other line is the same. */
	tu_write(root, "proc/net/dev",
		 HDR "  eth0: 1500000 1001 0 0 0 0 0 10 500000 700 0 0 0 0 0 0\n"
		     "  eth1: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 9 * SEC);
	tu_write(root, "proc/net/dev",
		 HDR "  eth0: 1600000 1002 0 0 0 0 0 10 500000 700 0 0 0 0 0 0\n"
		     "  eth1: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 10 * SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "network/receive/bytes", "interface=eth0");
	ck_assert_uint_eq(p->value, 1600000);
	p = tu_point(snap, "network/receive/bytes", "interface=eth1");
	ck_assert_uint_eq(p->value, 7);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_max(p->hist), 0);
	ck_assert_uint_eq(p->updated_ns, 10 * SEC);
	hitel_snapshot_free(snap);

	/* A file that failed fails again when it repeats. */
	tu_write(root, "proc/net/dev", HDR "  eth0: 1 2 3\n");
	tu_down_twice(e, "network", 11 * SEC, &st);
	ck_assert_msg(strstr(st.reason, "no valid interface line") != NULL, "reason: %s", st.reason);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

/* A veth appears and goes, lo stays: each keeps its own series, and a name
 * that returns continues its series. */
START_TEST(test_interfaces_come_and_go)
{
	char *root = tu_tmpdir();
	struct hitel_engine *e;
	struct hitel_snapshot *snap;
	const struct hitel_point *p;

	tu_write(root, "proc/net/dev", HDR "  lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n");
	e = tu_engine("network", root);
	hitel_engine_run_once(e, SEC);
	tu_write(root, "proc/net/dev",
		 HDR "  lo: 200 2 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n"
		     "  veth1: 50 1 0 0 0 0 0 0 60 1 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 2 * SEC);
	tu_write(root, "proc/net/dev", HDR "  lo: 300 3 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 3 * SEC);
	tu_write(root, "proc/net/dev",
		 HDR "  veth1: 90 2 0 0 0 0 0 0 80 2 0 0 0 0 0 0\n"
		     "  lo: 400 4 0 0 0 0 0 0 400 4 0 0 0 0 0 0\n");
	hitel_engine_run_once(e, 5 * SEC);
	snap = hitel_engine_snapshot(e);
	p = tu_point(snap, "network/receive/bytes", "interface=lo");
	ck_assert_uint_eq(p->value, 400);
	ck_assert_uint_eq(hitel_hist_count(p->hist), 3);
	p = tu_point(snap, "network/receive/bytes", "interface=veth1");
	ck_assert_uint_eq(p->value, 90);
	/* 50 -> 90 over the 3 s since veth1 was last seen. */
	ck_assert_uint_eq(hitel_hist_count(p->hist), 1);
	ck_assert_uint_eq(hitel_hist_min(p->hist), 13);
	ck_assert_uint_eq(p->updated_ns, 5 * SEC);
	ck_assert_uint_eq(tu_count_prefix(snap, "network/"), 2 * 16);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	tu_rmtree(root);
	free(root);
}
END_TEST

struct filter_case {
	const char *key[2], *value[2];
	const char *present, *absent;
	size_t nseries;
};

/* Nothing is excluded by default: lo matters for loopback tests. */
static const struct filter_case filters[] = {
	{{NULL, NULL}, {NULL, NULL}, "interface=lo", NULL, 4 * 16},
	{{"include", NULL}, {"eth*", NULL}, "interface=eth0", "interface=lo", 16},
	{{"exclude", "exclude"}, {"lo", "ifb*"}, "interface=eth0", "interface=ifb0", 16},
	{{"include", "exclude"}, {"*", "eth0"}, "interface=ifb1", "interface=eth0", 3 * 16},
};

START_TEST(test_filter)
{
	const struct filter_case *c = &filters[_i];
	struct hitel_engine *e = fixture_engine("network/debian12-6.18");
	struct hitel_sampler *s = hitel_engine_sampler_add(e, "network");
	struct hitel_snapshot *snap;
	char err[256];
	int k;

	for (k = 0; k < 2 && c->key[k]; k++)
		ck_assert_msg(hitel_sampler_set(s, c->key[k], c->value[k], err, sizeof(err)) == 0,
			      "%s", err);
	hitel_engine_run_once(e, SEC);
	snap = hitel_engine_snapshot(e);
	tu_point(snap, "network/receive/bytes", c->present);
	if (c->absent)
		ck_assert_ptr_null(hitel_snapshot_find(snap, "network/receive/bytes", c->absent));
	ck_assert_uint_eq(tu_count_prefix(snap, "network/"), c->nseries);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
}
END_TEST

struct down_case {
	const char *dir; /* fixture, or NULL for an empty tmp root */
	const char *reason;
};

static const struct down_case downs[] = {
	{"network/empty", "no header in"},
	{"network/no-header", "unexpected header in"},
	{NULL, "cannot open"},
};

START_TEST(test_down)
{
	const struct down_case *c = &downs[_i];
	char *root = c->dir ? tu_fixture(c->dir) : tu_tmpdir();
	struct hitel_engine *e = tu_engine("network", root);
	struct hitel_sampler_status st;
	struct hitel_snapshot *snap;
	char path[512];

	hitel_engine_run_once(e, SEC);
	tu_status(e, "network", &st);
	ck_assert_int_eq(st.up, 0);
	snprintf(path, sizeof(path), "%s/proc/net/dev", root);
	ck_assert_msg(strstr(st.reason, path) != NULL, "reason: %s", st.reason);
	ck_assert_msg(strstr(st.reason, c->reason) != NULL, "reason: %s", st.reason);
	snap = hitel_engine_snapshot(e);
	ck_assert_uint_eq(tu_count_prefix(snap, "network/"), 0);
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	if (!c->dir)
		tu_rmtree(root);
	free(root);
}
END_TEST

struct sink {
	int fd;
	size_t want, got;
};

static void *drain(void *arg)
{
	struct sink *k = arg;
	char buf[16384];

	while (k->got < k->want) {
		ssize_t r = read(k->fd, buf, sizeof(buf));

		if (r <= 0)
			break;
		k->got += (size_t)r;
	}
	return NULL;
}

/* N bytes over a TCP connection on 127.0.0.1 show up as at least N more
 * bytes received and transmitted on lo. */
START_TEST(test_live_loopback)
{
	const size_t n = 1 << 20;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);
	struct hitel_engine *e = tu_engine("network", NULL);
	struct hitel_snapshot *s1, *s2;
	const struct hitel_point *r1, *r2, *t1, *t2;
	struct sink k = {.want = n};
	char *chunk = calloc(1, 65536);
	pthread_t th;
	size_t sent = 0;
	uint64_t t = tu_now();
	int l, c;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	k.fd = accept(l, NULL, NULL);
	ck_assert_int_ge(k.fd, 0);

	hitel_engine_run_once(e, t);
	s1 = hitel_engine_snapshot(e);
	ck_assert_int_eq(pthread_create(&th, NULL, drain, &k), 0);
	while (sent < n) {
		ssize_t w = write(c, chunk, n - sent < 65536 ? n - sent : 65536);

		ck_assert_int_gt(w, 0);
		sent += (size_t)w;
	}
	pthread_join(th, NULL);
	ck_assert_uint_eq(k.got, n);
	hitel_engine_run_once(e, t + SEC / 10);
	s2 = hitel_engine_snapshot(e);

	r1 = tu_point(s1, "network/receive/bytes", "interface=lo");
	r2 = tu_point(s2, "network/receive/bytes", "interface=lo");
	t1 = tu_point(s1, "network/transmit/bytes", "interface=lo");
	t2 = tu_point(s2, "network/transmit/bytes", "interface=lo");
	ck_assert_uint_ge(r2->value - r1->value, n);
	ck_assert_uint_ge(t2->value - t1->value, n);
	/* One rate recorded, at least n bytes per 0.1 s. */
	ck_assert_uint_eq(hitel_hist_count(r2->hist), 1);
	ck_assert_uint_ge(hitel_hist_max(r2->hist), n * 10 - n / 10);
	close(c);
	close(k.fd);
	close(l);
	free(chunk);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s2);
	hitel_engine_free(e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("network");
	TCase *tc = tcase_create("network");

	tcase_add_loop_test(tc, test_fixture, 0, N(cases));
	tcase_add_test(tc, test_rate);
	tcase_add_test(tc, test_same_text);
	tcase_add_test(tc, test_interfaces_come_and_go);
	tcase_add_loop_test(tc, test_filter, 0, N(filters));
	tcase_add_loop_test(tc, test_down, 0, N(downs));
	tcase_add_test(tc, test_live_loopback);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
