#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int node_log_level_parse(const char *name, enum node_log_level *out)
{
    for (int i = 0; i <= NODE_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum node_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *node_log_level_name(enum node_log_level level)
{
    return level <= NODE_LOG_DEBUG ? level_names[level] : "unknown";
}

void node_log(const struct node_log *log, enum node_log_level level, const char *event,
              const char *fields_fmt, ...)
{
    if (level > log->level)
        return;
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf-built line per event so concurrent writers never interleave inside a line. */
    char line[2048];
    int n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s event=%s", when,
                     ts.tv_nsec / 1000000, level_names[level], event);
    if (fields_fmt && n > 0 && (size_t)n < sizeof(line) - 1) {
        va_list ap;
        line[n++] = ' ';
        va_start(ap, fields_fmt);
        vsnprintf(line + n, sizeof(line) - (size_t)n, fields_fmt, ap);
        va_end(ap);
    }
    fprintf(log->out, "%s\n", line);
    fflush(log->out);
}

const char *node_log_quote(char *buf, size_t cap, const char *value)
{
    int needs = value[0] == '\0';
    for (const char *p = value; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            needs = 1;
    if (!needs)
        return value;
    size_t o = 0;
    if (cap < 3)
        return "\"\"";
    buf[o++] = '"';
    for (const char *p = value; *p && o + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            buf[o++] = '\\';
        buf[o++] = c < 0x20 ? '?' : (char)c;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
