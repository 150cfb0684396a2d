/*
 * The node's lifecycle: one state, its preferences, and the events others follow.
 *
 *   NeedsConfig  the node runs with no configuration yet (the keyless first start)
 *   Starting     a configuration is being applied
 *   Running      applied: the data plane and the listeners are up
 *   Stopped      want_running is false: peers removed, netstack closed, keys and configuration
 *                kept; the proxies stay bound and refuse every request with "the node is
 *                stopped" (BASE_ESTOPPED: SOCKS5 reply 1, HTTP 503)
 *
 * node_lifecycle_set() is the one place the state changes: it logs `event=state from= to=` and
 * tells every subscriber. Subscribers (the watch stream, sd_notify, readiness) also hear peer
 * events (added, removed, changed, handshake completed or lost, found by polling the engine
 * once a second), configurations applied or rejected, preference changes and the shutdown.
 * A subscriber's callback runs on the loop, inside the call that caused the event: it must not
 * block, and may unsubscribe itself (not others).
 *
 * Internal to node/: the functions take the daemon whose `life` this is.
 */
#ifndef TUNLESS_NODE_LIFECYCLE_H
#define TUNLESS_NODE_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"
#include "key.h"
#include "prefs.h"

enum node_lc_state {
    NODE_LC_NEEDS_CONFIG = 0,
    NODE_LC_STARTING,
    NODE_LC_RUNNING,
    NODE_LC_STOPPED,
};

enum node_event_kind {
    NODE_EVENT_STATE,           /* from -> to */
    NODE_EVENT_PEER_ADDED,      /* peer, peer_name */
    NODE_EVENT_PEER_REMOVED,    /* peer */
    NODE_EVENT_PEER_CHANGED,    /* peer, peer_name */
    NODE_EVENT_HANDSHAKE,       /* peer: a handshake completed */
    NODE_EVENT_HANDSHAKE_LOST,  /* peer: its session expired and no new handshake came */
    NODE_EVENT_CONFIG_APPLIED,  /* detail: the configuration's file */
    NODE_EVENT_CONFIG_REJECTED, /* detail: the error */
    NODE_EVENT_PREFS,           /* the preferences changed (d->life.prefs) */
    NODE_EVENT_HEALTH,          /* detail: a health item that appeared or cleared */
    NODE_EVENT_SHUTDOWN,        /* the process is stopping: the last event */
};

struct node_event {
    enum node_event_kind kind;
    enum node_lc_state from, to; /* NODE_EVENT_STATE */
    const uint8_t *peer;         /* WG_KEY_LEN bytes: the peer's public key, or NULL */
    const char *peer_name;       /* NULL when the peer has no name */
    const char *detail;          /* NULL, or the file / error text (health: the message) */
    const char *code;            /* NODE_EVENT_HEALTH: the item's code (health.c) */
    bool cleared;                /* NODE_EVENT_HEALTH: the item went away */
};

struct node_subscriber {
    struct base_list link;
    void (*on_event)(struct node_subscriber *s, const struct node_event *ev);
};

struct node_peer_seen; /* lifecycle.c: what the last poll saw of one peer */

struct node_lifecycle {
    enum node_lc_state state;
    struct node_prefs prefs;  /* in effect: the stored ones, with flags given at start on top */
    struct node_prefs stored; /* STATE_DIR/prefs.json as it is */
    struct base_list subscribers;
    struct node_subscriber notify; /* sd_notify, when $NOTIFY_SOCKET is set */
    bool notified_ready;
    uv_timer_t poll; /* handshakes: compares the engine's peers with `seen` once a second */
    struct node_peer_seen *seen;
    size_t n_seen;
    bool shut_down;
};

struct node_daemon;

const char *node_lc_state_name(enum node_lc_state s); /* "NeedsConfig", "Running", ... */
const char *node_event_name(enum node_event_kind k);  /* "state", "peer_added", ... */

/* Before anything starts: state Starting, no subscribers, the poll timer on d->loop. */
void node_lifecycle_init(struct node_daemon *d);
/* Reads STATE_DIR/prefs.json (a corrupted file is logged and renamed aside; defaults are used),
 * lays the flags given at start over it (logged) and applies log_level and outbound. Never
 * fails: a node with no usable preferences runs on the defaults. */
void node_lifecycle_load_prefs(struct node_daemon *d);
/* Start-up is done: NeedsConfig, Stopped or Running as the configuration and want_running say. */
void node_lifecycle_started(struct node_daemon *d);

enum node_lc_state node_lifecycle_state(const struct node_daemon *d);
/* The one transition function: logs, tells subscribers; nothing when to is the current state. */
void node_lifecycle_set(struct node_daemon *d, enum node_lc_state to);

/* Changes the fields of mask (NODE_PREF_*) to next's values, applies them at once (want_running
 * stops or resumes the data plane), stores them in prefs.json, tells subscribers. Returns 0, or
 * -1 with err when prefs.json cannot be written (the change is then not applied). */
int node_lifecycle_set_prefs(struct node_daemon *d, const struct node_prefs *next, unsigned mask,
                             char *err, size_t errlen);

void node_lifecycle_subscribe(struct node_daemon *d, struct node_subscriber *s);
void node_lifecycle_unsubscribe(struct node_subscriber *s);
/* For the daemon's parts (peers.c, reloads): tell subscribers. */
void node_lifecycle_publish(struct node_daemon *d, const struct node_event *ev);

/* Shutdown has begun: NODE_EVENT_SHUTDOWN to subscribers (once), the poll stops. */
void node_lifecycle_shutdown(struct node_daemon *d);
/* The last step of shutdown: closes the poll timer and frees what the lifecycle holds. */
void node_lifecycle_close(struct node_daemon *d);

/* lifecycle_api.c: GET /v0/prefs, PATCH /v0/prefs (a write), GET /v0/watch[?stats=SECONDS] on
 * the local API server. 0, or the server's error. */
struct node_http_server;
int node_lifecycle_api_routes(struct node_daemon *d, struct node_http_server *s);

/* notify.c: sd_notify without libsystemd. Sends msg ("READY=1\nSTATUS=...") as one datagram to
 * $NOTIFY_SOCKET (a path, or '@' for an abstract socket); 0 when sent or when the variable is
 * unset, else a negative errno. Never blocks. */
int node_notify_send(const char *msg);
/* Subscribes sd_notify to d's events: READY=1 once start-up settles (now, if it has), STATUS=
 * on every transition, STOPPING=1 on shutdown. Does nothing without $NOTIFY_SOCKET. Called
 * once everything serves, the local API included. */
void node_notify_start(struct node_daemon *d);

#endif
