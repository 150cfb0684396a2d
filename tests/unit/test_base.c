/* base: the shared vocabulary (addresses and their text, host:port, errors, logs, lists). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "base.h"

static int hp(const char *s, char *host, uint16_t *port, unsigned flags)
{
    return base_hostport_parse(s, strlen(s), host, BASE_HOST_MAX + 1, port, flags, NULL);
}

static void test_hostport_shapes(void **state)
{
    (void)state;
    char host[BASE_HOST_MAX + 1];
    uint16_t port = 7;
    assert_int_equal(hp("db.mesh:8080", host, &port, 0), 0);
    assert_string_equal(host, "db.mesh");
    assert_int_equal(port, 8080);
    assert_int_equal(hp("[fd00::1]:53", host, &port, 0), 0);
    assert_string_equal(host, "fd00::1");
    assert_int_equal(port, 53);
    assert_int_equal(hp("1.2.3.4:1", host, &port, 0), 0);
    assert_string_equal(host, "1.2.3.4");

    port = 99;
    assert_int_equal(hp("fd00::1", host, &port, BASE_HOSTPORT_PORT_OPTIONAL), 0);
    assert_string_equal(host, "fd00::1");
    assert_int_equal(port, 99);
    assert_int_equal(hp("[fd00::1]", host, &port, BASE_HOSTPORT_PORT_OPTIONAL), 0);
    assert_int_equal(hp("name", host, &port, BASE_HOSTPORT_PORT_OPTIONAL), 0);
    assert_string_equal(host, "name");
    assert_int_equal(port, 99);
}

static void test_hostport_errors(void **state)
{
    (void)state;
    char host[BASE_HOST_MAX + 1];
    uint16_t port = 0;
    const char *bad[] = {
        "name",   "name:",      ":80",     "[fd00::1", "[fd00::1]x", "[name]:80",    "a:b:c",
        "host:0", "host:65536", "host:8o", "fd00::1",  "ho st:1",    "[1.2.3.4]:80", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        int err = base_hostport_parse(bad[i], strlen(bad[i]), host, sizeof(host), &port, 0, &why);
        if (err != BASE_EPARSE || !why)
            fail_msg("accepted or no reason: '%s'", bad[i]);
    }
    assert_int_equal(hp("host:0", host, &port, BASE_HOSTPORT_PORT_ZERO), 0);
    assert_int_equal(port, 0);
    char longname[300];
    memset(longname, 'a', 260);
    strcpy(longname + 260, ":1");
    assert_int_equal(hp(longname, host, &port, 0), BASE_EPARSE);
}

static void test_endpoint_round_trip(void **state)
{
    (void)state;
    const char *good[] = {"1.2.3.4:80", "[fd00::1]:53", "[::]:0", "0.0.0.0:65535"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct base_endpoint e;
        char buf[BASE_ENDPOINT_STRLEN];
        assert_int_equal(base_endpoint_parse(&e, good[i], strlen(good[i])), 0);
        assert_string_equal(base_endpoint_format(&e, buf, sizeof(buf)), good[i]);
        struct sockaddr_storage ss;
        struct base_endpoint back;
        assert_true(base_endpoint_to_sockaddr(&e, &ss) > 0);
        assert_int_equal(base_endpoint_from_sockaddr(&back, (struct sockaddr *)&ss), 0);
        assert_true(base_endpoint_equal(&e, &back));
    }
    struct base_endpoint e;
    assert_int_equal(base_endpoint_parse(&e, "name:80", 7), BASE_EPARSE);
    assert_int_equal(base_endpoint_parse(&e, "1.2.3.4", 7), BASE_EPARSE);
}

static void test_prefixes(void **state)
{
    (void)state;
    struct base_prefix p;
    struct base_addr a;
    char buf[BASE_PREFIX_STRLEN];
    assert_int_equal(base_prefix_parse(&p, "10.1.2.3/8", 10), 0);
    assert_int_equal(p.bits, 8);
    assert_string_equal(base_prefix_format(&p, buf, sizeof(buf)), "10.1.2.3/8");
    base_prefix_masked(&p);
    assert_string_equal(base_prefix_format(&p, buf, sizeof(buf)), "10.0.0.0/8");
    assert_int_equal(base_addr_parse(&a, "10.200.0.1", 10), 0);
    assert_true(base_prefix_contains(&p, &a));
    assert_int_equal(base_addr_parse(&a, "11.0.0.1", 8), 0);
    assert_false(base_prefix_contains(&p, &a));

    assert_int_equal(base_prefix_parse(&p, "fd7a:115c::/48", 14), 0);
    assert_int_equal(base_addr_parse(&a, "fd7a:115c:0:ffff::1", 19), 0);
    assert_true(base_prefix_contains(&p, &a));
    assert_int_equal(base_prefix_parse(&p, "fd00::1", 7), 0);
    assert_int_equal(p.bits, 128);
    assert_int_equal(base_prefix_parse(&p, "1.2.3.4/33", 10), BASE_EPARSE);
    assert_int_equal(base_prefix_parse(&p, "1.2.3.4/", 8), BASE_EPARSE);
    assert_int_equal(base_prefix_parse(&p, "1.2.3.4/08", 10), BASE_EPARSE);
    assert_int_equal(base_prefix_parse(&p, "1.2.3.0/0", 9), 0);
    assert_true(base_prefix_contains(&p, &a) == false); /* other family */
}

static void test_addr_kinds(void **state)
{
    (void)state;
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, "127.0.0.2", 9), 0);
    assert_true(base_addr_is_loopback(&a));
    assert_int_equal(base_addr_parse(&a, "::1", 3), 0);
    assert_true(base_addr_is_loopback(&a));
    assert_int_equal(base_addr_parse(&a, "0.0.0.0", 7), 0);
    assert_true(base_addr_is_unspecified(&a));
    assert_int_equal(base_addr_parse(&a, "1.2.3", 5), BASE_EPARSE);
    assert_int_equal(base_addr_parse(&a, "fe80::1%eth0", 12), BASE_EPARSE);
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(base_errname(-ECONNREFUSED), "ECONNREFUSED");
    assert_string_equal(base_errname(BASE_ELIMIT), "ELIMIT");
    assert_string_equal(base_errname(-123456), "EUNKNOWN");
    assert_string_equal(base_strerror(BASE_EAUTH), "authentication failed");
    assert_string_equal(base_strerror(-ENOMEM), strerror(ENOMEM));
    assert_string_equal(base_strerror(0), "success");
}

static char last_line[BASE_LOG_LINE_MAX];
static void capture(void *arg, enum base_log_level level, const char *line)
{
    (void)level;
    (*(int *)arg)++;
    snprintf(last_line, sizeof(last_line), "%s", line);
}

static void test_log(void **state)
{
    (void)state;
    int n = 0;
    struct base_logger l = {.fn = capture, .arg = &n, .level = BASE_LOG_INFO};
    base_logf(&l, BASE_LOG_DEBUG, "event=hidden");
    assert_int_equal(n, 0);
    base_logf(&l, BASE_LOG_WARN, "event=shown n=%d", 3);
    assert_int_equal(n, 1);
    assert_string_equal(last_line, "event=shown n=3");
    base_logf(NULL, BASE_LOG_ERROR, "event=nowhere");

    enum base_log_level lv;
    assert_int_equal(base_log_level_parse("debug", &lv), 0);
    assert_int_equal(lv, BASE_LOG_DEBUG);
    assert_int_equal(base_log_level_parse("loud", &lv), BASE_EPARSE);
    assert_string_equal(base_log_level_name(BASE_LOG_WARN), "warn");

    char q[32];
    assert_string_equal(base_log_quote(q, sizeof(q), "plain"), "plain");
    assert_string_equal(base_log_quote(q, sizeof(q), "two words"), "\"two words\"");
    assert_string_equal(base_log_quote(q, sizeof(q), "a\"b\n"), "\"a\\\"b\\n\"");
    assert_string_equal(base_log_quote(q, sizeof(q), ""), "\"\"");
    assert_string_equal(base_log_quote(q, 6, "abc def ghi"), "\"abc\"");

    /* One form of a peer everywhere: its name, or its short key twice. */
    char who[BASE_LOG_PEER_STRLEN];
    assert_string_equal(base_log_peer(who, sizeof(who), "db", "AbCd1234"),
                        "peer=db peer_key=AbCd1234");
    assert_string_equal(base_log_peer(who, sizeof(who), NULL, "AbCd1234"),
                        "peer=AbCd1234 peer_key=AbCd1234");
    assert_string_equal(base_log_peer(who, sizeof(who), "", "AbCd1234"),
                        "peer=AbCd1234 peer_key=AbCd1234");
    assert_string_equal(base_log_peer(who, sizeof(who), "a b", "AbCd1234"),
                        "peer=\"a b\" peer_key=AbCd1234");
}

struct item {
    int v;
    struct base_list link;
};

static void test_list(void **state)
{
    (void)state;
    struct base_list head, *pos, *tmp;
    struct item items[4];
    base_list_init(&head);
    assert_true(base_list_empty(&head));
    assert_null(base_list_first(&head));
    for (int i = 0; i < 4; i++) {
        items[i].v = i;
        base_list_push_back(&head, &items[i].link);
    }
    base_list_remove(&items[1].link);
    base_list_remove(&items[1].link); /* twice is harmless */
    assert_false(base_list_linked(&items[1].link));
    int sum = 0, count = 0;
    base_list_foreach_safe (pos, tmp, &head) {
        struct item *it = container_of(pos, struct item, link);
        sum += it->v;
        count++;
        base_list_remove(pos);
    }
    assert_int_equal(sum, 0 + 2 + 3);
    assert_int_equal(count, 3);
    assert_true(base_list_empty(&head));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport_shapes),
        cmocka_unit_test(test_hostport_errors),
        cmocka_unit_test(test_endpoint_round_trip),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_addr_kinds),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
