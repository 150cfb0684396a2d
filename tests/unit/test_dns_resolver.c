/* The resolver's answer rules through dns_resolver_handle(), the lookup API, reload,
 * cancelation, the upstream deadline, and forwarding through a mesh transport. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dns.h"
#include "dns_wire.h"

#define PORT_SILENT 15354
#define PORT_MESH_UPSTREAM 15355

struct reply {
    int called;
    size_t len;
    uint8_t msg[65536];
    struct dns_msg_info info;
};

static void on_reply(void *ctx, const uint8_t *msg, size_t len)
{
    struct reply *r = ctx;
    r->called++;
    r->len = len;
    if (msg && len) {
        memcpy(r->msg, msg, len);
        assert_int_equal(dns_msg_parse(r->msg, len, &r->info), 0);
    }
}

static size_t query(uint8_t *buf, const char *name, uint16_t type, int edns, uint16_t udp)
{
    struct dns_builder b;
    struct dns_header h = {0xabcd, DNS_F_RD, 1, 0, 0, 0};
    uint8_t w[DNS_NAME_MAX];
    assert_true(dns_name_from_text(name, w) > 0);
    dns_b_init(&b, buf, 512);
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    dns_b_question(&b, w, type, DNS_CLASS_IN);
    if (edns) {
        dns_b_opt(&b, udp, 0);
        h.arcount = 1;
    }
    dns_header_write(buf, &h);
    return b.len;
}

static struct base_addr a4(const char *s)
{
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, s, strlen(s)), 0);
    assert_int_equal(a.family, AF_INET);
    return a;
}

static struct base_addr a6(const char *s)
{
    struct base_addr a;
    assert_int_equal(base_addr_parse(&a, s, strlen(s)), 0);
    assert_int_equal(a.family, AF_INET6);
    return a;
}

/* An upstream on loopback. */
static struct base_endpoint lo(int port)
{
    struct base_endpoint e = {.port = (uint16_t)port};
    e.addr = a4("127.0.0.1");
    return e;
}

static struct base_addr db_addrs[2], self_addrs[1];
static struct dns_host hosts[2];
static char bigvals[100][16];
static struct dns_record records[104];

/* What the resolver logs, for the tests that look at a rejected config's reason. */
static char logged[BASE_LOG_LINE_MAX];
static void log_line(void *arg, enum base_log_level level, const char *line)
{
    (void)arg;
    (void)level;
    snprintf(logged, sizeof(logged), "%s", line);
}

static struct dns_config base_config(void)
{
    struct dns_config c = {0};
    db_addrs[0] = a4("100.64.0.2");
    db_addrs[1] = a6("fd7a:115c:a1e0::2");
    self_addrs[0] = a4("100.64.0.1");
    hosts[0] = (struct dns_host){"db", db_addrs, 2};
    hosts[1] = (struct dns_host){"self", self_addrs, 1};
    records[0] =
        (struct dns_record){.name = "git.corp.example", .type = DNS_TYPE_A, .addr = a4("10.0.0.5")};
    records[1] = (struct dns_record){
        .name = "www.mesh.internal", .type = DNS_TYPE_CNAME, .value = "db.mesh.internal", .ttl = 0};
    records[2] = (struct dns_record){
        .name = "note.mesh.internal", .type = DNS_TYPE_TXT, .value = "hi there", .ttl = 60};
    records[3] = (struct dns_record){
        .name = "v6only.mesh.internal", .type = DNS_TYPE_AAAA, .addr = a6("fd7a::9")};
    for (int i = 0; i < 100; i++) {
        snprintf(bigvals[i], sizeof(bigvals[i]), "10.9.0.%d", i + 1);
        records[4 + i] = (struct dns_record){
            .name = "big.mesh.internal", .type = DNS_TYPE_A, .addr = a4(bigvals[i])};
    }
    c.hosts = hosts;
    c.n_hosts = 2;
    c.records = records;
    c.n_records = 104;
    c.log = (struct base_logger){.fn = log_line, .level = BASE_LOG_DEBUG};
    return c;
}

struct fixture {
    uv_loop_t loop;
    struct dns_resolver *r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    struct dns_config c = base_config();
    assert_int_equal(dns_resolver_new(&f->loop, &c, &f->r), 0);
    assert_non_null(f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_resolver_close(f->r, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static struct reply *ask(struct fixture *f, const char *name, uint16_t type, size_t max, int edns,
                         uint16_t udp)
{
    static struct reply rep;
    uint8_t q[512];
    memset(&rep, 0, sizeof(rep));
    size_t n = query(q, name, type, edns, udp);
    assert_null(dns_resolver_handle(f->r, q, n, max, on_reply, &rep));
    assert_int_equal(rep.called, 1);
    return &rep;
}

static unsigned rcode(const struct reply *r)
{
    return r->info.hdr.flags & DNS_F_RCODE;
}

/* The rdata of answer i, checking its type. */
static const uint8_t *answer(const struct reply *r, unsigned i, uint16_t type)
{
    struct dns_rr rr;
    size_t off = r->info.q_end;
    for (unsigned k = 0; k <= i; k++)
        assert_int_equal(dns_rr_read(r->msg, r->len, &off, &rr), 0);
    assert_int_equal(rr.type, type);
    return r->msg + rr.rdata_off;
}

static void test_a_aaaa_fqdn_short_case(void **state)
{
    struct fixture *f = *state;
    struct reply *r = ask(f, "db.mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), 0);
    assert_int_equal(r->info.hdr.id, 0xabcd);
    assert_true(r->info.hdr.flags & DNS_F_AA);
    assert_true(r->info.hdr.flags & DNS_F_QR);
    assert_int_equal(r->info.hdr.ancount, 1);
    assert_memory_equal(answer(r, 0, DNS_TYPE_A), db_addrs[0].ip, 4);

    r = ask(f, "db.mesh.internal.", DNS_TYPE_AAAA, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    assert_memory_equal(answer(r, 0, DNS_TYPE_AAAA), db_addrs[1].ip, 16);

    r = ask(f, "db", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    assert_memory_equal(answer(r, 0, DNS_TYPE_A), db_addrs[0].ip, 4);
    struct dns_rr rr;
    size_t off = r->info.q_end;
    dns_rr_read(r->msg, r->len, &off, &rr);
    uint8_t want[DNS_NAME_MAX];
    dns_name_from_text("db", want);
    assert_true(dns_name_equal(rr.name, want)); /* owner as asked */
    assert_int_equal(rr.ttl, DNS_DEFAULT_TTL);

    r = ask(f, "SELF.Mesh.INTERNAL", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    assert_memory_equal(answer(r, 0, DNS_TYPE_A), self_addrs[0].ip, 4);
}

static void test_ptr(void **state)
{
    struct fixture *f = *state;
    uint8_t want[DNS_NAME_MAX], got[DNS_NAME_MAX];
    dns_name_from_text("db.mesh.internal", want);
    struct reply *r = ask(f, "2.0.64.100.in-addr.arpa", DNS_TYPE_PTR, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    struct dns_rr rr;
    size_t off = r->info.q_end;
    dns_rr_read(r->msg, r->len, &off, &rr);
    assert_int_equal(rr.type, DNS_TYPE_PTR);
    off = rr.rdata_off;
    assert_true(dns_name_read(r->msg, r->len, &off, got) > 0);
    assert_true(dns_name_equal(got, want));

    r = ask(f, "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
            DNS_TYPE_PTR, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    /* unknown mesh addresses: NXDOMAIN in the reverse zones */
    r = ask(f, "9.9.64.100.in-addr.arpa", DNS_TYPE_PTR, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NXDOMAIN);
    r = ask(f, "9.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa",
            DNS_TYPE_PTR, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NXDOMAIN);
    /* outside 100.64.0.0/10: not ours, no upstream: SERVFAIL */
    r = ask(f, "1.0.0.100.in-addr.arpa", DNS_TYPE_PTR, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_SERVFAIL);
}

static void test_nxdomain_noerror_empty(void **state)
{
    struct fixture *f = *state;
    struct reply *r = ask(f, "nope.mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NXDOMAIN);
    assert_int_equal(r->info.hdr.ancount, 0);
    r = ask(f, "db.mesh.internal", 15 /* MX */, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NOERROR);
    assert_int_equal(r->info.hdr.ancount, 0);
    r = ask(f, "self.mesh.internal", DNS_TYPE_AAAA, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NOERROR);
    assert_int_equal(r->info.hdr.ancount, 0);
    r = ask(f, "mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_NOERROR);
}

static void test_extra_records(void **state)
{
    struct fixture *f = *state;
    struct reply *r = ask(f, "git.corp.example", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    uint8_t ip[4] = {10, 0, 0, 5};
    assert_memory_equal(answer(r, 0, DNS_TYPE_A), ip, 4);
    r = ask(f, "www.mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 2); /* CNAME + the target's A */
    answer(r, 0, DNS_TYPE_CNAME);
    assert_memory_equal(answer(r, 1, DNS_TYPE_A), db_addrs[0].ip, 4);
    r = ask(f, "note.mesh.internal", DNS_TYPE_TXT, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    assert_memory_equal(answer(r, 0, DNS_TYPE_TXT), "\x08hi there", 9);
    r = ask(f, "v6only.mesh.internal", DNS_TYPE_AAAA, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
}

static void test_servfail_no_route(void **state)
{
    struct fixture *f = *state;
    struct dns_stats st;
    struct reply *r = ask(f, "example.org", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_SERVFAIL);
    assert_int_equal(r->info.hdr.id, 0xabcd);
    dns_resolver_stats(f->r, &st);
    assert_int_equal(st.no_route, 1);
}

static void test_tc_and_edns(void **state)
{
    struct fixture *f = *state;
    struct reply *r = ask(f, "big.mesh.internal", DNS_TYPE_A, 65507, 0, 0);
    assert_true(r->len <= 512);
    assert_true(r->info.hdr.flags & DNS_F_TC);
    assert_true(r->info.hdr.ancount > 0 && r->info.hdr.ancount < 100);
    r = ask(f, "big.mesh.internal", DNS_TYPE_A, 65507, 1, 1232);
    assert_true(r->len <= 1232 && r->len > 512);
    assert_true(r->info.hdr.flags & DNS_F_TC);
    assert_true(r->info.has_edns);
    r = ask(f, "big.mesh.internal", DNS_TYPE_A, 65507, 1, 4096);
    assert_false(r->info.hdr.flags & DNS_F_TC);
    assert_int_equal(r->info.hdr.ancount, 100);
    /* the transport's own limit wins over a large EDNS size */
    r = ask(f, "big.mesh.internal", DNS_TYPE_A, 700, 1, 4096);
    assert_true(r->len <= 700);
    assert_true(r->info.hdr.flags & DNS_F_TC);
    r = ask(f, "big.mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_false(r->info.hdr.flags & DNS_F_TC);
    assert_int_equal(r->info.hdr.ancount, 100);
    /* EDNS version 1: BADVERS */
    uint8_t q[512];
    static struct reply rep;
    size_t n = query(q, "db.mesh.internal", DNS_TYPE_A, 1, 1232);
    q[n - 11 + 6] = 1; /* version byte of the OPT TTL */
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, q, n, DNS_REPLY_TCP, on_reply, &rep);
    assert_int_equal(rep.info.edns_ttl >> 24, 1);
}

static void test_bad_input(void **state)
{
    struct fixture *f = *state;
    static struct reply rep;
    uint8_t q[512];
    struct dns_stats st;

    /* no header: dropped */
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, (const uint8_t *)"\1\2\3", 3, 512, on_reply, &rep);
    assert_int_equal(rep.called, 1);
    assert_int_equal(rep.len, 0);
    /* truncated question: FORMERR with the ID */
    size_t n = query(q, "db.mesh.internal", DNS_TYPE_A, 0, 0);
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, q, n - 3, 512, on_reply, &rep);
    assert_int_equal(rep.info.hdr.flags & DNS_F_RCODE, DNS_RCODE_FORMERR);
    assert_int_equal(rep.info.hdr.id, 0xabcd);
    /* looping pointer */
    uint8_t loop[] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, loop, sizeof(loop), 512, on_reply, &rep);
    assert_int_equal(rep.info.hdr.flags & DNS_F_RCODE, DNS_RCODE_FORMERR);
    /* a response is never answered */
    n = query(q, "db.mesh.internal", DNS_TYPE_A, 0, 0);
    q[2] |= 0x80;
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, q, n, 512, on_reply, &rep);
    assert_int_equal(rep.len, 0);
    /* opcode STATUS: NOTIMP */
    n = query(q, "db.mesh.internal", DNS_TYPE_A, 0, 0);
    q[2] |= 2 << 3;
    memset(&rep, 0, sizeof(rep));
    dns_resolver_handle(f->r, q, n, 512, on_reply, &rep);
    assert_int_equal(rep.info.hdr.flags & DNS_F_RCODE, DNS_RCODE_NOTIMP);
    dns_resolver_stats(f->r, &st);
    assert_int_equal(st.formerr, 2);
    assert_int_equal(st.dropped, 2);
}

struct lk {
    int called;
    int st;
    size_t n;
    struct base_addr a[DNS_LOOKUP_MAX_ADDRS];
};

static void on_lookup(void *ctx, int st, const struct base_addr *a, size_t n)
{
    struct lk *l = ctx;
    l->called++;
    l->st = st;
    l->n = n;
    if (n)
        memcpy(l->a, a, n * sizeof(*a));
}

static void test_lookup(void **state)
{
    struct fixture *f = *state;
    struct lk l = {0};
    assert_null(dns_resolver_lookup(f->r, "db", DNS_FAMILY_ANY, on_lookup, &l));
    assert_int_equal(l.called, 1);
    assert_int_equal(l.st, 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.a[0].family, AF_INET); /* IPv4 first */
    assert_memory_equal(l.a[1].ip, db_addrs[1].ip, 16);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(f->r, "db.mesh.internal", DNS_FAMILY_V6, on_lookup, &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].family, AF_INET6);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(f->r, "10.1.2.3", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.st, 0);
    assert_int_equal(l.a[0].ip[3], 3);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(f->r, "nope", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.st, BASE_ENXDOMAIN);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(f->r, "a..b", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.st, BASE_EPARSE);
    memset(&l, 0, sizeof(l));
    dns_resolver_lookup(f->r, "example.org", DNS_FAMILY_ANY, on_lookup, &l);
    assert_int_equal(l.st, BASE_ESERVFAIL); /* no route */
}

static void test_reload(void **state)
{
    struct fixture *f = *state;
    struct dns_config c = base_config();
    struct base_addr na = a4("100.64.0.77");
    struct dns_host h = {"newbox.corp.internal", &na, 1};
    c.hosts = &h;
    c.n_hosts = 1;
    c.suffix = "corp.internal";
    c.ttl = 30;
    assert_int_equal(dns_resolver_set_config(f->r, &c), 0);
    struct reply *r = ask(f, "newbox", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
    r = ask(f, "db.mesh.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_SERVFAIL); /* no longer local, no upstream */
    /* a bad config is refused and the old one stays */
    struct dns_record bad = {
        .name = "x.corp.internal", .type = DNS_TYPE_CNAME, .value = "not-an-ip..name", .ttl = 0};
    c.records = &bad;
    c.n_records = 1;
    assert_int_equal(dns_resolver_set_config(f->r, &c), BASE_ECONFIG);
    assert_non_null(strstr(logged, "not-an-ip"));
    r = ask(f, "newbox.corp.internal", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(r->info.hdr.ancount, 1);
}

/* A UDP socket on loopback that never answers. */
static int silent_socket(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void test_timeout_and_cancel(void **state)
{
    struct fixture *f = *state;
    int fd = silent_socket(PORT_SILENT);
    struct base_endpoint ups[] = {lo(PORT_SILENT)};
    struct dns_config c = base_config();
    c.upstreams = ups;
    c.n_upstreams = 1;
    c.timeout_ms = 200;
    assert_int_equal(dns_resolver_set_config(f->r, &c), 0);

    static struct reply r1, r2;
    uint8_t q[512];
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    size_t n = query(q, "example.org", DNS_TYPE_A, 1, 1232);
    struct dns_request *a = dns_resolver_handle(f->r, q, n, 65507, on_reply, &r1);
    struct dns_request *b = dns_resolver_handle(f->r, q, n, 65507, on_reply, &r2);
    assert_non_null(a);
    assert_non_null(b);
    dns_request_cancel(b);
    while (!r1.called)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r1.info.hdr.flags & DNS_F_RCODE, DNS_RCODE_SERVFAIL);
    assert_int_equal(r1.info.hdr.id, 0xabcd);
    assert_true(r1.info.has_edns);
    assert_int_equal(r2.called, 0);
    struct dns_stats st;
    dns_resolver_stats(f->r, &st);
    assert_int_equal(st.upstream_failures, 1);
    assert_int_equal(st.forwarded, 2);
    /* a lookup in flight when the resolver goes away: no callback */
    struct lk l = {0};
    assert_non_null(dns_resolver_lookup(f->r, "example.net", DNS_FAMILY_ANY, on_lookup, &l));
    close(fd);
    (void)l;
}

/* A reload while a query waits upstream: the query still gets its answer (SERVFAIL at the
 * deadline), the old channel is reaped once c-ares is done with it, nothing leaks. */
static void test_reload_in_flight(void **state)
{
    struct fixture *f = *state;
    int fd = silent_socket(PORT_SILENT);
    struct base_endpoint ups[] = {lo(PORT_SILENT)};
    struct dns_config c = base_config();
    c.upstreams = ups;
    c.n_upstreams = 1;
    c.timeout_ms = 200;
    assert_int_equal(dns_resolver_set_config(f->r, &c), 0);
    static struct reply r1;
    uint8_t q[512];
    memset(&r1, 0, sizeof(r1));
    size_t n = query(q, "example.org", DNS_TYPE_A, 0, 0);
    assert_non_null(dns_resolver_handle(f->r, q, n, 65507, on_reply, &r1));
    c.n_upstreams = 0;
    assert_int_equal(dns_resolver_set_config(f->r, &c), 0);
    while (!r1.called)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r1.info.hdr.flags & DNS_F_RCODE, DNS_RCODE_SERVFAIL);
    /* the retired channel finishes on its own: the loop runs dry apart from our timers */
    for (int i = 0; i < 100; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT), usleep(10000);
    struct reply *r = ask(f, "example.org", DNS_TYPE_A, DNS_REPLY_TCP, 0, 0);
    assert_int_equal(rcode(r), DNS_RCODE_SERVFAIL); /* no route now */
    close(fd);
}

/* ---- forwarding through a mesh transport (the netstack's stand-in: host UDP) ---- */

struct fake_transport {
    uv_loop_t *loop;
    int fd;
    uv_poll_t poll;
    struct dns_transport_conn *conn;
    int opened, closed;
    bool cover_loopback; /* covers() claims 127.0.0.1 too (peers reloaded) */
    struct base_endpoint asked;
};

static void fake_poll(uv_poll_t *p, int status, int events)
{
    struct fake_transport *t = p->data;
    (void)status;
    (void)events;
    dns_transport_ready(t->conn, true, false);
}

/* "Inside the mesh": 100.100.0.0/16 here, whatever the real mesh's prefix. */
static bool fake_covers(void *ctx, const struct base_addr *server)
{
    struct fake_transport *t = ctx;
    const uint8_t *a = server->ip;
    if (server->family != AF_INET)
        return false;
    return (a[0] == 100 && a[1] == 100) || (t->cover_loopback && a[0] == 127);
}

static int fake_open(void *ctx, int type, const struct base_endpoint *server,
                     struct dns_transport_conn *conn)
{
    struct fake_transport *t = ctx;
    assert_int_equal(type, SOCK_DGRAM);
    assert_int_equal(t->fd, -1);
    t->asked = *server;
    struct sockaddr_in real = {.sin_family = AF_INET, .sin_port = htons(PORT_MESH_UPSTREAM)};
    real.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_int_equal(connect(t->fd, (struct sockaddr *)&real, sizeof(real)), 0);
    t->conn = conn;
    uv_poll_init(t->loop, &t->poll, t->fd);
    t->poll.data = t;
    uv_poll_start(&t->poll, UV_READABLE, fake_poll);
    t->opened++;
    return 7;
}

static ssize_t fake_send(void *ctx, int h, const struct iovec *iov, int n)
{
    struct fake_transport *t = ctx;
    assert_int_equal(h, 7);
    ssize_t r = writev(t->fd, iov, n);
    return r < 0 ? -errno : r;
}

static ssize_t fake_recv(void *ctx, int h, void *buf, size_t len)
{
    struct fake_transport *t = ctx;
    assert_int_equal(h, 7);
    ssize_t r = recv(t->fd, buf, len, 0);
    return r < 0 ? -errno : r;
}

static void fake_close(void *ctx, int h)
{
    struct fake_transport *t = ctx;
    assert_int_equal(h, 7);
    uv_poll_stop(&t->poll);
    close(t->fd);
    t->fd = -1;
    uv_close((uv_handle_t *)&t->poll, NULL);
    t->closed++;
}

/* The upstream inside the "mesh": answers every query with A 10.20.30.40. */
static void upstream_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                          unsigned flags)
{
    (void)flags;
    if (n <= 0 || !from)
        return;
    uint8_t out[600];
    struct dns_msg_info info;
    assert_int_equal(dns_msg_parse((uint8_t *)buf->base, (size_t)n, &info), 0);
    struct dns_builder b;
    struct dns_header h = {info.hdr.id, DNS_F_QR | DNS_F_RD | DNS_F_RA, 1, 1, 0, 0};
    uint8_t ip[4] = {10, 20, 30, 40};
    dns_b_init(&b, out, sizeof(out));
    dns_b_bytes(&b, "\0\0\0\0\0\0\0\0\0\0\0\0", 12);
    dns_b_question(&b, info.q.name, info.q.type, info.q.cls);
    dns_b_rr(&b, info.q.name, DNS_TYPE_A, DNS_CLASS_IN, 120, ip, 4, NULL);
    dns_header_write(out, &h);
    uv_buf_t ob = uv_buf_init((char *)out, (unsigned)b.len);
    uv_udp_try_send(u, &ob, 1, from);
}

static void upstream_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[2048];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(mem, sizeof(mem));
}

/* The answering upstream on 127.0.0.1:PORT_MESH_UPSTREAM, corp.example routed to server,
 * and t as the mesh transport. */
static void start_mesh_upstream(struct fixture *f, struct fake_transport *t, uv_udp_t *upstream,
                                struct base_endpoint server)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(PORT_MESH_UPSTREAM)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uv_udp_init(&f->loop, upstream);
    assert_int_equal(uv_udp_bind(upstream, (struct sockaddr *)&sin, 0), 0);
    uv_udp_recv_start(upstream, upstream_alloc, upstream_recv);
    struct base_endpoint servers[] = {server};
    struct dns_route route = {"corp.example", servers, 1};
    struct dns_config c = base_config();
    c.routes = &route;
    c.n_routes = 1;
    assert_int_equal(dns_resolver_set_config(f->r, &c), 0);
    struct dns_transport tr = {t, fake_covers, fake_open, fake_send, fake_recv, fake_close};
    dns_resolver_set_mesh_transport(f->r, &tr);
}

static void test_mesh_transport(void **state)
{
    struct fixture *f = *state;
    struct fake_transport t = {.loop = &f->loop, .fd = -1};
    uv_udp_t upstream;

    struct base_endpoint server = {.addr = a4("100.100.5.5")}; /* port 0: 53 */
    start_mesh_upstream(f, &t, &upstream, server);

    struct lk l = {0};
    assert_non_null(dns_resolver_lookup(f->r, "wiki.corp.example", DNS_FAMILY_V4, on_lookup, &l));
    while (!l.called)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(l.st, 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.a[0].ip[0], 10);
    assert_int_equal(l.a[0].ip[3], 40);
    assert_int_equal(t.opened, 1);
    assert_int_equal(t.asked.port, 53);
    uint8_t want[4] = {100, 100, 5, 5};
    assert_memory_equal(t.asked.addr.ip, want, 4);
    /* second time from the cache: no new socket, no new query */
    memset(&l, 0, sizeof(l));
    assert_null(dns_resolver_lookup(f->r, "wiki.corp.example", DNS_FAMILY_V4, on_lookup, &l));
    assert_int_equal(l.st, 0);
    uv_close((uv_handle_t *)&upstream, NULL);
    dns_resolver_close(f->r, NULL, NULL);
    f->r = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(t.closed, 1);
}

/* A server first reached through a host socket becomes covered by the mesh (a reload gave a
 * peer its address): after dns_resolver_routes_changed the next query goes through the mesh
 * transport, not through the host socket c-ares kept open. */
static void test_routes_changed(void **state)
{
    struct fixture *f = *state;
    struct fake_transport t = {.loop = &f->loop, .fd = -1};
    uv_udp_t upstream;

    start_mesh_upstream(f, &t, &upstream, lo(PORT_MESH_UPSTREAM));

    const char *names[] = {"a.corp.example", "b.corp.example"};
    int st[2], opened[2];
    for (int i = 0; i < 2; i++) {
        struct lk l = {0};
        if (dns_resolver_lookup(f->r, names[i], DNS_FAMILY_V4, on_lookup, &l))
            for (int k = 0; k < 100 && !l.called; k++)
                uv_run(&f->loop, UV_RUN_ONCE);
        st[i] = l.called ? (int)l.st : -1;
        opened[i] = t.opened;
        t.cover_loopback = true;
        dns_resolver_routes_changed(f->r);
        uv_run(&f->loop, UV_RUN_NOWAIT); /* c-ares learns of the closed socket */
    }
    /* Handles on this stack are closed before any assert can leave the function. */
    uv_close((uv_handle_t *)&upstream, NULL);
    dns_resolver_close(f->r, NULL, NULL);
    f->r = NULL;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(st[0], 0);
    assert_int_equal(opened[0], 0); /* a host socket first */
    assert_int_equal(st[1], 0);
    assert_int_equal(opened[1], 1); /* the mesh after the change */
    assert_int_equal(t.closed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_aaaa_fqdn_short_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ptr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nxdomain_noerror_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servfail_no_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tc_and_edns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mesh_transport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes_changed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
