/* SPDX-License-Identifier: MIT */
/*
 * Helper of tests/bench/bench_bpf.sh: loads BPF samplers, prints "ready",
 * waits for SIGINT/SIGTERM, then prints what the samplers recorded in
 * between, one line per series:
 *   hist FAMILY {LABELS} count=N sum=S p50=.. p90=.. p99=.. p999=.. max=..
 *   counter FAMILY {LABELS} value=V
 * and, per histogram family, all its series merged, with labels {*}.
 * Usage: bench_bpf SAMPLER[:key=value...] ...   (e.g. bpf_runqueue bpf_block:attach=raw_tp)
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "hist.h"
#include "registry.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void print_hist(const char *family, const char *labels, const struct hitel_hist *h)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	uint64_t q[4];

	hitel_hist_quantiles(h, qs, 4, q);
	printf("hist %s {%s} count=%llu sum=%llu p50=%llu p90=%llu p99=%llu p999=%llu max=%llu\n",
	       family, labels, (unsigned long long)hitel_hist_count(h),
	       (unsigned long long)hitel_hist_sum(h), (unsigned long long)q[0],
	       (unsigned long long)q[1], (unsigned long long)q[2], (unsigned long long)q[3],
	       (unsigned long long)hitel_hist_max(h));
}

static void print_labels(const struct hitel_point *p)
{
	size_t i;

	printf(" {");
	for (i = 0; i < p->nlabels; i++)
		printf("%s%s=%s", i ? "," : "", p->labels[i].name, p->labels[i].value);
	printf("}");
}

int main(int argc, char **argv)
{
	struct hitel_snapshot *s0, *s1, *w;
	const char *merged_family = NULL;
	struct hitel_hist *merged = NULL;
	struct hitel_engine *e;
	char err[256];
	size_t i;
	int a;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SAMPLER[:key=value...] ...\n", argv[0]);
		return 2;
	}
	e = hitel_engine_new();
	if (!e)
		return 1;
	for (a = 1; a < argc; a++) {
		char *spec = strdup(argv[a]), *save = NULL, *name, *kv;
		struct hitel_sampler *s;

		name = strtok_r(spec, ":", &save);
		s = hitel_engine_sampler_add(e, name);
		if (!s) {
			fprintf(stderr, "sampler %s: %s\n", name, strerror(errno));
			return 1;
		}
		while ((kv = strtok_r(NULL, ":", &save))) {
			char *eq = strchr(kv, '=');

			if (!eq || (*eq = '\0', hitel_sampler_set(s, kv, eq + 1, err, sizeof(err)))) {
				fprintf(stderr, "%s: bad option %s: %s\n", name, kv, eq ? err : "");
				return 1;
			}
		}
		free(spec);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	hitel_engine_run_once(e, hitel_now_ns());
	for (i = 0; i < hitel_engine_sampler_count(e); i++) {
		struct hitel_sampler_status st;

		hitel_engine_sampler_status(e, i, &st);
		if (!st.up) {
			fprintf(stderr, "%s down: %s\n", st.name, st.reason);
			return 1;
		}
	}
	s0 = hitel_engine_snapshot(e);
	printf("ready\n");
	fflush(stdout);
	/* Not pause(): a signal between the test and the call would be lost. */
	while (!stop)
		usleep(50000);
	hitel_engine_run_once(e, hitel_now_ns());
	s1 = hitel_engine_snapshot(e);
	w = hitel_snapshot_delta(s0, s1);
	for (i = 0; w && i < hitel_snapshot_len(w); i++) {
		const struct hitel_point *p = hitel_snapshot_point(w, i);

		if (strncmp(p->family, "hitel/", 6) == 0 && strncmp(p->family, "hitel/bpf", 9) != 0)
			continue;
		if (p->kind == HITEL_KIND_HISTOGRAM && p->hist) {
			char labels[256] = "";
			size_t l, off = 0;

			for (l = 0; l < p->nlabels && off < sizeof(labels); l++)
				off += (size_t)snprintf(labels + off, sizeof(labels) - off, "%s%s=%s",
							l ? "," : "", p->labels[l].name,
							p->labels[l].value);
			print_hist(p->family, labels, p->hist);
			/* Series of a family are consecutive in a snapshot. */
			if (merged && strcmp(merged_family, p->family) != 0) {
				print_hist(merged_family, "*", merged);
				hitel_hist_free(merged);
				merged = NULL;
			}
			if (!merged) {
				merged = hitel_hist_dup(p->hist);
				merged_family = p->family;
			} else {
				hitel_hist_merge(merged, p->hist);
			}
		} else if (p->kind == HITEL_KIND_COUNTER) {
			printf("counter %s", p->family);
			print_labels(p);
			printf(" value=%llu\n", (unsigned long long)p->value);
		}
	}
	if (merged) {
		print_hist(merged_family, "*", merged);
		hitel_hist_free(merged);
	}
	hitel_snapshot_free(w);
	hitel_snapshot_free(s1);
	hitel_snapshot_free(s0);
	hitel_engine_free(e);
	return 0;
}
