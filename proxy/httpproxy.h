/*
 * HTTP proxy request side as a pure state machine over llhttp: request bytes in; out come the
 * target, the head to send upstream (origin-form, hop-by-hop headers removed) and the body,
 * re-framed coherently with the headers kept. No sockets, so tests and the fuzzer drive it.
 * Internal to proxy/.
 */
#ifndef TUNLESS_HTTPPROXY_H
#define TUNLESS_HTTPPROXY_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "proxy.h"

#define PROXY_HTTP_MAX_HEADERS 128

enum proxy_http_event {
    PROXY_HTTP_MORE,  /* all input used; body pieces (if any) went to on_body */
    PROXY_HTTP_HEAD,  /* a request head is complete: see status, target, connect, out */
    PROXY_HTTP_DONE,  /* the request (head and body) is complete; bytes after it wait */
    PROXY_HTTP_ERROR, /* malformed: answer status and close */
};

struct proxy_http_req {
    llhttp_t parser;
    llhttp_settings_t settings;
    const struct proxy_auth *auth;
    size_t max_head;
    /* The head as collected: the URL, then field/value pairs, all offsets into buf. */
    char *buf;
    size_t len;
    uint32_t url_off, url_len;
    struct {
        uint32_t name_off, name_len, val_off, val_len;
    } hdr[PROXY_HTTP_MAX_HEADERS];
    size_t nhdr;
    bool in_value;
    bool overflow;
    bool paused_done; /* on_message_complete paused the parser */

    /* Results, valid after PROXY_HTTP_HEAD / PROXY_HTTP_ERROR. */
    int status; /* 0 = forward; else answer this status (400, 403, 407, 431...) */
    bool connect;
    bool chunked;     /* body is forwarded re-chunked */
    bool keep_alive;  /* the client wants the connection kept after this request */
    bool head_method; /* HEAD: its response has no body */
    struct proxy_target target;
    char *out; /* head to send upstream (not for CONNECT) */
    size_t out_len, out_cap;

    /* Body pieces: ref = 1 means data points into the input passed to proxy_http_input (the
     * caller may keep a reference to it), 0 means transient framing bytes to copy. */
    void (*on_body)(void *arg, const uint8_t *data, size_t len, int ref);
    void *arg;
};

/* max_head 0 = 16384. Returns -1 when out of memory. */
int proxy_http_init(struct proxy_http_req *r, const struct proxy_auth *auth, size_t max_head);
void proxy_http_free(struct proxy_http_req *r);
/* Feeds bytes; stops after HEAD, DONE or ERROR with *used telling how far it got. After HEAD,
 * call again with the rest to get the body; after DONE, call proxy_http_next first. */
enum proxy_http_event proxy_http_input(struct proxy_http_req *r, const uint8_t *data, size_t len,
                                       size_t *used);
/* Ready for the next request on the same connection. */
void proxy_http_next(struct proxy_http_req *r);

/* Pieces, exposed for tests. */
int proxy_http_parse_absolute(const char *url, size_t len, struct proxy_target *t,
                              const char **path, size_t *path_len);
/* host:port, [v6]:port; default_port 0 = the port is required. */
int proxy_http_parse_authority(const char *s, size_t len, uint16_t default_port,
                               struct proxy_target *t);
/* 1 when Proxy-Authorization value carries the configured Basic credentials. */
int proxy_http_check_basic(const struct proxy_auth *auth, const char *val, size_t len);
/* Why an error answer was made: its Proxy-Status header (RFC 9209) and a line of its body. */
struct proxy_http_why {
    const char *type;   /* Proxy-Status error type ("dns_error", ...); NULL: no header */
    const char *rcode;  /* dns_error's rcode ("NXDOMAIN"), or NULL */
    const char *detail; /* one sentence for the body and the header's details, or NULL */
};
/* A small complete response with Connection: close, the status's phrase and why's detail (may
 * be NULL) as its text body. Returns its length (< cap). */
size_t proxy_http_error_response(char *out, size_t cap, int status,
                                 const struct proxy_http_why *why);

#endif
