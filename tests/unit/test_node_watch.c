/*
 * The lifecycle's local API on a whole node (node a of a node_pair), through the node's HTTP
 * server on socketpairs: /v0/watch starts with a snapshot (state, prefs, peers) and then has
 * one line per event; PATCH /v0/prefs stops and resumes the node (the watcher sees both), and
 * refuses an unknown field with its path; ?stats=1 adds counters; a watcher that never reads is
 * dropped with a final line while one that reads carries on; the shutdown is the last line.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_server.h"
#include "node_pair.h"

#define MESH_PORT 8080
#define BUF_CAP (4u << 20)

struct reader {
    int fd;
    char *buf;
    size_t len;
    const char *want;
};

static struct reader open_request(struct node_http_server *s, const char *request)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(node_http_server_serve_fd(s, sv[0]), 0);
    assert_int_equal(send(sv[1], request, strlen(request), 0), (ssize_t)strlen(request));
    struct reader r = {.fd = sv[1], .buf = calloc(1, BUF_CAP)};
    assert_non_null(r.buf);
    return r;
}

/* Reads what is there; true when r->want has arrived (or EOF with want NULL). */
static bool drain(void *arg)
{
    struct reader *r = arg;
    for (;;) {
        ssize_t n = recv(r->fd, r->buf + r->len, BUF_CAP - 1 - r->len, MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0)
            break;
        r->len += (size_t)n;
        r->buf[r->len] = '\0';
    }
    return r->want && strstr(r->buf, r->want);
}

static void wait_for(struct np_pair *p, struct reader *r, const char *want)
{
    r->want = want;
    if (np_run_until(p, drain, r, 5000) != 0)
        fail_msg("no '%s' in: %.2000s", want ? want : "(end)", r->buf);
}

static void done(struct reader *r)
{
    close(r->fd);
    free(r->buf);
}

/* A whole request and its answer. */
static void request(struct np_pair *p, struct node_http_server *s, const char *req,
                    const char *status, const char *part)
{
    struct reader r = open_request(s, req);
    wait_for(p, &r, NULL);
    if (strncmp(r.buf, status, strlen(status)) != 0 || !strstr(r.buf, part))
        fail_msg("%.60s: want %s with '%s', got: %s", req, status, part, r.buf);
    done(&r);
}

static void patch(struct np_pair *p, struct node_http_server *s, const char *body,
                  const char *status, const char *part)
{
    char req[512];
    snprintf(req, sizeof(req),
             "PATCH /v0/prefs HTTP/1.1\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    request(p, s, req, status, part);
}

static bool closed_flag;
static void on_closed(void *arg)
{
    (void)arg;
    closed_flag = true;
}
static bool is_closed(void *arg)
{
    (void)arg;
    return closed_flag;
}

static void test_watch_and_prefs(void **state)
{
    struct np_pair *p = *state;
    char publish[64], path[4200];
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, p->tcp_echo_port);
    const char *b_flags[] = {"--publish", publish, NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.b_flags = b_flags}), 0);
    struct node_daemon *a = &p->a.d;
    struct node_http_server *s;
    struct node_http_config cfg = {.name = "test", .stream_queue_bytes = 16384};
    assert_int_equal(node_http_server_new(&p->loop, &cfg, &s), 0);
    assert_int_equal(node_lifecycle_api_routes(a, s), 0);

    struct reader w = open_request(s, "GET /v0/watch?stats=1 HTTP/1.1\r\n\r\n");
    wait_for(p, &w, "\"type\":\"snapshot\"");
    wait_for(p, &w, "\"peers\":[{");
    assert_non_null(strstr(w.buf, "\"state\":\"Running\""));
    assert_non_null(strstr(w.buf, "\"want_running\":true"));
    assert_non_null(strstr(w.buf, p->b.pub)); /* the peer, by its public key */
    assert_null(strstr(w.buf, p->a.priv));
    assert_null(strstr(w.buf, p->b.priv));
    wait_for(p, &w, "\"type\":\"stats\"");

    patch(p, s, "{\"want_running\": false}", "HTTP/1.1 200", "\"state\": \"Stopped\"");
    wait_for(p, &w, "\"to\":\"Stopped\"");
    assert_non_null(strstr(w.buf, "\"type\":\"peer_removed\""));
    request(p, s, "GET /v0/prefs HTTP/1.1\r\n\r\n", "HTTP/1.1 200", "\"want_running\": false");
    patch(p, s, "{\"want_running\": true, \"shields\": 1}", "HTTP/1.1 400",
          "body: shields: unknown field");
    patch(p, s, "{\"log_level\": 7}", "HTTP/1.1 400", "body: log_level: want");
    assert_int_equal(node_lifecycle_state(a), NODE_LC_STOPPED); /* nothing of those applied */
    request(p, s, "GET /v0/watch?stats=0 HTTP/1.1\r\n\r\n", "HTTP/1.1 400", "stats");
    patch(p, s, "{\"want_running\": true}", "HTTP/1.1 200", "\"state\": \"Running\"");
    wait_for(p, &w, "\"from\":\"Starting\",\"to\":\"Running\"");
    assert_non_null(strstr(w.buf, "\"type\":\"peer_added\""));

    /* A configuration error quoting bytes that are not UTF-8 (a file's own) still reaches
     * the watcher, with its text made JSON-safe rather than the field dropped. */
    node_lifecycle_publish(a, &(struct node_event){.kind = NODE_EVENT_CONFIG_REJECTED,
                                                   .detail = "t.conf:3: \xff\xfe: unknown key"});
    wait_for(p, &w, "\"error\":\"t.conf:3: ??: unknown key\"");

    /* A watcher that never reads, among events that pile up: it alone is dropped. */
    struct reader slow = open_request(s, "GET /v0/watch HTTP/1.1\r\n\r\n");
    char detail[600];
    memset(detail, 'x', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    for (int i = 0; i < 3000; i++) {
        node_lifecycle_publish(a,
                               &(struct node_event){.kind = NODE_EVENT_HEALTH, .detail = detail});
        uv_run(&p->loop, UV_RUN_NOWAIT);
        w.len = 0; /* keep reading the live one, without keeping it all */
        drain(&w);
    }
    wait_for(p, &slow, NULL);
    assert_non_null(strstr(slow.buf, "dropped"));
    done(&slow);

    node_lifecycle_shutdown(a);
    w.len = 0;
    wait_for(p, &w, NULL);
    assert_non_null(strstr(w.buf, "\"type\":\"shutdown\""));
    assert_non_null(strstr(w.buf, "0\r\n\r\n"));
    done(&w);

    closed_flag = false;
    node_http_server_close(s, on_closed, NULL);
    assert_int_equal(np_run_until(p, is_closed, NULL, 3000), 0);
    snprintf(path, sizeof(path), "%s/%s", a->state_dir, NODE_PREFS_FILE);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watch_and_prefs, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
