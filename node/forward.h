/*
 * --forward tcp:127.0.0.1:15432=db:5432: a local listener whose connections go to a mesh
 * destination (for programs that cannot use a proxy). --forward udp:127.0.0.1:5300=db:53 does
 * the same for datagrams: each client address is a session, ended after PROXY_UDP_IDLE_MS of
 * silence. The target is reached through the node's dialer, so names resolve through MagicDNS
 * and the outbound policy applies. The relaying itself is proxy/'s (proxy_relay,
 * proxy_udp_relay); this file only listens.
 * Owned by the daemon; node_forward_close frees it in its handles' close callbacks.
 */
#ifndef TUNLESS_NODE_FORWARD_H
#define TUNLESS_NODE_FORWARD_H

#include <uv.h>

#include "dialer.h"
#include "options.h"

struct node_forward_listener;

/* What TCP relays get (env may be NULL: no idle timeout, no log). */
struct node_forward_env {
    unsigned idle_timeout_ms; /* --idle-timeout; 0 = never */
    struct base_logger logger;
};

/* Binds spec->listen. Returns NULL with a message in err. */
struct node_forward_listener *node_forward_start(uv_loop_t *loop, struct node_dialer *dialer,
                                                 const struct node_forward *spec,
                                                 const struct node_forward_env *env, char *err,
                                                 size_t errlen);
/* Stops listening; open TCP connections finish by themselves, UDP sessions end. */
void node_forward_close(struct node_forward_listener *f);
/* The same, with on_closed (may be NULL) once f is freed; until then node_forward_cut resets the
 * TCP connections still open (shutdown's drain time is over). */
void node_forward_drain(struct node_forward_listener *f, void (*on_closed)(void *arg), void *arg);
void node_forward_cut(struct node_forward_listener *f);
/* The port actually bound (a listen port 0 takes any), or a negative libuv error. */
int node_forward_port(const struct node_forward_listener *f);

#endif
