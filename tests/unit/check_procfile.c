/* SPDX-License-Identifier: MIT */
/* procfile: whole-file reads through pread at 0, growth, parse helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>

#include "procfile.h"
#include "testutil.h"

START_TEST(test_read_grows_and_rereads)
{
	char *dir = tu_tmpdir(), path[512], *big = malloc(100001);
	struct hitel_procfile *f;
	const char *buf;
	size_t len;

	memset(big, 'x', 100000);
	big[100000] = '\0';
	tu_write(dir, "small", "abc\n");
	snprintf(path, sizeof(path), "%s/small", dir);
	f = hitel_procfile_open(path);
	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(hitel_procfile_path(f), path);
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(buf, "abc\n");
	/* The same fd sees new content: what a kernel file does each read. */
	tu_write(dir, "small", big);
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	ck_assert_uint_eq(len, 100000);
	ck_assert_uint_eq(strlen(buf), 100000);
	hitel_procfile_free(f);
	hitel_procfile_free(NULL);
	free(big);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* read_same says whether the content is the previous read_same's, through
 * buffer growth and after other reads. */
START_TEST(test_read_same)
{
	char *dir = tu_tmpdir(), path[512], *big = malloc(20001);
	struct hitel_procfile *f;
	const char *buf;
	size_t len;
	int same = -1;

	memset(big, 'y', 20000);
	big[20000] = '\0';
	tu_write(dir, "f", "1 2 3\n");
	snprintf(path, sizeof(path), "%s/f", dir);
	f = hitel_procfile_open(path);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0); /* nothing before */
	ck_assert_str_eq(buf, "1 2 3\n");
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 1);
	ck_assert_str_eq(buf, "1 2 3\n");
	tu_write(dir, "f", "1 2 4\n"); /* same length, other bytes */
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0);
	ck_assert_str_eq(buf, "1 2 4\n");
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 1);
	tu_write(dir, "f", "1 2 4\n5\n"); /* longer */
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0);
	/* Another kind of read in between: no claim about the next. */
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 1);
	/* Both buffers grow. */
	tu_write(dir, "f", big);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 1);
	ck_assert_uint_eq(len, 20000);
	big[19999] = 'z';
	tu_write(dir, "f", big);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	ck_assert_int_eq(same, 0);
	ck_assert_str_eq(buf, big);
	hitel_procfile_free(f);
	free(big);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* Sizes around the buffers inside the file object (two of 1984 bytes, a
 * read asks for one less) and past them: every content comes whole, and
 * read_same still tells same from changed after a buffer moved out. */
START_TEST(test_sizes_around_inline_buffers)
{
	static const size_t sizes[] = { 1, 1982, 1983, 1984, 1985, 3968, 3969, 9000, 1983, 10 };
	char *dir = tu_tmpdir(), path[512], *content = malloc(9001);
	struct hitel_procfile *f, *g;
	const char *buf;
	size_t len, i;
	int same;

	tu_write(dir, "f", "");
	snprintf(path, sizeof(path), "%s/f", dir);
	f = hitel_procfile_open(path);
	g = hitel_procfile_open(path);
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(g);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t k;

		for (k = 0; k < sizes[i]; k++)
			content[k] = (char)('a' + (k + i) % 26);
		content[sizes[i]] = '\0';
		tu_write(dir, "f", content);
		ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_str_eq(buf, content);
		ck_assert_int_eq(same, 0);
		ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
		ck_assert_str_eq(buf, content);
		ck_assert_int_eq(same, 1);
		ck_assert_int_eq(hitel_procfile_read(g, &buf, &len), 0);
		ck_assert_uint_eq(len, sizes[i]);
		ck_assert_str_eq(buf, content);
	}
	/* One byte changed anywhere (in a 32-byte step, an 8-byte one, the
	 * last few bytes) is a change. */
	memset(content, 'q', 100);
	content[100] = '\0';
	tu_write(dir, "f", content);
	ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
	for (i = 0; i < 100; i++) {
		content[i] = 'Q';
		tu_write(dir, "f", content);
		ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
		ck_assert_msg(same == 0, "byte %zu changed, read as the same", i);
		ck_assert_int_eq(hitel_procfile_read_same(f, &buf, &len, &same), 0);
		ck_assert_int_eq(same, 1);
	}
	hitel_procfile_free(f);
	hitel_procfile_free(g);
	free(content);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

START_TEST(test_open_missing)
{
	ck_assert_ptr_null(hitel_procfile_open("/nonexistent/hitel"));
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_real_proc_files)
{
	static const char *const files[] = { "/proc/stat", "/proc/net/dev", "/proc/diskstats",
					     "/proc/self/status" };
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct hitel_procfile *f = hitel_procfile_open(files[i]);
		const char *buf;
		size_t len, len2;

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
		ck_assert_uint_gt(len, 0);
		ck_assert_uint_eq(strlen(buf), len);
		ck_assert_int_eq(hitel_procfile_read(f, &buf, &len2), 0);
		ck_assert_uint_gt(len2, 0);
		hitel_procfile_free(f);
	}
}
END_TEST

START_TEST(test_parse_u64)
{
	const char *p = "  42 18446744073709551615 18446744073709551616 x";
	uint64_t v;

	ck_assert_int_eq(hitel_parse_u64(&p, &v), 0);
	ck_assert_uint_eq(v, 42);
	ck_assert_int_eq(hitel_parse_u64(&p, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(hitel_parse_u64(&p, &v), -ERANGE);
	p = " x";
	ck_assert_int_eq(hitel_parse_u64(&p, &v), -EINVAL);
	ck_assert_str_eq(p, " x");
}
END_TEST

/* Against strtoull on numbers of every length around the overflow edge,
 * with leading zeros and what may follow a number in kernel text. */
START_TEST(test_parse_u64_vs_strtoull)
{
	static const char tails[] = " \n\t:x";
	uint64_t rs = 0x9e3779b97f4a7c15ULL;
	int i, checked_range = 0;

	for (i = 0; i < 200000; i++) {
		char num[64], *end;
		const char *p = num;
		size_t zeros, digits, k;
		uint64_t v = 0, want;
		int err;

		rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
		zeros = rs % 7 == 0 ? (rs >> 8) % 25 : 0;
		digits = 1 + (rs >> 16) % 22;
		for (k = 0; k < zeros; k++)
			num[k] = '0';
		for (k = 0; k < digits; k++) {
			rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
			/* Near UINT64_MAX's digits, so 20-digit numbers fall on both sides. */
			num[zeros + k] = (char)('0' + (rs % 4 == 0 ? "18446744073709551615"[k % 20] - '0'
							    : (int)((rs >> 4) % 10)));
		}
		num[zeros + digits] = tails[(rs >> 24) % (sizeof(tails) - 1)];
		num[zeros + digits + 1] = '\0';
		errno = 0;
		want = strtoull(num, &end, 10);
		err = hitel_parse_u64(&p, &v);
		if (errno == ERANGE) {
			ck_assert_int_eq(err, -ERANGE);
			checked_range++;
			continue;
		}
		ck_assert_int_eq(err, 0);
		ck_assert_uint_eq(v, want);
		ck_assert_ptr_eq(p, end);
	}
	ck_assert_int_gt(checked_range, 1000);
}
END_TEST

/* Read system calls this process made so far (the kernel's count, which
 * includes pread). */
static uint64_t syscr(struct hitel_procfile *io)
{
	const char *buf, *p;
	size_t len;
	uint64_t v;

	ck_assert_int_eq(hitel_procfile_read(io, &buf, &len), 0);
	p = strstr(buf, "syscr:");
	ck_assert_ptr_nonnull(p);
	p += 6;
	ck_assert_int_eq(hitel_parse_u64(&p, &v), 0);
	return v;
}

/* Read system calls one syscr() makes. */
static uint64_t syscr_cost(struct hitel_procfile *io)
{
	uint64_t a = syscr(io);

	return syscr(io) - a;
}

/* Reads of a file of n bytes, by the kernel's count. */
static uint64_t reads_of(struct hitel_procfile *io, const char *dir, size_t n)
{
	char path[512], *content = malloc(n + 1);
	struct hitel_procfile *f;
	const char *buf;
	size_t len;
	uint64_t before, after;

	memset(content, 'r', n);
	content[n] = '\0';
	tu_write(dir, "sized", content);
	snprintf(path, sizeof(path), "%s/sized", dir);
	f = hitel_procfile_open(path);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0); /* grown to fit */
	before = syscr(io);
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	after = syscr(io);
	ck_assert_uint_eq(len, n);
	ck_assert_str_eq(buf, content);
	hitel_procfile_free(f);
	free(content);
	return after - before - syscr_cost(io); /* the second syscr() counts too */
}

/* A short read of at most 2048 bytes is the end: one read, not two (the
 * second would return 0). Longer files are read on to the 0. */
START_TEST(test_short_read_is_the_end)
{
	struct hitel_procfile *io = hitel_procfile_open("/proc/self/io");
	char *dir = tu_tmpdir();

	ck_assert_ptr_nonnull(io);
	/* Valgrind makes reads of its own in the process, which the kernel's
	 * count includes (.ci/run sets HITEL_VALGRIND for its valgrind pass):
	 * the counts are checked in the plain and sanitizer runs. */
	if (getenv("HITEL_VALGRIND")) {
		hitel_procfile_free(io);
		tu_rmtree(dir);
		free(dir);
		return;
	}
	ck_assert_uint_eq(reads_of(io, dir, 0), 1);
	ck_assert_uint_eq(reads_of(io, dir, 700), 1);
	ck_assert_uint_eq(reads_of(io, dir, 2048), 1);
	ck_assert_uint_eq(reads_of(io, dir, 2049), 2);
	ck_assert_uint_eq(reads_of(io, dir, 3000), 2);
	/* A real small seq_file and a sysfs attribute: one read each. */
	{
		static const char *const small[] = { "/proc/loadavg",
						     "/sys/kernel/mm/transparent_hugepage/enabled" };
		size_t i;

		for (i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
			struct hitel_procfile *f = hitel_procfile_open(small[i]);
			const char *buf;
			size_t len;
			uint64_t before;

			if (!f)
				continue; /* not every kernel has the second */
			before = syscr(io);
			ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
			ck_assert_uint_gt(len, 0);
			ck_assert_uint_eq(syscr(io) - before - syscr_cost(io), 1);
			hitel_procfile_free(f);
		}
	}
	hitel_procfile_free(io);
	tu_rmtree(dir);
	free(dir);
}
END_TEST

/* A seq_file of many pages (this process's maps, with 300 mappings that
 * cannot merge) comes whole: its reads return just under a page each,
 * short of the count asked, and none of them is the end. */
START_TEST(test_seq_file_of_many_pages)
{
	static char direct[1 << 16];
	struct hitel_procfile *f = hitel_procfile_open("/proc/self/maps");
	void *maps[300];
	const char *buf;
	size_t len, n = 0, i;
	ssize_t r;
	int fd;

	ck_assert_ptr_nonnull(f);
	for (i = 0; i < 300; i++) {
		maps[i] = mmap(NULL, 4096, i % 2 ? PROT_READ : PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ck_assert_ptr_ne(maps[i], MAP_FAILED);
	}
	/* Grow the buffer first: no allocation (no new mapping) in between
	 * the two reads compared. */
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	while ((r = read(fd, direct + n, sizeof(direct) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	ck_assert_uint_gt(n, 3 * 4096);
	ck_assert_int_eq(hitel_procfile_read(f, &buf, &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_int_eq(memcmp(buf, direct, n), 0);
	for (i = 0; i < 300; i++)
		munmap(maps[i], 4096);
	hitel_procfile_free(f);
}
END_TEST

START_TEST(test_next_line)
{
	const char *s = "a\nb\n";
	const char *p = hitel_next_line(s);

	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(*p, 'b');
	ck_assert_ptr_null(hitel_next_line(p));
	ck_assert_ptr_null(hitel_next_line("no newline"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("procfile");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_read_grows_and_rereads);
	tcase_add_test(tc, test_read_same);
	tcase_add_test(tc, test_sizes_around_inline_buffers);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_real_proc_files);
	tcase_add_test(tc, test_short_read_is_the_end);
	tcase_add_test(tc, test_seq_file_of_many_pages);
	tcase_add_test(tc, test_parse_u64);
	tcase_add_test(tc, test_parse_u64_vs_strtoull);
	tcase_add_test(tc, test_next_line);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(suite());
}
