/*
 * `tunless ping` and `tunless whois`: clients of the running node's local API. ping asks
 * POST /v0/ping for ICMP echoes through the tunnel (or, with --wireguard, WireGuard handshake
 * round trips with the peer) and prints one line a reply as ping(8) does (exit 0 when any
 * answered, 1 when none); whois asks GET /v0/whois which peer owns an address, or which peer
 * a connection relayed by --publish came from. Flow: parse -> node_localapi_cli_call -> print.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "localapi_client.h"
#include "node.h"

static void usage(FILE *out, const char *cmd)
{
    if (strcmp(cmd, "ping") == 0)
        fprintf(out, "usage: tunless ping [-c COUNT] [--icmp | --wireguard] [--socket PATH] "
                     "NAME|IP\n"
                     "  ICMP echo through the tunnel to a peer (by its name or a tunnel "
                     "address);\n"
                     "  --wireguard: a WireGuard handshake with the peer instead (is its "
                     "wireguard answering?)\n"
                     "  exit 0 when any reply came, 1 when none did\n");
    else
        fprintf(out, "usage: tunless whois [--socket PATH] IP[:PORT]\n"
                     "  which peer owns a tunnel address; or, given the address and port a "
                     "service behind\n"
                     "  --publish sees on an accepted connection, which peer it came from\n");
}

/* Options common to both, plus -c and the type for ping (count NULL: whois). Returns the
 * operand, or NULL (usage printed). */
static const char *parse(int argc, char **argv, const char *cmd, const char **socket, long *count,
                         const char **type, int *code)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'}, {"count", required_argument, NULL, 'c'},
        {"icmp", no_argument, NULL, 'I'},         {"wireguard", no_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},         {0}};
    optind = 1;
    opterr = 0;
    int c;
    char *end;
    *code = 2;
    while ((c = getopt_long(argc, argv, "+hc:", longopts, NULL)) != -1) {
        if (c == 's') {
            *socket = optarg;
        } else if (c == 'c' && count) {
            *count = strtol(optarg, &end, 10);
            if (*end || *count < 1 || *count > 100) {
                fprintf(stderr, "tunless ping: -c %s: want 1 to 100\n", optarg);
                return NULL;
            }
        } else if ((c == 'I' || c == 'W') && count) {
            *type = c == 'W' ? "wireguard" : "icmp";
        } else if (c == 'h') {
            usage(stdout, cmd);
            *code = 0;
            return NULL;
        } else {
            usage(stderr, cmd);
            return NULL;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr, cmd);
        return NULL;
    }
    return argv[optind];
}

static void print_reply(const json_t *rep, const char *addr, const char *peer, bool wg)
{
    const json_t *rtt = json_object_get(rep, "rtt_ms");
    long long seq = (long long)json_integer_value(json_object_get(rep, "seq"));
    const char *ep = json_string_value(json_object_get(rep, "endpoint"));
    if (rtt && wg)
        printf("handshake with %s via %s: seq=%lld time=%.3f ms\n", peer, ep ? ep : "?", seq,
               json_number_value(rtt));
    else if (rtt)
        printf("reply from %s: icmp_seq=%lld time=%lld ms\n", addr, seq,
               (long long)json_integer_value(rtt));
    else
        printf("%s=%lld: %s\n", wg ? "seq" : "icmp_seq", seq,
               json_string_value(json_object_get(rep, "error")) ?: "no answer");
}

int node_cmd_ping(int argc, char **argv)
{
    const char *socket = NULL, *type = "icmp";
    long count = 4;
    int code;
    const char *target = parse(argc, argv, "ping", &socket, &count, &type, &code);
    if (!target)
        return code;
    json_t *req = json_pack("{s:s, s:s, s:i}", "target", target, "type", type, "count", (int)count);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    struct node_localapi_reply r;
    int rc = body ? node_localapi_cli_call("ping", socket, "POST", "/v0/ping", body, &r) : 1;
    free(body);
    if (rc != 0)
        return 1;
    bool wg = strcmp(type, "wireguard") == 0;
    const char *addr = json_string_value(json_object_get(r.json, "addr")) ?: "?";
    const json_t *peer = json_object_get(r.json, "peer");
    const char *name = json_string_value(json_object_get(peer, "name")) ?: target;
    if (wg)
        printf("PING %s (%s) with WireGuard handshakes\n", name, addr);
    else
        printf("PING %s (%s)\n", target, addr);
    size_t i;
    const json_t *rep;
    json_array_foreach(json_object_get(r.json, "replies"), i, rep) print_reply(rep, addr, name, wg);
    long long sent = json_integer_value(json_object_get(r.json, "sent"));
    long long got = json_integer_value(json_object_get(r.json, "received"));
    printf("--- %s: %lld sent, %lld received%s\n", target, sent, got, got ? "" : ", no answer");
    node_localapi_reply_free(&r);
    return got > 0 ? 0 : 1;
}

/* o's "addr" and "port" as IP:PORT or [IPv6]:PORT (buf has room for any). */
static const char *endpoint_text(const json_t *o, char *buf)
{
    const char *a = json_string_value(json_object_get(o, "addr")) ?: "?";
    long long port = json_integer_value(json_object_get(o, "port"));
    snprintf(buf, BASE_ENDPOINT_STRLEN + 8, strchr(a, ':') ? "[%.46s]:%lld" : "%.46s:%lld", a,
             port);
    return buf;
}

int node_cmd_whois(int argc, char **argv)
{
    const char *socket = NULL;
    int code;
    const char *addr = parse(argc, argv, "whois", &socket, NULL, NULL, &code);
    if (!addr)
        return code;
    char target[256] = "/v0/whois?addr=";
    size_t n = strlen(target);
    for (const char *p = addr; *p && n + 4 < sizeof(target); p++)
        n += (size_t)snprintf(target + n, sizeof(target) - n,
                              (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                                      (*p >= 'A' && *p <= 'Z') || *p == '.'
                                  ? "%c"
                                  : "%%%02X",
                              (unsigned char)*p);
    struct node_localapi_reply r;
    if (node_localapi_cli_call("whois", socket, "GET", target, NULL, &r) != 0)
        return 1;
    const json_t *peer = json_object_get(r.json, "peer");
    const json_t *from = json_object_get(r.json, "from");
    char who[256], asked[BASE_ENDPOINT_STRLEN + 8], src[BASE_ENDPOINT_STRLEN + 8];
    if (json_is_true(json_object_get(r.json, "self")))
        snprintf(who, sizeof(who), "this node");
    else
        snprintf(who, sizeof(who), "peer %s (%s)",
                 json_string_value(json_object_get(peer, "name")) ?: "-",
                 json_string_value(json_object_get(peer, "public_key")) ?: "-");
    if (from) /* a connection --publish relayed: asked by the host end, it came from src */
        printf("%s: %s from %s through --publish tcp:%lld\n", endpoint_text(r.json, asked), who,
               endpoint_text(from, src),
               (long long)json_integer_value(
                   json_object_get(json_object_get(r.json, "publish"), "port")));
    else
        printf("%s: %s\n", json_string_value(json_object_get(r.json, "addr")) ?: addr, who);
    node_localapi_reply_free(&r);
    return 0;
}
