/*
 * Upstream resolvers through c-ares, driven by the loop: every socket c-ares opens goes
 * through our socket functions, which connect it to a host socket (watched by a uv_poll) or,
 * for servers the node's dns_transport covers (inside the mesh), to that transport. A uv_timer per channel runs
 * c-ares' retransmission timeouts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_internal.h"

static void reschedule(struct dns_upstream *up);

static struct dns_transport_conn *conn_get(struct dns_resolver *r, ares_socket_t s)
{
    if (s < 0 || (size_t)s >= r->nsocks)
        return NULL;
    return r->socks[s];
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct dns_transport_conn *c = p->data;
    struct dns_upstream *up = c->up;
    int rd = status < 0 || (events & UV_READABLE);
    int wr = (status < 0 && c->want_write) || (events & UV_WRITABLE);
    ares_process_fd(up->ch, rd ? c->id : ARES_SOCKET_BAD, wr ? c->id : ARES_SOCKET_BAD);
    reschedule(up);
}

static void conn_apply_wants(struct dns_transport_conn *c)
{
    if (c->kind == DNS_SOCK_HOST) {
        int ev = (c->want_read ? UV_READABLE : 0) | (c->want_write ? UV_WRITABLE : 0);
        if (ev)
            uv_poll_start(c->poll, ev, on_poll);
        else
            uv_poll_stop(c->poll);
    } else if (c->kind == DNS_SOCK_MESH && c->want_write && !c->r->closing) {
        /* The transport signals writability on changes only: try once from the loop. */
        uv_timer_start(&c->r->reaper, c->r->reaper.timer_cb, 0, 0);
    }
}

static void sock_state_cb(void *data, ares_socket_t s, int readable, int writable)
{
    struct dns_upstream *up = data;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c)
        return;
    c->want_read = readable;
    c->want_write = writable;
    conn_apply_wants(c);
}

void dns_transport_ready(struct dns_transport_conn *c, int readable, int writable)
{
    struct dns_upstream *up = c->up;
    ares_process_fd(up->ch, readable ? c->id : ARES_SOCKET_BAD, writable ? c->id : ARES_SOCKET_BAD);
    reschedule(up);
}

static ares_socket_t s_socket(int family, int type, int protocol, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_resolver *r = up->r;
    size_t i;
    (void)protocol;

    for (i = 0; i < r->nsocks && r->socks[i]; i++)
        ;
    if (i == r->nsocks) {
        size_t n = r->nsocks ? r->nsocks * 2 : 16;
        struct dns_transport_conn **s = realloc(r->socks, n * sizeof(*s));
        if (!s) {
            errno = ENOMEM;
            return ARES_SOCKET_BAD;
        }
        memset(s + r->nsocks, 0, (n - r->nsocks) * sizeof(*s));
        r->socks = s;
        r->nsocks = n;
    }
    struct dns_transport_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        errno = ENOMEM;
        return ARES_SOCKET_BAD;
    }
    c->r = r;
    c->up = up;
    c->id = (int)i;
    c->family = family;
    c->type = type;
    c->fd = -1;
    r->socks[i] = c;
    return (ares_socket_t)i;
}

static void poll_closed(uv_handle_t *h)
{
    free(h);
}

static void host_release(struct dns_transport_conn *c)
{
    uv_poll_stop(c->poll);
    close(c->fd);
    uv_close((uv_handle_t *)c->poll, poll_closed);
    c->poll = NULL;
    c->fd = -1;
}

static int s_close(ares_socket_t s, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c)
        return -1;
    if (c->kind == DNS_SOCK_HOST) {
        host_release(c);
    } else if (c->kind == DNS_SOCK_MESH) {
        up->r->mesh.close(up->r->mesh.ctx, c->fd);
    }
    up->r->socks[s] = NULL;
    free(c);
    return 0;
}

static int host_connect(struct dns_transport_conn *c, const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(c->family, c->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (c->type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = connect(fd, sa, len);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->poll = malloc(sizeof(*c->poll));
    if (!c->poll || uv_poll_init(c->r->loop, c->poll, fd) < 0) {
        free(c->poll);
        c->poll = NULL;
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    c->poll->data = c;
    c->fd = fd;
    c->kind = DNS_SOCK_HOST;
    conn_apply_wants(c);
    if (rc < 0) {
        errno = EINPROGRESS;
        return -1;
    }
    return 0;
}

static int s_connect(ares_socket_t s, const struct sockaddr *sa, ares_socklen_t len, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_resolver *r = up->r;
    struct dns_transport_conn *c = conn_get(r, s);

    if (!c || c->kind != DNS_SOCK_NONE || len > sizeof(c->peer)) {
        errno = EBADF;
        return -1;
    }
    memcpy(&c->peer, sa, len);
    c->peerlen = len;
    if (!r->has_mesh || !r->mesh.covers(r->mesh.ctx, sa))
        return host_connect(c, sa, len);
    errno = 0;
    int h = r->mesh.open(r->mesh.ctx, c->type, sa, len, c);
    if (h < 0)
        return -1;
    c->fd = h;
    c->kind = DNS_SOCK_MESH;
    conn_apply_wants(c);
    if (c->type == SOCK_STREAM) {
        errno = EINPROGRESS; /* up when the transport reports it writable */
        return -1;
    }
    return 0;
}

/* The transport is going away (or being replaced): its sockets are closed now, and c-ares
 * learns it on its next read (ECONNRESET), which the reaper triggers from the loop. */
void dns_upstream_drop_mesh(struct dns_resolver *r, int misrouted_only)
{
    int any = 0;
    for (size_t i = 0; i < r->nsocks; i++) {
        struct dns_transport_conn *c = r->socks[i];
        if (!c || (c->kind != DNS_SOCK_MESH && c->kind != DNS_SOCK_HOST))
            continue;
        int covered = r->has_mesh && r->mesh.covers &&
                      r->mesh.covers(r->mesh.ctx, (struct sockaddr *)&c->peer);
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
        any = 1;
    }
    if (any && !r->closing)
        uv_timer_start(&r->reaper, r->reaper.timer_cb, 0, 0);
}

static ares_ssize_t s_recvfrom(ares_socket_t s, void *buf, size_t len, int flags,
                               struct sockaddr *from, ares_socklen_t *fromlen, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c || c->kind == DNS_SOCK_NONE) {
        errno = EBADF;
        return -1;
    }
    if (c->kind == DNS_SOCK_HOST)
        return recvfrom(c->fd, buf, len, flags, from, fromlen);
    if (c->kind == DNS_SOCK_DEAD) {
        errno = ECONNRESET;
        return -1;
    }
    ssize_t n = up->r->mesh.recv(up->r->mesh.ctx, c->fd, buf, len);
    if (n >= 0 && from && fromlen) {
        socklen_t l = *fromlen < c->peerlen ? *fromlen : c->peerlen;
        memcpy(from, &c->peer, l);
        *fromlen = c->peerlen;
    }
    return n;
}

static ares_ssize_t s_sendv(ares_socket_t s, const struct iovec *iov, int n, void *ud)
{
    struct dns_upstream *up = ud;
    struct dns_transport_conn *c = conn_get(up->r, s);
    if (!c || c->kind == DNS_SOCK_NONE) {
        errno = EBADF;
        return -1;
    }
    if (c->kind == DNS_SOCK_HOST)
        return writev(c->fd, iov, n);
    if (c->kind == DNS_SOCK_DEAD) {
        errno = ECONNRESET;
        return -1;
    }
    return up->r->mesh.send(up->r->mesh.ctx, c->fd, iov, n);
}

static const struct ares_socket_functions sock_funcs = {
    s_socket, s_close, s_connect, s_recvfrom, s_sendv,
};

static void on_ares_timer(uv_timer_t *t)
{
    struct dns_upstream *up = t->data;
    ares_process_fd(up->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    reschedule(up);
}

static void reschedule(struct dns_upstream *up)
{
    struct timeval tv, *t;
    if (up->r->closing && up->retired)
        return;
    t = ares_timeout(up->ch, NULL, &tv);
    if (!t) {
        uv_timer_stop(&up->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    uv_timer_start(&up->timer, on_ares_timer, ms, 0);
}

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_request *req = arg;
    struct dns_upstream *up = req->up;
    (void)timeouts;
    up->pending--;
    req->in_ares = 0;
    dns_forward_done(req, status, abuf, alen > 0 ? (size_t)alen : 0);
    if (up->retired && !up->pending && !up->r->closing)
        uv_timer_start(&up->r->reaper, up->r->reaper.timer_cb, 0, 0);
}

void dns_upstream_send(struct dns_upstream *up, const uint8_t *q, size_t len,
                       struct dns_request *req)
{
    req->up = up;
    req->in_ares = 1;
    up->pending++;
    ares_send(up->ch, q, (int)len, on_answer, req);
    reschedule(up);
}

struct dns_upstream *dns_upstream_route(struct dns_resolver *r, const uint8_t *name)
{
    struct dns_upstream *best = NULL;
    size_t best_len = 0;
    for (struct dns_upstream *up = r->routes; up; up = up->next) {
        size_t l = dns_name_len(up->suffix);
        if ((!best || l > best_len) && dns_name_under(name, up->suffix)) {
            best = up;
            best_len = l;
        }
    }
    return best;
}

int dns_parse_hostport(const char *s, uint16_t default_port, struct sockaddr_storage *ss,
                       socklen_t *len)
{
    char host[64];
    const char *port = NULL;
    size_t n = strlen(s);

    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || (size_t)(end - s - 1) >= sizeof(host))
            return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: ipv4:port */
            n = (size_t)(colon - s);
            port = colon + 1;
        }
        if (n >= sizeof(host))
            return -1;
        memcpy(host, s, n);
        host[n] = 0;
    }
    unsigned long p = default_port;
    if (port) {
        char *endp;
        if (!*port)
            return -1;
        p = strtoul(port, &endp, 10);
        if (*endp || p == 0 || p > 65535)
            return -1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*in6);
        return 0;
    }
    return -1;
}

static void upstream_closed(uv_handle_t *h)
{
    free(h->data);
}

static void upstream_destroy(struct dns_upstream *up)
{
    ares_destroy(up->ch);
    uv_close((uv_handle_t *)&up->timer, upstream_closed);
}

static int upstream_new(struct dns_resolver *r, const char *suffix, const char *const *servers,
                        size_t n, unsigned timeout_ms, struct dns_upstream **out, char *err,
                        size_t errlen)
{
    struct ares_addr_port_node *nodes = calloc(n ? n : 1, sizeof(*nodes));
    struct dns_upstream *up = calloc(1, sizeof(*up));
    struct ares_options o;
    char lookups[] = "b";
    int mask = 0;

    if (!nodes || !up) {
        dns_set_err(err, errlen, "out of memory");
        goto fail;
    }
    up->r = r;
    if (dns_name_from_text(suffix, up->suffix) < 0) {
        dns_set_err(err, errlen, "bad route suffix '%s'", suffix);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t sl;
        if (!servers[i] || dns_parse_hostport(servers[i], 53, &ss, &sl) < 0) {
            dns_set_err(err, errlen, "bad upstream server '%s'",
                        servers[i] ? servers[i] : "(null)");
            goto fail;
        }
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
        nodes[i].family = ss.ss_family;
        if (ss.ss_family == AF_INET) {
            nodes[i].addr.addr4 = ((struct sockaddr_in *)&ss)->sin_addr;
            nodes[i].udp_port = nodes[i].tcp_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else {
            memcpy(&nodes[i].addr.addr6, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
            nodes[i].udp_port = nodes[i].tcp_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_STAYOPEN;
    /* Two rounds over every server, the second with doubled timeouts, fit in timeout_ms;
     * the resolver's own deadline answers SERVFAIL at timeout_ms regardless. */
    unsigned per_try = timeout_ms / (3 * (unsigned)(n ? n : 1));
    o.timeout = (int)(per_try < 50 ? 50 : per_try);
    o.tries = 2;
    o.ndots = 1;
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = up;
    o.lookups = lookups;
    mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS |
           ARES_OPT_SOCK_STATE_CB | ARES_OPT_SERVERS | ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS |
           ARES_OPT_SORTLIST;
    int rc = ares_init_options(&up->ch, &o, mask);
    if (rc != ARES_SUCCESS) {
        dns_set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    ares_set_socket_functions(up->ch, &sock_funcs, up);
    rc = ares_set_servers_ports(up->ch, n ? nodes : NULL);
    if (rc != ARES_SUCCESS) {
        dns_set_err(err, errlen, "c-ares servers: %s", ares_strerror(rc));
        ares_destroy(up->ch);
        goto fail;
    }
    uv_timer_init(r->loop, &up->timer);
    up->timer.data = up;
    free(nodes);
    *out = up;
    return 0;
fail:
    free(nodes);
    free(up);
    return -1;
}

static void on_reaper(uv_timer_t *t)
{
    struct dns_resolver *r = t->data;
    dns_upstreams_reap(r, 0);
    /* Mesh sockets with writes pending: let c-ares try them now. */
    for (size_t i = 0; i < r->nsocks; i++) {
        struct dns_transport_conn *c = r->socks[i];
        if (c && c->kind == DNS_SOCK_MESH && c->want_write)
            dns_transport_ready(c, 0, 1);
        else if (c && c->kind == DNS_SOCK_DEAD)
            dns_transport_ready(c, 1, 1);
    }
}

int dns_upstreams_build(struct dns_resolver *r, const struct dns_config *cfg,
                        struct dns_upstream **out, char *err, size_t errlen)
{
    struct dns_upstream *list = NULL, *up;
    unsigned timeout = cfg->timeout_ms ? cfg->timeout_ms : DNS_DEFAULT_TIMEOUT_MS;

    r->reaper.timer_cb = on_reaper;
    if (cfg->n_upstreams) {
        if (upstream_new(r, ".", cfg->upstreams, cfg->n_upstreams, timeout, &up, err, errlen) < 0)
            goto fail;
        up->next = list;
        list = up;
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct dns_route *rt = &cfg->routes[i];
        if (!rt->suffix || !rt->n_servers) {
            dns_set_err(err, errlen, "route %zu: suffix and servers needed", i);
            goto fail;
        }
        if (upstream_new(r, rt->suffix, rt->servers, rt->n_servers, timeout, &up, err, errlen) < 0)
            goto fail;
        up->next = list;
        list = up;
    }
    *out = list;
    return 0;
fail:
    while (list) {
        up = list;
        list = up->next;
        upstream_destroy(up);
    }
    return -1;
}

void dns_upstream_retire(struct dns_upstream *up)
{
    struct dns_resolver *r = up->r;
    up->retired = 1;
    up->next = r->retired;
    r->retired = up;
    if (!up->pending && !r->closing)
        uv_timer_start(&r->reaper, on_reaper, 0, 0);
}

void dns_upstreams_reap(struct dns_resolver *r, int all)
{
    struct dns_upstream **p = &r->retired;
    while (*p) {
        struct dns_upstream *up = *p;
        if (!all && up->pending) {
            p = &up->next;
            continue;
        }
        *p = up->next;
        uv_timer_stop(&up->timer);
        upstream_destroy(up);
    }
}
