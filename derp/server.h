/*
 * The server's private state, shared by its files: server.c (lifecycle, listener, tick),
 * conn.c (one client connection's state machine), registry.c (who is connected, routing,
 * PeerGone/PeerPresent bookkeeping), mesh.c (links to other servers), metrics.c.
 */
#ifndef TUNLESS_DERP_SERVER_H
#define TUNLESS_DERP_SERVER_H

#include <openssl/ssl.h>

#include "derp.h"
#include "http.h"
#include "keymap.h"
#include "link.h"
#include "login.h"
#include "stun.h"

/* Every counter once: name, help. metrics.c prints them; the code bumps ctr.NAME. */
#define DERP_COUNTERS(X)                                                                   \
    X(accepts, "TCP connections accepted")                                                 \
    X(http_requests, "HTTP requests answered without an upgrade")                          \
    X(http_bad, "malformed or oversized HTTP requests")                                    \
    X(upgrades, "connections upgraded to DERP")                                            \
    X(logins, "clients logged in")                                                         \
    X(login_timeouts, "connections closed for not finishing the login in time")            \
    X(login_bad_frame, "logins whose first frame was not ClientInfo")                      \
    X(login_bad_box, "ClientInfo boxes that did not open")                                 \
    X(login_bad_version, "ClientInfo with a protocol version other than 2")                \
    X(login_bad_json, "ClientInfo whose JSON did not parse")                               \
    X(login_too_large, "ClientInfo frames over the size cap")                              \
    X(login_refused_verify, "clients refused by --verify-clients")                         \
    X(clients_refused_cap, "clients refused by the cap on clients")                        \
    X(clients_replaced, "connections replaced by a newer one with the same key")           \
    X(replaced_closed, "replaced connections closed because they kept sending")            \
    X(packets_recv, "packets received from clients")                                       \
    X(bytes_recv, "packet bytes received from clients")                                    \
    X(packets_sent, "packets written to clients")                                          \
    X(bytes_sent, "packet bytes written to clients")                                       \
    X(dropped_unknown_dest, "packets dropped: no client with that key")                    \
    X(dropped_fwd_unknown, "forwarded packets dropped: no client with that key")           \
    X(dropped_queue_head, "packets dropped: the client's queue was full (oldest dropped)") \
    X(dropped_gone, "packets dropped: the client went away with them queued")              \
    X(dropped_mesh_queue, "packets dropped: the mesh link's queue was full")               \
    X(forwarded_out, "packets forwarded to another mesh server")                           \
    X(forwarded_in, "packets forwarded in from another mesh server")                       \
    X(peer_gone_frames, "PeerGone frames sent")                                            \
    X(peer_present_frames, "PeerPresent frames sent to watchers")                          \
    X(unknown_frames, "frames of unknown types skipped")                                   \
    X(bad_frames, "malformed or out-of-order frames (connection closed)")                  \
    X(frames_too_large, "frames over the size cap (connection closed)")                    \
    X(mesh_denied, "mesh frames from clients without the mesh key (connection closed)")    \
    X(write_timeouts, "clients dropped for not reading (write timeout)")                   \
    X(send_overflow, "clients dropped for too much queued control output")                 \
    X(rate_limited, "times a client's reading paused on its rate limit")                   \
    X(pings, "Ping frames answered")                                                       \
    X(keepalives, "KeepAlive frames sent")                                                 \
    X(health_frames, "Health frames sent")                                                 \
    X(restarting_frames, "Restarting frames sent")                                         \
    X(close_peer, "ClosePeer frames obeyed")                                               \
    X(mesh_connects, "mesh links logged in to another server")                             \
    X(mesh_failures, "mesh links that failed or dropped")

struct derp_counters {
#define DERP_COUNTER_FIELD(name, help) uint64_t name;
    DERP_COUNTERS(DERP_COUNTER_FIELD)
#undef DERP_COUNTER_FIELD
    struct derp_stun_counters stun;
};

enum derp_conn_state {
    DERP_CONN_HTTP,     /* reading the HTTP request */
    DERP_CONN_LOGIN,    /* ServerKey sent, waiting for ClientInfo */
    DERP_CONN_ACTIVE,   /* logged in, the registry's connection for its key */
    DERP_CONN_REPLACED, /* a newer connection has the key; Health sent */
    DERP_CONN_CLOSING,  /* link closing; no more frames */
};

struct derp_pkt {
    uint8_t src[DERP_KEY_LEN];
    size_t len;
    uint8_t data[];
};

struct derp_conn {
    struct derp_link link;
    struct derp_server *srv;
    struct base_list node;       /* srv->conns */
    struct base_list flush_node; /* srv->to_flush while packets wait in its link's buffer */
    struct base_list watch_node; /* srv->watchers when it sent WatchConns */
    enum derp_conn_state state;
    uint64_t num; /* connection number, for PeerGone bookkeeping */
    uint8_t key[DERP_KEY_LEN];
    bool can_mesh, preferred;
    struct derp_http_req *http; /* only while DERP_CONN_HTTP */
    struct derp_reader rd;
    struct derp_pkt **q; /* ring of limits.queue_depth packets, from login on */
    uint32_t q_head, q_len;
    uint64_t deadline, next_keepalive; /* uv_now ms */
    double tokens;
    char peer[BASE_ENDPOINT_STRLEN];
};

struct derp_mesh_peer;

enum derp_server_state { DERP_SERVER_RUNNING, DERP_SERVER_CLOSING };

struct derp_server {
    uv_loop_t *loop;
    enum derp_server_state state;
    struct derp_limits limits;
    struct base_logger log;
    uint8_t priv[DERP_KEY_LEN], pub[DERP_KEY_LEN];
    char pub_hex[2 * DERP_KEY_LEN + 1];
    char *cert_file, *key_file, *mesh_key, *verify_file;
    SSL_CTX *tls;      /* NULL: plain HTTP */
    SSL_CTX *mesh_tls; /* for https mesh links */
    bool has_listener, has_stun;
    uv_tcp_t listener;
    uv_timer_t tick;
    struct derp_stun stun;
    struct derp_link_shared shared;
    struct base_list conns, watchers;
    struct base_list to_flush;   /* connections given packets during the current read */
    struct derp_keymap clients;  /* key -> struct derp_conn * (ACTIVE) */
    struct derp_keymap remote;   /* key -> struct derp_mesh_peer * that reported it */
    struct derp_keymap sent_to;  /* src key -> struct derp_keymap * of dst key -> conn num */
    struct derp_keymap *allowed; /* --verify-clients; NULL: everyone */
    struct derp_mesh_peer *mesh;
    size_t n_mesh;
    uint64_t next_num;
    uint32_t n_clients, n_home;
    int handles; /* open handles and links; close completes at 0 */
    void (*on_closed)(void *arg);
    void *on_closed_arg;
    struct derp_counters ctr;
};

/* conn.c */
void derp_conn_accept(struct derp_server *s);
/* A connection on a sink link (fuzzing). */
struct derp_conn *derp_conn_new_sink(struct derp_server *s);
int derp_conn_feed(struct derp_conn *c, const uint8_t *p, size_t n);
void derp_conn_close(struct derp_conn *c, const char *why);
void derp_conn_tick(struct derp_conn *c, uint64_t now, double elapsed_s);
/* Appends a control frame (and flushes). Closes the client when too much is queued. */
void derp_conn_send_frame(struct derp_conn *c, const uint8_t *frame, size_t len);
void derp_conn_send_health(struct derp_conn *c, const char *text);
/* Queues a RecvPacket (drops the oldest when full). */
void derp_conn_send_packet(struct derp_conn *c, const uint8_t src[DERP_KEY_LEN], const uint8_t *pkt,
                           size_t len);
void derp_conn_restarting(struct derp_conn *c);

/* registry.c */
/* Makes c the connection for its key; an older one is marked replaced and told by Health. */
int derp_registry_add(struct derp_server *s, struct derp_conn *c);
void derp_registry_remove(struct derp_server *s, struct derp_conn *c);
void derp_registry_watch(struct derp_server *s, struct derp_conn *c);
void derp_route_send(struct derp_server *s, struct derp_conn *from, const uint8_t *dst,
                     const uint8_t *pkt, size_t len);
void derp_route_forwarded(struct derp_server *s, const uint8_t *src, const uint8_t *dst,
                          const uint8_t *pkt, size_t len);
void derp_registry_remote_add(struct derp_server *s, const uint8_t *key, struct derp_mesh_peer *p);
void derp_registry_remote_remove(struct derp_server *s, const uint8_t *key,
                                 struct derp_mesh_peer *p);
void derp_registry_free(struct derp_server *s);
bool derp_registry_allowed(const struct derp_server *s, const uint8_t *key);
/* Reads a verify-clients file into a fresh set. Returns 0 or an error with a sentence. */
int derp_registry_load_allowed(const char *path, struct derp_keymap **out, char *err,
                               size_t errlen);

/* mesh.c */
int derp_mesh_start(struct derp_server *s, const char *mesh_with, bool insecure, char *err,
                    size_t errlen);
/* Appends a ForwardPacket to the peer's link (drops when its queue is full). */
void derp_mesh_forward(struct derp_mesh_peer *p, const uint8_t *src, const uint8_t *dst,
                       const uint8_t *pkt, size_t len);
void derp_mesh_close_all(struct derp_server *s);

/* server.c */
void derp_server_handle_closed(struct derp_server *s);
/* Writes what the current read gave each connection: one write per destination per read. */
void derp_server_flush(struct derp_server *s);
void derp_key_hex(const uint8_t key[DERP_KEY_LEN], char out[2 * DERP_KEY_LEN + 1]);

#endif
