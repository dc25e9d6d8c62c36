/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "bpf_testutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "log.h"
#include "sampler.h"
#include "testutil.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct hitel_engine *btu_engine(const char *sampler, const char *attach)
{
	struct hitel_engine *e = tu_engine(sampler, NULL);
	struct hitel_sampler *s = hitel_engine_sampler_add(e, sampler);
	char err[256] = "";

	ck_assert_ptr_nonnull(s);
	if (attach)
		ck_assert_msg(hitel_sampler_set(s, "attach", attach, err, sizeof(err)) == 0, "%s",
			      err);
	return e;
}

void btu_assert_up(struct hitel_engine *e, const char *sampler)
{
	struct hitel_sampler_status st;
	size_t i;

	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		ck_assert_int_eq(hitel_engine_sampler_status(e, i, &st), 0);
		if (strcmp(st.name, sampler) == 0) {
			ck_assert_msg(st.up == 1, "%s down: %s", sampler, st.reason);
			return;
		}
	}
	ck_abort_msg("no sampler %s", sampler);
}

struct hitel_snapshot *btu_window(const struct hitel_snapshot *a, const struct hitel_snapshot *b)
{
	struct hitel_snapshot *w = hitel_snapshot_delta(a, b);

	ck_assert_ptr_nonnull(w);
	return w;
}

/* ---- programs held by this process ----------------------------------------- */

#define MAX_IDS 64

struct prog_ids {
	size_t n;
	uint32_t id[MAX_IDS];
	char name[MAX_IDS][BPF_OBJ_NAME_LEN];
};

/*
 * BPF objects this process holds a descriptor of (kind: the anonymous inode's
 * name, "bpf-prog", "bpf_link", "bpf-map", "btf"); with progs, the programs
 * among them whose name starts with prefix. Our own
 * descriptors, not the kernel's list: other processes (another copy of this
 * test) may load the same programs at the same time.
 */
static int own_objects(const char *kind, const char *prefix, struct prog_ids *progs)
{
	char path[300], target[64], want[64];
	struct dirent *de;
	DIR *dir = opendir("/proc/self/fd");
	ssize_t len;
	int n = 0, fd;

	ck_assert_ptr_nonnull(dir);
	snprintf(want, sizeof(want), "anon_inode:%s", kind);
	if (progs)
		progs->n = 0;
	while ((de = readdir(dir))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, want) != 0)
			continue;
		n++;
		fd = atoi(de->d_name);
		if (progs) {
			struct bpf_prog_info info;
			uint32_t ilen = sizeof(info);

			memset(&info, 0, sizeof(info));
			if (bpf_obj_get_info_by_fd(fd, &info, &ilen) == 0 &&
			    strncmp(info.name, prefix, strlen(prefix)) == 0 && progs->n < MAX_IDS) {
				progs->id[progs->n] = info.id;
				memcpy(progs->name[progs->n], info.name, BPF_OBJ_NAME_LEN);
				progs->n++;
			}
		}
	}
	closedir(dir);
	return n;
}

/* The kernel frees programs after an RCU grace period: up to 2 s. */
static int prog_alive(uint32_t id)
{
	int tries, fd;

	for (tries = 0; tries < 200; tries++) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			return errno != ENOENT;
		close(fd);
		usleep(10000);
	}
	return 1;
}

void btu_check_prog_lifetime(const char *sampler, const char *attach, const char *prefix,
			     const char *const *names, size_t nnames)
{
	static const char *const kinds[] = { "bpf-prog", "bpf_link", "bpf-map", "btf" };
	struct prog_ids held;
	struct hitel_engine *e = btu_engine(sampler, attach);
	size_t i, j;

	ck_assert_int_eq(own_objects("bpf-prog", prefix, &held), 0);
	ck_assert_int_eq(hitel_engine_run_once(e, tu_now()), 0);
	btu_assert_up(e, sampler);
	own_objects("bpf-prog", prefix, &held);
	/* Exactly one flavour is loaded: each name once. */
	for (i = 0; i < held.n; i++) {
		for (j = 0; j < nnames; j++)
			if (strcmp(held.name[i], names[j]) == 0)
				break;
		ck_assert_msg(j < nnames, "unexpected program %s loaded", held.name[i]);
	}
	ck_assert_uint_eq(held.n, nnames);
	ck_assert_int_ge(own_objects("bpf_link", "", NULL), (int)nnames);
	hitel_engine_free(e);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		ck_assert_msg(own_objects(kinds[i], "", NULL) == 0,
			      "an anon_inode:%s is still open", kinds[i]);
	for (i = 0; i < held.n; i++)
		ck_assert_msg(!prog_alive(held.id[i]), "program %s (id %u) still loaded",
			      held.name[i], held.id[i]);
}

/* ---- failures ------------------------------------------------------------ */


/* As btu_check_fails, but returns 0 or 1 with msg filled, without Check
 * assertions, so that a forked child can use it. */
static int fails_as(const char *sampler, const char *key, const char *value, const char *want,
		    const char *family, char *msg, size_t msglen)
{
	struct hitel_engine *e = hitel_engine_new();
	struct hitel_sampler *s = e ? hitel_engine_sampler_add(e, sampler) : NULL;
	struct hitel_sampler_status st, dummy;
	struct hitel_snapshot *snap = NULL;
	const struct hitel_point *pt;
	size_t i;
	int ret = 1;

	hitel_log_set_level(HITEL_LOG_ERR); /* the failure is expected */
	if (!s || !hitel_engine_sampler_add_ops(e, &tu_dummy_ops)) {
		snprintf(msg, msglen, "setup failed");
		goto cleanup;
	}
	if (key && hitel_sampler_set(s, key, value, msg, msglen) != 0)
		goto cleanup;
	if (hitel_engine_run_once(e, tu_now()) || hitel_engine_run_once(e, tu_now())) {
		snprintf(msg, msglen, "run_once failed");
		goto cleanup;
	}
	memset(&st, 0, sizeof(st));
	memset(&dummy, 0, sizeof(dummy));
	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		struct hitel_sampler_status x;

		hitel_engine_sampler_status(e, i, &x);
		if (strcmp(x.name, sampler) == 0)
			st = x;
		else if (strcmp(x.name, "dummy") == 0)
			dummy = x;
	}
	snap = hitel_engine_snapshot(e);
	pt = snap ? hitel_snapshot_find(snap, "test/dummy/reads", "") : NULL;
	if (st.up != 0 || !strstr(st.reason, want))
		snprintf(msg, msglen, "%s up=%d reason '%s', want '%s'", sampler, st.up,
			 st.reason, want);
	else if (dummy.up != 1 || !pt || pt->value != 2)
		snprintf(msg, msglen, "dummy sampler up=%d reads %llu", dummy.up,
			 pt ? (unsigned long long)pt->value : 0ULL);
	else if (!snap)
		snprintf(msg, msglen, "no snapshot");
	else {
		ret = 0;
		for (i = 0; i < hitel_snapshot_len(snap); i++)
			if (strcmp(hitel_snapshot_point(snap, i)->family, family) == 0) {
				snprintf(msg, msglen, "%s has series although %s is down", family,
					 sampler);
				ret = 1;
			}
	}
cleanup:
	hitel_snapshot_free(snap);
	hitel_engine_free(e);
	hitel_log_set_level(HITEL_LOG_WARNING);
	return ret;
}

void btu_check_fails(const char *sampler, const char *key, const char *value, const char *want,
		     const char *family)
{
	char msg[512] = "";

	ck_assert_msg(fails_as(sampler, key, value, want, family, msg, sizeof(msg)) == 0, "%s",
		      msg);
}

void btu_check_fails_without_caps(const char *sampler, const char *family)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct d[2];
		static const int caps[] = { CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON };
		char msg[512] = "";
		size_t i;
		int fd;

		if (syscall(SYS_capget, &h, d) != 0)
			_exit(10);
		for (i = 0; i < 3; i++) {
			d[caps[i] / 32].effective &= ~(1U << (caps[i] % 32));
			d[caps[i] / 32].permitted &= ~(1U << (caps[i] % 32));
		}
		if (syscall(SYS_capset, &h, d) != 0)
			_exit(11);
		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 8, 1, NULL);
		if (fd >= 0 || errno != EPERM)
			_exit(12); /* the kernel must refuse too */
		if (fails_as(sampler, NULL, NULL, "CAP_BPF", family, msg, sizeof(msg)) != 0) {
			fprintf(stderr, "%s\n", msg);
			_exit(1);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died (signal %d)",
		      WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	ck_assert_msg(WEXITSTATUS(status) == 0,
		      "child failed with %d (10 capget, 11 capset, 12 kernel allowed BPF, 1 "
		      "check failed)",
		      WEXITSTATUS(status));
}
