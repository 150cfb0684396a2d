/*
 * The HTTP side of a DERP server connection: one request parsed with llhttp (method, path and
 * the few headers DERP cares about), and the response texts. The request ends at its headers:
 * what follows (a fast-start ClientInfo) belongs to the frame reader.
 */
#ifndef TUNLESS_DERP_HTTP_H
#define TUNLESS_DERP_HTTP_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>

#define DERP_HTTP_PATH_MAX 256
#define DERP_HTTP_CHALLENGE_MAX 64
#define DERP_HTTP_HEADERS_MAX 8192

struct derp_http_req {
    llhttp_t parser;
    char path[DERP_HTTP_PATH_MAX + 1];
    char field[32];  /* the header name being read (cut) */
    char value[128]; /* its value (cut) */
    size_t field_len, value_len, path_len, bytes;
    bool is_get;
    bool upgrade_derp;                           /* Upgrade: DERP (any case) */
    bool fast_start;                             /* Derp-Fast-Start: 1 */
    char challenge[DERP_HTTP_CHALLENGE_MAX + 1]; /* X-Tailscale-Challenge, when valid */
    bool done;
};

enum derp_http_result { DERP_HTTP_MORE, DERP_HTTP_DONE, DERP_HTTP_BAD, DERP_HTTP_TOO_BIG };

void derp_http_req_init(struct derp_http_req *r);
/* Feeds bytes; on DONE, *used says where the request ended. */
enum derp_http_result derp_http_req_feed(struct derp_http_req *r, const char *p, size_t n,
                                         size_t *used);

/* Response texts, into out (NUL-terminated, cut at cap). Return the length. */
size_t derp_http_upgrade_response(char *out, size_t cap, const char *server_key_hex);
size_t derp_http_response(char *out, size_t cap, int status, const char *content_type,
                          const char *extra_headers, size_t body_len);

#endif
