/*
 * Admission of new proxy clients (see admit.h). Flow: proxy_admit -> room? (live sessions
 * under the cap, descriptors above the reserve) -> else evict the oldest in its head, or
 * refuse -> note() counts and logs, or leaves the line to the flush timer; close -> flush ->
 * the timer's close -> on_closed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "admit.h"

static const char *const kind_event[PROXY_ADMIT_KINDS] = {"evicted", "evicted", "refused",
                                                          "refused", "refused"};
static const char *const kind_reason[PROXY_ADMIT_KINDS] = {
    "max_connections", "fds", "max_connections", "fds", "accept_failed"};

static void write_line(struct proxy_admit *a, enum proxy_admit_kind k, int err)
{
    struct proxy_admit_counter *c = &a->counts[k];
    base_logf(a->logger, BASE_LOG_WARN, "event=%s_%s reason=%s count=%u total=%llu%s%s%s%s",
              a->who ? a->who : "proxy", kind_event[k], kind_reason[k], c->unlogged, c->total,
              err ? " err=" : "", err ? base_errname(err) : "", a->fields[0] ? " " : "", a->fields);
    c->unlogged = 0;
    c->logged_at = uv_now(a->loop);
    c->logged = true;
}

static void on_flush(uv_timer_t *t)
{
    struct proxy_admit *a = t->data;
    for (int k = 0; k < PROXY_ADMIT_KINDS; k++)
        if (a->counts[k].unlogged)
            write_line(a, k, 0);
}

static void note(struct proxy_admit *a, enum proxy_admit_kind k, int err)
{
    struct proxy_admit_counter *c = &a->counts[k];
    c->total++;
    c->unlogged++;
    uint64_t now = uv_now(a->loop);
    if (!c->logged || now - c->logged_at >= PROXY_REFUSAL_LOG_MS) {
        write_line(a, k, err);
        return;
    }
    if (a->flush_open && !uv_is_active((uv_handle_t *)&a->flush))
        uv_timer_start(&a->flush, on_flush, c->logged_at + PROXY_REFUSAL_LOG_MS - now, 0);
}

void proxy_admit_init(struct proxy_admit *a, uv_loop_t *loop, const struct base_logger *logger,
                      unsigned max_connections, int listener_fd)
{
    *a = (struct proxy_admit){.loop = loop,
                              .logger = logger,
                              .max_connections = max_connections,
                              .probe_fd = listener_fd,
                              .flush_open = true};
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        a->fd_limit = (long)rl.rlim_cur;
    uv_timer_init(loop, &a->flush);
    a->flush.data = a;
}

/* Whether descriptors run short: the lowest free one is a fair count of those in use. */
static bool fds_short(struct proxy_admit *a)
{
    if (a->fd_limit <= 0 || a->probe_fd < 0)
        return false;
    int fd = fcntl(a->probe_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return true;
    close(fd);
    return fd >= a->fd_limit - PROXY_FD_RESERVE;
}

bool proxy_admit(struct proxy_admit *a, struct base_list *sessions, unsigned nsessions)
{
    bool fds = fds_short(a);
    if (!fds && nsessions < a->max_connections)
        return true;
    struct base_list *pos;
    unsigned live = 0;
    struct proxy_session *oldest = NULL;
    base_list_foreach (pos, sessions) {
        struct proxy_session *s = container_of(pos, struct proxy_session, link);
        if (s->state == PROXY_SESSION_CLOSING)
            continue; /* already going; counted until its close callbacks */
        live++;
        if (!oldest && proxy_session_in_head(s))
            oldest = s;
    }
    if (!fds && live < a->max_connections)
        return true;
    if (!oldest) {
        note(a, fds ? PROXY_REFUSED_FDS : PROXY_REFUSED_FULL, 0);
        return false;
    }
    note(a, fds ? PROXY_EVICTED_FDS : PROXY_EVICTED_FULL, 0);
    proxy_session_log(oldest, BASE_LOG_DEBUG, "proxy_evict", "reason=%s",
                      fds ? "fds" : "max_connections");
    proxy_session_abort(oldest);
    return true;
}

void proxy_admit_failed(struct proxy_admit *a, int err)
{
    note(a, PROXY_ACCEPT_FAILED, err);
}

static void on_flush_closed(uv_handle_t *h)
{
    struct proxy_admit *a = h->data;
    if (a->on_closed)
        a->on_closed(a->arg);
}

void proxy_admit_close(struct proxy_admit *a, void (*on_closed)(void *arg), void *arg)
{
    if (!a->flush_open)
        return;
    on_flush(&a->flush);
    a->flush_open = false;
    a->on_closed = on_closed;
    a->arg = arg;
    uv_close((uv_handle_t *)&a->flush, on_flush_closed);
}

unsigned long long proxy_admit_count(const struct proxy_admit *a, enum proxy_admit_kind kind)
{
    return a->counts[kind].total;
}
