/* `tunless up`: run the node in the foreground until SIGINT or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"
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
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node_daemon d;
    node_daemon_start(&d, &loop, &opts);
    uv_run(&loop, UV_RUN_DEFAULT);
    int code = d.exit_code;
    cfg_free(&d.cfg);
    free(d.publish_ctx);
    node_options_free(&d.opts);
    uv_loop_close(&loop);
    return code;
}
