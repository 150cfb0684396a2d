/*
 * The local API's socket and routes (localapi.h). Flow: node_localapi_socket_path ->
 * node_localapi_check (is a node there? SO_PEERCRED names it; a stale socket is removed) ->
 * node_localapi_start -> prepare_dir -> node_http_server_listen_unix -> set_mode ->
 * add_routes (a node that started on the path since the check is named: NODE_LOCALAPI_LIVE);
 * then the handlers (status, reload with the diff as JSON); node_localapi_close unlinks the
 * socket, if it is still ours (remove_socket), and closes the server.
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "localapi.h"
#include "metrics.h"
#include "state.h"

struct node_localapi {
    struct node_daemon *d;
    struct node_http_server *http;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev; /* the socket file we made: only that one is removed at close */
    ino_t ino;
    struct timespec started;
    void (*on_closed)(void *arg);
    void *closed_arg;
};

int node_localapi_socket_path(const char *flag, const char *state_dir_flag, char *out, size_t cap)
{
    const char *given = flag ? flag : getenv("TUNLESS_SOCKET");
    if (given && *given)
        return snprintf(out, cap, "%s", given) < (int)cap ? 0 : -1;
    char dir[4096];
    const char *sd = state_dir_flag ? state_dir_flag : getenv("TUNLESS_STATE_DIR");
    if (node_state_dir(sd && *sd ? sd : NULL, dir, sizeof(dir)) != 0)
        return -1;
    return snprintf(out, cap, "%s/%s", dir, NODE_LOCALAPI_SOCKET) < (int)cap ? 0 : -1;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* 1 and *pid when something accepts connections at path, 0 when nothing does. */
static int probe(const char *path, pid_t *pid)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ? 1 : -errno;
    struct ucred cred = {0};
    socklen_t len = sizeof(cred);
    if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        *pid = cred.pid;
    close(fd);
    return rc == -ECONNREFUSED ? 0 : rc;
}

int node_localapi_check(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof(sun.sun_path))
        return fail(err, errlen,
                    "local API socket %s: longer than a unix socket path may be (%zu bytes); "
                    "choose a shorter one with --socket",
                    path, sizeof(sun.sun_path) - 1);
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT
                   ? 0
                   : fail(err, errlen, "local API socket %s: %s", path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return fail(err, errlen, "local API socket %s: exists and is not a socket", path);
    pid_t pid = 0;
    int rc = probe(path, &pid);
    if (rc == 1) {
        fail(err, errlen, "another node is running (PID %ld) on %s", (long)pid, path);
        return NODE_LOCALAPI_LIVE;
    }
    if (rc < 0)
        return fail(err, errlen, "local API socket %s: %s", path, strerror(-rc));
    if (unlink(path) != 0 && errno != ENOENT) /* left by a node that died */
        return fail(err, errlen, "local API socket %s: stale, and cannot be removed: %s", path,
                    strerror(errno));
    return 0;
}

static int group_id(const char *group, gid_t *gid, char *err, size_t errlen)
{
    struct group *g = getgrnam(group);
    if (g) {
        *gid = g->gr_gid;
        return 0;
    }
    /* Digits alone name a gid; never (gid_t)-1, which tells chown to keep the node's group. */
    char *end;
    errno = 0;
    unsigned long v = strtoul(group, &end, 10);
    if (*group >= '0' && *group <= '9' && !*end && errno == 0 && v < (unsigned long)(gid_t)-1) {
        *gid = (gid_t)v;
        return 0;
    }
    return fail(err, errlen, "--socket-group %s: no such group", group);
}

/* mkdir -p, each directory it creates 0700, or 0710 for group *gid (search only): every one,
 * else the group would stop at the first. -1, or -2 when the group could not be given. */
static int make_dirs(char *dir, const gid_t *gid, bool *created)
{
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = make_dirs(dir, gid, created);
        *slash = '/';
        if (rc != 0)
            return rc;
    }
    if (mkdir(dir, 0700) != 0)
        return errno == EEXIST ? 0 : -1;
    *created = true;
    if (gid && (chown(dir, (uid_t)-1, *gid) != 0 || chmod(dir, 0710) != 0))
        return -2;
    return 0;
}

/* The socket's directory: created 0700, or with a group 0710 for that group (search only).
 * A directory that was there is left as it is; the group may then not reach the socket. */
static int prepare_dir(struct node_daemon *d, const char *path, const char *group, gid_t gid,
                       char *err, size_t errlen)
{
    char copy[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(copy, sizeof(copy), "%s", path);
    char *dir = dirname(copy);
    struct stat st;
    bool created = false;
    int rc = make_dirs(dir, group ? &gid : NULL, &created);
    if (rc == -2)
        return fail(err, errlen, "local API directory %s: giving group %s access: %s", dir, group,
                    strerror(errno));
    if (rc != 0 || stat(dir, &st) != 0)
        return fail(err, errlen, "local API directory %s: %s", dir, strerror(errno));
    if (!group || created)
        return 0;
    if (!(st.st_mode & 0001) && !(st.st_gid == gid && (st.st_mode & 0010))) {
        char q[600];
        snprintf(q, sizeof(q),
                 "members of %s cannot pass through %s (mode %03o): put the socket "
                 "in a directory they can reach (--socket)",
                 group, dir, st.st_mode & 0777);
        char qq[700];
        node_log(&d->log, BASE_LOG_WARN, "localapi_group_unreachable", "msg=%s",
                 base_log_quote(qq, sizeof(qq), q));
    }
    return 0;
}

/* The group first: group bits given while the socket still had the node's own group would
 * let that group in for a moment. */
static int set_mode(const char *path, const char *group, gid_t gid, char *err, size_t errlen)
{
    if (group && chown(path, (uid_t)-1, gid) != 0)
        return fail(err, errlen, "local API socket %s: group %s: %s", path, group, strerror(errno));
    if (chmod(path, group ? 0660 : 0600) != 0)
        return fail(err, errlen, "local API socket %s: %s", path, strerror(errno));
    return 0;
}

static void peer_ref(json_t *arr, const struct cfg_peer *p, unsigned what)
{
    char b64[WG_KEY_B64_LEN + 1], words[128];
    wg_key_to_base64(b64, p->public_key);
    json_t *o = json_pack("{s:s?, s:s}", "name", p->name, "public_key", b64);
    if (what) {
        json_t *list = json_array();
        cfg_peer_changes_format(what, words, sizeof(words));
        for (char *save = NULL, *w = strtok_r(words, ",", &save); w; w = strtok_r(NULL, ",", &save))
            json_array_append_new(list, node_http_json_text(w));
        json_object_set_new(o, "changed", list);
    }
    json_array_append_new(arr, o);
}

static json_t *changes_list(const struct cfg_peer_change *ch, size_t n, bool removed)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        peer_ref(arr, removed ? ch[i].old : ch[i].new, ch[i].what);
    return arr;
}

json_t *node_localapi_diff_json(const struct cfg_diff *diff)
{
    return json_pack("{s:o, s:o, s:o, s:I, s:b, s:b}", "added",
                     changes_list(diff->added, diff->n_added, false), "removed",
                     changes_list(diff->removed, diff->n_removed, true), "changed",
                     changes_list(diff->changed, diff->n_changed, false), "unchanged",
                     (json_int_t)diff->n_unchanged, "addresses_changed", diff->addresses_changed,
                     "dns_changed", diff->dns_changed);
}

/* What a reload is about to change, as the answer to POST /v0/reload. */
static void on_diff(void *arg, const struct cfg_diff *diff)
{
    json_t **out = arg;
    json_decref(*out);
    *out = node_localapi_diff_json(diff);
}

static void on_reload(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    struct node_localapi *api = arg;
    json_t *changes = NULL;
    char err[600];
    if (node_daemon_reload(api->d, on_diff, &changes, err, sizeof(err)) != 0) {
        json_decref(changes);
        node_http_reply_error(c, 422, "%s", err);
        return;
    }
    node_http_reply_json(c, 200, changes ? changes : json_object());
}

static void on_status(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    struct node_localapi *api = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - api->started.tv_sec) +
                (double)(now.tv_nsec - api->started.tv_nsec) / 1e9;
    json_t *st = node_localapi_status(api->d, up);
    if (st)
        json_object_set_new(json_object_get(st, "node"), "socket", node_http_json_text(api->path));
    node_http_reply_json(c, 200, st);
}

/* Every /v0/ route; other parts of the node add theirs here. */
static int add_routes(struct node_localapi *api)
{
    const struct node_http_route routes[] = {
        {.method = "GET", .path = "/v0/status", .fn = on_status, .arg = api},
        {.method = "POST", .path = "/v0/reload", .write = true, .fn = on_reload, .arg = api},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = node_http_server_route(api->http, &routes[i]);
        if (rc != 0)
            return rc;
    }
    int rc = node_localapi_tools_routes(api->http, api->d); /* whois, ping */
    if (rc == 0)
        rc = node_lifecycle_api_routes(api->d, api->http); /* prefs, watch */
    /* metrics_http.c: /metrics, /healthz, /readyz and PUT /v0/netmap */
    return rc != 0 ? rc : node_metrics_routes(api->http, api->d, true);
}

static void on_http_closed(void *arg)
{
    struct node_localapi *api = arg;
    void (*cb)(void *) = api->on_closed;
    void *cb_arg = api->closed_arg;
    free(api);
    if (cb)
        cb(cb_arg);
}

static int listen_on(struct node_localapi *api, const char *group, char *err, size_t errlen)
{
    gid_t gid = 0;
    if (group && group_id(group, &gid, err, errlen) != 0)
        return -1;
    if (prepare_dir(api->d, api->path, group, gid, err, errlen) != 0)
        return -1;
    mode_t old = umask(0177); /* no moment with a wider mode than 0600 */
    int rc = node_http_server_listen_unix(api->http, api->path);
    umask(old);
    pid_t pid = 0;
    if (rc == -EADDRINUSE && probe(api->path, &pid) == 1) { /* one started since the check */
        fail(err, errlen, "another node is running (PID %ld) on %s", (long)pid, api->path);
        return NODE_LOCALAPI_LIVE;
    }
    if (rc != 0)
        return fail(err, errlen, "local API socket %s: %s", api->path, base_strerror(rc));
    struct stat st;
    if (lstat(api->path, &st) == 0) {
        api->dev = st.st_dev;
        api->ino = st.st_ino;
    }
    if (set_mode(api->path, group, gid, err, errlen) != 0) {
        unlink(api->path);
        return -1;
    }
    return 0;
}

/* Ours only: a socket another node put at the path since (after someone removed ours) is
 * left alone. */
static void remove_socket(const struct node_localapi *api)
{
    struct stat st;
    if (lstat(api->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == api->dev &&
        st.st_ino == api->ino)
        unlink(api->path);
}

int node_localapi_start(struct node_daemon *d, const char *path, const char *group,
                        struct node_localapi **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    struct node_localapi *api = calloc(1, sizeof(*api));
    if (!api)
        return fail(err, errlen, "out of memory");
    if (snprintf(api->path, sizeof(api->path), "%s", path) >= (int)sizeof(api->path)) {
        free(api);
        return node_localapi_check(path, err, errlen);
    }
    api->d = d;
    clock_gettime(CLOCK_MONOTONIC, &api->started);
    struct node_http_config hc = {
        .name = "localapi",
        .max_body = 1 << 20, /* a netmap may come in */
        .writer_conns = 4,   /* readers' streams never lock root out */
        .log = node_log_logger(&d->log),
    };
    if (node_http_server_new(d->loop, &hc, &api->http) != 0) {
        free(api);
        return fail(err, errlen, "out of memory");
    }
    int rc = add_routes(api) != 0 ? -1 : listen_on(api, group, err, errlen);
    if (rc != 0) {
        if (!err[0])
            fail(err, errlen, "out of memory");
        node_http_server_close(api->http, on_http_closed, api);
        return rc;
    }
    *out = api;
    return 0;
}

struct node_http_server *node_localapi_server(struct node_localapi *api)
{
    return api->http;
}

void node_localapi_close(struct node_localapi *api, void (*on_closed)(void *arg), void *arg)
{
    api->on_closed = on_closed;
    api->closed_arg = arg;
    remove_socket(api);
    node_http_server_close(api->http, on_http_closed, api);
}
