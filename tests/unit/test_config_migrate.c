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
               0600);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_private_key_file),
        cmocka_unit_test(test_expand_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
