/*
 * base: the vocabulary every library of tunless shares, and nothing else. No I/O, no
 * allocation, no global state: addresses and their text forms, one error space, log levels and
 * the log callback, and an intrusive list.
 *
 * Memory: every function writes only into buffers the caller passes and keeps no pointer.
 */
#ifndef TUNLESS_BASE_H
#define TUNLESS_BASE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- Errors ----
 * One error space for every module, as libuv has: 0 is success, a negative errno value is what
 * the system (or a module, where errno has the right word: -ECONNREFUSED, -EHOSTUNREACH,
 * -ETIMEDOUT, -EDESTADDRREQ, ...) reports, and the codes below name what errno has no word for.
 * Every code has a string (base_strerror) and a short name for logs (base_errname).
 */
enum {
    BASE_ELIMIT = -4000,    /* a configured cap (connections, flows, queue) is reached */
    BASE_ECLOSING = -4001,  /* the object is closing; nothing new is accepted */
    BASE_EPARSE = -4002,    /* malformed input (a message, a file, a string) */
    BASE_EAUTH = -4003,     /* authentication failed */
    BASE_ENXDOMAIN = -4004, /* the name does not exist */
    BASE_ENOANSWER = -4005, /* the name exists but has no address of the kind asked for */
    BASE_EPOLICY = -4006,   /* refused by policy (tunnel-only, a packet filter rule) */
    BASE_ESTOPPED = -4007,  /* the node is stopped (want-running false) */
    BASE_ECONFIG = -4008,   /* the configuration is invalid */
    /* engine (-4100...) */
    /* netstack (-4200...) */
    /* proxy (-4300...) */
    /* dns (-4400...) */
    BASE_ESERVFAIL = -4400, /* no resolver answered (SERVFAIL, timeout, none serves the name) */
    /* config (-4500...) */
    /* derp (-4600...) */
    /* node (-4700...) */
};
/* A sentence for err ("connection refused"); "unknown error" for none. Never NULL. */
const char *base_strerror(int err);
/* A short name for logs: "ECONNREFUSED", "ELIMIT"; "EUNKNOWN" for none. Never NULL. */
const char *base_errname(int err);

/* ---- Log levels and the log callback ----
 * Libraries report events through a base_logger their owner fills in; a line is the event's
 * `event=NAME key=value ...` text, without time or level (the owner adds those). Levels are in
 * order of verbosity: a logger passes what is <= its level.
 */
enum base_log_level { BASE_LOG_ERROR = 0, BASE_LOG_WARN, BASE_LOG_INFO, BASE_LOG_DEBUG };
typedef void (*base_log_fn)(void *arg, enum base_log_level level, const char *line);
struct base_logger {
    base_log_fn fn; /* NULL: nothing is logged */
    void *arg;
    enum base_log_level level;
    /* The owner's level of the moment, read at every line instead of level when set, so that
     * a level changed at run time reaches every copy of the logger and a line the owner would
     * drop is never formatted. */
    const enum base_log_level *live;
};
#define BASE_LOG_LINE_MAX 1024
static inline bool base_log_enabled(const struct base_logger *l, enum base_log_level level)
{
    return l && l->fn && level <= (l->live ? *l->live : l->level);
}
/* Formats one line (cut at BASE_LOG_LINE_MAX) and hands it to l->fn when the level passes. */
void base_logf(const struct base_logger *l, enum base_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void base_vlogf(const struct base_logger *l, enum base_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* "error", "warn", "info", "debug" <-> the enum. parse returns 0 or BASE_EPARSE. */
int base_log_level_parse(const char *name, enum base_log_level *out);
const char *base_log_level_name(enum base_log_level level);
/* value as a key=value value: as it is when it has no space, quote, '=' or control character,
 * else in double quotes with \" \\ \n and \xNN escapes. Returns buf (cut to cap). */
const char *base_log_quote(char *buf, size_t cap, const char *value);
/* The one form of a WireGuard peer in every module's lines: `peer=NAME peer_key=KEY8`, NAME its
 * name (quoted if need be) or, for a peer without one (name NULL or ""), KEY8 again; KEY8 the
 * first 8 base64 characters of its public key. Returns buf (cut to cap). */
#define BASE_LOG_PEER_NAME_MAX 64
#define BASE_LOG_PEER_STRLEN (2 * BASE_LOG_PEER_NAME_MAX + 32)
const char *base_log_peer(char *buf, size_t cap, const char *name, const char *key8);

/* ---- Prometheus text exposition (version 0.0.4), prom.c ----
 * A pure formatter into the caller's buffer (no I/O, no allocation): one family at a time, its
 * # HELP and # TYPE lines, then its samples. Names are checked against Prometheus' grammar
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, labels without ':'), HELP text and label values are escaped (\\,
 * \n, and \" in values). Output that does not fit sets `truncated` (the text stays a prefix
 * cut at a line end): the caller retries with a bigger buffer. Each call returns 0 or -EINVAL
 * (a bad name; nothing written), BASE_ELIMIT when the buffer is full.
 */
enum base_prom_type { BASE_PROM_COUNTER = 1, BASE_PROM_GAUGE };
struct base_prom {
    char *buf;
    size_t cap, len; /* buf[len] is always '\0' (cap > 0) */
    bool truncated;
    char family[128]; /* the family samples go to */
};
struct base_prom_label {
    const char *name;
    const char *value;
};
void base_prom_init(struct base_prom *p, char *buf, size_t cap);
int base_prom_family(struct base_prom *p, const char *name, enum base_prom_type type,
                     const char *help);
/* One sample of the current family; n labels (0: none). Values: integers as they are, doubles
 * with 17 significant digits, NaN and +Inf/-Inf as Prometheus writes them. */
int base_prom_u64(struct base_prom *p, const struct base_prom_label *labels, size_t n, uint64_t v);
int base_prom_double(struct base_prom *p, const struct base_prom_label *labels, size_t n, double v);
/* A family with one unlabelled sample: the common case. */
int base_prom_one(struct base_prom *p, const char *name, enum base_prom_type type, const char *help,
                  uint64_t v);

/* ---- Addresses ----
 * An IP address is its family and its bytes in network order (4 used for AF_INET); family 0 is
 * "none". Endpoints add a port (host order); prefixes add a length in bits.
 */
struct base_addr {
    int family; /* AF_INET, AF_INET6, or 0 */
    uint8_t ip[16];
};
struct base_endpoint {
    struct base_addr addr;
    uint16_t port;
};
struct base_prefix {
    struct base_addr addr;
    uint8_t bits; /* <= 32 for AF_INET, <= 128 for AF_INET6 */
};

#define BASE_ADDR_STRLEN 46     /* INET6_ADDRSTRLEN */
#define BASE_ENDPOINT_STRLEN 54 /* "[" addr "]:" 5 digits, NUL */
#define BASE_PREFIX_STRLEN 50   /* addr "/128", NUL */
#define BASE_HOST_MAX 253       /* the longest DNS name in text, without the final dot */

void base_addr_v4(struct base_addr *a, const uint8_t ip[4]);
void base_addr_v6(struct base_addr *a, const uint8_t ip[16]);
/* 4 or 16 by family; 0 for none. */
size_t base_addr_len(const struct base_addr *a);
bool base_addr_equal(const struct base_addr *a, const struct base_addr *b);
bool base_addr_is_unspecified(const struct base_addr *a); /* 0.0.0.0, ::, or none */
bool base_addr_is_loopback(const struct base_addr *a);    /* 127/8, ::1 */
/* An IPv4 literal or an IPv6 literal without brackets or zone, exactly len bytes of s.
 * Returns 0 or BASE_EPARSE. */
int base_addr_parse(struct base_addr *out, const char *s, size_t len);
/* The text form (IPv6 compressed, RFC 5952); "none" for family 0. Returns buf. */
const char *base_addr_format(const struct base_addr *a, char *buf, size_t cap);

bool base_endpoint_equal(const struct base_endpoint *a, const struct base_endpoint *b);
/* "1.2.3.4:80" or "[::1]:80" (port required, 0 allowed). Returns 0 or BASE_EPARSE. */
int base_endpoint_parse(struct base_endpoint *out, const char *s, size_t len);
/* "1.2.3.4:80" / "[fd00::1]:80". Returns buf. */
const char *base_endpoint_format(const struct base_endpoint *e, char *buf, size_t cap);
/* sockaddr (AF_INET / AF_INET6) <-> endpoint. from returns 0 or -EAFNOSUPPORT; to returns the
 * sockaddr's length (0 for family 0). */
int base_endpoint_from_sockaddr(struct base_endpoint *out, const struct sockaddr *sa);
socklen_t base_endpoint_to_sockaddr(const struct base_endpoint *e, struct sockaddr_storage *ss);

/* "10.0.0.0/8", "fd00::/64"; a bare address is a host prefix (/32, /128). Host bits set below
 * the length are kept as written (base_prefix_masked clears them). Returns 0 or BASE_EPARSE. */
int base_prefix_parse(struct base_prefix *out, const char *s, size_t len);
const char *base_prefix_format(const struct base_prefix *p, char *buf, size_t cap);
void base_prefix_masked(struct base_prefix *p);
bool base_prefix_contains(const struct base_prefix *p, const struct base_addr *a);

/* ---- host:port ----
 * Splits "name:80", "1.2.3.4:80", "[fd00::1]:80" and, by flags, the forms without a port
 * ("name", "1.2.3.4", "[fd00::1]", "fd00::1"). host receives the host without brackets,
 * NUL-terminated; an address literal comes back as text too (base_addr_parse it to know).
 * Returns 0 or BASE_EPARSE, with *why (if given) a short static reason.
 */
enum {
    BASE_HOSTPORT_PORT_OPTIONAL = 1, /* a missing port leaves *port as it was */
    BASE_HOSTPORT_PORT_ZERO = 2,     /* port 0 is accepted */
};
int base_hostport_parse(const char *s, size_t len, char *host, size_t host_cap, uint16_t *port,
                        unsigned flags, const char **why);
/* A decimal port 1..65535 (0 too with BASE_HOSTPORT_PORT_ZERO), exactly len bytes. */
int base_port_parse(const char *s, size_t len, uint16_t *out, unsigned flags);

/* ---- Intrusive doubly linked list ----
 * A struct base_list is both the head of a list and the link inside each element; an element
 * finds its struct with container_of. A removed link points at itself, so removing it again, or
 * asking base_list_linked, is safe.
 */
#ifndef container_of
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
#endif

struct base_list {
    struct base_list *prev, *next;
};
static inline void base_list_init(struct base_list *l)
{
    l->prev = l->next = l;
}
static inline bool base_list_empty(const struct base_list *l)
{
    return l->next == l;
}
/* A link that is in some list (not removed, not just initialised). */
static inline bool base_list_linked(const struct base_list *n)
{
    return n->next != NULL && n->next != n;
}
static inline void base_list_insert_after(struct base_list *at, struct base_list *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}
static inline void base_list_push_back(struct base_list *head, struct base_list *n)
{
    base_list_insert_after(head->prev, n);
}
static inline void base_list_push_front(struct base_list *head, struct base_list *n)
{
    base_list_insert_after(head, n);
}
static inline void base_list_remove(struct base_list *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
/* The first element, or NULL when the list is empty. */
static inline struct base_list *base_list_first(const struct base_list *head)
{
    return head->next == head ? NULL : head->next;
}
/* Walks every link; _safe allows removing the current one. */
#define base_list_foreach(pos, head) \
    for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define base_list_foreach_safe(pos, tmp, head)                       \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

/* ---- Memory budget ----
 * What peers and clients can make a node hold (TCP windows and buffers, out-of-order queues,
 * relay buffers) is charged to one budget its owner creates and hands to each library. Charges
 * are real allocation sizes (headers and allocator overhead included), so small segments cost
 * what they cost. Libraries never refuse a charge: they read the pressure and shrink what they
 * offer (windows, buffers) so that senders slow down. limit 0: no limit (pressure stays 0).
 */
struct base_budget {
    size_t limit; /* bytes; 0 = unlimited */
    size_t used;  /* charged now */
    size_t peak;  /* the most ever charged */
    /* Optional: called when use has fallen to half of a high mark of at least
     * BASE_BUDGET_FALL_MIN (the owner may give memory back to the system then). */
    void (*on_fall)(void *arg);
    void *arg;
    size_t mark; /* private: the high mark since the last on_fall */
};
#define BASE_BUDGET_FALL_MIN ((size_t)16 << 20)
/* glibc malloc's cost per allocation beyond what was asked: the size word before the block and
 * the rounding up to 16 bytes (8 on average). A queue of writes is counted at its bytes plus,
 * for each write, its request, its header and this slack (proxy/pump.h, dns/listener.c,
 * node/http_conn.c): a peer's 1-byte pieces, or a reader that never takes tiny replies, would
 * otherwise hold some 250 bytes of heap for every byte counted. */
#define BASE_MALLOC_SLACK (2 * sizeof(size_t))
static inline void base_budget_charge(struct base_budget *b, size_t n)
{
    if (!b)
        return;
    b->used += n;
    if (b->used > b->peak)
        b->peak = b->used;
    if (b->used > b->mark)
        b->mark = b->used;
}
static inline void base_budget_release(struct base_budget *b, size_t n)
{
    if (!b)
        return;
    b->used = n > b->used ? 0 : b->used - n;
    if (b->on_fall && b->mark >= BASE_BUDGET_FALL_MIN && b->used < b->mark / 2) {
        b->mark = b->used;
        b->on_fall(b->arg);
    }
}
/* Bytes left before the limit (0 when over it); SIZE_MAX without a budget or a limit. */
static inline size_t base_budget_room(const struct base_budget *b)
{
    if (!b || !b->limit)
        return SIZE_MAX;
    return b->used >= b->limit ? 0 : b->limit - b->used;
}
/* How full the budget is, 0 (empty, or no limit) to 1024 (full or over). */
static inline unsigned base_budget_pressure(const struct base_budget *b)
{
    if (!b || !b->limit)
        return 0;
    if (b->used >= b->limit)
        return 1024;
    return (unsigned)((b->used / 1024) * 1024 / (b->limit / 1024 ? b->limit / 1024 : 1));
}
/* A size offered under pressure: full up to half the budget, then falling linearly to floor
 * when the budget is full. */
static inline size_t base_budget_scale(const struct base_budget *b, size_t full, size_t floor)
{
    unsigned p = base_budget_pressure(b);
    if (p <= 512 || full <= floor)
        return full;
    return floor + (full - floor) / 512 * (1024 - p);
}

#endif
