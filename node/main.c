/* The `tunless` binary: one table of subcommands, each implemented in node/cmd_*.c. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "node.h"

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

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return 0;
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
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "tunless: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
