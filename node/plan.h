/*
 * What `tunless up` would start (plan.c): a summary for --check and the warnings that --check
 * and the start share. Reads the options and configuration; owns nothing.
 */
#ifndef TUNLESS_NODE_PLAN_H
#define TUNLESS_NODE_PLAN_H

#include <stdio.h>

#include "config.h"
#include "options.h"

typedef void (*node_plan_warn_fn)(void *arg, const char *line);

/* Maps the configuration's wireproxy sections onto o: [Socks5] -> --socks5, [http] ->
 * --http-proxy, [TCPClientTunnel] / [UDPProxyTunnel] -> --forward, [TCPServerTunnel] ->
 * --publish, their credentials -> --proxy-user. A flag (or TUNLESS_ variable) given for the
 * same thing wins. The file then says what listens: the default proxy stays off unless
 * --proxy is given. notice gets one line per section saying what it became. Returns 0, or -1
 * with err (two [Socks5], differing credentials). */
int node_plan_merge(struct node_options *o, const struct cfg_config *c, node_plan_warn_fn notice,
                    void *arg, char *err, size_t errlen);

/* Whether two configurations ask for the same wireproxy sections (a reload cannot apply a
 * change to them: the listeners stay as started). */
bool node_plan_services_equal(const struct cfg_config *a, const struct cfg_config *b);

/* warn once per listener bound beyond the loopback without credentials and once per pair of
 * listeners on the same local port. */
void node_plan_check(const struct node_options *o, node_plan_warn_fn warn, void *arg);
/* One line per peer, listener, forward and publish. c may be NULL (no configuration yet). */
void node_plan_print(FILE *out, const struct node_options *o, const struct cfg_config *c);

#endif
