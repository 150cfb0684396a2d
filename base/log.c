/* Log levels by name, one formatted line to the owner's callback, and key=value quoting. */
#include <stdio.h>
#include <string.h>

#include "base.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int base_log_level_parse(const char *name, enum base_log_level *out)
{
    for (int i = 0; i <= BASE_LOG_DEBUG; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            *out = (enum base_log_level)i;
            return 0;
        }
    }
    return BASE_EPARSE;
}

const char *base_log_level_name(enum base_log_level level)
{
    if ((int)level < 0 || level > BASE_LOG_DEBUG)
        return "unknown";
    return level_names[level];
}

void base_vlogf(const struct base_logger *l, enum base_log_level level, const char *fmt, va_list ap)
{
    if (!base_log_enabled(l, level))
        return;
    char line[BASE_LOG_LINE_MAX];
    vsnprintf(line, sizeof(line), fmt, ap);
    l->fn(l->arg, level, line);
}

void base_logf(const struct base_logger *l, enum base_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    base_vlogf(l, level, fmt, ap);
    va_end(ap);
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
            return true;
    return false;
}

/* Appends one escaped byte; returns the new length, or cap when it would not fit. */
static size_t put_escaped(char *buf, size_t n, size_t cap, unsigned char c)
{
    char tmp[5];
    int len;
    if (c == '"' || c == '\\')
        len = snprintf(tmp, sizeof(tmp), "\\%c", c);
    else if (c == '\n')
        len = snprintf(tmp, sizeof(tmp), "\\n");
    else if (c < ' ' || c >= 0x7f)
        len = snprintf(tmp, sizeof(tmp), "\\x%02x", c);
    else
        len = snprintf(tmp, sizeof(tmp), "%c", c);
    if (n + (size_t)len + 2 > cap) /* room for the closing quote and NUL */
        return cap;
    memcpy(buf + n, tmp, (size_t)len);
    return n + (size_t)len;
}

const char *base_log_quote(char *buf, size_t cap, const char *value)
{
    if (cap == 0)
        return buf;
    if (!value)
        value = "";
    if (!needs_quotes(value)) {
        snprintf(buf, cap, "%s", value);
        return buf;
    }
    if (cap < 3) {
        buf[0] = '\0';
        return buf;
    }
    size_t n = 0;
    buf[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        size_t next = put_escaped(buf, n, cap, *p);
        if (next == cap)
            break;
        n = next;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

const char *base_log_peer(char *buf, size_t cap, const char *name, const char *key8)
{
    char q[2 * BASE_LOG_PEER_NAME_MAX + 3];
    const char *shown = name && *name ? name : key8;
    snprintf(buf, cap, "peer=%s peer_key=%.8s", base_log_quote(q, sizeof(q), shown), key8);
    return buf;
}
