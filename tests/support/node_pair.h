/*
 * node_pair: two full nodes in the test process, as `tunless demo` runs them, without root and
 * without files. Each is a struct node_daemon started from wg-quick text built in memory (keys
 * generated here), both on one uv loop, talking real WireGuard over loopback UDP on ephemeral
 * ports, each with its SOCKS5+HTTP proxy and DNS listener on 127.0.0.1 ephemeral ports. The
 * pair also runs a TCP and a UDP echo server and a DNS server on 127.0.0.1: the host services
 * tests publish.
 *
 *   struct np_pair p;                              (or np_setup / np_teardown in cmocka)
 *   np_init(&p);                                   loop, keys, echo servers
 *   snprintf(spec, sizeof(spec), "8080=127.0.0.1:%u", p.tcp_echo_port);
 *   const char *b_flags[] = {"--publish", spec, NULL};
 *   np_start(&p, &(struct np_setup){.b_flags = b_flags});
 *   np_call(&p, client, &job, 3000);               client() on a thread, blocking sockets
 *                                                  (np_client.c), while the loop runs
 *   np_stop(&p);                                   0 only if both nodes closed every handle
 *
 * Node a is 100.64.0.1 and fd7a:115c:a1e0::1, MagicDNS name "a"; node b is .2 / ::2, "b"; each
 * has the other as its one peer (AllowedIPs its /32 and /128, Endpoint 127.0.0.1:its port).
 * Flags are `tunless up`'s; whatever port a listener flag names, the harness binds every
 * listener (proxy, DNS, --forward) on an ephemeral port instead: ask np_*_port which.
 * Every wait is bounded; nothing here calls cmocka, so callers assert on what it returns.
 * NP_LOG=debug (or info, warn) shows the nodes' logs; the default is errors only.
 */
#ifndef TUNLESS_TEST_NODE_PAIR_H
#define TUNLESS_TEST_NODE_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "base.h"
#include "daemon.h"

#define NP_CONF_MAX 4096
/* What the pair's DNS server answers to every A question: 192.0.2.53 (TEST-NET-1). */
#define NP_DNS_ANSWER 192, 0, 2, 53
#define NP_DNS_ANSWER_TEXT "192.0.2.53"

struct np_node {
    struct node_daemon d; /* valid while up */
    bool up;
    const char *name, *addr4, *addr6; /* "a", "100.64.0.1", "fd7a:115c:a1e0::1" */
    char priv[WG_KEY_B64_LEN + 1], pub[WG_KEY_B64_LEN + 1];
    uint8_t pub_key[WG_KEY_LEN];
    const char *extra;     /* np_setup's [Peer] sections for this node */
    const char *interface; /* np_setup's extra [Interface] lines */
};

struct np_pair {
    uv_loop_t loop;
    struct np_node a, b;
    uv_timer_t tick; /* wakes the loop while a waiter polls its condition */
    uv_tcp_t tcp_echo;
    uv_udp_t udp_echo, dns_server;
    uint16_t tcp_echo_port, udp_echo_port, dns_server_port; /* on 127.0.0.1 */
    struct base_list echo_conns;                            /* np_service.c's open connections */
    unsigned tcp_echo_accepted; /* connections the TCP echo server took */
    unsigned udp_echo_received; /* datagrams the UDP echo server took */
    unsigned dns_queries;       /* queries the DNS server answered */
    uint8_t udp_buf[65536];
    char state_dir[64]; /* the nodes' --state-dir: must stay empty (their keys are in memory) */
    bool stopped;       /* np_stop ran: the loop is closed */
};

struct np_setup {
    /* Extra `tunless up` flags for each node, NULL-terminated (NULL: none). */
    const char *const *a_flags, *const *b_flags;
    /* Extra wg-quick [Peer] sections appended to each node's configuration (NULL: none). */
    const char *a_peers, *b_peers;
    /* Extra [Interface] lines ("DNS = 100.64.0.2\n"), NULL: none. */
    const char *a_interface, *b_interface;
};

/* The loop, both nodes' keys and the echo servers. 0, or -1 with nothing left to stop. */
int np_init(struct np_pair *p);
/* Starts b, then a (whose configuration names b's port), then gives b a's port: both nodes
 * up and able to reach each other. 0, or -1 (the nodes' error on stderr; call np_stop). */
int np_start(struct np_pair *p, const struct np_setup *s);
/* Stops both nodes and the echo servers, runs the loop until nothing is left (at most a few
 * seconds), frees what the nodes leave to their owner and closes the loop. 0, or -1 with the
 * handles still open listed on stderr, or when the nodes wrote into their state directory.
 * Once stopped, it does nothing and returns 0. */
int np_stop(struct np_pair *p);

/* For cmocka_unit_test_setup_teardown: setup puts a heap np_pair after np_init in *state;
 * teardown, which runs after a failed test too, np_stops it (non-zero fails the test) and
 * frees it (unless handles stayed open: then it is left, so that nothing points at freed
 * memory). Tests call np_start themselves, with their flags. */
int np_setup(void **state);
int np_teardown(void **state);

/* The node's ports: WireGuard (UDP), the SOCKS5+HTTP proxy, the DNS listener (UDP and TCP),
 * and the i-th --forward listener. 0 when there is none. */
uint16_t np_wg_port(const struct np_node *n);
uint16_t np_proxy_port(const struct np_node *n);
uint16_t np_dns_port(const struct np_node *n);
uint16_t np_forward_port(const struct np_node *n, size_t i);

/* n's wg-quick text as np_start configures it (its key, addresses and np_setup's interface
 * lines; the other node as a peer, with its endpoint once that node is up), then extra
 * ([Peer] sections; may be NULL).
 * Returns buf, or NULL when cap is too small. */
const char *np_config_text(struct np_pair *p, struct np_node *n, const char *extra, char *buf,
                           size_t cap);
/* Replaces the first `from` in text (a NUL-terminated string in a buffer of cap bytes) by
 * `to`: 0, or -1 when from is not there or the result would not fit. */
int np_text_replace(char *text, size_t cap, const char *from, const char *to);
/* Parses text (wg-quick) and applies it to n as a reload does. 0, -1 when it does not parse,
 * -2 when the node rejects it. */
int np_apply(struct np_node *n, const char *text);
/* A fresh key pair in base64. */
void np_keypair(char priv[WG_KEY_B64_LEN + 1], char pub[WG_KEY_B64_LEN + 1]);

/* Runs the loop until cond(arg) is true (checked every loop turn, at least every millisecond)
 * or timeout_ms pass. 0, or -1 on timeout. */
int np_run_until(struct np_pair *p, bool (*cond)(void *arg), void *arg, unsigned timeout_ms);
/* Runs fn(arg) on a thread while the loop runs, for clients with blocking sockets (whose
 * operations time out by themselves, np_client.c). 0, or -1 if fn took more than timeout_ms
 * (it is still waited for). */
int np_call(struct np_pair *p, void (*fn)(void *arg), void *arg, unsigned timeout_ms);

/* np_service.c, for np_init and np_stop: binds the echo servers (0 or -1); closes them and
 * their connections. */
int np_echo_start(struct np_pair *p);
void np_echo_stop(struct np_pair *p);

/* ---- np_client.c: blocking clients for np_call's threads. Sockets time out after
 * NP_IO_TIMEOUT_MS; every call returns -1 on any failure. ---- */
#define NP_IO_TIMEOUT_MS 2000

/* A TCP connection to 127.0.0.1:port. */
int np_tcp_connect(uint16_t port);
/* An HTTP CONNECT to authority ("host:port") through the proxy on 127.0.0.1:proxy_port.
 * Returns the socket once the response head is read (the tunnel's bytes follow); *status
 * gets its status code (200, 403, 502, ...), or -1 when the exchange itself failed. */
int np_http_connect(uint16_t proxy_port, const char *authority, int *status);
int np_send_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes. */
int np_recv_all(int fd, void *buf, size_t len);
/* Reads until EOF; the byte count, or -1 on an error or timeout. */
long np_recv_to_eof(int fd, void *buf, size_t cap);
/* Writes len bytes of out while reading what comes back into in, half-closes after the
 * last byte and reads until EOF: the bytes read (at most cap - 1), or -1. For bulk echoes,
 * where writing everything before reading would fill every buffer on the way. */
long np_exchange(int fd, const void *out, size_t len, void *in, size_t cap);
/* Sends one datagram to 127.0.0.1:port from a fresh socket and waits for one answer. Returns
 * its length. */
long np_udp_exchange(uint16_t port, const void *msg, size_t len, void *answer, size_t cap);
/* A DNS query (class IN, RD set) for name/qtype to 127.0.0.1:port over UDP, or TCP (with
 * its length prefix). Returns the answer's length. */
long np_dns_query(uint16_t port, bool tcp, const char *name, int qtype, uint8_t *answer,
                  size_t cap);
/* The query np_dns_query sends, into out: its length. */
long np_dns_build(const char *name, int qtype, uint8_t *out, size_t cap);
/* DNS over a connected stream (fd): the query after its 2-byte length, the answer likewise.
 * The answer's length. */
long np_dns_over_stream(int fd, const uint8_t *q, size_t len, uint8_t *answer, size_t cap);
/* The RCODE of a DNS message (0 NOERROR, 3 NXDOMAIN). */
int np_dns_rcode(const uint8_t *msg, size_t len);
/* For np_socks5.c: a socket with NP_IO_TIMEOUT_MS timeouts (fd < 0 passes through);
 * 127.0.0.1:port. */
int np_with_timeouts(int fd);
struct sockaddr_in np_loopback(uint16_t port);

/* ---- np_socks5.c ---- */
/* A SOCKS5 CONNECT (no authentication) through the proxy on 127.0.0.1:proxy_port to host
 * (an IPv4 or IPv6 literal, else a name) and port. Returns the connected socket; *reply gets
 * the server's reply code (0 success, 2 not allowed, 5 refused, ...), or -1 when the
 * exchange itself failed. */
int np_socks5_connect(uint16_t proxy_port, const char *host, uint16_t port, int *reply);
/* A SOCKS5 UDP association: its control connection, the client's datagram socket and the
 * relay's port on 127.0.0.1. */
struct np_socks5_udp {
    int ctl, udp;
    uint16_t relay_port;
};
/* 0, or -1 with *reply the server's code (7: UDP ASSOCIATE not supported), or -1. */
int np_socks5_udp_open(struct np_socks5_udp *u, uint16_t proxy_port, int *reply);
/* One datagram to host:port through the relay and one datagram back (its header removed):
 * the answer's length, or -1 (no answer within NP_IO_TIMEOUT_MS). answer NULL: only sends. */
long np_socks5_udp_exchange(struct np_socks5_udp *u, const char *host, uint16_t port,
                            const void *msg, size_t len, void *answer, size_t cap);
void np_socks5_udp_close(struct np_socks5_udp *u);

#endif
