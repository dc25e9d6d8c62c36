/* SPDX-License-Identifier: MIT */
/* Helpers shared by the eBPF samplers: see bpf_common.h. */
#include "config.h"

#include "bpf_common.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/types.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hist.h"
#include "hitel_bpf.h"
#include "hot.h"
#include "log.h"
#include "registry.h"

/* Older uapi headers predate the split of CAP_SYS_ADMIN (v5.8). */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define KERNEL_BTF "/sys/kernel/btf/vmlinux"
#define LOG_MAX 16384

int hitel_bpf_option(struct hitel_bpf_opts *o, const char *key, const char *value, char *err,
		     size_t errlen)
{
	if (strcmp(key, "attach") == 0) {
		if (strcmp(value, "auto") == 0)
			o->attach = HITEL_BPF_ATTACH_AUTO;
		else if (strcmp(value, "tp_btf") == 0)
			o->attach = HITEL_BPF_ATTACH_TP_BTF;
		else if (strcmp(value, "raw_tp") == 0)
			o->attach = HITEL_BPF_ATTACH_RAW_TP;
		else
			goto bad;
		return 0;
	}
	if (strcmp(key, "bpf_stats") == 0) {
		if (!strcasecmp(value, "on") || !strcasecmp(value, "true") ||
		    !strcasecmp(value, "yes") || !strcmp(value, "1"))
			o->stats = 1;
		else if (!strcasecmp(value, "off") || !strcasecmp(value, "false") ||
			 !strcasecmp(value, "no") || !strcmp(value, "0"))
			o->stats = 0;
		else
			goto bad;
		return 0;
	}
	if (strcmp(key, "btf") == 0) {
		if (!value[0] || strlen(value) >= sizeof(o->btf))
			goto bad;
		snprintf(o->btf, sizeof(o->btf), "%s", value);
		return 0;
	}
	return -ENOENT;
bad:
	snprintf(err, errlen, "bad value '%s' for option %s (%s)", value, key,
		 strcmp(key, "attach") == 0	 ? "auto, tp_btf or raw_tp"
		 : strcmp(key, "bpf_stats") == 0 ? "on or off"
						 : "a file path");
	return -EINVAL;
}

int hitel_bpf_sampler_option(struct hitel_sampler *s, const char *key, const char *value,
			     char *err, size_t errlen)
{
	struct hitel_bpf_opts o;

	(void)s;
	memset(&o, 0, sizeof(o));
	return hitel_bpf_option(&o, key, value, err, errlen);
}

static int parse_count(const char *value, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || end == value || *end || v < 1 || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int hitel_bpf_count_option(const char *key, const char *value, unsigned int max, char *err,
			   size_t errlen)
{
	unsigned int n;

	if (parse_count(value, max, &n) == 0)
		return 0;
	snprintf(err, errlen, "bad value '%s' for option %s (1..%u)", value, key, max);
	return -EINVAL;
}

unsigned int hitel_bpf_count_value(const struct hitel_sampler *s, const char *key,
				   unsigned int def, unsigned int max)
{
	size_t n = hitel_sampler_values(s, key);
	unsigned int v = def;

	if (n)
		parse_count(hitel_sampler_value(s, key, n - 1), max, &v);
	return v;
}

void hitel_bpf_opts_load(const struct hitel_sampler *s, struct hitel_bpf_opts *o)
{
	static const char *const keys[] = { "attach", "bpf_stats", "btf" };
	char err[128];
	size_t i, n;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		n = hitel_sampler_values(s, keys[i]);
		if (n)
			hitel_bpf_option(o, keys[i], hitel_sampler_value(s, keys[i], n - 1), err,
					 sizeof(err));
	}
}

/* libbpf prints multi-line text (verifier logs) with trailing newlines;
 * hitel_log takes one line per call. Everything goes at DEBUG: the sampler
 * itself reports failures at WARNING with the reason. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf, *line, *save = NULL;
	va_list aq;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return 0;
	if (n >= LOG_MAX)
		n = LOG_MAX - 1;
	buf = malloc((size_t)n + 1);
	if (!buf)
		return 0;
	vsnprintf(buf, (size_t)n + 1, fmt, ap);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		hitel_log(HITEL_LOG_DEBUG, "libbpf", "%s", line);
	free(buf);
	return n;
}

static pthread_once_t print_once = PTHREAD_ONCE_INIT;

static void print_init(void)
{
	libbpf_set_print(libbpf_print);
}

/* Effective capabilities include cap (capget(2), no libcap needed). */
static int cap_effective(const struct __user_cap_data_struct d[2], int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int hitel_bpf_precheck(struct hitel_sampler *s, const struct hitel_bpf_opts *o)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	const char *btf = o->btf[0] ? o->btf : KERNEL_BTF;

	pthread_once(&print_once, print_init);

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &hdr, d) == 0 && !cap_effective(d, CAP_SYS_ADMIN) &&
	    !(cap_effective(d, CAP_BPF) && cap_effective(d, CAP_PERFMON))) {
		hitel_sampler_fail(s, "missing capabilities: tracing programs need CAP_BPF and "
				      "CAP_PERFMON, or CAP_SYS_ADMIN");
		return -EPERM;
	}
	if (access(btf, R_OK) != 0) {
		int err = errno;

		if (o->btf[0])
			hitel_sampler_fail(s, "BTF file %s (option btf): %s", btf, strerror(err));
		else
			hitel_sampler_fail(s,
					   "no kernel BTF at %s: %s (the kernel needs "
					   "CONFIG_DEBUG_INFO_BTF=y, or set option btf to a BTF "
					   "file of this kernel)",
					   btf, strerror(err));
		return -err;
	}
	return 0;
}

void hitel_bpf_select(struct bpf_object *obj, int raw)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj) {
		const char *sec = bpf_program__section_name(p);

		bpf_program__set_autoload(p, strncmp(sec, raw ? "raw_tp/" : "tp_btf/", 7) == 0);
	}
}

const char *hitel_bpf_hint(int err)
{
	switch (err < 0 ? -err : err) {
	case EPERM:
	case EACCES:
		return " (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; or the verifier "
		       "rejected the program: see the libbpf log at debug level)";
	case ENOENT:
		return " (tracepoint, BTF type or kernel feature missing)";
	case EINVAL:
		return " (kernel too old for this program type or map)";
	case E2BIG:
	case ENOMEM:
		return " (memory: RLIMIT_MEMLOCK before 5.11, memory cgroup after)";
	case ESRCH:
		return " (kernel BTF does not describe this kernel)";
	default:
		return "";
	}
}

/* Open, configure, load and attach one flavour; on failure why says which
 * step failed and how, and nothing is left loaded. */
static int load_flavour(const struct hitel_bpf_opts *o, const struct hitel_bpf_loader *l,
			void *ctx, int raw, char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo);
	struct bpf_object_skeleton *sk;
	const char *step = "open";
	int err = 0;

	if (o->btf[0])
		oo.btf_custom_path = o->btf;
	sk = l->open(ctx, &oo);
	if (!sk) {
		err = errno ? -errno : -ENOMEM;
		goto cleanup;
	}
	hitel_bpf_select(*sk->obj, raw);
	if (l->configure) {
		step = "configure";
		err = l->configure(ctx, raw);
		if (err)
			goto cleanup;
	}
	step = "load";
	err = bpf_object__load_skeleton(sk);
	if (err)
		goto cleanup;
	step = "attach";
	err = bpf_object__attach_skeleton(sk);
	if (err)
		goto cleanup;
	if (l->mmap) {
		step = "mmap";
		err = l->mmap(ctx);
	}
cleanup:
	if (err) {
		if (err > 0)
			err = -err;
		snprintf(why, whylen, "%s %s: %s%s", raw ? "raw_tp" : "tp_btf", step,
			 strerror(-err), hitel_bpf_hint(err));
		l->unload(ctx);
	}
	return err;
}

int hitel_bpf_load(struct hitel_sampler *s, const struct hitel_bpf_opts *o,
		   const struct hitel_bpf_loader *l, void *ctx)
{
	char why_btf[192] = "", why_raw[192] = "";
	int err = -EINVAL, raw = 0;

	if (o->attach != HITEL_BPF_ATTACH_RAW_TP)
		err = load_flavour(o, l, ctx, 0, why_btf, sizeof(why_btf));
	if (err && o->attach != HITEL_BPF_ATTACH_TP_BTF) {
		raw = 1;
		err = load_flavour(o, l, ctx, 1, why_raw, sizeof(why_raw));
	}
	if (err) {
		hitel_sampler_fail(s, "cannot load BPF programs: %s%s%s", why_btf,
				   why_btf[0] && why_raw[0] ? "; " : "", why_raw);
		return err;
	}
	if (why_btf[0])
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "using the raw_tp fallback: %s", why_btf);
	return raw;
}

const void *hitel_bpf_mmap(const struct bpf_map *map, size_t n, size_t size, size_t *len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	*len = (n * size + page - 1) / page * page;
	m = mmap(NULL, *len, PROT_READ, MAP_SHARED, bpf_map__fd(map), 0);
	return m == MAP_FAILED ? NULL : m;
}

void hitel_bpf_munmap(const void *addr, size_t len)
{
	if (addr)
		munmap((void *)addr, len);
}

int hitel_bpf_hist_load(struct hitel_series *series, const struct hitel_bpf_hist *first,
			size_t stride, unsigned int n, uint64_t *counts, uint64_t *count,
			uint64_t now_ns)
{
	uint64_t sum = 0, total = 0;
	unsigned int c;
	size_t i;

	/* Through uint64_t counts: __u64 is unsigned long long, uint64_t is not. */
	memset(counts, 0, HITEL_BPF_BUCKETS * sizeof(*counts));
	for (c = 0; c < n; c++) {
		const struct hitel_bpf_hist *h =
			(const void *)((const char *)first + (size_t)c * stride);

		sum += h->sum;
		for (i = 0; i < HITEL_BPF_BUCKETS; i++)
			counts[i] += h->buckets[i];
	}
	if (count) {
		for (i = 0; i < HITEL_BPF_BUCKETS; i++)
			total += counts[i];
		*count = total;
	}
	return hitel_series_hist_load(series, counts, HITEL_BPF_BUCKETS, sum, now_ns);
}

static const struct hitel_family_desc lost_desc = {
	.name = "hitel/bpf/lost",
	.help = "Events a BPF sampler could not record (map full, no storage, no memory).",
	.unit = "events",
	.kind = HITEL_KIND_COUNTER,
};

struct hitel_series *hitel_bpf_lost_series(struct hitel_sampler *s)
{
	struct hitel_label who = { "sampler", hitel_sampler_name(s) };

	return hitel_registry_series(hitel_sampler_registry(s), &lost_desc, &who, 1);
}

struct hitel_series *hitel_bpf_counter_series(struct hitel_sampler *s,
					      const struct hitel_family_desc *desc,
					      const struct hitel_label *labels, size_t nlabels,
					      uint64_t since_ns)
{
	struct hitel_series *series;

	series = hitel_registry_series(hitel_sampler_registry(s), desc, labels, nlabels);
	if (series)
		hitel_series_counter(series, 0, since_ns);
	return series;
}

int hitel_bpf_fail_series(struct hitel_sampler *s)
{
	int err = errno ? -errno : -ENOMEM;

	hitel_sampler_fail(s, "cannot create series: %s", strerror(-err));
	return err;
}

int hitel_bpf_ncpus(void)
{
	return libbpf_num_possible_cpus();
}

static const struct hitel_family_desc runs_desc = {
	.name = "hitel/bpf/runs",
	.help = "Runs of one of hitel's BPF programs (counted while kernel.bpf_stats_enabled "
		"is on).",
	.unit = "runs",
	.kind = HITEL_KIND_COUNTER,
};

static const struct hitel_family_desc run_time_desc = {
	.name = "hitel/bpf/run_time",
	.help = "CPU time spent in one of hitel's BPF programs (counted while "
		"kernel.bpf_stats_enabled is on).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
};

/* A statistics read is a system call per program: a sampler at the engine's
 * rate (bpf_cpu) reads them twice a second, not 100 times; one at 1 Hz reads
 * them on every read despite wake-up jitter. */
#define STATS_MIN_NS 500000000ULL

struct prog_stats {
	int fd;
	const char *name; /* owned by the bpf_object, which outlives us */
	struct hitel_series *runs, *time;
};

struct hitel_bpf_stats {
	struct hitel_sampler *s;
	int stats_fd;
	uint64_t read_ns; /* the last read; 0: none yet */
	size_t n;
	struct prog_stats progs[];
};

struct hitel_bpf_stats *hitel_bpf_stats_new(struct hitel_sampler *s, struct bpf_object *obj,
					    const struct hitel_bpf_opts *o)
{
	struct hitel_bpf_stats *st;
	struct bpf_program *p;
	size_t n = 0;

	bpf_object__for_each_program(p, obj)
		n++;
	st = calloc(1, sizeof(*st) + n * sizeof(st->progs[0]));
	if (!st) {
		hitel_sampler_fail(s, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	st->s = s;
	st->stats_fd = -1;
	bpf_object__for_each_program(p, obj) {
		if (bpf_program__fd(p) < 0)
			continue;
		st->progs[st->n].fd = bpf_program__fd(p);
		st->progs[st->n].name = bpf_program__name(p);
		st->n++;
	}
	if (o->stats) {
		/* The statistics stay on while this fd is open. */
		st->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
		if (st->stats_fd < 0)
			hitel_sampler_log(s, HITEL_LOG_WARNING,
					  "cannot enable BPF statistics: %s (option bpf_stats "
					  "ignored)",
					  strerror(errno));
	}
	return st;
}

void hitel_bpf_stats_free(struct hitel_bpf_stats *st)
{
	if (!st)
		return;
	if (st->stats_fd >= 0)
		close(st->stats_fd);
	free(st);
}

HITEL_TICK
void hitel_bpf_stats_read(struct hitel_bpf_stats *st, uint64_t now_ns)
{
	struct hitel_registry *reg;
	size_t i;

	if (!st || (st->read_ns && now_ns - st->read_ns < STATS_MIN_NS))
		return;
	st->read_ns = now_ns;
	reg = hitel_sampler_registry(st->s);
	for (i = 0; i < st->n; i++) {
		struct prog_stats *ps = &st->progs[i];
		struct bpf_prog_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(ps->fd, &info, &len) != 0)
			continue;
		/* No series at all while the statistics have never been on. */
		if (!ps->runs && !info.run_cnt)
			continue;
		if (!ps->runs) {
			struct hitel_label l[2] = {
				{ "sampler", hitel_sampler_name(st->s) },
				{ "program", ps->name },
			};

			ps->runs = hitel_registry_series(reg, &runs_desc, l, 2);
			ps->time = hitel_registry_series(reg, &run_time_desc, l, 2);
			if (!ps->runs || !ps->time) {
				ps->runs = NULL;
				continue;
			}
		}
		hitel_series_counter(ps->runs, info.run_cnt, now_ns);
		hitel_series_counter(ps->time, info.run_time_ns, now_ns);
	}
}
