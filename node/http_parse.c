/*
 * One HTTP request, parsed with llhttp within bounds: the callbacks collect the method, the
 * request target, the two headers the server reads (Content-Type, Expect) and the body; every
 * limit and every llhttp error becomes a status and a sentence for the JSON error answer.
 * Flow: init -> feed (callbacks; the head's end splits the target into path and query) ... ->
 * BODY -> DONE (message complete pauses llhttp) or ERROR -> request -> free. Then the reason phrases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

static struct node_http_parser *parser_of(llhttp_t *l)
{
    return container_of(l, struct node_http_parser, llhttp);
}

/* Records the first fault; returns -1 so that llhttp stops. */
static int fail(struct node_http_parser *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct node_http_parser *p, int status, const char *fmt, ...)
{
    if (p->state != NODE_HTTP_PARSE_ERROR) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
        p->status = status;
        p->state = NODE_HTTP_PARSE_ERROR;
    }
    return -1;
}

static int count_head(struct node_http_parser *p, size_t n)
{
    p->head_bytes += n;
    if (p->head_bytes > p->max_head)
        return fail(p, 431, "request head larger than %zu bytes", p->max_head);
    return 0;
}

static int on_url(llhttp_t *l, const char *at, size_t n)
{
    struct node_http_parser *p = parser_of(l);
    if (count_head(p, n) != 0)
        return -1;
    memcpy(p->target + p->target_len, at, n); /* target holds max_head bytes */
    p->target_len += n;
    p->target[p->target_len] = '\0';
    return 0;
}

static int on_method_complete(llhttp_t *l)
{
    struct node_http_parser *p = parser_of(l);
    snprintf(p->method, sizeof(p->method), "%s",
             llhttp_method_name((llhttp_method_t)llhttp_get_method(l)));
    return 0;
}

static int append_part(char *buf, size_t cap, size_t *len, bool *too_long, const char *at, size_t n)
{
    if (*len + n >= cap) {
        *too_long = true;
        return 0;
    }
    memcpy(buf + *len, at, n);
    *len += n;
    buf[*len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *l, const char *at, size_t n)
{
    struct node_http_parser *p = parser_of(l);
    if (count_head(p, n + 4) != 0) /* ": " and CRLF count too */
        return -1;
    return append_part(p->field, sizeof(p->field), &p->field_len, &p->field_long, at, n);
}

static int on_header_value(llhttp_t *l, const char *at, size_t n)
{
    struct node_http_parser *p = parser_of(l);
    if (count_head(p, n) != 0)
        return -1;
    return append_part(p->value, sizeof(p->value), &p->value_len, &p->value_long, at, n);
}

static int field_is(const struct node_http_parser *p, const char *name)
{
    return !p->field_long && strcasecmp(p->field, name) == 0;
}

static int on_header_value_complete(llhttp_t *l)
{
    struct node_http_parser *p = parser_of(l);
    if (field_is(p, "content-type")) {
        if (p->value_long)
            return fail(p, 400, "Content-Type longer than %d bytes",
                        NODE_HTTP_HEADER_VALUE_MAX - 1);
        memcpy(p->content_type, p->value, p->value_len + 1);
    } else if (field_is(p, "expect")) {
        if (p->value_long || strcasecmp(p->value, "100-continue") != 0)
            return fail(p, 417, "only Expect: 100-continue is understood");
        p->expect_continue = true;
    }
    p->field_len = p->value_len = 0;
    p->field[0] = p->value[0] = '\0';
    p->field_long = p->value_long = false;
    return 0;
}

static int on_headers_complete(llhttp_t *l)
{
    struct node_http_parser *p = parser_of(l);
    if (p->target_len == 0 || p->target[0] != '/')
        return fail(p, 400, "the request target must be a path starting with '/'");
    if (llhttp_get_upgrade(l))
        return fail(p, 400, "protocol upgrades are not supported");
    /* The path is known before the body: the server checks the route and the caller's right
     * to it then, not after reading a body it would refuse. */
    char *q = strchr(p->target, '?');
    if (q)
        *q++ = '\0';
    p->query = q ? q : "";
    p->state = NODE_HTTP_PARSE_BODY;
    return 0;
}

static int on_body(llhttp_t *l, const char *at, size_t n)
{
    struct node_http_parser *p = parser_of(l);
    if (p->body_len + n > p->max_body)
        return fail(p, 413, "request body larger than %zu bytes", p->max_body);
    if (p->body_len + n + 1 > p->body_cap) {
        size_t cap = p->body_cap ? p->body_cap : 1024;
        while (cap < p->body_len + n + 1)
            cap *= 2;
        char *b = realloc(p->body, cap);
        if (!b)
            return fail(p, 503, "out of memory");
        p->body = b;
        p->body_cap = cap;
    }
    memcpy(p->body + p->body_len, at, n);
    p->body_len += n;
    p->body[p->body_len] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *l)
{
    struct node_http_parser *p = parser_of(l);
    p->state = NODE_HTTP_PARSE_DONE;
    return HPE_PAUSED; /* one request per connection: the rest is not read */
}

static const llhttp_settings_t settings = {
    .on_url = on_url,
    .on_method_complete = on_method_complete,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int node_http_parser_init(struct node_http_parser *p, size_t max_head, size_t max_body)
{
    memset(p, 0, sizeof(*p));
    p->target = malloc(max_head + 1);
    if (!p->target)
        return -ENOMEM;
    p->target[0] = '\0';
    p->max_head = max_head;
    p->max_body = max_body;
    p->query = "";
    llhttp_init(&p->llhttp, HTTP_REQUEST, &settings);
    return 0;
}

void node_http_parser_free(struct node_http_parser *p)
{
    free(p->target);
    free(p->body);
    p->target = p->body = NULL;
}

/* llhttp's own faults: method, version, framing. */
static void llhttp_fault(struct node_http_parser *p, llhttp_errno_t err)
{
    const char *reason = llhttp_get_error_reason(&p->llhttp);
    if (err == HPE_INVALID_METHOD)
        fail(p, 501, "unknown method");
    else
        fail(p, 400, "malformed request: %s (%s)", reason ? reason : "invalid",
             llhttp_errno_name(err));
}

enum node_http_parse_state node_http_parser_feed(struct node_http_parser *p, const char *data,
                                                 size_t len)
{
    if (p->state == NODE_HTTP_PARSE_DONE || p->state == NODE_HTTP_PARSE_ERROR || len == 0)
        return p->state;
    size_t counted_before = p->head_bytes;
    llhttp_errno_t err = llhttp_execute(&p->llhttp, data, len);
    if (p->state == NODE_HTTP_PARSE_DONE || p->state == NODE_HTTP_PARSE_ERROR)
        return p->state;
    if (err != HPE_OK) {
        llhttp_fault(p, err);
        return p->state;
    }
    /* Blank lines before the request line, or a slow head: still bounded. Only what the
     * callbacks did not count already (the method, the version, line ends): a head that
     * arrives over several reads must not count twice against max_head. */
    size_t counted = p->head_bytes - counted_before;
    if (p->state == NODE_HTTP_PARSE_HEAD && counted < len)
        count_head(p, len - counted);
    return p->state;
}

enum node_http_parse_state node_http_parser_finish(struct node_http_parser *p)
{
    if (p->state == NODE_HTTP_PARSE_HEAD || p->state == NODE_HTTP_PARSE_BODY)
        fail(p, 400, "the connection ended before the request was complete");
    return p->state;
}

void node_http_parser_request(const struct node_http_parser *p, struct node_http_request *req)
{
    req->method = p->method;
    req->path = p->target;
    req->query = p->query;
    req->content_type = p->content_type;
    req->body = p->body ? p->body : "";
    req->body_len = p->body_len;
}

const char *node_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, end) into out. */
static int decode(const char *s, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; s < end; s++) {
        char ch = *s;
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            int hi = end - s > 2 ? hex_value(s[1]) : -1, lo = end - s > 2 ? hex_value(s[2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return BASE_EPARSE;
            ch = (char)(hi * 16 + lo);
            s += 2;
        }
        if (n + 1 >= cap)
            return -ENOSPC;
        out[n++] = ch;
    }
    if (cap == 0)
        return -ENOSPC;
    out[n] = '\0';
    return 0;
}

int node_http_query_get(const char *query, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = query; *p;) {
        const char *amp = strchr(p, '&');
        const char *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == klen && memcmp(p, key, klen) == 0)
            return decode(eq ? eq + 1 : end, end, out, cap);
        p = amp ? amp + 1 : end;
    }
    return -ENOENT;
}
