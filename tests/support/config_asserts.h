/* Assertions and fixed keys shared by the configuration tests (wg-quick and netmap). */
#ifndef TUNLESS_TEST_CONFIG_ASSERTS_H
#define TUNLESS_TEST_CONFIG_ASSERTS_H

#include "config.h"

#define SELF_PRIV "yAA0DwX4KFc8pmR2npx6FpP/sk8nc3HboYJK4HOnTXk="
#define SELF_PUB "1WXR2p4zfcd0LCNt6Rx2zh5FNVr39ehEYTp7X4TpwTE="
#define PEER_B "YlhzCQYSkjkikOLNKodzWIzOukkXhLXvDgFOKInI6UQ="
#define PEER_C "RO+BwsN43kmIQGnQK35txdeJQd7h7emE2kaLmj9TkjA="
#define PSK "VNjKA/2Pb1coSYIftSiWELBb+zN9SG9pvJSUoac1lDs="

void assert_prefix(const struct base_prefix *p, const char *addr, unsigned bits);
void assert_ip(const struct base_endpoint *p, const char *addr, unsigned port);
void assert_key(const uint8_t key[CFG_KEY_LEN], const char *b64);
/* For the fuzzers: a parsed config diffs as all unchanged against itself and all added against
 * none; traps otherwise. */
void check_self_diff(const struct cfg_config *c);
/* A parser that failed must leave nothing half filled. */
void assert_zeroed(const struct cfg_config *c);

#endif
