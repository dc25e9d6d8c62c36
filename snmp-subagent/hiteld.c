/* SPDX-License-Identifier: MIT */
/*
 * hiteld: runs the hitel engine and exposes it over HTTP (/metrics, /vars,
 * /vars.json, /health) and SNMP (HITEL-MIB, as an AgentX subagent of snmpd
 * or as its own agent on a loopback port): two frontends, see "frontends".
 *
 * Threads: the main thread owns configuration and signals (all of SIGINT,
 * SIGTERM, SIGHUP are blocked everywhere and taken with sigwaitinfo, so no
 * async handler runs); the engine has its sampling thread; libmicrohttpd runs
 * a small pool; the SNMP agent has one thread that makes every net-snmp call.
 * HTTP threads only read snapshots, the exporter options and the engine
 * pointer, which a reload replaces under `lock`.
 *
 * Reload (SIGHUP): the file is parsed and applied to a new, unstarted engine
 * on the running engine's registry; if it is invalid nothing changes.
 * Exporter options (percentiles, buckets), HTTP options (http, listen) and
 * log_level take effect at once. When engine or sampler options, the sampler
 * set or the window changed, the new engine takes over from the running one
 * (hitel_engine_takeover): same registry, so every series that persists keeps
 * its cumulative state and id; unchanged samplers move over still
 * initialised; removed ones stop and their series stop updating. Options
 * that fix the shape of existing series (root, max_series, the grouping
 * powers) cannot change that way: such a reload is refused as a whole and
 * logged, and a restart applies it.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#ifdef HITEL_WITH_SNMP
#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>

#include "agentx.h"
#include "snmp-module.h"
#endif
#include "conffile.h"
#include "engine.h"
#include "export.h"
#include "expose.h"
#include "log.h"

#ifndef HITEL_VERSION
#define HITEL_VERSION "unknown"
#endif

#define DEFAULT_LISTEN "127.0.0.1:4242"
#define DEFAULT_WINDOW_NS (10ULL * 1000000000ULL)
#define NS_PER_S 1000000000ULL

/* Bounded HTTP resources: a scrape needs one short request, so a small
 * pool, a cap on connections and 32 KiB per connection (requests with bigger
 * headers are refused) keep a misbehaving client from growing the agent. */
#define HTTP_THREADS 2u
#define HTTP_MAX_CONNECTIONS 128u
#define HTTP_CONNECTION_MEMORY ((size_t)32 * 1024)
#define HTTP_TIMEOUT_S 10u

/* How often the main thread wakes for housekeeping: looking for an AgentX
 * master that was not there yet, giving freed scrape memory back. */
#define TICK_S 2

/* hiteld's own keys in the config file (the wrapper keys of conffile.h). */
struct daemon_opts {
	struct hitel_engine *engine; /* the one being configured, for "window" */
	char listen[256];
	int http;
	uint64_t window_ns;
	/* SNMP: join an AgentX master (agentx, agentx_socket) or answer SNMP
	 * ourselves (snmp_listen); both read the snmp_cache window. */
	int agentx;
	char agentx_socket[256];
	char snmp_listen[128];
	char snmp_community[64];
	char snmp_trap_sink[128];
	unsigned int snmp_cache_ms;
	enum hitel_log_level log_level;
};

/* The last complete window, shared by HTTP threads until the next one can
 * exist: computing it is a delta of every histogram, the larger part of a
 * scrape's cost, and it changes only once per window. */
struct shared_window {
	struct hitel_snapshot *snap;
	unsigned int refs; /* under hiteld.lock; the cache holds one */
};

/* The engine as HTTP threads see it. A reload swaps hiteld.http_engine
 * under lock and frees the engine it replaced only after the last request
 * that took it has let go. */
struct engine_ref {
	struct hitel_engine *engine;
	unsigned int users; /* under hiteld.lock; hiteld.http_engine holds one */
};

struct hiteld {
	const char *config_path;     /* NULL: the embedded default */
	struct hitel_engine *engine; /* the running one; main thread only */
	struct hitel_config *config; /* what the running engine was built from */
	pthread_mutex_t lock;	     /* export, opts, window, http_engine */
	pthread_cond_t engine_idle;  /* an engine_ref lost its last user */
	struct engine_ref *http_engine;
	struct hitel_export_opts export;
	struct daemon_opts opts;
	struct shared_window *window;
	struct MHD_Daemon *mhd;
	/* Set and cleared by the main thread, read by the engine's status
	 * callback: atomic. */
	struct hitel_agentx *agentx;
	uint64_t snmp_window_ns; /* the window the SNMP frontend registered */
	/* SNMP options as the frontend started with (a reload does not apply
	 * them), and the AgentX master socket waited for before loading the
	 * SNMP module; main thread only. */
	struct daemon_opts snmp_opts;
	int agentx_wait;
	char agentx_wait_path[256];
	/* /metrics, /vars, /vars.json responses built (atomic): the main
	 * thread trims malloc after scrapes. */
	unsigned long scrapes;
};

/* One configuration, loaded but not running. */
struct loaded {
	struct hitel_engine *engine;
	struct hitel_config *config;
	struct hitel_export_opts export;
	struct daemon_opts opts;
};

/* --- logging -------------------------------------------------------------------- */

static int log_to_journal;

static void log_stderr(enum hitel_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = {"emerg",   "alert",	 "crit", "error",
					    "warning", "notice", "info", "debug"};

	(void)ctx;
	/* Under systemd, "<N>" lets journald keep the priority. */
	if (log_to_journal)
		fprintf(stderr, "<%d>%s\n", (int)level & 7, msg);
	else
		fprintf(stderr, "hiteld: %s: %s\n", names[level & 7], msg);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	/* Mostly misbehaving clients: worth seeing, not worth alarming. */
	hitel_log(HITEL_LOG_NOTICE, "http", "%s", buf);
}

/* --- configuration ----------------------------------------------------------------- */

/* "host:port", "[v6]:port", ":port" or "*:port" (all IPv4 addresses). */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
			  size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon, *port, *h = host;
	size_t hlen;
	int r;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':') {
			snprintf(err, errlen, "'%s' is not [ADDRESS]:PORT", spec);
			return -EINVAL;
		}
		hlen = (size_t)(close - spec - 1);
		if (hlen >= sizeof(host))
			hlen = sizeof(host) - 1;
		memcpy(host, spec + 1, hlen);
		host[hlen] = '\0';
		port = close + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon) {
			snprintf(err, errlen, "'%s' is not HOST:PORT", spec);
			return -EINVAL;
		}
		hlen = (size_t)(colon - spec);
		if (hlen >= sizeof(host))
			hlen = sizeof(host) - 1;
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
		port = colon + 1;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) > 65535) {
		snprintf(err, errlen, "'%s': port must be a number in 0..65535", spec);
		return -EINVAL;
	}
	if (!*host || strcmp(host, "*") == 0)
		h = "0.0.0.0";
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	r = getaddrinfo(h, port, &hints, &res);
	if (r != 0 || !res) {
		snprintf(err, errlen, "'%s': cannot resolve '%s': %s", spec, h, gai_strerror(r));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int parse_log_level(const char *v, enum hitel_log_level *out)
{
	static const struct {
		const char *name;
		enum hitel_log_level level;
	} levels[] = {
	    {"error", HITEL_LOG_ERR}, {"warning", HITEL_LOG_WARNING}, {"notice", HITEL_LOG_NOTICE},
	    {"info", HITEL_LOG_INFO}, {"debug", HITEL_LOG_DEBUG},
	};
	size_t i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(v, levels[i].name) == 0) {
			*out = levels[i].level;
			return 0;
		}
	return -EINVAL;
}

static int daemon_key(const char *key, const char *value, char *err, size_t errlen, void *ctx)
{
	struct daemon_opts *o = ctx;

	if (strcmp(key, "listen") == 0) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (resolve_listen(value, &ss, &len, err, errlen) < 0)
			return -EINVAL;
		snprintf(o->listen, sizeof(o->listen), "%s", value);
		return 0;
	}
	if (strcmp(key, "http") == 0) {
		if (hitel_parse_bool(value, &o->http) < 0) {
			snprintf(err, errlen, "'%s' is not a boolean (on/off)", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "window") == 0) {
		char *end;
		double s = strtod(value, &end);

		if (end == value || *end || !(s >= 0.01) || s > 3600.0) {
			snprintf(err, errlen, "'%s' is not a number of seconds in 0.01..3600",
				 value);
			return -EINVAL;
		}
		o->window_ns = (uint64_t)llround(s * 1e9);
		/* Engine keys are applied before wrapper keys, so the sample
		 * rate this must not undercut is known here. */
		if (hitel_engine_window_add(o->engine, o->window_ns) < 0) {
			snprintf(err, errlen, "%s s is shorter than one sample period", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "agentx") == 0) {
		if (hitel_parse_bool(value, &o->agentx) < 0) {
			snprintf(err, errlen, "'%s' is not a boolean", value);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(key, "agentx_socket") == 0 || strcmp(key, "snmp_listen") == 0 ||
	    strcmp(key, "snmp_community") == 0 || strcmp(key, "snmp_trap_sink") == 0) {
		char *dst = key[0] == 'a'   ? o->agentx_socket
			    : key[5] == 'l' ? o->snmp_listen
			    : key[5] == 'c' ? o->snmp_community
					    : o->snmp_trap_sink;
		size_t cap = key[0] == 'a'   ? sizeof(o->agentx_socket)
			     : key[5] == 'l' ? sizeof(o->snmp_listen)
			     : key[5] == 'c' ? sizeof(o->snmp_community)
					     : sizeof(o->snmp_trap_sink);

		if (!*value || strlen(value) >= cap) {
			snprintf(err, errlen, "empty or too long");
			return -EINVAL;
		}
		snprintf(dst, cap, "%s", value);
		return 0;
	}
	if (strcmp(key, "snmp_cache") == 0) {
		char *end;
		double sec = strtod(value, &end);

		if (end == value || *end || !(sec >= 1.0) || sec > 3600.0) {
			snprintf(err, errlen, "'%s' is not a number of seconds in 1..3600", value);
			return -EINVAL;
		}
		o->snmp_cache_ms = (unsigned int)llround(sec * 1000.0);
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		if (parse_log_level(value, &o->log_level) < 0) {
			snprintf(err, errlen,
				 "'%s' is not one of error, warning, notice, info, debug", value);
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

/* -x on the command line: overrides agentx_socket of any config, reloads too. */
static const char *cli_agentx_socket;

static void loaded_free(struct loaded *l)
{
	hitel_engine_free(l->engine);
	hitel_config_free(l->config);
	l->engine = NULL;
	l->config = NULL;
}

/* Parse path (NULL: the embedded default) into a new, unstarted engine, on
 * reg when given (a reload), else on a registry of its own. Every error has
 * been logged when this fails. */
static int load(const char *path, struct hitel_registry *reg, struct loaded *l)
{
	struct hitel_config_target t;
	char err[512];
	FILE *f = NULL;
	int ret, parsed = 0;

	memset(l, 0, sizeof(*l));
	hitel_export_opts_default(&l->export);
	snprintf(l->opts.listen, sizeof(l->opts.listen), "%s", DEFAULT_LISTEN);
	l->opts.http = 1;
	l->opts.window_ns = DEFAULT_WINDOW_NS;
	l->opts.log_level = HITEL_LOG_INFO;
	l->opts.agentx = 1;
	l->opts.snmp_cache_ms = 5000;
	l->engine = reg ? hitel_engine_new_on(reg) : hitel_engine_new();
	l->config = hitel_config_new();
	if (!l->engine || !l->config) {
		hitel_log(HITEL_LOG_ERR, "hiteld", "out of memory");
		ret = -ENOMEM;
		goto cleanup;
	}
	if (path) {
		f = fopen(path, "re");
		if (!f) {
			ret = -errno;
			hitel_log(HITEL_LOG_ERR, "config", "%s: cannot open: %s", path,
				  strerror(errno));
			goto cleanup;
		}
		parsed = hitel_config_parse_file(l->config, f, path, err, sizeof(err));
		fclose(f);
		if (parsed && parsed != -EINVAL) {
			ret = parsed;
			goto cleanup;
		}
	}
	/* Apply even after syntax errors, so one run lists every problem. */
	t.engine = l->engine;
	t.export = &l->export;
	t.key = daemon_key;
	t.ctx = &l->opts;
	l->opts.engine = l->engine;
	ret = hitel_config_apply(l->config, &t, err, sizeof(err));
	if (parsed)
		ret = parsed;
	if (cli_agentx_socket)
		snprintf(l->opts.agentx_socket, sizeof(l->opts.agentx_socket), "%s",
			 cli_agentx_socket);
	if (!ret && l->opts.window_ns == DEFAULT_WINDOW_NS)
		ret = hitel_engine_window_add(l->engine, DEFAULT_WINDOW_NS);
cleanup:
	if (ret)
		loaded_free(l);
	return ret;
}

/* --- HTTP -------------------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *type,
			       char *body, size_t len, int owned)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body,
					    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return respond(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text), 0);
}

static void window_put(struct hiteld *d, struct shared_window *w)
{
	int last;

	if (!w)
		return;
	pthread_mutex_lock(&d->lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&d->lock);
	if (last) {
		hitel_snapshot_free(w->snap);
		free(w);
	}
}

static struct engine_ref *engine_get(struct hiteld *d)
{
	struct engine_ref *r;

	pthread_mutex_lock(&d->lock);
	r = d->http_engine;
	r->users++;
	pthread_mutex_unlock(&d->lock);
	return r;
}

static void engine_put(struct hiteld *d, struct engine_ref *r)
{
	pthread_mutex_lock(&d->lock);
	if (--r->users == 0)
		pthread_cond_broadcast(&d->engine_idle);
	pthread_mutex_unlock(&d->lock);
}

/* The last complete window of engine e (NULL before the first one), with a
 * reference for the caller. A window ending at t cannot be replaced before
 * t + W, so until then the cached one is current. */
static struct shared_window *window_get(struct hiteld *d, struct hitel_engine *e)
{
	struct shared_window *w, *old;
	struct hitel_snapshot *snap;
	uint64_t len;

	pthread_mutex_lock(&d->lock);
	len = d->opts.window_ns;
	w = d->window;
	if (w && hitel_now_ns() < hitel_snapshot_time(w->snap) + len) {
		w->refs++;
		pthread_mutex_unlock(&d->lock);
		return w;
	}
	pthread_mutex_unlock(&d->lock);

	snap = hitel_engine_window(e, len);
	if (!snap)
		return NULL;
	w = malloc(sizeof(*w));
	if (!w) {
		hitel_snapshot_free(snap);
		return NULL;
	}
	w->snap = snap;
	w->refs = 2;
	pthread_mutex_lock(&d->lock);
	/* A reload changed the window meanwhile: serve this one, cache none. */
	if (len != d->opts.window_ns) {
		w->refs = 1;
		pthread_mutex_unlock(&d->lock);
		return w;
	}
	old = d->window;
	d->window = w;
	pthread_mutex_unlock(&d->lock);
	window_put(d, old);
	return w;
}

enum format { FORMAT_PROMETHEUS, FORMAT_VARS, FORMAT_JSON };

static enum MHD_Result serve_expose(struct hiteld *d, struct MHD_Connection *c, enum format fmt)
{
	static const char *const types[] = {HITEL_EXPOSE_PROMETHEUS_TYPE, HITEL_EXPOSE_VARS_TYPE,
					    HITEL_EXPOSE_JSON_TYPE};
	struct hitel_snapshot *cum = NULL, *win = NULL;
	struct engine_ref *ref = engine_get(d);
	struct shared_window *sw = NULL;
	struct hitel_export_opts o;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int err;

	pthread_mutex_lock(&d->lock);
	o = d->export;
	pthread_mutex_unlock(&d->lock);

	cum = hitel_engine_snapshot(ref->engine);
	if (!cum) {
		err = -errno;
		goto cleanup;
	}
	sw = window_get(d, ref->engine); /* NULL until one completes */
	win = sw ? sw->snap : NULL;
	f = open_memstream(&buf, &len);
	if (!f) {
		err = -errno;
		goto cleanup;
	}
	if (fmt == FORMAT_PROMETHEUS)
		err = hitel_expose_prometheus(f, cum, win, &o);
	else if (fmt == FORMAT_VARS)
		err = hitel_expose_vars(f, cum, win, &o);
	else
		err = hitel_expose_json(f, cum, win, &o);
	if (fclose(f) != 0 && !err)
		err = -EIO;
	f = NULL;
	__atomic_add_fetch(&d->scrapes, 1, __ATOMIC_RELAXED);
cleanup:
	hitel_snapshot_free(cum);
	window_put(d, sw);
	engine_put(d, ref);
	if (err) {
		free(buf);
		hitel_log(HITEL_LOG_WARNING, "http", "cannot build a response: %s", strerror(-err));
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
	}
	return respond(c, MHD_HTTP_OK, types[fmt], buf, len, 1);
}

static enum MHD_Result serve_health(struct hiteld *d, struct MHD_Connection *c)
{
	struct engine_ref *ref;
	struct hitel_sampler_status st;
	size_t i, n, up = 0, len = 0;
	char *buf = NULL;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
	ref = engine_get(d);
	n = hitel_engine_sampler_count(ref->engine);
	for (i = 0; i < n; i++)
		if (hitel_engine_sampler_status(ref->engine, i, &st) == 0 && st.up)
			up++;
	fprintf(f, "ok\nsamplers up %zu down %zu\n", up, n - up);
	for (i = 0; i < n; i++)
		if (hitel_engine_sampler_status(ref->engine, i, &st) == 0 && !st.up)
			fprintf(f, "down %s: %s\n", st.name,
				st.reason[0] ? st.reason : "no reason");
	engine_put(d, ref);
	if (fclose(f) != 0) {
		free(buf);
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
	}
	return respond(c, MHD_HTTP_OK, "text/plain; charset=utf-8", buf, len, 1);
}

static const char index_html[] =
    "<!DOCTYPE html>\n<html><head><title>hiteld " HITEL_VERSION "</title></head><body>\n"
    "<h1>hiteld " HITEL_VERSION "</h1>\n<p>High-resolution Linux telemetry.</p>\n<ul>\n"
    "<li><a href=\"/metrics\">/metrics</a>: Prometheus text format</li>\n"
    "<li><a href=\"/vars\">/vars</a>: human-readable values and window percentiles</li>\n"
    "<li><a href=\"/vars.json\">/vars.json</a>: the same as JSON</li>\n"
    "<li><a href=\"/health\">/health</a>: liveness and sampler status</li>\n"
    "</ul>\n</body></html>\n";

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct hiteld *d = cls;

	(void)version;
	(void)upload_data;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	*upload_data_size = 0; /* a GET body means nothing here */
	if (strcmp(url, "/metrics") == 0)
		return serve_expose(d, c, FORMAT_PROMETHEUS);
	if (strcmp(url, "/vars") == 0)
		return serve_expose(d, c, FORMAT_VARS);
	if (strcmp(url, "/vars.json") == 0)
		return serve_expose(d, c, FORMAT_JSON);
	if (strcmp(url, "/health") == 0)
		return serve_health(d, c);
	if (strcmp(url, "/") == 0)
		return respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)index_html,
			       sizeof(index_html) - 1, 0);
	return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static struct MHD_Daemon *http_start(struct hiteld *d, const char *listen)
{
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	struct MHD_Daemon *mhd;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	socklen_t len;
	char err[256];

	if (resolve_listen(listen, &ss, &len, err, sizeof(err)) < 0) {
		hitel_log(HITEL_LOG_ERR, "http", "listen %s", err);
		return NULL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	/* The logger first, or MHD logs option problems on its own. */
	mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle, d, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, HTTP_THREADS,
	    MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    HTTP_CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
	if (!mhd) {
		hitel_log(HITEL_LOG_ERR, "http", "cannot listen on %s: %s", listen,
			  errno ? strerror(errno) : "libmicrohttpd refused to start");
		return NULL;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	/* The port line is what tests (and people using port 0) look for. */
	hitel_log(HITEL_LOG_NOTICE, "http", "listening on %s (port %u)", listen,
		  info ? (unsigned int)info->port : 0u);
	return mhd;
}

/*
 * Frontends expose the engine: HTTP here; snmp-subagent/agentx.c will add
 * AgentX as a second entry (its net-snmp loop on its own thread, since every
 * net-snmp call must happen in one thread; see NOTES-netsnmp.md), configured
 * by the agentx_socket key that daemon_key already accepts. Frontends start
 * after the engine and stop before it; reload() tells each about new options.
 */
static int http_frontend_start(struct hiteld *d)
{
	if (!d->opts.http)
		return 0;
	d->mhd = http_start(d, d->opts.listen);
	return d->mhd ? 0 : -EADDRNOTAVAIL;
}

static void http_frontend_stop(struct hiteld *d)
{
	if (d->mhd)
		MHD_stop_daemon(d->mhd);
	d->mhd = NULL;
}

/* Restart the listener only when its options changed; on failure go back to
 * the old address so a typo does not take the endpoint down. */
static void http_frontend_reload(struct hiteld *d, const struct daemon_opts *old)
{
	struct daemon_opts next = d->opts;

	if (old->http == next.http && strcmp(old->listen, next.listen) == 0)
		return;
	http_frontend_stop(d);
	if (http_frontend_start(d) == 0) {
		if (!next.http)
			hitel_log(HITEL_LOG_NOTICE, "http", "HTTP disabled by reload");
		return;
	}
	hitel_log(HITEL_LOG_ERR, "http", "keeping the previous listener %s", old->listen);
	pthread_mutex_lock(&d->lock);
	snprintf(d->opts.listen, sizeof(d->opts.listen), "%s", old->listen);
	d->opts.http = old->http;
	pthread_mutex_unlock(&d->lock);
	if (http_frontend_start(d) < 0)
		hitel_log(HITEL_LOG_ERR, "http", "HTTP is down until the next reload");
}

#ifdef HITEL_WITH_SNMP
/*
 * SNMP frontend. By default hiteld joins the AgentX master at net-snmp's
 * default socket and, when there is none, keeps retrying quietly (the
 * subagent connects when snmpd appears): an agent on a host without snmpd is
 * normal. With snmp_listen it is an SNMP agent of its own instead. net-snmp
 * cannot be initialised twice in a process, so a reload that changes these
 * options asks for a restart.
 */
/* Set once, before the first handle it made is published in hiteld.agentx
 * (release), so whoever loads that handle (acquire) sees it. The module
 * stays loaded: net-snmp cannot be initialised twice in a process. */
static const struct hitel_snmp_module *snmp_mod;

/* Where hitel-snmp.so is: $HITEL_MODULE_DIR if set; the build tree's
 * libtool output when this hiteld is the build tree's (so tests and
 * contrib/quickstart.sh need not install, and an installed hiteld never
 * looks there); else $(pkglibdir). */
static void snmp_module_path(char *buf, size_t len)
{
	const char *dir = getenv("HITEL_MODULE_DIR");
	char exe[PATH_MAX], built[PATH_MAX];

	if (dir && *dir) {
		snprintf(buf, len, "%s/%s", dir, HITEL_SNMP_MODULE_FILE);
		return;
	}
	if (realpath("/proc/self/exe", exe) && realpath(HITEL_BUILDDIR "/hiteld", built) &&
	    strcmp(exe, built) == 0) {
		snprintf(buf, len, "%s/snmp-subagent/.libs/%s", HITEL_BUILDDIR,
			 HITEL_SNMP_MODULE_FILE);
		return;
	}
	snprintf(buf, len, "%s/%s", HITEL_PKGLIBDIR, HITEL_SNMP_MODULE_FILE);
}

static int snmp_module_load(void)
{
	static int failed; /* logged once; later attempts would fail the same way */
	const struct hitel_snmp_module *m;
	char path[PATH_MAX + 32];
	void *h;

	if (snmp_mod)
		return 0;
	if (failed)
		return -ENOENT;
	snmp_module_path(path, sizeof(path));
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		failed = 1;
		hitel_log(HITEL_LOG_ERR, "snmp",
			  "cannot load the SNMP module %s: %s; SNMP is off, HTTP keeps serving",
			  path, dlerror());
		return -ENOENT;
	}
	m = dlsym(h, HITEL_SNMP_MODULE_SYMBOL);
	if (!m) {
		failed = 1;
		hitel_log(HITEL_LOG_ERR, "snmp",
			  "%s is not a hitel SNMP module: %s; SNMP is off, HTTP keeps serving", path,
			  dlerror());
		dlclose(h);
		return -ENOEXEC;
	}
	if (m->abi != HITEL_SNMP_MODULE_ABI || !m->version ||
	    strcmp(m->version, HITEL_VERSION) != 0) {
		failed = 1;
		hitel_log(HITEL_LOG_ERR, "snmp",
			  "SNMP module %s is version %s ABI %u, this hiteld %s ABI %u (a stale "
			  "install?); SNMP is off, HTTP keeps serving",
			  path, m->version ? m->version : "?", m->abi, HITEL_VERSION,
			  HITEL_SNMP_MODULE_ABI);
		dlclose(h);
		return -ENOEXEC;
	}
	snmp_mod = m;
	hitel_log(HITEL_LOG_INFO, "snmp", "loaded %s", path);
	return 0;
}

/* The file of an AgentX master address, or NULL when it is not a Unix
 * socket (tcp:host:port: nothing cheap to look at, joined at once). */
static const char *agentx_unix_path(const char *addr)
{
	if (!addr || !*addr)
		return "/var/agentx/master"; /* net-snmp's default */
	if (strncmp(addr, "unix:", 5) == 0)
		return addr + 5;
	return addr[0] == '/' ? addr : NULL;
}

static int agentx_master_present(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Load the module and start the agent with the options the frontend
 * started with. */
static int snmp_agent_start(struct hiteld *d)
{
	const struct daemon_opts *so = &d->snmp_opts;
	struct hitel_agentx_opts o = { 0 };
	struct hitel_agentx *a;
	size_t i;

	o.socket = so->agentx_socket[0] ? so->agentx_socket : NULL;
	o.listen = so->snmp_listen[0] ? so->snmp_listen : NULL;
	o.community = so->snmp_community[0] ? so->snmp_community : NULL;
	o.trap_sink = so->snmp_trap_sink[0] ? so->snmp_trap_sink : NULL;
	o.cache_ms = so->snmp_cache_ms;
	o.export = &d->export;
	/* Not fatal even with snmp_listen: what hiteld can serve, it serves. */
	if (snmp_module_load() < 0)
		return 0;
	a = snmp_mod->start(d->engine, &o);
	if (!a) {
		int err = errno;

		/* Asked for explicitly: fail like a listener that cannot bind.
		 * The default AgentX join only warns: HTTP keeps working. */
		hitel_log(o.listen ? HITEL_LOG_ERR : HITEL_LOG_WARNING, "snmp",
			  "SNMP frontend not started: %s", strerror(err));
		return o.listen ? -err : 0;
	}
	d->snmp_window_ns = (uint64_t)o.cache_ms * 1000000ULL;
	__atomic_store_n(&d->agentx, a, __ATOMIC_RELEASE);
	/* Samplers that went down before the module was loaded: the traps
	 * their transitions would have queued (a transition racing with this
	 * may be sent twice, which a trap receiver tolerates). */
	for (i = 0; i < hitel_engine_sampler_count(d->engine); i++) {
		struct hitel_sampler_status st;

		if (hitel_engine_sampler_status(d->engine, i, &st) == 0 && !st.up)
			snmp_mod->sampler_status(a, &st);
	}
	hitel_log(HITEL_LOG_NOTICE, "snmp", "%s %s", o.listen ? "SNMP agent on" : "AgentX subagent of",
		  o.listen ? o.listen : (o.socket ? o.socket : "the default master socket"));
	return 0;
}

/* Without snmp_listen, and while the master's socket is not there, nothing
 * of net-snmp is loaded: most hosts have no snmpd, and loading it costs
 * ~8 MB (snmp-module.h). The tick loads it when the socket appears; from
 * then on net-snmp reconnects by itself as before. */
static int snmp_frontend_start(struct hiteld *d)
{
	const char *path;

	if (!d->opts.agentx && !d->opts.snmp_listen[0])
		return 0;
	d->snmp_opts = d->opts;
	path = d->opts.snmp_listen[0] ? NULL : agentx_unix_path(d->opts.agentx_socket);
	if (path && !agentx_master_present(path)) {
		snprintf(d->agentx_wait_path, sizeof(d->agentx_wait_path), "%s", path);
		d->agentx_wait = 1;
		hitel_log(HITEL_LOG_INFO, "snmp",
			  "no AgentX master at %s yet: joining when it appears (checked every %d s)",
			  path, TICK_S);
		return 0;
	}
	return snmp_agent_start(d);
}

static void snmp_frontend_tick(struct hiteld *d)
{
	if (!d->agentx_wait || !agentx_master_present(d->agentx_wait_path))
		return;
	d->agentx_wait = 0;
	hitel_log(HITEL_LOG_NOTICE, "snmp", "AgentX master appeared at %s", d->agentx_wait_path);
	snmp_agent_start(d);
}

static void snmp_frontend_stop(struct hiteld *d)
{
	struct hitel_agentx *a = __atomic_exchange_n(&d->agentx, NULL, __ATOMIC_ACQ_REL);

	d->agentx_wait = 0;
	if (a)
		snmp_mod->stop(a);
}

static void snmp_frontend_reload(struct hiteld *d, const struct daemon_opts *old)
{
	if (old->agentx != d->opts.agentx || strcmp(old->agentx_socket, d->opts.agentx_socket) ||
	    strcmp(old->snmp_listen, d->opts.snmp_listen) ||
	    strcmp(old->snmp_community, d->opts.snmp_community) ||
	    strcmp(old->snmp_trap_sink, d->opts.snmp_trap_sink) ||
	    old->snmp_cache_ms != d->opts.snmp_cache_ms)
		hitel_log(HITEL_LOG_WARNING, "snmp",
			  "SNMP options changed: restart hiteld to apply them");
}
#endif

/* Sampler down/up: the engine logs it; SNMP pollers get a trap. */
static void on_sampler_status(const struct hitel_sampler_status *st, void *ctx)
{
#ifdef HITEL_WITH_SNMP
	struct hiteld *d = ctx;
	struct hitel_agentx *a = __atomic_load_n(&d->agentx, __ATOMIC_ACQUIRE);

	if (a)
		snmp_mod->sampler_status(a, st);
#else
	(void)st;
	(void)ctx;
#endif
}

static const struct frontend {
	const char *name;
	int (*start)(struct hiteld *d);
	void (*stop)(struct hiteld *d);
	void (*reload)(struct hiteld *d, const struct daemon_opts *old);
	void (*tick)(struct hiteld *d); /* every TICK_S in the main thread, or NULL */
} frontends[] = {
    {"http", http_frontend_start, http_frontend_stop, http_frontend_reload, NULL},
#ifdef HITEL_WITH_SNMP
    {"snmp", snmp_frontend_start, snmp_frontend_stop, snmp_frontend_reload, snmp_frontend_tick},
#endif
};

#define NFRONTENDS (sizeof(frontends) / sizeof(frontends[0]))

/* --- reload ------------------------------------------------------------------------ */

/*
 * Replace the running engine by l's, built on the same registry: series that
 * persist keep their cumulative state and ids (hitel_engine_takeover). Every
 * frontend is pointed at the new engine before the old one is freed: HTTP
 * through http_engine (waiting for requests still using the old one), SNMP
 * through hitel_agentx_set_engine (waiting for a table rebuild in progress).
 * Returns 0, or < 0 with the reason logged and nothing changed.
 */
static int engine_replace(struct hiteld *d, struct loaded *l)
{
	struct hitel_engine *old = d->engine, *e = l->engine;
	struct shared_window *stale = NULL;
	struct engine_ref *ref, *prev;
	char err[512] = "";
	int kept;

	ref = malloc(sizeof(*ref));
	if (!ref) {
		hitel_log(HITEL_LOG_ERR, "hiteld", "reload refused: out of memory");
		return -ENOMEM;
	}
	ref->engine = e;
	ref->users = 1;
#ifdef HITEL_WITH_SNMP
	/* Registered before the takeover, so the SNMP window carries over. */
	if (__atomic_load_n(&d->agentx, __ATOMIC_ACQUIRE) && d->snmp_window_ns)
		hitel_engine_window_add(e, d->snmp_window_ns);
#endif
	hitel_engine_on_status(e, on_sampler_status, d);
	kept = hitel_engine_takeover(e, old, err, sizeof(err));
	if (kept < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld", "reload refused: %s; restart hiteld to apply it",
			  err);
		free(ref);
		return kept;
	}

	/* old is stopped; nothing below fails back to it. */
	pthread_mutex_lock(&d->lock);
	prev = d->http_engine;
	d->http_engine = ref;
	if (d->opts.window_ns != l->opts.window_ns) {
		d->opts.window_ns = l->opts.window_ns;
		stale = d->window;
		d->window = NULL;
	}
	prev->users--;
	while (prev->users)
		pthread_cond_wait(&d->engine_idle, &d->lock);
	pthread_mutex_unlock(&d->lock);
	free(prev);
	window_put(d, stale);
#ifdef HITEL_WITH_SNMP
	if (d->agentx && snmp_mod->set_engine(d->agentx, e) < 0) {
		/* Cannot happen with the same registry short of memory; the
		 * agent must not outlive the engine it reads. */
		hitel_log(HITEL_LOG_ERR, "snmp", "SNMP stopped: cannot follow the new engine");
		snmp_frontend_stop(d);
	}
#endif
	d->engine = e;
	l->engine = NULL;
	hitel_config_free(d->config);
	d->config = l->config;
	l->config = NULL;
	/* Runs the fini of the samplers that did not move (removed, or with
	 * other options): their series stay and stop updating. */
	hitel_engine_free(old);
	if (hitel_engine_start(e) < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld",
			  "cannot start the new engine: values stop updating until the next "
			  "reload");
		return 0;
	}
	hitel_log(HITEL_LOG_NOTICE, "hiteld",
		  "engine replaced on the same registry: %zu samplers, %d kept running, %zu "
		  "started; every series keeps its cumulative state",
		  hitel_engine_sampler_count(e), kept,
		  hitel_engine_sampler_count(e) - (size_t)kept);
	return 0;
}

static void reload(struct hiteld *d)
{
	struct daemon_opts old = d->opts;
	struct loaded l;
	size_t i;

	if (!d->config_path) {
		hitel_log(HITEL_LOG_NOTICE, "hiteld",
			  "SIGHUP: no config file (-c), nothing to reload");
		return;
	}
	hitel_log(HITEL_LOG_NOTICE, "hiteld", "SIGHUP: reloading %s", d->config_path);
	if (load(d->config_path, hitel_engine_registry(d->engine), &l) < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld",
			  "reload failed: keeping the running configuration unchanged");
		return;
	}
	/* Same engine options and window: the running engine stays as it is. */
	if ((!hitel_config_same_engine(d->config, l.config) || l.opts.window_ns != old.window_ns) &&
	    engine_replace(d, &l) < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld",
			  "reload failed: keeping the running configuration unchanged");
		loaded_free(&l);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->export = l.export;
	snprintf(d->opts.listen, sizeof(d->opts.listen), "%s", l.opts.listen);
	d->opts.http = l.opts.http;
	d->opts.log_level = l.opts.log_level;
	/* Recorded so the SNMP frontend can tell they changed (it cannot
	 * apply them without a restart). */
	d->opts.agentx = l.opts.agentx;
	d->opts.snmp_cache_ms = l.opts.snmp_cache_ms;
	memcpy(d->opts.agentx_socket, l.opts.agentx_socket, sizeof(d->opts.agentx_socket));
	memcpy(d->opts.snmp_listen, l.opts.snmp_listen, sizeof(d->opts.snmp_listen));
	memcpy(d->opts.snmp_community, l.opts.snmp_community, sizeof(d->opts.snmp_community));
	memcpy(d->opts.snmp_trap_sink, l.opts.snmp_trap_sink, sizeof(d->opts.snmp_trap_sink));
	pthread_mutex_unlock(&d->lock);
	hitel_log_set_level(d->opts.log_level);
	loaded_free(&l);
	for (i = 0; i < NFRONTENDS; i++)
		frontends[i].reload(d, &old);
	hitel_log(HITEL_LOG_NOTICE, "hiteld", "reload done");
}

/* --- --once ------------------------------------------------------------------------ */

static double scaled(uint64_t raw, int scale)
{
	return (double)raw * pow(10.0, scale);
}

/* Short human form: 1.5ms, 12.3MiB, 4.2k. */
static const char *human(double v, const char *unit, char *buf, size_t len)
{
	static const char *const si[] = {"", "k", "M", "G", "T", "P"};
	static const char *const bin[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t i = 0;

	if (strcmp(unit, "seconds") == 0) {
		if (v == 0)
			snprintf(buf, len, "0s");
		else if (v < 1e-6)
			snprintf(buf, len, "%.3gns", v * 1e9);
		else if (v < 1e-3)
			snprintf(buf, len, "%.3gus", v * 1e6);
		else if (v < 1)
			snprintf(buf, len, "%.3gms", v * 1e3);
		else
			snprintf(buf, len, "%.3gs", v);
		return buf;
	}
	if (strcmp(unit, "bytes") == 0) {
		while (v >= 1024 && i + 1 < 6) {
			v /= 1024;
			i++;
		}
		snprintf(buf, len, "%.3g%s", v, bin[i]);
		return buf;
	}
	while (v >= 1000 && i + 1 < 6) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.3g%s", v, si[i]);
	return buf;
}

static void print_labels(const struct hitel_point *p)
{
	size_t i;

	if (!p->nlabels)
		return;
	putchar('{');
	for (i = 0; i < p->nlabels; i++)
		printf("%s%s=\"%s\"", i ? "," : "", p->labels[i].name, p->labels[i].value);
	putchar('}');
}

/* A bcc-style bar chart: power-of-two buckets from the first to the last
 * non-empty one. */
static void print_hist(const struct hitel_point *p, const struct hitel_hist *h, const char *what)
{
	struct hitel_hist *c;
	struct hitel_hist_bucket b;
	unsigned int cursor = 0, first = 0, last = 0, i;
	uint64_t maxc = 0;
	int any = 0;

	c = hitel_hist_grouping_power(h) ? hitel_hist_downsample(h, 0) : hitel_hist_dup(h);
	if (!c)
		return;
	while (hitel_hist_next(c, &cursor, &b)) {
		if (!any)
			first = b.index;
		last = b.index;
		any = 1;
		if (b.count > maxc)
			maxc = b.count;
	}
	if (!any)
		goto cleanup;
	printf("\n%s", p->family);
	print_labels(p);
	printf(" %s, %llu samples\n", what, (unsigned long long)hitel_hist_count(h));
	printf("%28s : %-8s %s\n", "value", "count", "distribution");
	for (i = first; i <= last; i++) {
		uint64_t lo, hi, n = hitel_hist_bucket_count(c, i);
		char l[32], u[32], bar[41];
		size_t w = maxc ? (size_t)((n * 40 + maxc - 1) / maxc) : 0;
		unsigned int j = i;

		/* A long run of empty rows (a rate that is 0 or large, rarely
		 * between) says nothing: fold it into one line. */
		while (j + 1 < last && !hitel_hist_bucket_count(c, j + 1))
			j++;
		if (!n && j > i + 1) {
			printf("%28s : %-8d |%-40s|\n", "...", 0, "");
			i = j;
			continue;
		}
		if (hitel_hist_bounds(c, i, &lo, &hi) < 0)
			break;
		memset(bar, '*', w);
		bar[w] = '\0';
		printf("%12s -> %-12s : %-8llu |%-40s|\n",
		       human(scaled(lo, p->scale), p->unit, l, sizeof(l)),
		       human(scaled(hi, p->scale), p->unit, u, sizeof(u)), (unsigned long long)n,
		       bar);
	}
cleanup:
	hitel_hist_free(c);
}

/* For each counter and histogram family (up to max), chart its busiest series
 * in the window. */
static void print_key_hists(const struct hitel_snapshot *win, size_t max)
{
	size_t i = 0, n = hitel_snapshot_len(win), shown = 0;

	while (i < n && shown < max) {
		const struct hitel_point *p0 = hitel_snapshot_point(win, i), *best = NULL;
		uint64_t best_w = 0;
		size_t j = i;

		for (; j < n && strcmp(hitel_snapshot_point(win, j)->family, p0->family) == 0;
		     j++) {
			const struct hitel_point *p = hitel_snapshot_point(win, j);
			uint64_t w;

			if (!p->hist || p->kind == HITEL_KIND_GAUGE || !hitel_hist_count(p->hist))
				continue;
			w = p->kind == HITEL_KIND_COUNTER ? hitel_hist_sum(p->hist)
							  : hitel_hist_count(p->hist);
			if (w > best_w) {
				best_w = w;
				best = p;
			}
		}
		if (best) {
			print_hist(best, best->hist,
				   best->kind == HITEL_KIND_COUNTER ? "rate per second"
								    : "distribution");
			shown++;
		}
		i = j;
	}
}

static int run_once_mode(struct hiteld *d, double seconds)
{
	struct hitel_snapshot *s0 = NULL, *s1 = NULL, *win = NULL;
	struct hitel_sampler_status st;
	unsigned int hz = 1;
	uint64_t t0, end, k;
	size_t i;
	int err = 0;

	for (i = 0; i < hitel_engine_sampler_count(d->engine); i++)
		if (hitel_engine_sampler_status(d->engine, i, &st) == 0 && st.rate_hz > hz)
			hz = st.rate_hz;
	t0 = hitel_now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	hitel_engine_run_once(d->engine, t0);
	s0 = hitel_engine_snapshot(d->engine);
	/* Passes at the sample rate on absolute deadlines, as the engine thread
	 * would run them, so the rate histograms show the second's shape. */
	for (k = 1;; k++) {
		uint64_t due = t0 + k * NS_PER_S / hz;
		struct timespec ts;

		if (due > end)
			due = end;
		ts.tv_sec = (time_t)(due / NS_PER_S);
		ts.tv_nsec = (long)(due % NS_PER_S);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		hitel_engine_run_once(d->engine, hitel_now_ns());
		if (due >= end)
			break;
	}
	s1 = hitel_engine_snapshot(d->engine);
	win = s0 && s1 ? hitel_snapshot_delta(s0, s1) : NULL;
	if (!win) {
		err = -ENOMEM;
		hitel_log(HITEL_LOG_ERR, "hiteld", "cannot take a snapshot");
		goto cleanup;
	}
	printf("# hiteld %s: one snapshot over %.2f s, passes at up to %u Hz\n", HITEL_VERSION,
	       (double)(hitel_snapshot_time(win) - hitel_snapshot_start(win)) / 1e9, hz);
	printf("# cumulative values; /rate/pNN and /pNN lines are percentiles over the run\n");
	hitel_expose_vars(stdout, s1, win, &d->export);
	print_key_hists(win, 8);
	for (i = 0; i < hitel_engine_sampler_count(d->engine); i++)
		if (hitel_engine_sampler_status(d->engine, i, &st) == 0 && !st.up)
			printf("\n# sampler %s down: %s", st.name, st.reason);
	printf("\n");
	if (fflush(stdout) != 0)
		err = -EIO;
cleanup:
	hitel_snapshot_free(win);
	hitel_snapshot_free(s0);
	hitel_snapshot_free(s1);
	return err;
}

/* --- main -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: hiteld [OPTION]...\n"
		"Sample Linux counters at high rate and serve them over HTTP and SNMP.\n\n"
		"  -c, --config FILE   read the configuration from FILE (default: the embedded\n"
		"                      default: default samplers, HTTP on %s)\n"
		"  -t, --check-config  check the configuration, then exit 0 (valid) or 1\n"
		"  -x, --agentx-socket ADDR  AgentX master to join (overrides agentx_socket;\n"
		"                      default /var/agentx/master)\n"
		"      --once[=SECS]   sample for SECS seconds (default 1), print a snapshot\n"
		"                      with rate histograms, exit\n"
		"  -f, --foreground    stay in the foreground (the default; for systemd)\n"
		"  -v, --verbose       log at debug level\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n\n"
		"Signals: SIGHUP reloads FILE, SIGTERM/SIGINT stop. See docs/hiteld.md.\n",
		DEFAULT_LISTEN);
}

static int install_running(struct hiteld *d, struct loaded *l)
{
	d->http_engine = malloc(sizeof(*d->http_engine));
	if (!d->http_engine)
		return -ENOMEM;
	d->http_engine->engine = l->engine;
	d->http_engine->users = 1;
	d->engine = l->engine;
	d->config = l->config;
	d->export = l->export;
	d->opts = l->opts;
	d->opts.engine = NULL; /* only for daemon_key() while loading */
	l->engine = NULL;
	l->config = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 't'},
	    {"once", optional_argument, NULL, 'O'},   {"foreground", no_argument, NULL, 'f'},
	    {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},      {"agentx-socket", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	struct hiteld d;
	struct loaded l;
	sigset_t sigs;
	unsigned long trimmed_at = 0;
	double once = 0;
	int check = 0, verbose = 0, opt, ret = 1, started = 0;
	size_t i;

	memset(&d, 0, sizeof(d));
	while ((opt = getopt_long(argc, argv, "c:tx:fvhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.config_path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'x':
			if (!*optarg || strlen(optarg) >= sizeof(d.opts.agentx_socket)) {
				fprintf(stderr, "hiteld: -x: empty or too long\n");
				return 2;
			}
			cli_agentx_socket = optarg;
			break;
		case 'O': {
			char *end;

			once = optarg ? strtod(optarg, &end) : 1.0;
			if (optarg && (end == optarg || *end || !(once > 0) || once > 3600)) {
				fprintf(stderr, "hiteld: --once: '%s' is not a number of seconds\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'f':
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hiteld %s\n", HITEL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hiteld: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	/* Before any thread exists, so every thread inherits the mask and the
	 * signals only reach sigwaitinfo below. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread allocates. glibc's defaults let RSS grow with
	 * scrapes: each HTTP thread gets an arena that keeps its peak, and
	 * libbpf's multi-MB BTF buffers, freed at start, raise the dynamic
	 * mmap threshold and with it the trim threshold to ~10 MB, so no arena
	 * ever shrinks. Two arenas, fixed 1 MiB thresholds, and malloc_trim
	 * in the main loop after scrapes (never on a scrape's path, which
	 * would refault its pages every time). */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 20);

	log_to_journal = getenv("JOURNAL_STREAM") != NULL;
	hitel_log_set(log_stderr, NULL);
	hitel_log_set_level(verbose ? HITEL_LOG_DEBUG : HITEL_LOG_INFO);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.engine_idle, NULL);

	if (load(d.config_path, NULL, &l) < 0) {
		fprintf(stderr, "hiteld: %s: configuration not valid, not starting\n",
			d.config_path ? d.config_path : "(embedded default)");
		goto cleanup;
	}
	if (install_running(&d, &l) < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld", "out of memory");
		loaded_free(&l);
		goto cleanup;
	}
	hitel_log_set_level(verbose ? HITEL_LOG_DEBUG : d.opts.log_level);
	if (check) {
		printf("%s: configuration OK (%zu samplers)\n",
		       d.config_path ? d.config_path : "(embedded default)",
		       hitel_engine_sampler_count(d.engine));
		ret = 0;
		goto cleanup;
	}
	if (once > 0) {
		ret = run_once_mode(&d, once) < 0;
		goto cleanup;
	}
#ifndef HITEL_WITH_SNMP
	if (d.opts.snmp_listen[0] || d.opts.agentx_socket[0])
		hitel_log(HITEL_LOG_WARNING, "hiteld",
			  "SNMP options set but hiteld was built without SNMP (--disable-snmp)");
#endif
	hitel_engine_on_status(d.engine, on_sampler_status, &d);
	if (hitel_engine_start(d.engine) < 0) {
		hitel_log(HITEL_LOG_ERR, "hiteld", "cannot start the engine");
		goto cleanup;
	}
	for (started = 0; (size_t)started < NFRONTENDS; started++)
		if (frontends[started].start(&d) < 0) {
			hitel_log(HITEL_LOG_ERR, "hiteld", "cannot start %s, exiting",
				  frontends[started].name);
			goto stop;
		}
	if (!d.opts.http)
		hitel_log(HITEL_LOG_WARNING, "hiteld", "http = off: nothing exposes the data");
	hitel_log(HITEL_LOG_NOTICE, "hiteld", "hiteld %s running with %zu samplers", HITEL_VERSION,
		  hitel_engine_sampler_count(d.engine));

	for (;;) {
		const struct timespec tick = {TICK_S, 0};
		int sig = sigtimedwait(&sigs, NULL, &tick);

		if (sig < 0 && errno == EAGAIN) {
			unsigned long n = __atomic_load_n(&d.scrapes, __ATOMIC_RELAXED);

			for (i = 0; i < NFRONTENDS; i++)
				if (frontends[i].tick)
					frontends[i].tick(&d);
			if (n != trimmed_at) {
				trimmed_at = n;
				malloc_trim(0);
			}
			continue;
		}
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			hitel_log(HITEL_LOG_ERR, "hiteld", "sigtimedwait: %s", strerror(errno));
			goto stop;
		}
		if (sig == SIGHUP) {
			reload(&d);
			continue;
		}
		hitel_log(HITEL_LOG_NOTICE, "hiteld", "%s: stopping",
			  sig == SIGTERM ? "SIGTERM" : "SIGINT");
		ret = 0;
		break;
	}
stop:
	for (i = (size_t)started; i > 0; i--)
		frontends[i - 1].stop(&d);
	hitel_engine_stop(d.engine);
cleanup:
	window_put(&d, d.window);
	hitel_engine_free(d.engine);
	free(d.http_engine);
	hitel_config_free(d.config);
	pthread_cond_destroy(&d.engine_idle);
	pthread_mutex_destroy(&d.lock);
	return ret;
}
