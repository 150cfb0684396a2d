/* base_prom: the Prometheus text formatter (names checked, values escaped, truncation whole). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base.h"

static void test_family_and_samples(void **state)
{
    (void)state;
    char buf[1024];
    struct base_prom p;
    base_prom_init(&p, buf, sizeof(buf));
    assert_int_equal(base_prom_family(&p, "tunless_peer_receive_bytes_total", BASE_PROM_COUNTER,
                                      "bytes received from the peer"),
                     0);
    struct base_prom_label l[] = {{"peer", "web"}, {"public_key", "abc+/="}};
    assert_int_equal(base_prom_u64(&p, l, 2, 18446744073709551615ull), 0);
    assert_int_equal(base_prom_one(&p, "tunless_up", BASE_PROM_GAUGE, "1 while running", 1), 0);
    assert_string_equal(buf,
                        "# HELP tunless_peer_receive_bytes_total bytes received from the peer\n"
                        "# TYPE tunless_peer_receive_bytes_total counter\n"
                        "tunless_peer_receive_bytes_total{peer=\"web\",public_key=\"abc+/=\"} "
                        "18446744073709551615\n"
                        "# HELP tunless_up 1 while running\n"
                        "# TYPE tunless_up gauge\n"
                        "tunless_up 1\n");
    assert_false(p.truncated);
    assert_int_equal(p.len, strlen(buf));
}

static void test_escaping(void **state)
{
    (void)state;
    char buf[512];
    struct base_prom p;
    base_prom_init(&p, buf, sizeof(buf));
    assert_int_equal(base_prom_family(&p, "x", BASE_PROM_GAUGE, "a \\ b\nc \"q\""), 0);
    struct base_prom_label l[] = {{"peer", "a\"b\\c\nd"}};
    assert_int_equal(base_prom_u64(&p, l, 1, 3), 0);
    assert_string_equal(buf, "# HELP x a \\\\ b\\nc \"q\"\n"
                             "# TYPE x gauge\n"
                             "x{peer=\"a\\\"b\\\\c\\nd\"} 3\n");
}

static void test_doubles(void **state)
{
    (void)state;
    char buf[512];
    struct base_prom p;
    base_prom_init(&p, buf, sizeof(buf));
    assert_int_equal(base_prom_family(&p, "age_seconds", BASE_PROM_GAUGE, "h"), 0);
    assert_int_equal(base_prom_double(&p, NULL, 0, 1.5), 0);
    assert_int_equal(base_prom_double(&p, NULL, 0, NAN), 0);
    assert_int_equal(base_prom_double(&p, NULL, 0, INFINITY), 0);
    assert_int_equal(base_prom_double(&p, NULL, 0, -INFINITY), 0);
    assert_non_null(strstr(buf, "age_seconds 1.5\nage_seconds NaN\nage_seconds +Inf\n"
                                "age_seconds -Inf\n"));
}

static void test_bad_names(void **state)
{
    (void)state;
    char buf[256];
    struct base_prom p;
    base_prom_init(&p, buf, sizeof(buf));
    assert_int_equal(base_prom_u64(&p, NULL, 0, 1), -EINVAL); /* no family yet */
    assert_int_equal(base_prom_family(&p, "9lives", BASE_PROM_GAUGE, "h"), -EINVAL);
    assert_int_equal(base_prom_family(&p, "a-b", BASE_PROM_GAUGE, "h"), -EINVAL);
    assert_int_equal(base_prom_family(&p, "", BASE_PROM_GAUGE, "h"), -EINVAL);
    assert_int_equal(base_prom_family(&p, "ok:name_1", BASE_PROM_COUNTER, "h"), 0);
    struct base_prom_label colon[] = {{"a:b", "v"}}, reserved[] = {{"__name__", "v"}},
                           null_value[] = {{"a", NULL}};
    size_t before = p.len;
    assert_int_equal(base_prom_u64(&p, colon, 1, 1), -EINVAL);
    assert_int_equal(base_prom_u64(&p, reserved, 1, 1), -EINVAL);
    assert_int_equal(base_prom_u64(&p, null_value, 1, 1), -EINVAL);
    assert_int_equal(p.len, before);
    assert_string_equal(buf, "# HELP ok:name_1 h\n# TYPE ok:name_1 counter\n");
}

static void test_truncation_ends_at_a_line(void **state)
{
    (void)state;
    char buf[60];
    struct base_prom p;
    base_prom_init(&p, buf, sizeof(buf));
    assert_int_equal(base_prom_one(&p, "a", BASE_PROM_GAUGE, "h", 1), 0);
    size_t len = p.len;
    assert_int_equal(base_prom_one(&p, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbb", BASE_PROM_GAUGE, "h", 1),
                     BASE_ELIMIT);
    assert_true(p.truncated);
    assert_true(p.len >= len);
    assert_int_equal(buf[p.len - 1], '\n');
    assert_int_equal(strlen(buf), p.len);
    /* once truncated, nothing more is added (no gap in the middle) */
    assert_int_equal(base_prom_one(&p, "c", BASE_PROM_GAUGE, "", 1), BASE_ELIMIT);

    struct base_prom z;
    base_prom_init(&z, buf, 0);
    assert_true(z.truncated);
    assert_int_equal(base_prom_one(&z, "a", BASE_PROM_GAUGE, "h", 1), BASE_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_samples),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_doubles),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_truncation_ends_at_a_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
