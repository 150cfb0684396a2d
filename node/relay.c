#include "relay.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Stop reading a side once this much of its data waits to be written to the other side. */
#define RELAY_HIGH_WATER (256 * 1024)
#define RELAY_LOW_WATER (64 * 1024)

struct side {
    struct node_relay *r;
    int index;
    struct proxy_stream *s;
    size_t pending; /* bytes written TO this side, not yet acknowledged */
    bool eof, closed, reading_paused, shut;
};

struct node_relay {
    struct side side[2];
    bool connected, failed;
};

struct write_buf {
    struct side *to;
    size_t len;
    uint8_t data[];
};

static struct side *other(struct side *s)
{
    return &s->r->side[1 - s->index];
}

struct node_relay *node_relay_new(void)
{
    struct node_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    for (int i = 0; i < 2; i++)
        r->side[i] = (struct side){.r = r, .index = i};
    return r;
}

void *node_relay_side(struct node_relay *r, int i)
{
    return &r->side[i];
}

static void close_side(struct side *s)
{
    if (s->s && !s->closed) {
        s->closed = true;
        s->s->ops->close(s->s);
    }
}

static void fail(struct node_relay *r)
{
    if (r->failed)
        return;
    r->failed = true;
    for (int i = 0; i < 2; i++)
        if (r->side[i].s && !r->side[i].closed) {
            r->side[i].closed = true;
            r->side[i].s->ops->reset(r->side[i].s);
        }
}

/* Both directions finished: FIN went each way and every byte was acknowledged. */
static void maybe_done(struct node_relay *r)
{
    struct side *a = &r->side[0], *b = &r->side[1];
    if (a->eof && b->eof && a->pending == 0 && b->pending == 0) {
        close_side(a);
        close_side(b);
    }
}

static void on_written(void *arg, int err)
{
    struct write_buf *w = arg;
    struct side *to = w->to;
    to->pending -= w->len;
    free(w);
    if (err) {
        fail(to->r);
        return;
    }
    struct side *from = other(to);
    if (from->reading_paused && to->pending < RELAY_LOW_WATER && !from->closed) {
        from->reading_paused = false;
        from->s->ops->read_start(from->s);
    }
    if (from->eof && to->pending == 0 && !to->shut && !to->closed) {
        to->shut = true;
        to->s->ops->shutdown(to->s);
    }
    maybe_done(to->r);
}

static void on_read(void *ud, const uint8_t *data, size_t len)
{
    struct side *from = ud, *to = other(from);
    if (to->closed)
        return;
    struct write_buf *w = malloc(sizeof(*w) + len);
    if (!w) {
        fail(from->r);
        return;
    }
    w->to = to;
    w->len = len;
    memcpy(w->data, data, len);
    to->pending += len;
    if (to->s->ops->write(to->s, w->data, len, on_written, w) != 0) {
        to->pending -= len;
        free(w);
        fail(from->r);
        return;
    }
    if (to->pending > RELAY_HIGH_WATER && !from->reading_paused) {
        from->reading_paused = true;
        from->s->ops->read_stop(from->s);
    }
}

static void on_eof(void *ud)
{
    struct side *from = ud, *to = other(from);
    from->eof = true;
    if (to->pending == 0 && !to->shut && !to->closed) {
        to->shut = true;
        to->s->ops->shutdown(to->s);
    }
    maybe_done(from->r);
}

static void on_error(void *ud, int err)
{
    (void)err;
    struct side *s = ud;
    fail(s->r);
}

static void on_connect(void *ud, int err, const struct sockaddr *local)
{
    (void)local;
    struct side *s = ud;
    struct node_relay *r = s->r;
    if (err) {
        fail(r); /* the accepted side sees a reset: the service is not there */
        return;
    }
    r->connected = true;
    for (int i = 0; i < 2; i++)
        r->side[i].s->ops->read_start(r->side[i].s);
}

static void on_close(void *ud)
{
    struct side *s = ud;
    struct node_relay *r = s->r;
    s->closed = true;
    s->s = NULL;
    if (!r->side[0].s && !r->side[1].s)
        free(r);
}

const struct proxy_stream_cbs node_relay_cbs = {
    .on_connect = on_connect,
    .on_read = on_read,
    .on_eof = on_eof,
    .on_error = on_error,
    .on_close = on_close,
};

void node_relay_start(struct node_relay *r, struct proxy_stream *s0, struct proxy_stream *s1)
{
    r->side[0].s = s0;
    r->side[1].s = s1;
    if (s0 && s1)
        return; /* s1's on_connect starts the reading */
    close_side(&r->side[0]);
    close_side(&r->side[1]);
    if (!s0 && !s1)
        free(r);
}
