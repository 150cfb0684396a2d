/*
 * The HTTP proxy request side (see httpproxy.h): llhttp callbacks collect the head, then
 * on_headers_complete checks credentials, finds the target and rewrites the head for the
 * upstream; the body is passed on re-framed; the authority and error-response helpers last.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpproxy.h"

#define PROXY_HTTP_DEFAULT_MAX_HEAD 16384

static struct proxy_http_req *req_of(llhttp_t *p)
{
    return p->data;
}

static int append(struct proxy_http_req *r, const char *at, size_t n)
{
    if (r->len + n > r->max_head) {
        r->overflow = true;
        return -1;
    }
    memcpy(r->buf + r->len, at, n);
    r->len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct proxy_http_req *r = req_of(p);
    r->len = 0;
    r->url_off = r->url_len = 0;
    r->nhdr = 0;
    r->in_value = false;
    r->status = 0;
    r->connect = r->chunked = r->keep_alive = r->head_method = false;
    r->out_len = 0;
    memset(&r->target, 0, sizeof(r->target));
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_req *r = req_of(p);
    r->url_len += (uint32_t)n;
    return append(r, at, n);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_req *r = req_of(p);
    if (r->in_value || r->nhdr == 0) {
        if (r->nhdr == PROXY_HTTP_MAX_HEADERS) {
            r->overflow = true;
            return -1;
        }
        r->hdr[r->nhdr].name_off = (uint32_t)r->len;
        r->hdr[r->nhdr].name_len = r->hdr[r->nhdr].val_off = r->hdr[r->nhdr].val_len = 0;
        r->nhdr++;
        r->in_value = false;
    }
    r->hdr[r->nhdr - 1].name_len += (uint32_t)n;
    return append(r, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_req *r = req_of(p);
    if (r->nhdr == 0)
        return -1;
    if (r->hdr[r->nhdr - 1].val_len == 0)
        r->hdr[r->nhdr - 1].val_off = (uint32_t)r->len;
    r->hdr[r->nhdr - 1].val_len += (uint32_t)n;
    return append(r, at, n);
}

static int on_header_field_complete(llhttp_t *p)
{
    req_of(p)->in_value = true; /* the next field callback starts a new header */
    return 0;
}

static int name_is(const struct proxy_http_req *r, size_t i, const char *name)
{
    size_t n = strlen(name);
    return r->hdr[i].name_len == n && strncasecmp(r->buf + r->hdr[i].name_off, name, n) == 0;
}

/* Is the header name listed as a token in any Connection / Proxy-Connection header? */
static int listed_in_connection(const struct proxy_http_req *r, const char *name, size_t nlen)
{
    for (size_t i = 0; i < r->nhdr; i++) {
        if (!name_is(r, i, "connection") && !name_is(r, i, "proxy-connection"))
            continue;
        const char *v = r->buf + r->hdr[i].val_off, *end = v + r->hdr[i].val_len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *tok = v;
            while (v < end && *v != ',' && *v != ' ' && *v != '\t')
                v++;
            if ((size_t)(v - tok) == nlen && strncasecmp(tok, name, nlen) == 0)
                return 1;
        }
    }
    return 0;
}

static int is_hop_by_hop(const struct proxy_http_req *r, size_t i)
{
    static const char *const hop[] = {"connection",
                                      "keep-alive",
                                      "proxy-connection",
                                      "proxy-authorization",
                                      "proxy-authenticate",
                                      "te",
                                      "trailer",
                                      "transfer-encoding",
                                      "upgrade",
                                      "host"};
    for (size_t k = 0; k < sizeof(hop) / sizeof(hop[0]); k++) {
        if (name_is(r, i, hop[k]))
            return 1;
    }
    return listed_in_connection(r, r->buf + r->hdr[i].name_off, r->hdr[i].name_len);
}

static int out_add(struct proxy_http_req *r, const char *s, size_t n)
{
    if (r->out_len + n > r->out_cap)
        return -1;
    memcpy(r->out + r->out_len, s, n);
    r->out_len += n;
    return 0;
}

static int out_str(struct proxy_http_req *r, const char *s)
{
    return out_add(r, s, strlen(s));
}

static int build_upstream_head(struct proxy_http_req *r, const char *path, size_t path_len,
                               const char *authority, size_t auth_len)
{
    llhttp_t *p = &r->parser;
    char line[64];
    int bad =
        out_str(r, llhttp_method_name((llhttp_method_t)llhttp_get_method(p))) || out_str(r, " ");
    if (path_len == 0 || path[0] != '/')
        bad |= out_str(r, "/");
    bad |= out_add(r, path, path_len);
    snprintf(line, sizeof(line), " HTTP/%u.%u\r\nHost: ", llhttp_get_http_major(p),
             llhttp_get_http_minor(p));
    bad |= out_str(r, line) || out_add(r, authority, auth_len) || out_str(r, "\r\n");
    for (size_t i = 0; i < r->nhdr && !bad; i++) {
        if (is_hop_by_hop(r, i))
            continue;
        bad |= out_add(r, r->buf + r->hdr[i].name_off, r->hdr[i].name_len) || out_str(r, ": ") ||
               out_add(r, r->buf + r->hdr[i].val_off, r->hdr[i].val_len) || out_str(r, "\r\n");
    }
    /* We re-chunk the body ourselves, so this is the one coding the upstream sees. */
    if (r->chunked)
        bad |= out_str(r, "Transfer-Encoding: chunked\r\n");
    bad |= out_str(r, "\r\n");
    return bad ? -1 : 0;
}

static int check_auth(const struct proxy_http_req *r)
{
    if (!r->auth || !r->auth->enabled)
        return 1;
    for (size_t i = 0; i < r->nhdr; i++) {
        if (name_is(r, i, "proxy-authorization"))
            return proxy_http_check_basic(r->auth, r->buf + r->hdr[i].val_off, r->hdr[i].val_len);
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct proxy_http_req *r = req_of(p);
    r->keep_alive = llhttp_should_keep_alive(p);
    r->head_method = llhttp_get_method(p) == HTTP_HEAD;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    const char *url = r->buf + r->url_off;
    if (!check_auth(r)) {
        r->status = 407;
    } else if (llhttp_get_method(p) == HTTP_CONNECT) {
        r->connect = true;
        if (proxy_http_parse_authority(url, r->url_len, 0, &r->target) != 0)
            r->status = 400;
    } else {
        const char *path;
        size_t path_len;
        if (proxy_http_parse_absolute(url, r->url_len, &r->target, &path, &path_len) != 0) {
            r->status = 400;
        } else {
            const char *authority = url + 7; /* after "http://" */
            size_t auth_len = 0;
            while (7 + auth_len < r->url_len && !strchr("/?#", authority[auth_len]))
                auth_len++;
            if (build_upstream_head(r, path, path_len, authority, auth_len) != 0)
                r->status = 431;
        }
    }
    r->target.proto = PROXY_TCP;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct proxy_http_req *r = req_of(p);
    if (!r->on_body || n == 0)
        return 0;
    if (r->chunked) {
        char hex[24];
        int hl = snprintf(hex, sizeof(hex), "%zx\r\n", n);
        r->on_body(r->arg, (const uint8_t *)hex, (size_t)hl, 0);
        r->on_body(r->arg, (const uint8_t *)at, n, 1);
        r->on_body(r->arg, (const uint8_t *)"\r\n", 2, 0);
    } else {
        r->on_body(r->arg, (const uint8_t *)at, n, 1);
    }
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct proxy_http_req *r = req_of(p);
    if (r->chunked && r->on_body)
        r->on_body(r->arg, (const uint8_t *)"0\r\n\r\n", 5, 0); /* trailers are dropped */
    r->paused_done = true;
    return HPE_PAUSED;
}

int proxy_http_init(struct proxy_http_req *r, const struct proxy_auth *auth, size_t max_head)
{
    memset(r, 0, sizeof(*r));
    r->auth = auth;
    r->max_head = max_head ? max_head : PROXY_HTTP_DEFAULT_MAX_HEAD;
    /* The rewritten head is never much longer than the collected one. */
    r->out_cap = r->max_head + 512;
    r->buf = malloc(r->max_head);
    r->out = malloc(r->out_cap);
    if (!r->buf || !r->out) {
        proxy_http_free(r);
        return -1;
    }
    llhttp_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_url = on_url;
    r->settings.on_header_field = on_header_field;
    r->settings.on_header_value = on_header_value;
    r->settings.on_header_field_complete = on_header_field_complete;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_message_complete = on_message_complete;
    llhttp_init(&r->parser, HTTP_REQUEST, &r->settings);
    r->parser.data = r;
    return 0;
}

void proxy_http_free(struct proxy_http_req *r)
{
    if (r->buf)
        sodium_memzero(r->buf, r->max_head); /* may hold Proxy-Authorization */
    free(r->buf);
    free(r->out);
    r->buf = r->out = NULL;
}

enum proxy_http_event proxy_http_input(struct proxy_http_req *r, const uint8_t *data, size_t len,
                                       size_t *used)
{
    *used = 0;
    int resumed = 0;
    if (llhttp_get_errno(&r->parser) == HPE_PAUSED) {
        if (r->paused_done)
            return PROXY_HTTP_DONE; /* proxy_http_next first */
        llhttp_resume(&r->parser);
        resumed = 1;
    }
    /* After the head, even no input lets llhttp finish a request without a body. */
    if (len == 0 && !resumed)
        return PROXY_HTTP_MORE;
    llhttp_errno_t err = llhttp_execute(&r->parser, data ? (const char *)data : "", len);
    if (err == HPE_OK) {
        *used = len;
        return PROXY_HTTP_MORE;
    }
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        *used = (size_t)((const uint8_t *)llhttp_get_error_pos(&r->parser) - data);
        return r->paused_done ? PROXY_HTTP_DONE : PROXY_HTTP_HEAD;
    }
    r->status = r->overflow ? 431 : 400;
    return PROXY_HTTP_ERROR;
}

void proxy_http_next(struct proxy_http_req *r)
{
    r->paused_done = false;
    r->len = r->url_len = 0; /* nothing of the next request yet */
    r->nhdr = 0;
    if (llhttp_get_errno(&r->parser) == HPE_PAUSED)
        llhttp_resume(&r->parser);
}

static int valid_name(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return 0;
    }
    return 1;
}

int proxy_http_parse_authority(const char *s, size_t len, uint16_t default_port,
                               struct proxy_target *t)
{
    memset(t, 0, sizeof(*t));
    char host[BASE_HOST_MAX + 1];
    uint16_t port = default_port;
    unsigned flags = default_port ? BASE_HOSTPORT_PORT_OPTIONAL : 0;
    if (base_hostport_parse(s, len, host, sizeof(host), &port, flags, NULL) != 0 || port == 0)
        return -1;
    t->ep.port = port;
    if (base_addr_parse(&t->ep.addr, host, strlen(host)) == 0) {
        /* An IPv6 literal only in brackets: "http://fd00::1/" is not a URL. */
        return (t->ep.addr.family == AF_INET6) == (s[0] == '[') ? 0 : -1;
    }
    memset(&t->ep.addr, 0, sizeof(t->ep.addr));
    if (!valid_name(host))
        return -1;
    memcpy(t->name, host, strlen(host) + 1);
    return 0;
}

int proxy_http_parse_absolute(const char *url, size_t len, struct proxy_target *t,
                              const char **path, size_t *path_len)
{
    /* Only http: an https:// absolute URI would need us to speak TLS; clients use CONNECT. */
    if (len < 8 || strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + 7, *end = url + len, *e = a;
    while (e < end && *e != '/' && *e != '?' && *e != '#')
        e++;
    if (memchr(a, '@', (size_t)(e - a)))
        return -1; /* userinfo in a proxy request is a credential leak waiting to happen */
    if (proxy_http_parse_authority(a, (size_t)(e - a), 80, t) != 0)
        return -1;
    const char *hash = memchr(e, '#', (size_t)(end - e));
    *path = e;
    *path_len = (size_t)((hash ? hash : end) - e);
    if (*path_len == 0)
        *path = "/", *path_len = 1;
    return 0;
}

int proxy_http_check_basic(const struct proxy_auth *auth, const char *val, size_t len)
{
    while (len > 0 && (*val == ' ' || *val == '\t'))
        val++, len--;
    if (len < 6 || strncasecmp(val, "basic ", 6) != 0)
        return 0;
    val += 6;
    len -= 6;
    while (len > 0 && (*val == ' ' || *val == '\t'))
        val++, len--;
    while (len > 0 && (val[len - 1] == ' ' || val[len - 1] == '\t'))
        len--;
    uint8_t dec[512];
    size_t dlen = 0;
    if (sodium_base642bin(dec, sizeof(dec), val, len, NULL, &dlen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return 0;
    uint8_t *colon = memchr(dec, ':', dlen);
    int ok = colon && proxy_auth_check(auth, dec, (size_t)(colon - dec), colon + 1,
                                       dlen - (size_t)(colon + 1 - dec));
    sodium_memzero(dec, sizeof(dec));
    return ok;
}

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 407:
        return "Proxy Authentication Required";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

/* text as a Structured Fields string's content (RFC 8941): \\ and \" escaped, what is not
 * printable ASCII becomes '?'. */
static void sf_string(char *out, size_t cap, const char *text, bool escape)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 3 < cap; p++) {
        if (escape && (*p == '\\' || *p == '"'))
            out[n++] = '\\';
        out[n++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
    }
    out[n] = '\0';
}

size_t proxy_http_error_response(char *out, size_t cap, int status,
                                 const struct proxy_http_why *why)
{
    char header[400] = "", body[300], detail[256] = "", esc[256] = "";
    if (why && why->detail) {
        sf_string(detail, sizeof(detail), why->detail, false);
        sf_string(esc, sizeof(esc), why->detail, true);
    }
    if (why && why->type) {
        char rcode[48] = "", details[sizeof(esc) + 16] = "";
        if (why->rcode)
            snprintf(rcode, sizeof(rcode), "; rcode=\"%s\"", why->rcode);
        if (esc[0])
            snprintf(details, sizeof(details), "; details=\"%s\"", esc);
        snprintf(header, sizeof(header), "Proxy-Status: tunless; error=%s%s%s\r\n", why->type,
                 rcode, details);
    }
    int blen =
        snprintf(body, sizeof(body), "%s\n%s%s", reason(status), detail, detail[0] ? "\n" : "");
    if (blen < 0 || (size_t)blen >= sizeof(body))
        blen = (int)strlen(body);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n%s%s\r\n%s",
                     status, reason(status), blen,
                     status == 407 ? "Proxy-Authenticate: Basic realm=\"tunless\"\r\n" : "", header,
                     body);
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}
