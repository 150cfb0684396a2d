/*
 * Drives one WireGuard engine against a real peer for tests/integration/test_engine_interop.sh.
 * Until the netstack exists it speaks raw IP: it sends ICMP echo requests from our tunnel
 * address through the engine and counts the decrypted replies, and it answers echo requests
 * that arrive for our address.
 *
 * usage: wg_engine_tool --private-key B64 --address A.B.C.D [--listen-port P]
 *          --peer-key B64 [--peer-endpoint IP:PORT] --peer-allowed A.B.C.D/N [--psk B64]
 *          [--keepalive SEC] [--rekey-after-messages N] [--under-load-threshold N] [--verbose]
 * Commands on stdin, one per line; each answers one line on stdout:
 *   ping DST COUNT TIMEOUT_SEC [INTERVAL_MS]  -> "ping sent=N received=M" (default 200 ms)
 *   stats                        -> "stats key=value ..."
 *   endpoint IP:PORT             -> "ok"
 *   quit
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "config.h"
#include "engine.h"

struct tool {
    uv_loop_t *loop;
    struct wg_engine *engine;
    uv_pipe_t in;
    uv_timer_t ping_timer;
    char line[1024];
    size_t line_len;
    uint8_t addr[4];
    uint8_t peer_key[WG_KEY_LEN];
    struct wg_allowed_ip allowed;
    struct wg_peer_config cfg;
    struct sockaddr_storage endpoint;
    uint8_t psk[WG_KEY_LEN];
    bool has_psk;
    uint64_t echo_answered;
    /* a ping command in progress */
    bool pinging;
    uint8_t ping_dst[4];
    unsigned ping_count, ping_sent, ping_received;
    uint64_t ping_deadline_ms;
    uint16_t ping_id;
    bool quitting;
};

static uint16_t csum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t build_echo(uint8_t *buf, const uint8_t src[4], const uint8_t dst[4], uint16_t id,
                         uint16_t seq)
{
    const size_t payload = 56, total = 20 + 8 + payload;
    memset(buf, 0, total);
    buf[0] = 0x45;
    put16(buf + 2, (uint16_t)total);
    buf[8] = 64;
    buf[9] = 1;
    memcpy(buf + 12, src, 4);
    memcpy(buf + 16, dst, 4);
    put16(buf + 10, csum(buf, 20));
    uint8_t *icmp = buf + 20;
    icmp[0] = 8;
    put16(icmp + 4, id);
    put16(icmp + 6, seq);
    for (size_t i = 0; i < payload; i++)
        icmp[8 + i] = (uint8_t)(i + seq);
    put16(icmp + 2, csum(icmp, 8 + payload));
    return total;
}

static void deliver(void *ctx, uint8_t *pkt, size_t len)
{
    struct tool *t = ctx;
    if (len < 28 || (pkt[0] >> 4) != 4 || pkt[9] != 1)
        return;
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if (ihl < 20 || len < ihl + 8 || memcmp(pkt + 16, t->addr, 4) != 0)
        return;
    uint8_t *icmp = pkt + ihl;
    size_t icmp_len = len - ihl;
    if (csum(icmp, icmp_len) != 0)
        return; /* what arrives must be intact */
    if (icmp[0] == 0 && t->pinging && (icmp[4] << 8 | icmp[5]) == t->ping_id &&
        memcmp(pkt + 12, t->ping_dst, 4) == 0) {
        t->ping_received++;
        return;
    }
    if (icmp[0] != 8)
        return;
    /* Echo request to us: answer in place (the buffer is ours during the call). */
    uint8_t tmp[4];
    memcpy(tmp, pkt + 12, 4);
    memcpy(pkt + 12, pkt + 16, 4);
    memcpy(pkt + 16, tmp, 4);
    pkt[8] = 64;
    put16(pkt + 10, 0);
    put16(pkt + 10, csum(pkt, ihl));
    icmp[0] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 2, csum(icmp, icmp_len));
    if (wg_engine_send(t->engine, pkt, len) == WG_OK)
        t->echo_answered++;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void finish_ping(struct tool *t)
{
    t->pinging = false;
    uv_timer_stop(&t->ping_timer);
    reply("ping sent=%u received=%u", t->ping_sent, t->ping_received);
}

static void on_ping_timer(uv_timer_t *h)
{
    struct tool *t = h->data;
    if (t->ping_received >= t->ping_count || uv_now(t->loop) >= t->ping_deadline_ms) {
        finish_ping(t);
        return;
    }
    /* Keep sending until enough are answered or time is up: the first ones may be lost to a
     * stale session (e.g. the peer restarted) that only a later handshake replaces. */
    uint8_t buf[128];
    size_t len = build_echo(buf, t->addr, t->ping_dst, t->ping_id, (uint16_t)t->ping_sent);
    int r = wg_engine_send(t->engine, buf, len);
    if (r != WG_OK)
        fprintf(stderr, "tool: send failed: %d\n", r);
    t->ping_sent++;
}

static void print_stats(struct tool *t)
{
    struct wg_engine_stats s;
    struct wg_peer_stats ps;
    char ep[INET6_ADDRSTRLEN] = "none";
    unsigned port = 0;

    wg_engine_stats(t->engine, &s);
    if (wg_engine_peer_stats(t->engine, t->peer_key, &ps) != WG_OK)
        memset(&ps, 0, sizeof(ps));
    if (ps.endpoint.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ps.endpoint;
        inet_ntop(AF_INET, &a->sin_addr, ep, sizeof(ep));
        port = ntohs(a->sin_port);
    }
    reply("stats handshakes=%" PRIu64 " rx_garbage=%" PRIu64 " rx_bad_mac=%" PRIu64
          " rx_bad_index=%" PRIu64 " rx_bad_packet=%" PRIu64 " rx_replayed=%" PRIu64
          " rx_bad_allowed_ip=%" PRIu64 " rx_unknown_peer=%" PRIu64 " tx_no_route=%" PRIu64
          " cookie_replies=%" PRIu64 " peer_rx=%" PRIu64 " peer_tx=%" PRIu64
          " has_session=%d last_handshake=%" PRIu64 " endpoint=%s:%u echo_answered=%" PRIu64,
          s.handshakes_completed, s.rx_garbage, s.rx_bad_mac, s.rx_bad_index, s.rx_bad_packet,
          s.rx_replayed, s.rx_bad_allowed_ip, s.rx_unknown_peer, s.tx_no_route,
          s.cookie_replies_sent, ps.rx_bytes, ps.tx_bytes, ps.has_session ? 1 : 0,
          (uint64_t)(ps.last_handshake_wall_ns / 1000000000ULL), ep, port, t->echo_answered);
}

static int parse_endpoint(struct sockaddr_storage *ss, const char *s)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void on_closed(void *ctx)
{
    struct tool *t = ctx;
    uv_close((uv_handle_t *)&t->ping_timer, NULL);
}

static void quit(struct tool *t)
{
    if (t->quitting)
        return;
    t->quitting = true;
    uv_read_stop((uv_stream_t *)&t->in);
    uv_close((uv_handle_t *)&t->in, NULL);
    wg_engine_close(t->engine, on_closed, t);
}

static void command(struct tool *t, char *line)
{
    char dst[64], ep[128];
    unsigned count, timeout, interval = 200;

    if (sscanf(line, "ping %63s %u %u %u", dst, &count, &timeout, &interval) >= 3) {
        if (t->pinging || inet_pton(AF_INET, dst, t->ping_dst) != 1 || !count) {
            reply("error bad ping");
            return;
        }
        t->pinging = true;
        t->ping_count = count;
        t->ping_sent = t->ping_received = 0;
        t->ping_id++;
        t->ping_deadline_ms = uv_now(t->loop) + (uint64_t)timeout * 1000;
        uv_timer_start(&t->ping_timer, on_ping_timer, 0, interval ? interval : 1);
    } else if (strcmp(line, "stats") == 0) {
        print_stats(t);
    } else if (sscanf(line, "endpoint %127s", ep) == 1) {
        if (parse_endpoint(&t->endpoint, ep) != 0) {
            reply("error bad endpoint");
            return;
        }
        t->cfg.endpoint = (struct sockaddr *)&t->endpoint;
        reply(wg_engine_set_peer(t->engine, &t->cfg) == WG_OK ? "ok" : "error set_peer");
    } else if (strcmp(line, "quit") == 0) {
        quit(t);
    } else {
        reply("error unknown command");
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char storage[4096];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(storage, sizeof(storage));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tool *t = s->data;
    if (n < 0) {
        quit(t);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            t->line[t->line_len] = '\0';
            t->line_len = 0;
            command(t, t->line);
            if (t->quitting)
                return;
        } else if (t->line_len < sizeof(t->line) - 1) {
            t->line[t->line_len++] = c;
        }
    }
}

static void log_line(void *ctx, enum wg_log_level level, const char *line)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "engine: %s\n", line);
}

static int key_arg(uint8_t key[WG_KEY_LEN], const char *s)
{
    if (cfg_key_from_base64(key, s, strlen(s)) != 0) {
        fprintf(stderr, "tool: bad key %s\n", s);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct tool t;
    struct wg_engine_options opt = {.log = log_line, .log_level = WG_LOG_INFO, .no_ipv6 = true};
    uint64_t rekey_after = 0;
    long under_load = -1;
    char prefix[64] = "";
    const char *endpoint = NULL;
    static const struct option longopts[] = {{"private-key", required_argument, 0, 'k'},
                                             {"address", required_argument, 0, 'a'},
                                             {"listen-port", required_argument, 0, 'l'},
                                             {"peer-key", required_argument, 0, 'p'},
                                             {"peer-endpoint", required_argument, 0, 'e'},
                                             {"peer-allowed", required_argument, 0, 'A'},
                                             {"psk", required_argument, 0, 's'},
                                             {"keepalive", required_argument, 0, 'K'},
                                             {"rekey-after-messages", required_argument, 0, 'r'},
                                             {"verbose", no_argument, 0, 'v'},
                                             {"under-load-threshold", required_argument, 0, 'u'},
                                             {0, 0, 0, 0}};
    int c;

    if (sodium_init() < 0)
        return 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (key_arg(opt.private_key, optarg))
                return 2;
            break;
        case 'a':
            if (inet_pton(AF_INET, optarg, t.addr) != 1)
                return 2;
            break;
        case 'l':
            opt.listen_port = (uint16_t)atoi(optarg);
            break;
        case 'p':
            if (key_arg(t.peer_key, optarg))
                return 2;
            break;
        case 'e':
            endpoint = optarg;
            break;
        case 'A':
            snprintf(prefix, sizeof(prefix), "%s", optarg);
            break;
        case 's':
            if (key_arg(t.psk, optarg))
                return 2;
            t.has_psk = true;
            break;
        case 'K':
            t.cfg.persistent_keepalive = (uint16_t)atoi(optarg);
            break;
        case 'r':
            rekey_after = strtoull(optarg, NULL, 10);
            break;
        case 'v':
            opt.log_level = WG_LOG_DEBUG;
            break;
        case 'u':
            under_load = atol(optarg);
            break;
        default:
            return 2;
        }
    }
    char *slash = strchr(prefix, '/');
    if (!slash || wg_key_is_zero(t.peer_key)) {
        fprintf(stderr, "tool: --peer-key and --peer-allowed A.B.C.D/N are required\n");
        return 2;
    }
    *slash = '\0';
    t.allowed.family = AF_INET;
    t.allowed.cidr = (uint8_t)atoi(slash + 1);
    if (inet_pton(AF_INET, prefix, t.allowed.addr) != 1)
        return 2;
    if (endpoint && parse_endpoint(&t.endpoint, endpoint) != 0)
        return 2;

    t.loop = uv_default_loop();
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    opt.loop = t.loop;
    opt.bind4 = &lo;
    opt.deliver = deliver;
    opt.deliver_ctx = &t;
    if (wg_engine_create(&t.engine, &opt) != WG_OK) {
        fprintf(stderr, "tool: cannot create engine\n");
        return 1;
    }
    sodium_memzero(opt.private_key, sizeof(opt.private_key));
    if (rekey_after)
        wg_engine_set_rekey_after_messages(t.engine, rekey_after);
    if (under_load >= 0)
        wg_engine_set_under_load_threshold(t.engine, (uint32_t)under_load);
    memcpy(t.cfg.public_key, t.peer_key, WG_KEY_LEN);
    t.cfg.preshared_key = t.has_psk ? t.psk : NULL;
    t.cfg.endpoint = endpoint ? (struct sockaddr *)&t.endpoint : NULL;
    t.cfg.allowed_ips = &t.allowed;
    t.cfg.allowed_ips_len = 1;
    if (wg_engine_set_peer(t.engine, &t.cfg) != WG_OK) {
        fprintf(stderr, "tool: cannot add peer\n");
        return 1;
    }
    uv_timer_init(t.loop, &t.ping_timer);
    t.ping_timer.data = &t;
    uv_pipe_init(t.loop, &t.in, 0);
    t.in.data = &t;
    if (uv_pipe_open(&t.in, 0) != 0 || uv_read_start((uv_stream_t *)&t.in, on_alloc, on_read)) {
        fprintf(stderr, "tool: stdin must be a pipe\n");
        return 1;
    }
    reply("ready port=%u", wg_engine_port(t.engine));
    uv_run(t.loop, UV_RUN_DEFAULT);
    uv_loop_close(t.loop);
    return 0;
}
