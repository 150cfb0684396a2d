/*
 * Shutdown's drain (drain.c): the listeners close, open connections get a grace period, then
 * whatever is left is reset. Internal to node/.
 */
#ifndef TUNLESS_NODE_DRAIN_H
#define TUNLESS_NODE_DRAIN_H

#include "daemon.h"

/* Stops every proxy, --forward and --publish listener from taking connections and lets the open
 * ones finish for grace_ms (d->stop_timer); then resets the rest. on_drained(d) runs once all
 * are gone (perhaps from inside this call) and must call node_drain_free. */
void node_drain_start(struct node_daemon *d, unsigned grace_ms,
                      void (*on_drained)(struct node_daemon *d));
void node_drain_free(struct node_daemon *d);

#endif
