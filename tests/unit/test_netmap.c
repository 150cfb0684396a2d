/* The JSON netmap: examples/netmap.json parsed field by field, and every error with its path. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_asserts.h"

#define V "\"version\": 1"
#define SELF "\"self\": {\"addresses\": [\"100.64.0.1/10\"], \"private_key\": \"" SELF_PRIV "\"}"
#define TOP V ", " SELF
#define PB "{\"public_key\": \"" PEER_B "\"}"

static const char *source_path(const char *rel)
{
    static char path[4096];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof(path), "%.*s/../../%s", dir, slash ? __FILE__ : ".", rel);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

struct tmpdir {
    char dir[64];
    char netmap[128];
    char key[128];
};

static void tmpdir_make(struct tmpdir *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/tunless-netmap-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->netmap, sizeof(t->netmap), "%s/netmap.json", t->dir);
    snprintf(t->key, sizeof(t->key), "%s/gw.key", t->dir);
}

static void tmpdir_remove(struct tmpdir *t)
{
    unlink(t->netmap);
    unlink(t->key);
    assert_int_equal(rmdir(t->dir), 0);
}

static void test_example_netmap(void **state)
{
    (void)state;
    struct tmpdir t;
    tmpdir_make(&t);
    /* the example names no key: the node takes the one in its state directory */
    write_file(t.netmap, slurp(source_path("examples/netmap.json")), 0644);

    struct cfg_config c;
    char err[512] = "";
    if (cfg_parse_netmap(t.netmap, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.source, CFG_SOURCE_NETMAP);
    assert_string_equal(c.file, t.netmap);
    assert_string_equal(c.name, "gw");
    assert_false(c.has_private_key);
    assert_int_equal(c.n_addresses, 2);
    assert_prefix(&c.addresses[0], "100.64.0.1", 10);
    assert_prefix(&c.addresses[1], "fd7a:115c:a1e0::1", 48);
    assert_int_equal(c.listen_port, 51820);
    assert_int_equal(c.mtu, 1420);
    assert_int_equal(c.n_warnings, 0); /* no key in it: 0644 is fine */

    assert_int_equal(c.n_peers, 3);
    const struct cfg_peer *db = &c.peers[0];
    assert_string_equal(db->name, "db");
    assert_key(db->public_key, PEER_B);
    assert_true(db->has_preshared_key);
    assert_key(db->preshared_key, PSK);
    assert_int_equal(db->n_endpoints, 2);
    assert_string_equal(db->endpoints[0].host, "db.example.net");
    assert_int_equal(db->endpoints[0].port, 51821);
    assert_string_equal(db->endpoints[1].host, "198.51.100.2");
    assert_int_equal(db->n_allowed_ips, 2);
    assert_prefix(&db->allowed_ips[1], "fd7a:115c:a1e0::2", 128);
    assert_int_equal(db->persistent_keepalive, 25);
    assert_int_equal(db->line, 0);
    const struct cfg_peer *web = &c.peers[1];
    assert_false(web->has_preshared_key);
    assert_string_equal(web->endpoints[0].host, "2001:db8::7");
    assert_int_equal(web->n_allowed_ips, 3);
    assert_prefix(&web->allowed_ips[2], "192.168.30.0", 24);
    assert_int_equal(web->persistent_keepalive, 0);
    assert_int_equal(c.peers[2].n_endpoints, 0);
    assert_string_equal(c.peers[2].name, "laptop");

    assert_string_equal(c.dns_suffix, "mesh.example.");
    assert_int_equal(c.n_resolvers, 2);
    assert_ip(&c.resolvers[0], "1.1.1.1", 53);
    assert_ip(&c.resolvers[1], "2606:4700:4700::1111", 53);
    assert_int_equal(c.n_routes, 1);
    assert_string_equal(c.routes[0].suffix, "corp.example.");
    assert_int_equal(c.routes[0].n_resolvers, 2);
    assert_ip(&c.routes[0].resolvers[0], "10.0.0.53", 53);
    assert_ip(&c.routes[0].resolvers[1], "10.0.1.53", 5353);
    assert_int_equal(c.n_search, 1);
    assert_string_equal(c.search[0], "corp.example");
    assert_int_equal(c.n_records, 2);
    assert_string_equal(c.records[0].name, "printer.mesh.example.");
    assert_int_equal(c.records[0].addr.family, AF_INET);
    char buf[BASE_ADDR_STRLEN];
    assert_string_equal(base_addr_format(&c.records[0].addr, buf, sizeof(buf)), "192.168.30.9");
    assert_int_equal(c.records[1].addr.family, AF_INET6);
    assert_string_equal(base_addr_format(&c.records[1].addr, buf, sizeof(buf)),
                        "fd7a:115c:a1e0::99");
    cfg_free(&c);
    assert_zeroed(&c);
    tmpdir_remove(&t);
}

static void test_minimal_and_keyless(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    static const char text[] = "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.9\"]}}";
    if (cfg_parse_netmap_buffer("netmap.json", text, strlen(text), NULL, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    /* no key: the node takes the one in its state directory */
    assert_false(c.has_private_key);
    assert_prefix(&c.addresses[0], "100.64.0.9", 32);
    assert_int_equal(c.n_peers, 0);
    assert_int_equal(c.mtu, CFG_DEFAULT_MTU);
    assert_null(c.dns_suffix);
    cfg_free(&c);
}

static void test_host_bits_warned(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    static const char text[] = "{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", "
                               "\"allowed_ips\": [\"10.9.9.9/16\", \"10.10.0.0/16\"]}]}";
    if (cfg_parse_netmap_buffer("netmap.json", text, strlen(text), NULL, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_prefix(&c.peers[0].allowed_ips[0], "10.9.0.0", 16);
    assert_int_equal(c.n_warnings, 1);
    assert_string_equal(c.warnings[0], "netmap.json: peers[0].allowed_ips[0]: '10.9.9.9/16' has "
                                       "bits set beyond its prefix: read as "
                                       "10.9.0.0/16");
    cfg_free(&c);
}

struct bad_case {
    const char *text;
    const char *error;
};

static const struct bad_case bad_cases[] = {
    /* JSON itself */
    {"{", "netmap.json:1:1: not valid JSON: string or '}' expected near end of file"},
    {"", "netmap.json:1:0: not valid JSON: '[' or '{' expected near end of file"},
    {"{" TOP "} x", "netmap.json:1:121: not valid JSON: end of file expected near 'x'"},
    {"{" V ", " V "}", "netmap.json:1:24: not valid JSON: duplicate object key near '\"version\"'"},
    {"[]", "netmap.json: the netmap is a JSON object, not an array"},
    /* top level */
    {"{" TOP ", \"peer\": []}", "netmap.json: peer: unknown field"},
    {"{" SELF "}", "netmap.json: version: missing"},
    {"{\"version\": 2, " SELF "}",
     "netmap.json: version: 2 is not supported (this tunless reads version 1)"},
    {"{\"version\": \"1\", " SELF "}", "netmap.json: version: not an integer"},
    {"{" V "}", "netmap.json: self: missing"},
    /* self */
    {"{" V ", \"self\": []}", "netmap.json: self: an object, not an array"},
    {"{" V ", \"self\": {\"port\": 1}}", "netmap.json: self.port: unknown field"},
    {"{" V ", \"self\": {\"private_key\": \"abc\"}}",
     "netmap.json: self.private_key: not a base64 key (44 characters)"},
    {"{" V ", \"self\": {\"private_key\": 5}}",
     "netmap.json: self.private_key: a base64 key, not an integer"},
    {"{" V ", \"self\": {\"private_key\": \"" SELF_PRIV "\", \"private_key_file\": \"k\"}}",
     "netmap.json: self: private_key and private_key_file exclude each other"},
    {"{" V ", \"self\": {\"private_key_file\": \"gw.key\"}}",
     "netmap.json: self.private_key_file: not allowed here (the netmap was not read from a file)"},
    {"{" V ", \"self\": {\"addresses\": \"100.64.0.1\"}}",
     "netmap.json: self.addresses: an array of addresses, not a string"},
    {"{" V ", \"self\": {\"addresses\": [\"100.64.0.1\", \"100.64.0.300\"]}}",
     "netmap.json: self.addresses[1]: '100.64.0.300': not an IP address"},
    {"{" V ", \"self\": {\"addresses\": [7]}}",
     "netmap.json: self.addresses[0]: an IP prefix, not an integer"},
    {"{" V ", \"self\": {\"listen_port\": 70000}}",
     "netmap.json: self.listen_port: not an integer from 0 to 65535"},
    {"{" V ", \"self\": {\"listen_port\": \"51820\"}}",
     "netmap.json: self.listen_port: not an integer from 0 to 65535"},
    {"{" V ", \"self\": {\"listen_port\": 1.5}}",
     "netmap.json: self.listen_port: not an integer from 0 to 65535"},
    {"{" V ", \"self\": {\"mtu\": 100}}",
     "netmap.json: self.mtu: not an integer from 576 to 65535"},
    {"{" V ", \"self\": {\"name\": \"my node\"}}",
     "netmap.json: self.name: 'my node': not a name (letters, digits and '-')"},
    {"{" V ", \"self\": {\"name\": \"a\\u0000b\"}}",
     "netmap.json:1:42: not valid JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
     "'\"a\\u0000b\"'"},
    /* peers */
    {"{" TOP ", \"peers\": {}}", "netmap.json: peers: an array of peers, not an object"},
    {"{" TOP ", \"peers\": [\"x\"]}", "netmap.json: peers[0]: an object, not a string"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"endpoint\": \"a:1\"}]}",
     "netmap.json: peers[0].endpoint: unknown field"},
    {"{" TOP ", \"peers\": [" PB ", {\"name\": \"x\"}]}",
     "netmap.json: peers[1].public_key: missing"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "=\"}]}",
     "netmap.json: peers[0].public_key: not a base64 key (44 characters)"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"preshared_key\": null}]}",
     "netmap.json: peers[0].preshared_key: a base64 key, not null"},
    {"{" TOP ", \"peers\": [" PB ", {\"public_key\": \"" PEER_C
     "\", \"allowed_ips\": [\"10.0.0.0/33\"]}]}",
     "netmap.json: peers[1].allowed_ips[0]: '10.0.0.0/33': prefix length is not 0-32"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"allowed_ips\": \"10.0.0.0/8\"}]}",
     "netmap.json: peers[0].allowed_ips: an array of IP prefixes, not a string"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"endpoints\": [\"x\"]}]}",
     "netmap.json: peers[0].endpoints[0]: 'x': missing port"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"endpoints\": [\"fd00::1:5\"]}]}",
     "netmap.json: peers[0].endpoints[0]: 'fd00::1:5': IPv6 endpoints are written [address]:port"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"keepalive\": -1}]}",
     "netmap.json: peers[0].keepalive: not an integer from 0 to 65535"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"keepalive\": true}]}",
     "netmap.json: peers[0].keepalive: not an integer from 0 to 65535"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"name\": \"-db\"}]}",
     "netmap.json: peers[0].name: '-db': name starts or ends with '-'"},
    /* dns */
    {"{" TOP ", \"dns\": []}", "netmap.json: dns: an object, not an array"},
    {"{" TOP ", \"dns\": {\"servers\": []}}", "netmap.json: dns.servers: unknown field"},
    {"{" TOP ", \"dns\": {\"suffix\": \"a..b\"}}",
     "netmap.json: dns.suffix: 'a..b': empty label in name"},
    {"{" TOP ", \"dns\": {\"resolvers\": [\"1.1.1.1:99999\"]}}",
     "netmap.json: dns.resolvers[0]: '1.1.1.1:99999': bad port (1-65535)"},
    {"{" TOP ", \"dns\": {\"resolvers\": [\"dns.google\"]}}",
     "netmap.json: dns.resolvers[0]: 'dns.google': not an IP address, IPv4:port or [IPv6]:port"},
    {"{" TOP ", \"dns\": {\"routes\": []}}",
     "netmap.json: dns.routes: an object of suffix: [resolvers], not an array"},
    {"{" TOP ", \"dns\": {\"routes\": {\"corp..example\": [\"10.0.0.53\"]}}}",
     "netmap.json: dns.routes[\"corp..example\"]: 'corp..example': empty label in name"},
    {"{" TOP ", \"dns\": {\"routes\": {\"corp.example.\": \"10.0.0.53\"}}}",
     "netmap.json: dns.routes[\"corp.example.\"]: an array of resolvers, not a string"},
    {"{" TOP ", \"dns\": {\"routes\": {\"corp.example.\": []}}}",
     "netmap.json: dns.routes[\"corp.example.\"]: no resolvers for this suffix"},
    {"{" TOP ", \"dns\": {\"routes\": {\"corp.example.\": [\"10.0.0.53\", \"x\"]}}}",
     "netmap.json: dns.routes[\"corp.example.\"][1]: 'x': not an IP address, IPv4:port or "
     "[IPv6]:port"},
    {"{" TOP ", \"dns\": {\"routes\": {\"corp.example.\": [\"10.0.0.53\"], \"Corp.Example\": "
     "[\"10.0.0.54\"]}}}",
     "netmap.json: dns.routes: 'corp.example.' given twice"},
    {"{" TOP ", \"dns\": {\"search\": [\"ok.example\", \"not ok\"]}}",
     "netmap.json: dns.search[1]: 'not ok': not a DNS name (letters, digits, '-', '_' and dots)"},
    {"{" TOP ", \"dns\": {\"extra_records\": [{\"name\": \"a.\", \"value\": \"1.2.3.4\"}]}}",
     "netmap.json: dns.extra_records[0].type: missing"},
    {"{" TOP ", \"dns\": {\"extra_records\": [{\"name\": \"a.\", \"type\": \"MX\", \"value\": "
     "\"1.2.3.4\"}]}}",
     "netmap.json: dns.extra_records[0].type: not \"A\" or \"AAAA\""},
    {"{" TOP ", \"dns\": {\"extra_records\": [{\"name\": \"a.\", \"type\": \"AAAA\", \"value\": "
     "\"1.2.3.4\"}]}}",
     "netmap.json: dns.extra_records[0].value: '1.2.3.4': not an IPv6 address (type AAAA)"},
    {"{" TOP ", \"dns\": {\"extra_records\": [{\"name\": \"a b\", \"type\": \"A\", \"value\": "
     "\"1.2.3.4\"}]}}",
     "netmap.json: dns.extra_records[0].name: 'a b': not a DNS name (letters, digits, '-', '_' and "
     "dots)"},
    {"{" TOP ", \"dns\": {\"extra_records\": [{\"name\": \"a.\", \"type\": \"A\", \"value\": "
     "\"1.2.3.4\", \"ttl\": 5}]}}",
     "netmap.json: dns.extra_records[0].ttl: unknown field"},
    /* whole-config checks */
    {"{" V ", \"self\": {\"private_key\": \"" SELF_PRIV "\"}}",
     "netmap.json: self.addresses: missing (the node needs its mesh address)"},
    {"{" V ", \"self\": {\"addresses\": [\"fd00::1/64\"], \"mtu\": 1000}}",
     "netmap.json: self.mtu: 1000 is below IPv6's minimum of 1280"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" SELF_PUB "\"}]}",
     "netmap.json: peers[0].public_key: this node's own public key (a node is not its own peer)"},
    {"{" TOP ", \"peers\": [" PB ", {\"public_key\": \"" PEER_C "\"}, " PB "]}",
     "netmap.json: peers[2].public_key: same key as peers[0]"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B
     "\", \"allowed_ips\": [\"10.1.0.0/16\"]}, {\"public_key\": \"" PEER_C
     "\", \"allowed_ips\": [\"10.1.2.3/16\"]}]}",
     "netmap.json: peers[1].allowed_ips: 10.1.0.0/16 is also given to peers[0]"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B "\", \"allowed_ips\": [\"100.64.0.1\"]}]}",
     "netmap.json: peers[0].allowed_ips: 100.64.0.1/32 is this node's own address"},
    {"{" TOP ", \"peers\": [{\"public_key\": \"" PEER_B
     "\", \"name\": \"db\"}, {\"public_key\": \"" PEER_C "\", \"name\": \"DB\"}]}",
     "netmap.json: peers[1].name: 'db' is also the name of peers[0]"},
};

static void test_errors(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct cfg_config c;
        char err[512] = "";
        memset(&c, 0xA5, sizeof(c));
        int r = cfg_parse_netmap_buffer("netmap.json", bad_cases[i].text, strlen(bad_cases[i].text),
                                        NULL, &c, err, sizeof(err));
        if (r != BASE_ECONFIG) {
            print_error("case %zu parsed but should fail with: %s\n", i, bad_cases[i].error);
            failed++;
            cfg_free(&c);
            continue;
        }
        if (strcmp(err, bad_cases[i].error) != 0) {
            print_error("case %zu:\n  got  %s\n  want %s\n", i, err, bad_cases[i].error);
            failed++;
        }
        assert_zeroed(&c);
    }
    assert_int_equal(failed, 0);
}

static void test_key_file(void **state)
{
    (void)state;
    struct tmpdir t;
    struct cfg_config c;
    char err[512], want[512];
    tmpdir_make(&t);
    static const char text[] = "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1/10\"], "
                               "\"private_key_file\": \"gw.key\"}}";
    write_file(t.netmap, text, 0644);

    /* missing */
    assert_int_equal(cfg_parse_netmap(t.netmap, &c, err, sizeof(err)), BASE_ECONFIG);
    snprintf(want, sizeof(want),
             "%s: self.private_key_file: %s: cannot read: No such file or directory", t.netmap,
             t.key);
    assert_string_equal(err, want);
    assert_zeroed(&c);

    /* not a key */
    write_file(t.key, "hello\n", 0600);
    assert_int_equal(cfg_parse_netmap(t.netmap, &c, err, sizeof(err)), BASE_ECONFIG);
    snprintf(want, sizeof(want), "%s: self.private_key_file: %s: not a base64 key (44 characters)",
             t.netmap, t.key);
    assert_string_equal(err, want);

    /* readable by others: accepted with a warning */
    write_file(t.key, SELF_PRIV "\r\n", 0640);
    assert_int_equal(cfg_parse_netmap(t.netmap, &c, err, sizeof(err)), 0);
    assert_key(c.private_key, SELF_PRIV);
    assert_int_equal(c.n_warnings, 1);
    snprintf(want, sizeof(want),
             "%s: self.private_key_file: %s is readable by other users (chmod 600 it)", t.netmap,
             t.key);
    assert_string_equal(c.warnings[0], want);
    cfg_free(&c);

    /* an absolute path, from a netmap in memory with a base directory */
    char abs_text[512];
    snprintf(abs_text, sizeof(abs_text),
             "{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1/10\"], "
             "\"private_key_file\": \"%s\"}}",
             t.key);
    assert_int_equal(chmod(t.key, 0600), 0);
    assert_int_equal(cfg_parse_netmap_buffer("mem.json", abs_text, strlen(abs_text), "/nonexistent",
                                             &c, err, sizeof(err)),
                     0);
    assert_key(c.private_key, SELF_PRIV);
    assert_int_equal(c.n_warnings, 0);
    cfg_free(&c);

    /* an inline key in a netmap others can read: a warning */
    static const char inline_text[] = "{" TOP "}";
    write_file(t.netmap, inline_text, 0644);
    assert_int_equal(cfg_parse_netmap(t.netmap, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n_warnings, 1);
    snprintf(want, sizeof(want),
             "%s: readable by other users although it holds a private key (chmod 600 it)",
             t.netmap);
    assert_string_equal(c.warnings[0], want);
    cfg_free(&c);
    tmpdir_remove(&t);

    assert_int_equal(cfg_parse_netmap("/nonexistent/netmap.json", &c, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "/nonexistent/netmap.json: cannot read: No such file or directory");
    assert_zeroed(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_netmap),   cmocka_unit_test(test_minimal_and_keyless),
        cmocka_unit_test(test_host_bits_warned), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
