/* SPDX-License-Identifier: MIT */
/*
 * bpf_fs: filesystem operation latency where stable tracepoints bracket an
 * operation, recorded in the kernel by bpf/fs.bpf.c: ext4 fsync, fdatasync
 * and writepages, jbd2 journal commits, writeback (flusher) passes by
 * reason, and xfs waits for log space (option xfs_log). One cumulative
 * histogram per (layer, op, device) lives in a hash map created on first
 * use by the programs; every read copies each entry and loads it into its
 * series.
 *
 * Families:
 *   filesystem/latency {fs, op, device}   histogram, ns
 *   filesystem/ops {fs, op, device}       counter: operations timed (the
 *                                          histogram's count)
 *   hitel/bpf/lost {sampler}              counter: operations not recorded
 *   hitel/bpf/runs, hitel/bpf/run_time    with kernel BPF statistics on
 * The labels are documented in docs/metrics/bpf_fs.md. device is the name
 * of the filesystem's block device (/sys/dev/block/M:m), for writeback the
 * flusher's backing device; include/exclude filter on it.
 *
 * ext4, jbd2 and xfs may be modules: a program whose tracepoint the running
 * kernel does not have (module absent or not loaded) is not loaded, and the
 * sampler runs with the others (logged at INFO). Writeback is core kernel.
 * Per-operation latency of read, write or open, of any filesystem, has no
 * tracepoint pair: it would need fentry/fexit or kprobes on the
 * filesystems' file_operations (docs/metrics/bpf_fs.md), which this
 * sampler does not use.
 *
 * Cost, measured on a 2-CPU VM (kernel 6.18; minimum of 15 interleaved
 * rounds, programs attached and detached between rounds): a start/end pair
 * adds 305-320 ns (tp_btf), 385-425 ns (raw_tp) to the operation it times
 * (fdatasync on a read-only ext4, which returns at once: 165 -> 470 ns).
 * The operations timed by default take 20 us (writepages) to milliseconds
 * (fsync, commit) - fsync here is never under 50 us - so the sampler is
 * enabled by default. xfs log space reservations are the exception: one per
 * xfs transaction, 120 ns when nothing waits, and a chmod loop on xfs went
 * from 2.5 to 2.95 us per call (+18 %); they are timed only with option
 * xfs_log on.
 */
#include "config.h"

#include <errno.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_common.h"
#include "engine.h"
#include "export.h"
#include "fs.h"
#include "fs.skel.h"
#include "hist.h"
#include "registry.h"
#include "sampler.h"

#define MAX_KEYS_DEFAULT 128
#define MAX_KEYS_LIMIT 4096
#define NAME_LEN 64
#define MISSING_LEN 256

static const char *const layer_names[FS_LAYER_COUNT] = {
	[FS_EXT4] = "ext4",
	[FS_JBD2] = "jbd2",
	[FS_XFS] = "xfs",
	[FS_WRITEBACK] = "writeback",
};

static const char *const op_names[FS_OP_COUNT] = {
	[FS_OP_FSYNC] = "fsync",
	[FS_OP_FDATASYNC] = "fdatasync",
	[FS_OP_WRITEPAGES] = "writepages",
	[FS_OP_COMMIT] = "commit",
	[FS_OP_LOG_RESERVE] = "log_reserve",
	[FS_OP_WB_BACKGROUND] = "background",
	[FS_OP_WB_VMSCAN] = "vmscan",
	[FS_OP_WB_SYNC] = "sync",
	[FS_OP_WB_PERIODIC] = "periodic",
	[FS_OP_WB_LAPTOP_TIMER] = "laptop_timer",
	[FS_OP_WB_FS_FREE_SPACE] = "fs_free_space",
	[FS_OP_WB_FORKER_THREAD] = "forker_thread",
	[FS_OP_WB_FOREIGN_FLUSH] = "foreign_flush",
	[FS_OP_WB_OTHER] = "other",
};

/* Tracepoint groups that may live in a module, with the module's name (its
 * BTF is /sys/kernel/btf/<name> while it is loaded). */
static const char *const modules[] = { "ext4", "jbd2", "xfs" };
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

/* One (layer, op, device) seen in the kernel map. */
struct fs_series {
	struct fs_key key;
	int skip; /* filtered out, bad key, or no series (cap reached) */
	struct hitel_series *latency, *ops;
};

struct fs_priv {
	struct hitel_bpf_opts opts;
	unsigned int max_keys;
	int xfs_log; /* option xfs_log: time xfs log space reservations */
	struct fs_bpf *skel;
	char missing[MISSING_LEN]; /* tracepoints left out: absent from the kernel */
	struct hitel_bpf_hist *buf; /* one map value */
	uint64_t counts[HITEL_BPF_BUCKETS];
	struct fs_series *keys;
	size_t nkeys;
	uint64_t prev_ns; /* time of the previous read (of the attach, at first) */
	struct hitel_series *lost;
	struct hitel_bpf_stats *stats;
};

static const struct hitel_family_desc latency_desc = {
	.name = "filesystem/latency",
	.help = "Filesystem operation latency, where tracepoints bracket the operation: ext4 "
		"fsync, fdatasync and writepages, jbd2 journal commits, writeback passes by "
		"reason, xfs waits for log space.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = HITEL_BPF_GROUPING,
	.max_power = HITEL_BPF_MAX_POWER,
};

static const struct hitel_family_desc ops_desc = {
	.name = "filesystem/ops",
	.help = "Filesystem operations timed (the count of filesystem/latency).",
	.unit = "operations",
	.kind = HITEL_KIND_COUNTER,
};

static int fs_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
		     size_t errlen)
{
	int b;

	if (strcmp(key, "max_keys") == 0)
		return hitel_bpf_count_option(key, value, MAX_KEYS_LIMIT, err, errlen);
	if (strcmp(key, "xfs_log") == 0) {
		if (hitel_parse_bool(value, &b) == 0)
			return 0;
		snprintf(err, errlen, "bad value '%s' for option xfs_log (on or off)", value);
		return -EINVAL;
	}
	return hitel_bpf_sampler_option(s, key, value, err, errlen);
}

/* Index in modules[] of the module defining tracepoint tp, or -1 (core). */
static int tp_module(const char *tp)
{
	size_t i, n;

	for (i = 0; i < NMODULES; i++) {
		n = strlen(modules[i]);
		if (strncmp(tp, modules[i], n) == 0 && tp[n] == '_')
			return (int)i;
	}
	return -1;
}

static int has_tp(const struct btf *btf, const char *tp)
{
	char name[128];

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	return btf && btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF) > 0;
}

/*
 * Of the programs hitel_bpf_select() kept, turn off the xfs log ones unless
 * asked for (xfs_log), and those whose tracepoint the running kernel does
 * not have: a tracepoint exists when its btf_trace_<name> typedef is in the
 * kernel's BTF or in the BTF of its (loaded) module. tp_btf programs would
 * fail to load, raw_tp ones to attach, and either would take the whole
 * sampler down. Without kernel BTF to look in (option btf), everything is
 * kept. The names left out as missing go to missing.
 */
static void select_programs(struct bpf_object *obj, int xfs_log, char *missing, size_t len)
{
	struct btf *vmlinux = btf__load_vmlinux_btf(), *mod[NMODULES] = { NULL };
	int tried[NMODULES] = { 0 }, m;
	struct bpf_program *p;
	size_t used = 0;

	missing[0] = '\0';
	bpf_object__for_each_program(p, obj) {
		const char *tp = strchr(bpf_program__section_name(p), '/');

		if (!bpf_program__autoload(p) || !tp)
			continue;
		tp++;
		if (!xfs_log && strncmp(tp, "xfs_log_", 8) == 0) {
			bpf_program__set_autoload(p, false);
			continue;
		}
		m = tp_module(tp);
		if (!vmlinux || m < 0 || has_tp(vmlinux, tp))
			continue;
		if (!tried[m]) {
			tried[m] = 1;
			mod[m] = btf__load_module_btf(modules[m], vmlinux);
		}
		if (has_tp(mod[m], tp))
			continue;
		bpf_program__set_autoload(p, false);
		if (used < len)
			used += (size_t)snprintf(missing + used, len - used, "%s%s",
						 used ? " " : "", tp);
	}
	for (m = 0; m < (int)NMODULES; m++)
		btf__free(mod[m]);
	btf__free(vmlinux);
}

static void fs_unload(void *ctx)
{
	struct fs_priv *p = ctx;

	fs_bpf__destroy(p->skel);
	p->skel = NULL;
}

static struct bpf_object_skeleton *fs_open(void *ctx, const struct bpf_object_open_opts *oo)
{
	struct fs_priv *p = ctx;

	p->skel = fs_bpf__open_opts(oo);
	return p->skel ? p->skel->skeleton : NULL;
}

static int fs_configure(void *ctx, int raw)
{
	struct fs_priv *p = ctx;
	int err;

	select_programs(p->skel->obj, p->xfs_log, p->missing, sizeof(p->missing));
	err = bpf_map__set_max_entries(p->skel->maps.hists, p->max_keys);
	if (!err)
		err = bpf_map__set_autocreate(raw ? p->skel->maps.task_ts : p->skel->maps.tid_ts,
					      false);
	return err;
}

static const struct hitel_bpf_loader fs_loader = {
	.open = fs_open,
	.configure = fs_configure,
	.unload = fs_unload,
};

static int fs_init(struct hitel_sampler *s)
{
	struct fs_priv *p = hitel_sampler_priv(s);
	size_t n = hitel_sampler_values(s, "xfs_log");
	int err;

	hitel_bpf_opts_load(s, &p->opts);
	p->max_keys = hitel_bpf_count_value(s, "max_keys", MAX_KEYS_DEFAULT, MAX_KEYS_LIMIT);
	if (n)
		hitel_parse_bool(hitel_sampler_value(s, "xfs_log", n - 1), &p->xfs_log);
	err = hitel_bpf_precheck(s, &p->opts);
	if (err)
		return err;
	p->buf = malloc(sizeof(*p->buf));
	p->keys = calloc(p->max_keys, sizeof(*p->keys));
	if (!p->buf || !p->keys) {
		hitel_sampler_fail(s, "out of memory");
		return -ENOMEM;
	}

	err = hitel_bpf_load(s, &p->opts, &fs_loader, p);
	if (err < 0)
		return err;
	if (p->missing[0])
		hitel_sampler_log(s, HITEL_LOG_INFO,
				  "not traced, tracepoints absent from this kernel (module not "
				  "loaded?): %s",
				  p->missing);
	p->prev_ns = hitel_now_ns();

	p->lost = hitel_bpf_lost_series(s);
	if (!p->lost)
		return hitel_bpf_fail_series(s);
	p->stats = hitel_bpf_stats_new(s, p->skel->obj, &p->opts);
	return p->stats ? 0 : -ENOMEM;
}

/*
 * Name of block device major:minor: the name of its sysfs directory (the
 * kernel's name, as DEVNAME in its uevent), else "major:minor" (an anonymous
 * device such as btrfs's or an NFS mount's, or no sysfs).
 */
static void dev_label(const struct hitel_sampler *s, unsigned int major, unsigned int minor,
		      char *name, size_t len)
{
	char rel[64], path[512], target[512];
	const char *base;
	ssize_t n;

	snprintf(rel, sizeof(rel), "/sys/dev/block/%u:%u", major, minor);
	if (hitel_sampler_path(s, rel, path, sizeof(path))) {
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			base = strrchr(target, '/');
			base = base ? base + 1 : target;
			n = (ssize_t)strlen(base);
			if (n > 0 && (size_t)n < len) {
				memcpy(name, base, (size_t)n + 1);
				return;
			}
		}
	}
	snprintf(name, len, "%u:%u", major, minor);
}

/* The device label of a key: the filesystem's device, or for writeback the
 * backing device, named "major:minor" by the kernel for block devices and
 * otherwise ("btrfs-1") used as it is. */
static void key_device(const struct hitel_sampler *s, const struct fs_key *key, char *name,
		       size_t len)
{
	char bdi[FS_BDI_LEN + 1], tail;
	unsigned int major, minor;

	if (key->fs != FS_WRITEBACK) {
		dev_label(s, key->dev >> FS_DEV_MINORBITS, key->dev & ((1U << FS_DEV_MINORBITS) - 1),
			  name, len);
		return;
	}
	memcpy(bdi, key->bdi, FS_BDI_LEN);
	bdi[FS_BDI_LEN] = '\0';
	if (sscanf(bdi, "%u:%u%c", &major, &minor, &tail) == 2)
		dev_label(s, major, minor, name, len);
	else
		snprintf(name, len, "%s", bdi[0] ? bdi : "unknown");
}

/*
 * The userspace side of a kernel key, created (name, filter, series) the
 * first time it is seen. NULL when more keys than the map can hold appear
 * (cannot happen: the map refuses them first). A key absent at the previous
 * read had no operation then (keys are never deleted), so its counter
 * starts there at 0: its first window holds every operation, as the
 * histogram's does.
 */
static struct fs_series *key_get(struct hitel_sampler *s, struct fs_priv *p,
				 const struct fs_key *key)
{
	struct hitel_registry *reg = hitel_sampler_registry(s);
	struct hitel_label l[3];
	char name[NAME_LEN];
	struct fs_series *k;
	size_t i;

	for (i = 0; i < p->nkeys; i++)
		if (memcmp(&p->keys[i].key, key, sizeof(*key)) == 0)
			return &p->keys[i];
	if (p->nkeys == p->max_keys)
		return NULL;
	k = &p->keys[p->nkeys++];
	k->key = *key;
	if (key->fs >= FS_LAYER_COUNT || key->op >= FS_OP_COUNT) {
		k->skip = 1;
		return k;
	}
	key_device(s, key, name, sizeof(name));
	if (!hitel_sampler_match(s, name)) {
		k->skip = 1;
		return k;
	}
	l[0].name = "fs";
	l[0].value = layer_names[key->fs];
	l[1].name = "op";
	l[1].value = op_names[key->op];
	l[2].name = "device";
	l[2].value = name;
	k->latency = hitel_registry_series(reg, &latency_desc, l, 3);
	k->ops = hitel_registry_series(reg, &ops_desc, l, 3);
	/* At the family's series cap: counted and logged by the registry. */
	k->skip = !k->latency || !k->ops;
	if (!k->skip)
		hitel_series_counter(k->ops, 0, p->prev_ns);
	return k;
}

static int fs_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct fs_priv *p = hitel_sampler_priv(s);
	int fd = bpf_map__fd(p->skel->maps.hists);
	struct fs_key key, next;
	struct fs_series *k;
	void *prev = NULL;
	uint64_t count;
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
		err = hitel_bpf_hist_load(k->latency, p->buf, 0, 1, p->counts, &count, now_ns);
		if (err) {
			hitel_sampler_fail(s, "histogram shape mismatch: %s", strerror(-err));
			return err;
		}
		hitel_series_counter(k->ops, count, now_ns);
	}
	hitel_series_counter(p->lost, p->skel->bss->lost, now_ns);
	hitel_bpf_stats_read(p->stats, now_ns);
	p->prev_ns = now_ns;
	return 0;
}

static void fs_fini(struct hitel_sampler *s)
{
	struct fs_priv *p = hitel_sampler_priv(s);

	hitel_bpf_stats_free(p->stats);
	p->stats = NULL;
	fs_unload(p);
	free(p->buf);
	p->buf = NULL;
	free(p->keys);
	p->keys = NULL;
	p->nkeys = 0;
}

const struct hitel_sampler_ops hitel_sampler_bpf_fs = {
	.name = "bpf_fs",
	.help = "Filesystem operation latency histograms and counts per layer, operation and "
		"device (ext4 fsync/fdatasync/writepages, jbd2 commit, writeback passes by "
		"reason, xfs log space waits), recorded in the kernel by eBPF programs on the "
		"ext4, jbd2, writeback and xfs tracepoints (options: include/exclude on the "
		"device, xfs_log on|off, max_keys N, attach auto|tp_btf|raw_tp, bpf_stats "
		"on|off, btf FILE).",
	.default_hz = 1,
	.default_enabled = 1,
	.priv_size = sizeof(struct fs_priv),
	.option = fs_option,
	.init = fs_init,
	.read = fs_read,
	.fini = fs_fini,
};
