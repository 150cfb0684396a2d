/*
 * Admission of new proxy clients (admit.c): when the server is full (max_connections) or short
 * of file descriptors, the oldest session still waiting for its request head gives way to the
 * new client; with none to evict, the new client is refused (reset). Every eviction and refusal
 * is counted and logged at most once per PROXY_REFUSAL_LOG_MS per kind, with the count since
 * the last line (a flush timer writes the tail of a burst). A relay's listener uses the
 * counting and logging alone (proxy_admit_failed), for its accept failures. Internal to proxy/.
 */
#ifndef TUNLESS_PROXY_ADMIT_H
#define TUNLESS_PROXY_ADMIT_H

#include <stdbool.h>

#include "session.h"

/* Descriptors kept free for upstream sockets, DNS and the like: below this many left, a new
 * client counts as one too many. */
#define PROXY_FD_RESERVE 32

enum proxy_admit_kind {
    PROXY_EVICTED_FULL,
    PROXY_EVICTED_FDS,
    PROXY_REFUSED_FULL,
    PROXY_REFUSED_FDS,
    PROXY_ACCEPT_FAILED,
    PROXY_ADMIT_KINDS,
};

struct proxy_admit_counter {
    unsigned long long total;
    unsigned unlogged;
    uint64_t logged_at;
    bool logged;
};

struct proxy_admit {
    uv_loop_t *loop;
    const struct base_logger *logger;
    /* The lines: event=<who>_refused (or _evicted) ... <fields>. who NULL: "proxy"; fields
     * (key=value, may be empty) name the listener for an owner with several (a relay). */
    const char *who;
    char fields[PROXY_TARGET_STRLEN + 16];
    unsigned max_connections;
    long fd_limit; /* RLIMIT_NOFILE's soft limit; 0 = unknown */
    int probe_fd;  /* the listener's descriptor, for the lowest-free-descriptor probe */
    uv_timer_t flush;
    bool flush_open;
    void (*on_closed)(void *arg);
    void *arg;
    struct proxy_admit_counter counts[PROXY_ADMIT_KINDS];
};

void proxy_admit_init(struct proxy_admit *a, uv_loop_t *loop, const struct base_logger *logger,
                      unsigned max_connections, int listener_fd);
/* A client was just accepted (it is not yet in sessions): whether it may stay. May evict
 * (abort) the oldest session in its head to make room. */
bool proxy_admit(struct proxy_admit *a, struct base_list *sessions, unsigned nsessions);
/* The listener failed to accept (err): counted and logged. */
void proxy_admit_failed(struct proxy_admit *a, int err);
/* Writes what is still unlogged and closes the flush timer; on_closed(arg) afterwards. */
void proxy_admit_close(struct proxy_admit *a, void (*on_closed)(void *arg), void *arg);
unsigned long long proxy_admit_count(const struct proxy_admit *a, enum proxy_admit_kind kind);

#endif
