/* SPDX-License-Identifier: MIT */
#include "procfile.h"
#include "hot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A file object is one page-aligned page: this struct, then two buffers of
 * INLINE_CAP bytes, the read buffer and the one hitel_procfile_read_same()
 * swaps with. A small file (a disk's stat, /proc/net/dev of a few
 * interfaces, meminfo) is then read and compared within one page, where a
 * struct and two buffers of their own were three: each a cold TLB entry a
 * tick after the engine's sleep. A buffer that must grow moves to an
 * allocation of its own (buf_grow).
 */
#define PAGE_BYTES 4096u
#define INLINE_OFF 128u
#define INLINE_CAP ((PAGE_BYTES - INLINE_OFF) / 2)

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

_Static_assert(sizeof(struct hitel_procfile) <= INLINE_OFF, "procfile header outgrew its slot");

static int is_inline(const struct hitel_procfile *f, const char *b)
{
	return b >= (const char *)f && b < (const char *)f + PAGE_BYTES;
}

/* Gives *b (of *cap bytes, the first keep of them kept) at least twice the
 * room; an inline buffer moves out of the page. 0 or -errno. */
static int buf_grow(struct hitel_procfile *f, char **b, size_t *cap, size_t keep)
{
	size_t ncap = *cap * 2;
	char *nb;

	if (ncap > (64u << 20))
		return -EFBIG;
	if (is_inline(f, *b)) {
		nb = malloc(ncap);
		if (nb)
			memcpy(nb, *b, keep);
	} else {
		nb = realloc(*b, ncap);
	}
	if (!nb)
		return -ENOMEM;
	*b = nb;
	*cap = ncap;
	return 0;
}

struct hitel_procfile *hitel_procfile_open(const char *path)
{
	struct hitel_procfile *f = NULL;
	int err;

	if (posix_memalign((void **)&f, PAGE_BYTES, PAGE_BYTES) != 0) {
		errno = ENOMEM;
		return NULL;
	}
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->refs = 1;
	f->buf = (char *)f + INLINE_OFF;
	f->cap = INLINE_CAP;
	f->alt = f->buf + INLINE_CAP;
	f->alt_cap = INLINE_CAP;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		goto fail;
	f->path = strdup(path);
	if (!f->path) {
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
	if (!is_inline(f, f->buf))
		free(f->buf);
	if (!is_inline(f, f->alt))
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
			int err = buf_grow(f, &f->buf, &f->cap, n);

			if (err < 0)
				return err;
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

static inline uint64_t word(const char *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/* memcmp(a, b, n) == 0, here rather than libc's: that one is on a page of
 * its own, one more cold TLB entry a tick, to compare a kilobyte or two. */
HITEL_TICK
static int same_bytes(const char *a, const char *b, size_t n)
{
	size_t i;

	/* 32 bytes a step, one branch: a 4 KB file in 128 steps. */
	for (i = 0; i + 32 <= n; i += 32)
		if ((word(a + i) ^ word(b + i)) | (word(a + i + 8) ^ word(b + i + 8)) |
		    (word(a + i + 16) ^ word(b + i + 16)) | (word(a + i + 24) ^ word(b + i + 24)))
			return 0;
	for (; i + 8 <= n; i += 8)
		if (word(a + i) != word(b + i))
			return 0;
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
