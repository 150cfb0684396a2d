/* The counters and gauges as Prometheus text (base_prom), every name prefixed derp_. */
#include <stdio.h>

#include "server.h"

static void metric(struct base_prom *o, const char *name, enum base_prom_type type,
                   const char *help, uint64_t v)
{
    char full[96];
    snprintf(full, sizeof(full), "derp_%s", name);
    base_prom_one(o, full, type, help, v);
}

size_t derp_server_metrics(const struct derp_server *s, char *out, size_t cap)
{
    struct base_prom o;
    base_prom_init(&o, out, cap);
#define DERP_COUNTER_PRINT(name, help) \
    metric(&o, #name "_total", BASE_PROM_COUNTER, help, s->ctr.name);
    DERP_COUNTERS(DERP_COUNTER_PRINT)
#undef DERP_COUNTER_PRINT
    metric(&o, "stun_requests_total", BASE_PROM_COUNTER, "STUN binding requests answered",
           s->ctr.stun.requests);
    metric(&o, "stun_ignored_total", BASE_PROM_COUNTER,
           "STUN datagrams ignored (not a binding request)", s->ctr.stun.ignored);
    metric(&o, "stun_send_errors_total", BASE_PROM_COUNTER, "STUN answers that could not be sent",
           s->ctr.stun.send_errors);
    metric(&o, "clients", BASE_PROM_GAUGE, "clients logged in", s->n_clients);
    metric(&o, "home_clients", BASE_PROM_GAUGE, "clients that named this server their home",
           s->n_home);
    metric(&o, "remote_clients", BASE_PROM_GAUGE, "keys other mesh servers reported",
           s->remote.count);
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
    metric(&o, "queued_packets", BASE_PROM_GAUGE, "packets waiting in clients' queues",
           queued_pkts);
    metric(&o, "queued_write_bytes", BASE_PROM_GAUGE,
           "bytes written to clients the kernel has not taken", queued_bytes);
    metric(&o, "watchers", BASE_PROM_GAUGE, "mesh servers watching this one", watchers);
    return o.len;
}
