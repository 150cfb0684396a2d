/*
 * The netstack behind the real engine, for test_netstack_interop.sh: one action per run.
 *   ns_peer_tool OPTIONS connect HOST PORT BYTES   send BYTES (a fixed pseudo-random stream),
 *                                                  FIN, read until the server's FIN
 *   ns_peer_tool OPTIONS serve PORT BYTES [ADDR]   accept one connection on any of our
 *                                                  addresses, read until FIN, send BYTES, FIN;
 *                                                  ping ADDR once first (makes a session)
 *   ns_peer_tool OPTIONS ping HOST COUNT           ICMP echo, one per 200 ms
 *   ns_peer_tool OPTIONS idle SECONDS [ADDR]       just answer (pings) for a while; ping ADDR
 *                                                  once first (makes a session)
 * Prints one line "sent=N sent_sha256=H recv=M recv_sha256=H" (or "received=K") and exits 0.
 * OPTIONS: --private-key B64 --address A.B.C.D --listen-port P --peer-key B64
 *          --peer-allowed A.B.C.D/N --peer-endpoint 127.0.0.1:P [--tcp-snd-buf N] [--tcp-rcv-wnd N]
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "config.h"
#include "engine.h"
#include "netstack.h"

struct tool {
    uv_loop_t *loop;
    struct wg_engine *engine;
    struct ns_stack *ns;
    struct ns_conn *conn;
    uint64_t to_send, sent, recvd;
    uint32_t tx;
    uint8_t buf[65536];
    size_t off, len;
    int shut, eof, done, status;
    crypto_hash_sha256_state tx_sha, rx_sha;
    struct base_addr dst;
    int ping_left, ping_received, ping_seq, ping_out;
    uv_timer_t timer;
};

static struct tool t;

static void deliver(void *ctx, uint8_t *pkt, size_t len)
{
    (void)ctx;
    ns_stack_input(t.ns, pkt, len);
}

static int output(void *ctx, const uint8_t *pkt, size_t len)
{
    (void)ctx;
    int rc = wg_engine_send(t.engine, pkt, len);
    if (rc == WG_ERR_NO_ROUTE)
        return NS_OUTPUT_NO_ROUTE;
    return rc == WG_OK ? 0 : -1;
}

static void log_line(void *ctx, enum wg_log_level level, const char *line)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "engine: %s\n", line);
}

/* The words the integration script looks for ("pinged=ok", "error=unreachable"). */
static const char *status_text(int err)
{
    if (err == 0)
        return "ok";
    if (err == -ENETUNREACH || err == -EHOSTUNREACH)
        return "unreachable";
    return base_strerror(err);
}

static void hex(const uint8_t *h, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

/* Closed connections may still be sending their last bytes: wait for them (bounded). */
static void linger_tick(uv_timer_t *tm)
{
    static int ticks;
    if (ns_stack_tcp_lingering(t.ns) == 0 || ++ticks > 600) {
        uv_timer_stop(tm);
        uv_stop(t.loop);
    }
}

static void finish(int status)
{
    if (t.done)
        return;
    t.done = 1;
    t.status = status;
    uv_timer_start(&t.timer, linger_tick, 0, 50);
}

static void report(void)
{
    uint8_t h1[32], h2[32];
    char x1[65], x2[65];
    crypto_hash_sha256_final(&t.tx_sha, h1);
    crypto_hash_sha256_final(&t.rx_sha, h2);
    hex(h1, x1);
    hex(h2, x2);
    printf("sent=%llu sent_sha256=%s recv=%llu recv_sha256=%s\n", (unsigned long long)t.sent, x1,
           (unsigned long long)t.recvd, x2);
    fflush(stdout);
}

static void maybe_done(void)
{
    if (t.eof && t.shut) {
        report();
        ns_conn_close(t.conn);
        t.conn = NULL;
        finish(0);
    }
}

static uint8_t next_byte(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return (uint8_t)x;
}

static void pump(void)
{
    while (t.sent < t.to_send) {
        if (t.off == t.len) {
            uint64_t left = t.to_send - t.sent;
            t.len = left < sizeof(t.buf) ? (size_t)left : sizeof(t.buf);
            for (size_t i = 0; i < t.len; i++)
                t.buf[i] = next_byte(&t.tx);
            t.off = 0;
        }
        ssize_t n = ns_conn_write(t.conn, t.buf + t.off, t.len - t.off);
        if (n < 0) {
            fprintf(stderr, "tool: write: %s\n", base_strerror((int)n));
            finish(1);
            return;
        }
        if (n == 0)
            return;
        crypto_hash_sha256_update(&t.tx_sha, t.buf + t.off, (size_t)n);
        t.off += (size_t)n;
        t.sent += (uint64_t)n;
    }
    if (!t.shut) {
        t.shut = 1;
        ns_conn_shutdown(t.conn);
        maybe_done();
    }
}

static void c_read(struct ns_conn *c, const uint8_t *d, size_t len)
{
    if (!d) {
        t.eof = 1;
        if (!t.shut)
            pump(); /* serve: answer after the client's FIN */
        maybe_done();
        return;
    }
    crypto_hash_sha256_update(&t.rx_sha, d, len);
    t.recvd += len;
    ns_conn_consumed(c, len);
}

static void c_writable(struct ns_conn *c)
{
    (void)c;
    pump();
}

static void c_error(struct ns_conn *c, int err)
{
    (void)c;
    fprintf(stderr, "tool: connection error: %s\n", status_text(err));
    printf("error=%s\n", status_text(err));
    finish(1);
}

static void c_connect(struct ns_conn *c, int status)
{
    (void)c;
    if (status != 0) {
        c_error(c, status);
        return;
    }
    pump();
}

static const struct ns_conn_cbs cbs = {c_connect, c_read, c_writable, c_error};

static void on_accept(void *ctx, struct ns_conn *c)
{
    (void)ctx;
    if (t.conn) {
        ns_conn_reset(c);
        return;
    }
    t.conn = c;
    ns_conn_set_cbs(c, &cbs, NULL);
}

static void ping_cb(void *data, int status, uint64_t rtt)
{
    (void)data;
    (void)rtt;
    if (status == BASE_ECLOSING)
        return; /* the tool is ending */
    t.ping_out--;
    if (status == 0)
        t.ping_received++;
    else
        fprintf(stderr, "tool: ping: %s\n", base_strerror(status));
    if (!t.ping_left && !t.ping_out) {
        printf("received=%d\n", t.ping_received);
        fflush(stdout);
        finish(0);
    }
}

static void ping_tick(uv_timer_t *tm)
{
    if (!t.ping_left) {
        uv_timer_stop(tm);
        return;
    }
    t.ping_left--;
    t.ping_out++;
    if (ns_ping_send(t.ns, &t.dst, (uint16_t)++t.ping_seq, 56, 5000, ping_cb, NULL, NULL) != 0) {
        t.ping_out--;
        fprintf(stderr, "tool: cannot ping\n");
    }
}

static void idle_ping_cb(void *data, int status, uint64_t rtt)
{
    (void)data;
    (void)rtt;
    if (status == BASE_ECLOSING)
        return; /* the tool is ending */
    printf("ready pinged=%s\n", status_text(status));
    fflush(stdout);
}

static void idle_done(uv_timer_t *tm)
{
    (void)tm;
    printf("idle done\n");
    fflush(stdout);
    finish(0);
}

static int key_arg(uint8_t key[WG_KEY_LEN], const char *s)
{
    return cfg_key_from_base64(key, s, strlen(s)) == 0 ? 0 : -1;
}

static void engine_closed(void *ctx)
{
    (void)ctx;
}

struct tool_args {
    struct wg_engine_options opt;
    struct wg_peer_config peer;
    struct wg_allowed_ip allowed;
    struct sockaddr_storage ep;
    struct ns_config cfg;
};

static int parse_option(struct tool_args *a, int c, const char *arg)
{
    struct base_endpoint ep;
    struct base_prefix pfx;
    switch (c) {
    case 'k':
        return key_arg(a->opt.private_key, arg);
    case 'a':
        return base_addr_parse(&a->cfg.addr4, arg, strlen(arg)) || a->cfg.addr4.family != AF_INET;
    case 'l':
        a->opt.listen_port = (uint16_t)atoi(arg);
        return 0;
    case 'S':
        a->cfg.tcp_snd_buf = (uint32_t)strtoul(arg, NULL, 10);
        return 0;
    case 'R':
        a->cfg.tcp_rcv_wnd = (uint32_t)strtoul(arg, NULL, 10);
        return 0;
    case 'p':
        return key_arg(a->peer.public_key, arg);
    case 'e':
        if (base_endpoint_parse(&ep, arg, strlen(arg)) || ep.addr.family != AF_INET)
            return -1;
        base_endpoint_to_sockaddr(&ep, &a->ep);
        a->peer.endpoint = (struct sockaddr *)&a->ep;
        return 0;
    case 'A':
        if (base_prefix_parse(&pfx, arg, strlen(arg)) || pfx.addr.family != AF_INET)
            return -1;
        a->allowed.cidr = pfx.bits;
        memcpy(a->allowed.addr, pfx.addr.ip, 4);
        return 0;
    default:
        return -1;
    }
}

/* The options into a; returns the index of the mode, or -1. */
static int parse_args(struct tool_args *a, int argc, char **argv)
{
    static const struct option longopts[] = {{"private-key", required_argument, 0, 'k'},
                                             {"address", required_argument, 0, 'a'},
                                             {"listen-port", required_argument, 0, 'l'},
                                             {"peer-key", required_argument, 0, 'p'},
                                             {"peer-endpoint", required_argument, 0, 'e'},
                                             {"peer-allowed", required_argument, 0, 'A'},
                                             {"tcp-snd-buf", required_argument, 0, 'S'},
                                             {"tcp-rcv-wnd", required_argument, 0, 'R'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (parse_option(a, c, optarg) != 0)
            return -1;
    if (optind >= argc || a->cfg.addr4.family != AF_INET) {
        fprintf(stderr, "usage: see the top of ns_peer_tool.c\n");
        return -1;
    }
    return optind;
}

static int start_engine_and_stack(struct tool_args *a)
{
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a->opt.loop = t.loop;
    a->opt.bind4 = &lo;
    a->opt.deliver = deliver;
    if (wg_engine_create(&t.engine, &a->opt) != WG_OK) {
        fprintf(stderr, "tool: cannot create engine\n");
        return 1;
    }
    sodium_memzero(a->opt.private_key, sizeof(a->opt.private_key));
    a->peer.allowed_ips = &a->allowed;
    a->peer.allowed_ips_len = 1;
    if (wg_engine_set_peer(t.engine, &a->peer) != WG_OK)
        return 1;
    a->cfg.output = output;
    if (ns_stack_new(t.loop, &a->cfg, &t.ns) != 0)
        return 1;
    return 0;
}

/* A ping first makes the session the peer will answer on (a fresh engine has none). */
static void ping_first(const char *addr)
{
    if (!base_addr_parse(&t.dst, addr, strlen(addr)))
        ns_ping_send(t.ns, &t.dst, 1, 8, 5000, idle_ping_cb, NULL, NULL);
}

/* argv[0] is the mode, argc counts it and its arguments. 0, 1 (failed) or 2 (usage). */
static int start_mode(int argc, char **argv)
{
    if (!strcmp(argv[0], "connect") && argc > 3) {
        struct base_endpoint r = {.port = (uint16_t)atoi(argv[2])};
        if (base_addr_parse(&r.addr, argv[1], strlen(argv[1])))
            return 2;
        t.to_send = strtoull(argv[3], NULL, 10);
        int err = ns_conn_connect(t.ns, &r, &cbs, NULL, &t.conn);
        if (err != 0)
            printf("error=%s\n", status_text(err));
        return err != 0;
    }
    if (!strcmp(argv[0], "serve") && argc > 2) {
        t.to_send = strtoull(argv[2], NULL, 10);
        ns_stack_handle_tcp(t.ns, NULL, (uint16_t)atoi(argv[1]), on_accept, NULL);
        if (argc > 3)
            ping_first(argv[3]);
        return 0;
    }
    if (!strcmp(argv[0], "ping") && argc > 2) {
        if (base_addr_parse(&t.dst, argv[1], strlen(argv[1])))
            return 2;
        t.ping_left = atoi(argv[2]);
        uv_timer_start(&t.timer, ping_tick, 0, 200);
        return 0;
    }
    if (!strcmp(argv[0], "idle") && argc > 1) {
        uv_timer_start(&t.timer, idle_done, (uint64_t)atoi(argv[1]) * 1000, 0);
        if (argc > 2)
            ping_first(argv[2]);
        return 0;
    }
    return 2;
}

static void print_counters(void)
{
    const struct ns_counters *ctr = ns_stack_counters(t.ns);
    fprintf(stderr, "tool: pkts_in=%llu pkts_out=%llu drop_malformed=%llu no_route=%llu\n",
            (unsigned long long)ctr->pkts_in, (unsigned long long)ctr->pkts_out,
            (unsigned long long)ctr->drop_malformed, (unsigned long long)ctr->no_route);
    struct wg_engine_stats es;
    wg_engine_stats(t.engine, &es);
    fprintf(stderr,
            "tool: engine tx_udp_errors=%llu tx_queue_dropped=%llu rx_replayed=%llu "
            "rx_bad_packet=%llu\n",
            (unsigned long long)es.tx_udp_errors, (unsigned long long)es.tx_queue_dropped,
            (unsigned long long)es.rx_replayed, (unsigned long long)es.rx_bad_packet);
}

int main(int argc, char **argv)
{
    struct tool_args a = {
        .opt = {.log = log_line, .log_level = WG_LOG_WARN, .no_ipv6 = true},
        .allowed = {.family = AF_INET},
    };
    if (sodium_init() < 0)
        return 1;
    int mode = parse_args(&a, argc, argv);
    if (mode < 0)
        return 2;
    t.loop = uv_default_loop();
    if (start_engine_and_stack(&a) != 0)
        return 1;
    crypto_hash_sha256_init(&t.tx_sha);
    crypto_hash_sha256_init(&t.rx_sha);
    t.tx = 0x12345678;
    uv_timer_init(t.loop, &t.timer);
    int rc = start_mode(argc - mode, argv + mode);
    if (rc != 0)
        return rc;
    printf("ready port=%u\n", wg_engine_port(t.engine));
    fflush(stdout);
    uv_run(t.loop, UV_RUN_DEFAULT);
    print_counters();
    if (t.conn)
        ns_conn_reset(t.conn);
    ns_stack_close(t.ns, NULL, NULL);
    uv_close((uv_handle_t *)&t.timer, NULL);
    wg_engine_close(t.engine, engine_closed, NULL);
    uv_run(t.loop, UV_RUN_DEFAULT);
    return t.status;
}
