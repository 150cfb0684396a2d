/* The node's log: time and level in front of each `event=... key=value` line, one write a line. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

/* Writes `ts=... level=... [node=...] ` and then body, as one line. */
static void emit(const struct node_log *log, enum base_log_level level, const char *body)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One fprintf per line so concurrent writers never interleave inside a line. */
    if (log->node)
        fprintf(log->out, "ts=%s.%03ldZ level=%s node=%s %s\n", when, ts.tv_nsec / 1000000,
                base_log_level_name(level), log->node, body);
    else
        fprintf(log->out, "ts=%s.%03ldZ level=%s %s\n", when, ts.tv_nsec / 1000000,
                base_log_level_name(level), body);
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

/* The libraries keep a copy of the logger: it passes every level, and library_line asks the
 * node's level of the moment, so `tunless set --log-level` reaches them too. */
struct base_logger node_log_logger(struct node_log *log)
{
    return (struct base_logger){.fn = library_line, .arg = log, .level = BASE_LOG_DEBUG};
}
