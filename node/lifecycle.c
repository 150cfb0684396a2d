/*
 * The node's lifecycle (lifecycle.h). Flow: init (Starting) -> load_prefs (prefs.json, flags on
 * top) -> started (NeedsConfig / Stopped / Running) -> set on every later change (reloads,
 * want_running) -> shutdown -> close. Handshakes are found by polling the engine once a second
 * (poll -> compare with what the last poll saw -> publish), so the engine needs no callback.
 */
#include "lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "metrics.h"
#include "state.h"

#define POLL_MS 1000

struct node_peer_seen {
    uint8_t key[WG_KEY_LEN];
    uint64_t last_handshake_wall_ns;
    bool has_session;
};

const char *node_lc_state_name(enum node_lc_state s)
{
    switch (s) {
    case NODE_LC_NEEDS_CONFIG:
        return "NeedsConfig";
    case NODE_LC_STARTING:
        return "Starting";
    case NODE_LC_RUNNING:
        return "Running";
    case NODE_LC_STOPPED:
        return "Stopped";
    }
    return "Unknown";
}

const char *node_event_name(enum node_event_kind k)
{
    static const char *const names[] = {
        [NODE_EVENT_STATE] = "state",
        [NODE_EVENT_PEER_ADDED] = "peer_added",
        [NODE_EVENT_PEER_REMOVED] = "peer_removed",
        [NODE_EVENT_PEER_CHANGED] = "peer_changed",
        [NODE_EVENT_HANDSHAKE] = "handshake",
        [NODE_EVENT_HANDSHAKE_LOST] = "handshake_lost",
        [NODE_EVENT_CONFIG_APPLIED] = "config_applied",
        [NODE_EVENT_CONFIG_REJECTED] = "config_rejected",
        [NODE_EVENT_PREFS] = "prefs",
        [NODE_EVENT_HEALTH] = "health",
        [NODE_EVENT_SHUTDOWN] = "shutdown",
    };
    return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}

void node_lifecycle_init(struct node_daemon *d)
{
    struct node_lifecycle *lc = &d->life;
    lc->state = NODE_LC_STARTING;
    node_prefs_default(&lc->prefs);
    lc->stored = lc->prefs;
    base_list_init(&lc->subscribers);
    uv_timer_init(d->loop, &lc->poll);
    lc->poll.data = d;
    node_log(&d->log, BASE_LOG_INFO, "state", "from=- to=%s", node_lc_state_name(lc->state));
}

/* Settings that take effect without a restart: the log level and where non-mesh traffic goes. */
static void apply_settings(struct node_daemon *d)
{
    d->log.level = d->life.prefs.log_level;
    d->dialer.tunnel_only = d->life.prefs.outbound == NODE_OUTBOUND_TUNNEL_ONLY;
}

void node_lifecycle_load_prefs(struct node_daemon *d)
{
    struct node_lifecycle *lc = &d->life;
    char err[1024], q[1100];
    int rc = node_prefs_load(d->state_dir, &lc->stored, err, sizeof(err));
    if (rc < 0)
        node_log(&d->log, BASE_LOG_ERROR, "prefs_corrupt", "err=%s action=defaults",
                 base_log_quote(q, sizeof(q), err));
    lc->prefs = lc->stored;
    const struct node_options *o = &d->opts;
    if (o->given.log_level && o->log_level != lc->stored.log_level) {
        lc->prefs.log_level = o->log_level;
        node_log(&d->log, BASE_LOG_WARN, "prefs_override", "pref=log_level stored=%s flag=%s",
                 base_log_level_name(lc->stored.log_level), base_log_level_name(o->log_level));
    }
    if (o->given.outbound && o->outbound != lc->stored.outbound) {
        lc->prefs.outbound = o->outbound;
        node_log(&d->log, BASE_LOG_WARN, "prefs_override", "pref=outbound stored=%s flag=%s",
                 node_outbound_name(lc->stored.outbound), node_outbound_name(o->outbound));
    }
    apply_settings(d);
    node_log(&d->log, BASE_LOG_INFO, "prefs", "source=%s want_running=%s log_level=%s outbound=%s",
             rc == 0 ? "file" : "defaults", lc->prefs.want_running ? "true" : "false",
             base_log_level_name(lc->prefs.log_level), node_outbound_name(lc->prefs.outbound));
}

enum node_lc_state node_lifecycle_state(const struct node_daemon *d)
{
    return d->life.state;
}

void node_lifecycle_publish(struct node_daemon *d, const struct node_event *ev)
{
    struct base_list *pos, *tmp;
    base_list_foreach_safe (pos, tmp, &d->life.subscribers) {
        struct node_subscriber *s = container_of(pos, struct node_subscriber, link);
        s->on_event(s, ev);
    }
}

static void poll_peers(uv_timer_t *t);

void node_lifecycle_set(struct node_daemon *d, enum node_lc_state to)
{
    struct node_lifecycle *lc = &d->life;
    enum node_lc_state from = lc->state;
    if (from == to)
        return;
    lc->state = to;
    node_log(&d->log, BASE_LOG_INFO, "state", "from=%s to=%s", node_lc_state_name(from),
             node_lc_state_name(to));
    if (to == NODE_LC_RUNNING && !lc->shut_down)
        uv_timer_start(&lc->poll, poll_peers, POLL_MS, POLL_MS);
    node_lifecycle_publish(d,
                           &(struct node_event){.kind = NODE_EVENT_STATE, .from = from, .to = to});
}

void node_lifecycle_started(struct node_daemon *d)
{
    if (!d->have_config)
        node_lifecycle_set(d, NODE_LC_NEEDS_CONFIG);
    else if (!d->life.prefs.want_running)
        node_lifecycle_set(d, NODE_LC_STOPPED);
    else
        node_lifecycle_set(d, NODE_LC_RUNNING);
}

/* want_running changed: the data plane goes, or comes back with the kept configuration. */
static void apply_want_running(struct node_daemon *d)
{
    struct node_lifecycle *lc = &d->life;
    if (!lc->prefs.want_running && lc->state != NODE_LC_STOPPED) {
        node_daemon_pause(d);
        free(lc->seen); /* the peers are gone: their sessions are not "lost" when they return */
        lc->seen = NULL;
        lc->n_seen = 0;
        node_lifecycle_set(d, NODE_LC_STOPPED);
    } else if (lc->prefs.want_running && lc->state == NODE_LC_STOPPED) {
        if (!d->have_config) {
            node_daemon_resume(d); /* the proxies serve direct destinations again */
            node_lifecycle_set(d, NODE_LC_NEEDS_CONFIG);
            return;
        }
        node_lifecycle_set(d, NODE_LC_STARTING);
        node_daemon_resume(d);
        node_lifecycle_set(d, NODE_LC_RUNNING);
    }
}

int node_lifecycle_set_prefs(struct node_daemon *d, const struct node_prefs *next, unsigned mask,
                             char *err, size_t errlen)
{
    struct node_lifecycle *lc = &d->life;
    struct node_prefs stored = lc->stored, now = lc->prefs;
#define TAKE(bit, f)        \
    if (mask & (bit)) {     \
        stored.f = next->f; \
        now.f = next->f;    \
    }
    TAKE(NODE_PREF_WANT_RUNNING, want_running)
    TAKE(NODE_PREF_LOG_LEVEL, log_level)
    TAKE(NODE_PREF_OUTBOUND, outbound)
    TAKE(NODE_PREF_SHIELDS_UP, shields_up)
#undef TAKE
    if (node_state_make_dir(d->state_dir, err, errlen) != 0 ||
        node_prefs_save(d->state_dir, &stored, err, errlen) != 0)
        return -1;
    lc->stored = stored;
    lc->prefs = now;
    apply_settings(d);
    node_log(&d->log, BASE_LOG_INFO, "prefs_changed",
             "want_running=%s log_level=%s outbound=%s shields_up=%s",
             now.want_running ? "true" : "false", base_log_level_name(now.log_level),
             node_outbound_name(now.outbound), now.shields_up ? "true" : "false");
    if ((mask & NODE_PREF_SHIELDS_UP) && now.shields_up)
        node_log(&d->log, BASE_LOG_WARN, "prefs_warning", "pref=shields_up reason=%s",
                 "not_enforced_yet");
    apply_want_running(d);
    node_lifecycle_publish(d, &(struct node_event){.kind = NODE_EVENT_PREFS});
    return 0;
}

void node_lifecycle_subscribe(struct node_daemon *d, struct node_subscriber *s)
{
    base_list_push_back(&d->life.subscribers, &s->link);
}

void node_lifecycle_unsubscribe(struct node_subscriber *s)
{
    base_list_remove(&s->link);
}

/* ---- handshakes ---- */

struct poll_ctx {
    struct node_daemon *d;
    struct node_peer_seen *now;
    size_t n;
};

static const char *peer_name(const struct node_daemon *d, const uint8_t *key)
{
    for (size_t i = 0; d->have_config && i < d->cfg.n_peers; i++)
        if (wg_key_equal(d->cfg.peers[i].public_key, key))
            return d->cfg.peers[i].name;
    return NULL;
}

static const struct node_peer_seen *find_seen(const struct node_lifecycle *lc, const uint8_t *key)
{
    for (size_t i = 0; i < lc->n_seen; i++)
        if (wg_key_equal(lc->seen[i].key, key))
            return &lc->seen[i];
    return NULL;
}

static void compare_peer(void *arg, const struct wg_peer_stats *st)
{
    struct poll_ctx *pc = arg;
    struct node_lifecycle *lc = &pc->d->life;
    const struct node_peer_seen *was = find_seen(lc, st->public_key);
    struct node_peer_seen *now = &pc->now[pc->n++];
    memcpy(now->key, st->public_key, WG_KEY_LEN);
    now->last_handshake_wall_ns = st->last_handshake_wall_ns;
    now->has_session = st->has_session;
    struct node_event ev = {.peer = st->public_key, .peer_name = peer_name(pc->d, st->public_key)};
    uint64_t before = was ? was->last_handshake_wall_ns : 0;
    if (st->last_handshake_wall_ns && st->last_handshake_wall_ns != before)
        ev.kind = NODE_EVENT_HANDSHAKE;
    else if (was && was->has_session && !st->has_session)
        ev.kind = NODE_EVENT_HANDSHAKE_LOST;
    else
        return;
    node_lifecycle_publish(pc->d, &ev);
}

static void count_peer(void *arg, const struct wg_peer_stats *st)
{
    (void)st;
    (*(size_t *)arg)++;
}

static void poll_peers(uv_timer_t *t)
{
    struct node_daemon *d = t->data;
    struct node_lifecycle *lc = &d->life;
    if (!d->engine || lc->state == NODE_LC_STOPPED || lc->shut_down) {
        uv_timer_stop(t);
        return;
    }
    node_health_poll(d); /* health.c: items that appeared or cleared */
    size_t n = 0;
    wg_engine_foreach_peer(d->engine, count_peer, &n);
    struct poll_ctx pc = {.d = d, .now = calloc(n + 1, sizeof(*pc.now))};
    if (!pc.now)
        return;
    wg_engine_foreach_peer(d->engine, compare_peer, &pc);
    free(lc->seen);
    lc->seen = pc.now;
    lc->n_seen = pc.n;
}

/* ---- shutdown ---- */

void node_lifecycle_shutdown(struct node_daemon *d)
{
    struct node_lifecycle *lc = &d->life;
    if (lc->shut_down)
        return;
    lc->shut_down = true;
    uv_timer_stop(&lc->poll);
    node_lifecycle_publish(d, &(struct node_event){.kind = NODE_EVENT_SHUTDOWN});
}

static void on_poll_closed(uv_handle_t *h)
{
    (void)h;
}

void node_lifecycle_close(struct node_daemon *d)
{
    struct node_lifecycle *lc = &d->life;
    node_lifecycle_shutdown(d);
    uv_close((uv_handle_t *)&lc->poll, on_poll_closed);
    free(lc->seen);
    lc->seen = NULL;
    lc->n_seen = 0;
}
