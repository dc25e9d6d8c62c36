/* SPDX-License-Identifier: MIT */
/*
 * bpf_block: block I/O latency (issue -> complete) and size histograms per
 * (device, op), recorded in the kernel by bpf/block.bpf.c from the
 * block_rq_issue and block_rq_complete tracepoints. One cumulative pair of
 * histograms per (disk, op) lives in a hash map created on first use by the
 * program; every read copies each entry and loads it into its series.
 *
 * Families:
 *   block/io/latency {device, op}   histogram, ns
 *   block/io/size {device, op}      histogram, bytes
 *   hitel/bpf/lost {sampler}        counter: events not recorded
 * op is read, write, flush, discard or other; device is the disk's name
 * from /sys/dev/block/M:m/uevent (DEVNAME), else /proc/partitions, else
 * "M:m". include/exclude filter on the device name.
 *
 * The histograms are shared by all CPUs (atomic adds): I/O completions come
 * at most at millions per second spread over many (device, op) keys, unlike
 * context switches, and a per-CPU copy of 119 KB per key would cost more
 * than the contention it saves.
 */
#include "config.h"

#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "block.h"
#include "block.skel.h"
#include "bpf_common.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"

#define MAX_KEYS_DEFAULT 64
#define MAX_KEYS_LIMIT 4096
#define NAME_LEN 64

static const char *const op_names[BIO_OP_COUNT] = { "read", "write", "flush", "discard",
						     "other" };

/* One (device, op) seen in the kernel map. */
struct blk_key {
	struct bio_key key;
	int skip; /* filtered out, or no series (cap reached) */
	struct hitel_series *latency, *size;
};

struct blk_priv {
	struct hitel_bpf_opts opts;
	unsigned int max_keys;
	struct block_bpf *skel;
	struct bio_hists *buf; /* one map value */
	uint64_t counts[HITEL_BPF_BUCKETS];
	struct blk_key *keys;
	size_t nkeys;
	struct hitel_series *lost;
	struct hitel_bpf_stats *stats;
	int raw;
};

static const struct hitel_family_desc latency_desc = {
	.name = "block/io/latency",
	.help = "Block I/O latency, from issue to the device to completion.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc size_desc = {
	.name = "block/io/size",
	.help = "Block I/O size: bytes completed per request.",
	.unit = "bytes",
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static int blk_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen)
{
	if (strcmp(key, "max_keys") == 0)
		return hitel_bpf_count_option(key, value, MAX_KEYS_LIMIT, err, errlen);
	return hitel_bpf_sampler_option(s, key, value, err, errlen);
}

/* The value of "KEY=" in a uevent file, or -ENOENT. */
static int uevent_name(const char *path, char *name, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "re");
	int err = -ENOENT;
	size_t n;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEVNAME=", 8) != 0)
			continue;
		n = strcspn(line + 8, "\n");
		if (n && len) {
			if (n >= len)
				n = len - 1;
			memcpy(name, line + 8, n);
			name[n] = '\0';
			err = 0;
		}
		break;
	}
	fclose(f);
	return err;
}

/* The name of major:minor in /proc/partitions, or -ENOENT. */
static int partitions_name(const char *path, unsigned int major, unsigned int minor, char *name,
			   size_t len)
{
	char line[256], dev[NAME_LEN];
	unsigned int ma, mi;
	unsigned long long blocks;
	FILE *f = fopen(path, "re");
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%u %u %llu %63s", &ma, &mi, &blocks, dev) == 4 && ma == major &&
		    mi == minor) {
			snprintf(name, len, "%s", dev);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static void dev_name(const struct hitel_sampler *s, __u32 dev, char *name, size_t len)
{
	unsigned int major = dev >> BIO_DEV_MINORBITS;
	unsigned int minor = dev & ((1U << BIO_DEV_MINORBITS) - 1);
	char rel[64], path[512];

	snprintf(rel, sizeof(rel), "/sys/dev/block/%u:%u/uevent", major, minor);
	if (hitel_sampler_path(s, rel, path, sizeof(path)) &&
	    uevent_name(path, name, len) == 0)
		return;
	if (hitel_sampler_path(s, "/proc/partitions", path, sizeof(path)) &&
	    partitions_name(path, major, minor, name, len) == 0)
		return;
	snprintf(name, len, "%u:%u", major, minor);
}

static void blk_unload(void *ctx)
{
	struct blk_priv *p = ctx;

	block_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *blk_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct blk_priv *p = ctx;

	p->skel = block_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int blk_configure(void *ctx, int raw)
{
	struct blk_priv *p = ctx;

	(void)raw;
	return bpf_map__set_max_entries(p->skel->maps.hists, p->max_keys);
}

static const struct hitel_bpf_loader blk_loader = {
	.open = blk_open,
	.configure = blk_configure,
	.unload = blk_unload,
};

static int blk_init(struct hitel_sampler *s)
{
	struct blk_priv *p = hitel_sampler_priv(s);
	int err;

	hitel_bpf_opts_load(s, &p->opts);
	p->max_keys = hitel_bpf_count_value(s, "max_keys", MAX_KEYS_DEFAULT, MAX_KEYS_LIMIT);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	p->buf = malloc(sizeof(*p->buf));
	p->keys = calloc(p->max_keys, sizeof(*p->keys));
	if (!p->buf || !p->keys) {
		hitel_sampler_fail(s, "out of memory");
		return -ENOMEM;
	}

	err = hitel_bpf_load(s, &p->opts, &blk_loader, p);
	if (err < 0)
		return err;
	p->raw = err;

	p->lost = hitel_bpf_lost_series(s);
	if (!p->lost)
		return hitel_bpf_fail_series(s);
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
}

/* The userspace side of a kernel key, created (name, filter, series) the
 * first time it is seen. NULL when more keys than the map can hold appear
 * (cannot happen: the map refuses them first). */
static struct blk_key *key_get(struct hitel_sampler *s, struct blk_priv *p,
			       const struct bio_key *key)
{
	struct hitel_registry *reg = hitel_sampler_registry(s);
	struct hitel_label l[2];
	char name[NAME_LEN];
	struct blk_key *k;
	size_t i;

	for (i = 0; i < p->nkeys; i++)
		if (p->keys[i].key.dev == key->dev && p->keys[i].key.op == key->op)
			return &p->keys[i];
	if (p->nkeys == p->max_keys)
		return NULL;
	k = &p->keys[p->nkeys++];
	k->key = *key;
	dev_name(s, key->dev, name, sizeof(name));
	if (!hitel_sampler_match(s, name)) {
		k->skip = 1;
		return k;
	}
	l[0].name = "device";
	l[0].value = name;
	l[1].name = "op";
	l[1].value = op_names[key->op < BIO_OP_COUNT ? key->op : BIO_OP_OTHER];
	k->latency = hitel_registry_series(reg, &latency_desc, l, 2);
	k->size = hitel_registry_series(reg, &size_desc, l, 2);
	/* At the family's series cap: counted and logged by the registry. */
	k->skip = !k->latency || !k->size;
	return k;
}

static int blk_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct blk_priv *p = hitel_sampler_priv(s);
	int fd = bpf_map__fd(p->skel->maps.hists);
	struct bio_key key, next;
	struct blk_key *k;
	void *prev = NULL;
	int err;

	/* Keys are never deleted, so the walk cannot restart midway. */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		k = key_get(s, p, &key);
		if (!k || k->skip)
			continue;
		if (bpf_map_lookup_elem(fd, &key, p->buf) != 0) {
			err = -errno;
			hitel_sampler_fail(s, "cannot read BPF map: %s", strerror(errno));
			return err;
		}
		err = hitel_bpf_hist_load(k->latency, &p->buf->latency, 0, 1, p->counts, NULL,
					  now_ns);
		if (!err)
			err = hitel_bpf_hist_load(k->size, &p->buf->size, 0, 1, p->counts, NULL,
						  now_ns);
		if (err) {
			hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
			return err;
		}
	}
	hitel_series_counter(p->lost, p->skel->bss->lost, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	return 0;
}

static void blk_fini(struct hitel_sampler *s)
{
	struct blk_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	blk_unload(p);
	free(p->buf);
	p->buf = NULL;
	free(p->keys);
	p->keys = NULL;
	p->nkeys = 0;
}

const struct hitel_sampler_ops hitel_sampler_bpf_block = {
	.name = "bpf_block",
	.help = "Block I/O latency (issue to completion) and size histograms per device and "
		"operation, recorded in the kernel by eBPF programs on the block tracepoints "
		"(options: max_keys N, attach auto|tp_btf|raw_tp, bpf_stats on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 1,
	.priv_size = sizeof(struct blk_priv),
	.option = blk_option,
	.init = blk_init,
	.read = blk_read,
	.fini = blk_fini,
};
