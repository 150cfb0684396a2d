/*
 * One line per event, key=value, with a level: `ts=... level=info event=handshake peer=AbCd1234 ...`.
 * The libraries below the node report through callbacks; the node formats and filters here.
 * A node_log is owned by the daemon context; nothing here allocates.
 */
#ifndef TUNLESS_NODE_LOG_H
#define TUNLESS_NODE_LOG_H

#include <stdio.h>

enum node_log_level { NODE_LOG_ERROR = 0, NODE_LOG_WARN, NODE_LOG_INFO, NODE_LOG_DEBUG };

struct node_log {
    enum node_log_level level;
    FILE *out;
};

/* "error", "warn", "info", "debug". Returns -1 for anything else. */
int node_log_level_parse(const char *name, enum node_log_level *out);
const char *node_log_level_name(enum node_log_level level);

/* fields: preformatted `key=value ...` text (may be NULL). Values with spaces must be quoted by
 * the caller with node_log_quote. */
void node_log(const struct node_log *log, enum node_log_level level, const char *event,
              const char *fields_fmt, ...) __attribute__((format(printf, 4, 5)));

/* Quotes value for a key=value line when it holds spaces, quotes or control characters. */
const char *node_log_quote(char *buf, size_t cap, const char *value);

#endif
