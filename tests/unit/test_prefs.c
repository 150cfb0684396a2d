/* Preferences: the JSON reader is all or nothing and names the field at fault; prefs.json is
 * written 0600 and read back; a corrupted one gives the defaults and is moved aside, never
 * overwritten, not even by the next corrupted one in the same second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "prefs.h"

static int apply(struct node_prefs *p, const char *json, unsigned *mask, char *err, size_t cap)
{
    return node_prefs_apply_json(p, json, strlen(json), mask, err, cap);
}

static void test_defaults_and_fields(void **state)
{
    (void)state;
    struct node_prefs p;
    char err[256];
    unsigned mask = 0;
    node_prefs_default(&p);
    assert_true(p.want_running);
    assert_int_equal(p.log_level, BASE_LOG_INFO);
    assert_int_equal(p.outbound, NODE_OUTBOUND_DIRECT);
    assert_false(p.shields_up);

    assert_int_equal(
        apply(&p, "{\"want_running\": false, \"log_level\": \"debug\"}", &mask, err, sizeof(err)),
        0);
    assert_false(p.want_running);
    assert_int_equal(p.log_level, BASE_LOG_DEBUG);
    assert_int_equal(p.outbound, NODE_OUTBOUND_DIRECT); /* absent: unchanged */
    assert_int_equal(mask, NODE_PREF_WANT_RUNNING | NODE_PREF_LOG_LEVEL);

    assert_int_equal(
        apply(&p, "{\"outbound\": \"tunnel-only\", \"shields_up\": true}", &mask, err, sizeof(err)),
        0);
    assert_int_equal(p.outbound, NODE_OUTBOUND_TUNNEL_ONLY);
    assert_true(p.shields_up);
    assert_int_equal(mask, NODE_PREF_OUTBOUND | NODE_PREF_SHIELDS_UP);
    assert_int_equal(apply(&p, "{}", &mask, err, sizeof(err)), 0);
    assert_int_equal(mask, 0);
}

/* Each bad input: rejected with the path named, and nothing of it applied. */
static void test_errors_name_the_path(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"log_level\": \"loud\"}", "log_level: want"},
        {"{\"want_running\": false, \"log_level\": 3}", "log_level: want"},
        {"{\"outbound\": \"sideways\"}", "outbound: want \"direct\" or \"tunnel-only\""},
        {"{\"want_running\": \"yes\"}", "want_running: want true or false"},
        {"{\"shields_up\": null}", "shields_up: want true or false"},
        {"{\"want_running\": false, \"shields\": true}", "shields: unknown field"},
        {"[1, 2]", "(top level): want an object"},
        {"{\"want_running\": tru", "line 1"},
        {"{\"want_running\": true, \"want_running\": false}", "line 1"},
        {"", "line"},
        {"{\"log_level\": \"info\\u0000x\"}", "line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct node_prefs p, before;
        char err[256] = "";
        node_prefs_default(&p);
        before = p;
        assert_int_equal(apply(&p, cases[i].json, NULL, err, sizeof(err)), BASE_EPARSE);
        if (!strstr(err, cases[i].want))
            fail_msg("%s: error '%s' lacks '%s'", cases[i].json, err, cases[i].want);
        assert_true(node_prefs_equal(&p, &before));
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    struct node_prefs p, q;
    char err[256];
    node_prefs_default(&p);
    p.want_running = false;
    p.log_level = BASE_LOG_WARN;
    p.outbound = NODE_OUTBOUND_TUNNEL_ONLY;
    char *text = node_prefs_to_json(&p);
    assert_non_null(text);
    node_prefs_default(&q);
    assert_int_equal(apply(&q, text, NULL, err, sizeof(err)), 0);
    assert_true(node_prefs_equal(&p, &q));
    free(text);
}

static void test_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/tunless-prefs-XXXXXX", path[300], err[1024];
    struct node_prefs p, q;
    struct stat st;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(node_prefs_load(dir, &p, err, sizeof(err)), 1); /* none yet */
    assert_true(p.want_running);

    p.want_running = false;
    p.log_level = BASE_LOG_DEBUG;
    assert_int_equal(node_prefs_save(dir, &p, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_PREFS_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(node_prefs_load(dir, &q, err, sizeof(err)), 0);
    assert_true(node_prefs_equal(&p, &q));

    /* Three bad files, at least two of them within one second: each is kept, none replaced. */
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(path, "w");
        fprintf(f, "{\"want_running\": fals%d", i);
        fclose(f);
        assert_int_equal(node_prefs_load(dir, &q, err, sizeof(err)), -1);
        assert_true(q.want_running); /* the defaults */
        assert_non_null(strstr(err, "prefs.json"));
        assert_non_null(strstr(err, "moved to"));
        assert_int_not_equal(access(path, F_OK), 0); /* moved aside, not left to be overwritten */
    }
    DIR *dh = opendir(dir);
    struct dirent *e;
    int aside = 0;
    while ((e = readdir(dh))) {
        if (strncmp(e->d_name, "prefs.json.corrupt-", 19) != 0)
            continue;
        char kept[400], text[64] = "";
        snprintf(kept, sizeof(kept), "%s/%s", dir, e->d_name);
        FILE *f = fopen(kept, "r");
        assert_non_null(fgets(text, sizeof(text), f));
        fclose(f);
        aside |= 1 << (text[strlen(text) - 1] - '0');
    }
    closedir(dh);
    assert_int_equal(aside, 7); /* fals0, fals1 and fals2 */

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_fields),
        cmocka_unit_test(test_errors_name_the_path),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
