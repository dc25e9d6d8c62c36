/* SPDX-License-Identifier: MIT */
/*
 * The configuration vocabulary of hitel, read from hiteld's config file (or
 * fed entry by entry by another wrapper) and applied to an engine, the
 * exporter options and the wrapper's own keys.
 *
 * (Named conffile.h, not config.h: core/ is first on the include path, so a
 * core/config.h would silently shadow autoconf's config.h and its HITEL_WITH_*
 * macros for every file that includes "config.h".)
 *
 * File syntax, one option per line:
 *
 *   # comment                      (also after a value: "rate = 10  # Hz")
 *   sample_rate = 100              top level: engine, exporter, wrapper keys
 *   samplers = default disk        which samplers run (see below)
 *   [sampler disk]                 options of one sampler
 *   include = vd*
 *   enabled = true
 *   [export]                       exporter options only
 *   percentiles = 50 99 100
 *
 * A value may be double-quoted ("a # b", "\"" and "\\" escapes). Keys of a
 * sampler section are "enabled", "rate", "include", "exclude" (repeatable)
 * and the sampler's own options.
 *
 * The sampler set: "samplers" is a list of "default" (the built-in samplers
 * marked default_enabled), "all", "none" or sampler names; "-name" removes
 * one. Without the key the set is "default". A [sampler X] section adds X,
 * unless it says "enabled = false", which removes it. So an empty file is the
 * embedded default: every default-enabled sampler with default options.
 *
 * Errors name file, line and option, e.g.
 *   hiteld.conf:12: option 'rate' for sampler 'disk': '0' is not in 1..100
 * Every error is logged (component "config", level ERR) and the first one is
 * also copied into the caller's err buffer, so one run shows them all.
 *
 * Thread-safety: a struct hitel_config is used by one thread at a time.
 */
#ifndef HITEL_CONFFILE_H
#define HITEL_CONFFILE_H

#include <stddef.h>
#include <stdio.h>

#include "engine.h"
#include "export.h"

struct hitel_config;

/*
 * A wrapper's own top-level key (hiteld: listen, http, window...). Same
 * returns as hitel_engine_set: 0, -ENOENT for a key it does not know,
 * -EINVAL with a message in err (which may start with "option 'key': ").
 */
typedef int (*hitel_config_key_fn)(const char *key, const char *value, char *err, size_t errlen,
				   void *ctx);

/* Where hitel_config_apply() sends each option. */
struct hitel_config_target {
	/* A new engine without samplers (required). */
	struct hitel_engine *engine;
	/* Exporter options (NULL: exporter keys are unknown). */
	struct hitel_export_opts *export;
	/* Wrapper keys (NULL: none). */
	hitel_config_key_fn key;
	void *ctx;
};

/* Empty configuration. NULL + errno ENOMEM. */
struct hitel_config *hitel_config_new(void);
/* NULL accepted. */
void hitel_config_free(struct hitel_config *c);

/*
 * Append one entry: sampler NULL for a top-level key, else the sampler
 * section it belongs to ("export" is not a sampler: use the top level). file
 * and line are only for messages. With key NULL, declares the section
 * [sampler NAME] (which adds the sampler to the set, see above). Strings are
 * copied. Returns 0 or -ENOMEM.
 */
int hitel_config_add(struct hitel_config *c, const char *sampler, const char *key,
		     const char *value, const char *file, unsigned int line);

/*
 * Parse the file syntax from a buffer (len bytes, need not be NUL-terminated)
 * or a stream, appending entries. file names the source in messages. Returns
 * 0, -EINVAL on syntax errors (all logged, first in err), -ENOMEM, or -errno
 * of a read error.
 */
int hitel_config_parse(struct hitel_config *c, const char *buf, size_t len, const char *file,
		       char *err, size_t errlen);
int hitel_config_parse_file(struct hitel_config *c, FILE *f, const char *file, char *err,
			    size_t errlen);

/*
 * Apply the entries: engine keys in file order, then the sampler set (added
 * in the built-in table's order) with each sampler's options in file order,
 * then exporter and wrapper keys in file order. Sections of samplers left out
 * of the set are still checked (on a scratch engine). Returns 0, or -EINVAL
 * after logging every error (first in err): the engine is then
 * half-configured and must be freed, not started.
 */
int hitel_config_apply(struct hitel_config *c, const struct hitel_config_target *t, char *err,
		       size_t errlen);

/*
 * 1 if two applied configurations give the same engine (same engine keys,
 * sampler set and sampler options, ignoring comments, line numbers and
 * exporter or wrapper keys), else 0. Used to decide what a reload can apply
 * to a running engine.
 */
int hitel_config_same_engine(const struct hitel_config *a, const struct hitel_config *b);

/* Parse and apply in one call (NULL f with file NULL: the embedded default). */
int hitel_config_load(FILE *f, const char *file, const struct hitel_config_target *t, char *err,
		      size_t errlen);
int hitel_config_load_buffer(const char *buf, size_t len, const char *file,
			     const struct hitel_config_target *t, char *err, size_t errlen);

#endif /* HITEL_CONFFILE_H */
