/*
 * The CLI's side of the local API: one blocking request on the node's unix socket, its answer
 * parsed (status and JSON body), and the one-line messages for what usually goes wrong (no node
 * running, no permission, an error answer). Flow: node_localapi_call -> connect_socket ->
 * send_all -> read_all -> parse_response; node_localapi_client_args for the shared options.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "localapi_client.h"

#define RESPONSE_MAX (16u << 20)

static int connect_socket(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "%s: longer than a unix socket path may be", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == EACCES || e == EPERM)
            snprintf(err, errlen,
                     "permission denied on %s: run as the node's user, or ask for a "
                     "--socket-group you are in",
                     path);
        else
            snprintf(err, errlen, "no node is running on %s (%s): start one with `tunless up`",
                     path, strerror(e));
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *b = cap < RESPONSE_MAX ? realloc(buf, cap * 2) : NULL;
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            buf[n] = '\0';
            *len = n;
            return buf;
        }
        n += (size_t)r;
    }
    free(buf);
    return NULL;
}

/* "HTTP/1.1 200 OK\r\n...\r\n\r\n{...}": the status and the body (Content-Length framing, or
 * the rest of the connection). */
static int parse_response(char *raw, size_t len, struct node_localapi_reply *out)
{
    int status = 0;
    char *end = strstr(raw, "\r\n\r\n");
    if (sscanf(raw, "HTTP/1.%*d %d", &status) != 1 || !end)
        return -1;
    char *body = end + 4;
    out->status = status;
    out->body_len = len - (size_t)(body - raw);
    out->body = malloc(out->body_len + 1); /* whole: a NUL inside must not shorten it */
    if (!out->body)
        return -1;
    memcpy(out->body, body, out->body_len + 1); /* read_all's terminator too */
    return 0;
}

int node_localapi_call(const char *path, const char *method, const char *target,
                       const char *json_body, struct node_localapi_reply *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    int fd = connect_socket(path, err, errlen);
    if (fd < 0)
        return -1;
    size_t blen = json_body ? strlen(json_body) : 0;
    char head[1024];
    int hn = snprintf(head, sizeof(head),
                      "%s %s HTTP/1.1\r\nHost: local-tunless\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      method, target, blen);
    size_t len = 0;
    char *raw = NULL;
    if (hn < 0 || (size_t)hn >= sizeof(head) || send_all(fd, head, (size_t)hn) != 0 ||
        (blen && send_all(fd, json_body, blen) != 0) || !(raw = read_all(fd, &len)) ||
        parse_response(raw, len, out) != 0) {
        snprintf(err, errlen, "%s: the node's answer to %s %s was cut short or unreadable", path,
                 method, target);
        free(raw);
        close(fd);
        return -1;
    }
    free(raw);
    close(fd);
    out->json = json_loadb(out->body, out->body_len, 0, NULL);
    return 0;
}

void node_localapi_reply_free(struct node_localapi_reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

const char *node_localapi_reply_error(const struct node_localapi_reply *r)
{
    const char *e = json_string_value(json_object_get(r->json, "error"));
    return e ? e : "(no message)";
}

int node_localapi_client_socket(const char *flag, char *out, size_t cap, const char *cmd)
{
    if (node_localapi_socket_path(flag, NULL, out, cap) == 0)
        return 0;
    fprintf(stderr,
            "tunless %s: no state directory to find the node's socket in: give --socket "
            "PATH (or set TUNLESS_SOCKET)\n",
            cmd);
    return -1;
}

/* Runs one request; prints the failure and returns 1, or 0 with r holding a 2xx JSON answer. */
int node_localapi_cli_call(const char *cmd, const char *socket, const char *method,
                           const char *target, const char *body, struct node_localapi_reply *r)
{
    char path[4200], err[4400];
    if (node_localapi_client_socket(socket, path, sizeof(path), cmd) != 0)
        return 1;
    if (node_localapi_call(path, method, target, body, r, err, sizeof(err)) != 0) {
        fprintf(stderr, "tunless %s: %s\n", cmd, err);
        return 1;
    }
    if (r->status / 100 != 2 || !r->json) {
        fprintf(stderr, "tunless %s: %s (HTTP %d)\n", cmd, node_localapi_reply_error(r), r->status);
        node_localapi_reply_free(r);
        return 1;
    }
    return 0;
}

int node_localapi_open_stream(const char *path, const char *target, char *err, size_t errlen)
{
    int fd = connect_socket(path, err, errlen);
    if (fd < 0)
        return -1;
    char head[1024];
    int hn = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: local-tunless\r\n\r\n", target);
    if (hn < 0 || (size_t)hn >= sizeof(head) || send_all(fd, head, (size_t)hn) != 0) {
        snprintf(err, errlen, "%s: cannot send GET %s: %s", path, target, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
