/*
 * `tunless watch`: follows GET /v0/watch. Flow: open the stream -> read the response head ->
 * dechunk (the node sends one line a chunk) -> each line as it is (--json) or as one readable
 * line (describe) -> the end of the stream (the node stopped, or dropped a watcher that fell
 * behind: its last line says which). Exit 0 when the node ended the stream, 1 on a failure.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "localapi_client.h"
#include "node.h"

#define LINE_MAX_BYTES (1u << 20)

struct stream {
    int fd;
    char buf[65536];
    size_t len, pos;
};

/* ---- reading ---- */

static int fill(struct stream *s)
{
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
    }
    if (s->len == sizeof(s->buf))
        return -1;
    ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len);
    if (n <= 0)
        return -1;
    s->len += (size_t)n;
    return 0;
}

/* The next CRLF-terminated line of the head or of the chunk framing, without the CRLF. */
static char *next_crlf(struct stream *s)
{
    for (;;) {
        char *start = s->buf + s->pos;
        char *end = memmem(start, s->len - s->pos, "\r\n", 2);
        if (end) {
            *end = '\0';
            s->pos = (size_t)(end + 2 - s->buf);
            return start;
        }
        if (fill(s) != 0)
            return NULL;
    }
}

/* n bytes of chunk data into out (which has room for them). */
static int take(struct stream *s, char *out, size_t n)
{
    while (n > 0) {
        if (s->pos == s->len && fill(s) != 0)
            return -1;
        size_t k = s->len - s->pos < n ? s->len - s->pos : n;
        memcpy(out, s->buf + s->pos, k);
        s->pos += k;
        out += k;
        n -= k;
    }
    return 0;
}

/* ---- printing ---- */

static const char *str(const json_t *o, const char *key, const char *dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* "web (AbCd1234)" or "AbCd1234". */
static const char *who(const json_t *o, char *buf, size_t cap)
{
    const char *key = str(o, "peer", str(o, "public_key", "?"));
    const char *name = str(o, "name", NULL);
    if (name)
        snprintf(buf, cap, "%s (%.8s)", name, key);
    else
        snprintf(buf, cap, "%.8s", key);
    return buf;
}

static void describe_peers(const json_t *peers, bool counters)
{
    size_t i;
    const json_t *p;
    char w[128];
    json_array_foreach(peers, i, p)
    {
        if (counters)
            printf("    peer %s rx %lld B tx %lld B\n", who(p, w, sizeof(w)),
                   (long long)json_integer_value(json_object_get(p, "rx_bytes")),
                   (long long)json_integer_value(json_object_get(p, "tx_bytes")));
        else
            printf("    peer %s endpoint %s last handshake %s\n", who(p, w, sizeof(w)),
                   str(p, "endpoint", "none"), str(p, "last_handshake", "never"));
    }
}

static void describe(const json_t *ev)
{
    const char *type = str(ev, "type", "?"), *time = str(ev, "time", "");
    char w[128];
    const char *t = strlen(time) > 11 ? time + 11 : time; /* the time of day */
    if (strcmp(type, "snapshot") == 0) {
        const json_t *pr = json_object_get(ev, "prefs");
        printf("%s %s  want_running=%s log_level=%s outbound=%s\n", t, str(ev, "state", "?"),
               json_is_true(json_object_get(pr, "want_running")) ? "true" : "false",
               str(pr, "log_level", "?"), str(pr, "outbound", "?"));
        describe_peers(json_object_get(ev, "peers"), false);
        size_t i;
        const json_t *h;
        json_array_foreach(json_object_get(ev, "health"), i, h)
        {
            printf("    health: %s\n", str(h, "message", "?"));
        }
    } else if (strcmp(type, "health") == 0) {
        printf("%s health%s: %s\n", t,
               json_is_true(json_object_get(ev, "cleared")) ? " cleared" : "",
               str(ev, "detail", "?"));
    } else if (strcmp(type, "state") == 0) {
        printf("%s state %s -> %s\n", t, str(ev, "from", "?"), str(ev, "to", "?"));
    } else if (strcmp(type, "stats") == 0) {
        printf("%s stats (%s)\n", t, str(ev, "state", "?"));
        describe_peers(json_object_get(ev, "peers"), true);
    } else if (json_object_get(ev, "peer")) {
        printf("%s %s %s\n", t, type, who(ev, w, sizeof(w)));
    } else if (strcmp(type, "config_rejected") == 0) {
        printf("%s configuration rejected: %s\n", t, str(ev, "error", "?"));
    } else if (strcmp(type, "prefs") == 0) {
        const json_t *pr = json_object_get(ev, "prefs");
        printf("%s prefs want_running=%s log_level=%s outbound=%s\n", t,
               json_is_true(json_object_get(pr, "want_running")) ? "true" : "false",
               str(pr, "log_level", "?"), str(pr, "outbound", "?"));
    } else if (json_object_get(ev, "error")) {
        printf("the node ended this watch: %s\n", str(ev, "error", "?"));
    } else {
        printf("%s %s%s%s\n", t, type, json_object_get(ev, "detail") ? " " : "",
               str(ev, "detail", ""));
    }
}

static void print_line(const char *line, size_t len, bool raw)
{
    if (raw) {
        fwrite(line, 1, len, stdout);
    } else {
        json_t *ev = json_loadb(line, len, 0, NULL);
        if (ev)
            describe(ev);
        json_decref(ev);
    }
    fflush(stdout);
}

/* A chunk-size line: hex digits, then nothing or extensions (";..."). 0 with *n, or -1 for
 * anything else (garbage, or a size of LINE_MAX_BYTES or more). */
static int chunk_size(const char *line, unsigned long *n)
{
    const char *p = line;
    *n = 0;
    for (; isxdigit((unsigned char)*p) && *n < LINE_MAX_BYTES; p++)
        *n = *n * 16 +
             (unsigned long)(isdigit((unsigned char)*p) ? *p - '0' : (*p | 0x20) - 'a' + 10);
    return p > line && *n < LINE_MAX_BYTES && (*p == '\0' || *p == ';') ? 0 : -1;
}

/* The head, then chunks until the last one. 0 at a clean end, -1 when the stream broke, -2
 * when it is not chunks (a bad chunk size). */
static int follow(struct stream *s, bool raw)
{
    char *line = next_crlf(s);
    int status = 0;
    if (!line || sscanf(line, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    while ((line = next_crlf(s)) && *line) {
    }
    if (!line)
        return -1;
    if (status != 200) {
        fprintf(stderr, "tunless watch: the node answered HTTP %d\n", status);
        return -1;
    }
    char *data = malloc(LINE_MAX_BYTES);
    int rc = -1;
    for (;;) {
        char *size = next_crlf(s);
        unsigned long n = 0;
        if (!size || !data)
            break;
        if (chunk_size(size, &n) != 0) {
            rc = -2;
            break;
        }
        if (n == 0) {
            rc = 0;
            break;
        }
        if (take(s, data, n) != 0 || !next_crlf(s))
            break;
        print_line(data, n, raw);
    }
    free(data);
    return rc;
}

int node_cmd_watch(int argc, char **argv)
{
    static const struct option longopts[] = {{"socket", required_argument, NULL, 's'},
                                             {"stats", required_argument, NULL, 't'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {0}};
    const char *socket = NULL, *stats = NULL;
    bool raw = false, help = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
        if (c == 's')
            socket = optarg;
        else if (c == 't')
            stats = optarg;
        else if (c == 'j')
            raw = true;
        else if (c == 'h')
            help = true;
        else
            help = false, optind = argc + 1;
    }
    if (optind != argc || help) {
        fprintf(help ? stdout : stderr,
                "usage: tunless watch [--json] [--stats SECONDS] [--socket PATH]\n"
                "  follow the running node: its state, then one line per event\n");
        return help ? 0 : 2;
    }
    char path[4200], err[4400], target[64];
    snprintf(target, sizeof(target), "/v0/watch%s%.16s", stats ? "?stats=" : "",
             stats ? stats : "");
    if (node_localapi_client_socket(socket, path, sizeof(path), "watch") != 0)
        return 1;
    struct stream *s = calloc(1, sizeof(*s));
    if (!s)
        return 1;
    s->fd = node_localapi_open_stream(path, target, err, sizeof(err));
    if (s->fd < 0) {
        fprintf(stderr, "tunless watch: %s\n", err);
        free(s);
        return 1;
    }
    int rc = follow(s, raw);
    if (rc == -2)
        fprintf(stderr, "tunless watch: the stream from %s is not HTTP chunks (a bad chunk size)\n",
                path);
    else if (rc != 0)
        fprintf(stderr, "tunless watch: the stream from %s broke off\n", path);
    close(s->fd);
    free(s);
    return rc == 0 ? 0 : 1;
}
