/* SPDX-License-Identifier: MIT */
#include "conffile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* What an entry turned out to be when applied (for hitel_config_same_engine). */
enum entry_class {
	CLASS_UNKNOWN = 0,
	CLASS_ENGINE,	/* top-level engine key */
	CLASS_SAMPLERS, /* the "samplers" list */
	CLASS_SAMPLER,	/* anything inside a [sampler X] section */
	CLASS_EXPORT,
	CLASS_WRAPPER,
};

struct entry {
	char *sampler; /* section [sampler X]; NULL at top level */
	char *key;     /* NULL: the section header itself */
	char *value;
	char *file;
	unsigned int line;
	int export_only; /* from an [export] section */
	enum entry_class cls;
};

struct hitel_config {
	struct entry *v;
	size_t n, cap;
};

/* Error sink: every error is logged; the first one is kept for the caller. */
struct errs {
	char *buf;
	size_t len;
	unsigned int count;
};

static void __attribute__((format(printf, 2, 3))) report(struct errs *es, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hitel_log(HITEL_LOG_ERR, "config", "%s", msg);
	if (!es->count && es->buf && es->len)
		snprintf(es->buf, es->len, "%s", msg);
	es->count++;
}

/* The engine says "rate: ... for sampler 'disk', got '0'" and the exporter
 * "option 'percentiles': ...": we say where, which option and which sampler
 * ourselves, so drop those parts rather than repeat them. */
static void tidy_message(const char *msg, const struct entry *e, char *out, size_t len)
{
	size_t klen = strlen(e->key);
	char pat[300];
	const char *hit;

	if (strncmp(msg, "option '", 8) == 0 && strncmp(msg + 8, e->key, klen) == 0 &&
	    strncmp(msg + 8 + klen, "': ", 3) == 0)
		msg += 8 + klen + 3;
	else if (strncmp(msg, e->key, klen) == 0 && strncmp(msg + klen, ": ", 2) == 0)
		msg += klen + 2;
	snprintf(out, len, "%s", msg);
	if (!e->sampler)
		return;
	snprintf(pat, sizeof(pat), " for sampler '%s'", e->sampler);
	hit = strstr(out, pat);
	if (hit)
		memmove(out + (hit - out), hit + strlen(pat), strlen(hit + strlen(pat)) + 1);
}

static void report_option(struct errs *es, const struct entry *e, const char *msg)
{
	char tidy[512];

	tidy_message(msg, e, tidy, sizeof(tidy));
	if (e->sampler)
		report(es, "%s:%u: option '%s' for sampler '%s': %s", e->file, e->line, e->key,
		       e->sampler, tidy);
	else
		report(es, "%s:%u: option '%s': %s", e->file, e->line, e->key, tidy);
}

static void report_unknown(struct errs *es, const struct entry *e)
{
	if (e->sampler)
		report(es, "%s:%u: unknown option '%s' for sampler '%s'", e->file, e->line, e->key,
		       e->sampler);
	else if (e->export_only)
		report(es, "%s:%u: unknown option '%s' in section [export]", e->file, e->line,
		       e->key);
	else
		report(es, "%s:%u: unknown option '%s'", e->file, e->line, e->key);
}

static void known_samplers(char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; hitel_builtin_samplers[i] && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
				 hitel_builtin_samplers[i]->name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static int sampler_index(const char *name)
{
	int i;

	for (i = 0; hitel_builtin_samplers[i]; i++)
		if (strcmp(hitel_builtin_samplers[i]->name, name) == 0)
			return i;
	return -1;
}

static size_t builtin_count(void)
{
	size_t n = 0;

	while (hitel_builtin_samplers[n])
		n++;
	return n;
}

struct hitel_config *hitel_config_new(void)
{
	return calloc(1, sizeof(struct hitel_config));
}

void hitel_config_free(struct hitel_config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].sampler);
		free(c->v[i].key);
		free(c->v[i].value);
		free(c->v[i].file);
	}
	free(c->v);
	free(c);
}

static char *dup_or_null(const char *s, int *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = 1;
	return d;
}

static int add_entry(struct hitel_config *c, const char *sampler, const char *key,
		     const char *value, const char *file, unsigned int line, int export_only)
{
	struct entry *e;
	int oom = 0;

	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct entry *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	e = &c->v[c->n];
	memset(e, 0, sizeof(*e));
	e->sampler = dup_or_null(sampler, &oom);
	e->key = dup_or_null(key, &oom);
	e->value = dup_or_null(value ? value : "", &oom);
	e->file = dup_or_null(file ? file : "(config)", &oom);
	e->line = line;
	e->export_only = export_only;
	if (oom) {
		free(e->sampler);
		free(e->key);
		free(e->value);
		free(e->file);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

int hitel_config_add(struct hitel_config *c, const char *sampler, const char *key,
		     const char *value, const char *file, unsigned int line)
{
	if (!c || (!sampler && !key))
		return -EINVAL;
	return add_entry(c, sampler, key, value, file, line, 0);
}

/* --- the file syntax ------------------------------------------------------ */

enum section { SEC_TOP, SEC_SAMPLER, SEC_EXPORT, SEC_BAD };

struct parser {
	struct hitel_config *c;
	const char *file;
	unsigned int line;
	enum section sec;
	char *sampler; /* name of the current [sampler X] */
	struct errs es;
	int err; /* first hard error (-ENOMEM) */
};

static char *skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static void rtrim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
}

/* Only whitespace or a comment may follow. */
static int rest_is_empty(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' || *p == '#';
}

static void parse_section(struct parser *ps, char *p)
{
	char *end = strchr(p, ']');
	char *name, *word;

	if (!end || !rest_is_empty(end + 1)) {
		report(&ps->es, "%s:%u: syntax error: expected '[sampler NAME]' or '[export]'",
		       ps->file, ps->line);
		ps->sec = SEC_BAD;
		return;
	}
	*end = '\0';
	name = skip_ws(p + 1);
	rtrim(name);
	free(ps->sampler);
	ps->sampler = NULL;
	if (strcmp(name, "export") == 0) {
		ps->sec = SEC_EXPORT;
		return;
	}
	if (strncmp(name, "sampler", 7) == 0 && (name[7] == ' ' || name[7] == '\t')) {
		word = skip_ws(name + 7);
		if (*word && !strpbrk(word, " \t")) {
			ps->sampler = strdup(word);
			if (!ps->sampler) {
				ps->err = -ENOMEM;
				return;
			}
			ps->sec = SEC_SAMPLER;
			if (add_entry(ps->c, ps->sampler, NULL, NULL, ps->file, ps->line, 0) < 0)
				ps->err = -ENOMEM;
			return;
		}
	}
	report(&ps->es, "%s:%u: unknown section '[%s]' (expected '[sampler NAME]' or '[export]')",
	       ps->file, ps->line, name);
	ps->sec = SEC_BAD;
}

/* Value after '=': quoted with \" and \\ escapes, or bare up to a comment
 * that starts after whitespace. Rewrites in place; NULL on a syntax error. */
static char *parse_value(char *p, const char **why)
{
	char *out, *q;

	p = skip_ws(p);
	if (*p != '"') {
		for (q = p; *q; q++)
			if (*q == '#' && (q == p || q[-1] == ' ' || q[-1] == '\t')) {
				*q = '\0';
				break;
			}
		rtrim(p);
		return p;
	}
	out = q = p;
	for (p++; *p && *p != '"'; p++) {
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*q++ = *p;
	}
	if (*p != '"') {
		*why = "unterminated quoted value";
		return NULL;
	}
	if (!rest_is_empty(p + 1)) {
		*why = "text after the quoted value";
		return NULL;
	}
	*q = '\0';
	return out;
}

static int valid_key(const char *k)
{
	if (!*k)
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' && *k != '.')
			return 0;
	return 1;
}

static void parse_line(struct parser *ps, char *line)
{
	char *p = skip_ws(line), *eq, *key, *value;
	const char *why = NULL;

	rtrim(p);
	if (*p == '\0' || *p == '#')
		return;
	if (*p == '[') {
		parse_section(ps, p);
		return;
	}
	eq = strchr(p, '=');
	if (!eq) {
		report(&ps->es, "%s:%u: syntax error: expected 'key = value' or '[section]'",
		       ps->file, ps->line);
		return;
	}
	*eq = '\0';
	key = p;
	rtrim(key);
	if (!valid_key(key)) {
		report(&ps->es, "%s:%u: syntax error: '%s' is not an option name", ps->file,
		       ps->line, key);
		return;
	}
	value = parse_value(eq + 1, &why);
	if (!value) {
		report(&ps->es, "%s:%u: option '%s': %s", ps->file, ps->line, key, why);
		return;
	}
	if (ps->sec == SEC_BAD)
		return; /* already reported at the section header */
	if (add_entry(ps->c, ps->sec == SEC_SAMPLER ? ps->sampler : NULL, key, value, ps->file,
		      ps->line, ps->sec == SEC_EXPORT) < 0)
		ps->err = -ENOMEM;
}

static void parser_init(struct parser *ps, struct hitel_config *c, const char *file, char *err,
			size_t errlen)
{
	memset(ps, 0, sizeof(*ps));
	ps->c = c;
	ps->file = file ? file : "(config)";
	ps->sec = SEC_TOP;
	ps->es.buf = err;
	ps->es.len = errlen;
	if (err && errlen)
		err[0] = '\0';
}

static int parser_finish(struct parser *ps)
{
	free(ps->sampler);
	if (ps->err)
		return ps->err;
	return ps->es.count ? -EINVAL : 0;
}

static void parse_raw_line(struct parser *ps, char *line, size_t len)
{
	ps->line++;
	if (memchr(line, '\0', len)) {
		report(&ps->es, "%s:%u: syntax error: NUL byte in line", ps->file, ps->line);
		return;
	}
	parse_line(ps, line);
}

int hitel_config_parse(struct hitel_config *c, const char *buf, size_t len, const char *file,
		       char *err, size_t errlen)
{
	struct parser ps;
	size_t off = 0;

	if (!c || (!buf && len))
		return -EINVAL;
	parser_init(&ps, c, file, err, errlen);
	while (off < len && !ps.err) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		char *line = malloc(n + 1);

		if (!line) {
			ps.err = -ENOMEM;
			break;
		}
		memcpy(line, buf + off, n);
		line[n] = '\0';
		parse_raw_line(&ps, line, n);
		free(line);
		off += n + (nl ? 1 : 0);
	}
	return parser_finish(&ps);
}

int hitel_config_parse_file(struct hitel_config *c, FILE *f, const char *file, char *err,
			    size_t errlen)
{
	struct parser ps;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret;

	if (!c || !f)
		return -EINVAL;
	parser_init(&ps, c, file, err, errlen);
	while (!ps.err && (n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		parse_raw_line(&ps, line, (size_t)n);
	}
	free(line);
	if (!ps.err && ferror(f)) {
		ps.err = errno ? -errno : -EIO;
		report(&ps.es, "%s: read error: %s", ps.file, strerror(-ps.err));
	}
	ret = parser_finish(&ps);
	return ret;
}

/* --- applying ------------------------------------------------------------- */

/* "default all none name -name", separated by blanks or commas. */
static void apply_samplers_list(struct errs *es, struct entry *e, unsigned char *set, size_t nb)
{
	char *copy = strdup(e->value), *tok, *save = NULL;
	unsigned char next[64];
	size_t i;
	int bad = 0;

	if (!copy) {
		report(es, "%s:%u: out of memory", e->file, e->line);
		return;
	}
	memset(next, 0, sizeof(next));
	for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		int remove = tok[0] == '-';
		const char *name = tok + remove;
		int idx;

		if (strcmp(name, "default") == 0 || strcmp(name, "all") == 0) {
			int all = name[0] == 'a';

			for (i = 0; i < nb; i++)
				if (all || hitel_builtin_samplers[i]->default_enabled)
					next[i] = !remove;
			continue;
		}
		if (strcmp(name, "none") == 0 && !remove) {
			memset(next, 0, sizeof(next));
			continue;
		}
		idx = sampler_index(name);
		if (idx < 0) {
			char known[512];

			known_samplers(known, sizeof(known));
			report(es, "%s:%u: option 'samplers': unknown sampler '%s' (known: %s)",
			       e->file, e->line, name, known);
			bad = 1;
			continue;
		}
		next[idx] = !remove;
	}
	free(copy);
	if (!bad)
		memcpy(set, next, nb);
}

/* Sections of samplers left out of the set still get their options checked,
 * on an engine that is never started (so no sampler init runs). */
static void check_on_scratch(struct hitel_config *c, struct errs *es, const char *name,
			     struct hitel_engine **scratch)
{
	struct hitel_sampler *s;
	char msg[512];
	size_t i;

	if (!*scratch) {
		*scratch = hitel_engine_new();
		if (!*scratch)
			return; /* cannot check: not a reason to refuse the file */
		for (i = 0; i < c->n; i++)
			if (c->v[i].cls == CLASS_ENGINE)
				hitel_engine_set(*scratch, c->v[i].key, c->v[i].value, msg,
						 sizeof(msg));
	}
	s = hitel_engine_sampler_add(*scratch, name);
	if (!s)
		return;
	for (i = 0; i < c->n; i++) {
		struct entry *e = &c->v[i];
		int r;

		if (!e->sampler || !e->key || strcmp(e->sampler, name) != 0 ||
		    strcmp(e->key, "enabled") == 0)
			continue;
		msg[0] = '\0';
		r = hitel_sampler_set(s, e->key, e->value, msg, sizeof(msg));
		if (r == -ENOENT)
			report_unknown(es, e);
		else if (r < 0)
			report_option(es, e, msg);
	}
}

static void apply_sampler(struct hitel_config *c, const struct hitel_config_target *t,
			  struct errs *es, const char *name)
{
	struct hitel_sampler *s = hitel_engine_sampler_add(t->engine, name);
	char msg[512];
	size_t i;

	if (!s) {
		report(es, "sampler '%s': cannot add: %s", name, strerror(errno));
		return;
	}
	for (i = 0; i < c->n; i++) {
		struct entry *e = &c->v[i];
		int r;

		if (!e->sampler || !e->key || strcmp(e->sampler, name) != 0 ||
		    strcmp(e->key, "enabled") == 0)
			continue;
		msg[0] = '\0';
		r = hitel_sampler_set(s, e->key, e->value, msg, sizeof(msg));
		if (r == -ENOENT)
			report_unknown(es, e);
		else if (r < 0)
			report_option(es, e, msg);
	}
}

/* Section headers and "enabled" keys: which samplers the sections add or
 * remove. Unknown sampler names are reported once, at their first line. */
static void apply_sections(struct hitel_config *c, struct errs *es, unsigned char *set,
			   unsigned char *section, size_t nb)
{
	int enabled[64];
	size_t i;

	for (i = 0; i < nb; i++)
		enabled[i] = -1;
	for (i = 0; i < c->n; i++) {
		struct entry *e = &c->v[i];
		int idx, on;

		if (!e->sampler)
			continue;
		e->cls = CLASS_SAMPLER;
		idx = sampler_index(e->sampler);
		if (idx < 0) {
			char known[512];
			size_t j;
			int first = 1;

			/* Report each unknown name once. */
			for (j = 0; j < i; j++)
				if (c->v[j].sampler && strcmp(c->v[j].sampler, e->sampler) == 0)
					first = 0;
			if (first) {
				known_samplers(known, sizeof(known));
				report(es, "%s:%u: sampler '%s': unknown sampler (known: %s)",
				       e->file, e->line, e->sampler, known);
			}
			continue;
		}
		section[idx] = 1;
		if (e->key && strcmp(e->key, "enabled") == 0) {
			if (hitel_parse_bool(e->value, &on) < 0)
				report_option(es, e, "not a boolean (true/false/yes/no/on/off)");
			else
				enabled[idx] = on;
		}
	}
	for (i = 0; i < nb; i++)
		if (section[i])
			set[i] = enabled[i] != 0;
}

int hitel_config_apply(struct hitel_config *c, const struct hitel_config_target *t, char *err,
		       size_t errlen)
{
	struct errs es = {err, errlen, 0};
	struct hitel_engine *scratch = NULL;
	unsigned char set[64], section[64];
	size_t i, nb = builtin_count();
	char msg[512];

	if (err && errlen)
		err[0] = '\0';
	if (!c || !t || !t->engine || nb > sizeof(set))
		return -EINVAL;

	/* 1. Engine keys (sample_rate bounds every sampler's rate) and the set. */
	memset(set, 0, sizeof(set));
	memset(section, 0, sizeof(section));
	for (i = 0; i < nb; i++)
		set[i] = hitel_builtin_samplers[i]->default_enabled != 0;
	for (i = 0; i < c->n; i++) {
		struct entry *e = &c->v[i];
		int r;

		if (e->sampler || !e->key || e->export_only)
			continue;
		if (strcmp(e->key, "samplers") == 0) {
			e->cls = CLASS_SAMPLERS;
			apply_samplers_list(&es, e, set, nb);
			continue;
		}
		msg[0] = '\0';
		r = hitel_engine_set(t->engine, e->key, e->value, msg, sizeof(msg));
		if (r == 0) {
			e->cls = CLASS_ENGINE;
		} else if (r != -ENOENT) {
			e->cls = CLASS_ENGINE;
			report_option(&es, e, msg);
		}
	}

	/* 2. Sections, then the samplers in table order with their options. */
	apply_sections(c, &es, set, section, nb);
	for (i = 0; i < nb; i++) {
		if (set[i])
			apply_sampler(c, t, &es, hitel_builtin_samplers[i]->name);
		else if (section[i])
			check_on_scratch(c, &es, hitel_builtin_samplers[i]->name, &scratch);
	}
	hitel_engine_free(scratch);

	/* 3. Exporter and wrapper keys. */
	for (i = 0; i < c->n; i++) {
		struct entry *e = &c->v[i];
		int r = -ENOENT;

		if (e->sampler || !e->key || e->cls != CLASS_UNKNOWN)
			continue;
		msg[0] = '\0';
		if (t->export)
			r = hitel_export_set(t->export, e->key, e->value, msg, sizeof(msg));
		if (r != -ENOENT) {
			e->cls = CLASS_EXPORT;
		} else if (t->key && !e->export_only) {
			msg[0] = '\0';
			r = t->key(e->key, e->value, msg, sizeof(msg), t->ctx);
			if (r != -ENOENT)
				e->cls = CLASS_WRAPPER;
		}
		if (r == -ENOENT)
			report_unknown(&es, e);
		else if (r < 0)
			report_option(&es, e, msg[0] ? msg : strerror(-r));
	}
	return es.count ? -EINVAL : 0;
}

static int engine_class(enum entry_class cls)
{
	return cls == CLASS_ENGINE || cls == CLASS_SAMPLERS || cls == CLASS_SAMPLER;
}

static int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int hitel_config_same_engine(const struct hitel_config *a, const struct hitel_config *b)
{
	size_t i = 0, j = 0;

	if (!a || !b)
		return a == b;
	for (;;) {
		while (i < a->n && !engine_class(a->v[i].cls))
			i++;
		while (j < b->n && !engine_class(b->v[j].cls))
			j++;
		if (i == a->n || j == b->n)
			return i == a->n && j == b->n;
		if (!str_eq(a->v[i].sampler, b->v[j].sampler) ||
		    !str_eq(a->v[i].key, b->v[j].key) || !str_eq(a->v[i].value, b->v[j].value))
			return 0;
		i++;
		j++;
	}
}

/* After syntax errors still apply what parsed, so one run reports the
 * semantic errors too; err keeps the first (syntax) error. */
static int apply_after_parse(struct hitel_config *c, int parsed,
			     const struct hitel_config_target *t, char *err, size_t errlen)
{
	int ret;

	if (parsed && parsed != -EINVAL)
		return parsed;
	ret = hitel_config_apply(c, t, parsed ? NULL : err, parsed ? 0 : errlen);
	return parsed ? parsed : ret;
}

int hitel_config_load(FILE *f, const char *file, const struct hitel_config_target *t, char *err,
		      size_t errlen)
{
	struct hitel_config *c = hitel_config_new();
	int ret;

	if (!c)
		return -ENOMEM;
	ret = f ? hitel_config_parse_file(c, f, file, err, errlen) : 0;
	ret = apply_after_parse(c, ret, t, err, errlen);
	hitel_config_free(c);
	return ret;
}

int hitel_config_load_buffer(const char *buf, size_t len, const char *file,
			     const struct hitel_config_target *t, char *err, size_t errlen)
{
	struct hitel_config *c = hitel_config_new();
	int ret;

	if (!c)
		return -ENOMEM;
	ret = hitel_config_parse(c, buf, len, file, err, errlen);
	ret = apply_after_parse(c, ret, t, err, errlen);
	hitel_config_free(c);
	return ret;
}
