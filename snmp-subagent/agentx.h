/* SPDX-License-Identifier: MIT */
/*
 * The SNMP side of hiteld: serves HITEL-MIB (snmp-subagent/HITEL-MIB.txt,
 * docs/snmp.md) from engine snapshots, either as an AgentX subagent of a
 * master agent such as snmpd, or as a small SNMP agent of its own.
 *
 * Threads. net-snmp keeps global state and is not thread-safe, so one agent
 * thread, started here, makes every net-snmp call: initialisation, request
 * handling, traps, shutdown. Other threads only reach it through
 * hitel_agentx_sampler_status(), which queues and wakes the agent thread
 * through a pipe. Consequently there is at most one running instance per
 * process, and the caller must not use net-snmp itself while it runs.
 *
 * Data. A request finds the tables in a cache rebuilt at most every cache_ms
 * (whole seconds, rounded up) from the engine: the cumulative snapshot for
 * values, counts, sums and buckets; the last complete window of length
 * cache_ms (registered here with hitel_engine_window_add) for window
 * minimum, maximum and percentiles, falling back to the cumulative state
 * until a window has completed.
 *
 * This header includes no net-snmp header; agentx.c is the only file that
 * does.
 */
#ifndef HITEL_AGENTX_H
#define HITEL_AGENTX_H

#include "engine.h"
#include "export.h"

struct hitel_agentx;

struct hitel_agentx_opts {
	/* AgentX master address: "unix:/path", "/path" or "tcp:host:port".
	 * NULL: net-snmp's default, "/var/agentx/master". Ignored with
	 * listen. */
	const char *socket;
	/* NULL: be an AgentX subagent. Otherwise act as an SNMP agent of our
	 * own (v1/v2c, read-only) listening on this net-snmp transport
	 * address, e.g. "udp:127.0.0.1:1161"; no snmpd is needed. */
	const char *listen;
	/* Own-agent mode: the community accepted (NULL: "public"). */
	const char *community;
	/* Own-agent mode: where traps go as SNMPv2c notifications, e.g.
	 * "127.0.0.1:162" (community as above). NULL: no traps. */
	const char *trap_sink;
	/* Cache period and window length in milliseconds, >= 1/sample_rate of
	 * the engine (0: 5000). Requests see data at most this old. */
	unsigned int cache_ms;
	/* Percentiles and buckets to publish (NULL: the defaults of
	 * hitel_export_opts_default). Copied. */
	const struct hitel_export_opts *export;
};

/*
 * Start serving engine e (which must outlive the returned handle, or its
 * replacement by hitel_agentx_set_engine; it may be started before or
 * after). Registers the window of cache_ms with e. The
 * agent thread initialises net-snmp and registers the MIB before this
 * returns. In subagent mode a missing master is not an error: the subagent
 * connects when the master appears, and reconnects within about two seconds
 * (agentxPingInterval 2) after the master restarts.
 *
 * Sampler up/down notifications are not wired automatically (an engine has
 * one status callback): forward them with hitel_agentx_sampler_status().
 *
 * Returns NULL and sets errno: EINVAL (bad options), EBUSY (an instance is
 * already running in this process), EADDRINUSE or another errno when the
 * listen address cannot be opened, ENOMEM, or the errno of pthread_create.
 * Logs the reason through hitel_log (component "snmp").
 */
struct hitel_agentx *hitel_agentx_start(struct hitel_engine *e, const struct hitel_agentx_opts *o);

/*
 * Serve engine e instead of the current one, after hitel_engine_takeover()
 * replaced it on a reload: e must be on the same registry (cached rows
 * point at its strings; the SNMP index of every series, a hash of its name
 * and labels, stays the same). Registers the window of cache_ms with e
 * (idempotent: register it before the takeover and the window's snapshots
 * carry over). Returns once the agent thread no longer uses the previous
 * engine, which the caller may then free; 0, or -EINVAL (NULL argument,
 * other registry, window too short for e) or -ENOMEM, and the previous
 * engine stays.
 * Call from the thread that started a, not concurrently with
 * hitel_agentx_stop().
 */
int hitel_agentx_set_engine(struct hitel_agentx *a, struct hitel_engine *e);

/* Stop the agent thread (closing the AgentX session or the listening
 * socket), shut net-snmp down and free everything. NULL accepted. Not
 * thread-safe against a concurrent hitel_agentx_sampler_status() on the
 * same handle. */
void hitel_agentx_stop(struct hitel_agentx *a);

/*
 * Queue a hitelSamplerDown (st->up == 0) or hitelSamplerUp notification. Safe
 * from any thread, including inside the engine's status callback
 * (hitel_engine_on_status): it copies st, takes a short mutex and writes one
 * byte to a pipe, never blocking on the network. The agent thread sends it
 * at once when connected to the master, else when the master returns. At
 * most 64 notifications wait; older ones are dropped (and counted in a
 * warning) beyond that. NULL a is accepted and ignored.
 */
void hitel_agentx_sampler_status(struct hitel_agentx *a, const struct hitel_sampler_status *st);

#endif /* HITEL_AGENTX_H */
