/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>

static void log_stderr(enum hitel_log_level level, const char *msg, void *ctx)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };

	(void)ctx;
	fprintf(stderr, "%s: %s\n", names[level & 7], msg);
}

static hitel_log_fn log_fn = log_stderr;
static void *log_ctx;
static enum hitel_log_level log_max = HITEL_LOG_INFO;

void hitel_log_set(hitel_log_fn fn, void *ctx)
{
	log_fn = fn ? fn : log_stderr;
	log_ctx = fn ? ctx : NULL;
}

void hitel_log_set_level(enum hitel_log_level max)
{
	log_max = max;
}

void hitel_vlog(enum hitel_log_level level, const char *component, const char *fmt,
		va_list ap)
{
	char buf[1024];
	int n;

	if (level > log_max)
		return;
	n = snprintf(buf, sizeof(buf), "hitel %s: ", component ? component : "core");
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	log_fn(level, buf, log_ctx);
}

void hitel_log(enum hitel_log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hitel_vlog(level, component, fmt, ap);
	va_end(ap);
}
