/*
 * The local API on a whole node (node_pair, no root): the CLI's client asks node a through
 * its unix socket for a ping to b (ICMP through the tunnel), then for the status, which then
 * has b's key, a handshake, bytes both ways, and no private key; whois names b; a WireGuard
 * ping gets b's handshake responses; a reload of a node configured from memory is refused with
 * its reason; a second API on the same socket is refused while the first runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "localapi_client.h"
#include "node_pair.h"

struct job {
    const char *method, *target, *body;
    struct node_localapi_reply r;
    int rc;
    char path[64], err[256];
};

static void run_call(void *arg)
{
    struct job *j = arg;
    j->rc =
        node_localapi_call(j->path, j->method, j->target, j->body, &j->r, j->err, sizeof(j->err));
}

static json_t *call(struct np_pair *p, struct job *j, const char *method, const char *target,
                    const char *body, int want_status)
{
    j->method = method;
    j->target = target;
    j->body = body;
    node_localapi_reply_free(&j->r);
    assert_int_equal(np_call(p, run_call, j, 8000), 0);
    if (j->rc != 0)
        fail_msg("%s %s: %s", method, target, j->err);
    if (j->r.status != want_status)
        fail_msg("%s %s: status %d, want %d: %s", method, target, j->r.status, want_status,
                 j->r.body);
    assert_non_null(j->r.json);
    return j->r.json;
}

static void test_status_ping_whois(void **state)
{
    struct np_pair *p = *state;
    assert_int_equal(np_start(p, &(struct np_setup){0}), 0);
    struct job j = {0};
    char dir[] = "/tmp/tunless-np-api-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(j.path, sizeof(j.path), "%s/api.sock", dir);
    assert_int_equal(node_localapi_check(j.path, err, sizeof(err)), 0);
    assert_int_equal(node_localapi_start(&p->a.d, j.path, NULL, &p->a.d.api, err, sizeof(err)), 0);
    assert_int_equal(node_localapi_check(j.path, err, sizeof(err)), NODE_LOCALAPI_LIVE);
    assert_non_null(strstr(err, "another node is running (PID"));

    json_t *v = call(p, &j, "POST", "/v0/ping", "{\"target\": \"b\", \"count\": 2}", 200);
    assert_int_equal(json_integer_value(json_object_get(v, "received")), 2);
    assert_string_equal(json_string_value(json_object_get(v, "addr")), "100.64.0.2");

    v = call(p, &j, "GET", "/v0/status", NULL, 200);
    json_t *peer = json_array_get(json_object_get(v, "peers"), 0);
    assert_string_equal(json_string_value(json_object_get(peer, "public_key")), p->b.pub);
    assert_string_equal(json_string_value(json_object_get(peer, "name")), "b");
    assert_true(json_integer_value(json_object_get(peer, "rx_bytes")) > 0);
    assert_true(json_integer_value(json_object_get(peer, "tx_bytes")) > 0);
    assert_true(json_integer_value(json_object_get(peer, "last_handshake_seconds_ago")) < 60);
    assert_true(json_is_true(json_object_get(peer, "session")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "node"), "public_key")), p->a.pub);
    json_t *listener = json_array_get(json_object_get(json_object_get(v, "node"), "listeners"), 0);
    assert_string_equal(json_string_value(json_object_get(listener, "service")), "socks5+http");
    assert_true(
        json_is_integer(json_object_get(json_object_get(listener, "counters"), "accepted")));
    assert_null(strstr(j.r.body, p->a.priv));
    assert_null(strstr(j.r.body, p->b.priv));

    v = call(p, &j, "GET", "/v0/whois?addr=100.64.0.2%3A80", NULL, 200);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(v, "peer"), "public_key")), p->b.pub);
    v = call(p, &j, "GET", "/v0/whois?addr=10.9.9.9", NULL, 404);
    v = call(p, &j, "GET", "/v0/whois?addr=127.0.0.1%3A1", NULL, 404);
    assert_non_null(strstr(json_string_value(json_object_get(v, "error")),
                           "no connection through --publish comes from 127.0.0.1 port 1"));

    /* WireGuard handshakes with b: timed, from b's endpoint, even right after the last. */
    v = call(p, &j, "POST", "/v0/ping",
             "{\"target\": \"b\", \"type\": \"wireguard\", \"count\": 2}", 200);
    assert_int_equal(json_integer_value(json_object_get(v, "received")), 2);
    json_t *reply = json_array_get(json_object_get(v, "replies"), 1);
    assert_true(json_is_number(json_object_get(reply, "rtt_ms")));
    assert_non_null(strstr(json_string_value(json_object_get(reply, "endpoint")), "127.0.0.1:"));
    v = call(p, &j, "POST", "/v0/ping", "{\"target\": \"100.64.0.1\", \"type\": \"wireguard\"}",
             400);
    v = call(p, &j, "POST", "/v0/ping", "{\"target\": \"b\", \"type\": \"tsmp\"}", 400);
    v = call(p, &j, "POST", "/v0/ping", "{\"target\": \"nosuch\"}", 400);
    assert_string_equal(json_string_value(json_object_get(v, "error")),
                        "target: no peer has that name");
    v = call(p, &j, "POST", "/v0/reload", NULL, 422);
    assert_non_null(
        strstr(json_string_value(json_object_get(v, "error")), "no configuration file"));
    node_localapi_reply_free(&j.r);

    assert_int_equal(np_stop(p), 0); /* closes the API with the node */
    assert_int_equal(access(j.path, F_OK), -1);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_ping_whois, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
