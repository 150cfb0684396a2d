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

const char *proxy_err_proxy_status(int err, const char **rcode)
{
    const char *dns = NULL, *type;
    switch (err) {
    case BASE_ENXDOMAIN:
        dns = "NXDOMAIN";
        break;
    case BASE_ENOANSWER:
        dns = "NOERROR"; /* the name exists without an address */
        break;
    case BASE_ESERVFAIL:
        dns = "SERVFAIL";
        break;
    }
    switch (dns ? 0 : err) {
    case 0:
        type = dns ? "dns_error" : "none";
        break;
    case -ECONNREFUSED:
        type = "connection_refused";
        break;
    case -ETIMEDOUT:
        type = "connection_timeout";
        break;
    case -ENETUNREACH:
    case -ENETDOWN:
    case -EHOSTUNREACH:
    case -EHOSTDOWN:
        type = "destination_unavailable";
        break;
    case BASE_EPOLICY:
    case -EACCES:
    case -EPERM:
        type = "destination_ip_prohibited";
        break;
    case -ECONNRESET:
    case -EPIPE:
        type = "connection_terminated";
        break;
    default:
        type = "proxy_internal_error";
    }
    if (rcode)
        *rcode = dns;
    return type;
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
