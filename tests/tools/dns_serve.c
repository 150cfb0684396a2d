/*
 * Runs the tunless resolver with a local listener, configured from flags, until SIGINT/SIGTERM.
 *   dns_serve --listen 127.0.0.1:5353 [--suffix S] [--ttl N] [--timeout MS]
 *             [--host NAME=IP[,IP...]]... [--record NAME:TYPE:VALUE]...
 *             [--upstream IP[:PORT]]... [--route SUFFIX=SERVER[,SERVER...]]...
 *             [--search DOMAIN]... [--many NAME=COUNT]  (COUNT A records 10.9.x.y for NAME)
 *             [--tcp-idle MS] [--max-tcp N]
 * Prints "ready PORT" on stdout once listening; the stats on stderr at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define MAXN 256

static struct dns_host hosts[MAXN];
static struct base_addr addrs[MAXN][8];
static struct dns_record records[4096];
static struct base_endpoint upstreams[MAXN];
static const char *search[MAXN];
static struct dns_route routes[MAXN];
static struct base_endpoint route_servers[MAXN][8];
static struct dns_listener *listener;
static struct dns_resolver *resolver;
static uv_signal_t sigint, sigterm;

static int parse_addr(const char *s, struct base_addr *out)
{
    return base_addr_parse(out, s, strlen(s));
}

/* "ip", "ip:port", "[ipv6]:port"; port 53 when absent. */
static int parse_server(const char *s, struct base_endpoint *out)
{
    char host[BASE_HOST_MAX + 1];
    out->port = 53;
    if (base_hostport_parse(s, strlen(s), host, sizeof(host), &out->port,
                            BASE_HOSTPORT_PORT_OPTIONAL, NULL) < 0)
        return -1;
    return parse_addr(host, &out->addr);
}

static int parse_host(struct dns_config *c, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || c->n_hosts >= MAXN)
        return -1;
    *eq = 0;
    struct dns_host *h = &hosts[c->n_hosts];
    h->name = arg;
    h->addrs = addrs[c->n_hosts];
    for (char *tok = strtok(eq + 1, ","); tok && h->n_addrs < 8; tok = strtok(NULL, ",")) {
        if (parse_addr(tok, &addrs[c->n_hosts][h->n_addrs]) < 0)
            return -1;
        h->n_addrs++;
    }
    c->n_hosts++;
    return 0;
}

static int type_of(const char *s)
{
    static const struct {
        const char *n;
        int t;
    } tab[] = {{"A", DNS_TYPE_A},
               {"AAAA", DNS_TYPE_AAAA},
               {"CNAME", DNS_TYPE_CNAME},
               {"TXT", DNS_TYPE_TXT},
               {"PTR", DNS_TYPE_PTR}};
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (!strcasecmp(s, tab[i].n))
            return tab[i].t;
    return -1;
}

static int parse_record(struct dns_config *c, char *arg)
{
    char *t = strchr(arg, ':');
    char *v = t ? strchr(t + 1, ':') : NULL;
    if (!v || c->n_records >= 4096)
        return -1;
    *t = *v = 0;
    int type = type_of(t + 1);
    if (type < 0)
        return -1;
    struct dns_record *rec = &records[c->n_records++];
    *rec = (struct dns_record){.name = arg, .type = (uint16_t)type, .value = v + 1, .ttl = 0};
    if (type == DNS_TYPE_A || type == DNS_TYPE_AAAA)
        return parse_addr(v + 1, &rec->addr);
    return 0;
}

static int parse_route(struct dns_config *c, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq || c->n_routes >= MAXN)
        return -1;
    *eq = 0;
    struct dns_route *r = &routes[c->n_routes];
    r->suffix = arg;
    r->servers = route_servers[c->n_routes];
    for (char *tok = strtok(eq + 1, ","); tok && r->n_servers < 8; tok = strtok(NULL, ","))
        if (parse_server(tok, &route_servers[c->n_routes][r->n_servers++]) < 0)
            return -1;
    c->n_routes++;
    return 0;
}

static int parse_many(struct dns_config *c, char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq)
        return -1;
    *eq = 0;
    int n = atoi(eq + 1);
    for (int i = 0; i < n && c->n_records < 4096; i++) {
        uint8_t ip[4] = {10, 9, (uint8_t)(i / 250), (uint8_t)(i % 250 + 1)};
        records[c->n_records] =
            (struct dns_record){.name = arg, .type = DNS_TYPE_A, .value = NULL, .ttl = 0};
        base_addr_v4(&records[c->n_records].addr, ip);
        c->n_records++;
    }
    return 0;
}

static void log_line(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s %s\n", base_log_level_name(level), line);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct dns_stats st;
    (void)s;
    (void)signum;
    dns_resolver_stats(resolver, &st);
    fprintf(stderr,
            "stats queries=%llu local=%llu forwarded=%llu cache_hits=%llu upstream_failures=%llu "
            "no_route=%llu formerr=%llu dropped=%llu truncated=%llu\n",
            (unsigned long long)st.queries, (unsigned long long)st.local_answers,
            (unsigned long long)st.forwarded, (unsigned long long)st.cache_hits,
            (unsigned long long)st.upstream_failures, (unsigned long long)st.no_route,
            (unsigned long long)st.formerr, (unsigned long long)st.dropped,
            (unsigned long long)st.truncated);
    dns_listener_close(listener, NULL, NULL);
    dns_resolver_close(resolver, NULL, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
}

int main(int argc, char **argv)
{
    struct dns_config c = {0};
    struct dns_listener_config lo = {0};
    const char *listen = "127.0.0.1:5353";
    int rc = 0;

    c.upstreams = upstreams;
    c.search = search;
    c.hosts = hosts;
    c.records = records;
    c.routes = routes;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        i++;
        if (!strcmp(o, "--listen"))
            listen = v;
        else if (!strcmp(o, "--suffix"))
            c.suffix = v;
        else if (!strcmp(o, "--ttl"))
            c.ttl = (uint32_t)atoi(v);
        else if (!strcmp(o, "--timeout"))
            c.timeout_ms = (unsigned)atoi(v);
        else if (!strcmp(o, "--host"))
            rc = parse_host(&c, v);
        else if (!strcmp(o, "--record"))
            rc = parse_record(&c, v);
        else if (!strcmp(o, "--many"))
            rc = parse_many(&c, v);
        else if (!strcmp(o, "--route"))
            rc = parse_route(&c, v);
        else if (!strcmp(o, "--upstream") && c.n_upstreams < MAXN)
            rc = parse_server(v, &upstreams[c.n_upstreams++]);
        else if (!strcmp(o, "--tcp-idle"))
            lo.tcp_idle_ms = (unsigned)atoi(v);
        else if (!strcmp(o, "--max-tcp"))
            lo.max_tcp_conns = (unsigned)atoi(v);
        else if (!strcmp(o, "--search") && c.n_search < MAXN)
            search[c.n_search++] = v;
        else
            goto usage;
        if (rc < 0) {
            fprintf(stderr, "dns_serve: bad %s '%s'\n", o, v);
            return 2;
        }
    }

    uv_loop_t *loop = uv_default_loop();
    c.log = (struct base_logger){.fn = log_line, .level = BASE_LOG_INFO};
    rc = dns_resolver_new(loop, &c, &resolver);
    if (rc < 0) {
        fprintf(stderr, "dns_serve: %s\n", base_strerror(rc));
        return 1;
    }
    if (parse_server(listen, &lo.addr) < 0) {
        fprintf(stderr, "dns_serve: bad --listen '%s'\n", listen);
        return 2;
    }
    lo.resolver = resolver;
    rc = dns_listener_new(loop, &lo, &listener);
    if (rc < 0) {
        fprintf(stderr, "dns_serve: listen %s: %s\n", listen, base_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    printf("ready %d\n", dns_listener_port(listener));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
usage:
    fprintf(stderr, "usage: see the comment at the top of tests/tools/dns_serve.c\n");
    return 2;
}
