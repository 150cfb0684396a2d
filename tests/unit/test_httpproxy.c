/* The HTTP proxy request side: what goes upstream, what is refused, how bodies are framed. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "httpproxy.h"

struct sink {
    char body[4096];
    size_t len;
    int refs, copies;
};

static void on_body(void *arg, const uint8_t *data, size_t len, int ref)
{
    struct sink *s = arg;
    assert_true(s->len + len <= sizeof(s->body));
    memcpy(s->body + s->len, data, len);
    s->len += len;
    if (ref)
        s->refs++;
    else
        s->copies++;
}

static void setup(struct proxy_http_req *r, struct sink *s, const struct proxy_auth *auth)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(proxy_http_init(r, auth, 0), 0);
    r->on_body = on_body;
    r->arg = s;
}

/* Feed a whole string; return the event and how much was used. */
static enum proxy_http_event run(struct proxy_http_req *r, const char *in, size_t *used)
{
    return proxy_http_input(r, (const uint8_t *)in, strlen(in), used);
}

static void test_absolute_get(void **state)
{
    (void)state;
    struct proxy_http_req r;
    struct sink s;
    setup(&r, &s, NULL);
    const char *req = "GET http://example.com:8080/a/b?c=d#frag HTTP/1.1\r\n"
                      "Host: wrong\r\nUser-Agent: t\r\nProxy-Connection: keep-alive\r\n"
                      "Accept: */*\r\n\r\n";
    size_t used;
    assert_int_equal(run(&r, req, &used), PROXY_HTTP_HEAD);
    assert_int_equal(used, strlen(req));
    assert_int_equal(r.status, 0);
    assert_int_equal(r.connect, 0);
    assert_int_equal(r.keep_alive, 1);
    assert_string_equal(r.target.name, "example.com");
    assert_int_equal(r.target.ep.port, 8080);
    const char *want = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n"
                       "Accept: */*\r\n\r\n";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    /* No body: the message completes with no more input. */
    assert_int_equal(proxy_http_input(&r, (const uint8_t *)"", 0, &used), PROXY_HTTP_DONE);
    assert_int_equal(s.len, 0);
    proxy_http_free(&r);
}

static void test_hop_by_hop_removed(void **state)
{
    (void)state;
    struct proxy_http_req r;
    struct sink s;
    setup(&r, &s, NULL);
    const char *req = "POST http://10.1.2.3/x HTTP/1.1\r\nConnection: close, X-Secret\r\n"
                      "X-Secret: 1\r\nKeep-Alive: 300\r\nTE: trailers\r\nTrailer: X\r\n"
                      "Upgrade: websocket\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                      "X-Keep: yes\r\nContent-Length: 5\r\n\r\nhello";
    size_t used;
    assert_int_equal(run(&r, req, &used), PROXY_HTTP_HEAD);
    assert_int_equal(r.keep_alive, 0);
    assert_int_equal(r.target.ep.addr.family, AF_INET);
    assert_memory_equal(r.target.ep.addr.ip, "\x0a\x01\x02\x03", 4);
    assert_int_equal(r.target.ep.port, 80);
    const char *want = "POST /x HTTP/1.1\r\nHost: 10.1.2.3\r\nX-Keep: yes\r\n"
                       "Content-Length: 5\r\n\r\n";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    const char *rest = req + used;
    assert_int_equal(run(&r, rest, &used), PROXY_HTTP_DONE);
    assert_int_equal(used, 5);
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.body, "hello", 5);
    assert_int_equal(s.copies, 0); /* a Content-Length body goes by reference */
    proxy_http_free(&r);
}

static void test_chunked_reframed(void **state)
{
    (void)state;
    struct proxy_http_req r;
    struct sink s;
    setup(&r, &s, NULL);
    const char *req = "PUT http://h/u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
    size_t used;
    assert_int_equal(run(&r, req, &used), PROXY_HTTP_HEAD);
    assert_int_equal(r.chunked, 1);
    const char *want = "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
    assert_int_equal(run(&r, req + used, &used), PROXY_HTTP_DONE);
    const char *body = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_int_equal(s.len, strlen(body));
    assert_memory_equal(s.body, body, s.len);
    proxy_http_free(&r);
}

static void test_connect_and_pipelining(void **state)
{
    (void)state;
    struct proxy_http_req r;
    struct sink s;
    setup(&r, &s, NULL);
    const char *req = "CONNECT [fd7a:115c:a1e0::1]:443 HTTP/1.1\r\nHost: x\r\n\r\nTLSBYTES";
    size_t used;
    assert_int_equal(run(&r, req, &used), PROXY_HTTP_HEAD);
    assert_int_equal(r.connect, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.target.ep.port, 443);
    assert_int_equal(r.target.ep.addr.family, AF_INET6);
    assert_string_equal(req + used, "TLSBYTES"); /* tunnel bytes are left to the caller */
    proxy_http_free(&r);

    setup(&r, &s, NULL);
    const char *two = "GET http://a/1 HTTP/1.1\r\n\r\nGET http://b:81/2 HTTP/1.1\r\n\r\n";
    assert_int_equal(run(&r, two, &used), PROXY_HTTP_HEAD);
    assert_string_equal(r.target.name, "a");
    const char *p = two + used;
    assert_int_equal(run(&r, p, &used), PROXY_HTTP_DONE);
    p += used;
    /* Until proxy_http_next, the next request waits. */
    assert_int_equal(run(&r, p, &used), PROXY_HTTP_DONE);
    assert_int_equal(used, 0);
    proxy_http_next(&r);
    assert_int_equal(run(&r, p, &used), PROXY_HTTP_HEAD);
    assert_string_equal(r.target.name, "b");
    assert_int_equal(r.target.ep.port, 81);
    proxy_http_free(&r);
}

static void expect_status(const char *req, const struct proxy_auth *auth, int status)
{
    struct proxy_http_req r;
    struct sink s;
    setup(&r, &s, auth);
    size_t used;
    enum proxy_http_event ev = run(&r, req, &used);
    assert_true(ev == PROXY_HTTP_HEAD || ev == PROXY_HTTP_ERROR);
    assert_int_equal(r.status, status);
    proxy_http_free(&r);
}

static void test_refused_requests(void **state)
{
    (void)state;
    expect_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400);
    expect_status("GET https://a/ HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("GET http://user:pw@a/ HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("GET http://a:99999/ HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("GET http://a b/ HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("CONNECT a HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("CONNECT a:0 HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("CONNECT [::1 HTTP/1.1\r\n\r\n", NULL, 400);
    expect_status("NONSENSE\r\n\r\n", NULL, 400);
    expect_status("GET http://a/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", NULL,
                  400);
    char big[20000];
    int n = snprintf(big, sizeof(big), "GET http://a/ HTTP/1.1\r\nX: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n - 5);
    memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
    expect_status(big, NULL, 431);
}

static void test_auth(void **state)
{
    (void)state;
    struct proxy_auth auth;
    proxy_auth_init(&auth, "alice", "s3cret");
    char hdr[128], b64[64];
    sodium_bin2base64(b64, sizeof(b64), (const uint8_t *)"alice:s3cret", 12,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "GET http://a/ HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
             b64);
    expect_status(hdr, &auth, 0);
    snprintf(hdr, sizeof(hdr), "CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: basic  %s \r\n\r\n",
             b64);
    expect_status(hdr, &auth, 0);
    expect_status("GET http://a/ HTTP/1.1\r\n\r\n", &auth, 407);
    expect_status("CONNECT a:1 HTTP/1.1\r\n\r\n", &auth, 407);
    sodium_bin2base64(b64, sizeof(b64), (const uint8_t *)"alice:s3creT", 12,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "GET http://a/ HTTP/1.1\r\nProxy-Authorization: Basic %s\r\n\r\n",
             b64);
    expect_status(hdr, &auth, 407);
    expect_status("GET http://a/ HTTP/1.1\r\nProxy-Authorization: Bearer xyz\r\n\r\n", &auth, 407);
    expect_status("GET http://a/ HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n", &auth, 407);
    assert_int_equal(proxy_http_check_basic(&auth, "Basic YWxpY2U=", 14), 0); /* no colon */
    proxy_auth_wipe(&auth);
}

static void test_error_response(void **state)
{
    (void)state;
    char out[512];
    size_t n = proxy_http_error_response(out, sizeof(out), 407, NULL);
    out[n] = 0;
    assert_non_null(strstr(out, "HTTP/1.1 407 Proxy Authentication Required\r\n"));
    assert_non_null(strstr(out, "\r\nProxy-Authenticate: Basic realm=\"tunless\"\r\n"));
    n = proxy_http_error_response(out, sizeof(out), 504, NULL);
    out[n] = 0;
    assert_string_equal(out, "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 16\r\nConnection: close\r\n\r\nGateway Timeout\n");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absolute_get),     cmocka_unit_test(test_hop_by_hop_removed),
        cmocka_unit_test(test_chunked_reframed), cmocka_unit_test(test_connect_and_pipelining),
        cmocka_unit_test(test_refused_requests), cmocka_unit_test(test_auth),
        cmocka_unit_test(test_error_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
