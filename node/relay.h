/*
 * Joins two proxy streams: bytes flow both ways with backpressure, one side's FIN reaches the
 * other, an error or reset on one side resets the other, and both are closed once both
 * directions are done. The relay owns both streams and frees itself after their on_close.
 * Used by --publish (a peer's connection to a host service).
 */
#ifndef TUNLESS_NODE_RELAY_H
#define TUNLESS_NODE_RELAY_H

#include "proxy.h"

struct node_relay;

/* Side 0 is usually the accepted connection, side 1 the one being dialed. The streams are
 * created by the caller with node_relay_cbs and node_relay_side(r, i) as their user data. */
struct node_relay *node_relay_new(void);
extern const struct proxy_stream_cbs node_relay_cbs;
void *node_relay_side(struct node_relay *r, int i);
/* Hands the streams over. stream[0] must be connected; stream[1] reports on_connect. Either
 * may be NULL (out of memory): the other is then closed and the relay frees itself. */
void node_relay_start(struct node_relay *r, struct proxy_stream *s0, struct proxy_stream *s1);

#endif
