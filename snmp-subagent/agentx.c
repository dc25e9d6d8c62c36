/* SPDX-License-Identifier: MIT */
/*
 * HITEL-MIB over net-snmp: an AgentX subagent (or a small agent of its own)
 * whose tables are rebuilt from engine snapshots. See agentx.h for the
 * interface and docs/snmp.md for the MIB.
 *
 * Tables use table_container (binary_array) with one netsnmp_cache shared
 * by the data tables and inserted ABOVE the table_container handler: the
 * cache load rebuilds all their containers at once from one cumulative
 * snapshot and one window, so the tables of one walk agree with each other. (Above the
 * tdata handler, as mib2c's template puts it, the cache gave empty walks.)
 * table_iterator was ten times slower: it rescans every row per request.
 *
 * Everything below that calls net-snmp runs on the agent thread. The only
 * cross-thread path is the trap queue: mutex + a pipe registered with
 * register_readfd(), which agent_check_and_process() services.
 *
 * This file must not include the project's config.h: net-snmp-config.h
 * defines the same PACKAGE* macros.
 */
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/agent/net-snmp-agent-includes.h>
#include <net-snmp/agent/agent_callbacks.h>
#include <net-snmp/agent/agent_trap.h>
#include <net-snmp/agent/table_container.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentx.h"
#include "engine.h"
#include "export.h"
#include "hist.h"
#include "log.h"
#include "registry.h"

#define COMPONENT "snmp"
#define APP_NAME "hitel"
#define DEFAULT_CACHE_MS 5000u
/* Detects a restarted master within two seconds (net-snmp's default: 15). */
#define PING_INTERVAL_S 2
#define TRAP_QUEUE_LEN 64
#define INDEX_MOD 2147483647u /* 2^31 - 1, prime: HitelRowIndex is 1..2^31-1 */
#define LABELS_LEN 256
#define NAME_LEN 64
#define REASON_LEN 256
#define RANK_SCALE 100000.0

/* HITEL-MIB: netSnmpExperimental.4242 */
#define HITEL_OID 1, 3, 6, 1, 4, 1, 8072, 9999, 4242
#define OBJECTS_OID HITEL_OID, 1
static const oid objects_oid[] = { OBJECTS_OID };
static const oid window_oid[] = { OBJECTS_OID, 1 };
static const oid number_oid[] = { OBJECTS_OID, 2 };
static const oid metric_oid[] = { OBJECTS_OID, 3 };
static const oid pct_oid[] = { OBJECTS_OID, 4 };
static const oid bucket_oid[] = { OBJECTS_OID, 5 };
static const oid sampler_oid[] = { OBJECTS_OID, 6 };
static const oid sampler_entry_oid[] = { OBJECTS_OID, 6, 1 };
static const oid name_oid[] = { OBJECTS_OID, 7 };
static const oid notif_down_oid[] = { HITEL_OID, 0, 1 };
static const oid notif_up_oid[] = { HITEL_OID, 0, 2 };
static const oid snmptrap_oid[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 };

enum metric_col {
	M_NAME = 2,
	M_LABELS,
	M_KIND,
	M_UNIT,
	M_SCALE,
	M_VALUE,
	M_VALUE32,
	M_SUM,
	M_WMIN,
	M_WMAX,
	M_WCOUNT,
};
enum pct_col { P_VALUE = 2, P_VALUE32 };
enum name_col { N_NAME = 1 };
enum bucket_col { B_UPPER = 2, B_COUNT };
enum sampler_col {
	S_NAME = 2,
	S_STATUS,
	S_REASON,
	S_RATE,
	S_READS,
	S_ERRORS,
	S_REFRESH,
};

/* Rows start with their netsnmp_index key (table_container's contract). */
struct metric_row {
	netsnmp_index key;
	oid oids[1];
	const char *name, *unit; /* registry strings: live as long as the engine */
	int scale, kind;
	int has_dist; /* the series keeps a distribution (window columns) */
	uint64_t value, sum, wmin, wmax, wcount;
	char labels[LABELS_LEN];
};

struct pct_row {
	netsnmp_index key;
	oid oids[2];
	uint64_t value;
};

struct name_row {
	netsnmp_index key;
	oid oids[1];
	const char *name; /* into hitel_agentx.labels */
};

struct bucket_row {
	netsnmp_index key;
	oid oids[2];
	uint64_t upper, count;
};

struct sampler_row {
	netsnmp_index key;
	oid oids[1];
	int up;
	uint32_t rate;
	uint64_t reads, errors, refresh_ns;
	char name[NAME_LEN];
	char reason[REASON_LEN];
};

/* One table's rows: one allocation per rebuild, held by the container. */
struct table {
	netsnmp_container *c;
	void *rows;
	size_t n;
};

struct trap_event {
	int up;
	char name[NAME_LEN];
	char reason[REASON_LEN];
};

struct hitel_agentx {
	/* Read by the agent thread under engine_lock, which it holds for as
	 * long as it uses the engine; hitel_agentx_set_engine() swaps it. */
	pthread_mutex_t engine_lock;
	struct hitel_engine *engine;
	char *socket, *listen, *community, *trap_sink;
	unsigned int cache_ms;
	uint64_t window_ns;
	struct hitel_export_opts xo;
	/* Percentile ranks (parts per 100000), deduplicated, with labels. */
	double q[HITEL_EXPORT_MAX_PERCENTILES];
	uint32_t rank[HITEL_EXPORT_MAX_PERCENTILES];
	char labels[HITEL_EXPORT_MAX_PERCENTILES][16];
	size_t nrank;

	pthread_t thread;
	int pipe_rd, pipe_wr;

	/* Start handshake. */
	pthread_mutex_t lock; /* also guards the trap queue, quit, connected */
	pthread_cond_t cond;
	int started, start_err;
	int quit;
	int connected; /* somewhere to send traps: master session up, or own agent */
	struct trap_event queue[TRAP_QUEUE_LEN];
	size_t qhead, qlen;
	uint64_t dropped;

	/* Agent thread only. */
	netsnmp_cache *cache;
	struct table metrics, pcts, buckets, samplers, names;
	uint32_t window_ms; /* 0 while serving the cumulative fallback */
	uint64_t dropped_reported;
	char logbuf[512];
	size_t loglen;
};

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static int running;
/* net-snmp cannot be initialised again after snmp_shutdown() ("ignoring
 * extra call to init_agent"): one start per process. */
static int used;
/* The running instance, for net-snmp callbacks on the agent thread: their
 * client argument cannot carry it, because snmp_shutdown() free()s every
 * non-NULL client argument. */
static struct hitel_agentx *current;

/* ---- logging: net-snmp's messages go to hitel_log ----------------------- */

static enum hitel_log_level map_priority(int pri)
{
	if (pri <= LOG_ERR)
		return HITEL_LOG_ERR;
	if (pri == LOG_WARNING)
		return HITEL_LOG_WARNING;
	if (pri == LOG_NOTICE)
		return HITEL_LOG_NOTICE;
	if (pri == LOG_INFO)
		return HITEL_LOG_INFO;
	return HITEL_LOG_DEBUG;
}

/* net-snmp sometimes logs one line in several calls: emit whole lines. */
static int log_cb(int major, int minor, void *serverarg, void *clientarg)
{
	const struct snmp_log_message *m = serverarg;
	struct hitel_agentx *a = current;
	const char *p;

	(void)major;
	(void)minor;
	(void)clientarg;
	if (!a || !m || !m->msg)
		return 0;
	for (p = m->msg; *p; p++) {
		if (*p == '\n' || a->loglen == sizeof(a->logbuf) - 1) {
			a->logbuf[a->loglen] = '\0';
			if (a->loglen)
				hitel_log(map_priority(m->priority), COMPONENT, "%s", a->logbuf);
			a->loglen = 0;
			if (*p == '\n')
				continue;
		}
		a->logbuf[a->loglen++] = *p;
	}
	return 0;
}

/* ---- stable row indexes --------------------------------------------------- */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct id_pos {
	uint64_t id;
	size_t pos;
};

static int cmp_id_pos(const void *x, const void *y)
{
	const struct id_pos *a = x, *b = y;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/*
 * out[i] = (ids[i] mod 2^31-1) + 1, probing to the next free index on a
 * collision, with slots taken in id order: the same set of ids gives the
 * same indexes in every process. Returns 0 or -ENOMEM.
 */
static int assign_indexes(const uint64_t *ids, size_t n, uint32_t *out)
{
	struct id_pos *ord = NULL;
	uint32_t *set = NULL;
	size_t cap = 16, i;
	int err = -ENOMEM;

	if (n == 0)
		return 0;
	while (cap < 2 * n)
		cap <<= 1;
	ord = malloc(n * sizeof(*ord));
	set = calloc(cap, sizeof(*set)); /* 0: empty (indexes start at 1) */
	if (!ord || !set)
		goto cleanup;
	for (i = 0; i < n; i++) {
		ord[i].id = ids[i];
		ord[i].pos = i;
	}
	qsort(ord, n, sizeof(*ord), cmp_id_pos);
	for (i = 0; i < n; i++) {
		uint32_t idx = (uint32_t)(ord[i].id % INDEX_MOD) + 1;

		for (;;) {
			size_t h = (idx * 2654435761u) & (cap - 1);

			while (set[h] && set[h] != idx)
				h = (h + 1) & (cap - 1);
			if (!set[h]) {
				set[h] = idx;
				break;
			}
			idx = idx % INDEX_MOD + 1;
		}
		out[ord[i].pos] = idx;
	}
	err = 0;
cleanup:
	free(ord);
	free(set);
	return err;
}

/* Index of every sampler of the engine, by the same rule. names[i] gets
 * out[i]; n is the engine's sampler count. */
static int sampler_indexes(struct hitel_engine *e, struct hitel_sampler_status *st, size_t n,
			   uint32_t *out)
{
	uint64_t *ids;
	size_t i;
	int err;

	ids = malloc((n ? n : 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (hitel_engine_sampler_status(e, i, &st[i]) < 0) {
			memset(&st[i], 0, sizeof(st[i]));
			st[i].name = "";
		}
		ids[i] = fnv1a(st[i].name ? st[i].name : "");
	}
	err = assign_indexes(ids, n, out);
	free(ids);
	return err;
}

/* ---- cache load: rebuild every table from the engine --------------------- */

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static void format_labels(const struct hitel_point *p, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < p->nlabels && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s=%s", i ? "," : "", p->labels[i].name,
				 p->labels[i].value);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static int cmp_sampler_row(const void *x, const void *y)
{
	const struct sampler_row *a = x, *b = y;

	return (a->oids[0] > b->oids[0]) - (a->oids[0] < b->oids[0]);
}

static const struct hitel_point *window_point(const struct hitel_snapshot *win,
					      const struct id_pos *wix, size_t wn, uint64_t id)
{
	size_t lo = 0, hi = wn;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (wix[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < wn && wix[lo].id == id)
		return hitel_snapshot_point(win, wix[lo].pos);
	return NULL;
}

/* Everything one rebuild produces, handed to the containers at the end. */
struct build {
	struct metric_row *m;
	struct pct_row *p;
	struct bucket_row *b;
	struct sampler_row *s;
	size_t nm, np, nb, ns, capb;
};

static void build_free(struct build *b)
{
	free(b->m);
	free(b->p);
	free(b->b);
	free(b->s);
}

static int add_buckets(struct hitel_agentx *a, struct build *b, uint32_t midx,
		       const struct hitel_hist *h)
{
	struct hitel_hist *coarse = NULL;
	const struct hitel_hist *src = h;
	struct hitel_hist_bucket hb;
	unsigned int cursor = 0;
	uint64_t cum = 0;

	if (hitel_hist_grouping_power(h) > a->xo.bucket_grouping_power) {
		coarse = hitel_hist_downsample(h, a->xo.bucket_grouping_power);
		if (!coarse)
			return -ENOMEM;
		src = coarse;
	}
	while (hitel_hist_next(src, &cursor, &hb)) {
		struct bucket_row *r;

		if (b->nb == b->capb) {
			size_t cap = b->capb ? 2 * b->capb : 256;
			struct bucket_row *nr = realloc(b->b, cap * sizeof(*nr));

			if (!nr) {
				hitel_hist_free(coarse);
				return -ENOMEM;
			}
			b->b = nr;
			b->capb = cap;
		}
		cum += hb.count;
		r = &b->b[b->nb++];
		memset(r, 0, sizeof(*r));
		r->oids[0] = midx;
		r->oids[1] = hb.index + 1;
		r->upper = hb.upper;
		r->count = cum;
	}
	hitel_hist_free(coarse);
	return 0;
}

/* Metric, percentile and bucket rows, in metric index order. */
static int build_metrics(struct hitel_agentx *a, struct build *b, const struct hitel_snapshot *cum,
			 const struct hitel_snapshot *win)
{
	size_t n = hitel_snapshot_len(cum), wn = win ? hitel_snapshot_len(win) : 0;
	struct id_pos *wix = NULL, *ord = NULL;
	uint64_t *ids = NULL, qv[HITEL_EXPORT_MAX_PERCENTILES];
	uint32_t *idx = NULL;
	size_t i, j, k, nhist = 0;
	int err = -ENOMEM;

	ids = malloc((n ? n : 1) * sizeof(*ids));
	idx = malloc((n ? n : 1) * sizeof(*idx));
	ord = malloc((n ? n : 1) * sizeof(*ord));
	wix = malloc((wn ? wn : 1) * sizeof(*wix));
	if (!ids || !idx || !ord || !wix)
		goto cleanup;
	for (i = 0; i < n; i++) {
		const struct hitel_point *p = hitel_snapshot_point(cum, i);

		ids[i] = p->id;
		nhist += p->hist != NULL;
	}
	err = assign_indexes(ids, n, idx);
	if (err)
		goto cleanup;
	for (i = 0; i < n; i++) {
		ord[i].id = idx[i];
		ord[i].pos = i;
	}
	qsort(ord, n, sizeof(*ord), cmp_id_pos);
	for (i = 0; i < wn; i++) {
		wix[i].id = hitel_snapshot_point(win, i)->id;
		wix[i].pos = i;
	}
	qsort(wix, wn, sizeof(*wix), cmp_id_pos);

	err = -ENOMEM;
	b->m = calloc(n ? n : 1, sizeof(*b->m));
	b->p = calloc(nhist * a->nrank + 1, sizeof(*b->p));
	if (!b->m || !b->p)
		goto cleanup;
	for (k = 0; k < n; k++) {
		const struct hitel_point *p = hitel_snapshot_point(cum, ord[k].pos);
		const struct hitel_hist *dist = p->hist;
		struct metric_row *r = &b->m[k];
		uint32_t midx = (uint32_t)ord[k].id;

		r->oids[0] = midx;
		r->name = p->family;
		r->unit = p->unit ? p->unit : "";
		r->scale = p->scale;
		r->kind = p->kind;
		r->value = p->value;
		format_labels(p, r->labels, sizeof(r->labels));
		if (!p->hist)
			continue;
		r->has_dist = 1;
		r->sum = hitel_hist_sum(p->hist);
		if (win) {
			/* Absent from the window: created after it ended. */
			const struct hitel_point *wp = window_point(win, wix, wn, p->id);

			dist = wp ? wp->hist : NULL;
		}
		memset(qv, 0, sizeof(qv));
		if (dist && hitel_hist_count(dist) > 0) {
			r->wmin = hitel_hist_min(dist);
			r->wmax = hitel_hist_max(dist);
			r->wcount = hitel_hist_count(dist);
			hitel_hist_quantiles(dist, a->q, a->nrank, qv);
		}
		for (j = 0; j < a->nrank; j++) {
			struct pct_row *pr = &b->p[b->np++];

			pr->oids[0] = midx;
			pr->oids[1] = a->rank[j];
			pr->value = qv[j];
		}
		if (a->xo.buckets && p->kind == HITEL_KIND_HISTOGRAM) {
			err = add_buckets(a, b, midx, p->hist);
			if (err)
				goto cleanup;
		}
	}
	b->nm = n;
	err = 0;
cleanup:
	free(ids);
	free(idx);
	free(ord);
	free(wix);
	return err;
}

static int build_samplers(struct hitel_agentx *a, struct build *b,
			  const struct hitel_snapshot *dist)
{
	size_t n = hitel_engine_sampler_count(a->engine), i;
	struct hitel_sampler_status *st;
	uint32_t *idx;
	int err = -ENOMEM;

	st = calloc(n ? n : 1, sizeof(*st));
	idx = calloc(n ? n : 1, sizeof(*idx));
	b->s = calloc(n ? n : 1, sizeof(*b->s));
	if (!st || !idx || !b->s)
		goto cleanup;
	err = sampler_indexes(a->engine, st, n, idx);
	if (err)
		goto cleanup;
	for (i = 0; i < n; i++) {
		struct sampler_row *r = &b->s[i];
		const struct hitel_point *p;
		char sel[NAME_LEN + 16];

		r->oids[0] = idx[i];
		snprintf(r->name, sizeof(r->name), "%s", st[i].name ? st[i].name : "");
		snprintf(r->reason, sizeof(r->reason), "%s", st[i].reason);
		r->up = st[i].up;
		r->rate = st[i].rate_hz;
		r->reads = st[i].reads;
		r->errors = st[i].errors;
		snprintf(sel, sizeof(sel), "sampler=%s", r->name);
		p = dist ? hitel_snapshot_find(dist, "hitel/sampler/refresh/time", sel) : NULL;
		if (p && p->hist && hitel_hist_count(p->hist))
			r->refresh_ns = hitel_hist_sum(p->hist) / hitel_hist_count(p->hist);
	}
	b->ns = n;
	qsort(b->s, n, sizeof(*b->s), cmp_sampler_row);
	err = 0;
cleanup:
	free(st);
	free(idx);
	return err;
}

/* Hand the new rows to a container; the old rows go only after the
 * container forgot them. */
static void table_install(struct table *t, void *rows, size_t n, size_t size, size_t noids)
{
	size_t i;

	if (t->c)
		CONTAINER_CLEAR(t->c, NULL, NULL);
	free(t->rows);
	t->rows = rows;
	t->n = n;
	for (i = 0; t->c && i < n; i++) {
		netsnmp_index *key = (netsnmp_index *)((char *)rows + i * size);

		key->len = noids;
		key->oids = (oid *)(key + 1);
		CONTAINER_INSERT(t->c, key);
	}
}

static int cache_load(netsnmp_cache *cache, void *magic)
{
	struct hitel_agentx *a = magic;
	struct hitel_snapshot *cum, *win;
	uint64_t t0 = hitel_now_ns();
	struct build b;
	int err;

	(void)cache;
	memset(&b, 0, sizeof(b));
	pthread_mutex_lock(&a->engine_lock);
	cum = hitel_engine_snapshot(a->engine);
	if (!cum) {
		hitel_log(HITEL_LOG_ERR, COMPONENT, "engine snapshot failed: %s", strerror(errno));
		pthread_mutex_unlock(&a->engine_lock);
		return -1;
	}
	/* NULL (EAGAIN) until a window has completed: serve the cumulative
	 * distributions meanwhile. */
	win = hitel_engine_window(a->engine, a->window_ns);
	err = build_metrics(a, &b, cum, win);
	if (!err)
		err = build_samplers(a, &b, win ? win : cum);
	if (err) {
		/* Keep serving the previous rows. */
		hitel_log(HITEL_LOG_ERR, COMPONENT, "table rebuild failed: %s", strerror(-err));
		build_free(&b);
		goto cleanup;
	}
	table_install(&a->metrics, b.m, b.nm, sizeof(*b.m), 1);
	table_install(&a->pcts, b.p, b.np, sizeof(*b.p), 2);
	table_install(&a->buckets, b.b, b.nb, sizeof(*b.b), 2);
	table_install(&a->samplers, b.s, b.ns, sizeof(*b.s), 1);
	/* The nominal length: the snapshots' own times jitter by a tick. */
	a->window_ms = win ? a->cache_ms : 0;
	hitel_log(HITEL_LOG_DEBUG, COMPONENT,
		  "tables rebuilt in %.2f ms: %zu series, %zu percentiles, %zu buckets%s",
		  (double)(hitel_now_ns() - t0) / 1e6, b.nm, b.np, b.nb,
		  win ? "" : " (no window yet: cumulative)");
cleanup:
	pthread_mutex_unlock(&a->engine_lock);
	hitel_snapshot_free(win);
	hitel_snapshot_free(cum);
	return err ? -1 : 0;
}

/* The rows stay until the next load replaces them (the cache is flagged not
 * to free before loading or on expiry), so there is nothing to do here. */
static void cache_free(netsnmp_cache *cache, void *magic)
{
	(void)cache;
	(void)magic;
}

/* ---- request handlers (GET only: table_container turns GETNEXT into GET) */

static void set_c64(netsnmp_variable_list *vb, uint64_t v)
{
	struct counter64 c;

	c.high = (u_long)(v >> 32);
	c.low = (u_long)(v & 0xffffffffu);
	snmp_set_var_typed_value(vb, ASN_COUNTER64, (const u_char *)&c, sizeof(c));
}

static void set_str(netsnmp_variable_list *vb, const char *s)
{
	size_t n = strlen(s);

	snmp_set_var_typed_value(vb, ASN_OCTET_STR, (const u_char *)s, n > 255 ? 255 : n);
}

static void set_u32(netsnmp_variable_list *vb, u_char type, uint64_t v)
{
	snmp_set_var_typed_integer(vb, type, (long)clamp32(v));
}

/* Fill vb with column col of row: 0, 1 when the row has no such cell, -1
 * for an unknown column. */
typedef int (*column_fn)(netsnmp_variable_list *vb, const void *row, unsigned int col);

static int table_get(netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests,
		     column_fn fn)
{
	netsnmp_request_info *r;

	if (reqinfo->mode != MODE_GET)
		return SNMP_ERR_NOERROR;
	for (r = requests; r; r = r->next) {
		netsnmp_table_request_info *ti;
		const void *row;

		if (r->processed)
			continue;
		row = netsnmp_container_table_row_extract(r);
		ti = netsnmp_extract_table_info(r);
		if (!row || !ti) {
			netsnmp_set_request_error(reqinfo, r, SNMP_NOSUCHINSTANCE);
			continue;
		}
		/* A cell that does not apply to this row: noSuchInstance, which
		 * the table helper turns into "try the next row" for GETNEXT,
		 * inside this agent (no extra AgentX round trip). */
		switch (fn(r->requestvb, row, ti->colnum)) {
		case 0:
			break;
		case 1:
			netsnmp_set_request_error(reqinfo, r, SNMP_NOSUCHINSTANCE);
			break;
		default:
			netsnmp_set_request_error(reqinfo, r, SNMP_NOSUCHOBJECT);
			break;
		}
	}
	return SNMP_ERR_NOERROR;
}

static int metric_column(netsnmp_variable_list *vb, const void *row, unsigned int col)
{
	const struct metric_row *m = row;

	switch (col) {
	case M_NAME:
		set_str(vb, m->name);
		break;
	case M_LABELS:
		set_str(vb, m->labels);
		break;
	case M_KIND:
		/* HITEL_KIND_* are 0-based; the MIB's enumeration starts at 1. */
		snmp_set_var_typed_integer(vb, ASN_INTEGER, m->kind + 1);
		break;
	case M_UNIT:
		set_str(vb, m->unit);
		break;
	case M_SCALE:
		snmp_set_var_typed_integer(vb, ASN_INTEGER, m->scale);
		break;
	case M_VALUE:
		set_c64(vb, m->value);
		break;
	case M_VALUE32:
		set_u32(vb, ASN_GAUGE, m->value);
		break;
	case M_SUM:
		if (m->kind != HITEL_KIND_HISTOGRAM || !m->has_dist)
			return 1;
		set_c64(vb, m->sum);
		break;
	case M_WMIN:
		if (!m->has_dist)
			return 1;
		set_c64(vb, m->wmin);
		break;
	case M_WMAX:
		if (!m->has_dist)
			return 1;
		set_c64(vb, m->wmax);
		break;
	case M_WCOUNT:
		if (!m->has_dist)
			return 1;
		set_u32(vb, ASN_GAUGE, m->wcount);
		break;
	default:
		return -1;
	}
	return 0;
}

static int pct_column(netsnmp_variable_list *vb, const void *row, unsigned int col)
{
	const struct pct_row *p = row;

	switch (col) {
	case P_VALUE:
		set_c64(vb, p->value);
		break;
	case P_VALUE32:
		set_u32(vb, ASN_GAUGE, p->value);
		break;
	default:
		return -1;
	}
	return 0;
}

static int bucket_column(netsnmp_variable_list *vb, const void *row, unsigned int col)
{
	const struct bucket_row *b = row;

	switch (col) {
	case B_UPPER:
		set_c64(vb, b->upper);
		break;
	case B_COUNT:
		set_c64(vb, b->count);
		break;
	default:
		return -1;
	}
	return 0;
}

static int name_column(netsnmp_variable_list *vb, const void *row, unsigned int col)
{
	const struct name_row *n = row;

	if (col != N_NAME)
		return -1;
	set_str(vb, n->name);
	return 0;
}

static int sampler_column(netsnmp_variable_list *vb, const void *row, unsigned int col)
{
	const struct sampler_row *s = row;

	switch (col) {
	case S_NAME:
		set_str(vb, s->name);
		break;
	case S_STATUS:
		snmp_set_var_typed_integer(vb, ASN_INTEGER, s->up ? 1 : 2);
		break;
	case S_REASON:
		set_str(vb, s->reason);
		break;
	case S_RATE:
		set_u32(vb, ASN_UNSIGNED, s->rate);
		break;
	case S_READS:
		set_c64(vb, s->reads);
		break;
	case S_ERRORS:
		set_c64(vb, s->errors);
		break;
	case S_REFRESH:
		set_u32(vb, ASN_GAUGE, s->refresh_ns);
		break;
	default:
		return -1;
	}
	return 0;
}

static int metric_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			  netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	(void)reg;
	return table_get(reqinfo, requests, metric_column);
}

static int pct_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
		       netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	(void)reg;
	return table_get(reqinfo, requests, pct_column);
}

static int bucket_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			  netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	(void)reg;
	return table_get(reqinfo, requests, bucket_column);
}

static int sampler_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			   netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	(void)reg;
	return table_get(reqinfo, requests, sampler_column);
}

static int name_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	(void)reg;
	return table_get(reqinfo, requests, name_column);
}

/* Scalars read the same cache as the tables. */
static int scalar_get(netsnmp_handler_registration *reg, netsnmp_agent_request_info *reqinfo,
		      netsnmp_request_info *requests, int window)
{
	struct hitel_agentx *a = reg->my_reg_void;
	netsnmp_request_info *r;

	if (reqinfo->mode != MODE_GET)
		return SNMP_ERR_NOERROR;
	netsnmp_cache_check_and_reload(a->cache);
	for (r = requests; r; r = r->next) {
		if (window)
			set_u32(r->requestvb, ASN_UNSIGNED, a->window_ms);
		else
			set_u32(r->requestvb, ASN_GAUGE, a->metrics.n);
	}
	return SNMP_ERR_NOERROR;
}

static int window_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			  netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	return scalar_get(reg, reqinfo, requests, 1);
}

static int number_handler(netsnmp_mib_handler *h, netsnmp_handler_registration *reg,
			  netsnmp_agent_request_info *reqinfo, netsnmp_request_info *requests)
{
	(void)h;
	return scalar_get(reg, reqinfo, requests, 0);
}

/* ---- registration --------------------------------------------------------- */

/* A read-only table of unsigned indexes over t's container; with the shared
 * cache unless it is static (cached == 0). Columns mincol..maxcol. */
static int register_table(struct hitel_agentx *a, const char *name, const oid *toid, size_t len,
			  Netsnmp_Node_Handler *fn, struct table *t, int nindex,
			  unsigned int mincol, unsigned int maxcol, int cached)
{
	netsnmp_handler_registration *reg;
	netsnmp_table_registration_info *ti;
	netsnmp_mib_handler *cache_h;
	int i, flag_err = 0;

	t->c = netsnmp_container_find("table_container");
	if (!t->c)
		return -ENOMEM;
	/* Rows arrive unique and sorted: skip the duplicate check, which
	 * would sort the array on every insert. */
	CONTAINER_SET_OPTIONS(t->c, CONTAINER_KEY_ALLOW_DUPLICATES, flag_err);
	(void)flag_err;
	reg = netsnmp_create_handler_registration(name, fn, toid, len, HANDLER_CAN_RONLY);
	ti = SNMP_MALLOC_TYPEDEF(netsnmp_table_registration_info);
	if (!reg || !ti) {
		free(ti);
		return -ENOMEM;
	}
	reg->my_reg_void = a;
	for (i = 0; i < nindex; i++)
		netsnmp_table_helper_add_index(ti, ASN_UNSIGNED);
	ti->min_column = mincol;
	ti->max_column = maxcol;
	if (netsnmp_container_table_register(reg, ti, t->c, TABLE_CONTAINER_KEY_NETSNMP_INDEX) !=
	    SNMPERR_SUCCESS)
		return -EINVAL;
	if (!cached)
		return 0;
	cache_h = netsnmp_cache_handler_get(a->cache);
	if (!cache_h)
		return -ENOMEM;
	netsnmp_cache_handler_owns_cache(cache_h);
	/* Above table_container, so the rows exist before it looks them up. */
	if (netsnmp_inject_handler_before(reg, cache_h, "table_container") != SNMPERR_SUCCESS)
		return -EINVAL;
	return 0;
}

static int register_scalar(struct hitel_agentx *a, const char *name, Netsnmp_Node_Handler *fn,
			   const oid *soid, size_t len)
{
	netsnmp_handler_registration *reg;

	reg = netsnmp_create_handler_registration(name, fn, soid, len, HANDLER_CAN_RONLY);
	if (!reg)
		return -ENOMEM;
	reg->my_reg_void = a;
	return netsnmp_register_scalar(reg) == MIB_REGISTERED_OK ? 0 : -EINVAL;
}

/* The percentile names only change with the options: filled once. */
static int fill_names(struct hitel_agentx *a)
{
	struct name_row *rows;
	size_t i;

	rows = calloc(a->nrank ? a->nrank : 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (i = 0; i < a->nrank; i++) {
		rows[i].oids[0] = a->rank[i];
		rows[i].name = a->labels[i];
	}
	table_install(&a->names, rows, a->nrank, sizeof(*rows), 1);
	return 0;
}

static int register_hitel_mib(struct hitel_agentx *a)
{
	unsigned int timeout_s = (a->cache_ms + 999) / 1000;
	int err;

	a->cache = netsnmp_cache_create((int)timeout_s, cache_load, cache_free, objects_oid,
					OID_LENGTH(objects_oid));
	if (!a->cache)
		return -ENOMEM;
	a->cache->magic = a;
	a->cache->flags = NETSNMP_CACHE_DONT_FREE_BEFORE_LOAD | NETSNMP_CACHE_DONT_FREE_EXPIRED |
			  NETSNMP_CACHE_DONT_AUTO_RELEASE;
	/* Column 1 of the first four tables is their not-accessible index. */
	err = register_table(a, "hitelMetricTable", metric_oid, OID_LENGTH(metric_oid),
			     metric_handler, &a->metrics, 1, M_NAME, M_WCOUNT, 1);
	if (!err)
		err = register_table(a, "hitelPercentileTable", pct_oid, OID_LENGTH(pct_oid),
				     pct_handler, &a->pcts, 2, P_VALUE, P_VALUE32, 1);
	if (!err)
		err = register_table(a, "hitelBucketTable", bucket_oid, OID_LENGTH(bucket_oid),
				     bucket_handler, &a->buckets, 2, B_UPPER, B_COUNT, 1);
	if (!err)
		err = register_table(a, "hitelSamplerTable", sampler_oid, OID_LENGTH(sampler_oid),
				     sampler_handler, &a->samplers, 1, S_NAME, S_REFRESH, 1);
	if (!err)
		err = register_table(a, "hitelPercentileNameTable", name_oid, OID_LENGTH(name_oid),
				     name_handler, &a->names, 1, N_NAME, N_NAME, 0);
	if (!err)
		err = fill_names(a);
	if (!err)
		err = register_scalar(a, "hitelWindowLength", window_handler, window_oid,
				      OID_LENGTH(window_oid));
	if (!err)
		err = register_scalar(a, "hitelMetricNumber", number_handler, number_oid,
				      OID_LENGTH(number_oid));
	return err;
}

/* ---- traps ---------------------------------------------------------------- */

static void send_trap(struct hitel_agentx *a, const struct trap_event *ev)
{
	size_t n, i;
	netsnmp_variable_list *vars = NULL;
	struct hitel_sampler_status *st;
	uint32_t *idx, sidx = 0;
	oid col[OID_LENGTH(sampler_entry_oid) + 2];
	size_t clen = OID_LENGTH(sampler_entry_oid) + 2;
	const oid *notif = ev->up ? notif_up_oid : notif_down_oid;
	long status = ev->up ? 1 : 2;

	/* The varbinds name the sampler's row, so its index must be the one
	 * the sampler table uses. */
	pthread_mutex_lock(&a->engine_lock);
	n = hitel_engine_sampler_count(a->engine);
	st = calloc(n ? n : 1, sizeof(*st));
	idx = calloc(n ? n : 1, sizeof(*idx));
	if (st && idx && sampler_indexes(a->engine, st, n, idx) == 0) {
		for (i = 0; i < n; i++)
			if (st[i].name && strcmp(st[i].name, ev->name) == 0)
				sidx = idx[i];
	}
	pthread_mutex_unlock(&a->engine_lock);
	free(st);
	free(idx);
	if (!sidx)
		sidx = (uint32_t)(fnv1a(ev->name) % INDEX_MOD) + 1;

	memcpy(col, sampler_entry_oid, sizeof(sampler_entry_oid));
	col[clen - 1] = sidx;
	snmp_varlist_add_variable(&vars, snmptrap_oid, OID_LENGTH(snmptrap_oid), ASN_OBJECT_ID,
				  (const u_char *)notif, OID_LENGTH(notif_down_oid) * sizeof(oid));
	col[clen - 2] = S_NAME;
	snmp_varlist_add_variable(&vars, col, clen, ASN_OCTET_STR, (const u_char *)ev->name,
				  strlen(ev->name));
	col[clen - 2] = S_STATUS;
	snmp_varlist_add_variable(&vars, col, clen, ASN_INTEGER, (const u_char *)&status,
				  sizeof(status));
	col[clen - 2] = S_REASON;
	snmp_varlist_add_variable(&vars, col, clen, ASN_OCTET_STR, (const u_char *)ev->reason,
				  strlen(ev->reason));
	send_v2trap(vars);
	snmp_free_varbind(vars);
	hitel_log(HITEL_LOG_INFO, COMPONENT, "sent %s for sampler %s",
		  ev->up ? "hitelSamplerUp" : "hitelSamplerDown", ev->name);
}

/* Send what waits, if there is somewhere to send it. Agent thread. */
static void flush_traps(struct hitel_agentx *a)
{
	struct trap_event ev;
	uint64_t dropped;

	for (;;) {
		pthread_mutex_lock(&a->lock);
		dropped = a->dropped;
		if (!a->connected || a->qlen == 0) {
			pthread_mutex_unlock(&a->lock);
			break;
		}
		ev = a->queue[a->qhead];
		a->qhead = (a->qhead + 1) % TRAP_QUEUE_LEN;
		a->qlen--;
		pthread_mutex_unlock(&a->lock);
		send_trap(a, &ev);
	}
	if (dropped != a->dropped_reported) {
		hitel_log(HITEL_LOG_WARNING, COMPONENT,
			  "%llu sampler notifications dropped: more than %d waited for the master",
			  (unsigned long long)(dropped - a->dropped_reported), TRAP_QUEUE_LEN);
		a->dropped_reported = dropped;
	}
}

static void wake(struct hitel_agentx *a)
{
	char c = 1;

	/* Non-blocking: a full pipe already holds a wake-up. */
	if (write(a->pipe_wr, &c, 1) < 0 && errno != EAGAIN)
		hitel_log(HITEL_LOG_WARNING, COMPONENT, "wake-up pipe: %s", strerror(errno));
}

static void pipe_readable(int fd, void *data)
{
	struct hitel_agentx *a = data;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	flush_traps(a);
}

void hitel_agentx_sampler_status(struct hitel_agentx *a, const struct hitel_sampler_status *st)
{
	struct trap_event *ev;

	if (!a || !st)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->qlen == TRAP_QUEUE_LEN) {
		a->qhead = (a->qhead + 1) % TRAP_QUEUE_LEN;
		a->qlen--;
		a->dropped++;
	}
	ev = &a->queue[(a->qhead + a->qlen) % TRAP_QUEUE_LEN];
	a->qlen++;
	ev->up = st->up;
	snprintf(ev->name, sizeof(ev->name), "%s", st->name ? st->name : "");
	snprintf(ev->reason, sizeof(ev->reason), "%s", st->reason);
	pthread_mutex_unlock(&a->lock);
	wake(a);
}

/* SNMPD_CALLBACK_INDEX_START/STOP: the AgentX session came or went. */
static int session_cb(int major, int minor, void *serverarg, void *clientarg)
{
	struct hitel_agentx *a = current;

	(void)major;
	(void)serverarg;
	(void)clientarg;
	pthread_mutex_lock(&a->lock);
	a->connected = minor == SNMPD_CALLBACK_INDEX_START;
	pthread_mutex_unlock(&a->lock);
	/* Flush from the main loop, after net-snmp has finished re-registering
	 * our subtrees, rather than from inside its callback. */
	if (minor == SNMPD_CALLBACK_INDEX_START)
		wake(a);
	return 0;
}

/* ---- the agent thread ----------------------------------------------------- */

/* Feed one snmpd.conf line to net-snmp's parser. */
static int config_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int config_line(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	netsnmp_config(line);
	return 0;
}

static int agent_init(struct hitel_agentx *a)
{
	int err;

	netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
	snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, log_cb, NULL);
	/* No files: everything comes from our options, and nothing is written
	 * under /var/lib/snmp at exit. */
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_PERSIST_STATE, 1);
	/* Alarms (AgentX pings, reconnects) through select() timeouts, not a
	 * process-wide SIGALRM and setitimer. */
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_ALARM_DONT_USE_SIG, 1);
	if (a->listen) {
		netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 0);
		netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_MASTER,
				       0);
		netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_PORTS, a->listen);
		/* Not one info line per request. */
		netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID,
				       NETSNMP_DS_AGENT_DONT_LOG_TCPWRAPPERS_CONNECTS, 1);
	} else {
		netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_ROLE, 1);
	}
	if (init_agent(APP_NAME) != 0) {
		hitel_log(HITEL_LOG_ERR, COMPONENT, "init_agent failed");
		return -EINVAL;
	}
	if (!a->listen) {
		/* After init_agent, which sets the default ping interval (15 s). */
		if (a->socket)
			netsnmp_ds_set_string(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_X_SOCKET,
					      a->socket);
		netsnmp_ds_set_int(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_AGENTX_PING_INTERVAL,
				   PING_INTERVAL_S);
	}
	err = register_hitel_mib(a);
	if (err) {
		hitel_log(HITEL_LOG_ERR, COMPONENT, "cannot register HITEL-MIB: %s",
			  strerror(-err));
		return err;
	}
	if (a->listen) {
		/* Read-only access to our subtree for one community, from
		 * anywhere the listen address is reachable (vacm_conf's
		 * "rocommunity"; without VACM configuration nothing is
		 * answered). */
		err = config_line("rocommunity %s default .1.3.6.1.4.1.8072.9999.4242",
				  a->community);
		if (!err && a->trap_sink)
			err = config_line("trap2sink %s %s", a->trap_sink, a->community);
		if (err)
			return err;
	} else {
		snmp_register_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_INDEX_START,
				       session_cb, NULL);
		snmp_register_callback(SNMP_CALLBACK_APPLICATION, SNMPD_CALLBACK_INDEX_STOP,
				       session_cb, NULL);
	}
	/* Subagent: connects here if the master is up (else retries every
	 * PING_INTERVAL_S). */
	init_snmp(APP_NAME);
	if (a->listen) {
		errno = 0;
		if (init_master_agent() != 0) {
			err = errno ? -errno : -EADDRNOTAVAIL;
			hitel_log(HITEL_LOG_ERR, COMPONENT, "cannot listen on %s: %s", a->listen,
				  strerror(-err));
			return err;
		}
		/* Nothing to wait for: notifications go out as they come
		 * (dropped without a trap_sink). */
		pthread_mutex_lock(&a->lock);
		a->connected = 1;
		pthread_mutex_unlock(&a->lock);
	}
	/* The first failed connection has been reported; the ping alarm keeps
	 * retrying quietly and net-snmp logs the reconnection. */
	netsnmp_ds_set_boolean(NETSNMP_DS_APPLICATION_ID, NETSNMP_DS_AGENT_NO_CONNECTION_WARNINGS,
			       1);
	if (register_readfd(a->pipe_rd, pipe_readable, a) != FD_REGISTERED_OK)
		return -EINVAL;
	return 0;
}

static void agent_fini(struct hitel_agentx *a)
{
	unregister_readfd(a->pipe_rd);
	snmp_shutdown(APP_NAME);
	/* The registrations are gone with snmp_shutdown; the containers and
	 * rows are ours. */
	table_install(&a->metrics, NULL, 0, 0, 0);
	table_install(&a->pcts, NULL, 0, 0, 0);
	table_install(&a->buckets, NULL, 0, 0, 0);
	table_install(&a->samplers, NULL, 0, 0, 0);
	table_install(&a->names, NULL, 0, 0, 0);
}

static void *agent_main(void *arg)
{
	struct hitel_agentx *a = arg;
	int err;

	current = a;
	err = agent_init(a);
	pthread_mutex_lock(&a->lock);
	a->started = 1;
	a->start_err = err;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (!err) {
		flush_traps(a);
		for (;;) {
			int quit;

			pthread_mutex_lock(&a->lock);
			quit = a->quit;
			pthread_mutex_unlock(&a->lock);
			if (quit)
				break;
			agent_check_and_process(1);
		}
	}
	agent_fini(a);
	current = NULL;
	return NULL;
}

/* ---- public --------------------------------------------------------------- */

static void agentx_free(struct hitel_agentx *a)
{
	struct table *t[] = { &a->metrics, &a->pcts, &a->buckets, &a->samplers, &a->names };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i]->c)
			CONTAINER_FREE(t[i]->c);
		free(t[i]->rows);
	}
	if (a->pipe_rd >= 0)
		close(a->pipe_rd);
	if (a->pipe_wr >= 0)
		close(a->pipe_wr);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->engine_lock);
	pthread_cond_destroy(&a->cond);
	free(a->socket);
	free(a->listen);
	free(a->community);
	free(a->trap_sink);
	free(a);
}

static int copy_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static void set_ranks(struct hitel_agentx *a)
{
	size_t i;

	a->nrank = 0;
	for (i = 0; i < a->xo.nq; i++) {
		double r = round(a->xo.q[i] * RANK_SCALE);
		uint32_t rank = r < 1 ? 1 : r > RANK_SCALE ? (uint32_t)RANK_SCALE : (uint32_t)r;

		/* Quantiles finer than 1e-5 apart share a rank: keep the first. */
		if (a->nrank && a->rank[a->nrank - 1] >= rank)
			continue;
		a->q[a->nrank] = a->xo.q[i];
		a->rank[a->nrank] = rank;
		hitel_quantile_label(a->xo.q[i], a->labels[a->nrank], sizeof(a->labels[0]));
		a->nrank++;
	}
}

struct hitel_agentx *hitel_agentx_start(struct hitel_engine *e, const struct hitel_agentx_opts *o)
{
	struct hitel_agentx *a = NULL;
	sigset_t all, old;
	int fds[2], err, claimed = 0;

	if (!e || !o) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&running_lock);
	if (running || used) {
		err = running ? EBUSY : EALREADY;
		pthread_mutex_unlock(&running_lock);
		hitel_log(HITEL_LOG_ERR, COMPONENT, "%s",
			  err == EBUSY ? "an SNMP agent already runs in this process"
				       : "net-snmp cannot be started twice in one process");
		errno = err;
		return NULL;
	}
	running = claimed = 1;
	pthread_mutex_unlock(&running_lock);

	err = -ENOMEM;
	a = calloc(1, sizeof(*a));
	if (!a)
		goto cleanup;
	a->pipe_rd = a->pipe_wr = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->engine_lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->engine = e;
	a->cache_ms = o->cache_ms ? o->cache_ms : DEFAULT_CACHE_MS;
	a->window_ns = (uint64_t)a->cache_ms * 1000000u;
	if (o->export)
		a->xo = *o->export;
	else
		hitel_export_opts_default(&a->xo);
	if (a->xo.nq > HITEL_EXPORT_MAX_PERCENTILES || a->xo.bucket_grouping_power > 10) {
		err = -EINVAL;
		goto cleanup;
	}
	set_ranks(a);
	if (copy_opt(&a->socket, o->socket) || copy_opt(&a->listen, o->listen) ||
	    copy_opt(&a->community, o->community ? o->community : "public") ||
	    copy_opt(&a->trap_sink, o->trap_sink))
		goto cleanup;
	err = hitel_engine_window_add(e, a->window_ns);
	if (err) {
		hitel_log(HITEL_LOG_ERR, COMPONENT,
			  "cache_ms %u: shorter than one engine period or invalid", a->cache_ms);
		goto cleanup;
	}
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		err = -errno;
		goto cleanup;
	}
	a->pipe_rd = fds[0];
	a->pipe_wr = fds[1];

	/* net-snmp looks for MIB files when it starts; the agent needs none. */
	setenv("MIBS", "", 1);
	/* Writes to a vanished master must fail with EPIPE, not kill us. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		hitel_log(HITEL_LOG_WARNING, COMPONENT, "cannot ignore SIGPIPE");
	/* Signals belong to the application's threads, never to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&a->thread, NULL, agent_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto cleanup;
	pthread_mutex_lock(&running_lock);
	used = 1;
	pthread_mutex_unlock(&running_lock);

	pthread_mutex_lock(&a->lock);
	while (!a->started)
		pthread_cond_wait(&a->cond, &a->lock);
	err = a->start_err;
	pthread_mutex_unlock(&a->lock);
	if (err) {
		pthread_join(a->thread, NULL);
		goto cleanup;
	}
	hitel_log(HITEL_LOG_INFO, COMPONENT, "serving HITEL-MIB %s %s", a->listen ? "on" : "via",
		  a->listen ? a->listen : a->socket ? a->socket : "/var/agentx/master");
	return a;

cleanup:
	if (a)
		agentx_free(a);
	if (claimed) {
		pthread_mutex_lock(&running_lock);
		running = 0;
		pthread_mutex_unlock(&running_lock);
	}
	errno = -err;
	return NULL;
}

int hitel_agentx_set_engine(struct hitel_agentx *a, struct hitel_engine *e)
{
	int err;

	if (!a || !e)
		return -EINVAL;
	/* Rows cached between rebuilds point at registry strings. */
	if (hitel_engine_registry(e) != hitel_engine_registry(a->engine)) {
		hitel_log(HITEL_LOG_ERR, COMPONENT, "new engine on another registry: not switched");
		return -EINVAL;
	}
	err = hitel_engine_window_add(e, a->window_ns);
	if (err) {
		hitel_log(HITEL_LOG_ERR, COMPONENT,
			  "cache_ms %u: shorter than one period of the new engine: not switched",
			  a->cache_ms);
		return err;
	}
	/* Waits for a table rebuild or a trap in progress on the old one. */
	pthread_mutex_lock(&a->engine_lock);
	a->engine = e;
	pthread_mutex_unlock(&a->engine_lock);
	return 0;
}

void hitel_agentx_stop(struct hitel_agentx *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->quit = 1;
	pthread_mutex_unlock(&a->lock);
	wake(a);
	pthread_join(a->thread, NULL);
	agentx_free(a);
	pthread_mutex_lock(&running_lock);
	running = 0;
	pthread_mutex_unlock(&running_lock);
}
