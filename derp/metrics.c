/* The counters and gauges as Prometheus text (version 0.0.4), every name prefixed derp_. */
#include <stdarg.h>
#include <stdio.h>

#include "server.h"

struct out {
    char *p;
    size_t cap, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->len >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

static void metric(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    put(o, "# HELP derp_%s %s\n# TYPE derp_%s %s\nderp_%s %llu\n", name, help, name, type, name,
        (unsigned long long)v);
}

size_t derp_server_metrics(const struct derp_server *s, char *out, size_t cap)
{
    struct out o = {out, cap, 0};
    if (cap == 0)
        return 0;
    out[0] = '\0';
#define DERP_COUNTER_PRINT(name, help) metric(&o, #name "_total", "counter", help, s->ctr.name);
    DERP_COUNTERS(DERP_COUNTER_PRINT)
#undef DERP_COUNTER_PRINT
    metric(&o, "stun_requests_total", "counter", "STUN binding requests answered",
           s->ctr.stun.requests);
    metric(&o, "stun_ignored_total", "counter", "STUN datagrams ignored (not a binding request)",
           s->ctr.stun.ignored);
    metric(&o, "stun_send_errors_total", "counter", "STUN answers that could not be sent",
           s->ctr.stun.send_errors);
    metric(&o, "clients", "gauge", "clients logged in", s->n_clients);
    metric(&o, "home_clients", "gauge", "clients that named this server their home", s->n_home);
    metric(&o, "remote_clients", "gauge", "keys other mesh servers reported", s->remote.count);
    uint64_t watchers = 0, queued_pkts = 0, queued_bytes = 0;
    struct base_list *it;
    base_list_foreach (it, &s->watchers) {
        watchers++;
    }
    base_list_foreach (it, &s->conns) {
        struct derp_conn *c = container_of(it, struct derp_conn, node);
        queued_pkts += c->q_len;
        queued_bytes += derp_link_queued(&c->link);
    }
    metric(&o, "queued_packets", "gauge", "packets waiting in clients' queues", queued_pkts);
    metric(&o, "queued_write_bytes", "gauge", "bytes written to clients the kernel has not taken",
           queued_bytes);
    metric(&o, "watchers", "gauge", "mesh servers watching this one", watchers);
    return o.len;
}
