/*
 * The node's log: time and level in front of each `event=... key=value` line, one write a line;
 * with --log-format json the same keys as one JSON object a line. Flow: node_log or a library's
 * line -> emit -> text, or node_log_json (the key=value body parsed back: fields -> object).
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Writes `ts=... level=... [node=...] ` and then body, as one line (or its JSON object). */
static void emit(const struct node_log *log, enum base_log_level level, const char *body)
{
    struct timespec ts;
    struct tm tm;
    char when[32], stamp[64];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof(stamp), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
    if (log->json) {
        char out[NODE_LOG_JSON_MAX];
        node_log_json(out, sizeof(out), stamp, base_log_level_name(level), log->node, body);
        fprintf(log->out, "%s\n", out);
    } else if (log->node) {
        /* One fprintf per line so concurrent writers never interleave inside a line. */
        fprintf(log->out, "ts=%s level=%s node=%s %s\n", stamp, base_log_level_name(level),
                log->node, body);
    } else {
        fprintf(log->out, "ts=%s level=%s %s\n", stamp, base_log_level_name(level), body);
    }
    fflush(log->out);
}

void node_log(const struct node_log *log, enum base_log_level level, const char *event,
              const char *fields_fmt, ...)
{
    if (level > log->level)
        return;
    char body[BASE_LOG_LINE_MAX + 64];
    int n = snprintf(body, sizeof(body), "event=%s", event);
    if (fields_fmt && n > 0 && (size_t)n < sizeof(body) - 1) {
        va_list ap;
        body[n++] = ' ';
        va_start(ap, fields_fmt);
        vsnprintf(body + n, sizeof(body) - (size_t)n, fields_fmt, ap);
        va_end(ap);
    }
    emit(log, level, body);
}

static void library_line(void *arg, enum base_log_level level, const char *line)
{
    const struct node_log *log = arg;
    if (level <= log->level)
        emit(log, level, line);
}

/* The libraries keep a copy of the logger: it reads the node's level of the moment, so
 * `tunless set --log-level` reaches them too, and a line below it is not even formatted (the
 * proxy's two lines per connection were about a fifth of the node's instructions per connect
 * when formatted and dropped). */
struct base_logger node_log_logger(struct node_log *log)
{
    return (struct base_logger){
        .fn = library_line, .arg = log, .level = BASE_LOG_DEBUG, .live = &log->level};
}

/* ---- JSON ---- */

struct json_out {
    char *buf;
    size_t cap, len;
    size_t done; /* the end of the last complete member */
    bool full;
};

static void put(struct json_out *o, const char *s, size_t n)
{
    if (o->full || o->len + n + 2 > o->cap) { /* room for the closing brace and NUL */
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* A JSON string of n bytes: quotes, escapes, and every byte outside printable ASCII as \u00XX
 * (a byte, not a code point), so the output is ASCII and always valid. */
static void put_string(struct json_out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\')
            put(o, (const char[]){'\\', (char)c}, 2);
        else if (c >= 0x20 && c < 0x7f)
            put(o, (const char *)&c, 1);
        else
            put(o, esc, (size_t)snprintf(esc, sizeof(esc), "\\u%04x", c));
    }
    put(o, "\"", 1);
}

/* A bare decimal integer (no sign, no leading zero, at most 15 digits: exact in a double). */
static bool is_number(const char *v, size_t n)
{
    if (n == 0 || n > 15 || (v[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

static void put_member(struct json_out *o, const char *key, size_t klen, const char *val,
                       size_t vlen, bool number)
{
    put(o, o->done > 1 ? "," : "", o->done > 1 ? 1 : 0);
    put_string(o, key, klen);
    put(o, ":", 1);
    if (number)
        put(o, val, vlen);
    else
        put_string(o, val, vlen);
    if (!o->full)
        o->done = o->len;
}

/* A quoted value as base_log_quote wrote it, unescaped into out; returns where it ends in p. */
static const char *unquote(const char *p, char *out, size_t cap, size_t *outlen)
{
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1] == 'x' && p[2] && p[3]) {
            unsigned v;
            char hex[3] = {p[2], p[3], 0};
            c = sscanf(hex, "%2x", &v) == 1 ? (char)v : '?';
            p += 3;
        } else if (c == '\\' && p[1] == 'n') {
            c = '\n';
            p++;
        } else if (c == '\\' && p[1]) {
            c = *++p;
        }
        if (n + 1 < cap)
            out[n++] = c;
    }
    *outlen = n;
    return *p ? p + 1 : p;
}

/* One `key=value` (value bare or quoted) at p; false when p holds no such pair. */
static bool next_pair(const char **pp, struct json_out *o)
{
    const char *p = *pp, *key = p;
    while (*p && *p != '=' && *p != ' ')
        p++;
    if (*p != '=' || p == key)
        return false;
    size_t klen = (size_t)(p - key);
    p++;
    char val[BASE_LOG_LINE_MAX];
    size_t vlen = 0;
    bool quoted = *p == '"';
    if (quoted) {
        p = unquote(p, val, sizeof(val), &vlen);
    } else {
        const char *v = p;
        while (*p && *p != ' ')
            p++;
        vlen = (size_t)(p - v) < sizeof(val) ? (size_t)(p - v) : sizeof(val);
        memcpy(val, v, vlen);
    }
    put_member(o, key, klen, val, vlen, !quoted && is_number(val, vlen));
    *pp = p;
    return true;
}

size_t node_log_json(char *out, size_t cap, const char *ts, const char *level, const char *node,
                     const char *body)
{
    if (cap < 3)
        return 0;
    struct json_out o = {.buf = out, .cap = cap};
    put(&o, "{", 1);
    o.done = o.len;
    put_member(&o, "ts", 2, ts, strlen(ts), false);
    put_member(&o, "level", 5, level, strlen(level), false);
    if (node)
        put_member(&o, "node", 4, node, strlen(node), false);
    const char *p = body;
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p && !next_pair(&p, &o)) { /* not key=value: the rest, as it is */
            put_member(&o, "msg", 3, p, strlen(p), false);
            break;
        }
    }
    o.len = o.done; /* a member that did not fit is left out whole */
    out[o.len++] = '}';
    out[o.len] = '\0';
    return o.len;
}
