/*
 * `tunless status` and `tunless reload`: clients of the running node's local API. status
 * prints GET /v0/status as a table (one line a peer, as `wg show` and `tailscale status` do) or,
 * with --json, as the API gave it; reload prints what POST /v0/reload changed. Flow:
 * parse_args -> call -> print_table / print_reload. Exit 0, 1 on a failure (one line), 2 on
 * bad usage.
 */
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

static void print_table(const json_t *st)
{
    print_node(json_object_get(st, "node"));
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
    print_peers("added", json_object_get(r.json, "added"));
    print_peers("removed", json_object_get(r.json, "removed"));
    print_peers("changed", json_object_get(r.json, "changed"));
    printf("reloaded: %zu added, %zu removed, %zu changed, %lld unchanged%s%s\n",
           json_array_size(json_object_get(r.json, "added")),
           json_array_size(json_object_get(r.json, "removed")),
           json_array_size(json_object_get(r.json, "changed")),
           (long long)json_integer_value(json_object_get(r.json, "unchanged")),
           json_is_true(json_object_get(r.json, "addresses_changed")) ? "; addresses changed" : "",
           json_is_true(json_object_get(r.json, "dns_changed")) ? "; DNS changed" : "");
    node_localapi_reply_free(&r);
    return 0;
}
