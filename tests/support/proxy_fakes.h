/*
 * Test doubles for proxy/: a stream the test drives by hand (writes recorded and completed when
 * the test says, the ops counted), and a proxy server on a loop thread of its own for tests
 * that talk to it as a plain blocking client.
 */
#ifndef TUNLESS_TEST_PROXY_FAKES_H
#define TUNLESS_TEST_PROXY_FAKES_H

#include <pthread.h>
#include <stdbool.h>

#include "proxy.h"

#define PX_FAKE_WRITES 64

struct px_fake_stream {
    struct proxy_stream base;
    const struct proxy_stream_cbs *cbs; /* as the dialer got them, or NULL */
    void *ud;
    bool reading;
    int read_starts, read_stops, shutdowns, closes, resets;
    size_t bytes; /* written through write() */
    size_t take;  /* what try_write takes at once (0: nothing) */
    size_t taken; /* written through try_write */
    proxy_write_cb wcb[PX_FAKE_WRITES];
    void *warg[PX_FAKE_WRITES];
    size_t nw, done; /* writes made, writes completed */
};

/* Ops that only record; cbs and ud (may be NULL) are what the stream would report to. */
void px_fake_stream_init(struct px_fake_stream *f, const struct proxy_stream_cbs *cbs, void *ud);
struct px_fake_stream *px_fake_of(struct proxy_stream *s);
/* Completes the oldest outstanding write with err. */
void px_fake_complete(struct px_fake_stream *f, int err);
/* What a closed stream's dialer does: the outstanding writes end with -ECANCELED, then on_close. */
void px_fake_gone(struct px_fake_stream *f);

struct px_thread;

/* A stream that lives on a loop, for a dialer to return: it reports on_connect (connect_err, and
 * local when it succeeds) on the next loop turn unless `never`, takes one write at a time, and
 * after each write completes hands it to answer() (the test's upstream: on_read, on_eof...). */
struct px_loop_stream {
    struct proxy_stream base;
    struct proxy_stream_cbs cbs;
    void *ud;
    uv_timer_t timer;
    int connect_err;
    bool never, connected, closed;
    struct base_endpoint local;
    struct proxy_route route; /* what its route op says */
    uint8_t last[65536];      /* the last write */
    size_t last_len;
    proxy_write_cb wcb;
    void *warg;
    void (*answer)(struct px_loop_stream *s);
    struct px_thread *t; /* its counters */
};
/* On t's loop, counted in t; freed after its on_close. */
struct px_loop_stream *px_loop_stream_new(struct px_thread *t, const struct proxy_stream_cbs *cbs,
                                          void *ud);
/* Reports on_connect from the loop now (after setting connect_err, local, never). */
void px_loop_stream_start(struct px_loop_stream *s);

struct px_thread {
    uv_loop_t loop;
    uv_async_t stop;
    struct proxy_server *srv;
    int port;
    pthread_t thread;
    int dials, closes, on_closes; /* px_loop_streams made, closed, gone */
    uv_async_t call;              /* px_thread_call */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(struct px_thread *t, void *arg);
    void *fn_arg;
};
/* Runs fn(t, arg) on the loop thread and waits for it. */
void px_thread_call(struct px_thread *t, void (*fn)(struct px_thread *t, void *arg), void *arg);
/* proxy_server_stats, read on the loop thread. */
void px_thread_stats(struct px_thread *t, struct proxy_stats *out);
/* A server with cfg on its own loop thread (cfg's dialer may use t->loop). */
void px_thread_start(struct px_thread *t, const struct proxy_config *cfg);
/* Closes the server, joins the thread and closes the loop (which must then be empty); every
 * px_loop_stream the proxy got was closed once and reported its close. */
void px_thread_stop(struct px_thread *t);
/* A socket connected to the server, with a 10 s receive timeout. */
int px_thread_client(const struct px_thread *t);
/* Reads exactly len bytes (asserts they come). */
void px_read_full(int fd, void *buf, size_t len);

#endif
