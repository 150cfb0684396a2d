/* A DNS stream session (RFC 7766 framing) fed arbitrary bytes in arbitrary pieces, with a
 * transport that takes its output a few bytes at a time or not at all. Every byte written must
 * be a well-formed frame holding a well-formed reply; the session must end cleanly.
 * data[0]: piece size, data[1]: bytes write() takes per call (0 = none until writable). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dns_wire.h"

struct conn {
    struct dns_stream *s;
    size_t take;
    int closed, paused;
    uint8_t frame[2 + 65535]; /* the frame being written */
    size_t have;
};

/* Checks each frame as its last byte arrives. */
static void out_byte(struct conn *c, uint8_t b)
{
    c->frame[c->have++] = b;
    if (c->have < 2)
        return;
    size_t len = dns_get16(c->frame);
    if (c->have < 2 + len)
        return;
    struct dns_msg_info info;
    if (len < DNS_HDR_LEN || dns_msg_parse(c->frame + 2, len, &info) < 0)
        abort();
    c->have = 0;
}

static ssize_t c_write(void *ctx, const uint8_t *data, size_t len)
{
    struct conn *c = ctx;
    if (c->closed)
        abort();
    size_t n = c->take < len ? c->take : len;
    for (size_t i = 0; i < n; i++)
        out_byte(c, data[i]);
    return (ssize_t)n;
}

static void c_pause(void *ctx, bool paused)
{
    struct conn *c = ctx;
    if (c->closed || c->paused == paused)
        abort(); /* only changes, never after close */
    c->paused = paused;
}

static void c_close(void *ctx, bool graceful)
{
    struct conn *c = ctx;
    (void)graceful;
    if (c->closed)
        abort();
    c->closed = 1;
    dns_stream_close(c->s, NULL, NULL);
}

static const struct dns_stream_ops ops = {c_write, c_pause, NULL, c_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uv_loop_t loop;
    static struct dns_resolver *r;
    static struct conn c;
    if (!r) {
        static struct base_addr a[1];
        static struct dns_host h[1];
        static struct dns_config cfg;
        if (base_addr_parse(&a[0], "100.64.0.2", 10) < 0)
            abort();
        h[0] = (struct dns_host){"db", a, 1};
        cfg.hosts = h;
        cfg.n_hosts = 1;
        uv_loop_init(&loop);
        if (dns_resolver_new(&loop, &cfg, &r) < 0)
            abort();
    }
    if (size < 2)
        return 0;
    size_t piece = (size_t)data[0] % 97 + 1;
    memset(&c, 0, sizeof(c));
    c.take = data[1];
    struct dns_stream_config sc = {.ops = &ops, .ctx = &c};
    if (dns_stream_new(r, &sc, &c.s) < 0)
        abort();
    for (size_t off = 2; off < size && !c.closed; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        dns_stream_feed(c.s, data + off, n);
    }
    if (!c.closed)
        dns_stream_eof(c.s);
    /* the client reads everything now: the session drains and closes after its EOF */
    for (int i = 0; i < 64 && !c.closed; i++) {
        c.take = 65536;
        dns_stream_writable(c.s);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    if (!c.closed)
        abort();                  /* no upstreams: nothing can stay in flight */
    uv_run(&loop, UV_RUN_NOWAIT); /* the session's timer closes */
    return 0;
}
