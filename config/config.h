/*
 * config: the node's configuration, from a wg-quick file (cfg_parse_ini, ini.c) or from the
 * native JSON netmap (cfg_parse_netmap, netmap.c). Both fill the same struct cfg_config, which
 * cfg_validate checks as a whole (validate.c); cfg_diff tells what a reload changes (diff.c).
 * No I/O beyond reading the files named; no logging; depends on base/ only.
 *
 * Memory: a cfg_config owns every array and string it points to; cfg_free releases them and
 * wipes the private and preshared keys. A parser that fails leaves *out zeroed (never half
 * filled) and puts one line in err that names the file, the line or JSON path, and what is
 * wrong. Parsers never print; warnings (accepted-but-ignored wg-quick keys, a world-readable key
 * file) are collected in cfg_config.warnings for the node to log.
 *
 * Errors: 0, BASE_ECONFIG (the text is wrong), or a negative errno (-ENOENT, -EACCES, -ENOMEM,
 * ...) when the file cannot be read; err says which in every case.
 */
#ifndef TUNLESS_CONFIG_H
#define TUNLESS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define CFG_KEY_LEN 32     /* a Curve25519 key */
#define CFG_KEY_B64_LEN 44 /* its base64 form as wg(8) writes it, without the NUL */
#define CFG_DEFAULT_MTU 1420

/* A host given by name or as an IP literal (IPv6 without brackets), with a port 1..65535. Names
 * stay names: the node resolves them at start and again when a peer goes silent. */
struct cfg_hostport {
    char host[BASE_HOST_MAX + 1];
    uint16_t port;
};

struct cfg_peer {
    char *name; /* MagicDNS label (lowercase), or NULL */
    uint8_t public_key[CFG_KEY_LEN];
    bool has_preshared_key;
    uint8_t preshared_key[CFG_KEY_LEN]; /* wiped by cfg_free */
    struct cfg_hostport *endpoints;     /* tried in order; wg-quick gives at most one */
    size_t n_endpoints;
    struct base_prefix *allowed_ips; /* host bits masked off */
    size_t n_allowed_ips;
    uint16_t persistent_keepalive; /* seconds, 0 = off */
    unsigned line;                 /* wg-quick: line of its [Peer]; netmap: 0 */
};

/* Queries under suffix go to these resolvers instead of the default ones. */
struct cfg_dns_route {
    char *suffix; /* lowercase, with the trailing dot: "corp.example." */
    struct base_endpoint *resolvers;
    size_t n_resolvers;
};

/* An extra MagicDNS record: A for an IPv4 address, AAAA for IPv6. */
struct cfg_dns_record {
    char *name; /* lowercase, with the trailing dot */
    struct base_addr addr;
};

enum cfg_source { CFG_SOURCE_INI = 1, CFG_SOURCE_NETMAP };

/* What a wireproxy section asks the node to start besides the mesh (wireproxy.c). The node maps
 * each onto its listeners, --forward and --publish; flags given for the same thing win. */
enum cfg_service_kind {
    CFG_SERVICE_SOCKS5 = 1, /* [Socks5]: BindAddress, Username, Password */
    CFG_SERVICE_HTTP,       /* [http]: the same */
    CFG_SERVICE_TCP_CLIENT, /* [TCPClientTunnel]: BindAddress -> Target (a --forward) */
    CFG_SERVICE_UDP_CLIENT, /* [UDPProxyTunnel]: the same over UDP (a --forward udp:) */
    CFG_SERVICE_TCP_SERVER, /* [TCPServerTunnel]: ListenPort on the tunnel -> Target (--publish) */
};

struct cfg_service {
    enum cfg_service_kind kind;
    unsigned line;              /* of its section header */
    struct base_endpoint bind;  /* listeners and client tunnels; ":PORT" is 0.0.0.0 as in Go */
    uint16_t listen_port;       /* TCPServerTunnel */
    struct cfg_hostport target; /* tunnels */
    char *username, *password;  /* proxies, or NULL; the password is wiped by cfg_free */
};

struct cfg_config {
    enum cfg_source source;
    char *file; /* name used in messages (the path, or the name given with a buffer) */

    /* [Interface] / "self" */
    char *name;           /* this node's MagicDNS label, or NULL */
    bool has_private_key; /* netmap only may leave it out: the node then uses its state dir */
    uint8_t private_key[CFG_KEY_LEN]; /* wiped by cfg_free */
    /* Keep their host bits: 100.64.0.1/10 is "address 100.64.0.1 in 100.64.0.0/10". */
    struct base_prefix *addresses;
    size_t n_addresses;
    uint16_t listen_port; /* 0 = any */
    uint16_t mtu;         /* CFG_DEFAULT_MTU unless given */

    /* DNS: wg-quick's DNS= fills resolvers (IP entries, port 53) and search (the others). */
    char *dns_suffix; /* MagicDNS suffix, lowercase with the dot ("mesh.example."), or NULL */
    struct base_endpoint *resolvers;
    size_t n_resolvers;
    char **search; /* search domains, lowercase, without the trailing dot */
    size_t n_search;
    struct cfg_dns_route *routes;
    size_t n_routes;
    struct cfg_dns_record *records;
    size_t n_records;

    struct cfg_peer *peers;
    size_t n_peers;

    struct cfg_service *services; /* wireproxy sections, in file order */
    size_t n_services;

    char **warnings; /* one line each, "file:line: ..." */
    size_t n_warnings;
};

/* "[Socks5]" and so on, for messages. */
const char *cfg_service_section(enum cfg_service_kind kind);

/* wg-quick(8) files. The result has passed cfg_validate. */
int cfg_parse_ini(const char *path, struct cfg_config *out, char *err, size_t errlen);
/* The same from memory; name is used in messages. buf need not be NUL-terminated. */
int cfg_parse_ini_buffer(const char *name, const char *buf, size_t len, struct cfg_config *out,
                         char *err, size_t errlen);

/* What a wg-quick file may do beyond wg-quick(8). */
struct cfg_ini_options {
    const char *base_dir; /* resolves a relative PrivateKeyFile; NULL refuses PrivateKeyFile */
    bool expand_env;      /* $VAR / ${VAR} in values ($$: a literal $); an unset one is an error */
};
/* cfg_parse_ini with --expand-env's choice; PrivateKeyFile is read relative to the file's
 * directory (as cfg_parse_ini does). */
int cfg_parse_ini_with(const char *path, bool expand_env, struct cfg_config *out, char *err,
                       size_t errlen);
/* cfg_parse_ini_buffer with options (opt NULL: none). */
int cfg_parse_ini_buffer_with(const char *name, const char *buf, size_t len,
                              const struct cfg_ini_options *opt, struct cfg_config *out, char *err,
                              size_t errlen);

/* The JSON netmap (see examples/netmap.json). private_key_file is read relative to the
 * netmap's directory. Same contract as cfg_parse_ini. */
int cfg_parse_netmap(const char *path, struct cfg_config *out, char *err, size_t errlen);
/* From memory. base_dir resolves a relative private_key_file; NULL refuses private_key_file
 * altogether (fuzzing, tests). */
int cfg_parse_netmap_buffer(const char *name, const char *buf, size_t len, const char *base_dir,
                            struct cfg_config *out, char *err, size_t errlen);

/* Whole-config checks the parsers cannot make line by line: at least one address, no address
 * twice, no peer key twice, our own key not among the peers, no prefix given to two peers, our
 * own address not routed to a peer, peer names unique and distinct from ours. The parsers call
 * it; call it again after changing a config (e.g. after filling in the state-dir key).
 * Returns 0 or BASE_ECONFIG (-ENOMEM when out of memory) with the message in err. */
int cfg_validate(const struct cfg_config *c, char *err, size_t errlen);

void cfg_free(struct cfg_config *c);

/* ---- what a reload changes (diff.c) ----
 * Peers are matched by public key. Every peer of old and new is in exactly one list: added (in
 * new only), removed (in old only), changed (in both, with a difference named in `what`), or
 * unchanged. Each list is in the order of the config it comes from (new; removed: old).
 */
enum {
    CFG_PEER_PRESHARED_KEY = 1 << 0,
    CFG_PEER_ENDPOINTS = 1 << 1,
    CFG_PEER_ALLOWED_IPS = 1 << 2,
    CFG_PEER_KEEPALIVE = 1 << 3,
    CFG_PEER_NAME = 1 << 4, /* MagicDNS only: the engine does not see it */
};
/* The differences the WireGuard engine must be told about. */
#define CFG_PEER_ENGINE \
    (CFG_PEER_PRESHARED_KEY | CFG_PEER_ENDPOINTS | CFG_PEER_ALLOWED_IPS | CFG_PEER_KEEPALIVE)

struct cfg_peer_change {
    const struct cfg_peer *old; /* NULL when added */
    const struct cfg_peer *new; /* NULL when removed */
    unsigned what;              /* CFG_PEER_* bits; 0 unless changed */
};

struct cfg_diff {
    struct cfg_peer_change *added, *removed, *changed, *unchanged;
    size_t n_added, n_removed, n_changed, n_unchanged;
    bool addresses_changed; /* this node's addresses or MTU */
    bool dns_changed;       /* names, suffix, resolvers, search, routes or records */
};

/* what as words for a log line or an API answer: "endpoints,allowed_ips" ("" for 0). Returns buf
 * (cut to cap). */
const char *cfg_peer_changes_format(unsigned what, char *buf, size_t cap);

/* old may be NULL (a first configuration: every peer is added). The entries point into old and
 * new, which must outlive the diff. Returns 0 or -ENOMEM (*out then zeroed). */
int cfg_diff(const struct cfg_config *old, const struct cfg_config *new, struct cfg_diff *out);
void cfg_diff_free(struct cfg_diff *d);

/* ---- value parsers (text.c); each returns NULL or what is wrong, for messages ---- */

/* Exactly 44 base64 characters decoding to 32 bytes, as wg(8) writes keys; surrounding
 * whitespace is the caller's business. Returns 0, or BASE_EPARSE with key zeroed. */
int cfg_key_from_base64(uint8_t key[CFG_KEY_LEN], const char *b64, size_t len);
/* A DNS resolver: "1.2.3.4", "fd00::1"; with allow_port also "1.2.3.4:53", "[fd00::1]:53"
 * (port 53 when none is given). */
const char *cfg_parse_resolver(const char *s, bool allow_port, struct base_endpoint *out);
/* A peer endpoint "host:port", "[v6]:port"; host an IP literal or a DNS name. */
const char *cfg_parse_endpoint(const char *s, struct cfg_hostport *out);
/* A DNS name: labels of letters, digits, '-' and '_', at most 253 characters; a trailing dot is
 * allowed. out (if given) gets it lowercased, with (trailing_dot) or without the final dot. */
const char *cfg_parse_domain(const char *s, bool trailing_dot, char **out);
/* A MagicDNS label: 1..63 letters, digits or '-', not starting or ending with '-'. */
const char *cfg_parse_label(const char *s, char **out);

#endif
