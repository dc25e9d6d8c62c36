/* SPDX-License-Identifier: MIT */
#include "procfile.h"
#include "hot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct hitel_procfile {
	int fd;
	char *buf;
	size_t cap;
	char *path;
	unsigned int refs; /* atomic: freed by the last hitel_procfile_free() */
	uint64_t tick;	   /* tick the buffer was read at; 0: none */
	size_t len;	   /* bytes of that read */
	/* hitel_procfile_read_same(): the previous content, in the buffer
	 * the two swap with, and whether it is one (the last read was such
	 * a read and succeeded). */
	char *alt;
	size_t alt_cap, alt_len;
	int alt_ok;
};

struct hitel_procfile *hitel_procfile_open(const char *path)
{
	struct hitel_procfile *f = calloc(1, sizeof(*f));
	int err;

	if (!f)
		return NULL;
	f->refs = 1;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		goto fail;
	f->cap = 4096;
	f->buf = malloc(f->cap);
	f->path = strdup(path);
	if (!f->buf || !f->path) {
		errno = ENOMEM;
		goto fail;
	}
	return f;
fail:
	err = errno;
	hitel_procfile_free(f);
	errno = err;
	return NULL;
}

struct hitel_procfile *hitel_procfile_ref(struct hitel_procfile *f)
{
	if (f)
		__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	return f;
}

void hitel_procfile_free(struct hitel_procfile *f)
{
	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
	free(f->alt);
	free(f->path);
	free(f);
}

HITEL_TICK
const char *hitel_procfile_path(const struct hitel_procfile *f)
{
	return f->path;
}

/*
 * A read that returns fewer bytes than asked, and at most SHORT_END, was the
 * end of the file, so the read that would return 0 is not made (it costs
 * 0.6-0.8 us a file on this VM, as much as a tenth of the first read: the
 * system call, the fd lookup of a threaded process, and for sysfs a second
 * rendering of the attribute). This holds for:
 * - regular files and sysfs attributes: a read returns all that is left, up
 *   to the count asked (sysfs: up to a page, the most an attribute holds);
 * - seq_file files (procfs): a read stops short of the count only at the end
 *   or when the next record does not fit in the kernel's buffer of at least
 *   a page (4096 bytes); with at most 2048 bytes returned, that next record
 *   would be over 2048 bytes, and the records of every file hitel reads are
 *   lines of at most a few hundred.
 * Anything longer (a full buffer, or a short read of more than 2048 bytes)
 * is read on to the 0 as before.
 */
#define SHORT_END 2048u

HITEL_TICK
static int read_whole(struct hitel_procfile *f, const char **buf, size_t *len)
{
	size_t n = 0;
	ssize_t r;

	/* Read until EOF, or until a read that can only have been the last:
	 * see SHORT_END. A full buffer means the file may have grown. */
	for (;;) {
		size_t want;

		if (n + 1 >= f->cap) {
			size_t cap = f->cap * 2;
			char *nb;

			if (cap > (64u << 20))
				return -EFBIG;
			nb = realloc(f->buf, cap);
			if (!nb)
				return -ENOMEM;
			f->buf = nb;
			f->cap = cap;
		}
		want = f->cap - 1 - n;
		r = pread(f->fd, f->buf + n, want, (off_t)n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if ((size_t)r < want && (size_t)r <= SHORT_END)
			break;
	}
	f->buf[n] = '\0';
	*buf = f->buf;
	*len = n;
	return 0;
}

int hitel_procfile_read(struct hitel_procfile *f, const char **buf, size_t *len)
{
	f->alt_ok = 0;
	return read_whole(f, buf, len);
}

/* memcmp(a, b, n) == 0, here rather than libc's: that one is on a page of
 * its own, one more cold TLB entry a tick, to compare a kilobyte or two. */
HITEL_TICK
static int same_bytes(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return 0;
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

HITEL_TICK
int hitel_procfile_read_same(struct hitel_procfile *f, const char **buf, size_t *len, int *same)
{
	char *t;
	size_t cap;
	int err;

	if (!f->alt) {
		f->alt = malloc(f->cap);
		if (!f->alt)
			return -ENOMEM;
		f->alt_cap = f->cap;
		f->alt_ok = 0;
	}
	/* The last content goes aside and this read fills the other buffer:
	 * nothing is copied, whether the content changed or not. */
	t = f->buf, f->buf = f->alt, f->alt = t;
	cap = f->cap, f->cap = f->alt_cap, f->alt_cap = cap;
	err = read_whole(f, buf, len);
	if (err < 0) {
		f->alt_ok = 0;
		return err;
	}
	*same = f->alt_ok && f->alt_len == *len && same_bytes(f->alt, *buf, *len);
	f->alt_len = *len;
	f->alt_ok = 1;
	return 0;
}

int hitel_procfile_read_tick(struct hitel_procfile *f, uint64_t tick, const char **buf,
			     size_t *len)
{
	int err;

	if (tick && f->tick == tick) {
		*buf = f->buf;
		*len = f->len;
		return 0;
	}
	f->tick = 0;
	err = hitel_procfile_read(f, buf, len);
	if (err == 0) {
		f->tick = tick;
		f->len = *len;
	}
	return err;
}

int hitel_parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	unsigned int d, n;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	while (*s == '0')
		s++;
	/* Nineteen digits cannot overflow (10^19 - 1 < 2^64): no check per
	 * digit on the numbers a sampler parses thousands of times a second. */
	for (n = 0; n < 19 && (d = (unsigned int)(*s - '0')) <= 9; n++, s++)
		v = v * 10 + d;
	for (; (d = (unsigned int)(*s - '0')) <= 9; s++) {
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	*p = s;
	return 0;
}

const char *hitel_next_line(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl && nl[1] ? nl + 1 : NULL;
}
