/* `tunless up`: run the node in the foreground until SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "localapi.h"
#include "node.h"

/* Only a --socket (or TUNLESS_SOCKET) the user gave must work; the default may be out of
 * reach (a user without a home, a state directory too deep for a socket path) and then the
 * node runs without its local API, saying so. */
static bool socket_given(const struct node_options *o)
{
    return o->socket_path != NULL;
}

/* 0: the socket can be served; 1: stop (told on stderr, opts freed); 2: run without it. */
static int prepare_api(struct node_options *opts, char *sock, size_t cap, char *err, size_t errlen)
{
    int rc = node_localapi_socket_path(opts->socket_path, opts->state_dir, sock, cap);
    if (rc != 0)
        snprintf(err, errlen, "no path for the local API's socket: give --socket PATH");
    else
        rc = node_localapi_check(sock, err, errlen);
    if (rc == 0)
        return 0;
    if (rc == NODE_LOCALAPI_LIVE || socket_given(opts)) {
        fprintf(stderr, "tunless up: %s\n", err);
        node_options_free(opts);
        return 1;
    }
    fprintf(stderr, "tunless up: warning: no local API (`tunless status` will not answer): %s\n",
            err);
    return 2;
}

static void api_failed(struct node_daemon *d, const char *err)
{
    if (socket_given(&d->opts)) {
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
    /* Before anything listens: a node already on this socket is a node already running. */
    char sock[4096 + 64];
    bool api = !opts.socket_path || strcmp(opts.socket_path, "off") != 0;
    int rc = api ? prepare_api(&opts, sock, sizeof(sock), err, sizeof(err)) : 0;
    if (rc == 1)
        return 2;
    api = api && rc == 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node_daemon d;
    if (node_daemon_start(&d, &loop, &opts) == 0 && api &&
        node_localapi_start(&d, sock, d.opts.socket_group, &d.api, err, sizeof(err)) != 0)
        api_failed(&d, err);
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = d.exit_code;
    cfg_free(&d.cfg);
    free(d.publish_ctx);
    node_options_free(&d.opts);
    uv_loop_close(&loop);
    return code;
}
