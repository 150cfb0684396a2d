/*
 * The node's configuration, from a wg-quick file (--config, config_ini.c) or from the native
 * JSON netmap (--netmap, netmap.c). Both fill the same struct node_config.
 *
 * Memory: a node_config owns every array and string it points to; node_config_free releases
 * them and wipes the private and preshared keys. A parser that fails leaves *out zeroed (never
 * half filled) and puts one line in err that names the file, the line or JSON path, and what is
 * wrong. Parsers never print; warnings (accepted-but-ignored wg-quick keys, a world-readable key
 * file) are collected in node_config.warnings for the node to log.
 */
#ifndef TUNLESS_NODE_CONFIG_H
#define TUNLESS_NODE_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine.h"
#include "key.h"

/* A prefix as the parsers here fill it. Transitional: the engine takes struct base_prefix now,
 * and node/peers.c converts; config/ (issue 11) gives base_prefix and this struct goes. */
struct wg_allowed_ip {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
    uint8_t cidr;
};

#define NODE_CONFIG_DEFAULT_MTU 1420
#define NODE_CONFIG_HOST_MAX 256 /* a DNS name is at most 253 characters */

/* An IP address with a port (a DNS resolver: port 53 unless the netmap says otherwise). */
struct node_ipport {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
    uint16_t port;
};

/* Kept as text: names are resolved by the node at start and again when a peer goes silent. */
struct node_endpoint {
    char host[NODE_CONFIG_HOST_MAX]; /* a name or an IP literal, IPv6 without brackets */
    char port[6];                    /* decimal 1..65535, as getaddrinfo's service wants it */
};

struct node_peer {
    char *name; /* MagicDNS label (lowercase), or NULL */
    uint8_t public_key[WG_KEY_LEN];
    bool has_preshared_key;
    uint8_t preshared_key[WG_KEY_LEN]; /* wiped by node_config_free */
    struct node_endpoint *endpoints;   /* tried in order; wg-quick gives at most one */
    size_t n_endpoints;
    struct wg_allowed_ip *allowed_ips; /* host bits masked off */
    size_t n_allowed_ips;
    uint16_t persistent_keepalive; /* seconds, 0 = off */
    unsigned line;                 /* wg-quick: line of its [Peer]; netmap: 0 */
};

/* Queries under suffix go to these resolvers instead of the default ones. */
struct node_dns_route {
    char *suffix; /* lowercase, with the trailing dot: "corp.example." */
    struct node_ipport *resolvers;
    size_t n_resolvers;
};

/* An extra MagicDNS record. */
struct node_dns_record {
    char *name; /* lowercase, with the trailing dot */
    int family; /* AF_INET = A, AF_INET6 = AAAA */
    uint8_t addr[16];
};

enum node_config_source { NODE_CONFIG_INI = 1, NODE_CONFIG_NETMAP };

struct node_config {
    enum node_config_source source;
    char *file; /* name used in messages (the path, or the name given with a buffer) */

    /* [Interface] / "self" */
    char *name;           /* this node's MagicDNS label, or NULL */
    bool has_private_key; /* netmap only may leave it out: the node then uses its state dir */
    uint8_t private_key[WG_KEY_LEN]; /* wiped by node_config_free */
    /* Keep their host bits: 100.64.0.1/10 is "address 100.64.0.1 in 100.64.0.0/10". */
    struct wg_allowed_ip *addresses;
    size_t n_addresses;
    uint16_t listen_port; /* 0 = any */
    uint16_t mtu;         /* NODE_CONFIG_DEFAULT_MTU unless given */

    /* DNS: wg-quick's DNS= fills resolvers (IP entries) and search (the others). */
    char *
        dns_suffix; /* MagicDNS suffix, lowercase with the dot ("mesh.example."), or NULL = default */
    struct node_ipport *resolvers;
    size_t n_resolvers;
    char **search; /* search domains, lowercase, without the trailing dot */
    size_t n_search;
    struct node_dns_route *routes;
    size_t n_routes;
    struct node_dns_record *records;
    size_t n_records;

    struct node_peer *peers;
    size_t n_peers;

    char **warnings; /* one line each, "file:line: ..." */
    size_t n_warnings;
};

/* wg-quick(8) files. Returns 0, or -1 with *out zeroed and a message in err. The result has
 * passed node_config_validate. */
int node_config_parse_ini(const char *path, struct node_config *out, char *err, size_t errlen);
/* The same from memory; name is used in messages. buf need not be NUL-terminated. */
int node_config_parse_ini_buffer(const char *name, const char *buf, size_t len,
                                 struct node_config *out, char *err, size_t errlen);

/* The JSON netmap (see examples/netmap.json). private_key_file is read relative to the
 * netmap's directory. Same contract as node_config_parse_ini. */
int node_config_parse_netmap(const char *path, struct node_config *out, char *err, size_t errlen);
/* From memory. base_dir resolves a relative private_key_file; NULL refuses private_key_file
 * altogether (fuzzing, tests). */
int node_config_parse_netmap_buffer(const char *name, const char *buf, size_t len,
                                    const char *base_dir, struct node_config *out, char *err,
                                    size_t errlen);

/* Whole-config checks the parsers cannot make line by line: at least one address, no address
 * twice, no peer key twice, our own key not among the peers, no prefix given to two peers, our
 * own address not routed to a peer, peer names unique and distinct from ours. The parsers call
 * it; call it again after changing a config (e.g. after filling in the state-dir key). */
int node_config_validate(const struct node_config *c, char *err, size_t errlen);

void node_config_free(struct node_config *c);

/* ---- value parsers shared by config_ini.c and netmap.c (return NULL or what is wrong) ---- */

/* "10.0.0.1/24", "fd00::1/64"; without /prefix the full length. mask clears host bits. */
const char *node_config_parse_prefix(const char *s, bool mask, struct wg_allowed_ip *out);
/* Whether prefix s has bits set beyond its length (wg(8) warns about those and clears them);
 * if so, masked gets the prefix as it is read ("10.0.0.0/8" for "10.1.2.3/8"). */
bool node_config_host_bits(const char *s, char *masked, size_t cap);
/* "1.2.3.4", "fd00::1"; with allow_port also "1.2.3.4:53", "[fd00::1]:53" (port default 53). */
const char *node_config_parse_ipport(const char *s, bool allow_port, struct node_ipport *out);
/* "host:port", "[v6]:port". */
const char *node_config_parse_endpoint(const char *s, struct node_endpoint *out);
/* A DNS name: labels of letters, digits, '-' and '_', at most 253 characters; a trailing dot is
 * allowed. out gets it lowercased, with (trailing_dot) or without the final dot. */
const char *node_config_parse_domain(const char *s, bool trailing_dot, char **out);
/* A MagicDNS label: 1..63 letters, digits or '-', not starting or ending with '-'. */
const char *node_config_parse_label(const char *s, char **out);
/* v as it may be echoed in a message: at most 64 characters, the unprintable ones as '?'. */
const char *node_config_shown(char *buf, size_t cap, const char *v);
/* A parse error as "FILE WHERE: MESSAGE" in err (WHERE: ":12" for a line, ": $.peers[0]" for a
 * JSON path, "" for none). Returns -1, for the parsers' `return fail(...)`. */
int node_config_vfail(char *err, size_t errlen, const char *file, const char *where,
                      const char *fmt, va_list ap);
/* Appends a formatted warning. Returns -1 on allocation failure. */
int node_config_warn(struct node_config *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reads a whole regular file of at most max bytes into *buf (NUL-terminated, *len without the
 * NUL) and its mode into *mode. The caller wipes (it may hold keys) and frees *buf. */
int node_config_read_file(const char *path, size_t max, char **buf, size_t *len, mode_t *mode,
                          char *err, size_t errlen);
/* Grows *arr (of *n elements of size each) by one zeroed element and returns it, or NULL. */
void *node_config_push(void *arr_ptr, size_t *n, size_t size);

#endif
