/*
 * SOCKS5 clients for node_pair tests, byte for byte as RFC 1928 has them, blocking (np_call's
 * thread): the greeting without authentication, then one request (CONNECT, or UDP ASSOCIATE
 * with its datagrams in the RFC's header through the relay the reply names).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node_pair.h"

#define CMD_CONNECT 1
#define CMD_UDP_ASSOCIATE 3

/* ATYP 1 (IPv4), 4 (IPv6) or 3 (a name), the address, the port: the tail of a request and the
 * head of a UDP datagram. */
static size_t put_address(uint8_t *out, const char *host, uint16_t port)
{
    size_t n = 0;
    if (inet_pton(AF_INET, host, out + 1) == 1) {
        out[0] = 1;
        n = 1 + 4;
    } else if (inet_pton(AF_INET6, host, out + 1) == 1) {
        out[0] = 4;
        n = 1 + 16;
    } else {
        size_t len = strlen(host);
        out[0] = 3;
        out[1] = (uint8_t)len;
        memcpy(out + 2, host, len);
        n = 2 + len;
    }
    out[n++] = (uint8_t)(port >> 8);
    out[n++] = (uint8_t)port;
    return n;
}

/* The reply: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT; *reply gets REP, *bnd_port BND.PORT. */
static int read_reply(int fd, int *reply, uint16_t *bnd_port)
{
    uint8_t head[4], rest[16 + 2];
    if (np_recv_all(fd, head, 4) != 0 || head[0] != 5)
        return -1;
    size_t len = head[3] == 1 ? 4 : head[3] == 4 ? 16 : 0;
    if (len == 0 || np_recv_all(fd, rest, len + 2) != 0)
        return -1;
    *reply = head[1];
    *bnd_port = (uint16_t)(rest[len] << 8 | rest[len + 1]);
    return 0;
}

/* Greeting, then VER CMD RSV and the address; the connected socket, or -1. */
static int request(uint16_t proxy_port, uint8_t cmd, const char *host, uint16_t port, int *reply,
                   uint16_t *bnd_port)
{
    uint8_t hello[] = {5, 1, 0}, choice[2], req[3 + 2 + 255 + 2] = {5, cmd, 0};
    *reply = -1;
    if (strlen(host) > 255)
        return -1;
    int fd = np_tcp_connect(proxy_port);
    if (fd < 0)
        return -1;
    size_t n = 3 + put_address(req + 3, host, port);
    if (np_send_all(fd, hello, sizeof(hello)) != 0 || np_recv_all(fd, choice, 2) != 0 ||
        choice[0] != 5 || choice[1] != 0 || np_send_all(fd, req, n) != 0 ||
        read_reply(fd, reply, bnd_port) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int np_socks5_connect(uint16_t proxy_port, const char *host, uint16_t port, int *reply)
{
    uint16_t bnd_port;
    return request(proxy_port, CMD_CONNECT, host, port, reply, &bnd_port);
}

int np_socks5_udp_open(struct np_socks5_udp *u, uint16_t proxy_port, int *reply)
{
    u->udp = np_with_timeouts(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    u->ctl = u->udp < 0
                 ? -1
                 : request(proxy_port, CMD_UDP_ASSOCIATE, "0.0.0.0", 0, reply, &u->relay_port);
    if (u->ctl >= 0 && *reply == 0)
        return 0;
    np_socks5_udp_close(u);
    return -1;
}

long np_socks5_udp_exchange(struct np_socks5_udp *u, const char *host, uint16_t port,
                            const void *msg, size_t len, void *answer, size_t cap)
{
    uint8_t out[1500], in[1500];
    size_t head = 3 + put_address(out + 3, host, port);
    if (strlen(host) > 255 || head + len > sizeof(out))
        return -1;
    memset(out, 0, 3); /* RSV RSV FRAG */
    memcpy(out + head, msg, len);
    struct sockaddr_in relay = np_loopback(u->relay_port);
    if (sendto(u->udp, out, head + len, 0, (struct sockaddr *)&relay, sizeof(relay)) !=
        (ssize_t)(head + len))
        return -1;
    if (!answer)
        return 0;
    ssize_t n = recv(u->udp, in, sizeof(in), 0);
    size_t in_head = n >= 4 ? 3 + (in[3] == 1 ? 7 : in[3] == 4 ? 19 : 0) : 0;
    if (n < 0 || in_head <= 3 || (size_t)n < in_head || (size_t)n - in_head > cap)
        return -1;
    memcpy(answer, in + in_head, (size_t)n - in_head);
    return n - (ssize_t)in_head;
}

void np_socks5_udp_close(struct np_socks5_udp *u)
{
    if (u->ctl >= 0)
        close(u->ctl);
    if (u->udp >= 0)
        close(u->udp);
    u->ctl = u->udp = -1;
}
