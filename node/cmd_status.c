/*
 * `tunless status`, `tunless reload` and `tunless netmap apply`: clients of the running node's
 * local API. status prints GET /v0/status as a table (one line a peer, as `wg show` and
 * `tailscale status` do) or, with --json, as the API gave it; reload prints what POST
 * /v0/reload changed, netmap apply what PUT /v0/netmap changed. Flow: parse_args -> call ->
 * print_table / print_change. Exit 0, 1 on a failure (one line), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "localapi_client.h"
#include "node.h"

struct client_args {
    const char *socket;
    bool json;
    bool help;
};

static int parse_args(int argc, char **argv, bool allow_json, struct client_args *a)
{
    static const struct option longopts[] = {{"socket", required_argument, NULL, 's'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 's')
            a->socket = optarg;
        else if (c == 'j' && allow_json)
            a->json = true;
        else if (c == 'h')
            a->help = true;
        else
            return -1;
    }
    return optind < argc ? -1 : 0;
}

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "status") == 0)
        fprintf(out, "usage: tunless status [--json] [--socket PATH]\n"
                     "  the running node and its peers; --json prints the local API's answer\n");
    else
        fprintf(out, "usage: tunless reload [--socket PATH]\n"
                     "  read the configuration again and apply it (as SIGHUP does)\n");
    fprintf(out, "  --socket PATH  the node's local API (default: TUNLESS_SOCKET, else "
                 "STATE_DIR/tunless.sock as `tunless up` uses)\n");
}

static const char *human_bytes(json_int_t n, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    return buf;
}

static const char *human_duration(json_int_t s, char *buf, size_t cap)
{
    if (s < 120)
        snprintf(buf, cap, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(buf, cap, "%lldm", (long long)(s / 60));
    else if (s < 172800)
        snprintf(buf, cap, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, cap, "%lldd", (long long)(s / 86400));
    return buf;
}

static const char *human_age(const json_t *secs, char *buf, size_t cap)
{
    if (!json_is_integer(secs))
        return "never";
    char d[24];
    snprintf(buf, cap, "%s ago", human_duration(json_integer_value(secs), d, sizeof(d)));
    return buf;
}

static const char *str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_node(const json_t *node)
{
    const json_t *addrs = json_object_get(node, "addresses");
    char up[32];
    printf("# this node: %s  %s  %s  udp/%lld  up %s\n",
           str_or(json_object_get(node, "state"), "?"),
           str_or(json_object_get(node, "public_key"), "-"),
           json_array_size(addrs) ? str_or(json_array_get(addrs, 0), "-") : "(no address)",
           (long long)json_integer_value(json_object_get(node, "listen_port")),
           human_duration(json_integer_value(json_object_get(node, "uptime_seconds")), up,
                          sizeof(up)));
}

static void print_health(const json_t *health)
{
    size_t i;
    const json_t *h;
    json_array_foreach(health, i, h)
    {
        printf("# health: %s\n", str_or(json_object_get(h, "message"), "?"));
    }
}

static void print_table(const json_t *st)
{
    print_node(json_object_get(st, "node"));
    print_health(json_object_get(st, "health"));
    const json_t *peers = json_object_get(st, "peers");
    if (json_array_size(peers) == 0) {
        printf("no peers configured\n");
        return;
    }
    printf("%-18s %-16s %-22s %-10s %10s %10s\n", "ADDRESS", "NAME", "ENDPOINT", "HANDSHAKE", "RX",
           "TX");
    size_t i;
    const json_t *p;
    json_array_foreach(peers, i, p)
    {
        char age[32], rx[32], tx[32];
        const json_t *ips = json_object_get(p, "allowed_ips");
        printf("%-18s %-16s %-22s %-10s %10s %10s\n",
               json_array_size(ips) ? str_or(json_array_get(ips, 0), "-") : "-",
               str_or(json_object_get(p, "name"), "-"), str_or(json_object_get(p, "endpoint"), "-"),
               human_age(json_object_get(p, "last_handshake_seconds_ago"), age, sizeof(age)),
               human_bytes(json_integer_value(json_object_get(p, "rx_bytes")), rx, sizeof(rx)),
               human_bytes(json_integer_value(json_object_get(p, "tx_bytes")), tx, sizeof(tx)));
    }
}

int node_cmd_status(int argc, char **argv)
{
    struct client_args a;
    if (parse_args(argc, argv, true, &a) != 0) {
        usage(stderr, "status");
        return 2;
    }
    if (a.help) {
        usage(stdout, "status");
        return 0;
    }
    struct node_localapi_reply r;
    if (node_localapi_cli_call("status", a.socket, "GET", "/v0/status", NULL, &r) != 0)
        return 1;
    if (a.json)
        fwrite(r.body, 1, r.body_len, stdout);
    else
        print_table(r.json);
    node_localapi_reply_free(&r);
    return 0;
}

static void print_peers(const char *what, const json_t *list)
{
    size_t i;
    const json_t *p;
    json_array_foreach(list, i, p)
    {
        printf("%s %s (%s)", what, str_or(json_object_get(p, "name"), "-"),
               str_or(json_object_get(p, "public_key"), "-"));
        const json_t *changed = json_object_get(p, "changed");
        size_t k;
        const json_t *w;
        json_array_foreach(changed, k, w)
        {
            printf("%s%s", k ? "," : ": ", str_or(w, "?"));
        }
        printf("\n");
    }
}

static void print_change(const char *verb, const json_t *answer);

int node_cmd_reload(int argc, char **argv)
{
    struct client_args a;
    if (parse_args(argc, argv, false, &a) != 0) {
        usage(stderr, "reload");
        return 2;
    }
    if (a.help) {
        usage(stdout, "reload");
        return 0;
    }
    struct node_localapi_reply r;
    if (node_localapi_cli_call("reload", a.socket, "POST", "/v0/reload", NULL, &r) != 0)
        return 1;
    print_change("reloaded", r.json);
    node_localapi_reply_free(&r);
    return 0;
}

/* What a reload or a netmap changed (localapi's diff answer). */
static void print_change(const char *verb, const json_t *answer)
{
    print_peers("added", json_object_get(answer, "added"));
    print_peers("removed", json_object_get(answer, "removed"));
    print_peers("changed", json_object_get(answer, "changed"));
    printf("%s: %zu added, %zu removed, %zu changed, %lld unchanged%s%s\n", verb,
           json_array_size(json_object_get(answer, "added")),
           json_array_size(json_object_get(answer, "removed")),
           json_array_size(json_object_get(answer, "changed")),
           (long long)json_integer_value(json_object_get(answer, "unchanged")),
           json_is_true(json_object_get(answer, "addresses_changed")) ? "; addresses changed" : "",
           json_is_true(json_object_get(answer, "dns_changed")) ? "; DNS changed" : "");
}

/* The file's bytes (at most NETMAP_MAX), "-" for stdin; NULL with a message on stderr. */
#define NETMAP_MAX (1 << 20)
static char *read_netmap(const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    char *buf = f ? malloc(NETMAP_MAX + 1) : NULL;
    size_t n = buf ? fread(buf, 1, NETMAP_MAX + 1, f) : 0;
    bool bad = !f || !buf || ferror(f) || n > NETMAP_MAX || memchr(buf, '\0', n);
    if (f && f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "tunless netmap apply: %s: %s\n", file,
                !f               ? strerror(errno)
                : n > NETMAP_MAX ? "larger than 1 MiB"
                                 : "unreadable");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int node_cmd_netmap(int argc, char **argv)
{
    struct client_args a;
    const char *usage_line = "usage: tunless netmap apply [--socket PATH] FILE|-\n"
                             "  send a JSON netmap to the running node (PUT /v0/netmap), which "
                             "applies it as a reload\n  applies a file; '-' reads stdin\n";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_line, stdout);
        return 0;
    }
    /* netmap apply [--socket PATH] FILE: the options between "apply" and the file */
    if (argc < 3 || strcmp(argv[1], "apply") != 0 ||
        parse_args(argc - 2, argv + 1, false, &a) != 0 || a.help) {
        fputs(usage_line, a.help ? stdout : stderr);
        return a.help ? 0 : 2;
    }
    const char *file = argv[argc - 1];
    char *body = read_netmap(file);
    if (!body)
        return 1;
    struct node_localapi_reply r;
    int rc = node_localapi_cli_call("netmap apply", a.socket, "PUT", "/v0/netmap", body, &r);
    free(body);
    if (rc != 0)
        return 1;
    print_change("applied", r.json);
    node_localapi_reply_free(&r);
    return 0;
}
