/* SPDX-License-Identifier: MIT */
/* Small helpers every procfs sampler needs, so each reports the same
 * reasons in the same words. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "sampler.h"
#include "hot.h"

int hitel_sampler_open(struct hitel_sampler *s, const char *rel, struct hitel_procfile **out)
{
	char path[PATH_MAX];
	int err;

	if (!hitel_sampler_path(s, rel, path, sizeof(path))) {
		hitel_sampler_fail(s, "path too long for %s", rel);
		return -ENAMETOOLONG;
	}
	*out = hitel_procfile_open(path);
	if (!*out) {
		err = errno;
		hitel_sampler_fail(s, "cannot open %s: %s", path, strerror(err));
		return -err;
	}
	return 0;
}

/* A read's result, its failure recorded as the reason. */
HITEL_TICK
static int read_result(struct hitel_sampler *s, struct hitel_procfile *f, int err)
{
	if (err < 0)
		hitel_sampler_fail(s, "cannot read %s: %s", hitel_procfile_path(f), strerror(-err));
	return err;
}

int hitel_sampler_read(struct hitel_sampler *s, struct hitel_procfile *f, const char **buf,
		       size_t *len)
{
	return read_result(s, f, hitel_procfile_read(f, buf, len));
}

HITEL_TICK
int hitel_sampler_read_same(struct hitel_sampler *s, struct hitel_procfile *f, const char **buf,
			    size_t *len, int *same)
{
	return read_result(s, f, hitel_procfile_read_same(f, buf, len, same));
}
