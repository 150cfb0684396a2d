/*
 * Blocking clients for node_pair tests, run on np_call's thread while the loop serves them:
 * plain TCP (np_exchange writes and reads at once, for bulk echoes), an HTTP CONNECT, UDP
 * round trips, and DNS queries built and read with c-ares (a codec independent of the node's
 * dns/); SOCKS5 is in np_socks5.c. Every socket times out after NP_IO_TIMEOUT_MS, so a client
 * never blocks a test for longer.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "node_pair.h"

int np_with_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = NP_IO_TIMEOUT_MS / 1000,
                         .tv_usec = (NP_IO_TIMEOUT_MS % 1000) * 1000};
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct sockaddr_in np_loopback(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

int np_tcp_connect(uint16_t port)
{
    int fd = np_with_timeouts(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in sin = np_loopback(port);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* send() or recv() until len bytes went; a timeout, an error or EOF fails. */
static int io_all(int fd, char *p, size_t len, bool sending)
{
    while (len > 0) {
        ssize_t n = sending ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int np_send_all(int fd, const void *buf, size_t len)
{
    return io_all(fd, (char *)buf, len, true);
}

int np_recv_all(int fd, void *buf, size_t len)
{
    return io_all(fd, buf, len, false);
}

long np_recv_to_eof(int fd, void *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, (char *)buf + got, cap - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && got + (size_t)n == cap))
            return -1; /* an error, a timeout, or more than the caller expects */
        if (n == 0)
            return (long)got;
        got += (size_t)n;
    }
}

/* One poll round of np_exchange: write what POLLOUT allows, read what POLLIN brings.
 * Returns 0, 1 at EOF, or -1. */
static int exchange_step(int fd, const char *out, size_t len, size_t *sent, char *in, size_t cap,
                         size_t *got)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN | (*sent < len ? POLLOUT : 0)};
    if (poll(&pfd, 1, NP_IO_TIMEOUT_MS) <= 0)
        return -1;
    if ((pfd.revents & POLLOUT) && *sent < len) {
        ssize_t n = send(fd, out + *sent, len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        *sent += n > 0 ? (size_t)n : 0;
        if (*sent == len && shutdown(fd, SHUT_WR) != 0)
            return -1;
    }
    if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
        return 0;
    ssize_t n = recv(fd, in + *got, cap - *got, MSG_DONTWAIT);
    if (n == 0)
        return 1;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    *got += (size_t)n;
    return *got == cap ? -1 : 0; /* more than the caller expects */
}

long np_exchange(int fd, const void *out, size_t len, void *in, size_t cap)
{
    size_t sent = 0, got = 0;
    int ret = 0;
    if (len == 0 && shutdown(fd, SHUT_WR) != 0)
        return -1;
    while (ret == 0)
        ret = exchange_step(fd, out, len, &sent, in, cap, &got);
    return ret == 1 && sent == len ? (long)got : -1;
}

/* The response head, byte by byte so nothing after it is consumed; its status code. */
static int http_head(int fd)
{
    char head[1024];
    size_t n = 0;
    while (n + 1 < sizeof(head)) {
        if (np_recv_all(fd, head + n, 1) != 0)
            return -1;
        head[++n] = '\0';
        if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    int status = -1;
    return sscanf(head, "HTTP/1.%*c %d", &status) == 1 ? status : -1;
}

int np_http_connect(uint16_t proxy_port, const char *authority, int *status)
{
    char req[600];
    int len =
        snprintf(req, sizeof(req), "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
    *status = -1;
    int fd = len > 0 && (size_t)len < sizeof(req) ? np_tcp_connect(proxy_port) : -1;
    if (fd < 0)
        return -1;
    if (np_send_all(fd, req, (size_t)len) != 0 || (*status = http_head(fd)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

long np_udp_exchange(uint16_t port, const void *msg, size_t len, void *answer, size_t cap)
{
    int fd = np_with_timeouts(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    struct sockaddr_in sin = np_loopback(port);
    if (fd < 0)
        return -1;
    ssize_t n = -1;
    if (sendto(fd, msg, len, 0, (struct sockaddr *)&sin, sizeof(sin)) == (ssize_t)len)
        n = recv(fd, answer, cap, 0);
    close(fd);
    return n;
}

long np_dns_build(const char *name, int qtype, uint8_t *out, size_t cap)
{
    unsigned char *q = NULL;
    int qlen = 0;
    if (ares_create_query(name, 1 /* IN */, qtype, 0x4e50, 1, &q, &qlen, 0) != ARES_SUCCESS)
        return -1;
    long n = (size_t)qlen <= cap ? qlen : -1;
    if (n > 0)
        memcpy(out, q, (size_t)qlen);
    ares_free_string(q);
    return n;
}

long np_dns_over_stream(int fd, const uint8_t *q, size_t len, uint8_t *answer, size_t cap)
{
    uint8_t head[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (np_send_all(fd, head, 2) != 0 || np_send_all(fd, q, len) != 0 ||
        np_recv_all(fd, head, 2) != 0)
        return -1;
    size_t want = (size_t)head[0] << 8 | head[1];
    return want <= cap && np_recv_all(fd, answer, want) == 0 ? (long)want : -1;
}

long np_dns_query(uint16_t port, bool tcp, const char *name, int qtype, uint8_t *answer, size_t cap)
{
    uint8_t q[512];
    long qlen = np_dns_build(name, qtype, q, sizeof(q));
    if (qlen < 0)
        return -1;
    if (!tcp)
        return np_udp_exchange(port, q, (size_t)qlen, answer, cap);
    int fd = np_tcp_connect(port);
    long n = fd < 0 ? -1 : np_dns_over_stream(fd, q, (size_t)qlen, answer, cap);
    if (fd >= 0)
        close(fd);
    return n;
}

int np_dns_rcode(const uint8_t *msg, size_t len)
{
    return len >= 4 ? msg[3] & 0x0f : -1;
}
