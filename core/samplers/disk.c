/* SPDX-License-Identifier: MIT */
/*
 * disk: block device I/O counters, whole devices only.
 *
 * /proc/diskstats lists every device (loop, zram, partitions) and costs
 * ~10 us a read; /sys/block/<dev>/stat has the same values for one device
 * at ~2.5 us. So diskstats is read once a second to find the devices, and
 * the ticks in between read only the stat files of the devices kept (a
 * device whose stat file cannot be opened or read sends every read back to
 * diskstats until the next scan).
 *
 * A name is a whole device when /sys/block/<name> exists (partitions live
 * under their disk's directory, not there), checked once per new name. With
 * no include pattern, loop*, ram*, zram*, fd* and sr* are left out: they are
 * many, usually idle, and would crowd out the devices that matter.
 *
 * Line layout (Documentation/admin-guide/iostats.rst): "major minor name"
 * then 11 values (all kernels since 2.6), 15 with discards (4.18, "block:
 * Track DISCARD statistics") or 17 with flushes (5.5, "block: add iostat
 * counters for flush requests"). More than 17 values are a future kernel:
 * the known 17 are used. Any other count is a damaged line and is skipped,
 * since a cut line can end inside a number.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hot.h"
#include "procfile.h"
#include "sampler.h"

#define DISKSTATS "/proc/diskstats"
#define SCAN_NS 1000000000ULL /* diskstats re-read: new and removed devices */
#define NAME_MAX_LEN 255 /* longer than any kernel disk name; longer lines are garbage */
#define SECTOR_BYTES 512 /* diskstats sectors are 512 bytes whatever the device's block size */

enum { OP_READ, OP_WRITE, OP_DISCARD, OP_FLUSH, NOPS };

static const char *const op_names[NOPS] = {"read", "write", "discard", "flush"};

/* Value columns (0-based, after the name) per op; -1: the kernel has none. */
static const struct {
	int ops, merged, sectors, ms;
} op_cols[NOPS] = {
	[OP_READ] = {0, 1, 2, 3},
	[OP_WRITE] = {4, 5, 6, 7},
	[OP_DISCARD] = {11, 12, 13, 14},
	[OP_FLUSH] = {15, -1, -1, 16},
};

#define COL_IN_FLIGHT 8
#define COL_IO_TICKS 9
#define COL_WEIGHTED 10
#define NCOLS 17

static const struct hitel_family_desc fam_ops = {
	.name = "block/io/ops",
	.help = "Completed block I/O requests, by operation.",
	.unit = "operations",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_merged = {
	.name = "block/io/merged",
	.help = "Block I/O requests merged into an adjacent request before dispatch.",
	.unit = "operations",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_bytes = {
	.name = "block/io/bytes",
	.help = "Bytes transferred (discard: bytes discarded) by completed requests.",
	.unit = "bytes",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_time = {
	.name = "block/io/time",
	.help = "Time spent by requests of this operation, summed over requests.",
	.unit = "seconds",
	.scale = -3,
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_in_flight = {
	.name = "block/io/in_flight",
	.help = "Requests issued to the driver and not yet completed.",
	.unit = "operations",
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc fam_busy = {
	.name = "block/io/busy",
	.help = "Time the device had at least one request in flight (rate: utilisation).",
	.unit = "seconds",
	.scale = -3,
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc fam_weighted = {
	.name = "block/io/weighted_time",
	.help = "Request time weighted by requests in flight (rate: average queue depth).",
	.unit = "seconds",
	.scale = -3,
	.kind = HITEL_KIND_COUNTER,
};

static const char *const default_excludes[] = {"loop*", "ram*", "zram*", "fd*", "sr*"};

struct disk_line {
	const char *name;
	size_t namelen;
	uint64_t v[NCOLS];
	int nops; /* 2, 3 or 4 */
};

struct disk_dev {
	char *name;
	unsigned int gen; /* read generation that last saw this name */
	int keep;	  /* whole device that passed the filters */
	int nops;	  /* ops whose series were created */
	struct hitel_series *ops[NOPS], *merged[NOPS], *bytes[NOPS], *time[NOPS];
	struct hitel_series *in_flight, *busy, *weighted;
	/* The counters, updated together: an idle device's read then costs a
	 * line, not up to 18 (registry.h). NULL without memory: one by one. */
	struct hitel_series_group *grp;
	int grp_nops; /* the nops the group was made for */
	struct hitel_procfile *stat; /* /sys/block/<name>/stat, when kept */
	int no_stat;		     /* it could not be opened: diskstats only */
	struct disk_line cur;	     /* read_sysfs: parsed, not yet recorded */
	/* cur was parsed from the stat file's last content and recorded, so
	 * the same content again is cur again (an idle disk): not parsed.
	 * 0 once diskstats recorded the device instead. */
	int cur_ok;
	int same; /* read_sysfs: this read repeats cur */
};

struct disk_priv {
	struct hitel_procfile *f;
	struct disk_dev *devs;
	size_t ndevs, cap;
	unsigned int gen;
	int default_excludes; /* no include pattern given */
	int no_sysfs;	      /* <root>/sys/block missing: cannot tell partitions */
	int warned_bad;
	uint64_t scan_ns; /* last diskstats read */
	int fast;	  /* every kept device has its stat file */
	/* Indices in devs of the kept devices, as of the last scan: reads
	 * between scans walk this, not every loop device and partition (a
	 * cache miss each at 100 Hz). */
	size_t *kept;
	size_t nkept, kept_cap;
};


static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One line "major minor name v0 v1 ...", up to its '\n' or NUL. */
static int parse_values(const char *p, struct disk_line *l);

static int parse_line(const char *p, struct disk_line *l)
{
	uint64_t major, minor;

	if (hitel_parse_u64(&p, &major) || !is_blank(*p) || hitel_parse_u64(&p, &minor) ||
	    !is_blank(*p))
		return -EINVAL;
	while (is_blank(*p))
		p++;
	l->name = p;
	while (*p && *p != '\n' && !is_blank(*p))
		p++;
	l->namelen = (size_t)(p - l->name);
	if (l->namelen == 0 || l->namelen > NAME_MAX_LEN)
		return -EINVAL;
	return parse_values(p, l);
}

/* The value columns, as in diskstats after the name and alone in sysfs. */
static int parse_values(const char *p, struct disk_line *l)
{
	uint64_t extra;
	int n = 0;

	for (;;) {
		uint64_t *dst = n < NCOLS ? &l->v[n] : &extra;

		while (is_blank(*p))
			p++;
		if (*p == '\n' || *p == '\0')
			break;
		if (hitel_parse_u64(&p, dst) || !(is_blank(*p) || *p == '\n' || *p == '\0'))
			return -EINVAL;
		n++;
	}
	if (n == 11)
		l->nops = 2;
	else if (n == 15)
		l->nops = 3;
	else if (n >= NCOLS)
		l->nops = 4;
	else
		return -EINVAL;
	return 0;
}

static int default_excluded(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(default_excludes) / sizeof(default_excludes[0]); i++)
		if (fnmatch(default_excludes[i], name, 0) == 0)
			return 1;
	return 0;
}

/* <root>/sys/block/<name><suffix>; NULL if it does not fit. */
static const char *sysfs_path(const struct hitel_sampler *s, const char *name, const char *suffix,
			      char *path, size_t len)
{
	char rel[sizeof("/sys/block/") + NAME_MAX_LEN + sizeof("/stat")];
	char *c;

	/* sysfs spells a '/' in a disk name ("cciss/c0d0") as '!'. */
	snprintf(rel, sizeof(rel), "/sys/block/%s", name);
	for (c = rel + sizeof("/sys/block/") - 1; *c; c++)
		if (*c == '/')
			*c = '!';
	strcat(rel, suffix);
	return hitel_sampler_path(s, rel, path, len);
}

static int is_whole_device(const struct hitel_sampler *s, const char *name)
{
	char path[PATH_MAX];

	return sysfs_path(s, name, "", path, sizeof(path)) && access(path, F_OK) == 0;
}

/* The device's own stat file, opened once; without it (no sysfs, fixture
 * roots) the device is read from diskstats. */
static void dev_open_stat(const struct hitel_sampler *s, struct disk_dev *d)
{
	char path[PATH_MAX];

	if (d->stat || d->no_stat)
		return;
	if (sysfs_path(s, d->name, "/stat", path, sizeof(path)))
		d->stat = hitel_procfile_open(path);
	d->no_stat = !d->stat;
}

static int dev_keep(const struct hitel_sampler *s, const struct disk_priv *p, const char *name)
{
	if (p->default_excludes && default_excluded(name))
		return 0;
	if (!hitel_sampler_match(s, name))
		return 0;
	return p->no_sysfs || is_whole_device(s, name);
}

/* The device for this name: the one after the last match (diskstats keeps
 * its order), else a search, else a new entry. NULL on ENOMEM. */
static struct disk_dev *dev_get(struct hitel_sampler *s, struct disk_priv *p,
				const struct disk_line *l, size_t *hint)
{
	struct disk_dev *d;
	size_t i;

	for (i = 0; i < p->ndevs; i++) {
		size_t j = (*hint + i) % p->ndevs;

		d = &p->devs[j];
		if (strncmp(d->name, l->name, l->namelen) == 0 && d->name[l->namelen] == '\0') {
			*hint = j + 1;
			return d;
		}
	}
	if (p->ndevs == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct disk_dev *nd = realloc(p->devs, cap * sizeof(*nd));

		if (!nd)
			return NULL;
		p->devs = nd;
		p->cap = cap;
	}
	d = &p->devs[p->ndevs];
	memset(d, 0, sizeof(*d));
	d->name = strndup(l->name, l->namelen);
	if (!d->name)
		return NULL;
	d->keep = dev_keep(s, p, d->name);
	*hint = ++p->ndevs;
	return d;
}

/* Series for the ops this kernel reports; called again only if a later line
 * has more ops, so a refused series (at the family cap) is not retried on
 * every read. */
static void dev_series(struct hitel_registry *reg, struct disk_dev *d, int nops)
{
	struct hitel_label lb[2] = {{"device", d->name}, {"op", NULL}};
	int op;

	if (d->nops == 0) {
		d->in_flight = hitel_registry_series(reg, &fam_in_flight, lb, 1);
		d->busy = hitel_registry_series(reg, &fam_busy, lb, 1);
		d->weighted = hitel_registry_series(reg, &fam_weighted, lb, 1);
	}
	for (op = d->nops; op < nops; op++) {
		lb[1].value = op_names[op];
		d->ops[op] = hitel_registry_series(reg, &fam_ops, lb, 2);
		if (op_cols[op].merged >= 0)
			d->merged[op] = hitel_registry_series(reg, &fam_merged, lb, 2);
		if (op_cols[op].sectors >= 0)
			d->bytes[op] = hitel_registry_series(reg, &fam_bytes, lb, 2);
		d->time[op] = hitel_registry_series(reg, &fam_time, lb, 2);
	}
	d->nops = nops;
}

/* Group slots: four counters per op, then busy and weighted. */
#define GRP_N (NOPS * 4 + 2)

/* The series behind each group slot of d for a line of nops ops. Only
 * needed to build the group (or without one): the series' pointers are
 * lines of their own that an idle read then does not touch. */
static void dev_members(const struct disk_dev *d, int nops, struct hitel_series *m[GRP_N])
{
	int op;

	memset(m, 0, GRP_N * sizeof(*m));
	for (op = 0; op < nops; op++) {
		m[op * 4] = d->ops[op];
		if (op_cols[op].merged >= 0)
			m[op * 4 + 1] = d->merged[op];
		if (op_cols[op].sectors >= 0)
			m[op * 4 + 2] = d->bytes[op];
		m[op * 4 + 3] = d->time[op];
	}
	m[NOPS * 4] = d->busy;
	m[NOPS * 4 + 1] = d->weighted;
}

static void dev_update(struct hitel_registry *reg, struct disk_dev *d, const struct disk_line *l,
		       uint64_t now)
{
	struct hitel_series *m[GRP_N];
	uint64_t raw[GRP_N] = {0};
	int op, i;

	if (l->nops > d->nops)
		dev_series(reg, d, l->nops);
	for (op = 0; op < l->nops; op++) {
		raw[op * 4] = l->v[op_cols[op].ops];
		if (op_cols[op].merged >= 0)
			raw[op * 4 + 1] = l->v[op_cols[op].merged];
		if (op_cols[op].sectors >= 0)
			raw[op * 4 + 2] = l->v[op_cols[op].sectors] * SECTOR_BYTES;
		raw[op * 4 + 3] = l->v[op_cols[op].ms];
	}
	raw[NOPS * 4] = l->v[COL_IO_TICKS];
	raw[NOPS * 4 + 1] = l->v[COL_WEIGHTED];
	if (!d->grp || d->grp_nops != l->nops) {
		hitel_series_group_free(d->grp);
		dev_members(d, l->nops, m);
		d->grp = hitel_series_group_new(reg, m, GRP_N);
		d->grp_nops = l->nops;
	}
	if (d->grp) {
		hitel_series_group_counters(d->grp, raw, now);
	} else {
		dev_members(d, l->nops, m);
		for (i = 0; i < GRP_N; i++)
			hitel_series_counter(m[i], raw[i], now);
	}
	hitel_series_gauge(d->in_flight, l->v[COL_IN_FLIGHT], now);
}

/* Forget names the last read did not list, so a host that churns through
 * device names (loop, nbd) keeps a bounded table. Their series stay in the
 * registry and are found again if the name comes back. */
static void devs_prune(struct disk_priv *p)
{
	size_t i, j = 0;

	for (i = 0; i < p->ndevs; i++) {
		if (p->devs[i].gen != p->gen) {
			free(p->devs[i].name);
			hitel_procfile_free(p->devs[i].stat);
			hitel_series_group_free(p->devs[i].grp);
			continue;
		}
		if (j != i)
			p->devs[j] = p->devs[i];
		j++;
	}
	p->ndevs = j;
}

static int disk_init(struct hitel_sampler *s)
{
	struct disk_priv *p = hitel_sampler_priv(s);
	char path[PATH_MAX];
	int err;

	err = hitel_sampler_open(s, DISKSTATS, &p->f);
	if (err < 0)
		return err;
	p->default_excludes = hitel_sampler_values(s, "include") == 0;
	if (!hitel_sampler_path(s, "/sys/block", path, sizeof(path)) ||
	    access(path, F_OK) != 0) {
		p->no_sysfs = 1;
		hitel_sampler_log(s, HITEL_LOG_WARNING,
				  "cannot see %s: partitions are reported like whole devices",
				  path);
	}
	return 0;
}

/* The kept devices from their stat files. -EAGAIN (nothing recorded) if
 * one is unreadable or malformed: a removed device, for diskstats to tell.
 * All are parsed before any is recorded, so a failure part-way does not
 * give a device two samples in one tick. */
HITEL_TICK
static int read_sysfs(struct hitel_sampler *s, struct disk_priv *p, uint64_t now_ns)
{
	struct hitel_registry *reg = hitel_sampler_registry(s);
	size_t i;

	for (i = 0; i < p->nkept; i++) {
		struct disk_dev *d = &p->devs[p->kept[i]];
		const char *buf;
		size_t len;
		int same;

		if (!d->stat || hitel_procfile_read_same(d->stat, &buf, &len, &same) < 0)
			return -EAGAIN;
		d->same = same && d->cur_ok;
		if (d->same)
			continue;
		d->cur_ok = 0;
		if (parse_values(buf, &d->cur) < 0)
			return -EAGAIN;
	}
	for (i = 0; i < p->nkept; i++) {
		struct disk_dev *d = &p->devs[p->kept[i]];

		if (d->same && hitel_series_group_repeat(d->grp, now_ns) == 0)
			hitel_series_gauge(d->in_flight, d->cur.v[COL_IN_FLIGHT], now_ns);
		else
			dev_update(reg, d, &d->cur, now_ns);
		d->cur_ok = 1; /* only once recorded: a failure before leaves it 0 */
	}
	return 0;
}

static int read_diskstats(struct hitel_sampler *s, struct disk_priv *p, uint64_t now_ns)
{
	struct hitel_registry *reg = hitel_sampler_registry(s);
	const char *buf, *line;
	size_t len, hint = 0, i;
	int err, good = 0, bad = 0;

	err = hitel_sampler_read(s, p->f, &buf, &len);
	if (err < 0)
		return err;
	if (++p->gen == 0) /* 0 marks a new entry: never a current generation */
		p->gen = 1;
	for (line = buf; line; line = hitel_next_line(line)) {
		struct disk_line l;
		struct disk_dev *d;

		if (*line == '\n')
			continue;
		if (parse_line(line, &l)) {
			bad++;
			continue;
		}
		good++;
		d = dev_get(s, p, &l, &hint);
		/* Without memory the line is dropped; the next read retries. */
		if (!d || d->gen == p->gen) /* a name twice in one read: keep the first */
			continue;
		d->gen = p->gen;
		if (d->keep) {
			dev_update(reg, d, &l, now_ns);
			d->cur_ok = 0; /* the group's last values are now these */
			dev_open_stat(s, d);
		}
	}
	devs_prune(p);
	p->scan_ns = now_ns;
	p->fast = 1;
	p->nkept = 0;
	for (i = 0; i < p->ndevs; i++) {
		if (!p->devs[i].keep)
			continue;
		if (!p->devs[i].stat)
			p->fast = 0;
		if (p->nkept == p->kept_cap) {
			size_t cap = p->kept_cap ? p->kept_cap * 2 : 8;
			size_t *k = realloc(p->kept, cap * sizeof(*k));

			if (!k) { /* diskstats at every read, then */
				p->fast = 0;
				break;
			}
			p->kept = k;
			p->kept_cap = cap;
		}
		p->kept[p->nkept++] = i;
	}
	if (bad && !p->warned_bad) {
		p->warned_bad = 1;
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "skipped %d malformed line(s) in %s", bad,
				  hitel_procfile_path(p->f));
	}
	if (!good) {
		hitel_sampler_fail(s, "no valid device line in %s", hitel_procfile_path(p->f));
		return -ENODATA;
	}
	return 0;
}

HITEL_TICK
static int disk_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct disk_priv *p = hitel_sampler_priv(s);

	if (p->fast && now_ns - p->scan_ns < SCAN_NS && read_sysfs(s, p, now_ns) == 0)
		return 0;
	return read_diskstats(s, p, now_ns);
}

static void disk_fini(struct hitel_sampler *s)
{
	struct disk_priv *p = hitel_sampler_priv(s);
	size_t i;

	for (i = 0; i < p->ndevs; i++) {
		free(p->devs[i].name);
		hitel_procfile_free(p->devs[i].stat);
		hitel_series_group_free(p->devs[i].grp);
	}
	free(p->devs);
	free(p->kept);
	hitel_procfile_free(p->f);
	memset(p, 0, sizeof(*p));
}

const struct hitel_sampler_ops hitel_sampler_disk = {
	.name = "disk",
	.help = "Block device I/O of whole devices (/sys/block/*/stat, /proc/diskstats).",
	.default_hz = 0,
	.default_enabled = 1,
	.priv_size = sizeof(struct disk_priv),
	.init = disk_init,
	.read = disk_read,
	.fini = disk_fini,
};
