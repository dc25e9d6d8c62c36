/* SPDX-License-Identifier: MIT */
/*
 * network: per-interface counters from /proc/net/dev.
 *
 * Source: measured on this kind of machine (tests/bench/bench_netdev.c, 4
 * interfaces, 10k reads each, same run), one full read + parse of every
 * interface cost 5.3 us through /proc/net/dev with the fd kept open and
 * 16 us through a netlink RTM_GETLINK dump (each link message carries ~1 KiB
 * of attributes besides IFLA_STATS64), so this reads the file. An
 * RTM_GETSTATS dump filtered to IFLA_STATS_LINK_64 cost 4.1 us, but gives
 * ifindexes, not names, and cannot be pointed at fixtures.
 *
 * Columns are mapped by their names in the second header line, so kernels
 * with fewer columns (2.0 had no bytes) or more create only the families
 * they have. A data line whose value count differs from the header's is
 * skipped: a cut line may end inside a number.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "hot.h"
#include "procfile.h"
#include "sampler.h"

#define NETDEV "/proc/net/dev"
#define NAME_MAX_LEN 255 /* IFNAMSIZ is 16; anything near this is garbage */
#define MAXCOLS 64	 /* header columns beyond this are ignored */

struct column {
	const char *dir;  /* "rx": left of the second '|' in the header, "tx": right */
	const char *col;  /* header column name */
	const char *name; /* family */
	const char *unit;
	const char *help;
};

static const struct column columns[] = {
	{"rx", "bytes", "network/receive/bytes", "bytes", "Bytes received."},
	{"rx", "packets", "network/receive/packets", "packets", "Packets received."},
	{"rx", "errs", "network/receive/errors", "packets",
	 "Receive errors (sum of the driver's error kinds)."},
	{"rx", "drop", "network/receive/drops", "packets",
	 "Received packets dropped (no buffer, filtered, missed by the NIC)."},
	{"rx", "fifo", "network/receive/fifo_errors", "packets", "Receive FIFO overruns."},
	{"rx", "frame", "network/receive/frame_errors", "packets",
	 "Receive frame errors (length, overrun, CRC, alignment)."},
	{"rx", "compressed", "network/receive/compressed", "packets",
	 "Compressed packets received."},
	{"rx", "multicast", "network/receive/multicast", "packets", "Multicast packets received."},
	{"tx", "bytes", "network/transmit/bytes", "bytes", "Bytes transmitted."},
	{"tx", "packets", "network/transmit/packets", "packets", "Packets transmitted."},
	{"tx", "errs", "network/transmit/errors", "packets",
	 "Transmit errors (sum of the driver's error kinds)."},
	{"tx", "drop", "network/transmit/drops", "packets", "Packets dropped before transmission."},
	{"tx", "fifo", "network/transmit/fifo_errors", "packets", "Transmit FIFO errors."},
	{"tx", "colls", "network/transmit/collisions", "packets", "Collisions while transmitting."},
	{"tx", "carrier", "network/transmit/carrier_errors", "packets",
	 "Transmit carrier errors."},
	{"tx", "compressed", "network/transmit/compressed", "packets",
	 "Compressed packets transmitted."},
};

#define NFAM (sizeof(columns) / sizeof(columns[0]))

struct net_if {
	char *name;
	unsigned int gen; /* read generation that last saw this name */
	int keep;
	uint32_t created; /* bit per columns[] entry whose series was asked for */
	struct hitel_series *series[NFAM];
	/* The series of the header's columns, updated together: an idle
	 * interface's read then costs a line, not sixteen (registry.h). NULL
	 * without memory: the series are then updated one by one. */
	struct hitel_series_group *grp;
	uint32_t grp_cols; /* the p->present the group was made for */
	/* The line's text from the ':' as last parsed and recorded: the
	 * same text again is the same values, so an idle interface is a
	 * compare, not sixteen numbers to parse. text_len 0: none. */
	char *text;
	size_t text_len, text_cap;
};

struct net_priv {
	struct hitel_procfile *f;
	/* The header as last seen and what its columns map to. */
	char *header;
	size_t header_len;
	int ncols;
	int map[MAXCOLS]; /* index into columns[] or -1 */
	uint32_t present; /* bit per columns[] entry the header has */
	struct net_if *ifs;
	size_t nifs, cap;
	unsigned int gen;
	int warned_bad;
	int last_ok; /* the last read succeeded: the same file is the same reads */
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t line_len(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? (size_t)(nl - p) : strlen(p);
}

static int column_find(const char *dir, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NFAM; i++)
		if (strcmp(columns[i].dir, dir) == 0 && strncmp(columns[i].col, name, len) == 0 &&
		    columns[i].col[len] == '\0')
			return (int)i;
	return -1;
}

/* " face |bytes packets ...|bytes packets ..." -> p->map. */
static int header_parse(struct net_priv *p, const char *h, size_t len)
{
	const char *end = h + len, *bar1, *bar2, *q;
	int n = 0;

	bar1 = memchr(h, '|', len);
	bar2 = bar1 ? memchr(bar1 + 1, '|', (size_t)(end - bar1 - 1)) : NULL;
	if (!bar2)
		return -EINVAL;
	p->present = 0;
	for (q = bar1 + 1; q < end;) {
		const char *dir = q < bar2 ? "rx" : "tx";
		const char *tok;
		int c;

		while (q < end && (is_blank(*q) || *q == '|'))
			q++;
		if (q >= end)
			break;
		tok = q;
		while (q < end && !is_blank(*q) && *q != '|')
			q++;
		c = column_find(dir, tok, (size_t)(q - tok));
		if (n < MAXCOLS) {
			/* A name twice in one direction would feed one series twice. */
			if (c >= 0 && (p->present & (1u << c)))
				c = -1;
			p->map[n] = c;
			if (c >= 0)
				p->present |= 1u << c;
		}
		n++;
	}
	if (n == 0)
		return -EINVAL;
	p->ncols = n;
	return 0;
}

/* Re-map only when the header text changes (never, on a live kernel). */
static int header_update(struct net_priv *p, const char *h)
{
	size_t len = line_len(h), i;
	char *copy;

	if (p->header && p->header_len == len && memcmp(p->header, h, len) == 0)
		return 0;
	/* Texts were parsed against the old columns. */
	for (i = 0; i < p->nifs; i++)
		p->ifs[i].text_len = 0;
	free(p->header);
	p->header = NULL;
	p->header_len = 0;
	if (header_parse(p, h, len))
		return -EINVAL;
	copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, h, len);
	copy[len] = '\0';
	p->header = copy;
	p->header_len = len;
	return 0;
}

struct net_line {
	const char *name;
	size_t namelen;
	uint64_t v[MAXCOLS];
};

/* "  eth0: 123 456 ..." -> l->name, and the ':' the values follow (old
 * kernels print "eth0:123" with no blank). NULL if there is no name. */
static const char *parse_name(const char *q, struct net_line *l)
{
	while (is_blank(*q))
		q++;
	l->name = q;
	while (*q && *q != ':' && *q != '\n' && !is_blank(*q))
		q++;
	l->namelen = (size_t)(q - l->name);
	if (*q != ':' || l->namelen == 0 || l->namelen > NAME_MAX_LEN)
		return NULL;
	return q;
}

/* The values after the ':' at q. */
static int parse_values(const struct net_priv *p, const char *q, struct net_line *l)
{
	uint64_t extra;
	int n = 0;

	q++;
	for (;;) {
		uint64_t *dst = n < MAXCOLS ? &l->v[n] : &extra;

		while (is_blank(*q))
			q++;
		if (*q == '\n' || *q == '\0')
			break;
		if (hitel_parse_u64(&q, dst) || !(is_blank(*q) || *q == '\n' || *q == '\0'))
			return -EINVAL;
		n++;
	}
	return n == p->ncols ? 0 : -EINVAL;
}

/* The interface for this name: the one after the last match first, since
 * the kernel keeps its order; a new entry when unknown. NULL on ENOMEM. */
static struct net_if *if_find(struct net_priv *p, const struct net_line *l, size_t *hint)
{
	size_t i;

	for (i = 0; i < p->nifs; i++) {
		size_t j = (*hint + i) % p->nifs;
		struct net_if *it = &p->ifs[j];

		if (strncmp(it->name, l->name, l->namelen) == 0 && it->name[l->namelen] == '\0') {
			*hint = j + 1;
			return it;
		}
	}
	return NULL;
}

static struct net_if *if_get(struct hitel_sampler *s, struct net_priv *p, const struct net_line *l,
			     size_t *hint)
{
	struct net_if *it = if_find(p, l, hint);

	if (it)
		return it;
	if (p->nifs == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct net_if *n = realloc(p->ifs, cap * sizeof(*n));

		if (!n)
			return NULL;
		p->ifs = n;
		p->cap = cap;
	}
	it = &p->ifs[p->nifs];
	memset(it, 0, sizeof(*it));
	it->name = strndup(l->name, l->namelen);
	if (!it->name)
		return NULL;
	it->keep = hitel_sampler_match(s, it->name);
	*hint = ++p->nifs;
	return it;
}

static void if_update(struct hitel_registry *reg, const struct net_priv *p, struct net_if *it,
		      const struct net_line *l, uint64_t now)
{
	uint64_t raw[NFAM] = {0};
	size_t c;
	int i;

	if (p->present & ~it->created) {
		struct hitel_label lb = {"interface", it->name};

		for (c = 0; c < NFAM; c++)
			if ((p->present & ~it->created) & (1u << c)) {
				struct hitel_family_desc desc = {
					.name = columns[c].name,
					.help = columns[c].help,
					.unit = columns[c].unit,
					.kind = HITEL_KIND_COUNTER,
				};

				it->series[c] = hitel_registry_series(reg, &desc, &lb, 1);
			}
		it->created |= p->present;
	}
	if (!it->grp || it->grp_cols != p->present) {
		struct hitel_series *members[NFAM] = {NULL};

		hitel_series_group_free(it->grp);
		for (c = 0; c < NFAM; c++)
			if (p->present & (1u << c))
				members[c] = it->series[c];
		it->grp = hitel_series_group_new(reg, members, NFAM);
		it->grp_cols = p->present;
	}
	for (i = 0; i < p->ncols && i < MAXCOLS; i++)
		if (p->map[i] >= 0)
			raw[p->map[i]] = l->v[i];
	if (it->grp) {
		hitel_series_group_counters(it->grp, raw, now);
		return;
	}
	for (c = 0; c < NFAM; c++)
		if (p->present & (1u << c))
			hitel_series_counter(it->series[c], raw[c], now);
}

/* Remember the values' text as recorded; without memory, none (the next
 * read parses). */
static void text_save(struct net_if *it, const char *vals, size_t len)
{
	if (len > it->text_cap) {
		char *t = realloc(it->text, len);

		if (!t) {
			it->text_len = 0;
			return;
		}
		it->text = t;
		it->text_cap = len;
	}
	memcpy(it->text, vals, len);
	it->text_len = len;
}

/* The whole file repeats the last read, which succeeded (an idle host):
 * each interface it listed repeats, with no line to find or compare.
 * -EAGAIN if one cannot (no group): the lines are read then, and those
 * done here are skipped as seen in this read. */
HITEL_TICK
static int ifs_repeat(struct net_priv *p, uint64_t now)
{
	size_t i;

	for (i = 0; i < p->nifs; i++) {
		struct net_if *it = &p->ifs[i];

		if (it->keep && hitel_series_group_repeat(it->grp, now) < 0)
			return -EAGAIN;
		it->gen = p->gen;
	}
	return 0;
}

/* Forget interfaces the last read did not list (containers come and go);
 * their series stay in the registry for when the name returns. */
static void ifs_prune(struct net_priv *p)
{
	size_t i, j = 0;

	for (i = 0; i < p->nifs; i++) {
		if (p->ifs[i].gen != p->gen) {
			free(p->ifs[i].name);
			free(p->ifs[i].text);
			hitel_series_group_free(p->ifs[i].grp);
			continue;
		}
		if (j != i)
			p->ifs[j] = p->ifs[i];
		j++;
	}
	p->nifs = j;
}

static int net_init(struct hitel_sampler *s)
{
	struct net_priv *p = hitel_sampler_priv(s);
	int err;

	err = hitel_sampler_open(s, NETDEV, &p->f);
	if (err < 0)
		return err;
	return 0;
}

HITEL_TICK
static int net_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct net_priv *p = hitel_sampler_priv(s);
	struct hitel_registry *reg = hitel_sampler_registry(s);
	const char *path = hitel_procfile_path(p->f);
	const char *buf, *line, *end, *next;
	size_t len, hint = 0;
	int err, good = 0, bad = 0, same;

	err = hitel_sampler_read_same(s, p->f, &buf, &len, &same);
	if (err < 0) {
		p->last_ok = 0;
		return err;
	}
	if (++p->gen == 0) /* 0 marks a new entry: never a current generation */
		p->gen = 1;
	if (same && p->last_ok && ifs_repeat(p, now_ns) == 0)
		return 0;
	p->last_ok = 0;
	end = buf + len;
	/* Line 1 names the sections, line 2 the columns. */
	line = hitel_next_line(buf);
	if (!line) {
		hitel_sampler_fail(s, "no header in %s", path);
		return -ENODATA;
	}
	err = header_update(p, line);
	if (err) {
		if (err == -EINVAL)
			hitel_sampler_fail(s, "unexpected header in %s", path);
		else
			hitel_sampler_fail(s, "header of %s: %s", path, strerror(-err));
		return err;
	}
	for (line = hitel_next_line(line); line; line = next) {
		const char *eol = memchr(line, '\n', (size_t)(end - line)), *vals;
		struct net_line l;
		struct net_if *it;
		size_t vlen;

		next = eol && eol + 1 < end ? eol + 1 : NULL;
		if (*line == '\n')
			continue;
		vals = parse_name(line, &l);
		if (!vals) {
			bad++;
			continue;
		}
		vlen = (size_t)((eol ? eol : end) - vals);
		it = if_find(p, &l, &hint);
		if (it && it->gen != p->gen && it->text_len == vlen &&
		    memcmp(it->text, vals, vlen) == 0 &&
		    (!it->keep || hitel_series_group_repeat(it->grp, now_ns) == 0)) {
			it->gen = p->gen;
			good++;
			continue;
		}
		if (parse_values(p, vals, &l)) {
			bad++;
			continue;
		}
		good++;
		if (!it)
			it = if_get(s, p, &l, &hint);
		if (!it || it->gen == p->gen) /* no memory, or a name twice: keep the first */
			continue;
		it->gen = p->gen;
		if (it->keep)
			if_update(reg, p, it, &l, now_ns);
		text_save(it, vals, vlen);
	}
	ifs_prune(p);
	if (bad && !p->warned_bad) {
		p->warned_bad = 1;
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "skipped %d malformed line(s) in %s", bad,
				  path);
	}
	if (!good) {
		hitel_sampler_fail(s, "no valid interface line in %s", path);
		return -ENODATA;
	}
	p->last_ok = 1;
	return 0;
}

static void net_fini(struct hitel_sampler *s)
{
	struct net_priv *p = hitel_sampler_priv(s);
	size_t i;

	for (i = 0; i < p->nifs; i++) {
		free(p->ifs[i].name);
		free(p->ifs[i].text);
		hitel_series_group_free(p->ifs[i].grp);
	}
	free(p->ifs);
	free(p->header);
	hitel_procfile_free(p->f);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_network = {
	.name = "network",
	.help = "Per-interface traffic and error counters from /proc/net/dev.",
	.default_hz = 0,
	.default_enabled = 1,
	.priv_size = sizeof(struct net_priv),
	.init = net_init,
	.read = net_read,
	.fini = net_fini,
};
