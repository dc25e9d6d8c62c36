/* SPDX-License-Identifier: MIT */
/*
 * process: CPU, memory, I/O, threads, open files and context switches of the
 * processes a host exists for. Each "watch" selects a set of pids and
 * aggregates all of them (every nginx worker, every pid of a cgroup) under
 * {process=LABEL}:
 *   name    "LABEL:COMM" or "COMM": /proc/PID/comm equal to COMM, or matching
 *           it as an fnmatch(3) glob when it holds * ? or [
 *   pidfile "LABEL:/run/x.pid": the pid written in that file
 *   cgroup  "LABEL:/sys/fs/cgroup/x": every pid in its cgroup.procs
 * Paths are taken under the engine's root, like /proc.
 *
 * Two costs shape the design. Finding the pids (listing /proc and reading
 * one comm per process on the host, or reading a pidfile or cgroup.procs)
 * is done at most once per second; between rescans only the known pids'
 * files are read. And per-pid counters vanish when a pid exits, so each
 * watch keeps its own cumulative counters, fed with per-pid deltas: a
 * worker that exits or restarts never makes the aggregate go down (which
 * the registry would count as a reset, losing the rate).
 */
#include "sampler.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfile.h"

#define RESCAN_NS 1000000000ULL
/* comm is TASK_COMM_LEN (16) bytes with the NUL: the kernel truncates
 * longer names, so a longer literal COMM is compared truncated. */
#define COMM_MAX 15
/* A glob such as "*" matches every process on the host: bound the work and
 * the file descriptors one watch can take. */
#define MAX_PIDS_PER_WATCH 4096
/* Files kept open (stat, status, io per pid) across all watches; pids beyond
 * the budget are read with open/read/close, so a broad watch cannot exhaust
 * the process's descriptors (RLIMIT_NOFILE is often 1024). */
#define MAX_KEPT_FILES 384
#define FILES_PER_PID 3

enum watch_kind { WATCH_NAME, WATCH_PIDFILE, WATCH_CGROUP };

static const char *const watch_keys[] = { "name", "pidfile", "cgroup" };

struct proc {
	int pid;
	bool started; /* start is valid */
	bool kept; /* files stay open between reads */
	bool io_denied;
	bool fd_denied;
	uint64_t start; /* starttime (ticks after boot): tells pid reuse apart */
	struct hitel_procfile *stat, *status, *io;
	/* Last values seen, to feed deltas into the watch's counters. */
	uint64_t utime, stime, rbytes, wbytes, rchar, wchar, vcsw, ivcsw;
	uint64_t rss, threads, nfds; /* gauges: bytes, count, count */
};

struct watch {
	enum watch_kind kind;
	char *label;
	char *arg; /* comm pattern, pidfile path, or cgroup.procs path */
	bool glob;
	struct proc *procs; /* sorted by pid */
	size_t nprocs;
	/* Cumulative since the watch started: CPU in ticks (converted at emit
	 * time, exactly), the others in their units. [0] user/read/voluntary,
	 * [1] system/write/involuntary. */
	uint64_t ticks[2], io_bytes[2], io_chars[2], ctxsw[2];
	bool io_seen, fds_seen;
	bool logged_io, logged_fds, logged_cap;
	int src_err; /* last pidfile/cgroup problem logged (log once per change) */
	struct hitel_series *cpu[2], *bytes[2], *chars[2], *ctx[2];
	struct hitel_series *rss, *threads, *fds, *count;
};

struct process_priv {
	struct watch *w;
	size_t nw;
	uint64_t hz; /* USER_HZ: the unit of utime/stime */
	uint64_t last_scan;
	bool scanned;
	bool logged_parse;
	size_t kept_files;
};

struct pidlist {
	int *v;
	size_t n, cap;
};

static const struct hitel_family_desc cpu_desc = {
	.name = "process/cpu",
	.help = "CPU time of the watched processes, by mode (tick-based).",
	.unit = "seconds",
	.scale = -9,
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc rss_desc = {
	.name = "process/memory/rss",
	.help = "Resident set size of the watched processes (sum over pids).",
	.unit = "bytes",
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc bytes_desc = {
	.name = "process/io/bytes",
	.help = "Bytes the watched processes made the block layer read or write.",
	.unit = "bytes",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc chars_desc = {
	.name = "process/io/chars",
	.help = "Bytes the watched processes passed to read and write syscalls.",
	.unit = "bytes",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc threads_desc = {
	.name = "process/threads",
	.help = "Threads of the watched processes.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc fds_desc = {
	.name = "process/fds",
	.help = "Open file descriptors of the watched processes.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
};
static const struct hitel_family_desc ctx_desc = {
	.name = "process/context_switches",
	.help = "Context switches of the watched processes, voluntary or not.",
	.unit = "",
	.kind = HITEL_KIND_COUNTER,
};
static const struct hitel_family_desc count_desc = {
	.name = "process/instances",
	.help = "Processes matching the watch.",
	.unit = "",
	.kind = HITEL_KIND_GAUGE,
};

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz)
{
	uint64_t sec = ticks / hz;

	if (sec > UINT64_MAX / 1000000000ULL)
		return UINT64_MAX;
	return sec * 1000000000ULL + ticks % hz * 1000000000ULL / hz;
}

/* Add the growth of a per-pid counter to the watch's. A counter of the same
 * process never goes down; if it does (a bad read), restart from there. */
static void feed(uint64_t *agg, uint64_t *last, uint64_t now)
{
	if (now > *last)
		*agg = sat_add(*agg, now - *last);
	*last = now;
}

/* ---- options -------------------------------------------------------------- */

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

static bool label_ok(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!label_char(p[i]))
			return false;
	return n > 0;
}

/*
 * Parse one watch option. With w NULL, only validate. A "name" value splits
 * at its first ':' only when what precedes it is a valid label, because
 * comm itself may hold ':' ("kworker/0:1").
 */
static int parse_watch(const char *key, const char *value, struct watch *w, char *err,
		       size_t errlen)
{
	enum watch_kind kind;
	const char *colon = strchr(value, ':');
	const char *label, *arg;
	size_t label_len, arg_len;

	if (strcmp(key, "name") == 0)
		kind = WATCH_NAME;
	else if (strcmp(key, "pidfile") == 0)
		kind = WATCH_PIDFILE;
	else if (strcmp(key, "cgroup") == 0)
		kind = WATCH_CGROUP;
	else
		return -ENOENT;

	if (colon == value) {
		snprintf(err, errlen, "%s \"%s\": empty label before ':'", key, value);
		return -EINVAL;
	}
	if (kind == WATCH_NAME && (!colon || !label_ok(value, (size_t)(colon - value)))) {
		label = arg = value;
		label_len = arg_len = strlen(value);
	} else if (!colon) {
		snprintf(err, errlen, "%s \"%s\": expected LABEL:/path", key, value);
		return -EINVAL;
	} else {
		label = value;
		label_len = (size_t)(colon - value);
		arg = colon + 1;
		arg_len = strlen(arg);
	}
	if (!label_ok(label, label_len) && kind != WATCH_NAME) {
		snprintf(err, errlen, "%s \"%s\": a label holds only letters, digits, _ - .", key,
			 value);
		return -EINVAL;
	}
	if (arg_len == 0) {
		snprintf(err, errlen, "%s \"%s\": empty %s", key, value,
			 kind == WATCH_NAME ? "process name" : "path");
		return -EINVAL;
	}
	if (kind != WATCH_NAME && (arg[0] != '/' || arg_len >= PATH_MAX / 2)) {
		snprintf(err, errlen, "%s \"%s\": path must be absolute (and shorter than %d)", key,
			 value, PATH_MAX / 2);
		return -EINVAL;
	}
	if (!w)
		return 0;

	memset(w, 0, sizeof(*w));
	w->kind = kind;
	w->label = strndup(label, label_len);
	if (kind == WATCH_NAME) {
		w->glob = strpbrk(arg, "*?[") != NULL;
		w->arg = strndup(arg, w->glob ? arg_len : COMM_MAX);
	} else if (kind == WATCH_CGROUP) {
		size_t n = arg_len;
		const char *tail = "/cgroup.procs";

		while (n > 1 && arg[n - 1] == '/')
			n--;
		if (n >= strlen(tail) && strcmp(arg + n - strlen(tail), tail) == 0)
			n -= strlen(tail);
		w->arg = malloc(n + strlen(tail) + 1);
		if (w->arg)
			snprintf(w->arg, n + strlen(tail) + 1, "%.*s%s", (int)n, arg, tail);
	} else {
		w->arg = strdup(arg);
	}
	if (!w->label || !w->arg) {
		snprintf(err, errlen, "%s: out of memory", key);
		return -ENOMEM;
	}
	return 0;
}

static int process_option(struct hitel_sampler *s, const char *key, const char *value, char *err,
			  size_t errlen)
{
	(void)s;
	/* Only validate: the engine keeps the values (hitel_sampler_values)
	 * and init() builds the watches from them. */
	return parse_watch(key, value, NULL, err, errlen);
}

/* ---- pid discovery (at most once per second) ----------------------------- */

static int pidlist_add(struct pidlist *l, int pid)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		int *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = pid;
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void pidlist_sort(struct pidlist *l)
{
	size_t i, n = 0;

	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_int);
	for (i = 0; i < l->n; i++)
		if (n == 0 || l->v[i] != l->v[n - 1])
			l->v[n++] = l->v[i];
	l->n = n;
}

/* A pid as the kernel prints it: digits only, 1..INT_MAX. Returns 0 if not. */
static int parse_pid(const char *p, const char **end)
{
	uint64_t v;

	if (hitel_parse_u64(&p, &v) < 0 || v == 0 || v > INT_MAX)
		return 0;
	if (end)
		*end = p;
	return (int)v;
}

/* Small files (comm, pidfile): open/read/close. Returns length or -errno. */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static bool name_matches(const struct watch *w, const char *comm)
{
	if (w->glob)
		return fnmatch(w->arg, comm, 0) == 0;
	return strcmp(w->arg, comm) == 0;
}

/* One pass over /proc serves every name watch. */
static int scan_names(struct hitel_sampler *s, struct process_priv *p, struct pidlist *lists)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], comm[64];
	struct dirent *de;
	DIR *d;
	size_t i;
	int err = 0;

	if (!hitel_sampler_path(s, "/proc", dir, sizeof(dir))) {
		hitel_sampler_fail(s, "path too long for /proc");
		return -ENAMETOOLONG;
	}
	d = opendir(dir);
	if (!d) {
		err = -errno;
		hitel_sampler_fail(s, "cannot list %s: %s", dir, strerror(-err));
		return err;
	}
	while ((de = readdir(d)) != NULL) {
		const char *end;
		int pid = parse_pid(de->d_name, &end);
		ssize_t n;

		if (!pid || *end)
			continue;
		snprintf(path, sizeof(path), "%s/%d/comm", dir, pid);
		n = read_small(path, comm, sizeof(comm));
		if (n <= 0)
			continue; /* exited since readdir, or not a process */
		if (comm[n - 1] == '\n')
			comm[n - 1] = '\0';
		for (i = 0; i < p->nw; i++) {
			if (p->w[i].kind != WATCH_NAME || !name_matches(&p->w[i], comm))
				continue;
			if (lists[i].n >= MAX_PIDS_PER_WATCH)
				continue;
			err = pidlist_add(&lists[i], pid);
			if (err < 0)
				goto cleanup;
		}
	}
cleanup:
	closedir(d);
	if (err < 0)
		hitel_sampler_fail(s, "listing %s: %s", dir, strerror(-err));
	return err;
}

/* A missing pidfile or cgroup is a stopped service, not a broken sampler:
 * the watch shows count 0, and the cause is logged once per change. */
static void source_problem(struct hitel_sampler *s, struct watch *w, const char *path, int err,
			   const char *what)
{
	if (w->src_err == err)
		return;
	w->src_err = err;
	hitel_sampler_log(s, HITEL_LOG_INFO, "%s %s (process=%s): %s", path, what, w->label,
			  err ? strerror(err) : "ok");
}

static int scan_pidfile(struct hitel_sampler *s, struct watch *w, struct pidlist *l)
{
	char path[PATH_MAX], buf[64];
	const char *end;
	ssize_t n;
	int pid;

	if (!hitel_sampler_path(s, w->arg, path, sizeof(path)))
		return 0;
	n = read_small(path, buf, sizeof(buf));
	if (n < 0) {
		source_problem(s, w, path, (int)-n, "unreadable");
		return 0;
	}
	pid = parse_pid(buf, &end);
	if (!pid || (*end && *end != '\n' && *end != ' ' && *end != '\t')) {
		source_problem(s, w, path, EINVAL, "holds no pid");
		return 0;
	}
	source_problem(s, w, path, 0, "readable again");
	return pidlist_add(l, pid);
}

static int scan_cgroup(struct hitel_sampler *s, struct watch *w, struct pidlist *l)
{
	char path[PATH_MAX];
	struct hitel_procfile *f;
	const char *buf, *line;
	size_t len;
	int err;

	if (!hitel_sampler_path(s, w->arg, path, sizeof(path)))
		return 0;
	/* Opened per rescan: a cgroup can be removed and created again. */
	f = hitel_procfile_open(path);
	if (!f) {
		source_problem(s, w, path, errno, "unreadable");
		return 0;
	}
	err = hitel_procfile_read(f, &buf, &len);
	if (err < 0) {
		source_problem(s, w, path, -err, "unreadable");
		err = 0;
		goto cleanup;
	}
	source_problem(s, w, path, 0, "readable again");
	for (line = buf; line && *line && l->n < MAX_PIDS_PER_WATCH; line = hitel_next_line(line)) {
		int pid = parse_pid(line, NULL);

		/* 0: a pid outside our pid namespace. */
		if (pid) {
			err = pidlist_add(l, pid);
			if (err < 0)
				goto cleanup;
		}
	}
cleanup:
	hitel_procfile_free(f);
	return err;
}

static void proc_close(struct process_priv *p, struct proc *pr)
{
	hitel_procfile_free(pr->stat);
	hitel_procfile_free(pr->status);
	hitel_procfile_free(pr->io);
	pr->stat = pr->status = pr->io = NULL;
	if (pr->kept) {
		p->kept_files -= FILES_PER_PID;
		pr->kept = false;
	}
}

/* Replace the watch's pid set by the sorted list pids: known pids keep their
 * state, gone ones are closed, new ones start from zero, so their whole
 * counters (nearly all accrued since the previous rescan, for a new worker)
 * go into the aggregate. */
static int merge(struct process_priv *p, struct watch *w, const struct pidlist *l)
{
	struct proc *np = calloc(l->n ? l->n : 1, sizeof(*np));
	size_t i = 0, j = 0, k = 0;

	if (!np)
		return -ENOMEM;
	while (i < w->nprocs || j < l->n) {
		if (j == l->n || (i < w->nprocs && w->procs[i].pid < l->v[j])) {
			proc_close(p, &w->procs[i++]);
		} else if (i == w->nprocs || l->v[j] < w->procs[i].pid) {
			np[k].pid = l->v[j++];
			if (p->kept_files + FILES_PER_PID <= MAX_KEPT_FILES) {
				np[k].kept = true;
				p->kept_files += FILES_PER_PID;
			}
			k++;
		} else {
			np[k++] = w->procs[i++];
			j++;
		}
	}
	free(w->procs);
	w->procs = np;
	w->nprocs = k;
	return 0;
}

static int rescan(struct hitel_sampler *s, struct process_priv *p)
{
	struct pidlist *lists = calloc(p->nw, sizeof(*lists));
	bool names = false, failed = false;
	size_t i;
	int err = 0;

	if (!lists) {
		hitel_sampler_fail(s, "rescanning pids: out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < p->nw; i++)
		names |= p->w[i].kind == WATCH_NAME;
	if (names) {
		err = scan_names(s, p, lists);
		failed = err < 0;
		if (err < 0)
			goto cleanup;
	}
	for (i = 0; i < p->nw; i++) {
		struct watch *w = &p->w[i];

		if (w->kind == WATCH_PIDFILE)
			err = scan_pidfile(s, w, &lists[i]);
		else if (w->kind == WATCH_CGROUP)
			err = scan_cgroup(s, w, &lists[i]);
		if (err < 0)
			goto cleanup;
		if (lists[i].n >= MAX_PIDS_PER_WATCH && !w->logged_cap) {
			w->logged_cap = true;
			hitel_sampler_log(s, HITEL_LOG_WARNING,
					  "process=%s matches over %d pids; watching the first",
					  w->label, MAX_PIDS_PER_WATCH);
		}
		pidlist_sort(&lists[i]);
		err = merge(p, w, &lists[i]);
		if (err < 0)
			goto cleanup;
	}
cleanup:
	/* scan_names() gave its own reason; what is left is ENOMEM. */
	if (err < 0 && !failed)
		hitel_sampler_fail(s, "rescanning pids: %s", strerror(-err));
	for (i = 0; i < p->nw; i++)
		free(lists[i].v);
	free(lists);
	return err;
}

/* ---- per-pid reads (every sample) ----------------------------------------- */

struct stat_vals {
	uint64_t utime, stime, start;
};

/*
 * /proc/PID/stat: "pid (comm) state ppid ...". comm may hold spaces and
 * parentheses, so fields start after the LAST ')'. Counted from state (0):
 * utime 11, stime 12, starttime 19. Fields in between may be negative
 * (cutime, priority, nice), so they are skipped, not parsed.
 */
static int parse_stat(const char *buf, struct stat_vals *v)
{
	const char *p = strrchr(buf, ')');
	int field;

	if (!p)
		return -EINVAL;
	p++;
	for (field = 0; field <= 19; field++) {
		uint64_t *out = field == 11 ? &v->utime :
				field == 12 ? &v->stime :
				field == 19 ? &v->start : NULL;

		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			return -EINVAL;
		if (out) {
			if (hitel_parse_u64(&p, out) < 0)
				return -EINVAL;
			if (*p && *p != ' ' && *p != '\n')
				return -EINVAL;
		} else {
			while (*p && *p != ' ' && *p != '\n')
				p++;
		}
	}
	return 0;
}

struct key_val {
	const char *key; /* with the ':' */
	uint64_t *out;
	bool found;
};

/* "Key:<blanks>number" lines (status, io). Returns how many keys were found;
 * a key whose number does not parse counts as missing. */
static size_t parse_keys(const char *buf, struct key_val *kv, size_t n)
{
	const char *line;
	size_t i, found = 0;

	for (line = buf; line && *line; line = hitel_next_line(line)) {
		for (i = 0; i < n; i++) {
			size_t kl = strlen(kv[i].key);
			const char *q = line + kl;

			if (kv[i].found || strncmp(line, kv[i].key, kl) != 0)
				continue;
			if (hitel_parse_u64(&q, kv[i].out) == 0) {
				kv[i].found = true;
				found++;
			}
			break;
		}
	}
	return found;
}

static int open_pid_file(struct hitel_sampler *s, const struct proc *pr, const char *name,
			 struct hitel_procfile **f)
{
	char rel[64], path[PATH_MAX];

	if (*f)
		return 0;
	snprintf(rel, sizeof(rel), "/proc/%d/%s", pr->pid, name);
	if (!hitel_sampler_path(s, rel, path, sizeof(path)))
		return -ENAMETOOLONG;
	*f = hitel_procfile_open(path);
	return *f ? 0 : -errno;
}

static int read_pid_file(struct hitel_sampler *s, const struct proc *pr, const char *name,
			 struct hitel_procfile **f, const char **buf)
{
	size_t len;
	int err = open_pid_file(s, pr, name, f);

	return err < 0 ? err : hitel_procfile_read(*f, buf, &len);
}

static void parse_problem(struct hitel_sampler *s, struct process_priv *p, const struct proc *pr,
			  const char *file)
{
	if (p->logged_parse)
		return;
	p->logged_parse = true;
	hitel_sampler_log(s, HITEL_LOG_WARNING, "cannot parse /proc/%d/%s; ignoring that pid",
			  pr->pid, file);
}

/* Open files count /proc/PID/fd entries: a readdir over possibly thousands
 * of entries, so it is done on rescans only (1 Hz), not every sample. */
static int count_fds(struct hitel_sampler *s, const struct proc *pr, uint64_t *n)
{
	char rel[64], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(rel, sizeof(rel), "/proc/%d/fd", pr->pid);
	if (!hitel_sampler_path(s, rel, path, sizeof(path)))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -errno;
	*n = 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			(*n)++;
	closedir(d);
	return 0;
}

/* Read one pid and feed the watch. Returns 0, or -1 when the pid is gone
 * (exited, reused, unparseable) and must be dropped. */
static int sample_proc(struct hitel_sampler *s, struct process_priv *p, struct watch *w,
		       struct proc *pr, bool rescanned)
{
	struct stat_vals sv;
	uint64_t rss_kb = 0, threads = 0, vcsw = 0, ivcsw = 0;
	uint64_t rchar = 0, wchar = 0, rbytes = 0, wbytes = 0;
	struct key_val st_kv[] = {
		{ "VmRSS:", &rss_kb, false },
		{ "Threads:", &threads, false },
		{ "voluntary_ctxt_switches:", &vcsw, false },
		{ "nonvoluntary_ctxt_switches:", &ivcsw, false },
	};
	struct key_val io_kv[] = {
		{ "rchar:", &rchar, false },
		{ "wchar:", &wchar, false },
		{ "read_bytes:", &rbytes, false },
		{ "write_bytes:", &wbytes, false },
	};
	const char *buf;
	int err, ret = -1;

	if (read_pid_file(s, pr, "stat", &pr->stat, &buf) < 0)
		goto cleanup; /* exited */
	if (parse_stat(buf, &sv) < 0) {
		parse_problem(s, p, pr, "stat");
		goto cleanup;
	}
	/* Same pid, another process: the next rescan decides whether the new
	 * one belongs to the watch (and then counts it from its start). */
	if (pr->started && sv.start != pr->start)
		goto cleanup;
	if (read_pid_file(s, pr, "status", &pr->status, &buf) < 0)
		goto cleanup;

	pr->start = sv.start;
	pr->started = true;
	feed(&w->ticks[0], &pr->utime, sv.utime);
	feed(&w->ticks[1], &pr->stime, sv.stime);

	/* Kernel threads have no VmRSS line (rss 0). A counter line missing
	 * from a damaged read keeps its last value rather than dropping to 0,
	 * which would count the whole value again on the next good read. */
	parse_keys(buf, st_kv, 4);
	pr->rss = rss_kb > UINT64_MAX / 1024 ? UINT64_MAX : rss_kb * 1024;
	pr->threads = threads;
	if (st_kv[2].found)
		feed(&w->ctxsw[0], &pr->vcsw, vcsw);
	if (st_kv[3].found)
		feed(&w->ctxsw[1], &pr->ivcsw, ivcsw);

	/* /proc/PID/io needs ptrace access (root or the same user). */
	if (!pr->io_denied) {
		err = read_pid_file(s, pr, "io", &pr->io, &buf);
		if (err < 0) {
			pr->io_denied = true;
			if (!w->logged_io) {
				w->logged_io = true;
				hitel_sampler_log(s, HITEL_LOG_INFO,
						  "cannot read /proc/%d/io (process=%s): %s; "
						  "process/io series omitted for such pids",
						  pr->pid, w->label, strerror(-err));
			}
		} else if (parse_keys(buf, io_kv, 4) == 4) {
			w->io_seen = true;
			feed(&w->io_chars[0], &pr->rchar, rchar);
			feed(&w->io_chars[1], &pr->wchar, wchar);
			feed(&w->io_bytes[0], &pr->rbytes, rbytes);
			feed(&w->io_bytes[1], &pr->wbytes, wbytes);
		}
	}

	if (rescanned && !pr->fd_denied) {
		err = count_fds(s, pr, &pr->nfds);
		if (err < 0) {
			pr->fd_denied = true;
			pr->nfds = 0;
			if (!w->logged_fds) {
				w->logged_fds = true;
				hitel_sampler_log(s, HITEL_LOG_INFO,
						  "cannot list /proc/%d/fd (process=%s): %s",
						  pr->pid, w->label, strerror(-err));
			}
		} else {
			w->fds_seen = true;
		}
	}
	ret = 0;
cleanup:
	if (!pr->kept || ret < 0) {
		hitel_procfile_free(pr->stat);
		hitel_procfile_free(pr->status);
		hitel_procfile_free(pr->io);
		pr->stat = pr->status = pr->io = NULL;
	}
	return ret;
}

/* ---- emit ----------------------------------------------------------------- */

static void series2(struct hitel_sampler *s, const struct hitel_family_desc *d,
		    const struct watch *w, const char *lname, const char *const val[2],
		    struct hitel_series *out[2])
{
	int i;

	for (i = 0; i < 2; i++) {
		struct hitel_label l[2] = { { "process", w->label }, { lname, val[i] } };

		if (!out[i])
			out[i] = hitel_registry_series(hitel_sampler_registry(s), d, l, 2);
	}
}

static struct hitel_series *series1(struct hitel_sampler *s, const struct hitel_family_desc *d,
				    const struct watch *w, struct hitel_series **cache)
{
	struct hitel_label l = { "process", w->label };

	if (!*cache)
		*cache = hitel_registry_series(hitel_sampler_registry(s), d, &l, 1);
	return *cache;
}

static void counter(struct hitel_series *ser, uint64_t v, uint64_t now)
{
	if (ser)
		hitel_series_counter(ser, v, now);
}

static void gauge(struct hitel_series *ser, uint64_t v, uint64_t now)
{
	if (ser)
		hitel_series_gauge(ser, v, now);
}

static void sample_watch(struct hitel_sampler *s, struct process_priv *p, struct watch *w,
			 uint64_t now, bool rescanned)
{
	static const char *const modes[2] = { "user", "system" };
	static const char *const ops[2] = { "read", "write" };
	static const char *const kinds[2] = { "voluntary", "involuntary" };
	uint64_t rss = 0, threads = 0, fds = 0;
	size_t i, k = 0;

	for (i = 0; i < w->nprocs; i++) {
		struct proc *pr = &w->procs[i];

		if (sample_proc(s, p, w, pr, rescanned) < 0) {
			proc_close(p, pr);
			continue;
		}
		rss = sat_add(rss, pr->rss);
		threads = sat_add(threads, pr->threads);
		fds = sat_add(fds, pr->nfds);
		w->procs[k++] = *pr;
	}
	w->nprocs = k;

	series2(s, &cpu_desc, w, "mode", modes, w->cpu);
	series2(s, &ctx_desc, w, "kind", kinds, w->ctx);
	for (i = 0; i < 2; i++) {
		counter(w->cpu[i], ticks_to_ns(w->ticks[i], p->hz), now);
		counter(w->ctx[i], w->ctxsw[i], now);
	}
	if (w->io_seen) {
		series2(s, &bytes_desc, w, "op", ops, w->bytes);
		series2(s, &chars_desc, w, "op", ops, w->chars);
		for (i = 0; i < 2; i++) {
			counter(w->bytes[i], w->io_bytes[i], now);
			counter(w->chars[i], w->io_chars[i], now);
		}
	}
	gauge(series1(s, &rss_desc, w, &w->rss), rss, now);
	gauge(series1(s, &threads_desc, w, &w->threads), threads, now);
	gauge(series1(s, &count_desc, w, &w->count), k, now);
	if (rescanned && w->fds_seen)
		gauge(series1(s, &fds_desc, w, &w->fds), fds, now);
}

/* ---- life cycle ----------------------------------------------------------- */

static void watch_free(struct process_priv *p, struct watch *w)
{
	size_t i;

	for (i = 0; i < w->nprocs; i++)
		proc_close(p, &w->procs[i]);
	free(w->procs);
	free(w->label);
	free(w->arg);
	memset(w, 0, sizeof(*w));
}

static void process_fini(struct hitel_sampler *s)
{
	struct process_priv *p = hitel_sampler_priv(s);
	size_t i;

	for (i = 0; i < p->nw; i++)
		watch_free(p, &p->w[i]);
	free(p->w);
	memset(p, 0, sizeof(*p));
}

static int process_init(struct hitel_sampler *s)
{
	struct process_priv *p = hitel_sampler_priv(s);
	char err[256];
	size_t k, i, j, n = 0;
	long hz;
	int ret;

	for (k = 0; k < 3; k++)
		n += hitel_sampler_values(s, watch_keys[k]);
	if (n == 0) {
		hitel_sampler_log(s, HITEL_LOG_INFO,
				  "no process watched (options name, pidfile, cgroup): idle");
		return 0;
	}
	hz = sysconf(_SC_CLK_TCK);
	p->hz = hz > 0 ? (uint64_t)hz : 100;
	p->w = calloc(n, sizeof(*p->w));
	if (!p->w) {
		hitel_sampler_fail(s, "out of memory");
		return -ENOMEM;
	}
	for (k = 0; k < 3; k++) {
		for (i = 0; i < hitel_sampler_values(s, watch_keys[k]); i++) {
			const char *v = hitel_sampler_value(s, watch_keys[k], i);
			struct watch *w = &p->w[p->nw];

			ret = v ? parse_watch(watch_keys[k], v, w, err, sizeof(err)) : -EINVAL;
			if (ret < 0) {
				watch_free(p, w);
				hitel_sampler_fail(s, "%s", v ? err : "missing option value");
				return ret;
			}
			p->nw++;
			if (!hitel_sampler_match(s, w->label)) {
				watch_free(p, w);
				p->nw--;
				continue;
			}
			for (j = 0; j + 1 < p->nw; j++)
				if (strcmp(p->w[j].label, w->label) == 0)
					break;
			if (j + 1 < p->nw) {
				hitel_sampler_fail(s, "duplicate label process=%s (%s \"%s\")",
						   w->label, watch_keys[k], v);
				return -EINVAL;
			}
		}
	}
	hitel_sampler_log(s, HITEL_LOG_INFO, "watching %zu process group(s)", p->nw);
	return 0;
}

static int process_read(struct hitel_sampler *s, uint64_t now_ns)
{
	struct process_priv *p = hitel_sampler_priv(s);
	bool rescanned = false;
	size_t i;
	int err;

	if (!p->nw)
		return 0;
	if (!p->scanned || now_ns - p->last_scan >= RESCAN_NS) {
		err = rescan(s, p);
		if (err < 0)
			return err;
		p->scanned = true;
		p->last_scan = now_ns;
		rescanned = true;
	}
	for (i = 0; i < p->nw; i++)
		sample_watch(s, p, &p->w[i], now_ns, rescanned);
	return 0;
}

/*
 * 10 Hz by default, below the engine's 100: every sample reads three files
 * per watched pid (stat, status, io: about 5-10 µs each, so 30 µs for a
 * single pid and milliseconds for a hundred workers), and each rescan lists
 * /proc and reads one comm file per process on the host. Per-process CPU is
 * tick-based anyway (10 ms steps), so faster sampling adds noise, not signal.
 */
const struct hitel_sampler_ops hitel_sampler_process = {
	.name = "process",
	.help = "CPU, memory, I/O, threads, fds and context switches of watched processes "
		"(options name, pidfile, cgroup).",
	.default_hz = 10,
	.default_enabled = 1,
	.priv_size = sizeof(struct process_priv),
	.option = process_option,
	.init = process_init,
	.read = process_read,
	.fini = process_fini,
};
