/* SPDX-License-Identifier: MIT */
/*
 * Kernel text files read at high rate: the fd stays open and every read is
 * a pread at offset 0 (seq_file regenerates the content), which saves the
 * open/close that dominates the cost (../shared/NOTES-procfs.md).
 */
#ifndef HITEL_PROCFILE_H
#define HITEL_PROCFILE_H

#include <stddef.h>
#include <stdint.h>

struct hitel_procfile;

/* Open path read-only (O_CLOEXEC). NULL + errno (ENOENT, EACCES...). */
struct hitel_procfile *hitel_procfile_open(const char *path);
/* One more owner (atomic): each owner calls hitel_procfile_free() once, and
 * the last one closes the file. */
struct hitel_procfile *hitel_procfile_ref(struct hitel_procfile *f);
void hitel_procfile_free(struct hitel_procfile *f);
/* Read the whole file; *buf is NUL-terminated, owned by f, valid until the
 * next read. The buffer grows as needed (files such as /proc/net/dev grow
 * with interfaces). A read of at most 2048 bytes that returns less than it
 * asked for is taken as the end (true of regular files, sysfs attributes
 * and seq_file files whose lines are shorter than 2048 bytes: procfile.c).
 * Returns 0 or -errno. */
int hitel_procfile_read(struct hitel_procfile *f, const char **buf, size_t *len);
/* The same, except that a second call with the same non-zero tick returns
 * the first call's content without reading again: owners that share f and
 * run in one thread read it once per engine tick. */
int hitel_procfile_read_tick(struct hitel_procfile *f, uint64_t tick, const char **buf,
			     size_t *len);
/* The same, and *same = 1 when the content is byte for byte what the
 * previous hitel_procfile_read_same() of f returned (0 after any other
 * read, or a failed one): a counter file that did not change needs no
 * parse. Keeps a second buffer; the two swap, nothing is copied. */
int hitel_procfile_read_same(struct hitel_procfile *f, const char **buf, size_t *len, int *same);
const char *hitel_procfile_path(const struct hitel_procfile *f);

/* Parsing helpers shared by samplers. Each parses an unsigned decimal at *p,
 * skipping leading blanks, advances *p, and returns 0 or -EINVAL (no digits)
 * / -ERANGE (overflow). */
int hitel_parse_u64(const char **p, uint64_t *out);
/* Next line: returns the start of the line after *p (or NULL at the end). */
const char *hitel_next_line(const char *p);

#endif /* HITEL_PROCFILE_H */
