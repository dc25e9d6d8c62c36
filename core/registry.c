/* SPDX-License-Identifier: MIT */
/*
 * Metric registry (see registry.h for the contracts).
 *
 * Layout: the registry keeps its families in creation order plus a hash of
 * them by name; each family keeps its series in creation order plus a hash
 * of them by id (FNV-1a over family name and labels), so a get-or-create is
 * O(1) on average. Series are never removed, so their pointers, their
 * position in the family and their label strings stay valid for the life of
 * the registry: snapshots point into them instead of copying strings, and
 * windows match series by (family index, series index).
 *
 * Locking: one mutex. The family, series and update functions do not lock:
 * the caller holds hitel_registry_lock() (the engine holds it across a whole
 * sampler read, so that a snapshot never sees half of one read). Only
 * hitel_registry_snapshot() locks by itself.
 */
#include "registry.h"

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hot.h"
#include "log.h"

#define DEFAULT_MAX_SERIES 1024u
#define DEFAULT_RATE_GROUPING 5u
#define DEFAULT_HIST_GROUPING 7u
#define DEFAULT_MAX_POWER 64u
#define INITIAL_BUCKETS 16u

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct hitel_series {
	/* The first 64 bytes are all an update touches: at 100 Hz the engine
	 * updates ~110 series a tick, each after a 10 ms sleep in which other
	 * work evicted it, so a line per series (not two, plus the family's)
	 * is most of the engine's user-space cost. Allocated line-aligned. */
	struct hitel_hist *hist; /* NULL with HITEL_FAMILY_NO_HIST */
	uint64_t value;
	uint64_t prev_raw, prev_t; /* counter: start of the next rate interval */
	uint64_t updated_ns;
	/* Samples of value 0 not yet in hist: most oversampled counters do not
	 * move between two reads 10 ms apart (error counters, idle devices and
	 * interfaces), and counting those here keeps each such update off the
	 * histogram's cache lines. Added by series_flush(), under the registry
	 * lock, before anything reads hist. */
	uint64_t zeros;
	enum hitel_kind kind; /* the family's, here so updates need not load it */
	bool seen;	      /* counter: has its first value */

	uint64_t first; /* counter: first raw value (a window starts here) */
	uint64_t resets;
	struct hitel_family *fam;
	struct hitel_series *next;  /* hash chain */
	struct hitel_label *labels; /* one block holding the array and its strings */
	uint32_t nlabels;
	uint32_t index; /* creation order within the family */
	uint64_t id;
	size_t hist_mapped;		  /* hist is an mmap of this many bytes, or 0 */
	struct hitel_series_group *group; /* updated through this group, or NULL */
};

/* Series are carved in creation order from slabs of SLAB_SERIES: a sampler
 * creates its series together and updates them in about that order, so a
 * tick walks adjacent lines in a few pages (the hardware prefetcher follows)
 * rather than lines scattered over the heap. Series live as long as the
 * registry, so slabs are only freed with it. */
#define SERIES_SIZE 128
#define SLAB_SERIES 64
struct series_slab {
	struct series_slab *next;
	size_t used;
	_Alignas(64) unsigned char mem[SLAB_SERIES * SERIES_SIZE];
};

_Static_assert(offsetof(struct hitel_series, first) <= 64,
	       "what an update touches must fit the series' first cache line");
_Static_assert(sizeof(struct hitel_series) <= SERIES_SIZE, "a series must fit its slab slot");

struct hitel_family {
	struct hitel_registry *reg;
	struct hitel_family *next; /* hash chain */
	char *name, *help, *unit;
	uint64_t name_hash;
	int scale;
	enum hitel_kind kind;
	unsigned int max_series;
	unsigned int g, m; /* histogram shape, when has_hist */
	bool has_hist;
	bool refused_logged;
	size_t index; /* creation order in the registry */
	struct hitel_series **series;
	size_t nseries, series_cap;
	struct hitel_series **buckets; /* power-of-two sized */
	size_t nbuckets;
	uint64_t refused; /* written under the lock, read from anywhere */
};

struct hitel_registry {
	int lock; /* lock_take(): 0 free, 1 held, 2 held and maybe waited for */
	struct hitel_family **fams;
	size_t nfams, fams_cap;
	struct hitel_family **buckets; /* power-of-two sized */
	size_t nbuckets;
	size_t nseries;	   /* over all families: sizes snapshots */
	size_t snap_bytes; /* histogram bytes of the last snapshot: sizes the next */
	unsigned int max_series, rate_g, hist_g;
	struct series_slab *slabs; /* newest first */
	struct hitel_series_group *groups;
};

/* See registry.h. A read that changed nothing touches the first line and
 * last[], which starts on the next (an interface's 16 values: two lines). */
struct hitel_series_group {
	uint64_t pending; /* such reads not yet folded into the members */
	uint64_t last_t;  /* latest time given: the members' prev_t is never later */
	bool ready;	  /* every member's last rate point is at last[], last_t */
	bool primed;	  /* last[] holds a read */
	size_t n;
	struct hitel_series **members;
	struct hitel_registry *reg; /* NULL once the registry is gone */
	struct hitel_series_group *prev, *next;
	_Alignas(64) uint64_t last[]; /* raw values of the last read */
};

/* Per-point data a window needs but readers do not. Parallel to points[]. */
struct point_priv {
	size_t fam, ser; /* identity of the series in its registry */
	uint64_t first;	 /* counter: first raw value */
	bool seen;	 /* counter: first is valid */
	bool in_block;	 /* hist lies in the snapshot's block, at off */
	size_t off;
	struct hitel_hist *hist; /* owned unless in_block; points[i].hist aliases it */
};

struct hitel_snapshot {
	const struct hitel_registry *reg; /* identity only: windows need one registry */
	uint64_t start, time;
	bool window;
	size_t n, cap;
	struct hitel_point *points;
	struct point_priv *priv;
	void *block; /* the compact histograms of a snapshot, back to back */
};

/* ---- hashing -------------------------------------------------------------- */

/* FNV-1a 64 over the bytes of s and a terminating 0 byte. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= FNV_PRIME;
	}
	return h * FNV_PRIME; /* the 0 byte: h ^= 0 is a no-op */
}

/*
 * Series id: FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3)
 * over the bytes of the family name, a 0 byte, then for each label in order
 * its name, a 0 byte, its value, a 0 byte.
 *
 * This is an external contract: SNMP row indexes and anything else that
 * persists ids derive from it, so it must never change. The 0 bytes keep
 * ("ab", x="1") and ("a", bx="1") apart.
 */
static uint64_t series_id(const char *family, const struct hitel_label *labels, size_t n)
{
	uint64_t h = fnv_str(FNV_OFFSET, family);
	size_t i;

	for (i = 0; i < n; i++) {
		h = fnv_str(h, labels[i].name);
		h = fnv_str(h, labels[i].value);
	}
	return h;
}

/* ---- registry ------------------------------------------------------------- */

struct hitel_registry *hitel_registry_new(void)
{
	struct hitel_registry *reg = calloc(1, sizeof(*reg));

	if (!reg) {
		errno = ENOMEM;
		return NULL;
	}
	reg->max_series = DEFAULT_MAX_SERIES;
	reg->rate_g = DEFAULT_RATE_GROUPING;
	reg->hist_g = DEFAULT_HIST_GROUPING;
	return reg;
}

/* What a series holds; its slot stays in the slab. */
static void series_release(struct hitel_series *s)
{
	if (s->hist_mapped)
		munmap(s->hist, s->hist_mapped);
	else
		hitel_hist_free(s->hist);
	free(s->labels);
}

static struct hitel_series *series_alloc(struct hitel_registry *reg)
{
	struct series_slab *slab = reg->slabs;
	struct hitel_series *s;
	void *mem;

	if (!slab || slab->used == SLAB_SERIES) {
		if (posix_memalign(&mem, 64, sizeof(*slab)))
			return NULL;
		slab = mem;
		slab->next = reg->slabs;
		slab->used = 0;
		reg->slabs = slab;
	}
	s = (struct hitel_series *)(void *)(slab->mem + slab->used++ * SERIES_SIZE);
	memset(s, 0, sizeof(*s));
	return s;
}

/* Undo the last series_alloc() (a create that failed). */
static void series_unalloc(struct hitel_registry *reg, struct hitel_series *s)
{
	struct series_slab *slab = reg->slabs;

	if (slab && slab->used &&
	    (unsigned char *)s == slab->mem + (slab->used - 1) * SERIES_SIZE)
		slab->used--;
}

static void family_free(struct hitel_family *f)
{
	size_t i;

	if (!f)
		return;
	for (i = 0; i < f->nseries; i++)
		series_release(f->series[i]);
	free(f->series);
	free(f->buckets);
	free(f->name);
	free(f->help);
	free(f->unit);
	free(f);
}

void hitel_registry_free(struct hitel_registry *reg)
{
	size_t i;

	if (!reg)
		return;
	/* Groups belong to their owners, who may free them later. */
	while (reg->groups) {
		struct hitel_series_group *g = reg->groups;

		reg->groups = g->next;
		g->reg = NULL;
		g->prev = g->next = NULL;
	}
	for (i = 0; i < reg->nfams; i++)
		family_free(reg->fams[i]);
	while (reg->slabs) {
		struct series_slab *next = reg->slabs->next;

		free(reg->slabs);
		reg->slabs = next;
	}
	free(reg->fams);
	free(reg->buckets);
	free(reg);
}

/*
 * Defaults apply to families created afterwards; existing families keep
 * their cap and shape (so calling this late is harmless, not an error).
 */
int hitel_registry_set_defaults(struct hitel_registry *reg, unsigned int max_series,
				unsigned int rate_grouping_power, unsigned int hist_grouping_power)
{
	if (!reg || max_series == 0 || rate_grouping_power > HITEL_HIST_MAX_GROUPING ||
	    hist_grouping_power > HITEL_HIST_MAX_GROUPING)
		return -EINVAL;
	reg->max_series = max_series;
	reg->rate_g = rate_grouping_power;
	reg->hist_g = hist_grouping_power;
	return 0;
}

/*
 * The registry lock is a futex word, not a pthread mutex: the engine takes
 * it on every tick, where glibc's lock and unlock are two more code pages to
 * bring back after the 10 ms sleep (cold TLB entries); uncontended this is
 * one atomic on the registry's first line. The classic three-state futex
 * lock: 0 free, 1 held, 2 held and possibly waited for, so an unlock makes
 * the wake-up system call only when someone may be waiting.
 */
HITEL_TICK
static void lock_take(int *l)
{
	int c = 0;

	if (__atomic_compare_exchange_n(l, &c, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = __atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE);
	}
}

HITEL_TICK
static void lock_give(int *l)
{
	if (__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) == 2)
		syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

HITEL_TICK
void hitel_registry_lock(struct hitel_registry *reg)
{
	lock_take(&reg->lock);
}

HITEL_TICK
void hitel_registry_unlock(struct hitel_registry *reg)
{
	lock_give(&reg->lock);
}

/* ---- families ------------------------------------------------------------- */

static bool family_name_valid(const char *name)
{
	const char *p;

	if (!name || !*name)
		return false;
	for (p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '/'))
			return false;
	}
	return true;
}

static struct hitel_family *family_lookup(const struct hitel_registry *reg, const char *name,
					  uint64_t hash)
{
	struct hitel_family *f;

	if (!reg->nbuckets)
		return NULL;
	for (f = reg->buckets[hash & (reg->nbuckets - 1)]; f; f = f->next)
		if (f->name_hash == hash && strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* Grows the hash to keep chains at about one entry; 0 or -ENOMEM. */
static int family_hash_grow(struct hitel_registry *reg)
{
	size_t nb = reg->nbuckets ? reg->nbuckets * 2 : INITIAL_BUCKETS;
	struct hitel_family **b = calloc(nb, sizeof(*b));
	size_t i;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < reg->nfams; i++) {
		struct hitel_family *f = reg->fams[i];
		size_t k = f->name_hash & (nb - 1);

		f->next = b[k];
		b[k] = f;
	}
	free(reg->buckets);
	reg->buckets = b;
	reg->nbuckets = nb;
	return 0;
}

static bool desc_shape(const struct hitel_registry *reg, const struct hitel_family_desc *desc,
		       unsigned int *g, unsigned int *m)
{
	if (desc->grouping_power && desc->max_power) {
		*g = desc->grouping_power;
		*m = desc->max_power;
	} else {
		*g = desc->kind == HITEL_KIND_HISTOGRAM ? reg->hist_g : reg->rate_g;
		*m = DEFAULT_MAX_POWER;
	}
	/* A histogram family is nothing without its histogram: the flag is
	 * only for counters and gauges. */
	return desc->kind == HITEL_KIND_HISTOGRAM || !(desc->flags & HITEL_FAMILY_NO_HIST);
}

static struct hitel_family *family_create(struct hitel_registry *reg,
					  const struct hitel_family_desc *desc, uint64_t hash)
{
	struct hitel_family *f = NULL;
	int err = 0;

	if (reg->nfams == reg->fams_cap) {
		size_t cap = reg->fams_cap ? reg->fams_cap * 2 : 16;
		struct hitel_family **a = realloc(reg->fams, cap * sizeof(*a));

		if (!a) {
			err = -ENOMEM;
			goto cleanup;
		}
		reg->fams = a;
		reg->fams_cap = cap;
	}
	if (reg->nfams >= reg->nbuckets) {
		err = family_hash_grow(reg);
		if (err)
			goto cleanup;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		err = -ENOMEM;
		goto cleanup;
	}
	f->name = strdup(desc->name);
	f->help = strdup(desc->help ? desc->help : "");
	f->unit = strdup(desc->unit ? desc->unit : "");
	if (!f->name || !f->help || !f->unit) {
		err = -ENOMEM;
		goto cleanup;
	}
	f->reg = reg;
	f->name_hash = hash;
	f->scale = desc->scale;
	f->kind = desc->kind;
	f->max_series = desc->max_series ? desc->max_series : reg->max_series;
	f->has_hist = desc_shape(reg, desc, &f->g, &f->m);
	f->index = reg->nfams;

	reg->fams[reg->nfams++] = f;
	f->next = reg->buckets[hash & (reg->nbuckets - 1)];
	reg->buckets[hash & (reg->nbuckets - 1)] = f;
	return f;

cleanup:
	family_free(f);
	errno = -err;
	return NULL;
}

struct hitel_family *hitel_registry_family(struct hitel_registry *reg,
					   const struct hitel_family_desc *desc)
{
	struct hitel_family *f;
	unsigned int g, m;
	uint64_t hash;

	if (!reg || !desc || !family_name_valid(desc->name) ||
	    (desc->kind != HITEL_KIND_COUNTER && desc->kind != HITEL_KIND_GAUGE &&
	     desc->kind != HITEL_KIND_HISTOGRAM)) {
		errno = EINVAL;
		return NULL;
	}
	desc_shape(reg, desc, &g, &m);
	if (g > HITEL_HIST_MAX_GROUPING || m > HITEL_HIST_MAX_POWER || m <= g) {
		errno = EINVAL;
		return NULL;
	}
	hash = fnv_str(FNV_OFFSET, desc->name);
	f = family_lookup(reg, desc->name, hash);
	if (!f)
		return family_create(reg, desc, hash);
	if (f->kind != desc->kind || f->scale != desc->scale ||
	    strcmp(f->unit, desc->unit ? desc->unit : "") != 0) {
		errno = EEXIST;
		return NULL;
	}
	return f;
}

uint64_t hitel_family_refused(const struct hitel_family *fam)
{
	return fam ? __atomic_load_n(&fam->refused, __ATOMIC_RELAXED) : 0;
}

const char *hitel_family_name(const struct hitel_family *fam)
{
	return fam ? fam->name : NULL;
}

size_t hitel_registry_family_count(const struct hitel_registry *reg)
{
	return reg ? reg->nfams : 0;
}

struct hitel_family *hitel_registry_family_at(struct hitel_registry *reg, size_t i)
{
	return reg && i < reg->nfams ? reg->fams[i] : NULL;
}

/* ---- series --------------------------------------------------------------- */

/* Label names end up as Prometheus label names and SNMP index parts, and
 * "k=v,k=v" lookups split on '=' and ','. Duplicate names are refused so
 * that a label set means one thing. */
static bool labels_valid(const struct hitel_label *labels, size_t n)
{
	size_t i, j;
	const char *p;

	if (n && !labels)
		return false;
	for (i = 0; i < n; i++) {
		if (!labels[i].name || !*labels[i].name || !labels[i].value)
			return false;
		for (p = labels[i].name; *p; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '_'))
				return false;
		}
		for (j = 0; j < i; j++)
			if (strcmp(labels[i].name, labels[j].name) == 0)
				return false;
	}
	return true;
}

static bool labels_equal(const struct hitel_series *s, const struct hitel_label *labels, size_t n)
{
	size_t i;

	if (s->nlabels != n)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(s->labels[i].name, labels[i].name) != 0 ||
		    strcmp(s->labels[i].value, labels[i].value) != 0)
			return false;
	return true;
}

static int series_hash_grow(struct hitel_family *f)
{
	size_t nb = f->nbuckets ? f->nbuckets * 2 : INITIAL_BUCKETS;
	struct hitel_series **b = calloc(nb, sizeof(*b));
	size_t i;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < f->nseries; i++) {
		struct hitel_series *s = f->series[i];
		size_t k = s->id & (nb - 1);

		s->next = b[k];
		b[k] = s;
	}
	free(f->buckets);
	f->buckets = b;
	f->nbuckets = nb;
	return 0;
}

/* The label array and all its strings in one allocation. */
static struct hitel_label *labels_copy(const struct hitel_label *labels, size_t n)
{
	size_t size = n * sizeof(struct hitel_label), i, len;
	struct hitel_label *out;
	char *p;

	for (i = 0; i < n; i++)
		size += strlen(labels[i].name) + strlen(labels[i].value) + 2;
	out = malloc(size ? size : 1);
	if (!out)
		return NULL;
	p = (char *)(out + n);
	for (i = 0; i < n; i++) {
		len = strlen(labels[i].name) + 1;
		memcpy(p, labels[i].name, len);
		out[i].name = p;
		p += len;
		len = strlen(labels[i].value) + 1;
		memcpy(p, labels[i].value, len);
		out[i].value = p;
		p += len;
	}
	return out;
}

/*
 * A live histogram that spans pages gets its own anonymous mapping: only
 * the pages records reach are ever resident (the header's and the buckets
 * the series' values fall in: one or two of the four at g = 5). From the
 * heap, calloc clears recycled memory and so makes every page resident:
 * 1.7 MB more for hiteld's default series. Adjacent mappings merge into
 * one VMA.
 */
static int series_hist_new(struct hitel_series *s, unsigned int g, unsigned int m)
{
	size_t size = hitel_hist_bytes(g, m);
	long page = sysconf(_SC_PAGESIZE);
	void *mem;

	if (!size)
		return -EINVAL;
	if (page > 0 && size >= (size_t)page) {
		size = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
		mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return -ENOMEM;
		s->hist = hitel_hist_init(mem, g, m);
		s->hist_mapped = size;
		return 0;
	}
	s->hist = hitel_hist_new(g, m);
	return s->hist ? 0 : -errno;
}

static struct hitel_series *series_create(struct hitel_family *f, const struct hitel_label *labels,
					  size_t n, uint64_t id)
{
	struct hitel_series *s = NULL;
	int err = 0;

	if (f->nseries == f->series_cap) {
		size_t cap = f->series_cap ? f->series_cap * 2 : 8;
		struct hitel_series **a = realloc(f->series, cap * sizeof(*a));

		if (!a) {
			err = -ENOMEM;
			goto cleanup;
		}
		f->series = a;
		f->series_cap = cap;
	}
	if (f->nseries >= f->nbuckets) {
		err = series_hash_grow(f);
		if (err)
			goto cleanup;
	}
	s = series_alloc(f->reg);
	if (!s) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->labels = labels_copy(labels, n);
	if (!s->labels) {
		err = -ENOMEM;
		goto cleanup;
	}
	if (f->has_hist) {
		err = series_hist_new(s, f->g, f->m);
		if (err)
			goto cleanup;
	}
	s->fam = f;
	s->kind = f->kind;
	s->nlabels = (uint32_t)n;
	s->id = id;
	s->index = (uint32_t)f->nseries;

	f->series[f->nseries++] = s;
	s->next = f->buckets[id & (f->nbuckets - 1)];
	f->buckets[id & (f->nbuckets - 1)] = s;
	f->reg->nseries++;
	return s;

cleanup:
	if (s) {
		series_release(s);
		series_unalloc(f->reg, s);
	}
	errno = -err;
	return NULL;
}

struct hitel_series *hitel_family_series(struct hitel_family *f, const struct hitel_label *labels,
					 size_t n)
{
	struct hitel_series *s;
	uint64_t id;

	if (!f || !labels_valid(labels, n)) {
		errno = EINVAL;
		return NULL;
	}
	id = series_id(f->name, labels, n);
	if (f->nbuckets) {
		for (s = f->buckets[id & (f->nbuckets - 1)]; s; s = s->next)
			if (s->id == id && labels_equal(s, labels, n))
				return s;
	}
	if (f->nseries >= f->max_series) {
		__atomic_store_n(&f->refused, f->refused + 1, __ATOMIC_RELAXED);
		if (!f->refused_logged) {
			f->refused_logged = true;
			hitel_log(HITEL_LOG_WARNING, "registry",
				  "family %s: cap of %u series reached, refusing new series",
				  f->name, f->max_series);
		}
		errno = ENOSPC;
		return NULL;
	}
	return series_create(f, labels, n, id);
}

struct hitel_series *hitel_registry_series(struct hitel_registry *reg,
					   const struct hitel_family_desc *desc,
					   const struct hitel_label *labels, size_t nlabels)
{
	struct hitel_family *f = hitel_registry_family(reg, desc);

	if (!f)
		return NULL;
	return hitel_family_series(f, labels, nlabels);
}

/* ---- updates -------------------------------------------------------------- */

/* round(delta * 1e9 / dt_ns) without overflow; saturates at UINT64_MAX
 * (a huge jump over a tiny interval lands in the top bucket anyway). */
static uint64_t per_second(uint64_t delta, uint64_t dt_ns)
{
	unsigned __int128 r;

	/* The engine's hot path: ~300 counters at 100 Hz, most of them
	 * unchanged or small per sample, where a 64-bit division does (the
	 * 128-bit one is a libgcc call, the largest user-space cost in a
	 * profile of the engine). */
	if (delta == 0)
		return 0;
	if (delta <= (UINT64_MAX - dt_ns) / 1000000000u)
		return (delta * 1000000000u + dt_ns / 2) / dt_ns;
	r = ((unsigned __int128)delta * 1000000000u + dt_ns / 2) / dt_ns;
	return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

HITEL_TICK
static void series_flush(struct hitel_series *s)
{
	if (s->zeros) {
		hitel_hist_record_n(s->hist, 0, s->zeros);
		s->zeros = 0;
	}
}

/* One sample of v into s->hist, zeros deferred (see zeros). */
static void series_record(struct hitel_series *s, uint64_t v)
{
	if (v == 0) {
		s->zeros++;
		return;
	}
	series_flush(s);
	hitel_hist_record(s->hist, v);
}

HITEL_TICK
void hitel_series_counter(struct hitel_series *s, uint64_t raw, uint64_t t_ns)
{
	if (!s || s->kind != HITEL_KIND_COUNTER)
		return;
	s->updated_ns = t_ns;
	if (!s->seen) {
		s->seen = true;
		s->first = s->value = s->prev_raw = raw;
		s->prev_t = t_ns;
		return;
	}
	/* Compared with the last value seen, not the last rate point, which
	 * may be older when a read came with a non-increasing time. */
	if (raw < s->value) {
		s->resets++;
		s->value = s->prev_raw = raw;
		s->prev_t = t_ns;
		return;
	}
	s->value = raw;
	/* No time passed (or the caller's clock went back): keep the rate
	 * interval open, so the next rate covers this increase too. */
	if (t_ns <= s->prev_t)
		return;
	if (s->hist)
		series_record(s, per_second(raw - s->prev_raw, t_ns - s->prev_t));
	s->prev_raw = raw;
	s->prev_t = t_ns;
}

HITEL_TICK
void hitel_series_gauge(struct hitel_series *s, uint64_t v, uint64_t t_ns)
{
	if (!s || s->kind != HITEL_KIND_GAUGE)
		return;
	s->value = v;
	if (s->hist)
		series_record(s, v);
	s->updated_ns = t_ns;
}

int hitel_series_hist_load(struct hitel_series *s, const uint64_t *counts, size_t n, uint64_t sum,
			   uint64_t t_ns)
{
	int err;

	if (!s || !counts || s->kind != HITEL_KIND_HISTOGRAM || !s->hist)
		return -EINVAL;
	err = hitel_hist_load(s->hist, counts, n, sum, 0, UINT64_MAX);
	if (err)
		return err;
	s->value = hitel_hist_count(s->hist);
	s->updated_ns = t_ns;
	return 0;
}

static void group_fold(struct hitel_series_group *g);

HITEL_TICK
struct hitel_hist *hitel_series_hist(struct hitel_series *s)
{
	if (s && s->group)
		group_fold(s->group);
	if (s && s->hist)
		series_flush(s);
	return s ? s->hist : NULL;
}

HITEL_TICK
void hitel_series_touch(struct hitel_series *s, uint64_t t_ns)
{
	if (s)
		s->updated_ns = t_ns;
}

/* Gives each member the reads that only the group counted: what
 * hitel_series_counter() would have recorded for an unchanged value at
 * increasing times, a zero rate each, the rate interval ending at the last. */
static void group_fold(struct hitel_series_group *g)
{
	size_t i;

	if (!g->pending)
		return;
	for (i = 0; i < g->n; i++) {
		struct hitel_series *s = g->members[i];

		if (!s)
			continue;
		if (s->hist)
			s->zeros += g->pending;
		s->prev_t = g->last_t;
		s->updated_ns = g->last_t;
	}
	g->pending = 0;
}

struct hitel_series_group *hitel_series_group_new(struct hitel_registry *reg,
						  struct hitel_series *const *members, size_t n)
{
	struct hitel_series_group *g;
	size_t i, size;

	if (!reg || (n && !members)) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < n; i++)
		if (members[i] && (members[i]->kind != HITEL_KIND_COUNTER || members[i]->group)) {
			errno = EINVAL;
			return NULL;
		}
	/* One block: the header, last[], then members[]. */
	size = sizeof(*g) + n * (sizeof(uint64_t) + sizeof(struct hitel_series *));
	g = aligned_alloc(64, (size + 63) / 64 * 64);
	if (!g)
		return NULL;
	memset(g, 0, size);
	g->n = n;
	g->members = (struct hitel_series **)(void *)(g->last + n);
	for (i = 0; i < n; i++) {
		g->members[i] = members[i];
		if (members[i])
			members[i]->group = g;
	}
	g->reg = reg;
	g->next = reg->groups;
	if (reg->groups)
		reg->groups->prev = g;
	reg->groups = g;
	return g;
}

void hitel_series_group_free(struct hitel_series_group *g)
{
	size_t i;

	if (!g)
		return;
	if (g->reg) {
		group_fold(g);
		for (i = 0; i < g->n; i++)
			if (g->members[i])
				g->members[i]->group = NULL;
		if (g->prev)
			g->prev->next = g->next;
		else
			g->reg->groups = g->next;
		if (g->next)
			g->next->prev = g->prev;
	}
	free(g);
}

uint64_t hitel_series_group_pending(const struct hitel_series_group *g)
{
	return g ? g->pending : 0;
}

void hitel_series_group_counters(struct hitel_series_group *g, const uint64_t *raw,
				 uint64_t t_ns)
{
	bool ready = true;
	size_t i;

	if (!g || !g->reg)
		return;
	if (g->ready && t_ns > g->last_t) {
		/* Inline, not memcmp(): a busy interface differs in its first
		 * value, and the call's code would be one more cold line. */
		for (i = 0; i < g->n && raw[i] == g->last[i]; i++)
			;
		if (i == g->n) {
			g->pending++;
			g->last_t = t_ns;
			return;
		}
	}
	group_fold(g);
	for (i = 0; i < g->n; i++) {
		struct hitel_series *s = g->members[i];

		if (!s)
			continue;
		hitel_series_counter(s, raw[i], t_ns);
		ready = ready && s->seen;
	}
	if (raw != g->last)
		for (i = 0; i < g->n; i++)
			g->last[i] = raw[i];
	g->primed = true;
	/* A read whose time did not advance leaves the members' rate
	 * intervals open (their last rate point is older than these values):
	 * a repeat is then not a zero rate, so the next read goes through
	 * the members too. */
	if (t_ns > g->last_t)
		g->last_t = t_ns;
	else
		ready = false;
	g->ready = ready;
}

HITEL_TICK
int hitel_series_group_repeat(struct hitel_series_group *g, uint64_t t_ns)
{
	if (!g || !g->reg)
		return -EINVAL;
	if (!g->primed)
		return -EAGAIN;
	if (g->ready && t_ns > g->last_t) {
		g->pending++;
		g->last_t = t_ns;
		return 0;
	}
	hitel_series_group_counters(g, g->last, t_ns);
	return 0;
}

/* ---- snapshots ------------------------------------------------------------ */

static int snapshot_reserve(struct hitel_snapshot *snap, size_t cap)
{
	struct hitel_point *p;
	struct point_priv *v;

	if (cap <= snap->cap && snap->points)
		return 0;
	if (!cap)
		cap = 1;
	p = realloc(snap->points, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	snap->points = p;
	v = realloc(snap->priv, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	snap->priv = v;
	snap->cap = cap;
	return 0;
}

static struct hitel_snapshot *snapshot_alloc(const struct hitel_registry *reg, size_t cap)
{
	struct hitel_snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	snap->reg = reg;
	if (snapshot_reserve(snap, cap) < 0) {
		hitel_snapshot_free(snap);
		return NULL;
	}
	return snap;
}

static void point_fill(struct hitel_point *pt, struct point_priv *pv, const struct hitel_family *f,
		       const struct hitel_series *s)
{
	pt->family = f->name;
	pt->help = f->help;
	pt->unit = f->unit;
	pt->scale = f->scale;
	pt->kind = f->kind;
	pt->labels = s->labels;
	pt->nlabels = s->nlabels;
	pt->id = s->id;
	pt->value = s->value;
	pt->hist = NULL;
	pt->updated_ns = s->updated_ns;
	pt->resets = s->resets;
	pv->fam = f->index;
	pv->ser = s->index;
	pv->first = s->first;
	pv->seen = s->seen;
	pv->in_block = false;
	pv->off = 0;
	pv->hist = NULL;
}

/*
 * Under the lock: copies every series. Histograms are copied compact (only
 * their non-empty buckets, hist.h) back to back into the block, which was
 * allocated and paged in before the lock: a copy then costs a scan of the
 * live histogram's occupied range and a few hundred bytes written, where a
 * dense copy wrote all 1920 or 7424 buckets. Series that do not fit (the
 * first snapshot, or the registry grew) get their own allocation. *need is
 * what the block would have needed for all of them.
 */
static int snapshot_copy_locked(struct hitel_registry *reg, struct hitel_snapshot *snap,
				size_t len, size_t *used, size_t *need)
{
	struct hitel_series_group *g;
	size_t i, j, sz;
	int err;

	err = snapshot_reserve(snap, reg->nseries);
	if (err)
		return err;
	for (g = reg->groups; g; g = g->next)
		group_fold(g);
	for (i = 0; i < reg->nfams; i++) {
		const struct hitel_family *f = reg->fams[i];

		for (j = 0; j < f->nseries; j++) {
			struct hitel_series *s = f->series[j];
			struct hitel_point *pt = &snap->points[snap->n];
			struct point_priv *pv = &snap->priv[snap->n];
			struct hitel_hist *h;

			if (s->hist)
				series_flush(s);
			point_fill(pt, pv, f, s);
			snap->n++;
			if (!s->hist)
				continue;
			sz = SIZE_MAX;
			if (snap->block)
				sz = hitel_hist_compact_to(s->hist, (char *)snap->block + *used,
							   len - *used);
			if (sz <= len - *used) {
				h = (struct hitel_hist *)((char *)snap->block + *used);
				pv->in_block = true;
				pv->off = *used;
				*used += sz;
			} else {
				h = hitel_hist_compact(s->hist);
				if (!h)
					return -ENOMEM;
				sz = hitel_hist_size(h);
			}
			*need += sz;
			pv->hist = h;
			pt->hist = h;
			/* Records made directly into the histogram (then
			 * touch) count too, so derive it from the copy. */
			if (f->kind == HITEL_KIND_HISTOGRAM)
				pt->value = hitel_hist_count(h);
		}
	}
	return 0;
}

/* Page the block in now, so that the copy under the lock does not fault. */
static void block_touch(void *block, size_t len)
{
	volatile char *p = block;
	size_t i;

	for (i = 0; i < len; i += 4096)
		p[i] = 0;
}

/* After the copy: give back the block's unused tail and point the points
 * into it (shrinking may move it). */
static void block_finish(struct hitel_snapshot *snap, size_t used)
{
	void *b;
	size_t i;

	if (!snap->block)
		return;
	if (!used) {
		free(snap->block);
		snap->block = NULL;
		return;
	}
	b = realloc(snap->block, used);
	if (b)
		snap->block = b;
	for (i = 0; i < snap->n; i++) {
		if (!snap->priv[i].in_block)
			continue;
		snap->priv[i].hist = (struct hitel_hist *)((char *)snap->block + snap->priv[i].off);
		snap->points[i].hist = snap->priv[i].hist;
	}
}

struct hitel_snapshot *hitel_registry_snapshot(struct hitel_registry *reg, uint64_t t_ns)
{
	struct hitel_snapshot *snap = NULL;
	size_t cap, hint, len = 0, used = 0, need = 0;
	int err = 0;

	if (!reg) {
		errno = EINVAL;
		return NULL;
	}
	/* Size everything unlocked from the last snapshot, then copy under
	 * the lock: writers wait for the copy, not for malloc or page faults.
	 * Series are only ever added, so the point arrays can only fall
	 * short (grown under the lock for series created meanwhile). */
	lock_take(&reg->lock);
	cap = reg->nseries;
	hint = reg->snap_bytes;
	lock_give(&reg->lock);

	snap = snapshot_alloc(reg, cap);
	if (!snap) {
		err = -ENOMEM;
		goto cleanup;
	}
	snap->start = snap->time = t_ns;
	if (hint) {
		/* Headroom for histograms that grew a chunk or two since. */
		len = (hint + hint / 8 + 4096) & ~(size_t)7;
		snap->block = malloc(len);
		if (snap->block)
			block_touch(snap->block, len);
		else
			len = 0;
	}

	lock_take(&reg->lock);
	err = snapshot_copy_locked(reg, snap, len, &used, &need);
	if (!err)
		reg->snap_bytes = need;
	lock_give(&reg->lock);
	if (!err)
		block_finish(snap, used);

cleanup:
	if (err) {
		hitel_snapshot_free(snap);
		errno = -err;
		return NULL;
	}
	return snap;
}

static int key_cmp(const struct point_priv *a, const struct point_priv *b)
{
	if (a->fam != b->fam)
		return a->fam < b->fam ? -1 : 1;
	if (a->ser != b->ser)
		return a->ser < b->ser ? -1 : 1;
	return 0;
}

/*
 * One window point. op/ov is the series in the older snapshot, or NULL when
 * it did not exist there yet (then it counts from its creation: a counter
 * from its first raw value, histograms from empty).
 */
static int delta_point(struct hitel_point *out, struct point_priv *outv,
		       const struct hitel_point *op, const struct point_priv *ov,
		       const struct hitel_point *np, const struct point_priv *nv)
{
	struct hitel_hist *h = NULL;
	uint64_t base;
	bool have_base;

	*out = *np;
	*outv = *nv;
	outv->in_block = false;
	outv->hist = NULL;
	out->hist = NULL;
	if (np->hist) {
		/* Compact, like the snapshots. -ERANGE: the histogram went
		 * down (reset); h then holds newer, the best estimate of what
		 * the window saw. -EINVAL (no older histogram of that shape):
		 * the series counts from its creation. */
		int err = op && op->hist ? hitel_hist_delta_new(op->hist, np->hist, &h) : -EINVAL;

		if (err == -EINVAL)
			h = hitel_hist_dup(np->hist);
		if (!h)
			return -ENOMEM;
		outv->hist = h;
		out->hist = h;
	}

	switch (np->kind) {
	case HITEL_KIND_COUNTER:
		/* A series that existed in older but had no value yet starts,
		 * like a new one, at its first raw value. */
		have_base = true;
		if (op && ov->seen) {
			base = op->value;
			out->resets =
			    np->resets >= op->resets ? np->resets - op->resets : np->resets;
		} else if (nv->seen) {
			base = nv->first;
			out->resets = np->resets;
		} else {
			have_base = false;
			base = 0;
			out->resets = 0;
		}
		/* After a reset, the raw value is what was counted since it
		 * (the part before it is lost): a lower bound, never a wrap. */
		if (!have_base)
			out->value = 0;
		else if (out->resets || np->value < base)
			out->value = np->value;
		else
			out->value = np->value - base;
		break;
	case HITEL_KIND_GAUGE:
		out->resets = 0;
		break;
	case HITEL_KIND_HISTOGRAM:
		out->resets = 0;
		out->value = h ? hitel_hist_count(h) : 0;
		break;
	}
	return 0;
}

struct hitel_snapshot *hitel_snapshot_delta(const struct hitel_snapshot *older,
					    const struct hitel_snapshot *newer)
{
	struct hitel_snapshot *snap = NULL;
	size_t i, j = 0;
	int err = 0;

	if (!older || !newer || older->reg != newer->reg || older->window || newer->window ||
	    older->time > newer->time) {
		errno = EINVAL;
		return NULL;
	}
	snap = snapshot_alloc(newer->reg, newer->n);
	if (!snap) {
		err = -ENOMEM;
		goto cleanup;
	}
	snap->start = older->time;
	snap->time = newer->time;
	snap->window = true;
	/* Both are ordered by (family index, series index): merge-join. */
	for (i = 0; i < newer->n; i++) {
		const struct point_priv *nv = &newer->priv[i];
		const struct hitel_point *op = NULL;
		const struct point_priv *ov = NULL;

		while (j < older->n && key_cmp(&older->priv[j], nv) < 0)
			j++;
		if (j < older->n && key_cmp(&older->priv[j], nv) == 0) {
			op = &older->points[j];
			ov = &older->priv[j];
		}
		snap->n = i + 1;
		err = delta_point(&snap->points[i], &snap->priv[i], op, ov, &newer->points[i], nv);
		if (err)
			goto cleanup;
	}

cleanup:
	if (err) {
		hitel_snapshot_free(snap);
		errno = -err;
		return NULL;
	}
	return snap;
}

void hitel_snapshot_free(struct hitel_snapshot *snap)
{
	size_t i;

	if (!snap)
		return;
	for (i = 0; i < snap->n; i++)
		if (!snap->priv[i].in_block)
			hitel_hist_free(snap->priv[i].hist);
	free(snap->block);
	free(snap->points);
	free(snap->priv);
	free(snap);
}

size_t hitel_snapshot_len(const struct hitel_snapshot *snap)
{
	return snap ? snap->n : 0;
}

const struct hitel_point *hitel_snapshot_point(const struct hitel_snapshot *snap, size_t i)
{
	return snap && i < snap->n ? &snap->points[i] : NULL;
}

uint64_t hitel_snapshot_time(const struct hitel_snapshot *snap)
{
	return snap ? snap->time : 0;
}

uint64_t hitel_snapshot_start(const struct hitel_snapshot *snap)
{
	return snap ? snap->start : 0;
}

/* Is segment [seg, seg + len) exactly "name=value"? */
static bool segment_is(const char *seg, size_t len, const struct hitel_label *l)
{
	size_t nlen = strlen(l->name), vlen = strlen(l->value);

	return len == nlen + 1 + vlen && memcmp(seg, l->name, nlen) == 0 && seg[nlen] == '=' &&
	       memcmp(seg + nlen + 1, l->value, vlen) == 0;
}

/*
 * Does "k=v,k=v" name exactly p's label set, in any order? Label names are
 * unique within a series, so when there are as many segments as labels and
 * every label matches one of them, the segments are exactly the set.
 */
static bool labels_match(const struct hitel_point *p, const char *spec)
{
	size_t count = 1, i;
	const char *seg, *end;
	bool found;

	if (!*spec)
		return p->nlabels == 0;
	for (seg = spec; (seg = strchr(seg, ',')); seg++)
		count++;
	if (count != p->nlabels)
		return false;
	for (i = 0; i < p->nlabels; i++) {
		found = false;
		for (seg = spec; !found; seg = end + 1) {
			end = strchr(seg, ',');
			if (!end)
				end = seg + strlen(seg);
			found = segment_is(seg, (size_t)(end - seg), &p->labels[i]);
			if (!*end)
				break;
		}
		if (!found)
			return false;
	}
	return true;
}

const struct hitel_point *hitel_snapshot_find(const struct hitel_snapshot *snap, const char *family,
					      const char *labels)
{
	size_t i;

	if (!snap || !family)
		return NULL;
	if (!labels)
		labels = "";
	for (i = 0; i < snap->n; i++)
		if (strcmp(snap->points[i].family, family) == 0 &&
		    labels_match(&snap->points[i], labels))
			return &snap->points[i];
	return NULL;
}

const char *hitel_point_label(const struct hitel_point *p, const char *name)
{
	size_t i;

	if (!p || !name)
		return NULL;
	for (i = 0; i < p->nlabels; i++)
		if (strcmp(p->labels[i].name, name) == 0)
			return p->labels[i].value;
	return NULL;
}
