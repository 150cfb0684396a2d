/* wg-quick configuration files: real files from tests/data/, and every error with its text. */
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

#define IFACE "[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 100.64.0.1/10\n"

/* tests/data/ next to this file: unit tests run from the build tree. */
static const char *data_path(const char *name)
{
    static char path[4096];
    const char *slash = strrchr(__FILE__, '/');
    int dir = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof(path), "%.*s/../data/%s", dir, slash ? __FILE__ : ".", name);
    return path;
}

/* The warning that contains needle, or fail. */
static void assert_warning(const struct cfg_config *c, const char *needle)
{
    for (size_t i = 0; i < c->n_warnings; i++) {
        if (strstr(c->warnings[i], needle))
            return;
    }
    fail_msg("no warning contains '%s'", needle);
}

static void test_mesh_file(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    const char *path = data_path("wg-mesh.conf");
    int r = cfg_parse_ini(path, &c, err, sizeof(err));
    if (r != 0)
        fail_msg("%s", err);

    assert_int_equal(c.source, CFG_SOURCE_INI);
    assert_string_equal(c.file, path);
    assert_string_equal(c.name, "gw");
    assert_true(c.has_private_key);
    assert_key(c.private_key, SELF_PRIV);
    assert_int_equal(c.n_addresses, 2);
    assert_prefix(&c.addresses[0], "100.64.0.1", 10); /* host bits kept */
    assert_prefix(&c.addresses[1], "fd7a:115c:a1e0::1", 48);
    assert_int_equal(c.listen_port, 51820);
    assert_int_equal(c.mtu, 1380);
    assert_int_equal(c.n_resolvers, 2);
    assert_ip(&c.resolvers[0], "100.100.100.100", 53);
    assert_ip(&c.resolvers[1], "fd7a:115c:a1e0::53", 53);
    assert_int_equal(c.n_search, 2);
    assert_string_equal(c.search[0], "mesh.example");
    assert_string_equal(c.search[1], "corp.example");
    assert_null(c.dns_suffix);
    assert_int_equal(c.n_routes, 0);
    assert_int_equal(c.n_records, 0);
    assert_warning(&c, ":12: PostUp: ignored (tunless has no TUN device)");
    assert_warning(&c, ":13: PostDown: ignored (tunless has no TUN device)");

    assert_int_equal(c.n_peers, 3);
    const struct cfg_peer *db = &c.peers[0];
    assert_string_equal(db->name, "db");
    assert_int_equal(db->line, 15);
    assert_key(db->public_key, PEER_B);
    assert_true(db->has_preshared_key);
    assert_key(db->preshared_key, PSK);
    assert_int_equal(db->n_endpoints, 1);
    assert_string_equal(db->endpoints[0].host, "db.example.net");
    assert_int_equal(db->endpoints[0].port, 51821);
    assert_int_equal(db->n_allowed_ips, 2);
    assert_prefix(&db->allowed_ips[0], "100.64.0.2", 32);
    assert_prefix(&db->allowed_ips[1], "fd7a:115c:a1e0::2", 128);
    assert_int_equal(db->persistent_keepalive, 25);

    const struct cfg_peer *web = &c.peers[1];
    assert_string_equal(web->name, "web");
    assert_key(web->public_key, PEER_C);
    assert_false(web->has_preshared_key);
    assert_string_equal(web->endpoints[0].host, "2001:db8::7");
    assert_int_equal(web->endpoints[0].port, 51822);
    /* AllowedIPs given twice accumulate, as wg-quick does; the trailing comment is dropped */
    assert_int_equal(web->n_allowed_ips, 3);
    assert_prefix(&web->allowed_ips[0], "100.64.0.3", 32);
    assert_prefix(&web->allowed_ips[1], "fd7a:115c:a1e0::3", 128);
    assert_prefix(&web->allowed_ips[2], "192.168.30.0", 24);
    assert_int_equal(web->persistent_keepalive, 0);

    /* lowercase section and keys, indented, no spaces around '=', address without /prefix */
    const struct cfg_peer *third = &c.peers[2];
    assert_null(third->name);
    assert_key(third->public_key, "L0v5VZLjq0a/HKJCauzNfmNhbgM0IHh4q2ZBRtv13B8=");
    assert_string_equal(third->endpoints[0].host, "198.51.100.4");
    assert_int_equal(third->endpoints[0].port, 51823);
    assert_int_equal(third->n_allowed_ips, 1);
    assert_prefix(&third->allowed_ips[0], "100.64.0.4", 32);

    cfg_free(&c);
    assert_zeroed(&c);
}

static void test_client_file(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    if (cfg_parse_ini(data_path("wg-client.conf"), &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_null(c.name);
    assert_int_equal(c.n_addresses, 1);
    assert_prefix(&c.addresses[0], "10.8.0.2", 24);
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(c.mtu, CFG_DEFAULT_MTU);
    assert_int_equal(c.n_resolvers, 2);
    assert_ip(&c.resolvers[1], "9.9.9.9", 53);
    assert_int_equal(c.n_search, 0);
    assert_warning(&c, ":5: Table: ignored");
    assert_warning(&c, ":6: FwMark: ignored");
    assert_warning(&c, ":7: SaveConfig: ignored");
    assert_int_equal(c.n_peers, 1);
    assert_key(c.peers[0].public_key, SELF_PUB);
    assert_prefix(&c.peers[0].allowed_ips[0], "0.0.0.0", 0);
    assert_prefix(&c.peers[0].allowed_ips[1], "::", 0);
    assert_string_equal(c.peers[0].endpoints[0].host, "vpn.example.com");
    assert_int_equal(c.peers[0].persistent_keepalive, 21);
    cfg_free(&c);
}

static void test_minimal_crlf_file(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    if (cfg_parse_ini(data_path("wg-minimal.conf"), &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.n_addresses, 1);
    assert_prefix(&c.addresses[0], "100.64.7.7", 32);
    assert_int_equal(c.n_peers, 0);
    assert_int_equal(c.mtu, 1420);
    cfg_free(&c);
}

static void test_buffer_details(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512] = "";
    static const char text[] = "\xEF\xBB\xBF[INTERFACE]\n"
                               "privatekey=" SELF_PRIV "\n"
                               "ADDRESS = 100.64.0.1/10\n"
                               "Address = fd7a:115c:a1e0::1\n"
                               "DNS = Mesh.Example.\n"
                               "[Peer]\n"
                               "PublicKey = " PEER_B "\n"
                               "#Name=Laptop-1\n"
                               "AllowedIPs = 10.1.2.3/8, fd00::ff/8\n"
                               "AllowedIPs =\n"
                               "PersistentKeepalive = OFF\n"
                               "[Peer]\n"
                               "PublicKey = " PEER_C "\n"
                               "# Name = Alice's phone\n"
                               "# name: not a name comment\n";
    /* not NUL-terminated: the length is what counts */
    char *buf = malloc(sizeof(text) - 1);
    memcpy(buf, text, sizeof(text) - 1);
    if (cfg_parse_ini_buffer("mem.conf", buf, sizeof(text) - 1, &c, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    free(buf);
    assert_string_equal(c.file, "mem.conf");
    assert_int_equal(c.n_addresses, 2);
    assert_prefix(&c.addresses[1], "fd7a:115c:a1e0::1", 128);
    assert_int_equal(c.n_search, 1);
    assert_string_equal(c.search[0], "mesh.example");
    assert_string_equal(c.peers[0].name, "laptop-1");
    assert_prefix(&c.peers[0].allowed_ips[0], "10.0.0.0", 8); /* host bits masked */
    assert_prefix(&c.peers[0].allowed_ips[1], "fd00::", 8);
    assert_int_equal(c.peers[0].n_allowed_ips, 2);
    assert_null(c.peers[1].name);
    assert_int_equal(c.n_warnings, 3);
    assert_string_equal(
        c.warnings[0],
        "mem.conf:9: AllowedIPs: '10.1.2.3/8' has bits set beyond its prefix: read as "
        "10.0.0.0/8");
    assert_string_equal(
        c.warnings[1],
        "mem.conf:9: AllowedIPs: 'fd00::ff/8' has bits set beyond its prefix: read as "
        "fd00::/8");
    assert_string_equal(
        c.warnings[2],
        "mem.conf:14: # Name: 'Alice's phone': not a name (letters, digits and '-'); "
        "no MagicDNS name from it");
    cfg_free(&c);
}

struct bad_case {
    const char *text;
    const char *error;
};

static const struct bad_case bad_cases[] = {
    /* keys */
    {"[Interface]\nPrivateKey = nope\nAddress = 100.64.0.1\n",
     "wg0.conf:2: PrivateKey: not a base64 key (44 characters)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "x\n",
     "wg0.conf:5: PublicKey: not a base64 key (44 characters)"},
    {IFACE "[Peer]\nPublicKey = YlhzCQYSkjkikOLNKodzWIzOukkXhLXvDgFOKInI6U!=\n",
     "wg0.conf:5: PublicKey: not a base64 key (44 characters)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nPresharedKey = abc=\n",
     "wg0.conf:6: PresharedKey: not a base64 key (44 characters)"},
    {IFACE "[Peer]\nPublicKey =\n", "wg0.conf:5: PublicKey: empty value"},
    /* addresses */
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.300/24\n",
     "wg0.conf:3: Address: '10.0.0.300/24': not an IP address"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.1/33\n",
     "wg0.conf:3: Address: '10.0.0.1/33': prefix length is not 0-32"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = fd00::1/129\n",
     "wg0.conf:3: Address: 'fd00::1/129': prefix length is not 0-128"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.1/\n",
     "wg0.conf:3: Address: '10.0.0.1/': prefix length is not 0-32"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.1/+8\n",
     "wg0.conf:3: Address: '10.0.0.1/+8': prefix length is not 0-32"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.1/24,,10.0.0.2\n",
     "wg0.conf:3: Address: empty item in the list"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.1/24,\n",
     "wg0.conf:3: Address: empty item in the list"},
    {"[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = [fd00::1]/64\n",
     "wg0.conf:3: Address: '[fd00::1]/64': not an IP address"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/x\n",
     "wg0.conf:6: AllowedIPs: '10.0.0.0/x': prefix length is not 0-32"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nAllowedIPs = example.com\n",
     "wg0.conf:6: AllowedIPs: 'example.com': not an IP address"},
    {IFACE "DNS = 1.1.1.1, bad domain!\n",
     "wg0.conf:4: DNS: 'bad domain!': not an IP address or search domain (not a DNS name (letters, "
     "digits, '-', '_' and dots))"},
    {IFACE "DNS = a..b\n",
     "wg0.conf:4: DNS: 'a..b': not an IP address or search domain (empty label in name)"},
    /* numbers */
    {IFACE "ListenPort = 70000\n", "wg0.conf:4: ListenPort: '70000': not a number from 0 to 65535"},
    {IFACE "ListenPort = -1\n", "wg0.conf:4: ListenPort: '-1': not a number from 0 to 65535"},
    {IFACE "ListenPort = 51820x\n",
     "wg0.conf:4: ListenPort: '51820x': not a number from 0 to 65535"},
    {IFACE "ListenPort = 0051820\n",
     "wg0.conf:4: ListenPort: '0051820': not a number from 0 to 65535"},
    {IFACE "MTU = 100\n", "wg0.conf:4: MTU: '100': not a number from 576 to 65535"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nPersistentKeepalive = sometimes\n",
     "wg0.conf:6: PersistentKeepalive: 'sometimes': not a number of seconds (0-65535) or off"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nPersistentKeepalive = 65536\n",
     "wg0.conf:6: PersistentKeepalive: '65536': not a number of seconds (0-65535) or off"},
    /* endpoints */
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = example.com\n",
     "wg0.conf:6: Endpoint: 'example.com': missing port"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = example.com:0\n",
     "wg0.conf:6: Endpoint: 'example.com:0': bad port (1-65535)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = example.com:http\n",
     "wg0.conf:6: Endpoint: 'example.com:http': bad port (1-65535)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = 2001:db8::1:51820\n",
     "wg0.conf:6: Endpoint: '2001:db8::1:51820': IPv6 endpoints are written [address]:port"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = [2001:db8::1]\n",
     "wg0.conf:6: Endpoint: '[2001:db8::1]': missing port"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = [10.0.0.1]:5\n",
     "wg0.conf:6: Endpoint: '[10.0.0.1]:5': not an IPv6 address (inside brackets or with colons)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = :51820\n",
     "wg0.conf:6: Endpoint: ':51820': empty host"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nEndpoint = a b:51820\n",
     "wg0.conf:6: Endpoint: 'a b:51820': bad character in host"},
    /* structure */
    {IFACE "[Peer]\nEndpoint = 1.2.3.4:5\n[Peer]\nPublicKey = " PEER_B "\n",
     "wg0.conf:4: [Peer] has no PublicKey"},
    {IFACE "[Peer]\nAllowedIPs = 10.0.0.0/8\n", "wg0.conf:4: [Peer] has no PublicKey"},
    {"[Interface]\nAddress = 100.64.0.1/10\n", "wg0.conf: [Interface] has no PrivateKey"},
    {"", "wg0.conf: no [Interface] section"},
    {"# only a comment\n[Peer]\nPublicKey = " PEER_B "\n", "wg0.conf: no [Interface] section"},
    {IFACE "[Interface]\n", "wg0.conf:4: [Interface] given twice (first at line 1)"},
    {"PrivateKey = " SELF_PRIV "\n[Interface]\n",
     "wg0.conf:1: PrivateKey: outside of any [Interface] or [Peer] section"},
    {"Foo = bar\n", "wg0.conf:1: Foo: outside of any [Interface] or [Peer] section"},
    {IFACE "Foo = bar\n", "wg0.conf:4: Foo: unknown key in [Interface]"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nAllowedIP = 10.0.0.0/8\n",
     "wg0.conf:6: AllowedIP: unknown key in [Peer]"},
    {IFACE "PublicKey = " PEER_B "\n",
     "wg0.conf:4: PublicKey: belongs in [Peer], not in [Interface]"},
    {IFACE "[Peer]\nName = db\n", "wg0.conf:5: Name: unknown key in [Peer] (a name is given as a "
                                  "comment, `# Name = db`, which wg-quick ignores)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nListenPort = 1\n",
     "wg0.conf:6: ListenPort: belongs in [Interface], not in [Peer]"},
    {IFACE "[Peers]\n", "wg0.conf:4: [Peers]: unknown section (expected [Interface], [Peer], or "
                        "wireproxy's [Socks5], [http], "
                        "[TCPClientTunnel], [TCPServerTunnel], [UDPProxyTunnel])"},
    {IFACE "[Interface\n", "wg0.conf:4: [Interface: unknown section (expected [Interface], [Peer], "
                           "or wireproxy's [Socks5], [http], "
                           "[TCPClientTunnel], [TCPServerTunnel], [UDPProxyTunnel])"},
    {IFACE "just some words\n", "wg0.conf:4: 'just some words': expected Key = Value"},
    {IFACE " = 5\n", "wg0.conf:4: no key before '='"},
    {IFACE "ListenPort = 1\nlistenport = 2\n",
     "wg0.conf:5: ListenPort: given twice in this section (first at line 4)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nPublicKey = " PEER_C "\n",
     "wg0.conf:6: PublicKey: given twice in this section (first at line 5)"},
    {IFACE "[Peer]\n# Name = a\n# Name = b\nPublicKey = " PEER_B "\n",
     "wg0.conf:6: # Name: given twice in this section (first at line 5)"},
    /* whole-config checks (cfg_validate) */
    {"[Interface]\nPrivateKey = " SELF_PRIV "\n",
     "wg0.conf: [Interface] Address: missing (the node needs its mesh address)"},
    {IFACE "Address = 100.64.0.1/32\n", "wg0.conf: [Interface] Address: 100.64.0.1/32 given twice"},
    {IFACE "Address = fd00::1/64\nMTU = 1000\n",
     "wg0.conf: [Interface] MTU: 1000 is below IPv6's minimum of 1280"},
    {IFACE "[Peer]\nPublicKey = " SELF_PUB "\n",
     "wg0.conf:4: [Peer] PublicKey: this node's own public key (a node is not its own peer)"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\n[Peer]\nPublicKey = " PEER_C
           "\n[Peer]\nPublicKey = " PEER_B "\n",
     "wg0.conf:8: [Peer] PublicKey: same key as the [Peer] at line 4"},
    {IFACE "[Peer]\nPublicKey = " PEER_B
           "\nAllowedIPs = 10.0.0.0/8, 100.64.0.5\n[Peer]\nPublicKey = " PEER_C
           "\nAllowedIPs = 100.64.0.5/32\n",
     "wg0.conf:7: [Peer] AllowedIPs: 100.64.0.5/32 is also given to the [Peer] at line 4"},
    {IFACE "[Peer]\nPublicKey = " PEER_B "\nAllowedIPs = 100.64.0.1/32\n",
     "wg0.conf:4: [Peer] AllowedIPs: 100.64.0.1/32 is this node's own address"},
    {"[Interface]\n# Name = gw\nPrivateKey = " SELF_PRIV
     "\nAddress = 100.64.0.1/10\n[Peer]\n# Name = GW\nPublicKey = " PEER_B "\n",
     "wg0.conf:5: [Peer] Name: 'gw' is this node's own name"},
    {IFACE "[Peer]\n# Name = db\nPublicKey = " PEER_B "\n[Peer]\n# Name = DB\nPublicKey = " PEER_C
           "\n",
     "wg0.conf:7: [Peer] Name: 'db' is also the name of the [Peer] at line 4"},
};

static void test_errors(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct cfg_config c;
        char err[512] = "";
        memset(&c, 0xA5, sizeof(c)); /* the parser must zero it, whatever was there */
        int r = cfg_parse_ini_buffer("wg0.conf", bad_cases[i].text, strlen(bad_cases[i].text), &c,
                                     err, sizeof(err));
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

static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = IFACE "ListenPort = 1\0\n";
    struct cfg_config c;
    char err[256];
    assert_int_equal(cfg_parse_ini_buffer("wg0.conf", text, sizeof(text) - 1, &c, err, sizeof(err)),
                     BASE_ECONFIG);
    assert_string_equal(err, "wg0.conf:4: contains a NUL byte");
    assert_zeroed(&c);
}

static void test_long_value_is_shortened(void **state)
{
    (void)state;
    char text[512];
    char big[200];
    memset(big, '9', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[3] = '\x1b'; /* control characters are not echoed into logs */
    snprintf(text, sizeof(text), IFACE "MTU = %s\n", big);
    struct cfg_config c;
    char err[256];
    assert_int_equal(cfg_parse_ini_buffer("wg0.conf", text, strlen(text), &c, err, sizeof(err)),
                     BASE_ECONFIG);
    assert_string_equal(
        err,
        "wg0.conf:4: MTU: '999?999999999999999999999999999999999999999999999999999999999999...': "
        "not a number from 576 to 65535");
}

static void test_unreadable(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512];
    assert_int_equal(cfg_parse_ini("/nonexistent/wg0.conf", &c, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "/nonexistent/wg0.conf: cannot read: No such file or directory");
    assert_zeroed(&c);
    assert_int_equal(cfg_parse_ini("/", &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "/: cannot read: not a regular file");
    assert_zeroed(&c);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_file_permissions_warn(void **state)
{
    (void)state;
    char dir[] = "/tmp/tunless-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/wg0.conf", dir);
    struct cfg_config c;
    char err[512];
    char want[256];

    write_file(path, IFACE, 0600);
    assert_int_equal(cfg_parse_ini(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n_warnings, 0);
    cfg_free(&c);

    write_file(path, IFACE, 0644);
    assert_int_equal(cfg_parse_ini(path, &c, err, sizeof(err)), 0);
    assert_int_equal(c.n_warnings, 1);
    snprintf(want, sizeof(want),
             "%s: readable by other users although it holds a private key (chmod 600 it)", path);
    assert_string_equal(c.warnings[0], want);
    cfg_free(&c);

    /* an error in a file names the path given */
    write_file(path, IFACE "MTU = big\n", 0600);
    assert_int_equal(cfg_parse_ini(path, &c, err, sizeof(err)), BASE_ECONFIG);
    snprintf(want, sizeof(want), "%s:4: MTU: 'big': not a number from 576 to 65535", path);
    assert_string_equal(err, want);

    unlink(path);
    rmdir(dir);
}

static void test_validate_again(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512];
    static const char text[] = IFACE "[Peer]\nPublicKey = " PEER_B "\n";
    assert_int_equal(cfg_parse_ini_buffer("wg0.conf", text, strlen(text), &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), 0);
    /* a change made after parsing is checked on the next validate */
    assert_int_equal(cfg_key_from_base64(c.peers[0].public_key, SELF_PUB, strlen(SELF_PUB)), 0);
    assert_int_equal(cfg_validate(&c, err, sizeof(err)), BASE_ECONFIG);
    assert_string_equal(
        err,
        "wg0.conf:4: [Peer] PublicKey: this node's own public key (a node is not its own peer)");
    cfg_free(&c);
}

static void test_value_parsers(void **state)
{
    (void)state;
    struct base_endpoint ip;
    assert_null(cfg_parse_resolver("[fd00::53]:5353", true, &ip));
    assert_ip(&ip, "fd00::53", 5353);
    assert_null(cfg_parse_resolver("127.0.0.1:5300", true, &ip));
    assert_ip(&ip, "127.0.0.1", 5300);
    assert_null(cfg_parse_resolver("[fd00::53]", true, &ip));
    assert_ip(&ip, "fd00::53", 53);
    assert_non_null(cfg_parse_resolver("127.0.0.1:5300", false, &ip));
    assert_non_null(cfg_parse_resolver("127.0.0.1:0", true, &ip));
    assert_non_null(cfg_parse_resolver("[127.0.0.1]:53", true, &ip));
    assert_non_null(cfg_parse_resolver("[fd00::53]x", true, &ip));

    char *s = NULL;
    assert_null(cfg_parse_domain("Corp.Example", true, &s));
    assert_string_equal(s, "corp.example.");
    free(s);
    assert_null(cfg_parse_domain("corp.example.", false, &s));
    assert_string_equal(s, "corp.example");
    free(s);
    assert_non_null(cfg_parse_domain(".", false, NULL));
    assert_non_null(cfg_parse_domain("", false, NULL));
    char long_label[80];
    memset(long_label, 'a', 64);
    long_label[64] = '\0';
    assert_string_equal(cfg_parse_domain(long_label, false, NULL),
                        "label longer than 63 characters");
    long_label[63] = '\0';
    assert_null(cfg_parse_domain(long_label, false, NULL));

    assert_null(cfg_parse_label("db-1", NULL));
    assert_non_null(cfg_parse_label("-db", NULL));
    assert_non_null(cfg_parse_label("db.x", NULL));
    assert_non_null(cfg_parse_label("", NULL));
}

/* Keys as wg(8) writes them: exactly 44 base64 characters with their padding. */
static void test_key_base64(void **state)
{
    (void)state;
    uint8_t k[CFG_KEY_LEN];
    const char *bad[] = {
        "",
        "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo",   /* 43 chars */
        "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo==", /* 45 chars */
        "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC!=",  /* bad character */
        "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCoA",  /* no padding */
    };
    static const uint8_t zero[CFG_KEY_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(k, 0xaa, sizeof(k));
        assert_int_equal(cfg_key_from_base64(k, bad[i], strlen(bad[i])), BASE_EPARSE);
        assert_memory_equal(k, zero, sizeof(k));
    }
    assert_int_equal(cfg_key_from_base64(k, PEER_B, strlen(PEER_B)), 0);
    assert_key(k, PEER_B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mesh_file),
        cmocka_unit_test(test_client_file),
        cmocka_unit_test(test_minimal_crlf_file),
        cmocka_unit_test(test_buffer_details),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_long_value_is_shortened),
        cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_file_permissions_warn),
        cmocka_unit_test(test_validate_again),
        cmocka_unit_test(test_value_parsers),
        cmocka_unit_test(test_key_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
