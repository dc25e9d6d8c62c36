/* SPDX-License-Identifier: MIT */
/*
 * Series groups (registry.h) against updating each series, the way the
 * engine runs them: a read every 10 ms, after a sleep that leaves the
 * series' cache lines cold. N interfaces of 16 counters each, all idle but
 * one (a host with containers has dozens of veth interfaces, most quiet).
 * The two ways update two registries with the same values in alternate
 * ticks, so both see the same minutes of this machine; the figure is the
 * median time of the update per tick, and their ratio.
 *
 *   bench_group [TICKS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "registry.h"

#define NCOUNTERS 16
#define MAXIF 200

static const char *const names[NCOUNTERS] = {
	"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7",
	"c8", "c9", "c10", "c11", "c12", "c13", "c14", "c15",
};

struct side {
	struct hitel_registry *reg;
	struct hitel_series *s[MAXIF][NCOUNTERS];
	struct hitel_series_group *g[MAXIF];
};

static void side_init(struct side *d, int nif, int grouped)
{
	int i, c;

	d->reg = hitel_registry_new();
	hitel_registry_lock(d->reg);
	for (i = 0; i < nif; i++) {
		char ifname[16];
		struct hitel_label l = {"interface", ifname};

		snprintf(ifname, sizeof(ifname), "veth%d", i);
		for (c = 0; c < NCOUNTERS; c++) {
			struct hitel_family_desc desc = {
				.name = names[c], .help = "", .unit = "", .kind = HITEL_KIND_COUNTER,
			};

			d->s[i][c] = hitel_registry_series(d->reg, &desc, &l, 1);
		}
		d->g[i] = grouped ? hitel_series_group_new(d->reg, d->s[i], NCOUNTERS) : NULL;
	}
	hitel_registry_unlock(d->reg);
}

static void side_free(struct side *d, int nif)
{
	int i;

	hitel_registry_lock(d->reg);
	for (i = 0; i < nif; i++)
		hitel_series_group_free(d->g[i]);
	hitel_registry_unlock(d->reg);
	hitel_registry_free(d->reg);
}

/* One read of every interface; returns its ns. */
static uint64_t side_tick(struct side *d, int nif, uint64_t raw[][NCOUNTERS], uint64_t t)
{
	uint64_t t0 = bench_ns();
	int i, c;

	hitel_registry_lock(d->reg);
	for (i = 0; i < nif; i++) {
		if (d->g[i]) {
			hitel_series_group_counters(d->g[i], raw[i], t);
			continue;
		}
		for (c = 0; c < NCOUNTERS; c++)
			hitel_series_counter(d->s[i][c], raw[i][c], t);
	}
	hitel_registry_unlock(d->reg);
	return bench_ns() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run(int nif, int ticks)
{
	static uint64_t raw[MAXIF][NCOUNTERS];
	struct side plain, grouped;
	uint64_t *tp = calloc((size_t)ticks, sizeof(*tp)), *tg = calloc((size_t)ticks, sizeof(*tg));
	uint64_t start = bench_ns();
	int k;

	if (!tp || !tg)
		exit(1);
	memset(raw, 0, sizeof(raw));
	side_init(&plain, nif, 0);
	side_init(&grouped, nif, 1);
	for (k = 0; k < 2 * ticks; k++) {
		uint64_t due = start + (uint64_t)(k + 1) * 5000000ULL;
		struct timespec ts = {(time_t)(due / 1000000000ULL), (long)(due % 1000000000ULL)};

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		/* Interface 0 moves: bytes and packets both ways. */
		raw[0][0] += 1500 * (uint64_t)(k / 2 + 1);
		raw[0][1] += 1;
		raw[0][8] += 900;
		raw[0][9] += 1;
		/* Each side sees every read, 10 ms apart; they take turns. */
		if (k % 2 == 0)
			tp[k / 2] = side_tick(&plain, nif, raw, due);
		else
			tg[k / 2] = side_tick(&grouped, nif, raw, due - 5000000ULL);
	}
	qsort(tp, (size_t)ticks, sizeof(*tp), cmp_u64);
	qsort(tg, (size_t)ticks, sizeof(*tg), cmp_u64);
	printf("%4d interfaces x %d counters, 1 busy: per series %7.2f us, grouped %7.2f us a "
	       "read (median of %d): %.2fx\n",
	       nif, NCOUNTERS, (double)tp[ticks / 2] / 1e3, (double)tg[ticks / 2] / 1e3, ticks,
	       (double)tg[ticks / 2] / (double)tp[ticks / 2]);
	side_free(&plain, nif);
	side_free(&grouped, nif);
	free(tp);
	free(tg);
}

int main(int argc, char **argv)
{
	int ticks = argc > 1 ? atoi(argv[1]) : 200;

	if (ticks < 1)
		ticks = 200;
	run(1, ticks);
	run(10, ticks);
	run(100, ticks);
	return 0;
}
