/* `tunless up`: run the node in the foreground until SIGINT or SIGTERM; given to a node that
 * already runs (and nothing but where to find it), resume that node instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "localapi_client.h"
#include "node.h"
#include "state.h"

/* Only --socket and --state-dir given: the words of someone who means this node, not a new one. */
static bool only_where_flags(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        bool takes_value = strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "--state-dir") == 0;
        if (takes_value)
            i++;
        else if (strncmp(argv[i], "--socket=", 9) != 0 && strncmp(argv[i], "--state-dir=", 12) != 0)
            return false;
    }
    return true;
}

static bool node_answers(const char *sock)
{
    struct node_localapi_reply r;
    char err[64];
    if (access(sock, F_OK) != 0 ||
        node_localapi_call(sock, "GET", "/v0/prefs", NULL, &r, err, sizeof(err)) != 0)
        return false;
    node_localapi_reply_free(&r);
    return true;
}

/* Only a --socket (or TUNLESS_SOCKET) the user gave must work; the default may be out of
 * reach (a user without a home, a state directory too deep for a socket path) and then the
 * node runs without its local API, saying so. */
static bool socket_given(const struct node_options *o)
{
    return o->socket_path != NULL;
}

enum api_plan { API_SERVE, API_STOP, API_WITHOUT, API_RESUMED };

/* One node per state directory (its key, port and netmap files): a second one, even started
 * at the same moment, stops here before it writes anything. A directory where no lock can be
 * made (read-only, a node whose key is in its configuration) only warns. -1: stop (exit 2). */
static int lock_state(const struct node_options *opts, int *lock_fd)
{
    char dir[4096], err[4400];
    pid_t holder = 0;
    if (node_state_dir(opts->state_dir, dir, sizeof(dir)) != 0)
        return 0; /* the start names the missing state directory */
    int rc = node_state_lock(dir, lock_fd, &holder, err, sizeof(err));
    if (rc == NODE_STATE_LOCKED && holder > 0)
        fprintf(stderr, "tunless up: another node is running (PID %ld) with state directory %s\n",
                (long)holder, dir);
    else if (rc == NODE_STATE_LOCKED)
        fprintf(stderr, "tunless up: another node is running with state directory %s\n", dir);
    else if (rc != 0)
        fprintf(stderr, "tunless up: warning: no lock on the state directory: %s\n", err);
    return rc == NODE_STATE_LOCKED ? -1 : 0;
}

/* Before anything listens: a node already on this socket is a node already running (resumed
 * when that is all the user said). API_STOP and API_RESUMED free opts; *code is the exit. */
static enum api_plan prepare_api(int argc, char **argv, struct node_options *opts, char *sock,
                                 size_t cap, int *code, int *lock_fd)
{
    char err[4400];
    bool off = opts->socket_path && strcmp(opts->socket_path, "off") == 0;
    int rc = off ? 0 : node_localapi_socket_path(opts->socket_path, opts->state_dir, sock, cap);
    if (!off && rc == 0 && only_where_flags(argc, argv) && node_answers(sock)) {
        node_options_free(opts);
        *code = node_cmd_resume(sock);
        return API_RESUMED;
    }
    if (lock_state(opts, lock_fd) != 0) {
        node_options_free(opts);
        *code = 2;
        return API_STOP;
    }
    if (off)
        return API_WITHOUT;
    if (rc != 0)
        snprintf(err, sizeof(err), "no path for the local API's socket: give --socket PATH");
    else
        rc = node_localapi_check(sock, err, sizeof(err));
    if (rc == 0)
        return API_SERVE;
    if (rc == NODE_LOCALAPI_LIVE || socket_given(opts)) {
        fprintf(stderr, "tunless up: %s\n", err);
        node_options_free(opts);
        *code = 2;
        return API_STOP;
    }
    fprintf(stderr, "tunless up: warning: no local API (`tunless status` will not answer): %s\n",
            err);
    return API_WITHOUT;
}

static void api_failed(struct node_daemon *d, int rc, const char *err)
{
    if (rc == NODE_LOCALAPI_LIVE || socket_given(&d->opts)) {
        fprintf(stderr, "tunless up: %s\n", err);
        d->exit_code = 2;
        node_daemon_stop(d);
        return;
    }
    char q[600];
    node_log(&d->log, BASE_LOG_WARN, "localapi_off", "reason=%s",
             base_log_quote(q, sizeof(q), err));
}

int node_cmd_up(int argc, char **argv)
{
    struct node_options opts;
    char err[512];

    if (node_options_parse(argc, argv, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless up: %s\n(see tunless up --help)\n", err);
        return 2;
    }
    if (opts.help) {
        node_options_usage(stdout);
        node_options_free(&opts);
        return 0;
    }
    if (opts.check)
        return node_check(&opts);
    char sock[4096 + 64];
    int code = 0, lock_fd = -1, rc;
    enum api_plan plan = prepare_api(argc, argv, &opts, sock, sizeof(sock), &code, &lock_fd);
    if (plan == API_STOP || plan == API_RESUMED)
        return code;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node_daemon d;
    if (node_daemon_start(&d, &loop, &opts) == 0 && plan == API_SERVE &&
        (rc = node_localapi_start(&d, sock, d.opts.socket_group, &d.api, err, sizeof(err))) != 0)
        api_failed(&d, rc, err);
    if (!d.stopping)
        node_notify_start(&d); /* READY=1 once the local API answers too */
    uv_run(&loop, UV_RUN_DEFAULT);
    code = d.exit_code;
    cfg_free(&d.cfg);
    free(d.publish_ctx);
    node_options_free(&d.opts);
    uv_loop_close(&loop);
    if (lock_fd >= 0)
        close(lock_fd); /* everything is closed: the next node may have the state directory */
    return code;
}
