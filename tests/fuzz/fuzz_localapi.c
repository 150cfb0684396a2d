/* The local API's request handling from arbitrary bytes: the request parser alone, fed in
 * pieces (the first byte picks their size), then the whole server as the node runs it (the
 * /v0/ routes of an idle node, on a real libuv loop) with the bytes sent over a socketpair and
 * the connection half-closed. Every input must get exactly one well-formed HTTP answer. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "http_internal.h"
#include "localapi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_in_pieces(const uint8_t *data, size_t size)
{
    struct node_http_parser p;
    if (size < 1 || node_http_parser_init(&p, 512, 256) != 0)
        return;
    size_t step = (size_t)(data[0] % 64) + 1;
    enum node_http_parse_state st = NODE_HTTP_PARSE_HEAD;
    for (size_t off = 1; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        st = node_http_parser_feed(&p, (const char *)data + off, n);
        if (st == NODE_HTTP_PARSE_DONE || st == NODE_HTTP_PARSE_ERROR)
            break;
    }
    st = node_http_parser_finish(&p);
    if (st == NODE_HTTP_PARSE_ERROR && (p.status < 400 || p.status > 599 || !p.error[0]))
        abort();
    if (st == NODE_HTTP_PARSE_DONE) {
        struct node_http_request req;
        node_http_parser_request(&p, &req);
        if (req.path[0] != '/' || strchr(req.path, '?') || req.body_len > 256 ||
            strlen(req.body) > req.body_len)
            abort();
        char v[64];
        node_http_query_get(req.query, "addr", v, sizeof(v));
    }
    node_http_parser_free(&p);
}

static struct {
    uv_loop_t loop;
    struct node_daemon d; /* an idle node: no configuration, engine or stack */
    struct node_localapi *api;
    char path[64];
} g;

static void cleanup(void)
{
    unlink(g.path);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&g.loop);
    g.d.loop = &g.loop;
    g.d.log = (struct node_log){.level = BASE_LOG_ERROR, .out = fopen("/dev/null", "w")};
    node_lifecycle_init(&g.d); /* state, prefs and subscribers for /v0/prefs and /v0/watch */
    base_list_init(&g.d.publish_conns); /* whois looks there */
    base_list_init(&g.d.ping_waits);
    snprintf(g.path, sizeof(g.path), "/tmp/tunless-fuzz-localapi-%ld.sock", (long)getpid());
    unlink(g.path);
    char err[256];
    if (node_localapi_start(&g.d, g.path, NULL, &g.api, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_localapi: %s\n", err);
        abort();
    }
    atexit(cleanup);
}

/* Sends data, half-closes, runs the loop until the server let the connection go. */
static void exchange(const uint8_t *data, size_t size)
{
    struct node_http_server *srv = node_localapi_server(g.api);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    size_t sent = 0;
    while (sent < size) {
        ssize_t n = send(sv[1], data + sent, size - sent, 0);
        if (n <= 0)
            break; /* the rest does not fit the socket's buffer: the server sees less */
        sent += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    if (node_http_server_serve_fd(srv, sv[0]) != 0)
        abort();
    static char out[1 << 16];
    size_t got = 0;
    while (node_http_server_conns(srv) > 0) {
        uv_run(&g.loop, UV_RUN_ONCE);
        ssize_t n;
        while ((n = recv(sv[1], out + got, sizeof(out) - 1 - got, 0)) > 0)
            got += (size_t)n;
    }
    ssize_t n;
    while ((n = recv(sv[1], out + got, sizeof(out) - 1 - got, 0)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(sv[1]);
    if (sent > 0 && (strncmp(out, "HTTP/1.1 ", 9) != 0 || !strstr(out, "Connection: close\r\n")))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.api)
        setup();
    parse_in_pieces(data, size);
    exchange(data, size);
    return 0;
}
