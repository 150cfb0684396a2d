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

/* warn once per listener bound beyond the loopback without credentials and once per pair of
 * listeners on the same local port. */
void node_plan_check(const struct node_options *o, node_plan_warn_fn warn, void *arg);
/* One line per peer, listener, forward and publish. c may be NULL (no configuration yet). */
void node_plan_print(FILE *out, const struct node_options *o, const struct cfg_config *c);

#endif
