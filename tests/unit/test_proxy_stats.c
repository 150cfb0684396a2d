/*
 * The listener's counters (proxy_server_stats) and each upstream connection's proxy_open /
 * proxy_close lines, against an injected dialer: a SOCKS5 relay counts its reply and its bytes
 * (while open too), a refused dial its reply and its error with the cause, an HTTP dial error
 * answers with a Proxy-Status header (RFC 9209) and a body that says why, and wrong
 * credentials count as refused by auth. The proxy's loop runs in a thread; the test is a plain
 * blocking client.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "proxy_fakes.h"

/* The target port picks what the dial does. */
enum { PORT_ECHO = 80, PORT_REFUSED = 81, PORT_NXDOMAIN = 82 };

static struct {
    struct px_thread px;
    pthread_mutex_t mu;
    char log[16384]; /* every line, newline-separated */
} g;

/* Echoes; after "bye" the upstream closes as well. */
static void echo(struct px_loop_stream *s)
{
    s->cbs.on_read(s->ud, s->last, s->last_len);
    if (s->last_len == 3 && memcmp(s->last, "bye", 3) == 0)
        s->cbs.on_eof(s->ud);
}

static struct proxy_stream *fake_dial(void *ctx, const struct proxy_target *t,
                                      const struct proxy_stream_cbs *cbs, void *ud)
{
    (void)ctx;
    struct px_loop_stream *s = px_loop_stream_new(&g.px, cbs, ud);
    if (t->ep.port == PORT_REFUSED)
        s->connect_err = -ECONNREFUSED;
    if (t->ep.port == PORT_NXDOMAIN)
        s->connect_err = BASE_ENXDOMAIN;
    if (t->ep.port != PORT_NXDOMAIN) { /* as the node's dialer says it */
        s->route.via = PROXY_VIA_TUNNEL;
        s->route.dest = (struct base_endpoint){.addr = {.family = AF_INET, .ip = {100, 64, 0, 2}},
                                               .port = t->ep.port};
        snprintf(s->route.peer, sizeof(s->route.peer), "db");
        snprintf(s->route.peer_key, sizeof(s->route.peer_key), "AbCd1234");
    }
    s->answer = echo;
    px_loop_stream_start(s);
    return &s->base;
}

static void log_line(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&g.mu);
    size_t n = strlen(g.log);
    snprintf(g.log + n, sizeof(g.log) - n, "%s\n", line);
    pthread_mutex_unlock(&g.mu);
}

/* The first logged line holding every one of the NULL-terminated fragments, copied to out. */
static bool find_line(char *out, size_t cap, ...)
{
    pthread_mutex_lock(&g.mu);
    bool found = false;
    for (char *line = g.log; *line && !found;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        snprintf(out, cap, "%.*s", (int)len, line);
        found = true;
        va_list ap;
        va_start(ap, cap);
        for (const char *frag; (frag = va_arg(ap, const char *));)
            found = found && strstr(out, frag);
        va_end(ap);
        line += len + (end ? 1 : 0);
    }
    pthread_mutex_unlock(&g.mu);
    return found;
}

static void start(const char *user, const char *pass)
{
    memset(&g.px, 0, sizeof(g.px));
    g.log[0] = 0;
    struct proxy_config cfg = {
        .protocols = PROXY_BOTH,
        .dialer = {.dial = fake_dial},
        .username = user,
        .password = pass,
        .logger = {.fn = log_line, .level = BASE_LOG_DEBUG},
    };
    px_thread_start(&g.px, &cfg);
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_init(&g.mu, NULL);
    start(NULL, NULL);
    return 0;
}

static int setup_auth(void **state)
{
    (void)state;
    pthread_mutex_init(&g.mu, NULL);
    start("alice", "secret");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_thread_stop(&g.px);
    pthread_mutex_destroy(&g.mu);
    return 0;
}

/* Until no session is left open (the close lines are logged by then). */
static void wait_closed(struct proxy_stats *st)
{
    for (int i = 0; i < 500; i++) {
        px_thread_stats(&g.px, st);
        if (st->open == 0)
            return;
        usleep(10000);
    }
    fail_msg("sessions still open");
}

static int socks_connect(uint16_t port, uint8_t reply[10])
{
    int fd = px_thread_client(&g.px);
    uint8_t req[] = {5, 1, 0, 5, 1, 0, 1, 100, 64, 0, 2, (uint8_t)(port >> 8), (uint8_t)port};
    assert_int_equal(write(fd, req, sizeof(req)), (ssize_t)sizeof(req));
    uint8_t m[2];
    px_read_full(fd, m, 2);
    px_read_full(fd, reply, 10);
    return fd;
}

static void test_socks5_relay_counted(void **state)
{
    (void)state;
    uint8_t reply[10], buf[5];
    int fd = socks_connect(PORT_ECHO, reply);
    assert_int_equal(reply[1], 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    px_read_full(fd, buf, 5);
    struct proxy_stats st;
    px_thread_stats(&g.px, &st); /* open: the live connection's bytes count already */
    assert_int_equal(st.open, 1);
    assert_int_equal(st.bytes_up, 5);
    assert_int_equal(st.bytes_down, 5);
    char line[1024];
    assert_true(find_line(line, sizeof(line), "event=proxy_open ", "proto=socks5",
                          "target=100.64.0.2:80", "dest=100.64.0.2:80", "via=tunnel", "peer=db",
                          "peer_key=AbCd1234", NULL));
    assert_int_equal(write(fd, "bye", 3), 3);
    px_read_full(fd, buf, 3);
    close(fd);
    wait_closed(&st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.dials, 1);
    assert_int_equal(st.dial_errors, 0);
    assert_int_equal(st.socks5_reply[0], 1);
    assert_int_equal(st.bytes_up, 8);
    assert_int_equal(st.bytes_down, 8);
    assert_true(find_line(line, sizeof(line), "event=proxy_close ",
                          "client=127.0.0.1:", "via=tunnel peer=db", "bytes_up=8 bytes_down=8",
                          "duration_ms=", "reply=0", NULL));
    assert_null(strstr(line, "err="));
}

static void test_socks5_refused_counted(void **state)
{
    (void)state;
    uint8_t reply[10];
    int fd = socks_connect(PORT_REFUSED, reply);
    assert_int_equal(reply[1], 5);
    close(fd);
    struct proxy_stats st;
    wait_closed(&st);
    assert_int_equal(st.socks5_reply[5], 1);
    assert_int_equal(st.socks5_reply[0], 0);
    assert_int_equal(st.dial_errors, 1);
    char line[1024];
    assert_true(find_line(line, sizeof(line), "event=proxy_close ", "dest=100.64.0.2:81", "reply=5",
                          "err=ECONNREFUSED", "proxy_status=connection_refused", "reason=", NULL));
    assert_false(find_line(line, sizeof(line), "event=proxy_open ", NULL));
}

/* The whole answer to one HTTP request through the proxy. */
static void http_get(const char *req, char *buf, size_t cap)
{
    int fd = px_thread_client(&g.px);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t got = 0;
    ssize_t n;
    while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(fd);
}

static void test_http_errors_say_why(void **state)
{
    (void)state;
    char buf[2048];
    http_get("GET http://db.example:81/ HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 502 Bad Gateway\r\n"));
    assert_non_null(strstr(buf, "\r\nProxy-Status: tunless; error=connection_refused; details="));
    assert_non_null(strstr(buf, "\r\n\r\nBad Gateway\ntunless could not reach db.example:81: "));
    http_get("GET http://nosuch.example:82/ HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "\r\nProxy-Status: tunless; error=dns_error; rcode=\"NXDOMAIN\""));
    /* The echo is no HTTP response. */
    http_get("GET http://db.example:80/ HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "\r\nProxy-Status: tunless; error=http_protocol_error\r\n"));
    struct proxy_stats st;
    wait_closed(&st);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.dials, 3);
    assert_int_equal(st.dial_errors, 2);
    for (int i = 0; i < PROXY_STATS_HTTP_STATUSES; i++)
        if (st.http_status[i].status == 502)
            assert_int_equal(st.http_status[i].count, 3);
    char line[1024];
    assert_true(find_line(line, sizeof(line), "event=proxy_close ", "proto=http",
                          "target=nosuch.example:82", "status=502", "err=ENXDOMAIN",
                          "proxy_status=dns_error rcode=NXDOMAIN", NULL));
    assert_null(strstr(line, "dest="));
}

static void test_refused_by_auth(void **state)
{
    (void)state;
    int fd = px_thread_client(&g.px);
    uint8_t hello[] = {5, 1, 2, 1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'b', 'a', 'd'};
    assert_int_equal(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
    uint8_t m[4];
    px_read_full(fd, m, 4);
    assert_memory_equal(m, "\x05\x02\x01\x01", 4);
    close(fd);
    char buf[1024];
    http_get("GET http://db.example:80/ HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 407 "));
    struct proxy_stats st;
    wait_closed(&st);
    assert_int_equal(st.refused_auth, 2);
    assert_int_equal(st.dials, 0);
    for (int i = 0; i < PROXY_STATS_HTTP_STATUSES; i++)
        if (st.http_status[i].status == 407)
            assert_int_equal(st.http_status[i].count, 1);
    char line[1024];
    assert_true(
        find_line(line, sizeof(line), "event=socks5_refused ", "reason=bad_credentials", NULL));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_socks5_relay_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socks5_refused_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors_say_why, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_by_auth, setup_auth, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
