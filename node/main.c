/* The `tunless` binary: one table of subcommands, each implemented in node/cmd_*.c. */
#include <signal.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "node.h"
#include "options.h"

#ifndef TUNLESS_VERSION
#define TUNLESS_VERSION "dev"
#endif

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
    {"demo", node_cmd_demo, "two nodes in this process: try the proxy and MagicDNS at once"},
    {"up", node_cmd_up, "run the node in the foreground (see tunless up --help)"},
    {"status", node_cmd_status, "the running node and its peers (--json: the local API's answer)"},
    {"reload", node_cmd_reload, "make the running node read its configuration again"},
    {"ping", node_cmd_ping, "ICMP echo or WireGuard handshake (--wireguard) with a peer"},
    {"whois", node_cmd_whois, "which peer owns a tunnel address or a --publish connection"},
    {"down", node_cmd_down, "stop the running node's tunnel (tunless up resumes it)"},
    {"set", node_cmd_set, "change the running node's preferences (--log-level, --outbound)"},
    {"watch", node_cmd_watch, "follow the running node's state and events (--json: raw)"},
    {"netmap", node_cmd_netmap, "netmap apply FILE|-: push a JSON netmap to the running node"},
    {"nc", node_cmd_nc, "stdin/stdout to HOST PORT through the node (ssh ProxyCommand)"},
    {"derp", node_cmd_derp, "run a DERP relay server (see tunless derp --help)"},
    {"genkey", node_cmd_genkey, "print a new base64 private key"},
    {"pubkey", node_cmd_pubkey, "read a private key on stdin, print its public key"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this help"},
};

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tunless %s\n", TUNLESS_VERSION);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "tunless %s: a userspace WireGuard mesh node, no TUN, no root\n\n",
            TUNLESS_VERSION);
    fprintf(out, "usage: tunless <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`tunless <command> --help` describes a command's options.\n");
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void unknown_command(const char *name)
{
    const char *best = NULL;
    size_t best_d = 3; /* suggest only what is at most two edits away */
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        size_t d = node_edit_distance(name, commands[i].name);
        if (d < best_d) {
            best_d = d;
            best = commands[i].name;
        }
    }
    if (best)
        fprintf(stderr, "tunless: unknown command '%s'; did you mean '%s'?\n", name, best);
    else
        fprintf(stderr, "tunless: unknown command '%s'; `tunless help` lists them\n", name);
}

/* `tunless help CMD` is `tunless CMD --help`. */
static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const struct command *c = find_command(argv[1]);
    if (!c) {
        unknown_command(argv[1]);
        return 2;
    }
    if (c->run == cmd_help) {
        usage(stdout);
        return 0;
    }
    char help[] = "--help";
    char *help_argv[] = {argv[1], help, NULL};
    return c->run(2, help_argv);
}

int main(int argc, char **argv)
{
    /* A client that resets while we write must cost one connection (EPIPE), not the node. */
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "tunless: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    if (strcmp(name, "--version") == 0)
        name = "version";
    const struct command *c = find_command(name);
    if (c)
        return c->run(argc - 1, argv + 1);
    unknown_command(argv[1]);
    return 2;
}
