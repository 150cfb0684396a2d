/*
 * The one place where an error becomes what a client sees: a SOCKS5 reply code or an HTTP
 * status. Also the text form of a target.
 */
#include <stdio.h>
#include <string.h>

#include "proxy.h"
#include "socks5.h"

uint8_t proxy_err_socks5(int err)
{
    switch (err) {
    case 0:
        return PROXY_SOCKS5_REP_OK;
    case BASE_EPOLICY:
    case -EACCES:
    case -EPERM:
        return PROXY_SOCKS5_REP_POLICY;
    case -ENETUNREACH:
    case -ENETDOWN:
        return PROXY_SOCKS5_REP_NET_UNREACH;
    case -EHOSTUNREACH:
    case -EHOSTDOWN:
    case BASE_ENXDOMAIN:
    case BASE_ENOANSWER:
        return PROXY_SOCKS5_REP_HOST_UNREACH;
    case -ECONNREFUSED:
        return PROXY_SOCKS5_REP_REFUSED;
    case -ETIMEDOUT:
        return PROXY_SOCKS5_REP_TTL;
    default:
        return PROXY_SOCKS5_REP_FAIL;
    }
}

int proxy_err_http(int err)
{
    switch (err) {
    case 0:
        return 200;
    case BASE_EPOLICY:
    case -EACCES:
    case -EPERM:
        return 403;
    case -ETIMEDOUT:
        return 504;
    case BASE_ESTOPPED:
        return 503;
    default:
        return 502;
    }
}

int proxy_err_from_uv(int uverr)
{
    switch (uverr) {
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
    case UV_EAI_AGAIN:
        return BASE_ENXDOMAIN;
    default:
        return uverr; /* libuv's other codes are negative errno values */
    }
}

void proxy_target_set_endpoint(struct proxy_target *t, const struct base_endpoint *ep)
{
    t->name[0] = '\0';
    t->ep = *ep;
}

const char *proxy_target_format(const struct proxy_target *t, char *buf, size_t cap)
{
    if (!t->name[0])
        return base_endpoint_format(&t->ep, buf, cap);
    snprintf(buf, cap, "%s:%u", t->name, t->ep.port);
    return buf;
}
