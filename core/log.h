/* SPDX-License-Identifier: MIT */
/*
 * The library never prints: it logs through one process-wide callback that
 * the wrapper installs (collectd's plugin_log, net-snmp's snmp_log, stderr).
 */
#ifndef HITEL_LOG_H
#define HITEL_LOG_H

#include <stdarg.h>

enum hitel_log_level {
	HITEL_LOG_ERR = 3,
	HITEL_LOG_WARNING = 4,
	HITEL_LOG_NOTICE = 5,
	HITEL_LOG_INFO = 6,
	HITEL_LOG_DEBUG = 7,
};

/* msg is one line without a trailing newline, already prefixed with the
 * component ("hitel cpu: ..."). Called from any thread; the callback must be
 * thread-safe. */
typedef void (*hitel_log_fn)(enum hitel_log_level level, const char *msg, void *ctx);

/* Install the callback (NULL restores the default: stderr, level <= INFO).
 * Not thread-safe against concurrent logging: call before starting engines. */
void hitel_log_set(hitel_log_fn fn, void *ctx);
/* Messages above this level are dropped before formatting. */
void hitel_log_set_level(enum hitel_log_level max);

/* component: short name such as "engine" or "cpu". */
void hitel_log(enum hitel_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void hitel_vlog(enum hitel_log_level level, const char *component, const char *fmt,
		va_list ap) __attribute__((format(printf, 3, 0)));

#endif /* HITEL_LOG_H */
