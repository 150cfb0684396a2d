/*
 * The lifecycle on a whole node (node a of a node_pair): it comes up Running and reports the
 * handshake with b; want_running false makes it Stopped (b removed, the netstack closed), and
 * then its proxy refuses with SOCKS5 reply 1 and HTTP 503 while staying bound; want_running
 * true brings it back and the same connection works again. Every transition reaches a
 * subscriber, the log level changes at run time, and prefs.json holds what was set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_pair.h"

#define MESH_PORT 8080
#define MAX_SEEN 64

struct recorder {
    struct node_subscriber sub;
    enum node_event_kind kinds[MAX_SEEN];
    enum node_lc_state to[MAX_SEEN];
    size_t n;
};

static void record(struct node_subscriber *s, const struct node_event *ev)
{
    struct recorder *r = container_of(s, struct recorder, sub);
    if (r->n < MAX_SEEN) {
        r->kinds[r->n] = ev->kind;
        r->to[r->n++] = ev->to;
    }
}

static bool saw(const struct recorder *r, size_t from, enum node_event_kind k,
                enum node_lc_state to)
{
    for (size_t i = from; i < r->n; i++)
        if (r->kinds[i] == k && (k != NODE_EVENT_STATE || r->to[i] == to))
            return true;
    return false;
}

static bool handshake_seen(void *arg)
{
    return saw(arg, 0, NODE_EVENT_HANDSHAKE, 0);
}

struct client {
    uint16_t proxy_port;
    int reply, status;
    bool echoed;
};

static void socks_echo(void *arg)
{
    struct client *c = arg;
    char back[8];
    c->echoed = false;
    int fd = np_socks5_connect(c->proxy_port, "100.64.0.2", MESH_PORT, &c->reply);
    if (fd < 0)
        return;
    c->echoed = np_send_all(fd, "ping", 4) == 0 && np_recv_all(fd, back, 4) == 0 &&
                memcmp(back, "ping", 4) == 0;
    close(fd);
}

static void http_connect(void *arg)
{
    struct client *c = arg;
    int fd = np_http_connect(c->proxy_port, "100.64.0.2:8080", &c->status);
    if (fd >= 0)
        close(fd);
}

static void set_running(struct np_node *n, bool run)
{
    struct node_prefs want = n->d.life.prefs;
    char err[256];
    want.want_running = run;
    assert_int_equal(
        node_lifecycle_set_prefs(&n->d, &want, NODE_PREF_WANT_RUNNING, err, sizeof(err)), 0);
}

static void test_stop_and_resume(void **state)
{
    struct np_pair *p = *state;
    char publish[64], path[4200];
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, p->tcp_echo_port);
    const char *b_flags[] = {"--publish", publish, NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.b_flags = b_flags}), 0);
    struct node_daemon *a = &p->a.d;
    struct recorder r = {.sub.on_event = record};
    node_lifecycle_subscribe(a, &r.sub);
    assert_int_equal(node_lifecycle_state(a), NODE_LC_RUNNING);

    struct client c = {.proxy_port = np_proxy_port(&p->a)};
    assert_int_equal(np_call(p, socks_echo, &c, 5000), 0);
    assert_true(c.echoed);
    assert_int_equal(np_run_until(p, handshake_seen, &r, 3000), 0);

    size_t mark = r.n;
    set_running(&p->a, false);
    assert_int_equal(node_lifecycle_state(a), NODE_LC_STOPPED);
    assert_null(a->stack);
    assert_true(saw(&r, mark, NODE_EVENT_PEER_REMOVED, 0));
    assert_true(saw(&r, mark, NODE_EVENT_STATE, NODE_LC_STOPPED));
    assert_true(saw(&r, mark, NODE_EVENT_PREFS, 0));
    c.reply = -1;
    assert_int_equal(np_call(p, socks_echo, &c, 5000), 0);
    assert_int_equal(c.reply, 1); /* general failure: the node is stopped */
    assert_false(c.echoed);
    assert_int_equal(np_call(p, http_connect, &c, 5000), 0);
    assert_int_equal(c.status, 503);

    mark = r.n;
    set_running(&p->a, true);
    assert_true(saw(&r, mark, NODE_EVENT_STATE, NODE_LC_STARTING));
    assert_true(saw(&r, mark, NODE_EVENT_STATE, NODE_LC_RUNNING));
    assert_true(saw(&r, mark, NODE_EVENT_PEER_ADDED, 0));
    assert_int_equal(np_call(p, socks_echo, &c, 5000), 0);
    assert_int_equal(c.reply, 0);
    assert_true(c.echoed);

    /* The log level applies at once, to the node's libraries too: their copies of the logger
     * (lib, made before the change) ask it before formatting a line. */
    struct base_logger lib = node_log_logger(&a->log);
    struct node_prefs want = a->life.prefs;
    char err[256];
    want.log_level = BASE_LOG_ERROR;
    assert_int_equal(node_lifecycle_set_prefs(a, &want, NODE_PREF_LOG_LEVEL, err, sizeof(err)), 0);
    assert_int_equal(a->log.level, BASE_LOG_ERROR);
    assert_true(base_log_enabled(&lib, BASE_LOG_ERROR));
    assert_false(base_log_enabled(&lib, BASE_LOG_WARN));
    assert_false(base_log_enabled(&lib, BASE_LOG_INFO));

    /* What was set is in prefs.json (the pair's state directory must be left empty). */
    struct node_prefs stored;
    assert_int_equal(node_prefs_load(a->state_dir, &stored, err, sizeof(err)), 0);
    assert_true(stored.want_running);
    assert_int_equal(stored.log_level, BASE_LOG_ERROR);
    snprintf(path, sizeof(path), "%s/%s", a->state_dir, NODE_PREFS_FILE);
    assert_int_equal(unlink(path), 0);
    node_lifecycle_unsubscribe(&r.sub);
}

/* A configuration applied while Stopped is kept, not started; resuming starts it. */
static void test_reload_while_stopped(void **state)
{
    struct np_pair *p = *state;
    char publish[64], text[NP_CONF_MAX], path[4200];
    snprintf(publish, sizeof(publish), "%u=127.0.0.1:%u", MESH_PORT, p->tcp_echo_port);
    const char *b_flags[] = {"--publish", publish, NULL};
    assert_int_equal(np_start(p, &(struct np_setup){.b_flags = b_flags}), 0);
    struct node_daemon *a = &p->a.d;
    set_running(&p->a, false);
    assert_non_null(np_config_text(p, &p->a, NULL, text, sizeof(text)));
    assert_int_equal(np_apply(&p->a, text), 0);
    assert_int_equal(node_lifecycle_state(a), NODE_LC_STOPPED);
    assert_null(a->stack);
    set_running(&p->a, true);
    assert_int_equal(node_lifecycle_state(a), NODE_LC_RUNNING);
    struct client c = {.proxy_port = np_proxy_port(&p->a)};
    assert_int_equal(np_call(p, socks_echo, &c, 5000), 0);
    assert_true(c.echoed);
    snprintf(path, sizeof(path), "%s/%s", a->state_dir, NODE_PREFS_FILE);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stop_and_resume, np_setup, np_teardown),
        cmocka_unit_test_setup_teardown(test_reload_while_stopped, np_setup, np_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
