/* SPDX-License-Identifier: MIT */
/*
 * The interface a sampler implements. One sampler per file under
 * core/samplers/, each exporting one `const struct hitel_sampler_ops`
 * registered in core/samplers.c.
 *
 * Life cycle, driven by the engine:
 *   option()* -> init() -> read()... -> fini()
 * init() and read() return 0 or -errno; on error they first call
 * hitel_sampler_fail() with a reason. A failing init() disables only that
 * sampler (up = 0 with the reason); a failing read() marks it down and the
 * engine retries it once per second until a read succeeds again.
 * read() runs on the engine thread with the registry lock held; it should
 * keep files open (hitel_procfile) and cache series pointers.
 */
#ifndef HITEL_SAMPLER_H
#define HITEL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "procfile.h"
#include "registry.h"

struct hitel_sampler;

struct hitel_sampler_ops {
	const char *name; /* "cpu": also the log component and the {sampler} label */
	const char *help;
	/* Default rate in Hz (0: the engine's sample_rate). Expensive samplers
	 * (process, BPF map reads) default lower. */
	unsigned int default_hz;
	/* Part of the embedded default set. */
	int default_enabled;
	/* Bytes of zeroed private state, reached through hitel_sampler_priv(). */
	size_t priv_size;
	/* Validate a sampler-specific option (the engine handles "rate",
	 * "include", "exclude" itself). Return 0, -ENOENT for an unknown key,
	 * -EINVAL for a bad value with a message in err. May be NULL. Called
	 * before init. The engine stores accepted values; init() reads them
	 * with hitel_sampler_values()/hitel_sampler_value(), because priv is
	 * zeroed before every init (a retried init starts clean). */
	int (*option)(struct hitel_sampler *s, const char *key, const char *value, char *err,
		      size_t errlen);
	int (*init)(struct hitel_sampler *s);
	int (*read)(struct hitel_sampler *s, uint64_t now_ns);
	/* Release everything init() acquired; also called after a failed init. */
	void (*fini)(struct hitel_sampler *s);
};

void *hitel_sampler_priv(struct hitel_sampler *s);
const char *hitel_sampler_name(const struct hitel_sampler *s);
struct hitel_registry *hitel_sampler_registry(struct hitel_sampler *s);
/* Path of a kernel file under the configured root ("/" by default; tests
 * point it at fixtures): rel "/proc/stat" -> "<root>/proc/stat". Returns buf,
 * or NULL if it does not fit. */
const char *hitel_sampler_path(const struct hitel_sampler *s, const char *rel, char *buf,
			       size_t len);
/* Record why the sampler is down (shown with up = 0) and log it once per
 * change of reason at WARNING. */
void hitel_sampler_fail(struct hitel_sampler *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Log through the library callback with the sampler's name as component. */
void hitel_sampler_log(const struct hitel_sampler *s, enum hitel_log_level level,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Include/exclude filter on an instance name (device, interface, process):
 * with include patterns, a name must match one; then it must match no
 * exclude pattern. fnmatch(3) globs. Returns 1 to keep, 0 to drop. */
int hitel_sampler_match(const struct hitel_sampler *s, const char *name);
/* Values of a repeatable option the engine stored for the sampler (for
 * sampler-specific lists such as process names): count, and i-th value. */
size_t hitel_sampler_values(const struct hitel_sampler *s, const char *key);
const char *hitel_sampler_value(const struct hitel_sampler *s, const char *key, size_t i);

/* Open <root><rel> (e.g. "/proc/stat") as a kept-open procfile. On failure
 * the reason ("cannot open PATH: ...") is recorded with hitel_sampler_fail
 * and -errno returned, ready to return from init(). */
int hitel_sampler_open(struct hitel_sampler *s, const char *rel, struct hitel_procfile **out);
/* hitel_procfile_read with the failure recorded as the sampler's reason
 * ("cannot read PATH: ..."). Returns 0 or -errno. */
int hitel_sampler_read(struct hitel_sampler *s, struct hitel_procfile *f, const char **buf,
		       size_t *len);
/* With hitel_procfile_read_same()'s *same. */
int hitel_sampler_read_same(struct hitel_sampler *s, struct hitel_procfile *f, const char **buf,
			    size_t *len, int *same);

/* The same for a file other samplers of the engine also read: one open
 * file per engine, read at most once per tick however many samplers read
 * it (/proc/stat costs ~8 us a read). The sampler owns a reference and
 * frees it with hitel_procfile_free() as usual; buffers from
 * hitel_sampler_read_shared() are valid during the sampler's read() only. */
int hitel_sampler_open_shared(struct hitel_sampler *s, const char *rel,
			      struct hitel_procfile **out);
int hitel_sampler_read_shared(struct hitel_sampler *s, struct hitel_procfile *f,
			      const char **buf, size_t *len);

/* Built-in samplers (core/samplers.c), NULL-terminated. */
extern const struct hitel_sampler_ops *const hitel_builtin_samplers[];
const struct hitel_sampler_ops *hitel_sampler_ops_find(const char *name);

#endif /* HITEL_SAMPLER_H */
