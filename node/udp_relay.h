/*
 * UDP conversations relayed to one fixed target through a proxy_dgram: --forward udp: (host
 * programs -> a mesh destination, through the node's dialer) and --publish udp: (peers -> a
 * host service, through host sockets). A session is one client (a source address, or a
 * netstack flow); it ends after NODE_UDP_IDLE_MS without a datagram either way, or when the
 * owner ends it. The relay owns its sessions; a session frees itself once its dgram and timer
 * are closed, so the relay struct may go away right after node_udp_relay_end_all.
 */
#ifndef TUNLESS_NODE_UDP_RELAY_H
#define TUNLESS_NODE_UDP_RELAY_H

#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy.h"

#define NODE_UDP_IDLE_MS 60000
#define NODE_UDP_SESSIONS_MAX 256 /* per relay; the least recently active gives way */

struct node_udp_relay;

struct node_udp_session {
    struct node_udp_session *prev, *next; /* most recently active first */
    struct node_udp_relay *relay;         /* NULL once ended */
    struct proxy_dgram *dg;
    uv_timer_t idle;
    bool dg_open, timer_open;
    struct sockaddr_storage client; /* where replies go */
    void *client_data;              /* the owner's (a netstack flow), or NULL */
    /* The relay's target; a name is resolved once, by the first datagram, and the session
     * keeps the address (every datagram to one place; replies only from there). */
    struct proxy_target dst;
    struct proxy_name_queue names;
};

struct node_udp_relay {
    uv_loop_t *loop;
    struct proxy_dialer dialer;
    struct proxy_resolver resolver; /* for a target given by name */
    struct proxy_target target;
    /* A datagram from the target, for the session's client. */
    void (*reply)(struct node_udp_relay *r, struct node_udp_session *s, const uint8_t *data,
                  size_t len);
    /* The session ended: release its client side (NULL: nothing to release). */
    void (*release)(struct node_udp_relay *r, struct node_udp_session *s);
    void *ctx;
    struct node_udp_session *sessions;
    size_t n;
};

/* The session of client (compared by address and port), or NULL. */
struct node_udp_session *node_udp_session_find(struct node_udp_relay *r,
                                               const struct sockaddr *client);
/* A new session; NULL when out of memory (the caller keeps client_data). */
struct node_udp_session *node_udp_session_new(struct node_udp_relay *r,
                                              const struct sockaddr *client, void *client_data);
/* A datagram from the client, for the target. */
void node_udp_session_send(struct node_udp_session *s, const uint8_t *data, size_t len);
void node_udp_session_end(struct node_udp_session *s);
void node_udp_relay_end_all(struct node_udp_relay *r);

#endif
