/*
 * Health, metrics, readiness and PUT /v0/netmap on whole nodes (node_pair): the pure health
 * check item by item; then node a's metrics after traffic through it (per-peer bytes move, no
 * private key), readiness with ?peers=all, and netmaps pushed to a: a bad one refused with its
 * JSON path and nothing changed, a good one adding a peer while b's session stays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lifecycle.h"
#include "metrics.h"
#include "node_pair.h"

#define NS 1000000000ull

static bool has(const struct node_health_item *it, size_t n, const char *code)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].code, code) == 0)
            return true;
    return false;
}

static void test_health_items(void **state)
{
    (void)state;
    struct node_health_item it[8];
    struct node_health_facts f = {.have_config = false, .now_wall_ns = 1000 * NS};
    size_t n = node_health_check(&f, it, 8);
    assert_int_equal(n, 1);
    assert_string_equal(it[0].code, "no_config");

    struct node_health_peer peers[] = {
        {.name = "db",
         .key = "AAAAAAAAkey",
         .endpoint = "db.example:51820",
         .endpoint_known = false,
         .last_handshake_wall_ns = 0},
        {.name = NULL,
         .key = "BBBBBBBBkey",
         .endpoint = NULL,
         .last_handshake_wall_ns = (1000 - 181) * NS},
    };
    f = (struct node_health_facts){.have_config = true,
                                   .now_wall_ns = 1000 * NS,
                                   .peers = peers,
                                   .n_peers = 2,
                                   .dns_upstream_failures = 3,
                                   .udp_rx_drops = 7,
                                   .listen_error = "MagicDNS: cannot serve"};
    n = node_health_check(&f, it, 8);
    assert_int_equal(n, 5);
    assert_true(has(it, n, "no_handshake"));
    assert_true(has(it, n, "endpoint_unresolved"));
    assert_true(has(it, n, "dns_upstream_timeouts"));
    assert_true(has(it, n, "udp_receive_drops"));
    assert_true(has(it, n, "listener_failed"));
    for (size_t i = 0; i < n; i++)
        if (strcmp(it[i].code, "endpoint_unresolved") == 0)
            assert_non_null(strstr(it[i].message, "db.example:51820"));

    /* one fresh handshake is enough; a resolved endpoint is not reported */
    peers[1].last_handshake_wall_ns = (1000 - 179) * NS;
    peers[0].endpoint_known = true;
    f.dns_upstream_failures = f.udp_rx_drops = 0;
    f.listen_error = NULL;
    assert_int_equal(node_health_check(&f, it, 8), 0);
    /* the caller's cap holds */
    f.have_config = false;
    f.udp_rx_drops = 1;
    assert_int_equal(node_health_check(&f, it, 1), 1);
}

struct traffic {
    uint16_t proxy_port, echo_port;
    bool ok;
};

static void echo_through(void *arg)
{
    struct traffic *t = arg;
    int reply;
    int fd = np_socks5_connect(t->proxy_port, "100.64.0.2", 8080, &reply);
    char back[64] = "";
    t->ok = fd >= 0 && reply == 0 && np_send_all(fd, "metrics move", 12) == 0 &&
            np_recv_all(fd, back, 12) == 0 && memcmp(back, "metrics move", 12) == 0;
    if (fd >= 0)
        close(fd);
}

static uint64_t sample(const char *text, const char *prefix)
{
    const char *at = strstr(text, prefix);
    return at ? strtoull(at + strlen(prefix), NULL, 10) : 0;
}

static void test_metrics_after_traffic(void **state)
{
    struct np_pair *p = *state;
    char publish[64];
    snprintf(publish, sizeof(publish), "8080=127.0.0.1:%u", p->tcp_echo_port);
    const char *b_flags[] = {"--publish", publish, NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.b_flags = b_flags}), 0);
    struct node_daemon *a = &p->a.d;
    char why[256];
    assert_true(node_metrics_ready(a, false, why, sizeof(why)));

    struct traffic t = {.proxy_port = np_proxy_port(&p->a)};
    assert_int_equal(np_call(p, echo_through, &t, 5000), 0);
    assert_true(t.ok);
    assert_true(node_metrics_ready(a, true, why, sizeof(why)));

    char *text;
    size_t len;
    assert_int_equal(node_metrics_text(a, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    char prefix[256];
    snprintf(prefix, sizeof(prefix),
             "tunless_peer_receive_bytes_total{peer=\"b\",public_key=\"%s\"} ", p->b.pub);
    assert_true(sample(text, prefix) > 0);
    assert_true(sample(text, "\ntunless_wireguard_handshakes_completed_total ") >= 1);
    assert_true(sample(text, "tunless_netstack_payload_transmit_bytes_total{protocol=\"tcp\"} ") >=
                12);
    assert_non_null(strstr(text, "tunless_state{state=\"Running\"} 1\n"));
    assert_non_null(strstr(text, "# TYPE tunless_dns_queries_total counter\n"));
    snprintf(prefix, sizeof(prefix), "tunless_proxy_connections_total{listener=\"127.0.0.1:%u\"} ",
             np_proxy_port(&p->a));
    assert_true(sample(text, prefix) >= 1);
    snprintf(prefix, sizeof(prefix),
             "tunless_proxy_socks5_replies_total{listener=\"127.0.0.1:%u\",code=\"0\"} ",
             np_proxy_port(&p->a));
    assert_true(sample(text, prefix) >= 1);
    assert_null(strstr(text, p->a.priv));
    assert_null(strstr(text, p->b.priv));
    free(text);

    json_t *health = json_array();
    assert_int_equal(node_health_json(a, health), 0); /* all is well */
    json_decref(health);
}

struct heard {
    struct node_subscriber sub;
    unsigned appeared, cleared;
    char code[32];
};

static void on_health(struct node_subscriber *s, const struct node_event *ev)
{
    struct heard *h = container_of(s, struct heard, sub);
    if (ev->kind != NODE_EVENT_HEALTH)
        return;
    snprintf(h->code, sizeof(h->code), "%s", ev->code);
    if (ev->cleared)
        h->cleared++;
    else
        h->appeared++;
}

/* The watch stream hears health items come and go, once each. */
static void test_health_events(void **state)
{
    struct np_pair *p = *state;
    assert_int_equal(np_start(p, &(struct np_setup){0}), 0);
    struct node_daemon *a = &p->a.d;
    struct heard h = {.sub.on_event = on_health};
    base_list_init(&h.sub.link);
    node_lifecycle_subscribe(a, &h.sub);
    node_health_poll(a); /* whatever is there now is the baseline */
    h.appeared = h.cleared = 0;
    node_metrics_note_listen_error(a, "MagicDNS: cannot serve 100.100.100.100");
    node_health_poll(a);
    node_health_poll(a);
    assert_int_equal(h.appeared, 1);
    assert_string_equal(h.code, "listener_failed");
    node_metrics_note_listen_error(a, NULL);
    node_health_poll(a);
    assert_int_equal(h.cleared, 1);
    assert_int_equal(h.appeared, 1);
    node_lifecycle_unsubscribe(&h.sub);
}

/* node a's netmap: itself and b, plus extra peers */
static void netmap_text(struct np_pair *p, const char *extra, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"version\": 1, \"self\": {\"private_key\": \"%s\", \"addresses\": "
             "[\"100.64.0.1/32\", \"fd7a:115c:a1e0::1/128\"]}, \"peers\": [{\"name\": \"b\", "
             "\"public_key\": \"%s\", \"endpoints\": [\"127.0.0.1:%u\"], \"allowed_ips\": "
             "[\"100.64.0.2/32\", \"fd7a:115c:a1e0::2/128\"]}%s]}",
             p->a.priv, p->b.pub, np_wg_port(&p->b), extra);
}

static void test_netmap_put(void **state)
{
    struct np_pair *p = *state;
    assert_int_equal(np_start(p, &(struct np_setup){0}), 0);
    struct node_daemon *a = &p->a.d;
    char body[2048], extra[256], kept[sizeof(a->state_dir) + 32], pub[WG_KEY_B64_LEN + 1],
        priv[WG_KEY_B64_LEN + 1];
    json_t *answer = NULL;

    np_keypair(priv, pub);
    snprintf(extra, sizeof(extra),
             ", {\"name\": \"c\", \"public_key\": \"%s\", \"allowed_ips\": [\"100.64.0.3/33\"]}",
             pub);
    netmap_text(p, extra, body, sizeof(body));
    assert_int_equal(node_netmap_put(a, body, strlen(body), &answer), 400);
    assert_string_equal(json_string_value(json_object_get(answer, "path")),
                        "peers[1].allowed_ips[0]");
    json_decref(answer);
    assert_int_equal(a->cfg.n_peers, 1);

    /* A message cut in the middle of a character (a long file name, 2 bytes a character; one
     * of the two lengths cuts it) still answers its error, '?' for what is not UTF-8. */
    for (int odd = 0; odd < 2; odd++) {
        char name[700] = "x";
        for (size_t i = (size_t)odd; i < 600; i += 2)
            memcpy(name + i, "\xc3\xa9", 3); /* é */
        snprintf(body, sizeof(body), "{\"version\": 1, \"self\": {\"private_key_file\": \"%s\"}}",
                 name);
        assert_int_equal(node_netmap_put(a, body, strlen(body), &answer), 400);
        const char *msg = json_string_value(json_object_get(answer, "error"));
        assert_non_null(msg);
        assert_non_null(strstr(msg, "self.private_key_file"));
        json_decref(answer);
    }

    snprintf(extra, sizeof(extra),
             ", {\"name\": \"c\", \"public_key\": \"%s\", \"allowed_ips\": [\"100.64.0.3/32\"]}",
             pub);
    netmap_text(p, extra, body, sizeof(body));
    assert_int_equal(node_netmap_put(a, body, strlen(body), &answer), 200);
    assert_int_equal(json_array_size(json_object_get(answer, "added")), 1);
    assert_int_equal(json_integer_value(json_object_get(answer, "unchanged")), 1);
    json_decref(answer);
    assert_int_equal(a->cfg.n_peers, 2);

    /* kept for the next start, 0600; removed so that np_stop finds the state dir empty */
    snprintf(kept, sizeof(kept), "%s/%s", a->state_dir, NODE_NETMAP_STATE_FILE);
    assert_int_equal(access(kept, R_OK), 0);
    unlink(kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_items),
        cmocka_unit_test_setup_teardown(test_metrics_after_traffic, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_netmap_put, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_health_events, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
