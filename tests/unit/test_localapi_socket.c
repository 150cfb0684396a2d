/*
 * The local API's socket file on an idle node (no configuration, engine or stack): with
 * --socket-group it never grants the group bits while the socket still has the node's own
 * group (the chmod is watched: this file's chmod stands in for libc's), it ends 0660 in that
 * group, every directory made for it 0710; without a group it is 0600 in 0700 directories; a
 * stale socket goes and a live one is refused (the group test needs root, to give the socket
 * to another group); a group that is no group is refused; a second node on the socket, past
 * its check at the same moment, is refused naming the first and leaves its socket alone, and a
 * node removes only its own socket. The CLI's client keeps an answer's
 * body whole, a NUL in it included; `tunless set` prints fields an answer lacks as "?"; `tunless watch` takes a bad chunk size
 * for an error.
 */
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"
#include "localapi.h"
#include "localapi_client.h"
#include "node.h"

/* What the node's chmod calls on a socket saw: the group the socket had when a mode with
 * group bits was asked for. */
static struct {
    int group_grants;
    gid_t gid_at_grant;
} seen;

/* Stands in for libc's chmod (the node's library is linked into this program). */
int chmod(const char *path, mode_t mode)
{
    struct stat st;
    if ((mode & 0070) && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        seen.group_grants++;
        seen.gid_at_grant = st.st_gid;
    }
    return fchmodat(AT_FDCWD, path, mode, 0);
}

struct idle_node {
    uv_loop_t loop;
    struct node_daemon d;
    struct node_localapi *api;
};

static void idle_start(struct idle_node *n)
{
    memset(n, 0, sizeof(*n));
    uv_loop_init(&n->loop);
    n->d.loop = &n->loop;
    n->d.log = (struct node_log){.level = BASE_LOG_ERROR, .out = fopen("/dev/null", "w")};
    node_lifecycle_init(&n->d);
}

static void idle_stop(struct idle_node *n)
{
    if (n->api)
        node_localapi_close(n->api, NULL, NULL);
    node_lifecycle_close(&n->d);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&n->loop), 0);
    fclose(n->d.log.out);
}

static void mode_is(const char *path, unsigned mode, gid_t gid)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 07777) != mode || st.st_gid != gid)
        fail_msg("%s: mode %04o group %ld, want %04o group %ld", path, st.st_mode & 07777,
                 (long)st.st_gid, mode, (long)gid);
}

static void test_group_socket(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct group *g = getgrnam("nogroup");
    if (!g)
        g = getgrnam("nobody");
    assert_non_null(g);
    gid_t gid = g->gr_gid;
    assert_int_not_equal(gid, getegid());
    char top[] = "/tmp/tunless-api-sock-XXXXXX", path[96], run[48], dir[64], err[256];
    assert_non_null(mkdtemp(top));
    snprintf(run, sizeof(run), "%s/run", top);
    snprintf(dir, sizeof(dir), "%s/tunless", run);
    snprintf(path, sizeof(path), "%s/api.sock", dir);

    struct idle_node n;
    idle_start(&n);
    assert_int_equal(node_localapi_check(path, err, sizeof(err)), 0);
    memset(&seen, 0, sizeof(seen));
    if (node_localapi_start(&n.d, path, "nogroup", &n.api, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    assert_int_equal(seen.group_grants, 1);
    if (seen.gid_at_grant != gid)
        fail_msg("the group bits were set while the socket was in group %ld, not %ld",
                 (long)seen.gid_at_grant, (long)gid);
    mode_is(path, 0660, gid);
    mode_is(dir, 0710, gid);
    mode_is(run, 0710, gid); /* every directory made on the way */
    assert_int_equal(node_localapi_check(path, err, sizeof(err)), NODE_LOCALAPI_LIVE);
    idle_stop(&n);
    assert_int_equal(access(path, F_OK), -1); /* closing removes it */
    rmdir(dir);
    rmdir(run);

    /* Without a group: 0600 in a 0700 directory, and no group bits asked for at any time. */
    idle_start(&n);
    memset(&seen, 0, sizeof(seen));
    if (node_localapi_start(&n.d, path, NULL, &n.api, err, sizeof(err)) != 0)
        fail_msg("start: %s", err);
    assert_int_equal(seen.group_grants, 0);
    mode_is(path, 0600, getegid());
    mode_is(dir, 0700, getegid());
    mode_is(run, 0700, getegid());
    idle_stop(&n);
    /* A node that died left its socket: stale (nothing listens), removed by the check. */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    assert_int_equal(node_localapi_check(path, err, sizeof(err)), 0);
    assert_int_equal(access(path, F_OK), -1);
    rmdir(dir);
    rmdir(run);
    rmdir(top);
}

/* A group that is no group is refused: (gid_t)-1 would leave the socket in the node's own
 * group, which 0660 then lets in. */
static void test_bad_group(void **state)
{
    (void)state;
    char dir[] = "/tmp/tunless-api-group-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    const char *bad[] = {"-1", "4294967295", "+5", " 5", "no-such-group-here", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct idle_node n;
        idle_start(&n);
        memset(&seen, 0, sizeof(seen));
        if (node_localapi_start(&n.d, path, bad[i], &n.api, err, sizeof(err)) == 0)
            fail_msg("--socket-group '%s' was taken", bad[i]);
        assert_non_null(strstr(err, "no such group"));
        assert_int_equal(seen.group_grants, 0);
        assert_int_equal(access(path, F_OK), -1);
        idle_stop(&n);
    }
    rmdir(dir);
}

/* 1 when something accepts a connection at path. */
static int answers(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return ok;
}

/* Two nodes on one socket, the second past its check before the first listened (both started
 * at once): the second is refused naming the first, and its failure leaves the first's socket
 * in place. A node closing removes its own socket only: one another node put at the path
 * after ours was removed stays. */
static void test_second_node_keeps_first_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/tunless-api-two-XXXXXX", path[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    struct idle_node a, b;
    idle_start(&a);
    idle_start(&b);
    assert_int_equal(node_localapi_check(path, err, sizeof(err)), 0);
    assert_int_equal(node_localapi_check(path, err, sizeof(err)), 0);
    if (node_localapi_start(&a.d, path, NULL, &a.api, err, sizeof(err)) != 0)
        fail_msg("first: %s", err);
    err[0] = '\0';
    assert_int_equal(node_localapi_start(&b.d, path, NULL, &b.api, err, sizeof(err)),
                     NODE_LOCALAPI_LIVE);
    char want[160];
    snprintf(want, sizeof(want), "another node is running (PID %ld) on %s", (long)getpid(), path);
    if (!strstr(err, want))
        fail_msg("want '%s', got '%s'", want, err);
    idle_stop(&b);
    assert_true(answers(path)); /* the first is still reachable */

    /* Someone removed a's socket and another node listens there now: a's stop leaves it. */
    assert_int_equal(unlink(path), 0);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(l, 1), 0);
    idle_stop(&a);
    assert_true(answers(path));
    close(l);
    unlink(path);
    rmdir(dir);
}

/* Something else answers on dir/api.sock (TUNLESS_SOCKET pointing elsewhere, another node's
 * version): one request gets answer (len bytes), then the connection closes. */
static pid_t fake_node(char *dir, char *path, size_t cap, const char *answer, size_t len)
{
    assert_non_null(mkdtemp(dir));
    snprintf(path, cap, "%s/api.sock", dir);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof(sun)), 0);
    assert_int_equal(listen(l, 1), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(l, NULL, NULL);
        char buf[1024];
        if (c < 0 || read(c, buf, sizeof(buf)) <= 0 || write(c, answer, len) != (ssize_t)len)
            _exit(1);
        _exit(0);
    }
    close(l);
    return pid;
}

static void fake_node_end(pid_t pid, const char *dir, const char *path)
{
    int status;
    waitpid(pid, &status, 0);
    assert_int_equal(WEXITSTATUS(status), 0);
    unlink(path);
    rmdir(dir);
}

/* What was written to fd (a temporary file), into out; closes fd. */
static void slurp(int fd, char *out, size_t cap)
{
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* A CLI command run in this process with its stdout and stderr caught; its exit code. */
static int run_cmd(int (*cmd)(int, char **), char **argv, char *out, char *err, size_t cap)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    int saved[2] = {dup(1), dup(2)};
    int fd[2] = {open("/tmp", O_TMPFILE | O_RDWR, 0600), open("/tmp", O_TMPFILE | O_RDWR, 0600)};
    assert_true(fd[0] >= 0 && fd[1] >= 0);
    dup2(fd[0], 1);
    dup2(fd[1], 2);
    int rc = cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved[0], 1);
    dup2(saved[1], 2);
    close(saved[0]);
    close(saved[1]);
    slurp(fd[0], out, cap);
    slurp(fd[1], err, cap);
    return rc;
}

/* A body with a NUL in it is kept as received, body_len bytes, never read past. */
static void test_client_body_with_nul(void **state)
{
    (void)state;
    static const char answer[] = "HTTP/1.1 200 OK\r\n\r\n{}\0 and more after the NUL";
    char dir[] = "/tmp/tunless-api-client-XXXXXX", path[64], err[256];
    pid_t pid = fake_node(dir, path, sizeof(path), answer, sizeof(answer) - 1);
    struct node_localapi_reply r;
    assert_int_equal(node_localapi_call(path, "GET", "/v0/status", NULL, &r, err, sizeof(err)), 0);
    fake_node_end(pid, dir, path);
    assert_int_equal(r.status, 200);
    size_t want = sizeof(answer) - 1 - strlen("HTTP/1.1 200 OK\r\n\r\n");
    assert_int_equal(r.body_len, want);
    assert_memory_equal(r.body, "{}\0 and more after the NUL", want);
    assert_int_equal(r.body[want], '\0');
    node_localapi_reply_free(&r);
}

/* `tunless set` shows prefs without log_level and outbound (an older node's) as "?". */
static void test_set_prints_missing_fields(void **state)
{
    (void)state;
    static const char answer[] = "HTTP/1.1 200 OK\r\n\r\n{\"state\": \"Running\"}";
    char dir[] = "/tmp/tunless-api-set-XXXXXX", path[64], out[512], err[512];
    pid_t pid = fake_node(dir, path, sizeof(path), answer, sizeof(answer) - 1);
    char *argv[] = {"set", "--socket", path, NULL};
    assert_int_equal(run_cmd(node_cmd_set, argv, out, err, sizeof(out)), 0);
    fake_node_end(pid, dir, path);
    assert_string_equal(out, "state=Running want_running=false log_level=? outbound=? "
                             "shields_up=false\n");
    assert_string_equal(err, "");
}

/* `tunless watch` against a stream whose chunk-size line is garbage: an error (exit 1, one line
 * on stderr), not the clean end that a last chunk "0" is. */
static void test_watch_bad_chunk(void **state)
{
    (void)state;
    static const char *ends[] = {"0\r\n\r\n", "zz\r\n", "\r\n", "-1\r\n", "0x\r\n"};
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        char answer[256], dir[] = "/tmp/tunless-api-watch-XXXXXX", path[64], out[512], err[512];
        int len = snprintf(answer, sizeof(answer),
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "8\r\n{\"n\":1}\n\r\n%s",
                           ends[i]);
        pid_t pid = fake_node(dir, path, sizeof(path), answer, (size_t)len);
        char *argv[] = {"watch", "--json", "--socket", path, NULL};
        int rc = run_cmd(node_cmd_watch, argv, out, err, sizeof(out));
        fake_node_end(pid, dir, path);
        assert_string_equal(out, "{\"n\":1}\n");
        if (i == 0) {
            assert_int_equal(rc, 0);
            assert_string_equal(err, "");
            continue;
        }
        assert_int_equal(rc, 1);
        assert_non_null(strstr(err, "is not HTTP chunks (a bad chunk size)\n"));
        assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1); /* one line */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_socket),
        cmocka_unit_test(test_bad_group),
        cmocka_unit_test(test_second_node_keeps_first_socket),
        cmocka_unit_test(test_client_body_with_nul),
        cmocka_unit_test(test_set_prints_missing_fields),
        cmocka_unit_test(test_watch_bad_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
