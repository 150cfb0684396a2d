/* wg-quick extensions for users coming from wireproxy and from templated deployments:
 * PrivateKeyFile (relative to the file, mode-checked, errors at file:line) and --expand-env. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_asserts.h"

static char dir[] = "/tmp/tunless-migrate-XXXXXX";

static void write_file(const char *name, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static const char *in_dir(const char *name)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void expect_error(const char *conf, bool expand, const char *want)
{
    struct cfg_config c;
    char err[512] = "", full[512];
    write_file("wg.conf", conf, 0600);
    assert_int_equal(cfg_parse_ini_with(in_dir("wg.conf"), expand, &c, err, sizeof(err)),
                     BASE_ECONFIG);
    snprintf(full, sizeof(full), "%s/wg.conf:%s", dir, want);
    if (!strstr(err, full))
        fail_msg("error '%s' lacks '%s'", err, full);
    assert_zeroed(&c);
}

static void test_private_key_file(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512];
    write_file("private.key", SELF_PRIV "\n", 0600);
    write_file("wg.conf", "[Interface]\nPrivateKeyFile = private.key\nAddress = 100.64.0.1/10\n",
               0640); /* no secret in it */
    assert_int_equal(cfg_parse_ini(in_dir("wg.conf"), &c, err, sizeof(err)), 0);
    assert_true(c.has_private_key);
    assert_key(c.private_key, SELF_PRIV);
    assert_int_equal(c.n_warnings, 0);
    cfg_free(&c);

    /* an absolute path, and a key file others can read: warned about as config files are */
    char conf[512];
    snprintf(conf, sizeof(conf),
             "[Interface]\nAddress = 100.64.0.1/10\nPrivateKeyFile = %s/private.key\n", dir);
    write_file("private.key", SELF_PRIV "\n", 0644);
    write_file("wg.conf", conf, 0600);
    assert_int_equal(cfg_parse_ini(in_dir("wg.conf"), &c, err, sizeof(err)), 0);
    assert_int_equal(c.n_warnings, 1);
    char want[512];
    snprintf(want, sizeof(want),
             "%s/wg.conf:3: PrivateKeyFile: %s/private.key is readable by other users (chmod "
             "600 it)",
             dir, dir);
    assert_string_equal(c.warnings[0], want);
    cfg_free(&c);

    expect_error("[Interface]\nAddress = 100.64.0.1/10\nPrivateKeyFile = missing.key\n", false,
                 "3: PrivateKeyFile: ");
    write_file("bad.key", "not a key\n", 0600);
    expect_error("[Interface]\nPrivateKeyFile = bad.key\n", false, "2: PrivateKeyFile: ");
    expect_error("[Interface]\nPrivateKey = " SELF_PRIV "\nPrivateKeyFile = private.key\n", false,
                 "3: PrivateKeyFile: PrivateKey is given too");
    expect_error("[Interface]\nPrivateKeyFile = private.key\nPrivateKey = " SELF_PRIV "\n", false,
                 "3: PrivateKey: PrivateKeyFile is given too");

    /* from memory there is no directory to read it from */
    static const char buf[] = "[Interface]\nPrivateKeyFile = private.key\n";
    assert_int_equal(cfg_parse_ini_buffer("mem", buf, sizeof(buf) - 1, &c, err, sizeof(err)),
                     BASE_ECONFIG);
    assert_string_equal(err, "mem:2: PrivateKeyFile: not allowed here (the configuration was not "
                             "read from a file)");
}

static void test_expand_env(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512];
    setenv("TL_TEST_KEY", SELF_PRIV, 1);
    setenv("TL_TEST_PORT", "51999", 1);
    const char *conf = "[Interface]\nPrivateKey = ${TL_TEST_KEY}\nAddress = 100.64.0.1/10\n"
                       "ListenPort = $TL_TEST_PORT\n";
    write_file("wg.conf", conf, 0600);
    assert_int_equal(cfg_parse_ini_with(in_dir("wg.conf"), true, &c, err, sizeof(err)), 0);
    assert_key(c.private_key, SELF_PRIV);
    assert_int_equal(c.listen_port, 51999);
    cfg_free(&c);

    /* without --expand-env a '$' is what it always was: here, not a key */
    expect_error(conf, false, "2: PrivateKey: not a base64 key");

    unsetenv("TL_TEST_UNSET");
    expect_error("[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = $TL_TEST_UNSET\n", true,
                 "3: Address: $TL_TEST_UNSET is not set (--expand-env)");
    expect_error("[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = ${TL_TEST_KEY\n", true,
                 "3: Address: '$' must start $NAME or ${NAME}");
    expect_error("[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 1$\n", true,
                 "3: Address: '$' must start");
    /* $$ is a literal $ (which is then not an address) */
    expect_error("[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = $$TL_TEST_PORT\n", true,
                 "3: Address: '$TL_TEST_PORT'");
}

/* wireproxy's README sample, as documented (its keys, its case, its comments), with our keys. */
static const char wireproxy_sample[] =
    "[Interface]\n"
    "Address = 10.200.200.2/32 # The subnet should be /32 and /128 for IPv4 and v6 respectively\n"
    "# MTU = 1420 (optional)\n"
    "PrivateKey = " SELF_PRIV "\n"
    "DNS = 10.200.200.1\n"
    "\n"
    "[Peer]\n"
    "PublicKey = " PEER_B "\n"
    "# PresharedKey = UItQuvLsyh50ucXHfjF0bbR4IIpVBd74lwKc8uIPXXs= (optional)\n"
    "Endpoint = my.ddns.example.com:51820\n"
    "AllowedIPs = 0.0.0.0/0\n"
    "# PersistentKeepalive = 25 (optional)\n"
    "\n"
    "[TCPClientTunnel]\n"
    "BindAddress = 127.0.0.1:25565\n"
    "Target = play.cubecraft.net:25565\n"
    "\n"
    "[TCPServerTunnel]\n"
    "ListenPort = 3422\n"
    "Target = localhost:25545\n"
    "\n"
    "[Socks5]\n"
    "BindAddress = 127.0.0.1:25344\n"
    "#Username = ...\n"
    "#Password = ...\n"
    "\n"
    "[http]\n"
    "BindAddress = 127.0.0.1:25345\n"
    "Username = alice\n"
    "Password = s3cret\n"
    "\n"
    "[UDPProxyTunnel]\n"
    "BindAddress = :25346\n"
    "Target = [fd00::53]:53\n"
    "\n"
    /* several server tunnels, as in wireproxy's multi-peer sample; section names any case */
    "[tcpservertunnel]\n"
    "listenport = 5000\n"
    "target = service-one.servicenet:5000\n";

static void assert_bind(const struct base_endpoint *ep, const char *want)
{
    char b[BASE_ENDPOINT_STRLEN];
    assert_string_equal(base_endpoint_format(ep, b, sizeof(b)), want);
}

static void test_wireproxy_sections(void **state)
{
    (void)state;
    struct cfg_config c;
    char err[512];
    assert_int_equal(cfg_parse_ini_buffer("wireproxy.conf", wireproxy_sample,
                                          sizeof(wireproxy_sample) - 1, &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.n_peers, 1);
    assert_int_equal(c.n_services, 6);
    const struct cfg_service *s = c.services;
    assert_int_equal(s[0].kind, CFG_SERVICE_TCP_CLIENT);
    assert_int_equal(s[0].line, 14);
    assert_bind(&s[0].bind, "127.0.0.1:25565");
    assert_string_equal(s[0].target.host, "play.cubecraft.net");
    assert_int_equal(s[0].target.port, 25565);
    assert_int_equal(s[1].kind, CFG_SERVICE_TCP_SERVER);
    assert_int_equal(s[1].listen_port, 3422);
    assert_string_equal(s[1].target.host, "localhost");
    assert_int_equal(s[2].kind, CFG_SERVICE_SOCKS5);
    assert_bind(&s[2].bind, "127.0.0.1:25344");
    assert_null(s[2].username);
    assert_int_equal(s[3].kind, CFG_SERVICE_HTTP);
    assert_string_equal(s[3].username, "alice");
    assert_string_equal(s[3].password, "s3cret");
    assert_int_equal(s[4].kind, CFG_SERVICE_UDP_CLIENT);
    assert_bind(&s[4].bind, "0.0.0.0:25346"); /* Go's ":PORT" is every interface */
    assert_string_equal(s[4].target.host, "fd00::53");
    assert_int_equal(s[5].kind, CFG_SERVICE_TCP_SERVER);
    assert_int_equal(s[5].listen_port, 5000);
    assert_string_equal(cfg_service_section(s[5].kind), "[TCPServerTunnel]");
    cfg_free(&c);

    /* wireproxy's own sample gives its [Peer] no AllowedIPs: wireproxy routes everything there */
    static const char no_allowed[] =
        "[Interface]\nAddress = 10.200.200.2/32\nPrivateKey = " SELF_PRIV
        "\n[Peer]\nPublicKey = " PEER_B "\nEndpoint = my.ddns.example.com:51820\n"
        "[Socks5]\nBindAddress = 127.0.0.1:25344\n";
    assert_int_equal(cfg_parse_ini_buffer("wireproxy.conf", no_allowed, sizeof(no_allowed) - 1, &c,
                                          err, sizeof(err)),
                     0);
    assert_int_equal(c.peers[0].n_allowed_ips, 2);
    assert_prefix(&c.peers[0].allowed_ips[0], "0.0.0.0", 0);
    assert_prefix(&c.peers[0].allowed_ips[1], "::", 0);
    assert_int_equal(c.n_warnings, 1);
    assert_string_equal(c.warnings[0], "wireproxy.conf:4: [Peer] has no AllowedIPs: 0.0.0.0/0 and "
                                       "::/0, as wireproxy reads it");
    cfg_free(&c);
}

static void expect_buffer_error(const char *conf, const char *want)
{
    struct cfg_config c;
    char err[512] = "";
    assert_int_equal(cfg_parse_ini_buffer("wp.conf", conf, strlen(conf), &c, err, sizeof(err)),
                     BASE_ECONFIG);
    if (strcmp(err, want) != 0)
        fail_msg("got  %s\nwant %s", err, want);
    assert_zeroed(&c);
}

#define WP_IFACE "[Interface]\nPrivateKey = " SELF_PRIV "\nAddress = 10.0.0.2/32\n"

static void test_wireproxy_errors(void **state)
{
    (void)state;
    expect_buffer_error(WP_IFACE "[http]\nBindAddress = 127.0.0.1:8080\nCertFile = a.pem\n",
                        "wp.conf:6: CertFile: not supported in [http]");
    expect_buffer_error(WP_IFACE "[Socks5]\nTarget = a:1\n",
                        "wp.conf:5: Target: not supported in [Socks5]");
    expect_buffer_error(WP_IFACE "[UDPProxyTunnel]\nBindAddress = 127.0.0.1:53\nTarget = a:53\n"
                                 "InactivityTimeout = 30\n",
                        "wp.conf:7: InactivityTimeout: not supported in [UDPProxyTunnel]");
    expect_buffer_error(WP_IFACE "[Socks5]\nUsername = u\n",
                        "wp.conf:4: [Socks5] has no BindAddress");
    expect_buffer_error(WP_IFACE "[Socks5]\nBindAddress = :1080\nUsername = u\n",
                        "wp.conf:4: [Socks5]: Username and Password go together");
    expect_buffer_error(WP_IFACE "[TCPServerTunnel]\nListenPort = 3422\n",
                        "wp.conf:4: [TCPServerTunnel] has no Target");
    expect_buffer_error(WP_IFACE "[TCPServerTunnel]\nListenPort = 0\nTarget = a:1\n",
                        "wp.conf:5: ListenPort: '0': not a port from 1 to 65535");
    expect_buffer_error(WP_IFACE "[TCPClientTunnel]\nBindAddress = example.com:1\nTarget = a:1\n",
                        "wp.conf:5: BindAddress: 'example.com:1': a listener binds an IP address "
                        "(or localhost), not a name");
    expect_buffer_error(WP_IFACE "[TCPClientTunnel]\nBindAddress = 127.0.0.1:1\n"
                                 "BindAddress = 127.0.0.1:2\n",
                        "wp.conf:6: BindAddress: given twice in this section");
    expect_buffer_error("WGConfig = /etc/wireguard/wg0.conf\n",
                        "wp.conf:1: WGConfig: not supported; put the [Interface] and [Peer] "
                        "sections of that file into this one");
    expect_buffer_error(WP_IFACE "[STDIOTunnel]\nTarget = a:22\n",
                        "wp.conf:4: [STDIOTunnel]: not supported; `tunless nc HOST PORT` does "
                        "that job next to a running node");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_key_file),
        cmocka_unit_test(test_expand_env),
        cmocka_unit_test(test_wireproxy_sections),
        cmocka_unit_test(test_wireproxy_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
