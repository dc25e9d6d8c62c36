/* SPDX-License-Identifier: MIT */
/*
 * Parser fuzzing for every procfs sampler: deterministic pseudo-random
 * mutations of their input files (fixture variants under
 * tests/fixtures/<sampler>/ and copies of this machine's /proc) written into
 * a temporary root, each followed by two hitel_engine_run_once() passes.
 * The property: no crash, no sanitizer report, and every sampler is either
 * up or down with a reason.
 *
 * Mutations: byte flips, truncation (at every length for files up to
 * SWEEP_MAX bytes, at random lengths otherwise), deleted, duplicated and
 * swapped lines, huge and negative numbers, no newline at EOF, NUL bytes,
 * lines longer than 64 KiB, empty files, spliced chunks, and combinations.
 * Most passes reuse one engine per sampler (state carried across odd
 * inputs: counter resets, devices appearing and vanishing); every eighth
 * pass uses a fresh engine, so init() meets the damaged input too.
 *
 * Environment:
 *   HITEL_FUZZ_ITERS    random mutations per sampler (default 1500; 1500/8
 *                       under valgrind). Below 1500 the truncation sweep
 *                       thins out in proportion (every 2nd length at 750),
 *                       so the whole run scales with it.
 *   HITEL_FUZZ_SEED     base seed (default 1)
 *   HITEL_FUZZ_VERBOSE  1: print every mutation before running it
 * A failing check names the sampler, pass, file and mutation; after a crash
 * the temporary root (/dev/shm/hitel-fuzz-* or /tmp/hitel-test-*) still
 * holds the last input, and
 * HITEL_FUZZ_VERBOSE=1 with the same seed shows which mutation it was.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"

/* valgrind runs this about 30 times slower: scale the default down there. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define NS 1000000000ULL
#define MAX_FILES 8
#define MAX_SEEDS 32
#define SWEEP_MAX 512
#define LONG_LINE (70 * 1024)
#define FRESH_EVERY 8
#define DEFAULT_ITERS 1500

struct target {
	const char *sampler;
	const char *base;		/* fixture tree copied as the root; may be absent */
	const char *files[MAX_FILES];	/* mutated, relative to the root */
	const char *real[MAX_FILES];	/* this machine's file of the same kind, or NULL */
	const char *opts[12];		/* sampler options, key/value pairs */
};

static const struct target targets[] = {
	{ "cpu", "cpu/debian12-6.18", { "proc/stat" }, { "/proc/stat" }, { "percpu", "true" } },
	{ "memory",
	  "memory/debian12-6.18",
	  { "proc/meminfo", "proc/vmstat" },
	  { "/proc/meminfo", "/proc/vmstat" },
	  { NULL } },
	{ "disk", "disk/debian12-6.18", { "proc/diskstats" }, { "/proc/diskstats" }, { NULL } },
	{ "network", "network/debian12-6.18", { "proc/net/dev" }, { "/proc/net/dev" }, { NULL } },
	{ "netstat",
	  "netstat/debian12-6.18",
	  { "proc/net/snmp", "proc/net/netstat" },
	  { "/proc/net/snmp", "/proc/net/netstat" },
	  { NULL } },
	{ "softnet",
	  "softnet/debian12-6.18",
	  { "proc/net/softnet_stat" },
	  { "/proc/net/softnet_stat" },
	  { NULL } },
	{ "scheduler",
	  "scheduler/debian12-6.18",
	  { "proc/stat", "proc/loadavg" },
	  { "/proc/stat", "/proc/loadavg" },
	  { NULL } },
	{ "pressure",
	  "pressure/debian12-6.18",
	  { "proc/pressure/cpu", "proc/pressure/io", "proc/pressure/memory", "proc/pressure/irq" },
	  { "/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
	    "/proc/pressure/irq" },
	  { NULL } },
	{ "process",
	  "process/basic",
	  { "proc/100/stat", "proc/100/status", "proc/100/io", "proc/100/comm", "proc/102/stat",
	    "run/app.pid", "sys/fs/cgroup/system.slice/db.service/cgroup.procs" },
	  { "/proc/self/stat", "/proc/self/status", "/proc/self/io", "/proc/self/comm",
	    "/proc/self/stat", NULL, NULL },
	  { "name", "web:nginx", "name", "odd:a) b (", "name", "py:python3*", "pidfile",
	    "app:/run/app.pid", "cgroup", "db:/sys/fs/cgroup/system.slice/db.service" } },
	{ "self",
	  "self/debian12-6.18",
	  { "proc/self/statm", "proc/self/stat" },
	  { "/proc/self/statm", "/proc/self/stat" },
	  { NULL } },
};
#define NTARGETS ((int)(sizeof(targets) / sizeof(targets[0])))

/* ---- bytes and files ------------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t need)
{
	if (need <= b->cap)
		return;
	b->cap = need + need / 2 + 64;
	b->p = realloc(b->p, b->cap);
	ck_assert_ptr_nonnull(b->p);
}

static void buf_set(struct buf *b, const char *p, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->p, p, len);
	b->len = len;
}

/* Replace [at, at + del) with ins[0..n). */
static void buf_splice(struct buf *b, size_t at, size_t del, const char *ins, size_t n)
{
	buf_reserve(b, b->len - del + n);
	memmove(b->p + at + n, b->p + at + del, b->len - at - del);
	if (n)
		memcpy(b->p + at, ins, n);
	b->len = b->len - del + n;
}

/* Whole file, binary-safe; 0 and an empty buf when it cannot be read. */
static int slurp(const char *path, struct buf *b)
{
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	b->len = 0;
	if (fd < 0)
		return 0;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		buf_reserve(b, b->len + (size_t)n);
		memcpy(b->p + b->len, chunk, (size_t)n);
		b->len += (size_t)n;
	}
	close(fd);
	return n == 0;
}

static void mkparents(const char *path)
{
	char tmp[PATH_MAX];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
}

/* Rewrite in place (same inode), so files the samplers keep open see it. */
static void spew(const char *root, const char *rel, const char *p, size_t len)
{
	char path[PATH_MAX];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		mkparents(path);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	ck_assert_msg(fd >= 0, "cannot write %s: %s", path, strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		ck_assert_msg(n > 0, "write %s: %s", path, strerror(errno));
		off += (size_t)n;
	}
	close(fd);
}

static const char *copy_src, *copy_dst;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char out[PATH_MAX];
	struct buf b = { 0 };

	(void)ftw;
	snprintf(out, sizeof(out), "%s%s", copy_dst, path + strlen(copy_src));
	if (flag == FTW_D)
		return mkdir(out, st->st_mode & 0777) < 0 && errno != EEXIST ? -1 : 0;
	if (flag != FTW_F)
		return 0;
	slurp(path, &b);
	spew(copy_dst, out + strlen(copy_dst) + 1, b.p, b.len);
	free(b.p);
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The root lives in tmpfs when there is one: on ext4, rewriting a file
 * truncated to zero starts writeback at close (auto_da_alloc), which made
 * the suite wait on the disk for most of its time. */
static char *fuzz_tmpdir(void)
{
	char tmpl[] = "/dev/shm/hitel-fuzz-XXXXXX";
	char *dir;

	if (access("/dev/shm", W_OK) == 0 && mkdtemp(tmpl)) {
		dir = strdup(tmpl);
		ck_assert_ptr_nonnull(dir);
		return dir;
	}
	return tu_tmpdir();
}

/* ---- seeds ---------------------------------------------------------------- */

struct seed {
	struct buf b;
	char origin[PATH_MAX];
};

struct fileseeds {
	struct seed s[MAX_SEEDS];
	size_t n;
};

static void seed_add(struct fileseeds *fs, const char *path)
{
	struct seed *sd;

	if (fs->n == MAX_SEEDS)
		return;
	sd = &fs->s[fs->n];
	if (!slurp(path, &sd->b)) {
		free(sd->b.p);
		memset(&sd->b, 0, sizeof(sd->b));
		return;
	}
	snprintf(sd->origin, sizeof(sd->origin), "%s", path);
	fs->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Seeds of one file: the base fixture's, this machine's, then every other
 * fixture variant's (sorted, so the order and the run are deterministic). */
static void seeds_load(const struct target *t, size_t fi, struct fileseeds *fs)
{
	char *dir = tu_fixture(t->sampler), *names[256];
	char path[PATH_MAX];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d;

	fs->n = 0;
	if (t->base) {
		char *base = tu_fixture(t->base);

		snprintf(path, sizeof(path), "%s/%s", base, t->files[fi]);
		seed_add(fs, path);
		free(base);
	}
	if (t->real[fi])
		seed_add(fs, t->real[fi]);
	d = opendir(dir);
	while (d && (de = readdir(d)) != NULL && n < 256) {
		if (de->d_name[0] == '.')
			continue;
		names[n] = strdup(de->d_name);
		ck_assert_ptr_nonnull(names[n]);
		n++;
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	for (i = 0; i < n; i++) {
		char rel[PATH_MAX];

		snprintf(rel, sizeof(rel), "%s/%s", t->sampler, names[i]);
		if (!t->base || strcmp(rel, t->base) != 0) {
			snprintf(path, sizeof(path), "%s/%s/%s", dir, names[i], t->files[fi]);
			seed_add(fs, path);
		}
		free(names[i]);
	}
	free(dir);
}

/* ---- mutations ------------------------------------------------------------ */

static uint64_t rng_state;

/* splitmix64: deterministic, seedable, good enough to pick mutations. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* Start offsets of lines: count, and the i-th. */
static size_t line_count(const struct buf *b)
{
	size_t i, n = b->len ? 1 : 0;

	for (i = 0; i + 1 < b->len; i++)
		n += b->p[i] == '\n';
	return n;
}

static void line_span(const struct buf *b, size_t idx, size_t *start, size_t *end)
{
	size_t i = 0;

	while (idx && i < b->len) {
		if (b->p[i++] == '\n')
			idx--;
	}
	*start = i;
	while (i < b->len && b->p[i] != '\n')
		i++;
	*end = i < b->len ? i + 1 : i; /* with its newline */
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A random run of digits: returns 0 if there is none. */
static int pick_number(const struct buf *b, size_t *start, size_t *end)
{
	size_t i, n = 0, k;

	for (i = 0; i < b->len; i++)
		if (is_digit(b->p[i]) && (i == 0 || !is_digit(b->p[i - 1])))
			n++;
	if (!n)
		return 0;
	k = rnd_below(n);
	for (i = 0; i < b->len; i++) {
		if (is_digit(b->p[i]) && (i == 0 || !is_digit(b->p[i - 1])) && k-- == 0)
			break;
	}
	*start = i;
	while (i < b->len && is_digit(b->p[i]))
		i++;
	*end = i;
	return 1;
}

static const char *const huge[] = {
	"99999999999999999999999", "18446744073709551615", "18446744073709551616",
	"9223372036854775808",	   "4294967296",	   "2147483648",
	"340282366920938463463374607431768211456",
};
static const char *const negative[] = {
	"-1",	       "-0",	      "-99999999999999999999999", "-9223372036854775808",
	"-4294967296", "-2147483649",
};
static const char odd_bytes[] = { '0', '9', ' ', '\t', '\n', ':', '-', '(', ')', '.', '\0', 'x',
				  '\377', '+', ',', '=' };

enum mut {
	M_FLIP,
	M_TRUNCATE,
	M_DEL_LINE,
	M_DUP_LINE,
	M_SWAP_LINES,
	M_HUGE,
	M_NEGATIVE,
	M_NO_NEWLINE,
	M_NUL,
	M_LONG_LINE,
	M_EMPTY,
	M_SPLICE,
	M_COMBO,
	NMUT,
};

static const char *const mut_names[NMUT] = {
	"flip", "truncate", "del-line", "dup-line", "swap-lines", "huge",  "negative",
	"no-newline", "nul", "long-line", "empty", "splice", "combo",
};

static void mutate(struct buf *b, enum mut m, char *desc, size_t dlen)
{
	size_t a, e, a2, e2, i, n;
	const char *rep;
	char *tmp;

	switch (m) {
	case M_FLIP:
		n = 1 + rnd_below(8);
		for (i = 0; i < n && b->len; i++) {
			a = rnd_below(b->len);
			if (rnd() & 1)
				b->p[a] ^= (char)(1u << rnd_below(8));
			else
				b->p[a] = odd_bytes[rnd_below(sizeof(odd_bytes))];
		}
		snprintf(desc, dlen, "flip %zu bytes", n);
		break;
	case M_TRUNCATE:
		b->len = rnd_below(b->len + 1);
		snprintf(desc, dlen, "truncate at %zu", b->len);
		break;
	case M_DEL_LINE:
		line_span(b, rnd_below(line_count(b)), &a, &e);
		buf_splice(b, a, e - a, NULL, 0);
		snprintf(desc, dlen, "delete line at %zu", a);
		break;
	case M_DUP_LINE:
		line_span(b, rnd_below(line_count(b)), &a, &e);
		tmp = malloc(e - a + 1);
		ck_assert_ptr_nonnull(tmp);
		memcpy(tmp, b->p + a, e - a);
		buf_splice(b, e, 0, tmp, e - a);
		free(tmp);
		snprintf(desc, dlen, "duplicate line at %zu", a);
		break;
	case M_SWAP_LINES:
		n = line_count(b);
		if (n < 2) {
			snprintf(desc, dlen, "swap (one line: none)");
			break;
		}
		i = rnd_below(n - 1);
		line_span(b, i, &a, &e);
		line_span(b, i + 1, &a2, &e2);
		tmp = malloc(e2 - a + 1);
		ck_assert_ptr_nonnull(tmp);
		memcpy(tmp, b->p + a2, e2 - a2);
		memcpy(tmp + (e2 - a2), b->p + a, e - a);
		memcpy(b->p + a, tmp, e2 - a);
		free(tmp);
		snprintf(desc, dlen, "swap lines %zu and %zu", i, i + 1);
		break;
	case M_HUGE:
	case M_NEGATIVE:
		if (!pick_number(b, &a, &e)) {
			snprintf(desc, dlen, "%s (no number)", mut_names[m]);
			break;
		}
		rep = m == M_HUGE ? huge[rnd_below(sizeof(huge) / sizeof(huge[0]))] :
				    negative[rnd_below(sizeof(negative) / sizeof(negative[0]))];
		/* A minus sign replaces the number, or goes in front of it. */
		if (m == M_NEGATIVE && (rnd() & 1)) {
			buf_splice(b, a, 0, "-", 1);
			snprintf(desc, dlen, "negate number at %zu", a);
		} else {
			buf_splice(b, a, e - a, rep, strlen(rep));
			snprintf(desc, dlen, "number at %zu -> %s", a, rep);
		}
		break;
	case M_NO_NEWLINE:
		while (b->len && b->p[b->len - 1] == '\n')
			b->len--;
		snprintf(desc, dlen, "no newline at EOF");
		break;
	case M_NUL:
		n = 1 + rnd_below(3);
		for (i = 0; i < n; i++) {
			a = rnd_below(b->len + 1);
			if (rnd() & 1 && a < b->len)
				b->p[a] = '\0';
			else
				buf_splice(b, a, 0, "", 1);
		}
		snprintf(desc, dlen, "%zu NUL bytes", n);
		break;
	case M_LONG_LINE: {
		static const char fill[] = "9a 0\t:";
		char c = fill[rnd_below(sizeof(fill) - 1)];

		tmp = malloc(LONG_LINE + 1);
		ck_assert_ptr_nonnull(tmp);
		memset(tmp, c, LONG_LINE);
		tmp[LONG_LINE] = '\n';
		if (rnd() & 1 && pick_number(b, &a, &e)) {
			/* a number with 70 K digits */
			memset(tmp, '7', LONG_LINE);
			buf_splice(b, e, 0, tmp, LONG_LINE);
			snprintf(desc, dlen, "number at %zu grows %d digits", a, LONG_LINE);
		} else {
			line_span(b, rnd_below(line_count(b) + 1), &a, &e);
			buf_splice(b, a, 0, tmp, LONG_LINE + 1);
			snprintf(desc, dlen, "%d-byte line of '%c' at %zu", LONG_LINE, c, a);
		}
		free(tmp);
		break;
	}
	case M_EMPTY:
		b->len = 0;
		snprintf(desc, dlen, "empty");
		break;
	case M_SPLICE:
		a = rnd_below(b->len + 1);
		n = rnd_below(b->len - a + 1);
		e = rnd_below(b->len + 1);
		tmp = malloc(n + 1);
		ck_assert_ptr_nonnull(tmp);
		memcpy(tmp, b->p + a, n);
		buf_splice(b, e, 0, tmp, n);
		free(tmp);
		snprintf(desc, dlen, "copy %zu bytes from %zu to %zu", n, a, e);
		break;
	case M_COMBO:
	case NMUT: {
		size_t used = 0;

		n = 2 + rnd_below(3);
		for (i = 0; i < n && used < dlen; i++) {
			char sub[96];

			mutate(b, (enum mut)rnd_below(M_COMBO), sub, sizeof(sub));
			used += (size_t)snprintf(desc + used, dlen - used, "%s%s", i ? " + " : "",
						 sub);
		}
		break;
	}
	}
}

/* ---- running -------------------------------------------------------------- */

/* Truncation points of a seed of len bytes: every stride-th length below
 * len, for short files only. */
static size_t sweep_points(size_t len, size_t stride)
{
	return len > SWEEP_MAX ? 0 : (len + stride - 1) / stride;
}

static void discard_log(enum hitel_log_level level, const char *msg, void *ctx)
{
	(void)level;
	(void)msg;
	(void)ctx;
}

static unsigned long env_ulong(const char *name, unsigned long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return def;
	n = strtoul(v, &end, 0);
	return *end ? def : n;
}

static struct hitel_engine *fuzz_engine(const struct target *t, const char *root)
{
	struct hitel_engine *e = tu_engine(t->sampler, root);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, t->sampler);
	char err[256] = "";
	size_t i;

	/* Mutated names make new series: keep the registry small (and its
	 * refusals exercised), and the histograms cheap. */
	ck_assert_int_eq(hitel_engine_set(e, "max_series", "64", err, sizeof(err)), 0);
	ck_assert_int_eq(hitel_engine_set(e, "rate_grouping_power", "2", err, sizeof(err)), 0);
	for (i = 0; i + 1 < sizeof(t->opts) / sizeof(t->opts[0]) && t->opts[i]; i += 2)
		ck_assert_msg(hitel_sampler_set(s, t->opts[i], t->opts[i + 1], err,
						sizeof(err)) == 0,
			      "%s: %s=%s: %s", t->sampler, t->opts[i], t->opts[i + 1], err);
	/* Format every message (formatting odd input is part of the test),
	 * print none. */
	hitel_log_set(discard_log, NULL);
	hitel_log_set_level(HITEL_LOG_DEBUG);
	return e;
}

static void run_and_check(struct hitel_engine *e, uint64_t *t, const char *what)
{
	struct hitel_sampler_status st;
	size_t i, k;

	for (k = 0; k < 2; k++) {
		/* > 1 s apart: the process sampler rescans, down samplers retry */
		*t += NS + NS / 10;
		ck_assert_msg(hitel_engine_run_once(e, *t) == 0, "run_once failed: %s", what);
		for (i = 0; i < hitel_engine_sampler_count(e); i++) {
			ck_assert_int_eq(hitel_engine_sampler_status(e, i, &st), 0);
			ck_assert_msg(st.up == 1 || st.reason[0] != '\0',
				      "%s down without a reason after %s", st.name, what);
		}
	}
}

START_TEST(test_fuzz_sampler)
{
	const struct target *t = &targets[_i];
	unsigned long def = RUNNING_ON_VALGRIND ? DEFAULT_ITERS / 8 : DEFAULT_ITERS;
	unsigned long iters = env_ulong("HITEL_FUZZ_ITERS", def);
	unsigned long seed = env_ulong("HITEL_FUZZ_SEED", 1);
	int verbose = env_ulong("HITEL_FUZZ_VERBOSE", 0) != 0;
	static struct fileseeds seeds[MAX_FILES];
	size_t nfiles = 0, fi, sweep_len, stride, pass = 0, i;
	int dirty[MAX_FILES] = { 0 };
	char *root = fuzz_tmpdir(), what[PATH_MAX + 1024], desc[512];
	struct hitel_engine *e;
	struct buf b = { 0 };
	uint64_t now = NS;

	if (t->base) {
		char *base = tu_fixture(t->base);

		if (is_dir(base)) {
			copy_src = base;
			copy_dst = root;
			ck_assert_int_eq(nftw(base, copy_one, 16, FTW_PHYS), 0);
		}
		free(base);
	}
	for (fi = 0; fi < MAX_FILES && t->files[fi]; fi++) {
		seeds_load(t, fi, &seeds[fi]);
		if (seeds[fi].n)
			spew(root, t->files[fi], seeds[fi].s[0].b.p, seeds[fi].s[0].b.len);
		nfiles = fi + 1;
	}
	rng_state = seed * 0x100000001b3ULL + (uint64_t)_i;
	e = fuzz_engine(t, root);
	run_and_check(e, &now, "the seed files");

	/* Pass list: the truncation sweep of every short seed, then the
	 * random mutations. */
	stride = iters ? (DEFAULT_ITERS + iters - 1) / iters : SWEEP_MAX + 1;
	sweep_len = 0;
	for (fi = 0; fi < nfiles; fi++)
		for (i = 0; i < seeds[fi].n; i++)
			sweep_len += sweep_points(seeds[fi].s[i].b.len, stride);
	for (pass = 0; pass < sweep_len + iters; pass++) {
		struct hitel_engine *run = e;
		size_t si = 0;

		if (pass < sweep_len) {
			size_t left = pass;

			for (fi = 0; fi < nfiles; fi++) {
				for (si = 0; si < seeds[fi].n; si++) {
					size_t k = sweep_points(seeds[fi].s[si].b.len, stride);

					if (left < k)
						goto found;
					left -= k;
				}
			}
found:
			buf_set(&b, seeds[fi].s[si].b.p, seeds[fi].s[si].b.len);
			b.len = left * stride;
			snprintf(desc, sizeof(desc), "truncate at %zu", b.len);
		} else {
			fi = rnd_below(nfiles);
			if (!seeds[fi].n)
				continue;
			si = rnd_below(seeds[fi].n);
			buf_set(&b, seeds[fi].s[si].b.p, seeds[fi].s[si].b.len);
			mutate(&b, (enum mut)rnd_below(NMUT), desc, sizeof(desc));
		}
		for (i = 0; i < nfiles; i++) {
			if (dirty[i] && i != fi && seeds[i].n) {
				spew(root, t->files[i], seeds[i].s[0].b.p, seeds[i].s[0].b.len);
				dirty[i] = 0;
			}
		}
		spew(root, t->files[fi], b.p, b.len);
		dirty[fi] = 1;
		snprintf(what, sizeof(what), "%s pass %zu: %s from %s: %s", t->sampler, pass,
			 t->files[fi], seeds[fi].s[si].origin, desc);
		if (verbose)
			fprintf(stderr, "%s\n", what);

		if (pass % FRESH_EVERY == FRESH_EVERY - 1)
			run = fuzz_engine(t, root);
		run_and_check(run, &now, what);
		if (run != e)
			hitel_engine_free(run);
	}

	hitel_engine_free(e);
	hitel_log_set(NULL, NULL);
	hitel_log_set_level(HITEL_LOG_WARNING);
	for (fi = 0; fi < nfiles; fi++) {
		for (i = 0; i < seeds[fi].n; i++)
			free(seeds[fi].s[i].b.p);
		memset(&seeds[fi], 0, sizeof(seeds[fi]));
	}
	free(b.p);
	tu_rmtree(root);
	free(root);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("fuzz");
	TCase *tc = tcase_create("procfs");

	/* Each sampler is one case; under ASan+UBSan they run several times
	 * slower (lower HITEL_FUZZ_ITERS there). */
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_fuzz_sampler, 0, NTARGETS);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
