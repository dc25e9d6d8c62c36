/* SPDX-License-Identifier: MIT */
/*
 * The oversampling engine (see engine.h for the contracts).
 *
 * Scheduling: engine tick k is due at start + floor(k * 1e9 / sample_rate);
 * a sampler with rate r has its own deadlines start + floor(j * 1e9 / r) and
 * runs on the first tick whose scheduled time has reached its next deadline.
 * Deadlines are absolute, so wake-up jitter never accumulates into drift.
 * A thread that wakes a period or more late counts every deadline that has
 * passed as missed and sleeps until the next future one: a burst of catch-up
 * reads would record rates over near-zero intervals, which is noise.
 *
 * Locks, always taken in this order and never the other way round:
 *   registry lock  -> status_lock   (a sampler read updates its status)
 *   window_lock is never held together with another lock, so a reader
 *   computing a window never delays a sampler read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "engine.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "hot.h"
#include "log.h"

#define NS_PER_S 1000000000ULL
/* A file a sampler needs may appear later (a module loaded, a disk
 * attached): retry a failed init now and then, not at the sampling rate. */
#define INIT_RETRY_NS (10 * NS_PER_S)
#define READ_RETRY_NS NS_PER_S
#define REFUSED_EVERY_NS NS_PER_S
#define REASON_LEN 256

#define DEFAULT_SAMPLE_RATE 100u
#define MAX_SAMPLE_RATE 1000u
#define DEFAULT_RATE_GROUPING 5u
#define DEFAULT_HIST_GROUPING 7u
#define MAX_GROUPING 10u
#define DEFAULT_MAX_SERIES 1024u
#define STAGE_MAX 48u		/* self timings staged between folds */
#define STAGE_LATENESS 0xffffu /* stage_who of a lateness entry */
#define MAX_MAX_SERIES (1u << 20)

enum sampler_state {
	SAMPLER_NEW,	     /* init not tried yet */
	SAMPLER_INIT_FAILED, /* fini done; init retried at retry_ns */
	SAMPLER_READY,	     /* init succeeded; fini pending */
};

struct sampler_opt {
	char *key;
	char *value;
};

struct hitel_sampler {
	const struct hitel_sampler_ops *ops;
	/* ops->read, here so a read does not touch the ops' page (a cold TLB
	 * entry a tick). */
	int (*read)(struct hitel_sampler *s, uint64_t now_ns);
	void *priv;
	struct hitel_engine *engine;

	/* Configuration (before start). */
	unsigned int rate_hz; /* "rate" option; 0: default */
	struct sampler_opt *opts;
	size_t nopts;

	/* Engine thread (or the thread configuring the engine before start).
	 * What every tick reads comes first and the reason strings last: at
	 * 100 Hz each line here is a cache miss per sampler and tick. */
	enum sampler_state state;
	int fail_called;
	int reported_up;	      /* last state given to the status callback */
	uint64_t retry_ns;	      /* next init retry, or next read retry while down */
	unsigned int run_hz;	      /* effective rate while the thread runs */
	struct hitel_series *up_series, *errors_series, *refresh_series;
	uint64_t metrics_ns;	 /* when up and errors were last recorded... */
	int metrics_up;		 /* ...with these values */
	uint64_t metrics_errors;

	/* Read by hitel_engine_sampler_status() from any thread: status_lock,
	 * but for reads, which only the engine thread writes (atomically, so
	 * a read needs no lock). */
	int up;
	uint64_t reads, errors;
	char reason[REASON_LEN];

	char fail_reason[REASON_LEN]; /* from the last hitel_sampler_fail() */
	char logged[REASON_LEN];      /* last reason logged, so each is logged once */
};

/* Snapshots are immutable once taken; several windows share one, and
 * after a takeover two engines may (each under its own window_lock), so the
 * count is atomic. */
struct snap_ref {
	struct hitel_snapshot *snap;
	unsigned int refs;
};

struct window {
	uint64_t len;
	uint64_t boundary; /* last realtime multiple of len seen */
	int armed;	   /* boundary holds a value */
	int pending;	   /* crossed a boundary on this tick */
	struct snap_ref *prev, *cur;
};

struct hitel_engine {
	struct hitel_registry *reg;
	int own_reg;	  /* hitel_engine_free() frees reg */
	int keep_windows; /* takeover carried window snapshots: start keeps them */

	unsigned int sample_rate;
	char *root; /* without trailing '/': "" for "/" */
	unsigned int rate_g, hist_g, max_series;

	struct hitel_sampler **samplers;
	size_t nsamplers;
	/* Each sampler's next own deadline (offset from start_ns) and the
	 * sampler, apart from the samplers' structs: a tick looks at one or
	 * two lines to find who is due, not at every sampler's struct (each a
	 * cache miss after the 10 ms sleep). Made by start; engine thread
	 * only, while running. */
	struct tick_slot {
		uint64_t due;
		struct hitel_sampler *s;
	} *slots;
	int prepared; /* registry defaults applied, engine self-metrics exist */

	pthread_t thread;
	int running;
	int stopping; /* atomic; also the futex the thread sleeps on */
	uint64_t start_ns;

	uint64_t missed; /* atomic: read from any thread */
	uint64_t missed_recorded, missed_ns; /* last given to missed_series, when */
	uint64_t last_refused_ns;
	struct hitel_series *missed_series, *lateness_series;
	struct hitel_family *refused_fam;

	pthread_mutex_t status_lock;
	hitel_status_fn status_fn;
	void *status_ctx;

	pthread_mutex_t window_lock;
	struct window **windows;
	size_t nwindows;
	/* Atomic: the realtime of the next boundary of any window, so a tick
	 * before it takes no lock (0: look now, after a change). */
	uint64_t windows_next;

	hitel_thread_create_fn thread_fn;
	void *thread_ctx;

	/* Self timings (each sampler read's refresh time, each tick's
	 * lateness) are written here by the engine thread and added to their
	 * histograms in batches (stage_fold), not one by one: a record is a
	 * line here, where one straight into a histogram was the series, the
	 * histogram's header and bucket, on pages of their own (three cold
	 * TLB entries a tick at 100 Hz). stage_n is atomic (release: entries
	 * below it are written); stage_folded and the folding are under the
	 * registry lock, so a reader's hitel_engine_snapshot() can fold what
	 * the thread staged so far. */
	uint64_t stage_n, stage_folded;
	uint64_t stage_t; /* atomic: time of the latest entry */
	uint64_t stage_v[STAGE_MAX];
	uint16_t stage_who[STAGE_MAX]; /* index in samplers, or STAGE_LATENESS */

	/* Files several samplers read (/proc/stat: cpu and scheduler), opened
	 * once; each sampler holds its own reference. Engine thread only. */
	struct hitel_procfile **files;
	size_t nfiles;
	uint64_t tick; /* of the tick being run: hitel_procfile_read_tick() */
};

/* Tick numbers never repeat across engines (after a takeover a sampler may
 * share a file object with the old engine's): each engine numbers its ticks
 * within blocks of 2^32 it takes from this process-wide count, so a tick
 * touches only the engine (this global's page was one more cold TLB entry a
 * tick). 2^32 ticks last 50 days at 1000 Hz; then the engine takes a block
 * again. */
static uint64_t tick_blocks;
#define TICK_BLOCK (1ULL << 32)

HITEL_TICK
static void tick_begin(struct hitel_engine *e)
{
	if ((e->tick & (TICK_BLOCK - 1)) == TICK_BLOCK - 1 || e->tick == 0)
		e->tick = __atomic_add_fetch(&tick_blocks, TICK_BLOCK, __ATOMIC_RELAXED);
	else
		e->tick++;
}

static const struct hitel_family_desc up_desc = {
	.name = "hitel/sampler/up",
	.help = "1 while the sampler works, 0 while it is disabled or failing.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
	.flags = HITEL_FAMILY_NO_HIST,
};

static const struct hitel_family_desc errors_desc = {
	.name = "hitel/sampler/errors",
	.help = "Sampler reads that failed.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
	.flags = HITEL_FAMILY_NO_HIST,
};

/* The engine's own timings at 3 % resolution (g = 5) up to 2^40 ns (18
 * minutes): plenty for a diagnostic, and a microsecond-range histogram then
 * fits in the page of its header (at g = 7 it spans three or four pages per
 * sampler, all resident). */
#define SELF_HIST_G 5u
#define SELF_HIST_M 40u

static const struct hitel_family_desc refresh_desc = {
	.name = "hitel/sampler/refresh/time",
	.help = "Time one sampler read takes.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = SELF_HIST_G,
	.max_power = SELF_HIST_M,
};

static const struct hitel_family_desc missed_desc = {
	.name = "hitel/engine/missed",
	.help = "Sampling deadlines the engine thread slept through.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
	.flags = HITEL_FAMILY_NO_HIST,
};

static const struct hitel_family_desc lateness_desc = {
	.name = "hitel/engine/lateness",
	.help = "How late the engine thread woke up after each deadline.",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_HISTOGRAM,
	.grouping_power = SELF_HIST_G,
	.max_power = SELF_HIST_M,
};

static const struct hitel_family_desc refused_desc = {
	.name = "hitel/registry/refused",
	.help = "Series refused because their family reached max_series.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
	.flags = HITEL_FAMILY_NO_HIST,
};

/* ---- time ----------------------------------------------------------------- */

HITEL_TICK
static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

HITEL_TICK
uint64_t hitel_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

HITEL_TICK
uint64_t hitel_realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* floor(k * 1e9 / hz) without overflow for any k a process reaches. */
HITEL_TICK
static uint64_t deadline_offset(uint64_t k, unsigned int hz)
{
	return (k / hz) * NS_PER_S + ((k % hz) * NS_PER_S) / hz;
}

/* The last k with deadline_offset(k, hz) <= off. The exact quotient can
 * fall one short because deadline_offset() rounds down. */
HITEL_TICK
static uint64_t deadline_index(uint64_t off, unsigned int hz)
{
	uint64_t k = (off / NS_PER_S) * hz + ((off % NS_PER_S) * hz) / NS_PER_S;

	while (deadline_offset(k + 1, hz) <= off)
		k++;
	return k;
}

/* ---- helpers -------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Strict unsigned decimal in [min, max]: no sign, no blanks, no suffix. */
static int parse_uint(const char *value, unsigned long min, unsigned long max,
		      unsigned int *out)
{
	unsigned long v;
	char *end;

	if (!value || *value < '0' || *value > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(value, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

static void errstr(int err, char *buf, size_t len)
{
	/* strerror() is not thread-safe for every value; the GNU strerror_r
	 * may return a static string instead of filling buf. */
	const char *s = strerror_r(err, buf, len);

	if (s != buf)
		snprintf(buf, len, "%s", s);
}

static unsigned int effective_rate(const struct hitel_sampler *s)
{
	const struct hitel_engine *e = s->engine;
	unsigned int hz = s->rate_hz ? s->rate_hz : s->ops->default_hz;

	if (!hz || hz > e->sample_rate)
		hz = e->sample_rate;
	return hz;
}

/* ---- sampler accessors ---------------------------------------------------- */

HITEL_TICK
void *hitel_sampler_priv(struct hitel_sampler *s)
{
	return s->priv;
}

const char *hitel_sampler_name(const struct hitel_sampler *s)
{
	return s->ops->name;
}

HITEL_TICK
struct hitel_registry *hitel_sampler_registry(struct hitel_sampler *s)
{
	return s->engine->reg;
}

const char *hitel_sampler_path(const struct hitel_sampler *s, const char *rel, char *buf,
			       size_t len)
{
	int n;

	if (!rel || !buf || !len)
		return NULL;
	n = snprintf(buf, len, "%s%s%s", s->engine->root, rel[0] == '/' ? "" : "/", rel);
	if (n < 0 || (size_t)n >= len)
		return NULL;
	return buf;
}

/* Log a reason at WARNING unless it is the one logged last. */
int hitel_sampler_open_shared(struct hitel_sampler *s, const char *rel, struct hitel_procfile **out)
{
	struct hitel_engine *e = s->engine;
	struct hitel_procfile **nf;
	char path[PATH_MAX];
	size_t i;
	int err;

	if (!hitel_sampler_path(s, rel, path, sizeof(path)))
		return hitel_sampler_open(s, rel, out); /* reports the long path */
	for (i = 0; i < e->nfiles; i++)
		if (strcmp(hitel_procfile_path(e->files[i]), path) == 0) {
			*out = hitel_procfile_ref(e->files[i]);
			return 0;
		}
	err = hitel_sampler_open(s, rel, out);
	if (err < 0)
		return err;
	nf = realloc(e->files, (e->nfiles + 1) * sizeof(*nf));
	if (nf) { /* without memory the file is just not shared */
		e->files = nf;
		e->files[e->nfiles++] = hitel_procfile_ref(*out);
	}
	return 0;
}

int hitel_sampler_read_shared(struct hitel_sampler *s, struct hitel_procfile *f,
			      const char **buf, size_t *len)
{
	struct hitel_engine *e = s->engine;
	size_t i;
	int err = hitel_procfile_read_tick(f, e->tick, buf, len);

	if (err < 0) {
		hitel_sampler_fail(s, "cannot read %s: %s", hitel_procfile_path(f), strerror(-err));
		/* A retried init opens the file again rather than sharing the
		 * failing descriptor. */
		for (i = 0; i < e->nfiles; i++)
			if (e->files[i] == f) {
				e->files[i] = e->files[--e->nfiles];
				hitel_procfile_free(f);
				break;
			}
	}
	return err;
}

static void reason_log(struct hitel_sampler *s, const char *reason)
{
	if (strcmp(s->logged, reason) == 0)
		return;
	snprintf(s->logged, sizeof(s->logged), "%s", reason);
	hitel_log(HITEL_LOG_WARNING, s->ops->name, "%s", reason);
}

void hitel_sampler_fail(struct hitel_sampler *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->fail_reason, sizeof(s->fail_reason), fmt, ap);
	va_end(ap);
	s->fail_called = 1;
	reason_log(s, s->fail_reason);
}

void hitel_sampler_log(const struct hitel_sampler *s, enum hitel_log_level level,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hitel_vlog(level, s->ops->name, fmt, ap);
	va_end(ap);
}

int hitel_sampler_match(const struct hitel_sampler *s, const char *name)
{
	int have_include = 0, included = 0;
	size_t i;

	for (i = 0; i < s->nopts; i++) {
		if (strcmp(s->opts[i].key, "include") != 0)
			continue;
		have_include = 1;
		if (fnmatch(s->opts[i].value, name, 0) == 0) {
			included = 1;
			break;
		}
	}
	if (have_include && !included)
		return 0;
	for (i = 0; i < s->nopts; i++)
		if (strcmp(s->opts[i].key, "exclude") == 0 &&
		    fnmatch(s->opts[i].value, name, 0) == 0)
			return 0;
	return 1;
}

size_t hitel_sampler_values(const struct hitel_sampler *s, const char *key)
{
	size_t i, n = 0;

	for (i = 0; i < s->nopts; i++)
		if (strcmp(s->opts[i].key, key) == 0)
			n++;
	return n;
}

const char *hitel_sampler_value(const struct hitel_sampler *s, const char *key, size_t i)
{
	size_t j;

	for (j = 0; j < s->nopts; j++) {
		if (strcmp(s->opts[j].key, key) != 0)
			continue;
		if (i-- == 0)
			return s->opts[j].value;
	}
	return NULL;
}

/* ---- engine life cycle ---------------------------------------------------- */

/* reg NULL: a registry of the engine's own. */
static struct hitel_engine *engine_new(struct hitel_registry *reg)
{
	struct hitel_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->sample_rate = DEFAULT_SAMPLE_RATE;
	e->rate_g = DEFAULT_RATE_GROUPING;
	e->hist_g = DEFAULT_HIST_GROUPING;
	e->max_series = DEFAULT_MAX_SERIES;
	e->root = strdup("");
	e->own_reg = !reg;
	e->reg = reg ? reg : hitel_registry_new();
	if (!e->root || !e->reg) {
		if (e->own_reg)
			hitel_registry_free(e->reg);
		free(e->root);
		free(e);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&e->status_lock, NULL);
	pthread_mutex_init(&e->window_lock, NULL);
	return e;
}

struct hitel_engine *hitel_engine_new(void)
{
	return engine_new(NULL);
}

struct hitel_engine *hitel_engine_new_on(struct hitel_registry *reg)
{
	if (!reg) {
		errno = EINVAL;
		return NULL;
	}
	return engine_new(reg);
}

static void sampler_free(struct hitel_sampler *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->nopts; i++) {
		free(s->opts[i].key);
		free(s->opts[i].value);
	}
	free(s->opts);
	free(s->priv);
	free(s);
}

static struct snap_ref *snap_ref_get(struct snap_ref *r)
{
	if (r)
		__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	return r;
}

static void snap_unref(struct snap_ref *r)
{
	if (r && __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		hitel_snapshot_free(r->snap);
		free(r);
	}
}

void hitel_engine_free(struct hitel_engine *e)
{
	size_t i;

	if (!e)
		return;
	hitel_engine_stop(e);
	hitel_registry_lock(e->reg);
	for (i = 0; i < e->nsamplers; i++) {
		struct hitel_sampler *s = e->samplers[i];

		if (s->state == SAMPLER_READY && s->ops->fini)
			s->ops->fini(s);
		s->state = SAMPLER_NEW;
	}
	hitel_registry_unlock(e->reg);
	for (i = 0; i < e->nsamplers; i++)
		sampler_free(e->samplers[i]);
	free(e->samplers);
	free(e->slots);
	for (i = 0; i < e->nwindows; i++) {
		snap_unref(e->windows[i]->prev);
		snap_unref(e->windows[i]->cur);
		free(e->windows[i]);
	}
	free(e->windows);
	for (i = 0; i < e->nfiles; i++)
		hitel_procfile_free(e->files[i]);
	free(e->files);
	if (e->own_reg)
		hitel_registry_free(e->reg);
	pthread_mutex_destroy(&e->status_lock);
	pthread_mutex_destroy(&e->window_lock);
	free(e->root);
	free(e);
}

struct hitel_registry *hitel_engine_registry(struct hitel_engine *e)
{
	return e->reg;
}

/* ---- options -------------------------------------------------------------- */

static int set_root(struct hitel_engine *e, const char *value, char *err, size_t errlen)
{
	size_t n;
	char *root;

	if (!value || value[0] != '/') {
		seterr(err, errlen, "root: expected an absolute path, got '%s'",
		       value ? value : "");
		return -EINVAL;
	}
	n = strlen(value);
	if (n >= PATH_MAX / 2) {
		seterr(err, errlen, "root: path longer than %d bytes", PATH_MAX / 2);
		return -EINVAL;
	}
	/* Stored without trailing slashes so that root + "/proc/stat" is a
	 * clean path ("/" becomes ""). */
	while (n > 0 && value[n - 1] == '/')
		n--;
	root = strndup(value, n);
	if (!root) {
		seterr(err, errlen, "root: out of memory");
		return -ENOMEM;
	}
	free(e->root);
	e->root = root;
	return 0;
}

int hitel_engine_set(struct hitel_engine *e, const char *key, const char *value, char *err,
		     size_t errlen)
{
	static const struct {
		const char *key;
		unsigned long min, max;
		size_t off;
		int before_init; /* only before samplers are initialised */
#define OFF(f) offsetof(struct hitel_engine, f)
	} uints[] = {
		{ "sample_rate", 1, MAX_SAMPLE_RATE, OFF(sample_rate), 0 },
		{ "rate_grouping_power", 0, MAX_GROUPING, OFF(rate_g), 1 },
		{ "hist_grouping_power", 0, MAX_GROUPING, OFF(hist_g), 1 },
		{ "max_series", 1, MAX_MAX_SERIES, OFF(max_series), 1 },
	};
#undef OFF
	size_t i;

	if (!e || !key) {
		seterr(err, errlen, "missing option name");
		return -EINVAL;
	}
	if (e->running) {
		seterr(err, errlen, "%s: cannot change while the engine runs", key);
		return -EBUSY;
	}
	if (strcmp(key, "root") == 0) {
		if (e->prepared) {
			seterr(err, errlen, "root: cannot change after samplers started");
			return -EBUSY;
		}
		return set_root(e, value, err, errlen);
	}
	for (i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
		unsigned int v;

		if (strcmp(key, uints[i].key) != 0)
			continue;
		if (parse_uint(value, uints[i].min, uints[i].max, &v) < 0) {
			seterr(err, errlen, "%s: expected an integer in %lu..%lu, got '%s'", key,
			       uints[i].min, uints[i].max, value ? value : "");
			return -EINVAL;
		}
		if (uints[i].before_init && e->prepared) {
			seterr(err, errlen, "%s: cannot change after samplers started", key);
			return -EBUSY;
		}
		*(unsigned int *)((char *)e + uints[i].off) = v;
		return 0;
	}
	seterr(err, errlen, "unknown option '%s'", key);
	return -ENOENT;
}

static int opt_store(struct hitel_sampler *s, const char *key, const char *value)
{
	struct sampler_opt *opts, *o;

	opts = realloc(s->opts, (s->nopts + 1) * sizeof(*opts));
	if (!opts)
		return -ENOMEM;
	s->opts = opts;
	o = &opts[s->nopts];
	o->key = strdup(key);
	o->value = strdup(value);
	if (!o->key || !o->value) {
		free(o->key);
		free(o->value);
		return -ENOMEM;
	}
	s->nopts++;
	return 0;
}

int hitel_sampler_set(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen)
{
	struct hitel_engine *e;
	const char *name;
	int ret;

	if (!s || !key || !value) {
		seterr(err, errlen, "missing option name or value");
		return -EINVAL;
	}
	e = s->engine;
	name = s->ops->name;
	if (e->running) {
		seterr(err, errlen, "%s: cannot change sampler '%s' while the engine runs", key,
		       name);
		return -EBUSY;
	}
	if (strcmp(key, "rate") == 0) {
		unsigned int hz;

		if (parse_uint(value, 1, e->sample_rate, &hz) < 0) {
			seterr(err, errlen,
			       "rate: expected an integer in 1..%u (the sample_rate) for sampler "
			       "'%s', got '%s'",
			       e->sample_rate, name, value);
			return -EINVAL;
		}
		s->rate_hz = hz;
	} else if (strcmp(key, "include") == 0 || strcmp(key, "exclude") == 0) {
		if (!*value) {
			seterr(err, errlen, "%s: empty pattern for sampler '%s'", key, name);
			return -EINVAL;
		}
	} else {
		ret = s->ops->option ? s->ops->option(s, key, value, err, errlen) : -ENOENT;
		if (ret == -ENOENT) {
			seterr(err, errlen, "unknown option '%s' for sampler '%s'", key, name);
			return -ENOENT;
		}
		if (ret < 0) {
			if (err && errlen && !*err)
				seterr(err, errlen, "%s: bad value '%s' for sampler '%s'", key,
				       value, name);
			return ret;
		}
	}
	ret = opt_store(s, key, value);
	if (ret < 0)
		seterr(err, errlen, "%s: out of memory", key);
	return ret;
}

/* ---- samplers ------------------------------------------------------------- */

struct hitel_sampler *hitel_engine_sampler_add_ops(struct hitel_engine *e,
						   const struct hitel_sampler_ops *ops)
{
	struct hitel_sampler **arr, *s;
	size_t i;

	if (!e || !ops || !ops->name || !*ops->name) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < e->nsamplers; i++) {
		if (e->samplers[i]->ops == ops)
			return e->samplers[i];
		/* The name is the {sampler} label: two owners would mix data. */
		if (strcmp(e->samplers[i]->ops->name, ops->name) == 0) {
			errno = EEXIST;
			return NULL;
		}
	}
	if (e->running) {
		errno = EBUSY;
		return NULL;
	}
	if (e->nsamplers >= STAGE_LATENESS) { /* stage_who is 16 bits */
		errno = ENOSPC;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ops = ops;
	s->read = ops->read;
	s->engine = e;
	s->state = SAMPLER_NEW;
	s->up = 0;
	s->reported_up = 1;
	snprintf(s->reason, sizeof(s->reason), "not started");
	if (ops->priv_size) {
		s->priv = calloc(1, ops->priv_size);
		if (!s->priv)
			goto fail;
	}
	pthread_mutex_lock(&e->status_lock);
	arr = realloc(e->samplers, (e->nsamplers + 1) * sizeof(*arr));
	if (arr) {
		e->samplers = arr;
		arr[e->nsamplers++] = s;
	}
	pthread_mutex_unlock(&e->status_lock);
	if (!arr)
		goto fail;
	return s;

fail:
	sampler_free(s);
	errno = ENOMEM;
	return NULL;
}

struct hitel_sampler *hitel_engine_sampler_add(struct hitel_engine *e, const char *name)
{
	const struct hitel_sampler_ops *ops;
	size_t i;

	if (!e || !name) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < e->nsamplers; i++)
		if (strcmp(e->samplers[i]->ops->name, name) == 0)
			return e->samplers[i];
	ops = hitel_sampler_ops_find(name);
	if (!ops) {
		errno = ENOENT;
		return NULL;
	}
	return hitel_engine_sampler_add_ops(e, ops);
}

int hitel_engine_add_defaults(struct hitel_engine *e)
{
	size_t i;

	for (i = 0; hitel_builtin_samplers[i]; i++) {
		if (!hitel_builtin_samplers[i]->default_enabled)
			continue;
		if (!hitel_engine_sampler_add_ops(e, hitel_builtin_samplers[i]))
			return -errno;
	}
	return 0;
}

size_t hitel_engine_sampler_count(const struct hitel_engine *e)
{
	return e->nsamplers;
}

static void status_fill(const struct hitel_sampler *s, struct hitel_sampler_status *st)
{
	st->name = s->ops->name;
	st->up = s->up;
	snprintf(st->reason, sizeof(st->reason), "%s", s->up ? "" : s->reason);
	st->rate_hz = effective_rate(s);
	st->reads = __atomic_load_n(&s->reads, __ATOMIC_RELAXED);
	st->errors = s->errors;
}

int hitel_engine_sampler_status(struct hitel_engine *e, size_t i,
				struct hitel_sampler_status *st)
{
	int err = 0;

	pthread_mutex_lock(&e->status_lock);
	if (i >= e->nsamplers)
		err = -ERANGE;
	else
		status_fill(e->samplers[i], st);
	pthread_mutex_unlock(&e->status_lock);
	return err;
}

void hitel_engine_set_thread_create(struct hitel_engine *e, hitel_thread_create_fn fn,
				    void *ctx)
{
	e->thread_fn = fn;
	e->thread_ctx = ctx;
}

void hitel_engine_on_status(struct hitel_engine *e, hitel_status_fn fn, void *ctx)
{
	pthread_mutex_lock(&e->status_lock);
	e->status_fn = fn;
	e->status_ctx = ctx;
	pthread_mutex_unlock(&e->status_lock);
}

HITEL_TICK
uint64_t hitel_engine_missed(const struct hitel_engine *e)
{
	return __atomic_load_n(&e->missed, __ATOMIC_RELAXED);
}

/* Give an up/down transition to the status callback. Call without the
 * registry lock: the callback may take its own locks (collectd, net-snmp). */
HITEL_TICK
static int status_notify(struct hitel_engine *e, struct hitel_sampler *s)
{
	struct hitel_sampler_status st;
	hitel_status_fn fn;
	void *ctx;

	/* The engine thread is the only writer of both (status_lock only
	 * orders them for other threads' reads), so the usual case of no
	 * change needs no lock. */
	if (s->up == s->reported_up)
		return 0;
	pthread_mutex_lock(&e->status_lock);
	s->reported_up = s->up;
	fn = e->status_fn;
	ctx = e->status_ctx;
	status_fill(s, &st);
	pthread_mutex_unlock(&e->status_lock);
	if (fn)
		fn(&st, ctx);
	return 1;
}

/* Mark down with the sampler's own reason, or one made from err. */
static void sampler_down(struct hitel_sampler *s, const char *what, int err, int count_error)
{
	char reason[REASON_LEN], msg[128];

	if (s->fail_called) {
		snprintf(reason, sizeof(reason), "%s", s->fail_reason);
	} else {
		errstr(err, msg, sizeof(msg));
		snprintf(reason, sizeof(reason), "%s failed: %s", what, msg);
		reason_log(s, reason);
	}
	pthread_mutex_lock(&s->engine->status_lock);
	s->up = 0;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	if (count_error)
		s->errors++;
	pthread_mutex_unlock(&s->engine->status_lock);
}

static void sampler_up(struct hitel_sampler *s)
{
	int was_down;

	pthread_mutex_lock(&s->engine->status_lock);
	was_down = !s->up && s->reported_up == 0;
	s->up = 1;
	s->reason[0] = '\0';
	pthread_mutex_unlock(&s->engine->status_lock);
	if (was_down)
		hitel_sampler_log(s, HITEL_LOG_NOTICE, "working again");
	/* A later failure with the same reason is news again. */
	s->logged[0] = '\0';
}

/* Self-metrics of one sampler, when they change and at least once a second
 * (not on every read: at 100 Hz two more series per sampler and tick are a
 * tenth of the engine's own work). Registry lock held. */
HITEL_TICK
static void sampler_metrics(struct hitel_sampler *s, uint64_t t_ns, int force)
{
	if (!force && s->up == s->metrics_up && s->errors == s->metrics_errors &&
	    t_ns - s->metrics_ns < NS_PER_S)
		return;
	hitel_series_gauge(s->up_series, (uint64_t)s->up, t_ns);
	hitel_series_counter(s->errors_series, s->errors, t_ns);
	s->metrics_ns = t_ns;
	s->metrics_up = s->up;
	s->metrics_errors = s->errors;
}

/* Registry lock held. */
static void sampler_init(struct hitel_engine *e, struct hitel_sampler *s, uint64_t tick_ns)
{
	struct hitel_label l = { "sampler", s->ops->name };
	int ret;

	if (!s->up_series)
		s->up_series = hitel_registry_series(e->reg, &up_desc, &l, 1);
	if (!s->errors_series)
		s->errors_series = hitel_registry_series(e->reg, &errors_desc, &l, 1);
	if (!s->refresh_series)
		s->refresh_series = hitel_registry_series(e->reg, &refresh_desc, &l, 1);

	/* A retried init starts from the state a first init sees. */
	if (s->priv)
		memset(s->priv, 0, s->ops->priv_size);
	s->fail_called = 0;
	ret = s->ops->init ? s->ops->init(s) : 0;
	if (ret < 0) {
		sampler_down(s, "init", -ret, 0);
		if (s->ops->fini)
			s->ops->fini(s);
		s->state = SAMPLER_INIT_FAILED;
		s->retry_ns = tick_ns + INIT_RETRY_NS;
	} else {
		sampler_up(s);
		s->state = SAMPLER_READY;
		s->retry_ns = 0;
	}
	sampler_metrics(s, tick_ns, 1);
}

/* Adds the staged self timings to their histograms. Registry lock held;
 * any thread. */
HITEL_TICK
static void stage_fold(struct hitel_engine *e)
{
	uint64_t n = __atomic_load_n(&e->stage_n, __ATOMIC_ACQUIRE);
	uint64_t t = __atomic_load_n(&e->stage_t, __ATOMIC_RELAXED);
	struct hitel_series *last = NULL;
	uint64_t i;

	for (i = e->stage_folded; i < n; i++) {
		uint16_t who = e->stage_who[i];
		struct hitel_series *ser = who == STAGE_LATENESS ? e->lateness_series
					   : who < e->nsamplers	   ? e->samplers[who]->refresh_series
								   : NULL;

		if (!ser)
			continue;
		hitel_hist_record(hitel_series_hist(ser), e->stage_v[i]);
		if (ser != last)
			hitel_series_touch(ser, t);
		last = ser;
	}
	e->stage_folded = n;
}

/* Engine thread only. Folds (taking the registry lock unless the caller
 * holds it: locked) when the stage is full. */
HITEL_TICK
static void stage_add(struct hitel_engine *e, uint16_t who, uint64_t v, uint64_t t_ns, int locked)
{
	uint64_t n = __atomic_load_n(&e->stage_n, __ATOMIC_RELAXED);

	if (n == STAGE_MAX) {
		if (!locked)
			hitel_registry_lock(e->reg);
		stage_fold(e);
		e->stage_folded = 0;
		__atomic_store_n(&e->stage_n, 0, __ATOMIC_RELAXED);
		if (!locked)
			hitel_registry_unlock(e->reg);
		n = 0;
	}
	e->stage_v[n] = v;
	e->stage_who[n] = who;
	__atomic_store_n(&e->stage_t, t_ns, __ATOMIC_RELAXED);
	__atomic_store_n(&e->stage_n, n + 1, __ATOMIC_RELEASE);
}

/* Registry lock held. now_ns is given to read(); tick_ns is the scheduled
 * time retries are counted from. */
/* Reads s at now_ns, its clock at t0_ns (the time the caller just took),
 * and returns the time the read ended, which the next sampler of a tick
 * reads at: one clock read per sampler, not three. */
HITEL_TICK
static uint64_t sampler_read(struct hitel_sampler *s, size_t i, uint64_t now_ns,
			     uint64_t tick_ns, uint64_t t0_ns)
{
	uint64_t t1;
	int ret;

	s->fail_called = 0;
	ret = s->read ? s->read(s, now_ns) : 0;
	t1 = hitel_now_ns();
	if (s->refresh_series)
		stage_add(s->engine, (uint16_t)i, t1 - t0_ns, now_ns, 1);
	__atomic_store_n(&s->reads, s->reads + 1, __ATOMIC_RELAXED);
	if (ret < 0) {
		sampler_down(s, "read", -ret, 1);
		s->retry_ns = tick_ns + READ_RETRY_NS;
	} else if (!s->up) {
		sampler_up(s);
	}
	sampler_metrics(s, now_ns, 0);
	return t1;
}

/* Whether a READY sampler that is down may try again at tick_ns. */
HITEL_TICK
static int sampler_may_read(const struct hitel_sampler *s, uint64_t tick_ns)
{
	return s->up || tick_ns >= s->retry_ns;
}

/* Init (or retry init of) one sampler if its time has come, then notify. */
static void sampler_maybe_init(struct hitel_engine *e, struct hitel_sampler *s,
			       uint64_t tick_ns)
{
	if (s->state == SAMPLER_READY ||
	    (s->state == SAMPLER_INIT_FAILED && tick_ns < s->retry_ns))
		return;
	hitel_registry_lock(e->reg);
	sampler_init(e, s, tick_ns);
	hitel_registry_unlock(e->reg);
	status_notify(e, s);
}

/* Registry defaults and engine self-metrics, once; then init new samplers. */
static void engine_prepare(struct hitel_engine *e, uint64_t now_ns)
{
	size_t i;
	int err;

	if (!e->prepared) {
		hitel_registry_lock(e->reg);
		/* A registry that already has families (an engine before this
		 * one, see hitel_engine_takeover) keeps the shapes they were
		 * made with. */
		err = hitel_registry_family_count(e->reg)
			      ? 0
			      : hitel_registry_set_defaults(e->reg, e->max_series, e->rate_g,
							    e->hist_g);
		if (err < 0)
			hitel_log(HITEL_LOG_WARNING, "engine",
				  "registry defaults not applied: %s", strerror(-err));
		e->missed_series = hitel_registry_series(e->reg, &missed_desc, NULL, 0);
		e->lateness_series = hitel_registry_series(e->reg, &lateness_desc, NULL, 0);
		e->refused_fam = hitel_registry_family(e->reg, &refused_desc);
		hitel_registry_unlock(e->reg);
		e->prepared = 1;
	}
	for (i = 0; i < e->nsamplers; i++)
		if (e->samplers[i]->state == SAMPLER_NEW)
			sampler_maybe_init(e, e->samplers[i], now_ns);
}

/* Registry lock held. */
static void refused_update(struct hitel_engine *e, uint64_t t_ns)
{
	size_t i, n;

	if (!e->refused_fam)
		return;
	n = hitel_registry_family_count(e->reg);
	for (i = 0; i < n; i++) {
		struct hitel_family *f = hitel_registry_family_at(e->reg, i);
		uint64_t refused = f ? hitel_family_refused(f) : 0;
		struct hitel_label l;

		/* Only families that refused something: a series per family
		 * would itself fill the cap on a large registry. */
		if (!refused)
			continue;
		l.name = "family";
		l.value = hitel_family_name(f);
		hitel_series_counter(hitel_family_series(e->refused_fam, &l, 1), refused, t_ns);
	}
	e->last_refused_ns = t_ns;
}

/* Engine self-metrics after a tick. lateness_ns is staged unless it is
 * UINT64_MAX (no deadline: run_once, which folds what is staged: its
 * callers look at the registry right after). */
HITEL_TICK
static void engine_metrics(struct hitel_engine *e, uint64_t t_ns, uint64_t lateness_ns,
			   int refused_now)
{
	uint64_t missed = hitel_engine_missed(e);
	/* On change and once a second, like the samplers' up and errors:
	 * not a series update (nor a lock) per tick for counts that are
	 * mostly still. */
	int missed_due = missed != e->missed_recorded || t_ns - e->missed_ns >= NS_PER_S;
	int refused_due = t_ns - e->last_refused_ns >= REFUSED_EVERY_NS;

	if (lateness_ns != UINT64_MAX && e->lateness_series)
		stage_add(e, STAGE_LATENESS, lateness_ns, t_ns, 0);
	if (!refused_now && !missed_due && !refused_due)
		return;
	hitel_registry_lock(e->reg);
	if (refused_now || missed_due) {
		hitel_series_counter(e->missed_series, missed, t_ns);
		e->missed_recorded = missed;
		e->missed_ns = t_ns;
	}
	if (refused_now || refused_due)
		refused_update(e, t_ns);
	if (refused_now)
		stage_fold(e);
	hitel_registry_unlock(e->reg);
}

int hitel_engine_run_once(struct hitel_engine *e, uint64_t now_ns)
{
	size_t i;

	if (!e)
		return -EINVAL;
	if (e->running)
		return -EBUSY;
	tick_begin(e);
	engine_prepare(e, now_ns);
	for (i = 0; i < e->nsamplers; i++) {
		struct hitel_sampler *s = e->samplers[i];

		sampler_maybe_init(e, s, now_ns);
		if (s->state != SAMPLER_READY || !sampler_may_read(s, now_ns))
			continue;
		hitel_registry_lock(e->reg);
		sampler_read(s, i, now_ns, now_ns, hitel_now_ns());
		hitel_registry_unlock(e->reg);
		status_notify(e, s);
	}
	engine_metrics(e, now_ns, UINT64_MAX, 1);
	return 0;
}

/* ---- windows -------------------------------------------------------------- */

int hitel_engine_window_add(struct hitel_engine *e, uint64_t len_ns)
{
	struct window **arr, *w;
	size_t i;
	int err = 0;

	if (!e || len_ns == 0 || len_ns < NS_PER_S / e->sample_rate)
		return -EINVAL;
	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows; i++)
		if (e->windows[i]->len == len_ns)
			goto out;
	w = calloc(1, sizeof(*w));
	arr = w ? realloc(e->windows, (e->nwindows + 1) * sizeof(*arr)) : NULL;
	if (!arr) {
		free(w);
		err = -ENOMEM;
		goto out;
	}
	w->len = len_ns;
	e->windows = arr;
	arr[e->nwindows++] = w;
	__atomic_store_n(&e->windows_next, 0, __ATOMIC_RELAXED);
out:
	pthread_mutex_unlock(&e->window_lock);
	return err;
}

/* After a tick: snapshot once for all windows whose boundary was crossed. */
HITEL_TICK
static void windows_check(struct hitel_engine *e)
{
	uint64_t rt = hitel_realtime_ns(), next = UINT64_MAX;
	struct snap_ref *ref = NULL;
	struct hitel_snapshot *snap;
	int any = 0;
	size_t i;

	if (rt < __atomic_load_n(&e->windows_next, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows; i++) {
		struct window *w = e->windows[i];
		uint64_t b = rt / w->len * w->len;

		if (!w->armed) {
			w->armed = 1;
			w->boundary = b;
		} else if (b > w->boundary) {
			w->boundary = b;
			w->pending = 1;
			any = 1;
		}
		if (w->boundary + w->len < next)
			next = w->boundary + w->len;
	}
	__atomic_store_n(&e->windows_next, next, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->window_lock);
	if (!any)
		return;

	/* Taken outside window_lock: the snapshot takes the registry lock.
	 * Every self timing staged so far belongs to this window. */
	hitel_registry_lock(e->reg);
	stage_fold(e);
	hitel_registry_unlock(e->reg);
	snap = hitel_registry_snapshot(e->reg, hitel_now_ns());
	if (snap) {
		ref = malloc(sizeof(*ref));
		if (ref) {
			ref->snap = snap;
			ref->refs = 1; /* ours, dropped below */
		} else {
			hitel_snapshot_free(snap);
		}
	}
	if (!ref)
		hitel_log(HITEL_LOG_ERR, "engine", "window snapshot failed: out of memory");

	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows; i++) {
		struct window *w = e->windows[i];

		if (!w->pending)
			continue;
		w->pending = 0;
		snap_unref(w->prev);
		if (ref) {
			w->prev = w->cur;
			w->cur = snap_ref_get(ref);
		} else {
			/* A skipped rotation would make the next window twice as
			 * long: serve none until two good snapshots exist. */
			snap_unref(w->cur);
			w->prev = w->cur = NULL;
		}
	}
	if (ref)
		snap_unref(ref);
	pthread_mutex_unlock(&e->window_lock);
}

struct hitel_snapshot *hitel_engine_window(struct hitel_engine *e, uint64_t len_ns)
{
	struct snap_ref *prev = NULL, *cur = NULL;
	struct hitel_snapshot *out;
	int err = ENOENT;
	size_t i;

	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows; i++) {
		struct window *w = e->windows[i];

		if (w->len != len_ns)
			continue;
		if (w->prev && w->cur) {
			prev = snap_ref_get(w->prev);
			cur = snap_ref_get(w->cur);
		} else {
			err = EAGAIN;
		}
		break;
	}
	pthread_mutex_unlock(&e->window_lock);
	if (!prev) {
		errno = err;
		return NULL;
	}
	/* Outside the lock: the engine thread may rotate meanwhile, and the
	 * references keep these two alive. */
	out = hitel_snapshot_delta(prev->snap, cur->snap);
	err = errno;
	pthread_mutex_lock(&e->window_lock);
	snap_unref(prev);
	snap_unref(cur);
	pthread_mutex_unlock(&e->window_lock);
	if (!out)
		errno = err;
	return out;
}

struct hitel_snapshot *hitel_engine_snapshot(struct hitel_engine *e)
{
	if (!e) {
		errno = EINVAL;
		return NULL;
	}
	/* What the engine thread staged so far; what it stages from here on
	 * is in the next snapshot. */
	hitel_registry_lock(e->reg);
	stage_fold(e);
	hitel_registry_unlock(e->reg);
	return hitel_registry_snapshot(e->reg, hitel_now_ns());
}

/* ---- the sampling thread -------------------------------------------------- */

/* Sleep until the absolute monotonic deadline; *now_ns is the time it woke
 * at. Returns 1 when asked to stop.
 * A futex on the stop flag, not a condition variable: at 100 Hz the sleep
 * and wake-up are a third of an idle engine's cost, and a condvar adds a
 * mutex round trip and its bookkeeping to every tick. FUTEX_WAIT_BITSET
 * takes an absolute CLOCK_MONOTONIC timeout, so no deadline drift. */
HITEL_TICK
static int wait_until(struct hitel_engine *e, uint64_t deadline_ns, uint64_t *now_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / NS_PER_S),
		.tv_nsec = (long)(deadline_ns % NS_PER_S),
	};

	while (!__atomic_load_n(&e->stopping, __ATOMIC_ACQUIRE)) {
		/* Returns at the deadline, at once if stop already set the
		 * flag, or early on a wake or signal: the clock tells which
		 * (errno would too, but it is one more libc page a tick). */
		syscall(SYS_futex, &e->stopping, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL,
			FUTEX_BITSET_MATCH_ANY);
		*now_ns = hitel_now_ns();
		if (*now_ns >= deadline_ns)
			break;
	}
	return __atomic_load_n(&e->stopping, __ATOMIC_ACQUIRE);
}

/* Run every sampler due at the tick scheduled at offset tick_off; now is
 * the time the thread woke at. */
HITEL_TICK
static void run_tick(struct hitel_engine *e, uint64_t tick_off, uint64_t now)
{
	uint64_t tick_ns = e->start_ns + tick_off;
	size_t i;

	tick_begin(e);
	for (i = 0; i < e->nsamplers; i++) {
		struct tick_slot *slot = &e->slots[i];
		struct hitel_sampler *s;

		if (slot->due > tick_off)
			continue;
		s = slot->s;
		/* Next own deadline after this tick; deadlines slept through
		 * are the engine's missed ones, not extra reads. */
		slot->due = deadline_offset(deadline_index(tick_off, s->run_hz) + 1, s->run_hz);

		if (s->state != SAMPLER_READY) {
			/* Init may take long (loading BPF): the time is stale. */
			sampler_maybe_init(e, s, tick_ns);
			now = hitel_now_ns();
			if (s->state != SAMPLER_READY)
				continue;
		}
		if (!sampler_may_read(s, tick_ns))
			continue;
		hitel_registry_lock(e->reg);
		now = sampler_read(s, i, now, tick_ns, now);
		hitel_registry_unlock(e->reg);
		/* So may the application's status callback. */
		if (status_notify(e, s))
			now = hitel_now_ns();
	}
}

HITEL_TICK
static void *engine_thread(void *arg)
{
	struct hitel_engine *e = arg;
	unsigned int hz = e->sample_rate;
	uint64_t k = 0;

	/* Without this the default 50 us slack dominates wake-up lateness. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pthread_setname_np(pthread_self(), "hitel-engine");

	for (;;) {
		uint64_t deadline = e->start_ns + deadline_offset(k, hz);
		uint64_t now = 0, m;

		if (wait_until(e, deadline, &now))
			break;
		m = deadline_index(now - e->start_ns, hz);
		if (m > k) {
			/* A period or more late (a slow read, or the thread was
			 * not scheduled): deadlines k..m are missed. Running them
			 * now would read at near-zero intervals, so wait for the
			 * next future one. */
			__atomic_add_fetch(&e->missed, m - k + 1, __ATOMIC_RELAXED);
			engine_metrics(e, now, now - deadline, 0);
			windows_check(e);
			k = m + 1;
			continue;
		}
		run_tick(e, deadline_offset(k, hz), now);
		engine_metrics(e, now, now - deadline, 0);
		windows_check(e);
		k++;
	}
	return NULL;
}

int hitel_engine_start(struct hitel_engine *e)
{
	sigset_t all, old;
	struct tick_slot *slots;
	uint64_t now;
	size_t i;
	int err;

	if (!e)
		return -EINVAL;
	if (e->running)
		return -EBUSY;
	now = hitel_now_ns();
	engine_prepare(e, now);

	slots = realloc(e->slots, (e->nsamplers ? e->nsamplers : 1) * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	e->slots = slots;
	for (i = 0; i < e->nsamplers; i++) {
		struct hitel_sampler *s = e->samplers[i];

		s->run_hz = effective_rate(s);
		if (s->rate_hz > e->sample_rate)
			hitel_sampler_log(s, HITEL_LOG_WARNING,
					  "rate %u Hz above sample_rate: using %u Hz", s->rate_hz,
					  s->run_hz);
		slots[i].due = 0;
		slots[i].s = s;
	}
	/* Snapshots from before a stop would make the next window span it.
	 * Those a takeover carried span only the handover (the old engine
	 * stopped, its last samplers' fini): they stay, so windows go on. */
	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows && !e->keep_windows; i++) {
		struct window *w = e->windows[i];

		snap_unref(w->prev);
		snap_unref(w->cur);
		w->prev = w->cur = NULL;
		w->armed = 0;
		w->pending = 0;
	}
	e->keep_windows = 0;
	__atomic_store_n(&e->windows_next, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->window_lock);

	e->start_ns = hitel_now_ns();
	e->last_refused_ns = e->start_ns;
	__atomic_store_n(&e->stopping, 0, __ATOMIC_RELEASE);
	/* Signals belong to the application's threads, not to ours. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (e->thread_fn) {
		err = e->thread_fn(&e->thread, engine_thread, e, e->thread_ctx);
	} else {
		err = pthread_create(&e->thread, NULL, engine_thread, e);
		if (!err)
			pthread_setname_np(e->thread, "hitel-engine");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		hitel_log(HITEL_LOG_ERR, "engine", "cannot start the sampling thread: %s",
			  strerror(err));
		return -err;
	}
	e->running = 1;
	return 0;
}

void hitel_engine_stop(struct hitel_engine *e)
{
	if (!e || !e->running)
		return;
	__atomic_store_n(&e->stopping, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &e->stopping, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
	pthread_join(e->thread, NULL);
	e->running = 0;
	/* Nothing stays staged once the thread is gone (a takeover moves the
	 * samplers, and their indices with them). */
	hitel_registry_lock(e->reg);
	stage_fold(e);
	e->stage_folded = 0;
	__atomic_store_n(&e->stage_n, 0, __ATOMIC_RELAXED);
	hitel_registry_unlock(e->reg);
}

/* ---- takeover (reload) ---------------------------------------------------- */

/* Same options apart from "rate", in the order given. */
static int same_options(const struct hitel_sampler *a, const struct hitel_sampler *b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (i < a->nopts && strcmp(a->opts[i].key, "rate") == 0)
			i++;
		while (j < b->nopts && strcmp(b->opts[j].key, "rate") == 0)
			j++;
		if (i == a->nopts || j == b->nopts)
			return i == a->nopts && j == b->nopts;
		if (strcmp(a->opts[i].key, b->opts[j].key) != 0 ||
		    strcmp(a->opts[i].value, b->opts[j].value) != 0)
			return 0;
		i++;
		j++;
	}
}

/* What cannot change under existing series; 0 or -EINVAL with err set. */
static int takeover_check(const struct hitel_engine *e, const struct hitel_engine *old, char *err,
			  size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
#define OFF(f) offsetof(struct hitel_engine, f)
	} shapes[] = {
		{ "rate_grouping_power", OFF(rate_g) },
		{ "hist_grouping_power", OFF(hist_g) },
		{ "max_series", OFF(max_series) },
	};
#undef OFF
	size_t i;

	if (e->reg != old->reg) {
		seterr(err, errlen, "the new engine is not on the running engine's registry");
		return -EINVAL;
	}
	if (strcmp(e->root, old->root) != 0) {
		seterr(err, errlen,
		       "root: cannot change from '%s' to '%s' under existing series (they would "
		       "mix data of two roots)",
		       old->root[0] ? old->root : "/", e->root[0] ? e->root : "/");
		return -EINVAL;
	}
	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		unsigned int a = *(const unsigned int *)((const char *)old + shapes[i].off);
		unsigned int b = *(const unsigned int *)((const char *)e + shapes[i].off);

		if (a != b) {
			seterr(err, errlen,
			       "%s: cannot change from %u to %u under existing series (they keep "
			       "the histogram shape and cap they were created with)",
			       shapes[i].key, a, b);
			return -EINVAL;
		}
	}
	return 0;
}

/* Under both status locks: samplers of old whose options are unchanged
 * trade places with their fresh twins in e, so old's fini never sees them
 * and e's start finds them initialised. Returns how many moved. */
static size_t samplers_move(struct hitel_engine *e, struct hitel_engine *old)
{
	size_t i, j, moved = 0;

	for (i = 0; i < e->nsamplers; i++) {
		struct hitel_sampler *s = e->samplers[i], *o = NULL;
		struct sampler_opt *opts;
		size_t nopts;
		unsigned int rate;

		for (j = 0; j < old->nsamplers; j++)
			if (strcmp(old->samplers[j]->ops->name, s->ops->name) == 0) {
				o = old->samplers[j];
				break;
			}
		if (!o)
			continue;
		if (o->ops != s->ops || !same_options(o, s)) {
			/* Re-initialised by e: its status counters go on. */
			s->reads = o->reads;
			s->errors = o->errors;
			continue;
		}
		/* o goes to e with e's configuration (its new rate). */
		opts = o->opts;
		nopts = o->nopts;
		rate = o->rate_hz;
		o->opts = s->opts;
		o->nopts = s->nopts;
		o->rate_hz = s->rate_hz;
		s->opts = opts;
		s->nopts = nopts;
		s->rate_hz = rate;
		o->engine = e;
		s->engine = old;
		e->samplers[i] = o;
		old->samplers[j] = s;
		moved++;
	}
	return moved;
}

/* Windows of lengths both engines registered share old's snapshots. */
static void windows_carry(struct hitel_engine *e, struct hitel_engine *old)
{
	size_t i, j;

	pthread_mutex_lock(&old->window_lock);
	pthread_mutex_lock(&e->window_lock);
	for (i = 0; i < e->nwindows; i++) {
		struct window *w = e->windows[i];

		for (j = 0; j < old->nwindows; j++) {
			const struct window *o = old->windows[j];

			if (o->len != w->len)
				continue;
			snap_unref(w->prev);
			snap_unref(w->cur);
			w->prev = snap_ref_get(o->prev);
			w->cur = snap_ref_get(o->cur);
			w->boundary = o->boundary;
			w->armed = o->armed;
			w->pending = 0;
			break;
		}
	}
	e->keep_windows = 1;
	__atomic_store_n(&e->windows_next, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->window_lock);
	pthread_mutex_unlock(&old->window_lock);
}

int hitel_engine_takeover(struct hitel_engine *e, struct hitel_engine *old, char *err,
			  size_t errlen)
{
	size_t moved;
	int ret;

	if (!e || !old || e == old) {
		seterr(err, errlen, "takeover needs two engines");
		return -EINVAL;
	}
	if (e->running || e->prepared) {
		seterr(err, errlen, "the new engine has already run");
		return -EBUSY;
	}
	ret = takeover_check(e, old, err, errlen);
	if (ret < 0)
		return ret;

	hitel_engine_stop(old);
	/* Fixed order, old then e; nothing else takes both. */
	pthread_mutex_lock(&old->status_lock);
	pthread_mutex_lock(&e->status_lock);
	moved = samplers_move(e, old);
	pthread_mutex_unlock(&e->status_lock);
	pthread_mutex_unlock(&old->status_lock);
	__atomic_store_n(&e->missed, hitel_engine_missed(old), __ATOMIC_RELAXED);
	windows_carry(e, old);
	if (old->own_reg) {
		old->own_reg = 0;
		e->own_reg = 1;
	}
	hitel_log(HITEL_LOG_DEBUG, "engine", "takeover: %zu of %zu samplers kept running", moved,
		  e->nsamplers);
	return moved > INT_MAX ? INT_MAX : (int)moved;
}
