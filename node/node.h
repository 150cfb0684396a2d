/*
 * tunless's node: the subcommands of the `tunless` binary and the daemon they start.
 * Each node_cmd_* takes the arguments after its own name (argv[0] is the subcommand)
 * and returns the process exit code: 0 success, 1 runtime failure, 2 bad usage or input.
 */
#ifndef TUNLESS_NODE_H
#define TUNLESS_NODE_H

int node_cmd_genkey(int argc, char **argv);
int node_cmd_pubkey(int argc, char **argv);
int node_cmd_up(int argc, char **argv);
int node_cmd_demo(int argc, char **argv);
int node_cmd_nc(int argc, char **argv);
int node_cmd_derp(int argc, char **argv);
int node_cmd_status(int argc, char **argv);
int node_cmd_reload(int argc, char **argv);
int node_cmd_netmap(int argc, char **argv);
int node_cmd_ping(int argc, char **argv);
int node_cmd_whois(int argc, char **argv);
int node_cmd_down(int argc, char **argv);
int node_cmd_set(int argc, char **argv);
int node_cmd_watch(int argc, char **argv);
/* `tunless up` given to a node that already runs on socket: want_running true. 0, or 1. */
int node_cmd_resume(const char *socket);

#endif
