/* SPDX-License-Identifier: MIT */
/*
 * hitel-agentx: the engine plus the SNMP side of hiteld and nothing else, to
 * test and benchmark agentx.c on its own (hiteld is the real daemon).
 *
 *   hitel-agentx [-c CONFIG] [-x SOCKET | -l LISTEN] [-t CACHE_MS]
 *                [-C COMMUNITY] [-T TRAPSINK] [-v]
 *
 * CONFIG is a hiteld configuration file (default: the embedded default, i.e.
 * every default sampler); SIGTERM or SIGINT stops it.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentx.h"
#include "conffile.h"
#include "engine.h"
#include "export.h"
#include "log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hitel-agentx [-c CONFIG] [-x SOCKET | -l LISTEN] [-t CACHE_MS]\n"
		   "                    [-C COMMUNITY] [-T TRAPSINK] [-v]\n"
		   "  -c CONFIG     hiteld configuration file (default: embedded default)\n"
		   "  -x SOCKET     AgentX master socket (default /var/agentx/master)\n"
		   "  -l LISTEN     act as an SNMP agent on this address (udp:127.0.0.1:1161)\n"
		   "  -t CACHE_MS   cache period and window length (default 5000)\n"
		   "  -C COMMUNITY  community in -l mode (default public)\n"
		   "  -T TRAPSINK   trap destination in -l mode (host:port)\n"
		   "  -v            debug logging\n");
}

/* Set once the agent exists; the engine's status callback reads it. */
static struct hitel_agentx *agent;

static void on_status(const struct hitel_sampler_status *st, void *ctx)
{
	(void)ctx;
	hitel_agentx_sampler_status(__atomic_load_n(&agent, __ATOMIC_ACQUIRE), st);
}

int main(int argc, char **argv)
{
	struct hitel_agentx_opts ao = { 0 };
	struct hitel_export_opts xo;
	struct hitel_config_target t = { 0 };
	struct hitel_engine *e = NULL;
	struct hitel_agentx *a = NULL;
	const char *conf = NULL;
	char err[512] = "";
	sigset_t sigs;
	FILE *f = NULL;
	int opt, sig, rc = 1;

	while ((opt = getopt(argc, argv, "c:x:l:t:C:T:vh")) != -1) {
		switch (opt) {
		case 'c':
			conf = optarg;
			break;
		case 'x':
			ao.socket = optarg;
			break;
		case 'l':
			ao.listen = optarg;
			break;
		case 't':
			ao.cache_ms = (unsigned int)strtoul(optarg, NULL, 10);
			if (!ao.cache_ms) {
				fprintf(stderr, "hitel-agentx: -t: expected milliseconds > 0\n");
				return 2;
			}
			break;
		case 'C':
			ao.community = optarg;
			break;
		case 'T':
			ao.trap_sink = optarg;
			break;
		case 'v':
			hitel_log_set_level(HITEL_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Threads created from here on inherit the mask: sigwait() below is
	 * the only place signals arrive. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	e = hitel_engine_new();
	if (!e) {
		perror("hitel-agentx: engine");
		goto cleanup;
	}
	hitel_export_opts_default(&xo);
	t.engine = e;
	t.export = &xo;
	if (conf) {
		f = fopen(conf, "r");
		if (!f) {
			fprintf(stderr, "hitel-agentx: %s: %s\n", conf, strerror(errno));
			goto cleanup;
		}
	}
	if (hitel_config_load(f, conf, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "hitel-agentx: %s\n", err);
		goto cleanup;
	}
	ao.export = &xo;
	hitel_engine_on_status(e, on_status, NULL);
	a = hitel_agentx_start(e, &ao);
	if (!a) {
		fprintf(stderr, "hitel-agentx: cannot start the SNMP agent: %s\n", strerror(errno));
		goto cleanup;
	}
	__atomic_store_n(&agent, a, __ATOMIC_RELEASE);
	if (hitel_engine_start(e) < 0) {
		fprintf(stderr, "hitel-agentx: cannot start the engine\n");
		goto cleanup;
	}
	while (sigwait(&sigs, &sig) != 0)
		;
	rc = 0;
cleanup:
	/* Engine first: no status callback may run into a stopped agent. */
	if (e)
		hitel_engine_stop(e);
	__atomic_store_n(&agent, NULL, __ATOMIC_RELEASE);
	hitel_agentx_stop(a);
	hitel_engine_free(e);
	if (f)
		fclose(f);
	return rc;
}
