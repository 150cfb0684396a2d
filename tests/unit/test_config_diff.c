/* cfg_diff: what a reload changes, peer by peer, and this node's addresses and DNS settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "config_asserts.h"

#define PEER_D "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define PEER_E "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define IFACE "[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 100.64.0.1/10\n"

static void parse(const char *text, struct cfg_config *c)
{
    char err[512] = "";
    if (cfg_parse_ini_buffer("wg0.conf", text, strlen(text), c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static void test_first_config_adds_everything(void **state)
{
    (void)state;
    struct cfg_config c;
    struct cfg_diff d;
    parse(IFACE "[Peer]\nPublicKey = " PEER_B "\n[Peer]\nPublicKey = " PEER_C "\n", &c);
    assert_int_equal(cfg_diff(NULL, &c, &d), 0);
    assert_int_equal(d.n_added, 2);
    assert_ptr_equal(d.added[0].new, &c.peers[0]);
    assert_ptr_equal(d.added[1].new, &c.peers[1]);
    assert_null(d.added[0].old);
    assert_int_equal(d.n_removed + d.n_changed + d.n_unchanged, 0);
    assert_true(d.addresses_changed);
    assert_true(d.dns_changed);
    cfg_diff_free(&d);
    cfg_free(&c);
}

static const char old_text[] =
    IFACE "DNS = 1.1.1.1\n"
          "[Peer]\n# Name = b\nPublicKey = " PEER_B "\nAllowedIPs = 100.64.0.2/32\n"
          "[Peer]\nPublicKey = " PEER_C "\nEndpoint = 192.0.2.1:51820\n"
          "[Peer]\nPublicKey = " PEER_D "\nAllowedIPs = 100.64.0.4/32\n"
          "[Peer]\n# Name = e\nPublicKey = " PEER_E "\n";

/* B keeps everything, C moves its endpoint, D goes, E is renamed, a new peer arrives (the PSK
 * constant serves as its public key); the new file lists the peers in another order. */
static const char new_text[] =
    IFACE "DNS = 1.1.1.1\n"
          "[Peer]\nPublicKey = " PSK "\nPersistentKeepalive = 25\n"
          "[Peer]\n# Name = e2\nPublicKey = " PEER_E "\n"
          "[Peer]\nPublicKey = " PEER_C "\nEndpoint = 192.0.2.2:51820\n"
          "[Peer]\n# Name = b\nPublicKey = " PEER_B "\nAllowedIPs = 100.64.0.2/32\n";

static void test_peers_sorted_into_four_lists(void **state)
{
    (void)state;
    struct cfg_config a, b;
    struct cfg_diff d;
    parse(old_text, &a);
    parse(new_text, &b);
    assert_int_equal(cfg_diff(&a, &b, &d), 0);

    assert_int_equal(d.n_added, 1);
    assert_key(d.added[0].new->public_key, PSK);
    assert_int_equal(d.n_removed, 1);
    assert_key(d.removed[0].old->public_key, PEER_D);
    assert_null(d.removed[0].new);
    assert_int_equal(d.n_changed, 2); /* in the new config's order: E, then C */
    assert_key(d.changed[0].new->public_key, PEER_E);
    assert_int_equal(d.changed[0].what, CFG_PEER_NAME);
    assert_false(d.changed[0].what & CFG_PEER_ENGINE);
    assert_string_equal(d.changed[0].old->name, "e");
    assert_key(d.changed[1].new->public_key, PEER_C);
    assert_int_equal(d.changed[1].what, CFG_PEER_ENDPOINTS);
    assert_ptr_equal(d.changed[1].old, &a.peers[1]);
    assert_int_equal(d.n_unchanged, 1);
    assert_ptr_equal(d.unchanged[0].new, &b.peers[3]);
    assert_ptr_equal(d.unchanged[0].old, &a.peers[0]);
    assert_false(d.addresses_changed);
    assert_false(d.dns_changed);
    cfg_diff_free(&d);
    assert_null(d.added);

    /* the same config against itself: nothing changes */
    assert_int_equal(cfg_diff(&b, &b, &d), 0);
    assert_int_equal(d.n_unchanged, b.n_peers);
    assert_int_equal(d.n_added + d.n_removed + d.n_changed, 0);
    cfg_diff_free(&d);
    cfg_free(&a);
    cfg_free(&b);
}

#define PEER_LINE "[Peer]\nPublicKey = " PEER_B "\n"
#define BASE_PEER PEER_LINE "# Name = b\nAllowedIPs = 100.64.0.2/32\nEndpoint = 192.0.2.1:51820\n"

static void test_each_field_is_named(void **state)
{
    (void)state;
    static const struct {
        const char *peer;
        unsigned what;
    } cases[] = {
        {BASE_PEER "PresharedKey = " PSK "\n", CFG_PEER_PRESHARED_KEY},
        {BASE_PEER "AllowedIPs = 10.0.0.0/8\n", CFG_PEER_ALLOWED_IPS},
        {PEER_LINE "# Name = b\nAllowedIPs = 100.64.0.3/32\nEndpoint = 192.0.2.1:51820\n",
         CFG_PEER_ALLOWED_IPS},
        {BASE_PEER "PersistentKeepalive = 25\n", CFG_PEER_KEEPALIVE},
        {PEER_LINE "# Name = b\nAllowedIPs = 100.64.0.2/32\nEndpoint = db.example:51820\n",
         CFG_PEER_ENDPOINTS},
        {PEER_LINE "# Name = b\nAllowedIPs = 100.64.0.2/32\nEndpoint = 192.0.2.1:51821\n",
         CFG_PEER_ENDPOINTS},
        {PEER_LINE "# Name = b\nAllowedIPs = 100.64.0.2/32\n", CFG_PEER_ENDPOINTS},
        {PEER_LINE "# Name = other\nAllowedIPs = 100.64.0.2/32\nEndpoint = 192.0.2.1:51820\n",
         CFG_PEER_NAME},
        {PEER_LINE "AllowedIPs = 100.64.0.2/32\nEndpoint = 192.0.2.1:51820\n", CFG_PEER_NAME},
        {BASE_PEER "PersistentKeepalive = 5\nAllowedIPs = 100.64.0.9\n",
         CFG_PEER_KEEPALIVE | CFG_PEER_ALLOWED_IPS},
    };
    struct cfg_config a;
    parse(IFACE BASE_PEER, &a);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        snprintf(text, sizeof(text), IFACE "%s", cases[i].peer);
        struct cfg_config b;
        struct cfg_diff d;
        parse(text, &b);
        assert_int_equal(cfg_diff(&a, &b, &d), 0);
        if (d.n_changed != 1 || d.changed[0].what != cases[i].what)
            fail_msg("case %zu: %zu changed, what %#x, want %#x", i, d.n_changed,
                     d.n_changed ? d.changed[0].what : 0, cases[i].what);
        cfg_diff_free(&d);
        cfg_free(&b);
    }
    cfg_free(&a);
}

static void test_changes_format(void **state)
{
    (void)state;
    char buf[128];
    assert_string_equal(cfg_peer_changes_format(0, buf, sizeof(buf)), "");
    assert_string_equal(cfg_peer_changes_format(CFG_PEER_NAME, buf, sizeof(buf)), "name");
    assert_string_equal(
        cfg_peer_changes_format(CFG_PEER_ENDPOINTS | CFG_PEER_ALLOWED_IPS, buf, sizeof(buf)),
        "endpoints,allowed_ips");
    assert_string_equal(cfg_peer_changes_format(CFG_PEER_ENGINE | CFG_PEER_NAME, buf, sizeof(buf)),
                        "preshared_key,endpoints,allowed_ips,keepalive,name");
    assert_string_equal(cfg_peer_changes_format(CFG_PEER_ENGINE, buf, 10), "preshared"); /* cut */
}

static void test_addresses_and_dns(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool addresses, dns;
    } cases[] = {
        {IFACE "DNS = 1.1.1.1\n", false, false},
        {IFACE "DNS = 1.1.1.1\nMTU = 1380\n", true, false},
        {IFACE "Address = fd00::1/64\nDNS = 1.1.1.1\n", true, false},
        {IFACE "DNS = 1.1.1.2\n", false, true},
        {IFACE "DNS = 1.1.1.1, corp.example\n", false, true},
        {"[Interface]\n# Name = gw\nPrivateKey = " SELF_PRIV
         "\nAddress = 100.64.0.1/10\nDNS = 1.1.1.1\n",
         false, true},
    };
    struct cfg_config a;
    parse(cases[0].text, &a);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfg_config b;
        struct cfg_diff d;
        parse(cases[i].text, &b);
        assert_int_equal(cfg_diff(&a, &b, &d), 0);
        if (d.addresses_changed != cases[i].addresses || d.dns_changed != cases[i].dns)
            fail_msg("case %zu: addresses %d dns %d", i, d.addresses_changed, d.dns_changed);
        cfg_diff_free(&d);
        cfg_free(&b);
    }
    cfg_free(&a);
}

static void test_netmap_dns_routes_and_records(void **state)
{
    (void)state;
    static const char *texts[] = {
        "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1\"]}, \"dns\": {\"routes\": "
        "{\"corp.\": [\"10.0.0.53\"]}, \"extra_records\": [{\"name\": \"p.\", \"type\": \"A\", "
        "\"value\": \"10.0.0.9\"}]}}",
        "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1\"]}, \"dns\": {\"routes\": "
        "{\"corp.\": [\"10.0.0.54\"]}, \"extra_records\": [{\"name\": \"p.\", \"type\": \"A\", "
        "\"value\": \"10.0.0.9\"}]}}",
        "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1\"]}, \"dns\": {\"routes\": "
        "{\"corp.\": [\"10.0.0.53\"]}, \"extra_records\": [{\"name\": \"p.\", \"type\": \"A\", "
        "\"value\": \"10.0.0.8\"}]}}",
    };
    struct cfg_config c[3];
    char err[512] = "";
    for (size_t i = 0; i < 3; i++)
        if (cfg_parse_netmap_buffer("n.json", texts[i], strlen(texts[i]), NULL, &c[i], err,
                                    sizeof(err)) != 0)
            fail_msg("%s", err);
    struct cfg_diff d;
    assert_int_equal(cfg_diff(&c[0], &c[0], &d), 0);
    assert_false(d.dns_changed);
    cfg_diff_free(&d);
    for (size_t i = 1; i < 3; i++) {
        assert_int_equal(cfg_diff(&c[0], &c[i], &d), 0);
        assert_true(d.dns_changed);
        cfg_diff_free(&d);
    }
    for (size_t i = 0; i < 3; i++)
        cfg_free(&c[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_config_adds_everything),
        cmocka_unit_test(test_peers_sorted_into_four_lists),
        cmocka_unit_test(test_each_field_is_named),
        cmocka_unit_test(test_changes_format),
        cmocka_unit_test(test_addresses_and_dns),
        cmocka_unit_test(test_netmap_dns_routes_and_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
