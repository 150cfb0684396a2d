#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "socks5.h"

const char *proxy_strerror(int err)
{
    switch (err) {
    case PROXY_OK:
        return "ok";
    case PROXY_E_REFUSED:
        return "connection refused";
    case PROXY_E_NET_UNREACH:
        return "network unreachable";
    case PROXY_E_HOST_UNREACH:
        return "host unreachable";
    case PROXY_E_NAME:
        return "name not found";
    case PROXY_E_TIMEOUT:
        return "connection timed out";
    case PROXY_E_POLICY:
        return "not allowed by policy";
    case PROXY_E_RESET:
        return "connection reset";
    case PROXY_E_CANCELED:
        return "canceled";
    default:
        return "connection failed";
    }
}

uint8_t proxy_err_socks5(int err)
{
    switch (err) {
    case PROXY_OK:
        return SOCKS5_REP_OK;
    case PROXY_E_POLICY:
        return SOCKS5_REP_POLICY;
    case PROXY_E_NET_UNREACH:
        return SOCKS5_REP_NET_UNREACH;
    case PROXY_E_HOST_UNREACH:
    case PROXY_E_NAME:
        return SOCKS5_REP_HOST_UNREACH;
    case PROXY_E_REFUSED:
        return SOCKS5_REP_REFUSED;
    case PROXY_E_TIMEOUT:
        return SOCKS5_REP_TTL;
    default:
        return SOCKS5_REP_FAIL;
    }
}

int proxy_err_http(int err)
{
    switch (err) {
    case PROXY_OK:
        return 200;
    case PROXY_E_POLICY:
        return 403;
    case PROXY_E_TIMEOUT:
        return 504;
    default:
        return 502;
    }
}

int proxy_err_from_uv(int uverr)
{
    switch (uverr) {
    case 0:
        return PROXY_OK;
    case UV_ECONNREFUSED:
        return PROXY_E_REFUSED;
    case UV_ENETUNREACH:
    case UV_ENETDOWN:
        return PROXY_E_NET_UNREACH;
    case UV_EHOSTUNREACH:
    case UV_EHOSTDOWN:
        return PROXY_E_HOST_UNREACH;
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
    case UV_EAI_AGAIN:
        return PROXY_E_NAME;
    case UV_ETIMEDOUT:
        return PROXY_E_TIMEOUT;
    case UV_EACCES:
    case UV_EPERM:
        return PROXY_E_POLICY;
    case UV_ECONNRESET:
    case UV_EPIPE:
        return PROXY_E_RESET;
    case UV_ECANCELED:
        return PROXY_E_CANCELED;
    default:
        return PROXY_E_OTHER;
    }
}

void proxy_target_set_addr(struct proxy_target *t, const struct sockaddr *sa, uint16_t port)
{
    t->name[0] = '\0';
    t->port = port;
    memset(&t->addr, 0, sizeof(t->addr));
    if (sa->sa_family == AF_INET6) {
        memcpy(&t->addr, sa, sizeof(struct sockaddr_in6));
        ((struct sockaddr_in6 *)&t->addr)->sin6_port = htons(port);
    } else {
        memcpy(&t->addr, sa, sizeof(struct sockaddr_in));
        ((struct sockaddr_in *)&t->addr)->sin_port = htons(port);
    }
}

const char *proxy_target_str(const struct proxy_target *t, char *buf, size_t len)
{
    if (t->name[0]) {
        snprintf(buf, len, "%s:%u", t->name, t->port);
        return buf;
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    if (t->addr.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&t->addr)->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, t->port);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&t->addr)->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, t->port);
    }
    return buf;
}
