/* SPDX-License-Identifier: MIT */
/*
 * netstat: TCP and UDP protocol counters from /proc/net/snmp (the MIB-II
 * groups Tcp, Udp, UdpLite) and /proc/net/netstat (the Linux extensions,
 * TcpExt). Both files are pairs of lines per group:
 *   Tcp: RtoAlgorithm RtoMin ... ActiveOpens ...
 *   Tcp: 1 200 ... 13 ...
 * Columns are looked up by name, never by position: kernels add, and
 * occasionally remove, columns in the middle. A column this kernel lacks
 * creates no series. The name-to-metric map of each group is rebuilt only
 * when its header line changes, which a running kernel never does, so a
 * read costs one memcmp per header and a scan of the value lines of the
 * groups that hold wanted columns.
 *
 * Default rate 10 Hz: a pread of /proc/net/snmp costs ~11 us and one of
 * /proc/net/netstat ~30 us on this kind of machine (the kernel sums per-CPU
 * counters for ~300 columns), i.e. 0.4 % of a core at 100 Hz for counters
 * that move in events (retransmits, resets, overflows), where 100 ms steps
 * already show a burst.
 *
 * The Tcp group counts IPv4 and IPv6 connections alike; Udp is IPv4 only
 * (IPv6 UDP lives in /proc/net/snmp6, in another format).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procfile.h"
#include "sampler.h"

#define SNMP "/proc/net/snmp"
#define NETSTAT "/proc/net/netstat"

struct metric {
	const char *group; /* "Tcp", "TcpExt", "Udp", "UdpLite" */
	const char *col;   /* kernel column name */
	const char *name;  /* family */
	const char *unit;
	enum hitel_kind kind;
	const char *help;
};

#define C HITEL_KIND_COUNTER
#define G HITEL_KIND_GAUGE
static const struct metric metrics[] = {
	{"Tcp", "ActiveOpens", "tcp/active_opens", "connections", C,
	 "Connections this host opened (CLOSED -> SYN-SENT)."},
	{"Tcp", "PassiveOpens", "tcp/passive_opens", "connections", C,
	 "Connections accepted from a listener (LISTEN -> SYN-RECV)."},
	{"Tcp", "AttemptFails", "tcp/attempt_fails", "connections", C,
	 "Connection attempts that failed (SYN-SENT/SYN-RECV -> CLOSED, SYN-RECV -> LISTEN)."},
	{"Tcp", "EstabResets", "tcp/established_resets", "connections", C,
	 "Connections reset from ESTABLISHED or CLOSE-WAIT."},
	{"Tcp", "CurrEstab", "tcp/curr_established", "connections", G,
	 "Connections now in ESTABLISHED or CLOSE-WAIT."},
	{"Tcp", "InSegs", "tcp/in_segments", "segments", C,
	 "Segments received, including those in error."},
	{"Tcp", "OutSegs", "tcp/out_segments", "segments", C,
	 "Segments sent, excluding retransmissions."},
	{"Tcp", "RetransSegs", "tcp/retransmitted_segments", "segments", C,
	 "Segments retransmitted."},
	{"Tcp", "InErrs", "tcp/in_errors", "segments", C,
	 "Segments received in error (bad checksum or header, no memory)."},
	{"Tcp", "OutRsts", "tcp/out_resets", "segments", C, "Segments sent with RST set."},
	{"Tcp", "InCsumErrors", "tcp/checksum_errors", "segments", C,
	 "Segments received with a bad checksum."},
	{"TcpExt", "ListenOverflows", "tcp/listen_overflows", "events", C,
	 "Handshakes completed while the listener's accept queue was full."},
	{"TcpExt", "ListenDrops", "tcp/listen_drops", "events", C,
	 "SYNs and handshakes dropped at a listener for any reason (includes overflows)."},
	{"TcpExt", "TCPTimeouts", "tcp/timeouts", "events", C, "Retransmission timer expirations."},
	{"TcpExt", "TCPSynRetrans", "tcp/syn_retrans", "segments", C,
	 "SYN and SYN-ACK retransmissions."},
	{"TcpExt", "TCPFastRetrans", "tcp/fast_retrans", "segments", C,
	 "Fast retransmissions (after duplicate ACKs or SACK)."},
	{"TcpExt", "TCPLossProbes", "tcp/loss_probes", "segments", C, "Tail loss probes sent."},
	{"TcpExt", "TCPAbortOnTimeout", "tcp/abort_on_timeout", "connections", C,
	 "Connections aborted after too many retransmissions or keepalive probes."},
	{"TcpExt", "TCPAbortOnMemory", "tcp/abort_on_memory", "connections", C,
	 "Connections aborted for lack of memory or too many orphans."},
	{"TcpExt", "TCPAbortOnData", "tcp/abort_on_data", "connections", C,
	 "Connections reset because data arrived after close."},
	{"TcpExt", "TCPAbortOnClose", "tcp/abort_on_close", "connections", C,
	 "Connections reset because the application closed with unread data."},
	{"TcpExt", "TCPBacklogDrop", "tcp/backlog_drops", "segments", C,
	 "Segments dropped because the backlog of a busy socket was full."},
	{"TcpExt", "TCPRcvQDrop", "tcp/receive_queue_drops", "segments", C,
	 "Segments dropped because the receive queue had no memory left."},
	{"TcpExt", "TCPOFOQueue", "tcp/ofo_queue", "segments", C, "Segments queued out of order."},
	{"TcpExt", "TCPOFODrop", "tcp/ofo_drops", "segments", C,
	 "Out-of-order segments dropped for lack of memory."},
	{"TcpExt", "SyncookiesSent", "tcp/syncookies_sent", "segments", C,
	 "SYN cookies sent (SYN queue full)."},
	{"TcpExt", "SyncookiesFailed", "tcp/syncookies_failed", "segments", C,
	 "ACKs carrying an invalid SYN cookie."},
	{"TcpExt", "TCPMemoryPressures", "tcp/memory_pressures", "events", C,
	 "Times TCP entered memory pressure (net.ipv4.tcp_mem)."},
	{"Udp", "InDatagrams", "udp/in_datagrams", "datagrams", C,
	 "Datagrams delivered to sockets."},
	{"Udp", "OutDatagrams", "udp/out_datagrams", "datagrams", C, "Datagrams sent."},
	{"Udp", "NoPorts", "udp/no_ports", "datagrams", C,
	 "Datagrams received for a port with no socket."},
	{"Udp", "InErrors", "udp/in_errors", "datagrams", C,
	 "Datagrams not delivered for reasons other than no port."},
	{"Udp", "RcvbufErrors", "udp/receive_buffer_errors", "datagrams", C,
	 "Datagrams dropped because the socket receive buffer was full."},
	{"Udp", "SndbufErrors", "udp/send_buffer_errors", "datagrams", C,
	 "Datagrams not sent for lack of send buffer space."},
	{"Udp", "InCsumErrors", "udp/checksum_errors", "datagrams", C,
	 "Datagrams received with a bad checksum."},
	{"Udp", "IgnoredMulti", "udp/ignored_multicast", "datagrams", C,
	 "Broadcast or multicast datagrams no socket wanted."},
	{"Udp", "MemErrors", "udp/memory_errors", "datagrams", C,
	 "Datagrams dropped because UDP memory (net.ipv4.udp_mem) ran out."},
	{"UdpLite", "InDatagrams", "udplite/in_datagrams", "datagrams", C,
	 "Datagrams delivered to sockets."},
	{"UdpLite", "OutDatagrams", "udplite/out_datagrams", "datagrams", C, "Datagrams sent."},
	{"UdpLite", "NoPorts", "udplite/no_ports", "datagrams", C,
	 "Datagrams received for a port with no socket."},
	{"UdpLite", "InErrors", "udplite/in_errors", "datagrams", C,
	 "Datagrams not delivered for reasons other than no port."},
	{"UdpLite", "RcvbufErrors", "udplite/receive_buffer_errors", "datagrams", C,
	 "Datagrams dropped because the socket receive buffer was full."},
	{"UdpLite", "SndbufErrors", "udplite/send_buffer_errors", "datagrams", C,
	 "Datagrams not sent for lack of send buffer space."},
	{"UdpLite", "InCsumErrors", "udplite/checksum_errors", "datagrams", C,
	 "Datagrams received with a bad checksum."},
	{"UdpLite", "IgnoredMulti", "udplite/ignored_multicast", "datagrams", C,
	 "Broadcast or multicast datagrams no socket wanted."},
	{"UdpLite", "MemErrors", "udplite/memory_errors", "datagrams", C,
	 "Datagrams dropped because UDP memory (net.ipv4.udp_mem) ran out."},
};
#undef C
#undef G

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

/* One "Group: names" header and what its columns map to. */
struct group {
	char *header;
	size_t len;
	int *map; /* metrics[] index or -1, per column */
	int ncols;
	int wanted; /* some column maps to a metric */
};

struct nfile {
	struct hitel_procfile *f;
	struct group *groups; /* in file order */
	size_t ngroups, cap;
};

struct netstat_priv {
	struct nfile files[2];
	struct hitel_series *series[NMETRICS];
	unsigned char created[NMETRICS];
	unsigned int seen[NMETRICS]; /* generation: a column in two groups counts once */
	unsigned int gen;
	int warned_bad;
	/* What the last read recorded, in order: when neither file changed
	 * (a quiet host, 100 ms apart) the same is recorded again, unparsed. */
	unsigned short rec_m[NMETRICS];
	uint64_t rec_v[NMETRICS];
	size_t nrec;
	int last_ok; /* the last read recorded something and rec is all of it */
};

static const char *const paths[2] = {SNMP, NETSTAT};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t line_len(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? (size_t)(nl - p) : strlen(p);
}

/* Length of "Group" in "Group: ...", or 0 if the line has no such prefix. */
static size_t prefix_len(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == ':')
			return i;
		if (is_blank(p[i]))
			return 0;
	}
	return 0;
}

static int metric_find(const char *group, size_t glen, const char *col, size_t clen)
{
	size_t i;

	for (i = 0; i < NMETRICS; i++)
		if (strncmp(metrics[i].group, group, glen) == 0 && metrics[i].group[glen] == '\0' &&
		    strncmp(metrics[i].col, col, clen) == 0 && metrics[i].col[clen] == '\0')
			return (int)i;
	return -1;
}

static void group_clear(struct group *g)
{
	free(g->header);
	free(g->map);
	memset(g, 0, sizeof(*g));
}

/* (Re)build g from header line h (len bytes, prefix glen). */
static int group_build(struct group *g, const char *h, size_t len, size_t glen)
{
	const char *end = h + len, *q;
	int n = 0, i;

	group_clear(g);
	for (q = h + glen + 1; q < end;) {
		while (q < end && is_blank(*q))
			q++;
		if (q >= end)
			break;
		while (q < end && !is_blank(*q))
			q++;
		n++;
	}
	g->header = malloc(len + 1);
	g->map = calloc(n ? (size_t)n : 1, sizeof(*g->map));
	if (!g->header || !g->map) {
		group_clear(g);
		return -ENOMEM;
	}
	memcpy(g->header, h, len);
	g->header[len] = '\0';
	g->len = len;
	g->ncols = n;
	for (q = h + glen + 1, i = 0; i < n; i++) {
		const char *tok;
		int j;

		while (is_blank(*q))
			q++;
		tok = q;
		while (q < end && !is_blank(*q))
			q++;
		g->map[i] = metric_find(h, glen, tok, (size_t)(q - tok));
		/* A column named twice would feed one series twice a read. */
		for (j = 0; j < i && g->map[i] >= 0; j++)
			if (g->map[j] == g->map[i])
				g->map[i] = -1;
		if (g->map[i] >= 0)
			g->wanted = 1;
	}
	return 0;
}

/* The k-th group of the file, rebuilt if its header is not the cached one. */
static struct group *group_get(struct nfile *nf, size_t k, const char *h, size_t len, size_t glen)
{
	struct group *g;

	if (k >= nf->ngroups) {
		if (nf->ngroups == nf->cap) {
			size_t cap = nf->cap ? nf->cap * 2 : 8;
			struct group *ng = realloc(nf->groups, cap * sizeof(*ng));

			if (!ng)
				return NULL;
			nf->groups = ng;
			nf->cap = cap;
		}
		memset(&nf->groups[nf->ngroups], 0, sizeof(*g));
		k = nf->ngroups++;
	}
	g = &nf->groups[k];
	if (g->header && g->len == len && memcmp(g->header, h, len) == 0)
		return g;
	return group_build(g, h, len, glen) ? NULL : g;
}

struct pending {
	int metric;
	uint64_t v;
};

/* Past the decimal at *p, as hitel_parse_u64() would go, without its
 * value; -EINVAL (nothing moved) when that would fail or might overflow. */
static int skip_u64(const char **p)
{
	const char *q = *p;

	while ((unsigned int)(*q - '0') <= 9 && q - *p < 19)
		q++;
	if (q == *p || (unsigned int)(*q - '0') <= 9)
		return -EINVAL; /* no digit, or long enough to need the value */
	*p = q;
	return 0;
}

static void record(struct netstat_priv *p, int m, uint64_t v, uint64_t now)
{
	if (metrics[m].kind == HITEL_KIND_GAUGE)
		hitel_series_gauge(p->series[m], v, now);
	else
		hitel_series_counter(p->series[m], v, now);
}

/* Value line for group g: "Group: v0 v1 ...". Values are applied only if
 * the line has exactly one value per header column (a cut line may end in
 * the middle of a number). Negative values (Tcp MaxConn is -1) are valid
 * tokens without a usable value. Returns the count applied or -EINVAL. */
static int values_apply(struct netstat_priv *p, struct hitel_registry *reg, const struct group *g,
			const char *v, size_t len, size_t glen, uint64_t now)
{
	struct pending pend[NMETRICS];
	const char *end = v + len, *q = v + glen + 1;
	int n = 0, npend = 0, i;

	for (;;) {
		uint64_t x;
		int neg = 0;

		while (q < end && is_blank(*q))
			q++;
		if (q >= end)
			break;
		if (*q == '-') {
			neg = 1;
			q++;
		}
		if (n < g->ncols && g->map[n] < 0 && skip_u64(&q) == 0) {
			/* TcpExt has ~120 columns, a dozen wanted: the rest are
			 * only checked to be numbers, not converted. */
		} else if (hitel_parse_u64(&q, &x)) {
			return -EINVAL;
		}
		if ((q < end && !is_blank(*q)) || q > end)
			return -EINVAL;
		if (n < g->ncols && !neg && g->map[n] >= 0 && npend < (int)NMETRICS) {
			pend[npend].metric = g->map[n];
			pend[npend].v = x;
			npend++;
		}
		n++;
	}
	if (n != g->ncols)
		return -EINVAL;
	for (i = 0; i < npend; i++) {
		int m = pend[i].metric;

		if (p->seen[m] == p->gen)
			continue;
		p->seen[m] = p->gen;
		if (!p->created[m]) {
			struct hitel_family_desc desc = {
				.name = metrics[m].name,
				.help = metrics[m].help,
				.unit = metrics[m].unit,
				.kind = metrics[m].kind,
			};

			p->created[m] = 1;
			p->series[m] = hitel_registry_series(reg, &desc, NULL, 0);
		}
		record(p, m, pend[i].v, now);
		if (p->nrec < NMETRICS) { /* always: each metric once a read */
			p->rec_m[p->nrec] = (unsigned short)m;
			p->rec_v[p->nrec++] = pend[i].v;
		}
	}
	return npend;
}

/* Walk header/value pairs. Returns values applied; *bad counts pairs that
 * did not parse. */
static int file_parse(struct netstat_priv *p, struct hitel_registry *reg, struct nfile *nf,
		      const char *buf, uint64_t now, int *bad)
{
	const char *h = buf, *v;
	size_t k = 0;
	int applied = 0;

	while (h && (v = hitel_next_line(h))) {
		size_t hlen = line_len(h), vlen = line_len(v);
		size_t glen = prefix_len(h, hlen);
		struct group *g;
		int r;

		/* Not a pair: resynchronise on the next line. */
		if (!glen || prefix_len(v, vlen) != glen || memcmp(h, v, glen) != 0) {
			(*bad)++;
			h = v;
			continue;
		}
		g = group_get(nf, k++, h, hlen, glen);
		if (g && g->wanted) {
			r = values_apply(p, reg, g, v, vlen, glen, now);
			if (r < 0)
				(*bad)++;
			else
				applied += r;
		}
		h = hitel_next_line(v);
	}
	return applied;
}

static int netstat_init(struct hitel_sampler *s)
{
	struct netstat_priv *p = hitel_sampler_priv(s);
	char path[2][PATH_MAX], why[2][128];
	int err[2] = {0, 0}, i;

	for (i = 0; i < 2; i++) {
		if (!hitel_sampler_path(s, paths[i], path[i], sizeof(path[i]))) {
			snprintf(path[i], sizeof(path[i]), "%s", paths[i]);
			err[i] = ENAMETOOLONG;
		} else {
			p->files[i].f = hitel_procfile_open(path[i]);
			if (!p->files[i].f)
				err[i] = errno;
		}
		snprintf(why[i], sizeof(why[i]), "%s", strerror(err[i]));
	}
	if (err[0] && err[1]) {
		hitel_sampler_fail(s, "cannot open %s: %s; cannot open %s: %s", path[0], why[0],
				   path[1], why[1]);
		return -err[0];
	}
	for (i = 0; i < 2; i++)
		if (err[i])
			hitel_sampler_log(s, HITEL_LOG_NOTICE, "cannot open %s: %s; using %s only",
					  path[i], why[i], path[!i]);
	return 0;
}

static int netstat_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct netstat_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	int applied = 0, bad = 0, err = 0, i, same[2] = {1, 1};
	const char *errpath = NULL, *buf[2] = {NULL, NULL};
	size_t len, k;

	for (i = 0; i < 2; i++) {
		struct nfile *nf = &p->files[i];
		int r;

		if (!nf->f)
			continue;
		r = hitel_procfile_read_same(nf->f, &buf[i], &len, &same[i]);
		if (r) {
			err = r;
			errpath = hitel_procfile_path(nf->f);
			buf[i] = NULL;
			same[i] = 0;
		}
	}
	if (same[0] && same[1] && p->last_ok) {
		for (k = 0; k < p->nrec; k++)
			record(p, p->rec_m[k], p->rec_v[k], now_ns);
		return 0;
	}
	p->last_ok = 0;
	p->nrec = 0;
	if (++p->gen == 0) /* 0 is the initial seen[]: never a current generation */
		p->gen = 1;
	for (i = 0; i < 2; i++)
		if (buf[i])
			applied += file_parse(p, reg, &p->files[i], buf[i], now_ns, &bad);
	if (bad && !p->warned_bad) {
		p->warned_bad = 1;
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "skipped %d malformed group(s)", bad);
	}
	if (applied) {
		p->last_ok = 1;
		return 0;
	}
	if (err) {
		hitel_sampler_fail(s, "cannot read %s: %s", errpath, strerror(-err));
		return err;
	}
	hitel_sampler_fail(s, "no known TCP or UDP counter in %s or %s",
			   p->files[0].f ? hitel_procfile_path(p->files[0].f) : SNMP,
			   p->files[1].f ? hitel_procfile_path(p->files[1].f) : NETSTAT);
	return -ENODATA;
}

static void netstat_fini(struct hitel_sampler *s)
{
	struct netstat_priv *p = hitel_sampler_priv(s);
	size_t i, k;

	for (i = 0; i < 2; i++) {
		for (k = 0; k < p->files[i].ngroups; k++)
			group_clear(&p->files[i].groups[k]);
		free(p->files[i].groups);
		hitel_procfile_free(p->files[i].f);
	}
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_netstat = {
	.name = "netstat",
	.help = "TCP and UDP protocol counters from /proc/net/snmp and /proc/net/netstat.",
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct netstat_priv),
	.init = netstat_init,
	.read = netstat_read,
	.fini = netstat_fini,
};
