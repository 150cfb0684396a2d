/*
 * The sockets c-ares opens, through our socket functions: s_socket makes a slot, s_connect
 * ties it to a host socket (watched by a uv_poll) or, for servers the node's dns_transport
 * covers (inside the mesh), to that transport; reads, writes and close follow the slot's
 * kind. Readiness goes back to c-ares from the poll or from dns_transport_ready(). When the
 * transport goes away or a server changes sides, dns_socks_drop_mesh kills the sockets that
 * are now wrong; c-ares reads ECONNRESET from them on the reaper's next turn.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_internal.h"

static struct dns_transport_conn *conn_get(struct dns_resolver *r, ares_socket_t s)
{
    if (s < 0 || (size_t)s >= r->nsocks)
        return NULL;
    return r->socks[s];
}

/* The socket behind s for a read or write; NULL, errno set, when there is none to use. */
static struct dns_transport_conn *conn_io(struct dns_upstream *up, ares_socket_t s)
{
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c || c->kind == DNS_SOCK_NONE) {
        errno = EBADF;
        return NULL;
    }
    if (c->kind == DNS_SOCK_DEAD) {
        errno = ECONNRESET;
        return NULL;
    }
    return c;
}

/* A transport's result (a negative errno value on error) as c-ares wants it: -1 and errno. */
static ares_ssize_t sys_ret(ssize_t n)
{
    if (n >= 0)
        return n;
    errno = (int)-n;
    return -1;
}

/* ---- readiness ---- */

static void process(struct dns_transport_conn *c, bool readable, bool writable)
{
    struct dns_upstream *up = c->up;
    ares_process_fd(up->ch, readable ? c->id : ARES_SOCKET_BAD, writable ? c->id : ARES_SOCKET_BAD);
    dns_upstream_reschedule(up);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct dns_transport_conn *c = p->data;
    process(c, status < 0 || (events & UV_READABLE),
            (status < 0 && c->want_write) || (events & UV_WRITABLE));
}

void dns_transport_ready(struct dns_transport_conn *c, bool readable, bool writable)
{
    process(c, readable, writable);
}

static void apply_wants(struct dns_transport_conn *c)
{
    if (c->kind == DNS_SOCK_HOST) {
        int ev = (c->want_read ? UV_READABLE : 0) | (c->want_write ? UV_WRITABLE : 0);
        if (ev)
            uv_poll_start(c->poll, ev, on_poll);
        else
            uv_poll_stop(c->poll);
    } else if (c->kind == DNS_SOCK_MESH && c->want_write) {
        /* The transport signals writability on changes only: try once from the loop. */
        dns_upstream_kick(c->r);
    }
}

void dns_sock_state_cb(void *data, ares_socket_t s, int readable, int writable)
{
    struct dns_upstream *up = data;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c)
        return;
    c->want_read = readable;
    c->want_write = writable;
    apply_wants(c);
}

void dns_socks_retry(struct dns_resolver *r)
{
    for (size_t i = 0; i < r->nsocks; i++) {
        struct dns_transport_conn *c = r->socks[i];
        if (c && c->kind == DNS_SOCK_MESH && c->want_write)
            process(c, false, true);
        else if (c && c->kind == DNS_SOCK_DEAD)
            process(c, true, true);
    }
}

/* ---- open and close ---- */

static int slot_new(struct dns_resolver *r)
{
    size_t i;
    for (i = 0; i < r->nsocks && r->socks[i]; i++)
        ;
    if (i < r->nsocks)
        return (int)i;
    size_t n = r->nsocks ? r->nsocks * 2 : 16;
    struct dns_transport_conn **s = realloc(r->socks, n * sizeof(*s));
    if (!s)
        return -1;
    memset(s + r->nsocks, 0, (n - r->nsocks) * sizeof(*s));
    r->socks = s;
    r->nsocks = n;
    return (int)i;
}

static ares_socket_t s_socket(int family, int type, int protocol, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_resolver *r = up->r;
    (void)protocol;
    int i = slot_new(r);
    struct dns_transport_conn *c = i < 0 ? NULL : calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return ARES_SOCKET_BAD;
    }
    *c = (struct dns_transport_conn){
        .r = r, .up = up, .id = i, .family = family, .type = type, .fd = -1};
    r->socks[i] = c;
    return (ares_socket_t)i;
}

/* A poll is one of the resolver's handles: its close is counted like the timers'. */
static void on_poll_closed(uv_handle_t *h)
{
    struct dns_resolver *r = h->data;
    free(h);
    dns_resolver_handle_closed(r);
}

static void host_release(struct dns_transport_conn *c)
{
    uv_poll_stop(c->poll);
    close(c->fd);
    c->poll->data = c->r;
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    c->poll = NULL;
    c->fd = -1;
}

static int s_close(ares_socket_t s, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c)
        return -1;
    if (c->kind == DNS_SOCK_HOST)
        host_release(c);
    else if (c->kind == DNS_SOCK_MESH)
        up->r->mesh.close(up->r->mesh.ctx, c->fd);
    up->r->socks[s] = NULL;
    free(c);
    return 0;
}

static int host_poll(struct dns_transport_conn *c, int fd)
{
    c->poll = malloc(sizeof(*c->poll));
    if (!c->poll || uv_poll_init(c->r->loop, c->poll, fd) < 0) {
        free(c->poll);
        c->poll = NULL;
        return -ENOMEM;
    }
    c->r->open_handles++;
    c->poll->data = c;
    c->fd = fd;
    c->kind = DNS_SOCK_HOST;
    apply_wants(c);
    return 0;
}

static int host_connect(struct dns_transport_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = base_endpoint_to_sockaddr(&c->peer, &ss);
    int fd = socket(c->family, c->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (c->type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    int err = rc < 0 ? errno : 0;
    if ((err && err != EINPROGRESS) || host_poll(c, fd) < 0) {
        close(fd);
        errno = err && err != EINPROGRESS ? err : ENOMEM;
        return -1;
    }
    errno = err;
    return rc;
}

static int s_connect(ares_socket_t s, const struct sockaddr *sa, ares_socklen_t len, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_resolver *r = up->r;
    struct dns_transport_conn *c = conn_get(r, s);
    (void)len;
    if (!c || c->kind != DNS_SOCK_NONE || base_endpoint_from_sockaddr(&c->peer, sa) < 0) {
        errno = EBADF;
        return -1;
    }
    if (!r->has_mesh || !r->mesh.covers(r->mesh.ctx, &c->peer.addr))
        return host_connect(c);
    int h = r->mesh.open(r->mesh.ctx, c->type, &c->peer, c);
    if (h < 0)
        return (int)sys_ret(h);
    c->fd = h;
    c->kind = DNS_SOCK_MESH;
    apply_wants(c);
    if (c->type == SOCK_STREAM) {
        errno = EINPROGRESS; /* up when the transport reports it writable */
        return -1;
    }
    return 0;
}

/* ---- reads and writes ---- */

static ares_ssize_t s_recvfrom(ares_socket_t s, void *buf, size_t len, int flags,
                               struct sockaddr *from, ares_socklen_t *fromlen, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_io(up, s);
    if (!c)
        return -1;
    if (c->kind == DNS_SOCK_HOST)
        return recvfrom(c->fd, buf, len, flags, from, fromlen);
    ssize_t n = up->r->mesh.recv(up->r->mesh.ctx, c->fd, buf, len);
    if (n >= 0 && from && fromlen) {
        struct sockaddr_storage ss;
        socklen_t l = base_endpoint_to_sockaddr(&c->peer, &ss);
        memcpy(from, &ss, *fromlen < l ? *fromlen : l);
        *fromlen = l;
    }
    return sys_ret(n);
}

static ares_ssize_t s_sendv(ares_socket_t s, const struct iovec *iov, int n, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_io(up, s);
    if (!c)
        return -1;
    if (c->kind == DNS_SOCK_HOST)
        return writev(c->fd, iov, n);
    return sys_ret(up->r->mesh.send(up->r->mesh.ctx, c->fd, iov, n));
}

const struct ares_socket_functions dns_sock_funcs = {
    s_socket, s_close, s_connect, s_recvfrom, s_sendv,
};

/* ---- the transport going away, servers changing sides ---- */

void dns_socks_drop_mesh(struct dns_resolver *r, bool misrouted_only)
{
    bool any = false;
    for (size_t i = 0; i < r->nsocks; i++) {
        struct dns_transport_conn *c = r->socks[i];
        if (!c || (c->kind != DNS_SOCK_MESH && c->kind != DNS_SOCK_HOST))
            continue;
        bool covered = r->has_mesh && r->mesh.covers(r->mesh.ctx, &c->peer.addr);
        if (c->kind == DNS_SOCK_HOST) {
            if (!misrouted_only || !covered)
                continue;
            host_release(c); /* a server the mesh now covers must not be asked in the clear */
        } else {
            if (misrouted_only && covered)
                continue;
            r->mesh.close(r->mesh.ctx, c->fd);
            c->fd = -1;
        }
        c->kind = DNS_SOCK_DEAD;
        any = true;
    }
    if (any)
        dns_upstream_kick(r);
}
