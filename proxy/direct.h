/* The direct dialer's two halves meet here. Internal to proxy/. */
#ifndef TUNLESS_PROXY_DIRECT_H
#define TUNLESS_PROXY_DIRECT_H

#include "proxy.h"

/* direct_dgram.c: the direct dialer's dgram_open (ctx is the struct proxy_direct). */
struct proxy_dgram *proxy_direct_dgram_open(void *ctx, const struct proxy_dgram_cbs *cbs, void *ud);

/* direct_stream.c: whether an accepted client's socket gets keepalive (PROXY_KEEPALIVE_*). Not
 * for a client on loopback: its kernel closes the socket when it dies, so keepalive would only
 * cost four system calls on the way to its first reply. */
bool proxy_direct_accept_keepalive(const struct base_endpoint *client);

#endif
