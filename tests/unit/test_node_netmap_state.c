/*
 * The netmap a node keeps in its state directory (STATE_DIR/netmap.json, from PUT /v0/netmap)
 * gone bad: a whole node started on it (no configuration file) comes up anyway, without it, in
 * NeedsConfig; the log names the file and the fault (the JSON path, or the line and column);
 * the file is moved aside as netmap.json.corrupt-TIME, 0600, not deleted.
 */
#include <dirent.h>
#include <fcntl.h>
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

#include "daemon.h"
#include "lifecycle.h"
#include "metrics.h"
#include "node.h"
#include "options.h"

/* The name of the one file in dir starting with prefix, into out; 0 when found. */
static int find_aside(const char *dir, const char *prefix, char *out, size_t cap)
{
    DIR *dh = opendir(dir);
    int found = -1;
    for (struct dirent *e; dh && (e = readdir(dh));)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            found = snprintf(out, cap, "%s/%s", dir, e->d_name) < (int)cap ? 0 : -1;
        }
    if (dh)
        closedir(dh);
    return found;
}

/* Starts a node on dir (stderr into log_path), checks it came up in NeedsConfig, stops it. */
static void start_and_stop(const char *dir, const char *log_path)
{
    const char *argv[] = {"up", "--proxy", "off", "--socket", "off", "--state-dir", dir};
    struct node_options opts;
    char err[512];
    if (node_options_parse(7, (char **)argv, &opts, err, sizeof(err)) != 0)
        fail_msg("options: %s", err);
    fflush(stderr);
    int saved = dup(2), lfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(lfd, 2);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node_daemon d;
    int rc = node_daemon_start(&d, &loop, &opts);
    enum node_lc_state st = node_lifecycle_state(&d);
    bool have = d.have_config;
    node_daemon_stop(&d);
    uv_run(&loop, UV_RUN_DEFAULT);
    cfg_free(&d.cfg);
    free(d.publish_ctx);
    node_options_free(&d.opts);
    assert_int_equal(uv_loop_close(&loop), 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    assert_int_equal(rc, 0);
    assert_false(have);
    assert_int_equal(st, NODE_LC_NEEDS_CONFIG);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_corrupt_netmap_set_aside(void **state)
{
    (void)state;
    static const struct {
        const char *text, *fault;
    } bad[] = {
        {"{\"version\": 1, \"self\": {\"addresses\": [\"100.64.0.1/33\"]}, \"peers\": []}\n",
         "self.addresses[0]"},
        {"{\"version\": 1, \"peers\": [", "netmap.json:1:25: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char dir[] = "/tmp/tunless-netmap-state-XXXXXX", path[128], log[128], aside[512];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/netmap.json", dir);
        snprintf(log, sizeof(log), "%s.log", dir);
        FILE *f = fopen(path, "w");
        fputs(bad[i].text, f);
        fclose(f);
        chmod(path, 0644); /* set aside 0600 whatever it was */

        start_and_stop(dir, log);
        char *text = slurp(log);
        char want[200];
        snprintf(want, sizeof(want), "event=netmap_state_corrupt file=%s", path);
        if (!strstr(text, want) || !strstr(text, bad[i].fault) || !strstr(text, "moved_to="))
            fail_msg("want '%s' naming '%s', got:\n%s", want, bad[i].fault, text);
        free(text);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(find_aside(dir, "netmap.json.corrupt-", aside, sizeof(aside)), 0);
        struct stat st;
        assert_int_equal(stat(aside, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        char *kept = slurp(aside);
        assert_string_equal(kept, bad[i].text); /* moved, not rewritten */
        free(kept);

        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, log);
        assert_int_equal(system(cmd), 0);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_netmap_set_aside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
