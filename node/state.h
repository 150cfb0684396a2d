/*
 * The node's state directory: where a node that was given no key keeps the one it generated,
 * and the UDP port it listens on (so the [Peer] block it printed stays valid across restarts).
 * Directory 0700, files 0600, each written atomically so a crash never leaves half a file.
 */
#ifndef TUNLESS_NODE_STATE_H
#define TUNLESS_NODE_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base.h"
#include "key.h"

#define NODE_STATE_KEY_FILE "private.key"
#define NODE_STATE_PORT_FILE "listen-port"
#define NODE_STATE_LOCK_FILE "tunless.lock"
#define NODE_STATE_LOCKED (-2)

/* --state-dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/tunless, else
 * ~/.local/state/tunless. Returns -1 if no home can be found. */
int node_state_dir(const char *flag, char *out, size_t cap);

/* Reads dir/private.key, or creates the directory and a fresh key. *created says which.
 * Returns 0, or -1 with a message naming the path in err. */
int node_state_load_key(const char *dir, uint8_t priv[WG_KEY_LEN], int *created, char *err,
                        size_t errlen);

/* mkdir -p dir, 0700 for what it creates. Returns 0, or -1 with a message naming dir in err. */
int node_state_make_dir(const char *dir, char *err, size_t errlen);

/* Writes dir/name as a whole (temp file, fsync, rename; mode 0600). Returns 0, or -1 with a
 * message naming the path in err. */
int node_state_write_file(const char *dir, const char *name, const void *data, size_t len,
                          char *err, size_t errlen);

/* The listen port a keyless node chose on its first start: 0 when found, -1 when there is none
 * (or it is unreadable). save returns 0 or -1 with a message in err. */
int node_state_load_port(const char *dir, uint16_t *port);
int node_state_save_port(const char *dir, uint16_t port, char *err, size_t errlen);

/* One node per state directory: takes an exclusive flock on dir/tunless.lock (created 0600,
 * the directory too), held while *fd stays open (the node's life: the kernel drops it when the
 * process ends, however it ends), and writes our pid in it for the next one's message.
 * Returns 0, NODE_STATE_LOCKED when another process holds it (*holder its pid, 0 if unknown),
 * or -1 with a message naming the path in err (a read-only directory, say). */
int node_state_lock(const char *dir, int *fd, pid_t *holder, char *err, size_t errlen);

#endif
