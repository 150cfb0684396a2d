/* `tunless up` options: specs, env fallback, precedence, and every rejected form. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"
#include "plan.h"

static void clear_env(void)
{
    const char *vars[] = {
        "TUNLESS_CONFIG",          "TUNLESS_NETMAP",          "TUNLESS_PROXY",
        "TUNLESS_SOCKS5",          "TUNLESS_HTTP_PROXY",      "TUNLESS_PROXY_USER",
        "TUNLESS_PROXY_PASS",      "TUNLESS_PROXY_PASS_FILE", "TUNLESS_DNS_LISTEN",
        "TUNLESS_DNS_SUFFIX",      "TUNLESS_FORWARD",         "TUNLESS_PUBLISH",
        "TUNLESS_OUTBOUND",        "TUNLESS_STATE_DIR",       "TUNLESS_LOG_LEVEL",
        "TUNLESS_EXPAND_ENV",      "TUNLESS_PROXYY",          "TUNLESS_NOTHING_LIKE_IT",
        "TUNLESS_LOG_FORMAT",      "TUNLESS_CONNECT_TIMEOUT", "TUNLESS_IDLE_TIMEOUT",
        "TUNLESS_TCP_KEEPALIVE",   "TUNLESS_MAX_MEMORY",      "TUNLESS_METRICS_LISTEN",
        "TUNLESS_MAX_CONNECTIONS", "TUNLESS_UDP_OFFLOAD"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static int parse(struct node_options *o, char *err, size_t errlen, ...)
{
    char *argv[32] = {"up"};
    int argc = 1;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    return node_options_parse(argc, argv, o, err, errlen);
}

static void test_hostport(void **state)
{
    (void)state;
    struct cfg_hostport hp;
    assert_int_equal(node_parse_hostport("127.0.0.1:1080", NULL, &hp), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 1080);
    assert_int_equal(node_parse_hostport("[::1]:53", NULL, &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hp.port, 53);
    assert_int_equal(node_parse_hostport("5353", "127.0.0.1", &hp), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(node_parse_hostport(":5353", "127.0.0.1", &hp), 0);
    assert_int_equal(hp.port, 5353);
    assert_int_equal(node_parse_hostport("db:5432", NULL, &hp), 0);
    assert_string_equal(hp.host, "db");

    const char *bad[] = {"",       "host",    "host:", "host:0", "host:65536",
                         "::1:53", "[::1]53", "[::1",  "h:12ab"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(node_parse_hostport(bad[i], NULL, &hp), -1);
    assert_int_equal(node_parse_hostport("5353", NULL, &hp), -1);
    assert_int_equal(node_parse_hostport("a b:1", NULL, &hp), -1); /* not a host name */
}

static void assert_endpoint(const struct base_endpoint *ep, const char *text)
{
    char buf[BASE_ENDPOINT_STRLEN];
    assert_string_equal(base_endpoint_format(ep, buf, sizeof(buf)), text);
}

static void test_listen(void **state)
{
    (void)state;
    struct base_endpoint ep;
    assert_int_equal(node_parse_listen("127.0.0.1:1080", &ep), 0);
    assert_endpoint(&ep, "127.0.0.1:1080");
    assert_int_equal(node_parse_listen("[::1]:53", &ep), 0);
    assert_endpoint(&ep, "[::1]:53");
    assert_int_equal(node_parse_listen("5353", &ep), 0);
    assert_endpoint(&ep, "127.0.0.1:5353");
    assert_int_equal(node_parse_listen(":5353", &ep), 0);
    assert_endpoint(&ep, "127.0.0.1:5353");
    assert_int_equal(node_parse_listen("localhost:80", &ep), 0);
    assert_endpoint(&ep, "127.0.0.1:80");
    const char *bad[] = {"", "db:5432", "0", "::1:53", "[::1]", "127.0.0.1", "1.2.3.4:0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(node_parse_listen(bad[i], &ep), -1);
}

static void test_forward_publish(void **state)
{
    (void)state;
    struct node_forward f;
    struct node_publish p;

    assert_int_equal(node_parse_forward("tcp:127.0.0.1:15432=db:5432", &f), 0);
    assert_int_equal(f.proto, NODE_PROTO_TCP);
    assert_endpoint(&f.listen, "127.0.0.1:15432");
    assert_string_equal(f.target.host, "db");
    assert_int_equal(f.target.port, 5432);
    assert_int_equal(node_parse_forward("udp:5353=100.64.0.2:53", &f), 0);
    assert_int_equal(f.proto, NODE_PROTO_UDP);
    assert_endpoint(&f.listen, "127.0.0.1:5353");
    assert_int_equal(node_parse_forward("15432", &f), -1);
    assert_int_equal(node_parse_forward("15432=db", &f), -1);
    assert_int_equal(node_parse_forward("sctp:1=a:2", &f), -1); /* listen host not an IP */
    assert_int_equal(node_parse_forward("localhost:7=a:2", &f), 0);
    assert_endpoint(&f.listen, "127.0.0.1:7");

    assert_int_equal(node_parse_publish("22", &p), 0);
    assert_int_equal(p.port, 22);
    assert_string_equal(p.target.host, "127.0.0.1");
    assert_int_equal(p.target.port, 22);
    assert_int_equal(node_parse_publish("8080=127.0.0.1:80", &p), 0);
    assert_int_equal(p.port, 8080);
    assert_int_equal(p.target.port, 80);
    assert_int_equal(node_parse_publish("udp:53=5353", &p), 0);
    assert_int_equal(p.proto, NODE_PROTO_UDP);
    assert_int_equal(p.target.port, 5353);
    assert_int_equal(node_parse_publish("0", &p), -1);
    assert_int_equal(node_parse_publish("x=1.2.3.4:5", &p), -1);
}

static void test_defaults(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_true(o.proxy_on);
    assert_endpoint(&o.proxy, "127.0.0.1:1080");
    assert_false(o.dns_listen_on);
    assert_string_equal(o.dns_suffix, "mesh.internal");
    assert_int_equal(o.outbound, NODE_OUTBOUND_DIRECT);
    assert_int_equal(o.log_level, BASE_LOG_INFO);
    node_options_free(&o);

    /* A dedicated listener replaces the default combined one. */
    assert_int_equal(parse(&o, err, sizeof(err), "--socks5", "1081", NULL), 0);
    assert_false(o.proxy_on);
    assert_true(o.socks5_on);
    assert_int_equal(o.socks5.port, 1081);
    node_options_free(&o);
}

static void test_env_and_flags(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    clear_env();
    setenv("TUNLESS_PROXY", "0.0.0.0:9000", 1);
    setenv("TUNLESS_FORWARD", "15432=db:5432 udp:5353=ns:53", 1);
    setenv("TUNLESS_OUTBOUND", "tunnel-only", 1);
    setenv("TUNLESS_PROXY_USER", "alice", 1);
    setenv("TUNLESS_PROXY_PASS", "s3cret", 1);
    assert_int_equal(parse(&o, err, sizeof(err), "--proxy", "127.0.0.1:9001", "--forward", "1=a:2",
                           "--log-level", "debug", NULL),
                     0);
    assert_int_equal(o.proxy.port, 9001); /* flag overrides env */
    assert_int_equal(o.n_forwards, 3);    /* lists accumulate */
    assert_int_equal(o.forwards[1].proto, NODE_PROTO_UDP);
    assert_int_equal(o.outbound, NODE_OUTBOUND_TUNNEL_ONLY);
    assert_string_equal(o.proxy_pass, "s3cret");
    assert_int_equal(o.log_level, BASE_LOG_DEBUG);
    assert_false(o.log_json);
    node_options_free(&o);
    setenv("TUNLESS_LOG_FORMAT", "json", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_true(o.log_json);
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--log-format", "text", NULL), 0);
    assert_false(o.log_json); /* the flag wins */
    node_options_free(&o);
    clear_env();
}

/* --max-memory: a size with K, M or G; the default fits a small container; too small is an
 * error naming the flag or the variable. */
static void test_max_memory(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    size_t v;
    assert_int_equal(node_parse_size("256M", &v), 0);
    assert_int_equal(v, (size_t)256 << 20);
    assert_int_equal(node_parse_size("1GiB", &v), 0);
    assert_int_equal(v, (size_t)1 << 30);
    assert_int_equal(node_parse_size("65536", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(node_parse_size("12X", &v), -1);
    assert_int_equal(node_parse_size("-1M", &v), -1);
    assert_int_equal(node_parse_size("", &v), -1);
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.max_memory, NODE_MAX_MEMORY_DEFAULT);
    node_options_free(&o);
    setenv("TUNLESS_MAX_MEMORY", "64M", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.max_memory, (size_t)64 << 20);
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--max-memory", "1M", NULL), -1);
    assert_non_null(strstr(err, "--max-memory"));
    node_options_free(&o);
    clear_env();
}

/* --max-connections: a count; 0, a sign or a suffix is an error naming the flag. */
static void test_max_connections(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.max_connections, 0); /* the proxy's own default */
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--max-connections", "12000", NULL), 0);
    assert_int_equal(o.max_connections, 12000);
    node_options_free(&o);
    setenv("TUNLESS_MAX_CONNECTIONS", "2048", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.max_connections, 2048);
    node_options_free(&o);
    clear_env();
    assert_false(o.no_udp_offload);
    assert_int_equal(parse(&o, err, sizeof(err), "--udp-offload", "off", NULL), 0);
    assert_true(o.no_udp_offload);
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--udp-offload", "maybe", NULL), -1);
    assert_non_null(strstr(err, "--udp-offload"));
    node_options_free(&o);
    const char *bad[] = {"0", "-5", "10k", "", "1000001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(&o, err, sizeof(err), "--max-connections", bad[i], NULL), -1);
        assert_non_null(strstr(err, "--max-connections"));
        node_options_free(&o);
    }
}

static void test_pass_file(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    char path[] = "/tmp/tunless-pass-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hunter2\n", 8), 8);
    close(fd);
    clear_env();
    assert_int_equal(
        parse(&o, err, sizeof(err), "--proxy-user", "bob", "--proxy-pass-file", path, NULL), 0);
    assert_string_equal(o.proxy_pass, "hunter2");
    node_options_free(&o);
    unlink(path);
}

static void expect_error(const char *want, ...)
{
    char *argv[16] = {"up"};
    int argc = 1;
    va_list ap;
    va_start(ap, want);
    for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
        argv[argc++] = a;
    va_end(ap);
    struct node_options o;
    char err[256] = "";
    assert_int_equal(node_options_parse(argc, argv, &o, err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
}

static void test_errors(void **state)
{
    (void)state;
    clear_env();
    expect_error("--proxy-pass: a password on the command line", "--proxy-pass", "x", NULL);
    expect_error("--proxy-user and a password", "--proxy-user", "u", NULL);
    expect_error("--outbound sideways", "--outbound", "sideways", NULL);
    expect_error("--log-level loud", "--log-level", "loud", NULL);
    expect_error("--forward 1=2", "--forward", "1=2", NULL);
    expect_error("--publish abc", "--publish", "abc", NULL);
    expect_error("--proxy 1.2.3.4:", "--proxy", "1.2.3.4:", NULL);
    expect_error("--socks5 example.com:1080", "--socks5", "example.com:1080", NULL);
    expect_error("unknown or incomplete option '--frobnicate'", "--frobnicate", NULL);
    expect_error("unexpected argument 'extra'", "extra", NULL);
    expect_error("exclude each other", "--config", "a", "--netmap", "b", NULL);
    expect_error("--proxy-pass-file /nonexistent/pass: No such file", "--proxy-user", "u",
                 "--proxy-pass-file", "/nonexistent/pass", NULL);
    setenv("TUNLESS_OUTBOUND", "bogus", 1);
    expect_error("TUNLESS_OUTBOUND=bogus: want direct or tunnel-only", NULL);
    clear_env();
}

/* --connect-timeout: seconds by default, ms/s/m suffixes, 1 ms to 1 h; a bad value is named. */
static void test_connect_timeout(void **state)
{
    (void)state;
    struct {
        const char *in;
        unsigned ms;
    } ok[] = {{"10", 10000},  {"10s", 10000}, {"500ms", 500},
              {"2m", 120000}, {"1ms", 1},     {"60m", 3600000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        unsigned ms = 0;
        assert_int_equal(node_parse_duration_ms(ok[i].in, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    const char *bad[] = {"",        "-1", "+5", "1.5s", "s", "10 s", "5d", "99999999999999999999",
                         "4294968s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned ms = 7;
        assert_int_equal(node_parse_duration_ms(bad[i], &ms), -1);
        assert_int_equal(ms, 7);
    }
    struct node_options o;
    char err[256];
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.connect_timeout_ms, 0); /* the dialers' default */
    node_options_free(&o);
    setenv("TUNLESS_CONNECT_TIMEOUT", "3s", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.connect_timeout_ms, 3000);
    assert_int_equal(o.n_warnings, 0);
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--connect-timeout", "250ms", NULL), 0);
    assert_int_equal(o.connect_timeout_ms, 250); /* the flag wins */
    node_options_free(&o);
    setenv("TUNLESS_CONNECT_TIMEOUT", "soon", 1);
    expect_error("TUNLESS_CONNECT_TIMEOUT=soon: want a time", NULL);
    clear_env();
    expect_error("--connect-timeout 0: want a time", "--connect-timeout", "0", NULL);
    expect_error("--connect-timeout 61m: want a time", "--connect-timeout", "61m", NULL);
    expect_error("--connect-timeout 3600001ms: want a time", "--connect-timeout", "3600001ms",
                 NULL);
}

/* issue 13: connections have an idle timeout (hours by default) and a tunable keepalive. */
static void test_lifecycle_options(void **state)
{
    (void)state;
    clear_env();
    struct node_options o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.idle_timeout_ms, 4u * 3600 * 1000);
    assert_int_equal(o.keepalive.idle_ms, 0); /* the netstack's defaults */
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--idle-timeout", "90s", "--tcp-keepalive",
                           "2s,1500ms,3", NULL),
                     0);
    assert_int_equal(o.idle_timeout_ms, 90000);
    assert_int_equal(o.keepalive.idle_ms, 2000);
    assert_int_equal(o.keepalive.intvl_ms, 1500);
    assert_int_equal(o.keepalive.cnt, 3);
    node_options_free(&o);
    setenv("TUNLESS_IDLE_TIMEOUT", "0", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_int_equal(o.idle_timeout_ms, 0); /* never */
    node_options_free(&o);
    assert_int_equal(parse(&o, err, sizeof(err), "--idle-timeout", "2h", NULL), 0);
    assert_int_equal(o.idle_timeout_ms, 2u * 3600 * 1000); /* the flag wins */
    node_options_free(&o);
    clear_env();
    expect_error("--idle-timeout 5x: want a duration", "--idle-timeout", "5x", NULL);
    expect_error("--idle-timeout -1: want a duration", "--idle-timeout", "-1", NULL);
    expect_error("--idle-timeout 9999999h: want a duration", "--idle-timeout", "9999999h", NULL);
    expect_error("--tcp-keepalive 2s,1s: want IDLE,INTERVAL,COUNT", "--tcp-keepalive", "2s,1s",
                 NULL);
    expect_error("--tcp-keepalive 2s,1s,0: want", "--tcp-keepalive", "2s,1s,0", NULL);
    expect_error("--tcp-keepalive 10ms,1s,2: want", "--tcp-keepalive", "10ms,1s,2", NULL);
    expect_error("--tcp-keepalive 2s,1s,2x: want", "--tcp-keepalive", "2s,1s,2x", NULL);
}

/* issue 12: "off" used to read as "not given", and the default port came back. */
static void test_proxy_off(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), "--proxy", "off", NULL), 0);
    assert_false(o.proxy_on);
    assert_false(o.socks5_on);
    assert_false(o.http_proxy_on);
    node_options_free(&o);

    setenv("TUNLESS_PROXY", "off", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_false(o.proxy_on);
    node_options_free(&o);

    /* a flag still overrides the variable's off */
    assert_int_equal(parse(&o, err, sizeof(err), "--proxy", "1082", NULL), 0);
    assert_true(o.proxy_on);
    assert_int_equal(o.proxy.port, 1082);
    node_options_free(&o);
    clear_env();
}

/* A bad variable is named as the variable, not as a flag the user never typed. */
static void test_env_errors_named(void **state)
{
    (void)state;
    clear_env();
    setenv("TUNLESS_PROXY", "1.2.3.4:", 1);
    expect_error("TUNLESS_PROXY=1.2.3.4:: want IP:PORT", NULL);
    clear_env();
    setenv("TUNLESS_FORWARD", "15432=db:5432 nonsense", 1);
    expect_error("TUNLESS_FORWARD=...nonsense...: want", NULL);
    clear_env();
    setenv("TUNLESS_LOG_LEVEL", "loud", 1);
    expect_error("TUNLESS_LOG_LEVEL=loud: want error", NULL);
    clear_env();
    setenv("TUNLESS_EXPAND_ENV", "maybe", 1);
    expect_error("TUNLESS_EXPAND_ENV=maybe: want 1 or 0", NULL);
    clear_env();
    setenv("TUNLESS_LOG_FORMAT", "xml", 1);
    expect_error("TUNLESS_LOG_FORMAT=xml: want text or json", NULL);
    clear_env();
}

static void test_env_unknown_warned(void **state)
{
    (void)state;
    struct node_options o;
    char err[256];
    clear_env();
    setenv("TUNLESS_PROXYY", "1081", 1);
    setenv("TUNLESS_NOTHING_LIKE_IT", "1", 1);
    setenv("TUNLESS_PROXY_PASS", "known", 1);
    setenv("TUNLESS_PROXY_USER", "u", 1);
    setenv("TUNLESS_EXPAND_ENV", "1", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_true(o.expand_env);
    assert_int_equal(o.n_warnings, 2);
    bool typo = false, other = false;
    for (size_t i = 0; i < o.n_warnings; i++) {
        typo |= strcmp(o.warnings[i], "TUNLESS_PROXYY: no option reads this variable; did you "
                                      "mean TUNLESS_PROXY?") == 0;
        other |= strcmp(o.warnings[i], "TUNLESS_NOTHING_LIKE_IT: no option reads this "
                                       "variable") == 0;
    }
    assert_true(typo);
    assert_true(other);
    node_options_free(&o);
    clear_env();

    assert_int_equal(parse(&o, err, sizeof(err), "--expand-env", NULL), 0);
    assert_true(o.expand_env);
    assert_int_equal(o.n_warnings, 0);
    node_options_free(&o);
    assert_int_equal(node_edit_distance("kitten", "sitting"), 3);
}

static void count_metrics_warning(void *arg, const char *line)
{
    if (strstr(line, "--metrics-listen 0.0.0.0:9180: bound beyond the loopback"))
        ++*(int *)arg;
}

/* --metrics-listen: off by default, the variable, loopback for a bare port, warned beyond it. */
static void test_metrics_listen(void **state)
{
    (void)state;
    struct node_options o;
    char err[256], ep[BASE_ENDPOINT_STRLEN];
    clear_env();
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_false(o.metrics_listen_on);
    node_options_free(&o);

    setenv("TUNLESS_METRICS_LISTEN", "9180", 1);
    assert_int_equal(parse(&o, err, sizeof(err), NULL), 0);
    assert_true(o.metrics_listen_on);
    assert_string_equal(base_endpoint_format(&o.metrics_listen, ep, sizeof(ep)), "127.0.0.1:9180");
    int warned = 0;
    node_plan_check(&o, count_metrics_warning, &warned);
    assert_int_equal(warned, 0);
    node_options_free(&o);

    assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "0.0.0.0:9180", NULL), 0);
    node_plan_check(&o, count_metrics_warning, &warned);
    assert_int_equal(warned, 1);
    node_options_free(&o);

    assert_int_equal(parse(&o, err, sizeof(err), "--metrics-listen", "nonsense:x", NULL), -1);
    assert_non_null(strstr(err, "--metrics-listen"));
    clear_env();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_forward_publish),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_pass_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_proxy_off),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_env_errors_named),
        cmocka_unit_test(test_env_unknown_warned),
        cmocka_unit_test(test_metrics_listen),
        cmocka_unit_test(test_lifecycle_options),
        cmocka_unit_test(test_max_memory),
        cmocka_unit_test(test_max_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
