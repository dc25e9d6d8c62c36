/* SPDX-License-Identifier: MIT */
/*
 * Scratch benchmark behind the network sampler's choice of source: the cost
 * of one full read + parse of every interface's counters through
 *   1. /proc/net/dev, fd kept open, pread at offset 0 (what the sampler does),
 *   2. netlink RTM_GETLINK dump, picking IFLA_IFNAME and IFLA_STATS64,
 *   3. netlink RTM_GETSTATS dump with only IFLA_STATS_LINK_64 (no names:
 *      those would need a separate RTM_GETLINK whenever ifindexes change).
 * All three run in the same process, interleaved in rounds, so machine noise
 * hits them alike. Not wired into make:
 *   gcc -O2 -Wall -Wextra -o /tmp/bench_netdev tests/bench/bench_netdev.c
 *   /tmp/bench_netdev [iterations]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXIF 64

struct ifstats {
	char name[32];
	uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* --- /proc/net/dev ----------------------------------------------------------- */

static char filebuf[1 << 16];

static int procfs_read(int fd, struct ifstats *out)
{
	ssize_t n = pread(fd, filebuf, sizeof(filebuf) - 1, 0);
	const char *p;
	int nif = 0;

	if (n <= 0)
		return -1;
	filebuf[n] = '\0';
	p = strchr(filebuf, '\n');
	p = p ? strchr(p + 1, '\n') : NULL;
	while (p && p[1] && nif < MAXIF) {
		const char *colon;
		uint64_t v[16];
		char *end;
		size_t len;
		int i;

		p++;
		while (*p == ' ')
			p++;
		colon = strchr(p, ':');
		if (!colon)
			break;
		len = (size_t)(colon - p);
		if (len >= sizeof(out[nif].name))
			len = sizeof(out[nif].name) - 1;
		memcpy(out[nif].name, p, len);
		out[nif].name[len] = '\0';
		p = colon + 1;
		for (i = 0; i < 16; i++) {
			v[i] = strtoull(p, &end, 10);
			p = end;
		}
		out[nif].rx_bytes = v[0];
		out[nif].rx_packets = v[1];
		out[nif].tx_bytes = v[8];
		out[nif].tx_packets = v[9];
		nif++;
		p = strchr(p, '\n');
	}
	return nif;
}

/* --- netlink ------------------------------------------------------------------ */

static char nlbuf[1 << 16];

static int nl_open(void)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

static int nl_getlink(int fd, uint32_t seq, struct ifstats *out)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {.nlmsg_len = sizeof(req),
		       .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = seq},
		.ifi = {.ifi_family = AF_UNSPEC},
	};
	int nif = 0;

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, nlbuf, sizeof(nlbuf), 0);
		struct nlmsghdr *nh;

		if (n <= 0)
			return -1;
		for (nh = (struct nlmsghdr *)nlbuf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct ifinfomsg *ifi;
			struct rtattr *rta;
			int alen;

			if (nh->nlmsg_type == NLMSG_DONE)
				return nif;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return -1;
			if (nh->nlmsg_type != RTM_NEWLINK || nif >= MAXIF)
				continue;
			ifi = NLMSG_DATA(nh);
			alen = (int)IFLA_PAYLOAD(nh);
			for (rta = IFLA_RTA(ifi); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
				if (rta->rta_type == IFLA_IFNAME) {
					snprintf(out[nif].name, sizeof(out[nif].name), "%s",
						 (char *)RTA_DATA(rta));
				} else if (rta->rta_type == IFLA_STATS64) {
					struct rtnl_link_stats64 st;

					memcpy(&st, RTA_DATA(rta), sizeof(st));
					out[nif].rx_bytes = st.rx_bytes;
					out[nif].rx_packets = st.rx_packets;
					out[nif].tx_bytes = st.tx_bytes;
					out[nif].tx_packets = st.tx_packets;
				}
			}
			nif++;
		}
	}
}

static int nl_getstats(int fd, uint32_t seq, struct ifstats *out)
{
	struct {
		struct nlmsghdr nh;
		struct if_stats_msg ifs;
	} req = {
		.nh = {.nlmsg_len = sizeof(req),
		       .nlmsg_type = RTM_GETSTATS,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		       .nlmsg_seq = seq},
		.ifs = {.family = AF_UNSPEC,
			.filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64)},
	};
	int nif = 0;

	if (send(fd, &req, sizeof(req), 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(fd, nlbuf, sizeof(nlbuf), 0);
		struct nlmsghdr *nh;

		if (n <= 0)
			return -1;
		for (nh = (struct nlmsghdr *)nlbuf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n)) {
			struct if_stats_msg *ifs;
			struct rtattr *rta;
			int alen;

			if (nh->nlmsg_type == NLMSG_DONE)
				return nif;
			if (nh->nlmsg_type == NLMSG_ERROR)
				return -1;
			if (nh->nlmsg_type != RTM_NEWSTATS || nif >= MAXIF)
				continue;
			ifs = NLMSG_DATA(nh);
			alen = (int)(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*ifs)));
			snprintf(out[nif].name, sizeof(out[nif].name), "%u", ifs->ifindex);
			for (rta = (struct rtattr *)((char *)ifs + NLMSG_ALIGN(sizeof(*ifs)));
			     RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen)) {
				if (rta->rta_type == IFLA_STATS_LINK_64) {
					struct rtnl_link_stats64 st;

					memcpy(&st, RTA_DATA(rta), sizeof(st));
					out[nif].rx_bytes = st.rx_bytes;
					out[nif].rx_packets = st.rx_packets;
					out[nif].tx_bytes = st.tx_bytes;
					out[nif].tx_packets = st.tx_packets;
				}
			}
			nif++;
		}
	}
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 10000;
	const long rounds = 10;
	struct ifstats a[MAXIF], b[MAXIF], c[MAXIF];
	uint64_t t_proc = 0, t_link = 0, t_stats = 0, t0;
	int fd = open("/proc/net/dev", O_RDONLY | O_CLOEXEC);
	int nl = nl_open();
	int na, nb, nc = 0;
	uint32_t seq = 1;
	long r, i;

	if (fd < 0 || nl < 0 || iters < rounds) {
		perror("setup");
		return 1;
	}
	/* warm-up, and check the three agree on the interface count */
	na = procfs_read(fd, a);
	nb = nl_getlink(nl, seq++, b);
	nc = nl_getstats(nl, seq++, c);
	if (na <= 0 || na != nb || nb != nc) {
		fprintf(stderr, "disagree: procfs %d, getlink %d, getstats %d\n", na, nb, nc);
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		t0 = now_ns();
		for (i = 0; i < iters / rounds; i++)
			if (procfs_read(fd, a) != na)
				return 1;
		t_proc += now_ns() - t0;
		t0 = now_ns();
		for (i = 0; i < iters / rounds; i++)
			if (nl_getlink(nl, seq++, b) != na)
				return 1;
		t_link += now_ns() - t0;
		t0 = now_ns();
		for (i = 0; i < iters / rounds; i++)
			if (nl_getstats(nl, seq++, c) != na)
				return 1;
		t_stats += now_ns() - t0;
	}
	printf("interfaces: %d, iterations: %ld each\n", na, iters);
	printf("/proc/net/dev pread+parse:        %8.0f ns/read\n", (double)t_proc / iters);
	printf("netlink RTM_GETLINK dump STATS64: %8.0f ns/read\n", (double)t_link / iters);
	printf("netlink RTM_GETSTATS LINK_64:     %8.0f ns/read\n", (double)t_stats / iters);
	close(fd);
	close(nl);
	return 0;
}
