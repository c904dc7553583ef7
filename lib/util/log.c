/* lib/util/log.c - logfmt/JSON line logger.
 *
 * State: the level and format, written once by log_setup() at start-up
 * before threads exist, read by every thread afterwards.
 */
#include "config.h"

#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/strbuf.h"
#include "util/time.h"

static struct {
	enum log_level level;
	bool json;
} log_state = { LOG_INFO, false };

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

int
log_setup(const char *level, const char *format, char *err, size_t errlen)
{
	int i, lvl = -1;

	for (i = 0; i < 4; i++)
		if (strcmp(level, log_level_names[i]) == 0)
			lvl = i;
	if (lvl < 0) {
		snprintf(err, errlen, "unrecognized log level \"%s\" (want debug, info, warn or error)", level);
		return -1;
	}
	if (strcmp(format, "logfmt") != 0 && strcmp(format, "json") != 0) {
		snprintf(err, errlen, "unrecognized log format \"%s\" (want logfmt or json)", format);
		return -1;
	}
	log_state.level = (enum log_level)lvl;
	log_state.json = strcmp(format, "json") == 0;
	return 0;
}

bool
log_enabled(enum log_level lvl)
{
	return lvl >= log_state.level;
}

/* log_value appends v quoted as the format wants it. */
static void
log_value(struct strbuf *sb, const char *v)
{
	const unsigned char *p;
	bool quote = log_state.json || *v == '\0';

	for (p = (const unsigned char *)v; !quote && *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\')
			quote = true;
	if (!quote) {
		strbuf_puts(sb, v);
		return;
	}
	strbuf_putc(sb, '"');
	for (p = (const unsigned char *)v; *p; p++) {
		switch (*p) {
		case '"': strbuf_puts(sb, "\\\""); break;
		case '\\': strbuf_puts(sb, "\\\\"); break;
		case '\n': strbuf_puts(sb, "\\n"); break;
		case '\t': strbuf_puts(sb, "\\t"); break;
		case '\r': strbuf_puts(sb, "\\r"); break;
		default:
			if (*p < 0x20)
				strbuf_printf(sb, "\\u%04x", *p);
			else
				strbuf_putc(sb, (char)*p);
		}
	}
	strbuf_putc(sb, '"');
}

static void
log_pair(struct strbuf *sb, const char *k, const char *v, bool first)
{
	if (log_state.json) {
		strbuf_puts(sb, first ? "{" : ",");
		log_value(sb, k);
		strbuf_putc(sb, ':');
	} else {
		if (!first)
			strbuf_putc(sb, ' ');
		strbuf_puts(sb, k);
		strbuf_putc(sb, '=');
	}
	log_value(sb, v ? v : "");
}

static void
log_vwrite(enum log_level lvl, const char *component, const char *msg, va_list kv)
{
	struct strbuf sb = STRBUF_INIT;
	char ts[32];
	const char *k, *v;
	ssize_t w;

	log_pair(&sb, "ts", time_format_rfc3339(time_now_ms(), ts, sizeof(ts)), true);
	log_pair(&sb, "level", log_level_names[lvl], false);
	log_pair(&sb, "component", component, false);
	log_pair(&sb, "msg", msg, false);
	while ((k = va_arg(kv, const char *)) != NULL) {
		v = va_arg(kv, const char *);
		log_pair(&sb, k, v, false);
	}
	strbuf_puts(&sb, log_state.json ? "}\n" : "\n");
	w = write(STDERR_FILENO, sb.buf, sb.len);
	(void)w;	/* nowhere to report a failing stderr */
	strbuf_free(&sb);
}

void
log_kv(enum log_level lvl, const char *component, const char *msg, ...)
{
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, msg);
	log_vwrite(lvl, component, msg, ap);
	va_end(ap);
}

/* log_msg_write passes an already formatted msg with no key/value pairs. */
static void
log_msg_write(enum log_level lvl, const char *component, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	log_vwrite(lvl, component, msg, ap);
	va_end(ap);
}

void
log_msg(enum log_level lvl, const char *component, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	strbuf_vprintf(&sb, fmt, ap);
	va_end(ap);
	log_msg_write(lvl, component, strbuf_cstr(&sb), (const char *)NULL);
	strbuf_free(&sb);
}
