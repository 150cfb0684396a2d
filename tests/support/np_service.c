/*
 * node_pair's host services on 127.0.0.1, on the pair's loop: a TCP echo server (each
 * connection echoes what it reads and, at EOF, shuts down its side once everything is written
 * back), a UDP echo server (each datagram back to its sender), and a DNS server over UDP that
 * answers every A question with NP_DNS_ANSWER (an upstream for the nodes' resolvers).
 * np_echo_start binds them on ephemeral ports; np_echo_stop closes them and every open
 * connection.
 */
#include <stdlib.h>
#include <string.h>

#include "node_pair.h"

struct np_echo_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown;
    struct base_list link; /* in np_pair.echo_conns */
    char buf[16384];
};

struct echo_write {
    uv_write_t req;
    char data[];
};

static void on_conn_closed(uv_handle_t *h)
{
    free(container_of((uv_tcp_t *)h, struct np_echo_conn, tcp));
}

static void close_conn(struct np_echo_conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    base_list_remove(&c->link);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(container_of(req, struct echo_write, req));
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    close_conn(container_of(req, struct np_echo_conn, shutdown));
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct np_echo_conn *c = container_of((uv_tcp_t *)h, struct np_echo_conn, tcp);
    *buf = uv_buf_init(c->buf, sizeof(c->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct np_echo_conn *c = container_of((uv_tcp_t *)s, struct np_echo_conn, tcp);
    if (n == UV_EOF) {
        /* Queued after the echoes: the client reads them all, then EOF. */
        if (uv_shutdown(&c->shutdown, s, on_shutdown) != 0)
            close_conn(c);
        return;
    }
    if (n < 0) {
        close_conn(c);
        return;
    }
    struct echo_write *w = malloc(sizeof(*w) + (size_t)n);
    if (!w) {
        close_conn(c);
        return;
    }
    memcpy(w->data, buf->base, (size_t)n);
    uv_buf_t out = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, s, &out, 1, on_written) != 0) {
        free(w);
        close_conn(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct np_pair *p = container_of((uv_tcp_t *)server, struct np_pair, tcp_echo);
    struct np_echo_conn *c = status == 0 ? calloc(1, sizeof(*c)) : NULL;
    if (!c)
        return;
    base_list_init(&c->link);
    uv_tcp_init(&p->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    base_list_push_back(&p->echo_conns, &c->link);
    p->tcp_echo_accepted++;
}

/* ---- UDP: the echo server and the DNS server share the pair's buffer ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct np_pair *p = h->data;
    *buf = uv_buf_init((char *)p->udp_buf, sizeof(p->udp_buf) - 16);
}

/* The query turned into its response in place: NOERROR, and for an A question one answer,
 * NP_DNS_ANSWER. Returns the response's length, 0 for what is not a plain query. */
static size_t dns_respond(uint8_t *msg, size_t len)
{
    static const uint8_t answer[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, NP_DNS_ANSWER};
    size_t q = 12;
    if (len < 12 || (msg[2] & 0x80) || msg[4] != 0 || msg[5] != 1)
        return 0;
    while (q < len && msg[q] && msg[q] < 64)
        q += 1u + msg[q];
    q += 1 + 4; /* the root label, QTYPE, QCLASS */
    if (q > len)
        return 0;
    bool is_a = msg[q - 4] == 0 && msg[q - 3] == 1;
    msg[2] |= 0x80;        /* QR */
    msg[3] = 0x80;         /* RA, NOERROR */
    memset(msg + 6, 0, 6); /* no answer, authority, additional yet */
    msg[7] = is_a;         /* ANCOUNT */
    memcpy(msg + q, answer, is_a ? sizeof(answer) : 0);
    return q + (is_a ? sizeof(answer) : 0);
}

static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    struct np_pair *p = u->data;
    if (n < 0 || !from || (flags & UV_UDP_PARTIAL))
        return;
    size_t len = (size_t)n;
    if (u == &p->dns_server) {
        p->dns_queries++;
        len = dns_respond((uint8_t *)buf->base, len);
    } else {
        p->udp_echo_received++;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)len);
    if (len)
        uv_udp_try_send(u, &out, 1, from);
}

static uint16_t bound_port(const uv_handle_t *h)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int ret = h->type == UV_TCP
                  ? uv_tcp_getsockname((const uv_tcp_t *)h, (struct sockaddr *)&ss, &len)
                  : uv_udp_getsockname((const uv_udp_t *)h, (struct sockaddr *)&ss, &len);
    struct base_endpoint ep;
    if (ret != 0 || base_endpoint_from_sockaddr(&ep, (struct sockaddr *)&ss) != 0)
        return 0;
    return ep.port;
}

int np_echo_start(struct np_pair *p)
{
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    base_list_init(&p->echo_conns);
    uv_tcp_init(&p->loop, &p->tcp_echo);
    uv_udp_init(&p->loop, &p->udp_echo);
    uv_udp_init(&p->loop, &p->dns_server);
    p->udp_echo.data = p->dns_server.data = p;
    if (uv_tcp_bind(&p->tcp_echo, (struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&p->tcp_echo, 64, on_connection) != 0 ||
        uv_udp_bind(&p->udp_echo, (struct sockaddr *)&sin, 0) != 0 ||
        uv_udp_recv_start(&p->udp_echo, udp_alloc, udp_recv) != 0 ||
        uv_udp_bind(&p->dns_server, (struct sockaddr *)&sin, 0) != 0 ||
        uv_udp_recv_start(&p->dns_server, udp_alloc, udp_recv) != 0)
        return -1;
    p->tcp_echo_port = bound_port((uv_handle_t *)&p->tcp_echo);
    p->udp_echo_port = bound_port((uv_handle_t *)&p->udp_echo);
    p->dns_server_port = bound_port((uv_handle_t *)&p->dns_server);
    return p->tcp_echo_port && p->udp_echo_port && p->dns_server_port ? 0 : -1;
}

void np_echo_stop(struct np_pair *p)
{
    struct base_list *l;
    while ((l = base_list_first(&p->echo_conns)))
        close_conn(container_of(l, struct np_echo_conn, link));
    uv_handle_t *hs[] = {(uv_handle_t *)&p->tcp_echo, (uv_handle_t *)&p->udp_echo,
                         (uv_handle_t *)&p->dns_server};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], NULL);
}
