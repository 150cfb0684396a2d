/*
 * Runs the SOCKS5/HTTP proxy with the direct (host socket) dialer, for integration tests.
 * usage: proxy_serve --port N [--bind ADDR] [--user U --pass P] [--deny-all]
 *                    [--connect-timeout MS] [--head-timeout MS] [--protocols socks5|http|both]
 *                    [--max-conns N] [--max-header-bytes N]
 * Prints "listening PORT" on stdout once ready; SIGTERM/SIGINT close everything and exit 0.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

/* A line for a person reading the test's output: the msg= sentence first, when there is one. */
static void log_cb(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    const char *msg = strstr(line, " msg=\"");
    if (!msg) {
        fprintf(stderr, "proxy_serve: %s: %s\n", base_log_level_name(level), line);
        return;
    }
    char text[BASE_LOG_LINE_MAX];
    size_t n = 0;
    for (const char *p = msg + 6; *p && *p != '"' && n + 1 < sizeof(text); p++)
        text[n++] = *p == '\\' && p[1] ? *++p : *p;
    text[n] = '\0';
    fprintf(stderr, "proxy_serve: %s: %s (%.*s)\n", base_log_level_name(level), text,
            (int)(msg - line), line);
}

static int deny_all(void *arg, const struct proxy_target *t)
{
    (void)arg;
    (void)t;
    return BASE_EPOLICY;
}

static struct proxy_server *srv;
static uv_signal_t sigterm, sigint;

static void on_closed(void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    if (srv)
        proxy_server_close(srv, on_closed, NULL);
    srv = NULL;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    uv_loop_t *loop = uv_default_loop();
    struct proxy_direct direct;
    proxy_direct_init(&direct, loop);
    struct proxy_config cfg = {.protocols = PROXY_BOTH,
                               .logger = {.fn = log_cb, .level = BASE_LOG_DEBUG}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--deny-all") == 0) {
            direct.allow = deny_all;
            continue;
        }
        if (!v) {
            fprintf(stderr, "proxy_serve: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--port") == 0)
            cfg.port = (uint16_t)atoi(v);
        else if (strcmp(a, "--bind") == 0)
            cfg.bind_addr = v;
        else if (strcmp(a, "--user") == 0)
            cfg.username = v;
        else if (strcmp(a, "--pass") == 0)
            cfg.password = v;
        else if (strcmp(a, "--connect-timeout") == 0)
            direct.connect_timeout_ms = (unsigned)atoi(v);
        else if (strcmp(a, "--head-timeout") == 0)
            cfg.head_timeout_ms = (unsigned)atoi(v);
        else if (strcmp(a, "--max-conns") == 0)
            cfg.max_connections = (unsigned)atoi(v);
        else if (strcmp(a, "--max-header-bytes") == 0)
            cfg.max_header_bytes = (size_t)atoi(v);
        else if (strcmp(a, "--protocols") == 0)
            cfg.protocols = strcmp(v, "socks5") == 0 ? PROXY_SOCKS5
                            : strcmp(v, "http") == 0 ? PROXY_HTTP
                                                     : PROXY_BOTH;
        else {
            fprintf(stderr, "proxy_serve: unknown option %s\n", a);
            return 2;
        }
    }
    cfg.dialer = proxy_direct_dialer(&direct);
    int err = proxy_server_new(loop, &cfg, &srv);
    if (err) {
        fprintf(stderr, "proxy_serve: %s\n", base_strerror(err));
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    printf("listening %d\n", proxy_server_port(srv));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
