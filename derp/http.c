/*
 * One DERP HTTP request: llhttp callbacks gather the path and the headers that matter, the
 * message ends at the headers (pause or upgrade), and the caller learns how many bytes the
 * request took. Then the response texts.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base.h"
#include "http.h"

static struct derp_http_req *req_of(llhttp_t *p)
{
    return container_of(p, struct derp_http_req, parser);
}

static void append(char *dst, size_t cap, size_t *len, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;
    size_t k = n < room ? n : room;
    memcpy(dst + *len, at, k);
    *len += k;
    dst[*len] = '\0';
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct derp_http_req *r = req_of(p);
    append(r->path, sizeof(r->path), &r->path_len, at, n);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct derp_http_req *r = req_of(p);
    append(r->field, sizeof(r->field), &r->field_len, at, n);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct derp_http_req *r = req_of(p);
    append(r->value, sizeof(r->value), &r->value_len, at, n);
    return 0;
}

/* derper answers a challenge made only of these characters, at most 64 of them. */
static bool challenge_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > DERP_HTTP_CHALLENGE_MAX)
        return false;
    for (; *v; v++)
        if (!((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') || (*v >= '0' && *v <= '9') ||
              *v == '.' || *v == '-' || *v == '_'))
            return false;
    return true;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct derp_http_req *r = req_of(p);
    if (strcasecmp(r->field, "Upgrade") == 0)
        r->upgrade_derp = strcasecmp(r->value, "derp") == 0;
    else if (strcasecmp(r->field, "Derp-Fast-Start") == 0)
        r->fast_start = strcmp(r->value, "1") == 0;
    else if (strcasecmp(r->field, "X-Tailscale-Challenge") == 0 && challenge_ok(r->value))
        snprintf(r->challenge, sizeof(r->challenge), "%s", r->value);
    r->field_len = r->value_len = 0;
    r->field[0] = r->value[0] = '\0';
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    struct derp_http_req *r = req_of(p);
    r->is_get = llhttp_get_method(p) == HTTP_GET;
    r->done = true;
    return 0;
}

/* A request body is never wanted: stop at the end of the message either way. */
static int on_message_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void derp_http_req_init(struct derp_http_req *r)
{
    memset(r, 0, sizeof(*r));
    llhttp_init(&r->parser, HTTP_REQUEST, &settings);
}

enum derp_http_result derp_http_req_feed(struct derp_http_req *r, const char *p, size_t n,
                                         size_t *used)
{
    llhttp_errno_t e = llhttp_execute(&r->parser, p, n);
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        *used = (size_t)(llhttp_get_error_pos(&r->parser) - p);
        return r->done ? DERP_HTTP_DONE : DERP_HTTP_BAD;
    }
    if (e != HPE_OK)
        return DERP_HTTP_BAD;
    r->bytes += n;
    /* Headers done but a body follows (a POST with content): we answer without it. */
    if (r->done) {
        *used = n;
        return DERP_HTTP_DONE;
    }
    return r->bytes > DERP_HTTP_HEADERS_MAX ? DERP_HTTP_TOO_BIG : DERP_HTTP_MORE;
}

size_t derp_http_upgrade_response(char *out, size_t cap, const char *server_key_hex)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: DERP\r\n"
                     "Connection: Upgrade\r\n"
                     "Derp-Version: 2\r\n"
                     "Derp-Public-Key: %s\r\n\r\n",
                     server_key_hex);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

size_t derp_http_response(char *out, size_t cap, int status, const char *content_type,
                          const char *extra_headers, size_t body_len)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n%s\r\n",
                     status, reason(status), content_type ? "Content-Type: " : "",
                     content_type ? content_type : "", content_type ? "\r\n" : "", body_len,
                     extra_headers ? extra_headers : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
