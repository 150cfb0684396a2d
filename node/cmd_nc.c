/*
 * `tunless nc HOST PORT`: stdin and stdout joined to HOST:PORT through the running node's
 * SOCKS5 proxy, for `ssh -o ProxyCommand='tunless nc %h %p'`. Flow: parse the arguments, find
 * the proxy (--proxy, else TUNLESS_PROXY or TUNLESS_SOCKS5, else the first SOCKS5 listener the
 * node's local API lists, proxy_from_api, else 127.0.0.1:1080), connect to the proxy, SOCKS5 greeting (username/password when TUNLESS_PROXY_USER and
 * TUNLESS_PROXY_PASS are set) and CONNECT with the name as given (the node resolves it), then
 * copy both ways; stdin's EOF half-closes the connection, the remote's EOF ends the copy.
 * A short-lived client: blocking sockets and poll(), no event loop.
 */
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "localapi_client.h"
#include "node.h"
#include "options.h"

#define NC_DEFAULT_PROXY "127.0.0.1:1080"

static int nc_usage(FILE *out, int code)
{
    fprintf(out,
            "usage: tunless nc [--proxy ADDR] [--socket PATH] HOST PORT\n\n"
            "Joins stdin and stdout to HOST:PORT through the node's SOCKS5 proxy: --proxy, env\n"
            "TUNLESS_PROXY or TUNLESS_SOCKS5, else the one the node's local API names (--socket,\n"
            "default as `tunless status`), else " NC_DEFAULT_PROXY ". Credentials from\n"
            "TUNLESS_PROXY_USER and TUNLESS_PROXY_PASS. E.g.\n"
            "  ssh -o ProxyCommand='tunless nc %%h %%p' user@db\n");
    return code;
}

static const char *reply_name(unsigned code)
{
    static const char *const names[] = {
        "succeeded",           "general failure",       "connection not allowed by ruleset",
        "network unreachable", "host unreachable",      "connection refused",
        "TTL expired",         "command not supported", "address type not supported"};
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "unknown reply";
}

/* Moves exactly len bytes to (writing) or from fd, through short counts and EINTR; -1 on an
 * error or an early end. */
static int move_all(int fd, void *buf, size_t len, bool writing)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    return move_all(fd, (void *)buf, len, true);
}

static int read_all(int fd, void *buf, size_t len)
{
    return move_all(fd, buf, len, false);
}

/* RFC 1929 username/password, when the node asked for it. */
static int auth_userpass(int fd, const char *user, const char *pass)
{
    unsigned char msg[515], rep[2];
    size_t ul = strlen(user), pl = strlen(pass), n = 0;
    if (ul > 255 || pl > 255)
        return -1;
    msg[n++] = 1;
    msg[n++] = (unsigned char)ul;
    memcpy(msg + n, user, ul);
    n += ul;
    msg[n++] = (unsigned char)pl;
    memcpy(msg + n, pass, pl);
    n += pl;
    int r = write_all(fd, msg, n) == 0 && read_all(fd, rep, 2) == 0 && rep[1] == 0 ? 0 : -1;
    memset(msg, 0, sizeof(msg));
    return r;
}

static int greet(int fd)
{
    const char *user = getenv("TUNLESS_PROXY_USER"), *pass = getenv("TUNLESS_PROXY_PASS");
    bool creds = user && *user && pass;
    unsigned char hello[4] = {5, creds ? 2 : 1, 0, 2}, rep[2];
    if (write_all(fd, hello, creds ? 4u : 3u) != 0 || read_all(fd, rep, 2) != 0 || rep[0] != 5) {
        fprintf(stderr, "tunless nc: the proxy does not speak SOCKS5\n");
        return -1;
    }
    if (rep[1] == 2 && creds && auth_userpass(fd, user, pass) == 0)
        return 0;
    if (rep[1] == 0)
        return 0;
    if (creds)
        fprintf(stderr, "tunless nc: the proxy refused the credentials of TUNLESS_PROXY_USER\n");
    else
        fprintf(stderr, "tunless nc: the proxy requires credentials (set TUNLESS_PROXY_USER and "
                        "TUNLESS_PROXY_PASS)\n");
    return -1;
}

/* CONNECT with the host as a name (ATYP 3), so the node resolves it with MagicDNS. */
static int socks_connect(int fd, const char *host, uint16_t port)
{
    unsigned char req[262], rep[262];
    size_t hl = strlen(host), n = 0;
    if (hl == 0 || hl > 255) {
        fprintf(stderr, "tunless nc: %s: host name too long\n", host);
        return -1;
    }
    req[n++] = 5, req[n++] = 1, req[n++] = 0, req[n++] = 3, req[n++] = (unsigned char)hl;
    memcpy(req + n, host, hl);
    n += hl;
    req[n++] = (unsigned char)(port >> 8), req[n++] = (unsigned char)port;
    if (write_all(fd, req, n) != 0 || read_all(fd, rep, 4) != 0) {
        fprintf(stderr, "tunless nc: the proxy closed the connection\n");
        return -1;
    }
    if (rep[1] != 0) {
        fprintf(stderr, "tunless nc: %s:%u: the proxy answered %s (SOCKS5 reply %u)\n", host, port,
                reply_name(rep[1]), rep[1]);
        return -1;
    }
    size_t rest = rep[3] == 1 ? 4 + 2 : rep[3] == 4 ? 16 + 2 : 0;
    if (rep[3] == 3 && read_all(fd, rep, 1) == 0)
        rest = (size_t)rep[0] + 2;
    return rest && read_all(fd, rep, rest) == 0 ? 0 : -1;
}

/* Both directions until the remote ends; stdin's EOF becomes our FIN. */
static int pump(int fd)
{
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    char buf[16384];
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (p[0].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(fd, SHUT_WR);
                p[0].fd = -1; /* poll ignores it from now on */
            } else if (write_all(fd, buf, (size_t)n) != 0) {
                return 1;
            }
        }
        if (p[1].revents) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n == 0)
                return 0;
            if (n < 0 || write_all(1, buf, (size_t)n) != 0)
                return n < 0 ? 1 : 0;
        }
    }
}

static int dial_proxy(const struct base_endpoint *proxy)
{
    struct sockaddr_storage ss;
    socklen_t len = base_endpoint_to_sockaddr(proxy, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) == 0)
        return fd;
    char ep[BASE_ENDPOINT_STRLEN];
    fprintf(stderr,
            "tunless nc: cannot reach the node's proxy at %s: %s (is `tunless up` "
            "running? --proxy ADDR or TUNLESS_PROXY names another)\n",
            base_endpoint_format(proxy, ep, sizeof(ep)), strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* The first SOCKS5 listener the running node's local API lists (one bound to every address is
 * reached on the loopback). false when no node answers there or it lists none. */
static bool proxy_from_api(const char *socket_flag, struct base_endpoint *out)
{
    char path[4200], err[4400];
    struct node_localapi_reply r;
    if (node_localapi_socket_path(socket_flag, NULL, path, sizeof(path)) != 0 ||
        node_localapi_call(path, "GET", "/v0/status", NULL, &r, err, sizeof(err)) != 0)
        return false;
    bool found = false;
    size_t i;
    json_t *l, *ls = json_object_get(json_object_get(r.json, "node"), "listeners");
    json_array_foreach(ls, i, l)
    {
        const char *svc = json_string_value(json_object_get(l, "service"));
        const char *addr = json_string_value(json_object_get(l, "addr"));
        if (!found && svc && addr && strncmp(svc, "socks5", 6) == 0)
            found = node_parse_listen(addr, out) == 0;
    }
    node_localapi_reply_free(&r);
    if (found && base_addr_is_unspecified(&out->addr)) {
        const char *lo = out->addr.family == AF_INET6 ? "::1" : "127.0.0.1";
        base_addr_parse(&out->addr, lo, strlen(lo));
    }
    return found;
}

int node_cmd_nc(int argc, char **argv)
{
    /* The node's own variables, so that nc finds the node they configured. */
    const char *proxy_spec = getenv("TUNLESS_PROXY"), *socket_flag = NULL;
    int i = 1;
    if (!proxy_spec || !*proxy_spec || strcmp(proxy_spec, "off") == 0)
        proxy_spec = getenv("TUNLESS_SOCKS5");
    if (!proxy_spec || !*proxy_spec || strcmp(proxy_spec, "off") == 0)
        proxy_spec = NULL;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return nc_usage(stdout, 0);
        if (strcmp(argv[i], "--proxy") == 0 && i + 1 < argc)
            proxy_spec = argv[++i];
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            socket_flag = argv[++i];
        else
            return nc_usage(stderr, 2);
    }
    uint16_t port;
    struct base_endpoint proxy;
    if (argc - i != 2 || base_port_parse(argv[i + 1], strlen(argv[i + 1]), &port, 0) != 0)
        return nc_usage(stderr, 2);
    if (!proxy_spec && !proxy_from_api(socket_flag, &proxy))
        proxy_spec = NC_DEFAULT_PROXY;
    if (proxy_spec && node_parse_listen(proxy_spec, &proxy) != 0) {
        fprintf(stderr, "tunless nc: --proxy %s: want IP:PORT, [IPv6]:PORT or PORT\n", proxy_spec);
        return 2;
    }
    int fd = dial_proxy(&proxy);
    if (fd < 0)
        return 1;
    int code = greet(fd) == 0 && socks_connect(fd, argv[i], port) == 0 ? pump(fd) : 1;
    close(fd);
    return code;
}
