/*
 * The node's HTTP server on a real libuv loop with real sockets (socketpairs and a unix
 * socket): routes answer, faults get their status and a JSON error, the caller's credentials
 * reach the handler, writes are refused to others (as nobody, when run as root), streams
 * carry chunks and drop a reader that falls behind with a final line, the connection cap
 * answers 503 (readers sooner: some connections are kept for root), closing the server tells deferred owners and frees every handle, and a
 * listener outlives a connection it found no memory for.
 */
#include <poll.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_internal.h"

/* Linked with -Wl,--wrap=calloc (tests/CMakeLists.txt): the next fail_conn_allocs connections
 * the server allocates find no memory. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int fail_conn_allocs;

void *__wrap_calloc(size_t n, size_t size)
{
    if (n == 1 && size == sizeof(struct node_http_conn) && fail_conn_allocs > 0) {
        fail_conn_allocs--;
        return NULL;
    }
    return __real_calloc(n, size);
}

struct fixture {
    uv_loop_t loop;
    struct node_http_server *s;
    struct node_http_request last; /* the last request a handler saw (strings copied) */
    char last_path[64], last_query[64], last_body[256];
    struct node_http_conn *held; /* a deferred or streaming connection */
    int gone_err;
    int gone_calls;
    bool closed;
};

static void on_hello(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    struct fixture *f = arg;
    f->last = *req;
    snprintf(f->last_path, sizeof(f->last_path), "%s", req->path);
    snprintf(f->last_query, sizeof(f->last_query), "%s", req->query);
    snprintf(f->last_body, sizeof(f->last_body), "%s", req->body);
    node_http_reply_json(c, 200,
                         json_pack("{s:s, s:b}", "hello", "world", "write", req->may_write));
}

static void on_gone(void *arg, struct node_http_conn *c, int err)
{
    struct fixture *f = arg;
    assert_ptr_equal(c, f->held);
    f->held = NULL;
    f->gone_err = err;
    f->gone_calls++;
}

static void on_defer(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    struct fixture *f = arg;
    f->held = c;
    node_http_defer(c, 0, on_gone, f);
}

static void on_stream(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)req;
    struct fixture *f = arg;
    f->held = c;
    node_http_stream_start(c, NULL, on_gone, f);
}

static void on_mute(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)arg;
    (void)c;
    (void)req;
}

static void on_echo_json(void *arg, struct node_http_conn *c, const struct node_http_request *req)
{
    (void)arg;
    json_t *body = node_http_body_json(c, req);
    if (body)
        node_http_reply_json(c, 200, body);
}

static void add_routes(struct fixture *f)
{
    const struct node_http_route routes[] = {
        {"GET", "/hello", false, on_hello, f}, {"POST", "/change", true, on_hello, f},
        {"GET", "/defer", false, on_defer, f}, {"GET", "/stream", false, on_stream, f},
        {"GET", "/mute", false, on_mute, f},   {"POST", "/echo", false, on_echo_json, f},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        assert_int_equal(node_http_server_route(f->s, &routes[i]), 0);
    assert_int_equal(node_http_server_route(f->s, &routes[0]), -EEXIST);
}

static struct fixture *fixture_new(const struct node_http_config *cfg)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    uv_loop_init(&f->loop);
    assert_int_equal(node_http_server_new(&f->loop, cfg, &f->s), 0);
    add_routes(f);
    return f;
}

static void on_server_closed(void *arg)
{
    ((struct fixture *)arg)->closed = true;
}

static void fixture_free(struct fixture *f)
{
    node_http_server_close(f->s, on_server_closed, f);
    assert_false(f->closed); /* never from inside close */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0); /* every handle closed */
    free(f);
}

/* A connected pair: the server serves one end; the test holds the other (non-blocking). */
static int connect_pair(struct fixture *f)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    assert_int_equal(node_http_server_serve_fd(f->s, sv[0]), 0);
    return sv[1];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop and reads fd until EOF (or until want appears, or 5 s); returns the text. */
static char *read_until(struct fixture *f, int fd, const char *want)
{
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    double end = now_s() + 5;
    while (now_s() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, out + len, cap - 1 - len, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0) {
            len += (size_t)n;
            out[len] = '\0';
            if (want && strstr(out, want))
                break;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 2);
    }
    return out;
}

static char *exchange(struct fixture *f, const char *request)
{
    int fd = connect_pair(f);
    assert_int_equal(send(fd, request, strlen(request), 0), (ssize_t)strlen(request));
    char *out = read_until(f, fd, NULL);
    close(fd);
    return out;
}

static void expect_status(struct fixture *f, const char *request, const char *status,
                          const char *body_part)
{
    char *out = exchange(f, request);
    if (strncmp(out, status, strlen(status)) != 0 || !strstr(out, body_part))
        fail_msg("for %.40s: want %s with %s, got: %s", request, status, body_part, out);
    free(out);
}

static void test_routes_and_credentials(void **state)
{
    (void)state;
    struct node_http_config cfg = {.name = "test"};
    struct fixture *f = fixture_new(&cfg);
    char *out = exchange(f, "GET /hello?a=1&b=x%20y HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_non_null(strstr(out, "\"hello\": \"world\""));
    assert_string_equal(f->last_path, "/hello");
    assert_string_equal(f->last_query, "a=1&b=x%20y");
    assert_true(f->last.peer.known);
    assert_int_equal(f->last.peer.uid, geteuid());
    assert_int_equal(f->last.peer.pid, getpid());
    assert_true(f->last.may_write);
    free(out);

    char v[16];
    assert_int_equal(node_http_query_get(f->last_query, "b", v, sizeof(v)), 0);
    assert_string_equal(v, "x y");
    assert_int_equal(node_http_query_get("a=%zz", "a", v, sizeof(v)), BASE_EPARSE);
    assert_int_equal(node_http_query_get("a=%00", "a", v, sizeof(v)), BASE_EPARSE);
    assert_int_equal(node_http_query_get("a=1", "c", v, sizeof(v)), -ENOENT);
    assert_int_equal(node_http_query_get("a=12345", "a", v, 3), -ENOSPC);

    expect_status(f, "POST /change HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 200",
                  "\"write\": true");
    assert_string_equal(f->last_body, "abc");
    expect_status(
        f, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n",
        "HTTP/1.1 200", "\"a\": 1");
    fixture_free(f);
}

static void test_faults(void **state)
{
    (void)state;
    struct node_http_config cfg = {.max_head = 256, .max_body = 16, .read_timeout_ms = 200};
    struct fixture *f = fixture_new(&cfg);
    expect_status(f, "GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404", "no such endpoint: /nope");
    /* A path that is not UTF-8 is quoted with '?' (a JSON string must be UTF-8), not a 503. */
    expect_status(f, "GET /n\xffpe HTTP/1.1\r\n\r\n", "HTTP/1.1 404", "no such endpoint: /n?pe");
    char *out = exchange(f, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_non_null(strstr(out, "HTTP/1.1 405"));
    assert_non_null(strstr(out, "Allow: GET\r\n"));
    free(out);
    expect_status(f, "garbage\r\n\r\n", "HTTP/1.1 ", "\"error\"");
    expect_status(f, "GET /hello HTTP/9.1\r\n\r\n", "HTTP/1.1 400", "malformed request");
    expect_status(f, "GET http://x/hello HTTP/1.1\r\n\r\n", "HTTP/1.1 400", "must be a path");
    expect_status(f, "BREW /hello HTTP/1.1\r\n\r\n", "HTTP/1.1 501", "unknown method");
    char big[600];
    snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nX: %0400d\r\n\r\n", 0);
    expect_status(f, big, "HTTP/1.1 431", "request head larger than 256 bytes");
    /* A head over several reads (the server reads 4 KiB at a time) counts each byte once. */
    struct node_http_config wide = {0};
    struct fixture *g = fixture_new(&wide);
    char *long_head = malloc(7000);
    snprintf(long_head, 7000, "GET /hello HTTP/1.1\r\nX: %06000d\r\n\r\n", 0);
    expect_status(g, long_head, "HTTP/1.1 200", "\"hello\"");
    free(long_head);
    fixture_free(g);
    expect_status(f, "POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"a\":\"0123456789\"}",
                  "HTTP/1.1 413", "request body larger than 16 bytes");
    expect_status(f, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":", "HTTP/1.1 400",
                  "body: line 1 column 5");
    expect_status(f, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", "HTTP/1.1 400",
                  "want a JSON object");
    expect_status(f, "GET /mute HTTP/1.1\r\n\r\n", "HTTP/1.1 500", "gave no answer");
    /* Half a request then silence: 408 after the read timeout; cut short by EOF: 400. */
    expect_status(f, "GET /hello HTTP/1.1\r\n", "HTTP/1.1 408", "did not arrive within 200 ms");
    int fd = connect_pair(f);
    assert_int_equal(send(fd, "GET /he", 7, 0), 7);
    shutdown(fd, SHUT_WR);
    out = read_until(f, fd, NULL);
    assert_non_null(strstr(out, "HTTP/1.1 400"));
    assert_non_null(strstr(out, "ended before the request was complete"));
    free(out);
    close(fd);
    /* Expect: 100-continue gets its interim answer before the body is sent. */
    fd = connect_pair(f);
    const char *head = "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(send(fd, head, strlen(head), 0), (ssize_t)strlen(head));
    out = read_until(f, fd, "\r\n\r\n");
    assert_string_equal(out, "HTTP/1.1 100 Continue\r\n\r\n");
    free(out);
    assert_int_equal(send(fd, "{}", 2, 0), 2);
    out = read_until(f, fd, NULL);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    free(out);
    close(fd);
    /* ... but not for a path that has no route: the answer comes on the head, alone. */
    expect_status(f, "POST /nope HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
                  "HTTP/1.1 404", "no such endpoint: /nope");
    fixture_free(f);
}

/* What nobody sends, and the status each must get: a write route's path reached another way
 * (a query, a slash more, an escape, another method, an override header, a pipelined request)
 * is refused or names no route; the write handler never runs. */
static const struct {
    const char *request;
    int status;
} nobody_requests[] = {
    {"GET /hello HTTP/1.1\r\n\r\n", 200},
    {"POST /change HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 403},
    /* Refused on its head: no "100 Continue", and the body it would send is never waited for. */
    {"POST /change HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 403},
    {"POST /change HTTP/1.1\r\nContent-Length: 100000\r\n\r\n{\"a\":", 403},
    {"POST /change?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 403},
    {"POST /change HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 403},
    {"POST /change/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404},
    {"POST //change HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404},
    {"POST /%63hange HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404},
    {"POST /hello/../change HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 404},
    {"HEAD /change HTTP/1.1\r\n\r\n", 405},
    {"GET /change HTTP/1.1\r\nX-HTTP-Method-Override: POST\r\n\r\n", 405},
    {"POST http://x/change HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400},
    {"GET /hello HTTP/1.1\r\n\r\nPOST /change HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 200},
};
#define N_NOBODY (sizeof(nobody_requests) / sizeof(nobody_requests[0]))

/* The child: each request on its own connection, each answer after a line "== i". */
static void nobody_client(const struct passwd *pw, const char *path, int out)
{
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        _exit(3);
    for (size_t i = 0; i < N_NOBODY; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            _exit(4);
        const char *rq = nobody_requests[i].request;
        char mark[16];
        int m = snprintf(mark, sizeof(mark), "== %zu\n", i);
        if (write(fd, rq, strlen(rq)) < 0 || write(out, mark, (size_t)m) != m)
            _exit(5);
        char buf[2048];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (write(out, buf, (size_t)n) < 0)
                _exit(6);
        close(fd);
    }
    _exit(0);
}

/* As nobody through a real unix socket (when run as root): reads pass, writes get 403. */
static void test_writes_need_the_owner(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    struct node_http_config cfg = {0};
    struct fixture *f = fixture_new(&cfg);
    char dir[] = "/tmp/tunless-http-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    assert_int_equal(node_http_server_listen_unix(f->s, path), 0);
    chmod(path, 0666);
    int out_pipe[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, out_pipe), 0);
    pid_t pid = fork();
    if (pid == 0)
        nobody_client(pw, path, out_pipe[1]);
    close(out_pipe[1]);
    char *out = read_until(f, out_pipe[0], NULL);
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    for (size_t i = 0; i < N_NOBODY; i++) {
        char mark[16], want[32];
        snprintf(mark, sizeof(mark), "== %zu\n", i);
        snprintf(want, sizeof(want), "%sHTTP/1.1 %d ", mark, nobody_requests[i].status);
        const char *at = strstr(out, mark);
        if (!at || strncmp(at, want, strlen(want)) != 0)
            fail_msg("%.50s: want %d, got: %.60s", nobody_requests[i].request,
                     nobody_requests[i].status, at ? at : "(nothing)");
    }
    assert_non_null(strstr(out, "\"write\": false"));
    assert_non_null(strstr(out, "only root or the node's own user"));
    assert_string_equal(f->last_path, "/hello"); /* the write handler never ran */
    assert_int_equal(f->last.peer.uid, pw->pw_uid);
    free(out);
    close(out_pipe[0]);
    fixture_free(f);
    unlink(path);
    rmdir(dir);
}

/* A stream's reader: a connection that asked for GET /stream and read the head. */
static int stream_reader(struct fixture *f)
{
    int fd = connect_pair(f);
    const char *rq = "GET /stream HTTP/1.1\r\n\r\n";
    assert_int_equal(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    free(read_until(f, fd, "\r\n\r\n"));
    return fd;
}

/* 1000-byte lines to the reader, which takes none, until one waits in libuv's queue: the
 * socket's buffer is full. */
static void fill_socket(struct fixture *f)
{
    char line[1001];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    while (f->held && uv_stream_get_write_queue_size(&f->held->h.stream) == 0)
        assert_int_equal(node_http_stream_write(f->held, line, sizeof(line)), 0);
}

static void test_stream_and_drop(void **state)
{
    (void)state;
    struct node_http_config cfg = {.stream_queue_bytes = 8192};
    struct fixture *f = fixture_new(&cfg);
    int fd = connect_pair(f);
    const char *rq = "GET /stream HTTP/1.1\r\n\r\n";
    assert_int_equal(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    char *out = read_until(f, fd, "\r\n\r\n");
    assert_non_null(strstr(out, "Transfer-Encoding: chunked"));
    free(out);
    assert_non_null(f->held);
    assert_int_equal(node_http_stream_write(f->held, "{\"n\":1}\n", 8), 0);
    json_t *v = json_pack("{s:i}", "n", 2);
    assert_int_equal(node_http_stream_write_json(f->held, v), 0);
    json_decref(v);
    out = read_until(f, fd, "{\"n\":2}\n\r\n");
    assert_string_equal(out, "8\r\n{\"n\":1}\n\r\n8\r\n{\"n\":2}\n\r\n");
    free(out);
    node_http_stream_end(f->held);
    f->held = NULL;
    out = read_until(f, fd, NULL);
    assert_string_equal(out, "0\r\n\r\n");
    free(out);
    close(fd);

    /* More than the queue's bound in one turn of the loop, all taken by the kernel at once:
     * nobody fell behind, so nobody is dropped. */
    fd = stream_reader(f);
    char burst[1000];
    memset(burst, 'y', sizeof(burst) - 1);
    burst[sizeof(burst) - 1] = '\n';
    for (int i = 0; i < 20; i++)
        assert_int_equal(node_http_stream_write(f->held, burst, sizeof(burst)), 0);
    node_http_stream_end(f->held);
    f->held = NULL;
    out = read_until(f, fd, NULL);
    assert_int_equal(strlen(out), 20 * (sizeof(burst) + strlen("3e8\r\n\r\n")) + 5);
    free(out);
    close(fd);

    /* A reader that does not read: the kernel's buffers fill, then the queue, then a drop. */
    fd = stream_reader(f);
    char line[1001];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\n';
    int rc = 0, writes = 0;
    while (rc == 0 && writes < 100000) {
        rc = node_http_stream_write(f->held, line, sizeof(line));
        writes++;
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(rc, BASE_ELIMIT);
    assert_int_equal(f->gone_calls, 0); /* the return value said it */
    out = read_until(f, fd, NULL);
    assert_non_null(strstr(out, "{\"error\": \"dropped: the reader fell"));
    size_t n = strlen(out);
    assert_true(n > 5 && strcmp(out + n - 5, "0\r\n\r\n") == 0);
    free(out);
    close(fd);
    fixture_free(f);
}

static void test_defer_gone_and_close(void **state)
{
    (void)state;
    struct node_http_config cfg = {.max_conns = 2};
    struct fixture *f = fixture_new(&cfg);
    /* The client leaves while the answer is deferred: the owner hears it. */
    int fd = connect_pair(f);
    assert_int_equal(send(fd, "GET /defer HTTP/1.1\r\n\r\n", 23, 0), 23);
    for (int i = 0; i < 100 && !f->held; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_non_null(f->held);
    close(fd);
    for (int i = 0; i < 100 && f->held; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_null(f->held);
    assert_int_equal(f->gone_calls, 1);
    assert_int_equal(f->gone_err, -ECONNRESET);

    /* A deferred answer given later reaches the client. */
    fd = connect_pair(f);
    assert_int_equal(send(fd, "GET /defer HTTP/1.1\r\n\r\n", 23, 0), 23);
    for (int i = 0; i < 100 && !f->held; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    node_http_reply_error(f->held, 504, "later");
    f->held = NULL;
    char *out = read_until(f, fd, NULL);
    assert_non_null(strstr(out, "HTTP/1.1 504"));
    free(out);
    close(fd);

    /* Over the cap: 503. Then close with a stream open: BASE_ECLOSING. */
    int a = connect_pair(f), b = connect_pair(f), c = connect_pair(f);
    out = read_until(f, c, NULL);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    assert_non_null(strstr(out, "too many connections (at most 2)"));
    free(out);
    close(c);
    close(b);
    assert_int_equal(send(a, "GET /stream HTTP/1.1\r\n\r\n", 24, 0), 24);
    free(read_until(f, a, "\r\n\r\n"));
    assert_non_null(f->held);
    node_http_server_close(f->s, on_server_closed, f);
    assert_null(f->held);
    assert_int_equal(f->gone_calls, 2);
    assert_int_equal(f->gone_err, BASE_ECLOSING);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    close(a);
}

/* A deferred answer whose event never comes: the owner hears -ETIMEDOUT, the client 504. */
static void test_defer_deadline(void **state)
{
    (void)state;
    struct node_http_config cfg = {.defer_timeout_ms = 200};
    struct fixture *f = fixture_new(&cfg);
    int fd = connect_pair(f);
    assert_int_equal(send(fd, "GET /defer HTTP/1.1\r\n\r\n", 23, 0), 23);
    char *out = read_until(f, fd, NULL);
    if (!strstr(out, "HTTP/1.1 504") || !strstr(out, "gave no answer within 200 ms"))
        fail_msg("want 504, got: %s", out);
    free(out);
    close(fd);
    assert_null(f->held);
    assert_int_equal(f->gone_calls, 1);
    assert_int_equal(f->gone_err, -ETIMEDOUT);
    fixture_free(f);
}

/* A stream's reader that takes nothing, with a queue large enough never to fill: dropped once
 * it stalled for stall_timeout_ms, the owner told (-ETIMEDOUT), a last line for the reader. */
static void test_stream_stall(void **state)
{
    (void)state;
    struct node_http_config cfg = {.stream_queue_bytes = 64 << 20, .stall_timeout_ms = 200};
    struct fixture *f = fixture_new(&cfg);
    int fd = stream_reader(f);
    fill_socket(f);
    double end = now_s() + 10;
    while (f->held && now_s() < end) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        poll(NULL, 0, 2);
    }
    assert_null(f->held);
    assert_int_equal(f->gone_calls, 1);
    assert_int_equal(f->gone_err, -ETIMEDOUT);
    char *out = read_until(f, fd, NULL);
    assert_non_null(strstr(out, "{\"error\": \"dropped: the reader took nothing for 200 ms\"}"));
    free(out);
    close(fd);
    fixture_free(f);
}

/* Tiny lines to a reader that takes nothing, once the socket's buffer is full: each waits in
 * libuv's queue as two writes, 7 bytes and two requests of NODE_HTTP_WRITE_OVERHEAD, and the
 * reader is dropped once that cost, not the bytes, would pass stream_queue_bytes (counting
 * bytes it took some 9,000 lines, 4 MB of heap for a 64 KiB bound). The lines queued before the
 * drop still reach the reader. */
static void test_stream_tiny_lines_at_cost(void **state)
{
    (void)state;
    struct node_http_config cfg = {.stream_queue_bytes = 64 << 10};
    struct fixture *f = fixture_new(&cfg);
    int fd = stream_reader(f);
    uv_stream_t *st = &f->held->h.stream;
    fill_socket(f);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the callbacks of what the kernel took */
    size_t bytes = uv_stream_get_write_queue_size(st);
    int rc = 0;
    size_t lines = 0;
    while (rc == 0 && lines < 100000) {
        rc = node_http_stream_write(f->held, "1\n", 2);
        lines += rc == 0;
    }
    assert_int_equal(rc, BASE_ELIMIT);
    size_t per_line = strlen("2\r\n1\n\r\n") + 2 * NODE_HTTP_WRITE_OVERHEAD;
    print_message("%zu bytes queued, then %zu 2-byte lines (%zu bytes of heap each) until the "
                  "drop\n",
                  bytes, lines, per_line);
    assert_true(bytes + lines * per_line <= cfg.stream_queue_bytes);
    /* not dropped early: the next line would have crossed it (the first line's writes, each
     * with its overhead, were queued before) */
    assert_true(bytes + 2 * NODE_HTTP_WRITE_OVERHEAD + (lines + 1) * per_line >
                cfg.stream_queue_bytes);
    char *out = read_until(f, fd, NULL);
    size_t got = 0;
    for (const char *p = out; (p = strstr(p, "\r\n2\r\n1\n")); p++)
        got++;
    assert_int_equal(got, lines);
    assert_non_null(strstr(out, "{\"error\": \"dropped: the reader fell"));
    free(out);
    close(fd);
    fixture_free(f);
}

/* The child (nobody): holds n connections (nothing sent), says so, then what its third one
 * heard within 3 s (one line), and keeps them until the parent closes out. */
static void reader_client(const struct passwd *pw, const char *path, int n, int out)
{
    if (setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        _exit(3);
    int fd[16];
    for (int i = 0; i < n; i++) {
        fd[i] = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
        if (connect(fd[i], (struct sockaddr *)&sun, sizeof(sun)) != 0)
            _exit(4);
    }
    char buf[512] = "connected\n";
    if (write(out, buf, strlen(buf)) < 0)
        _exit(5);
    struct pollfd p = {.fd = fd[2], .events = POLLIN};
    ssize_t got = poll(&p, 1, 3000) == 1 ? read(fd[2], buf, sizeof(buf) - 1) : 0;
    buf[got > 0 ? got : 0] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    dprintf(out, "third: %s\n", buf[0] ? buf : "nothing");
    while (read(out, buf, sizeof(buf)) > 0) {
    }
    _exit(0);
}

/* Readers (nobody, when run as root) share max_conns less writer_conns: a reader holding its
 * share is answered 503, and past twice the cap closed at once, while root still gets in,
 * twice, even after a reader's flood in the same turn of the loop. */
static void test_conns_kept_for_writers(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    struct node_http_config cfg = {.max_conns = 4, .writer_conns = 2};
    struct fixture *f = fixture_new(&cfg);
    char dir[] = "/tmp/tunless-http-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    chmod(dir, 0755);
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    assert_int_equal(node_http_server_listen_unix(f->s, path), 0);
    chmod(path, 0666);
    int out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, out), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]);
        reader_client(pw, path, 10, out[1]);
    }
    close(out[1]);
    char line[16] = "";
    assert_true(read(out[0], line, 10) == 10); /* "connected\n": all 10 wait to be accepted */
    /* Root connects behind them: accepted in the same turn as the flood. */
    int root = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(connect(root, (struct sockaddr *)&sun, sizeof(sun)), 0);
    const char *rq = "GET /hello HTTP/1.1\r\n\r\n";
    assert_int_equal(send(root, rq, strlen(rq), 0), (ssize_t)strlen(rq));
    char *said = read_until(f, out[0], "\n");
    if (!strstr(said, "HTTP/1.1 503"))
        fail_msg("the third reader: want 503, got: %s", said);
    free(said);
    char *got = read_until(f, root, NULL);
    if (strncmp(got, "HTTP/1.1 200", 12) != 0)
        fail_msg("root behind a flood of readers: got '%s'", got);
    free(got);
    close(root);
    expect_status(f, rq, "HTTP/1.1 200", "\"write\": true"); /* the second kept connection */
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    fixture_free(f);
    unlink(path);
    rmdir(dir);
}

/* Without memory for an accepted connection the listener keeps working: that connection is
 * answered once memory is back (libuv watches a listener again only once it is taken), and the
 * next one too. */
static void test_accept_without_memory(void **state)
{
    (void)state;
    struct node_http_config cfg = {0};
    struct fixture *f = fixture_new(&cfg);
    char dir[] = "/tmp/tunless-http-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    assert_int_equal(node_http_server_listen_unix(f->s, path), 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    const char *rq = "GET /hello HTTP/1.1\r\n\r\n";
    fail_conn_allocs = 3;
    for (int i = 0; i < 2; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
        assert_int_equal(send(fd, rq, strlen(rq), 0), (ssize_t)strlen(rq));
        char *out = read_until(f, fd, NULL);
        if (strncmp(out, "HTTP/1.1 200", 12) != 0)
            fail_msg("connection %d: got '%s'", i, out);
        free(out);
        close(fd);
    }
    assert_int_equal(fail_conn_allocs, 0);
    fixture_free(f);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as tunless's main: a client gone costs its connection */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_credentials),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_writes_need_the_owner),
        cmocka_unit_test(test_stream_and_drop),
        cmocka_unit_test(test_defer_gone_and_close),
        cmocka_unit_test(test_accept_without_memory),
        cmocka_unit_test(test_conns_kept_for_writers),
        cmocka_unit_test(test_defer_deadline),
        cmocka_unit_test(test_stream_stall),
        cmocka_unit_test(test_stream_tiny_lines_at_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
