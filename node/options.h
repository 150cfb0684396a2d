/*
 * `tunless up` options: flags first, then TUNLESS_* environment variables (for containers), then
 * defaults. Strings in node_options are heap copies owned by it; node_options_free wipes the
 * proxy password.
 */
#ifndef TUNLESS_NODE_OPTIONS_H
#define TUNLESS_NODE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "config.h"
#include "log.h"

enum node_proto { NODE_PROTO_TCP = 0, NODE_PROTO_UDP };
enum node_outbound { NODE_OUTBOUND_DIRECT = 0, NODE_OUTBOUND_TUNNEL_ONLY };
/* Sized for a small container: 200 connections that never read fit under it. */
#define NODE_MAX_MEMORY_DEFAULT ((size_t)256 << 20)

/* --forward tcp:127.0.0.1:15432=db:5432: a local listener whose flows go to a mesh destination. */
struct node_forward {
    enum node_proto proto;
    struct base_endpoint listen;
    struct cfg_hostport target; /* a name or an IP literal */
};

/* --publish 8080=127.0.0.1:80: peers reach target through port on the node's tunnel address. */
struct node_publish {
    enum node_proto proto;
    uint16_t port;
    struct cfg_hostport target;
};

/* --tcp-keepalive: 0s are the netstack's defaults (NS_KEEPALIVE_*). */
struct node_keepalive {
    unsigned idle_ms, intvl_ms, cnt;
};
#define NODE_IDLE_TIMEOUT_MS (4u * 3600 * 1000)

struct node_options {
    char *config_path;
    char *netmap_path;
    bool proxy_on, socks5_on, http_proxy_on, dns_listen_on, metrics_listen_on;
    struct base_endpoint proxy, socks5, http_proxy, dns_listen, metrics_listen;
    char *proxy_user;
    char *proxy_pass;
    char *dns_suffix;
    struct node_forward *forwards;
    size_t n_forwards;
    struct node_publish *publishes;
    size_t n_publishes;
    enum node_outbound outbound;
    unsigned connect_timeout_ms; /* --connect-timeout; 0 = the dialers' default (10 s) */
    size_t max_memory;        /* --max-memory: the budget for what peers and clients make us hold */
    unsigned max_connections; /* --max-connections: per proxy listener; 0 = the proxy's 1024 */
    bool no_udp_offload;      /* --udp-offload off */
    char *state_dir;
    char *socket_path;  /* --socket: the local API (NULL: STATE_DIR/tunless.sock) */
    char *socket_group; /* --socket-group: that group may connect too (reads only) */
    enum base_log_level log_level;
    bool log_json;        /* --log-format json: one JSON object a line */
    const char *log_node; /* a node= field on every log line (tunless demo's "a" and "b"); static */
    bool help;
    bool check;               /* --check: validate the configuration, print a summary, exit */
    bool expand_env;          /* --expand-env: $VAR and ${VAR} in the wg-quick file's values */
    unsigned idle_timeout_ms; /* --idle-timeout: forwarded and published TCP; 0 = never */
    struct node_keepalive keepalive; /* --tcp-keepalive */
    /* Which listeners were set at all (to an address or to "off"): "off" must not bring back
     * the default, and a listener from a wireproxy section yields to the flag. */
    struct {
        bool proxy, socks5, http_proxy, dns_listen, metrics_listen;
        bool log_level, outbound; /* given: they override prefs.json for this run */
    } given;
    char **warnings; /* one line each, for the node to log (unknown TUNLESS_ variables) */
    size_t n_warnings;
};

/* Parses `up`'s arguments (argv[0] is "up"). Returns 0, or -1 with a one-line message in err. */
int node_options_parse(int argc, char **argv, struct node_options *out, char *err, size_t errlen);
void node_options_free(struct node_options *o);
void node_options_usage(FILE *out);

/* The spec parsers, exposed for tests. hostport: "host:port", "[v6]:port"; default_host fills a
 * spec that gives only a port ("5353", ":5353"). listen: the same on the loopback by default,
 * where host is an IP address or "localhost". Return 0 or -1. */
int node_parse_hostport(const char *spec, const char *default_host, struct cfg_hostport *out);
int node_parse_listen(const char *spec, struct base_endpoint *out);
int node_parse_forward(const char *spec, struct node_forward *out);
int node_parse_publish(const char *spec, struct node_publish *out);
/* "1500ms", "90s", "30m", "2h" or plain seconds, up to UINT32_MAX ms. */
int node_parse_duration_ms(const char *v, unsigned *out);
/* "IDLE,INTERVAL,COUNT": two durations of at least 1 s and a count of at least 1. */
int node_parse_keepalive(const char *v, struct node_keepalive *k);
/* A size: bytes, or with K, M, G (KiB, MiB, GiB; "256M", "1GiB"). Returns 0 or -1. */
int node_parse_size(const char *spec, size_t *out);

/* Levenshtein distance of two words of at most 63 characters (SIZE_MAX beyond), for "did you
 * mean" suggestions. */
size_t node_edit_distance(const char *a, const char *b);

#endif
