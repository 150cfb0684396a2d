/*
 * The node's preferences: what a user may change on a running node and expects to find again
 * after a restart. Stored as a JSON object in STATE_DIR/prefs.json (0600, written whole).
 *
 *   {"want_running": true, "log_level": "info", "outbound": "direct", "shields_up": false}
 *
 * node_prefs_apply_json() is the one reader, for the file and for PATCH bodies alike: pure (no
 * I/O), all or nothing, and its errors name the JSON path (`log_level: want one of ...`).
 */
#ifndef TUNLESS_NODE_PREFS_H
#define TUNLESS_NODE_PREFS_H

#include <stdbool.h>
#include <stddef.h>

#include "base.h"
#include "options.h"

#define NODE_PREFS_FILE "prefs.json"

enum {
    NODE_PREF_WANT_RUNNING = 1u << 0,
    NODE_PREF_LOG_LEVEL = 1u << 1,
    NODE_PREF_OUTBOUND = 1u << 2,
    NODE_PREF_SHIELDS_UP = 1u << 3, /* kept for the access rules; no effect yet */
    NODE_PREF_ALL = (1u << 4) - 1,
};

struct node_prefs {
    bool want_running;
    enum base_log_level log_level;
    enum node_outbound outbound;
    bool shields_up;
};

/* want_running, info, direct, shields down. */
void node_prefs_default(struct node_prefs *p);
/* The fields of the JSON object in buf[0..len) over *p. *mask (may be NULL) gets the fields the
 * object named. Returns 0, or BASE_EPARSE with err naming the path ("outbound: want \"direct\"
 * or \"tunnel-only\"", "shields: unknown field", "line 1 column 3: ..."); *p is then untouched. */
int node_prefs_apply_json(struct node_prefs *p, const char *buf, size_t len, unsigned *mask,
                          char *err, size_t errlen);
/* Field by field (the struct has padding: never memcmp it). */
bool node_prefs_equal(const struct node_prefs *a, const struct node_prefs *b);
/* The JSON text of p (one line, with a trailing newline), malloc'd; NULL when out of memory. */
char *node_prefs_to_json(const struct node_prefs *p);
const char *node_outbound_name(enum node_outbound o); /* "direct", "tunnel-only" */

/* prefs.json in dir. load: 0 with *out read; 1 when there is none (*out = defaults); -1 when it
 * is unreadable or invalid: *out = defaults, err says why and, when the file could be moved
 * aside, where it went (`prefs.json.corrupt-<time>`, so it is never overwritten silently). */
int node_prefs_load(const char *dir, struct node_prefs *out, char *err, size_t errlen);
/* Written whole (temp file, fsync, rename), 0600. Returns 0, or -1 with err. */
int node_prefs_save(const char *dir, const struct node_prefs *p, char *err, size_t errlen);

#endif
