/*
 * Preferences (prefs.h): JSON text -> fields (apply_json: parse, check each field into a copy,
 * commit the copy), fields -> JSON text, and prefs.json in the state directory (load, which sets
 * a bad file aside, and save).
 */
#include "prefs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

#define PREFS_MAX_BYTES 65536

void node_prefs_default(struct node_prefs *p)
{
    *p = (struct node_prefs){
        .want_running = true, .log_level = BASE_LOG_INFO, .outbound = NODE_OUTBOUND_DIRECT};
}

const char *node_outbound_name(enum node_outbound o)
{
    return o == NODE_OUTBOUND_TUNNEL_ONLY ? "tunnel-only" : "direct";
}

/* ---- JSON -> fields ---- */

static int want_bool(const char *key, const json_t *v, bool *out, char *err, size_t errlen)
{
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "%s: want true or false", key);
        return BASE_EPARSE;
    }
    *out = json_is_true(v);
    return 0;
}

static int field(struct node_prefs *p, const char *key, const json_t *v, unsigned *mask, char *err,
                 size_t errlen)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (strcmp(key, "want_running") == 0) {
        *mask |= NODE_PREF_WANT_RUNNING;
        return want_bool(key, v, &p->want_running, err, errlen);
    }
    if (strcmp(key, "shields_up") == 0) {
        *mask |= NODE_PREF_SHIELDS_UP;
        return want_bool(key, v, &p->shields_up, err, errlen);
    }
    if (strcmp(key, "log_level") == 0) {
        *mask |= NODE_PREF_LOG_LEVEL;
        if (s && strlen(s) == json_string_length(v) && base_log_level_parse(s, &p->log_level) == 0)
            return 0;
        snprintf(err, errlen, "%s: want \"error\", \"warn\", \"info\" or \"debug\"", key);
        return BASE_EPARSE;
    }
    if (strcmp(key, "outbound") == 0) {
        *mask |= NODE_PREF_OUTBOUND;
        if (s && strcmp(s, "direct") == 0 && json_string_length(v) == 6)
            p->outbound = NODE_OUTBOUND_DIRECT;
        else if (s && strcmp(s, "tunnel-only") == 0 && json_string_length(v) == 11)
            p->outbound = NODE_OUTBOUND_TUNNEL_ONLY;
        else {
            snprintf(err, errlen, "%s: want \"direct\" or \"tunnel-only\"", key);
            return BASE_EPARSE;
        }
        return 0;
    }
    char shown[80];
    base_log_quote(shown, sizeof(shown), key);
    snprintf(err, errlen,
             "%s: unknown field (known: want_running, log_level, outbound, "
             "shields_up)",
             shown);
    return BASE_EPARSE;
}

int node_prefs_apply_json(struct node_prefs *p, const char *buf, size_t len, unsigned *mask,
                          char *err, size_t errlen)
{
    json_error_t jerr;
    unsigned seen = 0;
    if (len > PREFS_MAX_BYTES) {
        snprintf(err, errlen, "more than %d bytes", PREFS_MAX_BYTES);
        return BASE_EPARSE;
    }
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return BASE_EPARSE;
    }
    struct node_prefs next = *p;
    int rc = 0;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "(top level): want an object");
        rc = BASE_EPARSE;
    }
    const char *key;
    json_t *v;
    if (rc == 0)
        json_object_foreach(root, key, v)
        {
            rc = field(&next, key, v, &seen, err, errlen);
            if (rc != 0)
                break;
        }
    json_decref(root);
    if (rc != 0)
        return rc;
    *p = next;
    if (mask)
        *mask = seen;
    return 0;
}

bool node_prefs_equal(const struct node_prefs *a, const struct node_prefs *b)
{
    return a->want_running == b->want_running && a->log_level == b->log_level &&
           a->outbound == b->outbound && a->shields_up == b->shields_up;
}

/* ---- fields -> JSON ---- */

char *node_prefs_to_json(const struct node_prefs *p)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "{\"want_running\":%s,\"log_level\":\"%s\",\"outbound\":\"%s\","
                     "\"shields_up\":%s}\n",
                     p->want_running ? "true" : "false", base_log_level_name(p->log_level),
                     node_outbound_name(p->outbound), p->shields_up ? "true" : "false");
    return n > 0 && (size_t)n < sizeof(buf) ? strdup(buf) : NULL;
}

/* ---- prefs.json ---- */

/* rename that never replaces to (a file system without RENAME_NOREPLACE: checked first). */
static int rename_new(const char *from, const char *to)
{
    int rc = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
    if (rc == 0 || errno != EINVAL)
        return rc;
    if (access(to, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    return rename(from, to);
}

/* A bad file is kept for its owner to look at: renamed, never overwritten by the next save nor
 * by the next bad file (the same second: "-2", "-3", ... after the time). */
static void set_aside(const char *dir, char *err, size_t errlen)
{
    char from[4200], to[4300];
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
    snprintf(from, sizeof(from), "%s/%s", dir, NODE_PREFS_FILE);
    int rc;
    for (int i = 1;; i++) {
        int n = snprintf(to, sizeof(to), "%s.corrupt-%s", from, when);
        if (i > 1)
            snprintf(to + n, sizeof(to) - (size_t)n, "-%d", i);
        rc = rename_new(from, to);
        if (rc == 0 || errno != EEXIST || i == 100)
            break;
    }
    size_t used = strlen(err);
    if (rc == 0)
        snprintf(err + used, errlen - used, "; moved to %s", to);
    else
        snprintf(err + used, errlen - used, "; could not move it aside: %s", strerror(errno));
}

static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = read(fd, buf + got, cap - got)) > 0)
        got += (size_t)n;
    close(fd);
    return (ssize_t)got;
}

int node_prefs_load(const char *dir, struct node_prefs *out, char *err, size_t errlen)
{
    char path[4200], why[512];
    node_prefs_default(out);
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_PREFS_FILE);
    if (access(path, F_OK) != 0)
        return 1;
    char *buf = malloc(PREFS_MAX_BYTES + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    ssize_t n = read_small(path, buf, PREFS_MAX_BYTES + 1);
    int rc = n < 0 ? -1 : node_prefs_apply_json(out, buf, (size_t)n, NULL, why, sizeof(why));
    free(buf);
    if (n < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        node_prefs_default(out);
        set_aside(dir, err, errlen);
        return -1;
    }
    return 0;
}

int node_prefs_save(const char *dir, const struct node_prefs *p, char *err, size_t errlen)
{
    char *text = node_prefs_to_json(p);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = node_state_write_file(dir, NODE_PREFS_FILE, text, strlen(text), err, errlen);
    free(text);
    return rc;
}
