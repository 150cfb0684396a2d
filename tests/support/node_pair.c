/*
 * The two nodes of node_pair.h: keys and wg-quick text (np_init, np_config_text), options from
 * `tunless up` flags with every listener moved to an ephemeral port (node_options_for), the
 * start in an order that lets each node learn the other's WireGuard port (np_start), the
 * bounded loop runners (np_run_until, np_call), and the stop that checks nothing is left.
 */
#include "node_pair.h"

#include "forward.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NP_STOP_MS 7000 /* a proxy drains open connections for 5 s (daemon.c) */
#define NP_CALL_GRACE_MS (4 * NP_IO_TIMEOUT_MS)

/* ---- keys and configuration text ---- */

void np_keypair(char priv[WG_KEY_B64_LEN + 1], char pub[WG_KEY_B64_LEN + 1])
{
    uint8_t k[WG_KEY_LEN], pk[WG_KEY_LEN];
    wg_key_generate(k);
    wg_key_public(pk, k);
    wg_key_to_base64(priv, k);
    wg_key_to_base64(pub, pk);
    sodium_memzero(k, sizeof(k));
}

static void node_init(struct np_node *n, const char *name, const char *addr4, const char *addr6)
{
    memset(n, 0, sizeof(*n));
    n->name = name;
    n->addr4 = addr4;
    n->addr6 = addr6;
    np_keypair(n->priv, n->pub);
    cfg_key_from_base64(n->pub_key, n->pub, WG_KEY_B64_LEN);
}

static struct np_node *peer_of(struct np_pair *p, struct np_node *n)
{
    return n == &p->a ? &p->b : &p->a;
}

const char *np_config_text(struct np_pair *p, struct np_node *n, const char *extra, char *buf,
                           size_t cap)
{
    const struct np_node *o = peer_of(p, n);
    char endpoint[64] = "";
    if (o->up)
        snprintf(endpoint, sizeof(endpoint), "Endpoint = 127.0.0.1:%u\n", np_wg_port(o));
    int len = snprintf(buf, cap,
                       "[Interface]\n# Name = %s\nPrivateKey = %s\nAddress = %s/32, %s/128\n%s\n"
                       "[Peer]\n# Name = %s\nPublicKey = %s\nAllowedIPs = %s/32, %s/128\n%s\n%s",
                       n->name, n->priv, n->addr4, n->addr6, n->interface ? n->interface : "",
                       o->name, o->pub, o->addr4, o->addr6, endpoint, extra ? extra : "");
    return len >= 0 && (size_t)len < cap ? buf : NULL;
}

int np_text_replace(char *text, size_t cap, const char *from, const char *to)
{
    char *at = strstr(text, from), rest[NP_CONF_MAX];
    if (!at || strlen(at + strlen(from)) >= sizeof(rest) ||
        (size_t)(at - text) + strlen(to) + strlen(at + strlen(from)) >= cap)
        return -1;
    snprintf(rest, sizeof(rest), "%s", at + strlen(from));
    snprintf(at, cap - (size_t)(at - text), "%s%s", to, rest);
    return 0;
}

static int parse_text(const struct np_node *n, const char *text, struct cfg_config *out)
{
    char err[512], name[32];
    snprintf(name, sizeof(name), "node-%s.conf", n->name);
    if (cfg_parse_ini_buffer(name, text, strlen(text), out, err, sizeof(err)) != 0) {
        fprintf(stderr, "node_pair: %s\n", err);
        return -1;
    }
    return 0;
}

int np_apply(struct np_node *n, const char *text)
{
    struct cfg_config c;
    if (parse_text(n, text, &c) != 0)
        return -1;
    return node_daemon_apply(&n->d, &c) == 0 ? 0 : -2;
}

/* ---- options: `tunless up` flags, listeners on ephemeral ports ---- */

static const char *log_level(void)
{
    const char *v = getenv("NP_LOG");
    return v && *v ? v : "error";
}

static int node_options_for(const char *state_dir, const char *const *flags, struct node_options *o)
{
    /* Port 1 only passes the flag parser: the listeners get port 0 below. */
    const char *argv[64] = {"up",           "--proxy",     "127.0.0.1:1",
                            "--dns-listen", "127.0.0.1:1", "--log-level",
                            log_level(),    "--state-dir", state_dir};
    int argc = 9;
    for (size_t i = 0; flags && flags[i]; i++) {
        if (argc + 1 >= (int)(sizeof(argv) / sizeof(argv[0])))
            return -1;
        argv[argc++] = flags[i];
    }
    char err[512];
    if (node_options_parse(argc, (char **)argv, o, err, sizeof(err)) != 0) {
        fprintf(stderr, "node_pair: %s\n", err);
        return -1;
    }
    o->proxy.port = 0;
    o->dns_listen.port = 0;
    for (size_t i = 0; i < o->n_forwards; i++)
        o->forwards[i].listen.port = 0;
    return 0;
}

static int start_node(struct np_pair *p, struct np_node *n, const char *const *flags)
{
    char text[NP_CONF_MAX];
    struct node_options o;
    struct cfg_config c;
    if (!np_config_text(p, n, n->extra, text, sizeof(text)) || parse_text(n, text, &c) != 0)
        return -1;
    if (node_options_for(p->state_dir, flags, &o) != 0) {
        cfg_free(&c);
        return -1;
    }
    /* The daemon takes the options and the configuration whatever happens. */
    int ret = node_daemon_start_config(&n->d, &p->loop, &o, &c);
    n->up = true; /* even failed, it has handles to close and memory to free */
    return ret;
}

/* ---- start ---- */

int np_init(struct np_pair *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->state_dir, sizeof(p->state_dir), "/tmp/tunless-node-pair-XXXXXX");
    if (sodium_init() < 0 || !mkdtemp(p->state_dir))
        return -1;
    if (uv_loop_init(&p->loop) != 0) {
        rmdir(p->state_dir);
        return -1;
    }
    uv_timer_init(&p->loop, &p->tick);
    uv_unref((uv_handle_t *)&p->tick); /* it wakes the loop but never keeps it alive */
    node_init(&p->a, "a", "100.64.0.1", "fd7a:115c:a1e0::1");
    node_init(&p->b, "b", "100.64.0.2", "fd7a:115c:a1e0::2");
    if (np_echo_start(p) == 0)
        return 0;
    np_stop(p);
    return -1;
}

int np_setup(void **state)
{
    struct np_pair *p = malloc(sizeof(*p));
    if (!p || np_init(p) != 0) {
        free(p);
        return -1;
    }
    *state = p;
    return 0;
}

int np_teardown(void **state)
{
    struct np_pair *p = *state;
    if (np_stop(p) != 0)
        return -1; /* p stays allocated: its loop still has handles that point into it */
    free(p);
    return 0;
}

int np_start(struct np_pair *p, const struct np_setup *s)
{
    char text[NP_CONF_MAX];
    p->a.extra = s->a_peers;
    p->b.extra = s->b_peers;
    p->a.interface = s->a_interface;
    p->b.interface = s->b_interface;
    /* b first, without a's endpoint (a has no port yet); a names b's port; b then learns a's. */
    if (start_node(p, &p->b, s->b_flags) != 0 || start_node(p, &p->a, s->a_flags) != 0)
        return -1;
    if (!np_config_text(p, &p->b, p->b.extra, text, sizeof(text)) || np_apply(&p->b, text) != 0)
        return -1;
    return 0;
}

/* ---- ports ---- */

uint16_t np_wg_port(const struct np_node *n)
{
    return n->up && n->d.engine ? wg_engine_port(n->d.engine) : 0;
}

uint16_t np_proxy_port(const struct np_node *n)
{
    int port = n->up && n->d.n_proxies ? proxy_server_port(n->d.proxies[0]) : 0;
    return port > 0 ? (uint16_t)port : 0;
}

uint16_t np_dns_port(const struct np_node *n)
{
    return n->up ? node_magicdns_listen_port(n->d.dns) : 0;
}

uint16_t np_forward_port(const struct np_node *n, size_t i)
{
    if (!n->up || !n->d.forwards || i >= n->d.opts.n_forwards || !n->d.forwards[i])
        return 0;
    int port = node_forward_port(n->d.forwards[i]);
    return port > 0 ? (uint16_t)port : 0;
}

/* ---- running the loop ---- */

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

int np_run_until(struct np_pair *p, bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    uv_timer_start(&p->tick, on_tick, 1, 1);
    bool met;
    while (!(met = cond(arg)) && uv_hrtime() < deadline)
        uv_run(&p->loop, UV_RUN_ONCE);
    uv_timer_stop(&p->tick);
    return met ? 0 : -1;
}

struct np_job {
    void (*fn)(void *arg);
    void *arg;
    atomic_bool done;
};

static void *job_main(void *v)
{
    struct np_job *j = v;
    j->fn(j->arg);
    atomic_store(&j->done, true);
    return NULL;
}

static bool job_done(void *v)
{
    return atomic_load(&((struct np_job *)v)->done);
}

int np_call(struct np_pair *p, void (*fn)(void *arg), void *arg, unsigned timeout_ms)
{
    struct np_job job = {.fn = fn, .arg = arg};
    pthread_t t;
    atomic_init(&job.done, false);
    if (pthread_create(&t, NULL, job_main, &job) != 0)
        return -1;
    int ret = np_run_until(p, job_done, &job, timeout_ms);
    if (ret != 0) /* its sockets time out: let it end while the loop still serves it */
        np_run_until(p, job_done, &job, NP_CALL_GRACE_MS);
    pthread_join(t, NULL);
    return ret;
}

/* ---- stop ---- */

static void report_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "node_pair: handle left open: %s%s\n", uv_handle_type_name(h->type),
            uv_is_closing(h) ? " (closing)" : "");
}

/* What the daemon leaves to its owner once its loop is done (as node/cmd_demo.c does). */
static void free_node(struct np_node *n)
{
    if (!n->up)
        return;
    cfg_free(&n->d.cfg);
    free(n->d.publish_ctx);
    node_options_free(&n->d.opts);
    n->up = false;
}

int np_stop(struct np_pair *p)
{
    if (p->stopped)
        return 0;
    p->stopped = true;
    np_echo_stop(p);
    if (p->a.up)
        node_daemon_stop(&p->a.d);
    if (p->b.up)
        node_daemon_stop(&p->b.d);
    uint64_t deadline = uv_hrtime() + (uint64_t)NP_STOP_MS * 1000000u;
    uv_timer_start(&p->tick, on_tick, 1, 1);
    while (uv_loop_alive(&p->loop) && uv_hrtime() < deadline)
        uv_run(&p->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&p->tick, NULL);
    uv_run(&p->loop, UV_RUN_NOWAIT);
    free_node(&p->a);
    free_node(&p->b);
    int ret = 0;
    if (rmdir(p->state_dir) != 0) {
        fprintf(stderr, "node_pair: the nodes wrote into %s (%s)\n", p->state_dir, strerror(errno));
        ret = -1;
    }
    if (uv_loop_close(&p->loop) == 0)
        return ret;
    /* Left open (inactive handles count too): a leak the test reports. */
    uv_walk(&p->loop, report_handle, NULL);
    return -1;
}
