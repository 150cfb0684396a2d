/*
 * The running node (`tunless up`): one struct on one loop owns the engine, the netstack, the
 * proxies and the DNS service, applies configurations (at start and on reload) and shuts them
 * down in order. Internal to node/.
 */
#ifndef TUNLESS_NODE_DAEMON_H
#define TUNLESS_NODE_DAEMON_H

#include <stdbool.h>
#include <sys/stat.h>
#include <uv.h>

#include "config.h"
#include "dialer.h"
#include "engine.h"
#include "lifecycle.h"
#include "log.h"
#include "magicdns.h"
#include "netstack.h"
#include "options.h"
#include "proxy.h"

#define NODE_MAX_LISTENERS 3

struct node_resolve;  /* peers.c: an endpoint name being resolved */
struct node_localapi; /* localapi.c: the local API on its unix socket */
struct node_metrics;  /* metrics.h: metrics, health, --metrics-listen */
struct node_drain;    /* drain.c: shutdown's grace period */
struct node_daemon;

/* What a published port's handlers need. */
struct node_publish_ctx {
    struct node_daemon *d;
    const struct node_publish *p;
    struct proxy_relay *tcp;               /* tcp: one relay connection per peer connection */
    struct proxy_udp_relay *udp;           /* udp: one session per peer flow */
    const struct base_endpoint *accepting; /* the peer end of the conn being relayed now */
};

/* A connection relayed to a published service, as that service sees it: from the host end of
 * the relay's socket to it (what whois is asked for) to the peer's end in the tunnel. In
 * d->publish_conns from connect to close. */
struct node_publish_conn {
    struct base_list link;
    const struct node_publish *p;
    struct base_endpoint local;  /* host side: the service's accepted connection's peer */
    struct base_endpoint from;   /* tunnel side: the peer's address and port */
    struct proxy_stream_cbs cbs; /* the relay's, which this record stands in front of */
    void *ud;
    struct node_daemon *d;
};

struct node_daemon {
    uv_loop_t *loop;
    struct node_options opts;
    struct node_log log;
    struct node_lifecycle life; /* state, prefs, subscribers (lifecycle.h) */
    char state_dir[4096];

    struct cfg_config cfg; /* the applied configuration; zeroed = none yet */
    bool have_config;
    uint8_t private_key[WG_KEY_LEN];
    bool key_from_state;         /* the key is the state directory's (no PrivateKey configured) */
    char config_path[4096 + 64]; /* the file reload reads */

    struct wg_engine *engine;
    struct ns_stack *stack;
    struct base_budget budget; /* --max-memory: netstack and proxies charge what they hold */
    struct node_dialer dialer;
    struct node_magicdns *dns;
    struct node_publish_ctx *publish_ctx;    /* one per opts.publishes[i] */
    struct ns_stack_watch publish_watch;     /* stops publish's relays when the stack closes */
    struct base_list publish_conns;          /* node_publish_conn, for whois */
    struct base_list ping_waits;             /* localapi_tools.c: wireguard pings in flight */
    struct node_forward_listener **forwards; /* one per opts.forwards[i] */
    struct proxy_server *proxies[NODE_MAX_LISTENERS];
    size_t n_proxies;

    struct node_localapi *api;      /* started by `tunless up` after the node, closed by stop */
    struct node_resolve *resolving; /* in flight; each freed by its own callback */
    uv_timer_t reresolve_timer;
    struct node_metrics *metrics;

    uv_signal_t sig_int, sig_term, sig_hup;
    uv_fs_event_t watch;
    bool watching;
    uv_timer_t reload_timer;  /* debounces config file changes */
    struct stat reload_stamp; /* the file as the last reload found it */
    bool reload_stamp_set;
    uv_timer_t stop_timer;    /* ends the drain on shutdown */
    struct node_drain *drain; /* drain.c: while stopping */
    uv_timer_t trim_timer;    /* memory.c: gives freed memory back after a burst */
    unsigned proxies_open;
    unsigned pending_closes;
    bool stopping;
    int exit_code;
};

/* daemon.c */
/* --check: loads and validates the configuration the options name, prints a summary; frees
 * opts. Returns 0, or 2 with the error on stderr. */
int node_check(struct node_options *opts);
int node_daemon_start(struct node_daemon *d, uv_loop_t *loop, struct node_options *opts);
/* The same with the configuration given (parsed from memory: tests, embedders) instead of the
 * file opts names; nothing is read from disk or watched. Takes cfg (and opts) whatever the
 * outcome. */
int node_daemon_start_config(struct node_daemon *d, uv_loop_t *loop, struct node_options *opts,
                             struct cfg_config *cfg);
/* Applies next as a reload applies the file's: unchanged peers keep their sessions, new
 * addresses restart the netstack, DNS follows. Takes next. Returns 0, or -1 (logged) when next
 * needs a restart instead (another PrivateKey or ListenPort). */
int node_daemon_apply(struct node_daemon *d, struct cfg_config *next);
void node_daemon_stop(struct node_daemon *d);
/* The data plane for want_running (lifecycle.c decides when): pause removes the peers and
 * closes the netstack, and the dialer refuses with BASE_ESTOPPED; resume brings both back from
 * the kept configuration. The engine (key, UDP port), proxies and MagicDNS stay. */
void node_daemon_pause(struct node_daemon *d);
void node_daemon_resume(struct node_daemon *d);
/* What SIGHUP does: reads the configuration file again and applies it. on_diff (may be NULL)
 * hears what changes before it is applied. Returns 0, or -1 with the reason in err (logged). */
typedef void (*node_daemon_diff_fn)(void *arg, const struct cfg_diff *diff);
int node_daemon_reload(struct node_daemon *d, node_daemon_diff_fn on_diff, void *arg, char *err,
                       size_t errlen);

/* publish.c: --publish on the stack's tunnel addresses (not on 100.100.100.100); stop ends
 * the UDP sessions, whose flows die with the stack. */
/* memory.c: the budget from --max-memory, and memory given back to the system after a burst. */
void node_memory_init(struct node_daemon *d);
void node_memory_close(struct node_daemon *d);

int node_publish_start(struct node_daemon *d, const struct ns_config *nc, char *err, size_t errlen);
void node_publish_stop(struct node_daemon *d);
/* The relayed connection whose host end is local, or NULL. */
const struct node_publish_conn *node_publish_find(struct node_daemon *d,
                                                  const struct base_endpoint *local);

/* localapi_tools.c: the engine's on_handshake (arg d): answers the wireguard pings waiting. */
void node_localapi_on_handshake(void *arg, const uint8_t public_key[WG_KEY_LEN], uint64_t rtt_ns);

/* peers.c: push cfg's peers into the engine (resolving endpoint names on libuv's thread pool)
 * and keep re-resolving those that go silent. node_peers_apply diffs against old (NULL at
 * start): peers that did not change are not touched, so their sessions survive.
 * node_peers_stop cancels resolutions; their callbacks still run once, and free themselves. */
int node_peers_apply(struct node_daemon *d, const struct cfg_config *old);
void node_peers_stop(struct node_daemon *d);
/* Stopped: every configured peer leaves the engine (logged and published as removed). */
void node_peers_remove_all(struct node_daemon *d);
/* p's `peer=NAME peer_key=KEY8` (base_log_peer) in out; returns out. */
const char *node_log_peer(char out[BASE_LOG_PEER_STRLEN], const struct cfg_peer *p);

#endif
