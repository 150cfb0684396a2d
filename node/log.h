/*
 * One line per event, key=value, with a level: `ts=... level=info event=handshake peer=AbCd1234 ...`.
 * The libraries below the node report through the struct base_logger node_log_logger() gives
 * them (they hand over `event=... key=value` text); the node adds time and level here, and logs
 * its own events with node_log(). A node_log is owned by the daemon context; nothing here
 * allocates. With json set, each line is the same fields as a JSON object (node_log_json).
 */
#ifndef TUNLESS_NODE_LOG_H
#define TUNLESS_NODE_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "base.h"

struct node_log {
    enum base_log_level level;
    FILE *out;
    const char *node; /* a node= field on every line (tunless demo's two nodes), or NULL */
    bool json;        /* --log-format json: each line one JSON object with the same keys */
};

/* fields: preformatted `key=value ...` text (may be NULL). Values with spaces must be quoted by
 * the caller with base_log_quote. */
void node_log(const struct node_log *log, enum base_log_level level, const char *event,
              const char *fields_fmt, ...) __attribute__((format(printf, 4, 5)));

/* The logger a library gets: its lines (`event=... ...`) reach log->out with time and level. */
struct base_logger node_log_logger(struct node_log *log);

/* A `key=value ...` body as one JSON object, {"ts":...,"level":...,["node":...,]"event":...}:
 * a bare decimal integer is a number, every other value a string (quoted values unquoted),
 * ASCII only (other bytes as \u00XX), text that is not key=value in "msg". Always a complete object; members that do not fit in cap are left
 * out. Returns its length. */
#define NODE_LOG_JSON_MAX (8 * BASE_LOG_LINE_MAX)
size_t node_log_json(char *out, size_t cap, const char *ts, const char *level, const char *node,
                     const char *body);

#endif
