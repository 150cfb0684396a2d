/* `tunless up`: bring the node up from its options and configuration, reload, shut down. */
#include "daemon.h"
#include "plan.h"

#include <arpa/inet.h>
#include <libgen.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drain.h"
#include "forward.h"
#include "localapi.h"
#include "metrics.h"
#include "state.h"

#define NODE_CONFIG_IN_STATE "tunless.conf"
#define RELOAD_DEBOUNCE_MS 200
#define DRAIN_MS 5000

/* ---- glue: engine <-> netstack ---- */

static void deliver_to_stack(void *ctx, uint8_t *pkt, size_t len)
{
    struct node_daemon *d = ctx;
    if (d->stack)
        ns_stack_input(d->stack, pkt, len);
}

static int output_to_engine(void *ctx, const uint8_t *pkt, size_t len)
{
    struct node_daemon *d = ctx;
    if (!d->engine)
        return NS_OUTPUT_NO_ROUTE;
    int ret = wg_engine_send(d->engine, pkt, len);
    if (ret == -EHOSTUNREACH)
        return NS_OUTPUT_NO_ROUTE;
    return ret == 0 ? 0 : -1;
}

static bool is_mesh(void *ctx, const struct sockaddr *sa)
{
    struct node_daemon *d = ctx;
    struct base_endpoint ep;
    if (!d->engine || base_endpoint_from_sockaddr(&ep, sa) != 0)
        return false;
    return wg_engine_route(d->engine, &ep.addr);
}

/* The configured peer whose allowed IPs hold addr most narrowly, as the engine routes. */
static void peer_of(void *ctx, const struct base_addr *addr, struct proxy_route *out)
{
    struct node_daemon *d = ctx;
    const struct cfg_peer *best = NULL;
    int best_bits = -1;
    for (size_t i = 0; d->have_config && i < d->cfg.n_peers; i++) {
        const struct cfg_peer *p = &d->cfg.peers[i];
        for (size_t j = 0; j < p->n_allowed_ips; j++)
            if (p->allowed_ips[j].bits > best_bits &&
                base_prefix_contains(&p->allowed_ips[j], addr)) {
                best = p;
                best_bits = p->allowed_ips[j].bits;
            }
    }
    if (!best)
        return;
    wg_key_short(out->peer_key, best->public_key);
    snprintf(out->peer, sizeof(out->peer), "%s", best->name ? best->name : "");
}

static struct node_magicdns_config dns_config(struct node_daemon *d)
{
    return (struct node_magicdns_config){
        .opts = &d->opts, .cfg = d->have_config ? &d->cfg : NULL, .log = node_log_logger(&d->log)};
}

/* ---- configuration ---- */

static int load_config(struct node_daemon *d, struct cfg_config *out, char *err, size_t errlen)
{
    if (d->opts.netmap_path)
        return cfg_parse_netmap(d->config_path, out, err, errlen);
    return cfg_parse_ini_with(d->config_path, d->opts.expand_env, out, err, errlen);
}

/* The configuration's key, or the state directory's. */
static int choose_key(struct node_daemon *d, struct cfg_config *c, char *err, size_t errlen)
{
    if (c && c->has_private_key) {
        memcpy(d->private_key, c->private_key, WG_KEY_LEN);
        return 0;
    }
    int created = 0;
    if (node_state_load_key(d->state_dir, d->private_key, &created, err, errlen) != 0)
        return -1;
    if (created)
        node_log(&d->log, BASE_LOG_INFO, "key_generated", "dir=%s", d->state_dir);
    if (!c)
        return 0;
    /* The configuration now has its key: check it as a whole again (our key as a peer...). */
    memcpy(c->private_key, d->private_key, WG_KEY_LEN);
    c->has_private_key = true;
    return cfg_validate(c, err, errlen);
}

static void log_warnings(struct node_daemon *d, const struct cfg_config *c)
{
    char q[1024];
    for (size_t i = 0; i < c->n_warnings; i++)
        node_log(&d->log, BASE_LOG_WARN, "config_warning", "msg=%s",
                 base_log_quote(q, sizeof(q), c->warnings[i]));
}

/* ---- the engine and the netstack ---- */

static int start_engine(struct node_daemon *d, uint16_t port, uint16_t mtu, char *err,
                        size_t errlen)
{
    struct wg_engine_options eo = {
        .listen_port = port,
        .deliver = deliver_to_stack,
        .deliver_arg = d,
        .on_handshake = node_localapi_on_handshake,
        .on_handshake_arg = d,
        .log = node_log_logger(&d->log),
        .mtu = mtu,
        .no_udp_offload = d->opts.no_udp_offload,
    };
    memcpy(eo.private_key, d->private_key, WG_KEY_LEN);
    int ret = wg_engine_new(d->loop, &eo, &d->engine);
    sodium_memzero(eo.private_key, WG_KEY_LEN);
    if (ret != 0) {
        snprintf(err, errlen, "WireGuard listen port %u: cannot bind UDP: %s", port,
                 base_strerror(ret));
        return -1;
    }
    return 0;
}

/*
 * A node run from its state directory (no --config, no --netmap: the keyless first start, then
 * STATE_DIR/tunless.conf) keeps its UDP port there too, unless the configuration names one, so
 * the [Peer] block it printed on its first start stays valid.
 */
static int start_engine_on_port(struct node_daemon *d, char *err, size_t errlen)
{
    uint16_t mtu = d->have_config ? d->cfg.mtu : 0;
    uint16_t port = d->have_config ? d->cfg.listen_port : 0, saved = 0;
    /* A configuration from memory (node_daemon_start_config) leaves config_path empty. */
    bool keep_port = d->config_path[0] && !d->opts.config_path && !d->opts.netmap_path && port == 0;
    if (keep_port && node_state_load_port(d->state_dir, &saved) == 0)
        port = saved;
    if (start_engine(d, port, mtu, err, errlen) != 0) {
        if (!saved)
            return -1;
        node_log(&d->log, BASE_LOG_WARN, "listen_port_changed", "want=%u reason=unavailable dir=%s",
                 saved, d->state_dir);
        if (start_engine(d, 0, mtu, err, errlen) != 0)
            return -1;
    }
    uint16_t bound = wg_engine_port(d->engine);
    if (!keep_port || bound == saved)
        return 0;
    char why[512], q[600];
    if (node_state_save_port(d->state_dir, bound, why, sizeof(why)) != 0)
        node_log(&d->log, BASE_LOG_WARN, "state_write_failed", "err=%s",
                 base_log_quote(q, sizeof(q), why));
    return 0;
}

static void stop_stack(struct node_daemon *d);

static int start_stack(struct node_daemon *d, const struct cfg_config *c, char *err, size_t errlen)
{
    struct ns_config nc = {.mtu = c->mtu,
                           .output = output_to_engine,
                           .output_ctx = d,
                           .keepalive_idle_ms = d->opts.keepalive.idle_ms,
                           .keepalive_intvl_ms = d->opts.keepalive.intvl_ms,
                           .keepalive_cnt = d->opts.keepalive.cnt,
                           /* Room for every proxy client's tunnel conn beyond the default. */
                           .max_tcp =
                               d->opts.max_connections > 1024 ? d->opts.max_connections + 3072 : 0,
                           .budget = &d->budget};
    for (size_t i = 0; i < c->n_addresses; i++) {
        const struct base_addr *a = &c->addresses[i].addr;
        struct base_addr *slot = a->family == AF_INET ? &nc.addr4 : &nc.addr6;
        if (slot->family)
            continue; /* the netstack takes one address per family: the first */
        slot->family = a->family;
        memcpy(slot->ip, a->ip, base_addr_len(a));
    }
    if (ns_stack_new(d->loop, &nc, &d->stack) != 0) {
        snprintf(err, errlen, "%s: the tunnel addresses or MTU (%u) are not usable", c->file,
                 c->mtu);
        return -1;
    }
    node_dialer_set_own(&d->dialer, c->addresses, c->n_addresses);
    node_dialer_set_stack(&d->dialer, d->stack);
    if (node_magicdns_attach(d->dns, d->stack, d->dialer.is_mesh, d->dialer.is_mesh_ctx) != 0) {
        snprintf(err, errlen, "MagicDNS: cannot serve %s inside the netstack", NODE_MAGICDNS_ADDR);
        stop_stack(d);
        return -1;
    }
    if (node_publish_start(d, &nc, err, errlen) != 0) {
        stop_stack(d); /* all or nothing: no half-published stack */
        return -1;
    }
    return 0;
}

static void stop_stack(struct node_daemon *d)
{
    if (!d->stack)
        return;
    /* The dialer, MagicDNS and publish watch the stack: each part lets go of what it holds by
     * itself when it closes. */
    ns_stack_close(d->stack, NULL, NULL);
    d->stack = NULL;
}

void node_daemon_pause(struct node_daemon *d)
{
    d->dialer.stopped = true;
    node_peers_remove_all(d);
    stop_stack(d);
}

void node_daemon_resume(struct node_daemon *d)
{
    char err[512], q[600];
    d->dialer.stopped = false;
    if (!d->have_config)
        return;
    if (!d->stack && start_stack(d, &d->cfg, err, sizeof(err)) != 0)
        node_log(&d->log, BASE_LOG_ERROR, "netstack_failed", "err=%s",
                 base_log_quote(q, sizeof(q), err));
    if (node_peers_apply(d, NULL) != 0)
        node_log(&d->log, BASE_LOG_ERROR, "peers_apply_failed", "file=%s", d->cfg.file);
}

static void print_peer_block(struct node_daemon *d)
{
    uint8_t pub[WG_KEY_LEN];
    char b64[WG_KEY_B64_LEN + 1];
    wg_key_public(pub, d->private_key);
    wg_key_to_base64(b64, pub);
    fprintf(stderr,
            "\ntunless: no configuration yet. This node's public key:\n  %s\n\n"
            "Add it to the other side (wg-quick):\n\n[Peer]\nPublicKey = %s\n"
            "AllowedIPs = <this node's tunnel address>/32\nEndpoint = <this host>:%u\n\n"
            "Then write %s/%s, a wg-quick file whose [Interface] has\n"
            "  PrivateKeyFile = %s\n"
            "(the key is already there, next to it: no need to copy it), and send SIGHUP,\n"
            "or restart with --config FILE.\n\n",
            b64, b64, wg_engine_port(d->engine), d->state_dir, NODE_CONFIG_IN_STATE,
            NODE_STATE_KEY_FILE);
}

/* ---- proxies ---- */

static int start_proxy(struct node_daemon *d, const struct base_endpoint *ep,
                       enum proxy_protocols protocols, char *err, size_t errlen)
{
    char host[BASE_ADDR_STRLEN];
    base_addr_format(&ep->addr, host, sizeof(host));
    struct proxy_config pc = {
        .bind_addr = host,
        .port = ep->port,
        .protocols = protocols,
        .username = d->opts.proxy_user,
        .password = d->opts.proxy_pass,
        .dialer = node_dialer_proxy(&d->dialer),
        .logger = node_log_logger(&d->log),
        .budget = &d->budget,
        .max_connections = d->opts.max_connections,
    };
    struct proxy_server *srv;
    int rc = proxy_server_new(d->loop, &pc, &srv);
    if (rc != 0) {
        const char *flag = protocols == PROXY_BOTH     ? "--proxy"
                           : protocols == PROXY_SOCKS5 ? "--socks5"
                                                       : "--http-proxy";
        snprintf(err, errlen, "proxy listener %s:%u: %s (choose another address with %s)", host,
                 ep->port, base_strerror(rc), flag);
        return -1;
    }
    d->proxies[d->n_proxies++] = srv;
    node_log(&d->log, BASE_LOG_INFO, "listening", "service=%s addr=%s port=%u",
             protocols == PROXY_BOTH     ? "socks5+http"
             : protocols == PROXY_SOCKS5 ? "socks5"
                                         : "http",
             host, proxy_server_port(srv));
    return 0;
}

static int start_forwards(struct node_daemon *d, char *err, size_t errlen)
{
    d->forwards = calloc(d->opts.n_forwards + 1, sizeof(*d->forwards));
    if (!d->forwards) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < d->opts.n_forwards; i++) {
        const struct node_forward *f = &d->opts.forwards[i];
        char addr[BASE_ADDR_STRLEN];
        struct node_forward_env env = {d->opts.idle_timeout_ms, node_log_logger(&d->log)};
        d->forwards[i] = node_forward_start(d->loop, &d->dialer, f, &env, err, errlen);
        if (!d->forwards[i])
            return -1;
        node_log(&d->log, BASE_LOG_INFO, "listening",
                 "service=forward addr=%s port=%u target=%s:%u",
                 base_addr_format(&f->listen.addr, addr, sizeof(addr)), f->listen.port,
                 f->target.host, f->target.port);
    }
    return 0;
}

static int start_proxies(struct node_daemon *d, char *err, size_t errlen)
{
    const struct node_options *o = &d->opts;
    if (o->proxy_on && start_proxy(d, &o->proxy, PROXY_BOTH, err, errlen) != 0)
        return -1;
    if (o->socks5_on && start_proxy(d, &o->socks5, PROXY_SOCKS5, err, errlen) != 0)
        return -1;
    if (o->http_proxy_on && start_proxy(d, &o->http_proxy, PROXY_HTTP, err, errlen) != 0)
        return -1;
    return 0;
}

/* ---- reload ---- */

static bool same_addresses(const struct cfg_config *a, const struct cfg_config *b)
{
    return a->mtu == b->mtu && a->n_addresses == b->n_addresses &&
           memcmp(a->addresses, b->addresses, a->n_addresses * sizeof(*a->addresses)) == 0;
}

/* Whether the file's content is as the last reload read it (a SIGHUP and the watch both saw
 * one edit, or only its owner or mode changed). */
static bool config_unchanged(struct node_daemon *d)
{
    struct stat st;
    if (stat(d->config_path, &st) != 0)
        return false;
    bool same = d->reload_stamp_set && st.st_ino == d->reload_stamp.st_ino &&
                st.st_size == d->reload_stamp.st_size &&
                st.st_mtim.tv_sec == d->reload_stamp.st_mtim.tv_sec &&
                st.st_mtim.tv_nsec == d->reload_stamp.st_mtim.tv_nsec;
    d->reload_stamp = st;
    d->reload_stamp_set = true;
    return same;
}

int node_daemon_reload(struct node_daemon *d, node_daemon_diff_fn on_diff, void *arg, char *err,
                       size_t errlen)
{
    struct cfg_config next;
    char q[600];
    (void)config_unchanged(d); /* what is read now: the watch's reload of it is not needed */
    if (!d->config_path[0] || access(d->config_path, R_OK) != 0) {
        /* %.400s: the path fits err (512) with the words; gcc -O3 (Release) sees it could not */
        snprintf(err, errlen, "no configuration file to read%s%.400s",
                 d->config_path[0] ? ": " : "", d->config_path);
        node_log(&d->log, BASE_LOG_WARN, "reload_skipped", "reason=%s",
                 base_log_quote(q, sizeof(q), err));
        return -1;
    }
    if (load_config(d, &next, err, errlen) != 0) {
        node_log(&d->log, BASE_LOG_ERROR, "reload_rejected", "err=%s",
                 base_log_quote(q, sizeof(q), err));
        node_lifecycle_publish(
            d, &(struct node_event){.kind = NODE_EVENT_CONFIG_REJECTED, .detail = err});
        return -1;
    }
    struct cfg_diff diff;
    if (on_diff && cfg_diff(d->have_config ? &d->cfg : NULL, &next, &diff) == 0) {
        on_diff(arg, &diff);
        cfg_diff_free(&diff);
    }
    if (node_daemon_apply(d, &next) != 0) {
        snprintf(err, errlen,
                 "PrivateKey or ListenPort changed (restart the node), or the key "
                 "is unusable: see the node's log");
        return -1;
    }
    return 0;
}

static void reload(struct node_daemon *d, bool from_watch)
{
    char err[512];
    if (from_watch && config_unchanged(d)) {
        node_log(&d->log, BASE_LOG_DEBUG, "reload_unchanged", "file=%s", d->config_path);
        return;
    }
    node_daemon_reload(d, NULL, NULL, err, sizeof(err));
}

int node_daemon_apply(struct node_daemon *d, struct cfg_config *next_in)
{
    struct cfg_config next = *next_in;
    char err[512], q[600];
    memset(next_in, 0, sizeof(*next_in));
    log_warnings(d, &next);
    if (!node_plan_services_equal(&d->cfg, &next))
        node_log(&d->log, BASE_LOG_WARN, "reload_partial", "reason=%s",
                 base_log_quote(q, sizeof(q), "wireproxy sections changed: restart to apply"));
    uint8_t key_before[WG_KEY_LEN];
    memcpy(key_before, d->private_key, WG_KEY_LEN);
    if (choose_key(d, &next, err, sizeof(err)) != 0 || !wg_key_equal(key_before, d->private_key) ||
        (d->have_config && next.listen_port != d->cfg.listen_port)) {
        /* A new identity or port is a new node: that needs a restart, not a reload. */
        memcpy(d->private_key, key_before, WG_KEY_LEN);
        sodium_memzero(key_before, WG_KEY_LEN);
        const char *why = "PrivateKey or ListenPort changed: restart the node";
        node_log(&d->log, BASE_LOG_ERROR, "reload_rejected", "err=%s",
                 base_log_quote(q, sizeof(q), why));
        node_lifecycle_publish(
            d, &(struct node_event){.kind = NODE_EVENT_CONFIG_REJECTED, .detail = why});
        cfg_free(&next);
        return -1;
    }
    sodium_memzero(key_before, WG_KEY_LEN);
    if (!d->have_config && next.listen_port && next.listen_port != wg_engine_port(d->engine))
        node_log(&d->log, BASE_LOG_WARN, "listen_port_unchanged", "want=%u have=%u reason=%s",
                 next.listen_port, wg_engine_port(d->engine),
                 base_log_quote(q, sizeof(q), "the UDP port changes only on restart"));
    struct cfg_config old = d->cfg;
    bool had = d->have_config;
    /* Stopped (want_running false) keeps the configuration for later and starts nothing. */
    bool stopped = !d->life.prefs.want_running;
    d->cfg = next;
    d->have_config = true;
    if (!stopped)
        node_lifecycle_set(d, NODE_LC_STARTING);
    if (had && !same_addresses(&old, &next))
        stop_stack(d); /* new addresses: open flows cannot survive them */
    err[0] = '\0';
    if (!stopped && !d->stack && start_stack(d, &d->cfg, err, sizeof(err)) != 0)
        node_log(&d->log, BASE_LOG_ERROR, "netstack_failed", "err=%s",
                 base_log_quote(q, sizeof(q), err));
    node_metrics_note_listen_error(d, stopped || d->stack ? NULL : err);
    if (!stopped && node_peers_apply(d, had ? &old : NULL) != 0)
        node_log(&d->log, BASE_LOG_ERROR, "peers_apply_failed", "file=%s", d->cfg.file);
    struct node_magicdns_config dc = dns_config(d);
    int rc = node_magicdns_apply(d->dns, &dc);
    if (rc < 0)
        node_log(&d->log, BASE_LOG_ERROR, "dns_config_rejected", "err=%s",
                 base_log_quote(q, sizeof(q), base_strerror(rc)));
    node_log(&d->log, BASE_LOG_INFO, "reloaded", "file=%s peers=%zu", d->cfg.file, d->cfg.n_peers);
    if (had)
        cfg_free(&old);
    node_lifecycle_publish(
        d, &(struct node_event){.kind = NODE_EVENT_CONFIG_APPLIED, .detail = d->cfg.file});
    node_lifecycle_set(d, stopped ? NODE_LC_STOPPED : NODE_LC_RUNNING);
    return 0;
}

static void on_reload_timer(uv_timer_t *t)
{
    reload(t->data, true);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    struct node_daemon *d = s->data;
    node_log(&d->log, BASE_LOG_INFO, "signal", "name=SIGHUP action=reload");
    uv_timer_stop(&d->reload_timer); /* this reload reads the edit that started it */
    reload(d, false);
}

static void on_config_changed(uv_fs_event_t *h, const char *filename, int events, int status)
{
    (void)events;
    struct node_daemon *d = h->data;
    char copy[sizeof(d->config_path)];
    snprintf(copy, sizeof(copy), "%s", d->config_path);
    if (status != 0 || !filename || strcmp(filename, basename(copy)) != 0)
        return;
    /* Editors write in several steps: reload once they are done. */
    uv_timer_start(&d->reload_timer, on_reload_timer, RELOAD_DEBOUNCE_MS, 0);
}

static void watch_config(struct node_daemon *d)
{
    char dir[sizeof(d->config_path)];
    snprintf(dir, sizeof(dir), "%s", d->config_path);
    if (uv_fs_event_init(d->loop, &d->watch) != 0)
        return;
    d->watch.data = d;
    d->watching = uv_fs_event_start(&d->watch, on_config_changed, dirname(dir), 0) == 0;
    if (!d->watching)
        uv_close((uv_handle_t *)&d->watch, NULL);
}

/* ---- shutdown ---- */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_engine_closed(void *ctx)
{
    (void)ctx;
}

/* Phase 2 of stopping: with the proxies gone, nothing needs the mesh any more. */
static void finish_stop(struct node_daemon *d)
{
    node_drain_free(d);
    uv_close((uv_handle_t *)&d->stop_timer, on_handle_closed);
    node_memory_close(d);
    node_peers_stop(d);
    stop_stack(d);
    node_magicdns_close(d->dns, NULL, NULL);
    d->dns = NULL;
    if (d->engine) {
        wg_engine_close(d->engine, on_engine_closed, d);
        d->engine = NULL;
    }
    node_dialer_close(&d->dialer);
    node_metrics_close(d);
    if (d->watching)
        uv_close((uv_handle_t *)&d->watch, on_handle_closed);
    uv_close((uv_handle_t *)&d->reload_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->reresolve_timer, on_handle_closed);
    uv_close((uv_handle_t *)&d->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&d->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&d->sig_hup, on_handle_closed);
    node_lifecycle_close(d);
    sodium_memzero(d->private_key, WG_KEY_LEN);
    node_log(&d->log, BASE_LOG_INFO, "stopped", NULL);
}

/* Phase 1: listeners close at once, open connections get DRAIN_MS to finish (drain.c). */
void node_daemon_stop(struct node_daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    node_log(&d->log, BASE_LOG_INFO, "stopping", NULL);
    node_lifecycle_shutdown(d); /* watchers get their last line before the API closes */
    if (d->api)
        node_localapi_close(d->api, NULL, NULL);
    d->api = NULL;
    node_drain_start(d, DRAIN_MS, finish_stop);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct node_daemon *d = s->data;
    if (d->stopping) {
        /* A second signal: the user does not want to wait. */
        _exit(1);
    }
    node_log(&d->log, BASE_LOG_INFO, "signal", "name=%s action=stop",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
    node_daemon_stop(d);
}

static void init_handles(struct node_daemon *d)
{
    uv_signal_init(d->loop, &d->sig_int);
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_hup);
    uv_timer_init(d->loop, &d->reload_timer);
    uv_timer_init(d->loop, &d->reresolve_timer);
    uv_timer_init(d->loop, &d->stop_timer);
    d->stop_timer.data = d;
    d->sig_int.data = d->sig_term.data = d->sig_hup.data = d;
    d->reload_timer.data = d->reresolve_timer.data = d;
    base_list_init(&d->publish_conns);
    base_list_init(&d->ping_waits);
}

static int resolve_config_path(struct node_daemon *d);

/* ---- --check ---- */

static void print_warning(void *arg, const char *line)
{
    (void)arg;
    printf("warning: %s\n", line);
}

static void print_notice(void *arg, const char *line)
{
    (void)arg;
    printf("notice: %s\n", line);
}

static void log_plan_notice(void *arg, const char *line)
{
    struct node_daemon *d = arg;
    char q[512];
    node_log(&d->log, BASE_LOG_INFO, "wireproxy_section", "msg=%s",
             base_log_quote(q, sizeof(q), line));
}

static void log_plan_warning(void *arg, const char *line)
{
    struct node_daemon *d = arg;
    char q[512];
    node_log(&d->log, BASE_LOG_WARN, "listener_warning", "msg=%s",
             base_log_quote(q, sizeof(q), line));
}

int node_check(struct node_options *opts)
{
    struct node_daemon d;
    char err[512];
    int code = 0;

    memset(&d, 0, sizeof(d));
    d.opts = *opts;
    if (node_state_dir(d.opts.state_dir, d.state_dir, sizeof(d.state_dir)) != 0)
        snprintf(d.state_dir, sizeof(d.state_dir), ".");
    resolve_config_path(&d);
    if (!d.opts.config_path && !d.opts.netmap_path && access(d.config_path, F_OK) != 0) {
        fprintf(stderr, "tunless up: --check: no configuration (give --config or --netmap)\n");
        code = 2;
    } else if (load_config(&d, &d.cfg, err, sizeof(err)) != 0 ||
               node_plan_merge(&d.opts, &d.cfg, print_notice, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless up: %s\n", err);
        cfg_free(&d.cfg);
        code = 2;
    } else {
        for (size_t i = 0; i < d.opts.n_warnings; i++)
            printf("warning: %s\n", d.opts.warnings[i]);
        for (size_t i = 0; i < d.cfg.n_warnings; i++)
            printf("warning: %s\n", d.cfg.warnings[i]);
        node_plan_check(&d.opts, print_warning, NULL);
        printf("%s: ok: %zu address(es), %zu peer(s), listen port %u, MTU %u\n", d.cfg.file,
               d.cfg.n_addresses, d.cfg.n_peers, d.cfg.listen_port, d.cfg.mtu);
        node_plan_print(stdout, &d.opts, &d.cfg);
        cfg_free(&d.cfg);
    }
    node_options_free(&d.opts);
    return code;
}

/* ---- start ---- */

static int resolve_config_path(struct node_daemon *d)
{
    const char *given = d->opts.config_path ? d->opts.config_path : d->opts.netmap_path;
    if (given)
        return snprintf(d->config_path, sizeof(d->config_path), "%s", given) <
                       (int)sizeof(d->config_path)
                   ? 0
                   : -1;
    /* With neither file, a wg-quick file dropped into the state directory later is picked up. */
    snprintf(d->config_path, sizeof(d->config_path), "%s/%s", d->state_dir, NODE_CONFIG_IN_STATE);
    return 0;
}

/* Everything that can fail because of the user's input happens here, before anything is
 * served: a failure returns 2 with one message and leaves nothing listening. */
static int bring_up(struct node_daemon *d, char *err, size_t errlen)
{
    bool given = d->opts.config_path || d->opts.netmap_path;
    if (node_state_dir(d->opts.state_dir, d->state_dir, sizeof(d->state_dir)) != 0) {
        snprintf(err, errlen, "no state directory: give --state-dir or set HOME");
        return -1;
    }
    node_lifecycle_load_prefs(d);
    bool run = d->life.prefs.want_running; /* else Stopped: the data plane waits */
    d->dialer.stopped = !run;
    if (!d->have_config) /* else given from memory: no file to read, watch or reload */
        resolve_config_path(d);
    if (!d->have_config && (given || access(d->config_path, F_OK) == 0)) {
        if (load_config(d, &d->cfg, err, errlen) != 0)
            return -1;
        d->have_config = true;
    }
    if (!d->have_config && !given && node_netmap_resume(d, &d->have_config, err, errlen) != 0)
        return -1;
    if (d->have_config) {
        log_warnings(d, &d->cfg);
        if (node_plan_merge(&d->opts, &d->cfg, log_plan_notice, d, err, errlen) != 0)
            return -1;
    }
    /* after the merge: wireproxy's [TCPServerTunnel] sections add publishes */
    d->publish_ctx = calloc(d->opts.n_publishes + 1, sizeof(*d->publish_ctx));
    if (!d->publish_ctx) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (choose_key(d, d->have_config ? &d->cfg : NULL, err, errlen) != 0)
        return -1;
    if (start_engine_on_port(d, err, errlen) != 0)
        return -1;
    d->dialer.is_mesh = is_mesh;
    d->dialer.is_mesh_ctx = d;
    d->dialer.peer_of = peer_of;
    d->dialer.connect_timeout_ms = d->opts.connect_timeout_ms;
    d->dialer.direct.connect_timeout_ms = node_dialer_timeout_ms(&d->dialer);
    struct node_magicdns_config dc = dns_config(d);
    int rc = node_magicdns_new(d->loop, &dc, &d->dns);
    if (rc < 0) {
        if (d->opts.dns_listen_on) {
            char ep[BASE_ENDPOINT_STRLEN];
            snprintf(err, errlen,
                     "MagicDNS listener %s: %s (choose another address with "
                     "--dns-listen)",
                     base_endpoint_format(&d->opts.dns_listen, ep, sizeof(ep)), base_strerror(rc));
        } else {
            snprintf(err, errlen, "MagicDNS: %s", base_strerror(rc));
        }
        return -1;
    }
    d->dialer.resolver = node_magicdns_proxy_resolver(d->dns);
    char addr[BASE_ADDR_STRLEN];
    if (d->opts.dns_listen_on)
        node_log(&d->log, BASE_LOG_INFO, "listening", "service=dns addr=%s port=%u",
                 base_addr_format(&d->opts.dns_listen.addr, addr, sizeof(addr)),
                 d->opts.dns_listen.port);
    if (d->have_config && run && start_stack(d, &d->cfg, err, errlen) != 0)
        return -1;
    node_plan_check(&d->opts, log_plan_warning, d);
    if (start_proxies(d, err, errlen) != 0 || start_forwards(d, err, errlen) != 0 ||
        node_metrics_start(d, err, errlen) != 0)
        return -1;
    if (d->have_config && run && node_peers_apply(d, NULL) != 0) {
        snprintf(err, errlen, "%s: the engine refused a peer", d->cfg.file);
        return -1;
    }
    return 0;
}

int node_daemon_start(struct node_daemon *d, uv_loop_t *loop, struct node_options *opts)
{
    return node_daemon_start_config(d, loop, opts, NULL);
}

int node_daemon_start_config(struct node_daemon *d, uv_loop_t *loop, struct node_options *opts,
                             struct cfg_config *cfg)
{
    char err[512];
    memset(d, 0, sizeof(*d));
    d->loop = loop;
    d->opts = *opts; /* takes ownership of the option strings */
    d->log = (struct node_log){
        .level = opts->log_level, .out = stderr, .node = opts->log_node, .json = opts->log_json};
    init_handles(d);
    node_lifecycle_init(d);
    node_dialer_init(&d->dialer, loop);
    node_memory_init(d);
    if (cfg) {
        d->cfg = *cfg;
        d->have_config = true;
        memset(cfg, 0, sizeof(*cfg));
    }
    char q[512];
    for (size_t i = 0; i < d->opts.n_warnings; i++)
        node_log(&d->log, BASE_LOG_WARN, "env_warning", "msg=%s",
                 base_log_quote(q, sizeof(q), d->opts.warnings[i]));

    if (bring_up(d, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless up: %s\n", err);
        d->exit_code = 2;
        node_daemon_stop(d);
        return -1;
    }
    uv_signal_start(&d->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&d->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&d->sig_hup, on_sighup, SIGHUP);
    if (d->config_path[0])
        watch_config(d);

    uint8_t pub[WG_KEY_LEN];
    char b64[WG_KEY_B64_LEN + 1];
    wg_engine_public_key(d->engine, pub);
    wg_key_to_base64(b64, pub);
    node_log(&d->log, BASE_LOG_INFO, "up", "public_key=%s port=%u peers=%zu config=%s", b64,
             wg_engine_port(d->engine), d->cfg.n_peers, d->have_config ? d->cfg.file : "none");
    if (!d->have_config)
        print_peer_block(d);
    node_lifecycle_started(d);
    return 0;
}
