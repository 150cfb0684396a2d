/*
 * The node's state directory: where a node that was given no key keeps the one it generated.
 * Directory 0700, key file 0600, written atomically so a crash never leaves half a key.
 */
#ifndef TUNLESS_NODE_STATE_H
#define TUNLESS_NODE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "key.h"

#define NODE_STATE_KEY_FILE "private.key"

/* --state-dir, else $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/tunless, else
 * ~/.local/state/tunless. Returns -1 if no home can be found. */
int node_state_dir(const char *flag, char *out, size_t cap);

/* Reads dir/private.key, or creates the directory and a fresh key. *created says which.
 * Returns 0, or -1 with a message naming the path in err. */
int node_state_load_key(const char *dir, uint8_t priv[WG_KEY_LEN], int *created, char *err,
                        size_t errlen);

#endif
