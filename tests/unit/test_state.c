/* The generated key: created once with 0600 in a 0700 directory, reloaded unchanged, and
 * refused when others can read it; the state directory's lock is held by one at a time. */
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
#include <sodium.h>

#include "state.h"

static void test_create_and_reload(void **state)
{
    (void)state;
    char base[] = "/tmp/tunless-state-XXXXXX", dir[256], path[300], err[256];
    uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN];
    int created;
    struct stat st;

    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/nested/state", base);
    assert_int_equal(node_state_load_key(dir, a, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 1);
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_STATE_KEY_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    assert_int_equal(node_state_load_key(dir, b, &created, err, sizeof(err)), 0);
    assert_int_equal(created, 0);
    assert_memory_equal(a, b, WG_KEY_LEN);

    chmod(path, 0644);
    assert_int_equal(node_state_load_key(dir, b, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "readable by others"));

    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    assert_int_equal(node_state_load_key(dir, b, &created, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a base64 private key"));

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

static void test_dir_resolution(void **state)
{
    (void)state;
    char out[256];
    unsetenv("STATE_DIRECTORY");
    unsetenv("XDG_STATE_HOME");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(node_state_dir(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/home/u/.local/state/tunless");
    setenv("XDG_STATE_HOME", "/xdg", 1);
    assert_int_equal(node_state_dir(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/xdg/tunless");
    setenv("STATE_DIRECTORY", "/var/lib/tunless", 1);
    assert_int_equal(node_state_dir(NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "/var/lib/tunless");
    assert_int_equal(node_state_dir("/given", out, sizeof(out)), 0);
    assert_string_equal(out, "/given");
}

/* One node per state directory: a second lock on it (another open file, as another process
 * would have) is refused naming the holder's pid, until the first is released. */
static void test_lock(void **state)
{
    (void)state;
    char base[] = "/tmp/tunless-state-lock-XXXXXX", dir[128], path[160], err[256];
    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/state", base);
    int a = -1, b = -1;
    pid_t holder = -1;
    assert_int_equal(node_state_lock(dir, &a, &holder, err, sizeof(err)), 0);
    assert_true(a >= 0);
    assert_int_equal(node_state_lock(dir, &b, &holder, err, sizeof(err)), NODE_STATE_LOCKED);
    assert_int_equal(b, -1);
    assert_int_equal(holder, getpid());
    snprintf(path, sizeof(path), "%s/%s", dir, NODE_STATE_LOCK_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    close(a);
    assert_int_equal(node_state_lock(dir, &b, &holder, err, sizeof(err)), 0);
    close(b);
    unlink(path);
    rmdir(dir);
    rmdir(base);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_reload),
        cmocka_unit_test(test_dir_resolution),
        cmocka_unit_test(test_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
