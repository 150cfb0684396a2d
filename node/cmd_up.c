/* `tunless up`: run the node in the foreground until SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
#include "localapi.h"
#include "node.h"

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
    int rc = node_localapi_socket_path(opts.socket_path, opts.state_dir, sock, sizeof(sock));
    if (rc != 0)
        snprintf(err, sizeof(err), "no path for the local API's socket: give --socket PATH");
    else
        rc = node_localapi_check(sock, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "tunless up: %s\n", err);
        node_options_free(&opts);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node_daemon d;
    if (node_daemon_start(&d, &loop, &opts) == 0 &&
        node_localapi_start(&d, sock, d.opts.socket_group, &d.api, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless up: %s\n", err);
        d.exit_code = 2;
        node_daemon_stop(&d);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = d.exit_code;
    cfg_free(&d.cfg);
    free(d.publish_ctx);
    node_options_free(&d.opts);
    uv_loop_close(&loop);
    return code;
}
